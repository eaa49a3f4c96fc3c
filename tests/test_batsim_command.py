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


class ThreadedScheduler:
    """A Batsim 4 decision process in a thread: answers each message with ``decide(now,
    events)`` until SIMULATION_ENDS. ``received`` keeps every message it got."""

    def __init__(self):
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
        while self.socket.poll(60_000):
            msg = json.loads(self.socket.recv())
            self.received.append(msg)
            if any(e["type"] == "SIMULATION_ENDS" for e in msg["events"]):
                self.socket.send_json({"now": msg["now"], "events": []})
                return
            self.socket.send_json({"now": msg["now"], "events": self.decide(msg["now"], msg["events"])})
        raise TimeoutError("no message for 60 s")

    def decide(self, now: float, events: list[dict]) -> list[dict]:
        raise NotImplementedError

    def join(self):
        self.thread.join(60)
        if self.error is not None:
            raise self.error


class FcfsScheduler(ThreadedScheduler):
    """FCFS on the lowest free machines; rejects jobs bigger than the platform, slows the last
    machine down to p-state 1 at the start (and uses it again once RESOURCE_STATE_CHANGED says
    so), asks for one CALL_ME_LATER, queries the consumed energy once at that call and kills
    the oldest running job there (``kill``)."""

    def __init__(self, energy: bool = True, kill: bool = True):
        self.energy, self.kill = energy, kill
        self.free, self.queue, self.size, self.running, self.called, self.nb = set(), [], {}, [], False, 0
        super().__init__()

    def decide(self, now, events):
        free, queue, size, running, out = self.free, self.queue, self.size, self.running, []
        for e in events:
            kind, data = e["type"], e["data"]
            if kind == "SIMULATION_BEGINS":
                self.nb = nb = data["nb_compute_resources"]
                last = data["compute_resources"][-1]["properties"].get("wattage_per_state", "")
                slow = self.energy and "," in last  # the last machine has a p-state 1
                free |= set(range(nb - 1)) if slow else set(range(nb))
                if slow:
                    out.append({"timestamp": now, "type": "SET_RESOURCE_STATE",
                                "data": {"resources": str(nb - 1), "state": "1"}})
            elif kind == "JOB_SUBMITTED":
                size[data["job_id"]] = data["job"]["res"]
                if data["job"]["res"] > self.nb:
                    out.append({"timestamp": now, "type": "REJECT_JOB", "data": {"job_id": data["job_id"]}})
                else:
                    queue.append(data["job_id"])
                if not self.called:
                    self.called = True
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
        while queue and size[queue[0]] <= len(free):
            job = queue.pop(0)
            alloc = sorted(free)[:size[job]]
            free -= set(alloc)
            running.append(job)
            out.append({"timestamp": now, "type": "EXECUTE_JOB", "data": {"job_id": job,
                                                                         "alloc": format_intervals(alloc)}})
        return out


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
    assert {p.name for p in tmp_path.iterdir()} == {"run_jobs.csv", "run_schedule.csv", "run_machine_states.csv",
                                                    "run_schedule.trace"}
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
    (["-w", "other.json"], "other.json: no such file"),
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


class SleepScheduler(ThreadedScheduler):
    """A Batsim 4 decision process that manages power (as batsched's energy policies do): FCFS on
    the lowest idle awake machines; when nothing waits, it switches every idle machine off (to
    the first sleep p-state of its ``sleep_pstates`` property); when the head job does not fit,
    it wakes as many sleeping machines as it lacks (p-state 0) and starts the job once they are
    awake (RESOURCE_STATE_CHANGED). With ``wake_all`` every sleeping machine is woken in one
    request whenever a job waits."""

    def __init__(self, wake_all: bool = False):
        self.wake_all = wake_all
        self.idle, self.asleep, self.waking, self.queue, self.size, self.sleep_of = set(), set(), set(), [], {}, {}
        super().__init__()

    def decide(self, now, events):
        asleep, waking, queue, size, sleep_of, out = self.asleep, self.waking, self.queue, self.size, self.sleep_of, []
        for e in events:
            kind, data = e["type"], e["data"]
            if kind == "SIMULATION_BEGINS":
                for r in data["compute_resources"]:
                    sleep_of[r["id"]] = int(r["properties"]["sleep_pstates"].split(":")[0])
                self.idle = set(sleep_of)
            elif kind == "JOB_SUBMITTED":
                size[data["job_id"]] = data["job"]["res"]
                if data["job"]["res"] > len(sleep_of):
                    out.append({"timestamp": now, "type": "REJECT_JOB", "data": {"job_id": data["job_id"]}})
                else:
                    queue.append(data["job_id"])
            elif kind == "JOB_COMPLETED":
                self.idle |= set(parse_intervals(data["alloc"]).tolist())
            elif kind == "RESOURCE_STATE_CHANGED":
                machines = set(parse_intervals(data["resources"]).tolist())
                if int(data["state"]) == 0:
                    self.idle |= machines
                    waking -= machines
                else:
                    asleep |= machines
        while queue and size[queue[0]] <= len(self.idle):
            job = queue.pop(0)
            alloc = sorted(self.idle)[:size[job]]
            self.idle -= set(alloc)
            out.append({"timestamp": now, "type": "EXECUTE_JOB", "data": {"job_id": job,
                                                                         "alloc": format_intervals(alloc)}})
        if queue:
            lacking = len(asleep) if self.wake_all else size[queue[0]] - len(self.idle) - len(waking)
            wake = sorted(asleep)[:max(lacking, 0)]
            if wake:
                asleep -= set(wake)
                waking |= set(wake)
                out.append({"timestamp": now, "type": "SET_RESOURCE_STATE",
                            "data": {"resources": format_intervals(wake), "state": "0"}})
        elif self.idle:
            for state in sorted({sleep_of[m] for m in self.idle}):
                off = sorted(m for m in self.idle if sleep_of[m] == state)
                out.append({"timestamp": now, "type": "SET_RESOURCE_STATE",
                            "data": {"resources": format_intervals(off), "state": str(state)}})
            self.idle = set()
        return out


SLEEP_PLATFORM = Path(__file__).parent / "data" / "platforms" / "sleep_4hosts.xml"


def _random_workload(path: Path, seed: int, nb_jobs: int, *, gaps, delays, cpus, sizes, walltime: float,
                     nb_res: int) -> Path:
    """Half delay jobs, half parallel ones, drawn from the given choices (s, flops, machines)."""
    import random

    rng = random.Random(seed)
    jobs, profiles, t = [], {}, 0.0
    for i in range(nb_jobs):
        t += rng.choice(gaps)
        if rng.random() < 0.5:
            profiles[f"p{i}"] = {"type": "delay", "delay": rng.choice(delays)}
        else:
            profiles[f"p{i}"] = {"type": "parallel_homogeneous", "cpu": rng.choice(cpus), "com": 0}
        jobs.append({"id": i, "subtime": t, "res": rng.choice(sizes), "profile": f"p{i}", "walltime": walltime})
    path.write_text(json.dumps({"nb_res": nb_res, "jobs": jobs, "profiles": profiles}))
    return path


def _sleep_workload(folder: Path, seed: int, nb_jobs: int = 30) -> Path:
    """Delay and parallel jobs of 1-4 machines (some of 5: rejected), with gaps long enough to
    sleep in."""
    return _random_workload(folder / f"sleep-{seed}.json", seed, nb_jobs, gaps=[0, 0, 1.5, 4, 9, 30, 80, 200],
                            delays=[5, 10, 17.3, 30], cpus=[5e8, 1e9, 2.3e9], sizes=[1, 1, 2, 3, 4, 5],
                            walltime=400, nb_res=4)


def _sleep_args(workload: Path, prefix: Path, endpoint: str) -> list[str]:
    return ["-p", str(SLEEP_PLATFORM), "-w", str(workload), "-e", str(prefix), "-s", endpoint, "-q", "-E"]


def test_sleep_states_switch_machines_off_and_on(tmp_path):
    """Machines go to sleep and wake through the virtual p-states (10 s off at 50 W... per the
    platform's comment), each request acknowledged once all its machines have switched."""
    scheduler = SleepScheduler()
    workload = _sleep_workload(tmp_path, 3)
    assert main(["batsim", *_sleep_args(workload, tmp_path / "out", scheduler.endpoint)]) == 0
    scheduler.join()
    changes = [e["data"] for m in scheduler.received for e in m["events"] if e["type"] == "RESOURCE_STATE_CHANGED"]
    assert {c["state"] for c in changes} == {"0", "2"}
    with open(str(tmp_path / "out") + "_machine_states.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert max(float(r["nb_sleeping"]) for r in rows) == 4
    assert max(float(r["nb_switching_on"]) for r in rows) >= 1
    jobs = _rows(Path(str(tmp_path / "out") + "_jobs.csv"))
    assert {r["final_state"] for r in jobs} == {"COMPLETED_SUCCESSFULLY", "REJECTED"}


def test_a_bad_power_request_is_a_one_line_error(tmp_path, capsys):
    """Switching a busy machine off: Batsim aborts; the command says why in one line."""
    context = zmq.Context()
    socket = context.socket(zmq.REP)
    port = socket.bind_to_random_port("tcp://127.0.0.1")

    def scheduler():
        msg = json.loads(socket.recv())
        socket.send_json({"now": msg["now"], "events": []})
        msg = json.loads(socket.recv())
        job = next(e["data"] for e in msg["events"] if e["type"] == "JOB_SUBMITTED")
        alloc = format_intervals(range(job["job"]["res"]))
        socket.send_json({"now": msg["now"], "events": [
            {"timestamp": msg["now"], "type": "EXECUTE_JOB", "data": {"job_id": job["job_id"], "alloc": alloc}},
            {"timestamp": msg["now"], "type": "SET_RESOURCE_STATE", "data": {"resources": "0", "state": "2"}}]})

    thread = threading.Thread(target=scheduler, daemon=True)
    thread.start()
    workload = _sleep_workload(tmp_path, 1, nb_jobs=2)
    code = main(["batsim", *_sleep_args(workload, tmp_path / "out", f"tcp://127.0.0.1:{port}")])
    thread.join(10)
    socket.close(linger=0)
    context.term()
    err = capsys.readouterr().err
    assert code == 2 and "SET_RESOURCE_STATE at t=" in err and "only idle machines can be switched off" in err and len(err.strip().splitlines()) == 1


def test_a_later_reply_to_simulation_ends_moves_the_traces_end(tmp_path):
    """Batsim's reply actor sleeps until the reply's now before acknowledging SIMULATION_ENDS,
    so its Pajé trace closes its containers then (observed on Batsim 4.2.1: only those lines
    change)."""
    context = zmq.Context()
    socket = context.socket(zmq.REP)
    port = socket.bind_to_random_port("tcp://127.0.0.1")

    def scheduler():
        while True:
            msg = json.loads(socket.recv())
            types = [e["type"] for e in msg["events"]]
            events = [{"timestamp": msg["now"], "type": "EXECUTE_JOB",
                       "data": {"job_id": e["data"]["job_id"], "alloc": f"0-{e['data']['job']['res'] - 1}"}}
                      for e in msg["events"] if e["type"] == "JOB_SUBMITTED"]
            socket.send_json({"now": msg["now"] + (100 if "SIMULATION_ENDS" in types else 0), "events": events})
            if "SIMULATION_ENDS" in types:
                return

    thread = threading.Thread(target=scheduler, daemon=True)
    thread.start()
    workload = _sleep_workload(tmp_path, 1, nb_jobs=1)
    args = _sleep_args(workload, tmp_path / "out", f"tcp://127.0.0.1:{port}")
    assert main(["batsim", *args]) == 0
    thread.join(10)
    socket.close(linger=0)
    context.term()
    end = float(_rows(Path(str(tmp_path / "out") + "_jobs.csv"))[0]["finish_time"])
    closing = [line.split() for line in Path(str(tmp_path / "out") + "_schedule.trace").read_text().splitlines()
               if line.endswith("machine_ct") or line.endswith("root_ct")]
    assert closing and {float(parts[1]) for parts in closing if parts[0] == "3"} == {end + 100}


def test_several_workloads_have_a_submitter_each(tmp_path):
    """-w given twice: jobs are w0!ID and w1!ID, both workloads are announced, submissions of
    one instant come in one message, and NOTIFY comes once both submitters are done."""
    first, second = _sleep_workload(tmp_path, 1, nb_jobs=5), _sleep_workload(tmp_path, 2, nb_jobs=4)
    scheduler = FcfsScheduler(energy=True, kill=False)
    assert main(["batsim", "-p", str(SLEEP_PLATFORM), "-w", str(first), "-w", str(second), "-e",
                 str(tmp_path / "out"), "-s", scheduler.endpoint, "-q", "-E"]) == 0
    scheduler.join()
    begins = scheduler.received[0]["events"][0]["data"]
    assert set(begins["workloads"]) == set(begins["profiles"]) == {"w0", "w1"}
    submitted = [e["data"]["job_id"] for m in scheduler.received for e in m["events"] if e["type"] == "JOB_SUBMITTED"]
    assert sorted(submitted) == sorted([f"w0!{i}" for i in range(5)] + [f"w1!{i}" for i in range(4)])
    notify = [k for k, m in enumerate(scheduler.received) for e in m["events"] if e["type"] == "NOTIFY"]
    last_submission = max(k for k, m in enumerate(scheduler.received)
                          for e in m["events"] if e["type"] == "JOB_SUBMITTED")
    assert len(notify) == 1 and notify[0] >= last_submission
    jobs = _rows(Path(str(tmp_path / "out") + "_jobs.csv"))
    assert sorted((r["workload_name"], r["job_id"]) for r in jobs) == \
        sorted([("w0", str(i)) for i in range(5)] + [("w1", str(i)) for i in range(4)])


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


def _on_both(make, args: list[str], tmp_path: Path, timeout: int = 120):
    """The scheduler ``make()`` makes, run on this command (prefix ``ours``) and on real Batsim
    (``batsim``) with the same ``args``: the two schedulers, joined."""
    ours = make()
    assert main(["batsim", *args, "-e", str(tmp_path / "ours"), "-s", ours.endpoint]) == 0
    ours.join()
    theirs = make()
    done = subprocess.run(["batsim", *args, "-e", str(tmp_path / "batsim"), "-s",
                           theirs.endpoint.replace("127.0.0.1", "localhost")],
                          capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, done.stderr[-2000:]
    theirs.join()
    return ours, theirs


def _same_messages_and_files(ours, theirs, tmp_path: Path, files: tuple[str, ...]) -> None:
    assert len(ours.received) == len(theirs.received)
    for k, (a, b) in enumerate(zip(ours.received, theirs.received)):
        assert a == b, f"message {k} differs:\n ours:   {json.dumps(a)[:1500]}\n batsim: {json.dumps(b)[:1500]}"
    for name in files:
        assert Path(str(tmp_path / "ours") + name).read_text() == Path(str(tmp_path / "batsim") + name).read_text()


def _as_set(events: list[dict]) -> list[str]:
    return sorted(json.dumps(e, sort_keys=True) for e in events)


@pytest.mark.batsim
@needs_batsim
@pytest.mark.parametrize("seed, wake_all", [(3, False), (5, False), (8, True), (11, True)])
def test_sleep_states_same_messages_and_files_as_real_batsim(tmp_path, seed, wake_all):
    workload = _sleep_workload(tmp_path, seed)
    args = ["-p", str(SLEEP_PLATFORM), "-w", str(workload), "-q", "-E"]
    ours, theirs = _on_both(lambda: SleepScheduler(wake_all), args, tmp_path)
    assert any(e["type"] == "RESOURCE_STATE_CHANGED" for m in theirs.received for e in m["events"])
    # The same messages, events in the same order: when a job and a sleep switch end at the
    # same instant, the order follows SimGrid's actor rounds (actor_rounds).
    _same_messages_and_files(ours, theirs, tmp_path, ("_jobs.csv", "_pstate_changes.csv", "_machine_states.csv",
                                                      "_consumed_energy.csv"))
    assert _rows(Path(str(tmp_path / "ours") + "_schedule.csv"), WALL_CLOCK) == \
        _rows(Path(str(tmp_path / "batsim") + "_schedule.csv"), WALL_CLOCK)


@pytest.mark.batsim
@needs_batsim
@pytest.mark.parametrize("seed, sleep", [(7, False), (2, True), (11, True)])
def test_several_workloads_same_messages_and_files_as_real_batsim(tmp_path, seed, sleep):
    """One submitter per -w: which one submits first at an instant follows the creation of
    their sleeps, and job completions come before the submissions of their instant when every
    machine's energy is already up to date."""
    import random

    rng = random.Random(seed)
    workloads = [_sleep_workload(tmp_path, 100 * seed + i, nb_jobs=rng.choice([5, 12, 20]))
                 for i in range(rng.choice([2, 3]))]
    args = ["-p", str(SLEEP_PLATFORM), *[x for w in workloads for x in ("-w", str(w))], "-q", "-E"]
    make = (lambda: SleepScheduler(seed % 2 == 1)) if sleep else (lambda: FcfsScheduler(energy=True, kill=seed % 2 == 0))
    ours, theirs = _on_both(make, args, tmp_path)
    _same_messages_and_files(ours, theirs, tmp_path, ("_jobs.csv", "_pstate_changes.csv", "_machine_states.csv"))


def _sleep_platform_128(path: Path, routing: str = "Vivaldi") -> Path:
    """128 hosts of three types with two computation p-states and Batsim sleep p-states
    (switching off takes 10 s, on 50 s), as in the energy study."""
    types = [("fast", 48, "2Gf, 1Gf", "100:300, 90:150"), ("mid", 48, "1.5Gf, 0.8Gf", "80:200, 70:120"),
             ("slow", 32, "1Gf, 0.5Gf", "60:150, 50:90")]
    coordinates = ' coordinates="0 0 0"' if routing == "Vivaldi" else ""
    hosts = [f'<host id="master_host"{coordinates} speed="1Gf"><prop id="wattage_per_state" value="0:0"/></host>']
    for name, count, speeds, watts in types:
        for _ in range(count):
            hosts.append(f'<host id="h{len(hosts) - 1:03d}-{name}"{coordinates} speed="{speeds}, 1f, 0.1f, 0.02f" '
                         f'pstate="0"><prop id="wattage_per_state" value="{watts}, 5:5, 100:100, 150:150"/>'
                         '<prop id="sleep_pstates" value="2:3:4"/></host>')
    path.write_text("<?xml version='1.0'?>\n<!DOCTYPE platform SYSTEM \"https://simgrid.org/simgrid.dtd\">\n"
                    f'<platform version="4.1"><zone id="AS0" routing="{routing}">\n' + "\n".join(hosts)
                    + "\n</zone></platform>\n")
    return path


def _sleep_workload_128(path: Path, seed: int, nb_jobs: int = 400) -> Path:
    """Jobs of 1-64 machines whose ends often fall on a switch's end (round times)."""
    return _random_workload(path, seed, nb_jobs, gaps=[0, 0, 5, 10, 20, 60, 300, 900], delays=[10, 20, 50, 100, 600],
                            cpus=[1e10, 2e10, 6e10, 3e11], sizes=[1, 2, 4, 8, 12, 16, 32, 64], walltime=5000,
                            nb_res=128)


@pytest.mark.batsim
@needs_batsim
@pytest.mark.parametrize("seed", [0, 1])
def test_sleep_states_on_128_hosts_same_messages_as_real_batsim(tmp_path, seed):
    """On a zero-latency platform of 128 hosts, every message (order inside included), the jobs,
    the p-state changes and the machine states are Batsim's, over some 1,100 messages and 550
    switch acknowledgements, many at the instant a job ends."""
    platform = _sleep_platform_128(tmp_path / "platform.xml")
    workload = _sleep_workload_128(tmp_path / "workload.json", seed)
    args = ["-p", str(platform), "-w", str(workload), "-q", "-E"]
    ours, theirs = _on_both(SleepScheduler, args, tmp_path, timeout=300)
    assert sum(e["type"] == "RESOURCE_STATE_CHANGED" for m in theirs.received for e in m["events"]) > 400
    _same_messages_and_files(ours, theirs, tmp_path, ("_jobs.csv", "_pstate_changes.csv", "_machine_states.csv"))


def test_a_platform_where_batsims_messages_take_time_is_refused(tmp_path, capsys):
    """In a Full zone, Batsim's messages between its actors on the master host cross the
    loopback link (1e-10 s each), which splits events the engine groups: refused in one line,
    before any connection, unless --assume-zero-latency."""
    platform = _sleep_platform_128(tmp_path / "platform.xml", routing="Full")
    workload = _sleep_workload_128(tmp_path / "workload.json", 0, nb_jobs=3)
    code = main(["batsim", "-p", str(platform), "-w", str(workload), "-e", str(tmp_path / "out"), "-q", "-E",
                 "-s", "tcp://127.0.0.1:1"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1
    assert "zone 'AS0' has routing 'Full'" in err and "loopback" in err and "--assume-zero-latency" in err
    assert not list(tmp_path.glob("out*"))


def test_which_platforms_delay_batsims_messages(tmp_path):
    from hdeeprm.inputs.platform.xml_platform import message_delay_reason

    def write(body: str) -> Path:
        path = tmp_path / "p.xml"
        path.write_text(f'<?xml version="1.0"?>\n<platform version="4.1">{body}</platform>')
        return path

    host = '<host id="{}" coordinates="{}" speed="1Gf"/>'
    assert message_delay_reason(SLEEP_PLATFORM) is None
    assert message_delay_reason(write('<zone id="z" routing="Vivaldi">' + host.format("master_host", "0 0 0")
                                      + host.format("a", "0.0 0 0") + "</zone>")) is None
    assert "coordinates '1 0 0'" in message_delay_reason(write(
        '<zone id="z" routing="Vivaldi">' + host.format("master_host", "0 0 0") + host.format("a", "1 0 0") + "</zone>"))
    assert "routing 'Dijkstra'" in message_delay_reason(write(
        '<zone id="z" routing="Dijkstra"><host id="master_host" speed="1Gf"/><host id="a" speed="1Gf"/></zone>'))
    assert "<link id='l'>" in message_delay_reason(write(
        '<zone id="z" routing="Full"><host id="master_host" speed="1Gf"/><host id="a" speed="1Gf"/>'
        '<link id="l" bandwidth="1GBps" latency="1ms"/></zone>'))
    assert "hosts in 2 zones" in message_delay_reason(write(
        '<zone id="top" routing="Full"><zone id="x" routing="Vivaldi">' + host.format("master_host", "0 0 0")
        + '</zone><zone id="y" routing="Vivaldi">' + host.format("a", "0 0 0") + "</zone></zone>"))


# ---------------------------------------------------------------------------- PyBatsim

PYBATSIM = os.environ.get("HDEEPRM_PYBATSIM")
# PyBatsim 3.2.1's bundled schedulers that run on Batsim 4 and decide the same way every run
# (fillerSched and fillerSchedWithEvents iterate over a set of job objects: their decisions
# change from run to run on Batsim itself; the batsim.sched ones fail on jobs submitted at 0;
# fcfsSchedSleep stops on Batsim 4.2.1 at its first switch-off: it compares the acknowledged
# state, a string, with integers).
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
