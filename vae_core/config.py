"""Course-wide switches: quick mode.

Quick mode shrinks epochs and data so every lesson runs in well under a minute; CI and
``pytest`` use it. It is one environment variable::

    VAE_COURSE_QUICK=1 jupyter lab        # or: export VAE_COURSE_QUICK=1

Lessons read it once in their setup cell with :func:`quick_mode` and pick sizes with
:func:`pick`, e.g. ``epochs = pick(full=10, quick=1)``.
"""
from __future__ import annotations

import os
from typing import TypeVar

QUICK_ENV = "VAE_COURSE_QUICK"
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"", "0", "false", "no", "off"}

T = TypeVar("T")


def quick_mode() -> bool:
    """True when ``VAE_COURSE_QUICK`` is set to 1/true/yes/on (case-insensitive)."""
    raw = os.environ.get(QUICK_ENV, "").strip().lower()
    if raw in _TRUE:
        return True
    if raw in _FALSE:
        return False
    raise ValueError(
        f"{QUICK_ENV} must be one of 1/true/yes/on or 0/false/no/off, got {raw!r}; "
        f"unset it for full mode or set {QUICK_ENV}=1 for quick mode"
    )


def pick(full: T, quick: T) -> T:
    """Return ``quick`` in quick mode, else ``full``."""
    return quick if quick_mode() else full
