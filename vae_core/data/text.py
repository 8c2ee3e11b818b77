"""A small English corpus generated from a hand-written grammar: text for sentence VAEs, offline.

No file and no download: every sentence comes from a seeded walk through the grammar below, so
the corpus is the same on every machine and :data:`VOCABULARY` is known exactly (133 tokens).

    from vae_core.data import load_sentences
    train = load_sentences("train")   # 20,000 sentences; train[0] == 'those men hold a cake .'
    tokens = train[0].split()          # words are separated by single spaces

Every sentence is lowercase, has 4 to 16 tokens counting the final ``"."`` (which is separated
by a space: ``"the cats sleep ."``) and follows::

    sentence := clause ["and" clause] ["yesterday" (past tense only)] "."
    clause   := subject ["often" (present tense only)] verb [object] [place]
    subject  := determiner [size] [colour] noun      people and animals (no colour for people)
    object   := determiner [size] [colour] noun      what the verb allows: one eats food, chases
                                                     people or animals, holds things or food ...
    place    := preposition "the" place-noun         "in the garden", "near the river", "under the tree"

One tense per sentence (present or past), verbs agree with their subject ("the dog sees" / "the
dogs see"), determiners with their noun ("a cat", "these cats", "an apple"). So the latent space
of a sentence VAE has something to organise: tense, number, the kind of subject and object,
adjectives, an optional place and a second clause.

:func:`load_sentences` gives a fixed 20,000-sentence training set (seed 0) and a 2,000-sentence
test set (seed 1). The two are drawn independently, so they share sentences only where the
grammar makes short sentences likely: 5.95% of the test sentences (119 of 2,000, 84 of them
of 4 tokens such as ``"the girl walks ."``, the longest of 9) also occur in the training set.
Within the training set 19,368 of the 20,000 sentences are distinct; the mean length is 8.4
tokens. ``tests/test_molecules_data.py``
checks these figures.
"""
from __future__ import annotations

import random
from functools import lru_cache

from .dataset import check_limit, check_seed

MIN_TOKENS, MAX_TOKENS = 4, 16
SPLITS = ("train", "test")
SIZES = {"train": 20_000, "test": 2_000}
SEEDS = {"train": 0, "test": 1}

SINGULAR_DETERMINERS = ("the", "a", "this", "that")  # "a" becomes "an" before a vowel
PLURAL_DETERMINERS = ("the", "some", "these", "those", "two", "three", "many")
SIZE_ADJECTIVES = ("big", "small", "tiny", "huge")
COLOUR_ADJECTIVES = ("red", "blue", "green", "black", "white", "brown", "grey", "yellow")

# noun classes, singular -> plural
ANIMALS = {"cat": "cats", "dog": "dogs", "bird": "birds", "fox": "foxes", "horse": "horses", "mouse": "mice"}
PEOPLE = {"girl": "girls", "boy": "boys", "farmer": "farmers", "child": "children", "man": "men", "woman": "women"}
THINGS = {"ball": "balls", "box": "boxes", "book": "books", "hat": "hats", "stone": "stones", "kite": "kites"}
FOOD = {"apple": "apples", "cake": "cakes", "egg": "eggs", "pear": "pears"}
NOUNS = {**ANIMALS, **PEOPLE, **THINGS, **FOOD}
_CLASSES = {"animal": ANIMALS, "person": PEOPLE, "thing": THINGS, "food": FOOD}
_COLOURLESS = ("person",)  # "a green farmer" reads oddly; animals, things and food take colours
_SUBJECTS = ("animal", "person")

# base form -> (third person singular, past, object classes or () for intransitive)
VERBS = {
    "see": ("sees", "saw", ("animal", "person", "thing", "food")),
    "watch": ("watches", "watched", ("animal", "person")),
    "follow": ("follows", "followed", ("animal", "person")),
    "chase": ("chases", "chased", ("animal", "person")),
    "find": ("finds", "found", ("animal", "thing", "food")),
    "like": ("likes", "liked", ("animal", "person", "thing", "food")),
    "carry": ("carries", "carried", ("animal", "thing", "food")),
    "hold": ("holds", "held", ("thing", "food")),
    "want": ("wants", "wanted", ("thing", "food")),
    "eat": ("eats", "ate", ("food",)),
    "sleep": ("sleeps", "slept", ()),
    "run": ("runs", "ran", ()),
    "sing": ("sings", "sang", ()),
    "sit": ("sits", "sat", ()),
    "walk": ("walks", "walked", ()),
    "play": ("plays", "played", ()),
}
_TRANSITIVE = tuple(v for v, (_, _, objects) in VERBS.items() if objects)
_INTRANSITIVE = tuple(v for v, (_, _, objects) in VERBS.items() if not objects)

# preposition -> the places it goes with ("under the hill" and "on the river" are left out)
PLACES = ("garden", "river", "tree", "house", "hill", "lake", "park", "forest")
PREPOSITIONS = {
    "in": ("garden", "house", "park", "forest"),
    "near": PLACES,
    "under": ("tree",),
    "behind": ("tree", "house", "hill"),
    "on": ("hill",),
    "by": ("river", "lake", "tree", "house"),
}

# probabilities of the optional parts
_P = {"plural": 0.35, "size": 0.25, "colour": 0.3, "transitive": 0.65, "often": 0.1,
      "place": 0.3, "place_intransitive": 0.6, "and": 0.2, "yesterday": 0.2, "past": 0.5}

VOCABULARY: tuple[str, ...] = tuple(sorted(
    set(SINGULAR_DETERMINERS) | set(PLURAL_DETERMINERS) | {"an"}
    | set(SIZE_ADJECTIVES) | set(COLOUR_ADJECTIVES)
    | set(NOUNS) | set(NOUNS.values())
    | {form for base, (s3, past, _) in VERBS.items() for form in (base, s3, past)}
    | set(PLACES) | set(PREPOSITIONS)
    | {"often", "yesterday", "and", "."}
))


def _noun_phrase(rng: random.Random, classes: tuple[str, ...]) -> tuple[list[str], bool]:
    """determiner [size] [colour] noun, from one of ``classes``; returns (words, plural)."""
    cls = rng.choice(classes)
    plural = rng.random() < _P["plural"]
    singular_noun = rng.choice(tuple(_CLASSES[cls]))
    noun = _CLASSES[cls][singular_noun] if plural else singular_noun
    words = [rng.choice(PLURAL_DETERMINERS if plural else SINGULAR_DETERMINERS)]
    if rng.random() < _P["size"]:
        words.append(rng.choice(SIZE_ADJECTIVES))
    if cls not in _COLOURLESS and rng.random() < _P["colour"]:
        words.append(rng.choice(COLOUR_ADJECTIVES))
    words.append(noun)
    if words[0] == "a" and words[1][0] in "aeiou":
        words[0] = "an"  # "an apple", "an egg"; every other word here starts with a consonant sound
    return words, plural


def _clause(rng: random.Random, past: bool) -> list[str]:
    words, plural = _noun_phrase(rng, _SUBJECTS)
    if not past and rng.random() < _P["often"]:
        words.append("often")
    verb = rng.choice(_TRANSITIVE if rng.random() < _P["transitive"] else _INTRANSITIVE)
    s3, past_form, objects = VERBS[verb]
    words.append(past_form if past else (verb if plural else s3))
    if objects:
        words += _noun_phrase(rng, objects)[0]
    if rng.random() < _P["place" if objects else "place_intransitive"]:  # "the cat sleeps" wants a where
        prep = rng.choice(tuple(PREPOSITIONS))
        words += [prep, "the", rng.choice(PREPOSITIONS[prep])]
    return words


def _sentence(rng: random.Random) -> str:
    """One sentence; drawn again (from the same generator) until it has at most MAX_TOKENS tokens."""
    while True:
        past = rng.random() < _P["past"]
        words = _clause(rng, past)
        if rng.random() < _P["and"]:
            words += ["and"] + _clause(rng, past)
        if past and rng.random() < _P["yesterday"]:
            words.append("yesterday")
        words.append(".")
        if len(words) <= MAX_TOKENS:  # the shortest clause, "the cat sleeps .", already has MIN_TOKENS
            return " ".join(words)


def grammar_sentences(n: int, seed: int = 0) -> list[str]:
    """``n`` sentences from the grammar, drawn with ``random.Random(seed)``; the same for the same seed.

    n:    how many (a non-negative int); sentences may repeat, short ones often do.
    seed: a non-negative int. ``grammar_sentences(k, s)`` is the first ``k`` of
          ``grammar_sentences(m, s)`` for any ``m >= k``.

    Each sentence is lowercase words separated by single spaces, ending with ``" ."``, with
    ``MIN_TOKENS`` to ``MAX_TOKENS`` (4 to 16) tokens, all in :data:`VOCABULARY`.
    """
    if not isinstance(n, int) or isinstance(n, bool) or n < 0:
        raise ValueError(f"n must be a non-negative int (how many sentences), got {n!r}")
    rng = random.Random(check_seed(seed))
    return [_sentence(rng) for _ in range(n)]


@lru_cache(maxsize=None)
def _split_sentences(split: str) -> tuple[str, ...]:
    return tuple(grammar_sentences(SIZES[split], SEEDS[split]))


def load_sentences(split: str = "train", limit: int | None = None) -> list[str]:
    """The fixed grammar corpus: ``"train"`` 20,000 sentences (seed 0) or ``"test"`` 2,000 (seed 1).

    limit: keep only the first ``limit`` sentences; ``None`` for all. Returns a new list each call.
    The test set shares 5.95% of its sentences (119 of 2,000, mostly short) with the training set;
    see the module docstring.
    """
    if split not in SPLITS:
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    n = check_limit(limit, SIZES[split])
    return list(_split_sentences(split)[:n])


__all__ = ["grammar_sentences", "load_sentences", "VOCABULARY", "MIN_TOKENS", "MAX_TOKENS",
           "NOUNS", "ANIMALS", "PEOPLE", "THINGS", "FOOD", "VERBS", "PLACES", "PREPOSITIONS", "SINGULAR_DETERMINERS", "PLURAL_DETERMINERS",
           "SIZE_ADJECTIVES", "COLOUR_ADJECTIVES", "SIZES", "SEEDS"]
