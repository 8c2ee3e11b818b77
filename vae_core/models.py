"""Encoders, decoders, the ``VAE`` and a plain ``AutoEncoder``.

The VAE of Kingma & Welling (2014): an encoder q(z|x) = N(mu(x), diag exp(logvar(x))),
a standard normal prior p(z) = N(0, I) and a decoder p(x|z) that is Bernoulli (logits) or a
Gaussian with a fixed variance (mean). Methods are named after the math::

    mu, logvar = vae.encode(x)                 # q(z|x)
    z = vae.reparameterize(mu, logvar)         # z = mu + sigma * eps
    x_params = vae.decode(z)                   # p(x|z)
    terms = vae.elbo(x)                        # ELBOTerms(recon, kl, elbo, loss)

The training protocol (how ``vae_core.train.fit`` talks to every model): a model implements
``loss_terms(batch: Batch, weights: LossWeights) -> LossTerms``, the scalar loss to minimise plus
its per-example terms by name (``recon``, ``kl``, ``kl_1``, ``commit``, ...) and its per-example
ELBO where it has one. ``VAE`` and ``AutoEncoder`` here (and ``reference.ReferenceVAE``) implement it.

Reduction convention, as everywhere in ``vae_core``: sum over data and latent dimensions,
mean over the batch. Per-example quantities have shape (B,), ``loss`` is a batch mean.

Architectures (``VAEConfig.arch``):

- ``"mlp"``: flatten -> Linear/ReLU per ``hidden`` width -> two heads (mu, logvar); the decoder
  mirrors it. ``pytorch_examples_config()`` is the 784-400-20 net of pytorch/examples ``vae/main.py``.
- ``"conv"``: stride-2 4x4 convolutions (each halves height and width; Higgins et al. 2017 use
  32-32-64-64 on 64x64), then the ``hidden`` fully connected layers; the decoder mirrors it with
  transposed convolutions. Default channels per image size: 8x8 and 28x28 -> (32, 64), 64x64 ->
  (32, 32, 64, 64).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

import torch
from torch import Tensor, nn

from . import losses

if TYPE_CHECKING:  # annotations only: the protocol's batch type lives with the data
    from .data.batches import Batch

__all__ = [
    "VAEConfig",
    "MLPEncoder",
    "MLPDecoder",
    "ConvEncoder",
    "ConvDecoder",
    "VAE",
    "AutoEncoder",
    "LossWeights",
    "LossTerms",
    "build_model",
    "pytorch_examples_config",
    "default_channels",
]

# Conv channels chosen per image side when VAEConfig.channels is None.
_DEFAULT_CHANNELS: dict[int, tuple[int, ...]] = {
    8: (32, 64),  # 8 -> 4 -> 2
    28: (32, 64),  # 28 -> 14 -> 7
    64: (32, 32, 64, 64),  # 64 -> 32 -> 16 -> 8 -> 4 (Higgins et al. 2017, beta-VAE)
}


def default_channels(input_shape: tuple[int, int, int]) -> tuple[int, ...]:
    """Conv channels used for ``input_shape`` (C, H, W) when ``VAEConfig.channels`` is None."""
    _, h, w = input_shape
    if h != w or h not in _DEFAULT_CHANNELS:
        sizes = ", ".join(f"{s}x{s}" for s in _DEFAULT_CHANNELS)
        raise ValueError(
            f"arch='conv' has default channels for {sizes} images, got input_shape {tuple(input_shape)}; "
            f"pass channels=(...) with n entries such that 2**n divides height and width, or use arch='mlp'"
        )
    return _DEFAULT_CHANNELS[h]


@dataclass
class VAEConfig:
    """Everything needed to rebuild a model; saved in checkpoints with ``dataclasses.asdict``.

    Vary it with ``dataclasses.replace(config, latent_dim=2)``.
    """

    # (C, H, W) of one image: fixes the first and last layer sizes and the shape checks.
    input_shape: tuple[int, int, int] = (1, 28, 28)
    # Size D of z: small (2) for pictures of the latent space, larger (20+) for good likelihoods.
    latent_dim: int = 20
    # Widths of the fully connected layers between pixels (or conv features) and z; () = linear map.
    hidden: tuple[int, ...] = (400,)
    # "mlp" treats pixels as a flat vector; "conv" uses stride-2 convolutions (fewer parameters, local structure).
    arch: Literal["mlp", "conv"] = "mlp"
    # p(x|z): "bernoulli" for data in [0, 1] read as probabilities (decoder gives logits);
    # "gaussian" for real-valued data (decoder gives the mean, variance fixed below).
    likelihood: Literal["bernoulli", "gaussian"] = "bernoulli"
    # log sigma^2 of the Gaussian decoder, fixed: it sets how much reconstruction error costs against the KL.
    gaussian_logvar: float = 0.0
    # Conv channels per stride-2 layer (arch="conv" only); None picks a default per image size.
    channels: tuple[int, ...] | None = None
    # "mirror": the decoder mirrors the encoder (MLP or deconvolutions); "broadcast": the spatial broadcast
    # decoder (vae_core.broadcast, Watters et al. 2019), which is handed each pixel's position.
    decoder: Literal["mirror", "broadcast"] = "mirror"
    # Widths of the broadcast decoder's per-pixel MLP (decoder="broadcast" only).
    broadcast_hidden: tuple[int, ...] = (32, 32)

    def __post_init__(self) -> None:
        # Checkpoints store lists (asdict + torch.save); accept them and store tuples.
        if isinstance(self.input_shape, list):
            self.input_shape = tuple(self.input_shape)
        if isinstance(self.hidden, list):
            self.hidden = tuple(self.hidden)
        if isinstance(self.channels, list):
            self.channels = tuple(self.channels)
        if isinstance(self.broadcast_hidden, list):
            self.broadcast_hidden = tuple(self.broadcast_hidden)

        if not (isinstance(self.input_shape, tuple) and len(self.input_shape) == 3 and all(_is_pos_int(s) for s in self.input_shape)):
            raise ValueError(
                f"input_shape must be (C, H, W) with three positive ints, e.g. (1, 28, 28), got {self.input_shape!r}"
            )
        if not _is_pos_int(self.latent_dim):
            raise ValueError(f"latent_dim must be a positive int, got {self.latent_dim!r}")
        if not (isinstance(self.hidden, tuple) and all(_is_pos_int(h) for h in self.hidden)):
            raise ValueError(f"hidden must be a tuple of positive ints such as (400,) or (), got {self.hidden!r}")
        if self.arch not in ("mlp", "conv"):
            raise ValueError(f"arch must be 'mlp' or 'conv', got {self.arch!r}")
        if self.likelihood not in ("bernoulli", "gaussian"):
            raise ValueError(f"likelihood must be 'bernoulli' or 'gaussian', got {self.likelihood!r}")
        if isinstance(self.gaussian_logvar, bool) or not isinstance(self.gaussian_logvar, (int, float)) or not math.isfinite(self.gaussian_logvar):
            raise ValueError(f"gaussian_logvar must be a finite float (log sigma^2), got {self.gaussian_logvar!r}")
        self.gaussian_logvar = float(self.gaussian_logvar)
        if self.channels is not None:
            if not (isinstance(self.channels, tuple) and len(self.channels) > 0 and all(_is_pos_int(c) for c in self.channels)):
                raise ValueError(f"channels must be None or a non-empty tuple of positive ints such as (32, 64), got {self.channels!r}")
            if self.arch != "conv":
                raise ValueError(f"channels is only used by arch='conv', got arch={self.arch!r}; drop channels or set arch='conv'")
        if self.arch == "conv":
            _check_conv_shape(self.input_shape, self.conv_channels)
        if self.decoder not in ("mirror", "broadcast"):
            raise ValueError(f"decoder must be 'mirror' or 'broadcast', got {self.decoder!r}")
        if not (isinstance(self.broadcast_hidden, tuple) and all(_is_pos_int(h) for h in self.broadcast_hidden)):
            raise ValueError(f"broadcast_hidden must be a tuple of positive ints such as (32, 32), got {self.broadcast_hidden!r}")

    @property
    def conv_channels(self) -> tuple[int, ...]:
        """Channels of the stride-2 conv layers actually used (``channels`` or the per-size default)."""
        return self.channels if self.channels is not None else default_channels(self.input_shape)

    @property
    def data_dim(self) -> int:
        """C * H * W, the number of data dimensions the log-likelihood sums over."""
        c, h, w = self.input_shape
        return c * h * w


def pytorch_examples_config() -> VAEConfig:
    """The pytorch/examples ``vae/main.py`` model: MLP 784-400-20, Bernoulli decoder, ReLU."""
    return VAEConfig(input_shape=(1, 28, 28), latent_dim=20, hidden=(400,), arch="mlp", likelihood="bernoulli")


# ----------------------------------------------------------------------------------------------
# shape checks


def _is_pos_int(v: object) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and v > 0


def _fmt(shape) -> str:
    return str(tuple(shape))  # (32, 784), (20,)


def _check_conv_shape(input_shape: tuple[int, int, int], channels: tuple[int, ...]) -> None:
    _, h, w = input_shape
    f = 2 ** len(channels)
    if h % f or w % f:
        raise ValueError(
            f"arch='conv' with channels={channels} halves the image {len(channels)} times, so height and width "
            f"must be divisible by {f}; got input_shape {tuple(input_shape)}. Use fewer channels entries, "
            f"one of the sizes 8x8, 28x28, 64x64 with channels=None, or arch='mlp'"
        )


def check_images(x: Tensor, input_shape: tuple[int, int, int], dtype: torch.dtype | None = None) -> None:
    """Raise ``ValueError`` unless ``x`` is a float tensor of shape (B, *input_shape) with B >= 1
    (and, when given, of the model's ``dtype``)."""
    if not isinstance(x, Tensor):
        raise ValueError(f"expected a torch.Tensor of images with shape (B, {', '.join(map(str, input_shape))}), got {type(x).__name__}")
    expected = "(B, " + ", ".join(str(s) for s in input_shape) + ")"
    if x.dim() != 4 or tuple(x.shape[1:]) != tuple(input_shape):
        hint = ""
        if x.numel() and x.numel() % math.prod(input_shape) == 0:
            hint = f"; reshape with x.view(-1, {', '.join(map(str, input_shape))})"
        raise ValueError(f"expected images of shape {expected}, got {_fmt(x.shape)}{hint}")
    if not x.is_floating_point():
        raise ValueError(f"expected float images in [0, 1], got dtype {x.dtype}; convert with x.float() / 255")
    if x.shape[0] == 0:
        raise ValueError(f"expected at least one image, got an empty batch of shape {_fmt(x.shape)}; "
                         "check the slice or the data loader that produced it")
    _check_dtype("images", x, dtype)


def check_latents(z: Tensor, latent_dim: int, name: str = "z", dtype: torch.dtype | None = None) -> None:
    """Raise ``ValueError`` unless ``z`` is a float tensor of shape (B, latent_dim) with B >= 1
    (and, when given, of the model's ``dtype``)."""
    if not isinstance(z, Tensor) or z.dim() != 2 or z.shape[1] != latent_dim:
        got = _fmt(z.shape) if isinstance(z, Tensor) else type(z).__name__
        raise ValueError(f"expected {name} of shape (B, {latent_dim}), got {got}; add a batch dimension with {name}[None] if it is one vector")
    if not z.is_floating_point():
        raise ValueError(f"expected float latents {name}, got dtype {z.dtype}; convert with {name}.float()")
    if z.shape[0] == 0:
        raise ValueError(f"expected at least one latent vector, got an empty batch {name} of shape {_fmt(z.shape)}")
    _check_dtype(name, z, dtype)


def _check_dtype(name: str, t: Tensor, dtype: torch.dtype | None) -> None:
    if dtype is not None and t.dtype != dtype:
        short = str(dtype).replace("torch.", "")
        raise ValueError(f"the input {name} is {t.dtype} but the model's weights are {dtype}; convert the input with "
                         f".to(torch.{short}) (or the model with model.to({t.dtype}))")


def _weight_dtype(module: nn.Module) -> torch.dtype | None:
    p = next(module.parameters(), None)
    return p.dtype if p is not None else None


# ----------------------------------------------------------------------------------------------
# encoders and decoders


def _mlp(sizes: list[int]) -> nn.Sequential:
    """Linear layers between consecutive sizes, ReLU after each one (the last one included)."""
    layers: list[nn.Module] = []
    for a, b in zip(sizes[:-1], sizes[1:]):
        layers += [nn.Linear(a, b), nn.ReLU()]
    return nn.Sequential(*layers)


class _Heads(nn.Module):
    """Gaussian heads (mu, logvar) for a VAE, or a single deterministic code z for an AutoEncoder."""

    def __init__(self, features: int, latent_dim: int, variational: bool) -> None:
        super().__init__()
        self.variational = variational
        if variational:
            self.mu = nn.Linear(features, latent_dim)
            self.logvar = nn.Linear(features, latent_dim)
        else:
            self.z = nn.Linear(features, latent_dim)

    def forward(self, h: Tensor) -> tuple[Tensor, Tensor] | Tensor:
        if self.variational:
            return self.mu(h), self.logvar(h)
        return self.z(h)


class MLPEncoder(nn.Module):
    """x (B, C, H, W) -> (mu, logvar), each (B, D); with ``variational=False``: z (B, D).

    flatten -> [Linear, ReLU] per hidden width -> Linear heads.
    """

    def __init__(self, input_shape: tuple[int, int, int], hidden: tuple[int, ...], latent_dim: int, variational: bool = True) -> None:
        super().__init__()
        self.input_shape = tuple(input_shape)
        d = math.prod(self.input_shape)
        self.body = _mlp([d, *hidden])
        self.heads = _Heads(hidden[-1] if hidden else d, latent_dim, variational)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor] | Tensor:
        check_images(x, self.input_shape, _weight_dtype(self))
        h = self.body(x.flatten(1))  # (B, C, H, W) -> (B, C*H*W) -> (B, hidden[-1])
        return self.heads(h)


class MLPDecoder(nn.Module):
    """z (B, D) -> x_params (B, C, H, W), unconstrained (logits or pre-sigmoid mean).

    [Linear, ReLU] per reversed hidden width -> Linear to C*H*W.
    """

    def __init__(self, input_shape: tuple[int, int, int], hidden: tuple[int, ...], latent_dim: int) -> None:
        super().__init__()
        self.input_shape = tuple(input_shape)
        self.latent_dim = latent_dim
        rev = list(reversed(hidden))
        self.body = _mlp([latent_dim, *rev])
        self.out = nn.Linear(rev[-1] if rev else latent_dim, math.prod(self.input_shape))

    def forward(self, z: Tensor) -> Tensor:
        check_latents(z, self.latent_dim, dtype=_weight_dtype(self))
        return self.out(self.body(z)).view(-1, *self.input_shape)  # (B, C*H*W) -> (B, C, H, W)


class ConvEncoder(nn.Module):
    """x (B, C, H, W) -> (mu, logvar), each (B, D); with ``variational=False``: z (B, D).

    [Conv2d 4x4 stride 2 pad 1, ReLU] per channel entry (each halves H and W), flatten,
    [Linear, ReLU] per hidden width, Linear heads.
    """

    def __init__(
        self,
        input_shape: tuple[int, int, int],
        channels: tuple[int, ...],
        hidden: tuple[int, ...],
        latent_dim: int,
        variational: bool = True,
    ) -> None:
        super().__init__()
        self.input_shape = tuple(input_shape)
        _check_conv_shape(self.input_shape, channels)
        c, h, w = self.input_shape
        layers: list[nn.Module] = []
        for c_in, c_out in zip((c, *channels[:-1]), channels):
            layers += [nn.Conv2d(c_in, c_out, kernel_size=4, stride=2, padding=1), nn.ReLU()]
        self.conv = nn.Sequential(*layers)
        f = 2 ** len(channels)
        flat = channels[-1] * (h // f) * (w // f)
        self.body = _mlp([flat, *hidden])
        self.heads = _Heads(hidden[-1] if hidden else flat, latent_dim, variational)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor] | Tensor:
        check_images(x, self.input_shape, _weight_dtype(self))
        h = self.conv(x).flatten(1)  # (B, C, H, W) -> (B, c_last, H/2^n, W/2^n) -> (B, flat)
        return self.heads(self.body(h))


class ConvDecoder(nn.Module):
    """z (B, D) -> x_params (B, C, H, W), unconstrained (logits or pre-sigmoid mean).

    Mirror of ``ConvEncoder``: [Linear, ReLU] up to c_last * H/2^n * W/2^n, then
    [ConvTranspose2d 4x4 stride 2 pad 1, ReLU] doubling H and W each time (no ReLU on the last).
    """

    def __init__(self, input_shape: tuple[int, int, int], channels: tuple[int, ...], hidden: tuple[int, ...], latent_dim: int) -> None:
        super().__init__()
        self.input_shape = tuple(input_shape)
        self.latent_dim = latent_dim
        _check_conv_shape(self.input_shape, channels)
        c, h, w = self.input_shape
        f = 2 ** len(channels)
        self.start = (channels[-1], h // f, w // f)
        self.body = _mlp([latent_dim, *reversed(hidden), math.prod(self.start)])
        rev = list(reversed(channels))
        layers: list[nn.Module] = []
        for i, (c_in, c_out) in enumerate(zip(rev, [*rev[1:], c])):
            layers.append(nn.ConvTranspose2d(c_in, c_out, kernel_size=4, stride=2, padding=1))
            if i < len(rev) - 1:
                layers.append(nn.ReLU())
        self.deconv = nn.Sequential(*layers)

    def forward(self, z: Tensor) -> Tensor:
        check_latents(z, self.latent_dim, dtype=_weight_dtype(self))
        h = self.body(z).view(-1, *self.start)  # (B, c_last*h*w) -> (B, c_last, h, w)
        return self.deconv(h)  # (B, c_last, h, w) -> (B, C, H, W)


def _make_encoder(config: VAEConfig, variational: bool) -> nn.Module:
    if config.arch == "conv":
        return ConvEncoder(config.input_shape, config.conv_channels, config.hidden, config.latent_dim, variational)
    return MLPEncoder(config.input_shape, config.hidden, config.latent_dim, variational)


def _make_decoder(config: VAEConfig) -> nn.Module:
    if config.decoder == "broadcast":
        from .broadcast import SpatialBroadcastDecoder

        return SpatialBroadcastDecoder(config.input_shape, config.latent_dim, config.broadcast_hidden)
    if config.arch == "conv":
        return ConvDecoder(config.input_shape, config.conv_channels, config.hidden, config.latent_dim)
    return MLPDecoder(config.input_shape, config.hidden, config.latent_dim)


def _check_config(config: object) -> VAEConfig:
    if not isinstance(config, VAEConfig):
        raise ValueError(f"expected a VAEConfig, got {type(config).__name__}; build one with VAEConfig(...) or pytorch_examples_config()")
    return config


# ----------------------------------------------------------------------------------------------
# the training protocol


@dataclass(frozen=True)
class LossWeights:
    """What the training loop schedules, handed to ``loss_terms`` by name; the model applies it.

    A model multiplies every KL term in its loss (the term named ``kl``, and ``kl_1``, ``kl_2``, ...
    per layer) by ``kl`` and charges each of them at least ``free_bits`` nats per latent dimension.
    Other terms (``recon``, ``commit``, ``codebook``, ...) keep weights the model fixes itself.
    """

    # beta_t, the KL weight at this step (vae_core.train.kl_weight: constant, linear or cyclical).
    kl: float = 1.0
    # Free bits lambda in nats per latent dimension (Kingma et al. 2016); 0 turns it off.
    free_bits: float = 0.0

    def weight(self, name: str) -> float:
        """The factor on term ``name`` in the loss: ``kl`` for ``"kl"`` and ``"kl_<layer>"``, else 1."""
        return self.kl if name == "kl" or name.startswith("kl_") else 1.0


@dataclass(frozen=True)
class LossTerms:
    """What ``loss_terms`` returns: the loss to minimise and the per-example terms it is made of.

    loss:  ``()`` the scalar ``fit`` minimises: a batch mean with ``LossWeights`` applied.
    terms: name -> ``(B,)`` per-example term in nats, *unweighted*, e.g. ``{"recon": ..., "kl": ...}``
           or ``{"recon": ..., "commit": ..., "codebook": ...}``; ``History`` records each by name.
    elbo:  ``(B,)`` per-example ELBO (a lower bound on log p(x)), or None for a model without one.
    """

    loss: Tensor
    terms: dict[str, Tensor]
    elbo: Tensor | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.loss, Tensor) or self.loss.dim() != 0:
            got = _fmt(self.loss.shape) if isinstance(self.loss, Tensor) else type(self.loss).__name__
            raise ValueError(f"LossTerms.loss must be a scalar tensor (the batch mean to minimise), got {got}; reduce it with .mean()")
        if not isinstance(self.terms, dict) or not self.terms:
            raise ValueError(f"LossTerms.terms must be a non-empty dict name -> (B,) tensor such as "
                             f"{{'recon': recon, 'kl': kl}}, got {self.terms!r}")
        shape = None
        for name, t in self.terms.items():
            if not (isinstance(name, str) and name.isidentifier()) or name == "elbo":
                raise ValueError(f"LossTerms.terms names must be identifiers such as 'recon', 'kl_1' or 'commit' "
                                 f"('elbo' has its own field), got {name!r}")
            if not isinstance(t, Tensor) or t.dim() != 1 or (shape is not None and t.shape != shape):
                got = _fmt(t.shape) if isinstance(t, Tensor) else type(t).__name__
                want = f"{_fmt(shape)} like the terms before it" if shape is not None else "(B,), one value per example"
                raise ValueError(f"LossTerms.terms[{name!r}] must have shape {want}, got {got}; sum over the other dimensions")
            shape = t.shape
        if self.elbo is not None and (not isinstance(self.elbo, Tensor) or self.elbo.shape != shape):
            got = _fmt(self.elbo.shape) if isinstance(self.elbo, Tensor) else type(self.elbo).__name__
            raise ValueError(f"LossTerms.elbo must be None or have the terms' shape {_fmt(shape)}, got {got}")


_NO_WEIGHTS = LossWeights()


# ----------------------------------------------------------------------------------------------
# models


class VAE(nn.Module):
    """Variational autoencoder with a N(0, I) prior (Kingma & Welling 2014).

    Shapes: x (B, C, H, W) in [0, 1]; mu, logvar, z (B, D); x_params (B, C, H, W).
    """

    def __init__(self, config: VAEConfig) -> None:
        super().__init__()
        self.config = _check_config(config)
        self.encoder = _make_encoder(config, variational=True)
        self.decoder = _make_decoder(config)

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    def encode(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """q(z|x) = N(mu, diag exp(logvar)): x (B, C, H, W) -> (mu (B, D), logvar (B, D))."""
        return self.encoder(x)

    def reparameterize(self, mu: Tensor, logvar: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """z = mu + exp(0.5 logvar) * eps, eps ~ N(0, I)   (Kingma & Welling 2014, Sec. 2.4).

        mu, logvar: (B, D) -> z: (B, D); differentiable in mu and logvar.
        """
        losses.check_float("mu", mu)
        losses.check_float("logvar", logvar)
        if mu.shape != logvar.shape:
            raise ValueError(f"logvar must have the shape of mu {_fmt(mu.shape)}, got {_fmt(logvar.shape)}")
        eps = _randn(mu.shape, generator, mu.device, mu.dtype)
        return mu + torch.exp(0.5 * logvar) * eps

    def decode(self, z: Tensor) -> Tensor:
        """p(x|z): z (B, D) -> x_params (B, C, H, W): logits (bernoulli) or the mean in (0, 1) (gaussian)."""
        out = self.decoder(z)
        if self.config.likelihood == "gaussian":
            return torch.sigmoid(out)  # mean kept in (0, 1), the range of the data
        return out

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """x (B, C, H, W) -> (x_params (B, C, H, W), mu (B, D), logvar (B, D)), with one z sample."""
        mu, logvar = self.encode(x)
        z = self.reparameterize(mu, logvar)
        return self.decode(z), mu, logvar

    def elbo(self, x: Tensor, beta: float = 1.0, free_bits: float = 0.0) -> losses.ELBOTerms:
        """ELBO(x) = E_q[log p(x|z)] - KL(q(z|x) || p(z)), one-sample estimate, via ``losses.elbo``.

        Returns ``ELBOTerms``: per-example ``recon``, ``kl``, ``elbo`` of shape (B,) in nats and the
        scalar ``loss`` = mean over the batch of recon + beta * KL (free bits on the KL in the loss only).
        """
        x_params, mu, logvar = self(x)
        return losses.elbo(
            x,
            x_params,
            mu,
            logvar,
            likelihood=self.config.likelihood,
            beta=beta,
            free_bits=free_bits,
            x_logvar=self.config.gaussian_logvar if self.config.likelihood == "gaussian" else None,
        )

    def loss_terms(self, batch: Batch, weights: LossWeights = _NO_WEIGHTS) -> LossTerms:
        """The training protocol: -ELBO with the KL weighted by ``weights.kl`` and ``weights.free_bits``.

        batch.x (B, C, H, W) (labels ignored) -> ``LossTerms`` with ``recon``, ``kl`` and ``elbo`` (B,)
        from ``elbo`` and loss = mean over the batch of recon + kl_weight * KL (free bits in the loss only).
        """
        t = self.elbo(batch.x, beta=weights.kl, free_bits=weights.free_bits)
        return LossTerms(t.loss, {"recon": t.recon, "kl": t.kl}, t.elbo)

    def log_px_given_z(self, x: Tensor, x_params: Tensor) -> Tensor:
        """log p(x|z) summed over pixels: x, x_params (B, C, H, W) -> (B,)."""
        if self.config.likelihood == "bernoulli":
            return losses.bernoulli_log_prob(x_params, x)
        return losses.gaussian_log_prob(x, x_params, self.config.gaussian_logvar)

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        """Draw z ~ N(0, I) and decode: returns (n, C, H, W) in [0, 1] (Bernoulli probabilities or Gaussian means)."""
        if not _is_pos_int(n):
            raise ValueError(f"n must be a positive int, got {n!r}")
        p = next(self.parameters())
        z = _randn((n, self.config.latent_dim), generator, p.device, p.dtype)
        return self._to_image(self.decode(z))

    @torch.no_grad()
    def reconstruct(self, x: Tensor) -> Tensor:
        """decode(mu(x)): x (B, C, H, W) -> reconstructions (B, C, H, W) in [0, 1] (no sampling noise)."""
        mu, _ = self.encode(x)
        return self._to_image(self.decode(mu))

    def _to_image(self, x_params: Tensor) -> Tensor:
        if self.config.likelihood == "bernoulli":
            return torch.sigmoid(x_params)
        return x_params.clamp(0.0, 1.0)

    @torch.no_grad()
    def log_likelihood(self, x: Tensor, k: int = 100, batch_k: int | None = None, generator: torch.Generator | None = None) -> Tensor:
        """Importance-weighted estimate of log p(x) in nats, shape (B,)   (Burda et al. 2016, Eq. 8).

        log p(x) ~= log (1/k) sum_i p(x|z_i) p(z_i) / q(z_i|x),   z_i ~ q(z|x).
        A lower bound on log p(x) that tightens as k grows; k=1 is the ELBO. The k samples are
        drawn ``batch_k`` at a time so memory stays at about batch_k * B images.
        """
        b, batch_k = _importance_batches(x, k, batch_k)
        mu, logvar = self.encode(x)  # (B, D) each
        log_w = []
        for start in range(0, k, batch_k):
            kc = min(batch_k, k - start)
            eps = _randn((kc, *mu.shape), generator, mu.device, mu.dtype)
            z = mu + torch.exp(0.5 * logvar) * eps  # (kc, B, D)
            x_params = self.decode(z.reshape(kc * b, -1))  # (kc*B, D) -> (kc*B, C, H, W)
            xk = x.expand(kc, *x.shape).reshape(kc * b, *x.shape[1:])  # (B, C, H, W) -> (kc*B, C, H, W)
            log_px_z = self.log_px_given_z(xk, x_params).view(kc, b)
            log_pz = self.log_prior(z)  # (kc, B)
            log_qz = losses.log_normal_diag(z, mu, logvar)  # (kc, B)
            log_w.append(log_px_z + log_pz - log_qz)  # log w = log p(x, z) - log q(z|x)
        return losses.iwae_bound(torch.cat(log_w, 0))  # (k, B) -> (B,)

    def log_prior(self, z: Tensor) -> Tensor:
        """log p(z) = log N(z; 0, I): z (..., D) -> (...). A variant with a learned prior overrides it."""
        return losses.log_normal_std(z)


class AutoEncoder(nn.Module):
    """Plain deterministic autoencoder (no sampling, no KL), same encoders/decoders as ``VAE``.

    encode: x (B, C, H, W) -> z (B, D); decode: z (B, D) -> logits (bernoulli) or mean (gaussian) (B, C, H, W).
    Training minimises ``reconstruction_error`` (the VAE's recon term with z = encode(x)).
    """

    def __init__(self, config: VAEConfig) -> None:
        super().__init__()
        self.config = _check_config(config)
        self.encoder = _make_encoder(config, variational=False)
        self.decoder = _make_decoder(config)

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    def encode(self, x: Tensor) -> Tensor:
        """x (B, C, H, W) -> z (B, D)."""
        return self.encoder(x)

    def decode(self, z: Tensor) -> Tensor:
        """z (B, D) -> x_params (B, C, H, W): logits (bernoulli) or mean in (0, 1) (gaussian)."""
        out = self.decoder(z)
        return torch.sigmoid(out) if self.config.likelihood == "gaussian" else out

    def forward(self, x: Tensor) -> Tensor:
        """x (B, C, H, W) -> x_params (B, C, H, W)."""
        return self.decode(self.encode(x))

    def reconstruction_error(self, x: Tensor) -> Tensor:
        """-log p(x | decode(encode(x))) summed over pixels, shape (B,), in nats.

        Bernoulli: the summed binary cross-entropy; Gaussian: squared error / (2 sigma^2) + const.
        """
        x_params = self(x)
        if self.config.likelihood == "bernoulli":
            return -losses.bernoulli_log_prob(x_params, x)
        return -losses.gaussian_log_prob(x, x_params, self.config.gaussian_logvar)

    def loss_terms(self, batch: Batch, weights: LossWeights = _NO_WEIGHTS) -> LossTerms:
        """The training protocol: loss = mean reconstruction error; batch.x (B, C, H, W) (labels ignored).

        Terms (B,): ``recon`` and ``kl`` = 0 (the code costs nothing, so ``weights`` change nothing);
        ``elbo`` is None: a plain autoencoder has no likelihood bound.
        """
        recon = self.reconstruction_error(batch.x)  # (B,)
        return LossTerms(recon.mean(), {"recon": recon, "kl": torch.zeros_like(recon)}, None)

    @torch.no_grad()
    def reconstruct(self, x: Tensor) -> Tensor:
        """x (B, C, H, W) -> reconstructions (B, C, H, W) in [0, 1]."""
        out = self(x)
        return torch.sigmoid(out) if self.config.likelihood == "bernoulli" else out.clamp(0.0, 1.0)


def build_model(config: VAEConfig) -> VAE:
    """``VAE(config)``, after checking ``config`` is a ``VAEConfig``."""
    return VAE(_check_config(config))


def _importance_batches(x: object, k: object, batch_k: object) -> tuple[int, int]:
    """(B, batch_k) for an importance-weighted estimate with k samples: checks k and batch_k, and by
    default draws about 8k decoded images per chunk (batch_k * B)."""
    if not _is_pos_int(k):
        raise ValueError(f"k must be a positive int, got {k!r}")
    b = x.shape[0] if isinstance(x, Tensor) and x.dim() > 0 else 0
    if batch_k is None:
        batch_k = max(1, min(k, 8192 // max(b, 1)))  # ~8k decoded images per chunk
    if not _is_pos_int(batch_k):
        raise ValueError(f"batch_k must be a positive int or None, got {batch_k!r}")
    return b, batch_k


def _randn(shape, generator: torch.Generator | None, device: torch.device, dtype: torch.dtype) -> Tensor:
    """N(0, 1) noise; a CPU ``generator`` also works for a model on another device."""
    if generator is None:
        return torch.randn(shape, device=device, dtype=dtype)
    return torch.randn(shape, generator=generator, device=generator.device, dtype=dtype).to(device)
