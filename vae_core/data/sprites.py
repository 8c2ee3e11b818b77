"""Sprites with known generative factors, drawn procedurally on dSprites' factor grid.

dSprites (Matthey et al. 2017) is every combination of five factors, 737,280 binary images
of 64 x 64. We do not ship it: we render any subset on demand, deterministically, on the
same grid (index ``i`` on every factor means the same value as in dSprites)::

    factor        size  values
    shape            3  1 square, 2 ellipse, 3 heart   (dSprites' values; index 0, 1, 2)
    scale            6  linspace(0.5, 1, 6)
    orientation     40  linspace(0, 2 pi, 40)          (radians, counter-clockwise on screen;
                                                        index 0 and 39 are the same angle)
    posX            32  linspace(0, 1, 32)             (left -> right)
    posY            32  linspace(0, 1, 32)             (top -> bottom)

Rendering is vectorized: each pixel centre ``p`` is mapped into the sprite's own frame,
``q = R(-theta) (p - c) / (r0 * scale)``, and the shape's inside test ``f(q) <= 0`` is
evaluated for all pixels of a chunk of sprites at once. Images are binary (0/1 float).
The drawing is ours (dSprites' exact pixels differ), but the factor grid, order and
symmetries are the same: a square looks the same after a quarter turn, an ellipse after
half a turn, a heart only after a full one.

A flat index enumerates the grid with the last factor fastest, as dSprites does:
``index = (((shape * 6 + scale) * 40 + orientation) * 32 + posX) * 32 + posY``.
"""
from __future__ import annotations

import math
from collections.abc import Mapping

import torch
from torch import Tensor

from .dataset import Dataset, check_seed

SPRITE_FACTORS: dict[str, int] = {"shape": 3, "scale": 6, "orientation": 40, "posX": 32, "posY": 32}
FACTOR_NAMES: tuple[str, ...] = tuple(SPRITE_FACTORS)
FACTOR_SIZES: tuple[int, ...] = tuple(SPRITE_FACTORS.values())
SHAPE_NAMES: tuple[str, ...] = ("square", "ellipse", "heart")
N_SPRITES: int = math.prod(FACTOR_SIZES)  # 3 * 6 * 40 * 32 * 32 = 737,280

# Geometry in canvas units (the image is the unit square).
SPRITE_RADIUS = 0.13  # r0: half-side of the square at scale 1 (16.6 px on 64 x 64)
POSITION_RANGE = (0.2, 0.8)  # centre for pos 0 and 1: leaves room for the largest rotated sprite
ELLIPSE_AXES = (1.0, 0.5)  # semi-axes in units of r0: elongated, so its orientation is visible
HEART_SCALE = 0.85  # the heart curve spans [-1.14, 1.14] x [-1.00, 1.24]; shrink it to ~ r0
_CHUNK_PIXELS = 2 ** 22  # sprites x pixels per rendering chunk (memory stays ~ 100 MB)

_BASES = torch.tensor([math.prod(FACTOR_SIZES[k + 1:]) for k in range(5)], dtype=torch.int64)
_SIZES_T = torch.tensor(FACTOR_SIZES, dtype=torch.int64)


def factor_grid() -> list[Tensor]:
    """The value of every index of every factor (as in dSprites' ``latents_values``), a list of five 1-D tensors."""
    return [
        torch.tensor([1.0, 2.0, 3.0], dtype=torch.float64),  # shape
        torch.linspace(0.5, 1.0, 6, dtype=torch.float64),  # scale
        torch.linspace(0.0, 2 * math.pi, 40, dtype=torch.float64),  # orientation
        torch.linspace(0.0, 1.0, 32, dtype=torch.float64),  # posX
        torch.linspace(0.0, 1.0, 32, dtype=torch.float64),  # posY
    ]


def _check_factors(factors: Tensor) -> Tensor:
    if not isinstance(factors, Tensor) or factors.ndim != 2 or factors.shape[1] != 5:
        got = tuple(factors.shape) if isinstance(factors, Tensor) else type(factors).__name__
        raise ValueError(f"factors must be a (N, 5) integer tensor of indices {FACTOR_NAMES}, got {got}")
    if factors.is_floating_point() or factors.is_complex() or factors.dtype == torch.bool:
        raise ValueError(f"factors must hold integer indices, got dtype {factors.dtype}; "
                         f"use factor_values() to turn indices into values, not the reverse")
    factors = factors.to(torch.int64)
    bad = (factors < 0) | (factors >= _SIZES_T.to(factors.device))
    if bad.any():
        row, col = (int(v) for v in bad.nonzero()[0])
        raise ValueError(f"factor {FACTOR_NAMES[col]} index must be in [0, {FACTOR_SIZES[col] - 1}], "
                         f"got {int(factors[row, col])} (row {row})")
    return factors


def factors_to_index(factors: Tensor) -> Tensor:
    """Flat grid index of each row of factor indices: ``(N, 5)`` -> ``(N,)`` int64 in [0, 737280)."""
    factors = _check_factors(factors)
    return (factors * _BASES.to(factors.device)).sum(dim=1)  # index = sum_k f_k * prod(sizes[k+1:])


def index_to_factors(index: Tensor) -> Tensor:
    """Factor indices of flat grid indices: ``(N,)`` -> ``(N, 5)`` int64 (inverse of :func:`factors_to_index`)."""
    if not isinstance(index, Tensor) or index.ndim != 1 or index.is_floating_point():
        got = (f"{tuple(index.shape)} {index.dtype}" if isinstance(index, Tensor) else type(index).__name__)
        raise ValueError(f"index must be a 1-D integer tensor, got {got}")
    index = index.to(torch.int64)
    if index.numel() and (index.min() < 0 or index.max() >= N_SPRITES):
        raise ValueError(f"index must be in [0, {N_SPRITES - 1}], got values in "
                         f"[{int(index.min())}, {int(index.max())}]")
    bases, sizes = _BASES.to(index.device), _SIZES_T.to(index.device)
    return (index.unsqueeze(1) // bases) % sizes  # f_k = (index // prod(sizes[k+1:])) mod size_k


def factor_values(factors: Tensor) -> Tensor:
    """Values of factor indices (shape 1/2/3, scale, orientation in radians, posX, posY): ``(N, 5)`` -> ``(N, 5)`` float32."""
    factors = _check_factors(factors)
    grid = factor_grid()
    cols = [grid[k].to(factors.device)[factors[:, k]] for k in range(5)]
    return torch.stack(cols, dim=1).to(torch.float32)


def _inside(shape: Tensor, qx: Tensor, qy: Tensor) -> Tensor:
    """Inside test in the sprite's frame (y up, units of r0): shape ``(N, 1, 1)``, q ``(N, S, S)`` -> bool ``(N, S, S)``."""
    square = torch.maximum(qx.abs(), qy.abs()) <= 1.0  # |x|_inf <= 1
    a, b = ELLIPSE_AXES
    ellipse = (qx / a) ** 2 + (qy / b) ** 2 <= 1.0  # x^2/a^2 + y^2/b^2 <= 1
    hx, hy = qx / HEART_SCALE, qy / HEART_SCALE + 0.118  # 0.118 recentres the heart's bounding box
    heart = (hx ** 2 + hy ** 2 - 1) ** 3 - hx ** 2 * hy ** 3 <= 0.0  # (x^2 + y^2 - 1)^3 - x^2 y^3 <= 0
    return torch.where(shape == 0, square, torch.where(shape == 1, ellipse, heart))


def render_values(shape: Tensor, scale: Tensor, orientation: Tensor, pos_x: Tensor, pos_y: Tensor,
                  image_size: int = 64) -> Tensor:
    """Render sprites from continuous values (off the grid too, e.g. any angle).

    shape: ``(N,)`` int indices 0 square, 1 ellipse, 2 heart; scale, orientation (radians),
    pos_x, pos_y (in [0, 1]): ``(N,)`` floats. Returns ``(N, 1, S, S)`` float32 of 0/1.
    """
    if not isinstance(image_size, int) or isinstance(image_size, bool) or image_size < 8:
        raise ValueError(f"image_size must be an int >= 8, got {image_size!r}")
    if not isinstance(shape, Tensor) or shape.dim() != 1 or shape.is_floating_point() or shape.dtype == torch.bool:
        got = f"{shape.dtype} of shape {tuple(shape.shape)}" if isinstance(shape, Tensor) else type(shape).__name__
        raise ValueError(f"shape must be an (N,) integer tensor of shape indices, got {got}; e.g. torch.tensor([0, 2])")
    bad = shape[(shape < 0) | (shape >= len(SHAPE_NAMES))]
    if bad.numel():
        raise ValueError(f"shape indices must be 0 (square), 1 (ellipse) or 2 (heart), got {bad[0].item()}")
    n = shape.shape[0]
    for name, t in (("scale", scale), ("orientation", orientation), ("pos_x", pos_x), ("pos_y", pos_y)):
        if t.shape != (n,):
            raise ValueError(f"{name} must have shape ({n},) like shape, got {tuple(t.shape)}")
    s = image_size
    device = shape.device
    centres = (torch.arange(s, device=device, dtype=torch.float32) + 0.5) / s  # pixel centres in (0, 1)
    out = torch.empty(n, 1, s, s, device=device)
    lo, hi = POSITION_RANGE
    step = max(1, _CHUNK_PIXELS // (s * s))
    for i in range(0, n, step):
        j = min(i + step, n)
        view = lambda t: t[i:j].to(device=device, dtype=torch.float32).view(-1, 1, 1)  # noqa: E731  (n,) -> (n, 1, 1)
        cx, cy = lo + (hi - lo) * view(pos_x), lo + (hi - lo) * view(pos_y)
        theta, r = view(orientation), SPRITE_RADIUS * view(scale)
        dx = centres.view(1, 1, s) - cx  # columns: x to the right
        dy = cy - centres.view(1, s, 1)  # rows go down the screen; y points up
        cos, sin = torch.cos(theta), torch.sin(theta)
        qx = (cos * dx + sin * dy) / r  # q = R(-theta) d / r: undo the rotation, then the scale
        qy = (-sin * dx + cos * dy) / r
        out[i:j, 0] = _inside(shape[i:j].view(-1, 1, 1), qx, qy).to(torch.float32)
    return out


def render_sprites(factors: Tensor, image_size: int = 64) -> Tensor:
    """Render sprites from factor indices: ``(N, 5)`` int -> ``(N, 1, S, S)`` float32 of 0/1, ``S = image_size``."""
    factors = _check_factors(factors)
    v = factor_values(factors)
    return render_values(factors[:, 0], v[:, 1], v[:, 2], v[:, 3], v[:, 4], image_size)


def sample_factors(n: int, seed: int = 0) -> Tensor:
    """``n`` distinct grid points drawn uniformly without replacement: ``(n, 5)`` factor indices."""
    check_seed(seed)
    if not isinstance(n, int) or isinstance(n, bool) or not 0 < n <= N_SPRITES:
        raise ValueError(f"n must be an int in [1, {N_SPRITES}], got {n!r}")
    index = torch.randperm(N_SPRITES, generator=torch.Generator().manual_seed(seed))[:n]
    return index_to_factors(index)


def sample_sprites(n: int, image_size: int = 64, seed: int = 0) -> tuple[Tensor, Tensor, Tensor]:
    """A seeded random subset of the grid, rendered: ``(images (n, 1, S, S), factor indices (n, 5), factor values (n, 5))``."""
    factors = sample_factors(n, seed)
    return render_sprites(factors, image_size), factors, factor_values(factors)


def _factor_column(factor: int | str) -> int:
    if isinstance(factor, str):
        if factor not in SPRITE_FACTORS:
            raise ValueError(f"factor must be one of {FACTOR_NAMES} or an index 0-4, got {factor!r}")
        return FACTOR_NAMES.index(factor)
    if not isinstance(factor, int) or isinstance(factor, bool) or not 0 <= factor < 5:
        raise ValueError(f"factor must be one of {FACTOR_NAMES} or an index 0-4, got {factor!r}")
    return factor


def sample_with_fixed_factor(factor: int | str, value: int, n: int, seed: int = 0,
                             image_size: int = 64) -> tuple[Tensor, Tensor, Tensor]:
    """``n`` sprites sharing one factor index, the others uniform (with replacement), e.g. for the
    beta-VAE / FactorVAE disentanglement metrics (Higgins et al. 2017; Kim & Mnih 2018).

    factor: name (``"scale"``) or column 0-4; value: its index. Returns as :func:`sample_sprites`.
    """
    col = _factor_column(factor)
    check_seed(seed)
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value < FACTOR_SIZES[col]:
        raise ValueError(f"value of factor {FACTOR_NAMES[col]} must be an index in "
                         f"[0, {FACTOR_SIZES[col] - 1}], got {value!r}")
    if not isinstance(n, int) or isinstance(n, bool) or n < 1:
        raise ValueError(f"n must be a positive int, got {n!r}")
    g = torch.Generator().manual_seed(seed)
    factors = torch.stack([torch.randint(size, (n,), generator=g) for size in FACTOR_SIZES], dim=1)
    factors[:, col] = value
    return render_sprites(factors, image_size), factors, factor_values(factors)


def sprite_grid(image_size: int = 64, fixed: Mapping[str, int] | None = None) -> Dataset:
    """Every grid point whose factors in ``fixed`` sit at the given index, rendered, in grid order.

    ``sprite_grid(32, {"orientation": 0})`` is the 3 * 6 * 32 * 32 = 18,432 upright sprites of
    every shape, scale and position. Returns a :class:`~vae_core.data.Dataset` like
    :func:`load_sprites`: labels are the shape index, ``factors`` all five ``(N, 5)`` indices
    (the fixed columns constant).
    """
    by_name: dict[str, int] = {}
    for key, value in (fixed or {}).items():
        col = _factor_column(key)  # a name or a column 0-4
        if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value < FACTOR_SIZES[col]:
            raise ValueError(f"fixed[{key!r}] must be an index in [0, {FACTOR_SIZES[col] - 1}], got {value!r}")
        by_name[FACTOR_NAMES[col]] = value
    fixed = by_name
    if len(fixed) == len(FACTOR_NAMES):
        raise ValueError(f"fixed holds every factor {FACTOR_NAMES}: leave at least one to vary")
    axes = [torch.tensor([fixed[n]]) if n in fixed else torch.arange(s) for n, s in SPRITE_FACTORS.items()]
    factors = torch.cartesian_prod(*axes)  # (N, 5), the last factor fastest, as the flat index
    return Dataset(render_sprites(factors, image_size), factors[:, 0].clone(), f"sprites-grid-{image_size}", None, factors)


def load_sprites(n: int = 10_000, image_size: int = 64, seed: int = 0) -> Dataset:
    """``n`` sprites as a :class:`~vae_core.data.Dataset`: labels are the shape index, ``factors`` the ``(n, 5)`` indices."""
    images, factors, _ = sample_sprites(n, image_size, seed)
    return Dataset(images, factors[:, 0].clone(), f"sprites-{image_size}", None, factors)
