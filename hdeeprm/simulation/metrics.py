"""Headline metrics of a run, computed from the engine's result."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from hdeeprm.simulation.engine import REJECTED_STATE, WALLTIME_REACHED, SimulationResult
from hdeeprm.simulation.outputs import summarize

BOUNDED_SLOWDOWN_THRESHOLD = 10.0  # s, the usual bound for short jobs (Feitelson et al.)


@dataclass(frozen=True)
class HeadlineMetrics:
    makespan: float  # s
    mean_waiting_time: float  # s
    mean_slowdown: float  # turnaround / execution time
    mean_bounded_slowdown: float  # max(1, turnaround / max(execution, 10 s))
    utilization: float  # machine-seconds computing / (machines x makespan)
    consumed_joules: float  # J
    nb_jobs: int
    nb_finished: int
    nb_rejected: int
    nb_walltime_killed: int

    def as_dict(self) -> dict:
        return asdict(self)


def headline_metrics(result: SimulationResult) -> HeadlineMetrics:
    summary = summarize(result)
    ran = (result.final_state != 0) & (result.final_state != REJECTED_STATE)
    w = result.workload
    execution = result.finish[ran] - result.start[ran]
    turnaround = result.finish[ran] - w.subtime[ran]
    waiting = result.start[ran] - w.subtime[ran]
    with np.errstate(divide="ignore", invalid="ignore"):
        slowdown = turnaround / execution
    bounded = np.maximum(1.0, turnaround / np.maximum(execution, BOUNDED_SLOWDOWN_THRESHOLD))
    makespan = summary["makespan"]
    capacity = result.nb_machines * makespan
    return HeadlineMetrics(
        makespan=makespan,
        # Over the jobs that ran (Batsim's out_schedule.csv divides by all jobs, rejected too).
        mean_waiting_time=float(waiting.mean()) if waiting.size else 0.0,
        mean_slowdown=float(slowdown.mean()) if slowdown.size else 0.0,
        mean_bounded_slowdown=float(bounded.mean()) if bounded.size else 0.0,
        utilization=summary["time_computing"] / capacity if capacity > 0 else 0.0,
        consumed_joules=summary["consumed_joules"],
        nb_jobs=summary["nb_jobs"],
        nb_finished=summary["nb_jobs_finished"],
        nb_rejected=summary["nb_jobs_rejected"],
        nb_walltime_killed=int((result.final_state == WALLTIME_REACHED).sum()),
    )
