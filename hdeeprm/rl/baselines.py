"""Agents that need no learning: a fixed action (a classic policy as an agent) and uniformly
random valid actions (the baseline a learned agent must beat). No torch."""

from __future__ import annotations

import numpy as np


class FixedActionAgent:
    """A classic policy as an agent: the same action at every decision (the original's
    ClassicAgent played action 0, the first configured pair)."""

    def __init__(self, action: int = 0):
        self.action = action

    def decide(self, observation, action_mask=None) -> int:
        return self.action


class RandomMaskedAgent:
    """Uniformly random valid actions (the baseline a learned agent must beat)."""

    def __init__(self, seed: int):
        self.rng = np.random.default_rng(seed)

    def decide(self, observation, action_mask) -> int:
        return int(self.rng.choice(np.flatnonzero(action_mask)))
