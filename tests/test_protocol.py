"""Tests for the training protocol: ``loss_terms(batch, weights) -> LossTerms`` and the one loop over it.

``fit``'s records are checked against an independent loop written out by hand below (its own
shuffle, its own ELBO, free bits and KL schedule from the formulas, Adam, the same seed). The two
compute the same numbers in a different order of floating-point operations, and nine Adam steps
amplify rounding differences a little, so History is compared with a relative tolerance of 1e-5:
seeded runs agree to about 1e-7, while every bug below (a dropped beta or free bits, a sum
overwritten instead of accumulated, a mean multiplied instead of divided, a lost shuffle or seed)
moves the numbers by 1e-3 or more. Everything else is compared exactly. The toy models are tiny
(8x8 digits, a linear map) so the file runs in a few seconds on one core.
"""
from __future__ import annotations

import copy
import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from vae_core.data import Dataset, load_digits
from vae_core.models import VAE, AutoEncoder, VAEConfig
from vae_core.reference import ReferenceConfig, ReferenceVAE
from vae_core.train import Batch, History, LossTerms, LossWeights, TrainConfig, evaluate, fit, kl_weight
from vae_core.utils import seed_everything

DIGITS = VAEConfig(input_shape=(1, 8, 8), latent_dim=4, hidden=(16,))
REL = 1e-5  # see the module docstring


@pytest.fixture(autouse=True)
def no_tqdm_monitor(monkeypatch):
    """No tqdm monitor thread: in a forked process (mutmut's test runner) it can hang the exit."""
    import tqdm

    monkeypatch.setattr(tqdm.tqdm, "monitor_interval", 0)


@pytest.fixture(scope="module")
def digits():
    train, test = load_digits("train"), load_digits("test")
    return train.subset(96), test.subset(40)


def quiet(**kw) -> TrainConfig:
    return TrainConfig(**{"progress": False, "batch_size": 32, **kw})


class Toy(nn.Module):
    """A conditional linear autoencoder with a VQ-style commitment term, x_hat = W x + E[y]; records
    every (batch, weights) it is handed. Optional terms show the protocol's reach: ``kl_1``/``kl_2``
    weighted by name, ``size`` = B per example, ``noise`` ~ U(0, 1) from the global RNG."""

    def __init__(self, extra: tuple[str, ...] = ()) -> None:
        super().__init__()
        self.lin = nn.Linear(64, 64)
        self.embed = nn.Embedding(10, 64)
        self.extra = extra
        self.seen: list[tuple[Batch, LossWeights]] = []

    def loss_terms(self, batch: Batch, weights: LossWeights) -> LossTerms:
        self.seen.append((batch, weights))
        x = batch.x.flatten(1)  # (B, 1, 8, 8) -> (B, 64)
        e = self.embed(batch.y)  # (B, 64)
        terms = {"recon": ((self.lin(x) + e - x) ** 2).sum(1), "commit": (e**2).sum(1)}
        if "kl" in self.extra:  # two "layers" of KL-like terms the loop's weight must reach by name
            terms["kl_1"] = (self.lin.weight**2).sum().expand(len(batch))
            terms["kl_2"] = 2 * terms["kl_1"]
        if "size" in self.extra:
            terms["size"] = torch.full((len(batch),), float(len(batch)))
        if "noise" in self.extra:
            terms["noise"] = torch.rand(len(batch))
        loss = sum(weights.weight(name) * t for name, t in terms.items() if name != "commit") + 0.25 * terms["commit"]
        return LossTerms(loss.mean(), terms)


def new_toy(*extra: str) -> Toy:
    torch.manual_seed(0)
    return Toy(extra)


def new_vae(seed: int = 0) -> VAE:
    torch.manual_seed(seed)
    return VAE(DIGITS)


# ------------------------------------------------------------------------------ the loop, by hand


def hand_elbo_terms(model: VAE, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """recon (B,) and the per-dimension KL (B, D) of one z sample, from the formulas."""
    mu, logvar = model.encode(x)
    z = mu + torch.exp(0.5 * logvar) * torch.randn_like(mu)
    recon = F.binary_cross_entropy_with_logits(model.decode(z), x, reduction="none").flatten(1).sum(1)
    kl = 0.5 * (mu**2 + logvar.exp() - 1 - logvar)  # KL(N(mu, s^2) || N(0, 1)) per dimension
    return recon, kl


def hand_loop(model: VAE, train: Dataset, test: Dataset, epochs: int, batch_size: int, lr: float, seed: int,
              beta: float, warmup: float, free_bits: float, eval_batch_size: int) -> dict[str, list[float]]:
    """Shuffle with a seeded generator, beta_t = beta * min(1, t / warmup), free bits on each
    dimension's batch-mean KL, Adam; test numbers from the same seed after every epoch."""
    seed_everything(seed)
    opt = torch.optim.Adam(model.parameters(), lr=lr, fused=True)
    order = torch.Generator().manual_seed(seed)
    n, n_batches = len(train), math.ceil(len(train) / batch_size)
    out: dict[str, list[float]] = {k: [] for k in ("train_recon", "train_kl", "test_recon", "test_kl", "beta")}
    for epoch in range(epochs):
        perm = torch.randperm(n, generator=order)
        recon_sum = kl_sum = beta_sum = 0.0
        for i in range(n_batches):
            x = train.images[perm[i * batch_size:(i + 1) * batch_size]]
            beta_t = beta * min(1.0, (epoch + i / n_batches) / warmup)
            recon, kl = hand_elbo_terms(model, x)
            loss = recon.mean() + beta_t * kl.mean(0).clamp(min=free_bits).sum()
            opt.zero_grad()
            loss.backward()
            opt.step()
            recon_sum += recon.sum().item()
            kl_sum += kl.sum().item()
            beta_sum += beta_t
        out["train_recon"].append(recon_sum / n)
        out["train_kl"].append(kl_sum / n)
        out["beta"].append(beta_sum / n_batches)
        with torch.random.fork_rng(), torch.no_grad():
            torch.manual_seed(seed)
            terms = [hand_elbo_terms(model, x) for x in test.images.split(eval_batch_size)]
        out["test_recon"].append(torch.cat([r for r, _ in terms]).mean().item())
        out["test_kl"].append(torch.cat([k.sum(1) for _, k in terms]).mean().item())
    return out


def test_history_matches_a_hand_written_loop(digits):
    train, test = digits
    cfg = quiet(epochs=3, seed=3, beta=2.0, kl_schedule="linear", warmup_epochs=1.5, free_bits=0.03, eval_batch_size=17)
    model = new_vae()
    twin = copy.deepcopy(model)
    history = fit(model, train, test, cfg)
    want = hand_loop(twin, train, test, cfg.epochs, cfg.batch_size, cfg.lr, cfg.seed, cfg.beta, cfg.warmup_epochs,
                     cfg.free_bits, cfg.eval_batch_size)
    assert history.epoch == [1, 2, 3]
    for key, values in want.items():
        assert getattr(history, key) == pytest.approx(values, rel=REL), key
    for split in ("train", "test"):
        recon, kl = getattr(history, f"{split}_recon"), getattr(history, f"{split}_kl")
        assert getattr(history, f"{split}_elbo") == pytest.approx([-(r + k) for r, k in zip(recon, kl)], rel=REL)
    assert history.beta[0] == pytest.approx((0 + 2 / 4.5 + 4 / 4.5) / 3)  # beta_t = 2 t / 1.5 at t = 0, 1/3, 2/3
    for p, q in zip(model.parameters(), twin.parameters()):
        torch.testing.assert_close(p, q, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("change", [{"beta": 0.5}, {"free_bits": 0.0}, {"kl_schedule": None}, {"seed": 4}])
def test_the_hand_written_loop_tells_settings_apart(digits, change):
    """The comparison above has teeth: the same loop with one setting changed is far outside REL."""
    train, test = digits
    cfg = quiet(epochs=2, seed=3, beta=2.0, kl_schedule="linear", warmup_epochs=1.5, free_bits=0.03, eval_batch_size=17)
    history = fit(new_vae(), train, test, cfg)
    other = {"beta": 2.0, "free_bits": 0.03, "kl_schedule": "linear", "seed": 3, **change}
    warmup = 1.5 if other["kl_schedule"] else 1e-12
    want = hand_loop(new_vae(), train, test, 2, 32, cfg.lr, other["seed"], other["beta"], warmup, other["free_bits"], 17)
    far = [k for k in ("train_recon", "train_kl", "test_recon", "test_kl") if getattr(history, k) != pytest.approx(want[k], rel=10 * REL)]
    assert far, f"changing {change} moved no recorded number by more than 10 * REL"


# ------------------------------------------------------------------------------ weights and schedules


def test_vae_loss_terms_apply_beta_and_free_bits_exactly():
    model = new_vae()
    x = load_digits("test").images[:50]
    for beta, free_bits in [(1.0, 0.0), (0.0, 0.0), (3.0, 0.0), (2.0, 0.05), (1.0, 10.0)]:
        torch.manual_seed(7)
        out = model.loss_terms(Batch(x), LossWeights(kl=beta, free_bits=free_bits))
        torch.manual_seed(7)
        recon, kl = hand_elbo_terms(model, x)
        torch.testing.assert_close(out.terms["recon"], recon)
        torch.testing.assert_close(out.terms["kl"], kl.sum(1))
        torch.testing.assert_close(out.elbo, -(recon + kl.sum(1)))
        # loss = mean_b recon + beta * sum_j max(lambda, mean_b KL_bj)   (Kingma et al. 2016, App. C.8)
        torch.testing.assert_close(out.loss, recon.mean() + beta * kl.mean(0).clamp(min=free_bits).sum())
    assert list(out.terms) == ["recon", "kl"]
    torch.manual_seed(7)
    default = model.loss_terms(Batch(x))  # default weights: the plain ELBO
    torch.testing.assert_close(default.loss, -default.elbo.mean())


def test_autoencoder_and_reference_vae_speak_the_protocol():
    x = load_digits("test").images[:20]
    torch.manual_seed(0)
    ae = AutoEncoder(DIGITS)
    out = ae.loss_terms(Batch(x), LossWeights(kl=5.0, free_bits=1.0))  # weights change nothing: no KL
    torch.testing.assert_close(out.terms["recon"], ae.reconstruction_error(x))
    assert torch.equal(out.terms["kl"], torch.zeros(20)) and out.elbo is None
    torch.testing.assert_close(out.loss, ae.reconstruction_error(x).mean())
    torch.manual_seed(0)
    ref = ReferenceVAE(ReferenceConfig(input_shape=(1, 8, 8), latent_dim=3, hidden=(16,)))
    for w in (LossWeights(), LossWeights(kl=2.0, free_bits=0.5)):
        torch.manual_seed(1)
        out = ref.loss_terms(Batch(x), w)
        torch.manual_seed(1)
        t = ref.elbo(x, beta=w.kl, free_bits=w.free_bits)
        assert torch.equal(out.loss, t.loss) and torch.equal(out.elbo, t.elbo)
        assert torch.equal(out.terms["recon"], t.recon) and torch.equal(out.terms["kl"], t.kl)


def test_loss_weights_apply_by_name():
    w = LossWeights(kl=0.25, free_bits=1.0)
    assert [w.weight(n) for n in ("kl", "kl_1", "kl_top", "recon", "commit", "klx")] == [0.25, 0.25, 0.25, 1.0, 1.0, 1.0]
    assert LossWeights() == LossWeights(kl=1.0, free_bits=0.0)


def test_fit_hands_the_model_the_scheduled_weights(digits):
    train, test = digits
    cfg = quiet(epochs=4, kl_schedule="cyclical", cycles=2, beta=3.0, free_bits=0.2, eval_batch_size=40)
    model = new_toy("kl")
    history = fit(model, train, test, cfg)
    seen = [w for _, w in model.seen]
    training = [w for (b, w) in model.seen if len(b) == 32]  # 3 training batches of 32 per epoch, 1 test batch of 40
    assert len(seen) == 4 * (3 + 1) and len(training) == 12
    assert [w.kl for w in training] == [kl_weight(e + i / 3, cfg) for e in range(4) for i in range(3)]
    assert [w.kl for w in training][:3] == [0.0, 1.0, 2.0]  # beta * min(1, tau / 0.5), tau = t / 2
    assert all(w.free_bits == 0.2 for w in training)
    assert all(w == LossWeights(kl=1.0, free_bits=0.0) for (b, w) in model.seen if len(b) == 40)  # evaluation
    assert history.beta == pytest.approx([sum(kl_weight(e + i / 3, cfg) for i in range(3)) / 3 for e in range(4)])
    assert set(history.train) == {"recon", "kl", "elbo", "commit", "kl_1", "kl_2"}
    assert history.train["kl_2"] == pytest.approx([2 * v for v in history.train["kl_1"]])


def test_the_loss_fit_minimises_is_the_one_the_model_returns(digits):
    """With kl_1 weighted by beta_t = 0 the loop must not shrink W through the KL terms: ``fit``
    minimises exactly ``LossTerms.loss`` (compare: the same run with beta = 1)."""
    train, _ = digits
    zero = new_toy("kl")
    fit(zero, train, None, quiet(epochs=2, beta=0.0))
    one = new_toy("kl")
    fit(one, train, None, quiet(epochs=2, beta=1.0))
    assert (one.lin.weight**2).sum() < 0.9 * (zero.lin.weight**2).sum()


# ------------------------------------------------------------------------------ batches: shuffle, labels


class Order(nn.Module):
    """Records the labels and images of every batch; its loss is a plain squared error."""

    def __init__(self):
        super().__init__()
        self.w = nn.Parameter(torch.zeros(()))
        self.seen: list[Batch] = []

    def loss_terms(self, batch, weights):
        self.seen.append(batch)
        err = ((batch.x.flatten(1) - self.w) ** 2).sum(1)
        return LossTerms(err.mean(), {"recon": err})


def test_fit_shuffles_every_epoch_with_its_seed(digits):
    train, _ = digits
    index = torch.arange(len(train))
    indexed = Dataset(train.images, index, "indexed")  # labels = row numbers: the model sees the order

    def orders(seed: int) -> list[torch.Tensor]:
        m = Order()
        fit(m, indexed, None, quiet(epochs=3, seed=seed))
        assert all(torch.equal(b.x, train.images[b.y]) for b in m.seen)  # each label travels with its image
        return [torch.cat([b.y for b in m.seen[3 * e:3 * e + 3]]) for e in range(3)]

    first = orders(5)
    gen = torch.Generator().manual_seed(5)
    for epoch in first:  # a fresh permutation each epoch, from a generator seeded with config.seed
        assert torch.equal(epoch, torch.randperm(len(train), generator=gen))
    assert not torch.equal(first[0], index) and not torch.equal(first[0], first[1])
    assert all(torch.equal(a, b) for a, b in zip(first, orders(5)))
    assert not torch.equal(first[0], orders(6)[0])
    m = Order()
    evaluate(m, indexed, batch_size=32)
    assert torch.equal(torch.cat([b.y for b in m.seen]), index)  # evaluation keeps the data's order


def test_a_tensor_has_no_labels(digits):
    train, _ = digits
    m = Order()
    fit(m, train.images, train.images[:10], quiet(epochs=1))
    assert len(m.seen) == 4 and all(b.y is None and b.lengths is None for b in m.seen)


# ------------------------------------------------------------------------------ evaluate


def test_evaluate_uses_its_batch_size_and_seed(digits):
    _, test = digits  # 40 images
    model = new_toy("size", "noise")
    ev = evaluate(model, test, batch_size=17)
    assert ev["size"] == (17 * 17 + 17 * 17 + 6 * 6) / 40  # batches of 17, 17, 6: the mean of B over examples
    assert evaluate(model, test)["size"] == 40.0  # default 1000: one batch
    torch.manual_seed(0)  # the default seed, then one draw per batch
    assert ev["noise"] == pytest.approx(torch.cat([torch.rand(17), torch.rand(17), torch.rand(6)]).mean().item(), rel=1e-6)
    assert evaluate(model, test, batch_size=17, seed=1)["noise"] != ev["noise"]
    assert list(ev)[:3] == ["recon", "kl", "elbo"] and math.isnan(ev["kl"]) and math.isnan(ev["elbo"])
    assert ev["recon"] == pytest.approx(model.loss_terms(Batch(test.images, test.labels), LossWeights()).terms["recon"].mean().item(), rel=1e-6)


def test_fit_evaluates_with_its_seed_and_eval_batch_size(digits):
    train, test = digits
    model = new_toy("size", "noise")
    history = fit(model, train, test, quiet(epochs=2, seed=9, eval_batch_size=17, eval_every=2))
    assert history.test["size"] == [pytest.approx(math.nan, nan_ok=True), (2 * 17 * 17 + 6 * 6) / 40]
    assert history.test["noise"][-1] == evaluate(model, test, batch_size=17, seed=9)["noise"]
    assert history.test["noise"][-1] != evaluate(model, test, batch_size=17, seed=0)["noise"]
    assert history.train["size"] == [32.0, 32.0]  # 96 examples in batches of 32


# ------------------------------------------------------------------------------ History


def test_a_model_with_labels_and_extra_terms_trains_through_fit(digits, tmp_path):
    train, test = digits
    model = new_toy()
    before = evaluate(model, test)["recon"]
    history = fit(model, train, test, quiet(epochs=4, lr=3e-2))
    assert history.test["recon"][-1] < 0.5 * before  # seeded run: 76 -> 24
    assert history.test["commit"][-1] < history.test["commit"][0]  # 53 -> 37
    assert set(history.train) == {"recon", "kl", "elbo", "commit"} == set(history.terms("test"))
    assert all(math.isnan(v) for v in history.train_kl + history.train_elbo + history.test_elbo)
    assert history.other["train_commit"] is history.train["commit"] and len(history.test["commit"]) == 4
    ev = evaluate(model, test)
    assert history.test["commit"][-1] == ev["commit"] and history.test_recon[-1] == ev["recon"]
    d = history.as_dict()
    assert list(d)[-2:] == ["train_commit", "test_commit"] and d["train_commit"] == history.train["commit"]
    torch.save({"history": d}, tmp_path / "h.pt")
    loaded = torch.load(tmp_path / "h.pt", weights_only=True)["history"]
    assert list(loaded) == list(d) and all(loaded[k] == pytest.approx(v, nan_ok=True) for k, v in d.items())
    with pytest.raises(ValueError, match="split must be 'train' or 'test', got 'valid'"):
        history.terms("valid")


def test_history_pads_terms_that_an_epoch_did_not_report():
    h = History()
    h._append(1, {"recon": 1.0, "commit": 2.0}, {}, 0.5, 0.1)
    h._append(2, {"recon": 3.0, "commit": 4.0}, {"recon": 5.0, "commit": 6.0}, 1.0, 0.2)
    h._append(3, {"recon": 7.0, "commit": 8.0}, {}, 1.0, 0.3)
    got = h.as_dict()
    nan = math.nan
    want = {
        "epoch": [1, 2, 3], "train_recon": [1.0, 3.0, 7.0], "train_kl": [nan] * 3, "train_elbo": [nan] * 3,
        "test_recon": [nan, 5.0, nan], "test_kl": [nan] * 3, "test_elbo": [nan] * 3, "beta": [0.5, 1.0, 1.0],
        "seconds": [0.1, 0.2, 0.3], "train_commit": [2.0, 4.0, 8.0], "test_commit": [nan, 6.0, nan],
    }
    assert list(got) == list(want)
    for key, values in want.items():  # NaN (a float), not None: the columns stay plain floats
        assert all(type(v) is type(w) for v, w in zip(got[key], values)), key
        assert got[key] == pytest.approx(values, nan_ok=True), key
    assert len(h) == 3


# ------------------------------------------------------------------------------ errors


def test_a_model_without_the_protocol_is_refused_with_the_signature(digits):
    train, _ = digits

    class Old(nn.Module):  # the pre-protocol VAE interface alone
        def __init__(self):
            super().__init__()
            self.lin = nn.Linear(64, 64)

        def elbo(self, x, beta=1.0, free_bits=0.0):
            raise AssertionError("never called")

    for call in (lambda: fit(Old(), train, None, quiet()), lambda: evaluate(Old(), train)):
        with pytest.raises(ValueError, match=r"model must be an nn.Module with the training protocol's method "
                                             r"loss_terms\(batch: Batch, weights: LossWeights\) -> LossTerms .*got Old"):
            call()


@pytest.mark.parametrize(
    "returned, message",
    [
        (lambda b: (b.x.sum(), {"recon": b.x.flatten(1).sum(1)}), r"Bad.loss_terms must return a LossTerms\(loss, terms, elbo\), got tuple"),
        (lambda b: LossTerms(b.x.sum(), {"recon": b.x.flatten(1).sum(1)[:3]}), r"returned terms of shape \(3,\) for a batch of 32; expected \(32,\)"),
    ],
)
def test_bad_loss_terms_are_named(digits, returned, message):
    train, _ = digits

    class Bad(nn.Module):
        def __init__(self):
            super().__init__()
            self.w = nn.Parameter(torch.zeros(()))

        def loss_terms(self, batch, weights):
            return returned(batch)

    with pytest.raises(ValueError, match=message):
        fit(Bad(), train, None, quiet())


def test_terms_must_not_change_between_batches(digits):
    train, _ = digits

    class Fickle(nn.Module):
        def __init__(self):
            super().__init__()
            self.w = nn.Parameter(torch.zeros(()))
            self.calls = 0

        def loss_terms(self, batch, weights):
            self.calls += 1
            err = ((batch.x.flatten(1) - self.w) ** 2).sum(1)
            return LossTerms(err.mean(), {"recon" if self.calls == 1 else "error": err})

    with pytest.raises(ValueError, match=r"the same terms for every batch: it reported \('recon',\), then \('error',\)"):
        fit(Fickle(), train, None, quiet())


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda t: LossTerms(t, {"recon": t}), r"LossTerms.loss must be a scalar tensor .*got \(4,\)"),
        (lambda t: LossTerms(t.mean(), {}), "LossTerms.terms must be a non-empty dict"),
        (lambda t: LossTerms(t.mean(), {"elbo": t}), "names must be identifiers .*got 'elbo'"),
        (lambda t: LossTerms(t.mean(), {"kl 1": t}), "names must be identifiers .*got 'kl 1'"),
        (lambda t: LossTerms(t.mean(), {"recon": t[:, None]}), r"terms\['recon'\] must have shape \(B,\), one value per example, got \(4, 1\)"),
        (lambda t: LossTerms(t.mean(), {"recon": t, "kl": t[:3]}), r"terms\['kl'\] must have shape \(4,\) like the terms before it, got \(3,\)"),
        (lambda t: LossTerms(t.mean(), {"recon": t}, t[:2]), r"LossTerms.elbo must be None or have the terms' shape \(4,\), got \(2,\)"),
    ],
)
def test_loss_terms_validate_their_shapes(make, message):
    with pytest.raises(ValueError, match=message):
        make(torch.zeros(4))


def test_batch_validates_its_rows():
    x = torch.zeros(4, 1, 8, 8)
    assert len(Batch(x, torch.arange(4), torch.ones(4))) == 4
    with pytest.raises(ValueError, match=r"Batch.y must be None or a tensor with 4 rows to match x \(4, 1, 8, 8\), got \(3,\)"):
        Batch(x, torch.arange(3))
    with pytest.raises(ValueError, match=r"Batch.lengths must be None or a tensor with 4 rows"):
        Batch(x, None, [1, 2, 3, 4])
    with pytest.raises(ValueError, match=r"Batch.x must be a tensor with a batch dimension"):
        Batch(torch.tensor(1.0))
