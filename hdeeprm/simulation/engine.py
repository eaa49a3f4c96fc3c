"""The embedded engine: Batsim's job and platform semantics on a SimPy event queue.

The engine owns the simulated clock (a SimPy environment), the platform's mutable state
(which job each machine serves, each machine's p-state and power) and the jobs' state.
A scheduler drives it from decision point to decision point:

    engine = Engine(platform, workload)
    while (point := engine.next_decision_point()) is not None:
        ...  # engine.execute(job, hosts), engine.set_pstate(hosts, p), engine.reject(job),
             # engine.kill(job), engine.call_me_later(t)
    result = engine.result()

A decision point gathers everything that happened at one instant (submissions, completions,
requested calls, p-state acknowledgements), as Batsim batches same-time events in one message.
Decisions take effect at the current instant.

Semantics reproduced from Batsim 4.2.1 / SimGrid 3.32 (README, "Simulation semantics"):
- a ``delay`` job lasts its delay whatever the machines; it is killed when delay >= walltime;
- a ``parallel_homogeneous`` job advances at the speed of its slowest machine; a p-state
  change mid-job keeps the work done; it completes if its end is <= start + walltime;
- a machine's power is idle + load x (full - idle) of its p-state, where load is the fraction
  of its speed the job uses (machines faster than the job's bottleneck are partially loaded);
- energy accounting ``"batsim"`` (the default): SimGrid's energy plugin bills every machine
  at p-state 0 until its first energy update, which is a p-state change or Batsim's first
  energy query after t=0. Batsim queries the energy of all machines at its first job
  submission, at every job start and end and at every p-state change (job_submitter.cpp,
  jobs_execution.cpp, export.cpp), never at later submissions. ``"ideal"`` bills each
  machine at its own p-state from t=0; real Batsim cannot produce it;
- on platforms whose hosts declare Batsim's ``sleep_pstates``, machines go to sleep and wake
  through the virtual switch-off / switch-on p-states, and a request is acknowledged when all
  its machines have switched (section "sleep p-states" below).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from heapq import heappush
from time import perf_counter
from typing import Sequence

import numpy as np
import simpy

from hdeeprm.common.errors import ConfigError, SimulationError
from hdeeprm.inputs.platform.model import Platform
from hdeeprm.inputs.platform.sleep import COMPUTATION, SLEEP, VIRTUAL, sleep_states
from hdeeprm.inputs.workload.model import KIND_DELAY, Workload, WorkloadArrays
from hdeeprm.simulation.intervals import format_intervals
from hdeeprm.simulation.kernels import bottleneck_speed, claim_machines, lowest_free, update_powers
from hdeeprm.simulation.simgrid_steps import (
    JOB_DELAY,
    JOB_DELAY_KILLED,
    JOB_TASK,
    JOB_TIMEOUT,
    REPLY,
    SUBMITTER,
    WAITER,
    Activities,
)

# Job life cycle.
NOT_SUBMITTED, QUEUED, RUNNING, FINISHED, REJECTED = 0, 1, 2, 3, 4

# Final states, with Batsim's names.
SUCCESS, WALLTIME_REACHED, KILLED, REJECTED_STATE = 1, 2, 3, 4
FINAL_STATE_NAMES = {
    SUCCESS: "COMPLETED_SUCCESSFULLY",
    WALLTIME_REACHED: "COMPLETED_WALLTIME_REACHED",
    KILLED: "COMPLETED_KILLED",
    REJECTED_STATE: "REJECTED",
}

# How machines are billed before their first energy update (see the module docstring).
ENERGY_ACCOUNTINGS = ("batsim", "ideal")
# How time advances: "simgrid" steps SimGrid's clock as Batsim does (core/simgrid_steps.py),
# "exact" computes each end as start + work / speed.
CLOCKS = ("simgrid", "exact")
# Where "no more jobs to submit" goes (clock="simgrid"): nowhere yet, in the message after
# the one being gathered, in the next message.
_NOTIFY_NONE, _NOTIFY_AFTER, _NOTIFY_NEXT = 0, 1, 2
# Batsim's CALL_ME_LATER waiter never sleeps less than this (jobs_execution.cpp, waiter_process).
MIN_WAITER_SLEEP_S = 1e-5

# Machine states with Batsim's sleep p-states (src/machines.hpp MachineState), tracked only on
# platforms that declare sleep p-states; SWITCH is the SimGrid activity of a switch (1 flop in
# a virtual p-state, owned by the machine).
M_IDLE, M_COMPUTING, M_SLEEPING, M_SWITCHING_ON, M_SWITCHING_OFF = range(5)
MACHINE_STATE_NAMES = ("idle", "computing", "sleeping", "switching_on", "switching_off")
SWITCH = 7

# Batsim writes a parallel job of zero flops as lasting 10 microseconds in out_jobs.csv,
# although it frees its machines at once.
ZERO_WORK_RECORDED_DURATION = 1e-5


class _Clock(simpy.Environment):
    """A SimPy environment that can schedule at an absolute time.

    ``env.timeout(t - now)`` puts the event at ``now + (t - now)``, which is not always ``t``
    in floating point, and no delay at all may give ``t`` (now = 2**-53, t = 1 + 2**-52: the
    sums round to 1.0 or past t); events that must coincide (a job ending exactly at another's
    kill time) would then fall apart by an ulp.
    """

    # SimPy's public API only schedules at now + delay and cannot move the clock (SimGrid's
    # clock moves time without events; the fast path hands a finished run back): these four
    # methods are the only place that touches its internals (_queue, _eid, _now, event._ok/_value).
    def schedule_at(self, when: float, callback, payload) -> None:
        event = simpy.Event(self)
        event._ok = True
        event._value = payload
        event.callbacks.append(callback)
        heappush(self._queue, (when, simpy.core.NORMAL, next(self._eid), event))

    def set_now(self, when: float) -> None:
        self._now = when

    def discard_all(self) -> None:
        self._queue.clear()

    def nb_scheduled(self) -> int:
        return len(self._queue)


@dataclass
class DecisionPoint:
    """What happened at one instant, handed to the scheduler."""

    time: float
    submitted: list[int] = field(default_factory=list)
    completed: list[int] = field(default_factory=list)
    requested_calls: int = 0
    pstate_changes: list[tuple[np.ndarray, int]] = field(default_factory=list)
    no_more_submissions: bool = False

    def __bool__(self) -> bool:
        return bool(self.submitted or self.completed or self.requested_calls or self.pstate_changes
                    or self.no_more_submissions)


@dataclass(eq=False)
class SimulationResult:
    """Everything the output writers and metrics need, detached from the engine."""

    workload: WorkloadArrays
    workload_name: str
    nb_machines: int
    job_order: list[int]  # jobs in the order Batsim writes them (completion / rejection order)
    final_state: np.ndarray
    start: np.ndarray
    finish: np.ndarray  # as recorded (zero-work parallel jobs: start + 1e-5)
    alloc: list
    job_energy: np.ndarray
    consumed_joules: float
    energy_rows: list[tuple[float, float, str, float, float | None]]
    pstate_rows: list[tuple[float, np.ndarray, int]]  # time, machines, new p-state (-1: switching)
    nb_machine_switches: int
    nb_grouped_switches: int
    end_time: float
    wall_seconds: float
    scheduling_seconds: float
    # Set by the scheduler that drove the run (hdeeprm.simulation.resources.Overutilization).
    overutilization: object | None = None
    energy_accounting: str = "batsim"
    # Runs in which machines slept or switched (Batsim's sleep p-states): the rows of
    # out_machine_states.csv (time, sleeping, switching on, switching off, idle, computing) and
    # the seconds machines spent in each state (MACHINE_STATE_NAMES), as Batsim counts them.
    machine_state_rows: list | None = None
    machine_state_times: dict | None = None
    # With several workloads (several Batsim job submitters), each job's workload name.
    job_workload: tuple[str, ...] | None = None
    # The jobs in the order they were started (the order of a scheduler's EXECUTE_JOBs at one
    # instant, which Batsim's rows follow); None: by start time, then job index.
    start_order: list[int] | None = None


class Engine:
    """Simulates a workload (or several, each with its own Batsim job submitter) on one
    platform; see the module docstring."""

    def __init__(
        self,
        platform: Platform,
        workload: Workload | WorkloadArrays,
        *,
        workload_name: str = "w0",
        energy_accounting: str = "batsim",
        record_energy_rows: bool = True,
        batsim_time_rounding: bool = True,
        clock: str = "simgrid",
        submitters: Sequence[tuple[str, int]] | None = None,
    ):
        self.platform = platform
        if isinstance(workload, Workload):
            workload_name = workload.name
            workload = workload.compile()
        self.jobs = workload
        self.workload_name = workload_name
        # Batsim's job submitters, one per workload: (name, number of jobs), the jobs of each
        # consecutive in ``workload`` and in its own submission order (WorkloadArrays.concatenate).
        if submitters is None:
            submitters = [(workload_name, workload.nb_jobs)]
        elif clock != "simgrid":
            raise ConfigError("several workloads (submitters) need clock='simgrid'")
        if sum(count for _, count in submitters) != workload.nb_jobs or not submitters:
            raise ConfigError(f"submitters {list(submitters)}: their jobs must add up to the "
                              f"workload's {workload.nb_jobs}")
        bounds = np.cumsum([0] + [count for _, count in submitters])
        self._submitter_ranges = [(int(lo), int(hi)) for lo, hi in zip(bounds[:-1], bounds[1:])]
        self.job_workload = (None if len(submitters) == 1 else
                             tuple(name for name, count in submitters for _ in range(count)))
        self._clock = _Clock()
        self._wall_start = perf_counter()
        self.scheduling_seconds = 0.0

        n = workload.nb_jobs
        self.job_state = np.zeros(n, np.int8)
        self.final_state = np.zeros(n, np.int8)
        self.start = np.full(n, np.nan)
        self.finish = np.full(n, np.nan)
        self.alloc: list[np.ndarray | None] = [None] * n
        self._remaining = np.array(workload.work, dtype=np.float64)  # flops per host, or s
        self._rate = np.zeros(n)  # bottleneck flop/s of a running parallel job
        self._progress_time = np.zeros(n)
        self._epoch = np.zeros(n, np.int64)  # invalidates superseded end events
        self.job_energy = np.zeros(n)
        self._job_power = np.zeros(n)
        self._job_energy_time = np.zeros(n)
        self._running: set[int] = set()
        self._job_order: list[int] = []
        self._start_order: list[int] = []  # jobs in the order they were started
        self.nb_unfinished = n

        m = platform.nb_machines
        self._speeds = np.ascontiguousarray(platform.speeds)
        self._watts_idle = np.ascontiguousarray(np.nan_to_num(platform.watts_idle))
        self._watts_full = np.ascontiguousarray(np.nan_to_num(platform.watts_full))
        self.busy_job = np.full(m, -1, np.int64)
        self.nb_free = m
        self.pstate = np.array(platform.initial_pstate, dtype=np.int64)
        if energy_accounting not in ENERGY_ACCOUNTINGS:
            raise ConfigError(f"energy_accounting {energy_accounting!r}: expected one of "
                              f"{', '.join(ENERGY_ACCOUNTINGS)}")
        self.energy_accounting = energy_accounting
        batsim_billing = energy_accounting == "batsim"
        self._quirk_pending = batsim_billing
        self._observer = None  # see observe()
        self._billed = np.zeros(m, np.int64) if batsim_billing else self.pstate.copy()
        self.power = self._watts_idle[np.arange(m), self._billed].copy()
        self._total_power = float(self.power.sum())
        self._wattmin = float(self._watts_idle[np.arange(m), self.pstate].sum())
        self.energy = 0.0
        self._energy_time = 0.0
        self._energy_first_submission: float | None = None
        self._energy_last_completion = 0.0
        self._record_energy_rows = record_energy_rows
        self._energy_rows: list[tuple[float, float, str, float, float | None]] = []
        self._last_row_time = -math.inf
        self._tracer_read_at = -math.inf
        self._last_row_energy = 0.0
        self._pstate_rows: list[tuple[float, np.ndarray, int]] = []
        for p in np.unique(self.pstate).tolist():
            self._pstate_rows.append((0.0, np.flatnonzero(self.pstate == p), int(p)))
        self.nb_machine_switches = 0
        self.nb_grouped_switches = 0
        self._sleep = sleep_states(platform)
        if self._sleep is not None:
            self._init_sleep_states(m)

        self._point = DecisionPoint(0.0)
        self._finished = False
        self._round_decisions = batsim_time_rounding
        self._decision_time_for = -math.inf
        if clock not in CLOCKS:
            raise ConfigError(f"clock {clock!r}: expected one of {', '.join(CLOCKS)}")
        self.clock = clock
        self._acts: Activities | None = None
        if clock == "simgrid":
            self._start_simgrid_clock()
            return
        # Submissions: one event per distinct submit time, each scheduling the next one.
        subtime = workload.subtime
        if n:
            starts = np.concatenate(([0], np.flatnonzero(np.diff(subtime) != 0) + 1, [n]))
            self._submission_groups = starts
            self._clock.schedule_at(float(subtime[0]), self._on_submit, 0)

    # ------------------------------------------------------------------ queries

    @property
    def now(self) -> float:
        return self._clock.now

    @property
    def scheduler_time(self) -> float:
        """The time a scheduler is told. Through Batsim's protocol it is the message's time
        printed with 6 decimals, so on SimGrid's clock that is what it gets: schedulers that
        compute with time (EASY's reservations) then decide what they decide on Batsim. The
        exact clock gives its own time."""
        if self._acts is not None:
            return float(f"{self._point.time:.6f}")
        return self._clock.now

    @property
    def nb_machines(self) -> int:
        return self.platform.nb_machines

    def lowest_free_machines(self, count: int) -> np.ndarray:
        """The ``count`` lowest free machine ids (empty if fewer are free)."""
        if count > self.nb_free:
            return self.busy_job[:0]
        return lowest_free(self.busy_job, count)

    def running_jobs(self) -> set[int]:
        return set(self._running)

    @property
    def nb_running(self) -> int:
        return len(self._running)

    def energy_so_far(self) -> float:
        """Joules consumed by the platform from t=0 to now."""
        return self.energy + self._total_power * (self._clock.now - self._energy_time)

    def work_done(self, jobs: np.ndarray) -> np.ndarray:
        """Work each of ``jobs`` (running) has done so far, in its profile's unit: seconds for
        delay jobs, flops per machine for parallel ones. Vectorised."""
        jobs = np.asarray(jobs, dtype=np.int64)
        now = self._clock.now
        delay = self.jobs.kind[jobs] == KIND_DELAY
        if self._acts is not None:  # a task's remains are the fraction of its work left
            slots = self._task_slot[jobs]
            left = np.where(slots >= 0, self._acts.remains[np.maximum(slots, 0)], 0.0)
            parallel_left = left * self.jobs.work[jobs]
        else:
            parallel_left = self._remaining[jobs] - self._rate[jobs] * (now - self._progress_time[jobs])
        done = np.where(delay, now - self.start[jobs], self.jobs.work[jobs] - parallel_left)
        return np.clip(done, 0.0, self.jobs.work[jobs])

    # ------------------------------------------------------------------ stepping

    def next_decision_point(self) -> DecisionPoint | None:
        """Process every event of the next instant at which something happens; None at the end."""
        if self._acts is not None:
            return self._next_simgrid_point()
        clock = self._clock
        while True:
            when = clock.peek()
            if when == math.inf:
                self._finish()
                return None
            self._point = DecisionPoint(when)
            while clock.peek() == when:
                clock.step()
            if self._point:
                return self._point

    def run_until(self, when: float, on_instant=None) -> DecisionPoint:
        """Process every event at or before ``when`` and move the clock to ``when`` (used by
        replay, whose decisions come with their own times). Returns what happened, merged;
        ``on_instant`` (optional) sees each instant's own decision point."""
        self._need_exact_clock("run_until")
        clock = self._clock
        merged = DecisionPoint(when)
        while clock.peek() <= when:
            self._point = DecisionPoint(clock.peek())
            while clock.peek() == self._point.time:
                clock.step()
            if on_instant is not None:
                on_instant(self._point)
            _merge(merged, self._point)
        if when > clock.now:
            clock.set_now(when)
        self._point = merged
        return merged

    def step_instant(self) -> DecisionPoint | None:
        """Process only the next instant's events, even if nothing visible happens."""
        self._need_exact_clock("step_instant")
        clock = self._clock
        when = clock.peek()
        if when == math.inf:
            return None
        self._point = DecisionPoint(when)
        while clock.peek() == when:
            clock.step()
        return self._point

    def run_to_end(self) -> None:
        while self.next_decision_point() is not None:
            pass

    def close(self) -> None:
        """Nothing to release (the Batsim backend stops its process here)."""

    # ------------------------------------------------------------------ decisions

    def execute(self, job: int, hosts) -> None:
        """Start a queued job on the given machines, now."""
        self._decision_time()
        hosts = np.asarray(hosts, dtype=np.int64)
        if self.job_state[job] != QUEUED:
            raise SimulationError(f"job {self.jobs.job_ids[job]} cannot start: it is "
                                  f"{_STATE_WORDS[self.job_state[job]]}")
        if hosts.size != self.jobs.res[job]:
            raise SimulationError(f"job {self.jobs.job_ids[job]} requests {self.jobs.res[job]} "
                                  f"machines but was given {hosts.size}")
        if self._sleep is not None:
            self._check_awake(job, hosts)
        # Claim before the energy bookkeeping; nothing changes if the claim fails.
        code = claim_machines(self.busy_job, hosts, job)
        if code:
            self._refuse_machines(job, hosts, code)
        now = self._clock.now
        self._energy_query()
        self._advance_energy()
        self.nb_free -= hosts.size
        self.job_state[job] = RUNNING
        self._start_order.append(job)
        self.start[job] = now
        self.alloc[job] = hosts
        self._running.add(job)
        self._job_energy_time[job] = now
        if self._acts is not None:
            self._start_activities(job, hosts)
        elif self.jobs.kind[job] == KIND_DELAY:
            delay, walltime = self.jobs.work[job], self.jobs.walltime[job]
            # Batsim sleeps the whole delay only if it is strictly below the walltime.
            if delay < walltime:
                self._schedule_end(job, now + delay, SUCCESS)
            else:
                self._schedule_end(job, now + walltime, WALLTIME_REACHED)
            self._job_power[job] = self._refresh_powers(hosts, 0.0)
        else:
            self._progress_time[job] = now
            self._rate[job] = bottleneck_speed(hosts, self.pstate, self._speeds)
            self._schedule_parallel_end(job)
            self._job_power[job] = self._refresh_powers(hosts, self._rate[job])
        if self._sleep is not None:
            self._machine_states(hosts, M_COMPUTING)
            self._state_row()
        self._energy_row("s")

    def _check_awake(self, job: int, hosts: np.ndarray) -> None:
        valid = hosts[(hosts >= 0) & (hosts < self.nb_machines)]
        asleep = valid[self._mstate[valid] >= M_SLEEPING]
        if asleep.size:
            raise SimulationError(f"job {self.jobs.job_ids[job]} cannot start at {self.now:.6f} on "
                                  f"machines {format_intervals(np.unique(asleep))}: asleep or "
                                  "switching (Batsim allows jobs on computation p-states only)")

    def _refuse_machines(self, job: int, hosts: np.ndarray, code: int) -> None:
        name = self.jobs.job_ids[job]
        if code == 1:
            raise SimulationError(f"job {name}: machine ids must be in 0..{self.nb_machines - 1}")
        if code == 3:
            raise SimulationError(f"job {name}: machine ids {format_intervals(np.unique(hosts))} "
                                  f"contain a repeated id")
        taken = hosts[self.busy_job[hosts] >= 0]
        raise SimulationError(f"job {name} cannot start at {self.now:.6f} on machines "
                              f"{format_intervals(np.unique(hosts))}: "
                              f"{format_intervals(np.unique(taken))} already in use")

    def reject(self, job: int) -> None:
        """Refuse a submitted job; it is recorded as REJECTED and never runs."""
        self._decision_time()
        if self.job_state[job] != QUEUED:
            raise SimulationError(f"job {self.jobs.job_ids[job]} cannot be rejected: it is "
                                  f"{_STATE_WORDS[self.job_state[job]]}")
        self.job_state[job] = REJECTED
        self.final_state[job] = REJECTED_STATE
        self._job_order.append(job)
        self.nb_unfinished -= 1

    def kill(self, job: int) -> float | None:
        """End a running job now (COMPLETED_KILLED). Returns its progress in [0, 1], or None
        if the job was not running (Batsim ignores kills of jobs that already ended)."""
        self._decision_time()
        if self.job_state[job] != RUNNING:
            return None
        total = self.jobs.work[job]
        progress = float(self.work_done(np.array([job]))[0]) / total if total > 0 else 1.0
        self._end(job, KILLED)
        return progress

    def set_pstate(self, hosts, pstate: int) -> None:
        """Switch machines to a p-state now: a computation p-state at once (running jobs keep
        the work done); on platforms with Batsim sleep p-states, a sleep p-state (idle machines)
        or, from sleep, a computation one through the virtual switch p-states (see "sleep
        p-states" below); the acknowledgement comes when all the machines have switched."""
        self._decision_time()
        hosts = np.asarray(hosts, dtype=np.int64)
        if hosts.size > 1 and not (hosts[1:] > hosts[:-1]).all():
            hosts = np.unique(hosts)
        pstate = int(pstate)
        if hosts.size == 0:
            return
        bad = hosts[(pstate < 0) | (pstate >= self.platform.nb_pstates[hosts])]
        if bad.size:
            raise SimulationError(f"p-state {pstate} does not exist on machines {format_intervals(bad)}")
        if self._sleep is not None:
            self._set_pstate_with_sleep(hosts, pstate)
            return
        now = self._clock.now
        self._energy_query()
        self._advance_energy()
        self._energy_row("p")
        self._apply_computation_pstate(hosts, pstate)
        self._energy_row("p")
        # Formatted as interval sets only when the log is written.
        self._pstate_rows.append((now, hosts, -1))
        self._pstate_rows.append((now, hosts, pstate))
        self.nb_machine_switches += int(hosts.size)
        self.nb_grouped_switches += 1
        # Batsim acknowledges a computation p-state switch at once, in its next message.
        if self._acts is not None:
            self._pending.pstate_changes.append((hosts, pstate))
        else:
            self._clock.schedule_at(now, self._on_pstate_ack, (hosts, pstate))

    def _apply_computation_pstate(self, hosts: np.ndarray, pstate: int) -> None:
        """Put machines in a computation p-state now (SimGrid's set_pstate); the jobs on them
        keep their work done and go on at the new bottleneck speed. Energy advanced to now."""
        now = self._clock.now
        old = self.pstate[hosts]
        self._wattmin += float((self._watts_idle[hosts, pstate] - self._watts_idle[hosts, old]).sum())
        self.pstate[hosts] = pstate
        self._billed[hosts] = pstate
        jobs_here = self.busy_job[hosts]
        idle_hosts = hosts[jobs_here < 0]
        if idle_hosts.size:
            self._refresh_powers(idle_hosts, 0.0)
        for job in np.unique(jobs_here[jobs_here >= 0]).tolist():
            self._settle_job_energy(job)
            job_hosts = self.alloc[job]
            if self.jobs.kind[job] == KIND_DELAY:
                self._job_power[job] = self._refresh_powers(job_hosts, 0.0)
            elif self._acts is not None:
                # SimGrid keeps the task's remains and gives it the new bottleneck's rate.
                self._rate[job] = bottleneck_speed(job_hosts, self.pstate, self._speeds)
                slot = self._task_slot[job]
                if self.jobs.work[job] > 0:
                    self._acts.rate[slot] = self._rate[job] / self.jobs.work[job]
                self._job_power[job] = self._refresh_powers(job_hosts, self._rate[job])
            else:
                self._remaining[job] -= self._rate[job] * (now - self._progress_time[job])
                self._progress_time[job] = now
                self._rate[job] = bottleneck_speed(job_hosts, self.pstate, self._speeds)
                self._schedule_parallel_end(job)
                self._job_power[job] = self._refresh_powers(job_hosts, self._rate[job])

    def call_me_later(self, when: float) -> None:
        """Ask for a decision point at ``when`` (at once if it is already past)."""
        self._decision_time()
        if self._acts is not None:
            now = self._clock.now
            if when > now:  # Batsim's waiter actor sleeps, at least 1e-5 s
                self._acts.add_sleep(WAITER, -1, max(float(when) - now, MIN_WAITER_SLEEP_S))
            else:
                self._pending.requested_calls += 1
            return
        self._clock.schedule_at(max(float(when), self._clock.now), self._on_requested_call, None)

    def _decision_time(self) -> None:
        """With Batsim's protocol, the scheduler answers with the time it was told, printed
        with 6 decimals, and Batsim applies the answer at max(its clock, that time). When the
        printed time was rounded up, decisions take effect that much later; we do the same
        (unless an event falls in between, which Batsim would have reported first)."""
        if self._acts is not None:
            self._answer()
            if self._held_reports:
                if self._decisions_since_reply:
                    self._report_held_switches()
                else:
                    self._decisions_since_reply += 1
            return
        if not self._round_decisions:
            return
        clock = self._clock
        now = clock.now
        if now == self._decision_time_for:
            return
        printed = float(f"{now:.6f}")
        if printed > now and clock.peek() > printed:
            clock.set_now(printed)
        self._decision_time_for = clock.now

    # ------------------------------------------------------------------ event handlers

    def _on_submit(self, event) -> None:
        group = event.value
        lo, hi = int(self._submission_groups[group]), int(self._submission_groups[group + 1])
        # Batsim's job submitter queries the energy at its first submission only.
        if self._energy_first_submission is None:
            self._energy_query()
            self._advance_energy()
            self._energy_first_submission = self.energy
        self.job_state[lo:hi] = QUEUED
        self._point.submitted.extend(range(lo, hi))
        if hi < self.jobs.nb_jobs:
            self._clock.schedule_at(float(self.jobs.subtime[hi]), self._on_submit, group + 1)
        else:
            self._point.no_more_submissions = True

    def _on_end(self, event) -> None:
        job, epoch, final = event.value
        if epoch != self._epoch[job]:
            return  # superseded by a p-state change or a kill
        self._end(job, final)

    def _on_pstate_ack(self, event) -> None:
        self._point.pstate_changes.append(event.value)

    def _on_requested_call(self, event) -> None:
        self._point.requested_calls += 1

    # ------------------------------------------------------------------ internals

    def _schedule_end(self, job: int, when: float, final: int) -> None:
        self._epoch[job] += 1
        self._clock.schedule_at(when, self._on_end, (job, int(self._epoch[job]), final))

    def _schedule_parallel_end(self, job: int) -> None:
        now = self._clock.now
        remaining = self._remaining[job]
        end = now + remaining / self._rate[job] if remaining > 0 else now
        kill_at = self.start[job] + self.jobs.walltime[job]
        # A parallel task whose end falls exactly on its walltime completes (batsim-semantics 1.5).
        if end <= kill_at:
            self._schedule_end(job, end, SUCCESS)
        else:
            self._schedule_end(job, kill_at, WALLTIME_REACHED)

    def _end(self, job: int, final: int, wattmin_shift: float = 0.0) -> None:
        if self._observer is not None:
            self._observer("ended", job)
        now = self._clock.now
        self._energy_query()
        self._advance_energy()
        self._settle_job_energy(job)
        self._epoch[job] += 1
        if self._acts is not None:
            self._acts.cancel(self._task_slot[job])
            self._acts.cancel(self._timeout_slot[job])
            self._task_slot[job] = self._timeout_slot[job] = -1
        hosts = self.alloc[job]
        self.busy_job[hosts] = -1
        self.nb_free += hosts.size
        self._refresh_powers(hosts, 0.0)
        self._job_power[job] = 0.0
        self._running.discard(job)
        self.job_state[job] = FINISHED
        self.final_state[job] = final
        self.finish[job] = now
        self._job_order.append(job)
        self.nb_unfinished -= 1
        self._energy_last_completion = self.energy
        (self._pending if self._acts is not None else self._point).completed.append(job)
        if self._sleep is not None:
            self._machine_states(hosts, M_IDLE)
            self._state_row()
        self._energy_row("e", wattmin_shift)

    def _refresh_powers(self, hosts: np.ndarray, rate: float) -> float:
        """Recompute the power of ``hosts`` (all running one job at ``rate``, or idle when
        rate is 0) and return their sum. The energy must have been advanced to now."""
        total_new, delta = update_powers(hosts, rate, self.pstate, self._billed, self._speeds,
                                         self._watts_idle, self._watts_full, self.power)
        self._total_power += delta
        return total_new

    def _advance_energy(self) -> None:
        now = self._clock.now
        if now > self._energy_time:
            self.energy += self._total_power * (now - self._energy_time)
            self._energy_time = now

    def _settle_job_energy(self, job: int) -> None:
        now = self._clock.now
        self.job_energy[job] += self._job_power[job] * (now - self._job_energy_time[job])
        self._job_energy_time[job] = now

    def _energy_query(self) -> None:
        """SimGrid's energy plugin bills every host at p-state 0 until the host's first energy
        update; Batsim's first query after t=0 updates them all. Only active with the quirk."""
        if not self._quirk_pending or self._clock.now <= 0.0:
            return
        self._quirk_pending = False
        self._advance_energy()
        running = sorted(self._running)  # a fixed order for the power sums
        for job in running:
            self._settle_job_energy(job)
        self._billed[:] = self.pstate
        idle = np.flatnonzero(self.busy_job < 0)
        self._refresh_powers(idle, 0.0)
        if self._sleep is not None:
            for h in idle.tolist():
                if self._mstate[h] >= M_SWITCHING_ON:  # computing its switch flop
                    self._set_power(h, float(self._watts_full[h, self.pstate[h]]))
                elif self._mstate[h] == M_SLEEPING:
                    self._set_power(h, self._rest_power(h, int(self.pstate[h])))
        for job in running:
            rate = 0.0 if self.jobs.kind[job] == KIND_DELAY else self._rate[job]
            self._job_power[job] = self._refresh_powers(self.alloc[job], rate)

    def _energy_row(self, kind: str, wattmin_shift: float = 0.0) -> None:
        self._tracer_read_at = self._clock.now  # Batsim's tracer reads every machine's energy
        if not self._record_energy_rows:
            return
        now = self._clock.now
        epower = None
        if now > self._last_row_time and self._energy_rows:
            epower = (self.energy - self._last_row_energy) / (now - self._last_row_time)
        self._energy_rows.append((now, self.energy, kind, self._wattmin + wattmin_shift, epower))
        self._last_row_time = now
        self._last_row_energy = self.energy

    def _finish(self) -> None:
        if not self._finished:
            self._advance_energy()
            self._finished = True

    # ------------------------------------------------------------------ sleep p-states

    # Batsim 4.2.1 on platforms whose hosts declare ``sleep_pstates`` (src/server.cpp
    # server_on_pstate_modification and server_on_switched, src/pstate.cpp):
    # - a SET_RESOURCE_STATE request is one switch group (CurrentSwitches::add_switch); at once
    #   Batsim writes an energy row 'p' and a p-state row -1 (target a computation p-state) or -2
    #   (target a sleep p-state, by the request's first machine), and counts the switches;
    # - a machine in a computation p-state sent to another computation p-state switches at once;
    #   sent to a sleep p-state, an actor puts it in the sleep state's switch-off virtual
    #   p-state, computes 1 flop there (1 / speed s at that p-state's full power) and then puts
    #   it in the sleep p-state; a sleeping machine sent to a computation p-state goes the same
    #   way through the sleep state's switch-on virtual p-state;
    # - when the last machine of a group has switched, Batsim writes the p-state row of the
    #   whole group and an energy row 'p' and sends RESOURCE_STATE_CHANGED for the group (in
    #   the message of the SimGrid step in which the switch ended);
    # - machine states (idle, computing, sleeping, switching on/off) are counted per machine at
    #   each change (Machine::update_machine_state) and written to out_machine_states.csv at
    #   job starts and ends, at each request and at each group's end.
    # Refused here where Batsim would abort or hang: a virtual target, a machine that is
    # switching, a sleeping machine sent to sleep, a busy machine sent to sleep, a job started
    # on a machine that is not awake.

    def _init_sleep_states(self, m: int) -> None:
        self._mstate = np.zeros(m, np.int8)
        self._mstate_since = np.zeros(m)
        self._state_time = np.zeros(len(MACHINE_STATE_NAMES))
        self._state_count = np.zeros(len(MACHINE_STATE_NAMES), np.int64)
        self._state_count[M_IDLE] = m
        self._state_rows: list[tuple[float, int, int, int, int, int]] = []
        self._switch_target = np.full(m, -1, np.int64)
        self._switch_groups: list[list] = []  # [target, all machines, machines left], in request order
        self._slept = False

    def _machine_states(self, hosts: np.ndarray, state: int) -> None:
        now = self._clock.now
        old = self._mstate[hosts]
        np.add.at(self._state_time, old, now - self._mstate_since[hosts])
        np.add.at(self._state_count, old, -1)
        self._state_count[state] += hosts.size
        self._mstate[hosts] = state
        self._mstate_since[hosts] = now

    def _state_row(self) -> None:
        c = self._state_count
        self._state_rows.append((self._clock.now, int(c[M_SLEEPING]), int(c[M_SWITCHING_ON]),
                                 int(c[M_SWITCHING_OFF]), int(c[M_IDLE]), int(c[M_COMPUTING])))

    def _rest_power(self, h: int, pstate: int) -> float:
        """A machine's power when it runs nothing in ``pstate``; SimGrid's energy plugin takes a
        p-state of speed 0 as fully loaded."""
        if self._speeds[h, pstate] <= 0:
            return float(self._watts_full[h, pstate])
        return float(self._watts_idle[h, pstate])

    def _set_power(self, h: int, watts: float) -> None:
        self._total_power += watts - self.power[h]
        self.power[h] = watts

    def _set_pstate_with_sleep(self, hosts: np.ndarray, pstate: int) -> None:
        kind = self._sleep.kind
        where = format_intervals
        target = kind[hosts, pstate]
        if (target == VIRTUAL).any():
            raise SimulationError(f"p-state {pstate} is a virtual switch p-state of machines "
                                  f"{where(hosts[target == VIRTUAL])}: it cannot be requested")
        moving = self._mstate[hosts] >= M_SWITCHING_ON
        if moving.any():
            raise SimulationError(f"machines {where(hosts[moving])} are switching on or off at "
                                  f"{self.now:.6f}: wait for their RESOURCE_STATE_CHANGED")
        current = kind[hosts, self.pstate[hosts]]
        to_sleep = target == SLEEP
        bad = to_sleep & (current == SLEEP)
        if bad.any():
            raise SimulationError(f"machines {where(hosts[bad])} are already asleep")
        bad = to_sleep & (self.busy_job[hosts] >= 0)
        if bad.any():
            raise SimulationError(f"machines {where(hosts[bad])} run a job: only idle machines can "
                                  "be switched off")
        now = self._clock.now
        self._energy_query()
        self._advance_energy()
        self._energy_row("p")
        self._pstate_rows.append((now, hosts, -1 if kind[hosts[0], pstate] == COMPUTATION else -2))
        self.nb_machine_switches += int(hosts.size)
        self.nb_grouped_switches += 1
        plain = (current == COMPUTATION) & ~to_sleep
        if plain.any():
            self._apply_computation_pstate(hosts[plain], pstate)
        moving = hosts[~plain]
        group = [pstate, hosts, set(moving.tolist())]
        if moving.size:
            self._slept = True
            self._switch_groups.append(group)
            for h in moving.tolist():
                if kind[h, pstate] == SLEEP:
                    virtual, state = int(self._sleep.switch_off[h, pstate]), M_SWITCHING_OFF
                else:
                    virtual, state = int(self._sleep.switch_on[h, self.pstate[h]]), M_SWITCHING_ON
                self._wattmin += float(self._watts_idle[h, virtual] - self._watts_idle[h, self.pstate[h]])
                self.pstate[h] = self._billed[h] = virtual
                self._switch_target[h] = pstate
                # 1 flop at the virtual p-state's speed, the machine fully loaded meanwhile.
                self._set_power(h, float(self._watts_full[h, virtual]))
                speed = float(self._speeds[h, virtual])
                if speed <= 0:
                    raise SimulationError(f"machine {h}: virtual p-state {virtual} has speed 0, so "
                                          "the switch would never end")
                if self._acts is not None:
                    self._acts.add_task(SWITCH, h, speed / 1.0)
                else:
                    self._clock.schedule_at(now + 1.0 / speed, self._on_switched, h)
                self._machine_states(np.array([h]), state)
        else:
            self._group_done(group, at_decision=True)
        self._state_row()

    def _on_switched(self, event) -> None:
        self._switched(event.value)

    def _switched(self, h: int) -> None:
        """Machine ``h`` has computed its switch flop: it reaches its target p-state, and its
        request learns it."""
        self._switch_reached(h)
        self._switch_reported(h)

    def _switch_reached(self, h: int) -> None:
        """The switch actor's side: the machine is in its target p-state and state."""
        self._advance_energy()
        target = int(self._switch_target[h])
        self._wattmin += float(self._watts_idle[h, target] - self._watts_idle[h, self.pstate[h]])
        self.pstate[h] = self._billed[h] = target
        self._set_power(h, self._rest_power(h, target))
        asleep = self._sleep.kind[h, target] == SLEEP
        self._machine_states(np.array([h]), M_SLEEPING if asleep else M_IDLE)

    def _switch_reported(self, h: int) -> None:
        """The server's side, when the switch actor's message reaches it: the request of ``h``
        is done once all its machines have switched (then a machine-state row is written)."""
        target = int(self._switch_target[h])
        self._switch_target[h] = -1
        for group in self._switch_groups:  # CurrentSwitches::mark_switch_as_done
            if group[0] == target and h in group[2]:
                group[2].discard(h)
                if not group[2]:
                    self._switch_groups.remove(group)
                    self._state_row()
                    self._group_done(group, at_decision=False)
                return
        raise SimulationError(f"machine {h} switched to p-state {target} outside any request")  # pragma: no cover

    def _group_done(self, group: list, at_decision: bool) -> None:
        """Every machine of a request has switched: Batsim logs it and acknowledges it (a
        request decided now, in the next message)."""
        pstate, hosts = group[0], group[1]
        if self._observer is not None and not at_decision:
            self._observer("switched", hosts)
        self._energy_query()
        self._advance_energy()
        self._energy_row("p")
        self._pstate_rows.append((self._clock.now, hosts, pstate))
        if self._acts is not None:
            self._pending.pstate_changes.append((hosts, pstate))
        elif at_decision:
            self._clock.schedule_at(self._clock.now, self._on_pstate_ack, (hosts, pstate))
        else:
            self._point.pstate_changes.append((hosts, pstate))

    def switching(self, hosts) -> bool:
        """Whether any of ``hosts`` is switching on or off."""
        if self._sleep is None:
            return False
        return bool((self._mstate[np.asarray(hosts, dtype=np.int64)] >= M_SWITCHING_ON).any())

    def machine_awake(self) -> np.ndarray:
        """Per machine, whether it is awake (in a computation p-state, not switching): the
        machines a job may start on."""
        if self._sleep is None:
            return np.ones(self.nb_machines, np.bool_)
        return self._mstate <= M_COMPUTING


    # ------------------------------------------------------------------ SimGrid's clock

    # Batsim's actors on SimGrid (server.cpp, job_submitter.cpp, jobs_execution.cpp,
    # network.cpp), as the engine plays them with clock="simgrid":
    # - Everything that ends in one SimGrid step reaches Batsim's server before the next step
    #   and leaves in one message (``_pending``), sent at once if the scheduler is ready.
    # - The scheduler's reply carries the message's time printed with 6 decimals; when that is
    #   later than the clock, Batsim's reply actor first sleeps the difference. The decisions
    #   take effect when the sleep ends; events of the sleep wait for the next message.
    # - Events caused by decisions (p-state acknowledgements, tasks of zero work) come at the
    #   same clock, in the next message.
    # - The job submitter sleeps ``subtime - now`` (in long double) to each next submit time;
    #   the job that woke it is submitted whatever the clock, and later jobs of the same
    #   submit time only if the clock reached it: a clock an ulp short splits the group.
    # - "No more jobs to submit" comes after the last submission: in the next message (with
    #   what the reply caused, if anything) when the submission was the step's last event,
    #   else at the end of that message.

    def _start_simgrid_clock(self) -> None:
        n = self.jobs.nb_jobs
        # A float clock from the start (SimPy's is the int 0 until set): times noted at t=0,
        # before the first step, are then 0.0 as with the exact clock.
        self._clock.set_now(0.0)
        self._acts = Activities()
        self._task_slot = np.full(n, -1, np.int64)  # a job's task, delay or kill sleep
        self._timeout_slot = np.full(n, -1, np.int64)  # a parallel job's walltime sleep
        self._pending = DecisionPoint(0.0)  # events Batsim's server holds, not sent yet
        self._ready = True  # the scheduler is not busy with a message
        self._held_reports: list[int] = []  # switches Batsim's server learns of after a decision
        self._decisions_since_reply = 0
        self._reply_due = False  # a message was handed out and not answered yet
        self._notify = _NOTIFY_NONE
        self._last_event_submission = False
        # Per submitter: its jobs [lo, hi) are submitted up to (not including) this index, and
        # whether it slept until its next job's submit time.
        self._submitted_up_to = [lo for lo, _ in self._submitter_ranges]
        self._woken_by_job = [False] * len(self._submitter_ranges)
        self._submitters_left = len(self._submitter_ranges)
        # Each submitter's first round, at t=0 (before any step), in their creation order.
        for k in range(len(self._submitter_ranges)):
            if self._submitter_round(k):
                self._submitters_left -= 1
        if not self._submitters_left and self._last_event_submission:
            self._notify = _NOTIFY_AFTER

    def _need_exact_clock(self, what: str) -> None:
        if self._acts is not None:
            raise SimulationError(f"{what} moves the clock to given times: it needs Engine(..., clock='exact')")

    def _report_held_switches(self) -> None:
        held, self._held_reports = self._held_reports, []
        for machine in held:
            self._switch_reported(machine)

    def _next_simgrid_point(self) -> DecisionPoint | None:
        self._answer()
        self._report_held_switches()
        while True:
            if self.message_due():
                if self._notify == _NOTIFY_NEXT:  # with what the last reply caused, if anything
                    self._notify = _NOTIFY_NONE
                    self._pending.no_more_submissions = True
                point, self._pending = self._pending, DecisionPoint(self._clock.now)
                point.time = self._clock.now
                if self._notify == _NOTIFY_AFTER:
                    self._notify = _NOTIFY_NEXT
                self._point = point
                self._reply_due = True
                return point
            if not self._simgrid_step():
                self._finish()
                return None

    def _answer(self) -> None:
        """The reply to the last message: if its printed time is later than the clock, Batsim's
        reply actor sleeps until then before the decisions take effect."""
        if not self._reply_due:
            return
        self._reply_due = False
        if self._round_decisions:
            self._reply_sleep(float(f"{self._clock.now:.6f}"))

    def _reply_sleep(self, until: float) -> None:
        now = self._clock.now
        if until <= now:
            return
        self._ready = False
        self._acts.add_sleep(REPLY, -1, until - now)
        while not self._ready:
            if not self._simgrid_step():
                raise SimulationError("SimGrid clock: the reply sleep vanished")  # pragma: no cover

    # ------------------------------------------------------------------ for a Batsim server
    # What a server that answers real schedulers as Batsim does (hdeeprm.backends.batsim.server)
    # needs beyond the decisions: the times of a reply, the energy query, and the order in which
    # Batsim's actors produce the events of one message.

    def reply_sleep(self, until: float) -> None:
        """The scheduler's reply takes effect at ``until`` (an event's timestamp, or the reply's
        ``now``) when that is later than the clock: Batsim's reply actor sleeps in simulated
        time first, and what happens meanwhile goes into the next message. It replaces, for
        the current reply, the engine's own rule (the message's printed time). SimGrid clock."""
        if self._acts is None:
            raise SimulationError("reply_sleep plays Batsim's reply actor: it needs Engine(..., clock='simgrid')")
        self._reply_due = False
        self._reply_sleep(float(until))

    def message_due(self) -> bool:
        """Whether Batsim would send a message now, before the clock moves: the scheduler is
        free and events (or the end-of-submissions notice) wait to be sent. SimGrid clock."""
        self._report_held_switches()  # the reply is over
        return self._ready and (bool(self._pending) or self._notify == _NOTIFY_NEXT)

    def query_energy(self) -> float:
        """Batsim's answer to QUERY consumed_energy: SimGrid's energy plugin brings every host
        up to date when asked, then the joules consumed since t=0."""
        self._energy_query()
        return self.energy_so_far()

    def observe(self, observer) -> None:
        """``observer(kind, value)`` is called as Batsim's actors produce events, in the order
        of their SimGrid activities: ("submitted", job) for each submission, ("ended", job) for
        each job end (kills included), ("switched", machines) when the last machine of a sleep
        switch request has switched. None stops it."""
        self._observer = observer

    def _simgrid_step(self) -> bool:
        """One SimGrid step and what Batsim's actors do with the activities that ended in it;
        False when nothing is left to happen."""
        acts = self._acts
        if acts.compact():
            self._reindex_activities()
        now, done = acts.step(self._clock.now)
        if done is None:
            return False
        self._clock.set_now(now)
        sent_before = bool(self._pending)
        self._last_event_submission = False
        submitter_finished = reply_ended = False
        switched: list[int] = []
        slots = done.tolist()
        shift = self._switch_wattmin_shift(done) if self._sleep is not None else 0.0
        for slot in slots:
            kind, job = int(acts.kind[slot]), int(acts.owner[slot])
            if kind == SUBMITTER:  # owner: the submitter
                if self._submitter_round(job):
                    self._submitters_left -= 1
                    submitter_finished = not self._submitters_left  # the last one said bye
                continue
            if kind == REPLY:
                reply_ended = True
                continue
            if kind == WAITER:
                self._pending.requested_calls += 1
                self._last_event_submission = False
                continue
            if kind == SWITCH:  # owner: the machine; after the jobs' ends (see below)
                switched.append(job)
                self._last_event_submission = False
                continue
            if self.job_state[job] != RUNNING or slot not in (self._task_slot[job], self._timeout_slot[job]):
                continue  # its task and timeout ended in the same step: the task came first
            final = SUCCESS if kind in (JOB_TASK, JOB_DELAY) else WALLTIME_REACHED
            self._end(job, final, shift)
            self._last_event_submission = False
        # A job's actor writes its end (energy and machine-state rows) as soon as it wakes; a
        # switch is logged by Batsim's server when the switcher's message reaches it, after the
        # step's actors have run (observed: a job end and a switch-on in one step, the job's
        # rows first and the machine still counted as switching on in them). By then every
        # switch actor of the step has set its machine's p-state and state, so the server's
        # rows count all of them (src/server.cpp server_on_switched; observed on 128 hosts).
        for machine in switched:
            self._switch_reached(machine)
        if reply_ended and switched:
            # The reply actor woke in this step too: its first decision reaches Batsim's
            # server before the switch actors' messages (two simcalls against three), the
            # others after them (observed: a job start's rows before the switch request's).
            self._held_reports, self._decisions_since_reply = switched, 0
        else:
            for machine in switched:
                self._switch_reported(machine)
        if submitter_finished:
            if self._last_event_submission and self._ready and not sent_before:
                self._notify = _NOTIFY_AFTER
            else:
                self._pending.no_more_submissions = True
        if reply_ended:
            self._ready = True
        return True

    def machines_updated_by_end(self, job: int) -> np.ndarray:
        """The machines whose energy SimGrid's energy plugin brings up to date as ``job``'s
        activity ends: a parallel task's machines; a delay is a sleep on its actor's host, the
        allocation's first machine (observed in SimGrid's rounds against real Batsim)."""
        hosts = self.alloc[job]
        return hosts if self.jobs.kind[job] != KIND_DELAY else hosts[:1]

    def _switch_wattmin_shift(self, done: np.ndarray) -> float:
        """What the energy rows of the jobs that end in this step add to wattmin for the sleep
        switches that end in it too. Batsim's tracer sums, as it writes a row, every machine's
        idle power in its current p-state. A job's actor writes its end's row after reading
        every machine's energy, one simcall for each machine not yet up to date at this date;
        if it makes any, the switch actors of the step have meanwhile set their target
        p-states (their first simcall), and the row counts them. It makes none when the tracer
        already read every machine at this date, or when the step's ended activities touched
        every machine (a delay job's sleep touches its first machine only); then its row
        comes first."""
        if done.size < 2:  # a job end and a switch, or nothing to shift
            return 0.0
        acts = self._acts
        kinds, owners = acts.kind[done], acts.owner[done]
        machines = owners[kinds == SWITCH]
        ended = owners[(kinds == JOB_TASK) | (kinds == JOB_TIMEOUT) | (kinds == JOB_DELAY)
                       | (kinds == JOB_DELAY_KILLED)]
        if machines.size == 0 or ended.size == 0 or self._tracer_read_at == self._clock.now:
            return 0.0
        touched = np.zeros(self.nb_machines, np.bool_)
        touched[machines] = True
        for job in ended.tolist():
            touched[self.machines_updated_by_end(job)] = True
        if touched.all():
            return 0.0
        targets = self._switch_target[machines]
        return float((self._watts_idle[machines, targets] - self._watts_idle[machines, self.pstate[machines]]).sum())

    def _reindex_activities(self) -> None:
        acts = self._acts
        count = acts.count
        kinds, owners = acts.kind[:count], acts.owner[:count]
        for slots, wanted in ((self._task_slot, (JOB_TASK, JOB_DELAY, JOB_DELAY_KILLED)),
                              (self._timeout_slot, (JOB_TIMEOUT,))):
            slots[slots >= 0] = -1
            mine = np.flatnonzero(np.isin(kinds, wanted) & (owners >= 0))
            slots[owners[mine]] = mine

    def _submitter_round(self, k: int) -> bool:
        """Batsim's job submitter ``k``, woken at the current clock: submits what is due and
        sleeps until the next submit time. Returns True once every job of it is submitted."""
        n = self._submitter_ranges[k][1]
        subtime = self.jobs.subtime
        now = self._clock.now
        clock = np.longdouble(now)  # Batsim keeps the submission date in a long double
        lo = hi = self._submitted_up_to[k]
        if self._woken_by_job[k]:
            hi += 1
            self._woken_by_job[k] = False
        while hi < n:
            due = np.longdouble(subtime[hi])
            if due > clock:
                self._submit(k, lo, hi)
                self._acts.add_sleep(SUBMITTER, k, float(due - clock))
                self._woken_by_job[k] = True
                return False
            hi += 1
        self._submit(k, lo, hi)
        return True

    def _submit(self, k: int, lo: int, hi: int) -> None:
        if hi <= lo:
            return
        if self._observer is not None:
            for job in range(lo, hi):
                self._observer("submitted", job)
        if self._energy_first_submission is None:
            # Batsim's job submitter queries the energy at its first submission only.
            self._energy_query()
            self._advance_energy()
            self._energy_first_submission = self.energy
        self.job_state[lo:hi] = QUEUED
        self._pending.submitted.extend(range(lo, hi))
        self._submitted_up_to[k] = hi
        self._last_event_submission = True

    def _start_activities(self, job: int, hosts: np.ndarray) -> None:
        """The SimGrid activities of a job started now (after its energy bookkeeping)."""
        acts = self._acts
        work, walltime = self.jobs.work[job], self.jobs.walltime[job]
        limited = math.isfinite(walltime) and walltime > 0
        if self.jobs.kind[job] == KIND_DELAY:
            self._job_power[job] = self._refresh_powers(hosts, 0.0)
            # Batsim sleeps the whole delay only if it is strictly below the walltime.
            if limited and not work < walltime:
                self._task_slot[job] = acts.add_sleep(JOB_DELAY_KILLED, job, walltime)
            else:
                self._task_slot[job] = acts.add_sleep(JOB_DELAY, job, work)
            return
        self._rate[job] = bottleneck_speed(hosts, self.pstate, self._speeds)
        self._job_power[job] = self._refresh_powers(hosts, self._rate[job])
        if work > 0:
            self._task_slot[job] = acts.add_task(JOB_TASK, job, self._rate[job] / work)
        else:  # no work: it ends in a step of zero length
            self._task_slot[job] = acts.add_task(JOB_TASK, job, 1.0, remains=0.0)
        if limited:
            self._timeout_slot[job] = acts.add_sleep(JOB_TIMEOUT, job, walltime)

    # ------------------------------------------------------------------ results

    def result(self) -> SimulationResult:
        """The run's outcome; call once the engine has run to its end."""
        finish = self.finish.copy()
        zero_work = (self.jobs.kind != KIND_DELAY) & (self.jobs.work == 0) & (self.final_state == SUCCESS)
        finish[zero_work] = self.start[zero_work] + ZERO_WORK_RECORDED_DURATION
        first = self._energy_first_submission or 0.0
        wall = perf_counter() - self._wall_start
        return SimulationResult(
            workload=self.jobs,
            workload_name=self.workload_name,
            job_workload=self.job_workload,
            start_order=list(self._start_order),
            nb_machines=self.nb_machines,
            job_order=list(self._job_order),
            final_state=self.final_state.copy(),
            start=self.start.copy(),
            finish=finish,
            alloc=self.alloc.copy(),  # a list, or the fast path's read-only Allocations
            job_energy=self.job_energy.copy(),
            consumed_joules=self._energy_last_completion - first,
            energy_rows=self._energy_rows,
            pstate_rows=self._pstate_rows,
            nb_machine_switches=self.nb_machine_switches,
            nb_grouped_switches=self.nb_grouped_switches,
            end_time=self._clock.now,
            wall_seconds=wall,
            scheduling_seconds=self.scheduling_seconds,
            energy_accounting=self.energy_accounting,
            **self._sleep_results(),
        )

    def _sleep_results(self) -> dict:
        """Machine states of a run in which machines slept or switched (None otherwise: the
        output writers derive them from the jobs as before)."""
        if self._sleep is None or not self._slept:
            return {}
        times = dict(zip(MACHINE_STATE_NAMES, self._state_time.tolist()))
        return {"machine_state_rows": list(self._state_rows), "machine_state_times": times}

    def check_invariants(self) -> None:
        """Opt-in consistency check (O(jobs + machines)); tests call it at every decision point."""
        busy = self.busy_job >= 0
        running = sorted(self._running)
        if busy.sum() != sum(self.alloc[j].size for j in running):
            raise AssertionError("machines in use do not match the running jobs' allocations")
        for j in running:
            if not (self.busy_job[self.alloc[j]] == j).all():
                raise AssertionError(f"job {j} does not hold all its machines")
            if self.start[j] < self.jobs.subtime[j]:
                raise AssertionError(f"job {j} started before its submission")
        if self.nb_free != int((~busy).sum()):
            raise AssertionError("free-machine count is stale")
        if abs(self._total_power - float(self.power.sum())) > 1e-6 * max(1.0, abs(self._total_power)):
            raise AssertionError("total power is stale")


_STATE_WORDS = {NOT_SUBMITTED: "not submitted yet", QUEUED: "queued", RUNNING: "already running",
                FINISHED: "already finished", REJECTED: "rejected"}


def _merge(into: DecisionPoint, other: DecisionPoint) -> None:
    into.submitted.extend(other.submitted)
    into.completed.extend(other.completed)
    into.requested_calls += other.requested_calls
    into.pstate_changes.extend(other.pstate_changes)
    into.no_more_submissions = into.no_more_submissions or other.no_more_submissions
