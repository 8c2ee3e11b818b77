"""KL terms, log-likelihoods, the ELBO and the importance-weighted bound.

One reduction convention, used by every function here and everywhere in ``vae_core``:

* **sum** over data dimensions (pixels) and latent dimensions, so every number is in nats
  for one whole example;
* **mean** over the batch, and only in the summaries (``ELBOTerms.loss``).

Per-example functions therefore return the *batch shape*: ``(B,)`` for the usual
``mu: (B, D)``, but any leading batch shape works, e.g. ``mu: (K, B, D) -> (K, B)`` or
``mu: (D,) -> ()``.

References
----------
* Kingma & Welling (2014), *Auto-Encoding Variational Bayes*, Appendix B (Gaussian KL).
* Burda, Grosse & Salakhutdinov (2016), *Importance Weighted Autoencoders* (IWAE bound).
* Kingma, Salimans, Jozefowicz, Chen, Sutskever & Welling (2016), *Improved Variational
  Inference with Inverse Autoregressive Flow*, Appendix C.8 (free bits).
"""
from __future__ import annotations

import math
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = [
    "ELBOTerms",
    "LIKELIHOODS",
    "kl_standard_normal",
    "kl_diag_gaussians",
    "bernoulli_log_prob",
    "gaussian_log_prob",
    "log_normal_std",
    "log_normal_diag",
    "elbo",
    "iwae_bound",
]

LIKELIHOODS = ("bernoulli", "gaussian")
_LOG_2PI = math.log(2.0 * math.pi)


# ----------------------------------------------------------------------------- validation
def check_float(name: str, t: object) -> Tensor:
    """Refuse anything that is not a floating-point tensor (ints would silently truncate)."""
    if not isinstance(t, Tensor):
        raise ValueError(
            f"{name} must be a floating-point torch.Tensor, got {type(t).__name__}; "
            f"wrap it with torch.as_tensor({name}, dtype=torch.float32)"
        )
    if not t.is_floating_point():
        raise ValueError(
            f"{name} must be a floating-point tensor, got dtype {t.dtype}; "
            f"convert it with {name}.float()"
        )
    return t


def _check_same_shape(name: str, t: Tensor, ref_name: str, ref: Tensor) -> None:
    if t.shape != ref.shape:
        raise ValueError(
            f"{name} must have the shape of {ref_name} {tuple(ref.shape)}, got {tuple(t.shape)}; "
            f"pass one value per element of {ref_name}"
        )


def _check_broadcasts_to(name: str, t: Tensor, ref_name: str, ref: Tensor) -> None:
    """``t`` must broadcast to ``ref``'s shape *without* enlarging it (no silent outer products)."""
    try:
        out = torch.broadcast_shapes(t.shape, ref.shape)
    except RuntimeError:
        out = None
    if out != ref.shape:
        raise ValueError(
            f"{name} must have the shape of {ref_name} {tuple(ref.shape)} or broadcast to it, "
            f"got {tuple(t.shape)}; add singleton dimensions (e.g. {name}.unsqueeze(0)) or expand it"
        )


def _check_has_last_dim(name: str, t: Tensor) -> None:
    if t.dim() < 1:
        raise ValueError(
            f"{name} must have a latent dimension as its last axis, shape (..., D), got a scalar "
            f"of shape (); use {name}.reshape(1) for a 1-D latent"
        )


def _event_dims(name: str, t: Tensor, event_dims: int | None) -> int:
    """How many trailing dims are data dims. ``None``: all but the first (batch) dim."""
    if event_dims is None:
        if t.dim() < 1:
            raise ValueError(
                f"{name} must have a batch dimension first, shape (B, ...), got shape (); "
                f"use {name}.reshape(1) or pass event_dims=0"
            )
        return t.dim() - 1
    if isinstance(event_dims, bool) or not isinstance(event_dims, int) or not 0 <= event_dims <= t.dim():
        raise ValueError(
            f"event_dims must be an int between 0 and {name}.dim()={t.dim()} (the number of "
            f"trailing data dimensions to sum over), got {event_dims!r}"
        )
    return event_dims


def _sum_last(t: Tensor, n: int) -> Tensor:
    """Sum over the last ``n`` dims (``n = 0``: no reduction)."""
    return t.sum(dim=tuple(range(t.dim() - n, t.dim()))) if n > 0 else t


def _check_nonneg_number(name: str, value: object, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
        raise ValueError(f"{name} must be a finite number >= 0 ({what}), got {value!r}")
    return float(value)


# ----------------------------------------------------------------------------- KL terms
def kl_standard_normal(mu: Tensor, logvar: Tensor) -> Tensor:
    """KL( N(mu, diag exp(logvar)) || N(0, I) ), summed over the latent (last) dimension.

    Args:
        mu: ``(..., D)`` posterior means.
        logvar: ``(..., D)`` posterior log-variances (same shape as ``mu``).

    Returns:
        ``(...)`` one KL in nats per example, e.g. ``(B, D) -> (B,)`` (no batch mean).
    """
    check_float("mu", mu)
    check_float("logvar", logvar)
    _check_has_last_dim("mu", mu)
    _check_same_shape("logvar", logvar, "mu", mu)
    # KL(N(mu, s^2) || N(0, 1)) = -0.5 * sum_j (1 + log s_j^2 - mu_j^2 - s_j^2)   (Kingma & Welling 2014, App. B)
    return -0.5 * torch.sum(1.0 + logvar - mu.pow(2) - logvar.exp(), dim=-1)


def kl_diag_gaussians(mu_q: Tensor, logvar_q: Tensor, mu_p: Tensor, logvar_p: Tensor) -> Tensor:
    """KL( q || p ) between diagonal Gaussians, summed over the latent (last) dimension.

    Used for learned priors and hierarchical VAEs; with ``mu_p = 0, logvar_p = 0`` it equals
    :func:`kl_standard_normal`.

    Args:
        mu_q, logvar_q: ``(..., D)`` parameters of q (same shape).
        mu_p, logvar_p: parameters of p, shape ``(..., D)`` or anything that broadcasts to it
            (e.g. ``(D,)`` for one prior shared by the batch).

    Returns:
        ``(...)`` = ``mu_q.shape[:-1]``, one KL in nats per example (no batch mean).
    """
    for name, t in (("mu_q", mu_q), ("logvar_q", logvar_q), ("mu_p", mu_p), ("logvar_p", logvar_p)):
        check_float(name, t)
    _check_has_last_dim("mu_q", mu_q)
    _check_same_shape("logvar_q", logvar_q, "mu_q", mu_q)
    _check_broadcasts_to("mu_p", mu_p, "mu_q", mu_q)
    _check_broadcasts_to("logvar_p", logvar_p, "mu_q", mu_q)
    # KL(q||p) = 0.5 * sum_j [ log s_p^2 - log s_q^2 + (s_q^2 + (mu_q - mu_p)^2) / s_p^2 - 1 ]
    #   (the Gaussian KL of Kingma & Welling 2014, App. B, with a general diagonal prior)
    kl = 0.5 * (logvar_p - logvar_q + (logvar_q.exp() + (mu_q - mu_p).pow(2)) * torch.exp(-logvar_p) - 1.0)
    return kl.expand_as(mu_q).sum(dim=-1)


# ----------------------------------------------------------------------------- log-likelihoods
def bernoulli_log_prob(logits: Tensor, x: Tensor, event_dims: int | None = None) -> Tensor:
    """log p(x | logits) for independent Bernoulli pixels, summed over the data dims.

    Numerically stable for any logits (no ``sigmoid`` then ``log``): it is minus the
    binary cross-entropy with logits. ``x`` may be binary or grey values in [0, 1].

    Args:
        logits: ``(B, ...)`` decoder logits, e.g. ``(B, C, H, W)``.
        x: same shape as ``logits``, values in [0, 1].
        event_dims: how many trailing dims are data dims to sum over; ``None`` (default) means
            all but the first, so ``(B, C, H, W) -> (B,)``. With ``event_dims=3``,
            ``(K, B, C, H, W) -> (K, B)``.

    Returns:
        The batch shape, e.g. ``(B,)``: one log-likelihood in nats per example (no batch mean).
    """
    check_float("logits", logits)
    check_float("x", x)
    _check_same_shape("x", x, "logits", logits)
    n = _event_dims("logits", logits, event_dims)
    if x.numel() > 0 and (x.min() < 0 or x.max() > 1):
        raise ValueError(
            f"x must hold values in [0, 1] for a Bernoulli likelihood, got min {x.min().item():.4g} "
            f"and max {x.max().item():.4g}; undo any normalisation (e.g. x * std + mean) or use "
            f"likelihood='gaussian'"
        )
    # log p(x|z) = sum_i [ x_i log sigmoid(l_i) + (1 - x_i) log(1 - sigmoid(l_i)) ]
    #            = sum_i [ x_i l_i - softplus(l_i) ] = -BCEWithLogits(l, x)   (stable for |l| large)
    log_p = -F.binary_cross_entropy_with_logits(logits, x, reduction="none")
    return _sum_last(log_p, n)


def gaussian_log_prob(
    x: Tensor, mean: Tensor, logvar: Tensor | float = 0.0, event_dims: int | None = None
) -> Tensor:
    """log N(x; mean, diag exp(logvar)), summed over the data dims.

    Args:
        x: ``(B, ...)`` data, e.g. ``(B, C, H, W)``.
        mean: same shape as ``x`` (the decoder output).
        logvar: log-variance, a Python number, a scalar tensor, or any tensor that broadcasts
            to ``x`` (e.g. ``(C, 1, 1)`` per channel, or ``x.shape`` for a per-pixel variance).
        event_dims: trailing data dims to sum over; ``None`` means all but the first.

    Returns:
        The batch shape, e.g. ``(B,)``: one log-density in nats per example (no batch mean).
    """
    check_float("x", x)
    check_float("mean", mean)
    _check_same_shape("mean", mean, "x", x)
    if isinstance(logvar, (int, float)) and not isinstance(logvar, bool):
        logvar = torch.tensor(float(logvar), dtype=x.dtype, device=x.device)
    check_float("logvar", logvar)
    _check_broadcasts_to("logvar", logvar, "x", x)
    n = _event_dims("x", x, event_dims)
    # log N(x; m, s^2) = -0.5 * [ log(2 pi) + log s^2 + (x - m)^2 / s^2 ]   per element, then summed
    log_p = -0.5 * (_LOG_2PI + logvar + (x - mean).pow(2) * torch.exp(-logvar))
    return _sum_last(log_p.expand_as(x), n)


def log_normal_std(z: Tensor) -> Tensor:
    """log N(z; 0, I), summed over the latent (last) dimension.

    Args:
        z: ``(..., D)`` latent samples.

    Returns:
        ``(...)`` = ``z.shape[:-1]``, one log-density per sample.
    """
    check_float("z", z)
    _check_has_last_dim("z", z)
    # log N(z; 0, I) = -0.5 * sum_j ( log(2 pi) + z_j^2 )
    return -0.5 * torch.sum(_LOG_2PI + z.pow(2), dim=-1)


def log_normal_diag(z: Tensor, mu: Tensor, logvar: Tensor) -> Tensor:
    """log N(z; mu, diag exp(logvar)), summed over the latent (last) dimension.

    Args:
        z: ``(..., D)`` samples, e.g. ``(K, B, D)`` importance samples.
        mu, logvar: shape of ``z`` or broadcastable to it (e.g. ``(B, D)`` against ``(K, B, D)``).

    Returns:
        ``(...)`` = ``z.shape[:-1]``, one log-density per sample.
    """
    check_float("z", z)
    check_float("mu", mu)
    check_float("logvar", logvar)
    _check_has_last_dim("z", z)
    _check_broadcasts_to("mu", mu, "z", z)
    _check_broadcasts_to("logvar", logvar, "z", z)
    # log N(z; mu, s^2) = -0.5 * sum_j [ log(2 pi) + log s_j^2 + (z_j - mu_j)^2 / s_j^2 ]
    return -0.5 * torch.sum(_LOG_2PI + logvar + (z - mu).pow(2) * torch.exp(-logvar), dim=-1)


# ----------------------------------------------------------------------------- ELBO
class ELBOTerms(NamedTuple):
    """The ELBO split into its parts. Per-example tensors have the batch shape ``(B,)``.

    Fields:
        recon: ``(B,)`` reconstruction term ``-log p(x|z)`` in nats (one z sample per example).
        kl: ``(B,)`` ``KL(q(z|x) || p(z))`` in nats (closed form, no free bits).
        elbo: ``(B,)`` ``-recon - kl``, a lower bound on ``log p(x)`` in nats.
        loss: scalar, batch mean of ``recon + beta * KL`` (free bits applied to the KL here only).
    """

    recon: Tensor
    kl: Tensor
    elbo: Tensor
    loss: Tensor


def elbo(
    x: Tensor,
    x_params: Tensor,
    mu: Tensor,
    logvar: Tensor,
    likelihood: str = "bernoulli",
    beta: float = 1.0,
    free_bits: float = 0.0,
    x_logvar: Tensor | float | None = None,
) -> ELBOTerms:
    """The evidence lower bound for a VAE with a N(0, I) prior and a diagonal Gaussian q(z|x).

    ``ELBO(x) = E_q[log p(x|z)] - KL(q(z|x) || p(z))``, estimated with the one sample of z
    that produced ``x_params``; the KL is in closed form.

    Args:
        x: ``(B, ...)`` data, e.g. ``(B, C, H, W)``; values in [0, 1] for ``"bernoulli"``.
        x_params: same shape as ``x``: logits (``"bernoulli"``) or means (``"gaussian"``).
        mu, logvar: ``(B, D)`` parameters of q(z|x). More generally ``(*batch, D)``, with ``x``
            of shape ``(*batch, ...)``.
        likelihood: ``"bernoulli"`` or ``"gaussian"``.
        beta: weight of the KL in ``loss`` (beta-VAE, Higgins et al. 2017), ``>= 0``.
            ``recon``, ``kl`` and ``elbo`` never depend on it.
        free_bits: lambda, in nats **per latent dimension** (Kingma et al. 2016, App. C.8),
            ``>= 0``. In ``loss`` only, each dimension's KL is first averaged over the batch and
            then clamped below at lambda: ``sum_j max(lambda, mean_b KL_bj)``. 0 turns it off.
        x_logvar: decoder log-variance for ``"gaussian"`` (number or tensor broadcastable to
            ``x``); ``None`` means 0 (unit variance). Ignored for ``"bernoulli"``.

    Returns:
        :class:`ELBOTerms` with per-example ``recon, kl, elbo`` of shape ``(B,)`` and the scalar
        ``loss`` = batch mean (sum over dims, mean over batch).
    """
    if likelihood not in LIKELIHOODS:
        raise ValueError(
            f"likelihood must be one of {LIKELIHOODS}, got {likelihood!r}; use 'bernoulli' for "
            f"binary/grey images in [0, 1] and 'gaussian' for real-valued data"
        )
    beta = _check_nonneg_number("beta", beta, "the KL weight; 1 is the plain VAE")
    free_bits = _check_nonneg_number("free_bits", free_bits, "nats per latent dimension; 0 turns it off")
    check_float("x", x)
    check_float("mu", mu)
    check_float("logvar", logvar)
    _check_has_last_dim("mu", mu)
    _check_same_shape("logvar", logvar, "mu", mu)
    batch = mu.shape[:-1]
    if batch.numel() == 0:
        raise ValueError(f"mu is an empty batch of shape {tuple(mu.shape)}: the ELBO of no examples is undefined "
                         "(its batch mean would be NaN); pass at least one example")
    if x.shape[: len(batch)] != batch:
        raise ValueError(
            f"x must start with the batch shape of mu {tuple(batch)}, got x of shape {tuple(x.shape)}; "
            f"mu is (*batch, D) and x is (*batch, ...) for the same examples"
        )
    event_dims = x.dim() - len(batch)

    if likelihood == "bernoulli":
        # -log p(x|z) = BCEWithLogits(logits, x) summed over pixels
        recon = -bernoulli_log_prob(x_params, x, event_dims=event_dims)
    else:
        # -log p(x|z) = -log N(x; mean, exp(x_logvar)) summed over pixels
        recon = -gaussian_log_prob(x, x_params, 0.0 if x_logvar is None else x_logvar, event_dims=event_dims)

    # KL(N(mu, s^2) || N(0, 1)) per dimension = -0.5 (1 + log s^2 - mu^2 - s^2)   (Kingma & Welling 2014, App. B)
    kl_per_dim = -0.5 * (1.0 + logvar - mu.pow(2) - logvar.exp())  # (*batch, D)
    kl = kl_per_dim.sum(dim=-1)  # (*batch,)
    if free_bits > 0:
        # free bits: sum_j max(lambda, E_x[KL_j])   (Kingma et al. 2016, App. C.8)
        kl_for_loss = torch.clamp(kl_per_dim.reshape(-1, mu.shape[-1]).mean(dim=0), min=free_bits).sum()
    else:
        kl_for_loss = kl.mean()
    # loss = mean_b [ -log p(x_b|z_b) ] + beta * KL   (negative beta-ELBO, batch mean)
    loss = recon.mean() + beta * kl_for_loss
    # ELBO = E_q[log p(x|z)] - KL(q(z|x) || p(z))   (Kingma & Welling 2014, eq. 10)
    return ELBOTerms(recon=recon, kl=kl, elbo=-recon - kl, loss=loss)


# ----------------------------------------------------------------------------- IWAE
def iwae_bound(log_w: Tensor) -> Tensor:
    """The importance-weighted bound from K log-weights, stable for very negative weights.

    ``log_w[k] = log p(x, z_k) - log q(z_k | x)`` with ``z_k ~ q(z|x)``.

    ``L_K = log (1/K) sum_k exp(log_w[k]) = logsumexp_k(log_w) - log K``  (Burda et al. 2016, eq. 8);
    ``L_1`` is the ELBO, ``L_K`` never decreases in K on average and tends to ``log p(x)``.

    Args:
        log_w: ``(K, B)`` (or ``(K, *batch)``), K >= 1 samples along dim 0.

    Returns:
        ``(B,)`` (the batch shape), one bound in nats per example (no batch mean).
    """
    check_float("log_w", log_w)
    if log_w.dim() < 1 or log_w.shape[0] < 1:
        raise ValueError(
            f"log_w must have shape (K, B) with K >= 1 importance samples along dim 0, got shape "
            f"{tuple(log_w.shape)}; stack the per-sample log-weights with torch.stack(list_of_B_tensors)"
        )
    K = log_w.shape[0]
    # L_K = logsumexp_k(log w_k) - log K   (Burda et al. 2016, eq. 8; logsumexp keeps exp() from underflowing)
    return torch.logsumexp(log_w, dim=0) - math.log(K)
