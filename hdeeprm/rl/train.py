"""Episodes, training and evaluation of agents on HeteroEnv.

An episode: reset the env with a seed, let the agent decide at every decision point (with
the action mask), hand it each reward, and at the end, when training, let it update itself
(``agent.update(optimizer)``: one gradient step for REINFORCE and actor-critic, several
epochs of minibatches for PPO). Everything an episode produced comes back as an
``EpisodeRecord``; the callers write it in the original HDeepRM's log files and as Batsim
outputs.
"""

from __future__ import annotations

import contextlib
import inspect
import json
import math
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from hdeeprm.common.errors import ConfigError
from hdeeprm.common.progress import Progress
from hdeeprm.rl.env import HeteroEnv
from hdeeprm.rl.resume import (
    BEST_FILE,
    CHECKPOINT_FILE,
    check_resumable,
    check_unused,
    resume_point,
    saved_experiment,
    truncate_lines,
    write_experiment,
)
from hdeeprm.simulation.metrics import headline_metrics
from hdeeprm.simulation.outputs import write_outputs


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
    # Jobs each decision started (its scheduling pass), and the log-probabilities of the
    # actions taken when the agent keeps them (the original's insights.log and log_probs.log).
    started_per_step: list[int] = field(default_factory=list, repr=False)
    log_probs: list[float] | None = field(default=None, repr=False)


def _accepts_mask(agent) -> bool:
    try:
        return len(inspect.signature(agent.decide).parameters) >= 2
    except (TypeError, ValueError):
        return False


class AgentEnvironment:
    """A HeteroEnv as an agent's ``observe``, ``alter`` and ``rewarded`` see it during an
    episode: the original HDeepRM environment's ``observation()``, ``step(action)`` and
    ``reward()``, plus ``action_mask()``. It keeps what the latest step returned (``obs``,
    ``last_reward``, ``terminated``, ``truncated``, ``info``) and what the episode has done so
    far (``actions``, ``total``: summed reward, ``started_per_step``: jobs each step started)."""

    def __init__(self, env: HeteroEnv):
        self.env = env
        self.obs: Any = None
        self.info: dict = {}
        self.last_reward: float = 0.0
        self.terminated = self.truncated = False
        self.actions: list[int] = []
        self.total = 0.0
        self.started_per_step: list[int] = []

    def reset(self, *, seed: int, options: dict | None = None) -> None:
        self.obs, self.info = self.env.reset(seed=seed, options=options)
        self.last_reward, self.terminated, self.truncated = 0.0, False, False
        self.actions, self.total, self.started_per_step = [], 0.0, []

    @property
    def done(self) -> bool:
        return self.terminated or self.truncated

    def observation(self) -> Any:
        return self.obs

    def action_mask(self) -> Any:
        return self.info["action_mask"]

    def reward(self) -> float:
        """The reward of the latest step (0 before the first)."""
        return self.last_reward

    def step(self, action: int) -> tuple:
        """Step the HeteroEnv with ``action``; returns what it returned."""
        if self.done:
            raise RuntimeError("step() after the end of the episode")
        action = int(action)
        before = self.info["metrics"]["started_jobs"]
        self.obs, self.last_reward, self.terminated, self.truncated, self.info = self.env.step(action)
        self.actions.append(action)
        self.total += self.last_reward
        self.started_per_step.append(self.info["metrics"]["started_jobs"] - before)
        return self.obs, self.last_reward, self.terminated, self.truncated, self.info


def _decision_steps(agent):
    """observe, decide, alter, rewarded: one decision of ``agent`` on an AgentEnvironment.
    An hdeeprm Agent's own methods, so that an agent file overriding any of them (the
    original's protocol) is honoured; objects that only have ``decide`` (baselines,
    heuristics) get the environment's observation and step, and ``rewarded(reward)`` with the
    number if they have that method."""
    masked = _accepts_mask(agent)

    def decide(observation, mask):
        return agent.decide(observation, mask) if masked else agent.decide(observation)

    # Every Agent's class comes from hdeeprm.rl.agent, so it is imported if agent is one; no
    # import here, which would load torch for torch-free baselines.
    module = sys.modules.get("hdeeprm.rl.agent")
    if module is not None and isinstance(agent, module.Agent):
        return agent.observe, decide, agent.alter, agent.rewarded

    def observe(environment):
        return environment.observation()

    def alter(action, environment):
        environment.step(action)

    def rewarded(environment):
        if hasattr(agent, "rewarded"):
            agent.rewarded(environment.reward())

    return observe, decide, alter, rewarded


def run_episode(env: HeteroEnv, agent, *, seed: int, train: bool = False, optimizer=None,
                options: dict | None = None) -> EpisodeRecord:
    """One episode of ``agent`` on ``env``; with ``train``, the agent's update at the end.
    ``options``: the env's reset options (``{"window_start": k}``: a fixed window).

    Each decision is the original's observe -> decide -> alter -> rewarded (see
    ``_decision_steps``) on an ``AgentEnvironment`` over ``env``, which records what the
    steps did."""
    t0 = time.perf_counter()
    if hasattr(agent, "train"):
        agent.train(train)
    if hasattr(agent, "reset_episode"):
        agent.reset_episode()
    observe, decide, alter, rewarded = _decision_steps(agent)
    environment = AgentEnvironment(env)
    environment.reset(seed=seed, options=options)
    while not environment.done:
        steps = len(environment.actions)
        action = decide(observe(environment), environment.action_mask())
        alter(action, environment)
        if len(environment.actions) == steps:
            raise ConfigError(f"{type(agent).__name__}.alter(action, environment) did not step the environment")
        rewarded(environment)
    kept = getattr(agent, "log_probs", None)
    # Before the update, which may clear them; detached: they carry the policy's gradient.
    log_probs = [float(p.detach()) if hasattr(p, "detach") else float(p) for p in kept] if kept else None
    losses: dict[str, float] = {}
    if train and optimizer is not None:
        losses = dict(agent.update(optimizer))
    probs = getattr(agent, "probs", None)
    result = env.result() if environment.terminated else None
    metrics = headline_metrics(result).as_dict() if result is not None else dict(environment.info["metrics"])
    return EpisodeRecord(seed, environment.total, len(environment.actions), environment.actions,
                         list(probs) if probs is not None else None, losses, metrics, time.perf_counter() - t0,
                         result, environment.started_per_step, log_probs)


class HDeepRMLogs:
    """The original HDeepRM's log files, in an output folder instead of the current one:
    rewards.log (summed reward per episode), makespans.log, losses.log (numbers, one line per
    trained episode), actions.log (one action index per decision), probs.json (first-decision
    probabilities: ``{"probs": [[p_a(ep 1), p_a(ep 2), ...] for each action a]}``). Each
    episode's Batsim outputs go to ``episode_<k>/`` (``episode_outputs``: "all"; "last": only
    episode ``episodes - 1``'s; "none").

    The logs count the lines they wrote (``position``), so that a checkpoint can record how far
    they had got and a resumed run can cut them back to it (``resume``)."""

    LINE_LOGS = ("rewards.log", "makespans.log", "losses.log", "actions.log")
    PROBS = "probs.json"

    def __init__(self, out_dir: str | os.PathLike, nb_actions: int, episode_outputs: str = "all",
                 episodes: int | None = None):
        self.out = Path(out_dir)
        self.out.mkdir(parents=True, exist_ok=True)
        self.nb_actions = nb_actions
        self.episode_outputs, self.episodes = episode_outputs, episodes
        self.probs: list[list[float]] = [[] for _ in range(nb_actions)]
        self.lines = dict.fromkeys(self.LINE_LOGS, 0)

    def _append(self, name: str, lines: list[str]) -> None:
        with open(self.out / name, "a") as f:
            f.writelines(lines)
        self.lines[name] += len(lines)

    def write(self, index: int, record: EpisodeRecord) -> None:
        self._append("rewards.log", [f"{record.reward!r}\n"])
        self._append("makespans.log", [f"{record.metrics.get('makespan', float('nan'))!r}\n"])
        if record.losses:
            self._append("losses.log", [f"{record.losses['loss']!r}\n"])
        self._append("actions.log", [f"{a}\n" for a in record.actions])
        if record.first_probs is not None:
            for a in range(self.nb_actions):
                self.probs[a].append(float(record.first_probs[a]))
            _write_probs(self.out / self.PROBS, self.probs)
        if record.result is not None and (self.episode_outputs == "all" or (
                self.episode_outputs == "last" and index == (self.episodes or 0) - 1)):
            write_outputs(record.result, str(self.out / f"episode_{index}"))

    def position(self) -> dict[str, int]:
        """Lines written to each log, and episodes in probs.json."""
        return {**self.lines, self.PROBS: len(self.probs[0]) if self.probs else 0}

    def resume(self, position: dict[str, int]) -> list[float]:
        """Cut the logs back to ``position`` (lines written after it belong to updates that no
        checkpoint holds); returns the rewards logged up to there."""
        from hdeeprm.common.jsonfile import read_json_object

        for name in self.LINE_LOGS:
            truncate_lines(self.out / name, _position_count(position, name))
            self.lines[name] = position[name]
        kept = _position_count(position, self.PROBS)
        path = self.out / self.PROBS
        if kept:
            probs = read_json_object(path).get("probs")
            if (not isinstance(probs, list) or len(probs) != self.nb_actions
                    or any(not isinstance(p, list) or len(p) < kept for p in probs)):
                raise ConfigError(f"{path}: expected {self.nb_actions} lists of at least {kept} probabilities "
                                  "(what the checkpoint recorded): the file was changed; cannot resume")
            self.probs = [[float(x) for x in p[:kept]] for p in probs]
            _write_probs(path, self.probs)
        elif path.exists():
            path.unlink()
        if not self.lines["rewards.log"]:
            return []
        return [float(line) for line in (self.out / "rewards.log").read_text().splitlines()]


def _position_count(position: dict, name: str) -> int:
    count = position.get(name) if isinstance(position, dict) else None
    if isinstance(count, bool) or not isinstance(count, int) or count < 0:
        raise ConfigError(f"checkpoint: no line count for {name} (written by an older hdeeprm?); cannot resume")
    return count


def _write_probs(path: Path, probs: list[list[float]]) -> None:
    """probs.json, one line per action (an indented dump put every number on a line of its
    own). It is rewritten after every episode, which keeps it in step with the checkpoint
    for a resume, and it grows with the episodes: each row goes through json's C encoder,
    1.7 times faster than the indented dump's pure-Python one."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text('{"probs": [\n' + ",\n".join(json.dumps(row) for row in probs) + "\n]}\n")
    os.replace(tmp, path)


def _write_json_atomic(path: Path, data) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w") as f:
        json.dump(data, f, indent=1)
        f.write("\n")
    os.replace(tmp, path)


# ---------------------------------------------------------------------- experiments


class CheckpointSelector:
    """Keeps ``best.pt``: the checkpoint whose greedy agent has the lowest mean objective on
    the experiment's validation windows, checked every ``validation_every`` episodes (and
    after the last). Each check is a line of ``validation.log``: episodes trained, mean
    objective. Greedy play draws nothing from the agent's generator, so checking does not
    change the training that follows."""

    def __init__(self, config, out: Path):
        self.every = config.validation_every
        self.total = config.episodes
        self.scale = config.reward_scale
        self.path = out / BEST_FILE
        self.log = out / "validation.log"
        self.best = math.inf
        self.lines = 0  # written to validation.log
        if self.every is not None:
            self.env = config.make_env("validation", episode_jobs=config.evaluation_jobs)
            self.windows = config.validation_windows()

    @property
    def enabled(self) -> bool:
        return self.every is not None

    def crossed(self, before: int, after: int) -> bool:
        """Whether training from ``before`` to ``after`` episodes reached a check."""
        if not self.enabled:
            return False
        return after // self.every > before // self.every or (after == self.total and before < after)

    def check(self, agent, optimizer, episodes_done: int) -> float:
        from hdeeprm.rl.agents.common import save_checkpoint

        greedy, training = agent.greedy, agent.training
        agent.greedy = True
        values = [-run_episode(self.env, agent, seed=seed, options=options).reward / self.scale
                  for seed, options in self.windows]
        agent.greedy = greedy
        agent.train(training)
        agent.reset_episode()
        mean = sum(values) / len(values)
        with open(self.log, "a") as f:
            f.write(f"{episodes_done} {mean!r}\n")
        self.lines += 1
        if mean < self.best:
            self.best = mean
            save_checkpoint(self.path, agent, optimizer, {"episode": episodes_done - 1, "validation_objective": mean})
        return mean

    def position(self) -> dict:
        """What a resumed run needs: lines of validation.log, and the best mean so far."""
        return {"lines": self.lines, "best": self.best if math.isfinite(self.best) else None}

    def resume(self, position: dict) -> None:
        """Back to ``position``: later checks are cut from validation.log (and will be made
        again); a best.pt they wrote is rewritten by the same check when it is better."""
        truncate_lines(self.log, _position_count(position, "lines"))
        self.lines = position["lines"]
        best = position.get("best")
        self.best = math.inf if best is None else float(best)


def observation_size(env) -> int:
    """Values in one observation (a job window's matrix counts all its cells)."""
    return int(np.prod(env.observation_space.shape))


def _algorithm_class(name: str):
    from hdeeprm.rl.agents import ALGORITHMS

    return ALGORITHMS[name]


def train(config, out_dir: str | os.PathLike, *, init: str | None = None,
          tensorboard: str | None = None, progress: bool | None = None,
          workers: int | None = None, engine: str = "local", address: str | None = None,
          resume: bool = False) -> dict:
    """Train ``config.algorithm`` for ``config.episodes`` episodes; writes the HDeepRM logs,
    ``model.pt`` (after every update, atomically) and ``experiment.json`` into ``out_dir``.

    Without ``workers`` nor ``config.rollout_batch`` (and on the local engine), the agent plays
    each episode itself and updates after each one. Otherwise episodes are collected in
    batches of ``rollout_batch`` (default: ``workers``) by ``workers`` rollout workers of
    ``engine`` (``local`` processes or ``ray`` actors, see :func:`train_batched`).

    ``out_dir`` must not hold a training run already, unless ``resume``: then the run there
    continues from its last checkpoint, as if it had never stopped (:mod:`hdeeprm.rl.resume`).
    ``init``: a checkpoint whose weights a new run starts from."""
    if resume and init:
        raise ConfigError("--resume continues from the run's own model.pt; --init starts a new run from "
                          "another checkpoint: give one of them")
    if config.vectorised:
        if workers is not None or engine != "local":
            raise ConfigError("vectorised training runs in this process: without --workers or --engine")
        return train_vectorised(config, out_dir, init=init, tensorboard=tensorboard, progress=progress,
                                resume=resume)
    if workers is not None or config.rollout_batch is not None or engine != "local":
        return train_batched(config, out_dir, init=init, tensorboard=tensorboard, progress=progress,
                             workers=workers, engine=engine, address=address, resume=resume)
    import torch

    from hdeeprm.common.seeding import episode_seeds
    from hdeeprm.rl.agents.common import save_checkpoint

    out = Path(out_dir)
    _check_folder(out, config, resume)
    env = config.make_env()
    learner = _learner(config, env, out, init, tensorboard, resume)
    agent, optimizer, writer, logs, selector = (learner.agent, learner.optimizer, learner.writer, learner.logs,
                                                learner.selector)
    bar = Progress(config.episodes, f"training {config.algorithm}", enabled=progress, skipped=learner.done)
    checkpoint = out / CHECKPOINT_FILE
    t0 = time.perf_counter()
    returns = learner.returns
    seeds = episode_seeds(config.seed, config.episodes, stream=0)
    with _learner_threads(torch):
        for k in range(learner.done, config.episodes):
            record = run_episode(env, agent, seed=seeds[k], train=True, optimizer=optimizer)
            logs.write(k, record)
            returns.append(record.reward)
            if writer is not None:
                writer.add_scalar("episode/return", record.reward, k)
                for name, value in record.losses.items():
                    writer.add_scalar(f"loss/{name}", value, k)
            if selector.crossed(k, k + 1):
                selector.check(agent, optimizer, k + 1)
            save_checkpoint(checkpoint, agent, optimizer, {"episode": k, "algorithm": config.algorithm,
                                                           "progress": _progress(logs, selector)})
            bar.update(record)
    if writer is not None:
        writer.close()
    return _summary(checkpoint, selector, returns, t0)


def _check_folder(out: Path, config, resume: bool) -> None:
    """Before anything is built: a run to resume must be this experiment's (a setting added
    since it started counts as its default); a new run needs a folder with no run in it."""
    if resume:
        from dataclasses import MISSING, fields

        defaults = {f.name: f.default if f.default_factory is MISSING else f.default_factory()
                    for f in fields(config) if f.default is not MISSING or f.default_factory is not MISSING}
        check_resumable(out, config.as_dict(), defaults)
    else:
        check_unused(out)


def _progress(logs: HDeepRMLogs, selector: CheckpointSelector) -> dict:
    """How far the logs had got when a checkpoint was written (what resuming cuts back to)."""
    return {"logs": logs.position(), "validation": selector.position()}


@dataclass
class _Learner:
    agent: Any
    optimizer: Any
    writer: Any
    logs: HDeepRMLogs
    selector: CheckpointSelector
    done: int = 0  # episodes already trained (by the run being resumed)
    returns: list = field(default_factory=list)  # their returns


def _learner(config, env, out: Path, init: str | None, tensorboard: str | None, resume: bool = False) -> _Learner:
    """What every training loop starts from: the agent (from ``init``, else pre-trained if
    the experiment asks), its optimiser, the TensorBoard writer (or None), the HDeepRM logs
    and the checkpoint selector. With ``resume``: all of them as the run in ``out`` left them
    at its last checkpoint (logs cut back to it); experiment.json is written otherwise."""
    import torch

    from hdeeprm.rl.agents import build_agent
    from hdeeprm.rl.agents.common import load_checkpoint
    agent = build_agent(_algorithm_class(config.algorithm), config.gamma, config.hidden,
                        env.action_space.n, observation_size(env), seed=config.seed)
    optimizer = torch.optim.Adam(agent.parameters(), lr=config.lr)
    if not resume:
        write_experiment(out, config.as_dict())
    learner = _Learner(agent, optimizer, None, HDeepRMLogs(out, env.action_space.n, config.episode_outputs, config.episodes),
                       CheckpointSelector(config, out))
    if resume:
        extra = resume_point(out, agent, optimizer)
        learner.done = extra["episode"] + 1
        learner.returns = learner.logs.resume(extra["progress"].get("logs"))
        learner.selector.resume(extra["progress"].get("validation"))
    elif init:
        load_checkpoint(init, agent, optimizer)
    else:
        _pretrain(config, agent, optimizer, out)
    if tensorboard:
        from torch.utils.tensorboard import SummaryWriter

        # purge_step: events a stopped run logged after its checkpoint are dropped.
        learner.writer = SummaryWriter(tensorboard, purge_step=learner.done if resume else None)
    return learner


def _learner_generator(config):
    """The learner's own generator (PPO's minibatch order), from stream 3 of the root seed."""
    import torch

    from hdeeprm.common.seeding import episode_seeds

    generator = torch.Generator()
    generator.manual_seed(episode_seeds(config.seed, 1, stream=3)[0])
    return generator


def _pretrain(config, agent, optimizer, out: Path) -> None:
    """Behaviour cloning before training when the experiment asks for it (pretrain.json)."""
    if config.pretrain is None:
        return
    from hdeeprm.rl.agents.imitation import pretrain

    report = pretrain(config, agent, optimizer)
    _write_json_atomic(out / "pretrain.json", report)


def _summary(checkpoint: Path, selector: CheckpointSelector, returns: list, t0: float, **extra) -> dict:
    """What training returns; ``checkpoint`` is the one to evaluate: the validation's best
    when there is a validation, else the last."""
    chosen = selector.path if selector.enabled and selector.path.exists() else checkpoint
    return {"checkpoint": str(chosen), "last_checkpoint": str(checkpoint), "returns": returns,
            "validation_best": selector.best if selector.enabled else None,
            "wall_seconds": time.perf_counter() - t0, **extra}


# ---------------------------------------------------------------------- parallel rollouts
#
# Batched training: each update learns from ``rollout_batch`` episodes played with the same
# weights. A rollout worker (a process, a Ray actor, or the learner's own process for one
# worker) holds an environment and a copy of the agent, receives the weights with each
# episode to play, and sends back what the episode saw and did (observations, masks,
# actions, rewards). The learner then replays those decisions through its own agent, same
# weights and same sampling seed, so that the agent holds exactly what its own update needs
# (log-probabilities with their gradient, values) without simulating again; a replayed
# action that differs from the played one stops the run.
#
# Seeds, all from the root seed: episode k's window from stream 0 (as in sequential
# training), its action sampling from stream 2, the learner's own draws (PPO's minibatch
# order) from stream 3. No seed depends on a worker, so runs with the same seed and
# rollout_batch are identical whatever the number of workers or the engine.


def play_vectorised(envs: list, agent, env_seeds: list[int], sampling_seeds: list[int]) -> list[dict]:
    """Play one episode in each of ``envs`` in lockstep, the agent deciding for all of them
    in one batched forward pass per step (PPO agents: ``act_batch``). Episode i samples from
    its own generator seeded ``sampling_seeds[i]``, so its actions do not depend on the
    other episodes. Returns, per episode, what PPO learns from and what the logs show."""
    import torch

    generators = [torch.Generator().manual_seed(int(seed)) for seed in sampling_seeds]
    episodes = [{"observations": [], "masks": [], "actions": [], "log_probs": [], "values": [], "rewards": [],
                 "first_probs": None, "t0": time.perf_counter()} for _ in envs]
    current = []
    for env, seed in zip(envs, env_seeds):
        obs, info = env.reset(seed=int(seed))
        current.append((obs, info["action_mask"]))
    active = list(range(len(envs)))
    while active:
        observations = np.stack([np.asarray(current[i][0], dtype=np.float32).reshape(-1) for i in active])
        masks = np.stack([current[i][1] for i in active])
        actions, log_probs, values, probs = agent.act_batch(observations, masks, [generators[i] for i in active])
        still = []
        for row, i in enumerate(active):
            e = episodes[i]
            if e["first_probs"] is None:
                e["first_probs"] = probs[row].tolist()
            e["observations"].append(observations[row])
            e["masks"].append(masks[row])
            e["actions"].append(actions[row])
            e["log_probs"].append(float(log_probs[row]))
            e["values"].append(float(values[row]))
            obs, reward, terminated, truncated, info = envs[i].step(actions[row])
            e["rewards"].append(float(reward))
            if terminated or truncated:
                result = envs[i].result() if terminated else None
                e["metrics"] = headline_metrics(result).as_dict() if result is not None else dict(info["metrics"])
                e["result"] = result
                e["truncated"] = truncated
            else:
                current[i] = (obs, info["action_mask"])
                still.append(i)
        active = still
    return episodes


def train_vectorised(config, out_dir: str | os.PathLike, *, init: str | None = None,
                     tensorboard: str | None = None, progress: bool | None = None, resume: bool = False) -> dict:
    """PPO with ``rollout_batch`` environments in this process and batched inference: each
    update plays that many episodes in lockstep (:func:`play_vectorised`), then runs PPO's
    epochs over all their decisions. Same logs, checkpoints and resuming as :func:`train`."""
    import dataclasses

    import torch

    from hdeeprm.rl.agents.ppo import PPOAgent

    if not issubclass(_algorithm_class(config.algorithm), PPOAgent):
        raise ConfigError(f"vectorised: the {config.algorithm} agent has no batched inference; use ppo or kernel_ppo")
    out = Path(out_dir)
    config = dataclasses.replace(config, rollout_batch=config.rollout_batch or 8)
    batch = config.rollout_batch
    _check_folder(out, config, resume)
    envs = [config.make_env() for _ in range(batch)]
    learner = _learner(config, envs[0], out, init, tensorboard, resume)
    if not resume:  # a resumed run has the generator state of its checkpoint
        learner.agent.generator = _learner_generator(config)  # PPO's minibatch order
    bar = Progress(config.episodes, f"training {config.algorithm} ({batch} environments, batched)", enabled=progress,
                   skipped=learner.done)
    checkpoint = out / CHECKPOINT_FILE
    t0 = time.perf_counter()
    with _learner_threads(torch):
        _train_vectorised_loop(config, learner, envs, batch, bar, checkpoint)
    for e in envs:
        e.close()
    if learner.writer is not None:
        learner.writer.close()
    return _summary(checkpoint, learner.selector, learner.returns, t0, rollout_batch=batch)


def _train_vectorised_loop(config, learner: _Learner, envs, batch, bar, checkpoint) -> None:
    from hdeeprm.common.seeding import episode_seeds
    from hdeeprm.rl.agents.common import save_checkpoint
    from hdeeprm.rl.agents.ppo import concat_episodes

    agent, optimizer, writer, logs, selector = (learner.agent, learner.optimizer, learner.writer, learner.logs,
                                                learner.selector)
    env_seeds = episode_seeds(config.seed, config.episodes, stream=0)
    sampling_seeds = episode_seeds(config.seed, config.episodes, stream=2)
    for start in range(learner.done, config.episodes, batch):
        stop = min(start + batch, config.episodes)
        agent.train(True)
        played = play_vectorised(envs[:stop - start], agent, env_seeds[start:stop], sampling_seeds[start:stop])
        learned = [agent.episode_from(e["observations"], e["masks"], e["actions"], e["log_probs"], e["values"],
                                      e["rewards"]) for e in played]
        losses = agent.optimise(concat_episodes(learned), optimizer)
        for k, e in zip(range(start, stop), played):
            record = EpisodeRecord(env_seeds[k], sum(e["rewards"]), len(e["actions"]), e["actions"], e["first_probs"],
                                   losses if k == stop - 1 else {}, e["metrics"], time.perf_counter() - e["t0"],
                                   e["result"])
            logs.write(k, record)
            learner.returns.append(record.reward)
            if writer is not None:
                writer.add_scalar("episode/return", record.reward, k)
            bar.update(record)
        if writer is not None:
            for name, value in losses.items():
                writer.add_scalar(f"loss/{name}", value, stop - 1)
        if selector.crossed(start, stop):
            selector.check(agent, optimizer, stop)
        save_checkpoint(checkpoint, agent, optimizer, {"episode": stop - 1, "algorithm": config.algorithm,
                                                       "rollout_batch": batch, "progress": _progress(logs, selector)})


@dataclass(frozen=True)
class RolloutTask:
    """One episode to play: the experiment, the agent's weights (numpy arrays), its seeds."""

    config: Any
    weights: dict
    episode: int
    env_seed: int
    sampling_seed: int


@dataclass
class Trajectory:
    """What a rollout worker sends back: one row per decision, and the episode's outcome."""

    episode: int
    env_seed: int
    sampling_seed: int
    observations: np.ndarray  # (T, *observation shape) float32
    masks: np.ndarray  # (T, A) bool
    actions: list[int]
    rewards: list[float]
    reward: float
    metrics: dict
    wall_seconds: float
    result: Any = field(default=None, repr=False)


_ROLLOUT_WORKERS: dict[str, tuple] = {}  # per process: experiment (as JSON) -> (env, agent)


def _rollout_worker(config):
    """This process's environment and agent for ``config``, built once and reused: an
    episode depends only on the weights and seeds it is given."""
    key = json.dumps(config.as_dict(), sort_keys=True)
    if key not in _ROLLOUT_WORKERS:
        from hdeeprm.rl.agents import build_agent

        _ROLLOUT_WORKERS.clear()  # one experiment at a time: never more than one env kept

        env = config.make_env()
        agent = build_agent(_algorithm_class(config.algorithm), config.gamma, config.hidden,
                            env.action_space.n, observation_size(env), seed=config.seed)
        _ROLLOUT_WORKERS[key] = (env, agent)
    return _ROLLOUT_WORKERS[key]


def collect_rollout(task: RolloutTask) -> Trajectory:
    """Play one training episode (in a rollout worker): sample actions, record the decisions."""
    import torch

    t0 = time.perf_counter()
    env, agent = _rollout_worker(task.config)
    agent.load_state_dict({name: torch.tensor(value) for name, value in task.weights.items()})
    agent.set_seed(task.sampling_seed)
    agent.reset_episode()
    agent.train(True)
    observations, masks, actions, rewards = [], [], [], []
    total = 0.0
    with torch.no_grad():
        obs, info = env.reset(seed=task.env_seed)
        done = terminated = False
        while not done:
            mask = info["action_mask"]
            action = int(agent.decide(obs, mask))
            observations.append(obs)
            masks.append(mask)
            actions.append(action)
            obs, reward, terminated, truncated, info = env.step(action)
            rewards.append(float(reward))
            total += reward
            done = terminated or truncated
    agent.reset_episode()
    result = env.result() if terminated else None
    metrics = headline_metrics(result).as_dict() if result is not None else dict(info["metrics"])
    return Trajectory(task.episode, task.env_seed, task.sampling_seed,
                      np.array(observations, dtype=np.float32).reshape((-1,) + env.observation_space.shape),
                      np.array(masks, dtype=bool).reshape(len(actions), -1), actions, rewards, total,
                      metrics, time.perf_counter() - t0, result)


def replay(agent, trajectory: Trajectory) -> None:
    """Take the trajectory's decisions again with ``agent`` (the weights that played it) and
    hand it the rewards, as if it had played the episode itself."""
    agent.reset_episode()
    agent.set_seed(trajectory.sampling_seed)
    # Copies: the arrays Ray hands back are read-only, which torch warns about.
    observations, masks = np.array(trajectory.observations), np.array(trajectory.masks)
    for t, (obs, mask, action, reward) in enumerate(zip(observations, masks,
                                                        trajectory.actions, trajectory.rewards)):
        again = int(agent.decide(obs, mask))
        if again != action:
            raise RuntimeError(f"episode {trajectory.episode}, decision {t}: the learner replays action {again} "
                               f"where the rollout worker took {action} (different weights or numerics)")
        agent.rewarded(reward)


def learn_from_batch(agent, optimizer, trajectories: list[Trajectory], generator) -> tuple[dict, list]:
    """One update on a batch of episodes played with the agent's current weights: PPO runs its
    epochs of minibatches over all their decisions; the other algorithms take one step on
    the mean of the episodes' losses. Returns the loss parts and each episode's
    first-decision probabilities. ``generator``: the learner's own (minibatch order)."""
    from hdeeprm.rl.agents.ppo import PPOAgent, concat_episodes

    first_probs = []
    agent.train(True)
    if isinstance(agent, PPOAgent):
        episodes = []
        for trajectory in trajectories:
            replay(agent, trajectory)
            first_probs.append(list(agent.probs) or None)
            if agent.actions:
                episodes.append(agent.episode())
        agent.reset_episode()
        agent.generator = generator
        return (agent.optimise(concat_episodes(episodes), optimizer) if episodes else {}), first_probs
    optimizer.zero_grad()
    total, learned = 0.0, 0
    for trajectory in trajectories:
        replay(agent, trajectory)
        first_probs.append(list(agent.probs) or None)
        if agent.nb_decisions():
            loss = agent.loss()
            if loss.requires_grad:
                (loss / len(trajectories)).backward()  # gradients add up: the mean loss's gradient
                total += float(loss.detach())
                learned += 1
        agent.reset_episode()
    agent.generator = generator
    if not learned:
        return {}, first_probs
    optimizer.step()
    return {"loss": total / learned}, first_probs


@contextlib.contextmanager
def _learner_threads(torch):
    """Training computes with one torch thread (unless OMP_NUM_THREADS says otherwise): the
    networks are small, so threads mostly wait on each other at every small operation (the
    quick-start experiment ran 7x slower with torch's default threads on 2 cores), and with
    rollout workers they would also fight the workers for the cores. One thread also keeps
    the floating point the same whatever the machine's core count. Restored afterwards."""
    before = torch.get_num_threads()
    if "OMP_NUM_THREADS" not in os.environ:
        torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def train_batched(config, out_dir: str | os.PathLike, *, init: str | None = None,
                  tensorboard: str | None = None, progress: bool | None = None,
                  workers: int | None = None, engine: str = "local", address: str | None = None,
                  resume: bool = False) -> dict:
    """Training with parallel rollouts (see above): ``config.episodes`` episodes in updates of
    ``rollout_batch`` episodes (default: the number of workers; written to experiment.json,
    and taken from there when resuming). The logs are those of :func:`train`, except that
    losses.log has one line per update."""
    import dataclasses

    import torch

    from hdeeprm.common.parallel import make_engine
    from hdeeprm.common.seeding import episode_seeds
    from hdeeprm.rl.agents.common import save_checkpoint

    out = Path(out_dir)
    if resume and config.rollout_batch is None:  # the batch the run was started with, not today's workers
        config = dataclasses.replace(config, rollout_batch=(saved_experiment(out) or {}).get("rollout_batch"))
    if config.rollout_batch is not None:
        _check_folder(out, config, resume)
    elif not resume:
        check_unused(out)
    env = config.make_env()  # the learner's: sizes, and input errors before any worker starts
    with make_engine(engine, workers, address) as pool, _learner_threads(torch):
        if config.rollout_batch is None:
            config = dataclasses.replace(config, rollout_batch=pool.workers)
            if resume:
                _check_folder(out, config, resume)
        learner = _learner(config, env, out, init, tensorboard, resume)
        agent, optimizer, writer, logs, selector = (learner.agent, learner.optimizer, learner.writer, learner.logs,
                                                    learner.selector)
        if not resume:  # a resumed run has the generator state of its checkpoint
            agent.generator = _learner_generator(config)
        generator = agent.generator
        bar = Progress(config.episodes, f"training {config.algorithm} ({pool.describe()})", enabled=progress,
                       skipped=learner.done)
        checkpoint = out / CHECKPOINT_FILE
        env_seeds = episode_seeds(config.seed, config.episodes, stream=0)
        sampling_seeds = episode_seeds(config.seed, config.episodes, stream=2)
        t0 = time.perf_counter()
        for start in range(learner.done, config.episodes, config.rollout_batch):
            weights = {name: value.detach().cpu().numpy().copy() for name, value in agent.state_dict().items()}
            tasks = [RolloutTask(config, weights, k, env_seeds[k], sampling_seeds[k])
                     for k in range(start, min(start + config.rollout_batch, config.episodes))]
            trajectories = pool.map(collect_rollout, tasks)
            losses, first_probs = learn_from_batch(agent, optimizer, trajectories, generator)
            for i, (trajectory, probs) in enumerate(zip(trajectories, first_probs)):
                last = i == len(trajectories) - 1
                record = EpisodeRecord(trajectory.env_seed, trajectory.reward, len(trajectory.actions),
                                       trajectory.actions, probs, losses if last else {}, trajectory.metrics,
                                       trajectory.wall_seconds, trajectory.result)
                logs.write(trajectory.episode, record)
                learner.returns.append(record.reward)
                if writer is not None:
                    writer.add_scalar("episode/return", record.reward, trajectory.episode)
                bar.update(record)
            if writer is not None:
                for name, value in losses.items():
                    writer.add_scalar(f"loss/{name}", value, tasks[-1].episode)
            if selector.crossed(start, tasks[-1].episode + 1):
                selector.check(agent, optimizer, tasks[-1].episode + 1)
            save_checkpoint(checkpoint, agent, optimizer,
                            {"episode": tasks[-1].episode, "algorithm": config.algorithm,
                             "rollout_batch": config.rollout_batch, "progress": _progress(logs, selector)})
        if writer is not None:
            writer.close()
        return _summary(checkpoint, selector, learner.returns, t0, rollout_batch=config.rollout_batch,
                        workers=pool.workers)
