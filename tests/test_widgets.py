"""Tests for vae_core.widgets.latent_explorer, headless: no kernel and no browser are needed.

ipywidgets builds widget models without a frontend (their comms go nowhere), so we can set a
slider's value from Python and check what the explorer decoded and drew. The PNG check decodes the
bytes again and reads the red channel: matplotlib's grey colormap indexes a 256-entry table with
floor(256 v), and the table is truncated to bytes (45/255 * 255 = 44.999... -> 44), so a pixel can
sit up to 2/255 from v; we allow 2/255.
"""
from __future__ import annotations

import io
import sys

import matplotlib

matplotlib.use("Agg")
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from torch import nn  # noqa: E402

from fakes import FakeVAE  # noqa: E402
from vae_core.latent import to_images  # noqa: E402
from vae_core.widgets import STATIC_ENV, latent_explorer, static_widgets  # noqa: E402

pytest.importorskip("ipywidgets")



@pytest.fixture(autouse=True)
def _live_widgets(monkeypatch):
    monkeypatch.delenv(STATIC_ENV, raising=False)  # CI may set it; these tests choose for themselves


def _decoded(model, z):
    return to_images(model, z.unsqueeze(0))[0]


def test_explorer_starts_at_z_and_draws_it():
    model = FakeVAE(latent_dim=4)
    z = torch.tensor([0.5, -1.0, 0.25, 2.0])
    box = latent_explorer(model, z=z)
    assert type(box).__name__ == "VBox"
    assert sorted(box.sliders) == [0, 1, 2, 3]
    assert box.sliders[1].value == -1.0 and box.sliders[1].min == -3.0 and box.sliders[1].step == 0.1
    assert torch.equal(box.z, z)
    torch.testing.assert_close(box.last_decoded, _decoded(model, z))
    assert box.image.value[:8] == b"\x89PNG\r\n\x1a\n"


def test_moving_a_slider_redecodes_and_redraws():
    model = FakeVAE(latent_dim=4)
    box = latent_explorer(model)
    png_before, img_before = box.image.value, box.last_decoded.clone()
    box.sliders[2].value = 1.5
    expected_z = torch.tensor([0.0, 0.0, 1.5, 0.0])
    assert torch.equal(box.z, expected_z)
    torch.testing.assert_close(box.last_decoded, _decoded(model, expected_z))
    assert not torch.equal(box.last_decoded, img_before)
    assert box.image.value != png_before
    box.reset()
    assert box.sliders[2].value == 0.0
    torch.testing.assert_close(box.last_decoded, img_before)


def test_png_shows_the_decoded_image_upscaled():
    from PIL import Image

    model = FakeVAE(latent_dim=3)
    box = latent_explorer(model, z=torch.tensor([1.0, -2.0, 0.5]))
    rgba = np.asarray(Image.open(io.BytesIO(box.image.value)), dtype=np.float64) / 255  # (H, W, 4)
    png = rgba[..., 0]
    assert png.shape == (8 * 21, 8 * 21)  # 168 // 8 = 21 times nearest-neighbour upscaling
    img = box.last_decoded[0].numpy().astype(np.float64)  # (8, 8)
    np.testing.assert_allclose(png[::21, ::21], img, atol=2 / 255 + 1e-9, rtol=0)
    np.testing.assert_array_equal(png[20::21, 20::21], png[::21, ::21])  # each pixel is a 21x21 block


def test_sliders_are_capped_and_other_coordinates_stay_put():
    model = FakeVAE(latent_dim=20)
    box = latent_explorer(model)
    assert sorted(box.sliders) == list(range(8))
    z = torch.arange(20, dtype=torch.float32) / 10
    box = latent_explorer(model, dims=[15, 3], z=z)
    assert sorted(box.sliders) == [3, 15]
    box.sliders[15].value = -2.0
    expected = z.clone()
    expected[15] = -2.0
    assert torch.equal(box.z, expected)
    torch.testing.assert_close(box.last_decoded, _decoded(model, expected))


def test_explorer_bad_inputs():
    model = FakeVAE(latent_dim=10)
    with pytest.raises(ValueError, match="at most 8 sliders, got 9 dims"):
        latent_explorer(model, dims=list(range(9)))
    with pytest.raises(ValueError, match=r"dims must be distinct ints in \[0, 10\)"):
        latent_explorer(model, dims=[10])
    with pytest.raises(ValueError, match=r"dims must be distinct ints"):
        latent_explorer(model, dims=[1, 1])
    with pytest.raises(ValueError, match=r"z must have shape \(D,\)"):
        latent_explorer(model, z=torch.zeros(1, 10))
    with pytest.raises(ValueError, match="need lim > 0 and 0 < step <= lim"):
        latent_explorer(model, step=0.0)
    with pytest.raises(ValueError, match="pass latent_dim"):
        latent_explorer(nn.Sequential(nn.Linear(2, 64), nn.Unflatten(1, (1, 8, 8))))


# ----------------------------------------------------------------------------- static fallback
def test_static_flag_gives_a_traversal_figure():
    fig = latent_explorer(FakeVAE(latent_dim=4), dims=[0, 2], static=True)
    assert isinstance(fig, Figure) and len(fig.axes) == 2
    assert "static=True" in fig.get_suptitle()


def test_env_var_gives_the_static_figure(monkeypatch):
    monkeypatch.setenv(STATIC_ENV, "1")
    assert static_widgets()
    fig = latent_explorer(FakeVAE(latent_dim=3))
    assert isinstance(fig, Figure) and len(fig.axes) == 3
    assert f"{STATIC_ENV}=1" in fig.get_suptitle()
    assert type(latent_explorer(FakeVAE(latent_dim=3), static=False)).__name__ == "VBox"  # explicit wins
    monkeypatch.setenv(STATIC_ENV, "maybe")
    with pytest.raises(ValueError, match=f"{STATIC_ENV} must be one of"):
        latent_explorer(FakeVAE(latent_dim=3))


def test_missing_ipywidgets_gives_the_static_figure(monkeypatch):
    monkeypatch.setitem(sys.modules, "ipywidgets", None)  # makes `import ipywidgets` raise ImportError
    fig = latent_explorer(FakeVAE(latent_dim=2))
    assert isinstance(fig, Figure) and "ipywidgets not installed" in fig.get_suptitle()
    with pytest.raises(ImportError):
        latent_explorer(FakeVAE(latent_dim=2), static=False)
