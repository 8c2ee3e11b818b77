"""Tests for vae_core.train: KL schedules, the training loop, evaluation and checkpoints.

Training runs use scikit-learn's 8x8 digits (a few hundred images, a handful of epochs) so the
file stays within a few seconds on one core. Runs are seeded and CPU-deterministic, so
"the loss went down" is checked with a margin well inside what the seeded run achieves
(about 45 -> 31 nats on the test set for the setting below) rather than with a statistical
tolerance; kl_weight values and checkpoint round trips are compared exactly.
"""
from __future__ import annotations

import dataclasses
import math
import time
from types import SimpleNamespace

import pytest
import torch

from vae_core.data import Dataset, load_digits
from vae_core.models import VAE, AutoEncoder, VAEConfig, pytorch_examples_config
from vae_core.train import History, TrainConfig, evaluate, fit, kl_weight, load_checkpoint, save_checkpoint

DIGITS = VAEConfig(input_shape=(1, 8, 8), latent_dim=4, hidden=(64,))


@pytest.fixture(autouse=True)
def no_tqdm_monitor(monkeypatch):
    """No tqdm monitor thread: in a forked process (mutmut's test runner) it can hang the exit."""
    import tqdm

    monkeypatch.setattr(tqdm.tqdm, "monitor_interval", 0)


@pytest.fixture(scope="module")
def digits():
    return load_digits("train").subset(600), load_digits("test")


def quiet(**kw) -> TrainConfig:
    return TrainConfig(progress=False, batch_size=32, **kw)


def new_vae(config: VAEConfig = DIGITS, seed: int = 0) -> VAE:
    torch.manual_seed(seed)
    return VAE(config)


# ------------------------------------------------------------------------------------------ kl_weight


def test_kl_weight_constant():
    cfg = TrainConfig(beta=4.0)
    assert [kl_weight(t, cfg) for t in (0, 0.5, 3, 100)] == [4.0, 4.0, 4.0, 4.0]


def test_kl_weight_linear_warmup():
    cfg = TrainConfig(beta=2.0, kl_schedule="linear", warmup_epochs=4)
    # beta * min(1, t / warmup)
    assert [kl_weight(t, cfg) for t in (0, 1, 2, 3.5, 4, 7)] == [0.0, 0.5, 1.0, 1.75, 2.0, 2.0]
    assert kl_weight(0.0, dataclasses.replace(cfg, warmup_epochs=0)) == 2.0


def test_kl_weight_cyclical_fu_et_al():
    # 8 epochs, 2 cycles -> period 4; ramp over the first half (R = 0.5), then beta
    cfg = TrainConfig(epochs=8, beta=1.0, kl_schedule="cyclical", cycles=2, cycle_ratio=0.5)
    got = [kl_weight(t, cfg) for t in (0, 0.5, 1, 1.5, 2, 3.9, 4, 5, 6, 7.5)]
    assert got == [0.0, 0.25, 0.5, 0.75, 1.0, 1.0, 0.0, 0.5, 1.0, 1.0]


@pytest.mark.parametrize("epochs", [3, 7, 10, 12])
@pytest.mark.parametrize("cycles", [1, 3, 4, 6, 7])
def test_kl_weight_cyclical_restarts_at_zero_at_every_cycle_start(epochs, cycles):
    """Against exact rational arithmetic: at t = k * epochs / cycles the weight is 0, and at every
    integer epoch it is beta * min(1, frac(t cycles / epochs) / R). A float `%` got
    kl_weight(5, epochs=10, cycles=6) = beta (a cycle end) instead of 0."""
    from fractions import Fraction

    cfg = TrainConfig(epochs=epochs, beta=2.0, kl_schedule="cyclical", cycles=cycles, cycle_ratio=0.5)
    for k in range(cycles):
        start = k * epochs / cycles
        assert kl_weight(start, cfg) == 0.0, f"cycle {k} starts at epoch {start}"
    for t in range(epochs + 1):
        pos = Fraction(t * cycles, epochs)
        tau = pos - (pos.numerator // pos.denominator)
        want = 2.0 * min(1.0, float(tau) / 0.5)
        assert kl_weight(float(t), cfg) == pytest.approx(want, abs=1e-12), f"epoch {t}"


def test_kl_weight_cyclical_restarts_at_zero_despite_rounding():
    # epochs=3, cycles=10: period 0.3; t = 0.1 * 3 = 0.30000000000000004 puts the position at
    # 1.0000000000000002 cycles, a cycle start up to rounding: the weight is 0 there, not 4e-16.
    cfg = TrainConfig(epochs=3, beta=1.0, kl_schedule="cyclical", cycles=10, cycle_ratio=0.5)
    starts = [0.1 * 3 * k for k in (1, 2, 3, 4, 6, 8)]
    assert [t * 10 / 3 == round(t * 10 / 3) for t in starts] == [False] * 6  # none is exact
    assert [kl_weight(t, cfg) for t in starts] == [0.0] * 6


def test_kl_weight_needs_a_train_config():
    with pytest.raises(ValueError, match="config must be a TrainConfig, got NoneType"):
        kl_weight(1.0, None)


def test_kl_weight_rejects_negative_time():
    with pytest.raises(ValueError, match="epoch must be a float >= 0, got -1"):
        kl_weight(-1, TrainConfig())


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"epochs": 0}, "epochs must be a positive int, got 0"),
        ({"lr": 0.0}, "lr must be a positive float"),
        ({"beta": -1.0}, r"beta must be a float >= 0"),
        ({"kl_schedule": "cosine"}, "kl_schedule must be None, 'linear' or 'cyclical', got 'cosine'"),
        ({"cycle_ratio": 0.0}, r"cycle_ratio must be in \(0, 1\]"),
        ({"free_bits": -0.1}, "free_bits must be a float >= 0"),
        ({"clip_grad": 0.0}, "clip_grad must be None or a positive float"),
        ({"device": "tpu"}, "device must be None, 'cpu' or 'cuda', got 'tpu'"),
        ({"seed": -1}, "seed must be a non-negative int"),
        ({"lr": "0.1"}, "lr must be a positive float"),
        ({"lr": True}, "lr must be a positive float"),
        ({"lr": float("inf")}, "lr must be a positive float"),
        ({"warmup_epochs": -1.0}, "warmup_epochs must be a float >= 0"),
        ({"cycle_ratio": 1.5}, r"cycle_ratio must be in \(0, 1\]"),
    ],
)
def test_train_config_validation(kwargs, message):
    with pytest.raises(ValueError, match=message):
        TrainConfig(**kwargs)


def test_train_config_accepts_the_edges():
    cfg = TrainConfig(cycle_ratio=1.0, warmup_epochs=0.0, free_bits=0.0, beta=0.0)
    assert (cfg.cycle_ratio, cfg.warmup_epochs) == (1.0, 0.0)


# ------------------------------------------------------------------------------------------ fit


def test_fit_lowers_the_loss_on_digits(digits):
    train, test = digits
    model = new_vae()
    before = evaluate(model, test)
    history = fit(model, train, test, quiet(epochs=4))
    assert isinstance(history, History) and history.epoch == [1, 2, 3, 4]
    assert before["elbo"] < -44  # an untrained decoder: about 64 * log 2 = 44.4 nats
    assert history.test_elbo[-1] > before["elbo"] + 8  # seeded run: -45.2 -> -31.0
    assert history.train_elbo[-1] > history.train_elbo[0] + 5
    for name in ("train", "test"):
        recon, kl, elbo = (getattr(history, f"{name}_{k}")[-1] for k in ("recon", "kl", "elbo"))
        assert kl >= 0 and elbo == pytest.approx(-(recon + kl))
    assert history.test_elbo[-1] == pytest.approx(evaluate(model, test)["elbo"])
    assert all(s > 0 for s in history.seconds) and history.beta == [1.0] * 4
    assert list(history.as_dict()) == ["epoch", "train_recon", "train_kl", "train_elbo", "test_recon", "test_kl",
                                       "test_elbo", "beta", "seconds"]  # the columns checkpoints and lessons read


def test_fit_is_reproducible_with_a_seed(digits):
    train, test = digits
    runs = [fit(new_vae(), train.subset(200), test, quiet(epochs=2, seed=3)).as_dict() for _ in range(2)]
    runs = [{k: v for k, v in r.items() if k != "seconds"} for r in runs]
    assert runs[0] == runs[1]
    other = fit(new_vae(), train.subset(200), test, quiet(epochs=2, seed=4)).as_dict()
    assert other["train_elbo"] != runs[0]["train_elbo"]


def test_fit_records_the_scheduled_beta(digits):
    train, _ = digits
    data = train.subset(96)  # 3 batches of 32 per epoch
    cfg = quiet(epochs=2, kl_schedule="linear", warmup_epochs=2)
    history = fit(new_vae(), data, None, cfg)
    expected = [sum(kl_weight(e + i / 3, cfg) for i in range(3)) / 3 for e in range(2)]
    assert history.beta == pytest.approx(expected)  # [1/6, 2/3]
    assert all(math.isnan(v) for v in history.test_elbo)  # no test set


def test_fit_honours_dynamic_binarization(digits):
    train, _ = digits
    grey = train.subset(64)
    seen = []

    class Spy(VAE):
        def elbo(self, x, beta=1.0, free_bits=0.0):
            seen.append(x.clone())
            return super().elbo(x, beta, free_bits)

    torch.manual_seed(0)
    dynamic = Dataset(grey.images, grey.labels, "digits", binarize="dynamic")
    fit(Spy(DIGITS), dynamic, None, quiet(epochs=2))
    assert all(((x == 0) | (x == 1)).all() for x in seen)
    first, second = torch.cat(seen[:2]), torch.cat(seen[2:])
    assert not torch.equal(first.sort(0).values, second.sort(0).values)  # fresh draws each epoch
    seen.clear()
    fit(Spy(DIGITS), grey, None, quiet(epochs=1))
    assert any(((x > 0) & (x < 1)).any() for x in seen)  # grey data stays grey


def test_fit_trains_an_autoencoder(digits):
    train, test = digits
    torch.manual_seed(0)
    model = AutoEncoder(DIGITS)
    before = evaluate(model, test)
    history = fit(model, train, test, quiet(epochs=3))
    assert history.test_recon[-1] < before["recon"] - 5
    assert history.train_kl == [0.0] * 3 and all(math.isnan(v) for v in history.test_elbo)
    assert math.isnan(before["elbo"]) and before["kl"] == 0


def test_nan_loss_stops_with_epoch_and_batch_named(digits):
    train, _ = digits

    def poison(epoch, model, history):  # corrupt a weight after epoch 1: epoch 2, batch 1 must fail
        with torch.no_grad():
            model.encoder.heads.mu.weight[0, 0] = float("nan")

    with pytest.raises(FloatingPointError, match=r"loss became nan at epoch 2/3, batch 1/19\. Try a lower learning rate") as info:
        fit(new_vae(), train, None, quiet(epochs=3), callbacks=[poison])
    assert len(info.value.history) == 1  # the completed epoch is kept
    assert "clip_grad" in str(info.value)


def test_huge_learning_rate_is_caught(digits):
    train, _ = digits
    with pytest.raises(FloatingPointError, match=r"at epoch \d+/5, batch \d+/19.*lr=1e\+06 now"):
        fit(new_vae(), train, None, quiet(epochs=5, lr=1e6))


def test_poisoned_batch_is_caught(digits):
    train, _ = digits
    images = train.images.clone()
    images[:] = float("nan")
    with pytest.raises(FloatingPointError, match=r"epoch 1/1, batch 1/19"):
        fit(new_vae(), images, None, quiet(epochs=1))


def test_callback_can_stop_training_and_clip_grad_runs(digits):
    train, _ = digits
    seen = []
    model = new_vae()
    start = time.perf_counter()
    history = fit(model, train.subset(64), None, quiet(epochs=5, clip_grad=1.0),
                  callbacks=[lambda e, m, h: seen.append((e, m, h, len(h))), lambda e, m, h: e == 2])
    assert history.epoch == [1, 2]
    assert [(e, n) for e, _, _, n in seen] == [(1, 1), (2, 2)]
    assert all(m is model and h is history for _, m, h, _ in seen)
    assert all(0 < s < time.perf_counter() - start for s in history.seconds)


def test_progress_bars_only_when_asked(digits, capsys):
    train, _ = digits
    fit(new_vae(), train.subset(64), None, TrainConfig(epochs=1, batch_size=32, progress=False))
    assert capsys.readouterr().err == ""
    fit(new_vae(), train.subset(64), None, TrainConfig(epochs=1, batch_size=32, progress=True))
    err = capsys.readouterr().err
    assert "epochs" in err and "0/2 [" in err  # the epoch bar, and the batch bar knows its length


def test_progress_bars_show_the_loss_and_the_bound(digits, capsys):
    train, test = digits
    cfg = TrainConfig(epochs=1, batch_size=32, progress=True)
    history = fit(new_vae(), train.subset(64), test.subset(50), cfg)
    err = capsys.readouterr().err
    for part in ("epoch 1:", "batch/s", "epoch/s", f"train_elbo={history.train_elbo[-1]:.2f}",
                 f"test_elbo={history.test_elbo[-1]:.2f}"):
        assert part in err, part
    torch.manual_seed(0)
    history = fit(AutoEncoder(DIGITS), train.subset(64), test.subset(50), cfg)  # no ELBO: the reconstruction
    err = capsys.readouterr().err
    assert f"train_recon={history.train_recon[-1]:.2f}" in err and f"test_recon={history.test_recon[-1]:.2f}" in err
    assert "elbo" not in err


def test_fit_defaults_to_train_config(digits, capsys):
    history = fit(new_vae(), digits[0].subset(20), None)  # TrainConfig(): 10 epochs of one batch, with bars
    assert history.epoch == list(range(1, 11)) and "epochs" in capsys.readouterr().err


def test_adam_is_fused_where_pytorch_has_it_and_plain_elsewhere(monkeypatch):
    from vae_core import train as train_module

    model = new_vae()
    opt = train_module._adam(model, 0.02, torch.device("cpu"))
    assert opt.defaults["fused"] is True and opt.defaults["lr"] == 0.02
    assert [p for g in opt.param_groups for p in g["params"]] == list(model.parameters())
    real = torch.optim.Adam

    def no_fused(params, lr, **kw):
        if kw.get("fused"):
            raise RuntimeError("fused=True requires all the params to be floating point Tensors of supported devices")
        return real(params, lr=lr, **kw)

    monkeypatch.setattr(torch.optim, "Adam", no_fused)
    opt = train_module._adam(model, 0.02, torch.device("cpu"))
    assert not opt.defaults["fused"] and opt.defaults["lr"] == 0.02
    assert [p for g in opt.param_groups for p in g["params"]] == list(model.parameters())


def test_fit_rejects_bad_inputs(digits):
    train, test = digits
    with pytest.raises(ValueError, match=r"train holds images of shape \(1, 8, 8\) but the model expects \(1, 28, 28\)"):
        fit(VAE(pytorch_examples_config()), train, None, quiet())
    with pytest.raises(ValueError, match=r"train images must be a non-empty \(N, C, H, W\) tensor, got \(600, 64\)"):
        fit(new_vae(), train.images.flatten(1), None, quiet())
    with pytest.raises(ValueError, match=r"model must be an nn.Module with .* loss_terms\(batch: Batch, weights: LossWeights\) -> LossTerms .*got Linear"):
        fit(torch.nn.Linear(2, 2), train, None, quiet())
    with pytest.raises(ValueError, match="config must be a TrainConfig"):
        fit(new_vae(), train, None, {"epochs": 1})
    with pytest.raises(ValueError, match=r"train images must be a non-empty \(N, C, H, W\) tensor, got \(0, 1, 8, 8\)"):
        fit(new_vae(), train.images[:0], None, quiet())


def test_fit_takes_any_object_with_images(digits):
    train, test = digits
    history = fit(new_vae(), SimpleNamespace(images=train.images[:1]), SimpleNamespace(images=test.images[:1]), quiet(epochs=1))
    assert len(history) == 1 and not math.isnan(history.test_elbo[0])  # one example is a dataset too


def test_evaluate_matches_a_direct_computation(digits):
    _, test = digits
    model = new_vae()
    state = torch.random.get_rng_state()
    got = evaluate(model, test, batch_size=100, seed=5)
    assert torch.equal(torch.random.get_rng_state(), state)  # evaluation leaves the global RNG alone
    torch.manual_seed(5)
    chunks = [model.elbo(x) for x in test.images.split(100)]  # the same z draws, in the same order
    recon = torch.cat([t.recon for t in chunks]).mean().item()
    kl = torch.cat([t.kl for t in chunks]).mean().item()
    assert got["recon"] == pytest.approx(recon, rel=1e-6)
    assert got["kl"] == pytest.approx(kl, rel=1e-6)
    assert got["elbo"] == pytest.approx(-(recon + kl), rel=1e-6)


# ------------------------------------------------------------------------------------------ checkpoints


@pytest.mark.parametrize("kind", [VAE, AutoEncoder])
@pytest.mark.parametrize("arch", ["mlp", "conv"])
def test_checkpoint_round_trip_is_exact(tmp_path, kind, arch):
    torch.manual_seed(0)
    model = kind(dataclasses.replace(DIGITS, arch=arch, hidden=(32, 16), likelihood="gaussian", gaussian_logvar=-2.0))
    extra = {"history": History(epoch=[1], train_elbo=[-1.5]).as_dict(), "note": "digits", "t": torch.arange(3)}
    path = save_checkpoint(tmp_path / "runs" / "lesson" / "model.pt", model, extra=extra)
    loaded, extra2 = load_checkpoint(path, device="cpu")
    assert type(loaded) is kind and loaded.config == model.config and not loaded.training
    assert extra2["history"] == extra["history"] and extra2["note"] == "digits" and torch.equal(extra2["t"], extra["t"])
    x = load_digits("test").images[:7]
    assert torch.equal(loaded.reconstruct(x), model.reconstruct(x))
    z = torch.randn(5, 4)
    assert torch.equal(loaded.decode(z), model.decode(z))
    assert not (tmp_path / "runs" / "lesson" / "model.pt.tmp").exists()
    bare = save_checkpoint(tmp_path / "bare.pt", model)
    assert torch.load(bare, weights_only=True)["extra"] == {}


def test_missing_checkpoint(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"no checkpoint at .*nope\.pt; train a model with fit"):
        load_checkpoint(tmp_path / "nope.pt")


def test_corrupt_checkpoints(tmp_path):
    good = save_checkpoint(tmp_path / "good.pt", new_vae())
    truncated = tmp_path / "truncated.pt"
    truncated.write_bytes(good.read_bytes()[:500])
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"not a checkpoint at all")
    for bad in (truncated, garbage):
        with pytest.raises(ValueError, match=r"could not read .* as a vae_core checkpoint"):
            load_checkpoint(bad)
    other = tmp_path / "other.pt"
    torch.save({"weights": torch.zeros(2)}, other)
    with pytest.raises(ValueError, match=r"not a vae_core checkpoint \(missing format, model, config, state_dict\)"):
        load_checkpoint(other)
    unsafe = tmp_path / "unsafe.pt"
    torch.save({"format": "vae_core.checkpoint/1", "model": "VAE", "obj": TrainConfig()}, unsafe)
    with pytest.raises(ValueError, match="could not read"):  # weights_only refuses arbitrary classes
        load_checkpoint(unsafe)
    payload = torch.load(good, weights_only=True)
    for key, value in (("format", "other/9"), ("model", "GAN")):
        wrong = tmp_path / f"wrong_{key}_value.pt"
        torch.save({**payload, key: value}, wrong)
        with pytest.raises(ValueError, match=r"has format .* / model .*; expected 'vae_core.checkpoint/1' with one of \[.*'AutoEncoder'.*'VAE'.*\]"):
            load_checkpoint(wrong)
    for key, value in (("state_dict", [torch.zeros(2)]), ("config", ["latent_dim", 4])):
        wrong = tmp_path / f"wrong_{key}.pt"
        torch.save({**payload, key: value}, wrong)
        with pytest.raises(ValueError, match=rf"{key} must be a dict, got list; .*save_checkpoint"):
            load_checkpoint(wrong)


def test_checkpoint_refuses_unloadable_extra(tmp_path):
    with pytest.raises(ValueError, match=r"extra\['cfg'\] is a TrainConfig, which torch.load\(weights_only=True\) cannot read back"):
        save_checkpoint(tmp_path / "m.pt", new_vae(), extra={"cfg": TrainConfig()})
    with pytest.raises(ValueError, match=r"extra\['runs'\]\[1\]\[0\] is a TrainConfig"):
        save_checkpoint(tmp_path / "m.pt", new_vae(), extra={"runs": [1, (TrainConfig(),)]})
    with pytest.raises(ValueError, match=r"extra keys must be str or int, got tuple"):
        save_checkpoint(tmp_path / "m.pt", new_vae(), extra={(1, 2): 3})

    class Lookalike(torch.nn.Module):  # a VAEConfig does not make a model save_checkpoint can rebuild
        config = DIGITS

    with pytest.raises(ValueError, match=r"save_checkpoint saves the vae_core models \[.*'AutoEncoder'.*'VAE'.*got Lookalike; .*register_model"):
        save_checkpoint(tmp_path / "m.pt", Lookalike())
    assert not (tmp_path / "m.pt").exists()


def test_register_model_round_trips_a_new_class_and_refuses_a_namesake(tmp_path, monkeypatch):
    import dataclasses

    from vae_core import train as train_mod

    @dataclasses.dataclass
    class TinyConfig:
        width: int = 3

    class Tiny(torch.nn.Module):
        def __init__(self, config):
            super().__init__()
            self.config = config
            self.lin = torch.nn.Linear(config.width, 2)

    monkeypatch.setattr(train_mod, "_MODELS", dict(train_mod._MODELS))
    model = Tiny(TinyConfig(width=5))
    with pytest.raises(ValueError, match="got Tiny"):
        save_checkpoint(tmp_path / "t.pt", model)  # not registered yet
    assert train_mod.register_model(Tiny, TinyConfig) is Tiny
    save_checkpoint(tmp_path / "t.pt", model, extra={"k": 1})
    loaded, extra = load_checkpoint(tmp_path / "t.pt", device="cpu")
    assert type(loaded) is Tiny and loaded.config == TinyConfig(width=5) and extra == {"k": 1}
    torch.testing.assert_close(loaded.lin.weight, model.lin.weight)

    Namesake = type("Tiny", (torch.nn.Module,), {})  # same name, another class: not what load would rebuild
    impostor = Namesake()
    impostor.config = TinyConfig()
    with pytest.raises(ValueError, match="got Tiny"):
        save_checkpoint(tmp_path / "i.pt", impostor)
    with pytest.raises(ValueError, match="takes an nn.Module class and a dataclass"):
        train_mod.register_model(Tiny, dict)
