"""Episodes, training and evaluation of agents on HeteroEnv.

An episode: reset the env with a seed, let the agent decide at every decision point (with
the action mask), hand it each reward, and at the end, when training, let it update itself
(``agent.update(optimizer)``: one gradient step for REINFORCE and actor-critic, several
epochs of minibatches for PPO). Everything an episode produced comes back as an
``EpisodeRecord``; the callers write it in the original HDeepRM's log files and as Batsim
outputs.
"""

from __future__ import annotations

import inspect
import json
import math
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

import numpy as np

from .core.outputs import write_outputs
from .env import HeteroEnv
from .keys import DEFAULT_PAIRS
from .metrics import headline_metrics



@dataclass
class EpisodeRecord:
    """What one episode did: summed reward, update statistics, actions taken, the agent's
    action probabilities at the first decision, and the simulation's headline metrics."""

    seed: int
    reward: float
    steps: int
    actions: list[int]
    first_probs: list[float] | None
    losses: dict[str, float]
    metrics: dict[str, float]
    wall_seconds: float
    result: Any = field(default=None, repr=False)


class FixedActionAgent:
    """A classic policy as an agent: the same action at every decision (the original's
    ClassicAgent played action 0, the first configured pair)."""

    def __init__(self, action: int = 0):
        self.action = action

    def decide(self, observation, action_mask=None) -> int:
        return self.action


class RandomMaskedAgent:
    """Uniformly random valid actions (the baseline a learned agent must beat)."""

    def __init__(self, seed: int):
        self.rng = np.random.default_rng(seed)

    def decide(self, observation, action_mask) -> int:
        return int(self.rng.choice(np.flatnonzero(action_mask)))


def _accepts_mask(agent) -> bool:
    try:
        return len(inspect.signature(agent.decide).parameters) >= 2
    except (TypeError, ValueError):
        return False


def run_episode(env: HeteroEnv, agent, *, seed: int, train: bool = False, optimizer=None) -> EpisodeRecord:
    """One episode of ``agent`` on ``env``; with ``train``, the agent's update at the end."""
    t0 = time.perf_counter()
    if hasattr(agent, "train"):
        agent.train(train)
    if hasattr(agent, "reset_episode"):
        agent.reset_episode()
    masked = _accepts_mask(agent)
    obs, info = env.reset(seed=seed)
    total, actions, done = 0.0, [], False
    while not done:
        action = agent.decide(obs, info["action_mask"]) if masked else agent.decide(obs)
        action = int(action)
        obs, reward, terminated, truncated, info = env.step(action)
        if hasattr(agent, "rewarded"):
            agent.rewarded(reward)
        actions.append(action)
        total += reward
        done = terminated or truncated
    losses: dict[str, float] = {}
    if train and optimizer is not None:
        losses = dict(agent.update(optimizer))
    probs = getattr(agent, "probs", None)
    result = env.result() if terminated else None
    metrics = headline_metrics(result).as_dict() if result is not None else dict(info["metrics"])
    return EpisodeRecord(seed, total, len(actions), actions, list(probs) if probs is not None else None,
                         losses, metrics, time.perf_counter() - t0, result)


class HDeepRMLogs:
    """The original HDeepRM's log files, in an output folder instead of the current one:
    rewards.log (summed reward per episode), makespans.log, losses.log (numbers, one line per
    trained episode), actions.log (one action index per decision), probs.json (first-decision
    probabilities: ``{"probs": [[p_a(ep 1), p_a(ep 2), ...] for each action a]}``). Each
    episode's Batsim outputs go to ``episode_<k>/``."""

    def __init__(self, out_dir: str | os.PathLike, nb_actions: int):
        self.out = Path(out_dir)
        self.out.mkdir(parents=True, exist_ok=True)
        self.nb_actions = nb_actions
        self.probs: list[list[float]] = [[] for _ in range(nb_actions)]

    def write(self, index: int, record: EpisodeRecord) -> None:
        with open(self.out / "rewards.log", "a") as f:
            f.write(f"{record.reward!r}\n")
        with open(self.out / "makespans.log", "a") as f:
            f.write(f"{record.metrics.get('makespan', float('nan'))!r}\n")
        if record.losses:
            with open(self.out / "losses.log", "a") as f:
                f.write(f"{record.losses['loss']!r}\n")
        with open(self.out / "actions.log", "a") as f:
            f.writelines(f"{a}\n" for a in record.actions)
        if record.first_probs is not None:
            for a in range(self.nb_actions):
                self.probs[a].append(float(record.first_probs[a]))
            _write_json_atomic(self.out / "probs.json", {"probs": self.probs})
        if record.result is not None:
            write_outputs(record.result, str(self.out / f"episode_{index}"))


def _write_json_atomic(path: Path, data) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w") as f:
        json.dump(data, f, indent=1)
        f.write("\n")
    os.replace(tmp, path)


class Progress:
    """A one-line progress bar on stderr (episodes done, last reward, rate)."""

    def __init__(self, total: int, label: str, stream=None, enabled: bool | None = None):
        stream = sys.stderr if stream is None else stream  # looked up now: it may be replaced
        self.total, self.label, self.stream = total, label, stream
        self.enabled = stream.isatty() if enabled is None else enabled
        self.start = time.perf_counter()
        self.done = 0

    def update(self, record: EpisodeRecord) -> None:
        self.done += 1
        if not self.enabled:
            return
        width = 24
        filled = int(width * self.done / max(self.total, 1))
        elapsed = time.perf_counter() - self.start
        eta = elapsed / self.done * (self.total - self.done)
        self.stream.write(f"\r{self.label} [{'#' * filled}{'.' * (width - filled)}] "
                          f"{self.done}/{self.total} reward {record.reward:.4g} "
                          f"{elapsed:.0f}s elapsed, {eta:.0f}s left ")
        if self.done == self.total:
            self.stream.write("\n")
        self.stream.flush()


def summarise(values: Iterable[float]) -> tuple[float, float]:
    values = list(values)
    mean = sum(values) / len(values)
    std = math.sqrt(sum((v - mean) ** 2 for v in values) / len(values))
    return mean, std


# ---------------------------------------------------------------------- experiments


def _algorithm_class(name: str):
    from .agents import ALGORITHMS

    return ALGORITHMS[name]


def train(config, out_dir: str | os.PathLike, *, init: str | None = None,
          tensorboard: str | None = None, progress: bool | None = None) -> dict:
    """Train ``config.algorithm`` for ``config.episodes`` episodes; writes the HDeepRM logs,
    ``model.pt`` (after every episode, atomically) and ``experiment.json`` into ``out_dir``."""
    import torch

    from .agents import build_agent
    from .agents.common import load_checkpoint, save_checkpoint
    from .experiment import episode_seeds

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "experiment.json").write_text(json.dumps(config.as_dict(), indent=2) + "\n")
    env = config.make_env()
    agent = build_agent(_algorithm_class(config.algorithm), config.gamma, config.hidden,
                        env.action_space.n, env.observation_space.shape[0], seed=config.seed)
    optimizer = torch.optim.Adam(agent.parameters(), lr=config.lr)
    if init:
        load_checkpoint(init, agent, optimizer)
    writer = None
    if tensorboard:
        from torch.utils.tensorboard import SummaryWriter

        writer = SummaryWriter(tensorboard)
    logs = HDeepRMLogs(out, env.action_space.n)
    bar = Progress(config.episodes, f"training {config.algorithm}", enabled=progress)
    checkpoint = out / "model.pt"
    t0 = time.perf_counter()
    returns = []
    for k, seed in enumerate(episode_seeds(config.seed, config.episodes, stream=0)):
        record = run_episode(env, agent, seed=seed, train=True, optimizer=optimizer)
        logs.write(k, record)
        save_checkpoint(checkpoint, agent, optimizer, {"episode": k, "algorithm": config.algorithm})
        returns.append(record.reward)
        if writer is not None:
            writer.add_scalar("episode/return", record.reward, k)
            for name, value in record.losses.items():
                writer.add_scalar(f"loss/{name}", value, k)
        bar.update(record)
    if writer is not None:
        writer.close()
    return {"checkpoint": str(checkpoint), "returns": returns, "wall_seconds": time.perf_counter() - t0}


@dataclass
class EvaluationRow:
    policy: str
    mean_return: float
    std_return: float
    mean_waiting_time: float
    mean_bounded_slowdown: float
    makespan: float
    energy_joules: float


def evaluate(config, checkpoint: str | None = None, *, out_dir: str | os.PathLike | None = None,
             pairs=None) -> list[EvaluationRow]:
    """The agent (greedy, if a checkpoint is given), random valid actions and each classic
    pair, on the same ``eval_episodes`` windows (seeds never used in training)."""
    from .experiment import episode_seeds

    seeds = episode_seeds(config.seed, config.eval_episodes, stream=1)
    contenders: list[tuple[str, HeteroEnv, object]] = []
    if checkpoint:
        from .agents import build_agent
        from .agents.common import load_checkpoint

        env = config.make_env()
        agent = build_agent(_algorithm_class(config.algorithm), config.gamma, config.hidden,
                            env.action_space.n, env.observation_space.shape[0], seed=config.seed)
        load_checkpoint(checkpoint, agent)
        agent.greedy = True
        contenders.append((f"agent ({config.algorithm})", env, agent))
    classic_env = config.make_env(actions=DEFAULT_PAIRS, void=False)
    contenders.append(("random valid actions", classic_env, RandomMaskedAgent(config.seed)))
    for i, (job_key, core_key) in enumerate(pairs or DEFAULT_PAIRS):
        index = classic_env.config.actions.index((job_key, core_key))
        contenders.append((f"{job_key}:{core_key}", classic_env, FixedActionAgent(index)))
    rows = []
    for name, env, agent in contenders:
        records = [run_episode(env, agent, seed=s) for s in seeds]
        mean, std = summarise(r.reward for r in records)
        metric = {k: summarise(r.metrics[k] for r in records)[0]
                  for k in ("mean_waiting_time", "mean_bounded_slowdown", "makespan", "consumed_joules")}
        rows.append(EvaluationRow(name, mean, std, metric["mean_waiting_time"],
                                  metric["mean_bounded_slowdown"], metric["makespan"],
                                  metric["consumed_joules"]))
    rows.sort(key=lambda r: -r.mean_return)
    if out_dir is not None:
        Path(out_dir).mkdir(parents=True, exist_ok=True)
        with open(Path(out_dir) / "evaluation.csv", "w") as f:
            f.write("policy,mean_return,std_return,mean_waiting_time,mean_bounded_slowdown,makespan,energy_joules\n")
            for r in rows:
                f.write(f"{r.policy},{r.mean_return!r},{r.std_return!r},{r.mean_waiting_time!r},"
                        f"{r.mean_bounded_slowdown!r},{r.makespan!r},{r.energy_joules!r}\n")
    return rows


def print_table(rows: list[EvaluationRow], config, stream=None, top: int = 10) -> None:
    """The evaluation as a table: best first; the agent and the random baseline always shown."""
    stream = sys.stdout if stream is None else stream
    print(f"\n{config.objective} on {config.eval_episodes} held-out episodes "
          f"({config.episode_jobs or 'all'} jobs each), higher return is better:", file=stream)
    header = f"{'rank':>4}  {'policy':<26} {'return':>12} {'± std':>10} {'wait s':>10} {'bsld':>9} {'makespan s':>12}"
    print(header, file=stream)
    print("-" * len(header), file=stream)
    for rank, r in enumerate(rows, 1):
        if rank <= top or r.policy.startswith(("agent", "random valid")):
            print(f"{rank:>4}  {r.policy:<26} {r.mean_return:>12.5g} {r.std_return:>10.3g} "
                  f"{r.mean_waiting_time:>10.1f} {r.mean_bounded_slowdown:>9.2f} {r.makespan:>12.1f}", file=stream)
    agent = [i for i, r in enumerate(rows) if r.policy.startswith("agent")]
    if agent:
        print(f"the agent ranks {agent[0] + 1} of {len(rows)}", file=stream)
