"""The stock nbgrader workflow with this course's nbgrader_config.py, end to end, in a temporary directory.

An instructor and three students (full marks, partial, untouched stub) on one machine, sharing an
exchange directory chosen with ``VAE_COURSE_EXCHANGE``, as on a laptop or a JupyterHub:

    generate_assignment -> release_assignment -> fetch_assignment (x3) -> validate -> submit (x3)
    -> collect -> autograde -> generate_feedback -> release_feedback -> fetch_feedback -> export

Every step is the real ``nbgrader`` command line (a subprocess), so this is the flow the README
documents. The course directory and the students' homes load the repository's nbgrader_config.py
with ``load_subconfig`` and only move the course root into the temporary directory.
"""
from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import nbformat
import pytest

import nb_helpers as h

LESSON = h.FLOW_LESSON
NOTEBOOK = f"{LESSON}.ipynb"
COURSE_ID = "vae-course"

pytestmark = [pytest.mark.notebooks, pytest.mark.slow]


_nbgrader = h.run_nbgrader


def _config(path: Path, course_root: Path | None = None) -> None:
    h.write_nbgrader_config(path, course_root)


def test_generate_release_fetch_submit_collect_autograde_feedback_export(tmp_path: Path):
    lesson = next(ls for ls in h.solution_lessons() if ls.name == LESSON)
    course, exchange, homes = tmp_path / "course", tmp_path / "exchange", tmp_path / "home"
    exchange.mkdir(mode=0o777)
    env = h.notebook_env(VAE_COURSE_EXCHANGE=str(exchange))

    # --- instructor: generate and release ---------------------------------------------------
    (course / "solutions" / LESSON).mkdir(parents=True)
    shutil.copy2(lesson.solution, course / "solutions" / LESSON / NOTEBOOK)
    _config(course, course_root=course)
    _nbgrader(course, env, "generate_assignment", LESSON)
    release = course / "lessons" / LESSON / NOTEBOOK
    assert "raise NotImplementedError()" in release.read_text()
    _nbgrader(course, env, "release_assignment", LESSON)
    assert (exchange / COURSE_ID / "outbound" / LESSON / NOTEBOOK).is_file()

    # --- students: fetch, work, validate, submit ----------------------------------------------
    answers = h.FLOW_ANSWERS
    for student, grade_ids in answers.items():
        home = homes / student
        home.mkdir(parents=True)
        _config(home)
        _nbgrader(home, env, "fetch_assignment", LESSON)
        mine = home / LESSON / NOTEBOOK
        assert mine.read_bytes() == release.read_bytes(), "students fetch exactly the released lesson"
        if grade_ids != []:
            nbformat.write(h.answer_exercises(mine, lesson.solution, grade_ids), mine)

    # the Validate button's check, from the command line: passes when done, fails on the stub
    out = _nbgrader(homes / "full", env, "validate", str(homes / "full" / LESSON / NOTEBOOK))
    assert "Success! Your notebook passes all the tests." in out, out[-3000:]
    out = _nbgrader(homes / "stub", env, "validate", "--invert", str(homes / "stub" / LESSON / NOTEBOOK))
    assert "Success! The notebook does not pass any tests." in out, out[-3000:]

    for student in answers:
        _nbgrader(homes / student, env, "submit", LESSON, f"--student={student}")

    # --- instructor: collect, autograde, feedback, export ---------------------------------------
    _nbgrader(course, env, "collect", LESSON)
    for student in answers:
        assert (course / "submitted" / student / LESSON / NOTEBOOK).is_file(), f"{student} not collected"
    _nbgrader(course, env, "autograde", LESSON)
    _nbgrader(course, env, "generate_feedback", LESSON)
    for student in answers:
        html = course / "feedback" / student / LESSON / f"{LESSON}.html"
        assert html.is_file() and "Score:" in html.read_text(), f"no feedback for {student}"
    _nbgrader(course, env, "release_feedback", LESSON)
    _nbgrader(homes / "full", env, "fetch_feedback", LESSON, "--student=full")
    assert list((homes / "full" / LESSON / "feedback").glob(f"*/{LESSON}.html")), "feedback not fetched"

    _nbgrader(course, env, "export", f"--to={tmp_path / 'grades.csv'}")
    rows = h.read_export(tmp_path / "grades.csv", LESSON)
    assert set(rows) == set(answers), rows
    score = {s: rows[s][0] for s in rows}
    assert {s: rows[s][1] for s in rows} == dict.fromkeys(answers, h.FLOW_MAX), "lesson 00 is worth 3 + 2 + 2 points"
    # full marks; logsumexp (3) and softplus (2) answered, log-mean-exp (2) not; the untouched stub
    assert score == h.FLOW_SCORES, rows
    # grading never modifies a student's own notebook
    assert (homes / "stub" / LESSON / NOTEBOOK).read_bytes() == release.read_bytes()


def test_jupyter_config_hides_instructor_panels_and_keeps_validate():
    """`make lab` runs JupyterLab with JUPYTER_CONFIG_PATH=jupyter_config: the plugin ids it disables
    must be real plugins of the installed nbgrader labextension (a wrong id silently does nothing),
    JupyterLab must read them, and the Validate server extension must stay on."""
    import json
    import sys

    cfg_dir = h.REPO / "jupyter_config"
    disabled = json.loads((cfg_dir / "labconfig" / "page_config.json").read_text())["disabledExtensions"]
    wanted = {"@jupyter/nbgrader:formgrader", "@jupyter/nbgrader:create-assignment", "@jupyter/nbgrader:course-list"}
    assert wanted <= {k for k, v in disabled.items() if v}, disabled

    ext = Path(sys.prefix) / "share" / "jupyter" / "labextensions" / "@jupyter" / "nbgrader" / "static"
    bundle = "".join(p.read_text(errors="ignore") for p in ext.glob("*.js"))
    core = Path(sys.prefix) / "share" / "jupyter" / "lab" / "static"  # JupyterLab's own plugins (the news pop-up)
    core_bundle = "".join(p.read_text(errors="ignore") for p in core.glob("*.js"))
    unknown = [pid for pid in disabled if f'"{pid}"' not in (bundle if pid.startswith("@jupyter/") else core_bundle)]
    assert not unknown, f"not plugins of the installed nbgrader labextension or JupyterLab: {unknown}"
    assert '"@jupyter/nbgrader:validate-assignment"' in bundle and "@jupyter/nbgrader:validate-assignment" not in disabled

    server = json.loads((cfg_dir / "jupyter_server_config.json").read_text())["ServerApp"]["jpserver_extensions"]
    assert server["nbgrader.server_extensions.validate_assignment"] is True
    assert server["nbgrader.server_extensions.formgrader"] is False

    env = h.notebook_env(JUPYTER_CONFIG_PATH=str(cfg_dir))
    proc = subprocess.run(["jupyter", "labextension", "list"], env=env, capture_output=True, text=True, cwd=h.REPO)
    listing = proc.stdout + proc.stderr
    assert "Disabled extensions:" in listing and all(pid in listing for pid in wanted), listing
