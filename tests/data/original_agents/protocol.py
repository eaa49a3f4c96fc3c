"""An agent in HDeepRM 0.3.1's style that overrides the episode protocol: ``observe`` adds a
constant bias feature to the observation (so its network takes one input more), ``alter``
maps its own choice through a table before stepping the environment, and
``rewarded(environment)`` stores ``environment.reward()`` scaled. It keeps a history of what
it saw, across episodes, for the tests to read."""

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from hdeeprm.agent import PolicyLearningAgent

REWARD_SCALE = 10.0
ACTION_TABLE = [4, 3, 1, 0, 2]


class ProtocolOverridingAgent(PolicyLearningAgent):

    def __init__(self, gamma: float, hidden: int, action_size: int, observation_size: int) -> None:
        super(ProtocolOverridingAgent, self).__init__(gamma)
        self.first = nn.Linear(observation_size + 1, hidden)
        self.last = nn.Linear(hidden, action_size)
        self.observed = 0
        self.decided = []
        self.altered = []
        self.env_rewards = []
        self.stored_rewards = []

    def observe(self, environment) -> np.ndarray:
        self.observed += 1
        return np.append(environment.observation(), 1.0)

    def decide(self, observation: np.ndarray) -> int:
        action = self.get_action(self(observation))
        self.decided.append(action)
        return action

    def alter(self, action: int, environment) -> None:
        self.altered.append(ACTION_TABLE[action])
        environment.step(ACTION_TABLE[action])

    def rewarded(self, environment) -> None:
        reward = environment.reward()
        self.env_rewards.append(reward)
        self.rewards.append(REWARD_SCALE * reward)
        self.stored_rewards.append(self.rewards[-1])

    def forward_policy(self, observation: torch.Tensor) -> torch.Tensor:
        return F.softmax(self.last(F.leaky_relu(self.first(observation))), dim=1)
