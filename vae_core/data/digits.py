"""scikit-learn's 8 x 8 handwritten digits: 1,797 images, tiny and instant.

The dataset ships inside scikit-learn (no download). Pixel values are counts 0..16, scaled
here to [0, 1] by ``/ 16``. The train/test split is fixed: one permutation drawn with seed
``SPLIT_SEED`` (independent of the ``seed`` argument), first 1,500 for training, last 297
for testing, so every caller sees the same two disjoint sets.
"""
from __future__ import annotations

import torch

from .dataset import Dataset, check_binarize, check_limit, check_seed, finish

N_DIGITS = 1797
N_TRAIN = 1500
SPLIT_SEED = 0
_CACHE: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}


def digits_split_indices() -> dict[str, torch.Tensor]:
    """Row indices into sklearn's ``load_digits()`` for each split: ``{"train": (1500,), "test": (297,)}``."""
    perm = torch.randperm(N_DIGITS, generator=torch.Generator().manual_seed(SPLIT_SEED))
    return {"train": perm[:N_TRAIN], "test": perm[N_TRAIN:]}


def _all_digits() -> tuple[torch.Tensor, torch.Tensor]:
    """All 1,797 images ``(N, 1, 8, 8)`` in [0, 1] and labels ``(N,)``, in sklearn's order."""
    if "all" not in _CACHE:
        from sklearn.datasets import load_digits as sk_load_digits  # imported lazily: sklearn is slow to import

        bunch = sk_load_digits()
        images = torch.tensor(bunch.images, dtype=torch.float32).div_(16.0).unsqueeze(1)  # (N, 8, 8) -> (N, 1, 8, 8)
        labels = torch.tensor(bunch.target, dtype=torch.int64)
        if images.shape != (N_DIGITS, 1, 8, 8):
            raise ValueError(f"scikit-learn's digits have shape {tuple(images.shape)}, expected "
                             f"({N_DIGITS}, 1, 8, 8); reinstall scikit-learn at the pinned version")
        _CACHE["all"] = (images, labels)
    return _CACHE["all"]


def load_digits(split: str = "train", binarize: str | None = None, limit: int | None = None,
                seed: int = 0) -> Dataset:
    """scikit-learn's 8 x 8 digits as a :class:`~vae_core.data.Dataset`.

    split:    ``"train"`` (1,500), ``"test"`` (297) or ``"all"`` (1,797, sklearn's order).
    binarize: ``None``, ``"static"`` or ``"dynamic"``, as in :func:`~vae_core.data.load_mnist`.
    limit:    keep only the first ``limit`` examples of the split.
    seed:     seed of the static binarization (the split itself never changes).

    Returns images ``(N, 1, 8, 8)`` float32 in [0, 1] and labels ``(N,)`` int64.
    """
    if split not in ("train", "test", "all"):
        raise ValueError(f"split must be 'train', 'test' or 'all', got {split!r}")
    check_binarize(binarize)
    check_seed(seed)
    images, labels = _all_digits()
    if split != "all":
        idx = digits_split_indices()[split]
        images, labels = images[idx], labels[idx]  # advanced indexing copies: the cache stays untouched
    else:
        images, labels = images.clone(), labels.clone()
    n = check_limit(limit, len(labels))
    return finish(images[:n], labels[:n], f"digits-{split}", binarize, seed)
