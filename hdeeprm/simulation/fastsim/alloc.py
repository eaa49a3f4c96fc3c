"""Core selection for the fast path: ResourceModel.allocate / release with search trees.

The reference (``hdeeprm.simulation.resources.allocate_cores``) compares every processor before each
core it picks, which costs O(processors) per core: fine at a thousand cores, not at a
hundred thousand. Here each core key keeps a tournament tree over the processors whose leaf
is (key value, lowest free core) of a processor with a free core, and whose inner nodes hold
the best leaf below them; a shared tree holds, per subtree, the free cores and the most and
least free memory of their nodes. A pick is then a walk down from the root: O(log
processors) when node memory does not bind, and a pruned search when it does (subtrees
whose nodes all lack the job's memory are skipped). The answers are the reference's: the
best key, ties to the lowest core id, among processors with a free core on a node with the
job's memory free; ``random`` takes the r-th such core, processors in id order.

Trees are brought up to date lazily: a change marks the processor in every tree in use,
and a tree replays its marks when it is next searched, so keys that are not used by the
current decision cost nothing but the mark. ``first_fit`` needs no tree: a sweep over the
cores from the lowest free one (whose id is kept as a lower bound).
"""

from __future__ import annotations

import numba
import numpy as np

from hdeeprm.simulation.resources import (
    _KEY_CODE,
    CORE_SHORTAGE,
    FITS,
    MEMORY_SHORTAGE,
    give_back_core,
    key_value,
    take_core,
)

# Core keys: their code in hdeeprm.simulation.resources._KEY_CODE (one list, read here).
CK_RANDOM, CK_FIRST_FIT = (_KEY_CODE[name] for name in ("random", "first_fit"))
NB_CORE_KEYS = len(_KEY_CODE)  # rows of s.static_key and the per-key trees (s.tr_key, ...)
SHARED = NB_CORE_KEYS  # the tree of free cores and node memory
NB_TREES = SHARED + 1  # rows of s.tr_used, s.tr_dirty, s.tr_dlist, s.tr_dcount
BIG = np.int64(1) << 62
INF = np.inf


# ---------------------------------------------------------------------------- marks


@numba.njit(cache=True, nogil=True)
def mark_proc(s, p):
    """Processor ``p`` changed: every tree in use replays it at its next search."""
    used, dirty, dlist, dcount = s.tr_used, s.tr_dirty, s.tr_dlist, s.tr_dcount
    for t in range(NB_TREES):
        if used[t] and not dirty[t, p]:
            dirty[t, p] = True
            dlist[t, dcount[t]] = p
            dcount[t] += 1


@numba.njit(cache=True, nogil=True)
def mark_node(s, node):
    """A node's free memory changed: all its processors."""
    for i in range(s.node_proc_ptr[node], s.node_proc_ptr[node + 1]):
        mark_proc(s, s.node_procs[i])


@numba.njit(cache=True, nogil=True)
def _key_value(s, t, p):
    # The sort value the reference gives processor p under core key t (ascending is better):
    # resources.key_value, the one rule, on the state.
    return key_value(s, t, p, s.static_key[t, p])


@numba.njit(cache=True, nogil=True)
def _refresh(s, t):
    """Replay tree t's marks: recompute their leaves and the inner nodes above them."""
    count = s.tr_dcount[t]
    if count == 0:
        return
    size = s.tr_size
    dlist = s.tr_dlist[t]
    dirty = s.tr_dirty[t]
    if t == SHARED:
        maxkb, minkb, total = s.tr_maxkb, s.tr_minkb, s.tr_sum
        for k in range(count):
            p = dlist[k]
            dirty[p] = False
            i = size + p
            free = s.proc_free[p]
            kb = s.node_free_kb[s.proc_node[p]]
            total[i] = free
            if free > 0:
                maxkb[i] = kb
                minkb[i] = kb
            else:
                maxkb[i] = -1
                minkb[i] = BIG
            i >>= 1
            while i >= 1:
                a, b = 2 * i, 2 * i + 1
                total[i] = total[a] + total[b]
                maxkb[i] = max(maxkb[a], maxkb[b])
                minkb[i] = min(minkb[a], minkb[b])
                i >>= 1
    else:
        key, core, proc = s.tr_key[t], s.tr_core[t], s.tr_proc[t]
        for k in range(count):
            p = dlist[k]
            dirty[p] = False
            i = size + p
            if s.proc_free[p] > 0:
                key[i] = _key_value(s, t, p)
                core[i] = s.proc_first_free[p]
                proc[i] = p
            else:
                key[i] = INF
                core[i] = BIG
                proc[i] = -1
            i >>= 1
            while i >= 1:
                a, b = 2 * i, 2 * i + 1
                if key[b] < key[a] or (key[b] == key[a] and core[b] < core[a]):
                    a = b
                key[i], core[i], proc[i] = key[a], core[a], proc[a]
                i >>= 1
    s.tr_dcount[t] = 0


@numba.njit(cache=True, nogil=True)
def _best(s, t, mem_kb):
    """The processor key t picks for a job needing ``mem_kb`` per core (-1: none)."""
    _refresh(s, t)
    key, core, proc = s.tr_key[t], s.tr_core[t], s.tr_proc[t]
    if mem_kb <= 0:  # every node qualifies
        return proc[1]
    _refresh(s, SHARED)
    maxkb = s.tr_maxkb
    size = s.tr_size
    stack = s.tr_stack
    top = 0
    stack[0] = 1
    top = 1
    best_key, best_core, best_p = INF, BIG, -1
    while top > 0:
        top -= 1
        i = stack[top]
        if maxkb[i] < mem_kb:
            continue
        if not (key[i] < best_key or (key[i] == best_key and core[i] < best_core)):
            continue  # nothing below beats what is found
        if i >= size:
            best_key, best_core, best_p = key[i], core[i], proc[i]
            continue
        a, b = 2 * i, 2 * i + 1
        if key[b] < key[a] or (key[b] == key[a] and core[b] < core[a]):
            a, b = b, a
        stack[top] = b  # the worse child waits
        stack[top + 1] = a  # the better one is searched first
        top += 2
    return best_p


@numba.njit(cache=True, nogil=True)
def _eligible(s, i, mem_kb):
    """Free cores below tree node i on nodes with ``mem_kb`` free (shared tree refreshed)."""
    if mem_kb <= 0:
        return s.tr_sum[i]
    maxkb, minkb, total = s.tr_maxkb, s.tr_minkb, s.tr_sum
    stack = s.tr_stack
    stack[0] = i
    top = 1
    count = 0
    while top > 0:
        top -= 1
        j = stack[top]
        if maxkb[j] < mem_kb:
            continue
        if minkb[j] >= mem_kb:
            count += total[j]
            continue
        stack[top] = 2 * j
        stack[top + 1] = 2 * j + 1
        top += 2
    return count


@numba.njit(cache=True, nogil=True)
def _random_core(s, mem_kb, u):
    """The reference's random pick: the r-th candidate core, processors in id order."""
    _refresh(s, SHARED)
    total = _eligible(s, 1, mem_kb)
    if total == 0:
        return -1, -1
    r = min(int(u * total), total - 1)
    i = 1
    size = s.tr_size
    while i < size:
        left = _eligible(s, 2 * i, mem_kb)
        if r < left:
            i = 2 * i
        else:
            r -= left
            i = 2 * i + 1
    p = i - size
    for k in range(s.proc_ptr[p], s.proc_ptr[p + 1]):
        c = s.proc_cores[k]
        if s.core_job[c] < 0:
            if r == 0:
                return p, c
            r -= 1
    return -1, -1  # unreachable: the tree counted r + 1 free cores here


# ---------------------------------------------------------------------------- take / give back


@numba.njit(cache=True, nogil=True)
def _take(s, c, p, job, mem_kb, bw_kbs):
    """resources.take_core (the one booking rule) on the state, plus the marks of the candidate trees."""
    take_core(s, c, p, job, mem_kb, bw_kbs)
    if s.tr_any:
        if mem_kb != 0:
            mark_node(s, s.proc_node[p])
        else:
            mark_proc(s, p)


@numba.njit(cache=True, nogil=True)
def _give_back(s, c, p, mem_kb, bw_kbs):
    """resources.give_back_core on the state, plus the marks and the first-fit bound."""
    give_back_core(s, c, p, mem_kb, bw_kbs)
    if c < s.ff_hint:
        s.ff_hint = c
    if s.tr_any:
        if mem_kb != 0:
            mark_node(s, s.proc_node[p])
        else:
            mark_proc(s, p)


@numba.njit(cache=True, nogil=True)
def release_hosts(s, hosts, mem_kb, bw_kbs):
    """contention.release_cores (and ResourceModel.release's count)."""
    for i in range(hosts.shape[0]):
        c = hosts[i]
        _give_back(s, c, s.core_processor[c], mem_kb, bw_kbs)
    s.nb_free += hosts.shape[0]


@numba.njit(cache=True, nogil=True)
def allocate(s, key, count, mem_kb, bw_kbs, job, uniforms, out):
    """contention.allocate_cores into ``out`` (``count`` long): FITS, or CORE_SHORTAGE /
    MEMORY_SHORTAGE with nothing changed. Does not update ``s.nb_free``."""
    if s.nb_free < count:
        return CORE_SHORTAGE
    found = 0
    if key == CK_FIRST_FIT:  # one sweep over the cores, from the lowest free one
        core_job, core_processor, proc_node, node_free_kb = s.core_job, s.core_processor, s.proc_node, s.node_free_kb
        m = core_job.shape[0]
        c = s.ff_hint
        while c < m and core_job[c] >= 0:
            c += 1
        s.ff_hint = c
        while c < m:
            if core_job[c] < 0:
                p = core_processor[c]
                if node_free_kb[proc_node[p]] >= mem_kb:
                    _take(s, c, p, job, mem_kb, bw_kbs)
                    out[found] = c
                    found += 1
                    if found == count:
                        return FITS
            c += 1
    else:
        while found < count:
            if key == CK_RANDOM:
                p, c = _random_core(s, mem_kb, uniforms[found])
            else:
                p = _best(s, key, mem_kb)
                c = s.proc_first_free[p] if p >= 0 else -1
            if p < 0:
                break
            _take(s, c, p, job, mem_kb, bw_kbs)
            out[found] = c
            found += 1
        if found == count:
            return FITS
    for i in range(found - 1, -1, -1):  # roll back the partial allocation
        c = out[i]
        _give_back(s, c, s.core_processor[c], mem_kb, bw_kbs)
    return MEMORY_SHORTAGE
