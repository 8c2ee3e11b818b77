"""A VAE with two stochastic layers and top-down inference (``HVAE``), kept small: MLPs only.

One layer of latents tends to hold everything at one level of detail. Stack a second one on top
and let it speak only through the first::

    p(x, z1, z2) = p(z2) p(z1|z2) p(x|z1)        p(z2) = N(0, I)
    p(z1|z2) = N(mu_p(z2), diag exp(logvar_p(z2)))  p(x|z1) = Bernoulli(logits = decoder(z1))

Inference runs bottom-up to read x, then top-down in the generative order, sharing the top-down
path ``t = top_down(z2)`` with the prior (Kingma et al. 2016, Sec. 6; Soenderby et al. 2016, the
Ladder VAE; Vahdat & Kautz 2020, NVAE; the Ladder VAE merges the two paths by precision weighting,
here q(z1|.) simply reads both feature vectors side by side)::

    h1 = bottom_up1(x)                     h2 = bottom_up2(h1)
    q(z2|x)     = N(q_z2(h2))              z2 = mu2 + sigma2 * eps2
    t = top_down(z2)                       p(z1|z2) = N(p_z1(t))
    q(z1|x, z2) = N(q_z1([h1, t]))         z1 = mu1 + sigma1 * eps1
    logits = decoder(z1)

The ELBO has one KL per layer, both in closed form given z2 (Soenderby et al. 2016, Eq. 14)::

    ELBO(x) = E_q[log p(x|z1)] - E_q(z2|x)[KL(q(z1|x, z2) || p(z1|z2))] - KL(q(z2|x) || N(0, I))
            =      -recon      -               kl_1                     -            kl_2

``kl_1`` is the closed-form KL at the one sampled z2 (a one-sample estimate of its expectation).
Free bits act per layer, so a training run cannot silence the top layer for free (Kingma et al.
2016, App. C.8). With ``top_layer=False`` only ``bottom_up1``, ``q_z1`` and ``decoder`` remain and
the model *is* ``models.VAE``'s MLP: ``from_vae(vae)`` copies a trained VAE's weights in.

``HVAE`` speaks the training protocol (``loss_terms``, terms ``recon``, ``kl_1``, ``kl_2``), so
``vae_core.train.fit`` trains it and ``save_checkpoint``/``load_checkpoint`` handle it; its
``encode`` (the mean path) and ``log_likelihood`` serve ``vae_core.metrics``.
Reduction convention as everywhere: sum over data and latent dimensions, mean over the batch.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal, NamedTuple

import torch
from torch import Tensor, nn

from . import losses, metrics
from .data.batches import Batch
from .models import (
    VAE,
    LossTerms,
    LossWeights,
    MLPDecoder,
    VAEConfig,
    _fmt,
    _Heads,
    _importance_batches,
    _is_pos_int,
    _mlp,
    _randn,
    _weight_dtype,
    check_images,
    check_latents,
)
from .train import register_model  # train imports models, never this module: no cycle

__all__ = ["HVAEConfig", "HVAE", "HPass", "HELBOTerms", "from_vae", "active_units_per_layer"]

Gaussian = tuple[Tensor, Tensor]  # (mu, logvar) of a diagonal Gaussian, each (B, D)


@dataclass(frozen=True)
class HVAEConfig:
    """Everything needed to rebuild an ``HVAE``; saved in checkpoints with ``dataclasses.asdict``.

    Vary it with ``dataclasses.replace(config, z2_dim=2)``.
    """

    # (C, H, W) of one image: fixes the first and last layer sizes and the shape checks.
    input_shape: tuple[int, int, int] = (1, 28, 28)
    # Widths of the bottom-up MLP x -> h1 and, reversed, of the decoder z1 -> x (as VAEConfig.hidden); () = linear maps.
    hidden: tuple[int, ...] = (256,)
    # Width of the top layer's features: bottom-up h2 = f(h1) and top-down t = g(z2).
    top_hidden: int = 128
    # Size of z1, the latent the decoder reads.
    z1_dim: int = 16
    # Size of z2, the top latent: it reaches x only through p(z1|z2), so it holds the coarse, global structure.
    z2_dim: int = 8
    # p(x|z1): independent Bernoulli pixels (the decoder gives logits), for data in [0, 1].
    likelihood: Literal["bernoulli"] = "bernoulli"
    # False drops z2: one stochastic layer, exactly models.VAE's MLP (from_vae copies a VAE in).
    top_layer: bool = True

    def __post_init__(self) -> None:
        # Checkpoints may hold lists; accept them and store tuples (a frozen dataclass: via object.__setattr__).
        for name in ("input_shape", "hidden"):
            if isinstance(getattr(self, name), list):
                object.__setattr__(self, name, tuple(getattr(self, name)))
        if not (isinstance(self.input_shape, tuple) and len(self.input_shape) == 3 and all(map(_is_pos_int, self.input_shape))):
            raise ValueError(f"input_shape must be (C, H, W) with three positive ints, e.g. (1, 28, 28), got {self.input_shape!r}")
        if not (isinstance(self.hidden, tuple) and all(map(_is_pos_int, self.hidden))):
            raise ValueError(f"hidden must be a tuple of positive ints such as (256,) or (), got {self.hidden!r}")
        for name, what in (("top_hidden", "the width of h2 and t"), ("z1_dim", "the size of z1"), ("z2_dim", "the size of z2")):
            if not _is_pos_int(getattr(self, name)):
                raise ValueError(f"{name} must be a positive int ({what}), got {getattr(self, name)!r}")
        if self.likelihood != "bernoulli":
            raise ValueError(f"likelihood must be 'bernoulli' (the HVAE decodes Bernoulli logits), got {self.likelihood!r}; "
                             f"scale the data to [0, 1] or use models.VAE for likelihood='gaussian'")
        if not isinstance(self.top_layer, bool):
            raise ValueError(f"top_layer must be True (two stochastic layers) or False (models.VAE's MLP), got {self.top_layer!r}")

    @property
    def data_dim(self) -> int:
        """C * H * W, the number of data dimensions the log-likelihood sums over."""
        return math.prod(self.input_shape)


class HPass(NamedTuple):
    """One inference pass: B examples (``(K, B)`` inside ``log_likelihood``).

    z1: (B, z1_dim) a sample of q(z1|x, z2);   z2: (B, z2_dim) a sample of q(z2|x), None without a top layer.
    q1: (mu, logvar) of q(z1|x, z2), each (B, z1_dim);   q2: (mu, logvar) of q(z2|x), each (B, z2_dim), or None.
    p1: (mu, logvar) of the prior p(z1|z2) at the sampled z2, each (B, z1_dim), or None (then p(z1) = N(0, I)).
    """

    z1: Tensor
    z2: Tensor | None
    q1: Gaussian
    q2: Gaussian | None
    p1: Gaussian | None


class HELBOTerms(NamedTuple):
    """The ELBO of the HVAE in parts, per example (B,) in nats, and the scalar loss.

    recon: -log p(x|z1);  kl: {"kl_1": KL(q(z1|x, z2) || p(z1|z2)), "kl_2": KL(q(z2|x) || N(0, I))}
    ("kl_1" only, against N(0, I), without a top layer);  elbo: -recon - kl_1 - kl_2;
    loss: () batch mean of recon + beta * sum of the layers' KLs (free bits per layer, in the loss only).
    """

    recon: Tensor
    kl: dict[str, Tensor]
    elbo: Tensor
    loss: Tensor


class HVAE(nn.Module):
    """Two-layer top-down VAE p(z2) p(z1|z2) p(x|z1), q(z2|x) q(z1|x, z2); see the module docstring.

    Shapes: x (B, C, H, W) in [0, 1]; z1 (B, z1_dim); z2 (B, z2_dim); logits (B, C, H, W).
    """

    def __init__(self, config: HVAEConfig) -> None:
        super().__init__()
        if not isinstance(config, HVAEConfig):
            raise ValueError(f"expected an HVAEConfig, got {type(config).__name__}; build one with HVAEConfig(...), "
                             f"or turn a trained models.VAE into a one-layer HVAE with from_vae(vae)")
        self.config = c = config
        features = c.hidden[-1] if c.hidden else c.data_dim  # width of h1
        # Bottom-up x -> h1: the same layers as models.MLPEncoder's trunk.
        self.bottom_up1 = _mlp([c.data_dim, *c.hidden])
        if c.top_layer:
            self.bottom_up2 = _mlp([features, c.top_hidden])  # h1 -> h2: Linear + ReLU
            self.q_z2 = _Heads(c.top_hidden, c.z2_dim, variational=True)  # h2 -> (mu2, logvar2) of q(z2|x)
            self.top_down = _mlp([c.z2_dim, c.top_hidden])  # z2 -> t: Linear + ReLU
            self.p_z1 = _Heads(c.top_hidden, c.z1_dim, variational=True)  # t -> (mu, logvar) of p(z1|z2)
        # [h1, t] -> (mu1, logvar1) of q(z1|x, z2); h1 alone without a top layer.
        self.q_z1 = _Heads(features + (c.top_hidden if c.top_layer else 0), c.z1_dim, variational=True)
        self.decoder = MLPDecoder(c.input_shape, c.hidden, c.z1_dim)  # z1 -> logits of p(x|z1)

    device = VAE.device

    # ------------------------------------------------------------------------------------ inference

    def _bottom_up(self, x: Tensor) -> tuple[Tensor, Gaussian | None]:
        """x (B, C, H, W) -> h1 (B, features) and (mu2, logvar2) of q(z2|x), each (B, z2_dim), or None."""
        check_images(x, self.config.input_shape, _weight_dtype(self))
        h1 = self.bottom_up1(x.flatten(1))  # (B, C, H, W) -> (B, C*H*W) -> (B, hidden[-1])
        if not self.config.top_layer:
            return h1, None
        return h1, self.q_z2(self.bottom_up2(h1))  # h1 -> h2 (B, top_hidden) -> q(z2|x)

    def _top_down(self, h1: Tensor, q2: Gaussian | None, eps2: Tensor | None, eps1: Tensor | None) -> HPass:
        """The top-down pass from h1 (B, F) and q(z2|x); eps (..., B, D) noise, or None for the mean path (z = mu)."""
        if q2 is None:
            q1 = self.q_z1(h1)
            return HPass(_reparameterize(q1, eps1), None, q1, None, None)
        z2 = _reparameterize(q2, eps2)  # (..., B, z2_dim)
        t = self.top_down(z2)  # (..., B, top_hidden)
        p1 = self.p_z1(t)  # prior p(z1|z2)
        q1 = self.q_z1(torch.cat([h1.expand(*t.shape[:-1], h1.shape[-1]), t], -1))  # [h1, t] (..., B, F + top_hidden)
        return HPass(_reparameterize(q1, eps1), z2, q1, q2, p1)

    def posteriors(self, x: Tensor, eps2: Tensor | None = None, eps1: Tensor | None = None,
                   generator: torch.Generator | None = None) -> HPass:
        """One inference pass: z2 = mu2 + exp(logvar2 / 2) * eps2, then z1 = mu1 + exp(logvar1 / 2) * eps1 from q(z1|x, z2).

        x (B, C, H, W); eps2 (B, z2_dim) and eps1 (B, z1_dim) standard normal noise, drawn (eps2 first,
        from ``generator`` or the global RNG) where not given. Returns ``HPass`` (z1, z2, q1, q2, p1).
        """
        h1, q2 = self._bottom_up(x)
        b = x.shape[0]
        if q2 is not None:
            eps2 = _noise("eps2", eps2, (b, self.config.z2_dim), generator, h1)
        elif eps2 is not None:
            raise ValueError("eps2 is the noise of z2, but this HVAE has no top layer (top_layer=False); pass eps2=None")
        eps1 = _noise("eps1", eps1, (b, self.config.z1_dim), generator, h1)
        return self._top_down(h1, q2, eps2, eps1)

    def encode(self, x: Tensor) -> Gaussian:
        """(mu, logvar) of the concatenated latent [z1, z2] along the mean path (z2 = mu2, no noise).

        x (B, C, H, W) -> mu, logvar (B, z1_dim + z2_dim): those of q(z1|x, z2 = mu2) then those of q(z2|x);
        (B, z1_dim) without a top layer. What ``metrics.active_units`` and the diagnostics read.
        """
        s = self._top_down(*self._bottom_up(x), None, None)
        if s.q2 is None:
            return s.q1
        return torch.cat([s.q1[0], s.q2[0]], -1), torch.cat([s.q1[1], s.q2[1]], -1)

    def layer_means(self, x: Tensor) -> dict[str, Tensor]:
        """Posterior means per layer on the mean path: {"z1": mu1 (B, z1_dim), "z2": mu2 (B, z2_dim)} ("z1" only without a top layer)."""
        s = self._top_down(*self._bottom_up(x), None, None)
        return {"z1": s.q1[0]} if s.q2 is None else {"z1": s.q1[0], "z2": s.q2[0]}

    # ------------------------------------------------------------------------------------ the ELBO

    def decode(self, z1: Tensor) -> Tensor:
        """p(x|z1): z1 (B, z1_dim) -> logits (B, C, H, W)."""
        check_latents(z1, self.config.z1_dim, "z1", _weight_dtype(self))
        return self.decoder(z1)

    def elbo(self, x: Tensor, beta: float = 1.0, free_bits: float = 0.0, eps2: Tensor | None = None,
             eps1: Tensor | None = None, generator: torch.Generator | None = None) -> HELBOTerms:
        """ELBO(x) = E_q[log p(x|z1)] - KL(q(z1|x, z2) || p(z1|z2)) - KL(q(z2|x) || N(0, I)), one sample of (z2, z1).

        x (B, C, H, W); eps as in ``posteriors``. Returns ``HELBOTerms``: recon, kl["kl_1"], kl["kl_2"], elbo (B,)
        and loss () = mean_b recon + beta * sum over layers of the KL, free bits applied per layer as in
        ``losses.elbo``: sum_j max(free_bits, mean_b KL_bj) for each layer's dimensions j.
        """
        beta = losses._check_nonneg_number("beta", beta, "the KL weight; 1 is the plain ELBO")
        free_bits = losses._check_nonneg_number("free_bits", free_bits, "nats per latent dimension; 0 turns it off")
        s = self.posteriors(x, eps2, eps1, generator)
        recon = -losses.bernoulli_log_prob(self.decode(s.z1), x)  # -log p(x|z1) summed over pixels, (B,)
        # (B, D) -> (B, D, 1): each dimension a 1-D Gaussian, so the sum over the last axis leaves one KL per dimension.
        mu1, logvar1 = (t[..., None] for t in s.q1)
        if s.p1 is None:
            # KL(q(z1|x) || N(0, I)) per dimension = -0.5 (1 + log s^2 - mu^2 - s^2)   (Kingma & Welling 2014, App. B)
            kl_dims = {"kl_1": losses.kl_standard_normal(mu1, logvar1)}
        else:
            # KL(q(z1|x, z2) || p(z1|z2)) at the sampled z2 (closed form given z2; Soenderby et al. 2016, Eq. 14)
            kl_dims = {"kl_1": losses.kl_diag_gaussians(mu1, logvar1, s.p1[0][..., None], s.p1[1][..., None]),
                       "kl_2": losses.kl_standard_normal(s.q2[0][..., None], s.q2[1][..., None])}  # KL(q(z2|x) || N(0, I))
        kl = {name: d.sum(-1) for name, d in kl_dims.items()}  # (B, D_layer) -> (B,)
        elbo = -recon
        for k in kl.values():
            elbo = elbo - k  # ELBO = -recon - kl_1 - kl_2
        if free_bits > 0:
            # free bits per layer: sum_j max(lambda, E_x[KL_j])   (Kingma et al. 2016, App. C.8)
            charged = [d.mean(0).clamp(min=free_bits).sum() for d in kl_dims.values()]
        else:
            charged = [k.mean() for k in kl.values()]
        loss = recon.mean() + beta * sum(charged)  # negative beta-ELBO, batch mean
        return HELBOTerms(recon, kl, elbo, loss)

    def loss_terms(self, batch: Batch, weights: LossWeights = LossWeights()) -> LossTerms:
        """The training protocol: -ELBO with every layer's KL weighted by ``weights.kl``, free bits per layer.

        batch.x (B, C, H, W) (labels ignored) -> ``LossTerms`` with ``recon``, ``kl_1``, ``kl_2`` and ``elbo`` (B,), unweighted.
        """
        t = self.elbo(batch.x, beta=weights.kl, free_bits=weights.free_bits)
        return LossTerms(t.loss, {"recon": t.recon, **t.kl}, t.elbo)

    @torch.no_grad()
    def log_likelihood(self, x: Tensor, k: int = 100, batch_k: int | None = None,
                       generator: torch.Generator | None = None) -> Tensor:
        """Importance-weighted estimate of log p(x) in nats, shape (B,)   (Burda et al. 2016, Eq. 8).

        log p(x) ~= log (1/k) sum_i p(x|z1_i) p(z1_i|z2_i) p(z2_i) / (q(z1_i|x, z2_i) q(z2_i|x)),
        z2_i ~ q(z2|x), z1_i ~ q(z1|x, z2_i). A lower bound that tightens as k grows; k=1 is the ELBO
        in expectation. Drawn ``batch_k`` samples at a time (eps2 then eps1 per chunk), as ``VAE.log_likelihood``.
        """
        b, batch_k = _importance_batches(x, k, batch_k)
        h1, q2 = self._bottom_up(x)
        c = self.config
        log_w = []
        for start in range(0, k, batch_k):
            kc = min(batch_k, k - start)
            eps2 = None if q2 is None else _randn((kc, b, c.z2_dim), generator, h1.device, h1.dtype)
            s = self._top_down(h1, q2, eps2, _randn((kc, b, c.z1_dim), generator, h1.device, h1.dtype))  # z (kc, B, D)
            logits = self.decode(s.z1.reshape(kc * b, -1))  # (kc*B, z1_dim) -> (kc*B, C, H, W)
            xk = x.expand(kc, *x.shape).reshape(kc * b, *x.shape[1:])  # (B, C, H, W) -> (kc*B, C, H, W)
            log_px_z = losses.bernoulli_log_prob(logits, xk).view(kc, b)  # log p(x|z1)
            log_q1 = losses.log_normal_diag(s.z1, *s.q1)  # log q(z1|x, z2), (kc, B)
            if q2 is None:
                log_w.append(log_px_z + losses.log_normal_std(s.z1) - log_q1)  # log p(x, z1) - log q(z1|x)
            else:
                log_p1 = losses.log_normal_diag(s.z1, *s.p1)  # log p(z1|z2)
                log_q2 = losses.log_normal_diag(s.z2, *s.q2)  # log q(z2|x)
                # log w = log p(x|z1) + log p(z1|z2) + log p(z2) - log q(z1|x, z2) - log q(z2|x)
                log_w.append(log_px_z + log_p1 + losses.log_normal_std(s.z2) - log_q1 - log_q2)
        return losses.iwae_bound(torch.cat(log_w, 0))  # (k, B) -> (B,)

    # ------------------------------------------------------------------------------------ generating

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator | None = None, z2: Tensor | None = None) -> Tensor:
        """Ancestral sampling: z2 ~ N(0, I) (or the given z2), z1 ~ p(z1|z2), x = sigmoid(decode(z1)).

        Returns (n, C, H, W) Bernoulli probabilities. ``z2``: (n, z2_dim), or (1, z2_dim) shared by all n
        samples, which then differ only through z1. Without a top layer: z1 ~ N(0, I), as ``VAE.sample``.
        """
        if not _is_pos_int(n):
            raise ValueError(f"n must be a positive int, got {n!r}")
        c, p = self.config, next(self.parameters())
        if not c.top_layer:
            if z2 is not None:
                raise ValueError("this HVAE has no top layer (top_layer=False), so there is no z2 to fix; pass z2=None")
            z1 = _randn((n, c.z1_dim), generator, p.device, p.dtype)  # z1 ~ N(0, I)
            return torch.sigmoid(self.decode(z1))
        if z2 is None:
            z2 = _randn((n, c.z2_dim), generator, p.device, p.dtype)  # z2 ~ N(0, I)
        else:
            check_latents(z2, c.z2_dim, "z2", p.dtype)
            if z2.shape[0] not in (1, n):
                raise ValueError(f"z2 must have shape ({n}, {c.z2_dim}), one per sample, or (1, {c.z2_dim}) shared by all, "
                                 f"got {_fmt(z2.shape)}")
            z2 = z2.to(p.device).expand(n, -1)
        mu, logvar = self.p_z1(self.top_down(z2))  # p(z1|z2), (n, z1_dim) each
        z1 = mu + torch.exp(0.5 * logvar) * _randn((n, c.z1_dim), generator, p.device, p.dtype)  # z1 ~ p(z1|z2)
        return torch.sigmoid(self.decode(z1))

    @torch.no_grad()
    def reconstruct(self, x: Tensor) -> Tensor:
        """sigmoid(decode(mu1)) along the mean path (z2 = mu2, z1 = mu1): x (B, C, H, W) -> (B, C, H, W) in [0, 1]."""
        s = self._top_down(*self._bottom_up(x), None, None)
        return torch.sigmoid(self.decode(s.z1))


def _reparameterize(q: Gaussian, eps: Tensor | None) -> Tensor:
    """z = mu + exp(0.5 logvar) * eps (Kingma & Welling 2014, Sec. 2.4); eps None: the mean path, z = mu."""
    mu, logvar = q
    return mu if eps is None else mu + torch.exp(0.5 * logvar) * eps


def _noise(name: str, eps: Tensor | None, shape: tuple[int, int], generator: torch.Generator | None, like: Tensor) -> Tensor:
    """eps as given (checked: ``shape``, float), or N(0, I) noise of ``shape`` drawn from ``generator``."""
    if eps is None:
        return _randn(shape, generator, like.device, like.dtype)
    losses.check_float(name, eps)
    if tuple(eps.shape) != shape:
        raise ValueError(f"{name} must have shape {shape}: standard normal noise for z{name[-1]}, one row per image, "
                         f"got {_fmt(eps.shape)}; draw it with torch.randn{shape} or pass {name}=None")
    return eps.to(like.device, like.dtype)


def from_vae(vae: VAE) -> HVAE:
    """The one-layer HVAE (top_layer=False) holding a ``models.VAE``'s weights, on its device and dtype.

    encoder.body -> bottom_up1, encoder.heads -> q_z1, decoder -> decoder: the same ELBO, log-likelihood
    and samples as ``vae`` on the same noise. ``vae`` must be an MLP VAE with a Bernoulli decoder.
    """
    cfg = getattr(vae, "config", None)
    if not (isinstance(vae, VAE) and isinstance(cfg, VAEConfig) and cfg.arch == "mlp" and cfg.decoder == "mirror"
            and cfg.likelihood == "bernoulli"):
        got = (f"arch={cfg.arch!r}, decoder={cfg.decoder!r}, likelihood={cfg.likelihood!r}" if isinstance(cfg, VAEConfig)
               else type(vae).__name__)
        raise ValueError(f"from_vae takes a models.VAE with arch='mlp', decoder='mirror' and likelihood='bernoulli' "
                         f"(the HVAE's one-layer architecture), got {got}")
    p = next(vae.parameters())
    model = HVAE(HVAEConfig(input_shape=cfg.input_shape, hidden=cfg.hidden, z1_dim=cfg.latent_dim, top_layer=False))
    model.to(p.device, p.dtype)
    rename = {"encoder.body.": "bottom_up1.", "encoder.heads.": "q_z1.", "decoder.": "decoder."}
    state = {}
    for key, value in vae.state_dict().items():
        old = next(prefix for prefix in rename if key.startswith(prefix))
        state[rename[old] + key[len(old):]] = value
    model.load_state_dict(state)  # strict: every parameter on each side has its counterpart
    return model.train(vae.training)


def active_units_per_layer(model: HVAE, data: object, threshold: float = 0.01,
                           batch_size: int = 256) -> dict[str, tuple[int, Tensor]]:
    """Active units per layer (Burda et al. 2016, Sec. 5.2): unit u is active when A_u = Var_x(E_q[z_u]) > threshold.

    E_q[z_u] is read on the mean path (``layer_means``). ``data``: ``Dataset`` or tensor (N, C, H, W), N >= 2,
    binarized as ``metrics.active_units`` does. Returns {"z1": (count, variances (z1_dim,)), "z2": (count,
    variances (z2_dim,))} (population variances, CPU float32), "z1" only without a top layer.
    """
    if not isinstance(model, HVAE):
        raise ValueError(f"active_units_per_layer takes an HVAE, got {type(model).__name__}; for a one-layer VAE use "
                         f"vae_core.metrics.active_units(model, data)")
    if isinstance(threshold, bool) or not isinstance(threshold, (int, float)) or not threshold >= 0:
        raise ValueError(f"threshold must be a number >= 0 (Burda et al. use 0.01), got {threshold!r}")
    batch_size = metrics._check_pos_int("batch_size", batch_size, "examples per forward pass")
    images = metrics._images(data)
    if images.shape[0] < 2:
        raise ValueError(f"active_units_per_layer needs at least 2 examples to compute a variance, got {images.shape[0]}")
    with metrics._EvalMode(model):
        parts = [model.layer_means(x) for x in metrics._batches(images, batch_size, model.device)]
    out = {}
    for name in parts[0]:
        mu = torch.cat([part[name].double().cpu() for part in parts], 0)  # (N, D_layer)
        variances = mu.var(dim=0, correction=0).float()  # A_u = Var_x(E_q(z|x)[z_u])   (Burda et al. 2016, Sec. 5.2)
        out[name] = (int((variances > threshold).sum()), variances)
    return out


register_model(HVAE, HVAEConfig)
