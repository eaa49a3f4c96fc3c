"""``hdeeprm thesis``: each of the original's thesis experiments is one command from a fresh install."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from hdeeprm.cli.main import main
from hdeeprm.cli.thesis import EXPERIMENTS

DATA = Path(__file__).parent / "data"


def summary(out: Path) -> dict:
    return json.loads((out / "episode_0" / "overutilization.json").read_text())["summary"]


def test_the_list_names_every_experiment_and_the_trace_it_needs(capsys, monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    assert main(["thesis"]) == 0
    listing = capsys.readouterr().out
    assert set(EXPERIMENTS) == {"primer/gaia/first-high_gflops", "primer/gaia/shortest-high_gflops",
                                "primer/mc2/first-high_gflops", "primer/mc2/shortest-high_gflops",
                                "consequences/gaia/shortest-high_gflops", "consequences/gaia/shortest-high_mem_bw",
                                "learning"}
    for name in EXPERIMENTS:
        assert name in listing
    assert "--trace METACENTRUM-2013-3.swf.gz (not bundled)" in listing


def test_consequences_spreading_by_bandwidth_shortens_the_contention(tmp_path, monkeypatch, capsys):
    """The thesis's point, from a fresh install: the same 100 Gaia jobs packed onto the fastest
    cores over-subscribe memory bandwidth for longer than spread by remaining bandwidth."""
    monkeypatch.chdir(tmp_path)  # nothing from the working directory: the bundled Gaia jobs
    runs = {}
    for core_key in ("high_gflops", "high_mem_bw"):
        out = tmp_path / core_key
        assert main(["thesis", f"consequences/gaia/shortest-{core_key}", "--out", str(out)]) == 0
        options = json.loads((out / "options.json").read_text())
        assert options["pybatsim"]["env"]["actions"]["selection"] == [{"shortest": [core_key]}]
        assert Path(options["workload_file_path"]).name == "gaia-2014-head.swf.gz"
        jobs = (out / "episode_0" / "out_jobs.csv").read_text().splitlines()
        assert len(jobs) == 1 + 100 and all("COMPLETED_SUCCESSFULLY" in line for line in jobs[1:])
        runs[core_key] = summary(out)
    err = capsys.readouterr().err
    assert err.count("workload model: the original's") == 2 and "Traceback" not in err
    assert runs["high_mem_bw"]["oversubscribed_processor_seconds"] < runs["high_gflops"][
        "oversubscribed_processor_seconds"]


def test_learning_runs_with_its_own_workload_and_the_bundled_reinforce_agent(tmp_path):
    out = tmp_path / "learning"
    assert main(["thesis", "learning", "-nr", "5", "--out", str(out)]) == 0
    assert len((out / "rewards.log").read_text().split()) == 5
    assert len((out / "losses.log").read_text().split()) == 5
    resolved = json.loads((out / "options_resolved.json").read_text())
    assert resolved["pybatsim"]["agent"]["algorithm"] == "reinforce"
    assert resolved["launch"]["custom_workload"].endswith("learning_workload.json")


def test_metacentrum_needs_its_trace_and_says_where_to_get_it(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["thesis", "primer/mc2/first-high_gflops"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert "METACENTRUM-2013-3.swf.gz" in err and "l_metacentrum2" in err and "--trace" in err
    assert not (tmp_path / "runs").exists()  # nothing written for a run that cannot start
    assert main(["thesis", "primer/mc2/first-high_gflops", "--trace", str(tmp_path / "nope.swf")]) == 2
    assert "nope.swf: no such file" in capsys.readouterr().err


@pytest.mark.slow
def test_metacentrum_runs_with_the_trace_it_is_given(tmp_path, monkeypatch):
    """With a trace (a stand-in here: the bundled KTH excerpt), the experiment runs on the
    bundled MetaCentrum 2 platform; a file of the archive's name in the working directory is
    found without --trace."""
    import shutil

    monkeypatch.chdir(tmp_path)
    shutil.copy(DATA / "traces" / "kth-sp2-head.swf.gz", tmp_path / "METACENTRUM-2013-3.swf.gz")
    out = tmp_path / "mc2"
    assert main(["thesis", "primer/mc2/shortest-high_gflops", "--out", str(out)]) == 0
    options = json.loads((out / "options.json").read_text())
    assert options["workload_file_path"] == str(tmp_path / "METACENTRUM-2013-3.swf.gz")
    assert Path(options["platform_file_path"]).name == "mc2.json"
    assert len((out / "episode_0" / "out_jobs.csv").read_text().splitlines()) == 1 + 1000


def test_unknown_experiments_and_misplaced_traces_are_one_line_errors(tmp_path, capsys):
    assert main(["thesis", "primer/gaia/nothing"]) == 2
    assert "expected one of primer/gaia/first-high_gflops" in capsys.readouterr().err
    assert main(["thesis", "learning", "--trace", "x.swf", "--out", str(tmp_path / "o")]) == 2
    assert "brings its own workload" in capsys.readouterr().err


def test_primer_shortest_job_first_waits_less_than_fcfs_on_gaia(tmp_path, monkeypatch):
    """The primer's comparison on the bundled Gaia jobs: the same 1,000 jobs, packed onto the
    fastest cores, wait less under shortest-job-first than under first-come-first-served."""
    monkeypatch.chdir(tmp_path)
    waits = {}
    for job_key in ("first", "shortest"):
        out = tmp_path / job_key
        assert main(["thesis", f"primer/gaia/{job_key}-high_gflops", "--out", str(out)]) == 0
        jobs = (out / "episode_0" / "out_jobs.csv").read_text().splitlines()
        assert len(jobs) == 1 + 1000
        header = jobs[0].split(",")
        column = header.index("waiting_time")
        waits[job_key] = sum(float(line.split(",")[column]) for line in jobs[1:]) / 1000
    assert waits["shortest"] < 0.5 * waits["first"], waits
