"""The tamper report (the static scan, fast) and whole gradings of every adversarial case (slow).

Every adversarial submission in tests/adversarial/builders.py would earn points from nbgrader
alone (stub answers whose exceptions get swallowed, or wrong answers whose checks get disabled).
`vae-course grade` scores each 0, because the judge compares the values outside the kernel, and
reports what the scan found beside the grade instead of refusing the notebook.
"""
from __future__ import annotations

import glob
import sys
import warnings
from pathlib import Path

import nbformat
import pytest

sys.path.insert(0, str(Path(__file__).parent))
from adversarial.builders import CASES, LEGIT, LESSON, TOTAL, adversarial, make_course, solution_notebook, \
    submission, write  # noqa: E402

from vae_core.grading.autograde import GradeOptions, grade_lesson  # noqa: E402
from vae_core.grading.course import Lesson  # noqa: E402
from vae_core.grading.tamper import CourseFacts, guard_name, scan_notebook, scan_source  # noqa: E402

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("where", ["top", "solution"])
@pytest.mark.parametrize("name", sorted(CASES))
def test_scan_flags_each_adversarial_case_naming_cell_and_construct(name, where):
    findings = scan_notebook(adversarial(name, where), solution_notebook())
    construct = CASES[name][2]
    hits = [f for f in findings if construct in f.construct]
    assert hits, f"{name} ({where}) not flagged; got {[f.message() for f in findings]}"
    # top: added as the 3rd cell; solution: inside the first answer cell (5th cell in the fixture)
    assert hits[0].cell == (3 if where == "top" else 5)
    assert f"cell {hits[0].cell}" in hits[0].message() and construct in hits[0].message()


@pytest.mark.parametrize("src", LEGIT)
def test_scan_leaves_ordinary_learner_code_alone(src):
    assert scan_source(src, CourseFacts.from_solution(solution_notebook())) == []


def test_scan_is_clean_on_the_fixture_solution_and_stub():
    sol = solution_notebook()
    assert scan_notebook(submission("solution"), sol) == []
    assert scan_notebook(submission("stub"), sol) == []
    assert scan_notebook(submission("wrong"), sol) == []


def test_scan_skips_locked_cells_but_not_edited_course_cells():
    sol = solution_notebook()
    nb = submission("solution")
    # a locked test cell is restored from solutions/ before it runs: whatever is in it, it is not scanned
    test = next(c for c in nb["cells"] if c["metadata"].get("nbgrader", {}).get("grade_id") == "test_ex1_softplus")
    test["source"] = "torch.allclose = lambda *a, **k: True\n"
    assert scan_notebook(nb, sol) == []
    # an unlocked course cell (the setup cell) is the learner's to edit, so it is scanned
    nb["cells"][1]["source"] += "torch.allclose = lambda *a, **k: True\n"
    assert [f.cell for f in scan_notebook(nb, sol)] == [2]


def test_editing_a_course_cell_that_defines_a_helper_is_not_tampering():
    sol = solution_notebook()
    sol["cells"].insert(2, {"cell_type": "code", "metadata": {}, "outputs": [], "execution_count": None,
                            "source": "def show(x):\n    print(x)\n"})
    edited = "def show(x):\n    print('value:', x)\n"
    assert scan_source(edited, CourseFacts.from_solution(sol)) == []


@pytest.mark.parametrize("path", sorted(glob.glob(str(REPO / "solutions" / "*" / "*.ipynb"))))
def test_real_lessons_do_not_trip_the_scan(path):
    name = Path(path).parent.name
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sol = nbformat.read(path, as_version=4)
        assert scan_notebook(sol, sol) == [], "an instructor notebook trips the scan"
        released = REPO / "lessons" / name / f"{name}.ipynb"
        if released.exists():
            assert scan_notebook(nbformat.read(str(released), as_version=4), sol) == []


def test_guard_name_refuses_a_bad_nonce():
    with pytest.raises(ValueError, match="nonce must be 8-64 lowercase hex"):
        guard_name("not hex!")


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(CASES))
def test_every_flagged_submission_scores_nothing_and_is_reported_not_refused(tmp_path, name):
    # The judge decides (the values are wrong or missing); the scan's findings go beside the grade.
    root = make_course(tmp_path)
    nb_path = write(adversarial(name), root / "workspace" / LESSON / f"{LESSON}.ipynb")
    before = nb_path.read_bytes()
    res = grade_lesson(Lesson(LESSON, root), None, GradeOptions(timeout=120))
    assert res.score == 0, [(e.grade_id, e.points, e.message) for e in res.exercises]
    assert res.status in ("graded", "crashed", "timeout"), res.message
    note = " ".join(res.notes)
    assert "Noted for your instructor" in note and "cell 3" in note and CASES[name][2] in note, note
    assert nb_path.read_bytes() == before


# ---------------------------------------------------------------------------------------------
# The preamble's per-test cells: an honest notebook's names cannot break a test.

@pytest.mark.slow
def test_learner_names_shadowing_builtins_or_aliases_do_not_break_the_tests(tmp_path):
    # An honest notebook that happens to call its variables abs, max and F: the tests still work and
    # the names are the learner's again after each test (the last cell would fail otherwise).
    root = make_course(tmp_path)
    honest = submission("solution", added={2: "abs = 3.0  # the absolute error\nmax = 3\nF = None\n"})
    honest["cells"].append({"cell_type": "code", "metadata": {}, "execution_count": None, "outputs": [],
                            "source": "assert abs == 3.0 and max == 3 and F is None\n"})
    write(honest, root / "workspace" / LESSON / f"{LESSON}.ipynb")
    res = grade_lesson(Lesson(LESSON, root), None, GradeOptions(timeout=120, scan=False))
    assert res.score == TOTAL, [(e.grade_id, e.points, e.message) for e in res.exercises]
    control = grade_lesson(Lesson(LESSON, root), None, GradeOptions(timeout=120, scan=False, guard=False))
    assert control.score < TOTAL, "control: without the preamble's cells those names do break a test"


@pytest.mark.slow
def test_without_any_defence_the_attacks_earn_full_marks(tmp_path):
    # The holes are real: nbgrader alone gives these submissions every point (tests/test_judge.py and
    # the test above show the judge stopping them).
    ast_swallow = CASES["ast_transformer"][1]
    attack = submission(
        {"ex1_softplus": "wrong", "ex2_lse": "wrong", "ex3_kl": "stub"},
        before_tests={"test_ex1_softplus": "torch.testing.assert_close = lambda *a, **k: None\n",
                      "test_ex2_lse": "abs = lambda x: 0\n", "test_ex3_kl": ast_swallow})
    root = make_course(tmp_path)
    write(attack, root / "workspace" / LESSON / f"{LESSON}.ipynb")
    res = grade_lesson(Lesson(LESSON, root), None, GradeOptions(timeout=120, scan=False, guard=False, judge=False))
    assert res.score == TOTAL, [(e.grade_id, e.points, e.message) for e in res.exercises]
    judged = grade_lesson(Lesson(LESSON, root), None, GradeOptions(timeout=120))
    assert judged.score == 0, [(e.grade_id, e.points, e.message) for e in judged.exercises]
