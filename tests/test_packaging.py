"""Packaging checks: the two dependency lists agree, and importing vae_core has no side effects."""
from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _pyproject_pins() -> dict[str, str]:
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    return dict(_split(d) for d in deps)


def _split(req: str) -> tuple[str, str]:
    m = re.fullmatch(r"\s*([A-Za-z0-9_.\-]+)\s*(==.+)?\s*", req)
    if not m:
        raise ValueError(f"unparseable requirement {req!r}")
    return m.group(1).lower().replace("_", "-"), (m.group(2) or "").strip()


def _environment_pins() -> dict[str, str]:
    # environment.yml is simple enough to read without PyYAML: the pip: block's "- name==version" lines.
    lines = (ROOT / "environment.yml").read_text().splitlines()
    start = next(i for i, l in enumerate(lines) if l.strip() == "- pip:")
    pins = {}
    for line in lines[start + 1:]:
        item = line.strip()
        if not item.startswith("- "):
            break
        item = item[2:].strip()
        if item.startswith("-e"):
            continue
        name, ver = _split(item)
        pins[name] = ver
    return pins


def test_environment_yml_matches_pyproject():
    py, env = _pyproject_pins(), _environment_pins()
    assert py == env, f"pyproject.toml and environment.yml disagree: only/different in pyproject {set(py.items()) - set(env.items())}, in environment.yml {set(env.items()) - set(py.items())}"


def test_every_dependency_is_pinned_and_torch_exact():
    pins = _pyproject_pins()
    unpinned = [n for n, v in pins.items() if not v.startswith("==")]
    assert not unpinned, f"unpinned dependencies: {unpinned}"
    assert pins["torch"] == "==2.13.0", "torch must stay pinned to 2.13.0 (a looser range pulls a CUDA build)"
    assert "torchvision" not in pins, "torchvision fails to import beside this torch; leave it out"


def test_installed_versions_match_pins():
    from importlib.metadata import version

    for name, ver in _pyproject_pins().items():
        installed = version(name).split("+")[0]
        assert installed == ver[2:], f"{name}: pinned {ver[2:]}, installed {installed}; rerun `make setup`"


def test_import_is_silent_and_lazy():
    out = subprocess.run([sys.executable, "-c", "import vae_core"], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout == "" and out.stderr == "", f"importing vae_core printed something: {out.stdout!r} {out.stderr!r}"


def test_import_does_not_load_torch_until_needed():
    # `vae-course progress`/`grade` import vae_core but never train: torch's start-up is not theirs to pay
    code = "import sys, vae_core, vae_core.grading.cli; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False", "importing vae_core (or its grading CLI) imported torch"
    lazy = subprocess.run([sys.executable, "-c", "from vae_core import seed_everything; seed_everything(1)"],
                          capture_output=True, text=True, timeout=120)
    assert lazy.returncode == 0, lazy.stderr


def test_quick_mode_switch(monkeypatch):
    from vae_core import QUICK_ENV, pick, quick_mode

    monkeypatch.setenv(QUICK_ENV, "1")
    assert quick_mode() and pick(full=10, quick=1) == 1
    monkeypatch.setenv(QUICK_ENV, "0")
    assert not quick_mode() and pick(full=10, quick=1) == 10
    monkeypatch.delenv(QUICK_ENV)
    assert not quick_mode()
    monkeypatch.setenv(QUICK_ENV, "maybe")
    with pytest.raises(ValueError, match="VAE_COURSE_QUICK must be one of"):
        quick_mode()


def test_seed_everything_reproduces_and_validates():
    import torch

    from vae_core import seed_everything

    seed_everything(3)
    a = torch.randn(5)
    seed_everything(3)
    assert torch.equal(a, torch.randn(5))
    with pytest.raises(ValueError, match="non-negative int"):
        seed_everything(-1)


def test_get_device_validates():
    from vae_core import get_device

    assert get_device("cpu").type == "cpu"
    with pytest.raises(ValueError, match="prefer must be"):
        get_device("tpu")
