"""Job-selection and core-selection keys: the vocabulary of HDeepRM's actions.

A scheduling decision is a pair ``(job key, core key)``: the job key orders the waiting
queue, the core key chooses, one core at a time, where the chosen job runs.

Job keys (ascending; ties go to the job submitted first, i.e. the lowest job index, which for
converted traces is the lowest job number):
  random      a uniformly random waiting job, drawn from the run's seeded generator
  first       submission order (FCFS)
  shortest    requested time (the user's estimate, not the actual run time)
  smallest    requested cores
  low_mem     memory per core
  low_mem_bw  memory bandwidth per core
  smallest_area  requested time x requested cores (RLScheduler's SAF; not in the original's
              action set)

Core keys (re-evaluated before each core of a job, among free cores whose node still has the
job's memory; ties go to the lowest core id):
  random       a uniformly random candidate core
  high_gflops  fastest processor type first
  high_cores   the processor with the most free cores
  high_mem     the node with the most free memory
  high_mem_bw  the processor with the most memory bandwidth left
  low_power    lowest watts per core first
  first_fit    lowest core ids (not in the original's action set)
  busiest_processor  the processor with the most busy cores (packs jobs together): what the
               original's code ran for high_cores, whose documentation says most free cores;
               HeteroEnv's ``high_cores="most_busy"`` runs it for actions naming high_cores
               (not in the original's action set under this name)

The default action set is the 36 pairs of the six job keys and the first six core keys, in
the order ``index = 6 * job_index + core_index``, followed by the void action.
"""

from __future__ import annotations

import numpy as np

from hdeeprm.inputs.workload.model import WorkloadArrays

# The original's keys (its action set is built from them, in this order), then ours.
JOB_KEYS = ("random", "first", "shortest", "smallest", "low_mem", "low_mem_bw")
EXTRA_JOB_KEYS = ("smallest_area",)
ALL_JOB_KEYS = JOB_KEYS + EXTRA_JOB_KEYS
CORE_KEYS = ("random", "high_gflops", "high_cores", "high_mem", "high_mem_bw", "low_power")
EXTRA_CORE_KEYS = ("first_fit", "busiest_processor")
ALL_CORE_KEYS = CORE_KEYS + EXTRA_CORE_KEYS

#: What the core key ``high_cores`` runs (EnvConfig.high_cores): ``most_free``, the processor
#: with the most free cores, as the original's documentation says; ``most_busy``, the one with
#: the most busy cores, as the original's code did (``busiest_processor``).
HIGH_CORES_MEANINGS = {"most_free": "high_cores", "most_busy": "busiest_processor"}


def effective_core_key(core_key: str, high_cores: str = "most_free") -> str:
    """The core key that runs when an action names ``core_key``, under the ``high_cores`` setting."""
    return HIGH_CORES_MEANINGS[high_cores] if core_key == "high_cores" else core_key


#: The original's default action set, without the trailing void action.
DEFAULT_PAIRS: tuple[tuple[str, str], ...] = tuple((j, c) for j in JOB_KEYS for c in CORE_KEYS)


def job_key_values(jobs: WorkloadArrays, key: str) -> np.ndarray | None:
    """Per-job sort values of a job key (None for ``random``; job index for ``first``)."""
    if key == "random":
        return None
    if key == "first":
        return np.arange(len(jobs), dtype=np.float64)
    if key == "shortest":
        # A job without any requested time sorts after every job that has one.
        return np.where(np.isfinite(jobs.req_time), jobs.req_time, np.inf)
    if key == "smallest":
        return jobs.res.astype(np.float64)
    if key == "low_mem":
        return jobs.mem_mb.astype(np.float64)
    if key == "low_mem_bw":
        return jobs.mem_bw_gbs.astype(np.float64)
    if key == "smallest_area":
        return np.where(np.isfinite(jobs.req_time), jobs.req_time * jobs.res, np.inf)
    raise KeyError(key)


def ordered(queue: np.ndarray, values: np.ndarray) -> np.ndarray:
    """``queue`` (job indices) sorted by ``values`` ascending, ties by job index."""
    return queue[np.lexsort((queue, values[queue]))]
