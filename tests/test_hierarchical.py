"""The two-layer top-down VAE (vae_core.hierarchical): its data flow follows the named modules, each
layer's KL matches torch.distributions, free bits act per layer, the one-layer model is models.VAE,
the IWAE estimate reaches log p(x) computed by quadrature over (z1, z2), and it trains, samples,
counts active units and round-trips through checkpoints.

Tolerances:
- float64 comparisons with torch.distributions and hand computations: the same operations in another
  order, so 1e-10; the one-layer model against models.VAE: the same operations in the same order, so exact;
- quadrature: log p(x) = log int int p(x|z1) p(z1|z2) N(z2; 0, 1) dz1 dz2 on a 1601 x 1601 grid of
  [-10, 10]^2 (smooth integrand; the prior mass on the grid is 1 within 1e-7, checked), and the exact
  ELBO on the same grid. IWAE with k = 20,000 against it: over seeds 0-4 off by 0.03 nats (standard
  deviation), at most 0.063, so 0.15;
- expectations (k = 1 and the one-sample ELBO average to the exact ELBO; the bound grows with k): means
  of N repeated estimates compared within 4 standard errors (a 6e-5 chance of a false alarm each);
  over seeds 0-7 the z-scores of the k = 1 and ELBO means stayed within 2.5.
Training is seeded and CPU-deterministic; "the loss went down" uses a margin well inside the seeded run's.
"""
from __future__ import annotations

import dataclasses
import math

import pytest
import torch
from torch.distributions import Bernoulli, Independent, Normal, kl_divergence

from vae_core.data import Dataset, load_mnist
from vae_core.data.batches import Batch
from vae_core.hierarchical import HVAE, HVAEConfig, active_units_per_layer, from_vae
from vae_core.metrics import active_units, nll_estimate
from vae_core.models import VAE, LossWeights, VAEConfig
from vae_core.train import TrainConfig, evaluate, fit, load_checkpoint, save_checkpoint

from fresh_process import run_fresh  # tests/ is on the path, as for nb_helpers

SMALL = HVAEConfig(input_shape=(1, 4, 4), hidden=(12,), top_hidden=6, z1_dim=3, z2_dim=2)
F64 = torch.float64


@pytest.fixture(autouse=True)
def no_tqdm_monitor(monkeypatch):
    """No tqdm monitor thread: in a forked process (mutmut's test runner) it can hang the exit."""
    import tqdm

    monkeypatch.setattr(tqdm.tqdm, "monitor_interval", 0)


def new_hvae(config: HVAEConfig = SMALL, seed: int = 0, dtype: torch.dtype = torch.float32) -> HVAE:
    torch.manual_seed(seed)
    return HVAE(config).to(dtype)


def images(config: HVAEConfig, b: int, seed: int = 0, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.bernoulli(torch.rand((b, *config.input_shape), generator=g, dtype=dtype), generator=g)


def noise(b: int, config: HVAEConfig = SMALL, seed: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(b, config.z2_dim, generator=g, dtype=F64), torch.randn(b, config.z1_dim, generator=g, dtype=F64)


def normal(q) -> Normal:
    return Normal(q[0], torch.exp(0.5 * q[1]))


# ------------------------------------------------------------------------------------------ data flow and shapes


@pytest.mark.parametrize("top_layer", [True, False])
def test_shapes_and_named_modules(top_layer):
    cfg = dataclasses.replace(SMALL, top_layer=top_layer)
    model, x = new_hvae(cfg), images(cfg, 5)
    assert hasattr(model, "q_z2") == hasattr(model, "p_z1") == hasattr(model, "top_down") == hasattr(model, "bottom_up2") == top_layer
    s = model.posteriors(x)
    assert s.z1.shape == s.q1[0].shape == s.q1[1].shape == (5, 3)
    mu, logvar = model.encode(x)
    assert mu.shape == logvar.shape == ((5, 5) if top_layer else (5, 3))
    assert {k: v.shape for k, v in model.layer_means(x).items()} == ({"z1": (5, 3), "z2": (5, 2)} if top_layer else {"z1": (5, 3)})
    t = model.elbo(x)
    assert t.recon.shape == t.elbo.shape == (5,) and t.loss.shape == () and set(t.kl) == ({"kl_1", "kl_2"} if top_layer else {"kl_1"})
    assert model.decode(s.z1).shape == (5, 1, 4, 4) and model.log_likelihood(x, k=3).shape == (5,)
    for img in (model.sample(4), model.reconstruct(x)):
        assert img.shape[1:] == (1, 4, 4) and 0 <= img.min() and img.max() <= 1


def test_posteriors_follow_the_named_modules_and_encode_is_the_mean_path():
    model, x = new_hvae(dtype=F64), images(SMALL, 6, dtype=F64)
    eps2, eps1 = noise(6)
    s = model.posteriors(x, eps2, eps1)
    h1 = model.bottom_up1(x.flatten(1))
    mu2, logvar2 = model.q_z2(model.bottom_up2(h1))
    z2 = mu2 + torch.exp(0.5 * logvar2) * eps2
    t = model.top_down(z2)
    mu1, logvar1 = model.q_z1(torch.cat([h1, t], 1))
    for got, want in ((s.z2, z2), (s.q2[1], logvar2), (s.p1[0], model.p_z1(t)[0]), (s.p1[1], model.p_z1(t)[1]),
                      (s.q1[1], logvar1), (s.z1, mu1 + torch.exp(0.5 * logvar1) * eps1)):
        torch.testing.assert_close(got, want, rtol=1e-10, atol=1e-10)
    # The mean path: z2 = mu2, then q(z1|x, z2 = mu2); encode concatenates [z1, z2].
    m1, lv1 = model.q_z1(torch.cat([h1, model.top_down(mu2)], 1))
    mu, logvar = model.encode(x)
    torch.testing.assert_close(mu, torch.cat([m1, mu2], 1), rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(logvar, torch.cat([lv1, logvar2], 1), rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(model.layer_means(x)["z1"], m1, rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(model.reconstruct(x), torch.sigmoid(model.decode(m1)), rtol=1e-10, atol=1e-10)
    # Without eps, the noise comes from the generator, eps2 first.
    g = torch.Generator().manual_seed(4)
    torch.testing.assert_close(model.posteriors(x, generator=torch.Generator().manual_seed(4)).z1,
                               model.posteriors(x, torch.randn(6, 2, generator=g, dtype=F64), torch.randn(6, 3, generator=g, dtype=F64)).z1)


# ------------------------------------------------------------------------------------------ the ELBO


def test_per_layer_kl_and_recon_match_torch_distributions():
    model, x = new_hvae(dtype=F64), images(SMALL, 6, dtype=F64)
    eps2, eps1 = noise(6)
    s = model.posteriors(x, eps2, eps1)
    t = model.elbo(x, eps2=eps2, eps1=eps1)
    kl_1 = kl_divergence(Independent(normal(s.q1), 1), Independent(normal(s.p1), 1))
    kl_2 = kl_divergence(Independent(normal(s.q2), 1), Independent(Normal(torch.zeros_like(s.z2), 1.0), 1))
    torch.testing.assert_close(t.kl["kl_1"], kl_1, rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(t.kl["kl_2"], kl_2, rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(t.recon, -Bernoulli(logits=model.decode(s.z1)).log_prob(x).sum((1, 2, 3)), rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(t.elbo, -t.recon - t.kl["kl_1"] - t.kl["kl_2"], rtol=0, atol=0)
    torch.testing.assert_close(t.loss, (t.recon + kl_1 + kl_2).mean(), rtol=1e-12, atol=1e-12)


def test_free_bits_per_layer_and_no_kl_gradient_below_lambda():
    model, x = new_hvae(dtype=F64), images(SMALL, 16, dtype=F64)
    eps2, eps1 = noise(16)
    lam, beta = 0.1, 0.7
    t = model.elbo(x, beta=beta, free_bits=lam, eps2=eps2, eps1=eps1)
    s = model.posteriors(x, eps2, eps1)
    kl1_dims = kl_divergence(normal(s.q1), normal(s.p1)).mean(0)  # mean_b KL_bj per dimension of z1
    kl2_dims = kl_divergence(normal(s.q2), Normal(0.0, 1.0)).mean(0)
    assert kl2_dims.max() < lam < kl1_dims.max(), "the top layer must sit below lambda and z1 partly above it"
    charged_1 = kl1_dims.clamp(min=lam).sum()  # sum_j max(lambda, mean_b KL_bj)
    recon = -Bernoulli(logits=model.decode(s.z1)).log_prob(x).sum((1, 2, 3))
    torch.testing.assert_close(t.loss, recon.mean() + beta * (charged_1 + kl2_dims.clamp(min=lam).sum()), rtol=1e-12, atol=1e-12)
    params = list(model.q_z2.parameters())
    got = torch.autograd.grad(t.loss, params)
    without_kl_2 = torch.autograd.grad(recon.mean() + beta * charged_1, params, retain_graph=True)
    with_kl_2 = torch.autograd.grad(recon.mean() + beta * (charged_1 + kl2_dims.sum()), params)
    for a, b, c in zip(got, without_kl_2, with_kl_2):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)
        assert (a - c).abs().max() > 1e-4  # the unclamped KL of z2 would have pushed these weights


def test_loss_terms_report_each_layer_unweighted():
    model, x = new_hvae(dtype=F64), images(SMALL, 8, dtype=F64)
    torch.manual_seed(3)
    plain = model.loss_terms(Batch(x))
    torch.manual_seed(3)
    weighted = model.loss_terms(Batch(x, torch.zeros(8, dtype=torch.long)), LossWeights(kl=0.25))
    assert plain.terms.keys() == weighted.terms.keys() == {"recon", "kl_1", "kl_2"}
    r, k1, k2 = (plain.terms[n] for n in ("recon", "kl_1", "kl_2"))
    torch.testing.assert_close(weighted.terms["kl_2"], k2, rtol=0, atol=0)
    torch.testing.assert_close(plain.elbo, -r - k1 - k2, rtol=0, atol=0)
    torch.testing.assert_close(weighted.loss, r.mean() + 0.25 * (k1.mean() + k2.mean()), rtol=1e-12, atol=1e-12)


# ------------------------------------------------------------------------------------------ one layer = the VAE


def test_one_layer_hvae_is_the_vae():
    torch.manual_seed(0)
    vae = VAE(VAEConfig(input_shape=(1, 4, 4), latent_dim=3, hidden=(12,), arch="mlp"))
    model, x = from_vae(vae), images(SMALL, 8)
    assert model.config.top_layer is False and sum(p.numel() for p in model.parameters()) == sum(p.numel() for p in vae.parameters())
    torch.testing.assert_close(model.q_z1.logvar.weight, vae.encoder.heads.logvar.weight, rtol=0, atol=0)
    for beta, free_bits in ((1.0, 0.0), (0.5, 0.3)):
        torch.manual_seed(5)
        a = vae.elbo(x, beta=beta, free_bits=free_bits)
        torch.manual_seed(5)
        b = model.elbo(x, beta=beta, free_bits=free_bits)
        for u, v in ((a.recon, b.recon), (a.kl, b.kl["kl_1"]), (a.elbo, b.elbo), (a.loss, b.loss)):
            torch.testing.assert_close(u, v, rtol=0, atol=0)
    ll = [m.log_likelihood(x, k=7, batch_k=3, generator=torch.Generator().manual_seed(2)) for m in (vae, model)]
    torch.testing.assert_close(ll[0], ll[1], rtol=0, atol=0)
    samples = [m.sample(5, torch.Generator().manual_seed(3)) for m in (vae, model)]
    torch.testing.assert_close(samples[0], samples[1], rtol=0, atol=0)
    torch.testing.assert_close(vae.reconstruct(x), model.reconstruct(x), rtol=0, atol=0)
    torch.testing.assert_close(vae.encode(x)[1], model.encode(x)[1], rtol=0, atol=0)


# ------------------------------------------------------------------------------------------ log-likelihood

TINY = HVAEConfig(input_shape=(1, 2, 2), hidden=(3,), top_hidden=3, z1_dim=1, z2_dim=1)


@pytest.fixture(scope="module")
def tiny():
    """A tiny HVAE, 4 examples, and log p(x) and the ELBO by quadrature over (z2, z1)."""
    torch.manual_seed(1)
    model = HVAE(TINY).double().eval()
    with torch.no_grad():
        for p in model.decoder.parameters():
            p.mul_(3.0)  # a decoder that depends strongly on z1, so q is far from the posterior
        for p in model.top_down.parameters():
            p.mul_(2.0)  # a prior p(z1|z2) that depends strongly on z2
    x = torch.tensor([[1.0, 0, 1, 1], [0, 0, 1, 0], [1, 1, 1, 1], [0, 1, 0, 0]], dtype=F64).view(4, 1, 2, 2)
    grid = torch.linspace(-10, 10, 1601, dtype=F64)  # (G,) for z1 and for z2
    dz, g = (grid[1] - grid[0]).item(), len(grid)
    with torch.no_grad():
        log_px_z = Bernoulli(logits=model.decode(grid[:, None]).flatten(1)[:, None]).log_prob(x.flatten(1)).sum(-1)  # (G1, B)
        t = model.top_down(grid[:, None])  # (G2, top_hidden)
        prior = normal(model.p_z1(t))  # p(z1|z2), batch (G2, 1)
        log_joint_z = Normal(0.0, 1.0).log_prob(grid)[:, None] + prior.log_prob(grid[None, :])  # (G2, G1) log p(z2) p(z1|z2)
        assert abs(torch.logsumexp(log_joint_z.flatten(), 0).item() + 2 * math.log(dz)) < 1e-6, "the grid misses prior mass"
        log_px = torch.logsumexp((log_joint_z[..., None] + log_px_z[None]).flatten(0, 1), 0) + 2 * math.log(dz)  # (B,)
        # ELBO = int q(z2|x) [int q(z1|x, z2) log p(x|z1) dz1 - KL(q(z1|x, z2) || p(z1|z2))] dz2 - KL(q(z2|x) || N(0, 1))
        h1 = model.bottom_up1(x.flatten(1))  # (B, F)
        q2 = normal([a[:, 0] for a in model.q_z2(model.bottom_up2(h1))])  # batch (B,)
        q1 = normal([a[..., 0] for a in model.q_z1(torch.cat([h1.expand(g, 4, -1), t[:, None].expand(g, 4, -1)], -1))])  # (G2, B)
        inner = (q1.log_prob(grid[:, None, None]).exp().transpose(0, 1) * log_px_z[None]).sum(1) * dz  # (G2, B)
        kl_1 = kl_divergence(q1, normal([a.expand(g, 4) for a in model.p_z1(t)]))  # (G2, B)
        elbo = (q2.log_prob(grid[:, None]).exp() * (inner - kl_1)).sum(0) * dz - kl_divergence(q2, Normal(0.0, 1.0))
    return model, x, log_px, elbo


def test_iwae_approaches_log_p_x_by_quadrature_and_grows_with_k(tiny):
    model, x, log_px, elbo = tiny
    assert (log_px - elbo).min() > 1.0, "q is far from the posterior, so the ELBO lies well below log p(x)"
    iwae = model.log_likelihood(x, k=20000, batch_k=5000, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(iwae, log_px, rtol=0, atol=0.15)
    means, ses = [], []
    for k, r in ((1, 2000), (10, 2000), (100, 1000)):  # r repeats of each example: E[estimate], not one draw
        est = model.log_likelihood(x.repeat(r, 1, 1, 1), k=k, generator=torch.Generator().manual_seed(k)).view(r, 4)
        means.append(est.mean(0))
        ses.append(est.std(0) / math.sqrt(r))
    for (m_a, s_a), (m_b, s_b) in zip(zip(means, ses), zip(means[1:], ses[1:])):
        assert (m_b - m_a > 4 * (s_a**2 + s_b**2).sqrt()).all(), f"the bound should grow with k: {m_a.tolist()} -> {m_b.tolist()}"
    assert (means[-1] < log_px + 4 * ses[-1]).all(), f"IWAE is a lower bound: {means[-1].tolist()} vs {log_px.tolist()}"


def test_k1_is_the_elbo_on_the_same_noise_and_in_expectation(tiny):
    model, x, _, elbo = tiny
    one = model.log_likelihood(x, k=1, generator=torch.Generator().manual_seed(7))
    s = model.posteriors(x, generator=torch.Generator().manual_seed(7))  # the same eps2, eps1
    t = model.elbo(x, generator=torch.Generator().manual_seed(7))
    log_p = normal(s.p1).log_prob(s.z1) + Normal(0.0, 1.0).log_prob(s.z2)  # log p(z1|z2) + log p(z2)
    log_ratio = (log_p - normal(s.q1).log_prob(s.z1) - normal(s.q2).log_prob(s.z2)).sum(-1)
    torch.testing.assert_close(one, -t.recon + log_ratio, rtol=1e-10, atol=1e-10)  # log w = log p(x, z) - log q(z|x)
    n = 4000
    xs = x.repeat(n, 1, 1, 1)
    with torch.no_grad():
        ests = {"log_likelihood(k=1)": model.log_likelihood(xs, k=1, generator=torch.Generator().manual_seed(0)),
                "elbo": model.elbo(xs, generator=torch.Generator().manual_seed(1)).elbo}
    for name, est in ests.items():
        est = est.view(n, 4)
        se = est.std(0) / math.sqrt(n)
        assert ((est.mean(0) - elbo).abs() < 4 * se).all(), f"{name}: mean {est.mean(0).tolist()} vs exact ELBO {elbo.tolist()}"


# ------------------------------------------------------------------------------------------ sampling


def test_ancestral_sampling_is_seeded_and_a_fixed_z2_varies_only_through_z1():
    model = new_hvae().eval()
    out = model.sample(6, generator=torch.Generator().manual_seed(5))
    torch.testing.assert_close(model.sample(6, generator=torch.Generator().manual_seed(5)), out, rtol=0, atol=0)
    assert (model.sample(6, generator=torch.Generator().manual_seed(6)) - out).abs().max() > 1e-3
    g = torch.Generator().manual_seed(5)
    z2 = torch.randn(6, 2, generator=g)  # z2 ~ N(0, I), then z1 ~ p(z1|z2), from the same stream
    mu, logvar = model.p_z1(model.top_down(z2))
    hand = torch.sigmoid(model.decode(mu + torch.exp(0.5 * logvar) * torch.randn(6, 3, generator=g)))
    torch.testing.assert_close(out, hand, rtol=1e-6, atol=1e-6)
    fixed = model.sample(6, generator=torch.Generator().manual_seed(5), z2=z2[:1])  # one z2 shared by 6 samples
    torch.testing.assert_close(fixed, model.sample(6, torch.Generator().manual_seed(5), z2=z2[:1].expand(6, -1)), rtol=0, atol=0)
    assert (fixed - fixed[0]).abs().max() > 1e-3
    with torch.no_grad():  # p(z1|z2) a point mass: with z2 fixed, nothing is left to vary
        model.p_z1.logvar.weight.zero_()
        model.p_z1.logvar.bias.fill_(-40.0)
    same = model.sample(6, generator=torch.Generator().manual_seed(5), z2=z2[:1])
    assert (same - same[0]).abs().max() < 1e-6
    assert (same[0] - model.sample(1, generator=torch.Generator().manual_seed(5), z2=z2[1:2])[0]).abs().max() > 1e-3


# ------------------------------------------------------------------------------------------ training, metrics, checkpoints


def test_fit_trains_it_and_history_records_each_layer():
    train, test = load_mnist("train", binarize="dynamic", limit=512), load_mnist("test", binarize="dynamic", limit=256)
    model = new_hvae(HVAEConfig())
    before = evaluate(model, test)
    history = fit(model, train, test, TrainConfig(epochs=2, batch_size=64, lr=1e-3, progress=False))
    after = evaluate(model, test)
    assert len(history) == 2 and set(history.terms("train")) == {"recon", "kl", "elbo", "kl_1", "kl_2"}
    assert all(math.isfinite(v) for split in ("train", "test") for n in ("kl_1", "kl_2", "elbo") for v in history.terms(split)[n])
    assert after["elbo"] == pytest.approx(-(after["recon"] + after["kl_1"] + after["kl_2"]))
    assert -after["elbo"] < -before["elbo"] - 200, f"2 epochs should lower the test -ELBO: {-before['elbo']:.1f} -> {-after['elbo']:.1f}"
    torch.manual_seed(0)
    nll = nll_estimate(model, Dataset(test.images[:64], test.labels[:64], "t", "dynamic"), k=20, generator=torch.Generator().manual_seed(0))
    assert math.isfinite(nll["nll_nats"]) and nll["nll_nats"] < -nll["elbo"]  # the IWAE bound is the tighter one


def test_active_units_per_layer_is_the_variance_of_each_layers_means():
    model, x = new_hvae(dtype=F64).eval(), images(SMALL, 40, dtype=F64)
    with torch.no_grad():
        model.q_z2.mu.weight[1].zero_()  # mu2[1] no longer depends on x: an inactive unit
    got = active_units_per_layer(model, x, threshold=1e-4, batch_size=7)
    means = model.layer_means(x)
    for name in ("z1", "z2"):
        want = ((means[name] - means[name].mean(0)) ** 2).mean(0)  # Var_x(E_q[z_u]), divided by N
        torch.testing.assert_close(got[name][1], want.float().detach(), rtol=1e-6, atol=1e-9)
        assert got[name][0] == int((want > 1e-4).sum())
    assert got["z2"][1][1] == 0 and got["z2"][0] == 1
    count, variances = active_units(model, x, threshold=1e-4)  # metrics reads encode: [z1, z2] on the mean path
    torch.testing.assert_close(variances, torch.cat([got["z1"][1], got["z2"][1]]), rtol=1e-6, atol=1e-9)
    assert count == got["z1"][0] + got["z2"][0]
    dataset = active_units_per_layer(model, Dataset(x, torch.zeros(40, dtype=torch.long), "x"), threshold=1e-4)
    torch.testing.assert_close(dataset["z1"][1], got["z1"][1], rtol=1e-5, atol=1e-7)


def test_load_checkpoint_rebuilds_the_hvae_in_a_fresh_process(tmp_path):
    model = new_hvae(dataclasses.replace(SMALL, hidden=(12, 8))).eval()
    path = save_checkpoint(tmp_path / "h.pt", model)
    script = (
        "import sys, torch\n"
        "from vae_core.train import load_checkpoint\n"
        "assert 'vae_core.hierarchical' not in sys.modules, 'the test must not import vae_core.hierarchical first'\n"
        f"model, _ = load_checkpoint({str(path)!r}, device='cpu')\n"
        "assert type(model).__name__ == 'HVAE' and model.config.hidden == (12, 8), model.config\n"
        f"torch.save(model.sample(3, torch.Generator().manual_seed(0)), {str(tmp_path / 'out.pt')!r})\n"
    )
    run_fresh(script)
    got = torch.load(tmp_path / "out.pt", weights_only=True)
    torch.testing.assert_close(got, model.sample(3, torch.Generator().manual_seed(0)), rtol=0, atol=0)
    back, _ = load_checkpoint(path, device="cpu")
    assert back.config == model.config


# ------------------------------------------------------------------------------------------ bad input


def test_bad_inputs_are_explained():
    model, x = new_hvae(), images(SMALL, 4)
    with pytest.raises(ValueError, match=r"expected images of shape \(B, 1, 4, 4\), got \(4, 16\)"):
        model.elbo(x.view(4, 16))
    with pytest.raises(ValueError, match=r"eps2 must have shape \(4, 2\): standard normal noise for z2, one row per image, got \(4, 3\)"):
        model.posteriors(x, eps2=torch.zeros(4, 3))
    with pytest.raises(ValueError, match=r"eps1 must have shape \(4, 3\).*got \(3,\)"):
        model.elbo(x, eps1=torch.zeros(3))
    with pytest.raises(ValueError, match=r"no top layer \(top_layer=False\); pass eps2=None"):
        new_hvae(dataclasses.replace(SMALL, top_layer=False)).posteriors(x, eps2=torch.zeros(4, 2))
    with pytest.raises(ValueError, match="k must be a positive int, got 0"):
        model.log_likelihood(x, k=0)
    with pytest.raises(ValueError, match=r"expected z1 of shape \(B, 3\), got \(2, 2\)"):
        model.decode(torch.zeros(2, 2))
    with pytest.raises(ValueError, match=r"z2 must have shape \(4, 2\), one per sample, or \(1, 2\) shared by all, got \(3, 2\)"):
        model.sample(4, z2=torch.zeros(3, 2))
    with pytest.raises(ValueError, match=r"no top layer .* no z2 to fix"):
        new_hvae(dataclasses.replace(SMALL, top_layer=False)).sample(2, z2=torch.zeros(1, 2))
    with pytest.raises(ValueError, match="free_bits must be a finite number >= 0"):
        model.elbo(x, free_bits=-1.0)
    with pytest.raises(ValueError, match="expected an HVAEConfig, got VAEConfig.*from_vae"):
        HVAE(VAEConfig())
    with pytest.raises(ValueError, match="from_vae takes a models.VAE with arch='mlp'.*got arch='conv'"):
        from_vae(VAE(VAEConfig(input_shape=(1, 8, 8), arch="conv")))
    with pytest.raises(ValueError, match="active_units_per_layer needs at least 2 examples"):
        active_units_per_layer(model, x[:1])
    with pytest.raises(ValueError, match="active_units_per_layer takes an HVAE, got VAE"):
        active_units_per_layer(VAE(VAEConfig(input_shape=(1, 4, 4))), x)


@pytest.mark.parametrize("kwargs, match", [
    (dict(z1_dim=0), r"z1_dim must be a positive int \(the size of z1\), got 0"),
    (dict(z2_dim=2.0), r"z2_dim must be a positive int .*got 2.0"),
    (dict(top_hidden=True), r"top_hidden must be a positive int .*got True"),
    (dict(hidden=(256, 0)), r"hidden must be a tuple of positive ints"),
    (dict(input_shape=(28, 28)), r"input_shape must be \(C, H, W\)"),
    (dict(likelihood="gaussian"), r"likelihood must be 'bernoulli' .*got 'gaussian'"),
    (dict(top_layer=1), r"top_layer must be True .* or False .*got 1"),
])
def test_config_refuses_bad_values(kwargs, match):
    with pytest.raises(ValueError, match=match):
        HVAEConfig(**kwargs)


def test_config_takes_lists_from_a_checkpoint():
    assert HVAEConfig(input_shape=[1, 4, 4], hidden=[12]) == dataclasses.replace(SMALL, top_hidden=128, z1_dim=16, z2_dim=8)
