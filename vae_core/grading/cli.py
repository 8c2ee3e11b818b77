"""``vae-course``: open the course, grade your lessons, see your progress, (instructors) generate lessons.

    vae-course lab [JUPYTER ARGS ...]        # what `make lab` runs: update workspace/, start JupyterLab
    vae-course workspace                     # copy new lessons into workspace/ (your own copies)
    vae-course grade 03                      # workspace/03_*/03_*.ipynb against solutions/03_*/
    vae-course grade 3 --notebook my.ipynb   # grade another copy
    vae-course grade all                     # every lesson you have a notebook for, each isolated
    vae-course progress                      # latest and best score per lesson
    vae-course check-tamper PATH [PATH ...]  # the static tamper scan alone (instructors)
    vae-course generate [NN ...] [--force]   # build lessons/ from solutions/ (instructors)
    vae-course grade-submissions 03          # judge every collected submission into nbgrader's gradebook (instructors)
    vae-course drill [--lessons 04 05] [--topics elbo] [-n 10]   # interview flashcards, spaced repetition
    vae-course drill --summary               # your boxes and weak topics, no questions asked
    vae-course formula-sheet [--out formula_sheet.html|.pdf] [--force]   # the one-page formula sheet, offline

Exit status: 0 whenever grading ran, even when points were lost or a notebook crashed;
2 for a usage error (unknown lesson, no course folder, no such notebook, bad option); 1 if the grader
itself broke.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .course import WORKSPACE_DIR, UsageError, find_course_root, list_lessons, resolve_lesson

EXIT_OK, EXIT_GRADER, EXIT_USAGE = 0, 1, 2


def _print_result(res, out) -> None:
    w = max([len("exercise")] + [len(e.grade_id) for e in res.exercises])
    print(f"Lesson {res.lesson} - graded {res.timestamp} - {res.status}", file=out)
    print(f"  notebook: {res.notebook}", file=out)
    if res.exercises:
        print(f"  {'exercise':<{w}}  points    max  result  note", file=out)
        for e in res.exercises:
            verdict = "pass" if e.passed else "FAIL"
            print(f"  {e.grade_id:<{w}}  {e.points:6.1f} {e.max:6.1f}  {verdict:<6}  {e.message}".rstrip(), file=out)
    print(f"  {'total':<{w}}  {res.score:6.1f} {res.max:6.1f}", file=out)
    if res.message:
        print("", file=out)
        print(res.message, file=out)
    for note in res.notes:
        print(f"  note: {note}", file=out)
    if res.feedback:
        print(f"  feedback: {res.feedback}", file=out)
    print("", file=out)


def cmd_grade(args, out=None) -> int:
    out = out or sys.stdout
    from .autograde import GradeOptions, grade_lesson
    from .record import append_record

    root = find_course_root(root=args.root)
    if args.timeout is not None and args.timeout <= 0:
        raise UsageError(f"--timeout must be a positive number of seconds, got {args.timeout}")
    if args.memory_gb is not None and args.memory_gb < 0:
        raise UsageError(f"--memory-gb must be >= 0 (0 turns the limit off), got {args.memory_gb}")
    options = GradeOptions(timeout=args.timeout or 300, wall=args.wall,
                           memory_gb=(args.memory_gb if args.memory_gb is not None else 4.0) or None)
    if args.lesson == "all":
        if args.notebook:
            raise UsageError("--notebook names one notebook; use it with one lesson, not with `grade all`")
        targets, skipped = [], []
        for lesson in list_lessons(root):
            (targets if lesson.workspace.exists() else skipped).append(lesson)
        if not targets:
            print(f"No lesson notebooks found under {root / WORKSPACE_DIR}; `make lab` or `vae-course workspace` "
                  "gives you your copies.", file=out)
        jobs = [(lesson, None) for lesson in targets]
    else:
        lesson, path = resolve_lesson(args.lesson, root)
        if args.notebook and path:
            raise UsageError("give the notebook either as LESSON or with --notebook, not both")
        path = Path(args.notebook).expanduser() if args.notebook else path
        if path is not None and not path.is_file():
            raise UsageError(f"no notebook at {path}: expected the path of your {lesson.filename}; "
                             "check the path (nothing was graded or recorded)")
        if path is None and not lesson.workspace.is_file():
            raise UsageError(f"you have no copy of lesson {lesson.number} yet (expected {lesson.workspace}); "
                             "`make lab` or `vae-course workspace` makes it, or grade another copy with "
                             f"`vae-course grade {lesson.number} --notebook PATH` (nothing was graded or recorded)")
        jobs, skipped = [(lesson, path)], []
    broke = False
    total, total_max = 0.0, 0.0
    for lesson, path in jobs:
        try:
            res = grade_lesson(lesson, path, options)
        except Exception as err:  # the grader broke, not the notebook: say so, keep going
            print(f"Lesson {lesson.name}: the grader itself failed ({type(err).__name__}: {err}); "
                  "nothing was recorded. Please report this.", file=out)
            broke = True
            continue
        append_record(root, res.to_record())
        _print_result(res, out)
        total, total_max = total + res.score, total_max + res.max
    if args.lesson == "all":
        for lesson in skipped:
            print(f"Lesson {lesson.name}: no notebook at {lesson.workspace}; skipped.", file=out)
        if jobs:
            print(f"All lessons: {total:.1f} / {total_max:.1f}", file=out)
    return EXIT_GRADER if broke and args.lesson != "all" else EXIT_OK


def cmd_progress(args, out=None) -> int:
    out = out or sys.stdout
    from .record import progress_rows, record_path

    root = find_course_root(root=args.root)
    rows, warnings = progress_rows(root, [l.name for l in list_lessons(root)])
    for w in warnings:
        print(f"warning: {w}", file=sys.stderr)
    w = max([len("lesson")] + [len(r["lesson"]) for r in rows])
    print(f"{'lesson':<{w}}  {'latest':>13}  {'best':>13}  tries  status        when", file=out)

    def score(v, m):
        return f"{v:5.1f} / {m:5.1f}" if v is not None else "-"

    for r in rows:
        print(f"{r['lesson']:<{w}}  {score(r['latest'], r['max']):>13}  {score(r['best'], r['max']):>13}  "
              f"{r['attempts']:5d}  {r['status']:<12}  {r['when'] or ''}".rstrip(), file=out)
    print(f"(record: {record_path(root)})", file=out)
    return EXIT_OK


def _read_nb(path):
    import warnings

    import nbformat

    with warnings.catch_warnings():  # MissingIDFieldWarning and the like: not what the user asked about
        warnings.simplefilter("ignore")
        return nbformat.read(str(path), as_version=4)


def cmd_check_tamper(args, out=None) -> int:
    out = out or sys.stdout

    from .tamper import scan_notebook

    root = None
    try:
        root = find_course_root(root=args.root)
    except UsageError:
        pass
    flagged = 0
    for p in args.notebooks:
        path = Path(p)
        solution = None
        if args.lesson and root:
            lesson, _ = resolve_lesson(args.lesson, root)
            solution = _read_nb(lesson.solution)
        elif root:
            try:
                lesson, _ = resolve_lesson(str(path), root)
                solution = _read_nb(lesson.solution)
            except UsageError:
                solution = None
        try:
            nb = _read_nb(path)
        except Exception as err:
            print(f"{path}: unreadable ({type(err).__name__}: {err})", file=out)
            flagged += 1
            continue
        findings = scan_notebook(nb, solution)
        if findings:
            flagged += 1
            for f in findings:
                print(f"{path}: {f.message()}", file=out)
        else:
            print(f"{path}: ok", file=out)
    return 1 if flagged else EXIT_OK


def cmd_workspace(args, out=None) -> int:
    out = out or sys.stdout
    from .workspace import sync_workspace

    root = find_course_root(root=args.root)
    report = sync_workspace(root)
    for line in report.lines() or [f"Your workspace is up to date: {root / WORKSPACE_DIR}"]:
        print(line, file=out)
    for lesson in report.unreleased:
        print(f"note: lesson {lesson.name} has no released notebook in lessons/ yet.", file=out)
    return EXIT_OK


def cmd_lab(argv: list[str]) -> int:
    from .lab import run_lab

    if argv[:1] in (["-h"], ["--help"]):
        print("usage: vae-course lab [JUPYTER LAB ARGS ...]\n\nUpdate workspace/ with any new lessons, then start "
              "JupyterLab on the course (what `make lab` runs).\nExtra arguments go to `jupyter lab`, e.g. "
              "`vae-course lab --no-browser --port 8899`.")
        return EXIT_OK
    run_lab(find_course_root(), argv)  # replaces this process; returns only on error
    return EXIT_GRADER


def cmd_generate(argv: list[str]) -> int:
    try:
        from . import generate
    except ImportError as err:
        print(f"vae-course generate is not available in this checkout ({err}).", file=sys.stderr)
        return EXIT_GRADER
    return generate.main(argv)


def cmd_drill(args, out=None) -> int:
    import datetime as dt

    from ..interview import TOPICS, load_bank
    from ..interview.bank import KINDS, BankError
    from ..interview.drill import DrillState, DrillStateError, run_terminal, state_path, summary_lines

    out = out or sys.stdout
    if args.list_topics:
        for name, text in TOPICS.items():
            print(f"{name:<26} {text}", file=out)
        return EXIT_OK
    if args.count < 1:
        raise UsageError(f"-n must be at least 1 card, got {args.count}")
    try:
        today = dt.date.fromisoformat(args.date) if args.date else dt.date.today()
    except ValueError:
        raise UsageError(f"--date expects YYYY-MM-DD, got {args.date!r}") from None
    try:
        bank = load_bank()
        questions = bank.select(lessons=args.lessons, topics=args.topics, kinds=args.kinds)
    except BankError as err:
        raise UsageError(f"{err} (see `vae-course drill --list-topics`; kinds: {', '.join(KINDS)})") from None
    if not questions:
        raise UsageError("no question matches that selection; widen --lessons/--topics/--kinds")
    root = find_course_root(root=args.root)
    path = state_path(root)
    try:
        state = DrillState.load(path)
    except DrillStateError as err:
        raise UsageError(str(err)) from None
    if state.note:
        print(state.note, file=out)
        state.save(path)
    if not args.summary:
        run_terminal(questions, state, read=input, out=out, today=today, size=args.count, seed=args.seed)
        state.save(path)
        print(f"Schedule saved to {path}.", file=out)
    print("", file=out)
    for line in summary_lines(state, questions, today):
        print(line, file=out)
    return EXIT_OK


def cmd_grade_submissions(args, out=None) -> int:
    """The judge on every collected submission of a lesson, in parallel, into nbgrader's gradebook."""
    import os
    import shutil
    import time

    out = out or sys.stdout
    from .autograde import GradeOptions
    from .submissions import course_directory, grade_submissions

    root = find_course_root(root=args.root)
    if args.jobs is not None and args.jobs < 1:
        raise UsageError(f"--jobs must be a positive number of parallel gradings, got {args.jobs}; "
                         f"leave it out to use every core ({os.cpu_count()})")
    if args.timeout is not None and args.timeout <= 0:
        raise UsageError(f"--timeout must be a positive number of seconds, got {args.timeout}")
    if args.memory_gb is not None and args.memory_gb < 0:
        raise UsageError(f"--memory-gb must be >= 0 (0 turns the limit off), got {args.memory_gb}")
    if not shutil.which("alembic"):
        raise UsageError("nbgrader's gradebook needs the `alembic` executable on PATH, got none; "
                         "do `export PATH=\"$PWD/.venv/bin:$PATH\"` (or activate the course environment)")
    lesson, _ = resolve_lesson(args.lesson, root)
    jobs = args.jobs or os.cpu_count() or 1
    options = GradeOptions(timeout=args.timeout or 300, wall=args.wall,
                           memory_gb=(args.memory_gb if args.memory_gb is not None else 4.0) or None)
    coursedir = course_directory(root)
    w = 12

    def show(sr):
        res = sr.result
        if res is None:
            print(f"  {sr.student:<{w}}  grader failed ({sr.error}); nothing recorded for this student", file=out)
            return
        lost = [f"{e.grade_id}: {e.message}" for e in res.exercises if not e.passed and e.message]
        note = res.message or ("; ".join(lost[:2]) if lost else "")
        print(f"  {sr.student:<{w}}  {res.score:6.1f} / {res.max:5.1f}  {res.status:<8} {sr.seconds:6.1f} s  "
              f"{note[:160]}".rstrip(), file=out)

    print(f"Judging the collected submissions of {lesson.name} ({jobs} at a time) into {coursedir.db_url}",
          file=out)
    t0 = time.perf_counter()
    results, skipped = grade_submissions(lesson, coursedir, options, jobs, students=args.student or None,
                                         force=args.force, report=show)
    wall = time.perf_counter() - t0
    for student in skipped:
        print(f"  {student:<{w}}  skipped: already graded (autograded/{student}/{lesson.name}/ exists); "
              "--force grades it again", file=out)
    if not results and not skipped:
        print(f"No collected submissions of {lesson.name} under {root / coursedir.submitted_directory}; "
              f"`nbgrader collect {lesson.name}` collects them.", file=out)
    if results:
        print(f"{len(results)} submission(s) in {wall:.1f} s ({60 * len(results) / wall:.1f} per minute); "
              f"now `nbgrader generate_feedback {lesson.name}` and `nbgrader export` as usual.", file=out)
    return EXIT_GRADER if any(r.result is None for r in results) else EXIT_OK


def cmd_formula_sheet(args, out=None) -> int:
    from ..interview.sheet import ChromiumNotFound, export_formula_sheet

    out = out or sys.stdout
    try:
        path = export_formula_sheet(Path(args.out), force=args.force)
    except (ValueError, FileExistsError, ChromiumNotFound) as err:
        raise UsageError(str(err)) from None
    extra = f" (with its MathJax in {path.stem}_files/; move them together)" if path.suffix.lower() == ".html" else ""
    print(f"Formula sheet written to {path}{extra}.", file=out)
    return EXIT_OK


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="vae-course", description="Grade and track the VAE course lessons.")
    sub = p.add_subparsers(dest="command", required=True)
    g = sub.add_parser("grade", help="grade a lesson notebook (or `all`) against the course's tests")
    g.add_argument("lesson", help="lesson number (03 or 3), name (03_reparameterization), a notebook path, or `all`")
    g.add_argument("--notebook", help="the notebook to grade (default: your copy, workspace/NN_name/NN_name.ipynb)")
    g.add_argument("--timeout", type=int, default=None, help="seconds per cell before it is interrupted (default 300)")
    g.add_argument("--wall", type=float, default=None,
                   help="seconds for a whole lesson before grading is stopped (default: timeout x cells + 120)")
    g.add_argument("--memory-gb", type=float, default=None, help="memory limit of the notebook's kernel (default 4; 0: none)")
    g.add_argument("--root", help="the course folder (default: found upwards from the current folder)")
    pr = sub.add_parser("progress", help="latest and best score of every lesson")
    pr.add_argument("--root", help="the course folder")
    ct = sub.add_parser("check-tamper", help="scan notebooks for code that tampers with grading (exit 1 if any)")
    ct.add_argument("notebooks", nargs="+")
    ct.add_argument("--lesson", help="the lesson these notebooks belong to (default: from their names)")
    ct.add_argument("--root", help="the course folder")
    ws = sub.add_parser("workspace", help="copy new lessons into workspace/, your own copies (make lab does it too)")
    ws.add_argument("--root", help="the course folder")
    sub.add_parser("lab", help="update workspace/ and start JupyterLab on the course (what `make lab` runs)",
                   add_help=False)
    sub.add_parser("generate", help="generate lessons/ from solutions/ (instructors)", add_help=False)
    gs = sub.add_parser("grade-submissions", help="judge every collected submission of a lesson into nbgrader's "
                        "gradebook, in parallel (instructors)")
    gs.add_argument("lesson", help="lesson number (03 or 3) or name (03_reparameterization)")
    gs.add_argument("--jobs", type=int, default=None, help="submissions graded at once (default: every core)")
    gs.add_argument("--student", action="append", help="grade only this student (repeatable)")
    gs.add_argument("--force", action="store_true", help="grade again students already in autograded/")
    gs.add_argument("--timeout", type=int, default=None, help="seconds per cell before it is interrupted (default 300)")
    gs.add_argument("--wall", type=float, default=None, help="seconds for one submission (default: timeout x cells + 120)")
    gs.add_argument("--memory-gb", type=float, default=None, help="memory limit of each kernel (default 4; 0: none)")
    gs.add_argument("--root", help="the instructor's course folder (default: found upwards from the current folder)")
    dr = sub.add_parser("drill", help="interview flashcards over the question bank, with spaced repetition")
    dr.add_argument("--lessons", nargs="+", metavar="NN", help="only these lessons (e.g. 04 05)")
    dr.add_argument("--topics", nargs="+", metavar="TOPIC", help="only these topics (see --list-topics)")
    dr.add_argument("--kinds", nargs="+", metavar="KIND", help="concept, derivation, numeric, code, design")
    dr.add_argument("-n", "--count", type=int, default=10, help="cards in this session (default 10)")
    dr.add_argument("--summary", action="store_true", help="show your boxes and weak topics, ask nothing")
    dr.add_argument("--list-topics", action="store_true", help="list the topics and exit")
    dr.add_argument("--date", help=argparse.SUPPRESS)  # tests: pretend today is YYYY-MM-DD
    dr.add_argument("--seed", type=int, default=None, help=argparse.SUPPRESS)
    dr.add_argument("--root", help="the course folder (the schedule lives in its .vae_course/)")
    fs = sub.add_parser("formula-sheet", help="write the one-page VAE formula sheet as HTML or PDF (math rendered offline)")
    fs.add_argument("--out", default="formula_sheet.html",
                    help="formula_sheet.html (default; MathJax goes in formula_sheet_files/) or a .pdf (needs Chromium)")
    fs.add_argument("--force", action="store_true", help="replace --out if it exists")
    return p


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "generate":
        return cmd_generate(argv[1:])
    try:
        if argv and argv[0] == "lab":  # everything after `lab` goes to jupyter lab, unparsed
            return cmd_lab(argv[1:])
        try:
            args = build_parser().parse_args(argv)
        except SystemExit as exc:  # argparse: --help is 0, bad usage is 2
            return int(exc.code or 0)
        commands = {"grade": cmd_grade, "progress": cmd_progress, "check-tamper": cmd_check_tamper,
                    "grade-submissions": cmd_grade_submissions,
                    "workspace": cmd_workspace, "drill": cmd_drill, "formula-sheet": cmd_formula_sheet}
        return commands[args.command](args)
    except UsageError as err:
        print(f"vae-course: {err}", file=sys.stderr)
        return EXIT_USAGE


if __name__ == "__main__":
    sys.exit(main())
