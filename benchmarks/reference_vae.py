"""Reference VAE benchmark: train a recipe from scratch within a time budget, then measure it.

Target (the issue): test NLL <= 86.76 nats on dynamically binarized MNIST, the one-stochastic-layer
VAE of Burda et al. (2016, Table 1, k = 5000, 3 280 epochs), with at most 15 minutes of training
on 2 CPU cores.

    .venv/bin/python benchmarks/reference_vae.py --recipe local_ar16 --budget-min 15 --threads 2
    .venv/bin/python benchmarks/reference_vae.py --list                    # the recipes (variants)
    .venv/bin/python benchmarks/reference_vae.py --recipe mlp --budget-min 1 --eval-n 100 --eval-k 50   # smoke

What it does, all seeded (``--seed``, default 0):

1. training: ``vae_core.train.fit`` on the 60k MNIST training images, dynamically binarized (fresh
   Bernoulli draws each epoch). The learning-rate schedule is a sequence of stages, each one
   ``fit`` call with its own Adam and learning rate, ending when the budget fraction of that stage
   is used up (checked after each epoch by a ``fit`` callback). ``--clock wall`` (default) counts
   wall-clock seconds of training; ``--clock cpu`` counts process CPU seconds / threads (the time
   the run would take on idle cores; for pilot runs on a shared machine). Evaluation is not
   timed. The epochs each stage reached are recorded; ``--stage-epochs 20,8,4`` replays a run
   with those fixed epoch counts (no clock), which is how ``scripts/make_checkpoints.py`` rebuilds
   the shipped reference checkpoint.
2. evaluation on the test set binarized **once** with seed 0 (``vae_core.metrics``' rule):
   the one-sample test ELBO on all 10 000 images (z seeded with 0), and the importance-weighted
   NLL estimate -L_k on the first ``--eval-n`` test images (default k = 5000 on 1000 images),
   with its standard error over images, in nats and bits/dim.

Prints a summary and writes ``benchmarks/results/reference_<recipe>[_<tag>].json``.
"""
from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import json
import math
import os
import platform
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from vae_core import seed_everything  # noqa: E402
from vae_core.data import bernoulli_binarize, load_mnist  # noqa: E402
from vae_core.metrics import bits_per_dim  # noqa: E402
from vae_core.models import VAE, pytorch_examples_config  # noqa: E402
from vae_core.reference import ReferenceConfig, ReferenceVAE  # noqa: E402
from vae_core.train import TrainConfig, evaluate, fit  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results"
TEST_BINARIZE_SEED = 0
# lr stages: (fraction of the budget, learning rate); Adam restarts at each stage.
DECAY = ((0.5, 2e-3), (0.25, 1e-3), (0.15, 3e-4), (0.10, 1e-4))
CONSTANT = ((1.0, 1e-3),)


def _recipes() -> dict[str, dict]:
    """name -> model factory, batch size, lr stages, KL warm-up epochs (first stage only), why."""
    ar = dict(decoder="local_ar", latent_dim=32, hidden=(512, 256), ar_layers=0)
    return {
        "pytorch_examples": dict(model=lambda: VAE(pytorch_examples_config()), batch=128, stages=CONSTANT, warmup=0,
                                 why="vae_core VAE 784-400-20 (pytorch/examples), Adam 1e-3, batch 128"),
        "mlp": dict(model=lambda: ReferenceVAE(ReferenceConfig(decoder="mlp", latent_dim=32, hidden=(512, 256))),
                    batch=128, stages=DECAY, warmup=0,
                    why="MLP 784-512-256-32 VAE, factorized Bernoulli decoder, lr 2e-3 stepped down to 1e-4"),
        "mlp_iwae5": dict(model=lambda: ReferenceVAE(ReferenceConfig(decoder="mlp", latent_dim=32, hidden=(512, 256), train_k=5)),
                          batch=128, stages=DECAY, warmup=0,
                          why="as mlp, trained on the IWAE bound with k=5 (Burda et al. 2016)"),
        "mlp_z64_b256": dict(model=lambda: ReferenceVAE(ReferenceConfig(decoder="mlp", latent_dim=64, hidden=(512, 256))),
                             batch=256, stages=DECAY, warmup=0,
                             why="as mlp, 64 latents, batch 256"),
        "local_ar16": dict(model=lambda: ReferenceVAE(ReferenceConfig(**ar, ar_channels=16, ar_kernel=7)),
                           batch=128, stages=DECAY, warmup=0,
                           why="as mlp + a 7x7 masked-conv window over x_<i (16 channels) on the decoder's logits"),
        "local_ar16_warmup": dict(model=lambda: ReferenceVAE(ReferenceConfig(**ar, ar_channels=16, ar_kernel=7)),
                                  batch=128, stages=DECAY, warmup=2,
                                  why="local_ar16 with a linear KL warm-up over 2 epochs (Bowman et al. 2016)"),
        "local_ar16_k5": dict(model=lambda: ReferenceVAE(ReferenceConfig(**ar, ar_channels=16, ar_kernel=5)),
                              batch=128, stages=DECAY, warmup=0,
                              why="local_ar16 with a 5x5 window (2 rows above, 2 pixels left): more left for z"),
        "local_ar32": dict(model=lambda: ReferenceVAE(ReferenceConfig(**ar, ar_channels=32, ar_kernel=7)),
                           batch=128, stages=DECAY, warmup=0,
                           why="local_ar16 with 32 channels"),
        "local_ar16x2": dict(model=lambda: ReferenceVAE(ReferenceConfig(**{**ar, "ar_layers": 1}, ar_channels=16, ar_kernel=7)),
                             batch=128, stages=DECAY, warmup=0,
                             why="local_ar16 + one 3x3 masked layer (wider window)"),
    }


RECIPES = _recipes()


def _load_avg() -> list[float]:
    return [round(v, 2) for v in os.getloadavg()]


def _merge(histories: list[dict]) -> dict:
    """Per-stage History.as_dict()s -> one History-shaped dict, epochs numbered 1..N, plus the stage of each epoch."""
    out: dict[str, list] = {k: [] for k in (histories[0] if histories else {})}
    out["stage"] = []
    for i, h in enumerate(histories):
        for k, v in h.items():
            out[k] += [len(out["epoch"]) + j + 1 for j in range(len(v))] if k == "epoch" else list(v)
        out["stage"] += [i] * len(h["epoch"])
    return out


def train_recipe(name: str, budget_s: float | None, clock: str, threads: int, seed: int,
                 stage_epochs: list[int] | None = None, limit: int | None = None, progress: bool = False):
    """Train recipe ``name`` from scratch; returns (model, record dict). Either a budget or fixed stage epochs."""
    r = RECIPES[name]
    train = load_mnist("train", binarize="dynamic", limit=limit)
    seed_everything(seed)  # the initial weights
    model = r["model"]()
    used = {"wall": 0.0, "cpu": 0.0}
    stages, histories = [], []
    for i, (frac, lr) in enumerate(r["stages"]):
        if stage_epochs is not None:
            if i >= len(stage_epochs) or stage_epochs[i] == 0:
                continue
            epochs, cb = stage_epochs[i], ()
        else:
            limit_s = budget_s * sum(f for f, _ in r["stages"][: i + 1])  # end of this stage, cumulative
            if used[clock] >= limit_s:
                continue
            t_wall, t_cpu = time.perf_counter(), time.process_time()
            base = dict(used)

            def over_budget(epoch, model, history, base=base, t_wall=t_wall, t_cpu=t_cpu, limit_s=limit_s):
                now = {"wall": base["wall"] + time.perf_counter() - t_wall,
                       "cpu": base["cpu"] + (time.process_time() - t_cpu) / threads}
                return now[clock] >= limit_s

            epochs, cb = 10_000, (over_budget,)
        warm = r["warmup"] if i == 0 else 0
        cfg = TrainConfig(epochs=epochs, batch_size=r["batch"], lr=lr, seed=seed + i, progress=progress, device="cpu",
                          kl_schedule="linear" if warm else None, warmup_epochs=float(warm or 5))
        t_wall, t_cpu = time.perf_counter(), time.process_time()
        h = fit(model, train, None, cfg, callbacks=cb)
        used["wall"] += time.perf_counter() - t_wall
        used["cpu"] += (time.process_time() - t_cpu) / threads
        stages.append({"stage": i, "lr": lr, "epochs": len(h), "wall_s": round(used["wall"], 1), "load_avg": _load_avg(),
                       "train_elbo_last": round(h.train_elbo[-1], 3)})
        histories.append(h.as_dict())
        print(f"  stage {i}: lr {lr:g}, {len(h)} epochs, train ELBO {h.train_elbo[-1]:.2f}, "
              f"training so far {used['wall'] / 60:.1f} wall-min / {used['cpu'] / 60:.1f} cpu-min per thread, load {_load_avg()}",
              flush=True)
    record = {"stages": stages, "stage_epochs": [s["epochs"] for s in stages], "epochs": sum(s["epochs"] for s in stages),
              "train_wall_s": round(used["wall"], 1), "train_cpu_s_per_thread": round(used["cpu"], 1), "history": _merge(histories)}
    return model.eval(), record


def _log_px(model: torch.nn.Module, x: torch.Tensor, ks: list[int]) -> dict[int, torch.Tensor]:
    """L_k per image for every k in ks, from one set of max(ks) samples (L_k uses the first k): {k: (B,)}."""
    kmax = max(ks)
    if not hasattr(model, "log_weights"):  # the vae_core VAE: its own log_likelihood, one k at a time
        return {k: model.log_likelihood(x, k=k).double() for k in ks}
    chunk = max(1, 4096 // x.shape[0])
    lw = torch.cat([model.log_weights(x, min(chunk, kmax - s)).double() for s in range(0, kmax, chunk)], 0)  # (kmax, B)
    # L_k = logsumexp of the first k log-weights - log k   (Burda et al. 2016, Eq. 8)
    return {k: torch.logsumexp(lw[:k], 0) - math.log(k) for k in ks}


@torch.no_grad()
def measure(model: torch.nn.Module, eval_n: int, eval_k: int, seed: int = 0) -> dict:
    """Test ELBO (10k, one z sample), active units, and -L_k on the first eval_n test images (test binarized once, seed 0).

    Also a full-test-set NLL estimate with the ELBO as control variate: -ELBO(10k) - mean over the subset of
    (L_k - ELBO) per image; the gap varies far less between images than the NLL itself, so its error is smaller.
    """
    from vae_core.metrics import active_units

    test = load_mnist("test").images
    x = bernoulli_binarize(test, torch.Generator().manual_seed(TEST_BINARIZE_SEED))  # (10000, 1, 28, 28) in {0, 1}
    t0 = time.perf_counter()
    torch.manual_seed(seed)
    elbo_all = torch.cat([model.elbo(x[s : s + 500]).elbo.double() for s in range(0, len(x), 500)])  # (10000,)
    ev = evaluate(model, x, batch_size=500, seed=seed)
    n_active, _ = active_units(model, x[:2000])
    xs = x[:eval_n]
    ks = sorted({k for k in (1000, eval_k) if k <= eval_k})
    torch.manual_seed(seed)
    b = 10 if eval_k >= 1000 else 100
    parts = [_log_px(model, xs[s : s + b], ks) for s in range(0, eval_n, b)]
    lls = {k: torch.cat([p[k] for p in parts]) for k in ks}  # k -> (eval_n,)
    ll = lls[eval_k]
    nll, se = -ll.mean().item(), ll.std().item() / math.sqrt(eval_n)
    gap = ll - elbo_all[:eval_n]  # (eval_n,) L_k - one-sample ELBO per image
    nll_cv = -elbo_all.mean().item() - gap.mean().item()
    se_cv = math.sqrt(gap.var().item() / eval_n + elbo_all.var().item() / len(elbo_all))
    return {
        "test_elbo_10k": round(ev["elbo"], 3), "test_recon_10k": round(ev["recon"], 3), "test_kl_10k": round(ev["kl"], 3),
        "active_units_2k": n_active,
        "nll_nats": round(nll, 3), "nll_se": round(se, 3), "nll_bits_per_dim": round(bits_per_dim(nll, 784), 5),
        "nll_by_k": {str(k): round(-v.mean().item(), 3) for k, v in lls.items()},
        "nll_full_test_cv": round(nll_cv, 3), "nll_full_test_cv_se": round(se_cv, 3),
        "elbo_eval_subset": round(elbo_all[:eval_n].mean().item(), 3), "eval_n": eval_n, "eval_k": eval_k,
        "eval_seconds": round(time.perf_counter() - t0, 1),
        "eval_set": f"MNIST test, binarized once with torch.Generator().manual_seed({TEST_BINARIZE_SEED}); NLL on the first {eval_n}",
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="Train a reference VAE recipe within a budget and measure test ELBO and NLL.")
    p.add_argument("--recipe", choices=sorted(RECIPES), default="local_ar16")
    p.add_argument("--list", action="store_true", help="print the recipes and exit")
    p.add_argument("--budget-min", type=float, default=15.0, help="training budget in minutes (default 15)")
    p.add_argument("--clock", choices=("wall", "cpu"), default="wall", help="wall: wall-clock; cpu: process CPU time / threads")
    p.add_argument("--stage-epochs", default=None, help="fixed epochs per lr stage, e.g. 20,8,4,3 (replaces the budget)")
    p.add_argument("--threads", type=int, default=2, help="torch.set_num_threads (default 2)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--eval-n", type=int, default=1000, help="test images for the NLL (default 1000)")
    p.add_argument("--eval-k", type=int, default=5000, help="importance samples for the NLL (default 5000)")
    p.add_argument("--limit", type=int, default=None, help="train on the first N images (smoke tests)")
    p.add_argument("--tag", default="", help="suffix of the results file name")
    p.add_argument("--save", type=Path, default=None, help="also save the trained model (vae_core.reference.save_reference)")
    p.add_argument("--progress", action="store_true")
    a = p.parse_args(argv)
    if a.list:
        for n, r in RECIPES.items():
            print(f"{n:18s} {r['why']}")
        return 0
    torch.set_num_threads(a.threads)
    stage_epochs = [int(s) for s in a.stage_epochs.split(",")] if a.stage_epochs else None
    load_start = _load_avg()
    print(f"recipe {a.recipe}: {RECIPES[a.recipe]['why']}\n  budget {a.budget_min} min ({a.clock} clock), "
          f"{a.threads} threads, load average at start {load_start}", flush=True)
    model, rec = train_recipe(a.recipe, a.budget_min * 60, a.clock, a.threads, a.seed, stage_epochs, a.limit, a.progress)
    load_end_train = _load_avg()
    cmd = "python benchmarks/reference_vae.py " + " ".join(argv if argv is not None else sys.argv[1:])
    if a.save:
        from vae_core.reference import save_reference

        save_reference(a.save, model, extra={"history": rec["history"], "epochs": rec["epochs"], "stage_epochs": rec["stage_epochs"],
                                             "recipe": a.recipe, "seed": a.seed, "command": cmd})  # saved before the (long) evaluation, so it can be used meanwhile
    m = measure(model, a.eval_n, a.eval_k, seed=a.seed)
    n_params = sum(p.numel() for p in model.parameters())
    out = {
        "recipe": a.recipe, "why": RECIPES[a.recipe]["why"], "command": cmd, "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "budget_min": None if stage_epochs else a.budget_min, "clock": None if stage_epochs else a.clock,
        "threads": a.threads, "seed": a.seed, "params": n_params,
        "train_minutes_wall": round(rec["train_wall_s"] / 60, 2), "train_minutes_cpu_per_thread": round(rec["train_cpu_s_per_thread"] / 60, 2),
        "epochs": rec["epochs"], "stage_epochs": rec["stage_epochs"], "load_avg_start": load_start, "load_avg_end_training": load_end_train,
        **m, "stages": rec["stages"], "machine": {"platform": platform.platform(), "cpus": os.cpu_count(), "torch": torch.__version__},
        "history": rec["history"],
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"reference_{a.recipe}{'_' + a.tag if a.tag else ''}.json"
    path.write_text(json.dumps(out, indent=1) + "\n")
    print(f"\n{a.recipe}: {rec['epochs']} epochs in {out['train_minutes_wall']:.2f} wall-min "
          f"({out['train_minutes_cpu_per_thread']:.2f} cpu-min per thread), load {load_start} -> {load_end_train}\n"
          f"  test ELBO (10k, 1 sample) {m['test_elbo_10k']:.2f} nats | NLL -L_{a.eval_k} on {a.eval_n} images "
          f"{m['nll_nats']:.2f} +- {m['nll_se']:.2f} nats ({m['nll_bits_per_dim']:.4f} bits/dim); IWAE paper VAE: 86.76\n"
          f"  full-test-set estimate (ELBO control variate) {m['nll_full_test_cv']:.2f} +- {m['nll_full_test_cv_se']:.2f}; "
          f"by k: {m['nll_by_k']}; KL {m['test_kl_10k']:.2f} nats, active units {m['active_units_2k']}\n"
          f"  wrote {path.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
