"""The heterogeneity layer and the classic key-pair policies, on hand-built platforms whose
outcomes are computed by hand, plus the 36 pairs on the bundled gaia platform."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from hdeeprm.inputs.platform import Hierarchy, load_platform, platform_from_hierarchy
from hdeeprm.inputs.platform.json_platform import bundled_platform
from hdeeprm.inputs.workload import load_workload
from hdeeprm.inputs.workload.model import Job, Profile, Workload
from hdeeprm.simulation.engine import REJECTED_STATE, SUCCESS, Engine
from hdeeprm.simulation.keys import ALL_CORE_KEYS, DEFAULT_PAIRS, JOB_KEYS
from hdeeprm.simulation.metrics import headline_metrics
from hdeeprm.simulation.outputs import write_outputs
from hdeeprm.simulation.policies import PolicyConfig, QueueScheduler, run_policy
from hdeeprm.simulation.resources import CORE_SHORTAGE, FITS, MEMORY_SHORTAGE, ResourceModel

TRACES = Path(__file__).parent / "data" / "traces"


def hand_platform(processors, node_memory_mb):
    """``processors``: (node, cores, GFLOP/s per core, memory bandwidth GB/s, W per core)."""
    cores = [p[1] for p in processors]
    core_processor = np.repeat(np.arange(len(processors)), cores)
    processor_node = np.array([p[0] for p in processors])
    gflops = np.array([p[2] for p in processors], dtype=float)
    hierarchy = Hierarchy(
        core_processor=core_processor,
        core_node=processor_node[core_processor],
        processor_node=processor_node,
        processor_mem_bw_gbs=[p[3] for p in processors],
        processor_gflops_per_core=gflops,
        processor_watts_per_core=[p[4] for p in processors],
        processor_type=tuple(f"proc{i}" for i in range(len(processors))),
        node_memory_mb=node_memory_mb,
        node_type=tuple("node" for _ in node_memory_mb),
        node_cluster=np.zeros(len(node_memory_mb), int),
        reference_speed_gflops=float(gflops[core_processor].mean()),
    )
    return platform_from_hierarchy(hierarchy)


def hand_workload(jobs):
    """``jobs``: dicts with subtime, res and either delay (s) or gflop (per core), plus
    optional walltime, mem (MB per core), mem_bw (GB/s per core), req_time (s), req_ops."""
    profiles, out = {}, []
    for i, spec in enumerate(jobs):
        extra = {k: spec[k] for k in ("mem", "mem_bw", "req_time", "req_ops") if k in spec}
        if "delay" in spec:
            profiles[f"p{i}"] = Profile(f"p{i}", "delay", delay=spec["delay"], extra=extra)
        else:
            profiles[f"p{i}"] = Profile(f"p{i}", "parallel_homogeneous", cpu=spec["gflop"] * 1e9, extra=extra)
        out.append(Job(str(i), spec.get("subtime", 0.0), spec["res"], f"p{i}", spec.get("walltime")))
    return Workload(tuple(out), profiles)


def run(platform, workload, policy, backfill=None, seed=0, energy_accounting="batsim"):
    engine = Engine(platform, workload, energy_accounting=energy_accounting)
    result = run_policy(engine, PolicyConfig.parse(policy, backfill), rng=np.random.default_rng(seed))
    return engine, result


# -- Bandwidth throttling: the reason high_mem_bw exists ------------------------------------

# Processor 0: 2 fast cores (10 GFLOP/s) sharing only 10 GB/s; processor 1: 2 slower cores
# (8 GFLOP/s) with 100 GB/s. All cores draw 20 W when busy, 1 W (5 %) in P3.
BANDWIDTH_PLATFORM = [(0, 2, 10.0, 10.0, 20.0), (0, 2, 8.0, 100.0, 20.0)]
# Two one-core jobs of 80 GFLOP, each using 6 GB/s of memory bandwidth.
BANDWIDTH_JOBS = [dict(res=1, gflop=80, mem_bw=6), dict(res=1, gflop=80, mem_bw=6)]


def test_high_mem_bw_beats_high_gflops_when_bandwidth_throttles():
    platform = hand_platform(BANDWIDTH_PLATFORM, [1000.0])
    workload = hand_workload(BANDWIDTH_JOBS)
    # high_gflops packs both jobs on processor 0: 12 GB/s > 10 GB/s, so both cores run in P1
    # at 0.75 x 10 = 7.5 GFLOP/s: 80 / 7.5 = 10.667 s. Power: 2 x 20 W busy + 2 x 1 W in P3
    # (each core billed at its own p-state: the ideal accounting).
    engine, result = run(platform, workload, "first:high_gflops", energy_accounting="ideal")
    assert sorted(np.concatenate(result.alloc).tolist()) == [0, 1]
    assert result.finish.max() == pytest.approx(80 / 7.5, abs=1e-5)
    assert result.consumed_joules == pytest.approx(42 * 80 / 7.5, rel=1e-6)
    # As Batsim bills it: everything happens at t=0 or at the end, so the two idle cores,
    # whose p-state never changes, stay billed at p-state 0 (20 W) for the whole run.
    assert run(platform, workload, "first:high_gflops")[1].consumed_joules == pytest.approx(80 * 80 / 7.5, rel=1e-6)
    spans = result.overutilization.bandwidth_spans
    assert list(spans) == [0] and spans[0][0][0] == 0.0
    assert spans[0][0][1] == pytest.approx(80 / 7.5, abs=1e-5)
    # high_mem_bw spreads by remaining bandwidth: processor 1 (100, then 94 GB/s left) takes
    # both jobs at 8 GFLOP/s unthrottled: 80 / 8 = 10 s, and 42 W x 10 s.
    engine, result = run(platform, workload, "first:high_mem_bw", energy_accounting="ideal")
    assert sorted(np.concatenate(result.alloc).tolist()) == [2, 3]
    assert result.finish.max() == pytest.approx(10.0, abs=1e-5)
    assert result.consumed_joules == pytest.approx(420.0, rel=1e-6)
    assert result.overutilization.bandwidth_spans == {}


# -- Core keys, one pick at a time ----------------------------------------------------------

# node 0 (4000 MB): proc 0 = cores 0-3 (10 GF, 40 GB/s, 30 W), proc 1 = cores 4-5 (12 GF,
# 10 GB/s, 10 W); node 1 (4500 MB): proc 2 = cores 6-9 (8 GF, 45 GB/s, 5 W).
KEYS_PLATFORM = [(0, 4, 10.0, 40.0, 30.0), (0, 2, 12.0, 10.0, 10.0), (1, 4, 8.0, 45.0, 5.0)]
KEYS_MEMORY = [4000.0, 4500.0]


def allocate(core_key, job_spec, rng=None):
    platform = hand_platform(KEYS_PLATFORM, KEYS_MEMORY)
    engine = Engine(platform, hand_workload([job_spec]))
    resources = ResourceModel(engine)
    status, hosts = resources.allocate(0, core_key, rng)
    resources.check_invariants()
    return status, hosts.tolist(), resources


@pytest.mark.parametrize("core_key, expected", [
    ("high_gflops", [4, 5]),   # processor 1 is the fastest
    ("low_power", [6, 7]),     # processor 2 draws the fewest watts per core
    ("high_cores", [0, 6]),    # procs 0 and 2 tie at 4 free cores (lowest id wins), then proc 2 has more
    ("high_mem", [6, 0]),      # node 1 has 4500 MB, then 3500 < node 0's 4000
    ("high_mem_bw", [6, 7]),   # proc 2 has 45 GB/s, then 41 > proc 0's 40
    ("first_fit", [0, 1]),
])
def test_core_keys_reevaluate_before_each_core(core_key, expected):
    status, hosts, _ = allocate(core_key, dict(res=2, delay=10, mem=1000, mem_bw=4))
    assert status == FITS and hosts == expected


def test_node_memory_is_a_hard_limit_per_core():
    # 3000 MB per core: node 0 can hold one such core, node 1 one more.
    status, hosts, resources = allocate("high_gflops", dict(res=2, delay=10, mem=3000))
    assert status == FITS and hosts == [4, 6]
    assert resources.node_free_kb.tolist() == [1_000_000, 1_500_000]
    status, hosts, _ = allocate("high_gflops", dict(res=3, delay=10, mem=3000))
    assert status == MEMORY_SHORTAGE and hosts == []
    status, hosts, _ = allocate("high_gflops", dict(res=11, delay=10))
    assert status == CORE_SHORTAGE


def test_failed_allocation_leaves_no_trace():
    platform = hand_platform(KEYS_PLATFORM, KEYS_MEMORY)
    engine = Engine(platform, hand_workload([dict(res=3, delay=1, mem=3000, mem_bw=9)]))
    resources = ResourceModel(engine)
    before = {k: v.copy() for k, v in vars(resources).items() if isinstance(v, np.ndarray)}
    assert resources.allocate(0, "high_mem_bw")[0] == MEMORY_SHORTAGE
    for name, array in before.items():
        if not name.startswith("_"):
            assert (getattr(resources, name) == array).all(), name
    assert resources.nb_free == 10


def test_random_core_key_is_seeded_and_covers_the_candidates():
    draws = [allocate("random", dict(res=1, delay=1, mem=1000), np.random.default_rng(s))[1][0]
             for s in range(200)]
    again = [allocate("random", dict(res=1, delay=1, mem=1000), np.random.default_rng(s))[1][0]
             for s in range(200)]
    assert draws == again
    assert set(draws) == set(range(10))


# -- Job keys and the scheduling pass -------------------------------------------------------

KEYED_JOBS = [
    dict(res=2, delay=5, req_time=50, mem=30, mem_bw=2),   # 0
    dict(res=1, delay=5, req_time=40, mem=20, mem_bw=3),   # 1
    dict(res=1, delay=5, req_time=20, mem=10, mem_bw=3),   # 2
    dict(res=3, delay=5, req_time=20, mem=10, mem_bw=1),   # 3
]


@pytest.mark.parametrize("job_key, expected", [
    ("first", 0), ("shortest", 2), ("smallest", 1), ("low_mem", 2), ("low_mem_bw", 3),
])
def test_job_keys_rank_with_ties_to_the_lowest_id(job_key, expected):
    platform = hand_platform([(0, 4, 1.0, 100.0, 1.0)], [1000.0])
    engine = Engine(platform, hand_workload(KEYED_JOBS))
    scheduler = QueueScheduler(engine)
    scheduler.admit(engine.next_decision_point())
    assert scheduler.first_by(job_key) == expected


AREA_JOBS = [
    dict(res=1, delay=5, req_time=100),  # 0: fewest cores, area 100
    dict(res=10, delay=5, req_time=5),   # 1: shortest, area 50
    dict(res=3, delay=5, req_time=10),   # 2: smallest area, 30
]


@pytest.mark.parametrize("job_key, expected", [("smallest", 0), ("shortest", 1), ("smallest_area", 2)])
def test_smallest_area_ranks_by_requested_time_times_cores(job_key, expected):
    platform = hand_platform([(0, 16, 1.0, 100.0, 1.0)], [1000.0])
    engine = Engine(platform, hand_workload(AREA_JOBS))
    scheduler = QueueScheduler(engine)
    scheduler.admit(engine.next_decision_point())
    assert scheduler.first_by(job_key) == expected


def test_a_pass_stops_at_the_first_job_that_does_not_fit():
    # 4 cores: job 0 takes 3, job 1 (2 cores) does not fit and blocks job 2 (1 core).
    platform = hand_platform([(0, 4, 1.0, 100.0, 1.0)], [1000.0])
    workload = hand_workload([dict(res=3, delay=10), dict(res=2, delay=10), dict(res=1, delay=10)])
    engine, result = run(platform, workload, "first:first_fit")
    assert result.start.tolist() == [0.0, 10.0, 10.0]
    assert result.overutilization.core_shortages == [0.0]
    # With EASY, job 2 ends before job 1 could start and is backfilled.
    engine, result = run(platform, workload, "first:first_fit", backfill="easy")
    assert result.start.tolist() == [0.0, 10.0, 0.0]


def test_memory_shortage_is_recorded():
    # Two nodes of 2 cores and 100 MB: job 0 takes all of node 0's memory with one core. Job 1
    # needs 2 cores of 60 MB: 3 cores are free, but node 0 has no memory left and node 1 can
    # hold only one 60 MB core. Memory shortage until job 0 ends.
    platform = hand_platform([(0, 2, 1.0, 100.0, 1.0), (1, 2, 1.0, 100.0, 1.0)], [100.0, 100.0])
    workload = hand_workload([dict(res=1, delay=10, mem=100), dict(res=2, delay=10, mem=60)])
    engine, result = run(platform, workload, "first:first_fit")
    assert result.start.tolist() == [0.0, 10.0]
    assert result.overutilization.memory_shortages == [0.0]
    assert result.overutilization.core_shortages == []


def test_jobs_that_can_never_fit_are_rejected_not_left_blocking():
    platform = hand_platform([(0, 2, 1.0, 100.0, 1.0), (1, 2, 1.0, 100.0, 1.0)], [100.0, 100.0])
    workload = hand_workload([
        dict(res=1, delay=10, mem=150),   # more memory per core than any node has
        dict(res=3, delay=10, mem=60),    # each node can hold only one 60 MB core
        dict(res=5, delay=10),            # more cores than exist
        dict(res=2, delay=10, mem=50),
    ])
    for policy in ("first:first_fit", "shortest:high_mem", "random:random"):
        engine, result = run(platform, workload, policy)
        assert result.final_state.tolist() == [REJECTED_STATE] * 3 + [SUCCESS]
        assert result.start[3] == 0.0


def test_easy_backfilling_respects_memory():
    # Two nodes of 2 cores and 100 MB each. Job 0 (2 x 50 MB) fills node 0 until t=10 (it
    # asked for 20 s). Job 1, the head, needs 3 x 50 MB: it is blocked, its reservation is at
    # t=20, when 4 cores and both nodes' memory are free. Job 2 (1 core, 100 MB, long) would
    # fit by core count (one spare core at t=20) but would hold node 1's memory and push the
    # head back by 500 s: it must wait. Job 3 (1 core, 10 MB, long) leaves room and starts.
    platform = hand_platform([(0, 2, 1.0, 100.0, 1.0), (1, 2, 1.0, 100.0, 1.0)], [100.0, 100.0])
    workload = hand_workload([
        dict(subtime=0, res=2, delay=10, walltime=20, mem=50),
        dict(subtime=1, res=3, delay=5, walltime=100, mem=50),
        dict(subtime=2, res=1, delay=500, walltime=1000, mem=100),
        dict(subtime=3, res=1, delay=500, walltime=1000, mem=10),
    ])
    engine, result = run(platform, workload, "first:first_fit", backfill="easy")
    assert result.start.tolist() == [0.0, 10.0, 15.0, 3.0]
    # Any key pair works with EASY.
    for policy in ("smallest:high_mem", "low_mem_bw:low_power"):
        engine, result = run(platform, workload, policy, backfill="easy")
        assert (result.final_state == SUCCESS).all()


# -- Every pair on the bundled gaia platform with the head of the UniLu-Gaia trace ----------

@pytest.fixture(scope="module")
def gaia_runs():
    platform = load_platform(bundled_platform("gaia"))
    workload = load_workload(TRACES / "gaia-2014-head.swf.gz", max_res=platform.nb_machines,
                             reference_speed_gflops=platform.hierarchy.reference_speed_gflops,
                             rng=np.random.default_rng(0))
    runs = {}
    for job_key, core_key in DEFAULT_PAIRS:
        engine = Engine(platform, workload)
        result = run_policy(engine, PolicyConfig(job_key, core_key), rng=np.random.default_rng(3))
        assert engine.nb_unfinished == 0
        runs[job_key, core_key] = result
    return runs


def test_all_36_pairs_run_on_gaia_with_distinct_sensible_metrics(gaia_runs):
    assert len(gaia_runs) == 36
    seen = set()
    for pair, result in gaia_runs.items():
        m = headline_metrics(result)
        assert (result.final_state == SUCCESS).sum() + (result.final_state == 2).sum() == len(result.final_state), pair
        assert 0 < m.utilization <= 1 and m.consumed_joules > 0 and m.mean_waiting_time >= 0, pair
        seen.add((round(m.mean_waiting_time, 6), round(m.consumed_joules)))
    assert len(seen) == 36
    wait = {pair: headline_metrics(r).mean_waiting_time for pair, r in gaia_runs.items()}
    energy = {pair: headline_metrics(r).consumed_joules for pair, r in gaia_runs.items()}
    # Packing on fast, frugal processors beats spreading over random cores, for every job key.
    for job_key in JOB_KEYS:
        assert wait[job_key, "high_gflops"] < wait[job_key, "random"]
        assert energy[job_key, "low_power"] < energy[job_key, "random"]


def test_random_keys_follow_the_seed(tmp_path):
    platform = load_platform(bundled_platform("gaia"))
    workload = load_workload(TRACES / "gaia-2014-head.swf.gz", nb_jobs=300, max_res=platform.nb_machines,
                             reference_speed_gflops=platform.hierarchy.reference_speed_gflops,
                             rng=np.random.default_rng(0))
    texts = []
    for seed in (5, 5, 6):
        engine, result = run(platform, workload, "random:random", seed=seed)
        out = tmp_path / f"run{len(texts)}"
        write_outputs(result, str(out))
        texts.append((out / "out_jobs.csv").read_text() + (out / "overutilization.json").read_text())
    assert texts[0] == texts[1]
    assert texts[0] != texts[2]


def test_overutilization_file_is_documented_json(gaia_runs, tmp_path):
    result = gaia_runs["first", "high_mem_bw"]
    paths = write_outputs(result, str(tmp_path))
    data = json.loads(Path(paths["overutilization"]).read_text())
    assert data["format"] == "hdeeprm-overutilization/1"
    assert data["nb_processors"] == 342
    assert data["summary"]["core_shortages"] == len(data["core_shortages"]) > 0
    for proc, spans in data["bandwidth_spans"].items():
        assert 0 <= int(proc) < 342
        for start, end in spans:
            assert end is not None and start <= end  # every job ended, so every span closed


def test_policy_names_are_checked():
    with pytest.raises(Exception, match="unknown core selection key 'fastest'"):
        PolicyConfig.parse("first:fastest")
    with pytest.raises(Exception, match="expected JOBKEY:COREKEY"):
        PolicyConfig.parse("first")
    assert set(ALL_CORE_KEYS) >= {"first_fit", "random"}
