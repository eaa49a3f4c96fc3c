"""Proximal policy optimisation (clipped surrogate), one update per episode, with action masks.

Networks: actor  observation -> H, LeakyReLU, 3 x (H -> H, LeakyReLU), H -> action logits
          critic observation -> H, LeakyReLU, 3 x (H -> H, LeakyReLU), H -> V(s)
Acting: masked-out actions get logit -inf; the action is sampled from the agent's generator
(argmax when evaluating greedily). Each decision stores (observation, mask, action,
log-probability, value), all without gradient: the update recomputes what it needs.
Update, at the end of the episode (``update(optimizer)``):
  1. advantages and returns by GAE(gamma, gae_lambda), the last step terminal (or
     bootstrapped from V(last_observation) for a truncated episode); advantages normalised;
  2. ``epochs`` passes over the episode in shuffled minibatches (the agent's generator):
       ratio        = pi_new(a|s) / pi_old(a|s)                   (masked logits)
       policy_loss  = mean(max(-A ratio, -A clip(ratio, 1 - clip, 1 + clip)))
       value_loss   = mean((V(s) - returns)^2) / 2
       loss         = policy_loss + value_coef value_loss - entropy_coef entropy
     each followed by one optimiser step with the gradient norm clipped to max_grad_norm.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np
import torch
from torch import nn
from torch.distributions import Categorical
from torch.nn import functional as F

from hdeeprm.rl.agent import Mask, Observation, PolicyLearningAgent, as_batch, as_mask
from hdeeprm.rl.agents.common import masked_logits, mlp
from hdeeprm.rl.returns import gae, standardise


@dataclass
class Episode:
    """What PPO learns from: one row per decision."""

    observations: torch.Tensor  # (T, n) float32
    masks: torch.Tensor  # (T, A) bool
    actions: torch.Tensor  # (T,) int64
    log_probs: torch.Tensor  # (T,) log pi_old(a_t|s_t)
    advantages: torch.Tensor  # (T,) normalised
    returns: torch.Tensor  # (T,) value targets


def concat_episodes(episodes: list[Episode]) -> Episode:
    """Several episodes as one batch (each keeps the advantages normalised on its own)."""
    return Episode(*(torch.cat([getattr(e, f.name) for e in episodes]) for f in fields(Episode)))


class PPOAgent(PolicyLearningAgent):
    """PPO with separate actor and critic networks."""

    def __init__(self, gamma: float, hidden: int, action_size: int, observation_size: int, *,
                 clip: float = 0.2, epochs: int = 4, minibatch_size: int = 64, gae_lambda: float = 0.95,
                 value_coef: float = 0.5, entropy_coef: float = 0.01, max_grad_norm: float = 0.5) -> None:
        super().__init__(gamma)
        self.actor = mlp(observation_size, hidden, action_size, layers=3)
        self.critic = mlp(observation_size, hidden, 1, layers=3)
        self.clip = float(clip)
        self.epochs = int(epochs)
        self.minibatch_size = int(minibatch_size)
        self.gae_lambda = float(gae_lambda)
        self.value_coef = float(value_coef)
        self.entropy_coef = float(entropy_coef)
        self.max_grad_norm = float(max_grad_norm)
        self.observations: list[torch.Tensor] = []
        self.masks: list[torch.Tensor] = []
        self.values: list[float] = []

    # ------------------------------------------------------------------ acting

    def forward_policy(self, observation: torch.Tensor) -> torch.Tensor:
        return F.softmax(self.actor(observation), dim=-1)

    def forward_value(self, observation: torch.Tensor) -> torch.Tensor:
        return self.critic(observation)

    def decide(self, observation: Observation, action_mask: Mask = None) -> int:
        x = as_batch(observation)
        with torch.no_grad():
            logits = self.actor(x)
            mask = as_mask(action_mask, logits.shape[-1])
            if mask is None:
                mask = torch.ones_like(logits, dtype=torch.bool)
            probs = F.softmax(masked_logits(logits, mask), dim=-1)
            if not self.training and self.greedy:
                action = int(torch.argmax(probs, dim=-1))
            else:
                action = int(torch.multinomial(probs, 1, generator=self.generator))
            value = float(self.critic(x))
        if not self.probs:
            self.probs = probs.reshape(-1).tolist()
        self.observations.append(x[0])
        self.masks.append(mask[0])
        self.actions.append(action)
        self.log_probs.append(torch.log(probs[0, action]))
        self.values.append(value)
        return action

    def act_batch(self, observations, masks,
                  generators: list) -> tuple[list[int], torch.Tensor, torch.Tensor, torch.Tensor]:
        """Batched inference for vectorised rollouts: one forward pass for B observations
        (B, n) with their masks (B, A); row i samples from ``generators[i]``. Returns the
        actions, their log-probabilities, the values V(s) and the probabilities, without
        gradient and without touching the per-episode lists."""
        x = torch.as_tensor(observations, dtype=torch.float32).reshape(len(generators), -1)
        with torch.no_grad():
            logits = self.actor(x)
            mask = torch.as_tensor(masks, dtype=torch.bool).reshape(logits.shape)
            probs = F.softmax(masked_logits(logits, mask), dim=-1)
            actions = [int(torch.multinomial(probs[i], 1, generator=g)) for i, g in enumerate(generators)]
            chosen = torch.tensor(actions, dtype=torch.int64)
            log_probs = torch.log(probs[torch.arange(len(actions)), chosen])
            values = self.critic(x).reshape(-1)
        return actions, log_probs, values, probs

    def episode_from(self, observations, masks, actions, log_probs, values, rewards) -> Episode:
        """An :class:`Episode` from what a vectorised rollout recorded (terminated episode)."""
        advantages, returns = gae(rewards, values, self.gamma, self.gae_lambda)
        return Episode(
            observations=torch.as_tensor(np.asarray(observations), dtype=torch.float32).reshape(len(actions), -1),
            masks=torch.as_tensor(np.asarray(masks), dtype=torch.bool),
            actions=torch.tensor(actions, dtype=torch.int64),
            log_probs=torch.as_tensor(log_probs, dtype=torch.float32),
            advantages=standardise(advantages, eps=1e-8),
            returns=returns,
        )

    # ------------------------------------------------------------------ learning

    def episode(self, last_observation: Observation | None = None) -> Episode:
        """The episode's decisions with their GAE advantages (normalised) and returns."""
        n = min(len(self.actions), len(self.rewards))
        last_value = 0.0
        if last_observation is not None:  # truncated: the future is worth V(s_T)
            with torch.no_grad():
                last_value = float(self.critic(as_batch(last_observation)))
        advantages, returns = gae(self.rewards[:n], self.values[:n], self.gamma, self.gae_lambda,
                                  last_value=last_value)
        return Episode(
            observations=torch.stack(self.observations[:n]),
            masks=torch.stack(self.masks[:n]),
            actions=torch.tensor(self.actions[:n], dtype=torch.int64),
            log_probs=torch.stack(self.log_probs[:n]).detach(),
            advantages=standardise(advantages, eps=1e-8),
            returns=returns,
        )

    def losses(self, batch: Episode, index: torch.Tensor) -> dict[str, torch.Tensor]:
        """The clipped-surrogate loss and its parts on the rows ``index`` of ``batch``."""
        logits = masked_logits(self.actor(batch.observations[index]), batch.masks[index])
        distribution = Categorical(logits=logits)
        log_probs = distribution.log_prob(batch.actions[index])
        log_ratio = log_probs - batch.log_probs[index]
        ratio = log_ratio.exp()
        advantages = batch.advantages[index]
        policy_loss = torch.max(-advantages * ratio,
                                -advantages * ratio.clamp(1.0 - self.clip, 1.0 + self.clip)).mean()
        values = self.critic(batch.observations[index]).reshape(-1)
        value_loss = 0.5 * ((values - batch.returns[index]) ** 2).mean()
        entropy = distribution.entropy().mean()
        loss = policy_loss + self.value_coef * value_loss - self.entropy_coef * entropy
        approx_kl = ((ratio - 1.0) - log_ratio).mean()  # k3 estimator of KL(old || new)
        return {"loss": loss, "policy_loss": policy_loss, "value_loss": value_loss, "entropy": entropy,
                "approx_kl": approx_kl}

    def loss(self) -> torch.Tensor:
        """The whole episode's PPO loss at the current parameters (one full batch)."""
        if min(len(self.actions), len(self.rewards)) == 0:
            return torch.zeros(())
        batch = self.episode()
        return self.losses(batch, torch.arange(len(batch.actions)))["loss"]

    def update(self, optimizer: torch.optim.Optimizer,
               last_observation: Observation | None = None) -> dict[str, float]:
        """``epochs`` passes of minibatch PPO steps on this episode; the last pass's mean
        loss parts. ``last_observation``: give it for a truncated episode (bootstraps the
        returns); leave it out when the episode terminated. {} when nothing was decided."""
        n = min(len(self.actions), len(self.rewards))
        if n == 0:
            return {}
        return self.optimise(self.episode(last_observation), optimizer)

    def optimise(self, batch: Episode, optimizer: torch.optim.Optimizer) -> dict[str, float]:
        """``epochs`` passes of shuffled minibatch PPO steps on ``batch`` (one episode, or
        several joined by :func:`concat_episodes`); the last pass's mean loss parts."""
        n = len(batch.actions)
        report: dict[str, float] = {}
        for _ in range(self.epochs):
            order = torch.randperm(n, generator=self.generator)
            sums: dict[str, float] = {}
            nb_minibatches = 0
            for start in range(0, n, self.minibatch_size):
                parts = self.losses(batch, order[start:start + self.minibatch_size])
                optimizer.zero_grad()
                parts["loss"].backward()
                nn.utils.clip_grad_norm_(self.parameters(), self.max_grad_norm)
                optimizer.step()
                for key, value in parts.items():
                    sums[key] = sums.get(key, 0.0) + float(value.detach())
                nb_minibatches += 1
            report = {key: total / nb_minibatches for key, total in sums.items()}
        return report

    def reset_episode(self) -> None:
        super().reset_episode()
        self.observations.clear()
        self.masks.clear()
        self.values.clear()
