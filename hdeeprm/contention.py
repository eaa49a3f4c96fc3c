"""HDeepRM's heterogeneity layer: node memory, processor memory bandwidth, core p-states.

The simulator itself knows nothing of memory; this layer, on the scheduler's side, keeps
- node memory as a hard limit: a core may serve a job only if its node still has the job's
  per-core memory free; each allocated core holds that memory until the job ends;
- processor memory bandwidth as a soft limit: each busy core uses its job's per-core
  bandwidth; when a processor's busy cores ask for more than it has, they all run in P1
  (0.75 x speed) instead of P0;
- idle cores in P2 when a sibling on their processor is busy, P3 when the whole processor is
  idle (both only change power).
P-states are projected on the engine with ``set_pstate`` once per decision point, for the
processors touched since the previous one, and only for cores whose target changed.
"""

from __future__ import annotations

import numba
import numpy as np

from .core.engine import Engine
from .platform.model import P_BUSY, P_IDLE_PROCESSOR, P_IDLE_SIBLING, P_THROTTLED


@numba.njit(cache=True, nogil=True)
def first_fit_with_memory(core_job, core_node, node_free_mb, mem_mb, count):
    """The ``count`` lowest free cores whose node can hold ``mem_mb`` more per core, taking
    the memory as it goes (a node gives several cores to one job only if it can hold them
    all). Returns an empty array, memory untouched, when the job does not fit."""
    out = np.empty(count, np.int64)
    previous = np.empty(count, np.float64)
    found = 0
    for c in range(core_job.shape[0]):
        if core_job[c] < 0:
            node = core_node[c]
            if node_free_mb[node] >= mem_mb:
                previous[found] = node_free_mb[node]
                node_free_mb[node] -= mem_mb
                out[found] = c
                found += 1
                if found == count:
                    return out
    for i in range(found - 1, -1, -1):  # restore exactly, in reverse order
        node_free_mb[core_node[out[i]]] = previous[i]
    return out[:0]


class ResourceModel:
    """Memory, bandwidth and p-state bookkeeping of one run (mutable episode state)."""

    def __init__(self, engine: Engine):
        hierarchy = engine.platform.hierarchy
        if hierarchy is None:
            raise ValueError("the HDeepRM resource model needs a platform with a hierarchy")
        self.engine = engine
        self.hierarchy = hierarchy
        self.core_node = hierarchy.core_node
        self.core_processor = hierarchy.core_processor
        self.node_free_mb = hierarchy.node_memory_mb.copy()
        self.processor_busy = np.zeros(hierarchy.nb_processors, np.int64)
        self.processor_bw_used = np.zeros(hierarchy.nb_processors)
        self.sent_pstate = engine.pstate.copy()  # what the simulator was last told
        self._touched: set[int] = set()
        order = np.argsort(self.core_processor, kind="stable")
        bounds = np.searchsorted(self.core_processor[order], np.arange(hierarchy.nb_processors + 1))
        self._processor_cores = [order[bounds[p]:bounds[p + 1]] for p in range(hierarchy.nb_processors)]
        self._node_cores = np.bincount(self.core_node, minlength=hierarchy.nb_nodes)

    def initial_pstates(self) -> None:
        """Put every core in P3 at the start unless the platform already declares it."""
        cores = np.flatnonzero(self.sent_pstate != P_IDLE_PROCESSOR)
        if cores.size:
            self.engine.set_pstate(cores, P_IDLE_PROCESSOR)
            self.sent_pstate[cores] = P_IDLE_PROCESSOR

    def can_ever_fit(self, job: int) -> bool:
        """Whether the empty platform could hold the job's cores and per-core memory."""
        jobs = self.engine.jobs
        res, mem = int(jobs.res[job]), float(jobs.mem_mb[job])
        if res > self.hierarchy.nb_cores:
            return False
        if mem <= 0:
            return True
        per_node = np.minimum(self._node_cores, np.floor(self.hierarchy.node_memory_mb / mem))
        return per_node.sum() >= res

    def allocate(self, job: int, core_job: np.ndarray) -> np.ndarray:
        """Pick cores for ``job`` with first fit under the memory limit and hold its memory
        and bandwidth; empty when it does not fit."""
        jobs = self.engine.jobs
        hosts = first_fit_with_memory(core_job, self.core_node, self.node_free_mb,
                                      float(jobs.mem_mb[job]), int(jobs.res[job]))
        if hosts.size:
            procs = self.core_processor[hosts]
            np.add.at(self.processor_busy, procs, 1)
            np.add.at(self.processor_bw_used, procs, float(jobs.mem_bw_gbs[job]))
            self._touched.update(procs.tolist())
        return hosts

    def release(self, job: int, hosts: np.ndarray) -> None:
        jobs = self.engine.jobs
        np.add.at(self.node_free_mb, self.core_node[hosts], float(jobs.mem_mb[job]))
        procs = self.core_processor[hosts]
        np.add.at(self.processor_busy, procs, -1)
        np.add.at(self.processor_bw_used, procs, -float(jobs.mem_bw_gbs[job]))
        self._touched.update(procs.tolist())

    def commit_pstates(self, core_job: np.ndarray) -> None:
        """Send the p-state changes of the processors touched since the last commit, grouped
        by target p-state in increasing order (P0, P1, P2, P3)."""
        if not self._touched:
            return
        procs = np.fromiter(self._touched, np.int64, len(self._touched))
        procs.sort()
        self._touched.clear()
        cores = np.concatenate([self._processor_cores[p] for p in procs.tolist()])
        owner = self.core_processor[cores]
        throttled = self.processor_bw_used > self.hierarchy.processor_mem_bw_gbs
        busy_state = np.where(throttled[owner], P_THROTTLED, P_BUSY)
        target = np.where(core_job[cores] >= 0, busy_state, P_IDLE_SIBLING)
        target[self.processor_busy[owner] == 0] = P_IDLE_PROCESSOR
        differs = target != self.sent_pstate[cores]
        if not differs.any():
            return
        cores, target = cores[differs], target[differs]
        for state in (P_BUSY, P_THROTTLED, P_IDLE_SIBLING, P_IDLE_PROCESSOR):
            chosen = cores[target == state]
            if chosen.size:
                chosen.sort()
                self.engine.set_pstate(chosen, state)
                self.sent_pstate[chosen] = state
