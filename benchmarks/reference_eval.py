"""Evaluate a saved reference model again, with another k or subset size (no training).

    .venv/bin/python benchmarks/reference_eval.py vae_core/checkpoints/reference_vae.pt --eval-n 200 --eval-k 5000

Same measurements as ``benchmarks/reference_vae.py`` (test ELBO on 10k, -L_k on the first n test
images binarized once with seed 0, the control-variate full-test estimate, active units); writes
``benchmarks/results/reference_eval_n<n>_k<k>.json``.
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

import reference_vae as bench  # noqa: E402

from vae_core.reference import load_reference  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("checkpoint", type=Path)
    p.add_argument("--eval-n", type=int, default=1000)
    p.add_argument("--eval-k", type=int, default=5000)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args(argv)
    torch.set_num_threads(a.threads)
    model, extra = load_reference(a.checkpoint)
    load_start = [round(v, 2) for v in os.getloadavg()]
    t0 = time.perf_counter()
    m = bench.measure(model, a.eval_n, a.eval_k, seed=a.seed)
    out = {"checkpoint": str(a.checkpoint), "recipe": extra.get("recipe"), "epochs": extra.get("epochs"),
           "command": "python benchmarks/reference_eval.py " + " ".join(argv if argv is not None else sys.argv[1:]),
           "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"), "threads": a.threads,
           "load_avg_start": load_start, "load_avg_end": [round(v, 2) for v in os.getloadavg()],
           "wall_seconds": round(time.perf_counter() - t0, 1), **m}
    path = bench.RESULTS / f"reference_eval_n{a.eval_n}_k{a.eval_k}.json"
    path.write_text(json.dumps(out, indent=1) + "\n")
    print(f"{a.checkpoint}: NLL -L_{a.eval_k} on {a.eval_n} test images {m['nll_nats']:.2f} +- {m['nll_se']:.2f} nats "
          f"({m['nll_bits_per_dim']:.4f} bits/dim); full-test estimate {m['nll_full_test_cv']:.2f} +- {m['nll_full_test_cv_se']:.2f}; "
          f"test ELBO {m['test_elbo_10k']:.2f}; by k {m['nll_by_k']}\n  wrote {path.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
