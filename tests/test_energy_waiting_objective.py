"""The energy_waiting objective: C = energy since the first submission (J) + waiting_watts x the
integral of the number of waiting jobs (job-seconds), so that minus an episode's return is C
at its end.

The platform (tests/data/platforms/sleep_4hosts.xml, as in test_power_actions): four hosts,
p-state 0 computes at 100 Mflop/s at 100:200 W idle:full, 2 sleeps (10 W), 3 switches off (10 s
at 50 W), 4 switches on (5 s at 150 W). Delay jobs leave their machine at its idle wattage
(100 W); a 1-GFLOP job runs 10 s at 200 W. Every number below is computed by hand."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from test_policies import hand_workload

from hdeeprm.common.errors import ConfigError
from hdeeprm.rl.env import EnvConfig, HeteroEnv
from hdeeprm.rl.experiment import ExperimentConfig
from hdeeprm.simulation.objectives import (
    DEFAULT_WAITING_WATTS,
    HDEEPRM_OBJECTIVES,
    OBJECTIVE_LABELS,
    OBJECTIVES,
    TRADE_OFF_OBJECTIVES,
)

DATA = Path(__file__).parent / "data"
PLATFORM = str(DATA / "platforms" / "sleep_4hosts.xml")
FIRST_FIT = (("first", "first_fit"),)
PAIR, KEEP, OFF_ONE, OFF_ALL, WAKE_ONE, WAKE_ALL = range(6)  # with power_actions and FIRST_FIT


def play(env, choose) -> float:
    """The episode's return, ``choose(env)`` giving each action."""
    env.reset(seed=0)
    total, done = 0.0, False
    while not done:
        _, reward, terminated, truncated, _ = env.step(choose(env))
        total += reward
        done = terminated or truncated
    return total


def pair_or_keep(env) -> int:
    return PAIR if env.scheduler.queue else KEEP


# a: 4 machines, a 10 s delay job; b: 1 machine, 5 s, submitted 2 s later: it waits for a (8 s).
# Every machine idles at 100 W (delay jobs): 4 x 100 x 15 = 6000 J from the first submission to b's end.
BLOCKED = [dict(res=4, delay=10), dict(res=1, delay=5)]


def blocked(first_submission: float):
    jobs = [dict(BLOCKED[0], subtime=first_submission), dict(BLOCKED[1], subtime=first_submission + 2.0)]
    return hand_workload(jobs)


@pytest.mark.parametrize("w", [1.0, 100.0, 2500.0])
def test_the_return_is_minus_energy_plus_w_times_waiting(w):
    env = HeteroEnv(PLATFORM, blocked(0.0), objective="energy_waiting", waiting_watts=w, actions=FIRST_FIT,
                    observation="small")
    total = play(env, lambda env: 0)
    result = env.result()
    assert result.start.tolist() == [0.0, 10.0] and result.finish.tolist() == [10.0, 15.0]
    assert result.consumed_joules == pytest.approx(6000.0)
    assert -total == pytest.approx(6000.0 + w * 8.0, rel=1e-12)


def test_w_scales_the_waiting_part_only():
    returns = {}
    for w in (50.0, 100.0, 400.0):
        env = HeteroEnv(PLATFORM, blocked(0.0), objective="energy_waiting", waiting_watts=w, actions=FIRST_FIT)
        returns[w] = play(env, lambda env: 0)
    # C(w) = 6000 + 8 w: linear in w, slope the 8 waiting job-seconds, intercept the energy.
    assert returns[100.0] - returns[50.0] == pytest.approx(-50.0 * 8.0)
    assert returns[400.0] - returns[100.0] == pytest.approx(-300.0 * 8.0)
    assert -returns[50.0] - 50.0 * 8.0 == pytest.approx(6000.0)


def test_energy_before_the_first_submission_is_not_billed():
    """The same jobs from t = 20: the platform idles 0-20 (4 x 100 x 20 = 8000 J, in the
    engine's energy since t = 0), but C starts at the first submission, as Batsim's
    consumed_joules does."""
    w = 100.0
    env = HeteroEnv(PLATFORM, blocked(20.0), objective="energy_waiting", waiting_watts=w, actions=FIRST_FIT)
    total = play(env, lambda env: 0)
    assert env.engine.energy_so_far() == pytest.approx(14000.0)
    assert env.result().consumed_joules == pytest.approx(6000.0)
    assert -total == pytest.approx(6000.0 + w * 8.0)
    env = HeteroEnv(PLATFORM, blocked(20.0), objective="energy_consumption", actions=FIRST_FIT, fast=False)
    assert -play(env, lambda env: 0) == pytest.approx(6000.0)  # less C at the first decision: 8000 J


@pytest.mark.parametrize("w", [10.0, 1000.0])
def test_power_actions_switch_off_then_wait_for_the_wake(w):
    """test_power_actions' first case: a (delay 10) on h0 0-10; at 10 all four machines switch
    off; b (1 GFLOP) comes at 50, h0 wakes 50-55 and b runs 55-65. Energy 10400 J (4000 +
    2000 + 1200 + 900 + 2300, see there); waiting: b 5 s. C = 10400 + 5 w. Kept on instead:
    25000 J and no waiting. At w = 10 W switching off is cheaper; at 1000 W the machines
    still win, by less: C = 15400 against 25000."""
    jobs = hand_workload([dict(subtime=0.0, res=1, delay=10), dict(subtime=50.0, res=1, gflop=1)])
    fields = dict(power_actions=True, objective="energy_waiting", waiting_watts=w, actions=FIRST_FIT,
                  observation="small")
    env = HeteroEnv(PLATFORM, jobs, **fields)
    plan = iter([PAIR, OFF_ALL, KEEP, WAKE_ONE, PAIR])
    off = play(env, lambda env: next(plan))
    assert env.result().start.tolist() == [0.0, 55.0]
    assert -off == pytest.approx(10400.0 + 5.0 * w)
    env = HeteroEnv(PLATFORM, jobs, **fields)
    on = play(env, pair_or_keep)
    assert -on == pytest.approx(25000.0)
    assert off > on


def test_a_random_run_on_a_real_trace(tmp_path):
    """Random valid actions on 60 jobs of KTH-SP2 (readable path): minus the return is the
    energy since the first submission plus w x the waiting times of the simulator's outputs."""
    w = 37.5
    env = HeteroEnv("quickstart", "kth-sp2-head.swf.gz", nb_jobs=60, objective="energy_waiting", waiting_watts=w,
                    backfill="easy")
    assert not env.uses_compiled_path
    rng = np.random.default_rng(3)
    env.reset(seed=1)
    first = env.engine.jobs.subtime.min()
    assert first == env.engine.now  # the first decision is the first submission
    energy_at_first = env.engine.energy_so_far()
    total, done = 0.0, False
    while not done:
        mask = env.action_masks()
        _, reward, terminated, truncated, _ = env.step(int(rng.choice(np.flatnonzero(mask))))
        total += reward
        done = terminated or truncated
    result = env.result()
    ran = np.isfinite(result.start)
    waiting = float((result.start[ran] - env.engine.jobs.subtime[ran]).sum())
    assert waiting > 0
    energy = env.engine.energy_so_far() - energy_at_first
    assert -total == pytest.approx(energy + w * waiting, rel=1e-9)


def test_the_compiled_path_declines_it():
    assert "energy_waiting" in OBJECTIVES and "energy_waiting" in TRADE_OFF_OBJECTIVES
    assert "energy_waiting" not in HDEEPRM_OBJECTIVES
    assert "waiting_watts" in OBJECTIVE_LABELS["energy_waiting"]
    env = HeteroEnv("quickstart", "kth-sp2-head.swf.gz", nb_jobs=20, objective="energy_waiting")
    assert not env.uses_compiled_path  # the readable path, silently
    with pytest.raises(ConfigError, match="compiled path") as e:
        HeteroEnv("quickstart", "kth-sp2-head.swf.gz", nb_jobs=20, objective="energy_waiting", fast=True)
    assert "\n" not in str(e.value)


def test_the_default_price():
    assert EnvConfig(objective="energy_waiting").waiting_watts == DEFAULT_WAITING_WATTS == 100.0
    assert ExperimentConfig(objective="energy_waiting").waiting_watts == DEFAULT_WAITING_WATTS


@pytest.mark.parametrize("bad", [0, 0.0, -1.0, float("nan"), float("inf"), "100", None, True, 10 ** 400])
def test_an_invalid_price_is_a_one_line_config_error(bad):
    with pytest.raises(ConfigError, match="waiting_watts") as e:
        EnvConfig(objective="energy_waiting", waiting_watts=bad)
    assert "\n" not in str(e.value)
    with pytest.raises(ConfigError, match="waiting_watts") as e:
        ExperimentConfig(objective="energy_waiting", waiting_watts=bad)
    assert "\n" not in str(e.value)


def experiment_file(tmp_path, **fields) -> Path:
    data = {"platform": "quickstart", "workload": "kth-sp2-head.swf.gz", "nb_jobs": 60, "episode_jobs": 20,
            "objective": "energy_waiting", "waiting_watts": 250, "observation": "small", "episodes": 1,
            "split": {"train": [0, 0.5], "test": [0.5, 1]}, **fields}
    path = tmp_path / "experiment.json"
    path.write_text(json.dumps(data))
    return path


def test_an_experiment_file_round_trip(tmp_path):
    config = ExperimentConfig.load(experiment_file(tmp_path))
    assert config.objective == "energy_waiting" and config.waiting_watts == 250
    assert config.env_config().waiting_watts == 250
    env = config.make_env("test")
    assert env.config.waiting_watts == 250 and env.config.objective == "energy_waiting"
    # Written back (as train writes the resolved configuration) and read again: the same.
    again = tmp_path / "again.json"
    again.write_text(json.dumps(config.as_dict()))
    assert ExperimentConfig.load(again) == config
    # An options file's env block takes it too.
    assert EnvConfig.from_options({"objective": "energy_waiting", "waiting_watts": 62.5}).waiting_watts == 62.5


@pytest.mark.parametrize("fields, expected", [
    ({"waiting_watts": "many"}, "waiting_watts 'many'"),
    ({"waiting_watts": -5}, "waiting_watts -5"),
    ({"waiting_wats": 10}, "unknown key 'waiting_wats'"),
    ({"objective": "energy_wait"}, "energy_waiting"),
])
def test_an_experiment_file_with_a_bad_price_or_name(tmp_path, fields, expected):
    with pytest.raises(ConfigError) as e:
        ExperimentConfig.load(experiment_file(tmp_path, **fields))
    assert expected in str(e.value) and "\n" not in str(e.value)
    with pytest.raises(ConfigError, match="unknown key 'waiting_wats'"):
        EnvConfig.from_options({"objective": "energy_waiting", "waiting_wats": 10})
