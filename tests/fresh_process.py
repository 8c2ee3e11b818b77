"""Run a snippet in a fresh Python process: nothing this test session imported is loaded there.

For checks that must not see the test's own imports, e.g. that ``load_checkpoint`` finds a variant's
module (``vae_core.cvae``, ``vae_core.hierarchical``, ``vae_core.priors``) by the model's name alone.
"""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def run_fresh(script: str) -> None:
    """Run ``script`` with the repository on the path and one math thread; fail with its stderr if it fails."""
    env = {"PATH": "/usr/bin:/bin", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    done = subprocess.run([sys.executable, "-c", script], cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
