"""The original HDeepRM agent API, so that agent files written for it plug in unchanged.

An original agent file does ``from hdeeprm.rl.agent import PolicyLearningAgent`` and defines a
subclass with the constructor ``(gamma, hidden, action_size, observation_size)`` and a
``forward_policy(observation) -> action probabilities`` method; :func:`load_agent_class`
finds that class in the file. The hierarchy is the original's:

  Agent                 decide(observation, action_mask) -> action index; collects rewards
    ClassicAgent        always the first configured action (a fixed classic policy)
    LearningAgent       discounted, standardised returns; one optimiser step per episode
      PolicyLearningAgent   samples from forward_policy(); REINFORCE loss
      ValueLearningAgent    forward_value(); SmoothL1 loss against the returns

The original's methods are all here with their meaning: ``observe(environment)``,
``decide``, ``alter(action, environment)`` and ``rewarded(environment)`` make up a decision
(``hdeeprm.rl.train.run_episode`` calls them in that order, so overriding any of them works;
the environment is an ``AgentEnvironment`` with ``observation()``, ``step(action)``,
``reward()`` and ``action_mask()``); ``get_action(probabilities)``, ``save_log_prob``,
``policy_loss``, ``save_value``, ``value_loss`` and ``process`` (the pre-0.3.0 name of
``forward``) are the building blocks the original examples call, and the built-in
``decide`` and ``loss`` are written with them.

Differences from the original, all on purpose: ``decide`` may take the action mask of the
environment (masked actions get probability 0); sampling draws from the agent's own
``torch.Generator`` (``set_seed``), never from global state, and a learning agent that is not
training may act greedily (``greedy``); ``get_action`` sets ``probs`` on the first decision
(the original's actor-critic never did, and the logs need it) and writes no ``actions.log``
or ``log_probs.log`` of its own (the launcher writes them in its output folder);
``rewarded`` takes the reward itself as well as an environment; ``policy_loss`` and
``value_loss`` give tensors of shape (1,), which ``torch.cat`` and ``torch.stack`` both take
(the original's value loss broadcast a (1, 1) value against a (1,) return, and its
``torch.cat`` of 0-d value losses failed); ``process`` on an agent that is both a policy and
a value learner whose ``forward`` returns None gives ``(forward_policy(x), forward_value(x))``,
which is what the original actor-critic example meant (its trailing no-op ``forward`` hid
the real one); ``update`` on an episode without a decision does nothing instead of crashing.

Working algorithms built on this API live in :mod:`hdeeprm.rl.agents`.
"""

from __future__ import annotations

import hashlib
import importlib.util
import re
import sys
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from hdeeprm.common.errors import ConfigError
from hdeeprm.rl.returns import discounted_returns, standardise

Observation = np.ndarray | torch.Tensor | Sequence[float]
Mask = np.ndarray | torch.Tensor | Sequence[bool] | None


def as_batch(observation: Observation) -> torch.Tensor:
    """One observation as a float32 tensor of shape (1, n), what the networks take."""
    return torch.as_tensor(np.asarray(observation) if not isinstance(observation, torch.Tensor) else observation,
                           dtype=torch.float32).reshape(1, -1)


def as_mask(action_mask: Mask, nb_actions: int) -> torch.Tensor | None:
    """The action mask as a bool tensor of shape (1, A), or None when there is none."""
    if action_mask is None:
        return None
    mask = torch.as_tensor(np.asarray(action_mask) if not isinstance(action_mask, torch.Tensor) else action_mask,
                           dtype=torch.bool).reshape(1, -1)
    if mask.shape[1] != nb_actions:
        raise ValueError(f"action mask of {mask.shape[1]} actions for a policy of {nb_actions}")
    return mask


class Agent(nn.Module):
    """Decides an action at each decision point and collects the rewards it gets.

    ``rewards`` holds this episode's rewards, one per decision; ``reset_episode`` clears it
    (and every other per-episode list of the subclasses). ``generator`` is the agent's own
    source of randomness (None: torch's default one until ``set_seed`` is called), so that
    seeding an agent never touches, nor depends on, global random state. ``greedy`` makes a
    learning agent that is not training take the most probable action instead of sampling.
    """

    def __init__(self) -> None:
        super().__init__()
        self.rewards: list[float] = []
        self.generator: torch.Generator | None = None
        self.greedy: bool = False

    # A decision is observe -> decide -> alter -> rewarded, the original's protocol (run_episode
    # follows it); ``environment`` is the episode's AgentEnvironment (hdeeprm.rl.train).

    def observe(self, environment: Any) -> Observation:
        """What the agent sees of ``environment`` before deciding: its latest observation."""
        return environment.observation()

    def decide(self, observation: Observation, action_mask: Mask = None) -> int:
        """The index of the action to take on ``observation``."""
        raise NotImplementedError(f"{type(self).__name__} must implement decide(observation, action_mask)")

    def alter(self, action: int, environment: Any) -> None:
        """Apply ``action``: step ``environment`` with it (once)."""
        environment.step(action)

    def rewarded(self, reward: Any) -> None:
        """Record the reward of the last decision: ``reward`` is the number itself, or an
        environment whose ``reward()`` gives it (the original passed the environment)."""
        if callable(getattr(reward, "reward", None)):
            reward = reward.reward()
        self.rewards.append(float(reward))

    def reset_episode(self) -> None:
        """Forget the episode's per-decision records (call after the episode's update)."""
        self.rewards.clear()

    def set_seed(self, seed: int) -> None:
        """Seed the agent's own generator (sampling, minibatch shuffling); nothing else."""
        generator = torch.Generator()
        generator.manual_seed(int(seed))
        self.generator = generator


class ClassicAgent(Agent):
    """Always the first configured action: the classic policy of the options file."""

    def decide(self, observation: Observation, action_mask: Mask = None) -> int:
        return 0


class LearningAgent(Agent):
    """An agent trained once per episode on its discounted returns (discount ``gamma``)."""

    def __init__(self, gamma: float) -> None:
        super().__init__()
        self.gamma = float(gamma)

    def forward(self, observation: Observation) -> torch.Tensor:  # type: ignore[override]
        raise NotImplementedError(f"{type(self).__name__} must implement forward(observation)")

    def process(self, observation: Observation) -> Any:
        """``forward`` under its pre-0.3.0 name, which original agent files still call.

        The original actor-critic example ends with a no-op ``def forward(self, *inp): pass``
        that hides its real ``forward``, so there ``forward`` returns None and the example's
        ``probs, value = self.process(observation)`` could never work. For an agent that
        learns both a policy and values, a None from ``forward`` is therefore taken to mean
        the pair the example meant: ``(forward_policy(x), forward_value(x))``."""
        out = self.forward(observation)
        if out is None and isinstance(self, PolicyLearningAgent) and isinstance(self, ValueLearningAgent):
            x = as_batch(observation)
            return self.forward_policy(x), self.forward_value(x)
        return out

    def loss(self) -> torch.Tensor:
        """The episode's loss, to minimise."""
        raise NotImplementedError(f"{type(self).__name__} must implement loss()")

    def nb_decisions(self) -> int:
        """Decisions taken in this episode (0: there is nothing to learn from)."""
        return len(self.rewards)

    def transform_rewards(self) -> torch.Tensor:
        """Discounted returns G_t = r_t + gamma G_{t+1}, standardised when there are several
        (so that the gradient's scale does not depend on the objective's units); float32."""
        return standardise(discounted_returns(self.rewards, self.gamma))

    def update(self, optimizer: torch.optim.Optimizer) -> dict[str, float]:
        """The training step at the end of an episode: one optimiser step on ``loss()``.
        Nothing happens (and {} is returned) when the episode had no decision or no reward
        to learn from. The per-episode lists are kept: call ``reset_episode`` afterwards."""
        if self.nb_decisions() == 0:
            return {}
        loss = self.loss()
        if not loss.requires_grad:  # no (decision, reward) pair: no gradient to follow
            return {}
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        return {"loss": float(loss.detach())}


class PolicyLearningAgent(LearningAgent):
    """Learns a policy: ``forward_policy(x)`` maps observations (B, n) to probabilities (B, A).

    Per episode: ``probs`` is the distribution of the first decision (a list of floats, for
    logging what the policy thinks), ``log_probs`` the log-probabilities of the actions taken
    (tensors that carry the gradient) and ``actions`` those actions.
    """

    def __init__(self, gamma: float) -> None:
        super().__init__(gamma)
        self.probs: list[float] = []
        self.log_probs: list[torch.Tensor] = []
        self.actions: list[int] = []

    def forward_policy(self, observation: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError(f"{type(self).__name__} must implement forward_policy(observation)")

    def forward(self, observation: Observation) -> torch.Tensor:  # type: ignore[override]
        """Action probabilities (1, A) for one observation (numpy array or tensor)."""
        return self.forward_policy(as_batch(observation))

    def nb_decisions(self) -> int:
        return len(self.log_probs)

    def decide(self, observation: Observation, action_mask: Mask = None) -> int:
        """``get_action`` on the policy's probabilities for ``observation``. Masked-out actions
        get probability 0 (``get_action`` renormalises the rest); a mask that leaves nothing
        is ignored."""
        with torch.set_grad_enabled(self.training and torch.is_grad_enabled()):
            probs = self(observation)
            mask = as_mask(action_mask, probs.shape[-1])
            if mask is not None:
                masked = probs * mask
                if float(masked.detach().sum()) > 0:
                    probs = masked
            return self.get_action(probs)

    def get_action(self, probabilities: torch.Tensor) -> int:
        """The action for one decision, drawn from ``probabilities`` (shape (1, A) or (A,);
        normalised here, as a categorical distribution would) with the agent's generator, or
        the most probable one when not training and ``greedy``. Its log-probability goes to
        ``save_log_prob`` and the action to ``actions``; the first decision's distribution is
        kept in ``probs``. Returns the action index."""
        probs = probabilities.reshape(1, -1)
        probs = probs / probs.sum(dim=-1, keepdim=True)
        if not self.training and self.greedy:
            action = int(torch.argmax(probs, dim=-1))
        else:
            action = int(torch.multinomial(probs.detach(), 1, generator=self.generator))
        if not self.probs:
            self.probs = probs.detach().reshape(-1).tolist()
        self.save_log_prob(torch.log(probs[0, action]))
        self.actions.append(action)
        return action

    def save_log_prob(self, log_prob: torch.Tensor) -> None:
        """Keep the log-probability of the action just taken (it carries the gradient)."""
        self.log_probs.append(log_prob)

    def policy_loss(self, rews_or_advs: Sequence[float] | torch.Tensor) -> list[torch.Tensor]:
        """Per decision, -log pi(a_t|s_t) times its return or advantage (pairs up to the
        shorter of the two lists), each of shape (1,) so that ``torch.cat`` and
        ``torch.stack`` both take the list."""
        return [(-log_prob * r).reshape(1) for log_prob, r in zip(self.log_probs, rews_or_advs)]

    def loss(self) -> torch.Tensor:
        """REINFORCE: sum over decisions of -log pi(a_t|s_t) G_t (standardised returns)."""
        return _sum_in_order(self.policy_loss(self.transform_rewards()))

    def reset_episode(self) -> None:
        super().reset_episode()
        self.probs = []
        self.log_probs.clear()
        self.actions.clear()


class ValueLearningAgent(LearningAgent):
    """Learns state values: ``forward_value(x)`` maps observations (B, n) to values (B, 1).
    Subclasses decide how to act on them and ``save_value`` each V(s_t) they use."""

    def __init__(self, gamma: float) -> None:
        super().__init__(gamma)
        self.values: list[torch.Tensor] = []

    def forward_value(self, observation: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError(f"{type(self).__name__} must implement forward_value(observation)")

    def forward(self, observation: Observation) -> torch.Tensor:  # type: ignore[override]
        """The value (1, 1) of one observation."""
        return self.forward_value(as_batch(observation))

    def save_value(self, value: torch.Tensor) -> None:
        """Keep V(s_t) of the decision just taken (one number; it carries the gradient)."""
        self.values.append(value.reshape(()))

    def nb_decisions(self) -> int:
        return len(self.values)

    def value_loss(self, rews: Sequence[float] | torch.Tensor) -> list[torch.Tensor]:
        """Per decision, SmoothL1(V(s_t), G_t) (pairs up to the shorter of the two lists),
        value and target both of shape (1,), so each loss is too."""
        losses = []
        for value, rew in zip(self.values, rews):
            value = value.reshape(1)
            target = torch.as_tensor(rew, dtype=value.dtype).reshape(1)
            losses.append(F.smooth_l1_loss(value, target, reduction="none"))
        return losses

    def loss(self) -> torch.Tensor:
        """Sum over decisions of SmoothL1(V(s_t), G_t)."""
        return _sum_in_order(self.value_loss(self.transform_rewards()))

    def reset_episode(self) -> None:
        super().reset_episode()
        self.values.clear()


def _sum_in_order(terms: list[torch.Tensor]) -> torch.Tensor:
    """The 0-d sum of per-decision losses, added one after the other from 0 (the order the
    built-in agents have always used, so seeded results stay the same to the bit)."""
    total = torch.zeros(())
    for term in terms:
        total = total + term.reshape(())
    return total


def load_agent_class(path: str | Path) -> type[Agent]:
    """The agent class an agent file defines: among the classes defined in the file itself
    (not imported into it) that derive from Agent, the first by name. The file is run as a
    module of its own (a name unique to its path, so two files with one stem do not clash)."""
    path = Path(path)
    expected = "expected a Python file defining a subclass of hdeeprm.rl.agent.Agent (e.g. of PolicyLearningAgent)"
    if not path.is_file():
        raise ConfigError(f"{path}: agent file not found; {expected}")
    stem = re.sub(r"\W", "_", path.stem)
    digest = hashlib.sha1(str(path.resolve()).encode()).hexdigest()[:10]
    name = f"hdeeprm_agent_file_{stem}_{digest}"
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ConfigError(f"{path}: cannot be imported as Python; {expected}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses, pickling of classes and the like look modules up there
    try:
        spec.loader.exec_module(module)
    except Exception as e:  # the user's file: any error is a configuration error
        sys.modules.pop(name, None)
        raise ConfigError(f"{path}: importing the agent file failed: {type(e).__name__}: {e}") from e
    classes: list[type[Any]] = [
        obj for obj in vars(module).values()
        if isinstance(obj, type) and issubclass(obj, Agent) and obj.__module__ == name
    ]
    if not classes:
        raise ConfigError(f"{path}: defines no agent class; {expected}")
    return sorted(classes, key=lambda cls: cls.__name__)[0]
