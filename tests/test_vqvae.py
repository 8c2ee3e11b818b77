"""Tests for vae_core.vqvae: nearest codes, the straight-through estimator, the codebook and
commitment terms, the EMA codebook, dead-code restarts, the PixelCNN prior over codes, training
through ``fit`` and checkpoints.

Tolerances: hand computations in float64 add the same numbers in another order, so 1e-12.
Nearest codes are compared exactly: integer-valued float64 inputs make every squared distance
exact, so a tie is a tie in both computations. Training runs are seeded and CPU-deterministic;
"the loss went down" is checked with a margin well inside what the seeded run reaches. The
sampling test draws 8,000 independent codes per probability, whose frequency has a standard
deviation of at most sqrt(0.25 / 8000) = 0.0056; the 0.025 allowed is over 4 of those.
"""
from __future__ import annotations

import math
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch
from torch.distributions import Categorical

from vae_core.data import load_digits
from vae_core.data.batches import Batch
from vae_core.train import TrainConfig, evaluate, fit, load_checkpoint, save_checkpoint
from vae_core.vqvae import (
    VQVAE,
    CodePrior,
    CodePriorConfig,
    MaskedConv2d,
    VectorQuantizer,
    VectorQuantizerEMA,
    VQVAEConfig,
    code_counts,
    dead_codes,
    nearest_codes,
    perplexity,
)

TINY = VQVAEConfig(input_shape=(1, 8, 8), channels=(8, 16), code_dim=3, codebook_size=8)  # a 2x2 grid of codes
TINY_PRIOR = CodePriorConfig(codebook_size=5, grid=(4, 5), channels=8, layers=3)


@pytest.fixture(autouse=True)
def no_tqdm_monitor(monkeypatch):
    import tqdm

    monkeypatch.setattr(tqdm.tqdm, "monitor_interval", 0)


def quiet(**kw) -> TrainConfig:
    return TrainConfig(**{"progress": False, "batch_size": 32, **kw})


def images(n: int, seed: int = 0) -> torch.Tensor:
    return torch.bernoulli(torch.full((n, 1, 8, 8), 0.3), generator=torch.Generator().manual_seed(seed))


def quantizer_with(codebook, ema: bool = False, **kw) -> VectorQuantizer:
    cb = torch.tensor(codebook, dtype=torch.float64)
    q = (VectorQuantizerEMA(*cb.shape, **kw) if ema else VectorQuantizer(*cb.shape)).double()
    with torch.no_grad():
        q.codebook.copy_(cb)
        if ema:
            q.ema_counts.fill_(1.0)
            q.ema_sums.copy_(cb)
    return q


# ------------------------------------------------------------------------------------ codes and statistics


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_nearest_codes_match_a_brute_force_numpy_search_ties_included(seed):
    rng = np.random.default_rng(seed)
    codebook = rng.integers(-3, 4, size=(9, 3)).astype(np.float64)
    codebook[6] = codebook[2]  # a duplicated code: always a tie, which index 2 must win
    z = rng.integers(-3, 4, size=(300, 3)).astype(np.float64)
    d = ((z[:, None, :] - codebook[None]) ** 2).sum(-1)  # (N, K), exact for integers
    expected = d.argmin(1)  # numpy returns the first minimum
    assert (d == d.min(1, keepdims=True)).sum(1).max() > 1  # the data really has ties
    got = nearest_codes(torch.from_numpy(z), torch.from_numpy(codebook))
    assert got.dtype == torch.long
    np.testing.assert_array_equal(got.numpy(), expected)
    assert not (got == 6).any()
    z_real = rng.normal(size=(200, 3))  # and generic real-valued points
    d_real = ((z_real[:, None, :] - codebook[None]) ** 2).sum(-1)
    np.testing.assert_array_equal(nearest_codes(torch.from_numpy(z_real), torch.from_numpy(codebook)).numpy(), d_real.argmin(1))


def test_code_counts_dead_codes_and_perplexity_against_numpy():
    rng = np.random.default_rng(0)
    codes = rng.choice([0, 2, 3, 7], size=(4, 3, 5), p=[0.1, 0.2, 0.3, 0.4])
    counts = np.bincount(codes.ravel(), minlength=9)
    t = torch.from_numpy(codes)
    np.testing.assert_array_equal(code_counts(t, 9).numpy(), counts)
    np.testing.assert_array_equal(dead_codes(t, 9).numpy(), counts == 0)
    p = counts[counts > 0] / counts.sum()
    assert perplexity(t, 9) == pytest.approx(math.exp(-(p * np.log(p)).sum()), rel=1e-12)


def test_perplexity_is_k_for_uniform_use_and_one_for_a_single_code():
    assert perplexity(torch.arange(16).repeat(3), 16) == pytest.approx(16.0, rel=1e-12)
    assert perplexity(torch.full((2, 7, 7), 5), 16) == 1.0


# ------------------------------------------------------------------------------------ gradients and terms


def test_straight_through_passes_the_decoder_gradient_to_the_encoder_unchanged():
    torch.manual_seed(0)
    q = VectorQuantizer(5, 3).double()
    z_e = torch.randn(2, 3, 2, 2, dtype=torch.float64, requires_grad=True)
    w = torch.randn(2, 3, 2, 2, dtype=torch.float64)

    def f(z):  # any downstream loss
        return (w * z).sum() + z.pow(3).sum()

    out = q(z_e)
    torch.testing.assert_close(out.z_q, q.codebook[out.codes].permute(0, 3, 1, 2), rtol=0, atol=1e-15)  # forward: the codes
    grad_ze, grad_cb = torch.autograd.grad(f(out.z_q), [z_e, q.codebook], allow_unused=True)
    z_q = out.z_q.detach().requires_grad_()
    (grad_zq,) = torch.autograd.grad(f(z_q), z_q)
    torch.testing.assert_close(grad_ze, grad_zq, rtol=1e-12, atol=1e-12)  # d loss / d z_e = d loss / d z_q
    assert grad_cb is None  # the decoder's gradient does not reach the codebook


def test_the_codebook_term_moves_only_the_codebook_and_the_commitment_only_the_encoder():
    torch.manual_seed(1)
    q = VectorQuantizer(4, 2).double()
    z_e = torch.randn(3, 2, 2, 3, dtype=torch.float64, requires_grad=True)
    out = q(z_e)
    e = q.codebook.detach()[out.codes].permute(0, 3, 1, 2)  # (B, D, H, W) chosen codes
    g_ze, g_cb = torch.autograd.grad(out.codebook.sum(), [z_e, q.codebook], allow_unused=True)
    assert g_ze is None
    expected = torch.zeros_like(q.codebook)  # d/d e_k sum ||z - e_k||^2 = sum over z assigned to k of 2 (e_k - z)
    flat_z = z_e.detach().permute(0, 2, 3, 1).reshape(-1, 2)
    for z, k in zip(flat_z, out.codes.flatten()):
        expected[k] += 2 * (q.codebook.detach()[k] - z)
    torch.testing.assert_close(g_cb, expected, rtol=1e-12, atol=1e-12)
    g_ze, g_cb = torch.autograd.grad(out.commit.sum(), [z_e, q.codebook], allow_unused=True)
    assert g_cb is None
    torch.testing.assert_close(g_ze, 2 * (z_e.detach() - e), rtol=1e-12, atol=1e-12)


def test_codebook_and_commit_terms_by_hand():
    q = quantizer_with([[0.0], [10.0]])
    z_e = torch.tensor([[[[1.0, 9.0]]], [[[4.0, 6.0]]]], dtype=torch.float64)  # (B=2, D=1, H=1, W=2)
    out = q(z_e)
    assert out.codes.tolist() == [[[0, 1]], [[0, 1]]]
    # example 0: (1 - 0)^2 + (9 - 10)^2 = 2; example 1: (4 - 0)^2 + (6 - 10)^2 = 32
    torch.testing.assert_close(out.codebook, torch.tensor([2.0, 32.0], dtype=torch.float64), rtol=0, atol=1e-12)
    torch.testing.assert_close(out.commit, torch.tensor([2.0, 32.0], dtype=torch.float64), rtol=0, atol=1e-12)
    ema = quantizer_with([[0.0], [10.0]], ema=True)
    ema_out = ema(z_e)
    torch.testing.assert_close(ema_out.commit, out.commit, rtol=0, atol=1e-12)
    assert ema_out.codebook.tolist() == [0.0, 0.0]


def test_vqvae_loss_is_the_batch_mean_of_recon_codebook_and_beta_commit():
    torch.manual_seed(0)
    model = VQVAE(VQVAEConfig(**{**TINY.__dict__, "commitment": 0.7})).double()
    x = images(5).double()
    out = model.loss_terms(Batch(x))
    assert set(out.terms) == {"recon", "codebook", "commit"} and out.elbo is None
    logits, vq = model.eval()(x)
    recon = torch.nn.functional.binary_cross_entropy_with_logits(logits, x, reduction="none").sum((1, 2, 3))
    torch.testing.assert_close(out.terms["recon"], recon, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(out.terms["commit"], vq.commit, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(out.loss, (recon + vq.codebook + 0.7 * vq.commit).mean(), rtol=1e-12, atol=1e-12)
    # the weights again, by their gradients (the two terms are equal in value): beta on the commitment only
    t = out.terms
    params = [model.quantizer.codebook, model.encoder[-1].weight]
    by_formula = torch.autograd.grad((t["recon"] + t["codebook"] + 0.7 * t["commit"]).mean(), params, retain_graph=True)
    for got, want in zip(torch.autograd.grad(out.loss, params), by_formula):
        torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("ema", [False, True])
def test_codes_reconstruct_and_decode_codes_agree_with_forward_and_never_update(ema):
    torch.manual_seed(0)
    model = VQVAE(VQVAEConfig(**{**TINY.__dict__, "ema": ema})).double()
    x = images(4).double()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    codes, recon = model.train().codes(x), model.reconstruct(x)  # in training mode, too, they leave the codebook alone
    assert codes.shape == (4, 2, 2) and codes.dtype == torch.long
    for k, v in model.state_dict().items():
        assert torch.equal(v, before[k]), k
    logits, vq = model.eval()(x)
    assert torch.equal(codes, vq.codes)
    torch.testing.assert_close(recon, torch.sigmoid(logits), rtol=0, atol=1e-15)
    torch.testing.assert_close(model.decode_codes(codes), torch.sigmoid(logits), rtol=0, atol=1e-15)


# ------------------------------------------------------------------------------------ the EMA codebook


def test_ema_updates_follow_the_formula_step_by_step():
    d, eps = 0.75, 0.1
    q = quantizer_with([[0.0], [10.0]], ema=True, decay=d, epsilon=eps)

    def step(zs):
        return q(torch.tensor(zs, dtype=torch.float64).view(1, 1, 1, -1))

    def check(counts, sums):
        n = sum(counts)
        smoothed = [(c + eps) / (n + 2 * eps) * n for c in counts]  # Laplace smoothing
        torch.testing.assert_close(q.ema_counts, torch.tensor(counts, dtype=torch.float64), rtol=1e-12, atol=1e-12)
        torch.testing.assert_close(q.ema_sums, torch.tensor(sums, dtype=torch.float64)[:, None], rtol=1e-12, atol=1e-12)
        expected = [m / s for m, s in zip(sums, smoothed)]
        torch.testing.assert_close(q.codebook, torch.tensor(expected, dtype=torch.float64)[:, None], rtol=1e-12, atol=1e-12)

    # step 1: 1, 2 -> code 0 and 9 -> code 1, so n = (2, 1), sums = (3, 9); N and m start at (1, 1) and (0, 10).
    out = step([1.0, 2.0, 9.0])
    assert out.codes.flatten().tolist() == [0, 0, 1]
    assert out.commit.item() == pytest.approx(1 + 4 + 1)  # measured with the codebook before the update
    counts, sums = [d * 1 + (1 - d) * 2, d * 1 + (1 - d) * 1], [d * 0 + (1 - d) * 3, d * 10 + (1 - d) * 9]
    check(counts, sums)
    # by hand: N = (1.25, 1), m = (0.75, 9.75), n = 2.25, N~ = (1.35, 1.1) * 2.25 / 2.45, e = m / N~
    assert q.codebook.flatten().tolist() == pytest.approx([0.75 * 2.45 / (1.35 * 2.25), 9.75 * 2.45 / (1.1 * 2.25)], rel=1e-12)
    # step 2: 0 -> code 0, 10 and 10 -> code 1
    assert step([0.0, 10.0, 10.0]).codes.flatten().tolist() == [0, 1, 1]
    counts, sums = [d * counts[0] + (1 - d) * 1, d * counts[1] + (1 - d) * 2], [d * sums[0] + (1 - d) * 0, d * sums[1] + (1 - d) * 20]
    check(counts, sums)
    # step 3: code 1 unused; its averages decay together, so e_1 = m_1 / N~_1 stays near 10
    assert step([0.5, 0.6]).codes.flatten().tolist() == [0, 0]
    check([d * counts[0] + (1 - d) * 2, d * counts[1]], [d * sums[0] + (1 - d) * 1.1, d * sums[1]])
    assert 9 < q.codebook[1].item() < 10


def test_ema_does_not_update_in_eval_mode_and_gets_no_gradient():
    torch.manual_seed(0)
    q = VectorQuantizerEMA(6, 3)
    assert list(q.parameters()) == [] and set(q.state_dict()) == {"codebook", "ema_counts", "ema_sums"}
    before = {k: v.clone() for k, v in q.state_dict().items()}
    z_e = torch.randn(2, 3, 4, 4, requires_grad=True)
    q.eval()(z_e)
    for k, v in q.state_dict().items():
        assert torch.equal(v, before[k]), k
    out = q.train()(z_e)
    assert not torch.equal(q.codebook, before["codebook"])
    (out.z_q.sum() + out.commit.sum()).backward()
    assert q.codebook.grad is None and not q.codebook.requires_grad and z_e.grad is not None


# ------------------------------------------------------------------------------------ dead-code restarts


@pytest.mark.parametrize("ema", [False, True])
def test_a_restart_revives_codes_far_from_all_data(ema):
    torch.manual_seed(0)
    z_e = torch.randn(2, 2, 3, 3, dtype=torch.float64)
    q = quantizer_with([[0.0, 0.0], [0.5, 0.5], [1e3, 1e3], [-1e3, 1e3]], ema=ema)
    dead = dead_codes(q.assign(z_e), 4)
    assert dead.tolist() == [False, False, True, True]
    assert q.restart_dead_codes(z_e, dead, torch.Generator().manual_seed(0)) == 2
    flat = z_e.permute(0, 2, 3, 1).reshape(-1, 2)
    for k in (2, 3):  # each moved onto an encoder output
        assert (flat == q.codebook[k]).all(1).any(), k
    assert q.codebook[:2].tolist() == [[0.0, 0.0], [0.5, 0.5]]
    counts = code_counts(q.assign(z_e), 4)
    assert (counts[2:] > 0).all()
    if ema:  # their averages restart at one observation of the new place: m_k / N_k = e_k
        assert q.ema_counts.tolist() == [1.0, 1.0, 1.0, 1.0]
        torch.testing.assert_close(q.ema_sums, q.codebook, rtol=0, atol=0)
    again = quantizer_with([[0.0, 0.0], [0.5, 0.5], [1e3, 1e3], [-1e3, 1e3]], ema=ema)
    again.restart_dead_codes(z_e, dead, torch.Generator().manual_seed(0))
    assert torch.equal(again.codebook, q.codebook)  # seeded: reproducible
    assert q.restart_dead_codes(z_e, torch.zeros(4, dtype=torch.bool)) == 0


def test_restart_every_restarts_the_codes_unused_since_the_last_restart():
    torch.manual_seed(0)
    model = VQVAE(VQVAEConfig(**{**TINY.__dict__, "restart_every": 3})).double()
    with torch.no_grad():
        model.quantizer.codebook[6:] = 1e3  # two codes no encoder output is near
    batches = [images(4, seed).double() for seed in range(3)]
    model.eval().loss_terms(Batch(batches[0]))
    assert int(model.steps) == 0 and int(model.usage.sum()) == 0  # evaluation counts nothing
    model.train()
    for x in batches[:2]:
        model.loss_terms(Batch(x))
    assert int(model.restarts) == 0 and (model.quantizer.codebook[6:] == 1e3).all()
    assert int(model.usage.sum()) == 2 * 4 * 2 * 2  # batches x examples x grid cells
    unused = (model.usage + code_counts(model.codes(batches[2]), 8)) == 0
    assert unused[6:].all()
    z_e = model.encode(batches[2]).detach()
    model.loss_terms(Batch(batches[2]))
    assert int(model.restarts) == int(unused.sum()) and int(model.steps) == 3
    flat = z_e.permute(0, 2, 3, 1).reshape(-1, 3)
    for k in unused.nonzero().flatten():
        assert (flat == model.quantizer.codebook[k]).all(1).any(), int(k)
    assert int(model.usage.sum()) == 0  # counting starts again


# ------------------------------------------------------------------------------------ the prior over codes


def _positions(h: int, w: int):
    return [(i, j) for i in range(h) for j in range(w)]


@pytest.mark.parametrize("mask_type", ["A", "B"])
def test_masked_convolutions_see_only_earlier_positions(mask_type):
    torch.manual_seed(0)
    conv = MaskedConv2d(mask_type, 2, 3, 5).double()
    x = torch.randn(1, 2, 4, 5, dtype=torch.float64, requires_grad=True)
    out = conv(x)
    order = _positions(4, 5)
    for p, (i, j) in enumerate(order):
        (g,) = torch.autograd.grad(out[0, :, i, j].sum(), x, retain_graph=True)
        seen = g.abs().sum(1)[0]  # (H, W): which inputs the output at (i, j) depends on
        for r, (a, b) in enumerate(order):
            if r > p or (r == p and mask_type == "A"):
                assert seen[a, b] == 0, (mask_type, (i, j), (a, b))
            elif r == p or (abs(a - i) <= 2 and abs(b - j) <= 2):
                assert seen[a, b] > 0, (mask_type, (i, j), (a, b))  # B sees itself; both see their past in reach


def test_the_prior_logits_at_a_position_do_not_depend_on_that_code_or_later_ones():
    torch.manual_seed(0)
    prior = CodePrior(TINY_PRIOR)
    codes = torch.randint(0, 5, (2, 4, 5), generator=torch.Generator().manual_seed(0))
    base = prior(codes)
    order = _positions(4, 5)
    later_changed = 0
    for p, (i, j) in enumerate(order):
        moved = codes.clone()
        moved[:, i, j] = (moved[:, i, j] + 1) % 5
        logits = prior(moved)
        for a, b in order[: p + 1]:
            torch.testing.assert_close(logits[:, :, a, b], base[:, :, a, b], rtol=0, atol=1e-6)
        later_changed += sum(not torch.allclose(logits[:, :, a, b], base[:, :, a, b]) for a, b in order[p + 1:])
    assert later_changed > 0  # and it does look at the past


def test_log_prob_is_the_sum_of_the_chosen_log_softmax_entries():
    torch.manual_seed(0)
    prior = CodePrior(TINY_PRIOR).double()
    codes = torch.randint(0, 5, (3, 4, 5), generator=torch.Generator().manual_seed(1))
    logits = prior(codes)
    assert logits.shape == (3, 5, 4, 5)
    expected = Categorical(logits=logits.permute(0, 2, 3, 1)).log_prob(codes).sum((1, 2))
    torch.testing.assert_close(prior.log_prob(codes), expected, rtol=1e-12, atol=1e-12)
    out = prior.loss_terms(Batch(codes[:, None].double()))  # float codes holding integers, as fit stores them
    torch.testing.assert_close(out.terms["nll"], -expected, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(out.elbo, expected, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(out.loss, -expected.mean(), rtol=1e-12, atol=1e-12)


def test_samples_have_the_grid_shape_and_are_reproducible():
    torch.manual_seed(0)
    prior = CodePrior(TINY_PRIOR)
    a = prior.sample(6, torch.Generator().manual_seed(3))
    assert a.shape == (6, 4, 5) and a.dtype == torch.long and 0 <= a.min() and a.max() < 5
    assert torch.equal(a, prior.sample(6, torch.Generator().manual_seed(3)))
    assert not torch.equal(a, prior.sample(6, torch.Generator().manual_seed(4)))


@pytest.mark.parametrize("temperature", [1.0, 0.5])
def test_samples_follow_the_softmax_of_the_logits_over_the_temperature(temperature):
    prior = CodePrior(CodePriorConfig(codebook_size=3, grid=(2, 2), channels=4, layers=1))
    p = torch.tensor([0.6, 0.3, 0.1])
    with torch.no_grad():  # every position: logits log p, whatever came before
        prior.net[-1].weight.zero_()
        prior.net[-1].bias.copy_(p.log())
    codes = prior.sample(2000, torch.Generator().manual_seed(0), temperature=temperature)
    expected = p ** (1 / temperature) / (p ** (1 / temperature)).sum()
    freq = code_counts(codes, 3).double() / codes.numel()
    torch.testing.assert_close(freq, expected.double(), rtol=0, atol=0.025)


# ------------------------------------------------------------------------------------ training with fit


@pytest.mark.parametrize("ema", [False, True])
def test_fit_trains_a_tiny_vqvae(ema):
    train, test = load_digits("train").subset(300), load_digits("test").subset(100)
    torch.manual_seed(0)
    config = VQVAEConfig(input_shape=(1, 8, 8), channels=(16, 32), code_dim=4, codebook_size=16, ema=ema, restart_every=10)
    model = VQVAE(config)
    history = fit(model, train, test, quiet(epochs=4, lr=3e-3))
    for split in (history.train, history.test):
        assert {"recon", "codebook", "commit"} <= set(split)
        assert all(math.isfinite(v) for v in split["commit"])
    assert history.test["recon"][-1] < history.test["recon"][0] - 8.0, history.test["recon"]  # seeded: about 44 -> 30
    assert (history.train["codebook"][-1] == 0.0) == ema
    assert int(model.restarts) > 0  # 10 steps per epoch, so restarts happened


def test_fit_trains_the_prior_on_codes_and_it_learns_their_dependence():
    # every grid is one code repeated: p(c_0) is uniform over 4, every later code is determined by c_0
    gen = torch.Generator().manual_seed(0)
    codes = torch.randint(0, 4, (512, 1, 1, 1), generator=gen).expand(512, 1, 3, 3).float()
    torch.manual_seed(0)
    prior = CodePrior(CodePriorConfig(codebook_size=4, grid=(3, 3), channels=16, layers=2))
    history = fit(prior, codes, codes[:128], quiet(epochs=8, batch_size=64, lr=1e-2))
    assert history.train["nll"][-1] < history.train["nll"][0] - 5.0, history.train["nll"]  # from ~9 log 4 = 12.5 towards log 4
    assert history.test["nll"][-1] < math.log(4) + 0.1  # the entropy of c_0 is all that is left (seeded: 1.376)
    assert evaluate(prior, codes[:128].long())["nll"] == pytest.approx(history.test["nll"][-1], rel=1e-6)
    samples = prior.sample(200, torch.Generator().manual_seed(1))
    constant = (samples == samples[:, :1, :1]).flatten(1).all(1).float().mean().item()
    assert constant > 0.9, constant


# ------------------------------------------------------------------------------------ checkpoints


def _trained(kind: str) -> torch.nn.Module:
    torch.manual_seed(0)
    if kind == "prior":
        model = CodePrior(TINY_PRIOR)
        fit(model, torch.randint(0, 5, (64, 1, 4, 5)).float(), None, quiet(epochs=1))
        return model
    model = VQVAE(VQVAEConfig(**{**TINY.__dict__, "ema": kind == "ema", "restart_every": 1}))
    fit(model, images(64), None, quiet(epochs=1))
    return model


def test_checkpoints_round_trip_also_in_a_fresh_process(tmp_path):
    models = {kind: _trained(kind) for kind in ("plain", "ema", "prior")}
    assert models["ema"].quantizer.ema_counts.sum() != 8 and int(models["ema"].restarts) > 0  # trained state to keep
    for kind, model in models.items():
        save_checkpoint(tmp_path / f"{kind}.pt", model, extra={"kind": kind})
        back, extra = load_checkpoint(tmp_path / f"{kind}.pt", device="cpu")
        assert type(back) is type(model) and back.config == model.config and extra == {"kind": kind}
        assert back.state_dict().keys() == model.state_dict().keys()
        for k, v in model.state_dict().items():
            assert torch.equal(back.state_dict()[k], v), (kind, k)
    assert isinstance(back.config.grid, tuple)
    x = images(3)
    torch.testing.assert_close(load_checkpoint(tmp_path / "ema.pt", device="cpu")[0].reconstruct(x),
                               models["ema"].eval().reconstruct(x), rtol=0, atol=0)
    script = textwrap.dedent(f"""
        import sys, torch
        from vae_core.train import load_checkpoint
        assert "vae_core.vqvae" not in sys.modules
        for kind in ("plain", "ema", "prior"):
            model, _ = load_checkpoint({str(tmp_path)!r} + f"/{{kind}}.pt", device="cpu")
            torch.save(model.state_dict(), {str(tmp_path)!r} + f"/{{kind}}.state")
    """)
    subprocess.run([sys.executable, "-c", script], check=True, timeout=120)
    for kind, model in models.items():
        state = torch.load(tmp_path / f"{kind}.state", weights_only=True)
        assert state.keys() == model.state_dict().keys()
        for k, v in model.state_dict().items():
            assert torch.equal(state[k], v), (kind, k)


# ------------------------------------------------------------------------------------ refusals


def test_the_quantizer_refuses_bad_encoder_outputs():
    q = VectorQuantizer(4, 3)
    for z_e, match in [
        (torch.zeros(2, 3, 5), r"shape \(B, 3, H, W\), got \(2, 3, 5\)"),
        (torch.zeros(2, 2, 5, 5), r"shape \(B, 3, H, W\), got \(2, 2, 5, 5\)"),
        (torch.zeros(0, 3, 5, 5), "empty"),
        (torch.zeros(2, 3, 5, 5, dtype=torch.long), "float"),
        (torch.zeros(2, 3, 5, 5, dtype=torch.float64), "float32"),
        (torch.full((2, 3, 5, 5), math.nan), "NaN"),
    ]:
        with pytest.raises(ValueError, match=match):
            q(z_e)
    with pytest.raises(ValueError, match=r"\(4,\) bool"):
        q.restart_dead_codes(torch.zeros(1, 3, 2, 2), torch.zeros(3, dtype=torch.bool))


def test_models_refuse_mis_shaped_inputs():
    model, prior = VQVAE(TINY), CodePrior(TINY_PRIOR)
    cases = [
        (lambda: model.encode(torch.zeros(2, 1, 28, 28)), r"images of shape \(B, 1, 8, 8\)"),
        (lambda: model.loss_terms(Batch(torch.zeros(0, 1, 8, 8))), "empty"),
        (lambda: model.decode(torch.zeros(2, 3, 3, 3)), r"z_q of shape \(B, 3, 2, 2\)"),
        (lambda: model.decode_codes(torch.zeros(2, 3, 3, dtype=torch.long)), r"codes of shape \(B, 2, 2\)"),
        (lambda: model.decode_codes(torch.full((2, 2, 2), 8)), r"lie in \[0, 8\)"),
        (lambda: prior(torch.zeros(2, 4, 5)), "integer"),
        (lambda: prior(torch.zeros(2, 5, 4, dtype=torch.long)), r"codes of shape \(B, 4, 5\)"),
        (lambda: prior(torch.zeros(0, 4, 5, dtype=torch.long)), "B >= 1"),
        (lambda: prior.loss_terms(Batch(torch.zeros(2, 4, 5))), r"\(B, 1, h, w\)"),
        (lambda: prior.loss_terms(Batch(torch.full((2, 1, 4, 5), 0.5))), "must hold integers"),
        (lambda: prior.sample(0), "n must be a positive int"),
        (lambda: prior.sample(2, temperature=0.0), "temperature must be a positive float"),
        (lambda: perplexity(torch.zeros(0, dtype=torch.long), 4), "at least one code"),
        (lambda: code_counts(torch.zeros(3), 4), "integer"),
        (lambda: nearest_codes(torch.zeros(3, 2), torch.zeros(4, 3)), "same D"),
    ]
    for call, match in cases:
        with pytest.raises(ValueError, match=match):
            call()


@pytest.mark.parametrize("kwargs, match", [
    (dict(input_shape=(1, 28)), r"input_shape must be \(C, H, W\)"),
    (dict(channels=()), "channels must be a non-empty tuple"),
    (dict(input_shape=(1, 30, 30)), "divisible by 4"),
    (dict(code_dim=0), "code_dim must be a positive int"),
    (dict(codebook_size=2.5), "codebook_size must be a positive int"),
    (dict(commitment=-0.1), "commitment must be a float >= 0"),
    (dict(ema="yes"), "ema must be True or False"),
    (dict(decay=1.5), r"decay must be a float in \[0, 1\]"),
    (dict(epsilon=0.0), "epsilon must be a positive float"),
    (dict(restart_every=-1), "restart_every must be an int >= 0"),
    (dict(likelihood="gaussian"), "likelihood must be 'bernoulli'"),
])
def test_vqvae_config_validation(kwargs, match):
    with pytest.raises(ValueError, match=match):
        VQVAEConfig(**kwargs)


@pytest.mark.parametrize("kwargs, match", [
    (dict(grid=(7,)), r"grid must be \(h, w\)"),
    (dict(layers=0), "layers must be a positive int"),
    (dict(codebook_size=0), "codebook_size must be a positive int"),
])
def test_code_prior_config_validation(kwargs, match):
    with pytest.raises(ValueError, match=match):
        CodePriorConfig(**kwargs)


def test_configs_from_checkpoint_lists_become_tuples_and_grid_follows_the_channels():
    config = VQVAEConfig(input_shape=[1, 8, 8], channels=[4, 4, 4])
    assert config.input_shape == (1, 8, 8) and config.channels == (4, 4, 4) and config.grid == (1, 1)
    assert VQVAEConfig().grid == (7, 7)
    prior = CodePriorConfig(grid=[3, 4])
    assert prior.grid == (3, 4) and prior.input_shape == (1, 3, 4)
    with pytest.raises(ValueError, match="mask_type must be 'A' or 'B'"):
        MaskedConv2d("C", 1, 1, 3)
    with pytest.raises(ValueError, match="odd"):
        MaskedConv2d("A", 1, 1, 4)
