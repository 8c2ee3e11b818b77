"""``Batches``: mini-batches over tensors already in memory.

``torch.utils.data.DataLoader`` is built for datasets read from disk item by item: it calls
``__getitem__`` once per example and collates the results in Python. Our datasets are one
tensor each, so a batch is a single indexing op, ``images[perm[i:i + B]]``; that is all this
class does, plus a per-epoch shuffle from its own seeded generator and optional dynamic
binarization (a fresh Bernoulli draw of every batch, every epoch).

Each ``for x, y in batches:`` loop is one epoch; the generator advances, so the next loop
sees a new order (and new binary samples), and two ``Batches`` built with the same seed
produce the same sequence of epochs. ``benchmarks/bench_batches.py`` measures the speed
against a ``DataLoader`` over a ``TensorDataset``.
"""
from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import torch
from torch import Tensor

from .dataset import Dataset, bernoulli_binarize, check_binarize, check_seed


@dataclass(frozen=True)
class Batch:
    """One mini-batch as a model's ``loss_terms(batch, weights)`` sees it (``vae_core.train.fit``).

    x:       ``(B, ...)`` inputs, e.g. images ``(B, C, H, W)`` in [0, 1].
    y:       ``(B,)`` labels, or None; a conditional model reads them, the others ignore them.
    lengths: ``(B,)`` sequence lengths, or None; a sequence model masks its padding with them.
    """

    x: Tensor
    y: Tensor | None = None
    lengths: Tensor | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.x, Tensor) or self.x.ndim < 1:
            got = tuple(self.x.shape) if isinstance(self.x, Tensor) else type(self.x).__name__
            raise ValueError(f"Batch.x must be a tensor with a batch dimension (B, ...), got {got}")
        for name in ("y", "lengths"):
            v = getattr(self, name)
            if v is not None and (not isinstance(v, Tensor) or v.ndim < 1 or v.shape[0] != self.x.shape[0]):
                got = tuple(v.shape) if isinstance(v, Tensor) else type(v).__name__
                raise ValueError(f"Batch.{name} must be None or a tensor with {self.x.shape[0]} rows to match x "
                                 f"{tuple(self.x.shape)}, got {got}")

    def __len__(self) -> int:
        """B, the number of examples."""
        return self.x.shape[0]


class Batches:
    """Iterate over ``(x, y)`` mini-batches (or ``x`` alone when ``labels`` is None), one epoch per loop.

    images:     ``(N, ...)`` tensor, e.g. ``(N, C, H, W)``; batches are ``(B, ...)`` on its device.
    labels:     ``(N,)`` (or ``(N, ...)``) tensor or None; batches are ``(B,)``.
    batch_size: B, a positive int.
    shuffle:    new random order every epoch (from a ``torch.Generator`` seeded with ``seed``).
    drop_last:  drop the final short batch, so every batch has exactly B examples.
    binarize:   None, or ``"dynamic"``: each batch is replaced by a Bernoulli sample
                ``x_bin = 1[u < x]`` (values must lie in [0, 1]); fresh every epoch.
    seed:       seed of the shuffle and of the binarization draws.
    """

    def __init__(self, images: Tensor, labels: Tensor | None = None, batch_size: int = 128,
                 shuffle: bool = True, drop_last: bool = False, binarize: str | None = None,
                 seed: int = 0) -> None:
        if not isinstance(images, Tensor) or images.ndim < 1:
            got = tuple(images.shape) if isinstance(images, Tensor) else type(images).__name__
            raise ValueError(f"images must be a tensor with a batch dimension (N, ...), got {got}; "
                             f"pass dataset.images or use Batches.from_dataset(dataset)")
        n = images.shape[0]
        if labels is not None:
            if not isinstance(labels, Tensor) or labels.ndim < 1 or labels.shape[0] != n:
                got = tuple(labels.shape) if isinstance(labels, Tensor) else type(labels).__name__
                raise ValueError(f"labels must be a tensor with {n} rows to match images "
                                 f"{tuple(images.shape)}, got {got}")
            if labels.device != images.device:
                raise ValueError(f"labels are on {labels.device} but images on {images.device}; "
                                 f"move both to the same device")
        if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size < 1:
            raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
        if binarize == "static":
            raise ValueError("binarize must be None or 'dynamic', got 'static': static binarization is "
                             "done once at load time, e.g. load_mnist(binarize='static')")
        check_binarize(binarize, (None, "dynamic"))
        check_seed(seed)
        if binarize == "dynamic" and n > 0:
            lo, hi = images.min().item(), images.max().item()
            if lo < 0 or hi > 1:
                raise ValueError(f"dynamic binarization needs images in [0, 1] (they are Bernoulli "
                                 f"probabilities), got values in [{lo:.3g}, {hi:.3g}]")
        if drop_last and n < batch_size:
            raise ValueError(f"drop_last=True with batch_size={batch_size} > {n} examples leaves no "
                             f"batch at all; lower batch_size or set drop_last=False")
        self.images, self.labels = images, labels
        self.batch_size, self.shuffle, self.drop_last = batch_size, bool(shuffle), bool(drop_last)
        self.binarize, self.seed = binarize, seed
        self.epoch = 0  # epochs started so far
        # shuffling happens on the CPU generator; binarization on one that lives with the data
        self._perm_gen = torch.Generator().manual_seed(seed)
        self._bin_gen = torch.Generator(device=images.device).manual_seed(seed + 1)

    @classmethod
    def from_dataset(cls, dataset: Dataset, batch_size: int = 128, shuffle: bool = True,
                     drop_last: bool = False, seed: int = 0, labels: bool = True) -> "Batches":
        """Batches over a :class:`~vae_core.data.Dataset`, binarizing per epoch when ``dataset.binarize == "dynamic"``.

        ``labels=False`` yields images alone.
        """
        if not isinstance(dataset, Dataset):
            raise ValueError(f"dataset must be a vae_core.data.Dataset, got {type(dataset).__name__}; "
                             f"for raw tensors use Batches(images, labels, ...)")
        binarize = "dynamic" if dataset.binarize == "dynamic" else None
        return cls(dataset.images, dataset.labels if labels else None, batch_size=batch_size,
                   shuffle=shuffle, drop_last=drop_last, binarize=binarize, seed=seed)

    def __len__(self) -> int:
        """Number of batches per epoch."""
        n = self.images.shape[0]
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)

    @property
    def num_examples(self) -> int:
        """Examples seen per epoch (``N``, or fewer with ``drop_last``)."""
        return len(self) * self.batch_size if self.drop_last else self.images.shape[0]

    def __iter__(self) -> Iterator[Tensor | tuple[Tensor, Tensor]]:
        n = self.images.shape[0]
        self.epoch += 1
        perm = None
        if self.shuffle:
            perm = torch.randperm(n, generator=self._perm_gen).to(self.images.device)
        stop = len(self) * self.batch_size if self.drop_last else n
        for start in range(0, stop, self.batch_size):
            end = min(start + self.batch_size, n)
            if perm is None:
                x = self.images[start:end]  # contiguous slice: a view, no copy
                y = None if self.labels is None else self.labels[start:end]
            else:
                idx = perm[start:end]
                x = self.images[idx]  # one gather per batch, no per-item Python
                y = None if self.labels is None else self.labels[idx]
            if self.binarize == "dynamic":
                x = bernoulli_binarize(x, self._bin_gen)  # fresh x_bin ~ Bernoulli(x) every epoch
            yield x if y is None else (x, y)

    def __repr__(self) -> str:
        return (f"Batches(n={self.images.shape[0]}, batch_size={self.batch_size}, shuffle={self.shuffle}, "
                f"drop_last={self.drop_last}, binarize={self.binarize!r}, seed={self.seed}, epoch={self.epoch})")
