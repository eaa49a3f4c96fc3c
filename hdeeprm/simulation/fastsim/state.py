"""The fast path's state: one numba StructRef holding every array and counter of a run.

A StructRef is passed to compiled functions as one pointer, so a call costs well under a
microsecond whatever the number of fields (a tuple of ~130 arrays would cost several).
Python keeps the field values as a tuple (``dump``) for results and pickling; ``build``
makes the StructRef again from such a tuple. Arrays are shared, not copied, both ways.

The fields mirror the reference objects: ``Engine`` (clock, events, energy, job state),
``ResourceModel`` (cores, memory, bandwidth, p-states) and ``QueueScheduler`` (queue,
expected ends, conservative backfilling's availability profiles), plus HeteroEnv's
observation and reward state. Sizes in brackets: n jobs, m machines (cores), nproc
processors, nnodes nodes, J job keys (rows of ``keys.ALL_JOB_KEYS``), C core keys (codes of
``resources._KEY_CODE``), R profile rows; [] and R grow as needed.

FIELDS is the one declaration of the fields and their order (the StructRef's layout):
``build``'s parameters and ``dump``'s tuple are generated from it. A new field goes into
FIELDS, with its comment, and gets its initial value in ``FastRun`` (which builds the values
by name and checks the names against FIELDS).
"""

from __future__ import annotations

import keyword
import sys

import numba
from numba.core import types
from numba.experimental import structref

FIELDS = (
    "n",  # jobs
    "subtime",  # f8[n] submit times
    "res",  # i8[n] cores requested
    "walltime",  # f8[n] s, inf when unlimited
    "kind",  # i8[n] KIND_DELAY or KIND_PARALLEL_HOMOGENEOUS
    "work",  # f8[n] delay s, or flops per core
    "mem_kb",  # i8[n] memory per core (kB; 0 on flat platforms)
    "bw_kbs",  # i8[n] memory bandwidth per core (kB/s; 0 on flat platforms)
    "ever_fits",  # b1[n] the empty platform could hold the job (else it is rejected)
    "kv",  # f8[J, n] sort value per job key ('first' = index)
    "key_used",  # b1[J] job keys whose queue order is maintained
    "groups",  # i8[G+1] first job of each submission instant
    "alloc_off",  # i8[n] where each job's cores start in alloc_buf
    "m",  # machines (cores)
    "speeds",  # f8[m, P] flop/s per p-state
    "watts_idle",  # f8[m, P]
    "watts_full",  # f8[m, P]
    "core_processor",  # i8[m]
    "core_node",  # i8[m]
    "proc_ptr",  # i8[nproc+1]
    "proc_cores",  # i8[m] cores grouped by processor
    "proc_node",  # i8[nproc]
    "static_key",  # f8[C, nproc] per core key: the fixed sort value of each processor (or 0)
    "node_memory_kb",  # i8[nnodes]
    "proc_bw_kbs",  # i8[nproc]
    "pstate_rules",  # bool: HDeepRM p-state rules (platform with a hierarchy)
    "round_decisions",  # bool: Batsim's 6-decimal decision times
    "record_rows",  # bool: keep out_consumed_energy rows
    "backfill",  # i8 backfilling mode: sim.BF_NONE, BF_EASY or BF_CONSERVATIVE
    "now",  # f8 simulated time
    "eid",  # i8 next event id (ties between same-time events)
    "next_group",  # i8 pending submission instant (-1: none left)
    "sub_time",  # f8 its time
    "sub_eid",  # i8 its event id
    "h_size",  # i8 events in the heap (stale ones included)
    "decision_time_for",  # f8 instant whose decision time was fixed
    "quirk_pending",  # bool: SimGrid energy-plugin start-up quirk still to apply
    "finished",  # bool
    "nb_unfinished",  # i8
    "eng_nb_free",  # i8 free machines (engine view)
    "total_power",  # f8 W
    "wattmin",  # f8 W
    "energy",  # f8 J since t=0
    "energy_time",  # f8 time energy was integrated to
    "first_sub_energy",  # f8 energy at the first submission (nan: none yet)
    "last_completion_energy",  # f8
    "last_row_time",  # f8
    "last_row_energy",  # f8
    "nb_erows",  # i8
    "nb_prows",  # i8 p-state switches
    "nb_prow_hosts",  # i8
    "nb_machine_switches",  # i8
    "nb_grouped_switches",  # i8
    "nb_order",  # i8
    "nb_started",  # i8
    "job_state",  # i1[n]
    "final_state",  # i1[n]
    "start",  # f8[n]
    "finish",  # f8[n]
    "remaining",  # f8[n]
    "rate",  # f8[n]
    "progress_time",  # f8[n]
    "epoch",  # i8[n]
    "job_energy",  # f8[n]
    "job_power",  # f8[n]
    "job_energy_time",  # f8[n]
    "job_order",  # i8[n] completion / rejection order
    "start_seq",  # i8[n] jobs in the order they started
    "alloc_buf",  # i8[sum res] cores of every started job
    "busy_job",  # i8[m] engine view: job per machine, -1 idle
    "pstate",  # i8[m]
    "billed",  # i8[m]
    "power",  # f8[m]
    "h_time",  # f8[] event heap: time
    "h_eid",  # i8[]
    "h_job",  # i8[]
    "h_epoch",  # i8[]
    "h_final",  # i8[]
    "er_t",  # f8[] energy rows
    "er_e",  # f8[]
    "er_k",  # i1[]
    "er_w",  # f8[]
    "er_p",  # f8[] (nan: NA)
    "pr_t",  # f8[] p-state switches (each gives two rows: -1, then the p-state)
    "pr_p",  # i1[]
    "pr_off",  # i8[] where its hosts start in pr_hosts
    "pr_len",  # i8[]
    "pr_hosts",  # i4[] (int32 halves the largest record of a long run)
    "pt_time",  # f8 the current decision point
    "pt_lo",  # i8 submitted jobs pt_lo..pt_hi-1
    "pt_hi",  # i8
    "nb_completed",  # i8
    "completed",  # i8[] completed at the point, in event order
    "nb_free",  # i8 free cores (scheduler view, includes this pass's picks)
    "q_len",  # i8
    "nb_starts",  # i8
    "nb_exp",  # i8
    "nb_core_short",  # i8
    "nb_mem_short",  # i8
    "nb_flips",  # i8
    "nb_points",  # i8
    "nb_passes",  # i8
    "core_job",  # i8[m] scheduler view
    "proc_free",  # i8[nproc]
    "proc_first_free",  # i8[nproc]
    "node_free_kb",  # i8[nnodes]
    "node_free_cores",  # i8[nnodes]
    "proc_bw_left",  # i8[nproc]
    "throttled",  # b1[nproc]
    "dirty",  # b1[nproc]
    "dirty_list",  # i8[nproc]
    "dirty_count",  # i8[1]
    "sent_pstate",  # i8[m]
    "out_cores",  # i8[m]
    "out_states",  # i8[m]
    "flipped",  # i8[nproc]
    "qk",  # i8[J, cap] queue per job key, by (value, index), in qk_head[k]..+q_len
    "qk_head",  # i8[J]
    "starts",  # i8[] jobs picked by the pass, to start at commit
    "exp_t",  # f8[] running jobs by expected end (EASY, conservative): time
    "exp_j",  # i8[] and job
    "exp_end_of",  # f8[n] (nan: none)
    "cb_t",  # f8[2, R] conservative backfilling's two availability profiles (fastsim.availability): row times
    "cb_cores",  # i8[2, R, nnodes] free cores per node from each row's time
    "cb_kb",  # i8[2, R, nnodes] free memory (kB) per node
    "cb_rows",  # i8[2] rows in use
    "cb_cap",  # i8[R, nnodes] scratch: the cores each node can give a job, per row
    "cb_total",  # i8[R] scratch: their sum per row
    "cb_window",  # i8[nnodes] the cores per node of the last spot found (availability.earliest)
    "cb_taken",  # i8[nnodes] scratch: a started job's cores per node
    "core_short",  # f8[]
    "mem_short",  # f8[]
    "flip_t",  # f8[]
    "flip_p",  # i4[]
    "flip_on",  # b1[]
    "no_uniforms",  # f8[0]
    "rng",  # numpy Generator (random keys)
    "nb_running",  # i8 running jobs (engine view)
    "ack_pending",  # bool: a p-state acknowledgement is due (Batsim sends it at once)
    "ack_time",  # f8 its time (the decision's)
    "pt_ack",  # bool: the current point holds an acknowledgement
    "ack_points",  # bool: acknowledgements make decision points (for HeteroEnv's rewards)
    "sc_f8",  # f8[m] scratch
    "sc_a",  # i8[m] scratch
    "sc_b",  # i8[m] scratch
    # Batsim's sleep p-states (Engine's "sleep p-states" section), on platforms that declare them.
    "sleep",  # bool: the platform declares sleep p-states (machine states are tracked)
    "sl_kind",  # i8[m, P] sleep.COMPUTATION, SLEEP or VIRTUAL per p-state (-1 beyond a host's)
    "sl_off",  # i8[m, P] a sleep p-state's switch-off virtual p-state
    "sl_on",  # i8[m, P] and its switch-on one
    "mstate",  # i1[m] engine.M_* (the engine's _mstate)
    "mstate_since",  # f8[m]
    "state_time",  # f8[5] seconds per machine state, counted at each change
    "state_count",  # i8[5] machines per state
    "sr_t",  # f8[] machine-state rows: time
    "sr_c",  # i8[] and five counts per row (sleeping, switching on, switching off, idle, computing)
    "nb_srows",  # i8
    "switch_target",  # i8[m] p-state a switching machine goes to (-1: none)
    "m_group",  # i8[m] the switch group (request) of a switching machine
    "grp_row",  # i8[] per switch group: its request's p-state record
    "grp_p",  # i8[] its target p-state
    "grp_left",  # i8[] its machines still switching
    "nb_groups",  # i8
    "slept",  # bool: some machine slept or switched
    "tracer_read_at",  # f8 when Batsim's tracer last read every machine's energy
    "held",  # i8[m] switches Batsim's server learns of after the reply's first decision
    "nb_held",  # i8
    "since_reply",  # i8 decisions since the reply that held them
    "pt_groups",  # i8[] switch groups acknowledged at the current point
    "nb_pt_groups",  # i8
    "pd_groups",  # i8[] and in Batsim's pending message (SimGrid clock)
    "nb_pd_groups",  # i8
    "pt_calls",  # i8 requested calls at the current point (exact clock)
    "pr_single",  # bool: each p-state record is one row (its own p-state; -1 / -2 for requests)
    "sw_list",  # i8[m] scratch: the switches that end in a SimGrid step
    "sw_touched",  # b1[m] scratch
    # The shutdown policy (policies.ShutdownScheduler).
    "shutdown",  # bool
    "idle_s",  # f8 idle seconds before a machine is sent to sleep
    "mode",  # i1[m] policies._AWAKE, _SWITCHING_OFF, _ASLEEP, _SWITCHING_ON
    "idle_since",  # f8[m]
    "sleep_pstate",  # i8[m] first sleep p-state (-1: none)
    "awake_pstate",  # i8[m] p-state a machine wakes to (the platform's initial one)
    "calls",  # f8[] CALL_ME_LATER times asked, sorted, live from calls_lo (earlier ones are past)
    "calls_lo",  # i8
    "nb_calls",  # i8
    "ff_hint",  # i8 no free core below this id (first_fit's sweep starts here)
    "tr_any",  # bool: some core-key tree is in use
    "tr_used",  # b1[C+1] trees in use: per core key code, then the shared one
    "tr_size",  # i8 leaves per tree (a power of two >= nproc)
    "tr_key",  # f8[C, 2 size] per core key: key value of the best processor below each node
    "tr_core",  # i8[C, 2 size] its lowest free core
    "tr_proc",  # i8[C, 2 size] and the processor (-1: none)
    "tr_maxkb",  # i8[2 size] most free memory of a node with a free core below (-1: none)
    "tr_minkb",  # i8[2 size] least such (BIG: none)
    "tr_sum",  # i8[2 size] free cores below
    "tr_dirty",  # b1[C+1, nproc] processors changed since the tree's last refresh
    "tr_dlist",  # i8[C+1, nproc]
    "tr_dcount",  # i8[C+1]
    "tr_stack",  # i8[256] search stack
    "node_proc_ptr",  # i8[nnodes+1] processors of node n: node_procs[ptr[n]:ptr[n+1]]
    "node_procs",  # i8[nproc]
    "track_stats",  # bool: keep the queued jobs' requests sorted (HeteroEnv's observations)
    "qs",  # f8[4, cap] the queued jobs' requests per feature, sorted, in [0, q_len)
    "requests",  # f8[4, n] requested time, cores, memory, bandwidth per job
    "req_work",  # f8[n]
    "obs_kind",  # i8 0 normal, 1 small, 2 minimal
    "hardware_size",  # i8
    "node_slot",  # i8[nnodes]
    "proc_slot",  # i8[nproc]
    "core_slot",  # i8[m]
    "limits",  # f8[4]
    "sensitivity",  # f8
    "previous_queue",  # i8
    "objective",  # i8 index in OBJECTIVES
    "inverse_time",  # f8[n]
    "r_time",  # f8 RewardTracker.time
    "r_in_system",  # f8
    "r_busy",  # i8
    "r_busy_integral",  # f8
    "r_integral",  # f8
    "r_cost_at_decision",  # f8
    "env_steps",  # i8
    "env_completed",  # i8
    "env_started",  # i8
    "env_wait_sum",  # f8
    "sg",  # bool: SimGrid's clock (Engine clock='simgrid'), else the exact one
    "a_count",  # i8 SimGrid activities in the list, dead ones included (Activities.count)
    "a_nb_alive",  # i8 alive ones (Activities.nb_alive)
    "a_is_task",  # b1[] activities in creation order (core.simgrid_steps.Activities)
    "a_remains",  # f8[]
    "a_rate",  # f8[]
    "a_duration",  # f8[]
    "a_alive",  # b1[]
    "a_kind",  # i1[]
    "a_owner",  # i8[]
    "a_done",  # i8[] slots ended by the last step
    "task_slot",  # i8[n] a job's task, delay or kill sleep (-1: none)
    "timeout_slot",  # i8[n] a parallel job's walltime sleep (-1: none)
    "pd_lo",  # i8 first submitted job not sent yet (Batsim's server holds pd_lo..sub_upto-1)
    "pd_nb_completed",  # i8
    "pd_completed",  # i8[] completions not sent yet, in event order
    "pd_calls",  # i8 requested calls not sent yet
    "pd_acks",  # i8 p-state acknowledgements not sent yet
    "pd_nomore",  # bool: 'no more jobs to submit' not sent yet
    "sg_ready",  # bool: the scheduler is not busy with a message
    "reply_due",  # bool: a message was handed out and not answered yet
    "notify",  # i8 where 'no more jobs to submit' goes: 0 nowhere yet, 1 after the next message, 2 next
    "last_sub",  # bool: the step's last event so far is a submission
    "sub_upto",  # i8 jobs [0, this) are submitted
    "woken_by_job",  # bool: the submitter slept until the next job's submit time
)


@structref.register
class FastStateType(types.StructRef):
    def preprocess_fields(self, fields):
        return tuple((name, types.unliteral(typ)) for name, typ in fields)


class FastState(structref.StructRefProxy):
    """The StructRef as Python sees it (used only to pass it back to compiled code)."""


structref.define_proxy(FastState, FastStateType, list(FIELDS))


def _njit_generated(source: str):
    """``numba.njit(cache=True)`` of the one function that ``source`` defines, compiled as if
    it were written in this file at the caller's line.

    numba's disk cache keys a function on its file, qualified name and first line (and checks
    the file's time stamp and size, and the bytecode): a function generated here from FIELDS,
    which lives in this file, is cached like a written one and recompiled when FIELDS
    changes. Its parameters stay named (numba's dispatcher types named arguments in C; a
    ``*values`` tuple would be typed in Python, at every call)."""
    line = sys._getframe(1).f_lineno
    namespace: dict = {}
    exec(compile("\n" * (line - 1) + source, __file__, "exec", dont_inherit=True), globals(), namespace)  # noqa: S102
    (function,) = namespace.values()
    return numba.njit(cache=True)(function)


_bad = [name for name in FIELDS if not name.isidentifier() or keyword.iskeyword(name) or name == "FastState"
        or FIELDS.count(name) > 1]
if _bad:
    raise ValueError(f"FIELDS: names repeated or not usable as parameters: {_bad}")

build = _njit_generated(f"""def build({', '.join(FIELDS)}):
    \"\"\"The StructRef of the field values, in FIELDS order.\"\"\"
    return FastState({', '.join(FIELDS)})
""")

dump = _njit_generated(f"""def dump(s):
    \"\"\"Every field, in FIELDS order (arrays shared, not copied).\"\"\"
    return ({''.join(f's.{name}, ' for name in FIELDS)})
""")
