"""Returns and advantages from an episode's rewards: the arithmetic every learning agent shares.

Below the agent API (:mod:`hdeeprm.rl.agent`) and the algorithms (:mod:`hdeeprm.rl.agents`),
which both use it.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch

FLOAT32_EPS = torch.finfo(torch.float32).eps


def _as_float_list(values: Sequence[float] | np.ndarray | torch.Tensor) -> list[float]:
    if isinstance(values, torch.Tensor):
        return values.detach().reshape(-1).double().tolist()
    return np.asarray(values, dtype=np.float64).reshape(-1).tolist()


def discounted_returns(rewards: Sequence[float] | np.ndarray | torch.Tensor, gamma: float) -> torch.Tensor:
    """G_T = r_T, G_t = r_t + gamma G_{t+1} (float32; accumulated in float64 so that long
    episodes with large rewards lose no precision)."""
    returns = []
    running = 0.0
    for reward in reversed(_as_float_list(rewards)):
        running = reward + gamma * running
        returns.append(running)
    returns.reverse()
    return torch.tensor(returns, dtype=torch.float32)


def standardise(values: torch.Tensor, eps: float = FLOAT32_EPS) -> torch.Tensor:
    """(x - mean) / (std + eps) with the unbiased std; fewer than two values are returned
    unscaled (a single value has no spread to scale by)."""
    values = torch.as_tensor(values, dtype=torch.float32)
    if values.numel() < 2:
        return values.clone()
    return (values - values.mean()) / (values.std() + eps)


def gae(rewards: Sequence[float] | np.ndarray | torch.Tensor, values: Sequence[float] | np.ndarray | torch.Tensor,
        gamma: float, lam: float, *, last_value: float = 0.0,
        dones: Sequence[bool] | np.ndarray | torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Generalised advantage estimation: (advantages, returns = advantages + values).

    ``values[t]`` = V(s_t); ``dones[t]`` True when the episode ended with step t (no
    bootstrapping past it); ``last_value`` = V(s_T) after the last step, used only when that
    step is not done (a truncated episode). Default: no done flag and last_value 0, i.e. the
    episode terminated after its last step.
        delta_t = r_t + gamma V(s_{t+1}) (1 - done_t) - V(s_t)
        A_t     = delta_t + gamma lam (1 - done_t) A_{t+1}
    """
    r = _as_float_list(rewards)
    v = _as_float_list(values)
    if len(r) != len(v):
        raise ValueError(f"gae: {len(r)} rewards but {len(v)} values")
    done = [False] * len(r) if dones is None else [bool(d) for d in _as_float_list(dones)]
    advantages = [0.0] * len(r)
    next_advantage, next_value = 0.0, float(last_value)
    for t in reversed(range(len(r))):
        not_done = 0.0 if done[t] else 1.0
        delta = r[t] + gamma * next_value * not_done - v[t]
        next_advantage = delta + gamma * lam * not_done * next_advantage
        advantages[t] = next_advantage
        next_value = v[t]
    adv = torch.tensor(advantages, dtype=torch.float32)
    return adv, adv + torch.tensor(v, dtype=torch.float32)
