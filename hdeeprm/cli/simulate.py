"""``hdeeprm simulate``, ``replay`` and ``convert``: classic policies on the embedded engine,
recorded Batsim runs re-simulated, and SWF traces turned into Batsim workloads."""

from __future__ import annotations

import json
import os
import sys
import time

from hdeeprm import __version__
from hdeeprm.cli.arguments import backfill_and_shutdown_args, conversion_args, platform_arg, workload_arg
from hdeeprm.cli.compilation import classic_parts, compile_first
from hdeeprm.common.seeding import run_generators
from hdeeprm.simulation.keys import ALL_CORE_KEYS, ALL_JOB_KEYS

# Where the compiled fast path is not built yet, runs of at most this many jobs use the
# reference engine instead: it gives the same outputs at some 6,000 jobs/s (gaia, 2,280
# cores), so 20,000 jobs take a few seconds, where building the fast path takes 1-2 minutes.
REFERENCE_WHEN_COLD_MAX_JOBS = 20_000


def add_subcommands(sub) -> dict:
    """Add simulate, replay and convert to the ``hdeeprm`` subparsers; returns {name: handler}."""
    sim = sub.add_parser("simulate", help="run a classic policy on the embedded engine")
    sim.add_argument("--platform", required=True, type=platform_arg,
                     help="platform JSON or SimGrid XML, or a bundled name (das2, gaia, learning, mc2, pik, ricc)")
    sim.add_argument("--hierarchy", help="hierarchy.json describing nodes and processors of an XML platform")
    sim.add_argument("--workload", required=True, type=workload_arg,
                     help="Batsim JSON workload or SWF trace (.swf, .swf.gz), or a bundled trace's name")
    sim.add_argument("--policy", default="first:first_fit",
                     help=f"JOBKEY:COREKEY (default first:first_fit). Job keys: {', '.join(ALL_JOB_KEYS)}. "
                          f"Core keys: {', '.join(ALL_CORE_KEYS)}")
    backfill_and_shutdown_args(sim, "")
    sim.add_argument("--out", help="folder for Batsim-style outputs (default: print metrics only)")
    sim.add_argument("--clock", choices=("simgrid", "exact"), default="simgrid",
                     help="simgrid (default): SimGrid's floating-point steps and Batsim's message "
                          "grouping, as real Batsim; exact: each end at start + work / speed")
    sim.add_argument("--energy-accounting", choices=("batsim", "ideal"), default="batsim",
                     help="batsim (default): SimGrid's, which bills machines at p-state 0 until "
                          "their first energy update, as real Batsim does; ideal: each machine at "
                          "its own p-state from t=0 (no real Batsim run gives it)")
    conversion_args(sim)

    rep = sub.add_parser("replay", help="re-simulate a recorded Batsim run on the embedded engine")
    rep.add_argument("scenario", help="folder with platform.xml, workload.json and transcript.jsonl[.gz] "
                                         "(and hierarchy.json if the platform has one)")
    rep.add_argument("--out", required=True, help="folder for the outputs")

    conv = sub.add_parser("convert", help="convert an SWF trace into a Batsim JSON workload")
    conv.add_argument("trace", type=workload_arg, help="SWF trace (.swf or .swf.gz), or a bundled trace's name")
    conv.add_argument("--platform", required=True, type=platform_arg, help="platform the workload is for")
    conv.add_argument("--hierarchy", help="hierarchy.json for an XML platform")
    conv.add_argument("--out", required=True, help="Batsim JSON workload to write")
    conversion_args(conv)
    return {"simulate": cmd_simulate, "replay": cmd_replay, "convert": cmd_convert}


def _load_inputs(args):
    from hdeeprm.inputs.platform import load_platform
    from hdeeprm.inputs.workload import ConversionOptions, load_workload

    platform = load_platform(args.platform, hierarchy=args.hierarchy)
    options = ConversionOptions(
        nb_jobs=args.nb_jobs,
        runtime_model=args.runtime_model,
        reference_speed_gflops=platform.reference_speed_gflops,
        max_res=platform.nb_machines,
    )
    workload = load_workload(args.workload, options=options, rng=run_generators(args.seed)[0])
    return platform, workload


def _check_out(out: str | None, what: str) -> None:
    """Refuse an empty --out: simulate would silently write nothing, replay and convert would
    fail on the current folder."""
    if out is not None and not out.strip():
        from hdeeprm.common.errors import ConfigError

        raise ConfigError(f"--out {out!r}: empty; expected {what}")


def cmd_simulate(args) -> int:
    from hdeeprm.common.manifest import command_line, write_manifest
    from hdeeprm.simulation.engine import Engine
    from hdeeprm.simulation.fastsim import compiled_on_disk
    from hdeeprm.simulation.metrics import headline_metrics
    from hdeeprm.simulation.outputs import write_outputs, write_users
    from hdeeprm.simulation.policies import PolicyConfig, run_policy

    started = time.perf_counter()
    _check_out(args.out, "a folder for the outputs")
    config = PolicyConfig.parse(args.policy, args.backfill, args.shutdown)
    platform, workload = _load_inputs(args)
    jobs = workload.compile()
    reading = time.perf_counter() - started

    parts = classic_parts(config.shutdown is not None)
    fast = compiled_on_disk(parts) or len(jobs) > REFERENCE_WHEN_COLD_MAX_JOBS

    def warm_up():  # the first few jobs, with their own generator: the run's draws stay the same
        few = jobs.window(0, min(50, len(jobs)))
        run_policy(Engine(platform, few, energy_accounting=args.energy_accounting, clock=args.clock), config,
                   rng=run_generators(args.seed)[1], fast=None if fast else False)

    t0 = time.perf_counter()
    compiled = None
    if fast:
        compiled = compile_first(warm_up, always=True, parts=parts)
    else:
        print(f"hdeeprm: the compiled fast path is not built on this machine yet; {len(jobs):,} jobs run sooner "
              f"on the reference engine (same outputs) than it builds (1 to 2 minutes, once). It is built by "
              f"the first run of more than {REFERENCE_WHEN_COLD_MAX_JOBS:,} jobs, or now by `hdeeprm compile`.",
              file=sys.stderr, flush=True)
        warm_up()  # the reference engine's own kernels: a few seconds to compile, kept out of the run's time
    kernels = time.perf_counter() - t0
    engine = Engine(platform, jobs, workload_name=workload.name, energy_accounting=args.energy_accounting,
                    clock=args.clock)  # the run's clock starts here
    result = run_policy(engine, config, rng=run_generators(args.seed)[1], fast=None if fast else False)
    metrics = headline_metrics(result)
    print(f"{workload.source}: {len(workload.jobs):,} jobs on {platform.source} "
          f"({platform.nb_machines:,} cores), policy {config}")
    for line in _metric_lines(metrics):
        print("  " + line)
    if args.energy_accounting != "batsim":
        print(f"  energy accounting: {args.energy_accounting} (not what real Batsim reports)")
    over = result.overutilization.as_json()["summary"]
    print(f"  blocked passes: {over['core_shortages']} for cores, {over['memory_shortages']} for memory; "
          f"bandwidth over-subscribed on {over['oversubscribed_processors']} processors "
          f"for {over['oversubscribed_processor_seconds']:,.0f} processor-seconds")
    print(f"  simulated in {result.wall_seconds:.3f} s "
          f"({len(workload.jobs) / max(result.wall_seconds, 1e-9):,.0f} jobs/s)")
    writing = 0.0
    if args.out:
        t0 = time.perf_counter()
        write_outputs(result, args.out)
        write_users(workload, args.out)  # out_users.csv, for per-user metrics, when the jobs name users
        writing = time.perf_counter() - t0
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
        write_manifest(args.out, command_line(args), {"platform": args.platform, "hierarchy": args.hierarchy,
                                                      "workload": args.workload}, {"seed": args.seed},
                       time.perf_counter() - started)
        print(f"  outputs in {args.out}")
    loading = "compiling the kernels (once per machine)" if compiled is not None else (
        "loading the compiled kernels" if fast else "compiling the reference engine's kernels")
    print(f"  time: {reading:.2f} s reading the inputs, {kernels:.2f} s {loading}, "
          f"{result.wall_seconds:.2f} s simulating" + (f", {writing:.2f} s writing the outputs" if args.out else "")
          + f"; {time.perf_counter() - started:.2f} s in all (without starting Python and importing)")
    return 0


def _metric_lines(metrics) -> list[str]:
    """The headline metrics for people (rounded; run_config.json and out_schedule.csv keep
    every digit)."""
    from hdeeprm.analysis.tables import format_count, format_number, format_seconds
    from hdeeprm.simulation.metrics import BOUNDED_SLOWDOWN_THRESHOLD

    return [
        f"jobs                  {format_count(metrics.nb_jobs)} ({format_count(metrics.nb_finished)} ran, "
        f"{format_count(metrics.nb_rejected)} rejected, {format_count(metrics.nb_walltime_killed)} reached their "
        f"walltime)",
        f"makespan              {format_seconds(metrics.makespan)} s",
        f"mean waiting time     {format_seconds(metrics.mean_waiting_time)} s",
        f"mean slowdown         {format_number(metrics.mean_slowdown, 5)}",
        f"mean bounded slowdown {format_number(metrics.mean_bounded_slowdown, 5)} "
        f"(bound {BOUNDED_SLOWDOWN_THRESHOLD:g} s)",
        f"utilization           {format_number(metrics.utilization, 5)}",
        f"energy                {metrics.consumed_joules:,.0f} J",
    ]


def cmd_replay(args) -> int:
    from hdeeprm.inputs.workload import read_batsim_workload
    from hdeeprm.simulation.metrics import headline_metrics
    from hdeeprm.simulation.outputs import write_outputs, write_users
    from hdeeprm.simulation.replay import find_scenario, replay

    _check_out(args.out, "a folder for the outputs")
    result = replay(args.scenario)
    write_outputs(result, args.out)
    write_users(read_batsim_workload(find_scenario(args.scenario).workload), args.out)
    metrics = headline_metrics(result)
    print(f"replayed {args.scenario}: makespan {metrics.makespan:.6f} s, "
          f"energy {metrics.consumed_joules:.6f} J; outputs in {args.out}")
    return 0


def cmd_convert(args) -> int:
    from hdeeprm.inputs.workload import write_batsim_workload

    _check_out(args.out, "the Batsim JSON workload file to write")
    args.workload = args.trace
    platform, workload = _load_inputs(args)
    write_batsim_workload(workload, args.out)
    print(f"{args.trace}: wrote {len(workload.jobs)} jobs for {platform.nb_machines} cores to {args.out}")
    return 0

