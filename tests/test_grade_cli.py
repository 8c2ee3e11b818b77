"""`vae-course grade` / `progress` on a private fixture course (tests/adversarial/builders.py).

Grading contract checked here: the learner's notebook is never modified (SHA-256 before and
after), the tests that run are the ones from solutions/ (deleted or edited test cells are put
back), a warning does not cost points, every failure mode (infinite loop, dead kernel,
SystemExit, MemoryError, corrupt JSON, missing file, a hung run) gives a one-paragraph report
and zero for what did not run, `grade all` isolates lessons, and the grade record only grows.
Full runs start nbgrader and a kernel (several seconds each): those are marked slow.
"""
from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from adversarial.builders import LESSON, POINTS, TOTAL, make_course, submission, write  # noqa: E402

from vae_core.grading import cli  # noqa: E402
from vae_core.grading.course import Lesson, UsageError, find_course_root, resolve_lesson  # noqa: E402
from vae_core.grading.record import append_record, progress_rows, read_records, record_path  # noqa: E402


def sha(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def nb_path(root: Path, lesson: str = LESSON) -> Path:
    return root / "workspace" / lesson / f"{lesson}.ipynb"


def run(argv, capsys) -> tuple[int, str, str]:
    code = cli.main(argv)
    out = capsys.readouterr()
    return code, out.out, out.err


def records(root: Path) -> list[dict]:
    return read_records(root).entries


# --- lesson lookup and usage errors (fast) ----------------------------------------------------

def test_lesson_is_found_by_number_name_or_path(tmp_path):
    root = make_course(tmp_path, lessons=("00_fixture", "03_reparameterization"))
    for spec in ("3", "03", "03_reparameterization"):
        assert resolve_lesson(spec, root)[0].name == "03_reparameterization"
    lesson, path = resolve_lesson(str(tmp_path / "elsewhere" / "03_reparameterization.ipynb"), root)
    assert lesson.name == "03_reparameterization" and path.name == "03_reparameterization.ipynb"
    with pytest.raises(UsageError, match="unknown lesson '7'"):
        resolve_lesson("7", root)


def test_course_root_is_found_walking_up_from_cwd(tmp_path, monkeypatch):
    root = make_course(tmp_path / "course")
    (root / "lessons" / LESSON / "sub").mkdir(parents=True)
    monkeypatch.chdir(root / "lessons" / LESSON / "sub")
    assert find_course_root() == root.resolve()
    monkeypatch.chdir(tmp_path)
    with pytest.raises(UsageError, match="no course found"):
        find_course_root()


def test_usage_errors_exit_2_and_write_nothing(tmp_path, capsys):
    root = make_course(tmp_path)
    code, _, err = run(["grade", "42", "--root", str(root)], capsys)
    assert code == 2 and "unknown lesson" in err
    code, _, err = run(["grade", "0", "--timeout", "-1", "--root", str(root)], capsys)
    assert code == 2 and "--timeout must be a positive" in err
    code, _, err = run(["grade", "0", "--root", str(tmp_path / "nope")], capsys)
    assert code == 2 and "--root must be the course folder" in err
    code, _, _ = run(["frobnicate"], capsys)
    assert code == 2
    assert not record_path(root).exists()


# --- faults that never start a kernel (fast) --------------------------------------------------

def test_a_notebook_that_does_not_exist_is_a_usage_error_and_nothing_is_recorded(tmp_path, capsys):
    root = make_course(tmp_path)
    missing = tmp_path / "nonexistent.ipynb"
    code, out, err = run(["grade", "00", "--notebook", str(missing), "--root", str(root)], capsys)
    assert code == 2 and f"no notebook at {missing}" in err and "nothing was graded or recorded" in err
    code, out, err = run(["grade", str(tmp_path / "00_fixture.ipynb"), "--root", str(root)], capsys)
    assert code == 2 and "no notebook at" in err
    # no copy in workspace/ yet: say how to get one, never a maintainer command
    code, out, err = run(["grade", "00", "--root", str(root)], capsys)
    assert code == 2 and f"you have no copy of lesson 00 yet (expected {nb_path(root)})" in err
    assert "vae-course workspace" in err and "generate" not in out + err
    assert not record_path(root).exists()


def test_a_notebook_gone_by_grading_time_scores_zero_with_a_learner_hint(tmp_path):
    from vae_core.grading.autograde import grade_lesson

    root = make_course(tmp_path)
    res = grade_lesson(Lesson(LESSON, root), tmp_path / "gone.ipynb")
    assert res.status == "missing" and res.score == 0 and res.max == TOTAL
    assert "vae-course workspace" in res.message and "generate" not in res.message


def test_corrupt_json_gives_a_report_zero_and_the_file_is_untouched(tmp_path, capsys):
    root = make_course(tmp_path)
    path = nb_path(root)
    path.write_text(json.dumps(submission("solution"))[:-200])  # cut short, as by a crash mid-save
    before = sha(path)
    code, out, _ = run(["grade", LESSON, "--root", str(root)], capsys)
    assert code == 0 and "is not a readable notebook" in out and "Revert Notebook to Checkpoint" in out
    assert sha(path) == before
    (entry,) = records(root)
    assert entry["status"] == "corrupt" and entry["score"] == 0 and entry["notebook_sha256"] == before


def test_tampering_through_the_cli_scores_nothing_and_is_noted_for_the_instructor(tmp_path, capsys):
    root = make_course(tmp_path)
    write(submission("wrong", added={2: "torch.testing.assert_close = lambda *a, **k: None\n"}), nb_path(root))
    code, out, _ = run(["grade", "0", "--root", str(root)], capsys)
    assert code == 0 and "Noted for your instructor" in out and "cell 3" in out, out
    assert "torch.testing.assert_close" in out
    entry = records(root)[-1]
    assert entry["status"] == "graded" and entry["score"] == 0 and "torch.testing.assert_close" in entry["message"]


def test_check_tamper_exits_1_on_a_flagged_notebook_and_0_on_a_clean_one(tmp_path, capsys):
    root = make_course(tmp_path)
    bad = write(submission("stub", added={2: "import ctypes\n"}), tmp_path / "bad" / f"{LESSON}.ipynb")
    good = write(submission("solution"), tmp_path / "good" / f"{LESSON}.ipynb")
    code, out, _ = run(["check-tamper", str(bad), str(good), "--root", str(root)], capsys)
    assert code == 1 and "import ctypes" in out and f"{good}: ok" in out
    code, _, _ = run(["check-tamper", str(good), "--root", str(root)], capsys)
    assert code == 0


# --- the record (fast) --------------------------------------------------------------------------

def _entry(lesson, score, status="graded"):
    return dict(lesson=lesson, timestamp="2026-01-01T00:00:00Z", score=score, max=5.0, status=status,
                exercises=[], notebook="x", notebook_sha256=None, feedback=None, message=None)


def test_record_appends_and_skips_corrupt_lines_without_losing_them(tmp_path):
    append_record(tmp_path, _entry("00_fixture", 2.0))
    path = record_path(tmp_path)
    with open(path, "ab") as f:
        f.write(b'{"lesson": "00_fixture", "sco')  # a torn write: no newline, not JSON
    before = path.read_bytes()
    append_record(tmp_path, _entry("00_fixture", 5.0))
    append_record(tmp_path, _entry("00_fixture", 1.0, "crashed"))
    after = path.read_bytes()
    assert after.startswith(before), "the record was rewritten, not appended to"
    recs = read_records(tmp_path)
    assert [e["score"] for e in recs.entries] == [2.0, 5.0, 1.0]
    assert len(recs.warnings) == 1 and ":2: skipped an unreadable line" in recs.warnings[0]
    rows, warns = progress_rows(tmp_path, ["00_fixture", "01_other"])
    assert rows[0]["latest"] == 1.0 and rows[0]["best"] == 5.0 and rows[0]["attempts"] == 3
    assert rows[1]["status"] == "never graded" and rows[1]["latest"] is None
    with pytest.raises(ValueError, match="status must be one of"):
        append_record(tmp_path, _entry("00_fixture", 1.0, "great"))


def test_progress_lists_every_lesson_with_latest_best_and_never_graded(tmp_path, capsys):
    root = make_course(tmp_path, lessons=("00_fixture", "01_other"))
    append_record(root, _entry("00_fixture", 4.0))
    append_record(root, _entry("00_fixture", 3.0))
    with open(record_path(root), "a") as f:
        f.write("not json\n")
    code, out, err = run(["progress", "--root", str(root)], capsys)
    assert code == 0
    line0 = next(l for l in out.splitlines() if l.startswith("00_fixture"))
    assert "3.0 /   5.0" in line0 and "4.0 /   5.0" in line0  # latest 3, best 4
    assert "never graded" in next(l for l in out.splitlines() if l.startswith("01_other"))
    assert "skipped an unreadable line" in err


# --- full grading runs (slow: nbgrader + a kernel) ---------------------------------------------

WARN_ANSWER = ("    import warnings\n"
               "    warnings.warn('a harmless warning from a correct answer', UserWarning)\n"
               "    torch.tensor([1.0]).resize_(2)  # torch: UserWarning on stderr, harmless here\n"
               "    return 0.5 * (mu.pow(2) + logvar.exp() - 1 - logvar).sum(-1)\n")


@pytest.mark.slow
def test_correct_notebook_with_warnings_scores_full_and_is_never_modified(tmp_path, capsys):
    root = make_course(tmp_path)
    path = write(submission({"ex3_kl": WARN_ANSWER}), nb_path(root))
    before = sha(path)
    code, out, _ = run(["grade", "0", "--root", str(root), "--timeout", "120"], capsys)
    assert code == 0, out
    assert sha(path) == before, "grading modified the learner's notebook"
    (entry,) = records(root)
    assert entry["status"] == "graded" and entry["score"] == TOTAL, out
    assert entry["notebook_sha256"] == before
    assert {e["grade_id"]: e["points"] for e in entry["exercises"]} == {k: float(v) for k, v in POINTS.items()}
    assert "test_ex3_kl" in out and "total" in out and "feedback:" in out
    fb = Path(entry["feedback"])
    assert fb.exists() and fb.suffix == ".html" and (root / ".vae_course" / "feedback" / LESSON) in fb.parents
    # grading again appends a second line and writes feedback to a new folder
    code, out, _ = run(["grade", LESSON, "--root", str(root), "--timeout", "120"], capsys)
    entries = records(root)
    assert len(entries) == 2 and entries[1]["score"] == TOTAL
    assert Path(entries[1]["feedback"]).parent != fb.parent and fb.exists()


@pytest.mark.slow
def test_deleted_and_edited_test_cells_are_restored_from_solutions(tmp_path):
    from vae_core.grading.autograde import GradeOptions, grade_lesson

    nb = submission({"ex1_softplus": "solution", "ex2_lse": "stub", "ex3_kl": "stub"})
    ids = lambda c: c["metadata"].get("nbgrader", {}).get("grade_id")  # noqa: E731
    # delete the tests of ex1 (right answer: the restored test must give its points) and ex2 (stub)
    nb["cells"] = [c for c in nb["cells"] if ids(c) not in ("test_ex1_softplus", "test_ex2_lse")]
    # ... and gut the test of ex3
    test3 = next(c for c in nb["cells"] if ids(c) == "test_ex3_kl")
    test3["source"] = "pass\n"
    test3["metadata"]["nbgrader"]["points"] = 50  # and claim more points for it
    # an added cell posing as a graded test worth 100 points
    bonus = {"cell_type": "code", "execution_count": None, "outputs": [], "source": "pass\n",
             "metadata": {"nbgrader": {"grade": True, "solution": False, "locked": True, "points": 100,
                                       "grade_id": "bonus", "schema_version": 3}}}
    nb["cells"].insert(3, bonus)
    root = make_course(tmp_path)
    write(nb, nb_path(root))
    res = grade_lesson(Lesson(LESSON, root), None, GradeOptions(timeout=120))
    got = {e.grade_id: e.points for e in res.exercises}
    assert got == {"test_ex1_softplus": 2.0, "test_ex2_lse": 0.0, "test_ex3_kl": 0.0}, res
    assert res.max == TOTAL and sum(e.max for e in res.exercises) == TOTAL
    assert "NotImplementedError" in next(e.message for e in res.exercises if e.grade_id == "test_ex2_lse")


@pytest.mark.slow
def test_infinite_loop_is_interrupted_and_the_rest_still_graded(tmp_path, capsys):
    root = make_course(tmp_path)
    loop = "    while True:\n        pass\n"
    path = write(submission({"ex2_lse": loop}), nb_path(root))
    before = sha(path)
    code, out, _ = run(["grade", "0", "--root", str(root), "--timeout", "10"], capsys)
    assert code == 0
    entry = records(root)[-1]
    got = {e["grade_id"]: e["points"] for e in entry["exercises"]}
    # the loop is inside logsumexp, so the ex2 test is what times out; ex1 and ex3 still score
    assert got == {"test_ex1_softplus": 2.0, "test_ex2_lse": 0.0, "test_ex3_kl": 1.0}, out
    assert entry["status"] == "timeout" and "per-cell limit of 10 s" in out
    assert "CellTimeoutError" in out
    assert sha(path) == before


@pytest.mark.slow
def test_a_run_that_hangs_is_stopped_by_the_wall_clock_guard(tmp_path, capsys):
    root = make_course(tmp_path)
    stubborn = ("import time\nwhile True:\n    try:\n        time.sleep(0.2)\n"
                "    except KeyboardInterrupt:\n        pass\n")
    write(submission("solution", added={2: stubborn}), nb_path(root))
    code, out, _ = run(["grade", "0", "--root", str(root), "--timeout", "300", "--wall", "30"], capsys)
    assert code == 0
    entry = records(root)[-1]
    assert entry["status"] == "timeout" and entry["score"] == 0
    assert "after 30 s of wall-clock time" in out and "What to do" in out


@pytest.mark.slow
def test_kernel_exit_systemexit_and_memoryerror_each_get_a_report(tmp_path, capsys):
    root = make_course(tmp_path, lessons=("00_fixture", "01_fixture"))
    # lesson 00: a cell after test 1 kills the kernel: test 1 scores, tests 2-3 did not run
    crash = submission("solution", added={6: "import os\nos._exit(3)\n"})
    write(crash, nb_path(root, "00_fixture"))
    # lesson 01: SystemExit in one cell, MemoryError (3 GiB under a 2 GiB limit) in another: all tests still pass
    faults = submission("solution", added={6: "raise SystemExit(1)\n", 9: "big = bytearray(3 * 2**30)\n"})
    write(faults, nb_path(root, "01_fixture"))
    shas = {n: sha(nb_path(root, n)) for n in ("00_fixture", "01_fixture")}
    append_record(root, _entry("00_fixture", 5.0))  # an earlier grade that must survive
    code, out, _ = run(["grade", "all", "--root", str(root), "--timeout", "120", "--memory-gb", "2"], capsys)
    assert code == 0, out
    entries = records(root)
    assert len(entries) == 3 and entries[0]["score"] == 5.0
    crashed = next(e for e in entries[1:] if e["lesson"] == "00_fixture")
    assert crashed["status"] == "crashed", out
    assert {e["grade_id"]: e["points"] for e in crashed["exercises"]} == {
        "test_ex1_softplus": 2.0, "test_ex2_lse": 0.0, "test_ex3_kl": 0.0}
    assert "kernel died while running cell 7" in out and "os._exit()" in out
    other = next(e for e in entries[1:] if e["lesson"] == "01_fixture")
    assert other["status"] == "graded" and other["score"] == TOTAL, out
    assert "SystemExit" in other["message"] and "MemoryError" in other["message"]
    assert "All lessons: 7.0 / 10.0" in out
    assert {n: sha(nb_path(root, n)) for n in shas} == shas
