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
def host_powers(hosts, rate, pstate, billed, speeds, watts_idle, watts_full, out):
    """Power (W) of each host of one allocation running at bottleneck ``rate`` (flop/s; 0 for
    a delay job or idle hosts). Load is the fraction of the host's current speed in use, so
    hosts faster than the bottleneck are only partially loaded, as SimGrid's L07 model does.
    Power is taken in the ``billed`` p-state, which differs from ``pstate`` only for SimGrid's
    energy-plugin start-up quirk."""
    for i in range(hosts.shape[0]):
        h = hosts[i]
        b = billed[h]
        load = 0.0
        if rate > 0.0:
            load = rate / speeds[h, pstate[h]]
        idle = watts_idle[h, b]
        out[i] = idle + load * (watts_full[h, b] - idle)
    return out


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
