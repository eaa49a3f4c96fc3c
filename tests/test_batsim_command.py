"""``hdeeprm batsim``, a drop-in Batsim: a small scheduler written here (pure pyzmq, FCFS) drives
the command on recorded scenarios. With the real binary (marked ``batsim``), the same scheduler
drives real Batsim too: both runs must send it the same messages and write the same files.
With ``HDEEPRM_PYBATSIM`` naming a Python that has PyBatsim 3.2.1, its bundled schedulers are
run the same way (``test_pybatsim_schedulers``).
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

zmq = pytest.importorskip("zmq")

from hdeeprm.cli.main import main
from hdeeprm.simulation.intervals import format_intervals, parse_intervals

REFERENCE = Path(__file__).parent / "data" / "batsim-reference"
needs_batsim = pytest.mark.skipif(shutil.which("batsim") is None, reason="batsim is not on PATH")


class FcfsScheduler:
    """A Batsim 4 decision process in a thread: FCFS on the lowest free machines, rejects jobs
    bigger than the platform, slows the last machine down to p-state 1 at the start (and uses
    it again once RESOURCE_STATE_CHANGED says so), asks for one CALL_ME_LATER, queries the
    consumed energy once at that call and kills the oldest running job there (``kill``).
    ``received`` keeps every message it got."""

    def __init__(self, energy: bool = True, kill: bool = True):
        self.energy, self.kill = energy, kill
        self.context = zmq.Context()
        self.socket = self.context.socket(zmq.REP)
        self.port = self.socket.bind_to_random_port("tcp://127.0.0.1")
        self.endpoint = f"tcp://127.0.0.1:{self.port}"
        self.received: list[dict] = []
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        try:
            self._serve()
        except BaseException as e:  # reported by the test
            self.error = e
        finally:
            self.socket.close(linger=0)
            self.context.term()

    def _serve(self):
        free, queue, size, running, called = set(), [], {}, [], False
        while self.socket.poll(60_000):
            msg = json.loads(self.socket.recv())
            self.received.append(msg)
            now, out = msg["now"], []
            for e in msg["events"]:
                kind, data = e["type"], e["data"]
                if kind == "SIMULATION_BEGINS":
                    nb = data["nb_compute_resources"]
                    last = data["compute_resources"][-1]["properties"].get("wattage_per_state", "")
                    slow = self.energy and "," in last  # the last machine has a p-state 1
                    free = set(range(nb - 1)) if slow else set(range(nb))
                    if slow:
                        out.append({"timestamp": now, "type": "SET_RESOURCE_STATE",
                                    "data": {"resources": str(nb - 1), "state": "1"}})
                elif kind == "JOB_SUBMITTED":
                    size[data["job_id"]] = data["job"]["res"]
                    if data["job"]["res"] > nb:
                        out.append({"timestamp": now, "type": "REJECT_JOB", "data": {"job_id": data["job_id"]}})
                    else:
                        queue.append(data["job_id"])
                    if not called:
                        called = True
                        out.append({"timestamp": now, "type": "CALL_ME_LATER", "data": {"timestamp": now + 7.25}})
                elif kind == "JOB_COMPLETED":
                    free |= set(parse_intervals(data["alloc"]).tolist())
                    if data["job_id"] in running:
                        running.remove(data["job_id"])
                elif kind == "RESOURCE_STATE_CHANGED":
                    free |= set(parse_intervals(data["resources"]).tolist())
                elif kind == "REQUESTED_CALL":
                    if self.energy:
                        out.append({"timestamp": now, "type": "QUERY", "data": {"requests": {"consumed_energy": {}}}})
                    if self.kill and running:
                        out.append({"timestamp": now, "type": "KILL_JOB", "data": {"job_ids": [running[0]]}})
                elif kind == "SIMULATION_ENDS":
                    self.socket.send_json({"now": now, "events": []})
                    return
            while queue and size[queue[0]] <= len(free):
                job = queue.pop(0)
                alloc = sorted(free)[:size[job]]
                free -= set(alloc)
                running.append(job)
                out.append({"timestamp": now, "type": "EXECUTE_JOB", "data": {"job_id": job,
                                                                             "alloc": format_intervals(alloc)}})
            self.socket.send_json({"now": now, "events": out})
        raise TimeoutError("no message for 60 s")

    def join(self):
        self.thread.join(60)
        if self.error is not None:
            raise self.error


def _args(scenario: str, prefix: Path, endpoint: str, energy: bool = True) -> list[str]:
    folder = REFERENCE / scenario
    return (["-p", str(folder / "platform.xml"), "-w", str(folder / "workload.json"), "-e", str(prefix),
             "-s", endpoint, "-q"] + (["-E"] if energy else []))


def _run_ours(scenario, prefix, energy=True, kill=True):
    scheduler = FcfsScheduler(energy, kill)
    assert main(["batsim", *_args(scenario, prefix, scheduler.endpoint, energy)]) == 0
    scheduler.join()
    return scheduler


def _run_batsim(scenario, prefix, energy=True, kill=True):
    scheduler = FcfsScheduler(energy, kill)
    done = subprocess.run(["batsim", *_args(scenario, prefix, scheduler.endpoint.replace("127.0.0.1", "localhost"),
                                            energy)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    scheduler.join()
    return scheduler


def _rows(path: Path, skip=()) -> list[dict]:
    with open(path, newline="") as f:
        return [{k: v for k, v in row.items() if k not in skip} for row in csv.DictReader(f)]


# Batsim's wall-clock seconds, which no two runs share.
WALL_CLOCK = ("scheduling_time", "simulation_time")


def _same_outputs(ours: Path, theirs: Path, energy: bool = True) -> None:
    names = ["_jobs.csv"] + (["_consumed_energy.csv", "_pstate_changes.csv"] if energy else [])
    if Path(str(ours) + "_machine_states.csv").exists():  # where the output writers have it
        names.append("_machine_states.csv")
    for name in names:
        assert Path(str(ours) + name).read_text() == Path(str(theirs) + name).read_text(), name
    assert _rows(Path(str(ours) + "_schedule.csv"), WALL_CLOCK) == _rows(Path(str(theirs) + "_schedule.csv"),
                                                                         WALL_CLOCK)


# ---------------------------------------------------------------------------- always


@pytest.mark.parametrize("scenario", ["A3-ties-reject", "A8-dvfs-script"])
def test_a_scheduler_written_here_runs_on_the_command(tmp_path, scenario):
    scheduler = _run_ours(scenario, tmp_path / "out")
    kinds = [e["type"] for m in scheduler.received for e in m["events"]]
    assert kinds[0] == "SIMULATION_BEGINS" and kinds[-1] == "SIMULATION_ENDS"
    for kind in ("JOB_SUBMITTED", "JOB_COMPLETED", "REQUESTED_CALL", "ANSWER", "JOB_KILLED", "NOTIFY"):
        assert kind in kinds
    assert ("RESOURCE_STATE_CHANGED" in kinds) == (scenario == "A8-dvfs-script")
    begins = scheduler.received[0]["events"][0]["data"]
    assert begins["nb_compute_resources"] == 4 and begins["profiles"]["w0"]
    assert [m["now"] for m in scheduler.received] == sorted(m["now"] for m in scheduler.received)
    jobs = _rows(tmp_path / "out_jobs.csv")
    workload = json.loads((REFERENCE / scenario / "workload.json").read_text())
    assert len(jobs) == len(workload["jobs"])
    assert {"COMPLETED_KILLED"} <= {row["final_state"] for row in jobs}
    for name in ("_schedule.csv", "_consumed_energy.csv", "_pstate_changes.csv"):
        assert (tmp_path / f"out{name}").is_file()


def test_without_energy_batsims_files_and_values(tmp_path):
    _run_ours("A3-ties-reject", tmp_path / "run", energy=False)
    assert {p.name for p in tmp_path.iterdir()} - {"run_machine_states.csv"} == {"run_jobs.csv", "run_schedule.csv"}
    assert {row["consumed_energy"] for row in _rows(tmp_path / "run_jobs.csv") if row["final_state"] != "REJECTED"} \
        == {"-1.000000"}


def test_the_schedulers_now_delays_the_decisions(tmp_path):
    """A reply whose ``now`` is later than the message's: Batsim sleeps until then before
    applying it, so the job starts 2.5 s late."""
    context = zmq.Context()
    socket = context.socket(zmq.REP)
    port = socket.bind_to_random_port("tcp://127.0.0.1")
    seen = []

    def scheduler():
        while True:
            msg = json.loads(socket.recv())
            seen.append(msg)
            out, now = [], msg["now"]
            for e in msg["events"]:
                if e["type"] == "JOB_SUBMITTED" and e["data"]["job_id"] == "w0!0":
                    now += 2.5
                    out.append({"timestamp": now, "type": "EXECUTE_JOB", "data": {"job_id": "w0!0", "alloc": "0"}})
                elif e["type"] == "JOB_SUBMITTED":
                    out.append({"timestamp": now, "type": "REJECT_JOB", "data": {"job_id": e["data"]["job_id"]}})
            socket.send_json({"now": now, "events": out})
            if msg["events"][-1]["type"] == "SIMULATION_ENDS":
                return

    thread = threading.Thread(target=scheduler, daemon=True)
    thread.start()
    try:
        assert main(["batsim", *_args("A1-delay-walltime", tmp_path / "out", f"tcp://127.0.0.1:{port}")]) == 0
        thread.join(30)
    finally:
        socket.close(linger=0)
        context.term()
    first = next(row for row in _rows(tmp_path / "out_jobs.csv") if row["job_id"] == "0")
    assert first["starting_time"] == "2.500000"


def test_mmax_and_a_bad_decision(tmp_path, capsys):
    """--mmax 2 leaves two machines; a decision on a machine that does not exist is one line,
    exit status 2 (Batsim aborts)."""
    stop = threading.Event()
    context = zmq.Context()
    socket = context.socket(zmq.REP)
    port = socket.bind_to_random_port("tcp://127.0.0.1")
    seen = []

    def scheduler():
        try:
            while not stop.is_set():
                if not socket.poll(50):
                    continue
                msg = json.loads(socket.recv())
                seen.append(msg)
                out = [{"timestamp": msg["now"], "type": "EXECUTE_JOB",
                        "data": {"job_id": e["data"]["job_id"], "alloc": "3"}}
                       for e in msg["events"] if e["type"] == "JOB_SUBMITTED"][:1]
                socket.send_json({"now": msg["now"], "events": out})
        finally:
            socket.close(linger=0)

    thread = threading.Thread(target=scheduler, daemon=True)
    thread.start()
    try:
        code = main(["batsim", *_args("A1-delay-walltime", tmp_path / "out", f"tcp://127.0.0.1:{port}"),
                     "--mmax", "2"])
    finally:
        stop.set()
        thread.join(10)
        context.term()
    err = capsys.readouterr().err
    assert code == 2 and "machine ids must be in 0..1" in err and len(err.strip().splitlines()) == 1
    assert seen[0]["events"][0]["data"]["nb_compute_resources"] == 2


@pytest.mark.parametrize("option, words", [
    (["-W", "flow.xml"], "option -W is not supported"),
    (["--enable-compute-sharing"], "option --enable-compute-sharing is not supported"),
    (["--WS", "cut.xml", "10"], "option --WS is not supported"),
    (["--sg-cfg", "a:b"], "option --sg-cfg is not supported"),
    (["-w", "other.json"], "-w is not supported more than once"),
])
def test_unsupported_options_are_one_line_errors(tmp_path, capsys, option, words):
    code = main(["batsim", *_args("A1-delay-walltime", tmp_path / "out", "tcp://127.0.0.1:1"), *option])
    err = capsys.readouterr().err
    assert code == 2 and words in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_missing_inputs_are_one_line_errors(tmp_path, capsys):
    code = main(["batsim", "-p", str(tmp_path / "none.xml"), "-w", str(tmp_path / "none.json"), "-s",
                 "tcp://127.0.0.1:1"])
    err = capsys.readouterr().err
    assert code == 2 and "no such file" in err and len(err.strip().splitlines()) == 1


def test_a_platform_with_sleep_states_is_refused_in_one_line(tmp_path, capsys):
    data = Path(__file__).parent / "data"
    code = main(["batsim", "-p", str(data / "platforms" / "sleep_4hosts.xml"), "-w",
                 str(data / "batsim-reference" / "A8-dvfs-script" / "workload.json"), "-s", "tcp://127.0.0.1:1"])
    err = capsys.readouterr().err
    assert code == 2 and "sleep_pstates" in err and "real Batsim" in err and len(err.strip().splitlines()) == 1


def test_batsim_help_names_batsims_options(capsys):
    with pytest.raises(SystemExit):
        main(["batsim", "--help"])
    out = capsys.readouterr().out
    for option in ("--platform", "--workload", "--export", "--socket-endpoint", "--energy", "--quiet", "--mmax",
                   "--disable-schedule-tracing", "--disable-machine-state-tracing", "[default: out]",
                   "tcp://localhost:28000"):
        assert option in out


# ---------------------------------------------------------------------------- real Batsim


def _strip(messages: list[dict]) -> list[dict]:
    return json.loads(json.dumps(messages))


@pytest.mark.batsim
@needs_batsim
@pytest.mark.parametrize("scenario, energy", [("A3-ties-reject", True), ("A8-dvfs-script", True),
                                              ("A1-delay-walltime", False)])
def test_same_messages_and_files_as_real_batsim(tmp_path, scenario, energy):
    ours = _run_ours(scenario, tmp_path / "ours", energy)
    theirs = _run_batsim(scenario, tmp_path / "batsim", energy)
    assert len(ours.received) == len(theirs.received)
    for k, (a, b) in enumerate(zip(ours.received, theirs.received)):
        assert a == b, f"message {k} differs:\n ours:   {json.dumps(a)[:1500]}\n batsim: {json.dumps(b)[:1500]}"
    _same_outputs(tmp_path / "ours", tmp_path / "batsim", energy)
    expected = {"batsim_jobs.csv", "batsim_schedule.csv"} | (
        {"batsim_consumed_energy.csv", "batsim_pstate_changes.csv"} if energy else set())
    assert expected <= {p.name for p in tmp_path.iterdir()}


# ---------------------------------------------------------------------------- PyBatsim

PYBATSIM = os.environ.get("HDEEPRM_PYBATSIM")
# PyBatsim 3.2.1's bundled schedulers that run on Batsim 4 and decide the same way every run
# (fillerSched and fillerSchedWithEvents iterate over a set of job objects: their decisions
# change from run to run on Batsim itself; the batsim.sched ones fail on jobs submitted at 0).
PYBATSIM_CASES = [("A4-easy-32", name) for name in ("easyBackfill", "schedEasySjfBackfill", "schedFcfs",
                                                     "schedFiller", "schedSendRecv")] + [
    ("A6-hdeeprm-kth", "easyBackfill"), ("A7-fcfs-sdsc-sp2", "easyBackfill")]


def _pybatsim_run(scheduler: str, port: int, command: list[str], cwd: Path) -> float:
    """Start PyBatsim's ``scheduler`` listening on ``port``, then ``command`` (a Batsim);
    returns the wall seconds of the Batsim process."""
    code = ("import sys; from batsim.cmds.launcher import main; sys.argv = ['pybatsim'] + sys.argv[1:]; "
            "sys.exit(main())")
    log = open(cwd / f"{scheduler}-{port}.log", "w+")  # not a pipe: some schedulers write a lot
    sched = subprocess.Popen([PYBATSIM, "-c", code, scheduler, "-s", f"tcp://*:{port}", "-t", "0", "-v", "error"],
                             cwd=cwd, stdout=log, stderr=log, text=True)
    try:
        time.sleep(0.5)
        t0 = time.perf_counter()
        errors = open(cwd / f"batsim-{port}.log", "w+")
        batsim = subprocess.Popen(command, cwd=cwd, stdout=subprocess.DEVNULL, stderr=errors, text=True)
        while batsim.poll() is None:
            if sched.poll() not in (None, 0) or time.perf_counter() - t0 > 300:
                batsim.kill()
                batsim.wait()
                log.seek(0)
                pytest.fail(f"{scheduler} failed or hung: {log.read()[-2000:]}")
            time.sleep(0.01)
        seconds = time.perf_counter() - t0
        errors.seek(0)
        assert batsim.returncode == 0, errors.read()[-2000:]
        sched.wait(60)
    finally:
        if sched.poll() is None:
            sched.kill()
        log.close()
    return seconds


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _same_schedule(ours: Path, theirs: Path, rel: float = 1e-9) -> None:
    """The same jobs, states, times and allocations; energies to ``rel`` (the engine's sums can
    differ from SimGrid's in the last printed digit on 1e8 J)."""
    a, b = _rows(Path(str(ours) + "_jobs.csv")), _rows(Path(str(theirs) + "_jobs.csv"))
    assert [{k: v for k, v in r.items() if k != "consumed_energy"} for r in a] == \
        [{k: v for k, v in r.items() if k != "consumed_energy"} for r in b]
    for x, y in zip(a, b):
        if y["consumed_energy"]:
            assert float(x["consumed_energy"]) == pytest.approx(float(y["consumed_energy"]), rel=rel)
    sa, sb = (_rows(Path(str(p) + "_schedule.csv"), WALL_CLOCK)[0] for p in (ours, theirs))
    assert float(sa.pop("consumed_joules")) == pytest.approx(float(sb.pop("consumed_joules")), rel=rel)
    assert sa == sb


@pytest.mark.batsim
@needs_batsim
@pytest.mark.skipif(not PYBATSIM, reason="HDEEPRM_PYBATSIM does not name a Python with PyBatsim 3.2.1")
@pytest.mark.parametrize("scenario, scheduler", PYBATSIM_CASES)
def test_pybatsim_schedulers(tmp_path, scenario, scheduler):
    folder = REFERENCE / scenario
    times = {}
    for name, batsim in (("batsim", ["batsim"]), ("ours", [sys.executable, "-m", "hdeeprm", "batsim"])):
        port = _free_port()
        times[name] = _pybatsim_run(scheduler, port, batsim + [
            "-p", str(folder / "platform.xml"), "-w", str(folder / "workload.json"), "-e",
            str(tmp_path / name), "-s", f"tcp://localhost:{port}", "-E", "-q"], tmp_path)
    _same_schedule(tmp_path / "ours", tmp_path / "batsim")
    print(f"\n{scenario} {scheduler}: batsim {times['batsim']:.2f} s, hdeeprm batsim {times['ours']:.2f} s")
