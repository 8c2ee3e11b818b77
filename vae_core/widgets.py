"""An interactive latent-space explorer: one slider per latent coordinate, the decoded image updates live.

``latent_explorer(model)`` returns an ipywidgets box (display it as a cell's last expression). When
ipywidgets cannot be imported, when ``static=True``, or when the environment variable
``VAE_COURSE_STATIC_WIDGETS=1`` is set (for a notebook exported or viewed where no kernel can drive a
live widget), it returns a static matplotlib figure instead: a traversal grid over the same
coordinates, its title saying why it is static. Nothing is printed either way.
"""
from __future__ import annotations

import io

import numpy as np
import torch

from .config import env_flag
from .latent import _latent_dim, to_images
from .plots import traversal_grid

__all__ = ["latent_explorer", "static_widgets", "STATIC_ENV", "MAX_SLIDERS"]

STATIC_ENV = "VAE_COURSE_STATIC_WIDGETS"
MAX_SLIDERS = 8  # more sliders than this stop being explorable by hand; pick dims explicitly
_DISPLAY_PIXELS = 168  # the decoded image is upscaled (nearest neighbour) to about this many pixels


def static_widgets() -> bool:
    """True when ``VAE_COURSE_STATIC_WIDGETS`` is 1/true/yes/on (case-insensitive)."""
    return env_flag(STATIC_ENV)


def _png_bytes(image: torch.Tensor) -> bytes:
    """(C, H, W) in [0, 1] -> PNG bytes, upscaled by an integer factor with nearest neighbour."""
    import matplotlib.image

    scale = max(1, _DISPLAY_PIXELS // max(image.shape[-2:]))
    arr = image.repeat_interleave(scale, dim=-2).repeat_interleave(scale, dim=-1)  # (C, sH, sW)
    arr = arr.permute(1, 2, 0).numpy()  # (C, H, W) -> (H, W, C)
    buf = io.BytesIO()
    if arr.shape[-1] == 1:
        matplotlib.image.imsave(buf, arr[..., 0], cmap="gray", vmin=0.0, vmax=1.0, format="png")
    else:
        matplotlib.image.imsave(buf, np.clip(arr, 0.0, 1.0), format="png")
    return buf.getvalue()


def latent_explorer(
    model,
    dims=None,
    lim: float = 3.0,
    step: float = 0.1,
    z=None,
    static: bool | None = None,
    latent_dim: int | None = None,
    likelihood: str | None = None,
):
    """Sliders over latent coordinates; the decoded image follows them live.

    Args:
        model: a model with ``.decode`` (e.g. ``vae_core.models.VAE``) or a decoder callable.
        dims: which coordinates get sliders; default the first ``min(D, 8)``; at most ``MAX_SLIDERS`` (8).
        lim, step: slider range ``[-lim, lim]`` and resolution.
        z: ``(D,)`` starting latent (e.g. a posterior mean); default zeros (the prior mean). Coordinates
            without a slider stay at their value in ``z``.
        static: force the static figure (True) or the widget (False); default: widget unless
            ipywidgets is missing or ``VAE_COURSE_STATIC_WIDGETS=1``.

    Returns:
        An ``ipywidgets.VBox`` with attributes ``sliders`` (dict dim -> FloatSlider), ``image``
        (the ``ipywidgets.Image``), ``z`` (the current ``(D,)`` latent), ``last_decoded`` (the current
        ``(C, H, W)`` image in ``[0, 1]``) and ``reset()``; or, in static mode, a matplotlib ``Figure``
        with one traversal row per coordinate in ``dims``.
    """
    if z is None:
        z = torch.zeros(_latent_dim(model, latent_dim))
    z = torch.as_tensor(z, dtype=torch.float32).clone()
    if z.dim() != 1:
        raise ValueError(f"z must have shape (D,), got {tuple(z.shape)}; pass one latent, e.g. mu[0]")
    d = z.shape[0]
    dims = list(range(min(d, MAX_SLIDERS))) if dims is None else list(dims)
    if not dims or len(set(dims)) != len(dims) or not all(isinstance(k, int) and 0 <= k < d for k in dims):
        raise ValueError(f"dims must be distinct ints in [0, {d}) for a latent of size {d}, got {dims!r}")
    if len(dims) > MAX_SLIDERS:
        raise ValueError(f"at most {MAX_SLIDERS} sliders, got {len(dims)} dims; pick the ones to explore, e.g. dims=[0, 1, 2]")
    if not lim > 0 or not 0 < step <= lim:
        raise ValueError(f"need lim > 0 and 0 < step <= lim, got lim={lim!r}, step={step!r}")

    reason = None
    if static is True:
        reason = "static=True"
    elif static is None and static_widgets():
        reason = f"{STATIC_ENV}=1"
    if reason is None:
        try:
            import ipywidgets as widgets
        except ImportError:
            if static is False:
                raise
            reason = "ipywidgets not installed"
    if reason is not None:
        values = torch.linspace(-lim, lim, 7)
        return traversal_grid(
            model, z, dims=dims, values=values, likelihood=likelihood,
            title=f"Static explorer ({reason}): each row sweeps one z[d] over [-{lim:g}, {lim:g}]",
        )

    start = z.clone()
    sliders = {
        k: widgets.FloatSlider(
            value=float(z[k].clamp(-lim, lim)), min=-lim, max=lim, step=step, description=f"z[{k}]",
            continuous_update=True, readout_format=".2f",
        )
        for k in dims
    }
    image = widgets.Image(format="png")
    reset_button = widgets.Button(description="reset", tooltip="back to the starting latent")
    box = widgets.VBox([widgets.HBox([widgets.VBox(list(sliders.values())), image]), reset_button])

    def _current_z() -> torch.Tensor:
        out = start.clone()
        for k, s in sliders.items():
            out[k] = s.value
        return out

    def _redraw(_change=None) -> None:
        box.z = _current_z()
        box.last_decoded = to_images(model, box.z.unsqueeze(0), likelihood=likelihood)[0]  # (C, H, W)
        image.value = _png_bytes(box.last_decoded)

    def _reset(_button=None) -> None:
        for k, s in sliders.items():
            s.value = float(start[k].clamp(-lim, lim))  # each change redraws; the last one shows the start
        _redraw()

    for s in sliders.values():
        s.observe(_redraw, names="value")
    reset_button.on_click(_reset)
    box.sliders = sliders
    box.image = image
    box.reset = _reset
    _redraw()
    return box
