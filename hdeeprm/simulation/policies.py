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
   later jobs now if they do not delay the reservation;
   with conservative backfilling, give the blocked job and then every later job (in key
   order) a reservation at the earliest time it fits beside the running jobs and the
   reservations of the jobs ahead of it, and start now the jobs whose reservation is now.
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
from hdeeprm.inputs.platform.sleep import require_sleep_states
from hdeeprm.simulation.engine import DecisionPoint, Engine, SimulationResult
from hdeeprm.simulation.keys import ALL_CORE_KEYS, ALL_JOB_KEYS, job_key_values, ordered
from hdeeprm.simulation.resources import FITS, ResourceModel, memory_capacity

BACKFILL_MODES = (None, "easy", "conservative")


@dataclass(frozen=True)
class PolicyConfig:
    """Which scheduler to run: ``job_key:core_key`` with an optional backfilling mode."""

    job_key: str = "first"
    core_key: str = "first_fit"
    backfill: str | None = None
    #: Switch a machine to its sleep p-state once it has been idle this many seconds while no
    #: job waits, and wake sleeping machines when the queue's first job needs them (platforms
    #: with Batsim sleep p-states; see ShutdownScheduler). None: machines never sleep.
    shutdown: float | None = None

    def __post_init__(self):
        if self.job_key not in ALL_JOB_KEYS:
            raise ConfigError(f"unknown job selection key {self.job_key!r}: "
                              f"expected one of {', '.join(ALL_JOB_KEYS)}")
        if self.core_key not in ALL_CORE_KEYS:
            raise ConfigError(f"unknown core selection key {self.core_key!r}: expected one of {', '.join(ALL_CORE_KEYS)}")
        if self.backfill not in BACKFILL_MODES:
            raise ConfigError(f"unknown backfilling mode {self.backfill!r}: expected 'easy', 'conservative' or none")
        if self.shutdown is not None and not (math.isfinite(self.shutdown) and self.shutdown >= 0):
            raise ConfigError(f"shutdown idle time {self.shutdown!r}: expected a finite number of seconds >= 0")

    @classmethod
    def parse(cls, text: str, backfill: str | None = None, shutdown: float | None = None) -> "PolicyConfig":
        job_key, sep, core_key = text.partition(":")
        if not sep or not job_key or not core_key:
            raise ConfigError(f"policy {text!r}: expected JOBKEY:COREKEY such as first:first_fit")
        return cls(job_key, core_key, backfill, None if shutdown is None else float(shutdown))

    @property
    def pair(self) -> str:
        return f"{self.job_key}:{self.core_key}"

    def __str__(self) -> str:
        return (self.pair + (f" + {self.backfill} backfilling" if self.backfill else "")
                + (f" + shutdown after {self.shutdown:g} s idle" if self.shutdown is not None else ""))


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
        if blocker is not None and rest and self.resources.nb_free:
            if self.config.backfill == "easy":
                picked += self._backfill_easy(blocker, rest, core_key)
            elif self.config.backfill == "conservative":
                picked += self._backfill_conservative(blocker, rest, core_key)
        return picked

    def start_job(self, job: int, core_key: str) -> bool:
        """Start the waiting ``job`` now if it fits (sent by ``commit``); otherwise record the
        shortage and leave it waiting. For agents that choose jobs one at a time."""
        if not self._try_start(job, core_key, record=True):
            return False
        self.queue.remove(job)
        return True

    def backfill(self, head: int, core_key: str) -> int:
        """With backfilling configured, start waiting jobs (submission order) that do not
        delay the reservation of ``head``, a waiting job that does not fit now (conservative:
        nor the reservations of the jobs ahead of them); returns how many started. Without
        backfilling, nothing."""
        if not self.config.backfill or not self.resources.nb_free:
            return 0
        rest = [j for j in self.queue if j != head]
        if not rest:
            return 0
        if self.config.backfill == "conservative":
            return self._backfill_conservative(head, rest, core_key)
        return self._backfill_easy(head, rest, core_key)

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

    # -- Conservative backfilling -----------------------------------------------------------
    #
    # The availability profile is three arrays: ``times`` (K, sorted), and ``cores`` and ``kb``
    # (K x nodes): row k holds each node's free cores and free memory (kB) from times[k] to
    # times[k + 1] (the last row for ever). Row 0 is now, what the resources hold; it is
    # rebuilt at every pass from the running jobs' expected ends (start + walltime) and then
    # booked, job by job, with the reservations of the jobs ahead in the order.

    def _backfill_conservative(self, head: int, candidates: list[int], core_key: str) -> int:
        """Conservative backfilling: ``head`` (which does not fit now), then ``candidates`` in
        this order each get a reservation at the earliest time they fit beside the running
        jobs and the reservations before them; a job whose reservation is now starts now (its
        cores chosen by the core key) unless those cores take ones a reservation holds."""
        jobs, resources = self.engine.jobs, self.resources
        order = [head, *candidates]
        # Once no later job is small enough for the free cores, nothing else can start now
        # (and reservations are rebuilt at the next pass): stop there.
        smallest_after = np.minimum.accumulate(jobs.res[order][::-1])[::-1].tolist()
        profile = self._profile()
        reserved: list[tuple[int, float]] = []  # jobs given a reservation, with its time
        started = []
        for i, job in enumerate(order):
            if smallest_after[i] > resources.nb_free:
                break
            size, mem = int(jobs.res[job]), int(resources.job_mem_kb[job])
            duration = float(jobs.walltime[job])
            spot = _earliest(profile, size, mem, duration, 0)
            if spot is not None and spot[0] == 0:
                if self._try_start(job, core_key):
                    booked = self._book_start(profile, job, duration)
                    if booked is None:  # its cores take some a reservation holds: re-plan them
                        booked, replanned = self._replan(reserved)
                        if booked is not None:
                            reserved = replanned
                    if booked is not None:
                        profile = booked
                        started.append(job)
                        continue
                    self._undo_start(job)
                spot = _earliest(profile, size, mem, duration, 1)
            if spot is not None:
                reserved.append((job, float(profile[0][spot[0]])))
                profile = _book(profile, spot, size, mem, duration)
        if started:
            gone = set(started)
            self.queue = [j for j in self.queue if j not in gone]
        return len(started)

    def _profile(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The availability profile of the running jobs (this pass's starts included); a job
        without walltime never gives its cores back."""
        resources = self.resources
        now = self.engine.scheduler_time
        cores0, kb0 = resources.node_free_cores.copy(), resources.node_free_kb.copy()
        ends = self._expected_ends
        finite = ends[:bisect.bisect_left(ends, (math.inf, -1))]
        if not finite:
            return np.array([now]), cores0[None, :], kb0[None, :]
        end_of = np.fromiter((end for end, _ in finite), np.float64, len(finite))
        times, row = np.unique(end_of, return_inverse=True)
        hosts = [self.running_hosts[job] for _, job in finite]
        sizes = np.fromiter((h.size for h in hosts), np.int64, len(hosts))
        node = resources.core_node[np.concatenate(hosts)]
        rows = np.repeat(row + 1, sizes)
        mem = np.repeat(resources.job_mem_kb[[job for _, job in finite]], sizes)
        shape = (len(times) + 1, len(cores0))
        freed, freed_kb = np.zeros(shape, np.int64), np.zeros(shape, np.int64)
        np.add.at(freed, (rows, node), 1)
        np.add.at(freed_kb, (rows, node), mem)
        # An expected end already past (a job still running at it) frees its cores at the next
        # event, not now: its row is after row 0 even though its time is now.
        return (np.concatenate(([now], np.maximum(times, now))), cores0 + np.cumsum(freed, axis=0),
                kb0 + np.cumsum(freed_kb, axis=0))

    def _book_start(self, profile, job: int, duration: float):
        """The profile with ``job``, just started on its cores, booked until its expected end;
        None if that leaves a node short of cores or memory in some row (a reservation ahead
        of it in the order would be delayed)."""
        resources = self.resources
        times, cores, kb = profile
        taken = np.bincount(resources.core_node[self.running_hosts[job]], minlength=cores.shape[1])
        taken_kb = taken * int(resources.job_mem_kb[job])
        times, cores, kb = _split(profile, times[0] + duration)
        e = max(int(np.searchsorted(times, times[0] + duration, "left")), 1)
        if (cores[:e] < taken).any() or (kb[:e] < taken_kb).any():
            return None
        cores[:e] -= taken
        kb[:e] -= taken_kb
        return times, cores, kb

    def _replan(self, reserved: list[tuple[int, float]]):
        """Rebuild the profile with the job just started and re-reserve the jobs in
        ``reserved``, in order: (profile, new reservations), or (None, None) if one of them
        would now start later (or never)."""
        jobs, resources = self.engine.jobs, self.resources
        profile = self._profile()
        replanned = []
        for job, time in reserved:
            size, mem = int(jobs.res[job]), int(resources.job_mem_kb[job])
            duration = float(jobs.walltime[job])
            spot = _earliest(profile, size, mem, duration, 1)
            if spot is None or profile[0][spot[0]] > time:
                return None, None
            replanned.append((job, float(profile[0][spot[0]])))
            profile = _book(profile, spot, size, mem, duration)
        return profile, replanned


def _earliest(profile, size: int, mem: int, duration: float, first_row: int):
    """The earliest row k >= ``first_row`` from which a job of ``size`` cores with ``mem`` kB
    per core fits for ``duration`` s: (k, e, per-node cores it can have over rows k..e-1), or
    None if it never does. A node can give it, over those rows, the least of its free cores
    and its free memory over ``mem`` in each row."""
    times, cores, kb = profile
    if first_row >= len(times):
        return None
    cap = cores if mem == 0 else np.minimum(cores, kb // mem)
    total = cap.sum(axis=1)
    # Starting at a row that frees nothing on any node is never better than one row earlier.
    grows = np.ones(len(times), np.bool_)
    grows[1:] = (cap[1:] > cap[:-1]).any(axis=1)
    grows[first_row] = True
    for k in (np.flatnonzero(grows[first_row:] & (total[first_row:] >= size)) + first_row).tolist():
        e = max(int(np.searchsorted(times, times[k] + duration, "left")), k + 1)
        if total[k:e].min() < size:
            continue
        window = cap[k:e].min(axis=0)
        if int(window.sum()) >= size:
            return k, e, window
    return None


def _split(profile, time: float):
    """The profile (copied) with a row starting at ``time`` (a copy of the row it falls in)."""
    times, cores, kb = profile
    e = int(np.searchsorted(times, time, "left"))
    if time == math.inf or (e < len(times) and times[e] == time):
        return times.copy(), cores.copy(), kb.copy()
    return np.insert(times, e, time), np.insert(cores, e, cores[e - 1], axis=0), np.insert(kb, e, kb[e - 1], axis=0)


def _book(profile, spot, size: int, mem: int, duration: float):
    """The profile with a reservation at ``spot`` (from ``_earliest``): its cores taken from
    the lowest node ids that can give them, until its expected end."""
    k, _, window = spot
    take = np.clip(size - (np.cumsum(window) - window), 0, window)
    times, cores, kb = _split(profile, profile[0][k] + duration)
    e = max(int(np.searchsorted(times, times[k] + duration, "left")), k + 1)
    cores[k:e] -= take
    kb[k:e] -= take * mem
    return times, cores, kb


# -- Shutdown policy --------------------------------------------------------------------------

# A machine's mode in the shutdown policy's view.
_AWAKE, _SWITCHING_OFF, _ASLEEP, _SWITCHING_ON = range(4)
# Times are compared as printed in Batsim's messages (6 decimals): a call requested for t may
# come back at t rounded.
_TIME_SLACK = 1e-6


class ShutdownScheduler(QueueScheduler):
    """A classic policy plus the classic shutdown rule (``PolicyConfig.shutdown``, s):

    - a machine idle for ``shutdown`` seconds while no job waits is sent to its sleep p-state
      (SET_RESOURCE_STATE; the first sleep p-state its ``sleep_pstates`` declares); the policy
      asks for a CALL_ME_LATER at the time each idle machine becomes due;
    - when the queue's first job (by the job key; the head of the submission order for
      ``random``) needs more machines than are awake and free, plus those already waking,
      the lowest-id sleeping machines are woken (SET_RESOURCE_STATE to the p-state the
      platform declares for them): wake on demand;
    - machines asleep or switching are held out of the resource model, so no core key picks
      them; a machine comes back when Batsim's RESOURCE_STATE_CHANGED says it woke, and a
      scheduling pass follows.

    It drives the simulator only through set_pstate, call_me_later, execute and reject, which
    the Batsim backend forwards as they are, so it runs on real Batsim too (crossval).
    """

    def __init__(self, engine: Engine, config: PolicyConfig | None = None,
                 rng: np.random.Generator | None = None):
        super().__init__(engine, config, rng)
        platform = engine.platform
        states = require_sleep_states(platform, "shutdown policy")
        n = engine.nb_machines
        self.sleep_pstate = states.first_sleep_pstate()
        self.awake_pstate = np.asarray(platform.initial_pstate, dtype=np.int64)
        self.idle_s = float(self.config.shutdown)
        self.mode = np.zeros(n, np.int8)
        self.idle_since = np.zeros(n)
        self._calls: set[float] = set()

    def on_decision_point(self, point: DecisionPoint) -> None:
        if self.admit(point) and self.queue:
            self.schedule(self.config.job_key, self.config.core_key)
        self.manage_power()
        self.commit()

    def admit(self, point: DecisionPoint) -> bool:
        """QueueScheduler.admit, plus the point's news for the shutdown rule: the completed
        jobs' machines idle from now, finished switches (machines asleep, or awake and back in
        the resource model). Also True when machines woke (a pass is due)."""
        now = self.engine.scheduler_time
        freed = [self.running_hosts[job] for job in point.completed if job in self.running_hosts]
        changed = super().admit(point)
        for hosts in freed:
            self.idle_since[hosts] = now
        for hosts, pstate in point.pstate_changes:
            hosts = np.asarray(hosts, dtype=np.int64)
            if self.mode[hosts[0]] == _SWITCHING_OFF:
                self.mode[hosts] = _ASLEEP
            elif self.mode[hosts[0]] == _SWITCHING_ON:
                self.mode[hosts] = _AWAKE
                self.resources.unhold(hosts)
                self.idle_since[hosts] = now
                changed = True
        return changed

    def manage_power(self) -> None:
        """The shutdown rule after a pass (or at a point without one): wake what the queue's
        first job needs, send machines idle long enough to sleep, ask to be called when the
        next ones are due. Before ``commit``."""
        self._wake_for_queue()
        self._switch_off_idle(self.engine.scheduler_time)

    def switching(self) -> bool:
        """Whether some machine is switching off or on (a RESOURCE_STATE_CHANGED is to come)."""
        return bool(((self.mode == _SWITCHING_OFF) | (self.mode == _SWITCHING_ON)).any())

    def _wake_for_queue(self) -> None:
        if not self.queue:
            return
        head = self.first_by(self.config.job_key)
        head = self.queue[0] if head is None else head
        needed = (int(self.engine.jobs.res[head]) - self.resources.nb_free
                  - int((self.mode == _SWITCHING_ON).sum()))
        if needed <= 0:
            return
        asleep = np.flatnonzero(self.mode == _ASLEEP)[:needed]
        if asleep.size == 0:
            return  # those switching off are woken once asleep (their RESOURCE_STATE_CHANGED)
        self.mode[asleep] = _SWITCHING_ON
        for pstate in np.unique(self.awake_pstate[asleep]).tolist():
            self.engine.set_pstate(asleep[self.awake_pstate[asleep] == pstate], pstate)

    def _switch_off_idle(self, now: float) -> None:
        if self.queue:
            return  # idle machines wait for the running jobs to make room for the queue
        idle = np.flatnonzero((self.mode == _AWAKE) & (self.resources.core_job < 0)
                              & (self.sleep_pstate >= 0))
        if idle.size == 0:
            return
        due = self.idle_since[idle] + self.idle_s
        ready = idle[due <= now + _TIME_SLACK]
        if ready.size:
            self.mode[ready] = _SWITCHING_OFF
            self.resources.hold(ready)
            for pstate in np.unique(self.sleep_pstate[ready]).tolist():
                self.engine.set_pstate(ready[self.sleep_pstate[ready] == pstate], pstate)
        for when in np.unique(due[due > now + _TIME_SLACK]).tolist():
            if when not in self._calls:
                self._calls.add(when)
                self.engine.call_me_later(when)


def run_policy(engine: Engine, config: PolicyConfig,
               rng: np.random.Generator | None = None, *, fast: bool | None = None) -> SimulationResult:
    """Drive ``engine`` to its end with the given classic policy. The result carries the
    run's over-utilisation records.

    With ``fast`` None (the default) a plain ``Engine`` that has not started runs the whole
    policy in compiled code (``hdeeprm.simulation.fastsim``), with the same outputs; an engine subclass
    (whose overrides are hooks between decisions) or ``fast=False`` runs the readable
    reference below, one decision point at a time (ShutdownScheduler with a shutdown
    policy). Shutdown policies and platforms with Batsim sleep p-states take the fast path
    too."""
    if fast is None or fast:
        from hdeeprm.simulation import fastsim

        if fastsim.supports(engine, config):
            return fastsim.run_policy(engine, config, rng)
        if fast:
            raise ValueError("fast=True needs a plain Engine that has not started")
    scheduler = (ShutdownScheduler if config.shutdown is not None else QueueScheduler)(engine, config, rng)
    scheduler.on_begin()
    while (point := engine.next_decision_point()) is not None:
        t0 = perf_counter()
        scheduler.on_decision_point(point)
        engine.scheduling_seconds += perf_counter() - t0
    return replace(engine.result(), overutilization=scheduler.resources.records)
