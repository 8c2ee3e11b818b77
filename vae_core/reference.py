"""The course's reference VAE for dynamically binarized MNIST: the recipe the benchmark measures.

One model class, ``ReferenceVAE``, with two decoders to compare (``ReferenceConfig.decoder``):

- ``"mlp"``: a factorized Bernoulli decoder, p(x|z) = prod_i Bern(x_i; sigmoid(l_i(z))), as in
  Kingma & Welling (2014) and the VAE of Burda et al. (2016);
- ``"local_ar"``: a *locally autoregressive* decoder, p(x|z) = prod_i Bern(x_i; sigmoid(l_i(z, x_<i))),
  where each pixel also sees the pixels above and to its left in a small window through masked
  convolutions (PixelCNN, van den Oord et al. 2016; used as a VAE decoder in PixelVAE, Gulrajani
  et al. 2017, and with a deliberately small window in the lossy VAE of Chen et al. 2017, so that
  z keeps the global shape and the window only the local stroke texture). It is still a VAE:
  the same ELBO, the same importance-weighted bound; only p(x|z) is more expressive. Evaluating
  log p(x|z) is one forward pass (teacher forcing); sampling needs one pass per pixel.

Training can use the importance-weighted bound with ``train_k`` samples (IWAE, Burda et al. 2016)
instead of the ELBO. The model has the ``VAE``'s methods (``encode``, ``reparameterize``,
``decode``, ``elbo(x, beta, free_bits) -> ELBOTerms``, ``log_likelihood``, ``sample``) and its training
protocol (``loss_terms(batch, weights) -> LossTerms``), so ``vae_core.train.fit``/``evaluate`` and
``vae_core.metrics.nll_estimate`` work on it unchanged.
Checkpoints: ``save_reference``/``load_reference`` (same payload as ``train.save_checkpoint``,
model name ``"ReferenceVAE"``, read with ``torch.load(weights_only=True)``).

Reduction convention as everywhere in ``vae_core``: sum over pixels and latent dimensions,
mean over the batch; per-example tensors have shape (B,).
"""
from __future__ import annotations

import math
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from . import losses
from .models import LossTerms, LossWeights, check_images, check_latents

if TYPE_CHECKING:  # annotations only
    from .data.batches import Batch

__all__ = ["ReferenceConfig", "MaskedConv2d", "LocalARDecoder", "ReferenceVAE", "save_reference", "load_reference"]

_FORMAT = "vae_core.checkpoint/1"


@dataclass
class ReferenceConfig:
    """Everything needed to rebuild a ``ReferenceVAE``; stored in its checkpoint with ``asdict``."""

    # (C, H, W) of one image; the benchmark uses MNIST's (1, 28, 28).
    input_shape: tuple[int, int, int] = (1, 28, 28)
    # Size of z: 32-50 is where MNIST VAEs stop gaining (Burda et al. use 50 for one stochastic layer).
    latent_dim: int = 32
    # Encoder MLP widths (the decoder MLP mirrors them): wider than 784-400 trains faster per epoch on MNIST.
    hidden: tuple[int, ...] = (512, 256)
    # "mlp": factorized Bernoulli decoder; "local_ar": masked-conv window over x_<i as well (PixelVAE-style).
    decoder: Literal["mlp", "local_ar"] = "mlp"
    # local_ar: channels of the masked convolutions.
    ar_channels: int = 32
    # local_ar: size of the first (type A) masked kernel; 7 sees 3 rows above and 3 pixels to the left.
    ar_kernel: int = 7
    # local_ar: number of 3x3 type B masked layers after the first (each widens the window by one pixel).
    ar_layers: int = 1
    # Importance samples in the training objective: 1 = the ELBO, k > 1 = the IWAE bound L_k.
    train_k: int = 1

    def __post_init__(self) -> None:
        for name in ("input_shape", "hidden"):
            if isinstance(getattr(self, name), list):
                setattr(self, name, tuple(getattr(self, name)))
        if not (isinstance(self.input_shape, tuple) and len(self.input_shape) == 3 and all(_pos(s) for s in self.input_shape)):
            raise ValueError(f"input_shape must be (C, H, W) with positive ints, e.g. (1, 28, 28), got {self.input_shape!r}")
        if not (isinstance(self.hidden, tuple) and len(self.hidden) > 0 and all(_pos(h) for h in self.hidden)):
            raise ValueError(f"hidden must be a non-empty tuple of positive ints such as (512, 256), got {self.hidden!r}")
        for name in ("latent_dim", "ar_channels", "train_k"):
            if not _pos(getattr(self, name)):
                raise ValueError(f"{name} must be a positive int, got {getattr(self, name)!r}")
        if self.decoder not in ("mlp", "local_ar"):
            raise ValueError(f"decoder must be 'mlp' or 'local_ar', got {self.decoder!r}")
        if not (_pos(self.ar_kernel) and self.ar_kernel % 2 == 1):
            raise ValueError(f"ar_kernel must be an odd positive int such as 7, got {self.ar_kernel!r}")
        if not (isinstance(self.ar_layers, int) and not isinstance(self.ar_layers, bool) and self.ar_layers >= 0):
            raise ValueError(f"ar_layers must be an int >= 0, got {self.ar_layers!r}")
        if self.decoder == "local_ar" and self.input_shape[0] != 1:
            raise ValueError(f"decoder='local_ar' handles one channel (binarized MNIST), got input_shape {self.input_shape}; use decoder='mlp'")


def _pos(v: object) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and v > 0


def _mlp(sizes: list[int]) -> nn.Sequential:
    layers: list[nn.Module] = []
    for a, b in zip(sizes[:-1], sizes[1:]):
        layers += [nn.Linear(a, b), nn.ReLU()]
    return nn.Sequential(*layers)


class MaskedConv2d(nn.Conv2d):
    """A convolution that only sees pixels before the centre in raster order (van den Oord et al. 2016).

    ``mask_type="A"`` also hides the centre (first layer: pixel i must not see x_i); ``"B"`` keeps it
    (later layers: position i holds features of x_<i only). x (B, C_in, H, W) -> (B, C_out, H, W), same padding.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, mask_type: Literal["A", "B"]) -> None:
        super().__init__(in_channels, out_channels, kernel_size, padding=kernel_size // 2)
        if mask_type not in ("A", "B"):
            raise ValueError(f"mask_type must be 'A' (hides the centre) or 'B' (keeps it), got {mask_type!r}")
        k = kernel_size
        mask = torch.ones(k, k)
        mask[k // 2, k // 2 + (mask_type == "B"):] = 0  # centre row: the centre (A) or what follows it (B)
        mask[k // 2 + 1:] = 0  # rows below the centre
        self.register_buffer("mask", mask[None, None], persistent=False)

    def forward(self, x: Tensor) -> Tensor:
        return F.conv2d(x, self.weight * self.mask, self.bias, padding=self.padding)


class LocalARDecoder(nn.Module):
    """Logits of p(x_i | z, x_<i) for every pixel at once (teacher forcing): (z (B, D), x (B, 1, H, W)) -> (B, 1, H, W).

    base = MLP(z) -> (B, 1, H, W), the factorized decoder's logits; then a window over x_<i:
    a = relu(MaskedA_k(x) + Conv_5x5(base)); ``ar_layers`` times a = relu(MaskedB_3x3(a));
    logits = base + Conv_1x1(a). Pixel i sees z (through base) and the window of x_<i only.
    """

    def __init__(self, config: ReferenceConfig) -> None:
        super().__init__()
        c, h, w = config.input_shape
        self.shape = (c, h, w)
        rev = list(reversed(config.hidden))
        self.base = nn.Sequential(_mlp([config.latent_dim, *rev]), nn.Linear(rev[-1], c * h * w))
        ch = config.ar_channels
        self.first = MaskedConv2d(c, ch, config.ar_kernel, "A")
        self.cond = nn.Conv2d(c, ch, 5, padding=2)  # z's logits around pixel i (z only: no mask needed)
        self.layers = nn.ModuleList([MaskedConv2d(ch, ch, 3, "B") for _ in range(config.ar_layers)])
        self.out = nn.Conv2d(ch, c, 1)

    def forward(self, z: Tensor, x: Tensor) -> Tensor:
        """z (k*B, D) with x (B, 1, H, W): k samples of z per image, sample-major (k > 1 in the IWAE bound)."""
        base = self.base(z).view(-1, *self.shape)  # (k*B, hidden) -> (k*B, C*H*W) -> (k*B, C, H, W)
        return self.logits(base, x)

    def logits(self, base: Tensor, x: Tensor) -> Tensor:
        """The window over x_<i on top of z's logit map: base (k*B, 1, H, W), x (B, 1, H, W) -> logits (k*B, 1, H, W)."""
        ax = self.first(x)  # (B, ch, H, W): the window over x_<i, computed once per image, not once per z
        k = base.shape[0] // ax.shape[0]
        if k * ax.shape[0] != base.shape[0]:
            raise ValueError(f"z holds {base.shape[0]} rows, not a multiple of the {ax.shape[0]} images in x")
        if k > 1:
            ax = ax.expand(k, *ax.shape).reshape(-1, *ax.shape[1:])  # (B, ch, H, W) -> (k*B, ch, H, W)
        a = F.relu(ax + self.cond(base))  # (k*B, ch, H, W): pixel i sees x_<i in the window and z
        for layer in self.layers:
            a = F.relu(layer(a))
        return base + self.out(a)  # (B, C, H, W) logits


class ReferenceVAE(nn.Module):
    """VAE with a N(0, I) prior, an MLP Gaussian encoder and an MLP or locally autoregressive decoder.

    Shapes: x (B, C, H, W) binary or in [0, 1]; mu, logvar, z (B, D); logits (B, C, H, W).
    """

    def __init__(self, config: ReferenceConfig) -> None:
        super().__init__()
        if not isinstance(config, ReferenceConfig):
            raise ValueError(f"expected a ReferenceConfig, got {type(config).__name__}")
        self.config = config
        d = math.prod(config.input_shape)
        self.enc = _mlp([d, *config.hidden])
        self.enc_mu = nn.Linear(config.hidden[-1], config.latent_dim)
        self.enc_logvar = nn.Linear(config.hidden[-1], config.latent_dim)
        if config.decoder == "mlp":
            rev = list(reversed(config.hidden))
            self.dec = nn.Sequential(_mlp([config.latent_dim, *rev]), nn.Linear(rev[-1], d))
        else:
            self.dec = LocalARDecoder(config)

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    @property
    def autoregressive(self) -> bool:
        return self.config.decoder == "local_ar"

    def encode(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """q(z|x) = N(mu, diag exp(logvar)): x (B, C, H, W) -> (mu (B, D), logvar (B, D))."""
        check_images(x, self.config.input_shape)
        h = self.enc(x.flatten(1))  # (B, C, H, W) -> (B, C*H*W) -> (B, hidden[-1])
        return self.enc_mu(h), self.enc_logvar(h)

    def reparameterize(self, mu: Tensor, logvar: Tensor) -> Tensor:
        """z = mu + exp(0.5 logvar) * eps, eps ~ N(0, I)   (Kingma & Welling 2014, Sec. 2.4); (B, D) -> (B, D)."""
        return mu + torch.exp(0.5 * logvar) * torch.randn_like(mu)

    def decode(self, z: Tensor, x: Tensor | None = None) -> Tensor:
        """Logits of p(x|z), (B, D) -> (B, C, H, W). The local_ar decoder needs x too (the pixels it conditions on);
        z may hold k samples per image of x, sample-major: z (k*B, D), x (B, C, H, W) -> (k*B, C, H, W)."""
        check_latents(z, self.config.latent_dim)
        if not self.autoregressive:
            return self.dec(z).view(-1, *self.config.input_shape)  # (B, C*H*W) -> (B, C, H, W)
        if x is None:
            raise ValueError("the local_ar decoder gives p(x_i | z, x_<i): pass x (B, C, H, W) too, or use sample(n)")
        return self.dec(z, x)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """x (B, C, H, W) -> (logits (B, C, H, W), mu (B, D), logvar (B, D)) with one z sample."""
        mu, logvar = self.encode(x)
        z = self.reparameterize(mu, logvar)
        return self.decode(z, x), mu, logvar

    def log_weights(self, x: Tensor, k: int) -> Tensor:
        """log w_k = log p(x|z_k) + log p(z_k) - log q(z_k|x), z_k ~ q(z|x): x (B, C, H, W) -> (k, B). Differentiable."""
        b = x.shape[0]
        mu, logvar = self.encode(x)  # (B, D)
        z = mu + torch.exp(0.5 * logvar) * torch.randn((k, *mu.shape), device=mu.device, dtype=mu.dtype)  # (k, B, D)
        xk = x.expand(k, *x.shape).reshape(k * b, *x.shape[1:])  # (B, C, H, W) -> (k*B, C, H, W)
        logits = self.decode(z.reshape(k * b, -1), x if self.autoregressive else None)  # (k*B, C, H, W)
        log_px_z = losses.bernoulli_log_prob(logits, xk).view(k, b)
        # log w = log p(x|z) + log p(z) - log q(z|x)   (Burda et al. 2016, Eq. 8)
        return log_px_z + losses.log_normal_std(z) - losses.log_normal_diag(z, mu, logvar)

    def elbo(self, x: Tensor, beta: float = 1.0, free_bits: float = 0.0) -> losses.ELBOTerms:
        """One-sample ELBO terms (B,) via ``losses.elbo``; in training with ``train_k > 1`` the ``loss`` is -L_k instead.

        ``loss`` with train_k > 1: mean over the batch of -log (1/k) sum_i w_i   (IWAE, Burda et al. 2016);
        ``beta`` and ``free_bits`` then do not apply (the benchmark uses them only with train_k = 1).
        """
        logits, mu, logvar = self(x)
        terms = losses.elbo(x, logits, mu, logvar, likelihood="bernoulli", beta=beta, free_bits=free_bits)
        if self.training and self.config.train_k > 1:
            iwae = losses.iwae_bound(self.log_weights(x, self.config.train_k))  # (B,)
            terms = terms._replace(loss=-iwae.mean())
        return terms

    def loss_terms(self, batch: Batch, weights: LossWeights = LossWeights()) -> LossTerms:
        """The training protocol (``vae_core.train.fit``): ``elbo(batch.x, weights.kl, weights.free_bits)`` as
        ``LossTerms`` with ``recon``, ``kl`` and ``elbo`` (B,); its loss is -L_k when training with train_k > 1."""
        t = self.elbo(batch.x, beta=weights.kl, free_bits=weights.free_bits)
        return LossTerms(t.loss, {"recon": t.recon, "kl": t.kl}, t.elbo)

    @torch.no_grad()
    def log_likelihood(self, x: Tensor, k: int = 100, batch_k: int | None = None, generator: torch.Generator | None = None) -> Tensor:
        """Importance-weighted estimate L_k of log p(x) in nats, (B, C, H, W) -> (B,)   (Burda et al. 2016, Eq. 8).

        Samples are drawn ``batch_k`` at a time (default: about 4096 decoded images per chunk).
        ``generator`` seeds the global RNG once (the samples come from torch.randn) for a repeatable estimate.
        """
        if not _pos(k):
            raise ValueError(f"k must be a positive int, got {k!r}")
        b = x.shape[0]
        batch_k = batch_k or max(1, min(k, 4096 // max(b, 1)))
        if generator is not None:
            torch.manual_seed(int(torch.randint(0, 2**62, (1,), generator=generator)))
        log_w = torch.cat([self.log_weights(x, min(batch_k, k - s)) for s in range(0, k, batch_k)], 0)  # (k, B)
        return losses.iwae_bound(log_w)

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        """z ~ N(0, I), then x ~ p(x|z): (n, C, H, W). MLP decoder: Bernoulli means; local_ar: binary samples drawn pixel by pixel."""
        if not _pos(n):
            raise ValueError(f"n must be a positive int, got {n!r}")
        z = torch.randn((n, self.config.latent_dim), generator=generator).to(self.device)
        return self._sample_x(z, generator)

    @torch.no_grad()
    def reconstruct(self, x: Tensor) -> Tensor:
        """From z = mu(x): Bernoulli means (MLP decoder) or a binary sample drawn pixel by pixel (local_ar); (B, C, H, W)."""
        mu, _ = self.encode(x)
        return self._sample_x(mu, torch.Generator().manual_seed(0))

    def _sample_x(self, z: Tensor, generator: torch.Generator | None) -> Tensor:
        if not self.autoregressive:
            return torch.sigmoid(self.decode(z))
        c, h, w = self.config.input_shape
        x = torch.zeros(z.shape[0], c, h, w, device=z.device)
        check_latents(z, self.config.latent_dim)
        base = self.dec.base(z).view(-1, c, h, w)  # z's logit map, computed once
        for i in range(h):
            for j in range(w):  # raster order: x_ij ~ Bern(sigmoid(l_ij(z, x_<ij)))
                p = torch.sigmoid(self.dec.logits(base, x)[:, :, i, j])
                x[:, :, i, j] = torch.bernoulli(p.cpu(), generator=generator).to(z.device)
        return x


def save_reference(path: str | os.PathLike, model: ReferenceVAE, extra: dict | None = None) -> Path:
    """Write ``{"format", "model": "ReferenceVAE", "config", "state_dict", "extra"}`` (the train.save_checkpoint payload)."""
    from .train import _check_safe  # the same rule: extra must load with weights_only=True

    if not isinstance(model, ReferenceVAE):
        raise ValueError(f"save_reference saves a ReferenceVAE, got {type(model).__name__}; use train.save_checkpoint for VAE/AutoEncoder")
    _check_safe(extra)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {"format": _FORMAT, "model": "ReferenceVAE", "config": asdict(model.config),
               "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()}, "extra": extra or {}}
    tmp = path.with_name(path.name + ".tmp")
    torch.save(payload, tmp)
    os.replace(tmp, path)
    return path


def load_reference(path: str | os.PathLike, device: str | None = None) -> tuple[ReferenceVAE, dict]:
    """Rebuild a model written by ``save_reference``: ``(model in eval mode, extra)``; ``torch.load(weights_only=True)``."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint at {path}; make it with: python scripts/make_checkpoints.py reference_vae")
    payload = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(payload, dict) or payload.get("format") != _FORMAT or payload.get("model") != "ReferenceVAE":
        raise ValueError(f"{path} is not a ReferenceVAE checkpoint (model {payload.get('model') if isinstance(payload, dict) else None!r}); "
                         f"load VAE/AutoEncoder checkpoints with vae_core.train.load_checkpoint")
    model = ReferenceVAE(ReferenceConfig(**payload["config"]))
    model.load_state_dict(payload["state_dict"])
    model.to(device or "cpu").eval()
    return model, payload.get("extra") or {}
