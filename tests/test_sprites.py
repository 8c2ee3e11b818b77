"""Tests for the procedural sprites on dSprites' factor grid.

Tolerances: rendering is a binary inside test at pixel centres, so any drawn area differs
from the true area by at most the pixels the outline crosses (about the perimeter in pixels).
Where a test compares with a continuous value it allows that much and says so.
"""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from vae_core.data import (SPRITE_FACTORS, factor_values, factors_to_index, index_to_factors, load_dataset,
                           render_sprites, sample_sprites, sample_with_fixed_factor, sprite_grid)
from vae_core.data import sprites as sp

SQUARE, ELLIPSE, HEART = 0, 1, 2


def grid_row(shape=0, scale=5, orientation=0, pos_x=16, pos_y=16) -> list[int]:
    return [shape, scale, orientation, pos_x, pos_y]


def render_one(image_size=64, **kw) -> torch.Tensor:
    return render_sprites(torch.tensor([grid_row(**kw)]), image_size)[0, 0]


def centred(shape: int, scale: float, angle: float, size: int = 64) -> torch.Tensor:
    """One sprite at the canvas centre (pos 0.5, where the pixel grid is symmetric) at any angle."""
    one = lambda v: torch.tensor([v])  # noqa: E731
    return sp.render_values(one(shape), one(scale), one(angle), one(0.5), one(0.5), size)[0, 0]


def test_factor_grid_is_dsprites():
    assert SPRITE_FACTORS == {"shape": 3, "scale": 6, "orientation": 40, "posX": 32, "posY": 32}
    assert sp.N_SPRITES == 737_280
    grid = sp.factor_grid()
    np.testing.assert_allclose(grid[1].numpy(), np.linspace(0.5, 1, 6))
    np.testing.assert_allclose(grid[2].numpy(), np.linspace(0, 2 * np.pi, 40))
    np.testing.assert_allclose(grid[3].numpy(), np.linspace(0, 1, 32))
    vals = factor_values(torch.tensor([[2, 5, 39, 31, 0]]))
    torch.testing.assert_close(vals, torch.tensor([[3.0, 1.0, 2 * math.pi, 1.0, 0.0]]))


def test_index_factor_round_trip_over_the_whole_grid():
    index = torch.arange(sp.N_SPRITES)
    factors = index_to_factors(index)
    assert torch.equal(factors_to_index(factors), index)
    # independent reference: numpy's row-major unravel (last factor fastest, as dSprites)
    ref = np.stack(np.unravel_index(index.numpy(), sp.FACTOR_SIZES), axis=1)
    assert np.array_equal(factors.numpy(), ref)
    assert factors[0].tolist() == [0, 0, 0, 0, 0]
    assert factors[-1].tolist() == [2, 5, 39, 31, 31]


def test_sampling_is_deterministic_for_a_seed_and_distinct():
    a_img, a_f, a_v = sample_sprites(200, image_size=32, seed=3)
    b_img, b_f, b_v = sample_sprites(200, image_size=32, seed=3)
    c_img, c_f, _ = sample_sprites(200, image_size=32, seed=4)
    assert torch.equal(a_img, b_img) and torch.equal(a_f, b_f) and torch.equal(a_v, b_v)
    assert not torch.equal(a_f, c_f)
    assert factors_to_index(a_f).unique().numel() == 200  # a subset: without replacement
    assert torch.equal(a_img, render_sprites(a_f, 32))  # images are the factors, rendered
    torch.testing.assert_close(a_v, factor_values(a_f))


def test_images_are_binary_with_the_requested_size():
    for size in (32, 64):
        images, factors, _ = sample_sprites(50, image_size=size, seed=0)
        assert images.shape == (50, 1, size, size) and images.dtype == torch.float32
        assert set(images.unique().tolist()) == {0.0, 1.0}
        assert factors.shape == (50, 5) and factors.dtype == torch.int64
        assert (images.flatten(1).sum(1) > 0).all()  # every sprite is visible


def test_rendering_in_chunks_gives_the_same_images(monkeypatch):
    # large requests are rendered chunk by chunk; a chunk of 7 sprites must give the same pixels
    _, factors, _ = sample_sprites(50, image_size=16, seed=5)
    whole = render_sprites(factors, 16)
    monkeypatch.setattr(sp, "_CHUNK_PIXELS", 7 * 16 * 16)
    assert torch.equal(render_sprites(factors, 16), whole)
    one_by_one = torch.cat([render_sprites(factors[i:i + 1], 16) for i in range(50)])
    assert torch.equal(one_by_one, whole)


def test_bigger_scale_gives_more_pixels():
    # on average over random sprites, and strictly for each shape at the centre
    images, factors, _ = sample_sprites(3000, image_size=32, seed=1)
    area = images.flatten(1).sum(1)
    means = [area[factors[:, 1] == s].mean().item() for s in range(6)]
    assert all(a < b for a, b in zip(means, means[1:])), means
    for shape in (SQUARE, ELLIPSE, HEART):
        areas = [render_one(shape=shape, scale=s).sum().item() for s in range(6)]
        assert all(a < b for a, b in zip(areas, areas[1:])), (shape, areas)


@pytest.mark.parametrize("shape, exact", [
    (SQUARE, 4.0),  # (2 r)^2
    (ELLIPSE, math.pi * sp.ELLIPSE_AXES[0] * sp.ELLIPSE_AXES[1]),  # pi a b
])
def test_area_matches_the_geometry(shape, exact):
    # area in pixels = exact * (r0 * scale * S)^2; the outline crosses ~ perimeter pixels, so allow 10%
    r_pixels = sp.SPRITE_RADIUS * 1.0 * 64
    drawn = render_one(shape=shape, scale=5).sum().item()
    assert abs(drawn - exact * r_pixels ** 2) < 0.10 * exact * r_pixels ** 2
    # and area grows as scale^2: scale 0.5 draws about a quarter (coarser outline: 20%)
    small = render_one(shape=shape, scale=0).sum().item()
    assert abs(small / drawn - 0.25) < 0.2 * 0.25


def test_full_turn_and_symmetries():
    for shape in (SQUARE, ELLIPSE, HEART):
        # orientation index 39 is 2 pi: the same picture as index 0 (dSprites has this duplicate too)
        assert torch.equal(render_one(shape=shape, orientation=0), render_one(shape=shape, orientation=39))
    base = {s: centred(s, 1.0, 0.3) for s in (SQUARE, ELLIPSE, HEART)}
    # a square is the same after 2 pi / 4, an ellipse after 2 pi / 2: allow a few boundary pixels
    # where float rounding of the rotated coordinates flips a pixel centre lying on the outline
    assert (centred(SQUARE, 1.0, 0.3 + math.pi / 2) != base[SQUARE]).sum() <= 4
    assert (centred(ELLIPSE, 1.0, 0.3 + math.pi) != base[ELLIPSE]).sum() <= 4
    # ... but not after a smaller turn, and a heart only after a full turn
    def iou(a, b):
        return ((a * b).sum() / ((a + b) > 0).sum()).item()
    assert iou(centred(SQUARE, 1.0, 0.3 + math.pi / 4), base[SQUARE]) < 0.9
    assert iou(centred(ELLIPSE, 1.0, 0.3 + math.pi / 2), base[ELLIPSE]) < 0.6
    assert iou(centred(HEART, 1.0, 0.3 + math.pi), base[HEART]) < 0.8
    assert (centred(HEART, 1.0, 0.3 + 2 * math.pi) != base[HEART]).sum() <= 4


def test_rotation_is_counter_clockwise_on_screen():
    # an ellipse's long axis is horizontal at angle 0 and vertical (rows) at pi/2
    def extent(img):
        rows, cols = img.nonzero(as_tuple=True)
        return (cols.max() - cols.min()).item(), (rows.max() - rows.min()).item()
    w0, h0 = extent(centred(ELLIPSE, 1.0, 0.0))
    w1, h1 = extent(centred(ELLIPSE, 1.0, math.pi / 2))
    assert w0 > 1.5 * h0 and h1 > 1.5 * w1
    # the heart's point is at the bottom at angle 0; after a quarter turn counter-clockwise it points right
    heart = centred(HEART, 1.0, 0.0)
    rows, cols = heart.nonzero(as_tuple=True)
    assert rows.float().mean() < 31.5  # mass above centre: the lobes are on top, the point below
    turned = centred(HEART, 1.0, math.pi / 2)
    rows, cols = turned.nonzero(as_tuple=True)
    assert cols.float().mean() < 31.5  # lobes on the left, point to the right


def centroid(img: torch.Tensor) -> tuple[float, float]:
    rows, cols = img.nonzero(as_tuple=True)
    return cols.float().mean().item(), rows.float().mean().item()


def test_positions_move_the_centroid_monotonically():
    xs = [centroid(render_one(shape=SQUARE, pos_x=i, pos_y=10)) for i in range(32)]
    ys = [centroid(render_one(shape=SQUARE, pos_x=10, pos_y=j)) for j in range(32)]
    assert all(a[0] < b[0] for a, b in zip(xs, xs[1:]))  # posX moves right ...
    assert len({round(c[1], 6) for c in xs}) == 1  # ... and leaves the row alone
    assert all(a[1] < b[1] for a, b in zip(ys, ys[1:]))  # posY moves down ...
    assert len({round(c[0], 6) for c in ys}) == 1
    # reference: the square's centroid is its centre, lo + (hi - lo) * pos in canvas units, within 0.5 px
    lo, hi = sp.POSITION_RANGE
    for i, (cx, _) in enumerate(xs):
        expected = (lo + (hi - lo) * i / 31) * 64 - 0.5  # pixel j covers [j, j+1): its centre is j + 0.5
        assert abs(cx - expected) <= 0.5


def test_largest_sprites_stay_inside_the_canvas():
    # every shape at the largest scale, every orientation, in the four corners: nothing is clipped
    rows = [[s, 5, o, x, y] for s in range(3) for o in range(40) for x in (0, 31) for y in (0, 31)]
    for size in (32, 64):
        images = render_sprites(torch.tensor(rows), size)[:, 0]
        border = torch.cat([images[:, 0], images[:, -1], images[:, :, 0], images[:, :, -1]], dim=1)
        assert border.sum() == 0


def test_fixed_factor_sampling():
    images, factors, values = sample_with_fixed_factor("scale", 2, n=100, seed=0, image_size=32)
    assert images.shape == (100, 1, 32, 32)
    assert (factors[:, 1] == 2).all()
    torch.testing.assert_close(values[:, 1], torch.full((100,), 0.7))  # linspace(0.5, 1, 6)[2]
    for k in (0, 2, 3, 4):  # the other factors vary
        assert factors[:, k].unique().numel() > 1
    again = sample_with_fixed_factor(1, 2, n=100, seed=0, image_size=32)
    assert torch.equal(again[1], factors) and torch.equal(again[0], images)
    other = sample_with_fixed_factor("shape", 2, n=50, seed=1, image_size=32)[1]
    assert (other[:, 0] == 2).all()


def test_load_sprites_dataset():
    ds = load_dataset("sprites", n=64, image_size=32, seed=2)
    assert ds.shape == (1, 32, 32) and len(ds) == 64
    assert torch.equal(ds.labels, ds.factors[:, 0])
    assert torch.equal(ds.images, sample_sprites(64, 32, seed=2)[0])
    assert ds.subset(10).factors.shape == (10, 5)


def test_sprite_grid_is_every_point_with_the_fixed_factors_held():
    ds = sprite_grid(16, {"orientation": 0, "shape": 2, "scale": 5})
    assert len(ds) == 32 * 32 and ds.shape == (1, 16, 16)
    f = ds.factors
    assert (f[:, 0] == 2).all() and (f[:, 1] == 5).all() and (f[:, 2] == 0).all() and torch.equal(ds.labels, f[:, 0])
    assert torch.equal(factors_to_index(f), torch.sort(factors_to_index(f)).values), "grid order, last factor fastest"
    assert len(set(map(tuple, f[:, 3:].tolist()))) == 32 * 32, "every (posX, posY) once"
    assert torch.equal(ds.images, render_sprites(f, 16))
    assert len(sprite_grid(8, {"orientation": 3, "posX": 0, "posY": 31})) == 3 * 6
    by_column = sprite_grid(8, {2: 3, 3: 0, 4: 31})  # columns, as sample_with_fixed_factor accepts them
    assert len(by_column) == 3 * 6 and (by_column.factors[:, 2:] == torch.tensor([3, 0, 31])).all()


@pytest.mark.parametrize("call, match", [
    (lambda: sprite_grid(16, {"colour": 0}), "factor must be one of"),
    (lambda: sprite_grid(16, {"scale": 6}), r"fixed\['scale'\] must be an index in \[0, 5\], got 6"),
    (lambda: sprite_grid(8, dict(zip(SPRITE_FACTORS, [0] * 5))), "leave at least one to vary"),
    (lambda: render_sprites(torch.zeros(3, 4, dtype=torch.long)), r"factors must be a \(N, 5\) integer tensor"),
    (lambda: render_sprites(torch.zeros(3, 5)), "factors must hold integer indices"),
    (lambda: render_sprites(torch.tensor([[0, 6, 0, 0, 0]])), r"factor scale index must be in \[0, 5\], got 6"),
    (lambda: render_sprites(torch.tensor([[0, 0, 0, 0, 0]]), image_size=4), "image_size must be an int >= 8"),
    (lambda: index_to_factors(torch.tensor([737280])), r"index must be in \[0, 737279\]"),
    (lambda: index_to_factors(torch.tensor([0.5])), "index must be a 1-D integer tensor"),
    (lambda: sample_sprites(0), r"n must be an int in \[1, 737280\]"),
    (lambda: sample_with_fixed_factor("colour", 0, 5), "factor must be one of"),
    (lambda: sample_with_fixed_factor("orientation", 40, 5), r"orientation must be an index in \[0, 39\]"),
    (lambda: sample_with_fixed_factor(0, 1, 0), "n must be a positive int"),
    # shape indices outside 0..2 used to draw a heart
    (lambda: sp.render_values(torch.tensor([5]), *[torch.ones(1)] * 4), r"shape indices must be 0 \(square\).*got 5"),
    (lambda: sp.render_values(torch.tensor([-1]), *[torch.ones(1)] * 4), r"shape indices must be 0 .*got -1"),
    (lambda: sp.render_values(torch.tensor([1.0]), *[torch.ones(1)] * 4), r"shape must be an \(N,\) integer tensor"),
])
def test_bad_inputs_raise(call, match):
    with pytest.raises(ValueError, match=match):
        call()
