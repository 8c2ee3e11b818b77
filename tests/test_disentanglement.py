"""Tests for vae_core.disentanglement (MIG, Chen et al. 2018).

Exact values where they exist (hand-made labels whose entropies and mutual informations are
logs of small integers); independent references otherwise: ``sklearn.metrics.mutual_info_score``
and a plug-in estimate written here from a NumPy contingency table, and disentanglement_lib's
own discretisation formula ``np.digitize(z, np.histogram(z, n)[1][:-1])``.

Statistical tests, all seeded, with N = 10,000 examples of factors with 10 values and 20 bins.
The plug-in MI of two independent variables is biased upwards by about
``(20 - 1)(10 - 1) / (2N) = 0.0086`` nats (Miller 1955), i.e. 0.0037 of ``H(v) = log 10``, so:

* a code that copies each factor into a latent of its own: MIG = 1 - (noise MI of the runner-up)
  / H >= 1 - 3 * 0.0037; we ask for > 0.99 (measured 0.998);
* pure noise independent of the factors: each gap is a difference of two bias-sized values;
  we ask for < 0.02 (measured 0.0004 with seed 0, about 5x the bias as margin);
* a random rotation of 20 standardised factors: latent j holds a fraction R_jk^2 of factor k
  (mean 1/20), so the best and second-best latents differ by O(1/K) of the information: measured
  0.015-0.030 over five seeds; we ask for < 0.1, while an unrotated code scores 0.998.
"""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from sklearn.metrics import mutual_info_score
from torch import nn

from vae_core.data import load_sprites
from vae_core.data.sprites import FACTOR_NAMES
from vae_core.disentanglement import (
    FactorRow,
    MIGReport,
    discrete_entropy,
    discretize,
    encode_sprites,
    mig,
    mig_report,
    mutual_info_matrix,
    normalized_gap,
)

LOG2, LOG3, LOG4 = math.log(2.0), math.log(3.0), math.log(4.0)


def _factors(n=10_000, k=5, levels=10, seed=0) -> torch.Tensor:
    return torch.randint(levels, (n, k), generator=torch.Generator().manual_seed(seed))


def _plugin_mi(a: np.ndarray, b: np.ndarray) -> float:
    """Independent plug-in MI in nats from a NumPy contingency table."""
    _, ai = np.unique(a, return_inverse=True)
    _, bi = np.unique(b, return_inverse=True)
    table = np.zeros((ai.max() + 1, bi.max() + 1))
    np.add.at(table, (ai, bi), 1.0)
    p = table / table.sum()
    pa, pb = p.sum(1, keepdims=True), p.sum(0, keepdims=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        return float(np.nansum(p * np.log(p / (pa * pb))))


# ----------------------------------------------------------------------------- discretize
def test_discretize_matches_disentanglement_libs_histogram_binning():
    rng = np.random.default_rng(0)
    codes = np.stack([rng.normal(size=1000), rng.exponential(size=1000), rng.uniform(-3, 7, size=1000)], 1)
    got = discretize(torch.from_numpy(codes), n_bins=20)
    assert got.shape == (1000, 3) and got.dtype == torch.int64
    assert torch.equal(discretize(codes), got)  # 20 bins by default, as disentanglement_lib
    for j in range(3):
        ref = np.digitize(codes[:, j], np.histogram(codes[:, j], 20)[1][:-1]) - 1  # disentanglement_lib, 0-based
        np.testing.assert_array_equal(got[:, j].numpy(), ref)
        np.testing.assert_array_equal(np.bincount(got[:, j].numpy(), minlength=20), np.histogram(codes[:, j], 20)[0])
        assert got[:, j].min() == 0 and got[:, j].max() == 19  # min in the first bin, max in the last


def test_discretize_exact_small_cases():
    # two bins over [0, 4]: edge at 2, left-closed, the maximum in the last bin
    z = torch.tensor([[0.0, 5.0], [1.0, 5.0], [2.0, 5.0], [3.9, 5.0], [4.0, 5.0]])
    assert discretize(z, n_bins=2).tolist() == [[0, 0], [0, 0], [1, 0], [1, 0], [1, 0]]  # constant column: bin 0
    assert discretize(np.array([[0.0], [1.0], [2.0], [3.0]]), n_bins=4).tolist() == [[0], [1], [2], [3]]
    assert discretize(torch.tensor([[0], [10]]), n_bins=3).tolist() == [[0], [2]]  # integer codes are numbers too


# ----------------------------------------------------------------------------- entropy and MI
def test_discrete_entropy_exact_values():
    labels = torch.tensor([[0, 5, 1, 3], [1, 5, 1, 3], [2, 9, 1, 3], [3, 9, 2, 3]])
    got = discrete_entropy(labels)
    want = torch.tensor([LOG4, LOG2, -(0.75 * math.log(0.75) + 0.25 * math.log(0.25)), 0.0], dtype=torch.float64)
    torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-15)
    assert got[3] == 0.0  # a constant factor


def test_mutual_info_exact_values():
    v = torch.tensor([[0], [0], [1], [1]])
    z = torch.tensor([[0, 0, 7, 4], [1, 0, 7, 4], [0, 1, 3, 4], [1, 1, 3, 4]])
    # independent of v: 0; equal to v: log 2; a relabelling of v: log 2; constant: 0
    torch.testing.assert_close(mutual_info_matrix(z, v), torch.tensor([[0.0], [LOG2], [LOG2], [0.0]], dtype=torch.float64),
                               rtol=1e-12, atol=1e-15)
    # I(v; v) = H(v), and I(v // 2; v) = H(v // 2) for a deterministic function of v
    u = torch.arange(4).repeat(3)[:, None]  # uniform over 4 values
    torch.testing.assert_close(mutual_info_matrix(torch.cat([u, u // 2], 1), u),
                               torch.tensor([[LOG4], [LOG2]], dtype=torch.float64), rtol=1e-12, atol=1e-15)
    once = torch.arange(3)[:, None]  # every value seen once: cells with a count of 1 count too
    assert float(mutual_info_matrix(once, once)) == pytest.approx(LOG3, rel=1e-12)


def test_mutual_info_matrix_matches_independent_plugin_estimates():
    rng = np.random.default_rng(1)
    v = rng.integers(0, 3, size=(500, 2))
    z = np.stack([v[:, 0] * 2 + rng.integers(0, 2, 500), rng.integers(0, 5, 500), (v[:, 1] + rng.integers(0, 2, 500)) % 3], 1)
    got = mutual_info_matrix(z, torch.from_numpy(v))
    assert got.shape == (3, 2) and got.dtype == torch.float64
    for j in range(3):
        for k in range(2):
            assert float(got[j, k]) == pytest.approx(mutual_info_score(z[:, j], v[:, k]), rel=1e-9, abs=1e-12)
            assert float(got[j, k]) == pytest.approx(_plugin_mi(z[:, j], v[:, k]), rel=1e-9, abs=1e-12)
    assert got[0, 0] > 0.5 and got[2, 1] > 0.3  # the informative pairs are far from the noise ones
    assert (got >= 0).all()


# ----------------------------------------------------------------------------- normalised gap and MIG
def test_normalized_gap_exact():
    mi = torch.tensor([[LOG4, 0.0, 0.2], [LOG2, LOG3, LOG2], [0.0, 0.1, 0.0]], dtype=torch.float64)
    got = normalized_gap(mi, torch.tensor([LOG4, LOG3, LOG2], dtype=torch.float64))
    # (log 4 - log 2) / log 4 = 1/2; (log 3 - 0.1) / log 3; a binary factor (H < 1 nat): (log 2 - 0.2) / log 2
    want = torch.tensor([0.5, (LOG3 - 0.1) / LOG3, (LOG2 - 0.2) / LOG2], dtype=torch.float64)
    torch.testing.assert_close(got, want, rtol=1e-12, atol=0)
    # two latents are enough
    torch.testing.assert_close(normalized_gap(mi[:2], torch.tensor([LOG4, LOG3, LOG2], dtype=torch.float64)),
                               torch.tensor([0.5, 1.0, (LOG2 - 0.2) / LOG2], dtype=torch.float64), rtol=1e-12, atol=0)


def test_mig_is_zero_when_a_factor_lives_in_two_latents():
    v = _factors(n=1000, k=2)
    report = mig_report(torch.cat([v, v], 1).double(), v)  # each factor copied into two latents
    assert report.score == 0.0  # the gap punishes the duplicate, though each latent knows all of it
    for row in report.rows:
        assert row.mi == pytest.approx(row.entropy, rel=1e-12) and row.runner_up_mi == pytest.approx(row.entropy, rel=1e-12)
    # with two latents only, J = 2, the score is defined as well
    assert mig_report(v[:, :1].repeat(1, 2).double(), v[:, :1]).score == 0.0


def test_mig_exact_for_a_hand_made_code():
    v = torch.arange(4).repeat(25)[:, None]  # one factor, uniform over 4 values, H = log 4
    codes = torch.cat([v, v // 2, torch.zeros_like(v)], 1).double()  # z0 = v, z1 = v // 2, z2 constant
    assert mig(codes, v) == pytest.approx((LOG4 - LOG2) / LOG4, rel=1e-12)  # = 0.5
    report = mig_report(codes, v, factor_names=["shape"])
    (row,) = report.rows
    assert isinstance(row, FactorRow)
    assert (row.factor, row.latent, row.runner_up) == ("shape", 0, 1)
    assert row.mi == pytest.approx(LOG4, rel=1e-12) and row.runner_up_mi == pytest.approx(LOG2, rel=1e-12)
    assert row.entropy == pytest.approx(LOG4, rel=1e-12) and row.gap == pytest.approx(0.5, rel=1e-12)
    assert report.mi.shape == (3, 1) and report.mi[2, 0] == 0.0  # the constant latent: defined, MI 0


def test_mig_near_one_for_a_code_that_copies_each_factor():
    v = _factors()
    perm = [3, 0, 4, 1, 2]
    codes = v[:, perm].double() * 0.37 - 2.0  # each factor in a latent of its own (shuffled, rescaled)
    report = mig_report(codes, v)
    assert report.score > 0.99, report.score
    assert [r.latent for r in report.rows] == [perm.index(k) for k in range(5)]  # which latent holds which factor
    assert all(r.mi == pytest.approx(r.entropy, rel=1e-12) for r in report.rows)  # all there is to know


def test_mig_near_zero_for_noise_independent_of_the_factors():
    v = _factors()
    codes = torch.randn(10_000, 5, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    assert mig(codes, v) < 0.02


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_mig_near_zero_for_a_random_rotation_of_many_factors(seed):
    v = _factors(k=20)
    r, _ = torch.linalg.qr(torch.randn(20, 20, generator=torch.Generator().manual_seed(seed), dtype=torch.float64))
    code = (v.double() - 4.5) / 2.87  # standardised factors, one per latent: MIG ~ 1
    assert mig(code, v) > 0.99
    assert mig(code @ r, v) < 0.1  # every latent a mixture of all 20 factors


def test_mig_is_invariant_to_latent_order_and_affine_rescaling():
    v = _factors(n=2000, k=3)
    codes = v.double() + torch.randn(2000, 3, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    base = mig(codes, v)
    assert base == mig_report(codes, v, n_bins=20).score and mig(codes, v, n_bins=21) != base  # 20 bins by default
    assert 0.05 < base < 0.95  # a partly disentangled code, so the invariances are not trivial
    assert mig(codes[:, [2, 0, 1]], v) == base
    assert mig(codes * 4.0 + 8.0, v) == base  # exact in floating point: powers of two
    assert mig(codes, v, n_bins=5) != base  # ... while the binning does matter


# ----------------------------------------------------------------------------- input validation
def test_constant_factor_is_refused_by_name():
    v = torch.stack([torch.arange(10) % 3, torch.zeros(10, dtype=torch.long)], 1)
    codes = torch.randn(10, 3, generator=torch.Generator().manual_seed(0))
    with pytest.raises(ValueError, match=r"factor 1 has entropy 0: it does not vary over these examples"):
        mig(codes, v)
    with pytest.raises(ValueError, match=r"factor 0 has entropy 0"):
        normalized_gap(torch.ones(2, 1, dtype=torch.float64), torch.zeros(1, dtype=torch.float64))


@pytest.mark.parametrize(
    "codes, factors, kw, match",
    [
        (torch.randn(10), torch.zeros(10, 1, dtype=torch.long), {}, r"codes must have shape \(N, K\) .* got \(10,\)"),
        (torch.randn(10, 3), torch.zeros(9, 1, dtype=torch.long), {}, r"one row per example each, got 10 and 9 rows"),
        (torch.tensor([[0.0, 1.0], [float("nan"), 2.0]]), torch.tensor([[0], [1]]), {},
         r"codes must be finite, got nan at row 1, latent 0"),
        (torch.tensor([[0.0, 1.0], [1.0, float("inf")]]), torch.tensor([[0], [1]]), {}, r"got inf at row 1, latent 1"),
        (torch.randn(4, 2), torch.rand(4, 1), {}, r"factors must hold integer labels .* got dtype torch.float32"),
        (torch.randn(4, 2), torch.ones(4, 1, dtype=torch.bool), {}, r"factors must hold integer labels"),
        (torch.randn(4, 1), torch.tensor([[0], [1], [0], [1]]), {}, r"codes need J >= 2 columns, got 1"),
        (torch.randn(4, 2), torch.tensor([[0], [1], [0], [1]]), {"n_bins": 1}, r"n_bins must be an int >= 2 .* got 1"),
        (torch.randn(4, 2), torch.tensor([[0], [1], [0], [1]]), {"n_bins": 2.0}, r"n_bins must be an int >= 2 .* got 2.0"),
        (torch.randn(4, 2), torch.tensor([[0], [1], [0], [1]]), {"factor_names": ["a", "b"]},
         r"factor_names must be 1 strings, one per factor column, got \['a', 'b'\]"),
        (torch.zeros(0, 2), torch.zeros(0, 1, dtype=torch.long), {}, r"with N, K >= 1, got \(0, 2\)"),
        ([[1.0, 2.0], [3.0]], [[0], [1]], {}, r"codes must be a tensor or array of shape \(N, K\)"),
        (torch.randn(2, 2, dtype=torch.cfloat), [[0], [1]], {}, r"codes must be real numbers, got dtype torch.complex64"),
    ],
)
def test_mig_refuses_bad_inputs(codes, factors, kw, match):
    with pytest.raises(ValueError, match=match):
        mig_report(codes, factors, **kw)


def test_pieces_refuse_bad_inputs():
    with pytest.raises(ValueError, match=r"codes_discrete must hold integer labels .* discretize\(codes\)"):
        mutual_info_matrix(torch.randn(4, 2), torch.zeros(4, 1, dtype=torch.long))
    with pytest.raises(ValueError, match=r"labels must have shape \(N, K\)"):
        discrete_entropy(torch.tensor([0, 1, 1]))
    with pytest.raises(ValueError, match=r"mi must be a float tensor \(J, K\) .* got \(3,\) torch.float64"):
        normalized_gap(torch.ones(3, dtype=torch.float64), torch.ones(1, dtype=torch.float64))
    with pytest.raises(ValueError, match=r"mi must be a float tensor .* got list"):
        normalized_gap([[1.0]], torch.ones(1))
    with pytest.raises(ValueError, match=r"mi needs J >= 2 rows \(latents\), got 1"):
        normalized_gap(torch.ones(1, 3), torch.ones(3))
    with pytest.raises(ValueError, match=r"entropies must be a tensor \(3,\), one H\(v_k\) per column of mi, got \(2,\)"):
        normalized_gap(torch.ones(2, 3), torch.ones(2))
    with pytest.raises(ValueError, match=r"entropies must be a tensor \(1,\), .* got list"):
        normalized_gap(torch.ones(2, 1), [1.0])
    with pytest.raises(ValueError, match=r"must not contain NaN"):
        normalized_gap(torch.tensor([[1.0], [float("nan")]]), torch.ones(1))
    with pytest.raises(ValueError, match=r"must not contain NaN"):
        normalized_gap(torch.ones(2, 1), torch.tensor([float("nan")]))


# ----------------------------------------------------------------------------- report
def test_report_prints_which_latent_captures_which_factor():
    v = _factors(n=2000, k=2)
    codes = torch.stack([torch.zeros(2000), v[:, 1].float(), v[:, 0].float()], 1)
    report = mig_report(codes, v, factor_names=("shape", "scale"))
    assert isinstance(report, MIGReport) and report.n_bins == 20 and report.n_examples == 2000
    assert report.score == mig(codes, v)
    text = str(report)
    lines = text.splitlines()
    assert lines[0].startswith(f"MIG = {report.score:.3f}") and "2000 examples, 20 bins" in lines[0]
    assert lines[1].split() == ["factor", "H(v)", "best", "z", "I(z;v)", "I/H", "2nd", "z", "I(z;v)", "gap"]
    assert torch.equal(report.entropies, discrete_entropy(v)) and torch.equal(report.mi, mutual_info_matrix(discretize(codes), v))
    h = discrete_entropy(v)
    assert lines[2].split()[:3] == ["shape", f"{float(h[0]):.3f}", "2"]  # shape lives in latent 2
    assert lines[3].split()[:3] == ["scale", f"{float(h[1]):.3f}", "1"]
    assert lines[2].split()[4] == "1.00"  # I/H: all of it
    assert [r.factor for r in mig_report(codes, v).rows] == ["v0", "v1"]  # default names


# ----------------------------------------------------------------------------- encode_sprites
class CentroidEncoder(nn.Module):
    """A hand-made 'encoder': mu = (x centroid, y centroid, area, 0), logvar = 0; records train/grad modes."""

    def __init__(self) -> None:
        super().__init__()
        self.dummy = nn.Parameter(torch.zeros(()))
        self.calls: list[tuple[bool, bool, int]] = []

    def encode(self, x):
        self.calls.append((self.training, torch.is_grad_enabled(), x.shape[0]))
        s = x.shape[-1]
        grid = torch.arange(s, dtype=x.dtype)
        mass = x.sum((1, 2, 3)).clamp_min(1.0)
        cx = (x.sum((1, 2)) * grid).sum(1) / mass  # (B, C, H, W) -> (B, W) -> (B,)
        cy = (x.sum((1, 3)) * grid).sum(1) / mass
        mu = torch.stack([cx, cy, mass, torch.zeros_like(mass)], 1) + 0 * self.dummy
        return mu, torch.zeros_like(mu)


def test_encode_sprites_returns_posterior_means_and_factors():
    ds = load_sprites(n=3000, image_size=16, seed=0)
    model = CentroidEncoder()
    model.train()
    codes, factors = encode_sprites(model, ds, batch_size=1000)
    assert codes.shape == (3000, 4) and codes.dtype == torch.float32
    assert torch.equal(factors, ds.factors)
    torch.testing.assert_close(codes, model.encode(ds.images)[0].detach())
    assert [c[2] for c in model.calls[:3]] == [1000, 1000, 1000] and not any(c[0] or c[1] for c in model.calls[:3])
    assert model.training  # restored
    # the centroids find the positions and the area finds the scale: the report says so
    rows = {r.factor: r for r in mig_report(codes, factors, factor_names=FACTOR_NAMES).rows}
    assert (rows["posX"].latent, rows["posY"].latent, rows["scale"].latent) == (0, 1, 2)
    assert rows["posX"].mi / rows["posX"].entropy > 0.5
    # a tuple (images, factors) works the same
    codes2, factors2 = encode_sprites(model, (ds.images[:10], ds.factors[:10]))
    assert torch.equal(codes2, codes[:10]) and torch.equal(factors2, ds.factors[:10])


def test_encode_sprites_takes_an_autoencoder_code():
    class AE(nn.Module):
        def __init__(self):
            super().__init__()
            self.lin = nn.Linear(64, 2)

        def encode(self, x):
            return self.lin(x.flatten(1))  # (B, 1, 8, 8) -> (B, 64) -> (B, 2): a code z, not (mu, logvar)

    ds = load_sprites(n=5, image_size=8, seed=1)
    model = AE()
    codes, _ = encode_sprites(model, ds)
    assert codes.shape == (5, 2)
    torch.testing.assert_close(codes, model.lin(ds.images.flatten(1)).detach())


def test_encode_sprites_refuses_bad_inputs():
    ds = load_sprites(n=6, image_size=8, seed=0)
    with pytest.raises(ValueError, match=r"data has no ground-truth factors \(.factors is None\)"):
        encode_sprites(CentroidEncoder(), (ds.images, None))
    with pytest.raises(ValueError, match=r"data must be a sprites Dataset .* got list"):
        encode_sprites(CentroidEncoder(), [ds.images, ds.factors])
    with pytest.raises(ValueError, match=r"images and factors must have one row per example each, got 6 and 5 rows"):
        encode_sprites(CentroidEncoder(), (ds.images, ds.factors[:5]))
    with pytest.raises(ValueError, match=r"batch_size must be a positive int .* got 0"):
        encode_sprites(CentroidEncoder(), ds, batch_size=0)
