"""compare, jobstat, describe, report and clean on the session's small real runs."""

from __future__ import annotations

import base64
import csv
import json
import os
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
from test_plots import EXPERIMENT, TRACES, Runs, make_runs

from hdeeprm.analysis.plots.data import open_run
from hdeeprm.analysis.plots.figures import comparison_figure, workload_figure
from hdeeprm.analysis.plots.units import COMPARED_METRICS
from hdeeprm.analysis.report import build_report
from hdeeprm.analysis.runs import apply_clean, compare_runs, comparison_table, describe_workload, jobstat, plan_clean
from hdeeprm.analysis.tables import format_number, format_seconds
from hdeeprm.cli.main import main
from hdeeprm.common.errors import HDeepRMError


@pytest.fixture(scope="session")
def runs(tmp_path_factory) -> Runs:
    return make_runs(tmp_path_factory.getbasetemp())  # cached: the runs test_plots uses


def schedule(run_dir: Path) -> dict:
    with open(run_dir / "out_schedule.csv", newline="") as fh:
        return {k: v for k, v in next(csv.DictReader(fh)).items()}


# ---------------------------------------------------------------------------- compare


def test_compare_table_and_figure_show_the_eight_batsim_metrics(runs):
    compared = compare_runs([str(runs.sim), str(runs.sim_easy), str(runs.train)])
    assert [r.name for r in compared] == ["sim", "sim-easy", "train"]
    for r, run_dir in zip(compared, (runs.sim, runs.sim_easy, runs.train / "episode_3")):
        truth = schedule(run_dir)
        assert r.values.tolist() == [float(truth[key]) for key, _, _ in COMPARED_METRICS]
    table = comparison_table(compared)
    lines = table.split("\n\nhow the runs were made")[0].splitlines()  # the simulate runs have a manifest
    assert len(lines) == 2 + 8 + 1
    waiting = next(line for line in lines if line.startswith("Mean waiting time"))
    best = min(range(3), key=lambda i: compared[i].values[-1])
    # Rounded for reading (hdeeprm.analysis.tables): 5 significant digits in hours, 1 to 3 decimals in seconds.
    shown = (format_number(compared[best].values[-1] / 3600, 5) if " h " in waiting
             else format_seconds(compared[best].values[-1]))
    assert waiting.count("*") == 1 and f"{shown}*" in waiting
    fig = comparison_figure([r.name for r in compared], np.stack([r.values for r in compared]))
    assert len(fig.axes) == 8
    energy = fig.axes[0]
    assert energy.get_ylabel() == "energy (MJ)"
    heights = [b.get_height() for b in energy.patches]
    assert np.allclose(heights, [r.values[0] / 1e6 for r in compared])
    assert fig.axes[1].get_ylabel() == "makespan (h)" and fig.axes[2].get_ylabel() == "max. slowdown (ratio)"
    assert [t.get_text() for t in fig.legends[0].get_texts()] == ["sim", "sim-easy", "train"]


def test_compare_command(runs, tmp_path, capsys):
    out = tmp_path / "cmp.svg"
    assert main(["compare", str(runs.sim / "out_schedule.csv"), str(runs.sim_easy), "-n", "fcfs", "easy",
                 "-o", str(out)]) == 0
    text = capsys.readouterr().out
    assert "fcfs" in text and "easy" in text and "Makespan" in text and out.read_bytes().startswith(b"<?xml")
    assert main(["compare", str(runs.sim)]) == 2
    assert "at least two runs" in capsys.readouterr().err
    assert main(["compare", str(runs.sim), str(runs.sim_easy), "-n", "one"]) == 2
    assert "1 names for 2 runs" in capsys.readouterr().err


# ---------------------------------------------------------------------------- workloads


def json_profiles(path: Path):
    data = json.loads(path.read_text())
    return data["jobs"], [data["profiles"][j["profile"]] for j in data["jobs"]]


@pytest.mark.parametrize("field, stat, truth", [
    ("mem", "p95", lambda jobs, prof: np.percentile([p["mem"] for p in prof], 95)),
    ("size", "median", lambda jobs, prof: np.median([j["res"] for j in jobs])),
    ("req_time", "max", lambda jobs, prof: max(p["req_time"] for p in prof)),
    ("mem_bw", "mean", lambda jobs, prof: np.mean([p["mem_bw"] for p in prof])),
    ("size", "p99", lambda jobs, prof: np.percentile([j["res"] for j in jobs], 99)),
    ("req_time", "min", lambda jobs, prof: min(p["req_time"] for p in prof)),
])
def test_jobstat_matches_the_workload_file(runs, field, stat, truth, capsys):
    jobs, prof = json_profiles(runs.workload)
    assert jobstat(str(runs.workload), field, stat) == pytest.approx(truth(jobs, prof))
    assert main(["jobstat", str(runs.workload), field, stat]) == 0
    assert float(capsys.readouterr().out) == pytest.approx(truth(jobs, prof))


def test_jobstat_reads_swf_traces_like_their_conversion(runs, tmp_path, capsys):
    converted = tmp_path / "kth.json"
    assert main(["convert", str(TRACES / "kth-sp2-head.swf.gz"), "--platform", "quickstart",
                 "--out", str(converted)]) == 0
    for field in ("req_time", "size", "mem", "mem_bw"):
        assert jobstat(str(TRACES / "kth-sp2-head.swf.gz"), field, "mean") == pytest.approx(
            jobstat(str(converted), field, "mean"))
    with pytest.raises(HDeepRMError, match="unknown field 'cores'; expected one of req_time, size"):
        jobstat(str(converted), "cores", "mean")
    with pytest.raises(SystemExit):
        main(["jobstat", str(converted), "size", "p50"])
    assert "invalid choice: 'p50'" in capsys.readouterr().err


def test_describe_summarises_and_computes_the_load(runs):
    jobs, prof = json_profiles(runs.workload)
    without = describe_workload(str(runs.workload))
    assert without.nb_jobs == len(jobs) and without.offered_load is None
    assert any("--platform" in n for n in without.notes)
    s = describe_workload(str(runs.workload), platform="quickstart")
    from hdeeprm.inputs.platform import bundled_platform, load_platform

    reference = load_platform(bundled_platform("quickstart")).hierarchy.reference_speed_gflops * 1e9
    runtime = np.array([p["cpu"] for p in prof]) / reference
    res = np.array([j["res"] for j in jobs])
    submit = np.array([j["subtime"] for j in jobs])
    assert s.nb_machines == 88 and s.too_large == 0
    assert s.offered_load == pytest.approx((res * runtime).sum() / (88 * (submit.max() - submit.min())))
    assert np.allclose(s.columns["run time (s)"], runtime)
    fig = workload_figure(s.columns, "t")
    hist = [ax for ax in fig.axes if ax.get_visible()]
    assert len(hist) == 6 and hist[0].get_xlabel() == "size (machines)"
    shown = sum(p.get_height() for p in hist[0].patches)
    assert shown == len(jobs)  # every size is positive: every job is in the histogram


def test_describe_command_on_a_trace(tmp_path, capsys):
    out = tmp_path / "w.pdf"
    assert main(["describe", str(TRACES / "gaia-2014-head.swf.gz"), "--platform", "learning", "--nb-jobs", "500",
                 "--figure", str(out)]) == 0
    text = capsys.readouterr().out
    assert "500 jobs submitted over" in text and "offered load" in text
    assert "ask for more than 4 machines" in text and out.read_bytes().startswith(b"%PDF")


# ---------------------------------------------------------------------------- report


def test_report_is_one_self_contained_page(runs, tmp_path, capsys):
    out = tmp_path / "sim.html"
    assert main(["report", str(runs.sim), "-o", str(out)]) == 0
    page = out.read_text()
    assert not re.search(r'(src|href)="(https?:|//|[^d#])', page)  # nothing fetched from elsewhere
    images = re.findall(r'<img alt="" src="data:image/png;base64,([A-Za-z0-9+/=]+)"', page)
    expected = ["gantt_no_label", "queue_size", "utilization", "power", "energy", "pstates", "blocking",
                "mem_bw_overutilization"]
    assert re.findall(r'<figure id="fig-(\w+)"', page) == expected and len(images) == len(expected)
    assert all(base64.b64decode(i).startswith(b"\x89PNG") for i in images)
    metrics = json.loads((runs.sim / "run_config.json").read_text())["metrics"]
    # The headline metrics rounded for reading (the file keeps every digit).
    assert (f'<td>makespan</td><td class="num">{format_seconds(metrics["makespan"])}</td><td>s</td>' in page
            or f'<td>makespan</td><td class="num">{format_number(metrics["makespan"] / 3600, 5)}</td><td>h</td>'
            in page)
    assert repr(metrics["makespan"]) not in page
    assert "first:high_mem" in page and "run_config.json" in page
    assert "Not drawn: learning" in page  # and says why


def test_report_of_a_training_run(runs):
    page = build_report(open_run(runs.train), fmt="svg")
    assert 'id="fig-learning"' in page and 'id="fig-action_preferences"' in page
    assert "<svg" in page and "<?xml" not in page and "<!DOCTYPE svg" not in page
    assert "Evaluation on held-out episodes" in page and "first:high_gflops" in page
    # The headline is the agent's evaluation, before the last training episode's outputs.
    agent = page.index("held-out evaluation windows, from evaluation.csv")
    assert agent < page.index("(one training episode, played while learning)") < page.index("<h2>Evaluation on")
    assert f"<td>episodes</td><td class=\"num\">{EXPERIMENT['episodes']}</td>" in page
    assert f"episode_&lt;k&gt;/ ({EXPERIMENT['episodes']} folders" in page


# ---------------------------------------------------------------------------- clean


def test_clean_removes_only_what_hdeeprm_wrote(runs, tmp_path, capsys):
    run = tmp_path / "train"
    shutil.copytree(runs.train, run)
    assert main(["report", str(run)]) == 0
    assert main(["plot", "energy", str(run)]) == 0
    (run / "notes.txt").write_text("mine")
    (run / "episode_1" / "analysis.csv").write_text("mine")
    (run / "figures" / "photo.png").write_bytes(b"\x89PNG not a figure of ours")
    (run / "actions.log").write_text("0\n1\n")
    (run / "rewards.log").write_text("my own notes, not numbers\n")  # a user's file of our name
    outside = tmp_path / "precious.csv"
    outside.write_text("job_id,workload_name,profile,submission_time\n")
    (run / "episode_2" / "out_jobs.csv").unlink()
    os.symlink(outside, run / "episode_2" / "out_jobs.csv")
    before = sorted(p for p in run.rglob("*"))

    assert main(["clean", str(run), "--dry-run"]) == 0
    assert sorted(p for p in run.rglob("*")) == before
    listing = capsys.readouterr().out
    assert "would remove" in listing and "rewards.log: content not recognised" in listing

    assert main(["clean", str(run), "--soft"]) == 0
    assert (run / "model.pt").is_file() and (run / "experiment.json").is_file()
    assert not (run / "report.html").exists() and not (run / "figures" / "energy.png").exists()
    assert main(["clean", str(run)]) == 0
    left = sorted(str(p.relative_to(run)) for p in run.rglob("*"))
    assert left == ["episode_1", "episode_1/analysis.csv", "episode_2", "episode_2/out_jobs.csv", "figures",
                    "figures/photo.png", "notes.txt", "rewards.log"]
    assert outside.read_text().startswith("job_id")
    capsys.readouterr()
    assert main(["clean", str(run)]) == 2  # nothing of ours is left: refuse
    assert "nothing removed" in capsys.readouterr().err


def test_clean_refuses_folders_that_are_not_runs(runs, tmp_path, capsys):
    (tmp_path / "out_jobs.csv").write_text("these are my notes\n")
    with pytest.raises(HDeepRMError, match="no file written by hdeeprm"):
        plan_clean(tmp_path)
    assert main(["clean", str(tmp_path / "missing")]) == 2
    assert (tmp_path / "out_jobs.csv").is_file()
    # Real Batsim's outputs have our names and columns, but no timing.json of ours beside them.
    before = sorted(p.name for p in runs.batsim.iterdir())
    with pytest.raises(HDeepRMError, match="no file written by hdeeprm"):
        plan_clean(runs.batsim)
    assert sorted(p.name for p in runs.batsim.iterdir()) == before


def test_clean_removes_a_whole_simulate_run(runs, tmp_path):
    run = tmp_path / "sim"
    shutil.copytree(runs.sim, run)
    plan = plan_clean(run)
    assert sorted(p.name for p in plan.remove) == sorted(p.name for p in runs.sim.iterdir() if p.is_file())
    apply_clean(plan)
    assert not run.exists()  # left empty, so the folder goes too


def test_clean_never_follows_a_link_named_like_an_episode_folder(runs, tmp_path):
    # Issue 17: a symbolic link episode_<k> pointing at another run: its files are not in RUN.
    run, elsewhere = tmp_path / "run", tmp_path / "elsewhere"
    shutil.copytree(runs.train, run)
    shutil.copytree(runs.train / "episode_1", elsewhere)
    os.symlink(elsewhere, run / "episode_9")
    before = sorted(p.name for p in elsewhere.iterdir())
    plan = plan_clean(run)
    assert not any(elsewhere in p.parents or p.resolve().parent == elsewhere.resolve() for p in plan.remove)
    assert (run / "episode_9", "not a regular file") in plan.kept
    apply_clean(plan)
    assert sorted(p.name for p in elsewhere.iterdir()) == before and (run / "episode_9").is_symlink()
