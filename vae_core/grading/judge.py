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
metadata ``"vae_course": {"judge": "none"}`` in ``solutions/``; their cells are scored by their
in-kernel tests alone, and the feedback says so.

The recorder runs in the learner's kernel, so it can be switched off or fed other values; that
only loses points (missing or wrong records), except where a test computes the expected value in
the kernel itself for the very inputs it judges, which code that rewrites the recorder could copy
(the static scan reports such code). Importing this module does nothing.
"""
from __future__ import annotations

import ast
import json
from dataclasses import dataclass

RTOL, ATOL = 1e-4, 1e-5

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


def judged_tests(solution_nb) -> dict[str, bool]:
    """``grade_id -> judged?`` for every autograded test cell (``"judge": "none"`` opts out)."""
    out = {}
    for cell in solution_nb.get("cells", []):
        meta = (cell.get("metadata") or {}).get("nbgrader") or {}
        if cell.get("cell_type") == "code" and meta.get("grade") and not meta.get("solution"):
            mode = ((cell.get("metadata") or {}).get("vae_course") or {}).get("judge", "values")
            out[meta["grade_id"]] = mode != "none"
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


def _close(a, b) -> bool:
    if isinstance(a, str) or isinstance(b, str):  # 'nan', 'inf', '-inf'
        return a == b
    if isinstance(a, bool) or isinstance(b, bool):
        return a == b
    return abs(a - b) <= ATOL + RTOL * abs(b)


def compare_values(got, want, where: str = "result") -> str | None:
    """``None`` when ``got`` matches ``want`` (plain data from the recorder), else what differs."""
    if isinstance(want, dict) and "tensor" in want:
        if not (isinstance(got, dict) and "tensor" in got):
            return f"{where}: expected a tensor of shape {tuple(want['shape'])}, got {_describe(got)}"
        if got.get("shape") != want["shape"]:
            return f"{where}: expected shape {tuple(want['shape'])}, got {tuple(got.get('shape') or ())}"
        g, w = got["tensor"], want["tensor"]
        if not isinstance(g, list) or len(g) != len(w):
            return f"{where}: malformed values"
        bad = [i for i, (x, y) in enumerate(zip(g, w)) if not isinstance(x, (int, float, str)) or not _close(x, y)]
        if bad:
            i = bad[0]
            return f"{where}: {len(bad)} of {len(w)} values differ from the reference (e.g. entry {i}: {g[i]!r} vs {w[i]!r})"
        return None
    if isinstance(want, dict) and "seq" in want:
        if not (isinstance(got, dict) and isinstance(got.get("seq"), list)) or len(got["seq"]) != len(want["seq"]):
            return f"{where}: expected a sequence of {len(want['seq'])} items, got {_describe(got)}"
        for i, (x, y) in enumerate(zip(got["seq"], want["seq"])):
            diff = compare_values(x, y, f"{where}[{i}]")
            if diff:
                return diff
        return None
    if isinstance(want, dict) and "map" in want:
        if not (isinstance(got, dict) and isinstance(got.get("map"), dict)) or set(got["map"]) != set(want["map"]):
            return f"{where}: expected keys {sorted(want['map'])}, got {_describe(got)}"
        for k in want["map"]:
            diff = compare_values(got["map"][k], want["map"][k], f"{where}[{k!r}]")
            if diff:
                return diff
        return None
    if isinstance(want, dict):  # {"raised": ...}, {"size": ...}, {"type": ...}
        return None if got == want else f"{where}: expected {_describe(want)}, got {_describe(got)}"
    if isinstance(want, (int, float)) and not isinstance(want, bool):
        ok = isinstance(got, (int, float, str)) and not isinstance(got, bool) and _close(got, want)
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


def judge_test(got: list[dict], want: list[dict]) -> Verdict:
    """Compare one test cell's records with the reference's, call by call."""
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
    for k, ref in expected.items():
        diff = compare_values(have[k]["value"], ref["value"], f"{k[0]} call {k[1] + 1}")
        if diff:
            return Verdict(False, diff)
    return Verdict(True)
