"""hdeeprm-launch's workload model: the original's by default (sampled over-estimation factors,
no walltime; -cw profiles rewritten to run for their requested time), the modern one with
--workload-model modern; HeteroEnv.from_options takes the same choice."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("torch")

import hdeeprm  # noqa: E402
from hdeeprm.cli.launch import main as launch  # noqa: E402
from hdeeprm.common.errors import ConfigError, WorkloadError  # noqa: E402
from hdeeprm.inputs.platform import bundled_platform  # noqa: E402
from hdeeprm.inputs.workload import read_batsim_workload  # noqa: E402
from hdeeprm.inputs.workload.convert import RUNTIME_FACTOR_TWENTIETHS  # noqa: E402
from hdeeprm.inputs.workload.original_model import original_custom_workload  # noqa: E402
from hdeeprm.rl.env import HeteroEnv  # noqa: E402

DATA = Path(hdeeprm.__file__).parent / "data"
KTH_HEAD = DATA / "traces" / "kth-sp2-head.swf.gz"  # the first 1,000 jobs of the KTH SP2 log
NOTICE = "hdeeprm-launch: workload model: "


def classic_options(tmp_path: Path, platform: str = "quickstart", **extra) -> Path:
    """A CLASSIC original options file on the bundled KTH head trace (all of its jobs)."""
    options = {
        "seed": 20091995, "nb_resources": 64, "nb_jobs": 2000,
        "workload_file_path": str(KTH_HEAD), "platform_file_path": str(bundled_platform(platform)),
        "pybatsim": {"log_level": "INFO", "env": {"objective": "avg_job_slowdown"},
                     "agent": {"type": "CLASSIC", "policy_pair": "shortest-high_gflops"}},
    }
    options.update(extra)
    path = tmp_path / "options.json"
    path.write_text(json.dumps(options))
    return path


def jobs(out: Path, episode: int = 0) -> list[dict]:
    with open(out / f"episode_{episode}" / "out_jobs.csv", newline="") as f:
        return list(csv.DictReader(f))


def states(rows: list[dict]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for row in rows:
        counts[row["final_state"]] = counts.get(row["final_state"], 0) + 1
    return counts


def notices(err: str) -> list[str]:
    return [line for line in err.splitlines() if line.startswith(NOTICE)]


def test_the_original_model_kills_no_job_and_says_so_once(tmp_path, capsys):
    out = tmp_path / "out"
    assert launch([str(classic_options(tmp_path)), "-nr", "2", "--out", str(out)]) == 0
    said = notices(capsys.readouterr().err)
    assert len(said) == 1 and "the original's" in said[0] and "--workload-model modern" in said[0]
    for episode in (0, 1):
        rows = jobs(out, episode)
        assert len(rows) == 1000
        assert states(rows) == {"COMPLETED_SUCCESSFULLY": 1000}
        assert {row["requested_time"] for row in rows} == {"-1.000000"}  # no walltime, as the original
    launched = json.loads((out / "options_resolved.json").read_text())["launch"]
    assert launched["workload_model"] == "original"
    assert launched["workload_model_note"] == said[0][len("hdeeprm-launch: "):]


def test_the_modern_model_kills_jobs_at_their_requested_time(tmp_path, capsys):
    out = tmp_path / "out"
    assert launch([str(classic_options(tmp_path)), "--workload-model", "modern", "--out", str(out)]) == 0
    said = notices(capsys.readouterr().err)
    assert len(said) == 1 and said[0].startswith(NOTICE + "modern (") and "killed" in said[0]
    counts = states(jobs(out))
    assert counts["COMPLETED_WALLTIME_REACHED"] > 100 and sum(counts.values()) == 1000
    assert json.loads((out / "options_resolved.json").read_text())["launch"]["workload_model"] == "modern"


def test_the_original_model_is_seeded(tmp_path, capsys):
    options = classic_options(tmp_path, nb_jobs=300)
    for name in ("a", "b"):
        assert launch([str(options), "--out", str(tmp_path / name)]) == 0
    first = (tmp_path / "a" / "episode_0" / "out_jobs.csv").read_bytes()
    assert (tmp_path / "b" / "episode_0" / "out_jobs.csv").read_bytes() == first
    other = classic_options(tmp_path, nb_jobs=300, seed=7)
    assert launch([str(other), "--out", str(tmp_path / "c")]) == 0
    assert (tmp_path / "c" / "episode_0" / "out_jobs.csv").read_bytes() != first  # other factors drawn


def test_factors_are_drawn_per_job_not_per_profile_name(tmp_path):
    """The original shared profiles named "{req_time}_{mem}_{mem_bw}", so later jobs reused the
    first one's factor: a bug not reproduced; every factor is one of the 25 points."""
    options = classic_options(tmp_path)
    env = HeteroEnv.from_options(options, workload_model="original")
    w, speed = env.workload, env.platform.reference_speed_gflops
    twentieths = w.work / (w.req_time * speed * 1e9) * 20
    assert np.allclose(twentieths, np.rint(twentieths), atol=1e-6)
    assert set(np.rint(twentieths).astype(int)) <= set(RUNTIME_FACTOR_TWENTIETHS.tolist())
    assert np.isinf(w.walltime).all()
    classes: dict[tuple, set] = {}
    for key, k in zip(zip(w.req_time, w.mem_mb, w.mem_bw_gbs), np.rint(twentieths).astype(int)):
        classes.setdefault(key, set()).add(int(k))
    assert any(len(ks) > 1 for ks in classes.values())  # one class, several factors
    # The API's default stays the modern model: real run times, walltime = requested time.
    modern = HeteroEnv.from_options(options)
    assert np.array_equal(modern.workload.walltime, modern.workload.req_time)
    with pytest.raises(ConfigError, match="workload_model 'old': expected one of original, modern"):
        HeteroEnv.from_options(options, workload_model="old")


def test_easy_backfilling_needs_the_modern_model_on_a_trace(tmp_path):
    options = classic_options(tmp_path, nb_jobs=50)
    data = json.loads(options.read_text())
    data["pybatsim"]["env"]["backfill"] = "easy"
    options.write_text(json.dumps(data))
    with pytest.raises(ConfigError, match="backfill 'easy'.*--workload-model modern"):
        HeteroEnv.from_options(options, workload_model="original")
    HeteroEnv.from_options(options, workload_model="modern")


# -cw: the original rewrote every profile so that a job runs for its requested time ---------------

def custom_workload(tmp_path: Path, profile: dict) -> Path:
    path = tmp_path / "custom.json"
    path.write_text(json.dumps({"nb_res": 4, "jobs": [{"id": 0, "subtime": 0, "res": 1, "profile": "one"}],
                                "profiles": {"one": profile}}))
    return path


def learning_options(tmp_path: Path) -> Path:
    options = json.loads((DATA / "thesis_options" / "learning.json").read_text())
    options["platform_file_path"] = str(bundled_platform("learning"))
    options["pybatsim"]["agent"]["algorithm"] = "reinforce"
    path = tmp_path / "learning.json"
    path.write_text(json.dumps(options))
    return path


def run_one_job(tmp_path: Path, capsys, workload: Path, *flags: str) -> tuple[float, float, str]:
    """Execution time of the lone job, the GFLOP/s of the core it ran on (P0), and the notice."""
    out = tmp_path / ("out" + "".join(flags))
    assert launch([str(learning_options(tmp_path)), "-cw", str(workload), *flags, "--out", str(out)]) == 0
    (row,) = jobs(out)
    assert row["final_state"] == "COMPLETED_SUCCESSFULLY"
    core = int(row["allocated_resources"])
    speeds = HeteroEnv.from_options(learning_options(tmp_path), workload=str(workload)).platform.speeds
    said = notices(capsys.readouterr().err)
    assert len(said) == 1
    return float(row["execution_time"]), speeds[core][0] / 1e9, said[0]


def test_custom_workload_jobs_run_for_their_requested_time_at_the_reference_speed(tmp_path, capsys):
    # A low bandwidth keeps the core in P0; the file's cpu (8.8e10 flops) is 20 s at 4.4 GFLOP/s.
    workload = custom_workload(tmp_path, {"type": "parallel_homogeneous", "cpu": 8.8e10, "com": 0,
                                          "req_time": 5, "mem": 100, "mem_bw": 1})
    reference = 4.2  # the learning platform's mean core speed
    run, gflops, said = run_one_job(tmp_path, capsys, workload)
    assert run * gflops / reference == pytest.approx(5, rel=1e-6)  # req_time at the reference speed
    assert "the original's" in said and "4.2 GFLOP/s" in said
    run, gflops, said = run_one_job(tmp_path, capsys, workload, "--workload-model", "modern")
    assert run == pytest.approx(8.8e10 / (gflops * 1e9), rel=1e-6)  # the file's own work
    assert said.startswith(NOTICE + "modern (the file's own work")


def test_custom_delay_profiles_last_their_requested_time(tmp_path, capsys):
    workload = custom_workload(tmp_path, {"type": "delay", "delay": 8, "req_time": 5, "mem": 100, "mem_bw": 1})
    assert run_one_job(tmp_path, capsys, workload)[0] == pytest.approx(5)
    assert run_one_job(tmp_path, capsys, workload, "--workload-model", "modern")[0] == pytest.approx(8)


def test_the_rewrite_keeps_jobs_and_other_fields():
    workload = read_batsim_workload(DATA / "learning_workload.json")
    rewritten = original_custom_workload(workload, 4.2)
    assert rewritten.jobs == workload.jobs
    profile = rewritten.profiles["Test0"]
    assert profile.cpu == profile.extra["req_ops"] == pytest.approx(2.1e10)
    assert profile.extra["mem"] == 8000 and profile.extra["mem_bw"] == 24


def test_a_custom_profile_without_requested_time_is_a_one_line_error(tmp_path, capsys):
    workload = custom_workload(tmp_path, {"type": "parallel_homogeneous", "cpu": 1e10, "com": 0, "mem": 100,
                                          "mem_bw": 1})
    out = tmp_path / "out"
    assert launch([str(learning_options(tmp_path)), "-cw", str(workload), "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert str(workload) in err and "profiles.one: field 'req_time': missing;" in err
    assert "--workload-model modern" in err
    # The modern model takes the file as it is.
    assert launch([str(learning_options(tmp_path)), "-cw", str(workload), "--workload-model", "modern",
                   "--out", str(out)]) == 0
    with pytest.raises(WorkloadError, match="req_time"):
        original_custom_workload(read_batsim_workload(workload), 4.2)
