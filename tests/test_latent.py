"""Tests for vae_core.latent: interpolation, traversals, grids, decoding, path smoothness, the shell.

Tolerances (why they are what they are):
- Exact identities (endpoints, traverse, grid order) use torch.equal: the code pins them bit for bit.
- Norm identities are checked in float64 with atol 1e-12 (a few ulps of numbers of size ~5 after
  a dozen flops); the float32 variant uses rtol 1e-6 (~8 float32 ulps).
- radius concentration: n = 20000 draws of ||z||, whose std is ~1/sqrt(2), so the sample mean has
  standard error 0.707 / sqrt(20000) = 0.005. We allow 0.03 (6 standard errors) around
  sqrt(d - 1/2), whose own error against the exact chi mean is below 1e-4 for d >= 20. The sample
  std has standard error ~0.707 / sqrt(2 n) = 0.0035; we allow 0.03 around 1/sqrt(2). Seeded.
"""
from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from fakes import FakeVAE
from vae_core.latent import (
    chi_mean,
    decode_grid,
    grid_2d,
    interpolate,
    jump_ratio,
    lerp,
    path_smoothness,
    radius_stats,
    slerp,
    to_images,
    traverse,
)



def _equal_norm_pair(d=16, seed=0, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    z0 = torch.randn(d, generator=g, dtype=dtype)
    z1 = torch.randn(d, generator=g, dtype=dtype)
    z1 = z1 / z1.norm() * z0.norm()  # same radius r, generic angle
    return z0, z1


# ----------------------------------------------------------------------------- lerp / slerp
@pytest.mark.parametrize("fn", [lerp, slerp])
@pytest.mark.parametrize("shape", [(5,), (3, 5), (2, 3, 5)])
def test_endpoints_are_exact(fn, shape):
    g = torch.Generator().manual_seed(1)
    z0, z1 = torch.randn(shape, generator=g), torch.randn(shape, generator=g)
    path = fn(z0, z1, steps=9)
    assert path.shape == (9, *shape)
    assert torch.equal(path[0], z0)
    assert torch.equal(path[-1], z1)


def test_slerp_keeps_norm_lerp_midpoint_shrinks_to_cos_half_angle():
    z0, z1 = _equal_norm_pair()
    r = z0.norm()
    theta = torch.acos(z0 @ z1 / (r * r))
    s = slerp(z0, z1, steps=11)
    torch.testing.assert_close(s.norm(dim=1), r.expand(11), atol=1e-12, rtol=0)
    mid = lerp(z0, z1, steps=11)[5]  # t = 0.5
    # |(z0 + z1) / 2| = r * sqrt((1 + cos theta) / 2) = r * cos(theta / 2)
    torch.testing.assert_close(mid.norm(), r * torch.cos(theta / 2), atol=1e-12, rtol=0)
    assert mid.norm() < r - 0.1  # the shrink is real for this angle, not a rounding effect


def test_slerp_keeps_norm_in_float32():
    z0, z1 = _equal_norm_pair(d=64, seed=3, dtype=torch.float32)
    s = slerp(z0, z1, steps=7)
    torch.testing.assert_close(s.norm(dim=1), z0.norm().expand(7), rtol=1e-6, atol=0)


def test_slerp_on_orthonormal_pair_is_the_quarter_circle():
    e1, e2 = torch.eye(3, dtype=torch.float64)[:2]
    s = slerp(e1, e2, steps=5)
    t = torch.linspace(0, 1, 5, dtype=torch.float64)
    expected = torch.cos(t * math.pi / 2)[:, None] * e1 + torch.sin(t * math.pi / 2)[:, None] * e2
    torch.testing.assert_close(s, expected, atol=1e-12, rtol=0)


@pytest.mark.parametrize("d", [3, 100, 512])
@pytest.mark.parametrize("scale", [2.0, 3.0, -1.0, -0.7, 0.0], ids=["x2", "x3", "anti", "anti-0.7", "zero"])
def test_slerp_falls_back_to_lerp_when_parallel(scale, d):
    # float32 on purpose: rounding leaves cos(w) of parallel vectors just short of +-1, acos turns that
    # into w ~ 3e-4 (see slerp's docstring); several seeds so that some hit it. Without the fallback an
    # anti-parallel pair comes out off by O(1000) here.
    for seed in range(8):
        z0 = torch.randn(d, generator=torch.Generator().manual_seed(seed))
        z1 = scale * z0
        s = slerp(z0, z1, steps=6)
        assert torch.isfinite(s).all()
        torch.testing.assert_close(s, lerp(z0, z1, steps=6), atol=1e-5, rtol=0)


def test_slerp_does_not_fall_back_at_a_small_angle():
    # 0.05 rad apart (sin w = 0.05 > parallel_eps = 0.01): slerp must keep the norm, lerp shrinks it by cos(0.025)
    w = 0.05
    z0 = torch.tensor([1.0, 0.0], dtype=torch.float64)
    z1 = torch.tensor([math.cos(w), math.sin(w)], dtype=torch.float64)
    mid_s, mid_l = slerp(z0, z1, 3)[1], lerp(z0, z1, 3)[1]
    torch.testing.assert_close(mid_s.norm(), torch.tensor(1.0, dtype=torch.float64), atol=1e-12, rtol=0)
    torch.testing.assert_close(mid_l.norm(), torch.tensor(math.cos(w / 2), dtype=torch.float64), atol=1e-12, rtol=0)


def test_slerp_batch_matches_pairs_one_by_one():
    g = torch.Generator().manual_seed(2)
    z0, z1 = torch.randn(4, 6, generator=g), torch.randn(4, 6, generator=g)
    z1[2] = 3 * z0[2]  # one parallel pair in the batch must not disturb the others
    batch = slerp(z0, z1, 5)
    for i in range(4):
        torch.testing.assert_close(batch[:, i], slerp(z0[i], z1[i], 5), atol=1e-6, rtol=0)


def test_interpolate_by_name():
    z0, z1 = _equal_norm_pair()
    assert torch.equal(interpolate(z0, z1, 4, "lerp"), lerp(z0, z1, 4))
    assert torch.equal(interpolate(z0, z1, 4, "slerp"), slerp(z0, z1, 4))
    with pytest.raises(ValueError, match="'lerp' or 'slerp'"):
        interpolate(z0, z1, 4, "cubic")


@pytest.mark.parametrize("fn", [lerp, slerp])
def test_interpolation_bad_inputs(fn):
    with pytest.raises(ValueError, match="steps must be an int >= 2"):
        fn(torch.zeros(3), torch.ones(3), 1)
    with pytest.raises(ValueError, match=r"z1 must have the shape of z0 \(3,\), got \(4,\)"):
        fn(torch.zeros(3), torch.ones(4), 5)
    with pytest.raises(ValueError, match=r"z0 must be a tensor of numbers .*got str 'abc'"):
        fn("abc", torch.ones(3), 5)
    with pytest.raises(ValueError, match=r"z1 must be a tensor of numbers .*got str"):
        fn(torch.ones(3), "xyz", 5)


@pytest.mark.parametrize("scale", [1e-20, 1e-30, 1e20])
@pytest.mark.parametrize("angle", [0.0, 0.3, 1.2, 3.0])
def test_slerp_is_scale_equivariant_in_float32(scale, angle):
    """slerp(s a, s b) = s slerp(a, b): the path's shape cannot depend on the units. Before, float32
    |z0||z1| underflowed for norms ~1e-20 and parallel pairs came out ~1.4x too long."""
    a = torch.tensor([1.0, 0.0, 0.0])
    b = torch.tensor([math.cos(angle), math.sin(angle), 0.0])
    want = slerp(a, b, 7)
    got = slerp(a * scale, b * scale, 7) / scale
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-6)


# ----------------------------------------------------------------------------- the shell
@pytest.mark.parametrize("d", [20, 200])
def test_radius_concentrates_near_sqrt_d_minus_half(d):
    stats = radius_stats(d, n=20_000, seed=0)
    assert abs(stats.mean - math.sqrt(d - 0.5)) < 0.03
    assert abs(stats.std - 1 / math.sqrt(2)) < 0.03
    assert stats.approx_mean == math.sqrt(d - 0.5) and stats.sqrt_d == math.sqrt(d)


def test_radius_stats_is_seeded():
    assert radius_stats(10, n=500, seed=3) == radius_stats(10, n=500, seed=3)
    assert radius_stats(10, n=500, seed=3) != radius_stats(10, n=500, seed=4)


@pytest.mark.parametrize("d", [1, 2, 5, 20, 300])
def test_chi_mean_matches_scipy(d):
    scipy_stats = pytest.importorskip("scipy.stats")
    assert chi_mean(d) == pytest.approx(scipy_stats.chi(d).mean(), rel=1e-12)


def test_radius_bad_inputs():
    with pytest.raises(ValueError, match="d must be a positive int"):
        radius_stats(0)
    with pytest.raises(ValueError, match="n must be an int >= 2"):
        radius_stats(3, n=1)
    with pytest.raises(ValueError, match="seed must be a non-negative int, got -1"):
        radius_stats(3, seed=-1)


# ----------------------------------------------------------------------------- traverse and grids
def test_traverse_changes_only_one_dim():
    z = torch.tensor([0.5, -1.0, 2.0, 0.0])
    values = [-3.0, 0.0, 1.5]
    out = traverse(z, 2, values)
    assert out.shape == (3, 4)
    assert torch.equal(out[:, 2], torch.tensor(values))
    others = [0, 1, 3]
    assert torch.equal(out[:, others], z[others].expand(3, 3))
    assert torch.equal(z, torch.tensor([0.5, -1.0, 2.0, 0.0]))  # input untouched


def test_traverse_bad_inputs():
    with pytest.raises(ValueError, match=r"dim must be an int in \[0, 4\)"):
        traverse(torch.zeros(4), 4, [0.0])
    with pytest.raises(ValueError, match=r"dim must be an int in \[0, 4\)"):
        traverse(torch.zeros(4), -1, [0.0])
    with pytest.raises(ValueError, match=r"z must have shape \(D,\)"):
        traverse(torch.zeros(2, 4), 0, [0.0])
    with pytest.raises(ValueError, match="values must be a non-empty 1-D"):
        traverse(torch.zeros(4), 0, [])


def test_grid_2d_prior_quantiles_and_display_order():
    n = 5
    g = grid_2d(n)
    assert g.shape == (n * n, 2)
    q = torch.distributions.Normal(0.0, 1.0).icdf(torch.linspace(0.05, 0.95, n, dtype=torch.float64)).float()
    torch.testing.assert_close(q[-1], torch.tensor(1.6448536), atol=1e-6, rtol=0)  # Phi^{-1}(0.95)
    grid = g.view(n, n, 2)  # (row, col, coord)
    assert torch.equal(grid[:, :, 0], q.expand(n, n))  # first coordinate increases left to right
    assert torch.equal(grid[:, :, 1], q.flip(0)[:, None].expand(n, n))  # second decreases top to bottom


def test_grid_2d_linear():
    g = grid_2d(3, lim=2.0)
    assert torch.equal(g[:, 0], torch.tensor([-2.0, 0.0, 2.0]).repeat(3))
    assert torch.equal(g[:, 1], torch.tensor([2.0, 2.0, 2.0, 0.0, 0.0, 0.0, -2.0, -2.0, -2.0]))
    assert torch.equal(grid_2d(3, use_prior_quantiles=False), grid_2d(3, lim=3.0))


def test_grid_2d_bad_inputs():
    with pytest.raises(ValueError, match="n must be an int >= 2"):
        grid_2d(1)
    with pytest.raises(ValueError, match="not both"):
        grid_2d(4, lim=2.0, use_prior_quantiles=True)
    with pytest.raises(ValueError, match="lim must be > 0"):
        grid_2d(4, lim=-1.0)
    with pytest.raises(ValueError, match="quantile_range must satisfy"):
        grid_2d(4, quantile_range=(0.0, 0.9))


# ----------------------------------------------------------------------------- decoding
def test_to_images_bernoulli_is_sigmoid_of_logits():
    model = FakeVAE()
    z = torch.randn(3, 4, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(to_images(model, z), torch.sigmoid(model.decode(z)).detach())


def test_to_images_gaussian_clamps_means():
    model = FakeVAE(likelihood="gaussian")
    z = 5 * torch.randn(6, 4, generator=torch.Generator().manual_seed(0))
    means = model.decode(z).detach()
    assert means.min() < 0 and means.max() > 1  # the clamp has work to do
    torch.testing.assert_close(to_images(model, z), means.clamp(0, 1))


def test_to_images_accepts_a_bare_decoder_and_restores_train_mode():
    model = FakeVAE()
    z = torch.randn(2, 4, generator=torch.Generator().manual_seed(0))
    dec = nn.Sequential(nn.Linear(4, 64), nn.Dropout(0.5), nn.Unflatten(1, (1, 8, 8)))
    dec.train()
    a, b = to_images(dec, z), to_images(dec, z)
    assert torch.equal(a, b)  # decoded in eval mode: dropout off, deterministic
    assert dec.training  # and put back the way it was
    torch.testing.assert_close(to_images(model.decode, z), torch.sigmoid(model.decode(z)).detach())
    torch.testing.assert_close(to_images(model.decode, z, likelihood="gaussian"), model.decode(z).detach().clamp(0, 1))


def test_to_images_bad_inputs():
    model = FakeVAE()
    with pytest.raises(ValueError, match=r"z must have shape \(B, D\)"):
        to_images(model, torch.zeros(4))
    with pytest.raises(ValueError, match="likelihood must be one of"):
        to_images(model, torch.zeros(1, 4), likelihood="poisson")
    with pytest.raises(ValueError, match=r"nn.Unflatten"):
        to_images(nn.Linear(4, 64), torch.zeros(2, 4))
    with pytest.raises(ValueError, match="expected a model with .decode"):
        to_images(42, torch.zeros(2, 4))


def test_decode_grid_shape_and_content():
    model = FakeVAE(latent_dim=4)
    base = torch.tensor([0.3, -0.2, 0.7, 1.0])
    n = 4
    imgs = decode_grid(model, n=n, dims=(2, 0), base=base)
    assert imgs.shape == (n * n, 1, 8, 8)
    grid = grid_2d(n)
    k = 7  # row 1, column 3: the two grid values differ, so swapped coordinates would show
    assert grid[k, 0] != grid[k, 1]
    z = base.clone()
    z[2], z[0] = grid[k, 0], grid[k, 1]
    torch.testing.assert_close(imgs[k], to_images(model, z[None])[0])


def test_decode_grid_needs_a_latent_size_for_a_bare_decoder():
    dec = nn.Sequential(nn.Linear(3, 64), nn.Unflatten(1, (1, 8, 8)))
    assert decode_grid(dec, n=3, latent_dim=3, lim=2.0).shape == (9, 1, 8, 8)
    with pytest.raises(ValueError, match="pass latent_dim"):
        decode_grid(dec, n=3)
    with pytest.raises(ValueError, match=r"dims must be two distinct ints in \[0, 4\)"):
        decode_grid(FakeVAE(latent_dim=4), n=3, dims=(1, 1))
    with pytest.raises(ValueError, match=r"dims must be two distinct ints in \[0, 4\)"):
        decode_grid(FakeVAE(latent_dim=4), n=3, dims=(0, 4))


# ----------------------------------------------------------------------------- path smoothness
def test_path_smoothness_on_a_known_sequence():
    # pixel (0, 2, 3) rises by 0.1 per step, except one jump of 0.5 -> steps 0.1, 0.1, 0.5, 0.1
    levels = torch.tensor([0.0, 0.1, 0.2, 0.7, 0.8])
    images = torch.zeros(5, 1, 4, 4)
    images[:, 0, 2, 3] = levels
    steps = path_smoothness(images)
    torch.testing.assert_close(steps, torch.tensor([0.1, 0.1, 0.5, 0.1]), atol=1e-6, rtol=0)
    assert jump_ratio(steps) == pytest.approx(0.5 / 0.2, rel=1e-6)
    # L2 over pixels: moving two pixels by 0.3 each is a step of 0.3 * sqrt(2)
    two = torch.zeros(2, 1, 4, 4)
    two[1, 0, :2, 0] = 0.3
    torch.testing.assert_close(path_smoothness(two), torch.tensor([0.3 * math.sqrt(2)]), atol=1e-6, rtol=0)


def test_jump_ratio_even_and_constant_paths():
    assert jump_ratio(torch.full((7,), 0.25)) == pytest.approx(1.0)
    assert jump_ratio(torch.zeros(3)) == 1.0


def test_path_smoothness_bad_inputs():
    with pytest.raises(ValueError, match="T >= 2"):
        path_smoothness(torch.zeros(1, 1, 4, 4))
    with pytest.raises(ValueError, match="non-empty 1-D"):
        jump_ratio(torch.zeros(2, 2))
