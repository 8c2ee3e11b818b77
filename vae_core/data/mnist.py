"""MNIST, shipped with the package: 60,000 training and 10,000 test digits, 28 x 28.

The arrays live in ``vae_core/data/files/`` as gzipped ``.npy`` uint8 files (see
``PROVENANCE.md`` there for where they come from and how they were checked). Every file's
SHA-256 is compared with ``SHA256SUMS.json`` the first time it is read in a process; the
verified arrays are then kept in memory, so loading again costs only the float conversion.

Set ``VAE_COURSE_DATA_DIR`` (or pass ``root=``) to read the four files from another folder;
the expected checksums always come from the package's own ``SHA256SUMS.json``.
"""
from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
from pathlib import Path

import numpy as np
import torch

from .dataset import Dataset, check_binarize, check_limit, check_seed, finish

DATA_DIR_ENV = "VAE_COURSE_DATA_DIR"
PACKAGE_DATA_DIR = Path(__file__).resolve().parent / "files"
SUMS_FILE = "SHA256SUMS.json"
SPLITS = ("train", "test")
_SIZES = {"train": 60_000, "test": 10_000}
_RESTORE = ("restore it with `git checkout -- vae_core/data/files` in a clone of the course, "
            "or reinstall the package (`pip install --force-reinstall vae_core` / `pip install -e .`)")

# (resolved path, size, mtime_ns) -> verified array; a file changed on disk is verified again.
_CACHE: dict[tuple[str, int, int], np.ndarray] = {}


def data_dir(root: str | os.PathLike | None = None) -> Path:
    """Folder holding the MNIST files: ``root`` if given, else ``$VAE_COURSE_DATA_DIR``, else the package's."""
    if root is not None:
        return Path(root)
    env = os.environ.get(DATA_DIR_ENV, "").strip()
    return Path(env) if env else PACKAGE_DATA_DIR


def expected_sha256() -> dict[str, str]:
    """The recorded SHA-256 of each shipped file, from the package's ``SHA256SUMS.json``."""
    path = PACKAGE_DATA_DIR / SUMS_FILE
    if not path.is_file():
        raise FileNotFoundError(f"checksum file {path} is missing; {_RESTORE}")
    return json.loads(path.read_text())


def _read_verified(name: str, root: str | os.PathLike | None) -> np.ndarray:
    """Read ``<root>/<name>.npy.gz`` after checking its SHA-256; cached per process."""
    filename = f"{name}.npy.gz"
    path = data_dir(root) / filename
    if not path.is_file():
        where = f" (from ${DATA_DIR_ENV})" if root is None and os.environ.get(DATA_DIR_ENV, "").strip() else ""
        raise FileNotFoundError(f"MNIST file {filename} is missing: no {path}{where}; {_RESTORE}")
    stat = path.stat()
    key = (str(path.resolve()), stat.st_size, stat.st_mtime_ns)
    if key in _CACHE:
        return _CACHE[key]
    raw = path.read_bytes()
    expected = expected_sha256().get(filename)
    if expected is None:
        raise ValueError(f"{SUMS_FILE} has no entry for {filename}; {_RESTORE}")
    got = hashlib.sha256(raw).hexdigest()
    if got != expected:
        raise ValueError(f"MNIST file {filename} is corrupted ({path}): SHA-256 {got[:16]}..., "
                         f"expected {expected[:16]}...; {_RESTORE}")
    with gzip.GzipFile(fileobj=io.BytesIO(raw)) as f:
        arr = np.load(f, allow_pickle=False)
    arr.setflags(write=False)  # the cache is shared: nobody may edit it in place
    _CACHE[key] = arr
    return arr


def verify_mnist(root: str | os.PathLike | None = None) -> dict[str, str]:
    """Check all four MNIST files against ``SHA256SUMS.json``; return ``{file name: sha256}``.

    Raises ``FileNotFoundError`` (missing file) or ``ValueError`` (wrong checksum) naming the file.
    """
    for split in SPLITS:
        for part in ("images", "labels"):
            _read_verified(f"mnist_{split}_{part}", root)
    return {name: sha for name, sha in expected_sha256().items()}


def mnist_arrays(split: str = "train", root: str | os.PathLike | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The verified raw arrays: images ``(N, 28, 28)`` uint8 and labels ``(N,)`` uint8 (read-only)."""
    if split not in SPLITS:
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    images = _read_verified(f"mnist_{split}_images", root)
    labels = _read_verified(f"mnist_{split}_labels", root)
    n = _SIZES[split]
    if images.shape != (n, 28, 28) or labels.shape != (n,) or images.dtype != np.uint8:
        raise ValueError(f"MNIST {split} arrays have shapes {images.shape}/{labels.shape} "
                         f"(dtype {images.dtype}), expected ({n}, 28, 28)/({n},) uint8; {_RESTORE}")
    return images, labels


def load_mnist(split: str = "train", binarize: str | None = None, limit: int | None = None,
               seed: int = 0, root: str | os.PathLike | None = None) -> Dataset:
    """MNIST as a :class:`~vae_core.data.Dataset`.

    split:    ``"train"`` (60,000) or ``"test"`` (10,000).
    binarize: ``None`` grey values ``x = byte / 255`` in [0, 1]; ``"static"`` one Bernoulli draw
              with ``seed`` (the same every call); ``"dynamic"`` grey values marked so that
              :class:`~vae_core.data.Batches` draws fresh 0/1 samples every epoch.
    limit:    keep only the first ``limit`` examples (quick mode, tests).
    seed:     seed of the static binarization (ignored otherwise).
    root:     folder with the files (default: ``$VAE_COURSE_DATA_DIR`` or the package's).

    Returns images ``(N, 1, 28, 28)`` float32 and labels ``(N,)`` int64.
    """
    if split not in SPLITS:
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    check_binarize(binarize)
    check_seed(seed)
    n = check_limit(limit, _SIZES[split])
    images_u8, labels_u8 = mnist_arrays(split, root)
    # torch.tensor copies, so the returned tensors never alias the read-only cache
    images = torch.tensor(images_u8[:n]).to(torch.float32).div_(255.0).unsqueeze(1)  # (N, 28, 28) -> (N, 1, 28, 28)
    labels = torch.tensor(labels_u8[:n]).to(torch.int64)
    return finish(images, labels, f"mnist-{split}", binarize, seed)


def clear_cache() -> None:
    """Forget the verified arrays (the next load reads and checks the files again)."""
    _CACHE.clear()


__all__ = ["load_mnist", "mnist_arrays", "verify_mnist", "data_dir", "expected_sha256",
           "clear_cache", "DATA_DIR_ENV", "PACKAGE_DATA_DIR"]

