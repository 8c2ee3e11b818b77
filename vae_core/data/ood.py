"""Out-of-distribution images in MNIST's format, all made from what the course ships (no download).

Lesson 11 scores them with a VAE trained on MNIST to show Nalisnick et al. (2019)'s failure: a likelihood
model can rank simpler images than its training data as *more* likely. Every set is binary, ``(n, 1, 28, 28)``
float32 of 0/1 (the format of binarized MNIST), seeded, and made on the CPU in well under a second::

    from vae_core.data.ood import lookalikes
    sets = lookalikes(n=500, seed=0)          # {"blank": ..., "sprites": ..., "8x8 digits": ..., "noise": ...}
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from .dataset import check_seed
from .digits import load_digits
from .sprites import sample_sprites

# What each set is, for the lesson's tables.
WHAT = {
    "blank": "all-black images (no ink at all): the simplest image there is",
    "sprites": "the course's procedural sprites (squares, ellipses, hearts) rendered at 28x28",
    "8x8 digits": "scikit-learn's 8x8 digits, scaled to a 20x20 box and centred in 28x28 as MNIST's are, then thresholded",
    "noise": "independent pixels, on with probability 0.13 (MNIST's mean ink)",
}
N_DIGITS = 1797  # scikit-learn's 8x8 digits, all of them


def lookalikes(n: int = 500, seed: int = 0) -> dict[str, Tensor]:
    """Four out-of-distribution sets for an MNIST model, each ``(n, 1, 28, 28)`` binary float32.

    ``"8x8 digits"`` has at most 1,797 images (scikit-learn's whole set, in its order). ``seed`` picks the
    sprites and the noise; the blank and digit sets do not depend on it.
    """
    check_seed(seed)
    if not isinstance(n, int) or isinstance(n, bool) or n < 1:
        raise ValueError(f"n must be a positive int (images per set), got {n!r}")
    g = torch.Generator().manual_seed(seed)
    small = load_digits("all", limit=min(n, N_DIGITS)).images                          # (m, 1, 8, 8) in [0, 1]
    box = F.interpolate(small, size=(20, 20), mode="bilinear", align_corners=False)   # MNIST's 20x20 box
    digits = (F.pad(box, (4, 4, 4, 4)) > 0.5).float()                                 # (m, 1, 28, 28), centred
    return {
        "blank": torch.zeros(n, 1, 28, 28),
        "sprites": sample_sprites(n, image_size=28, seed=seed)[0],
        "8x8 digits": digits,
        "noise": (torch.rand(n, 1, 28, 28, generator=g) < 0.13).float(),
    }
