"""Lesson 07's decoder comparison: a deconvolution ("mirror") decoder against the spatial broadcast decoder.

Both models use lesson 07's recipe (``scripts/make_checkpoints.py``: every upright 32x32 sprite,
conv encoder (16, 32, 32), z of 6, Bernoulli, Adam 1e-3, batch 64, 10 epochs, seed 0) and differ only
in ``VAEConfig.decoder``. Reported per (decoder, beta): MIG on all 18,432 sprites (posterior means,
20 bins, ``vae_core.disentanglement.mig_report``), the negative ELBO's two terms on 2,000 of them, and
the training time. The broadcast runs repeat the shipped checkpoints' recipe exactly (same seed, same
loop), so their MIG can be compared with the lesson's table.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_decoders.py                  # beta 1 and 4, both decoders (~12 min)
    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_decoders.py --decoders mirror

Writes ``benchmarks/results/decoders.json`` (``--out`` to change).
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

from make_checkpoints import L07_GRID, L07_TRAIN, lesson07_vae  # noqa: E402  (the lesson's recipe, not a copy)

from vae_core import seed_everything  # noqa: E402
from vae_core.data import sprite_grid  # noqa: E402
from vae_core.data.sprites import FACTOR_NAMES  # noqa: E402
from vae_core.disentanglement import encode_sprites, mig_report  # noqa: E402
from vae_core.models import VAE  # noqa: E402
from vae_core.train import evaluate, fit  # noqa: E402

FACTORS = ("shape", "scale", "posX", "posY")


def run(decoder: str, beta: float, seed: int, epochs: int, data) -> dict:
    config = dataclasses.replace(lesson07_vae().config, decoder=decoder)
    seed_everything(seed)
    model = VAE(config)
    wall = time.perf_counter()
    fit(model, data, None, dataclasses.replace(L07_TRAIN, beta=beta, seed=seed, epochs=epochs, device="cpu"))
    wall = time.perf_counter() - wall
    model.eval()
    factors = data.factors[:, [FACTOR_NAMES.index(f) for f in FACTORS]]
    codes, _ = encode_sprites(model, (data.images, factors))
    report = mig_report(codes, factors, factor_names=FACTORS)
    idx = torch.randperm(len(data), generator=torch.Generator().manual_seed(0))[:2000]
    ev = evaluate(model, data.images[idx], seed=0)
    return {"decoder": decoder, "beta": beta, "seed": seed, "epochs": epochs, "mig": round(report.score, 4),
            "gaps": {r.factor: round(r.gap, 4) for r in report.rows}, "recon": round(ev["recon"], 3),
            "kl": round(ev["kl"], 3), "wall_seconds": round(wall, 1),
            "parameters": sum(p.numel() for p in model.parameters())}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--decoders", nargs="+", default=["mirror", "broadcast"], choices=["mirror", "broadcast"])
    parser.add_argument("--betas", nargs="+", type=float, default=[1.0, 4.0])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--epochs", type=int, default=L07_TRAIN.epochs)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "decoders.json")
    args = parser.parse_args(argv)
    data = sprite_grid(**L07_GRID)
    rows = []
    for decoder in args.decoders:
        for beta in args.betas:
            row = run(decoder, beta, args.seed, args.epochs, data)
            rows.append(row)
            print(json.dumps(row))
    out = {"rows": rows, "torch_threads": torch.get_num_threads(), "load_average_at_end": [round(v, 2) for v in os.getloadavg()],
           "command": "OMP_NUM_THREADS=%d python benchmarks/bench_decoders.py %s" % (torch.get_num_threads(), " ".join(argv or sys.argv[1:]))}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=2) + "\n")
    print(f"{'decoder':>10} {'beta':>5} {'MIG':>6} {'recon':>7} {'KL':>6} {'minutes':>8}")
    for r in rows:
        print(f"{r['decoder']:>10} {r['beta']:>5g} {r['mig']:6.3f} {r['recon']:7.2f} {r['kl']:6.2f} {r['wall_seconds'] / 60:8.1f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
