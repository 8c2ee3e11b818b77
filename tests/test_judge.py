"""The kernel answers; the grader judges (vae_core/grading/judge.py).

Unit tests of the comparison (shapes, tolerances, NaN and inf, exceptions, duplicated, missing and
extra records), then whole gradings of the fixture lesson with the static scan and the guard
switched off, so the judge is the only defence: attacks that make nbgrader's assertions pass
(patching what the tests use, also from inside the answer while the test runs; a daemon thread that
re-patches; the partial-credit channel; swallowing errors) earn nothing, where each earns points
without the judge, while an honest answer written differently from the solution keeps its points.
"""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from adversarial.builders import CASES, LESSON, TOTAL, make_course, solution_notebook, submission, write  # noqa: E402

from vae_core.grading import judge  # noqa: E402
from vae_core.grading.autograde import GradeOptions, grade_lesson  # noqa: E402
from vae_core.grading.course import Lesson  # noqa: E402


def T(values, shape=None):
    return {"tensor": list(values), "shape": list(shape if shape is not None else [len(values)])}


def rec(test, fn, call, value):
    return {"test": test, "fn": fn, "call": call, "value": value}


# --- comparing values (fast) -------------------------------------------------------------------

def test_values_match_within_tolerance_and_shapes_must_be_equal():
    assert judge.compare_values(T([1.0, 2.0]), T([1.0 + 5e-5, 2.0])) is None
    assert "1 of 2 values differ" in judge.compare_values(T([1.0, 2.1]), T([1.0, 2.0]))
    assert "expected shape (2,), got (1, 2)" in judge.compare_values(T([1.0, 2.0], [1, 2]), T([1.0, 2.0]))
    assert judge.compare_values(T(["nan", "-inf"]), T(["nan", "-inf"])) is None
    assert judge.compare_values(T(["nan"]), T([0.0])) is not None
    assert judge.compare_values(T([0.0]), T(["inf"])) is not None
    assert judge.compare_values({"raised": "ValueError"}, {"raised": "ValueError"}) is None
    assert "an exception (TypeError)" in judge.compare_values({"raised": "TypeError"}, {"raised": "ValueError"})
    assert "expected a tensor" in judge.compare_values({"raised": "NotImplementedError"}, T([1.0]))
    assert judge.compare_values({"seq": [T([1.0]), 3]}, {"seq": [T([1.0]), 3]}) is None
    assert judge.compare_values({"seq": [T([1.0]), 4]}, {"seq": [T([1.0]), 3]}) is not None
    assert judge.compare_values(2.0, 2.0 + 1e-6) is None and judge.compare_values(True, 1) is not None


def test_records_must_match_call_by_call_once_each():
    want = [rec("t", "f", 0, T([1.0])), rec("t", "f", 1, T([2.0]))]
    assert judge.judge_test(list(want), want).passed
    missing = judge.judge_test(want[:1], want)
    assert not missing.passed and "not recorded (first: f call 2)" in missing.note
    twice = judge.judge_test(want + [rec("t", "f", 1, T([2.0]))], want)
    assert not twice.passed and "recorded twice" in twice.note
    extra = judge.judge_test(want + [rec("t", "f", 2, T([2.0]))], want)
    assert not extra.passed and "more calls" in extra.note
    wrong = judge.judge_test([want[0], rec("t", "f", 1, T([2.5]))], want)
    assert not wrong.passed and "f call 2" in wrong.note


def test_exercise_names_and_opt_outs_come_from_the_solution():
    nb = solution_notebook()
    assert judge.exercise_names(nb) == ["softplus", "logsumexp", "kl_std_normal"]
    assert judge.judged_tests(nb) == {"test_ex1_softplus": "values", "test_ex2_lse": "values", "test_ex3_kl": "values"}
    test = next(c for c in nb["cells"] if c["metadata"].get("nbgrader", {}).get("grade_id") == "test_ex2_lse")
    test["metadata"]["vae_course"] = {"judge": "none"}
    assert judge.judged_tests(nb)["test_ex2_lse"] == "none"
    test["metadata"]["vae_course"] = {"judge": "loose"}
    with pytest.raises(ValueError, match="test_ex2_lse: vae_course.judge must be one of"):
        judge.judged_tests(nb)


# --- reports: what a test cell hands the grader, judged by the solution's check -----------------

def R(name, call, value, check="close", **params):
    plain = {"map": {k: ({"seq": list(v)} if isinstance(v, tuple) else v) for k, v in params.items()}}
    return rec("t", "report:" + name, call, {"check": check, "params": plain, "value": value})


def test_report_is_a_no_op_outside_grading_and_refuses_unknown_checks():
    x = object()
    assert judge.report("x", x) is x and judge.report("x", x, check="spread", k=3) is x
    with pytest.raises(ValueError, match="check must be one of"):
        judge.report("x", 1.0, check="about")
    with pytest.raises(ValueError, match="non-empty name"):
        judge.report("", 1.0)


def test_reports_mode_ignores_direct_calls_and_uses_the_references_tolerance():
    want = [rec("t", "pca", 0, T([0.6, 0.8])), R("proj", 0, T([0.36, 0.48]), rtol=0.0, atol=1e-3)]
    flipped = [rec("t", "pca", 0, T([-0.6, -0.8])), R("proj", 0, T([0.3605, 0.48]))]
    assert not judge.judge_test(flipped, want).passed  # values mode: the sign of the direct call counts
    assert judge.judge_test(flipped, want, "reports").passed
    # the tolerance is the solution's: a learner's record claiming a looser one changes nothing
    off = [R("proj", 0, T([0.362, 0.48]), atol=1.0)]
    verdict = judge.judge_test(off, want, "reports")
    assert not verdict.passed and "report 'proj'" in verdict.note
    assert not judge.judge_test([], want, "reports").passed


def _runs(seed, n=2000, loc=1.0, scale=0.5, shape=()):
    import torch
    g = torch.Generator().manual_seed(seed)
    x = loc + scale * torch.randn((n,) + shape, generator=g, dtype=torch.float64)
    return T(x.reshape(-1).tolist(), x.shape)


def test_spread_check_passes_two_correct_estimators_and_fails_bias_and_a_closed_form_plus_noise():
    want = [R("runs", 0, _runs(0), "spread")]
    for seed in range(1, 21):  # another correct estimator: other draws, same distribution
        assert judge.judge_test([R("runs", 0, _runs(seed), "spread")], want).passed, seed
    biased = judge.judge_test([R("runs", 0, _runs(1, loc=1.1), "spread")], want)
    assert not biased.passed and "standard errors" in biased.note
    plus_noise = judge.judge_test([R("runs", 0, _runs(1, scale=0.5 / 30), "spread")], want)
    assert not plus_noise.passed and "spread of your samples" in plus_noise.note
    assert not judge.judge_test([R("runs", 0, _runs(1, scale=0.7), "spread")], want).passed
    # per entry of (R, ...) samples, shapes must agree, and non-finite samples are refused
    want2 = [R("runs", 0, _runs(0, shape=(3,)), "spread")]
    assert judge.judge_test([R("runs", 0, _runs(5, shape=(3,)), "spread")], want2).passed
    assert not judge.judge_test([R("runs", 0, _runs(5), "spread")], want2).passed
    nan = _runs(5, shape=(3,))
    nan["tensor"][4] = "nan"
    assert "finite samples" in judge.judge_test([R("runs", 0, nan, "spread")], want2).note
    # the solution's k and ratio are the ones used
    tight = [R("runs", 0, _runs(0), "spread", k=4.0, ratio=(0.999, 1.001))]
    assert not judge.judge_test([R("runs", 0, _runs(1), "spread")], tight).passed


def test_equal_to_and_differs_from_compare_the_learners_own_reports():
    want = [R("a", 0, T([7.0]), "none"), R("b", 0, T([7.0]), "equal_to", other="a"),
            R("c", 0, T([2.0]), "differs_from", other="a")]
    # a is only a base: the learner's random draws may differ from the reference's
    ok = [R("a", 0, T([1.0])), R("b", 0, T([1.0])), R("c", 0, T([3.0]))]
    assert judge.judge_test(ok, want, "reports").passed
    not_seeded = judge.judge_test([R("a", 0, T([1.0])), R("b", 0, T([1.5])), R("c", 0, T([3.0]))], want, "reports")
    assert not not_seeded.passed and "the same result as 'a'" in not_seeded.note
    constant = judge.judge_test([R("a", 0, T([1.0])), R("b", 0, T([1.0])), R("c", 0, T([1.0]))], want, "reports")
    assert not constant.passed and "different result from 'a'" in constant.note


def test_malformed_record_lines_are_reported_not_trusted(tmp_path):
    path = tmp_path / "records.jsonl"
    path.write_text('{"test": "t", "fn": "f", "call": 0, "value": 1}\nnot json\n{"test": 1}\n')
    by_test, problems = judge.read_records(path)
    assert list(by_test) == ["t"] and len(problems) == 2


# --- whole gradings: the judge alone ------------------------------------------------------------

def _grade(tmp_path, nb, **options):
    root = make_course(tmp_path)
    write(nb, root / "workspace" / LESSON / f"{LESSON}.ipynb")
    opts = dict(timeout=120, scan=False, guard=False)
    opts.update(options)
    return grade_lesson(Lesson(LESSON, root), None, GradeOptions(**opts))


PATCH_DURING_TEST = (  # patches torch.testing through an alias only when the test calls the answer
    "def softplus(x):\n"
    "    import torch as _t\n"
    "    _tt = _t.testing\n"
    "    _tt.assert_close = lambda *a, **k: None\n"
    "    return x * 0\n")
THREAD_REPATCH = (  # a daemon thread that keeps re-patching whatever a guard restores
    "import threading, time\n"
    "def _keep_patching():\n"
    "    while True:\n"
    "        torch.testing.assert_close = lambda *a, **k: None\n"
    "        time.sleep(0.001)\n"
    "threading.Thread(target=_keep_patching, daemon=True).start()\n")
DISPLAYHOOK = "    import sys\n    getattr(sys, 'displayhook')('all good')\n    raise NotImplementedError()\n"
ATTACKS = {
    "patch during the test": submission({"ex1_softplus": PATCH_DURING_TEST.split("def softplus(x):\n", 1)[1],
                                         "ex2_lse": "stub", "ex3_kl": "stub"}),
    "thread re-patching": submission("wrong", added={2: THREAD_REPATCH}),
    "displayhook then raise": submission({"ex1_softplus": DISPLAYHOOK, "ex2_lse": DISPLAYHOOK, "ex3_kl": DISPLAYHOOK}),
    "swallowed errors": submission("stub", added={2: CASES["ast_transformer"][1]}),
}


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(ATTACKS))
def test_the_judge_alone_gives_attacks_nothing(tmp_path, name):
    res = _grade(tmp_path, ATTACKS[name], partial_credit=True)  # even with nbgrader's partial credit back on
    assert res.status == "graded", res.message
    assert res.score == 0, [(e.grade_id, e.points, e.message) for e in res.exercises]


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(ATTACKS))
def test_without_the_judge_those_attacks_score(tmp_path, name):
    """Control: with every layer off, nbgrader gives each of them points."""
    res = _grade(tmp_path, ATTACKS[name], judge=False, partial_credit=True)
    assert res.score > 0, [(e.grade_id, e.points, e.message) for e in res.exercises]


@pytest.mark.slow
def test_an_honest_answer_written_differently_keeps_its_points(tmp_path):
    other = {
        "ex1_softplus": "    return torch.where(x > 0, x + torch.log1p(torch.exp(-x)), torch.log1p(torch.exp(x)))\n",
        "ex2_lse": ("    m = x.max(dim=dim, keepdim=True).values\n"
                    "    return torch.log(torch.exp(x - m).sum(dim=dim)) + m.squeeze(dim)\n"),
        "ex3_kl": "    return -0.5 * torch.sum(1 + logvar - mu * mu - torch.exp(logvar), dim=-1)\n",
    }
    res = _grade(tmp_path, submission(other))
    assert res.score == TOTAL, [(e.grade_id, e.points, e.message) for e in res.exercises]
    stub = _grade(tmp_path / "stub", submission("stub"))
    assert stub.score == 0


@pytest.mark.slow
def test_a_solution_that_does_not_pass_gives_a_clear_error_not_a_score(tmp_path):
    root = make_course(tmp_path)
    path = root / "solutions" / LESSON / f"{LESSON}.ipynb"
    path.write_text(path.read_text().replace("return x.clamp(min=0)", "return 0 * x.clamp(min=0)"))
    write(submission("solution"), root / "workspace" / LESSON / f"{LESSON}.ipynb")
    res = grade_lesson(Lesson(LESSON, root), None, GradeOptions(timeout=120))
    assert res.status == "error" and res.score == 0
    assert "the course's own solution of lesson 00_fixture does not pass here (test_ex1_softplus" in res.message
