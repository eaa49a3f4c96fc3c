#!/usr/bin/env python
"""Where a whole command spends its time: a cProfile of ``hdeeprm simulate`` or ``hdeeprm train``
run in this process as a user runs it, summed by phase.

    python benchmarks/command_profile.py simulate SCENARIO_DIR [--policy first:first_fit] [--top 15]
    python benchmarks/command_profile.py simulate --platform gaia --workload examples/data/gaia-2014-head.swf.gz
    python benchmarks/command_profile.py train [--experiment quickstart] [--episodes N] [--top 15]

SCENARIO_DIR holds ``platform.xml`` and ``workload.json`` (as the benchmark's ``--scenario``).
The command runs once untimed first (numba's cache loaded or compiled, files in the page
cache), then once under the profiler; the interpreter's own start (``python -c pass``) is
timed apart, since no profiler sees it.

Phases are cumulative times of the functions that make them (a phase's callees count in it),
so they nest: the table says which ones. cProfile adds a cost to every Python call, so
call-heavy phases look slower than they are: the unprofiled wall time is printed next to the
profiled one, and shares are what to read. Compiled numba kernels are one call each here;
``kernel_profile.py`` looks inside them.
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import io
import pstats
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))

# (phase, depth, (file suffix, function name)): the cumulative time of the first listed
# function found is the phase's; depth only indents the table to show nesting.
SIMULATE_PHASES = [
    ("imports (hdeeprm, numpy, numba, ...)", 0, ("<frozen importlib._bootstrap>", "_find_and_load")),
    ("  numba: loading cached kernels", 1, ("numba/core/caching.py", "load_overload")),
    ("reading the platform", 0, ("hdeeprm/inputs/platform/__init__.py", "load_platform")),
    ("reading the workload", 0, ("hdeeprm/inputs/workload/__init__.py", "load_workload")),
    ("simulating (policy run)", 0, ("hdeeprm/simulation/policies.py", "run_policy")),
    ("writing the outputs", 0, ("hdeeprm/simulation/outputs.py", "write_outputs")),
    ("  out_jobs.csv", 1, ("hdeeprm/simulation/outputs.py", "write_jobs")),
    ("  out_consumed_energy.csv", 1, ("hdeeprm/simulation/outputs.py", "write_energy")),
    ("  out_pstate_changes.csv", 1, ("hdeeprm/simulation/outputs.py", "write_pstates")),
    ("  overutilization.json (text)", 1, ("hdeeprm/simulation/outputs.py", "_overutilization_text")),
]

TRAIN_PHASES = [
    ("imports (hdeeprm, torch, numba, ...)", 0, ("<frozen importlib._bootstrap>", "_find_and_load")),
    ("training (hdeeprm.rl.train.train)", 0, ("hdeeprm/rl/train.py", "train")),
    ("  collecting experience (envs + inference)", 1, ("hdeeprm/rl/train.py", "play_vectorised")),
    ("    HeteroEnv.step", 2, ("hdeeprm/rl/env.py", "step")),
    ("      engine: p-state commits", 3, ("hdeeprm/simulation/resources.py", "commit_pstates")),
    ("      job window: observation", 3, ("hdeeprm/rl/job_window.py", "build")),
    ("    HeteroEnv.reset", 2, ("hdeeprm/rl/env.py", "reset")),
    ("    batched policy inference", 2, ("hdeeprm/rl/agents/ppo.py", "act_batch")),
    ("  PPO updates", 1, ("hdeeprm/rl/agents/ppo.py", "optimise")),
    ("    losses (forward passes)", 2, ("hdeeprm/rl/agents/ppo.py", "losses")),
    ("    backward", 2, ("torch/_tensor.py", "backward")),
    ("    Adam steps", 2, ("torch/optim/adam.py", "step")),
    ("  pretraining (imitation)", 1, ("hdeeprm/rl/agents/imitation.py", "pretrain")),
    ("  episode outputs (Batsim files per episode)", 1, ("hdeeprm/simulation/outputs.py", "write_outputs")),
    ("  validation (checkpoint selection)", 1, ("hdeeprm/rl/train.py", "check")),
]


def cumulative(stats: pstats.Stats, where: tuple[str, str]) -> float | None:
    """Cumulative seconds of the function named by (file suffix, name), summed over the
    functions that match (one name can be defined at several lines of a file)."""
    suffix, name = where
    found = [entry for key, entry in stats.stats.items() if key[2] == name and key[0].endswith(suffix)]
    if not found:
        return None
    return sum(entry[3] for entry in found)


def top_functions(stats: pstats.Stats, n: int) -> list[tuple[float, int, str]]:
    rows = []
    for (path, line, name), (_, calls, own, _, _) in stats.stats.items():
        short = path.split("site-packages/")[-1].replace(str(ROOT) + "/", "")
        rows.append((own, calls, f"{short}:{line}({name})" if line else name))
    return sorted(rows, reverse=True)[:n]


def profiled(function) -> tuple[pstats.Stats, float]:
    profiler = cProfile.Profile()
    t0 = time.perf_counter()
    profiler.enable()
    try:
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            function()
    finally:
        profiler.disable()
    return pstats.Stats(profiler), time.perf_counter() - t0


def wall(command: list[str]) -> float:
    t0 = time.perf_counter()
    proc = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed (status {proc.returncode}): {proc.stderr.strip()}")
    return time.perf_counter() - t0


def report(title: str, stats: pstats.Stats, profiled_s: float, unprofiled_s: float, start_s: float,
           phases, top: int) -> None:
    print(title)
    print(f"whole process unprofiled {unprofiled_s:.2f} s (interpreter start {start_s:.2f} s); "
          f"in-process profiled run {profiled_s:.2f} s\n")
    width = max(len(label) for label, _, _ in phases)
    print(f"{'phase (cumulative; indented phases are inside the one above)':<{width}}  seconds  share")
    for label, _, where in phases:
        seconds = cumulative(stats, where)
        if seconds is None:
            continue
        print(f"{label:<{width}}  {seconds:7.2f}  {100 * seconds / profiled_s:4.0f} %")
    print(f"\ntop {top} functions by own time (profiled seconds, calls):")
    for own, calls, name in top_functions(stats, top):
        print(f"  {own:6.2f} s  {calls:>9,}  {name}")


def profile_simulate(args) -> None:
    if args.scenario is not None:
        scenario = Path(args.scenario)
        missing = [name for name in ("platform.xml", "workload.json") if not (scenario / name).is_file()]
        if missing:
            raise SystemExit(f"{scenario}: no {missing[0]}; expected a scenario folder with platform.xml and "
                             "workload.json")
        platform, workload, name = str(scenario / "platform.xml"), str(scenario / "workload.json"), scenario.name
    elif args.platform and args.workload:
        platform, workload, name = args.platform, args.workload, f"--platform {args.platform} --workload {args.workload}"
    else:
        raise SystemExit("simulate: expected a scenario folder, or --platform and --workload")
    with tempfile.TemporaryDirectory(prefix="hdeeprm-profile-") as tmp:
        argv = ["simulate", "--platform", platform, "--workload", workload, "--policy", args.policy]
        command = [sys.executable, "-m", "hdeeprm", *argv, "--out", f"{tmp}/warm"]
        wall(command)  # numba's cache filled, files in the page cache
        unprofiled = wall(command[:-1] + [f"{tmp}/timed"])
        start = wall([sys.executable, "-c", "pass"])

        def run():
            from hdeeprm.cli.main import main
            if main([*argv, "--out", f"{tmp}/profiled"]) != 0:
                raise SystemExit("hdeeprm simulate failed")

        stats, seconds = profiled(run)
    report(f"hdeeprm simulate {name} --policy {args.policy}", stats, seconds, unprofiled, start,
           SIMULATE_PHASES, args.top)


def profile_train(args) -> None:
    with tempfile.TemporaryDirectory(prefix="hdeeprm-profile-") as tmp:
        extra = ["--episodes", str(args.episodes)] if args.episodes else []
        argv = ["train", args.experiment, *extra, "--no-evaluate"]
        command = [sys.executable, "-m", "hdeeprm", *argv, "--out", f"{tmp}/warm"]
        wall(command)
        unprofiled = wall(command[:-1] + [f"{tmp}/timed"])
        start = wall([sys.executable, "-c", "pass"])

        def run():
            from hdeeprm.cli.main import main
            if main([*argv, "--out", f"{tmp}/profiled"]) != 0:
                raise SystemExit("hdeeprm train failed")

        stats, seconds = profiled(run)
        steps = sum(1 for _ in open(Path(tmp) / "profiled" / "actions.log"))
    report(f"hdeeprm train {args.experiment} --no-evaluate ({steps:,} environment steps)", stats, seconds,
           unprofiled, start, TRAIN_PHASES, args.top)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    sim = commands.add_parser("simulate", help="hdeeprm simulate on a scenario folder")
    sim.add_argument("scenario", nargs="?", help="folder with platform.xml and workload.json")
    sim.add_argument("--platform", help="instead of a scenario: the platform (a file or a bundled name)")
    sim.add_argument("--workload", help="instead of a scenario: the workload (Batsim JSON or SWF)")
    sim.add_argument("--policy", default="first:first_fit", help="the simulate policy (default first:first_fit: FCFS)")
    tr = commands.add_parser("train", help="hdeeprm train --no-evaluate")
    tr.add_argument("--experiment", default="quickstart", help="bundled experiment or file (default quickstart)")
    tr.add_argument("--episodes", type=int, help="episodes instead of the experiment's count")
    for sub in (sim, tr):
        sub.add_argument("--top", type=int, default=15, help="functions listed by own time (default 15)")
    args = parser.parse_args(argv)
    (profile_simulate if args.command == "simulate" else profile_train)(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
