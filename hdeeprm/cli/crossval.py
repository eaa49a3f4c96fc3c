"""``hdeeprm crossval``: one experiment, or every cell of a grid, on the embedded engine and on
real Batsim, with a report of where they differ."""

from __future__ import annotations

import argparse

from hdeeprm.cli.arguments import (
    add_engine_args,
    backfill_and_shutdown_args,
    conversion_args,
    platform_arg,
    workload_arg,
)


def add_subcommands(sub) -> dict:
    """Add crossval to the ``hdeeprm`` subparsers; returns {name: handler}."""
    cv = sub.add_parser("crossval", help="run one experiment on the embedded engine and on real Batsim, "
                                         "and report where they differ")
    cv.add_argument("options", nargs="?", help="an original HDeepRM options file (instead of "
                                               "--platform/--workload/--policy)")
    cv.add_argument("--grid", metavar="GRID", help="cross-validate every cell of a sweep grid file (see "
                                                   "hdeeprm sweep) into --out/cells/; a rerun skips the cells "
                                                   "already done")
    cv.add_argument("--platform", type=platform_arg, help="platform JSON or SimGrid XML, or a bundled name")
    cv.add_argument("--hierarchy", help="hierarchy.json for an XML platform")
    cv.add_argument("--workload", type=workload_arg, help="Batsim JSON workload or SWF trace, or a bundled trace's name (with an options file: "
                                       "replaces its trace, as hdeeprm-launch -cw does)")
    cv.add_argument("-cw", "--customworkload", dest="workload", help=argparse.SUPPRESS)
    cv.add_argument("--policy", help="JOBKEY:COREKEY (default first:first_fit)")
    backfill_and_shutdown_args(cv, ", on both backends")
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
    conversion_args(cv)
    add_engine_args(cv, "with --grid: parallel workers (default: 1 for local, the cluster's CPUs for ray)")
    return {"crossval": cmd_crossval}


def cmd_crossval(args) -> int:
    from hdeeprm.analysis.crossval import crossvalidate, crossvalidate_options
    from hdeeprm.common.errors import ConfigError
    from hdeeprm.simulation.policies import PolicyConfig

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
        from hdeeprm.inputs.platform import read_platform_description

        if not (args.platform or "").endswith(".json"):
            raise ConfigError("--network links needs an HDeepRM platform JSON (--platform)")
        options["description"] = read_platform_description(args.platform)
    explain = not args.no_explain
    if args.options:
        if args.platform:
            raise ConfigError("give either an options file or --platform, not both (the options "
                              "file names its platform)")
        if args.shutdown is not None:
            raise ConfigError("--shutdown goes with --platform/--workload/--policy, not an options file")
        report = crossvalidate_options(args.options, args.out, model=args.model, workload=args.workload,
                                       backend_options=options, explain_differences=explain,
                                       clock=args.clock)
        what = args.options + (f" with workload {args.workload}" if args.workload else "")
    else:
        if not (args.platform and args.workload):
            raise ConfigError("crossval needs an options file, or --platform and --workload")
        policy = PolicyConfig.parse(args.policy, args.backfill, args.shutdown)
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
    """``crossval --grid``: the grid's cells on both backends (hdeeprm.analysis.crossval.run_grid)."""
    from hdeeprm.analysis.crossval import grid_cells, print_grid_report, run_grid
    from hdeeprm.common.errors import ConfigError
    from hdeeprm.common.parallel import make_engine
    from hdeeprm.rl.sweep import GridConfig

    given = [flag for flag, value in (
        ("an options file", args.options), ("--platform", args.platform), ("--hierarchy", args.hierarchy),
        ("--workload", args.workload), ("--policy", args.policy), ("--backfill", args.backfill),
        ("--shutdown", args.shutdown is not None),
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
