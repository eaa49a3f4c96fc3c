"""Arguments shared by several commands: platforms, SWF conversion, simulators and worker engines."""

from __future__ import annotations

import argparse

from hdeeprm.backends import BACKENDS
from hdeeprm.common.parallel import ENGINES


def workload_arg(value: str) -> str:
    """A workload path, or the file name of a bundled trace (``kth-sp2-head.swf.gz``), as
    experiment files and HeteroEnv take it (a file of that name in the working directory wins)."""
    from pathlib import Path

    from hdeeprm.common.bundled import locate

    return locate(Path(), value, "workload")


def platform_arg(value: str) -> str:
    """A platform path, or a bundled or ``<N>x<node type>`` name, resolved to a path."""
    from hdeeprm.inputs.platform import resolve_platform_name

    return resolve_platform_name(value)


def conversion_args(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("workload and random draws")
    group.add_argument("--nb-jobs", type=int, help="keep the first N usable jobs of the trace")
    group.add_argument("--seed", type=int, default=0,
                       help="seed of the run's random draws: conversion, random keys (default 0)")
    group.add_argument("--runtime-model", choices=("real", "hdeeprm"), default="real",
                       help="actual work from the trace's run time (real) or HDeepRM's sampled over-estimation "
                            "factors (hdeeprm; jobs still have a walltime of their requested time: the original's "
                            "model, without walltimes, is hdeeprm-launch's default)")


def backfill_and_shutdown_args(parser: argparse.ArgumentParser, where: str) -> None:
    """--backfill and --shutdown of the classic policies; ``where`` ends their help (which
    backends or engine they run on)."""
    parser.add_argument("--backfill", choices=("easy", "conservative"),
                        help=f"EASY or conservative backfilling on requested walltimes{where}")
    parser.add_argument("--shutdown", type=float, metavar="IDLE_S",
                        help="switch a machine to its sleep p-state after IDLE_S s idle while no job waits, and "
                             "wake sleeping machines when the queue's first job needs them; needs a platform "
                             f"whose hosts declare Batsim sleep_pstates{where}")


def add_backend_args(parser: argparse.ArgumentParser) -> None:
    """--backend, --batsim, --timeout (each replaces the grid file's value)."""
    parser.add_argument("--backend", choices=BACKENDS,
                        help="simulator of every cell: embedded (default) or batsim (real Batsim); "
                             "replaces the grid's 'backend'")
    parser.add_argument("--batsim", metavar="PATH", help="batsim executable (default: the grid's 'batsim', "
                                                          "then $HDEEPRM_BATSIM, then PATH)")
    parser.add_argument("--timeout", type=float, help="longest wait for a Batsim message, s (default: the "
                                                      "grid's 'timeout', or 120)")


def add_engine_args(parser: argparse.ArgumentParser,
                    workers_help: str = "parallel workers (default: 1 for local, the cluster's CPUs for ray)") -> None:
    """--engine, --workers, --address (shared by sweep and train)."""
    parser.add_argument("--engine", choices=ENGINES, default="local",
                        help="local: worker processes on this machine (default); ray: Ray actors")
    parser.add_argument("--workers", type=int, help=workers_help)
    parser.add_argument("--address", help="Ray cluster address (e.g. auto, or HOST:6379); default: a local Ray")
