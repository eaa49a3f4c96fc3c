"""The ``hdeeprm`` command line.

Subcommands:
  simulate  run a classic policy on a platform and a workload (SWF trace or Batsim JSON)
  replay    re-simulate a recorded Batsim run (its transcript's decisions) on the engine
  convert   turn an SWF trace into a Batsim JSON workload for a platform
  train     train an RL agent on an experiment, then compare it with the classic policies
  evaluate  compare an agent checkpoint with the classic policies, paired on held-out windows
  crossval  run one experiment on the embedded engine and on real Batsim, and compare
            (--grid: every cell of a sweep grid, with a summary)
  sweep     evaluate a grid of policies, platforms, workloads and seeds in parallel
  plot, compare, report, describe, jobstat, clean   look at runs and workloads
  compile   compile the simulation kernels now (otherwise the first run that needs them does)

User mistakes (bad files, unknown options) are reported in one line, with exit status 2.
"""

from __future__ import annotations

import argparse
import sys

from hdeeprm import __version__
from hdeeprm.common.errors import report_errors

# Command modules, each adding its subcommands (argparse only: the work is imported when run).
COMMAND_GROUPS = ("simulate", "train", "crossval", "sweep", "analysis", "compilation")


def build_parser() -> tuple[argparse.ArgumentParser, dict]:
    """The ``hdeeprm`` parser and {command name: handler}."""
    import importlib

    parser = argparse.ArgumentParser(prog="hdeeprm", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"hdeeprm {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    commands: dict = {}
    for group in COMMAND_GROUPS:
        commands.update(importlib.import_module(f"hdeeprm.cli.{group}").add_subcommands(sub))
    return parser, commands


def main(argv: list[str] | None = None) -> int:
    parser, commands = build_parser()
    args = parser.parse_args(argv)
    return report_errors(f"hdeeprm {args.command}", lambda: commands[args.command](args))


if __name__ == "__main__":
    sys.exit(main())
