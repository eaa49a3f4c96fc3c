"""Hostile inputs found by benchmarks/fuzz.py: each is one ConfigError / ReplayError line,
never a traceback, a hang or an allocation of the whole memory."""

from __future__ import annotations

import gzip
import json
import shutil
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

from hdeeprm.cli.main import main
from hdeeprm.common.errors import ConfigError, ReplayError
from hdeeprm.common.seeding import episode_seeds, run_generators
from hdeeprm.simulation.replay import read_transcript

REFERENCE = Path(__file__).parent / "data" / "batsim-reference"

BEGINS = {"from": "batsim", "msg": {"now": 0.0, "events": [
    {"timestamp": 0.0, "type": "SIMULATION_BEGINS", "data": {"nb_resources": 2}}]}}
SUBMITTED = {"from": "batsim", "msg": {"now": 0.0, "events": [
    {"timestamp": 0.0, "type": "JOB_SUBMITTED", "data": {"job_id": "w0!0", "job": {"id": "w0!0"}}}]}}
EXECUTE = {"from": "scheduler", "msg": {"now": 0.0, "events": [
    {"timestamp": 0.0, "type": "EXECUTE_JOB", "data": {"job_id": "w0!0", "alloc": "0"}},
    {"timestamp": 0.0, "type": "SET_RESOURCE_STATE", "data": {"resources": "1", "state": "1"}}]}}


def transcript(tmp_path: Path, *records, name: str = "transcript.jsonl") -> str:
    path = tmp_path / name
    text = "".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in records)
    path.write_bytes(gzip.compress(text.encode()) if name.endswith(".gz") else text.encode())
    return str(path)


def replay_error(path: str) -> str:
    with pytest.raises(ReplayError) as error:
        list(read_transcript(path))
    message = str(error.value)
    assert message.startswith(path) and "\n" not in message and len(message) < len(path) + 220
    return message


def test_valid_transcript_reads_unchanged(tmp_path):
    path = transcript(tmp_path, BEGINS, SUBMITTED, "", EXECUTE)
    assert list(read_transcript(path)) == [(1, "batsim", BEGINS["msg"]), (2, "batsim", SUBMITTED["msg"]),
                                           (4, "scheduler", EXECUTE["msg"])]


def test_reference_transcripts_still_read():
    for path in sorted(REFERENCE.glob("*/transcript.jsonl*")):
        assert len(list(read_transcript(str(path)))) > 2


def test_non_utf8_transcript(tmp_path):
    path = tmp_path / "transcript.jsonl"
    path.write_bytes(json.dumps(BEGINS).encode() + b"\n\xff\xfe{}\n")
    assert "line 2: not UTF-8 text (byte 0xff" in replay_error(str(path))


def test_truncated_and_corrupt_gzip(tmp_path):
    path = tmp_path / "transcript.jsonl.gz"
    data = gzip.compress((json.dumps(BEGINS) + "\n").encode() * 50)
    path.write_bytes(data[:len(data) // 2])
    assert "truncated gzip data" in replay_error(str(path))
    corrupt = bytearray(data)
    corrupt[12:40] = b"\xff" * 28
    path.write_bytes(bytes(corrupt))
    assert "gzip data" in replay_error(str(path))


def test_deeply_nested_json(tmp_path):
    path = transcript(tmp_path, BEGINS, "[" * 100000 + "]" * 100000)
    assert "line 2: JSON nested too deeply" in replay_error(path)


def _with_event(**change) -> dict:
    event = {"timestamp": 0.0, "type": "EXECUTE_JOB", "data": {"job_id": "w0!0", "alloc": "0"}}
    event.update(change)
    return {"from": "scheduler", "msg": {"now": 0.0, "events": [event]}}


@pytest.mark.parametrize("record, message", [
    ("\"nan\"", "record: expected an object"),
    ({"from": "batsim"}, "no 'msg'"),
    ({"from": 3, "msg": {}}, "from: expected \"batsim\" or \"scheduler\""),
    ({"from": "batsim", "msg": "nan"}, "msg: expected an object"),
    ({"from": "batsim", "msg": {"events": []}}, "msg.now: missing"),
    ({"from": "batsim", "msg": {"now": "", "events": []}}, "msg.now: expected a finite number"),
    ({"from": "batsim", "msg": {"now": True, "events": []}}, "msg.now: expected a finite number"),
    ("{\"from\": \"batsim\", \"msg\": {\"now\": NaN, \"events\": []}}", "msg.now: expected a finite number"),
    ({"from": "batsim", "msg": {"now": 1}}, "msg.events: missing"),
    ({"from": "batsim", "msg": {"now": 1, "events": 0}}, "msg.events: expected a list"),
    ({"from": "batsim", "msg": {"now": 1, "events": [10 ** 40]}}, "msg.events[0]: expected an object"),
    ({"from": "batsim", "msg": {"now": 1, "events": [{"data": {}}]}}, "msg.events[0].type: missing"),
    ({"from": "batsim", "msg": {"now": 1, "events": [{"type": 1}]}}, "msg.events[0].type: expected"),
    (_with_event(timestamp="x"), "msg.events[0].timestamp: expected a finite number"),
    (_with_event(data="inf"), "msg.events[0].data: expected an object"),
    (_with_event(data={"alloc": "0"}), "msg.events[0].data.job_id: missing"),
    (_with_event(data={"job_id": {}, "alloc": "0"}), "msg.events[0].data.job_id: expected a job id"),
    (_with_event(data={"job_id": "w0!0", "alloc": 0}), "msg.events[0].data.alloc: expected"),
    (_with_event(type="SET_RESOURCE_STATE", data={"resources": 1, "state": "1"}), "data.resources: expected"),
    (_with_event(type="SET_RESOURCE_STATE", data={"resources": "1", "state": [1]}), "data.state: expected"),
    (_with_event(type="SET_RESOURCE_STATE", data={"resources": "1", "state": "x" * 500}), "data.state: expected"),
    (_with_event(type="SET_RESOURCE_STATE"), "msg.events[0].data.resources: missing"),
    ({"from": "scheduler", "msg": {"now": 1, "events": [{"type": "SET_RESOURCE_STATE"}]}},
     "msg.events[0].data: missing"),
    (_with_event(type="KILL_JOB", data={"job_ids": "w0!0"}), "data.job_ids: expected a list"),
    (_with_event(type="CALL_ME_LATER", data={"timestamp": "soon"}), "data.timestamp: expected a finite number"),
    ({"from": "batsim", "msg": {"now": 1, "events": [{"type": "JOB_COMPLETED", "data": {"job_id": ["x"]}}]}},
     "data.job_id: expected a job id"),
])
def test_malformed_records(tmp_path, record, message):
    text = replay_error(transcript(tmp_path, BEGINS, record))
    assert "line 2: " in text and message in text
    assert "x" * 100 not in text


@pytest.mark.parametrize("name", ["A1-delay-walltime", "A8-dvfs-script"])
def test_replay_command_prints_one_line(tmp_path, capsys, name):
    folder = tmp_path / "scenario"
    shutil.copytree(REFERENCE / name, folder)
    lines = (folder / "transcript.jsonl").read_text().splitlines()
    record = json.loads(lines[3])
    record["msg"]["events"] = [{"type": "JOB_COMPLETED", "data": {}}]
    lines[3] = json.dumps(record)
    (folder / "transcript.jsonl").write_text("\n".join(lines) + "\n")
    assert main(["replay", str(folder), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "line 4: msg.events[0].data.job_id: missing" in err


# Seeds ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("seed", [-1, 2 ** 64, 2 ** 63, True, 1.5, "1", None, {"a": 1}])
def test_bad_seeds(seed):
    with pytest.raises(ConfigError, match=r"seed: expected an integer from 0 to 2\*\*63-1"):
        run_generators(seed)
    with pytest.raises(ConfigError):
        episode_seeds(seed, 2, stream=1)


def test_seed_bounds_accepted():
    run_generators(0)
    run_generators(2 ** 63 - 1)
    assert len(episode_seeds(2 ** 63 - 1, 3, stream=0)) == 3


def test_simulate_negative_seed(capsys):
    assert main(["simulate", "--platform", "gaia", "--workload", "gaia-2014-head.swf.gz",
                 "--nb-jobs", "5", "--seed", "-1"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "seed: expected an integer" in err


# Experiments and environments -----------------------------------------------------------------

@pytest.mark.parametrize("fields, message", [
    ({"gamma": "text"}, "gamma 'text': expected a finite number"),
    ({"gamma": True}, "gamma True: expected a finite number"),
    ({"lr": 10 ** 400}, "lr 1000"),
    ({"lr": -1e-9}, "lr -1e-09: expected a finite number > 0"),
    ({"lr": 0}, "lr 0: expected a finite number > 0"),
    ({"lr": False}, "lr False"),
    ({"hidden": 10 ** 6}, "hidden 1000000: expected an integer from 1 to 65536"),
    ({"hidden": True}, "hidden True"),
    ({"episodes": 2 ** 64}, "episodes"),
    ({"objective": 0}, "objective 0: expected a name"),
    ({"objective": []}, "objective []: expected a name"),
    ({"workload": -1}, "workload -1: expected a path"),
    ({"seed": -1}, "seed: expected an integer"),
    ({"bsld_bound": float("inf")}, "bsld_bound"),
    ({"bsld_bound": 10 ** 400}, "bsld_bound"),
    ({"reward_scale": -2 ** 63 - 1}, "reward_scale -9223372036854775809: expected a finite number > 0"),
    ({"window_jobs": 10 ** 40}, "window_jobs 1000"),
    ({"window_jobs": 4097}, "window_jobs 4097: expected an integer from 1 to 4096"),
    ({"queue_sensitivity": 10 ** 400}, "queue_sensitivity"),
    ({"observation": []}, "observation []"),
])
def test_experiment_fields(fields, message):
    from hdeeprm.rl.experiment import ExperimentConfig

    with pytest.raises(ConfigError) as error:
        ExperimentConfig(**fields)
    assert message in str(error.value) and len(str(error.value)) < 300


def test_experiment_file_with_a_number_for_a_path(tmp_path):
    from hdeeprm.rl.experiment import ExperimentConfig

    path = tmp_path / "experiment.json"
    path.write_text(json.dumps({"workload": -1}))
    with pytest.raises(ConfigError, match="workload -1: expected a path"):
        ExperimentConfig.load(path)


def test_env_config_bounds():
    from hdeeprm.rl.env import EnvConfig

    EnvConfig(bsld_bound=2 ** 64, window_jobs=4096)  # large but finite numbers are fine
    with pytest.raises(ConfigError, match="max_sim_time"):
        EnvConfig(max_sim_time=float("nan"))
    with pytest.raises(ConfigError, match="episode_jobs"):
        EnvConfig(episode_jobs=2 ** 64)


def test_options_with_a_number_for_the_workload_path():
    from hdeeprm.rl.env import HeteroEnv

    options = {"platform_file_path": "quickstart", "workload_file_path": 5,
               "pybatsim": {"env": {"objective": "avg_job_slowdown"}}}
    with pytest.raises(ConfigError, match="workload_file_path 5: expected a file path"):
        HeteroEnv.from_options(options)


# Original options files -----------------------------------------------------------------------

def _options(**agent) -> dict:
    return {"seed": 0, "pybatsim": {"env": {"objective": "avg_job_slowdown"},
                                    "agent": {"type": "LEARNING", "run": "train", **agent}}}


@pytest.mark.parametrize("agent, top, message", [
    ({"hidden": -1}, {}, "agent.hidden: expected an integer from 1 to 65536, got -1"),
    ({"hidden": 2 ** 63}, {}, "agent.hidden"),
    ({"hidden": 10 ** 6}, {}, "agent.hidden"),
    ({"hidden": True}, {}, "agent.hidden"),
    ({"lr": -0.1}, {}, "agent.lr: expected a finite number > 0"),
    ({"lr": float("inf")}, {}, "agent.lr"),
    ({"lr": 10 ** 400}, {}, "agent.lr"),
    ({"lr": True}, {}, "agent.lr"),
    ({"gamma": 0}, {}, "agent.gamma: expected a number in (0, 1]"),
    ({"gamma": 1.5}, {}, "agent.gamma"),
    ({"policy_pair": -1}, {}, "agent.policy_pair: expected a string"),
    ({}, {"seed": -1}, "seed: expected an integer from 0 to 2**63-1"),
    ({}, {"seed": True}, "seed: expected an integer"),
    ({}, {"nb_jobs": 10 ** 30}, "nb_jobs: expected a positive integer"),
])
def test_original_options(agent, top, message):
    from hdeeprm.rl.original_options import check_options

    with pytest.raises(ConfigError) as error:
        check_options({**_options(**agent), **top}, "options.json")
    assert message in str(error.value)


def test_original_options_valid():
    from hdeeprm.rl.original_options import check_options

    check_options(_options(hidden=64, lr=1e-3, gamma=0.99, policy_pair="shortest-high_gflops"), "options.json")


# Grids ----------------------------------------------------------------------------------------

def test_check_unique_is_linear():
    from hdeeprm.rl.sweep import check_unique

    cells = [SimpleNamespace(name=f"c{i}") for i in range(200_000)]
    start = time.perf_counter()
    check_unique(cells, "grid")
    assert time.perf_counter() - start < 2
    with pytest.raises(ConfigError, match=r"same parameters \(c5\)"):
        check_unique(cells + [SimpleNamespace(name="c5")], "grid")


@pytest.mark.parametrize("grid, message", [
    ({"platforms": ["quickstart"] * 20000}, "platforms: a platform is listed twice ('quickstart')"),
    ({"workloads": ["kth-sp2-head.swf.gz"] * 1001}, "workloads: a workload is listed twice"),
    ({"checkpoints": ["a.pt", "a.pt"]}, "checkpoints: a checkpoint is listed twice"),
    ({"policies": ["classic", "random:random"]}, "policies and checkpoints: a policy is listed twice"),
    ({"seeds": list(range(200_001))}, "at most 100000 are allowed"),
    ({"seeds": [2 ** 63]}, "seeds: expected a non-empty list of integers from 0 to 2**63-1"),
    ({"timeout": 10 ** 400}, "timeout: expected a number of seconds > 0 (finite)"),
    ({"timeout": float("inf")}, "timeout: expected a number of seconds > 0"),
    ({"timeout": True}, "timeout: expected a number of seconds > 0"),
])
def test_grid_axes(grid, message):
    from hdeeprm.rl.sweep import GridConfig

    start = time.perf_counter()
    with pytest.raises(ConfigError) as error:
        GridConfig.from_dict({"experiment": "quickstart", **grid}, source="grid.json").cells()
    assert time.perf_counter() - start < 10
    assert message in str(error.value) and len(str(error.value)) < 400


def test_grid_command_line_timeout():
    from hdeeprm.rl.sweep import GridConfig

    grid = GridConfig.from_dict({"experiment": "quickstart"}, source="grid.json")
    with pytest.raises(ConfigError, match="--timeout"):
        grid.with_backend(timeout=float("inf"))


# Ray ------------------------------------------------------------------------------------------

def test_ray_address_with_nothing_there_fails_fast():
    from hdeeprm.common.parallel import _check_ray_address

    start = time.perf_counter()
    with pytest.raises(ConfigError, match="--address 127.0.0.1:1: no Ray cluster answers there"):
        _check_ray_address("127.0.0.1:1")
    assert time.perf_counter() - start < 15
    with pytest.raises(ConfigError, match="port 70000"):
        _check_ray_address("ray://127.0.0.1:70000")
    _check_ray_address("auto")  # left to Ray


def test_ray_address_where_a_web_server_answers_is_refused_not_waited_on():
    # ray.init waits for ever on a port that accepts connections but is no Ray cluster.
    import http.server
    import threading

    from hdeeprm.common.parallel import _check_ray_address

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), http.server.SimpleHTTPRequestHandler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        with pytest.raises(ConfigError, match="something answers there, but not a Ray cluster"):
            _check_ray_address(f"127.0.0.1:{server.server_address[1]}")
    finally:
        server.shutdown()
        server.server_close()


def test_ray_address_where_http2_answers_passes_the_probe():
    # A stand-in for Ray's GCS (a gRPC server): the SETTINGS frame every HTTP/2 server sends
    # first. Checked by hand against a real `ray start --head` as well.
    import socket
    import threading

    from hdeeprm.common.parallel import _check_ray_address

    listener = socket.create_server(("127.0.0.1", 0))

    def answer():
        connection, _ = listener.accept()
        with connection:
            connection.recv(24)
            connection.sendall(b"\x00\x00\x00\x04\x00\x00\x00\x00\x00")

    thread = threading.Thread(target=answer, daemon=True)
    thread.start()
    try:
        _check_ray_address(f"127.0.0.1:{listener.getsockname()[1]}")
    finally:
        thread.join(5)
        listener.close()
