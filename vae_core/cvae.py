"""The conditional VAE: a VAE told the label (Sohn, Lee & Yan 2015; the generative side of Kingma et al. 2014's M2).

A plain VAE has to put everything about an image into z, the digit's identity included. Give the
encoder and the decoder the label y as well and the model is

    q(z|x, y) = N(mu(x, y), diag exp(logvar(x, y)))      p(z) = N(0, I)      p(x|z, y)

with the ELBO of log p(x|y) = log E_p(z)[p(x|z, y)]:

    ELBO(x, y) = E_q(z|x,y)[log p(x|z, y)] - KL(q(z|x, y) || p(z)).

The label is already paid for, so z is free to hold what the label does not say: slant, stroke
width, style. ``sample_with(z, labels)`` keeps one z and changes the label (same style, another
digit). The label reaches each network as a one-hot vector concatenated to its input::

    mu, logvar = cvae.encode(x, y)            # MLP on [flatten(x), one_hot(y)]  (conv: [conv(x), one_hot(y)])
    z = cvae.reparameterize(mu, logvar)       # z = mu + sigma * eps
    x_params = cvae.decode(z, y)              # decoder on [z, one_hot(y)]
    terms = cvae.elbo(x, y)                   # ELBOTerms(recon, kl, elbo, loss)

``CVAE`` speaks the training protocol (``loss_terms``), so ``vae_core.train.fit`` trains it on any
labelled ``vae_core.data`` Dataset, and ``save_checkpoint``/``load_checkpoint`` handle it.
Reduction convention as everywhere: sum over data and latent dimensions, mean over the batch.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from . import losses
from .data.batches import Batch
from .models import (
    VAE,
    ConvDecoder,
    ConvEncoder,
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

__all__ = ["CVAEConfig", "CVAE", "ConditionalEncoder"]


@dataclass
class CVAEConfig:
    """Everything needed to rebuild a ``CVAE``; saved in checkpoints with ``dataclasses.asdict``.

    The fields ``VAEConfig`` also has mean the same and are checked by it; vary with ``dataclasses.replace``.
    """

    # (C, H, W) of one image: fixes the first and last layer sizes and the shape checks.
    input_shape: tuple[int, int, int] = (1, 28, 28)
    # K: labels are ints 0..K-1, fed to encoder and decoder as one-hot vectors of length K.
    n_classes: int = 10
    # Size D of z; it only has to hold what the label does not say (style), so it can be smaller than a VAE's.
    latent_dim: int = 16
    # Widths of the fully connected layers between [pixels or conv features, one-hot] and z; () = linear map.
    hidden: tuple[int, ...] = (400,)
    # "mlp" treats pixels as a flat vector; "conv" uses stride-2 convolutions before the label joins in.
    arch: Literal["mlp", "conv"] = "mlp"
    # Conv channels per stride-2 layer (arch="conv" only); None picks VAEConfig's default per image size.
    channels: tuple[int, ...] | None = None
    # p(x|z, y): "bernoulli" for data in [0, 1] (decoder gives logits); "gaussian" for real values (mean).
    likelihood: Literal["bernoulli", "gaussian"] = "bernoulli"
    # log sigma^2 of the Gaussian decoder, fixed: it sets how much reconstruction error costs against the KL.
    gaussian_logvar: float = 0.0

    def __post_init__(self) -> None:
        # Checkpoints may hold lists; accept them and store tuples.
        for name in ("input_shape", "hidden", "channels"):
            if isinstance(getattr(self, name), list):
                setattr(self, name, tuple(getattr(self, name)))
        if not _is_pos_int(self.n_classes):
            raise ValueError(f"n_classes must be a positive int (K, the number of labels, e.g. 10 for MNIST), got {self.n_classes!r}")
        self.gaussian_logvar = self._vae_config().gaussian_logvar  # VAEConfig checks every shared field (a float now)

    def _vae_config(self) -> VAEConfig:
        """The same network sizes as a ``VAEConfig`` (raises its ``ValueError`` for a bad field)."""
        return VAEConfig(input_shape=self.input_shape, latent_dim=self.latent_dim, hidden=self.hidden, arch=self.arch,
                         likelihood=self.likelihood, gaussian_logvar=self.gaussian_logvar, channels=self.channels)

    @property
    def conv_channels(self) -> tuple[int, ...]:
        """Channels of the stride-2 conv layers actually used (``channels`` or the per-size default)."""
        return self._vae_config().conv_channels

    @property
    def data_dim(self) -> int:
        """C * H * W, the number of data dimensions the log-likelihood sums over."""
        return math.prod(self.input_shape)


class ConditionalEncoder(nn.Module):
    """q(z|x, y): x (B, C, H, W) and one_hot(y) (B, K) -> (mu, logvar), each (B, D).

    mlp: [flatten(x), one_hot(y)] -> [Linear, ReLU] per hidden width -> Linear heads.
    conv: ``ConvEncoder``'s stride-2 conv stack on x, flatten, then the same with one_hot(y) appended.
    """

    def __init__(self, config: CVAEConfig) -> None:
        super().__init__()
        self.input_shape = config.input_shape
        if config.arch == "conv":
            channels = config.conv_channels
            # models.ConvEncoder's conv stack; its fully connected part is rebuilt here with room for y.
            self.conv = ConvEncoder(config.input_shape, channels, (), 1).conv
            _, h, w = config.input_shape
            features = channels[-1] * (h // 2 ** len(channels)) * (w // 2 ** len(channels))
        else:
            self.conv = nn.Identity()
            features = config.data_dim
        width = features + config.n_classes
        self.body = _mlp([width, *config.hidden])
        self.heads = _Heads(config.hidden[-1] if config.hidden else width, config.latent_dim, variational=True)

    def forward(self, x: Tensor, y_onehot: Tensor) -> tuple[Tensor, Tensor]:
        check_images(x, self.input_shape, _weight_dtype(self))
        h = self.conv(x).flatten(1)  # (B, C, H, W) -> (B, F): pixels (mlp) or conv features
        h = torch.cat([h, y_onehot], dim=1)  # (B, F) -> (B, F + K)
        return self.heads(self.body(h))


class CVAE(nn.Module):
    """q(z|x,y) and p(x|z,y) with p(z) = N(0, I) (Sohn et al. 2015; Kingma et al. 2014 M2's generative side).

    Shapes: x (B, C, H, W) in [0, 1]; y (B,) integer labels in [0, K); mu, logvar, z (B, D);
    x_params (B, C, H, W).
    """

    def __init__(self, config: CVAEConfig) -> None:
        super().__init__()
        if not isinstance(config, CVAEConfig):
            raise ValueError(f"expected a CVAEConfig, got {type(config).__name__}; build one with CVAEConfig(n_classes=10, ...)")
        self.config = config
        self.encoder = ConditionalEncoder(config)
        # The decoders of models.py, sized for the input [z, one_hot(y)] of length D + K.
        d_in = config.latent_dim + config.n_classes
        if config.arch == "conv":
            self.decoder = ConvDecoder(config.input_shape, config.conv_channels, config.hidden, d_in)
        else:
            self.decoder = MLPDecoder(config.input_shape, config.hidden, d_in)

    # The same as the VAE's: nothing in them depends on the label.
    device = VAE.device
    reparameterize = VAE.reparameterize
    log_px_given_z = VAE.log_px_given_z
    _to_image = VAE._to_image

    def one_hot(self, y: Tensor) -> Tensor:
        """Integer labels y (B,) in [0, K) -> one-hot vectors (B, K) in the model's dtype and device."""
        return self._one_hot(y, None)

    def _one_hot(self, y: Tensor, batch: int | None) -> Tensor:
        k = self.config.n_classes
        if not isinstance(y, Tensor):
            raise ValueError(f"labels must be a torch.Tensor of ints of shape (B,), got {type(y).__name__}; "
                             f"wrap them with torch.as_tensor(labels)")
        if y.is_floating_point() or y.is_complex() or y.dtype == torch.bool:
            raise ValueError(f"labels must be an integer tensor (class indices 0..{k - 1}), got dtype {y.dtype}; "
                             f"convert with y.long()")
        if y.dim() != 1 or (batch is not None and y.shape[0] != batch):
            want = "(B,)" if batch is None else f"({batch},), one per example"
            hint = "; flatten it with y.view(-1)" if y.dim() > 1 else ""
            raise ValueError(f"labels must have shape {want}, got {_fmt(y.shape)}{hint}")
        if y.numel() and (y.min() < 0 or y.max() >= k):
            raise ValueError(f"labels must lie in [0, {k}) for n_classes={k}, got min {y.min().item()} and "
                             f"max {y.max().item()}; build the model with CVAEConfig(n_classes=...) to cover them")
        p = next(self.parameters())
        return F.one_hot(y.to(p.device, torch.long), k).to(p.dtype)  # (B,) -> (B, K), e.g. 3 -> [0, 0, 0, 1, 0, ...]

    def encode(self, x: Tensor, y: Tensor) -> tuple[Tensor, Tensor]:
        """q(z|x, y) = N(mu, diag exp(logvar)): x (B, C, H, W), y (B,) -> (mu (B, D), logvar (B, D))."""
        check_images(x, self.config.input_shape, _weight_dtype(self))
        return self.encoder(x, self._one_hot(y, x.shape[0]))

    def decode(self, z: Tensor, y: Tensor) -> Tensor:
        """p(x|z, y): z (B, D), y (B,) -> x_params (B, C, H, W): logits (bernoulli) or the mean in (0, 1) (gaussian)."""
        check_latents(z, self.config.latent_dim, dtype=_weight_dtype(self))
        return self._decode(z, self._one_hot(y, z.shape[0]))

    def _decode(self, z: Tensor, y_onehot: Tensor) -> Tensor:
        out = self.decoder(torch.cat([z, y_onehot], dim=1))  # (B, D + K) -> (B, C, H, W)
        if self.config.likelihood == "gaussian":
            return torch.sigmoid(out)  # mean kept in (0, 1), the range of the data
        return out

    def forward(self, x: Tensor, y: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """x (B, C, H, W), y (B,) -> (x_params (B, C, H, W), mu (B, D), logvar (B, D)), with one z sample."""
        mu, logvar = self.encode(x, y)
        z = self.reparameterize(mu, logvar)
        return self.decode(z, y), mu, logvar

    def elbo(self, x: Tensor, y: Tensor, beta: float = 1.0, free_bits: float = 0.0) -> losses.ELBOTerms:
        """ELBO(x, y) = E_q[log p(x|z, y)] - KL(q(z|x, y) || p(z)), a bound on log p(x|y), via ``losses.elbo``.

        Returns ``ELBOTerms``: per-example ``recon``, ``kl``, ``elbo`` (B,) in nats and the scalar
        ``loss`` = batch mean of recon + beta * KL (free bits on the KL in the loss only).
        """
        x_params, mu, logvar = self(x, y)
        x_logvar = self.config.gaussian_logvar if self.config.likelihood == "gaussian" else None
        return losses.elbo(x, x_params, mu, logvar, likelihood=self.config.likelihood, beta=beta,
                           free_bits=free_bits, x_logvar=x_logvar)

    def loss_terms(self, batch: Batch, weights: LossWeights = LossWeights()) -> LossTerms:
        """The training protocol: -ELBO of log p(x|y), KL weighted by ``weights.kl`` with ``weights.free_bits``.

        batch.x (B, C, H, W), batch.y (B,) -> ``LossTerms`` with ``recon``, ``kl`` and ``elbo`` (B,), unweighted.
        """
        if batch.y is None:
            raise ValueError("a CVAE trains on labelled batches, got batch.y = None; pass fit a vae_core.data "
                             "Dataset that has labels (e.g. load_mnist(...)), not a bare image tensor")
        t = self.elbo(batch.x, batch.y, beta=weights.kl, free_bits=weights.free_bits)
        return LossTerms(t.loss, {"recon": t.recon, "kl": t.kl}, t.elbo)

    @torch.no_grad()
    def sample(self, labels: Tensor | list[int], generator: torch.Generator | None = None) -> Tensor:
        """Draw z ~ N(0, I), one per label, and decode: labels (n,) -> images (n, C, H, W) in [0, 1]."""
        y = _labels(labels)
        p = next(self.parameters())
        z = _randn((y.shape[0], self.config.latent_dim), generator, p.device, p.dtype)
        return self._to_image(self.decode(z, y))

    @torch.no_grad()
    def sample_with(self, z: Tensor, labels: Tensor | list[int]) -> Tensor:
        """Decode given codes z (n, D) with labels (n,) to images (n, C, H, W) in [0, 1].

        Keep z and change the label to draw the same style as another class (style vs content).
        """
        return self._to_image(self.decode(z, _labels(labels)))

    @torch.no_grad()
    def reconstruct(self, x: Tensor, y: Tensor) -> Tensor:
        """decode(mu(x, y), y): x (B, C, H, W), y (B,) -> reconstructions (B, C, H, W) in [0, 1]."""
        mu, _ = self.encode(x, y)
        return self._to_image(self.decode(mu, y))

    @torch.no_grad()
    def log_likelihood(self, x: Tensor, y: Tensor, k: int = 100, batch_k: int | None = None,
                       generator: torch.Generator | None = None) -> Tensor:
        """Importance-weighted estimate of log p(x|y) in nats, shape (B,)   (Burda et al. 2016, Eq. 8).

        log p(x|y) ~= log (1/k) sum_i p(x|z_i, y) p(z_i) / q(z_i|x, y),   z_i ~ q(z|x, y).
        A lower bound that tightens as k grows; k=1 is the ELBO. The k samples are drawn
        ``batch_k`` at a time (memory about batch_k * B images), as in ``VAE.log_likelihood``.
        """
        b, batch_k = _importance_batches(x, k, batch_k)
        mu, logvar = self.encode(x, y)  # (B, D) each
        y_onehot = self._one_hot(y, b)  # (B, K)
        log_w = []
        for start in range(0, k, batch_k):
            kc = min(batch_k, k - start)
            eps = _randn((kc, *mu.shape), generator, mu.device, mu.dtype)
            z = mu + torch.exp(0.5 * logvar) * eps  # (kc, B, D)
            x_params = self._decode(z.reshape(kc * b, -1), y_onehot.repeat(kc, 1))  # (kc*B, D), (kc*B, K) -> (kc*B, C, H, W)
            xk = x.expand(kc, *x.shape).reshape(kc * b, *x.shape[1:])  # (B, C, H, W) -> (kc*B, C, H, W)
            log_px_z = self.log_px_given_z(xk, x_params).view(kc, b)
            log_pz = losses.log_normal_std(z)  # (kc, B)
            log_qz = losses.log_normal_diag(z, mu, logvar)  # (kc, B)
            log_w.append(log_px_z + log_pz - log_qz)  # log w = log p(x, z | y) - log q(z|x, y)
        return losses.iwae_bound(torch.cat(log_w, 0))  # (k, B) -> (B,)


def _labels(labels: Tensor | list[int]) -> Tensor:
    """A label tensor from a tensor, or a list or tuple of ints (checked by ``CVAE.one_hot`` afterwards)."""
    if isinstance(labels, (list, tuple)):
        if not labels:
            raise ValueError("labels must hold at least one label, got an empty list; e.g. labels=[0, 1, 2] or [7] * 8")
        return torch.tensor(labels)
    if isinstance(labels, Tensor) and labels.dim() == 1 and labels.shape[0] == 0:
        raise ValueError("labels must hold at least one label, got an empty tensor of shape (0,)")
    if not isinstance(labels, Tensor):
        raise ValueError(f"labels must be a (n,) int tensor or a list of ints, got {type(labels).__name__}; "
                         f"e.g. labels=[3] or [3] * 8")
    return labels


register_model(CVAE, CVAEConfig)
