"""REINFORCE: the original HDeepRM example agent, working.

The policy is the original's network: observation -> H, LeakyReLU, 3 x (H -> H, LeakyReLU),
H -> actions, softmax. Everything else is inherited from PolicyLearningAgent: actions are
sampled (masked actions excluded), and at the end of the episode one optimiser step
minimises sum_t -log pi(a_t|s_t) G_t with G the standardised discounted returns.
"""

from __future__ import annotations

import torch
from torch.nn import functional as F

from hdeeprm.rl.agent import PolicyLearningAgent
from hdeeprm.rl.agents.common import mlp


class ReinforceAgent(PolicyLearningAgent):
    """Monte-Carlo policy gradient with standardised returns as the baseline-free signal."""

    def __init__(self, gamma: float, hidden: int, action_size: int, observation_size: int) -> None:
        super().__init__(gamma)
        self.policy = mlp(observation_size, hidden, action_size, layers=3)

    def forward_policy(self, observation: torch.Tensor) -> torch.Tensor:
        return F.softmax(self.policy(observation), dim=-1)
