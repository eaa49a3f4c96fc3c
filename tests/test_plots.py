"""Figures of real (small) runs, checked for what they show, not only that a file appears.

The runs are made once per session: a classic policy with queueing, memory shortages and
bandwidth over-subscription (``hdeeprm simulate``), a short training run with a custom
action set, and real Batsim's outputs of a recorded flat-platform run with p-state changes.
Expected values are recomputed here from the output files by brute force, independently of
``hdeeprm.analysis.plots``.
"""

from __future__ import annotations

import csv
import functools
import json
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from hdeeprm.analysis.plots import KINDS, output_format, render, save_figure
from hdeeprm.analysis.plots import data as d
from hdeeprm.analysis.plots import figures as f
from hdeeprm.cli.main import main
from hdeeprm.common.errors import HDeepRMError
from hdeeprm.simulation.intervals import parse_intervals

DATA = Path(__file__).parent / "data"
TRACES = DATA / "traces"
EXPERIMENT = {
    "platform": "quickstart", "workload": str(TRACES / "kth-sp2-head.swf.gz"), "nb_jobs": 300,
    "episode_jobs": 40, "episodes": 4, "eval_episodes": 1, "seed": 1, "algorithm": "reinforce",
    "actions": {"selection": [{"first": ["high_gflops", "high_mem"]}, {"shortest": ["low_power"]}], "void": True},
}


@dataclass(frozen=True)
class Runs:
    workload: Path  # Batsim JSON, every third job asking for 7 GB per core
    sim: Path  # first:high_mem on quickstart
    sim_easy: Path  # the same with EASY backfilling
    train: Path  # 4 REINFORCE episodes and an evaluation
    batsim: Path  # a copy of real Batsim's outputs (flat XML platform, DVFS)


@functools.cache
def make_runs(base: Path) -> Runs:
    """Made once even when several test modules ask (they share the session's base folder)."""
    base = base / "p7-runs"
    base.mkdir()
    converted = base / "kth.json"
    assert main(["convert", str(TRACES / "kth-sp2-head.swf.gz"), "--platform", "quickstart",
                 "--nb-jobs", "150", "--out", str(converted)]) == 0
    data = json.loads(converted.read_text())
    for i, profile in enumerate(data["profiles"].values()):
        if i % 3 == 0:
            profile["mem"] = 7000  # MB per core: nodes of 48-64 GB run out of memory first
    workload = base / "kth-mem.json"
    workload.write_text(json.dumps(data))
    sim, easy = base / "sim", base / "sim-easy"
    for out, extra in ((sim, []), (easy, ["--backfill", "easy"])):
        assert main(["simulate", "--platform", "quickstart", "--workload", str(workload),
                     "--policy", "first:high_mem", "--out", str(out)] + extra) == 0

    from hdeeprm.analysis.evaluation import evaluate
    from hdeeprm.rl.experiment import ExperimentConfig
    from hdeeprm.rl.train import train

    (base / "exp.json").write_text(json.dumps(EXPERIMENT))
    config = ExperimentConfig.load(base / "exp.json")
    summary = train(config, base / "train", progress=False)
    evaluate(config, summary["checkpoint"], out_dir=base / "train", pairs=[("first", "high_gflops")])
    batsim = base / "batsim"
    shutil.copytree(DATA / "batsim-reference" / "A8-dvfs-script", batsim)
    return Runs(workload, sim, easy, base / "train", batsim)


@pytest.fixture(scope="session")
def runs(tmp_path_factory) -> Runs:
    return make_runs(tmp_path_factory.getbasetemp())


# ---------------------------------------------------------------------------- brute-force truth


def jobs_csv(run_dir: Path) -> list[dict]:
    with open(run_dir / "out_jobs.csv", newline="") as fh:
        return list(csv.DictReader(fh))


def ran(rows):
    return [r for r in rows if r["starting_time"] != ""]


def machine_runs(text: str) -> int:
    ids = parse_intervals(text)
    return 1 + int((np.diff(ids) != 1).sum())


def one(collection_list, gid):
    found = [c for c in collection_list if c.get_gid() == gid]
    assert len(found) == 1, [c.get_gid() for c in collection_list]
    return found[0]


def scale_of(label: str) -> float:
    return {"(h)": 1 / 3600.0, "(s)": 1.0}[label[label.rindex("("):]]


def schedule(run_dir: Path) -> dict:
    with open(run_dir / "out_schedule.csv", newline="") as fh:
        return next(csv.DictReader(fh))


# ---------------------------------------------------------------------------- job figures


def test_gantt_has_one_rectangle_per_job_and_machine_run(runs):
    rows = ran(jobs_csv(runs.sim))
    fig = render("gantt", runs.sim)
    ax = fig.axes[0]
    rects = one(ax.collections, "gantt-rectangles")
    assert len(rects.get_paths()) == sum(machine_runs(r["allocated_resources"]) for r in rows)
    assert len(ax.patches) == 0  # one collection, never one patch per job
    assert ax.get_ylabel() == "machine (core) id" and ax.get_xlabel() == "time (h)"
    assert ax.get_ylim() == (0, 88)
    # Job 2 (killed at its walltime) spans [start, finish] on its machines, in hours.
    job = next(r for r in rows if r["job_id"] == "2")
    lo = int(parse_intervals(job["allocated_resources"])[0])
    boxes = [p.vertices for p in rects.get_paths()]
    mine = [v for v in boxes if np.isclose(v[:, 0].min(), float(job["starting_time"]) / 3600)
            and np.isclose(v[:, 0].max(), float(job["finish_time"]) / 3600) and v[:, 1].min() == lo]
    assert len(mine) == 1
    # Rectangles of one job share a colour; labels are job ids, written only where they fit.
    labels = [t for t in ax.texts if t.get_gid() == "gantt-label"]
    ids = {r["job_id"] for r in rows}
    assert 0 < len(labels) < len(rows) and all(t.get_text() in ids for t in labels)
    assert f"{len(rows)} jobs on 88 machines" in ax.get_title()


def test_gantt_without_labels_and_one_colour_per_job(runs):
    fig = render("gantt_no_label", runs.sim)
    ax = fig.axes[0]
    assert not [t for t in ax.texts if t.get_gid() == "gantt-label"]
    jobs = d.read_jobs(runs.sim / "out_jobs.csv")
    alloc = d.allocations(jobs)
    colours = one(ax.collections, "gantt-rectangles").get_facecolors()
    spread = np.bincount(alloc.job).argmax()  # the job with the most machine runs
    same = colours[alloc.job == spread]
    assert len(same) > 1 and (same == same[0]).all()


def test_gantt_stays_one_collection_for_thousands_of_jobs():
    n = 6000
    rng = np.random.default_rng(0)
    start = np.sort(rng.uniform(0, 1e6, n))
    finish = start + rng.uniform(10, 1e4, n)
    first = rng.integers(0, 4000, n)
    alloc_text = tuple(f"{a}-{a + 3} {a + 10}" for a in first)
    jobs = d.JobTable(tuple(str(i) for i in range(n)), start, start, finish, np.full(n, 5),
                      ("COMPLETED_SUCCESSFULLY",) * n, alloc_text)
    alloc = d.allocations(jobs)
    fig = f.gantt(jobs, alloc, 4096, labels=True, title="synthetic")
    ax = fig.axes[0]
    rects = one(ax.collections, "gantt-rectangles")
    assert len(rects.get_paths()) == 2 * n and rects.get_rasterized()
    assert len(ax.patches) == 0 and len(ax.texts) < n  # labels only where they fit


def test_queue_size_steps_match_out_jobs(runs):
    rows = ran(jobs_csv(runs.sim))
    ax = render("queue_size", runs.sim).axes[0]
    line = one(ax.lines, "queue-size")
    scale = scale_of(ax.get_xlabel())
    x, y = np.asarray(line.get_xdata()) / scale, np.asarray(line.get_ydata())
    submit = np.array([float(r["submission_time"]) for r in rows])
    start = np.array([float(r["starting_time"]) for r in rows])
    truth = [int(((submit <= t + 1e-6) & (start > t + 1e-6)).sum()) for t in x[:-1]]
    assert y[:-1].tolist() == truth and max(truth) > 10
    assert np.isclose(x[-1], float(schedule(runs.sim)["makespan"]))  # held to the end of the run
    assert ax.get_ylabel() == "waiting jobs (count)" and ax.get_xlabel() == "time (h)"


def test_utilization_counts_busy_machines(runs):
    rows = ran(jobs_csv(runs.sim))
    ax = render("utilization", runs.sim).axes[0]
    line = one(ax.lines, "busy-machines")
    x = np.asarray(line.get_xdata()) / scale_of(ax.get_xlabel())
    start = np.array([float(r["starting_time"]) for r in rows])
    finish = np.array([float(r["finish_time"]) for r in rows])
    size = np.array([parse_intervals(r["allocated_resources"]).size for r in rows])
    truth = [int(size[(start <= t + 1e-6) & (finish > t + 1e-6)].sum()) for t in x[:-1]]
    assert np.asarray(line.get_ydata())[:-1].tolist() == truth
    assert max(truth) <= 88 and "busy machines (cores)" == ax.get_ylabel()
    assert "mean" in ax.get_title() and "%" in ax.get_title()


def test_lifecycle_draws_every_job_and_rejections(runs):
    rows = jobs_csv(runs.sim)
    ax = render("lifecycle", runs.sim).axes[0]
    waiting = one(ax.collections, "lifecycle-waiting")
    assert len(waiting.get_segments()) == len(ran(rows))
    running = sum(len(c.get_segments()) for c in ax.collections if c.get_gid().startswith("lifecycle-running"))
    assert running == len(ran(rows))
    rejected = one(ax.lines, "lifecycle-rejected")
    assert len(rejected.get_xdata()) == sum(r["final_state"] == "REJECTED" for r in rows) == 1


# ---------------------------------------------------------------------------- energy, p-states


def energy_rows(run_dir: Path):
    with open(run_dir / "out_consumed_energy.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    return np.array([float(r["time"]) for r in rows]), np.array([float(r["energy"]) for r in rows])


@pytest.mark.parametrize("which", ["sim", "batsim"])
def test_power_integrates_to_the_energy_consumed(runs, which):
    run_dir = getattr(runs, which)
    t, e = energy_rows(run_dir)
    ax = render("power", run_dir).axes[0]
    line = one(ax.lines, "power")
    x = np.asarray(line.get_xdata()) / scale_of(ax.get_xlabel())
    p = np.asarray(line.get_ydata())
    assert np.isclose((p[:-1] * np.diff(x)).sum(), e[-1] - e[0], rtol=1e-9)
    assert ax.get_ylabel() == "power (W)" and (p >= 0).all()
    # The idle floor is drawn where the power is not the idle power of the current p-states:
    # load on flat XML platforms, and on both SimGrid's start-up billing (every machine at
    # p-state 0 until the first energy update after t=0).
    assert any(l.get_gid() == "idle-power" for l in ax.lines)


def test_energy_curve_ends_at_the_total(runs):
    t, e = energy_rows(runs.sim)
    ax = render("energy", runs.sim).axes[0]
    assert ax.get_ylabel() == "energy consumed (MJ)"
    line = one(ax.lines, "energy")
    assert np.isclose(line.get_ydata()[-1] * 1e6, e[-1])
    assert np.isclose(e[-1], float(schedule(runs.sim)["consumed_joules"]), rtol=1e-6)


def replay_pstates(run_dir: Path, nb: int) -> dict[int, int]:
    state = {}
    with open(run_dir / "out_pstate_changes.csv", newline="") as fh:
        for r in csv.DictReader(fh):
            if int(r["new_pstate"]) >= 0:
                for m in parse_intervals(r["machine_id"]).tolist():
                    state[m] = int(r["new_pstate"])
    return {p: sum(1 for m in range(nb) if state.get(m) == p) for p in set(state.values())}


@pytest.mark.parametrize("which, nb, legend", [("sim", 88, "P1 busy, throttled (bandwidth)"),
                                                ("batsim", 4, "p-state 2")])
def test_pstate_occupancy_adds_up_to_the_platform(runs, which, nb, legend):
    run_dir = getattr(runs, which)
    fig = render("pstates", run_dir)
    ax = fig.axes[0]
    occ = d.read_pstates(run_dir / "out_pstate_changes.csv", nb)
    assert (occ.counts.sum(axis=1) == nb).all()
    final = replay_pstates(run_dir, nb)
    assert {int(p): int(c) for p, c in zip(occ.pstates, occ.counts[-1]) if c} == {p: c for p, c in final.items() if c}
    assert len([c for c in ax.collections if (c.get_gid() or "").startswith("pstate-")]) == len(occ.pstates)
    assert legend in [t.get_text() for t in ax.get_legend().get_texts()]
    assert ax.get_ylabel() == "machines (cores)" and ax.get_ylim()[1] == nb


# ---------------------------------------------------------------------------- over-utilisation


def test_blocking_counts_match_overutilization_json(runs):
    over = json.loads((runs.sim / "overutilization.json").read_text())
    assert over["core_shortages"] and over["memory_shortages"]
    ax = render("blocking", runs.sim).axes[0]
    makespan = float(schedule(runs.sim)["makespan"])
    for name, key in (("core", "core_shortages"), ("memory", "memory_shortages")):
        line = one(ax.lines, f"blocking-{name}")
        assert line.get_ydata()[-1] == len(over[key])
        assert np.isclose(line.get_xdata()[-1] * 3600, makespan)
        x = np.asarray(line.get_xdata()[:-1]) * 3600
        assert np.allclose(x, np.unique(over[key]), atol=1e-6)
    assert "(cumulative count)" in ax.get_ylabel()
    assert [l.get_gid() for l in render("mem_bubbles", runs.sim).axes[0].lines] == ["blocking-memory"]


def test_bandwidth_spans_one_bar_each_and_processor_zero_visible(runs):
    over = json.loads((runs.sim / "overutilization.json").read_text())
    spans = [(int(p), s, e) for p, v in over["bandwidth_spans"].items() for s, e in v]
    ax = render("mem_bw_overutilization", runs.sim).axes[0]
    bars = one(ax.collections, "bandwidth-spans")
    assert len(bars.get_paths()) == len([s for s in spans if s[2] is not None])
    assert ax.get_ylabel() == "processor id" and ax.get_ylim() == (-0.5, over["nb_processors"] - 0.5)
    lows = sorted({round(p.vertices[:, 1].min(), 6) for p in bars.get_paths()})
    assert lows[0] == -0.4  # processor 0 has a full-height bar (the original drew it 0 high)


def test_open_spans_and_the_original_overutilizations_format(tmp_path):
    original = {"core": [5.0, 9.0], "mem": [7.0],
                "mem_bw": {"nb_procs": 3, "procs": {"0": {"state": 0, "values": [[1.0, 4.0]]},
                                                    "2": {"state": 1, "values": [[2.0, 1.0], 6.0]}}}}
    path = tmp_path / "overutilizations.json"
    path.write_text(json.dumps(original))
    over = d.read_overuse(path)
    assert over.nb_processors == 3 and over.core_shortages.tolist() == [5.0, 9.0]
    assert np.isnan(over.span_end).sum() == 1
    ax = f.bandwidth_figure(over, end=20.0, title="original").axes[0]
    closed = one(ax.collections, "bandwidth-spans")
    still_open = one(ax.collections, "bandwidth-open-spans")
    assert len(closed.get_paths()) == 2 and len(still_open.get_paths()) == 1
    assert still_open.get_paths()[0].vertices[:, 0].max() == 20.0  # drawn until the end of the run
    assert len(f.blocking_figure(over, 20.0, ("core", "memory"), "t").axes[0].lines) == 2
    path.write_text(json.dumps({"something": 1}))
    with pytest.raises(d.FormatError, match="overutilizations.json.*format"):
        d.read_overuse(path)


# ---------------------------------------------------------------------------- learning


def test_learning_curves_show_the_logged_values(runs):
    rewards = [float(x) for x in (runs.train / "rewards.log").read_text().split()]
    fig = render("learning", runs.train)
    assert len(fig.axes) == 3
    by_gid = {l.get_gid(): l for ax in fig.axes for l in ax.lines}
    assert np.allclose(by_gid["curve-rewards"].get_ydata(), rewards)
    assert by_gid["curve-rewards"].get_xdata().tolist() == list(range(EXPERIMENT["episodes"]))
    losses = [float(x) for x in (runs.train / "losses.log").read_text().split()]
    assert np.allclose(by_gid["curve-losses"].get_ydata(), losses)
    makespans = np.array([float(x) for x in (runs.train / "makespans.log").read_text().split()])
    ylabel = fig.axes[2].get_ylabel()
    assert np.allclose(np.asarray(by_gid["curve-makespans"].get_ydata()) / scale_of(ylabel), makespans)
    assert [ax.get_ylabel() for ax in fig.axes[:2]] == ["summed reward", "loss"]
    assert fig.axes[2].get_xlabel() == "episode"


def test_long_learning_curves_get_a_moving_mean(tmp_path):
    values = np.arange(50, dtype=float)
    fig = f.learning_figure([f.Curve("rewards", values, "summed reward")], "t")
    mean = one(fig.axes[0].lines, "curve-rewards-mean")
    assert np.allclose(mean.get_ydata()[-1], values[-5:].mean())


def test_losses_written_as_tensor_reprs_are_read(tmp_path):
    log = tmp_path / "losses.log"
    log.write_text("tensor(0.5, grad_fn=<AddBackward0>)\n-1.25e-3\n\ntensor(-2.)\n")
    assert d.read_numbers(log).tolist() == [0.5, -1.25e-3, -2.0]
    log.write_text("0.5\nloss\n")
    with pytest.raises(d.FormatError, match="line 2"):
        d.read_numbers(log)


def test_action_preferences_name_the_experiments_actions(runs):
    probs = np.array(json.loads((runs.train / "probs.json").read_text())["probs"])
    ax = render("action_preferences", runs.train).axes[0]
    lines = {l.get_gid(): l for l in ax.lines if (l.get_gid() or "").startswith("action-")}
    assert len(lines) == probs.shape[0] == 4  # three pairs and void
    for a in range(4):
        assert np.allclose(lines[f"action-{a}"].get_ydata(), probs[a])
    legend = " ".join(t.get_text() for t in ax.get_legend().get_texts())
    for name in ("first:high_gflops", "first:high_mem", "shortest:low_power", "void"):
        assert name in legend
    assert ax.get_xlabel() == "episode" and "probability" in ax.get_ylabel()


def test_many_actions_name_the_top_ones_and_every_episodes_leader():
    probs = np.random.default_rng(0).dirichlet(np.ones(37), size=6).T
    ax = f.action_preferences_figure(probs, [f"a{i}" for i in range(37)], "t").axes[0]
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    top, leaders = set(np.argsort(-probs[:, -1])[:8].tolist()), set(probs.argmax(axis=0).tolist())
    assert leaders - top  # this draw has actions that led an episode and are not among the last top 8
    named = top | leaders
    assert {t.rsplit(" (", 1)[0] for t in legend if t.startswith("a")} == {f"a{a}" for a in named}
    assert f"other {37 - len(named)} actions" in legend and "uniform (1/37)" in legend
    others = one(ax.collections, "action-others").get_segments()
    assert len(others) == 37 - len(named)
    assert {round(float(seg[0, 1]), 12) for seg in others} == \
        {round(float(probs[a, 0]), 12) for a in range(37) if a not in named}


def test_training_run_figures_default_to_the_last_episode(runs):
    run = d.open_run(runs.train)
    assert run.episode == EXPERIMENT["episodes"] - 1 and "episode 3" in run.title
    ax = render("queue_size", d.open_run(runs.train, episode=0)).axes[0]
    assert "episode 0" in ax.figure.texts[0].get_text()
    with pytest.raises(HDeepRMError, match="no episode_9/"):
        d.open_run(runs.train, episode=9)


# ---------------------------------------------------------------------------- files and CLI


@pytest.mark.parametrize("name, fmt, magic", [("a.png", None, b"\x89PNG"), ("a.svg", None, b"<?xml"),
                                              ("a.pdf", None, b"%PDF"), ("noext", "svg", b"<?xml")])
def test_saved_formats(runs, tmp_path, name, fmt, magic):
    path = save_figure(render("energy", runs.sim), tmp_path / name, fmt)
    data = path.read_bytes()
    assert data.startswith(magic) and b"hdeeprm plot" in data


def test_format_clashes_are_errors():
    assert output_format(None, None) == "png" and output_format("x.SVG", None) == "svg"
    with pytest.raises(HDeepRMError, match="extension says png, --format says pdf"):
        output_format("x.png", "pdf")
    with pytest.raises(HDeepRMError, match="unknown figure format 'jpg'"):
        output_format("x.jpg", None)


def test_plot_command_writes_each_kind(runs, tmp_path, capsys):
    for kind in KINDS:
        run_dir = runs.train if KINDS[kind].learning else runs.sim
        out = tmp_path / f"{kind}.png"
        assert main(["plot", kind, str(run_dir), "-o", str(out), "--dpi", "40"]) == 0
        assert out.read_bytes().startswith(b"\x89PNG")
    assert main(["plot", "pstates", str(runs.train), "--episode", "1", "--format", "svg"]) == 0
    assert (runs.train / "figures" / "pstates-episode_1.svg").is_file()
    capsys.readouterr()


@pytest.mark.parametrize("kind, run, expected", [
    ("blocking", "batsim", "no overutilization.json"),
    ("rewards", "sim", "no rewards.log"),
    ("gantt", "nowhere", "no such run folder"),
])
def test_plot_mistakes_give_one_line_and_status_2(runs, kind, run, expected, capsys, tmp_path):
    path = getattr(runs, run, tmp_path / run)
    assert main(["plot", kind, str(path), "-o", str(tmp_path / "x.png")]) == 2
    err = capsys.readouterr().err
    assert expected in err and err.count("\n") == 1


def test_missing_matplotlib_says_how_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib.backends.backend_agg", None)
    with pytest.raises(HDeepRMError, match=r"pip install -e '\.\[plot\]'"):
        f.new_figure()


def test_core_and_readers_do_not_import_matplotlib():
    code = ("import sys, hdeeprm.simulation.engine, hdeeprm.simulation.outputs, hdeeprm.analysis.plots, hdeeprm.analysis.runs, "
            "hdeeprm.cli.main; assert 'matplotlib' not in sys.modules, 'matplotlib imported'")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_a_run_where_no_job_ran_says_so(tmp_path):
    reference = DATA / "batsim-reference" / "A3-ties-reject"
    rows = (reference / "out_jobs.csv").read_text().splitlines()
    (tmp_path / "out_jobs.csv").write_text("\n".join([rows[0]] + [r for r in rows if "REJECTED" in r]) + "\n")
    (tmp_path / "out_consumed_energy.csv").write_text("time,energy,event_type,wattmin,epower\n")
    for kind in ("gantt", "queue_size", "utilization", "power"):
        texts = [t.get_text() for t in render(kind, tmp_path).axes[0].texts]
        assert texts in (["no job ran"], ["no energy samples"])
    rejected = one(render("lifecycle", tmp_path).axes[0].lines, "lifecycle-rejected")
    assert len(rejected.get_xdata()) == 2


# ---------------------------------------------------------------------------- evaluation


def test_evaluation_figure_orders_policies_and_highlights_the_agent():
    values = {"fcfs": np.array([5.0, 6.0, 7.0, 6.5, 8.0]), "agent": np.array([10.0, 1.0, 2.0, 1.5, 0.5]),
              "sjf": np.array([3.0, 4.0, 5.0, 4.5, 2.0])}  # means 6.5, 3.0, 3.7
    fig = f.evaluation_figure(values, "mean bounded slowdown", title="held-out windows", highlight="agent")
    ax = fig.axes[0]
    order = ["agent", "sjf", "fcfs"]
    assert [t.get_text().split("\n")[0] for t in ax.get_xticklabels()] == order
    assert ax.get_xticklabels()[0].get_text() == "agent\n(mean 3)"
    assert ax.get_ylabel() == "mean bounded slowdown" and "5 windows, 3 policies" in ax.get_title()
    assert fig.texts[0].get_text() == "held-out windows"
    for x, name in enumerate(order):
        points = one(ax.collections, f"evaluation-points-{name}").get_offsets()
        assert np.array_equal(points[:, 1], values[name])  # every window, in window order
        assert np.abs(points[:, 0] - x).max() <= 0.15 and np.unique(points[:, 0]).size == 5
    means = one(ax.lines, "evaluation-means")
    assert np.allclose(means.get_ydata(), [3.0, 3.7, 6.5]) and list(means.get_xdata()) == [0, 1, 2]
    boxes = {name: one(ax.patches, f"evaluation-box-{name}").get_facecolor() for name in order}
    assert boxes["sjf"] == boxes["fcfs"] != boxes["agent"]
    assert ax.get_xticklabels()[0].get_color() != ax.get_xticklabels()[1].get_color()
    # Deterministic: the same data give the same jitter.
    again = f.evaluation_figure(values, "mean bounded slowdown", highlight="agent").axes[0]
    assert np.array_equal(one(again.collections, "evaluation-points-agent").get_offsets(),
                          one(ax.collections, "evaluation-points-agent").get_offsets())


def test_evaluation_figure_lists_many_policies_down_the_y_axis():
    values = {f"policy-{i}": np.arange(4.0) + (i * 7) % 10 for i in range(10)}
    values["agent"] = np.full(4, 0.5)
    ax = f.evaluation_figure(values, "mean waiting time (s)", highlight="agent").axes[0]
    names = [t.get_text().split("\n")[0] for t in ax.get_yticklabels()]
    means = {k: v.mean() for k, v in values.items()}
    assert names[0] == "agent" and names == sorted(values, key=lambda k: means[k])
    assert ax.get_xlabel() == "mean waiting time (s)" and ax.yaxis_inverted()  # best at the top
    points = one(ax.collections, "evaluation-points-agent").get_offsets()
    assert np.array_equal(points[:, 0], values["agent"]) and np.abs(points[:, 1]).max() <= 0.15
    assert len([p for p in ax.patches if (p.get_gid() or "").startswith("evaluation-box-")]) == 11
