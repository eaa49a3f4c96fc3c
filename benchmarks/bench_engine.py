#!/usr/bin/env python
"""Throughput benchmark of the embedded engine on real SWF traces.

    python benchmarks/bench_engine.py TRACE.swf.gz [TRACE...] [--policies fcfs,easy]
        [--nb-jobs N] [--platform flat|gaia|...] [--repeat K] [--json OUT.json]
        [--scaling] [--profile N]

For each trace: read it and convert it once (timed apart from the simulation), then run each
policy on a fresh engine (best of --repeat) and print jobs per second, decision points per
second, the ratio against real Batsim and the peak RSS, plus the makespan and the number of
jobs that ran so the run can be checked for sense. ``--scaling`` instead runs the first 1k,
5k, 20k and all jobs of the first trace and prints microseconds per job. ``--profile N``
also runs the first trace/policy once under cProfile and prints its top N entries.

This is a measuring tool, not a test: it asserts nothing about speed. See README.md beside it.
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import io
import json
import os
import platform as host_platform
import pstats
import resource
import sys
from dataclasses import dataclass, field
from pathlib import Path
from time import perf_counter

import numpy as np

# Run from a checkout without installing: make the package beside this folder importable.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from hdeeprm.core.engine import Engine  # noqa: E402
from hdeeprm.metrics import headline_metrics  # noqa: E402
from hdeeprm.platform import bundled_platform, load_platform  # noqa: E402
from hdeeprm.platform.model import Platform  # noqa: E402
from hdeeprm.policies import PolicyConfig, run_policy  # noqa: E402
from hdeeprm.workload import ConversionOptions, read_swf, swf_to_workload  # noqa: E402

#: Real Batsim 4.2.1 (SimGrid 3.32) driven by a Python FCFS scheduler over ZeroMQ was measured
#: at about 1,500-2,300 jobs/s on the same 2-core machines; 2,000 jobs/s is the reference.
BATSIM_REFERENCE_JOBS_PER_S = 2000.0

POLICIES = {
    "fcfs": PolicyConfig("first", "first_fit", None),
    "easy": PolicyConfig("first", "first_fit", "easy"),
}
SCALING_SIZES = (1_000, 5_000, 20_000, None)  # None: the whole trace

FLAT_SPEED_FLOPS = 1e9  # 1 Gflop/s per core
FLAT_WATTS_IDLE = 100.0
FLAT_WATTS_FULL = 200.0


class CountingEngine(Engine):
    """The engine, counting the decision points it hands to the scheduler (one Python call
    more per point; a few hundred nanoseconds against tens of microseconds per point)."""

    decision_points = 0

    def next_decision_point(self):
        point = super().next_decision_point()
        if point is not None:
            self.decision_points += 1
        return point


@dataclass
class Prepared:
    """One trace, read and converted for one platform."""

    trace: str
    platform: Platform
    platform_name: str
    workload: object
    records: int
    jobs: int
    parse_s: float
    convert_s: float


@dataclass
class Row:
    trace: str
    platform: str
    jobs: int
    hosts: int
    policy: str
    parse_s: float
    convert_s: float
    setup_s: float  # Engine construction (Workload -> arrays), part of simulate_s
    simulate_s: float  # best of --repeat: Engine(...) + run_policy(...)
    repeats: list[float] = field(default_factory=list)
    decision_points: int = 0
    makespan_s: float = 0.0
    jobs_ran: int = 0
    jobs_rejected: int = 0
    jobs_walltime_killed: int = 0
    mean_waiting_time_s: float = 0.0
    energy_rows: int = 0
    peak_rss_mib: float = 0.0

    @property
    def jobs_per_s(self) -> float:
        return self.jobs / self.simulate_s if self.simulate_s > 0 else float("inf")

    @property
    def points_per_s(self) -> float:
        return self.decision_points / self.simulate_s if self.simulate_s > 0 else float("inf")

    @property
    def vs_batsim(self) -> float:
        return self.jobs_per_s / BATSIM_REFERENCE_JOBS_PER_S

    @property
    def us_per_job(self) -> float:
        return 1e6 * self.simulate_s / self.jobs if self.jobs else 0.0

    def to_dict(self) -> dict:
        out = dict(self.__dict__)
        out.update(jobs_per_s=self.jobs_per_s, decision_points_per_s=self.points_per_s,
                   ratio_vs_batsim=self.vs_batsim, us_per_job=self.us_per_job)
        return out


# ---------------------------------------------------------------------------- helpers


def peak_rss_mib() -> float:
    """Peak resident set size of this process so far (Linux reports KiB, macOS bytes)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024.0 * 1024.0) if sys.platform == "darwin" else peak / 1024.0


def flat_platform(nb_hosts: int) -> Platform:
    """``nb_hosts`` single-core hosts at 1 Gflop/s, 100 W idle / 200 W at full load."""
    n = int(nb_hosts)
    return Platform(
        host_names=tuple(f"h{i:04d}" for i in range(n)),
        speeds=np.full((n, 1), FLAT_SPEED_FLOPS),
        watts_idle=np.full((n, 1), FLAT_WATTS_IDLE),
        watts_full=np.full((n, 1), FLAT_WATTS_FULL),
        nb_pstates=np.ones(n, np.int64),
        initial_pstate=np.zeros(n, np.int64),
        source=f"<flat {n} x 1 Gflop/s>",
    )


_NOTED: set[str] = set()


def trace_hosts(trace, override: int | None) -> int:
    """Machines of a flat platform for this trace: --hosts, else the header's MaxProcs, else
    the largest processor count a record asks for."""
    if override:
        return override
    if trace.max_procs:
        return trace.max_procs
    req, alloc = trace.column("requested_procs"), trace.column("allocated_procs")
    largest = int(max(req.max(initial=1), alloc.max(initial=1)))
    if trace.source in _NOTED:
        return largest
    _NOTED.add(trace.source)
    print(f"  note: {trace.source} has no MaxProcs header; using {largest} hosts "
          "(the largest job); pass --hosts to choose", file=sys.stderr)
    return largest


def prepare(path: str, args, nb_jobs: int | None, trace=None, parse_s: float | None = None) -> Prepared:
    """Read (unless given) and convert one trace for the chosen platform, timing both."""
    if trace is None:
        t0 = perf_counter()
        trace = read_swf(path)
        parse_s = perf_counter() - t0
    if args.platform == "flat":
        platform = flat_platform(trace_hosts(trace, args.hosts))
        speed = FLAT_SPEED_FLOPS / 1e9
        platform_name = f"flat{platform.nb_machines}"
    else:
        platform = load_platform(bundled_platform(args.platform))
        speed = platform.hierarchy.reference_speed_gflops
        platform_name = args.platform
    options = ConversionOptions(nb_jobs=nb_jobs, reference_speed_gflops=speed,
                                max_res=platform.nb_machines)
    t0 = perf_counter()
    workload, _report = swf_to_workload(trace, options, rng=np.random.default_rng(0))
    convert_s = perf_counter() - t0
    return Prepared(trace=Path(path).name, platform=platform, platform_name=platform_name,
                    workload=workload, records=len(trace), jobs=len(workload.jobs),
                    parse_s=parse_s, convert_s=convert_s)


def simulate_once(prep: Prepared, config: PolicyConfig, count: bool) -> dict:
    """One timed run on a fresh engine; returns its times and what the result says. The
    engine and its result are dropped before returning, so repeats do not pile up memory."""
    gc.collect()
    cls = CountingEngine if count else Engine
    t0 = perf_counter()
    engine = cls(prep.platform, prep.workload, record_energy_rows=True)
    t1 = perf_counter()
    result = run_policy(engine, config)
    t2 = perf_counter()
    metrics = headline_metrics(result)
    return dict(
        simulate_s=t2 - t0, setup_s=t1 - t0,
        decision_points=getattr(engine, "decision_points", 0), makespan_s=metrics.makespan,
        jobs_ran=metrics.nb_finished, jobs_rejected=metrics.nb_rejected,
        jobs_walltime_killed=metrics.nb_walltime_killed,
        mean_waiting_time_s=metrics.mean_waiting_time, energy_rows=len(result.energy_rows),
    )


def bench(prep: Prepared, policy: str, args) -> Row:
    config = POLICIES[policy]
    runs = [simulate_once(prep, config, not args.no_count) for _ in range(max(1, args.repeat))]
    best = min(runs, key=lambda r: r["simulate_s"])
    return Row(
        trace=prep.trace, platform=prep.platform_name, jobs=prep.jobs,
        hosts=prep.platform.nb_machines, policy=policy, parse_s=prep.parse_s,
        convert_s=prep.convert_s, repeats=[r["simulate_s"] for r in runs],
        peak_rss_mib=peak_rss_mib(), **best,
    )


def warm_up(args) -> float:
    """Load (or compile, on a first run) the numba kernels on a tiny run of the first trace on
    the chosen platform, so that no timed run pays for them."""
    t0 = perf_counter()
    prep = prepare(args.traces[0], args, 200)
    for config in POLICIES.values():
        run_policy(Engine(prep.platform, prep.workload, record_energy_rows=True), config)
    return perf_counter() - t0


# ---------------------------------------------------------------------------- printing


def fmt_int(v: int) -> str:
    return f"{v:,}"


def print_table(rows: list[Row]) -> None:
    head = ("trace", "jobs", "hosts", "policy", "parse+conv s", "simulate s", "jobs/s",
            "points/s", "x Batsim", "peak RSS MiB")
    body = [
        (r.trace, fmt_int(r.jobs), fmt_int(r.hosts), r.policy,
         f"{r.parse_s:.2f}+{r.convert_s:.2f}", f"{r.simulate_s:.2f}", f"{r.jobs_per_s:,.0f}",
         f"{r.points_per_s:,.0f}" if r.decision_points else "-", f"{r.vs_batsim:.1f}",
         f"{r.peak_rss_mib:.0f}")
        for r in rows
    ]
    _print_grid(head, body, left=(0, 3))
    print(f"x Batsim = jobs/s / {BATSIM_REFERENCE_JOBS_PER_S:,.0f} (real Batsim 4.2.1 + Python "
          "FCFS scheduler: ~1,500-2,300 jobs/s measured on these 2-core machines)")
    print("simulate s = Engine(platform, workload) + run_policy(...), best of --repeat; "
          "peak RSS is the process high-water mark so far")
    print()
    head = ("trace", "policy", "decision pts", "makespan s", "ran", "rejected", "walltime-killed",
            "mean wait s", "energy rows", "setup s", "runs s")
    body = [
        (r.trace, r.policy, fmt_int(r.decision_points) if r.decision_points else "-",
         f"{r.makespan_s:,.0f}", fmt_int(r.jobs_ran), fmt_int(r.jobs_rejected),
         fmt_int(r.jobs_walltime_killed), f"{r.mean_waiting_time_s:,.0f}", fmt_int(r.energy_rows),
         f"{r.setup_s:.2f}", " ".join(f"{t:.2f}" for t in r.repeats))
        for r in rows
    ]
    _print_grid(head, body, left=(0, 1))


def print_scaling(rows: list[Row]) -> None:
    head = ("trace", "policy", "jobs", "hosts", "convert s", "simulate s", "us/job", "jobs/s",
            "us/point", "x Batsim", "makespan s", "ran")
    body = [
        (r.trace, r.policy, fmt_int(r.jobs), fmt_int(r.hosts), f"{r.convert_s:.2f}",
         f"{r.simulate_s:.3f}", f"{r.us_per_job:.1f}", f"{r.jobs_per_s:,.0f}",
         f"{1e6 * r.simulate_s / r.decision_points:.1f}" if r.decision_points else "-",
         f"{r.vs_batsim:.1f}", f"{r.makespan_s:,.0f}", fmt_int(r.jobs_ran))
        for r in rows
    ]
    _print_grid(head, body, left=(0, 1))
    if rows:
        print(f"(trace parsed once in {rows[0].parse_s:.2f} s; each size converted with "
              "nb_jobs=N; x Batsim = jobs/s / 2,000)")


def _print_grid(head, body, left=()) -> None:
    widths = [max(len(str(c)) for c in col) for col in zip(head, *body)]

    def line(cells):
        return "  ".join(str(c).ljust(w) if i in left else str(c).rjust(w)
                         for i, (c, w) in enumerate(zip(cells, widths)))

    print(line(head))
    print("  ".join("-" * w for w in widths))
    for cells in body:
        print(line(cells))


def environment() -> dict:
    import numba
    import simpy

    return {
        "python": sys.version.split()[0], "numpy": np.__version__, "numba": numba.__version__,
        "simpy": simpy.__version__, "machine": host_platform.machine(),
        "processor": host_platform.processor() or host_platform.machine(),
        "cpus": os.cpu_count(), "system": host_platform.platform(), "hdeeprm_git": git_state(),
    }


def git_state() -> str:
    """Commit of the checkout being measured, with "+dirty" when hdeeprm/ has local changes."""
    import subprocess

    root = Path(__file__).resolve().parent.parent
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=root, capture_output=True,
                              text=True, timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--", "hdeeprm"], cwd=root,
                               capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return (head or "unknown") + ("+dirty" if dirty else "")


# ---------------------------------------------------------------------------- main


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("traces", nargs="+", help="SWF traces (.swf or .swf.gz)")
    p.add_argument("--policies", default=None,
                   help="comma-separated, of: fcfs, easy (default fcfs,easy; fcfs with --scaling)")
    p.add_argument("--nb-jobs", type=int, default=None, help="keep the first N usable jobs")
    p.add_argument("--platform", default="flat",
                   help="flat (MaxProcs single-core 1 Gflop/s hosts) or a bundled platform: "
                        "das2, gaia, learning, mc2, pik, ricc")
    p.add_argument("--hosts", type=int, default=None, help="hosts of the flat platform "
                   "(default: the trace's MaxProcs)")
    p.add_argument("--repeat", type=int, default=1, help="timed runs per case; the best counts")
    p.add_argument("--json", metavar="OUT.json", help="also write every number here")
    p.add_argument("--scaling", action="store_true",
                   help="run the first 1k, 5k, 20k and all jobs of the first trace")
    p.add_argument("--scaling-sizes", default=None,
                   help="comma-separated sizes for --scaling, 'all' for the whole trace "
                        "(default 1000,5000,20000,all)")
    p.add_argument("--no-count", action="store_true",
                   help="run the plain Engine, without counting decision points")
    p.add_argument("--profile", type=int, metavar="N", default=0,
                   help="also run the first trace and policy once under cProfile; print top N")
    p.add_argument("--profile-sort", default="tottime", choices=("tottime", "cumulative"),
                   help="order of the profile listing (default tottime)")
    args = p.parse_args(argv)
    names = args.policies or ("fcfs" if args.scaling else "fcfs,easy")
    args.policy_list = [s.strip() for s in names.split(",") if s.strip()]
    bad = [s for s in args.policy_list if s not in POLICIES]
    if bad:
        p.error(f"unknown policy {', '.join(bad)}; expected {', '.join(POLICIES)}")
    if args.scaling_sizes:
        args.sizes = tuple(None if s.strip() == "all" else int(s) for s in args.scaling_sizes.split(","))
    else:
        args.sizes = SCALING_SIZES
    return args


def run_profile(prep: Prepared, policy: str, top: int, sort: str) -> str:
    config = POLICIES[policy]
    gc.collect()
    prof = cProfile.Profile()
    t0 = perf_counter()
    prof.enable()
    run_policy(Engine(prep.platform, prep.workload, record_energy_rows=True), config)
    prof.disable()
    wall = perf_counter() - t0
    buf = io.StringIO()
    stats = pstats.Stats(prof, stream=buf)
    stats.sort_stats(sort).print_stats(top)
    text = buf.getvalue()
    # Keep the listing, drop pstats' preamble of blank lines.
    header = (f"cProfile: {prep.trace}, {prep.jobs:,} jobs, {policy} on {prep.platform_name} "
              f"({wall:.2f} s under the profiler; sorted by {sort})")
    return header + "\n" + text.strip("\n")


def main(argv=None) -> int:
    args = parse_args(argv)
    env = environment()
    print(f"hdeeprm engine benchmark - Python {env['python']}, numpy {env['numpy']}, numba "
          f"{env['numba']}, simpy {env['simpy']}, {env['cpus']} CPUs, {env['system']}, "
          f"hdeeprm {env['hdeeprm_git']}")
    print(f"warm-up (numba kernels, 200 jobs): {warm_up(args):.2f} s")
    print()
    out: dict = {"environment": env, "batsim_reference_jobs_per_s": BATSIM_REFERENCE_JOBS_PER_S,
                 "platform": args.platform, "repeat": args.repeat}

    if args.scaling:
        path = args.traces[0]
        t0 = perf_counter()
        trace = read_swf(path)
        parse_s = perf_counter() - t0
        rows = []
        for size in args.sizes:
            if size is not None and size >= len(trace):
                size = None
            prep = prepare(path, args, size, trace=trace, parse_s=parse_s)
            for policy in args.policy_list:
                rows.append(bench(prep, policy, args))
            del prep
        print(f"scaling on {Path(path).name} ({len(trace):,} records), platform {args.platform}:")
        print_scaling(rows)
        out["scaling"] = [r.to_dict() for r in rows]
        first_prep = None
    else:
        rows, first_prep = [], None
        for path in args.traces:
            prep = prepare(path, args, args.nb_jobs)
            print(f"{prep.trace}: {prep.records:,} records -> {prep.jobs:,} jobs in "
                  f"{prep.parse_s:.2f} s parse + {prep.convert_s:.2f} s convert "
                  f"({prep.platform_name}, {prep.platform.nb_machines:,} hosts)", flush=True)
            for policy in args.policy_list:
                rows.append(bench(prep, policy, args))
            if first_prep is None and args.profile:
                first_prep = prep  # kept for the profile run; others are dropped
            del prep
        print()
        print_table(rows)
        out["runs"] = [r.to_dict() for r in rows]

    if args.profile:
        prep = first_prep or prepare(args.traces[0], args, args.nb_jobs)
        print()
        text = run_profile(prep, args.policy_list[0], args.profile, args.profile_sort)
        print(text)
        out["profile"] = text

    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=2, default=float) + "\n")
        print(f"\nwrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
