"""Molecules as SMILES strings, shipped with the package: a fixed subset of the MOSES benchmark.

50,000 training and 5,000 test molecules drawn (seed 0) from MOSES (Polykovskiy et al. 2020,
MIT licence), itself a filtered subset of ZINC Clean Leads: drug-like, neutral organic
molecules of 15 to 53 characters (mean 36) written with 25 distinct characters. They live in
``vae_core/data/files/`` as ``moses_train.smi.gz`` and ``moses_test.smi.gz`` (one SMILES per
line); ``PROVENANCE.md`` there says where they come from and how they were drawn, and
``MOSES_LICENSE.txt`` carries the licence.

    from vae_core.data import load_smiles
    train = load_smiles("train")             # list of 50,000 str, e.g. 'CCOC(=O)c1ccc...'
    few = load_smiles("test", limit=100)     # the first 100 (already a random sample)

Every file's SHA-256 is compared with ``MOSES_SHA256SUMS.json`` (not ``SHA256SUMS.json``, which
is MNIST's) the first time it is read in a process; the verified strings are then kept in
memory. ``root=`` reads the files from another folder (``$VAE_COURSE_DATA_DIR`` is not
consulted: it names the folder of the four MNIST files); the expected checksums always come
from the package's own ``MOSES_SHA256SUMS.json``.

The strings are MOSES's spelling; all but 12 of the 55,000 are also RDKit 2026.09's canonical
SMILES. Compare molecules through :func:`vae_core.chem.canonical`, never as raw strings.
"""
from __future__ import annotations

import gzip
import hashlib
import json
import os
import zlib
from pathlib import Path

from .dataset import check_limit
from .mnist import _RESTORE, PACKAGE_DATA_DIR

SUMS_FILE = "MOSES_SHA256SUMS.json"
SPLITS = ("train", "test")
SIZES = {"train": 50_000, "test": 5_000}
MOSES_CITATION = (
    "D. Polykovskiy, A. Zhebrak, B. Sanchez-Lengeling, S. Golovanov, O. Tatanov, S. Belyaev, "
    "R. Kurbanov, A. Artamonov, V. Aladinskiy, M. Veselov, A. Kadurin, S. Johansson, H. Chen, "
    "S. Nikolenko, A. Aspuru-Guzik and A. Zhavoronkov. Molecular Sets (MOSES): A Benchmarking "
    "Platform for Molecular Generation Models. Frontiers in Pharmacology 11:565644 (2020). "
    "doi:10.3389/fphar.2020.565644"
)

# (resolved path, size, mtime_ns) -> verified SMILES; a file changed on disk is verified again.
_CACHE: dict[tuple[str, int, int], tuple[str, ...]] = {}


def _check_split(split: object) -> str:
    if split not in SPLITS:
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    return split  # type: ignore[return-value]


def smiles_path(split: str = "train", root: str | os.PathLike | None = None) -> Path:
    """Where the SMILES file of ``split`` lives: ``<root>/moses_<split>.smi.gz`` (default: the package's folder)."""
    folder = PACKAGE_DATA_DIR if root is None else Path(root)
    return folder / f"moses_{_check_split(split)}.smi.gz"


def expected_sha256() -> dict[str, str]:
    """The recorded SHA-256 of each shipped SMILES file, from the package's ``MOSES_SHA256SUMS.json``."""
    path = PACKAGE_DATA_DIR / SUMS_FILE
    if not path.is_file():
        raise FileNotFoundError(f"checksum file {path} is missing; {_RESTORE}")
    try:
        sums = json.loads(path.read_text())
    except (ValueError, UnicodeDecodeError) as err:
        raise ValueError(f"checksum file {path} is not valid JSON ({err}); {_RESTORE}") from None
    if not isinstance(sums, dict):
        raise ValueError(f"checksum file {path} should hold a JSON object {{file name: sha256}}, "
                         f"got {type(sums).__name__}; {_RESTORE}")
    return sums


def _read_verified(split: str, root: str | os.PathLike | None) -> tuple[str, ...]:
    """The SMILES of ``split`` after checking the file's SHA-256 and contents; cached per process."""
    path = smiles_path(split, root)
    if not path.is_file():
        raise FileNotFoundError(f"MOSES file {path.name} is missing: no {path}; {_RESTORE}")
    stat = path.stat()
    key = (str(path.resolve()), stat.st_size, stat.st_mtime_ns)
    if key in _CACHE:
        return _CACHE[key]
    raw = path.read_bytes()
    expected = expected_sha256().get(path.name)
    if expected is None:
        raise ValueError(f"{SUMS_FILE} has no entry for {path.name}; {_RESTORE}")
    got = hashlib.sha256(raw).hexdigest()
    if got != expected:
        raise ValueError(f"MOSES file {path.name} is corrupted ({path}): SHA-256 {got[:16]}..., "
                         f"expected {expected[:16]}...; {_RESTORE}")
    # The checksum matched, so what follows can only fail if the files and the sums were replaced
    # together by something that is not the course's conversion (scripts/convert_moses.py).
    try:
        text = gzip.decompress(raw).decode("ascii")
    except (OSError, EOFError, zlib.error, UnicodeDecodeError) as err:
        raise ValueError(f"MOSES file {path.name} is not gzipped ASCII text ({err}); {_RESTORE}") from None
    lines = text.split("\n")
    if lines[-1] == "":
        lines.pop()  # the newline that ends the last line
    n = SIZES[split]
    if len(lines) != n:
        raise ValueError(f"MOSES file {path.name} holds {len(lines)} lines, expected {n} SMILES; {_RESTORE}")
    for i, s in enumerate(lines):
        if not s or any(c.isspace() for c in s):
            raise ValueError(f"MOSES file {path.name} line {i + 1} is {s!r}, expected one SMILES "
                             f"without whitespace; {_RESTORE}")
    smiles = tuple(lines)
    _CACHE[key] = smiles
    return smiles


def load_smiles(split: str = "train", limit: int | None = None,
                root: str | os.PathLike | None = None) -> list[str]:
    """The shipped MOSES molecules of ``split`` as a list of SMILES strings.

    split: ``"train"`` (50,000 molecules) or ``"test"`` (5,000; no molecule is in both).
    limit: keep only the first ``limit`` (the files are in random order, so any prefix is a
           random sample); ``None`` for all.
    root:  folder with ``moses_<split>.smi.gz`` (default: the package's ``data/files``).

    Returns a new list each call (editing it does not touch the cache). Raises
    ``FileNotFoundError`` for a missing file and ``ValueError`` for a bad ``split`` or ``limit``
    or a file that fails its checksum, each saying how to restore the file.
    """
    _check_split(split)
    n = check_limit(limit, SIZES[split])
    return list(_read_verified(split, root)[:n])


def verify_smiles(root: str | os.PathLike | None = None) -> dict[str, str]:
    """Check both SMILES files against ``MOSES_SHA256SUMS.json``; return ``{file name: sha256}``."""
    for split in SPLITS:
        _read_verified(split, root)
    return expected_sha256()


def clear_cache() -> None:
    """Forget the verified strings (the next load reads and checks the files again)."""
    _CACHE.clear()


__all__ = ["load_smiles", "verify_smiles", "smiles_path", "expected_sha256", "clear_cache",
           "MOSES_CITATION", "SIZES", "SPLITS"]
