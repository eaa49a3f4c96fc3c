"""Looking at runs and workloads from the command line: compare, jobstat, describe, clean.

- ``compare_runs``: the original's ``hdeeprm-metrics`` comparison (energy, makespan, max and
  mean slowdown, turnaround and waiting time, from each run's out_schedule.csv), for two or
  more runs, as a terminal table (and a figure, see :func:`hdeeprm.analysis.plots.figures.comparison_figure`).
- ``jobstat``: the original's ``hdeeprm-jobstat``: one statistic of one job field.
- ``describe_workload``: jobs, size and time distributions, and the load they offer a platform.
- ``plan_clean`` / ``apply_clean``: remove the files hdeeprm wrote in a run folder, and only
  those: known names whose content is recognised as ours; everything else stays.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from hdeeprm.analysis.plots import data as d
from hdeeprm.analysis.plots.units import COMPARED_METRICS, metric_unit, time_unit
from hdeeprm.analysis.tables import format_count, format_number, format_seconds
from hdeeprm.common.errors import ConfigError, FormatError
from hdeeprm.common.manifest import MANIFEST_FILE, is_manifest, manifest_lines, read_manifest
from hdeeprm.simulation.outputs import (
    ENERGY_COLUMNS,
    JOB_COLUMNS,
    MACHINE_STATE_COLUMNS,
    MACHINE_STATES_FILE,
    PSTATE_COLUMNS,
    SCHEDULE_COLUMNS,
    USER_COLUMNS,
    USERS_FILE,
)

# ---------------------------------------------------------------------------- compare


@dataclass(frozen=True)
class ComparedRun:
    name: str
    schedule: Path  # the out_schedule.csv read
    values: np.ndarray  # one per COMPARED_METRICS, base units (J, s)
    manifest: dict | None = None  # the run folder's manifest.json, when it has one


def compare_runs(paths: list[str], names: list[str] | None = None,
                 episode: int | None = None) -> list[ComparedRun]:
    """Each path is a run folder (a training run: its last episode, or ``episode``) or an
    out_schedule.csv file, as the original took."""
    if len(paths) < 2:
        raise ConfigError("compare: give at least two runs")
    if names is not None and len(names) != len(paths):
        raise ConfigError(f"compare: {len(names)} names for {len(paths)} runs")
    schedules = [_schedule_file(p, episode) for p in paths]
    names = names or _distinct_names([Path(p) for p in paths])
    runs = []
    for name, path in zip(names, schedules):
        values = d.read_schedule(path)
        row = []
        for key, _, _ in COMPARED_METRICS:
            if not isinstance(values.get(key), float):
                raise FormatError(str(path), "line 2", f"no number for {key}; expected Batsim's "
                                  "out_schedule.csv columns", field=key)
            row.append(values[key])
        runs.append(ComparedRun(name, path, np.asarray(row), run_manifest(path)))
    return runs


def run_manifest(schedule: Path) -> dict | None:
    """The manifest.json of the run an out_schedule.csv belongs to: beside it, or, for an
    episode of a training run, in the run folder above."""
    folder = schedule.parent
    found = read_manifest(folder)
    if found is None and d.episode_numbers(folder.parent) and folder.name.startswith("episode_"):
        found = read_manifest(folder.parent)
    return found


def _schedule_file(path: str, episode: int | None) -> Path:
    p = Path(path)
    if p.is_file():
        return p
    return d.open_run(p, episode).require(d.SCHEDULE_FILE, "the comparison")


def _distinct_names(paths: list[Path]) -> list[str]:
    """Folder names, with as many parent folders as it takes to tell them apart."""
    parts = [p.resolve().parts if p.is_dir() else p.resolve().parent.parts for p in paths]
    for depth in range(1, max(len(x) for x in parts) + 1):
        names = ["/".join(x[-depth:]) for x in parts]
        if len(set(names)) == len(names):
            return names
    return [f"{n} #{i + 1}" for i, n in enumerate(names)]


def comparison_values(runs: list[ComparedRun]) -> np.ndarray:
    return np.stack([r.values for r in runs])


def comparison_table(runs: list[ComparedRun]) -> str:
    """Metrics as rows, runs as columns, each metric in one unit; the best (lowest) value is
    starred and the others show their difference to the first run."""
    values = comparison_values(runs)
    width = max(22, *(len(r.name) + 2 for r in runs))
    lines = [f"{'metric (lower is better)':<26}{'unit':<5}" + "".join(f"{r.name:>{width}}" for r in runs)]
    lines.append("-" * len(lines[0]))
    for m, (_, label, kind) in enumerate(COMPARED_METRICS):
        unit = metric_unit(kind, values[:, m])
        best = values[:, m].min()
        cells = []
        for r in range(len(runs)):
            v = values[r, m]
            shown = format_seconds(v) if unit.name == "s" else format_number(v * unit.scale, 5)
            text = shown + ("*" if v == best else " ")
            if r and values[0, m] != 0:
                text += f" ({100 * (v / values[0, m] - 1):+.1f} %)"
            cells.append(f"{text:>{width}}")
        lines.append(f"{label:<26}{unit.name or '-':<5}" + "".join(cells))
    lines.append(f"* best; (+x %): difference to {runs[0].name}")
    made = [r for r in runs if r.manifest is not None]
    if made:
        lines.append("")
        lines.append("how the runs were made (manifest.json):")
        for r in made:
            lines.append(f"  {r.name}:")
            lines.extend(f"    {line}" for line in manifest_lines(r.manifest))
    lines.extend(_user_lines(runs))
    return "\n".join(lines)


def _user_lines(runs: list[ComparedRun]) -> list[str]:
    """Per-user service of each run (hdeeprm.analysis.users): Jain's index and the worst
    served users; one line when no run knows its jobs' users."""
    from hdeeprm.analysis.users import fairness_line, run_user_metrics

    reports = [run_user_metrics(r.schedule.parent) for r in runs]
    if all(report is None for report in reports):
        return ["", f"per-user metrics: skipped, no run has user information ({USERS_FILE}; "
                "the workloads name no users)"]
    width = max(len(r.name) for r in runs)
    return (["", "per-user service (Jain's index of the users' mean bounded slowdown, 1 = all served alike):"]
            + [fairness_line(r.name, report, width) for r, report in zip(runs, reports)])


# ---------------------------------------------------------------------------- workloads

#: jobstat's fields: the original's names and the compiled workload arrays they read.
JOBSTAT_FIELDS: dict[str, str] = {"req_time": "req_time", "size": "res", "mem": "mem_mb", "mem_bw": "mem_bw_gbs"}
JOBSTAT_STATS: dict[str, Callable[[np.ndarray], float]] = {
    "min": np.min, "max": np.max, "mean": np.mean, "median": np.median,
    "p95": lambda a: np.percentile(a, 95), "p99": lambda a: np.percentile(a, 99),
}


def read_any_workload(path: str, *, nb_jobs: int | None = None, seed: int = 0, max_res: int | None = None):
    """A Batsim JSON workload as it is, or an SWF trace converted with delay profiles (so run
    times stay in seconds and no platform is needed); returns (workload, conversion report or None).
    Conversion draws come from the same generator as ``hdeeprm convert --seed``'s."""
    from hdeeprm.common.seeding import run_generators
    from hdeeprm.inputs.workload import ConversionOptions, read_batsim_workload, require_jobs, swf_to_workload

    if str(path).lower().endswith(".json"):
        return require_jobs(path, read_batsim_workload(path)), None
    options = ConversionOptions(nb_jobs=nb_jobs, profile_type="delay", max_res=max_res, seed=seed)
    workload, report = swf_to_workload(path, options, rng=run_generators(seed)[0])
    return require_jobs(path, workload, report), report


def jobstat(path: str, field_name: str, stat: str, seed: int = 0) -> float:
    """One statistic (min, max, mean, median, p95, p99) of one job field (req_time s, size
    machines, mem MB per core, mem_bw GB/s per core) over a workload's jobs."""
    if field_name not in JOBSTAT_FIELDS:
        raise ConfigError(f"jobstat: unknown field {field_name!r}; expected one of {', '.join(JOBSTAT_FIELDS)}")
    if stat not in JOBSTAT_STATS:
        raise ConfigError(f"jobstat: unknown statistic {stat!r}; expected one of {', '.join(JOBSTAT_STATS)}")
    workload, _ = read_any_workload(path, seed=seed)
    values = np.asarray(getattr(workload.compile(), JOBSTAT_FIELDS[field_name]), np.float64)
    values = values[np.isfinite(values)]
    if values.size == 0:
        raise ConfigError(f"{path}: no job has a {field_name}")
    return float(JOBSTAT_STATS[stat](values))


@dataclass(frozen=True)
class WorkloadSummary:
    source: str
    nb_jobs: int
    submit_span: float  # s, first to last submission
    columns: dict[str, np.ndarray]  # label with unit -> per-job values (NaN: unknown)
    nb_machines: int | None = None  # of the platform, when one was given
    offered_load: float | None = None  # machine-seconds asked / (machines x submission span)
    too_large: int = 0  # jobs asking for more machines than the platform has
    notes: tuple[str, ...] = field(default_factory=tuple)
    submit: np.ndarray | None = None  # per-job submit times (s), for the daily cycle
    day_origin_s: float | None = None  # time of day (s) of submit time 0; None: unknown
    nb_res: int | None = None  # machines the workload was made for (its nb_res, SWF MaxProcs)


RUNTIME = "run time (s)"
SIZE = "size (machines)"


def describe_workload(path: str, *, platform: str | None = None, hierarchy: str | None = None,
                      nb_jobs: int | None = None, seed: int = 0) -> WorkloadSummary:
    from hdeeprm.inputs.workload.model import KIND_DELAY

    plat = None
    if platform is not None:
        from hdeeprm.inputs.platform import load_platform, resolve_platform_name

        plat = load_platform(resolve_platform_name(platform), hierarchy=hierarchy)
    workload, report = read_any_workload(path, nb_jobs=nb_jobs, seed=seed,
                                         max_res=plat.nb_machines if plat is not None else None)
    if nb_jobs is not None and report is None:
        workload = type(workload)(workload.jobs[:nb_jobs], workload.profiles, workload.nb_res,
                                  workload.name, workload.source)
    a = workload.compile()
    notes = []
    runtime = np.where(a.kind == KIND_DELAY, a.work, np.nan)
    parallel = a.kind != KIND_DELAY
    if parallel.any():
        if plat is not None:

            runtime = np.where(parallel, a.work / (plat.reference_speed_gflops * 1e9), runtime)
        else:
            notes.append(f"{int(parallel.sum())} jobs give their work in flops: pass --platform "
                         "for their run time and the load")
    if report is not None and report.skipped_total:
        why = ", ".join(f"{n} {k}" for k, n in sorted(report.skipped.items()) if n)
        notes.append(f"{report.skipped_total} trace records left out ({why})")
    submit = a.subtime
    span = float(submit.max() - submit.min()) if submit.size else 0.0
    columns = {
        SIZE: a.res.astype(np.float64),
        "requested time (s)": a.req_time,
        RUNTIME: runtime,
        "inter-arrival time (s)": np.diff(np.sort(submit)) if submit.size > 1 else np.zeros(0),
        "memory per core (MB)": a.mem_mb,
        "memory bandwidth per core (GB/s)": a.mem_bw_gbs,
    }
    extra = {"submit": submit, "day_origin_s": _day_origin(path, report), "nb_res": workload.nb_res}
    summary = WorkloadSummary(str(path), len(a), span, columns, notes=tuple(notes), **extra)
    if plat is None:
        return summary
    m = plat.nb_machines
    known = np.isfinite(runtime)
    load = float((a.res[known] * runtime[known]).sum() / (m * span)) if span > 0 and known.any() else None
    return WorkloadSummary(str(path), len(a), span, columns, m, load, int((a.res > m).sum()), tuple(notes),
                           **extra)


def _day_origin(path: str, report) -> float | None:
    """Time of day (s, 0 to 86,400) of a workload's submit time 0. An SWF trace's times
    count from its header's UnixStartTime, in its TimeZoneString zone (UTC when the zone is
    unknown), or from midnight when it has no UnixStartTime (as ``hdeeprm generate`` writes
    them); the conversion then shifts them by the first submission. None for a Batsim JSON
    workload: its time 0 has no date."""
    if report is None:
        return None
    import gzip

    from hdeeprm.inputs.workload.swf import parse_swf

    try:
        with open(path, "rb") as f:
            head = f.read(2)
        opener = gzip.open if head == b"\x1f\x8b" else open
        with opener(path, "rb") as f:
            raw = f.read(256 * 1024)
    except (OSError, EOFError):
        return None
    comments = b"\n".join(line for line in raw.split(b"\n") if line.lstrip().startswith(b";"))
    meta = parse_swf(comments).metadata
    origin = 0.0
    start = meta.get("UnixStartTime")
    if isinstance(start, int):
        import datetime

        zone = datetime.timezone.utc
        name = meta.get("TimeZoneString")
        if isinstance(name, str):
            try:
                from zoneinfo import ZoneInfo

                zone = ZoneInfo(name.strip())
            except Exception:  # an unknown or malformed zone name: UTC
                zone = datetime.timezone.utc
        try:
            when = datetime.datetime.fromtimestamp(start, zone)
        except (OverflowError, OSError, ValueError):
            return None
        origin = when.hour * 3600 + when.minute * 60 + when.second
    return float((origin + report.time_offset_s) % 86400)


def arrival_hours(s: WorkloadSummary) -> np.ndarray:
    """Hour of the day (0 to 24) of each submission; from the workload's time 0 when its
    time of day is unknown (Batsim JSON)."""
    if s.submit is None:
        return np.zeros(0)
    return ((np.asarray(s.submit, np.float64) + (s.day_origin_s or 0.0)) % 86400) / 3600


def comparison_statistics(s: WorkloadSummary) -> list[tuple[str, float | None]]:
    """The rows of ``describe --compare``: (label, value; None when unknown)."""
    size = s.columns[SIZE]
    runtime = s.columns[RUNTIME]
    gaps = s.columns["inter-arrival time (s)"]
    rows: list[tuple[str, float | None]] = [("jobs", float(s.nb_jobs)), ("submission span (days)", s.submit_span / 86400)]
    parallel = size[size > 1]
    rows.append(("serial fraction (size 1)", float((size == 1).mean()) if size.size else None))
    whole = parallel[parallel == np.floor(parallel)].astype(np.int64)
    rows.append(("power-of-two fraction of parallel jobs",
                 float(((whole & (whole - 1)) == 0).sum() / parallel.size) if parallel.size else None))
    for label, values in (("size", size), ("run time (s)", runtime), ("inter-arrival (s)", gaps)):
        v = values[np.isfinite(values)]
        for q in (25, 50, 75, 95):
            rows.append((f"{label} p{q}", float(np.percentile(v, q)) if v.size else None))
        rows.append((f"{label} mean", float(v.mean()) if v.size else None))
    positive = runtime[np.isfinite(runtime) & (runtime > 0)]
    rows.append(("log run time mean (ln s)", float(np.log(positive).mean()) if positive.size else None))
    rows.append(("max size", float(size.max()) if size.size else None))
    machines = s.nb_machines or s.nb_res
    load = s.offered_load
    if s.nb_machines is None and machines and s.submit_span > 0:
        known = np.isfinite(runtime)
        load = float((size[known] * runtime[known]).sum() / (machines * s.submit_span)) if known.any() else None
    rows.append((f"offered load{'' if s.nb_machines else ' (own machine)'}", load))
    hours = arrival_hours(s)
    if hours.size:
        counts = np.bincount(hours.astype(np.int64) % 24, minlength=24)
        shares = counts / counts.sum()
        for start in range(0, 24, 3):
            rows.append((f"arrivals {start:02d}-{start + 3:02d} h (share)", float(shares[start:start + 3].sum())))
        rows.append(("arrivals 08-18 h (share)", float(shares[8:18].sum())))
        rows.append(("busiest hour of the day", float(np.argmax(counts))))
    return rows


def format_comparison(a: WorkloadSummary, b: WorkloadSummary, names: tuple[str, str] | None = None) -> str:
    """Two workloads' statistics side by side (``hdeeprm describe A --compare B``)."""
    names = names or (Path(a.source).name, Path(b.source).name)
    width = max(14, *(len(n) + 2 for n in names))
    rows_a, rows_b = dict(comparison_statistics(a)), dict(comparison_statistics(b))
    lines = [f"{'':<42}" + "".join(f"{n:>{width}}" for n in names)]
    for label in {**rows_a, **rows_b}:
        cells = [rows_a.get(label), rows_b.get(label)]
        shown = []
        for v in cells:
            if v is None or not np.isfinite(v):
                shown.append("unknown")
            elif "fraction" in label or "share" in label or "load" in label:
                shown.append(f"{v:.3f}")
            else:
                shown.append(format_count(v))
        lines.append(f"{label:<42}" + "".join(f"{x:>{width}}" for x in shown))
    for s, name in ((a, names[0]), (b, names[1])):
        if s.day_origin_s is None:
            lines.append(f"note: {name}: hours of the day counted from its time 0 (a Batsim JSON workload has no date)")
        lines.extend(f"note: {name}: {n}" for n in s.notes)
    return "\n".join(lines)


def format_summary(s: WorkloadSummary) -> str:
    unit = time_unit(s.submit_span)
    lines = [f"{s.source}: {s.nb_jobs} jobs submitted over {s.submit_span * unit.scale:,.1f} {unit.name}"]
    stats = ("min", "p25", "median", "mean", "p95", "p99", "max")
    lines.append(f"  {'':<34}" + "".join(f"{x:>11}" for x in stats))
    for label, values in s.columns.items():
        v = values[np.isfinite(values)]
        if v.size == 0:
            lines.append(f"  {label:<34}{'unknown':>11}")
            continue
        q = np.percentile(v, [0, 25, 50, 75, 95, 99, 100])
        row = (q[0], q[1], q[2], v.mean(), q[4], q[5], q[6])
        lines.append(f"  {label:<34}" + "".join(f"{format_count(x):>11}" for x in row))  # whole, or 4 digits
    sizes = s.columns[SIZE]
    if sizes.size:
        lines.append("  sizes: " + ", ".join(f"{label}: {n}" for label, n in _power_of_two_buckets(sizes)))
    if s.nb_machines is not None:
        load = "unknown" if s.offered_load is None else f"{s.offered_load:.3f}"
        lines.append(f"  on {s.nb_machines} machines: offered load {load} (machine-seconds of work per "
                     "machine-second of the submission span; above 1, the queue can only grow)")
        if s.too_large:
            lines.append(f"  {s.too_large} jobs ask for more than {s.nb_machines} machines (rejected there)")
    lines.extend(f"  note: {n}" for n in s.notes)
    return "\n".join(lines)


def _power_of_two_buckets(sizes: np.ndarray) -> list[tuple[str, int]]:
    top = int(np.ceil(np.log2(max(float(sizes.max()), 1.0))))
    edges = 2 ** np.arange(top + 1)
    counts = np.bincount(np.searchsorted(edges, sizes, side="left"), minlength=top + 1)
    out = []
    for i, n in enumerate(counts.tolist()):
        label = "1" if i == 0 else (str(edges[i]) if edges[i] == edges[i - 1] + 1 else f"{edges[i - 1] + 1}-{edges[i]}")
        if n:
            out.append((label, n))
    return out


# ---------------------------------------------------------------------------- clean


def _csv_header(prefix: str) -> Callable[[Path], bool]:
    def check(path: Path) -> bool:
        with open(path, "rb") as f:
            return f.readline().decode("utf-8", "replace").startswith(prefix)
    return check


def _json_with(test: Callable[[object], bool]) -> Callable[[Path], bool]:
    def check(path: Path) -> bool:
        try:
            return bool(test(json.loads(path.read_text())))
        except (ValueError, UnicodeDecodeError, RecursionError):
            return False  # not JSON, or nested deeper than anything hdeeprm writes: not ours
    return check


def _numbers_only(integers: bool, per_line: int = 1) -> Callable[[Path], bool]:
    def check(path: Path) -> bool:
        try:
            lines = [x.split() for x in path.read_text().splitlines() if x.strip()]
            for line in lines:
                if len(line) != per_line:
                    return False
                for x in line:
                    int(x) if integers else float(x)
        except (ValueError, UnicodeDecodeError):
            return False
        return True
    return check


def _contains(marker: bytes, magic: bytes = b"") -> Callable[[Path], bool]:
    # Markers sit near the start (PNG text chunks, SVG metadata, HTML head) or at the end
    # (a PDF's info dictionary): look at both ends only.
    def check(path: Path) -> bool:
        with open(path, "rb") as f:
            head = f.read(1 << 16)
            f.seek(max(0, path.stat().st_size - (1 << 16)))
            tail = f.read()
        return head.startswith(magic) and (marker in head or marker in tail)
    return check


def _json_lines_of_numbers(path: Path) -> bool:
    """hdeeprm-launch's log_probs.log: one JSON array of numbers per line."""
    try:
        with open(path, encoding="utf-8") as f:
            for line in f:
                values = json.loads(line)
                if not isinstance(values, list) or not all(isinstance(v, (int, float)) for v in values):
                    return False
    except (OSError, ValueError, UnicodeDecodeError, RecursionError):
        return False
    return True


def _is_dict_with(*keys: str) -> Callable[[object], bool]:
    return lambda x: isinstance(x, dict) and all(k in x for k in keys)


OVERUSE_FORMAT = "hdeeprm-overutilization/1"
TIMING_FILE = "timing.json"
REPORT_MARKER = b'<meta name="generator" content="hdeeprm report'
FIGURE_MARKER = b"hdeeprm plot"

#: Files hdeeprm writes into a run folder, with a test that a file of that name is ours.
#: ``True`` in the second place: configuration or checkpoint, kept by ``--soft``.
RUN_FILES: dict[str, tuple[Callable[[Path], bool], bool]] = {
    d.JOBS_FILE: (_csv_header(",".join(JOB_COLUMNS)), False),
    d.SCHEDULE_FILE: (_csv_header(",".join(SCHEDULE_COLUMNS)), False),
    d.ENERGY_FILE: (_csv_header(",".join(ENERGY_COLUMNS)), False),
    d.PSTATES_FILE: (_csv_header(",".join(PSTATE_COLUMNS)), False),
    MACHINE_STATES_FILE: (_csv_header(",".join(MACHINE_STATE_COLUMNS)), False),
    USERS_FILE: (_csv_header(",".join(USER_COLUMNS)), False),
    d.OVERUSE_FILE: (_json_with(lambda x: isinstance(x, dict) and x.get("format") == OVERUSE_FORMAT), False),
    TIMING_FILE: (_json_with(_is_dict_with("simulation_seconds")), False),
    "rewards.log": (_numbers_only(False), False),
    "losses.log": (_numbers_only(False), False),
    "makespans.log": (_numbers_only(False), False),
    "actions.log": (_numbers_only(True), False),
    d.PROBS_FILE: (_json_with(_is_dict_with("probs")), False),
    d.PROBS_FILE + ".tmp": (_json_with(_is_dict_with("probs")), False),
    d.EVALUATION_FILE: (_csv_header("policy,kind,windows,objective"), False),
    "evaluation_windows.csv": (_csv_header("policy,window,seed,window_start"), False),
    "comparison.csv": (_csv_header("candidate,baseline,n"), False),
    "evaluation.png": (_contains(FIGURE_MARKER), False),
    "validation.log": (_numbers_only(False, per_line=2), False),
    "best.pt": (_contains(b"", magic=b"PK\x03\x04"), True),
    "pretrain.json": (_json_with(_is_dict_with("teacher", "examples")), False),
    "report.html": (_contains(REPORT_MARKER), False),
    "run_config.json": (_json_with(_is_dict_with("command", "hdeeprm_version")), True),
    "experiment.json": (_json_with(_is_dict_with("algorithm", "episodes", "platform")), True),
    "options_resolved.json": (_json_with(_is_dict_with("pybatsim", "launch")), True),
    "insights.log": (_contains(b"hdeeprm-launch insights: "), False),
    "log_probs.log": (_json_lines_of_numbers, False),
    "model.pt": (_contains(b"", magic=b"PK\x03\x04"), True),  # torch.save's zip format
    # How the run was made (hdeeprm.common.manifest): kept by --soft, with what it describes.
    MANIFEST_FILE: (_json_with(is_manifest), True),
}
#: Real Batsim writes these names and columns too: they go only from a folder where
#: hdeeprm's own timing.json sits beside them (write_outputs always writes one).
BATSIM_NAMES = (d.JOBS_FILE, d.SCHEDULE_FILE, d.ENERGY_FILE, d.PSTATES_FILE, MACHINE_STATES_FILE)
FIGURES_DIR = "figures"
_FIGURE = _contains(FIGURE_MARKER)


def _temporary_file(name: str) -> tuple[Callable[[Path], bool], bool] | None:
    """The test for a temporary file that an interrupted save left (``.model.pt.<random>.tmp``)."""
    from fnmatch import fnmatchcase

    from hdeeprm.rl.resume import TEMPORARY_PATTERNS

    for pattern in TEMPORARY_PATTERNS + (f".{MANIFEST_FILE}.*.tmp",):  # write_manifest's temporary file
        if fnmatchcase(name, pattern):
            final = pattern.split(".*")[0].lstrip(".") if ".*" in pattern else pattern[:-len(".tmp")].lstrip(".")
            return RUN_FILES[final][0], False
    return None


@dataclass
class CleanPlan:
    root: Path
    remove: list[Path] = field(default_factory=list)
    kept: list[tuple[Path, str]] = field(default_factory=list)  # (path, why it stays)
    folders: list[Path] = field(default_factory=list)  # removed too if they end up empty, deepest first


def plan_clean(run_dir: str | Path, soft: bool = False) -> CleanPlan:
    """What ``hdeeprm clean`` would remove: files with a name hdeeprm writes whose content
    is recognised as hdeeprm's, in the run folder, its ``episode_<k>/`` and ``figures/``
    folders. Anything else is kept and listed. Refuses a folder with none of our files."""
    root = Path(run_dir)
    if root.is_symlink() or not root.is_dir():
        raise ConfigError(f"{root}: not a run folder (no such folder, or a symbolic link)")
    plan = CleanPlan(root)
    # A symbolic link named like an episode folder is never followed: its target is not ours.
    subfolders = [folder for folder in (root / f"episode_{k}" for k in d.episode_numbers(root))
                  if not folder.is_symlink()]
    for folder in [root] + subfolders:
        timing = folder / TIMING_FILE
        simulated_here = timing.is_file() and not timing.is_symlink() and RUN_FILES[TIMING_FILE][0](timing)
        for entry in sorted(folder.iterdir()):
            if entry.is_dir() and not entry.is_symlink() and (entry in subfolders or
                                                                (folder == root and entry.name == FIGURES_DIR)):
                continue
            _judge(plan, entry, soft, figures=False, simulated_here=simulated_here)
    figures = root / FIGURES_DIR
    if figures.is_dir() and not figures.is_symlink():
        for entry in sorted(figures.iterdir()):
            _judge(plan, entry, soft, figures=True, simulated_here=False)
        plan.folders.append(figures)
    plan.folders.extend(reversed(subfolders))
    plan.folders.append(root)
    if not plan.remove and not any(why.startswith("kept by --soft") for _, why in plan.kept):
        raise ConfigError(f"{root}: no file written by hdeeprm here; nothing removed (hdeeprm clean only "
                          "removes the outputs hdeeprm simulate / train / hdeeprm-launch / plot / report write)")
    return plan


def _judge(plan: CleanPlan, path: Path, soft: bool, figures: bool, simulated_here: bool) -> None:
    if path.is_symlink() or not path.is_file():
        plan.kept.append((path, "not a regular file"))
        return
    if path.name in BATSIM_NAMES and not figures and not simulated_here:
        plan.kept.append((path, f"a Batsim output with no hdeeprm {TIMING_FILE} beside it (real Batsim's?)"))
        return
    if figures:
        from hdeeprm.analysis.plots import FORMATS

        known, config = path.suffix.lstrip(".") in FORMATS, False
        ours = known and _FIGURE(path)
    else:
        test, config = RUN_FILES.get(path.name) or _temporary_file(path.name) or (None, False)
        known = test is not None
        ours = known and test(path)
    if not known:
        plan.kept.append((path, "not a name hdeeprm writes"))
    elif not ours:
        plan.kept.append((path, "content not recognised as hdeeprm's"))
    elif soft and config:
        plan.kept.append((path, "kept by --soft (configuration or checkpoint)"))
    else:
        plan.remove.append(path)


def apply_clean(plan: CleanPlan) -> list[Path]:
    """Remove the planned files, then the planned folders that are left empty."""
    removed = []
    for path in plan.remove:
        path.unlink()
        removed.append(path)
    for folder in plan.folders:
        try:
            folder.rmdir()  # only succeeds on an empty folder
            removed.append(folder)
        except OSError:
            pass
    return removed


def describe_plan(plan: CleanPlan, dry_run: bool, limit: int = 20) -> str:
    verb = "would remove" if dry_run else "removed"
    lines = [f"{plan.root}: {verb} {len(plan.remove)} files written by hdeeprm"]
    for path in plan.remove[:limit]:
        lines.append(f"  {os.path.relpath(path, plan.root)}")
    if len(plan.remove) > limit:
        lines.append(f"  ... and {len(plan.remove) - limit} more")
    if plan.kept:
        lines.append(f"kept {len(plan.kept)} entries:")
        for path, why in plan.kept[:limit]:
            lines.append(f"  {os.path.relpath(path, plan.root)}: {why}")
        if len(plan.kept) > limit:
            lines.append(f"  ... and {len(plan.kept) - limit} more")
    return "\n".join(lines)


__all__ = ["ComparedRun", "CleanPlan", "JOBSTAT_FIELDS", "JOBSTAT_STATS", "WorkloadSummary", "apply_clean",
           "compare_runs", "comparison_table", "describe_plan", "describe_workload", "format_summary", "jobstat",
           "arrival_hours", "comparison_statistics", "format_comparison",
           "plan_clean"]
