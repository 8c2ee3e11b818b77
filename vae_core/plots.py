"""Figures for the lessons. Every function returns a matplotlib ``Figure`` and never calls ``plt.show()``.

How the figures behave:

- In a notebook, make the returned figure the cell's last expression (``image_grid(x)``) or call
  ``display(fig)``; it is shown exactly once. Save it with ``fig.savefig("grid.png")``.
- Figures are created through pyplot (so Jupyter's inline backend knows how to render them) and then
  at once released from pyplot's registry with ``plt.close(fig)``: nothing piles up across a loop
  (no "More than 20 figures" warning) and the inline backend does not draw them a second time.
  Drawing into a closed figure and saving or displaying it works as usual.
- Functions that take ``ax=`` draw into your axes instead and return ``ax.figure`` untouched
  (not closed: it is yours).

Images are expected in ``[0, 1]`` (use :func:`vae_core.latent.to_images` on decoder outputs);
``normalize=True`` rescales anything else, e.g. difference images.
"""
from __future__ import annotations

import math
from typing import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from .latent import _grid_axis, decode_grid, to_images, traverse, _latent_dim

__all__ = [
    "image_grid",
    "loss_curves",
    "latent_scatter",
    "manifold",
    "traversal_grid",
    "interpolation_rows",
    "rate_distortion_plane",
    "kl_per_dim_bars",
    "density_panels",
]

_CELL_INCHES = 0.45  # display size of one image in a grid


def _figure(figsize: tuple[float, float]) -> Figure:
    fig = plt.figure(figsize=figsize, layout="constrained")
    plt.close(fig)  # released from pyplot: no leak, no double display (see module docstring)
    return fig


def _to_numpy_images(images, normalize: bool) -> np.ndarray:
    """(N, C, H, W) / (N, H, W) tensor or array -> (N, H, W, C) float array in [0, 1], C in {1, 3}."""
    if isinstance(images, torch.Tensor):
        images = images.detach().float().cpu().numpy()
    images = np.asarray(images, dtype=np.float32)
    if images.ndim == 3:
        images = images[:, None]  # (N, H, W) -> (N, 1, H, W)
    if images.ndim != 4 or images.shape[1] not in (1, 3) or images.shape[0] == 0:
        raise ValueError(
            f"images must have shape (N, 1, H, W), (N, 3, H, W) or (N, H, W) with N >= 1, got {tuple(images.shape)}"
        )
    if not np.isfinite(images).all():
        raise ValueError("images contain NaN or inf; check the decoder output (a diverged model?)")
    if normalize:
        lo, hi = images.min(), images.max()
        images = (images - lo) / (hi - lo) if hi > lo else np.zeros_like(images)
    elif images.min() < -1e-6 or images.max() > 1 + 1e-6:
        raise ValueError(
            f"images must be in [0, 1], got values in [{images.min():.3g}, {images.max():.3g}]; decoder logits? "
            "use vae_core.latent.to_images(model, z) (sigmoid / clamp), or pass normalize=True"
        )
    return np.clip(images, 0.0, 1.0).transpose(0, 2, 3, 1)  # (N, C, H, W) -> (N, H, W, C)


def _mosaic(images: np.ndarray, ncol: int, pad: int, pad_value: float) -> np.ndarray:
    """(N, H, W, C) -> one (rows*(H+pad)+pad, ncol*(W+pad)+pad, C) canvas, row-major, padded."""
    n, h, w, c = images.shape
    rows = math.ceil(n / ncol)
    canvas = np.full((rows * (h + pad) + pad, ncol * (w + pad) + pad, c), pad_value, dtype=np.float32)
    for k in range(n):
        i, j = divmod(k, ncol)
        top, left = pad + i * (h + pad), pad + j * (w + pad)
        canvas[top : top + h, left : left + w] = images[k]
    return canvas


def _show(ax: Axes, canvas: np.ndarray) -> None:
    if canvas.shape[-1] == 1:
        ax.imshow(canvas[..., 0], cmap="gray", vmin=0.0, vmax=1.0, interpolation="nearest")
    else:
        ax.imshow(canvas, interpolation="nearest")


def image_grid(
    images,
    nrow: int | None = None,
    title: str | None = None,
    ax: Axes | None = None,
    pad: int = 1,
    pad_value: float = 0.5,
    normalize: bool = False,
) -> Figure:
    """Show a batch of images as one grid (a single ``imshow``, fast even for hundreds of images).

    Args:
        images: ``(N, 1, H, W)`` (grey), ``(N, 3, H, W)`` (RGB) or ``(N, H, W)``; tensor or array,
            values in ``[0, 1]`` (or ``normalize=True``).
        nrow: images per row, as in ``torchvision.utils.make_grid``; default ``ceil(sqrt(N))``.
        title: optional axes title. ax: draw into these axes instead of a new figure.
        pad, pad_value: separator width in pixels and its grey level.

    Returns:
        The ``Figure`` (one axes, or ``ax.figure``).
    """
    arr = _to_numpy_images(images, normalize)  # (N, H, W, C)
    n = arr.shape[0]
    if nrow is None:
        nrow = math.ceil(math.sqrt(n))
    if isinstance(nrow, bool) or not isinstance(nrow, int) or nrow < 1:
        raise ValueError(f"nrow (images per row) must be a positive int, got {nrow!r}")
    ncol = min(nrow, n)
    canvas = _mosaic(arr, ncol, pad, pad_value)
    if ax is None:
        rows = math.ceil(n / ncol)
        fig = _figure((max(1.5, ncol * _CELL_INCHES), max(1.5, rows * _CELL_INCHES + (0.3 if title else 0.0))))
        ax = fig.add_subplot()
    _show(ax, canvas)
    ax.set_axis_off()
    if title:
        ax.set_title(title)
    return ax.figure


# ----------------------------------------------------------------------------- training curves
_CURVES = (  # (panel title, history key without prefix, sign applied)
    ("reconstruction  -log p(x|z)", "recon", 1.0),
    ("KL(q(z|x) || p(z))", "kl", 1.0),
    ("-ELBO (nats)", "elbo", -1.0),
)


def _history_dict(history) -> Mapping[str, Sequence]:
    if hasattr(history, "as_dict"):
        history = history.as_dict()
    if not isinstance(history, Mapping):
        raise ValueError(
            f"history must be a History (with .as_dict()) or a dict of lists, got {type(history).__name__}"
        )
    missing = [f"train_{k}" for _, k, _ in _CURVES if f"train_{k}" not in history]
    if missing:
        raise ValueError(f"history is missing {missing}; expected keys epoch, train_recon, train_kl, train_elbo, test_*")
    return history


def _series(values) -> np.ndarray:
    """A list that may hold None (epochs without evaluation) -> float array with NaN there."""
    return np.array([np.nan if v is None else float(v) for v in values], dtype=float)


def loss_curves(history, title: str | None = None) -> Figure:
    """Reconstruction, KL and -ELBO per epoch, train vs test: three panels.

    Args:
        history: a ``vae_core.train.History`` (anything with ``.as_dict()``) or a dict of equal-length
            lists with keys ``train_recon``, ``train_kl``, ``train_elbo`` (per-example means in nats,
            ELBO = -recon - KL) and optionally ``epoch`` and ``test_recon``, ``test_kl``, ``test_elbo``
            (``None`` entries, e.g. epochs without evaluation, are skipped).

    Returns:
        A ``Figure`` with 3 axes.
    """
    h = _history_dict(history)
    n = len(h["train_recon"])
    if n == 0:
        raise ValueError("history is empty: train for at least one epoch before plotting")
    epochs = np.asarray(h["epoch"], dtype=float) if "epoch" in h else np.arange(1, n + 1, dtype=float)
    for key in [k for k in h if k.startswith(("train_", "test_")) and k[k.index("_") + 1 :] in ("recon", "kl", "elbo")]:
        if len(h[key]) != len(epochs):
            raise ValueError(f"history[{key!r}] has {len(h[key])} entries, expected {len(epochs)} (one per epoch)")
    fig = _figure((11.0, 3.2))
    axes = fig.subplots(1, 3)
    for ax, (name, key, sign) in zip(axes, _CURVES):
        for split, style in (("train", "-"), ("test", "--")):
            if f"{split}_{key}" in h:
                y = sign * _series(h[f"{split}_{key}"])
                ok = ~np.isnan(y)
                if ok.any():
                    ax.plot(epochs[ok], y[ok], style, marker="o", markersize=3, label=split)
        ax.set_title(name)
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
        ax.legend()
    axes[0].set_ylabel("nats per example")
    if title:
        fig.suptitle(title)
    return fig


# ----------------------------------------------------------------------------- latent spaces
def latent_scatter(
    z,
    labels=None,
    title: str | None = None,
    dims: tuple[int, int] = (0, 1),
    ax: Axes | None = None,
    s: float = 4.0,
) -> Figure:
    """Scatter two latent coordinates, coloured by class (a legend for up to 20 classes).

    Args:
        z: ``(N, D)`` latents (e.g. posterior means), ``D >= 2``; for ``D > 2`` choose ``dims`` or
            project first (e.g. PCA) and pass the ``(N, 2)`` projection.
        labels: ``(N,)`` integer classes, or None.
        dims: the two coordinates on the x and y axes.

    Returns:
        The ``Figure`` (one axes, or ``ax.figure``).
    """
    if isinstance(z, torch.Tensor):
        z = z.detach().float().cpu().numpy()
    z = np.asarray(z, dtype=float)
    if z.ndim != 2 or z.shape[1] < 2:
        raise ValueError(f"z must have shape (N, D) with D >= 2, got {tuple(z.shape)}; a 1-D latent needs a histogram")
    d = z.shape[1]
    if len(dims) != 2 or dims[0] == dims[1] or not all(isinstance(k, int) and 0 <= k < d for k in dims):
        raise ValueError(f"dims must be two distinct ints in [0, {d}), got {dims!r}")
    if ax is None:
        fig = _figure((5.0, 4.5))
        ax = fig.add_subplot()
    x, y = z[:, dims[0]], z[:, dims[1]]
    if labels is None:
        ax.scatter(x, y, s=s, alpha=0.6)
    else:
        if isinstance(labels, torch.Tensor):
            labels = labels.detach().cpu().numpy()
        labels = np.asarray(labels)
        if labels.shape != (z.shape[0],):
            raise ValueError(f"labels must have shape ({z.shape[0]},) to match z, got {labels.shape}")
        classes = np.unique(labels)
        if len(classes) > 20:
            raise ValueError(f"labels has {len(classes)} classes; latent_scatter draws a legend for at most 20")
        cmap = plt.get_cmap("tab10" if len(classes) <= 10 else "tab20")
        for i, c in enumerate(classes):
            m = labels == c
            ax.scatter(x[m], y[m], s=s, alpha=0.6, color=cmap(i), label=str(c))
        ax.legend(markerscale=3, fontsize="small", loc="best", title="label")
    ax.set_xlabel(f"z[{dims[0]}]")
    ax.set_ylabel(f"z[{dims[1]}]")
    ax.set_aspect("equal", adjustable="datalim")
    if title:
        ax.set_title(title)
    return ax.figure


def manifold(
    model,
    n: int = 15,
    dims: tuple[int, int] = (0, 1),
    base=None,
    lim: float | None = None,
    use_prior_quantiles: bool | None = None,
    title: str | None = None,
    latent_dim: int | None = None,
    likelihood: str | None = None,
) -> Figure:
    """The learned manifold: decode an ``n x n`` grid over two latent coordinates (Kingma & Welling 2014, Fig. 4).

    The grid is :func:`vae_core.latent.grid_2d` (prior quantiles by default, ``lim=3`` for a linear
    range); other coordinates are ``base`` (default zeros, the prior mean). Tick labels give the
    latent values: ``z[dims[0]]`` left to right, ``z[dims[1]]`` bottom to top.

    Returns:
        A ``Figure`` with 1 axes.
    """
    images = decode_grid(
        model, n=n, dims=dims, base=base, lim=lim, use_prior_quantiles=use_prior_quantiles,
        latent_dim=latent_dim, likelihood=likelihood,
    )  # (n*n, C, H, W)
    fig = image_grid(images, nrow=n, pad=0)
    ax = fig.axes[0]
    axis = _grid_axis(n, lim, use_prior_quantiles, (0.05, 0.95)).numpy()  # (n,) increasing
    h, w = images.shape[-2:]
    ticks = np.linspace(0, n - 1, min(n, 5)).round().astype(int)
    ax.set_axis_on()
    ax.set_xticks(ticks * w + (w - 1) / 2, [f"{axis[t]:.2f}" for t in ticks])
    ax.set_yticks(ticks * h + (h - 1) / 2, [f"{axis[n - 1 - t]:.2f}" for t in ticks])
    ax.set_xlabel(f"z[{dims[0]}]")
    ax.set_ylabel(f"z[{dims[1]}]")
    ax.set_title(title or "decoded latent grid")
    return fig


def traversal_grid(
    model,
    z=None,
    dims: Sequence[int] | None = None,
    values=None,
    title: str | None = None,
    latent_dim: int | None = None,
    likelihood: str | None = None,
) -> Figure:
    """Latent traversals: one row per latent coordinate, sweeping it through ``values`` from ``z``.

    Args:
        model: model with ``.decode`` or a decoder callable.
        z: ``(D,)`` base latent; default zeros (the prior mean; needs ``model.config.latent_dim`` or ``latent_dim``).
        dims: coordinates to traverse, one row each; default all ``D`` (at most 10 rows).
        values: ``(K,)`` values for the swept coordinate; default ``linspace(-3, 3, 9)``.

    Returns:
        A ``Figure`` with ``len(dims)`` axes (row ``r`` traverses ``z[dims[r]]``).
    """
    if z is None:
        z = torch.zeros(_latent_dim(model, latent_dim))
    z = torch.as_tensor(z, dtype=torch.float32)  # (D,); traverse() refuses any other shape
    if dims is None:
        dims = list(range(min(z.shape[-1], 10)))
    dims = list(dims)
    if len(dims) == 0:
        raise ValueError("dims must name at least one latent coordinate to traverse")
    values = torch.linspace(-3.0, 3.0, 9) if values is None else torch.as_tensor(values, dtype=torch.float32)
    rows = [to_images(model, traverse(z, d, values), likelihood=likelihood) for d in dims]  # each (K, C, H, W)
    k = rows[0].shape[0]
    fig = _figure((max(2.0, k * _CELL_INCHES + 0.6), len(dims) * _CELL_INCHES + 0.4 + (0.3 if title else 0.0)))
    axes = np.atleast_1d(fig.subplots(len(dims), 1, squeeze=False)[:, 0])
    for ax, d, row in zip(axes, dims, rows):
        image_grid(row, nrow=k, ax=ax, pad=1)
        ax.set_axis_on()
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_ylabel(f"z[{d}]", rotation=0, ha="right", va="center")
    w = rows[0].shape[-1]
    axes[-1].set_xticks([1 + j * (w + 1) + (w - 1) / 2 for j in range(k)], [f"{v:.2g}" for v in values.tolist()])
    axes[-1].set_xlabel("value of the swept coordinate")
    if title:
        fig.suptitle(title)
    return fig


def interpolation_rows(images_rows, labels: Sequence[str] | None = None, title: str | None = None) -> Figure:
    """Several decoded paths, one per row, each labelled (e.g. "lerp" vs "slerp", or "AE" vs "VAE").

    Args:
        images_rows: a list of ``(T, C, H, W)`` tensors (equal ``T``), or one ``(R, T, C, H, W)`` tensor.
        labels: ``R`` row labels, or None.

    Returns:
        A ``Figure`` with ``R`` axes.
    """
    rows = list(images_rows)
    if len(rows) == 0:
        raise ValueError("images_rows must hold at least one row of images")
    lengths = {int(r.shape[0]) for r in rows}
    if len(lengths) != 1:
        raise ValueError(f"every row must have the same number of images, got lengths {sorted(lengths)}")
    if labels is not None and len(labels) != len(rows):
        raise ValueError(f"labels must have one entry per row ({len(rows)}), got {len(labels)}")
    t = lengths.pop()
    fig = _figure((max(2.0, t * _CELL_INCHES + 0.8), len(rows) * _CELL_INCHES + 0.4 + (0.3 if title else 0.0)))
    axes = fig.subplots(len(rows), 1, squeeze=False)[:, 0]
    for r, (ax, row) in enumerate(zip(axes, rows)):
        image_grid(row, nrow=t, ax=ax)
        if labels is not None:
            ax.set_axis_on()
            ax.set_xticks([])
            ax.set_yticks([])
            ax.set_ylabel(str(labels[r]), rotation=0, ha="right", va="center")
    if title:
        fig.suptitle(title)
    return fig


# ----------------------------------------------------------------------------- rate and distortion
def _rd_triples(points) -> list[tuple[float, float, float]]:
    """``RDPoint``-like objects (``.beta``, ``.rate``, ``.distortion``) or ``(beta, rate, distortion)``
    tuples -> float triples sorted by beta."""
    out = []
    for p in points:
        if all(hasattr(p, a) for a in ("beta", "rate", "distortion")):
            t = (p.beta, p.rate, p.distortion)
        elif isinstance(p, (tuple, list)) and len(p) == 3:
            t = tuple(p)
        else:
            raise ValueError(f"each point must be an RDPoint or a (beta, rate, distortion) tuple, got {p!r}")
        t = tuple(float(v) for v in t)
        if not all(math.isfinite(v) for v in t):
            raise ValueError(f"beta, rate and distortion must be finite numbers, got {t}")
        out.append(t)
    if not out:
        raise ValueError("points must hold at least one (beta, rate, distortion) point")
    return sorted(out)


def rate_distortion_plane(points, elbo_through: float | None = 1.0, unit: str = "nats",
                          title: str | None = None, ax: Axes | None = None) -> Figure:
    """Models on the rate-distortion plane (Alemi et al. 2018, Fig. 1): rate R on x, distortion D on y.

    Each point is labelled with its beta and the points are joined in order of beta. Lines of
    constant ELBO are the lines ``R + D = const`` (slope -1): a dotted one passes through the point
    trained with ``beta = elbo_through`` (default 1, the ELBO's own weight), so every model above it
    has a worse ELBO and every model below a better one.

    Args:
        points: ``RDPoint``s (``vae_core.diagnostics.beta_sweep``) or ``(beta, rate, distortion)`` tuples.
        elbo_through: the beta whose point the constant-ELBO line passes through; None draws none.
        unit: axis label unit, "nats" or "bits".

    Returns:
        The ``Figure`` (one axes, or ``ax.figure``).
    """
    pts = _rd_triples(points)
    if ax is None:
        fig = _figure((5.2, 4.2))
        ax = fig.add_subplot()
    betas, rates, dists = (np.array(v) for v in zip(*pts))
    ax.plot(rates, dists, "-", color="0.6", zorder=1)
    ax.scatter(rates, dists, c=np.log10(np.maximum(betas, 1e-12)), cmap="viridis", s=40, zorder=2)
    for b, r, d in pts:
        ax.annotate(f"β={b:g}", (r, d), textcoords="offset points", xytext=(6, 4), fontsize="small")
    if elbo_through is not None:
        match = [(r, d) for b, r, d in pts if math.isclose(b, elbo_through)]
        if not match:
            raise ValueError(f"no point has beta = {elbo_through:g} for the constant-ELBO line; betas: {betas.tolist()}")
        r1, d1 = match[0]
        c = r1 + d1  # -ELBO of that model: the line R + D = c
        span = np.array([0.0, max(rates.max(), c) * 1.05])
        ax.plot(span, c - span, ":", color="k", zorder=0, label=f"R + D = {c:.1f} (ELBO of β={elbo_through:g})")
        ax.legend(fontsize="small", loc="upper right")
    pad_r, pad_d = 0.08 * (np.ptp(rates) or 1.0), 0.08 * (np.ptp(dists) or 1.0)
    ax.set_xlim(max(0.0, rates.min() - pad_r) if rates.min() >= 0 else rates.min() - pad_r, rates.max() + 3 * pad_r)
    ax.set_ylim(dists.min() - pad_d, dists.max() + pad_d)
    ax.set_xlabel(f"rate R = KL(q(z|x) || p(z))  [{unit}]")
    ax.set_ylabel(f"distortion D = -E log p(x|z)  [{unit}]")
    ax.grid(alpha=0.3)
    if title:
        ax.set_title(title)
    return ax.figure


def kl_per_dim_bars(kl: Mapping[str, object], threshold: float | None = None, sort: bool = True,
                    title: str | None = None, ax: Axes | None = None) -> Figure:
    """KL of every latent dimension for several models, side by side (one group of bars per dimension).

    Args:
        kl: ``{"model name": (D,) KL per dimension}`` (e.g. ``vae_core.diagnostics.kl_per_dim``), equal D.
        threshold: draw a horizontal line at this KL (e.g. the free-bits lambda), or None.
        sort: sort each model's dimensions from most to least KL (dimension indices are arbitrary;
            sorted bars show how many carry information).

    Returns:
        The ``Figure`` (one axes, or ``ax.figure``); a log-scaled y axis shows collapsed dimensions too.
    """
    if not isinstance(kl, Mapping) or len(kl) == 0:
        raise ValueError("kl must be a non-empty dict {model name: (D,) KL per dimension}")
    rows = {}
    for name, v in kl.items():
        a = v.detach().double().cpu().numpy() if isinstance(v, torch.Tensor) else np.asarray(v, dtype=float)
        if a.ndim != 1 or a.size == 0:
            raise ValueError(f"kl[{name!r}] must have shape (D,), got {a.shape}")
        rows[name] = np.sort(a)[::-1] if sort else a
    sizes = {a.size for a in rows.values()}
    if len(sizes) != 1:
        raise ValueError(f"every model must have the same number of latent dimensions, got {sorted(sizes)}")
    d, k = sizes.pop(), len(rows)
    if ax is None:
        fig = _figure((max(5.0, 0.35 * d * max(1, k) / 2 + 2), 3.4))
        ax = fig.add_subplot()
    width = 0.8 / k
    x = np.arange(d)
    for i, (name, a) in enumerate(rows.items()):
        ax.bar(x + (i - (k - 1) / 2) * width, np.maximum(a, 1e-4), width=width, label=name)
    if threshold is not None:
        ax.axhline(threshold, color="k", ls=":", lw=1, label=f"{threshold:g} nats")
    ax.set_yscale("log")
    ax.set_xticks(x, [str(i + 1) for i in x] if sort else [str(i) for i in x])
    ax.set_xlabel("latent dimension, sorted by KL" if sort else "latent dimension")
    ax.set_ylabel("mean KL per dimension [nats]")
    ax.legend(fontsize="small")
    ax.grid(alpha=0.3, axis="y")
    if title:
        ax.set_title(title)
    return ax.figure


def density_panels(panels: Mapping[str, tuple], extent: float, title: str | None = None, floor: float = 12.0) -> Figure:
    """Two densities on a square 2-D grid, per model: one as an image, the other as contour lines.

    Made for "the aggregate posterior against the prior" (lesson 10): the image shows where the
    encoder puts the data, the contours where the prior puts its mass; prior contours over a dark
    image are the holes.

    Args:
        panels: ``{"title": (log_image (G, G), log_contours (G, G))}``: log-densities on a ``G x G``
            grid over ``[-extent, extent]^2``, row ``i`` at ``y_i``, column ``j`` at ``x_j`` (as
            ``torch.meshgrid(ys, xs, indexing="ij")`` lays them out).
        extent: half the width of the square grid, ``> 0``.
        floor: the image shows the log-density from its peak down to ``peak - floor`` nats (black below).

    Returns:
        The ``Figure``: one axes per panel; the image as log-density relative to its peak (shared
        colour bar), contours at 10%, 1% and 0.1% of the contour density's peak.
    """
    if not isinstance(panels, Mapping) or not panels:
        raise ValueError("panels must be a non-empty dict {title: (log_image (G, G), log_contours (G, G))}")
    if isinstance(extent, bool) or not isinstance(extent, (int, float)) or not extent > 0:
        raise ValueError(f"extent must be a positive number (the grid spans [-extent, extent]^2), got {extent!r}")
    arrays = {}
    for name, pair in panels.items():
        if not (isinstance(pair, (tuple, list)) and len(pair) == 2):
            raise ValueError(f"panels[{name!r}] must be a pair (log_image, log_contours), got {type(pair).__name__}")
        a, b = (v.detach().double().cpu().numpy() if isinstance(v, torch.Tensor) else np.asarray(v, dtype=float)
                for v in pair)
        if a.ndim != 2 or a.shape[0] != a.shape[1] or b.shape != a.shape:
            raise ValueError(f"panels[{name!r}] must hold two (G, G) grids of the same shape, got {a.shape} and {b.shape}")
        arrays[name] = (a, b)
    fig = _figure((4.0 * len(arrays) + 0.8, 4.0))
    axes = fig.subplots(1, len(arrays), squeeze=False)[0]
    box = (-extent, extent, -extent, extent)
    for ax, (name, (a, b)) in zip(axes, arrays.items()):
        # the image on a log scale, from its peak down to e^-floor of it: holes show up as black, not as "dim"
        im = ax.imshow(np.maximum(a - a.max(), -floor), origin="lower", extent=box, cmap="magma",
                       vmin=-floor, vmax=0.0, interpolation="bilinear")
        g = np.linspace(-extent, extent, a.shape[0])
        levels = sorted(b.max() + np.log([1e-3, 1e-2, 1e-1]))
        ax.contour(g, g, b, levels=levels, colors="cyan", linewidths=0.8, linestyles="solid")
        ax.set(title=name, xlabel="z[0]", ylabel="z[1]", aspect="equal")
    fig.colorbar(im, ax=list(axes), shrink=0.8, label="log density - its peak [nats]")
    if title:
        fig.suptitle(title)
    return fig


def _curve_arrays(name: str, pair) -> tuple[np.ndarray, np.ndarray]:
    if not (isinstance(pair, (tuple, list)) and len(pair) == 2):
        raise ValueError(f"curves[{name!r}] must be a pair (false positive rates, true positive rates), got {type(pair).__name__}")
    a, b = (v.detach().double().cpu().numpy() if isinstance(v, torch.Tensor) else np.asarray(v, dtype=float) for v in pair)
    if a.ndim != 1 or a.shape != b.shape or a.size < 2:
        raise ValueError(f"curves[{name!r}]: fpr and tpr must be 1-D of the same length >= 2, got {a.shape} and {b.shape}")
    return a, b


def roc_curves(curves: Mapping[str, tuple], title: str | None = None, ax: Axes | None = None) -> Figure:
    """ROC curves of several scores on one pair of axes, with the chance diagonal.

    Args:
        curves: ``{"score name (AUROC ...)": (fpr (M,), tpr (M,))}``, e.g. from ``sklearn.metrics.roc_curve``.

    Returns:
        The ``Figure`` (one square axes, or ``ax.figure``).
    """
    if not isinstance(curves, Mapping) or not curves:
        raise ValueError("curves must be a non-empty dict {name: (fpr, tpr)}")
    arrays = {name: _curve_arrays(name, pair) for name, pair in curves.items()}
    if ax is None:
        fig = _figure((4.6, 4.2))
        ax = fig.add_subplot()
    for name, (fpr, tpr) in arrays.items():
        ax.plot(fpr, tpr, lw=1.5, label=name, drawstyle="steps-post")
    ax.plot([0, 1], [0, 1], color="grey", ls=":", lw=1, label="chance")
    ax.set(xlim=(0, 1), ylim=(0, 1.01), xlabel="false positive rate (normal digits flagged)",
           ylabel="true positive rate (anomalies flagged)", aspect="equal")
    ax.legend(fontsize="small", loc="best")
    ax.grid(alpha=0.3)
    if title:
        ax.set_title(title)
    return ax.figure


def score_histograms(scores: Mapping[str, object], xlabel: str, bins: int = 60, title: str | None = None,
                     ax: Axes | None = None) -> Figure:
    """Overlaid density histograms of a per-example score for several sets, on shared bins.

    Args:
        scores: ``{"set name": (N,) scores}`` (finite numbers), e.g. the NLL of test digits and of outliers.
        xlabel: what the score is, with its unit.
        bins: number of shared bins between the smallest and largest score.

    Returns:
        The ``Figure`` (one axes, or ``ax.figure``); the y axis is a density, so sets of different sizes compare.
    """
    if not isinstance(scores, Mapping) or not scores:
        raise ValueError("scores must be a non-empty dict {set name: (N,) scores}")
    arrays = {}
    for name, v in scores.items():
        a = v.detach().double().cpu().numpy() if isinstance(v, torch.Tensor) else np.asarray(v, dtype=float)
        if a.ndim != 1 or a.size == 0 or not np.isfinite(a).all():
            raise ValueError(f"scores[{name!r}] must be a non-empty 1-D array of finite numbers, got shape {a.shape}")
        arrays[name] = a
    if isinstance(bins, bool) or not isinstance(bins, int) or bins < 1:
        raise ValueError(f"bins must be a positive int, got {bins!r}")
    lo, hi = min(a.min() for a in arrays.values()), max(a.max() for a in arrays.values())
    edges = np.linspace(lo, hi if hi > lo else lo + 1.0, bins + 1)
    if ax is None:
        fig = _figure((7.0, 3.2))
        ax = fig.add_subplot()
    for name, a in arrays.items():
        ax.hist(a, bins=edges, density=True, histtype="stepfilled", alpha=0.35, label=f"{name} (median {np.median(a):.0f})")
    ax.set(xlabel=xlabel, ylabel="density")
    ax.legend(fontsize="small")
    ax.grid(alpha=0.3)
    if title:
        ax.set_title(title)
    return ax.figure
