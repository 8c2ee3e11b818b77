"""`vae-course drill` and its Leitner schedule (vae_core/interview/drill.py).

A scripted session through the real command (a subprocess with the answers on stdin), the schedule
surviving a restart, missed cards coming back first, known ones later, a corrupt schedule moved aside
with a clear message while the grade record stays byte for byte, and the notebook widget driven by
its buttons.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from vae_core.interview import load_bank
from vae_core.interview.drill import INTERVALS, DrillState, Session, state_path, weak_topics

VAE_COURSE = str(Path(sys.executable).parent / "vae-course")
TODAY = "2026-12-03"


@pytest.fixture
def course(tmp_path):
    """A minimal course folder (what find_course_root needs) with a grade record in it."""
    (tmp_path / "solutions").mkdir()
    (tmp_path / "nbgrader_config.py").write_text("c = get_config()\n")
    record = tmp_path / ".vae_course" / "grades.jsonl"
    record.parent.mkdir()
    record.write_text('{"lesson": "04", "score": 9.0, "max": 11.0, "status": "graded", "version": 1}\n')
    return tmp_path


def drill(course: Path, *args: str, answers: str = "") -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run([VAE_COURSE, "drill", "--root", str(course), "--date", TODAY, "--seed", "1", *args],
                          input=answers, capture_output=True, text=True, env=env, timeout=60)


def state(course: Path) -> dict:
    return json.loads(state_path(course).read_text())["cards"]


def test_a_scripted_session_checks_marks_and_saves(course):
    bank = load_bank()
    mc = next(q for q in bank if q.choices)
    wrong = "abcdefghij"[(mc.correct + 1) % len(mc.choices)]
    # EOF at the first prompt: the session ends, nothing is marked
    proc = drill(course, "--lessons", mc.lesson, "-n", "40", answers="")
    assert proc.returncode == 0 and "Q: " in proc.stdout, proc.stdout + proc.stderr
    assert not state_path(course).exists() or not state(course)
    # the order the command will ask in (same date, same seed), answered: the chosen multiple-choice question
    # wrongly (checked by the drill, no self-mark asked), the others rightly, or by hand: Enter to reveal,
    # then a refused "maybe", then y and n in turn
    order = list(Session(bank.select(lessons=[mc.lesson]), DrillState(), today=dt.date.fromisoformat(TODAY),
                         size=40, seed=1))
    first = order[0]
    script, expect = [], {}
    for q in order:
        if q.choices:
            script.append(wrong if q is mc else "abcdefghij"[q.correct])
            expect[q.id] = 1 if q is mc else 2
        elif q.value is not None:
            script.append(repr(q.value))
            expect[q.id] = 2
        else:
            knew = len(expect) % 2 == 0
            script += ["", "maybe", "y" if knew else "n"]
            expect[q.id] = 2 if knew else 1
    proc = drill(course, "--lessons", mc.lesson, "-n", "40", answers="\n".join(script) + "\n")
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert "Not quite." in out, out
    assert "Please type y (I knew it), n (I did not) or q (quit)." in out
    assert f"This session: {sum(b == 2 for b in expect.values())} of {len(expect)} known." in out
    assert "Weak topics" in out and f"reread lesson {mc.lesson}, section" in out
    saved = state(course)
    assert {k: v["box"] for k, v in saved.items()} == expect
    assert all(v["last"] == TODAY and v["seen"] == 1 for v in saved.values())
    assert first.id in saved


def test_missed_cards_come_back_first_and_known_ones_after_their_interval(course):
    questions = list(load_bank())
    today = dt.date.fromisoformat(TODAY)
    st = DrillState()
    s = Session(questions, st, today=today, size=4, seed=0)
    cards = list(s)
    for i, q in enumerate(cards):
        s.mark(q, known=i % 2 == 0)   # known, missed, known, missed
    s.finish()
    st.save(state_path(course))
    st = DrillState.load(state_path(course))  # a restart: everything read back from the file
    assert [st.cards[q.id].box for q in cards] == [2, 1, 2, 1]
    again = list(Session(questions, st, today=today, size=2, seed=5))
    assert {q.id for q in again} == {cards[1].id, cards[3].id}, "the missed cards come first the same day"
    tomorrow = today + dt.timedelta(days=INTERVALS[2])
    due = [q.id for q in Session(questions, st, today=tomorrow, size=len(questions), seed=5)]
    assert due[:4] != [] and set(due[:4]) == {c.id for c in cards}, "after a day the box-2 cards are due too"
    assert due.index(cards[0].id) > due.index(cards[1].id), "box 1 before box 2"
    big = Session(questions, st, today=today, size=len(questions), seed=5)
    assert cards[0].id not in {q.id for q in big}, "a known card is not asked again the same day"
    weak = weak_topics(st, questions)
    assert weak and all(w["missed"] >= 1 for w in weak)
    # five correct answers in a row walk a card up to the last box, one miss sends it back to box 1
    s = Session([cards[0]], st, today=today, size=1)
    for _ in range(6):
        s.mark(cards[0], True)
    assert st.cards[cards[0].id].box == 5
    s.mark(cards[0], False)
    assert st.cards[cards[0].id].box == 1


def test_a_corrupt_schedule_is_moved_aside_with_a_message_and_the_grades_stay(course):
    record = course / ".vae_course" / "grades.jsonl"
    before = hashlib.sha256(record.read_bytes()).hexdigest()
    path = state_path(course)
    path.write_text('{"version": 1, "cards": {"04-x": {"box": "high"')
    proc = drill(course, "--lessons", "04", "-n", "1", answers="\ny\n")
    assert proc.returncode == 0, proc.stderr
    assert "could not be read" in proc.stdout and "moved to drill.json.corrupt-" in proc.stdout
    assert "Your grade record is untouched." in proc.stdout
    (aside,) = path.parent.glob("drill.json.corrupt-*")
    assert aside.read_text().startswith('{"version": 1, "cards": {"04-x"'), "the unreadable file is kept as it was"
    assert len(state(course)) == 1, "a fresh schedule with this session's card"
    assert hashlib.sha256(record.read_bytes()).hexdigest() == before
    # a schema error (not a JSON error) is caught the same way
    path.write_text('{"version": 1, "cards": {"04-x": {"box": 9}}}')
    proc = drill(course, "--summary")
    assert proc.returncode == 0 and "box must be 0-5" in proc.stdout
    assert hashlib.sha256(record.read_bytes()).hexdigest() == before


@pytest.mark.parametrize("args, message", [
    (["--topics", "nope"], "unknown topic nope"),
    (["--lessons", "42"], "no lesson '42'"),
    (["--kinds", "trivia"], "unknown kind trivia"),
    (["-n", "0"], "-n must be at least 1"),
    (["--lessons", "13", "--kinds", "code", "--topics", "molecules"], "no question matches"),
])
def test_bad_selections_exit_2_with_a_reason_and_write_nothing(course, args, message):
    proc = drill(course, *args)
    assert proc.returncode == 2 and message in proc.stderr, proc.stderr
    assert not state_path(course).exists()


def test_list_topics_and_summary_ask_nothing(course):
    proc = drill(course, "--list-topics")
    assert proc.returncode == 0 and "blurry-samples" in proc.stdout and "bits-back" in proc.stdout
    proc = drill(course, "--summary", "--lessons", "09")
    assert proc.returncode == 0 and "new; " in proc.stdout and "Q: " not in proc.stdout
    assert not state_path(course).exists()


def test_the_widget_drives_the_same_schedule(course):
    from vae_core.interview.drill import drill_widget

    w = drill_widget(size=2, root=course, today=dt.date.fromisoformat(TODAY))
    note, header, body, reply, buttons, answer = w.children
    reveal, knew, missed = buttons.children
    assert "[1/2]" in header.value and knew.disabled and not reveal.disabled
    reveal.click()
    assert ", section" in answer.value and not knew.disabled
    knew.click()
    assert "[2/2]" in header.value
    reply.value = "zzz"
    reveal.click()
    missed.click()
    assert "Done: 1 of 2 known." in header.value
    boxes = sorted(v["box"] for v in state(course).values())
    assert boxes == [1, 2]
