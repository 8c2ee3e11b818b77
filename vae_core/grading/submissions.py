"""Grade every collected submission of a lesson with the course's judge, for instructors.

``nbgrader autograde`` runs submissions one after another and scores them by what happened inside
the student's kernel (an assert that did not raise). ``vae-course grade-submissions LESSON`` gives
the same gradebook the judge's scores instead (see :mod:`.autograde`: the kernel answers, a grader
outside it compares the answers with the solution's; the kernel sandboxed where bubblewrap works),
several submissions at a time:

1. find ``submitted/<student>/<lesson>/<lesson>.ipynb`` in the instructor's nbgrader course (the
   layout ``nbgrader collect`` writes); students whose ``autograded/<student>/<lesson>/`` exists are
   skipped unless ``force`` (as ``nbgrader autograde`` does);
2. run the solution once for the judge's reference (cached), then :func:`.autograde.grade_lesson` on
   each submission, ``jobs`` at a time: each grading is already its own worker process and kernel,
   so the pool's threads only wait for them. A submission is only read, never written; one that
   is broken, loops or cheats gets its report and its score, and the others go on;
3. in this process, one submission at a time (SQLite has one writer): the student, the submission
   (with the time from ``timestamp.txt``, so late penalties work) and one ``auto_score`` per graded
   cell go into nbgrader's gradebook, exactly the rows ``nbgrader autograde`` writes; a manual score
   an instructor gave earlier is kept (nbgrader shows it in place of the auto score) and the cell is
   flagged for review, as nbgrader does; the executed notebook (the course's grader cells taken out)
   becomes ``autograded/<student>/<lesson>/<lesson>.ipynb``, so ``nbgrader generate_feedback`` and
   ``nbgrader export`` work unchanged and show the judge's scores.
"""
from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from .autograde import GradeOptions, GradeResult, grade_lesson, reference_records
from .course import Lesson, UsageError


@dataclass
class Submission:
    student: str
    path: Path  # submitted/<student>/<lesson>/<lesson>.ipynb (it may be missing: the student submitted other files)


@dataclass
class SubmissionResult:
    student: str
    result: GradeResult | None  # None when the grader itself broke on this submission
    error: str | None = None
    seconds: float = 0.0


@contextlib.contextmanager
def _cwd(path: Path):
    old = os.getcwd()
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(old)


def course_directory(root: Path):
    """nbgrader's ``CourseDirectory`` of the course at ``root``, configured as ``nbgrader`` run there
    would be: Jupyter's config path (``/etc/jupyter/nbgrader_config.py`` and the like), then the
    course's own ``nbgrader_config.py``."""
    from nbgrader.apps import NbGrader
    from nbgrader.coursedir import CourseDirectory

    with _cwd(root):
        app = NbGrader()
        app.load_config_file()
        config = app.config
    coursedir = CourseDirectory(config=config)
    if Path(coursedir.root).resolve() != Path(root).resolve():
        coursedir.root = str(root)  # grade the course we were pointed at, whatever the config says
    return coursedir


def find_submissions(coursedir, lesson: Lesson, students: list[str] | None = None) -> list[Submission]:
    """The collected submissions of ``lesson``, one per student folder under ``submitted/``."""
    submitted = Path(coursedir.root) / coursedir.submitted_directory
    found = []
    for folder in sorted(submitted.iterdir()) if submitted.is_dir() else []:
        if (folder / lesson.name).is_dir() and (students is None or folder.name in students):
            found.append(Submission(folder.name, folder / lesson.name / lesson.filename))
    if students is not None:
        missing = sorted(set(students) - {s.student for s in found})
        if missing:
            raise UsageError(f"no collected submission of {lesson.name} for {', '.join(missing)}: expected "
                             f"{submitted}/STUDENT/{lesson.name}/; run `nbgrader collect {lesson.name}` first "
                             "(nothing was graded)")
    return found


def _check_gradebook(coursedir, lesson: Lesson) -> None:
    from nbgrader.api import Gradebook, MissingEntry

    with Gradebook(coursedir.db_url, coursedir.course_id) as gb:
        try:
            assignment = gb.find_assignment(lesson.name)
        except MissingEntry:
            raise UsageError(f"lesson {lesson.name} is not in the gradebook {coursedir.db_url}: expected the "
                             f"assignment that `nbgrader generate_assignment {lesson.name}` records; run it "
                             "(and release the lesson) first (nothing was graded)") from None
        if lesson.name not in [nb.name for nb in assignment.notebooks]:
            raise UsageError(f"the gradebook's {lesson.name} has no notebook {lesson.name}: expected the "
                             f"lesson's own notebook; run `nbgrader generate_assignment {lesson.name} --force`")


def _without_grader_cells(src: Path, dest: Path) -> None:
    """Write the executed notebook ``src`` to ``dest`` without the cells the course's grader added
    (judge, guard, preamble): what remains is the student's notebook with outputs, as nbgrader's
    autograde leaves it."""
    import nbformat

    nb = nbformat.read(str(src), as_version=4)
    nb.cells = [c for c in nb.cells if (c.metadata.get("vae_course") or {}).get("origin") != "grader"]
    for cell in nb.cells:
        cell.metadata.pop("vae_course", None)
    dest.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, str(dest))


def _record(coursedir, lesson: Lesson, sub: Submission, res: GradeResult, executed: Path | None) -> None:
    """The judge's scores into nbgrader's gradebook, the executed notebook into ``autograded/``."""
    from nbgrader.api import Gradebook

    points = {e.grade_id: e.points for e in res.exercises}
    src_dir = sub.path.parent
    timestamp = coursedir.get_existing_timestamp(str(src_dir))
    with Gradebook(coursedir.db_url, coursedir.course_id) as gb:
        gb.update_or_create_student(sub.student)
        if timestamp:
            gb.update_or_create_submission(lesson.name, sub.student, timestamp=timestamp)
        else:
            gb.update_or_create_submission(lesson.name, sub.student)
        notebook = gb.find_submission_notebook(lesson.name, lesson.name, sub.student)
        for grade in notebook.grades:  # cells graded by hand (written answers) keep no auto score, as in nbgrader
            if grade.name in points:
                grade.auto_score = float(points[grade.name])
                grade.needs_manual_grade = grade.manual_score is not None
        gb.db.commit()
    if executed is None or not executed.is_file():
        return  # nothing ran (unreadable or missing notebook): scores recorded, no feedback to give
    dest = Path(coursedir.format_path(coursedir.autograded_directory, sub.student, lesson.name))
    if dest.exists():
        shutil.rmtree(dest)
    dest.mkdir(parents=True)
    for f in src_dir.iterdir():  # timestamp.txt and any other file the student handed in
        if f.is_file() and f.name != lesson.filename:
            shutil.copy2(f, dest / f.name)
    _without_grader_cells(executed, dest / lesson.filename)


def grade_submissions(lesson: Lesson, coursedir, options: GradeOptions, jobs: int,
                      students: list[str] | None = None, force: bool = False,
                      report: Callable[[SubmissionResult], None] | None = None,
                      ) -> tuple[list[SubmissionResult], list[str]]:
    """Judge every collected submission of ``lesson`` (``jobs`` at a time) and record the scores in the
    gradebook. Returns the results (in the order they finished) and the students skipped because
    ``autograded/`` already holds their grading (pass ``force`` to regrade them)."""
    _check_gradebook(coursedir, lesson)
    subs = find_submissions(coursedir, lesson, students)
    skipped = []
    if not force:
        todo = []
        for sub in subs:
            done = Path(coursedir.format_path(coursedir.autograded_directory, sub.student, lesson.name))
            (skipped if done.exists() else todo).append(sub)
        subs = todo
    if not subs:
        return [], [s.student for s in skipped]
    root = Path(coursedir.root)
    hide = tuple(root / d for d in (coursedir.submitted_directory, coursedir.autograded_directory,
                                    coursedir.feedback_directory))
    if options.judge:
        reference_records(lesson, options)  # once, before the pool: cached for every grading below
    results: list[SubmissionResult] = []
    lock = threading.Lock()
    with tempfile.TemporaryDirectory(prefix=f"vae-submissions-{lesson.number}-") as tmp:
        def one(sub: Submission) -> tuple[Submission, SubmissionResult, Path]:
            out = Path(tmp) / sub.student
            opts = GradeOptions(**{**options.__dict__, "executed_to": out, "hide": (*options.hide, *hide)})
            t0 = time.perf_counter()
            try:
                res = grade_lesson(lesson, sub.path, opts)
            except Exception as err:  # the grader broke on this one: say so, grade the others
                return sub, SubmissionResult(sub.student, None, f"{type(err).__name__}: {err}",
                                             time.perf_counter() - t0), out
            return sub, SubmissionResult(sub.student, res, None, time.perf_counter() - t0), out

        with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
            for fut in as_completed([pool.submit(one, s) for s in subs]):
                sub, sres, out = fut.result()
                if sres.result is not None:
                    with lock:
                        _record(coursedir, lesson, sub, sres.result, out / lesson.filename)
                results.append(sres)
                if report:
                    report(sres)
    return results, [s.student for s in skipped]
