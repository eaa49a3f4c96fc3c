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
    engine = Engine(load_platform(scenario.platform), read_batsim_workload(scenario.workload),
                    simgrid_energy_quirk=True)
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
