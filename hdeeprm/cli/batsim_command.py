"""``hdeeprm batsim``: a drop-in Batsim 4.2.1 on the embedded engine.

It takes Batsim's own command line (option names and defaults as ``batsim --help`` prints
them), connects to the scheduler listening at ``-s`` as Batsim does, speaks Batsim's protocol
(:mod:`hdeeprm.backends.batsim.server`) and writes Batsim's output files at ``-e``. Options
the engine cannot honour (workflows, external events, Redis, dynamic jobs, SimGrid settings,
compute sharing...) are refused in one line, with exit status 2.
"""

from __future__ import annotations

import argparse
import sys

from hdeeprm.common.errors import ConfigError

VERBOSITIES = ("quiet", "network-only", "information", "debug")

# Batsim options the engine does not model: (flags, number of values, why).
UNSUPPORTED = (
    (("-W", "--workflow"), 1, "workflows are not modelled"),
    (("--WS", "--workflow-start"), 2, "workflows are not modelled"),
    (("--workflow-jobs-limit",), 1, "workflows are not modelled"),
    (("--ignore-beyond-last-workflow",), 0, "workflows are not modelled"),
    (("--events",), 1, "external events are not modelled"),
    (("--sg-cfg",), 1, "there is no SimGrid inside (the engine reproduces its results)"),
    (("--sg-log",), 1, "there is no SimGrid inside (the engine reproduces its results)"),
    (("-r", "--add-role-to-hosts"), 1, "storage and extra master roles are not modelled"),
    (("--enable-redis",), 0, "Redis is not used"),
    (("--enable-dynamic-jobs",), 0, "dynamic jobs are not modelled"),
    (("--acknowledge-dynamic-jobs",), 0, "dynamic jobs are not modelled"),
    (("--enable-profile-reuse",), 0, "dynamic jobs are not modelled"),
    (("--enable-compute-sharing",), 0, "a machine runs one job at a time in the engine"),
    (("--no-sched",), 0, "it runs with a scheduler only"),
    (("--dump-execution-context",), 0, "there is no execution context to dump"),
    (("--simgrid-version",), 0, "there is no SimGrid inside"),
)


class _Unsupported(argparse.Action):
    def __call__(self, parser, namespace, values, option_string=None):
        namespace.unsupported.append((option_string, self.help))


def add_subcommands(sub) -> dict:
    p = sub.add_parser(
        "batsim", help="a drop-in Batsim 4.2.1: run a Batsim scheduler (PyBatsim, ...) on the engine",
        description="Take Batsim 4.2.1's command line, connect to the scheduler at -s as Batsim "
                    "does, speak Batsim's protocol and write Batsim's output files, simulating on "
                    "the embedded engine.")
    p.set_defaults(unsupported=[])
    inputs = p.add_argument_group("input options")
    inputs.add_argument("-p", "--platform", required=True, metavar="<platform_file>",
                        help="the SimGrid platform to simulate")
    inputs.add_argument("-w", "--workload", action="append", default=[], metavar="<workload_file>",
                        help="a workload JSON file to simulate; give -w again for more (w0, w1, ...)")
    common = p.add_argument_group("most common options")
    common.add_argument("-m", "--master-host", default="master_host", metavar="<name>",
                        help="the host that is not a compute machine [default: master_host]")
    common.add_argument("-E", "--energy", action="store_true",
                        help="simulate energy and write the energy output files")
    context = p.add_argument_group("execution context options")
    context.add_argument("-s", "--socket-endpoint", default="tcp://localhost:28000", metavar="<endpoint>",
                         help="the decision process socket endpoint [default: tcp://localhost:28000]")
    for flag, default in (("--redis-hostname", "127.0.0.1"), ("--redis-port", "6379"),
                          ("--redis-prefix", "default")):
        context.add_argument(flag, default=default, help=f"ignored, as by Batsim without --enable-redis "
                                                         f"[default: {default}]")
    outputs = p.add_argument_group("output options")
    outputs.add_argument("-e", "--export", default="out", metavar="<prefix>",
                         help="the export filename prefix of the output files [default: out]")
    outputs.add_argument("--disable-schedule-tracing", action="store_true",
                         help="do not write the Pajé trace PREFIX_schedule.trace")
    outputs.add_argument("--disable-machine-state-tracing", action="store_true",
                         help="do not write PREFIX_machine_states.csv")
    own = p.add_argument_group("options of this command (not Batsim's)")
    own.add_argument("--assume-zero-latency", action="store_true",
                     help="serve a platform on which Batsim's own messages take simulated time (links, "
                          "a Full zone's loopback) as if they took none; refused without it, since "
                          "simultaneous events may then be grouped otherwise than by Batsim")
    size = p.add_argument_group("platform size limit options")
    size.add_argument("--mmax", type=int, default=0, metavar="<nb>",
                      help="limit the number of machines to <nb>; 0 means no limit [default: 0]")
    size.add_argument("--mmax-workload", action="store_true",
                      help="limit the number of machines to the workload's nb_res")
    jobs = p.add_argument_group("job-related options")
    jobs.add_argument("--forward-profiles-on-submission", action="store_true",
                      help="attach the job's profile to JOB_SUBMITTED")
    verbosity = p.add_argument_group("verbosity options")
    verbosity.add_argument("-v", "--verbosity", default="information", choices=VERBOSITIES,
                           metavar="<verbosity_level>",
                           help=f"{', '.join(VERBOSITIES)} [default: information]")
    verbosity.add_argument("-q", "--quiet", action="store_true", help="shortcut for --verbosity quiet")
    other = p.add_argument_group("other options")
    cfg = other.add_mutually_exclusive_group()
    cfg.add_argument("--sched-cfg", default="", metavar="<cfg_str>",
                     help="the scheduler configuration string, forwarded in SIMULATION_BEGINS")
    cfg.add_argument("--sched-cfg-file", metavar="<cfg_file>", help="same, read from a file")
    other.add_argument("--disable-storage-sharing", action="store_true",
                       help="accepted (there are no storage resources)")
    other.add_argument("--forward-unknown-events", action="store_true",
                       help="accepted (there are no external events)")
    other.add_argument("--version", action="version", version="4.2.1 (hdeeprm batsim: the embedded engine)")
    refused = p.add_argument_group("Batsim options that are refused (exit status 2)")
    for flags, nargs, why in UNSUPPORTED:
        refused.add_argument(*flags, nargs=nargs, action=_Unsupported, help=why,
                             dest="refused_" + flags[-1].lstrip("-").replace("-", "_"))
    return {"batsim": cmd_batsim}


def run_from_args(args):
    """The :class:`~hdeeprm.backends.batsim.server.BatsimRun` of parsed arguments (raises
    :class:`ConfigError` for what cannot be honoured)."""
    from hdeeprm.backends.batsim.server import BatsimRun

    if args.unsupported:
        option, why = args.unsupported[0]
        raise ConfigError(f"option {option} is not supported: {why}")
    if not args.workload:
        raise ConfigError("no workload: give one -w WORKLOAD.json (workflows are not supported)")
    if args.mmax < 0:
        raise ConfigError(f"--mmax {args.mmax}: expected 0 (no limit) or a positive number")
    sched_cfg = args.sched_cfg
    if args.sched_cfg_file:
        with open(args.sched_cfg_file) as f:
            sched_cfg = f.read()
    return BatsimRun(platform=args.platform, workload=args.workload[0], more_workloads=tuple(args.workload[1:]),
                     export_prefix=args.export,
                     energy=args.energy, mmax=args.mmax, mmax_workload=args.mmax_workload,
                     master_host=args.master_host, sched_config=sched_cfg,
                     forward_profiles=args.forward_profiles_on_submission, endpoint=args.socket_endpoint,
                     machine_states=not args.disable_machine_state_tracing,
                     schedule_trace=not args.disable_schedule_tracing,
                     assume_zero_latency=args.assume_zero_latency)


def cmd_batsim(args) -> int:
    from hdeeprm.backends.batsim.server import serve

    run = run_from_args(args)
    quiet = args.quiet or args.verbosity == "quiet"
    summary = serve(run)
    if not quiet:
        print(f"hdeeprm batsim: simulation finished: {summary['nb_jobs']} jobs, {summary['messages']} "
              f"messages, {summary['seconds']:.3f} s ({summary['scheduler_seconds']:.3f} s in the scheduler); "
              f"wrote {', '.join(summary['outputs'])}", file=sys.stderr)
    return 0
