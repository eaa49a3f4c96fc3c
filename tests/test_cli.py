"""The command line as a user meets it: the README's example, convert, errors, invariants."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from hdeeprm.cli.main import main
from hdeeprm.inputs.platform import bundled_platform, load_platform
from hdeeprm.inputs.workload import load_workload, read_batsim_workload
from hdeeprm.simulation.engine import Engine
from hdeeprm.simulation.policies import PolicyConfig, QueueScheduler

TRACES = Path(__file__).parent / "data" / "traces"


def test_readme_example_prints_headline_metrics(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["simulate", "--platform", "gaia", "--workload", str(TRACES / "gaia-2014-head.swf.gz"),
                 "--policy", "first:first_fit", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    for label in ("makespan", "mean waiting time", "mean slowdown", "mean bounded slowdown",
                  "utilization", "energy"):
        assert label in text
    config = json.loads((out / "run_config.json").read_text())
    assert config["policy"] == "first:first_fit" and config["metrics"]["nb_jobs"] == 2000
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["argv"][:2] == ["hdeeprm", "simulate"] and "--out" in manifest["argv"]
    assert manifest["seeds"] == {"seed": 0} and manifest["inputs"]["workload"]["sha256"]
    assert manifest["inputs"]["platform"]["path"].endswith("gaia.json")
    last = text.strip().splitlines()[-1]  # where the time went
    assert last.startswith("  time: ") and "s reading the inputs" in last and "s simulating" in last
    assert "s writing the outputs" in last and "s in all" in last
    assert 0 < config["metrics"]["utilization"] <= 1


def _record_runs(monkeypatch) -> list:
    """(jobs, fast) of each run_policy call the CLI makes."""
    import hdeeprm.simulation.policies as policies

    runs, real = [], policies.run_policy

    def recorded(engine, *args, **kwargs):
        runs.append((engine.jobs.nb_jobs, kwargs.get("fast")))
        return real(engine, *args, **kwargs)

    monkeypatch.setattr(policies, "run_policy", recorded)
    return runs


def test_a_first_large_run_says_it_compiles_and_keeps_it_out_of_the_simulated_time(capsys, monkeypatch):
    import hdeeprm.cli.simulate as simulate
    import hdeeprm.simulation.fastsim as fastsim

    assert fastsim.compiled_on_disk()  # the suite has compiled and cached the kernels by now
    monkeypatch.setattr(fastsim, "compiled_on_disk", lambda parts=(): False)  # as on a fresh machine
    monkeypatch.setattr(simulate, "REFERENCE_WHEN_COLD_MAX_JOBS", 100)  # 200 jobs: a large run here
    runs = _record_runs(monkeypatch)
    assert main(["simulate", "--platform", "gaia", "--workload", str(TRACES / "gaia-2014-head.swf.gz"),
                 "--nb-jobs", "200"]) == 0
    captured = capsys.readouterr()
    assert "first run on this machine: compiling the simulation kernels" in captured.err
    assert "compiled in" in captured.err and "simulated in" in captured.out
    assert runs == [(50, None), (200, None)]  # a small run compiles; the timed run is the user's, on the fast path


def test_a_first_small_run_takes_the_reference_engine_with_the_same_outputs(tmp_path, capsys, monkeypatch):
    """On a fresh machine the bundled example runs in seconds rather than after 1-2 minutes of
    compilation, and writes what the compiled path writes."""
    import hdeeprm.simulation.fastsim as fastsim

    command = ["simulate", "--platform", "gaia", "--workload", str(TRACES / "gaia-2014-head.swf.gz"),
               "--nb-jobs", "300", "--backfill", "easy", "--policy", "smallest:high_mem_bw"]
    assert main(command + ["--out", str(tmp_path / "warm")]) == 0
    monkeypatch.setattr(fastsim, "compiled_on_disk", lambda parts=(): False)  # as on a fresh machine
    runs = _record_runs(monkeypatch)
    capsys.readouterr()
    assert main(command + ["--out", str(tmp_path / "cold")]) == 0
    captured = capsys.readouterr()
    assert "the compiled fast path is not built on this machine yet" in captured.err
    assert "hdeeprm compile" in captured.err and "compiling" not in captured.err
    assert runs == [(50, False), (300, False)]
    written = sorted(p.name for p in (tmp_path / "warm").iterdir())
    assert written == sorted(p.name for p in (tmp_path / "cold").iterdir())
    for name in written:
        if name not in ("timing.json", "run_config.json", "manifest.json"):
            assert (tmp_path / "warm" / name).read_bytes() == (tmp_path / "cold" / name).read_bytes(), name


def test_a_first_train_says_it_compiles_and_where_the_time_went(tmp_path, capsys, monkeypatch):
    import hdeeprm.simulation.fastsim as fastsim

    monkeypatch.setattr(fastsim, "compiled_on_disk", lambda parts=(): False)  # as on a fresh machine
    experiment = tmp_path / "exp.json"
    experiment.write_text(json.dumps({"platform": "quickstart", "workload": "kth-sp2-head.swf.gz", "nb_jobs": 200,
                                      "episode_jobs": 20, "observation": "minimal", "hidden": 8, "episodes": 1}))
    assert main(["train", str(experiment), "--out", str(tmp_path / "run"), "--no-evaluate"]) == 0
    captured = capsys.readouterr()
    assert "first run on this machine: compiling the simulation kernels" in captured.err
    last = captured.out.strip().splitlines()[-1]
    assert last.startswith("time: ") and "s compiling the kernels (once per machine)" in last and "s training" in last


def test_a_first_train_without_a_compiled_environment_compiles_the_evaluation_beside_it(tmp_path, capsys,
                                                                                     monkeypatch):
    """The job-window environment runs in Python: its training needs no compilation, and the
    evaluation's kernels compile in a child process meanwhile."""
    import hdeeprm.simulation.fastsim as fastsim

    monkeypatch.setattr(fastsim, "compiled_on_disk", lambda parts=(): False)  # as on a fresh machine
    experiment = tmp_path / "exp.json"
    experiment.write_text(json.dumps({
        "platform": "quickstart", "workload": "kth-sp2-head.swf.gz", "nb_jobs": 300, "episode_jobs": 20,
        "split": {"train": [0, 0.7], "test": [0.7, 1]}, "eval_episodes": 1, "action_space": "job_window",
        "window_jobs": 4, "hidden": 8, "episodes": 1}))
    assert main(["train", str(experiment), "--out", str(tmp_path / "run")]) == 0
    captured = capsys.readouterr()
    assert "compiling the simulation kernels, once (1 to 2 minutes; cached for later runs), beside the training" \
        in captured.err
    assert "compiled in" in captured.err
    last = captured.out.strip().splitlines()[-1]
    assert last.startswith("time: ") and "s compiling the kernels beside the training" in last
    assert (tmp_path / "run" / "evaluation.csv").is_file()
    manifest = json.loads((tmp_path / "run" / "manifest.json").read_text())
    assert manifest["argv"][:2] == ["hdeeprm", "train"] and manifest["inputs"]["experiment"]["sha256"]


def test_easy_backfilling_waits_less_than_fcfs(tmp_path, capsys):
    waits = {}
    for extra in ([], ["--backfill", "easy"]):
        out = tmp_path / ("easy" if extra else "fcfs")
        assert main(["simulate", "--platform", "das2", "--workload", str(TRACES / "kth-sp2-head.swf.gz"),
                     "--out", str(out)] + extra) == 0
        waits[bool(extra)] = json.loads((out / "run_config.json").read_text())["metrics"]["mean_waiting_time"]
    assert waits[True] < waits[False]


def test_convert_writes_a_workload_that_simulates_identically(tmp_path, capsys):
    target = tmp_path / "kth.json"
    assert main(["convert", str(TRACES / "kth-sp2-head.swf.gz"), "--platform", "das2", "--nb-jobs", "200",
                 "--seed", "3", "--out", str(target)]) == 0
    workload = read_batsim_workload(target)
    assert len(workload.jobs) == 200
    runs = []
    for source in (str(target), str(TRACES / "kth-sp2-head.swf.gz")):
        out = tmp_path / f"run{len(runs)}"
        assert main(["simulate", "--platform", "das2", "--workload", source, "--nb-jobs", "200",
                     "--seed", "3", "--out", str(out)]) == 0
        runs.append((out / "out_jobs.csv").read_text())
    assert runs[0] == runs[1]


@pytest.mark.parametrize("args, expected", [
    (["simulate", "--platform", "missing.json", "--workload", "x.swf"], "missing.json"),
    (["simulate", "--platform", "gaia", "--workload", "missing.swf"], "missing.swf"),
    (["simulate", "--platform", "gaia", "--workload", "w.swf", "--policy", "first"], "JOBKEY:COREKEY"),
    (["simulate", "--platform", "gaia", "--workload", "w.swf", "--policy", "fastest:first_fit"], "unknown job selection key"),
    (["replay", "no-such-folder", "--out", "o"], "no-such-folder"),
])
def test_user_mistakes_give_one_line_and_status_2(args, expected, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "w.swf").write_text("1 0 0 10 1 -1 -1 1 20 -1 1 1 1 1 1 1 -1 -1\n")
    assert main(args) == 2
    err = capsys.readouterr().err
    assert expected in err and err.count("\n") == 1 and "Traceback" not in err


def test_bad_swf_line_is_reported_with_file_and_line(tmp_path, capsys):
    trace = tmp_path / "bad.swf"
    trace.write_text("; header\n1 0 0 10 1 -1 -1 1 20 -1 1 1 1 1 1 1 -1 -1\n2 5 0 ten 1 -1 -1 1 20 -1 1 1 1 1 1 1 -1 -1\n")
    assert main(["simulate", "--platform", "das2", "--workload", str(trace)]) == 2
    err = capsys.readouterr().err
    assert "bad.swf" in err and "line 3" in err


@pytest.mark.parametrize("backfill", [None, "easy"])
@pytest.mark.parametrize("platform_name", ["das2", "gaia"])
def test_invariants_hold_at_every_decision_point(platform_name, backfill):
    platform = load_platform(bundled_platform(platform_name))
    workload = load_workload(TRACES / "kth-sp2-head.swf.gz", nb_jobs=400, max_res=platform.nb_machines,
                             reference_speed_gflops=platform.hierarchy.reference_speed_gflops,
                             rng=np.random.default_rng(1))
    engine = Engine(platform, workload)
    scheduler = QueueScheduler(engine, PolicyConfig(backfill=backfill))
    scheduler.on_begin()
    while (point := engine.next_decision_point()) is not None:
        scheduler.on_decision_point(point)
        engine.check_invariants()
        # HDeepRM's model: no node ever gives more memory than it has, counts stay exact.
        scheduler.resources.check_invariants()
    result = engine.result()
    started = np.isfinite(result.start)
    assert (result.start[started] >= workload.compile().subtime[started]).all()
    assert engine.nb_unfinished == 0


@pytest.mark.parametrize("policy", ["shortest:high_mem_bw", "random:random", "low_mem:high_cores"])
def test_any_pair_runs_on_an_xml_platform_with_a_hierarchy(policy, tmp_path, capsys):
    scenario = Path(__file__).parent / "data" / "batsim-reference" / "A6-hdeeprm-kth"
    out = tmp_path / "run"
    assert main(["simulate", "--platform", str(scenario / "platform.xml"),
                 "--hierarchy", str(scenario / "hierarchy.json"),
                 "--workload", str(scenario / "workload.json"), "--policy", policy,
                 "--backfill", "easy", "--out", str(out)]) == 0
    assert f"policy {policy} + easy backfilling" in capsys.readouterr().out
    rows = (out / "out_jobs.csv").read_text().splitlines()
    assert len(rows) - 1 == len(read_batsim_workload(scenario / "workload.json").jobs)
    assert json.loads((out / "overutilization.json").read_text())["format"] == "hdeeprm-overutilization/1"
    assert json.loads((out / "run_config.json").read_text())["policy"] == policy


def test_compile_compiles_what_the_cache_lacks_and_refuses_unknown_parts(capsys, monkeypatch):
    import hdeeprm.simulation.fastsim as fastsim

    assert main(["compile"]) == 0  # compiles what earlier tests did not use (e.g. the shutdown run)
    capsys.readouterr()
    assert main(["compile"]) == 0
    out = capsys.readouterr().out
    assert "classic: already compiled" in out and "env: already compiled" in out
    monkeypatch.setattr(fastsim, "compiled_on_disk", lambda parts=(): False)  # as on a fresh machine
    assert main(["compile", "classic"]) == 0
    out = capsys.readouterr().out
    assert "compiling classic" in out and "compiled classic in" in out
    assert main(["compile", "gpu"]) == 2
    assert "part 'gpu': expected classic or env" in capsys.readouterr().err


@pytest.mark.parametrize("choice, expected", [("all", ["episode_0", "episode_1", "episode_2"]),
                                              ("last", ["episode_2"]), ("none", [])])
def test_train_writes_the_episode_outputs_asked_for(tmp_path, capsys, choice, expected):
    experiment = tmp_path / "exp.json"
    experiment.write_text(json.dumps({"platform": "quickstart", "workload": "kth-sp2-head.swf.gz", "nb_jobs": 200,
                                      "episode_jobs": 20, "observation": "minimal", "hidden": 8, "episodes": 3}))
    out = tmp_path / "run"
    assert main(["train", str(experiment), "--out", str(out), "--no-evaluate", "--episode-outputs", choice]) == 0
    assert sorted(p.name for p in out.iterdir() if p.name.startswith("episode_")) == expected
    assert len((out / "rewards.log").read_text().splitlines()) == 3  # the logs are the same
    assert json.loads((out / "experiment.json").read_text())["episode_outputs"] == choice


def test_episode_outputs_must_be_one_of_the_choices(tmp_path, capsys):
    experiment = tmp_path / "exp.json"
    experiment.write_text(json.dumps({"episode_outputs": "some"}))
    assert main(["train", str(experiment), "--out", str(tmp_path / "run")]) == 2
    assert "episode_outputs 'some': expected one of all, last, none" in capsys.readouterr().err


def test_commands_take_a_bundled_trace_by_name(tmp_path, monkeypatch, capsys):
    """--workload (simulate, crossval), convert's TRACE and describe's WORKLOAD take a bundled
    trace's file name as experiment files and HeteroEnv do; a file of that name here wins."""
    from hdeeprm.cli.main import main

    monkeypatch.chdir(tmp_path)
    assert main(["simulate", "--platform", "quickstart", "--workload", "kth-sp2-head.swf.gz", "--policy",
                 "first:first_fit", "--nb-jobs", "50", "--out", "sim"]) == 0
    assert len((tmp_path / "sim" / "out_jobs.csv").read_text().splitlines()) == 51
    assert main(["convert", "kth-sp2-head.swf.gz", "--platform", "quickstart", "--nb-jobs", "20",
                 "--out", "w.json"]) == 0
    assert main(["describe", "kth-sp2-head.swf.gz"]) == 0
    capsys.readouterr()
    (tmp_path / "kth-sp2-head.swf.gz").write_text("1 0 -1 5 1 -1 -1 1 5 -1 1 -1 -1 -1 -1 -1 -1 -1\n")
    assert main(["describe", "kth-sp2-head.swf.gz"]) == 0
    assert "kth-sp2-head.swf.gz: 1 jobs" in capsys.readouterr().out
