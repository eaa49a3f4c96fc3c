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

from .core.engine import DecisionPoint, Engine, SimulationResult
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
    """FCFS on the lowest free machines, optionally with EASY backfilling."""

    def __init__(self, engine: Engine, config: PolicyConfig):
        self.engine = engine
        self.config = config
        self.queue: deque[int] = deque()
        # Running jobs by expected end (start + requested walltime), for EASY reservations.
        self._expected_ends: list[tuple[float, int]] = []
        self._expected_end_of: dict[int, float] = {}

    def on_decision_point(self, point: DecisionPoint) -> None:
        engine, jobs = self.engine, self.engine.jobs
        for job in point.submitted:
            if jobs.res[job] > engine.nb_machines:
                engine.reject(job)
            else:
                self.queue.append(job)
        if self.config.backfill:
            for job in point.completed:
                end = self._expected_end_of.pop(job, None)
                if end is not None:
                    del self._expected_ends[bisect.bisect_left(self._expected_ends, (end, job))]
        self.schedule()

    def schedule(self) -> None:
        engine, queue, res = self.engine, self.queue, self.engine.jobs.res
        while queue and res[queue[0]] <= engine.nb_free:
            self._start(queue.popleft())
        if self.config.backfill == "easy" and len(queue) >= 2 and engine.nb_free > 0:
            self._backfill_easy()

    def _start(self, job: int) -> None:
        engine = self.engine
        engine.execute(job, engine.lowest_free_machines(int(engine.jobs.res[job])))
        if self.config.backfill:
            end = engine.now + engine.jobs.walltime[job]
            self._expected_end_of[job] = end
            bisect.insort(self._expected_ends, (end, job))

    def _backfill_easy(self) -> None:
        engine, jobs, queue = self.engine, self.engine.jobs, self.queue
        head = queue[0]
        needed = int(jobs.res[head])
        available = engine.nb_free
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
        now = engine.now
        kept: deque[int] = deque([head])
        waiting = iter(queue)
        next(waiting)  # the head keeps its reservation
        for job in waiting:
            if engine.nb_free == 0:
                kept.append(job)
                kept.extend(waiting)
                break
            size = int(jobs.res[job])
            if size <= engine.nb_free:
                if now + jobs.walltime[job] <= shadow:
                    self._start(job)
                    continue
                if size <= extra:
                    extra -= size
                    self._start(job)
                    continue
            kept.append(job)
        self.queue = kept


def run_policy(engine: Engine, config: PolicyConfig) -> SimulationResult:
    """Drive ``engine`` to its end with the given classic policy."""
    scheduler = QueueScheduler(engine, config)
    while (point := engine.next_decision_point()) is not None:
        t0 = perf_counter()
        scheduler.on_decision_point(point)
        engine.scheduling_seconds += perf_counter() - t0
    return engine.result()
