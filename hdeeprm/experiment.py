"""Typed experiments for ``hdeeprm train`` and ``hdeeprm evaluate``.

An experiment file is a JSON object with the fields of ``ExperimentConfig`` (unknown keys
are errors). ``platform`` is a path or a bundled platform name; ``workload`` a path, or the
name of a bundled trace (``kth-sp2-head.swf.gz``); relative paths are taken from the file's
folder. ``hdeeprm train quickstart`` runs the bundled quick-start experiment.

Training runs ``episodes`` episodes, each on a window of ``episode_jobs`` jobs drawn from the
seed of that episode, and writes the HDeepRM logs, the checkpoint ``model.pt`` and the
resolved configuration into the output folder. Evaluation runs the agent (greedy) and,
for comparison, every classic key pair and random valid actions on the same
``eval_episodes`` held-out windows, and prints a table of mean return and metrics.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, fields, replace
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from .env import EnvConfig, HeteroEnv, parse_action_set
from .errors import ConfigError
from .jsonfile import read_json_object
from .keys import DEFAULT_PAIRS

ALGORITHM_NAMES = ("ppo", "reinforce", "actor_critic")


@dataclass(frozen=True)
class ExperimentConfig:
    platform: str = "quickstart"
    workload: str = "kth-sp2-head.swf.gz"
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
    rollout_batch: int | None = None  # episodes per update, collected in parallel (hdeeprm.train)

    def __post_init__(self):
        if self.algorithm not in ALGORITHM_NAMES:
            raise ConfigError(f"algorithm {self.algorithm!r}: expected one of {', '.join(ALGORITHM_NAMES)}")
        for name in ("episodes", "eval_episodes", "hidden"):
            if not isinstance(getattr(self, name), int) or getattr(self, name) < 1:
                raise ConfigError(f"{name} {getattr(self, name)!r}: expected a positive integer")
        if self.rollout_batch is not None and (not isinstance(self.rollout_batch, int) or self.rollout_batch < 1):
            raise ConfigError(f"rollout_batch {self.rollout_batch!r}: expected a positive integer or null")
        if not 0 < self.gamma <= 1:
            raise ConfigError(f"gamma {self.gamma!r}: expected a number in (0, 1]")
        self.env_config()  # validates the environment's fields too

    @classmethod
    def load(cls, source: str | os.PathLike, **overrides: Any) -> "ExperimentConfig":
        """From a file, or a bundled experiment name; ``overrides`` (not None) win."""
        path = Path(source)
        if not path.suffix and not path.exists():
            bundled = resources.files("hdeeprm") / "data" / "experiments" / f"{source}.json"
            if not bundled.is_file():
                raise ConfigError(f"{source}: no such experiment file or bundled experiment")
            path = Path(str(bundled))
        data = read_json_object(path)
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError(f"{path}: unknown key {unknown[0]!r}; expected some of {', '.join(sorted(known))}")
        data.update({k: v for k, v in overrides.items() if v is not None})
        for key in ("platform", "workload", "hierarchy"):
            if data.get(key):
                data[key] = _locate(path.parent, data[key], key)
        return cls(**data)

    def env_config(self) -> EnvConfig:
        pairs, void = parse_action_set(self.actions) if self.actions is not None else (DEFAULT_PAIRS, True)
        return EnvConfig(objective=self.objective, queue_sensitivity=self.queue_sensitivity,
                         observation=self.observation, actions=pairs, void=void,
                         episode_jobs=self.episode_jobs, reward_scale=self.reward_scale)

    def make_env(self, **env_overrides) -> HeteroEnv:
        config = self.env_config()
        if env_overrides:
            config = replace(config, **env_overrides)
        return HeteroEnv(self.platform, self.workload, config, hierarchy=self.hierarchy,
                         nb_jobs=self.nb_jobs, conversion_seed=self.seed)

    def as_dict(self) -> dict:
        return asdict(self)


def _locate(base: Path, value: str, key: str) -> str:
    path = Path(value)
    if path.is_absolute():
        return str(path)
    if (base / path).exists():
        return str(base / path)
    if key == "workload":
        bundled = resources.files("hdeeprm") / "data" / "traces" / value
        if bundled.is_file():
            return str(bundled)
    return value  # a bundled platform name, or a path that load_* reports as missing


def episode_seeds(root_seed: int, count: int, stream: int) -> list[int]:
    """Seeds of ``count`` episodes, from independent streams of the root seed (stream 0:
    training windows, stream 1: evaluation windows, never the same as training's)."""
    child = np.random.SeedSequence(root_seed).spawn(stream + 1)[stream]
    return [int(x) for x in child.generate_state(count, dtype=np.uint32)]
