"""VQ-VAE: a discrete latent code, its codebook (by gradient or by EMA), and a PixelCNN prior over it.

van den Oord, Vinyals & Kavukcuoglu (2017), *Neural Discrete Representation Learning*::

    z_e = encode(x)                          (B, D, h, w): one D-vector per cell of an h x w grid
    c_i = argmin_k ||z_e,i - e_k||^2          (B, h, w):    the nearest of K codebook vectors e_k
    z_q = e_c,  with z_e's gradient           straight-through: z_q = z_e + sg[e_c - z_e]
    loss = -log p(x|z_q) + ||sg[z_e] - e||^2 + beta ||z_e - sg[e]||^2      (Eq. 3)
                           codebook term       commitment term

``VectorQuantizerEMA`` replaces the codebook term by moving each e_k to the running mean of the
encoder outputs assigned to it (App. A.1). Codes that no encoder output is near never move and
stay "dead"; ``restart_dead_codes`` puts them back on encoder outputs (Dhariwal et al. 2020,
Jukebox; Lancucki et al. 2020). ``perplexity`` says how many codes are in use.

The prior is p(z) uniform while the VQ-VAE trains; afterwards ``CodePrior`` fits an autoregressive
p(c) = prod_i p(c_i | c_<i) over the code grid in raster order (PixelCNN, van den Oord et al. 2016),
and ``vqvae.decode_codes(prior.sample(n))`` draws new images.

Reduction as everywhere in ``vae_core``: sum over pixels, grid positions and code dimensions,
mean over the batch.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal, NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .losses import bernoulli_log_prob
from .models import LossTerms, LossWeights, check_images
from .train import register_model

if TYPE_CHECKING:
    from .data.batches import Batch

__all__ = [
    "VQOutput", "nearest_codes", "code_counts", "perplexity", "dead_codes", "VectorQuantizer",
    "VectorQuantizerEMA", "VQVAEConfig", "VQVAE", "MaskedConv2d", "CodePriorConfig", "CodePrior",
]


class VQOutput(NamedTuple):
    """What a quantizer returns for z_e (B, D, H, W)."""

    z_q: Tensor  # (B, D, H, W) the chosen codes, with z_e's gradient: z_e + sg[q - z_e]
    codes: Tensor  # (B, H, W) long, index of the nearest code
    codebook: Tensor  # (B,) ||sg[z_e] - e||^2 summed over positions and D (zeros for the EMA quantizer)
    commit: Tensor  # (B,) ||z_e - sg[e]||^2 summed over positions and D, unweighted


# ----------------------------------------------------------------------------------------------
# codes and their statistics


def _pos_int(v: object) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and v > 0


def _check_codes(codes: object, codebook_size: int, name: str = "codes") -> Tensor:
    if not isinstance(codes, Tensor) or codes.is_floating_point() or codes.is_complex() or codes.dtype == torch.bool:
        got = codes.dtype if isinstance(codes, Tensor) else type(codes).__name__
        raise ValueError(f"{name} must be an integer (long) tensor of code indices, got {got}; convert with {name}.long()")
    if codes.numel() and (codes.min() < 0 or codes.max() >= codebook_size):
        raise ValueError(f"{name} must lie in [0, {codebook_size}) (codebook_size {codebook_size}), "
                         f"got values in [{codes.min().item()}, {codes.max().item()}]")
    return codes


def nearest_codes(z: Tensor, codebook: Tensor) -> Tensor:
    """argmin_k ||z_n - e_k||^2: z (N, D), codebook (K, D) -> (N,) long; ties go to the lowest index."""
    if not (isinstance(z, Tensor) and isinstance(codebook, Tensor) and z.is_floating_point() and codebook.is_floating_point()):
        raise ValueError("z and codebook must be float tensors of shapes (N, D) and (K, D)")
    if z.dim() != 2 or codebook.dim() != 2 or z.shape[1] != codebook.shape[1] or codebook.shape[0] == 0:
        raise ValueError(f"expected z (N, D) and codebook (K, D) with the same D and K >= 1, got {tuple(z.shape)} and {tuple(codebook.shape)}")
    # ||z - e||^2 = ||z||^2 - 2 z.e + ||e||^2: one matmul instead of an (N, K, D) difference (Sonnet's VectorQuantizer)
    d = z.pow(2).sum(1, keepdim=True) - 2 * z @ codebook.T + codebook.pow(2).sum(1)  # (N, K)
    return d.argmin(1)  # the first minimum on ties


def code_counts(codes: Tensor, codebook_size: int) -> Tensor:
    """How often each code occurs: codes of any shape (long) -> (K,) long counts."""
    if not _pos_int(codebook_size):
        raise ValueError(f"codebook_size must be a positive int, got {codebook_size!r}")
    return torch.bincount(_check_codes(codes, codebook_size).flatten(), minlength=codebook_size)


def perplexity(codes: Tensor, codebook_size: int) -> float:
    """exp(H(p)) of the empirical code distribution p: K when all K codes are used equally, 1 for one code."""
    counts = code_counts(codes, codebook_size)
    if codes.numel() == 0:
        raise ValueError("perplexity needs at least one code, got an empty tensor")
    p = counts.double() / counts.sum()
    entropy = -(p * torch.log(p.clamp_min(1e-300))).sum()  # H = -sum_k p_k log p_k, with 0 log 0 = 0
    return math.exp(entropy.item())


def dead_codes(codes: Tensor, codebook_size: int) -> Tensor:
    """(K,) bool: True for the codes that never occur in ``codes``."""
    return code_counts(codes, codebook_size) == 0


# ----------------------------------------------------------------------------------------------
# quantizers


class VectorQuantizer(nn.Module):
    """Nearest-neighbour quantization onto K learned D-vectors, trained by the codebook loss.

    forward: z_e (B, D, H, W) -> ``VQOutput``. The codebook is an ``nn.Parameter`` (K, D) drawn
    uniformly from [-1/K, 1/K], the initialisation of the common PyTorch VQ-VAE ports.
    """

    def __init__(self, codebook_size: int, code_dim: int) -> None:
        super().__init__()
        if not (_pos_int(codebook_size) and _pos_int(code_dim)):
            raise ValueError(f"codebook_size and code_dim must be positive ints, got {codebook_size!r}, {code_dim!r}")
        self.codebook_size, self.code_dim = codebook_size, code_dim
        self.codebook = nn.Parameter(torch.empty(codebook_size, code_dim).uniform_(-1 / codebook_size, 1 / codebook_size))

    def _check(self, z_e: object) -> Tensor:
        d = self.code_dim
        if not isinstance(z_e, Tensor) or z_e.dim() != 4 or z_e.shape[1] != d:
            got = tuple(z_e.shape) if isinstance(z_e, Tensor) else type(z_e).__name__
            raise ValueError(f"expected encoder outputs z_e of shape (B, {d}, H, W), got {got}")
        if not z_e.is_floating_point() or z_e.dtype != self.codebook.dtype:
            raise ValueError(f"z_e must be a float tensor of the codebook's dtype {self.codebook.dtype}, got {z_e.dtype}")
        if z_e.numel() == 0:
            raise ValueError(f"expected at least one encoder output, got an empty z_e of shape {tuple(z_e.shape)}")
        if not torch.isfinite(z_e).all():
            raise ValueError("z_e contains NaN or inf: the encoder diverged or its input does; lower the learning rate")
        return z_e

    def assign(self, z_e: Tensor) -> Tensor:
        """The nearest codes, no update, no gradient: z_e (B, D, H, W) -> (B, H, W) long."""
        b, d, h, w = self._check(z_e).shape
        flat = z_e.detach().permute(0, 2, 3, 1).reshape(-1, d)  # (B, D, H, W) -> (B*H*W, D)
        return nearest_codes(flat, self.codebook.detach()).view(b, h, w)

    def lookup(self, codes: Tensor) -> Tensor:
        """The codebook vectors of ``codes``: (B, H, W) long -> (B, D, H, W)."""
        _check_codes(codes, self.codebook_size)
        if codes.dim() != 3:
            raise ValueError(f"expected codes of shape (B, H, W), got {tuple(codes.shape)}")
        return self.codebook[codes].permute(0, 3, 1, 2)  # (B, H, W, D) -> (B, D, H, W)

    def forward(self, z_e: Tensor) -> VQOutput:
        codes = self.assign(z_e)
        q = self.lookup(codes)  # (B, D, H, W), differentiable in the codebook
        codebook_term = (z_e.detach() - q).pow(2).sum((1, 2, 3))  # ||sg[z_e] - e||^2: moves e only
        commit = (z_e - q.detach()).pow(2).sum((1, 2, 3))  # ||z_e - sg[e]||^2: moves the encoder only
        z_q = z_e + (q - z_e).detach()  # straight-through: forward q, backward d z_q / d z_e = I
        return VQOutput(z_q, codes, codebook_term, commit)

    @torch.no_grad()
    def restart_dead_codes(self, z_e: Tensor, dead: Tensor, generator: torch.Generator | None = None) -> int:
        """Move the codes marked in ``dead`` (K,) bool onto encoder outputs drawn at random from
        z_e (B, D, H, W), without replacement when there are enough; returns how many were moved."""
        d = self._check(z_e).shape[1]
        if not isinstance(dead, Tensor) or dead.dtype != torch.bool or dead.shape != (self.codebook_size,):
            got = (dead.dtype, tuple(dead.shape)) if isinstance(dead, Tensor) else type(dead).__name__
            raise ValueError(f"dead must be a ({self.codebook_size},) bool tensor such as dead_codes(codes, K), got {got}")
        idx = dead.nonzero().flatten().to(self.codebook.device)
        if idx.numel() == 0:
            return 0
        flat = z_e.permute(0, 2, 3, 1).reshape(-1, d)  # (B*H*W, D)
        gen_device = generator.device if generator is not None else flat.device
        if flat.shape[0] >= idx.numel():
            pick = torch.randperm(flat.shape[0], generator=generator, device=gen_device)[: idx.numel()]
        else:
            pick = torch.randint(flat.shape[0], (idx.numel(),), generator=generator, device=gen_device)
        self.codebook[idx] = flat[pick.to(flat.device)].to(self.codebook.dtype)
        return idx.numel()


class VectorQuantizerEMA(VectorQuantizer):
    """A quantizer whose codebook follows the encoder outputs by exponential moving averages
    (van den Oord et al. 2017, App. A.1; Sonnet's ``VectorQuantizerEMA``). In training mode only,
    every forward does, with n_k the number of outputs assigned to code k in the batch:

        N_k <- decay N_k + (1 - decay) n_k                       buffer ema_counts (K,)
        m_k <- decay m_k + (1 - decay) sum_{z assigned to k} z   buffer ema_sums (K, D)
        e_k  = m_k / N~_k,  N~_k = (N_k + eps) / (n + K eps) n,  n = sum_k N_k   (Laplace smoothing)

    As in Sonnet, ema_counts keeps the unsmoothed N_k; N~_k only divides, so no code divides by 0.
    They start at N_k = 1, m_k = e_k (one pseudo-observation at the initial code), so an unused
    code stays put until its count decays to about eps, instead of m_k / eps blowing it far away.
    The codebook is a buffer: no gradient reaches it and ``VQOutput.codebook`` is zeros.
    """

    def __init__(self, codebook_size: int, code_dim: int, decay: float = 0.99, epsilon: float = 1e-5) -> None:
        super().__init__(codebook_size, code_dim)
        _check_decay(decay, epsilon)
        self.decay, self.epsilon = float(decay), float(epsilon)
        init = self.codebook.detach().clone()
        del self.codebook  # the same initial codes, as a buffer instead of a parameter
        self.register_buffer("codebook", init)
        self.register_buffer("ema_counts", torch.ones(codebook_size))
        self.register_buffer("ema_sums", init.clone())

    def forward(self, z_e: Tensor) -> VQOutput:
        out = super().forward(z_e)  # assigned, looked up and measured with the codebook before this step's update
        if self.training:
            self._ema_update(z_e.detach(), out.codes)
        return out._replace(codebook=torch.zeros_like(out.commit))  # no codebook loss: the EMA does its job

    @torch.no_grad()
    def _ema_update(self, z_e: Tensor, codes: Tensor) -> None:
        flat = z_e.permute(0, 2, 3, 1).reshape(-1, self.code_dim)  # (B*H*W, D)
        idx = codes.flatten()
        n_k = torch.bincount(idx, minlength=self.codebook_size).to(flat.dtype)  # (K,)
        sums = torch.zeros_like(self.ema_sums).index_add_(0, idx, flat)  # (K, D): sum of the z assigned to k
        self.ema_counts.mul_(self.decay).add_(n_k, alpha=1 - self.decay)
        self.ema_sums.mul_(self.decay).add_(sums, alpha=1 - self.decay)
        n = self.ema_counts.sum()
        smoothed = (self.ema_counts + self.epsilon) / (n + self.codebook_size * self.epsilon) * n
        self.codebook.copy_(self.ema_sums / smoothed[:, None])

    @torch.no_grad()
    def restart_dead_codes(self, z_e: Tensor, dead: Tensor, generator: torch.Generator | None = None) -> int:
        """As ``VectorQuantizer.restart_dead_codes``; each moved code also restarts its averages
        at one observation of its new place (N_k = 1, m_k = e_k), as Jukebox does."""
        moved = super().restart_dead_codes(z_e, dead, generator)
        if moved:
            idx = dead.nonzero().flatten().to(self.codebook.device)
            self.ema_counts[idx] = 1.0
            self.ema_sums[idx] = self.codebook[idx]
        return moved


def _check_decay(decay: object, epsilon: object) -> None:
    if not (isinstance(decay, (int, float)) and not isinstance(decay, bool) and 0 <= decay <= 1):
        raise ValueError(f"decay must be a float in [0, 1] (0.99 in van den Oord et al. 2017), got {decay!r}")
    if not (isinstance(epsilon, (int, float)) and not isinstance(epsilon, bool) and 0 < epsilon < math.inf):
        raise ValueError(f"epsilon must be a positive float such as 1e-5 (Laplace smoothing of the counts), got {epsilon!r}")


# ----------------------------------------------------------------------------------------------
# the VQ-VAE


@dataclass
class VQVAEConfig:
    """Everything needed to rebuild a ``VQVAE``; saved in checkpoints with ``dataclasses.asdict``."""

    # (C, H, W) of one image: fixes the first and last layers and the shape checks.
    input_shape: tuple[int, int, int] = (1, 28, 28)
    # Channels of the stride-2 4x4 conv layers, each halving H and W: 28 -> 14 -> 7, a 7x7 grid of codes.
    channels: tuple[int, ...] = (32, 64)
    # D, the size of each code vector: what the decoder reads at each grid cell.
    code_dim: int = 16
    # K, the number of codes: log2 K bits per grid cell at most.
    codebook_size: int = 64
    # beta of the commitment loss, keeping z_e near its code (0.25 in van den Oord et al. 2017).
    commitment: float = 0.25
    # Learn the codebook by moving averages (VectorQuantizerEMA) instead of the codebook loss.
    ema: bool = False
    # EMA decay per step (ema=True only): 0.99 averages over about the last 100 batches.
    decay: float = 0.99
    # Laplace smoothing of the EMA counts, so an unused code never divides by zero.
    epsilon: float = 1e-5
    # Training steps between restarts of the codes unused since the last one; 0 = never (then a short run
    # uses few codes: 3 of 64 after 3 epochs on 10k MNIST, against 38 with restart_every=100).
    restart_every: int = 0
    # p(x|z_q): independent Bernoulli pixels (logits), for data in [0, 1].
    likelihood: Literal["bernoulli"] = "bernoulli"

    def __post_init__(self) -> None:
        # Checkpoints store lists (asdict + torch.save); accept them and store tuples.
        self.input_shape = tuple(self.input_shape) if isinstance(self.input_shape, list) else self.input_shape
        self.channels = tuple(self.channels) if isinstance(self.channels, list) else self.channels
        if not (isinstance(self.input_shape, tuple) and len(self.input_shape) == 3 and all(map(_pos_int, self.input_shape))):
            raise ValueError(f"input_shape must be (C, H, W) with three positive ints, e.g. (1, 28, 28), got {self.input_shape!r}")
        if not (isinstance(self.channels, tuple) and self.channels and all(map(_pos_int, self.channels))):
            raise ValueError(f"channels must be a non-empty tuple of positive ints such as (32, 64), got {self.channels!r}")
        f = 2 ** len(self.channels)
        if self.input_shape[1] % f or self.input_shape[2] % f:
            raise ValueError(f"channels={self.channels} halves the image {len(self.channels)} times, so height and width must be "
                             f"divisible by {f}; got input_shape {self.input_shape}. Use fewer channels entries")
        for name in ("code_dim", "codebook_size"):
            if not _pos_int(getattr(self, name)):
                raise ValueError(f"{name} must be a positive int, got {getattr(self, name)!r}")
        if isinstance(self.commitment, bool) or not isinstance(self.commitment, (int, float)) or not 0 <= self.commitment < math.inf:
            raise ValueError(f"commitment must be a float >= 0 (beta, 0.25 in van den Oord et al. 2017), got {self.commitment!r}")
        if not isinstance(self.ema, bool):
            raise ValueError(f"ema must be True or False, got {self.ema!r}")
        _check_decay(self.decay, self.epsilon)
        if isinstance(self.restart_every, bool) or not isinstance(self.restart_every, int) or self.restart_every < 0:
            raise ValueError(f"restart_every must be an int >= 0 (training steps; 0 = never), got {self.restart_every!r}")
        if self.likelihood != "bernoulli":
            raise ValueError(f"likelihood must be 'bernoulli', got {self.likelihood!r}")

    @property
    def grid(self) -> tuple[int, int]:
        """(h, w) of the code grid: H and W halved once per ``channels`` entry."""
        f = 2 ** len(self.channels)
        return self.input_shape[1] // f, self.input_shape[2] // f


class VQVAE(nn.Module):
    """x (B, C, H, W) in [0, 1] -> z_e (B, D, h, w) -> codes (B, h, w) -> z_q (B, D, h, w) -> logits (B, C, H, W).

    Encoder: [Conv 4x4 stride 2, ReLU] per ``channels`` entry, then a 1x1 conv to D (no ReLU, so
    z_e can take any sign). Decoder: 3x3 conv D -> channels[-1], ReLU, then transposed 4x4 stride-2
    convs back to C channels of logits. Buffers ``usage`` (K,) (codes used since the last restart),
    ``steps`` (training steps) and ``restarts`` (codes restarted so far) drive ``restart_every``.
    """

    def __init__(self, config: VQVAEConfig) -> None:
        super().__init__()
        if not isinstance(config, VQVAEConfig):
            raise ValueError(f"expected a VQVAEConfig, got {type(config).__name__}")
        self.config = config
        c, chans, d = config.input_shape[0], config.channels, config.code_dim
        enc: list[nn.Module] = []
        for c_in, c_out in zip((c, *chans[:-1]), chans):
            enc += [nn.Conv2d(c_in, c_out, 4, stride=2, padding=1), nn.ReLU()]
        self.encoder = nn.Sequential(*enc, nn.Conv2d(chans[-1], d, 1))
        rev = chans[::-1]
        dec: list[nn.Module] = [nn.Conv2d(d, rev[0], 3, padding=1), nn.ReLU()]
        for c_in, c_out in zip(rev, (*rev[1:], c)):
            dec += [nn.ConvTranspose2d(c_in, c_out, 4, stride=2, padding=1), nn.ReLU()]
        self.decoder = nn.Sequential(*dec[:-1])  # no ReLU on the logits
        if config.ema:
            self.quantizer: VectorQuantizer = VectorQuantizerEMA(config.codebook_size, d, config.decay, config.epsilon)
        else:
            self.quantizer = VectorQuantizer(config.codebook_size, d)
        self.register_buffer("usage", torch.zeros(config.codebook_size, dtype=torch.long))
        self.register_buffer("steps", torch.zeros((), dtype=torch.long))
        self.register_buffer("restarts", torch.zeros((), dtype=torch.long))

    def encode(self, x: Tensor) -> Tensor:
        """x (B, C, H, W) -> z_e (B, D, h, w)."""
        check_images(x, self.config.input_shape, self.quantizer.codebook.dtype)
        return self.encoder(x)

    def quantize(self, z_e: Tensor) -> VQOutput:
        """z_e (B, D, h, w) -> ``VQOutput`` (in training mode an EMA quantizer also updates its codebook)."""
        return self.quantizer(z_e)

    def decode(self, z_q: Tensor) -> Tensor:
        """z_q (B, D, h, w) -> logits (B, C, H, W) of p(x|z_q)."""
        shape = (self.config.code_dim, *self.config.grid)
        if not isinstance(z_q, Tensor) or z_q.dim() != 4 or tuple(z_q.shape[1:]) != shape or not z_q.is_floating_point() or not len(z_q):
            got = tuple(z_q.shape) if isinstance(z_q, Tensor) else type(z_q).__name__
            raise ValueError(f"expected float z_q of shape (B, {', '.join(map(str, shape))}) with B >= 1, got {got}")
        return self.decoder(z_q)

    def forward(self, x: Tensor) -> tuple[Tensor, VQOutput]:
        """x (B, C, H, W) -> (logits (B, C, H, W), ``VQOutput``)."""
        vq = self.quantize(self.encode(x))
        return self.decode(vq.z_q), vq

    @torch.no_grad()
    def codes(self, x: Tensor) -> Tensor:
        """The code grid of each image: x (B, C, H, W) -> (B, h, w) long (never updates the codebook).

        Encodes 1000 images at a time, so a whole training set (a prior's data) fits in memory."""
        check_images(x, self.config.input_shape, self.quantizer.codebook.dtype)
        return torch.cat([self.quantizer.assign(self.encode(chunk)) for chunk in x.split(1000)])

    @torch.no_grad()
    def decode_codes(self, codes: Tensor) -> Tensor:
        """Look codes (B, h, w) up in the codebook and decode: -> images (B, C, H, W) in [0, 1]."""
        if isinstance(codes, Tensor) and tuple(codes.shape[1:]) != self.config.grid:
            raise ValueError(f"expected codes of shape (B, {', '.join(map(str, self.config.grid))}), got {tuple(codes.shape)}")
        return torch.sigmoid(self.decode(self.quantizer.lookup(codes)))

    @torch.no_grad()
    def reconstruct(self, x: Tensor) -> Tensor:
        """x (B, C, H, W) -> decode(quantize(encode(x))) as images (B, C, H, W) in [0, 1]."""
        return self.decode_codes(self.codes(x))

    def loss_terms(self, batch: Batch, weights: LossWeights = LossWeights()) -> LossTerms:
        """The training protocol (``vae_core.train.fit``): batch.x (B, C, H, W), labels ignored, no KL
        so ``weights`` change nothing. Terms (B,), unweighted: ``recon`` = -log p(x|z_q) summed over
        pixels, ``codebook``, ``commit``; loss = mean(recon + codebook + commitment * commit); no ELBO.

        In training mode it counts code use and, every ``restart_every`` calls, restarts the codes
        unused since the last restart on this batch's encoder outputs."""
        x = batch.x
        z_e = self.encode(x)
        vq = self.quantize(z_e)
        recon = -bernoulli_log_prob(self.decode(vq.z_q), x)  # (B,)
        loss = (recon + vq.codebook + self.config.commitment * vq.commit).mean()
        if self.training:
            self.usage += code_counts(vq.codes, self.config.codebook_size)
            self.steps += 1
            every = self.config.restart_every
            if every and int(self.steps) % every == 0:
                self.restarts += self.quantizer.restart_dead_codes(z_e.detach(), self.usage == 0)
                self.usage.zero_()
        return LossTerms(loss, {"recon": recon, "codebook": vq.codebook, "commit": vq.commit}, None)


# ----------------------------------------------------------------------------------------------
# the prior over codes


class MaskedConv2d(nn.Conv2d):
    """A conv whose output at pixel i sees only the pixels before i in raster order (PixelCNN,
    van den Oord et al. 2016): type "A" excludes pixel i itself (first layer), "B" includes it."""

    def __init__(self, mask_type: Literal["A", "B"], in_channels: int, out_channels: int, kernel_size: int) -> None:
        if mask_type not in ("A", "B") or not (_pos_int(kernel_size) and kernel_size % 2):
            raise ValueError(f"mask_type must be 'A' or 'B' and kernel_size an odd int, got {mask_type!r}, {kernel_size!r}")
        super().__init__(in_channels, out_channels, kernel_size, padding=kernel_size // 2)
        mask = torch.ones(kernel_size, kernel_size)
        c = kernel_size // 2
        mask[c, c + (mask_type == "B"):] = 0  # the centre row from the centre (A) or after it (B) ...
        mask[c + 1:] = 0  # ... and every row below
        self.register_buffer("mask", mask, persistent=False)

    def forward(self, x: Tensor) -> Tensor:
        return F.conv2d(x, self.weight * self.mask, self.bias, padding=self.padding)


@dataclass
class CodePriorConfig:
    """Everything needed to rebuild a ``CodePrior``."""

    # K, the number of codes of the VQ-VAE whose codes it models.
    codebook_size: int = 64
    # (h, w) of the code grid (VQVAEConfig.grid).
    grid: tuple[int, int] = (7, 7)
    # Feature channels of every masked conv layer.
    channels: int = 64
    # Masked conv layers: one type-A 7x7, then type-B 3x3 (more layers see further back).
    layers: int = 5

    def __post_init__(self) -> None:
        self.grid = tuple(self.grid) if isinstance(self.grid, list) else self.grid
        if not (isinstance(self.grid, tuple) and len(self.grid) == 2 and all(map(_pos_int, self.grid))):
            raise ValueError(f"grid must be (h, w) with two positive ints such as (7, 7), got {self.grid!r}")
        for name in ("codebook_size", "channels", "layers"):
            if not _pos_int(getattr(self, name)):
                raise ValueError(f"{name} must be a positive int, got {getattr(self, name)!r}")

    @property
    def input_shape(self) -> tuple[int, int, int]:
        """(1, h, w): the shape of one training example, a code grid with a channel axis (for ``fit``)."""
        return (1, *self.grid)


class CodePrior(nn.Module):
    """p(c) = prod_i p(c_i | c_<i) over an h x w grid of codes in raster order (a small PixelCNN).

    embedding K -> channels, masked conv A 7x7, then (layers - 1) x [ReLU, masked conv B 3x3],
    ReLU, 1x1 conv to K logits. Stacked masked convs leave a blind spot up and to the right of
    each position (fixed by the gated PixelCNN); the factorisation stays exact regardless.
    """

    def __init__(self, config: CodePriorConfig) -> None:
        super().__init__()
        if not isinstance(config, CodePriorConfig):
            raise ValueError(f"expected a CodePriorConfig, got {type(config).__name__}")
        self.config = config
        k, c = config.codebook_size, config.channels
        self.embed = nn.Embedding(k, c)
        layers: list[nn.Module] = [MaskedConv2d("A", c, c, 7)]
        for _ in range(config.layers - 1):
            layers += [nn.ReLU(), MaskedConv2d("B", c, c, 3)]
        self.net = nn.Sequential(*layers, nn.ReLU(), nn.Conv2d(c, k, 1))

    def _check(self, codes: object) -> Tensor:
        h, w = self.config.grid
        if not isinstance(codes, Tensor) or codes.dim() != 3 or tuple(codes.shape[1:]) != (h, w) or not len(codes):
            got = tuple(codes.shape) if isinstance(codes, Tensor) else type(codes).__name__
            raise ValueError(f"expected codes of shape (B, {h}, {w}) with B >= 1, got {got}")
        return _check_codes(codes, self.config.codebook_size)

    def forward(self, codes: Tensor) -> Tensor:
        """codes (B, h, w) long -> logits (B, K, h, w); position i's logits see only codes before i."""
        e = self.embed(self._check(codes)).permute(0, 3, 1, 2)  # (B, h, w, C) -> (B, C, h, w)
        return self.net(e)

    def log_prob(self, codes: Tensor) -> Tensor:
        """log p(c) = sum_i log p(c_i | c_<i) in nats: codes (B, h, w) -> (B,)."""
        return -F.cross_entropy(self(codes), codes, reduction="none").sum((1, 2))

    def loss_terms(self, batch: Batch, weights: LossWeights = LossWeights()) -> LossTerms:
        """The training protocol: batch.x (B, 1, h, w) codes (long, or float holding integers);
        terms {"nll": -log p(c)} (B,), loss its mean, elbo = log p(c) (exact)."""
        x = batch.x
        if x.dim() != 4 or x.shape[1] != 1:
            raise ValueError(f"expected a batch of code grids (B, 1, h, w), got {tuple(x.shape)}; add the axis with codes[:, None]")
        if x.is_floating_point():
            if not torch.equal(x, x.round()):
                raise ValueError("float codes must hold integers (code indices); pass vqvae.codes(x) as a long or float tensor")
            x = x.long()
        log_p = self.log_prob(x[:, 0])
        return LossTerms(-log_p.mean(), {"nll": -log_p}, log_p)

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator | None = None, temperature: float = 1.0) -> Tensor:
        """Draw n code grids one position at a time in raster order: -> (n, h, w) long.

        ``temperature`` divides the logits: < 1 sharpens each p(c_i | c_<i), > 1 flattens it."""
        if not _pos_int(n):
            raise ValueError(f"n must be a positive int, got {n!r}")
        if isinstance(temperature, bool) or not isinstance(temperature, (int, float)) or not 0 < temperature < math.inf:
            raise ValueError(f"temperature must be a positive float, got {temperature!r}")
        h, w = self.config.grid
        device = self.embed.weight.device
        codes = torch.zeros(n, h, w, dtype=torch.long, device=device)
        for i in range(h):
            for j in range(w):
                probs = torch.softmax(self(codes)[:, :, i, j] / temperature, dim=1)  # (n, K)
                if generator is not None:
                    probs = probs.to(generator.device)
                codes[:, i, j] = torch.multinomial(probs, 1, generator=generator).flatten().to(device)
        return codes


register_model(VQVAE, VQVAEConfig)
register_model(CodePrior, CodePriorConfig)
