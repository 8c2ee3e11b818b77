"""Tests for vae_core.metrics with a tiny fake model (no dependency on vae_core.models).

Every expected value here is exact (hand-computed or computed independently with NumPy /
plain torch), so comparisons use float tolerances only: rtol 1e-6 for values accumulated in
float32, the float64 defaults otherwise.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pytest
import torch
from torch import nn

from vae_core.losses import ELBOTerms
from vae_core.metrics import EVAL_BINARIZE_SEED, active_units, bits_per_dim, nll_estimate, png_bits, roc_auc


class FakeVAE(nn.Module):
    """encode / elbo / log_likelihood with known, deterministic outputs.

    mu(x) = [10 * mean(x), 0, 0.01 * x_0, mean(x) + 1]   (D = 4): dims 0 and 3 vary with x,
    dim 1 is constant and dim 2 varies by a tiny amount (variance far below 0.01).
    log_likelihood(x, k) = -sum(x) - 1/k ;  elbo(x).elbo = -sum(x) - 2.
    It records the train/eval mode and the grad mode it was called in.
    """

    def __init__(self) -> None:
        super().__init__()
        self.dummy = nn.Parameter(torch.zeros(()))
        self.calls: list[tuple[str, bool, bool, int]] = []

    def _record(self, what: str, x: torch.Tensor) -> None:
        self.calls.append((what, self.training, torch.is_grad_enabled(), x.shape[0]))

    def encode(self, x):
        self._record("encode", x)
        flat = x.flatten(1)  # (B, C, H, W) -> (B, CHW)
        m = flat.mean(1)
        mu = torch.stack([10 * m, torch.zeros_like(m), 0.01 * flat[:, 0], m + 1], dim=1) + 0 * self.dummy
        return mu, torch.zeros_like(mu)

    def log_likelihood(self, x, k=100):
        self._record("log_likelihood", x)
        return -x.flatten(1).sum(1) - 1.0 / k

    def elbo(self, x, beta=1.0, free_bits=0.0):
        self._record("elbo", x)
        e = -x.flatten(1).sum(1) - 2.0
        return ELBOTerms(recon=-e, kl=torch.zeros_like(e), elbo=e, loss=-e.mean())


@dataclass
class FakeDataset:
    images: torch.Tensor
    binarize: str | None = None


def _images(n=10, seed=0):
    return torch.rand(n, 2, 3, 2, generator=torch.Generator().manual_seed(seed))


# ----------------------------------------------------------------------------- bits_per_dim
def test_bits_per_dim_exact_values():
    assert bits_per_dim(784 * math.log(2.0), 784) == pytest.approx(1.0, rel=1e-12)
    assert bits_per_dim(100.0, 784) == pytest.approx(100.0 * math.log2(math.e) / 784, rel=1e-12)
    assert bits_per_dim(0.0, 3) == 0.0
    t = bits_per_dim(torch.tensor([math.log(2.0) * 64, 0.0], dtype=torch.float64), 64)
    torch.testing.assert_close(t, torch.tensor([1.0, 0.0], dtype=torch.float64))


@pytest.mark.parametrize("bad", [0, -3, 784.0, True, None])
def test_bits_per_dim_refuses_bad_num_dims(bad):
    with pytest.raises(ValueError, match=r"num_dims must be a positive int .* got"):
        bits_per_dim(10.0, bad)


def test_bits_per_dim_refuses_bad_nll():
    with pytest.raises(ValueError, match=r"nll_nats must be a number or a float tensor .* got str"):
        bits_per_dim("10", 784)
    with pytest.raises(ValueError, match=r"nll_nats must be a floating-point tensor, got dtype torch.int64"):
        bits_per_dim(torch.tensor([10]), 784)


# ----------------------------------------------------------------------------- active units
@pytest.mark.parametrize("batch_size", [3, 256])
def test_active_units_counts_dims_whose_mean_varies(batch_size):
    x = _images(10)
    model = FakeVAE()
    count, var = active_units(model, x, batch_size=batch_size)
    flat = x.flatten(1).double().numpy()
    ref = np.stack([10 * flat.mean(1), np.zeros(10), 0.01 * flat[:, 0], flat.mean(1) + 1], 1).var(0)  # ddof=0
    torch.testing.assert_close(var, torch.from_numpy(ref).float(), rtol=1e-5, atol=1e-9)
    assert var.shape == (4,)
    assert ref[0] > 0.01 and ref[1] == 0 and ref[2] < 0.01  # the premise of the expected count
    assert count == int((ref > 0.01).sum())
    assert count == (2 if ref[3] > 0.01 else 1)


def test_active_units_threshold_and_dataset_input():
    x = _images(10)
    _, var = active_units(FakeVAE(), x)
    # threshold between var[3] and var[0] leaves only dim 0 active; threshold 0 counts every varying dim
    mid = float((var[0] + var[3]) / 2)
    assert var[3] < var[0]
    assert active_units(FakeVAE(), FakeDataset(x), threshold=mid)[0] == 1
    assert active_units(FakeVAE(), FakeDataset(x), threshold=0.0)[0] == 3


def test_metrics_run_in_eval_mode_without_grad_and_restore_the_mode():
    model = FakeVAE()
    model.train()
    active_units(model, _images(5), batch_size=2)
    nll_estimate(model, _images(5), k=3, batch_size=2)
    assert model.calls and all(not training and not grad for _, training, grad, _ in model.calls), model.calls
    assert [b for w, _, _, b in model.calls if w == "encode"] == [2, 2, 1]  # batches of batch_size, last partial
    assert model.training  # restored
    model.eval()
    active_units(model, _images(5))
    assert not model.training


def test_active_units_refuses_bad_inputs():
    with pytest.raises(ValueError, match=r"threshold must be a number >= 0 .* got -0.1"):
        active_units(FakeVAE(), _images(), threshold=-0.1)
    with pytest.raises(ValueError, match=r"data must be a vae_core.data.Dataset \(with .images\) or a tensor .* got list"):
        active_units(FakeVAE(), [[0.0]])
    with pytest.raises(ValueError, match=r"data images must be a floating-point tensor .* got dtype torch.uint8"):
        active_units(FakeVAE(), torch.zeros(4, 1, 2, 2, dtype=torch.uint8))
    with pytest.raises(ValueError, match=r"at least 2 examples .* got 1"):
        active_units(FakeVAE(), _images(1))
    with pytest.raises(ValueError, match=r"batch_size must be a positive int .* got 0"):
        active_units(FakeVAE(), _images(), batch_size=0)


# ----------------------------------------------------------------------------- NLL estimate
def test_nll_estimate_is_the_mean_over_examples():
    x = _images(10)
    x[:5] *= 0.1  # make batches differ, so a mean of batch means would be wrong with a partial batch
    sums = x.flatten(1).double().sum(1)
    out = nll_estimate(FakeVAE(), x, k=4, batch_size=4)
    assert set(out) == {"nll_nats", "nll_se", "bits_per_dim", "elbo"}
    nll = float(sums.mean()) + 1.0 / 4  # -(-sum(x) - 1/k)
    # per-example -L_k = sum(x) + 1/k: its standard error is the sample std of sum(x) over sqrt(N)
    assert out["nll_se"] == pytest.approx(float(sums.std()) / math.sqrt(10), rel=1e-6)
    assert out["nll_nats"] == pytest.approx(nll, rel=1e-6)
    assert out["bits_per_dim"] == pytest.approx(nll / (12 * math.log(2.0)), rel=1e-6)  # D = C*H*W = 2*3*2
    assert out["elbo"] == pytest.approx(-float(sums.mean()) - 2.0, rel=1e-6)
    assert all(isinstance(v, float) for v in out.values())


def test_nll_estimate_passes_k_and_uses_a_fixed_binarization_for_dynamic_datasets():
    x = _images(8)
    ds = FakeDataset(x, binarize="dynamic")
    a = nll_estimate(FakeVAE(), ds, k=1, batch_size=3)
    b = nll_estimate(FakeVAE(), ds, k=1, batch_size=5)
    assert a == b  # the same binary images both times
    xb = torch.bernoulli(x, generator=torch.Generator().manual_seed(EVAL_BINARIZE_SEED))
    assert a["nll_nats"] == pytest.approx(float(xb.flatten(1).sum(1).mean()) + 1.0, rel=1e-6)
    assert float(x.flatten(1).sum(1).mean()) + 1.0 != pytest.approx(a["nll_nats"], rel=1e-6)  # grey values differ
    # a Dataset without dynamic binarization is used as is
    c = nll_estimate(FakeVAE(), FakeDataset(x), k=2)
    assert c["nll_nats"] == pytest.approx(float(x.flatten(1).sum(1).mean()) + 0.5, rel=1e-6)


@pytest.mark.parametrize("kw, match", [({"k": 0}, r"k must be a positive int"), ({"batch_size": -1}, r"batch_size must be a positive int")])
def test_nll_estimate_refuses_bad_arguments(kw, match):
    with pytest.raises(ValueError, match=match):
        nll_estimate(FakeVAE(), _images(), **kw)


def test_nll_estimate_refuses_a_model_returning_the_wrong_shape():
    class Bad(FakeVAE):
        def log_likelihood(self, x, k=100):
            return super().log_likelihood(x, k).mean()

    with pytest.raises(ValueError, match=r"one value per example, shape \(4,\), got \(\)"):
        nll_estimate(Bad(), _images(4), batch_size=4)


# ----------------------------------------------------------------------------- ROC AUC
def test_roc_auc_matches_hand_computed_values():
    # positives 0.35, 0.8 vs negatives 0.1, 0.4: pairs ranked right = (0.35>0.1, 0.8>0.1, 0.8>0.4) = 3 of 4
    assert roc_auc([0.1, 0.4, 0.35, 0.8], [0, 0, 1, 1]) == pytest.approx(0.75)
    assert roc_auc(torch.tensor([0.1, 0.4, 0.35, 0.8]), torch.tensor([0, 0, 1, 1])) == pytest.approx(0.75)
    assert roc_auc(np.array([3.0, 1.0]), np.array([True, False])) == 1.0
    assert roc_auc([3.0, 1.0], [0, 1]) == 0.0
    assert roc_auc([1.0, 1.0, 2.0], [0, 1, 1]) == pytest.approx(0.75)  # a tie counts half: (0.5 + 1) / 2


@pytest.mark.parametrize(
    "scores, labels, match",
    [
        ([0.1, 0.2, 0.3], [0, 1], r"1-D of the same length .* got \(3,\) and \(2,\)"),
        ([[0.1, 0.2]], [[0, 1]], r"1-D of the same length"),
        ([], [], r"empty"),
        ([0.1, float("nan")], [0, 1], r"finite real numbers"),
        ([0.1, 0.2], [0, 2], r"labels must be binary, 0 \(normal\) or 1 .* got values \[0, 2\]"),
        ([0.1, 0.2], [1, 1], r"both classes in labels, got only \[1\]"),
    ],
)
def test_roc_auc_refuses_bad_inputs(scores, labels, match):
    with pytest.raises(ValueError, match=match):
        roc_auc(scores, labels)


def test_png_bits_is_the_length_of_a_lossless_1_bit_png():
    import io

    from PIL import Image

    g = torch.Generator().manual_seed(0)
    x = (torch.rand(3, 1, 28, 28, generator=g) < 0.2).float()
    x[0] = 0.0                                         # a blank image
    bits = png_bits(x)
    assert bits.shape == (3,) and bits.dtype == torch.float32
    for img, b in zip(x, bits):                        # the file it measured decodes back to the same pixels
        buf = io.BytesIO()
        Image.fromarray(img[0].numpy().astype(bool)).save(buf, format="PNG", optimize=True)
        assert 8 * len(buf.getvalue()) == b
        back = np.asarray(Image.open(io.BytesIO(buf.getvalue())).convert("L")) > 0
        assert (back == img[0].numpy().astype(bool)).all()
    assert bits[0] < bits[1] and bits[0] < bits[2]      # noise costs more than nothing
    assert 28 * 28 < bits[1] < 2 * 28 * 28 + 1000      # 1 bit per pixel, give or take deflate and headers


def test_png_bits_refuses_grey_or_misshapen_images():
    with pytest.raises(ValueError, match="binary images"):
        png_bits(torch.full((1, 1, 4, 4), 0.5))
    with pytest.raises(ValueError, match=r"\(N, 1, H, W\)"):
        png_bits(torch.zeros(4, 4))
