"""``vae-course lab``: the course's front door (what ``make lab`` runs).

It brings the learner's workspace up to date (:mod:`.workspace`), then starts JupyterLab with

- the **course root** as the server root, so every lesson, the README and the library are in
  the file browser, and as the working folder, where the Validate button looks for
  ``nbgrader_config.py``;
- the learner's lesson 00 (or the first lesson they have) opened;
- ``jupyter_config/`` first on ``JUPYTER_CONFIG_PATH``: nbgrader's instructor panels hidden,
  Validate kept, JupyterLab's news pop-up off;
- one math thread per kernel unless ``OMP_NUM_THREADS`` says otherwise (see README);
- ``--allow-root`` when run as root (containers), whatever extra arguments are given.

Extra arguments go to ``jupyter lab`` unchanged (``vae-course lab --no-browser --port 8899``).
"""
from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Sequence

from .course import WORKSPACE_DIR, Lesson, list_lessons

CONFIG_DIR = "jupyter_config"


def first_lesson(root: Path) -> Lesson | None:
    """The lesson to open: the first one the learner has a copy of."""
    lessons = [lesson for lesson in list_lessons(root) if lesson.workspace.is_file()]
    return lessons[0] if lessons else None


def lab_command(root: Path, extra: Sequence[str] = ()) -> list[str]:
    """The ``jupyter lab`` command line ``make lab`` runs for the course at ``root``."""
    root = Path(root).resolve()
    argv = [sys.executable, "-m", "jupyterlab", f"--ServerApp.root_dir={root}"]
    if hasattr(os, "geteuid") and os.geteuid() == 0 and "--allow-root" not in extra:
        argv.append("--allow-root")  # JupyterLab refuses root unless told it is intended
    argv += list(extra)
    lesson = first_lesson(root)
    if lesson is not None:
        argv.append(lesson.workspace.relative_to(root).as_posix())  # opened in the first tab
    return argv


def lab_environment(root: Path, base: dict[str, str] | None = None) -> dict[str, str]:
    """``base`` (default: this process's environment) with the course's Jupyter config first and
    one math thread per kernel unless already set."""
    env = dict(os.environ if base is None else base)
    config = str(Path(root).resolve() / CONFIG_DIR)
    env["JUPYTER_CONFIG_PATH"] = config + (os.pathsep + env["JUPYTER_CONFIG_PATH"] if env.get("JUPYTER_CONFIG_PATH") else "")
    env.setdefault("OMP_NUM_THREADS", "1")
    return env


def run_lab(root: Path, extra: Sequence[str] = (), out=None) -> None:
    """Sync the workspace, say what changed, then replace this process with JupyterLab."""
    from .workspace import sync_workspace

    out = out or sys.stdout
    root = Path(root).resolve()
    report = sync_workspace(root)
    for line in report.lines():
        print(line, file=out)
    print(f"Opening the course at {root} (your lessons are in {WORKSPACE_DIR}/).", file=out)
    out.flush()
    os.chdir(root)  # Validate reads nbgrader_config.py from the server's working folder
    argv = lab_command(root, extra)
    os.execve(argv[0], argv, lab_environment(root))
