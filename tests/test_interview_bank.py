"""The interview question bank (vae_core/interview/questions/*.toml): schema, coverage, and that it points
at lesson sections that exist.

Coverage is what issue 16 asks: at least 120 questions; every lesson 00-12 with at least 8; every topic
of the seed's interview notes and of the questions interviewers ask beyond them (bank.TOPICS) at least
twice; every kind present; every ``section`` a heading of that lesson's solution notebook, so the drill's
"reread lesson NN, section ..." always leads somewhere.
"""
from __future__ import annotations

import collections
import json
import math
import re
import shutil
from pathlib import Path

import pytest

from vae_core.interview import KINDS, TOPICS, BankError, load_bank
from vae_core.interview.bank import QUESTIONS_DIR

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def bank():
    return load_bank()


def headings(lesson: str) -> set[str]:
    (path,) = REPO.glob(f"solutions/{lesson}_*/{lesson}_*.ipynb")
    nb = json.loads(path.read_text(encoding="utf-8"))
    found = set()
    for cell in nb["cells"]:
        if cell["cell_type"] == "markdown":
            for line in "".join(cell["source"]).splitlines():
                if line.startswith("#"):
                    found.add(line.lstrip("#").strip())
    return found


def test_the_bank_is_big_enough_and_covers_every_lesson_and_kind(bank):
    assert len(bank) >= 120, f"issue 16 asks for at least 120 questions, the bank has {len(bank)}"
    per_lesson = collections.Counter(q.lesson for q in bank)
    thin = {f"{n:02d}": per_lesson.get(f"{n:02d}", 0) for n in range(13) if per_lesson.get(f"{n:02d}", 0) < 8}
    assert not thin, f"lessons with fewer than 8 questions: {thin}"
    kinds = collections.Counter(q.kind for q in bank)
    assert set(kinds) == set(KINDS), f"kinds never used: {set(KINDS) - set(kinds)}"
    assert set(q.difficulty for q in bank) == {1, 2, 3}


def test_every_topic_is_asked_at_least_twice(bank):
    counts = collections.Counter(t for q in bank for t in q.topics)
    thin = {t: counts.get(t, 0) for t in TOPICS if counts.get(t, 0) < 2}
    assert not thin, f"topics asked fewer than twice: {thin}"


def test_every_section_is_a_heading_of_its_lesson(bank):
    cache: dict[str, set[str]] = {}
    missing = []
    for q in bank:
        if q.lesson not in cache:
            cache[q.lesson] = headings(q.lesson)
        if q.section not in cache[q.lesson]:
            missing.append(f"{q.id}: {q.section!r}")
    assert not missing, "sections that are not headings of their lesson's solution notebook:\n" + "\n".join(missing)


def test_ids_are_unique_and_answers_are_answers(bank):
    ids = [q.id for q in bank]
    assert len(ids) == len(set(ids))
    short = [q.id for q in bank if len(q.answer.split()) < 12]
    assert not short, f"model answers under 12 words: {short}"
    same = [q.id for q in bank if q.answer.strip() == q.question.strip()]
    assert not same


def test_checkable_questions_check_their_own_answer(bank):
    checkable = [q for q in bank if q.checkable]
    assert len(checkable) >= 20, f"only {len(checkable)} questions the drill can check by itself"
    for q in checkable:
        if q.choices:
            right = "abcdefghij"[q.correct]
            assert q.check(right) is True and q.check(str(q.correct + 1)) is True, q.id
            wrong = "abcdefghij"[(q.correct + 1) % len(q.choices)]
            assert q.check(wrong) is False, q.id
        else:
            assert q.check(repr(q.value)) is True, q.id
            off = q.value + 10 * max(q.tolerance, 1e-9) + 1e-6 * abs(q.value) + 1e-9
            assert q.check(repr(off)) is False, q.id
            assert math.isfinite(q.value)
    assert next(iter(checkable)).check("") in (False, None)


def test_select_filters_and_rejects_unknown_names(bank):
    some = bank.select(lessons=["4"], topics=["elbo", "training"])
    assert some and all(q.lesson == "04" and {"elbo", "training"} & set(q.topics) for q in some)
    assert bank.select(kinds=["numeric"]) and all(q.kind == "numeric" for q in bank.select(kinds=["numeric"]))
    with pytest.raises(BankError, match="unknown topic nope"):
        bank.select(topics=["nope"])
    with pytest.raises(BankError, match="no lesson '99'"):
        bank.select(lessons=["99"])


def _bank_with(tmp_path, text: str) -> Path:
    folder = tmp_path / "bank"
    shutil.copytree(QUESTIONS_DIR, folder)
    (folder / "99_extra.toml").write_text(text, encoding="utf-8")
    return folder


GOOD = '''
[[question]]
id = "04-extra"
lesson = "04"
section = "Interview corner"
kind = "concept"
difficulty = 2
topics = ["elbo"]
question = "q?"
answer = "a sufficiently long model answer for the schema test of the question bank, twelve words or more."
'''


@pytest.mark.parametrize("edit, message", [
    (lambda t: t.replace('kind = "concept"', 'kind = "trivia"'), "kind must be one of"),
    (lambda t: t.replace('topics = ["elbo"]', 'topics = ["elbow"]'), "unknown: \\['elbow'\\]"),
    (lambda t: t.replace('difficulty = 2', 'difficulty = 7'), "difficulty must be 1, 2 or 3"),
    (lambda t: t.replace('id = "04-extra"', 'id = "05-extra"'), "id must start with its lesson"),
    (lambda t: t.replace('answer = ', 'answr = '), "missing answer"),
    (lambda t: t + 'choices = ["a", "b"]\n', "give choices and correct together"),
    (lambda t: t + 'value = 1.0\ntolerance = -1\n', "tolerance >= 0"),
    (lambda t: t + 'hint = "x"\n', "unknown field\\(s\\) hint"),
    (lambda t: t.replace('[[question]]', '[[question]\n'), "is not valid TOML"),
])
def test_a_broken_question_file_names_the_file_the_question_and_the_fix(tmp_path, edit, message):
    assert len(load_bank(_bank_with(tmp_path, GOOD))) == len(load_bank()) + 1  # the template itself is valid
    with pytest.raises(BankError, match=message) as err:
        load_bank(_bank_with(tmp_path / "x", edit(GOOD)))
    assert "99_extra.toml" in str(err.value)


def test_a_duplicate_id_is_refused(tmp_path):
    first = next(iter(load_bank()))
    text = GOOD.replace('id = "04-extra"', f'id = "{first.id}"').replace('lesson = "04"', f'lesson = "{first.lesson}"')
    with pytest.raises(BankError, match=re.escape(f"question id {first.id!r} is already used")):
        load_bank(_bank_with(tmp_path, text))


def test_an_empty_folder_is_a_clear_error(tmp_path):
    with pytest.raises(BankError, match="no question files"):
        load_bank(tmp_path)
