"""One seed per run, split into independent generators for the run's random parts."""

from __future__ import annotations

import numpy as np

from hdeeprm.common.errors import ConfigError

SEED_MAX = 2**63 - 1


def check_seed(seed, where: str = "seed") -> int:
    """``seed`` if it is an integer from 0 to 2**63-1 (bools are not seeds), else ConfigError."""
    if isinstance(seed, (bool, np.bool_)) or not isinstance(seed, (int, np.integer)) or not 0 <= seed <= SEED_MAX:
        shown = repr(seed)
        if len(shown) > 80:
            shown = shown[:77] + "..."
        raise ConfigError(f"{where}: expected an integer from 0 to 2**63-1, got {shown}")
    return int(seed)


def run_generators(seed: int) -> tuple[np.random.Generator, np.random.Generator]:
    """(conversion, scheduler) generators from one seed: the SWF conversion's draws never
    shift the scheduler's, and the reverse."""
    conversion, scheduler = np.random.SeedSequence(check_seed(seed)).spawn(2)
    return np.random.default_rng(conversion), np.random.default_rng(scheduler)


def episode_seeds(root_seed: int, count: int, stream: int) -> list[int]:
    """Seeds of ``count`` episodes, from independent streams of the root seed (stream 0:
    training windows, stream 1: evaluation windows, never the same as training's)."""
    child = np.random.SeedSequence(check_seed(root_seed)).spawn(stream + 1)[stream]
    return [int(x) for x in child.generate_state(count, dtype=np.uint32)]
