"""Train and write the checkpoints shipped in ``vae_core/checkpoints/`` (seeded, one command each).

::

    OMP_NUM_THREADS=1 .venv/bin/python scripts/make_checkpoints.py lesson04_vae      # one checkpoint
    OMP_NUM_THREADS=1 .venv/bin/python scripts/make_checkpoints.py --all             # all of them
    .venv/bin/python scripts/make_checkpoints.py --list                              # what each one is

Each checkpoint is written with ``vae_core.train.save_checkpoint`` (state_dict + config + plain
``extra``, readable with ``torch.load(weights_only=True)``); the reference model uses
``vae_core.reference.save_reference``. ``extra`` holds ``history`` (``History.as_dict()``),
``epochs``, the ``TrainConfig`` as a dict, the data used, the seed and the command.

``vae_core/checkpoints/checkpoints.json`` records, for each file: the command that made it, the
seeds, the data, the size, and its ELBO on a fixed evaluation set (the first ``n`` test images,
binarized once with a fixed seed for models trained on binarized data, one z sample per image
drawn under ``torch.manual_seed(z_seed)``). ``tests/test_checkpoints.py`` recomputes that ELBO from
the shipped file and compares.
"""
from __future__ import annotations

import argparse
import dataclasses
import fcntl
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from vae_core import CHECKPOINT_DIR, seed_everything  # noqa: E402
from vae_core.data import bernoulli_binarize, load_mnist, sprite_grid  # noqa: E402
from vae_core.diagnostics import ActiveUnitsMonitor  # noqa: E402
from vae_core.models import VAE, AutoEncoder, VAEConfig, pytorch_examples_config  # noqa: E402
from vae_core.reference import ReferenceConfig, ReferenceVAE, load_reference, save_reference  # noqa: E402
from vae_core.train import TrainConfig, evaluate, fit, load_checkpoint, save_checkpoint  # noqa: E402

INDEX = CHECKPOINT_DIR / "checkpoints.json"
OUT = [CHECKPOINT_DIR]  # where files go; --out changes it (smoke tests)
# Fixed evaluation set recorded beside every checkpoint (the test reads these fields back).
EVAL = {"split": "test", "first_n": 500, "z_seed": 0, "batch_size": 500}
BINARIZE_SEED = 0  # seed of the one Bernoulli draw of the evaluation images for binarized-data models
# Sprites models: first_n grid points in the order of a seeded permutation (the grid itself is recorded per model).
EVAL_SPRITES = {"first_n": 500, "order_seed": 0, "z_seed": 0, "batch_size": 500}


# Lesson 06: every model sees the same first 20k training digits (dynamically binarized) for 8 epochs and
# shares the encoder 784-64-16, so the runs differ only in beta, the decoder, or the KL schedule.
L06_BETAS = (0.1, 0.3, 1.0, 3.0, 10.0)
L06_LIMIT = 20_000
L06_TRAIN = TrainConfig(epochs=8, batch_size=128, lr=1e-3, seed=0, progress=False)


def lesson06_vae() -> VAE:
    """Lesson 06's factorized-decoder VAE: MLP 784-64-16, Bernoulli."""
    return VAE(VAEConfig(latent_dim=16, hidden=(64,)))


def lesson06_collapse_model() -> ReferenceVAE:
    """Lesson 06's strong decoder: the same encoder, the decoder's logits refined by a masked-conv window over x_<i."""
    return ReferenceVAE(ReferenceConfig(decoder="local_ar", latent_dim=16, hidden=(64,), ar_channels=16, ar_kernel=7, ar_layers=1))


L06_FIXES = {  # name -> (TrainConfig changes, why)
    "none": ({}, "beta = 1 from the first step"),
    "linear": ({"kl_schedule": "linear", "warmup_epochs": 3.0}, "linear KL warm-up from 0 to 1 over 3 of 8 epochs (Bowman et al. 2016)"),
    "cyclical": ({"kl_schedule": "cyclical", "cycles": 4, "cycle_ratio": 0.5},
                 "cyclical KL weight, 4 cycles of 2 epochs, ramp over the first half of each (Fu et al. 2019)"),
    "freebits": ({"free_bits": 0.5}, "free bits, lambda = 0.5 nats per latent dimension (Kingma et al. 2016)"),
}


def _lesson06_specs() -> dict[str, dict]:
    specs = {}
    for beta in L06_BETAS:
        specs[f"lesson06_beta{beta:g}"] = dict(
            model=lesson06_vae, binarize="dynamic", limit=L06_LIMIT,
            train=dataclasses.replace(L06_TRAIN, beta=beta),
            why=f"lesson 06 beta sweep: VAE 784-64-16 (Bernoulli), beta = {beta:g}, first 20k dynamically binarized training digits, 8 epochs",
        )
    for fix, (changes, why) in L06_FIXES.items():
        specs[f"lesson06_collapse_{fix}"] = dict(
            model=lesson06_collapse_model, binarize="dynamic", limit=L06_LIMIT, monitor=True,
            train=dataclasses.replace(L06_TRAIN, **changes),
            why=f"lesson 06 posterior collapse: ReferenceVAE 784-64-16 with a local_ar decoder (7x7 masked window + one 3x3 layer), {why}; first 20k dynamically binarized training digits, 8 epochs",
        )
    return specs


# Lesson 07: beta-VAEs on the 18,432 upright 32x32 sprites (3 shapes x 6 scales x 32 x 32 positions), a conv
# encoder and the spatial broadcast decoder, three betas x three seeds, 10 epochs each (2,880 Adam steps).
L07_BETAS = (1.0, 4.0, 16.0)
L07_SEEDS = (0, 1, 2)
L07_GRID = {"image_size": 32, "fixed": {"orientation": 0}}
L07_TRAIN = TrainConfig(epochs=10, batch_size=64, lr=1e-3, seed=0, progress=False)


def lesson07_vae() -> VAE:
    """Lesson 07's beta-VAE: conv encoder 32x32 -> 16x16x16 -> 8x8x32 -> 4x4x32 -> z (6), spatial broadcast decoder."""
    return VAE(VAEConfig(input_shape=(1, 32, 32), latent_dim=6, hidden=(), arch="conv", channels=(16, 32, 32),
                         decoder="broadcast", broadcast_hidden=(32, 32)))


def _lesson07_specs() -> dict[str, dict]:
    return {
        f"lesson07_beta{beta:g}_seed{seed}": dict(
            model=lesson07_vae, binarize=None, grid=L07_GRID, train=dataclasses.replace(L07_TRAIN, beta=beta, seed=seed),
            why=(f"lesson 07 beta-VAE: conv encoder (16, 32, 32) + spatial broadcast decoder (32, 32), z of 6, Bernoulli, "
                 f"beta = {beta:g}, seed {seed}; every upright 32x32 sprite (18,432), 10 epochs"),
        )
        for beta in L07_BETAS for seed in L07_SEEDS
    }


# Lesson 08: a conditional VAE and the same VAE without the label, MLP 784-256-16 on dynamically binarized MNIST
# (60k, 20 epochs each), so the two differ only in whether encoder and decoder see the one-hot label.
L08_TRAIN = TrainConfig(epochs=20, batch_size=128, lr=1e-3, seed=0, progress=False)


def lesson08_cvae():
    """Lesson 08's CVAE: MLP encoder [x, one_hot(y)] 794-256-16, decoder [z, one_hot(y)] 26-256-784, Bernoulli."""
    from vae_core.cvae import CVAE, CVAEConfig

    return CVAE(CVAEConfig(n_classes=10, latent_dim=16, hidden=(256,)))


def lesson08_vae() -> VAE:
    """Lesson 08's unconditional baseline: the same MLP without the label, 784-256-16, Bernoulli."""
    return VAE(VAEConfig(latent_dim=16, hidden=(256,)))


def _lesson08_specs() -> dict[str, dict]:
    return {
        "lesson08_cvae": dict(model=lesson08_cvae, binarize="dynamic", train=L08_TRAIN, labelled=True,
                              why="lesson 08: CVAE MLP [x, one_hot(y)] 794-256-16 / [z, one_hot(y)] 26-256-784, Bernoulli, "
                                  "dynamically binarized MNIST 60k, 20 epochs"),
        "lesson08_vae": dict(model=lesson08_vae, binarize="dynamic", train=L08_TRAIN,
                             why="lesson 08: the same MLP VAE 784-256-16 without the label, Bernoulli, dynamically "
                                 "binarized MNIST 60k, 20 epochs"),
    }


# Lesson 09: two VQ-VAEs (7x7 grid of codes, K = 64, D = 16) on the first 20k dynamically binarized training digits,
# one with the codebook loss and no restarts (the codebook collapse), one with the EMA codebook and dead-code restarts
# every 100 steps; and the PixelCNN prior over the second one's codes of the same 20k digits (binarized once).
L09_LIMIT = 20_000
L09_TRAIN = TrainConfig(epochs=6, batch_size=128, lr=1e-3, seed=0, progress=False)
L09_PRIOR_TRAIN = TrainConfig(epochs=10, batch_size=128, lr=1e-3, seed=0, progress=False)


def lesson09_vq(kind: str):
    """Lesson 09's VQ-VAE: conv 28 -> 14 -> 7 (32, 64 channels), D = 16, K = 64; ``kind`` "plain" or "ema_restart"."""
    from vae_core.vqvae import VQVAE, VQVAEConfig

    return VQVAE(VQVAEConfig() if kind == "plain" else VQVAEConfig(ema=True, restart_every=100))


def lesson09_prior():
    """Lesson 09's prior over the 7x7 grid of 64 codes: a PixelCNN (embedding 64, masked convs 7x7 A + 4 x 3x3 B)."""
    from vae_core.vqvae import CodePrior, CodePriorConfig

    return CodePrior(CodePriorConfig(codebook_size=64, grid=(7, 7), channels=64, layers=5))


def _lesson09_specs() -> dict[str, dict]:
    return {
        "lesson09_vq_plain": dict(model=lambda: lesson09_vq("plain"), binarize="dynamic", limit=L09_LIMIT, train=L09_TRAIN,
                                  why="lesson 09: VQ-VAE (K = 64, D = 16, 7x7 grid), codebook + commitment (0.25) losses, "
                                      "no restarts; first 20k dynamically binarized training digits, 6 epochs"),
        "lesson09_vq_ema_restart": dict(model=lambda: lesson09_vq("ema_restart"), binarize="dynamic", limit=L09_LIMIT,
                                        train=L09_TRAIN,
                                        why="lesson 09: the same VQ-VAE with the EMA codebook (decay 0.99) and dead-code "
                                            "restarts every 100 steps; first 20k dynamically binarized training digits, 6 epochs"),
        "lesson09_prior": dict(model=lesson09_prior, binarize="static", limit=L09_LIMIT, train=L09_PRIOR_TRAIN,
                               codes_of="lesson09_vq_ema_restart",
                               why="lesson 09: PixelCNN prior over the codes lesson09_vq_ema_restart gives the first 20k "
                                   "training digits (binarized once, seed 0), 10 epochs"),
    }


# Lesson 10: a two-layer top-down HVAE (MLP 784-256 bottom-up, 128-wide top layer, z1 16, z2 8) trained exactly as
# lesson08_vae, its one-layer baseline (60k dynamically binarized digits, 20 epochs), once plain and once with free
# bits per layer; and a 2-D VAE with a learned 10-component mixture prior trained exactly as lesson05_vae2 (grey
# MNIST, fit defaults, 30 epochs), so the prior is the only difference from lesson 05's N(0, I).
L10_FREE_BITS = 0.5  # nats per latent dimension, per layer (as lesson 06's free-bits run)


def lesson10_hvae():
    """Lesson 10's two-layer HVAE: HVAEConfig() (784-256 / 256-128 bottom-up, z1 16, z2 8, Bernoulli)."""
    from vae_core.hierarchical import HVAE, HVAEConfig

    return HVAE(HVAEConfig())


def lesson10_mog2():
    """Lesson 10's learned prior: lesson05_vae2's VAE (784-400-2) with a 10-component Gaussian mixture prior."""
    from vae_core.priors import PriorVAE, PriorVAEConfig

    return PriorVAE(PriorVAEConfig(latent_dim=2, prior="mog", components=10))


def lesson10_vamp2():
    """Lesson 10's VampPrior: the same 2-D VAE with a prior mixing its own posteriors at 100 learned pseudo-images."""
    from vae_core.priors import PriorVAE, PriorVAEConfig

    return PriorVAE(PriorVAEConfig(latent_dim=2, prior="vamp", components=100))


def _lesson10_specs(long: int) -> dict[str, dict]:
    return {
        "lesson10_hvae": dict(model=lesson10_hvae, binarize="dynamic", train=L08_TRAIN,
                              why="lesson 10: two-layer top-down HVAE (784-256-128, z1 16, z2 8), Bernoulli, dynamically "
                                  "binarized MNIST 60k, 20 epochs, plain ELBO (as lesson08_vae)"),
        "lesson10_hvae_fb": dict(model=lesson10_hvae, binarize="dynamic",
                                 train=dataclasses.replace(L08_TRAIN, free_bits=L10_FREE_BITS),
                                 why=f"lesson 10: the same HVAE with free bits, lambda = {L10_FREE_BITS} nats per latent "
                                     "dimension in each layer, dynamically binarized MNIST 60k, 20 epochs"),
        "lesson10_mog2": dict(model=lesson10_mog2, binarize=None, train=TrainConfig(epochs=long, seed=0, progress=False),
                              why="lesson 10: PriorVAE(PriorVAEConfig(latent_dim=2, prior='mog', components=10)) on grey "
                                  "MNIST, fit defaults but 30 epochs on 60k (as lesson05_vae2)"),
        "lesson10_vamp2": dict(model=lesson10_vamp2, binarize=None, train=TrainConfig(epochs=long, seed=0, progress=False),
                               why="lesson 10: PriorVAE(PriorVAEConfig(latent_dim=2, prior='vamp', components=100)) on grey "
                                   "MNIST, fit defaults but 30 epochs on 60k (as lesson05_vae2)"),
    }


# Lesson 11: anomaly detection by a VAE that never saw one digit class. Ten VAEs, one per held-out class, each
# 784-64-16 (as lesson 06's, so ten fit the checkpoint budget) on the ~54k training digits of the other nine classes,
# dynamically binarized, 20 epochs; the history's test set is the 10k test digits without that class too.
L11_TRAIN = TrainConfig(epochs=20, batch_size=128, lr=1e-3, seed=0, progress=False)


def _lesson11_specs() -> dict[str, dict]:
    return {
        f"lesson11_no{c}": dict(model=lesson06_vae, binarize="dynamic", train=L11_TRAIN, exclude=c,
                                why=f"lesson 11 anomaly detection: VAE 784-64-16 (Bernoulli) trained without digit {c}: "
                                    f"the MNIST training digits of the other nine classes, dynamically binarized, 20 epochs")
        for c in range(10)
    }


# Lesson 12: character-level sequence VAEs (vae_core.sequence) on the shipped MOSES subset (50k train, 5k test) and
# on the grammar sentences (20k / 2k). The four SMILES runs share model and data and differ only in the fixes for
# posterior collapse (Bowman et al. 2016): none, KL annealing, annealing + word dropout, and those plus free bits,
# the recipe the SELFIES model repeats so SMILES and SELFIES are compared like for like.
L12_TRAIN = TrainConfig(epochs=8, batch_size=128, lr=2e-3, seed=0, clip_grad=5.0, progress=False)
L12_ANNEAL = dict(kl_schedule="linear", warmup_epochs=3.0)
L12_EVAL = {"first_n": 500, "z_seed": 0, "batch_size": 500}  # the first 500 test sequences


def lesson12_seqvae(kind: str, vocab: tuple[str, ...], word_dropout: float, hidden_dim: int = 128):
    from vae_core.sequence import SeqVAE, SeqVAEConfig
    return SeqVAE(SeqVAEConfig(vocab=vocab, kind=kind, embed_dim=32, hidden_dim=hidden_dim, latent_dim=32,
                               word_dropout=word_dropout, max_len=100))


def _lesson12_specs() -> dict[str, dict]:
    plain, anneal = L12_TRAIN, dataclasses.replace(L12_TRAIN, **L12_ANNEAL)
    fixed = dataclasses.replace(anneal, free_bits=0.5)
    return {
        "lesson12_smiles_plain": dict(sequences="smiles", word_dropout=0.0, train=plain,
                                      why="lesson 12: SMILES VAE (GRU 128, z 32), no fix for posterior collapse"),
        "lesson12_smiles_anneal": dict(sequences="smiles", word_dropout=0.0, train=anneal,
                                       why="lesson 12: SMILES VAE, KL annealed linearly over 3 epochs"),
        "lesson12_smiles_wd": dict(sequences="smiles", word_dropout=0.25, train=anneal,
                                   why="lesson 12: SMILES VAE, KL annealing + word dropout 0.25"),
        "lesson12_smiles": dict(sequences="smiles", word_dropout=0.25, train=fixed,
                                why="lesson 12: SMILES VAE, KL annealing + word dropout 0.25 + free bits 0.5 nats/dim"),
        "lesson12_smiles_rate": dict(sequences="smiles", word_dropout=0.25, train=dataclasses.replace(fixed, free_bits=2.0),
                                     why="lesson 12: SMILES VAE, the lesson12_smiles recipe with free bits 2 nats/dim: "
                                         "a higher rate, for the trade-off between reconstruction and valid samples"),
        "lesson12_selfies": dict(sequences="selfies", word_dropout=0.25, train=fixed,
                                 why="lesson 12: the lesson12_smiles recipe on the same molecules written as SELFIES"),
        "lesson12_text": dict(sequences="words", word_dropout=0.25, train=dataclasses.replace(fixed, epochs=10),
                              why="lesson 12: sentence VAE on the grammar corpus (20k sentences), the lesson12_smiles recipe"),
    }


def sequence_data(kind: str, limit: int | None = None):
    """(train, test) SequenceData for ``kind``: MOSES SMILES, the same molecules as SELFIES, or grammar sentences."""
    from vae_core import chem
    from vae_core.data import load_sentences, load_smiles
    from vae_core.sequence import encode_texts
    if kind == "words":
        train_texts, test_texts = load_sentences("train", limit=limit), load_sentences("test")
    else:
        train_texts, test_texts = load_smiles("train", limit=limit), load_smiles("test")
        if kind == "selfies":
            train_texts = [chem.to_selfies(s) for s in train_texts]
            test_texts = [chem.to_selfies(s) for s in test_texts]
    train = encode_texts(list(train_texts), kind)
    return train, encode_texts(list(test_texts), kind, vocab=train.vocab)


def recorded_sequence_eval(model, test, ev: dict = L12_EVAL) -> dict:
    """ELBO terms (nats per sequence) on the first ``first_n`` test sequences, one z seeded with ``z_seed``."""
    torch.manual_seed(ev["z_seed"])
    out = evaluate(model.cpu().eval(), test.subset(slice(0, ev["first_n"])), batch_size=ev["batch_size"], seed=ev["z_seed"])
    return {k: round(v, 4) for k, v in out.items()}


def build_sequence(name: str, epochs: int | None = None, limit: int | None = None) -> dict:
    from vae_core.sequence import active_units
    spec = _lesson_specs()[name]
    cfg: TrainConfig = spec["train"] if epochs is None else dataclasses.replace(spec["train"], epochs=epochs)
    kind = spec["sequences"]
    train, test = sequence_data(kind, limit)
    seed_everything(cfg.seed)
    model = lesson12_seqvae(kind, train.vocab.tokens, spec["word_dropout"])
    threads = torch.get_num_threads()
    wall, cpu = time.perf_counter(), time.process_time()
    history = fit(model, train, test, dataclasses.replace(cfg, device="cpu"))
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    overrides = ("" if epochs is None else f" --epochs {epochs}") + ("" if limit is None else f" --limit {limit}")
    command = f"OMP_NUM_THREADS={threads} python scripts/make_checkpoints.py {name}{overrides}"
    data = {"smiles": "MOSES subset (vae_core.data.load_smiles)", "selfies": "MOSES subset as SELFIES (chem.to_selfies)",
            "words": "grammar sentences (vae_core.data.load_sentences)"}[kind]
    data += f": {len(train)} train, {len(test)} test"
    path = OUT[0] / f"{name}.pt"
    save_checkpoint(path, model, extra={"history": history.as_dict(), "epochs": cfg.epochs,
                                        "train_config": dataclasses.asdict(cfg), "data": data, "seed": cfg.seed,
                                        "command": command})
    model, _ = load_checkpoint(path, device="cpu")  # evaluate what was written, not what is in memory
    au, _ = active_units(model, test)
    entry = {
        "file": path.name,
        "what": spec["why"],
        "model": type(model).__name__,
        "config": json.loads(json.dumps(dataclasses.asdict(model.config))),
        "command": command,
        "seeds": {"init_and_train": cfg.seed, "eval_z": L12_EVAL["z_seed"]},
        "train": {"epochs": cfg.epochs, "batch_size": cfg.batch_size, "lr": cfg.lr, "sequences": kind,
                  "train_sequences": len(train), "beta": cfg.beta, "kl_schedule": cfg.kl_schedule,
                  "warmup_epochs": cfg.warmup_epochs, "free_bits": cfg.free_bits, "word_dropout": spec["word_dropout"],
                  "clip_grad": cfg.clip_grad,
                  "wall_seconds": round(wall, 1), "cpu_seconds": round(cpu, 1), "torch_threads": threads,
                  "load_average_at_end": [round(v, 2) for v in os.getloadavg()]},
        "final_test_elbo": round(history.test_elbo[-1], 3),
        "final_test_kl": round(history.test["kl"][-1], 3),
        "active_units_test": au,
        "eval": {**L12_EVAL, "sequences": kind, **recorded_sequence_eval(model, test)},
        "bytes": path.stat().st_size,
    }
    update_index(name, entry)
    return entry


def without_class(data, c: int | None):
    """``data`` (a Dataset) without the examples labelled ``c`` (unchanged when ``c`` is None)."""
    if c is None:
        return data
    keep = data.labels != c
    return dataclasses.replace(data, images=data.images[keep], labels=data.labels[keep], name=f"{data.name}-no{c}")


def code_grids(vq_name: str, images: torch.Tensor) -> torch.Tensor:
    """The (N, 1, h, w) long code grids the shipped VQ-VAE ``vq_name`` gives ``images`` (what its prior is trained on)."""
    vq, _ = load_checkpoint(OUT[0] / f"{vq_name}.pt", device="cpu")
    return vq.codes(images)[:, None]


def _lesson_specs() -> dict[str, dict]:
    """name -> how to build it. Lesson 04: dynamically binarized MNIST; lesson 05: grey MNIST, fit defaults;
    lesson 06: dynamically binarized, the first 20k training digits, 8 epochs; lesson 07: the upright sprites;
    lesson 08: dynamically binarized MNIST, a CVAE and its unconditional twin; lesson 09: VQ-VAEs and a prior over
    their codes; lesson 10: two-layer HVAEs beside lesson08_vae, a mixture-prior VAE beside lesson05_vae2; lesson 11:
    ten small VAEs, each trained without one digit class."""
    long = 30  # epochs: the lessons train 5 (2 in quick mode); a shipped model can afford more
    return {**_lesson_specs_0405(long), **_lesson06_specs(), **_lesson07_specs(), **_lesson08_specs(), **_lesson09_specs(),
            **_lesson10_specs(long), **_lesson11_specs(), **_lesson12_specs()}


def _lesson_specs_0405(long: int) -> dict[str, dict]:
    return {
        "lesson01_ae": dict(
            model=lambda: AutoEncoder(VAEConfig(latent_dim=16, hidden=(256,))),
            binarize=None,
            limit=20_000,
            train=TrainConfig(epochs=5, batch_size=128, lr=1e-3, seed=0, progress=False),
            why="lesson 01: AutoEncoder 784-256-16 (Bernoulli decoder) on the first 20k grey training digits, 5 epochs: "
                "the notebook's full-mode run, shipped so quick mode shows a trained model too",
        ),
        "lesson04_vae": dict(
            model=lambda: VAE(pytorch_examples_config()),
            binarize="dynamic",
            train=TrainConfig(epochs=long, batch_size=128, lr=1e-3, seed=0, progress=False),
            why="lesson 04: pytorch_examples_config() 784-400-20 MLP VAE, Bernoulli, dynamically binarized MNIST",
        ),
        "lesson05_vae2": dict(
            model=lambda: VAE(VAEConfig(latent_dim=2)),
            binarize=None,
            train=TrainConfig(epochs=long, seed=0, progress=False),
            why="lesson 05: VAE(VAEConfig(latent_dim=2)) on grey MNIST, fit defaults but 30 epochs on 60k",
        ),
        "lesson05_ae2": dict(
            model=lambda: AutoEncoder(VAEConfig(latent_dim=2)),
            binarize=None,
            train=TrainConfig(epochs=long, seed=0, progress=False),
            why="lesson 05: AutoEncoder(VAEConfig(latent_dim=2)) on grey MNIST, fit defaults but 30 epochs on 60k",
        ),
        "lesson05_vae16": dict(
            model=lambda: VAE(VAEConfig(latent_dim=16)),
            binarize=None,
            train=TrainConfig(epochs=long, seed=0, progress=False),
            why="lesson 05: VAE(VAEConfig(latent_dim=16)) on grey MNIST, fit defaults but 30 epochs on 60k",
        ),
    }


NAMES = [*_lesson_specs(), "reference_vae"]


def eval_images(binarized: bool, ev: dict = EVAL) -> torch.Tensor:
    """The fixed evaluation images: the first ``first_n`` MNIST test digits (grey, or binarized once with
    BINARIZE_SEED), or for sprites ``first_n`` grid points in a seeded random order (already binary)."""
    if "grid" in ev:
        grid = sprite_grid(**ev["grid"]).images
        return grid[torch.randperm(len(grid), generator=torch.Generator().manual_seed(ev["order_seed"]))[:ev["first_n"]]]
    x = load_mnist(ev["split"], limit=ev["first_n"]).images
    if binarized:
        x = bernoulli_binarize(x, torch.Generator().manual_seed(BINARIZE_SEED))
    return x


def eval_data(binarized: bool, ev: dict = EVAL, labelled: bool = False):
    """``eval_images``; for a conditional model the images with their labels; for a prior over codes their code grids."""
    x = eval_images(binarized, ev)
    if "codes_of" in ev:
        return code_grids(ev["codes_of"], x)
    if not labelled:
        return x
    return SimpleNamespace(images=x, labels=load_mnist(ev["split"], limit=ev["first_n"]).labels)


def recorded_eval(model: torch.nn.Module, binarized: bool, ev: dict = EVAL, labelled: bool = False) -> dict:
    """ELBO terms (nats per image) on the fixed evaluation set, one z sample seeded with z_seed."""
    torch.manual_seed(ev["z_seed"])
    out = evaluate(model.cpu().eval(), eval_data(binarized, ev, labelled), batch_size=ev["batch_size"], seed=ev["z_seed"])
    return {k: (None if v != v else round(v, 4)) for k, v in out.items()}  # NaN (AE's ELBO) -> null


def update_index(name: str, entry: dict) -> None:
    """Read-modify-write checkpoints.json under a file lock (several builds may run at once)."""
    out = OUT[0]
    out.mkdir(parents=True, exist_ok=True)
    index_path = out / INDEX.name
    with open(Path(tempfile.gettempdir()) / "vae_core_checkpoints.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        index = json.loads(index_path.read_text()) if index_path.exists() else {}
        index[name] = entry
        index = {k: index[k] for k in sorted(index)}
        tmp = index_path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(index, indent=2) + "\n")
        os.replace(tmp, index_path)


def build_lesson(name: str, epochs: int | None = None, limit: int | None = None) -> dict:
    spec = _lesson_specs()[name]
    cfg: TrainConfig = spec["train"] if epochs is None else dataclasses.replace(spec["train"], epochs=epochs)
    n_train = limit if limit is not None else spec.get("limit")  # --limit (smoke tests) or the spec's own subset
    if "grid" in spec:  # sprites: the whole sub-grid, no held-out split (the factors are the point, not generalisation)
        train, test = sprite_grid(**spec["grid"]), None
        if n_train is not None:
            train = train.subset(n_train)
        data = f"sprites: every grid point of sprite_grid({spec['grid']}) ({len(train)} images, binary)"
        ev = {**EVAL_SPRITES, "grid": spec["grid"]}
    elif "codes_of" in spec:  # a prior over codes: the shipped VQ-VAE's code grids of binarized digits
        train = code_grids(spec["codes_of"], load_mnist("train", binarize="static", limit=n_train).images)
        test = code_grids(spec["codes_of"], load_mnist("test", binarize="static").images)
        data = (f"code grids by {spec['codes_of']} of MNIST train {'60k' if n_train is None else f'first {n_train}'} "
                "and test 10k, each binarized once (seed 0)")
        ev = {**EVAL, "codes_of": spec["codes_of"]}
    else:
        train = without_class(load_mnist("train", binarize=spec["binarize"], limit=n_train), spec.get("exclude"))
        test = without_class(load_mnist("test", binarize=spec["binarize"]), spec.get("exclude"))
        data = (f"MNIST train {'60k' if n_train is None else f'first {n_train}'}, binarize={spec['binarize']!r}; "
                "test 10k for the history")
        if spec.get("exclude") is not None:
            data += f"; digit {spec['exclude']} left out of both ({len(train)} training, {len(test)} test digits)"
        ev = EVAL
    seed_everything(cfg.seed)  # the initial weights
    model = spec["model"]()
    # lesson 06's collapse runs: active units and KL per dimension after every epoch, on the first 1000 test digits
    monitor = ActiveUnitsMonitor(test, n=1000) if spec.get("monitor") else None
    threads = torch.get_num_threads()
    wall, cpu = time.perf_counter(), time.process_time()
    history = fit(model, train, test, dataclasses.replace(cfg, device="cpu"), callbacks=[monitor] if monitor is not None else ())
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    overrides = ("" if epochs is None else f" --epochs {epochs}") + ("" if limit is None else f" --limit {limit}")
    command = f"OMP_NUM_THREADS={threads} python scripts/make_checkpoints.py {name}{overrides}"
    extra = {
        "history": history.as_dict(),
        "epochs": cfg.epochs,
        "train_config": dataclasses.asdict(cfg),
        "data": data,
        "seed": cfg.seed,
        "command": command,
    }
    if monitor is not None:
        extra["monitor"] = monitor.as_dict()  # ActiveUnitsMonitor: epoch, active_units, kl_per_dim, variances
    path = OUT[0] / f"{name}.pt"
    if isinstance(model, ReferenceVAE):
        save_reference(path, model, extra=extra)
        model, _ = load_reference(path, device="cpu")  # evaluate what was written, not what is in memory
    else:
        save_checkpoint(path, model, extra=extra)
        model, _ = load_checkpoint(path, device="cpu")  # evaluate what was written, not what is in memory
    binarized = spec["binarize"] is not None
    entry = {
        "file": path.name,
        "what": spec["why"],
        "model": type(model).__name__,
        "config": json.loads(json.dumps(dataclasses.asdict(model.config))),
        "command": command,
        "seeds": {"init_and_train": cfg.seed, "eval_binarize": BINARIZE_SEED if binarized else None, "eval_z": EVAL["z_seed"]},
        "train": {"epochs": cfg.epochs, "batch_size": cfg.batch_size, "lr": cfg.lr, "binarize": spec["binarize"],
                  "train_images": len(train), "beta": cfg.beta, "kl_schedule": cfg.kl_schedule,
                  "warmup_epochs": cfg.warmup_epochs, "cycles": cfg.cycles, "cycle_ratio": cfg.cycle_ratio,
                  "free_bits": cfg.free_bits,
                  "wall_seconds": round(wall, 1), "cpu_seconds": round(cpu, 1), "torch_threads": threads,
                  "load_average_at_end": [round(v, 2) for v in os.getloadavg()]},
        **({} if test is None else {
            "final_test_elbo_10k": round(history.test_elbo[-1], 3) if history.test_elbo[-1] == history.test_elbo[-1] else None,
            "final_test_recon_10k": round(history.test_recon[-1], 3) if history.test_recon[-1] == history.test_recon[-1] else None}),
        "eval": {**ev, "binarized": binarized, **({"labelled": True} if spec.get("labelled") else {}),
                 **recorded_eval(model, binarized, ev, bool(spec.get("labelled")))},
        "bytes": path.stat().st_size,
    }
    update_index(name, entry)
    return entry


def build_reference(stage_epochs: str, recipe: str, from_file: Path | None = None) -> dict:
    """Retrain the benchmark's best recipe with the epochs per lr stage its timed run reached (no clock: reproducible).

    ``from_file``: instead of retraining, ship the model the timed benchmark run saved
    (``benchmarks/reference_vae.py --save FILE``): same recipe, seeds and stage epochs.
    """
    sys.path.insert(0, str(ROOT / "benchmarks"))
    import reference_vae as bench  # benchmarks/reference_vae.py: the recipes and the training stages

    from vae_core.reference import load_reference, save_reference

    threads = torch.get_num_threads()
    epochs = [int(e) for e in stage_epochs.split(",")]
    command = f"OMP_NUM_THREADS={threads} python scripts/make_checkpoints.py reference_vae --recipe {recipe} --stage-epochs {stage_epochs}"
    made_by = command
    wall, cpu = time.perf_counter(), time.process_time()
    if from_file is not None:
        model, extra0 = load_reference(from_file)
        rec = {"history": extra0["history"], "epochs": extra0["epochs"], "stage_epochs": extra0["stage_epochs"],
               "stages": [{"lr": lr} for (_, lr), e in zip(bench.RECIPES[recipe]["stages"], epochs) if e]}
        if extra0.get("recipe") != recipe or list(extra0["stage_epochs"]) != [e for e in epochs if e]:
            raise SystemExit(f"{from_file} holds recipe {extra0.get('recipe')} with stage epochs {extra0['stage_epochs']}, "
                             f"not {recipe} with {stage_epochs}")
        made_by = extra0["command"]
    else:
        model, rec = bench.train_recipe(recipe, None, "wall", threads, 0, stage_epochs=epochs)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    extra = {"history": rec["history"], "epochs": rec["epochs"], "stage_epochs": rec["stage_epochs"], "recipe": recipe,
             "why": bench.RECIPES[recipe]["why"], "seed": 0, "command": command, "made_by": made_by,
             "data": "MNIST train 60k, dynamically binarized (fresh Bernoulli draws every epoch)"}
    path = save_reference(OUT[0] / "reference_vae.pt", model, extra=extra)
    model, _ = load_reference(path)
    entry = {
        "file": path.name,
        "what": f"reference VAE, recipe {recipe}: {bench.RECIPES[recipe]['why']}",
        "model": "ReferenceVAE",
        "config": json.loads(json.dumps(dataclasses.asdict(model.config))),
        "command": command,
        "made_by": made_by,
        "seeds": {"init_and_train": 0, "eval_binarize": BINARIZE_SEED, "eval_z": EVAL["z_seed"]},
        "train": {"epochs": rec["epochs"], "stage_epochs": rec["stage_epochs"], "lr_stages": [s["lr"] for s in rec["stages"]],
                  "batch_size": bench.RECIPES[recipe]["batch"], "binarize": "dynamic",
                  **({} if from_file else {"wall_seconds": round(wall, 1), "cpu_seconds": round(cpu, 1), "torch_threads": threads}), "load_average_at_end": [round(v, 2) for v in os.getloadavg()]},
        "benchmark": f"benchmarks/results/reference_{recipe}_final15.json (the timed run: NLL, test ELBO, minutes, load)",
        "eval": {**EVAL, "binarized": True, **recorded_eval(model, True)},
        "bytes": path.stat().st_size,
    }
    update_index("reference_vae", entry)
    return entry


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("names", nargs="*", help=f"checkpoints to build, among {NAMES}")
    parser.add_argument("--all", action="store_true", help="build every checkpoint")
    parser.add_argument("--list", action="store_true", help="print what each checkpoint is and exit")
    parser.add_argument("--epochs", type=int, default=None, help="override the epochs (smoke tests only)")
    parser.add_argument("--limit", type=int, default=None, help="train on the first N images (smoke tests only)")
    parser.add_argument("--recipe", default="local_ar16", help="reference_vae: the benchmark recipe")
    parser.add_argument("--stage-epochs", default="20,10,6,4", help="reference_vae: epochs per lr stage (from the timed run)")
    parser.add_argument("--from-file", type=Path, default=None, help="reference_vae: ship this benchmark-saved model instead of retraining")
    parser.add_argument("--out", type=Path, default=CHECKPOINT_DIR, help="output folder (default: vae_core/checkpoints)")
    args = parser.parse_args(argv)
    OUT[0] = args.out
    if args.list:
        for name, spec in _lesson_specs().items():
            print(f"{name}: {spec['why']}")
        print("reference_vae: the benchmark's best recipe (vae_core.reference), see benchmarks/reference_vae.py")
        return 0
    names = NAMES if args.all else args.names
    unknown = [n for n in names if n not in NAMES]
    if not names or unknown:
        parser.error(f"name the checkpoints to build among {NAMES} (or --all); unknown: {unknown}")
    for name in names:
        if name == "reference_vae":
            entry = build_reference(args.stage_epochs, args.recipe, args.from_file)
        elif "sequences" in _lesson_specs()[name]:
            entry = build_sequence(name, args.epochs, args.limit)
        else:
            entry = build_lesson(name, args.epochs, args.limit)
        print(json.dumps({name: entry}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
