"""Advantage actor-critic, Monte-Carlo form: the original HDeepRM actor-critic design, working.

Network: a shared Linear(observation -> H) + LeakyReLU trunk, then
  actor   3 x (H -> H, LeakyReLU), H -> actions, softmax   (pi(a|s))
  critic  3 x (H -> H, LeakyReLU), H -> 1                  (V(s))
At each decision the action is sampled from pi (masked actions excluded) and V(s_t) kept.
At the end of the episode, with G_t the standardised discounted returns:
  loss = sum_t -log pi(a_t|s_t) (G_t - V(s_t))   actor; V detached, it is only a baseline
       + sum_t SmoothL1(V(s_t), G_t)              critic
The critic learns the standardised returns, so baseline and returns share one scale.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from hdeeprm.rl.agent import Mask, Observation, PolicyLearningAgent, as_batch
from hdeeprm.rl.agents.common import mlp


class ActorCriticAgent(PolicyLearningAgent):
    """Policy gradient with a learned state-value baseline."""

    def __init__(self, gamma: float, hidden: int, action_size: int, observation_size: int) -> None:
        super().__init__(gamma)
        self.trunk = nn.Sequential(nn.Linear(observation_size, hidden), nn.LeakyReLU())
        # mlp(H, H, out, 2) = 3 x (H -> H, LeakyReLU) then H -> out.
        self.actor = mlp(hidden, hidden, action_size, layers=2)
        self.critic = mlp(hidden, hidden, 1, layers=2)
        self.values: list[torch.Tensor] = []

    def forward_policy(self, observation: torch.Tensor) -> torch.Tensor:
        return F.softmax(self.actor(self.trunk(observation)), dim=-1)

    def forward_value(self, observation: torch.Tensor) -> torch.Tensor:
        return self.critic(self.trunk(observation))

    def decide(self, observation: Observation, action_mask: Mask = None) -> int:
        action = super().decide(observation, action_mask)
        with torch.set_grad_enabled(self.training and torch.is_grad_enabled()):
            self.values.append(self.forward_value(as_batch(observation)).reshape(()))
        return action

    def loss(self) -> torch.Tensor:
        returns = self.transform_rewards()
        n = min(len(self.log_probs), len(self.values), len(returns))
        if n == 0:
            return torch.zeros(())
        log_probs = torch.stack(self.log_probs[:n])
        values = torch.stack(self.values[:n])
        returns = returns[:n]
        actor_loss = -(log_probs * (returns - values.detach())).sum()
        critic_loss = F.smooth_l1_loss(values, returns, reduction="sum")
        return actor_loss + critic_loss

    def reset_episode(self) -> None:
        super().reset_episode()
        self.values.clear()
