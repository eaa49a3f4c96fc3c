"""The original HDeepRM's console scripts hdeeprm-visual, hdeeprm-metrics, hdeeprm-jobstat and
hdeeprm-clean, kept as aliases of hdeeprm plot, compare, jobstat and clean (hdeeprm/cli/original.py)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tomllib
from importlib import import_module
from pathlib import Path

import pytest

from hdeeprm.analysis.plots import KINDS
from hdeeprm.cli import original
from hdeeprm.cli.main import main as hdeeprm_main

ROOT = Path(__file__).parent.parent
WORKLOAD = ROOT / "hdeeprm" / "data" / "learning_workload.json"
SCRIPTS = {"hdeeprm-visual": original.visual, "hdeeprm-metrics": original.metrics,
           "hdeeprm-jobstat": original.jobstat, "hdeeprm-clean": original.clean}
ALIASES = {"hdeeprm-visual": "hdeeprm plot", "hdeeprm-metrics": "hdeeprm compare",
           "hdeeprm-jobstat": "hdeeprm jobstat", "hdeeprm-clean": "hdeeprm clean"}
#: The original's hdeeprm-visual choices (hdeeprm/cmd.py of HDeepRM 0.3.1).
ORIGINAL_NAMES = ("queue_size", "utilization", "lifecycle", "gantt", "gantt_no_label", "core_bubbles",
                  "mem_bubbles", "mem_bw_overutilization", "losses", "rewards", "action_preferences")


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> Path:
    """Two small runs of the learning platform, as hdeeprm simulate writes them."""
    root = tmp_path_factory.mktemp("runs")
    for policy in ("first:high_mem_bw", "first:high_gflops"):
        assert hdeeprm_main(["simulate", "--platform", "learning", "--workload", str(WORKLOAD),
                             "--policy", policy, "--out", str(root / policy.split(":")[1])]) == 0
    return root


@pytest.fixture
def run_dir(runs, tmp_path, monkeypatch, capsys) -> Path:
    """A copy of a run, as the current folder, with the original's options.json and a user file."""
    run = tmp_path / "experiment"
    shutil.copytree(runs / "high_mem_bw", run)
    (run / "options.json").write_text(json.dumps({"seed": 0, "pybatsim": {"agent": {"type": "CLASSIC"}}}))
    (run / "notes.txt").write_text("mine\n")
    monkeypatch.chdir(run)
    capsys.readouterr()
    return run


def one_line_error(capsys, prog: str) -> str:
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(f"{prog}: error: "), err
    return err


def is_svg(path: Path) -> bool:
    head = path.read_bytes()[:400]
    return head.startswith(b"<?xml") and b"<svg" in head


# ---------------------------------------------------------------------------- the scripts


def test_scripts_are_declared_and_resolve_to_the_aliases():
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    for name, function in SCRIPTS.items():
        module, attr = scripts[name].split(":")
        assert getattr(import_module(module), attr) is function, name


@pytest.mark.parametrize("name", sorted(SCRIPTS))
def test_help_says_what_each_is_an_alias_of(name, capsys):
    with pytest.raises(SystemExit) as info:
        SCRIPTS[name](["--help"])
    assert info.value.code == 0
    out = capsys.readouterr().out
    line = next(x for x in out.splitlines()[1:] if x.strip())
    assert line.startswith(f"Alias of `{ALIASES[name]}") and name in line


@pytest.mark.parametrize("name, argv", [
    ("hdeeprm-visual", []), ("hdeeprm-metrics", ["only_one.csv"]), ("hdeeprm-jobstat", ["w.json", "size"]),
    ("hdeeprm-jobstat", ["w.json", "cores", "max"]), ("hdeeprm-jobstat", ["w.json", "size", "p50"]),
    ("hdeeprm-clean", ["--hard"]),
])
def test_argument_mistakes_are_one_line_with_status_2(name, argv, capsys):
    with pytest.raises(SystemExit) as info:
        SCRIPTS[name](argv)
    assert info.value.code == 2
    one_line_error(capsys, name)


@pytest.mark.skipif(shutil.which("hdeeprm-jobstat", path=str(Path(sys.executable).parent)) is None,
                    reason="console scripts not installed (pip install -e .)")
def test_installed_console_script_runs(capsys):
    exe = shutil.which("hdeeprm-jobstat", path=str(Path(sys.executable).parent))
    done = subprocess.run([exe, str(WORKLOAD), "size", "max"], capture_output=True, text=True, timeout=120, check=False)
    assert (done.returncode, done.stdout, done.stderr) == (0, "1\n", "")
    done = subprocess.run([exe, str(WORKLOAD), "size", "p50"], capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 2 and done.stderr.count("\n") == 1 and "Traceback" not in done.stderr


# ---------------------------------------------------------------------------- hdeeprm-visual


def test_every_original_visualization_maps_to_a_plot_kind():
    assert tuple(original.ORIGINAL_VISUALIZATIONS) == ORIGINAL_NAMES
    for name in ORIGINAL_NAMES:
        assert original.plot_kind(name) in KINDS, name
    assert original.plot_kind("power") == "power"  # today's other kinds are taken too


def test_visual_unknown_name_names_the_nearest(run_dir, capsys):
    assert original.visual(["gant"]) == 2
    err = one_line_error(capsys, "hdeeprm-visual")
    assert "'gant'" in err and "nearest is 'gantt'" in err


def test_visual_original_name_without_equivalent_names_the_nearest(monkeypatch, run_dir, capsys):
    monkeypatch.setitem(original.ORIGINAL_VISUALIZATIONS, "mem_bubbles", None)
    assert original.visual(["mem_bubbles"]) == 2
    err = one_line_error(capsys, "hdeeprm-visual")
    assert "no equivalent" in err and "nearest is" in err


def test_visual_draws_the_current_folder_without_a_window(run_dir, capsys):
    pytest.importorskip("matplotlib")
    assert original.visual(["gantt"]) == 0
    out = capsys.readouterr().out
    figure = Path("figures") / "gantt.png"
    assert str(figure) in out
    assert (run_dir / figure).read_bytes().startswith(b"\x89PNG")


@pytest.mark.parametrize("name, save", [("core_bubbles", "bubbles.svg"), ("queue_size", "queue")])
def test_visual_save_writes_svg_whatever_the_name(run_dir, capsys, name, save):
    pytest.importorskip("matplotlib")
    assert original.visual([name, "-s", save]) == 0
    assert save in capsys.readouterr().out
    assert is_svg(run_dir / save)
    assert not (run_dir / "figures").exists()


def test_visual_save_refuses_another_format_s_extension(run_dir, capsys):
    assert original.visual(["gantt", "-s", "gantt.png"]) == 2
    assert "SVG" in one_line_error(capsys, "hdeeprm-visual")
    assert not (run_dir / "gantt.png").exists()


def test_visual_run_option_and_missing_outputs(run_dir, runs, tmp_path, monkeypatch, capsys):
    pytest.importorskip("matplotlib")
    monkeypatch.chdir(tmp_path)
    assert original.visual(["utilization", "--run", str(run_dir), "-s", "u.svg"]) == 0
    assert is_svg(tmp_path / "u.svg")
    capsys.readouterr()
    assert original.visual(["rewards", "--run", str(run_dir)]) == 2  # a simulate run has no rewards.log
    assert "rewards.log" in one_line_error(capsys, "hdeeprm-visual")
    assert original.visual(["gantt"]) == 2  # tmp_path holds no run
    one_line_error(capsys, "hdeeprm-visual")


# ---------------------------------------------------------------------------- hdeeprm-metrics


def test_metrics_compares_two_out_schedule_files(runs, tmp_path, monkeypatch, capsys):
    pytest.importorskip("matplotlib")
    monkeypatch.chdir(tmp_path)
    a, b = runs / "high_mem_bw" / "out_schedule.csv", runs / "high_gflops" / "out_schedule.csv"
    assert original.metrics([str(a), str(b)]) == 0
    out = capsys.readouterr().out
    header = next(line for line in out.splitlines() if line.startswith("metric"))
    assert header.split()[-2:] == ["A1", "A2"]  # the original's default names
    assert "Makespan" in out and (tmp_path / "compare.png").read_bytes().startswith(b"\x89PNG")
    assert original.metrics([str(a), str(b), "-n1", "bandwidth", "--name2", "gflops", "-s", "m.svg"]) == 0
    out = capsys.readouterr().out
    assert next(line for line in out.splitlines() if line.startswith("metric")).split()[-2:] == \
        ["bandwidth", "gflops"]
    assert is_svg(tmp_path / "m.svg")


def test_metrics_mistakes_are_one_line(runs, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert original.metrics([str(runs / "high_mem_bw" / "out_schedule.csv"), "nope.csv"]) == 2
    assert "nope.csv" in one_line_error(capsys, "hdeeprm-metrics")
    assert original.metrics(["a.csv", "b.csv", "-s", "m.pdf"]) == 2
    assert "SVG" in one_line_error(capsys, "hdeeprm-metrics")


# ---------------------------------------------------------------------------- hdeeprm-jobstat


def test_jobstat_reads_the_original_workload_and_prints_what_hdeeprm_jobstat_prints(tmp_path, capsys):
    workload = tmp_path / "workload.json"  # the original's layout: fields in the profiles
    workload.write_text(json.dumps({
        "nb_res": 4,
        "jobs": [{"id": 0, "subtime": 0, "res": 1, "profile": "a"}, {"id": 1, "subtime": 3, "res": 4, "profile": "b"},
                 {"id": 2, "subtime": 5, "res": 2, "profile": "b"}],
        "profiles": {"a": {"type": "parallel_homogeneous", "com": 0, "cpu": 1e9, "req_time": 5, "req_ops": 1e9,
                           "mem": 8000, "mem_bw": 24},
                     "b": {"type": "parallel_homogeneous", "com": 0, "cpu": 2e9, "req_time": 20, "req_ops": 2e9,
                           "mem": 1000, "mem_bw": 4}}}))
    expected = {("size", "max"): "4", ("size", "mean"): "2.333333333", ("req_time", "median"): "20",
                ("mem", "min"): "1000", ("mem_bw", "p95"): "22", ("mem", "p99"): "7860"}
    for (field, stat), value in expected.items():
        assert original.jobstat([str(workload), field, stat]) == 0
        alias = capsys.readouterr().out
        assert hdeeprm_main(["jobstat", str(workload), field, stat]) == 0
        assert alias == capsys.readouterr().out == f"{value}\n", (field, stat)
    assert original.jobstat([str(tmp_path / "missing.json"), "size", "max"]) == 2
    assert "missing.json" in one_line_error(capsys, "hdeeprm-jobstat")


# ---------------------------------------------------------------------------- hdeeprm-clean


def test_clean_removes_only_what_hdeeprm_wrote_in_the_current_folder(run_dir, capsys):
    originals = {"platform.xml": "<platform/>\n", "workload.json": '{"jobs": []}\n', "res_hierarchy.pkl": "x",
                 "job_limits.pkl": "y", "agent.py": "class A: pass\n"}
    for name, text in originals.items():
        (run_dir / name).write_text(text)
    ours = {"out_jobs.csv", "out_schedule.csv", "out_consumed_energy.csv", "out_pstate_changes.csv",
            "out_machine_states.csv", "overutilization.json", "timing.json"}
    assert ours <= {p.name for p in run_dir.iterdir()}

    assert original.clean(["--soft", "--dry-run"]) == 0
    assert "would remove 7 files" in capsys.readouterr().out
    assert ours <= {p.name for p in run_dir.iterdir()}

    assert original.clean(["-s"]) == 0
    capsys.readouterr()
    left = {p.name for p in run_dir.iterdir()}
    assert not ours & left
    assert {"run_config.json", "manifest.json"} <= left  # --soft keeps configuration

    assert original.clean([]) == 0
    capsys.readouterr()
    assert {p.name for p in run_dir.iterdir()} == {"options.json", "notes.txt", *originals}
    assert original.clean([]) == 2  # nothing of ours left: refused, as hdeeprm clean refuses it
    one_line_error(capsys, "hdeeprm-clean")


def test_clean_help_says_it_stays_safe(capsys):
    with pytest.raises(SystemExit):
        original.clean(["--help"])
    out = " ".join(capsys.readouterr().out.split())
    assert "only the files hdeeprm wrote" in out and "options.json" in out
