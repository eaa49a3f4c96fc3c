"""``hdeeprm thesis``: the original HDeepRM's thesis experiments, each one command from a fresh install.

    hdeeprm thesis                          list them: what each compares, the trace it needs
    hdeeprm thesis NAME [--trace FILE] [-nr N] [--out DIR] [--backend embedded|batsim]

The original shipped their options files with paths on its author's machine
(``/workspace/workloads/gaia.swf``) and no traces. Here each experiment takes its options from
``hdeeprm/data/thesis_options`` with the bundled platform, and its trace from ``--trace``,
else from the working directory (the Parallel Workloads Archive's file name, or the
original's), else from the bundle, else a one-line error saying which log to download and
where. The gaia experiments take the first 1,000 (primer) or 100 (consequences) jobs of the
UniLu Gaia 2014 log, and the first 2,000 of its records are bundled: they give the same
workload as the whole log. The MetaCentrum 2 log (58 MB) is not bundled. The learning
experiment runs on its own two-job workload, with the bundled REINFORCE agent (the
original's example agent); the original does not record how many episodes the thesis
trained, so it defaults to 400, enough to learn the bandwidth-aware actions.

The run itself is ``hdeeprm-launch`` on the experiment's options (written, resolved, to
``OUT/options.json``): same outputs, same original workload model by default.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from hdeeprm.common.errors import ConfigError
from hdeeprm.rl.original_options import GAIA_LOG, METACENTRUM2_LOG, ThesisTrace


@dataclass(frozen=True)
class ThesisExperiment:
    options: str  # file name in hdeeprm/data/thesis_options
    compares: str
    trace: ThesisTrace | None  # None: the experiment brings its own workload
    default_runs: int = 1


EXPERIMENTS = {
    "primer/gaia/first-high_gflops": ThesisExperiment(
        "primer__gaia__first-high_gflops.json", "FCFS packing onto the fastest cores, 1,000 jobs on gaia", GAIA_LOG),
    "primer/gaia/shortest-high_gflops": ThesisExperiment(
        "primer__gaia__shortest-high_gflops.json", "shortest job first, fastest cores, 1,000 jobs on gaia", GAIA_LOG),
    "primer/mc2/first-high_gflops": ThesisExperiment(
        "primer__mc2__first-high_gflops.json", "FCFS, fastest cores, 1,000 jobs on MetaCentrum 2", METACENTRUM2_LOG),
    "primer/mc2/shortest-high_gflops": ThesisExperiment(
        "primer__mc2__shortest-high_gflops.json", "shortest job first, fastest cores, on MetaCentrum 2",
        METACENTRUM2_LOG),
    "consequences/gaia/shortest-high_gflops": ThesisExperiment(
        "consequences__gaia__shortest-high_gflops.json",
        "memory-bandwidth contention when packing onto the fastest cores, 100 jobs on gaia", GAIA_LOG),
    "consequences/gaia/shortest-high_mem_bw": ThesisExperiment(
        "consequences__gaia__shortest-high_mem_bw.json",
        "the same jobs spread by remaining memory bandwidth", GAIA_LOG),
    "learning": ThesisExperiment(
        "learning.json", "REINFORCE learns the best of 5 actions for two jobs on 4 cores", None, default_runs=400),
}

# Where each thesis options file's platform is bundled (hdeeprm/data/platforms/<name>.json).
_PLATFORMS = {"primer/gaia": "gaia", "primer/mc2": "mc2", "consequences/gaia": "gaia", "learning": "learning"}


def add_subcommands(sub) -> dict:
    th = sub.add_parser("thesis", help="run one of the original HDeepRM's thesis experiments",
                        description=__doc__.split("\n\n")[0].split(": ", 1)[1])
    th.add_argument("name", nargs="?", metavar="NAME",
                    help="the experiment (omit it to list them): " + ", ".join(EXPERIMENTS))
    th.add_argument("--trace", metavar="FILE", help="the SWF trace the experiment needs (see the list)")
    th.add_argument("-nr", "--nbruns", type=int, help="episodes (default 1; 400 for learning)")
    th.add_argument("--out", help="output folder (default runs/thesis/NAME)")
    th.add_argument("--workload-model", choices=("original", "modern"), default="original",
                    help="as hdeeprm-launch's (default original: the thesis's own model)")
    th.add_argument("--backend", choices=("embedded", "batsim"), default="embedded")
    th.add_argument("--batsim", metavar="PATH", help="batsim executable for --backend batsim")
    return {"thesis": run}


def listing() -> str:
    lines = ["thesis experiments (hdeeprm thesis NAME):"]
    width = max(map(len, EXPERIMENTS))
    for name, experiment in EXPERIMENTS.items():
        if experiment.trace is None:
            needs = "its own workload (bundled)"
        elif experiment.trace.bundled:
            needs = f"{experiment.trace.description} (the jobs it needs are bundled)"
        else:
            needs = f"{experiment.trace.description}: --trace {experiment.trace.names[0]} (not bundled)"
        lines.append(f"  {name:<{width}}  {experiment.compares}; trace: {needs}")
    return "\n".join(lines)


def find_trace(name: str, trace: ThesisTrace, given: str | None) -> str:
    """The trace file for experiment ``name``: ``given``, else one of the log's file names in
    the working directory, else the bundled excerpt; else a ConfigError saying where to get it."""
    from hdeeprm.common.bundled import TRACES_DIR

    if given is not None:
        if not Path(given).is_file():
            raise ConfigError(f"--trace {given}: no such file; expected {trace.description} in SWF "
                              f"({trace.names[0]})")
        return str(Path(given).resolve())
    for candidate in trace.names:
        if Path(candidate).is_file():
            return str(Path(candidate).resolve())
    if trace.bundled:
        return str(TRACES_DIR / trace.bundled)
    raise ConfigError(f"thesis experiment {name} needs {trace.description}, which is not bundled: download "
                      f"{trace.names[0]} from {trace.url} and pass --trace FILE "
                      "(or put it in the working directory)")


def resolved_options(name: str, trace_path: str | None) -> dict:
    """The experiment's options file with today's paths: the bundled platform, the trace."""
    from hdeeprm.common.bundled import DATA_DIR
    from hdeeprm.inputs.platform.json_platform import bundled_platforms_dir

    experiment = EXPERIMENTS[name]
    source = DATA_DIR / "thesis_options" / experiment.options
    options = json.loads(source.read_text())
    platform = next(p for prefix, p in _PLATFORMS.items() if name.startswith(prefix))
    options["platform_file_path"] = str(bundled_platforms_dir() / f"{platform}.json")
    if trace_path is not None:
        options["workload_file_path"] = trace_path
    agent = options["pybatsim"]["agent"]
    if agent["type"] == "LEARNING":
        agent["algorithm"] = "reinforce"  # the original's example agent
    if "policy_pair" in agent:  # the legacy key, as the one action the classic agent takes
        job_key, core_key = agent.pop("policy_pair").split("-", 1)
        options["pybatsim"]["env"]["actions"] = {"selection": [{job_key: [core_key]}], "void": False}
    return options


def run(args) -> int:
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("always")
        warnings.showwarning = _one_line_warning
        return _run(args)


def _one_line_warning(message, category, filename, lineno, file=None, line=None):
    import sys

    print(f"hdeeprm thesis: warning: {message}", file=sys.stderr)


def _run(args) -> int:
    if args.name is None:
        print(listing())
        return 0
    name = args.name.replace("__", "/").removesuffix(".json")
    if name not in EXPERIMENTS:
        raise ConfigError(f"thesis experiment {args.name!r}: expected one of {', '.join(EXPERIMENTS)}")
    experiment = EXPERIMENTS[name]
    if experiment.trace is None and args.trace is not None:
        raise ConfigError(f"--trace: thesis experiment {name} brings its own workload; expected no --trace")
    trace = find_trace(name, experiment.trace, args.trace) if experiment.trace else None
    out = Path(args.out) if args.out else Path("runs") / "thesis" / name
    out.mkdir(parents=True, exist_ok=True)
    options_path = out / "options.json"
    options_path.write_text(json.dumps(resolved_options(name, trace), indent=2) + "\n")
    argv = [str(options_path), "--out", str(out), "-nr", str(args.nbruns or experiment.default_runs),
            "--backend", args.backend, "--workload-model", args.workload_model]
    if args.batsim:
        argv += ["--batsim", args.batsim]
    if experiment.trace is None:
        from hdeeprm.common.bundled import DATA_DIR
        argv += ["-cw", str(DATA_DIR / "learning_workload.json")]
    print(f"thesis experiment {name}: {experiment.compares}" + (f"; trace {trace}" if trace else ""))
    from hdeeprm.cli.launch import build_parser, launch
    return launch(build_parser().parse_args(argv))
