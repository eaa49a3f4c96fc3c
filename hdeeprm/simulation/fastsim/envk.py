"""HeteroEnv's step in compiled code: the pass, the simulation up to the next decision, the
reward, the action mask and the observation, in one call.

Each function mirrors a method of ``hdeeprm.rl.env`` (named in its docstring) with the same
floating-point operations in the same order, so that observations, rewards and masks are
bit for bit those of the reference (tests/test_fastpath.py).
"""

from __future__ import annotations

import numba
import numpy as np

from hdeeprm.inputs.workload.model import KIND_DELAY
from hdeeprm.simulation.fastsim.sim import (
    BF_NONE,
    JK_RANDOM,
    NB_JOB_KEYS,
    REJECTED,
    admit,
    commit,
    fit_status,
    initial_pstates,
    next_point,
    np_sum,
    q_order,
    schedule,
)
from hdeeprm.simulation.objectives import HDEEPRM_OBJECTIVES
from hdeeprm.simulation.observations import MINIMAL, NORMAL, PERCENTILES, POWER_FRACTION, SPEED_FRACTION
from hdeeprm.simulation.resources import FITS, memory_capacity

# Objective codes: their index in hdeeprm.simulation.objectives.HDEEPRM_OBJECTIVES (one list, read here).
SLOWDOWN, COMPLETION, UTILIZATION, MAKESPAN, ENERGY, EDP = (
    HDEEPRM_OBJECTIVES.index(name) for name in ("avg_job_slowdown", "avg_job_completion", "avg_utilization",
                                                "makespan", "energy_consumption", "edp"))
QUANTILES = np.array(PERCENTILES) / 100.0


# ---------------------------------------------------------------------------- rewards


@numba.njit(cache=True, nogil=True)
def energy_so_far(s):
    """Engine.energy_so_far."""
    return s.energy + s.total_power * (s.now - s.energy_time)


@numba.njit(cache=True, nogil=True)
def _r_advance(s, now):
    """RewardTracker.advance."""
    dt = now - s.r_time
    if dt > 0:
        s.r_integral += s.r_in_system * dt
        s.r_busy_integral += s.r_busy * dt
        s.r_time = now


@numba.njit(cache=True, nogil=True)
def _r_amount(s, jobs):
    """What RewardTracker.enter / leave add or take for ``jobs``."""
    if s.objective == SLOWDOWN:
        values = np.empty(jobs.shape[0])
        for i in range(jobs.shape[0]):
            values[i] = s.inverse_time[jobs[i]]
        return np_sum(values)
    return float(jobs.shape[0])


@numba.njit(cache=True, nogil=True)
def cost(s):
    """RewardTracker.cost."""
    t = s.r_time
    objective = s.objective
    if objective == SLOWDOWN or objective == COMPLETION:
        return s.r_integral
    if objective == MAKESPAN:
        return t
    if objective == ENERGY:
        return energy_so_far(s)
    if objective == EDP:
        return energy_so_far(s) * t
    if t > 0:
        return -s.r_busy_integral / (s.m * t)
    return 0.0


@numba.njit(cache=True, nogil=True)
def _reward(s):
    """RewardTracker.reward (before reward_scale)."""
    c = cost(s)
    reward = -(c - s.r_cost_at_decision)
    s.r_cost_at_decision = c
    return reward


# ---------------------------------------------------------------------------- stepping


@numba.njit(cache=True, nogil=True)
def env_commit(s):
    """HeteroEnv._commit."""
    first = s.starts[:s.nb_starts].copy()
    count = commit(s)
    if count:
        subtimes = np.empty(count)
        for i in range(count):
            subtimes[i] = s.subtime[first[i]]
        s.env_started += count
        s.env_wait_sum += s.now * count - np_sum(subtimes)
    s.r_busy = s.m - s.nb_free


@numba.njit(cache=True, nogil=True)
def env_advance(s):
    """HeteroEnv._advance: simulate up to the next point that calls for a decision; False
    at the end."""
    while True:
        if not next_point(s):
            _r_advance(s, s.now)
            return False
        _r_advance(s, s.pt_time)
        due = admit(s)
        if s.nb_completed:
            s.r_in_system -= _r_amount(s, s.completed[:s.nb_completed])
            s.env_completed += s.nb_completed
        if s.pt_hi > s.pt_lo:
            admitted = np.empty(s.pt_hi - s.pt_lo, np.int64)
            count = 0
            for j in range(s.pt_lo, s.pt_hi):
                if s.job_state[j] != REJECTED:
                    admitted[count] = j
                    count += 1
            if count:
                s.r_in_system += _r_amount(s, admitted[:count])
        if due and s.q_len > 0:
            s.r_busy = s.m - s.nb_free
            return True
        env_commit(s)


@numba.njit(cache=True, nogil=True)
def env_begin(s):
    """HeteroEnv._start_episode, from the scheduler's on_begin: returns whether the episode
    has a decision to take."""
    initial_pstates(s)
    running = env_advance(s)
    s.r_cost_at_decision = cost(s)
    return running


@numba.njit(cache=True, nogil=True)
def void_would_stall(s):
    """HeteroEnv._void_would_stall."""
    return s.nb_free == s.m and s.nb_unfinished == s.q_len


@numba.njit(cache=True, nogil=True)
def env_step(s, job_key, core_key):
    """HeteroEnv.step up to the reward: apply the pair (job_key < 0: void), simulate to the
    next decision. Returns (terminated, reward before scaling)."""
    if job_key >= 0:
        schedule(s, job_key, core_key)
    env_commit(s)
    s.env_steps += 1
    terminated = not env_advance(s)
    return terminated, _reward(s)


# ---------------------------------------------------------------------------- masks


@numba.njit(cache=True, nogil=True)
def _first_job_fits(s, job_key):
    """HeteroEnv._first_job_fits."""
    if s.q_len == 0:
        return False
    if job_key == JK_RANDOM:
        # Any queued job that fits: fit_status on each, with the memory capacity computed
        # once per distinct memory size (a long queue would otherwise cost queue x nodes).
        queue = q_order(s, 1)
        seen_mem = np.empty(16, np.int64)
        seen_cap = np.empty(16, np.int64)
        nb_seen = 0
        slot = 0
        for i in range(queue.shape[0]):
            job = queue[i]
            res = s.res[job]
            if res > s.nb_free:
                continue
            mem = s.mem_kb[job]
            if mem <= 0:
                return True
            cap = -1
            for k in range(nb_seen):
                if seen_mem[k] == mem:
                    cap = seen_cap[k]
                    break
            if cap < 0:
                cap = memory_capacity(s.node_free_cores, s.node_free_kb, mem)
                seen_mem[slot] = mem
                seen_cap[slot] = cap
                slot = (slot + 1) % 16
                nb_seen = min(nb_seen + 1, 16)
            if cap >= res:
                return True
        return False
    return fit_status(s, q_order(s, job_key)[0]) == FITS


@numba.njit(cache=True, nogil=True)
def action_masks(s, action_job_key, done, out):
    """HeteroEnv.action_masks: ``action_job_key[i]`` is action i's job key (-1: void)."""
    out[:] = True
    if done:
        return
    known = np.zeros(NB_JOB_KEYS, np.bool_)
    fits = np.zeros(NB_JOB_KEYS, np.bool_)
    for i in range(action_job_key.shape[0]):
        k = action_job_key[i]
        if k < 0:
            continue
        if not known[k]:
            known[k] = True
            # With backfilling, another job that fits now may start (HeteroEnv._base_mask).
            fits[k] = _first_job_fits(s, k) or (s.backfill != BF_NONE and _first_job_fits(s, JK_RANDOM))
        out[i] = fits[k]
    if not out.any():
        out[:] = True


# ---------------------------------------------------------------------------- observations


@numba.njit(cache=True, nogil=True)
def _clip(x, lo, hi):
    # np.clip: maximum then minimum, NaN kept.
    if x < lo:
        return lo
    if x > hi:
        return hi
    return x


@numba.njit(cache=True, nogil=True)
def _percentile(values, count, q):
    """np.percentile(values[:count], 100 * q) of sorted values ('linear' method)."""
    virtual = (count - 1) * q
    if virtual >= count - 1:
        return values[count - 1]
    prev = np.floor(virtual)
    i = int(prev)
    a, b = values[i], values[i + 1]
    gamma = virtual - prev
    diff = b - a
    if gamma >= 0.5:
        return b - diff * (1 - gamma)
    return a + diff * gamma


@numba.njit(cache=True, nogil=True)
def observe(s, obs):
    """ObservationBuilder.build into a zeroed float32 array."""
    kind = s.obs_kind
    if kind != MINIMAL:
        for n in range(s.node_slot.shape[0]):
            obs[s.node_slot[n]] = s.node_free_kb[n] / max(s.node_memory_kb[n], 1)
        for p in range(s.proc_slot.shape[0]):
            obs[s.proc_slot[p]] = max(s.proc_bw_left[p], 0) / max(s.proc_bw_kbs[p], 1)
    if kind == NORMAL:
        now = s.now
        for c in range(s.core_slot.shape[0]):
            slot = s.core_slot[c]
            p = s.sent_pstate[c]
            obs[slot] = SPEED_FRACTION[p]
            obs[slot + 1] = POWER_FRACTION[p]
            job = s.core_job[c]
            if job >= 0:  # Engine.work_done, then the remaining fraction
                work = s.work[job]
                if s.kind[job] == KIND_DELAY:
                    done = now - s.start[job]
                elif s.sg:  # the task's remains are the fraction of its work left
                    task = s.task_slot[job]
                    left = s.a_remains[task] if task >= 0 else 0.0
                    done = work - left * work
                else:
                    done = work - (s.remaining[job] - s.rate[job] * (now - s.progress_time[job]))
                done = _clip(done, 0.0, work)
                obs[slot + 2] = _clip(1.0 - done / max(s.req_work[job], 1e-300), 0.0, 1.0)
    base = s.hardware_size
    length = s.q_len
    if length:
        for f in range(4):
            for k in range(5):
                value = _percentile(s.qs[f], length, QUANTILES[k])
                obs[base + 5 * f + k] = _clip(value / s.limits[f], 0.0, 1.0)
    obs[base + 20] = _variation(s, length)


@numba.njit(cache=True, nogil=True)
def _variation(s, length):
    """ObservationBuilder._variation."""
    previous = s.previous_queue
    s.previous_queue = length
    if length == 0:
        return 0.0
    if previous == 0:
        return 1.0
    sens = s.sensitivity
    v = (length - previous) / min(length, previous)
    return _clip((v + sens) / (2 * sens), 0.0, 1.0)


@numba.njit(cache=True, nogil=True)
def env_view(s, action_job_key, done, obs, mask, info):
    """The mask, the observation and the numbers of ``info`` after a reset or a step:
    time, queue length, running jobs, completed jobs, started jobs, summed waiting time,
    energy so far."""
    action_masks(s, action_job_key, done, mask)
    observe(s, obs)
    info[0] = s.now
    info[1] = s.q_len
    info[2] = s.nb_running
    info[3] = s.env_completed
    info[4] = s.env_started
    info[5] = s.env_wait_sum
    info[6] = energy_so_far(s)


@numba.njit(cache=True, nogil=True)
def env_step_view(s, job_key, core_key, truncate_steps, truncate_time, action_job_key, obs, mask, info):
    """env_step, the truncation test and env_view in one call. Returns (terminated,
    truncated, reward before scaling)."""
    terminated, reward = env_step(s, job_key, core_key)
    truncated = False
    if not terminated:
        truncated = (truncate_steps > 0 and s.env_steps >= truncate_steps) or \
            (truncate_time > 0 and s.now >= truncate_time)
    env_view(s, action_job_key, terminated or truncated, obs, mask, info)
    return terminated, truncated, reward

