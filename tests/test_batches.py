"""Tests for ``Batches``: epochs, shuffling, drop_last, seeding, dynamic binarization.

Images here are ``arange`` values, so a batch says exactly which examples it holds.
"""
from __future__ import annotations

import pytest
import torch

from vae_core.data import Batches, Dataset, load_digits


def indexed(n: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Images (n, 1, 2, 2) whose every pixel is the example's index, labels = index + 1000."""
    idx = torch.arange(n)
    return idx.float().view(n, 1, 1, 1).expand(n, 1, 2, 2).contiguous(), idx + 1000


def epoch_order(batches: Batches) -> list[int]:
    return [int(v) for x, _ in batches for v in x[:, 0, 0, 0]]


def test_shuffled_epoch_covers_every_index_exactly_once():
    x, y = indexed(103)
    batches = Batches(x, y, batch_size=10, shuffle=True, seed=0)
    for _ in range(3):
        order = epoch_order(batches)
        assert sorted(order) == list(range(103))


def test_labels_travel_with_their_images():
    x, y = indexed(50)
    for xb, yb in Batches(x, y, batch_size=7, shuffle=True, seed=1):
        assert torch.equal(xb[:, 0, 0, 0].long() + 1000, yb)


def test_without_shuffle_the_order_is_the_data_order():
    x, y = indexed(25)
    assert epoch_order(Batches(x, y, batch_size=4, shuffle=False)) == list(range(25))


@pytest.mark.parametrize("n, bs, drop_last, sizes", [
    (10, 3, False, [3, 3, 3, 1]),
    (10, 3, True, [3, 3, 3]),
    (9, 3, True, [3, 3, 3]),
    (9, 3, False, [3, 3, 3]),
    (5, 8, False, [5]),
])
def test_batch_sizes_and_len(n, bs, drop_last, sizes):
    x, y = indexed(n)
    batches = Batches(x, y, batch_size=bs, drop_last=drop_last, seed=0)
    assert [len(yb) for _, yb in batches] == sizes
    assert len(batches) == len(sizes)
    assert batches.num_examples == sum(sizes)


def test_drop_last_with_shuffle_drops_different_examples_each_epoch():
    x, y = indexed(10)
    batches = Batches(x, y, batch_size=3, drop_last=True, seed=0)
    seen = [set(epoch_order(batches)) for _ in range(5)]
    assert all(len(s) == 9 for s in seen)
    assert len({frozenset(s) for s in seen}) > 1  # the left-out example changes with the shuffle


def test_same_seed_same_epochs_other_seed_other_order():
    x, y = indexed(64)
    a, b = Batches(x, y, batch_size=16, seed=7), Batches(x, y, batch_size=16, seed=7)
    c = Batches(x, y, batch_size=16, seed=8)
    for _ in range(3):  # the whole sequence of epochs is reproducible, not just the first
        assert epoch_order(a) == epoch_order(b)
    assert epoch_order(Batches(x, y, batch_size=16, seed=7)) != epoch_order(c)


def test_order_changes_across_epochs():
    x, y = indexed(64)
    batches = Batches(x, y, batch_size=16, seed=0)
    first, second = epoch_order(batches), epoch_order(batches)
    assert first != second
    assert batches.epoch == 2


def test_shuffle_does_not_touch_the_global_rng():
    x, y = indexed(32)
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    list(Batches(x, y, batch_size=8, seed=0, binarize=None))
    assert torch.equal(torch.rand(3), expected)


def test_images_alone_when_labels_is_none():
    x, _ = indexed(12)
    out = list(Batches(x, batch_size=5, shuffle=False))
    assert all(isinstance(b, torch.Tensor) for b in out)
    assert [b.shape[0] for b in out] == [5, 5, 2]


def test_dynamic_binarization_is_binary_and_fresh_each_epoch():
    ds = load_digits("test", limit=64)
    batches = Batches(ds.images, ds.labels, batch_size=64, shuffle=False, binarize="dynamic", seed=0)
    (x1, y1), = list(batches)
    (x2, y2), = list(batches)
    assert set(x1.unique().tolist()) == {0.0, 1.0}
    assert torch.equal(y1, y2) and not torch.equal(x1, x2)
    assert torch.all(x1[ds.images == 0] == 0) and torch.all(x1[ds.images == 1] == 1)
    again = Batches(ds.images, ds.labels, batch_size=64, shuffle=False, binarize="dynamic", seed=0)
    assert torch.equal(next(iter(again))[0], x1)  # and reproducible from the seed


def test_from_dataset_follows_the_dataset_binarization():
    grey = load_digits("test", limit=32)
    dyn = load_digits("test", limit=32, binarize="dynamic")
    static = load_digits("test", limit=32, binarize="static")
    assert Batches.from_dataset(grey, batch_size=8).binarize is None
    assert Batches.from_dataset(dyn, batch_size=8).binarize == "dynamic"
    assert Batches.from_dataset(static, batch_size=8).binarize is None  # already binary
    xb, yb = next(iter(Batches.from_dataset(grey, batch_size=8, shuffle=False)))
    assert torch.equal(xb, grey.images[:8]) and torch.equal(yb, grey.labels[:8])


def test_matches_a_dataloader_over_the_same_permutation():
    # reference: a DataLoader over a TensorDataset, visiting the indices Batches drew
    from torch.utils.data import DataLoader, TensorDataset

    x, y = indexed(37)
    batches = Batches(x, y, batch_size=5, seed=4)
    perm = torch.randperm(37, generator=torch.Generator().manual_seed(4))
    ref = DataLoader(TensorDataset(x[perm], y[perm]), batch_size=5, shuffle=False)
    for (xa, ya), (xb, yb) in zip(batches, ref, strict=True):
        assert torch.equal(xa, xb) and torch.equal(ya, yb)


@pytest.mark.parametrize("kwargs, match", [
    ({"batch_size": 0}, "batch_size must be a positive int, got 0"),
    ({"batch_size": 2.5}, "batch_size must be a positive int"),
    ({"binarize": "static"}, "static binarization is done once at load time"),
    ({"binarize": "always"}, "binarize must be one of"),
    ({"seed": -3}, "seed must be a non-negative int"),
    ({"labels": torch.zeros(9)}, r"labels must be a tensor with 10 rows"),
    ({"batch_size": 11, "drop_last": True}, "leaves no batch at all"),
])
def test_bad_arguments_raise(kwargs, match):
    x, y = indexed(10)
    kwargs = {"labels": y, **kwargs}
    with pytest.raises(ValueError, match=match):
        Batches(x, **kwargs)


def test_bad_images_raise():
    with pytest.raises(ValueError, match=r"images must be a tensor with a batch dimension"):
        Batches([[0.0, 1.0]])
    with pytest.raises(ValueError, match=r"dynamic binarization needs images in \[0, 1\]"):
        Batches(torch.full((4, 3), 2.0), binarize="dynamic")
    with pytest.raises(ValueError, match="dataset must be a vae_core.data.Dataset"):
        Batches.from_dataset(torch.zeros(4, 1, 2, 2))
    assert isinstance(load_digits("test", limit=2), Dataset)
