"""Regenerate the student notebooks in ``lessons/`` from the instructor notebooks in ``solutions/``.

``vae-course generate [NN ...] [--force]`` runs nbgrader's own generator (``generate_assignment``)
in a throw-away course directory, then copies only the generated notebook into
``lessons/NN_name/NN_name.ipynb``. It never calls ``generate_assignment --force`` on ``lessons/``
itself, because that deletes the whole lesson folder, a learner's work and extra files included.

Every notebook written is recorded in ``lessons/MANIFEST.json`` with its SHA-256. A lesson whose
current SHA-256 differs from the recorded one has been edited since it was generated (by a
learner working in place), and is not overwritten: the command stops and names the file. With
``--force`` the edited notebook is first copied to ``NN_name.backup-YYYYMMDD-HHMMSS.ipynb`` beside
it, so no learner's work is ever deleted. Other files in ``lessons/NN_name/`` are never touched.

Importing this module does nothing; :func:`main` is the command line, :func:`generate` the API.
"""
from __future__ import annotations

import argparse
import contextlib
import datetime as _dt
import hashlib
import json
import logging
import os
import shutil
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from .course import (MANIFEST_NAME, RELEASE_DIR, SOLUTIONS_DIR, Lesson, UsageError, find_course_root,
                     list_lessons, read_manifest, resolve_lesson, sha256_of)

log = logging.getLogger(__name__)


class LessonEditedError(RuntimeError):
    """A lesson notebook differs from the version last generated: a learner may have edited it."""


@dataclass(frozen=True)
class Outcome:
    """What :func:`generate` did for one lesson."""

    lesson: Lesson
    action: str  # "created" | "updated" | "unchanged" | "backed-up-and-updated"
    sha256: str  # of the lesson notebook now on disk
    backup: Path | None = None  # where an edited notebook was saved (--force only)


def _write_manifest(root: Path, manifest: dict) -> None:
    path = Path(root) / RELEASE_DIR / MANIFEST_NAME
    text = json.dumps(manifest, indent=2, sort_keys=True) + "\n"
    tmp = path.with_name(f".{MANIFEST_NAME}.{os.getpid()}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)  # atomic: a concurrent reader never sees half a record


# --- running nbgrader in a throw-away course -----------------------------------------------------


def course_config(root: Path, course_dir: Path | None = None):
    """The course's ``nbgrader_config.py`` as a traitlets ``Config``; with ``course_dir`` given,
    rebased onto that (temporary) course: its own root, gradebook and exchange."""
    from traitlets.config.loader import PyFileConfigLoader

    config = PyFileConfigLoader("nbgrader_config.py", path=str(root)).load_config()
    if course_dir is not None:
        course_dir = Path(course_dir)
        config.CourseDirectory.root = str(course_dir)
        config.CourseDirectory.source_directory = SOLUTIONS_DIR
        config.CourseDirectory.release_directory = RELEASE_DIR
        config.CourseDirectory.db_url = f"sqlite:///{course_dir / 'gradebook.db'}"
        config.Exchange.root = str(course_dir / "exchange")
    return config


def render_lesson(root: Path, lesson: Lesson, workdir: Path | None = None) -> str:
    """The student notebook nbgrader generates from ``lesson.solution``, as the exact text written
    to ``lessons/`` (outputs and execution counts cleared). Runs in a temporary course."""
    import nbformat
    from nbgrader.converters import GenerateAssignment
    from nbgrader.coursedir import CourseDirectory

    with contextlib.ExitStack() as stack:
        if workdir is None:
            workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="vae-generate-")))
        course = Path(workdir) / "course"
        src = course / SOLUTIONS_DIR / lesson.name
        src.mkdir(parents=True, exist_ok=True)
        shutil.copy2(lesson.solution, src / lesson.filename)  # notebooks only: nothing else is released

        config = course_config(root, course)
        # nbgrader's own `generate_assignment --no-db`: the release is the same, but no gradebook is
        # created (that costs an `alembic` subprocess); grading records the cells in its own course.
        config.GenerateAssignment.no_database = True
        config.SaveCells.enabled = False
        coursedir = CourseDirectory(config=config)
        coursedir.assignment_id = lesson.name
        app = GenerateAssignment(coursedir=coursedir, config=config, log=log)
        app.force = True
        app.start()

        nb = nbformat.read(course / RELEASE_DIR / lesson.name / lesson.filename, as_version=4)
    return notebook_text(nb)


def notebook_text(nb) -> str:
    """Canonical text of a notebook with outputs and execution counts removed."""
    import nbformat

    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs = []
            cell.execution_count = None
        cell.metadata.pop("execution", None)
        cell.metadata.pop("collapsed", None)
        cell.metadata.pop("scrolled", None)
    nbformat.validate(nb)
    return nbformat.writes(nb) + "\n"


# --- the command ---------------------------------------------------------------------------------


def _backup_path(lesson_path: Path) -> Path:
    stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    candidate = lesson_path.with_name(f"{lesson_path.stem}.backup-{stamp}.ipynb")
    n = 1
    while candidate.exists():  # two --force runs within the same second keep both backups
        candidate = lesson_path.with_name(f"{lesson_path.stem}.backup-{stamp}-{n}.ipynb")
        n += 1
    return candidate


def _edited_message(root: Path, lesson: Lesson, recorded: str | None) -> str:
    rel = lesson.release.relative_to(root)
    why = (
        f"its SHA-256 differs from the one recorded in {RELEASE_DIR}/{MANIFEST_NAME} when it was generated"
        if recorded
        else f"it is not recorded in {RELEASE_DIR}/{MANIFEST_NAME} and differs from the generated version"
    )
    return (
        f"refusing to overwrite {rel}: {why}, so it looks edited (a learner's work?). "
        f"To keep that work, copy or rename it first; or run `vae-course generate {lesson.number} --force`, "
        f"which saves it as {lesson.release.stem}.backup-<date-time>.ipynb beside it and then regenerates."
    )


def generate(
    lessons: Sequence[str] | None = None,
    force: bool = False,
    root: Path | str | None = None,
) -> list[Outcome]:
    """Regenerate the student notebooks for ``lessons`` (numbers or folder names; all when None).

    Raises :class:`UsageError` for a lesson without a solution notebook and
    :class:`LessonEditedError` (before writing anything) for a lesson notebook edited since it was
    generated, unless ``force`` is given, in which case that notebook is backed up first.
    """
    root = find_course_root(root=root)
    selected = list_lessons(root) if not lessons else [resolve_lesson(key, root)[0] for key in lessons]
    if not selected:
        raise UsageError(
            f"no lessons to generate: {root / SOLUTIONS_DIR} holds no NN_name/NN_name.ipynb notebooks"
        )
    manifest = read_manifest(root)
    records = manifest.setdefault("lessons", {})

    # Render everything first, then check every target, then write: a refusal writes nothing.
    rendered = {lesson.name: render_lesson(root, lesson) for lesson in selected}
    edited: list[tuple[Lesson, str | None]] = []
    for lesson in selected:
        if lesson.release.exists():
            current = sha256_of(lesson.release)
            recorded = records.get(lesson.name, {}).get("sha256")
            new = hashlib.sha256(rendered[lesson.name].encode("utf-8")).hexdigest()
            if current not in (recorded, new):
                edited.append((lesson, recorded))
    if edited and not force:
        raise LessonEditedError("\n".join(_edited_message(root, ls, rec) for ls, rec in edited))

    edited_names = {ls.name for ls, _ in edited}
    outcomes = []
    for lesson in selected:
        text = rendered[lesson.name]
        data = text.encode("utf-8")
        new_sha = hashlib.sha256(data).hexdigest()
        backup = None
        if not lesson.release.exists():
            action = "created"
        elif lesson.release.read_bytes() == data:
            action = "unchanged"
        elif lesson.name in edited_names:
            backup = _backup_path(lesson.release)
            shutil.copy2(lesson.release, backup)
            action = "backed-up-and-updated"
        else:
            action = "updated"
        if action != "unchanged":
            lesson.release.parent.mkdir(parents=True, exist_ok=True)
            tmp = lesson.release.with_name(f".{lesson.release.name}.{os.getpid()}.tmp")
            tmp.write_bytes(data)
            os.replace(tmp, lesson.release)  # atomic: never a half-written lesson
        records[lesson.name] = {
            "notebook": lesson.release.relative_to(root).as_posix(),
            "sha256": new_sha,
            "source": lesson.solution.relative_to(root).as_posix(),
        }
        outcomes.append(Outcome(lesson, action, new_sha, backup))

    import nbgrader

    manifest["generated_by"] = "vae-course generate (vae_core.grading.generate)"
    manifest["nbgrader_version"] = nbgrader.__version__
    manifest["note"] = (
        "Generated file. sha256 = SHA-256 of each lesson notebook as generated; "
        "`vae-course generate` refuses to overwrite a lesson whose SHA-256 no longer matches."
    )
    _write_manifest(root, manifest)
    return outcomes


def main(argv: Sequence[str] | None = None) -> int:
    """``vae-course generate [NN ...] [--force] [--root DIR]``; returns the exit status."""
    parser = argparse.ArgumentParser(
        prog="vae-course generate",
        description="Regenerate lessons/NN_name/NN_name.ipynb from solutions/ with nbgrader. "
        "Refuses to overwrite a lesson notebook edited since it was generated.",
    )
    parser.add_argument("lessons", nargs="*", help="lesson numbers or folder names (default: all)")
    parser.add_argument(
        "--force",
        action="store_true",
        help="regenerate edited lessons too, after saving each as NN_name.backup-<date-time>.ipynb",
    )
    parser.add_argument("--root", default=None, help="course repository (default: found from cwd)")
    args = parser.parse_args(None if argv is None else list(argv))
    try:
        outcomes = generate(args.lessons or None, force=args.force, root=args.root)
    except (UsageError, LessonEditedError) as exc:
        print(f"vae-course generate: {exc}", file=sys.stderr)
        return 1
    for out in outcomes:
        line = f"{out.action:>22}  {out.lesson.release.relative_to(out.lesson.release.parents[2])}"
        if out.backup is not None:
            line += f"  (your edited copy was saved as {out.backup.name})"
        print(line)
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
