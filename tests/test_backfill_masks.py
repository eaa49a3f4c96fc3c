"""Action masks under backfilling: a pass whose first job does not fit may still backfill
another, so the pair stays allowed (found by the energy study: masked agents with void could
never backfill)."""

from __future__ import annotations

import pytest
from test_dvfs_actions import FIRST_FIT, three_hosts_xml
from test_policies import hand_workload

from hdeeprm.rl.env import HeteroEnv


@pytest.fixture
def platform_xml(tmp_path):
    return three_hosts_xml(tmp_path / "three.xml")


def blocked_head(platform_xml, backfill, fast=False):
    # Job 0 holds 2 of the 3 machines for 10 s; job 1 needs all 3 (blocked until t=10); job 2,
    # submitted at t=1, needs one machine for 5 s: it ends before job 1 can start, so EASY
    # backfills it at t=1, at the decision its submission makes.
    jobs = hand_workload([dict(res=2, gflop=1, walltime=20.0), dict(res=3, gflop=1, walltime=20.0),
                          dict(subtime=1.0, res=1, gflop=0.5, walltime=6.0)])
    env = HeteroEnv(platform_xml, jobs, actions=FIRST_FIT, backfill=backfill, objective="avg_job_completion",
                    fast=fast)
    env.reset(seed=0)
    env.step(0)  # starts job 0; job 1 blocks the queue
    assert fast or env.engine.now == 1.0  # the decision at job 2's submission
    return env


@pytest.mark.parametrize("fast", [False, True])
def test_a_pair_that_only_backfills_is_allowed(platform_xml, fast):
    env = blocked_head(platform_xml, "easy", fast)
    assert env.action_masks().tolist() == [True, True]  # first:first_fit (it backfills job 2), void
    done = False
    while not done:
        _, _, done, _, _ = env.step(0)
    assert env.result().start.tolist() == [0.0, 10.0, 1.0]


def test_without_backfilling_the_blocked_pair_is_masked(platform_xml):
    env = blocked_head(platform_xml, None)
    assert env.action_masks().tolist() == [False, True]
