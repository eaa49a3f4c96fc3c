"""Homogeneous settings (RLScheduler's: jobs run exactly their trace run time on identical
cores): SWF jobs without memory demand, "<N>x<node type>" platforms, and flat XML platforms
given a one-core-per-node hierarchy for HeteroEnv."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from hdeeprm.common.errors import PlatformError
from hdeeprm.inputs.platform import (
    UNLIMITED_MEM_BW_GBS,
    UNLIMITED_MEMORY_MB,
    load_platform,
    load_xml_platform,
    with_flat_hierarchy,
)
from hdeeprm.inputs.platform.model import P_IDLE_PROCESSOR
from hdeeprm.inputs.workload import ConversionOptions, swf_to_workload
from hdeeprm.rl.env import HeteroEnv
from hdeeprm.simulation.engine import Engine
from hdeeprm.simulation.policies import PolicyConfig, run_policy

FLAT_XML = """<?xml version='1.0'?>
<!DOCTYPE platform SYSTEM "https://simgrid.org/simgrid.dtd">
<platform version="4.1">
  <zone id="AS0" routing="Full">
    <host id="d" speed="4Gf"><prop id="watt_per_state" value="10:20:30"/></host>
    <host id="a" speed="1Gf"><prop id="wattage_per_state" value="100:120"/></host>
    <host id="b" speed="2Gf,1Gf" pstate="1">
      <prop id="wattage_per_state" value="90:150,50:70"/>
    </host>
    <host id="c" speed="2Gf"/>
    <host id="master_host" speed="1Gf"/>
  </zone>
</platform>
"""


def swf_line(job, submit, run, procs, req_time=-1, req_mem=-1) -> str:
    fields = [job, submit, 0, run, procs, -1, -1, procs, req_time, req_mem, 1, 1, 1, -1, 1, -1,
              -1, -1]
    return " ".join(str(f) for f in fields)


def write_swf(tmp_path: Path, lines: list[str]) -> Path:
    path = tmp_path / "t.swf"
    path.write_text("\n".join(lines) + "\n")
    return path


def flat_xml(tmp_path: Path, text: str = FLAT_XML) -> Path:
    path = tmp_path / "flat.xml"
    path.write_text(text)
    return path


def run_first_fit(platform, workload, *, fast=None):
    return run_policy(Engine(platform, workload), PolicyConfig("first", "first_fit"), fast=fast)


# --------------------------------------------------------------------------------------------
# memory_demand "none": no bandwidth throttling, jobs last their trace run time

RUNS = [100, 250, 37, 1000, 3, 640, 77, 128, 9, 415]


def test_without_memory_demand_jobs_last_their_trace_run_time(tmp_path):
    # 16-core jobs on one Dell R720 (2 x 8 cores, 51.2 GB/s per processor): any drawn mem_bw
    # above 6.4 GB/s per core over-subscribes a processor, which then runs at 0.75 x speed.
    platform = load_platform("1xDell R720")
    path = write_swf(tmp_path, [swf_line(i + 1, 10 * i, run, 16, req_time=100_000, req_mem=2000)
                                for i, run in enumerate(RUNS)])

    def durations(memory_demand, fast):
        workload, _ = swf_to_workload(path, ConversionOptions(
            reference_speed_gflops=platform.hierarchy.reference_speed_gflops,
            max_res=platform.nb_machines, memory_demand=memory_demand))
        result = run_first_fit(platform, workload, fast=fast)
        assert (result.final_state == result.final_state[0]).all()  # all completed alike
        return result.finish - result.start

    for fast in (None, False):
        throttled = durations("hdeeprm", fast)
        assert (throttled > np.array(RUNS) + 1).any()  # today's default is slowed down
        assert durations("none", fast) == pytest.approx(np.array(RUNS, dtype=float), abs=1e-9)


def test_rlscheduler_setting_on_128_homogeneous_cores(tmp_path):
    """Unknown run times kept as 10 s jobs, no memory demand, 8 x Dell R720 = 128 cores."""
    lines = [swf_line(i + 1, 7 * i, -1 if i % 4 == 0 else 20 + 3 * i, 1 + (5 * i) % 128,
                      req_time=-1 if i % 5 == 0 else 4000) for i in range(40)]
    path = write_swf(tmp_path, lines)
    platform = load_platform("8xDell R720")
    workload, report = swf_to_workload(path, ConversionOptions(
        reference_speed_gflops=platform.hierarchy.reference_speed_gflops,
        max_res=platform.nb_machines, unknown_run_time="short", memory_demand="none"))
    assert platform.nb_machines == 128
    assert report.accepted == 40 and report.unknown_run_time_kept == 10
    expected = np.array([10 if i % 4 == 0 else 20 + 3 * i for i in range(40)], dtype=float)
    result = run_first_fit(platform, workload)
    # ids follow submit order, which is trace order here
    assert result.finish - result.start == pytest.approx(expected, abs=1e-9)
    assert not result.overutilization.as_json()["bandwidth_spans"]


# --------------------------------------------------------------------------------------------
# with_flat_hierarchy


def test_flat_hierarchy_one_node_processor_core_per_host(tmp_path):
    flat = load_xml_platform(flat_xml(tmp_path))
    platform = with_flat_hierarchy(flat)
    h = platform.hierarchy
    assert platform.host_names == flat.host_names == ("a", "b", "c", "d")
    assert platform.source == flat.source
    assert h.core_processor.tolist() == h.core_node.tolist() == h.processor_node.tolist() \
        == [0, 1, 2, 3]
    assert h.node_cluster.tolist() == [0, 0, 0, 0]
    # speed of the declared p-state (b declares its second one), power at full load there
    assert h.processor_gflops_per_core.tolist() == [1.0, 1.0, 2.0, 4.0]
    assert h.processor_watts_per_core.tolist() == [120.0, 70.0, 0.0, 30.0]
    assert h.reference_speed_gflops == 2.0
    assert (h.node_memory_mb == UNLIMITED_MEMORY_MB).all()
    assert (h.processor_mem_bw_gbs == UNLIMITED_MEM_BW_GBS).all()
    # HDeepRM's four p-states, from the declared one
    assert platform.speeds.tolist() == [
        [s, 0.75 * s, 0.001, 0.001] for s in (1e9, 1e9, 2e9, 4e9)]
    assert platform.watts_idle.tolist() == [[w] * 4 for w in (100.0, 50.0, 0.0, 10.0)]
    assert platform.watts_full.tolist() == [
        [f, f, i, i] for i, f in ((100, 120), (50, 70), (0, 0), (10, 30))]
    assert platform.nb_pstates.tolist() == [4] * 4
    assert platform.initial_pstate.tolist() == [P_IDLE_PROCESSOR] * 4
    assert flat.hierarchy is None  # the input is left as it was


def test_unlimited_memory_and_bandwidth_never_refuse_nor_throttle():
    from hdeeprm.simulation.resources import UNLIMITED, to_kb, to_kbs

    # They fit the contention model's integer kB and kB/s with room to spare...
    assert 0 < to_kb(UNLIMITED_MEMORY_MB) <= UNLIMITED
    assert 0 < to_kbs(UNLIMITED_MEM_BW_GBS) <= UNLIMITED
    # ...and exceed what any job of any node could ask (1 TB per core, 10 TB/s per core).
    assert UNLIMITED_MEMORY_MB >= 1e6 * 1e3 and UNLIMITED_MEM_BW_GBS >= 1e4 * 1e3


def test_flat_hierarchy_errors(tmp_path):
    with pytest.raises(PlatformError, match="already has a node/processor hierarchy"):
        with_flat_hierarchy(load_platform("2xDell R720"))
    zero = flat_xml(tmp_path, FLAT_XML.replace('speed="2Gf"/>', 'speed="0f"/>'))
    with pytest.raises(PlatformError) as info:
        with_flat_hierarchy(load_xml_platform(zero))
    assert info.value.where == "host 'c'" and info.value.field == "speed"
    assert "positive speed" in str(info.value)


def test_flat_hierarchy_schedules_and_bills_as_the_flat_platform(tmp_path):
    """Same starts, ends and energy as the XML without hierarchy: nothing is throttled or
    refused, and idle cores draw the XML's idle power in P3."""
    # Every host declares p-state 0 here, so that Batsim's billing of p-state 0 before the
    # first event is the same on both.
    xml = flat_xml(tmp_path, FLAT_XML.replace('speed="2Gf,1Gf" pstate="1"', 'speed="1Gf,2Gf"'))
    lines = [swf_line(i + 1, 3 * i, 10 + 7 * i, 1 + i % 4, req_time=10_000, req_mem=8_000_000)
             for i in range(12)]
    path = write_swf(tmp_path, lines)
    flat = load_xml_platform(xml)
    hier = with_flat_hierarchy(flat)
    options = ConversionOptions(reference_speed_gflops=hier.hierarchy.reference_speed_gflops,
                                max_res=flat.nb_machines)
    workload, _ = swf_to_workload(path, options)
    assert min(workload.profiles[j.profile].extra["mem_bw"] for j in workload.jobs) > 0
    a = run_first_fit(flat, workload)
    b = run_first_fit(hier, workload)
    assert np.array_equal(a.start, b.start) and np.array_equal(a.finish, b.finish)
    assert b.consumed_joules == pytest.approx(a.consumed_joules, rel=1e-12)
    assert b.consumed_joules > 0


@pytest.mark.parametrize("fast", [None, False])
def test_hetero_env_runs_on_a_flat_xml_with_flat_hierarchy(tmp_path, fast):
    lines = [swf_line(i + 1, 5 * i, 20 + i, 1 + i % 3, req_time=60, req_mem=500_000)
             for i in range(15)]
    path = write_swf(tmp_path, lines)
    platform = with_flat_hierarchy(load_platform(flat_xml(tmp_path)))
    env = HeteroEnv(platform, str(path), episode_jobs=None, fast=fast)
    obs, info = env.reset(seed=0)
    steps, done = 0, False
    while not done:
        assert env.observation_space.contains(obs)
        valid = np.flatnonzero(info["action_mask"])
        action = int(valid[steps % len(valid)])  # walk through the valid actions
        obs, reward, terminated, truncated, info = env.step(action)
        assert np.isfinite(reward)
        steps += 1
        done = terminated or truncated
        assert steps < 1000
    assert terminated and info["completed_jobs"] == 15 and steps > 1
    result = env.result()
    assert (result.finish >= result.start).all()
    # no bandwidth over-subscription, no memory shortage
    over = result.overutilization.as_json()
    assert not over["bandwidth_spans"] and not over["memory_shortages"]
    env.close()


def test_hetero_env_takes_a_flat_xml_path_as_it_is(tmp_path):
    lines = [swf_line(i + 1, 5 * i, 20 + i, 1 + i % 3, req_time=60) for i in range(6)]
    env = HeteroEnv(flat_xml(tmp_path), str(write_swf(tmp_path, lines)), episode_jobs=None,
                    action_space="job_window", window_jobs=4)
    assert env.platform.hierarchy is not None  # given the one-core-per-host hierarchy
    obs, info = env.reset(seed=0)
    done = False
    while not done:
        obs, _, terminated, truncated, info = env.step(int(np.flatnonzero(info["action_mask"])[0]))
        done = terminated or truncated
    assert np.isfinite(env.result().finish).all()
