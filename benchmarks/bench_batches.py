"""Samples per second: ``vae_core.data.Batches`` vs ``DataLoader(TensorDataset(...))``.

Both iterate over the same in-memory MNIST tensors with shuffling, batch size 128, on the CPU.
A DataLoader calls ``__getitem__`` once per example and collates the list in Python; Batches
does one gather per batch. Each loader gets one untimed warm-up epoch, then the median of
``--repeats`` timed epochs is reported (no training step, only fetching batches).

    OMP_NUM_THREADS=1 python benchmarks/bench_batches.py            # full 60k MNIST
    OMP_NUM_THREADS=1 python benchmarks/bench_batches.py --limit 10000 --repeats 3
"""
from __future__ import annotations

import argparse
import platform
import statistics
import time

import torch
from torch.utils.data import DataLoader, TensorDataset

from vae_core.data import Batches, load_mnist


def epoch_seconds(loader, repeats: int) -> float:
    for _ in loader:  # warm-up epoch
        pass
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        for _batch in loader:
            pass
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limit", type=int, default=None, help="first n MNIST training images (default all)")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()

    ds = load_mnist("train", limit=args.limit)
    n, bs = len(ds), args.batch_size
    loaders = {
        "DataLoader(TensorDataset), shuffle": DataLoader(
            TensorDataset(ds.images, ds.labels), batch_size=bs, shuffle=True,
            generator=torch.Generator().manual_seed(0)),
        "Batches, shuffle": Batches(ds.images, ds.labels, batch_size=bs, shuffle=True, seed=0),
        "Batches, shuffle + dynamic binarization": Batches(
            ds.images, ds.labels, batch_size=bs, shuffle=True, binarize="dynamic", seed=0),
    }
    print(f"torch {torch.__version__}, {platform.processor() or platform.machine()}, "
          f"threads {torch.get_num_threads()}, n={n}, batch_size={bs}, median of {args.repeats} epochs")
    base = None
    for name, loader in loaders.items():
        sec = epoch_seconds(loader, args.repeats)
        rate = n / sec
        base = base or rate
        print(f"{name:42s} {sec:8.3f} s/epoch {rate:12,.0f} samples/s  x{rate / base:6.1f}")


if __name__ == "__main__":
    main()
