"""Cross-validation: comparing Batsim-style output folders, and ``hdeeprm crossval`` end to
end with stand-ins for the batsim binary (a transcript replayer that writes the recorded
Batsim outputs, and an engine-backed server)."""

from __future__ import annotations

import csv
import json
import stat
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("zmq")

from hdeeprm.backends.batsim.replay_server import EngineServerThread
from hdeeprm.cli import main
from hdeeprm.core.engine import Engine
from hdeeprm.core.outputs import write_outputs
from hdeeprm.crossval import compare_runs, crossvalidate_options
from hdeeprm.platform import bundled_platform, load_platform
from hdeeprm.policies import PolicyConfig, run_policy
from hdeeprm.replay import find_scenario, replay
from hdeeprm.workload import read_batsim_workload

REFERENCE = Path(__file__).parent / "data" / "batsim-reference"
SCENARIOS = sorted(p.name for p in REFERENCE.iterdir() if p.is_dir())
KTH_HEAD = Path(__file__).parents[1] / "hdeeprm" / "data" / "traces" / "kth-sp2-head.swf.gz"


@pytest.mark.parametrize("name", SCENARIOS)
def test_replayed_runs_agree_with_batsims_own_files(tmp_path, name):
    """Job by job and in aggregate (out_schedule.csv's means divide by every job, rejected
    ones included, as Batsim's do)."""
    write_outputs(replay(str(REFERENCE / name)), str(tmp_path))
    report = compare_runs(tmp_path, REFERENCE / name)
    assert report.agree, report.summary()
    assert report.jobs_compared == len(read_batsim_workload(REFERENCE / name / "workload.json").jobs)
    assert {row.metric for row in report.aggregates} >= {"makespan", "consumed_joules", "mean_waiting_time"}


def test_differences_are_reported_per_job_and_in_aggregate(tmp_path):
    """A7 is the run where SimGrid's floating point makes a few jobs end in another order:
    our own FCFS decisions then differ from the recorded ones."""
    scenario = find_scenario(str(REFERENCE / "A7-fcfs-sdsc-sp2"))
    engine = Engine(load_platform(scenario.platform), read_batsim_workload(scenario.workload))
    write_outputs(run_policy(engine, PolicyConfig.parse("first:first_fit")), str(tmp_path))
    report = compare_runs(tmp_path, REFERENCE / "A7-fcfs-sdsc-sp2")
    assert not report.agree
    fields = {d.field for d in report.differences}
    assert "allocated_resources" in fields and 0 < report.jobs_differing < 200
    report.write(tmp_path)
    with open(tmp_path / "crossval_differences.csv") as f:
        assert len(list(csv.DictReader(f))) == len(report.differences)
    doc = json.loads((tmp_path / "crossval.json").read_text())
    assert doc["agree"] is False and doc["jobs_differing"] == report.jobs_differing
    text = report.summary()
    assert "verdict: DIFFER" in text and "job w0!" in text


def _replaying_batsim(tmp_path: Path, name: str) -> str:
    scenario = find_scenario(str(REFERENCE / name))
    path = tmp_path / f"batsim-{name}"
    path.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m hdeeprm.backends.batsim.replay_server '
                    f'--transcript "{scenario.transcript}" --outputs "{REFERENCE / name}" -- "$@"\n')
    path.chmod(path.stat().st_mode | stat.S_IEXEC)
    return str(path)


def _cli(name: str, tmp_path: Path, *extra: str) -> int:
    scenario = find_scenario(str(REFERENCE / name))
    args = ["crossval", "--platform", scenario.platform, "--workload", scenario.workload,
            "--batsim", _replaying_batsim(tmp_path, name), "--out", str(tmp_path / "out"), *extra]
    if scenario.hierarchy:
        args += ["--hierarchy", scenario.hierarchy]
    return main(args)


def test_crossval_command_agrees_on_the_hdeeprm_model(tmp_path, capsys):
    assert _cli("A5-hdeeprm-small", tmp_path) == 0
    out = capsys.readouterr().out
    assert "verdict: AGREE" in out and "60 compared, 0 differ" in out
    for name in ("embedded/out_jobs.csv", "batsim/out_jobs.csv", "batsim/batsim.log", "crossval.json"):
        assert (tmp_path / "out" / name).exists(), name


def test_crossval_command_exits_1_when_the_backends_differ(tmp_path, capsys):
    assert _cli("A7-fcfs-sdsc-sp2", tmp_path) == 1
    out = capsys.readouterr().out
    assert "verdict: DIFFER" in out and "allocated_resources" in out


@pytest.mark.parametrize("args, message", [
    (["crossval", "--out", "x"], "needs an options file, or --platform and --workload"),
    (["crossval", "opts.json", "--platform", "gaia", "--out", "x"], "either an options file"),
    (["crossval", "--platform", "gaia", "--workload", "w.json", "--network", "links",
      "--platform", "a.xml", "--out", "x"], "--network links needs an HDeepRM platform JSON"),
])
def test_crossval_mistakes_are_one_line_errors(capsys, args, message):
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1


def test_options_file_runs_the_same_episode_on_both_backends(tmp_path):
    options = {
        "seed": 4, "nb_jobs": 50, "workload_file_path": str(KTH_HEAD),
        "platform_file_path": str(bundled_platform("quickstart")),
        "pybatsim": {"log_level": "INFO", "env": {"objective": "energy_consumption"},
                     "agent": {"type": "CLASSIC", "policy_pair": "smallest-low_power"}},
    }
    path = tmp_path / "options.json"
    path.write_text(json.dumps(options))
    platform = load_platform(bundled_platform("quickstart"))

    def launcher(inputs, endpoint):
        jobs = read_batsim_workload(inputs.workload_json)
        return EngineServerThread(platform, jobs, permute_ids=True, rng=np.random.default_rng(3))(inputs, endpoint)

    with pytest.warns(UserWarning, match="policy_pair"):
        report = crossvalidate_options(path, tmp_path / "out", backend_options={"launcher": launcher})
    assert report.agree, report.summary()
    assert report.jobs_compared == 50


def test_crossval_of_a_trace_on_a_platform_json(tmp_path, capsys):
    """The README's example: an SWF trace converted on the fly, a platform JSON exported to
    XML for Batsim (here a stand-in that answers from an embedded engine on those files)."""
    fake = tmp_path / "batsim"
    fake.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m hdeeprm.backends.batsim.replay_server '
                    '--engine -- "$@"\n')
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    trace = Path(__file__).parents[1] / "examples" / "data" / "gaia-2014-head.swf.gz"
    assert main(["crossval", "--platform", "gaia", "--workload", str(trace), "--nb-jobs", "200",
                 "--policy", "shortest:high_gflops", "--backfill", "easy", "--batsim", str(fake),
                 "--out", str(tmp_path / "out")]) == 0
    assert "200 compared, 0 differ" in capsys.readouterr().out
    exported = (tmp_path / "out" / "batsim" / "platform.xml").read_text()
    assert exported.count("<host ") == 2280 + 1  # one per core, plus the master host


# ------------------------------------------------------------------ divergence and its cause


def test_differences_are_listed_in_order_of_divergence_and_explained(tmp_path):
    """A7 with our own FCFS: SimGrid's clock delivers some completions otherwise than the
    engine would, and our decisions part from Batsim's there. Replaying Batsim's own
    transcript on the engine reproduces Batsim's files, so crossval calls it a difference in
    event delivery and points at the Batsim message before the first divergence."""
    from hdeeprm.crossval import explain

    scenario = find_scenario(str(REFERENCE / "A7-fcfs-sdsc-sp2"))
    engine = Engine(load_platform(scenario.platform), read_batsim_workload(scenario.workload))
    write_outputs(run_policy(engine, PolicyConfig.parse("first:first_fit")), str(tmp_path / "embedded"))
    report = compare_runs(tmp_path / "embedded", REFERENCE / "A7-fcfs-sdsc-sp2")
    times = [d.time for d in report.differences]
    assert times == sorted(times) and report.first_divergence == times[0]
    assert report.summary().index(report.differences[0].job_id) < report.summary().index("verdict")
    explanation = explain(report, REFERENCE / "A7-fcfs-sdsc-sp2", tmp_path / "replay")
    assert explanation.replay_agrees and explanation.cause == "event delivery"
    cause = explanation.cause_note()
    assert cause is not None and cause.time <= report.first_divergence + 1e-6
    assert cause.kind in ("split", "merged", "shifted")
    report.explanation = explanation
    report.write(tmp_path)
    doc = json.loads((tmp_path / "crossval.json").read_text())
    assert doc["explanation"]["cause"] == "event delivery"
    assert doc["first_divergence"] == pytest.approx(report.first_divergence)
    with open(tmp_path / "crossval_delivery.csv") as f:
        assert len(list(csv.DictReader(f))) == len(explanation.notes)
    with open(tmp_path / "crossval_differences.csv") as f:
        assert float(next(csv.DictReader(f))["divergence_time"]) == report.first_divergence


def test_a_model_difference_is_told_apart_from_event_delivery(tmp_path):
    """Batsim's files that the engine cannot reproduce from Batsim's own decisions (here a
    start time edited by hand) are a model difference."""
    from hdeeprm.crossval import explain
    import shutil

    batsim = tmp_path / "batsim"
    shutil.copytree(REFERENCE / "A5-hdeeprm-small", batsim)
    lines = (batsim / "out_jobs.csv").read_text().splitlines()
    head = lines[0].split(",")
    row = lines[1].split(",")
    finish = head.index("finish_time")
    row[finish] = f"{float(row[finish]) + 1.0:.6f}"
    lines[1] = ",".join(row)
    (batsim / "out_jobs.csv").write_text("\n".join(lines) + "\n")
    write_outputs(replay(str(REFERENCE / "A5-hdeeprm-small")), str(tmp_path / "embedded"))
    report = compare_runs(tmp_path / "embedded", batsim)
    assert not report.agree
    explanation = explain(report, batsim, tmp_path / "replay")
    assert explanation.cause == "model" and not explanation.replay_agrees
    assert "model differs" in explanation.summary()


# ------------------------------------------------------------------ output folder and faults


def test_crossval_refuses_a_used_output_folder(tmp_path, capsys):
    out = tmp_path / "out"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    assert _cli("A5-hdeeprm-small", tmp_path) == 2
    err = capsys.readouterr().err.strip()
    assert "the folder is not empty" in err and len(err.splitlines()) == 1
    assert (out / "notes.txt").read_text() == "mine" and sorted(p.name for p in out.iterdir()) == ["notes.txt"]
    (out / "notes.txt").unlink()
    (out / "crossval.lock").write_text("123\n")
    assert _cli("A5-hdeeprm-small", tmp_path) == 2
    assert "another crossval is writing there" in capsys.readouterr().err


def test_an_unwritable_output_folder_is_a_one_line_error(tmp_path, capsys):
    (tmp_path / "file").write_text("")
    scenario = find_scenario(str(REFERENCE / "A5-hdeeprm-small"))
    code = main(["crossval", "--platform", scenario.platform, "--hierarchy", scenario.hierarchy,
                 "--workload", scenario.workload, "--out", str(tmp_path / "file" / "out")])
    err = capsys.readouterr().err.strip()
    assert code == 2 and "cannot write there" in err and len(err.splitlines()) == 1


def test_a_failing_batsim_keeps_the_embedded_run_and_quotes_only_the_log_lines_that_matter(tmp_path, capsys):
    fake = tmp_path / "batsim"
    fake.write_text("#!/bin/sh\n"
                    "echo '[0.000000] [xbt_cfg/INFO] Configuration change: noise'\n"
                    "echo '[0.000000] /src/kernel/routing/NetZoneImpl.cpp:42: [ker_routing/CRITICAL] "
                    "There cannot be a route here'\n"
                    "exit 134\n")
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    scenario = find_scenario(str(REFERENCE / "A5-hdeeprm-small"))
    code = main(["crossval", "--platform", scenario.platform, "--hierarchy", scenario.hierarchy,
                 "--workload", scenario.workload, "--batsim", str(fake), "--timeout", "5",
                 "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1
    assert "There cannot be a route here" in err and "noise" not in err
    assert "the embedded run is kept" in err
    assert (tmp_path / "out" / "embedded" / "out_jobs.csv").is_file()
    assert not (tmp_path / "out" / "crossval.lock").exists()
