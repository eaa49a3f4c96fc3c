"""The Batsim backend without the binary: protocol messages, exported files, the backend
against Batsim's side of every recorded transcript, process handling with fake batsim
executables, and HeteroEnv on the backend. Tests with the real binary are marked ``batsim``.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import sys
import time
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("zmq")

from hdeeprm.backends import make_simulator
from hdeeprm.backends.batsim import BatsimSimulator, find_batsim, platform_xml, workload_json
from hdeeprm.backends.batsim.export import write_platform_xml
from hdeeprm.backends.batsim.messages import (
    CallMeLater,
    ExecuteJob,
    Message,
    UnknownEvent,
    decode,
    encode,
    from_json,
)
from hdeeprm.backends.batsim.replay_server import EngineServerThread, ReplayServerThread
from hdeeprm.common.errors import BatsimError, ConfigError, PlatformError
from hdeeprm.inputs.platform import bundled_platform, load_platform, load_xml_platform, read_platform_description
from hdeeprm.inputs.workload import parse_batsim_workload, read_batsim_workload
from hdeeprm.rl.env import HeteroEnv
from hdeeprm.simulation.engine import Engine
from hdeeprm.simulation.intervals import parse_intervals
from hdeeprm.simulation.policies import PolicyConfig, QueueScheduler, run_policy
from hdeeprm.simulation.replay import find_scenario, read_transcript

REFERENCE = Path(__file__).parent / "data" / "batsim-reference"
SCENARIOS = sorted(p.name for p in REFERENCE.iterdir() if p.is_dir())
QUICKSTART = bundled_platform("quickstart")
KTH_HEAD = Path(__file__).parents[1] / "hdeeprm" / "data" / "traces" / "kth-sp2-head.swf.gz"


def _inputs(name: str):
    scenario = find_scenario(str(REFERENCE / name))
    platform = load_platform(scenario.platform, hierarchy=scenario.hierarchy)
    return scenario, platform, read_batsim_workload(scenario.workload)


def _policy(name: str) -> PolicyConfig:
    words = (REFERENCE / name / "policy.txt").read_text().split()
    return PolicyConfig.parse("first:first_fit", "easy" if words[0] == "easy" else None)


def _drive(simulator, name: str) -> None:
    """The scheduler that produced the recording: FCFS (first:first_fit), EASY, or FCFS on
    the HDeepRM layer (hierarchy platforms), plus the p-state script of A8."""
    script_path = REFERENCE / name / "script.json"
    if not script_path.exists():
        run_policy(simulator, _policy(name))
        return
    script = json.loads(script_path.read_text())
    scheduler = QueueScheduler(simulator, _policy(name))
    scheduler.on_begin()
    for entry in script:
        simulator.call_me_later(entry["at"])
    while (point := simulator.next_decision_point()) is not None:
        if point.requested_calls:
            for entry in script:
                if entry["at"] == point.time:
                    simulator.set_pstate(parse_intervals(entry["resources"]), entry["pstate"])
        scheduler.on_decision_point(point)


# ------------------------------------------------------------------------------- messages


@pytest.mark.parametrize("name", SCENARIOS)
def test_every_recorded_message_decodes_and_encodes_back(name):
    scenario = find_scenario(str(REFERENCE / name))
    count = 0
    for lineno, _, msg in read_transcript(scenario.transcript):
        message = from_json(msg)
        assert json.loads(encode(message)) == msg, f"line {lineno}"
        assert decode(encode(message)) == message
        count += 1
    assert count > 2


def test_typed_events_and_unknown_ones():
    raw = ('{"now": 5.5, "events": [{"timestamp": 5.5, "type": "EXECUTE_JOB", "data": '
           '{"job_id": "w0!3", "alloc": "0-3 7", "mapping": {"0": "0"}}}, {"timestamp": 5.5, '
           '"type": "CALL_ME_LATER", "data": {"timestamp": 20}}, {"timestamp": 5.5, '
           '"type": "FUTURE_EVENT", "data": {"x": 1}}]}')
    message = decode(raw)
    execute, call, unknown = message.events
    assert execute == ExecuteJob(timestamp=5.5, job_id="w0!3", alloc="0-3 7", extra={"mapping": {"0": "0"}})
    assert isinstance(call, CallMeLater) and call.at == 20.0
    assert isinstance(unknown, UnknownEvent) and unknown.type == "FUTURE_EVENT"
    assert json.loads(encode(message)) == json.loads(raw)


@pytest.mark.parametrize("raw, words", [
    ("not json", "not JSON"),
    ('{"events": []}', '"now"'),
    ('{"now": 1, "events": [{"type": "EXECUTE_JOB", "timestamp": 1, "data": {"alloc": "0"}}]}',
     "events[0] (EXECUTE_JOB): missing or malformed field 'job_id'"),
    ('{"now": "soon", "events": []}', "now must be a number"),
])
def test_malformed_messages_name_the_field(raw, words):
    with pytest.raises(BatsimError, match=None) as info:
        decode(raw)
    assert words in str(info.value)


def test_nan_cannot_be_sent():
    with pytest.raises(BatsimError, match="cannot encode"):
        encode(Message(float("nan")))


# ------------------------------------------------------------------------------- export


@pytest.mark.parametrize("network", ["zero-latency", "links"])
def test_exported_platform_reads_back_identically(tmp_path, network):
    platform = load_platform(QUICKSTART)
    description = read_platform_description(QUICKSTART)
    path = tmp_path / "platform.xml"
    write_platform_xml(platform, path, network, description)
    back = load_xml_platform(path)
    assert back.host_names == platform.host_names
    assert list(back.host_names) == sorted(back.host_names)
    for field in ("speeds", "watts_idle", "watts_full", "nb_pstates", "initial_pstate"):
        assert np.array_equal(getattr(back, field), getattr(platform, field), equal_nan=True), field
    text = path.read_text()
    assert "master_host" in text and 'id="wattage_per_state"' in text
    if network == "zero-latency":
        assert "<link" not in text and 'routing="Vivaldi"' in text
    else:
        # One up/down link per node and one uplink per cluster, two routes per core.
        clusters = len(description.clusters)
        assert text.count("<link ") == platform.hierarchy.nb_nodes + clusters
        assert text.count("<route ") == 2 * platform.nb_machines
        assert text.count("<zoneRoute ") == 2 * clusters


def test_export_refuses_what_batsim_would_misnumber(tmp_path):
    platform = load_platform(REFERENCE / "A1-delay-walltime" / "platform.xml")
    with pytest.raises(ConfigError, match="links"):
        platform_xml(platform, "links")
    with pytest.raises(ConfigError, match="unknown network"):
        platform_xml(platform, "wifi")
    from dataclasses import replace

    unsorted = replace(platform, host_names=tuple(reversed(platform.host_names)))
    with pytest.raises(PlatformError, match="sort"):
        platform_xml(unsorted)


def test_exported_workload_gives_every_job_its_own_profile():
    jobs = read_batsim_workload(REFERENCE / "A6-hdeeprm-kth" / "workload.json").compile()
    doc = json.loads(workload_json(jobs, 16))
    assert len(doc["profiles"]) == len(doc["jobs"]) == jobs.nb_jobs
    assert len({job["profile"] for job in doc["jobs"]}) == jobs.nb_jobs
    back = parse_batsim_workload(json.dumps(doc)).compile()
    for field in ("job_ids", "subtime", "res", "walltime", "kind", "work", "mem_mb", "mem_bw_gbs",
                  "req_time", "req_work"):
        a, b = getattr(jobs, field), getattr(back, field)
        assert (a == b) if isinstance(a, tuple) else np.array_equal(a, b, equal_nan=True), field


# ------------------------------------------------------------------- the backend vs transcripts


@pytest.mark.parametrize("name", SCENARIOS)
def test_backend_replies_match_every_recorded_transcript(name):
    scenario, platform, workload = _inputs(name)
    server = ReplayServerThread(scenario.transcript, outputs=str(REFERENCE / name), timeout_s=20)
    with BatsimSimulator(platform, workload, launcher=server, timeout_s=20) as simulator:
        _drive(simulator, name)  # raises at the end if any reply differed
        result = simulator.result()
        assert simulator.nb_unfinished == 0
        assert (Path(simulator.output_dir) / "out_jobs.csv").exists()
    # The job facts come from Batsim's messages: they equal Batsim's own out_jobs.csv.
    import csv

    with open(REFERENCE / name / "out_jobs.csv") as f:
        rows = {row["job_id"]: row for row in csv.DictReader(f)}
    index = {job_id: i for i, job_id in enumerate(result.workload.job_ids)}
    for job_id, row in rows.items():
        i = index[job_id]
        if row["final_state"] == "REJECTED":
            continue
        assert abs(result.start[i] - float(row["starting_time"])) <= 1e-6
        assert abs(result.finish[i] - float(row["finish_time"])) <= 1e-6


def test_a_different_scheduler_is_caught_at_the_first_differing_reply():
    scenario, platform, workload = _inputs("A4-easy-32")
    server = ReplayServerThread(scenario.transcript, timeout_s=20)
    with pytest.raises(BatsimError, match=r"line \d+: the reply differs") as info:
        with BatsimSimulator(platform, workload, launcher=server, timeout_s=20) as simulator:
            run_policy(simulator, PolicyConfig.parse("first:first_fit"))  # FCFS, not EASY
    assert "EXECUTE_JOB" in str(info.value)


def test_machine_ids_come_from_simulation_begins():
    """A Batsim that numbers machines in a shuffled order: allocations are translated both
    ways, and the schedule equals the embedded engine's."""
    platform = load_platform(QUICKSTART)
    workload = read_batsim_workload(REFERENCE / "A6-hdeeprm-kth" / "workload.json")
    from dataclasses import replace

    workload = replace(workload, jobs=tuple(j for j in workload.jobs if j.res <= platform.nb_machines))
    embedded = run_policy(Engine(platform, workload),
                          PolicyConfig.parse("shortest:high_gflops"))
    server = EngineServerThread(platform, workload, permute_ids=True, rng=np.random.default_rng(7))
    assert not np.array_equal(server.batsim_of, np.arange(platform.nb_machines))
    with BatsimSimulator(platform, workload, launcher=server, timeout_s=20) as simulator:
        batsim = run_policy(simulator, PolicyConfig.parse("shortest:high_gflops"))
    # Batsim prints times with 6 decimals, and the backend's times are the printed ones.
    np.testing.assert_allclose(batsim.start, embedded.start, rtol=0, atol=1e-6)
    np.testing.assert_allclose(batsim.finish, embedded.finish, rtol=0, atol=1e-6)
    assert all(np.array_equal(a, b) for a, b in zip(batsim.alloc, embedded.alloc) if a is not None)
    assert batsim.consumed_joules == pytest.approx(embedded.consumed_joules, rel=1e-12)


# ---------------------------------------------------------------------- HeteroEnv on Batsim


def _env_episode(backend: str, launcher=None):
    platform = load_platform(QUICKSTART)
    env = HeteroEnv(platform, KTH_HEAD, nb_jobs=60, observation="normal",
                    objective="avg_job_slowdown", backend=backend,
                    backend_options={"launcher": launcher, "timeout_s": 20} if launcher else None)
    observations, rewards = [], []
    obs, info = env.reset(seed=3)
    rng = np.random.default_rng(1)
    done = False
    while not done:
        action = int(rng.choice(np.flatnonzero(info["action_mask"])))
        obs, reward, terminated, truncated, info = env.step(action)
        observations.append(obs)
        rewards.append(reward)
        done = terminated or truncated
    result = env.result()
    env.close()
    return np.array(observations), np.array(rewards), result


def test_heteroenv_runs_unchanged_on_the_batsim_backend():
    platform = load_platform(QUICKSTART)
    obs_e, rewards_e, result_e = _env_episode("embedded")

    class Launcher:  # the env builds its simulator at reset; the server needs the same jobs
        def __call__(self, inputs, endpoint):
            jobs = read_batsim_workload(inputs.workload_json)
            return EngineServerThread(platform, jobs, permute_ids=True,
                                      rng=np.random.default_rng(2))(inputs, endpoint)

    obs_b, rewards_b, result_b = _env_episode("batsim", Launcher())
    assert len(rewards_e) > 30
    assert np.array_equal(obs_e, obs_b)  # work done comes from the mirror engine
    # Rewards integrate over time, and Batsim's times are printed with 6 decimals.
    np.testing.assert_allclose(rewards_b, rewards_e, rtol=1e-6)
    np.testing.assert_allclose(result_e.start, result_b.start, rtol=0, atol=1e-6)


def test_env_closes_the_simulator_between_episodes(tmp_path):
    platform = load_platform(QUICKSTART)
    servers = []

    def launcher(inputs, endpoint):
        servers.append(EngineServerThread(platform, read_batsim_workload(inputs.workload_json)))
        return servers[-1](inputs, endpoint)

    env = HeteroEnv(platform, KTH_HEAD, nb_jobs=40, episode_jobs=10, backend="batsim",
                    backend_options={"launcher": launcher, "timeout_s": 20})
    env.reset(seed=0)
    first = env.engine
    env.step(0)
    env.reset(seed=1)
    assert not first.workdir.exists()  # temporary inputs removed with the first episode
    env.close()
    assert not env.engine.workdir.exists()
    assert len(servers) == 2 and all(not s._thread.is_alive() for s in servers)


# --------------------------------------------------------------------- processes (fake batsim)


def _fake_batsim(tmp_path: Path, body: str) -> str:
    path = tmp_path / "batsim"
    path.write_text(f"#!/bin/sh\n{body}\n")
    path.chmod(path.stat().st_mode | stat.S_IEXEC)
    return str(path)


def _replaying_batsim(tmp_path: Path, name: str) -> str:
    scenario = find_scenario(str(REFERENCE / name))
    return _fake_batsim(tmp_path, f'exec "{sys.executable}" -m hdeeprm.backends.batsim.replay_server '
                                  f'--transcript "{scenario.transcript}" --outputs "{REFERENCE / name}" -- "$@"')


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie still answers kill(0); it is reaped by our wait, so look at its state.
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except OSError:
        return False


def test_a_batsim_process_runs_end_to_end(tmp_path):
    executable = _replaying_batsim(tmp_path, "A5-hdeeprm-small")
    _, platform, workload = _inputs("A5-hdeeprm-small")
    workdir = tmp_path / "run"
    simulator = make_simulator("batsim", platform, workload, batsim=executable, workdir=workdir,
                               timeout_s=30)
    try:
        run_policy(simulator, _policy("A5-hdeeprm-small"))
    finally:
        simulator.close()
    # Explicit work folders are kept: inputs written for Batsim, its log and its outputs.
    for name in ("platform.xml", "workload.json", "batsim.log", "out_jobs.csv", "out_schedule.csv"):
        assert (workdir / name).exists(), name


def test_missing_batsim_says_how_to_point_to_it(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.delenv("HDEEPRM_BATSIM", raising=False)
    with pytest.raises(BatsimError, match="not installed.*HDEEPRM_BATSIM"):
        find_batsim()
    with pytest.raises(BatsimError, match="no such executable"):
        find_batsim(tmp_path / "nowhere" / "batsim")
    _, platform, workload = _inputs("A1-delay-walltime")
    env = HeteroEnv(load_platform(QUICKSTART), KTH_HEAD, nb_jobs=20, backend="batsim")
    with pytest.raises(BatsimError, match="not installed"):
        env.reset(seed=0)


def test_batsim_that_dies_is_reported_with_its_log(tmp_path):
    executable = _fake_batsim(tmp_path, 'echo "[batsim] cannot read platform" ; exit 4')
    _, platform, workload = _inputs("A1-delay-walltime")
    with pytest.raises(BatsimError, match=r"(?s)status 4.*cannot read platform"):
        BatsimSimulator(platform, workload, batsim=executable, workdir=tmp_path / "run", timeout_s=10)


def test_silent_batsim_times_out_and_is_stopped(tmp_path):
    pidfile = tmp_path / "pid"
    executable = _fake_batsim(tmp_path, f'echo $$ > "{pidfile}"; exec sleep 60')
    _, platform, workload = _inputs("A1-delay-walltime")
    started = time.monotonic()
    with pytest.raises(BatsimError, match="no message from Batsim for 1 s"):
        BatsimSimulator(platform, workload, batsim=executable, workdir=tmp_path / "run", timeout_s=1)
    assert time.monotonic() - started < 10
    assert not _pid_alive(int(pidfile.read_text()))


def test_interrupting_a_run_leaves_no_batsim_process(tmp_path):
    executable = _replaying_batsim(tmp_path, "A4-easy-32")
    _, platform, workload = _inputs("A4-easy-32")
    simulator = BatsimSimulator(platform, workload, batsim=executable, workdir=tmp_path / "run",
                                timeout_s=20)
    pid = simulator._peer.pid
    assert _pid_alive(pid)
    with pytest.raises(KeyboardInterrupt):
        try:
            simulator.next_decision_point()
            raise KeyboardInterrupt  # as if the user pressed Ctrl-C mid-run
        finally:
            simulator.close()
    assert not _pid_alive(pid)


# ------------------------------------------------------------------------------ real Batsim


@pytest.mark.batsim
@pytest.mark.skipif(shutil.which("batsim") is None, reason="batsim is not on PATH")
@pytest.mark.parametrize("pair", ["first:first_fit", "shortest:high_gflops", "smallest:low_power"])
def test_real_batsim_agrees_with_the_embedded_engine(tmp_path, pair):
    from hdeeprm.analysis.crossval import crossvalidate

    report = crossvalidate(QUICKSTART, None, str(REFERENCE / "A6-hdeeprm-kth" / "workload.json"),
                           PolicyConfig.parse(pair), tmp_path)
    assert report.agree, report.summary()


# ------------------------------------------------------------------ network="links" (zones)


@pytest.mark.parametrize("name", ["quickstart", "learning", "mc2"])
def test_links_export_follows_simgrids_zone_rules(name):
    """SimGrid 3.32 routing rules the links export must follow (CI without batsim guards them):
    a message between two hosts of one zone asks that zone for a local route, and a None zone
    (EmptyZone) aborts there; Batsim's submitters and server talk on master_host, so the master
    zone must be a routed zone (Full: its loopback). zoneRoutes join zones with gateways inside
    them; routes join hosts/routers of their own zone."""
    from lxml import etree

    path = bundled_platform(name)
    platform, description = load_platform(path), read_platform_description(path)
    root = etree.fromstring(platform_xml(platform, "links", description))
    assert not root.xpath('//zone[@routing="None"]')
    (main,) = root.xpath("/platform/zone")
    assert main.get("routing") == "Full"
    (master_host,) = root.xpath('//host[@id="master_host"]')
    master = master_host.getparent()
    assert master.tag == "zone" and master.get("routing") == "Full"
    assert master.getparent() is main and len(master.xpath("host")) == 1
    zones = {z.get("id"): z for z in main.xpath("zone")}
    assert len(zones) == len(description.clusters) + 1
    for route in main.xpath("zoneRoute"):
        for end, gateway in (("src", "gw_src"), ("dst", "gw_dst")):
            zone = zones[route.get(end)]
            assert zone.xpath(f'.//*[(self::host or self::router) and @id="{route.get(gateway)}"]')
        assert route.xpath("link_ctn")
    for zone in main.xpath("zone"):
        assert zone.get("routing") == "Full"
        names = {e.get("id") for e in zone.xpath("host|router")}
        links = {e.get("id") for e in zone.xpath("link")}
        for route in zone.xpath("route"):
            assert {route.get("src"), route.get("dst")} <= names
            assert {c.get("id") for c in route.xpath("link_ctn")} <= links
    # Every host of the platform is exported once, in a cluster zone.
    hosts = [h.get("id") for h in root.xpath('//zone[starts-with(@id, "clu_")]/host')]
    assert sorted(hosts) == list(platform.host_names)


def test_links_export_refuses_a_foreign_description():
    platform = load_platform(QUICKSTART)
    with pytest.raises(ConfigError, match="does not describe this platform"):
        platform_xml(platform, "links", read_platform_description(bundled_platform("mc2")))


def _links_run(tmp_path, name: str, nb_jobs: int, pair: str = "first:first_fit"):
    """One policy on the embedded engine and on real Batsim with the links export."""
    from hdeeprm.common.seeding import run_generators
    from hdeeprm.inputs.workload import ConversionOptions, load_workload

    path = bundled_platform(name)
    platform, description = load_platform(path), read_platform_description(path)
    options = ConversionOptions(nb_jobs=nb_jobs, reference_speed_gflops=platform.hierarchy.reference_speed_gflops,
                                max_res=platform.nb_machines)
    workload = load_workload(str(KTH_HEAD), options=options, rng=run_generators(0)[0])
    policy = PolicyConfig.parse(pair)
    embedded = {accounting: run_policy(Engine(platform, workload, energy_accounting=accounting), policy,
                                       rng=run_generators(0)[1]) for accounting in ("batsim", "ideal")}
    simulator = make_simulator("batsim", platform, workload, network="links", description=description,
                               workdir=tmp_path / "batsim", timeout_s=60)
    try:
        batsim = run_policy(simulator, policy, rng=run_generators(0)[1])
        ended = simulator.now
    finally:
        simulator.close()
    return embedded, batsim, ended, tmp_path / "batsim"


@pytest.mark.batsim
@pytest.mark.skipif(shutil.which("batsim") is None, reason="batsim is not on PATH")
@pytest.mark.parametrize("name", ["quickstart", "mc2"])
def test_real_batsim_runs_the_links_export_to_the_end(tmp_path, name):
    """Real Batsim loads the links platform (one cluster; 32 clusters) and runs to the end.
    Jobs have no communication, so only Batsim's own 1-byte messages cross the links (0 us
    latency on every bundled platform): their transfer times, about 1e-9 s each, stay below the
    6 decimals Batsim writes its times with, so every job starts and ends when the embedded
    engine says, to that precision, on the same machines."""
    import csv

    embedded, batsim, ended, outputs = _links_run(tmp_path, name, 30)
    reference = embedded["batsim"]
    assert np.all(batsim.final_state == reference.final_state)
    assert np.isfinite(batsim.start).all()
    # The backend has already checked that batsim exited with status 0 after SIMULATION_ENDS;
    # SimGrid's energy plugin writes its total when the simulation ends.
    assert "Total energy consumption" in (outputs / "batsim.log").read_text()
    with open(outputs / "out_jobs.csv") as f:
        assert len(list(csv.DictReader(f))) == reference.workload.nb_jobs
    np.testing.assert_allclose(batsim.start, reference.start, rtol=0, atol=1e-6)
    np.testing.assert_allclose(batsim.finish, reference.finish, rtol=0, atol=1e-6)
    assert all(np.array_equal(a, b) for a, b in zip(batsim.alloc, reference.alloc) if a is not None)
    assert ended == pytest.approx(np.nanmax(reference.finish), abs=1e-6)
    with open(outputs / "out_schedule.csv") as f:
        schedule = next(csv.DictReader(f))
    assert int(schedule["nb_jobs"]) == reference.workload.nb_jobs
    assert float(schedule["makespan"]) == pytest.approx(float(np.nanmax(reference.finish)), abs=1e-6)
    # Energy: the first job is submitted at t=0, and with links the energy query that Batsim
    # makes then lands a few 1e-10 s after 0, which ends SimGrid's start-up quirk (machines
    # billed at p-state 0) at once. Batsim's total is then the 'ideal' accounting, not the
    # 'batsim' one that the zero-latency export reproduces.
    joules = float(schedule["consumed_joules"])
    assert joules == pytest.approx(embedded["ideal"].consumed_joules, rel=1e-9)
    assert joules < embedded["batsim"].consumed_joules * (1 - 1e-4)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="process groups as on Linux")
def test_stopping_batsim_stops_what_a_wrapper_script_started(tmp_path):
    # Issue 17: a "batsim" that is a wrapper script which does not exec leaves the real
    # process as its child; stopping must reach it too.
    from hdeeprm.backends.batsim.process import BatsimProcess

    wrapper = tmp_path / "batsim-wrapper.sh"
    wrapper.write_text(f"#!/bin/sh\nsleep 300 &\necho $! > {tmp_path}/child.pid\nwait\n")
    wrapper.chmod(0o755)
    process = BatsimProcess([str(wrapper)], tmp_path / "batsim.log")
    for _ in range(200):
        if (tmp_path / "child.pid").is_file() and (tmp_path / "child.pid").read_text().strip():
            break
        time.sleep(0.02)
    child = int((tmp_path / "child.pid").read_text())
    os.kill(child, 0)  # alive
    process.close()
    for _ in range(100):
        try:
            os.kill(child, 0)
        except ProcessLookupError:
            break
        time.sleep(0.05)
    else:
        os.kill(child, 9)
        pytest.fail("the wrapper's child survived close()")
