"""HeteroEnv: HDeepRM's scheduling problem as a Gymnasium environment.

One step is one scheduling decision. At a decision point (something was submitted or
completed and jobs are waiting), the agent picks an action: a (job key, core key) pair,
applied as one scheduling pass (``hdeeprm.simulation.policies``), or the void action, which starts
nothing. The environment then simulates until the next decision point and returns what the
agent sees there.

Observations (float32, all in [0, 1]; ``observation`` option):
  normal   per node its free memory fraction, then per processor of the node its free
           memory-bandwidth fraction followed, per core of that processor, by three values:
           speed fraction (1 in P0, 0.75 in P1, 0 idle), power fraction (1 busy, 0.25 in P2,
           0.05 in P3) and the remaining fraction of the requested work of the job it serves
           (0 when idle; it moves with the work actually done, at the core's real speed);
           then the queue part below
  small    the node and processor values only, then the queue part
  minimal  the queue part only
Queue part (21 values): for requested time, requested cores, memory per core and memory
bandwidth per core of the waiting jobs: minimum, 25th percentile, median, 75th percentile
and maximum, each divided by the workload's job limit (99th percentile over the whole
workload) and clipped to 1; then the queue variation: with L the queue length now, L' at the
previous observation and s the ``queue_sensitivity``, 1 if L' = 0 < L, 0 if L = 0, else
clip(((L - L') / min(L, L') + s) / (2 s), 0, 1) (0.5 means unchanged).

Rewards (``objective`` option, see ``hdeeprm.simulation.objectives``): each reward is minus the
growth of the objective's cost between a decision and the next one, so that an episode's
return is exactly minus the objective: HDeepRM's avg_job_slowdown, avg_job_completion,
avg_utilization, makespan, energy_consumption and edp, the literature's
avg_bounded_slowdown (bound ``bsld_bound``, 10 s by default) and avg_waiting_time, the
trade-off energy_waiting (energy + ``waiting_watts`` x the waiting jobs' seconds), or a
function of the finished jobs. ``reward_scale`` multiplies every reward (returns in seconds
or joules are large numbers).

Actions (``action_space`` option). ``"pairs"``, HDeepRM's: by default the 36 pairs of
``hdeeprm.simulation.keys`` (index 6 x job + core) and void (index 36), or the subset of an HDeepRM options file's ``actions`` block. ``action_masks()``
(also in ``info["action_mask"]``) tells which actions would start at least one job now (with
backfilling, a pair is also allowed when any waiting job fits now: backfilling may still
refuse it, and the pass then starts nothing, as void); void is always allowed (without void in the set, when no action would start a job, all are). An action that starts nothing leaves the queue as it is and the
simulation moves on to the next submission or completion. One exception keeps a run from
stalling: void while nothing runs and every remaining job is already waiting would wait for
ever, so the first pair of the action set is applied instead (``info["void_overridden"]``).

``"job_window"``, RLScheduler's: the agent picks one of the first ``window_jobs`` waiting
jobs, placed with ``window_core_key``; observation and semantics in ``hdeeprm.rl.job_window``.
``backfill="easy"`` adds EASY backfilling under either action space (around the blocked
job of a pass, or around the job the agent chose); ``backfill="conservative"`` conservative
backfilling (a reservation for that job and each waiting job after it).

DVFS (``dvfs=True``): the agent also chooses the computation p-state of the machines its
decision starts jobs on. Only on a flat SimGrid XML platform (no hierarchy: on HDeepRM's
platforms the p-states follow HDeepRM's own rules) whose machines all have the same K >= 2
computation p-states (Batsim's sleep p-states and their virtual switching ones are not
offered), which the engine then keeps as declared (no ``with_flat_hierarchy``: energy and
speed follow the XML's p-states); else a ConfigError. Actions: the base actions above (pairs
and void, or window slots; B of them) at each offered p-state, action = k x B + base for
the k-th offered p-state in increasing order (p-state k without sleep states), so that
actions 0..B-1 are the base actions at the first. Just before the jobs of a decision
start (those of its pass, backfilled ones included; in job_window the chosen job also when
it starts later, and those backfilled around it), their machines switch to the decision's
p-state at that instant, as Batsim switches a computation p-state at once; idle machines
keep the p-state their last job left. Masks: (base, k) is allowed iff the base action is;
void's copies at k > 0 are masked out (sent anyway they act as void, and an overridden void
runs the first pair at that p-state). With ``dvfs_idle=True`` (pairs with void) the idle
machines are the agent's too: void at the k-th p-state switches every idle machine to it at
once, and void's copies are allowed. The "normal" observation shows, per core (= machine),
4 values instead of 3: its speed in its current p-state / the platform's top speed, its
power there (full-load watts when busy, idle watts when idle) / the platform's top watts, the
remaining work fraction, and its p-state's rank among the offered ones / (K - 1). The
compiled path declines dvfs.

Power actions (``power_actions=True``): the agent may also switch idle machines off and wake
sleeping ones. Only on a flat SimGrid XML platform whose hosts declare Batsim's sleep p-states
(``sleep_pstates``; kept as declared, as with dvfs), with the pairs action space and void;
not with dvfs; else a ConfigError. Actions: the B base actions (pairs, then void = "keep"),
then B + 0 ``switch_off_one``, B + 1 ``switch_off_all`` (the lowest-id idle awake machine, or
all of them, to their first sleep p-state), B + 2 ``wake_one``, B + 3 ``wake_all`` (the
lowest-id sleeping machine, or all, back to their declared p-state). Masks: switching off
needs an idle awake machine and no waiting job; waking needs a sleeping machine; machines
switching are neither; a masked power action sent anyway does nothing (as void). A power
action starts no job; the simulation then moves on as after void. Decision points are, besides
the usual ones, every submission, completion or switch end while jobs remain and a power
action is allowed (so also with an empty queue). Machines asleep or switching are held out
of the resource model (``ResourceModel.hold``), so no job starts on them; a machine switching
on comes back when its switch ends. Against deadlock: after any action, if jobs wait, none
starts, none runs, no machine switches and no job is still to come, every sleeping machine is
woken (with all awake, the first pair runs, as void's override); ``info["void_overridden"]``.
Observation: POWER_FEATURES (4) values appended after the queue part (every kind): the
fractions of the machines idle and awake, asleep, switching off and switching on; "normal"
shows per core its real speed and power in its current p-state (the engine's, sleep and
switching ones included: speed / top computation speed, watts / top watts of any p-state),
then the remaining work. ``info["power"]`` counts the machines per mode. Energy and waiting
show in the objective's rewards and ``info["metrics"]``. The compiled path declines it.

Shutdown under the agent (``shutdown=S``, seconds): the classic shutdown rule
(``hdeeprm.simulation.policies.ShutdownScheduler``, the same code) switches machines idle S
seconds while no job waits off and wakes the lowest-id sleeping ones when the queue's first
job (submission order) needs them; the agent keeps its decisions (pairs, with dvfs their
p-states; a woken machine is back in its declared p-state until a decision switches it).
Same platforms as power_actions, the pairs action space; not with power_actions or
dvfs_idle. Void is overridden only when nothing runs, no machine switches and every remaining
job waits. Observation and ``info["power"]`` as under power_actions. Python steps only.

Episodes: the whole workload, or (``episode_jobs`` = N) a window of N consecutive jobs whose
start is drawn from the generator seeded by ``reset(seed=...)``. ``max_steps`` and
``max_sim_time`` truncate an episode.

Defaults: ``HeteroEnv()`` (and ``gymnasium.make("hdeeprm/HeteroEnv-v0")``) runs the bundled
quick-start platform and trace, those of ``hdeeprm train quickstart``. ``workload`` may name a
bundled trace (``kth-sp2-1996-2.1-cln.swf.gz``) as experiment files do; a file on disk wins.
``render_mode="ansi"`` or ``"rgb_array"``: ``render()`` shows the state at the decision
(``hdeeprm.rl.render``).
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any, Mapping

import gymnasium as gym
import numpy as np

from hdeeprm.backends import BACKENDS, make_simulator
from hdeeprm.common.bundled import bundled_trace_names, locate
from hdeeprm.common.checks import is_finite_number, is_int, shown
from hdeeprm.common.errors import ConfigError, WorkloadError
from hdeeprm.common.jsonfile import read_json_object
from hdeeprm.common.seeding import check_seed, run_generators
from hdeeprm.inputs.platform import load_platform, resolve_platform_name
from hdeeprm.inputs.platform.flat import FLAT_TYPE, with_flat_hierarchy
from hdeeprm.inputs.platform.model import P_BUSY, P_IDLE_PROCESSOR, Platform
from hdeeprm.inputs.platform.sleep import COMPUTATION as _COMPUTATION  # Batsim's sleep p-states: not for dvfs
from hdeeprm.inputs.platform.sleep import require_sleep_states
from hdeeprm.inputs.platform.sleep import sleep_states as _sleep_states
from hdeeprm.inputs.workload import job_limits, load_workload
from hdeeprm.inputs.workload.model import Workload, WorkloadArrays
from hdeeprm.rl.job_window import DEFAULT_WINDOW_JOBS, JobWindowObserver
from hdeeprm.rl.render import RENDER_MODES, Snapshot, render_ansi, render_rgb
from hdeeprm.simulation.engine import REJECTED, SimulationResult
from hdeeprm.simulation.keys import ALL_CORE_KEYS, ALL_JOB_KEYS, DEFAULT_PAIRS, HIGH_CORES_MEANINGS, effective_core_key
from hdeeprm.simulation.objectives import (
    DEFAULT_BSLD_BOUND,
    DEFAULT_WAITING_WATTS,
    HDEEPRM_OBJECTIVES,
    OBJECTIVES,
    Objective,
    RewardTracker,
    check_objective,
)
from hdeeprm.simulation.observations import OBSERVATIONS, PERCENTILES, POWER_FRACTION, QUEUE_FEATURES, SPEED_FRACTION
from hdeeprm.simulation.policies import PolicyConfig, QueueScheduler, ShutdownScheduler
from hdeeprm.simulation.resources import FITS, HELD

ACTION_SPACES = ("pairs", "job_window")
# power_actions: the actions after the base ones, in this order (HeteroEnv._power_action).
POWER_ACTIONS = ("switch_off_one", "switch_off_all", "wake_one", "wake_all")
# A machine's mode under power_actions (as the shutdown policy's).
_AWAKE, _SWITCHING_OFF, _ASLEEP, _SWITCHING_ON = range(4)
#: Features appended to the observation under power_actions (fractions of the machines).
POWER_FEATURES = 4

# What HeteroEnv() and gymnasium.make("hdeeprm/HeteroEnv-v0") run without arguments, and the
# defaults of experiment files: the bundled quick-start platform and trace.
DEFAULT_PLATFORM = "quickstart"
DEFAULT_WORKLOAD = "kth-sp2-head.swf.gz"

Pair = tuple[str, str]


def parse_action_set(block: Mapping[str, Any] | None, source: str = "actions") -> tuple[tuple[Pair, ...], bool]:
    """The pairs and void flag of an HDeepRM ``actions`` block: ``{"selection": [{"JOBKEY":
    ["COREKEY", ...]}, ...], "void": bool}``. Actions are numbered in list order, then key
    order in each object, then core order. None gives the default 36 pairs and void."""
    if block is None:
        return DEFAULT_PAIRS, True
    if not isinstance(block, Mapping):
        raise ConfigError(f"{source}: expected an object with 'selection' and 'void'")
    unknown = set(block) - {"selection", "void"}
    if unknown:
        raise ConfigError(f"{source}: unknown key {sorted(unknown)[0]!r}: expected 'selection' and 'void'")
    if "void" not in block or not isinstance(block["void"], bool):
        raise ConfigError(f"{source}.void: expected true or false")
    selection = block.get("selection")
    if not isinstance(selection, list):
        raise ConfigError(f"{source}.selection: expected a list of {{job key: [core keys]}} objects")
    pairs: list[Pair] = []
    for i, item in enumerate(selection):
        if not isinstance(item, Mapping):
            raise ConfigError(f"{source}.selection[{i}]: expected an object such as {{\"first\": [\"high_gflops\"]}}")
        for job_key, core_keys in item.items():
            where = f"{source}.selection[{i}].{job_key}"
            if job_key not in ALL_JOB_KEYS:
                raise ConfigError(f"{where}: unknown job selection key {job_key!r}: "
                                  f"expected one of {', '.join(ALL_JOB_KEYS)}")
            if not isinstance(core_keys, list) or not core_keys:
                raise ConfigError(f"{where}: expected a non-empty list of core selection keys")
            for core_key in core_keys:
                if core_key not in ALL_CORE_KEYS:
                    raise ConfigError(f"{where}: unknown core selection key {core_key!r}: "
                                      f"expected one of {', '.join(ALL_CORE_KEYS)}")
                pairs.append((job_key, core_key))
    if not pairs:
        raise ConfigError(f"{source}.selection: at least one job key / core key pair is needed")
    if len(set(pairs)) != len(pairs):
        raise ConfigError(f"{source}.selection: a pair is listed twice")
    return tuple(pairs), block["void"]


# Bounds of integer fields: the job window's size (one observation row and one action per
# job) and any count that reaches numpy's int64 arrays.
MAX_WINDOW_JOBS = 4096
MAX_COUNT = 2**63 - 1


@dataclass(frozen=True)
class EnvConfig:
    """What HeteroEnv does (frozen; the episode's mutable state lives in the env)."""

    objective: Objective = "avg_job_slowdown"
    queue_sensitivity: float = 0.05
    observation: str = "normal"
    actions: tuple[Pair, ...] = DEFAULT_PAIRS
    void: bool = True
    episode_jobs: int | None = None
    max_steps: int | None = None
    max_sim_time: float | None = None
    backfill: str | None = None
    reward_scale: float = 1.0
    action_space: str = "pairs"
    window_jobs: int = DEFAULT_WINDOW_JOBS
    window_core_key: str = "high_gflops"
    window_commit: bool = True  # the chosen job waits until it starts (False: chosen again at each event)
    bsld_bound: float = DEFAULT_BSLD_BOUND  # s
    # energy_waiting: what one waiting job costs, in W (its waiting seconds are billed as joules).
    waiting_watts: float = DEFAULT_WAITING_WATTS
    # What the core key high_cores runs: "most_free" (the processor with the most free cores,
    # as the original documented it) or "most_busy" (the most busy cores, as its code did).
    high_cores: str = "most_free"
    # The agent also chooses the computation p-state of the machines each decision starts
    # jobs on (flat platforms with several p-states only; see HeteroEnv and the module docstring).
    dvfs: bool = False
    # With dvfs, void at the k-th p-state also switches every idle machine to it (so idle
    # machines can wait in a low-power p-state); void's copies are then not masked out.
    dvfs_idle: bool = False
    # Power actions beside the scheduling ones: switch idle machines off (to their Batsim sleep
    # p-state) or wake sleeping ones (platforms whose hosts declare sleep_pstates; see HeteroEnv
    # and the module docstring). Not with dvfs, job_window or without void (the "keep" action).
    power_actions: bool = False
    # The shutdown policy under the agent: a machine idle this many seconds while no job waits
    # is sent to its sleep p-state, and sleeping machines are woken when the queue's first job
    # needs them (as ShutdownScheduler does; platforms whose hosts declare sleep_pstates). The
    # agent keeps its decisions (which jobs, which cores, with dvfs which p-state). None: off.
    shutdown: float | None = None

    def __post_init__(self):
        if not (isinstance(self.objective, str) or callable(self.objective)):
            raise ConfigError(f"objective {shown(self.objective)}: expected a name ({', '.join(OBJECTIVES)}), "
                              "FILE.py:FUNCTION or a function of the finished jobs")
        check_objective(self.objective)
        if not isinstance(self.action_space, str) or self.action_space not in ACTION_SPACES:
            raise ConfigError(f"action_space {self.action_space!r}: expected one of {', '.join(ACTION_SPACES)}")
        if not is_int(self.window_jobs) or not 1 <= self.window_jobs <= MAX_WINDOW_JOBS:
            raise ConfigError(f"window_jobs {shown(self.window_jobs)}: expected an integer from 1 to {MAX_WINDOW_JOBS}")
        if not isinstance(self.window_commit, bool):
            raise ConfigError(f"window_commit {shown(self.window_commit)}: expected true or false")
        if not isinstance(self.dvfs, bool):
            raise ConfigError(f"dvfs {shown(self.dvfs)}: expected true or false")
        if not isinstance(self.dvfs_idle, bool):
            raise ConfigError(f"dvfs_idle {shown(self.dvfs_idle)}: expected true or false")
        if self.dvfs_idle and not (self.dvfs and self.action_space == "pairs" and self.void):
            raise ConfigError("dvfs_idle: needs dvfs, action_space 'pairs' and the void action (void at a "
                              "p-state is what sets the idle machines' p-state)")
        if not isinstance(self.power_actions, bool):
            raise ConfigError(f"power_actions {shown(self.power_actions)}: expected true or false")
        if self.power_actions and self.dvfs:
            raise ConfigError("power_actions: not with dvfs (the agent either sets computation p-states or "
                              "switches machines off and on, not both)")
        if self.power_actions and self.action_space != "pairs":
            raise ConfigError(f"power_actions: needs action_space 'pairs', not {self.action_space!r}")
        if self.power_actions and not self.void:
            raise ConfigError("power_actions: needs the void action (void starts nothing: the power actions' "
                              "'keep')")
        if self.shutdown is not None:
            if not (is_finite_number(self.shutdown) and self.shutdown >= 0):
                raise ConfigError(f"shutdown {shown(self.shutdown)}: expected a finite number of idle seconds >= 0, "
                                  "or null")
            if self.power_actions:
                raise ConfigError("shutdown: not with power_actions (machines are switched off either by the "
                                  "shutdown rule or by the agent)")
            if self.dvfs_idle:
                raise ConfigError("shutdown: not with dvfs_idle (idle machines are the shutdown rule's)")
            if self.action_space != "pairs":
                raise ConfigError(f"shutdown: needs action_space 'pairs', not {self.action_space!r}")
        if not isinstance(self.window_core_key, str) or self.window_core_key not in ALL_CORE_KEYS:
            raise ConfigError(f"window_core_key {shown(self.window_core_key)}: expected one of {', '.join(ALL_CORE_KEYS)}")
        if not isinstance(self.high_cores, str) or self.high_cores not in HIGH_CORES_MEANINGS:
            raise ConfigError(f"high_cores {shown(self.high_cores)}: expected one of {', '.join(HIGH_CORES_MEANINGS)}")
        if not (is_finite_number(self.bsld_bound) and self.bsld_bound > 0):
            raise ConfigError(f"bsld_bound {shown(self.bsld_bound)}: expected a finite number of seconds > 0")
        if not (is_finite_number(self.waiting_watts) and self.waiting_watts > 0):
            raise ConfigError(f"waiting_watts {shown(self.waiting_watts)}: expected a finite number of watts > 0 "
                              "(what one waiting job costs)")
        if not (is_finite_number(self.reward_scale) and self.reward_scale > 0):
            raise ConfigError(f"reward_scale {shown(self.reward_scale)}: expected a finite number > 0")
        if not isinstance(self.observation, str) or self.observation not in OBSERVATIONS:
            raise ConfigError(f"observation {shown(self.observation)}: expected one of {', '.join(OBSERVATIONS)}")
        if not (is_finite_number(self.queue_sensitivity) and self.queue_sensitivity > 0):
            raise ConfigError(f"queue_sensitivity {shown(self.queue_sensitivity)}: expected a finite number > 0")
        for name in ("episode_jobs", "max_steps"):
            value = getattr(self, name)
            if value is not None and (not is_int(value) or not 1 <= value <= MAX_COUNT):
                raise ConfigError(f"{name} {shown(value)}: expected a positive integer up to 2**63-1")
        if self.max_sim_time is not None and not (is_finite_number(self.max_sim_time) and self.max_sim_time > 0):
            raise ConfigError(f"max_sim_time {shown(self.max_sim_time)}: expected a finite number of seconds > 0")
        object.__setattr__(self, "actions", tuple(tuple(p) for p in self.actions))
        for job_key, core_key in self.actions:
            PolicyConfig(job_key, core_key, self.backfill)  # validates the names and backfill
        if not self.actions:
            raise ConfigError("actions: at least one job key / core key pair is needed")

    @classmethod
    def from_options(cls, env_block: Mapping[str, Any], source: str = "env") -> "EnvConfig":
        """From an HDeepRM options file's ``pybatsim.env`` block (plus this project's own
        keys: episode_jobs, max_steps, max_sim_time, backfill, reward_scale, high_cores, ...)."""
        if not isinstance(env_block, Mapping):
            raise ConfigError(f"{source}: expected an object")
        known = {f.name for f in fields(cls)} - {"void"}
        unknown = set(env_block) - known
        if unknown:
            raise ConfigError(f"{source}: unknown key {sorted(unknown)[0]!r}: expected some of {', '.join(sorted(known))}")
        if "objective" not in env_block:
            raise ConfigError(f"{source}.objective: missing; expected one of {', '.join(OBJECTIVES)}")
        values = dict(env_block)
        values["actions"], values["void"] = parse_action_set(values.get("actions"), f"{source}.actions")
        return cls(**values)

    def core_key(self, name: str) -> str:
        """The core key the simulation runs for an action's (or the window's) ``name``."""
        return effective_core_key(name, self.high_cores)

    @property
    def nb_actions(self) -> int:
        if self.action_space == "job_window":
            return self.window_jobs
        return len(self.actions) + (1 if self.void else 0) + (len(POWER_ACTIONS) if self.power_actions else 0)

    def action_names(self) -> list[str]:
        if self.action_space == "job_window":
            return [f"job {i + 1} of the window" for i in range(self.window_jobs)]
        return ([f"{j}:{c}" for j, c in self.actions] + (["void"] if self.void else [])
                + (list(POWER_ACTIONS) if self.power_actions else []))


class ObservationBuilder:
    """The observation layout of one platform (built once) and its values at a decision."""

    def __init__(self, scheduler_hierarchy, kind: str, limits: np.ndarray, sensitivity: float,
                 dvfs_platform: Platform | None = None, dvfs_pstates: tuple[int, ...] = (),
                 power_platform: Platform | None = None):
        h = scheduler_hierarchy
        self.kind = kind
        self.limits = limits  # (4,) job limits: time, cores, memory, bandwidth
        self.sensitivity = float(sensitivity)
        hardware = kind != "minimal"
        # With dvfs (a flat platform whose p-states the agent sets), "normal" shows per core
        # (= machine) its real speed and power in its current p-state, the remaining work,
        # and that p-state: 4 values.
        self._dvfs = dvfs_platform is not None and kind == "normal"
        # With power_actions (a flat platform with Batsim sleep p-states), "normal" shows per
        # core its real speed and power in its current p-state (sleep and switching ones
        # included), and the remaining work: 3 values. Every kind gets POWER_FEATURES values
        # appended after the queue part: the fractions of the machines awake and idle, asleep,
        # switching off and switching on.
        self._power = power_platform is not None
        self._real_pstates = self._dvfs or (self._power and kind == "normal")
        if self._real_pstates:
            # Per machine and p-state (all of them: columns past the offered ones are never
            # used), scaled by the top speed and watts of the offered p-states (dvfs) or of
            # the computation p-states for speed and of all p-states for watts (power_actions),
            # clipped to 1.
            real = dvfs_platform if self._dvfs else power_platform
            speeds = np.nan_to_num(real.speeds)
            idle = np.nan_to_num(real.watts_idle)
            full = np.nan_to_num(real.watts_full)
            if self._dvfs:
                offered = list(dvfs_pstates)
                top_speed = float(speeds[:, offered].max())
                top_watts = max(float(full[:, offered].max()), float(idle[:, offered].max()), 0.0) or 1.0
            else:
                offered = []
                kinds = _sleep_states(real).kind[:, :speeds.shape[1]]
                top_speed = float(np.where(kinds == _COMPUTATION, speeds, 0.0).max()) or 1.0
                top_watts = max(float(full.max()), float(idle.max()), 0.0) or 1.0
            self._speed_fraction = np.clip(speeds / top_speed, 0.0, 1.0).astype(np.float32)
            self._idle_fraction = np.clip(idle / top_watts, 0.0, 1.0).astype(np.float32)
            self._full_fraction = np.clip(full / top_watts, 0.0, 1.0).astype(np.float32)
            # A p-state's rank among the offered ones / (K - 1) (0 for any other p-state).
            self._pstate_rank = np.zeros(speeds.shape[1], np.float32)
            self._pstate_rank[offered] = np.arange(len(offered)) / max(len(offered) - 1, 1)
        per_core = (4 if self._dvfs else 3) if kind == "normal" else 0
        node_slot = np.zeros(h.nb_nodes, np.int64)
        proc_slot = np.zeros(h.nb_processors, np.int64)
        core_slot = np.zeros(h.nb_cores, np.int64)
        if hardware:
            # Depth-first: node, then each of its processors followed by its cores.
            procs_of = [[] for _ in range(h.nb_nodes)]
            for p, n in enumerate(h.processor_node.tolist()):
                procs_of[n].append(p)
            cores_of = [[] for _ in range(h.nb_processors)]
            for c, p in enumerate(h.core_processor.tolist()):
                cores_of[p].append(c)
            pos = 0
            for n in range(h.nb_nodes):
                node_slot[n] = pos
                pos += 1
                for p in procs_of[n]:
                    proc_slot[p] = pos
                    pos += 1
                    for c in cores_of[p]:
                        core_slot[c] = pos
                        pos += per_core
            self.hardware_size = pos
        else:
            self.hardware_size = 0
        self.node_slot, self.proc_slot, self.core_slot = node_slot, proc_slot, core_slot
        self.size = self.hardware_size + QUEUE_FEATURES + (POWER_FEATURES if self._power else 0)
        self._previous_queue = 0

    @property
    def space(self) -> gym.spaces.Box:
        return gym.spaces.Box(0.0, 1.0, shape=(self.size,), dtype=np.float32)

    def reset(self) -> None:
        self._previous_queue = 0

    def build(self, scheduler: QueueScheduler, requests: np.ndarray, req_work: np.ndarray,
              power_mode: np.ndarray | None = None) -> np.ndarray:
        obs = np.zeros(self.size, np.float32)
        res = scheduler.resources
        if self.kind != "minimal":
            obs[self.node_slot] = res.node_free_kb / np.maximum(res.node_memory_kb, 1)
            obs[self.proc_slot] = np.maximum(res.proc_bw_left, 0) / np.maximum(res.proc_bw_kbs, 1)
        if self._real_pstates:
            # dvfs: the p-states the env sent; power_actions: the engine's (sleep and virtual
            # switching p-states included).
            pstate = res.sent_pstate if self._dvfs else scheduler.engine.pstate
            machines = np.arange(len(pstate))
            obs[self.core_slot] = self._speed_fraction[machines, pstate]
            serving = (res.core_job >= 0) & (res.core_job != HELD)
            obs[self.core_slot + 1] = np.where(serving, self._full_fraction[machines, pstate],
                                               self._idle_fraction[machines, pstate])
            if self._dvfs:
                obs[self.core_slot + 3] = self._pstate_rank[pstate]
        elif self.kind == "normal":
            pstate = res.sent_pstate
            obs[self.core_slot] = SPEED_FRACTION[pstate]
            obs[self.core_slot + 1] = POWER_FRACTION[pstate]
        if self.kind == "normal":
            busy = np.flatnonzero((res.core_job >= 0) & (res.core_job != HELD))  # HELD: asleep
            if busy.size:
                jobs = res.core_job[busy]
                done = scheduler.engine.work_done(jobs)
                obs[self.core_slot[busy] + 2] = np.clip(1.0 - done / np.maximum(req_work[jobs], 1e-300), 0.0, 1.0)
        queue = scheduler.queue
        base = self.hardware_size
        if queue:
            stats = np.percentile(requests[:, queue], PERCENTILES, axis=1)  # (5, 4)
            obs[base:base + 20] = np.clip(stats.T / self.limits[:, None], 0.0, 1.0).ravel()
        obs[base + 20] = self._variation(len(queue))
        if self._power:
            n = max(len(power_mode), 1)
            idle = (power_mode == _AWAKE) & (res.core_job < 0)
            obs[base + 21] = idle.sum() / n
            for i, mode in enumerate((_ASLEEP, _SWITCHING_OFF, _SWITCHING_ON), start=22):
                obs[base + i] = (power_mode == mode).sum() / n
        return obs

    def _variation(self, length: int) -> float:
        previous, self._previous_queue = self._previous_queue, length
        if length == 0:
            return 0.0
        if previous == 0:
            return 1.0
        s = self.sensitivity
        v = (length - previous) / min(length, previous)
        return float(np.clip((v + s) / (2 * s), 0.0, 1.0))


class HeteroEnv(gym.Env):
    """Gymnasium environment of job scheduling on a heterogeneous cluster (module docstring).

    ``platform``: a Platform, a platform JSON / XML path, or a bundled name ("gaia");
    ``hierarchy``: hierarchy.json for an XML platform. ``workload``: a Workload,
    WorkloadArrays, a path (Batsim JSON, or SWF converted for the platform with ``nb_jobs``
    and ``conversion_seed``) or the file name of a bundled trace (a path that exists wins).
    Both default to the quick-start ones (``DEFAULT_PLATFORM``, ``DEFAULT_WORKLOAD``).
    ``config`` (an EnvConfig) or its fields as keywords. ``render_mode``: None, "ansi" (text)
    or "rgb_array" (an image of the cores), what ``render()`` returns.
    ``fast``: on the embedded backend, steps run in compiled code (``hdeeprm.simulation.fastsim``) unless
    False, which runs the Python internals below, the reference the compiled steps are
    tested against (same observations, rewards and masks, bit for bit). With the compiled
    steps, ``env.engine`` is brought up to date at the end of each episode only.
    """

    # render_fps: one frame per decision, for video recorders (decisions have no fixed period).
    metadata = {"render_modes": list(RENDER_MODES), "render_fps": 4}

    def __init__(self, platform: Platform | str | os.PathLike = DEFAULT_PLATFORM,
                 workload: Workload | WorkloadArrays | str | os.PathLike = DEFAULT_WORKLOAD,
                 config: EnvConfig | None = None, *, hierarchy: str | os.PathLike | None = None,
                 backend: str = "embedded", backend_options: Mapping[str, Any] | None = None,
                 nb_jobs: int | None = None, conversion_seed: int = 0, fast: bool | None = None,
                 feature_limits: np.ndarray | None = None, time_origin: float = 0.0,
                 render_mode: str | None = None, **config_fields: Any):
        # Checked first: a bad render mode should not cost loading a platform and a trace.
        if render_mode is not None and (not isinstance(render_mode, str) or render_mode not in RENDER_MODES):
            raise ConfigError(f"render_mode {shown(render_mode)}: expected None or one of {', '.join(RENDER_MODES)}")
        self.render_mode = render_mode
        if config is None:
            config = EnvConfig(**config_fields)
        elif config_fields:
            config = EnvConfig(**{**asdict(config), **config_fields})
        if backend not in BACKENDS:
            raise ConfigError(f"unknown backend {backend!r}: expected one of {', '.join(BACKENDS)}")
        self.config = config
        self.backend = backend
        # For backend="batsim": batsim (path), workdir, timeout_s, network, launcher.
        self.backend_options = dict(backend_options or {})
        self.platform = _as_platform(platform, hierarchy)
        # dvfs: the computation p-states the agent chooses from (None without dvfs).
        self._pstates: tuple[int, ...] | None = None
        if config.dvfs:
            # The engine keeps the flat platform's own p-states, which the agent sets; the
            # flat hierarchy only lays out the observation and the rendering.
            self._pstates = dvfs_pstates(self.platform)
            if config.shutdown is not None:
                power_pstates(self.platform, "shutdown")  # its sleep p-states, checked here
            self._layout = with_flat_hierarchy(self.platform).hierarchy
        elif config.power_actions or config.shutdown is not None:
            # As with dvfs, the engine keeps the flat platform's own p-states (its sleep ones).
            self._sleep_pstate, self._awake_pstate = power_pstates(
                self.platform, "power_actions" if config.power_actions else "shutdown")
            self._layout = with_flat_hierarchy(self.platform).hierarchy
        else:
            if self.platform.hierarchy is None:
                # A flat SimGrid platform: each host one node, processor and core, without memory
                # or bandwidth limits (hdeeprm.inputs.platform.flat).
                self.platform = with_flat_hierarchy(self.platform)
            self._layout = self.platform.hierarchy
        self.workload = _as_workload_arrays(workload, self.platform, nb_jobs, conversion_seed)
        if len(self.workload) == 0:
            raise ConfigError(f"{workload}: the workload has no job")
        self.time_origin = float(time_origin)  # the workload's t = 0 on the trace's clock (s)
        if config.episode_jobs is not None and config.episode_jobs > len(self.workload):
            raise ConfigError(f"episode_jobs {config.episode_jobs}: the workload has only {len(self.workload)} jobs")
        if feature_limits is None:
            limits = job_limits(self.workload)
            feature_limits = [limits.max_time, limits.max_core, limits.max_mem, limits.max_mem_bw]
        self._limits = np.array(feature_limits, dtype=np.float64)
        if self._limits.shape != (4,) or not (np.isfinite(self._limits).all() and (self._limits > 0).all()):
            raise ConfigError(f"feature_limits {feature_limits!r}: expected 4 positive numbers (requested time, "
                              "cores, memory and bandwidth per core)")
        self._actions: list[Pair | None] = list(config.actions) + ([None] if config.void else [])
        self.action_space = gym.spaces.Discrete(len(self._actions))
        self._observer = ObservationBuilder(
            self._layout, config.observation, self._limits, config.queue_sensitivity,
            dvfs_platform=self.platform if self._pstates else None, dvfs_pstates=self._pstates or (),
            power_platform=self.platform if config.power_actions or config.shutdown is not None else None)
        self._window: JobWindowObserver | None = None
        if config.action_space == "job_window":
            self._window = JobWindowObserver(config.window_jobs, self._limits, self.platform.nb_machines)
            self.action_space = gym.spaces.Discrete(config.window_jobs)
            self.observation_space = self._window.space
        else:
            self.observation_space = self._observer.space
        # The base actions (pairs and void, or window slots); with dvfs, each at every offered
        # p-state: action = p-state index x base actions + base action.
        self._nb_base = int(self.action_space.n)
        if self._pstates is not None:
            self.action_space = gym.spaces.Discrete(self._nb_base * len(self._pstates))
        if config.power_actions:  # the power actions after the base ones (POWER_ACTIONS order)
            self.action_space = gym.spaces.Discrete(self._nb_base + len(POWER_ACTIONS))
        self._power_mode: np.ndarray | None = None  # power_actions: each machine's mode
        self._dvfs_pstate: int | None = None  # the p-state of the last decision
        self._held: int | None = None  # job_window: the chosen job waiting to fit
        self.engine = None
        self.scheduler: QueueScheduler | None = None
        self._done = True
        # The compiled fast path (hdeeprm.simulation.fastsim) on the embedded backend unless fast=False;
        # the Python internals below stay the reference it is tested against.
        if fast and backend != "embedded":
            raise ConfigError("fast=True needs the embedded backend")
        from hdeeprm.simulation.fastsim import supports_clock

        clock = self.backend_options.get("clock", "simgrid")
        if fast and not supports_clock(clock):
            raise ConfigError(f"fast=True: the compiled path does not run clock={clock!r} yet")
        if fast and config.dvfs:
            raise ConfigError("fast=True: the compiled path does not run dvfs (p-states chosen by the agent)")
        if fast and (config.power_actions or config.shutdown is not None):
            raise ConfigError("fast=True: the compiled path does not run power_actions or shutdown (sleep p-states)")
        # The compiled steps implement HDeepRM's pairs and objectives; the rest runs here.
        compiled = (config.action_space == "pairs" and isinstance(config.objective, str)
                    and config.objective in HDEEPRM_OBJECTIVES and not config.dvfs and not config.power_actions
                    and config.shutdown is None)
        if fast and not compiled:
            raise ConfigError(f"fast=True: the compiled path runs the pairs action space with HDeepRM's "
                              f"objectives only, not action_space={config.action_space!r} with "
                              f"objective={config.objective!r}")
        self._use_fast = backend == "embedded" and fast is not False and supports_clock(clock) and compiled
        self._fast = None
        self._action_codes = [(-1, -1) if pair is None
                              else (ALL_JOB_KEYS.index(pair[0]), ALL_CORE_KEYS.index(config.core_key(pair[1])))
                              for pair in self._actions]
        self._action_job_keys = np.array([code[0] for code in self._action_codes], dtype=np.int64)

    # ------------------------------------------------------------------ construction helpers

    @classmethod
    def from_options(cls, options: str | os.PathLike | Mapping[str, Any], *, workload=None,
                     backend: str = "embedded", backend_options: Mapping[str, Any] | None = None,
                     workload_model: str = "modern", **config_fields: Any) -> "HeteroEnv":
        """From an original HDeepRM options file (or its parsed JSON): the platform
        (``platform_file_path``), the trace (``workload_file_path``, ``nb_jobs``, ``seed``)
        unless ``workload`` is given (the launcher's ``-cw``), and the ``pybatsim.env``
        block. Relative paths are taken from the options file's folder.

        ``workload_model`` (``hdeeprm.inputs.workload.original_model``): ``"modern"`` (the
        default here) converts an SWF trace with its real run times and a walltime of the
        requested time, and takes a Batsim JSON workload as it is, like every other loader
        (``load_workload``, ``HeteroEnv(...)``, ``hdeeprm train``); ``"original"`` is the
        original's model: work = a factor drawn per job x the requested time, no job killed
        at its requested time, and a Batsim JSON workload rewritten so that every job runs
        for its requested time at the reference speed. ``hdeeprm-launch``, the compatibility
        path, passes ``"original"`` unless told ``--workload-model modern``; the API keeps
        ``"modern"`` so that code built on it (``hdeeprm crossval``, scripts) keeps its
        workloads and results, and a library call changes nothing behind its caller's back."""
        from hdeeprm.inputs.workload.original_model import check_workload_model

        workload_model = check_workload_model(workload_model)
        source, base, data = _read_options(options)
        pybatsim = data.get("pybatsim", {})
        if not isinstance(pybatsim, Mapping) or "env" not in pybatsim:
            raise ConfigError(f"{source}: pybatsim.env: missing; expected the environment's options")
        config = EnvConfig.from_options(pybatsim["env"], f"{source}: pybatsim.env")
        if config_fields:
            config = EnvConfig(**{**asdict(config), **config_fields})
        platform_path = data.get("platform_file_path")
        if not platform_path:
            raise ConfigError(f"{source}: platform_file_path: missing; expected an HDeepRM platform JSON")
        if workload is None:
            trace = data.get("workload_file_path")
            if not trace:
                raise ConfigError(f"{source}: workload_file_path: missing; expected an SWF trace (or pass a workload)")
            workload = _original_trace(_resolve(base, trace, f"{source}: workload_file_path"), source)
        seed = check_seed(data.get("seed", 0), f"{source}: seed")
        platform = _original_platform(_resolve(base, platform_path, f"{source}: platform_file_path"), source)
        if workload_model != "modern":
            trace = isinstance(workload, (str, os.PathLike)) and not os.fspath(workload).lower().endswith(".json")
            if trace and config.backfill:
                raise ConfigError(f"{source}: pybatsim.env.backfill {config.backfill!r}: backfilling plans with "
                                  "the jobs' walltimes and the original's workload model gives an SWF trace's jobs "
                                  "none (the original did not backfill); use the modern workload model "
                                  "(hdeeprm-launch --workload-model modern)")
            # Converted here, where the model is known; the constructor takes the arrays as they are.
            platform = _as_platform(platform, None)
            if platform.hierarchy is None and not config.dvfs and not config.power_actions and config.shutdown is None:
                platform = with_flat_hierarchy(platform)
            workload = _as_workload_arrays(workload, platform, data.get("nb_jobs"), seed, workload_model)
        return cls(platform, workload, config, backend=backend,
                   backend_options=backend_options, nb_jobs=data.get("nb_jobs"), conversion_seed=seed)

    # ------------------------------------------------------------------ Gymnasium API

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        """``options={"window_start": k}``: the episode's window starts at job k (with
        ``episode_jobs``) instead of a random job: evaluations on fixed windows."""
        super().reset(seed=seed)
        self._window_start = self._check_window_start(options)
        # A window whose jobs are all rejected (too big for the platform) offers no decision:
        # draw another one. The whole workload offering none is an input error.
        for _ in range(100):
            self._start_episode()
            if not self._done:
                break
            if self._window_start is not None:
                raise ConfigError(f"reset option window_start {self._window_start}: no job of that window "
                                  "can run on this platform")
            if self.config.episode_jobs is None:
                raise ConfigError(f"{self.platform.source}: no job of the workload can run on this "
                                  "platform (all need more cores or memory per core than it has)")
        else:
            raise ConfigError(f"episode_jobs {self.config.episode_jobs}: 100 windows in a row had no job "
                              "that can run on this platform")
        if self._fast is not None:
            return self._fast_view(), self._info(False)
        return self._observe(), self._info(False)

    def _start_episode(self) -> None:
        workload = self.workload
        n = self.config.episode_jobs
        self.episode_start = 0
        if n is not None:
            if self._window_start is not None:
                self.episode_start = self._window_start
            else:
                self.episode_start = int(self.np_random.integers(0, len(workload) - n + 1))
            workload = workload.window(self.episode_start, n)
        if self.engine is not None:
            self.engine.close()
        self.engine = make_simulator(self.backend, self.platform, workload, **self.backend_options)
        rng = self.np_random.spawn(1)[0]
        jobs = self.engine.jobs
        requested = np.where(np.isfinite(jobs.req_time), jobs.req_time, self._limits[0])
        self._requests = np.vstack([requested, jobs.res, jobs.mem_mb, jobs.mem_bw_gbs])
        self._observer.reset()
        self._held = None
        self._dvfs_pstate = self._pstates[0] if self._pstates else None
        if self.config.power_actions:
            self._power_mode = np.zeros(self.platform.nb_machines, np.int8)
        if self._window is not None:
            self._window.reset()
        self._steps = 0
        self._completed = 0
        self._wait_sum = 0.0
        self._started = 0
        self._mask = None
        inverse_time = 1.0 / np.maximum(requested, 1.0)
        if self._use_fast:
            self._rewards = RewardTracker(self.config.objective, inverse_time)
            self._start_fast_episode(rng)
            return
        if self.config.shutdown is None:
            self.scheduler = QueueScheduler(self.engine, PolicyConfig(backfill=self.config.backfill), rng=rng)
        else:  # the shutdown rule wakes machines for the queue's first job in submission order
            self.scheduler = ShutdownScheduler(
                self.engine, PolicyConfig(backfill=self.config.backfill, shutdown=self.config.shutdown), rng=rng)
        self._rewards = RewardTracker(self.config.objective, inverse_time,
                                      nb_runnable=int(self.scheduler.resources.runnable_jobs().sum()),
                                      bsld_bound=self.config.bsld_bound,
                                      waiting_watts=self.config.waiting_watts)
        self.scheduler.on_begin()
        self._done = not self._advance()
        self._rewards.cost_at_decision = self._rewards.cost(self.engine, self.platform.nb_machines)

    def _check_window_start(self, options: dict | None) -> int | None:
        options = dict(options or {})
        start = options.pop("window_start", None)
        if options:
            raise ConfigError(f"reset options: unknown key {sorted(options)[0]!r}: expected 'window_start'")
        if start is None:
            return None
        n = self.config.episode_jobs
        if n is None:
            raise ConfigError("reset option window_start: needs episode_jobs (episodes on windows of the workload)")
        last = len(self.workload) - n
        if isinstance(start, bool) or not isinstance(start, (int, np.integer)) or not 0 <= start <= last:
            raise ConfigError(f"reset option window_start {start!r}: expected a job index in 0..{last}")
        return int(start)

    def step(self, action):
        if self._done:
            raise RuntimeError("step() called on a finished episode: call reset() first")
        action = int(action)
        if not 0 <= action < self.action_space.n:
            raise ValueError(f"action {action} outside 0..{self.action_space.n - 1}")
        if self._fast is not None:
            return self._fast_step(action)
        if self._pstates is not None:
            k, action = divmod(action, self._nb_base)
            self._dvfs_pstate = self._pstates[k]
        overridden = False
        if self._window is not None:
            self._choose_job(action)
        elif action >= len(self._actions):  # power_actions
            self._power_action(action - len(self._actions))
        else:
            pair = self._actions[action]
            if pair is None and self._void_would_stall():
                pair, overridden = self.config.actions[0], True
            if pair is not None:
                self.scheduler.schedule(pair[0], self.config.core_key(pair[1]))
            elif self.config.dvfs_idle:
                self._switch_idle_pstates()
        if self._power_mode is not None and self._unstall_power():
            overridden = True
        if self.config.shutdown is not None:
            self.scheduler.manage_power()
        self._commit()
        self._steps += 1
        terminated = not self._advance()
        self._done = terminated
        reward = self._rewards.reward(self.engine, self.platform.nb_machines) * self.config.reward_scale
        truncated = False
        if not terminated:
            limit_steps, limit_time = self.config.max_steps, self.config.max_sim_time
            truncated = bool((limit_steps and self._steps >= limit_steps)
                             or (limit_time and self.engine.now >= limit_time))
            self._done = truncated
        self._mask = None
        return self._observe(), float(reward), terminated, truncated, self._info(overridden)

    def action_masks(self) -> np.ndarray:
        """Which actions would start at least one job now (void: always); the same as
        ``info["action_mask"]``. Through gymnasium.make's wrappers:
        ``env.unwrapped.action_masks()`` or ``env.get_wrapper_attr("action_masks")()`` (what
        sb3-contrib's MaskablePPO calls); on a vector env, ``envs.call("action_masks")``."""
        if self._mask is None and self._fast is not None:
            return np.ones(len(self._actions), dtype=bool)
        if self._mask is None:
            mask = self._base_mask()
            if self._pstates is not None:
                # Each base action at every p-state; void's copies past the first are masked
                # out (void starts nothing: one variant is enough).
                mask = np.tile(mask, len(self._pstates))
                if self._window is None and self.config.void and not self.config.dvfs_idle:
                    mask[2 * self._nb_base - 1::self._nb_base] = False
            if self._power_mode is not None:
                power = self._power_mask() if not self._done else np.ones(len(POWER_ACTIONS), dtype=bool)
                mask = np.concatenate([mask, power])
            self._mask = mask
        return self._mask.copy()

    def _base_mask(self) -> np.ndarray:
        """action_masks() over the base actions (pairs and void, or window slots)."""
        if self._window is not None:
            return self._window.mask() if not self._done else np.ones(self.config.window_jobs, dtype=bool)
        mask = np.ones(len(self._actions), dtype=bool)
        if not self._done:
            fits_by_key: dict[str, bool] = {}
            for i, pair in enumerate(self._actions):
                if pair is not None:
                    job_key = pair[0]
                    if job_key not in fits_by_key:
                        # With backfilling, a pass whose first job does not fit may still start
                        # another that fits now (unless it would delay the first one's
                        # reservation; the pass then starts nothing, as void).
                        fits_by_key[job_key] = self._first_job_fits(job_key) or (
                            self.config.backfill is not None and self._first_job_fits("random"))
                    mask[i] = fits_by_key[job_key]
            if not mask.any():
                # No void in the set and no job fits: every action starts nothing, so all
                # are equally valid (masked samplers need at least one).
                mask[:] = True
        return mask

    def render(self) -> str | np.ndarray | None:
        """The state at the current decision: with ``render_mode="ansi"`` a text (time,
        counts, the first waiting jobs, the cores per node), with ``"rgb_array"`` an (H, W, 3)
        uint8 image of the cores (``hdeeprm.rl.render``); None without a render mode."""
        if self.render_mode is None:
            return None
        snapshot = self._snapshot()
        hierarchy = self._layout
        if self.render_mode == "ansi":
            return render_ansi(snapshot, hierarchy, self.engine.jobs if snapshot.started else None)
        return render_rgb(snapshot, hierarchy)

    def _snapshot(self) -> Snapshot:
        """What render() shows, read from the implementation that runs the episode. The
        compiled steps update the engine's attributes at the episode's end only, but their
        state (``FastRun.fields()``) holds the same core, p-state and queue arrays as the
        Python reference's ResourceModel and QueueScheduler, current after every step."""
        if self.engine is None:
            m = self.platform.nb_machines
            return Snapshot(0.0, 0, np.zeros(0, np.int64), 0, 0, np.full(m, -1), np.full(m, P_IDLE_PROCESSOR),
                            True, started=False)
        if self._fast is not None:
            from hdeeprm.simulation.fastsim import JOB_KEY_ROW

            f = self._fast.fields()
            row = JOB_KEY_ROW["first"]  # always kept: the queue in submission order
            head = int(f["qk_head"][row])
            queue = f["qk"][row, head:head + int(f["q_len"])].copy()
            return Snapshot(float(f["now"]), self._steps, queue, int(f["nb_running"]), int(f["env_completed"]),
                            f["core_job"].copy(), f["sent_pstate"].copy(), self._done)
        resources = self.scheduler.resources
        pstate = resources.sent_pstate.copy()
        # power_actions: machines held asleep or switching are shown idle.
        core_job = np.where(resources.core_job == HELD, -1, resources.core_job)
        if self._pstates is not None or self.config.power_actions or self.config.shutdown is not None:
            # the platform's own p-states: busy / idle
            pstate = np.where(core_job >= 0, P_BUSY, P_IDLE_PROCESSOR)
        return Snapshot(float(self.engine.now), self._steps, np.array(self.scheduler.queue, dtype=np.int64),
                        int(self.engine.nb_running), self._completed, core_job, pstate, self._done)

    # ------------------------------------------------------------------ results

    @property
    def uses_compiled_path(self) -> bool:
        """Whether this environment's episodes run in compiled code (``hdeeprm.simulation.fastsim``,
        compiled once per machine on first use)."""
        return self._use_fast

    @property
    def now(self) -> float:
        if self._fast is not None:
            return float(self._fast_info[0])
        return self.engine.now if self.engine is not None else 0.0

    def result(self) -> SimulationResult:
        """The finished episode's outcome (Batsim outputs, metrics, over-utilisation)."""
        if self._fast is not None:
            if not self._done or self._fast.unfinished():
                raise RuntimeError("result() needs an episode that ran to its end")
            return self._fast.finish_engine()
        if self.engine is None or not self._done or self.engine.nb_unfinished:
            raise RuntimeError("result() needs an episode that ran to its end")
        result = self.engine.result()
        result.overutilization = self.scheduler.resources.records
        return result

    def close(self) -> None:
        """Release the simulator (with the Batsim backend: stop batsim, remove its temporary
        files)."""
        if self.engine is not None:
            self.engine.close()
        super().close()

    def window_job_indices(self) -> list[int]:
        """job_window: the episode's job indices that the actions mean now (slot order)."""
        if self._window is None:
            raise RuntimeError("window_job_indices() needs action_space='job_window'")
        return list(self._window.jobs)

    @property
    def episode_time_origin(self) -> float:
        """The episode's t = 0 on the trace's clock: seconds since the trace's first job."""
        return self.time_origin + float(self.workload.subtime[self.episode_start])

    def action_names(self) -> list[str]:
        """The actions' fixed names, in action order: the configuration's (a window's slots,
        not the jobs in them), each with its p-state under ``dvfs``."""
        base = self.config.action_names()
        if self._pstates is None:
            return base
        return [f"{name} @ p-state {k}" for k in self._pstates for name in base]

    def action_name(self, action: int) -> str:
        if self._pstates is not None:
            k, base = divmod(int(action), self._nb_base)
            return f"{self._base_action_name(base)} @ p-state {self._pstates[k]}"
        if self.config.power_actions and action >= len(self._actions):
            return POWER_ACTIONS[action - len(self._actions)]
        return self._base_action_name(action)

    def _base_action_name(self, action: int) -> str:
        if self._window is not None:
            jobs = self._window.jobs
            return f"job {jobs[action]}" if action < len(jobs) else f"empty window slot {action}"
        pair = self._actions[action]
        return "void" if pair is None else f"{pair[0]}:{pair[1]}"

    # ------------------------------------------------------------------ internals

    def _advance(self) -> bool:
        """Simulate up to the next point that calls for a decision; False at the end."""
        engine, scheduler, rewards = self.engine, self.scheduler, self._rewards
        window = self._window is not None
        while True:
            if window and self._held is None and scheduler.queue:
                rewards.busy = self._nb_busy()
                return True
            point = engine.next_decision_point()
            if point is None:
                rewards.advance(engine.now)
                return False
            rewards.advance(point.time)
            due = scheduler.admit(point)
            if self._power_mode is not None and point.pstate_changes:
                due = self._power_switched(point.pstate_changes) or due
            if self._pstates is not None and self.config.shutdown is not None:
                for hosts, pstate in point.pstate_changes:  # woken machines are back in their declared p-state
                    scheduler.resources.sent_pstate[np.asarray(hosts, dtype=np.int64)] = pstate
            if point.completed:
                rewards.leave(point.completed, engine)
                self._completed += len(point.completed)
            if point.submitted:
                admitted = [j for j in point.submitted if engine.job_state[j] != REJECTED]
                if admitted:
                    rewards.enter(admitted)
            if window:
                if due and self._held is not None:
                    if self.config.window_commit:
                        self._start_or_hold(self._held)
                    else:
                        self._held = None  # the agent chooses again, with what this event changed
                self._commit()
                continue
            if due and scheduler.queue:
                rewards.busy = self._nb_busy()
                return True
            if (self._power_mode is not None and (due or point.pstate_changes) and engine.nb_unfinished
                    and self._power_mask().any()):
                # power_actions: also a decision while no job waits (a machine to switch off or wake).
                rewards.busy = self._nb_busy()
                return True
            if self.config.shutdown is not None:
                scheduler.manage_power()
            self._commit()

    def _choose_job(self, action: int) -> None:
        jobs = self._window.jobs
        if action >= len(jobs):
            raise ValueError(f"action {action}: the window holds {len(jobs)} waiting jobs (see action_masks())")
        self._start_or_hold(jobs[action])

    def _start_or_hold(self, job: int) -> None:
        """The chosen job starts if it fits; otherwise it waits at the head (EASY backfills
        around it when configured)."""
        core_key = self.config.core_key(self.config.window_core_key)
        if self.scheduler.start_job(job, core_key):
            self._held = None
        else:
            self._held = job
            self.scheduler.backfill(job, core_key)

    def _commit(self) -> None:
        if self._pstates is not None:
            self._switch_pstates()
        started = self.scheduler.commit()
        if started:
            self._rewards.started(started)
            jobs = self.engine.jobs
            self._started += len(started)
            self._wait_sum += float(self.engine.now * len(started) - jobs.subtime[started].sum())
        self._rewards.busy = self._nb_busy()

    def _switch_pstates(self) -> None:
        """dvfs: switch the machines of the jobs about to start (picked since the last commit,
        backfilled ones included) to the last decision's p-state, just before they start, at
        the same instant (a computation p-state switch is immediate). They are idle, so no
        running job changes speed."""
        pending = self.scheduler._starts  # (job, hosts) that the next commit starts
        if not pending:
            return
        hosts = np.unique(np.concatenate([hosts for _, hosts in pending]))
        resources = self.scheduler.resources
        hosts = hosts[resources.sent_pstate[hosts] != self._dvfs_pstate]
        if hosts.size:
            self.engine.set_pstate(hosts, self._dvfs_pstate)
            resources.sent_pstate[hosts] = self._dvfs_pstate

    def _switch_idle_pstates(self) -> None:
        """dvfs_idle: void at the decision's p-state switches every idle machine to it, at once
        (a computation p-state switch is immediate and no job runs there)."""
        resources = self.scheduler.resources
        idle = np.flatnonzero(self.engine.busy_job < 0)
        idle = idle[resources.sent_pstate[idle] != self._dvfs_pstate]
        if idle.size:
            self.engine.set_pstate(idle, self._dvfs_pstate)
            resources.sent_pstate[idle] = self._dvfs_pstate

    def _nb_busy(self) -> int:
        """Machines serving a job (those held asleep or switching are not free but not busy)."""
        busy = self.platform.nb_machines - self.scheduler.resources.nb_free
        modes = self._machine_modes()
        if modes is not None:
            busy -= int((modes != _AWAKE).sum())
        return busy

    def _machine_modes(self) -> np.ndarray | None:
        """Each machine's mode (awake, switching off, asleep, switching on) under power_actions
        (the agent's) or shutdown (the shutdown rule's); None otherwise."""
        if self._power_mode is not None:
            return self._power_mode
        if self.config.shutdown is not None and self.scheduler is not None:
            return self.scheduler.mode
        return None

    # power_actions: machines switched off and woken by the agent. Those asleep or switching
    # are held out of the resource model (ResourceModel.hold, as the shutdown policy does), so
    # no core key picks them.

    def _switchable_off(self) -> np.ndarray:
        """Machines the agent may switch off: awake, idle, with a sleep p-state (lowest id first)."""
        return np.flatnonzero((self._power_mode == _AWAKE) & (self.scheduler.resources.core_job < 0)
                              & (self._sleep_pstate >= 0))

    def _power_mask(self) -> np.ndarray:
        """Which power actions are allowed (POWER_ACTIONS order): switching off needs an idle
        awake machine and an empty queue (waiting jobs need the awake machines; this also keeps
        an agent from switching off and being woken in a loop), waking a sleeping machine."""
        off = not self.scheduler.queue and self._switchable_off().size > 0
        wake = bool((self._power_mode == _ASLEEP).any())
        return np.array([off, off, wake, wake], dtype=bool)

    def _power_action(self, index: int) -> None:
        """Apply POWER_ACTIONS[index]; a masked one does nothing (as void)."""
        if not self._power_mask()[index]:
            return
        name = POWER_ACTIONS[index]
        if name.startswith("switch_off"):
            hosts = self._switchable_off()
        else:
            hosts = np.flatnonzero(self._power_mode == _ASLEEP)
        if name.endswith("_one"):
            hosts = hosts[:1]
        self._switch(hosts, on=name.startswith("wake"))

    def _switch(self, hosts: np.ndarray, on: bool) -> None:
        """Send ``hosts`` to sleep (held first) or wake them, grouped by target p-state."""
        if on:
            self._power_mode[hosts] = _SWITCHING_ON
            targets = self._awake_pstate
        else:
            self._power_mode[hosts] = _SWITCHING_OFF
            self.scheduler.resources.hold(hosts)
            targets = self._sleep_pstate
        for pstate in np.unique(targets[hosts]).tolist():
            self.engine.set_pstate(hosts[targets[hosts] == pstate], pstate)

    def _power_switched(self, changes) -> bool:
        """A point's finished switches (RESOURCE_STATE_CHANGED): machines switching off are
        asleep, machines switching on awake and back in the resource model. Returns whether
        some woke (a decision while jobs wait)."""
        woke = False
        mode = self._power_mode
        for hosts, _ in changes:
            hosts = np.asarray(hosts, dtype=np.int64)
            if mode[hosts[0]] == _SWITCHING_OFF:
                mode[hosts] = _ASLEEP
            elif mode[hosts[0]] == _SWITCHING_ON:
                mode[hosts] = _AWAKE
                self.scheduler.resources.unhold(hosts)
                woke = True
        return woke

    def _unstall_power(self) -> bool:
        """power_actions: after the agent's action, if nothing would ever happen again (jobs
        wait, none starts now, none runs, no machine is switching, no job is still to come),
        wake every sleeping machine, or, with all awake, run the first pair (void's override).
        Returns whether it did."""
        scheduler, engine, mode = self.scheduler, self.engine, self._power_mode
        if not scheduler.queue or scheduler._starts or engine.nb_running:
            return False
        if ((mode == _SWITCHING_OFF) | (mode == _SWITCHING_ON)).any():
            return False
        if engine.nb_unfinished != len(scheduler.queue):
            return False
        asleep = np.flatnonzero(mode == _ASLEEP)
        if asleep.size:
            self._switch(asleep, on=True)
        else:
            pair = self.config.actions[0]
            scheduler.schedule(pair[0], self.config.core_key(pair[1]))
        return True

    def _void_would_stall(self) -> bool:
        scheduler = self.scheduler
        if self.config.shutdown is not None:  # machines asleep are not free; a switch to come is an event
            nothing_runs = self.engine.nb_running == 0 and not scheduler.switching()
        else:
            nothing_runs = scheduler.resources.nb_free == self.platform.nb_machines
        return nothing_runs and self.engine.nb_unfinished == len(scheduler.queue)

    def _first_job_fits(self, job_key: str) -> bool:
        scheduler = self.scheduler
        if job_key == "random":
            return any(scheduler.resources.fit_status(j) == FITS for j in scheduler.queue)
        job = scheduler.first_by(job_key)
        return job is not None and scheduler.resources.fit_status(job) == FITS

    def _observe(self) -> np.ndarray:
        if self._window is not None:
            return self._window.build(self.scheduler, self._requests, self.engine.now)
        return self._observer.build(self.scheduler, self._requests, self.engine.jobs.req_work, self._machine_modes())

    # The fast path: the same steps in compiled code (hdeeprm.simulation.fastsim.envk), one call per step.

    def _start_fast_episode(self, rng: np.random.Generator) -> None:
        from hdeeprm.simulation import fastsim

        observer, engine = self._observer, self.engine
        self.scheduler = None
        self._fast = fastsim.FastRun(
            engine, job_keys={pair[0] for pair in self.config.actions},
            core_keys={self.config.core_key(pair[1]) for pair in self.config.actions},
            backfill=self.config.backfill, rng=rng,
            env=dict(obs_kind=OBSERVATIONS.index(observer.kind), hardware_size=observer.hardware_size,
                     node_slot=observer.node_slot, proc_slot=observer.proc_slot,
                     core_slot=observer.core_slot, limits=observer.limits,
                     sensitivity=observer.sensitivity, requests=self._requests,
                     req_work=engine.jobs.req_work, objective=HDEEPRM_OBJECTIVES.index(self.config.objective),
                     inverse_time=self._rewards.inverse_time))
        self._fast_info = np.zeros(7)
        self._done = not fastsim.envk.env_begin(self._fast.s)
        if self._done:
            self._fast.sync_engine()

    def _fast_view(self) -> np.ndarray:
        from hdeeprm.simulation.fastsim import envk

        obs = np.zeros(self._observer.size, np.float32)
        self._mask = np.empty(len(self._actions), dtype=bool)
        envk.env_view(self._fast.s, self._action_job_keys, self._done, obs, self._mask, self._fast_info)
        return obs

    def _fast_step(self, action: int):
        from hdeeprm.simulation.fastsim import envk

        s = self._fast.s
        job_key, core_key = self._action_codes[action]
        overridden = job_key < 0 and envk.void_would_stall(s)
        if overridden:
            job_key, core_key = self._action_codes[0]
        obs = np.zeros(self._observer.size, np.float32)
        self._mask = np.empty(len(self._actions), dtype=bool)
        terminated, truncated, reward = envk.env_step_view(
            s, job_key, core_key, self.config.max_steps or 0, self.config.max_sim_time or 0.0,
            self._action_job_keys, obs, self._mask, self._fast_info)
        self._steps += 1
        self._done = terminated or truncated
        if terminated:
            self._fast.sync_engine()
        return obs, float(reward * self.config.reward_scale), terminated, truncated, self._info(overridden)

    def _info(self, overridden: bool) -> dict:
        if self._fast is not None:
            time, queue, running, completed, started, wait_sum, energy = self._fast_info.tolist()
            return {
                "time": time,
                "queue_length": int(queue),
                "running_jobs": int(running),
                "completed_jobs": int(completed),
                "action_mask": self._mask.copy(),
                "void_overridden": bool(overridden),
                "episode_start": self.episode_start,
                "metrics": {
                    "started_jobs": int(started),
                    "mean_waiting_time": wait_sum / started if started else 0.0,
                    "consumed_joules": energy,
                },
            }
        engine = self.engine
        info = {
            "time": float(engine.now),
            "queue_length": len(self.scheduler.queue),
            "running_jobs": engine.nb_running,
            "completed_jobs": self._completed,
            "action_mask": self.action_masks(),
            "void_overridden": overridden,
            "episode_start": self.episode_start,
            "metrics": {
                "started_jobs": self._started,
                "mean_waiting_time": self._wait_sum / self._started if self._started else 0.0,
                "consumed_joules": float(engine.energy_so_far()),
            },
        }
        mode = self._machine_modes()
        if mode is not None:  # power_actions or shutdown: machines per mode
            info["power"] = {name: int((mode == m).sum()) for name, m in
                             (("awake", _AWAKE), ("switching_off", _SWITCHING_OFF), ("asleep", _ASLEEP),
                              ("switching_on", _SWITCHING_ON))}
        return info


def dvfs_pstates(platform: Platform) -> tuple[int, ...]:
    """The computation p-states an agent may choose on ``platform`` with ``dvfs``: all of
    them, in increasing order (not Batsim's sleep p-states nor their virtual switching ones).
    Raises ConfigError unless the platform is flat (no HDeepRM hierarchy, whose p-states
    HDeepRM's own rules set) and its machines all have the same computation p-states, two or
    more, of positive speed."""
    source = platform.source
    hierarchy = platform.hierarchy
    if hierarchy is not None:
        if set(hierarchy.processor_type) == {FLAT_TYPE}:
            raise ConfigError(f"dvfs: {source} comes with with_flat_hierarchy's hierarchy, which keeps only each "
                              "machine's declared p-state; give the flat platform itself")
        raise ConfigError(f"dvfs: {source} has HDeepRM's node/processor hierarchy, whose p-states HDeepRM's own "
                          "rules set (P0 busy, P1 bandwidth-throttled, P2 idle sibling, P3 idle processor); the "
                          "agent chooses p-states only on a flat SimGrid XML platform (no hierarchy) whose "
                          "machines have several computation p-states")
    # Each machine's computation p-states: all but Batsim's sleep and virtual (switching) ones.
    sleep = _sleep_states(platform)
    computation = [tuple(p for p in range(int(nb)) if sleep is None or sleep.kind[h, p] == _COMPUTATION)
                   for h, nb in enumerate(platform.nb_pstates.tolist())]
    if not computation:
        raise ConfigError(f"dvfs: {source} has no machine")
    other = next((h for h, states in enumerate(computation) if states != computation[0]), None)
    if other is not None:
        raise ConfigError(f"dvfs: the machines of {source} have different computation p-states ({len(computation[0])} "
                          f"on {platform.host_names[0]}, {len(computation[other])} on "
                          f"{platform.host_names[other]}); the agent's p-state choice needs the same p-states on "
                          "every machine")
    pstates = computation[0]
    if len(pstates) < 2:
        raise ConfigError(f"dvfs: the machines of {source} have {len(pstates)} computation p-state: no p-state to "
                          "choose (dvfs needs 2 or more, e.g. speed=\"100Mf, 50Mf, 20Mf\" in the XML)")
    speeds = platform.speeds[:, list(pstates)]
    bad = np.argwhere(~(np.isfinite(speeds) & (speeds > 0)))
    if bad.size:
        h, k = (int(x) for x in bad[0])
        raise ConfigError(f"dvfs: {source}: machine {platform.host_names[h]} has speed {speeds[h, k]!r} flop/s in "
                          f"p-state {pstates[k]}; every p-state the agent may choose needs a positive speed")
    return pstates


def power_pstates(platform: Platform, option: str = "power_actions") -> tuple[np.ndarray, np.ndarray]:
    """power_actions: per machine its sleep p-state (the first its ``sleep_pstates`` declares;
    -1 for a machine without one, which the agent never switches off) and the p-state it wakes
    to (the one the platform declares for it). Raises ConfigError unless the platform is flat
    (no HDeepRM hierarchy), some machine declares a sleep p-state and every machine starts in
    a computation p-state. ``option``: the option that needs it, as errors name it."""
    source = platform.source
    states = require_sleep_states(platform, option)
    sleep = states.first_sleep_pstate()
    awake = np.asarray(platform.initial_pstate, dtype=np.int64)
    machines = np.arange(len(awake))
    bad = np.flatnonzero(states.kind[machines, awake] != _COMPUTATION)
    if bad.size:
        raise ConfigError(f"{option}: {source}: machine {platform.host_names[bad[0]]} starts in p-state "
                          f"{awake[bad[0]]}, not a computation p-state")
    return sleep, awake


def _as_platform(platform, hierarchy) -> Platform:
    if isinstance(platform, Platform):
        if hierarchy is not None:
            raise ConfigError("hierarchy: give it with a platform path, not with a Platform object")
        return platform
    return load_platform(resolve_platform_name(platform), hierarchy=hierarchy)


def _as_workload_arrays(workload, platform: Platform, nb_jobs, seed, workload_model: str = "modern") -> WorkloadArrays:
    """The workload as arrays. ``workload_model`` "original" (see
    ``hdeeprm.inputs.workload.original_model``): an SWF trace is converted with the original's
    sampled over-estimation factors and no walltime (nothing killed), a Batsim JSON workload
    (file or :class:`Workload`) gets the original's ``-cw`` rewrite; "modern": as they are."""
    from hdeeprm.inputs.workload.original_model import (
        ORIGINAL_SWF_CONVERSION,
        check_workload_model,
        original_custom_workload,
        without_walltimes,
    )

    original = check_workload_model(workload_model) == "original"
    speed = platform.reference_speed_gflops
    if isinstance(workload, WorkloadArrays):
        if original:
            raise ConfigError("workload_model 'original': give the workload as a path or a Workload, whose "
                              "profiles it rewrites, not as compiled WorkloadArrays")
        return workload
    if isinstance(workload, Workload):
        return (original_custom_workload(workload, speed) if original else workload).compile()
    if not isinstance(workload, (str, os.PathLike)) or not os.fspath(workload):
        raise ConfigError(f"workload {shown(workload)}: expected a Workload, WorkloadArrays, a path or the "
                          f"name of a bundled trace ({', '.join(bundled_trace_names())})")
    # Experiment files' rule (hdeeprm.common.bundled.locate), from the working directory.
    path = locate(Path(), workload, "workload")
    if not Path(path).exists():
        raise WorkloadError(os.fspath(workload), None, "no such file, and no bundled trace of that name; "
                            f"expected a path or one of {', '.join(bundled_trace_names())}")
    loaded = load_workload(path, nb_jobs=nb_jobs, max_res=platform.nb_machines, reference_speed_gflops=speed,
                           rng=run_generators(seed)[0], **(ORIGINAL_SWF_CONVERSION if original else {}))
    if original:  # Batsim JSON by load_workload's rule, else a converted SWF trace
        json_file = str(path).lower().endswith(".json")
        loaded = original_custom_workload(loaded, speed) if json_file else without_walltimes(loaded)
    return loaded.compile()


def _read_options(options) -> tuple[str, Path, dict]:
    if isinstance(options, Mapping):
        return "options", Path.cwd(), dict(options)
    path = Path(options)
    return str(path), path.parent, read_json_object(path)




def _original_platform(path: str, source: str) -> str:
    """An options file's platform: the path, or, where it does not exist and its name is one
    of the original's platform examples (bundled here: ``/workspace/platforms/gaia.json``,
    ``../../platform_examples/learning.json``), the bundled platform of that name."""
    if Path(path).exists():
        return path
    import warnings

    from hdeeprm.inputs.platform.json_platform import bundled_platforms_dir

    bundled = bundled_platforms_dir() / Path(path).name
    if Path(path).suffix == ".json" and bundled.is_file():
        warnings.warn(f"{source}: platform_file_path {path} does not exist; using the bundled "
                      f"'{bundled.stem}' platform (the original's platform_examples/{bundled.name})", stacklevel=3)
        return str(bundled)
    return path  # the loader reports it missing


def _original_trace(path: str, source: str) -> str:
    from hdeeprm.rl.original_options import THESIS_TRACES

    if Path(path).exists():
        return path
    known = THESIS_TRACES.get(Path(path).name)
    if known is None:
        return path  # the loader reports it missing (or finds a bundled trace of that name)
    raise WorkloadError(source, "workload_file_path",
                        f"{path}: no such file; the original's thesis experiments used {known.description} of the "
                        f"Parallel Workloads Archive ({known.names[0]}, {known.url}): download it and give its path "
                        "here, or pass a Batsim JSON workload with -cw; `hdeeprm thesis` runs each thesis experiment "
                        "with the data bundled here")


def _resolve(base: Path, value, key: str = "path") -> str:
    if not isinstance(value, (str, os.PathLike)) or not str(value):
        raise ConfigError(f"{key} {shown(value)}: expected a file path (a non-empty string)")
    path = Path(value)
    return str(path if path.is_absolute() else base / path)
