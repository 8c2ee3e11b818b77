"""Tests for vae_core.chem: canonical SMILES, the MOSES metrics, SELFIES, drawing, RDKit's logger.

The expected metric values are counted by hand in the comments next to each list.
"""
from __future__ import annotations

import math
import random
import subprocess
import sys

import numpy as np
import pytest

from vae_core import chem
from vae_core.data import load_smiles

# eight samples: five valid spelling two molecules (ethanol three ways, benzene twice), three invalid
SAMPLES = [
    "CCO",          # ethanol
    "OCC",          # ethanol again, another spelling
    "C1CC",         # invalid: ring 1 never closed
    "c1ccccc1",     # benzene
    "C1=CC=CC=C1",  # benzene, Kekule spelling
    "C(",           # invalid: unclosed branch
    "C(C)O",        # ethanol a third time
    "",             # invalid: empty
]


# ---------------------------------------------------------------- canonical forms

def test_canonical_forms_and_validity():
    assert chem.canonical("OCC") == chem.canonical("CCO") == chem.canonical("C(C)O") == "CCO"
    assert chem.canonical("C1=CC=CC=C1") == "c1ccccc1"
    for bad in ("C1CC", "C(", "", "c1cccc1", "CCO junk", "."):
        assert chem.canonical(bad) is None, bad
        assert chem.is_valid(bad) is False, bad
    assert chem.is_valid("CCO") is True
    assert chem.canonical("CCO.O") == "CCO.O"  # two fragments: still one valid SMILES, as in MOSES


def test_canonical_set_skips_invalid_strings():
    assert chem.canonical_set(SAMPLES) == {"CCO", "c1ccccc1"}
    assert chem.canonical_set([]) == set()


# ---------------------------------------------------------------- MOSES metrics

def test_validity_counts_every_sample():
    assert chem.validity(SAMPLES) == 5 / 8
    assert chem.validity(["CCO", "CCO", "C1CC"]) == 2 / 3  # duplicates count every time
    assert chem.validity(("CCO",)) == 1.0


def test_uniqueness_compares_canonical_forms():
    assert chem.uniqueness(SAMPLES) == 2 / 5  # 2 molecules among 5 valid samples
    assert chem.uniqueness(["CCO", "OCC", "C(C)O"]) == 1 / 3
    assert chem.uniqueness(["CCO", "CCN", "CCC"]) == 1.0
    assert chem.uniqueness(["C1CC", "C("]) == 0.0  # nothing valid: documented 0.0, not nan


def test_novelty_against_a_tiny_training_set():
    train = ["OCC", "CC(=O)O"]  # ethanol (spelled another way) and acetic acid
    assert chem.novelty(SAMPLES, train) == 1 / 2  # of {ethanol, benzene} only benzene is new
    assert chem.novelty(["CCO", "CCO", "CCO", "CCN"], train) == 1 / 2  # repeats do not count twice
    assert chem.novelty(["c1ccccc1"], []) == 1.0
    assert chem.novelty(["CC(O)=O"], train) == 0.0
    assert chem.novelty(["C("], train) == 0.0  # nothing valid


def test_novelty_accepts_a_precomputed_canonical_set():
    train = ["OCC", "CC(=O)O"]
    train_set = chem.canonical_set(train)
    assert train_set == {"CCO", "CC(=O)O"}
    assert chem.novelty(SAMPLES, train_set) == chem.novelty(SAMPLES, train) == 1 / 2
    assert chem.novelty(SAMPLES, frozenset(train_set)) == 1 / 2
    # a set is taken as canonical already (documented): a non-canonical spelling is not recognised
    assert chem.novelty(["CCO"], {"OCC"}) == 1.0


def test_summary_holds_the_three_figures():
    s = chem.summary(SAMPLES, chem.canonical_set(["OCC"]))
    assert s == {"validity": 5 / 8, "uniqueness": 2 / 5, "novelty": 1 / 2}
    assert chem.summary(SAMPLES, ["OCC"]) == s
    assert chem.summary(["C(", ""], set()) == {"validity": 0.0, "uniqueness": 0.0, "novelty": 0.0}


def test_metrics_parse_each_sample_once_in_summary(monkeypatch):
    calls = []
    real = chem._canonical
    monkeypatch.setattr(chem, "_canonical", lambda s: calls.append(s) or real(s))
    chem.summary(SAMPLES, {"CCO"})
    assert sorted(calls) == sorted(SAMPLES)


def test_reconstruction_accuracy():
    inputs = ["CCO", "c1ccccc1", "CCN", "CC(=O)O"]
    outputs = ["OCC",          # same molecule, another spelling: counts
               "C1=CC=CC=C1",  # same molecule, Kekule: counts
               "CCC",          # another molecule
               "C("]           # invalid
    assert chem.reconstruction_accuracy(inputs, outputs) == 2 / 4
    assert chem.reconstruction_accuracy(inputs, inputs) == 1.0
    with pytest.raises(ValueError, match="pair up one to one, got 4 inputs and 3 outputs"):
        chem.reconstruction_accuracy(inputs, outputs[:3])
    with pytest.raises(ValueError, match=r"inputs\[1\] = 'C\(' is not a valid SMILES"):
        chem.reconstruction_accuracy(["CCO", "C("], ["CCO", "CCO"])


@pytest.mark.parametrize("call, error, match", [
    (lambda: chem.validity("CCO"), TypeError, r"got a single str 'CCO'; wrap it in a list: \['CCO'\]"),
    (lambda: chem.uniqueness({"CCO", "CCN"}), TypeError, "must be a list"),
    (lambda: chem.validity(["CCO", None]), TypeError, r"samples\[1\] must be a SMILES string \(str\), got NoneType"),
    (lambda: chem.validity([]), ValueError, "samples is empty"),
    (lambda: chem.novelty(["CCO"], "CCO"), TypeError, "train must be a list"),
    (lambda: chem.summary(["CCO"], {"CCO", 3}), TypeError, "every element of train"),
    (lambda: chem.reconstruction_accuracy("CCO", "CCO"), TypeError, "inputs must be a list"),
    (lambda: chem.canonical(None), TypeError, "smiles must be a SMILES string"),
    (lambda: chem.canonical(b"CCO"), TypeError, "got bytes"),
    (lambda: chem.canonical_set("CCO"), TypeError, "smiles_list must be a list"),
])
def test_inputs_are_checked(call, error, match):
    with pytest.raises(error, match=match):
        call()


# ---------------------------------------------------------------- SELFIES

def test_selfies_round_trip_on_shipped_molecules():
    smiles = load_smiles("test", limit=200)
    for s in smiles:
        encoded = chem.to_selfies(s)
        assert encoded.startswith("[") and encoded.endswith("]")
        assert chem.canonical(chem.from_selfies(encoded)) == chem.canonical(s), s


def test_selfies_examples_and_errors():
    assert chem.to_selfies("CCO") == "[C][C][O]"
    assert chem.from_selfies("[C][C][O]") == "CCO"
    assert chem.from_selfies("[nop]") == "" and not chem.is_valid(chem.from_selfies("[nop]"))
    with pytest.raises(ValueError, match=r"cannot encode 'C\(' as SELFIES"):
        chem.to_selfies("C(")
    with pytest.raises(ValueError, match="cannot encode an empty string"):
        chem.to_selfies("")
    with pytest.raises(ValueError, match=r"cannot decode '\[C\]\[Xx\]' \(invalid symbol"):
        chem.from_selfies("[C][Xx]")
    with pytest.raises(ValueError, match="cannot decode '\\[C\\]\\[O'"):
        chem.from_selfies("[C][O")
    with pytest.raises(TypeError, match="selfies must be a SELFIES string"):
        chem.from_selfies(["[C]"])
    with pytest.raises(TypeError, match="smiles must be a SMILES string"):
        chem.to_selfies(None)


def test_random_selfies_strings_decode_to_valid_molecules():
    # the property that makes SELFIES attractive for a VAE: any string of the data's symbols is a molecule
    import selfies as sf

    alphabet = sorted(sf.get_alphabet_from_selfies(chem.to_selfies(s) for s in load_smiles("train", limit=500)))
    assert "[C]" in alphabet and "[Ring1]" in alphabet and "[Branch1]" in alphabet
    rng = random.Random(0)
    molecules = 0
    for _ in range(300):
        string = "".join(rng.choices(alphabet, k=rng.randint(1, 40)))
        decoded = chem.from_selfies(string)
        # "" only when the string holds no atom symbol (e.g. "[Branch1][Ring1]"), as documented
        assert chem.is_valid(decoded) or (decoded == "" and not any(t in string for t in ("[C]", "[N]", "[O]"))), string
        molecules += decoded != ""
    assert molecules > 280
    # the documented exception: SELFIES lets a charged carbon take five bonds, RDKit does not
    assert chem.from_selfies("[C][#C+1][C]") == "C#[C+1]C" and not chem.is_valid("C#[C+1]C")


# ---------------------------------------------------------------- RDKit's logger

def test_quiet_rdkit_keeps_stderr_clean_and_restores_the_log(capfd):
    from rdkit import Chem

    Chem.MolFromSmiles("C1CC")  # outside: RDKit complains (so the check below can fail)
    assert "SMILES Parse Error" in capfd.readouterr().err
    with chem.quiet_rdkit():
        assert Chem.MolFromSmiles("C1CC") is None
        assert Chem.MolFromSmiles("C(") is None
    assert capfd.readouterr().err == ""
    Chem.MolFromSmiles("C(")  # restored afterwards
    assert "SMILES Parse Error" in capfd.readouterr().err


def test_quiet_rdkit_restores_also_after_an_error_and_keeps_a_disabled_channel_off(capfd):
    from rdkit import Chem, RDLogger

    with pytest.raises(RuntimeError):
        with chem.quiet_rdkit():
            raise RuntimeError("boom")
    Chem.MolFromSmiles("C1CC")
    assert "SMILES Parse Error" in capfd.readouterr().err
    RDLogger.DisableLog("rdApp.error")
    try:
        with chem.quiet_rdkit():
            with chem.quiet_rdkit():  # nested
                pass
        Chem.MolFromSmiles("C1CC")
        assert capfd.readouterr().err == ""  # it was off before, so it stays off
    finally:
        RDLogger.EnableLog("rdApp.error")


def test_helpers_never_print_parse_errors(capfd):
    assert chem.canonical("C1CC") is None
    assert chem.summary(SAMPLES, {"CCO"})["validity"] == 5 / 8
    chem.draw_grid(["C(", "CCO"])
    assert capfd.readouterr().err == ""


# ---------------------------------------------------------------- drawing

def test_draw_grid_size():
    from PIL import Image

    img = chem.draw_grid(["CCO", "c1ccccc1", "CC(=O)O", "CCN", "CCC", "CCCl", "C#N"], n_cols=3, size=100)
    assert isinstance(img, Image.Image) and img.size == (300, 300)  # 3 columns x 3 rows of 100 px
    assert chem.draw_grid(["CCO", "CCN"], n_cols=5, size=150).size == (300, 150)  # fewer than n_cols
    assert chem.draw_grid(["CCO"] * 10).size == (1000, 400)  # defaults: 5 columns of 200 px


def test_draw_grid_leaves_invalid_cells_empty_and_labels_them(monkeypatch):
    from rdkit.Chem import Draw

    seen = {}
    real = Draw.MolsToGridImage

    def spy(mols, **kwargs):
        seen.update(kwargs, n_atoms=[m.GetNumAtoms() for m in mols])
        return real(mols, **kwargs)

    monkeypatch.setattr(Draw, "MolsToGridImage", spy)
    img = np.asarray(chem.draw_grid(["c1ccccc1", "C1CC", "CCO"], legends=["a", "b", ""], n_cols=3, size=200))
    assert seen["legends"] == ["a", "b (invalid)", ""]
    assert seen["n_atoms"] == [6, 0, 3]
    chem.draw_grid(["C("])
    assert seen["legends"] == ["invalid"]
    # the drawing area (above the legend) of the invalid cell is blank; the benzene cell is not
    ink = (img[:150, :, :3] < 200).any(axis=2)
    assert ink[:, 200:400].sum() == 0 and ink[:, :200].sum() > 500


def test_draw_grid_returns_a_pil_image_even_with_rdkits_notebook_renderer():
    from PIL import Image
    from rdkit.Chem.Draw import IPythonConsole  # replaces Draw.MolsToGridImage by an IPython display

    try:
        assert isinstance(chem.draw_grid(["CCO", "CCN"], size=120), Image.Image)
    finally:
        IPythonConsole.UninstallIPythonRenderer()


@pytest.mark.parametrize("kwargs, error, match", [
    ({"smiles": "CCO"}, TypeError, "wrap it in a list"),
    ({"smiles": []}, ValueError, "smiles is empty"),
    ({"smiles": ["CCO"], "legends": ["a", "b"]}, ValueError, "got 2 legends for 1 SMILES"),
    ({"smiles": ["CCO"], "legends": "a"}, TypeError, "legends must be a list of captions"),
    ({"smiles": ["CCO"], "n_cols": 0}, ValueError, "n_cols must be an int >= 1, got 0"),
    ({"smiles": ["CCO"], "size": 10.5}, ValueError, "size must be an int >= 20"),
])
def test_draw_grid_checks_its_arguments(kwargs, error, match):
    with pytest.raises(error, match=match):
        chem.draw_grid(**kwargs)


def test_show_grid_draws_on_axes():
    import matplotlib.pyplot as plt
    from matplotlib.figure import Figure

    ax = Figure().add_subplot()
    assert chem.show_grid(["CCO", "C("], n_cols=2, size=100, ax=ax) is ax
    assert not ax.axison and ax.images[0].get_array().shape[:2] == (100, 200)
    new = chem.show_grid(["CCO"], size=120)
    try:
        assert new.figure.get_size_inches().tolist() == [1.2, 1.2] and not new.axison
    finally:
        plt.close(new.figure)
    with pytest.raises(TypeError, match="ax must be matplotlib Axes"):
        chem.show_grid(["CCO"], ax="left")


# ---------------------------------------------------------------- imports

def test_importing_vae_core_does_not_import_rdkit_or_selfies():
    code = ("import sys, vae_core, vae_core.chem, vae_core.data; "
            "print('rdkit' in sys.modules, 'selfies' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False False"


def test_metrics_are_fractions():
    smiles = load_smiles("test", limit=50)
    for value in chem.summary(smiles + ["C("], smiles[:10]).values():
        assert 0.0 <= value <= 1.0 and not math.isnan(value)
    assert chem.summary(smiles, smiles[:10]) == {"validity": 1.0, "uniqueness": 1.0, "novelty": 40 / 50}
