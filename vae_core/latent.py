"""Walking around a latent space: interpolations, traversals, 2-D grids, and what they decode to.

Everything here works on plain tensors. Where decoding is needed, pass a model (anything with a
``.decode(z)`` method, e.g. ``vae_core.models.VAE``) or a bare ``decoder`` callable ``z -> x_params``
with ``x_params`` of shape ``(B, C, H, W)``; :func:`to_images` is the one rule that turns decoder
outputs into images in ``[0, 1]``.

Why slerp? A standard normal sample in ``D`` dimensions has norm close to ``sqrt(D)``: its squared
norm is chi-square with mean ``D`` and its norm has mean ``~ sqrt(D - 1/2)`` and standard deviation
``~ 1/sqrt(2)`` whatever ``D`` is (:func:`radius_stats` measures it). Prior samples therefore live on a
thin shell, and the straight line between two of them cuts inside it: the midpoint of two
equal-norm vectors at angle ``theta`` has norm ``r * cos(theta / 2)``, which for two typical samples
(``theta ~ 90`` degrees in high ``D``) is ``0.71 r``, a radius the prior almost never produces.
Spherical interpolation (Shoemake 1985) follows the great circle instead and keeps the norm; White
(2016, "Sampling generative networks") argues for it on exactly these grounds.
"""
from __future__ import annotations

import math
from typing import Callable, NamedTuple

import torch
from torch import Tensor, nn

from .data.dataset import check_seed

__all__ = [
    "lerp",
    "slerp",
    "interpolate",
    "traverse",
    "grid_2d",
    "to_images",
    "decode_grid",
    "path_smoothness",
    "jump_ratio",
    "chi_mean",
    "radius_stats",
    "RadiusStats",
]

LIKELIHOODS = ("bernoulli", "gaussian")


# ----------------------------------------------------------------------------- input checks
def _as_float_tensor(x, name: str) -> Tensor:
    if not isinstance(x, Tensor):
        try:
            x = torch.as_tensor(x)
        except (TypeError, ValueError, RuntimeError) as err:
            raise ValueError(
                f"{name} must be a tensor of numbers (a torch.Tensor, or a list of floats), got {type(x).__name__} "
                f"{x!r:.40}; pass e.g. torch.randn(D)"
            ) from err
    if x.is_complex():
        raise ValueError(f"{name} must hold real numbers, got dtype {x.dtype}; pass {name}.real or {name}.abs()")
    if not torch.is_floating_point(x):
        x = x.to(torch.get_default_dtype())
    return x


def _check_steps(steps) -> int:
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 2:
        raise ValueError(
            f"steps must be an int >= 2 (it counts both endpoints), got {steps!r}; use steps=10 for a typical path"
        )
    return steps


def _check_pair(z0, z1) -> tuple[Tensor, Tensor]:
    z0, z1 = _as_float_tensor(z0, "z0"), _as_float_tensor(z1, "z1")
    if z0.dim() < 1:
        raise ValueError(f"z0 must have shape (D,) or (..., D), got a scalar of shape {tuple(z0.shape)}")
    if z0.shape != z1.shape:
        raise ValueError(
            f"z1 must have the shape of z0 {tuple(z0.shape)}, got {tuple(z1.shape)}; "
            "interpolate between latents of the same dimension"
        )
    return z0, z1


def _ts(steps: int, z: Tensor) -> Tensor:
    # (steps,) -> (steps, 1, ..., 1) so it broadcasts against z of shape (..., D)
    t = torch.linspace(0.0, 1.0, steps, dtype=z.dtype, device=z.device)
    return t.view(steps, *([1] * z.dim()))


def _direction(z: Tensor) -> tuple[Tensor, Tensor]:
    """``(z / |z|, |z|)`` for ``z`` of shape ``(..., D)``, computed on ``z / max|z_i|`` so that neither
    the squares of tiny entries (float32: below ~1e-19 they underflow) nor those of huge ones overflow.
    A zero vector gives a zero direction and norm 0."""
    scale = z.abs().amax(dim=-1, keepdim=True)  # (..., 1)
    safe = torch.where(scale > 0, scale, torch.ones_like(scale))
    scaled = z / safe  # entries in [-1, 1], the largest exactly +-1
    m = scaled.norm(dim=-1, keepdim=True)  # in [1, sqrt(D)] (0 for a zero vector)
    return scaled / torch.where(m > 0, m, torch.ones_like(m)), scale * m


def _pin_endpoints(path: Tensor, z0: Tensor, z1: Tensor) -> Tensor:
    # path[0] == z0 and path[-1] == z1 bit for bit. Today's weights already give that at t = 0 and 1
    # (sin 0 = 0, sin w / sin w = 1); pinning keeps the promise if the weights ever change.
    path[0] = z0
    path[-1] = z1
    return path


# ----------------------------------------------------------------------------- interpolation
def lerp(z0: Tensor, z1: Tensor, steps: int) -> Tensor:
    """Linear interpolation ``z(t) = (1 - t) z0 + t z1`` at ``steps`` evenly spaced ``t`` in ``[0, 1]``.

    Args:
        z0, z1: ``(D,)`` latents, or ``(..., D)`` batches of pairs.
        steps: number of points including both endpoints (``>= 2``).

    Returns:
        ``(steps, D)`` (or ``(steps, ..., D)``); ``out[0]`` is exactly ``z0`` and ``out[-1]`` exactly ``z1``.
    """
    steps = _check_steps(steps)
    z0, z1 = _check_pair(z0, z1)
    t = _ts(steps, z0)
    path = (1.0 - t) * z0 + t * z1  # z(t) = (1 - t) z0 + t z1
    return _pin_endpoints(path, z0, z1)


def slerp(z0: Tensor, z1: Tensor, steps: int, parallel_eps: float = 1e-2) -> Tensor:
    """Spherical linear interpolation (Shoemake 1985), the latent path White (2016) recommends.

    ``z(t) = sin((1 - t) w) / sin(w) * z0 + sin(t w) / sin(w) * z1`` with ``cos(w) = <z0, z1> / (|z0| |z1|)``.
    For endpoints of equal norm ``r`` every point has norm ``r`` (the path is a great-circle arc); for
    unequal norms the formula is applied as is (White 2016's convention) and the norm is not
    interpolated linearly.

    Where the endpoints are (nearly) parallel or anti-parallel (``sin(w) < parallel_eps``) or one is
    zero, that pair falls back to :func:`lerp`. Why 1e-2 (about 0.6 degrees): float32 rounding leaves
    ``cos(w)`` of exactly parallel vectors a few 1e-8 short of 1, and ``acos`` turns that into
    ``w ~ 3e-4``, so a smaller threshold would miss them; for anti-parallel pairs the arc would then run
    along a great circle picked by rounding noise. Below 1e-2 rad the arc and the chord differ by
    less than ``w^2 / 8 ~ 1e-5`` of the norm, so nothing visible is lost.

    Args:
        z0, z1: ``(D,)`` latents, or ``(..., D)`` batches of pairs (each pair handled on its own).
        steps: number of points including both endpoints (``>= 2``).
        parallel_eps: fallback threshold on ``sin(w)``.

    Returns:
        ``(steps, D)`` (or ``(steps, ..., D)``); ``out[0]`` is exactly ``z0`` and ``out[-1]`` exactly ``z1``.
    """
    steps = _check_steps(steps)
    z0, z1 = _check_pair(z0, z1)
    if not parallel_eps > 0:
        raise ValueError(f"parallel_eps must be > 0, got {parallel_eps!r}")
    t = _ts(steps, z0)
    u0, n0 = _direction(z0)  # (..., D) unit vectors, (..., 1) norms
    u1, n1 = _direction(z1)
    # cos w = <z0, z1> / (|z0| |z1|) = <u0, u1>: on unit vectors, so tiny or huge norms cannot under/overflow
    cos_w = (u0 * u1).sum(-1, keepdim=True).clamp(-1.0, 1.0)
    w = torch.acos(cos_w)
    sin_w = torch.sin(w)
    fallback = (sin_w < parallel_eps) | (n0 == 0) | (n1 == 0)  # (..., 1)
    safe_sin = torch.where(fallback, torch.ones_like(sin_w), sin_w)
    # z(t) = sin((1 - t) w) / sin w * z0 + sin(t w) / sin w * z1      (Shoemake 1985)
    arc = torch.sin((1.0 - t) * w) / safe_sin * z0 + torch.sin(t * w) / safe_sin * z1
    line = (1.0 - t) * z0 + t * z1
    path = torch.where(fallback, line, arc)
    return _pin_endpoints(path, z0, z1)


def interpolate(z0: Tensor, z1: Tensor, steps: int, method: str = "slerp") -> Tensor:
    """``lerp`` or ``slerp`` by name: ``(D,)`` endpoints -> ``(steps, D)`` path."""
    if method == "slerp":
        return slerp(z0, z1, steps)
    if method == "lerp":
        return lerp(z0, z1, steps)
    raise ValueError(f"method must be 'lerp' or 'slerp', got {method!r}")


# ----------------------------------------------------------------------------- traversals and grids
def traverse(z: Tensor, dim: int, values) -> Tensor:
    """Copies of ``z`` with coordinate ``dim`` swept through ``values`` (a latent traversal).

    Args:
        z: ``(D,)`` base latent (e.g. a posterior mean, or zeros = the prior mean).
        dim: which coordinate to vary, ``0 <= dim < D``.
        values: ``(K,)`` sequence or tensor of values for ``z[dim]``.

    Returns:
        ``(K, D)``: row ``k`` equals ``z`` except ``out[k, dim] = values[k]``.
    """
    z = _as_float_tensor(z, "z")
    if z.dim() != 1:
        raise ValueError(f"z must have shape (D,), got {tuple(z.shape)}; pass one latent, e.g. mu[0]")
    d = z.shape[0]
    if isinstance(dim, bool) or not isinstance(dim, int) or not 0 <= dim < d:
        raise ValueError(f"dim must be an int in [0, {d}) for a latent of size {d}, got {dim!r}")
    values = torch.as_tensor(values, dtype=z.dtype, device=z.device)
    if values.dim() != 1 or values.numel() == 0:
        raise ValueError(f"values must be a non-empty 1-D sequence, got shape {tuple(values.shape)}")
    out = z.unsqueeze(0).repeat(values.shape[0], 1)  # (D,) -> (K, D)
    out[:, dim] = values
    return out


def _grid_axis(n: int, lim, use_prior_quantiles, quantile_range) -> Tensor:
    if isinstance(n, bool) or not isinstance(n, int) or n < 2:
        raise ValueError(f"n must be an int >= 2 (points per axis), got {n!r}")
    if use_prior_quantiles is None:
        use_prior_quantiles = lim is None  # quantiles unless a linear range was asked for
    if use_prior_quantiles:
        if lim is not None:
            raise ValueError(
                f"pass either lim={lim!r} (a linear grid on [-lim, lim]) or use_prior_quantiles=True, not both"
            )
        lo, hi = quantile_range
        if not 0.0 < lo < hi < 1.0:
            raise ValueError(f"quantile_range must satisfy 0 < lo < hi < 1, got {quantile_range!r}")
        p = torch.linspace(lo, hi, n, dtype=torch.float64)
        # z = Phi^{-1}(p): equal prior mass between neighbours (Kingma & Welling 2014, Fig. 4)
        return torch.distributions.Normal(0.0, 1.0).icdf(p).float()
    lim = 3.0 if lim is None else float(lim)
    if not lim > 0:
        raise ValueError(f"lim must be > 0, got {lim!r}")
    return torch.linspace(-lim, lim, n)


def grid_2d(
    n: int,
    lim: float | None = None,
    use_prior_quantiles: bool | None = None,
    quantile_range: tuple[float, float] = (0.05, 0.95),
) -> Tensor:
    """An ``n x n`` grid of 2-D latent points, in the order an image grid shows them.

    By default the axis values are prior quantiles ``Phi^{-1}(p)`` for ``p`` evenly spaced over
    ``quantile_range`` (Kingma & Welling 2014, Fig. 4): neighbours are equally far apart in prior
    probability. ``lim=3`` (or ``use_prior_quantiles=False``) gives a linear grid on ``[-lim, lim]``.

    Returns:
        ``(n * n, 2)``, row-major for display: point ``i * n + j`` is in image row ``i`` (top to
        bottom, second coordinate decreasing) and column ``j`` (first coordinate increasing), so
        ``image_grid(decoded, nrow=n)`` reads like a plot with the usual axes.
    """
    axis = _grid_axis(n, lim, use_prior_quantiles, quantile_range)  # (n,) increasing
    ys, xs = torch.meshgrid(axis.flip(0), axis, indexing="ij")  # (n, n) each; row i has y = axis[n-1-i]
    return torch.stack([xs.reshape(-1), ys.reshape(-1)], dim=1)  # (n*n, 2)


# ----------------------------------------------------------------------------- decoding
def _decode_fn(model) -> Callable[[Tensor], Tensor]:
    if hasattr(model, "decode") and callable(model.decode):
        return model.decode
    if callable(model):
        return model
    raise ValueError(
        f"expected a model with .decode(z) or a decoder callable z -> x_params, got {type(model).__name__}"
    )


def _latent_dim(model, latent_dim: int | None) -> int:
    if latent_dim is None:
        latent_dim = getattr(getattr(model, "config", None), "latent_dim", None)
    if latent_dim is None:
        raise ValueError("cannot tell the latent size: pass latent_dim=... (or a model with .config.latent_dim)")
    if isinstance(latent_dim, bool) or not isinstance(latent_dim, int) or latent_dim < 1:
        raise ValueError(f"latent_dim must be a positive int, got {latent_dim!r}")
    return latent_dim


def _likelihood(model, likelihood: str | None) -> str:
    if likelihood is None:
        likelihood = getattr(getattr(model, "config", None), "likelihood", "bernoulli")
    if likelihood not in LIKELIHOODS:
        raise ValueError(f"likelihood must be one of {LIKELIHOODS}, got {likelihood!r}")
    return likelihood


@torch.no_grad()
def to_images(model, z: Tensor, likelihood: str | None = None) -> Tensor:
    """Decode latents to displayable images in ``[0, 1]``: the one rule every plot and widget uses.

    ``bernoulli`` decoders return logits, shown as probabilities ``sigmoid(logits)``; ``gaussian``
    decoders return means, clamped to ``[0, 1]``. The likelihood comes from ``likelihood=``, else
    ``model.config.likelihood``, else ``"bernoulli"`` (the course default, ``VAEConfig``).
    An ``nn.Module`` is decoded in eval mode and put back in the mode it was in.

    Args:
        model: a model with ``.decode(z)``, or a decoder callable; output ``(B, C, H, W)``.
        z: ``(B, D)`` latents.

    Returns:
        ``(B, C, H, W)`` float32 on the CPU, values in ``[0, 1]``.
    """
    decode = _decode_fn(model)
    likelihood = _likelihood(model, likelihood)
    z = _as_float_tensor(z, "z")
    if z.dim() != 2:
        raise ValueError(f"z must have shape (B, D), got {tuple(z.shape)}; use z.unsqueeze(0) for one latent")
    module = model if isinstance(model, nn.Module) else getattr(decode, "__self__", None)
    was_training = isinstance(module, nn.Module) and module.training
    if isinstance(module, nn.Module):
        param = next(module.parameters(), None)
        if param is not None:
            z = z.to(device=param.device, dtype=param.dtype)
        module.eval()
    try:
        x_params = decode(z)
    finally:
        if was_training:
            module.train()
    if x_params.dim() != 4 or x_params.shape[0] != z.shape[0]:
        raise ValueError(
            f"the decoder must return (B, C, H, W) = ({z.shape[0]}, C, H, W), got {tuple(x_params.shape)}; "
            "end a flat decoder with nn.Unflatten(1, (C, H, W))"
        )
    if likelihood == "bernoulli":
        images = torch.sigmoid(x_params)  # p(x = 1 | z) = sigmoid(logits)
    else:
        images = x_params.clamp(0.0, 1.0)  # E[x | z] = mean, clipped to the pixel range
    return images.detach().float().cpu()


def decode_grid(
    model,
    n: int = 15,
    dims: tuple[int, int] = (0, 1),
    base: Tensor | None = None,
    lim: float | None = None,
    use_prior_quantiles: bool | None = None,
    latent_dim: int | None = None,
    likelihood: str | None = None,
) -> Tensor:
    """Decode a :func:`grid_2d` laid over two latent coordinates (the "learned manifold" figure).

    Every grid point is ``base`` with ``z[dims[0]]`` and ``z[dims[1]]`` replaced by the grid values.

    Args:
        model: model with ``.decode`` or a decoder callable (then pass ``latent_dim`` or ``base``).
        n: points per axis. dims: the two coordinates to vary (distinct, in ``[0, D)``).
        base: ``(D,)`` latent for the other coordinates; default zeros (the prior mean).
        lim, use_prior_quantiles: grid values, as in :func:`grid_2d`.

    Returns:
        ``(n * n, C, H, W)`` images in ``[0, 1]``, in display order for ``image_grid(..., nrow=n)``.
    """
    if base is None:
        base = torch.zeros(_latent_dim(model, latent_dim))
    base = _as_float_tensor(base, "base")
    if base.dim() != 1:
        raise ValueError(f"base must have shape (D,), got {tuple(base.shape)}")
    d = base.shape[0]
    if len(dims) != 2 or dims[0] == dims[1] or not all(isinstance(k, int) and 0 <= k < d for k in dims):
        raise ValueError(f"dims must be two distinct ints in [0, {d}) for a latent of size {d}, got {dims!r}")
    grid = grid_2d(n, lim=lim, use_prior_quantiles=use_prior_quantiles)  # (n*n, 2)
    z = base.unsqueeze(0).repeat(grid.shape[0], 1)  # (D,) -> (n*n, D)
    z[:, dims[0]] = grid[:, 0]
    z[:, dims[1]] = grid[:, 1]
    return to_images(model, z, likelihood=likelihood)


# ----------------------------------------------------------------------------- measuring paths
def path_smoothness(images: Tensor) -> Tensor:
    """Pixel distance between consecutive images along a decoded path.

    ``step[t] = || x_{t+1} - x_t ||_2`` summed over all pixels (the course's sum-over-data-dims
    convention). A smooth latent space gives even, small steps; a hole or a class boundary shows up
    as one large step (see :func:`jump_ratio`).

    Args:
        images: ``(T, C, H, W)`` (any ``(T, ...)``) with ``T >= 2``.

    Returns:
        ``(T - 1,)`` step sizes.
    """
    images = _as_float_tensor(images, "images")
    if images.dim() < 2 or images.shape[0] < 2:
        raise ValueError(
            f"images must have shape (T, ...) with T >= 2 images along the path, got {tuple(images.shape)}"
        )
    diffs = (images[1:] - images[:-1]).reshape(images.shape[0] - 1, -1)  # (T-1, C*H*W)
    return diffs.norm(dim=1)  # ||x_{t+1} - x_t||_2


def jump_ratio(steps: Tensor) -> float:
    """``max(step) / mean(step)``: 1 for a perfectly even path, large when one step is a jump.

    ``steps``: ``(T - 1,)`` from :func:`path_smoothness`. A constant path (all steps 0) has no jump: 1.0.
    """
    steps = _as_float_tensor(steps, "steps")
    if steps.dim() != 1 or steps.numel() == 0:
        raise ValueError(f"steps must be a non-empty 1-D tensor (from path_smoothness), got {tuple(steps.shape)}")
    mean = steps.mean()
    if mean == 0:
        return 1.0
    return float(steps.max() / mean)


# ----------------------------------------------------------------------------- the shell
def chi_mean(d: int) -> float:
    """Exact ``E||z||`` for ``z ~ N(0, I_d)`` (the chi distribution): ``sqrt(2) G((d+1)/2) / G(d/2)``.

    It is ``sqrt(d - 1/2)`` up to ``O(d^{-3/2})``: 1.2533 vs 1.2247 at d = 2, 4.4166 vs 4.4159 at d = 20.
    """
    if isinstance(d, bool) or not isinstance(d, int) or d < 1:
        raise ValueError(f"d must be a positive int, got {d!r}")
    return math.sqrt(2.0) * math.exp(math.lgamma((d + 1) / 2) - math.lgamma(d / 2))


class RadiusStats(NamedTuple):
    """Norms of ``n`` samples from ``N(0, I_d)``; see :func:`radius_stats`."""

    d: int
    n: int
    mean: float  # sample mean of ||z||
    std: float  # sample std of ||z|| (tends to 1/sqrt(2) = 0.707 for every large d)
    sqrt_d: float  # sqrt(d), the radius people quote
    approx_mean: float  # sqrt(d - 1/2), the large-d mean
    exact_mean: float  # chi_mean(d)


def radius_stats(d: int, n: int = 10_000, seed: int = 0) -> RadiusStats:
    """Measure how ``||z||`` concentrates for ``z ~ N(0, I_d)``: mean ``~ sqrt(d - 1/2)``, std ``~ 0.71``.

    The relative spread ``std / mean ~ 0.71 / sqrt(d)`` vanishes as ``d`` grows: prior samples sit on a
    thin shell of radius ``~ sqrt(d)``. Seeded and reproducible; the prior samples are drawn in
    float64 in chunks, so large ``d * n`` is fine.
    """
    if isinstance(d, bool) or not isinstance(d, int) or d < 1:
        raise ValueError(f"d must be a positive int, got {d!r}")
    if isinstance(n, bool) or not isinstance(n, int) or n < 2:
        raise ValueError(f"n must be an int >= 2 (samples), got {n!r}")
    check_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    chunk = max(1, 2_000_000 // d)
    norms = torch.cat(
        [torch.randn(min(chunk, n - i), d, generator=gen, dtype=torch.float64).norm(dim=1) for i in range(0, n, chunk)]
    )  # (n,)
    return RadiusStats(
        d=d,
        n=n,
        mean=float(norms.mean()),
        std=float(norms.std()),
        sqrt_d=math.sqrt(d),
        approx_mean=math.sqrt(d - 0.5),
        exact_mean=chi_mean(d),
    )
