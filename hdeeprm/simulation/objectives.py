"""What an agent is rewarded for: the objectives of HeteroEnv and their exact rewards.

Each reward is minus the growth of a cost C(t) between a decision and the next one, so that
an episode's return is minus C at its end (less C at the first decision, which is 0 for every
objective but makespan and energy): what the agent maximises is exactly the objective.

HDeepRM's objectives (the original's names and definitions):
  avg_job_slowdown     C = integral over time of sum over waiting and running jobs of
                       1 / requested time (at least 1 s): at the end, the sum of the jobs'
                       turnaround / requested time
  avg_job_completion   C = integral of the number of waiting and running jobs: the sum of
                       turnaround times (s)
  avg_utilization      C = - mean fraction of busy cores since t = 0
  makespan             C = t (s)
  energy_consumption   C = energy consumed since t = 0 (J)
  edp                  C = energy (J) x time (s), the energy-delay product

Per-job averages, as the scheduling literature reports them (divided by the number of the
episode's jobs that can run on the platform, N; jobs too big for it are rejected and count
in no average):
  avg_bounded_slowdown C = sum over completed jobs of max(1, turnaround / max(run time,
                       bound)) / N, with ``bound`` = EnvConfig.bsld_bound (10 s by default,
                       Feitelson's): at the end, the mean bounded slowdown that
                       :func:`hdeeprm.simulation.metrics.headline_metrics` reports. The reward arrives
                       when a job completes.
  avg_waiting_time     C = integral of the number of waiting jobs / N: at the end the mean
                       waiting time (s); the reward is dense.

The energy / waiting trade-off (the readable path computes it):
  energy_waiting       C = energy consumed since the first submission (J) + w x integral of
                       the number of waiting jobs (s), w = EnvConfig.waiting_watts (W, what
                       one waiting job costs: 100 W by default, about one idle server): at
                       the end, the episode's energy plus w x the sum of its jobs' waiting
                       times (the start times of the simulator's outputs). The reward is
                       dense. Energy is billed from the episode's first decision (its first
                       submission: before it no job runs and no machine switches, so every
                       policy draws the same) to its end (the last completion or switch),
                       so C is 0 at the first decision and the return is exactly minus C at
                       the end. Why not after the end, see RewardTracker.cost.

A user objective, without forking: pass ``EnvConfig(objective=fn)`` (or, in an experiment
file, ``"objective": "path/to/file.py:fn"``) where ``fn(jobs: FinishedJobs) -> float`` is the
cost of the jobs that completed since the last decision (e.g. the sum of their turnaround
times over N). The reward is minus that cost, so the return is minus the sum of the costs
of all completed jobs.
"""

from __future__ import annotations

import importlib.util
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Union

import numpy as np

from hdeeprm.common.errors import ConfigError

#: The original HDeepRM's objectives, in the order the compiled fast path numbers them.
HDEEPRM_OBJECTIVES = ("avg_job_slowdown", "avg_job_completion", "avg_utilization", "makespan",
                      "energy_consumption", "edp")
#: Per-job averages from the scheduling literature (the readable path computes them).
AVERAGE_OBJECTIVES = ("avg_bounded_slowdown", "avg_waiting_time")
#: Trade-offs between HDeepRM's objectives (the readable path computes them too; the compiled
#: path, which runs HDEEPRM_OBJECTIVES only, declines them).
TRADE_OFF_OBJECTIVES = ("energy_waiting",)
OBJECTIVES = HDEEPRM_OBJECTIVES + AVERAGE_OBJECTIVES + TRADE_OFF_OBJECTIVES
DEFAULT_BSLD_BOUND = 10.0  # s
DEFAULT_WAITING_WATTS = 100.0  # W: energy_waiting's price of one waiting job, about one idle server

#: What an episode's return measures, for tables and figures (minus the return, divided by
#: the reward scale, is the objective's value: lower is better for every objective).
OBJECTIVE_LABELS: dict[str, str] = {
    "avg_job_slowdown": "sum of turnaround / requested time",
    "avg_job_completion": "sum of turnaround times (s)",
    "avg_utilization": "minus mean utilisation",
    "makespan": "makespan after the first submission (s)",
    "energy_consumption": "energy after the first submission (J)",
    "edp": "energy-delay product (J s)",
    "avg_bounded_slowdown": "mean bounded slowdown",
    "avg_waiting_time": "mean waiting time (s)",
    "energy_waiting": "energy after the first submission + waiting_watts x waiting time (J)",
}


@dataclass(frozen=True)
class FinishedJobs:
    """The jobs that completed since the last decision, for a user objective. Arrays are
    indexed alike (one entry per job); times in seconds from the episode's start."""

    index: np.ndarray  # job indices in the episode's workload
    subtime: np.ndarray
    start: np.ndarray
    finish: np.ndarray
    requested_time: np.ndarray  # the user's estimate (walltime)
    cores: np.ndarray
    nb_jobs: int  # N: jobs of the episode that can run on the platform


JobCost = Callable[[FinishedJobs], float]
Objective = Union[str, JobCost]


def check_objective(objective: Objective) -> None:
    if callable(objective):
        return
    if objective not in OBJECTIVES:
        raise ConfigError(f"objective {objective!r}: expected one of {', '.join(OBJECTIVES)}, "
                          "or a function of the finished jobs (see hdeeprm.simulation.objectives)")


def load_user_objective(spec: str, base: Path | None = None) -> JobCost:
    """``"path/to/file.py:function"`` -> the function (relative paths from ``base``)."""
    path_text, sep, name = spec.rpartition(":")
    if not sep or not path_text.endswith(".py") or not name.isidentifier():
        raise ConfigError(f"objective {spec!r}: expected a built-in objective ({', '.join(OBJECTIVES)}) "
                          "or FILE.py:FUNCTION")
    path = Path(path_text)
    if base is not None and not path.is_absolute():
        path = base / path
    if not path.is_file():
        raise ConfigError(f"objective {spec!r}: {path}: no such file")
    module_spec = importlib.util.spec_from_file_location(f"hdeeprm_user_objective_{path.stem}", path)
    module = importlib.util.module_from_spec(module_spec)
    try:
        module_spec.loader.exec_module(module)
    except Exception as e:  # the user's file: say which one failed and why
        raise ConfigError(f"objective {spec!r}: {path} failed to load: {type(e).__name__}: {e}") from None
    fn = getattr(module, name, None)
    if not callable(fn):
        raise ConfigError(f"objective {spec!r}: {path} defines no function {name!r}")
    return fn


def objective_name(objective: Objective) -> str:
    return objective if isinstance(objective, str) else getattr(objective, "__name__", "user objective")


class RewardTracker:
    """Integrates the objective's cost C(t) over the simulation (see the module docstring).

    The quantities that change only at events (jobs in the system, waiting jobs, busy cores)
    are kept as running sums, so each event costs O(jobs of that event)."""

    def __init__(self, objective: Objective, inverse_requested_time: np.ndarray, *,
                 nb_runnable: int = 1, bsld_bound: float = DEFAULT_BSLD_BOUND,
                 waiting_watts: float = DEFAULT_WAITING_WATTS):
        self.objective = objective
        self.inverse_time = inverse_requested_time
        self.per_job = 1.0 / max(nb_runnable, 1)  # the averages' 1 / N
        self.nb_runnable = nb_runnable
        self.bsld_bound = float(bsld_bound)
        self.waiting_watts = float(waiting_watts)
        self.energy_origin = None  # energy_waiting: the energy at the first decision (J)
        self.time = 0.0
        self.in_system = 0.0  # sum of 1/T (slowdown), count (completion), or waiting jobs
        self.busy = 0  # busy cores
        self.busy_integral = 0.0  # core-seconds
        self.integral = 0.0
        self.completed_cost = 0.0  # per-job objectives: cost of the jobs completed so far
        self.cost_at_decision = 0.0
        # avg_waiting_time, energy_waiting: when each job left the queue on the scheduler's
        # side; a start lands a hair later on the simulator's clock, added when the job
        # completes so that the return is the waiting time of Batsim's outputs exactly.
        waiting = objective in ("avg_waiting_time", "energy_waiting")
        self.dequeued_at = np.zeros(len(inverse_requested_time)) if waiting else None

    def advance(self, now: float) -> None:
        dt = now - self.time
        if dt > 0:
            self.integral += self.in_system * dt
            self.busy_integral += self.busy * dt
            self.time = now

    def enter(self, jobs) -> None:
        """Jobs admitted to the queue."""
        if self.objective == "avg_job_slowdown":
            self.in_system += float(self.inverse_time[jobs].sum())
        elif self.objective in ("avg_job_completion", "avg_waiting_time", "energy_waiting"):
            self.in_system += len(jobs)

    def started(self, jobs) -> None:
        if self.objective in ("avg_waiting_time", "energy_waiting"):
            self.in_system -= len(jobs)
            self.dequeued_at[jobs] = self.time

    def leave(self, jobs, engine=None) -> None:
        """Jobs that completed (``engine``: where their start and finish times are)."""
        objective = self.objective
        if objective == "avg_job_slowdown":
            self.in_system -= float(self.inverse_time[jobs].sum())
        elif objective == "avg_job_completion":
            self.in_system -= len(jobs)
        elif objective == "avg_waiting_time":
            index = np.asarray(jobs)
            self.completed_cost += float((engine.start[index] - self.dequeued_at[index]).sum()) * self.per_job
        elif objective == "energy_waiting":  # waiting job-seconds here, priced in cost()
            index = np.asarray(jobs)
            self.completed_cost += float((engine.start[index] - self.dequeued_at[index]).sum())
        elif objective == "avg_bounded_slowdown":
            index = np.asarray(jobs)
            subtime, start, finish = engine.jobs.subtime[index], engine.start[index], engine.finish[index]
            run = np.maximum(finish - start, self.bsld_bound)
            self.completed_cost += float(np.maximum(1.0, (finish - subtime) / run).sum()) * self.per_job
        elif callable(objective):
            index = np.asarray(jobs)
            jobs_ = engine.jobs
            finished = FinishedJobs(index, jobs_.subtime[index], engine.start[index], engine.finish[index],
                                    jobs_.walltime[index], jobs_.res[index], self.nb_runnable)
            cost = float(objective(finished))
            if not math.isfinite(cost):
                raise ConfigError(f"objective {objective_name(objective)}: returned {cost!r} for jobs "
                                  f"{index.tolist()[:5]}: expected a finite number")
            self.completed_cost += cost

    def cost(self, engine, nb_cores: int) -> float:
        t = self.time
        objective = self.objective
        if objective in ("avg_job_slowdown", "avg_job_completion"):
            return self.integral
        if objective == "avg_waiting_time":
            return self.integral * self.per_job + self.completed_cost
        if objective == "energy_waiting":
            # Energy from the first decision to now, nothing after the episode's end. The
            # energy study's "common horizon" (every run of a window billed, at the power it
            # drew when it ended, up to the latest end among the runs compared) is not part of
            # the cost: that horizon depends on which other runs are compared, so it is no
            # quantity of one episode, and a return that changed with the set of policies
            # compared would not be an objective. Billing nothing after the end does not
            # reward a policy for stretching its run either: every second of a longer run is
            # billed (the platform's draw, asleep or awake), and the jobs that make it longer
            # by waiting are billed at waiting_watts each. What it leaves out is the state in
            # which the run ends (machines awake or asleep), which no decision follows.
            if self.energy_origin is None:  # the first decision
                self.energy_origin = engine.energy_so_far()
            waited = self.integral + self.completed_cost  # job-seconds
            return engine.energy_so_far() - self.energy_origin + self.waiting_watts * waited
        if objective == "avg_bounded_slowdown" or callable(objective):
            return self.completed_cost
        if objective == "makespan":
            return t
        if objective == "energy_consumption":
            return engine.energy_so_far()
        if objective == "edp":
            return engine.energy_so_far() * t
        return -self.busy_integral / (nb_cores * t) if t > 0 else 0.0  # avg_utilization

    def reward(self, engine, nb_cores: int) -> float:
        """Minus the cost's growth since the previous call."""
        cost = self.cost(engine, nb_cores)
        reward = -(cost - self.cost_at_decision)
        self.cost_at_decision = cost
        return reward
