"""The ``hdeeprm`` command line.

Subcommands:
  simulate  run a classic policy on a platform and a workload (SWF trace or Batsim JSON)
  replay    re-simulate a recorded Batsim run (its transcript's decisions) on the engine
  convert   turn an SWF trace into a Batsim JSON workload for a platform
  train     train an RL agent on an experiment, then compare it with the classic policies
  evaluate  compare an agent checkpoint with the classic policies, paired on held-out windows
  crossval  run one experiment on the embedded engine and on real Batsim, and compare
            (--grid: every cell of a sweep grid, with a summary)

User mistakes (bad files, unknown options) are reported in one line, with exit status 2.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

from . import __version__
from .errors import report_errors
from .seeding import run_generators
from .sweep import add_engine_args, add_subcommands as add_sweep_subcommands

def _platform_arg(value: str) -> str:
    from .platform import resolve_platform_name

    return resolve_platform_name(value)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="hdeeprm", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"hdeeprm {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    sim = sub.add_parser("simulate", help="run a classic policy on the embedded engine")
    sim.add_argument("--platform", required=True, type=_platform_arg,
                     help="platform JSON or SimGrid XML, or a bundled name (das2, gaia, learning, mc2, pik, ricc)")
    sim.add_argument("--hierarchy", help="hierarchy.json describing nodes and processors of an XML platform")
    sim.add_argument("--workload", required=True, help="Batsim JSON workload or SWF trace (.swf, .swf.gz)")
    sim.add_argument("--policy", default="first:first_fit",
                     help="JOBKEY:COREKEY (default first:first_fit). Job keys: random, first, shortest, "
                          "smallest, low_mem, low_mem_bw. Core keys: random, high_gflops, high_cores, "
                          "high_mem, high_mem_bw, low_power, first_fit")
    sim.add_argument("--backfill", choices=("easy",), help="EASY backfilling on requested walltimes")
    sim.add_argument("--out", help="folder for Batsim-style outputs (default: print metrics only)")
    sim.add_argument("--clock", choices=("simgrid", "exact"), default="simgrid",
                     help="simgrid (default): SimGrid's floating-point steps and Batsim's message "
                          "grouping, as real Batsim; exact: each end at start + work / speed")
    sim.add_argument("--energy-accounting", choices=("batsim", "ideal"), default="batsim",
                     help="batsim (default): SimGrid's, which bills machines at p-state 0 until "
                          "their first energy update, as real Batsim does; ideal: each machine at "
                          "its own p-state from t=0 (no real Batsim run gives it)")
    _conversion_args(sim)

    rep = sub.add_parser("replay", help="re-simulate a recorded Batsim run on the embedded engine")
    rep.add_argument("scenario", help="folder with platform.xml, workload.json and transcript.jsonl[.gz]")
    rep.add_argument("--out", required=True, help="folder for the outputs")

    tr = sub.add_parser("train", help="train an agent on an experiment (file or bundled name), then evaluate it")
    tr.add_argument("experiment", help="experiment JSON, or a bundled experiment name (quickstart)")
    tr.add_argument("--out", help="output folder (default runs/<experiment name>)")
    tr.add_argument("--episodes", type=int, help="training episodes (overrides the experiment)")
    tr.add_argument("--algorithm", choices=("ppo", "kernel_ppo", "reinforce", "actor_critic"))
    tr.add_argument("--seed", type=int, help="root seed (overrides the experiment)")
    tr.add_argument("--init", help="checkpoint to start from")
    tr.add_argument("--tensorboard", metavar="DIR", help="also log to TensorBoard in DIR (needs tensorboard)")
    tr.add_argument("--no-evaluate", action="store_true", help="skip the comparison with the classic policies")
    tr.add_argument("--backfill", choices=("none", "easy"),
                    help="EASY backfilling under the agent (overrides the experiment)")
    tr.add_argument("--rollout-batch", type=int, help="episodes per update, played in parallel (default: --workers)")
    add_engine_args(tr, "rollout workers (default: none, the agent plays and learns episode by episode; "
                        "with --engine ray: the cluster's CPUs)")  # hdeeprm.train.train_batched

    ev = sub.add_parser("evaluate", help="compare an agent checkpoint with the classic policies, paired on "
                                         "held-out windows")
    ev.add_argument("experiment", help="experiment JSON, or a bundled experiment name (quickstart)")
    ev.add_argument("--model", help="checkpoint written by train (default: only the classic policies)")
    ev.add_argument("--episodes", type=int, help="evaluation episodes (overrides eval_episodes)")
    ev.add_argument("--seed", type=int, help="root seed (overrides the experiment)")
    ev.add_argument("--out", help="folder for evaluation.csv, evaluation_windows.csv, comparison.csv and "
                                  "evaluation.png (default: print only)")
    ev.add_argument("--backfill", choices=("none", "easy"),
                    help="EASY backfilling under the agent (overrides the experiment)")

    conv = sub.add_parser("convert", help="convert an SWF trace into a Batsim JSON workload")
    conv.add_argument("trace", help="SWF trace (.swf or .swf.gz)")
    conv.add_argument("--platform", required=True, type=_platform_arg, help="platform the workload is for")
    conv.add_argument("--hierarchy", help="hierarchy.json for an XML platform")
    conv.add_argument("--out", required=True, help="Batsim JSON workload to write")
    _conversion_args(conv)

    cv = sub.add_parser("crossval", help="run one experiment on the embedded engine and on real Batsim, "
                                         "and report where they differ")
    cv.add_argument("options", nargs="?", help="an original HDeepRM options file (instead of "
                                               "--platform/--workload/--policy)")
    cv.add_argument("--grid", metavar="GRID", help="cross-validate every cell of a sweep grid file (see "
                                                   "hdeeprm sweep) into --out/cells/; a rerun skips the cells "
                                                   "already done")
    cv.add_argument("--platform", type=_platform_arg, help="platform JSON or SimGrid XML, or a bundled name")
    cv.add_argument("--hierarchy", help="hierarchy.json for an XML platform")
    cv.add_argument("--workload", help="Batsim JSON workload or SWF trace (with an options file: "
                                       "replaces its trace, as hdeeprm-launch -cw does)")
    cv.add_argument("-cw", "--customworkload", dest="workload", help=argparse.SUPPRESS)
    cv.add_argument("--policy", help="JOBKEY:COREKEY (default first:first_fit)")
    cv.add_argument("--backfill", choices=("easy",))
    cv.add_argument("--model", help="checkpoint of a LEARNING agent (options-file mode)")
    cv.add_argument("--batsim", metavar="PATH", help="batsim executable (default: $HDEEPRM_BATSIM, then PATH)")
    cv.add_argument("--network", choices=("zero-latency", "links"),
                    help="network of the platform XML given to Batsim (default zero-latency; links: the "
                         "original's link model; needs a platform JSON, and shifts times); with --grid, "
                         "replaces the grid's networks")
    cv.add_argument("--timeout", type=float, help="longest wait for a Batsim message, s (default 120)")
    cv.add_argument("--out", required=True, help="new or empty folder for both runs' outputs and the report "
                                                 "(with --grid: the grid's folder, reused to resume)")
    cv.add_argument("--clock", choices=("simgrid", "exact"), default="simgrid",
                    help="the embedded engine's clock (default simgrid, Batsim's; exact: end = start "
                         "+ work / speed, to see what SimGrid's arithmetic changes)")
    cv.add_argument("--no-explain", action="store_true",
                    help="when the runs differ, do not replay Batsim's transcript to explain why")
    cv.add_argument("--markdown", action="store_true", help="with --grid: print the summary table in Markdown")
    _conversion_args(cv)
    add_engine_args(cv, "with --grid: parallel workers (default: 1 for local, the cluster's CPUs for ray)")

    from .analysis_cli import add_subcommands  # plot, compare, report, describe, jobstat, clean

    COMMANDS.update(add_subcommands(sub))
    COMMANDS.update(add_sweep_subcommands(sub))  # sweep
    return parser


def _conversion_args(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("SWF conversion")
    group.add_argument("--nb-jobs", type=int, help="keep the first N usable jobs of the trace")
    group.add_argument("--seed", type=int, default=0,
                       help="seed of the run's random draws: conversion, random keys (default 0)")
    group.add_argument("--runtime-model", choices=("real", "hdeeprm"), default="real",
                       help="actual work from the trace's run time (real) or HDeepRM's sampling")


def _load_inputs(args):
    from .platform import load_platform
    from .workload import ConversionOptions, load_workload

    platform = load_platform(args.platform, hierarchy=args.hierarchy)
    options = ConversionOptions(
        nb_jobs=args.nb_jobs,
        runtime_model=args.runtime_model,
        reference_speed_gflops=platform.reference_speed_gflops,
        max_res=platform.nb_machines,
    )
    workload = load_workload(args.workload, options=options, rng=run_generators(args.seed)[0])
    return platform, workload




def cmd_simulate(args) -> int:
    from .core.engine import Engine
    from .core.outputs import write_outputs
    from .metrics import headline_metrics
    from .policies import PolicyConfig, run_policy

    config = PolicyConfig.parse(args.policy, args.backfill)
    platform, workload = _load_inputs(args)
    engine = Engine(platform, workload, energy_accounting=args.energy_accounting, clock=args.clock)
    result = run_policy(engine, config, rng=run_generators(args.seed)[1])
    metrics = headline_metrics(result)
    print(f"{workload.source}: {len(workload.jobs)} jobs on {platform.source} "
          f"({platform.nb_machines} cores), policy {config}")
    for line in metrics.lines():
        print("  " + line)
    if args.energy_accounting != "batsim":
        print(f"  energy accounting: {args.energy_accounting} (not what real Batsim reports)")
    over = result.overutilization.as_json()["summary"]
    print(f"  blocked passes: {over['core_shortages']} for cores, {over['memory_shortages']} for memory; "
          f"bandwidth over-subscribed on {over['oversubscribed_processors']} processors "
          f"for {over['oversubscribed_processor_seconds']:,.0f} processor-seconds")
    # A first run also pays numba's one-off compilation (cached for later runs).
    print(f"  simulated in {result.wall_seconds:.3f} s "
          f"({len(workload.jobs) / max(result.wall_seconds, 1e-9):,.0f} jobs/s)")
    if args.out:
        write_outputs(result, args.out)
        resolved = {
            "command": "simulate", "platform": os.path.abspath(args.platform),
            "hierarchy": os.path.abspath(args.hierarchy) if args.hierarchy else None,
            "workload": os.path.abspath(args.workload), "policy": f"{config.job_key}:{config.core_key}",
            "backfill": config.backfill, "nb_jobs": args.nb_jobs, "seed": args.seed,
            "runtime_model": args.runtime_model, "energy_accounting": args.energy_accounting, "clock": args.clock,
            "hdeeprm_version": __version__,
            "metrics": metrics.as_dict(),
        }
        with open(os.path.join(args.out, "run_config.json"), "w") as f:
            json.dump(resolved, f, indent=2)
            f.write("\n")
        print(f"  outputs in {args.out}")
    return 0


def cmd_replay(args) -> int:
    from .core.outputs import write_outputs
    from .metrics import headline_metrics
    from .replay import replay

    result = replay(args.scenario)
    write_outputs(result, args.out)
    metrics = headline_metrics(result)
    print(f"replayed {args.scenario}: makespan {metrics.makespan:.6f} s, "
          f"energy {metrics.consumed_joules:.6f} J; outputs in {args.out}")
    return 0


def cmd_convert(args) -> int:
    from .workload import write_batsim_workload

    args.workload = args.trace
    platform, workload = _load_inputs(args)
    write_batsim_workload(workload, args.out)
    print(f"{args.trace}: wrote {len(workload.jobs)} jobs for {platform.nb_machines} cores to {args.out}")
    return 0


def _with_backfill(config, backfill: str | None):
    if backfill is None:
        return config
    import dataclasses

    return dataclasses.replace(config, backfill=None if backfill == "none" else backfill)


def cmd_train(args) -> int:
    from .experiment import ExperimentConfig
    from .evaluation import evaluate, print_table
    from .train import train

    config = _with_backfill(ExperimentConfig.load(args.experiment, episodes=args.episodes, algorithm=args.algorithm,
                                                  seed=args.seed, rollout_batch=args.rollout_batch), args.backfill)
    out = args.out or os.path.join("runs", os.path.splitext(os.path.basename(args.experiment))[0])
    summary = train(config, out, init=args.init, tensorboard=args.tensorboard, workers=args.workers,
                    engine=args.engine, address=args.address)
    print(f"trained {config.algorithm} for {config.episodes} episodes in {summary['wall_seconds']:.1f} s; "
          f"outputs in {out}")
    if not args.no_evaluate:
        if summary.get("validation_best") is not None:
            print(f"checkpoint chosen on the validation windows: {summary['checkpoint']} "
                  f"(mean objective {summary['validation_best']:.6g})")
        rows = evaluate(config, summary["checkpoint"], out_dir=out, progress=None)
        print_table(rows, config)
    return 0


def cmd_evaluate(args) -> int:
    from .experiment import ExperimentConfig
    from .evaluation import evaluate, print_table

    config = _with_backfill(ExperimentConfig.load(args.experiment, eval_episodes=args.episodes, seed=args.seed),
                            args.backfill)
    rows = evaluate(config, args.model, out_dir=args.out, progress=None)
    print_table(rows, config)
    return 0


def cmd_crossval(args) -> int:
    from .crossval import crossvalidate, crossvalidate_options
    from .errors import ConfigError
    from .policies import PolicyConfig

    if args.grid:
        return _crossval_grid(args)
    given = [flag for flag, value in (("--engine", args.engine != "local"), ("--workers", args.workers),
                                      ("--address", args.address), ("--markdown", args.markdown)) if value]
    if given:
        raise ConfigError(f"{given[0]} goes with --grid")
    args.network = args.network or "zero-latency"
    args.timeout = 120.0 if args.timeout is None else args.timeout
    args.policy = args.policy or "first:first_fit"
    options = {"batsim": args.batsim, "timeout_s": args.timeout, "network": args.network}
    if args.network == "links":
        from .platform import read_platform_description

        if not (args.platform or "").endswith(".json"):
            raise ConfigError("--network links needs an HDeepRM platform JSON (--platform)")
        options["description"] = read_platform_description(args.platform)
    explain = not args.no_explain
    if args.options:
        if args.platform:
            raise ConfigError("give either an options file or --platform, not both (the options "
                              "file names its platform)")
        report = crossvalidate_options(args.options, args.out, model=args.model, workload=args.workload,
                                       backend_options=options, explain_differences=explain,
                                       clock=args.clock)
        what = args.options + (f" with workload {args.workload}" if args.workload else "")
    else:
        if not (args.platform and args.workload):
            raise ConfigError("crossval needs an options file, or --platform and --workload")
        policy = PolicyConfig.parse(args.policy, args.backfill)
        report = crossvalidate(args.platform, args.hierarchy, args.workload, policy, args.out,
                               seed=args.seed, nb_jobs=args.nb_jobs, runtime_model=args.runtime_model,
                               backend_options=options, explain_differences=explain, clock=args.clock)
        what = f"{args.workload} on {args.platform}, policy {policy}"
    print(f"crossval: {what}")
    print(report.summary())
    print(f"outputs in {args.out} (embedded/, batsim/, crossval.json, crossval_differences.csv"
          + (", replay/, crossval_delivery.csv)" if report.explanation is not None else ")"))
    return 0 if report.agree else 1


def _crossval_grid(args) -> int:
    """``crossval --grid``: the grid's cells on both backends (hdeeprm.crossval.run_grid)."""
    from .crossval import grid_cells, print_grid_report, run_grid
    from .errors import ConfigError
    from .parallel import make_engine
    from .sweep import GridConfig

    given = [flag for flag, value in (
        ("an options file", args.options), ("--platform", args.platform), ("--hierarchy", args.hierarchy),
        ("--workload", args.workload), ("--policy", args.policy), ("--backfill", args.backfill),
        ("--model", args.model), ("--nb-jobs", args.nb_jobs), ("--seed", args.seed != 0),
        ("--runtime-model", args.runtime_model != "real"), ("--clock exact", args.clock != "simgrid")) if value]
    if given:
        raise ConfigError(f"--grid: {given[0]} does not go with a grid; its platforms, workloads, "
                          "policies, seeds and options files are in the grid file")
    grid = GridConfig.load(args.grid).with_backend(batsim=args.batsim, timeout=args.timeout, network=args.network)
    explain = not args.no_explain
    grid_cells(grid, explain)  # validate before starting any worker
    with make_engine(args.engine, args.workers, args.address) as engine:
        report = run_grid(grid, args.out, engine, explain_differences=explain)
    print_grid_report(report, markdown=args.markdown)
    return report.exit_status


COMMANDS = {"simulate": cmd_simulate, "replay": cmd_replay, "convert": cmd_convert,
            "train": cmd_train, "evaluate": cmd_evaluate, "crossval": cmd_crossval}


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return report_errors(f"hdeeprm {args.command}", lambda: COMMANDS[args.command](args))


if __name__ == "__main__":
    sys.exit(main())
