"""The original HDeepRM's analysis scripts, kept as aliases of today's commands.

    hdeeprm-visual VISUALIZATION [-s FILE] [--run DIR]   hdeeprm plot VISUALIZATION DIR [-o FILE --format svg]
    hdeeprm-metrics RES1 RES2 [-n1 NAME] [-n2 NAME] [-s FILE]
                                                         hdeeprm compare RES1 RES2 -n NAME1 NAME2 [-o FILE --format svg]
    hdeeprm-jobstat WORKLOAD FIELD STAT                  hdeeprm jobstat WORKLOAD FIELD STAT
    hdeeprm-clean [-s|--soft] [--dry-run]                hdeeprm clean . [--soft] [--dry-run]

Each script takes the original's arguments (hdeeprm/cmd.py of HDeepRM 0.3), builds the
equivalent ``hdeeprm`` command line and runs it through :func:`hdeeprm.cli.main.main`: the work,
the outputs and the one-line errors (exit status 2) are the ``hdeeprm`` command's.

Differences, on purpose: there is no window (figures are drawn headless): without ``-s`` a
figure goes where ``hdeeprm plot`` / ``compare`` put it and the path is printed; ``-s`` still
writes SVG, whatever the file's name (one ending in .png or .pdf is refused). ``hdeeprm-visual`` reads the run in the current folder
(``--run DIR`` for another) and its title from the run's configuration (``options.json`` among
others). ``hdeeprm-clean`` removes only files hdeeprm wrote, not everything but options.json.
"""

from __future__ import annotations

import argparse
import difflib
from collections.abc import Callable

#: The original's visualisations and today's ``hdeeprm plot`` kind for each (None: none left).
ORIGINAL_VISUALIZATIONS: dict[str, str | None] = {
    "queue_size": "queue_size",
    "utilization": "utilization",
    "lifecycle": "lifecycle",
    "gantt": "gantt",
    "gantt_no_label": "gantt_no_label",
    "core_bubbles": "core_bubbles",
    "mem_bubbles": "mem_bubbles",
    "mem_bw_overutilization": "mem_bw_overutilization",
    "losses": "losses",
    "rewards": "rewards",
    "action_preferences": "action_preferences",
}
#: The original's defaults for hdeeprm-metrics' two names.
DEFAULT_NAMES = ("A1", "A2")


class _Parser(argparse.ArgumentParser):
    """argparse, with its mistakes reported on one line (exit status 2) as hdeeprm's are."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _parser(prog: str, alias: str, more: str = "") -> _Parser:
    return _Parser(prog=prog, description=f"Alias of `{alias}` (the original HDeepRM's {prog}).{more}",
                   formatter_class=argparse.RawDescriptionHelpFormatter)


def _svg(path: str | None) -> list[str]:
    """The original's ``-s FILE``: SVG, whatever the file is called, but not into a file named
    as another figure format (``x.png``)."""
    from pathlib import Path

    from hdeeprm.analysis.plots import FORMATS
    from hdeeprm.common.errors import ConfigError

    if path is None:
        return []
    ext = Path(path).suffix.lower().lstrip(".")
    if ext in FORMATS and ext != "svg":
        raise ConfigError(f"-s {path}: -s writes SVG, as the original did; name the file .svg "
                          f"(for {ext.upper()}, hdeeprm plot / compare -o FILE)")
    return ["-o", path, "--format", "svg"]


def _run(prog: str, build: Callable[[], list[str]]) -> int:
    """Build the ``hdeeprm`` command line (a mistake found on the way: one line, status 2), then
    run it."""
    from hdeeprm.cli.main import main as hdeeprm_main
    from hdeeprm.common.errors import report_errors

    built: list[list[str]] = []
    status = report_errors(prog, lambda: built.append(build()) or 0)
    return status or hdeeprm_main(built[0], prog=prog)


# ---------------------------------------------------------------------------- hdeeprm-visual


def plot_kind(name: str) -> str:
    """Today's ``hdeeprm plot`` kind for an original visualisation name (today's kinds are taken
    as they are); a one-line ConfigError naming the nearest kind otherwise."""
    from hdeeprm.analysis.plots import KINDS
    from hdeeprm.common.errors import ConfigError

    kind = ORIGINAL_VISUALIZATIONS.get(name, name)
    if kind in KINDS:
        return kind
    known = list(KINDS)
    nearest = (difflib.get_close_matches(name, known, n=1, cutoff=0.0) or known)[0]
    if name in ORIGINAL_VISUALIZATIONS:
        raise ConfigError(f"visualization {name!r} of the original HDeepRM has no equivalent in hdeeprm plot; "
                          f"the nearest is {nearest!r}")
    raise ConfigError(f"unknown visualization {name!r}; the nearest is {nearest!r} (expected one of "
                      f"{', '.join(ORIGINAL_VISUALIZATIONS)}, or another kind of hdeeprm plot: "
                      f"{', '.join(k for k in known if k not in ORIGINAL_VISUALIZATIONS)})")


def visual_parser() -> _Parser:
    parser = _parser("hdeeprm-visual", "hdeeprm plot VISUALIZATION .",
                     "\n\nDraws a figure of the run in the current folder (headless: no window).")
    parser.add_argument("visualization", metavar="VISUALIZATION",
                        help=f"the original's {', '.join(ORIGINAL_VISUALIZATIONS)}; or any other kind "
                             "of `hdeeprm plot --help`")
    parser.add_argument("-s", "--save", metavar="FILE",
                        help="write the figure to FILE, as SVG (default: RUN/figures/VISUALIZATION.png; "
                             "the original showed a window)")
    parser.add_argument("--run", metavar="DIR", default=".",
                        help="run folder (default: the current folder, as in the original)")
    return parser


def visual_argv(args: argparse.Namespace) -> list[str]:
    return ["plot", *_svg(args.save), "--", plot_kind(args.visualization), args.run]


def visual(argv: list[str] | None = None) -> int:
    args = visual_parser().parse_args(argv)
    return _run("hdeeprm-visual", lambda: visual_argv(args))


# ---------------------------------------------------------------------------- hdeeprm-metrics


def metrics_parser() -> _Parser:
    parser = _parser("hdeeprm-metrics", "hdeeprm compare RES1 RES2 -n NAME1 NAME2")
    parser.add_argument("res1", metavar="RES1", help="out_schedule.csv of run 1 (or its run folder)")
    parser.add_argument("res2", metavar="RES2", help="out_schedule.csv of run 2 (or its run folder)")
    parser.add_argument("-n1", "--name1", default=DEFAULT_NAMES[0], help="name of run 1 (default A1)")
    parser.add_argument("-n2", "--name2", default=DEFAULT_NAMES[1], help="name of run 2 (default A2)")
    parser.add_argument("-s", "--save", metavar="FILE",
                        help="write the figure to FILE, as SVG (default: compare.png in the current folder; "
                             "the original showed a window)")
    return parser


def metrics_argv(args: argparse.Namespace) -> list[str]:
    return ["compare", *_svg(args.save), "-n", args.name1, args.name2, "--", args.res1, args.res2]


def metrics(argv: list[str] | None = None) -> int:
    args = metrics_parser().parse_args(argv)
    return _run("hdeeprm-metrics", lambda: metrics_argv(args))


# ---------------------------------------------------------------------------- hdeeprm-jobstat


def jobstat_parser() -> _Parser:
    from hdeeprm.analysis.runs import JOBSTAT_FIELDS, JOBSTAT_STATS

    parser = _parser("hdeeprm-jobstat", "hdeeprm jobstat WORKLOAD FIELD STAT")
    parser.add_argument("workload", metavar="WORKLOAD", help="Batsim JSON workload (or SWF trace)")
    parser.add_argument("datafield", metavar="FIELD", choices=list(JOBSTAT_FIELDS),
                        help="req_time (s), size (machines), mem (MB per core), mem_bw (GB/s per core)")
    parser.add_argument("statistic", metavar="STAT", choices=list(JOBSTAT_STATS), help=", ".join(JOBSTAT_STATS))
    return parser


def jobstat_argv(args: argparse.Namespace) -> list[str]:
    return ["jobstat", "--", args.workload, args.datafield, args.statistic]


def jobstat(argv: list[str] | None = None) -> int:
    args = jobstat_parser().parse_args(argv)
    return _run("hdeeprm-jobstat", lambda: jobstat_argv(args))


# ---------------------------------------------------------------------------- hdeeprm-clean


def clean_parser() -> _Parser:
    parser = _parser("hdeeprm-clean", "hdeeprm clean .",
                     "\n\nRemoves only the files hdeeprm wrote in the current folder, recognised by name and "
                     "content,\nand lists the rest: unlike the original, which removed everything but "
                     "options.json,\nit never touches options.json, platform or workload files, traces, agents "
                     "or anything else.")
    parser.add_argument("-s", "--soft", action="store_true",
                        help="also keep the configuration files, the checkpoints and manifest.json")
    parser.add_argument("--dry-run", action="store_true", help="list what would be removed, remove nothing")
    return parser


def clean_argv(args: argparse.Namespace) -> list[str]:
    return ["clean", *(["--soft"] if args.soft else []), *(["--dry-run"] if args.dry_run else []), "--", "."]


def clean(argv: list[str] | None = None) -> int:
    args = clean_parser().parse_args(argv)
    return _run("hdeeprm-clean", lambda: clean_argv(args))

