"""Classic schedulers on the engine's decision points: FCFS and EASY backfilling.

A policy is named ``JOBKEY:COREKEY``: the job key orders the queue, the core key chooses
machines for a job. This module provides ``first`` (arrival order) and ``first_fit`` (lowest
free machine ids); the heterogeneity-aware keys build on the same pass.

The pass, run once per decision point:
1. start queued jobs in key order while the first one fits (a job that does not fit blocks
   the ones behind it);
2. with EASY backfilling, reserve machines for that blocked head at the earliest time enough
   of them free up (from the running jobs' requested walltimes), and start later jobs that fit
   now without delaying the reservation.
Jobs that can never run (more machines than the platform has) are rejected at submission.
"""

from __future__ import annotations

import bisect
import math
from collections import deque
from dataclasses import dataclass
from time import perf_counter

import numpy as np

from .contention import ResourceModel
from .core.engine import DecisionPoint, Engine, SimulationResult
from .core.kernels import lowest_free
from .errors import ConfigError

JOB_KEYS = ("first",)
CORE_KEYS = ("first_fit",)
BACKFILL_MODES = (None, "easy")


@dataclass(frozen=True)
class PolicyConfig:
    """Which scheduler to run: ``job_key:core_key`` with an optional backfilling mode."""

    job_key: str = "first"
    core_key: str = "first_fit"
    backfill: str | None = None

    def __post_init__(self):
        if self.job_key not in JOB_KEYS:
            raise ConfigError(f"unknown job selection key {self.job_key!r}: expected one of {', '.join(JOB_KEYS)}")
        if self.core_key not in CORE_KEYS:
            raise ConfigError(f"unknown core selection key {self.core_key!r}: expected one of {', '.join(CORE_KEYS)}")
        if self.backfill not in BACKFILL_MODES:
            raise ConfigError(f"unknown backfilling mode {self.backfill!r}: expected 'easy' or none")

    @classmethod
    def parse(cls, text: str, backfill: str | None = None) -> "PolicyConfig":
        job_key, sep, core_key = text.partition(":")
        if not sep or not job_key or not core_key:
            raise ConfigError(f"policy {text!r}: expected JOBKEY:COREKEY such as first:first_fit")
        return cls(job_key, core_key, backfill)

    def __str__(self) -> str:
        return f"{self.job_key}:{self.core_key}" + (f" + {self.backfill} backfilling" if self.backfill else "")


class QueueScheduler:
    """FCFS on the lowest free machines, optionally with EASY backfilling.

    On a platform with a hierarchy the HDeepRM resource model applies: a core is usable only
    if its node has the job's memory free, jobs that could never fit are rejected, and core
    p-states follow memory-bandwidth contention. The pass first picks every job's cores, then
    sends the p-state changes, then starts the jobs, so that jobs start at the right speed.
    """

    def __init__(self, engine: Engine, config: PolicyConfig, use_hierarchy: bool | None = None):
        self.engine = engine
        self.config = config
        self.queue: deque[int] = deque()
        if use_hierarchy is None:
            use_hierarchy = engine.platform.hierarchy is not None
        self.resources = ResourceModel(engine) if use_hierarchy else None
        # The scheduler's own view of which job each core serves (includes this pass's picks).
        self.core_job = np.full(engine.nb_machines, -1, np.int64)
        self.nb_free = engine.nb_machines
        self._starts: list[tuple[int, np.ndarray]] = []
        # Running jobs by expected end (start + requested walltime), for EASY reservations.
        self._expected_ends: list[tuple[float, int]] = []
        self._expected_end_of: dict[int, float] = {}

    def on_begin(self) -> None:
        if self.resources is not None:
            self.resources.initial_pstates()

    def on_decision_point(self, point: DecisionPoint) -> None:
        engine, jobs = self.engine, self.engine.jobs
        for job in point.submitted:
            if not self._can_ever_run(job):
                engine.reject(job)
            else:
                self.queue.append(job)
        for job in point.completed:
            hosts = engine.alloc[job]
            self.core_job[hosts] = -1
            self.nb_free += hosts.size
            if self.resources is not None:
                self.resources.release(job, hosts)
            if self.config.backfill:
                end = self._expected_end_of.pop(job, None)
                if end is not None:
                    del self._expected_ends[bisect.bisect_left(self._expected_ends, (end, job))]
        self.schedule()

    def _can_ever_run(self, job: int) -> bool:
        if self.resources is not None:
            return self.resources.can_ever_fit(job)
        return self.engine.jobs.res[job] <= self.engine.nb_machines

    def schedule(self) -> None:
        queue = self.queue
        while queue and self._try_start(queue[0]):
            queue.popleft()
        if self.config.backfill == "easy" and len(queue) >= 2 and self.nb_free > 0:
            self._backfill_easy()
        if self.resources is not None:
            self.resources.commit_pstates(self.core_job)
        engine = self.engine
        for job, hosts in self._starts:
            engine.execute(job, hosts)
        self._starts.clear()

    def _try_start(self, job: int) -> bool:
        """Pick cores for ``job`` now if it fits; the start itself is sent at the pass's end."""
        size = int(self.engine.jobs.res[job])
        if size > self.nb_free:
            return False
        if self.resources is not None:
            hosts = self.resources.allocate(job, self.core_job)
        else:
            hosts = lowest_free(self.core_job, size)
        if hosts.size == 0:
            return False
        self.core_job[hosts] = job
        self.nb_free -= size
        self._starts.append((job, hosts))
        if self.config.backfill:
            end = self.engine.now + self.engine.jobs.walltime[job]
            self._expected_end_of[job] = end
            bisect.insort(self._expected_ends, (end, job))
        return True

    def _backfill_easy(self) -> None:
        jobs, queue = self.engine.jobs, self.queue
        head = queue[0]
        needed = int(jobs.res[head])
        available = self.nb_free
        shadow, extra = math.inf, 0
        ends = self._expected_ends
        i = 0
        while i < len(ends):
            end = ends[i][0]
            # Every job ending at this same instant frees its machines for the reservation.
            while i < len(ends) and ends[i][0] == end:
                available += int(jobs.res[ends[i][1]])
                i += 1
            if available >= needed:
                shadow, extra = end, available - needed
                break
        now = self.engine.now
        kept: deque[int] = deque([head])
        waiting = iter(queue)
        next(waiting)  # the head keeps its reservation
        for job in waiting:
            if self.nb_free == 0:
                kept.append(job)
                kept.extend(waiting)
                break
            size = int(jobs.res[job])
            if size <= self.nb_free:
                if now + jobs.walltime[job] <= shadow:
                    if self._try_start(job):
                        continue
                elif size <= extra:
                    if self._try_start(job):
                        extra -= size
                        continue
            kept.append(job)
        self.queue = kept


def run_policy(engine: Engine, config: PolicyConfig) -> SimulationResult:
    """Drive ``engine`` to its end with the given classic policy."""
    scheduler = QueueScheduler(engine, config)
    scheduler.on_begin()
    while (point := engine.next_decision_point()) is not None:
        t0 = perf_counter()
        scheduler.on_decision_point(point)
        engine.scheduling_seconds += perf_counter() - t0
    return engine.result()
