"""Learned priors for the VAE, and a measure of the holes a prior leaves.

A VAE trained with p(z) = N(0, I) does not fill N(0, I). Its codes live where the aggregate posterior

    q_agg(z) = (1/N) sum_n q(z|x_n)

puts them: in lumps, with gaps between the lumps that the prior still covers. A sample z ~ p(z) that falls
in such a hole decodes to an image no training example looks like. Two ways to learn p(z) instead:

- ``MixturePrior``: p(z) = sum_k pi_k N(z; m_k, diag s_k^2), K learned Gaussians (Tomczak's intro_dgm MoG prior);
- ``VampPrior``: p(z) = (1/K) sum_k q(z|u_k), the encoder's own posteriors at K learned pseudo-inputs u_k
  (Tomczak & Welling 2018, *VAE with a VampPrior*).

Against either, the KL has no closed form, so ``PriorVAE.elbo`` estimates it at the one reparameterised
sample it also decodes:  KL(q(z|x) || p(z)) ~= log q(z|x) - log p(z),  z ~ q(z|x)::

    model = PriorVAE(PriorVAEConfig(latent_dim=2, prior="mog", components=10))
    fit(model, load_mnist("train"))                    # the prior's parameters train with the rest
    model.prior.log_prob(z); model.prior.sample(64)    # p(z)
    prior_gap(model, load_mnist("test"))               # KL(q_agg || p), KL(p || q_agg), the share in holes

``prior_gap`` measures a plain ``models.VAE`` too, so a lesson can set the two side by side. ELBO surgery
(Hoffman & Johnson 2016): E_x KL(q(z|x) || p(z)) = I(x; z) + KL(q_agg || p), so KL(q_agg || p) is the part of
the KL term that carries no information about x, the part a better prior can remove.
Reduction convention as everywhere: sum over latent and data dimensions, mean over the batch.
"""
from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, Literal

import torch
from torch import Tensor, nn

from . import losses
from .metrics import _batches, _EvalMode, _images, _model_device
from .models import VAE, LossTerms, LossWeights, VAEConfig, _fmt, _is_pos_int, _randn
from .train import register_model  # train imports models, never this module: no cycle

if TYPE_CHECKING:
    from .data.batches import Batch

__all__ = ["MixturePrior", "VampPrior", "PriorVAEConfig", "PriorVAE", "aggregate_log_prob", "prior_log_prob", "prior_gap"]

# Elements of the (M, N, D) tensor of component log-densities that aggregate_log_prob holds at once (64 MiB in float64).
_CHUNK = 2**23


# ----------------------------------------------------------------------------------------------
# mixtures of diagonal Gaussians, shared by both priors and by q_agg


def _check_z(z: object, latent_dim: int, name: str = "z") -> Tensor:
    losses.check_float(name, z)
    if z.dim() < 1 or z.shape[-1] != latent_dim:
        raise ValueError(f"expected {name} of shape (..., {latent_dim}) (the last axis is the latent dimension D = "
                         f"{latent_dim}), got {_fmt(z.shape)}; e.g. (B, {latent_dim}) or (K, B, {latent_dim})")
    return z


def _check_n(n: object) -> int:
    if not _is_pos_int(n):
        raise ValueError(f"n must be a positive int (how many samples to draw), got {n!r}")
    return n


def _mixture_log_prob(z: Tensor, means: Tensor, logvars: Tensor, log_weights: Tensor) -> Tensor:
    """log sum_k w_k N(z; m_k, diag exp(lv_k)): z (..., D), means, logvars (K, D), log_weights (K,) -> (...)."""
    zk = z.unsqueeze(-2).expand(*z.shape[:-1], *means.shape)  # (..., D) -> (..., K, D), a view
    log_nk = losses.log_normal_diag(zk, means, logvars)  # (..., K)
    # log p(z) = logsumexp_k [log w_k + log N(z; m_k, s_k^2)]: finite even where every exp(.) underflows
    return torch.logsumexp(log_nk + log_weights, dim=-1)


@torch.no_grad()
def _mixture_sample(n: int, means: Tensor, logvars: Tensor, log_weights: Tensor,
                    generator: torch.Generator | None) -> Tensor:
    """n draws (n, D): pick k ~ Categorical(w), then z = m_k + s_k * eps, eps ~ N(0, I)."""
    probs = log_weights.exp().to(generator.device if generator is not None else means.device)
    k = torch.multinomial(probs, n, replacement=True, generator=generator).to(means.device)  # (n,)
    eps = _randn((n, means.shape[1]), generator, means.device, means.dtype)
    return means[k] + torch.exp(0.5 * logvars[k]) * eps  # (n, D)


class MixturePrior(nn.Module):
    """p(z) = sum_k pi_k N(z; m_k, diag exp(logvar_k)),  pi = softmax(logits): K learned diagonal Gaussians.

    Parameters: ``means`` (K, D), ``logvars`` (K, D), ``logits`` (K,). The means start as N(0, init_scale^2)
    draws from a generator seeded with ``seed`` (distinct components, the same every time, and the global
    random stream untouched), the variances at 1, the weights equal.
    """

    def __init__(self, latent_dim: int, components: int = 10, init_scale: float = 1.0, seed: int = 0) -> None:
        super().__init__()
        if not _is_pos_int(latent_dim):
            raise ValueError(f"latent_dim must be a positive int (D, the size of z), got {latent_dim!r}")
        if not _is_pos_int(components):
            raise ValueError(f"components must be a positive int (K, the number of Gaussians; 1 is a single "
                             f"learned Gaussian), got {components!r}")
        if isinstance(init_scale, bool) or not isinstance(init_scale, (int, float)) or not 0 < init_scale < math.inf:
            raise ValueError(f"init_scale must be a finite number > 0 (the spread of the initial means), got {init_scale!r}")
        if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
            raise ValueError(f"seed must be an int >= 0 (it seeds the initial means), got {seed!r}")
        g = torch.Generator().manual_seed(seed)
        self.means = nn.Parameter(init_scale * torch.randn(components, latent_dim, generator=g))
        self.logvars = nn.Parameter(torch.zeros(components, latent_dim))
        self.logits = nn.Parameter(torch.zeros(components))

    def log_weights(self) -> Tensor:
        """log pi_k = log_softmax(logits)_k, shape (K,)."""
        return torch.log_softmax(self.logits, dim=0)

    def log_prob(self, z: Tensor) -> Tensor:
        """log p(z) = log sum_k pi_k N(z; m_k, diag s_k^2), via logsumexp: z (..., D) -> (...)."""
        _check_z(z, self.means.shape[1])
        return _mixture_log_prob(z, self.means, self.logvars, self.log_weights())

    def sample(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        """n draws z ~ p(z), shape (n, D) (no gradient)."""
        return _mixture_sample(_check_n(n), self.means, self.logvars, self.log_weights(), generator)


class VampPrior(nn.Module):
    """p(z) = (1/K) sum_k q(z|u_k): the encoder's posteriors at K learned pseudo-inputs (Tomczak & Welling 2018).

    ``pseudo_inputs`` (K, C, H, W) is a parameter, read through clamp(0, 1) as Tomczak's hardtanh does, so the
    encoder only ever sees valid images (a pixel pushed past 0 or 1 gets no gradient there). ``init`` sets the
    pseudo-inputs (e.g. K training images); the default is N(0.5, 0.01^2) noise seeded with ``seed``.
    ``encode`` is the VAE's own x (B, C, H, W) -> (mu, logvar) (B, D); it is held as a plain callable, not a
    submodule, so the encoder's weights live (and are saved) once, in the VAE.
    """

    def __init__(self, encode: Callable[[Tensor], tuple[Tensor, Tensor]], input_shape: tuple[int, int, int],
                 components: int = 10, init: Tensor | None = None, seed: int = 0) -> None:
        super().__init__()
        if not callable(encode):
            raise ValueError(f"encode must be the VAE's encoder x (B, C, H, W) -> (mu, logvar), e.g. vae.encode, got {encode!r}")
        if not _is_pos_int(components):
            raise ValueError(f"components must be a positive int (K, the number of pseudo-inputs), got {components!r}")
        shape = (components, *input_shape)
        if init is None:
            g = torch.Generator().manual_seed(seed)
            init = 0.5 + 0.01 * torch.randn(shape, generator=g)  # N(0.5, 0.01^2)
        elif not isinstance(init, Tensor) or not init.is_floating_point() or tuple(init.shape) != shape:
            got = _fmt(init.shape) if isinstance(init, Tensor) else type(init).__name__
            raise ValueError(f"init must be float pseudo-inputs of shape {shape} (K images), got {got}; e.g. x[:{components}]")
        self.pseudo_inputs = nn.Parameter(init.detach().clone())
        self.encode = encode

    def components(self) -> tuple[Tensor, Tensor]:
        """The K Gaussians q(z|u_k): (mu (K, D), logvar (K, D)), encoded from clamp(u, 0, 1)."""
        return self.encode(self.pseudo_inputs.clamp(0.0, 1.0))

    def log_prob(self, z: Tensor) -> Tensor:
        """log p(z) = logsumexp_k log q(z|u_k) - log K: z (..., D) -> (...)."""
        mu, logvar = self.components()
        _check_z(z, mu.shape[1])
        k = mu.shape[0]
        return _mixture_log_prob(z, mu, logvar, torch.full((k,), -math.log(k), dtype=mu.dtype, device=mu.device))

    def sample(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        """n draws z ~ p(z), shape (n, D): a pseudo-input k uniformly, then z ~ q(z|u_k) (no gradient)."""
        with torch.no_grad():
            mu, logvar = self.components()
        k = mu.shape[0]
        return _mixture_sample(_check_n(n), mu, logvar, torch.full((k,), -math.log(k), dtype=mu.dtype, device=mu.device), generator)


# ----------------------------------------------------------------------------------------------
# the VAE with a learned prior


@dataclass(frozen=True)
class PriorVAEConfig:
    """Everything needed to rebuild a ``PriorVAE``; saved in checkpoints with ``dataclasses.asdict``.

    The fields ``VAEConfig`` also has mean the same and are checked by it (``vae_config``); vary with
    ``dataclasses.replace``.
    """

    # (C, H, W) of one image: fixes the first and last layer sizes and the shape checks.
    input_shape: tuple[int, int, int] = (1, 28, 28)
    # Size D of z: small (2) for pictures of the latent space and its holes, larger (20+) for good likelihoods.
    latent_dim: int = 20
    # Widths of the fully connected layers between pixels (or conv features) and z; () = linear map.
    hidden: tuple[int, ...] = (400,)
    # "mlp" treats pixels as a flat vector; "conv" uses stride-2 convolutions.
    arch: Literal["mlp", "conv"] = "mlp"
    # p(x|z): "bernoulli" for data in [0, 1] (decoder gives logits); "gaussian" for real values (mean).
    likelihood: Literal["bernoulli", "gaussian"] = "bernoulli"
    # log sigma^2 of the Gaussian decoder, fixed: it sets how much reconstruction error costs against the KL.
    gaussian_logvar: float = 0.0
    # Conv channels per stride-2 layer (arch="conv" only); None picks VAEConfig's default per image size.
    channels: tuple[int, ...] | None = None
    # "mirror" decoder or the spatial "broadcast" decoder (vae_core.broadcast), as in VAEConfig.
    decoder: Literal["mirror", "broadcast"] = "mirror"
    # Widths of the broadcast decoder's per-pixel MLP (decoder="broadcast" only).
    broadcast_hidden: tuple[int, ...] = (32, 32)
    # p(z): "mog" K learned Gaussians; "vamp" the encoder's posteriors at K learned pseudo-inputs.
    prior: Literal["mog", "vamp"] = "mog"
    # K: Gaussians of the mixture or pseudo-inputs of the VampPrior (Tomczak & Welling use 500 on MNIST).
    components: int = 10

    def __post_init__(self) -> None:
        for name in ("input_shape", "hidden", "channels", "broadcast_hidden"):  # checkpoints hold lists
            if isinstance(getattr(self, name), list):
                object.__setattr__(self, name, tuple(getattr(self, name)))
        if self.prior not in ("mog", "vamp"):
            raise ValueError(f"prior must be 'mog' (a mixture of Gaussians) or 'vamp' (the VampPrior), got {self.prior!r}")
        if not _is_pos_int(self.components):
            raise ValueError(f"components must be a positive int (K, the Gaussians or pseudo-inputs of the prior; "
                             f"1 with prior='mog' is one learned Gaussian), got {self.components!r}")
        object.__setattr__(self, "gaussian_logvar", self.vae_config.gaussian_logvar)  # VAEConfig checks the rest

    @property
    def vae_config(self) -> VAEConfig:
        """The same networks as a ``VAEConfig`` (raises its ``ValueError`` for a bad shared field)."""
        return VAEConfig(**{f.name: getattr(self, f.name) for f in fields(VAEConfig) if hasattr(self, f.name)})

    @property
    def conv_channels(self) -> tuple[int, ...]:
        """Channels of the stride-2 conv layers actually used (``channels`` or the per-size default)."""
        return self.vae_config.conv_channels

    @property
    def data_dim(self) -> int:
        """C * H * W, the number of data dimensions the log-likelihood sums over."""
        return math.prod(self.input_shape)


class PriorVAE(VAE):
    """``models.VAE``'s encoder and decoder with a learned prior ``self.prior`` (``MixturePrior`` or ``VampPrior``).

    Shapes as in ``VAE``: x (B, C, H, W) in [0, 1]; mu, logvar, z (B, D). ``encode``, ``decode``,
    ``reparameterize``, ``reconstruct`` and ``log_likelihood`` are the VAE's; ``log_prior``, ``elbo`` and
    ``sample`` use the learned p(z).
    """

    def __init__(self, config: PriorVAEConfig) -> None:
        if not isinstance(config, PriorVAEConfig):
            raise ValueError(f"expected a PriorVAEConfig, got {type(config).__name__}; build one with "
                             f"PriorVAEConfig(latent_dim=2, prior='mog', components=10)")
        super().__init__(config.vae_config)
        self.config = config
        if config.prior == "mog":
            self.prior = MixturePrior(config.latent_dim, config.components)
        else:
            self.prior = VampPrior(self.encode, config.input_shape, config.components)

    def log_prior(self, z: Tensor) -> Tensor:
        """log p(z) under the learned prior: z (..., D) -> (...). ``log_likelihood`` weighs with it."""
        return self.prior.log_prob(z)

    def elbo(self, x: Tensor, beta: float = 1.0, free_bits: float = 0.0,
             generator: torch.Generator | None = None) -> losses.ELBOTerms:
        """ELBO(x) = E_q[log p(x|z)] - KL(q(z|x) || p(z)), both terms estimated at one z ~ q(z|x).

        The KL has no closed form against a learned prior, so it is the Monte Carlo estimate
        KL ~= log q(z|x) - log p(z) at the same reparameterised z as the reconstruction (Kingma & Welling
        2014, Eq. 6). It is unbiased (its mean over z is the KL) but one sample of it can be negative:
        read it averaged over a batch or an epoch. ``free_bits`` must be 0: free bits clamp each latent
        dimension's closed-form KL, which a mixture prior has not.

        x (B, C, H, W) -> ``ELBOTerms``: recon, kl, elbo (B,) in nats; loss = mean over the batch of recon + beta * kl.
        """
        beta = losses._check_nonneg_number("beta", beta, "the KL weight; 1 is the plain VAE")
        if losses._check_nonneg_number("free_bits", free_bits, "nats per latent dimension") > 0:
            raise ValueError(f"free_bits must be 0 for a PriorVAE, got {free_bits!r}: free bits clamp the per-dimension "
                             f"closed-form KL, and the KL to a learned prior is a one-sample estimate of the whole "
                             f"sum; use TrainConfig(free_bits=0) and a KL warm-up (beta schedule) instead")
        mu, logvar = self.encode(x)  # (B, D) each
        z = self.reparameterize(mu, logvar, generator)  # (B, D)
        recon = -self.log_px_given_z(x, self.decode(z))  # -log p(x|z), (B,)
        # KL(q(z|x) || p(z)) ~= log q(z|x) - log p(z),  z ~ q(z|x): one-sample, unbiased, possibly < 0
        kl = losses.log_normal_diag(z, mu, logvar) - self.log_prior(z)  # (B,)
        # loss = mean_b [ -log p(x_b|z_b) + beta * KL_b ]   (negative beta-ELBO, batch mean)
        loss = recon.mean() + beta * kl.mean()
        return losses.ELBOTerms(recon=recon, kl=kl, elbo=-recon - kl, loss=loss)

    def loss_terms(self, batch: Batch, weights: LossWeights = LossWeights()) -> LossTerms:
        """The training protocol: -ELBO with the KL weighted by ``weights.kl`` (``weights.free_bits`` must be 0).

        batch.x (B, C, H, W) (labels ignored) -> ``LossTerms`` with ``recon``, ``kl`` and ``elbo`` (B,), unweighted.
        """
        t = self.elbo(batch.x, beta=weights.kl, free_bits=weights.free_bits)
        return LossTerms(t.loss, {"recon": t.recon, "kl": t.kl}, t.elbo)

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        """Draw z ~ p(z), the learned prior, and decode: returns (n, C, H, W) in [0, 1]."""
        return self._to_image(self.decode(self.prior.sample(_check_n(n), generator)))


# ----------------------------------------------------------------------------------------------
# the holes in the prior


def aggregate_log_prob(mu: Tensor, logvar: Tensor, z: Tensor) -> Tensor:
    """log q_agg(z) = log (1/N) sum_n N(z; mu_n, diag exp(logvar_n)): the aggregate posterior of N examples.

    mu, logvar: (N, D), q(z|x_n) for each example; z: (M, D) -> (M,). Computed in chunks of z so that
    the (M, N, D) component log-densities never take more than about 2**23 elements at once.
    """
    for name, t in (("mu", mu), ("logvar", logvar), ("z", z)):
        losses.check_float(name, t)
        if t.dim() != 2 or t.shape[0] == 0:
            raise ValueError(f"{name} must have shape ({'M' if name == 'z' else 'N'}, D) with at least one row, got {_fmt(t.shape)}")
        if not torch.isfinite(t).all():
            raise ValueError(f"{name} holds NaN or infinite values; check the encoder's outputs (a diverged model?) "
                             f"and the samples before asking for the aggregate posterior")
    if logvar.shape != mu.shape:
        raise ValueError(f"logvar must have the shape of mu {_fmt(mu.shape)}, got {_fmt(logvar.shape)}")
    _check_z(z, mu.shape[1])
    n, d = mu.shape
    log_w = torch.full((n,), -math.log(n), dtype=mu.dtype, device=mu.device)  # log (1/N)
    rows = max(1, _CHUNK // (n * d))
    return torch.cat([_mixture_log_prob(z[i:i + rows], mu, logvar, log_w) for i in range(0, z.shape[0], rows)])


def prior_log_prob(model: nn.Module, z: Tensor) -> Tensor:
    """log p(z) of ``model``'s prior: ``model.prior.log_prob`` for a ``PriorVAE``, log N(z; 0, I) for any other
    model with ``encode`` (``models.VAE``). z (..., D) -> (...)."""
    if isinstance(model, PriorVAE):
        return model.prior.log_prob(z)
    if not callable(getattr(model, "encode", None)):
        raise ValueError(f"expected a VAE (a model with encode(x) -> (mu, logvar)), got {type(model).__name__}")
    return losses.log_normal_std(z)


def _prior_sample(model: nn.Module, n: int, d: int, generator: torch.Generator | None) -> Tensor:
    """n draws (n, D) from ``model``'s prior, as float64 on the CPU."""
    if isinstance(model, PriorVAE):
        return model.prior.sample(n, generator).double().cpu()
    return _randn((n, d), generator, torch.device("cpu"), torch.float64)  # N(0, I)


def _mean_se(t: Tensor) -> tuple[float, float]:
    """Mean of Monte Carlo terms t (M,) and its standard error sd / sqrt(M)."""
    return float(t.mean()), float(t.std(correction=1) / math.sqrt(t.shape[0]))


@torch.no_grad()
def prior_gap(model: nn.Module, data: object, n_data: int = 2000, n_samples: int = 2000,
              generator: torch.Generator | None = None, batch_size: int = 500) -> dict[str, float]:
    """How well the prior p(z) matches the aggregate posterior q_agg(z) = (1/N) sum_n q(z|x_n), and where not.

    q_agg is built from the first ``n_data`` examples of ``data`` (encode -> mu, logvar). It is itself an
    estimate of the true aggregate posterior: a mixture of N Gaussians, lumpier than the limit (the gaps
    between posteriors fill as N grows), so the numbers depend on N; quote it. With ``n_samples`` draws each:

    - ``kl_agg_prior`` = KL(q_agg || p) = E_{z~q_agg}[log q_agg(z) - log p(z)]: the codes sit where p puts
      little mass (p too wide or in the wrong place); the part of the KL term a better prior removes.
    - ``kl_prior_agg`` = KL(p || q_agg) = E_{z~p}[log p(z) - log q_agg(z)]: the holes, prior mass where no
      example's posterior lives; what makes samples from the prior look unlike the data.
    - ``hole_fraction`` = P_{z~p}[ log q_agg(z) < log p(z) - log 10 ]: the share of prior samples that land
      where the aggregate posterior's density is below a tenth of the prior's.

    Each comes with ``*_se``, its Monte Carlo standard error (sd / sqrt(n_samples); the error from q_agg's
    finite N is not in it). ``model``: a ``PriorVAE`` (p = model.prior) or any VAE with ``encode`` (p = N(0, I)).
    ``data``: a Dataset or a tensor (N, C, H, W). Also returns the ``n_data`` and ``n_samples`` used.
    """
    if not _is_pos_int(n_data):
        raise ValueError(f"n_data must be a positive int (examples that make up q_agg, e.g. 2000), got {n_data!r}")
    if not _is_pos_int(n_samples) or n_samples < 2:
        raise ValueError(f"n_samples must be an int >= 2 (Monte Carlo draws; a standard error needs two), got {n_samples!r}")
    if not _is_pos_int(batch_size):
        raise ValueError(f"batch_size must be a positive int (examples per forward pass), got {batch_size!r}")
    if not isinstance(model, nn.Module) or not callable(getattr(model, "encode", None)):
        raise ValueError(f"expected a VAE (an nn.Module with encode(x) -> (mu, logvar)), got {type(model).__name__}")
    images = _images(data)[:n_data]
    device = _model_device(model)
    with _EvalMode(model):
        encoded = [model.encode(x) for x in _batches(images, batch_size, device)]
    mu = torch.cat([m for m, _ in encoded]).double().cpu()  # (N, D)
    logvar = torch.cat([lv for _, lv in encoded]).double().cpu()  # (N, D)
    if not (torch.isfinite(mu).all() and torch.isfinite(logvar).all()):
        raise ValueError(f"model.encode returned NaN or infinite mu/logvar for some of the first {mu.shape[0]} examples; "
                         f"the model has diverged or the data is not finite images in [0, 1]")
    dtype = getattr(next(model.parameters(), None), "dtype", torch.float32)

    def log_p(z: Tensor) -> Tensor:  # (M, D) float64 CPU -> (M,) float64 CPU, computed where the model lives
        return prior_log_prob(model, z.to(device, dtype)).double().cpu()

    # z ~ q_agg: pick an example n uniformly, then z ~ q(z|x_n)
    pick = torch.randint(mu.shape[0], (n_samples,), generator=generator, device=generator.device if generator else "cpu").cpu()
    z_q = mu[pick] + torch.exp(0.5 * logvar[pick]) * _randn((n_samples, mu.shape[1]), generator, mu.device, mu.dtype)
    # KL(q_agg || p) = E_{q_agg}[log q_agg(z) - log p(z)]
    kl_agg_prior, kl_agg_prior_se = _mean_se(aggregate_log_prob(mu, logvar, z_q) - log_p(z_q))
    z_p = _prior_sample(model, n_samples, mu.shape[1], generator)  # z ~ p
    # KL(p || q_agg) = E_p[log p(z) - log q_agg(z)]
    log_ratio = log_p(z_p) - aggregate_log_prob(mu, logvar, z_p)  # (M,)
    kl_prior_agg, kl_prior_agg_se = _mean_se(log_ratio)
    # a hole: q_agg(z) < p(z) / 10  <=>  log p(z) - log q_agg(z) > log 10
    holes = float((log_ratio > math.log(10.0)).double().mean())
    return {
        "kl_agg_prior": kl_agg_prior, "kl_agg_prior_se": kl_agg_prior_se,
        "kl_prior_agg": kl_prior_agg, "kl_prior_agg_se": kl_prior_agg_se,
        "hole_fraction": holes, "hole_fraction_se": math.sqrt(holes * (1.0 - holes) / n_samples),
        "n_data": mu.shape[0], "n_samples": n_samples,
    }


register_model(PriorVAE, PriorVAEConfig)
