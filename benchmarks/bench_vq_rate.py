"""Lesson 09's comparison at matched rate: the shipped VQ-VAE against continuous VAEs that spend as many bits.

The VQ-VAE (``lesson09_vq_ema_restart``: conv 28 -> 14 -> 7, 64 codes of D = 16) spends 294 bits per digit under
its uniform prior and about 130 under the shipped PixelCNN prior (``lesson09_prior``). The VAEs of lessons 06 and 08
spend 2 to 77 bits, so the lesson's plot compares operating points, not models at equal rate. This script trains
VAEs with the same conv encoder (``VAEConfig(arch="conv")``, channels (32, 64), the mirror decoder), a larger z and
small betas, so that their KL reaches the VQ-VAE's code length, on the same data and budget as the VQ-VAE (the first
20k dynamically binarized training digits, 6 epochs, batch 128, Adam 1e-3, seed 0: ``make_checkpoints.L09_TRAIN``).
Rate (KL in bits) and distortion (-log p(x|z) in nats, one z per digit) on the lesson's 2,000 test digits, binarized
once (``load_mnist("test", binarize="static", limit=2000)``), beside the VQ-VAE's distortion and code lengths.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_vq_rate.py                 # betas 0.03, 0.1, 0.3 (~10 min)
    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_vq_rate.py --betas 0.1 --out /tmp/one.json

Writes ``benchmarks/results/vq_rate.json`` (``--out`` to change).
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

from make_checkpoints import L09_LIMIT, L09_TRAIN  # noqa: E402  (the VQ-VAE's recipe, not a copy)

from vae_core import CHECKPOINT_DIR, seed_everything  # noqa: E402
from vae_core.data import load_mnist  # noqa: E402
from vae_core.models import VAE, VAEConfig  # noqa: E402
from vae_core.train import evaluate, fit, load_checkpoint  # noqa: E402

BITS = 1 / math.log(2)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--betas", type=float, nargs="+", default=[0.03, 0.1, 0.3])
    parser.add_argument("--latent-dim", type=int, default=64)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "vq_rate.json")
    args = parser.parse_args(argv)

    x_test = load_mnist("test", binarize="static", limit=2000).images
    vq, _ = load_checkpoint(CHECKPOINT_DIR / "lesson09_vq_ema_restart.pt", device="cpu")
    prior, _ = load_checkpoint(CHECKPOINT_DIR / "lesson09_prior.pt", device="cpu")
    with torch.no_grad():
        code_length = -prior.log_prob(vq.codes(x_test)).mean().item() * BITS
    grid = vq.config.grid
    result = {
        "command": "OMP_NUM_THREADS=1 python benchmarks/bench_vq_rate.py " + " ".join(argv if argv is not None else sys.argv[1:]),
        "data": f"train: MNIST first {L09_LIMIT} dynamically binarized; eval: first 2000 test digits binarized once (static, seed 0)",
        "train": dataclasses.asdict(L09_TRAIN),
        "vq": {"file": "lesson09_vq_ema_restart.pt", "distortion_nats": round(evaluate(vq, x_test)["recon"], 3),
               "rate_uniform_bits": round(grid[0] * grid[1] * math.log2(vq.config.codebook_size), 2),
               "rate_prior_bits": round(code_length, 2)},
        "vae": [],
        "torch_threads": torch.get_num_threads(),
    }
    train = load_mnist("train", binarize="dynamic", limit=L09_LIMIT)
    for beta in args.betas:
        seed_everything(L09_TRAIN.seed)
        model = VAE(VAEConfig(latent_dim=args.latent_dim, hidden=(), arch="conv", channels=(32, 64)))
        start = time.process_time()
        fit(model, train, None, dataclasses.replace(L09_TRAIN, beta=beta, device="cpu"))
        cpu = time.process_time() - start
        torch.manual_seed(0)
        out = evaluate(model.eval(), x_test)
        row = {"beta": beta, "latent_dim": args.latent_dim, "rate_bits": round(out["kl"] * BITS, 2),
               "distortion_nats": round(out["recon"], 3), "elbo_nats": round(out["elbo"], 3),
               "parameters": sum(p.numel() for p in model.parameters()), "cpu_seconds": round(cpu, 1),
               "load_average_at_end": [round(v, 2) for v in os.getloadavg()]}
        result["vae"].append(row)
        print(json.dumps(row), flush=True)
    result["vq"]["parameters"] = sum(p.numel() for p in vq.parameters())
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result["vq"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
