"""DVFS as an agent decision (EnvConfig.dvfs): the agent picks the computation p-state of the
machines its decision starts jobs on, on flat platforms with several p-states."""

from __future__ import annotations

import json

import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env
from test_policies import hand_workload

from hdeeprm.common.errors import ConfigError
from hdeeprm.inputs.platform import load_platform
from hdeeprm.inputs.platform.flat import with_flat_hierarchy
from hdeeprm.inputs.workload.batsim_json import write_batsim_workload
from hdeeprm.rl.env import EnvConfig, HeteroEnv
from hdeeprm.rl.experiment import ExperimentConfig

# Three machines, p-states 0/1/2 at 100/50/20 Mflop/s; (idle, full-load) watts per p-state
# (10, 100), (8, 30), (5, 12). The master host is not a compute machine.
HOST = ('<host id="h{i}" speed="100Mf, 50Mf, 20Mf" pstate="0">'
        '<prop id="wattage_per_state" value="10:100, 8:30, 5:12"/></host>')
PLATFORM = """<?xml version='1.0'?>
<!DOCTYPE platform SYSTEM "https://simgrid.org/simgrid.dtd">
<platform version="4.1">
  <zone id="AS0" routing="Full">
    {hosts}
    <host id="master_host" speed="1Gf"/>
  </zone>
</platform>
"""
ONE_PSTATE = ('<host id="h{i}" speed="100Mf" pstate="0">'
              '<prop id="wattage_per_state" value="10:100"/></host>')
FIRST_FIT = (("first", "first_fit"),)


def three_hosts_xml(path) -> str:
    """PLATFORM with three HOST machines, written at ``path``."""
    path.write_text(PLATFORM.format(hosts="\n    ".join(HOST.format(i=i) for i in range(3))))
    return str(path)


@pytest.fixture
def platform_xml(tmp_path):
    return three_hosts_xml(tmp_path / "dvfs.xml")


def one_job_env(platform_xml, **fields):
    """One 1-GFLOP job on one machine (10 s at 100 Mflop/s), energy as the objective."""
    fields = {"dvfs": True, "objective": "energy_consumption", "actions": FIRST_FIT, "observation": "normal",
              **fields}
    return HeteroEnv(platform_xml, hand_workload([dict(res=1, gflop=1)]), **fields)


# Hand-computed: run time = 1e9 flop / speed; energy = (full-load watts of the job's machine +
# 2 x idle watts of p-state 0 of the two other machines, which stay there) x run time.
#   p-state 0: 10 s, (100 + 2 x 10) x 10 = 1200 J
#   p-state 1: 20 s, ( 30 + 2 x 10) x 20 = 1000 J  (twice the time, less energy)
#   p-state 2: 50 s, ( 12 + 2 x 10) x 50 = 1600 J
HAND = {0: (10.0, 1200.0), 1: (20.0, 1000.0), 2: (50.0, 1600.0)}


@pytest.mark.parametrize("pstate", [0, 1, 2])
def test_the_chosen_pstate_sets_run_time_and_energy(platform_xml, pstate):
    env = one_job_env(platform_xml)
    env.reset(seed=0)
    # Base actions: first:first_fit (0) and void (1); action = p-state x 2 + base.
    obs, reward, terminated, truncated, info = env.step(2 * pstate)
    duration, joules = HAND[pstate]
    assert terminated and not truncated
    result = env.result()
    assert result.finish[0] == pytest.approx(duration)
    assert result.consumed_joules == pytest.approx(joules)
    assert info["metrics"]["consumed_joules"] == pytest.approx(joules)
    assert reward == pytest.approx(-joules)  # the episode's return is minus the objective
    assert env.engine.pstate.tolist() == [pstate, 0, 0]  # the job's machine keeps its p-state


def test_action_space_decoding_and_masks(platform_xml):
    env = one_job_env(platform_xml)
    assert env.action_space.n == 2 * 3  # (pair + void) x 3 p-states
    assert not env.uses_compiled_path
    assert [env.action_name(a) for a in range(6)] == [
        "first:first_fit @ p-state 0", "void @ p-state 0", "first:first_fit @ p-state 1",
        "void @ p-state 1", "first:first_fit @ p-state 2", "void @ p-state 2"]
    _, info = env.reset(seed=0)
    # The pair is allowed at every p-state, void at the first only.
    assert info["action_mask"].tolist() == [True, True, True, False, True, False]
    assert env.action_masks().tolist() == info["action_mask"].tolist()
    # Void at p-state 1 (masked, sent anyway) while nothing runs and the job waits would stall:
    # the first pair runs instead, at that p-state.
    _, _, terminated, _, info = env.step(3)
    assert info["void_overridden"] and terminated
    assert env.result().finish[0] == pytest.approx(20.0)
    with pytest.raises(ValueError):
        env.reset(seed=0)
        env.step(6)


def test_void_waits_then_a_later_decision_sets_the_pstate(platform_xml):
    # Two jobs: job 0 at t=0, job 1 at t=5 (both 1 GFLOP). Decision 1 (t=0) starts job 0 at
    # p-state 2 (50 s); decision 2 (t=5) starts job 1 at p-state 1 (20 s, ends at 25 s).
    workload = hand_workload([dict(res=1, gflop=1), dict(subtime=5.0, res=1, gflop=1)])
    env = HeteroEnv(platform_xml, workload, dvfs=True, objective="makespan", actions=FIRST_FIT)
    env.reset(seed=0)
    _, _, terminated, _, info = env.step(2 * 2)
    assert not terminated and info["time"] == pytest.approx(5.0)
    _, _, terminated, _, _ = env.step(2 * 1)
    assert terminated
    result = env.result()
    assert result.finish.tolist() == pytest.approx([50.0, 25.0])
    assert env.engine.pstate.tolist() == [2, 1, 0]
    # Energy: h0 busy 0..50 at 12 W; h1 idle at 10 W 0..5, busy 5..25 at 30 W, then idle in
    # p-state 1 at 8 W 25..50; h2 idle at 10 W 0..50.
    assert result.consumed_joules == pytest.approx(12 * 50 + (10 * 5 + 30 * 20 + 8 * 25) + 10 * 50)


def test_observation_shows_pstates_speeds_and_power(platform_xml):
    workload = hand_workload([dict(res=1, gflop=1), dict(subtime=5.0, res=1, gflop=1)])
    env = HeteroEnv(platform_xml, workload, dvfs=True, actions=FIRST_FIT, observation="normal")
    obs, _ = env.reset(seed=0)
    # Per machine: node, processor, then 4 core values; then the 21 queue values.
    assert env.observation_space.shape == (3 * 6 + 21,)
    assert obs[:6].tolist() == pytest.approx([1, 1, 1.0, 0.1, 0, 0])  # idle in p-state 0: 10 W / 100 W
    obs, *_ = env.step(2 * 1)  # job 0 at p-state 1; at t = 5, it has done 5 x 50 of 1000 Mflop
    assert obs[:6].tolist() == pytest.approx([1, 1, 0.5, 0.3, 0.75, 0.5])
    assert obs[6:12].tolist() == pytest.approx([1, 1, 1.0, 0.1, 0, 0])
    assert env.observation_space.contains(obs)
    for kind, size in (("small", 3 * 2 + 21), ("minimal", 21)):
        assert HeteroEnv(platform_xml, workload, dvfs=True, observation=kind).observation_space.shape == (size,)


def test_job_window_with_dvfs(platform_xml):
    workload = hand_workload([dict(res=1, gflop=1), dict(res=1, gflop=1)])
    env = HeteroEnv(platform_xml, workload, dvfs=True, action_space="job_window", window_jobs=2,
                    window_core_key="first_fit", objective="makespan")
    assert env.action_space.n == 2 * 3
    # the fixed names (exported policies, hdeeprm-launch's options_resolved.json): slot x p-state
    assert env.action_names() == [f"job {i} of the window @ p-state {k}" for k in (0, 1, 2) for i in (1, 2)]
    _, info = env.reset(seed=0)
    assert info["action_mask"].tolist() == [True] * 6
    env.step(2 * 2 + 1)  # the second job, p-state 2: 50 s
    _, _, terminated, _, info = env.step(0)  # then the first, p-state 0: 10 s
    assert terminated
    assert env.result().finish.tolist() == pytest.approx([10.0, 50.0])


def test_gymnasium_env_checker_passes_with_dvfs(platform_xml):
    workload = hand_workload([dict(subtime=float(i), res=1 + i % 2, gflop=1 + i % 3) for i in range(8)])
    check_env(HeteroEnv(platform_xml, workload, dvfs=True, observation="normal"), skip_render_check=True)


def test_random_masked_episode_with_backfilling_and_rendering(platform_xml):
    workload = hand_workload([dict(subtime=float(i), res=1 + i % 3, gflop=1 + i % 4, walltime=200.0)
                              for i in range(12)])
    env = HeteroEnv(platform_xml, workload, dvfs=True, backfill="easy", render_mode="ansi")
    _, info = env.reset(seed=3)
    rng = np.random.default_rng(0)
    done = False
    while not done:
        assert isinstance(env.render(), str)
        action = int(rng.choice(np.flatnonzero(info["action_mask"])))
        _, _, terminated, truncated, info = env.step(action)
        done = terminated or truncated
    assert env.result().finish.size == 12


SLEEP_HOST = ('<host id="h{i}" speed="100Mf, 50Mf, 1f, 0.1f, 0.2f" pstate="0">'
              '<prop id="wattage_per_state" value="100:200, 90:150, 10:10, 50:50, 150:150"/>'
              '<prop id="sleep_pstates" value="2:3:4"/></host>')


def test_sleep_pstates_are_not_offered(tmp_path):
    path = tmp_path / "sleep.xml"
    path.write_text(PLATFORM.format(hosts="\n    ".join(SLEEP_HOST.format(i=i) for i in range(4))))
    # P-states 0 and 1 compute; 2 is a sleep state, 3 and 4 its virtual switching ones.
    env = HeteroEnv(str(path), hand_workload([dict(res=1, gflop=1)]), dvfs=True, objective="energy_consumption",
                    actions=FIRST_FIT)
    assert env.action_space.n == 2 * 2
    assert env.action_name(2) == "first:first_fit @ p-state 1"
    env.reset(seed=0)
    env.step(2)
    # 1 GFLOP at 50 Mflop/s: 20 s; 150 W busy + 3 machines idle in p-state 0 at 100 W.
    assert env.result().finish[0] == pytest.approx(20.0)
    assert env.result().consumed_joules == pytest.approx((150 + 3 * 100) * 20)


def test_config_errors(platform_xml, tmp_path):
    with pytest.raises(ConfigError, match=r"^dvfs .*expected true or false"):
        EnvConfig(dvfs="yes")
    with pytest.raises(ConfigError, match="dvfs: .*HDeepRM's node/processor hierarchy.*P0 busy"):
        HeteroEnv("quickstart", dvfs=True)
    with pytest.raises(ConfigError, match="with_flat_hierarchy"):
        HeteroEnv(with_flat_hierarchy(load_platform(platform_xml)), hand_workload([dict(res=1, gflop=1)]),
                  dvfs=True)
    single = tmp_path / "single.xml"
    single.write_text(PLATFORM.format(hosts="\n    ".join(ONE_PSTATE.format(i=i) for i in range(2))))
    with pytest.raises(ConfigError, match="dvfs: .*1 computation p-state: no p-state to choose"):
        HeteroEnv(str(single), hand_workload([dict(res=1, gflop=1)]), dvfs=True)
    mixed = tmp_path / "mixed.xml"
    mixed.write_text(PLATFORM.format(hosts=HOST.format(i=0) + ONE_PSTATE.format(i=1)))
    with pytest.raises(ConfigError, match="dvfs: .*different computation p-states"):
        HeteroEnv(str(mixed), hand_workload([dict(res=1, gflop=1)]), dvfs=True)
    with pytest.raises(ConfigError, match="compiled path does not run dvfs"):
        one_job_env(platform_xml, fast=True)


def test_without_dvfs_a_flat_platform_runs_as_before(platform_xml):
    env = one_job_env(platform_xml, dvfs=False)
    assert env.action_space.n == 2
    env.reset(seed=0)
    env.step(0)
    # Declared p-state 0 throughout: 10 s; 100 W busy, 10 W idle.
    assert env.result().finish[0] == pytest.approx(10.0)
    assert env.result().consumed_joules == pytest.approx(1200.0)


@pytest.fixture
def experiment(platform_xml, tmp_path):
    workload = hand_workload([dict(subtime=2.0 * i, res=1 + i % 2, gflop=1 + i % 3, walltime=500.0)
                              for i in range(24)])
    write_batsim_workload(workload, tmp_path / "jobs.json")
    path = tmp_path / "dvfs_experiment.json"
    path.write_text(json.dumps({
        "platform": platform_xml, "workload": "jobs.json", "dvfs": True, "objective": "energy_consumption",
        "observation": "normal", "episode_jobs": 8, "episodes": 2, "algorithm": "ppo", "hidden": 8,
        "eval_episodes": 1, "reward_scale": 0.001, "episode_outputs": "none"}))
    return path


def test_experiment_file_with_dvfs_trains_ppo(experiment, tmp_path):
    from hdeeprm.rl.train import train

    config = ExperimentConfig.load(experiment)
    assert config.dvfs and config.env_config().dvfs
    env = config.make_env()
    assert env.action_space.n == 37 * 3
    assert env.platform.hierarchy is None and env.platform.nb_pstates.tolist() == [3, 3, 3]
    train(config, tmp_path / "run", progress=False)
    assert (tmp_path / "run" / "model.pt").is_file()
    with pytest.raises(ConfigError, match="dvfs: .*HDeepRM's node/processor hierarchy"):
        ExperimentConfig.load(experiment, platform="quickstart").make_env()


def test_command_line_train_and_evaluate_with_dvfs(experiment, tmp_path):
    from hdeeprm.cli.main import main

    out = tmp_path / "cli-run"
    assert main(["train", str(experiment), "--out", str(out), "--no-evaluate"]) == 0
    assert (out / "model.pt").is_file()
    assert main(["evaluate", str(experiment), "--model", str(out / "model.pt"), "--episodes", "1",
                 "--out", str(tmp_path / "eval")]) == 0


# -- dvfs_idle: void at a p-state also sets the idle machines' p-state ------------------------

def two_jobs_env(platform_xml, **fields):
    """Job 0 (1 GFLOP, one machine) at t=0, job 1 (the same) at t=30: the agent may wait."""
    fields = {"dvfs": True, "dvfs_idle": True, "objective": "energy_consumption", "actions": FIRST_FIT,
              "observation": "normal", **fields}
    return HeteroEnv(platform_xml, hand_workload([dict(res=1, gflop=1), dict(subtime=30.0, res=1, gflop=1)]),
                     **fields)


# Hand-computed: void at p-state k at t=0 puts the 3 idle machines in p-state k until t=30
# (idle watts 10 / 8 / 5), then first:first_fit at p-state 0 runs both jobs on h0 and h1 from
# 30 to 40 s (100 W each) while h2 stays idle in p-state k:
#   k = 0: 3 x 10 x 30 + (2 x 100 + 10) x 10 = 900 + 2100 = 3000 J
#   k = 1: 3 x  8 x 30 + (2 x 100 +  8) x 10 = 720 + 2080 = 2800 J
#   k = 2: 3 x  5 x 30 + (2 x 100 +  5) x 10 = 450 + 2050 = 2500 J
@pytest.mark.parametrize("pstate, joules", [(0, 3000.0), (1, 2800.0), (2, 2500.0)])
def test_void_at_a_pstate_switches_the_idle_machines(platform_xml, pstate, joules):
    env = two_jobs_env(platform_xml)
    env.reset(seed=0)
    assert env.action_masks().tolist() == [True] * 6  # void's copies are allowed with dvfs_idle
    env.step(2 * pstate + 1)  # void at p-state `pstate`
    assert env.engine.now == pytest.approx(30.0)
    assert env.engine.pstate.tolist() == [pstate] * 3
    _, reward, terminated, _, _ = env.step(0)  # first:first_fit at p-state 0
    assert terminated
    assert env.engine.pstate.tolist() == [0, 0, pstate]
    assert env.result().finish.tolist() == pytest.approx([40.0, 40.0])
    assert env.result().consumed_joules == pytest.approx(joules)


def test_without_dvfs_idle_void_keeps_the_idle_machines_pstate(platform_xml):
    env = two_jobs_env(platform_xml, dvfs_idle=False)
    env.reset(seed=0)
    assert env.action_masks().tolist() == [True, True, True, False, True, False]
    env.step(5)  # void at p-state 2, masked: acts as void
    assert env.engine.pstate.tolist() == [0, 0, 0]


def test_dvfs_idle_config_errors_and_experiment_files(platform_xml, experiment):
    with pytest.raises(ConfigError, match=r"^dvfs_idle .*expected true or false"):
        EnvConfig(dvfs=True, dvfs_idle=1)
    with pytest.raises(ConfigError, match="dvfs_idle: needs dvfs"):
        EnvConfig(dvfs_idle=True)
    with pytest.raises(ConfigError, match="dvfs_idle: needs dvfs, action_space 'pairs' and the void action"):
        EnvConfig(dvfs=True, dvfs_idle=True, void=False)
    doc = json.loads(experiment.read_text())
    experiment.write_text(json.dumps({**doc, "dvfs_idle": True}))
    config = ExperimentConfig.load(experiment)
    assert config.env_config().dvfs_idle
    env = config.make_env()
    env.reset(seed=0)
    assert env.action_masks()[2 * 37 - 1]  # void at p-state 1 is allowed
