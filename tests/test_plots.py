"""Tests for vae_core.plots: every function returns a Figure with the expected axes and pixels.

Figures are checked by what they draw (the array handed to imshow, the plotted line data), not by
rendered pixels, so there are no tolerances beyond float equality. Each test closes nothing: the
functions release their figures from pyplot themselves, which test_no_figures_leak checks.
"""
from __future__ import annotations

from types import SimpleNamespace

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from torch import nn  # noqa: E402

from fakes import FakeVAE  # noqa: E402
from vae_core.latent import decode_grid, to_images, traverse  # noqa: E402
from vae_core.plots import (  # noqa: E402
    image_grid,
    interpolation_rows,
    latent_scatter,
    loss_curves,
    kl_per_dim_bars,
    density_panels,
    manifold,
    rate_distortion_plane,
    roc_curves,
    score_histograms,
    traversal_grid,
)



def _shown(ax):
    """The array an axes' single imshow displays."""
    (im,) = ax.get_images()
    return np.asarray(im.get_array())


def _history(n=4, with_test=True):
    h = {
        "epoch": list(range(1, n + 1)),
        "train_recon": [100.0 - 10 * i for i in range(n)],
        "train_kl": [5.0 + i for i in range(n)],
    }
    h["train_elbo"] = [-(r + k) for r, k in zip(h["train_recon"], h["train_kl"])]
    if with_test:
        h["test_recon"] = [r + 2 for r in h["train_recon"]]
        h["test_kl"] = [k + 0.5 for k in h["train_kl"]]
        h["test_elbo"] = [-(r + k) for r, k in zip(h["test_recon"], h["test_kl"])]
    return h


# ----------------------------------------------------------------------------- image_grid
@pytest.mark.parametrize("shape", [(6, 1, 5, 4), (6, 5, 4), (6, 3, 5, 4)], ids=["grey", "no-channel", "rgb"])
def test_image_grid_lays_images_out_row_major(shape):
    g = torch.Generator().manual_seed(0)
    images = torch.rand(shape, generator=g)
    fig = image_grid(images, nrow=4, pad=1, title="t")
    assert isinstance(fig, Figure) and len(fig.axes) == 1
    canvas = _shown(fig.axes[0])
    # 6 images, 4 per row -> 2 rows; each cell is (5 + 1) x (4 + 1) plus one outer pad
    assert canvas.shape[:2] == (2 * 6 + 1, 4 * 5 + 1)
    img = images if images.dim() == 4 else images[:, None]
    k = 5  # row 1, column 1
    top, left = 1 + 1 * 6, 1 + 1 * 5
    cell = canvas[top : top + 5, left : left + 4]
    expected = img[k].permute(1, 2, 0).numpy()
    np.testing.assert_array_equal(cell.reshape(expected.shape), expected)
    assert fig.axes[0].get_title() == "t"


def test_image_grid_default_is_square_and_draws_into_given_axes():
    fig = image_grid(torch.zeros(10, 1, 3, 3), pad=0)
    assert _shown(fig.axes[0]).shape == (3 * 3, 4 * 3)  # ceil(sqrt(10)) = 4 per row, 3 rows
    own_fig, (a, b) = plt.subplots(1, 2)
    try:
        assert image_grid(torch.ones(2, 1, 3, 3), ax=b) is own_fig
        assert len(b.get_images()) == 1 and len(a.get_images()) == 0
    finally:
        plt.close(own_fig)


def test_image_grid_refuses_logits_unless_normalized():
    logits = torch.tensor([[-3.0, 0.0], [1.0, 4.0]]).view(1, 1, 2, 2)
    with pytest.raises(ValueError, match=r"images must be in \[0, 1\].*to_images"):
        image_grid(logits)
    canvas = _shown(image_grid(logits, normalize=True, pad=0).axes[0])
    np.testing.assert_allclose(canvas, [[0.0, 3 / 7], [4 / 7, 1.0]], rtol=1e-6)


def test_image_grid_bad_inputs():
    with pytest.raises(ValueError, match=r"images must have shape \(N, 1, H, W\)"):
        image_grid(torch.zeros(2, 2, 4, 4))
    with pytest.raises(ValueError, match=r"images must have shape"):
        image_grid(torch.zeros(4, 4))
    with pytest.raises(ValueError, match="NaN or inf"):
        image_grid(torch.full((1, 1, 2, 2), float("nan")))
    with pytest.raises(ValueError, match="nrow"):
        image_grid(torch.zeros(2, 1, 2, 2), nrow=0)


# ----------------------------------------------------------------------------- loss_curves
def test_loss_curves_plots_recon_kl_and_negative_elbo_train_vs_test():
    h = _history()
    h["epoch"] = [2, 4, 6, 8]  # evaluated every second epoch: x values come from history, not 1..n
    fig = loss_curves(h)
    assert isinstance(fig, Figure) and len(fig.axes) == 3
    recon_ax, kl_ax, elbo_ax = fig.axes
    train, test = elbo_ax.get_lines()
    np.testing.assert_array_equal(train.get_ydata(), -np.array(h["train_elbo"]))  # -ELBO, a positive loss
    np.testing.assert_array_equal(test.get_ydata(), -np.array(h["test_elbo"]))
    np.testing.assert_array_equal(kl_ax.get_lines()[1].get_ydata(), h["test_kl"])
    np.testing.assert_array_equal(recon_ax.get_lines()[0].get_ydata(), h["train_recon"])
    np.testing.assert_array_equal(recon_ax.get_lines()[0].get_xdata(), h["epoch"])


def test_loss_curves_accepts_history_objects_and_skips_missing_test_epochs():
    h = _history(with_test=True)
    h["test_kl"] = [None, 6.5, None, 8.5]  # evaluated every other epoch
    obj = SimpleNamespace(as_dict=lambda: h)
    fig = loss_curves(obj)
    test_line = fig.axes[1].get_lines()[1]
    np.testing.assert_array_equal(test_line.get_xdata(), [2.0, 4.0])  # epochs 2 and 4 of 1..4
    np.testing.assert_array_equal(test_line.get_ydata(), [6.5, 8.5])
    fig = loss_curves(_history(with_test=False))
    assert [len(ax.get_lines()) for ax in fig.axes] == [1, 1, 1]


def test_loss_curves_bad_inputs():
    h = _history()
    del h["train_kl"]
    with pytest.raises(ValueError, match=r"missing \['train_kl'\]"):
        loss_curves(h)
    with pytest.raises(ValueError, match="dict of lists"):
        loss_curves([1, 2, 3])
    h = _history()
    h["test_recon"] = h["test_recon"][:-1]
    with pytest.raises(ValueError, match=r"history\['test_recon'\] has 3 entries, expected 4"):
        loss_curves(h)
    with pytest.raises(ValueError, match="empty"):
        loss_curves({"train_recon": [], "train_kl": [], "train_elbo": []})


# ----------------------------------------------------------------------------- latent_scatter
def test_latent_scatter_one_collection_per_class_with_legend():
    g = torch.Generator().manual_seed(0)
    z = torch.randn(30, 3, generator=g)
    labels = torch.arange(30) % 3
    fig = latent_scatter(z, labels, title="posterior means", dims=(2, 0))
    assert isinstance(fig, Figure) and len(fig.axes) == 1
    ax = fig.axes[0]
    assert len(ax.collections) == 3
    np.testing.assert_allclose(ax.collections[1].get_offsets(), z[labels == 1][:, [2, 0]].numpy(), rtol=1e-6)
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["0", "1", "2"]
    assert ax.get_xlabel() == "z[2]" and ax.get_title() == "posterior means"
    assert len(latent_scatter(z).axes[0].collections) == 1


def test_latent_scatter_bad_inputs():
    with pytest.raises(ValueError, match=r"z must have shape \(N, D\) with D >= 2"):
        latent_scatter(torch.zeros(5, 1))
    with pytest.raises(ValueError, match=r"labels must have shape \(5,\)"):
        latent_scatter(torch.zeros(5, 2), torch.zeros(4))
    with pytest.raises(ValueError, match=r"dims must be two distinct ints in \[0, 2\)"):
        latent_scatter(torch.zeros(5, 2), dims=(0, 2))


# ----------------------------------------------------------------------------- model figures
def test_manifold_shows_the_decoded_grid():
    model = FakeVAE(latent_dim=3)
    n = 4
    fig = manifold(model, n=n, dims=(1, 2))
    assert isinstance(fig, Figure) and len(fig.axes) == 1
    canvas = _shown(fig.axes[0])
    assert canvas.shape == (n * 8, n * 8)
    expected = decode_grid(model, n=n, dims=(1, 2))  # (n*n, 1, 8, 8)
    np.testing.assert_array_equal(canvas[8:16, 16:24], expected[1 * n + 2, 0].numpy())
    assert fig.axes[0].get_xlabel() == "z[1]" and fig.axes[0].get_ylabel() == "z[2]"
    assert fig.axes[0].get_xticklabels()[-1].get_text() == "1.64"  # Phi^{-1}(0.95)


def test_traversal_grid_one_row_per_dim():
    model = FakeVAE(latent_dim=4)
    z = torch.tensor([0.1, -0.2, 0.3, 0.0])
    values = [-2.0, 0.0, 2.0]
    fig = traversal_grid(model, z, dims=[3, 1], values=values)
    assert isinstance(fig, Figure) and len(fig.axes) == 2
    row = _shown(fig.axes[1])  # z[1] swept
    expected = to_images(model, traverse(z, 1, values))  # (3, 1, 8, 8)
    np.testing.assert_array_equal(row[1:9, 1 + 2 * 9 : 1 + 2 * 9 + 8], expected[2, 0].numpy())
    assert fig.axes[0].get_ylabel() == "z[3]"
    assert [t.get_text() for t in fig.axes[-1].get_xticklabels()] == ["-2", "0", "2"]
    np.testing.assert_array_equal(fig.axes[-1].get_xticks(), [1 + 3.5, 1 + 9 + 3.5, 1 + 18 + 3.5])  # cell centres
    assert len(traversal_grid(model).axes) == 4  # default: zeros, every dim


def test_interpolation_rows_one_axes_per_row():
    a, b = torch.rand(5, 1, 4, 4), torch.rand(5, 1, 4, 4)
    fig = interpolation_rows([a, b], labels=["lerp", "slerp"], title="paths")
    assert isinstance(fig, Figure) and len(fig.axes) == 2
    assert [ax.get_ylabel() for ax in fig.axes] == ["lerp", "slerp"]
    np.testing.assert_array_equal(_shown(fig.axes[1])[1:5, 1:5], b[0, 0].numpy())
    assert len(interpolation_rows(torch.rand(3, 5, 1, 4, 4)).axes) == 3


def test_model_figures_bad_inputs():
    with pytest.raises(ValueError, match="same number of images"):
        interpolation_rows([torch.rand(5, 1, 4, 4), torch.rand(4, 1, 4, 4)])
    with pytest.raises(ValueError, match=r"labels must have one entry per row \(2\), got 1"):
        interpolation_rows([torch.rand(5, 1, 4, 4)] * 2, labels=["x"])
    with pytest.raises(ValueError, match=r"z must have shape \(D,\)"):
        traversal_grid(FakeVAE(), torch.zeros(2, 4))
    with pytest.raises(ValueError, match=r"dim must be an int in \[0, 4\)"):
        traversal_grid(FakeVAE(), dims=[4])


def test_no_figures_leak():
    before = len(plt.get_fignums())
    for _ in range(25):  # more than matplotlib's 20-open-figures warning
        image_grid(torch.rand(4, 1, 3, 3))
        loss_curves(_history())
    assert len(plt.get_fignums()) == before


def test_rate_distortion_plane_draws_points_by_beta_and_the_elbo_line_through_beta_1():
    pts = [(4.0, 5.0, 120.0), (0.5, 30.0, 80.0), (1.0, 20.0, 90.0)]  # unsorted on purpose
    fig = rate_distortion_plane(pts)
    ax = fig.axes[0]
    path, elbo_line = ax.lines
    np.testing.assert_array_equal(path.get_xdata(), [30.0, 20.0, 5.0])  # sorted by beta: 0.5, 1, 4
    np.testing.assert_array_equal(path.get_ydata(), [80.0, 90.0, 120.0])
    x, y = elbo_line.get_xdata(), elbo_line.get_ydata()
    np.testing.assert_allclose(x + y, 110.0)  # R + D = 20 + 90 along the whole line
    assert "110.0" in elbo_line.get_label()
    assert sorted(t.get_text() for t in ax.texts) == ["β=0.5", "β=1", "β=4"]
    (scatter,) = ax.collections
    np.testing.assert_array_equal(scatter.get_offsets(), [[30.0, 80.0], [20.0, 90.0], [5.0, 120.0]])


def test_rate_distortion_plane_takes_rdpoints_and_refuses_bad_input():
    pts = [SimpleNamespace(beta=b, rate=r, distortion=d) for b, r, d in [(1.0, 2.0, 3.0), (2.0, 1.0, 4.0)]]
    assert len(rate_distortion_plane(pts, elbo_through=None).axes[0].lines) == 1
    with pytest.raises(ValueError, match="no point has beta = 3"):
        rate_distortion_plane(pts, elbo_through=3.0)
    with pytest.raises(ValueError, match="at least one"):
        rate_distortion_plane([])
    with pytest.raises(ValueError, match="finite"):
        rate_distortion_plane([(1.0, float("nan"), 2.0)])
    with pytest.raises(ValueError, match="RDPoint or a"):
        rate_distortion_plane([(1.0, 2.0)])


def test_kl_per_dim_bars_sorts_each_model_and_draws_one_bar_per_dimension():
    kl = {"a": torch.tensor([0.0, 3.0, 1.0]), "b": [2.0, 0.5, 0.25]}
    fig = kl_per_dim_bars(kl, threshold=0.5)
    ax = fig.axes[0]
    a_bars, b_bars = ax.containers
    np.testing.assert_allclose([r.get_height() for r in a_bars], [3.0, 1.0, 1e-4])  # 0 drawn at the log floor
    np.testing.assert_allclose([r.get_height() for r in b_bars], [2.0, 0.5, 0.25])
    (line,) = ax.lines
    assert list(line.get_ydata()) == [0.5, 0.5] and ax.get_yscale() == "log"
    unsorted = kl_per_dim_bars(kl, sort=False).axes[0].containers[0]
    np.testing.assert_allclose([r.get_height() for r in unsorted], [1e-4, 3.0, 1.0])
    with pytest.raises(ValueError, match="same number of latent dimensions"):
        kl_per_dim_bars({"a": [1.0, 2.0], "b": [1.0]})
    with pytest.raises(ValueError, match="non-empty dict"):
        kl_per_dim_bars({})
    with pytest.raises(ValueError, match=r"must have shape \(D,\)"):
        kl_per_dim_bars({"a": [[1.0]]})


def test_density_panels_draws_the_image_and_three_contour_levels_per_panel():
    g = torch.linspace(-3, 3, 31)
    yy, xx = torch.meshgrid(g, g, indexing="ij")
    log_p = -0.5 * (xx**2 + yy**2)                  # N(0, I) up to a constant
    log_q = -0.5 * ((xx - 1) ** 2 + yy**2) / 0.25   # a narrower blob at (1, 0)
    fig = density_panels({"a": (log_q, log_p), "b": (log_p, log_q)}, extent=3.0)
    assert len(fig.axes) == 3                        # two panels and the colour bar
    img = fig.axes[0].images[0].get_array()
    assert img.shape == (31, 31) and float(img.max()) == 0.0 and float(img.min()) == -12.0   # log scale, floored
    peak = np.unravel_index(int(np.argmax(img)), img.shape)
    assert peak == (15, 20)                          # row = y = 0, column = x = 1 (origin lower)
    levels = fig.axes[0].collections[0].levels       # contours of the second grid at 0.1%, 1%, 10% of its peak
    np.testing.assert_allclose(levels, np.log([1e-3, 1e-2, 1e-1]), atol=1e-9)
    with pytest.raises(ValueError, match="non-empty dict"):
        density_panels({}, 1.0)
    with pytest.raises(ValueError, match="extent must be a positive number"):
        density_panels({"a": (log_p, log_p)}, 0)
    with pytest.raises(ValueError, match="same shape"):
        density_panels({"a": (log_p, log_p[:3])}, 1.0)


def test_roc_curves_draws_each_curve_and_the_diagonal_and_refuses_bad_pairs():
    fig = roc_curves({"a": ([0, 0.5, 1], [0, 0.9, 1]), "b": (torch.tensor([0.0, 1.0]), torch.tensor([0.0, 1.0]))})
    (ax,) = fig.axes
    lines = ax.get_lines()
    assert [ln.get_label() for ln in lines] == ["a", "b", "chance"]
    np.testing.assert_allclose(lines[0].get_ydata(), [0, 0.9, 1])
    plt.close(fig)
    with pytest.raises(ValueError, match="non-empty dict"):
        roc_curves({})
    with pytest.raises(ValueError, match="same length"):
        roc_curves({"a": ([0, 1], [0, 0.5, 1])})
    with pytest.raises(ValueError, match="must be a pair"):
        roc_curves({"a": [0, 0.5, 1]})


def test_score_histograms_share_bins_and_are_densities():
    a, b = np.arange(100.0), np.full(10, 50.0)
    fig = score_histograms({"wide": a, "spike": torch.tensor(b)}, xlabel="NLL [nats]", bins=10)
    (ax,) = fig.axes
    wide, spike = ax.patches                          # one filled polygon per set
    assert "median 50" in ax.get_legend().get_texts()[1].get_text()
    # densities: the spike's bin has height 1 / bin width = 1 / 9.9, the uniform set about 0.1 per bin
    assert spike.get_xy()[:, 1].max() == pytest.approx(1 / 9.9)
    assert wide.get_xy()[:, 1].max() == pytest.approx(10 / (100 * 9.9))      # 10 of the 100 values per bin
    plt.close(fig)
    with pytest.raises(ValueError, match="finite numbers"):
        score_histograms({"a": [1.0, float("nan")]}, xlabel="x")
    with pytest.raises(ValueError, match="bins must be a positive int"):
        score_histograms({"a": [1.0]}, xlabel="x", bins=0)
