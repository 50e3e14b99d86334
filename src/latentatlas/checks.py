"""Argument checks shared by every estimator and function: one message shape for each kind of value.

Each returns the value as a plain Python number (or None where allowed) and raises
:class:`~latentatlas.errors.LatentAtlasError` naming the argument and the bad value otherwise. ``bool`` is
never a number here (``True`` is not a k).
"""

from __future__ import annotations

import math
from typing import Any, Iterable

import numpy as np

from latentatlas.errors import LatentAtlasError


def _is_integer(v: Any) -> bool:
    return not isinstance(v, (bool, np.bool_)) and isinstance(v, (int, np.integer))


def _is_number(v: Any) -> bool:
    return not isinstance(v, (bool, np.bool_)) and isinstance(v, (int, float, np.integer, np.floating))


def integer(name: str, value: Any, low: int = 0, *, none_ok: bool = False) -> int | None:
    """An integer ≥ ``low``: ``"{name} must be an integer >= {low}, got {value!r}"`` otherwise."""
    if value is None and none_ok:
        return None
    if not _is_integer(value) or value < low:
        raise LatentAtlasError(f"{name} must be an integer >= {low}, got {value!r}")
    return int(value)


def number(name: str, value: Any, low: float = 0.0, *, strict: bool = False, none_ok: bool = False) -> float | None:
    """A finite number ≥ ``low`` (> ``low`` with ``strict``)."""
    if value is None and none_ok:
        return None
    if not _is_number(value) or not math.isfinite(value) or (value <= low if strict else value < low):
        raise LatentAtlasError(f"{name} must be a finite number {'>' if strict else '>='} {low:g}, got {value!r}")
    return float(value)


def fraction(name: str, value: Any) -> float:
    """A number in [0, 1)."""
    if not _is_number(value) or not 0 <= value < 1:
        raise LatentAtlasError(f"{name} must be in [0, 1), got {value!r}")
    return float(value)


def choice(name: str, value: Any, options: Iterable[str]) -> str:
    """One of ``options``."""
    options = tuple(options)
    if value not in options:
        raise LatentAtlasError(f"{name} must be one of {', '.join(options)}; got {value!r}")
    return value
