"""Classic schedulers on the engine's decision points: HDeepRM's key pairs and EASY backfilling.

A policy is named ``JOBKEY:COREKEY`` (see ``hdeeprm.simulation.keys``): the job key orders the queue,
the core key chooses cores for a job, one core at a time. ``first:first_fit`` is FCFS on the
lowest free core ids.

One scheduling pass applies one pair:
1. take the queued job that ranks first by the job key, choose its cores by the core key, and
   repeat while jobs fit; the first job that does not fit stops the pass (it blocks the jobs
   behind it), and the reason (too few cores, or too little memory on their nodes) is
   recorded as an over-utilisation episode;
2. with EASY backfilling, reserve for that blocked job the earliest time at which the running
   jobs' requested walltimes free enough cores, and enough memory on their nodes, and start
   later jobs now if they do not delay the reservation.
A pass runs at a decision point where something was submitted or completed while jobs wait.
Jobs that can never run (more cores than the platform has, or more memory per core than its
nodes can give) are rejected at submission instead of blocking the queue forever.
"""

from __future__ import annotations

import bisect
import math
from dataclasses import dataclass, replace
from time import perf_counter

import numpy as np

from hdeeprm.common.errors import ConfigError
from hdeeprm.simulation.engine import DecisionPoint, Engine, SimulationResult
from hdeeprm.simulation.keys import ALL_CORE_KEYS, ALL_JOB_KEYS, job_key_values, ordered
from hdeeprm.simulation.resources import FITS, ResourceModel, memory_capacity

BACKFILL_MODES = (None, "easy")


@dataclass(frozen=True)
class PolicyConfig:
    """Which scheduler to run: ``job_key:core_key`` with an optional backfilling mode."""

    job_key: str = "first"
    core_key: str = "first_fit"
    backfill: str | None = None

    def __post_init__(self):
        if self.job_key not in ALL_JOB_KEYS:
            raise ConfigError(f"unknown job selection key {self.job_key!r}: "
                              f"expected one of {', '.join(ALL_JOB_KEYS)}")
        if self.core_key not in ALL_CORE_KEYS:
            raise ConfigError(f"unknown core selection key {self.core_key!r}: expected one of {', '.join(ALL_CORE_KEYS)}")
        if self.backfill not in BACKFILL_MODES:
            raise ConfigError(f"unknown backfilling mode {self.backfill!r}: expected 'easy' or none")

    @classmethod
    def parse(cls, text: str, backfill: str | None = None) -> "PolicyConfig":
        job_key, sep, core_key = text.partition(":")
        if not sep or not job_key or not core_key:
            raise ConfigError(f"policy {text!r}: expected JOBKEY:COREKEY such as first:first_fit")
        return cls(job_key, core_key, backfill)

    @property
    def pair(self) -> str:
        return f"{self.job_key}:{self.core_key}"

    def __str__(self) -> str:
        return self.pair + (f" + {self.backfill} backfilling" if self.backfill else "")


class QueueScheduler:
    """The waiting queue and the scheduling pass, on top of the heterogeneity layer.

    Use ``admit(point)`` for a decision point's events, ``schedule(job_key, core_key)`` for a
    pass, then ``commit()``, which sends the p-state changes before the job starts so that
    jobs start at the right speed. ``on_decision_point`` does the three for a fixed policy.
    ``rng`` draws the ``random`` keys.
    """

    def __init__(self, engine: Engine, config: PolicyConfig | None = None,
                 rng: np.random.Generator | None = None):
        self.engine = engine
        self.config = config or PolicyConfig()
        self.rng = rng if rng is not None else np.random.default_rng(0)
        self.resources = ResourceModel(engine)
        self.queue: list[int] = []  # waiting jobs, in submission (= job index) order
        self.running_hosts: dict[int, np.ndarray] = {}  # includes this pass's picks
        self._starts: list[tuple[int, np.ndarray]] = []
        self._key_values: dict[str, np.ndarray | None] = {}
        # Running jobs by expected end (start + requested walltime), for EASY reservations.
        self._expected_ends: list[tuple[float, int]] = []
        self._expected_end_of: dict[int, float] = {}

    @property
    def core_job(self) -> np.ndarray:
        return self.resources.core_job

    def on_begin(self) -> None:
        self.resources.initial_pstates()

    def on_decision_point(self, point: DecisionPoint) -> None:
        if self.admit(point) and self.queue:
            self.schedule(self.config.job_key, self.config.core_key)
        self.commit()

    def admit(self, point: DecisionPoint) -> bool:
        """Queue (or reject) submitted jobs and free completed ones. Returns whether the point
        calls for a decision: something was submitted or completed."""
        resources = self.resources
        for job in point.submitted:
            if resources.can_ever_fit(job):
                self.queue.append(job)
            else:
                self.engine.reject(job)
        for job in point.completed:
            resources.release(job, self.running_hosts.pop(job))
            end = self._expected_end_of.pop(job, None)
            if end is not None:
                del self._expected_ends[bisect.bisect_left(self._expected_ends, (end, job))]
        return bool(point.submitted or point.completed)

    def commit(self) -> list[int]:
        """Send this point's p-state changes, then start the pass's jobs; returns them."""
        self.resources.commit_pstates()
        engine = self.engine
        started = []
        for job, hosts in self._starts:
            engine.execute(job, hosts)
            started.append(job)
        self._starts.clear()
        return started

    def fits_now(self, job: int) -> bool:
        return self.resources.fit_status(job) == FITS

    def first_by(self, job_key: str) -> int | None:
        """The queued job ``job_key`` ranks first (None for ``random`` or an empty queue)."""
        if not self.queue or job_key == "random":
            return None
        if job_key == "first":
            return self.queue[0]
        # The queue is in job-index order, so argmin's first minimum is the lowest id.
        queue = np.asarray(self.queue)
        return int(queue[np.argmin(self._values(job_key)[queue])])

    def schedule(self, job_key: str, core_key: str) -> int:
        """One scheduling pass with the pair; returns how many jobs it started."""
        queue = self.queue
        if not queue:
            return 0
        if job_key == "random":
            picked, blocker, rest = self._pass_random(core_key)
        else:
            order = queue if job_key == "first" else ordered(np.asarray(queue), self._values(job_key)).tolist()
            picked = 0
            blocker = None
            for job in order:
                if not self._try_start(job, core_key, record=True):
                    blocker = job
                    break
                picked += 1
            rest = order[picked + 1:]
            if job_key == "first":
                del queue[:picked]
            elif picked:
                started = set(order[:picked])
                self.queue = [j for j in queue if j not in started]
        if blocker is not None and self.config.backfill == "easy" and rest and self.resources.nb_free:
            picked += self._backfill_easy(blocker, rest, core_key)
        return picked

    def start_job(self, job: int, core_key: str) -> bool:
        """Start the waiting ``job`` now if it fits (sent by ``commit``); otherwise record the
        shortage and leave it waiting. For agents that choose jobs one at a time."""
        if not self._try_start(job, core_key, record=True):
            return False
        self.queue.remove(job)
        return True

    def backfill(self, head: int, core_key: str) -> int:
        """With EASY backfilling configured, start waiting jobs (submission order) that do not
        delay the reservation of ``head``, a waiting job that does not fit now; returns how
        many started. Without backfilling, nothing."""
        if self.config.backfill != "easy" or not self.resources.nb_free:
            return 0
        rest = [j for j in self.queue if j != head]
        return self._backfill_easy(head, rest, core_key) if rest else 0

    def _pass_random(self, core_key: str) -> tuple[int, int | None, list[int]]:
        remaining = list(self.queue)
        picked = 0
        blocker = None
        while remaining:
            i = int(self.rng.integers(len(remaining)))
            if not self._try_start(remaining[i], core_key, record=True):
                blocker = remaining[i]
                break
            remaining.pop(i)
            picked += 1
        self.queue = remaining
        rest = [j for j in remaining if j != blocker]
        return picked, blocker, rest

    def _values(self, job_key: str) -> np.ndarray:
        values = self._key_values.get(job_key)
        if values is None:
            values = self._key_values[job_key] = job_key_values(self.engine.jobs, job_key)
        return values

    def _try_start(self, job: int, core_key: str, record: bool = False) -> bool:
        """Pick cores for ``job`` now if it fits; the start itself is sent by ``commit``."""
        resources = self.resources
        status, hosts = resources.allocate(job, core_key, self.rng)
        if status != FITS:
            if record:
                resources.record_shortage(status)
            return False
        self._starts.append((job, hosts))
        self.running_hosts[job] = hosts
        if self.config.backfill:
            end = self.engine.scheduler_time + self.engine.jobs.walltime[job]
            self._expected_end_of[job] = end
            bisect.insort(self._expected_ends, (end, job))
        return True

    def _undo_start(self, job: int) -> None:
        self._starts.pop()
        hosts = self.running_hosts.pop(job)
        self.resources.release(job, hosts)
        end = self._expected_end_of.pop(job)
        del self._expected_ends[bisect.bisect_left(self._expected_ends, (end, job))]

    def _backfill_easy(self, head: int, candidates: list[int], core_key: str) -> int:
        """Start ``candidates`` (in key order) that do not delay ``head``'s reservation.

        When the head needs no memory, cores are all that count: the reservation's shadow
        time and the spare cores then are found from the expected ends alone. Otherwise the
        free cores and memory of each node are projected to the expected ends, and a
        candidate still running at the shadow time is kept only if the head still fits then.
        """
        jobs, resources = self.engine.jobs, self.resources
        now = self.engine.scheduler_time
        needed = int(jobs.res[head])
        head_mem = int(resources.job_mem_kb[head])
        ends = self._expected_ends
        shadow = math.inf
        if head_mem == 0:
            available, extra = resources.nb_free, 0
        else:
            node = resources.core_node
            proj_cores = resources.node_free_cores.copy()
            proj_kb = resources.node_free_kb.copy()
        i = 0
        while i < len(ends):
            end = ends[i][0]
            # Every job ending at this same instant frees its cores for the reservation.
            while i < len(ends) and ends[i][0] == end:
                ending = ends[i][1]
                if head_mem == 0:
                    available += int(jobs.res[ending])
                else:
                    hosts = self.running_hosts[ending]
                    np.add.at(proj_cores, node[hosts], 1)
                    np.add.at(proj_kb, node[hosts], int(resources.job_mem_kb[ending]))
                i += 1
            if head_mem == 0:
                if available >= needed:
                    shadow, extra = end, available - needed
                    break
            elif memory_capacity(proj_cores, proj_kb, head_mem) >= needed:
                shadow = end
                break
        started = []
        for job in candidates:
            if resources.nb_free == 0:
                break
            size = int(jobs.res[job])
            if size > resources.nb_free:
                continue
            ends_in_time = now + jobs.walltime[job] <= shadow
            if head_mem == 0:
                if ends_in_time:
                    if self._try_start(job, core_key):
                        started.append(job)
                elif size <= extra and self._try_start(job, core_key):
                    extra -= size
                    started.append(job)
            elif self._try_start(job, core_key):
                if not ends_in_time:
                    hosts = self.running_hosts[job]
                    mem = int(resources.job_mem_kb[job])
                    np.subtract.at(proj_cores, node[hosts], 1)
                    np.subtract.at(proj_kb, node[hosts], mem)
                    if memory_capacity(proj_cores, proj_kb, head_mem) < needed:
                        np.add.at(proj_cores, node[hosts], 1)
                        np.add.at(proj_kb, node[hosts], mem)
                        self._undo_start(job)
                        continue
                started.append(job)
        if started:
            gone = set(started)
            self.queue = [j for j in self.queue if j not in gone]
        return len(started)


def run_policy(engine: Engine, config: PolicyConfig,
               rng: np.random.Generator | None = None, *, fast: bool | None = None) -> SimulationResult:
    """Drive ``engine`` to its end with the given classic policy. The result carries the
    run's over-utilisation records.

    With ``fast`` None (the default) a plain ``Engine`` that has not started runs the whole
    policy in compiled code (``hdeeprm.simulation.fastsim``), with the same outputs; an engine subclass
    (whose overrides are hooks between decisions) or ``fast=False`` runs the readable
    reference below, one decision point at a time."""
    if fast is None or fast:
        from hdeeprm.simulation import fastsim

        if fastsim.supports(engine, config):
            return fastsim.run_policy(engine, config, rng)
        if fast:
            raise ValueError("fast=True needs a plain Engine that has not started")
    scheduler = QueueScheduler(engine, config, rng)
    scheduler.on_begin()
    while (point := engine.next_decision_point()) is not None:
        t0 = perf_counter()
        scheduler.on_decision_point(point)
        engine.scheduling_seconds += perf_counter() - t0
    return replace(engine.result(), overutilization=scheduler.resources.records)
