"""Conservative backfilling's availability profile on the fast path.

These kernels mirror ``QueueScheduler._profile`` and ``_book_start`` and the module functions
``_earliest``, ``_split`` and ``_book`` of ``hdeeprm.simulation.policies``, with the same
answers (the profile holds integers and the times the reference computes, with the same
additions). The scheduling pass that uses them (``QueueScheduler._backfill_conservative``
and ``_replan``) is ``sim._backfill_conservative``.

A profile is the reference's three arrays: ``times`` (sorted, ties possible: expected ends
already past are moved to now), and per node the free ``cores`` and free memory ``kb`` from
each row's time to the next row's (the last row for ever). Row 0 is now. The reference copies
its profile at every booking; here a profile lives in the state's rows (``s.cb_t[p]``,
``s.cb_cores[p]``, ``s.cb_kb[p]``, ``s.cb_rows[p]``) and is changed in place. There are two,
``p`` = 0 or 1: the pass's current profile, and the one a re-plan builds beside it (kept
only if the re-plan succeeds, as the reference keeps its old profile when ``_replan`` fails).

Every kernel that may add a row calls ``room`` first, which can replace the arrays: read
``s.cb_*`` again after calling one.
"""

from __future__ import annotations

import numba
import numpy as np

from hdeeprm.simulation.kernels import lower_bound

INF = np.inf


@numba.njit(cache=True, nogil=True)
def room(s, rows):
    """Make both profiles (and the scratch rows) hold at least ``rows`` rows, keeping what
    they hold. The buffers stay in the state from pass to pass: a pass allocates nothing once
    they are large enough."""
    cap = s.cb_t.shape[1]
    if rows <= cap:
        return
    cap = max(rows, 2 * cap, 16)
    nodes = s.cb_cores.shape[2]
    times = np.empty((2, cap))
    cores = np.empty((2, cap, nodes), np.int64)
    kb = np.empty((2, cap, nodes), np.int64)
    for p in range(2):
        used = s.cb_rows[p]
        times[p, :used] = s.cb_t[p, :used]
        cores[p, :used] = s.cb_cores[p, :used]
        kb[p, :used] = s.cb_kb[p, :used]
    s.cb_t, s.cb_cores, s.cb_kb = times, cores, kb
    s.cb_cap = np.empty((cap, nodes), np.int64)
    s.cb_total = np.empty(cap, np.int64)


@numba.njit(cache=True, nogil=True)
def build(s, p, now):
    """QueueScheduler._profile into profile ``p``: what the nodes hold now (this pass's starts
    included), then one row per distinct expected end of the running jobs, which gives their
    cores and memory back. A job without walltime (expected end inf) never does: the ends are
    sorted, so the loop stops at the first infinite one."""
    room(s, 1 + s.nb_exp)
    times, cores, kb = s.cb_t[p], s.cb_cores[p], s.cb_kb[p]
    times[0] = now
    cores[0] = s.node_free_cores
    kb[0] = s.node_free_kb
    rows = 1
    et, ej = s.exp_t, s.exp_j
    for i in range(s.nb_exp):
        end = et[i]
        if end == INF:
            break
        if i == 0 or end != et[i - 1]:
            # An expected end already past (the job still runs) frees its cores at the next
            # event, not now: its row comes after row 0 even though its time is now.
            times[rows] = max(end, now)
            cores[rows] = cores[rows - 1]
            kb[rows] = kb[rows - 1]
            rows += 1
        job = ej[i]
        mem = s.mem_kb[job]
        off = s.alloc_off[job]
        for h in s.alloc_buf[off:off + s.res[job]]:
            node = s.core_node[h]
            cores[rows - 1, node] += 1
            kb[rows - 1, node] += mem
    s.cb_rows[p] = rows


@numba.njit(cache=True, nogil=True)
def earliest(s, p, size, mem, duration, first_row):
    """policies._earliest on profile ``p``: the earliest row k >= ``first_row`` from which a
    job of ``size`` cores with ``mem`` kB per core fits for ``duration`` s, as (k, e) with e
    the first row after its expected end; (-1, -1) if it never does. The cores each node can
    give it over rows k..e-1 are left in ``s.cb_window`` (for ``book``). A node can give, in
    a row, the least of its free cores and its free memory over ``mem``."""
    rows = s.cb_rows[p]
    if first_row >= rows:
        return -1, -1
    times, cores, kb = s.cb_t[p], s.cb_cores[p], s.cb_kb[p]
    nodes = cores.shape[1]
    cap = cores
    if mem > 0:  # memory may bind: what each node can give, once per row, not per candidate k
        cap = s.cb_cap
        for r in range(first_row, rows):
            for n in range(nodes):
                cap[r, n] = min(cores[r, n], kb[r, n] // mem)
    total = s.cb_total
    for r in range(first_row, rows):
        count = 0
        for n in range(nodes):
            count += cap[r, n]
        total[r] = count
    window = s.cb_window
    for k in range(first_row, rows):
        if total[k] < size:
            continue
        if k > first_row:
            # Starting at a row that frees nothing on any node is never better than one row
            # earlier (which was tried): skip it, as the reference does.
            grows = False
            for n in range(nodes):
                if cap[k, n] > cap[k - 1, n]:
                    grows = True
                    break
            if not grows:
                continue
        e = max(lower_bound(times, rows, times[k] + duration), k + 1)
        short = False
        for r in range(k + 1, e):
            if total[r] < size:
                short = True
                break
        if short:
            continue
        count = 0
        for n in range(nodes):
            least = cap[k, n]
            for r in range(k + 1, e):
                least = min(least, cap[r, n])
            window[n] = least
            count += least
        if count >= size:
            return k, e
    return -1, -1


@numba.njit(cache=True, nogil=True)
def split(s, p, time):
    """policies._split in place: give profile ``p`` a row starting at ``time`` (a copy of the
    row it falls in), unless one starts there already (or ``time`` is inf: for ever)."""
    rows = s.cb_rows[p]
    e = lower_bound(s.cb_t[p], rows, time)
    if time == INF or (e < rows and s.cb_t[p, e] == time):
        return
    room(s, rows + 1)
    times, cores, kb = s.cb_t[p], s.cb_cores[p], s.cb_kb[p]
    for r in range(rows, e, -1):
        times[r] = times[r - 1]
        cores[r] = cores[r - 1]
        kb[r] = kb[r - 1]
    times[e] = time
    cores[e] = cores[e - 1]
    kb[e] = kb[e - 1]
    s.cb_rows[p] = rows + 1


@numba.njit(cache=True, nogil=True)
def book(s, p, k, size, mem, duration):
    """policies._book in place: a reservation from row ``k`` (the spot ``earliest`` just
    found, its window in ``s.cb_window``) until its expected end, its cores taken from the
    lowest node ids that can give them."""
    split(s, p, s.cb_t[p, k] + duration)
    times, cores, kb = s.cb_t[p], s.cb_cores[p], s.cb_kb[p]
    e = max(lower_bound(times, s.cb_rows[p], times[k] + duration), k + 1)
    window = s.cb_window
    before = 0  # cores the lower nodes give
    for n in range(window.shape[0]):
        if before >= size:
            break
        take = min(size - before, window[n])
        before += window[n]
        for r in range(k, e):
            cores[r, n] -= take
            kb[r, n] -= take * mem


@numba.njit(cache=True, nogil=True)
def book_start(s, p, job, duration):
    """QueueScheduler._book_start in place: book ``job``, just started on its cores, in
    profile ``p`` from now until its expected end. False, with the profile unchanged, if that
    leaves a node short of cores or memory in some row (a reservation ahead of it in the order
    would be delayed).

    The reference splits a copy and then checks it; here the check comes first, so that a
    refusal leaves no extra row behind: the split's new row copies the one before it, and the
    rows checked (those before the expected end) are the same with or without it."""
    taken = s.cb_taken
    taken[:] = 0
    off = s.alloc_off[job]
    for h in s.alloc_buf[off:off + s.res[job]]:
        taken[s.core_node[h]] += 1
    mem = s.mem_kb[job]
    end = s.cb_t[p, 0] + duration
    e = max(lower_bound(s.cb_t[p], s.cb_rows[p], end), 1)
    cores, kb = s.cb_cores[p], s.cb_kb[p]
    nodes = taken.shape[0]
    for r in range(e):
        for n in range(nodes):
            if cores[r, n] < taken[n] or kb[r, n] < taken[n] * mem:
                return False
    split(s, p, end)
    cores, kb = s.cb_cores[p], s.cb_kb[p]
    for r in range(e):
        for n in range(nodes):
            cores[r, n] -= taken[n]
            kb[r, n] -= taken[n] * mem
    return True
