"""PPO with a per-job scoring network, for the job-window action space.

The actor is RLScheduler's "kernel" network (Zhang et al., SC 2020): one small network
scores every row of the (K, F) window observation alike, and the logits over the K jobs are
those scores (padding rows masked out). The same weights apply to every slot, so the policy
is invariant to where a job sits in the window, and its size does not grow with K.
  actor   per row: F -> 32 -> 16 -> 8 -> 1 (ReLU), logits = the K scores
  critic  the flattened window -> H -> LeakyReLU -> 3 x (H -> H) -> 1, as in PPOAgent
Everything else (acting, GAE, clipped surrogate, minibatches) is :class:`PPOAgent`'s.
"""

from __future__ import annotations

from torch import nn

from hdeeprm.common.errors import ConfigError
from hdeeprm.rl.agents.ppo import PPOAgent


class JobScorer(nn.Module):
    """Scores each of the K rows of flattened (B, K x F) observations: (B, K) logits."""

    def __init__(self, features: int, sizes: tuple[int, ...] = (32, 16, 8)):
        super().__init__()
        self.features = features
        layers: list[nn.Module] = []
        width = features
        for size in sizes:
            layers += [nn.Linear(width, size), nn.ReLU()]
            width = size
        layers.append(nn.Linear(width, 1))
        self.score = nn.Sequential(*layers)

    def forward(self, observations):
        rows = observations.reshape(observations.shape[0], -1, self.features)
        return self.score(rows).squeeze(-1)


class KernelPPOAgent(PPOAgent):
    """PPOAgent whose actor scores each job of the window with the same network."""

    def __init__(self, gamma: float, hidden: int, action_size: int, observation_size: int, **options) -> None:
        super().__init__(gamma, hidden, action_size, observation_size, **options)
        if observation_size % action_size:
            raise ConfigError(f"kernel_ppo: an observation of {observation_size} values is not {action_size} "
                              "rows of job features: use it with action_space 'job_window'")
        self.actor = JobScorer(observation_size // action_size)
