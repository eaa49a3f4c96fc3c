"""HeteroEnv: Gymnasium contract, actions and masks, observations, rewards, episodes."""

from __future__ import annotations

import json
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env
from test_policies import BANDWIDTH_PLATFORM, hand_platform, hand_workload

import hdeeprm
from hdeeprm.common.errors import ConfigError
from hdeeprm.inputs.platform import bundled_platform
from hdeeprm.rl.env import EnvConfig, HeteroEnv, parse_action_set
from hdeeprm.simulation.metrics import headline_metrics

TRACE = Path(__file__).parent / "data" / "traces" / "gaia-2014-head.swf.gz"


def gaia_env(**config):
    config.setdefault("nb_jobs", 200)
    return HeteroEnv("gaia", TRACE, **config)


def run_episode(env, seed=0, choose=None):
    """Random masked actions (from the env's own generator) to the end; the rewards."""
    obs, info = env.reset(seed=seed)
    rewards, observations = [], [obs]
    done = False
    while not done:
        mask = env.action_masks()
        action = choose(env) if choose else int(env.np_random.choice(np.flatnonzero(mask)))
        obs, reward, terminated, truncated, info = env.step(action)
        assert env.observation_space.contains(obs)
        rewards.append(reward)
        observations.append(obs)
        done = terminated or truncated
    return rewards, observations, info


@pytest.mark.parametrize("observation", ["normal", "small", "minimal"])
def test_gymnasium_env_checker_passes(observation):
    check_env(gaia_env(observation=observation, nb_jobs=60), skip_render_check=True)


def test_registered_with_gymnasium():
    env = gym.make("hdeeprm/HeteroEnv-v0", platform="gaia", workload=str(TRACE), nb_jobs=50,
                   observation="small")
    obs, info = env.reset(seed=3)
    assert obs.shape == env.observation_space.shape
    assert env.unwrapped.action_space.n == 37


@pytest.mark.parametrize("observation, size", [
    ("normal", 153 + 342 + 3 * 2280 + 21), ("small", 153 + 342 + 21), ("minimal", 21)])
def test_observation_sizes_follow_the_platform(observation, size):
    env = gaia_env(observation=observation)
    assert env.observation_space.shape == (size,)
    rewards, observations, info = run_episode(env)
    assert info["completed_jobs"] == 200
    stacked = np.array(observations)
    assert stacked.dtype == np.float32 and (stacked >= 0).all() and (stacked <= 1).all()
    assert stacked[:, -21:-1].max() > 0  # the queue statistics are populated


def test_normal_observation_layout_and_remaining_work_moves():
    # One node, processor 0 (cores 0-1, 10 GF, 10 GB/s), processor 1 (cores 2-3, 8 GF).
    platform = hand_platform(BANDWIDTH_PLATFORM, [1000.0])
    # Job 0 runs 100 s on one core (requested 200 s); jobs 1 and 2 arrive at t=50 and t=100.
    workload = hand_workload([
        dict(subtime=0, res=1, gflop=2000, req_time=200, req_ops=1800e9, mem=250, mem_bw=4),
        dict(subtime=50, res=1, gflop=10, req_time=10, mem=100, mem_bw=4),
        dict(subtime=150, res=1, gflop=10, req_time=10, mem=100, mem_bw=4),
    ])
    env = HeteroEnv(platform, workload, actions=(("first", "high_gflops"),), void=False)
    # node, proc 0, 2 x 3 core values, proc 1, 2 x 3 core values, 21 queue values.
    assert env.observation_space.shape == (1 + 1 + 6 + 1 + 6 + 21,)
    obs, _ = env.reset(seed=0)
    assert obs[0] == 1.0 and obs[1] == 1.0  # all memory and bandwidth free
    assert obs[2:5].tolist() == pytest.approx([0.0, 0.05, 0.0])  # core 0 idle in P3
    obs, *_ = env.step(0)  # job 0 on core 0 (fastest); next decision at t=50
    assert obs[0] == pytest.approx(0.75)  # 250 of 1000 MB held
    assert obs[1] == pytest.approx(0.6)  # 4 of 10 GB/s used
    speed, power, remaining = obs[2:5]
    assert (speed, power) == (1.0, 1.0)
    # Requested work: 1800 GFLOP (200 s at 9 GF); done at t=50: 50 s x 10 GF.
    assert remaining == pytest.approx(1 - 500 / 1800, rel=1e-6)
    assert obs[5:8].tolist() == pytest.approx([0.0, 0.25, 0.0])  # core 1 idle beside a busy one
    obs, *_ = env.step(0)  # job 1 on core 1: 4 + 4 = 8 <= 10 GB/s, no throttling
    assert obs[2 + 2] == pytest.approx(1 - 1500 / 1800, rel=1e-6)  # at t=150, 1500 GFLOP done


def test_rewards_sum_to_the_objective():
    env_args = dict(nb_jobs=150, observation="minimal")
    results = {}
    for objective in ("makespan", "energy_consumption", "edp", "avg_job_completion",
                      "avg_job_slowdown", "avg_utilization"):
        env = gaia_env(objective=objective, **env_args)
        rewards, _, info = run_episode(env, seed=4)
        results[objective] = (sum(rewards), env.result(), env)
    # The same seed gives the same schedule, whatever the objective.
    schedule = results["makespan"][1]
    for _, result, _ in results.values():
        assert np.array_equal(result.start, schedule.start, equal_nan=True)
    w, start, finish = schedule.workload, schedule.start, schedule.finish
    end = np.nanmax(finish)
    energy = results["energy_consumption"][2].engine.energy_so_far()
    assert energy == pytest.approx(headline_metrics(schedule).consumed_joules, rel=1e-9)
    assert results["makespan"][0] == pytest.approx(-end)
    assert results["energy_consumption"][0] == pytest.approx(-energy, rel=1e-9)
    assert results["edp"][0] == pytest.approx(-energy * end, rel=1e-9)
    turnaround = finish - w.subtime
    assert results["avg_job_completion"][0] == pytest.approx(-turnaround.sum(), rel=1e-9)
    requested = np.maximum(w.req_time, 1.0)
    assert results["avg_job_slowdown"][0] == pytest.approx(-(turnaround / requested).sum(), rel=1e-9)
    core_seconds = (w.res * (finish - start)).sum()
    assert results["avg_utilization"][0] == pytest.approx(core_seconds / (2280 * end), rel=1e-9)


def test_masks_tell_which_actions_start_a_job():
    # 4 cores. Job 0 (3 cores) runs from t=0 to 100; at t=1 job 1 (2 cores, 10 s requested)
    # and job 2 (1 core, 50 s requested) arrive, with one core free.
    platform = hand_platform([(0, 4, 1.0, 100.0, 1.0)], [1000.0])
    workload = hand_workload([dict(res=3, delay=100), dict(subtime=1, res=2, delay=10, req_time=10),
                              dict(subtime=1, res=1, delay=10, req_time=50)])
    env = HeteroEnv(platform, workload, observation="minimal")
    names = env.config.action_names()
    env.reset(seed=0)
    obs, reward, terminated, truncated, info = env.step(names.index("first:high_gflops"))
    assert info["time"] == 1.0 and info["queue_length"] == 2
    mask = info["action_mask"]
    assert np.array_equal(mask, env.action_masks())
    allowed = {name.split(":")[0] for name, ok in zip(names, mask) if ok and name != "void"}
    # first, shortest, low_mem and low_mem_bw (ties: lowest id) rank job 1 first: it does not
    # fit. smallest ranks job 2 first; random may draw job 2. Void is always allowed.
    assert allowed == {"random", "smallest"} and mask[-1]
    # A masked-out action starts nothing: the next decision is at job 0's end.
    obs, reward, terminated, truncated, info = env.step(names.index("first:high_gflops"))
    assert info["time"] == 100.0 and info["queue_length"] == 2 and info["action_mask"].all()
    # A permitted one starts job 2 at once: the next decision comes when it ends, at t=11.
    env.reset(seed=0)
    env.step(names.index("first:high_gflops"))
    obs, reward, terminated, truncated, info = env.step(names.index("smallest:low_power"))
    assert (info["time"], info["queue_length"], info["completed_jobs"]) == (11.0, 1, 1)


def test_void_never_stalls_the_run():
    platform = hand_platform([(0, 2, 1.0, 100.0, 1.0)], [1000.0])
    env = HeteroEnv(platform, hand_workload([dict(res=1, delay=10), dict(res=1, delay=10)]),
                    observation="minimal", actions=(("first", "first_fit"),), void=True)
    env.reset(seed=0)
    obs, reward, terminated, truncated, info = env.step(1)  # void with nothing running
    assert info["void_overridden"] and terminated and info["completed_jobs"] == 2


def test_windows_of_a_long_trace_are_drawn_from_the_seed():
    env = gaia_env(nb_jobs=None, episode_jobs=40, observation="minimal")
    starts = []
    for seed in (1, 1, 2):
        obs, info = env.reset(seed=seed)
        starts.append(info["episode_start"])
        assert env.engine.jobs.subtime[0] == 0 and len(env.engine.jobs) == 40
    assert starts[0] == starts[1] != starts[2]
    rewards, _, info = run_episode(env, seed=7)
    assert info["completed_jobs"] == 40


def test_same_seed_same_episode():
    a = run_episode(gaia_env(objective="edp"), seed=11)
    b = run_episode(gaia_env(objective="edp"), seed=11)
    assert a[0] == b[0]
    assert all(np.array_equal(x, y) for x, y in zip(a[1], b[1]))


def test_truncation_by_steps_and_time():
    env = gaia_env(max_steps=5, observation="minimal")
    rewards, _, info = run_episode(env)
    assert len(rewards) == 5
    env = gaia_env(max_sim_time=100_000.0, observation="minimal")
    rewards, _, info = run_episode(env)
    assert info["time"] >= 100_000.0 and info["completed_jobs"] < 200


def test_action_subsets_in_the_original_syntax(tmp_path):
    options = json.loads((Path(hdeeprm.__file__).parent / "data" / "thesis_options" / "learning.json").read_text())
    pairs, void = parse_action_set(options["pybatsim"]["env"]["actions"])
    assert pairs == (("shortest", "high_gflops"), ("shortest", "high_mem_bw"), ("shortest", "low_power"),
                     ("first", "high_gflops"), ("first", "high_mem_bw"))
    assert void is False
    options["platform_file_path"] = str(bundled_platform("gaia"))
    options["workload_file_path"] = str(TRACE)
    options["nb_jobs"] = 30
    path = tmp_path / "options.json"
    path.write_text(json.dumps(options))
    env = HeteroEnv.from_options(path)
    assert env.action_space.n == 5 and env.config.objective == "makespan"
    assert env.observation_space.shape == (21,)
    rewards, _, info = run_episode(env)
    assert info["completed_jobs"] == 30
    with pytest.raises(ConfigError, match=r"selection\[0\]\.smallest: unknown core selection key ''"):
        parse_action_set({"selection": [{"smallest": [""]}], "void": False})
    with pytest.raises(ConfigError, match="unknown key 'objectiv'"):
        EnvConfig.from_options({"objectiv": "makespan"})
    with pytest.raises(ConfigError, match="queue_sensitivity"):
        EnvConfig(queue_sensitivity=0)


def test_vector_env_and_backends():
    envs = gym.vector.SyncVectorEnv([lambda: gaia_env(nb_jobs=40, observation="small")] * 2)
    obs, info = envs.reset(seed=[1, 2])
    for _ in range(10):
        obs, rewards, terminated, truncated, info = envs.step(np.array([7, 13]))
    assert obs.shape == (2, 153 + 342 + 21)
    with pytest.raises(ConfigError, match="unknown backend"):
        gaia_env(backend="simgrid")


def test_maskable_ppo_trains_through_action_masks():
    sb3_contrib = pytest.importorskip("sb3_contrib")
    import torch

    torch.manual_seed(0)
    env = HeteroEnv("learning", TRACE, nb_jobs=400, episode_jobs=50, observation="small",
                    objective="avg_job_slowdown")
    model = sb3_contrib.MaskablePPO("MlpPolicy", env, n_steps=256, batch_size=64, n_epochs=2,
                                    seed=0, device="cpu")
    model.learn(total_timesteps=2048)
    obs, _ = env.reset(seed=123)
    action, _ = model.predict(obs, action_masks=env.action_masks(), deterministic=True)
    assert env.action_masks()[int(action)]
