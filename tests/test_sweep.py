"""hdeeprm sweep: grid files, cells, resuming, failures, and identical results on every engine."""

from __future__ import annotations

import csv
import filecmp
import io
import json
import shutil
import sys
import time
from pathlib import Path

import pytest

from hdeeprm.analysis.evaluation import evaluate
from hdeeprm.cli.main import main
from hdeeprm.common.errors import ConfigError
from hdeeprm.common.parallel import LocalEngine
from hdeeprm.rl.experiment import ExperimentConfig
from hdeeprm.rl.sweep import GridConfig, run_sweep

EXPERIMENT = {"platform": "quickstart", "workload": "kth-sp2-head.swf.gz", "nb_jobs": 200, "episode_jobs": 30,
              "eval_episodes": 2, "observation": "minimal", "hidden": 16, "reward_scale": 0.001}


def write_grid(folder: Path, **grid) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "small.json").write_text(json.dumps(EXPERIMENT))
    path = folder / "grid.json"
    path.write_text(json.dumps({"experiment": "small.json", **grid}))
    return path


def rows(out: Path) -> list[dict]:
    with open(out / "results.csv") as f:
        return list(csv.DictReader(f))


def same_tree(a: Path, b: Path) -> bool:
    """Every file but the timings identical."""
    compare = filecmp.dircmp(a, b, ignore=["timing.json"])

    def walk(c) -> bool:
        if c.left_only or c.right_only or c.funny_files:
            return False
        _, mismatch, errors = filecmp.cmpfiles(c.left, c.right, c.common_files, shallow=False)
        return not mismatch and not errors and all(walk(sub) for sub in c.subdirs.values())

    return walk(compare)


def test_grid_cells_in_order_with_outputs_and_the_rows_of_evaluate(tmp_path):
    grid = GridConfig.load(write_grid(tmp_path, policies=["first:high_gflops", "smallest:low_power+easy", "random"],
                                      seeds=[0, 5]))
    report = run_sweep(grid, tmp_path / "out", progress=False)
    assert (report.ran, report.skipped, report.failed) == (6, 0, 0)
    table = rows(tmp_path / "out")
    assert [(r["policy"], r["seed"]) for r in table] == [
        ("first:high_gflops", "0"), ("first:high_gflops", "5"), ("smallest:low_power+easy", "0"),
        ("smallest:low_power+easy", "5"), ("random", "0"), ("random", "5")]
    assert all(r["status"] == "done" and r["windows"] == "2" and r["nb_jobs"] == "60" for r in table)
    cell = tmp_path / "out" / "cells" / table[0]["cell"]
    assert {p.name for p in cell.iterdir()} == {"metrics.json", "timing.json", "episode_0", "episode_1"}
    assert (cell / "episode_1" / "out_jobs.csv").is_file()
    metrics = json.loads((cell / "metrics.json").read_text())
    assert metrics["params"]["policy"] == "first:high_gflops" and len(metrics["windows"]) == 2
    # A cell of seed s is the row of `hdeeprm evaluate --seed s` for its policy.
    config = ExperimentConfig.load(tmp_path / "small.json", seed=5)
    by_policy = {r.policy: r for r in evaluate(config, pairs=[("first", "high_gflops")])}
    for name, row in (("first:high_gflops", table[1]), ("random valid actions", table[5])):
        expected = by_policy[name]
        assert float(row["return_mean"]) == expected.mean_return
        assert float(row["mean_waiting_time"]) == expected.mean_waiting_time
        assert float(row["makespan"]) == expected.makespan


def test_results_are_identical_with_one_and_two_workers_and_a_rerun_resumes(tmp_path):
    path = write_grid(tmp_path, policies=["first:high_cores", "shortest:low_power", "low_mem:random"], seeds=[1, 2])
    grid = GridConfig.load(path)
    one = run_sweep(grid, tmp_path / "one", LocalEngine(1), progress=False)
    with LocalEngine(2) as engine:
        two = run_sweep(grid, tmp_path / "two", engine, progress=False)
    assert one.ran == two.ran == 6
    assert (tmp_path / "one" / "results.csv").read_bytes() == (tmp_path / "two" / "results.csv").read_bytes()
    assert same_tree(tmp_path / "one" / "cells", tmp_path / "two" / "cells")
    # Re-running skips finished cells; a removed cell and a half-written one are redone.
    first = rows(tmp_path / "one")[0]["cell"]
    shutil.rmtree(tmp_path / "one" / "cells" / first)
    (tmp_path / "one" / "cells" / f".{first}.abc.tmp").mkdir()
    again = run_sweep(grid, tmp_path / "one", progress=False)
    assert (again.ran, again.skipped) == (1, 5)
    assert not list((tmp_path / "one" / "cells").glob(".*"))
    assert (tmp_path / "one" / "results.csv").read_bytes() == (tmp_path / "two" / "results.csv").read_bytes()
    # A changed parameter is a new cell; the old ones stay where they are.
    path.write_text(json.dumps({"experiment": "small.json", "policies": ["first:high_cores"], "seeds": [1],
                                "overrides": [{"episode_jobs": 20}]}))
    changed = run_sweep(GridConfig.load(path), tmp_path / "one", progress=False)
    assert (changed.ran, changed.skipped) == (1, 0)


def test_a_failing_cell_is_reported_and_the_others_finish(tmp_path, capsys):
    path = write_grid(tmp_path, workloads=["kth-sp2-head.swf.gz", "missing.swf"], policies=["first:first_fit"],
                      seeds=[0])
    assert main(["sweep", str(path), "--out", str(tmp_path / "out"), "--workers", "2"]) == 1
    text = capsys.readouterr().out
    assert "2 cells: 1 ran, 0 done earlier, 1 failed" in text and "missing.swf" in text
    table = rows(tmp_path / "out")
    assert [r["status"] for r in table] == ["done", "failed"]
    assert table[1]["workload"] == "missing.swf" and "missing.swf" in table[1]["error"]
    assert "Traceback" in (tmp_path / "out" / "errors" / f"{table[1]['cell']}.txt").read_text()
    # the next run retries the failed cell only
    assert main(["sweep", str(path), "--out", str(tmp_path / "out")]) == 1
    assert "2 cells: 0 ran, 1 done earlier, 1 failed" in capsys.readouterr().out


def test_agent_checkpoints_are_cells_too(tmp_path):
    import torch

    from hdeeprm.rl.agents import ALGORITHMS, build_agent
    from hdeeprm.rl.agents.common import save_checkpoint

    path = write_grid(tmp_path, policies=["first:first_fit"], checkpoints=["model.pt"], seeds=[0], outputs=False)
    config = ExperimentConfig.load(tmp_path / "small.json")
    env = config.make_env()
    agent = build_agent(ALGORITHMS["ppo"], config.gamma, config.hidden, env.action_space.n,
                        env.observation_space.shape[0], seed=1)
    save_checkpoint(tmp_path / "model.pt", agent, torch.optim.Adam(agent.parameters()))
    report = run_sweep(GridConfig.load(path), tmp_path / "out", progress=False)
    assert report.failed == 0
    table = rows(tmp_path / "out")
    assert table[1]["policy"] == "agent:model.pt" and table[1]["cell"].startswith("agent-model_s0_")
    assert not (tmp_path / "out" / "cells" / table[1]["cell"] / "episode_0").exists()  # outputs: false
    expected = [r for r in evaluate(config, str(tmp_path / "model.pt"), pairs=[]) if r.policy.startswith("agent")][0]
    assert float(table[1]["return_mean"]) == expected.mean_return


def test_progress_bar_counts_done_running_and_failed(tmp_path):
    grid = GridConfig.load(write_grid(tmp_path, policies=["first:first_fit"], seeds=[0],
                                      workloads=["kth-sp2-head.swf.gz", "nothing.swf"]))
    stream = io.StringIO()
    run_sweep(grid, tmp_path / "out", progress=True, stream=stream)
    last = stream.getvalue().strip().split("\r")[-1]
    assert "2/2 (1 done, 0 running, 1 failed)" in last
    assert "running" in stream.getvalue().split("\r")[1]


@pytest.mark.parametrize("grid, message", [
    ({"experiment": "small.json", "policy": ["first:first_fit"]}, "unknown key 'policy'"),
    ({"policies": ["first:first_fit"]}, "experiment: missing"),
    ({"experiment": "small.json", "seeds": [0, "1"]}, "seeds: expected a non-empty list of integers"),
    ({"experiment": "small.json", "seeds": [0, 0]}, "seeds: a seed is listed twice"),
    ({"experiment": "small.json", "policies": ["fastest:first_fit"]}, "policies[0]: unknown job selection key"),
    ({"experiment": "small.json", "policies": "classic"}, "policies: expected a non-empty list of strings"),
    ({"experiment": "small.json", "overrides": [{"episodes_jobs": 3}]}, "overrides[0]: unknown key 'episodes_jobs'"),
    ({"experiment": "small.json", "overrides": [{"seed": 3}]}, "overrides[0].seed: give seeds in 'seeds'"),
    ({"experiment": "small.json", "overrides": [{"objective": "speed"}]}, "overrides[0]: objective 'speed'"),
    ({"experiment": "small.json", "checkpoints": ["none.pt"]}, "checkpoints[0]"),
    ({"experiment": "small.json", "policies": ["first:first_fit", "first:first_fit"]}, "listed twice"),
    ({"experiment": "nothing.json"}, "experiment: nothing.json"),
    ({"experiment": "small.json", "outputs": "yes"}, "outputs: expected true or false"),
])
def test_grid_mistakes_name_the_file_and_the_field(tmp_path, grid, message, capsys):
    (tmp_path / "small.json").write_text(json.dumps(EXPERIMENT))
    path = tmp_path / "grid.json"
    path.write_text(json.dumps(grid))
    with pytest.raises(ConfigError) as error:
        GridConfig.load(path).cells()
    assert str(path) in str(error.value) and message in str(error.value)
    assert main(["sweep", str(path), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1
    assert not (tmp_path / "out").exists()


def test_bundled_quickstart_grid_is_the_36_pairs_times_4_seeds():
    grid = GridConfig.load(Path(__file__).parents[1] / "hdeeprm" / "data" / "grids" / "quickstart-pairs.json")
    cells = grid.cells()
    assert len(cells) == 144 and len({c.name for c in cells}) == 144
    assert cells[0].params["workload"] == "hdeeprm:data/traces/kth-sp2-1996-2.1-cln.swf.gz"
    assert cells[0].policy == "random:random" and [c.params["seed"] for c in cells[:4]] == [0, 1, 2, 3]


# ---------------------------------------------------------------------- Ray


@pytest.mark.slow
def test_ray_engine_gives_the_local_results(tmp_path):
    """A small grid and a short batched training on a local Ray instance with 2 CPUs: the
    same results as the local engine."""
    pytest.importorskip("ray")
    from hdeeprm.common.parallel import RayEngine
    from hdeeprm.rl.train import train

    grid = GridConfig.load(write_grid(tmp_path, policies=["first:high_cores", "smallest:random"], seeds=[0, 1]))
    run_sweep(grid, tmp_path / "local", progress=False)
    config = ExperimentConfig.load(tmp_path / "small.json", episodes=4, rollout_batch=2, algorithm="ppo")
    local = train(config, tmp_path / "train-local", workers=1, progress=False)
    with RayEngine(2) as engine:
        assert engine.workers == 2
        report = run_sweep(grid, tmp_path / "ray", engine, progress=False)
    assert report.ran == 4
    assert (tmp_path / "local" / "results.csv").read_bytes() == (tmp_path / "ray" / "results.csv").read_bytes()
    assert same_tree(tmp_path / "local" / "cells", tmp_path / "ray" / "cells")
    ray = train(config, tmp_path / "train-ray", workers=2, engine="ray", progress=False)
    assert ray["returns"] == local["returns"]
    assert (tmp_path / "train-local" / "losses.log").read_text() == (tmp_path / "train-ray" / "losses.log").read_text()


# ---------------------------------------------------------------------- backends


def _engine_batsim(path: Path) -> str:
    """A stand-in for the batsim executable that answers from an embedded engine."""
    import stat
    import sys

    path.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m hdeeprm.backends.batsim.replay_server --engine -- "$@"\n')
    path.chmod(path.stat().st_mode | stat.S_IEXEC)
    return str(path)


def test_cells_run_on_the_batsim_backend(tmp_path, capsys):
    """The same cells on a Batsim stand-in: the schedules of the embedded run (every metric
    but the return, whose work-done terms come from the mirror engine), other cell names."""
    pytest.importorskip("zmq")
    path = write_grid(tmp_path, policies=["shortest:high_gflops+easy"], seeds=[0])
    embedded = run_sweep(GridConfig.load(path), tmp_path / "embedded", progress=False)
    assert embedded.failed == 0 and "backend" not in GridConfig.load(path).cells()[0].params
    fake = _engine_batsim(tmp_path / "batsim")
    assert main(["sweep", str(path), "--out", str(tmp_path / "batsim-out"), "--backend", "batsim",
                 "--batsim", fake, "--timeout", "20"]) == 0
    assert "1 cells: 1 ran" in capsys.readouterr().out
    [a], [b] = rows(tmp_path / "embedded"), rows(tmp_path / "batsim-out")
    assert a["cell"] != b["cell"] and b["status"] == "done"
    for key in ("makespan", "mean_waiting_time", "mean_bounded_slowdown", "nb_finished"):
        assert float(a[key]) == pytest.approx(float(b[key]), rel=1e-9), key
    assert float(a["return_mean"]) == pytest.approx(float(b["return_mean"]), rel=1e-6)
    metrics = json.loads((tmp_path / "batsim-out" / "cells" / b["cell"] / "metrics.json").read_text())
    assert metrics["params"]["backend"] == "batsim"
    assert (tmp_path / "batsim-out" / "cells" / b["cell"] / "episode_1" / "out_jobs.csv").is_file()
    assert json.loads((tmp_path / "batsim-out" / "sweep.json").read_text())["backend"] == "batsim"
    # the grid file's backend, with the stand-in named relative to the grid's folder
    path.write_text(json.dumps({"experiment": "small.json", "policies": ["shortest:high_gflops+easy"],
                                "seeds": [0], "backend": "batsim", "batsim": "./batsim", "timeout": 20}))
    again = run_sweep(GridConfig.load(path), tmp_path / "batsim-out", progress=False)
    assert (again.ran, again.skipped) == (0, 1)


def test_a_links_network_is_its_own_cell_with_batsims_energy_accounting(tmp_path):
    path = write_grid(tmp_path, policies=["first:first_fit"], seeds=[0], networks=["zero-latency", "links"],
                      outputs=False)
    run_sweep(GridConfig.load(path), tmp_path / "out", progress=False)
    zero, links = rows(tmp_path / "out")
    assert "network" not in GridConfig.load(path).cells()[0].params
    assert zero["makespan"] == links["makespan"] and zero["consumed_joules"] != links["consumed_joules"]


@pytest.mark.parametrize("grid, message", [
    ({"backend": "simgrid"}, "backend: expected one of embedded, batsim"),
    ({"timeout": 0}, "timeout: expected a number of seconds > 0"),
    ({"networks": ["links", "links"]}, "networks: a network is listed twice"),
    ({"networks": ["links"], "platforms": ["p.xml"]}, "'links' needs HDeepRM platform JSONs"),
    ({"options": ["opts.json"]}, "options files are cross-validated with 'hdeeprm crossval --grid'"),
])
def test_backend_mistakes_name_the_file_and_the_field(tmp_path, grid, message, capsys):
    path = write_grid(tmp_path, **grid)
    assert main(["sweep", str(path), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert str(path) in err and message in err and err.count("\n") == 1


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="signals and /proc as on Linux")
def test_sigterm_is_as_clean_as_ctrl_c_and_leaves_no_worker(tmp_path):
    # Issue 17: SIGTERM to `hdeeprm sweep --workers 2` wrote no results.csv and left the
    # workers running.
    import signal
    import subprocess

    grid = write_grid(tmp_path, policies=["first:first_fit", "shortest:low_power", "smallest:random",
                                          "low_mem:high_cores", "random"], seeds=list(range(8)))
    out = tmp_path / "out"
    process = subprocess.Popen([sys.executable, "-m", "hdeeprm", "sweep", str(grid), "--out", str(out),
                                "--workers", "2"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    def children() -> set[int]:
        found = set()
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                fields = stat.read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == process.pid:
                found.add(int(stat.parent.name))
        return found

    deadline = time.monotonic() + 120
    while not (out / "cells").is_dir() or not any((out / "cells").iterdir()):
        assert process.poll() is None and time.monotonic() < deadline, process.communicate()
        time.sleep(0.1)
    workers = children()
    assert workers  # the pool is up and a cell is done
    process.send_signal(signal.SIGTERM)
    _, err = process.communicate(timeout=60)
    assert process.returncode == 143 and "terminated" in err
    assert (out / "results.csv").is_file()
    time.sleep(0.5)
    assert not [pid for pid in workers if Path(f"/proc/{pid}").exists()
                and "Z" not in Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]]
