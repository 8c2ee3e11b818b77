"""Notebook CI: every lesson in solutions/ runs, grades full marks, and every test fails on its stub.

Lessons are discovered from ``solutions/NN_name/NN_name.ipynb``, so a new lesson is covered the
moment its solution notebook exists. Per lesson:

- the solution executes in quick mode (``VAE_COURSE_QUICK=1``) under ``pytest --nbval-lax``;
- under nbgrader autograde (the course's nbgrader_config.py, in a temporary course) the solution
  scores full marks on every test cell, and the released stub scores 0 on EACH test cell
  (both notebooks are graded in one nbgrader run);
- ``lessons/NN_name/NN_name.ipynb`` in the repository is exactly what ``vae-course generate`` makes
  from the solution (no hand edits, no stale lesson), and the generation record matches it;
- the notebook follows the course conventions the grader and the learner rely on.

Repository-wide: no notebook in git carries outputs or execution counts; and a correct answer
that emits a warning on stderr still gets its points (checked on lesson 00, with a control run
showing that the same notebook scores 0 without the course's IgnorePattern setting).

Runs in parallel: ``pytest -n 2 tests/test_notebooks.py`` (each test has its own temporary course).
"""
from __future__ import annotations

import difflib
import json

import nbformat
import pytest

import nb_helpers as h
from vae_core.grading import generate as gen
from vae_core.grading.course import resolve_lesson

LESSONS = h.solution_lessons()
IDS = [ls.name for ls in LESSONS]

pytestmark = [
    pytest.mark.notebooks,
    pytest.mark.slow,
    # nbgrader 0.9.6's gradebook trips SQLAlchemy's autoflush warning on every autograde; not ours to fix
    pytest.mark.filterwarnings("ignore::sqlalchemy.exc.SAWarning"),
    # ... and the test cells it puts back carry no nbformat cell id
    pytest.mark.filterwarnings("ignore::nbformat.warnings.MissingIDFieldWarning"),
]


def test_lessons_are_discovered():
    assert LESSONS, f"no solutions/NN_name/NN_name.ipynb found under {h.REPO}"
    assert "00_orientation" in IDS


@pytest.mark.parametrize("lesson", LESSONS, ids=IDS)
def test_solution_runs_in_quick_mode_under_nbval(lesson):
    proc = h.run_nbval(lesson.solution)
    assert proc.returncode == 0, (
        f"{h.rel(lesson.solution)} failed under "
        f"`VAE_COURSE_QUICK=1 pytest --nbval-lax`:\n{proc.stdout[-6000:]}\n{proc.stderr[-2000:]}"
    )


@pytest.mark.parametrize("lesson", LESSONS, ids=IDS)
def test_autograde_gives_solution_full_marks_and_stub_zero_on_every_test_cell(lesson, tmp_path):
    course = h.make_course(tmp_path, lesson)
    test_ids = h.graded_test_ids(nbformat.read(lesson.solution, as_version=4))
    assert test_ids, f"{lesson.name} has no autograded test cells (grade: true, solution: false)"

    graded = h.autograde(course, {"solution": lesson.solution, "stub": course.release})
    solution, stub = graded["solution"], graded["stub"]
    assert sorted(solution.scores) == sorted(test_ids), "every test cell must be in the gradebook"

    problems = []
    for gid in test_ids:
        score, max_score = solution.scores[gid]
        if max_score <= 0:
            problems.append(f"{gid}: worth {max_score} points; a test cell must be worth > 0")
        if score != max_score:
            problems.append(f"{gid}: the SOLUTION scores {score}/{max_score}: "
                            f"{solution.errors.get(gid, 'no error output')[-1500:]}")
        stub_score, _ = stub.scores[gid]
        if stub_score != 0:
            problems.append(f"{gid}: the released STUB scores {stub_score}/{max_score}; every test cell "
                            "must fail when the exercise is not done (test the learner's code, not a constant)")
    assert not problems, f"{lesson.name}:\n" + "\n".join(problems)


@pytest.mark.parametrize("lesson", LESSONS, ids=IDS)
def test_lesson_in_git_is_exactly_what_generation_produces(lesson, tmp_path):
    fix = f"regenerate it with `vae-course generate {lesson.number}` and commit lessons/"
    if not lesson.release.is_file():
        pytest.fail(f"{h.rel(lesson.release)} is missing: {fix}")
    expected = gen.render_lesson(h.REPO, lesson, workdir=tmp_path)
    actual = lesson.release.read_text(encoding="utf-8")
    if actual != expected:
        exp_nb, act_nb = nbformat.reads(expected, as_version=4), nbformat.reads(actual, as_version=4)
        diffs = []
        if len(exp_nb.cells) != len(act_nb.cells):
            diffs.append(f"cell count: generated {len(exp_nb.cells)}, in git {len(act_nb.cells)}")
        for i, (e, a) in enumerate(zip(exp_nb.cells, act_nb.cells)):
            for what in ("cell_type", "source", "metadata"):
                ev, av = e.get(what), a.get(what)
                if ev != av:
                    ev, av = (json.dumps(v, indent=1, sort_keys=True) if not isinstance(v, str) else v
                              for v in (ev, av))
                    diff = "\n".join(difflib.unified_diff(av.splitlines(), ev.splitlines(), "in git", "generated",
                                                          lineterm="", n=1))
                    diffs.append(f"cell {i} {what}:\n{diff[:1500]}")
        pytest.fail(f"{h.rel(lesson.release)} differs from the generated lesson; {fix}.\n"
                    + "\n".join(diffs[:8]))
    record = gen.read_manifest(h.REPO).get("lessons", {}).get(lesson.name)
    assert record is not None and record["sha256"] == gen.sha256_of(lesson.release), (
        f"lessons/{gen.MANIFEST_NAME} does not record the current {lesson.release.name}; {fix}"
    )


def test_every_lesson_folder_and_record_has_a_solution():
    known = set(IDS)
    folders = {p.name for p in (h.REPO / "lessons").iterdir() if p.is_dir() and p.name[:2].isdigit()}
    records = set(gen.read_manifest(h.REPO).get("lessons", {}))
    orphans = sorted((folders | records) - known)
    assert not orphans, (
        f"lessons without a solutions/NN_name/NN_name.ipynb: {orphans}; a lesson is generated from its "
        "solution, so add the solution notebook (or remove the lesson and its lessons/MANIFEST.json entry)"
    )


@pytest.mark.parametrize("lesson", LESSONS, ids=IDS)
def test_notebook_follows_course_conventions(lesson):
    nb = nbformat.read(lesson.solution, as_version=4)
    cells = nb.cells
    problems = []
    if not (cells and cells[0].cell_type == "markdown" and cells[0].source.lstrip().startswith("# ")):
        problems.append("cell 1 must be markdown starting with the '# ' title")
    if len(cells) < 2 or cells[1].cell_type != "code" or not all(
            s in cells[1].source for s in ("seed_everything(", "quick_mode()", "get_device(")):
        problems.append("cell 2 must be the setup cell: seed_everything(...), QUICK = quick_mode(), device = get_device()")
    seen = set()
    for i, cell in enumerate(cells):
        meta = cell.metadata.get("nbgrader")
        if not meta:
            continue
        gid = meta.get("grade_id")
        if gid in seen:
            problems.append(f"cell {i}: duplicate grade_id {gid!r}")
        seen.add(gid)
        if meta.get("schema_version") != 3:
            problems.append(f"cell {i} ({gid}): nbgrader schema_version must be 3")
        if meta.get("solution") and cell.cell_type == "code" and "### BEGIN SOLUTION" not in cell.source:
            problems.append(f"cell {i} ({gid}): solution cell without ### BEGIN SOLUTION / ### END SOLUTION")
        if meta.get("grade") and not meta.get("solution") and cell.cell_type == "code":
            if not meta.get("locked"):
                problems.append(f"cell {i} ({gid}): test cells must be locked")
            if "### BEGIN HIDDEN TESTS" not in cell.source:
                problems.append(f"cell {i} ({gid}): test cell has no ### BEGIN HIDDEN TESTS section")
    if not any(c.cell_type == "markdown" and "interview corner" in c.source.lower() for c in cells):
        problems.append("no 'Interview corner' section")
    assert not problems, f"{h.rel(lesson.solution)}:\n" + "\n".join(problems)


@pytest.mark.parametrize("path", h.git_notebooks(), ids=h.rel)
def test_notebooks_in_git_carry_no_outputs(path):
    bad = h.stored_outputs(path)
    assert not bad, (
        f"{h.rel(path)} has outputs or execution counts in {', '.join(bad)}; clear them "
        "(JupyterLab: Edit > Clear Outputs of All Cells, then save; or "
        "`jupyter nbconvert --clear-output --inplace <notebook>`)"
    )


def test_correct_answer_that_warns_still_scores(tmp_path):
    lesson = resolve_lesson("00", h.REPO)[0]
    nb = nbformat.read(lesson.solution, as_version=4)
    (cell,) = [c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") == "ex1_logsumexp"]
    marker = next(ln for ln in cell.source.splitlines() if ln.strip() == "### BEGIN SOLUTION")
    indent = marker[: len(marker) - len(marker.lstrip())]
    warn = f'{indent}import warnings; warnings.warn("a harmless warning from a correct answer", UserWarning)'
    cell.source = cell.source.replace(marker, marker + "\n" + warn, 1)
    course = h.make_course(tmp_path, lesson)
    answer = h.answer_exercises(course.release, nb)

    graded = h.autograde(course, {"warns": answer})["warns"]
    control = h.autograde(course, {"warns_control": answer}, **{"IgnorePattern.enabled": False})["warns_control"]

    gid = "test_ex1_logsumexp"
    # control: without the course setting, nbgrader zeroes the cell: the warning did reach stderr
    assert control.scores[gid][0] == 0 and "UserWarning" in control.errors.get(gid, ""), (
        f"control run should score 0 with a UserWarning on stderr, got {control.scores[gid]} {control.errors}"
    )
    assert graded.scores[gid] == (3.0, 3.0), f"a warning zeroed a correct answer: {graded.errors}"
    assert graded.total == graded.max_total, f"full marks expected, got {graded.scores}"


def test_deleted_test_cells_are_put_back_before_grading(tmp_path):
    """OverwriteCells.add_missing_cells: deleting a test cell neither loses its points for a correct
    answer nor hands them to an unanswered one (the instructor's cell, hidden tests included, runs)."""
    lesson = resolve_lesson("00", h.REPO)[0]
    course = h.make_course(tmp_path, lesson)

    def without_tests(nb):
        nb = nbformat.from_dict(nb)
        nb.cells = [c for c in nb.cells if not (c.metadata.get("nbgrader", {}).get("grade")
                                                and not c.metadata["nbgrader"].get("solution"))]
        return nb

    answered = without_tests(h.answer_exercises(course.release, lesson.solution))
    stub = without_tests(nbformat.read(course.release, as_version=4))
    assert not h.graded_test_ids(answered), "the test cells were not deleted"
    graded = h.autograde(course, {"answered_deleted": answered, "stub_deleted": stub})

    test_ids = h.graded_test_ids(nbformat.read(lesson.solution, as_version=4))
    full, empty = graded["answered_deleted"], graded["stub_deleted"]
    assert set(full.scores) == set(empty.scores) == set(test_ids)
    assert full.total == full.max_total, f"restored tests should pass on correct answers: {full.errors}"
    assert empty.total == 0, f"deleting the tests must not earn points: {empty.scores}"
    restored = [c for c in full.notebook.cells if "added back by nbgrader" in c.source]
    assert len(restored) == len(test_ids), "each deleted test cell is put back, with a note"
