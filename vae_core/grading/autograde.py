"""Grade one learner notebook with nbgrader's autograder, on a private course.

What :func:`grade_lesson` does, in order:

1. read the learner's notebook (never writing to it) and hash it; a missing or corrupt file
   ends here with a one-paragraph report;
2. scan it for code that changes how tests run (:mod:`vae_core.grading.tamper`); findings are
   reported beside the grade for the instructor, never scored (the judge decides);
3. build a private nbgrader course in a temporary folder: ``source/NN`` is a copy of
   ``solutions/NN``, the gradebook is a fresh SQLite file, and a copy of the learner's notebook
   is ``submitted/learner/NN/NN.ipynb``;
4. in a separate worker process (so a crash or hang cannot take the grader down, with a
   wall-clock limit and a memory limit on the kernel): ``generate_assignment`` (the gradebook
   learns the solution's test cells), then in the submitted copy re-insert graded cells the
   learner deleted, prepend the preamble (memory limit) and the judge's recorder, bracket every
   test cell with the recorder's and the preamble's calls,
   then ``autograde`` (nbgrader restores every locked test cell from the gradebook before
   running) and ``generate_feedback``; the judge compares the recorded values with the solution's;
5. report per exercise, copy the HTML feedback to ``.vae_course/feedback/NN/<timestamp>/`` and
   append a line to the grade record.

The worker is started by :func:`grade_lesson` (``_WORKER_BOOT``); ``generate_assignment`` output is
cached per version of the solution folder in ``.vae_course/cache/``.
"""
from __future__ import annotations

import argparse
import datetime as _dt
import hashlib
import json
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path

from . import judge, sandbox, tamper
from .course import STATE_DIR, Lesson

STUDENT = "learner"
# stderr text that must not cost points: warnings (a torch UserWarning) and tqdm progress bars
IGNORE_STDERR = r"(?i)warning|warn\(|\d+%\|"
ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


@dataclass
class GradeOptions:
    """Knobs for one grading run."""

    timeout: int = 300  # seconds per cell before the kernel is interrupted (nbgrader's Execute.timeout)
    wall: float | None = None  # seconds for the whole run; None: timeout * (code cells + 2) + 120
    memory_gb: float | None = 4.0  # memory limit of the kernel (RLIMIT_DATA, Linux); None: no limit
    keep_tmp: bool = False  # keep the private course folder (for debugging the grader)
    # The tamper report (findings noted beside the grade, never scored) and the preamble's per-test
    # cells (memory limit, shadowed builtins moved aside); switched off only by the grader's own tests.
    scan: bool = True
    guard: bool = True
    # nbgrader's own partial credit from a test cell's result value; on only in the grader's tests, to
    # show the hole it opens (an answer that displays 'ok' and then raises scores full marks).
    partial_credit: bool = False
    # Judge the values the exercise functions return against the solution's (grading/judge.py); off only
    # in the grader's own tests, to show what the judge alone stops.
    judge: bool = True
    # Run the learner's kernel in a bubblewrap sandbox: None = when bwrap works here (the default),
    # False = never (the grader's tests compare both paths), True = required (error without bwrap).
    sandbox: bool | None = None
    # Instructors grading collected submissions (grading/submissions.py): the executed notebook is copied
    # into this folder (for nbgrader's generate_feedback) instead of HTML feedback into the learner's
    # .vae_course/feedback/, and these extra folders are hidden from the sandboxed kernel (other students'
    # submissions, the gradebook's folder).
    executed_to: Path | None = None
    hide: tuple = ()


@dataclass
class ExerciseResult:
    grade_id: str
    points: float
    max: float
    passed: bool
    message: str = ""


@dataclass
class GradeResult:
    lesson: str
    status: str  # one of record.STATUSES
    score: float
    max: float
    notebook: str
    notebook_sha256: str | None
    timestamp: str
    exercises: list[ExerciseResult] = field(default_factory=list)
    feedback: str | None = None
    message: str | None = None  # the one-paragraph report when something went wrong
    notes: list[str] = field(default_factory=list)  # per-cell remarks (memory, SystemExit, ...)

    def to_record(self) -> dict:
        d = asdict(self)
        d.pop("notes")
        if self.notes:
            d["message"] = " ".join(filter(None, [self.message, *self.notes]))
        return d


def sha256_file(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def _now() -> _dt.datetime:
    return _dt.datetime.now(_dt.timezone.utc)


def _first_line(text: str, limit: int = 120) -> str:
    lines = [ln.strip() for ln in ANSI.sub("", str(text)).splitlines() if ln.strip()]
    line = lines[0] if lines else ""
    return line if len(line) <= limit else line[: limit - 3] + "..."


def _max_points(solution_nb) -> tuple[list[str], float]:
    ids, total = [], 0.0
    for cell in solution_nb.get("cells", []):
        meta = (cell.get("metadata") or {}).get("nbgrader") or {}
        if meta.get("grade") and cell.get("cell_type") == "code":
            ids.append(meta["grade_id"])
            total += float(meta.get("points", 0))
    return ids, total


def _zero_exercises(solution_nb, message: str) -> list[ExerciseResult]:
    out = []
    for cell in solution_nb.get("cells", []):
        meta = (cell.get("metadata") or {}).get("nbgrader") or {}
        if meta.get("grade") and cell.get("cell_type") == "code":
            out.append(ExerciseResult(meta["grade_id"], 0.0, float(meta.get("points", 0)), False, message))
    return out


def _worker_env() -> dict:
    env = dict(os.environ)
    bindir = str(Path(sys.executable).parent)  # nbgrader's gradebook needs `alembic` on PATH
    env["PATH"] = bindir + os.pathsep + env.get("PATH", "")
    env.setdefault("OMP_NUM_THREADS", "1")
    env["PYTHONUNBUFFERED"] = "1"
    return env


# Start the worker without importing the vae_core package (its __init__ imports torch, which the
# worker does not need): load this folder as a stand-alone package.
_WORKER_BOOT = (
    "import sys, types; pkg = types.ModuleType('_vae_grading'); pkg.__path__ = [sys.argv[1]]; "
    "sys.modules['_vae_grading'] = pkg; from _vae_grading.autograde import _worker; "
    "sys.exit(_worker(sys.argv[2:]))"
)
CACHE_VERSION = "1"


def _cache_dir(lesson: Lesson) -> Path:
    """Where the generated gradebook and release of this exact solution folder are kept, so that
    ``generate_assignment`` runs once per version of the lesson, not once per grading."""
    from importlib.metadata import version

    h = hashlib.sha256(f"{CACHE_VERSION}|nbgrader {version('nbgrader')}|{lesson.name}".encode())
    for f in sorted(p for p in lesson.solution_dir.rglob("*") if p.is_file()):
        rel = f.relative_to(lesson.solution_dir).as_posix()
        if ".ipynb_checkpoints" in rel or "__pycache__" in rel:
            continue
        h.update(rel.encode() + b"\0" + hashlib.sha256(f.read_bytes()).digest())
    return cache_root(lesson.root) / lesson.name / h.hexdigest()[:20]


def cache_root(course_root: Path) -> Path:
    """Cached generations and reference runs: ``.vae_course/cache`` in the course, or
    ``$VAE_COURSE_CACHE`` (keys hold the solution's content, so one folder can serve many courses)."""
    return Path(os.environ.get("VAE_COURSE_CACHE") or Path(course_root) / STATE_DIR / "cache")


def _kill_tree(proc: subprocess.Popen) -> None:
    """Kill the worker and everything it started (the kernel runs in its own session)."""
    pids = []
    try:
        import psutil

        pids = [c.pid for c in psutil.Process(proc.pid).children(recursive=True)]
    except Exception:
        pass
    for pid in [proc.pid, *pids]:
        try:
            os.kill(pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        pass


def _feedback_dir(root: Path, lesson: str, when: _dt.datetime) -> Path:
    base = Path(root) / STATE_DIR / "feedback" / lesson
    stamp = when.strftime("%Y%m%dT%H%M%S_%fZ")
    path, n = base / stamp, 1
    while path.exists():  # never overwrite an earlier run's feedback
        path, n = base / f"{stamp}-{n}", n + 1
    path.mkdir(parents=True)
    return path


def grade_lesson(lesson: Lesson, notebook: Path | None = None, options: GradeOptions | None = None) -> GradeResult:
    """Grade ``notebook`` (default: the learner's copy in workspace/) against ``solutions/``.

    Never raises for a problem with the notebook: those come back as a result whose ``status``
    is not ``graded`` and whose ``message`` says what happened and what to do.
    """
    import nbformat

    options = options or GradeOptions()
    root = lesson.root
    when = _now()
    stamp = when.isoformat(timespec="microseconds").replace("+00:00", "Z")
    path = Path(notebook) if notebook is not None else lesson.workspace
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        solution = nbformat.read(str(lesson.solution), as_version=4)
    _, max_total = _max_points(solution)

    def fail(status, message, sha=None, exercises=None):
        return GradeResult(lesson.name, status, 0.0, max_total, str(path), sha, stamp,
                           exercises if exercises is not None else _zero_exercises(solution, status), None, message)

    if not path.is_file():
        return fail("missing", (
            f"Lesson {lesson.name}: no notebook at {path}, so nothing was graded and it scores 0. "
            f"If you have not started this lesson yet, `vae-course workspace` (or `make lab`) gives you your copy; "
            f"if your notebook lives elsewhere, pass it with `vae-course grade {lesson.number} --notebook PATH`."))
    raw = path.read_bytes()
    sha = hashlib.sha256(raw).hexdigest()
    try:
        with warnings.catch_warnings():  # e.g. MissingIDFieldWarning for older notebooks: not the learner's problem
            warnings.simplefilter("ignore")
            nb = nbformat.reads(raw.decode("utf-8"), as_version=4)
        if not isinstance(nb.get("cells"), list):
            raise ValueError("it has no list of cells")
    except Exception as err:  # JSON, UTF-8 or nbformat errors: all mean "cannot read it"
        return fail("corrupt", (
            f"Lesson {lesson.name}: {path} is not a readable notebook ({type(err).__name__}: {_first_line(err)}), "
            "so nothing was run and it scores 0. The file was probably cut short or edited by hand. "
            "What to do: open it in JupyterLab; if it will not open, restore it from a checkpoint "
            "(File > Revert Notebook to Checkpoint) or from .ipynb_checkpoints/, or start again: move the "
            "broken file aside and run `vae-course workspace`, which copies the fresh lesson in its place."), sha)

    findings = tamper.scan_notebook(nb, solution) if options.scan else []
    course = Path(tempfile.mkdtemp(prefix=f"vae-grade-{lesson.number}-"))
    try:
        result = _grade_in_private_course(lesson, path, raw, sha, stamp, when, solution, max_total, course, options)
        if findings:  # for the instructor: scored as usual (by the judge), noted beside the grade
            result.notes.append(
                "Noted for your instructor (it does not change the score, which comes from the values your "
                "functions returned): code that changes how tests run, "
                + "; ".join(f.message() for f in findings[:5])
                + (f"; and {len(findings) - 5} more" if len(findings) > 5 else "") + ".")
        return result
    finally:
        if not options.keep_tmp:
            shutil.rmtree(course, ignore_errors=True)


class NoReferenceError(RuntimeError):
    """The course's own solution notebook did not pass here, so there is nothing to judge against."""


def _reference_path(lesson: Lesson) -> Path:
    """Where the solution's recorded results for this solution version, library version and mode live."""
    from ..config import quick_mode

    pkg = Path(__file__).resolve().parents[1]
    h = hashlib.sha256(f"{judge.RTOL}|{judge.ATOL}|quick={quick_mode()}".encode())
    for f in sorted(p for p in pkg.rglob("*") if p.is_file() and "__pycache__" not in p.parts):
        st = f.stat()
        h.update(f"{f.relative_to(pkg).as_posix()}|{st.st_size}|{st.st_mtime_ns}".encode())
    return _cache_dir(lesson) / f"reference-{h.hexdigest()[:16]}.json"


def reference_records(lesson: Lesson, options: GradeOptions) -> dict:
    """The records of the solution notebook run by the grader (cached per version): what a correct
    answer returns for every call the tests make."""
    path = _reference_path(lesson)
    if path.is_file():
        try:
            return json.loads(path.read_text())["records"]
        except (ValueError, KeyError):
            pass  # damaged: run it again
    course = Path(tempfile.mkdtemp(prefix=f"vae-reference-{lesson.number}-"))
    try:
        raw = lesson.solution.read_bytes()
        solution = json.loads(raw)
        res, log_text, _ = _run_worker(lesson, raw, solution, course, options, reference=None)
    finally:
        if not options.keep_tmp:
            shutil.rmtree(course, ignore_errors=True)
    failed = [e for e in res.get("exercises", []) if not e["passed"]]
    if res["status"] != "ok" or failed:
        why = (f"{failed[0]['grade_id']}: {failed[0]['message']}" if failed
               else res.get("error") or " | ".join(log_text.strip().splitlines()[-3:]))
        raise NoReferenceError(f"the course's own solution of lesson {lesson.name} does not pass here ({why}), "
                              "so there is nothing to judge your answers against")
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    _mkdirs(path.parent)
    tmp.write_text(json.dumps({"records": res["records"]}))
    os.replace(tmp, path)
    return res["records"]


def _grade_in_private_course(lesson, path, raw, sha, stamp, when, solution, max_total, course: Path, options):
    try:
        reference = reference_records(lesson, options) if options.judge else None
    except NoReferenceError as err:
        return GradeResult(lesson.name, "error", 0.0, max_total, str(path), sha, stamp,
                           _zero_exercises(solution, "not run: no reference"), None,
                           f"Lesson {lesson.name}: {err}. What to do: report this to the course maintainers.")
    res, log_text, wall = _run_worker(lesson, raw, solution, course, options, reference=reference)
    return _result(lesson, path, sha, stamp, when, solution, max_total, course, options, res, log_text, wall)


def _run_worker(lesson, raw, solution, course: Path, options, reference):
    """Run one grading worker on ``raw`` (a notebook's bytes) in the private course ``course``.
    Returns ``(result, log text, wall limit)``: the worker's result dict, or ``{"status": "none"}``
    when it wrote none, ``{"status": "timeout"}`` when it was stopped; each with ``sandboxed``."""
    ignore = shutil.ignore_patterns(".ipynb_checkpoints", "__pycache__", "*.pyc")
    shutil.copytree(lesson.solution_dir, course / "source" / lesson.name, ignore=ignore)
    sub = course / "submitted" / STUDENT / lesson.name
    sub.mkdir(parents=True)
    (sub / f"{lesson.name}.ipynb").write_bytes(raw)  # a COPY: the learner's file is only read
    nonce = secrets.token_hex(8)
    result_path = course / "result.json"
    n_code = sum(1 for c in solution.get("cells", []) if c.get("cell_type") == "code")
    wall = options.wall or options.timeout * (n_code + 2) + 120
    cache = _cache_dir(lesson)
    if reference is not None:
        (course / "reference.json").write_text(json.dumps(reference))
    cmd = [sys.executable, "-c", _WORKER_BOOT, str(Path(__file__).resolve().parent),
           "--course", str(course), "--lesson", lesson.name, "--cache", str(cache),
           "--timeout", str(int(options.timeout)), "--nonce", nonce, "--result", str(result_path),
           "--memory", str(int(options.memory_gb * 2**30)) if options.memory_gb else "0"]
    if not options.guard:
        cmd.append("--no-guard")
    if options.partial_credit:
        cmd.append("--partial-credit")
    bwrap = sandbox.bwrap() if options.sandbox is not False else None
    if options.sandbox and not bwrap:
        raise RuntimeError("GradeOptions(sandbox=True) but bubblewrap (bwrap) is not available or cannot run here")
    if bwrap:
        cmd += ["--sandbox", bwrap]
        for folder in [*sandbox.protected_folders(lesson.root), *options.hide]:
            cmd += ["--hide", str(folder)]
    if reference is not None:
        cmd += ["--reference", str(course / "reference.json")]
    if not options.judge:
        cmd.append("--no-judge")
    if options.executed_to is not None:  # the instructor's nbgrader writes the feedback from the executed copy
        cmd.append("--no-feedback")
    proc = subprocess.Popen(cmd, cwd=course, env=_worker_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            start_new_session=True)
    try:
        log, _ = proc.communicate(timeout=wall)
    except subprocess.TimeoutExpired:
        _kill_tree(proc)
        return {"status": "timeout", "sandboxed": bool(bwrap)}, "", wall
    log_text = (log or b"").decode("utf-8", errors="replace")
    if not result_path.exists():
        return {"status": "none", "returncode": proc.returncode, "sandboxed": bool(bwrap)}, log_text, wall
    res = json.loads(result_path.read_text())
    res["sandboxed"] = bool(bwrap)
    return res, log_text, wall


def _result(lesson, path, sha, stamp, when, solution, max_total, course, options, res, log_text, wall):
    """The learner's GradeResult from the worker's result."""
    bwrap = res.get("sandboxed")
    if res["status"] == "timeout":
        return GradeResult(lesson.name, "timeout", 0.0, max_total, str(path), sha, stamp,
                           _zero_exercises(solution, "not run: the grading run was stopped"), None, (
            f"Lesson {lesson.name}: grading was stopped after {wall:.0f} s of wall-clock time, so it scores 0. "
            f"Some cell kept running past the per-cell limit of {options.timeout} s and did not stop when "
            "interrupted (for example a loop that catches KeyboardInterrupt, or a very long training run). "
            "What to do: run the notebook top to bottom in Jupyter, find the cell that does not finish, "
            f"make it finish (quick mode: VAE_COURSE_QUICK=1), or allow more time with --timeout / --wall."))
    if res["status"] == "none":
        return GradeResult(lesson.name, "error", 0.0, max_total, str(path), sha, stamp,
                           _zero_exercises(solution, "not run: the grader failed"), None, (
            f"Lesson {lesson.name}: the grader itself failed (worker exit code {res['returncode']}), so nothing "
            f"was scored. Last lines of its log: {' | '.join(log_text.strip().splitlines()[-5:])}. "
            "What to do: check that `nbgrader --version` works in this environment, then report this."))
    if res["status"] == "error":
        return GradeResult(lesson.name, "error", 0.0, max_total, str(path), sha, stamp,
                           _zero_exercises(solution, "not run: the grader failed"), None, (
            f"Lesson {lesson.name}: nbgrader could not grade this notebook ({res.get('error')}), so it scores 0. "
            f"Its log ends: {' | '.join(res.get('log', '').strip().splitlines()[-4:])}. What to do: open the "
            "notebook in Jupyter, make sure it runs top to bottom, and grade again; if it does, report this."))

    exercises = [ExerciseResult(**e) for e in res["exercises"]]
    feedback = None
    fb_src = course / "feedback" / STUDENT / lesson.name / f"{lesson.name}.html"
    executed = course / "autograded" / STUDENT / lesson.name / lesson.filename
    if options.executed_to is not None:
        if executed.exists():
            shutil.copy2(executed, _mkdirs(Path(options.executed_to)) / executed.name)
    elif fb_src.exists():
        dest = _feedback_dir(lesson.root, lesson.name, when)
        shutil.copy2(fb_src, dest / fb_src.name)
        feedback = str(dest / fb_src.name)
    status, message, notes = "graded", None, list(res.get("notes", []))
    if not bwrap:
        notes.append(sandbox.UNSANDBOXED_NOTE)
    stop = res.get("stopped")
    if stop:
        where = f"cell {stop['cell']}" if stop.get("cell") else "a cell the grader added"
        lost = ", ".join(stop.get("not_run", [])) or "none"
        if stop["reason"] == "kernel_died":
            status = "crashed"
            message = (
                f"Lesson {lesson.name}: the Python kernel died while running {where}, so the grader could not "
                f"go on; tests that ran before it were scored, the ones after it got 0 (not run: {lost}). "
                "Usual causes: os._exit() or exit() in the notebook, a crash inside a library, or using more "
                f"memory than the grader allows ({options.memory_gb} GiB). What to do: restart the kernel, run "
                "all cells in Jupyter, fix the cell that stops the kernel, then grade again.")
        else:
            status = "timeout"
            message = (
                f"Lesson {lesson.name}: {where} was still running after the per-cell limit of {options.timeout} s "
                f"and did not stop when interrupted, so the run was stopped there; tests before it were scored, "
                f"the ones after it got 0 (not run: {lost}). What to do: make that cell finish (an infinite loop? "
                "quick mode with VAE_COURSE_QUICK=1?) or allow more time with --timeout, then grade again.")
    elif res.get("timeouts"):
        status = "timeout"
        message = (
            f"Lesson {lesson.name}: cell(s) {', '.join(map(str, res['timeouts']))} hit the per-cell limit of "
            f"{options.timeout} s and were interrupted; they and the tests that needed them got 0, the rest was "
            "graded. What to do: make those cells finish faster (an infinite loop? quick mode with "
            "VAE_COURSE_QUICK=1?) or allow more time with --timeout, then grade again.")
    score = sum(e.points for e in exercises)
    return GradeResult(lesson.name, status, score, max_total, str(path), sha, stamp, exercises, feedback, message,
                       notes)


# ---------------------------------------------------------------------------------------------
# Worker side (runs in its own process: python -m vae_core.grading.autograde ...)

def prepare_copy(nb, release_nb, guard: str, memory_bytes: int | None, with_guard: bool = True,
                 record_path: str | None = None):
    """Make the submitted copy ready to grade; ``nb`` is modified in place and returned.

    - every graded or locked cell of the release notebook missing from ``nb`` (by grade_id) is
      re-inserted after the nearest earlier one that is present (nbgrader then restores its
      source from the gradebook; a deleted answer cell comes back as the stub);
    - each cell remembers its position in the learner's notebook (metadata ``vae_course``);
    - the preamble comes first (memory limit) and its cells go before and after every test cell
      (names shadowing builtins step aside during the test);
    - with ``record_path``, the judge's recorder (:mod:`.judge`) is set up first and switched on for
      each test cell (outside its guard cells), so what the exercise functions return is recorded.
    """
    import nbformat

    def gid(cell):
        meta = (cell.get("metadata") or {}).get("nbgrader")
        return meta.get("grade_id") if isinstance(meta, dict) else None

    release_meta = {gid(c): c.metadata["nbgrader"] for c in release_nb.cells if gid(c)}
    seen = set()
    for i, cell in enumerate(nb.cells, start=1):
        cell.setdefault("metadata", {})["vae_course"] = {"origin": "learner", "cell": i}
        if "nbgrader" in cell.metadata:
            # the course decides what is graded and how much: a grade_id the course does not have, or
            # one already seen (a duplicated cell), makes a plain cell; a known one gets the course's
            # flags and points back, so each of the course's cells is graded exactly once
            if gid(cell) in release_meta and gid(cell) not in seen:
                seen.add(gid(cell))
                cell.metadata["nbgrader"] = json.loads(json.dumps(release_meta[gid(cell)]))
            else:
                del cell.metadata["nbgrader"]
    present = {gid(c) for c in nb.cells if gid(c)}
    last_pos = -1
    for rcell in release_nb.cells:
        rid = gid(rcell)
        if not rid:
            continue
        if rid in present:
            last_pos = next(i for i, c in enumerate(nb.cells) if gid(c) == rid)
            continue
        copy = nbformat.from_dict(json.loads(json.dumps(rcell)))
        copy.metadata["vae_course"] = {"origin": "restored", "cell": None}
        nb.cells.insert(last_pos + 1, copy)
        last_pos += 1
        present.add(rid)

    begin, end = f"{guard}_judge_begin", f"{guard}_judge_end"
    out, test_no = [], 0
    for cell in nb.cells:
        meta = (cell.get("metadata") or {}).get("nbgrader") or {}
        is_test = cell.get("cell_type") == "code" and meta.get("grade") and not meta.get("solution")
        if is_test:
            test_no += 1
            if record_path:
                out.append(_grader_cell(judge.begin_source(begin, meta["grade_id"]), "judge", test_no))
            if with_guard:
                out.append(_grader_cell(tamper.guard_cell_source(guard, test_no), "guard", test_no))
        out.append(cell)
        if is_test:
            if with_guard:
                out.append(_grader_cell(tamper.guard_cell_source(guard, test_no, after=True), "guard_after", test_no))
            if record_path:
                out.append(_grader_cell(judge.end_source(end), "judge_after", test_no))
    if with_guard:
        out.insert(0, _grader_cell(tamper.runtime_preamble(guard, memory_bytes), "preamble", 0))
    if record_path:
        names = judge.exercise_names(release_nb)
        out.insert(0, _grader_cell(judge.kernel_source(record_path, names, begin, end), "judge_setup", 0))
    nb.cells = out
    return nb


_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


def clean_text(obj):
    """``obj`` (parsed notebook JSON) with lone UTF-16 surrogates replaced by U+FFFD. JSON may carry
    them as escapes (``"\\ud800"``), but no UTF-8 file can hold them, so writing the copy would fail."""
    if isinstance(obj, str):
        return _LONE_SURROGATE.sub("\ufffd", obj)
    if isinstance(obj, list):
        return [clean_text(v) for v in obj]
    if isinstance(obj, dict):
        return type(obj)((clean_text(k), clean_text(v)) for k, v in obj.items())
    return obj


def _grader_cell(source: str, role: str, index: int):
    import nbformat

    cell = nbformat.v4.new_code_cell(source)
    cell.metadata["vae_course"] = {"origin": "grader", "role": role, "test": index}
    return cell


_RUN = {"stopped": None}


def _execute_class():
    """nbgrader's Execute, but a dead or unresponsive kernel stops the run instead of failing it:
    the cells that ran keep their outputs (and grades), the rest are marked as not run."""
    from nbclient.exceptions import CellTimeoutError, DeadKernelError
    from nbformat.v4 import new_output
    from nbgrader.preprocessors import Execute

    class GuardedExecute(Execute):
        def preprocess_cell(self, cell, resources, index):
            if cell.cell_type != "code":
                return cell, resources
            stop = _RUN["stopped"]
            if stop is not None:
                cell.outputs = [new_output("error", ename="NotRun", evalue=f"not run: {stop['why']}",
                                           traceback=[f"NotRun: not run: {stop['why']}"])]
                return cell, resources
            try:
                return super().preprocess_cell(cell, resources, index)
            except (DeadKernelError, CellTimeoutError, RuntimeError) as err:
                reason = "timeout" if isinstance(err, CellTimeoutError) else "kernel_died"
                why = ("the kernel did not respond after a timeout" if reason == "timeout"
                       else "the kernel died earlier")
                origin = cell.metadata.get("vae_course", {})
                _RUN["stopped"] = {"reason": reason, "why": why, "cell": origin.get("cell"),
                                   "error": f"{type(err).__name__}: {_first_line(err)}"}
                cell.outputs.append(new_output("error", ename=type(err).__name__, evalue=_first_line(err),
                                               traceback=[f"{type(err).__name__}: {_first_line(err)}"]))
                return cell, resources

    return GuardedExecute


def _no_partial_credit_class():
    """Drops ``execute_result`` outputs of graded cells before nbgrader scores them. nbgrader reads a
    test cell's result as partial credit (a non-number as full credit), so an answer that calls
    ``sys.displayhook('ok')`` and then fails would get full marks; here a test cell scores by its
    errors only."""
    from nbconvert.preprocessors import Preprocessor
    from traitlets import Bool

    class NoPartialCredit(Preprocessor):
        enabled = Bool(True)  # nbconvert's Preprocessor is off unless enabled

        def preprocess_cell(self, cell, resources, index):
            if cell.cell_type == "code" and cell.metadata.get("nbgrader", {}).get("grade"):
                cell.outputs = [o for o in cell.outputs if o.get("output_type") != "execute_result"]
            return cell, resources

    return NoPartialCredit


def _mkdirs(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    return path


def _cpu() -> float:
    import resource

    own, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def _worker(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="python -m vae_core.grading.autograde")
    p.add_argument("--course", required=True)
    p.add_argument("--lesson", required=True)
    p.add_argument("--timeout", type=int, required=True)
    p.add_argument("--memory", type=int, default=0)
    p.add_argument("--nonce", required=True)
    p.add_argument("--result", required=True)
    p.add_argument("--no-guard", action="store_true")
    p.add_argument("--partial-credit", action="store_true")
    p.add_argument("--sandbox", default=None, help="path of bwrap: run the kernel sandboxed")
    p.add_argument("--hide", action="append", default=[], help="a folder the sandboxed kernel must not see")
    p.add_argument("--reference", default=None, help="the solution's records: judge the learner's against them")
    p.add_argument("--no-judge", action="store_true")
    p.add_argument("--no-feedback", action="store_true", help="skip the HTML feedback (grade-submissions)")
    p.add_argument("--cache", default=None)
    a = p.parse_args(argv)
    course, lesson = Path(a.course), a.lesson
    result = {"status": "error", "error": None, "log": "", "exercises": [], "notes": [], "timings": {}}
    clock = {"t": time.perf_counter(), "cpu": _cpu()}

    def lap(name):  # wall and CPU seconds (this process and its kernels) per phase, for the benchmark
        t, cpu = time.perf_counter(), _cpu()
        result["timings"][name] = (round(t - clock["t"], 3), round(cpu - clock["cpu"], 3))
        clock.update(t=t, cpu=cpu)

    def done(**kw):
        result.update(kw)
        Path(a.result).write_text(json.dumps(result))
        return 0

    import nbformat
    from nbconvert.preprocessors import ClearMetadataPreprocessor
    from nbgrader.api import Gradebook
    from nbgrader.apps import NbGraderAPI
    from nbgrader.preprocessors import (AssignLatePenalties, CheckCellMetadata, IgnorePattern, LimitOutput,
                                        SaveAutoGrades)
    from traitlets.config import Config

    c = Config()
    c.CourseDirectory.root = str(course)
    c.CourseDirectory.db_url = f"sqlite:///{course / 'gradebook.db'}"
    c.CourseDirectory.course_id = "vae_course"
    c.Execute.timeout = a.timeout
    # Connection files, kernel sockets and the judge's records live in runtime/; a sandboxed kernel sees
    # only runtime/ and work/ (its folder) of this private course, and talks over Unix sockets (no network).
    runtime, work = _mkdirs(course / "runtime"), _mkdirs(course / "work")
    os.environ["JUPYTER_RUNTIME_DIR"] = str(runtime)
    if a.sandbox:
        prefix = sandbox.kernel_prefix([Path(h) for h in a.hide] + [course], [runtime, work], work, a.sandbox,
                                       visible=sandbox.needed_folders())
        c.Execute.kernel_name = sandbox.install_kernelspec(course / "jupyter", prefix, sys.executable)
        os.environ["JUPYTER_PATH"] = os.pathsep.join(filter(None, [str(course / "jupyter"),
                                                                   os.environ.get("JUPYTER_PATH")]))
        c.KernelManager.transport = "ipc"
        c.KernelManager.connection_file = str(runtime / "kernel.json")  # jupyter_client's default is in /tmp
    c.Execute.interrupt_on_timeout = True
    c.Execute.startup_timeout = 180  # a busy laptop can take long to start a kernel; the default is 60 s
    c.IgnorePattern.enabled = True  # off by default in nbgrader 0.9.6: the pattern alone does nothing
    c.IgnorePattern.pattern = IGNORE_STDERR
    c.Autograde.autograde_preprocessors = [_execute_class(), IgnorePattern, ClearMetadataPreprocessor, LimitOutput,
                                           *([] if a.partial_credit else [_no_partial_credit_class()]),
                                           SaveAutoGrades, AssignLatePenalties, CheckCellMetadata]
    api = NbGraderAPI(config=c)
    lap("import")

    cache = Path(a.cache) if a.cache else None
    if cache and (cache / "gradebook.db").is_file() and (cache / "release" / f"{lesson}.ipynb").is_file():
        shutil.copy2(cache / "gradebook.db", course / "gradebook.db")
        shutil.copytree(cache / "release", course / "release" / lesson)
    else:
        r = api.generate_assignment(lesson, force=True, create=True)
        if not r["success"]:
            return done(error="generate_assignment failed on the course's own solution notebook", log=r["log"])
        if cache:
            tmp = None
            try:  # build the cache entry beside its final place, then move it in one step
                tmp = Path(tempfile.mkdtemp(prefix=".tmp-", dir=_mkdirs(cache.parent)))
                shutil.copy2(course / "gradebook.db", tmp / "gradebook.db")
                shutil.copytree(course / "release" / lesson, tmp / "release")
                os.replace(tmp, cache)
            except OSError:
                if tmp is not None:
                    shutil.rmtree(tmp, ignore_errors=True)  # another run filled it first, or a read-only course
    lap("generate_assignment")
    release_nb = nbformat.read(str(course / "release" / lesson / f"{lesson}.ipynb"), as_version=4)
    sub_path = course / "submitted" / STUDENT / lesson / f"{lesson}.ipynb"
    nb = nbformat.from_dict(clean_text(nbformat.read(str(sub_path), as_version=4)))
    guard = tamper.guard_name(a.nonce)
    record_path = None if a.no_judge else runtime / f"judge-{a.nonce}.jsonl"
    prepare_copy(nb, release_nb, guard, a.memory or None, with_guard=not a.no_guard,
                 record_path=str(record_path) if record_path else None)
    nbformat.write(nb, str(sub_path))

    lap("prepare_copy")
    r = api.autograde(lesson, STUDENT, force=True, create=True)
    lap("autograde")
    if not r["success"]:
        return done(error=_first_line(r.get("error") or "autograde failed"), log=r["log"])
    graded_nb = nbformat.read(str(course / "autograded" / STUDENT / lesson / f"{lesson}.ipynb"), as_version=4)
    scores = {}
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}", "vae_course") as gb:
        sub_nb = gb.find_submission_notebook(lesson, lesson, STUDENT)
        for g in sub_nb.grades:
            scores[g.name] = (g.score, g.max_score)

    exercises, notes, timeouts = [], [], []
    stop = _RUN["stopped"]
    not_run = []
    for cell in graded_nb.cells:
        vc = cell.metadata.get("vae_course", {})
        meta = cell.metadata.get("nbgrader", {})
        outs = cell.get("outputs", []) if cell.cell_type == "code" else []
        errors = [o for o in outs if o.output_type == "error"]
        if vc.get("origin") == "grader":
            continue
        if errors and vc.get("origin") == "learner" and not meta.get("grade"):
            e = errors[0]
            cellno = vc.get("cell")
            if e.ename == "MemoryError":
                notes.append(f"Cell {cellno} ran out of memory (MemoryError; the grader allows "
                             f"{a.memory / 2**30:.0f} GiB): use smaller batches or quick mode.")
            elif e.ename == "SystemExit":
                notes.append(f"Cell {cellno} raised SystemExit (sys.exit() or exit()): remove it; the cells after "
                             "it still ran.")
        if any(e.ename == "CellTimeoutError" for e in errors):
            timeouts.append(vc.get("cell") or meta.get("grade_id") or "?")
        if cell.cell_type == "code" and meta.get("grade") and not meta.get("solution"):
            name = meta["grade_id"]
            score, max_score = scores.get(name, (0.0, float(meta.get("points", 0))))
            score = float(score or 0.0)
            msg = ""
            if errors:
                e = errors[0]
                if any(x.ename == "CellTimeoutError" for x in errors):
                    msg = f"CellTimeoutError: the test ran past {a.timeout} s"
                elif e.ename == "NotRun":
                    msg = e.evalue
                    not_run.append(name)
                else:
                    msg = f"{e.ename}: {_first_line(e.evalue)}" if _first_line(e.evalue) else e.ename
            elif score < float(max_score):
                stderr = [o for o in outs if o.output_type == "stream" and o.name == "stderr"]
                msg = f"wrote to stderr: {_first_line(stderr[0].text)}" if stderr else "no points"
            exercises.append(dict(grade_id=name, points=score, max=float(max_score),
                                  passed=score >= float(max_score) > 0 or (float(max_score) == 0 and not errors),
                                  message=msg))
    if stop is not None:
        stop = dict(stop, not_run=not_run)

    records, record_problems = judge.read_records(record_path) if record_path else ({}, [])
    if a.reference and record_path:
        reference = json.loads(Path(a.reference).read_text())
        source_nb = nbformat.read(str(course / "source" / lesson / f"{lesson}.ipynb"), as_version=4)
        judged = judge.judged_tests(source_nb)
        lowered = {}
        for ex in exercises:
            mode = judged.get(ex["grade_id"], "values")
            if mode == "none":
                ex["message"] = (ex["message"] + "; " if ex["message"] else "") + "checked by its own tests only"
                continue
            verdict = judge.judge_test(records.get(ex["grade_id"], []), reference.get(ex["grade_id"], []), mode)
            if not verdict.passed and ex["points"] > 0:
                lowered[ex["grade_id"]] = verdict.note
                ex.update(points=0.0, passed=False, message=f"judged against the course's solution: {verdict.note}")
        if lowered:  # the HTML feedback shows the judged scores
            with Gradebook(f"sqlite:///{course / 'gradebook.db'}", "vae_course") as gb:
                for gid, why in lowered.items():
                    grade = gb.find_grade(gid, lesson, lesson, STUDENT)
                    grade.manual_score = 0.0
                    try:
                        comment = gb.find_comment(gid, lesson, lesson, STUDENT)
                        comment.manual_comment = f"Judged against the course's solution: {why}"
                    except Exception:  # not every graded cell has a comment row
                        pass
                gb.db.commit()
        notes.extend(record_problems[:3])
    lap("judge")
    if a.no_feedback:
        return done(status="ok", exercises=exercises, notes=notes, stopped=stop, timeouts=timeouts,
                    log=r["log"][-4000:], records=records)
    r = api.generate_feedback(lesson, STUDENT, force=True)
    lap("generate_feedback")
    if not r["success"]:
        notes.append("The HTML feedback could not be written (nbgrader generate_feedback failed).")
    return done(status="ok", exercises=exercises, notes=notes, stopped=stop, timeouts=timeouts,
                log=r["log"][-4000:], records=records)


