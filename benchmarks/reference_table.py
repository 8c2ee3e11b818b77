"""Print the markdown table of every reference-VAE run in benchmarks/results/reference_*.json.

    .venv/bin/python benchmarks/reference_table.py

One row per results file (``benchmarks/reference_vae.py`` writes them), sorted by NLL: recipe,
training budget and clock, minutes actually trained (wall, and CPU per thread), epochs, load
average during training, test ELBO (10k images, one sample) and KL, NLL (-L_k on the first n test images,
with its standard error), the full-test-set NLL estimate with the ELBO as control variate (files written
before that estimate existed show n/a), bits/dim (of the subset NLL), and the results file (its
"command" field reproduces the row).
"""
from __future__ import annotations

import json
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"


def rows() -> list[dict]:
    out = []
    for p in sorted(RESULTS.glob("reference_*.json")):
        r = json.loads(p.read_text())
        if "nll_nats" in r and "train_minutes_wall" in r:  # reference_eval_*.json (re-evaluations) are listed apart
            out.append({**r, "file": p.name})
    return sorted(out, key=lambda r: r["nll_nats"])


def main() -> int:
    print("| recipe | budget | trained (wall min / cpu-min per thread) | threads | epochs | load avg (start -> end) "
          "| test ELBO (10k) | KL | NLL -L_k on the first n (n, k) | full-test NLL estimate | bits/dim | file |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows():
        cv = f"{r['nll_full_test_cv']:.2f} +- {r['nll_full_test_cv_se']:.2f}" if "nll_full_test_cv" in r else "n/a"
        budget = f"{r['budget_min']:g} min {r['clock']}" if r.get("budget_min") else f"epochs {r['stage_epochs']}"
        print(f"| {r['recipe']} | {budget} | {r['train_minutes_wall']:.1f} / {r['train_minutes_cpu_per_thread']:.1f} | {r['threads']} "
              f"| {r['epochs']} | {r['load_avg_start'][0]:.1f} -> {r['load_avg_end_training'][0]:.1f} | {r['test_elbo_10k']:.2f} "
              f"| {r['test_kl_10k']:.1f} | {r['nll_nats']:.2f} +- {r['nll_se']:.2f} ({r['eval_n']}, {r['eval_k']}) | {cv} "
              f"| {r['nll_bits_per_dim']:.4f} | {r['file']} |")
    evals = [json.loads(p.read_text()) | {"file": p.name} for p in sorted(RESULTS.glob("reference_eval_*.json"))]
    if evals:
        print("\n| re-evaluated checkpoint | NLL -L_k (n images, k) | full-test estimate (CV) | test ELBO (10k) | file |")
        print("|---|---|---|---|---|")
        for r in evals:
            print(f"| {r['checkpoint']} ({r['recipe']}, {r['epochs']} epochs) | {r['nll_nats']:.2f} +- {r['nll_se']:.2f} "
                  f"({r['eval_n']}, {r['eval_k']}) | {r['nll_full_test_cv']:.2f} +- {r['nll_full_test_cv_se']:.2f} "
                  f"| {r['test_elbo_10k']:.2f} | {r['file']} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
