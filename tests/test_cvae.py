"""The conditional VAE (vae_core.cvae): the label reaches the encoder and the decoder, its ELBO
matches torch.distributions, its IWAE estimate matches log p(x|y) by quadrature on a model with a
1-D latent, and it trains, evaluates and round-trips through checkpoints like the VAE.

Tolerances:
- float64 comparisons with torch.distributions and by-hand linear maps: the same products in
  another order, so 1e-10;
- quadrature: log p(x|y) = log int p(x|z, y) N(z; 0, 1) dz on 20,001 points of [-10, 10] (the
  integrand is smooth; the mass beyond |z| = 10 is below e^-50), exact to far below 1e-6.
  the ELBO's expectation over q is done on the same grid. IWAE with k = 20,000 is a consistent
  estimate of log p(x|y): over seeds 0-4 it was off by 0.01 nats (standard deviation), at most
  0.022, so 0.05;
- expectations (k = 1 and the one-sample ELBO average to the exact ELBO; k = 100 stays below
  log p(x|y)): means of N repeated estimates compared within 4 standard errors (a 6e-5 chance of
  a false alarm for a correct model, per comparison).
Training runs are seeded and CPU-deterministic: "the loss went down" is checked with a margin well
inside what the seeded run achieves (test -ELBO about 45 -> 12 nats, 49-59 with wrong labels; seeds
0-2 all within 2 nats of that), not statistically.
"""
from __future__ import annotations

import dataclasses
import math

import pytest
import torch
from torch.distributions import Bernoulli, Independent, Normal, kl_divergence

from vae_core.cvae import CVAE, CVAEConfig
from vae_core.data import Dataset
from vae_core.data.batches import Batch
from vae_core.models import LossWeights, VAEConfig
from vae_core.train import TrainConfig, evaluate, fit, load_checkpoint, save_checkpoint

from fresh_process import run_fresh  # tests/ is on the path, as for nb_helpers

SMALL = CVAEConfig(input_shape=(1, 8, 8), n_classes=3, latent_dim=2, hidden=(16,))


@pytest.fixture(autouse=True)
def no_tqdm_monitor(monkeypatch):
    """No tqdm monitor thread: in a forked process (mutmut's test runner) it can hang the exit."""
    import tqdm

    monkeypatch.setattr(tqdm.tqdm, "monitor_interval", 0)


def new_cvae(config: CVAEConfig = SMALL, seed: int = 0, dtype: torch.dtype = torch.float32) -> CVAE:
    torch.manual_seed(seed)
    return CVAE(config).to(dtype)


def images(config: CVAEConfig, b: int, seed: int = 0, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    x = torch.rand((b, *config.input_shape), generator=g, dtype=dtype)
    return x if config.likelihood == "gaussian" else torch.bernoulli(x, generator=g)


def labels(config: CVAEConfig, b: int) -> torch.Tensor:
    return torch.arange(b) % config.n_classes


# ------------------------------------------------------------------------------------------ shapes


@pytest.mark.parametrize("shape", [(1, 28, 28), (1, 8, 8)])
@pytest.mark.parametrize("likelihood", ["bernoulli", "gaussian"])
@pytest.mark.parametrize("arch", ["mlp", "conv"])
def test_shapes(arch, likelihood, shape):
    cfg = CVAEConfig(input_shape=shape, n_classes=4, latent_dim=3, hidden=(16,), arch=arch, likelihood=likelihood)
    model = new_cvae(cfg)
    x, y = images(cfg, 5), torch.tensor([0, 3, 1, 2, 3])
    mu, logvar = model.encode(x, y)
    assert mu.shape == logvar.shape == (5, 3)
    x_params = model.decode(mu, y)
    assert x_params.shape == (5, *shape)
    if likelihood == "gaussian":
        assert 0 < x_params.min() and x_params.max() < 1  # the mean, kept in (0, 1)
    out, mu2, logvar2 = model(x, y)
    assert out.shape == (5, *shape) and mu2.shape == logvar2.shape == (5, 3)
    t = model.elbo(x, y)
    assert t.recon.shape == t.kl.shape == t.elbo.shape == (5,) and t.loss.shape == ()
    for img in (model.sample([0, 1, 2, 3]), model.reconstruct(x, y)):
        assert img.shape[1:] == shape and 0 <= img.min() and img.max() <= 1
    assert model.log_likelihood(x, y, k=3).shape == (5,)
    oh = model.one_hot(y)
    assert oh.shape == (5, 4) and oh.dtype == torch.float32
    torch.testing.assert_close(oh, torch.eye(4)[y], rtol=0, atol=0)


def test_odd_shapes_and_float64():
    mlp = CVAEConfig(input_shape=(3, 5, 7), n_classes=2, latent_dim=2, hidden=(8, 4))
    conv = CVAEConfig(input_shape=(2, 12, 4), n_classes=2, latent_dim=2, hidden=(), arch="conv", channels=(3, 5))
    for cfg in (mlp, conv):
        model = new_cvae(cfg, dtype=torch.float64)
        x, y = images(cfg, 3, dtype=torch.float64), torch.tensor([1, 0, 1])
        assert model(x, y)[0].shape == (3, *cfg.input_shape)
        assert model.one_hot(y).dtype == torch.float64
        assert model.sample(torch.tensor([0, 1])).shape == (2, *cfg.input_shape)


def test_config_properties_and_lists_from_a_checkpoint():
    cfg = CVAEConfig(input_shape=[3, 8, 8], hidden=[32, 16], arch="conv", channels=[4])
    assert cfg == CVAEConfig(input_shape=(3, 8, 8), hidden=(32, 16), arch="conv", channels=(4,))
    assert cfg.data_dim == 192 and cfg.conv_channels == (4,)
    assert CVAEConfig(arch="conv").conv_channels == (32, 64)  # VAEConfig's default for 28x28
    assert isinstance(CVAEConfig(gaussian_logvar=1).gaussian_logvar, float)


# ------------------------------------------------------------------------------------------ the label is used


def _label_changes_decode(model: CVAE) -> bool:
    """For one fixed z, do the K decodes differ from each other? (every pair, by more than rounding)"""
    k = model.config.n_classes
    z = torch.randn(1, model.config.latent_dim, generator=torch.Generator().manual_seed(0)).expand(k, -1)
    out = model.decode(z, torch.arange(k)).flatten(1)
    gaps = torch.cdist(out, out) + torch.eye(k) * 1e9  # (K, K) distances between decodes, diagonal ignored
    return bool(gaps.min() > 1e-3)


def _label_changes_encode(model: CVAE) -> bool:
    k = model.config.n_classes
    x = images(model.config, 1).expand(k, *model.config.input_shape)
    mu, logvar = model.encode(x, torch.arange(k))
    gaps = torch.cdist(torch.cat([mu, logvar], 1), torch.cat([mu, logvar], 1)) + torch.eye(k) * 1e9
    return bool(gaps.min() > 1e-4)


class _DecoderIgnoresLabel(CVAE):
    def decode(self, z, y):
        return super().decode(z, torch.zeros_like(y))


class _EncoderIgnoresLabel(CVAE):
    def encode(self, x, y):
        return super().encode(x, torch.zeros_like(y))


@pytest.mark.parametrize("arch", ["mlp", "conv"])
def test_the_label_changes_the_decode_and_the_encode(arch):
    model = new_cvae(dataclasses.replace(SMALL, arch=arch))
    assert _label_changes_decode(model), "decode(z, y) should differ across labels for a fixed z"
    assert _label_changes_encode(model), "encode(x, y) should differ across labels for a fixed x"


def test_the_checks_catch_a_model_that_ignores_the_label():
    torch.manual_seed(0)
    assert not _label_changes_decode(_DecoderIgnoresLabel(SMALL))
    torch.manual_seed(0)
    assert not _label_changes_encode(_EncoderIgnoresLabel(SMALL))


def test_mlp_conditioning_is_a_one_hot_concatenated_to_the_input():
    """With no hidden layer each map is linear in [input, one_hot(y)]: the label adds its column of W."""
    cfg = CVAEConfig(input_shape=(1, 3, 2), n_classes=4, latent_dim=2, hidden=())
    model = new_cvae(cfg, dtype=torch.float64)
    x, y = images(cfg, 4, dtype=torch.float64), torch.tensor([2, 0, 3, 1])
    w, b = model.encoder.heads.mu.weight, model.encoder.heads.mu.bias  # (D, 6 + K), (D,)
    mu, _ = model.encode(x, y)
    torch.testing.assert_close(mu, x.flatten(1) @ w[:, :6].T + w[:, 6 + y].T + b, rtol=1e-10, atol=1e-10)
    z = torch.randn(4, 2, dtype=torch.float64)
    w_dec = model.decoder.out.weight  # (C*H*W, D + K)
    diff = (model.decode(z, y) - model.decode(z, torch.zeros_like(y))).flatten(1)
    torch.testing.assert_close(diff, (w_dec[:, 2 + y] - w_dec[:, 2:3]).T, rtol=1e-10, atol=1e-10)


# ------------------------------------------------------------------------------------------ the ELBO


@pytest.mark.parametrize("likelihood", ["bernoulli", "gaussian"])
def test_elbo_terms_match_torch_distributions(likelihood):
    cfg = dataclasses.replace(SMALL, likelihood=likelihood, gaussian_logvar=-1.5)
    model = new_cvae(cfg, dtype=torch.float64)
    x, y = images(cfg, 6, dtype=torch.float64), labels(cfg, 6)
    torch.manual_seed(7)
    t = model.elbo(x, y)
    mu, logvar = model.encode(x, y)
    torch.manual_seed(7)  # the same eps as elbo's reparameterization
    z = mu + torch.exp(0.5 * logvar) * torch.randn(mu.shape, dtype=torch.float64)
    x_params = model.decode(z, y)
    if likelihood == "bernoulli":
        log_px = Bernoulli(logits=x_params).log_prob(x).sum((1, 2, 3))
    else:
        log_px = Normal(x_params, math.exp(0.5 * -1.5)).log_prob(x).sum((1, 2, 3))
    q = Independent(Normal(mu, torch.exp(0.5 * logvar)), 1)
    p = Independent(Normal(torch.zeros_like(mu), torch.ones_like(mu)), 1)
    kl = kl_divergence(q, p)
    torch.testing.assert_close(t.recon, -log_px, rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(t.kl, kl, rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(t.elbo, -(t.recon + t.kl), rtol=0, atol=0)
    torch.testing.assert_close(t.loss, (t.recon + t.kl).mean(), rtol=1e-12, atol=1e-12)


def test_loss_terms_weight_and_free_bits_change_the_loss_only():
    model = new_cvae(dtype=torch.float64)
    batch = Batch(images(SMALL, 8, dtype=torch.float64), labels(SMALL, 8))
    torch.manual_seed(3)
    plain = model.loss_terms(batch)
    torch.manual_seed(3)
    weighted = model.loss_terms(batch, LossWeights(kl=0.25))
    torch.manual_seed(3)
    free = model.loss_terms(batch, LossWeights(kl=0.5, free_bits=2.0))
    for out in (weighted, free):
        assert out.terms.keys() == {"recon", "kl"}
        for name in ("recon", "kl"):
            torch.testing.assert_close(out.terms[name], plain.terms[name], rtol=0, atol=0)
        torch.testing.assert_close(out.elbo, -(plain.terms["recon"] + plain.terms["kl"]), rtol=0, atol=0)
    recon, kl = plain.terms["recon"], plain.terms["kl"]
    torch.testing.assert_close(plain.loss, recon.mean() + kl.mean(), rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(weighted.loss, recon.mean() + 0.25 * kl.mean(), rtol=1e-12, atol=1e-12)
    mu, logvar = model.encode(batch.x, batch.y)
    kl_per_dim = -0.5 * (1 + logvar - mu**2 - logvar.exp())  # (B, D)
    charged = kl_per_dim.mean(0).clamp(min=2.0).sum()  # sum_j max(lambda, mean_b KL_bj)
    assert charged > kl.mean()  # the free bits are binding here, so the check below can tell
    torch.testing.assert_close(free.loss, recon.mean() + 0.5 * charged, rtol=1e-12, atol=1e-12)


def test_loss_terms_and_fit_refuse_batches_without_labels():
    model = new_cvae()
    with pytest.raises(ValueError, match=r"a CVAE trains on labelled batches.*load_mnist"):
        model.loss_terms(Batch(images(SMALL, 4)))
    with pytest.raises(ValueError, match=r"a CVAE trains on labelled batches"):
        fit(model, images(SMALL, 8), config=TrainConfig(epochs=1, progress=False))


# ------------------------------------------------------------------------------------------ training


def bars(n: int, seed: int) -> Dataset:
    """8x8 binary images: label k in 0..3 is a horizontal bar on rows 2k, 2k+1 whose length (2..8, the
    "style") is random; each pixel is flipped with probability 0.02."""
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, 4, (n,), generator=g)
    length = torch.randint(2, 9, (n,), generator=g)
    rows = torch.arange(8)[None, :, None] // 2 == y[:, None, None]  # (N, 8, 1)
    cols = torch.arange(8)[None, None, :] < length[:, None, None]  # (N, 1, 8)
    x = (rows & cols).float()
    flip = torch.rand(x.shape, generator=g) < 0.02
    return Dataset(torch.where(flip, 1 - x, x)[:, None], y, "bars")


def test_fit_trains_it_on_labelled_data_and_evaluate_reads_the_labels(tmp_path):
    train, test = bars(200, seed=0), bars(100, seed=1)
    cfg = CVAEConfig(input_shape=(1, 8, 8), n_classes=4, latent_dim=2, hidden=(64,))
    model = new_cvae(cfg)
    before = evaluate(model, test)
    history = fit(model, train, test, TrainConfig(epochs=3, batch_size=10, lr=1e-2, progress=False))
    after = evaluate(model, test)
    assert len(history) == 3
    for split in ("train", "test"):
        assert set(history.terms(split)) == {"recon", "kl", "elbo"}
        assert all(math.isfinite(v) for v in history.terms(split)["elbo"])
    assert after["elbo"] == pytest.approx(history.test_elbo[-1])
    assert after["elbo"] == pytest.approx(-(after["recon"] + after["kl"]))
    assert -after["elbo"] < -before["elbo"] - 15, f"3 epochs should lower the test -ELBO: {-before['elbo']:.1f} -> {-after['elbo']:.1f}"
    # It learned to read the label: the wrong label (k + 1 mod 4) costs many nats (about 45 here).
    wrong = evaluate(model, Dataset(test.images, (test.labels + 1) % 4, "bars-wrong"))
    assert wrong["elbo"] < after["elbo"] - 20, f"wrong labels: {wrong['elbo']:.1f} vs right labels: {after['elbo']:.1f}"

    path = save_checkpoint(tmp_path / "cvae.pt", model, extra={"history": history.as_dict()})
    back, extra = load_checkpoint(path, device="cpu")
    assert isinstance(back, CVAE) and back.config == cfg and extra["history"]["test_elbo"] == history.test_elbo
    z = torch.randn(4, 2)
    torch.testing.assert_close(back.sample_with(z, [0, 1, 2, 3]), model.sample_with(z, [0, 1, 2, 3]), rtol=0, atol=0)


# ------------------------------------------------------------------------------------------ checkpoints


def test_a_conv_gaussian_cvae_round_trips_through_a_checkpoint(tmp_path):
    cfg = CVAEConfig(input_shape=(2, 8, 8), n_classes=5, latent_dim=3, hidden=(8,), arch="conv", channels=(4, 6),
                     likelihood="gaussian", gaussian_logvar=-2.0)
    model = new_cvae(cfg).eval()
    back, _ = load_checkpoint(save_checkpoint(tmp_path / "c.pt", model), device="cpu")
    assert type(back) is CVAE and back.config == cfg
    x, y = images(cfg, 3), torch.tensor([4, 0, 2])
    for a, b in zip(model.encode(x, y), back.encode(x, y)):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    torch.testing.assert_close(back.reconstruct(x, y), model.reconstruct(x, y), rtol=0, atol=0)


def test_load_checkpoint_finds_the_cvae_without_importing_it_first(tmp_path):
    model = new_cvae().eval()
    path = save_checkpoint(tmp_path / "m.pt", model)
    z = torch.randn(3, 2, generator=torch.Generator().manual_seed(0))
    script = (
        "import sys, torch\n"
        "from vae_core.train import load_checkpoint\n"
        "assert 'vae_core.cvae' not in sys.modules, 'the test must not import vae_core.cvae first'\n"
        f"model, _ = load_checkpoint({str(path)!r}, device='cpu')\n"
        "assert type(model).__name__ == 'CVAE'\n"
        "z = torch.randn(3, 2, generator=torch.Generator().manual_seed(0))\n"
        f"torch.save(model.sample_with(z, [2, 0, 1]), {str(tmp_path / 'out.pt')!r})\n"
    )
    run_fresh(script)
    got = torch.load(tmp_path / "out.pt", weights_only=True)
    torch.testing.assert_close(got, model.sample_with(z, [2, 0, 1]), rtol=0, atol=0)


# ------------------------------------------------------------------------------------------ sampling


def test_sample_is_decoding_standard_normal_codes_and_is_seeded():
    model = new_cvae().eval()
    out = model.sample([0, 2, 2, 1], generator=torch.Generator().manual_seed(5))
    assert out.shape == (4, 1, 8, 8) and 0 <= out.min() and out.max() <= 1
    again = model.sample(torch.tensor([0, 2, 2, 1]), generator=torch.Generator().manual_seed(5))
    torch.testing.assert_close(again, out, rtol=0, atol=0)
    other = model.sample([0, 2, 2, 1], generator=torch.Generator().manual_seed(6))
    assert (other - out).abs().max() > 1e-3
    z = torch.randn(4, 2, generator=torch.Generator().manual_seed(5))  # z ~ N(0, I) from the same stream
    torch.testing.assert_close(model.sample_with(z, [0, 2, 2, 1]), out, rtol=0, atol=0)


def test_sample_with_is_the_sigmoid_of_decode_and_reconstruct_decodes_mu():
    model = new_cvae().eval()
    z, y = torch.randn(5, 2), torch.tensor([0, 1, 2, 1, 0])
    torch.testing.assert_close(model.sample_with(z, y), torch.sigmoid(model.decode(z, y)), rtol=0, atol=0)
    x = images(SMALL, 5)
    mu, _ = model.encode(x, y)
    torch.testing.assert_close(model.reconstruct(x, y), torch.sigmoid(model.decode(mu, y)), rtol=0, atol=0)
    gauss = new_cvae(dataclasses.replace(SMALL, likelihood="gaussian")).eval()
    torch.testing.assert_close(gauss.sample_with(z, y), gauss.decode(z, y).clamp(0, 1), rtol=0, atol=0)


# ------------------------------------------------------------------------------------------ log-likelihood

TINY = CVAEConfig(input_shape=(1, 2, 2), n_classes=2, latent_dim=1, hidden=(3,))


def _tiny() -> tuple[CVAE, torch.Tensor, torch.Tensor]:
    model = new_cvae(TINY, seed=1, dtype=torch.float64).eval()
    with torch.no_grad():
        for p in model.decoder.parameters():
            p.mul_(3.0)  # a decoder that depends strongly on z, so q is far from the posterior
    x = torch.tensor([[1.0, 0, 1, 1], [0, 0, 1, 0], [1, 1, 1, 1], [0, 1, 0, 0]], dtype=torch.float64).view(4, 1, 2, 2)
    return model, x, torch.tensor([0, 1, 1, 0])


@pytest.fixture(scope="module")
def tiny():
    """The tiny model, its 4 examples, and log p(x|y) and the ELBO by quadrature over its 1-D latent."""
    model, x, y = _tiny()
    grid = torch.linspace(-10, 10, 20001, dtype=torch.float64)  # (G,)
    dz = (grid[1] - grid[0]).item()
    with torch.no_grad():
        z = grid.repeat_interleave(4)[:, None]  # (G*B, 1): z_0 for every example, then z_1, ...
        log_px_z = model.log_px_given_z(x.repeat(len(grid), 1, 1, 1), model.decode(z, y.repeat(len(grid)))).view(-1, 4)
        mu, logvar = model.encode(x, y)  # (B, 1) each
    # log p(x|y) = log int p(x|z, y) N(z; 0, 1) dz ~= logsumexp_g [log p(x|z_g, y) + log N(z_g)] + log dz
    log_px = torch.logsumexp(log_px_z + Normal(0.0, 1.0).log_prob(grid)[:, None], 0) + math.log(dz)
    # ELBO = int q(z|x, y) log p(x|z, y) dz - KL(q || N(0, 1)), the KL from torch.distributions
    q = Normal(mu[:, 0], torch.exp(0.5 * logvar[:, 0]))  # batch (B,)
    expected_log_px_z = (q.log_prob(grid[:, None]).exp() * log_px_z).sum(0) * dz
    elbo = expected_log_px_z - kl_divergence(q, Normal(0.0, 1.0))
    return model, x, y, log_px, elbo


def test_iwae_estimate_tightens_from_the_elbo_to_log_p_x_given_y(tiny):
    model, x, y, log_px, elbo = tiny
    assert (log_px - elbo).min() > 0.1, "q is not the posterior, so the ELBO should lie strictly below log p(x|y)"
    iwae = model.log_likelihood(x, y, k=20000, batch_k=5000, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(iwae, log_px, rtol=0, atol=0.05)
    r = 200  # repeats of each example, so E[estimate] is measured, not one draw
    k100 = model.log_likelihood(x.repeat(r, 1, 1, 1), y.repeat(r), k=100, generator=torch.Generator().manual_seed(1))
    k100 = k100.view(r, 4)
    mean, se = k100.mean(0), k100.std(0) / math.sqrt(r)
    assert (mean < log_px + 4 * se).all(), f"IWAE is a lower bound: {mean.tolist()} vs log p(x|y) {log_px.tolist()}"
    closed = (mean - elbo) / (log_px - elbo)  # fraction of the ELBO's gap that k = 100 closes
    assert (closed > 0.8).all(), f"k=100 closes only {closed.tolist()} of the gap"


def test_k1_and_the_elbo_are_the_exact_elbo_in_expectation(tiny):
    model, x, y, _, elbo = tiny
    n = 4000
    xs, ys = x.repeat(n, 1, 1, 1), y.repeat(n)
    one = model.log_likelihood(xs, ys, k=1, generator=torch.Generator().manual_seed(0)).view(n, 4)
    torch.manual_seed(1)
    mc = model.elbo(xs, ys).elbo.view(n, 4)  # one-sample recon, closed-form KL
    for name, est in (("log_likelihood(k=1)", one), ("elbo", mc)):
        se = est.std(0) / math.sqrt(n)
        assert ((est.mean(0) - elbo).abs() < 4 * se).all(), (
            f"{name}: mean {est.mean(0).tolist()} vs exact ELBO {elbo.tolist()}, standard errors {se.tolist()}")
    assert (one - mc).abs().max() > 0.1  # two different estimators (one-sample log q - log p vs the analytic KL)


def test_log_likelihood_refuses_bad_k():
    model, x, y = _tiny()
    with pytest.raises(ValueError, match="k must be a positive int, got 0"):
        model.log_likelihood(x, y, k=0)
    with pytest.raises(ValueError, match="batch_k must be a positive int or None, got 0"):
        model.log_likelihood(x, y, k=4, batch_k=0)


# ------------------------------------------------------------------------------------------ bad input


@pytest.mark.parametrize("y, match", [
    (torch.tensor([0.0, 1.0, 2.0, 0.0]), r"labels must be an integer tensor .*got dtype torch.float32; convert with y.long\(\)"),
    (torch.tensor([True, False, True, False]), r"labels must be an integer tensor .*torch.bool"),
    (torch.tensor([[0], [1], [2], [0]]), r"labels must have shape \(4,\), one per example, got \(4, 1\); flatten it with y.view\(-1\)"),
    (torch.tensor([0, 1, 2]), r"labels must have shape \(4,\), one per example, got \(3,\)"),
    (torch.tensor([0, 1, 3, 0]), r"labels must lie in \[0, 3\) for n_classes=3, got min 0 and max 3"),
    (torch.tensor([0, -1, 2, 0]), r"labels must lie in \[0, 3\) for n_classes=3, got min -1"),
    ([0, 1, 2, 0], r"labels must be a torch.Tensor of ints"),
])
def test_bad_labels_are_explained(y, match):
    model = new_cvae()
    x, z = images(SMALL, 4), torch.zeros(4, 2)
    with pytest.raises(ValueError, match=match):
        model.encode(x, y)
    with pytest.raises(ValueError, match=match):
        model.decode(z, y)
    with pytest.raises(ValueError, match=match):
        model.elbo(x, y)


def test_one_hot_and_sample_refuse_bad_labels():
    model = new_cvae()
    with pytest.raises(ValueError, match=r"labels must have shape \(B,\), got \(\)"):
        model.one_hot(torch.tensor(1))
    with pytest.raises(ValueError, match=r"labels must lie in \[0, 3\)"):
        model.one_hot(torch.tensor([5]))
    with pytest.raises(ValueError, match="at least one label"):
        model.sample([])
    with pytest.raises(ValueError, match="at least one label"):
        model.sample(torch.tensor([], dtype=torch.long))
    with pytest.raises(ValueError, match=r"labels must be a \(n,\) int tensor or a list of ints, got int"):
        model.sample(3)
    with pytest.raises(ValueError, match="integer tensor"):
        model.sample([0.5, 1.0])
    with pytest.raises(ValueError, match=r"labels must lie in \[0, 3\)"):
        model.sample_with(torch.zeros(2, 2), [0, 3])


def test_bad_images_and_codes_are_explained():
    model = new_cvae()
    y = torch.tensor([0, 1])
    with pytest.raises(ValueError, match=r"expected images of shape \(B, 1, 8, 8\), got \(2, 1, 28, 28\)"):
        model.encode(torch.zeros(2, 1, 28, 28), y)
    with pytest.raises(ValueError, match=r"expected images of shape \(B, 1, 8, 8\), got \(2, 64\)"):
        model.reconstruct(torch.zeros(2, 64), y)
    with pytest.raises(ValueError, match=r"expected z of shape \(B, 2\), got \(2, 3\)"):
        model.decode(torch.zeros(2, 3), y)
    with pytest.raises(ValueError, match=r"expected z of shape \(B, 2\), got \(2, 12\)"):
        model.sample_with(torch.zeros(2, 12), y)


@pytest.mark.parametrize("kwargs, match", [
    (dict(n_classes=0), r"n_classes must be a positive int .*got 0"),
    (dict(n_classes=2.0), r"n_classes must be a positive int .*got 2.0"),
    (dict(n_classes=True), r"n_classes must be a positive int .*got True"),
    (dict(latent_dim=0), r"latent_dim must be a positive int, got 0"),
    (dict(hidden=(400, 0)), r"hidden must be a tuple of positive ints"),
    (dict(arch="rnn"), r"arch must be 'mlp' or 'conv', got 'rnn'"),
    (dict(channels=(32,)), r"channels is only used by arch='conv'"),
    (dict(arch="conv", input_shape=(1, 10, 10)), r"arch='conv' has default channels for 8x8, 28x28, 64x64"),
    (dict(arch="conv", input_shape=(1, 12, 12), channels=(4, 4, 4)), r"must be divisible by 8"),
    (dict(likelihood="poisson"), r"likelihood must be 'bernoulli' or 'gaussian', got 'poisson'"),
    (dict(gaussian_logvar=float("nan")), r"gaussian_logvar must be a finite float"),
    (dict(input_shape=(28, 28)), r"input_shape must be \(C, H, W\)"),
])
def test_config_refuses_bad_values(kwargs, match):
    with pytest.raises(ValueError, match=match):
        CVAEConfig(**kwargs)


def test_cvae_wants_a_cvae_config():
    with pytest.raises(ValueError, match="expected a CVAEConfig, got VAEConfig"):
        CVAE(VAEConfig())
