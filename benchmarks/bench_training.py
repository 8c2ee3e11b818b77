"""Foundation benchmark: vae_core's ``fit`` against the pytorch/examples VAE training loop.

Both runs train the pytorch/examples ``vae/main.py`` model (MLP 784-400-20, Bernoulli decoder,
loss = BCE summed over pixels + analytic KL) on grey MNIST (x = byte / 255, 60k train, 10k test),
Adam lr 1e-3, batch 128, for the same number of epochs, from the *same initial weights* and the
same seed. The only differences are the loops themselves:

- reference: a copy of pytorch/examples ``vae/main.py`` (``train``/``test``/``loss_function``),
  with ``DataLoader(TensorDataset(images, labels), batch_size=128, shuffle=True)`` over the same
  tensors, ``loss.item()`` every batch, the example's default Adam; logging prints and image
  saving left out (they are not training).
- vae_core: ``fit(model, train, test, TrainConfig(...))``.

Reported: training throughput over the training passes only (test passes are not timed), as
images per wall-clock second and per CPU-second of the process (``time.process_time``, which a
busy shared machine disturbs far less than wall time when PyTorch runs one thread), the ratio
vae_core / reference (target >= 1.3), and the test -ELBO per image after the last epoch
(target <= 105.6 nats), measured by each loop's own test pass and, as a cross-check, by
``vae_core.train.evaluate`` on both final models with the same seed.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_training.py   # full: 10 epochs
    .venv/bin/python benchmarks/bench_training.py --quick     # smoke test: 1 epoch on 10k images
    .venv/bin/python benchmarks/bench_training.py --epochs 3

Writes ``benchmarks/results/training.json`` (``--out`` to change). The script leaves PyTorch's
thread count alone (set ``OMP_NUM_THREADS`` outside; it is recorded in the JSON with the load
average). Both loops run in the same process one after the other.
"""
from __future__ import annotations

import argparse
import copy
import datetime as dt
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn, optim
from torch.utils.data import DataLoader, TensorDataset

from vae_core import seed_everything
from vae_core.data import load_mnist
from vae_core.models import VAE, pytorch_examples_config
from vae_core.train import TrainConfig, evaluate, fit

SPEED_TARGET = 1.3  # vae_core images/s over the reference's
NELBO_TARGET = 105.6  # nats per test image after 10 epochs


# ---------------------------------------------------------------------------------------------
# reference: pytorch/examples vae/main.py (model, loss_function, train, test), logging removed


class RefVAE(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(784, 400)
        self.fc21 = nn.Linear(400, 20)
        self.fc22 = nn.Linear(400, 20)
        self.fc3 = nn.Linear(20, 400)
        self.fc4 = nn.Linear(400, 784)

    def encode(self, x):
        h1 = F.relu(self.fc1(x))
        return self.fc21(h1), self.fc22(h1)

    def reparameterize(self, mu, logvar):
        std = torch.exp(0.5 * logvar)
        eps = torch.randn_like(std)
        return mu + eps * std

    def decode(self, z):
        h3 = F.relu(self.fc3(z))
        return torch.sigmoid(self.fc4(h3))

    def forward(self, x):
        mu, logvar = self.encode(x.view(-1, 784))
        z = self.reparameterize(mu, logvar)
        return self.decode(z), mu, logvar


def loss_function(recon_x, x, mu, logvar):
    BCE = F.binary_cross_entropy(recon_x, x.view(-1, 784), reduction="sum")
    KLD = -0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp())
    return BCE + KLD


def ref_train(model, optimizer, train_loader, device):
    model.train()
    train_loss = 0
    for batch_idx, (data, _) in enumerate(train_loader):
        data = data.to(device)
        optimizer.zero_grad()
        recon_batch, mu, logvar = model(data)
        loss = loss_function(recon_batch, data, mu, logvar)
        loss.backward()
        train_loss += loss.item()
        optimizer.step()
    return train_loss / len(train_loader.dataset)


def ref_test(model, test_loader, device):
    model.eval()
    test_loss = 0
    with torch.no_grad():
        for data, _ in test_loader:
            data = data.to(device)
            recon_batch, mu, logvar = model(data)
            test_loss += loss_function(recon_batch, data, mu, logvar).item()
    return test_loss / len(test_loader.dataset)


# ---------------------------------------------------------------------------------------------
# weights shared between the two models

_MAP = {  # RefVAE name -> vae_core VAE name
    "fc1": "encoder.body.0",
    "fc21": "encoder.heads.mu",
    "fc22": "encoder.heads.logvar",
    "fc3": "decoder.body.0",
    "fc4": "decoder.out",
}


def ref_from_vae(vae: VAE) -> RefVAE:
    ref = RefVAE()
    sd = vae.state_dict()
    ref.load_state_dict({f"{r}.{p}": sd[f"{v}.{p}"].clone() for r, v in _MAP.items() for p in ("weight", "bias")})
    return ref


def vae_from_ref(ref: RefVAE) -> VAE:
    vae = VAE(pytorch_examples_config())
    sd = ref.state_dict()
    vae.load_state_dict({f"{v}.{p}": sd[f"{r}.{p}"].clone() for r, v in _MAP.items() for p in ("weight", "bias")})
    return vae


def warm_up(train_images: torch.Tensor, device: torch.device) -> None:
    """A few untimed steps so one-off costs (library loading, kernel selection) hit neither run."""
    m = VAE(pytorch_examples_config()).to(device)
    opt = optim.Adam(m.parameters(), lr=1e-3)
    opt_fused = optim.Adam(m.parameters(), lr=1e-3, fused=True)
    for o in (opt, opt_fused):
        for i in range(5):
            o.zero_grad()
            m.elbo(train_images[i * 128:(i + 1) * 128].to(device)).loss.backward()
            o.step()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--epochs", type=int, default=10, help="epochs for both runs (default 10)")
    ap.add_argument("--quick", action="store_true", help="smoke test: 1 epoch on the first 10k/2k images")
    ap.add_argument("--seed", type=int, default=1, help="seed of the initial weights, shuffling and noise (pytorch/examples uses 1)")
    ap.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "results" / "training.json")
    args = ap.parse_args(argv)
    epochs = 1 if args.quick and "--epochs" not in (argv or sys.argv) else args.epochs
    n_train, n_test = (10_000, 2_000) if args.quick else (None, None)
    batch_size, lr = 128, 1e-3
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")

    train = load_mnist("train", limit=n_train)  # grey values in [0, 1], like transforms.ToTensor()
    test = load_mnist("test", limit=n_test)
    print(f"MNIST train {tuple(train.images.shape)}, test {tuple(test.images.shape)}; {epochs} epochs, "
          f"batch {batch_size}, Adam lr {lr}; device {device}, torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads, {os.cpu_count()} CPUs", flush=True)
    warm_up(train.images, device)

    # the same initial weights for both runs
    seed_everything(args.seed)
    init = VAE(pytorch_examples_config())
    init_state = copy.deepcopy(init.state_dict())

    # --- reference loop -------------------------------------------------------------------
    seed_everything(args.seed)
    ref = ref_from_vae(init).to(device)
    optimizer = optim.Adam(ref.parameters(), lr=lr)
    train_loader = DataLoader(TensorDataset(train.images, train.labels), batch_size=batch_size, shuffle=True)
    test_loader = DataLoader(TensorDataset(test.images, test.labels), batch_size=batch_size, shuffle=False)
    ref_wall, ref_cpu, ref_train_loss = [], [], []
    for epoch in range(1, epochs + 1):
        w0, c0 = time.perf_counter(), time.process_time()
        ref_train_loss.append(ref_train(ref, optimizer, train_loader, device))
        ref_wall.append(time.perf_counter() - w0)
        ref_cpu.append(time.process_time() - c0)
        print(f"reference epoch {epoch}: train loss {ref_train_loss[-1]:.2f} nats/image, "
              f"{len(train) / ref_wall[-1]:,.0f} images/s wall, {len(train) / ref_cpu[-1]:,.0f} per CPU-second", flush=True)
    ref_test_loss = ref_test(ref, test_loader, device)

    # --- vae_core ---------------------------------------------------------------------------
    # No test set inside fit: its per-epoch evaluation is not training; the reference's test
    # passes are outside its timings too. The test -ELBO is measured after the last epoch.
    ours = VAE(pytorch_examples_config())
    ours.load_state_dict(init_state)
    cpu_marks = [time.process_time()]

    def mark_cpu(epoch, model, history):
        cpu_marks.append(time.process_time())
        print(f"vae_core  epoch {epoch}: train loss {-history.train_elbo[-1]:.2f} nats/image, "
              f"{len(train) / history.seconds[-1]:,.0f} images/s wall, "
              f"{len(train) / (cpu_marks[-1] - cpu_marks[-2]):,.0f} per CPU-second", flush=True)

    history = fit(ours, train, None, TrainConfig(epochs=epochs, batch_size=batch_size, lr=lr, seed=args.seed, progress=False),
                  callbacks=[mark_cpu])
    ours_cpu = [b - a for a, b in zip(cpu_marks[:-1], cpu_marks[1:])]

    # --- results -----------------------------------------------------------------------------
    # one evaluator for both final models (one z per image, seed 0), beside each loop's own test pass
    ours_test = -evaluate(ours, test, seed=0)["elbo"]
    ref_test_common = -evaluate(vae_from_ref(ref.cpu()).to(device), test, seed=0)["elbo"]

    def speed(wall: list[float], cpu: list[float]) -> dict:
        n = len(train)
        return {
            "images_per_s_wall": n * len(wall) / sum(wall),
            "images_per_s_wall_median_epoch": n / statistics.median(wall),
            "images_per_cpu_s": n * len(cpu) / sum(cpu),
            "train_wall_seconds": sum(wall),
            "epoch_wall_seconds": wall,
            "epoch_cpu_seconds": cpu,
        }

    res_ref = {**speed(ref_wall, ref_cpu), "train_loss": ref_train_loss,
               "test_neg_elbo": ref_test_loss, "test_neg_elbo_evaluate": ref_test_common,
               "test_measured_by": "the reference's own test() (one z per image)"}
    res_ours = {**speed(history.seconds, ours_cpu), "train_loss": [-v for v in history.train_elbo],
                "test_neg_elbo": ours_test, "test_neg_elbo_evaluate": ours_test,
                "test_measured_by": "vae_core.train.evaluate (one z per image, seed 0)"}
    ratios = {k: res_ours[k] / res_ref[k] for k in ("images_per_s_wall", "images_per_s_wall_median_epoch", "images_per_cpu_s")}
    full = not args.quick and epochs >= 10
    result = {
        "command": "python benchmarks/bench_training.py" + (" " + " ".join(argv if argv is not None else sys.argv[1:])).rstrip(),
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "machine": {"platform": platform.platform(), "processor": platform.processor() or platform.machine(),
                    "cpus": os.cpu_count(), "torch_threads": torch.get_num_threads(), "device": str(device),
                    "torch": torch.__version__, "python": platform.python_version(),
                    "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS"),
                    "load_average_at_end": os.getloadavg() if hasattr(os, "getloadavg") else None},
        "setup": {"epochs": epochs, "n_train": len(train), "n_test": len(test), "batch_size": batch_size, "lr": lr,
                  "seed": args.seed, "model": "MLP 784-400-20, Bernoulli (pytorch/examples vae/main.py)",
                  "data": "grey MNIST, x = byte / 255", "quick": args.quick},
        "reference": res_ref,
        "vae_core": res_ours,
        "speed_ratio": ratios,
        "targets": {"speed_ratio": SPEED_TARGET, "test_neg_elbo_nats": NELBO_TARGET, "judged": full,
                    "speed_met_wall": ratios["images_per_s_wall"] >= SPEED_TARGET if full else None,
                    "speed_met_cpu": ratios["images_per_cpu_s"] >= SPEED_TARGET if full else None,
                    "nelbo_met": ours_test <= NELBO_TARGET if full else None},
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    tmp = args.out.with_name(args.out.name + ".tmp")
    tmp.write_text(json.dumps(result, indent=2) + "\n")
    os.replace(tmp, args.out)

    print()
    print(f"{'':10s} {'images/s wall':>14s} {'(median epoch)':>15s} {'images/CPU-s':>13s} {'test -ELBO':>11s} {'by evaluate':>12s}")
    for name, r in (("reference", res_ref), ("vae_core", res_ours)):
        print(f"{name:10s} {r['images_per_s_wall']:14,.0f} {r['images_per_s_wall_median_epoch']:15,.0f} "
              f"{r['images_per_cpu_s']:13,.0f} {r['test_neg_elbo']:11.2f} {r['test_neg_elbo_evaluate']:12.2f}")
    print(f"speed ratio vae_core / reference: {ratios['images_per_s_wall']:.2f} wall, "
          f"{ratios['images_per_s_wall_median_epoch']:.2f} median-epoch wall, {ratios['images_per_cpu_s']:.2f} CPU time "
          f"(target >= {SPEED_TARGET})")
    if full:
        t = result["targets"]
        print(f"targets: speed (wall) {'met' if t['speed_met_wall'] else 'MISSED'}, speed (CPU time) "
              f"{'met' if t['speed_met_cpu'] else 'MISSED'}, test -ELBO <= {NELBO_TARGET} {'met' if t['nelbo_met'] else 'MISSED'}")
    else:
        print("targets are judged on full runs only (10+ epochs, no --quick)")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
