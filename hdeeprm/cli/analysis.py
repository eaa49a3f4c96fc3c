"""Subcommands to look at runs and workloads: plot, compare, report, describe, jobstat, clean.

``add_subcommands`` declares them on the ``hdeeprm`` parser and returns their handlers;
each handler returns the exit status. Mistakes raise HDeepRMError subclasses, which the
command line reports on one line with status 2.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Callable


def add_subcommands(sub) -> dict[str, Callable[[argparse.Namespace], int]]:
    from hdeeprm.analysis.plots import FORMATS, KINDS, STYLES
    from hdeeprm.analysis.runs import JOBSTAT_FIELDS, JOBSTAT_STATS
    from hdeeprm.cli.arguments import workload_arg

    kinds = "\n".join(f"  {k.name:<24}{k.help}" for k in KINDS.values())
    plot = sub.add_parser("plot", help="draw a figure of a run (PNG, SVG or PDF)",
                          formatter_class=argparse.RawDescriptionHelpFormatter,
                          description=f"Draw one figure of a run folder (needs matplotlib).\n\nKINDS:\n{kinds}")
    plot.add_argument("kind", choices=list(KINDS), metavar="KIND", help="figure to draw (the KINDS listed above)")
    plot.add_argument("run_dir", metavar="RUN_DIR", help="folder written by simulate, train, hdeeprm-launch or Batsim")
    _figure_args(plot, "RUN_DIR/figures/KIND[-episode_K].FORMAT", FORMATS, STYLES)
    plot.add_argument("--episode", type=int, help="episode_<K> of a training run (default: the last)")

    cmp = sub.add_parser("compare", help="compare the Batsim metrics of two or more runs (table and figure)",
                         description="Compare the metrics of out_schedule.csv (energy, makespan, slowdowns, "
                                     "turnaround and waiting times) of two or more runs: a table in the terminal, "
                                     "how each run was made when its folder has a manifest.json, each run's "
                                     "fairness across users (Jain's index of per-user mean bounded slowdown, and "
                                     "its worst-served users) when its folder has out_users.csv, and a figure "
                                     "(needs matplotlib; --no-figure for the table alone).")
    cmp.add_argument("runs", nargs="+", metavar="RUN", help="run folders or out_schedule.csv files")
    cmp.add_argument("-n", "--names", nargs="+", metavar="NAME", help="one name per run (default: folder names)")
    _figure_args(cmp, "compare.FORMAT, in the current folder", FORMATS, STYLES)
    cmp.add_argument("--no-figure", action="store_true", help="print the table only (no matplotlib needed)")
    cmp.add_argument("--episode", type=int, help="episode_<K> of training runs (default: the last)")

    rep = sub.add_parser("report", help="write one self-contained HTML page of a run",
                         description="Write one HTML page of a run folder, with nothing to fetch from elsewhere: "
                                     "how the run was made (manifest.json), its headline metrics, per-user "
                                     "metrics (out_users.csv), the evaluation table of a training run, its figures "
                                     "(needs matplotlib) and its configuration.")
    rep.add_argument("run_dir", metavar="RUN_DIR", help="folder written by simulate, train, hdeeprm-launch or Batsim")
    rep.add_argument("-o", "--out", metavar="FILE", help="HTML file (default RUN_DIR/report.html)")
    rep.add_argument("--episode", type=int, help="episode_<K> of a training run (default: the last)")
    rep.add_argument("--svg", action="store_true", help="embed figures as inline SVG instead of PNG")
    rep.add_argument("--no-figures", action="store_true", help="leave the figures out (no matplotlib needed)")

    desc = sub.add_parser("describe", help="summarise a workload: jobs, sizes, times, load on a platform")
    desc.add_argument("workload", metavar="WORKLOAD", type=workload_arg,
                      help="Batsim JSON workload or SWF trace, or a bundled trace's name")
    desc.add_argument("--platform", help="platform (file or bundled name) for the run times of flop-based "
                                         "jobs and the offered load")
    desc.add_argument("--hierarchy", help="hierarchy.json for an XML platform")
    desc.add_argument("--nb-jobs", type=int, help="only the first N jobs")
    desc.add_argument("--seed", type=int, default=0, help="seed of SWF conversion draws (memory bandwidth)")
    desc.add_argument("--figure", metavar="FILE",
                      help="also draw the distributions (PNG, SVG or PDF; needs matplotlib)")
    desc.add_argument("--compare", metavar="OTHER", type=workload_arg,
                      help="a second workload (e.g. the real trace a generated one models): both workloads' "
                           "statistics side by side (sizes, run and inter-arrival times, load, daily cycle), and "
                           "with --figure their distributions overlaid")

    js = sub.add_parser("jobstat", help="one statistic of one job field of a workload (the original's jobstat)")
    js.add_argument("workload", metavar="WORKLOAD", help="Batsim JSON workload or SWF trace")
    js.add_argument("field", choices=list(JOBSTAT_FIELDS), metavar="FIELD",
                    help="req_time (s), size (machines), mem (MB per core), mem_bw (GB/s per core)")
    js.add_argument("stat", choices=list(JOBSTAT_STATS), metavar="STAT", help=", ".join(JOBSTAT_STATS))
    js.add_argument("--seed", type=int, default=0, help="seed of SWF conversion draws (memory bandwidth)")

    cl = sub.add_parser("clean", help="remove the files hdeeprm wrote in a run folder, and nothing else",
                        description="Remove the files hdeeprm wrote in a run folder, its episode_<k>/ folders and "
                                    "its figures/ folder: files of a name hdeeprm writes whose content is "
                                    "recognised as hdeeprm's. Anything else stays, and is listed.")
    cl.add_argument("run_dir", metavar="RUN_DIR", help="folder written by simulate, train, hdeeprm-launch, plot "
                                                        "or report")
    cl.add_argument("--dry-run", action="store_true", help="list what would be removed, remove nothing")
    cl.add_argument("-s", "--soft", action="store_true",
                    help="keep the configuration files (run_config.json, experiment.json, options_resolved.json), "
                         "the checkpoints (model.pt, best.pt) and manifest.json")

    return {"plot": cmd_plot, "compare": cmd_compare, "report": cmd_report, "describe": cmd_describe,
            "jobstat": cmd_jobstat, "clean": cmd_clean}


def _figure_args(parser, default: str, formats, styles) -> None:
    parser.add_argument("-o", "--out", metavar="FILE", help=f"figure file (default {default})")
    parser.add_argument("--format", choices=formats, help="png, svg or pdf (default: from FILE's extension, else png)")
    parser.add_argument("--dpi", type=int, default=150,
                        help="resolution of PNG figures (and of the boxes of Gantt and bandwidth-span charts that have "
                             "over 5,000, rasterised in SVG and PDF), 10 to 1200 (default 150)")
    parser.add_argument("--style", choices=list(styles), default="default",
                        help="default: sized for a screen; paper: one column of a two-column paper (3.4 in wide, "
                             "grids of panels 7 in), 8-9 pt text, thin lines, best with --format pdf or svg")


def cmd_plot(args) -> int:
    from hdeeprm.analysis.plots import check_dpi, output_format, render, require_matplotlib, save_figure
    from hdeeprm.analysis.plots.data import open_run

    check_dpi(args.dpi)  # before reading the run, not after drawing
    require_matplotlib()
    run = open_run(args.run_dir, args.episode)
    fmt = output_format(args.out, args.format)
    episode = "" if args.episode is None else f"-episode_{args.episode}"  # one file per episode asked for
    out = args.out or Path(args.run_dir) / "figures" / f"{args.kind}{episode}.{fmt}"
    path = save_figure(render(args.kind, run, style=args.style), out, fmt, dpi=args.dpi)
    print(f"{args.kind}: {path}")
    return 0


def cmd_compare(args) -> int:
    from hdeeprm.analysis.runs import compare_runs, comparison_table, comparison_values

    if not args.no_figure:
        from hdeeprm.analysis.plots import check_dpi, output_format, require_matplotlib

        check_dpi(args.dpi)
        output_format(args.out, args.format)
        require_matplotlib(instead="--no-figure for the table alone")  # before the table, not after it
    runs = compare_runs(args.runs, args.names, args.episode)
    print(comparison_table(runs))
    if not args.no_figure:
        from hdeeprm.analysis.plots import output_format, save_figure
        from hdeeprm.analysis.plots.figures import comparison_figure

        fmt = output_format(args.out, args.format)
        fig = comparison_figure([r.name for r in runs], comparison_values(runs), style=args.style)
        path = save_figure(fig, args.out or f"compare.{fmt}", fmt, dpi=args.dpi)
        print(f"figure: {path}")
    return 0


def cmd_report(args) -> int:
    from hdeeprm.analysis.report import write_report
    from hdeeprm.analysis.tables import format_bytes

    path = write_report(args.run_dir, args.out, episode=args.episode, fmt="svg" if args.svg else "png",
                        draw=not args.no_figures)
    print(f"report: {path} ({format_bytes(path.stat().st_size)})")
    return 0


def cmd_describe(args) -> int:
    from hdeeprm.analysis.runs import describe_workload, format_summary

    if args.figure:
        from hdeeprm.analysis.plots import output_format, require_matplotlib

        output_format(args.figure, None)
        require_matplotlib(instead="describe without --figure")
    summary = describe_workload(args.workload, platform=args.platform, hierarchy=args.hierarchy,
                                nb_jobs=args.nb_jobs, seed=args.seed)
    print(format_summary(summary))
    if args.compare:
        from hdeeprm.analysis.runs import arrival_hours, format_comparison

        other = describe_workload(args.compare, platform=args.platform, hierarchy=args.hierarchy,
                                  nb_jobs=args.nb_jobs, seed=args.seed)
        print(format_summary(other))
        names = (Path(args.workload).name, Path(args.compare).name)
        if names[0] == names[1]:
            names = (args.workload, args.compare)
        print()
        print(format_comparison(summary, other, names))
        if args.figure:
            from hdeeprm.analysis.plots import save_figure
            from hdeeprm.analysis.plots.figures import workload_figure

            columns = {**summary.columns, "arrival hour of the day": arrival_hours(summary)}
            others = {**other.columns, "arrival hour of the day": arrival_hours(other)}
            fig = workload_figure(columns, f"{names[0]} ({summary.nb_jobs} jobs) and {names[1]} "
                                           f"({other.nb_jobs} jobs)", compare=others, names=names)
            print(f"figure: {save_figure(fig, args.figure)}")
        return 0
    if args.figure:
        from hdeeprm.analysis.plots import save_figure
        from hdeeprm.analysis.plots.figures import workload_figure

        fig = workload_figure(summary.columns, f"{Path(args.workload).name}: {summary.nb_jobs} jobs")
        print(f"figure: {save_figure(fig, args.figure)}")
    return 0


def cmd_jobstat(args) -> int:
    from hdeeprm.analysis.runs import jobstat

    print(f"{jobstat(args.workload, args.field, args.stat, seed=args.seed):.10g}")
    return 0


def cmd_clean(args) -> int:
    from hdeeprm.analysis.runs import apply_clean, describe_plan, plan_clean

    plan = plan_clean(args.run_dir, soft=args.soft)
    if not args.dry_run:
        apply_clean(plan)
    print(describe_plan(plan, args.dry_run))
    return 0
