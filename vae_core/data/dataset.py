"""The in-memory ``Dataset`` every loader returns, and Bernoulli binarization.

A course dataset is small enough to live in memory as one tensor, so a dataset is just
images ``(N, C, H, W)`` in [0, 1], labels ``(N,)`` and a note of how it is binarized.

Binarization (for the Bernoulli likelihood) comes in two flavours:

- ``"static"``: one draw ``x_bin = 1[u < x]``, ``u ~ U(0, 1)`` with a fixed seed, done once
  at load time (Larochelle & Murray 2011 ship such a fixed binarized MNIST);
- ``"dynamic"``: the dataset keeps its grey values and :class:`~vae_core.data.Batches`
  draws a fresh Bernoulli sample for every batch of every epoch (Salakhutdinov & Murray
  2008), which acts as data augmentation and reduces overfitting.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

BINARIZE_CHOICES = (None, "static", "dynamic")


def check_seed(seed: object) -> int:
    """Return ``seed`` when it is a non-negative int, else raise ``ValueError``."""
    if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
        raise ValueError(f"seed must be a non-negative int, got {seed!r}")
    return seed


def check_binarize(binarize: object, choices: tuple = BINARIZE_CHOICES) -> str | None:
    """Return ``binarize`` when it is one of ``choices``, else raise ``ValueError``."""
    if binarize not in choices:
        raise ValueError(f"binarize must be one of {choices}, got {binarize!r}")
    return binarize  # type: ignore[return-value]


def check_limit(limit: object, available: int) -> int:
    """Number of examples to keep: ``limit`` (a positive int, at most ``available``) or all."""
    if limit is None:
        return available
    if not isinstance(limit, int) or isinstance(limit, bool) or limit < 1:
        raise ValueError(f"limit must be a positive int or None, got {limit!r}")
    if limit > available:
        raise ValueError(f"limit={limit} is larger than the {available} examples available; "
                         f"use limit=None for all of them")
    return limit


def bernoulli_binarize(images: Tensor, generator: torch.Generator) -> Tensor:
    """One Bernoulli draw per pixel: ``x_bin = 1[u < x]``, ``u ~ U(0, 1)``, so ``E[x_bin] = x``.

    images: ``(...)`` probabilities in [0, 1]; returns a float tensor of 0/1 of the same shape.
    ``generator`` must live on ``images.device``.
    """
    u = torch.rand(images.shape, generator=generator, device=images.device, dtype=images.dtype)
    return (u < images).to(images.dtype)  # P(x_bin = 1) = P(u < x) = x


def static_binarize(images: Tensor, seed: int) -> Tensor:
    """The fixed binarization used by ``binarize="static"``: :func:`bernoulli_binarize` seeded with ``seed``.

    images: ``(N, C, H, W)`` in [0, 1] on the CPU -> ``(N, C, H, W)`` of 0/1.
    """
    return bernoulli_binarize(images, torch.Generator().manual_seed(check_seed(seed)))


@dataclass
class Dataset:
    """Images and labels held in memory.

    images:   ``(N, C, H, W)`` float32 in [0, 1] (binary when ``binarize == "static"``).
    labels:   ``(N,)`` int64 class labels (for sprites: the shape index).
    name:     e.g. ``"mnist-train"``.
    binarize: ``None`` (grey values), ``"static"`` (already 0/1) or ``"dynamic"``
              (grey values here; :class:`~vae_core.data.Batches` samples 0/1 every epoch).
    factors:  ``(N, K)`` int64 ground-truth factor indices when known (sprites), else ``None``.
    """

    images: Tensor
    labels: Tensor
    name: str
    binarize: str | None = None
    factors: Tensor | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.images, Tensor) or self.images.ndim != 4:
            got = tuple(self.images.shape) if isinstance(self.images, Tensor) else type(self.images).__name__
            raise ValueError(f"images must be a tensor of shape (N, C, H, W), got {got}")
        n = self.images.shape[0]
        if not isinstance(self.labels, Tensor) or tuple(self.labels.shape) != (n,):
            got = tuple(self.labels.shape) if isinstance(self.labels, Tensor) else type(self.labels).__name__
            raise ValueError(f"labels must have shape ({n},) to match images {tuple(self.images.shape)}, got {got}")
        if self.factors is not None and (self.factors.ndim != 2 or self.factors.shape[0] != n):
            raise ValueError(f"factors must have shape ({n}, K), got {tuple(self.factors.shape)}")
        check_binarize(self.binarize)

    def __len__(self) -> int:
        return self.images.shape[0]

    @property
    def shape(self) -> tuple[int, int, int]:
        """Shape of one image, ``(C, H, W)``."""
        return tuple(self.images.shape[1:])  # type: ignore[return-value]

    def subset(self, n: int) -> "Dataset":
        """The first ``n`` examples (views, no copy), e.g. for quick mode."""
        n = check_limit(n, len(self))
        return Dataset(self.images[:n], self.labels[:n], self.name, self.binarize,
                       None if self.factors is None else self.factors[:n])

    def to(self, device: torch.device | str) -> "Dataset":
        """The same dataset with its tensors on ``device``."""
        return Dataset(self.images.to(device), self.labels.to(device), self.name, self.binarize,
                       None if self.factors is None else self.factors.to(device))

    def __repr__(self) -> str:
        return (f"Dataset(name={self.name!r}, n={len(self)}, shape={self.shape}, "
                f"binarize={self.binarize!r})")


def finish(images: Tensor, labels: Tensor, name: str, binarize: str | None, seed: int,
           factors: Tensor | None = None) -> Dataset:
    """Wrap grey ``images`` into a :class:`Dataset`, applying static binarization if asked."""
    if binarize == "static":
        images = static_binarize(images, seed)
    return Dataset(images, labels, name, binarize, factors)


def load_dataset(name: str, split: str = "train", **kwargs) -> Dataset:
    """Load a dataset by name: ``"mnist"``, ``"digits"`` or ``"sprites"``.

    ``kwargs`` go to :func:`~vae_core.data.load_mnist`, :func:`~vae_core.data.load_digits`
    or :func:`~vae_core.data.load_sprites` (sprites ignore ``split`` unless it is ``"train"``;
    pass a different ``seed`` for a held-out draw).
    """
    if name == "mnist":
        from .mnist import load_mnist
        return load_mnist(split, **kwargs)
    if name == "digits":
        from .digits import load_digits
        return load_digits(split, **kwargs)
    if name == "sprites":
        from .sprites import load_sprites
        if split != "train":
            raise ValueError(f"sprites are generated, not split: use split='train' and a different "
                             f"seed for held-out sprites, got split={split!r}")
        return load_sprites(**kwargs)
    raise ValueError(f"name must be 'mnist', 'digits' or 'sprites', got {name!r}")
