"""Flashcards over the question bank with Leitner boxes: what you miss comes back first.

A card starts in box 0 (new). Knowing it moves it up one box (a new card straight to box 2), missing it sends it back to box 1; a
card in box ``b`` is due again ``INTERVALS[b]`` days after you last saw it, so missed cards come back
in the next session and known ones ever more rarely. The schedule is saved as JSON beside the grade
record (``.vae_course/drill.json``), written atomically; a file that cannot be read is moved aside
(never deleted), with a message, and a fresh schedule starts. The grade record is never touched.

    state = DrillState.load(path)
    session = Session(bank.select(lessons=["04"]), state, today=date.today(), size=10)
    for card in session: ...; session.mark(card, known=True)
    state.save(path)

The terminal front end is :func:`run_terminal` (``vae-course drill``); the notebook one is
:func:`drill_widget` (lesson 13). Both share the same schedule file.
"""
from __future__ import annotations

import datetime as _dt
import json
import os
import random
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, TextIO

from .bank import TOPICS, Question

STATE_VERSION = 1
STATE_FILE = "drill.json"
BOXES = 5
INTERVALS = {0: 0, 1: 0, 2: 1, 3: 3, 4: 7, 5: 14}  # days until a card in that box is due again


class DrillStateError(ValueError):
    """The saved schedule could not be read."""


@dataclass
class Card:
    box: int = 0
    last: str | None = None  # ISO date of the last answer
    seen: int = 0
    missed: int = 0

    def due(self, today: _dt.date) -> bool:
        if self.last is None:
            return True
        return _dt.date.fromisoformat(self.last) + _dt.timedelta(days=INTERVALS[self.box]) <= today


@dataclass
class DrillState:
    cards: dict[str, Card] = field(default_factory=dict)
    sessions: list[dict] = field(default_factory=list)
    note: str = ""  # set when a corrupt file was moved aside on load

    def card(self, qid: str) -> Card:
        return self.cards.setdefault(qid, Card())

    @classmethod
    def parse(cls, text: str) -> "DrillState":
        data = json.loads(text)
        if not isinstance(data, dict) or data.get("version") != STATE_VERSION or not isinstance(data.get("cards"), dict):
            raise DrillStateError(f"expected a JSON object with version {STATE_VERSION} and a 'cards' object")
        cards = {}
        for qid, raw in data["cards"].items():
            if not isinstance(raw, dict):
                raise DrillStateError(f"card {qid!r} is not an object")
            card = Card(**{k: raw[k] for k in ("box", "last", "seen", "missed") if k in raw})
            if not (isinstance(card.box, int) and 0 <= card.box <= BOXES):
                raise DrillStateError(f"card {qid!r}: box must be 0-{BOXES}, got {card.box!r}")
            if card.last is not None:
                _dt.date.fromisoformat(card.last)  # ValueError on a bad date
            cards[qid] = card
        sessions = data.get("sessions", [])
        return cls(cards=cards, sessions=sessions if isinstance(sessions, list) else [])

    @classmethod
    def load(cls, path: Path) -> "DrillState":
        """The saved schedule, a fresh one if there is none; a corrupt file is moved aside with a note."""
        path = Path(path)
        if not path.exists():
            return cls()
        try:
            return cls.parse(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, ValueError, TypeError) as err:  # JSONDecodeError is a ValueError
            stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
            aside = path.with_name(f"{path.name}.corrupt-{stamp}")
            try:
                os.replace(path, aside)
                kept = f"it was moved to {aside.name} (nothing deleted)"
            except OSError as move_err:
                raise DrillStateError(f"the drill schedule {path} cannot be read ({err}) and could not be moved "
                                      f"aside ({move_err}); move or delete it yourself to start a fresh one") from None
            state = cls()
            state.note = (f"Your drill schedule {path} could not be read ({err}); {kept}, and a fresh schedule "
                          "starts now. Your grade record is untouched.")
            return state

    def save(self, path: Path) -> None:
        """Write atomically (a temporary file renamed over the old one), so a crash never leaves half a file."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        data = {"version": STATE_VERSION, "cards": {k: vars(v) for k, v in sorted(self.cards.items())},
                "sessions": self.sessions[-200:]}
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                json.dump(data, f, indent=1, sort_keys=True)
                f.write("\n")
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise


def state_path(course_root: Path) -> Path:
    from ..grading.course import STATE_DIR  # beside the grade record, .vae_course/grades.jsonl
    return Path(course_root) / STATE_DIR / STATE_FILE


class Session:
    """The cards of one sitting: due cards first (lowest box first, then those missed most), then new ones."""

    def __init__(self, questions: Iterable[Question], state: DrillState, today: _dt.date | None = None,
                 size: int = 10, seed: int | None = None):
        self.state, self.today = state, today or _dt.date.today()
        questions = list(questions)
        rng = random.Random(seed if seed is not None else self.today.toordinal())
        rng.shuffle(questions)  # a different order each day, the same within a day
        seen = [q for q in questions if q.id in state.cards and state.cards[q.id].last is not None]
        due = [q for q in seen if state.cards[q.id].due(self.today)]
        due.sort(key=lambda q: (state.cards[q.id].box, -state.cards[q.id].missed))
        new = [q for q in questions if q.id not in state.cards or state.cards[q.id].last is None]
        self.cards = (due + new)[: max(0, size)]
        self.results: list[tuple[Question, bool]] = []

    def __iter__(self):
        return iter(list(self.cards))

    def __len__(self) -> int:
        return len(self.cards)

    def mark(self, q: Question, known: bool) -> Card:
        card = self.state.card(q.id)
        card.box = min(BOXES, max(card.box, 1) + 1) if known else 1  # a new card known at once: box 2
        card.last = self.today.isoformat()
        card.seen += 1
        card.missed += 0 if known else 1
        self.results.append((q, known))
        return card

    def finish(self) -> dict:
        entry = {"date": self.today.isoformat(), "asked": len(self.results),
                 "known": sum(k for _, k in self.results)}
        if self.results:
            self.state.sessions.append(entry)
        return entry


def weak_topics(state: DrillState, questions: Iterable[Question], top: int = 5) -> list[dict]:
    """Topics with the most misses so far (and how often), each with the lesson sections to reread."""
    stats: dict[str, dict] = {}
    for q in questions:
        card = state.cards.get(q.id)
        if not card or not card.seen:
            continue
        for t in q.topics:
            s = stats.setdefault(t, {"topic": t, "seen": 0, "missed": 0, "reread": []})
            s["seen"] += card.seen
            s["missed"] += card.missed
            if card.box <= 1 and card.missed:
                place = f"lesson {q.lesson}, section \"{q.section}\""
                if place not in s["reread"]:
                    s["reread"].append(place)
    rows = [s for s in stats.values() if s["missed"]]
    rows.sort(key=lambda s: (-s["missed"] / s["seen"], -s["missed"], s["topic"]))
    return rows[:top]


def summary_lines(state: DrillState, questions: list[Question], today: _dt.date | None = None) -> list[str]:
    today = today or _dt.date.today()
    boxes = [0] * (BOXES + 1)
    due = 0
    for q in questions:
        card = state.cards.get(q.id, Card())
        boxes[card.box] += 1
        due += card.due(today) and card.last is not None
    lines = [f"{len(questions)} questions: " + ", ".join(
        f"{n} {'new' if b == 0 else f'in box {b}'}" for b, n in enumerate(boxes) if n)
        + f"; {due} seen before and due again today."]
    weak = weak_topics(state, questions)
    if weak:
        lines.append("Weak topics (missed / answered), and where to reread:")
        for s in weak:
            lines.append(f"  {s['topic']}: {s['missed']}/{s['seen']} - {TOPICS[s['topic']]}")
            for place in s["reread"][:3]:
                lines.append(f"      reread {place}")
    return lines


def _show_question(q: Question, i: int, n: int, box: int, out: TextIO) -> None:
    print(f"\n[{i}/{n}] lesson {q.lesson} · {q.kind} · difficulty {q.difficulty} · box {box}", file=out)
    print(f"Q: {q.question}", file=out)
    for j, choice in enumerate(q.choices):
        print(f"   {'abcdefghij'[j]}) {choice}", file=out)


def run_terminal(questions: list[Question], state: DrillState, read: Callable[[str], str], out: TextIO,
                 today: _dt.date | None = None, size: int = 10, seed: int | None = None) -> Session:
    """One session at the terminal. ``read(prompt)`` returns a line (EOFError or 'q' ends the session early)."""
    session = Session(questions, state, today=today, size=size, seed=seed)
    if not len(session):
        print("Nothing is due today in this selection: every card you have seen is scheduled later. "
              "Pick other lessons or topics, or come back tomorrow.", file=out)
        return session
    print(f"{len(session)} card{'s' if len(session) > 1 else ''}. Answer, or press Enter to see the model answer; q quits (progress is kept).",
          file=out)
    for i, q in enumerate(session, 1):
        _show_question(q, i, len(session), state.cards.get(q.id, Card()).box, out)
        hint = "a letter" if q.choices else ("a number" if q.value is not None else "your answer in a line")
        try:
            reply = read(f"Your answer ({hint}; Enter to reveal, q to quit): ").strip()
        except EOFError:
            break
        if reply.lower() in ("q", "quit"):
            break
        verdict = q.check(reply) if reply else None
        if verdict is not None:
            print("Right." if verdict else "Not quite.", file=out)
        print(f"Model answer: {q.answer}", file=out)
        if q.choices:
            print(f"(correct: {'abcdefghij'[q.correct]}) {q.choices[q.correct]})", file=out)
        print(f"From lesson {q.lesson}, section \"{q.section}\".", file=out)
        if verdict is None:
            try:
                while True:
                    mark = read("Did you know it? [y/n, q to quit]: ").strip().lower()
                    if mark in ("y", "n", "q"):
                        break
                    print("Please type y (I knew it), n (I did not) or q (quit).", file=out)
            except EOFError:
                break
            if mark == "q":
                break
            verdict = mark == "y"
        card = session.mark(q, verdict)
        days = INTERVALS[card.box]
        when = "next session" if card.box <= 1 else f"in {days} day{'s' if days > 1 else ''}"
        print(f"-> box {card.box}: back {when}.", file=out)
    entry = session.finish()
    print(f"\nThis session: {entry['known']} of {entry['asked']} known.", file=out)
    return session


def drill_widget(lessons: Iterable[str] | None = None, topics: Iterable[str] | None = None, size: int = 10,
                 root: Path | str | None = None, today: _dt.date | None = None):
    """The drill as an ipywidgets panel: question, your answer, Reveal, then Knew it / Missed it.

    The schedule is the one ``vae-course drill`` uses (``.vae_course/drill.json`` of the course found
    from ``root`` or the working folder); it is saved after every card.
    """
    import html

    import ipywidgets as W

    from ..grading.course import find_course_root
    from .bank import load_bank

    from ..grading.course import UsageError

    try:
        path = state_path(find_course_root(root=root))
    except UsageError:  # a notebook run outside the course folder (a grading copy, a test): nothing is saved
        path = None
    try:
        state = DrillState.load(path) if path else DrillState(note="No course folder found from here: this "
                                                                    "session's marks are not saved.")
    except DrillStateError as err:  # unreadable and could not be moved aside: drill anyway, save nothing
        path, state = None, DrillState(note=f"{err} This session's marks are not saved.")
    questions = load_bank().select(lessons=lessons, topics=topics)
    session = Session(questions, state, today=today, size=size)
    cards = list(session)
    header, body, answer_box = W.HTML(), W.HTML(), W.HTML()
    reply = W.Text(placeholder="your answer (a letter, a number, or a line), then Reveal",
                   layout=W.Layout(width="90%"))
    reveal, knew, missed = W.Button(description="Reveal"), W.Button(description="Knew it", button_style="success"), \
        W.Button(description="Missed it", button_style="warning")
    pos = {"i": 0}

    def show():
        if pos["i"] >= len(cards):
            entry = session.finish()
            if path:
                state.save(path)
            lines = "<br>".join(html.escape(x) for x in summary_lines(state, questions, session.today))
            header.value = f"<b>Done: {entry['known']} of {entry['asked']} known.</b>"
            body.value, answer_box.value = lines, ""
            for w in (reply, reveal, knew, missed):
                w.layout.display = "none"
            return
        q = cards[pos["i"]]
        header.value = (f"<b>[{pos['i'] + 1}/{len(cards)}]</b> lesson {q.lesson} · {q.kind} · difficulty "
                        f"{q.difficulty} · box {state.cards.get(q.id, Card()).box}")
        choices = "".join(f"<br>&nbsp;&nbsp;{'abcdefghij'[j]}) {html.escape(c)}" for j, c in enumerate(q.choices))
        body.value = f"<p>{html.escape(q.question)}{choices}</p>"
        answer_box.value, reply.value = "", ""
        knew.disabled = missed.disabled = True
        reveal.disabled = False

    def on_reveal(_):
        q = cards[pos["i"]]
        verdict = q.check(reply.value) if reply.value.strip() else None
        said = "" if verdict is None else ("<b>Right.</b> " if verdict else "<b>Not quite.</b> ")
        correct = f"<br>(correct: {'abcdefghij'[q.correct]})" if q.choices else ""
        answer_box.value = (f"<div style='border-left:3px solid #888;padding-left:8px'>{said}"
                            f"{html.escape(q.answer)}{correct}<br><i>lesson {q.lesson}, section "
                            f"\"{html.escape(q.section)}\"</i></div>")
        reveal.disabled = True
        knew.disabled = missed.disabled = False

    def on_mark(known):
        def handler(_):
            session.mark(cards[pos["i"]], known)
            if path:
                state.save(path)
            pos["i"] += 1
            show()
        return handler

    reveal.on_click(on_reveal)
    knew.on_click(on_mark(True))
    missed.on_click(on_mark(False))
    note = W.HTML(f"<i>{html.escape(state.note)}</i>" if state.note else "")
    show()
    return W.VBox([note, header, body, reply, W.HBox([reveal, knew, missed]), answer_box])
