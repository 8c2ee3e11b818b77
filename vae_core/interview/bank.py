"""The interview question bank: one TOML file per lesson under ``questions/``, validated on load.

Each file holds ``[[question]]`` tables::

    [[question]]
    id = "04-blurry"                        # unique across the bank, starts with the lesson number
    lesson = "04"                           # the lesson that teaches it ("00" ... "13")
    section = "2. Which likelihood? Bernoulli against Gaussian"   # a heading of that lesson, verbatim
    kind = "concept"                        # one of KINDS
    difficulty = 2                          # 1 warm-up, 2 standard, 3 hard
    topics = ["blurry-samples", "training"] # keys of TOPICS
    question = "Why are samples from a VAE trained on images blurry?"
    answer = '''The model answer, a few sentences or a derivation.'''

Optional, for questions the drill can check by itself:
``choices = ["...", "..."]`` with ``correct = 2`` (0-based index), or ``value = 1.23`` with ``tolerance``
(absolute). TOML because its multi-line strings keep long answers readable, and Python reads it
(``tomllib``) without a new dependency.
"""
from __future__ import annotations

import math
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

QUESTIONS_DIR = Path(__file__).with_name("questions")

KINDS = {
    "concept": "explain an idea in words",
    "derivation": "derive a result on the whiteboard",
    "numeric": "compute a number (by hand or with a few lines)",
    "code": "write or debug code",
    "design": "a design choice or trade-off",
}

# The seed's interview notes (fundamentals ... challenges) and the questions interviewers ask beyond them.
# Every topic here must be covered by the bank (tests/test_interview_bank.py).
TOPICS = {
    # fundamentals and the seed's outline
    "encoder-decoder": "encoder-decoder structure, bottleneck, what each half learns",
    "ae-vs-vae": "autoencoder versus VAE: deterministic codes against a generative model",
    "latent-space": "latent spaces: geometry, interpolation, arithmetic, the shell",
    "elbo": "the ELBO: derivations, the gap, reconstruction and KL terms",
    "reparameterization": "the reparameterization trick and gradient estimators",
    "training": "training a VAE: likelihoods, reductions, the loop, evaluation",
    "generation": "sampling new data",
    "compression": "compression, code lengths, rate in bits",
    "anomaly-detection": "anomaly detection with a density model",
    "representation-learning": "codes as features, probes, few labels",
    "molecules": "molecule generation: SMILES, SELFIES, validity",
    "text": "sequence VAEs on text",
    "beta-vae": "beta-VAE",
    "conditional-vae": "conditional VAE",
    "vq-vae": "VQ-VAE and discrete codes",
    "hierarchical-vae": "hierarchical VAEs and deep latent models",
    "kl-balance": "balancing reconstruction and KL: annealing, free bits, beta",
    "posterior-collapse": "posterior collapse: why it happens and the fixes",
    "disentanglement": "disentanglement: what it means and how it is measured",
    # beyond the basics
    "blurry-samples": "why VAE samples are blurry",
    "posterior-vs-mode-collapse": "posterior collapse against GAN mode collapse",
    "rate-distortion": "the ELBO as rate + distortion",
    "aggregate-posterior": "the aggregate posterior, prior holes, learned priors",
    "why-kl": "why KL and not another divergence (MMD/InfoVAE, WAE, adversarial AE)",
    "model-families": "VAE against GAN, normalizing flow and diffusion",
    "amortization-gap": "the amortization and approximation gaps",
    "straight-through": "VQ-VAE's straight-through gradient",
    "codebook-collapse": "codebook collapse, dead codes and their fixes",
    "disentanglement-caveats": "what beta-VAE disentanglement does not promise (Locatello et al. 2019)",
    "likelihood-ood": "likelihood-based out-of-distribution detection fails (Nalisnick et al. 2019)",
    "bits-back": "bits-back coding",
    "numerics": "numerical stability: log-sum-exp, softplus, float32",
    "evaluation": "evaluating a VAE: IWAE, bits/dim, active units, metrics",
}

LESSONS = tuple(f"{n:02d}" for n in range(14))
REQUIRED = ("id", "lesson", "section", "kind", "difficulty", "topics", "question", "answer")
OPTIONAL = ("choices", "correct", "value", "tolerance")


class BankError(ValueError):
    """A question file that breaks the schema; the message names the file, the question and the fix."""


@dataclass(frozen=True)
class Question:
    id: str
    lesson: str
    section: str
    kind: str
    difficulty: int
    topics: tuple[str, ...]
    question: str
    answer: str
    choices: tuple[str, ...] = ()
    correct: int | None = None
    value: float | None = None
    tolerance: float | None = None
    source: str = field(default="", compare=False)

    @property
    def checkable(self) -> bool:
        """True when the drill can check an answer itself (multiple choice or a number)."""
        return bool(self.choices) or self.value is not None

    def check(self, reply: str) -> bool | None:
        """Whether ``reply`` is right: a choice letter/number, or a number within the tolerance; None if not checkable."""
        reply = reply.strip()
        if self.choices:
            letters = "abcdefghij"
            if len(reply) == 1 and reply.lower() in letters[: len(self.choices)]:
                return letters.index(reply.lower()) == self.correct
            if reply.isdigit():
                return int(reply) - 1 == self.correct
            return False
        if self.value is not None:
            try:
                number = float(reply)
            except ValueError:
                return False
            return math.isfinite(number) and abs(number - self.value) <= (self.tolerance or 0.0)
        return None


@dataclass
class Bank:
    questions: list[Question]

    def __len__(self) -> int:
        return len(self.questions)

    def __iter__(self):
        return iter(self.questions)

    def by_id(self, qid: str) -> Question:
        for q in self.questions:
            if q.id == qid:
                return q
        raise KeyError(f"no question {qid!r} in the bank")

    def select(self, lessons: Iterable[str] | None = None, topics: Iterable[str] | None = None,
               kinds: Iterable[str] | None = None) -> list[Question]:
        """The questions of any of ``lessons`` that carry any of ``topics`` and are of any of ``kinds`` (None: all)."""
        lessons = None if lessons is None else {normalize_lesson(x) for x in lessons}
        topics = None if topics is None else set(topics)
        kinds = None if kinds is None else set(kinds)
        for name, given, known in (("topic", topics, TOPICS), ("kind", kinds, KINDS)):
            unknown = sorted((given or set()) - set(known))
            if unknown:
                raise BankError(f"unknown {name} {', '.join(unknown)}; expected one of: {', '.join(sorted(known))}")
        return [q for q in self.questions
                if (lessons is None or q.lesson in lessons)
                and (topics is None or topics & set(q.topics))
                and (kinds is None or q.kind in kinds)]


def normalize_lesson(text: str) -> str:
    """'4', '04', '04_training_a_vae' -> '04'; anything else is a BankError that lists the lessons."""
    head = str(text).split("_")[0].strip()
    if head.isdigit() and f"{int(head):02d}" in LESSONS:
        return f"{int(head):02d}"
    raise BankError(f"no lesson {text!r}: expected a lesson number 00-13 (e.g. 04)")


def _question(raw: dict, source: str) -> Question:
    where = f"{source}, question {raw.get('id', '(no id)')!r}"
    missing = [k for k in REQUIRED if k not in raw]
    if missing:
        raise BankError(f"{where}: missing {', '.join(missing)} (every question needs {', '.join(REQUIRED)})")
    extra = sorted(set(raw) - set(REQUIRED) - set(OPTIONAL))
    if extra:
        raise BankError(f"{where}: unknown field(s) {', '.join(extra)}; allowed: {', '.join(REQUIRED + OPTIONAL)}")
    for key in ("id", "lesson", "section", "kind", "question", "answer"):
        if not isinstance(raw[key], str) or not raw[key].strip():
            raise BankError(f"{where}: {key} must be a non-empty string, got {raw[key]!r}")
    if raw["lesson"] not in LESSONS:
        raise BankError(f"{where}: lesson must be one of 00-13 as two digits, got {raw['lesson']!r}")
    if not raw["id"].startswith(raw["lesson"] + "-"):
        raise BankError(f"{where}: id must start with its lesson, '{raw['lesson']}-...'")
    if raw["kind"] not in KINDS:
        raise BankError(f"{where}: kind must be one of {', '.join(KINDS)}, got {raw['kind']!r}")
    if raw["difficulty"] not in (1, 2, 3) or isinstance(raw["difficulty"], bool):
        raise BankError(f"{where}: difficulty must be 1, 2 or 3, got {raw['difficulty']!r}")
    topics = raw["topics"]
    if not isinstance(topics, list) or not topics or any(t not in TOPICS for t in topics):
        bad = [t for t in topics if t not in TOPICS] if isinstance(topics, list) else topics
        raise BankError(f"{where}: topics must be a non-empty list of known topics; unknown: {bad!r} "
                        f"(known: {', '.join(TOPICS)})")
    choices, correct = raw.get("choices", []), raw.get("correct")
    if ("choices" in raw) != ("correct" in raw):
        raise BankError(f"{where}: give choices and correct together")
    if choices and (not isinstance(choices, list) or len(choices) < 2 or not all(isinstance(c, str) for c in choices)
                    or not isinstance(correct, int) or not 0 <= correct < len(choices)):
        raise BankError(f"{where}: choices must be >= 2 strings and correct a 0-based index into them")
    value, tol = raw.get("value"), raw.get("tolerance")
    if ("value" in raw) != ("tolerance" in raw):
        raise BankError(f"{where}: give value and tolerance together")
    if value is not None and (not isinstance(value, (int, float)) or not isinstance(tol, (int, float)) or tol < 0):
        raise BankError(f"{where}: value and tolerance must be numbers (tolerance >= 0)")
    if choices and value is not None:
        raise BankError(f"{where}: a question is multiple choice or numeric, not both")
    return Question(id=raw["id"], lesson=raw["lesson"], section=raw["section"].strip(), kind=raw["kind"],
                    difficulty=raw["difficulty"], topics=tuple(topics), question=raw["question"].strip(),
                    answer=raw["answer"].strip(), choices=tuple(choices), correct=correct,
                    value=None if value is None else float(value), tolerance=None if tol is None else float(tol),
                    source=source)


def load_bank(folder: Path | str | None = None) -> Bank:
    """Read and validate every ``*.toml`` under ``folder`` (default: the bank shipped in the package)."""
    folder = Path(folder) if folder is not None else QUESTIONS_DIR
    files = sorted(folder.glob("*.toml"))
    if not files:
        raise BankError(f"no question files (*.toml) in {folder}; the bank ships with vae_core, reinstall the course")
    questions, seen = [], {}
    for path in files:
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as err:
            raise BankError(f"{path.name} is not valid TOML ({err}); fix the file or restore it from git") from None
        extra = sorted(set(data) - {"question"})
        if extra or not isinstance(data.get("question", []), list):
            raise BankError(f"{path.name}: expected only [[question]] tables, found {', '.join(extra) or 'question'}")
        for raw in data.get("question", []):
            q = _question(raw, path.name)
            if q.id in seen:
                raise BankError(f"{path.name}: question id {q.id!r} is already used in {seen[q.id]}")
            seen[q.id] = path.name
            questions.append(q)
    return Bank(questions)
