"""The kernel answers; the grader judges.

Every function an exercise asks for (the top-level ``def`` names of the solution's answer cells)
is wrapped, in the graded copy only, by a small recorder: while a test cell runs, each top-level
call's result (tensors as shape and values, numbers, shapes, exceptions) is written as plain data
to a file the grader reads afterwards. The grader runs the **solution** notebook the same way once
per solution version (cached), and in its own process compares the learner's records with the
solution's, call by call:

- a test cell earns its points only if it ran without an error **and** every call it made to an
  exercise function returned what the solution's did (shapes equal, values within
  ``rtol=1e-4, atol=1e-5``; the same exception type where the solution raised);
- a missing, extra or malformed record fails the cell, with a plain note;
- nothing the kernel prints or asserts can raise a score: an in-kernel error can only lower it.

So patching what the tests use (``torch.testing.assert_close``, ``abs``, the guard), the
partial-credit channel or an object that lies to comparisons cannot turn a wrong answer into
points: the values themselves are wrong. Exercises whose results legitimately differ between
correct answers (random draws in another order, training runs) opt out with the test cell's
metadata ``"vae_course": {"judge": "reports"}`` in ``solutions/``: their direct calls are not
compared, and the test cell hands the grader what *is* comparable with :func:`report`, each with
its check (the first of these is chosen in ``solutions/``, so the reference decides it):

- ``report("projector", V @ V.T)``: values close (``check="close"``, ``rtol``/``atol`` as given);
- ``report("runs", estimates, check="spread")``: ``(R, ...)`` raw samples; per entry, the mean
  agrees with the reference's within ``k`` combined standard errors and the standard deviation
  is within ``ratio`` of the reference's, so a closed form plus a little noise fails;
- ``report("b", x, check="equal_to", other="a")`` / ``check="differs_from"``: equal to (differs
  from) the learner's own earlier report ``a`` of the same test, e.g. the same seed twice;
- ``report("a", x, check="none")``: recorded only as the base of such a comparison.

``"judge": "none"`` leaves a cell to its in-kernel tests alone (the feedback says so); no lesson
uses it any more.

The recorder runs in the learner's kernel, so it can be switched off or fed other values; that
only loses points (missing or wrong records), except where a test computes the expected value in
the kernel itself for the very inputs it judges, which code that rewrites the recorder could copy
(the static scan reports such code). Importing this module does nothing.
"""
from __future__ import annotations

import ast
import json
import math
from dataclasses import dataclass

RTOL, ATOL = 1e-4, 1e-5
CHECKS = ("close", "spread", "equal_to", "differs_from", "none")
MODES = ("values", "reports", "none")

# Set by the grader's recorder in a graded copy; None everywhere else (Validate, stock nbgrader, a lesson).
_sink = None


def report(name: str, value, check: str = "close", **params):
    """Hand ``value`` to the grader under ``name`` (in a test cell); returns ``value`` unchanged.

    Outside a grading run this does nothing, so the cell's own asserts still work with Validate and
    stock nbgrader. In a run of ``vae-course grade`` the value is recorded as plain data and the
    grader compares it with what the course's solution reported, using the *solution's* ``check``
    and ``params`` (see the module docstring): ``close`` (``rtol``, ``atol``), ``spread`` (``k``,
    ``ratio=(lo, hi)``), ``equal_to`` / ``differs_from`` (``other``: an earlier report's name),
    ``none`` (kept only as such a base).
    """
    if not isinstance(name, str) or not name:
        raise ValueError(f"report needs a non-empty name (str), got {name!r}")
    if check not in CHECKS:
        raise ValueError(f"check must be one of {CHECKS}, got {check!r}")
    if _sink is not None:
        _sink(name, value, check, params)
    return value

# The kernel side, prepended to the graded copy. ``{path}``: the record file; ``{names}``: exercise names.
_KERNEL = r'''# vae-course grader: records what your functions return during the tests (graded copy only)
def _vae_judge_make(path, names):
    import functools, json, math
    state = {"test": None, "depth": 0, "calls": {}}
    out = open(path, "a", buffering=1, encoding="utf-8")

    def plain(v, depth=0):
        if depth > 4:
            return {"type": type(v).__name__}
        try:
            import torch
            if isinstance(v, torch.Tensor):
                t = v.detach().to("cpu")
                if t.is_complex() or t.numel() > 100_000:
                    return {"type": "Tensor", "shape": list(t.shape)}
                flat = t.reshape(-1).double().tolist() if (t.is_floating_point() or t.dtype == torch.bool) else t.reshape(-1).tolist()
                return {"tensor": [x if isinstance(x, (int, bool)) or math.isfinite(x) else repr(x) for x in flat],
                        "shape": list(t.shape)}
            if isinstance(v, torch.Size):
                return {"size": [int(s) for s in v]}
        except Exception:
            pass
        if v is None or isinstance(v, (bool, str)):
            return v
        if isinstance(v, int):
            return int(v)
        if isinstance(v, float):
            v = float(v)
            return v if math.isfinite(v) else repr(v)
        if isinstance(v, (list, tuple)):
            return {"seq": [plain(x, depth + 1) for x in list(v)[:1000]]}
        if isinstance(v, dict):
            return {"map": {str(k): plain(x, depth + 1) for k, x in list(v.items())[:200]}}
        return {"type": type(v).__name__}

    def record(name, value):
        key = (state["test"], name)
        n = state["calls"].get(key, 0)
        state["calls"][key] = n + 1
        try:
            line = json.dumps({"test": state["test"], "fn": name, "call": n, "value": value})
        except Exception as err:
            line = json.dumps({"test": state["test"], "fn": name, "call": n, "value": {"type": "unrecordable"}})
        out.write(line + "\n")

    def wrap(fn, name):
        if getattr(fn, "_vae_judged", None) is record or not callable(fn) or isinstance(fn, type):
            return fn  # classes stay classes (isinstance, subclassing); their instances are not judged

        @functools.wraps(fn)
        def judged(*args, **kwargs):
            top = state["test"] is not None and state["depth"] == 0
            state["depth"] += 1
            try:
                result = fn(*args, **kwargs)
            except BaseException as err:
                if top:
                    record(name, {"raised": type(err).__name__})
                raise
            finally:
                state["depth"] -= 1
            if top:
                record(name, plain(result))
            return result

        judged._vae_judged = record
        return judged

    def begin(test_id, scope):
        for name in names:
            if name in scope:
                scope[name] = wrap(scope[name], name)
        state["test"], state["depth"] = test_id, 0

    def end():
        state["test"] = None


    def sink(name, value, check, params):  # vae_core.grading.judge.report lands here during a test
        if state["test"] is not None:
            record("report:" + str(name), {"check": str(check), "params": plain(params), "value": plain(value)})

    try:
        import vae_core.grading.judge as judge_module
        judge_module._sink = sink
    except Exception:
        pass
    return begin, end


{begin}, {end} = _vae_judge_make({path!r}, {names!r})
del _vae_judge_make
'''


def exercise_names(solution_nb) -> list[str]:
    """Top-level ``def`` names of the solution's answer cells, in order (classes are not wrapped)."""
    names: list[str] = []
    for cell in solution_nb.get("cells", []):
        meta = (cell.get("metadata") or {}).get("nbgrader") or {}
        if cell.get("cell_type") != "code" or not meta.get("solution"):
            continue
        source = cell.get("source", "")
        source = "".join(source) if isinstance(source, list) else source
        try:
            tree = ast.parse(source)
        except SyntaxError:
            continue
        for node in tree.body:
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name not in names:
                names.append(node.name)
    return names


def judged_tests(solution_nb) -> dict[str, str]:
    """``grade_id -> mode`` for every autograded test cell: ``"values"`` (every call and report is
    compared; the default), ``"reports"`` (only :func:`report` records) or ``"none"`` (not judged)."""
    out = {}
    for cell in solution_nb.get("cells", []):
        meta = (cell.get("metadata") or {}).get("nbgrader") or {}
        if cell.get("cell_type") == "code" and meta.get("grade") and not meta.get("solution"):
            mode = ((cell.get("metadata") or {}).get("vae_course") or {}).get("judge", "values")
            if mode not in MODES:
                raise ValueError(f"test cell {meta['grade_id']}: vae_course.judge must be one of {MODES}, got {mode!r}")
            out[meta["grade_id"]] = mode
    return out


def kernel_source(path: str, names: list[str], begin: str, end: str) -> str:
    return (_KERNEL.replace("{begin}", begin).replace("{end}", end)
            .replace("{path!r}", repr(path)).replace("{names!r}", repr(list(names))))


def begin_source(begin: str, test_id: str) -> str:
    return f"# vae-course grader: start recording for {test_id}\n{begin}({test_id!r}, globals())"


def end_source(end: str) -> str:
    return f"# vae-course grader: stop recording\n{end}()"


def read_records(path) -> tuple[dict[str, list[dict]], list[str]]:
    """``test_id -> records in order`` from the record file, and notes on lines that were not records."""
    by_test: dict[str, list[dict]] = {}
    problems: list[str] = []
    try:
        lines = open(path, encoding="utf-8", errors="replace").read().splitlines()
    except OSError:
        return by_test, problems
    for n, line in enumerate(lines, 1):
        try:
            rec = json.loads(line)
            ok = isinstance(rec, dict) and isinstance(rec.get("test"), str) and isinstance(rec.get("fn"), str) \
                and isinstance(rec.get("call"), int) and "value" in rec
        except ValueError:
            ok = False
        if not ok:
            problems.append(f"line {n} of the record is not a record")
            continue
        by_test.setdefault(rec["test"], []).append(rec)
    return by_test, problems


@dataclass
class Verdict:
    passed: bool
    note: str = ""


def _close(a, b, rtol: float = RTOL, atol: float = ATOL) -> bool:
    if isinstance(a, str) or isinstance(b, str):  # 'nan', 'inf', '-inf'
        return a == b
    if isinstance(a, bool) or isinstance(b, bool):
        return a == b
    return abs(a - b) <= atol + rtol * abs(b)


def compare_values(got, want, where: str = "result", rtol: float = RTOL, atol: float = ATOL) -> str | None:
    """``None`` when ``got`` matches ``want`` (plain data from the recorder), else what differs."""
    if isinstance(want, dict) and "tensor" in want:
        if not (isinstance(got, dict) and "tensor" in got):
            return f"{where}: expected a tensor of shape {tuple(want['shape'])}, got {_describe(got)}"
        if got.get("shape") != want["shape"]:
            return f"{where}: expected shape {tuple(want['shape'])}, got {tuple(got.get('shape') or ())}"
        g, w = got["tensor"], want["tensor"]
        if not isinstance(g, list) or len(g) != len(w):
            return f"{where}: malformed values"
        bad = [i for i, (x, y) in enumerate(zip(g, w)) if not isinstance(x, (int, float, str)) or not _close(x, y, rtol, atol)]
        if bad:
            i = bad[0]
            return f"{where}: {len(bad)} of {len(w)} values differ from the reference (e.g. entry {i}: {g[i]!r} vs {w[i]!r})"
        return None
    if isinstance(want, dict) and "seq" in want:
        if not (isinstance(got, dict) and isinstance(got.get("seq"), list)) or len(got["seq"]) != len(want["seq"]):
            return f"{where}: expected a sequence of {len(want['seq'])} items, got {_describe(got)}"
        for i, (x, y) in enumerate(zip(got["seq"], want["seq"])):
            diff = compare_values(x, y, f"{where}[{i}]", rtol, atol)
            if diff:
                return diff
        return None
    if isinstance(want, dict) and "map" in want:
        if not (isinstance(got, dict) and isinstance(got.get("map"), dict)) or set(got["map"]) != set(want["map"]):
            return f"{where}: expected keys {sorted(want['map'])}, got {_describe(got)}"
        for k in want["map"]:
            diff = compare_values(got["map"][k], want["map"][k], f"{where}[{k!r}]", rtol, atol)
            if diff:
                return diff
        return None
    if isinstance(want, dict):  # {"raised": ...}, {"size": ...}, {"type": ...}
        return None if got == want else f"{where}: expected {_describe(want)}, got {_describe(got)}"
    if isinstance(want, (int, float)) and not isinstance(want, bool):
        ok = isinstance(got, (int, float, str)) and not isinstance(got, bool) and _close(got, want, rtol, atol)
        return None if ok else f"{where}: expected {want!r}, got {_describe(got)}"
    return None if got == want else f"{where}: expected {want!r}, got {_describe(got)}"


def _describe(v) -> str:
    if isinstance(v, dict):
        if "raised" in v:
            return f"an exception ({v['raised']})"
        if "tensor" in v:
            return f"a tensor of shape {tuple(v.get('shape') or ())}"
        if "seq" in v:
            return f"a sequence of {len(v['seq'])} items"
        if "type" in v:
            return f"a {v['type']}"
    return repr(v)[:60]


def _samples(v) -> tuple[list[list[float]], int] | None:
    """Plain ``{"tensor", "shape"}`` data of shape (R, ...) -> (R rows of floats, R), or None."""
    if not (isinstance(v, dict) and isinstance(v.get("tensor"), list) and isinstance(v.get("shape"), list)):
        return None
    shape, flat = v["shape"], v["tensor"]
    if not shape or not all(isinstance(n, int) and n > 0 for n in shape) or len(flat) != math.prod(shape):
        return None
    if not all(isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x) for x in flat):
        return None
    width = len(flat) // shape[0]
    return [flat[i * width:(i + 1) * width] for i in range(shape[0])], shape[0]


def _mean_sd(rows: list[list[float]], j: int) -> tuple[float, float]:
    col = [r[j] for r in rows]
    m = sum(col) / len(col)
    return m, math.sqrt(sum((x - m) ** 2 for x in col) / max(1, len(col) - 1))


def check_spread(got, want, where: str, k: float = 4.0, ratio=(0.8, 1.25)) -> str | None:
    """Raw samples (R, ...) against the reference's: per entry, the means agree within ``k`` combined
    standard errors and the standard deviations within ``ratio`` (lo, hi) of each other."""
    g, w = _samples(got), _samples(want)
    if w is None:
        return f"{where}: the reference holds no samples (a course bug; report it)"
    if g is None or got["shape"] != want["shape"]:
        return f"{where}: expected finite samples of shape {tuple(want['shape'])}, got {_describe(got)}"
    (g_rows, n_g), (w_rows, n_w) = g, w
    lo, hi = ratio
    for j in range(len(w_rows[0])):
        mg, sg = _mean_sd(g_rows, j)
        mw, sw = _mean_sd(w_rows, j)
        se = math.sqrt(sg ** 2 / n_g + sw ** 2 / n_w)
        if abs(mg - mw) > k * se + 1e-12 * (1 + abs(mw)):
            return (f"{where}: the mean of your {n_g} samples (entry {j}) is {mg:.4g}, the reference's {mw:.4g}; "
                    f"they differ by {abs(mg - mw) / max(se, 1e-300):.1f} standard errors (allowed {k:g}): biased?")
        if sw > 0 and not lo <= sg / sw <= hi:
            return (f"{where}: the spread of your samples (entry {j}) is {sg:.4g}, a correct estimator's is about "
                    f"{sw:.4g} (ratio {sg / sw:.2f}, allowed {lo:g}-{hi:g}): the samples must vary as a real "
                    "estimate does, not be a fixed number plus noise")
    return None


def _check_report(got: dict, want: dict, reports: dict, where: str) -> str | None:
    """One :func:`report` record against the reference's, by the reference's check."""
    check, params = want.get("check"), want.get("params")
    params = params.get("map", {}) if isinstance(params, dict) else {}
    num = lambda key, default: params[key] if isinstance(params.get(key), (int, float)) else default  # noqa: E731
    value = got.get("value") if isinstance(got, dict) else None
    if check == "close":
        return compare_values(value, want.get("value"), where, num("rtol", RTOL), num("atol", ATOL))
    if check == "spread":
        r = params.get("ratio")
        r = tuple(x for x in r["seq"]) if isinstance(r, dict) and isinstance(r.get("seq"), list) else (0.8, 1.25)
        return check_spread(value, want.get("value"), where, num("k", 4.0), r)
    if check == "none":
        return None
    if check in ("equal_to", "differs_from"):
        other = params.get("other")
        if other not in reports:
            return f"{where}: the report it is compared with ({other!r}) is missing"
        same = compare_values(value, reports[other], where, 0.0, 0.0) is None
        if check == "equal_to" and not same:
            return f"{where}: expected the same result as {other!r} (e.g. the same seed twice), got a different one"
        if check == "differs_from" and same:
            return f"{where}: expected a different result from {other!r} (e.g. another seed), got the same one"
        return None
    return f"{where}: the reference uses an unknown check {check!r} (a course bug; report it)"


def judge_test(got: list[dict], want: list[dict], mode: str = "values") -> Verdict:
    """Compare one test cell's records with the reference's, call by call (``mode="reports"``: only
    the :func:`report` records)."""
    if mode == "reports":
        got = [r for r in got if r["fn"].startswith("report:")]
        want = [r for r in want if r["fn"].startswith("report:")]
    key = lambda r: (r["fn"], r["call"])  # noqa: E731
    have = {}
    for r in got:
        if key(r) in have:
            return Verdict(False, f"{r['fn']} call {r['call'] + 1} was recorded twice; the test is not trusted")
        have[key(r)] = r
    expected = {key(r): r for r in want}
    missing = [k for k in expected if k not in have]
    if missing:
        fn, call = missing[0]
        return Verdict(False, f"{len(missing)} call(s) the test makes were not recorded (first: {fn} call {call + 1}); "
                              "the cell stopped early, or the function was redefined in a way that skips the recorder")
    extra = [k for k in have if k not in expected]
    if extra:
        fn, call = extra[0]
        return Verdict(False, f"the test made more calls than with the course's solution (first extra: {fn} call {call + 1})")
    reports = {}  # the learner's own report values so far, by name (for equal_to / differs_from)
    for k, ref in expected.items():
        fn, call = k
        where = (f"report {fn.removeprefix('report:')!r}" + (f" (call {call + 1})" if call else "")
                 if fn.startswith("report:") else f"{fn} call {call + 1}")
        if fn.startswith("report:") and isinstance(ref["value"], dict) and "check" in ref["value"]:
            diff = _check_report(have[k]["value"], ref["value"], reports, where)
            if isinstance(have[k]["value"], dict):
                reports[fn.removeprefix("report:")] = have[k]["value"].get("value")
        else:
            diff = compare_values(have[k]["value"], ref["value"], where)
        if diff:
            return Verdict(False, diff)
    return Verdict(True)
