"""Hot loops compiled with numba.

Each kernel works on plain numpy arrays and stops as early as it can, so that per-event
cost does not grow with the size of the platform when the answer is found near the start.
"""

from __future__ import annotations

import numba
import numpy as np


@numba.njit(cache=True, nogil=True)
def lowest_free(busy_job: np.ndarray, count: int) -> np.ndarray:
    """The ``count`` lowest machine ids whose ``busy_job`` is -1, or an empty array when fewer
    are free. Scans only as far as needed."""
    out = np.empty(count, np.int64)
    found = 0
    for h in range(busy_job.shape[0]):
        if busy_job[h] < 0:
            out[found] = h
            found += 1
            if found == count:
                return out
    return out[:0]


@numba.njit(cache=True, nogil=True)
def lower_bound(values, count, v):
    """np.searchsorted(values[:count], v, "left"): the first index of the sorted
    ``values[:count]`` whose value is not below ``v``."""
    lo, hi = 0, count
    while lo < hi:
        mid = (lo + hi) >> 1
        if values[mid] < v:
            lo = mid + 1
        else:
            hi = mid
    return lo


@numba.njit(cache=True, nogil=True)
def bottleneck_speed(hosts, pstate, speeds) -> float:
    """Slowest current speed (flop/s) over an allocation: a parallel task advances at it."""
    best = np.inf
    for i in range(hosts.shape[0]):
        h = hosts[i]
        s = speeds[h, pstate[h]]
        if s < best:
            best = s
    return best


@numba.njit(cache=True, nogil=True)
def claim_machines(busy_job, hosts, job) -> int:
    """Mark ``hosts`` as serving ``job`` if all are valid and free. Returns 0 on success, or,
    leaving ``busy_job`` unchanged, 1 for an id out of range, 2 for a machine in use, 3 for
    an id given twice."""
    n = busy_job.shape[0]
    code = 0
    done = 0
    for i in range(hosts.shape[0]):
        h = hosts[i]
        if h < 0 or h >= n:
            code = 1
        elif busy_job[h] == job:
            code = 3
        elif busy_job[h] >= 0:
            code = 2
        if code:
            break
        busy_job[h] = job
        done += 1
    if code:
        for k in range(done):
            busy_job[hosts[k]] = -1
    return code


@numba.njit(cache=True, nogil=True)
def update_powers(hosts, rate, pstate, billed, speeds, watts_idle, watts_full, power):
    """Recompute and store the power (W) of ``hosts``, all running one job at bottleneck
    ``rate`` (flop/s; 0 for a delay job or idle hosts). Load is the fraction of a host's
    current speed in use, so hosts faster than the bottleneck are only partially loaded, as
    in SimGrid's L07 model. Power is taken in the ``billed`` p-state, which differs from
    ``pstate`` only for SimGrid's energy-plugin start-up quirk. Returns the sum of the new
    powers and the change of the platform's total."""
    new_total = 0.0
    delta = 0.0
    for i in range(hosts.shape[0]):
        h = hosts[i]
        b = billed[h]
        load = 0.0
        if rate > 0.0:
            load = rate / speeds[h, pstate[h]]
        idle = watts_idle[h, b]
        p = idle + load * (watts_full[h, b] - idle)
        delta += p - power[h]
        power[h] = p
        new_total += p
    return new_total, delta
