"""The fast path's compiled core: Engine + ResourceModel + QueueScheduler in one state.

Each function here mirrors one method of the reference implementation, named in its
docstring, and performs the same floating-point operations in the same order, so that a run
gives the same bytes as the reference (tests/test_fastpath.py checks it). What differs is
only how the work is organised:

- the event queue is a binary heap of (time, event id) in arrays; the pending submission
  instant is kept beside it (there is one at a time), and so is the p-state
  acknowledgement: it is always due at the current time and does nothing but make a decision
  point (where HeteroEnv integrates its rewards);
- the waiting queue is kept sorted by every job key in use (insertions and removals are
  binary searches and short moves), so a pass never sorts the queue;
- the running jobs' expected ends (EASY's and conservative backfilling's) are a sorted
  array; a job's cores are a slice of one flat array;
- conservative backfilling's availability profiles live in the state's rows and are booked
  in place (``hdeeprm.simulation.fastsim.availability``) instead of copied at each booking;
- with SimGrid's clock (``s.sg``, Engine clock="simgrid") there is no event queue: time
  advances by ``core.simgrid_steps.sg_step`` over the activity arrays, as in the engine's
  "SimGrid's clock" section, and Batsim's pending message is kept beside the current point;
- on platforms with Batsim sleep p-states (``s.sleep``), the engine's "sleep p-states"
  section: machine states and their rows, switch groups (one per request; a switching
  machine's group is kept per machine instead of searched for), switches as SimGrid tasks
  or exact-clock events (``EV_SWITCH``); the shutdown policy that sends them is
  ``hdeeprm.simulation.fastsim.shutdown``.

Everything works on a ``FastState`` (``hdeeprm.simulation.fastsim.state``); Python drives it through
``run_classic`` (a whole classic-policy run) or the env kernels (``hdeeprm.simulation.fastsim.envk``).
"""

from __future__ import annotations

import numba
import numpy as np

import hdeeprm.simulation.fastsim.availability as availability
from hdeeprm.inputs.platform.sleep import COMPUTATION, SLEEP
from hdeeprm.inputs.workload.model import KIND_DELAY
from hdeeprm.simulation.engine import (
    _NOTIFY_AFTER,
    _NOTIFY_NEXT,
    _NOTIFY_NONE,
    FINISHED,
    M_COMPUTING,
    M_IDLE,
    M_SLEEPING,
    M_SWITCHING_OFF,
    M_SWITCHING_ON,
    MIN_WAITER_SLEEP_S,
    QUEUED,
    REJECTED,
    REJECTED_STATE,
    RUNNING,
    SUCCESS,
    SWITCH,
    WALLTIME_REACHED,
)
from hdeeprm.simulation.fastsim.alloc import CK_RANDOM, allocate, release_hosts
from hdeeprm.simulation.kernels import bottleneck_speed, lower_bound, update_powers
from hdeeprm.simulation.keys import ALL_JOB_KEYS
from hdeeprm.simulation.resources import CORE_SHORTAGE, FITS, MEMORY_SHORTAGE, memory_capacity, pstate_targets
from hdeeprm.simulation.simgrid_steps import (
    JOB_DELAY,
    JOB_DELAY_KILLED,
    JOB_TASK,
    JOB_TIMEOUT,
    REPLY,
    SUBMITTER,
    WAITER,
    longdouble_difference,
    sg_compact,
    sg_step,
)

# Job keys: their row in hdeeprm.simulation.keys.ALL_JOB_KEYS (one list, read here; core keys: alloc.CK_*).
JK_RANDOM, JK_FIRST = ALL_JOB_KEYS.index("random"), ALL_JOB_KEYS.index("first")
NB_JOB_KEYS = len(ALL_JOB_KEYS)  # rows of s.kv, s.key_used, s.qk, s.qk_head

# Backfilling modes (s.backfill): policies.BACKFILL_MODES, in that order.
BF_NONE, BF_EASY, BF_CONSERVATIVE = range(3)

# Energy row kinds (out_consumed_energy.csv's event_type).
ROW_START, ROW_END, ROW_PSTATE = ord("s"), ord("e"), ord("p")

# Exact clock: heap events that are not a job's end (h_final; h_job holds the machine of a switch).
EV_SWITCH, EV_CALL = -1, -2

INF = np.inf


# ---------------------------------------------------------------------------- helpers


@numba.njit(cache=True, nogil=True)
def grow(a, need):
    """``a`` itself if it holds ``need`` items, else a copy with room for at least twice as many."""
    if need <= a.shape[0]:
        return a
    b = np.empty(max(need, 2 * a.shape[0], 16), a.dtype)
    b[:a.shape[0]] = a
    return b


@numba.njit(cache=True, nogil=True)
def _pairwise_block(a, lo, n):
    # numpy's pairwise summation of at most 128 items (numpy/_core/src/umath/loops_utils.h).
    if n < 8:
        res = 0.0
        for i in range(lo, lo + n):
            res += a[i]
        return res
    r0, r1, r2, r3 = a[lo], a[lo + 1], a[lo + 2], a[lo + 3]
    r4, r5, r6, r7 = a[lo + 4], a[lo + 5], a[lo + 6], a[lo + 7]
    i = 8
    top = n - n % 8
    while i < top:
        r0 += a[lo + i]
        r1 += a[lo + i + 1]
        r2 += a[lo + i + 2]
        r3 += a[lo + i + 3]
        r4 += a[lo + i + 4]
        r5 += a[lo + i + 5]
        r6 += a[lo + i + 6]
        r7 += a[lo + i + 7]
        i += 8
    res = ((r0 + r1) + (r2 + r3)) + ((r4 + r5) + (r6 + r7))
    while i < n:
        res += a[lo + i]
        i += 1
    return res


@numba.njit(cache=True, nogil=True)
def np_sum(a):
    """``float(a.sum())`` of a 1-D float64 array, bit for bit: numpy sums blocks of up to
    128 items and adds halves (split at a multiple of 8) recursively. The recursion is
    unrolled on a small stack (numba cannot cache recursive functions)."""
    n = a.shape[0]
    if n <= 128:
        return 0.0 + _pairwise_block(a, 0, n)
    st_lo = np.empty(64, np.int64)
    st_n = np.empty(64, np.int64)
    st_stage = np.zeros(64, np.int64)  # 0: new, 1: left pending, 2: right pending
    st_left = np.empty(64)
    st_right = np.empty(64)
    st_lo[0], st_n[0], st_stage[0] = 0, n, 0
    sp = 1
    total = 0.0
    while sp > 0:
        top = sp - 1
        lo, size = st_lo[top], st_n[top]
        delivered = False
        value = 0.0
        if size <= 128:
            value = _pairwise_block(a, lo, size)
            delivered = True
        else:
            half = size // 2
            half -= half % 8
            stage = st_stage[top]
            if stage == 0:
                st_stage[top] = 1
                st_lo[sp], st_n[sp], st_stage[sp] = lo, half, 0
                sp += 1
            elif stage == 1:
                st_stage[top] = 2
                st_lo[sp], st_n[sp], st_stage[sp] = lo + half, size - half, 0
                sp += 1
            else:
                value = st_left[top] + st_right[top]
                delivered = True
        if delivered:
            sp -= 1
            if sp == 0:
                total = value
            elif st_stage[sp - 1] == 1:
                st_left[sp - 1] = value
            else:
                st_right[sp - 1] = value
    return 0.0 + total


@numba.njit(cache=True, nogil=True)
def scheduler_time(s):
    """Engine.scheduler_time: on SimGrid's clock, the last point's time printed with 6
    decimals (what Batsim tells a scheduler); else the clock."""
    if s.sg:
        return printed6(s.pt_time)
    return s.now


@numba.njit(cache=True, nogil=True)
def printed6(x):
    """``float(f"{x:.6f}")`` for 0 <= x < 2**52 / 1e6 (about 4.5e9): ``x`` rounded to 6
    decimals as Python prints it (the exact binary value, ties to even), read back.

    x * 1e6 is split exactly into p + e (Dekker's product), so the rounding is decided on
    the exact value rather than on the rounded product."""
    if not x > 0.0:
        return x
    p = x * 1e6
    if p >= 4503599627370496.0:  # 2**52: no fraction left to round (beyond any trace)
        return x
    c = 134217729.0 * x  # 2**27 + 1: Veltkamp split of x (1e6 splits exactly)
    xh = c - (c - x)
    xl = x - xh
    e = (xh * 1e6 - p) + xl * 1e6  # exact: x * 1e6 - p (1e6 needs no split)
    f = np.floor(p)
    d = (p - f) - 0.5  # exact: a multiple of ulp(p), and |e| < ulp(p) / 2 < |d| unless d == 0
    if d > 0.0 or (d == 0.0 and e > 0.0):
        r = f + 1.0
    elif d < 0.0 or e < 0.0:
        r = f
    else:  # an exact tie: to even
        r = f if f % 2.0 == 0.0 else f + 1.0
    return r / 1e6


# ---------------------------------------------------------------------------- event queue


@numba.njit(cache=True, nogil=True)
def _heap_push(s, when, job, epoch, final):
    i = s.h_size
    if i == s.h_time.shape[0]:
        s.h_time = grow(s.h_time, i + 1)
        s.h_eid = grow(s.h_eid, i + 1)
        s.h_job = grow(s.h_job, i + 1)
        s.h_epoch = grow(s.h_epoch, i + 1)
        s.h_final = grow(s.h_final, i + 1)
    eid = s.eid
    s.eid += 1
    ht, he, hj, hp, hf = s.h_time, s.h_eid, s.h_job, s.h_epoch, s.h_final
    while i > 0:
        parent = (i - 1) >> 1
        if ht[parent] < when or (ht[parent] == when and he[parent] < eid):
            break
        ht[i], he[i], hj[i], hp[i], hf[i] = ht[parent], he[parent], hj[parent], hp[parent], hf[parent]
        i = parent
    ht[i], he[i], hj[i], hp[i], hf[i] = when, eid, job, epoch, final
    s.h_size += 1


@numba.njit(cache=True, nogil=True)
def _heap_pop(s):
    ht, he, hj, hp, hf = s.h_time, s.h_eid, s.h_job, s.h_epoch, s.h_final
    when, job, epoch, final = ht[0], hj[0], hp[0], hf[0]
    s.h_size -= 1
    size = s.h_size
    if size > 0:
        lt, le, lj, lp, lf = ht[size], he[size], hj[size], hp[size], hf[size]
        i = 0
        while True:
            child = 2 * i + 1
            if child >= size:
                break
            right = child + 1
            if right < size and (ht[right] < ht[child] or (ht[right] == ht[child] and he[right] < he[child])):
                child = right
            if lt < ht[child] or (lt == ht[child] and le < he[child]):
                break
            ht[i], he[i], hj[i], hp[i], hf[i] = ht[child], he[child], hj[child], hp[child], hf[child]
            i = child
        ht[i], he[i], hj[i], hp[i], hf[i] = lt, le, lj, lp, lf
    return when, job, epoch, final


@numba.njit(cache=True, nogil=True)
def peek(s):
    """Engine._clock.peek(): time of the next event, stale ones included (inf: none)."""
    t = INF
    if s.h_size > 0:
        t = s.h_time[0]
    if s.next_group >= 0 and s.sub_time < t:
        t = s.sub_time
    if s.ack_pending and s.ack_time < t:
        t = s.ack_time
    return t


# ---------------------------------------------------------------------------- energy


@numba.njit(cache=True, nogil=True)
def _refresh(s, hosts, rate):
    """Engine._refresh_powers."""
    total_new, delta = update_powers(hosts, rate, s.pstate, s.billed, s.speeds, s.watts_idle,
                                     s.watts_full, s.power)
    s.total_power += delta
    return total_new


@numba.njit(cache=True, nogil=True)
def _advance_energy(s):
    """Engine._advance_energy."""
    now = s.now
    if now > s.energy_time:
        s.energy += s.total_power * (now - s.energy_time)
        s.energy_time = now


@numba.njit(cache=True, nogil=True)
def _settle(s, job):
    """Engine._settle_job_energy."""
    now = s.now
    s.job_energy[job] += s.job_power[job] * (now - s.job_energy_time[job])
    s.job_energy_time[job] = now


@numba.njit(cache=True, nogil=True)
def hosts_of(s, job):
    off = s.alloc_off[job]
    return s.alloc_buf[off:off + s.res[job]]


@numba.njit(cache=True, nogil=True)
def _energy_query(s):
    """Engine._energy_query (SimGrid's start-up quirk; running jobs in index order)."""
    if not s.quirk_pending or s.now <= 0.0:
        return
    s.quirk_pending = False
    _advance_energy(s)
    n = s.n
    for job in range(n):
        if s.job_state[job] == RUNNING:
            _settle(s, job)
    s.billed[:] = s.pstate
    idle = np.flatnonzero(s.busy_job < 0)
    _refresh(s, idle, 0.0)
    if s.sleep:
        for i in range(idle.shape[0]):
            h = idle[i]
            if s.mstate[h] >= M_SWITCHING_ON:  # computing its switch flop
                _set_power(s, h, s.watts_full[h, s.pstate[h]])
            elif s.mstate[h] == M_SLEEPING:
                _set_power(s, h, _rest_power(s, h, s.pstate[h]))
    for job in range(n):
        if s.job_state[job] == RUNNING:
            rate = 0.0 if s.kind[job] == KIND_DELAY else s.rate[job]
            s.job_power[job] = _refresh(s, hosts_of(s, job), rate)


@numba.njit(cache=True, nogil=True)
def _energy_row(s, kind, wattmin_shift=0.0):
    """Engine._energy_row."""
    s.tracer_read_at = s.now  # Batsim's tracer reads every machine's energy
    if not s.record_rows:
        return
    now = s.now
    epower = np.nan
    k = s.nb_erows
    if now > s.last_row_time and k > 0:
        epower = (s.energy - s.last_row_energy) / (now - s.last_row_time)
    if k == s.er_t.shape[0]:
        s.er_t = grow(s.er_t, k + 1)
        s.er_e = grow(s.er_e, k + 1)
        s.er_k = grow(s.er_k, k + 1)
        s.er_w = grow(s.er_w, k + 1)
        s.er_p = grow(s.er_p, k + 1)
    s.er_t[k] = now
    s.er_e[k] = s.energy
    s.er_k[k] = kind
    s.er_w[k] = s.wattmin + wattmin_shift
    s.er_p[k] = epower
    s.nb_erows = k + 1
    s.last_row_time = now
    s.last_row_energy = s.energy


# ---------------------------------------------------------------------------- engine


@numba.njit(cache=True, nogil=True)
def decision_time(s):
    """Engine._decision_time: decisions take effect at the printed (6-decimal) time when it
    rounds up, unless an event falls in between. With SimGrid's clock: Engine._answer."""
    if s.sg:
        _answer(s)
        if s.nb_held:
            if s.since_reply:
                _report_held(s)
            else:
                s.since_reply += 1
        return
    if not s.round_decisions:
        return
    now = s.now
    if now == s.decision_time_for:
        return
    printed = printed6(now)
    if printed > now and peek(s) > printed:
        s.now = printed
    s.decision_time_for = s.now


@numba.njit(cache=True, nogil=True)
def _schedule_end(s, job, when, final):
    """Engine._schedule_end."""
    s.epoch[job] += 1
    _heap_push(s, when, job, s.epoch[job], final)


@numba.njit(cache=True, nogil=True)
def _schedule_parallel_end(s, job):
    """Engine._schedule_parallel_end."""
    now = s.now
    remaining = s.remaining[job]
    end = now + remaining / s.rate[job] if remaining > 0 else now
    kill_at = s.start[job] + s.walltime[job]
    if end <= kill_at:
        _schedule_end(s, job, end, SUCCESS)
    else:
        _schedule_end(s, job, kill_at, WALLTIME_REACHED)


@numba.njit(cache=True, nogil=True)
def execute(s, job):
    """Engine.execute(job, hosts_of(job)); the scheduler's picks are valid by construction."""
    decision_time(s)
    hosts = hosts_of(s, job)
    for i in range(hosts.shape[0]):
        s.busy_job[hosts[i]] = job
    now = s.now
    _energy_query(s)
    _advance_energy(s)
    s.eng_nb_free -= hosts.shape[0]
    s.nb_running += 1
    s.job_state[job] = RUNNING
    s.start_seq[s.nb_started] = job
    s.nb_started += 1
    s.start[job] = now
    s.job_energy_time[job] = now
    if s.sg:
        _start_activities(s, job, hosts)
    elif s.kind[job] == KIND_DELAY:
        delay, walltime = s.work[job], s.walltime[job]
        if delay < walltime:
            _schedule_end(s, job, now + delay, SUCCESS)
        else:
            _schedule_end(s, job, now + walltime, WALLTIME_REACHED)
        s.job_power[job] = _refresh(s, hosts, 0.0)
    else:
        s.progress_time[job] = now
        s.rate[job] = bottleneck_speed(hosts, s.pstate, s.speeds)
        _schedule_parallel_end(s, job)
        s.job_power[job] = _refresh(s, hosts, s.rate[job])
    if s.sleep:
        _machine_states(s, hosts, M_COMPUTING)
        _state_row(s)
    _energy_row(s, ROW_START)


@numba.njit(cache=True, nogil=True)
def reject(s, job):
    """Engine.reject."""
    decision_time(s)
    s.job_state[job] = REJECTED
    s.final_state[job] = REJECTED_STATE
    s.job_order[s.nb_order] = job
    s.nb_order += 1
    s.nb_unfinished -= 1


@numba.njit(cache=True, nogil=True)
def set_pstate(s, hosts, pstate):
    """Engine.set_pstate(hosts, pstate) for sorted, distinct, valid ``hosts``."""
    decision_time(s)
    k = hosts.shape[0]
    if k == 0:
        return
    now = s.now
    _energy_query(s)
    _advance_energy(s)
    _energy_row(s, ROW_PSTATE)
    diff = s.sc_f8[:k]
    for i in range(k):
        h = hosts[i]
        diff[i] = s.watts_idle[h, pstate] - s.watts_idle[h, s.pstate[h]]
    s.wattmin += np_sum(diff)
    nb_idle = 0
    nb_jobs = 0
    idle = s.sc_a
    jobs = s.sc_b
    for i in range(k):
        h = hosts[i]
        s.pstate[h] = pstate
        s.billed[h] = pstate
        j = s.busy_job[h]
        if j < 0:
            idle[nb_idle] = h
            nb_idle += 1
        else:
            jobs[nb_jobs] = j
            nb_jobs += 1
    if nb_idle:
        _refresh(s, idle[:nb_idle], 0.0)
    jobs = jobs[:nb_jobs]
    jobs.sort()
    for i in range(nb_jobs):
        job = jobs[i]
        if i > 0 and job == jobs[i - 1]:
            continue
        _settle(s, job)
        job_hosts = hosts_of(s, job)
        if s.kind[job] == KIND_DELAY:
            s.job_power[job] = _refresh(s, job_hosts, 0.0)
        elif s.sg:
            # SimGrid keeps the task's remains and gives it the new bottleneck's rate.
            s.rate[job] = bottleneck_speed(job_hosts, s.pstate, s.speeds)
            if s.work[job] > 0:
                s.a_rate[s.task_slot[job]] = s.rate[job] / s.work[job]
            s.job_power[job] = _refresh(s, job_hosts, s.rate[job])
        else:
            s.remaining[job] -= s.rate[job] * (now - s.progress_time[job])
            s.progress_time[job] = now
            s.rate[job] = bottleneck_speed(job_hosts, s.pstate, s.speeds)
            _schedule_parallel_end(s, job)
            s.job_power[job] = _refresh(s, job_hosts, s.rate[job])
    _energy_row(s, ROW_PSTATE)
    # One switch, written as two rows (switching, then the new p-state) with these hosts.
    off = s.nb_prow_hosts
    s.pr_hosts = grow(s.pr_hosts, off + k)
    s.pr_hosts[off:off + k] = hosts
    s.nb_prow_hosts = off + k
    _pstate_record(s, now, pstate, off, k)
    s.nb_machine_switches += k
    s.nb_grouped_switches += 1
    if s.sg:  # in Batsim's next message
        s.pd_acks += 1
    else:
        s.ack_pending = True  # Engine._on_pstate_ack, due now
        s.ack_time = now


@numba.njit(cache=True, nogil=True)
def _end(s, job, final):
    """Engine._end."""
    _end_shifted(s, job, final, 0.0)


@numba.njit(cache=True, nogil=True)
def _end_shifted(s, job, final, wattmin_shift):
    """Engine._end(job, final, wattmin_shift): the energy row's wattmin counts the sleep
    switches of the same SimGrid step (Engine._switch_wattmin_shift)."""
    now = s.now
    _energy_query(s)
    _advance_energy(s)
    _settle(s, job)
    s.epoch[job] += 1
    if s.sg:
        _act_cancel(s, s.task_slot[job])
        _act_cancel(s, s.timeout_slot[job])
        s.task_slot[job] = -1
        s.timeout_slot[job] = -1
    hosts = hosts_of(s, job)
    for i in range(hosts.shape[0]):
        s.busy_job[hosts[i]] = -1
    s.eng_nb_free += hosts.shape[0]
    _refresh(s, hosts, 0.0)
    s.job_power[job] = 0.0
    s.nb_running -= 1
    s.job_state[job] = FINISHED
    s.final_state[job] = final
    s.finish[job] = now
    s.job_order[s.nb_order] = job
    s.nb_order += 1
    s.nb_unfinished -= 1
    s.last_completion_energy = s.energy
    if s.sg:  # Batsim's server holds it for the next message
        c = s.pd_nb_completed
        if c == s.pd_completed.shape[0]:
            s.pd_completed = grow(s.pd_completed, c + 1)
        s.pd_completed[c] = job
        s.pd_nb_completed = c + 1
    else:
        c = s.nb_completed
        if c == s.completed.shape[0]:
            s.completed = grow(s.completed, c + 1)
        s.completed[c] = job
        s.nb_completed = c + 1
    if s.sleep:
        _machine_states(s, hosts, M_IDLE)
        _state_row(s)
    _energy_row(s, ROW_END, wattmin_shift)


@numba.njit(cache=True, nogil=True)
def _on_submit(s):
    """Engine._on_submit."""
    g = s.next_group
    lo, hi = s.groups[g], s.groups[g + 1]
    if np.isnan(s.first_sub_energy):
        _energy_query(s)
        _advance_energy(s)
        s.first_sub_energy = s.energy
    for j in range(lo, hi):
        s.job_state[j] = QUEUED
    s.pt_lo, s.pt_hi = lo, hi
    if hi < s.n:
        s.next_group = g + 1
        s.sub_time = s.subtime[hi]
        s.sub_eid = s.eid
        s.eid += 1
    else:
        s.next_group = -1


@numba.njit(cache=True, nogil=True)
def _step(s):
    """Engine._clock.step(): the next event, in (time, event id) order."""
    use_sub = False
    if s.next_group >= 0:
        if s.h_size == 0:
            use_sub = True
        else:
            t0 = s.h_time[0]
            use_sub = s.sub_time < t0 or (s.sub_time == t0 and s.sub_eid < s.h_eid[0])
    if use_sub:
        s.now = s.sub_time
        _on_submit(s)
    else:
        when, job, epoch, final = _heap_pop(s)
        s.now = when
        if final == EV_SWITCH:  # Engine._on_switched (job: the machine)
            _switched(s, job)
        elif final == EV_CALL:  # Engine._on_requested_call
            s.pt_calls += 1
        elif epoch == s.epoch[job]:  # else superseded by a p-state change
            _end(s, job, final)


@numba.njit(cache=True, nogil=True)
def next_point(s):
    """Engine.next_decision_point(): process the next instant at which a job is submitted
    or completes; False at the end (then the energy is integrated to the last event).
    With SimGrid's clock: Engine._next_simgrid_point, every message is a point."""
    if s.sg:
        return _sg_next_point(s)
    while True:
        when = peek(s)
        if when == INF:
            if not s.finished:
                _advance_energy(s)
                s.finished = True
            return False
        s.pt_time = when
        s.pt_lo = 0
        s.pt_hi = 0
        s.nb_completed = 0
        s.pt_ack = False
        s.pt_calls = 0
        s.nb_pt_groups = 0
        while peek(s) == when:
            if s.ack_pending and s.ack_time == when:
                # Acknowledgements have no effect, so their order among same-time events
                # does not matter: take them first. A classic run has nothing to do at a
                # point that holds only acknowledgements: it skips them.
                s.ack_pending = False
                s.pt_ack = s.ack_points
                s.now = when
            else:
                _step(s)
        if s.pt_hi > s.pt_lo or s.nb_completed > 0 or s.pt_ack or s.pt_calls > 0 or s.nb_pt_groups > 0:
            s.nb_points += 1
            return True


# ---------------------------------------------------------------------------- SimGrid's clock

# Where "no more jobs to submit" goes (Engine._notify).
NOTIFY_NONE, NOTIFY_AFTER, NOTIFY_NEXT = _NOTIFY_NONE, _NOTIFY_AFTER, _NOTIFY_NEXT


@numba.njit(cache=True, nogil=True)
def _act_add(s, is_task, kind, owner, remains, rate, duration):
    """Activities.add_task (remains, rate) or add_sleep (duration): the new activity's slot."""
    a = s.a_count
    if a == s.a_is_task.shape[0]:
        s.a_is_task = grow(s.a_is_task, a + 1)
        s.a_remains = grow(s.a_remains, a + 1)
        s.a_rate = grow(s.a_rate, a + 1)
        s.a_duration = grow(s.a_duration, a + 1)
        s.a_alive = grow(s.a_alive, a + 1)
        s.a_kind = grow(s.a_kind, a + 1)
        s.a_owner = grow(s.a_owner, a + 1)
    s.a_count = a + 1
    s.a_nb_alive += 1
    s.a_alive[a] = True
    s.a_is_task[a] = is_task
    if is_task:
        s.a_remains[a] = remains
        s.a_rate[a] = rate
    else:
        s.a_duration[a] = duration
    s.a_kind[a] = kind
    s.a_owner[a] = owner
    return a


@numba.njit(cache=True, nogil=True)
def _act_sleep(s, kind, owner, duration):
    return _act_add(s, False, kind, owner, 0.0, 0.0, duration)


@numba.njit(cache=True, nogil=True)
def _act_cancel(s, slot):
    """Activities.cancel."""
    if slot >= 0 and s.a_alive[slot]:
        s.a_alive[slot] = False
        s.a_nb_alive -= 1


@numba.njit(cache=True, nogil=True)
def _forget_slots(s):
    """Every job's slots to -1 (the jobs with a slot are the owners of the listed activities)."""
    for a in range(s.a_count):
        owner = s.a_owner[a]
        if owner < 0:
            continue
        kind = s.a_kind[a]
        if kind == JOB_TASK or kind == JOB_DELAY or kind == JOB_DELAY_KILLED:
            s.task_slot[owner] = -1
        elif kind == JOB_TIMEOUT:
            s.timeout_slot[owner] = -1


@numba.njit(cache=True, nogil=True)
def _act_compact(s):
    """Activities.compact, then Engine._reindex_activities when it did."""
    alive = s.a_nb_alive
    if s.a_count - alive <= max(32, alive):
        return
    _forget_slots(s)
    s.a_count = sg_compact(s.a_is_task, s.a_remains, s.a_rate, s.a_duration, s.a_alive, s.a_kind,
                           s.a_owner, s.a_count)
    for a in range(s.a_count):
        owner = s.a_owner[a]
        if owner < 0:
            continue
        kind = s.a_kind[a]
        if kind == JOB_TASK or kind == JOB_DELAY or kind == JOB_DELAY_KILLED:
            s.task_slot[owner] = a
        elif kind == JOB_TIMEOUT:
            s.timeout_slot[owner] = a


@numba.njit(cache=True, nogil=True)
def _pending(s):
    """bool(Engine._pending)."""
    return (s.sub_upto > s.pd_lo or s.pd_nb_completed > 0 or s.pd_calls > 0 or s.pd_acks > 0
            or s.pd_nomore)


@numba.njit(cache=True, nogil=True)
def _sg_submit(s, lo, hi):
    """Engine._submit."""
    if hi <= lo:
        return
    if np.isnan(s.first_sub_energy):
        _energy_query(s)
        _advance_energy(s)
        s.first_sub_energy = s.energy
    for j in range(lo, hi):
        s.job_state[j] = QUEUED
    s.sub_upto = hi
    s.last_sub = True


@numba.njit(cache=True, nogil=True)
def _submitter_round(s):
    """Engine._submitter_round: returns True once every job is submitted."""
    n = s.n
    now = s.now
    lo = hi = s.sub_upto
    if s.woken_by_job:
        hi += 1
        s.woken_by_job = False
    while hi < n:
        due = s.subtime[hi]
        if due > now:  # (comparing the long doubles of two doubles compares the doubles)
            _sg_submit(s, lo, hi)
            _act_sleep(s, SUBMITTER, -1, longdouble_difference(due, now))
            s.woken_by_job = True
            return False
        hi += 1
    _sg_submit(s, lo, hi)
    return True


@numba.njit(cache=True, nogil=True)
def _start_activities(s, job, hosts):
    """Engine._start_activities."""
    work, walltime = s.work[job], s.walltime[job]
    limited = np.isfinite(walltime) and walltime > 0
    if s.kind[job] == KIND_DELAY:
        s.job_power[job] = _refresh(s, hosts, 0.0)
        if limited and not work < walltime:
            s.task_slot[job] = _act_sleep(s, JOB_DELAY_KILLED, job, walltime)
        else:
            s.task_slot[job] = _act_sleep(s, JOB_DELAY, job, work)
        return
    s.rate[job] = bottleneck_speed(hosts, s.pstate, s.speeds)
    s.job_power[job] = _refresh(s, hosts, s.rate[job])
    if work > 0:
        s.task_slot[job] = _act_add(s, True, JOB_TASK, job, 1.0, s.rate[job] / work, 0.0)
    else:  # no work: it ends in a step of zero length
        s.task_slot[job] = _act_add(s, True, JOB_TASK, job, 0.0, 1.0, 0.0)
    if limited:
        s.timeout_slot[job] = _act_sleep(s, JOB_TIMEOUT, job, walltime)


@numba.njit(cache=True, nogil=True)
def _sg_step(s):
    """Engine._simgrid_step: one SimGrid step and what Batsim's actors do with the activities
    that ended in it; False when nothing is left to happen."""
    _act_compact(s)
    if s.a_done.shape[0] < s.a_count:
        s.a_done = np.empty(s.a_is_task.shape[0], np.int64)
    now, k = sg_step(s.a_is_task, s.a_remains, s.a_rate, s.a_duration, s.a_alive, s.a_count,
                     s.now, s.a_done)
    if k < 0:
        return False
    s.a_nb_alive -= k
    s.now = now
    sent_before = _pending(s)
    s.last_sub = False
    submitter_finished = False
    reply_ended = False
    done = s.a_done  # (new activities never replace this array)
    shift = _switch_wattmin_shift(s, done, k) if s.sleep else 0.0
    nb_switched = 0
    for i in range(k):
        slot = done[i]
        kind = s.a_kind[slot]
        job = s.a_owner[slot]
        if kind == SUBMITTER:
            submitter_finished = _submitter_round(s)
            continue
        if kind == REPLY:
            reply_ended = True
            continue
        if kind == WAITER:
            s.pd_calls += 1
            s.last_sub = False
            continue
        if kind == SWITCH:  # owner: the machine; after the jobs' ends (see below)
            s.sw_list[nb_switched] = job
            nb_switched += 1
            s.last_sub = False
            continue
        if s.job_state[job] != RUNNING or (slot != s.task_slot[job] and slot != s.timeout_slot[job]):
            continue  # its task and timeout ended in the same step: the task came first
        final = SUCCESS if kind == JOB_TASK or kind == JOB_DELAY else WALLTIME_REACHED
        _end_shifted(s, job, final, shift)
        s.last_sub = False
    # A job's actor writes its end's rows as soon as it wakes; Batsim's server logs a switch
    # once the step's actors have run, every switch actor of the step having set its machine's
    # p-state and state by then (Engine._simgrid_step).
    for i in range(nb_switched):
        _switch_reached(s, s.sw_list[i])
    if reply_ended and nb_switched > 0:
        # The reply actor woke in this step too: its first decision reaches Batsim's server
        # before the switch actors' messages, the others after them.
        s.held[:nb_switched] = s.sw_list[:nb_switched]
        s.nb_held = nb_switched
        s.since_reply = 0
    else:
        for i in range(nb_switched):
            _switch_reported(s, s.sw_list[i])
    if submitter_finished:
        if s.last_sub and s.sg_ready and not sent_before:
            s.notify = NOTIFY_AFTER
        else:
            s.pd_nomore = True
    if reply_ended:
        s.sg_ready = True
    return True


@numba.njit(cache=True, nogil=True)
def _answer(s):
    """Engine._answer: if the last message's printed time is later than the clock, Batsim's
    reply actor sleeps until then before the decisions take effect."""
    if not s.reply_due:
        return
    s.reply_due = False
    now = s.now
    printed = printed6(now)
    if s.round_decisions and printed > now:
        s.sg_ready = False
        _act_sleep(s, REPLY, -1, printed - now)
        while not s.sg_ready:
            if not _sg_step(s):
                raise RuntimeError("SimGrid clock: the reply sleep vanished")


@numba.njit(cache=True, nogil=True)
def _sg_next_point(s):
    """Engine._next_simgrid_point: the next message Batsim sends; False at the end."""
    _answer(s)
    _report_held(s)
    while True:
        _report_held(s)  # Engine.message_due: the reply is over
        if s.sg_ready and (_pending(s) or s.notify == NOTIFY_NEXT):
            if s.notify == NOTIFY_NEXT:  # with what the last reply caused, if anything
                s.notify = NOTIFY_NONE
            s.pt_time = s.now
            s.pt_lo = s.pd_lo
            s.pt_hi = s.sub_upto
            s.pd_lo = s.sub_upto
            held = s.completed
            s.completed = s.pd_completed
            s.pd_completed = held
            s.nb_completed = s.pd_nb_completed
            s.pd_nb_completed = 0
            s.pt_ack = s.pd_acks > 0
            s.pd_acks = 0
            groups = s.pt_groups
            s.pt_groups = s.pd_groups
            s.pd_groups = groups
            s.nb_pt_groups = s.nb_pd_groups
            s.nb_pd_groups = 0
            s.pd_calls = 0
            s.pd_nomore = False
            if s.notify == NOTIFY_AFTER:
                s.notify = NOTIFY_NEXT
            s.reply_due = True
            s.nb_points += 1
            return True
        if not _sg_step(s):
            if not s.finished:
                _advance_energy(s)
                s.finished = True
            return False


# ---------------------------------------------------------------------------- sleep p-states

# Engine's "sleep p-states" section (Batsim 4.2.1's server_on_pstate_modification and
# server_on_switched): a request is one switch group; each machine computes 1 flop in the
# virtual switch p-state (a SWITCH task, or an EV_SWITCH event with the exact clock) and then
# reaches its target; the group is logged and acknowledged when its last machine has
# switched. The reference looks a switched machine's group up among the open groups; a
# switching machine cannot be sent anywhere else, so it is in exactly one, kept in s.m_group.


@numba.njit(cache=True, nogil=True)
def _set_power(s, h, watts):
    """Engine._set_power."""
    s.total_power += watts - s.power[h]
    s.power[h] = watts


@numba.njit(cache=True, nogil=True)
def _rest_power(s, h, pstate):
    """Engine._rest_power: SimGrid's energy plugin takes a p-state of speed 0 as fully loaded."""
    if s.speeds[h, pstate] <= 0:
        return s.watts_full[h, pstate]
    return s.watts_idle[h, pstate]


@numba.njit(cache=True, nogil=True)
def _machine_states(s, hosts, state):
    """Engine._machine_states (np.add.at adds in host order: so does this)."""
    now = s.now
    for i in range(hosts.shape[0]):
        h = hosts[i]
        old = s.mstate[h]
        s.state_time[old] += now - s.mstate_since[h]
        s.state_count[old] -= 1
    s.state_count[state] += hosts.shape[0]
    for i in range(hosts.shape[0]):
        h = hosts[i]
        s.mstate[h] = state
        s.mstate_since[h] = now


@numba.njit(cache=True, nogil=True)
def _machine_state_one(s, h, state):
    """Engine._machine_states(np.array([h]), state)."""
    now = s.now
    old = s.mstate[h]
    s.state_time[old] += now - s.mstate_since[h]
    s.state_count[old] -= 1
    s.state_count[state] += 1
    s.mstate[h] = state
    s.mstate_since[h] = now


@numba.njit(cache=True, nogil=True)
def _state_row(s):
    """Engine._state_row."""
    r = s.nb_srows
    if r == s.sr_t.shape[0]:
        s.sr_t = grow(s.sr_t, r + 1)
    s.sr_c = grow(s.sr_c, 5 * (r + 1))
    s.sr_t[r] = s.now
    c = s.state_count
    s.sr_c[5 * r] = c[M_SLEEPING]
    s.sr_c[5 * r + 1] = c[M_SWITCHING_ON]
    s.sr_c[5 * r + 2] = c[M_SWITCHING_OFF]
    s.sr_c[5 * r + 3] = c[M_IDLE]
    s.sr_c[5 * r + 4] = c[M_COMPUTING]
    s.nb_srows = r + 1


@numba.njit(cache=True, nogil=True)
def _pstate_record(s, now, pstate, off, k):
    """One p-state record (one row when s.pr_single) of the k hosts at pr_hosts[off:]."""
    r = s.nb_prows
    if r == s.pr_t.shape[0]:
        s.pr_t = grow(s.pr_t, r + 1)
        s.pr_p = grow(s.pr_p, r + 1)
        s.pr_off = grow(s.pr_off, r + 1)
        s.pr_len = grow(s.pr_len, r + 1)
    s.pr_t[r] = now
    s.pr_p[r] = pstate
    s.pr_off[r] = off
    s.pr_len[r] = k
    s.nb_prows = r + 1
    return r


@numba.njit(cache=True, nogil=True)
def set_pstate_sleep(s, hosts, pstate):
    """Engine.set_pstate -> Engine._set_pstate_with_sleep for sorted, distinct ``hosts`` that
    all switch through a virtual p-state (idle machines sent to sleep, sleeping machines
    woken: what the shutdown policy sends). The reference's checks are the policy's own
    invariants; a request that would switch machines at once is not compiled."""
    decision_time(s)
    k = hosts.shape[0]
    if k == 0:
        return
    now = s.now
    _energy_query(s)
    _advance_energy(s)
    _energy_row(s, ROW_PSTATE)
    off = s.nb_prow_hosts
    s.pr_hosts = grow(s.pr_hosts, off + k)
    s.pr_hosts[off:off + k] = hosts
    s.nb_prow_hosts = off + k
    written = -1 if s.sl_kind[hosts[0], pstate] == COMPUTATION else -2
    r = _pstate_record(s, now, written, off, k)
    s.nb_machine_switches += k
    s.nb_grouped_switches += 1
    for i in range(k):
        h = hosts[i]
        if s.sl_kind[h, s.pstate[h]] == COMPUTATION and s.sl_kind[h, pstate] != SLEEP:
            raise RuntimeError("fast path: a switch between computation p-states in a sleep request")
        if s.mstate[h] >= M_SWITCHING_ON or (s.sl_kind[h, pstate] == SLEEP and s.busy_job[h] >= 0):
            raise RuntimeError("fast path: a machine switching or busy sent to sleep")
    g = s.nb_groups
    if g == s.grp_row.shape[0]:
        s.grp_row = grow(s.grp_row, g + 1)
        s.grp_p = grow(s.grp_p, g + 1)
        s.grp_left = grow(s.grp_left, g + 1)
    s.grp_row[g] = r
    s.grp_p[g] = pstate
    s.grp_left[g] = k
    s.nb_groups = g + 1
    s.slept = True
    for i in range(k):
        h = hosts[i]
        if s.sl_kind[h, pstate] == SLEEP:
            virtual = s.sl_off[h, pstate]
            state = M_SWITCHING_OFF
        else:
            virtual = s.sl_on[h, s.pstate[h]]
            state = M_SWITCHING_ON
        s.wattmin += s.watts_idle[h, virtual] - s.watts_idle[h, s.pstate[h]]
        s.pstate[h] = virtual
        s.billed[h] = virtual
        s.switch_target[h] = pstate
        s.m_group[h] = g
        # 1 flop at the virtual p-state's speed, the machine fully loaded meanwhile.
        _set_power(s, h, s.watts_full[h, virtual])
        speed = s.speeds[h, virtual]
        if speed <= 0:
            raise RuntimeError("a virtual p-state has speed 0: the switch would never end")
        if s.sg:
            _act_add(s, True, SWITCH, h, 1.0, speed / 1.0, 0.0)
        else:
            _heap_push(s, now + 1.0 / speed, h, 0, EV_SWITCH)
        _machine_state_one(s, h, state)
    _state_row(s)


@numba.njit(cache=True, nogil=True)
def _switched(s, h):
    """Engine._switched (exact clock)."""
    _switch_reached(s, h)
    _switch_reported(s, h)


@numba.njit(cache=True, nogil=True)
def _switch_reached(s, h):
    """Engine._switch_reached: the machine is in its target p-state and state."""
    _advance_energy(s)
    target = s.switch_target[h]
    s.wattmin += s.watts_idle[h, target] - s.watts_idle[h, s.pstate[h]]
    s.pstate[h] = target
    s.billed[h] = target
    _set_power(s, h, _rest_power(s, h, target))
    _machine_state_one(s, h, M_SLEEPING if s.sl_kind[h, target] == SLEEP else M_IDLE)


@numba.njit(cache=True, nogil=True)
def _switch_reported(s, h):
    """Engine._switch_reported: the request of ``h`` is done once all its machines switched."""
    s.switch_target[h] = -1
    g = s.m_group[h]
    s.m_group[h] = -1
    s.grp_left[g] -= 1
    if s.grp_left[g] == 0:
        _state_row(s)
        _group_done(s, g)


@numba.njit(cache=True, nogil=True)
def _group_done(s, g):
    """Engine._group_done(group, at_decision=False): logged, and acknowledged in the point
    being gathered (exact clock) or Batsim's pending message."""
    _energy_query(s)
    _advance_energy(s)
    _energy_row(s, ROW_PSTATE)
    r = s.grp_row[g]
    _pstate_record(s, s.now, s.grp_p[g], s.pr_off[r], s.pr_len[r])
    if s.sg:
        s.pd_acks += 1
        c = s.nb_pd_groups
        s.pd_groups = grow(s.pd_groups, c + 1)
        s.pd_groups[c] = g
        s.nb_pd_groups = c + 1
    else:
        c = s.nb_pt_groups
        s.pt_groups = grow(s.pt_groups, c + 1)
        s.pt_groups[c] = g
        s.nb_pt_groups = c + 1


@numba.njit(cache=True, nogil=True)
def _report_held(s):
    """Engine._report_held_switches."""
    count = s.nb_held
    s.nb_held = 0
    for i in range(count):
        _switch_reported(s, s.held[i])


@numba.njit(cache=True, nogil=True)
def _switch_wattmin_shift(s, done, k):
    """Engine._switch_wattmin_shift over the step's ended activities ``done[:k]``."""
    if k < 2:
        return 0.0
    nb_switches = 0
    nb_ended = 0
    for i in range(k):
        kind = s.a_kind[done[i]]
        if kind == SWITCH:
            nb_switches += 1
        elif kind == JOB_TASK or kind == JOB_TIMEOUT or kind == JOB_DELAY or kind == JOB_DELAY_KILLED:
            nb_ended += 1
    if nb_switches == 0 or nb_ended == 0 or s.tracer_read_at == s.now:
        return 0.0
    touched = s.sw_touched
    touched[:] = False
    for i in range(k):
        kind = s.a_kind[done[i]]
        owner = s.a_owner[done[i]]
        if kind == SWITCH:
            touched[owner] = True
        elif kind == JOB_TASK or kind == JOB_TIMEOUT or kind == JOB_DELAY or kind == JOB_DELAY_KILLED:
            # Engine.machines_updated_by_end: a delay's sleep touches its first machine only.
            hosts = hosts_of(s, owner)
            count = 1 if s.kind[owner] == KIND_DELAY else hosts.shape[0]
            for j in range(count):
                touched[hosts[j]] = True
    every = True
    for h in range(touched.shape[0]):
        if not touched[h]:
            every = False
            break
    if every:
        return 0.0
    diff = s.sc_f8[:nb_switches]
    j = 0
    for i in range(k):
        if s.a_kind[done[i]] == SWITCH:
            h = s.a_owner[done[i]]
            diff[j] = s.watts_idle[h, s.switch_target[h]] - s.watts_idle[h, s.pstate[h]]
            j += 1
    return np_sum(diff)


@numba.njit(cache=True, nogil=True)
def call_me_later(s, when):
    """Engine.call_me_later."""
    decision_time(s)
    now = s.now
    if s.sg:
        if when > now:  # Batsim's waiter actor sleeps, at least 1e-5 s
            _act_sleep(s, WAITER, -1, max(when - now, MIN_WAITER_SLEEP_S))
        else:
            s.pd_calls += 1
        return
    _heap_push(s, max(when, now), 0, 0, EV_CALL)


# ---------------------------------------------------------------------------- queue


@numba.njit(cache=True, nogil=True)
def _q_position(s, k, job):
    """Where ``job`` is, or goes, in key ``k``'s order: by (value, index)."""
    qk, kv = s.qk, s.kv
    v = kv[k, job]
    lo = s.qk_head[k]
    hi = lo + s.q_len
    while lo < hi:
        mid = (lo + hi) >> 1
        other = qk[k, mid]
        w = kv[k, other]
        if w < v or (w == v and other < job):
            lo = mid + 1
        else:
            hi = mid
    return lo


@numba.njit(cache=True, nogil=True)
def _q_make_room(s):
    """Keep at least half of each row free, and every row's window clear of the row's end,
    so that an insertion moves only the items after it (amortised O(1) for appends)."""
    cap = s.qk.shape[1]
    length = s.q_len
    if 2 * (length + 1) > cap:
        bigger = np.empty((NB_JOB_KEYS, max(2 * cap, 64)), np.int64)
        for k in range(NB_JOB_KEYS):
            if s.key_used[k]:
                h = s.qk_head[k]
                bigger[k, :length] = s.qk[k, h:h + length]
                s.qk_head[k] = 0
        s.qk = bigger
        if s.track_stats:
            stats = np.empty((4, bigger.shape[1]))
            stats[:, :length] = s.qs[:, :length]
            s.qs = stats
        return
    for k in range(NB_JOB_KEYS):
        h = s.qk_head[k]
        if s.key_used[k] and h + length >= cap:
            row = s.qk[k]
            for i in range(length):
                row[i] = row[h + i]
            s.qk_head[k] = 0


@numba.njit(cache=True, nogil=True)
def _stats_insert(values, count, v):
    """Insert ``v`` into the sorted ``values[:count]``."""
    lo = lower_bound(values, count, v)
    for i in range(count, lo, -1):
        values[i] = values[i - 1]
    values[lo] = v


@numba.njit(cache=True, nogil=True)
def _stats_remove(values, count, v):
    """Remove one ``v`` from the sorted ``values[:count]``."""
    lo = lower_bound(values, count, v)
    for i in range(lo, count - 1):
        values[i] = values[i + 1]


@numba.njit(cache=True, nogil=True)
def q_push(s, job):
    """QueueScheduler.admit's queue.append, for every job key in use."""
    _q_make_room(s)
    for k in range(NB_JOB_KEYS):
        if not s.key_used[k]:
            continue
        row = s.qk[k]
        end = s.qk_head[k] + s.q_len
        pos = end if k == JK_FIRST else _q_position(s, k, job)
        for i in range(end, pos, -1):
            row[i] = row[i - 1]
        row[pos] = job
    if s.track_stats:
        for f in range(4):
            _stats_insert(s.qs[f], s.q_len, s.requests[f, job])
    s.q_len += 1


@numba.njit(cache=True, nogil=True)
def q_remove(s, job):
    """Take ``job`` out of the queue (every key's order)."""
    for k in range(NB_JOB_KEYS):
        if not s.key_used[k]:
            continue
        row = s.qk[k]
        head = s.qk_head[k]
        end = head + s.q_len
        pos = _q_position(s, k, job)
        if pos - head < end - pos:  # fewer to move on the left
            for i in range(pos, head, -1):
                row[i] = row[i - 1]
            s.qk_head[k] = head + 1
        else:
            for i in range(pos, end - 1):
                row[i] = row[i + 1]
    if s.track_stats:
        for f in range(4):
            _stats_remove(s.qs[f], s.q_len, s.requests[f, job])
    s.q_len -= 1


@numba.njit(cache=True, nogil=True)
def q_order(s, k):
    """The queue in key ``k``'s order (a view)."""
    h = s.qk_head[k]
    return s.qk[k, h:h + s.q_len]


# ---------------------------------------------------------------------------- resources


@numba.njit(cache=True, nogil=True)
def _push_f8(a, count, value):
    a = grow(a, count + 1)
    a[count] = value
    return a


@numba.njit(cache=True, nogil=True)
def _exp_insert(s, end, job):
    """bisect.insort(QueueScheduler._expected_ends, (end, job))."""
    lo, hi = 0, s.nb_exp
    et, ej = s.exp_t, s.exp_j
    while lo < hi:
        mid = (lo + hi) >> 1
        if et[mid] < end or (et[mid] == end and ej[mid] < job):
            lo = mid + 1
        else:
            hi = mid
    k = s.nb_exp
    if k == s.exp_t.shape[0]:
        s.exp_t = grow(s.exp_t, k + 1)
        s.exp_j = grow(s.exp_j, k + 1)
        et, ej = s.exp_t, s.exp_j
    for i in range(k, lo, -1):
        et[i] = et[i - 1]
        ej[i] = ej[i - 1]
    et[lo] = end
    ej[lo] = job
    s.nb_exp = k + 1
    s.exp_end_of[job] = end


@numba.njit(cache=True, nogil=True)
def _exp_remove(s, job):
    """Drop ``job``'s expected end, if it has one."""
    end = s.exp_end_of[job]
    if np.isnan(end):
        return
    s.exp_end_of[job] = np.nan
    lo, hi = 0, s.nb_exp
    et, ej = s.exp_t, s.exp_j
    while lo < hi:
        mid = (lo + hi) >> 1
        if et[mid] < end or (et[mid] == end and ej[mid] < job):
            lo = mid + 1
        else:
            hi = mid
    for i in range(lo, s.nb_exp - 1):
        et[i] = et[i + 1]
        ej[i] = ej[i + 1]
    s.nb_exp -= 1


@numba.njit(cache=True, nogil=True)
def release(s, job):
    """ResourceModel.release."""
    release_hosts(s, hosts_of(s, job), s.mem_kb[job], s.bw_kbs[job])


@numba.njit(cache=True, nogil=True)
def fit_status(s, job):
    """ResourceModel.fit_status."""
    res = s.res[job]
    if res > s.nb_free:
        return CORE_SHORTAGE
    mem = s.mem_kb[job]
    if mem > 0 and memory_capacity(s.node_free_cores, s.node_free_kb, mem) < res:
        return MEMORY_SHORTAGE
    return FITS


@numba.njit(cache=True, nogil=True)
def try_start(s, job, core_key, record):
    """QueueScheduler._try_start (with ResourceModel.allocate and record_shortage)."""
    count = s.res[job]
    status = CORE_SHORTAGE
    off = s.alloc_off[job]
    if count <= s.nb_free:
        uniforms = s.rng.random(count) if core_key == CK_RANDOM else s.no_uniforms
        status = allocate(s, core_key, count, s.mem_kb[job], s.bw_kbs[job], job, uniforms,
                          s.alloc_buf[off:off + count])
    if status != FITS:
        if record:
            if status == CORE_SHORTAGE:
                s.core_short = _push_f8(s.core_short, s.nb_core_short, s.now)
                s.nb_core_short += 1
            else:
                s.mem_short = _push_f8(s.mem_short, s.nb_mem_short, s.now)
                s.nb_mem_short += 1
        return False
    s.nb_free -= count
    k = s.nb_starts
    if k == s.starts.shape[0]:
        s.starts = grow(s.starts, k + 1)
    s.starts[k] = job
    s.nb_starts = k + 1
    if s.backfill != BF_NONE:
        _exp_insert(s, scheduler_time(s) + s.walltime[job], job)
    return True


@numba.njit(cache=True, nogil=True)
def _undo_start(s, job):
    """QueueScheduler._undo_start."""
    s.nb_starts -= 1
    release(s, job)
    _exp_remove(s, job)


@numba.njit(cache=True, nogil=True)
def admit(s):
    """QueueScheduler.admit: queue or reject the submitted jobs, free the completed ones.
    Returns whether the point calls for a decision."""
    for j in range(s.pt_lo, s.pt_hi):
        if s.ever_fits[j]:
            q_push(s, j)
        else:
            reject(s, j)
    for i in range(s.nb_completed):
        job = s.completed[i]
        release(s, job)
        _exp_remove(s, job)
    return s.pt_hi > s.pt_lo or s.nb_completed > 0


@numba.njit(cache=True, nogil=True)
def _backfill_easy(s, head, candidates, core_key):
    """QueueScheduler._backfill_easy; returns the jobs it started."""
    now = scheduler_time(s)
    needed = s.res[head]
    head_mem = s.mem_kb[head]
    shadow = INF
    available = 0
    extra = 0
    proj_cores = s.node_free_cores[:0]
    proj_kb = s.node_free_kb[:0]
    if head_mem == 0:
        available = s.nb_free
    else:
        proj_cores = s.node_free_cores.copy()
        proj_kb = s.node_free_kb.copy()
    i = 0
    nb_exp = s.nb_exp
    while i < nb_exp:
        end = s.exp_t[i]
        while i < nb_exp and s.exp_t[i] == end:
            ending = s.exp_j[i]
            if head_mem == 0:
                available += s.res[ending]
            else:
                hosts = hosts_of(s, ending)
                mem = s.mem_kb[ending]
                for h in hosts:
                    node = s.core_node[h]
                    proj_cores[node] += 1
                    proj_kb[node] += mem
            i += 1
        if head_mem == 0:
            if available >= needed:
                shadow = end
                extra = available - needed
                break
        elif memory_capacity(proj_cores, proj_kb, head_mem) >= needed:
            shadow = end
            break
    started = np.empty(candidates.shape[0], np.int64)
    nb_started = 0
    for c in range(candidates.shape[0]):
        job = candidates[c]
        if s.nb_free == 0:
            break
        size = s.res[job]
        if size > s.nb_free:
            continue
        ends_in_time = now + s.walltime[job] <= shadow
        if head_mem == 0:
            if ends_in_time:
                if try_start(s, job, core_key, False):
                    started[nb_started] = job
                    nb_started += 1
            elif size <= extra and try_start(s, job, core_key, False):
                extra -= size
                started[nb_started] = job
                nb_started += 1
        elif try_start(s, job, core_key, False):
            if not ends_in_time:
                hosts = hosts_of(s, job)
                mem = s.mem_kb[job]
                for h in hosts:
                    node = s.core_node[h]
                    proj_cores[node] -= 1
                    proj_kb[node] -= mem
                if memory_capacity(proj_cores, proj_kb, head_mem) < needed:
                    for h in hosts:
                        node = s.core_node[h]
                        proj_cores[node] += 1
                        proj_kb[node] += mem
                    _undo_start(s, job)
                    continue
            started[nb_started] = job
            nb_started += 1
    return started[:nb_started]


@numba.njit(cache=True, nogil=True)
def _backfill_conservative(s, head, candidates, core_key):
    """QueueScheduler._backfill_conservative; returns the jobs it started.

    ``head`` (which does not fit now), then ``candidates`` in this order, each get a
    reservation at the earliest time they fit beside the running jobs and the reservations
    before them; a job whose reservation is now starts now (its cores chosen by the core key)
    unless those cores take ones a reservation holds and a re-plan would delay one."""
    count = candidates.shape[0] + 1
    order = np.empty(count, np.int64)
    order[0] = head
    order[1:] = candidates
    # Once no later job is small enough for the free cores, nothing else can start now (and
    # reservations are rebuilt at the next pass): stop there.
    smallest_after = np.empty(count, np.int64)
    smallest = s.res[order[count - 1]]
    for i in range(count - 1, -1, -1):
        smallest = min(smallest, s.res[order[i]])
        smallest_after[i] = smallest
    now = scheduler_time(s)
    cur = 0  # the current profile; 1 - cur is where a re-plan builds its own
    availability.build(s, cur, now)
    reserved = np.empty(count, np.int64)  # jobs given a reservation, in order
    reserved_at = np.empty(count)  # and its time
    replanned_at = np.empty(count)  # a re-plan's times, kept if it succeeds
    nb_reserved = 0
    started = np.empty(count, np.int64)
    nb_started = 0
    for i in range(count):
        if smallest_after[i] > s.nb_free:
            break
        job = order[i]
        size, mem, duration = s.res[job], s.mem_kb[job], s.walltime[job]
        k, _ = availability.earliest(s, cur, size, mem, duration, 0)
        if k == 0:
            if try_start(s, job, core_key, False):
                booked = availability.book_start(s, cur, job, duration)
                if not booked:  # its cores take some a reservation holds: re-plan them
                    booked = _replan(s, 1 - cur, reserved, reserved_at, replanned_at, nb_reserved, now)
                    if booked:
                        cur = 1 - cur
                if booked:
                    started[nb_started] = job
                    nb_started += 1
                    continue
                _undo_start(s, job)
            k, _ = availability.earliest(s, cur, size, mem, duration, 1)
        if k >= 0:
            reserved[nb_reserved] = job
            reserved_at[nb_reserved] = s.cb_t[cur, k]
            nb_reserved += 1
            availability.book(s, cur, k, size, mem, duration)
    return started[:nb_started]


@numba.njit(cache=True, nogil=True)
def _replan(s, p, reserved, reserved_at, replanned_at, nb_reserved, now):
    """QueueScheduler._replan into profile ``p``: the running jobs (the one just started
    included), then the ``nb_reserved`` reservations again, in order. True if none of them
    starts later than before (their new times are then in ``reserved_at`` and ``p`` is the
    pass's profile); False if one would start later or never (the caller keeps its profile)."""
    availability.build(s, p, now)
    for i in range(nb_reserved):
        job = reserved[i]
        size, mem, duration = s.res[job], s.mem_kb[job], s.walltime[job]
        k, _ = availability.earliest(s, p, size, mem, duration, 1)
        if k < 0 or s.cb_t[p, k] > reserved_at[i]:
            return False
        replanned_at[i] = s.cb_t[p, k]
        availability.book(s, p, k, size, mem, duration)
    reserved_at[:nb_reserved] = replanned_at[:nb_reserved]
    return True


@numba.njit(cache=True, nogil=True)
def schedule(s, job_key, core_key):
    """QueueScheduler.schedule: one scheduling pass with the pair; returns the jobs started."""
    s.nb_passes += 1
    length = s.q_len
    if length == 0:
        return 0
    first_start = s.nb_starts
    blocker = -1
    if job_key == JK_RANDOM:  # QueueScheduler._pass_random
        remaining = q_order(s, JK_FIRST).copy()
        nb_rem = length
        while nb_rem > 0:
            i = s.rng.integers(0, nb_rem)
            job = remaining[i]
            if not try_start(s, job, core_key, True):
                blocker = job
                break
            for k in range(i, nb_rem - 1):
                remaining[k] = remaining[k + 1]
            nb_rem -= 1
        rest = np.empty(max(nb_rem - 1, 0), np.int64)
        r = 0
        for k in range(nb_rem):
            if remaining[k] != blocker:
                rest[r] = remaining[k]
                r += 1
    else:
        order = q_order(s, job_key)
        picked = 0
        for i in range(length):
            job = order[i]
            if not try_start(s, job, core_key, True):
                blocker = job
                break
            picked += 1
        rest = np.empty(0, np.int64)
        if blocker >= 0 and s.backfill != BF_NONE:
            rest = order[picked + 1:].copy()
    picks = s.starts[first_start:s.nb_starts]
    for i in range(picks.shape[0]):
        q_remove(s, picks[i])
    started = picks.shape[0]
    if blocker >= 0 and s.backfill != BF_NONE and rest.shape[0] > 0 and s.nb_free > 0:
        if s.backfill == BF_EASY:
            filled = _backfill_easy(s, blocker, rest, core_key)
        else:
            filled = _backfill_conservative(s, blocker, rest, core_key)
        for i in range(filled.shape[0]):
            q_remove(s, filled[i])
        started += filled.shape[0]
    return started


@numba.njit(cache=True, nogil=True)
def _note_flip(s, p):
    k = s.nb_flips
    if k == s.flip_t.shape[0]:
        s.flip_t = grow(s.flip_t, k + 1)
        s.flip_p = grow(s.flip_p, k + 1)
        s.flip_on = grow(s.flip_on, k + 1)
    s.flip_t[k] = s.now
    s.flip_p[k] = p
    s.flip_on[k] = s.throttled[p]
    s.nb_flips = k + 1


@numba.njit(cache=True, nogil=True)
def commit_pstates(s):
    """ResourceModel.commit_pstates."""
    if not s.pstate_rules or s.dirty_count[0] == 0:
        return
    changed, nb_flipped = pstate_targets(
        s.dirty, s.dirty_list, s.dirty_count, s.proc_ptr, s.proc_cores, s.core_job, s.proc_free,
        s.proc_bw_left, s.throttled, s.sent_pstate, s.out_cores, s.out_states, s.flipped)
    for i in range(nb_flipped):
        _note_flip(s, s.flipped[i])
    if changed == 0:
        return
    cores, targets = s.out_cores[:changed], s.out_states[:changed]
    for state in range(4):
        count = 0
        for i in range(changed):
            if targets[i] == state:
                count += 1
        if count == 0:
            continue
        # A fresh array: the p-state rows keep these hosts (set_pstate copies them).
        chosen = np.empty(count, np.int64)
        count = 0
        for i in range(changed):
            if targets[i] == state:
                chosen[count] = cores[i]
                count += 1
        chosen.sort()
        set_pstate(s, chosen, state)
        for c in chosen:
            s.sent_pstate[c] = state


@numba.njit(cache=True, nogil=True)
def commit(s):
    """QueueScheduler.commit: p-state changes, then the pass's starts. Returns how many."""
    commit_pstates(s)
    count = s.nb_starts
    for i in range(count):
        execute(s, s.starts[i])
    s.nb_starts = 0
    return count


@numba.njit(cache=True, nogil=True)
def initial_pstates(s):
    """ResourceModel.initial_pstates."""
    if not s.pstate_rules:
        return
    cores = np.flatnonzero(s.sent_pstate != 3)
    if cores.shape[0]:
        set_pstate(s, cores, 3)
        for c in cores:
            s.sent_pstate[c] = 3


@numba.njit(cache=True, nogil=True)
def run_classic(s, job_key, core_key):
    """run_policy: a fixed pair (and s.backfill's backfilling) from the first event to the last."""
    initial_pstates(s)
    while next_point(s):
        if admit(s) and s.q_len > 0:
            schedule(s, job_key, core_key)
        commit(s)
