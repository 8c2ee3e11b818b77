"""Numbers to judge a trained VAE by: active units, log-likelihood in nats and bits/dim, ROC AUC, and
the PNG code length of binary images (what a standard lossless compressor needs, beside a VAE's rate).

Conventions follow :mod:`vae_core.losses`: per-example quantities are summed over data
dimensions, and every number returned here is a **mean over the examples** of ``data``.

``data`` may be a :class:`vae_core.data.Dataset` (anything with an ``.images`` tensor of shape
``(N, C, H, W)``) or a plain tensor ``(N, C, H, W)``. A dataset marked ``binarize="dynamic"``
keeps grey values; it is binarized here **once, with a fixed seed**, so repeated evaluations
of the same model see the same binary images (the usual practice for binarized-MNIST NLLs).

References
----------
* Burda, Grosse & Salakhutdinov (2016), *Importance Weighted Autoencoders*: active units
  (Sec. 5.2) and the k-sample log-likelihood estimate.
"""
from __future__ import annotations

import math
from collections.abc import Iterator, Sequence

import numpy as np
import torch
from torch import Tensor, nn

__all__ = ["active_units", "nll_estimate", "bits_per_dim", "roc_auc", "png_bits"]

EVAL_BINARIZE_SEED = 0  # fixed seed for binarizing a "dynamic" dataset at evaluation time


# ----------------------------------------------------------------------------- helpers
def _images(data: object, name: str = "data") -> Tensor:
    """``Dataset`` or tensor -> float tensor ``(N, ...)`` of the examples to evaluate."""
    images = getattr(data, "images", data)
    if not isinstance(images, Tensor):
        raise ValueError(
            f"{name} must be a vae_core.data.Dataset (with .images) or a tensor of shape (N, C, H, W), "
            f"got {type(data).__name__}; load one with vae_core.data.load_dataset(...)"
        )
    if not images.is_floating_point():
        raise ValueError(
            f"{name} images must be a floating-point tensor with values in [0, 1], got dtype {images.dtype}; "
            f"use images.float() / 255 for uint8 pixels"
        )
    if images.dim() < 2 or images.shape[0] == 0:
        raise ValueError(
            f"{name} must hold at least one example, shape (N, C, H, W) with N >= 1, got {tuple(images.shape)}"
        )
    if getattr(data, "binarize", None) == "dynamic":
        g = torch.Generator(device="cpu").manual_seed(EVAL_BINARIZE_SEED)
        images = torch.bernoulli(images.cpu(), generator=g).to(images.device)
    return images


def _check_pos_int(name: str, value: object, why: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name} must be a positive int ({why}), got {value!r}")
    return int(value)


def _model_device(model: nn.Module) -> torch.device:
    p = next(model.parameters(), None) if isinstance(model, nn.Module) else None
    return p.device if p is not None else torch.device("cpu")


def _batches(images: Tensor, batch_size: int, device: torch.device) -> Iterator[Tensor]:
    for start in range(0, images.shape[0], batch_size):
        yield images[start : start + batch_size].to(device)  # (b, C, H, W)


class _EvalMode:
    """``with _EvalMode(model):`` eval mode + no_grad, restoring the previous train/eval mode."""

    def __init__(self, model: object) -> None:
        self.model = model
        self.was_training = bool(getattr(model, "training", False))

    def __enter__(self) -> None:
        self.no_grad = torch.no_grad()
        self.no_grad.__enter__()
        if hasattr(self.model, "eval"):
            self.model.eval()

    def __exit__(self, *exc: object) -> None:
        if hasattr(self.model, "train"):
            self.model.train(self.was_training)
        self.no_grad.__exit__(*exc)


# ----------------------------------------------------------------------------- metrics
def active_units(
    model: nn.Module, data: object, threshold: float = 0.01, batch_size: int = 256
) -> tuple[int, Tensor]:
    """Count the latent dimensions the encoder actually uses (Burda et al. 2016, Sec. 5.2).

    Unit ``j`` is active when ``A_j = Var_x( E_{q(z|x)}[z_j] ) = Var_x( mu_j(x) ) > threshold``:
    a dimension whose posterior mean does not move with x carries no information about x.

    Args:
        model: anything with ``encode(x) -> (mu, logvar)``, ``mu: (b, D)``.
        data: ``Dataset`` or tensor ``(N, C, H, W)``; needs ``N >= 2`` to have a variance.
        threshold: the activity threshold, ``>= 0``; Burda et al. use 0.01.
        batch_size: examples per forward pass.

    Returns:
        ``(count, variances)``: ``count`` an int, ``variances`` a CPU tensor ``(D,)`` of
        ``Var_x(mu_j)`` (population variance, i.e. divided by N).
    """
    if isinstance(threshold, bool) or not isinstance(threshold, (int, float)) or not threshold >= 0:
        raise ValueError(f"threshold must be a number >= 0 (Burda et al. use 0.01), got {threshold!r}")
    batch_size = _check_pos_int("batch_size", batch_size, "examples per forward pass")
    images = _images(data)
    if images.shape[0] < 2:
        raise ValueError(f"active_units needs at least 2 examples to compute a variance, got {images.shape[0]}")
    device = _model_device(model)
    with _EvalMode(model):
        mus = [model.encode(x)[0].detach().double().cpu() for x in _batches(images, batch_size, device)]
    mu = torch.cat(mus, 0)  # (N, D)
    if mu.dim() != 2:
        raise ValueError(f"model.encode must return mu of shape (B, D), got {tuple(mu.shape)}")
    # A_j = Cov_x( E_{q(z|x)}[z] )_jj = Var_x( mu_j(x) )   (Burda et al. 2016, Sec. 5.2)
    variances = mu.var(dim=0, correction=0).float()  # (D,)
    return int((variances > threshold).sum()), variances


def bits_per_dim(nll_nats: float | Tensor, num_dims: int) -> float | Tensor:
    """Convert a negative log-likelihood per example in nats to bits per data dimension.

    ``bits/dim = nll_nats / (D * ln 2)``, with ``D = num_dims`` (e.g. 784 for 28x28 MNIST).

    Args:
        nll_nats: a number or a tensor of any shape (converted elementwise).
        num_dims: number of data dimensions D per example, a positive int.

    Returns:
        Same type and shape as ``nll_nats``.
    """
    num_dims = _check_pos_int("num_dims", num_dims, "the number of data dimensions per example, e.g. 784 for MNIST")
    if isinstance(nll_nats, Tensor):
        if not nll_nats.is_floating_point():
            raise ValueError(f"nll_nats must be a floating-point tensor, got dtype {nll_nats.dtype}; use .float()")
    elif isinstance(nll_nats, bool) or not isinstance(nll_nats, (int, float, np.floating, np.integer)):
        raise ValueError(f"nll_nats must be a number or a float tensor (nats per example), got {type(nll_nats).__name__}")
    # bits/dim = nats / (D ln 2)   (1 nat = 1 / ln 2 bits)
    return nll_nats / (num_dims * math.log(2.0))


def nll_estimate(
    model: nn.Module,
    data: object,
    k: int = 100,
    batch_size: int = 100,
    generator: torch.Generator | None = None,
) -> dict[str, float]:
    """Estimate the test negative log-likelihood with k importance samples (Burda et al. 2016).

    ``-log p(x) ~ -L_k(x)``, ``L_k = log (1/k) sum_i p(x, z_i) / q(z_i|x)``, averaged over ``data``.
    Since ``E[L_k] <= log p(x)`` the reported NLL is, in expectation, an **upper bound** that
    tightens as k grows; ``elbo`` (= ``L_1``) is reported alongside for comparison.

    Args:
        model: a VAE with ``log_likelihood(x, k) -> (b,)`` and ``elbo(x) -> ELBOTerms``.
        data: ``Dataset`` or tensor ``(N, C, H, W)``.
        k: importance samples per example, ``>= 1``.
        batch_size: examples per forward pass (memory grows with ``k * batch_size``).
        generator: optional ``torch.Generator`` passed to ``model.log_likelihood`` for
            reproducible samples; otherwise the global RNG is used (seed it first).

    Returns:
        ``{"nll_nats", "nll_se", "bits_per_dim", "elbo"}`` (floats): mean NLL per example in
        nats, its standard error over examples (``sd / sqrt(N)``; the spread of the data, not of the
        importance sampling), the NLL in bits per data dimension, and the mean one-sample ELBO in nats.
    """
    k = _check_pos_int("k", k, "importance samples per example; 1 gives the ELBO, 100-5000 is usual")
    batch_size = _check_pos_int("batch_size", batch_size, "examples per forward pass")
    images = _images(data)
    num_dims = int(np.prod(images.shape[1:]))  # D = C * H * W
    device = _model_device(model)
    ll_sum, ll_sq_sum, elbo_sum = 0.0, 0.0, 0.0
    with _EvalMode(model):
        for x in _batches(images, batch_size, device):
            kw = {} if generator is None else {"generator": generator}
            ll = model.log_likelihood(x, k=k, **kw)  # (b,)
            el = model.elbo(x).elbo  # (b,)
            if ll.shape != x.shape[:1] or el.shape != x.shape[:1]:
                raise ValueError(
                    f"model.log_likelihood and model.elbo(x).elbo must return one value per example, "
                    f"shape {tuple(x.shape[:1])}, got {tuple(ll.shape)} and {tuple(el.shape)}"
                )
            ll_sum += float(ll.double().sum())
            ll_sq_sum += float(ll.double().square().sum())
            elbo_sum += float(el.double().sum())
    n = images.shape[0]
    nll = -ll_sum / n  # mean over examples of -L_k(x), nats
    # standard error of that mean over examples: sd(L_k(x)) / sqrt(N) (0 for a single example)
    var = max(ll_sq_sum / n - (ll_sum / n) ** 2, 0.0) * n / (n - 1) if n > 1 else 0.0
    return {
        "nll_nats": nll,
        "nll_se": math.sqrt(var / n),
        "bits_per_dim": bits_per_dim(nll, num_dims),
        "elbo": elbo_sum / n,
    }


def roc_auc(scores: Tensor | np.ndarray | Sequence[float], labels: Tensor | np.ndarray | Sequence[int]) -> float:
    """Area under the ROC curve, via ``sklearn.metrics.roc_auc_score``.

    The probability that a random positive scores higher than a random negative (ties count
    half). For anomaly detection, use ``scores = -ELBO`` (higher = more anomalous) and
    ``labels = 1`` for anomalies.

    Args:
        scores: ``(N,)`` real scores, higher meaning "more positive"; finite.
        labels: ``(N,)`` binary labels in {0, 1} (or bool), both classes present.

    Returns:
        AUC as a Python float in [0, 1].
    """
    from sklearn.metrics import roc_auc_score  # imported here: importing vae_core stays light

    s = _to_numpy("scores", scores)
    y = _to_numpy("labels", labels)
    if s.ndim != 1 or y.ndim != 1 or s.shape != y.shape:
        raise ValueError(
            f"scores and labels must be 1-D of the same length (N,), got {s.shape} and {y.shape}; "
            f"flatten them with .reshape(-1)"
        )
    if s.size == 0:
        raise ValueError("scores and labels are empty; pass at least one positive and one negative example")
    if not np.issubdtype(s.dtype, np.number) or np.issubdtype(s.dtype, np.complexfloating) or not np.isfinite(s).all():
        raise ValueError("scores must be finite real numbers; drop or fix NaN/inf scores (e.g. a diverged ELBO)")
    if y.dtype == bool:
        y = y.astype(np.int64)
    uniq = set(np.unique(y).tolist())
    if not uniq <= {0, 1}:
        raise ValueError(f"labels must be binary, 0 (normal) or 1 (positive/anomaly), got values {sorted(uniq)}")
    if uniq != {0, 1}:
        raise ValueError(
            f"ROC AUC needs both classes in labels, got only {sorted(uniq)}; "
            f"evaluate on a set with positives and negatives"
        )
    return float(roc_auc_score(y, s))


def png_bits(images: Tensor) -> Tensor:
    """Bits each binary image takes as a 1-bit greyscale PNG file (Pillow, ``optimize=True``), headers included.

    images: ``(N, 1, H, W)`` of 0/1 (anything else is refused: PNG here is lossless, so it must be told exactly
    which pixels are on). Returns ``(N,)`` float32, ``8 * len(file)``. A 28x28 PNG spends about 69 bytes on
    its signature and chunk headers whatever the pixels are; subtract the cost of a blank image to compare
    pixel data alone.
    """
    import io

    from PIL import Image  # Pillow comes with matplotlib; imported here so importing vae_core stays light

    if not isinstance(images, Tensor) or images.ndim != 4 or images.shape[1] != 1:
        got = tuple(images.shape) if isinstance(images, Tensor) else type(images).__name__
        raise ValueError(f"images must be a tensor (N, 1, H, W) of binary pixels, got {got}")
    if images.numel() and not bool(((images == 0) | (images == 1)).all()):
        raise ValueError("png_bits codes binary images (0/1 pixels) losslessly; binarize first, e.g. (x > 0.5).float()")
    bits = []
    for img in images[:, 0].detach().cpu().numpy().astype(bool):   # (H, W) each
        buffer = io.BytesIO()
        Image.fromarray(img).save(buffer, format="PNG", optimize=True)   # mode "1": one bit per pixel
        bits.append(8 * len(buffer.getvalue()))
    return torch.tensor(bits, dtype=torch.float32)


def _to_numpy(name: str, a: object) -> np.ndarray:
    if isinstance(a, Tensor):
        return a.detach().cpu().numpy()
    try:
        return np.asarray(a)
    except Exception as e:  # ragged lists and the like
        raise ValueError(f"{name} must be a 1-D tensor, array or list of numbers, got {type(a).__name__}") from e
