"""Per-user metrics (hdeeprm.analysis.users): users kept through conversion, out_users.csv
beside a run's outputs, per-user waiting time and slowdowns, Jain's fairness index, and what
``compare`` and ``report`` show of them (or say, for runs without users)."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import pytest

from hdeeprm.analysis.users import jain_index, run_user_metrics, user_metrics
from hdeeprm.cli.main import main
from hdeeprm.inputs.workload import (
    ConversionOptions,
    dump_batsim_workload,
    parse_batsim_workload,
    read_batsim_workload,
    swf_to_workload,
)
from hdeeprm.inputs.workload.swf import parse_swf
from hdeeprm.simulation.outputs import JOB_COLUMNS, USERS_FILE, write_users

DATA = Path(__file__).parent / "data"
REFERENCE = DATA / "batsim-reference"
KTH = DATA / "traces" / "kth-sp2-head.swf.gz"


def _jobs_csv(path: Path, rows) -> None:
    """An out_jobs.csv with the given (job_id, final_state, wait, execution) rows."""
    with open(path, "w", newline="") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(JOB_COLUMNS)
        for job_id, state, wait, run in rows:
            if state == "REJECTED":
                writer.writerow([job_id, "w0", "p", 0, 1, 100, 0, state] + [""] * 8 + [""])
                continue
            sub = 0.0
            start = sub + wait
            writer.writerow([job_id, "w0", "p", sub, 1, 100, 1, state, start, run, start + run, wait, wait + run,
                             (wait + run) / run, "0", 0, ""])


def _users_csv(path: Path, users: dict) -> None:
    path.write_text("job_id,user\n" + "".join(f"{j},{u}\n" for j, u in users.items()))


def test_three_users_by_hand(tmp_path):
    # a: (wait 0, run 100) slowdown 1, bounded 1; (wait 10, run 10) slowdown 2, bounded 2
    # b: (wait 50, run 5) slowdown 11, bounded 55 / 10 = 5.5
    # c: one rejected job; (wait 30, run 60) slowdown 1.5, bounded 1.5
    ok = "COMPLETED_SUCCESSFULLY"
    _jobs_csv(tmp_path / "out_jobs.csv", [("1", ok, 0, 100), ("2", ok, 10, 10),
                                         ("3", "COMPLETED_WALLTIME_REACHED", 50, 5), ("4", "REJECTED", 0, 0),
                                         ("5", ok, 30, 60)])
    _users_csv(tmp_path / USERS_FILE, {"1": "a", "2": "a", "3": "b", "4": "c", "5": "c"})
    report = run_user_metrics(tmp_path)
    by_user = {u.user: u for u in report.users}
    assert [u.user for u in report.users] == ["a", "c", "b"]  # most jobs first
    a, b, c = by_user["a"], by_user["b"], by_user["c"]
    assert (a.jobs, a.ran, a.mean_waiting_time, a.mean_slowdown, a.mean_bounded_slowdown) == (2, 2, 5, 1.5, 1.5)
    assert (b.jobs, b.ran, b.mean_waiting_time, b.mean_slowdown, b.mean_bounded_slowdown) == (1, 1, 50, 11, 5.5)
    assert (c.jobs, c.ran, c.mean_waiting_time, c.mean_slowdown, c.mean_bounded_slowdown) == (2, 1, 30, 1.5, 1.5)
    # Jain over (1.5, 5.5, 1.5): 8.5^2 / (3 x 34.75)
    assert report.fairness == pytest.approx(8.5 ** 2 / (3 * 34.75))
    assert report.nb_users_served == 3
    assert [u.user for u in report.worst_served()] == ["b", "a", "c"]


def test_jain_index():
    assert jain_index([2.0, 2.0, 2.0]) == 1.0
    assert jain_index([1.0]) == 1.0
    assert jain_index([1.0, 0.0, 0.0, 0.0]) == pytest.approx(0.25)  # 1/n: one user bears everything
    assert 0.25 < jain_index([1.0, 2.0, 3.0, 4.0]) < 1.0


def test_users_served_alike_have_index_1(tmp_path):
    _jobs_csv(tmp_path / "out_jobs.csv", [(str(k), "COMPLETED_SUCCESSFULLY", 20, 10) for k in range(6)])
    _users_csv(tmp_path / USERS_FILE, {str(k): f"u{k % 3}" for k in range(6)})
    report = run_user_metrics(tmp_path)
    assert len(report.users) == 3 and report.fairness == 1.0
    assert all(u.mean_bounded_slowdown == 3.0 for u in report.users)


def test_jobs_without_a_user_and_folders_without_users(tmp_path):
    _jobs_csv(tmp_path / "out_jobs.csv", [("1", "COMPLETED_SUCCESSFULLY", 0, 10),
                                         ("2", "COMPLETED_SUCCESSFULLY", 5, 10)])
    assert run_user_metrics(tmp_path) is None  # no out_users.csv
    report = user_metrics(tmp_path / "out_jobs.csv", {"2": "7"})
    assert [(u.user, u.jobs) for u in report.users] == [("7", 1)]


def test_swf_conversion_keeps_users_and_json_round_trips_them():
    trace = parse_swf("1 0 0 100 2 -1 -1 2 200 -1 1 5 1 -1 -1 -1 -1 -1\n"
                      "2 10 0 100 1 -1 -1 1 200 -1 1 7 1 -1 -1 -1 -1 -1\n"
                      "3 20 0 100 1 -1 -1 1 200 -1 1 -1 1 -1 -1 -1 -1 -1\n")
    workload, _ = swf_to_workload(trace, ConversionOptions(profile_type="delay"))
    assert [dict(j.extra) for j in workload.jobs] == [{"user": 5}, {"user": 7}, {}]
    back = parse_batsim_workload(dump_batsim_workload(workload))
    assert [dict(j.extra) for j in back.jobs] == [{"user": 5}, {"user": 7}, {}]
    # Users change nothing that is simulated.
    assert back.compile().job_ids == workload.compile().job_ids
    # A trace without user ids: no extra field at all (the JSON stays as it was).
    trace = parse_swf("1 0 0 100 2 -1 -1 2 200 -1 1 -1 1 -1 -1 -1 -1 -1\n")
    workload, _ = swf_to_workload(trace, ConversionOptions(profile_type="delay"))
    assert '"user"' not in dump_batsim_workload(workload)


def test_write_users(tmp_path):
    workload = parse_batsim_workload(json.dumps({"nb_res": 4, "jobs": [
        {"id": 1, "subtime": 0, "res": 1, "profile": "p", "user": "alice"},
        {"id": 2, "subtime": 0, "res": 1, "profile": "p"},
        {"id": 3, "subtime": 0, "res": 1, "profile": "p", "user": 3}],
        "profiles": {"p": {"type": "delay", "delay": 1}}}))
    path = write_users(workload, str(tmp_path))
    assert Path(path).read_text() == "job_id,user\n1,alice\n3,3\n"
    assert write_users(read_batsim_workload(str(REFERENCE / "A3-ties-reject" / "workload.json")),
                       str(tmp_path / "none")) is None


def _simulate(out: Path, workload: Path, *extra: str) -> None:
    assert main(["simulate", "--platform", "quickstart", "--workload", str(workload), "--nb-jobs", "300",
                 "--out", str(out), *extra]) == 0


def test_compare_and_report_show_per_user_metrics(tmp_path, capsys):
    _simulate(tmp_path / "fcfs", KTH)
    _simulate(tmp_path / "sjf", KTH, "--policy", "shortest:first_fit")
    users = (tmp_path / "fcfs" / USERS_FILE).read_text().splitlines()
    assert users[0] == "job_id,user" and len(users) == 301
    report = run_user_metrics(tmp_path / "fcfs")
    assert sum(u.jobs for u in report.users) == 300 and 0 < report.fairness <= 1
    capsys.readouterr()
    assert main(["compare", str(tmp_path / "fcfs"), str(tmp_path / "sjf"), "--no-figure"]) == 0
    out = capsys.readouterr().out
    assert "per-user service (Jain's index" in out
    assert f"  fcfs Jain's index {report.fairness:.4f} over {report.nb_users_served} users" in out
    worst = report.worst_served()[0]
    assert f"worst served (mean bounded slowdown, jobs): {worst.user} (" in out
    assert out.index("how the runs were made") < out.index("per-user service")
    assert main(["report", str(tmp_path / "fcfs"), "--no-figures"]) == 0
    page = (tmp_path / "fcfs" / "report.html").read_text()
    assert "Per-user service" in page and "Jain's fairness index" in page
    assert f'<tr><td class="num">{report.users[0].user}</td><td class="num">{report.users[0].jobs}</td>' in page


def test_runs_without_users_are_skipped_in_one_line(tmp_path, capsys):
    workload = REFERENCE / "A3-ties-reject" / "workload.json"
    for name in ("x", "y"):
        assert main(["simulate", "--platform", str(REFERENCE / "A3-ties-reject" / "platform.xml"),
                     "--workload", str(workload), "--out", str(tmp_path / name)]) == 0
    assert not (tmp_path / "x" / USERS_FILE).exists()
    capsys.readouterr()
    assert main(["compare", str(tmp_path / "x"), str(tmp_path / "y"), "--no-figure"]) == 0
    out = capsys.readouterr().out
    assert [line for line in out.splitlines() if "per-user" in line] == [
        "per-user metrics: skipped, no run has user information (out_users.csv; the workloads name no users)"]
    assert main(["report", str(tmp_path / "x"), "--no-figures"]) == 0
    assert "per-user metrics skipped" in (tmp_path / "x" / "report.html").read_text()


def test_one_run_with_users_and_one_without(tmp_path, capsys):
    _simulate(tmp_path / "kth", KTH)
    assert main(["simulate", "--platform", str(REFERENCE / "A3-ties-reject" / "platform.xml"), "--workload",
                 str(REFERENCE / "A3-ties-reject" / "workload.json"), "--out", str(tmp_path / "a3")]) == 0
    capsys.readouterr()
    assert main(["compare", str(tmp_path / "kth"), str(tmp_path / "a3"), "--no-figure"]) == 0
    out = capsys.readouterr().out
    assert "  kth Jain's index" in out and "  a3  no user information" in out


@pytest.mark.batsim
@pytest.mark.skipif(shutil.which("batsim") is None, reason="batsim is not on PATH")
def test_real_batsim_ignores_a_user_field(tmp_path):
    """Batsim 4.2.1 accepts jobs with a "user" field and writes the same outputs."""
    pytest.importorskip("zmq")
    from hdeeprm.backends import make_simulator
    from hdeeprm.backends.batsim.simulator import ProcessLauncher
    from hdeeprm.inputs.platform import load_platform
    from hdeeprm.simulation.policies import PolicyConfig, run_policy

    class WithUsers(ProcessLauncher):
        def __call__(self, inputs, endpoint):
            path = Path(inputs.workload_json)
            doc = json.loads(path.read_text())
            for k, job in enumerate(doc["jobs"]):
                job["user"] = k % 3
            path.write_text(json.dumps(doc))
            return super().__call__(inputs, endpoint)

    platform = load_platform(str(REFERENCE / "A3-ties-reject" / "platform.xml"))
    outputs = {}
    for name, launcher in (("plain", None), ("users", WithUsers())):
        workload = read_batsim_workload(str(REFERENCE / "A3-ties-reject" / "workload.json"))
        options = {"launcher": launcher} if launcher is not None else {}
        simulator = make_simulator("batsim", platform, workload, workdir=tmp_path / name, timeout_s=30, **options)
        try:
            run_policy(simulator, PolicyConfig.parse("first:first_fit"))
        finally:
            simulator.close()
        outputs[name] = {f: (tmp_path / name / f).read_text() for f in ("out_jobs.csv", "out_machine_states.csv")}
    assert '"user": 0' in (tmp_path / "users" / "workload.json").read_text()
    assert outputs["users"] == outputs["plain"]
