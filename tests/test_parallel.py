"""hdeeprm.common.parallel (the local and Ray engines) and training with parallel rollout workers."""

from __future__ import annotations

import dataclasses
import json
import math
import os
from importlib import resources

import numpy as np
import pytest
import torch

from hdeeprm.common.errors import ConfigError
from hdeeprm.common.parallel import LocalEngine, TaskError, make_engine
from hdeeprm.common.seeding import episode_seeds
from hdeeprm.rl.agents import ALGORITHMS, build_agent
from hdeeprm.rl.experiment import ExperimentConfig
from hdeeprm.rl.train import RolloutTask, collect_rollout, learn_from_batch, replay, run_episode, train

# Builtins as tasks: workers import them by name, whatever sys.path the test runner set up.
# math.sqrt(-1) raises ValueError; os._exit kills the worker process running it.


def test_inline_engine_returns_values_and_errors_without_stopping():
    engine = LocalEngine(1)
    results = sorted(engine.run(math.sqrt, [4.0, -1.0, 9.0]), key=lambda r: r.index)
    assert [r.ok for r in results] == [True, False, True]
    assert results[0].value == 2.0 and results[2].value == 3.0
    assert results[1].error.startswith("ValueError") and "Traceback" in results[1].traceback
    assert engine.map(math.sqrt, [16.0, 25.0]) == [4.0, 5.0]
    with pytest.raises(TaskError, match="task 1 failed: ValueError"):
        engine.map(math.sqrt, [1.0, -1.0])


def test_process_pool_keeps_item_order_survives_errors_and_dead_workers():
    with LocalEngine(2) as engine:
        assert engine.map(math.sqrt, [float(i * i) for i in range(7)]) == [float(i) for i in range(7)]
        results = {r.index: r for r in engine.run(math.sqrt, [1.0, -4.0, 9.0])}
        assert results[0].value == 1.0 and results[2].value == 3.0 and results[1].error.startswith("ValueError")
        # A worker that dies fails its task (and whatever ran beside it); the pool is replaced.
        dead = {r.index: r for r in engine.run(os._exit, [3])}
        assert not dead[0].ok and "died" in dead[0].error
        assert engine.map(math.sqrt, [36.0, 49.0]) == [6.0, 7.0]
        assert engine.in_flight == 0


def test_make_engine_checks_its_arguments():
    assert make_engine("local").workers == 1
    assert make_engine("local", 3).workers == 3
    with pytest.raises(ConfigError, match="engine 'spark'"):
        make_engine("spark")
    with pytest.raises(ConfigError, match="--address is for --engine ray"):
        make_engine("local", 2, "auto")
    with pytest.raises(ConfigError, match="workers 0"):
        make_engine("local", 0)


# ---------------------------------------------------------------------- parallel rollouts


def tiny(algorithm: str, **fields) -> ExperimentConfig:
    """A few short episodes on the quick-start platform, with a small network."""
    options = dict(workload=str(resources.files("hdeeprm") / "data" / "traces" / "kth-sp2-head.swf.gz"),
                   nb_jobs=200, episode_jobs=30, observation="minimal", hidden=16, episodes=4, seed=3,
                   algorithm=algorithm)
    return ExperimentConfig(**{**options, **fields})


def weights(path) -> dict:
    return torch.load(path, weights_only=True)["model"]


@pytest.mark.parametrize("algorithm", ["ppo", "actor_critic"])
def test_training_is_identical_with_one_and_two_rollout_workers(tmp_path, algorithm):
    config = tiny(algorithm, rollout_batch=2)
    one = train(config, tmp_path / "one", workers=1, progress=False)
    two = train(config, tmp_path / "two", workers=2, progress=False)
    assert one["returns"] == two["returns"] and len(one["returns"]) == 4
    a, b = weights(one["checkpoint"]), weights(two["checkpoint"])
    assert all(torch.equal(a[k], b[k]) for k in a)
    for name in ("rewards.log", "losses.log", "actions.log", "probs.json"):
        assert (tmp_path / "one" / name).read_text() == (tmp_path / "two" / name).read_text()
    losses = (tmp_path / "one" / "losses.log").read_text().split()
    assert len(losses) == 2 and all(math.isfinite(float(x)) for x in losses)  # one line per update
    assert json.loads((tmp_path / "one" / "experiment.json").read_text())["rollout_batch"] == 2
    assert (tmp_path / "two" / "episode_3" / "out_jobs.csv").is_file()
    # the learner's weights moved, and a different seed gives a different run
    env = config.make_env()
    initial = build_agent(ALGORITHMS[algorithm], config.gamma, config.hidden, env.action_space.n,
                          env.observation_space.shape[0], seed=config.seed).state_dict()
    assert not all(torch.equal(a[k], initial[k]) for k in a)
    other = train(dataclasses.replace(config, seed=4), tmp_path / "other", workers=1, progress=False)
    assert other["returns"] != one["returns"]


def test_rollout_batch_defaults_to_the_number_of_workers(tmp_path):
    config = tiny("reinforce", episodes=3)
    summary = train(config, tmp_path / "run", workers=1, progress=False)
    assert summary["rollout_batch"] == 1 and len(summary["returns"]) == 3
    assert len((tmp_path / "run" / "losses.log").read_text().split()) == 3


@pytest.mark.parametrize("algorithm", ["reinforce", "actor_critic"])
def test_a_batch_of_one_episode_is_the_agents_own_update(algorithm):
    """Collect + replay + learn_from_batch on one episode moves the weights exactly as the
    agent playing that episode itself and calling its own update()."""
    config = tiny(algorithm)
    env = config.make_env()
    sizes = (env.action_space.n, env.observation_space.shape[0])
    own = build_agent(ALGORITHMS[algorithm], config.gamma, config.hidden, *sizes, seed=config.seed)
    batched = build_agent(ALGORITHMS[algorithm], config.gamma, config.hidden, *sizes, seed=config.seed)
    env_seed, sampling_seed = 11, 12
    own.set_seed(sampling_seed)
    own_optimizer = torch.optim.Adam(own.parameters(), lr=1e-2)
    record = run_episode(env, own, seed=env_seed, train=True, optimizer=own_optimizer)
    task = RolloutTask(config, {k: v.numpy().copy() for k, v in batched.state_dict().items()}, 0, env_seed,
                       sampling_seed)
    trajectory = collect_rollout(task)
    assert trajectory.actions == record.actions and trajectory.reward == record.reward
    optimizer = torch.optim.Adam(batched.parameters(), lr=1e-2)
    losses, probs = learn_from_batch(batched, optimizer, [trajectory], torch.Generator())
    assert losses == record.losses and probs == [record.first_probs]
    a, b = own.state_dict(), batched.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_replay_refuses_a_trajectory_the_weights_did_not_play():
    config = tiny("ppo")
    env = config.make_env()
    agent = build_agent(ALGORITHMS["ppo"], config.gamma, config.hidden, env.action_space.n,
                        env.observation_space.shape[0], seed=config.seed)
    task = RolloutTask(config, {k: v.numpy().copy() for k, v in agent.state_dict().items()}, 0,
                       *episode_seeds(0, 2, stream=0))
    trajectory = collect_rollout(task)
    replay(agent, trajectory)  # the same weights and seed: accepted
    assert len(agent.actions) == len(trajectory.actions)
    masks = trajectory.masks
    t = int(np.flatnonzero(masks.sum(axis=1) > 1)[0])  # a decision with a choice
    trajectory.actions[t] = int(np.flatnonzero(masks[t] & (np.arange(masks.shape[1]) != trajectory.actions[t]))[0])
    with pytest.raises(RuntimeError, match=f"decision {t}: the learner replays"):
        replay(agent, trajectory)
