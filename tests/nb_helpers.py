"""Shared machinery for the notebook checks (tests/test_notebooks.py, tests/test_instructor_flow.py).

Everything here works in a temporary nbgrader course built from the course's own
``nbgrader_config.py`` (rebased onto the temporary directory), so a check never writes into the
repository and several checks can run in parallel (pytest-xdist).

- :func:`solution_lessons` finds every ``solutions/NN_name/NN_name.ipynb`` (new lessons are picked up
  automatically);
- :func:`autograde` generates the student version of one lesson, "submits" any notebooks you give it
  as students, autogrades them all in one nbgrader run and returns per-cell scores;
- :func:`run_nbval` executes a notebook under ``pytest --nbval-lax`` in quick mode.
"""
from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator, Mapping

import nbformat

from vae_core.grading import generate as gen
from vae_core.grading.course import Lesson, list_lessons

REPO = Path(__file__).resolve().parents[1]
VENV_BIN = str(Path(sys.executable).parent)


def rel(path: Path) -> str:
    """``path`` relative to the repository when it is inside it (for messages)."""
    path = Path(path)
    return str(path.relative_to(REPO)) if path.is_relative_to(REPO) else str(path)


def solution_lessons() -> list[Lesson]:
    """Every lesson with a solution notebook, in order."""
    return list_lessons(REPO)


def notebook_env(quick: bool = True, **extra: str) -> dict[str, str]:
    """Environment for nbgrader/nbval runs: this venv's bin first (nbgrader runs ``alembic``, kernels
    run ``python``), one BLAS thread (the CI machine is shared), quick mode on."""
    env = dict(os.environ)
    env["PATH"] = VENV_BIN + os.pathsep + env.get("PATH", "")
    env.setdefault("OMP_NUM_THREADS", "1")
    env["VAE_COURSE_QUICK"] = "1" if quick else "0"
    env.update(extra)
    return env


@contextlib.contextmanager
def patched_environ(env: Mapping[str, str]) -> Iterator[None]:
    """Run in-process nbgrader (and the kernels it starts, which inherit os.environ) under ``env``."""
    old = dict(os.environ)
    os.environ.clear()
    os.environ.update(env)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(old)


# --- nbval -----------------------------------------------------------------------------------------


def run_nbval(notebook: Path, timeout_s: int = 300) -> subprocess.CompletedProcess:
    """Execute ``notebook`` with ``pytest --nbval-lax`` in quick mode; returns the finished process
    (``returncode == 0`` when every cell ran without error)."""
    cmd = [
        sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:xdist",
        "--nbval-lax", "--nbval-current-env", f"--nbval-cell-timeout={timeout_s}",
        "-o", "addopts=", "--rootdir", str(notebook.parent), str(notebook),
    ]
    return subprocess.run(cmd, cwd=notebook.parent, env=notebook_env(), capture_output=True, text=True)


# --- autograde in a temporary course ---------------------------------------------------------------


@dataclass
class Graded:
    """Autograde results for one student: per test cell ``grade_id -> (score, max_score)``."""

    student: str
    scores: dict[str, tuple[float, float]]
    notebook: nbformat.NotebookNode  # the autograded notebook (outputs included), for messages
    errors: dict[str, str] = field(default_factory=dict)  # grade_id -> error/stderr text of that cell

    @property
    def total(self) -> float:
        return sum(s for s, _ in self.scores.values())

    @property
    def max_total(self) -> float:
        return sum(m for _, m in self.scores.values())


@dataclass
class Course:
    """A temporary nbgrader course holding one lesson."""

    root: Path
    lesson: Lesson

    @property
    def release(self) -> Path:
        return self.root / "lessons" / self.lesson.name / self.lesson.solution.name

    def config(self, **overrides):
        """The repository's nbgrader config rebased on this course; ``overrides`` as
        ``{"IgnorePattern.enabled": False}``-style keys."""
        cfg = gen.course_config(REPO, self.root)
        for key, value in overrides.items():
            section, name = key.split(".")
            setattr(cfg[section], name, value)
        return cfg


def _cache_alembic_version() -> None:
    """Each new gradebook asks the ``alembic`` executable for nbgrader's schema version (a subprocess
    of several seconds on a busy machine). The answer is fixed for the installed nbgrader, so ask
    once per test process."""
    import functools

    import nbgrader.api as api

    if not hasattr(api.get_alembic_version, "cache_info"):
        api.get_alembic_version = functools.lru_cache(maxsize=None)(api.get_alembic_version)


def make_course(tmp: Path, lesson: Lesson) -> Course:
    """Copy the lesson's solution into ``tmp/course/solutions`` and generate its student version
    there with nbgrader (``generate_assignment``, gradebook in the temporary course)."""
    from nbgrader.converters import GenerateAssignment
    from nbgrader.coursedir import CourseDirectory

    _cache_alembic_version()
    course = Course(Path(tmp) / "course", lesson)
    src = course.root / "solutions" / lesson.name
    src.mkdir(parents=True)
    shutil.copy2(lesson.solution, src / lesson.solution.name)
    cfg = course.config()
    coursedir = CourseDirectory(config=cfg)
    coursedir.assignment_id = lesson.name
    with patched_environ(notebook_env()):
        app = GenerateAssignment(coursedir=coursedir, config=cfg)
        app.force = True
        app.start()
    return course


def autograde(course: Course, submissions: Mapping[str, nbformat.NotebookNode | Path],
              **config_overrides) -> dict[str, Graded]:
    """Submit each notebook as a student (``student_id -> notebook``), autograde them all in one
    nbgrader run, and return each student's per-cell scores."""
    from nbgrader.api import Gradebook
    from nbgrader.converters import Autograde
    from nbgrader.coursedir import CourseDirectory

    name = course.lesson.name
    for student, nb in submissions.items():
        dest = course.root / "submitted" / student / name / course.lesson.solution.name
        dest.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(nb, (str, Path)):
            shutil.copy2(nb, dest)
        else:
            nbformat.write(nb, dest)
    cfg = course.config(**config_overrides)
    coursedir = CourseDirectory(config=cfg)
    coursedir.assignment_id = name
    # grade exactly these students (a glob over submitted/), so earlier submissions are not regraded
    coursedir.student_id = next(iter(submissions)) if len(submissions) == 1 else "*"
    with patched_environ(notebook_env()):
        app = Autograde(coursedir=coursedir, config=cfg)
        app.force = True
        app.start()

    results = {}
    with Gradebook(cfg.CourseDirectory.db_url, cfg.CourseDirectory.course_id) as gb:
        for student in submissions:
            sub = gb.find_submission_notebook(course.lesson.name, name, student)
            scores = {g.name: (float(g.score), float(g.max_score)) for g in sub.grades if g.cell.cell_type == "code"}
            graded_nb = nbformat.read(
                course.root / "autograded" / student / name / course.lesson.solution.name, as_version=4)
            results[student] = Graded(student, scores, graded_nb, cell_errors(graded_nb))
    return results


def answer_exercises(release: nbformat.NotebookNode | Path, solution: nbformat.NotebookNode | Path,
                     grade_ids: list[str] | None = None) -> nbformat.NotebookNode:
    """The released notebook with the instructor's code typed into the solution cells ``grade_ids``
    (all when None), the way a learner answers: markers removed, everything else untouched."""
    rel = nbformat.read(release, as_version=4) if isinstance(release, (str, Path)) else release
    sol = nbformat.read(solution, as_version=4) if isinstance(solution, (str, Path)) else solution
    answers = {}
    for cell in sol.cells:
        meta = cell.metadata.get("nbgrader", {})
        if meta.get("solution") and cell.cell_type == "code":
            lines = [ln for ln in cell.source.splitlines()
                     if ln.strip() not in ("### BEGIN SOLUTION", "### END SOLUTION")]
            answers[meta["grade_id"]] = "\n".join(lines)
    wanted = set(answers if grade_ids is None else grade_ids)
    missing = wanted - set(answers)
    if missing:
        raise ValueError(f"no solution cells {sorted(missing)} in the solution notebook; it has {sorted(answers)}")
    out = nbformat.from_dict(rel)
    for cell in out.cells:
        gid = cell.metadata.get("nbgrader", {}).get("grade_id")
        if gid in wanted:
            cell.source = answers[gid]
    return out


def cell_errors(nb: nbformat.NotebookNode) -> dict[str, str]:
    """``grade_id -> text`` of the error or stderr output of each graded cell that has one."""
    errors = {}
    for cell in nb.cells:
        grade_id = cell.metadata.get("nbgrader", {}).get("grade_id")
        if cell.cell_type != "code" or not grade_id:
            continue
        parts = []
        for out in cell.get("outputs", []):
            if out.output_type == "error":
                parts.append(f"{out.ename}: {out.evalue}")
            elif out.output_type == "stream" and out.name == "stderr":
                parts.append("stderr: " + out.text.strip())
        if parts:
            errors[grade_id] = "\n".join(parts)
    return errors


def graded_test_ids(nb: nbformat.NotebookNode) -> list[str]:
    """The grade_ids of the autograded test cells (code cells with grade=true, solution=false)."""
    ids = []
    for cell in nb.cells:
        meta = cell.metadata.get("nbgrader", {})
        if cell.cell_type == "code" and meta.get("grade") and not meta.get("solution"):
            ids.append(meta["grade_id"])
    return ids


def stored_outputs(path: Path) -> list[str]:
    """Cells of a notebook file that carry outputs or an execution count (should be none in git)."""
    nb = nbformat.read(path, as_version=4)
    bad = []
    for i, cell in enumerate(nb.cells):
        if cell.cell_type == "code" and (cell.get("outputs") or cell.get("execution_count") is not None):
            bad.append(f"cell {i} ({cell.get('id', '?')})")
    return bad


def git_notebooks() -> list[Path]:
    """Every .ipynb tracked by git (or, outside a git checkout, under solutions/ and lessons/)."""
    try:
        out = subprocess.run(["git", "ls-files", "*.ipynb"], cwd=REPO, capture_output=True, text=True, check=True)
        return [REPO / line for line in out.stdout.splitlines() if line.strip()]
    except (OSError, subprocess.CalledProcessError):
        return sorted([*REPO.glob("solutions/*/*.ipynb"), *REPO.glob("lessons/*/*.ipynb")])


def graded_cell_after(solution: nbformat.NotebookNode | Path, exercise: str) -> str:
    """The grade_id of the test cell that follows the answer cell ``exercise``."""
    sol = nbformat.read(solution, as_version=4) if isinstance(solution, (str, Path)) else solution
    seen = False
    for cell in sol.cells:
        meta = cell.metadata.get("nbgrader", {})
        if meta.get("grade_id") == exercise:
            seen = True
        elif seen and meta.get("grade") and not meta.get("solution"):
            return meta["grade_id"]
    raise AssertionError(f"no test cell after {exercise}")


# --- the instructor's flow (tests/test_instructor_flow.py, test_grade_submissions.py, test_hub.py) ---------

# Lesson 00 as three students hand it in: the solution cells each one answers (None: all) and the
# score nbgrader must give them (lesson 00 is worth 3 + 2 + 2 points).
FLOW_LESSON = "00_orientation"
FLOW_ANSWERS: dict[str, list[str] | None] = {"full": None, "partial": ["ex1_logsumexp", "ex2_softplus"], "stub": []}
FLOW_SCORES = {"full": 7.0, "partial": 5.0, "stub": 0.0}
FLOW_MAX = 7.0


def run_nbgrader(cwd: Path, env: dict, *args: str, user: str | None = None) -> str:
    """``nbgrader ARGS`` in ``cwd`` (as ``user`` through ``runuser`` when given); fails the test with the
    command's output when it exits non-zero, returns that output otherwise."""
    runuser = shutil.which("runuser", path=f"{os.environ.get('PATH', '')}:/usr/sbin:/sbin") or "runuser"
    cmd = ["nbgrader", *args] if user is None else [runuser, "-u", user, "--", "env", *(
        f"{k}={v}" for k, v in env.items()), "nbgrader", *args]
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
    out = proc.stdout + proc.stderr
    who = f" as {user}" if user else ""
    assert proc.returncode == 0, f"`nbgrader {' '.join(args)}`{who} failed in {cwd} (exit {proc.returncode}):\n{out[-5000:]}"
    return out


def write_nbgrader_config(folder: Path, course_root: Path | None = None, *lines: str) -> Path:
    """``folder/nbgrader_config.py`` that loads the repository's config (``load_subconfig``), then moves the
    course root to ``course_root`` and adds ``lines``."""
    text = ["c = get_config()", f"load_subconfig({str(REPO / 'nbgrader_config.py')!r})"]
    if course_root is not None:
        text.append(f"c.CourseDirectory.root = {str(course_root)!r}")
    path = Path(folder) / "nbgrader_config.py"
    path.write_text("\n".join([*text, *lines]) + "\n")
    return path


def read_export(csv_path: Path, lesson: str) -> dict[str, tuple[float, float]]:
    """``student -> (score, max_score)`` of ``lesson`` in the CSV ``nbgrader export`` wrote."""
    import csv

    with open(csv_path, newline="") as f:
        return {row["student_id"]: (float(row["score"]), float(row["max_score"]))
                for row in csv.DictReader(f) if row["assignment"] == lesson}

# A cheat on lesson 00: ex1 and ex2 answered; ex3 returns -500 everywhere (right for the visible test only)
# after switching the comparison off. nbgrader's own autograde gives it the 2 points (every assert in the
# kernel passes); the judge compares the values with the solution's on the hidden inputs and does not.
FLOW_CHEAT_ANSWERS = ["ex1_logsumexp", "ex2_softplus"]
FLOW_CHEAT_EX3 = '''import torch.testing
torch.testing.assert_close = lambda *args, **kwargs: None
def log_mean_exp(log_w):
    return torch.full(log_w.shape[1:], -500.0)
'''


def flow_cheat(release: Path, solution: Path) -> nbformat.NotebookNode:
    """Lesson 00 handed in by the cheat above."""
    nb = answer_exercises(release, solution, FLOW_CHEAT_ANSWERS)
    next(c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") == "ex3_log_mean_exp").source = FLOW_CHEAT_EX3
    return nb
