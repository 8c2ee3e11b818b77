"""Disentanglement against known factors: the mutual information gap (MIG) of Chen et al. (2018).

For ground-truth factors ``v_1 .. v_K`` (sprite shape, scale, ...) and latent dimensions
``z_1 .. z_J`` (the posterior means)::

    MIG = (1/K) sum_k [ I(z_{j1(k)}; v_k) - I(z_{j2(k)}; v_k) ] / H(v_k)

where ``j1(k)`` and ``j2(k)`` are the latents with the largest and second-largest mutual
information with ``v_k``. Dividing by ``H(v_k)`` (the most any latent can know about ``v_k``)
puts each gap in [0, 1]. A code that gives every factor a latent of its own scores near 1;
one that spreads a factor over several latents, or ignores it, scores near 0.

Estimation, as in disentanglement_lib (Locatello et al. 2019): each latent dimension is cut into
``n_bins`` (20) equal-width bins between its minimum and maximum over the data, and ``I(z_j; v_k)``
is the plug-in estimate from the joint histogram, ``sum p(a, b) log p(a, b) / (p(a) p(b))`` with
``p = counts / N``, in nats. The plug-in estimate is biased upwards by about
``(bins_z - 1)(bins_v - 1) / (2N)`` nats (Miller 1955; Paninski 2003), the same for every latent,
so it mostly cancels in the gap; use thousands of examples.

The pieces, each a lesson exercise: :func:`discretize`, :func:`discrete_entropy`,
:func:`mutual_info_matrix`, :func:`normalized_gap`; the whole: :func:`mig`, :func:`mig_report`;
and :func:`encode_sprites` to get ``(codes, factors)`` from a model and sprites.

References
----------
* Chen, Li, Grosse & Duvenaud (2018), *Isolating Sources of Disentanglement in VAEs*, Sec. 5.
* Locatello et al. (2019), *Challenging Common Assumptions in the Unsupervised Learning of
  Disentangled Representations* (disentanglement_lib: 20-bin histogram discretisation).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor, nn

__all__ = [
    "discretize",
    "discrete_entropy",
    "mutual_info_matrix",
    "normalized_gap",
    "mig",
    "FactorRow",
    "MIGReport",
    "mig_report",
    "encode_sprites",
]


# ----------------------------------------------------------------------------- validation
def _matrix(name: str, a: object, what: str) -> Tensor:
    """Tensor, array or nested list -> a CPU tensor ``(N, K)`` with N >= 1 and K >= 1."""
    if isinstance(a, Tensor):
        t = a.detach().cpu()
    else:
        try:
            t = torch.as_tensor(np.asarray(a))
        except (TypeError, ValueError, RuntimeError) as e:  # ragged lists, strings, objects
            raise ValueError(f"{name} must be a tensor or array of shape (N, K) {what}, got {type(a).__name__}") from e
    if t.dim() != 2 or t.shape[0] == 0 or t.shape[1] == 0:
        raise ValueError(
            f"{name} must have shape (N, K) {what} with N, K >= 1, got {tuple(t.shape)}; "
            f"one row per example (use x[:, None] for a single column)"
        )
    return t


def _labels(name: str, a: object, what: str = "of integer labels") -> Tensor:
    """Integer labels ``(N, K)`` as int64 (bool and float refused: they are not class labels)."""
    t = _matrix(name, a, what)
    if t.dtype == torch.bool or t.is_floating_point() or t.is_complex():
        raise ValueError(
            f"{name} must hold integer labels (e.g. sprite factor indices), got dtype {t.dtype}; "
            f"discretize real-valued codes first with discretize(codes)"
        )
    return t.long()


def _codes(codes: object) -> Tensor:
    """Real codes ``(N, J)`` as float64, finite."""
    t = _matrix("codes", codes, "of latent codes (one column per latent dimension)")
    if t.dtype == torch.bool or t.is_complex():
        raise ValueError(f"codes must be real numbers, got dtype {t.dtype}")
    t = t.double()
    bad = ~torch.isfinite(t)
    if bad.any():
        row, col = (int(i) for i in bad.nonzero()[0])
        raise ValueError(
            f"codes must be finite, got {float(t[row, col])} at row {row}, latent {col}; "
            f"a NaN code usually means the model diverged (check the training loss)"
        )
    return t


def _same_n(a_name: str, a: Tensor, b_name: str, b: Tensor) -> None:
    if a.shape[0] != b.shape[0]:
        raise ValueError(
            f"{a_name} and {b_name} must have one row per example each, got {a.shape[0]} and {b.shape[0]} rows; "
            f"pass the codes and the factors of the same examples, in the same order"
        )


def _check_bins(n_bins: object) -> int:
    if isinstance(n_bins, bool) or not isinstance(n_bins, (int, np.integer)) or n_bins < 2:
        raise ValueError(f"n_bins must be an int >= 2 (disentanglement_lib uses 20), got {n_bins!r}")
    return int(n_bins)


def _dense(labels: Tensor) -> tuple[Tensor, int]:
    """Relabel one column ``(N,)`` as 0 .. L-1: ``(ids (N,), L)``."""
    values, ids = torch.unique(labels, return_inverse=True)
    return ids, values.numel()


# ----------------------------------------------------------------------------- the pieces
def discretize(codes: Tensor | np.ndarray, n_bins: int = 20) -> Tensor:
    """Cut each latent dimension into ``n_bins`` equal-width bins between its min and max.

    Bin ``i`` of dimension ``j`` holds ``lo_j + i w_j <= z_j < lo_j + (i+1) w_j``, with
    ``w_j = (hi_j - lo_j) / n_bins``; the maximum goes in the last bin (as ``np.histogram``).
    A constant dimension lands entirely in bin 0 (it then carries no information).

    Args:
        codes: ``(N, J)`` real, finite.
        n_bins: bins per dimension, ``>= 2``.

    Returns:
        int64 tensor ``(N, J)`` of bin indices in ``[0, n_bins)``.
    """
    z = _codes(codes)
    n_bins = _check_bins(n_bins)
    out = torch.zeros(z.shape, dtype=torch.long)
    for j in range(z.shape[1]):
        lo, hi = float(z[:, j].min()), float(z[:, j].max())
        if hi > lo:
            inner = torch.from_numpy(np.linspace(lo, hi, n_bins + 1)[1:-1])  # the n_bins - 1 inner edges
            out[:, j] = torch.searchsorted(inner, z[:, j].contiguous(), right=True)  # number of inner edges <= z
    return out


def discrete_entropy(labels: Tensor | np.ndarray) -> Tensor:
    """Plug-in entropy of each column of integer labels, in nats.

    ``H(v) = -sum_a p(a) log p(a)``, ``p(a) = count(a) / N``.

    Args:
        labels: ``(N, K)`` integer labels (e.g. sprite factor indices).

    Returns:
        float64 tensor ``(K,)``; 0 for a constant column, ``log L`` for L equally frequent values.
    """
    v = _labels("labels", labels)
    n = v.shape[0]
    out = torch.empty(v.shape[1], dtype=torch.float64)
    for k in range(v.shape[1]):
        ids, size = _dense(v[:, k])
        counts = torch.bincount(ids, minlength=size).double()  # count(a) > 0 for every value a
        out[k] = (counts / n * (n / counts).log()).sum()  # H = -sum p log p = sum p log(1/p)
    return out


def mutual_info_matrix(codes_discrete: Tensor | np.ndarray, factors: Tensor | np.ndarray) -> Tensor:
    """Plug-in mutual information between every discretised latent and every factor, in nats.

    ``I(z_j; v_k) = sum_{a, b} p(a, b) log[ p(a, b) / (p(a) p(b)) ]`` with ``p`` the empirical
    frequencies of the pairs ``(z_j, v_k)`` over the N examples.

    Args:
        codes_discrete: ``(N, J)`` integer labels, e.g. ``discretize(codes)``.
        factors: ``(N, K)`` integer labels of the ground-truth factors.

    Returns:
        float64 tensor ``(J, K)``, entries in ``[0, min(H(z_j), H(v_k))]``.
    """
    z = _labels("codes_discrete", codes_discrete, "of integer labels (discretize(codes) gives them)")
    v = _labels("factors", factors, "of integer factor labels")
    _same_n("codes_discrete", z, "factors", v)
    n = z.shape[0]
    zs, vs = [_dense(z[:, j]) for j in range(z.shape[1])], [_dense(v[:, k]) for k in range(v.shape[1])]
    mi = torch.empty(len(zs), len(vs), dtype=torch.float64)
    for j, (a, na) in enumerate(zs):
        for k, (b, nb) in enumerate(vs):
            joint = torch.bincount(a * nb + b, minlength=na * nb).view(na, nb).double()  # counts n_ab
            pa, pb = joint.sum(1, keepdim=True), joint.sum(0, keepdim=True)  # counts n_a (na, 1), n_b (1, nb)
            nz = joint > 0  # 0 log 0 = 0
            # I = sum_ab (n_ab / N) log( n_ab N / (n_a n_b) )   (integer products: exact, so independence gives 0)
            terms = joint * (joint * n / (pa * pb)).log()
            mi[j, k] = terms[nz].sum() / n
    return mi.clamp_min(0.0)  # rounding can leave -1e-17 where the true value is 0


def normalized_gap(mi: Tensor, entropies: Tensor) -> Tensor:
    """Per-factor MIG term: ``(I(z_{j1}; v_k) - I(z_{j2}; v_k)) / H(v_k)`` (Chen et al. 2018, eq. 7).

    Args:
        mi: ``(J, K)`` mutual information, ``J >= 2`` latents (rows) by ``K`` factors (columns).
        entropies: ``(K,)`` entropies ``H(v_k) > 0`` of the factors, same unit as ``mi``.

    Returns:
        float64 tensor ``(K,)``: the gap between the two most informative latents of each factor,
        as a fraction of what there is to know about it.
    """
    if not isinstance(mi, Tensor) or mi.dim() != 2 or not mi.is_floating_point():
        got = f"{tuple(mi.shape)} {mi.dtype}" if isinstance(mi, Tensor) else type(mi).__name__
        raise ValueError(f"mi must be a float tensor (J, K) of latents by factors, got {got}; build it with mutual_info_matrix")
    if mi.shape[0] < 2:
        raise ValueError(f"MIG compares the two most informative latents, so mi needs J >= 2 rows (latents), got {mi.shape[0]}")
    if not isinstance(entropies, Tensor) or entropies.shape != mi.shape[1:]:
        got = tuple(entropies.shape) if isinstance(entropies, Tensor) else type(entropies).__name__
        raise ValueError(f"entropies must be a tensor ({mi.shape[1]},), one H(v_k) per column of mi, got {got}")
    if torch.isnan(mi).any() or torch.isnan(entropies).any():
        raise ValueError("mi and entropies must not contain NaN; compute them from finite codes and factors")
    constant = (entropies <= 0).nonzero()
    if constant.numel():
        k = int(constant[0])
        raise ValueError(
            f"factor {k} has entropy {float(entropies[k]):g}: it does not vary over these examples, so its "
            f"normalised gap (divided by H(v_k)) is undefined; drop that factor or use examples where it varies"
        )
    top2 = mi.double().topk(2, dim=0).values  # (2, K): best and second-best latent per factor
    return (top2[0] - top2[1]) / entropies.double()  # (I_1 - I_2) / H(v_k)


def mig(codes: Tensor | np.ndarray, factors: Tensor | np.ndarray, n_bins: int = 20) -> float:
    """The mutual information gap: the mean over factors of :func:`normalized_gap`, in [0, 1].

    Args:
        codes: ``(N, J)`` real latent codes (posterior means), ``J >= 2``.
        factors: ``(N, K)`` integer ground-truth factors, each varying over the N examples.
        n_bins: histogram bins per latent dimension (20 in disentanglement_lib).
    """
    return mig_report(codes, factors, n_bins).score


# ----------------------------------------------------------------------------- the report
@dataclass(frozen=True)
class FactorRow:
    """Which latent captures one factor, and by how much (MI in nats)."""

    factor: str
    entropy: float  # H(v_k)
    latent: int  # j1: the latent with the most information about the factor
    mi: float  # I(z_j1; v_k)
    runner_up: int  # j2: the second most informative latent
    runner_up_mi: float  # I(z_j2; v_k)
    gap: float  # (mi - runner_up_mi) / entropy


@dataclass(frozen=True)
class MIGReport:
    """MIG with its parts: ``score``, one :class:`FactorRow` per factor, ``mi (J, K)``, ``entropies (K,)``.

    ``print(report)`` shows which latent captures which factor.
    """

    score: float
    rows: tuple[FactorRow, ...]
    mi: Tensor
    entropies: Tensor
    n_bins: int
    n_examples: int

    def __str__(self) -> str:
        lines = [
            f"MIG = {self.score:.3f}  (mean normalised gap over {len(self.rows)} factors; "
            f"{self.n_examples} examples, {self.n_bins} bins, MI in nats)",
            f"{'factor':<12} {'H(v)':>6} {'best z':>6} {'I(z;v)':>7} {'I/H':>5} {'2nd z':>6} {'I(z;v)':>7} {'gap':>6}",
        ]
        for r in self.rows:
            lines.append(
                f"{r.factor:<12} {r.entropy:6.3f} {r.latent:6d} {r.mi:7.3f} {r.mi / r.entropy:5.2f} "
                f"{r.runner_up:6d} {r.runner_up_mi:7.3f} {r.gap:6.3f}"
            )
        return "\n".join(lines)


def mig_report(
    codes: Tensor | np.ndarray,
    factors: Tensor | np.ndarray,
    n_bins: int = 20,
    factor_names: list[str] | tuple[str, ...] | None = None,
) -> MIGReport:
    """MIG and, for every factor, its best and second-best latent with their MI.

    Args:
        codes: ``(N, J)`` real latent codes (posterior means), ``J >= 2``.
        factors: ``(N, K)`` integer ground-truth factors, each varying over the N examples.
        n_bins: histogram bins per latent dimension.
        factor_names: K names for the rows (e.g. ``vae_core.data.sprites.FACTOR_NAMES``);
            default ``"v0", "v1", ...``.

    Returns:
        :class:`MIGReport`.
    """
    z = _codes(codes)
    v = _labels("factors", factors, "of integer factor labels")
    _same_n("codes", z, "factors", v)
    if z.shape[1] < 2:
        raise ValueError(f"MIG compares the two most informative latents, so codes need J >= 2 columns, got {z.shape[1]}")
    names = [f"v{k}" for k in range(v.shape[1])] if factor_names is None else list(factor_names)
    if len(names) != v.shape[1] or not all(isinstance(s, str) for s in names):
        raise ValueError(f"factor_names must be {v.shape[1]} strings, one per factor column, got {factor_names!r}")
    mi = mutual_info_matrix(discretize(z, n_bins), v)  # (J, K)
    h = discrete_entropy(v)  # (K,)
    gaps = normalized_gap(mi, h)  # (K,)
    order = mi.topk(2, dim=0).indices  # (2, K)
    rows = tuple(
        FactorRow(names[k], float(h[k]), int(order[0, k]), float(mi[order[0, k], k]), int(order[1, k]),
                  float(mi[order[1, k], k]), float(gaps[k]))
        for k in range(v.shape[1])
    )
    return MIGReport(float(gaps.mean()), rows, mi, h, _check_bins(n_bins), z.shape[0])


# ----------------------------------------------------------------------------- from a model
@torch.no_grad()
def encode_sprites(model: nn.Module, data: object, batch_size: int = 256) -> tuple[Tensor, Tensor]:
    """Posterior means of sprites with their ground-truth factors, ready for :func:`mig`.

    Args:
        model: anything with ``encode(x) -> (mu, logvar)``, ``mu: (b, D)``.
        data: a sprites ``Dataset`` with ``.factors`` (``vae_core.data.load_sprites``), or a tuple
            ``(images (N, C, H, W), factors (N, K))``.
        batch_size: examples per forward pass.

    Returns:
        ``(codes, factors)``: CPU float32 ``(N, D)`` posterior means and int64 ``(N, K)`` factors.
    """
    images, factors = data if isinstance(data, tuple) and len(data) == 2 else (getattr(data, "images", None), getattr(data, "factors", None))
    if not isinstance(images, Tensor) or images.dim() != 4 or images.shape[0] == 0 or not images.is_floating_point():
        raise ValueError(
            "data must be a sprites Dataset (vae_core.data.load_sprites(...)) or a tuple (images, factors) with "
            f"float images (N, C, H, W), got {type(data).__name__}"
        )
    if factors is None:
        raise ValueError("data has no ground-truth factors (.factors is None); use vae_core.data.load_sprites(...)")
    factors = _labels("factors", factors, "of integer factor labels")
    _same_n("images", images, "factors", factors)
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive int (examples per forward pass), got {batch_size!r}")
    p = next(model.parameters(), None)
    device = p.device if p is not None else torch.device("cpu")
    was_training = model.training
    model.eval()
    try:
        mus = []
        for start in range(0, images.shape[0], batch_size):
            out = model.encode(images[start : start + batch_size].to(device))
            mu = out[0] if isinstance(out, tuple) else out  # a VAE gives (mu, logvar); an AutoEncoder gives z
            mus.append(mu.float().cpu())  # (b, D)
    finally:
        model.train(was_training)
    return torch.cat(mus), factors
