"""Batsim interval-set strings ("0-3 5 7-8") to and from sorted machine-id arrays."""

from __future__ import annotations

import numpy as np

from hdeeprm.common.errors import HDeepRMError


def format_intervals(ids) -> str:
    """Machine ids (any order, no duplicates) as Batsim's interval-set string."""
    arr = np.sort(np.asarray(ids, dtype=np.int64))
    if arr.size == 0:
        return ""
    # A run breaks wherever the next id is not the previous one plus one.
    breaks = np.flatnonzero(np.diff(arr) != 1)
    starts = np.concatenate(([0], breaks + 1))
    ends = np.concatenate((breaks, [arr.size - 1]))
    parts = []
    for s, e in zip(starts.tolist(), ends.tolist()):
        lo, hi = int(arr[s]), int(arr[e])
        parts.append(str(lo) if lo == hi else f"{lo}-{hi}")
    return " ".join(parts)


def parse_intervals(text: str) -> np.ndarray:
    """Batsim's interval-set string as a sorted array of machine ids."""
    ids: list[int] = []
    for part in str(text).split():
        lo, sep, hi = part.partition("-")
        try:
            a = int(lo)
            b = int(hi) if sep else a
        except ValueError:
            raise HDeepRMError(f"bad interval set {text!r}: expected ids like '0-3 5'") from None
        if b < a:
            raise HDeepRMError(f"bad interval set {text!r}: {part!r} has its bounds reversed")
        ids.extend(range(a, b + 1))
    return np.unique(np.array(ids, dtype=np.int64))
