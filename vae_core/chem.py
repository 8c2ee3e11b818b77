"""Molecules for lesson 12: RDKit and SELFIES helpers, and the MOSES metrics of a generator.

A sequence VAE on SMILES writes strings; most questions about them go through RDKit:

- :func:`canonical`, :func:`is_valid`: RDKit's canonical SMILES of a string (``None`` when it
  does not parse). Two spellings of one molecule, ``"OCC"`` and ``"CCO"``, share one canonical
  form, so every comparison below is between canonical forms, never raw strings.
- :func:`validity`, :func:`uniqueness`, :func:`novelty`, :func:`summary`: the MOSES figures
  (Polykovskiy et al. 2020) of a list of generated strings, and :func:`reconstruction_accuracy`
  of an autoencoder.
- :func:`to_selfies`, :func:`from_selfies`: SELFIES (Krenn et al. 2020), a spelling in which every
  string of symbols decodes to some molecule; wrappers around the ``selfies`` package.
- :func:`draw_grid`, :func:`show_grid`: molecules drawn in a grid (a PIL image, or on matplotlib axes).
- :func:`quiet_rdkit`: RDKit prints a parse error to stderr for every invalid string, which
  buries a notebook under thousands of lines when a young model samples; every function here
  parses inside this context manager, and you can use it around your own RDKit calls.

    from vae_core import chem
    from vae_core.data import load_smiles
    train_set = chem.canonical_set(load_smiles("train"))   # once: ~10 s for 50,000 on one core
    chem.summary(generated, train_set)   # {'validity': ..., 'uniqueness': ..., 'novelty': ...}

RDKit and selfies are imported inside the functions: ``import vae_core`` (and
``import vae_core.chem``) imports neither.
"""
from __future__ import annotations

import contextlib
import io
from typing import Iterable, Iterator, Sequence

__all__ = ["quiet_rdkit", "canonical", "is_valid", "canonical_set", "validity", "uniqueness",
           "novelty", "reconstruction_accuracy", "summary", "to_selfies", "from_selfies",
           "draw_grid", "show_grid", "INVALID_LEGEND"]

INVALID_LEGEND = "invalid"


# ---------------------------------------------------------------- RDKit's logger

@contextlib.contextmanager
def quiet_rdkit() -> Iterator[None]:
    """Silence RDKit's log (parse errors, warnings) inside the ``with`` block; restore it afterwards.

    RDKit writes its messages from C++ straight to the process's stderr, so ``contextlib``'s
    stream redirection cannot catch them; this switches RDKit's own channels off
    (``RDLogger.DisableLog("rdApp.*")``) and, on leaving, puts each channel (debug, info,
    warning, error) back the way it was, also when the block raises. Nesting is fine.

        with quiet_rdkit():
            mol = Chem.MolFromSmiles("C1CC")   # None, and nothing printed
    """
    from rdkit import RDLogger, rdBase

    before = _log_status(rdBase.LogStatus())
    RDLogger.DisableLog("rdApp.*")
    try:
        yield
    finally:
        for channel, enabled in before.items():
            (RDLogger.EnableLog if enabled else RDLogger.DisableLog)(channel)


def _log_status(status: str) -> dict[str, bool]:
    """``"rdApp.error:enabled\\n..."`` (``rdBase.LogStatus()``) -> ``{"rdApp.error": True, ...}``."""
    channels = {}
    for line in status.splitlines():
        name, _, state = line.strip().rpartition(":")
        if name:
            channels[name] = state == "enabled"
    return channels


# ---------------------------------------------------------------- input checks

def _check_smiles(smiles: object, name: str = "smiles") -> str:
    if not isinstance(smiles, str):
        raise TypeError(f"{name} must be a SMILES string (str), got {type(smiles).__name__}: {smiles!r}")
    return smiles


def _check_list(strings: object, name: str, allow_empty: bool = False, what: str = "SMILES string") -> list[str]:
    """A list of str from a list, tuple or other ordered iterable of str.

    A lone str (a common slip) is refused rather than read as a list of characters; so are sets
    and dicts, whose order is arbitrary.
    """
    if isinstance(strings, (str, bytes)):
        raise TypeError(f"{name} must be a list of {what}s, got a single {type(strings).__name__} "
                        f"{strings[:40]!r}; wrap it in a list: [{strings[:40]!r}]")
    if isinstance(strings, (set, frozenset, dict)) or not isinstance(strings, Iterable):
        raise TypeError(f"{name} must be a list (or tuple) of {what}s, got {type(strings).__name__}")
    out = list(strings)
    for i, s in enumerate(out):
        if not isinstance(s, str):
            raise TypeError(f"{name}[{i}] must be a {what} (str), got {type(s).__name__}: {s!r}")
    if not out and not allow_empty:
        raise ValueError(f"{name} is empty: expected at least one {what}")
    return out


# ---------------------------------------------------------------- parsing

def _mol(smiles: str):
    """RDKit molecule of ``smiles`` or ``None`` (call inside :func:`quiet_rdkit`)."""
    from rdkit import Chem

    # RDKit reads anything after a space as the molecule's name ("CCO junk" parses as ethanol);
    # a generated string with whitespace is not a SMILES, so it is invalid here.
    if not smiles or any(c.isspace() for c in smiles):
        return None
    mol = Chem.MolFromSmiles(smiles)
    if mol is None or mol.GetNumAtoms() == 0:
        return None
    return mol


def _canonical(smiles: str) -> str | None:
    from rdkit import Chem

    mol = _mol(smiles)
    return None if mol is None else Chem.MolToSmiles(mol)


def _canonical_list(strings: list[str]) -> list[str | None]:
    with quiet_rdkit():
        return [_canonical(s) for s in strings]


def canonical(smiles: str) -> str | None:
    """RDKit's canonical SMILES of ``smiles``, or ``None`` when it is not a valid SMILES.

    Invalid means: RDKit cannot parse or sanitize it (``"C1CC"``: unclosed ring, ``"C(C"``,
    ``"c1cccc1"``: no Kekule form), it is empty, or it contains whitespace (RDKit would read the
    rest as a name). Nothing is printed for an invalid string. ``canonical("OCC") == "CCO"``.
    """
    _check_smiles(smiles)
    with quiet_rdkit():
        return _canonical(smiles)


def is_valid(smiles: str) -> bool:
    """Whether RDKit parses ``smiles`` into a molecule (see :func:`canonical`; ``""`` is invalid)."""
    return canonical(smiles) is not None


def canonical_set(smiles_list: Sequence[str]) -> set[str]:
    """The set of canonical SMILES of the valid strings in ``smiles_list`` (invalid ones are skipped).

    Build it once for the training set and pass it to :func:`novelty` / :func:`summary`:
    canonicalizing the 50,000 shipped training molecules takes about 10 s on one CPU core.
    """
    return {c for c in _canonical_list(_check_list(smiles_list, "smiles_list", allow_empty=True)) if c is not None}


# ---------------------------------------------------------------- MOSES metrics

def _figures(canon: list[str | None], train_set: set[str] | None) -> dict[str, float]:
    valid = [c for c in canon if c is not None]
    unique = set(valid)
    out = {"validity": len(valid) / len(canon),
           "uniqueness": len(unique) / len(valid) if valid else 0.0}
    if train_set is not None:
        out["novelty"] = len(unique - train_set) / len(unique) if unique else 0.0
    return out


def _train_set(train: object) -> set[str]:
    if isinstance(train, (set, frozenset)):
        for s in train:
            _check_smiles(s, "every element of train")
        return set(train)  # taken as canonical already (as canonical_set returns it)
    return canonical_set(_check_list(train, "train", allow_empty=True))


def validity(samples: Sequence[str]) -> float:
    """Fraction of ``samples`` that are valid SMILES (see :func:`canonical`).

    ``samples`` is a non-empty list of strings, e.g. a generator's output. Duplicates count
    every time: ``validity(["CCO", "CCO", "C1CC"]) == 2 / 3``.
    """
    return _figures(_canonical_list(_check_list(samples, "samples")), None)["validity"]


def uniqueness(samples: Sequence[str]) -> float:
    """Number of distinct molecules among the valid samples / number of valid samples.

    Distinct means distinct canonical SMILES, so ``["CCO", "OCC", "C(C)O"]`` holds one molecule
    (uniqueness 1/3). Invalid samples are left out of both counts. When no sample is valid the
    ratio is undefined; this returns ``0.0`` then (a generator that makes nothing valid makes
    nothing unique either), so check :func:`validity` next to it.
    """
    return _figures(_canonical_list(_check_list(samples, "samples")), None)["uniqueness"]


def novelty(samples: Sequence[str], train: Sequence[str] | set[str]) -> float:
    """Fraction of the distinct valid molecules in ``samples`` that are not in the training set.

    train: the training SMILES as a list (canonicalized here, which costs time), or a ``set``
           of canonical SMILES as returned by :func:`canonical_set` (taken as is: a set of
           non-canonical spellings would make known molecules look new).

    Counted over distinct canonical forms (MOSES's definition): generating one training
    molecule ten times lowers uniqueness, not novelty. Returns ``0.0`` when no sample is valid.
    """
    train_set = _train_set(train)
    return _figures(_canonical_list(_check_list(samples, "samples")), train_set)["novelty"]


def summary(samples: Sequence[str], train_set: Sequence[str] | set[str]) -> dict[str, float]:
    """``{"validity", "uniqueness", "novelty"}`` of ``samples``, each string parsed only once.

    The same figures as :func:`validity`, :func:`uniqueness` and :func:`novelty` (see them for
    the definitions and the ``0.0`` when nothing is valid). ``train_set`` is preferably the
    :func:`canonical_set` of the training SMILES; a list is canonicalized here.
    """
    train = _train_set(train_set)
    return _figures(_canonical_list(_check_list(samples, "samples")), train)


def reconstruction_accuracy(inputs: Sequence[str], outputs: Sequence[str]) -> float:
    """Fraction of pairs where ``outputs[i]`` is valid and the same molecule as ``inputs[i]``.

    Same molecule means equal canonical SMILES, so a model that encodes ``"OCC"`` and decodes
    ``"CCO"`` reconstructed it. ``inputs`` must all be valid (they are the data); raises
    ``ValueError`` naming the first one that is not, or when the two lists differ in length.
    """
    inputs = _check_list(inputs, "inputs")
    outputs = _check_list(outputs, "outputs", allow_empty=True)
    if len(inputs) != len(outputs):
        raise ValueError(f"inputs and outputs must pair up one to one, got {len(inputs)} inputs "
                         f"and {len(outputs)} outputs")
    canon_in = _canonical_list(inputs)
    bad = next((i for i, c in enumerate(canon_in) if c is None), None)
    if bad is not None:
        raise ValueError(f"inputs[{bad}] = {inputs[bad]!r} is not a valid SMILES; the inputs are the "
                         f"molecules that were encoded and must all parse (check with is_valid)")
    canon_out = _canonical_list(outputs)
    return sum(o is not None and o == i for i, o in zip(canon_in, canon_out)) / len(inputs)


# ---------------------------------------------------------------- SELFIES

def to_selfies(smiles: str) -> str:
    """The SELFIES string of a valid SMILES, e.g. ``"CCO"`` -> ``"[C][C][O]"`` (``selfies.encoder``).

    Raises ``ValueError`` when ``smiles`` is empty or ``selfies`` cannot encode it (not a valid
    SMILES, or a molecule outside SELFIES's default valence rules, such as a hypervalent atom).
    """
    import selfies as sf

    _check_smiles(smiles)
    if not smiles:
        raise ValueError("cannot encode an empty string as SELFIES: expected a valid SMILES such as 'CCO'")
    try:
        return sf.encoder(smiles)
    except sf.EncoderError as err:
        reason = str(err).strip().splitlines()[0]
        raise ValueError(f"cannot encode {smiles!r} as SELFIES ({reason}); expected a valid SMILES "
                         f"(check it with is_valid) whose atoms keep their usual valences") from err


def from_selfies(selfies: str) -> str:
    """The SMILES that a SELFIES string decodes to (``selfies.decoder``); not canonical, see :func:`canonical`.

    Any string of symbols from the data's alphabet (``selfies.get_alphabet_from_selfies`` of the
    encoded training set) decodes to a molecule RDKit accepts, which is why a VAE generating
    SELFIES tokens reaches validity 1. Two exceptions: a string with no atom symbols (``""``,
    ``"[nop]"``) decodes to ``""``, which :func:`is_valid` calls invalid; and SELFIES's default
    valence rules let a charged carbon take five bonds, which RDKit refuses, so symbols such as
    ``[#C+1]`` from ``selfies.get_semantic_robust_alphabet()`` can decode to invalid SMILES
    (``"[C][#C+1][C]"`` -> ``"C#[C+1]C"``). The shipped MOSES molecules hold no charged atom.

    Raises ``ValueError`` for a malformed string (an unclosed ``[``, an unknown symbol such as ``[Xx]``).
    """
    import selfies as sf

    if not isinstance(selfies, str):
        raise TypeError(f"selfies must be a SELFIES string (str), got {type(selfies).__name__}: {selfies!r}")
    try:
        return sf.decoder(selfies)
    except sf.DecoderError as err:
        reason = str(err).strip().splitlines()[0]
        raise ValueError(f"cannot decode {selfies!r} ({reason}); expected SELFIES symbols in square "
                         f"brackets such as '[C][C][O]' (see selfies.get_semantic_robust_alphabet())") from err


# ---------------------------------------------------------------- drawing

def draw_grid(smiles: Sequence[str], legends: Sequence[str] | None = None, n_cols: int = 5,
              size: int = 200):
    """The molecules drawn in a grid: a PIL image of ``min(n_cols, n) * size`` by ``rows * size`` pixels.

    smiles:  list of SMILES strings; an invalid one leaves its cell empty, labelled ``"invalid"``
             (or ``"<legend> (invalid)"`` when a legend is given).
    legends: optional list of captions, one per molecule.
    n_cols:  molecules per row (fewer when there are fewer molecules); ``size``: pixels per cell.

    Uses ``rdkit.Chem.Draw.MolsToGridImage``; the result is a PIL image also in a notebook where
    ``rdkit.Chem.Draw.IPythonConsole`` is loaded (which would otherwise turn it into an IPython
    display object). Show it in a notebook as the cell's last expression, or with :func:`show_grid`.
    """
    from PIL import Image
    from rdkit import Chem
    from rdkit.Chem import Draw

    smiles = _check_list(smiles, "smiles")
    for name, value, low in (("n_cols", n_cols, 1), ("size", size, 20)):
        if not isinstance(value, int) or isinstance(value, bool) or value < low:
            raise ValueError(f"{name} must be an int >= {low}, got {value!r}")
    if legends is None:
        captions = [""] * len(smiles)
    else:
        captions = _check_list(legends, "legends", allow_empty=True, what="caption")
        if len(captions) != len(smiles):
            raise ValueError(f"legends must have one caption per molecule: got {len(captions)} legends "
                             f"for {len(smiles)} SMILES")
    mols = []
    with quiet_rdkit():
        for i, s in enumerate(smiles):
            mol = _mol(s)
            if mol is None:
                mol = Chem.Mol()  # an empty molecule: an empty cell
                captions[i] = f"{captions[i]} ({INVALID_LEGEND})" if captions[i] else INVALID_LEGEND
            mols.append(mol)
        result = Draw.MolsToGridImage(mols, molsPerRow=min(n_cols, len(mols)), subImgSize=(size, size),
                                      legends=captions, returnPNG=True, useSVG=False)
    png = result if isinstance(result, bytes) else getattr(result, "data", None)
    if not isinstance(png, bytes):
        raise RuntimeError(f"rdkit.Chem.Draw.MolsToGridImage returned {type(result).__name__}, expected PNG "
                           f"bytes; is an interactive RDKit renderer switched on in this notebook?")
    image = Image.open(io.BytesIO(png))
    image.load()
    return image


def show_grid(smiles: Sequence[str], legends: Sequence[str] | None = None, n_cols: int = 5,
              size: int = 200, ax=None):
    """:func:`draw_grid` on matplotlib axes (axis off); returns the ``Axes``.

    ax: axes to draw into; ``None`` makes a new pyplot figure of the image's size (at 100 dpi),
        which a notebook shows at the end of the cell like any pyplot figure (in a loop, close
        it with ``plt.close(ax.figure)``).
    """
    import numpy as np

    image = draw_grid(smiles, legends=legends, n_cols=n_cols, size=size)
    if ax is None:
        import matplotlib.pyplot as plt

        _, ax = plt.subplots(figsize=(image.width / 100, image.height / 100), dpi=100)
    else:
        from matplotlib.axes import Axes

        if not isinstance(ax, Axes):
            raise TypeError(f"ax must be matplotlib Axes or None, got {type(ax).__name__}")
    ax.imshow(np.asarray(image))
    ax.set_axis_off()
    return ax
