"""The learner's workspace: their own copy of every lesson, made from the pristine release.

``lessons/`` is what nbgrader generates and git tracks; a learner who worked there would collide
with the next ``git pull``. So learners work in ``workspace/NN_name/NN_name.ipynb`` (git-ignored),
and :func:`sync_workspace` (run by ``make lab`` and ``vae-course workspace``) keeps it in step:

- a lesson missing from the workspace is copied from ``lessons/``;
- **nothing in the workspace is ever overwritten or deleted** (files are created with
  ``O_EXCL``, so not even a race can replace one);
- a lesson the course changed since the learner's copy was made (a ``git pull`` brought a
  regenerated lesson) is offered beside it as ``NN_name.update-<sha8>.ipynb``, and the learner is told;
- a learner who worked in ``lessons/`` before the workspace existed keeps that work: the edited
  notebook (its SHA-256 differs from ``lessons/MANIFEST.json``) is what goes into the workspace.

What each copy was made from is recorded in ``workspace/.course-versions.json`` (the release's
SHA-256), which is how a changed lesson is recognised.

Importing this module does nothing.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

from .course import RELEASE_DIR, WORKSPACE_DIR, Lesson, list_lessons, read_manifest, sha256_of

VERSIONS_NAME = ".course-versions.json"


@dataclass
class SyncReport:
    """What :func:`sync_workspace` did; :meth:`lines` says it to the learner."""

    root: Path
    created: list[Lesson] = field(default_factory=list)  # copied from lessons/
    migrated: list[Lesson] = field(default_factory=list)  # the learner's edited lessons/ copy moved in
    updates: list[tuple[Lesson, Path]] = field(default_factory=list)  # a newer release, offered beside
    pending: list[tuple[Lesson, Path]] = field(default_factory=list)  # offered before, still beside
    unreleased: list[Lesson] = field(default_factory=list)  # a solution with no lessons/ notebook yet

    def _rel(self, path: Path) -> str:
        return Path(path).relative_to(self.root).as_posix()

    def lines(self) -> list[str]:
        out = []
        if self.created:
            numbers = ", ".join(lesson.number for lesson in self.created)
            out.append(f"Your workspace: copied lesson(s) {numbers} into {WORKSPACE_DIR}/ (your own copies; "
                       f"{RELEASE_DIR}/ stays the course's pristine version).")
        for lesson in self.migrated:
            out.append(
                f"Lesson {lesson.number}: you had worked in {self._rel(lesson.release)}; that work is now your "
                f"copy at {self._rel(lesson.workspace)}, so continue there (grading reads it). The file in "
                f"{RELEASE_DIR}/ is left as it was; `git checkout -- {self._rel(lesson.release)}` restores "
                "the course's version once you no longer need it.")
        for lesson, new in self.updates:
            out.append(
                f"Lesson {lesson.number} was updated in the course. Your copy {self._rel(lesson.workspace)} is "
                f"untouched; the new version is beside it: {self._rel(new)}. To switch, move your copy aside "
                f"and rename the new one to {lesson.filename}; or grade it as it is with "
                f"`vae-course grade {lesson.number} --notebook {self._rel(new)}`.")
        for lesson, new in self.pending:
            out.append(f"Lesson {lesson.number}: a newer version still waits beside your copy: {self._rel(new)}.")
        return out


def _read_versions(path: Path) -> dict:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):  # missing or damaged: start a fresh record (it only remembers, never decides loss)
        return {}


def _write_versions(path: Path, versions: dict) -> None:
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(versions, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    os.replace(tmp, path)  # atomic; this file is ours, not the learner's


def _create(path: Path, data: bytes) -> bool:
    """Write ``data`` to a new file ``path``; never replaces an existing one (returns False then)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    except FileExistsError:
        return False
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    return True


def update_path(lesson: Lesson, release_sha: str) -> Path:
    """Where a newer release of ``lesson`` is offered beside the learner's copy."""
    return lesson.workspace.with_name(f"{lesson.name}.update-{release_sha[:8]}.ipynb")


def sync_workspace(root: Path) -> SyncReport:
    """Bring ``root/workspace/`` in step with ``root/lessons/`` without overwriting anything there."""
    root = Path(root)
    report = SyncReport(root)
    generated = {name: rec.get("sha256") for name, rec in read_manifest(root).get("lessons", {}).items()}
    versions_path = root / WORKSPACE_DIR / VERSIONS_NAME
    versions = _read_versions(versions_path)
    for lesson in list_lessons(root):
        if not lesson.release.is_file():
            report.unreleased.append(lesson)
            continue
        data = lesson.release.read_bytes()
        release_sha = sha256_of(lesson.release)
        pristine_sha = generated.get(lesson.name, release_sha)  # what nbgrader wrote, per the manifest
        entry = versions.setdefault(lesson.name, {})
        if not lesson.workspace.exists():
            if _create(lesson.workspace, data):
                (report.migrated if release_sha != pristine_sha else report.created).append(lesson)
            entry["release_sha256"] = pristine_sha
            continue
        if "release_sha256" not in entry:  # a copy made by hand or before this record: count it as current
            entry["release_sha256"] = pristine_sha
        if release_sha != pristine_sha or entry["release_sha256"] == pristine_sha:
            continue  # lessons/ holds old in-place edits (never offered as an update), or nothing changed
        new = update_path(lesson, pristine_sha)
        if entry.get("offered_sha256") == pristine_sha:
            if new.exists():
                report.pending.append((lesson, new))
            continue
        _create(new, data)  # if the learner already made a file by that name, it is theirs: keep it
        entry["offered_sha256"] = pristine_sha
        report.updates.append((lesson, new))
    if versions:
        _write_versions(versions_path, versions)
    return report
