"""SimGrid's clock, step by step, as Batsim 4.2.1 runs it (SimGrid 3.32, ptask_L07 model).

Batsim never computes "this job ends at start + work / speed". SimGrid keeps a list of
activities (a parallel job's task, every sleep: delay jobs, walltime timeouts, the job
submitter, the reply of the scheduler, CALL_ME_LATER waiters) and advances its clock in
steps (kernel/EngineImpl.cpp ``solve``, surf/ptask_L07.cpp ``update_actions_state``):

    delta = min over activities of (task: remains / rate, or 0 once remains <= 0;
                                    sleep: its remaining duration)
    now   = now + delta
    every task:  remains -= rate * delta, set to 0 below 1e-14, done when <= 0
    every sleep: duration -= delta,       set to 0 below 1e-9 s, done when <= 0

A task's ``remains`` is the fraction of its work left (1.0 at start) and its ``rate`` is
``bottleneck speed / flops per machine``. So an end time is the floating-point sum of every
step's length over the job's life, and events that coincide in exact arithmetic can fall in
two steps (two Batsim messages), while events a few ulps apart can fall in one. Everything
that ends in one step reaches Batsim's scheduler in one message.

This module holds the activities in creation order (the order SimGrid reports them in) in
plain arrays, and the step as a numba kernel, shared by the engine and the compiled fast
path. Thresholds: ``sg_maxmin_precision * sg_surf_precision`` and ``sg_surf_precision``
(kernel/lmm/System.cpp).
"""

from __future__ import annotations

import math

import numba
import numpy as np

TASK_PRECISION = 1e-5 * 1e-9
SLEEP_PRECISION = 1e-9

# What an activity is for (its owner is a job index, or -1).
JOB_TASK, JOB_TIMEOUT, JOB_DELAY, JOB_DELAY_KILLED, SUBMITTER, REPLY, WAITER = range(7)


@numba.njit(cache=True, nogil=True)
def sg_step(is_task, remains, rate, duration, alive, count, now, done):
    """One SimGrid step over activities ``0..count-1``: returns the new clock and the number
    of activities that ended (their slots, in creation order, in ``done[:k]``; they are
    marked dead). Returns (now, -1) when no activity is left."""
    delta = -1.0
    for a in range(count):
        if not alive[a]:
            continue
        if is_task[a]:
            if rate[a] > 0.0:
                v = remains[a] / rate[a] if remains[a] > 0.0 else 0.0
                if delta < 0.0 or v < delta:
                    delta = v
        elif delta < 0.0 or duration[a] < delta:
            delta = duration[a]
    if delta < 0.0:
        return now, -1
    now = now + delta
    k = 0
    for a in range(count):
        if not alive[a]:
            continue
        if is_task[a]:
            left = remains[a] - rate[a] * delta
            if left < TASK_PRECISION:
                left = 0.0
            remains[a] = left
            ended = left <= 0.0
        else:
            left = duration[a] - delta
            if left < SLEEP_PRECISION:
                left = 0.0
            duration[a] = left
            ended = left <= 0.0
        if ended:
            alive[a] = False
            done[k] = a
            k += 1
    return now, k


@numba.njit(cache=True, nogil=True)
def sg_compact(is_task, remains, rate, duration, alive, kind, owner, count):
    """Drop dead activities, keeping creation order; returns the new count."""
    k = 0
    for a in range(count):
        if alive[a]:
            if k != a:
                is_task[k] = is_task[a]
                remains[k] = remains[a]
                rate[k] = rate[a]
                duration[k] = duration[a]
                alive[k] = True
                kind[k] = kind[a]
                owner[k] = owner[a]
            k += 1
    for a in range(k, count):
        alive[a] = False
    return k


class Activities:
    """SimGrid's activities in creation order (see the module docstring)."""

    def __init__(self, capacity: int = 64):
        self.count = 0
        self.nb_alive = 0
        self._allocate(capacity)

    def _allocate(self, capacity: int) -> None:
        old = getattr(self, "is_task", None)
        arrays = {"is_task": np.zeros(capacity, np.bool_), "remains": np.zeros(capacity),
                  "rate": np.zeros(capacity), "duration": np.zeros(capacity),
                  "alive": np.zeros(capacity, np.bool_), "kind": np.zeros(capacity, np.int8),
                  "owner": np.full(capacity, -1, np.int64)}
        if old is not None:
            for name, array in arrays.items():
                array[:self.count] = getattr(self, name)[:self.count]
        for name, array in arrays.items():
            setattr(self, name, array)
        self.done = np.empty(capacity, np.int64)

    def add_task(self, kind: int, owner: int, rate: float, remains: float = 1.0) -> int:
        a = self._slot()
        self.is_task[a], self.remains[a], self.rate[a] = True, remains, rate
        self.kind[a], self.owner[a] = kind, owner
        return a

    def add_sleep(self, kind: int, owner: int, duration: float) -> int:
        a = self._slot()
        self.is_task[a], self.duration[a] = False, duration
        self.kind[a], self.owner[a] = kind, owner
        return a

    def cancel(self, slot: int) -> None:
        if slot >= 0 and self.alive[slot]:
            self.alive[slot] = False
            self.nb_alive -= 1

    def step(self, now: float) -> tuple[float, np.ndarray | None]:
        """Advance one step from ``now``: the new clock and the slots that ended (None when
        nothing is left). Slots stay valid until the next ``step``."""
        now, k = sg_step(self.is_task, self.remains, self.rate, self.duration, self.alive,
                         self.count, now, self.done)
        if k < 0:
            return now, None
        self.nb_alive -= k
        return now, self.done[:k]

    def compact(self) -> bool:
        """Reclaim dead slots when they are most of the list (slots change: callers that keep
        slots must re-read them from ``owner`` and ``kind``). Returns whether it did."""
        if self.count - self.nb_alive <= max(32, self.nb_alive):
            return False
        self.count = sg_compact(self.is_task, self.remains, self.rate, self.duration, self.alive,
                                self.kind, self.owner, self.count)
        return True

    def _slot(self) -> int:
        if self.count == self.is_task.shape[0]:
            self._allocate(2 * self.count)
        a = self.count
        self.count += 1
        self.nb_alive += 1
        self.alive[a] = True
        return a


@numba.njit(cache=True, nogil=True)
def longdouble_difference(a, b):
    """``float(np.longdouble(a) - np.longdouble(b))`` for doubles ``a`` and ``b`` on x86-64
    (x87 80-bit extended: 64-bit significand), without long doubles (numba has none).

    The x87 subtraction rounds the exact difference to 64 bits, and the conversion rounds
    that to 53: a double rounding. TwoSum gives the exact difference as ``s + e`` with
    ``s = fl(a - b)``; the two roundings differ from ``s`` only when the 64-bit rounding lands
    exactly on the midpoint between ``s`` and its neighbour ``t`` (towards ``e``), i.e. when
    ``|e|`` is within half a 64-bit spacing of half the gap, and ties-to-even then picks ``t``.
    Batsim's job submitter computes its sleeps this way (job_submitter.cpp)."""
    s = a - b
    bb = s - a
    e = (a - (s - bb)) + (-b - bb)  # exact: a - b == s + e
    if e == 0.0 or not math.isfinite(s):
        return s
    t = np.nextafter(s, math.inf if e > 0.0 else -math.inf)
    h = abs(t - s) * 0.5  # half the 53-bit gap (exact: a power of two)
    if abs(e) < h - h * (1.0 / 2048.0):  # the 64-bit spacing there is h / 1024
        return s
    # The 64-bit value is the midpoint (which is even at 64 bits); to 53 bits, ties to even.
    mantissa, _ = math.frexp(abs(s))
    odd = int(mantissa * 9007199254740992.0) & 1  # 2**53: the significand's last bit
    return t if odd else s
