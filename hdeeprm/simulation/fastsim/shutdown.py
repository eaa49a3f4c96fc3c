"""The shutdown policy in compiled code: ``policies.ShutdownScheduler`` on the fast path's state.

Each function mirrors the method named in its docstring, with the same decisions in the same
order (the engine's side of the switches, Engine's "sleep p-states" section, is in
``sim``). The policy's own state is ``s.mode`` (its view of each machine: awake, switching
off, asleep, switching on), ``s.idle_since`` and the CALL_ME_LATER times it asked for
(``s.calls``: a sorted array; a time not after the current one cannot be asked again, so the
array is live from ``s.calls_lo`` only).
"""

from __future__ import annotations

import numba
import numpy as np

from hdeeprm.simulation.fastsim.alloc import _take, release_hosts
from hdeeprm.simulation.fastsim.sim import (
    JK_FIRST,
    JK_RANDOM,
    admit,
    call_me_later,
    commit,
    grow,
    hosts_of,
    initial_pstates,
    next_point,
    q_order,
    schedule,
    scheduler_time,
    set_pstate_sleep,
)
from hdeeprm.simulation.resources import HELD

# policies.ShutdownScheduler's machine modes and time slack (copied: policies imports this
# package; tests/test_fastpath.py checks that they agree).
_AWAKE, _SWITCHING_OFF, _ASLEEP, _SWITCHING_ON = range(4)
_TIME_SLACK = 1e-6


@numba.njit(cache=True, nogil=True)
def hold(s, hosts):
    """ResourceModel.hold: free cores out of service (take_core's bookkeeping, no memory or
    bandwidth), with the fast path's tree marks."""
    for i in range(hosts.shape[0]):
        c = hosts[i]
        _take(s, c, s.core_processor[c], HELD, 0, 0)
    s.nb_free -= hosts.shape[0]


@numba.njit(cache=True, nogil=True)
def unhold(s, hosts):
    """ResourceModel.unhold."""
    release_hosts(s, hosts, 0, 0)


@numba.njit(cache=True, nogil=True)
def admit_shutdown(s):
    """ShutdownScheduler.admit: QueueScheduler.admit, then the completed jobs' machines idle
    from the point's time, finished switches. True also when machines woke."""
    now = scheduler_time(s)  # before the point's rejections (which may move the exact clock)
    changed = admit(s)
    for i in range(s.nb_completed):
        hosts = hosts_of(s, s.completed[i])
        for j in range(hosts.shape[0]):
            s.idle_since[hosts[j]] = now
    for i in range(s.nb_pt_groups):
        r = s.grp_row[s.pt_groups[i]]
        off, k = s.pr_off[r], s.pr_len[r]
        hosts = s.pr_hosts[off:off + k].astype(np.int64)
        if s.mode[hosts[0]] == _SWITCHING_OFF:
            for h in hosts:
                s.mode[h] = _ASLEEP
        elif s.mode[hosts[0]] == _SWITCHING_ON:
            for h in hosts:
                s.mode[h] = _AWAKE
            unhold(s, hosts)
            for h in hosts:
                s.idle_since[h] = now
            changed = True
    return changed


@numba.njit(cache=True, nogil=True)
def _send(s, machines, pstates):
    """One request per distinct target p-state, in increasing order (np.unique), each with
    its machines in id order."""
    targets = np.unique(pstates)
    for t in targets:
        count = 0
        for i in range(machines.shape[0]):
            if pstates[i] == t:
                count += 1
        chosen = np.empty(count, np.int64)
        count = 0
        for i in range(machines.shape[0]):
            if pstates[i] == t:
                chosen[count] = machines[i]
                count += 1
        set_pstate_sleep(s, chosen, t)


@numba.njit(cache=True, nogil=True)
def wake_for_queue(s, job_key):
    """ShutdownScheduler._wake_for_queue: wake the lowest-id sleeping machines that the
    queue's first job needs beyond the free ones and those waking."""
    if s.q_len == 0:
        return
    head = q_order(s, JK_FIRST if job_key == JK_RANDOM else job_key)[0]
    waking = 0
    for h in range(s.m):
        if s.mode[h] == _SWITCHING_ON:
            waking += 1
    needed = s.res[head] - s.nb_free - waking
    if needed <= 0:
        return
    asleep = np.empty(needed, np.int64)
    count = 0
    for h in range(s.m):
        if count == needed:
            break
        if s.mode[h] == _ASLEEP:
            asleep[count] = h
            count += 1
    if count == 0:
        return  # those switching off are woken once asleep (their RESOURCE_STATE_CHANGED)
    asleep = asleep[:count]
    for h in asleep:
        s.mode[h] = _SWITCHING_ON
    _send(s, asleep, s.awake_pstate[asleep])


@numba.njit(cache=True, nogil=True)
def _asked(s, when):
    """``when in ShutdownScheduler._calls``, adding it when not; ``now``-past times dropped."""
    lo, hi = s.calls_lo, s.nb_calls
    while lo < hi:
        mid = (lo + hi) >> 1
        if s.calls[mid] < when:
            lo = mid + 1
        else:
            hi = mid
    if lo < s.nb_calls and s.calls[lo] == when:
        return True
    k = s.nb_calls
    s.calls = grow(s.calls, k + 1)
    for i in range(k, lo, -1):
        s.calls[i] = s.calls[i - 1]
    s.calls[lo] = when
    s.nb_calls = k + 1
    return False


@numba.njit(cache=True, nogil=True)
def switch_off_idle(s, now):
    """ShutdownScheduler._switch_off_idle: machines idle for idle_s while no job waits go to
    sleep; a CALL_ME_LATER for each later due time not asked yet."""
    if s.q_len > 0:
        return  # idle machines wait for the running jobs to make room for the queue
    idle = np.empty(s.m, np.int64)
    count = 0
    for h in range(s.m):
        if s.mode[h] == _AWAKE and s.core_job[h] < 0 and s.sleep_pstate[h] >= 0:
            idle[count] = h
            count += 1
    if count == 0:
        return
    due = np.empty(count)
    nb_ready = 0
    for i in range(count):
        due[i] = s.idle_since[idle[i]] + s.idle_s
        if due[i] <= now + _TIME_SLACK:
            nb_ready += 1
    later = np.empty(count - nb_ready)
    nb_later = 0
    if nb_ready:
        ready = np.empty(nb_ready, np.int64)
        r = 0
        for i in range(count):
            if due[i] <= now + _TIME_SLACK:
                ready[r] = idle[i]
                r += 1
            else:
                later[nb_later] = due[i]
                nb_later += 1
        for h in ready:
            s.mode[h] = _SWITCHING_OFF
        hold(s, ready)
        _send(s, ready, s.sleep_pstate[ready])
    else:
        later[:] = due
        nb_later = count
    # Past times are never asked again: drop them from the live part of s.calls.
    while s.calls_lo < s.nb_calls and s.calls[s.calls_lo] <= now + _TIME_SLACK:
        s.calls_lo += 1
    for when in np.unique(later[:nb_later]):
        if not _asked(s, when):
            call_me_later(s, when)


@numba.njit(cache=True, nogil=True)
def run_shutdown(s, job_key, core_key):
    """run_policy with ShutdownScheduler: a pass when something was submitted or completed or
    machines woke, then the shutdown rule (ShutdownScheduler.manage_power), then the commit."""
    initial_pstates(s)
    while next_point(s):
        if admit_shutdown(s) and s.q_len > 0:
            schedule(s, job_key, core_key)
        wake_for_queue(s, job_key)
        switch_off_idle(s, scheduler_time(s))
        commit(s)
