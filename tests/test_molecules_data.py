"""Tests for lesson 12's data: the shipped MOSES SMILES (vae_core.data.molecules) and the grammar
corpus (vae_core.data.text).

The figures pinned here (sizes, length statistics, first molecules, the overlap of the two text
splits) are the ones PROVENANCE.md and the module docstrings state; a test fails when either
side changes without the other.
"""
from __future__ import annotations

import fnmatch
import gzip
import hashlib
import json
import os
import re
import shutil
import statistics
import tomllib
from pathlib import Path

import pytest

from vae_core.data import load_sentences, load_smiles
from vae_core.data import molecules, text
from vae_core.data.molecules import verify_smiles

ROOT = Path(__file__).resolve().parents[1]
FILES = Path(molecules.__file__).parent / "files"
NAMES = ["moses_train.smi.gz", "moses_test.smi.gz"]


@pytest.fixture(autouse=True)
def _fresh_cache():
    # the tamper tests monkeypatch the package folder; never let a verified copy leak between tests
    molecules.clear_cache()
    yield
    molecules.clear_cache()


# ================================================================ MOSES: files and checksums

def test_shipped_checksums_match_the_files():
    # independent of the loader: hash the bytes here and compare with MOSES_SHA256SUMS.json
    sums = json.loads((FILES / "MOSES_SHA256SUMS.json").read_text())
    assert sorted(sums) == sorted(NAMES)
    for name in NAMES:
        assert hashlib.sha256((FILES / name).read_bytes()).hexdigest() == sums[name], name
    assert verify_smiles() == sums


def test_mnist_checksum_file_is_left_to_mnist():
    # the MNIST loader reads SHA256SUMS.json; the MOSES files must not appear there
    mnist_sums = json.loads((FILES / "SHA256SUMS.json").read_text())
    assert not set(mnist_sums) & set(NAMES)
    assert all(name.startswith("mnist_") for name in mnist_sums)


def test_provenance_and_licence_describe_the_shipped_files():
    prov = (FILES / "PROVENANCE.md").read_text()
    section = prov[prov.index("\n# MOSES SMILES\n"):]
    for name, sha in json.loads((FILES / "MOSES_SHA256SUMS.json").read_text()).items():
        assert f"| `{name}` |" in section and sha in section, name
    assert "default_rng(0)" in section and "molsets==0.3.1" in section
    assert "# MNIST arrays" in prov[:200]  # the MNIST part is still there, first
    licence = (FILES / "MOSES_LICENSE.txt").read_text()
    assert licence.startswith("# Copied from molsets-0.3.1.dist-info/LICENSE")
    assert "Copyright 2018 Insilico Medicine" in licence and "Permission is hereby granted, free of charge" in licence


def test_package_data_ships_the_files():
    patterns = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]["vae_core.data"]
    for name in NAMES + ["MOSES_SHA256SUMS.json", "MOSES_LICENSE.txt", "PROVENANCE.md"]:
        assert any(fnmatch.fnmatch(f"files/{name}", p) for p in patterns), name


def test_files_are_reproducible_gzip():
    # mtime 0 and no file name in the header (bytes 4..7 and the FNAME flag), as convert_moses.py writes them
    for name in NAMES:
        raw = (FILES / name).read_bytes()
        assert raw[:3] == b"\x1f\x8b\x08" and raw[4:8] == b"\0\0\0\0", name
        assert not raw[3] & 0x08, f"{name} has a file name in its gzip header"


# ================================================================ MOSES: contents

@pytest.mark.parametrize("split, n, stats, first", [
    ("train", 50_000, (15, 35.85, 53), "OCCN1CCN(CC(O)COc2ccccc2F)CC1"),
    ("test", 5_000, (16, 35.93, 50), "COCCN(Cc1ccco1)C(=O)Nc1cc(F)ccc1F"),
])
def test_sizes_format_and_length_statistics(split, n, stats, first):
    smiles = load_smiles(split)
    assert isinstance(smiles, list) and len(smiles) == n
    assert all(isinstance(s, str) and s and s.isascii() and not any(c.isspace() for c in s) for s in smiles)
    lengths = [len(s) for s in smiles]
    assert (min(lengths), round(statistics.fmean(lengths), 2), max(lengths)) == stats  # as in PROVENANCE.md
    assert len(set(smiles)) == n
    assert smiles[0] == first  # the drawn order (seed 0) is part of the data


def test_limit_takes_the_first_molecules_and_returns_a_fresh_list():
    full = load_smiles("test")
    part = load_smiles("test", limit=7)
    assert part == full[:7]
    part.clear()
    full.append("junk")
    assert len(load_smiles("test")) == 5_000 and load_smiles("test", limit=7) == full[:7]


def test_train_and_test_are_disjoint_as_strings():
    assert not set(load_smiles("train")) & set(load_smiles("test"))


@pytest.mark.slow
def test_every_shipped_smiles_parses_with_rdkit_and_splits_are_disjoint_molecules():
    # ~11 s: canonicalizes all 55,000 (PROVENANCE.md: 0 rejected, all but 12 already canonical)
    from vae_core.chem import canonical

    canon = {}
    for split in ("train", "test"):
        smiles = load_smiles(split)
        canon[split] = [canonical(s) for s in smiles]
        rejected = [s for s, c in zip(smiles, canon[split]) if c is None]
        assert rejected == [], f"RDKit rejects {len(rejected)} shipped {split} SMILES, e.g. {rejected[:3]}"
        canon[split + "_changed"] = sum(s != c for s, c in zip(smiles, canon[split]))
    assert canon["train_changed"] + canon["test_changed"] == 12
    assert not set(canon["train"]) & set(canon["test"])


# ================================================================ MOSES: integrity errors

@pytest.fixture
def package_copy(tmp_path, monkeypatch):
    """A copy of the MOSES files and their checksums, standing in for the package's folder."""
    for name in NAMES + ["MOSES_SHA256SUMS.json"]:
        shutil.copy(FILES / name, tmp_path / name)
    monkeypatch.setattr(molecules, "PACKAGE_DATA_DIR", tmp_path)
    return tmp_path


def corrupt(path: Path) -> None:
    raw = bytearray(path.read_bytes())
    raw[len(raw) // 2] ^= 0xFF  # flip one byte
    path.write_bytes(bytes(raw))


def test_copy_in_the_package_folder_loads(package_copy):
    assert load_smiles("test", limit=3) == load_smiles("test", limit=3, root=FILES)


def test_tampered_file_in_the_package_folder_is_refused(package_copy):
    corrupt(package_copy / "moses_test.smi.gz")
    with pytest.raises(ValueError, match=r"moses_test\.smi\.gz is corrupted.*git checkout -- vae_core/data/files"):
        load_smiles("test")
    load_smiles("train", limit=1)  # the other split is fine
    with pytest.raises(ValueError, match=r"moses_test\.smi\.gz is corrupted"):
        verify_smiles()


def test_tampered_copy_elsewhere_is_refused(tmp_path):
    # root= reads another folder, but the expected checksums still come from the package
    for name in NAMES:
        shutil.copy(FILES / name, tmp_path / name)
    assert load_smiles("train", limit=2, root=tmp_path) == load_smiles("train", limit=2)
    corrupt(tmp_path / "moses_train.smi.gz")
    with pytest.raises(ValueError, match=r"moses_train\.smi\.gz is corrupted"):
        load_smiles("train", root=tmp_path)


def test_wrong_recorded_checksum_is_a_mismatch(package_copy):
    sums_path = package_copy / "MOSES_SHA256SUMS.json"
    sums = json.loads(sums_path.read_text())
    sums["moses_train.smi.gz"] = "0" * 64
    sums_path.write_text(json.dumps(sums))
    with pytest.raises(ValueError, match=r"SHA-256 b004c49b3ceed67e\.\.\., expected 0000000000000000"):
        load_smiles("train")


def test_file_changed_after_a_good_load_is_checked_again(package_copy):
    load_smiles("test", limit=3)  # verified and cached
    path = package_copy / "moses_test.smi.gz"
    before = path.stat().st_mtime_ns
    corrupt(path)
    os.utime(path, ns=(before + 10**9, before + 10**9))  # the cache key holds the mtime
    with pytest.raises(ValueError, match="moses_test"):
        load_smiles("test", limit=3)


def test_repeated_loads_use_the_verified_cache(monkeypatch):
    load_smiles("test", limit=2)
    calls = []
    real = molecules.hashlib.sha256
    monkeypatch.setattr(molecules.hashlib, "sha256", lambda *a: calls.append(1) or real(*a))
    load_smiles("test", limit=2)
    assert calls == []
    molecules.clear_cache()
    load_smiles("test", limit=2)
    assert len(calls) == 1


def test_missing_files_raise_file_not_found_with_a_remedy(package_copy):
    (package_copy / "moses_train.smi.gz").unlink()
    with pytest.raises(FileNotFoundError, match=r"moses_train\.smi\.gz is missing.*reinstall"):
        load_smiles("train")
    (package_copy / "MOSES_SHA256SUMS.json").unlink()
    with pytest.raises(FileNotFoundError, match=r"MOSES_SHA256SUMS\.json is missing.*git checkout"):
        load_smiles("test")


def test_file_with_the_right_checksum_but_wrong_contents_is_refused(package_copy):
    # only possible when files and sums are replaced together, but then say so clearly
    path = package_copy / "moses_test.smi.gz"
    path.write_bytes(gzip.compress(b"CCO\nCCN\nCCC\n", mtime=0))
    sums = json.loads((package_copy / "MOSES_SHA256SUMS.json").read_text())
    sums[path.name] = hashlib.sha256(path.read_bytes()).hexdigest()
    (package_copy / "MOSES_SHA256SUMS.json").write_text(json.dumps(sums))
    with pytest.raises(ValueError, match=r"holds 3 lines, expected 5000 SMILES"):
        load_smiles("test")


@pytest.mark.parametrize("kwargs, match", [
    ({"split": "valid"}, "split must be 'train' or 'test', got 'valid'"),
    ({"split": "test", "limit": 0}, "limit must be a positive int or None, got 0"),
    ({"split": "test", "limit": 2.5}, "limit must be a positive int"),
    ({"split": "test", "limit": 5001}, "larger than the 5000 examples available"),
])
def test_bad_arguments_are_refused(kwargs, match):
    with pytest.raises(ValueError, match=match):
        load_smiles(**kwargs)


def test_citation_names_the_moses_paper():
    c = molecules.MOSES_CITATION
    assert c.startswith("D. Polykovskiy") and "Molecular Sets (MOSES)" in c
    assert "Frontiers in Pharmacology" in c and "2020" in c and "10.3389/fphar.2020.565644" in c


# ================================================================ the grammar corpus

def test_sentences_are_deterministic_per_seed_and_prefixes_agree():
    a = text.grammar_sentences(300, seed=3)
    assert a == text.grammar_sentences(300, seed=3)
    assert a[:40] == text.grammar_sentences(40, seed=3)
    assert a != text.grammar_sentences(300, seed=4)
    assert text.grammar_sentences(0) == []


def test_the_fixed_splits():
    train, test = load_sentences("train"), load_sentences("test")
    assert len(train) == 20_000 and len(test) == 2_000
    assert train == text.grammar_sentences(20_000, seed=0)
    assert test == text.grammar_sentences(2_000, seed=1)
    assert train[0] == "those men hold a cake ."  # pins random.Random's stream and the grammar
    assert load_sentences("test", limit=5) == test[:5]
    part = load_sentences("train", limit=3)
    part.append("x")
    assert len(load_sentences("train", limit=3)) == 3  # a fresh list every call


def test_overlap_and_duplicates_are_as_documented():
    train, test = load_sentences("train"), load_sentences("test")
    seen = set(train)
    shared = [s for s in test if s in seen]
    assert len(shared) == 119 and len(set(train)) == 19_368
    assert "5.95% of the test sentences (119 of 2,000" in text.__doc__
    assert "19,368 of the 20,000" in text.__doc__
    assert max(len(s.split()) for s in shared) == 9


def test_format_lengths_and_closed_vocabulary():
    sentences = load_sentences("train") + load_sentences("test")
    lengths = set()
    used = set()
    for s in sentences:
        assert s == s.lower() and s.endswith(" .") and "  " not in s and s == s.strip(), s
        tokens = s.split(" ")
        assert tokens.count(".") == 1, s
        lengths.add(len(tokens))
        used.update(tokens)
    assert lengths == set(range(text.MIN_TOKENS, text.MAX_TOKENS + 1)) == set(range(4, 17))
    vocab = text.VOCABULARY
    assert isinstance(vocab, tuple) and list(vocab) == sorted(set(vocab)) and "." in vocab
    assert used == set(vocab)  # closed, and nothing listed that the grammar never says
    assert 80 <= len(vocab) <= 150


def _parse_clause(tokens: list[str]) -> tuple[str, str, str, list[str]]:
    """determiner, subject noun, verb and the rest of one clause."""
    i = 1
    while tokens[i] in text.SIZE_ADJECTIVES or tokens[i] in text.COLOUR_ADJECTIVES:
        i += 1
    noun = tokens[i]
    i += 1
    if tokens[i] == "often":
        i += 1
    return tokens[0], noun, tokens[i], tokens[i + 1:]


def test_agreement_tense_and_articles():
    singular, plural = set(text.NOUNS), set(text.NOUNS.values())
    assert not singular & plural
    forms = {}
    for base, (s3, past, _) in text.VERBS.items():
        forms.update({base: "base", s3: "s3", past: "past"})
    for sentence in load_sentences("train", limit=5_000):
        tokens = sentence.split()[:-1]
        if tokens[-1] == "yesterday":
            tokens = tokens[:-1]
        clauses = " ".join(tokens).split(" and ")
        tenses = set()
        for clause in clauses:
            det, noun, verb, _ = _parse_clause(clause.split())
            is_plural = noun in plural
            assert noun in singular | plural, sentence
            if det in ("a", "an", "this", "that"):
                assert not is_plural, sentence
            elif det != "the":
                assert is_plural and det in text.PLURAL_DETERMINERS, sentence
            kind = forms[verb]
            tenses.add("past" if kind == "past" else "present")
            if kind != "past":
                assert kind == ("base" if is_plural else "s3"), sentence
        assert len(tenses) == 1, f"two tenses in {sentence!r}"
        if "yesterday" in sentence:
            assert tenses == {"past"}, sentence
        if " often " in sentence:
            assert tenses == {"present"}, sentence
        words = sentence.split()
        for w, nxt in zip(words, words[1:]):
            if w in ("a", "an"):
                assert (w == "an") == (nxt[0] in "aeiou"), sentence


def test_objects_fit_their_verbs():
    # "eat" takes food; "hold" and "want" take things or food; "watch", "follow", "chase" animate objects
    allowed = {"eat": set(text.FOOD), "hold": set(text.THINGS) | set(text.FOOD),
               "want": set(text.THINGS) | set(text.FOOD),
               "watch": set(text.ANIMALS) | set(text.PEOPLE), "chase": set(text.ANIMALS) | set(text.PEOPLE)}
    to_base = {f: b for b, (s3, past, _) in text.VERBS.items() for f in (b, s3, past)}
    to_singular = {p: s for s, p in text.NOUNS.items()} | {s: s for s in text.NOUNS}
    checked = 0
    for sentence in load_sentences("train", limit=5_000):
        for clause in sentence[:-2].removesuffix(" yesterday").split(" and "):
            _, _, verb, rest = _parse_clause(clause.split())
            base = to_base[verb]
            if base in allowed:
                obj = next(to_singular[w] for w in rest if w in to_singular)
                assert obj in allowed[base], sentence
                checked += 1
    assert checked > 1_000


def test_the_corpus_is_varied():
    sentences = load_sentences("train")
    n = len(sentences)

    def share(pred):
        return sum(map(pred, sentences)) / n

    adjectives = set(text.SIZE_ADJECTIVES) | set(text.COLOUR_ADJECTIVES)
    places = {f"{p} the" for p in text.PREPOSITIONS}
    assert 0.1 < share(lambda s: " and " in s) < 0.3
    assert 0.3 < share(lambda s: any(w in adjectives for w in s.split())) < 0.8
    assert 0.2 < share(lambda s: any(p in s for p in places)) < 0.8
    assert 0.3 < share(lambda s: any(w in set(text.NOUNS.values()) for w in s.split())) < 0.8
    assert 0.05 < share(lambda s: "yesterday" in s) < 0.2


@pytest.mark.parametrize("call, match", [
    (lambda: text.grammar_sentences(-1), "n must be a non-negative int"),
    (lambda: text.grammar_sentences(2.0), "n must be a non-negative int"),
    (lambda: text.grammar_sentences(3, seed=-2), "seed must be a non-negative int"),
    (lambda: load_sentences("valid"), "split must be 'train' or 'test'"),
    (lambda: load_sentences("test", limit=2_001), "larger than the 2000 examples"),
])
def test_text_arguments_are_checked(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_package_exports():
    import vae_core.data as data

    for name in ("molecules", "text", "load_smiles", "load_sentences"):
        assert name in data.__all__ and hasattr(data, name)
    assert re.search(r"MOSES", data.__doc__) and "load_sentences" in data.__doc__
