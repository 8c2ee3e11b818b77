"""Every real lesson through `vae-course grade` as a learner gets it: scan, guard, sandbox (where bwrap
works) and the judge, which first runs the course's solution once to record what correct answers
return (quick mode, as CI runs the lessons). The solution typed into the learner's copy gets full
marks from the judge, the untouched copy gets 0 on every test.
"""
from __future__ import annotations

import shutil

import nbformat
import pytest

import nb_helpers as h
from vae_core.grading.autograde import GradeOptions, grade_lesson
from vae_core.grading.course import Lesson

LESSONS = h.solution_lessons()


@pytest.mark.slow
@pytest.mark.notebooks
@pytest.mark.parametrize("lesson", LESSONS, ids=[ls.name for ls in LESSONS])
def test_the_judge_gives_the_solution_full_marks_and_the_stub_zero(tmp_path, monkeypatch, lesson):
    monkeypatch.setenv("VAE_COURSE_QUICK", "1")
    root = tmp_path / "course"
    shutil.copytree(lesson.solution_dir, root / "solutions" / lesson.name)
    shutil.copy2(h.REPO / "nbgrader_config.py", root / "nbgrader_config.py")
    course_lesson = Lesson(lesson.name, root)
    answered = tmp_path / "answered" / lesson.filename
    answered.parent.mkdir()
    nbformat.write(h.answer_exercises(lesson.release, lesson.solution), answered)

    full = grade_lesson(course_lesson, answered, GradeOptions(timeout=300))
    assert full.status == "graded", full.message
    assert full.score == full.max > 0, [(e.grade_id, e.points, e.message) for e in full.exercises if not e.passed]
    stub = grade_lesson(course_lesson, lesson.release, GradeOptions(timeout=300))
    assert stub.status == "graded", stub.message
    assert [e.grade_id for e in stub.exercises if e.points > 0] == [], "the released stub must score 0 on every test"
