"""high_cores as the original's code ran it (issue 20, item 9).

The original documented high_cores as "the processor with the most free cores" but sorted the
candidate cores by minus the number of busy cores of their processor (ties: the lowest core
index, a stable sort). HeteroEnv follows the documentation by default; ``high_cores="most_busy"``
runs the original's code (the core key ``busiest_processor``), in both paths alike."""

from __future__ import annotations

import numpy as np
import pytest
from test_fastpath import env_episode, random_valid, same
from test_policies import hand_platform, hand_workload

from hdeeprm.common.errors import ConfigError
from hdeeprm.rl.env import EnvConfig, HeteroEnv
from hdeeprm.simulation.engine import Engine
from hdeeprm.simulation.keys import ALL_CORE_KEYS, effective_core_key
from hdeeprm.simulation.resources import FITS, ResourceModel

# node 0 (1000 MB): proc 0 = cores 0-1, proc 1 = cores 2-5; node 1 (100 GB): proc 2 = cores 6-9.
PLATFORM = [(0, 2, 10.0, 40.0, 10.0), (0, 4, 10.0, 40.0, 10.0), (1, 4, 10.0, 40.0, 10.0)]
MEMORY = [1000.0, 100_000.0]
# One job per decision, none ends before the last one starts; the first one's memory fits
# node 1 only, so that proc 2 is partly busy while procs 0 and 1 are free.
JOBS = [dict(subtime=0, res=1, delay=1000, mem=2000)] + [
    dict(subtime=t, res=res, delay=1000) for t, res in enumerate([1, 2, 1, 2], start=1)]

EXPECTED = {
    # Most free cores: proc 2 (memory); then proc 1 (4 free); then procs 1 and 2 tie at 3
    # (lowest core: 3), then proc 2 (3 > 2); then the three tie at 2 (core 0); then procs 1
    # and 2 tie at 2 (core 4), then proc 2 (2 > 1).
    "most_free": [[6], [2], [3, 7], [0], [4, 8]],
    # Most busy cores: proc 2 (memory); then proc 2 again: partly busy beats free (first_fit
    # would take core 0), until it is full; then procs 0 and 1 tie at 0 busy (lowest core: 0,
    # the smaller processor); then proc 0 (1 busy), then proc 1 (0 busy).
    "most_busy": [[6], [7], [8, 9], [0], [1, 2]],
}


def hand_env(fast, **config):
    return HeteroEnv(hand_platform(PLATFORM, MEMORY), hand_workload(JOBS), actions=(("first", "high_cores"),),
                     void=False, fast=fast, **config)


@pytest.mark.parametrize("fast", [False, True])
@pytest.mark.parametrize("high_cores", ["most_free", "most_busy"])
def test_high_cores_picks_the_free_or_the_busy_processor(high_cores, fast):
    env = hand_env(fast, **({} if high_cores == "most_free" else {"high_cores": high_cores}))
    assert env.uses_compiled_path == fast
    env.reset(seed=0)
    done = False
    while not done:
        _, _, terminated, truncated, _ = env.step(0)
        done = terminated or truncated
    assert [hosts.tolist() for hosts in env.result().alloc] == EXPECTED[high_cores]
    assert env.action_name(0) == "first:high_cores"  # the action keeps its name


def test_the_job_window_core_key_follows_the_setting():
    for high_cores in ("most_free", "most_busy"):
        env = HeteroEnv(hand_platform(PLATFORM, MEMORY), hand_workload(JOBS), action_space="job_window",
                        window_jobs=2, window_core_key="high_cores", high_cores=high_cores)
        env.reset(seed=0)
        done = False
        while not done:
            _, _, terminated, truncated, _ = env.step(0)
            done = terminated or truncated
        assert [hosts.tolist() for hosts in env.result().alloc] == EXPECTED[high_cores]


def original_pick(core_job, core_processor, core_node, node_free_kb, mem_kb, count):
    """The original's ResourceManager loop with its high_cores key, written as it was: per core,
    filter the free cores by node memory, stable-sort by minus the busy cores of their
    processor, take the first."""
    core_job, node_free_kb = core_job.copy(), node_free_kb.copy()
    picked = []
    for _ in range(count):
        candidates = [c for c in range(len(core_job)) if core_job[c] < 0 and node_free_kb[core_node[c]] >= mem_kb]
        if not candidates:
            return None
        busy = np.bincount(core_processor[core_job >= 0], minlength=core_processor.max() + 1)
        candidates.sort(key=lambda c: -busy[core_processor[c]])
        c = candidates[0]
        core_job[c] = 1 << 40
        node_free_kb[core_node[c]] -= mem_kb
        picked.append(c)
    return picked


@pytest.mark.parametrize("seed", range(20))
def test_busiest_processor_is_the_original_rule_ties_to_the_lowest_core(seed):
    rng = np.random.default_rng(seed)
    # Processors of different sizes on three nodes, so that equal busy counts are frequent.
    sizes = rng.integers(1, 5, size=6)
    processors = [(int(rng.integers(0, 3)), int(s), 10.0, 40.0, 10.0) for s in sizes]
    platform = hand_platform(processors, [3000.0, 2000.0, 1000.0])
    specs = [dict(res=int(rng.integers(1, 3)), delay=10, mem=float(rng.choice([0, 300, 700]))) for _ in range(40)]
    engine = Engine(platform, hand_workload(specs))
    resources = ResourceModel(engine)
    hierarchy = platform.hierarchy
    for job in range(len(specs)):
        key = "random" if job % 2 else "busiest_processor"
        before_job, before_kb = resources.core_job.copy(), resources.node_free_kb.copy()
        expected = original_pick(before_job, hierarchy.core_processor, hierarchy.core_node, before_kb,
                                 int(resources.job_mem_kb[job]), int(engine.jobs.res[job]))
        status, hosts = resources.allocate(job, key, rng)
        resources.check_invariants()
        if key == "busiest_processor":
            assert (hosts.tolist() if status == FITS else None) == expected, job
        if resources.nb_free < 3:  # free the job on the lowest busy core
            busy = np.flatnonzero(resources.core_job >= 0)
            done = int(resources.core_job[busy[0]])
            resources.release(done, np.flatnonzero(resources.core_job == done))


def test_the_setting_names_the_key_that_runs():
    assert "busiest_processor" in ALL_CORE_KEYS
    assert effective_core_key("high_cores") == "high_cores"
    assert effective_core_key("high_cores", "most_busy") == "busiest_processor"
    assert effective_core_key("high_gflops", "most_busy") == "high_gflops"
    assert EnvConfig().high_cores == "most_free"
    config = EnvConfig(high_cores="most_busy")
    assert config.core_key("high_cores") == "busiest_processor" and config.core_key("low_power") == "low_power"


def test_an_original_options_file_sets_it_in_its_env_block():
    config = EnvConfig.from_options({"objective": "makespan", "queue_sensitivity": 0.05, "high_cores": "most_busy"})
    assert config.high_cores == "most_busy"
    assert EnvConfig.from_options({"objective": "makespan"}).high_cores == "most_free"


def test_an_experiment_file_passes_it_to_the_env():
    from hdeeprm.rl.experiment import ExperimentConfig

    assert ExperimentConfig(high_cores="most_busy").env_config().high_cores == "most_busy"
    with pytest.raises(ConfigError, match="^high_cores 'fewest'"):
        ExperimentConfig(high_cores="fewest")


@pytest.mark.parametrize("value", ["most-busy", "busiest_processor", 1, None])
def test_a_bad_value_is_one_line_naming_the_field(value):
    with pytest.raises(ConfigError) as error:
        EnvConfig(high_cores=value)
    message = str(error.value)
    assert message.startswith("high_cores ") and "expected one of most_free, most_busy" in message
    assert "\n" not in message
    with pytest.raises(ConfigError, match="high_cores"):
        EnvConfig.from_options({"objective": "makespan", "high_cores": value})


@pytest.mark.parametrize("observation", ["normal", "small"])
def test_fast_and_reference_paths_are_identical_with_the_setting(observation, tmp_path):
    config = dict(observation=observation, high_cores="most_busy", nb_jobs=200)
    reference, steps_ref = env_episode(False, random_valid, 5, **config)
    fast, steps_fast = env_episode(True, random_valid, 5, **config)
    assert reference._fast is None and fast._fast is not None
    assert len(steps_ref) == len(steps_fast) > 2
    for i, (a, b) in enumerate(zip(steps_ref, steps_fast)):
        assert same(a, b), f"step {i} differs"
    assert steps_ref[-1][2]  # terminated: compare the allocations too
    ref_alloc, fast_alloc = reference.result().alloc, fast.result().alloc
    assert len(ref_alloc) == len(fast_alloc)
    assert all(np.array_equal(a, b) for a, b in zip(ref_alloc, fast_alloc))
    # And the setting changes something on this trace: the default's allocations differ.
    default, _ = env_episode(False, random_valid, 5, observation=observation, nb_jobs=200)
    assert any(not np.array_equal(a, b) for a, b in zip(ref_alloc, default.result().alloc))
