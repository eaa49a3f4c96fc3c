"""HeteroEnv and Gymnasium's conventions (issue 19): make() without arguments, bundled trace
names, render modes, the env checker, action masks through wrappers and vector envs."""

from __future__ import annotations

import re
import shutil
import warnings
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import hdeeprm  # noqa: F401  (registers hdeeprm/HeteroEnv-v0)
from hdeeprm.common.bundled import TRACES_DIR, bundled_trace_names, locate
from hdeeprm.common.errors import ConfigError, WorkloadError
from hdeeprm.inputs.platform.model import Hierarchy
from hdeeprm.rl import experiment
from hdeeprm.rl.env import DEFAULT_PLATFORM, DEFAULT_WORKLOAD, HeteroEnv
from hdeeprm.rl.render import (
    BUSY,
    CORE_COLOURS,
    IDLE_PROCESSOR,
    MAX_NODE_LINES,
    THROTTLED,
    Snapshot,
    render_ansi,
    render_rgb,
)

ENV_ID = "hdeeprm/HeteroEnv-v0"
GAIA_TRACE = Path(__file__).parent / "data" / "traces" / "gaia-2014-head.swf.gz"


def masked_random(env, info) -> int:
    """A random action among those the mask allows, from the env's own generator."""
    return int(env.unwrapped.np_random.choice(np.flatnonzero(info["action_mask"])))


# ---------------------------------------------------------------- 1. make() without arguments


def test_make_without_arguments_runs_the_quickstart_to_the_end():
    env = gym.make(ENV_ID)
    base = env.unwrapped
    assert Path(base.platform.source).name == "quickstart.json"
    # The whole bundled head of the KTH trace: the same jobs as loading the file itself.
    direct = HeteroEnv(DEFAULT_PLATFORM, TRACES_DIR / DEFAULT_WORKLOAD)
    assert base.workload.job_ids == direct.workload.job_ids
    np.testing.assert_array_equal(base.workload.subtime, direct.workload.subtime)
    assert len(base.workload) == 1000
    obs, info = env.reset(seed=0)
    steps, terminated, truncated = 0, False, False
    while not (terminated or truncated):
        obs, reward, terminated, truncated, info = env.step(masked_random(env, info))
        assert env.observation_space.contains(obs)
        steps += 1
    assert terminated and not truncated and steps > 100
    assert info["queue_length"] == 0 and info["running_jobs"] == 0
    result = base.result()  # only an episode that ran to its end has one
    assert len(result.job_order) == 1000  # every job completed or rejected
    env.close()


@pytest.mark.parametrize("first", ["hdeeprm", "gymnasium"])
def test_the_env_id_is_registered_whichever_is_imported_first(first):
    """``import hdeeprm`` does not import gymnasium (the command line does not need it), and
    gymnasium.make finds the environment whether gymnasium comes first or later."""
    import subprocess
    import sys

    second = "gymnasium" if first == "hdeeprm" else "hdeeprm"
    code = (f"import sys, {first}; loaded = 'gymnasium' in sys.modules; import {second}, gymnasium; "
            "print(loaded, gymnasium.spec('hdeeprm/HeteroEnv-v0').entry_point)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == [str(first == "gymnasium"), "hdeeprm.rl.env:HeteroEnv"]


def test_positional_platform_and_workload_still_work():
    env = HeteroEnv("gaia", GAIA_TRACE, None, nb_jobs=30)
    assert Path(env.platform.source).name == "gaia.json" and len(env.workload) == 30


# ---------------------------------------------------------------- 2. bundled trace names


def test_experiments_and_the_env_share_one_location_rule():
    assert experiment.locate is locate


@pytest.mark.parametrize("name", ["kth-sp2-head.swf.gz", "kth-sp2-1996-2.1-cln.swf.gz"])
def test_bundled_trace_names_are_accepted(name, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # nowhere near the traces: found by name only
    env = HeteroEnv("quickstart", name, nb_jobs=40)
    direct = HeteroEnv("quickstart", TRACES_DIR / name, nb_jobs=40)
    assert env.workload.job_ids == direct.workload.job_ids
    np.testing.assert_array_equal(env.workload.req_time, direct.workload.req_time)
    np.testing.assert_array_equal(env.workload.res, direct.workload.res)
    # ... as an experiment file names it.
    (tmp_path / "exp.json").write_text(f'{{"workload": "{name}", "nb_jobs": 40, "episode_jobs": 10}}')
    assert experiment.ExperimentConfig.load(tmp_path / "exp.json").workload == str(TRACES_DIR / name)


def test_a_file_on_disk_wins_over_a_bundled_name(tmp_path, monkeypatch):
    shutil.copy(GAIA_TRACE, tmp_path / DEFAULT_WORKLOAD)
    monkeypatch.chdir(tmp_path)
    env = HeteroEnv(workload=DEFAULT_WORKLOAD, nb_jobs=20)
    gaia = HeteroEnv(workload=GAIA_TRACE, nb_jobs=20)
    bundled = HeteroEnv(workload=TRACES_DIR / DEFAULT_WORKLOAD, nb_jobs=20)
    np.testing.assert_array_equal(env.workload.subtime, gaia.workload.subtime)
    assert not np.array_equal(env.workload.req_time, bundled.workload.req_time)


def test_an_unknown_trace_name_lists_the_bundled_ones(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(WorkloadError) as error:
        HeteroEnv(workload="kth-sp2.swf.gz")
    message = str(error.value)
    assert "\n" not in message and message.startswith("kth-sp2.swf.gz: no such file")
    assert bundled_trace_names() == ["gaia-2014-head.swf.gz", "kth-sp2-1996-2.1-cln.swf.gz", "kth-sp2-head.swf.gz",
                                     "sdsc-sp2-1998-4.2-cln.swf.gz"]
    for name in bundled_trace_names():
        assert name in message
    with pytest.raises(ConfigError, match=r"^workload 42: expected a Workload, WorkloadArrays, a path"):
        HeteroEnv(workload=42)


# ---------------------------------------------------------------- 3. render


def test_unknown_render_mode_is_refused():
    with pytest.raises(ConfigError, match=r"^render_mode 'human': expected None or one of ansi, rgb_array$"):
        HeteroEnv(render_mode="human")
    env = HeteroEnv(episode_jobs=20)
    env.reset(seed=0)
    assert env.render() is None  # no render mode: nothing to render, as Gymnasium expects


def _header(text: str) -> dict[str, float]:
    match = re.match(r"t = ([0-9.]+) s  step (\d+)  waiting (\d+)  running (\d+)  completed (\d+)", text)
    assert match, text
    return dict(zip(("time", "step", "waiting", "running", "completed"), map(float, match.groups())))


def test_ansi_render_follows_the_episode():
    env = gym.make(ENV_ID, render_mode="ansi", episode_jobs=80)
    obs, info = env.reset(seed=1)
    texts, busy_seen = [], False
    done = False
    while not done:
        text = env.render()
        assert isinstance(text, str) and len(text.splitlines()) <= 3 + 5 + 6 + 1
        head = _header(text)
        assert head["time"] == pytest.approx(info["time"], abs=0.05)
        assert head["waiting"] == info["queue_length"] and head["running"] == info["running_jobs"]
        assert head["completed"] == info["completed_jobs"]
        # The first waiting jobs: id, cores, requested time (which ones: the next test).
        listed = re.findall(r"^  \S+  \d+ cores?  (?:\d+ s|unknown)$", text, re.M)
        assert len(listed) == min(5, info["queue_length"])
        # One line per node of the quick-start platform, its busy cores counted.
        nodes = re.findall(r"^node +\d+ .* +(\d+)/(\d+)  ", text, re.M)
        assert len(nodes) == 6 and sum(int(total) for _, total in nodes) == 88
        busy = sum(int(b) for b, _ in nodes)
        assert f"cores {busy}/88 busy" in text
        busy_seen |= busy > 0
        texts.append(text)
        obs, reward, terminated, truncated, info = env.step(masked_random(env, info))
        done = terminated or truncated
    final = env.render()
    assert "(episode over)" in final and _header(final)["waiting"] == 0
    assert busy_seen and len(set(texts)) > len(texts) // 2  # it moves with the episode


@pytest.mark.parametrize("render_mode", ["ansi", "rgb_array"])
def test_render_is_the_same_on_the_compiled_and_the_reference_path(render_mode):
    """The compiled steps' state, read without syncing the engine, renders exactly as the
    Python reference's at every decision."""
    envs = [HeteroEnv(episode_jobs=60, render_mode=render_mode, fast=fast) for fast in (None, False)]
    assert envs[0].uses_compiled_path and not envs[1].uses_compiled_path
    infos = [env.reset(seed=4)[1] for env in envs]
    done, steps = False, 0
    while not done:
        frames = [env.render() for env in envs]
        if render_mode == "ansi":
            assert frames[0] == frames[1]
            reference = envs[1]
            jobs = reference.engine.jobs
            listed = re.findall(r"^  (\S+)  \d+ cores?  ", frames[1], re.M)
            assert listed == [jobs.job_ids[j] for j in reference.scheduler.queue[:5]]
        else:
            np.testing.assert_array_equal(frames[0], frames[1])
        action = masked_random(envs[1], infos[1])
        results = [env.step(action) for env in envs]
        infos = [r[4] for r in results]
        done = results[1][2] or results[1][3]
        assert done == (results[0][2] or results[0][3])
        steps += 1
    assert steps > 20


def test_rgb_array_is_a_small_image_of_the_cores():
    env = gym.make(ENV_ID, render_mode="rgb_array", episode_jobs=60)
    obs, info = env.reset(seed=2)
    image = env.render()
    assert image.dtype == np.uint8 and image.ndim == 3 and image.shape[2] == 3
    assert image.shape[0] % 6 == 0 and image.shape[0] <= 256 and image.shape[1] <= 256  # 6 nodes, a row each

    def busy_pixels(img):
        return int(np.all(img == CORE_COLOURS[BUSY], axis=2).sum() + np.all(img == CORE_COLOURS[THROTTLED], axis=2).sum())

    seen = []
    for _ in range(15):
        obs, reward, terminated, truncated, info = env.step(masked_random(env, info))
        seen.append(busy_pixels(env.render()))
        if terminated or truncated:
            break
    cell = image.shape[0] // 6
    busy_cores = np.count_nonzero(env.unwrapped._snapshot().core_job >= 0)
    assert seen[-1] == busy_cores * cell * cell
    assert max(seen) > 0


def test_render_before_reset_and_on_the_job_window_action_space():
    env = HeteroEnv(render_mode="ansi", episode_jobs=30, action_space="job_window")
    assert env.render().startswith("no episode yet: call reset()\ncores 0/88 busy")
    obs, info = env.reset(seed=0)
    for _ in range(5):
        obs, reward, terminated, truncated, info = env.step(masked_random(env, info))
    head = _header(env.render())
    assert head["step"] == 5 and head["time"] == pytest.approx(info["time"], abs=0.05)
    assert head["waiting"] == info["queue_length"]


def _big_hierarchy(nodes_per_type: int = 600) -> Hierarchy:
    # Two node types, 2 processors of 2 cores per node: 1,200 nodes, 4,800 cores.
    nb_nodes = 2 * nodes_per_type
    proc_node = np.repeat(np.arange(nb_nodes), 2)
    core_proc = np.repeat(np.arange(2 * nb_nodes), 2)
    return Hierarchy(core_processor=core_proc, core_node=proc_node[core_proc], processor_node=proc_node,
                     processor_mem_bw_gbs=np.ones(2 * nb_nodes), processor_gflops_per_core=np.ones(2 * nb_nodes),
                     processor_watts_per_core=np.ones(2 * nb_nodes), processor_type=("p",) * (2 * nb_nodes),
                     node_memory_mb=np.ones(nb_nodes), node_type=("big",) * nodes_per_type + ("small",) * nodes_per_type,
                     node_cluster=np.zeros(nb_nodes), reference_speed_gflops=1.0)


def test_large_platforms_render_a_summary_not_thousands_of_lines():
    h = _big_hierarchy()
    m = h.nb_cores
    core_job = np.full(m, -1)
    core_job[:100] = 7  # 100 busy cores, all on "big" nodes
    pstate = np.full(m, IDLE_PROCESSOR)
    pstate[:100] = 0
    pstate[:10] = 1  # 10 of them throttled
    snap = Snapshot(5.0, 3, np.arange(0), 1, 0, core_job, pstate, False)
    text = render_ansi(snap, h, None)
    lines = text.splitlines()
    assert len(lines) <= 2 + MAX_NODE_LINES + 1
    assert f"cores 100/{m} busy" in text
    assert "big: 600 nodes, 100/2400 cores busy, 10 throttled" in lines
    assert "small: 600 nodes, 0/2400 cores busy, 0 throttled" in lines
    # More nodes than image rows: a square grid of cores, a 3 x 3 pixel cell each (70 x 69 cells).
    image = render_rgb(snap, h)
    assert image.dtype == np.uint8 and image.shape == (69 * 3, 70 * 3, 3)
    assert np.all(image == CORE_COLOURS[BUSY], axis=2).sum() == 90 * 9
    assert np.all(image == CORE_COLOURS[THROTTLED], axis=2).sum() == 10 * 9
    # Beyond 512 x 512 cores, a pixel stands for several cores (the busiest of them).
    many = 600_000
    huge = Snapshot(0.0, 0, np.arange(0), 1, 0, np.r_[np.zeros(4, int), np.full(many - 4, -1)],
                    np.r_[np.zeros(4, int), np.full(many - 4, IDLE_PROCESSOR)], False)
    grid = np.arange(many)
    image = render_rgb(huge, Hierarchy(core_processor=grid, core_node=grid, processor_node=grid,
                                       processor_mem_bw_gbs=np.ones(many), processor_gflops_per_core=np.ones(many),
                                       processor_watts_per_core=np.ones(many), processor_type=("p",) * many,
                                       node_memory_mb=np.ones(many), node_type=("n",) * many,
                                       node_cluster=np.zeros(many), reference_speed_gflops=1.0))
    assert max(image.shape[:2]) <= 512 and np.all(image == CORE_COLOURS[BUSY], axis=2).sum() == 2


# ---------------------------------------------------------------- Gymnasium's env checker


def test_env_checker_passes_on_the_made_env_with_its_render_modes():
    env = gym.make(ENV_ID, episode_jobs=40)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        check_env(env)  # every declared render mode too: it remakes the env from its spec
    # The checker's one remark on a made env is that wrappers sit in front of it (it checks
    # through them); anything else it says is a failure of the conventions.
    remarks = [str(w.message) for w in caught if "different from the unwrapped" not in str(w.message)]
    assert remarks == []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        check_env(env.unwrapped)
    assert [str(w.message) for w in caught] == []


# ---------------------------------------------------------------- 4. action masks


def test_masks_through_the_wrappers_of_make():
    env = gym.make(ENV_ID, episode_jobs=60)
    assert not isinstance(env, HeteroEnv)  # OrderEnforcing(PassiveEnvChecker(HeteroEnv))
    obs, info = env.reset(seed=5)
    partial = False
    for _ in range(40):
        via_attr = env.get_wrapper_attr("action_masks")()
        np.testing.assert_array_equal(via_attr, info["action_mask"])
        np.testing.assert_array_equal(env.unwrapped.action_masks(), info["action_mask"])
        partial |= not via_attr.all()
        obs, reward, terminated, truncated, info = env.step(masked_random(env, info))
        if terminated or truncated:
            break
    assert partial  # the masks did rule actions out at some decisions


def _make_env():

    return gym.make(ENV_ID, episode_jobs=40)


@pytest.mark.parametrize("vector", [gym.vector.SyncVectorEnv, gym.vector.AsyncVectorEnv])
def test_masks_of_vector_envs_are_stacked_and_callable(vector):
    envs = vector([_make_env, _make_env])
    try:
        obs, info = envs.reset(seed=[1, 2])
        for _ in range(10):
            masks = np.stack(envs.call("action_masks"))
            assert masks.shape == (2, 37) and masks.dtype == bool
            np.testing.assert_array_equal(info["action_mask"], masks)
            actions = np.array([int(np.flatnonzero(row)[0]) for row in masks])
            obs, reward, terminated, truncated, info = envs.step(actions)
    finally:
        envs.close()


def test_sb3_contrib_finds_the_masks():
    pytest.importorskip("sb3_contrib")
    from sb3_contrib.common.maskable.utils import get_action_masks, is_masking_supported
    from stable_baselines3.common.vec_env import DummyVecEnv

    vec = DummyVecEnv([_make_env])
    vec.seed(3)
    vec.reset()
    assert is_masking_supported(vec)
    masks = get_action_masks(vec)
    np.testing.assert_array_equal(masks[0], vec.envs[0].unwrapped.action_masks())
