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

Memory is counted in integer kB and bandwidth in integer kB/s so that taking and giving back
the same amounts always restores the exact state (floats would drift over a long trace and
could refuse a job that fits to the byte).

A platform without a hierarchy (a flat SimGrid XML) is treated as one node and one processor
per machine, with unlimited memory and bandwidth and no p-state rules, so that every core key
works on it too (``high_gflops`` then means the fastest machine at its declared p-state).

Over-utilisation episodes are recorded as in the original (see ``Overutilization``).
"""

from __future__ import annotations

from collections import namedtuple
from dataclasses import dataclass, field

import numba
import numpy as np

from hdeeprm.inputs.platform.model import P_BUSY, P_IDLE_PROCESSOR, P_IDLE_SIBLING, P_THROTTLED
from hdeeprm.simulation.engine import Engine
from hdeeprm.simulation.keys import ALL_CORE_KEYS

FITS = 0
CORE_SHORTAGE = 1  # fewer free cores than requested
MEMORY_SHORTAGE = 2  # enough free cores, but not on nodes with the job's memory free

UNLIMITED = 1 << 60  # memory (kB) or bandwidth (kB/s) of a flat platform
#: ``core_job`` of a core taken out of service (a machine asleep or switching, see ``hold``).
HELD = np.iinfo(np.int64).max

# Codes of the core keys inside the kernels.
_KEY_CODE = {name: i for i, name in enumerate(ALL_CORE_KEYS)}
_RANDOM = _KEY_CODE["random"]
_HIGH_CORES = _KEY_CODE["high_cores"]
_HIGH_MEM = _KEY_CODE["high_mem"]
_HIGH_MEM_BW = _KEY_CODE["high_mem_bw"]
_FIRST_FIT = _KEY_CODE["first_fit"]
_BUSIEST_PROCESSOR = _KEY_CODE["busiest_processor"]


def to_kb(megabytes) -> np.ndarray:
    return np.rint(np.asarray(megabytes, dtype=np.float64) * 1000.0).astype(np.int64)


def to_kbs(gigabytes_per_second) -> np.ndarray:
    return np.rint(np.asarray(gigabytes_per_second, dtype=np.float64) * 1e6).astype(np.int64)


#: The books of the cores: which job each core runs, what each processor and node has left,
#: and which processors changed since the engine last looked. take_core and give_back_core
#: read them by attribute, so that both paths share the one booking rule: the reference
#: passes a Books of its arrays, the compiled path its state (same field names). Numba
#: compiles them for each, inlined, and a field is read only where the rule uses it.
Books = namedtuple("Books", "core_job proc_ptr proc_cores proc_node proc_free proc_first_free node_free_kb "
                            "node_free_cores proc_bw_left dirty dirty_list dirty_count")


@numba.njit(cache=True, nogil=True, inline="always")
def take_core(books, c, p, job, mem_kb, bw_kbs):
    # Booking one core for a job: cores, node memory, processor bandwidth, first-free bound.
    books.core_job[c] = job
    node = books.proc_node[p]
    books.proc_free[p] -= 1
    books.node_free_kb[node] -= mem_kb
    books.node_free_cores[node] -= 1
    books.proc_bw_left[p] -= bw_kbs
    if books.proc_first_free[p] == c:
        nxt = books.core_job.shape[0]
        for i in range(books.proc_ptr[p], books.proc_ptr[p + 1]):
            if books.core_job[books.proc_cores[i]] < 0:
                nxt = books.proc_cores[i]
                break
        books.proc_first_free[p] = nxt
    _mark_dirty(books, p)


@numba.njit(cache=True, nogil=True, inline="always")
def give_back_core(books, c, p, mem_kb, bw_kbs):
    # The reverse of take_core.
    books.core_job[c] = -1
    node = books.proc_node[p]
    books.proc_free[p] += 1
    books.node_free_kb[node] += mem_kb
    books.node_free_cores[node] += 1
    books.proc_bw_left[p] += bw_kbs
    if c < books.proc_first_free[p]:
        books.proc_first_free[p] = c
    _mark_dirty(books, p)


@numba.njit(cache=True, nogil=True, inline="always")
def key_value(books, key, p, static):
    # The sort value core key ``key`` gives processor p (ascending is better; ties go to the
    # lowest core id): the one rule of both paths, read from the books or the compiled state.
    # ``static``: the key's fixed value of p (high_gflops, low_power).
    if key == _HIGH_CORES:  # most free cores
        return -float(books.proc_free[p])
    if key == _BUSIEST_PROCESSOR:  # most busy cores: the original's code for high_cores
        return -float(books.proc_ptr[p + 1] - books.proc_ptr[p] - books.proc_free[p])
    if key == _HIGH_MEM:
        return -float(books.node_free_kb[books.proc_node[p]])
    if key == _HIGH_MEM_BW:
        return -float(books.proc_bw_left[p])
    return static


@numba.njit(cache=True, nogil=True, inline="always")
def _mark_dirty(books, p):
    if not books.dirty[p]:
        books.dirty[p] = True
        books.dirty_list[books.dirty_count[0]] = p
        books.dirty_count[0] += 1


@numba.njit(cache=True, nogil=True)
def allocate_cores(key, count, mem_kb, bw_kbs, job, uniforms, static_key, nb_free,
                   core_job, core_processor, proc_ptr, proc_cores, proc_node, proc_free,
                   proc_first_free, node_free_kb, node_free_cores, proc_bw_left,
                   dirty, dirty_list, dirty_count):
    """Choose ``count`` cores for ``job`` with core key ``key``, one at a time, taking its
    memory and bandwidth as it goes. Returns (status, cores); on failure nothing changes
    (status CORE_SHORTAGE or MEMORY_SHORTAGE, cores empty).

    Every key but ``first_fit`` and ``random`` is a property of a core's processor or node,
    so a pick compares processors, each represented by its lowest free core: the best key
    wins and ties go to the lowest core id, as a stable sort of all candidate cores would."""
    out = np.empty(count, np.int64)
    if nb_free < count:
        return CORE_SHORTAGE, out[:0]
    books = Books(core_job, proc_ptr, proc_cores, proc_node, proc_free, proc_first_free, node_free_kb,
                  node_free_cores, proc_bw_left, dirty, dirty_list, dirty_count)
    nb_proc = proc_free.shape[0]
    found = 0
    if key == _FIRST_FIT:  # one sweep over the cores
        for c in range(core_job.shape[0]):
            if core_job[c] < 0:
                p = core_processor[c]
                if node_free_kb[proc_node[p]] >= mem_kb:
                    take_core(books, c, p, job, mem_kb, bw_kbs)
                    out[found] = c
                    found += 1
                    if found == count:
                        return FITS, out
    else:
        while found < count:
            best_p = -1
            best_key = 0.0
            best_core = 0
            if key == _RANDOM:  # the r-th candidate core, processors in id order
                total = 0
                for p in range(nb_proc):
                    if proc_free[p] > 0 and node_free_kb[proc_node[p]] >= mem_kb:
                        total += proc_free[p]
                if total > 0:
                    r = min(int(uniforms[found] * total), total - 1)
                    for p in range(nb_proc):
                        if proc_free[p] > 0 and node_free_kb[proc_node[p]] >= mem_kb:
                            if r < proc_free[p]:
                                for i in range(proc_ptr[p], proc_ptr[p + 1]):
                                    c = proc_cores[i]
                                    if core_job[c] < 0:
                                        if r == 0:
                                            best_p = p
                                            best_core = c
                                            break
                                        r -= 1
                                break
                            r -= proc_free[p]
            else:
                for p in range(nb_proc):
                    if proc_free[p] == 0 or node_free_kb[proc_node[p]] < mem_kb:
                        continue
                    k = key_value(books, key, p, static_key[p])
                    c = proc_first_free[p]
                    if best_p < 0 or k < best_key or (k == best_key and c < best_core):
                        best_p, best_key, best_core = p, k, c
            if best_p < 0:
                break
            take_core(books, best_core, best_p, job, mem_kb, bw_kbs)
            out[found] = best_core
            found += 1
        if found == count:
            return FITS, out
    for i in range(found - 1, -1, -1):  # roll back the partial allocation
        c = out[i]
        give_back_core(books, c, core_processor[c], mem_kb, bw_kbs)
    return MEMORY_SHORTAGE, out[:0]


@numba.njit(cache=True, nogil=True)
def release_cores(hosts, mem_kb, bw_kbs, core_job, core_processor, proc_node, proc_free,
                  proc_first_free, node_free_kb, node_free_cores, proc_bw_left, dirty,
                  dirty_list, dirty_count):
    books = Books(core_job, core_processor, core_processor, proc_node, proc_free, proc_first_free, node_free_kb,
                  node_free_cores, proc_bw_left, dirty, dirty_list, dirty_count)  # proc_ptr, proc_cores unused
    for i in range(hosts.shape[0]):
        c = hosts[i]
        give_back_core(books, c, core_processor[c], mem_kb, bw_kbs)


@numba.njit(cache=True, nogil=True)
def memory_capacity(node_free_cores, node_free_kb, mem_kb) -> int:
    """How many cores a job with ``mem_kb`` per core could get now. Any core key reaches
    this number: each pick lowers exactly one node's capacity by one."""
    total = 0
    for n in range(node_free_cores.shape[0]):
        fit = node_free_kb[n] // mem_kb
        total += min(node_free_cores[n], fit)
    return total


@numba.njit(cache=True, nogil=True)
def pstate_targets(dirty, dirty_list, dirty_count, proc_ptr, proc_cores, core_job, proc_free,
                   proc_bw_left, throttled, sent_pstate, out_cores, out_states, flipped):
    """P-state each core of the touched processors should be in; returns the cores whose
    target differs from what the simulator was last told (with their targets) and the
    processors whose over-subscription started or ended. Clears the touched set."""
    changed = 0
    nb_flipped = 0
    for i in range(dirty_count[0]):
        p = dirty_list[i]
        dirty[p] = False
        over = proc_bw_left[p] < 0
        if over != throttled[p]:
            throttled[p] = over
            flipped[nb_flipped] = p
            nb_flipped += 1
        all_idle = proc_free[p] == proc_ptr[p + 1] - proc_ptr[p]
        for j in range(proc_ptr[p], proc_ptr[p + 1]):
            c = proc_cores[j]
            if all_idle:
                target = 3
            elif core_job[c] < 0:
                target = 2
            elif over:
                target = 1
            else:
                target = 0
            if target != sent_pstate[c]:
                out_cores[changed] = c
                out_states[changed] = target
                changed += 1
    dirty_count[0] = 0
    return changed, nb_flipped


@dataclass
class Overutilization:
    """Over-utilisation episodes of one run, written as ``overutilization.json``.

    ``core_shortages``: times (s) at which a scheduling pass stopped because its next job
    asked for more cores than were free. ``memory_shortages``: times at which enough cores
    were free but too few of them on nodes with the job's memory per core free. Per
    processor, ``bandwidth_spans``: [start, end] intervals (s) during which its busy cores
    asked for more memory bandwidth than it has (and ran in P1); ``end`` is null for a span
    still open when the run stopped.
    """

    nb_processors: int
    core_shortages: list[float] = field(default_factory=list)
    memory_shortages: list[float] = field(default_factory=list)
    bandwidth_spans: dict[int, list[list[float | None]]] = field(default_factory=dict)

    def as_json(self) -> dict:
        spans = {str(p): v for p, v in sorted(self.bandwidth_spans.items())}
        over = sum(e - s for v in self.bandwidth_spans.values() for s, e in v if e is not None)
        return {
            "format": "hdeeprm-overutilization/1",
            "nb_processors": self.nb_processors,
            "summary": {
                "core_shortages": len(self.core_shortages),
                "memory_shortages": len(self.memory_shortages),
                "oversubscribed_processors": len(spans),
                "oversubscribed_processor_seconds": over,
            },
            "core_shortages": self.core_shortages,
            "memory_shortages": self.memory_shortages,
            "bandwidth_spans": spans,
        }


class ResourceModel:
    """Cores, memory, bandwidth and p-state bookkeeping of one run (mutable episode state).

    ``core_job[c]`` is the job core c serves in the scheduler's view (-1 when free); it
    includes the picks of a scheduling pass before the engine starts them.
    """

    def __init__(self, engine: Engine):
        platform = engine.platform
        hierarchy = platform.hierarchy
        n = platform.nb_machines
        self.engine = engine
        self.pstate_rules = hierarchy is not None
        if hierarchy is not None:
            core_processor = hierarchy.core_processor
            proc_node = hierarchy.processor_node
            node_memory_kb = to_kb(hierarchy.node_memory_mb)
            proc_bw_kbs = to_kbs(hierarchy.processor_mem_bw_gbs)
            gflops = hierarchy.processor_gflops_per_core
            watts = hierarchy.processor_watts_per_core
        else:
            core_processor = proc_node = np.arange(n, dtype=np.int64)
            node_memory_kb = np.full(n, UNLIMITED, np.int64)
            proc_bw_kbs = np.full(n, UNLIMITED, np.int64)
            declared = (np.arange(n), platform.initial_pstate)
            gflops = platform.speeds[declared] / 1e9
            watts = platform.watts_full[declared]
        nb_proc = len(proc_node)
        self.nb_processors = nb_proc
        self.core_processor = np.ascontiguousarray(core_processor, dtype=np.int64)
        self.proc_node = np.ascontiguousarray(proc_node, dtype=np.int64)
        self.core_node = self.proc_node[self.core_processor]
        order = np.argsort(self.core_processor, kind="stable")
        self.proc_cores = order.astype(np.int64)
        self.proc_ptr = np.searchsorted(self.core_processor[order], np.arange(nb_proc + 1)).astype(np.int64)
        self.proc_size = np.diff(self.proc_ptr)
        # Keys that are fixed per processor, as sort values (ascending is better).
        static_keys = {
            "high_gflops": -np.asarray(gflops, dtype=np.float64),
            "low_power": np.asarray(watts, dtype=np.float64).copy(),
        }
        self.node_memory_kb = node_memory_kb
        self.proc_bw_kbs = proc_bw_kbs

        # Mutable state.
        self.core_job = np.full(n, -1, np.int64)
        self.nb_free = n
        self.proc_free = self.proc_size.copy()
        self.proc_first_free = np.where(self.proc_size > 0, self.proc_cores[self.proc_ptr[:-1].clip(max=n - 1)], n)
        self.node_free_kb = node_memory_kb.copy()
        self.node_free_cores = np.bincount(self.core_node, minlength=len(node_memory_kb)).astype(np.int64)
        self.proc_bw_left = proc_bw_kbs.copy()
        self.throttled = np.zeros(nb_proc, np.bool_)
        self._dirty = np.zeros(nb_proc, np.bool_)
        self._dirty_list = np.zeros(nb_proc, np.int64)
        self._dirty_count = np.zeros(1, np.int64)
        self.sent_pstate = engine.pstate.copy()  # what the simulator was last told
        self._out_cores = np.empty(n, np.int64)
        self._out_states = np.empty(n, np.int64)
        self._flipped = np.empty(nb_proc, np.int64)
        self.records = Overutilization(nb_proc)

        jobs = engine.jobs
        self.job_mem_kb = to_kb(jobs.mem_mb) if hierarchy is not None else np.zeros(len(jobs), np.int64)
        self.job_bw_kbs = to_kbs(jobs.mem_bw_gbs) if hierarchy is not None else np.zeros(len(jobs), np.int64)
        # Python ints for the per-call arguments (indexing numpy arrays costs more).
        self._job_res = jobs.res.tolist()
        self._job_mem_kb = self.job_mem_kb.tolist()
        self._job_bw_kbs = self.job_bw_kbs.tolist()
        no_static = np.zeros(nb_proc)
        self._key_args = {name: (code, static_keys.get(name, no_static))
                          for name, code in _KEY_CODE.items()}
        self._no_uniforms = np.zeros(0)
        self._none = np.zeros(0, np.int64)

    def initial_pstates(self) -> None:
        """Put every core in P3 at the start unless the platform already declares it."""
        if not self.pstate_rules:
            return
        cores = np.flatnonzero(self.sent_pstate != P_IDLE_PROCESSOR)
        if cores.size:
            self.engine.set_pstate(cores, P_IDLE_PROCESSOR)
            self.sent_pstate[cores] = P_IDLE_PROCESSOR

    def can_ever_fit(self, job: int) -> bool:
        """Whether the empty platform could hold the job's cores and per-core memory."""
        res, mem = int(self.engine.jobs.res[job]), int(self.job_mem_kb[job])
        if res > len(self.core_job):
            return False
        if mem <= 0:
            return True
        per_node = np.minimum(np.bincount(self.core_node, minlength=len(self.node_memory_kb)),
                              self.node_memory_kb // mem)
        return int(per_node.sum()) >= res

    def runnable_jobs(self) -> np.ndarray:
        """``can_ever_fit`` of every job at once (bool per job), by distinct memory size."""
        res, mem = self.engine.jobs.res, self.job_mem_kb
        runnable = res <= len(self.core_job)
        cores_per_node = np.bincount(self.core_node, minlength=len(self.node_memory_kb))
        for size in np.unique(mem[mem > 0]):
            capacity = int(np.minimum(cores_per_node, self.node_memory_kb // size).sum())
            of_size = mem == size
            runnable[of_size] &= res[of_size] <= capacity
        return runnable

    def fit_status(self, job: int) -> int:
        """FITS, CORE_SHORTAGE or MEMORY_SHORTAGE for starting ``job`` now (whatever the core
        key: they all succeed or fail together)."""
        res = int(self.engine.jobs.res[job])
        if res > self.nb_free:
            return CORE_SHORTAGE
        mem = int(self.job_mem_kb[job])
        if mem > 0 and memory_capacity(self.node_free_cores, self.node_free_kb, mem) < res:
            return MEMORY_SHORTAGE
        return FITS

    def allocate(self, job: int, core_key: str = "first_fit",
                 rng: np.random.Generator | None = None) -> tuple[int, np.ndarray]:
        """Pick cores for ``job`` with ``core_key`` and hold its memory and bandwidth.
        Returns (FITS, cores) or (CORE_SHORTAGE | MEMORY_SHORTAGE, empty)."""
        count = self._job_res[job]
        if count > self.nb_free:  # the common failure, decided without entering the kernel
            return CORE_SHORTAGE, self._none
        key, static = self._key_args[core_key]
        if key == _RANDOM:
            if rng is None:
                raise ValueError("the random core key needs a numpy Generator")
            uniforms = rng.random(count)
        else:
            uniforms = self._no_uniforms
        status, hosts = allocate_cores(
            key, count, self._job_mem_kb[job], self._job_bw_kbs[job], job, uniforms, static,
            self.nb_free, self.core_job, self.core_processor, self.proc_ptr, self.proc_cores,
            self.proc_node, self.proc_free, self.proc_first_free, self.node_free_kb,
            self.node_free_cores, self.proc_bw_left, self._dirty, self._dirty_list,
            self._dirty_count)
        if status == FITS:
            self.nb_free -= count
        return status, hosts

    def record_shortage(self, status: int) -> None:
        now = self.engine.now
        if status == CORE_SHORTAGE:
            self.records.core_shortages.append(now)
        elif status == MEMORY_SHORTAGE:
            self.records.memory_shortages.append(now)

    def release(self, job: int, hosts: np.ndarray) -> None:
        release_cores(hosts, self._job_mem_kb[job], self._job_bw_kbs[job], self.core_job,
                      self.core_processor, self.proc_node, self.proc_free, self.proc_first_free,
                      self.node_free_kb, self.node_free_cores, self.proc_bw_left, self._dirty,
                      self._dirty_list, self._dirty_count)
        self.nb_free += hosts.size

    def hold(self, hosts: np.ndarray) -> None:
        """Take free cores out of service (machines put to sleep): no core key picks them
        until ``unhold``. They hold no memory or bandwidth; their ``core_job`` is HELD."""
        core_job = self.core_job
        for c in np.asarray(hosts, dtype=np.int64).tolist():
            if core_job[c] >= 0:
                raise ValueError(f"core {c} is not free: it cannot be held")
            core_job[c] = HELD  # take_core's bookkeeping, without memory or bandwidth
            p = int(self.core_processor[c])
            self.proc_free[p] -= 1
            self.node_free_cores[self.proc_node[p]] -= 1
            if self.proc_first_free[p] == c:
                cores = self.proc_cores[self.proc_ptr[p]:self.proc_ptr[p + 1]]
                free = cores[core_job[cores] < 0]
                self.proc_first_free[p] = free[0] if free.size else len(core_job)
            if not self._dirty[p]:
                self._dirty[p] = True
                self._dirty_list[self._dirty_count[0]] = p
                self._dirty_count[0] += 1
            self.nb_free -= 1

    def unhold(self, hosts: np.ndarray) -> None:
        """Put held cores back in service (machines awake again)."""
        hosts = np.asarray(hosts, dtype=np.int64)
        if (self.core_job[hosts] != HELD).any():
            raise ValueError("unhold: some cores are not held")
        release_cores(hosts, 0, 0, self.core_job, self.core_processor, self.proc_node, self.proc_free,
                      self.proc_first_free, self.node_free_kb, self.node_free_cores, self.proc_bw_left,
                      self._dirty, self._dirty_list, self._dirty_count)
        self.nb_free += hosts.size

    def commit_pstates(self) -> None:
        """Send the p-state changes of the processors touched since the last commit, grouped
        by target p-state in increasing order (P0, P1, P2, P3), and note where memory
        bandwidth over-subscription starts and ends."""
        # A flat platform has neither p-state rules nor bandwidth limits: nothing to send or
        # record (its touched set fills up once and then stays as it is).
        if not self.pstate_rules or self._dirty_count[0] == 0:
            return
        changed, nb_flipped = pstate_targets(
            self._dirty, self._dirty_list, self._dirty_count, self.proc_ptr, self.proc_cores,
            self.core_job, self.proc_free, self.proc_bw_left, self.throttled, self.sent_pstate,
            self._out_cores, self._out_states, self._flipped)
        if nb_flipped:
            self._note_bandwidth_flips(self._flipped[:nb_flipped])
        if changed == 0:
            return
        cores, targets = self._out_cores[:changed], self._out_states[:changed]
        for state in (P_BUSY, P_THROTTLED, P_IDLE_SIBLING, P_IDLE_PROCESSOR):
            chosen = cores[targets == state]
            if chosen.size:
                chosen = np.sort(chosen)
                self.engine.set_pstate(chosen, state)
                self.sent_pstate[chosen] = state

    def _note_bandwidth_flips(self, processors: np.ndarray) -> None:
        now = self.engine.now
        spans = self.records.bandwidth_spans
        for p in processors.tolist():
            if self.throttled[p]:
                spans.setdefault(p, []).append([now, None])
            else:
                spans[p][-1][1] = now

    def check_invariants(self) -> None:
        """Recompute every derived count from ``core_job`` and compare (for tests; O(cores))."""
        busy = self.core_job >= 0
        jobs = self.core_job[busy]
        jobs = np.where(jobs == HELD, len(self.job_mem_kb), jobs)  # held cores: no memory
        nb_nodes = len(self.node_memory_kb)
        assert self.nb_free == int((~busy).sum()), "free core count"
        assert (self.proc_free == self.proc_size - np.bincount(self.core_processor[busy], minlength=self.nb_processors)).all()
        assert (self.node_free_cores == np.bincount(self.core_node[~busy], minlength=nb_nodes)).all()
        mem_kb, bw_kbs = np.append(self.job_mem_kb, 0), np.append(self.job_bw_kbs, 0)
        used_kb = np.bincount(self.core_node[busy], weights=mem_kb[jobs], minlength=nb_nodes)
        assert (self.node_free_kb == self.node_memory_kb - used_kb.astype(np.int64)).all(), "node memory"
        assert (self.node_free_kb >= 0).all(), "a node gives more memory than it has"
        used_bw = np.bincount(self.core_processor[busy], weights=bw_kbs[jobs], minlength=self.nb_processors)
        assert (self.proc_bw_left == self.proc_bw_kbs - used_bw.astype(np.int64)).all(), "bandwidth"
        for p in range(self.nb_processors):
            cores = self.proc_cores[self.proc_ptr[p]:self.proc_ptr[p + 1]]
            free = cores[self.core_job[cores] < 0]
            assert self.proc_first_free[p] == (free[0] if free.size else len(self.core_job)), p
