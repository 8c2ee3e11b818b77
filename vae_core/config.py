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


def env_flag(name: str) -> bool:
    """True when the environment variable ``name`` is 1/true/yes/on, False when unset or 0/false/no/off
    (case-insensitive); anything else is refused, so a typo never silently means "off"."""
    raw = os.environ.get(name, "").strip().lower()
    if raw in _TRUE:
        return True
    if raw in _FALSE:
        return False
    raise ValueError(
        f"{name} must be one of 1/true/yes/on or 0/false/no/off, got {raw!r}; "
        f"unset it to turn it off or set {name}=1 to turn it on"
    )


def quick_mode() -> bool:
    """True when ``VAE_COURSE_QUICK`` is set to 1/true/yes/on (case-insensitive)."""
    return env_flag(QUICK_ENV)


def pick(full: T, quick: T) -> T:
    """Return ``quick`` in quick mode, else ``full``."""
    return quick if quick_mode() else full
