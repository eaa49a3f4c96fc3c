"""The job-window action space, the literature's objectives and user objectives."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from hdeeprm.common.errors import ConfigError
from hdeeprm.rl.agents import ALGORITHMS, build_agent
from hdeeprm.rl.agents.kernel_ppo import JobScorer
from hdeeprm.rl.env import HeteroEnv
from hdeeprm.rl.job_window import WINDOW_FEATURES
from hdeeprm.simulation.metrics import headline_metrics
from hdeeprm.simulation.objectives import FinishedJobs

TRACE = "kth-sp2-head.swf.gz"


def make_env(**fields) -> HeteroEnv:
    from importlib import resources

    trace = str(resources.files("hdeeprm") / "data" / "traces" / TRACE)
    fields.setdefault("episode_jobs", 40)
    return HeteroEnv("quickstart", trace, nb_jobs=200, **fields)


def play(env: HeteroEnv, choose, seed: int = 0, options=None):
    obs, info = env.reset(seed=seed, options=options)
    total, done = 0.0, False
    while not done:
        obs, reward, terminated, truncated, info = env.step(choose(obs, info["action_mask"]))
        total += reward
        done = terminated or truncated
    return total, env.result()


def test_masks_allow_exactly_the_waiting_jobs_of_the_window():
    env = make_env(action_space="job_window", window_jobs=4)
    assert env.observation_space.shape == (4, len(WINDOW_FEATURES))
    rng = np.random.default_rng(1)
    obs, info = env.reset(seed=3)
    done = False
    while not done:
        mask = info["action_mask"]
        queue = env.scheduler.queue
        assert mask.tolist() == [i < min(len(queue), 4) for i in range(4)]
        # A row is a job exactly when its slot may be chosen; padding rows are zeros.
        assert (obs[:, WINDOW_FEATURES.index("present")] == mask).all()
        assert not obs[~mask].any()
        assert env.observation_space.contains(obs)
        if not mask.all():
            with pytest.raises(ValueError, match="window holds"):
                env.step(int(np.flatnonzero(~mask)[0]))
        obs, _, terminated, truncated, info = env.step(int(rng.choice(np.flatnonzero(mask))))
        done = terminated or truncated


@pytest.mark.parametrize("backfill", [None, "easy"])
def test_always_the_first_job_of_the_window_is_fcfs(backfill):
    # Choosing slot 0 every time is FCFS: the same schedule, to the bit, as the pair
    # first:high_gflops (with EASY: first:high_gflops + EASY), on the same window.
    window = make_env(action_space="job_window", backfill=backfill, window_core_key="high_gflops")
    _, by_window = play(window, lambda obs, mask: 0, seed=5)
    pairs = make_env(actions=(("first", "high_gflops"),), void=False, backfill=backfill, fast=False)
    _, by_pair = play(pairs, lambda obs, mask: 0, seed=5)
    assert np.array_equal(by_window.start, by_pair.start)
    assert np.array_equal(by_window.finish, by_pair.finish)


def test_a_chosen_job_that_does_not_fit_blocks_the_others_without_backfilling():
    env = make_env(action_space="job_window", window_jobs=8)
    last = lambda obs, mask: int(np.flatnonzero(mask)[-1])  # noqa: E731  the latest submitted job
    _, result = play(env, last, seed=2)
    jobs = env.engine.jobs
    # Held jobs start in the order chosen: nobody starts while a chosen job waits, so start
    # times never go down in the order of starts, and every job ran.
    assert np.isfinite(result.finish).all()
    order = np.argsort(result.start, kind="stable")
    assert (np.diff(result.start[order]) >= 0).all()
    assert (result.start >= jobs.subtime).all()


@pytest.mark.parametrize("space", ["pairs", "job_window"])
@pytest.mark.parametrize("backfill", [None, "easy"])
@pytest.mark.parametrize("objective", ["avg_bounded_slowdown", "avg_waiting_time"])
def test_the_return_is_minus_the_objective(space, backfill, objective):
    env = make_env(action_space=space, backfill=backfill, objective=objective, bsld_bound=10.0)
    rng = np.random.default_rng(0)
    for seed in range(2):
        total, result = play(env, lambda obs, mask: int(rng.choice(np.flatnonzero(mask))), seed=seed)
        metrics = headline_metrics(result)
        expected = metrics.mean_bounded_slowdown if objective == "avg_bounded_slowdown" else metrics.mean_waiting_time
        assert total == pytest.approx(-expected, rel=1e-9, abs=1e-9)


def test_the_bound_of_the_bounded_slowdown_is_a_parameter():
    returns = []
    for bound in (10.0, 3600.0):
        env = make_env(action_space="job_window", objective="avg_bounded_slowdown", bsld_bound=bound)
        total, result = play(env, lambda obs, mask: 0, seed=1)
        ran = np.isfinite(result.finish)
        turnaround = result.finish[ran] - env.engine.jobs.subtime[ran]
        run = np.maximum(result.finish[ran] - result.start[ran], bound)
        assert total == pytest.approx(-np.maximum(1.0, turnaround / run).mean(), rel=1e-12)
        returns.append(total)
    assert returns[0] < returns[1]  # a larger bound forgives short jobs more


def test_a_user_objective_of_the_finished_jobs():
    seen = []

    def mean_turnaround(jobs: FinishedJobs) -> float:
        seen.append(len(jobs.index))
        return float((jobs.finish - jobs.subtime).sum() / jobs.nb_jobs)

    env = make_env(action_space="job_window", objective=mean_turnaround)
    total, result = play(env, lambda obs, mask: 0, seed=4)
    ran = np.isfinite(result.finish)
    assert sum(seen) == ran.sum()
    assert total == pytest.approx(-(result.finish[ran] - env.engine.jobs.subtime[ran]).mean(), rel=1e-12)
    with pytest.raises(ConfigError, match="finite"):
        play(make_env(objective=lambda jobs: float("nan")), lambda obs, mask: int(np.flatnonzero(mask)[0]))


def test_fixed_windows_and_their_errors():
    env = make_env(action_space="job_window")
    env.reset(seed=0, options={"window_start": 17})
    assert env.episode_start == 17
    for bad in (-1, 161, 2.5, True):
        with pytest.raises(ConfigError, match="window_start"):
            env.reset(seed=0, options={"window_start": bad})
    with pytest.raises(ConfigError, match="unknown key"):
        env.reset(seed=0, options={"start": 3})
    with pytest.raises(ConfigError, match="action_space"):
        make_env(action_space="jobs")
    with pytest.raises(ConfigError, match="compiled path"):
        make_env(action_space="job_window", fast=True)


def test_the_kernel_network_scores_each_job_alike():
    torch.manual_seed(0)
    scorer = JobScorer(features=5)
    x = torch.rand(3, 4, 5)
    permutation = torch.tensor([2, 0, 3, 1])
    logits = scorer(x.reshape(3, -1))
    assert logits.shape == (3, 4)
    assert torch.allclose(scorer(x[:, permutation].reshape(3, -1)), logits[:, permutation])


def test_kernel_ppo_learns_on_the_window_and_never_picks_padding():
    env = make_env(action_space="job_window", window_jobs=6, objective="avg_bounded_slowdown")
    agent = build_agent(ALGORITHMS["kernel_ppo"], 0.99, 16, env.action_space.n,
                        int(np.prod(env.observation_space.shape)), seed=0)
    optimizer = torch.optim.Adam(agent.parameters(), lr=1e-3)
    before = [p.detach().clone() for p in agent.parameters()]
    for seed in range(2):
        agent.reset_episode()
        obs, info = env.reset(seed=seed)
        done = False
        while not done:
            action = agent.decide(obs, info["action_mask"])
            assert info["action_mask"][action]
            obs, reward, terminated, truncated, info = env.step(action)
            agent.rewarded(reward)
            done = terminated or truncated
        losses = agent.update(optimizer)
        assert np.isfinite(losses["loss"])
    assert any(not torch.equal(a, b) for a, b in zip(before, agent.parameters()))
    with pytest.raises(ConfigError, match="job_window"):
        build_agent(ALGORITHMS["kernel_ppo"], 0.99, 16, 37, 100, seed=0)


def test_choosing_again_at_each_event_with_sjf_is_the_pair_shortest():
    # With window_commit=False and a window as long as the episode, always picking the job of
    # least requested time is SJF as the pair shortest:high_gflops schedules it, which sorts
    # the queue again at every event. (With EASY they differ on purpose: the window backfills
    # in submission order, as RLScheduler does, a pair in its key's order.)
    backfill = None
    def sjf(env):
        def choose(obs, mask):
            jobs = env.window_job_indices()
            times = env.engine.jobs.req_time[jobs]
            return int(np.lexsort((jobs, times))[0])
        return choose

    window = make_env(action_space="job_window", window_jobs=40, window_commit=False, backfill=backfill)
    _, by_window = play(window, sjf(window), seed=7)
    pairs = make_env(actions=(("shortest", "high_gflops"),), void=False, backfill=backfill, fast=False)
    _, by_pair = play(pairs, lambda obs, mask: 0, seed=7)
    assert np.array_equal(by_window.start, by_pair.start)
    committed = make_env(action_space="job_window", window_jobs=40, backfill=backfill)
    _, by_commit = play(committed, sjf(committed), seed=7)
    assert not np.array_equal(by_commit.start, by_pair.start)  # committing is another policy
