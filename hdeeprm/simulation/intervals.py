"""Batsim interval-set strings ("0-3 5 7-8") to and from sorted machine-id arrays."""

from __future__ import annotations

import numba
import numpy as np

from hdeeprm.common.errors import HDeepRMError
from hdeeprm.inputs.limits import MAX_CORES, clip

# Ours, not procset: same strings, but ProcSet merges one id at a time: 20-150x slower on 100,000 allocations.


def format_intervals(ids) -> str:
    """Machine ids (any order, no duplicates) as Batsim's interval-set string."""
    # A Python loop over a sorted list: for allocations of a few dozen cores, 3-4x faster than
    # finding the runs with numpy (out_jobs.csv formats one per job), and as fast on big ones.
    ordered = sorted(np.asarray(ids, dtype=np.int64).tolist())
    if not ordered:
        return ""
    parts = []
    lo = prev = ordered[0]
    for x in ordered[1:]:
        if x != prev + 1:  # a run breaks wherever the next id is not the previous one plus one
            parts.append(str(lo) if lo == prev else f"{lo}-{prev}")
            lo = x
        prev = x
    parts.append(str(lo) if lo == prev else f"{lo}-{prev}")
    return " ".join(parts)


def format_allocations(alloc, jobs) -> list[str]:
    """format_intervals of ``alloc[j]`` for each job j of ``jobs``, in one compiled pass:
    out_jobs.csv needs one per job (100,000 Python calls took half a second). ``alloc``: the
    reference engine's list (arrays, or None for a job that never started) or the fast
    path's Allocations; a job that never started gets ""."""
    jobs = np.asarray(jobs, dtype=np.int64)
    flat = getattr(alloc, "flat", None)
    if flat is not None:
        buffer, offsets, sizes = flat()
    else:
        sizes = np.array([0 if a is None else len(a) for a in alloc], dtype=np.int64)
        offsets = np.zeros(len(sizes), np.int64)
        np.cumsum(sizes[:-1], out=offsets[1:])
        started = [np.asarray(a, dtype=np.int64) for a in alloc if a is not None]
        buffer = np.concatenate(started) if started else np.zeros(0, np.int64)
    chars, ends = _format_sets(buffer, offsets, sizes, jobs)
    text = chars.tobytes().decode("ascii")
    bounds = ends.tolist()
    return [text[a:b] for a, b in zip([0] + bounds[:-1], bounds)]


@numba.njit(cache=True, nogil=True)
def _format_sets(buffer, offsets, sizes, jobs):
    # format_intervals, written as ASCII into one buffer; ends[i]: where job i's string ends.
    bound = 0
    for i in range(jobs.shape[0]):
        bound += 21 * sizes[jobs[i]]  # at most 19 digits and a separator per id
    out = np.empty(bound, np.uint8)
    ends = np.empty(jobs.shape[0], np.int64)
    pos = 0
    for i in range(jobs.shape[0]):
        j = jobs[i]
        n = sizes[j]
        if n > 0:
            ids = np.sort(buffer[offsets[j]:offsets[j] + n])
            lo = prev = ids[0]
            first = True
            for k in range(1, n + 1):
                if k == n or ids[k] != prev + 1:
                    if not first:
                        out[pos] = 32  # " "
                        pos += 1
                    first = False
                    pos = _write_int(out, pos, lo)
                    if prev != lo:
                        out[pos] = 45  # "-"
                        pos = _write_int(out, pos + 1, prev)
                    if k < n:
                        lo = ids[k]
                if k < n:
                    prev = ids[k]
        ends[i] = pos
    return out[:pos], ends


@numba.njit(cache=True, nogil=True, inline="always")
def _write_int(out, pos, value):
    if value < 0:
        out[pos] = 45
        pos += 1
        value = -value
    digits = 1
    rest = value // 10
    while rest > 0:
        digits += 1
        rest //= 10
    for d in range(digits - 1, -1, -1):
        out[pos + d] = 48 + value % 10
        value //= 10
    return pos + digits


def parse_intervals(text: str) -> np.ndarray:
    """Batsim's interval-set string as a sorted array of machine ids."""
    ids: list[int] = []
    parts = str(text).split()
    for part in parts:
        lo, sep, hi = part.partition("-")
        try:
            a = int(lo)
            b = int(hi) if sep else a
        except ValueError:
            raise HDeepRMError(f"bad interval set {text!r}: expected ids like '0-3 5'") from None
        if b < a:
            raise HDeepRMError(f"bad interval set {text!r}: {part!r} has its bounds reversed")
        if a < 0 or b >= MAX_CORES:  # no platform has them; and "0-999999999999" would fill the memory
            raise HDeepRMError(f"bad interval set {clip(text)}: {clip(part)}: machine ids go from 0 to "
                               f"{MAX_CORES - 1} (the most machines a platform may have)")
        if len(parts) == 1:  # one interval (most allocations): already sorted, no duplicates
            return np.arange(a, b + 1, dtype=np.int64)
        ids.extend(range(a, b + 1))
    if len(ids) < 4096:  # Python's set and sort beat np.unique's overhead on small sets
        return np.array(sorted(set(ids)), dtype=np.int64)
    return np.unique(np.array(ids, dtype=np.int64))
