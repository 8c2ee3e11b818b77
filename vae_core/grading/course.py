"""Where the course lives on disk: the course root and each lesson's three copies.

A course root is the folder holding ``nbgrader_config.py`` and ``solutions/``. Every lesson
``NN_name`` (``03_reparameterization``) has up to three notebooks, always ``NN_name/NN_name.ipynb``
under one of these folders::

    solutions/   the instructor source: answers and hidden tests (nbgrader's source)
    lessons/     the pristine release nbgrader generates from it (tracked in git, never edited)
    workspace/   the learner's own copy, made from lessons/ (git-ignored, never overwritten)

The CLI, lesson generation, grading and ``make lab`` all ask this module, so the layout is
written down once. A learner may name a lesson ``3``, ``03``, ``03_reparameterization`` or give
the path of a notebook.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path

SOLUTIONS_DIR = "solutions"  # nbgrader's source directory
RELEASE_DIR = "lessons"  # nbgrader's release directory: what `vae-course generate` writes
WORKSPACE_DIR = "workspace"  # the learner's copies (git-ignored)
STATE_DIR = ".vae_course"  # course-local state: grade record, feedback, never in git
MANIFEST_NAME = "MANIFEST.json"  # lessons/MANIFEST.json: the SHA-256 of every generated lesson
LESSON_RE = re.compile(r"^(\d{2})_[A-Za-z0-9_]+$")


class UsageError(ValueError):
    """A command line the course cannot act on (unknown lesson, no course root, missing file, ...)."""


@dataclass(frozen=True)
class Lesson:
    """One lesson of the course: ``name`` is its folder (``03_reparameterization``), ``root`` the course."""

    name: str
    root: Path

    @property
    def number(self) -> str:
        return self.name[:2]

    @property
    def filename(self) -> str:
        return f"{self.name}.ipynb"

    @property
    def solution_dir(self) -> Path:
        return self.root / SOLUTIONS_DIR / self.name

    @property
    def solution(self) -> Path:
        """The instructor notebook: ``solutions/NN_name/NN_name.ipynb``."""
        return self.solution_dir / self.filename

    @property
    def release(self) -> Path:
        """The pristine student notebook nbgrader generated: ``lessons/NN_name/NN_name.ipynb``."""
        return self.root / RELEASE_DIR / self.name / self.filename

    @property
    def workspace(self) -> Path:
        """The learner's own copy, what ``grade`` reads by default: ``workspace/NN_name/NN_name.ipynb``."""
        return self.root / WORKSPACE_DIR / self.name / self.filename


def is_course_root(path: Path) -> bool:
    return (path / SOLUTIONS_DIR).is_dir() and (path / "nbgrader_config.py").is_file()


def find_course_root(start: Path | None = None, root: Path | str | None = None) -> Path:
    """The course root: ``root`` when given, else the first folder upwards from ``start`` (the
    current folder) holding ``nbgrader_config.py`` and ``solutions/``."""
    if root is not None:
        path = Path(root).expanduser().resolve()
        if not (path / SOLUTIONS_DIR).is_dir():
            raise UsageError(
                f"--root must be the course folder holding {SOLUTIONS_DIR}/, got {path} (no {SOLUTIONS_DIR}/ there); "
                "point --root at the folder with README.md, solutions/ and lessons/"
            )
        return path
    here = Path(start or os.getcwd()).resolve()
    for candidate in (here, *here.parents):
        if is_course_root(candidate):
            return candidate
    raise UsageError(
        f"no course found above {here}: expected a folder holding nbgrader_config.py and {SOLUTIONS_DIR}/; "
        "run vae-course from inside the course folder or pass --root PATH"
    )


def list_lessons(root: Path) -> list[Lesson]:
    """Every lesson with a solution notebook, in course order."""
    source = Path(root) / SOLUTIONS_DIR
    found = []
    for folder in sorted(source.iterdir()) if source.is_dir() else []:
        if folder.is_dir() and LESSON_RE.match(folder.name) and (folder / f"{folder.name}.ipynb").is_file():
            found.append(Lesson(folder.name, Path(root)))
    return found


def resolve_lesson(spec: str, root: Path) -> tuple[Lesson, Path | None]:
    """Turn what the user typed into a lesson, and a notebook path when ``spec`` was one.

    ``spec``: ``"3"``, ``"03"``, ``"03_reparameterization"`` (a trailing ``/`` is fine) or a path
    to a notebook whose name or folder starts with the lesson number.
    """
    lessons = list_lessons(root)
    by_name = {lesson.name: lesson for lesson in lessons}
    by_number = {lesson.number: lesson for lesson in lessons}
    text = str(spec).strip()
    if text.rstrip("/\\") in by_name:
        return by_name[text.rstrip("/\\")], None
    if text.endswith(".ipynb") or os.sep in text or "/" in text:
        path = Path(text).expanduser()
        for candidate in (path.stem, path.parent.name):
            if candidate in by_name:
                return by_name[candidate], path
            m = re.match(r"^(\d{1,2})(?:_|$)", candidate)
            if m and m.group(1).zfill(2) in by_number:
                return by_number[m.group(1).zfill(2)], path
        raise UsageError(
            f"cannot tell which lesson {text} is: its name should start with a lesson number "
            f"(one of {', '.join(sorted(by_number)) or 'none found'}); "
            "use `vae-course grade NN --notebook PATH`"
        )
    if text.isdigit() and text.zfill(2) in by_number:
        return by_number[text.zfill(2)], None
    known = ", ".join(lesson.name for lesson in lessons) or f"none ({SOLUTIONS_DIR}/ is empty)"
    raise UsageError(f"unknown lesson {text!r}: expected a number or a name among {known}")


def sha256_of(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def read_manifest(root: Path) -> dict:
    """The generation record ``lessons/MANIFEST.json``: ``{"lessons": {name: {"sha256": ...}}}``
    (an empty record when there is none)."""
    path = Path(root) / RELEASE_DIR / MANIFEST_NAME
    if not path.is_file():
        return {"lessons": {}}
    return json.loads(path.read_text(encoding="utf-8"))
