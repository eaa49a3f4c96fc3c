"""Power actions in HeteroEnv (EnvConfig.power_actions, issue 21 item 1): the agent switches idle
machines off to their Batsim sleep p-state and wakes sleeping ones, beside its scheduling
actions, under masks, without ever stalling the simulation.

The platform (tests/data/platforms/sleep_4hosts.xml): four hosts, p-states 0 and 1 compute (100
and 50 Mflop/s; 100:200 and 90:150 W idle:full), 2 sleeps (10 W), 3 switches off (1 flop at 0.1
flop/s: 10 s at 50 W), 4 switches on (1 flop at 0.2 flop/s: 5 s at 150 W). Delay jobs leave their
machine at its idle wattage (100 W); a 1-GFLOP job runs 10 s at 100 Mflop/s at 200 W. Every
number below is computed by hand from these."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env
from test_policies import hand_workload

from hdeeprm.common.errors import ConfigError
from hdeeprm.inputs.workload.batsim_json import write_batsim_workload
from hdeeprm.rl.env import POWER_ACTIONS, POWER_FEATURES, EnvConfig, HeteroEnv
from hdeeprm.rl.experiment import ExperimentConfig

PLATFORM = str(Path(__file__).parent / "data" / "platforms" / "sleep_4hosts.xml")
FIRST_FIT = (("first", "first_fit"),)
# With FIRST_FIT: 0 the pair, 1 void ("keep"), then the power actions.
PAIR, KEEP, OFF_ONE, OFF_ALL, WAKE_ONE, WAKE_ALL = range(6)


def env_for(jobs, **fields):
    fields = {"power_actions": True, "objective": "energy_consumption", "actions": FIRST_FIT,
              "observation": "small", **fields}
    return HeteroEnv(PLATFORM, hand_workload(jobs), **fields)


def test_action_layout():
    env = env_for([dict(res=1, delay=1)])
    assert env.action_space.n == 2 + len(POWER_ACTIONS)
    assert env.action_names() == ["first:first_fit", "void", *POWER_ACTIONS]
    assert [env.action_name(a) for a in range(6)] == env.action_names()
    assert env.config.nb_actions == 6
    # small: per machine (node, processor) 2 values, the queue part (21), then the power features.
    assert env.observation_space.shape == (4 * 2 + 21 + POWER_FEATURES,)


def test_switch_off_then_a_job_waits_for_the_wake():
    """a (delay 10) runs on h0 0-10. At 10 (a done, queue empty) all four machines switch off
    (10-20, 50 W each), asleep from 20 (10 W). b (1 GFLOP) comes at 50: nothing is awake, so
    only waking is allowed; h0 wakes 50-55 (150 W) and b runs on it 55-65 (200 W).
    Energy: 0-10 4 x 100 x 10 = 4000; 10-20 4 x 50 x 10 = 2000; 20-50 4 x 10 x 30 = 1200;
    50-55 150 x 5 + 3 x 10 x 5 = 900; 55-65 200 x 10 + 3 x 10 x 10 = 2300; total 10400 J.
    Waiting: a 0 s, b 5 s (the switch-on)."""
    env = env_for([dict(subtime=0.0, res=1, delay=10), dict(subtime=50.0, res=1, gflop=1)])
    _, info = env.reset(seed=0)
    assert info["time"] == 0.0 and info["queue_length"] == 1
    # Jobs wait: no switching off; nothing sleeps: no waking.
    assert info["action_mask"].tolist() == [True, True, False, False, False, False]
    total = 0.0
    # At 10 the queue is empty: the pair starts nothing (masked), switching off is allowed.
    steps = [(PAIR, 10.0, [False, True, True, True, False, False], {"awake": 4}),
             (OFF_ALL, 20.0, [False, True, False, False, True, True], {"asleep": 4}),
             (KEEP, 50.0, [False, True, False, False, True, True], {"asleep": 4}),
             (WAKE_ONE, 55.0, [True, True, False, False, True, True], {"awake": 1, "asleep": 3})]
    for action, time, mask, power in steps:
        _, reward, terminated, truncated, info = env.step(action)
        total += reward
        assert not (terminated or truncated)
        assert info["time"] == time and info["action_mask"].tolist() == mask
        assert {k: v for k, v in info["power"].items() if v} == power
        assert not info["void_overridden"]
    _, reward, terminated, _, info = env.step(PAIR)
    total += reward
    assert terminated
    result = env.result()
    assert result.start.tolist() == [0.0, 55.0] and result.finish.tolist() == [10.0, 65.0]
    assert [a.tolist() for a in result.alloc] == [[0], [0]]
    assert result.consumed_joules == pytest.approx(10400.0)
    assert total == pytest.approx(-10400.0)
    assert info["metrics"]["consumed_joules"] == pytest.approx(10400.0)
    assert info["metrics"]["mean_waiting_time"] == pytest.approx(2.5)


def test_keeping_the_machines_on_costs_more_energy_and_no_waiting():
    """The same jobs, the agent never switching off: 4 machines at 100 W for 60 s, plus b's
    10 s at 200 instead of 100 on h0: 24000 + 1000 = 25000 J; nobody waits."""
    env = env_for([dict(subtime=0.0, res=1, delay=10), dict(subtime=50.0, res=1, gflop=1)])
    env.reset(seed=0)
    terminated = False
    while not terminated:
        _, _, terminated, _, info = env.step(PAIR if info_queue(env) else KEEP)
    assert env.result().consumed_joules == pytest.approx(25000.0)
    assert info["metrics"]["mean_waiting_time"] == 0.0


def info_queue(env) -> int:
    return len(env.scheduler.queue)


def test_masks_and_masked_power_actions_do_nothing():
    """Two 2-machine jobs, a (0-10 on h0-h1) and b (0-20 on h2-h3); c (1 machine, 1 s) comes at
    5, when no machine is idle and nothing sleeps; d comes at 40."""
    env = env_for([dict(subtime=0.0, res=2, delay=10), dict(subtime=0.0, res=2, delay=20),
                   dict(subtime=5.0, res=1, delay=1), dict(subtime=40.0, res=1, delay=1)])
    _, info = env.reset(seed=0)
    _, _, _, _, info = env.step(PAIR)  # a and b start
    assert info["time"] == 5.0 and info["queue_length"] == 1
    # Nothing idle (and a job waits): no switching off; nothing asleep: no waking.
    assert info["action_mask"].tolist() == [False, True, False, False, False, False]
    _, _, _, _, info = env.step(OFF_ALL)  # masked: acts as void
    assert info["power"]["awake"] == 4 and info["time"] == 10.0  # a ends
    _, _, _, _, info = env.step(PAIR)  # c on h0, 10-11
    assert info["queue_length"] == 0
    # c ends at 11: h0, h1 idle, queue empty: switching off allowed, waking not.
    assert info["time"] == 11.0 and info["action_mask"].tolist() == [False, True, True, True, False, False]
    _, _, _, _, info = env.step(WAKE_ALL)  # masked: nothing happens
    assert info["power"]["awake"] == 4
    assert info["time"] == 20.0  # b ends
    assert env.action_masks()[2:].tolist() == [True, True, False, False]
    obs, _, _, _, info = env.step(OFF_ONE)  # h0 switches off 20-30; the next decision is its end
    assert info["time"] == 30.0 and info["queue_length"] == 0
    assert info["power"] == {"awake": 3, "switching_off": 0, "asleep": 1, "switching_on": 0}
    # Fractions of the machines: idle and awake, asleep, switching off, switching on.
    assert obs[-POWER_FEATURES:].tolist() == pytest.approx([0.75, 0.25, 0.0, 0.0])
    assert info["action_mask"].tolist() == [False, True, True, True, True, True]
    obs, _, _, _, info = env.step(WAKE_ONE)  # h0 wakes 30-35: the next decision is its end
    assert info["time"] == 35.0 and info["power"]["awake"] == 4


def test_a_keep_only_agent_never_stalls():
    """All machines asleep and a job waiting with nothing to come: void (or a power action
    that starts nothing) wakes every sleeping machine (void_overridden)."""
    env = env_for([dict(subtime=0.0, res=1, delay=10), dict(subtime=50.0, res=4, delay=10)])
    env.reset(seed=0)
    env.step(PAIR)
    _, _, _, _, info = env.step(OFF_ALL)
    _, _, _, _, info = env.step(KEEP)
    assert info["time"] == 50.0 and info["power"]["asleep"] == 4
    _, _, _, _, info = env.step(KEEP)
    assert info["void_overridden"] and info["time"] == 55.0 and info["power"]["awake"] == 4
    _, _, terminated, _, info = env.step(KEEP)  # all awake and free: void runs the first pair
    assert info["void_overridden"] and terminated
    # 0-10 4000; 10-20 2000; 20-50 1200; 50-55 4 x 150 x 5 = 3000; 55-65 4 x 100 x 10 = 4000.
    assert env.result().consumed_joules == pytest.approx(14200.0)
    assert env.result().start.tolist() == [0.0, 55.0]


def random_jobs(seed: int, n: int = 30):
    rng = np.random.default_rng(seed)
    times = np.cumsum(rng.exponential(30.0, n))  # light load: idle machines to switch off
    return [dict(subtime=float(t), res=int(rng.integers(1, 5)), delay=float(rng.integers(1, 40)),
                 walltime=100.0) for t in times]


@pytest.mark.parametrize("seed", [0, 1, 2, 3, 4])
@pytest.mark.parametrize("power_bias", [0.0, 0.8])
def test_random_masked_agents_finish_with_valid_schedules(seed, power_bias):
    """Random agents (power_bias: how often they take an allowed power action) finish every
    episode: every job runs, never on a machine at the same time as another job."""
    jobs = random_jobs(seed)
    backfill = ("easy", "conservative", None)[seed % 3]  # held machines under every backfilling
    env = env_for(jobs, actions=(("first", "first_fit"), ("smallest", "high_gflops")), backfill=backfill,
                  observation="normal", objective="avg_bounded_slowdown", render_mode="ansi")
    _, info = env.reset(seed=seed)
    rng = np.random.default_rng(seed)
    nb_base = 3
    steps, slept, done = 0, 0, False
    while not done:
        mask = info["action_mask"]
        power = np.flatnonzero(mask[nb_base:]) + nb_base
        if power.size and rng.random() < power_bias:
            action = int(rng.choice(power))
        else:
            action = int(rng.choice(np.flatnonzero(mask)))
        obs, _, terminated, truncated, info = env.step(action)
        assert env.observation_space.contains(obs)
        assert isinstance(env.render(), str)
        done = terminated or truncated
        steps += 1
        slept = max(slept, info["power"]["asleep"])
        assert steps < 5000
    assert terminated
    assert slept or not power_bias  # the power actions were exercised
    result = env.result()
    assert (result.finish >= result.start).all() and np.isfinite(result.finish).all()
    assert_one_job_per_machine(result)
    assert info["metrics"]["started_jobs"] == len(jobs)


def assert_one_job_per_machine(result):
    """No machine serves two jobs at the same time."""
    busy = {}
    for j, hosts in enumerate(result.alloc):
        for h in hosts.tolist():
            busy.setdefault(h, []).append((float(result.start[j]), float(result.finish[j])))
    for intervals in busy.values():
        intervals.sort()
        assert all(a[1] <= b[0] for a, b in zip(intervals, intervals[1:]))


def test_gymnasium_env_checker_passes_with_power_actions():
    check_env(env_for(random_jobs(0, 10), observation="normal"), skip_render_check=True)


def test_config_errors():
    with pytest.raises(ConfigError, match="power_actions: .*declares no sleep p-state"):
        HeteroEnv("quickstart", power_actions=True)
    with pytest.raises(ConfigError, match="power_actions: not with dvfs"):
        EnvConfig(power_actions=True, dvfs=True)
    with pytest.raises(ConfigError, match="power_actions: needs action_space 'pairs'"):
        EnvConfig(power_actions=True, action_space="job_window")
    with pytest.raises(ConfigError, match="power_actions: needs the void action"):
        EnvConfig(power_actions=True, void=False)
    with pytest.raises(ConfigError, match="power_actions 1: expected true or false"):
        EnvConfig(power_actions=1)
    with pytest.raises(ConfigError, match="fast=True: .*power_actions"):
        env_for([dict(res=1, delay=1)], fast=True)
    assert not env_for([dict(res=1, delay=1)]).uses_compiled_path


@pytest.fixture
def experiment(tmp_path):
    write_batsim_workload(hand_workload(random_jobs(7, 24)), tmp_path / "jobs.json")
    path = tmp_path / "power_experiment.json"
    path.write_text(json.dumps({
        "platform": PLATFORM, "workload": "jobs.json", "power_actions": True, "objective": "energy_consumption",
        "observation": "normal", "episode_jobs": 8, "episodes": 2, "algorithm": "ppo", "hidden": 8,
        "eval_episodes": 1, "reward_scale": 0.001, "episode_outputs": "none"}))
    return path


def test_experiment_file_with_power_actions_trains_ppo(experiment, tmp_path):
    from hdeeprm.rl.train import train

    config = ExperimentConfig.load(experiment)
    assert config.power_actions and config.env_config().power_actions
    env = config.make_env()
    assert env.action_space.n == 37 + len(POWER_ACTIONS)
    assert env.platform.hierarchy is None and env.platform.nb_pstates.tolist() == [5, 5, 5, 5]
    train(config, tmp_path / "run", progress=False)
    assert (tmp_path / "run" / "model.pt").is_file()
    with pytest.raises(ConfigError, match="power_actions: .*declares no sleep p-state"):
        ExperimentConfig.load(experiment, platform="quickstart").make_env()
    with pytest.raises(ConfigError, match="power_actions"):
        ExperimentConfig.load(experiment, power_actions="yes")


def test_evaluation_of_a_power_agent_compares_it_with_the_shutdown_policy(experiment, tmp_path):
    """The evaluation's fixed pairs keep every machine on (a pair never switches a machine off,
    and power_actions needs void), then run under the shutdown policy (after 0 s idle): the
    heuristic a power agent has to beat. Random valid actions play the agent's own actions."""
    from hdeeprm.analysis.evaluation import evaluate
    from hdeeprm.rl.train import train

    config = ExperimentConfig.load(experiment)
    train(config, tmp_path / "run", progress=False)
    evaluation = evaluate(config, str(tmp_path / "run" / "model.pt"), pairs=[("first", "first_fit")])
    kinds = {o.policy: o.kind for o in evaluation.outcomes}
    assert kinds == {"agent (ppo)": "agent", "random valid actions": "random", "first:first_fit": "pair",
                     "first:first_fit+easy": "pair+easy", "first:first_fit+shutdown": "pair+shutdown"}
    by_policy = {o.policy: o for o in evaluation.outcomes}
    # Machines switched off after 0 s idle: less energy than the same pair always on.
    assert by_policy["first:first_fit+shutdown"].objective[0] < by_policy["first:first_fit"].objective[0]
    assert evaluation.best("pair+shutdown").policy == "first:first_fit+shutdown"
