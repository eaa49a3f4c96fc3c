"""Behaviour cloning: start a PPO agent from a heuristic instead of from random weights.

A teacher (a job-window heuristic such as ``sjf``, or a fixed pair such as
``shortest:high_gflops``) plays ``episodes`` training windows; every decision gives one
example (observation, action mask, the teacher's action) and the return that followed.
Then, for ``epochs`` passes in shuffled minibatches (the agent's own generator):
  actor   cross-entropy of the masked logits against the teacher's action
  critic  mean squared error against the discounted return (so that PPO's first
          advantages are not measured against an untrained value)
PPO then fine-tunes from there. In an experiment: ``"pretrain": {"teacher": "sjf",
"episodes": 20, "epochs": 10}``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch.nn import functional as F

from hdeeprm.common.errors import ConfigError
from hdeeprm.rl.agents.common import masked_logits
from hdeeprm.rl.returns import discounted_returns

PRETRAIN_KEYS = ("teacher", "episodes", "epochs", "minibatch_size")


@dataclass(frozen=True)
class PretrainConfig:
    teacher: str
    episodes: int = 20
    epochs: int = 10
    minibatch_size: int = 256

    @classmethod
    def from_dict(cls, block) -> "PretrainConfig":
        if not isinstance(block, dict):
            raise ConfigError(f"pretrain {block!r}: expected an object such as "
                              '{"teacher": "sjf", "episodes": 20}')
        unknown = sorted(set(block) - set(PRETRAIN_KEYS))
        if unknown:
            raise ConfigError(f"pretrain.{unknown[0]}: unknown key; expected some of {', '.join(PRETRAIN_KEYS)}")
        if "teacher" not in block or not isinstance(block["teacher"], str):
            raise ConfigError("pretrain.teacher: expected a job-window heuristic (sjf, f1...) "
                              "or a pair (shortest:high_gflops)")
        config = cls(**block)
        for name in ("episodes", "epochs", "minibatch_size"):
            value = getattr(config, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"pretrain.{name} {value!r}: expected a positive integer")
        return config


def teacher_for(env, teacher: str):
    """The teacher as an agent of ``env``'s action space."""
    from hdeeprm.rl.baselines import FixedActionAgent
    from hdeeprm.rl.job_window import WINDOW_HEURISTICS, WindowHeuristicAgent

    if env.config.action_space == "job_window":
        if teacher not in WINDOW_HEURISTICS:
            raise ConfigError(f"pretrain.teacher {teacher!r}: for the job window, expected one of "
                              f"{', '.join(WINDOW_HEURISTICS)}")
        return WindowHeuristicAgent(env, teacher)
    pair = tuple(teacher.split(":"))
    if pair not in env.config.actions:
        raise ConfigError(f"pretrain.teacher {teacher!r}: expected one of the experiment's pairs, "
                          f"e.g. {':'.join(env.config.actions[0])}")
    return FixedActionAgent(env.config.actions.index(pair))


def demonstrations(env, teacher, seeds, gamma: float):
    """The teacher's decisions on the windows of ``seeds``: observations (flattened), masks,
    actions and the discounted returns that followed each."""
    observations, masks, actions, returns = [], [], [], []
    for seed in seeds:
        obs, info = env.reset(seed=seed)
        rewards, done = [], False
        while not done:
            action = int(teacher.decide(obs, info["action_mask"]))
            observations.append(np.asarray(obs, dtype=np.float32).reshape(-1))
            masks.append(info["action_mask"])
            actions.append(action)
            obs, reward, terminated, truncated, info = env.step(action)
            rewards.append(reward)
            done = terminated or truncated
        returns.append(discounted_returns(rewards, gamma))
    return (torch.tensor(np.array(observations)), torch.tensor(np.array(masks)),
            torch.tensor(actions, dtype=torch.int64), torch.cat(returns))


def clone(agent, optimizer, observations, masks, actions, returns, *, epochs: int, minibatch_size: int) -> dict:
    """Fit the agent's actor to the teacher's actions and its critic to the returns."""
    if not hasattr(agent, "actor") or not hasattr(agent, "critic"):
        raise ConfigError(f"pretrain: {type(agent).__name__} has no actor and critic; use ppo or kernel_ppo")
    n = len(actions)
    report = {}
    for _ in range(epochs):
        order = torch.randperm(n, generator=agent.generator)
        sums = {"imitation_loss": 0.0, "value_loss": 0.0, "accuracy": 0.0}
        for start in range(0, n, minibatch_size):
            index = order[start:start + minibatch_size]
            logits = masked_logits(agent.actor(observations[index]), masks[index])
            imitation = F.cross_entropy(logits, actions[index])
            value = 0.5 * ((agent.critic(observations[index]).reshape(-1) - returns[index]) ** 2).mean()
            optimizer.zero_grad()
            (imitation + value).backward()
            optimizer.step()
            share = len(index) / n
            sums["imitation_loss"] += float(imitation.detach()) * share
            sums["value_loss"] += float(value.detach()) * share
            sums["accuracy"] += float((logits.argmax(-1) == actions[index]).float().mean()) * share
        report = sums
    return report


def pretrain(config, agent, optimizer) -> dict:
    """Behaviour cloning as ``config.pretrain`` says, on the experiment's training part."""
    from hdeeprm.common.seeding import episode_seeds

    settings = PretrainConfig.from_dict(config.pretrain)
    env = config.make_env("train")
    teacher = teacher_for(env, settings.teacher)
    data = demonstrations(env, teacher, episode_seeds(config.seed, settings.episodes, stream=5), config.gamma)
    env.close()
    report = clone(agent, optimizer, *data, epochs=settings.epochs, minibatch_size=settings.minibatch_size)
    return {**report, "examples": len(data[2]), "teacher": settings.teacher}
