"""Tests for vae_core.losses against independent references.

Note on tolerances
------------------
* Deterministic comparisons with ``torch.distributions`` are done in float64 with
  ``torch.testing.assert_close`` defaults for float64 (rtol 1e-7, atol 1e-7): the formulas are
  algebraically identical, so only rounding separates them.
* Monte Carlo comparisons are seeded and use **5 standard errors** of the sample mean, with the
  standard error estimated from the same samples (``std / sqrt(n)``). For a correct formula a
  5-SE miss has probability ~6e-7 under the CLT, so the test is not flaky; a wrong formula (e.g.
  a missing factor 0.5 or a dropped log-variance term) shifts the mean by many SEs at these
  sample sizes. Because the generators are seeded the outcome is in fact deterministic.
* ``gradcheck`` runs in float64 with its default eps 1e-6, atol 1e-5, rtol 1e-3.
"""
from __future__ import annotations

import math

import pytest
import torch
from torch.distributions import Bernoulli, Independent, Normal, kl_divergence

from vae_core.losses import (
    ELBOTerms,
    bernoulli_log_prob,
    elbo,
    gaussian_log_prob,
    iwae_bound,
    kl_diag_gaussians,
    kl_standard_normal,
    log_normal_diag,
    log_normal_std,
)

BATCH_SHAPES = [(), (4,), (2, 3)]
D = 5


def _gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _randn(*shape, seed=0, scale=1.0):
    return scale * torch.randn(*shape, generator=_gen(seed), dtype=torch.float64)


def _normal(mu, logvar):
    """Diagonal Gaussian over the last dim as a torch.distributions reference."""
    return Independent(Normal(mu, torch.exp(0.5 * logvar)), 1)


# ----------------------------------------------------------------------------- KL: exact values
def test_kl_is_zero_at_the_prior():
    mu = torch.zeros(3, 7)
    logvar = torch.zeros(3, 7)
    torch.testing.assert_close(kl_standard_normal(mu, logvar), torch.zeros(3), rtol=0, atol=0)


def test_kl_is_two_at_mu_two_in_one_dimension():
    # KL(N(2, 1) || N(0, 1)) = mu^2 / 2 = 2
    kl = kl_standard_normal(torch.tensor([[2.0]]), torch.tensor([[0.0]]))
    torch.testing.assert_close(kl, torch.tensor([2.0]), rtol=0, atol=1e-7)


def test_kl_exact_value_with_variance_only():
    # KL(N(0, e) || N(0, 1)) = 0.5 * (e - 1 - 1) with logvar = 1
    kl = kl_standard_normal(torch.zeros(1, 1, dtype=torch.float64), torch.ones(1, 1, dtype=torch.float64))
    torch.testing.assert_close(kl, torch.tensor([0.5 * (math.e - 2.0)], dtype=torch.float64))


def test_kl_is_nonnegative_on_random_inputs():
    mu = _randn(1000, D, seed=1, scale=3.0)
    logvar = _randn(1000, D, seed=2, scale=3.0)
    assert (kl_standard_normal(mu, logvar) >= 0).all()
    mu_p = _randn(1000, D, seed=3, scale=3.0)
    logvar_p = _randn(1000, D, seed=4, scale=3.0)
    assert (kl_diag_gaussians(mu, logvar, mu_p, logvar_p) >= 0).all()
    # KL(q || q) = 0
    torch.testing.assert_close(kl_diag_gaussians(mu, logvar, mu, logvar), torch.zeros(1000, dtype=torch.float64))


# ----------------------------------------------------------------------------- KL: references
@pytest.mark.parametrize("batch", BATCH_SHAPES)
def test_kl_standard_normal_matches_torch_distributions(batch):
    mu = _randn(*batch, D, seed=10)
    logvar = _randn(*batch, D, seed=11)
    ref = kl_divergence(_normal(mu, logvar), _normal(torch.zeros_like(mu), torch.zeros_like(logvar)))
    out = kl_standard_normal(mu, logvar)
    assert out.shape == batch
    torch.testing.assert_close(out, ref)


@pytest.mark.parametrize("batch", BATCH_SHAPES)
def test_kl_diag_gaussians_matches_torch_distributions(batch):
    mu_q, logvar_q = _randn(*batch, D, seed=20), _randn(*batch, D, seed=21)
    mu_p, logvar_p = _randn(*batch, D, seed=22), _randn(*batch, D, seed=23)
    ref = kl_divergence(_normal(mu_q, logvar_q), _normal(mu_p, logvar_p))
    out = kl_diag_gaussians(mu_q, logvar_q, mu_p, logvar_p)
    assert out.shape == batch
    torch.testing.assert_close(out, ref)


def test_kl_diag_gaussians_with_a_shared_prior_broadcasts():
    mu_q, logvar_q = _randn(6, D, seed=30), _randn(6, D, seed=31)
    mu_p, logvar_p = _randn(D, seed=32), _randn(D, seed=33)  # one prior for the whole batch
    ref = kl_divergence(_normal(mu_q, logvar_q), _normal(mu_p.expand(6, D), logvar_p.expand(6, D)))
    torch.testing.assert_close(kl_diag_gaussians(mu_q, logvar_q, mu_p, logvar_p), ref)


@pytest.mark.parametrize("batch", BATCH_SHAPES)
def test_kl_diag_gaussians_against_standard_prior_equals_kl_standard_normal(batch):
    mu, logvar = _randn(*batch, D, seed=40), _randn(*batch, D, seed=41)
    torch.testing.assert_close(
        kl_diag_gaussians(mu, logvar, torch.zeros_like(mu), torch.zeros_like(logvar)),
        kl_standard_normal(mu, logvar),
    )


def test_kl_matches_a_seeded_monte_carlo_estimate():
    # KL(q || p) = E_q[log q(z) - log p(z)]; 5 standard errors (see the note at the top).
    n = 200_000
    mu_q, logvar_q = _randn(3, D, seed=50), _randn(3, D, seed=51, scale=0.5)
    mu_p, logvar_p = _randn(3, D, seed=52), _randn(3, D, seed=53, scale=0.5)
    eps = torch.randn(n, 3, D, generator=_gen(54), dtype=torch.float64)
    z = mu_q + torch.exp(0.5 * logvar_q) * eps  # (n, 3, D)
    terms = log_normal_diag(z, mu_q, logvar_q) - log_normal_diag(z, mu_p, logvar_p)  # (n, 3)
    mc, se = terms.mean(0), terms.std(0) / math.sqrt(n)
    closed = kl_diag_gaussians(mu_q, logvar_q, mu_p, logvar_p)
    assert ((mc - closed).abs() < 5 * se).all(), (mc, closed, se)

    terms_std = log_normal_diag(z, mu_q, logvar_q) - log_normal_std(z)
    mc, se = terms_std.mean(0), terms_std.std(0) / math.sqrt(n)
    closed = kl_standard_normal(mu_q, logvar_q)
    assert ((mc - closed).abs() < 5 * se).all(), (mc, closed, se)


# ----------------------------------------------------------------------------- log-likelihoods
@pytest.mark.parametrize("batch", BATCH_SHAPES)
def test_log_normal_std_and_diag_match_torch_distributions(batch):
    z, mu, logvar = _randn(*batch, D, seed=60), _randn(*batch, D, seed=61), _randn(*batch, D, seed=62)
    out_std = log_normal_std(z)
    out_diag = log_normal_diag(z, mu, logvar)
    assert out_std.shape == batch and out_diag.shape == batch
    torch.testing.assert_close(out_std, _normal(torch.zeros_like(z), torch.zeros_like(z)).log_prob(z))
    torch.testing.assert_close(out_diag, _normal(mu, logvar).log_prob(z))


def test_log_normal_diag_broadcasts_importance_samples():
    z = _randn(7, 4, D, seed=63)  # (K, B, D)
    mu, logvar = _randn(4, D, seed=64), _randn(4, D, seed=65)  # (B, D)
    out = log_normal_diag(z, mu, logvar)
    assert out.shape == (7, 4)
    torch.testing.assert_close(out, _normal(mu, logvar).log_prob(z))


def test_bernoulli_log_prob_matches_torch_distributions_on_images():
    logits = _randn(4, 1, 3, 3, seed=70, scale=3.0)
    x = torch.bernoulli(torch.full((4, 1, 3, 3), 0.5, dtype=torch.float64), generator=_gen(71))
    out = bernoulli_log_prob(logits, x)
    assert out.shape == (4,)
    torch.testing.assert_close(out, Bernoulli(logits=logits).log_prob(x).sum((1, 2, 3)))


@pytest.mark.parametrize("batch", BATCH_SHAPES)
def test_bernoulli_log_prob_batch_shapes_with_event_dims(batch):
    logits = _randn(*batch, D, seed=72, scale=3.0)
    x = torch.rand(*batch, D, generator=_gen(73), dtype=torch.float64)  # grey values are allowed
    out = bernoulli_log_prob(logits, x, event_dims=1)
    assert out.shape == batch
    # reference: x log sigmoid(l) + (1 - x) log(1 - sigmoid(l)), fine in float64 at these logits
    p = torch.sigmoid(logits)
    torch.testing.assert_close(out, (x * p.log() + (1 - x) * (1 - p).log()).sum(-1))


def test_bernoulli_log_prob_is_finite_and_exact_at_extreme_logits():
    logits = torch.tensor([[100.0, -100.0, 100.0, -100.0]])
    x = torch.tensor([[1.0, 0.0, 0.0, 1.0]])
    out = bernoulli_log_prob(logits, x, event_dims=0)
    assert torch.isfinite(out).all()
    # log sigmoid(100) ~ -e^-100 ~ 0 and log(1 - sigmoid(100)) = -100 - log(1 + e^-100) ~ -100
    torch.testing.assert_close(out, torch.tensor([[0.0, 0.0, -100.0, -100.0]]), rtol=0, atol=1e-5)
    torch.testing.assert_close(out, Bernoulli(logits=logits).log_prob(x))


@pytest.mark.parametrize("batch", BATCH_SHAPES)
def test_gaussian_log_prob_matches_torch_distributions(batch):
    x, mean, logvar = _randn(*batch, D, seed=80), _randn(*batch, D, seed=81), _randn(*batch, D, seed=82)
    out = gaussian_log_prob(x, mean, logvar, event_dims=1)
    assert out.shape == batch
    torch.testing.assert_close(out, Normal(mean, torch.exp(0.5 * logvar)).log_prob(x).sum(-1))


def test_gaussian_log_prob_scalar_and_broadcast_logvar():
    x, mean = _randn(3, 2, 4, 4, seed=83), _randn(3, 2, 4, 4, seed=84)
    # scalar (default 0 = unit variance), python float, 0-d tensor and a per-channel (C, 1, 1) tensor
    ref_unit = Normal(mean, 1.0).log_prob(x).sum((1, 2, 3))
    torch.testing.assert_close(gaussian_log_prob(x, mean), ref_unit)
    ref = Normal(mean, math.exp(0.5 * -1.5)).log_prob(x).sum((1, 2, 3))
    torch.testing.assert_close(gaussian_log_prob(x, mean, -1.5), ref)
    torch.testing.assert_close(gaussian_log_prob(x, mean, torch.tensor(-1.5, dtype=torch.float64)), ref)
    lv = torch.tensor([-1.0, 0.5], dtype=torch.float64).reshape(2, 1, 1)
    ref_c = Normal(mean, torch.exp(0.5 * lv)).log_prob(x).sum((1, 2, 3))
    torch.testing.assert_close(gaussian_log_prob(x, mean, lv), ref_c)


# ----------------------------------------------------------------------------- gradients
def test_gradcheck_kl_terms():
    mu = _randn(3, 4, seed=90).requires_grad_()
    logvar = _randn(3, 4, seed=91).requires_grad_()
    mu_p = _randn(3, 4, seed=92).requires_grad_()
    logvar_p = _randn(3, 4, seed=93).requires_grad_()
    assert torch.autograd.gradcheck(kl_standard_normal, (mu, logvar))
    assert torch.autograd.gradcheck(kl_diag_gaussians, (mu, logvar, mu_p, logvar_p))


def test_gradcheck_log_probs():
    logits = _randn(3, 4, seed=94).requires_grad_()
    x01 = (0.1 + 0.8 * torch.rand(3, 4, generator=_gen(95), dtype=torch.float64)).requires_grad_()
    assert torch.autograd.gradcheck(bernoulli_log_prob, (logits, x01))
    x, mean, logvar = (_randn(3, 4, seed=s).requires_grad_() for s in (96, 97, 98))
    assert torch.autograd.gradcheck(gaussian_log_prob, (x, mean, logvar))
    assert torch.autograd.gradcheck(log_normal_diag, (x, mean, logvar))
    assert torch.autograd.gradcheck(log_normal_std, (x,))
    assert torch.autograd.gradcheck(iwae_bound, (_randn(5, 3, seed=99).requires_grad_(),))


def test_gradcheck_elbo_loss_with_free_bits():
    x = torch.rand(4, 6, generator=_gen(100), dtype=torch.float64)
    logits = _randn(4, 6, seed=101).requires_grad_()
    mu = _randn(4, 3, seed=102).requires_grad_()
    logvar = _randn(4, 3, seed=103).requires_grad_()

    def loss(logits, mu, logvar):
        return elbo(x, logits, mu, logvar, beta=0.7, free_bits=0.05).loss

    assert torch.autograd.gradcheck(loss, (logits, mu, logvar))


# ----------------------------------------------------------------------------- IWAE bound
def test_iwae_bound_is_log_mean_exp():
    log_w = _randn(6, 4, seed=110)
    ref = torch.log(torch.exp(log_w).mean(0))
    torch.testing.assert_close(iwae_bound(log_w), ref)


@pytest.mark.parametrize("batch", BATCH_SHAPES)
def test_iwae_bound_shapes_and_k_equal_one(batch):
    log_w = _randn(1, *batch, seed=111)
    out = iwae_bound(log_w)
    assert out.shape == batch
    torch.testing.assert_close(out, log_w[0])  # K = 1: the single-sample ELBO


def test_iwae_bound_is_stable_for_very_negative_log_weights():
    log_w = torch.tensor([[-1e4, -1e4 - 1.0], [-1e4 + 2.0, -1e4], [-1e4, -1e4 - 3.0]])
    out = iwae_bound(log_w)
    assert torch.isfinite(out).all()
    # shift invariance: L(log_w) = c + L(log_w - c), and the shifted version is safe to exponentiate
    shifted = log_w.double() + 1e4
    ref = torch.log(torch.exp(shifted).mean(0)) - 1e4
    torch.testing.assert_close(out.double(), ref, rtol=0, atol=1e-2)  # float32 spacing at 1e4 is ~1e-3
    # equal weights: the bound is that weight exactly
    torch.testing.assert_close(iwae_bound(torch.full((7, 2), -1e4)), torch.full((2,), -1e4))


# --- a linear-Gaussian model where log p(x) is exact ------------------------------------------
# p(z) = N(0, I_d), p(x|z) = N(W z + b, s^2 I_n)  =>  p(x) = N(b, W W^T + s^2 I).
# W = U diag(sv) with orthonormal U makes W^T W diagonal, so the true posterior
# p(z|x) = N(S W^T (x - b) / s^2, S), S = (I + W^T W / s^2)^-1, is a *diagonal* Gaussian.
def _linear_gaussian(seed=0, n=6, d=2, s=0.5):
    g = _gen(seed)
    U, _ = torch.linalg.qr(torch.randn(n, d, generator=g, dtype=torch.float64))
    sv = torch.tensor([2.0, 1.0], dtype=torch.float64)[:d]
    W = U * sv  # (n, d), W^T W = diag(sv^2)
    b = torch.randn(n, generator=g, dtype=torch.float64)
    x = torch.distributions.MultivariateNormal(b, W @ W.T + s**2 * torch.eye(n, dtype=torch.float64)).sample(
        (3,)
    )  # uses the global RNG: seed it
    return W, b, s, x


@pytest.fixture
def lin_gauss():
    torch.manual_seed(0)
    W, b, s, x = _linear_gaussian()
    n, d = W.shape
    log_px = torch.distributions.MultivariateNormal(b, W @ W.T + s**2 * torch.eye(n, dtype=torch.float64)).log_prob(x)
    var_post = 1.0 / (1.0 + (W**2).sum(0) / s**2)  # (d,)
    mu_post = ((x - b) @ W) / s**2 * var_post  # (B, d)
    return dict(W=W, b=b, s=s, x=x, log_px=log_px, mu_post=mu_post, logvar_post=var_post.log().expand_as(mu_post))


def _log_weights(m, mu_q, logvar_q, K, seed):
    """log w_k = log p(x|z_k) + log p(z_k) - log q(z_k|x), z_k ~ q.  Returns (K, B)."""
    eps = torch.randn(K, *mu_q.shape, generator=_gen(seed), dtype=torch.float64)
    z = mu_q + torch.exp(0.5 * logvar_q) * eps  # (K, B, d)
    mean_x = z @ m["W"].T + m["b"]  # (K, B, n)
    log_px_z = gaussian_log_prob(m["x"].expand_as(mean_x), mean_x, 2 * math.log(m["s"]), event_dims=1)
    return log_px_z + log_normal_std(z) - log_normal_diag(z, mu_q, logvar_q)


def test_true_posterior_gives_log_w_equal_to_exact_log_px(lin_gauss):
    m = lin_gauss
    log_w = _log_weights(m, m["mu_post"], m["logvar_post"], K=5, seed=120)
    # every importance weight equals p(x) exactly when q is the true posterior
    torch.testing.assert_close(log_w, m["log_px"].expand(5, -1))
    torch.testing.assert_close(iwae_bound(log_w), m["log_px"])


def test_elbo_gap_is_kl_to_the_true_posterior(lin_gauss):
    # log p(x) - ELBO(q) = KL(q(z|x) || p(z|x)), with the ELBO's expectation in closed form:
    # E_q[log p(x|z)] = -0.5 [ n log(2 pi s^2) + (||x - W mu - b||^2 + sum_j W_:j^2 v_j) / s^2 ]
    m = lin_gauss
    W, b, s, x = m["W"], m["b"], m["s"], m["x"]
    mu_q = m["mu_post"] + 0.3
    logvar_q = m["logvar_post"] + 0.4
    n = W.shape[0]
    resid = ((x - mu_q @ W.T - b) ** 2).sum(-1) + (logvar_q.exp() * (W**2).sum(0)).sum(-1)
    expected_log_lik = -0.5 * (n * math.log(2 * math.pi * s**2) + resid / s**2)
    elbo_exact = expected_log_lik - kl_standard_normal(mu_q, logvar_q)
    gap = m["log_px"] - elbo_exact
    torch.testing.assert_close(gap, kl_diag_gaussians(mu_q, logvar_q, m["mu_post"], m["logvar_post"]))
    assert (gap > 0).all()


def test_elbo_of_true_posterior_averages_to_log_px(lin_gauss):
    # single-sample ELBO terms are noisy, but their mean is log p(x); 5 standard errors.
    m = lin_gauss
    R = 20_000
    mu, logvar = m["mu_post"], m["logvar_post"]
    eps = torch.randn(R, *mu.shape, generator=_gen(130), dtype=torch.float64)
    z = mu + torch.exp(0.5 * logvar) * eps  # (R, B, d)
    mean_x = z @ m["W"].T + m["b"]
    terms = elbo(
        m["x"].expand_as(mean_x), mean_x, mu.expand_as(z), logvar.expand_as(z),
        likelihood="gaussian", x_logvar=2 * math.log(m["s"]),
    )
    est, se = terms.elbo.mean(0), terms.elbo.std(0) / math.sqrt(R)
    assert ((est - m["log_px"]).abs() < 5 * se).all(), (est, m["log_px"], se)


def test_iwae_bound_is_above_elbo_non_decreasing_in_k_and_converges(lin_gauss):
    # A deliberately poor q (shifted mean, inflated variance). E[L_k] is estimated from R
    # independent repetitions; every comparison allows 5 standard errors of the difference.
    m = lin_gauss
    mu_q, logvar_q = m["mu_post"] + 0.5, m["logvar_post"] + 1.0
    R, ks = 400, [1, 4, 16, 64, 256]
    means, ses = [], []
    for i, k in enumerate(ks):
        log_w = _log_weights(m, mu_q.expand(R, -1, -1), logvar_q.expand(R, -1, -1), K=k, seed=140 + i)  # (k, R, B)
        L = iwae_bound(log_w)  # (R, B)
        means.append(L.mean(0))
        ses.append(L.std(0) / math.sqrt(R))
    log_px = m["log_px"]
    for j in range(1, len(ks)):
        se_diff = torch.sqrt(ses[j] ** 2 + ses[j - 1] ** 2)
        assert (means[j] >= means[j - 1] - 5 * se_diff).all(), (ks[j], means[j], means[j - 1])
        assert (means[j] <= log_px + 5 * ses[j]).all(), (ks[j], means[j], log_px)  # still a lower bound
    gap_1, gap_last = log_px - means[0], log_px - means[-1]
    assert (gap_1 > 1.0).all(), gap_1  # q is poor: the ELBO is far below log p(x) ...
    assert (gap_last.abs() < 0.1 * gap_1).all(), (gap_last, gap_1)  # ... and k = 256 closes 90% of the gap


# ----------------------------------------------------------------------------- ELBO
def _elbo_inputs(B=4, seed=150):
    x = torch.bernoulli(torch.full((B, 1, 4, 4), 0.3), generator=_gen(seed))
    logits = torch.randn(B, 1, 4, 4, generator=_gen(seed + 1))
    mu = torch.randn(B, 3, generator=_gen(seed + 2))
    logvar = 0.5 * torch.randn(B, 3, generator=_gen(seed + 3))
    return x, logits, mu, logvar


def test_elbo_terms_are_recon_kl_and_their_sum():
    x, logits, mu, logvar = _elbo_inputs()
    t = elbo(x, logits, mu, logvar)
    assert isinstance(t, ELBOTerms)
    assert t.recon.shape == t.kl.shape == t.elbo.shape == (4,) and t.loss.shape == ()
    torch.testing.assert_close(t.recon, -Bernoulli(logits=logits).log_prob(x).sum((1, 2, 3)))
    torch.testing.assert_close(t.kl, kl_standard_normal(mu, logvar))
    torch.testing.assert_close(t.elbo, -t.recon - t.kl, rtol=0, atol=0)
    torch.testing.assert_close(t.loss, (t.recon + t.kl).mean())  # beta = 1: loss = -mean ELBO


def test_elbo_gaussian_likelihood_matches_normal():
    x, mean, mu, logvar = _elbo_inputs()
    x = torch.rand(x.shape, generator=_gen(160))
    t = elbo(x, mean, mu, logvar, likelihood="gaussian", x_logvar=-2.0)
    torch.testing.assert_close(t.recon, -Normal(mean, math.exp(-1.0)).log_prob(x).sum((1, 2, 3)))
    t0 = elbo(x, mean, mu, logvar, likelihood="gaussian")  # None -> unit variance
    torch.testing.assert_close(t0.recon, -Normal(mean, 1.0).log_prob(x).sum((1, 2, 3)))


def test_elbo_beta_scales_only_the_kl_in_the_loss():
    x, logits, mu, logvar = _elbo_inputs()
    t1 = elbo(x, logits, mu, logvar, beta=1.0)
    t0 = elbo(x, logits, mu, logvar, beta=0.0)
    t3 = elbo(x, logits, mu, logvar, beta=3.0)
    torch.testing.assert_close(t0.loss, t1.recon.mean())
    torch.testing.assert_close(t3.loss, t1.recon.mean() + 3.0 * t1.kl.mean())
    for a, b in ((t1.recon, t3.recon), (t1.kl, t3.kl), (t1.elbo, t3.elbo)):
        torch.testing.assert_close(a, b, rtol=0, atol=0)


def test_elbo_loss_is_a_batch_mean():
    x, logits, mu, logvar = _elbo_inputs()
    rep = [torch.cat([t, t]) for t in (x, logits, mu, logvar)]
    for kw in ({}, {"beta": 2.5}, {"free_bits": 0.3}):
        torch.testing.assert_close(elbo(*rep, **kw).loss, elbo(x, logits, mu, logvar, **kw).loss)


@pytest.mark.parametrize("batch", BATCH_SHAPES)
def test_elbo_batch_shapes(batch):
    x = torch.bernoulli(torch.full((*batch, 2, 3), 0.5), generator=_gen(170))
    logits = torch.randn(*batch, 2, 3, generator=_gen(171))
    mu, logvar = torch.randn(*batch, D, generator=_gen(172)), torch.randn(*batch, D, generator=_gen(173))
    t = elbo(x, logits, mu, logvar)
    assert t.recon.shape == t.kl.shape == t.elbo.shape == batch
    torch.testing.assert_close(t.recon, -Bernoulli(logits=logits).log_prob(x).sum((-1, -2)))
    torch.testing.assert_close(t.loss, (t.recon + t.kl).mean())


def test_free_bits_clamp_the_batch_mean_kl_per_dimension():
    x = torch.zeros(2, 3)
    logits = torch.zeros(2, 3)
    # dim 0: KL 0 and 2 (mu = 0 and 2), batch mean 1; dim 1: KL 0 everywhere
    mu = torch.tensor([[0.0, 0.0], [2.0, 0.0]])
    logvar = torch.zeros(2, 2)
    recon = 3 * math.log(2.0)  # -log p(x=0 | logit 0) = log 2 per pixel
    t = elbo(x, logits, mu, logvar, free_bits=0.75)
    # sum_j max(0.75, mean_b KL_bj) = max(0.75, 1) + max(0.75, 0) = 1.75
    # (clamping per example first would give mean(0.75, 2) + 0.75 = 2.125)
    torch.testing.assert_close(t.loss, torch.tensor(recon + 1.75))
    torch.testing.assert_close(elbo(x, logits, mu, logvar, free_bits=0.75, beta=2.0).loss, torch.tensor(recon + 3.5))
    # the reported KL and ELBO are not clamped
    torch.testing.assert_close(t.kl, torch.tensor([0.0, 2.0]))
    torch.testing.assert_close(t.elbo, -t.recon - t.kl)


def test_free_bits_stop_the_kl_gradient_below_the_threshold():
    x, logits, mu, logvar = _elbo_inputs()
    mu = mu.clone().requires_grad_()
    logvar = logvar.clone().requires_grad_()
    # all dimensions below a huge threshold: the KL part is a constant D * lambda
    t = elbo(x, logits, mu, logvar, free_bits=100.0)
    torch.testing.assert_close(t.loss, t.recon.mean() + 3 * 100.0)
    t.loss.backward()
    assert mu.grad.abs().max() == 0 and logvar.grad.abs().max() == 0
    # a tiny threshold changes nothing
    torch.testing.assert_close(elbo(x, logits, mu, logvar, free_bits=1e-6).loss, elbo(x, logits, mu, logvar).loss)


# ----------------------------------------------------------------------------- bad inputs
def test_shape_mismatches_are_refused():
    mu = torch.zeros(32, 20)
    with pytest.raises(ValueError, match=r"logvar must have the shape of mu \(32, 20\), got \(32, 10\)"):
        kl_standard_normal(mu, torch.zeros(32, 10))
    with pytest.raises(ValueError, match=r"logvar_q must have the shape of mu_q"):
        kl_diag_gaussians(mu, torch.zeros(32, 10), mu, mu)
    with pytest.raises(ValueError, match=r"mu_p must have the shape of mu_q \(32, 20\) or broadcast to it"):
        kl_diag_gaussians(mu, mu, torch.zeros(7, 32, 20), mu)
    with pytest.raises(ValueError, match=r"mu must have the shape of z \(4, 3\) or broadcast to it, got \(5, 1, 3\)"):
        log_normal_diag(torch.zeros(4, 3), torch.zeros(5, 1, 3), torch.zeros(3))
    with pytest.raises(ValueError, match=r"x must have the shape of logits \(2, 1, 4, 4\), got \(2, 16\)"):
        bernoulli_log_prob(torch.zeros(2, 1, 4, 4), torch.zeros(2, 16))
    with pytest.raises(ValueError, match=r"mean must have the shape of x"):
        gaussian_log_prob(torch.zeros(2, 3), torch.zeros(3))
    with pytest.raises(ValueError, match=r"logvar must have the shape of x \(2, 3\) or broadcast to it, got \(4,\)"):
        gaussian_log_prob(torch.zeros(2, 3), torch.zeros(2, 3), torch.zeros(4))
    with pytest.raises(ValueError, match=r"last axis, shape \(\.\.\., D\)"):
        kl_standard_normal(torch.tensor(1.0), torch.tensor(0.0))


def test_elbo_refuses_bad_arguments():
    x, logits, mu, logvar = _elbo_inputs()
    with pytest.raises(ValueError, match=r"likelihood must be one of \('bernoulli', 'gaussian'\), got 'poisson'"):
        elbo(x, logits, mu, logvar, likelihood="poisson")
    with pytest.raises(ValueError, match=r"beta must be a finite number >= 0.*got -1"):
        elbo(x, logits, mu, logvar, beta=-1.0)
    with pytest.raises(ValueError, match=r"beta must be a finite number >= 0.*got nan"):
        elbo(x, logits, mu, logvar, beta=float("nan"))
    with pytest.raises(ValueError, match=r"free_bits must be a finite number >= 0.*got -0.1"):
        elbo(x, logits, mu, logvar, free_bits=-0.1)
    with pytest.raises(ValueError, match=r"x must start with the batch shape of mu \(3,\), got x of shape \(4, 1, 4, 4\)"):
        elbo(x, logits, mu[:3], logvar[:3])
    with pytest.raises(ValueError, match=r"x must have the shape of logits"):
        elbo(x, logits[:, :, :2], mu, logvar)
    with pytest.raises(ValueError, match=r"x must hold values in \[0, 1\] for a Bernoulli likelihood"):
        elbo(2 * x - 1, logits, mu, logvar)
    with pytest.raises(ValueError, match=r"mu is an empty batch of shape \(0, 3\).*would be NaN"):
        elbo(x[:0], logits[:0], mu[:0], logvar[:0])


def test_non_float_and_non_tensor_inputs_are_refused():
    with pytest.raises(ValueError, match=r"mu must be a floating-point tensor, got dtype torch.int64; convert"):
        kl_standard_normal(torch.zeros(2, 3, dtype=torch.long), torch.zeros(2, 3))
    with pytest.raises(ValueError, match=r"x must be a floating-point tensor, got dtype torch.uint8"):
        bernoulli_log_prob(torch.zeros(2, 3), torch.zeros(2, 3, dtype=torch.uint8))
    with pytest.raises(ValueError, match=r"mu must be a floating-point torch.Tensor, got list"):
        kl_standard_normal([[0.0]], torch.zeros(1, 1))
    with pytest.raises(ValueError, match=r"log_w must be a floating-point tensor, got dtype torch.int64"):
        iwae_bound(torch.zeros(3, 2, dtype=torch.long))


def test_iwae_bound_needs_at_least_one_sample():
    with pytest.raises(ValueError, match=r"K >= 1 importance samples along dim 0, got shape \(0, 4\)"):
        iwae_bound(torch.zeros(0, 4))
    with pytest.raises(ValueError, match=r"got shape \(\)"):
        iwae_bound(torch.tensor(0.0))


def test_event_dims_is_validated():
    with pytest.raises(ValueError, match=r"event_dims must be an int between 0 and logits.dim\(\)=2.*got 3"):
        bernoulli_log_prob(torch.zeros(2, 3), torch.zeros(2, 3), event_dims=3)
    with pytest.raises(ValueError, match=r"x must have a batch dimension first"):
        gaussian_log_prob(torch.tensor(0.0), torch.tensor(0.0))
