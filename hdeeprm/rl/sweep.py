"""Evaluation grids: ``hdeeprm sweep GRID_FILE --out DIR [--engine local|ray] [--workers N]``.

A grid file is a JSON object with the fields of :class:`GridConfig` (unknown keys are
errors); relative paths are taken from its folder:

  experiment   the base experiment: a file, or a bundled name (``quickstart``) (required)
  platforms    platforms to evaluate on (default: the experiment's)
  workloads    workloads / traces (default: the experiment's)
  overrides    list of objects of experiment fields to change, one cell set each (default
               ``[{}]``), e.g. ``{"episode_jobs": 200}`` or ``{"eval_episodes": 4}``
  policies     ``JOBKEY:COREKEY``, ``JOBKEY:COREKEY+easy`` / ``+conservative`` (backfilling), ``classic``
               (the 36 pairs of the original action set) or ``random`` (random valid
               actions) (default ``["classic"]``)
  checkpoints  agent checkpoints written by ``hdeeprm train``, run greedily (default none)
  seeds        root seeds (default: the experiment's)
  outputs      write each window's Batsim outputs (default true; false: metrics only)
  backend      the simulator every cell runs on: ``embedded`` (default) or ``batsim`` (real
               Batsim, one process per episode in its own temporary folder)
  batsim       the batsim executable (default: $HDEEPRM_BATSIM, then PATH)
  timeout      longest wait for a Batsim message, seconds (default 120)
  networks     network models of the platform as Batsim sees it: ``zero-latency`` (default)
               and/or ``links`` (the original's link model; needs platform JSONs). On the
               embedded backend, the energy accounting Batsim has on that network
  options      original HDeepRM options files, as ``"FILE"`` or ``{"file": FILE, "model":
               CKPT}``: cross-validated by ``hdeeprm crossval --grid`` (not swept)

The grid is the product platforms x workloads x overrides x networks x (policies +
checkpoints) x seeds, in that order. One cell evaluates one policy exactly as ``hdeeprm evaluate`` does:
on the experiment's ``eval_episodes`` held-out windows of ``episode_jobs`` jobs drawn from
the cell's seed (which also seeds the trace conversion), so a cell of seed s reproduces the
row of ``hdeeprm evaluate`` with ``--seed s``.

Outputs, in ``--out DIR``:
  cells/<name>/      per cell: metrics.json (parameters, per-window and mean metrics),
                     episode_<k>/ (Batsim outputs of window k), timing.json (wall seconds);
                     written to a temporary folder, then renamed into place
  results.csv        one row per cell, in grid order, whatever order cells finished in; its
                     columns are described in TABLE_COLUMNS (shared with evaluation.csv)
  errors/<name>.txt  the traceback of each failed cell
  sweep.json         the last run: engine, workers, wall time, counts
  manifest.json      the last run's command line, versions, input checksums, seeds and
                     machine (hdeeprm.common.manifest; written by the command line)
The ranking printed at the end is hdeeprm.analysis.tables.print_sweep_summary.
A cell's name is its policy, seed and a hash of all its parameters (paths as written, the
experiment's resolved fields, the checkpoint's content): running the same grid again skips
the cells already in ``cells/`` (an interrupted sweep resumes) and retries failed ones.
Everything but timing.json, timing columns, sweep.json and manifest.json is identical whatever the engine,
the number of workers or the order of completion: each cell's randomness comes from its own
seed only. ``hdeeprm sweep --backend batsim`` (or ``"backend": "batsim"``) runs the same
cells on real Batsim; ``hdeeprm crossval --grid GRID`` compares both backends cell by cell
(hdeeprm.analysis.crossval).
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import math
import os
import shutil
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field, fields, replace
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hdeeprm.common.checks import is_finite_number, shown
from hdeeprm.common.errors import ConfigError
from hdeeprm.common.jsonfile import read_json_object
from hdeeprm.common.parallel import WorkerEngine
from hdeeprm.common.progress import Progress
from hdeeprm.common.seeding import SEED_MAX
from hdeeprm.simulation.keys import DEFAULT_PAIRS

# The experiment, policies and simulation modules are imported where they are used, so that
# ``hdeeprm --help`` does not pay for them.
if TYPE_CHECKING:
    from hdeeprm.rl.experiment import ExperimentConfig

PATH_FIELDS = ("platform", "workload", "hierarchy")
BACKENDS = ("embedded", "batsim")  # hdeeprm.backends.BACKENDS, without importing the backends
NETWORKS = ("zero-latency", "links")
DEFAULT_NETWORK = "zero-latency"
MAX_CELLS = 100_000  # cells of one grid: every one is built and checked before the sweep starts

#: The columns of the tables of evaluated policies: ``evaluation.csv`` (``hdeeprm evaluate``
#: and ``train``, one row per policy) and ``results.csv`` (``hdeeprm sweep``, one row per
#: cell), as {name: (kind, meaning)}. One quantity has one name in both tables. Over the
#: evaluation windows of a row: ``<x>_mean`` and ``<x>_std`` are the mean and the standard
#: deviation (sample, n - 1: NaN for one window) of a per-window value x; a metric of Batsim's
#: out_schedule.csv keeps Batsim's name (``makespan``, ``consumed_joules``, ...) and is its
#: mean over the windows. Kinds say how a table for people shows the value ("time": s,
#: "energy": J, "count", "number"; see hdeeprm.analysis.tables.format_value); the CSV files
#: keep every digit.
TABLE_COLUMNS: dict[str, tuple[str, str]] = {
    "windows": ("count", "evaluation windows played (episodes)"),
    "objective_mean": ("number", "the experiment's objective (lower is better), mean over the windows"),
    "objective_std": ("number", "the objective, standard deviation over the windows"),
    "return_mean": ("number", "the episode's return (summed rewards; higher is better), mean over the windows"),
    "return_std": ("number", "the return, standard deviation over the windows"),
    "makespan": ("time", "Batsim's makespan, s, mean over the windows"),
    "mean_waiting_time": ("time", "Batsim's mean waiting time, s, mean over the windows"),
    "mean_slowdown": ("number", "Batsim's mean slowdown, mean over the windows"),
    "mean_bounded_slowdown": ("number", "mean bounded slowdown (10 s bound), mean over the windows"),
    "utilization": ("number", "busy machine-seconds / (machines x makespan), mean over the windows"),
    "consumed_joules": ("energy", "Batsim's consumed_joules (energy), J, mean over the windows"),
    "nb_jobs": ("count", "jobs, summed over the windows"),
    "nb_finished": ("count", "jobs that finished, summed over the windows"),
    "nb_rejected": ("count", "jobs rejected, summed over the windows"),
}
#: The per-window metrics both tables average (the per-window files, evaluation_windows.csv
#: and a cell's metrics.json, name them so too, with ``return`` and ``objective``).
WINDOW_METRICS = ("makespan", "mean_waiting_time", "mean_slowdown", "mean_bounded_slowdown", "utilization",
                  "consumed_joules")
METRIC_COLUMNS = ("return_mean", "return_std") + WINDOW_METRICS
COUNT_COLUMNS = ("nb_jobs", "nb_finished", "nb_rejected")
RESULT_COLUMNS = (("cell", "platform", "workload", "overrides", "policy", "seed", "status", "windows")
                  + METRIC_COLUMNS + COUNT_COLUMNS + ("error",))


# ---------------------------------------------------------------------- the grid file


@dataclass(frozen=True)
class GridConfig:
    """An evaluation grid (module docstring). ``source``: the file it came from."""

    experiment: str
    platforms: tuple[str, ...] | None = None
    workloads: tuple[str, ...] | None = None
    overrides: tuple[dict, ...] = ({},)
    policies: tuple[str, ...] = ("classic",)
    checkpoints: tuple[str, ...] = ()
    seeds: tuple[int, ...] | None = None
    outputs: bool = True
    backend: str = "embedded"
    batsim: str | None = None
    timeout: float = 120.0
    networks: tuple[str, ...] = (DEFAULT_NETWORK,)
    options: tuple[dict, ...] = ()  # {"file": str, "model": str | None}
    source: str = field(default="grid", compare=False)

    @classmethod
    def load(cls, path: str | os.PathLike) -> "GridConfig":
        path = Path(path)
        if not path.is_file():
            raise ConfigError(f"{path}: grid file not found")
        data = read_json_object(path)
        known = {f.name for f in fields(cls)} - {"source"}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError(f"{path}: unknown key {unknown[0]!r}; expected some of {', '.join(sorted(known))}")
        if "experiment" not in data:
            raise ConfigError(f"{path}: experiment: missing; expected an experiment file or a bundled name (quickstart)")
        return cls.from_dict(data, source=str(path))

    @classmethod
    def from_dict(cls, data: dict, source: str = "grid") -> "GridConfig":
        from hdeeprm.rl.experiment import ExperimentConfig

        def strings(key, allow_empty=False):
            value = data[key]
            if (not isinstance(value, list) or not all(isinstance(v, str) and v for v in value)
                    or (not value and not allow_empty)):
                raise ConfigError(f"{source}: {key}: expected a {'' if allow_empty else 'non-empty '}"
                                  f"list of strings, got {value!r}")
            return tuple(value)

        values: dict[str, Any] = {"source": source}
        if not isinstance(data.get("experiment"), str) or not data["experiment"]:
            raise ConfigError(f"{source}: experiment: expected an experiment file or a bundled name, "
                              f"got {data.get('experiment')!r}")
        values["experiment"] = data["experiment"]
        for key in ("platforms", "workloads", "policies"):
            if key in data:
                # a grid of options files alone (for crossval) has no policy
                values[key] = strings(key, allow_empty=key == "policies" and bool(data.get("options")))
                _no_duplicates(values[key], f"{source}: {key}", key[:-1])
        if "checkpoints" in data:
            values["checkpoints"] = strings("checkpoints", allow_empty=True)
            _no_duplicates(values["checkpoints"], f"{source}: checkpoints", "checkpoint")
        if "seeds" in data:
            seeds = data["seeds"]
            if (not isinstance(seeds, list) or not seeds
                    or not all(isinstance(s, int) and not isinstance(s, bool) and 0 <= s <= SEED_MAX for s in seeds)):
                raise ConfigError(f"{source}: seeds: expected a non-empty list of integers from 0 to 2**63-1, "
                                  f"got {shown(seeds)}")
            _no_duplicates(seeds, f"{source}: seeds", "seed")
            values["seeds"] = tuple(seeds)
        if "overrides" in data:
            overrides = data["overrides"]
            if not isinstance(overrides, list) or not overrides or not all(isinstance(o, dict) for o in overrides):
                raise ConfigError(f"{source}: overrides: expected a non-empty list of objects of experiment "
                                  f"fields, got {overrides!r}")
            known = {f.name for f in fields(ExperimentConfig)}
            for i, block in enumerate(overrides):
                for key in block:
                    if key == "seed":
                        raise ConfigError(f"{source}: overrides[{i}].seed: give seeds in 'seeds'")
                    if key not in known:
                        raise ConfigError(f"{source}: overrides[{i}]: unknown key {key!r}; expected some of "
                                          f"{', '.join(sorted(known - {'seed'}))}")
            values["overrides"] = tuple(overrides)
        if "outputs" in data:
            if not isinstance(data["outputs"], bool):
                raise ConfigError(f"{source}: outputs: expected true or false, got {data['outputs']!r}")
            values["outputs"] = data["outputs"]
        if "backend" in data:
            if data["backend"] not in BACKENDS:
                raise ConfigError(f"{source}: backend: expected one of {', '.join(BACKENDS)}, got {data['backend']!r}")
            values["backend"] = data["backend"]
        if "batsim" in data:
            if data["batsim"] is not None and (not isinstance(data["batsim"], str) or not data["batsim"]):
                raise ConfigError(f"{source}: batsim: expected the path of the batsim executable, got {data['batsim']!r}")
            values["batsim"] = data["batsim"]
        if "timeout" in data:
            timeout = data["timeout"]
            if not is_finite_number(timeout) or not timeout > 0:
                raise ConfigError(f"{source}: timeout: expected a number of seconds > 0 (finite), got {shown(timeout)}")
            values["timeout"] = float(timeout)
        if "networks" in data:
            networks = strings("networks")
            for i, network in enumerate(networks):
                if network not in NETWORKS:
                    raise ConfigError(f"{source}: networks[{i}]: expected one of {', '.join(NETWORKS)}, got {network!r}")
            if len(set(networks)) != len(networks):
                raise ConfigError(f"{source}: networks: a network is listed twice")
            values["networks"] = networks
        if "options" in data:
            values["options"] = _options_entries(data["options"], source)
        grid = cls(**values)
        if not grid.policies and not grid.checkpoints and not grid.options:
            raise ConfigError(f"{source}: policies: expected at least one policy or checkpoint")
        return grid

    def with_backend(self, backend: str | None = None, batsim: str | None = None, timeout: float | None = None,
                     network: str | None = None) -> "GridConfig":
        """The grid with command-line overrides (None: the grid's value)."""
        changes: dict[str, Any] = {}
        if backend is not None:
            changes["backend"] = backend
        if batsim is not None:
            changes["batsim"] = batsim
        if timeout is not None:
            if not is_finite_number(timeout) or not timeout > 0:
                raise ConfigError(f"--timeout {shown(timeout)}: expected a number of seconds > 0 (finite)")
            changes["timeout"] = float(timeout)
        if network is not None:
            changes["networks"] = (network,)
        return replace(self, **changes) if changes else self

    def batsim_path(self) -> str | None:
        """The batsim executable, a relative path taken from the grid's folder when it is there."""
        if self.batsim is None:
            return None
        candidate = self.base_dir / self.batsim
        return str(candidate.resolve()) if os.sep in self.batsim and candidate.exists() else self.batsim

    @property
    def base_dir(self) -> Path:
        return Path(self.source).parent

    def resolve(self) -> "ResolvedGrid":
        """The grid's axes, checked and with their paths found (shared by sweep and crossval)."""
        from hdeeprm.common.bundled import locate
        from hdeeprm.rl.experiment import ExperimentConfig

        base = self.base_dir
        candidate = base / self.experiment
        try:
            experiment = ExperimentConfig.load(candidate if candidate.exists() else self.experiment)
        except ConfigError as e:
            raise ConfigError(f"{self.source}: experiment: {e}") from None
        except FileNotFoundError:
            raise ConfigError(f"{self.source}: experiment: {self.experiment}: no such experiment file "
                              f"(in {base}) or bundled experiment") from None
        platforms = [(p, locate(base, p, "platform")) for p in self.platforms] if self.platforms else \
            [(_portable(experiment.platform, base), experiment.platform)]
        workloads = [(w, locate(base, w, "workload")) for w in self.workloads] if self.workloads else \
            [(_portable(experiment.workload, base), experiment.workload)]
        policies: list[tuple[str, str | None]] = []
        for i, text in enumerate(self.policies):
            for policy in _expand_policy(text, f"{self.source}: policies[{i}]"):
                policies.append((policy, None))
        for i, text in enumerate(self.checkpoints):
            path = base / text
            if not path.is_file():
                raise ConfigError(f"{self.source}: checkpoints[{i}]: {path}: checkpoint not found")
            policies.append((f"agent:{text}", str(path)))
        seeds = self.seeds if self.seeds is not None else (experiment.seed,)
        overrides = []
        for i, block in enumerate(self.overrides):
            resolved = {k: (locate(base, v, k) if k in PATH_FIELDS and isinstance(v, str) else v)
                        for k, v in block.items()}
            overrides.append((i, block, resolved))
        if "links" in self.networks:
            for label, platform in platforms:
                if not _platform_json(platform):
                    raise ConfigError(f"{self.source}: networks: 'links' needs HDeepRM platform JSONs; "
                                      f"platform {label!r} is not one")
        _no_duplicates([name for name, _ in policies], f"{self.source}: policies and checkpoints", "policy")
        count = (len(platforms) * len(workloads) * max(len(overrides), 1) * len(self.networks)
                 * len(policies) * len(seeds))
        if count > MAX_CELLS:
            raise ConfigError(f"{self.source}: the grid has {count} cells ({len(platforms)} platforms x "
                              f"{len(workloads)} workloads x {len(overrides)} overrides x {len(self.networks)} "
                              f"networks x {len(policies)} policies x {len(seeds)} seeds); at most {MAX_CELLS} "
                              "are allowed: split it into several grids")
        return ResolvedGrid(experiment, platforms, workloads, overrides, policies, seeds)

    def configure(self, resolved: "ResolvedGrid", platform: str, workload: str, override: tuple,
                  seed: int) -> "ExperimentConfig":
        i, _, values = override
        try:
            return replace(resolved.experiment, platform=platform, workload=workload, seed=seed, **values)
        except (ConfigError, TypeError) as e:
            raise ConfigError(f"{self.source}: overrides[{i}]: {e}") from None

    def cells(self) -> list["Cell"]:
        """The grid's cells in grid order (validated: a bad value fails here, before anything runs)."""
        if self.options:
            raise ConfigError(f"{self.source}: options: options files are cross-validated with "
                              "'hdeeprm crossval --grid', not swept; list policies or checkpoints")
        resolved = self.resolve()
        base = self.base_dir
        cells = []
        # The configuration depends on neither the network nor the policy: build (and check) it,
        # and its portable form, once per platform, workload, overrides block and seed.
        built: dict[tuple, tuple] = {}
        for platform_label, platform in resolved.platforms:
            for workload_label, workload in resolved.workloads:
                for override in resolved.overrides:
                    for network in self.networks:
                        for policy, checkpoint in resolved.policies:
                            for seed in resolved.seeds:
                                k = (platform, workload, override[0], seed)
                                if k not in built:
                                    config = self.configure(resolved, platform, workload, override, seed)
                                    built[k] = (config, _portable_experiment(config, base))
                                config, experiment = built[k]
                                cells.append(_make_cell(config, base, platform_label, workload_label, override[1],
                                                        policy, checkpoint, self.outputs, self.backend, network,
                                                        self.batsim_path(), self.timeout,
                                                        experiment=dict(experiment)))
        check_unique(cells, self.source)
        return cells


@dataclass(frozen=True)
class ResolvedGrid:
    """A grid's axes: (label, path) of platforms and workloads, (index, block as written,
    block with paths found) of overrides, (policy, checkpoint path) of policies."""

    experiment: ExperimentConfig
    platforms: list[tuple[str, str]]
    workloads: list[tuple[str, str]]
    overrides: list[tuple[int, dict, dict]]
    policies: list[tuple[str, str | None]]
    seeds: tuple[int, ...]


def _no_duplicates(values, where: str, what: str) -> None:
    """ConfigError naming the first entry of ``values`` listed twice (O(n))."""
    seen = set()
    for value in values:
        if value in seen:
            raise ConfigError(f"{where}: a {what} is listed twice ({shown(value)})")
        seen.add(value)


def check_unique(cells: list, source: str) -> None:
    counts = Counter(c.name for c in cells)
    if len(counts) != len(cells):
        twice = min(n for n, k in counts.items() if k > 1)
        raise ConfigError(f"{source}: two cells have the same parameters ({twice}): "
                          "a policy, platform, workload, network or overrides block is listed twice")


def _platform_json(platform: str) -> bool:
    from hdeeprm.inputs.platform import resolve_platform_name

    return resolve_platform_name(platform).endswith(".json")


def _options_entries(value: Any, source: str) -> tuple[dict, ...]:
    if not isinstance(value, list):
        raise ConfigError(f"{source}: options: expected a list of options files or "
                          f"{{\"file\": FILE, \"model\": CHECKPOINT}} objects, got {value!r}")
    entries = []
    for i, entry in enumerate(value):
        if isinstance(entry, str) and entry:
            entry = {"file": entry}
        if (not isinstance(entry, dict) or not isinstance(entry.get("file"), str) or not entry["file"]
                or not set(entry) <= {"file", "model"}
                or not isinstance(entry.get("model", ""), str)):
            raise ConfigError(f"{source}: options[{i}]: expected an options file or {{\"file\": FILE, "
                              f"\"model\": CHECKPOINT}}, got {entry!r}")
        entries.append({"file": entry["file"], "model": entry.get("model")})
    return tuple(entries)


def _expand_policy(text: str, where: str) -> list[str]:
    from hdeeprm.simulation.policies import PolicyConfig

    if text == "classic":
        return [f"{j}:{c}" for j, c in DEFAULT_PAIRS]
    if text == "random":
        return ["random"]
    pair, _, backfill = text.partition("+")
    try:
        PolicyConfig.parse(pair, backfill or None)
    except ConfigError as e:
        raise ConfigError(f"{where}: {e}; or 'classic' (the 36 pairs), 'random', JOBKEY:COREKEY+easy or +conservative") from None
    return [text]


def _portable(value: str, base: Path) -> str:
    """A path as it should be named in results and hashes: bundled files by their name in
    the package, files under the grid's folder relative to it, anything else as is."""
    if not value or not os.path.isabs(value):
        return value
    package = Path(str(resources.files("hdeeprm"))).resolve()
    path = Path(value).resolve()
    for root, prefix in ((package, "hdeeprm:"), (base.resolve(), "")):
        try:
            return prefix + path.relative_to(root).as_posix()
        except ValueError:
            pass
    return value


# ---------------------------------------------------------------------- cells


@dataclass(frozen=True)
class Cell:
    """One evaluation: pure data, sent to a worker as is. ``name`` (the output folder) and
    ``key`` (a hash of ``params``) identify it; ``params`` names everything it depends on."""

    name: str
    key: str
    params: dict
    experiment: ExperimentConfig
    policy: str  # JOBKEY:COREKEY[+easy], random, agent:PATH
    checkpoint: str | None
    outputs: bool
    backend: str = "embedded"
    network: str = DEFAULT_NETWORK
    batsim: str | None = None  # not in params: where batsim is does not change results
    timeout: float = 120.0

    @property
    def label(self) -> dict:
        return {k: self.params[k] for k in ("platform", "workload", "overrides", "policy", "seed")}


def _make_cell(config, base: Path, platform: str, workload: str, overrides: dict,
               policy: str, checkpoint: str | None, outputs: bool, backend: str = "embedded",
               network: str = DEFAULT_NETWORK, batsim: str | None = None, timeout: float = 120.0,
               experiment: dict | None = None) -> Cell:
    if experiment is None:
        experiment = _portable_experiment(config, base)
    params = {"platform": platform, "workload": workload, "overrides": overrides, "policy": policy,
              "seed": config.seed, "experiment": experiment, "outputs": outputs}
    if checkpoint is not None:
        params["checkpoint_sha256"] = hashlib.sha256(Path(checkpoint).read_bytes()).hexdigest()
    # Only when not the defaults, so that the cells of a grid without them keep their names.
    if backend != "embedded":
        params["backend"] = backend
    if network != DEFAULT_NETWORK:
        params["network"] = network
    key = hashlib.sha256(json.dumps(params, sort_keys=True).encode()).hexdigest()
    return Cell(f"{policy_slug(policy)}_s{config.seed}_{key[:10]}", key, params, config, policy, checkpoint,
                outputs, backend, network, batsim, timeout)


def _portable_experiment(config, base: Path) -> dict:
    """``config`` as a dict, its paths named as in results and hashes (see :func:`_portable`)."""
    experiment = config.as_dict()
    for key in PATH_FIELDS:
        if experiment.get(key):
            experiment[key] = _portable(experiment[key], base)
    return experiment


def policy_slug(policy: str) -> str:
    if policy.startswith("agent:"):
        return "agent-" + Path(policy[6:]).stem
    return policy.replace(":", "-").replace("+", "-").replace("/", "-")


def backend_options(backend: str, network: str, platform: str, batsim: str | None = None,
                    timeout: float = 120.0) -> dict:
    """What a simulator of ``backend`` needs to show ``platform`` on ``network`` as Batsim
    does (for the embedded engine: Batsim's energy accounting on that network)."""
    if backend == "embedded":
        # zero-latency: the engine's default accounting, which is Batsim's there
        return {} if network == DEFAULT_NETWORK else {"energy_accounting": "ideal"}
    options: dict[str, Any] = {"batsim": batsim, "timeout_s": timeout, "network": network}
    if network == "links":
        from hdeeprm.inputs.platform import read_platform_description, resolve_platform_name

        options["description"] = read_platform_description(resolve_platform_name(platform))
    return options


def _make_env(cell: Cell, **env_overrides):
    """``cell.experiment.make_env`` on the test part, on the cell's backend (each Batsim
    episode in its own temporary folder, removed when the episode ends)."""
    config = cell.experiment
    return config.make_env("test", episode_jobs=config.evaluation_jobs, backend=cell.backend,
                           backend_options=backend_options(cell.backend, cell.network, config.platform,
                                                           cell.batsim, cell.timeout),
                           **env_overrides)


@dataclass
class CellOutput:
    """What a worker sends back: the metrics and the files of the cell's folder."""

    summary: dict
    windows: list[dict]
    files: dict[str, bytes]
    seconds: list[float]


def run_cell(cell: Cell) -> CellOutput:
    """Evaluate one cell (in a worker): the policy on the experiment's held-out windows."""
    from hdeeprm.rl.baselines import FixedActionAgent, RandomMaskedAgent
    from hdeeprm.rl.train import observation_size, run_episode
    from hdeeprm.simulation.outputs import write_outputs
    from hdeeprm.simulation.policies import PolicyConfig

    config = cell.experiment
    if cell.policy == "random":
        env = (_make_env(cell, actions=DEFAULT_PAIRS, void=False) if config.action_space == "pairs"
               else _make_env(cell))
        agent: Any = RandomMaskedAgent(config.seed)
    elif cell.checkpoint is not None:
        from hdeeprm.rl.agents import ALGORITHMS, build_agent
        from hdeeprm.rl.agents.common import load_checkpoint

        env = _make_env(cell)
        agent = build_agent(ALGORITHMS[config.algorithm], config.gamma, config.hidden, env.action_space.n,
                            observation_size(env), seed=config.seed)
        load_checkpoint(cell.checkpoint, agent)
        agent.greedy = True
    else:
        pair, _, backfill = cell.policy.partition("+")
        policy = PolicyConfig.parse(pair, backfill or None)
        env = _make_env(cell, action_space="pairs", actions=((policy.job_key, policy.core_key),), void=False,
                        backfill=policy.backfill)
        agent = FixedActionAgent(0)
    windows, seconds = [], []
    try:
        with tempfile.TemporaryDirectory(prefix="hdeeprm-cell-") as tmp:
            for k, (seed, options) in enumerate(config.evaluation_windows()):
                record = run_episode(env, agent, seed=seed, options=options)
                windows.append({"seed": seed, "return": record.reward, "steps": record.steps, **record.metrics})
                seconds.append(record.wall_seconds)
                if cell.outputs and record.result is not None:
                    write_outputs(record.result, os.path.join(tmp, f"episode_{k}"))
            files = read_tree(tmp)
    finally:
        env.close()  # the Batsim backend stops its process and removes its folder
    mean, std = mean_and_std([w["return"] for w in windows])
    summary = {"windows": len(windows), "return_mean": mean, "return_std": std}
    for key in WINDOW_METRICS:
        summary[key] = mean_and_std([w[key] for w in windows])[0]
    for key, source in zip(COUNT_COLUMNS, ("nb_jobs", "nb_finished", "nb_rejected")):
        summary[key] = int(sum(w[source] for w in windows))
    return CellOutput(summary, windows, files, seconds)


def mean_and_std(values) -> tuple[float, float]:
    """The mean and the sample standard deviation (n - 1; NaN for one value) of ``values``, as
    plain floats (files written with repr() then hold numbers, not "np.float64(...)"); the
    ``_mean`` / ``_std`` columns of :data:`TABLE_COLUMNS`."""
    values = [float(v) for v in values]
    if not values:
        return math.nan, math.nan
    mean = sum(values) / len(values)
    if len(values) < 2:
        return mean, math.nan
    return mean, math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1))


def read_tree(root: str | os.PathLike) -> dict[str, bytes]:
    """Every file under ``root``, by its path relative to it (what a worker sends back)."""
    files = {}
    for folder, _, names in os.walk(root):
        for name in names:
            path = os.path.join(folder, name)
            files[os.path.relpath(path, root)] = Path(path).read_bytes()
    return files


def _write_cell(cells_dir: Path, cell: Cell, output: CellOutput, seconds: float) -> None:
    """The cell's folder, atomically: written under a temporary name, then renamed."""
    tmp = Path(tempfile.mkdtemp(prefix=f".{cell.name}.", suffix=".tmp", dir=cells_dir))
    try:
        for rel, data in output.files.items():
            target = tmp / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
        metrics = {"cell": cell.name, "key": cell.key, "params": cell.params, "summary": output.summary,
                   "windows": output.windows}
        (tmp / "metrics.json").write_text(json.dumps(metrics, indent=1) + "\n")
        (tmp / "timing.json").write_text(json.dumps({"cell_seconds": seconds, "window_seconds": output.seconds},
                                                    indent=1) + "\n")
        os.replace(tmp, cells_dir / cell.name)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


# ---------------------------------------------------------------------- running a grid


@dataclass
class SweepReport:
    rows: list[dict]
    ran: int
    skipped: int
    failed: int
    wall_seconds: float
    engine: str
    out: Path


def _finished(cells_dir: Path, cell: Cell) -> dict | None:
    path = cells_dir / cell.name / "metrics.json"
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError:
        return None
    return data.get("summary") if data.get("key") == cell.key else None


def _row(cell: Cell, status: str, summary: dict | None = None, error: str = "") -> dict:
    row: dict[str, Any] = {"cell": cell.name, **cell.label, "status": status}
    row["overrides"] = json.dumps(cell.params["overrides"], sort_keys=True) if cell.params["overrides"] else ""
    row.update({k: "" for k in ("windows",) + METRIC_COLUMNS + COUNT_COLUMNS})
    if summary:
        row.update({k: summary[k] for k in ("windows",) + METRIC_COLUMNS + COUNT_COLUMNS})
    row["error"] = error
    return row


def write_results(rows: list[dict], path: Path) -> None:
    """results.csv (atomically); floats with repr, so that they read back exactly."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=RESULT_COLUMNS, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: (repr(float(v)) if isinstance(v, float) else v) for k, v in row.items()})
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(buffer.getvalue())
    os.replace(tmp, path)


def run_sweep(grid: GridConfig, out_dir: str | os.PathLike, engine: WorkerEngine | None = None, *,
              progress: bool | None = None, stream=None) -> SweepReport:
    """Evaluate every cell of ``grid`` not already in ``out_dir`` on ``engine`` (default: one
    local worker); write each cell's folder as it finishes and results.csv at the end (also
    when interrupted)."""
    from hdeeprm.common.parallel import LocalEngine

    engine = engine if engine is not None else LocalEngine(1)
    out = Path(out_dir)
    cells_dir, errors_dir = out / "cells", out / "errors"
    cells = grid.cells()
    cells_dir.mkdir(parents=True, exist_ok=True)
    for stale in cells_dir.glob(".*.tmp"):  # left by an interrupted run
        shutil.rmtree(stale, ignore_errors=True)
    rows: list[dict] = [_row(cell, "pending") for cell in cells]
    todo: list[int] = []
    for i, cell in enumerate(cells):
        summary = _finished(cells_dir, cell)
        if summary is not None:
            rows[i] = _row(cell, "done", summary)
        else:
            todo.append(i)
    skipped = len(cells) - len(todo)
    bar = Progress(len(cells), "sweep", stream, progress, skipped=skipped)
    t0 = time.perf_counter()
    ran = failed = 0

    def finished(result) -> None:
        nonlocal ran, failed
        i = todo[result.index]
        cell = cells[i]
        error_file = errors_dir / f"{cell.name}.txt"
        if result.ok:
            _write_cell(cells_dir, cell, result.value, result.seconds)
            rows[i] = _row(cell, "done", result.value.summary)
            error_file.unlink(missing_ok=True)
            ran += 1
            bar.done += 1
        else:
            rows[i] = _row(cell, "failed", error=(result.error or "").splitlines()[0] if result.error else "")
            errors_dir.mkdir(parents=True, exist_ok=True)
            error_file.write_text(f"{result.error}\n\n{result.traceback or ''}")
            failed += 1
            bar.failed += 1
            if not bar.enabled:
                print(f"cell {cell.name} failed: {rows[i]['error']}", file=bar.stream)

    try:
        drive_cells(engine, run_cell, [cells[i] for i in todo], bar, finished)
    finally:
        wall = time.perf_counter() - t0
        write_results(rows, out / "results.csv")
        (out / "sweep.json").write_text(json.dumps({
            "grid": grid.source, "backend": grid.backend, "engine": engine.describe(), "workers": engine.workers,
            "cells": len(cells),
            "ran": ran, "failed": failed, "skipped": skipped, "wall_seconds": wall}, indent=1) + "\n")
    return SweepReport(rows, ran, skipped, failed, wall, engine.describe(), out)


def drive_cells(engine, task, cells: list, bar: Progress, finished) -> None:
    """Run ``task`` on every cell with ``engine``, handing each outcome to ``finished`` as it
    comes (its ``index`` is the cell's position in ``cells``) and keeping ``bar`` up to date.
    Stopping early (Ctrl-C, an error in ``finished``) stops the workers."""
    def started(_):
        bar.running = engine.in_flight
        bar.draw()

    results = engine.run(task, cells, on_start=started)
    try:
        bar.draw()
        for result in results:
            finished(result)
            bar.running = engine.in_flight
            bar.draw()
    finally:
        results.close()
        bar.close()


__all__ = ["Cell", "CellOutput", "GridConfig", "ResolvedGrid", "SweepReport", "TABLE_COLUMNS", "WINDOW_METRICS",
           "backend_options", "mean_and_std", "read_tree", "run_cell", "run_sweep"]
