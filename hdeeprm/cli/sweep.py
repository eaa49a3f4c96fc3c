"""``hdeeprm sweep``: a grid of policies, platforms, workloads and seeds, run in parallel."""

from __future__ import annotations

from hdeeprm.cli.arguments import add_backend_args, add_engine_args


def add_subcommands(sub) -> dict:
    """Add ``sweep`` to the ``hdeeprm`` subparsers; returns {name: handler}."""
    sw = sub.add_parser("sweep", help="evaluate a grid of policies, platforms, workloads and seeds in parallel",
                        description="Evaluate a grid (platforms x workloads x overrides x policies x seeds); "
                                    "cells already in --out are skipped, so an interrupted sweep resumes.")
    sw.add_argument("grid", help="grid JSON file (see hdeeprm/data/grids/quickstart-pairs.json)")
    sw.add_argument("--out", required=True, help="output folder (cells/, results.csv)")
    add_backend_args(sw)
    add_engine_args(sw)
    return {"sweep": cmd_sweep}


def cmd_sweep(args) -> int:
    from hdeeprm.common.parallel import make_engine
    from hdeeprm.rl.sweep import GridConfig, print_summary, run_sweep

    grid = GridConfig.load(args.grid).with_backend(args.backend, args.batsim, args.timeout)
    grid.cells()  # validate before starting any worker
    with make_engine(args.engine, args.workers, args.address) as engine:
        report = run_sweep(grid, args.out, engine)
    print_summary(report)
    return 1 if report.failed else 0
