"""Honest notebooks with odd content are graded normally, and nbgrader's partial-credit channel is shut.

- a duplicated test or answer cell (same grade_id twice) made nbgrader stop with "old metadata
  format, run nbgrader update" and the learner read "nbgrader could not grade this notebook";
- a lone UTF-16 surrogate (valid as a JSON escape, impossible in UTF-8) crashed the worker's copy
  ("the grader itself failed"); NUL and bidi control characters ride along;
- nbgrader reads a test cell's ``execute_result`` as its score, a non-number as full credit: an
  answer that calls ``sys.displayhook('ok')`` and then raises got full marks from nbgrader alone.
"""
from __future__ import annotations

import copy
import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from adversarial.builders import LESSON, TOTAL, make_course, submission, write  # noqa: E402

from vae_core.grading.autograde import GradeOptions, clean_text, grade_lesson  # noqa: E402
from vae_core.grading.course import Lesson  # noqa: E402

pytestmark = pytest.mark.slow


def _grade(root: Path, nb: dict | None = None, text: str | None = None, **options):
    path = root / "workspace" / LESSON / f"{LESSON}.ipynb"
    if text is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    else:
        write(nb, path)
    before = path.read_bytes()
    res = grade_lesson(Lesson(LESSON, root), None, GradeOptions(timeout=120, **options))
    assert path.read_bytes() == before, "grading modified the learner's notebook"
    return res


def _index(nb: dict, grade_id: str) -> int:
    return next(i for i, c in enumerate(nb["cells"]) if c["metadata"].get("nbgrader", {}).get("grade_id") == grade_id)


@pytest.mark.parametrize("answers, score", [("solution", TOTAL), ("stub", 0.0)])
def test_duplicated_test_and_answer_cells_are_graded_once(tmp_path, answers, score):
    nb = submission(answers)
    for gid in ("test_ex1_softplus", "ex2_lse"):
        i = _index(nb, gid)
        nb["cells"].insert(i + 1, copy.deepcopy(nb["cells"][i]))
    res = _grade(make_course(tmp_path), nb)
    assert res.status == "graded", res.message
    assert res.score == score and res.max == TOTAL
    assert [e.grade_id for e in res.exercises] == ["test_ex1_softplus", "test_ex2_lse", "test_ex3_kl"]


def test_lone_surrogates_nul_and_bidi_marks_are_graded_normally(tmp_path):
    nb = submission("solution")
    nb["cells"].append({"cell_type": "markdown", "metadata": {}, "source": "odd \ud800 text \x00 nul \u202e bidi \udfff"})
    nb["cells"].insert(3, {"cell_type": "code", "metadata": {}, "execution_count": None, "outputs": [],
                           "source": "note = 'right-to-left \u202e mark and a lone \ud83d'\n"})
    res = _grade(make_course(tmp_path), text=json.dumps(nb))  # json escapes the lone surrogates
    assert res.status == "graded", res.message
    assert res.score == TOTAL


def test_clean_text_replaces_only_lone_surrogates():
    assert clean_text({"a": ["x\ud800y", "\U0001F600 ok"], "b\udfff": 1}) == {"a": ["x\ufffdy", "\U0001F600 ok"], "b\ufffd": 1}


def test_a_test_cells_result_value_never_scores(tmp_path):
    """The stub still raises, after showing a value: 0 with the course's preprocessor. The control
    run shows the hole is real: without it (scan, guard and judge off as well) nbgrader gives full marks."""
    body = "    import sys\n    getattr(sys, 'displayhook')('all good')\n    raise NotImplementedError()\n"
    nb = submission({"ex1_softplus": body, "ex2_lse": body, "ex3_kl": body})
    res = _grade(make_course(tmp_path / "a"), nb, scan=False, guard=False)
    assert res.status == "graded" and res.score == 0, [(e.grade_id, e.points) for e in res.exercises]
    control = _grade(make_course(tmp_path / "b"), nb, scan=False, guard=False, judge=False, partial_credit=True)
    assert control.score == TOTAL, [(e.grade_id, e.points) for e in control.exercises]
