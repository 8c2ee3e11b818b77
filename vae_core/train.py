"""A plain PyTorch training loop for ``VAE`` and ``AutoEncoder``, KL schedules and checkpoints.

::

    history = fit(model, train, test, TrainConfig(epochs=10))
    save_checkpoint("runs/vae.pt", model, extra={"history": history.as_dict()})
    model, extra = load_checkpoint("runs/vae.pt")

The loss is -ELBO with the course convention: sum over pixels and latent dimensions, mean over
the batch; every number ``History`` records is per example, in nats. The loop is the one you
would write by hand (Adam, ``loss.backward()``, ``opt.step()``), kept fast on a CPU by three
things only: batches sliced from tensors already in memory (``vae_core.data.Batches``, no
DataLoader collation), Adam's fused kernel where PyTorch has one, and running sums kept as
tensors (one ``.item()`` per batch, needed for the NaN check and the progress bar).
"""
from __future__ import annotations

import math
import os
import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Callable, Iterable, Literal

import torch
from torch import Tensor, nn
from tqdm.auto import tqdm

from .data import Batches
from .models import VAE, AutoEncoder, VAEConfig
from .utils import get_device, seed_everything

__all__ = [
    "TrainConfig",
    "History",
    "fit",
    "evaluate",
    "kl_weight",
    "save_checkpoint",
    "load_checkpoint",
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


@dataclass
class History:
    """Per-epoch record of a run; every value is a per-example mean in nats (``beta``, ``seconds`` aside).

    ``train_*`` average over the epoch's batches while the weights change; ``test_*`` are measured
    after the epoch (NaN when there is no test set or the epoch was not evaluated). ``beta`` is the
    mean KL weight used in the epoch; ``seconds`` the wall time of the training pass (evaluation
    excluded). For an ``AutoEncoder`` the KL is 0 and the ELBO is NaN (it has none).
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

    def as_dict(self) -> dict[str, list]:
        """Plain lists keyed by field name (JSON- and checkpoint-safe)."""
        return {f.name: list(getattr(self, f.name)) for f in fields(self)}

    def __len__(self) -> int:
        return len(self.epoch)


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


def _images_and_binarize(data: object, name: str) -> tuple[Tensor, str | None]:
    """Accept a ``vae_core.data.Dataset`` (anything with ``.images``) or a (N, C, H, W) tensor."""
    if isinstance(data, Tensor):
        images, binarize = data, None
    elif hasattr(data, "images"):
        images = data.images
        binarize = "dynamic" if getattr(data, "binarize", None) == "dynamic" else None
    else:
        raise ValueError(f"{name} must be a vae_core.data.Dataset or a (N, C, H, W) tensor, got {type(data).__name__}")
    if not isinstance(images, Tensor) or images.dim() != 4 or images.shape[0] == 0:
        got = tuple(images.shape) if isinstance(images, Tensor) else type(images).__name__
        raise ValueError(f"{name} images must be a non-empty (N, C, H, W) tensor, got {got}; add the channel axis with x[:, None]")
    return images, binarize


def _check_model(model: nn.Module, images: Tensor, name: str) -> None:
    if not isinstance(model, nn.Module) or not (hasattr(model, "elbo") or hasattr(model, "reconstruction_error")):
        raise ValueError(
            f"model must be a vae_core VAE or AutoEncoder (a module with .elbo(x, beta, free_bits) or "
            f".reconstruction_error(x)), got {type(model).__name__}"
        )
    cfg = getattr(model, "config", None)
    if cfg is not None and tuple(images.shape[1:]) != tuple(cfg.input_shape):
        raise ValueError(
            f"{name} holds images of shape {tuple(images.shape[1:])} but the model expects {tuple(cfg.input_shape)}; "
            f"build the model with VAEConfig(input_shape={tuple(images.shape[1:])}) or pass the matching dataset"
        )


def _terms(model: nn.Module, x: Tensor, beta: float, free_bits: float) -> tuple[Tensor, Tensor, Tensor]:
    """(loss scalar, recon (B,), kl (B,)) for a VAE (-ELBO) or an AutoEncoder (reconstruction only)."""
    if hasattr(model, "elbo"):
        t = model.elbo(x, beta=beta, free_bits=free_bits)
        return t.loss, t.recon, t.kl
    recon = model.reconstruction_error(x)  # (B,)
    return recon.mean(), recon, torch.zeros_like(recon)


def _batches(images: Tensor, batch_size: int, shuffle: bool, binarize: str | None, seed: int) -> Batches:
    return Batches(images, None, batch_size=batch_size, shuffle=shuffle, drop_last=False, binarize=binarize, seed=seed)


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
    """Per-example means over ``data`` (Dataset or (N, C, H, W) tensor), in nats, with beta = 1:
    ``{"recon": E[-log p(x|z)], "kl": E[KL(q(z|x) || p(z))], "elbo": E[ELBO]}``.

    One z sample per example (seeded by ``seed``, as is the binarization of a "dynamic" dataset).
    For an ``AutoEncoder`` ``kl`` is 0 and ``elbo`` is NaN.
    """
    images, binarize = _images_and_binarize(data, "data")
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
        recon = torch.zeros((), device=device, dtype=torch.float64)
        kl = torch.zeros((), device=device, dtype=torch.float64)
        for x in _batches(images.to(device), batch_size, False, binarize, seed):
            _, r, k = _terms(model, x, 1.0, 0.0)
            recon += r.sum()
            kl += k.sum()
    model.train(was_training)
    n = images.shape[0]
    r, k = recon.item() / n, kl.item() / n
    elbo = float("nan") if not hasattr(model, "elbo") else -(r + k)
    return {"recon": r, "kl": k, "elbo": elbo}


Callback = Callable[[int, nn.Module, History], "bool | None"]


def fit(
    model: nn.Module,
    train: object,
    test: object | None = None,
    config: TrainConfig | None = None,
    callbacks: Iterable[Callback] = (),
) -> History:
    """Train ``model`` in place with Adam on -ELBO (VAE) or the reconstruction error (AutoEncoder).

    Args:
        model: a ``VAE`` (anything with ``elbo(x, beta, free_bits) -> ELBOTerms``) or an
            ``AutoEncoder`` (anything with ``reconstruction_error(x) -> (B,)``).
        train, test: ``vae_core.data.Dataset`` (its ``binarize="dynamic"`` draws fresh binary
            images every epoch) or float tensors (N, C, H, W) in [0, 1].
        config: ``TrainConfig``; the default is 10 epochs of batch 128 at lr 1e-3.
        callbacks: called as ``cb(epoch, model, history)`` after every epoch (1-based epoch);
            returning True stops training.

    Returns the ``History`` (one entry per epoch). The model is moved to the chosen device and
    left in eval mode. A NaN or infinite loss raises ``FloatingPointError`` naming the epoch and
    batch; the history so far is attached to the exception as ``.history``.
    """
    config = TrainConfig() if config is None else config
    if not isinstance(config, TrainConfig):
        raise ValueError(f"config must be a TrainConfig, got {type(config).__name__}")
    callbacks = list(callbacks)
    for cb in callbacks:
        if not callable(cb):
            raise ValueError(f"callbacks must be callables cb(epoch, model, history), got {cb!r}")
    train_images, train_bin = _images_and_binarize(train, "train")
    _check_model(model, train_images, "train")
    if test is not None:
        test_images, _ = _images_and_binarize(test, "test")
        _check_model(model, test_images, "test")

    seed_everything(config.seed)
    device = get_device(config.device)
    model.to(device)
    opt = _adam(model, config.lr, device)
    batches = _batches(train_images.to(device), config.batch_size, True, train_bin, config.seed)
    n_batches = len(batches)
    n_train = train_images.shape[0]
    history = History()
    is_vae = hasattr(model, "elbo")

    epoch_bar = tqdm(range(1, config.epochs + 1), desc="epochs", unit="epoch", disable=not config.progress)
    try:
        for epoch in epoch_bar:
            model.train()
            start = time.perf_counter()
            recon_sum = torch.zeros((), device=device, dtype=torch.float64)
            kl_sum = torch.zeros((), device=device, dtype=torch.float64)
            beta_sum = 0.0
            batch_bar = tqdm(batches, desc=f"epoch {epoch}", unit="batch", leave=False, disable=not config.progress)
            for i, x in enumerate(batch_bar):
                beta = kl_weight(epoch - 1 + i / n_batches, config)
                loss, recon, kl = _terms(model, x, beta, config.free_bits)
                loss_value = loss.item()  # the one sync per batch: NaN check and progress bar
                if not math.isfinite(loss_value):
                    batch_bar.close()
                    raise FloatingPointError(
                        f"the loss became {loss_value} at epoch {epoch}/{config.epochs}, batch {i + 1}/{n_batches}. "
                        f"Try a lower learning rate (lr={config.lr:g} now, e.g. lr={config.lr / 10:g}), "
                        f"clip gradients (clip_grad=1.0; now {config.clip_grad}), and check the data is finite and in [0, 1]"
                    )
                opt.zero_grad(set_to_none=True)
                loss.backward()
                if config.clip_grad is not None:
                    nn.utils.clip_grad_norm_(model.parameters(), config.clip_grad)
                opt.step()
                recon_sum += recon.detach().sum()
                kl_sum += kl.detach().sum()
                beta_sum += beta
                if config.progress and i % 10 == 0:
                    batch_bar.set_postfix(loss=f"{loss_value:.2f}", refresh=False)
            seconds = time.perf_counter() - start
            train_recon, train_kl = recon_sum.item() / n_train, kl_sum.item() / n_train

            if test is not None and (epoch % config.eval_every == 0 or epoch == config.epochs):
                ev = evaluate(model, test, batch_size=config.eval_batch_size, seed=config.seed)
            else:
                ev = {"recon": float("nan"), "kl": float("nan"), "elbo": float("nan")}
            history.epoch.append(epoch)
            history.train_recon.append(train_recon)
            history.train_kl.append(train_kl)
            history.train_elbo.append(-(train_recon + train_kl) if is_vae else float("nan"))
            history.test_recon.append(ev["recon"])
            history.test_kl.append(ev["kl"])
            history.test_elbo.append(ev["elbo"])
            history.beta.append(beta_sum / n_batches)
            history.seconds.append(seconds)
            if config.progress:
                shown = {"train_elbo": history.train_elbo[-1]} if is_vae else {"train_recon": train_recon}
                if not math.isnan(ev["recon"]):
                    shown["test_elbo" if is_vae else "test_recon"] = ev["elbo"] if is_vae else ev["recon"]
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
_MODELS: dict[str, type[nn.Module]] = {"VAE": VAE, "AutoEncoder": AutoEncoder}


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
    if name not in _MODELS or not isinstance(getattr(model, "config", None), VAEConfig):
        raise ValueError(f"save_checkpoint saves vae_core VAE or AutoEncoder models, got {name}")
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
    if payload["format"] != _FORMAT or payload["model"] not in _MODELS:
        raise ValueError(f"{path} has format {payload['format']!r} / model {payload['model']!r}; expected {_FORMAT!r} with one of {sorted(_MODELS)}")
    for key in ("config", "state_dict"):
        if not isinstance(payload[key], dict):
            raise ValueError(f"{path}: {key} must be a dict, got {type(payload[key]).__name__}; "
                             "the file was not written by save_checkpoint(path, model): delete it and save again")
    try:
        config = VAEConfig(**payload["config"])
    except TypeError as err:
        raise ValueError(f"{path} holds a config this version of vae_core does not know ({err}); retrain and save again") from err
    model = _MODELS[payload["model"]](config)
    try:
        model.load_state_dict(payload["state_dict"])
    except RuntimeError as err:
        raise ValueError(f"{path}: the weights do not fit the saved config ({str(err).splitlines()[0]})") from err
    model.to(get_device(device)).eval()
    return model, payload.get("extra") or {}
