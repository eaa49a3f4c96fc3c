"""HDeepRM: job scheduling on heterogeneous HPC clusters, simulated.

hdeeprm simulates a cluster (a platform) running a workload (an SWF trace or a
Batsim JSON workload) on an embedded engine that gives real Batsim's results,
schedules its jobs with classic policies or deep-RL agents, trains the agents,
and compares them all, paired, on held-out windows of the workload.

commands:
  simulate  run a classic policy on a platform and a workload
  replay    re-simulate a recorded Batsim run (its transcript) on the engine
  convert   turn an SWF trace into a Batsim JSON workload for a platform
  generate  make a synthetic workload (Lublin-Feitelson model), SWF or JSON
  train     train an RL agent on an experiment, then evaluate it
  evaluate  compare an agent checkpoint with the classic policies, paired
  export    write an agent checkpoint's policy as ONNX, checked against torch
  crossval  run one experiment (or a grid) on the engine and on real Batsim
  sweep     evaluate a grid of policies, platforms, workloads and seeds
  plot      draw a figure of a run (Gantt chart, queue, power, learning...)
  compare   compare the metrics of two or more runs (table and figure)
  report    write one self-contained HTML page of a run
  describe  summarise a workload: jobs, sizes, times, load on a platform
  jobstat   one statistic of one job field of a workload
  clean     remove the files hdeeprm wrote in a run folder, and nothing else
  compile   compile the simulation kernels now, before their first use
  thesis    run one of the original HDeepRM's thesis experiments
  batsim    a drop-in Batsim: run a Batsim scheduler (PyBatsim...) on the engine

`hdeeprm COMMAND --help` describes a command and its options. User mistakes
(bad files, unknown options) are reported in one line, with exit status 2.
"""

from __future__ import annotations

import argparse
import sys

from hdeeprm import __version__
from hdeeprm.common.errors import report_errors

# Command modules, each adding its subcommands (argparse only: the work is imported when run).
COMMAND_GROUPS = ("simulate", "generate", "train", "export", "crossval", "sweep", "analysis", "compilation", "thesis",
                  "batsim_command")


class _TopLevelHelp(argparse.RawDescriptionHelpFormatter):
    """The description as written (its list of commands, one line each), and not argparse's
    own list of the commands again, wrapped over several lines each."""

    def _iter_indented_subactions(self, action):
        return iter(())


def build_parser() -> tuple[argparse.ArgumentParser, dict]:
    """The ``hdeeprm`` parser and {command name: handler}."""
    import importlib

    parser = argparse.ArgumentParser(prog="hdeeprm", description=__doc__, formatter_class=_TopLevelHelp)
    parser.add_argument("--version", action="version", version=f"hdeeprm {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND",
                                help="one of the commands listed above")
    commands: dict = {}
    for group in COMMAND_GROUPS:
        commands.update(importlib.import_module(f"hdeeprm.cli.{group}").add_subcommands(sub))
    return parser, commands


def main(argv: list[str] | None = None, prog: str | None = None) -> int:
    """``prog``: the name errors are reported under (default ``hdeeprm COMMAND``; the
    original's script names for their aliases, hdeeprm.cli.original)."""
    parser, commands = build_parser()
    args = parser.parse_args(argv)
    args.argv = list(argv) if argv is not None else sys.argv[1:]  # for the run folder's manifest.json
    return report_errors(prog or f"hdeeprm {args.command}", lambda: commands[args.command](args))


if __name__ == "__main__":
    sys.exit(main())
