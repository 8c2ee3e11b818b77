"""The learner's grade record: one JSON line per grading, append-only.

File: ``<course root>/.vae_course/grades.jsonl``. Grading appends one line; nothing ever
rewrites the file, so an earlier grade survives a later crash, and a corrupt line (a torn
write, a hand edit) is skipped with a warning when read, never dropped from disk.

Each line: ``{"lesson", "timestamp" (UTC ISO 8601), "score", "max", "status",
"exercises": [{"grade_id", "points", "max", "passed", "message"}], "notebook",
"notebook_sha256", "feedback", "message", "version"}``.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

from .course import STATE_DIR

RECORD_VERSION = 1
STATUSES = ("graded", "tampering", "crashed", "timeout", "corrupt", "missing", "error")


def record_path(root: Path) -> Path:
    return Path(root) / STATE_DIR / "grades.jsonl"


def append_record(root: Path, entry: dict) -> Path:
    """Append ``entry`` as one line; start a new line first if the file ends mid-line."""
    if entry.get("status") not in STATUSES:
        raise ValueError(f"status must be one of {STATUSES}, got {entry.get('status')!r}")
    path = record_path(root)
    path.parent.mkdir(parents=True, exist_ok=True)
    line = json.dumps({"version": RECORD_VERSION, **entry}, sort_keys=True)
    with open(path, "a+b") as f:
        f.seek(0, os.SEEK_END)
        if f.tell() > 0:
            f.seek(-1, os.SEEK_END)
            if f.read(1) != b"\n":  # torn last line: keep it, but do not glue ours onto it
                f.write(b"\n")
        f.write(line.encode("utf-8") + b"\n")
        f.flush()
        os.fsync(f.fileno())
    return path


@dataclass
class Records:
    entries: list[dict] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def read_records(root: Path) -> Records:
    """All readable lines, in order; unreadable ones become warnings (line number + reason)."""
    out = Records()
    path = record_path(root)
    if not path.exists():
        return out
    with open(path, "rb") as f:
        for number, raw in enumerate(f, start=1):
            text = raw.decode("utf-8", errors="replace").strip()
            if not text:
                continue
            try:
                entry = json.loads(text)
                if not isinstance(entry, dict) or "lesson" not in entry or "score" not in entry:
                    raise ValueError("not a grade entry")
                float(entry["score"]), float(entry.get("max", 0))
            except (ValueError, TypeError) as err:
                out.warnings.append(
                    f"{path}:{number}: skipped an unreadable line ({err}); the line is kept in the file"
                )
                continue
            out.entries.append(entry)
    return out


def progress_rows(root: Path, lesson_names: list[str]) -> tuple[list[dict], list[str]]:
    """One row per lesson (course lessons first, then any others found in the record):
    ``{"lesson", "latest", "best", "max", "status", "when", "attempts"}``; latest/best are None
    for a lesson never graded. Best is the highest score of any attempt.
    """
    recs = read_records(root)
    by_lesson: dict[str, list[dict]] = {}
    for e in recs.entries:
        by_lesson.setdefault(str(e["lesson"]), []).append(e)
    names = list(lesson_names) + sorted(n for n in by_lesson if n not in lesson_names)
    rows = []
    for name in names:
        es = by_lesson.get(name, [])
        if not es:
            rows.append(dict(lesson=name, latest=None, best=None, max=None, status="never graded",
                             when=None, attempts=0))
            continue
        last = es[-1]
        best = max(es, key=lambda e: float(e["score"]))
        rows.append(dict(lesson=name, latest=float(last["score"]), best=float(best["score"]),
                         max=float(last.get("max") or best.get("max") or 0), status=last.get("status", "?"),
                         when=last.get("timestamp"), attempts=len(es)))
    return rows, recs.warnings
