"""The shutdown policy under an agent (EnvConfig.shutdown, issue 21): HeteroEnv switches idle
machines off and wakes them on demand as ShutdownScheduler does, while the agent keeps its
decisions (which jobs, which cores, with dvfs which p-state).

The platform (tests/data/platforms/sleep_4hosts.xml): four hosts, p-states 0 and 1 compute (100
and 50 Mflop/s; 100:200 and 90:150 W idle:full), 2 sleeps (10 W), 3 switches off (10 s at 50 W),
4 switches on (5 s at 150 W). Hand numbers below come from these."""

from __future__ import annotations

import json

import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env
from test_policies import hand_workload
from test_power_actions import PLATFORM, assert_one_job_per_machine, random_jobs

from hdeeprm.common.errors import ConfigError
from hdeeprm.inputs.platform import load_platform
from hdeeprm.rl.env import POWER_FEATURES, HeteroEnv
from hdeeprm.rl.experiment import ExperimentConfig
from hdeeprm.simulation.engine import Engine
from hdeeprm.simulation.policies import PolicyConfig, run_policy


def env_for(jobs, **fields):
    fields = {"shutdown": 0.0, "objective": "energy_waiting", "actions": (("first", "first_fit"),),
              "void": False, "observation": "small", **fields}
    return HeteroEnv(PLATFORM, hand_workload(jobs), **fields)


def play(env, action=0, seed=0):
    _, info = env.reset(seed=seed)
    done, steps, total = False, 0, 0.0
    while not done:
        _, reward, terminated, truncated, info = env.step(action)
        total += reward
        done = terminated or truncated
        steps += 1
        assert steps < 5000
    assert terminated
    return env.result(), info, total


@pytest.mark.parametrize("seed", [0, 1, 2, 3, 4, 5])
def test_an_agent_that_always_plays_one_pair_is_the_shutdown_policy(seed):
    """The environment and the classic ShutdownScheduler give the same schedule, allocations,
    p-state changes and energy when the agent always plays the policy's pair."""
    jobs = random_jobs(seed)
    backfill = ("easy", None, "conservative")[seed % 3]
    core_key = ("first_fit", "low_power")[seed % 2]
    idle = (0.0, 15.0)[seed // 3]
    env = env_for(jobs, actions=(("first", core_key),), backfill=backfill, shutdown=idle)
    result, info, _ = play(env)
    engine = Engine(load_platform(PLATFORM), hand_workload(jobs))
    expected = run_policy(engine, PolicyConfig("first", core_key, backfill, shutdown=idle))
    assert result.start.tolist() == expected.start.tolist()
    assert result.finish.tolist() == expected.finish.tolist()
    assert [a.tolist() for a in result.alloc] == [a.tolist() for a in expected.alloc]
    assert ([(t, h.tolist(), p) for t, h, p in result.pstate_rows]
            == [(t, h.tolist(), p) for t, h, p in expected.pstate_rows])
    assert result.machine_state_rows == expected.machine_state_rows
    assert list(result.energy_rows) == list(expected.energy_rows)  # the fast path's rows are a sequence
    assert env.engine.energy_so_far() == engine.energy_so_far()
    assert result.consumed_joules == expected.consumed_joules
    assert info["power"]["asleep"] > 0  # machines did sleep


def test_dvfs_under_shutdown_sets_the_pstate_of_a_woken_machine():
    """Every decision at p-state 1. a (1 GFLOP, at 0) runs on h0 at 50 Mflop/s, 0-20 at 150 W;
    h1-h3 switch off at 0 (0-10 at 50 W, then asleep at 10 W). h0 switches off at 20 (20-30),
    sleeps to 50, when b (1 GFLOP) comes: nothing is awake, h0 wakes 50-55 (150 W) into its
    declared p-state 0, and the decision at 55 switches it to p-state 1 again: b runs 55-75 at
    150 W, then h0 switches off 75-85. Energy to 85: h0 3000 + 500 + 200 + 750 + 3000 + 500, h1-h3
    3 x (500 + 75 x 10) = 11,700 J; to b's end (Batsim's figure) 11,700 - 500 - 3 x 100 = 10,900 J."""
    env = env_for([dict(subtime=0.0, res=1, gflop=1), dict(subtime=50.0, res=1, gflop=1)], dvfs=True)
    assert env.action_names() == ["first:first_fit @ p-state 0", "first:first_fit @ p-state 1"]
    result, info, total = play(env, action=1)
    assert result.start.tolist() == [0.0, 55.0] and result.finish.tolist() == [20.0, 75.0]
    assert [a.tolist() for a in result.alloc] == [[0], [0]]
    assert env.engine.now == 85.0 and info["power"]["asleep"] == 4
    assert env.engine.energy_so_far() == pytest.approx(11700.0)
    assert result.consumed_joules == pytest.approx(10900.0)
    # energy_waiting's return: minus (energy to the episode's end + w x b's 5 s of waiting).
    assert total == pytest.approx(-(11700.0 + env.config.waiting_watts * 5.0))


def test_void_never_stalls_with_machines_asleep():
    """Void while nothing runs, no switch is under way and every remaining job waits: the first
    pair runs instead (void_overridden), and the shutdown rule wakes what it needs. a runs 0-10
    and every machine sleeps from 20; at 50 b (4 machines) comes and the agent voids: the pair
    starts nothing, all four wake 50-55, and at 55 void runs the pair again: b runs 55-65."""
    env = env_for([dict(subtime=0.0, res=1, delay=10), dict(subtime=50.0, res=4, delay=10)], void=True)
    env.reset(seed=0)
    _, _, _, _, info = env.step(0)
    assert info["time"] == 50.0 and info["power"]["asleep"] == 4
    _, _, _, _, info = env.step(1)
    assert info["void_overridden"] and info["time"] == 55.0 and info["power"]["awake"] == 4
    _, _, terminated, _, info = env.step(1)
    assert info["void_overridden"] and terminated
    assert env.result().start.tolist() == [0.0, 55.0] and env.result().finish.tolist() == [10.0, 65.0]
    # Void at 0 is not overridden (b is still to come): a waits for b's arrival, with every
    # machine awake (no machine sleeps while a job waits), then the pair runs at 50.
    result, _, _ = play(env, action=1)
    assert result.start.tolist() == [50.0, 60.0]


def test_observation_and_info_show_the_machines_modes():
    env = env_for([dict(subtime=0.0, res=1, delay=10), dict(subtime=50.0, res=1, delay=10)])
    assert env.observation_space.shape == (4 * 2 + 21 + POWER_FEATURES,)
    obs, info = env.reset(seed=0)
    assert info["power"] == {"awake": 4, "switching_off": 0, "asleep": 0, "switching_on": 0}
    obs, _, _, _, info = env.step(0)  # at 50: b waits, every machine asleep since 20
    assert info["time"] == 50.0 and info["power"]["asleep"] == 4
    assert obs[-POWER_FEATURES:].tolist() == [0.0, 1.0, 0.0, 0.0]  # idle awake, asleep, off, on


def test_random_masked_dvfs_agents_finish_with_valid_schedules():
    env = env_for(random_jobs(7), actions=(("first", "first_fit"), ("smallest", "low_power")), dvfs=True,
                  backfill="easy", observation="normal", render_mode="ansi")
    _, info = env.reset(seed=3)
    rng = np.random.default_rng(3)
    done = False
    while not done:
        action = int(rng.choice(np.flatnonzero(info["action_mask"])))
        obs, _, terminated, truncated, info = env.step(action)
        assert env.observation_space.contains(obs) and isinstance(env.render(), str)
        done = terminated or truncated
    assert_one_job_per_machine(env.result())
    check_env(env_for(random_jobs(0, 10), dvfs=True, observation="normal"), skip_render_check=True)


@pytest.mark.parametrize("fields, message", [
    (dict(shutdown=-1.0), "shutdown -1.0: expected a finite number of idle seconds >= 0"),
    (dict(shutdown=0.0, power_actions=True, void=True), "shutdown: not with power_actions"),
    (dict(shutdown=0.0, dvfs=True, dvfs_idle=True, void=True), "shutdown: not with dvfs_idle"),
    (dict(shutdown=0.0, action_space="job_window"), "shutdown: needs action_space 'pairs'"),
])
def test_config_errors(fields, message):
    with pytest.raises(ConfigError, match=message):
        env_for([dict(res=1, delay=1)], **fields)


def test_platform_without_sleep_states_and_fast_are_refused(tmp_path):
    with pytest.raises(ConfigError, match="fast=True"):
        env_for([dict(res=1, delay=1)], fast=True)
    with pytest.raises(ConfigError, match="^shutdown: .*quickstart.json declares no sleep p-state"):
        HeteroEnv("quickstart", hand_workload([dict(res=1, delay=1)]), shutdown=0.0, void=False)


def test_experiment_file_with_shutdown(tmp_path):
    workload = tmp_path / "jobs.json"
    from hdeeprm.inputs.workload.batsim_json import write_batsim_workload

    write_batsim_workload(hand_workload(random_jobs(1)), workload)
    path = tmp_path / "experiment.json"
    path.write_text(json.dumps({"platform": PLATFORM, "workload": str(workload), "episode_jobs": 10,
                                "objective": "energy_waiting", "waiting_watts": 100.0, "shutdown": 30.0,
                                "dvfs": True, "actions": {"selection": [{"first": ["first_fit"]}], "void": False},
                                "episodes": 2}))
    config = ExperimentConfig.load(path)
    env = config.make_env("train")
    assert env.config.shutdown == 30.0 and env.action_space.n == 2
    assert not env.uses_compiled_path
    path.write_text(json.dumps({"platform": PLATFORM, "workload": str(workload), "shutdown": "soon"}))
    with pytest.raises(ConfigError, match="shutdown 'soon'"):
        ExperimentConfig.load(path)


@pytest.mark.batsim
@pytest.mark.skipif(__import__("shutil").which("batsim") is None, reason="batsim is not on PATH")
@pytest.mark.parametrize("seed", [0, 1])
def test_a_random_agent_under_shutdown_with_dvfs_gets_the_same_run_on_real_batsim(tmp_path, seed):
    """The same seeded random masked agent (core keys and p-states) under the shutdown rule, on
    the embedded engine and on real Batsim 4.2.1: the same decisions, schedule, allocations and
    energy (Batsim prints times with 6 decimals)."""
    pytest.importorskip("zmq")
    jobs = random_jobs(seed, 20)
    results, decisions = {}, {}
    for backend in ("embedded", "batsim"):
        env = env_for(jobs, actions=(("first", "first_fit"), ("first", "low_power")), dvfs=True, backfill="easy",
                      backend=backend, backend_options={"workdir": tmp_path / backend} if backend == "batsim" else None)
        _, info = env.reset(seed=seed)
        rng = np.random.default_rng(seed)
        trace, done = [], False
        while not done:
            action = int(rng.choice(np.flatnonzero(info["action_mask"])))
            trace.append((action, info["time"], info["power"]["asleep"]))
            _, _, terminated, truncated, info = env.step(action)
            done = terminated or truncated
        results[backend], decisions[backend] = env.result(), trace
        env.close()
    a, b = results["embedded"], results["batsim"]
    assert [(a, n) for a, _, n in decisions["embedded"]] == [(a, n) for a, _, n in decisions["batsim"]]
    np.testing.assert_allclose([t for _, t, _ in decisions["embedded"]], [t for _, t, _ in decisions["batsim"]],
                               rtol=0, atol=1e-5)
    assert any(asleep for _, _, asleep in decisions["embedded"])
    np.testing.assert_allclose(a.start, b.start, rtol=0, atol=1e-5)
    np.testing.assert_allclose(a.finish, b.finish, rtol=0, atol=1e-5)
    assert [h.tolist() for h in a.alloc] == [h.tolist() for h in b.alloc]
    assert b.consumed_joules == pytest.approx(a.consumed_joules, rel=1e-9)
