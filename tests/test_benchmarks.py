"""The benchmark's helpers (benchmarks/): platforms of any size, repeated traces. No timing."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"
sys.path.insert(0, str(BENCHMARKS))

from platforms import flat_platform, scaled_gaia  # noqa: E402
from run import parse_args, repeated  # noqa: E402

TRACE = Path(__file__).parent / "data" / "traces" / "gaia-2014-head.swf.gz"
REFERENCE = Path(__file__).parent / "data" / "batsim-reference" / "A7-fcfs-sdsc-sp2"  # 1,000 jobs, FCFS


@pytest.mark.parametrize("cores", [100, 1000, 10_000])
def test_scaled_gaia_has_about_the_cores_asked_and_gaias_node_types(cores):
    platform = scaled_gaia(cores)
    assert cores <= platform.nb_machines < cores + 12
    types = set(platform.hierarchy.node_type)
    assert "Bullx B500-1" in types
    if cores >= 10_000:  # every gaia type, big SMP nodes included
        assert {"SGI UV-2000", "Bullx S6030", "Dell R820"} <= types


def test_flat_platform_is_batsims_benchmark_setting():
    platform = flat_platform(64)
    assert platform.nb_machines == 64 and platform.hierarchy is None
    assert (platform.speeds == 1e9).all() and platform.host_names[10] == "h10"


def test_repeated_trace_copies_follow_each_other_in_submission_order():
    from hdeeprm.inputs.workload import load_workload

    arrays = load_workload(TRACE, nb_jobs=100, reference_speed_gflops=10.0,
                           rng=np.random.default_rng(0)).compile()
    big = repeated(arrays, 3)
    assert len(big) == 300 and len(set(big.job_ids)) == 300
    assert (np.diff(big.subtime) >= 0).all()
    np.testing.assert_array_equal(big.res[200:], arrays.res)
    np.testing.assert_array_equal(big.subtime[100:200] - big.subtime[100], arrays.subtime)


@pytest.fixture
def scenario(tmp_path):
    """A scenario folder as the whole section takes it: platform.xml and workload.json."""
    folder = tmp_path / "scenario"
    folder.mkdir()
    for name in ("platform.xml", "workload.json"):
        shutil.copy(REFERENCE / name, folder / name)
    return folder


def test_whole_section_needs_no_trace_and_batsim_goes_with_a_scenario(scenario, tmp_path):
    args = parse_args(["--only", "whole", "--scenario", str(scenario), "--scenario", str(scenario), "--batsim"])
    assert args.sections == ["whole"] and args.scenarios == [str(scenario)] * 2 and args.batsim == ""
    assert parse_args(["--only", "whole", "--scenario", str(scenario), "--batsim=/opt/batsim"]).batsim == "/opt/batsim"
    assert parse_args(["--only", "whole", "--scenario", str(scenario)]).batsim is None
    assert "whole" in parse_args([str(TRACE)]).sections  # in the default set
    for argv in (["--scenario", str(scenario)],  # the default set has sections that need traces
                 ["--only", "whole", "--scenario", str(tmp_path)],  # no platform.xml / workload.json
                 ["--only", "whole", "--batsim"],  # --batsim without a scenario
                 ["--only", "whole,nothing", "--scenario", str(scenario)]):
        with pytest.raises(SystemExit):
            parse_args(argv)


def run_whole(scenario, tmp_path, *extra):
    out = tmp_path / "whole.json"
    proc = subprocess.run([sys.executable, str(BENCHMARKS / "run.py"), "--only", "whole", "--scenario", str(scenario),
                           "--repeat", "1", "--out", str(out), "--markdown", str(tmp_path / "whole.md"), *extra],
                          capture_output=True, text=True, timeout=600, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Whole process" in proc.stdout and "Whole process" in (tmp_path / "whole.md").read_text()
    (row,) = json.loads(out.read_text())["whole"]
    return row


@pytest.mark.slow
def test_whole_section_runs_hdeeprm_simulate_on_each_scenario(scenario, tmp_path):
    row = run_whole(scenario, tmp_path)
    assert row["scenario"] == "scenario" and row["jobs"] == 1000 and row["machines"] == 128
    assert row["policy"] == "first:first_fit" and row["makespan_s"] > 0
    for name in ("process_seconds", "core_seconds", "rest_seconds", "import_seconds"):
        assert set(row[name]) == {"median", "min", "max", "runs"} and len(row[name]["runs"]) == 1
    assert row["rest_seconds"]["median"] == pytest.approx(row["process_seconds"]["median"]
                                                          - row["core_seconds"]["median"])
    assert "batsim" not in row  # only with --batsim


@pytest.mark.slow
@pytest.mark.batsim
@pytest.mark.skipif(shutil.which("batsim") is None, reason="batsim is not on PATH")
def test_whole_section_with_batsim_runs_real_batsim_and_compares(scenario, tmp_path):
    row = run_whole(scenario, tmp_path, "--batsim")
    batsim = row["batsim"]
    assert batsim["agree"] is True and len(batsim["runs"]) == 1
    run = batsim["runs"][0]
    assert run["jobs_compared"] == 1000 and run["jobs_differing"] == 0
    assert run["makespan_s"] == run["embedded_makespan_s"] == pytest.approx(row["makespan_s"])
    assert batsim["ratio"] == pytest.approx(batsim["seconds"]["median"] / row["process_seconds"]["median"])


@pytest.mark.slow
def test_train_section_times_a_training_run_by_part(tmp_path):
    experiment = tmp_path / "tiny.json"
    experiment.write_text(json.dumps({
        "platform": "quickstart", "workload": "kth-sp2-head.swf.gz", "nb_jobs": 300, "episode_jobs": 20,
        "action_space": "job_window", "window_jobs": 4, "algorithm": "kernel_ppo", "vectorised": True,
        "rollout_batch": 2, "episodes": 4, "hidden": 8}))
    out = tmp_path / "train.json"
    proc = subprocess.run([sys.executable, str(BENCHMARKS / "run.py"), "--only", "train", "--experiment",
                           str(experiment), "--repeat", "1", "--out", str(out)],
                          capture_output=True, text=True, timeout=600, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Training throughput" in proc.stdout and "PPO training on" in proc.stdout
    (row,) = json.loads(out.read_text())["train"]
    assert row["episodes"] == 4 and row["steps"] > 0
    assert row["steps_per_s"]["median"] == pytest.approx(row["steps"] / row["seconds"])
    parts = row["environment_s"] + row["inference_s"] + row["learning_s"] + row["rest_s"]
    assert parts == pytest.approx(row["seconds"]) and min(row["environment_s"], row["inference_s"],
                                                         row["learning_s"]) > 0


def test_train_section_needs_no_trace():
    assert parse_args(["--only", "train"]).sections == ["train"]


def profile_phases(stdout: str) -> dict[str, float]:
    """The phase table of command_profile.py: phase label -> seconds."""
    phases = {}
    for line in stdout.splitlines():
        found = re.match(r"^(\s*\S.*?)\s+([0-9.]+)\s+[0-9]+ %$", line)
        if found:
            phases[found.group(1).strip()] = float(found.group(2))
    return phases


@pytest.mark.slow
def test_command_profile_splits_a_whole_simulate_run_by_phase(scenario):
    proc = subprocess.run([sys.executable, str(BENCHMARKS / "command_profile.py"), "simulate", str(scenario),
                           "--top", "5"], capture_output=True, text=True, timeout=600, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    total = float(re.search(r"in-process profiled run ([0-9.]+) s", proc.stdout).group(1))
    phases = profile_phases(proc.stdout)
    for name in ("reading the workload", "simulating (policy run)", "writing the outputs", "out_jobs.csv"):
        assert 0 < phases[name] <= total, (name, proc.stdout)
    assert phases["out_jobs.csv"] <= phases["writing the outputs"]
    assert len(re.findall(r"^\s+[0-9.]+ s\s+[0-9,]+\s+\S", proc.stdout, re.MULTILINE)) == 5  # --top 5


def test_command_profile_names_a_scenario_without_its_files(tmp_path):
    proc = subprocess.run([sys.executable, str(BENCHMARKS / "command_profile.py"), "simulate", str(tmp_path)],
                          capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode != 0 and "no platform.xml" in proc.stderr


@pytest.mark.batsim
@pytest.mark.skipif(shutil.which("batsim") is None, reason="batsim is not on PATH")
def test_dropin_section_runs_one_scheduler_on_both_simulators(scenario, tmp_path):
    out = tmp_path / "dropin.json"
    proc = subprocess.run([sys.executable, str(BENCHMARKS / "run.py"), "--only", "dropin", "--scenario", str(scenario),
                           "--batsim", "--repeat", "1", "--out", str(out)],
                          capture_output=True, text=True, timeout=600, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Drop-in Batsim" in proc.stdout
    (row,) = json.loads(out.read_text())["dropin"]
    assert row["same_schedule"] is True and row["job_energy_max_rel_diff"] < 1e-9
    assert row["ratio"] == pytest.approx(row["batsim"]["median"] / row["hdeeprm"]["median"])


def test_dropin_section_needs_a_scenario():
    assert parse_args(["--only", "dropin"]).sections == ["dropin"]
    with pytest.raises(SystemExit):
        parse_args(["--only", "dropin", "--batsim"])
