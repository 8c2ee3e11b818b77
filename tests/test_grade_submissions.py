"""``vae-course grade-submissions``: the judge on every collected submission, into nbgrader's gradebook.

A temporary nbgrader course (the repository's config, lesson 00) with five collected submissions:
the three students of the instructor flow (full marks, partial, untouched stub), a cheat whose
answer switches ``torch.testing.assert_close`` off so every in-kernel assert passes on a wrong
answer, and a file that is not a notebook. After ``vae-course grade-submissions`` the stock
``nbgrader generate_feedback`` and ``nbgrader export`` must work unchanged and give the judge's
scores; no submission is modified; a second run skips what was graded and keeps a manual score.
"""
from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

import nb_helpers as h

LESSON = h.FLOW_LESSON
NOTEBOOK = f"{LESSON}.ipynb"
CLI = [sys.executable, "-m", "vae_core.grading.cli"]

pytestmark = [pytest.mark.notebooks, pytest.mark.slow]

def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _cli(course: Path, env: dict, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([*CLI, "grade-submissions", *args], cwd=course, env=env, capture_output=True, text=True)


@pytest.fixture(scope="module")
def course(tmp_path_factory):
    """The course after generate_assignment, with the five submissions collected (as `nbgrader collect`
    lays them out: submitted/STUDENT/LESSON/ with a timestamp.txt)."""
    tmp = tmp_path_factory.mktemp("submissions")
    lesson = next(ls for ls in h.solution_lessons() if ls.name == LESSON)
    root = tmp / "course"
    (root / "solutions" / LESSON).mkdir(parents=True)
    shutil.copy2(lesson.solution, root / "solutions" / LESSON / NOTEBOOK)
    h.write_nbgrader_config(root, root)
    env = h.notebook_env(VAE_COURSE_EXCHANGE=str(tmp / "exchange"), VAE_COURSE_CACHE=str(tmp / "cache"))
    h.run_nbgrader(root, env, "generate_assignment", LESSON)
    release = root / "lessons" / LESSON / NOTEBOOK
    notebooks = {s: h.answer_exercises(release, lesson.solution, ids) for s, ids in h.FLOW_ANSWERS.items()}
    notebooks["cheat"] = h.flow_cheat(release, lesson.solution)  # ex3's checks switched off, wrong values
    for student, nb in [*notebooks.items(), ("broken", None)]:
        folder = root / "submitted" / student / LESSON
        folder.mkdir(parents=True)
        (folder / "timestamp.txt").write_text("2026-12-01 10:00:00.000000 UTC")
        if nb is None:
            (folder / NOTEBOOK).write_text('{"cells": [ {"cell_type": "code", "sou')  # cut short
        else:
            nbformat.write(nb, folder / NOTEBOOK)
    before = {p: _sha(p) for p in (root / "submitted").rglob("*") if p.is_file()}
    proc = _cli(root, env, "00", "--jobs", "2")
    return root, env, before, proc, tmp


def test_grade_submissions_scores_feed_nbgrader_feedback_and_export(course):
    root, env, before, proc, tmp = course
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-4000:]
    assert "5 submission(s)" in out and "broken" in out and "corrupt" in out, out[-4000:]
    # the submissions themselves were only read
    assert {p: _sha(p) for p in (root / "submitted").rglob("*") if p.is_file()} == before
    # the executed notebooks nbgrader's feedback is made from carry no grader cells
    graded = nbformat.read(root / "autograded" / "full" / LESSON / NOTEBOOK, as_version=4)
    assert not any("vae_course" in c.metadata for c in graded.cells)
    assert not (root / "autograded" / "broken").exists(), "an unreadable notebook has nothing to give feedback on"

    h.run_nbgrader(root, env, "generate_feedback", LESSON)
    for student in ["full", "partial", "stub", "cheat"]:
        html = root / "feedback" / student / LESSON / f"{LESSON}.html"
        assert html.is_file() and "Score:" in html.read_text(), f"no feedback for {student}"
    h.run_nbgrader(root, env, "export", f"--to={tmp / 'grades.csv'}")
    rows = h.read_export(tmp / "grades.csv", LESSON)
    expected = {**h.FLOW_SCORES, "cheat": 5.0, "broken": 0.0}
    assert {s: score for s, (score, _) in rows.items()} == expected, rows
    assert {m for _, m in rows.values()} == {h.FLOW_MAX}


def test_second_run_skips_graded_and_force_keeps_manual_scores(course):
    from nbgrader.api import Gradebook

    root, env, _, first, tmp = course
    assert first.returncode == 0, first.stdout[-3000:]
    again = _cli(root, env, "00")
    assert again.returncode == 0 and again.stdout.count("skipped: already graded") == 4, again.stdout[-3000:]

    db = f"sqlite:///{root / 'gradebook.db'}"
    with Gradebook(db, "vae-course") as gb:  # an instructor's manual grade, e.g. in the formgrader
        grade = gb.find_grade("test_ex3_log_mean_exp", LESSON, LESSON, "partial")
        grade.manual_score = 1.0
        gb.db.commit()
    forced = _cli(root, env, "00", "--force", "--student", "partial")
    assert forced.returncode == 0 and "1 submission(s)" in forced.stdout, forced.stdout[-3000:]
    with Gradebook(db, "vae-course") as gb:
        grade = gb.find_grade("test_ex3_log_mean_exp", LESSON, LESSON, "partial")
        assert (grade.auto_score, grade.manual_score, grade.score) == (0.0, 1.0, 1.0)
        assert grade.needs_manual_grade, "a manual score over a new auto score is flagged for review, as in nbgrader"
        assert gb.find_submission(LESSON, "partial").score == 6.0


def test_usage_errors(course, tmp_path):
    root, env, *_ = course
    for args, expected in [(["42"], "unknown lesson '42'"), (["00", "--jobs", "0"], "--jobs must be a positive"),
                           (["00", "--student", "nobody"], "no collected submission of 00_orientation for nobody")]:
        proc = _cli(root, env, *args)
        assert proc.returncode == 2 and expected in proc.stderr, (args, proc.stderr)
    # a course whose gradebook does not know the lesson: run generate_assignment first
    other = tmp_path / "course"
    shutil.copytree(root / "solutions", other / "solutions")
    h.write_nbgrader_config(other, other)
    proc = _cli(other, env, "00")
    assert proc.returncode == 2 and "generate_assignment 00_orientation" in proc.stderr, proc.stderr
