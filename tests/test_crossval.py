"""Cross-validation: comparing Batsim-style output folders, and ``hdeeprm crossval`` end to
end with stand-ins for the batsim binary (a transcript replayer that writes the recorded
Batsim outputs, and an engine-backed server)."""

from __future__ import annotations

import csv
import json
import shutil
import stat
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("zmq")

from hdeeprm.analysis.crossval import compare_runs, crossvalidate_options
from hdeeprm.backends.batsim.replay_server import EngineServerThread
from hdeeprm.cli.main import main
from hdeeprm.inputs.platform import bundled_platform, load_platform
from hdeeprm.inputs.workload import read_batsim_workload
from hdeeprm.simulation.engine import Engine
from hdeeprm.simulation.outputs import write_outputs
from hdeeprm.simulation.policies import PolicyConfig, run_policy
from hdeeprm.simulation.replay import find_scenario, replay

REFERENCE = Path(__file__).parent / "data" / "batsim-reference"
SCENARIOS = sorted(p.name for p in REFERENCE.iterdir() if p.is_dir())
KTH_HEAD = Path(__file__).parents[1] / "hdeeprm" / "data" / "traces" / "kth-sp2-head.swf.gz"


@pytest.mark.parametrize("name", SCENARIOS)
def test_replays_make_every_batsim_message_and_batsims_exact_job_rows(tmp_path, name):
    """On SimGrid's clock the engine, given the recorded decisions, makes each of Batsim's
    messages (time, jobs, calls, p-state changes, end of submissions), so the replay writes
    Batsim's out_jobs.csv rows to the last printed decimal (energy aside: its sums are
    rounded in another order)."""
    from hdeeprm.simulation.replay import replay_lockstep

    result, mismatch = replay_lockstep(str(REFERENCE / name))
    assert mismatch is None, mismatch.describe()
    write_outputs(result, str(tmp_path))
    ours = sorted(line.rsplit(",", 2)[0] for line in (tmp_path / "out_jobs.csv").read_text().splitlines()[1:])
    batsim = sorted(line.rsplit(",", 2)[0] for line in (REFERENCE / name / "out_jobs.csv").read_text().splitlines()[1:])
    assert ours == batsim


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
    with the exact-arithmetic clock, our own FCFS decisions then differ from the recorded ones."""
    scenario = find_scenario(str(REFERENCE / "A7-fcfs-sdsc-sp2"))
    engine = Engine(load_platform(scenario.platform), read_batsim_workload(scenario.workload), clock="exact")
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
    assert _cli("A7-fcfs-sdsc-sp2", tmp_path, "--clock", "exact") == 1
    out = capsys.readouterr().out
    assert "verdict: DIFFER" in out and "allocated_resources" in out


def test_crossval_command_agrees_on_a7_with_simgrids_clock(tmp_path, capsys):
    """The same run with the default clock: the engine makes SimGrid's steps and Batsim's
    messages, so our FCFS takes Batsim's decisions."""
    assert _cli("A7-fcfs-sdsc-sp2", tmp_path) == 0
    assert "verdict: AGREE" in capsys.readouterr().out


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
    """A7 with our own FCFS on the exact clock: SimGrid's clock delivers some completions
    otherwise than that engine would, and our decisions part from Batsim's there. Replaying Batsim's own
    transcript on the engine reproduces Batsim's files, so crossval calls it a difference in
    event delivery and points at the Batsim message before the first divergence."""
    from hdeeprm.analysis.crossval import explain

    scenario = find_scenario(str(REFERENCE / "A7-fcfs-sdsc-sp2"))
    engine = Engine(load_platform(scenario.platform), read_batsim_workload(scenario.workload), clock="exact")
    write_outputs(run_policy(engine, PolicyConfig.parse("first:first_fit")), str(tmp_path / "embedded"))
    report = compare_runs(tmp_path / "embedded", REFERENCE / "A7-fcfs-sdsc-sp2")
    times = [d.time for d in report.differences]
    assert times == sorted(times) and report.first_divergence == times[0]
    assert report.summary().index(report.differences[0].job_id) < report.summary().index("verdict")
    explanation = explain(report, REFERENCE / "A7-fcfs-sdsc-sp2", tmp_path / "replay", clock="exact")
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
    import shutil

    from hdeeprm.analysis.crossval import explain

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
    assert explanation.notes == []  # the engine makes each of Batsim's messages: not delivery
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


# ------------------------------------------------------------------ grids (crossval --grid)


def _grid(tmp_path: Path, **grid) -> Path:
    """A grid on quickstart with the first jobs of the KTH head, and a fake batsim answering
    from an embedded engine except for the cells of smallest:* policies, where it exits 3
    (its work folder is named after the cell)."""
    fake = tmp_path / "batsim"
    _fake_batsim(fake, fail_on="smallest-")
    (tmp_path / "small.json").write_text(json.dumps({"platform": "quickstart", "workload": str(KTH_HEAD),
                                                     "nb_jobs": 40, "episode_jobs": None}))
    path = tmp_path / "grid.json"
    path.write_text(json.dumps({"experiment": "small.json", "batsim": str(fake), "timeout": 20, **grid}))
    return path


def _fake_batsim(path: Path, fail_on: str | None = None) -> None:
    fail = f'case "$*" in *{fail_on}*) echo "[ker/CRITICAL] stand-in failure" >&2; exit 3;; esac\n' if fail_on else ""
    path.write_text(f'#!/bin/sh\n{fail}exec "{sys.executable}" -m hdeeprm.backends.batsim.replay_server '
                    '--engine -- "$@"\n')
    path.chmod(path.stat().st_mode | stat.S_IEXEC)


def _summary(out: Path) -> list[dict]:
    with open(out / "summary.csv") as f:
        return list(csv.DictReader(f))


def test_a_grid_is_cross_validated_cell_by_cell_and_resumes(tmp_path, capsys):
    options = {"seed": 2, "nb_jobs": 30, "workload_file_path": str(KTH_HEAD),
               "platform_file_path": str(bundled_platform("quickstart")),
               "pybatsim": {"log_level": "INFO", "env": {"objective": "makespan", "actions": {
                   "selection": [{"shortest": ["low_power"]}], "void": False}}, "agent": {"type": "CLASSIC"}}}
    (tmp_path / "options.json").write_text(json.dumps(options))
    grid = _grid(tmp_path, policies=["first:first_fit", "smallest:low_power", "shortest:high_gflops+easy"],
                 seeds=[3], options=["options.json"])
    out = tmp_path / "out"
    assert main(["crossval", "--grid", str(grid), "--out", str(out), "--workers", "2"]) == 1
    text = capsys.readouterr().out
    assert "4 cells: 3 agree, 0 differ, 1 failed" in text
    rows = _summary(out)
    assert [(r["policy"], r["verdict"]) for r in rows] == [
        ("first:first_fit", "AGREE"), ("smallest:low_power", "ERROR"), ("shortest:high_gflops+easy", "AGREE"),
        ("options:options.json", "AGREE")]
    assert [r["jobs_compared"] for r in rows] == ["40", "", "40", "30"]
    assert all(r["seed"] == "3" for r in rows[:3]) and rows[0]["network"] == "zero-latency"
    assert float(rows[0]["energy_relative_difference"]) < 1e-9 and rows[0]["first_divergence"] == ""
    # The failed cell: its error in the row (naming the folder its files were kept in), its
    # traceback and partial files under errors/, and no folder under cells/.
    failed = rows[1]["cell"]
    assert "status 3" in rows[1]["error"] and "stand-in failure" in rows[1]["error"]
    assert str(out / "errors" / failed / "embedded") in rows[1]["error"]
    assert "Traceback" in (out / "errors" / f"{failed}.txt").read_text()
    assert (out / "errors" / failed / "embedded" / "out_jobs.csv").is_file()
    assert sorted(p.name for p in (out / "cells").iterdir()) == sorted(r["cell"] for r in rows if r["verdict"] != "ERROR")
    cell = out / "cells" / rows[0]["cell"]
    for name in ("embedded/out_jobs.csv", "batsim/out_jobs.csv", "crossval.json", "cell.json", "timing.json"):
        assert (cell / name).is_file(), name
    assert json.loads((cell / "crossval.json").read_text())["batsim_dir"] == "batsim"
    doc = json.loads((out / "summary.json").read_text())
    assert doc["totals"] == {"cells": 4, "agree": 3, "differ": 0, "differ_by_cause": {}, "error": 1}
    assert [c["cell"] for c in doc["cells"]] == [r["cell"] for r in rows]
    # Rerun with a batsim that works: only the failed cell runs again.
    _fake_batsim(tmp_path / "batsim")
    assert main(["crossval", "--grid", str(grid), "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "4 cells: 4 agree, 0 differ, 0 failed (1 ran, 3 done earlier" in text
    assert [r["verdict"] for r in _summary(out)] == ["AGREE"] * 4
    assert not (out / "errors" / f"{failed}.txt").exists() and not (out / "errors" / failed).exists()


def test_a_differing_cell_is_explained_in_the_summary(tmp_path, capsys):
    """A5 as a one-cell grid, Batsim's side replayed from its transcript but with a finish
    time edited in its outputs (as above): a model difference, whatever the engine's event
    grouping."""
    scenario = find_scenario(str(REFERENCE / "A5-hdeeprm-small"))
    outputs = tmp_path / "outputs"
    shutil.copytree(REFERENCE / "A5-hdeeprm-small", outputs)
    lines = (outputs / "out_jobs.csv").read_text().splitlines()
    finish = lines[0].split(",").index("finish_time")
    row = lines[1].split(",")
    row[finish] = f"{float(row[finish]) + 1.0:.6f}"
    lines[1] = ",".join(row)
    (outputs / "out_jobs.csv").write_text("\n".join(lines) + "\n")
    fake = tmp_path / "batsim"
    fake.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m hdeeprm.backends.batsim.replay_server '
                    f'--transcript "{scenario.transcript}" --outputs "{outputs}" -- "$@"\n')
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    (tmp_path / "a5.json").write_text(json.dumps({"platform": scenario.platform, "workload": scenario.workload,
                                                  "hierarchy": scenario.hierarchy, "episode_jobs": None}))
    grid = tmp_path / "grid.json"
    grid.write_text(json.dumps({"experiment": "a5.json", "policies": ["first:first_fit"], "batsim": str(fake)}))
    assert main(["crossval", "--grid", str(grid), "--out", str(tmp_path / "out"), "--markdown"]) == 1
    text = capsys.readouterr().out
    assert "| DIFFER |" in text and "1 cells: 0 agree, 1 differ (model 1), 0 failed" in text
    [row] = _summary(tmp_path / "out")
    assert row["verdict"] == "DIFFER" and row["cause"] == "model" and row["jobs_differing"] == "1"
    assert float(row["first_divergence"]) >= 0 and row["jobs_compared"] == "60"
    cell = tmp_path / "out" / "cells" / row["cell"]
    assert (cell / "crossval_delivery.csv").is_file() and (cell / "replay" / "out_jobs.csv").is_file()
    doc = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert doc["totals"]["differ_by_cause"] == {"model": 1}


@pytest.mark.parametrize("extra, grid, message", [
    (["--platform", "gaia"], {}, "--grid: --platform does not go with a grid"),
    ([], {"policies": ["random"]}, "'random' (random valid actions) is not cross-validated"),
    ([], {"policies": ["first:first_fit"], "networks": ["links", "wired"]}, "networks[1]: expected one of"),
    ([], {"options": ["nothing.json"]}, "options[0]: "),
    ([], {"options": [{"file": "x.json", "modell": "m.pt"}]}, "options[0]: expected an options file"),
])
def test_grid_crossval_mistakes_are_one_line_errors(tmp_path, capsys, extra, grid, message):
    path = _grid(tmp_path, **grid)
    assert main(["crossval", "--grid", str(path), "--out", str(tmp_path / "out"), *extra]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1
    assert not (tmp_path / "out").exists()


def test_engine_options_need_a_grid(capsys):
    assert main(["crossval", "--platform", "gaia", "--workload", "w.json", "--workers", "2", "--out", "x"]) == 2
    assert "--workers goes with --grid" in capsys.readouterr().err


@pytest.mark.batsim
@pytest.mark.skipif(shutil.which("batsim") is None, reason="batsim is not on PATH")
def test_a_tiny_grid_on_real_batsim(tmp_path, capsys):
    (tmp_path / "small.json").write_text(json.dumps({"platform": "quickstart", "workload": str(KTH_HEAD),
                                                     "nb_jobs": 40, "episode_jobs": None}))
    grid = tmp_path / "grid.json"
    grid.write_text(json.dumps({"experiment": "small.json", "policies": ["first:first_fit", "smallest:low_power+easy"],
                                "networks": ["zero-latency", "links"]}))
    code = main(["crossval", "--grid", str(grid), "--out", str(tmp_path / "out"), "--workers", "2"])
    rows = _summary(tmp_path / "out")
    assert code in (0, 1) and len(rows) == 4
    assert all(r["verdict"] in ("AGREE", "DIFFER") and r["jobs_compared"] == "40" for r in rows), rows
    assert (code == 0) == all(r["verdict"] == "AGREE" for r in rows)
    assert all((tmp_path / "out" / "cells" / r["cell"] / "batsim" / "batsim.log").is_file() for r in rows)


def test_an_options_file_with_a_custom_workload_runs_it_on_both_backends(tmp_path, capsys):
    """`crossval OPTIONS --workload W` plays the options file's agent on W, as
    `hdeeprm-launch -cw W` does; the embedded run is written even so."""
    options = {
        "seed": 4, "nb_jobs": 30, "workload_file_path": str(KTH_HEAD),
        "platform_file_path": str(bundled_platform("quickstart")),
        "pybatsim": {"log_level": "INFO", "env": {"objective": "avg_job_slowdown"},
                     "agent": {"type": "CLASSIC"}},
    }
    path = tmp_path / "options.json"
    path.write_text(json.dumps(options))
    custom = tmp_path / "custom.json"
    assert main(["convert", str(REFERENCE.parent / "traces" / "gaia-2014-head.swf.gz"), "--platform", "quickstart",
                 "--nb-jobs", "25", "--out", str(custom)]) == 0
    fake = tmp_path / "batsim"
    fake.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m hdeeprm.backends.batsim.replay_server '
                    '--engine -- "$@"\n')
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    assert main(["crossval", str(path), "--workload", str(custom), "--batsim", str(fake),
                 "--out", str(tmp_path / "out")]) == 0
    out = capsys.readouterr().out
    assert f"with workload {custom}" in out and "25 compared, 0 differ" in out
