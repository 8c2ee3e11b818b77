"""Learned priors (vae_core.priors): the mixture and the VampPrior against torch.distributions, the
Monte Carlo KL against closed forms and independent estimates, the PriorVAE against models.VAE when its
prior is N(0, I), the holes measure against exact cases, training, checkpoints and errors.

Tolerances:
- float64 comparisons with torch.distributions and hand-written mixtures: the same sums in another
  order, so rtol 1e-10 (1e-12 relative for log-densities near -1e6 at far-away z);
- statistical comparisons (sample moments, the mean of many one-sample KL estimates, the Monte Carlo
  KLs and hole fraction of prior_gap): |estimate - exact| < 4 standard errors, the standard error
  measured from the same samples (for two independent estimates, sqrt(se_1^2 + se_2^2)); a correct
  model fails one comparison with probability about 6e-5. Every test is seeded, so it is also
  deterministic: the 4-SE band only says what a change of seed may do;
- sample moments: 5 standard errors, since one test makes 9 such comparisons (3 means, 6 covariances);
- training: "the prior moved" is a change of more than 1e-3 in some prior parameter after 2 epochs
  at lr 1e-3 (about 8 Adam steps of size ~1e-3 each move it by ~1e-2; a prior left out of the
  optimiser moves by exactly 0).
"""
from __future__ import annotations

import dataclasses
import math

import pytest
import torch
from torch.distributions import Bernoulli, Categorical, Independent, MixtureSameFamily, Normal

from vae_core import losses, priors
from vae_core.data import load_mnist
from vae_core.models import VAE, VAEConfig
from vae_core.priors import (
    MixturePrior,
    PriorVAE,
    PriorVAEConfig,
    VampPrior,
    aggregate_log_prob,
    prior_gap,
    prior_log_prob,
)
from vae_core.train import TrainConfig, fit, load_checkpoint, save_checkpoint

from fresh_process import run_fresh  # tests/ is on the path, as for nb_helpers

SMALL = PriorVAEConfig(input_shape=(1, 8, 8), latent_dim=2, hidden=(16,), components=3)
F64 = torch.float64


@pytest.fixture(autouse=True)
def no_tqdm_monitor(monkeypatch):
    """No tqdm monitor thread: in a forked process (mutmut's test runner) it can hang the exit."""
    import tqdm

    monkeypatch.setattr(tqdm.tqdm, "monitor_interval", 0)


def new_model(config: PriorVAEConfig = SMALL, seed: int = 0, dtype: torch.dtype = F64) -> PriorVAE:
    torch.manual_seed(seed)
    return PriorVAE(config).to(dtype).eval()


def images(b: int, shape=(1, 8, 8), seed: int = 0, dtype: torch.dtype = F64) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.bernoulli(torch.rand((b, *shape), generator=g, dtype=dtype), generator=g)


def set_mixture(prior: MixturePrior, means, logvars, logits) -> None:
    with torch.no_grad():
        prior.means.copy_(torch.as_tensor(means))
        prior.logvars.copy_(torch.as_tensor(logvars))
        prior.logits.copy_(torch.as_tensor(logits))


def random_mixture(k: int = 4, d: int = 3, seed: int = 0) -> MixturePrior:
    g = torch.Generator().manual_seed(seed)
    prior = MixturePrior(d, k).to(F64)
    set_mixture(prior, 3 * torch.randn(k, d, generator=g, dtype=F64), torch.randn(k, d, generator=g, dtype=F64),
                torch.randn(k, generator=g, dtype=F64))
    return prior


def reference(means, logvars, logits) -> MixtureSameFamily:
    """The same mixture built by torch.distributions."""
    return MixtureSameFamily(Categorical(logits=logits), Independent(Normal(means, torch.exp(0.5 * logvars)), 1))


def mixture_moments(weights, means, variances):
    """Exact mean (D,) and covariance (D, D) of sum_k w_k N(m_k, diag v_k)."""
    mean = weights @ means
    second = torch.einsum("k,ki,kj->ij", weights, means, means) + torch.diag(weights @ variances)
    return mean, second - torch.outer(mean, mean)


def assert_moments(z: torch.Tensor, mean: torch.Tensor, cov: torch.Tensor) -> None:
    """Sample mean and covariance of z (n, D) within 5 standard errors (measured from z) of the exact ones."""
    n = z.shape[0]
    m = z.mean(0)
    assert ((m - mean).abs() < 5 * z.std(0) / math.sqrt(n)).all(), f"mean {m} vs exact {mean}"
    c = z - m
    prods = c[:, :, None] * c[:, None, :]  # (n, D, D) per-sample terms of the covariance
    emp = prods.mean(0)
    assert ((emp - cov).abs() < 5 * prods.std(0) / math.sqrt(n)).all(), f"covariance {emp} vs exact {cov}"


class FixedPosteriors(torch.nn.Module):
    """A stand-in VAE: q(z|x_n) = N(mu[n], diag exp(logvar[n])) for the n-th image (its first pixel holds n)."""

    def __init__(self, mu: torch.Tensor, logvar: torch.Tensor) -> None:
        super().__init__()
        self.register_buffer("mu", mu)
        self.register_buffer("logvar", logvar)
        self.unused = torch.nn.Parameter(torch.zeros(1, dtype=mu.dtype))

    def encode(self, x):
        n = x[:, 0, 0, 0].round().long()
        return self.mu[n], self.logvar[n]


def indexed_images(n: int) -> torch.Tensor:
    """(n, 1, 2, 2) images whose first pixel is the index n (for FixedPosteriors)."""
    x = torch.zeros(n, 1, 2, 2, dtype=F64)
    x[:, 0, 0, 0] = torch.arange(n, dtype=F64)
    return x


# ------------------------------------------------------------------------------------------ the mixture prior


@pytest.mark.parametrize("batch", [(), (5,), (2, 3)])
def test_mixture_log_prob_matches_torch_distributions(batch):
    prior = random_mixture()
    z = 4 * torch.randn(*batch, 3, generator=torch.Generator().manual_seed(1), dtype=F64)
    ref = reference(prior.means.detach(), prior.logvars.detach(), prior.logits.detach())
    got = prior.log_prob(z)
    assert got.shape == batch
    torch.testing.assert_close(got, ref.log_prob(z), rtol=1e-10, atol=1e-10)


def test_mixture_log_prob_is_finite_far_from_every_component():
    prior = random_mixture()
    ref = reference(prior.means.detach(), prior.logvars.detach(), prior.logits.detach())
    z = torch.tensor([[1e3, -1e3, 1e3], [0.0, 0.0, 5e2], [-2e3, 0.0, 0.0]], dtype=F64)
    got = prior.log_prob(z)
    assert torch.isfinite(got).all() and (got < -1e4).all()  # every exp(log N) underflows to 0 here
    torch.testing.assert_close(got, ref.log_prob(z), rtol=1e-12, atol=0)
    # float32 as well: logsumexp keeps it finite where log(sum(exp)) would give -inf
    assert torch.isfinite(prior.float().log_prob(z.float())).all()


def test_mixture_sample_moments_and_seeding():
    prior = random_mixture()
    w = torch.softmax(prior.logits.detach(), 0)
    mean, cov = mixture_moments(w, prior.means.detach(), prior.logvars.detach().exp())
    z = prior.sample(200_000, generator=torch.Generator().manual_seed(0))
    assert z.shape == (200_000, 3) and z.dtype == F64 and not z.requires_grad
    assert_moments(z, mean, cov)
    a, b = (prior.sample(5, generator=torch.Generator().manual_seed(3)) for _ in range(2))
    torch.testing.assert_close(a, b, rtol=0, atol=0)


def test_mixture_init_is_spread_seeded_and_leaves_the_global_stream_alone():
    torch.manual_seed(0)
    before = torch.get_rng_state()
    a = MixturePrior(2, 10, init_scale=2.0)
    assert torch.equal(torch.get_rng_state(), before)
    torch.testing.assert_close(a.means, MixturePrior(2, 10, init_scale=2.0).means, rtol=0, atol=0)
    assert not torch.equal(a.means, MixturePrior(2, 10, init_scale=2.0, seed=1).means)
    assert torch.pdist(a.means.detach()).min() > 0.05  # distinct components
    assert 1.0 < a.means.detach().std() < 4.0  # N(0, 2^2) draws
    torch.testing.assert_close(a.log_weights().exp(), torch.full((10,), 0.1))


# ------------------------------------------------------------------------------------------ the Monte Carlo KL


def repeated(model: PriorVAE, b: int):
    """One image repeated b times, and its posterior (mu, logvar) (D,)."""
    x = images(1).expand(b, -1, -1, -1)
    mu, logvar = model.encode(x[:1])
    return x, mu[0].detach(), logvar[0].detach()


@torch.no_grad()
def test_monte_carlo_kl_is_unbiased_against_the_closed_form():
    model = new_model(dataclasses.replace(SMALL, components=1))
    set_mixture(model.prior, [[0.7, -0.4]], [[-0.5, 0.8]], [0.0])
    x, mu, logvar = repeated(model, 20_000)
    kl = model.elbo(x, generator=torch.Generator().manual_seed(0)).kl  # 20,000 one-sample estimates
    exact = losses.kl_diag_gaussians(mu, logvar, model.prior.means[0], model.prior.logvars[0])
    se = kl.std() / math.sqrt(kl.numel())
    assert abs(kl.mean() - exact) < 4 * se, f"mean MC KL {kl.mean():.4f} +- {se:.4f} vs closed form {exact:.4f}"
    # one sample of it can be negative (the docstring says so): with q close to p it often is
    set_mixture(model.prior, mu[None], logvar[None] + 0.1, [0.0])
    assert (model.elbo(x[:1000], generator=torch.Generator().manual_seed(1)).kl < 0).any()


@torch.no_grad()
def test_monte_carlo_kl_against_a_mixture_matches_an_independent_estimate():
    model = new_model()
    set_mixture(model.prior, [[2.0, 0.0], [-1.0, 1.5], [0.0, -2.0]], [[-1.0, 0.0], [0.5, -0.5], [0.0, 0.0]], [0.5, 0.0, -1.0])
    x, mu, logvar = repeated(model, 20_000)
    kl = model.elbo(x, generator=torch.Generator().manual_seed(0)).kl
    # independent: z ~ q by torch.distributions, log q(z) - log p(z) with its Normal and MixtureSameFamily
    q = Independent(Normal(mu, torch.exp(0.5 * logvar)), 1)
    p = reference(model.prior.means, model.prior.logvars, model.prior.logits)
    torch.manual_seed(123)
    zs = q.sample((200_000,))
    ref = q.log_prob(zs) - p.log_prob(zs)
    se = math.sqrt(kl.var() / kl.numel() + ref.var() / ref.numel())
    assert abs(kl.mean() - ref.mean()) < 4 * se, f"{kl.mean():.4f} vs {ref.mean():.4f} (se {se:.4f})"
    assert ref.mean() > 1.0  # far enough from q for the comparison to mean something


# ------------------------------------------------------------------------------------------ PriorVAE vs VAE


def standard_normal_pair(likelihood: str = "bernoulli"):
    """A PriorVAE whose one-component prior is frozen at N(0, I), and a models.VAE with the same weights."""
    cfg = dataclasses.replace(SMALL, components=1, likelihood=likelihood)
    model = new_model(cfg)
    set_mixture(model.prior, torch.zeros(1, 2), torch.zeros(1, 2), torch.zeros(1))
    model.prior.requires_grad_(False)
    vae = VAE(cfg.vae_config).to(F64).eval()
    vae.load_state_dict({k: v for k, v in model.state_dict().items() if not k.startswith("prior.")})
    return model, vae


@pytest.mark.parametrize("likelihood", ["bernoulli", "gaussian"])
def test_a_standard_normal_prior_gives_the_vaes_log_likelihood(likelihood):
    model, vae = standard_normal_pair(likelihood)
    x = images(6)
    a = model.log_likelihood(x, k=50, batch_k=7, generator=torch.Generator().manual_seed(0))
    b = vae.log_likelihood(x, k=50, batch_k=7, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-10)


@torch.no_grad()
def test_a_standard_normal_prior_gives_the_vaes_elbo_in_expectation():
    model, vae = standard_normal_pair()
    x = images(1).expand(20_000, -1, -1, -1)
    torch.manual_seed(0)
    ours = model.elbo(x)
    torch.manual_seed(0)
    theirs = vae.elbo(x)  # closed-form KL, the same z (the same global stream)
    torch.testing.assert_close(ours.recon, theirs.recon, rtol=0, atol=0)
    se = ours.elbo.std() / math.sqrt(ours.elbo.numel())
    assert abs(ours.elbo.mean() - theirs.elbo.mean()) < 4 * se
    torch.testing.assert_close(ours.elbo, -ours.recon - ours.kl, rtol=0, atol=0)
    torch.testing.assert_close(ours.loss, ours.recon.mean() + ours.kl.mean(), rtol=1e-12, atol=0)
    half = model.elbo(x[:10], beta=0.5, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(half.loss, half.recon.mean() + 0.5 * half.kl.mean(), rtol=1e-12, atol=0)


def test_log_likelihood_weighs_with_the_learned_prior():
    """IWAE by hand with torch.distributions: log w = log p(x|z) + log p_mix(z) - log q(z|x), same noise."""
    model = new_model()
    set_mixture(model.prior, [[1.0, 0.0], [-1.0, 1.0], [0.0, -1.5]], [[-1.0, 0.0], [0.5, -0.5], [0.0, 0.3]], [0.5, 0.0, -1.0])
    x, k = images(4), 30
    got = model.log_likelihood(x, k=k, batch_k=k, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        mu, logvar = model.encode(x)
        eps = torch.randn((k, *mu.shape), generator=torch.Generator().manual_seed(0), dtype=F64)
        z = mu + torch.exp(0.5 * logvar) * eps  # (k, B, D)
        logits = model.decode(z.reshape(-1, 2)).view(k, 4, 1, 8, 8)
        log_px = Independent(Bernoulli(logits=logits), 3).log_prob(x.expand(k, -1, -1, -1, -1))
        log_pz = reference(model.prior.means, model.prior.logvars, model.prior.logits).log_prob(z)
        log_qz = Independent(Normal(mu, torch.exp(0.5 * logvar)), 1).log_prob(z)
        ref = torch.logsumexp(log_px + log_pz - log_qz, 0) - math.log(k)
    torch.testing.assert_close(got, ref, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("prior", ["mog", "vamp"])
@pytest.mark.parametrize("arch", ["mlp", "conv"])
def test_shapes(arch, prior):
    cfg = PriorVAEConfig(input_shape=(1, 8, 8), latent_dim=3, hidden=(8,), arch=arch, prior=prior, components=4)
    model = new_model(cfg, dtype=torch.float32)
    x = images(5, dtype=torch.float32)
    t = model.elbo(x)
    assert t.recon.shape == t.kl.shape == t.elbo.shape == (5,) and t.loss.shape == ()
    assert model.log_likelihood(x, k=3).shape == (5,)
    assert model.prior.log_prob(torch.randn(2, 5, 3)).shape == (2, 5)
    out = model.sample(6, generator=torch.Generator().manual_seed(0))
    assert out.shape == (6, 1, 8, 8) and 0 <= out.min() and out.max() <= 1


@torch.no_grad()
def test_sample_decodes_draws_from_the_learned_prior():
    model = new_model()
    z = model.prior.sample(4, generator=torch.Generator().manual_seed(5))
    got = model.sample(4, generator=torch.Generator().manual_seed(5))
    torch.testing.assert_close(got, torch.sigmoid(model.decode(z)), rtol=0, atol=0)
    far = new_model()
    set_mixture(far.prior, torch.full((3, 2), 50.0), torch.full((3, 2), -10.0), torch.zeros(3))
    assert (far.prior.sample(100) - 50).abs().max() < 0.1  # drawn from the prior, not from N(0, I)


# ------------------------------------------------------------------------------------------ the VampPrior


def vamp_model() -> PriorVAE:
    model = new_model(dataclasses.replace(SMALL, prior="vamp", components=4))
    with torch.no_grad():  # some pixels outside [0, 1], so the clamp matters
        model.prior.pseudo_inputs.copy_(2 * torch.rand(4, 1, 8, 8, generator=torch.Generator().manual_seed(0), dtype=F64) - 0.5)
    return model


@torch.no_grad()
def test_vamp_log_prob_is_the_mixture_of_the_encoders_posteriors_at_the_pseudo_inputs():
    model = vamp_model()
    mu, logvar = model.encode(model.prior.pseudo_inputs.clamp(0, 1))  # (K, D) by hand
    ref = reference(mu, logvar, torch.zeros(4, dtype=F64))
    z = 3 * torch.randn(7, 2, generator=torch.Generator().manual_seed(1), dtype=F64)
    torch.testing.assert_close(model.prior.log_prob(z), ref.log_prob(z), rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(model.log_prior(z), ref.log_prob(z), rtol=1e-10, atol=1e-10)
    mean, cov = mixture_moments(torch.full((4,), 0.25, dtype=F64), mu, logvar.exp())
    assert_moments(model.prior.sample(200_000, generator=torch.Generator().manual_seed(0)), mean, cov)


def test_vamp_shares_the_encoder_and_trains_its_pseudo_inputs():
    model = vamp_model()
    assert [k for k in model.state_dict() if k.startswith("prior.")] == ["prior.pseudo_inputs"]  # encoder saved once
    model.elbo(images(3)).loss.backward()
    assert model.prior.pseudo_inputs.grad.abs().sum() > 0  # the pseudo-inputs get a gradient through log p(z)
    init = torch.rand(4, 1, 8, 8, dtype=F64)
    prior = VampPrior(model.encode, (1, 8, 8), 4, init=init)
    torch.testing.assert_close(prior.pseudo_inputs.detach(), init, rtol=0, atol=0)
    default = VampPrior(model.encode, (1, 8, 8), 4)
    assert (default.pseudo_inputs - 0.5).abs().max() < 0.1  # N(0.5, 0.01^2)


# ------------------------------------------------------------------------------------------ the holes measure


@pytest.mark.parametrize("chunk", [2**23, 7])
def test_aggregate_log_prob_matches_torch_distributions(chunk, monkeypatch):
    monkeypatch.setattr(priors, "_CHUNK", chunk)  # 7: one row of z at a time
    g = torch.Generator().manual_seed(0)
    mu, logvar = torch.randn(50, 3, generator=g, dtype=F64), torch.randn(50, 3, generator=g, dtype=F64) - 1
    z = torch.cat([2 * torch.randn(11, 3, generator=g, dtype=F64), torch.full((1, 3), 300.0, dtype=F64)])
    ref = reference(mu, logvar, torch.zeros(50, dtype=F64)).log_prob(z)
    got = aggregate_log_prob(mu, logvar, z)
    assert got.shape == (12,) and torch.isfinite(got).all()
    torch.testing.assert_close(got, ref, rtol=1e-10, atol=1e-10)


def test_prior_log_prob_reads_each_models_prior():
    z = torch.randn(4, 2, dtype=F64)
    vae = VAE(SMALL.vae_config).to(F64)
    torch.testing.assert_close(prior_log_prob(vae, z), Independent(Normal(torch.zeros(2, dtype=F64), 1.0), 1).log_prob(z))
    model = new_model()
    set_mixture(model.prior, torch.randn(3, 2), torch.randn(3, 2), torch.randn(3))
    torch.testing.assert_close(prior_log_prob(model, z), model.prior.log_prob(z), rtol=0, atol=0)


def constant_posteriors(n: int, mu, logvar) -> FixedPosteriors:
    return FixedPosteriors(torch.tensor(mu, dtype=F64).expand(n, -1).clone(), torch.tensor(logvar, dtype=F64).expand(n, -1).clone())


def test_prior_gap_is_zero_when_every_posterior_is_the_prior():
    gap = prior_gap(constant_posteriors(300, [0.0, 0.0], [0.0, 0.0]), indexed_images(300), n_data=200, n_samples=500,
                    generator=torch.Generator().manual_seed(0))
    assert gap["n_data"] == 200 and gap["n_samples"] == 500
    for key in ("kl_agg_prior", "kl_prior_agg", "hole_fraction"):
        assert abs(gap[key]) < 1e-9, gap  # q_agg = N(0, I) = p exactly: every Monte Carlo term is 0


def test_prior_gap_is_zero_when_the_learned_prior_is_the_aggregate_posterior():
    model = new_model(dataclasses.replace(SMALL, components=5))
    x = images(5)
    with torch.no_grad():
        model.encoder.heads.mu.bias += 3.0  # posteriors near (3, 3), far from N(0, I)
        mu, logvar = model.encode(x)
    set_mixture(model.prior, mu, logvar, torch.zeros(5))  # p = (1/5) sum_n q(z|x_n) = q_agg
    gap = prior_gap(model, x, generator=torch.Generator().manual_seed(0))
    for key in ("kl_agg_prior", "kl_prior_agg", "hole_fraction"):
        assert abs(gap[key]) < 1e-6, gap
    plain = VAE(SMALL.vae_config).to(F64)
    plain.load_state_dict({k: v for k, v in model.state_dict().items() if not k.startswith("prior.")})
    assert prior_gap(plain, x, generator=torch.Generator().manual_seed(0))["kl_prior_agg"] > 5  # N(0, I) is not q_agg


@pytest.mark.parametrize("learned", [False, True])
def test_prior_gap_against_closed_forms_for_one_shifted_gaussian(learned):
    """Every posterior N(m, s^2 I), so q_agg = N(m, s^2 I) exactly; the prior is N(0, I) (a VAE) or one learned
    Gaussian (a PriorVAE whose encoder's heads are set to constants). Both KLs then have closed forms, and the
    hole fraction P_{z ~ p}[q_agg(z) < p(z) / 10] is estimated independently with torch.distributions."""
    m, lv = torch.tensor([1.0, -0.5], dtype=F64), torch.tensor([-0.7, 0.3], dtype=F64)
    if learned:
        model, x = new_model(dataclasses.replace(SMALL, components=1)), images(100)
        mp, lvp = torch.tensor([-0.5, 0.8], dtype=F64), torch.tensor([0.4, -0.2], dtype=F64)
        set_mixture(model.prior, mp[None], lvp[None], [0.0])
        with torch.no_grad():
            for head, bias in ((model.encoder.heads.mu, m), (model.encoder.heads.logvar, lv)):
                head.weight.zero_()
                head.bias.copy_(bias)
    else:
        model, x = constant_posteriors(100, m.tolist(), lv.tolist()), indexed_images(100)
        mp, lvp = torch.zeros(2, dtype=F64), torch.zeros(2, dtype=F64)
    gap = prior_gap(model, x, n_samples=20_000, generator=torch.Generator().manual_seed(0))
    for key, exact in (("kl_agg_prior", losses.kl_diag_gaussians(m, lv, mp, lvp)),
                       ("kl_prior_agg", losses.kl_diag_gaussians(mp, lvp, m, lv))):
        assert abs(gap[key] - exact) < 4 * gap[key + "_se"], f"{key}: {gap[key]:.4f} +- {gap[key + '_se']:.4f} vs {exact:.4f}"
    torch.manual_seed(1)
    p, q = Independent(Normal(mp, torch.exp(0.5 * lvp)), 1), Independent(Normal(m, torch.exp(0.5 * lv)), 1)
    z = p.sample((1_000_000,))
    ref = (q.log_prob(z) < p.log_prob(z) - math.log(10)).double().mean()
    se = math.sqrt(gap["hole_fraction_se"] ** 2 + ref * (1 - ref) / 1e6)
    assert 0.1 < ref < 0.9 and abs(gap["hole_fraction"] - ref) < 4 * se, f"{gap['hole_fraction']:.4f} vs {ref:.4f}"


def test_prior_gap_is_large_for_posteriors_far_from_the_prior():
    g = torch.Generator().manual_seed(0)
    fake = FixedPosteriors(8.0 + 0.3 * torch.randn(200, 2, generator=g, dtype=F64), torch.full((200, 2), -4.0, dtype=F64))
    gap = prior_gap(fake, indexed_images(200), generator=g)
    assert gap["kl_agg_prior"] > 30 and gap["kl_prior_agg"] > 30 and gap["hole_fraction"] == 1.0, gap


# ------------------------------------------------------------------------------------------ training and checkpoints


@pytest.mark.parametrize("prior", ["mog", "vamp"])
def test_fit_trains_the_prior_with_the_rest(prior):
    train = load_mnist("train", limit=512)
    torch.manual_seed(0)
    model = PriorVAE(PriorVAEConfig(latent_dim=2, hidden=(64,), prior=prior, components=5))
    before = {n: p.detach().clone() for n, p in model.prior.named_parameters()}
    history = fit(model, train, config=TrainConfig(epochs=2, batch_size=128, progress=False, device="cpu"))
    assert set(history.terms("train")) == {"recon", "kl", "elbo"}
    assert all(math.isfinite(v) for v in history.terms("train")["elbo"])
    assert history.terms("train")["elbo"][1] > history.terms("train")["elbo"][0]
    moved = max((p.detach() - before[n]).abs().max().item() for n, p in model.prior.named_parameters())
    assert moved > 1e-3, f"the prior's parameters moved by at most {moved:.2e}"
    with pytest.raises(ValueError, match="free_bits must be 0 for a PriorVAE"):
        fit(model, train, config=TrainConfig(epochs=1, free_bits=0.5, progress=False, device="cpu"))


def test_checkpoint_round_trip_in_a_fresh_process(tmp_path):
    model = new_model(dtype=torch.float32)
    set_mixture(model.prior, torch.randn(3, 2), torch.randn(3, 2), torch.randn(3))
    path = save_checkpoint(tmp_path / "m.pt", model)
    script = (
        "import sys, torch\n"
        "from vae_core.train import load_checkpoint\n"
        "assert 'vae_core.priors' not in sys.modules, 'the test must not import vae_core.priors first'\n"
        f"model, _ = load_checkpoint({str(path)!r}, device='cpu')\n"
        "assert type(model).__name__ == 'PriorVAE'\n"
        f"torch.save(model.sample(5, generator=torch.Generator().manual_seed(0)), {str(tmp_path / 'out.pt')!r})\n"
    )
    run_fresh(script)
    got = torch.load(tmp_path / "out.pt", weights_only=True)
    torch.testing.assert_close(got, model.sample(5, generator=torch.Generator().manual_seed(0)), rtol=0, atol=0)


def test_a_vamp_prior_vae_round_trips_in_process(tmp_path):
    model = vamp_model().float()
    back, _ = load_checkpoint(save_checkpoint(tmp_path / "v.pt", model), device="cpu")
    assert type(back) is PriorVAE and back.config == model.config and isinstance(back.prior, VampPrior)
    assert back.prior.encode.__self__ is back  # the loaded prior reads the loaded encoder
    z = torch.randn(4, 2)
    torch.testing.assert_close(back.prior.log_prob(z), model.prior.log_prob(z), rtol=0, atol=0)


def test_config_builds_the_vae_config_and_takes_lists():
    cfg = PriorVAEConfig(input_shape=[1, 8, 8], hidden=[32, 16], arch="conv", channels=[4], prior="vamp", components=7)
    assert cfg == PriorVAEConfig(input_shape=(1, 8, 8), hidden=(32, 16), arch="conv", channels=(4,), prior="vamp", components=7)
    assert cfg.vae_config == VAEConfig(input_shape=(1, 8, 8), hidden=(32, 16), arch="conv", channels=(4,))
    assert cfg.data_dim == 64 and cfg.conv_channels == (4,)
    assert isinstance(PriorVAEConfig(gaussian_logvar=1).gaussian_logvar, float)
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.components = 3
    torch.manual_seed(0)
    vae = VAE(cfg.vae_config)
    torch.manual_seed(0)
    model = PriorVAE(cfg)  # same encoder and decoder for the same seed: the prior draws from its own stream
    for k, v in vae.state_dict().items():
        torch.testing.assert_close(model.state_dict()[k], v, rtol=0, atol=0)


# ------------------------------------------------------------------------------------------ errors


def test_errors():
    with pytest.raises(ValueError, match="components must be a positive int"):
        PriorVAEConfig(components=0)
    with pytest.raises(ValueError, match="prior must be 'mog'.*got 'flow'"):
        PriorVAEConfig(prior="flow")
    with pytest.raises(ValueError, match="latent_dim must be a positive int"):
        PriorVAEConfig(latent_dim=0)
    with pytest.raises(ValueError, match="expected a PriorVAEConfig, got VAEConfig"):
        PriorVAE(VAEConfig())
    with pytest.raises(ValueError, match="components must be a positive int"):
        MixturePrior(2, 0)
    with pytest.raises(ValueError, match="init_scale must be a finite number > 0"):
        MixturePrior(2, 3, init_scale=float("nan"))
    with pytest.raises(ValueError, match="components must be a positive int"):
        VampPrior(lambda x: x, (1, 8, 8), 0)
    with pytest.raises(ValueError, match=r"init must be float pseudo-inputs of shape \(4, 1, 8, 8\).*got \(3, 1, 8, 8\)"):
        VampPrior(lambda x: x, (1, 8, 8), 4, init=torch.rand(3, 1, 8, 8))
    prior = MixturePrior(2, 3)
    with pytest.raises(ValueError, match=r"expected z of shape \(\.\.\., 2\).*got \(5, 3\)"):
        prior.log_prob(torch.randn(5, 3))
    with pytest.raises(ValueError, match="z must be a floating-point tensor"):
        prior.log_prob(torch.zeros(5, 2, dtype=torch.long))
    with pytest.raises(ValueError, match="n must be a positive int"):
        prior.sample(0)
    model = new_model()
    with pytest.raises(ValueError, match="free_bits must be 0 for a PriorVAE"):
        model.elbo(images(2), free_bits=0.5)
    with pytest.raises(ValueError, match="beta must be a finite number >= 0"):
        model.elbo(images(2), beta=-1.0)
    with pytest.raises(ValueError, match=r"expected images of shape \(B, 1, 8, 8\)"):
        model.elbo(torch.rand(2, 1, 28, 28, dtype=F64))
    mu = torch.zeros(4, 2)
    with pytest.raises(ValueError, match=r"logvar must have the shape of mu \(4, 2\), got \(4, 3\)"):
        aggregate_log_prob(mu, torch.zeros(4, 3), torch.zeros(5, 2))
    with pytest.raises(ValueError, match=r"expected z of shape \(\.\.\., 2\)"):
        aggregate_log_prob(mu, mu, torch.zeros(5, 3))
    with pytest.raises(ValueError, match="mu holds NaN"):
        aggregate_log_prob(torch.full((4, 2), math.nan), mu, torch.zeros(5, 2))
    with pytest.raises(ValueError, match=r"z must have shape \(M, D\)"):
        aggregate_log_prob(mu, mu, torch.zeros(2))
    nan = FixedPosteriors(torch.full((3, 2), math.nan, dtype=F64), torch.zeros(3, 2, dtype=F64))
    with pytest.raises(ValueError, match="model.encode returned NaN"):
        prior_gap(nan, indexed_images(3))
    with pytest.raises(ValueError, match="n_samples must be an int >= 2"):
        prior_gap(model, images(3), n_samples=1)
    with pytest.raises(ValueError, match="n_data must be a positive int"):
        prior_gap(model, images(3), n_data=0)
    with pytest.raises(ValueError, match="expected a VAE"):
        prior_gap(torch.nn.Linear(2, 2), images(3))
