"""The fast path (hdeeprm.simulation.fastsim) against the readable reference: same outputs, bit for bit.

The reference is Engine (SimPy) + ResourceModel + QueueScheduler, one Python call per
decision; the fast path runs the same policies in compiled code. Every comparison here is
exact: the Batsim output files byte for byte, and the result arrays with ==. Each runs with
both of the engine's clocks: "simgrid" (SimGrid's steps and Batsim's message grouping, the
default) and "exact".
"""

from __future__ import annotations

import filecmp
import os
from pathlib import Path

import numpy as np
import pytest

from hdeeprm.inputs.platform import bundled_platform, load_platform
from hdeeprm.inputs.platform.model import Platform
from hdeeprm.inputs.workload import load_workload, read_batsim_workload
from hdeeprm.simulation.engine import Engine
from hdeeprm.simulation.fastsim import sim
from hdeeprm.simulation.fastsim.results import Allocations
from hdeeprm.simulation.outputs import write_outputs
from hdeeprm.simulation.policies import PolicyConfig, run_policy

DATA = Path(__file__).parent / "data"
TRACES = DATA / "traces"
REFERENCE = DATA / "batsim-reference"
CLOCKS = ("simgrid", "exact")
OUTPUTS = ("out_jobs.csv", "out_schedule.csv", "out_consumed_energy.csv", "out_pstate_changes.csv",
           "overutilization.json")


def gaia_workload(nb_jobs=1500):
    platform = load_platform(bundled_platform("gaia"))
    workload = load_workload(TRACES / "gaia-2014-head.swf.gz", nb_jobs=nb_jobs, max_res=platform.nb_machines,
                             reference_speed_gflops=platform.hierarchy.reference_speed_gflops,
                             rng=np.random.default_rng(0))
    return platform, workload.compile()


def flat_platform(n, speed=1e9):
    return Platform(host_names=tuple(f"h{i:03d}" for i in range(n)), speeds=np.full((n, 1), speed),
                    watts_idle=np.full((n, 1), 100.0), watts_full=np.full((n, 1), 200.0),
                    nb_pstates=np.ones(n, np.int64), initial_pstate=np.zeros(n, np.int64))


def both(platform, workload, config, tmp_path, seed=7, **engine_options):
    """Run the reference and the fast path; write both outputs; return the two results."""
    results = []
    for fast in (False, True):
        engine = Engine(platform, workload, **engine_options)
        result = run_policy(engine, config, rng=np.random.default_rng(seed), fast=fast)
        write_outputs(result, tmp_path / ("fast" if fast else "reference"))
        results.append(result)
    return results


def assert_same(reference, fast, tmp_path):
    for name in OUTPUTS:
        a, b = tmp_path / "reference" / name, tmp_path / "fast" / name
        assert a.exists() == b.exists(), name
        if a.exists():
            assert filecmp.cmp(a, b, shallow=False), f"{name} differs"
    assert reference.job_order == fast.job_order
    for name in ("final_state", "start", "finish", "job_energy"):
        np.testing.assert_array_equal(getattr(reference, name), getattr(fast, name), err_msg=name)
    assert reference.consumed_joules == fast.consumed_joules
    assert reference.end_time == fast.end_time
    assert len(reference.alloc) == len(fast.alloc)
    for a, b in zip(reference.alloc, fast.alloc):
        assert (a is None and b is None) or np.array_equal(a, b)
    assert list(reference.energy_rows) == list(fast.energy_rows)
    assert len(reference.pstate_rows) == len(fast.pstate_rows)
    for (t1, m1, p1), (t2, m2, p2) in zip(reference.pstate_rows, fast.pstate_rows):
        assert t1 == t2 and p1 == p2 and np.array_equal(m1, m2)
    assert reference.overutilization.as_json() == fast.overutilization.as_json()
    assert (reference.nb_machine_switches, reference.nb_grouped_switches) == \
        (fast.nb_machine_switches, fast.nb_grouped_switches)


# -- exact arithmetic helpers -----------------------------------------------------------------

def test_np_sum_is_numpys_pairwise_sum_bit_for_bit():
    rng = np.random.default_rng(0)
    for n in list(range(0, 300)) + [1000, 4097, 12345]:
        a = rng.standard_normal(n) * 10.0 ** rng.integers(-6, 6, n)
        assert sim.np_sum(a) == a.sum(), n


def test_printed6_is_pythons_six_decimal_rounding():
    rng = np.random.default_rng(1)
    ticks = rng.integers(0, 10**9, 5000)
    xs = np.concatenate([
        rng.uniform(0, 1e8, 20000),
        ticks / 1e6,
        (ticks + 0.5) / 1e6,  # near-ties on both sides
        np.nextafter((ticks + 0.5) / 1e6, 0.0),
        np.nextafter((ticks + 0.5) / 1e6, np.inf),
        rng.integers(0, 2**20, 5000) / 2**20 * rng.integers(1, 1000, 5000),  # exact binary ties
        [0.0, 0.0078125, 0.0234375, 0.5, 2.5e-7, 1e-300, 123456.0000005],
    ])
    for x in xs.tolist():
        assert sim.printed6(x) == float(f"{x:.6f}"), x


def test_longdouble_difference_is_x87s_bit_for_bit():
    # Batsim's job submitter sleeps (double)((long double)subtime - (long double)clock).

    if np.finfo(np.longdouble).nmant != 63:
        pytest.skip("numpy's long double is not x87 80-bit extended here")
    rng = np.random.default_rng(2)
    n = 250_000
    sub = rng.integers(0, 2**31, n).astype(float)
    pairs = [
        (sub, np.nextafter(sub, -np.inf)),  # the clock an ulp below an integer subtime
        (sub, sub - rng.integers(1, 2000, n) * np.spacing(sub)),
        (sub, sub - 1e-10 * rng.uniform(0, 10, n)),
        (sub, sub + 1e-9 * rng.uniform(0, 2, n)),
    ]
    mag = 10.0 ** rng.uniform(-12, 12, n)
    pairs.append((rng.uniform(0, 1, n) * mag, rng.uniform(0, 1, n) * mag * 10.0 ** rng.uniform(-20, 1, n)))
    pairs.append((10.0 ** rng.uniform(-300, 300, n), 10.0 ** rng.uniform(-300, 300, n) * rng.choice([-1, 1], n)))
    # Near-ties: |a - b - fl(a - b)| about half an ulp, around the 64-bit rounding window.
    a = np.ldexp(rng.uniform(1, 2, n), rng.integers(-30, 40, n))
    odd = np.nextafter(a - np.mod(a, 2 * np.spacing(a)), np.inf)
    for base in (a, odd):
        for sign in (1, -1):
            pairs.append((base, sign * np.spacing(base) / 2 * (1 - rng.uniform(-3, 3, n) * 2.0 ** -11)))
            for edge in (1 - 2.0 ** -11, 1 - 2.0 ** -12, 1 - 3 * 2.0 ** -12):
                pairs.append((base, np.full(n, sign * edge) * np.spacing(base) / 2))
    p2 = np.ldexp(1.0, rng.integers(-40, 40, n))  # binade edges
    pairs.append((p2, np.spacing(p2) / 4 * (1 - rng.uniform(-2, 2, n) * 2.0 ** -11)))
    pairs.append((p2, -np.spacing(p2) / 2 * (1 - rng.uniform(-2, 2, n) * 2.0 ** -11)))
    a = np.concatenate([np.ascontiguousarray(x, float) for x, _ in pairs])
    b = np.concatenate([np.ascontiguousarray(y, float) for _, y in pairs])
    expected = (a.astype(np.longdouble) - b.astype(np.longdouble)).astype(np.float64)
    got = _longdouble_differences(a, b)
    assert a.size > 4_000_000
    assert ((a - b) != expected).sum() > 100_000  # the double rounding did matter
    mismatches = np.flatnonzero(got != expected)
    assert mismatches.size == 0, list(zip(a[mismatches[:5]], b[mismatches[:5]]))


def _longdouble_differences(a, b):
    import numba

    from hdeeprm.simulation.simgrid_steps import longdouble_difference

    @numba.njit
    def each(a, b, out):
        for i in range(a.shape[0]):
            out[i] = longdouble_difference(a[i], b[i])

    out = np.empty_like(a)
    each(a, b, out)
    return out


# -- whole classic runs -----------------------------------------------------------------------

PAIRS = [
    ("first:first_fit", None),
    ("first:first_fit", "easy"),
    ("shortest:high_gflops", None),
    ("smallest:high_mem_bw", "easy"),
    ("low_mem:low_power", None),
    ("low_mem_bw:high_cores", "easy"),
    ("first:high_mem", "easy"),
    ("random:random", None),
    ("random:high_gflops", "easy"),
    ("smallest_area:high_gflops", None),
    ("smallest_area:first_fit", "easy"),
]


@pytest.mark.parametrize("clock", CLOCKS)
@pytest.mark.parametrize("policy, backfill", PAIRS)
def test_key_pairs_on_gaia_give_identical_outputs(policy, backfill, clock, tmp_path):
    platform, workload = gaia_workload()
    reference, fast = both(platform, workload, PolicyConfig.parse(policy, backfill), tmp_path, clock=clock)
    assert_same(reference, fast, tmp_path)
    assert (reference.final_state != 0).all()


@pytest.mark.parametrize("clock", CLOCKS)
@pytest.mark.parametrize("backfill", [None, "easy", "conservative"])
def test_fcfs_on_a_flat_platform_with_a_long_queue_gives_identical_outputs(backfill, clock, tmp_path):
    # 32 hosts for KTH-SP2 (100 processors): jobs larger than the platform are rejected and
    # the queue grows long, exercising the rejections, the blocked head, EASY's shadow and
    # conservative backfilling's reservations for the whole queue.
    workload = load_workload(TRACES / "kth-sp2-head.swf.gz", max_res=64, reference_speed_gflops=1.0,
                             rng=np.random.default_rng(0)).compile()
    platform = flat_platform(32, speed=0.7e9)  # non-integer end times: decision-time rounding
    reference, fast = both(platform, workload, PolicyConfig("first", "first_fit", backfill), tmp_path, clock=clock)
    assert_same(reference, fast, tmp_path)
    assert (reference.final_state == 4).any()


SCENARIOS = sorted(p.name for p in REFERENCE.iterdir() if (p / "platform.xml").exists())


@pytest.mark.parametrize("clock", CLOCKS)
@pytest.mark.parametrize("scenario", SCENARIOS)
def test_recorded_batsim_inputs_with_the_simgrid_quirk_give_identical_outputs(scenario, clock, tmp_path):
    # Delay jobs and walltimes (A1), speed classes (A2), ties and rejections (A3), EASY (A4),
    # hierarchies on XML platforms (A5, A6, A9), p-states declared by the platform (A8).
    folder = REFERENCE / scenario
    hierarchy = folder / "hierarchy.json"
    platform = load_platform(folder / "platform.xml", hierarchy=hierarchy if hierarchy.exists() else None)
    workload = read_batsim_workload(folder / "workload.json").compile()
    workload = workload.window(0, min(len(workload), 1500))
    backfill = "easy" if "easy" in scenario else None
    for policy in ("first:first_fit", "shortest:high_mem"):
        reference, fast = both(platform, workload, PolicyConfig.parse(policy, backfill), tmp_path / policy,
                               clock=clock)
        assert_same(reference, fast, tmp_path / policy)


# -- conservative backfilling: the same comparisons -----------------------------------------------

# Pairs whose schedule conservative backfilling changes on the gaia excerpt (node memory binds
# under first:first_fit and low_mem:busiest_processor); random job and core keys included.
CONSERVATIVE_PAIRS = ["first:first_fit", "shortest:high_gflops", "low_mem:busiest_processor", "random:random",
                      "random:high_gflops", "smallest_area:high_mem", "low_mem_bw:high_cores"]


@pytest.mark.parametrize("clock", CLOCKS)
@pytest.mark.parametrize("policy", CONSERVATIVE_PAIRS)
def test_conservative_backfilling_on_gaia_gives_identical_outputs(policy, clock, tmp_path):
    platform, workload = gaia_workload()
    config = PolicyConfig.parse(policy, "conservative")
    reference, fast = both(platform, workload, config, tmp_path, clock=clock)
    assert_same(reference, fast, tmp_path)
    assert (reference.final_state != 0).all()
    plain = run_policy(Engine(platform, workload, clock=clock), PolicyConfig.parse(policy),
                       rng=np.random.default_rng(7), fast=True)
    assert not np.array_equal(plain.start, reference.start)  # backfilling did change the schedule


@pytest.mark.parametrize("clock", CLOCKS)
@pytest.mark.parametrize("scenario", SCENARIOS)
def test_recorded_batsim_inputs_with_conservative_backfilling_give_identical_outputs(scenario, clock, tmp_path):
    folder = REFERENCE / scenario
    hierarchy = folder / "hierarchy.json"
    platform = load_platform(folder / "platform.xml", hierarchy=hierarchy if hierarchy.exists() else None)
    workload = read_batsim_workload(folder / "workload.json").compile()
    workload = workload.window(0, min(len(workload), 600))  # the reference plans the whole queue: slow
    for policy in ("first:first_fit", "shortest:high_mem"):
        reference, fast = both(platform, workload, PolicyConfig.parse(policy, "conservative"), tmp_path / policy,
                               clock=clock)
        assert_same(reference, fast, tmp_path / policy)


@pytest.mark.parametrize("clock", CLOCKS)
@pytest.mark.parametrize("seed", range(4))
def test_conservative_under_tight_memory_and_without_walltimes_gives_identical_outputs(seed, clock, tmp_path,
                                                                                       monkeypatch):
    # Memory binds in most reservations; every job key (random included) with a core key each,
    # all core keys over the seeds; odd seeds give 15 % of the jobs no walltime (they never
    # give their cores back in the plan). A start on booked cores re-plans the reservations
    # ahead of it; both outcomes (kept, or the start undone) are compared.
    from hdeeprm.simulation.keys import ALL_CORE_KEYS, ALL_JOB_KEYS
    from hdeeprm.simulation.policies import QueueScheduler

    replans = []  # whether each re-plan of the reference kept the reservations
    original = QueueScheduler._replan

    def replan(self, reserved):
        out = original(self, reserved)
        replans.append(out[0] is not None)
        return out

    monkeypatch.setattr(QueueScheduler, "_replan", replan)
    rng = np.random.default_rng(seed)
    platform = tight_platform(rng)
    workload = tight_workload(rng, platform.nb_machines, no_walltime=0.15 if seed % 2 else 0.0)
    assert np.isinf(workload.walltime).any() == bool(seed % 2)
    for i, job_key in enumerate(ALL_JOB_KEYS):
        core_key = ALL_CORE_KEYS[(i + seed) % len(ALL_CORE_KEYS)]
        out = tmp_path / f"{job_key}-{core_key}"
        reference, fast = both(platform, workload, PolicyConfig(job_key, core_key, "conservative"), out, seed=seed,
                               clock=clock)
        assert_same(reference, fast, out)
        assert reference.overutilization.memory_shortages  # memory did bind
    assert True in replans and False in replans


@pytest.mark.parametrize("clock", CLOCKS)
def test_an_empty_workload_and_the_engine_left_behind(clock, tmp_path):
    platform, workload = gaia_workload(300)
    for arrays in (workload.window(0, 1), workload):
        for backfill in ("easy", "conservative"):
            engine = Engine(platform, arrays, clock=clock)
            run_policy(engine, PolicyConfig("smallest", "high_cores", backfill), fast=True)
            engine.check_invariants()
            assert engine.nb_unfinished == 0 and not engine.running_jobs()
    from hdeeprm.inputs.workload.model import Workload

    result = run_policy(Engine(platform, Workload((), {}), clock=clock), PolicyConfig(), fast=True)
    assert result.job_order == [] and result.consumed_joules == 0.0


def edge_workload(rng, nb_jobs=2000):
    """Jobs made to hit SimGrid's corner cases: no work, walltimes equal to (or an ulp off)
    the task's duration, delay jobs killed at their walltime, submit times shared by many jobs
    and not representable in binary."""
    from hdeeprm.inputs.workload.model import Job, Profile, Workload

    jobs, profiles = [], {}
    t = 0.0
    speeds = (1e9, 0.7e9, 1.3e9)
    for i in range(nb_jobs):
        if rng.random() < 0.6:
            t += float(rng.choice([0.1, 0.3, 1.0, 7.0, 13.37]))
        res = int(rng.integers(1, 6))
        walltime = float(rng.choice([5.0, 10.0, 30.0, 100.0]))
        case = rng.integers(0, 6)
        if case == 0:
            profiles[f"p{i}"] = Profile(f"p{i}", "parallel_homogeneous", cpu=0.0)
        elif case == 1:  # exactly the walltime on the slowest or fastest machine
            speed = float(rng.choice(speeds))
            profiles[f"p{i}"] = Profile(f"p{i}", "parallel_homogeneous", cpu=walltime * speed)
        elif case == 2:
            profiles[f"p{i}"] = Profile(f"p{i}", "delay", delay=float(rng.choice([walltime, walltime / 3])))
        else:
            profiles[f"p{i}"] = Profile(f"p{i}", "parallel_homogeneous",
                                        cpu=float(rng.uniform(0.1, 2.0)) * walltime * 1e9)
        jobs.append(Job(str(i), round(t, 2), res, f"p{i}", walltime))
    return Workload(tuple(jobs), profiles).compile()


@pytest.mark.parametrize("clock", CLOCKS)
@pytest.mark.parametrize("policy, backfill", [("first:first_fit", None), ("smallest:first_fit", "easy"),
                                              ("random:random", None), ("shortest:first_fit", "conservative")])
def test_simgrid_corner_cases_give_identical_outputs(policy, backfill, clock, tmp_path):
    # Zero-work tasks, walltime kills in the same step as the task's end, delay kills,
    # heterogeneous speeds (non-integer rates) and hundreds of activities (compaction).
    rng = np.random.default_rng(11)
    workload = edge_workload(rng)
    n = 24
    speeds = np.array([1e9, 0.7e9, 1.3e9])[np.arange(n) % 3]
    platform = Platform(host_names=tuple(f"h{i:03d}" for i in range(n)), speeds=speeds[:, None],
                        watts_idle=np.full((n, 1), 100.0), watts_full=np.full((n, 1), 200.0),
                        nb_pstates=np.ones(n, np.int64), initial_pstate=np.zeros(n, np.int64))
    reference, fast = both(platform, workload, PolicyConfig.parse(policy, backfill), tmp_path, clock=clock)
    assert_same(reference, fast, tmp_path)
    assert (reference.final_state == 2).sum() > 50 and (reference.final_state == 1).sum() > 500


# Opt-in: a folder with platform.xml and workload.json of a large recorded Batsim input, such
# as the 100,000-job HPC2N FCFS scenario (240 heterogeneous hosts).
S2 = Path(os.environ.get("HDEEPRM_LARGE_SCENARIO", "/nonexistent"))


@pytest.mark.skipif(not (S2 / "workload.json").exists(),
                    reason="set HDEEPRM_LARGE_SCENARIO to a folder with platform.xml and workload.json")
def test_the_100k_job_recorded_batsim_input_gives_identical_outputs(tmp_path):
    # Real Batsim's run of it is reproduced exactly by the simgrid clock (the engine's tests).
    platform = load_platform(S2 / "platform.xml")
    workload = read_batsim_workload(S2 / "workload.json").compile()
    reference, fast = both(platform, workload, PolicyConfig(), tmp_path)
    assert_same(reference, fast, tmp_path)


@pytest.mark.parametrize("clock", CLOCKS)
@pytest.mark.parametrize("backfill", ["easy", "conservative"])
def test_no_rounding_and_no_energy_rows_are_followed_too(backfill, clock, tmp_path):
    platform, workload = gaia_workload(400)
    reference, fast = both(platform, workload, PolicyConfig("shortest", "high_cores", backfill), tmp_path,
                           batsim_time_rounding=False, record_energy_rows=False, clock=clock)
    assert_same(reference, fast, tmp_path)
    assert list(fast.energy_rows) == []


# -- when the fast path is taken ----------------------------------------------------------------

@pytest.mark.parametrize("clock", CLOCKS)
def test_run_policy_takes_the_fast_path_only_without_hooks(clock):
    from hdeeprm.simulation import fastsim

    platform, workload = gaia_workload(100)
    engine = Engine(platform, workload, clock=clock)
    assert fastsim.supports(engine, PolicyConfig())
    result = run_policy(engine, PolicyConfig())
    assert isinstance(result.alloc, Allocations)
    assert engine.nb_unfinished == 0 and engine.now == result.end_time

    class Hooked(Engine):
        def next_decision_point(self):
            return super().next_decision_point()

    result = run_policy(Hooked(platform, workload, clock=clock), PolicyConfig())
    assert isinstance(result.alloc, list)
    started = Engine(platform, workload, clock=clock)
    started.next_decision_point()
    with pytest.raises(ValueError, match="not started"):
        run_policy(started, PolicyConfig(), fast=True)


def test_allocations_index_like_the_reference_list():
    platform, workload = gaia_workload(50)
    reference = run_policy(Engine(platform, workload), PolicyConfig(), fast=False)
    fast = run_policy(Engine(platform, workload), PolicyConfig())
    assert [None if a is None else a.tolist() for a in fast.alloc[:5]] == \
        [None if a is None else a.tolist() for a in reference.alloc[:5]]
    assert np.array_equal(np.concatenate(list(fast.alloc)), np.concatenate(reference.alloc))
    assert fast.energy_rows[-1] == reference.energy_rows[-1]
    assert fast.pstate_rows[-1][0] == reference.pstate_rows[-1][0]


# -- HeteroEnv ------------------------------------------------------------------------------------

ENV_TRACE = TRACES / "gaia-2014-head.swf.gz"


def same(a, b) -> bool:
    """Exact equality of nested observations, rewards and infos (arrays byte for byte)."""
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, (tuple, list)):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    if isinstance(a, np.ndarray):
        return a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes()
    return type(a) is type(b) and a == b


def env_episode(fast, choose, seed, clock="simgrid", platform="gaia", workload=ENV_TRACE, **config):
    from hdeeprm.rl.env import HeteroEnv

    if not hasattr(workload, "walltime"):  # a trace (WorkloadArrays come converted)
        config.setdefault("nb_jobs", 300)
    env = HeteroEnv(platform, workload, fast=fast, backend_options={"clock": clock}, **config)
    steps = [env.reset(seed=seed)]
    rng = np.random.default_rng(seed)
    done = False
    while not done:
        mask = env.action_masks()
        step = env.step(choose(rng, mask))
        steps.append(step)
        done = step[2] or step[3]
    return env, steps


def random_valid(rng, mask):
    return int(rng.choice(np.flatnonzero(mask)))


def void_when_allowed(rng, mask):
    return len(mask) - 1 if rng.random() < 0.7 and mask[-1] else random_valid(rng, mask)


ENV_CASES = [
    dict(observation="minimal"),
    dict(observation="small", objective="avg_utilization", backfill="easy"),
    dict(observation="normal", objective="energy_consumption"),
    dict(observation="normal", objective="edp", nb_jobs=1000, episode_jobs=120),
    dict(observation="minimal", objective="avg_job_completion", max_steps=40),
    dict(observation="small", objective="makespan", max_sim_time=1.5e6, backfill="easy"),
    dict(observation="normal", actions=(("first", "first_fit"), ("random", "random"), ("low_mem", "high_mem")),
         void=False, reward_scale=0.001, queue_sensitivity=0.2),
    dict(observation="small", actions=(("smallest_area", "high_gflops"), ("first", "low_power"))),
    # On the gaia excerpt no waiting job is ever backfilled: these platforms fill up.
    dict(platform="quickstart", workload="kth-sp2-head.swf.gz", observation="minimal", backfill="conservative"),
    dict(platform="das2", workload="kth-sp2-head.swf.gz", observation="normal", objective="edp", nb_jobs=1000,
         episode_jobs=150, backfill="conservative"),
    dict(platform="quickstart", workload="gaia-2014-head.swf.gz", observation="small", objective="avg_utilization",
         actions=(("first", "first_fit"), ("random", "random"), ("low_mem", "high_mem"), ("smallest", "high_cores")),
         backfill="conservative"),
]


@pytest.mark.parametrize("clock", CLOCKS)
@pytest.mark.parametrize("config", ENV_CASES, ids=lambda c: "-".join(f"{k}={v}" for k, v in c.items()))
@pytest.mark.parametrize("choose", [random_valid, void_when_allowed])
def test_hetero_env_steps_are_identical(config, choose, clock, tmp_path):
    reference, steps_ref = env_episode(False, choose, 3, clock, **dict(config))
    fast, steps_fast = env_episode(True, choose, 3, clock, **dict(config))
    assert len(steps_ref) == len(steps_fast) > 2
    for i, (a, b) in enumerate(zip(steps_ref, steps_fast)):
        assert same(a, b), f"step {i} differs"
    assert reference._fast is None and fast._fast is not None
    if steps_ref[-1][2]:  # terminated: the outcomes too
        write_outputs(reference.result(), tmp_path / "reference")
        write_outputs(fast.result(), tmp_path / "fast")
        for name in OUTPUTS:
            assert filecmp.cmp(tmp_path / "reference" / name, tmp_path / "fast" / name, shallow=False), name
        assert reference.engine.energy_so_far() == fast.engine.energy_so_far()
    else:
        with pytest.raises(RuntimeError):
            fast.result()


@pytest.mark.parametrize("clock", CLOCKS)
@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("choose", [random_valid, void_when_allowed])
def test_hetero_env_with_conservative_backfilling_under_tight_memory_is_identical(seed, choose, clock):
    # The default 36 pairs and void, node memory binding, conservative backfilling changing
    # the schedule: observations, rewards and masks step by step.
    rng = np.random.default_rng(seed)
    platform = tight_platform(rng)
    workload = tight_workload(rng, platform.nb_machines, nb_jobs=300)
    episodes = {}
    for fast, backfill in ((False, "conservative"), (True, "conservative"), (True, None)):
        env, steps = env_episode(fast, choose, seed, clock, platform, workload, observation="normal",
                                 backfill=backfill)
        assert steps[-1][2] and (env._fast is not None) == fast
        episodes[fast, backfill] = env.result(), steps
    (reference, steps_ref), (fast, steps_fast) = episodes[False, "conservative"], episodes[True, "conservative"]
    assert len(steps_ref) == len(steps_fast)
    for i, (a, b) in enumerate(zip(steps_ref, steps_fast)):
        assert same(a, b), f"step {i} differs"
    np.testing.assert_array_equal(reference.start, fast.start)
    assert reference.overutilization.memory_shortages
    assert not np.array_equal(episodes[True, None][0].start, reference.start)


@pytest.mark.parametrize("clock", CLOCKS)
@pytest.mark.parametrize("backfill", [None, "conservative"])
def test_hetero_env_pickles_in_the_middle_of_an_episode(backfill, clock):
    import pickle

    from hdeeprm.rl.env import HeteroEnv

    # With conservative backfilling on a platform that fills up, its profiles are in the state.
    platform, trace = ("gaia", ENV_TRACE) if backfill is None else ("quickstart", "kth-sp2-head.swf.gz")
    env = HeteroEnv(platform, trace, nb_jobs=200, observation="minimal", backfill=backfill,
                    backend_options={"clock": clock})
    assert env.uses_compiled_path
    env.reset(seed=1)
    for _ in range(20):
        env.step(int(np.flatnonzero(env.action_masks())[0]))
    copy = pickle.loads(pickle.dumps(env))
    while True:
        allowed = np.flatnonzero(env.action_masks())
        action = int(allowed[-2] if len(allowed) > 1 else allowed[0])  # the last pair allowed, else void
        a, b = env.step(action), copy.step(action)
        assert same(a, b)
        if a[2] or a[3]:
            break


# -- the core-key search trees where node memory binds ------------------------------------------

def tight_platform(rng):
    """A small platform whose cores are numbered out of processor order and whose nodes have
    little memory, so that memory decides many picks."""
    from hdeeprm.inputs.platform import Hierarchy, platform_from_hierarchy

    nb_nodes = int(rng.integers(3, 8))
    procs_per_node = rng.integers(1, 4, nb_nodes)
    processor_node = np.repeat(np.arange(nb_nodes), procs_per_node)
    cores_per_proc = rng.integers(1, 7, len(processor_node))
    core_processor = rng.permutation(np.repeat(np.arange(len(processor_node)), cores_per_proc))
    gflops = rng.choice([8.0, 10.0, 12.0], len(processor_node))
    hierarchy = Hierarchy(
        core_processor=core_processor, core_node=processor_node[core_processor],
        processor_node=processor_node, processor_mem_bw_gbs=rng.choice([10.0, 20.0, 40.0], len(processor_node)),
        processor_gflops_per_core=gflops, processor_watts_per_core=rng.choice([5.0, 10.0, 20.0], len(processor_node)),
        processor_type=tuple("p" for _ in processor_node), node_memory_mb=rng.choice([2000.0, 4000.0, 6000.0], nb_nodes),
        node_type=tuple("n" for _ in range(nb_nodes)), node_cluster=np.zeros(nb_nodes, int),
        reference_speed_gflops=10.0)
    return platform_from_hierarchy(hierarchy)


def tight_workload(rng, nb_cores, nb_jobs=150, no_walltime=0.0):
    """Jobs on ``tight_platform``; a ``no_walltime`` fraction of them without walltime."""
    from hdeeprm.inputs.workload.model import Job, Profile, Workload

    jobs, profiles = [], {}
    t = 0.0
    for i in range(nb_jobs):
        t += float(rng.exponential(3.0))
        extra = {"mem": float(rng.choice([0, 100, 500, 900, 1500, 2500])), "mem_bw": float(rng.choice([1, 4, 8, 16])),
                 "req_time": float(rng.integers(5, 60))}
        profiles[f"p{i}"] = Profile(f"p{i}", "parallel_homogeneous", cpu=float(rng.integers(1, 400)) * 1e9, extra=extra)
        res = int(rng.integers(1, max(2, nb_cores // 2)))
        walltime = float(rng.integers(20, 80))
        if no_walltime and rng.random() < no_walltime:  # no draw without: the same jobs as before
            walltime = None
        jobs.append(Job(str(i), round(t, 3), res, f"p{i}", walltime))
    return Workload(tuple(jobs), profiles).compile()


@pytest.mark.parametrize("clock", CLOCKS)
@pytest.mark.parametrize("seed", range(6))
def test_every_core_key_under_tight_memory_gives_identical_outputs(seed, clock, tmp_path):
    from hdeeprm.simulation.keys import ALL_CORE_KEYS, JOB_KEYS

    rng = np.random.default_rng(seed)
    platform = tight_platform(rng)
    workload = tight_workload(rng, platform.nb_machines)
    for core_key in ALL_CORE_KEYS:
        job_key = JOB_KEYS[int(rng.integers(len(JOB_KEYS)))]
        backfill = "easy" if rng.random() < 0.5 else None
        out = tmp_path / core_key
        reference, fast = both(platform, workload, PolicyConfig(job_key, core_key, backfill), out, seed=seed,
                               clock=clock)
        assert_same(reference, fast, out)
        assert reference.overutilization.memory_shortages  # memory did bind


# -- platforms with Batsim sleep p-states -------------------------------------------------------

SLEEP_PLATFORM = DATA / "platforms" / "sleep_4hosts.xml"
SLEEP_OUTPUTS = OUTPUTS + ("out_machine_states.csv",)


def sleep_jobs(seed: int, n: int = 40):
    """A light random load on sleep_4hosts.xml: delay and parallel jobs (1 to 4 machines), some
    killed at their walltime, idle gaps for machines to sleep in."""
    from hdeeprm.inputs.workload.model import Job, Profile, Workload

    rng = np.random.default_rng(seed)
    jobs, profiles, t = [], {}, 0.0
    for i in range(n):
        t += float(rng.choice([0.0, 0.0, 1.1, 3.0, 7.5, 12.0, 25.0, 40.0, 60.0, 130.0]))
        if rng.random() < 0.5:
            length = float(rng.choice([5.0, 10.0, 17.3, 30.0, 45.0]))
            profiles[f"p{i}"] = Profile(f"p{i}", "delay", delay=length)
        else:
            length = float(rng.choice([5.0, 10.0, 23.0, 40.0]))  # seconds at 100 Mflop/s
            profiles[f"p{i}"] = Profile(f"p{i}", "parallel_homogeneous", cpu=length * 1e8)
        walltime = length * float(rng.choice([0.8, 1.5, 2.0]))
        jobs.append(Job(f"j{i}", round(t, 3), int(rng.choice([1, 1, 2, 3, 4])), f"p{i}", walltime))
    return Workload(tuple(jobs), profiles).compile()


def sleep_platform_xml(path: Path, scale: int = 1) -> Path:
    """A heterogeneous flat platform with sleep p-states, as examples/energy_study.py writes
    its own: fast, mid and eco hosts with three computation p-states, then sleep (3), switch
    off (4: 10 s) and switch on (5: 50 s)."""
    types = (("fast", 8 * scale, 2.0, ((100, 300), (95, 180), (90, 125))),
             ("mid", 12 * scale, 1.5, ((70, 180), (66, 115), (62, 82))),
             ("eco", 12 * scale, 1.0, ((30, 90), (28, 60), (26, 44))))
    hosts = []
    for name, count, gflops, watts in types:
        speeds = ", ".join(f"{gflops * f:g}Gf" for f in (1.0, 0.7, 0.4)) + ", 1f, 0.1f, 0.02f"
        wattage = ", ".join(f"{idle}:{full}" for idle, full in watts) + ", 5:5, 100:100, 150:150"
        for _ in range(count):
            hosts.append(f'<host id="h{len(hosts):03d}-{name}" coordinates="0 0 0" speed="{speeds}" pstate="0">'
                         f'<prop id="wattage_per_state" value="{wattage}"/>'
                         f'<prop id="sleep_pstates" value="3:4:5"/></host>')
    path.write_text("<?xml version='1.0'?>\n<!DOCTYPE platform SYSTEM \"https://simgrid.org/simgrid.dtd\">\n"
                    '<platform version="4.1"><zone id="AS0" routing="Vivaldi">'
                    '<host id="master_host" coordinates="0 0 0" speed="1Gf"><prop id="wattage_per_state" '
                    'value="0:0"/></host>' + "".join(hosts) + "</zone></platform>\n")
    return path


def kth_on(platform, nb_jobs):
    return load_workload(TRACES / "kth-sp2-head.swf.gz", nb_jobs=nb_jobs, max_res=platform.nb_machines,
                         reference_speed_gflops=1.0, rng=np.random.default_rng(0)).compile()


def assert_same_with_sleep(reference, fast, tmp_path):
    """assert_same, plus the machine states (rows, seconds per state, out_machine_states.csv)."""
    assert_same(reference, fast, tmp_path)
    a, b = tmp_path / "reference" / "out_machine_states.csv", tmp_path / "fast" / "out_machine_states.csv"
    assert a.read_bytes() == b.read_bytes(), "out_machine_states.csv differs"
    assert (reference.machine_state_rows is None) == (fast.machine_state_rows is None)
    if reference.machine_state_rows is not None:
        assert list(reference.machine_state_rows) == list(fast.machine_state_rows)
    assert reference.machine_state_times == fast.machine_state_times
    a, b = tmp_path / "reference" / "out_schedule.csv", tmp_path / "fast" / "out_schedule.csv"
    assert a.read_bytes() == b.read_bytes()


@pytest.mark.parametrize("clock", CLOCKS)
@pytest.mark.parametrize("seed", range(8))
def test_sleep_platform_without_shutdown_gives_identical_outputs(seed, clock, tmp_path):
    """No shutdown policy: no machine ever switches, and the fast path runs it."""
    platform = load_platform(str(SLEEP_PLATFORM))
    workload = sleep_jobs(seed)
    pairs = ("first:first_fit", "shortest:high_gflops", "smallest:low_power", "random:random")
    for i, backfill in enumerate((None, "easy", "conservative")):
        config = PolicyConfig.parse(pairs[(seed + i) % len(pairs)], backfill)
        out = tmp_path / str(backfill)
        reference, fast = both(platform, workload, config, out, seed=seed, clock=clock)
        assert isinstance(fast.alloc, Allocations) and isinstance(reference.alloc, list)
        assert_same_with_sleep(reference, fast, out)


@pytest.mark.parametrize("clock", CLOCKS)
@pytest.mark.parametrize("backfill", [None, "easy", "conservative"])
def test_heterogeneous_sleep_platform_on_a_trace_without_shutdown_gives_identical_outputs(backfill, clock,
                                                                                          tmp_path):
    platform = load_platform(str(sleep_platform_xml(tmp_path / "platform.xml")))
    workload = kth_on(platform, 600)
    for pair in ("first:first_fit", "shortest:low_power"):
        out = tmp_path / pair.replace(":", "-")
        reference, fast = both(platform, workload, PolicyConfig.parse(pair, backfill), out, clock=clock)
        assert isinstance(fast.alloc, Allocations)
        assert_same_with_sleep(reference, fast, out)


# -- the shutdown policy (machines sent to sleep and woken) ---------------------------------------

SHUTDOWN_PAIRS = ("first:first_fit", "shortest:high_gflops", "smallest:low_power", "random:random",
                  "smallest_area:first_fit", "low_mem:high_cores", "first:random")


def test_the_compiled_shutdown_policy_uses_the_reference_constants():
    from hdeeprm.simulation import policies
    from hdeeprm.simulation.fastsim import shutdown

    for name in ("_AWAKE", "_SWITCHING_OFF", "_ASLEEP", "_SWITCHING_ON", "_TIME_SLACK"):
        assert getattr(shutdown, name) == getattr(policies, name), name


@pytest.mark.parametrize("clock", CLOCKS)
@pytest.mark.parametrize("seed", range(10))
def test_shutdown_on_sleep_4hosts_gives_identical_outputs(seed, clock, tmp_path):
    """Random light loads (idle gaps to sleep in, jobs that wait for machines to wake, kills at
    the walltime), shutdown after 0, 5 and 30 s idle, every backfilling, several key pairs."""
    platform = load_platform(str(SLEEP_PLATFORM))
    workload = sleep_jobs(seed)
    for i, idle in enumerate((0.0, 5.0, 30.0)):
        for j, backfill in enumerate((None, "easy", "conservative")):
            pair = SHUTDOWN_PAIRS[(seed + 3 * i + j) % len(SHUTDOWN_PAIRS)]
            out = tmp_path / f"{idle:g}-{backfill}"
            reference, fast = both(platform, workload, PolicyConfig.parse(pair, backfill, idle), out,
                                   seed=seed, clock=clock)
            assert isinstance(fast.alloc, Allocations) and isinstance(reference.alloc, list)
            assert_same_with_sleep(reference, fast, out)
            assert reference.nb_machine_switches > 0 and reference.machine_state_rows is not None


@pytest.mark.parametrize("clock", CLOCKS)
@pytest.mark.parametrize("idle", [0.0, 60.0, 600.0])
def test_shutdown_on_a_heterogeneous_sleep_platform_with_a_trace_gives_identical_outputs(idle, clock, tmp_path):
    """A KTH SP2 excerpt on fast, mid and eco hosts that sleep (switching on takes 50 s)."""
    platform = load_platform(str(sleep_platform_xml(tmp_path / "platform.xml")))
    workload = kth_on(platform, 1000)  # the whole excerpt
    for pair, backfill in (("first:first_fit", None), ("first:first_fit", "easy"),
                           ("shortest:low_power", "conservative"), ("random:high_gflops", "easy")):
        out = tmp_path / f"{pair.replace(':', '-')}-{backfill}"
        reference, fast = both(platform, workload, PolicyConfig.parse(pair, backfill, idle), out, clock=clock)
        assert isinstance(fast.alloc, Allocations)
        assert_same_with_sleep(reference, fast, out)
        assert reference.nb_machine_switches > 0


@pytest.mark.parametrize("clock", CLOCKS)
def test_shutdown_without_energy_rows_or_rounding_gives_identical_outputs(clock, tmp_path):
    platform = load_platform(str(SLEEP_PLATFORM))
    for seed in range(3):
        out = tmp_path / str(seed)
        reference, fast = both(platform, sleep_jobs(seed), PolicyConfig.parse("first:first_fit", "easy", 5.0), out,
                               clock=clock, record_energy_rows=False, batsim_time_rounding=bool(seed % 2))
        assert_same_with_sleep(reference, fast, out)
