"""REINFORCE written the way HDeepRM 0.3.1 agent files were: the agent samples through
``get_action`` and sums the per-decision ``policy_loss`` terms with ``torch.cat``."""

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from hdeeprm.agent import PolicyLearningAgent


class OriginalStyleReinforce(PolicyLearningAgent):

    def __init__(self, gamma: float, hidden: int, action_size: int, observation_size: int) -> None:
        super(OriginalStyleReinforce, self).__init__(gamma)
        self.first = nn.Linear(observation_size, hidden)
        self.last = nn.Linear(hidden, action_size)

    def decide(self, observation: np.ndarray) -> int:
        probs = self(observation)
        return self.get_action(probs)

    def forward_policy(self, observation: torch.Tensor) -> torch.Tensor:
        return F.softmax(self.last(F.leaky_relu(self.first(observation))), dim=1)

    def loss(self) -> torch.Tensor:
        return torch.cat(self.policy_loss(self.transform_rewards())).sum()
