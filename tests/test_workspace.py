"""The learner's workspace (vae_core/grading/workspace.py) on a fixture course.

The contract: missing lessons are copied from lessons/; nothing in workspace/ is ever overwritten
or deleted; a lesson the course changed is offered beside the learner's copy (and they are told);
work done in lessons/ before the workspace existed is what goes into the workspace; grading and
progress read the workspace copy. Each test compares bytes (SHA-256) before and after.
"""
from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from adversarial.builders import LESSON, make_course  # noqa: E402

from vae_core.grading import cli  # noqa: E402
from vae_core.grading.course import Lesson, list_lessons  # noqa: E402
from vae_core.grading.workspace import VERSIONS_NAME, _create, sync_workspace, update_path  # noqa: E402

NAMES = ("00_fixture", "01_other")


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def release(root: Path, name: str, text: str) -> Path:
    """Write lessons/<name>/<name>.ipynb as `vae-course generate` would, recording it in the manifest."""
    path = Lesson(name, root).release
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    manifest_path = root / "lessons" / "MANIFEST.json"
    manifest = json.loads(manifest_path.read_text()) if manifest_path.exists() else {"lessons": {}}
    manifest["lessons"][name] = {"sha256": sha(text.encode())}
    manifest_path.write_text(json.dumps(manifest))
    return path


def course(tmp_path: Path) -> Path:
    root = make_course(tmp_path / "course", lessons=NAMES)
    for name in NAMES:
        (root / "workspace" / name).rmdir()  # a fresh clone: no workspace yet
        release(root, name, f'{{"v": 1, "lesson": "{name}"}}\n')
    (root / "workspace").rmdir()
    return root


def test_first_sync_copies_every_released_lesson_byte_for_byte(tmp_path):
    root = course(tmp_path)
    report = sync_workspace(root)
    assert [ls.name for ls in report.created] == list(NAMES)
    for lesson in list_lessons(root):
        assert lesson.workspace.read_bytes() == lesson.release.read_bytes()
    assert "copied lesson(s) 00, 01 into workspace/" in " ".join(report.lines())
    again = sync_workspace(root)
    assert not (again.created or again.updates or again.migrated or again.lines())


def test_only_missing_lessons_are_copied_and_the_learners_work_is_never_overwritten(tmp_path):
    root = course(tmp_path)
    sync_workspace(root)
    mine = Lesson(LESSON, root).workspace
    mine.write_text('{"my": "work"}\n')
    other = Lesson("01_other", root).workspace
    other.unlink()  # the learner deleted lesson 01: it comes back, lesson 00 stays theirs
    report = sync_workspace(root)
    assert [ls.name for ls in report.created] == ["01_other"]
    assert mine.read_text() == '{"my": "work"}\n'
    assert other.read_bytes() == Lesson("01_other", root).release.read_bytes()


def test_a_changed_lesson_is_offered_beside_the_learners_copy_once(tmp_path):
    root = course(tmp_path)
    sync_workspace(root)
    lesson = Lesson(LESSON, root)
    lesson.workspace.write_text('{"my": "work"}\n')
    new_text = '{"v": 2}\n'
    release(root, LESSON, new_text)  # a `git pull` brought a regenerated lesson
    report = sync_workspace(root)
    ((updated, new),) = report.updates
    assert updated.name == LESSON and new == update_path(lesson, sha(new_text.encode()))
    assert new.read_text() == new_text and lesson.workspace.read_text() == '{"my": "work"}\n'
    told = " ".join(report.lines())
    assert "was updated in the course" in told and new.name in told and "untouched" in told
    # the next sync does not offer it again, and still never overwrites
    new.write_text('{"learner started on the update": true}\n')
    later = sync_workspace(root)
    assert not later.updates and [n for _, n in later.pending] == [new]
    assert new.read_text() == '{"learner started on the update": true}\n'


def test_an_untouched_copy_is_still_not_replaced_and_switching_silences_the_offer(tmp_path):
    root = course(tmp_path)
    sync_workspace(root)
    lesson = Lesson(LESSON, root)
    old = lesson.workspace.read_bytes()
    release(root, LESSON, '{"v": 2}\n')
    ((_, new),) = sync_workspace(root).updates
    assert lesson.workspace.read_bytes() == old
    new.replace(lesson.workspace)  # the learner switches to the new version as told
    report = sync_workspace(root)
    assert not (report.updates or report.pending)


def test_work_done_in_lessons_before_the_workspace_is_what_goes_into_it(tmp_path):
    root = course(tmp_path)
    lesson = Lesson(LESSON, root)
    lesson.release.write_text('{"worked": "in lessons/"}\n')  # differs from the manifest's SHA-256
    report = sync_workspace(root)
    assert [ls.name for ls in report.migrated] == [LESSON]
    assert [ls.name for ls in report.created] == ["01_other"]
    assert lesson.workspace.read_text() == '{"worked": "in lessons/"}\n'
    assert lesson.release.read_text() == '{"worked": "in lessons/"}\n', "lessons/ is left as it was"
    told = " ".join(report.lines())
    assert "you had worked in lessons/00_fixture/00_fixture.ipynb" in told and "git checkout" in told
    assert not sync_workspace(root).lines(), "told once"


def test_a_damaged_version_record_loses_nothing(tmp_path):
    root = course(tmp_path)
    sync_workspace(root)
    mine = Lesson(LESSON, root).workspace
    mine.write_text('{"my": "work"}\n')
    (root / "workspace" / VERSIONS_NAME).write_text("{ half a file")
    report = sync_workspace(root)
    assert not (report.created or report.updates) and mine.read_text() == '{"my": "work"}\n'


def test_workspace_command_and_grade_default_to_the_workspace_copy(tmp_path, capsys):
    root = course(tmp_path)
    assert cli.main(["workspace", "--root", str(root)]) == 0
    assert "copied lesson(s) 00, 01" in capsys.readouterr().out
    assert cli.main(["workspace", "--root", str(root)]) == 0
    assert "up to date" in capsys.readouterr().out
    # grading reads workspace/ (this copy is not a notebook, so it is reported corrupt, from that path)
    assert cli.main(["grade", "00", "--root", str(root)]) == 0
    out = capsys.readouterr().out
    assert f"notebook: {Lesson(LESSON, root).workspace}" in out and "not a readable notebook" in out


def test_files_are_only_ever_created_never_replaced(tmp_path):
    path = tmp_path / "a" / "nb.ipynb"
    assert _create(path, b"first") and path.read_bytes() == b"first"
    assert not _create(path, b"second") and path.read_bytes() == b"first"


def test_an_edited_lessons_copy_is_never_offered_as_the_courses_update(tmp_path):
    root = course(tmp_path)
    sync_workspace(root)
    lesson = Lesson(LESSON, root)
    release(root, LESSON, '{"v": 2}\n')  # the course changed ...
    lesson.release.write_text('{"v": 2, "edited": "in lessons/ by habit"}\n')  # ... and was edited in place
    report = sync_workspace(root)
    assert not report.updates and not list(lesson.workspace.parent.glob("*.update-*.ipynb"))
