"""Conservative backfilling beside EASY: hand-computed cases where the two differ, memory,
the job key's queue order, jobs without walltime, every key, under the agent, and the CLI.
Every run here takes both paths, the reference and the compiled one, which must agree
(tests/test_fastpath.py compares them in full on larger runs)."""

from __future__ import annotations

import json
from importlib import resources as package_files

import numpy as np
import pytest
from test_policies import hand_platform, hand_workload

from hdeeprm.cli.main import main
from hdeeprm.common.errors import ConfigError
from hdeeprm.rl.env import EnvConfig, HeteroEnv
from hdeeprm.simulation.engine import REJECTED_STATE, Engine
from hdeeprm.simulation.keys import ALL_JOB_KEYS
from hdeeprm.simulation.policies import PolicyConfig, run_policy
from hdeeprm.simulation.resources import ResourceModel

ONE_NODE = [(0, 4, 1.0, 100.0, 1.0)]  # one node, one processor of 4 cores, memory to spare
TWO_NODES = [(0, 2, 1.0, 100.0, 1.0), (1, 2, 1.0, 100.0, 1.0)]  # 2 nodes x 2 cores, 100 MB each


def run(platform, workload, policy, backfill=None, seed=0):
    """The policy on the reference engine and on the compiled path: the same starts and cores.
    Returns the reference's engine and result."""
    runs = []
    for fast in (False, True):
        engine = Engine(platform, workload)
        runs.append((engine, run_policy(engine, PolicyConfig.parse(policy, backfill), rng=np.random.default_rng(seed),
                                        fast=fast)))
    (engine, reference), (_, compiled) = runs
    np.testing.assert_array_equal(compiled.start, reference.start)  # nan (never started) too
    assert [None if a is None else np.asarray(a).tolist() for a in compiled.alloc] == \
        [None if a is None else np.asarray(a).tolist() for a in reference.alloc]
    return engine, reference


def job(subtime, res, delay, walltime="same", **extra):
    """A delay job whose walltime is its delay unless told (None: no walltime)."""
    return dict(subtime=subtime, res=res, delay=delay, walltime=delay if walltime == "same" else walltime, **extra)


def assert_valid(engine, result):
    """No core serves two jobs at once and no node gives more memory than it has."""
    books = ResourceModel(engine)  # the platform's static arrays
    start, finish = result.start, result.finish
    ran = [j for j in range(len(start)) if start[j] >= 0 and len(result.alloc[j])]
    for j in ran:
        t = start[j]
        active = [k for k in ran if start[k] <= t < finish[k]]
        cores = np.concatenate([np.asarray(result.alloc[k]) for k in active])
        assert len(np.unique(cores)) == len(cores), f"a core double-booked at t={t}"
        used = np.zeros(len(books.node_memory_kb), np.int64)
        for k in active:
            np.add.at(used, books.core_node[np.asarray(result.alloc[k])], books.job_mem_kb[k])
        assert (used <= books.node_memory_kb).all(), f"node memory exceeded at t={t}"


# -- Hand-computed cases --------------------------------------------------------------------

# 4 cores. A (job 0: 2 cores, 10 s) runs from t=0. At t=1: B (3 cores, 10 s), C (4 cores,
# 20 s), D (1 core, 30 s); every walltime is the job's run time.
# EASY protects only B: B's reservation is t=10 with 4 - 3 = 1 spare core, so D (1 core, ends
# at 31 > 10) starts at once on it. B starts at 10, ends at 20; C (4 cores) then waits for D
# until 31.  EASY: A 0, B 10, C 31, D 1.
# Conservative: B is reserved [10, 20) on 3 cores, C [20, 40) on all 4; D would hold a core
# over [1, 31), through C's reservation: it is reserved [40, 70) instead. B starts at 10, C
# at 20, D at 40.  Conservative: A 0, B 10, C 20, D 40.
PROTECTS_ALL = [job(0, 2, 10), job(1, 3, 10), job(1, 4, 20), job(1, 1, 30)]


def test_conservative_protects_every_waiting_job_easy_only_the_blocked_one():
    platform = hand_platform(ONE_NODE, [1000.0])
    workload = hand_workload(PROTECTS_ALL)
    engine, result = run(platform, workload, "first:first_fit", backfill="easy")
    assert result.start.tolist() == [0.0, 10.0, 31.0, 1.0]
    engine, result = run(platform, workload, "first:first_fit", backfill="conservative")
    assert result.start.tolist() == [0.0, 10.0, 20.0, 40.0]
    # Without backfilling, the same as conservative here (nothing could be backfilled).
    engine, result = run(platform, workload, "first:first_fit")
    assert result.start.tolist() == [0.0, 10.0, 20.0, 40.0]


def test_a_job_that_ends_before_the_reservations_is_backfilled_by_both():
    # 4 cores: job 0 takes 3 until 10; job 1 (2 cores) is reserved [10, 20); job 2 (1 core,
    # 10 s) fits in [0, 10) on the fourth core, before the reservation: both start it at t=0.
    platform = hand_platform(ONE_NODE, [1000.0])
    workload = hand_workload([job(0, 3, 10), job(0, 2, 10), job(0, 1, 10)])
    for backfill in ("easy", "conservative"):
        engine, result = run(platform, workload, "first:first_fit", backfill=backfill)
        assert result.start.tolist() == [0.0, 10.0, 0.0]


def test_reservations_count_node_memory():
    # 2 nodes x 2 cores, 100 MB each. A (job 0: 2 cores x 50 MB, 10 s) fills node 0 from t=0.
    # t=1: B (3 cores x 10 MB, 10 s), C (2 cores x 60 MB, 10 s), D (1 core x 50 MB, 100 s).
    # Conservative: B is reserved [10, 20): nodes 0 and 1 give 2 + 1 cores (lowest node ids
    # first). C needs a node with 60 MB free per core: at 10 only node 1's last core (90 MB
    # left), so C is reserved [20, 30) on one core of each node. D fits now by cores and by
    # memory on node 1 (100 MB), but over [1, 101) it would leave node 1 with 40 MB during C's
    # reservation, one core short for C: counted in cores alone it would fit (node 1 keeps a
    # free core), counted with memory it does not. D is reserved at 30.
    # Timeline: B starts at 10 (cores 0, 1, 2), C at 20 (cores 0 and 2: node 0 keeps 40 MB,
    # too little for D), D at 30.  Conservative: 0, 10, 20, 30.
    # EASY protects only B: D fits beside B's reservation (node 1 keeps a core and 50 MB for
    # B's third 10 MB core) and starts at 1; it then holds 50 MB of node 1 until 101, and C
    # (2 x 60 MB) cannot start before: EASY 0, 10, 101, 1.
    platform = hand_platform(TWO_NODES, [100.0, 100.0])
    workload = hand_workload([job(0, 2, 10, mem=50), job(1, 3, 10, mem=10), job(1, 2, 10, mem=60),
                              job(1, 1, 100, mem=50)])
    engine, result = run(platform, workload, "first:first_fit", backfill="conservative")
    assert result.start.tolist() == [0.0, 10.0, 20.0, 30.0]
    assert_valid(engine, result)
    engine, result = run(platform, workload, "first:first_fit", backfill="easy")
    assert result.start.tolist() == [0.0, 10.0, 101.0, 1.0]


def test_a_job_that_fits_by_cores_but_not_by_node_memory_waits():
    # 2 nodes x 2 cores, 100 MB each. A (2 x 50 MB, 10 s) fills node 0's memory from t=0.
    # t=1: B (2 x 60 MB) is blocked by memory (node 1 holds one 60 MB core); its reservation is
    # [10, 20), one core on each node (each holds one 60 MB core). t=2: C (1 x 50 MB, 100 s)
    # fits now on node 1 by cores and memory, and by cores alone also beside B's reservation
    # (4 cores, B takes 2), but node 1 would keep 40 MB when B needs 60 there: reserved at 20.
    # C's reservation [20, 120) is one core of node 0. t=3: D (1 x 10 MB, 100 s) on node 1
    # leaves it a core and 90 MB, enough for B's 60 MB core: it starts at once (core 2). B
    # starts at 10 on cores 0 and 3, C at 20.
    platform = hand_platform(TWO_NODES, [100.0, 100.0])
    workload = hand_workload([job(0, 2, 10, mem=50), job(1, 2, 10, mem=60), job(2, 1, 100, mem=50),
                              job(3, 1, 100, mem=10)])
    engine, result = run(platform, workload, "first:first_fit", backfill="conservative")
    assert result.start.tolist() == [0.0, 10.0, 20.0, 3.0]
    assert np.asarray(result.alloc[1]).tolist() == [0, 3] and np.asarray(result.alloc[3]).tolist() == [2]
    assert_valid(engine, result)


def test_a_start_on_booked_cores_replans_the_reservations_before_it(monkeypatch):
    # 2 nodes x 3 cores (node 0: cores 0-2, node 1: cores 3-5). At t=0, first_fit puts A0 (2
    # cores, 10 s) on 0-1, A1 (1 core, 1 s) on 2, A2 (2 cores, 50 s) on 3-4. At t=2 (A1 gone;
    # cores 2 and 5 free) B (3 cores, 10 s) and C (1 core, 100 s) arrive.
    # B's reservation is [10, 20): at 10 node 0 frees 3 cores, node 1 has 1; it books node 0's
    # 3 (lowest node ids first). C fits now for 100 s on node 1's free core, but first_fit
    # gives it core 2, on node 0, which B's booking holds from 10: the plan is rebuilt with C
    # on core 2, and B is re-reserved at 10 on node 0's 2 cores and node 1's one: not later,
    # so C starts at 2. B starts at 10 on cores 0, 1 and 5. (EASY starts C on B's spare core
    # too: the same schedule.)
    from hdeeprm.simulation.policies import QueueScheduler

    replans = []
    original = QueueScheduler._replan
    monkeypatch.setattr(QueueScheduler, "_replan", lambda self, reserved: replans.append(reserved)
                        or original(self, reserved))
    platform = hand_platform([(0, 3, 1.0, 100.0, 1.0), (1, 3, 1.0, 100.0, 1.0)], [1000.0, 1000.0])
    workload = hand_workload([job(0, 2, 10), job(0, 1, 1), job(0, 2, 50), job(2, 3, 10), job(2, 1, 100)])
    engine, result = run(platform, workload, "first:first_fit", backfill="conservative")
    assert result.start.tolist() == [0.0, 0.0, 0.0, 10.0, 2.0]
    assert [np.asarray(a).tolist() for a in result.alloc[3:]] == [[0, 1, 5], [2]]
    assert replans == [[(3, 10.0)]]


def test_the_job_key_orders_the_reservations():
    # 4 cores. A (2 cores, 10 s) from t=0; at t=1 B (4 cores, 50 s), C (3 cores, 5 s), D (1
    # core, 30 s).
    # first (submission order B, C, D): B reserved [10, 60), C [60, 65) on 3 cores, D [60, 90)
    # on the fourth: nothing starts at 1; B at 10; C and D at 60.
    # shortest (C 5 s, D 30 s, B 50 s): C reserved [10, 15) on 3 cores; D over [1, 31) keeps
    # one core through C's reservation (2 - 1 free before 10, 1 free during C): it starts at
    # once; B is reserved at 31, when D ends. C starts at 10, B at 31.
    platform = hand_platform(ONE_NODE, [1000.0])
    workload = hand_workload([job(0, 2, 10), job(1, 4, 50), job(1, 3, 5), job(1, 1, 30)])
    engine, result = run(platform, workload, "first:first_fit", backfill="conservative")
    assert result.start.tolist() == [0.0, 10.0, 60.0, 60.0]
    engine, result = run(platform, workload, "shortest:first_fit", backfill="conservative")
    assert result.start.tolist() == [0.0, 31.0, 10.0, 1.0]


def test_jobs_without_walltime_follow_easys_rule():
    platform = hand_platform(ONE_NODE, [1000.0])
    # A running job without walltime never gives its cores back in the plan: B (4 cores) has
    # no reservation, like EASY's head without a shadow time, and C (1 core) starts at once.
    # A ends at 10; B waits for C until 101.
    workload = hand_workload([job(0, 2, 10, walltime=None), job(1, 4, 5), job(1, 1, 100)])
    for backfill in ("easy", "conservative"):
        engine, result = run(platform, workload, "first:first_fit", backfill=backfill)
        assert result.start.tolist() == [0.0, 101.0, 1.0]
    # A waiting job without walltime may start now only on cores no reservation ever needs:
    # B (4 cores) is reserved [10, 20); C (1 core, no walltime) would hold a core for ever,
    # through B's reservation: it waits until B ends.
    workload = hand_workload([job(0, 2, 10), job(1, 4, 10), job(1, 1, 5, walltime=None)])
    for backfill in ("easy", "conservative"):
        engine, result = run(platform, workload, "first:first_fit", backfill=backfill)
        assert result.start.tolist() == [0.0, 10.0, 20.0]


def random_workload(nb_jobs=40, seed=3):
    rng = np.random.default_rng(seed)
    specs = []
    for i in range(nb_jobs):
        delay = float(rng.integers(1, 60))
        walltime = [delay, delay * 2, None][int(rng.integers(3))] if i % 7 else None
        specs.append(job(float(rng.integers(0, 200)), int(rng.integers(1, 5)), delay, walltime=walltime,
                         mem=float(rng.choice([0, 10, 40, 60])), req_time=walltime or delay))
    specs.sort(key=lambda s: s["subtime"])
    return hand_workload(specs)


@pytest.mark.parametrize("job_key", ALL_JOB_KEYS)
def test_every_job_key_and_core_key_gives_a_valid_schedule(job_key):
    platform = hand_platform([(0, 2, 2.0, 100.0, 1.0), (0, 2, 1.0, 100.0, 1.0), (1, 2, 1.0, 100.0, 1.0)],
                             [120.0, 100.0])
    workload = random_workload()
    for core_key in ("first_fit", "high_gflops", "high_mem", "random"):
        engine, result = run(platform, workload, f"{job_key}:{core_key}", backfill="conservative", seed=2)
        # Every job runs but those that never fit (rejected at submission), none stays waiting.
        admitted = result.final_state != REJECTED_STATE
        assert admitted.sum() >= 35 and (result.start[admitted] >= 0).all()
        assert_valid(engine, result)


def test_conservative_runs_on_the_compiled_path_too():
    from hdeeprm.simulation.fastsim.results import Allocations

    platform = hand_platform(ONE_NODE, [1000.0])
    workload = hand_workload(PROTECTS_ALL)
    # fast=None (the default) takes the compiled path, with the same result as fast=False.
    a = run_policy(Engine(platform, workload), PolicyConfig(backfill="conservative"))
    b = run_policy(Engine(platform, workload), PolicyConfig(backfill="conservative"), fast=False)
    c = run_policy(Engine(platform, workload), PolicyConfig(backfill="conservative"), fast=True)
    assert isinstance(a.alloc, Allocations) and isinstance(b.alloc, list)
    assert a.start.tolist() == b.start.tolist() == c.start.tolist() == [0.0, 10.0, 20.0, 40.0]
    assert HeteroEnv(platform, workload, backfill="conservative", fast=True).uses_compiled_path
    assert not HeteroEnv(platform, workload, backfill="conservative", fast=False).uses_compiled_path


def test_bad_backfill_values_name_the_allowed_ones(tmp_path, capsys):
    for make in (lambda: PolicyConfig(backfill="lazy"), lambda: EnvConfig(backfill="lazy")):
        with pytest.raises(ConfigError) as error:
            make()
        message = str(error.value)
        assert "\n" not in message and "'easy'" in message and "'conservative'" in message
    with pytest.raises(SystemExit):
        main(["simulate", "--platform", "gaia", "--workload", "none.swf", "--backfill", "lazy"])
    assert "choose from 'easy', 'conservative'" in capsys.readouterr().err


# -- Under the agent ------------------------------------------------------------------------

def play(env, choose, seed=0):
    obs, info = env.reset(seed=seed)
    done = False
    while not done:
        if env.scheduler is not None:
            env.scheduler.resources.check_invariants()
        obs, reward, terminated, truncated, info = env.step(choose(env, info["action_mask"]))
        done = terminated or truncated
    return env.result()


@pytest.mark.parametrize("space", ["pairs", "job_window"])
def test_under_the_agent_conservative_differs_from_easy_where_it_should(space):
    # The first hand case, the agent taking FCFS on the lowest cores (the only pair, or the
    # window's first job): the same starts as run_policy's.
    platform = hand_platform(ONE_NODE, [1000.0])
    workload = hand_workload(PROTECTS_ALL)
    fields = dict(action_space="job_window", window_core_key="first_fit") if space == "job_window" else \
        dict(actions=(("first", "first_fit"),), void=False)
    # The pairs run on the compiled steps unless fast=False; job_window on the Python ones.
    for fast in ((False, True) if space == "pairs" else (None,)):
        starts = {}
        for backfill in ("easy", "conservative"):
            env = HeteroEnv(platform, workload, observation="minimal", backfill=backfill, fast=fast, **fields)
            starts[backfill] = play(env, lambda env, mask: 0).start.tolist()
        assert starts == {"easy": [0.0, 10.0, 31.0, 1.0], "conservative": [0.0, 10.0, 20.0, 40.0]}


@pytest.mark.parametrize("space", ["pairs", "job_window"])
def test_a_seeded_episode_under_the_agent_gives_a_valid_schedule(space):
    trace = str(package_files.files("hdeeprm") / "data" / "traces" / "kth-sp2-head.swf.gz")
    env = HeteroEnv("quickstart", trace, nb_jobs=200, episode_jobs=40, action_space=space, backfill="conservative")
    assert env.uses_compiled_path == (space == "pairs")  # the compiled steps run the pairs only

    def random_masked(env, mask):
        return int(env.np_random.choice(np.flatnonzero(mask)))

    first = play(env, random_masked, seed=4)
    assert_valid(env.engine, first)
    assert (first.start >= 0).sum() >= 40
    again = play(env, random_masked, seed=4)
    assert again.start.tolist() == first.start.tolist()


# -- From the command line ------------------------------------------------------------------

def test_simulate_with_conservative_backfilling_writes_its_outputs(tmp_path, capsys):
    traces = package_files.files("hdeeprm") / "data" / "traces"
    out = tmp_path / "run"
    assert main(["simulate", "--platform", "das2", "--workload", str(traces / "kth-sp2-head.swf.gz"),
                 "--nb-jobs", "300", "--backfill", "conservative", "--out", str(out)]) == 0
    assert "first:first_fit + conservative backfilling" in capsys.readouterr().out
    config = json.loads((out / "run_config.json").read_text())
    assert config["backfill"] == "conservative" and config["metrics"]["nb_jobs"] == 300
    assert (out / "out_jobs.csv").is_file() and (out / "out_schedule.csv").is_file()


def test_experiment_files_take_conservative_backfilling(tmp_path):
    from hdeeprm.rl.experiment import ExperimentConfig

    data = json.loads((package_files.files("hdeeprm") / "data" / "experiments" / "quickstart.json").read_text())
    path = tmp_path / "experiment.json"
    path.write_text(json.dumps({**data, "backfill": "conservative"}))
    assert ExperimentConfig.load(path).env_config().backfill == "conservative"
    path.write_text(json.dumps({**data, "backfill": "lazy"}))
    with pytest.raises(ConfigError, match="expected 'easy', 'conservative' or none"):
        ExperimentConfig.load(path)
