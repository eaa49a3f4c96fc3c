"""Cross-validation campaign: the embedded engine against real Batsim over many settings.

    .venv/bin/python benchmarks/crossval_campaign.py TRACE.swf.gz... --out runs/campaign \
        [--workers N] [--quick] [--nb-jobs N...] [--platforms P...] [--batsim PATH]

builds one grid (``hdeeprm crossval --grid``; see hdeeprm/rl/sweep.py for the format) in
``--out`` and cross-validates it:

  policies   the 42 key pairs (6 job keys x 7 core keys, first_fit included), each without
             and with EASY backfilling (84)
  platforms  quickstart (88 cores) and das2 (144 cores): the bundled HDeepRM platforms small
             enough for fast runs that real traces fit. ``learning`` has 4 cores, on which
             most jobs of a trace cannot run, so it is not a default (--platforms learning)
  workloads  the traces given, each cut to its first N usable jobs for every --nb-jobs N
             (default 500 and 5000)
  networks   zero-latency and links (the original's link model)
  options    two original options files on quickstart, played on every trace and network: a
             CLASSIC agent, and a LEARNING agent (PPO, 16 hidden units) trained here for a
             few episodes on the embedded engine before the campaign (a few seconds); the
             point is to check that the learning path (observations, masks, greedy actions)
             gives the same schedule on both backends, not to have a good agent

``--quick`` is a smoke run of a small subset (quickstart, the first trace, 500 jobs, 4
policies, both networks, both options files: 12 cells, under a minute on 2 cores).

Everything is written in ``--out``: grid.json, experiment.json, the options files, the
checkpoint, and the grid's outputs (cells/, errors/, summary.csv, summary.json); the run
resumes where it stopped when started again with the same arguments, and the same grid can
be rerun or resumed with ``hdeeprm crossval --grid OUT/grid.json --out OUT``. At the end it
prints the totals, a Markdown table per setting (platform x trace x jobs x network) and, for
grids of up to --table-cells cells, the Markdown table of every cell; campaign.md holds them.
Exit status: 0 when every cell agrees, 1 otherwise.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

from hdeeprm.analysis.crossval import GridReport, run_grid
from hdeeprm.common.errors import HDeepRMError
from hdeeprm.common.parallel import LocalEngine
from hdeeprm.inputs.platform import bundled_platform
from hdeeprm.rl.sweep import GridConfig
from hdeeprm.simulation.keys import ALL_CORE_KEYS, JOB_KEYS

QUICK_POLICIES = ("first:first_fit", "shortest:high_gflops+easy", "random:random", "smallest:low_power+easy")
ENV_BLOCK = {"objective": "avg_job_slowdown", "observation": "minimal", "queue_sensitivity": 0.05,
             "actions": {"selection": [{"shortest": ["high_gflops", "low_power"]},
                                       {"first": ["high_gflops", "high_mem_bw"]},
                                       {"smallest": ["first_fit"]}], "void": False}}


def all_policies() -> list[str]:
    pairs = [f"{job}:{core}" for job in JOB_KEYS for core in ALL_CORE_KEYS]
    return pairs + [f"{pair}+easy" for pair in pairs]


def write_options(out: Path, nb_jobs: int, trace: str) -> tuple[Path, Path]:
    """A CLASSIC and a LEARNING options file on quickstart (the trace is replaced per cell)."""
    common = {"seed": 7, "nb_jobs": nb_jobs, "workload_file_path": trace,
              "platform_file_path": str(bundled_platform("quickstart"))}
    classic = {**common, "pybatsim": {"log_level": "WARNING", "env": ENV_BLOCK,
                                      "agent": {"type": "CLASSIC"}}}
    learning = {**common, "pybatsim": {"log_level": "WARNING", "env": ENV_BLOCK,
                                       "agent": {"type": "LEARNING", "run": "train", "algorithm": "ppo",
                                                 "hidden": 16, "lr": 0.005, "gamma": 0.99}}}
    paths = out / "options-classic.json", out / "options-learning.json"
    for path, data in zip(paths, (classic, learning)):
        path.write_text(json.dumps(data, indent=1) + "\n")
    return paths


def train_checkpoint(options: Path, out: Path, episodes: int) -> Path | None:
    """A few training episodes of the LEARNING options file on the embedded engine; None
    (and a note) when training fails: the campaign then goes on without the learning case."""
    from hdeeprm.cli.launch import main as launch

    model = out / "model.pt"
    if model.is_file():
        return model
    t0 = time.perf_counter()
    print(f"training the learning agent: {episodes} episodes on the embedded engine ...", flush=True)
    tmp = out / "model.pt.partial"
    try:
        code = launch([str(options), "-nr", str(episodes), "-om", str(tmp), "--out", str(out / "training")])
    except Exception as e:  # noqa: BLE001  (a note, not a crash: the other cells still run)
        code = f"{type(e).__name__}: {e}"
    if code != 0 or not tmp.is_file():
        print(f"NOTE: training the learning agent failed ({code}); the learning-agent case is skipped",
              flush=True)
        return None
    os.replace(tmp, model)
    print(f"trained in {time.perf_counter() - t0:.1f} s: {model}", flush=True)
    return model


def build_grid(args, out: Path) -> Path:
    traces = [str(Path(t).resolve()) for t in args.traces]
    for trace in traces:
        if not Path(trace).is_file():
            raise SystemExit(f"crossval_campaign: {trace}: no such trace")
    nb_jobs = [500] if args.quick else args.nb_jobs
    if args.quick:
        traces = traces[:1]
    platforms = ["quickstart"] if args.quick else args.platforms
    experiment = {"platform": platforms[0], "workload": traces[0], "nb_jobs": nb_jobs[0], "episode_jobs": None}
    (out / "experiment.json").write_text(json.dumps(experiment, indent=1) + "\n")
    grid: dict = {"experiment": "experiment.json", "platforms": platforms, "workloads": traces,
                  "overrides": [{"nb_jobs": n} for n in nb_jobs], "networks": list(args.networks),
                  "policies": list(QUICK_POLICIES) if args.quick else all_policies(), "seeds": [0],
                  "timeout": args.timeout}
    if args.batsim:
        grid["batsim"] = str(Path(args.batsim).resolve()) if os.sep in args.batsim else args.batsim
    if not args.no_options:
        classic, learning = write_options(out, nb_jobs[0], traces[0])
        model = train_checkpoint(learning, out, args.train_episodes)
        grid["options"] = [classic.name] + ([{"file": learning.name, "model": model.name}] if model else [])
    path = out / "grid.json"
    path.write_text(json.dumps(grid, indent=1) + "\n")
    return path


def settings_table(report: GridReport) -> str:
    """Markdown: per platform x workload x jobs x network, the cells that agree, differ (by
    cause) and failed, and the largest energy relative difference."""
    groups: dict[tuple, list[dict]] = {}
    for row in report.rows:
        key = (row["platform"], Path(row["workload"]).name, row["overrides"] or "-", row["network"],
               "options files" if row["policy"].startswith("options:") else "key pairs")
        groups.setdefault(key, []).append(row)
    lines = ["| platform | trace | overrides | network | policies | cells | agree | differ (cause) | error "
             "| max energy rel. diff |", "|---|---|---|---|---|---|---|---|---|---|"]
    for key, rows in groups.items():
        causes: dict[str, int] = {}
        for row in rows:
            if row["verdict"] == "DIFFER":
                cause = row["cause"] or "not explained"
                causes[cause] = causes.get(cause, 0) + 1
        energy = [float(r["energy_relative_difference"]) for r in rows if r["energy_relative_difference"] != ""]
        lines.append("| " + " | ".join(key) + f" | {len(rows)} | {sum(r['verdict'] == 'AGREE' for r in rows)} | "
                     + (", ".join(f"{v} {k}" for k, v in sorted(causes.items())) or "0") + " | "
                     + f"{sum(r['verdict'] == 'ERROR' for r in rows)} | "
                     + (f"{max(energy):.2e}" if energy else "") + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("traces", nargs="+", help="SWF traces (.swf or .swf.gz)")
    parser.add_argument("--out", default="runs/crossval-campaign", help="campaign folder (resumed if it exists)")
    parser.add_argument("--workers", type=int, default=1, help="parallel cells (local processes)")
    parser.add_argument("--quick", action="store_true", help="smoke run: 12 cells")
    parser.add_argument("--nb-jobs", type=int, nargs="+", default=[500, 5000], help="jobs per run (default 500 5000)")
    parser.add_argument("--platforms", nargs="+", default=["quickstart", "das2"], help="bundled names or JSON files")
    parser.add_argument("--networks", nargs="+", choices=("zero-latency", "links"), default=["zero-latency", "links"],
                        help="network models of the exported platforms (default both)")
    parser.add_argument("--batsim", help="batsim executable (default: $HDEEPRM_BATSIM, then PATH)")
    parser.add_argument("--timeout", type=float, default=120.0, help="longest wait for a Batsim message, s")
    parser.add_argument("--no-options", action="store_true", help="without the options-file cells")
    parser.add_argument("--train-episodes", type=int, default=3, help="training episodes of the learning agent")
    parser.add_argument("--table-cells", type=int, default=100,
                        help="print the per-cell table when the grid has at most this many cells")
    args = parser.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    try:
        grid = GridConfig.load(build_grid(args, out))
        t0 = time.perf_counter()
        with LocalEngine(args.workers) as engine:
            report = run_grid(grid, out, engine, progress=False, stream=sys.stdout)
    except HDeepRMError as e:
        print(f"crossval_campaign: error: {e}", file=sys.stderr)
        return 2
    wall = time.perf_counter() - t0
    text = [f"## Cross-validation campaign ({'quick' if args.quick else 'full'})", "",
            f"{report.totals_line()}; {report.ran} ran, {report.skipped} done earlier, {wall:.0f} s with "
            f"{args.workers} worker(s). Grid: `{out / 'grid.json'}`.", "", settings_table(report)]
    if len(report.rows) <= args.table_cells:
        text += ["", report.table(markdown=True, short_paths=True)]
    else:
        text += ["", f"(per-cell table: {out / 'summary.csv'})"]
    markdown = "\n".join(text) + "\n"
    (out / "campaign.md").write_text(markdown)
    print()
    print(markdown)
    print(f"summary in {out / 'summary.csv'}, {out / 'summary.json'} and {out / 'campaign.md'}; "
          f"rerun or resume with: hdeeprm crossval --grid {out / 'grid.json'} --out {out}")
    return report.exit_status


if __name__ == "__main__":
    sys.exit(main())
