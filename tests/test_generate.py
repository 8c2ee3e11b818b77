"""`vae-course generate`: lessons/ regenerated from solutions/ by nbgrader, and never over a learner's work.

Each test builds a throw-away course (this repository's nbgrader_config.py plus one tiny solution
notebook) under tmp_path and runs the real generator on it; nothing here touches the repository.
"""
from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from vae_core.grading import generate as gen
from vae_core.grading.course import UsageError, resolve_lesson

REPO = Path(__file__).resolve().parents[1]
NAME = "01_tiny"

pytestmark = pytest.mark.notebooks


def _tiny_solution(answer: str = "42") -> nbformat.NotebookNode:
    title = new_markdown_cell("# 01 tiny\nA one-exercise lesson for the generator's tests.")
    setup = new_code_cell("import math")
    sol = new_code_cell(f"def answer():\n    ### BEGIN SOLUTION\n    return {answer}\n    ### END SOLUTION")
    sol.metadata["nbgrader"] = {"grade": False, "solution": True, "locked": False,
                                "grade_id": "ex1_answer", "schema_version": 3}
    test = new_code_cell("assert answer() == 42\n### BEGIN HIDDEN TESTS\nassert answer() + 1 == 43\n"
                         "### END HIDDEN TESTS")
    test.metadata["nbgrader"] = {"grade": True, "solution": False, "locked": True, "points": 1,
                                 "grade_id": "test_ex1_answer", "schema_version": 3}
    setup.outputs = [nbformat.v4.new_output("stream", name="stdout", text="stale output\n")]
    setup.execution_count = 7
    nb = new_notebook(cells=[title, setup, sol, test], metadata={
        "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"}})
    return nb


@pytest.fixture
def course(tmp_path: Path) -> Path:
    root = tmp_path / "course"
    (root / "solutions" / NAME).mkdir(parents=True)
    shutil.copy2(REPO / "nbgrader_config.py", root / "nbgrader_config.py")
    nbformat.write(_tiny_solution(), root / "solutions" / NAME / f"{NAME}.ipynb")
    return root


def _lesson(root: Path) -> Path:
    return root / "lessons" / NAME / f"{NAME}.ipynb"


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_generate_writes_student_version_and_records_its_sha256(course: Path):
    (out,) = gen.generate(root=course)
    lesson = _lesson(course)
    assert out.action == "created" and out.lesson.release == lesson
    text = lesson.read_text()
    # nbgrader did the work: solution replaced by the stub, hidden tests gone, cells locked
    assert "raise NotImplementedError()" in text and "return 42" not in text
    assert "BEGIN HIDDEN TESTS" not in text and "answer() + 1" not in text
    nb = nbformat.read(lesson, as_version=4)
    assert all(c.get("outputs", []) == [] and c.get("execution_count") is None
               for c in nb.cells if c.cell_type == "code"), "outputs must be cleared"
    assert nb.cells[3].metadata["nbgrader"]["checksum"], "released test cell carries nbgrader's checksum"
    record = json.loads((course / "lessons" / "MANIFEST.json").read_text())["lessons"][NAME]
    assert record["sha256"] == _sha(lesson) == out.sha256
    assert record["notebook"] == f"lessons/{NAME}/{NAME}.ipynb"
    assert not (course / "gradebook.db").exists(), "the temporary course must not leak into the real one"


def test_second_run_is_a_no_op_and_an_unedited_lesson_follows_its_solution(course: Path):
    gen.generate(root=course)
    before = _lesson(course).read_bytes()
    assert [o.action for o in gen.generate(root=course)] == ["unchanged"]
    assert _lesson(course).read_bytes() == before
    # the instructor changes the solution: the untouched lesson is simply regenerated
    nb = _tiny_solution()
    nb.cells[0].source += "\nNow with a second paragraph."
    nbformat.write(nb, course / "solutions" / NAME / f"{NAME}.ipynb")
    assert [o.action for o in gen.generate([NAME], root=course)] == ["updated"]
    assert "second paragraph" in _lesson(course).read_text()


def test_edited_lesson_is_refused_and_left_untouched(course: Path, capsys):
    gen.generate(root=course)
    lesson = _lesson(course)
    nb = nbformat.read(lesson, as_version=4)
    nb.cells[2].source = "def answer():\n    return 41  # my attempt"
    nbformat.write(nb, lesson)
    edited = lesson.read_bytes()
    manifest_before = (course / "lessons" / "MANIFEST.json").read_bytes()

    with pytest.raises(gen.LessonEditedError, match=rf"lessons/{NAME}/{NAME}.ipynb.*--force"):
        gen.generate(["01"], root=course)
    assert lesson.read_bytes() == edited
    assert (course / "lessons" / "MANIFEST.json").read_bytes() == manifest_before

    assert gen.main(["01", "--root", str(course)]) == 1
    err = capsys.readouterr().err
    assert f"refusing to overwrite lessons/{NAME}/{NAME}.ipynb" in err and "--force" in err
    assert lesson.read_bytes() == edited


def test_force_backs_up_the_edited_lesson_and_keeps_other_files(course: Path, capsys):
    gen.generate(root=course)
    lesson = _lesson(course)
    lesson.write_text(lesson.read_text().replace("raise NotImplementedError()", "return 41"))
    edited = lesson.read_bytes()
    notes = lesson.parent / "my_notes.txt"
    notes.write_text("learner's own file")

    assert gen.main([NAME, "--force", "--root", str(course)]) == 0
    backups = sorted(lesson.parent.glob(f"{NAME}.backup-*.ipynb"))
    assert len(backups) == 1 and backups[0].read_bytes() == edited, "the learner's work is kept, byte for byte"
    assert backups[0].name in capsys.readouterr().out
    assert "raise NotImplementedError()" in lesson.read_text()
    assert notes.read_text() == "learner's own file"
    record = json.loads((course / "lessons" / "MANIFEST.json").read_text())["lessons"][NAME]
    assert record["sha256"] == _sha(lesson)


def test_unrecorded_lesson_that_differs_is_refused(course: Path):
    lesson = _lesson(course)
    lesson.parent.mkdir(parents=True)
    lesson.write_text('{"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}\n')
    with pytest.raises(gen.LessonEditedError, match="not recorded"):
        gen.generate(root=course)


def test_missing_solution_is_a_clear_error(course: Path, capsys):
    with pytest.raises(UsageError, match=r"unknown lesson '07'.*01_tiny"):
        gen.generate(["07"], root=course)
    assert gen.main(["07", "--root", str(course)]) == 1
    assert "unknown lesson '07'" in capsys.readouterr().err
    assert not (course / "lessons").exists(), "nothing is written when a lesson is missing"


@pytest.mark.parametrize("key", ["1", "01", NAME, f"solutions/{NAME}/", f"{NAME}.ipynb"])
def test_lessons_are_named_by_number_or_folder(course: Path, key: str):
    assert resolve_lesson(key, course)[0].name == NAME
