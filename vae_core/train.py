"""One plain PyTorch training loop for every model, KL schedules and checkpoints.

::

    history = fit(model, train, test, TrainConfig(epochs=10))
    save_checkpoint("runs/vae.pt", model, extra={"history": history.as_dict()})
    model, extra = load_checkpoint("runs/vae.pt")

The protocol ``fit`` and ``evaluate`` speak (they know no model classes): a model implements

    loss_terms(batch: Batch, weights: LossWeights) -> LossTerms

``Batch(x, y=None, lengths=None)`` carries the inputs and, when the data has them, the labels;
``LossWeights(kl, free_bits)`` is what the loop schedules (``kl_weight``), and the model applies it
to its terms named ``kl`` and ``kl_*``; ``LossTerms(loss, terms, elbo)`` holds the scalar loss to
minimise, the per-example terms by name (``recon``, ``kl``, ``kl_1``, ``commit``, ...) and the
per-example ELBO (None for a model without one). ``History`` records every term it reports.
``VAE``, ``AutoEncoder`` and ``reference.ReferenceVAE`` implement it; a new variant is one class.

The VAE's loss is -ELBO with the course convention: sum over pixels and latent dimensions, mean over
the batch; every number ``History`` records is per example, in nats. The loop is the one you
would write by hand (Adam, ``loss.backward()``, ``opt.step()``), kept fast on a CPU by three
things only: batches sliced from tensors already in memory (``vae_core.data.Batches``, no
DataLoader collation), Adam's fused kernel where PyTorch has one, and running sums kept as
tensors (one ``.item()`` per batch, needed for the NaN check and the progress bar).
"""
from __future__ import annotations

import importlib
import math
import os
import time
from dataclasses import asdict, dataclass, field, fields, is_dataclass
from pathlib import Path
from typing import Callable, Iterable, Iterator, Literal

import torch
from torch import Tensor, nn
from tqdm.auto import tqdm

from .data import Batches
from .data.batches import Batch
from .models import VAE, AutoEncoder, LossTerms, LossWeights, VAEConfig
from .utils import get_device, seed_everything

__all__ = [
    "TrainConfig",
    "History",
    "Batch",
    "LossWeights",
    "LossTerms",
    "fit",
    "evaluate",
    "kl_weight",
    "save_checkpoint",
    "load_checkpoint",
    "register_model",
]


@dataclass
class TrainConfig:
    """How to train; vary it with ``dataclasses.replace(config, epochs=1)``."""

    # Passes over the training set.
    epochs: int = 10
    # Examples per Adam step (128 as in pytorch/examples vae/main.py).
    batch_size: int = 128
    # Adam learning rate; lower it first when the loss turns NaN.
    lr: float = 1e-3
    # Seeds Python/NumPy/torch (seed_everything) and the batch order, so a run can be repeated.
    seed: int = 0
    # Final weight on the KL term: 1 is the ELBO, >1 is a beta-VAE (Higgins et al. 2017), <1 favours reconstruction.
    beta: float = 1.0
    # How the KL weight reaches beta: None = constant, "linear" warm-up (Bowman et al. 2016),
    # "cyclical" repeated warm-ups (Fu et al. 2019). Both fight posterior collapse.
    kl_schedule: Literal["linear", "cyclical"] | None = None
    # Epochs over which "linear" ramps the weight from 0 to beta (fractions allowed).
    warmup_epochs: float = 5.0
    # Number of warm-up cycles for "cyclical" over the whole run (Fu et al. use 4).
    cycles: int = 4
    # Fraction of each cycle spent ramping up, the rest at beta (Fu et al.'s R = 0.5).
    cycle_ratio: float = 0.5
    # Free bits (Kingma et al. 2016): nats per latent dimension of KL that the loss does not charge for.
    free_bits: float = 0.0
    # Clip the gradient's global L2 norm to this value (None = no clipping); a cure for exploding losses.
    clip_grad: float | None = None
    # Show tqdm progress bars (epochs, and batches with the live loss); False for quiet scripts and tests.
    progress: bool = True
    # Evaluate on the test set every this many epochs (and always after the last one).
    eval_every: int = 1
    # Batch size for evaluation: larger is faster and needs no gradients.
    eval_batch_size: int = 1000
    # "cpu" or "cuda"; None picks CUDA when present (vae_core.get_device).
    device: str | None = None

    def __post_init__(self) -> None:
        for name in ("epochs", "batch_size", "cycles", "eval_every", "eval_batch_size"):
            v = getattr(self, name)
            if not (isinstance(v, int) and not isinstance(v, bool) and v > 0):
                raise ValueError(f"{name} must be a positive int, got {v!r}")
        if not (isinstance(self.seed, int) and not isinstance(self.seed, bool) and self.seed >= 0):
            raise ValueError(f"seed must be a non-negative int, got {self.seed!r}")
        if not (_is_real(self.lr) and self.lr > 0):
            raise ValueError(f"lr must be a positive float such as 1e-3, got {self.lr!r}")
        if not (_is_real(self.beta) and self.beta >= 0):
            raise ValueError(f"beta must be a float >= 0 (1 = the ELBO), got {self.beta!r}")
        if self.kl_schedule not in (None, "linear", "cyclical"):
            raise ValueError(f"kl_schedule must be None, 'linear' or 'cyclical', got {self.kl_schedule!r}")
        if not (_is_real(self.warmup_epochs) and self.warmup_epochs >= 0):
            raise ValueError(f"warmup_epochs must be a float >= 0, got {self.warmup_epochs!r}")
        if not (_is_real(self.cycle_ratio) and 0 < self.cycle_ratio <= 1):
            raise ValueError(f"cycle_ratio must be in (0, 1] (Fu et al. use 0.5), got {self.cycle_ratio!r}")
        if not (_is_real(self.free_bits) and self.free_bits >= 0):
            raise ValueError(f"free_bits must be a float >= 0 (nats per latent dimension), got {self.free_bits!r}")
        if self.clip_grad is not None and not (_is_real(self.clip_grad) and self.clip_grad > 0):
            raise ValueError(f"clip_grad must be None or a positive float such as 1.0, got {self.clip_grad!r}")
        if self.device is not None and self.device not in ("cpu", "cuda"):
            raise ValueError(f"device must be None, 'cpu' or 'cuda', got {self.device!r}")


def _is_real(v: object) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


_ELBO_TERMS = ("recon", "kl", "elbo")  # History's fixed columns; any other term gets columns of its own


@dataclass
class History:
    """Per-epoch record of a run; every value is a per-example mean in nats (``beta``, ``seconds`` aside).

    ``train_*`` average over the epoch's batches while the weights change; ``test_*`` are measured
    after the epoch (NaN when there is no test set or the epoch was not evaluated). ``beta`` is the
    mean KL weight used in the epoch; ``seconds`` the wall time of the training pass (evaluation
    excluded). ``recon``, ``kl`` and ``elbo`` always have their columns (NaN where the model does not
    report the term: an ``AutoEncoder`` reports a KL of 0 and no ELBO); any other term a model reports
    (``kl_1``, ``commit``, ...) is kept in ``other`` as ``"train_<name>"``/``"test_<name>"``.
    ``history.train["commit"]`` (or ``history.terms("test")``) reads every term of a split by name.
    """

    epoch: list[int] = field(default_factory=list)
    train_recon: list[float] = field(default_factory=list)
    train_kl: list[float] = field(default_factory=list)
    train_elbo: list[float] = field(default_factory=list)
    test_recon: list[float] = field(default_factory=list)
    test_kl: list[float] = field(default_factory=list)
    test_elbo: list[float] = field(default_factory=list)
    beta: list[float] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)
    # The other terms by column name, e.g. {"train_commit": [...], "test_commit": [...]}.
    other: dict[str, list[float]] = field(default_factory=dict)

    def terms(self, split: Literal["train", "test"]) -> dict[str, list[float]]:
        """Every term of ``split`` by name, ``{"recon": [...], "kl": [...], "elbo": [...], "commit": [...]}``
        (the lists themselves, not copies)."""
        if split not in ("train", "test"):
            raise ValueError(f"split must be 'train' or 'test', got {split!r}")
        out = {name: getattr(self, f"{split}_{name}") for name in _ELBO_TERMS}
        prefix = split + "_"
        out.update({k[len(prefix):]: v for k, v in self.other.items() if k.startswith(prefix)})
        return out

    @property
    def train(self) -> dict[str, list[float]]:
        """``terms("train")``: e.g. ``history.train["commit"]``, one value per epoch."""
        return self.terms("train")

    @property
    def test(self) -> dict[str, list[float]]:
        """``terms("test")``."""
        return self.terms("test")

    def as_dict(self) -> dict[str, list]:
        """Plain lists keyed by column name (JSON- and checkpoint-safe): the fields, then ``other``'s columns."""
        out = {f.name: list(getattr(self, f.name)) for f in fields(self) if f.name != "other"}
        out.update({k: list(v) for k, v in self.other.items()})
        return out

    def __len__(self) -> int:
        return len(self.epoch)

    def _append(self, epoch: int, train: dict[str, float], test: dict[str, float], beta: float, seconds: float) -> None:
        """One epoch: ``train``/``test`` map term names to per-example means (``test`` empty when not evaluated)."""
        n = len(self.epoch)
        self.epoch.append(epoch)
        for split, means in (("train", train), ("test", test)):
            for name, value in means.items():
                if name not in _ELBO_TERMS:
                    self.other.setdefault(f"{split}_{name}", [math.nan] * n).append(value)
            for name in _ELBO_TERMS:
                getattr(self, f"{split}_{name}").append(means.get(name, math.nan))
        for column in self.other.values():  # a term missing this epoch (not evaluated): NaN
            if len(column) == n:
                column.append(math.nan)
        self.beta.append(beta)
        self.seconds.append(seconds)


def kl_weight(epoch: float, config: TrainConfig) -> float:
    """KL weight at training time ``epoch`` (a float: 2.5 = halfway through the third epoch).

    - ``None``:       beta
    - ``"linear"``:   beta * min(1, epoch / warmup_epochs)
    - ``"cyclical"``: with period P = epochs / cycles and tau = (epoch mod P) / P in [0, 1),
                      beta * min(1, tau / cycle_ratio)   (Fu et al. 2019, Eq. 4)
    """
    if not (_is_real(epoch) and epoch >= 0):
        raise ValueError(f"epoch must be a float >= 0, got {epoch!r}")
    if not isinstance(config, TrainConfig):
        raise ValueError(f"config must be a TrainConfig, got {type(config).__name__}; e.g. kl_weight(epoch, TrainConfig(epochs=10))")
    if config.kl_schedule is None:
        return float(config.beta)
    if config.kl_schedule == "linear":
        if config.warmup_epochs == 0:
            return float(config.beta)
        return float(config.beta) * min(1.0, epoch / config.warmup_epochs)
    # tau = (epoch mod P) / P = frac(epoch * cycles / epochs). Computed as a fraction of the whole run, not
    # with a float `%` by P: 5.0 % (10 / 6) gives 1.666..., a cycle *end*, where the weight must restart at 0.
    position = epoch * config.cycles / config.epochs  # cycles completed, e.g. 3.0
    nearest = round(position)
    if abs(position - nearest) <= 1e-9 * max(1.0, position):
        position = float(nearest)  # a cycle start up to rounding: tau = 0
    tau = position - math.floor(position)  # in [0, 1)
    return float(config.beta) * min(1.0, tau / config.cycle_ratio)


# ----------------------------------------------------------------------------------------------
# data and objectives


def _is_sequence(data: object) -> bool:
    """A sequence dataset (``vae_core.sequence.SequenceData``): its batches carry ``lengths``, not labels."""
    return hasattr(data, "tokens") and hasattr(data, "lengths")


def _data(data: object, name: str) -> tuple[Tensor, Tensor | None, str | None]:
    """(images, labels or None, binarize) from a ``vae_core.data.Dataset`` (anything with ``.images``,
    optionally ``.labels``) or a (N, C, H, W) tensor (no labels)."""
    if _is_sequence(data):  # vae_core.sequence.SequenceData: (N, T) token ids, lengths ride as the labels
        tokens, lengths = data.tokens, data.lengths
        if not (isinstance(tokens, Tensor) and tokens.dim() == 2 and tokens.shape[0] > 0
                and isinstance(lengths, Tensor) and lengths.shape == tokens.shape[:1]):
            raise ValueError(f"{name} must hold (N, T) tokens and (N,) lengths, got {getattr(tokens, 'shape', tokens)!r}")
        return tokens, lengths, None
    if isinstance(data, Tensor):
        images, labels, binarize = data, None, None
    elif hasattr(data, "images"):
        images, labels = data.images, getattr(data, "labels", None)
        binarize = "dynamic" if getattr(data, "binarize", None) == "dynamic" else None
    else:
        raise ValueError(f"{name} must be a vae_core.data.Dataset or a (N, C, H, W) tensor, got {type(data).__name__}")
    if not isinstance(images, Tensor) or images.dim() != 4 or images.shape[0] == 0:
        got = tuple(images.shape) if isinstance(images, Tensor) else type(images).__name__
        raise ValueError(f"{name} images must be a non-empty (N, C, H, W) tensor, got {got}; add the channel axis with x[:, None]")
    return images, labels, binarize


_PROTOCOL = "loss_terms(batch: Batch, weights: LossWeights) -> LossTerms"


def _check_model(model: nn.Module, images: Tensor, name: str) -> None:
    if not isinstance(model, nn.Module) or not callable(getattr(model, "loss_terms", None)):
        raise ValueError(
            f"model must be an nn.Module with the training protocol's method {_PROTOCOL} "
            f"(per-example terms by name, see vae_core.train; VAE, AutoEncoder and ReferenceVAE have it), "
            f"got {type(model).__name__}"
        )
    shape = getattr(getattr(model, "config", None), "input_shape", None)
    if shape is not None and tuple(images.shape[1:]) != tuple(shape):
        raise ValueError(
            f"{name} holds images of shape {tuple(images.shape[1:])} but the model expects {tuple(shape)}; "
            f"build the model with a config of input_shape={tuple(images.shape[1:])} or pass the matching dataset"
        )


def _loss_terms(model: nn.Module, batch: Batch, weights: LossWeights) -> LossTerms:
    """``model.loss_terms(batch, weights)``, checked: a ``LossTerms`` with one value per example of ``batch``."""
    out = model.loss_terms(batch, weights)
    if not isinstance(out, LossTerms):
        raise ValueError(f"{type(model).__name__}.loss_terms must return a LossTerms(loss, terms, elbo), got {type(out).__name__}")
    b = len(batch)
    if len(next(iter(out.terms.values()))) != b:
        raise ValueError(f"{type(model).__name__}.loss_terms returned terms of shape "
                         f"{tuple(next(iter(out.terms.values())).shape)} for a batch of {b}; expected ({b},), one per example")
    return out


class _Sums:
    """Every reported term (and the ELBO) of every batch of an epoch, summed at the end: adding a
    batch keeps detached (B,) tensors and costs no tensor op and no sync (a stack-and-add per batch
    cost about 1% of a step of the 784-400-20 MLP); they hold B floats per term, a tiny fraction of the data."""

    def __init__(self) -> None:
        self.names: tuple[str, ...] | None = None
        self.parts: list[list[Tensor]] = []  # per name, its batches' (B,) tensors

    def add(self, out: LossTerms) -> None:
        names = tuple(out.terms) if out.elbo is None else (*out.terms, "elbo")
        values = list(out.terms.values()) if out.elbo is None else [*out.terms.values(), out.elbo]
        if self.names is None:
            self.names = names
            self.parts = [[] for _ in names]
        elif names != self.names:
            raise ValueError(f"loss_terms must report the same terms for every batch: it reported {self.names}, "
                             f"then {names}")
        for part, value in zip(self.parts, values):
            part.append(value.detach())

    def means(self, n: int) -> dict[str, float]:
        """Per-example means over ``n`` examples, by term name (sums in float64, one sync)."""
        sums = torch.stack([torch.cat(part).sum(dtype=torch.float64) for part in self.parts]).tolist()
        return {name: total / n for name, total in zip(self.names, sums)}


def _batches(images: Tensor, labels: Tensor | None, batch_size: int, shuffle: bool, binarize: str | None, seed: int) -> Batches:
    return Batches(images, labels, batch_size=batch_size, shuffle=shuffle, drop_last=False, binarize=binarize, seed=seed)


def _epoch(batches: Batches, sequences: bool = False) -> Iterator[Batch]:
    """One epoch of ``Batch`` objects (with labels when ``batches`` has them; with lengths for sequences)."""
    if sequences:
        return (Batch(x, lengths=n) for x, n in batches)
    if batches.labels is None:
        return (Batch(x) for x in batches)
    return (Batch(x, y) for x, y in batches)


def _adam(model: nn.Module, lr: float, device: torch.device) -> torch.optim.Adam:
    # Adam (Kingma & Ba 2015). The fused kernel does the same update in one pass over the
    # parameters instead of a dozen (about 7x faster for the 784-400-20 MLP on one CPU core).
    try:
        return torch.optim.Adam(model.parameters(), lr=lr, fused=True)
    except (RuntimeError, TypeError, ValueError):  # a device or dtype without the fused kernel
        return torch.optim.Adam(model.parameters(), lr=lr)


# ----------------------------------------------------------------------------------------------
# evaluation and training


@torch.no_grad()
def evaluate(model: nn.Module, data: object, batch_size: int = 1000, seed: int = 0) -> dict[str, float]:
    """Per-example means over ``data`` (Dataset or (N, C, H, W) tensor), in nats, with the KL weight 1
    and no free bits: ``{"recon": E[-log p(x|z)], "kl": E[KL(q(z|x) || p(z))], "elbo": E[ELBO]}`` and
    every other term the model's ``loss_terms`` reports (``"commit"``, ``"kl_1"``, ...).

    One z sample per example (seeded by ``seed``, as is the binarization of a "dynamic" dataset).
    A term the model does not report is NaN: for an ``AutoEncoder`` ``kl`` is 0 and ``elbo`` is NaN.
    """
    images, labels, binarize = _data(data, "data")
    _check_model(model, images, "data")
    if not (isinstance(batch_size, int) and batch_size > 0):
        raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    # Fork the RNG so evaluating does not shift the training run's random stream.
    cuda_ids = [device.index if device.index is not None else torch.cuda.current_device()] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=cuda_ids):
        torch.manual_seed(seed)
        sums = _Sums()
        labels = None if labels is None else labels.to(device)
        for batch in _epoch(_batches(images.to(device), labels, batch_size, False, binarize, seed), _is_sequence(data)):
            sums.add(_loss_terms(model, batch, LossWeights(kl=1.0, free_bits=0.0)))
    model.train(was_training)
    return {"recon": math.nan, "kl": math.nan, "elbo": math.nan, **sums.means(images.shape[0])}


Callback = Callable[[int, nn.Module, History], "bool | None"]


def fit(
    model: nn.Module,
    train: object,
    test: object | None = None,
    config: TrainConfig | None = None,
    callbacks: Iterable[Callback] = (),
) -> History:
    """Train ``model`` in place with Adam on the loss its ``loss_terms`` returns (-ELBO for a VAE).

    Args:
        model: any ``nn.Module`` with ``loss_terms(batch: Batch, weights: LossWeights) -> LossTerms``
            (``VAE``, ``AutoEncoder``, ``reference.ReferenceVAE``, or a variant of your own).
        train, test: ``vae_core.data.Dataset`` (its labels reach the model as ``batch.y``; its
            ``binarize="dynamic"`` draws fresh binary images every epoch), float tensors
            (N, C, H, W) in [0, 1] (no labels), or a ``vae_core.sequence.SequenceData`` (token ids
            (N, T); its lengths reach the model as ``batch.lengths``).
        config: ``TrainConfig``; the default is 10 epochs of batch 128 at lr 1e-3. Every step hands
            the model ``LossWeights(kl=kl_weight(t, config), free_bits=config.free_bits)``.
        callbacks: called as ``cb(epoch, model, history)`` after every epoch (1-based epoch);
            returning True stops training.

    Returns the ``History`` (one entry per epoch, every reported term). The model is moved to the
    chosen device and left in eval mode. A NaN or infinite loss raises ``FloatingPointError`` naming
    the epoch and batch; the history so far is attached to the exception as ``.history``.
    """
    config = TrainConfig() if config is None else config
    if not isinstance(config, TrainConfig):
        raise ValueError(f"config must be a TrainConfig, got {type(config).__name__}")
    callbacks = list(callbacks)
    for cb in callbacks:
        if not callable(cb):
            raise ValueError(f"callbacks must be callables cb(epoch, model, history), got {cb!r}")
    train_images, train_labels, train_bin = _data(train, "train")
    _check_model(model, train_images, "train")
    if test is not None:
        test_images, _, _ = _data(test, "test")
        _check_model(model, test_images, "test")

    seed_everything(config.seed)
    device = get_device(config.device)
    model.to(device)
    opt = _adam(model, config.lr, device)
    labels = None if train_labels is None else train_labels.to(device)
    batches = _batches(train_images.to(device), labels, config.batch_size, True, train_bin, config.seed)
    n_batches = len(batches)
    n_train = batches.num_examples
    history = History()

    epoch_bar = tqdm(range(1, config.epochs + 1), desc="epochs", unit="epoch", disable=not config.progress)
    try:
        for epoch in epoch_bar:
            model.train()
            start = time.perf_counter()
            sums = _Sums()
            beta_sum = 0.0
            batch_bar = tqdm(_epoch(batches, _is_sequence(train)), total=n_batches, desc=f"epoch {epoch}", unit="batch", leave=False,
                             disable=not config.progress)
            for i, batch in enumerate(batch_bar):
                weights = LossWeights(kl=kl_weight(epoch - 1 + i / n_batches, config), free_bits=config.free_bits)
                out = _loss_terms(model, batch, weights)
                loss_value = out.loss.item()  # the one sync per batch: NaN check and progress bar
                if not math.isfinite(loss_value):
                    batch_bar.close()
                    raise FloatingPointError(
                        f"the loss became {loss_value} at epoch {epoch}/{config.epochs}, batch {i + 1}/{n_batches}. "
                        f"Try a lower learning rate (lr={config.lr:g} now, e.g. lr={config.lr / 10:g}), "
                        f"clip gradients (clip_grad=1.0; now {config.clip_grad}), and check the data is finite and in [0, 1]"
                    )
                opt.zero_grad(set_to_none=True)
                out.loss.backward()
                if config.clip_grad is not None:
                    nn.utils.clip_grad_norm_(model.parameters(), config.clip_grad)
                opt.step()
                sums.add(out)
                beta_sum += weights.kl
                if config.progress and i % 10 == 0:
                    batch_bar.set_postfix(loss=f"{loss_value:.2f}", refresh=False)
            seconds = time.perf_counter() - start
            train_means = sums.means(n_train)

            if test is not None and (epoch % config.eval_every == 0 or epoch == config.epochs):
                test_means = evaluate(model, test, batch_size=config.eval_batch_size, seed=config.seed)
            else:
                test_means = {}
            history._append(epoch, train_means, test_means, beta_sum / n_batches, seconds)
            if config.progress:
                key = "elbo" if "elbo" in train_means else "recon"  # what the loss is about: the ELBO if there is one
                shown = {f"train_{key}": history.train[key][-1]}
                if test_means:
                    shown[f"test_{key}"] = history.test[key][-1]
                epoch_bar.set_postfix({k: f"{v:.2f}" for k, v in shown.items()})
            if any(cb(epoch, model, history) is True for cb in callbacks):
                break
    except FloatingPointError as err:
        err.history = history  # type: ignore[attr-defined]
        raise
    finally:
        epoch_bar.close()
    model.eval()
    return history


# ----------------------------------------------------------------------------------------------
# checkpoints

_FORMAT = "vae_core.checkpoint/1"
# Model class name -> (class, config dataclass); a variant module adds itself with ``register_model``.
_MODELS: dict[str, tuple[type[nn.Module], type]] = {"VAE": (VAE, VAEConfig), "AutoEncoder": (AutoEncoder, VAEConfig)}


def register_model(cls: type[nn.Module], config_cls: type) -> type[nn.Module]:
    """Let ``save_checkpoint``/``load_checkpoint`` handle ``cls``: a model built as ``cls(config)``
    whose ``config`` is a ``config_cls`` dataclass (saved with ``asdict``, rebuilt with
    ``config_cls(**saved)``). Variant modules call it once at import; returns ``cls``."""
    if not (isinstance(cls, type) and issubclass(cls, nn.Module)) or not is_dataclass(config_cls):
        raise ValueError(f"register_model(cls, config_cls) takes an nn.Module class and a dataclass, got {cls!r}, {config_cls!r}")
    _MODELS[cls.__name__] = (cls, config_cls)
    return cls


# Variant models register themselves when their module is imported; load_checkpoint imports it for them.
_VARIANT_MODULES: dict[str, str] = {
    "CVAE": "vae_core.cvae",
    "VQVAE": "vae_core.vqvae",
    "CodePrior": "vae_core.vqvae",
    "HVAE": "vae_core.hierarchical",
    "PriorVAE": "vae_core.priors",
    "SeqVAE": "vae_core.sequence",
}


def _registered(name: object) -> bool:
    if isinstance(name, str) and name not in _MODELS and name in _VARIANT_MODULES:
        importlib.import_module(_VARIANT_MODULES[name])
    return isinstance(name, str) and name in _MODELS


def _check_safe(obj: object, where: str = "extra") -> None:
    """``extra`` must load with ``torch.load(weights_only=True)``: tensors, numbers, str, None, lists/tuples/dicts of them."""
    if obj is None or isinstance(obj, (bool, int, float, str, Tensor)):
        return
    if isinstance(obj, (list, tuple)):
        for i, v in enumerate(obj):
            _check_safe(v, f"{where}[{i}]")
        return
    if isinstance(obj, dict):
        for k, v in obj.items():
            if not isinstance(k, (str, int)):
                raise ValueError(f"{where} keys must be str or int, got {type(k).__name__}")
            _check_safe(v, f"{where}[{k!r}]")
        return
    raise ValueError(
        f"{where} is a {type(obj).__name__}, which torch.load(weights_only=True) cannot read back; "
        f"store plain data instead (e.g. history.as_dict(), dataclasses.asdict(config))"
    )


def save_checkpoint(path: str | os.PathLike, model: nn.Module, extra: dict | None = None) -> Path:
    """Write ``{"format", "model", "config": asdict(model.config), "state_dict", "extra"}`` to ``path``.

    Written to ``path + ".tmp"`` first and renamed, so an interrupted save never leaves a torn file.
    ``extra`` holds plain data (numbers, strings, lists, dicts, tensors). Returns the path.
    """
    name = type(model).__name__
    if name not in _MODELS or _MODELS[name][0] is not type(model) or not isinstance(getattr(model, "config", None), _MODELS[name][1]):
        raise ValueError(f"save_checkpoint saves the vae_core models {sorted(_MODELS)} (each with its config dataclass), "
                         f"got {name}; a new model class is registered with vae_core.train.register_model(cls, config_cls)")
    _check_safe(extra)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "format": _FORMAT,
        "model": name,
        "config": asdict(model.config),
        "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "extra": extra if extra is not None else {},
    }
    tmp = path.with_name(path.name + ".tmp")
    torch.save(payload, tmp)
    os.replace(tmp, path)
    return path


def load_checkpoint(path: str | os.PathLike, device: str | None = None) -> tuple[nn.Module, dict]:
    """Rebuild the model saved by ``save_checkpoint``: returns ``(model in eval mode, extra)``.

    Reads with ``torch.load(weights_only=True)`` (no arbitrary code runs). Raises
    ``FileNotFoundError`` when ``path`` is missing and ``ValueError`` when it is not a readable
    vae_core checkpoint. ``device`` as in ``TrainConfig`` (None = CUDA when present).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(
            f"no checkpoint at {path}; train a model with fit(...) and save it with save_checkpoint({str(path)!r}, model)"
        )
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # truncated, not a torch file, or unsafe pickle content
        raise ValueError(
            f"could not read {path} as a vae_core checkpoint ({type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}); "
            f"the file may be truncated or not written by save_checkpoint: delete it and train again"
        ) from err
    missing = [k for k in ("format", "model", "config", "state_dict") if not isinstance(payload, dict) or k not in payload]
    if missing:
        raise ValueError(f"{path} is not a vae_core checkpoint (missing {', '.join(missing)}); write it with save_checkpoint")
    if payload["format"] != _FORMAT or not _registered(payload["model"]):
        raise ValueError(f"{path} has format {payload['format']!r} / model {payload['model']!r}; expected {_FORMAT!r} with one of {sorted(_MODELS)}")
    for key in ("config", "state_dict"):
        if not isinstance(payload[key], dict):
            raise ValueError(f"{path}: {key} must be a dict, got {type(payload[key]).__name__}; "
                             "the file was not written by save_checkpoint(path, model): delete it and save again")
    cls, config_cls = _MODELS[payload["model"]]
    try:
        config = config_cls(**payload["config"])
    except TypeError as err:
        raise ValueError(f"{path} holds a config this version of vae_core does not know ({err}); retrain and save again") from err
    model = cls(config)
    try:
        model.load_state_dict(payload["state_dict"])
    except RuntimeError as err:
        raise ValueError(f"{path}: the weights do not fit the saved config ({str(err).splitlines()[0]})") from err
    model.to(get_device(device)).eval()
    return model, payload.get("extra") or {}
