"""One-off conversion of the MOSES SMILES into the subsets shipped in vae_core/data/files/.

Run once by a maintainer; the course never downloads anything at run time.

Source: the wheel of the PyPI package ``molsets`` (0.3.1, the MOSES benchmark, MIT licence)
carries ``moses/dataset/data/train.csv.gz`` (1,584,663 molecules) and ``test.csv.gz`` (176,074),
each a one-column CSV with the header ``SMILES``. This script

1. checks the wheel's SHA-256 (``WHEEL_SHA256``) and both CSV members against the wheel's
   own ``RECORD``;
2. reads the two CSVs straight from the zip and checks every string: non-empty, ASCII, no
   whitespace, no duplicates within a split;
3. draws a fixed subset, ``rng = numpy.random.default_rng(0)``, then
   ``rng.choice(n_train, 50_000, replace=False)`` and, from the same generator,
   ``rng.choice(n_test, 5_000, replace=False)``, keeping the molecules in the order drawn;
4. parses every drawn SMILES with RDKit and refuses the subset if any fails;
5. writes ``moses_train.smi.gz`` / ``moses_test.smi.gz`` (one SMILES per line, gzip with
   ``mtime=0`` and no file name, so the bytes are reproducible), ``MOSES_LICENSE.txt``,
   ``MOSES_SHA256SUMS.json``, and rewrites the ``# MOSES SMILES`` section at the end of
   ``PROVENANCE.md`` (everything from that heading on; the MNIST part above is left as it is).

    pip download molsets==0.3.1 --no-deps -d /tmp/molsets
    python scripts/convert_moses.py /tmp/molsets/molsets-0.3.1-py3-none-any.whl

The MNIST checksums stay in ``SHA256SUMS.json``; this script never touches that file.
"""
from __future__ import annotations

import argparse
import base64
import csv
import gzip
import hashlib
import io
import json
import statistics
import sys
import time
import zipfile
from pathlib import Path

import numpy as np

OUT = Path(__file__).resolve().parents[1] / "vae_core" / "data" / "files"
WHEEL_NAME = "molsets-0.3.1-py3-none-any.whl"
WHEEL_VERSION = "0.3.1"
# the wheel this conversion was made from (PROVENANCE.md); another file would give other bytes
WHEEL_SHA256 = "7f4450e3ebecebe79c3a2a55950c93daddee071120daf64a163d03481e811d34"
MEMBERS = {"train": "moses/dataset/data/train.csv.gz", "test": "moses/dataset/data/test.csv.gz"}
LICENSE_MEMBER = "molsets-0.3.1.dist-info/LICENSE"
RECORD_MEMBER = "molsets-0.3.1.dist-info/RECORD"
SIZES = {"train": 50_000, "test": 5_000}
SEED = 0
SUMS_FILE = "MOSES_SHA256SUMS.json"
LICENSE_FILE = "MOSES_LICENSE.txt"
PROVENANCE = "PROVENANCE.md"
SECTION = "# MOSES SMILES"


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def check_against_record(wheel: zipfile.ZipFile, member: str, data: bytes) -> None:
    """Refuse ``member`` unless its bytes match the hash and size the wheel's RECORD lists."""
    record = wheel.read(RECORD_MEMBER).decode("utf-8")
    row = next((r for r in csv.reader(io.StringIO(record)) if r and r[0] == member), None)
    if row is None:
        raise ValueError(f"{member} is not listed in the wheel's {RECORD_MEMBER}")
    algo, _, digest = row[1].partition("=")
    got = base64.urlsafe_b64encode(hashlib.new(algo, data).digest()).rstrip(b"=").decode()
    if got != digest or int(row[2]) != len(data):
        raise ValueError(f"{member}: {algo} {got} / {len(data)} bytes, but RECORD says {digest} / {row[2]}")


def read_smiles_csv(wheel: zipfile.ZipFile, member: str) -> list[str]:
    """Every SMILES of one CSV member, checked: non-empty ASCII without whitespace, no duplicates."""
    raw = wheel.read(member)
    check_against_record(wheel, member, raw)
    text = gzip.decompress(raw).decode("ascii")  # a non-ASCII byte anywhere fails here
    rows = csv.reader(io.StringIO(text))
    header = next(rows)
    if "SMILES" not in header:
        raise ValueError(f"{member}: expected a SMILES column, header is {header}")
    col = header.index("SMILES")
    smiles = [row[col] for row in rows]
    for i, s in enumerate(smiles):
        if not s or not s.isascii() or any(c.isspace() for c in s):
            raise ValueError(f"{member} row {i + 2}: {s!r} is not a non-empty ASCII string without whitespace")
    if len(set(smiles)) != len(smiles):
        raise ValueError(f"{member}: {len(smiles) - len(set(smiles))} duplicated SMILES")
    return smiles


def write_gz(path: Path, lines: list[str]) -> bytes:
    """One string per line, gzipped reproducibly (mtime 0, no file name in the header)."""
    buf = io.BytesIO()
    with gzip.GzipFile(filename="", fileobj=buf, mode="wb", mtime=0, compresslevel=9) as g:
        g.write(("\n".join(lines) + "\n").encode("ascii"))
    path.write_bytes(buf.getvalue())
    return buf.getvalue()


def rdkit_check(smiles: list[str]) -> dict[str, object]:
    """Parse every string with RDKit (errors silenced); return counts and timing."""
    from rdkit import Chem, RDLogger

    RDLogger.DisableLog("rdApp.*")
    t0 = time.perf_counter()
    canon = []
    bad = []
    for s in smiles:
        mol = Chem.MolFromSmiles(s)
        if mol is None or mol.GetNumAtoms() == 0:
            bad.append(s)
            continue
        canon.append(Chem.MolToSmiles(mol))
    seconds = time.perf_counter() - t0
    RDLogger.EnableLog("rdApp.*")
    changed = [s for c, s in zip(canon, smiles) if c != s] if not bad else None
    return {"bad": bad, "seconds": seconds, "changed": changed, "canonical": canon}


def length_stats(smiles: list[str]) -> tuple[int, float, int]:
    lengths = [len(s) for s in smiles]
    return min(lengths), statistics.fmean(lengths), max(lengths)


def provenance_section(info: dict) -> str:
    """The Markdown section appended to PROVENANCE.md (regenerated on every run)."""
    rows = "\n".join(
        f"| `{f['file']}` | {f['n']:,} | {f['min']} / {f['mean']:.2f} / {f['max']} | {f['bytes']:,} | `{f['sha256']}` |"
        for f in info["files"])
    alphabet = "".join(sorted(info["alphabet"]))
    changed = info["changed"]
    n_h = sum(s.startswith("[H]N=") for s in changed)
    n_all = SIZES["train"] + SIZES["test"]
    return f"""{SECTION}

| file | SMILES | length min / mean / max (characters) | bytes | SHA-256 (of the `.gz` file) |
|---|---|---|---|---|
{rows}

`{SUMS_FILE}` holds the same checksums (apart from `SHA256SUMS.json`, which lists
only the MNIST files); `vae_core.data.load_smiles` checks them the first time a file is read
in a process and refuses a file that does not match. Each file is a gzip (written with
`mtime=0` and no file name, so conversion is byte-reproducible) of plain ASCII text, one
SMILES per line. The licence travels beside them as `{LICENSE_FILE}`.

## Source

MOSES, the Molecular Sets benchmark: D. Polykovskiy, A. Zhebrak, B. Sanchez-Lengeling,
S. Golovanov, O. Tatanov, S. Belyaev, R. Kurbanov, A. Artamonov, V. Aladinskiy, M. Veselov,
A. Kadurin, S. Johansson, H. Chen, S. Nikolenko, A. Aspuru-Guzik and A. Zhavoronkov,
"Molecular Sets (MOSES): A Benchmarking Platform for Molecular Generation Models",
*Frontiers in Pharmacology* 11:565644 (2020), doi:10.3389/fphar.2020.565644. The molecules
are a filtered subset of the ZINC Clean Leads collection (T. Sterling and J. J. Irwin, "ZINC 15
-- Ligand Discovery for Everyone", *J. Chem. Inf. Model.* 55:2324-2337, 2015). Licence:
**MIT** (Copyright 2018 Insilico Medicine, Inc), as stated in the wheel's
`{LICENSE_MEMBER}`; `{LICENSE_FILE}` is that text with a one-line header.
Please cite the MOSES paper when you reuse these files
(`vae_core.data.molecules.MOSES_CITATION`).

We took the copies inside the wheel of the PyPI package `molsets`, version {WHEEL_VERSION}
(`{WHEEL_NAME}`, SHA-256
`{info['wheel_sha256']}`):
`{MEMBERS['train']}` ({info['full']['train']:,} SMILES) and `{MEMBERS['test']}`
({info['full']['test']:,}), each a CSV with the single column `SMILES`. Both members match the
hashes in the wheel's own `RECORD`.

## Conversion

```
pip download molsets=={WHEEL_VERSION} --no-deps -d /tmp/molsets
python scripts/convert_moses.py /tmp/molsets/{WHEEL_NAME}
```

`scripts/convert_moses.py` reads both CSVs straight from the zip, refuses any string that is
empty, not ASCII or holds whitespace (none did) and any duplicate within a split (none), then
draws the subset with one generator, `rng = numpy.random.default_rng({SEED})`:
`rng.choice({info['full']['train']}, {SIZES['train']}, replace=False)` for train, then
`rng.choice({info['full']['test']}, {SIZES['test']}, replace=False)` for test, keeping the molecules
in the order drawn (so `load_smiles(limit=k)` is itself a random sample). It checks that RDKit
parses every drawn SMILES and writes the two files, `{LICENSE_FILE}`,
`{SUMS_FILE}` and this section (everything from the `{SECTION}` heading to the end
of this file; `SHA256SUMS.json` and the MNIST part above are left alone).

## Checks (reproduced by `tests/test_molecules_data.py`)

- sizes: train {SIZES['train']:,}, test {SIZES['test']:,}; every line non-empty ASCII without
  whitespace; lengths as in the table;
- every one of the {n_all:,} SMILES parses with RDKit {info['rdkit']} ({len(info['bad'])} rejected);
- all but {len(changed)} are already RDKit {info['rdkit']}'s canonical SMILES: {n_h} spell an imine
  hydrogen out (`[H]N=...`) and {len(changed) - n_h} list their atoms in another order (so
  metrics must compare canonical forms, as `vae_core.chem` does);
- train and test are disjoint as strings ({info['overlap_strings']} shared) and as canonical
  SMILES ({info['overlap_canonical']} shared); so are the full MOSES train and test sets
  ({info['overlap_full']} shared strings, checked by the script only);
- the {len(alphabet)} characters used: `{alphabet}`.

If a file is missing or fails its checksum, restore it with `git checkout -- vae_core/data/files`
(in a clone of the course) or reinstall the package.
"""


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("wheel", type=Path, help=f"path to {WHEEL_NAME}")
    args = parser.parse_args(argv)
    wheel_bytes = args.wheel.read_bytes()
    info: dict = {"wheel_sha256": sha256(wheel_bytes), "files": []}
    if info["wheel_sha256"] != WHEEL_SHA256:
        raise ValueError(f"{args.wheel} has SHA-256 {info['wheel_sha256']}, expected {WHEEL_SHA256} "
                         f"({WHEEL_NAME} from PyPI); download it again with "
                         f"`pip download molsets=={WHEEL_VERSION} --no-deps -d DIR`")
    with zipfile.ZipFile(io.BytesIO(wheel_bytes)) as wheel:
        full = {split: read_smiles_csv(wheel, member) for split, member in MEMBERS.items()}
        licence = wheel.read(LICENSE_MEMBER).decode("utf-8")
    if "Permission is hereby granted, free of charge" not in licence:
        raise ValueError(f"{LICENSE_MEMBER} does not look like the MIT licence:\n{licence}")
    info["full"] = {split: len(s) for split, s in full.items()}
    info["overlap_full"] = len(set(full["train"]) & set(full["test"]))

    rng = np.random.default_rng(SEED)
    subset = {}
    for split in ("train", "test"):  # this order: train's draw comes first from the generator
        idx = rng.choice(len(full[split]), SIZES[split], replace=False)
        subset[split] = [full[split][i] for i in idx]

    checks = {split: rdkit_check(s) for split, s in subset.items()}
    bad = checks["train"]["bad"] + checks["test"]["bad"]
    if bad:
        raise ValueError(f"RDKit rejects {len(bad)} drawn SMILES, e.g. {bad[:5]}")
    import rdkit

    info.update(bad=bad, rdkit=rdkit.__version__,
                rdkit_seconds=sum(c["seconds"] for c in checks.values()),
                changed=checks["train"]["changed"] + checks["test"]["changed"])
    info["overlap_strings"] = len(set(subset["train"]) & set(subset["test"]))
    info["overlap_canonical"] = len(set(checks["train"]["canonical"]) & set(checks["test"]["canonical"]))
    info["alphabet"] = set("".join(subset["train"] + subset["test"]))

    OUT.mkdir(parents=True, exist_ok=True)
    sums = {}
    for split in ("train", "test"):
        path = OUT / f"moses_{split}.smi.gz"
        data = write_gz(path, subset[split])
        sums[path.name] = sha256(data)
        lo, mean, hi = length_stats(subset[split])
        info["files"].append({"file": path.name, "n": len(subset[split]), "min": lo, "mean": mean, "max": hi,
                              "bytes": len(data), "sha256": sums[path.name]})
        print(f"{path.name}: {len(subset[split])} SMILES, length {lo} / {mean:.2f} / {hi}, "
              f"{len(data):,} bytes, sha256 {sums[path.name]}, RDKit {checks[split]['seconds']:.2f} s")
    (OUT / SUMS_FILE).write_text(json.dumps(sums, indent=2) + "\n")
    header = (f"# Copied from {LICENSE_MEMBER} in the PyPI wheel {WHEEL_NAME} "
              f"(sha256 {info['wheel_sha256']}); it covers moses_train.smi.gz and moses_test.smi.gz.\n\n")
    (OUT / LICENSE_FILE).write_text(header + licence.rstrip("\n") + "\n")

    prov_path = OUT / PROVENANCE
    text = prov_path.read_text()
    cut = text.find("\n" + SECTION + "\n")
    head = text if cut < 0 else text[:cut + 1]
    prov_path.write_text(head.rstrip("\n") + "\n\n" + provenance_section(info))
    print(f"wheel sha256 {info['wheel_sha256']}; overlaps: full {info['overlap_full']}, "
          f"subset strings {info['overlap_strings']}, canonical {info['overlap_canonical']}; "
          f"{len(info['changed'])} not canonical; alphabet {''.join(sorted(info['alphabet']))}")


if __name__ == "__main__":
    main(sys.argv[1:])
