"""How a VAE spends its KL: rate and distortion, KL per latent dimension, collapse during training,
and the rate-distortion curve traced by a beta sweep.

Alemi et al. (2018) read the negative ELBO of each example as two numbers::

    rate        R(x) = KL( q(z|x) || p(z) )          what the code says about x (nats, or bits)
    distortion  D(x) = -E_{q(z|x)}[ log p(x|z) ]      how badly x is rebuilt from that code
    ELBO(x)     = -( R(x) + D(x) )                    (in nats)

A beta-VAE minimises ``D + beta * R``: beta < 1 buys reconstructions with rate, beta > 1 buys a
cheap code with distortion, and one model per beta traces the R-D curve (:func:`beta_sweep`).
Posterior collapse is a rate of ~0: per latent dimension (:func:`kl_per_dim`) it shows which
dimensions carry information; :class:`ActiveUnitsMonitor` records that every epoch of ``fit``.

Conventions follow :mod:`vae_core.metrics`: ``data`` is a ``Dataset`` or a tensor ``(N, C, H, W)``
(a ``"dynamic"`` dataset is binarized once, with a fixed seed); the model has
``encode(x) -> (mu, logvar)`` with a N(0, I) prior, ``decode(z)`` and ``log_px_given_z(x, x_params)``.

References
----------
* Alemi, Poole, Fischer, Dillon, Saurous & Murphy (2018), *Fixing a Broken ELBO*: rate and distortion.
* Burda, Grosse & Salakhutdinov (2016), *Importance Weighted Autoencoders*: active units (Sec. 5.2).
* Higgins et al. (2017), *beta-VAE*: the KL weight beta.
* Tipping & Bishop (1999), *Probabilistic PCA*; Lucas, Tucker, Grosse & Norouzi (2019), *Don't Blame
  the ELBO!*: which directions a linear VAE with a fixed decoder variance uses (:func:`linear_gaussian_rates`).
"""
from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import NamedTuple

import torch
from torch import Tensor, nn

from .metrics import _batches, _check_pos_int, _EvalMode, _images, _model_device, active_units
from .train import History, TrainConfig, fit
from .utils import seed_everything

__all__ = [
    "UNITS",
    "RateDistortion",
    "rate_distortion_per_example",
    "rate_distortion",
    "kl_per_dim",
    "linear_gaussian_rates",
    "MonitorRow",
    "ActiveUnitsMonitor",
    "RDPoint",
    "beta_sweep",
]

UNITS = ("nats", "bits")
_LN2 = math.log(2.0)  # 1 nat = 1 / ln 2 bits


# ----------------------------------------------------------------------------- helpers
def _check_unit(unit: object) -> float:
    """The divisor that turns nats into ``unit``."""
    if unit not in UNITS:
        raise ValueError(f"unit must be 'nats' or 'bits', got {unit!r}; bits = nats / ln 2")
    return 1.0 if unit == "nats" else _LN2


def _encode(model: nn.Module, x: Tensor) -> tuple[Tensor, Tensor]:
    """``model.encode(x)`` checked to be a diagonal Gaussian: ``(mu (b, D), logvar (b, D))``."""
    out = model.encode(x)
    if not (isinstance(out, tuple) and len(out) == 2):
        raise ValueError(
            f"model.encode(x) must return (mu, logvar) of a Gaussian q(z|x), got {type(out).__name__}; "
            f"rate and KL need a VAE, not a plain AutoEncoder"
        )
    mu, logvar = out
    if mu.dim() != 2 or logvar.shape != mu.shape:
        raise ValueError(
            f"model.encode must return mu and logvar of the same shape (B, D), got {tuple(mu.shape)} and {tuple(logvar.shape)}"
        )
    return mu, logvar


def _kl_per_dim(mu: Tensor, logvar: Tensor) -> Tensor:
    """KL( N(mu_d, s_d^2) || N(0, 1) ) for each example and dimension: ``(b, D) -> (b, D)``, float64."""
    mu, logvar = mu.double(), logvar.double()
    # KL_d = -0.5 (1 + log s_d^2 - mu_d^2 - s_d^2)   (Kingma & Welling 2014, App. B)
    return -0.5 * (1.0 + logvar - mu.square() - logvar.exp())


# ----------------------------------------------------------------------------- rate and distortion
class RateDistortion(NamedTuple):
    """Per-example rate, distortion and ELBO, each a CPU float64 tensor ``(N,)`` in the chosen unit."""

    rate: Tensor  # KL(q(z|x) || p(z))
    distortion: Tensor  # -E_q[log p(x|z)]
    elbo: Tensor  # -(rate + distortion)


def rate_distortion_per_example(
    model: nn.Module,
    data: object,
    unit: str = "nats",
    n_samples: int = 1,
    seed: int = 0,
    batch_size: int = 256,
) -> RateDistortion:
    """Rate and distortion of every example (Alemi et al. 2018).

    ``R(x) = KL(q(z|x) || N(0, I))`` in closed form; ``D(x) = -(1/S) sum_s log p(x|z_s)`` with
    ``z_s = mu + sigma * eps_s`` and ``S = n_samples``. The noise ``eps (N, S, D)`` is drawn once, up
    front, from a CPU generator seeded with ``seed``, so the result does not depend on ``batch_size``.

    Args:
        model: a VAE: ``encode(x) -> (mu, logvar)`` each ``(b, D)``, ``decode(z) -> x_params`` and
            ``log_px_given_z(x, x_params) -> (b,)``.
        data: ``Dataset`` or tensor ``(N, C, H, W)``.
        unit: ``"nats"`` or ``"bits"`` (nats / ln 2).
        n_samples: z samples per example for the distortion's Monte Carlo mean, ``>= 1``.
        seed: seeds the z samples, a non-negative int.
        batch_size: examples per forward pass (``batch_size * n_samples`` images are decoded at once).

    Returns:
        :class:`RateDistortion` of ``(N,)`` tensors; ``elbo = -(rate + distortion)`` exactly.
    """
    divisor = _check_unit(unit)
    n_samples = _check_pos_int("n_samples", n_samples, "z samples per example for the distortion")
    batch_size = _check_pos_int("batch_size", batch_size, "examples per forward pass")
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed must be a non-negative int (it seeds the z samples), got {seed!r}")
    images = _images(data)
    device = _model_device(model)
    g = torch.Generator(device="cpu").manual_seed(seed)
    noise: Tensor | None = None
    rates, distortions = [], []
    with _EvalMode(model):
        for start, x in zip(range(0, images.shape[0], batch_size), _batches(images, batch_size, device)):
            mu, logvar = _encode(model, x)  # (b, D) each
            b, d = mu.shape
            if noise is None:  # eps ~ N(0, I) for every example and sample, (N, S, D)
                noise = torch.randn((images.shape[0], n_samples, d), generator=g, dtype=mu.dtype)
            rates.append(_kl_per_dim(mu, logvar).sum(dim=1).cpu())  # R(x) = sum_d KL_d, (b,)
            eps = noise[start : start + b].to(device)  # (b, S, D)
            z = mu[:, None] + torch.exp(0.5 * logvar)[:, None] * eps  # z = mu + sigma * eps, (b, S, D)
            x_params = model.decode(z.reshape(b * n_samples, d))  # (b*S, D) -> (b*S, C, H, W)
            xs = x[:, None].expand(b, n_samples, *x.shape[1:]).reshape(b * n_samples, *x.shape[1:])
            log_px = model.log_px_given_z(xs, x_params).double().view(b, n_samples)  # (b*S,) -> (b, S)
            distortions.append(-log_px.mean(dim=1).cpu())  # D(x) = -(1/S) sum_s log p(x|z_s), (b,)
    rate = torch.cat(rates) / divisor
    distortion = torch.cat(distortions) / divisor
    return RateDistortion(rate=rate, distortion=distortion, elbo=-(rate + distortion))  # ELBO = -(R + D)


def rate_distortion(
    model: nn.Module,
    data: object,
    unit: str = "nats",
    n_samples: int = 1,
    seed: int = 0,
    batch_size: int = 256,
) -> dict[str, float]:
    """Means over ``data`` of :func:`rate_distortion_per_example`: ``{"rate", "distortion", "elbo"}`` (floats, in ``unit``)."""
    rd = rate_distortion_per_example(model, data, unit, n_samples, seed, batch_size)
    return {"rate": float(rd.rate.mean()), "distortion": float(rd.distortion.mean()), "elbo": float(rd.elbo.mean())}


def kl_per_dim(model: nn.Module, data: object, unit: str = "nats", batch_size: int = 256) -> Tensor:
    """Mean over ``data`` of the KL of each latent dimension: ``E_x[ KL(q(z_d|x) || N(0, 1)) ]``.

    A dimension with a KL of ~0 for every x has collapsed to the prior: it carries nothing about x.
    The entries sum to the mean rate of :func:`rate_distortion`.

    Args:
        model: ``encode(x) -> (mu, logvar)``, each ``(b, D)``.
        data: ``Dataset`` or tensor ``(N, C, H, W)``.
        unit: ``"nats"`` or ``"bits"``.
        batch_size: examples per forward pass.

    Returns:
        CPU float64 tensor ``(D,)``.
    """
    divisor = _check_unit(unit)
    batch_size = _check_pos_int("batch_size", batch_size, "examples per forward pass")
    images = _images(data)
    device = _model_device(model)
    with _EvalMode(model):
        total = sum(_kl_per_dim(*_encode(model, x)).sum(dim=0).cpu() for x in _batches(images, batch_size, device))
    return total / images.shape[0] / divisor  # (D,): mean over the N examples


def linear_gaussian_rates(eigenvalues: Tensor, sigma2: float, unit: str = "nats") -> Tensor:
    """The mean KL the optimal linear-Gaussian VAE (probabilistic PCA) spends along each principal direction.

    With a fixed decoder variance ``sigma2`` the maximum-likelihood pPCA model keeps direction ``j`` of
    the data only where its variance ``lambda_j`` exceeds ``sigma2`` (Tipping & Bishop 1999); its exact
    posterior there has variance ``sigma2 / lambda_j`` and a mean whose variance over the data is
    ``1 - sigma2 / lambda_j``, so ``E_x[KL(q(z_j|x) || N(0, 1))] = 0.5 * log(lambda_j / sigma2)``, and 0
    along every other direction (reverse water-filling, with ``sigma2`` as the water level). A linear
    VAE reaches the same optimum (Lucas et al. 2019).

    Args:
        eigenvalues: tensor of the data covariance's eigenvalues, any shape and order; zeros and tiny
            negative round-off are unused directions.
        sigma2: the decoder's fixed variance, a float > 0.
        unit: ``"nats"`` or ``"bits"``.

    Returns:
        tensor of ``eigenvalues``' shape and dtype: the rate of each direction, 0 where it is unused.
    """
    divisor = _check_unit(unit)
    if not isinstance(eigenvalues, Tensor) or not eigenvalues.is_floating_point():
        raise ValueError(f"eigenvalues must be a float tensor, got {type(eigenvalues).__name__}; "
                         f"e.g. torch.linalg.eigvalsh(covariance)")
    if isinstance(sigma2, bool) or not isinstance(sigma2, (int, float)) or not (math.isfinite(sigma2) and sigma2 > 0):
        raise ValueError(f"sigma2 must be a finite float > 0 (the decoder's variance), got {sigma2!r}")
    # 0.5 log(lambda / sigma2) where lambda > sigma2; the clamp at 1 makes every other direction cost 0
    return 0.5 * torch.log(torch.clamp(eigenvalues / sigma2, min=1.0)) / divisor


# ----------------------------------------------------------------------------- collapse over training
class MonitorRow(NamedTuple):
    """What :class:`ActiveUnitsMonitor` saw after one epoch."""

    epoch: int
    active_units: int  # number of d with Var_x(mu_d(x)) > threshold
    kl_per_dim: Tensor  # (D,) mean KL per latent dimension, nats
    variances: Tensor  # (D,) Var_x(mu_d(x)), the activity of each dimension


class ActiveUnitsMonitor:
    """A ``fit`` callback recording per-dimension KL and active units on a fixed batch every epoch.

    ::

        monitor = ActiveUnitsMonitor(test, n=1000)
        fit(model, train, test, config, callbacks=[monitor])
        monitor.kl_matrix()     # (epochs, D): which dimensions collapse, and when
        monitor.active_counts() # [active units after epoch 1, 2, ...]

    Activity as in Burda et al. (2016), via :func:`vae_core.metrics.active_units`:
    dimension d is active when ``Cov_x(E_q[z_d]) = Var_x(mu_d(x)) > threshold``.

    Args:
        data: ``Dataset`` or tensor ``(N, C, H, W)``; its first ``n`` examples are the fixed batch
            (a ``"dynamic"`` dataset is binarized once, so every epoch sees the same images).
        n: size of the fixed batch (``None``: all of ``data``); at least 2 examples are needed.
        threshold: activity threshold, 0.01 in Burda et al.
        batch_size: examples per forward pass.
    """

    def __init__(self, data: object, n: int | None = 1000, threshold: float = 0.01, batch_size: int = 256) -> None:
        # refuse bad arguments now, not after the first epoch of training
        if isinstance(threshold, bool) or not isinstance(threshold, (int, float)) or not threshold >= 0:
            raise ValueError(f"threshold must be a number >= 0 (Burda et al. use 0.01), got {threshold!r}")
        self.threshold = threshold
        self.batch_size = _check_pos_int("batch_size", batch_size, "examples per forward pass")
        images = _images(data)
        if n is not None:
            images = images[: _check_pos_int("n", n, "examples in the fixed evaluation batch, or None for all")]
        if images.shape[0] < 2:
            raise ValueError(f"ActiveUnitsMonitor needs at least 2 examples to compute a variance, got {images.shape[0]}")
        self.images = images  # (n, C, H, W), fixed for the whole run
        self.rows: list[MonitorRow] = []

    def __call__(self, epoch: int, model: nn.Module, history: object = None) -> None:
        """Record one row; returns None, so it never stops training."""
        count, variances = active_units(model, self.images, self.threshold, self.batch_size)
        kl = kl_per_dim(model, self.images, batch_size=self.batch_size)
        self.rows.append(MonitorRow(int(epoch), count, kl, variances))

    def __len__(self) -> int:
        return len(self.rows)

    def __bool__(self) -> bool:
        # A monitor with no rows yet is still a monitor: `callbacks=[m] if m else []` must keep it.
        return True

    def kl_matrix(self) -> Tensor:
        """KL per dimension of every recorded epoch: ``(E, D)`` float64 (rows in epoch order)."""
        if not self.rows:
            raise ValueError("ActiveUnitsMonitor has recorded nothing yet; pass it to fit(..., callbacks=[monitor])")
        return torch.stack([r.kl_per_dim for r in self.rows])

    def active_counts(self) -> list[int]:
        """Active units after each recorded epoch."""
        return [r.active_units for r in self.rows]

    def as_dict(self) -> dict[str, list]:
        """Plain lists (for ``save_checkpoint(..., extra=...)`` or a DataFrame)."""
        return {
            "epoch": [r.epoch for r in self.rows],
            "active_units": self.active_counts(),
            "kl_per_dim": [r.kl_per_dim.tolist() for r in self.rows],
            "variances": [r.variances.tolist() for r in self.rows],
        }


# ----------------------------------------------------------------------------- beta sweep
@dataclass
class RDPoint:
    """One trained model of a beta sweep and where it lands on the rate-distortion plane."""

    beta: float  # the KL weight it was trained with
    rate: float  # mean KL(q(z|x) || p(z)) on the evaluation data, in the sweep's unit
    distortion: float  # mean -E_q log p(x|z), same unit
    elbo: float  # -(rate + distortion)
    model: nn.Module  # the trained model, in eval mode (show its reconstructions)
    history: History  # the record of its training run


def beta_sweep(
    make_model: Callable[[], nn.Module],
    train: object,
    test: object | None,
    config: TrainConfig,
    betas: Sequence[float],
    unit: str = "nats",
    n_samples: int = 1,
    seed: int = 0,
) -> list[RDPoint]:
    """Train one model per beta with ``vae_core.train.fit`` and measure its rate and distortion.

    Each model is built by ``make_model()`` right after seeding with ``config.seed``, so every beta
    starts from the same weights and sees the same batches: the runs differ in beta only. The
    points come back in the order of ``betas``; ``D + beta R`` is what run beta minimised.

    Args:
        make_model: builds a fresh, untrained VAE, e.g. ``lambda: VAE(VAEConfig(latent_dim=10))``.
        train, test: as for ``fit``; the rate and distortion are measured on ``test`` (on ``train``
            when ``test`` is None).
        config: a ``vae_core.train.TrainConfig``; its ``beta`` is replaced by each value of ``betas``.
        betas: KL weights, each a finite number ``>= 0``; at least one.
        unit, n_samples, seed: as for :func:`rate_distortion`.

    Returns:
        ``[RDPoint(beta, rate, distortion, elbo, model, history), ...]``, one per beta.
    """
    if not callable(make_model):
        raise ValueError(f"make_model must be a function returning a fresh model, got {type(make_model).__name__}; "
                         f"e.g. lambda: VAE(VAEConfig(latent_dim=10))")
    if not isinstance(config, TrainConfig):
        raise ValueError(f"config must be a vae_core.train.TrainConfig, got {type(config).__name__}")
    if isinstance(betas, (str, bytes)) or not isinstance(betas, Sequence) or len(betas) == 0:
        raise ValueError(f"betas must be a non-empty list of KL weights such as [0.1, 1.0, 4.0], got {betas!r}")
    for b in betas:
        if isinstance(b, bool) or not isinstance(b, (int, float)) or not math.isfinite(b) or b < 0:
            raise ValueError(f"every beta must be a finite number >= 0, got {b!r} in betas={list(betas)!r}")
    _check_unit(unit)
    points = []
    for beta in betas:
        seed_everything(config.seed)  # the same initial weights for every beta
        model = make_model()
        history = fit(model, train, test, replace(config, beta=float(beta)))
        rd = rate_distortion(model, test if test is not None else train, unit=unit, n_samples=n_samples, seed=seed)
        points.append(RDPoint(float(beta), rd["rate"], rd["distortion"], rd["elbo"], model, history))
    return points
