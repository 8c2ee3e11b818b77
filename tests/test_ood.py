"""vae_core.data.ood: the out-of-distribution sets lesson 11 scores with an MNIST model."""
from __future__ import annotations

import pytest
import torch

from vae_core.data import load_digits
from vae_core.data.ood import WHAT, lookalikes


def test_every_set_is_binary_mnist_shaped_and_described():
    sets = lookalikes(n=50, seed=0)
    assert set(sets) == set(WHAT)
    for name, x in sets.items():
        assert x.shape == (50, 1, 28, 28) and x.dtype == torch.float32, name
        assert bool(((x == 0) | (x == 1)).all()), name
    assert sets["blank"].sum() == 0
    assert 0.10 < sets["noise"].mean() < 0.16                  # p = 0.13, 39,200 pixels: sd 0.0017
    assert 0.005 < sets["sprites"].mean() < 0.1


def test_small_digits_sit_centred_in_mnists_20x20_box():
    x = lookalikes(n=30)["8x8 digits"]
    border = x.clone()
    border[:, :, 4:24, 4:24] = 0
    assert border.sum() == 0 and x[:, :, 4:24, 4:24].sum(dim=(1, 2, 3)).min() > 20   # ink only inside the box
    # the image follows its 8x8 source: nearest-neighbour upscaling (another method) agrees on most pixels
    src = load_digits("all", limit=30).images
    near = torch.nn.functional.interpolate(src, size=(20, 20), mode="nearest") > 0.5
    box = x[:, :, 4:24, 4:24].bool()
    iou = (near & box).sum(dim=(1, 2, 3)) / (near | box).sum(dim=(1, 2, 3))
    assert iou.min() > 0.6, iou.min()


def test_seeds_pick_other_sprites_and_noise_and_bad_arguments_are_refused():
    a, b, a2 = lookalikes(20, seed=0), lookalikes(20, seed=1), lookalikes(20, seed=0)
    for name in ("sprites", "noise"):
        assert torch.equal(a[name], a2[name]) and not torch.equal(a[name], b[name]), name
    assert torch.equal(a["8x8 digits"], b["8x8 digits"])
    assert lookalikes(2000)["8x8 digits"].shape[0] == 1797           # all of scikit-learn's digits
    with pytest.raises(ValueError, match="positive int"):
        lookalikes(0)
