"""An advantage actor-critic in the shape of HDeepRM 0.3.1's example: ``decide`` calls
``process`` (the pre-0.3.0 name of ``forward``), the advantages come from ``self.values``, the
loss stacks ``policy_loss`` and ``value_loss``, and, as in that example, a trailing no-op
``forward(self, *inp)`` hides the real ``forward`` defined above it."""

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from hdeeprm.agent import PolicyLearningAgent, ValueLearningAgent


class OriginalStyleActorCritic(PolicyLearningAgent, ValueLearningAgent):

    def __init__(self, gamma: float, hidden: int, action_size: int, observation_size: int) -> None:
        super(OriginalStyleActorCritic, self).__init__(gamma)
        self.shared = nn.Linear(observation_size, hidden)
        self.actor_hidden = nn.Linear(hidden, hidden)
        self.actor_output = nn.Linear(hidden, action_size)
        self.critic_hidden = nn.Linear(hidden, hidden)
        self.critic_output = nn.Linear(hidden, 1)

    def decide(self, observation: np.ndarray) -> int:
        probs, value = self.process(observation)
        self.save_value(value)
        return self.get_action(probs)

    def forward(self, observation: np.ndarray) -> tuple:
        observation = torch.from_numpy(observation).float().unsqueeze(0)
        return self.forward_policy(observation), self.forward_value(observation)

    def loss(self) -> torch.Tensor:
        rews = self.transform_rewards()
        advs = self.calculate_advantages(rews)
        return torch.stack(self.policy_loss(advs)).sum() + torch.stack(self.value_loss(rews)).sum()

    def forward_policy(self, observation: torch.Tensor) -> torch.Tensor:
        out = F.leaky_relu(self.shared(observation))
        out = F.leaky_relu(self.actor_hidden(out))
        return F.softmax(self.actor_output(out), dim=1)

    def forward_value(self, observation: torch.Tensor) -> torch.Tensor:
        out = F.leaky_relu(self.shared(observation))
        out = F.leaky_relu(self.critic_hidden(out))
        return self.critic_output(out)

    def calculate_advantages(self, trewards) -> list:
        advantages = []
        for value, treward in zip(self.values, trewards):
            advantages.append(treward - value.item())
        return advantages

    def forward(self, *inp):  # noqa: F811  (kept on purpose: the original example has it)
        pass
