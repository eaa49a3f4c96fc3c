"""Working agents on the original HDeepRM agent API (:mod:`hdeeprm.rl.agent`).

  classic       ClassicAgent: always the first configured action
  reinforce     ReinforceAgent: the original example network, Monte-Carlo policy gradient
  actor_critic  ActorCriticAgent: policy gradient with a learned value baseline
  ppo           PPOAgent: clipped-surrogate PPO with GAE and action masks
  kernel_ppo    KernelPPOAgent: PPO whose actor scores each job of a job window alike

Build them with :func:`build_agent`, which makes the initial weights a function of the seed
alone without leaving any trace in torch's global random state.
"""

from __future__ import annotations

from typing import Any

import torch

from hdeeprm.rl.agent import Agent, ClassicAgent, LearningAgent
from hdeeprm.rl.agents.actor_critic import ActorCriticAgent
from hdeeprm.rl.agents.kernel_ppo import KernelPPOAgent
from hdeeprm.rl.agents.ppo import PPOAgent
from hdeeprm.rl.agents.reinforce import ReinforceAgent

ALGORITHMS: dict[str, type[Agent]] = {
    "classic": ClassicAgent,
    "reinforce": ReinforceAgent,
    "actor_critic": ActorCriticAgent,
    "ppo": PPOAgent,
    "kernel_ppo": KernelPPOAgent,
}

__all__ = ["ALGORITHMS", "ActorCriticAgent", "ClassicAgent", "KernelPPOAgent", "PPOAgent", "ReinforceAgent", "build_agent"]


def build_agent(cls: type[Agent], gamma: float, hidden: int, action_size: int, observation_size: int,
                seed: int, **options: Any) -> Agent:
    """An agent of class ``cls`` whose initial weights and sampling depend on ``seed`` only.

    Learning agents get the original constructor ``(gamma, hidden, action_size,
    observation_size)`` plus ``options`` (e.g. PPO's clip); other agents are built without
    arguments. Construction runs under a forked, seeded torch generator, so global random
    state is the same afterwards as before; then ``set_seed(seed)`` seeds the agent's own
    generator."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        if issubclass(cls, LearningAgent):
            agent = cls(gamma, hidden, action_size, observation_size, **options)
        else:
            agent = cls(**options)
    agent.set_seed(seed)
    return agent
