"""Tests for the bundled MNIST, sklearn digits and the Dataset container.

Note on tolerances: the Bernoulli checks compare a sample mean of n independent pixels
with its expectation. With x_i the grey values, the sample mean of x_bin has standard
deviation sigma = sqrt(sum_i x_i (1 - x_i)) / n; we allow 5 sigma (two-sided p ~ 6e-7 per
check, and the seeds are fixed, so a pass or fail is reproducible).
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from vae_core.data import Batches, Dataset, load_dataset, load_digits, load_mnist, verify_mnist
from vae_core.data import mnist as mnist_mod
from vae_core.data.digits import digits_split_indices

FILES = Path(mnist_mod.__file__).parent / "files"
NAMES = [f"mnist_{s}_{p}.npy.gz" for s in ("train", "test") for p in ("images", "labels")]


def bernoulli_tolerance(p: torch.Tensor) -> float:
    """5 standard deviations of the mean of independent Bernoulli(p) draws."""
    return 5 * float((p * (1 - p)).sum().sqrt()) / p.numel()


# ---------------------------------------------------------------- checksums and files

def test_shipped_checksums_match_the_files():
    # independent of the loader: hash the bytes here and compare with SHA256SUMS.json
    sums = json.loads((FILES / "SHA256SUMS.json").read_text())
    assert sorted(sums) == sorted(NAMES)
    for name in NAMES:
        assert hashlib.sha256((FILES / name).read_bytes()).hexdigest() == sums[name], name
    assert verify_mnist() == sums


@pytest.fixture
def data_copy(tmp_path):
    for name in NAMES:
        shutil.copy(FILES / name, tmp_path / name)
    return tmp_path


def corrupt(path: Path, offset: int | None = None) -> None:
    raw = bytearray(path.read_bytes())
    i = len(raw) // 2 if offset is None else offset
    raw[i] ^= 0xFF  # flip one byte
    path.write_bytes(bytes(raw))


def test_copy_in_another_folder_loads(data_copy):
    ds = load_mnist("test", root=data_copy, limit=5)
    assert ds.labels.tolist() == [7, 2, 1, 0, 4]


def test_tampered_file_is_refused_naming_it(data_copy):
    corrupt(data_copy / "mnist_test_labels.npy.gz")
    with pytest.raises(ValueError, match=r"mnist_test_labels\.npy\.gz is corrupted.*git checkout"):
        load_mnist("test", root=data_copy)
    with pytest.raises(ValueError, match=r"mnist_test_labels\.npy\.gz"):
        verify_mnist(root=data_copy)


def test_tampered_file_found_through_the_environment_variable(data_copy, monkeypatch):
    corrupt(data_copy / "mnist_test_images.npy.gz")
    monkeypatch.setenv("VAE_COURSE_DATA_DIR", str(data_copy))
    with pytest.raises(ValueError, match=r"mnist_test_images\.npy\.gz is corrupted"):
        load_mnist("test", limit=3)


def test_file_changed_after_a_good_load_is_checked_again(data_copy):
    load_mnist("test", root=data_copy, limit=3)  # verified and cached
    path = data_copy / "mnist_test_labels.npy.gz"
    before = path.stat().st_mtime_ns
    corrupt(path)
    # the cache is keyed on (path, size, mtime); make sure the clock moved even on coarse filesystems
    os.utime(path, ns=(before + 10**9, before + 10**9))
    with pytest.raises(ValueError, match="mnist_test_labels"):
        load_mnist("test", root=data_copy, limit=3)


def test_missing_file_raises_file_not_found_naming_it(data_copy):
    (data_copy / "mnist_train_labels.npy.gz").unlink()
    with pytest.raises(FileNotFoundError, match=r"mnist_train_labels\.npy\.gz is missing.*reinstall"):
        load_mnist("train", root=data_copy)


def test_repeated_loads_use_the_verified_cache(monkeypatch):
    load_mnist("test", limit=2)
    calls = []
    real = mnist_mod.hashlib.sha256
    monkeypatch.setattr(mnist_mod.hashlib, "sha256", lambda *a: calls.append(1) or real(*a))
    load_mnist("test", limit=2)
    assert calls == []  # no file was hashed again
    mnist_mod.clear_cache()
    load_mnist("test", limit=2)
    assert len(calls) == 2  # images and labels, checked again after clearing


# ---------------------------------------------------------------- contents

def test_train_labels_counts_and_order():
    ds = load_mnist("train")
    counts = torch.bincount(ds.labels, minlength=10).tolist()
    assert counts == [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
    assert ds.labels[:10].tolist() == [5, 0, 4, 1, 9, 2, 1, 3, 1, 4]


def test_test_labels_counts():
    counts = torch.bincount(load_mnist("test").labels, minlength=10).tolist()
    assert counts == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]


def test_pixel_mean_is_the_classic_constant():
    # the usual MNIST normalisation constant 0.1307 (of byte/255); measured 0.130660
    assert abs(load_mnist("train").images.double().mean().item() - 0.1307) < 1e-4


@pytest.mark.parametrize("split, n", [("train", 60000), ("test", 10000)])
def test_shapes_dtypes_and_range(split, n):
    ds = load_mnist(split)
    assert isinstance(ds, Dataset) and len(ds) == n and ds.shape == (1, 28, 28)
    assert ds.images.shape == (n, 1, 28, 28) and ds.images.dtype == torch.float32
    assert ds.labels.shape == (n,) and ds.labels.dtype == torch.int64
    assert ds.images.min().item() == 0.0 and ds.images.max().item() == 1.0
    assert ds.name == f"mnist-{split}" and ds.binarize is None


def test_grey_values_are_bytes_over_255():
    images = load_mnist("test", limit=50).images
    raw, _ = mnist_mod.mnist_arrays("test")
    expected = torch.from_numpy(raw[:50].astype(np.float64) / 255.0).unsqueeze(1)
    torch.testing.assert_close(images.double(), expected, rtol=0, atol=1e-7)


def test_limit_takes_the_first_examples():
    full, part = load_mnist("test"), load_mnist("test", limit=123)
    assert len(part) == 123
    assert torch.equal(part.images, full.images[:123]) and torch.equal(part.labels, full.labels[:123])


def test_returned_tensors_do_not_alias_the_cache():
    a = load_mnist("test", limit=10)
    a.images.zero_()
    a.labels.zero_()
    b = load_mnist("test", limit=10)
    assert b.images.sum() > 0 and b.labels.tolist()[:3] == [7, 2, 1]


# ---------------------------------------------------------------- binarization

def test_static_binarization_is_binary_and_deterministic():
    a = load_mnist("test", binarize="static", limit=500)
    b = load_mnist("test", binarize="static", limit=500)
    c = load_mnist("test", binarize="static", limit=500, seed=1)
    assert a.binarize == "static"
    assert set(a.images.unique().tolist()) == {0.0, 1.0}
    assert torch.equal(a.images, b.images)
    assert not torch.equal(a.images, c.images)


def test_static_binarization_mean_matches_grey_mean():
    grey = load_mnist("test", limit=500).images
    binary = load_mnist("test", binarize="static", limit=500).images
    assert abs(binary.mean().item() - grey.mean().item()) < bernoulli_tolerance(grey)
    # pixels that are exactly 0 or 1 stay so
    assert torch.all(binary[grey == 0] == 0) and torch.all(binary[grey == 1] == 1)


def test_dynamic_binarization_differs_between_epochs_and_matches_the_grey_mean():
    ds = load_mnist("test", binarize="dynamic", limit=1000)
    assert ds.binarize == "dynamic" and not set(ds.images.unique().tolist()) <= {0.0, 1.0}
    batches = Batches.from_dataset(ds, batch_size=1000, shuffle=False, seed=0)
    (x1, _), = list(batches)
    (x2, _), = list(batches)
    assert set(x1.unique().tolist()) == {0.0, 1.0}
    assert not torch.equal(x1, x2)
    tol = bernoulli_tolerance(ds.images)  # ~ 1.5e-3 here
    for x in (x1, x2):
        assert abs(x.mean().item() - ds.images.mean().item()) < tol


def test_dynamic_binarization_averages_to_the_grey_image():
    # E[x_bin] = x per pixel: the average of 400 epochs is within 5 sigma (sigma <= 0.5 / 20) of x
    ds = load_digits("test", binarize="dynamic", limit=20)
    batches = Batches.from_dataset(ds, batch_size=20, shuffle=False, seed=3, labels=False)
    avg = torch.stack([next(iter(batches)) for _ in range(400)]).mean(0)
    assert (avg - ds.images).abs().max().item() < 5 * 0.5 / 20


@pytest.mark.parametrize("kwargs, match", [
    ({"split": "valid"}, "split must be 'train' or 'test'"),
    ({"binarize": "dynamical"}, "binarize must be one of"),
    ({"limit": 0}, "limit must be a positive int"),
    ({"limit": 10001}, "limit=10001 is larger than the 10000"),
    ({"seed": -1}, "seed must be a non-negative int"),
])
def test_bad_arguments_raise(kwargs, match):
    kwargs = {"split": "test", **kwargs}
    with pytest.raises(ValueError, match=match):
        load_mnist(**kwargs)


# ---------------------------------------------------------------- sklearn digits

def test_digits_shapes_range_and_determinism():
    tr, te = load_digits("train"), load_digits("test")
    assert tr.images.shape == (1500, 1, 8, 8) and te.images.shape == (297, 1, 8, 8)
    assert tr.labels.dtype == torch.int64 and tr.shape == (1, 8, 8)
    assert tr.images.min() == 0 and tr.images.max() == 1  # 16 / 16
    again = load_digits("train")
    assert torch.equal(tr.images, again.images) and torch.equal(tr.labels, again.labels)
    assert torch.equal(load_digits("train", seed=5).images, tr.images)  # seed only binarizes


def test_digits_splits_are_disjoint_and_cover_sklearn_exactly():
    from sklearn.datasets import load_digits as sk

    ref = sk()
    idx = digits_split_indices()
    assert set(idx["train"].tolist()).isdisjoint(idx["test"].tolist())
    assert sorted(idx["train"].tolist() + idx["test"].tolist()) == list(range(1797))
    tr, te = load_digits("train"), load_digits("test")
    for ds, rows in ((tr, idx["train"]), (te, idx["test"])):
        expected = torch.tensor(ref.images[rows.numpy()] / 16.0, dtype=torch.float32).unsqueeze(1)
        assert torch.equal(ds.images, expected)
        assert ds.labels.tolist() == ref.target[rows.numpy()].tolist()
    # every class appears in both splits
    assert torch.bincount(te.labels, minlength=10).min() > 0


def test_digits_binarizations():
    s = load_digits("train", binarize="static", seed=2)
    assert set(s.images.unique().tolist()) == {0.0, 1.0}
    assert torch.equal(s.images, load_digits("train", binarize="static", seed=2).images)
    d = load_digits("train", binarize="dynamic")
    assert d.binarize == "dynamic" and torch.equal(d.images, load_digits("train").images)


def test_load_dataset_dispatches():
    assert torch.equal(load_dataset("digits", "test").images, load_digits("test").images)
    assert torch.equal(load_dataset("mnist", "test", limit=7).labels, load_mnist("test", limit=7).labels)
    with pytest.raises(ValueError, match="name must be 'mnist', 'digits' or 'sprites'"):
        load_dataset("cifar", "train")
    with pytest.raises(ValueError, match="split must be 'train', 'test' or 'all'"):
        load_digits("validation")


# ---------------------------------------------------------------- Dataset

def test_dataset_subset_and_validation():
    ds = load_digits("test")
    sub = ds.subset(10)
    assert len(sub) == 10 and torch.equal(sub.images, ds.images[:10]) and sub.binarize == ds.binarize
    with pytest.raises(ValueError, match="limit=300 is larger than the 297"):
        ds.subset(300)
    with pytest.raises(ValueError, match=r"labels must have shape \(4,\)"):
        Dataset(torch.zeros(4, 1, 8, 8), torch.zeros(3, dtype=torch.int64), "x")
    with pytest.raises(ValueError, match=r"images must be a tensor of shape \(N, C, H, W\)"):
        Dataset(torch.zeros(4, 8, 8), torch.zeros(4, dtype=torch.int64), "x")


def test_importing_reads_no_file():
    import subprocess
    import sys

    code = ("import vae_core.data, vae_core.data.mnist as m, sys; "
            "assert not m._CACHE; assert 'sklearn' not in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True)
