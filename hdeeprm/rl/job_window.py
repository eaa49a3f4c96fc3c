"""The job-window action space: the agent picks which waiting job goes next.

As in RLScheduler (Zhang et al., SC 2020), the agent sees the first K waiting jobs in
submission order and chooses one. The chosen job starts now if it fits, on cores chosen by
the configuration's core key; otherwise it waits at the head of the queue until enough
cores (and memory) are free, the simulation running on without asking the agent, and with
EASY backfilling the other waiting jobs start meanwhile if they do not delay it. After a job
starts, the agent chooses again while jobs wait. With ``window_commit=False`` a chosen job
that does not fit is held (and backfilled around) only until the next submission or
completion, where the agent chooses again: as a classic pair re-sorts the queue at each
event, so that a short job arriving later can still go first.

Observation: a (K, F) float32 matrix, one row per window slot, all values in [0, 1]; rows
past the end of the queue are zeros (and masked out of the actions). Per job:
  requested_time   requested time / the workload's job limit (clipped to 1)
  cores            requested cores / job limit
  memory           memory per core / job limit
  bandwidth        memory bandwidth per core / job limit
  waiting          waiting time w as w / (w + requested-time limit): 0 on arrival, 0.5 after
                   one limit's worth of waiting, towards 1 for ever
  fits_now         1 if the job could start now (cores and memory), else 0
  share_of_free    requested cores / free cores (1 when none is free), clipped to 1
and per row the same platform context:
  free_cores       free cores / cores
  queue_fill       waiting jobs / K, clipped to 1 (1: more jobs wait than the window shows)
  free_memory      free node memory / node memory (1 on platforms without memory limits)
  free_bandwidth   free processor bandwidth / bandwidth (likewise)
  present          1 for a job, 0 for padding
The job limits are the workload's 99th percentiles (``hdeeprm.inputs.workload.job_limits``), fixed
for the environment (an experiment fixes them from its training part).
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np

from hdeeprm.simulation.resources import FITS, UNLIMITED

WINDOW_FEATURES = ("requested_time", "cores", "memory", "bandwidth", "waiting", "fits_now", "share_of_free",
                   "free_cores", "queue_fill", "free_memory", "free_bandwidth", "present")
DEFAULT_WINDOW_JOBS = 32


class JobWindowObserver:
    """The window (which jobs the actions mean) and its feature matrix at a decision."""

    def __init__(self, window_jobs: int, limits: np.ndarray, nb_cores: int):
        self.window_jobs = int(window_jobs)
        self.limits = np.asarray(limits, dtype=np.float64)  # (4,): time, cores, memory, bandwidth
        self.nb_cores = int(nb_cores)
        self.jobs: list[int] = []  # the window at the last observation

    @property
    def space(self) -> gym.spaces.Box:
        return gym.spaces.Box(0.0, 1.0, shape=(self.window_jobs, len(WINDOW_FEATURES)), dtype=np.float32)

    def reset(self) -> None:
        self.jobs = []

    def build(self, scheduler, requests: np.ndarray, now: float) -> np.ndarray:
        """``requests``: (4, jobs) requested time, cores, memory and bandwidth per core."""
        obs = np.zeros((self.window_jobs, len(WINDOW_FEATURES)), np.float32)
        self.jobs = jobs = scheduler.queue[:self.window_jobs]
        if not jobs:
            return obs
        k = len(jobs)
        res = scheduler.resources
        wanted = requests[:, jobs]  # (4, k)
        obs[:k, 0:4] = np.clip(wanted / self.limits[:, None], 0.0, 1.0).T
        waited = np.maximum(now - scheduler.engine.jobs.subtime[jobs], 0.0)
        obs[:k, 4] = waited / (waited + self.limits[0])
        obs[:k, 5] = self._fits_now(res, jobs, wanted[1])
        free = res.nb_free
        obs[:k, 6] = np.clip(wanted[1] / free, 0.0, 1.0) if free else 1.0
        obs[:k, 7] = free / self.nb_cores
        obs[:k, 8] = min(len(scheduler.queue) / self.window_jobs, 1.0)
        obs[:k, 9] = _free_fraction(res.node_free_kb, res.node_memory_kb)
        obs[:k, 10] = _free_fraction(np.maximum(res.proc_bw_left, 0), res.proc_bw_kbs)
        obs[:k, 11] = 1.0
        return obs

    @staticmethod
    def _fits_now(res, jobs: list[int], cores: np.ndarray) -> np.ndarray:
        """Whether each job could start now; memory is checked only for the jobs that need
        some and for which there are enough free cores."""
        fits = cores <= res.nb_free
        index = np.asarray(jobs)
        check = np.flatnonzero(fits & (res.job_mem_kb[index] > 0))
        for i in check.tolist():
            fits[i] = res.fit_status(jobs[i]) == FITS
        return fits

    def mask(self) -> np.ndarray:
        mask = np.zeros(self.window_jobs, dtype=bool)
        mask[:len(self.jobs)] = True
        return mask


def _free_fraction(free: np.ndarray, total: np.ndarray) -> float:
    limited = total < UNLIMITED
    if not limited.any():
        return 1.0
    return float(free[limited].sum() / max(total[limited].sum(), 1))


# ---------------------------------------------------------------------- heuristics

#: Classic job-selection scores (lowest first, ties by submission), as RLScheduler compares
#: them, with r the requested time (s), n the requested cores, s the submit time in seconds
#: since the trace's first job, w the waiting time so far:
#:   fcfs    s
#:   sjf     r
#:   saf     r n                            (smallest area first)
#:   f1      log10(r) n + 870 log10(s)      (Carastan-Santos and de Camargo, SC 2017)
#:   wfp3    -(w / r)^3 n
#:   unicef  -w / (log2(n) r)  (n = 1: log2 taken as 1)
#: RLScheduler's own WFP3 and UNICEF read the waiting time of a queued job as -1 - s (a bug:
#: its scheduled time is -1 until it starts); these are the published definitions.
WINDOW_HEURISTICS = ("fcfs", "sjf", "saf", "f1", "wfp3", "unicef")


class WindowHeuristicAgent:
    """A heuristic in the job-window action space: the window's job of lowest score. Its env
    should show the whole queue (``window_jobs`` at least the episode's jobs) to be the
    heuristic itself rather than the heuristic over the first K jobs."""

    def __init__(self, env, heuristic: str):
        if heuristic not in WINDOW_HEURISTICS:
            raise ValueError(f"heuristic {heuristic!r}: expected one of {', '.join(WINDOW_HEURISTICS)}")
        self.env, self.heuristic = env, heuristic

    def decide(self, observation, action_mask=None) -> int:
        env = self.env
        jobs = np.asarray(env.window_job_indices())
        table = env.engine.jobs
        r = np.maximum(np.nan_to_num(table.req_time[jobs], nan=1.0), 1e-9)
        n = table.res[jobs].astype(np.float64)
        s = env.episode_time_origin + table.subtime[jobs]
        with np.errstate(divide="ignore", invalid="ignore"):
            if self.heuristic == "fcfs":
                score = s
            elif self.heuristic == "sjf":
                score = r
            elif self.heuristic == "saf":
                score = r * n
            elif self.heuristic == "f1":
                score = np.log10(r) * n + 870.0 * np.log10(s)
            else:
                w = np.maximum(env.now - table.subtime[jobs], 0.0)
                if self.heuristic == "wfp3":
                    score = -((w / r) ** 3) * n
                else:
                    score = -w / (np.where(n > 1, np.log2(n), 1.0) * r)
        score = np.nan_to_num(score, nan=np.inf)
        return int(np.lexsort((jobs, score))[0])
