"""Tests for vae_core.diagnostics: rate and distortion, KL per dimension, the active-units monitor,
and the beta sweep.

References are computed independently: the rate with ``torch.distributions.kl_divergence``, the
distortion with ``torch.distributions.Bernoulli`` / ``Normal`` log-probabilities on the same
noise (drawn here from a generator with the same seed), the ELBO with ``vae_core.losses.elbo``.
Tolerances: rtol 1e-5 / atol 1e-6 where float32 network outputs meet float64 sums (float32 has
~7 significant digits; sums over 64 pixels lose about one), exact equality where the two
numbers come from the same arithmetic. The only statistical claims (rate falls as beta rises, a
tiny VAE uses some of its latent dimensions) are about seeded, deterministic runs whose margins
are printed in the asserts.
"""
from __future__ import annotations

import math
from dataclasses import replace

import pytest
import torch
from torch import nn
from torch.distributions import Bernoulli, Normal, kl_divergence

from vae_core import losses
from vae_core.diagnostics import (
    ActiveUnitsMonitor,
    RDPoint,
    beta_sweep,
    kl_per_dim,
    linear_gaussian_rates,
    rate_distortion,
    rate_distortion_per_example,
)
from vae_core.metrics import EVAL_BINARIZE_SEED
from vae_core.models import VAE, AutoEncoder, VAEConfig
from vae_core.train import TrainConfig, fit

SHAPE = (1, 4, 4)


def _vae(likelihood="bernoulli", latent_dim=3, seed=0, **kw) -> VAE:
    torch.manual_seed(seed)
    return VAE(VAEConfig(input_shape=SHAPE, latent_dim=latent_dim, hidden=(16,), likelihood=likelihood, **kw))


def _images(n=10, seed=0) -> torch.Tensor:
    return torch.rand(n, *SHAPE, generator=torch.Generator().manual_seed(seed))


class PriorEncoderVAE(VAE):
    """A VAE whose encoder ignores x: q(z|x) = N(0, I) = p(z), the fully collapsed posterior."""

    def encode(self, x):
        mu, logvar = super().encode(x)
        return 0 * mu, 0 * logvar


class KnownPosteriorVAE(VAE):
    """mu(x) = [10 * mean(x), 0, 0.01 * x_0, mean(x) + 1], logvar(x) = [-1, 0, 0.5, -2] (D = 4)."""

    LOGVAR = torch.tensor([-1.0, 0.0, 0.5, -2.0])

    def __init__(self):
        super().__init__(VAEConfig(input_shape=SHAPE, latent_dim=4, hidden=(8,)))
        self.batch_sizes: list[int] = []

    def encode(self, x):
        self.batch_sizes.append(x.shape[0])
        flat = x.flatten(1)  # (B, C, H, W) -> (B, CHW)
        m = flat.mean(1)
        mu = torch.stack([10 * m, torch.zeros_like(m), 0.01 * flat[:, 0], m + 1], dim=1)
        return mu, self.LOGVAR.expand_as(mu).clone()


class FakeDataset:
    def __init__(self, images, binarize=None):
        self.images, self.binarize = images, binarize


# ----------------------------------------------------------------------------- rate and distortion
def _reference(model: VAE, x: torch.Tensor, n_samples: int, seed: int):
    """Rate and distortion per example with torch.distributions, independent of the library."""
    with torch.no_grad():
        mu, logvar = model.encode(x)
        q = Normal(mu.double(), torch.exp(0.5 * logvar.double()))
        rate = kl_divergence(q, Normal(0.0, 1.0)).sum(-1)  # (N,)
        eps = torch.randn((x.shape[0], n_samples, mu.shape[1]), generator=torch.Generator().manual_seed(seed))
        log_px = []
        for s in range(n_samples):
            z = mu + torch.exp(0.5 * logvar) * eps[:, s]  # (N, D)
            out = model.decode(z)
            if model.config.likelihood == "bernoulli":
                p = Bernoulli(logits=out.double(), validate_args=False)  # grey x: -BCE, as the library
            else:
                p = Normal(out.double(), math.exp(0.5 * model.config.gaussian_logvar))
            log_px.append(p.log_prob(x.double()).sum((1, 2, 3)))  # (N,)
        distortion = -torch.stack(log_px).mean(0)
    return rate, distortion


@pytest.mark.parametrize("likelihood, n_samples", [("bernoulli", 1), ("bernoulli", 3), ("gaussian", 2)])
def test_rate_and_distortion_match_torch_distributions(likelihood, n_samples):
    kw = {"gaussian_logvar": -1.5} if likelihood == "gaussian" else {}
    model, x = _vae(likelihood, **kw), _images(10)
    rd = rate_distortion_per_example(model, x, n_samples=n_samples, seed=3, batch_size=4)
    rate, distortion = _reference(model, x, n_samples, seed=3)
    assert rd.rate.shape == rd.distortion.shape == rd.elbo.shape == (10,)
    torch.testing.assert_close(rd.rate, rate, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(rd.distortion, distortion, rtol=1e-5, atol=1e-6)
    assert (rd.rate > 0).all() and (rd.distortion != 0).all()  # a non-trivial comparison


def test_a_float64_model_gets_float64_noise():
    model, x = _vae().double(), _images(5).double()
    rd = rate_distortion_per_example(model, x, n_samples=2, seed=6)
    with torch.no_grad():
        mu, logvar = model.encode(x)
        eps = torch.randn((5, 2, 3), generator=torch.Generator().manual_seed(6), dtype=torch.float64)
        z = mu[:, None] + torch.exp(0.5 * logvar)[:, None] * eps  # (N, S, D)
        logits = model.decode(z.reshape(10, 3))
        ref = -Bernoulli(logits=logits, validate_args=False).log_prob(x.repeat_interleave(2, 0)).sum((1, 2, 3)).view(5, 2).mean(1)
    # float64 all the way: agreement to rounding (float32 noise would differ by ~1e-7 relative)
    torch.testing.assert_close(rd.distortion, ref, rtol=1e-12, atol=1e-12)


def test_elbo_is_minus_rate_plus_distortion_and_matches_losses_elbo():
    model, x = _vae(), _images(6)
    rd = rate_distortion_per_example(model, x, seed=5)
    assert torch.equal(rd.elbo, -(rd.rate + rd.distortion))
    # the library's ELBO on the same z sample: ELBO = E_q log p(x|z) - KL
    with torch.no_grad():
        mu, logvar = model.encode(x)
        eps = torch.randn((6, 1, 3), generator=torch.Generator().manual_seed(5))[:, 0]
        z = mu + torch.exp(0.5 * logvar) * eps
        ref = losses.elbo(x, model.decode(z), mu, logvar).elbo
    torch.testing.assert_close(rd.elbo, ref.double(), rtol=1e-5, atol=1e-5)


def test_bits_are_nats_over_ln2_and_summary_is_the_mean():
    model, x = _vae(), _images(7)
    nats = rate_distortion_per_example(model, x, seed=1)
    bits = rate_distortion_per_example(model, x, unit="bits", seed=1)
    for a, b in zip(nats, bits):
        torch.testing.assert_close(b, a / math.log(2.0), rtol=1e-12, atol=0)
    default = rate_distortion_per_example(model, x).distortion  # seed 0 by default
    torch.testing.assert_close(default, _reference(model, x, 1, seed=0)[1], rtol=1e-5, atol=1e-6)
    summary = rate_distortion(model, x, unit="bits", seed=1)
    assert summary == {"rate": float(bits.rate.mean()), "distortion": float(bits.distortion.mean()),
                       "elbo": float(bits.elbo.mean())}


def test_seeded_and_independent_of_batch_size():
    model, x = _vae(), _images(9)
    a = rate_distortion_per_example(model, x, n_samples=2, seed=4, batch_size=2)
    b = rate_distortion_per_example(model, x, n_samples=2, seed=4, batch_size=100)
    torch.testing.assert_close(a.distortion, b.distortion, rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(a.rate, b.rate, rtol=1e-6, atol=1e-9)
    c = rate_distortion_per_example(model, x, n_samples=2, seed=5, batch_size=2)
    assert not torch.allclose(a.distortion, c.distortion)  # another seed, other z samples
    assert torch.equal(a.rate, c.rate)  # the rate is in closed form: no sampling


def test_dynamic_dataset_is_binarized_once_with_the_eval_seed():
    model, x = _vae(), _images(8)
    got = rate_distortion_per_example(model, FakeDataset(x, "dynamic"), seed=2)
    xb = torch.bernoulli(x, generator=torch.Generator().manual_seed(EVAL_BINARIZE_SEED))
    torch.testing.assert_close(got.distortion, _reference(model, xb, 1, seed=2)[1], rtol=1e-5, atol=1e-6)


def test_rate_distortion_runs_in_eval_mode_and_restores_it():
    model, x = _vae(), _images(4)
    seen = []
    for part in (model.encoder, model.decoder):
        part.register_forward_pre_hook(lambda m, a: seen.append((m.training, torch.is_grad_enabled())))
    model.train()
    rate_distortion(model, x)  # encoder and decoder
    kl_per_dim(model, x)  # encoder
    assert len(seen) == 3 and all(s == (False, False) for s in seen), seen
    assert model.training


@pytest.mark.parametrize(
    "kw, match",
    [
        ({"unit": "bytes"}, r"unit must be 'nats' or 'bits', got 'bytes'"),
        ({"n_samples": 0}, r"n_samples must be a positive int .* got 0"),
        ({"seed": -1}, r"seed must be a non-negative int .* got -1"),
        ({"seed": 1.5}, r"seed must be a non-negative int .* got 1.5"),
        ({"batch_size": 0}, r"batch_size must be a positive int .* got 0"),
    ],
)
def test_rate_distortion_refuses_bad_arguments(kw, match):
    with pytest.raises(ValueError, match=match):
        rate_distortion_per_example(_vae(), _images(3), **kw)


def test_rate_needs_a_gaussian_encoder():
    ae = AutoEncoder(VAEConfig(input_shape=SHAPE, latent_dim=3, hidden=(8,)))
    with pytest.raises(ValueError, match=r"must return \(mu, logvar\) .* got Tensor; .* not a plain AutoEncoder"):
        rate_distortion(ae, _images(3))
    with pytest.raises(ValueError, match=r"not a plain AutoEncoder"):
        kl_per_dim(ae, _images(2))  # two examples: a (2, D) code must not pass for a (mu, logvar) pair

    class Flat(VAE):
        def encode(self, x):
            mu, logvar = super().encode(x)
            return mu, logvar[:, :2]

    with pytest.raises(ValueError, match=r"mu and logvar of the same shape \(B, D\), got \(3, 3\) and \(3, 2\)"):
        rate_distortion(Flat(VAEConfig(input_shape=SHAPE, latent_dim=3, hidden=(8,))), _images(3))


# ----------------------------------------------------------------------------- KL per dimension
def test_kl_per_dim_matches_torch_distributions_and_sums_to_the_rate():
    model, x = _vae(latent_dim=4), _images(11)
    got = kl_per_dim(model, x, batch_size=3)
    with torch.no_grad():
        mu, logvar = model.encode(x)
    ref = kl_divergence(Normal(mu.double(), torch.exp(0.5 * logvar.double())), Normal(0.0, 1.0)).mean(0)  # (D,)
    assert got.shape == (4,) and got.dtype == torch.float64
    torch.testing.assert_close(got, ref, rtol=1e-5, atol=1e-7)
    assert float(got.sum()) == pytest.approx(rate_distortion(model, x, batch_size=3)["rate"], rel=1e-12)
    torch.testing.assert_close(kl_per_dim(model, x, unit="bits"), ref / math.log(2.0), rtol=1e-5, atol=1e-7)


def test_a_posterior_equal_to_the_prior_has_zero_kl_and_no_active_units():
    model, x = PriorEncoderVAE(VAEConfig(input_shape=SHAPE, latent_dim=5, hidden=(8,))), _images(12)
    assert torch.equal(kl_per_dim(model, x), torch.zeros(5, dtype=torch.float64))
    assert rate_distortion(model, x)["rate"] == 0.0
    monitor = ActiveUnitsMonitor(x)
    monitor(1, model, None)
    assert monitor.active_counts() == [0]
    assert torch.equal(monitor.kl_matrix(), torch.zeros(1, 5, dtype=torch.float64))


def test_known_posterior_means_give_the_right_counts_and_kl():
    model, x = KnownPosteriorVAE(), _images(10)
    flat = x.flatten(1).double()
    mu = torch.stack([10 * flat.mean(1), torch.zeros(10), 0.01 * flat[:, 0], flat.mean(1) + 1], 1)
    lv = KnownPosteriorVAE.LOGVAR.double()
    ref_kl = (0.5 * (mu.square() + lv.exp() - 1 - lv)).mean(0)  # KL(N(mu, e^lv) || N(0, 1)) by hand
    var = mu.var(0, correction=0)
    assert var[0] > 0.01 and var[1] == 0 and var[2] < 0.01 and var[3] < 0.01  # premise: only dim 0 moves enough
    monitor = ActiveUnitsMonitor(x, n=None, batch_size=4)
    monitor(7, model, None)
    (row,) = monitor.rows
    assert row.epoch == 7 and row.active_units == 1
    torch.testing.assert_close(row.kl_per_dim, ref_kl, rtol=1e-5, atol=1e-7)
    torch.testing.assert_close(row.variances, var.float(), rtol=1e-4, atol=1e-9)
    assert model.batch_sizes == [4, 4, 2] * 2  # active units, then KL per dim, each in batches of batch_size
    # threshold 0 counts every dimension whose mean moves at all (dims 0, 2, 3); the callback never stops fit
    zero = ActiveUnitsMonitor(x, threshold=0.0)
    assert zero(1, model) is None
    assert zero.active_counts() == [3]


# ----------------------------------------------------------------------------- monitor during fit
def test_monitor_records_one_row_per_epoch_in_fit_and_does_not_change_training():
    torch.manual_seed(0)
    train, test = (torch.rand(64, *SHAPE) > 0.5).float(), (torch.rand(32, *SHAPE) > 0.5).float()
    config = TrainConfig(epochs=3, batch_size=16, progress=False, eval_batch_size=32)
    plain = fit(_vae(latent_dim=4), train, test, config)
    model = _vae(latent_dim=4)
    monitor = ActiveUnitsMonitor(test, n=20)
    history = fit(model, train, test, config, callbacks=[monitor])
    assert history.test_elbo == plain.test_elbo  # observing is free: same RNG stream, same weights
    assert len(monitor) == 3 and [r.epoch for r in monitor.rows] == [1, 2, 3]
    assert monitor.kl_matrix().shape == (3, 4)
    assert not torch.equal(monitor.rows[0].kl_per_dim, monitor.rows[2].kl_per_dim)  # recorded as training moved
    assert monitor.images.shape[0] == 20
    torch.testing.assert_close(monitor.rows[-1].kl_per_dim, kl_per_dim(model, test[:20]))
    d = monitor.as_dict()
    assert d["epoch"] == [1, 2, 3] and d["active_units"] == monitor.active_counts()
    assert len(d["kl_per_dim"]) == 3 and len(d["kl_per_dim"][0]) == 4 and len(d["variances"][2]) == 4


def test_an_empty_monitor_is_still_truthy():
    m = ActiveUnitsMonitor(torch.rand(4, 1, 2, 2))
    assert len(m) == 0 and bool(m)  # `[m] if m else []` once dropped a fresh monitor


def test_monitor_refuses_bad_arguments():
    with pytest.raises(ValueError, match=r"at least 2 examples .* got 1"):
        ActiveUnitsMonitor(_images(5), n=1)
    with pytest.raises(ValueError, match=r"n must be a positive int .* got 0"):
        ActiveUnitsMonitor(_images(5), n=0)
    with pytest.raises(ValueError, match=r"threshold must be a number >= 0 .* got -1"):
        ActiveUnitsMonitor(_images(5), threshold=-1)
    with pytest.raises(ValueError, match=r"threshold must be a number >= 0 .* got True"):
        ActiveUnitsMonitor(_images(5), threshold=True)
    with pytest.raises(ValueError, match=r"threshold must be a number >= 0 .* got '0.01'"):
        ActiveUnitsMonitor(_images(5), threshold="0.01")
    assert ActiveUnitsMonitor(_images(5), n=2).images.shape[0] == 2  # two examples are enough for a variance
    assert ActiveUnitsMonitor(_images(1001)).images.shape[0] == 1000  # the first 1000 by default
    with pytest.raises(ValueError, match=r"batch_size must be a positive int .* got 0"):
        ActiveUnitsMonitor(_images(5), batch_size=0)
    with pytest.raises(ValueError, match=r"recorded nothing yet; pass it to fit"):
        ActiveUnitsMonitor(_images(5)).kl_matrix()


# ----------------------------------------------------------------------------- beta sweep
def test_beta_sweep_trains_one_model_per_beta_from_the_same_start():
    torch.manual_seed(1)
    train, test = (torch.rand(128, *SHAPE) > 0.5).float(), (torch.rand(32, *SHAPE) > 0.5).float()
    config = TrainConfig(epochs=4, batch_size=32, lr=1e-2, progress=False, eval_batch_size=32, seed=3)
    starts = []

    def make_model():
        m = VAE(VAEConfig(input_shape=SHAPE, latent_dim=3, hidden=(16,)))
        starts.append({k: v.clone() for k, v in m.state_dict().items()})
        return m

    points = beta_sweep(make_model, train, test, config, [0.1, 8.0], n_samples=2, seed=1)
    assert [p.beta for p in points] == [0.1, 8.0] and all(isinstance(p, RDPoint) for p in points)
    assert all(torch.equal(starts[0][k], starts[1][k]) for k in starts[0])  # the same initial weights
    assert points[0].model is not points[1].model
    for p in points:
        assert p.rate == pytest.approx(rate_distortion(p.model, test, n_samples=2, seed=1)["rate"], rel=1e-12)
        assert p.distortion == pytest.approx(rate_distortion(p.model, test, n_samples=2, seed=1)["distortion"], rel=1e-12)
        assert p.elbo == pytest.approx(-(p.rate + p.distortion), rel=1e-12)
        assert len(p.history.epoch) == 4 and math.isfinite(p.history.test_elbo[-1])  # fit saw the test set
    # beta = 8 charges the KL 80 times more than beta = 0.1: after 4 epochs its rate is far lower
    assert points[1].rate < 0.5 * points[0].rate, [(p.rate, p.distortion) for p in points]
    # deterministic: a second sweep gives the same numbers
    again = beta_sweep(make_model, train, test, config, [0.1], n_samples=2, seed=1)
    assert (again[0].rate, again[0].distortion) == (points[0].rate, points[0].distortion)
    # evaluated on train when there is no test set
    (on_train,) = beta_sweep(make_model, train, None, replace(config, epochs=1), [0.0], unit="bits")  # beta 0 is allowed
    assert on_train.beta == 0.0
    want = rate_distortion(on_train.model, train, unit="bits")  # and the defaults are rate_distortion's: 1 sample, seed 0
    assert (on_train.rate, on_train.distortion) == pytest.approx((want["rate"], want["distortion"]), rel=1e-12)


@pytest.mark.parametrize(
    "args, match",
    [
        ({"make_model": None}, r"make_model must be a function returning a fresh model, got NoneType"),
        ({"config": {"epochs": 1}}, r"config must be a vae_core.train.TrainConfig, got dict"),
        ({"betas": []}, r"betas must be a non-empty list of KL weights .* got \[\]"),
        ({"betas": "1.0"}, r"betas must be a non-empty list"),
        ({"betas": [1.0, -0.5]}, r"every beta must be a finite number >= 0, got -0.5"),
        ({"betas": [float("nan")]}, r"every beta must be a finite number >= 0, got nan"),
        ({"betas": [True]}, r"every beta must be a finite number >= 0, got True"),
        ({"unit": "bytes"}, r"unit must be 'nats' or 'bits'"),
    ],
)
def test_beta_sweep_refuses_bad_arguments(args, match):
    calls = []
    kw = {"make_model": lambda: calls.append(1) or _vae(), "train": _images(4), "test": None,
          "config": TrainConfig(epochs=1, progress=False), "betas": [1.0]}
    kw.update(args)
    with pytest.raises(ValueError, match=match):
        beta_sweep(**kw)
    assert calls == []  # refused before any training


# ----------------------------------------------------------------------------- linear_gaussian_rates
def _ppca_optimum(lam: torch.Tensor, u: torch.Tensor, sigma2: float) -> torch.Tensor:
    """Tipping & Bishop's maximum-likelihood W = U (Lambda - sigma2 I)^(1/2), unused columns zero."""
    return u * (lam - sigma2).clamp(min=0).sqrt()


def _expected_log_lik(w: torch.Tensor, cov: torch.Tensor, sigma2: float) -> float:
    """E_{x ~ N(0, cov)} log N(x; 0, W W^T + sigma2 I), exactly."""
    s = w @ w.T + sigma2 * torch.eye(len(cov), dtype=cov.dtype)
    return -0.5 * (len(cov) * math.log(2 * math.pi) + torch.logdet(s) + torch.trace(torch.linalg.solve(s, cov))).item()


def test_linear_gaussian_rates_match_the_exact_ppca_posterior_averaged_over_data():
    g = torch.Generator().manual_seed(0)
    lam = torch.tensor([5.0, 2.0, 0.9, 0.5, 0.3, 0.0], dtype=torch.float64)
    u, _ = torch.linalg.qr(torch.randn(6, 6, generator=g, dtype=torch.float64))
    cov, sigma2 = u @ torch.diag(lam) @ u.T, 0.5
    w = _ppca_optimum(lam, u, sigma2)
    # the optimum really is one: random nudges of W lower the expected log-likelihood
    best = _expected_log_lik(w, cov, sigma2)
    for _ in range(20):
        assert _expected_log_lik(w + 0.05 * torch.randn(6, 6, generator=g, dtype=torch.float64), cov, sigma2) < best
    # the exact posterior q(z|x) = N(M^-1 W^T x, sigma2 M^-1), M = W^T W + sigma2 I, for x ~ N(0, cov)
    m = w.T @ w + sigma2 * torch.eye(6, dtype=torch.float64)
    x = (torch.randn(200_000, 6, generator=g, dtype=torch.float64) * lam.sqrt()) @ u.T   # covariance U Lambda U^T
    mean = x @ torch.linalg.solve(m, w.T).T
    std = (sigma2 * torch.linalg.inv(m).diagonal()).sqrt()       # M is diagonal here: one latent per direction
    kl = kl_divergence(Normal(mean, std), Normal(0.0, 1.0)).mean(0)   # Monte Carlo over the data
    rates = linear_gaussian_rates(lam, sigma2)
    assert rates.dtype == torch.float64 and rates.shape == (6,)
    torch.testing.assert_close(rates, kl, rtol=0.0, atol=0.01)   # MC standard error ~ 0.003 nats
    assert rates[3:].eq(0).all() and rates[2] > 0                 # 0.5 = sigma2 is not used, 0.9 is


def test_linear_gaussian_rates_units_shapes_and_bad_input():
    lam = torch.tensor([[4.0, 1.0], [-1e-12, 0.25]])
    torch.testing.assert_close(linear_gaussian_rates(lam, 0.25), torch.tensor([[0.5 * math.log(16.0), 0.5 * math.log(4.0)], [0.0, 0.0]]))
    torch.testing.assert_close(linear_gaussian_rates(lam, 0.25, unit="bits"), torch.tensor([[2.0, 1.0], [0.0, 0.0]]))
    with pytest.raises(ValueError, match="sigma2 must be a finite float > 0"):
        linear_gaussian_rates(lam, 0.0)
    with pytest.raises(ValueError, match="eigenvalues must be a float tensor"):
        linear_gaussian_rates([4.0, 1.0], 1.0)
