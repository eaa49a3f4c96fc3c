"""The fast path: whole classic-policy runs and HeteroEnv episodes in compiled code.

The reference implementation (``Engine`` on SimPy, ``ResourceModel``, ``QueueScheduler``,
``HeteroEnv``'s Python internals) stays the readable definition of what a run does; this
package does the same work in numba kernels on one state object, and gives the same outputs
bit for bit (tests/test_fastpath.py compares them on real trace excerpts). It is used:

- by ``run_policy`` when nothing needs a Python hook between decisions: a plain ``Engine``
  that has not started, any key pair, without backfilling or with EASY or conservative
  backfilling, with or without the shutdown policy (``PolicyConfig.shutdown``: machines
  sent to Batsim's sleep p-states and woken through the virtual switch p-states, in
  ``shutdown`` and ``sim``'s "sleep p-states" section) (``fast=False`` forces the reference);
- by ``HeteroEnv`` on the embedded backend (``fast=False`` forces the reference);

with either of the engine's clocks (``SUPPORTED_CLOCKS``): "simgrid" steps SimGrid's
activities with the engine's own kernels (``core.simgrid_steps``) and groups events into
Batsim's messages as the engine does; "exact" keeps an event heap of exact end times.

A fast run's result differs from the reference's only in form: its allocations, energy
rows, p-state rows and bandwidth spans are read-only sequences over flat arrays (built item
by item when read), and ``scheduling_seconds`` is 0 (scheduling and simulation are one
compiled loop). ``run_policy`` leaves the run's counters in ``engine.last_fast_run``.

Compiled code is cached on disk (numba ``cache=True``). numba only checks the source file
of each cached function, not the files of the functions it calls, so this package
fingerprints its own sources and the kernels it calls and drops its cache when they change.
"""

from __future__ import annotations

import hashlib
import math
from pathlib import Path

import numpy as np

from hdeeprm.inputs.platform.sleep import require_sleep_states
from hdeeprm.simulation.engine import (
    QUEUED,
    REJECTED_STATE,
    RUNNING,
    DecisionPoint,
    Engine,
    SimulationResult,
)
from hdeeprm.simulation.fastsim import alloc, availability, envk, shutdown, sim, state
from hdeeprm.simulation.fastsim.results import Allocations, BandwidthSpans, EnergyRows, PStateRows
from hdeeprm.simulation.keys import ALL_JOB_KEYS, job_key_values
from hdeeprm.simulation.resources import _KEY_CODE, ResourceModel
from hdeeprm.simulation.simgrid_steps import SUBMITTER

__all__ = ["FastRun", "alloc", "availability", "envk", "run_policy", "shutdown", "sim", "state", "supports"]

_HERE = Path(__file__).resolve().parent
# This package's modules with compiled code.
_MODULES = ("state", "alloc", "availability", "sim", "envk", "shutdown")
# Modules whose kernels or constants the compiled code embeds.
_DEPENDENCIES = (_HERE.parent / "resources.py", _HERE.parent / "kernels.py",
                 _HERE.parent / "engine.py", _HERE.parent / "simgrid_steps.py",
                 _HERE.parent.parent / "inputs" / "workload" / "model.py",
                 _HERE.parent / "keys.py", _HERE.parent / "objectives.py", _HERE.parent / "observations.py",
                 _HERE.parent.parent / "inputs" / "platform" / "model.py",
                 _HERE.parent.parent / "inputs" / "platform" / "sleep.py")


def _drop_stale_cache() -> None:
    sources = [_HERE / f"{name}.py" for name in _MODULES] + list(_DEPENDENCIES)
    digest = hashlib.sha256(b"".join(p.read_bytes() for p in sources)).hexdigest()
    try:
        cache_dir = Path(sim.run_classic._cache._cache_path)
    except AttributeError:  # numba internals moved: nothing to guard
        return
    stamp = cache_dir / "hdeeprm-fastsim.sources"
    try:
        if stamp.is_file() and stamp.read_text() == digest:
            return
        for path in cache_dir.glob("*.nb[ic]"):
            if path.name.split(".", 1)[0] in _MODULES:
                path.unlink(missing_ok=True)
        cache_dir.mkdir(parents=True, exist_ok=True)
        stamp.write_text(digest)
    except OSError:  # a read-only install: numba then caches elsewhere or not at all
        pass


_drop_stale_cache()

JOB_KEY_ROW = {name: i for i, name in enumerate(ALL_JOB_KEYS)}  # sim.JK_* are rows of this too
# Backfilling modes (PolicyConfig.backfill, EnvConfig.backfill) to s.backfill (sim.BF_*).
BACKFILL_MODE = {None: sim.BF_NONE, "easy": sim.BF_EASY, "conservative": sim.BF_CONSERVATIVE}


def _ever_fits(resources: ResourceModel, jobs) -> np.ndarray:
    """ResourceModel.can_ever_fit for every job at once (one pass per distinct memory size)."""
    res = np.asarray(jobs.res, dtype=np.int64)
    mem = resources.job_mem_kb
    fits = res <= len(resources.core_job)
    cores_per_node = np.bincount(resources.core_node, minlength=len(resources.node_memory_kb))
    needs = mem > 0
    if needs.any():
        values, inverse = np.unique(mem[needs], return_inverse=True)
        capacity = np.empty(len(values), np.int64)
        for lo in range(0, len(values), 256):  # bounded temporaries on large platforms
            chunk = values[lo:lo + 256, None]
            capacity[lo:lo + 256] = np.minimum(cores_per_node, resources.node_memory_kb // chunk).sum(axis=1)
        fits[needs] &= capacity[inverse] >= res[needs]
    return fits


class FastRun:
    """One run's state (a ``state.FastState``) with the Python objects it was made from.

    ``job_keys``: the job keys whose queue order is kept (their passes and ``first_by``);
    ``first`` always is. ``backfill``: None, "easy" or "conservative" (a bool, as this took
    before conservative backfilling was compiled, means EASY or none). ``rng`` draws the
    ``random`` keys, as QueueScheduler's does.
    """

    def __init__(self, engine: Engine, *, job_keys=("first",), core_keys=("first_fit",),
                 backfill: str | bool | None = None, rng: np.random.Generator | None = None,
                 env: dict | None = None, shutdown: float | None = None):
        self.engine = engine
        self.rng = rng if rng is not None else np.random.default_rng(0)
        self.resources = resources = ResourceModel(engine)
        self._initial_pstate_rows = list(engine._pstate_rows)
        jobs, platform = engine.jobs, engine.platform
        n, m = jobs.nb_jobs, platform.nb_machines
        self.nb_jobs, self.nb_machines = n, m
        i8, f8 = np.int64, np.float64

        kv = np.zeros((sim.NB_JOB_KEYS, n))
        key_used = np.zeros(sim.NB_JOB_KEYS, np.bool_)
        for name in set(job_keys) | {"first"}:
            row = JOB_KEY_ROW[name]
            if name != "random":
                key_used[row] = True
                kv[row] = job_key_values(jobs, name)
        res = np.ascontiguousarray(jobs.res, dtype=i8)
        # Each job's slot in alloc_buf holds its machines once it starts. A job asking more
        # than the platform's m machines never starts (it is rejected) and never writes to
        # its slot, so its slot is clipped to m: 50 jobs of 10**9 cores must not allocate
        # 373 GiB. Started jobs have res <= m, so their slots are exactly res long.
        slot = np.minimum(res, m)
        alloc_off = np.zeros(n, i8)
        if n:
            np.cumsum(slot[:-1], out=alloc_off[1:])
        sg = engine._acts is not None  # SimGrid's clock: no submission instants
        groups = (np.asarray(engine._submission_groups, dtype=i8) if n and not sg else np.zeros(1, i8))
        static_key = np.zeros((alloc.NB_CORE_KEYS, resources.nb_processors))
        for code, values in resources._key_args.values():
            static_key[code] = values
        speeds = np.ascontiguousarray(engine._speeds, dtype=f8)
        if not _pristine(engine):
            raise ValueError("the fast path needs an engine that has not started")
        if isinstance(backfill, bool):
            backfill = "easy" if backfill else None
        if backfill not in BACKFILL_MODE:
            raise ValueError(f"backfill {backfill!r}: expected None, 'easy' or 'conservative'")
        nodes = len(resources.node_memory_kb)

        fields = dict(
            n=n, subtime=np.array(jobs.subtime, dtype=f8), res=res.copy(),
            walltime=np.array(jobs.walltime, dtype=f8), kind=np.array(jobs.kind, dtype=i8),
            work=np.array(jobs.work, dtype=f8), mem_kb=np.array(resources.job_mem_kb, dtype=i8),
            bw_kbs=np.array(resources.job_bw_kbs, dtype=i8), ever_fits=_ever_fits(resources, jobs),
            kv=kv, key_used=key_used, groups=groups.copy(), alloc_off=alloc_off,
            m=m, speeds=speeds.copy(), watts_idle=np.array(engine._watts_idle, dtype=f8),
            watts_full=np.array(engine._watts_full, dtype=f8),
            core_processor=resources.core_processor.copy(),
            core_node=np.ascontiguousarray(resources.core_node, dtype=i8),
            proc_ptr=resources.proc_ptr.copy(), proc_cores=resources.proc_cores.copy(),
            proc_node=resources.proc_node.copy(), static_key=static_key,
            node_memory_kb=np.array(resources.node_memory_kb, dtype=i8),
            proc_bw_kbs=np.array(resources.proc_bw_kbs, dtype=i8),
            pstate_rules=bool(resources.pstate_rules), round_decisions=bool(engine._round_decisions),
            record_rows=bool(engine._record_energy_rows), backfill=BACKFILL_MODE[backfill],
            now=0.0, eid=1 if n and not sg else 0, next_group=0 if n and not sg else -1,
            sub_time=float(jobs.subtime[0]) if n and not sg else math.inf, sub_eid=0, h_size=0,
            decision_time_for=float(engine._decision_time_for),
            quirk_pending=bool(engine._quirk_pending), finished=False, nb_unfinished=n,
            eng_nb_free=m, total_power=float(engine._total_power), wattmin=float(engine._wattmin),
            energy=float(engine.energy), energy_time=float(engine._energy_time),
            first_sub_energy=(math.nan if engine._energy_first_submission is None
                              else float(engine._energy_first_submission)),
            last_completion_energy=0.0,
            last_row_time=-math.inf, last_row_energy=0.0, nb_erows=0, nb_prows=0,
            nb_prow_hosts=0, nb_machine_switches=0, nb_grouped_switches=0, nb_order=0, nb_started=0,
            # The engine's own arrays: the run updates them in place.
            job_state=engine.job_state, final_state=engine.final_state, start=engine.start,
            finish=engine.finish, remaining=engine._remaining, rate=engine._rate,
            progress_time=engine._progress_time, epoch=engine._epoch,
            job_energy=engine.job_energy, job_power=engine._job_power,
            job_energy_time=engine._job_energy_time, job_order=np.zeros(n, i8), start_seq=np.zeros(n, i8),
            alloc_buf=np.zeros(int(slot.sum()), i8), busy_job=engine.busy_job,
            pstate=engine.pstate, billed=engine._billed, power=engine.power,
            h_time=np.zeros(64), h_eid=np.zeros(64, i8), h_job=np.zeros(64, i8),
            h_epoch=np.zeros(64, i8), h_final=np.zeros(64, i8),
            er_t=np.zeros(64), er_e=np.zeros(64), er_k=np.zeros(64, np.int8), er_w=np.zeros(64),
            er_p=np.zeros(64), pr_t=np.zeros(16), pr_p=np.zeros(16, np.int8), pr_off=np.zeros(16, i8),
            pr_len=np.zeros(16, i8), pr_hosts=np.zeros(64, np.int32),
            pt_time=0.0, pt_lo=0, pt_hi=0, nb_completed=0, completed=np.zeros(16, i8),
            nb_free=m, q_len=0, nb_starts=0, nb_exp=0, nb_core_short=0, nb_mem_short=0,
            nb_flips=0, nb_points=0, nb_passes=0,
            # The resource model's arrays, likewise.
            core_job=resources.core_job, proc_free=resources.proc_free,
            proc_first_free=np.ascontiguousarray(resources.proc_first_free, dtype=i8),
            node_free_kb=resources.node_free_kb, node_free_cores=resources.node_free_cores,
            proc_bw_left=resources.proc_bw_left, throttled=resources.throttled,
            dirty=resources._dirty, dirty_list=resources._dirty_list,
            dirty_count=resources._dirty_count, sent_pstate=resources.sent_pstate,
            out_cores=resources._out_cores, out_states=resources._out_states,
            flipped=resources._flipped,
            qk=np.zeros((sim.NB_JOB_KEYS, 64), i8), qk_head=np.zeros(sim.NB_JOB_KEYS, i8), starts=np.zeros(16, i8),
            exp_t=np.zeros(16), exp_j=np.zeros(16, i8), exp_end_of=np.full(n, np.nan),
            # No profile rows until a conservative pass needs them (availability.room).
            cb_t=np.zeros((2, 0)), cb_cores=np.zeros((2, 0, nodes), i8), cb_kb=np.zeros((2, 0, nodes), i8),
            cb_rows=np.zeros(2, i8), cb_cap=np.zeros((0, nodes), i8), cb_total=np.zeros(0, i8),
            cb_window=np.zeros(nodes, i8), cb_taken=np.zeros(nodes, i8),
            core_short=np.zeros(16), mem_short=np.zeros(16), flip_t=np.zeros(16),
            flip_p=np.zeros(16, np.int32), flip_on=np.zeros(16, np.bool_), no_uniforms=np.zeros(0),
            rng=self.rng, nb_running=0, ack_pending=False, ack_time=0.0, pt_ack=False,
            ack_points=env is not None, sc_f8=np.zeros(m), sc_a=np.zeros(m, i8), sc_b=np.zeros(m, i8),
        )
        fields.update(_simgrid_fields(engine))
        fields.update(_env_fields(env, n, m, resources))
        fields.update(_tree_fields(core_keys, resources))
        fields.update(_sleep_fields(engine, shutdown))
        self.s = self._build(fields)

    def _build(self, fields: dict):
        missing = set(state.FIELDS) ^ set(fields)
        if missing:
            raise AssertionError(f"fast-path fields out of step: {sorted(missing)}")
        return state.build(*(fields[name] for name in state.FIELDS))

    # ------------------------------------------------------------------ results

    def fields(self) -> dict:
        """Every field's current value (arrays shared with the running state)."""
        return dict(zip(state.FIELDS, state.dump(self.s)))

    def __getstate__(self) -> dict:
        out = dict(self.__dict__)
        out["s"] = state.dump(self.s)  # arrays shared with the engine stay shared in one pickle
        return out

    def __setstate__(self, saved: dict) -> None:
        self.__dict__.update(saved)
        self.s = state.build(*saved["s"])

    def unfinished(self) -> int:
        return int(self.fields()["nb_unfinished"])

    def finish_engine(self) -> SimulationResult:
        """Write the run back into its Engine and return the engine's result, with the
        over-utilisation records."""
        f = self.sync_engine()
        result = self.engine.result()
        result.overutilization = self.overutilization(f)
        return result

    def sync_engine(self) -> dict:
        """Bring the Engine's attributes up to date with the run (its arrays are shared
        already); returns the fields."""
        f = self.fields()
        engine = self.engine
        engine.nb_unfinished = int(f["nb_unfinished"])
        engine.nb_free = int(f["eng_nb_free"])
        engine._total_power = float(f["total_power"])
        engine._wattmin = float(f["wattmin"])
        engine.energy = float(f["energy"])
        engine._energy_time = float(f["energy_time"])
        first = float(f["first_sub_energy"])
        engine._energy_first_submission = None if math.isnan(first) else first
        engine._energy_last_completion = float(f["last_completion_energy"])
        engine._last_row_time = float(f["last_row_time"])
        engine._last_row_energy = float(f["last_row_energy"])
        engine.nb_machine_switches = int(f["nb_machine_switches"])
        engine.nb_grouped_switches = int(f["nb_grouped_switches"])
        engine._quirk_pending = bool(f["quirk_pending"])
        engine._finished = bool(f["finished"])
        engine._decision_time_for = float(f["decision_time_for"])
        engine._job_order = f["job_order"][:int(f["nb_order"])].tolist()
        engine._start_order = f["start_seq"][:int(f["nb_started"])].tolist()
        started = (engine.final_state != 0) & (engine.final_state != REJECTED_STATE)
        engine.alloc = Allocations(f["alloc_buf"], f["alloc_off"], f["res"], started)
        engine._running = {int(j) for j in np.flatnonzero(engine.job_state == RUNNING)}
        engine._energy_rows = (EnergyRows(f["er_t"], f["er_e"], f["er_k"], f["er_w"], f["er_p"],
                                          int(f["nb_erows"])) if engine._record_energy_rows else [])
        engine._pstate_rows = PStateRows(self._initial_pstate_rows, f["pr_t"], f["pr_p"], f["pr_off"],
                                         f["pr_len"], f["pr_hosts"], int(f["nb_prows"]), bool(f["pr_single"]))
        engine._clock.discard_all()
        engine._clock.set_now(float(f["now"]))
        if engine._acts is not None:
            _sync_simgrid(engine, f)
        if engine._sleep is not None:
            _sync_sleep(engine, f)
        return f

    def overutilization(self, f: dict | None = None):
        """The run's records as the reference's ``Overutilization``."""
        f = f or self.fields()
        records = self.resources.records
        records.core_shortages = f["core_short"][:int(f["nb_core_short"])].tolist()
        records.memory_shortages = f["mem_short"][:int(f["nb_mem_short"])].tolist()
        # Per processor, over-subscription starts and ends alternate. The mapping keeps the
        # reference's order (processors by first start), which the summary's float sum follows.
        k = int(f["nb_flips"])
        procs, times = f["flip_p"][:k], f["flip_t"][:k]
        order = np.argsort(procs, kind="stable")
        procs, times = procs[order], times[order]
        cuts = np.flatnonzero(np.diff(procs)) + 1
        firsts = np.concatenate(([0], cuts)) if k else np.zeros(0, np.int64)
        bounds = np.concatenate((firsts, [k]))
        by_first_start = np.argsort(order[firsts], kind="stable")
        spans = BandwidthSpans(procs[firsts[by_first_start]].tolist(), times,
                               bounds[by_first_start], bounds[by_first_start + 1])
        records.bandwidth_spans = spans
        return records

    def counters(self) -> dict:
        f = self.fields()
        return {"decision_points": int(f["nb_points"]), "passes": int(f["nb_passes"])}


def _simgrid_fields(engine: Engine) -> dict:
    """SimGrid's activities and Batsim's message state (``Engine`` clock="simgrid"), copied
    from a pristine engine (its job submitter's first round, at t=0, has run); placeholders
    with the exact clock."""
    i8 = np.int64
    acts = engine._acts
    if acts is None:
        n = engine.jobs.nb_jobs
        return dict(
            sg=False, a_count=0, a_nb_alive=0, a_is_task=np.zeros(0, np.bool_), a_remains=np.zeros(0),
            a_rate=np.zeros(0), a_duration=np.zeros(0), a_alive=np.zeros(0, np.bool_),
            a_kind=np.zeros(0, np.int8), a_owner=np.zeros(0, i8), a_done=np.zeros(0, i8),
            task_slot=np.full(n, -1, i8), timeout_slot=np.full(n, -1, i8), pd_lo=0, pd_nb_completed=0,
            pd_completed=np.zeros(0, i8), pd_calls=0, pd_acks=0, pd_nomore=False, sg_ready=True,
            reply_due=False, notify=0, last_sub=False, sub_upto=0, woken_by_job=False,
        )
    pending = engine._pending
    return dict(
        sg=True, a_count=int(acts.count), a_nb_alive=int(acts.nb_alive), a_is_task=acts.is_task.copy(),
        a_remains=acts.remains.copy(), a_rate=acts.rate.copy(), a_duration=acts.duration.copy(),
        a_alive=acts.alive.copy(), a_kind=acts.kind.copy(), a_owner=acts.owner.copy(),
        a_done=np.zeros(acts.is_task.shape[0], i8), task_slot=engine._task_slot,
        timeout_slot=engine._timeout_slot, pd_lo=0, pd_nb_completed=0, pd_completed=np.zeros(16, i8),
        pd_calls=int(pending.requested_calls), pd_acks=len(pending.pstate_changes),
        pd_nomore=bool(pending.no_more_submissions), sg_ready=bool(engine._ready),
        reply_due=bool(engine._reply_due), notify=int(engine._notify),
        last_sub=bool(engine._last_event_submission), sub_upto=int(engine._submitted_up_to[0]),
        woken_by_job=bool(engine._woken_by_job[0]),
    )


def _sync_simgrid(engine: Engine, f: dict) -> None:
    """Write SimGrid's activities and Batsim's message state back into the engine (the slot
    arrays are shared). The p-state acknowledgements not sent yet, if any, are not restored
    (a run ends with none)."""
    acts = engine._acts
    for name in ("is_task", "remains", "rate", "duration", "alive", "kind", "owner"):
        setattr(acts, name, f["a_" + name])
    # The compiled path has one job submitter, whose sleeps it marks with owner -1; the engine's
    # submitters are numbered from 0.
    acts.owner[(acts.kind == SUBMITTER) & (acts.owner < 0)] = 0
    acts.done = np.empty(f["a_is_task"].shape[0], np.int64)
    acts.count, acts.nb_alive = int(f["a_count"]), int(f["a_nb_alive"])
    pending = DecisionPoint(float(f["now"]))
    pending.submitted = list(range(int(f["pd_lo"]), int(f["sub_upto"])))
    pending.completed = f["pd_completed"][:int(f["pd_nb_completed"])].tolist()
    pending.requested_calls = int(f["pd_calls"])
    pending.no_more_submissions = bool(f["pd_nomore"])
    engine._pending = pending
    engine._ready = bool(f["sg_ready"])
    engine._reply_due = bool(f["reply_due"])
    engine._notify = int(f["notify"])
    engine._last_event_submission = bool(f["last_sub"])
    engine._submitted_up_to = [int(f["sub_upto"])]
    engine._woken_by_job = [bool(f["woken_by_job"])]
    engine._submitters_left = int(engine._submitted_up_to[0] < engine.jobs.nb_jobs)


def _sleep_fields(engine: Engine, idle_s: float | None) -> dict:
    """Batsim's sleep p-states (the engine's own machine-state arrays, shared) and the shutdown
    policy's state (``idle_s``: PolicyConfig.shutdown; None: no policy). Placeholders on
    platforms without sleep p-states."""
    i8 = np.int64
    m = engine.nb_machines
    table = engine._sleep
    out = dict(
        sleep=table is not None, nb_srows=0, nb_groups=0, slept=False, tracer_read_at=float(engine._tracer_read_at),
        nb_held=0, since_reply=0, nb_pt_groups=0, nb_pd_groups=0, pt_calls=0, pr_single=idle_s is not None,
        sr_t=np.zeros(16), sr_c=np.zeros(80, i8), grp_row=np.zeros(16, i8), grp_p=np.zeros(16, i8),
        grp_left=np.zeros(16, i8), pt_groups=np.zeros(16, i8), pd_groups=np.zeros(16, i8),
        held=np.zeros(m, i8), sw_list=np.zeros(m, i8), sw_touched=np.zeros(m, np.bool_), m_group=np.full(m, -1, i8),
        shutdown=idle_s is not None, idle_s=0.0 if idle_s is None else float(idle_s), mode=np.zeros(m, np.int8),
        idle_since=np.zeros(m), sleep_pstate=np.full(m, -1, i8),
        awake_pstate=np.ascontiguousarray(engine.platform.initial_pstate, dtype=i8).copy(),
        calls=np.zeros(16), calls_lo=0, nb_calls=0,
    )
    if table is None:
        if idle_s is not None:
            require_sleep_states(engine.platform, "shutdown policy")  # its ConfigError
        out.update(sl_kind=np.zeros((m, 1), i8), sl_off=np.zeros((m, 1), i8), sl_on=np.zeros((m, 1), i8),
                   mstate=np.zeros(m, np.int8), mstate_since=np.zeros(m), state_time=np.zeros(5),
                   state_count=np.zeros(5, i8), switch_target=np.full(m, -1, i8))
        return out
    if idle_s is not None:
        table = require_sleep_states(engine.platform, "shutdown policy")
        out["sleep_pstate"] = table.first_sleep_pstate()
    width = engine._speeds.shape[1]  # the table and the power arrays may differ in width

    def widen(a):
        b = np.full((m, max(width, a.shape[1])), -1, i8)
        b[:, :a.shape[1]] = a
        return b

    out.update(sl_kind=widen(table.kind), sl_off=widen(table.switch_off), sl_on=widen(table.switch_on),
               mstate=engine._mstate, mstate_since=engine._mstate_since, state_time=engine._state_time,
               state_count=engine._state_count, switch_target=engine._switch_target)
    return out


def _sync_sleep(engine: Engine, f: dict) -> None:
    """The engine's sleep bookkeeping (its machine-state arrays are shared): rows, groups."""
    k = int(f["nb_srows"])
    counts = f["sr_c"][:5 * k].reshape(k, 5).tolist()
    engine._state_rows = [(t, *c) for t, c in zip(f["sr_t"][:k].tolist(), counts)]
    engine._slept = bool(f["slept"])
    engine._tracer_read_at = float(f["tracer_read_at"])
    engine._switch_groups = []  # a finished run has none open
    if engine._acts is not None:
        engine._held_reports = f["held"][:int(f["nb_held"])].tolist()
        engine._decisions_since_reply = int(f["since_reply"])


def _env_fields(env: dict | None, n: int, m: int, resources: ResourceModel) -> dict:
    """HeteroEnv's observation and reward state (placeholders for classic runs). ``env``
    gives obs_kind, hardware_size, node_slot, proc_slot, core_slot, limits, sensitivity,
    requests, req_work, objective and inverse_time."""
    i8 = np.int64
    out = dict(
        track_stats=False, qs=np.zeros((4, 64)), requests=np.zeros((4, 0)), req_work=np.zeros(0),
        obs_kind=2, hardware_size=0, node_slot=np.zeros(0, i8), proc_slot=np.zeros(0, i8),
        core_slot=np.zeros(0, i8), limits=np.ones(4), sensitivity=1.0, previous_queue=0,
        objective=0, inverse_time=np.zeros(0), r_time=0.0, r_in_system=0.0, r_busy=0,
        r_busy_integral=0.0, r_integral=0.0, r_cost_at_decision=0.0, env_steps=0,
        env_completed=0, env_started=0, env_wait_sum=0.0,
    )
    if env is not None:
        out.update(
            track_stats=True, obs_kind=int(env["obs_kind"]), hardware_size=int(env["hardware_size"]),
            requests=np.ascontiguousarray(env["requests"], dtype=np.float64),
            req_work=np.ascontiguousarray(env["req_work"], dtype=np.float64),
            node_slot=np.ascontiguousarray(env["node_slot"], dtype=i8),
            proc_slot=np.ascontiguousarray(env["proc_slot"], dtype=i8),
            core_slot=np.ascontiguousarray(env["core_slot"], dtype=i8),
            limits=np.ascontiguousarray(env["limits"], dtype=np.float64),
            sensitivity=float(env["sensitivity"]), objective=int(env["objective"]),
            inverse_time=np.ascontiguousarray(env["inverse_time"], dtype=np.float64),
        )
    return out


def _tree_fields(core_keys, resources: ResourceModel) -> dict:
    """The core-key search trees (hdeeprm.simulation.fastsim.alloc), every processor marked for the
    first refresh."""
    i8 = np.int64
    nproc = resources.nb_processors
    size = 1
    while size < nproc:
        size *= 2
    used = np.zeros(alloc.NB_TREES, np.bool_)
    for name in core_keys:
        code = _KEY_CODE[name]
        if name != "first_fit":
            used[alloc.SHARED] = True
            if name != "random":
                used[code] = True
    dcount = np.where(used, nproc, 0).astype(i8)
    nodes = len(resources.node_memory_kb)
    order = np.argsort(resources.proc_node, kind="stable").astype(i8)
    node_proc_ptr = np.searchsorted(resources.proc_node[order], np.arange(nodes + 1)).astype(i8)
    keys = alloc.NB_CORE_KEYS
    return dict(
        ff_hint=0, tr_any=bool(used.any()), tr_used=used, tr_size=size,
        tr_key=np.full((keys, 2 * size), np.inf), tr_core=np.full((keys, 2 * size), alloc.BIG, i8),
        tr_proc=np.full((keys, 2 * size), -1, i8), tr_maxkb=np.full(2 * size, -1, i8),
        tr_minkb=np.full(2 * size, alloc.BIG, i8), tr_sum=np.zeros(2 * size, i8),
        tr_dirty=np.repeat(used[:, None], nproc, axis=1),
        tr_dlist=np.tile(np.arange(nproc, dtype=i8), (alloc.NB_TREES, 1)), tr_dcount=dcount,
        tr_stack=np.zeros(256, i8), node_proc_ptr=node_proc_ptr, node_procs=order,
    )


def _pristine(engine: Engine) -> bool:
    """No event processed and no decision taken yet (with SimGrid's clock, the job
    submitter's first round at t=0, which the constructor runs, may have submitted jobs)."""
    if engine._acts is not None:
        if len(engine._submitter_ranges) != 1:  # the compiled path has one job submitter
            return False
        pending, upto = engine._pending, engine._submitted_up_to[0]
        return (engine.now == 0.0 and engine.nb_machine_switches == 0 and engine._ready
                and not engine._reply_due and engine._acts.count <= 1 and not pending.completed
                and not pending.requested_calls and not pending.pstate_changes
                and pending.submitted == list(range(upto)) and bool((engine.job_state[:upto] == QUEUED).all())
                and not engine.job_state[upto:].any() and engine.energy == 0.0)
    return (engine.now == 0.0 and engine.nb_machine_switches == 0 and not engine.job_state.any()
            and engine._clock.nb_scheduled() == (1 if engine.jobs.nb_jobs else 0))


# The engine's clocks (Engine(..., clock=...)) the compiled path reproduces.
SUPPORTED_CLOCKS = ("exact", "simgrid")


def compiled_on_disk(parts: tuple[str, ...] = ("classic", "env")) -> bool:
    """Whether numba's on-disk cache holds the compiled runs of ``parts`` ("classic": whole
    classic-policy runs; "shutdown": those with the shutdown policy, which ``hdeeprm compile
    classic`` builds too; "env": HeteroEnv episodes). False on a machine's first run: the
    first call then compiles them, once, for a minute or two. True when it cannot tell
    (numba's cache layout changed)."""
    kernels = {"classic": (sim.run_classic,), "shutdown": (shutdown.run_shutdown,), "env": (envk.env_advance,)}
    try:
        return all(Path(kernel._cache._cache_file._index_path).is_file() for part in parts for kernel in kernels[part])
    except AttributeError:
        return True


def supports_clock(clock: str) -> bool:
    return clock in SUPPORTED_CLOCKS


def supports(engine, config) -> bool:
    """Whether ``run_policy(engine, config)`` can take the fast path: a plain Engine (not a
    subclass, whose overrides are hooks) that has not started yet (any platform, any shutdown
    policy)."""
    return type(engine) is Engine and supports_clock(engine.clock) and _pristine(engine)


def run_policy(engine: Engine, config, rng: np.random.Generator | None = None) -> SimulationResult:
    """``hdeeprm.simulation.policies.run_policy`` in one compiled call (see the module docstring)."""
    idle_s = getattr(config, "shutdown", None)
    run = FastRun(engine, job_keys=(config.job_key,), core_keys=(config.core_key,),
                  backfill=config.backfill, rng=rng, shutdown=idle_s)
    if idle_s is None:
        sim.run_classic(run.s, JOB_KEY_ROW[config.job_key], _KEY_CODE[config.core_key])
    else:  # policies.ShutdownScheduler
        shutdown.run_shutdown(run.s, JOB_KEY_ROW[config.job_key], _KEY_CODE[config.core_key])
    result = run.finish_engine()
    engine.last_fast_run = run.counters()
    return result

