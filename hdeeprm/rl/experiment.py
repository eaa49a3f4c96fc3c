"""Typed experiments for ``hdeeprm train`` and ``hdeeprm evaluate``.

An experiment file is a JSON object with the fields of ``ExperimentConfig`` (unknown keys
are errors). ``platform`` is a path or a bundled platform name; ``workload`` a path, or the
name of a bundled trace (``kth-sp2-head.swf.gz``); relative paths are taken from the file's
folder. ``hdeeprm train quickstart`` runs the bundled quick-start experiment.

Training runs ``episodes`` episodes, each on a window of ``episode_jobs`` jobs drawn from the
seed of that episode, and writes the HDeepRM logs, the checkpoint ``model.pt`` and the
resolved configuration into the output folder. Evaluation runs the agent (greedy) and,
for comparison, every classic key pair (with and without EASY backfilling) and random valid
actions on the same held-out windows, and compares them pairwise (``hdeeprm.rl.train.evaluate``).

Data splits (``split``): parts of the workload by submission order, as fractions of its
jobs, e.g. ``{"train": [0, 0.7], "validation": [0.7, 0.8], "test": [0.8, 1]}``, or a
separate ``test_workload`` file. Training draws its windows from the training part only,
the observation's feature scaling is fixed from the training part, checkpoints are chosen
on the validation part, and evaluation runs on consecutive, non-overlapping windows of the
test part. Without a split, every part is the whole workload and evaluation windows are
only other random draws from the jobs trained on: the evaluation says so.

``conversion``: options of the SWF conversion (``hdeeprm.inputs.workload.ConversionOptions``), e.g.
``{"memory_demand": "none"}``; ``action_space``, ``window_jobs``, ``window_core_key``,
``backfill`` (null, ``"easy"`` or ``"conservative"``), ``bsld_bound``, ``waiting_watts`` (energy_waiting's
price of one waiting job, W), ``high_cores``, ``dvfs`` (the
agent also chooses the p-state of its jobs' machines, on a flat XML platform with several p-states,
which is then kept with its own p-states; ``dvfs_idle``: void at a p-state also switches the idle
machines to it) and ``power_actions`` (the agent also switches idle machines
off and wakes sleeping ones, on a flat XML platform with Batsim sleep p-states) and ``shutdown`` (the
shutdown policy under the agent: idle seconds before a machine sleeps) are HeteroEnv's (``hdeeprm.rl.env.EnvConfig``). ``objective``
may also name a user function, ``"file.py:function"`` (see ``hdeeprm.simulation.objectives``).
"""

from __future__ import annotations

import functools
import json
import math
import os
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Any

import numpy as np

from hdeeprm.common.bundled import DATA_DIR, locate
from hdeeprm.common.checks import is_finite_number, is_int, shown
from hdeeprm.common.errors import ConfigError
from hdeeprm.common.jsonfile import read_json_object
from hdeeprm.common.seeding import check_seed, episode_seeds, run_generators
from hdeeprm.inputs.platform import load_platform, resolve_platform_name
from hdeeprm.inputs.platform.flat import with_flat_hierarchy
from hdeeprm.inputs.platform.model import Platform
from hdeeprm.inputs.workload import ConversionOptions, job_limits, load_workload, require_jobs, swf_to_workload
from hdeeprm.inputs.workload.model import WorkloadArrays
from hdeeprm.rl.env import (
    DEFAULT_PLATFORM,
    DEFAULT_WORKLOAD,
    MAX_COUNT,
    EnvConfig,
    HeteroEnv,
    dvfs_pstates,
    parse_action_set,
    power_pstates,
)
from hdeeprm.rl.original_options import MAX_HIDDEN
from hdeeprm.simulation.keys import DEFAULT_PAIRS
from hdeeprm.simulation.objectives import DEFAULT_WAITING_WATTS, OBJECTIVES, load_user_objective

ALGORITHM_NAMES = ("ppo", "kernel_ppo", "reinforce", "actor_critic")
PART_NAMES = ("train", "validation", "test")
EPISODE_OUTPUTS = ("all", "last", "none")
MAX_ROLLOUT_BATCH = 4096  # environments run side by side


@dataclass(frozen=True)
class ExperimentConfig:
    platform: str = DEFAULT_PLATFORM
    workload: str = DEFAULT_WORKLOAD
    hierarchy: str | None = None
    nb_jobs: int | None = None
    episode_jobs: int | None = 100
    objective: str = "avg_job_slowdown"
    observation: str = "small"
    queue_sensitivity: float = 0.05
    actions: dict | None = None  # the original's {"selection": [...], "void": bool}
    reward_scale: float = 1.0
    algorithm: str = "ppo"
    episodes: int = 400
    gamma: float = 0.99
    hidden: int = 64
    lr: float = 1e-3
    seed: int = 0
    eval_episodes: int = 8
    rollout_batch: int | None = None  # episodes per update, collected in parallel (hdeeprm.rl.train)
    action_space: str = "pairs"
    window_jobs: int = 32
    window_core_key: str = "high_gflops"
    window_commit: bool = True
    backfill: str | None = None
    bsld_bound: float = 10.0
    waiting_watts: float = DEFAULT_WAITING_WATTS  # energy_waiting: what one waiting job costs (W)
    high_cores: str = "most_free"  # "most_busy": high_cores as the original's code ran it
    dvfs: bool = False  # the agent also picks its jobs' p-states (flat platforms with several; hdeeprm.rl.env)
    dvfs_idle: bool = False  # with dvfs, void at a p-state also sets the idle machines' (hdeeprm.rl.env)
    power_actions: bool = False  # the agent also switches machines off and on (sleep p-states; hdeeprm.rl.env)
    shutdown: float | None = None  # the shutdown policy under the agent: idle seconds before sleep (hdeeprm.rl.env)
    conversion: dict | None = None
    split: dict | None = None
    test_workload: str | None = None
    validation_every: int | None = None  # episodes between checkpoint selections (None: no selection)
    validation_episodes: int = 8
    eval_window_starts: list | None = None  # explicit evaluation windows: first jobs in the test part
    eval_episode_jobs: int | None = None  # jobs per evaluation (and validation) window; default episode_jobs
    pretrain: dict | None = None  # behaviour cloning first (hdeeprm.rl.agents.imitation)
    vectorised: bool = False  # PPO on rollout_batch environments with batched inference (hdeeprm.rl.train)
    # Batsim outputs of the training episodes in episode_<k>/: every episode's (six files each),
    # the last episode's only, or none (logs, checkpoints and the evaluation are written anyway).
    episode_outputs: str = "all"

    def __post_init__(self):
        if not isinstance(self.algorithm, str) or self.algorithm not in ALGORITHM_NAMES:
            raise ConfigError(f"algorithm {shown(self.algorithm)}: expected one of {', '.join(ALGORITHM_NAMES)}")
        for name in ("episodes", "eval_episodes"):
            value = getattr(self, name)
            if not is_int(value) or not 1 <= value <= MAX_COUNT:
                raise ConfigError(f"{name} {shown(value)}: expected a positive integer up to 2**63-1")
        if not is_int(self.hidden) or not 1 <= self.hidden <= MAX_HIDDEN:
            raise ConfigError(f"hidden {shown(self.hidden)}: expected an integer from 1 to {MAX_HIDDEN}")
        if self.rollout_batch is not None and (not is_int(self.rollout_batch)
                                               or not 1 <= self.rollout_batch <= MAX_ROLLOUT_BATCH):
            raise ConfigError(f"rollout_batch {shown(self.rollout_batch)}: expected an integer from 1 to "
                              f"{MAX_ROLLOUT_BATCH}, or null")
        # Types first, then ranges.
        for name in ("lr", "queue_sensitivity", "reward_scale", "bsld_bound", "waiting_watts", "gamma"):
            value = getattr(self, name)
            if not is_finite_number(value):
                raise ConfigError(f"{name} {shown(value)}: expected a finite number")
        if not 0 < self.gamma <= 1:
            raise ConfigError(f"gamma {self.gamma!r}: expected a number in (0, 1]")
        if not self.lr > 0:
            raise ConfigError(f"lr {self.lr!r}: expected a finite number > 0")
        check_seed(self.seed)
        if self.nb_jobs is not None and (not is_int(self.nb_jobs) or not 1 <= self.nb_jobs <= MAX_COUNT):
            raise ConfigError(f"nb_jobs {shown(self.nb_jobs)}: expected a positive integer or null")
        if not (isinstance(self.objective, str) or callable(self.objective)):
            raise ConfigError(f"objective {shown(self.objective)}: expected a name ({', '.join(OBJECTIVES)}) "
                              "or FILE.py:FUNCTION")
        for name in ("platform", "workload"):
            if not isinstance(getattr(self, name), str) or not getattr(self, name):
                raise ConfigError(f"{name} {shown(getattr(self, name))}: expected a path or a bundled name")
        for name in ("hierarchy", "test_workload"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, str) or not value):
                raise ConfigError(f"{name} {shown(value)}: expected a path or null")
        for name in ("validation_every", "validation_episodes", "eval_episode_jobs"):
            value = getattr(self, name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
                raise ConfigError(f"{name} {value!r}: expected a positive integer")
        if self.conversion is not None:
            if not isinstance(self.conversion, dict):
                raise ConfigError(f"conversion {self.conversion!r}: expected an object of SWF conversion options")
            ConversionOptions.from_dict(self.conversion)
        _check_split(self.split)
        if not isinstance(self.vectorised, bool):
            raise ConfigError(f"vectorised {self.vectorised!r}: expected true or false")
        if self.episode_outputs not in EPISODE_OUTPUTS:
            raise ConfigError(f"episode_outputs {shown(self.episode_outputs)}: expected one of "
                              f"{', '.join(EPISODE_OUTPUTS)}")
        if self.pretrain is not None:
            from hdeeprm.rl.agents.imitation import PretrainConfig

            PretrainConfig.from_dict(self.pretrain)
        if self.eval_window_starts is not None and (
                not isinstance(self.eval_window_starts, list) or not self.eval_window_starts
                or any(isinstance(x, bool) or not isinstance(x, int) or x < 0 for x in self.eval_window_starts)):
            raise ConfigError(f"eval_window_starts {self.eval_window_starts!r}: expected a list of job indices >= 0")
        if self.test_workload is not None and self.split is not None and "test" in self.split:
            raise ConfigError("test_workload and split.test: give the test part one way only")
        self.env_config()  # validates the environment's fields too

    @classmethod
    def load(cls, source: str | os.PathLike, **overrides: Any) -> "ExperimentConfig":
        """From a file, or a bundled experiment name; ``overrides`` (not None) win."""
        path = Path(source)
        if not path.suffix and not path.exists():
            bundled = DATA_DIR / "experiments" / f"{source}.json"
            if not bundled.is_file():
                raise ConfigError(f"{source}: no such experiment file or bundled experiment")
            path = Path(str(bundled))
        data = read_json_object(path)
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError(f"{path}: unknown key {unknown[0]!r}; expected some of {', '.join(sorted(known))}")
        data.update({k: v for k, v in overrides.items() if v is not None})
        data.setdefault("workload", cls.workload)  # the default is a bundled trace: found like a named one
        for key in ("platform", "workload", "hierarchy", "test_workload"):
            if key in data and data[key] is not None and (not isinstance(data[key], str) or not data[key]):
                raise ConfigError(f"{path}: {key} {shown(data[key])}: expected a path or a bundled name")
            if data.get(key):
                data[key] = locate(path.parent, data[key], key)
        objective = data.get("objective")
        if isinstance(objective, str) and ":" in objective and objective.partition(":")[0].endswith(".py"):
            file_part, _, name = objective.rpartition(":")
            if not Path(file_part).is_absolute():
                data["objective"] = f"{path.parent / file_part}:{name}"
        return cls(**data)

    def objective_value(self):
        """The objective as HeteroEnv takes it: a name, or the user's function."""
        if callable(self.objective) or self.objective in OBJECTIVES:
            return self.objective
        return load_user_objective(self.objective)

    def env_config(self) -> EnvConfig:
        pairs, void = parse_action_set(self.actions) if self.actions is not None else (DEFAULT_PAIRS, True)
        return EnvConfig(objective=self.objective_value(), queue_sensitivity=self.queue_sensitivity,
                         observation=self.observation, actions=pairs, void=void,
                         episode_jobs=self.episode_jobs, reward_scale=self.reward_scale,
                         action_space=self.action_space, window_jobs=self.window_jobs,
                         window_core_key=self.window_core_key, window_commit=self.window_commit,
                         backfill=self.backfill,
                         bsld_bound=self.bsld_bound, waiting_watts=self.waiting_watts, high_cores=self.high_cores, dvfs=self.dvfs,
                         dvfs_idle=self.dvfs_idle,
                         power_actions=self.power_actions, shutdown=self.shutdown)

    def make_env(self, part: str = "train", *, backend: str = "embedded", backend_options=None,
                 **env_overrides) -> HeteroEnv:
        """The environment on one part of the data (``train``, ``validation`` or ``test``),
        its observation scaled by the training part's job limits."""
        if part not in PART_NAMES:
            raise ConfigError(f"part {part!r}: expected one of {', '.join(PART_NAMES)}")
        config = self.env_config()
        if env_overrides:
            config = replace(config, **env_overrides)
        data = self.data()
        workload = data.parts[part]
        if config.episode_jobs is not None and config.episode_jobs > len(workload):
            raise ConfigError(f"episode_jobs {config.episode_jobs}: the {part} part of {self.workload} has "
                              f"only {len(workload)} jobs")
        return HeteroEnv(data.platform, workload, config, feature_limits=data.limits, backend=backend,
                         backend_options=backend_options, time_origin=data.origins[part])

    def data(self) -> "ExperimentData":
        """The platform and the workload's parts (loaded once per process)."""
        return _load_data(json.dumps(self.as_dict(), sort_keys=True))

    @property
    def held_out(self) -> bool:
        """Whether evaluation windows come from jobs that training never sees."""
        return self.test_workload is not None or (self.split is not None and "test" in self.split)

    @property
    def held_out_or_fixed(self) -> bool:
        return self.held_out or self.eval_window_starts is not None

    def evaluation_starts(self, count: int | None = None) -> list[int] | None:
        """Starts of the evaluation windows in the test part: consecutive, never overlapping
        (None without a held-out test part: then windows are drawn at random)."""
        if not self.held_out_or_fixed:
            return None
        n = len(self.data().parts["test"])
        size = self.evaluation_jobs or n
        count = self.eval_episodes if count is None else count
        if self.eval_window_starts is not None:
            bad = [x for x in self.eval_window_starts if x + size > n]
            if bad:
                raise ConfigError(f"eval_window_starts: window {bad[0]}..{bad[0] + size - 1} ends past the "
                                  f"{n} jobs of the test part")
            return list(self.eval_window_starts[:count])
        available = n // size
        if available < 1:
            raise ConfigError(f"episode_jobs {size}: the test part holds only {n} jobs")
        return [k * size for k in range(min(count, available))]

    def evaluation_windows(self, count: int | None = None) -> list[tuple[int, dict | None]]:
        """The evaluation's episodes as (seed, reset options): the test part's consecutive
        windows when there is one, else ``eval_episodes`` random windows from seeds never
        used in training. The seed also draws the ``random`` keys."""
        count = self.eval_episodes if count is None else count
        starts = self.evaluation_starts(count)
        seeds = episode_seeds(self.seed, count, stream=1)
        if starts is None:
            return [(seed, None) for seed in seeds]
        if self.evaluation_jobs is None:
            return [(seeds[0], None)]
        return [(seeds[k], {"window_start": start}) for k, start in enumerate(starts)]

    @property
    def evaluation_jobs(self) -> int | None:
        """Jobs per evaluation and validation window."""
        return self.eval_episode_jobs or self.episode_jobs

    def validation_windows(self) -> list[tuple[int, dict | None]]:
        """Consecutive windows of the validation part, for checkpoint selection."""
        n = len(self.data().parts["validation"])
        size = self.evaluation_jobs or n
        if n < size:
            raise ConfigError(f"episode_jobs {size}: the validation part holds only {n} jobs")
        seeds = episode_seeds(self.seed, self.validation_episodes, stream=4)
        if self.evaluation_jobs is None:
            return [(seeds[0], None)]
        return [(seeds[k], {"window_start": k * size}) for k in range(min(self.validation_episodes, n // size))]

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class ExperimentData:
    platform: Platform
    parts: dict  # part name -> WorkloadArrays
    limits: np.ndarray  # (4,) the training part's job limits (time, cores, memory, bandwidth)
    origins: dict  # part name -> its t = 0 on the trace's clock (s since the first job)


@functools.lru_cache(maxsize=2)
def _load_data(config_json: str) -> ExperimentData:
    config = ExperimentConfig(**json.loads(config_json))
    platform = load_platform(resolve_platform_name(config.platform), hierarchy=config.hierarchy)
    if config.dvfs:
        dvfs_pstates(platform)  # a flat platform with several p-states, kept as it is: the agent sets them
    elif config.power_actions or config.shutdown is not None:
        # a flat platform with sleep p-states, kept as it is: they are switched
        power_pstates(platform, "power_actions" if config.power_actions else "shutdown")
    elif platform.hierarchy is None:
        platform = with_flat_hierarchy(platform)
    whole, trace_origin = _load_workload(config.workload, platform, config.nb_jobs, config)
    parts, origins = {}, {}
    for name in PART_NAMES:
        lo, hi = (config.split or {}).get(name, (0.0, 1.0))
        start, stop = round(lo * len(whole)), round(hi * len(whole))
        if stop <= start:
            raise ConfigError(f"split.{name} [{lo}, {hi}]: holds no job of the {len(whole)} in {config.workload}")
        parts[name] = whole if (start, stop) == (0, len(whole)) else whole.window(start, stop - start)
        origins[name] = trace_origin + float(whole.subtime[start])
    if config.split is not None and "validation" not in config.split:
        parts["validation"], origins["validation"] = parts["train"], origins["train"]
    if config.test_workload is not None:
        parts["test"], origins["test"] = _load_workload(config.test_workload, platform, None, config)
    limits = job_limits(parts["train"])
    return ExperimentData(platform, parts, np.array([limits.max_time, limits.max_core, limits.max_mem,
                                                     limits.max_mem_bw]), origins)


def _load_workload(path: str, platform: Platform, nb_jobs: int | None,
                   config: ExperimentConfig) -> tuple[WorkloadArrays, float]:
    """The workload's jobs, and its t = 0 on the trace's clock (an SWF conversion shifts
    submit times so that the first job is at 0; F1 scores read the trace's own times)."""
    options = ConversionOptions.from_dict({"nb_jobs": nb_jobs, "max_res": platform.nb_machines,
                                           "reference_speed_gflops": platform.reference_speed_gflops,
                                           **(config.conversion or {})})
    rng = run_generators(config.seed)[0]
    if str(path).lower().endswith(".json"):
        loaded, origin = load_workload(path, options, rng=rng), 0.0
    else:
        loaded, report = swf_to_workload(path, options, rng=rng)
        require_jobs(path, loaded, report)
        origin = report.time_offset_s
    return loaded.compile(), origin


def _check_split(split) -> None:
    if split is None:
        return
    if not isinstance(split, dict) or not split:
        raise ConfigError(f"split {split!r}: expected an object such as "
                          '{"train": [0, 0.7], "validation": [0.7, 0.8], "test": [0.8, 1]}')
    unknown = sorted(set(split) - set(PART_NAMES))
    if unknown:
        raise ConfigError(f"split.{unknown[0]}: unknown part; expected some of {', '.join(PART_NAMES)}")
    if "train" not in split:
        raise ConfigError("split.train: missing; expected [start, end] fractions of the jobs")
    ranges = []
    for name, bounds in split.items():
        if (not isinstance(bounds, (list, tuple)) or len(bounds) != 2
                or any(isinstance(b, bool) or not isinstance(b, (int, float)) or not math.isfinite(b) for b in bounds)
                or not 0 <= bounds[0] < bounds[1] <= 1):
            raise ConfigError(f"split.{name} {bounds!r}: expected [start, end] with 0 <= start < end <= 1")
        ranges.append((bounds[0], bounds[1], name))
    ranges.sort()
    for (_, end, first), (start, _, second) in zip(ranges, ranges[1:]):
        if start < end:
            raise ConfigError(f"split.{first} and split.{second} overlap: a job must belong to one part only")
