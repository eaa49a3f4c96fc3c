"""``hdeeprm sweep``: a grid of policies, platforms, workloads and seeds, run in parallel."""

from __future__ import annotations

import time
from pathlib import Path

from hdeeprm.cli.arguments import add_backend_args, add_engine_args


def add_subcommands(sub) -> dict:
    """Add ``sweep`` to the ``hdeeprm`` subparsers; returns {name: handler}."""
    sw = sub.add_parser("sweep", help="evaluate a grid of policies, platforms, workloads and seeds in parallel",
                        description="Evaluate every cell of a grid (platforms x workloads x overrides x networks "
                                    "x (policies + checkpoints) x seeds) on the experiment's evaluation windows, "
                                    "as hdeeprm evaluate does; cells already in --out are skipped, so an "
                                    "interrupted sweep resumes. Prints the policies ranked by mean return over "
                                    "the seeds; exit status 1 when a cell failed.")
    sw.add_argument("grid", help="grid JSON file (see hdeeprm/data/grids/quickstart-pairs.json)")
    sw.add_argument("--out", required=True,
                    help="output folder: cells/, results.csv (one row per cell), errors/, sweep.json and "
                         "manifest.json (how the sweep was run)")
    add_backend_args(sw)
    add_engine_args(sw)
    return {"sweep": cmd_sweep}


def _manifest_inputs(grid, resolved) -> dict:
    """The sweep's input files, for manifest.json."""
    candidate = grid.base_dir / grid.experiment
    inputs = {"grid": grid.source, "experiment": str(candidate) if candidate.exists() else grid.experiment,
              "platforms": [path for _, path in resolved.platforms],
              "workloads": [path for _, path in resolved.workloads]}
    checkpoints = [path for _, path in resolved.policies if path is not None]
    if checkpoints:
        inputs["checkpoints"] = checkpoints
    return inputs


def cmd_sweep(args) -> int:
    from hdeeprm.analysis.tables import print_sweep_summary
    from hdeeprm.common.manifest import command_line, write_manifest
    from hdeeprm.common.parallel import make_engine
    from hdeeprm.rl.sweep import GridConfig, run_sweep

    started, t0 = time.time(), time.perf_counter()
    grid = GridConfig.load(args.grid).with_backend(args.backend, args.batsim, args.timeout)
    grid.cells()  # validate before starting any worker
    resolved = grid.resolve()
    argv = command_line(args)
    try:
        with make_engine(args.engine, args.workers, args.address) as engine:
            report = run_sweep(grid, args.out, engine)
    finally:  # also for an interrupted sweep, once results.csv holds the cells done
        if (Path(args.out) / "results.csv").is_file():
            write_manifest(args.out, argv, _manifest_inputs(grid, resolved), {"seeds": list(resolved.seeds)},
                           time.perf_counter() - t0, started=started,
                           extra={"engine": args.engine, "workers": args.workers, "backend": grid.backend})
    print_sweep_summary(report)
    return 1 if report.failed else 0
