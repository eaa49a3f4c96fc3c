"""SWF trace -> Batsim workload, following HDeepRM's model without its bugs.

For each usable record (see :func:`swf_to_workload` for what "usable" means) one job is made:

* ``res`` = requested processors, else allocated processors (one Batsim host per core);
* requested time ``t`` = requested time, else run time; ``walltime`` = ``t``;
* run time ``r``: the trace's run time; when it is unknown (< 0) the record is dropped under
  ``runtime_model="real"`` unless ``unknown_run_time="short"``, which sets it to
  :data:`SHORT_RUN_TIME_S` (10 s) as RLScheduler does;
* actual work: the trace's real run time ``r`` (``runtime_model="real"``) or HDeepRM's
  over-estimation model ``f x t`` with ``f`` from its 25-point distribution
  (``runtime_model="hdeeprm"``). For parallel_homogeneous profiles the work is flops per host
  at the reference speed R (``R x 1e9 x seconds``); for delay profiles it is the seconds;
* profile extras kept for the decision side: ``req_time`` = t (s), ``req_ops`` = R x t x 1e9
  (flops per core), ``mem`` (MB per core), ``mem_bw`` (GB/s per core); both 0 with
  ``memory_demand="none"``;
* the job's user (SWF field 12, when >= 0) as the job's extra field ``user``, written into the
  Batsim JSON job (Batsim ignores it; ``hdeeprm compare`` and ``report`` read it for per-user
  metrics).

Each job keeps its own actual work: profiles are shared only between jobs whose profile
content is identical. Submit times are shifted so that the earliest accepted job is at 0 and
jobs are ordered by submit time (stable in trace order); ids are 0..N-1 in that order.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Mapping

import numpy as np

from hdeeprm.common.errors import ConfigError, WorkloadError
from hdeeprm.inputs.limits import MAX_RES
from hdeeprm.inputs.workload.model import Job, Profile, Workload, WorkloadArrays
from hdeeprm.inputs.workload.swf import SwfTrace, read_swf

RuntimeModel = Literal["real", "hdeeprm"]
ProfileType = Literal["parallel_homogeneous", "delay"]
UnknownRunTime = Literal["drop", "short"]
MemoryDemand = Literal["hdeeprm", "none"]
RUNTIME_MODELS: tuple[str, ...] = ("real", "hdeeprm")
PROFILE_TYPES: tuple[str, ...] = ("parallel_homogeneous", "delay")
UNKNOWN_RUN_TIMES: tuple[str, ...] = ("drop", "short")
MEMORY_DEMANDS: tuple[str, ...] = ("hdeeprm", "none")

#: Run time (s) given to records whose run time is unknown (< 0) with
#: ``unknown_run_time="short"``. RLScheduler (Zhang et al., SC 2020) does the same when it
#: loads a trace: DIR-LAB/deep-batch-scheduler, job.py, ``Workloads.__init__``, lines 147-149
#: at commit cd433e3d62a01705f255bd48cb55b393862800e7::
#:
#:     # filter those illegal data whose runtime < 0
#:     if j.run_time < 0:
#:         j.run_time = 10
#:
#: (There a missing requested time, -1, was already replaced by the run time as read, so such
#: a job keeps a requested time of -1; here it gets 10 s, as no job may have a requested time
#: <= 0. RLScheduler also drops records whose run time is 0, which this converter keeps.)
SHORT_RUN_TIME_S = 10

#: The SWF column of the user id (field 12); kept per job as ``Job.extra["user"]``.
USER_COLUMN = 11

#: HDeepRM's actual/requested factor f (after Tsafrir et al. 2007): f = k / 20 for k = 1..25,
#: with these probabilities. Kept as integers k so that f is exact in the docs and tests.
RUNTIME_FACTOR_TWENTIETHS = np.arange(1, 26)
RUNTIME_FACTOR_PROBS = np.array(
    [0.15, 0.09, 0.07] + [0.04] * 5 + [0.03] * 5 + [0.02] * 10 + [0.06, 0.08]
)
#: Per-core memory bandwidth choices (GB/s), drawn uniformly as in HDeepRM.
MEM_BW_CHOICES_GBS = np.array([4, 8, 12, 16, 20, 24])
#: Batsim refuses delay profiles of 0 s; a job whose trace run time is 0 (it ran for less
#: than the trace's one-second resolution) becomes this short delay instead of disappearing,
#: so that delay and parallel_homogeneous conversions of a trace hold the same jobs.
MIN_DELAY_S = 1e-6

#: Reasons a record is skipped, in the order they are tested (a record counts once, for the
#: first reason that applies).
SKIP_REASONS: tuple[str, ...] = (
    "negative_submit_time",  # submit time < 0
    "no_processors",  # neither requested nor allocated processors is a whole number >= 1
    "no_requested_time",  # neither requested time nor run time is > 0
    "no_run_time",  # runtime_model "real" and run time < 0 (unknown)
    "zero_run_time",  # zero_run_time "drop" and run time 0 (after unknown_run_time)
)


@dataclass(frozen=True)
class ConversionOptions:
    """How to turn an SWF trace into a workload.

    ``nb_jobs``: keep the first N accepted records of the trace (file order); None keeps all.
    ``runtime_model``: ``"real"`` (actual work = the trace's run time) or ``"hdeeprm"``
    (actual work = f x requested time, HDeepRM's over-estimation model).
    ``reference_speed_gflops``: R, GFLOP/s of the platform's reference core (its hierarchy's
    reference speed, or the mean host speed of a flat platform); converts seconds to flops.
    Required for parallel_homogeneous profiles.
    ``profile_type``: ``"parallel_homogeneous"`` (flops per host, speed-dependent) or
    ``"delay"`` (seconds, speed-independent).
    ``max_res``: machines of the target platform. Larger jobs are kept (the scheduler rejects
    them) and counted in the report; also written as the workload's ``nb_res``.
    ``seed``: seeds the generator used for ``mem_bw`` and the ``hdeeprm`` factor, when no
    generator is passed to :func:`swf_to_workload`.
    ``unknown_run_time``: what to do with records whose run time is unknown (< 0).
    ``"drop"`` (default): under the ``real`` runtime model they are skipped (reason
    ``no_run_time``); under ``hdeeprm`` they are kept when they have a requested time.
    ``"short"``: their run time is taken as :data:`SHORT_RUN_TIME_S` (10 s), as RLScheduler
    does, under either runtime model; with no requested time either, their requested time
    (walltime) is that run time too. The report counts them (``unknown_run_time_kept``).
    ``memory_demand``: ``"hdeeprm"`` (default): ``mem`` from the trace's requested (else used)
    memory and ``mem_bw`` drawn from :data:`MEM_BW_CHOICES_GBS`; ``"none"``: every job's
    ``mem`` and ``mem_bw`` are 0, so node memory never refuses a job and memory bandwidth
    never throttles one (a homogeneous setting such as RLScheduler's). ``mem_bw`` is still
    drawn, then discarded, so that every other field is the same with either value.
    ``zero_run_time``: ``"keep"`` (default) or ``"drop"`` records whose run time is 0
    (RLScheduler drops them, job.py line 150 at cd433e3; reason ``zero_run_time``).
    ``kill_at_requested_time``: True (default, Batsim's semantics): the walltime is the
    requested time and a job that runs longer is killed there. False (RLScheduler's): every
    job runs its whole run time; its walltime becomes max(requested, run time) x (1 + 1e-6)
    + 1 s so that the engine never kills it, while its requested time (``req_time``, which
    the job keys and observations use) stays the requested time. EASY backfilling estimates
    ends from walltimes, so under this option it knows the true end of the jobs that
    overrun their request.
    """

    nb_jobs: int | None = None
    runtime_model: RuntimeModel = "real"
    reference_speed_gflops: float | None = None
    profile_type: ProfileType = "parallel_homogeneous"
    max_res: int | None = None
    seed: int = 0
    unknown_run_time: UnknownRunTime = "drop"
    memory_demand: MemoryDemand = "hdeeprm"
    zero_run_time: str = "keep"
    kill_at_requested_time: bool = True

    def __post_init__(self) -> None:
        if self.zero_run_time not in ("keep", "drop"):
            raise ConfigError(f"zero_run_time: expected one of keep, drop, found {self.zero_run_time!r}")
        if not isinstance(self.kill_at_requested_time, bool):
            raise ConfigError(f"kill_at_requested_time: expected true or false, found {self.kill_at_requested_time!r}")
        _check_optional_int(self.nb_jobs, "nb_jobs", minimum=1)
        _check_optional_int(self.max_res, "max_res", minimum=1, maximum=MAX_RES)
        _check_optional_int(self.seed, "seed", minimum=0, optional=False)
        if self.runtime_model not in RUNTIME_MODELS:
            raise ConfigError(
                f"runtime_model: expected one of {', '.join(RUNTIME_MODELS)}, found {self.runtime_model!r}"
            )
        if self.profile_type not in PROFILE_TYPES:
            raise ConfigError(
                f"profile_type: expected one of {', '.join(PROFILE_TYPES)}, found {self.profile_type!r}"
            )
        if self.unknown_run_time not in UNKNOWN_RUN_TIMES:
            raise ConfigError(
                f"unknown_run_time: expected one of {', '.join(UNKNOWN_RUN_TIMES)}, "
                f"found {self.unknown_run_time!r}"
            )
        if self.memory_demand not in MEMORY_DEMANDS:
            raise ConfigError(
                f"memory_demand: expected one of {', '.join(MEMORY_DEMANDS)}, "
                f"found {self.memory_demand!r}"
            )
        speed = self.reference_speed_gflops
        if speed is not None:
            if isinstance(speed, bool) or not isinstance(speed, (int, float)) or not (
                math.isfinite(speed) and speed > 0
            ):
                raise ConfigError(
                    f"reference_speed_gflops: expected a positive number of GFLOP/s, found {speed!r}"
                )
            object.__setattr__(self, "reference_speed_gflops", float(speed))

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> "ConversionOptions":
        """Build from a mapping (a config file section, CLI options); unknown keys are errors."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ConfigError(
                f"unknown conversion option(s) {', '.join(map(repr, unknown))}; "
                f"known options are {', '.join(sorted(known))}"
            )
        return cls(**dict(values))

    def to_dict(self) -> dict[str, Any]:
        """The resolved options, as written beside a run's outputs."""
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class ConversionReport:
    """What happened to the trace's records.

    ``records``: data records in the trace. ``examined``: records looked at before ``nb_jobs``
    accepted ones were found (all of them when not limited). ``accepted``: jobs made.
    ``skipped``: examined records left out, per reason (:data:`SKIP_REASONS`).
    ``larger_than_max_res``: accepted jobs asking more machines than ``max_res`` (kept; the
    scheduler rejects them). ``exceeding_walltime``: accepted jobs whose actual work, at the
    reference speed, lasts longer than their walltime (they are killed when they reach it).
    ``time_offset_s``: submit time of the earliest accepted record, subtracted from all.
    ``unknown_run_time_kept``: accepted jobs whose run time was unknown (< 0) and set to
    :data:`SHORT_RUN_TIME_S` by ``unknown_run_time="short"`` (0 otherwise).
    """

    source: str
    records: int
    examined: int
    accepted: int
    skipped: Mapping[str, int] = field(default_factory=dict)
    larger_than_max_res: int = 0
    exceeding_walltime: int = 0
    time_offset_s: float = 0.0
    unknown_run_time_kept: int = 0

    @property
    def skipped_total(self) -> int:
        return sum(self.skipped.values())


def swf_to_workload(
    trace: SwfTrace | str | Path,
    options: ConversionOptions | Mapping[str, Any] | None = None,
    *,
    rng: np.random.Generator | None = None,
) -> tuple[Workload, ConversionReport]:
    """Convert an SWF trace (or its path) into a Batsim workload and a report.

    A record is accepted when its submit time is >= 0, it names a whole number >= 1 of
    processors (requested, else allocated), it has a requested time > 0 (else a run time
    > 0, used as the requested time) and, under the ``real`` runtime model, a known run time
    (>= 0). Zero requested processors or time count as missing: SWF sites write 0 where they
    did not record a value, and Batsim refuses a walltime of 0. With
    ``unknown_run_time="short"`` an unknown run time counts as :data:`SHORT_RUN_TIME_S` in
    all of these tests, so such records are accepted whenever they have processors.

    Randomness: ``rng`` (default: ``numpy.random.default_rng(options.seed)``) is split with
    ``Generator.spawn(2)``; the first child draws every ``mem_bw`` and the second every
    ``hdeeprm`` factor, one per accepted record in trace order. So ``mem_bw`` does not depend
    on the runtime model, and converting the first k jobs gives the same draws as the first k
    jobs of a longer conversion. ``memory_demand`` and ``unknown_run_time`` do not change
    how many draws are made per accepted record (``"none"`` draws ``mem_bw`` and discards it),
    though ``"short"`` may accept more records.
    """
    if options is None:
        options = ConversionOptions()
    elif not isinstance(options, ConversionOptions):
        options = ConversionOptions.from_dict(options)
    if options.profile_type == "parallel_homogeneous" and options.reference_speed_gflops is None:
        raise ConfigError(
            "reference_speed_gflops is required for parallel_homogeneous profiles: it converts "
            "run times to flops (use the platform's reference speed)"
        )
    if not isinstance(trace, SwfTrace):
        trace = read_swf(trace)
    if rng is None:
        rng = np.random.default_rng(options.seed)
    bw_rng, factor_rng = rng.spawn(2)

    selected, examined, skipped = _select_records(trace, options)
    table = trace.records[selected]
    n = len(selected)

    submit = table[:, 1]
    run, unknown_run = _run_times(table, options)
    # Clipped before the cast: a request of 1e30 processors must not wrap to a negative
    # int64. A job of MAX_RES (2**31) machines is larger than any platform, so it is still
    # rejected by the scheduler as the original request would be.
    res = np.minimum(np.where(table[:, 7] >= 1, table[:, 7], table[:, 4]), MAX_RES).astype(np.int64)
    req_time = np.where(table[:, 8] > 0, table[:, 8], run)
    mem_mb = _memory_mb(table[:, 9], table[:, 6])
    # Drawn whatever memory_demand is, so that no other draw moves with it.
    mem_bw = MEM_BW_CHOICES_GBS[bw_rng.integers(0, len(MEM_BW_CHOICES_GBS), size=n)]
    if options.memory_demand == "none":
        mem_mb = np.zeros(n)
        mem_bw = np.zeros(n, dtype=np.int64)
    if options.runtime_model == "hdeeprm":
        twentieths = factor_rng.choice(RUNTIME_FACTOR_TWENTIETHS, size=n, p=RUNTIME_FACTOR_PROBS)
        actual_s = req_time * twentieths / 20.0
    else:
        actual_s = run

    offset = float(submit.min()) if n else 0.0
    order = np.argsort(submit, kind="stable")
    workload = _build_workload(
        subtime=(submit - offset)[order],
        res=res[order],
        req_time=req_time[order],
        actual_s=actual_s[order],
        mem_mb=mem_mb[order],
        mem_bw=mem_bw[order],
        walltime=(req_time if options.kill_at_requested_time
                  else np.maximum(req_time, actual_s) * (1 + 1e-6) + 1.0)[order],
        options=options,
        nb_res=options.max_res if options.max_res is not None else (_machines(trace.max_procs) or _max_or_none(res)),
        source=trace.source,
        job_numbers=table[:, 0][order],
        users=table[:, USER_COLUMN][order],
    )
    report = ConversionReport(
        source=trace.source,
        records=len(trace),
        examined=examined,
        accepted=n,
        skipped=skipped,
        larger_than_max_res=int((res > options.max_res).sum()) if options.max_res is not None else 0,
        exceeding_walltime=int((actual_s > req_time).sum()) if options.kill_at_requested_time else 0,
        time_offset_s=offset,
        unknown_run_time_kept=int(unknown_run.sum()) if options.unknown_run_time == "short" else 0,
    )
    return workload, report


def _run_times(records: np.ndarray, options: ConversionOptions) -> tuple[np.ndarray, np.ndarray]:
    """Run time per record after ``unknown_run_time``, and which records had it unknown."""
    run = records[:, 3]
    unknown = run < 0
    if options.unknown_run_time == "short":
        run = np.where(unknown, float(SHORT_RUN_TIME_S), run)
    return run, unknown


def _select_records(
    trace: SwfTrace, options: ConversionOptions
) -> tuple[np.ndarray, int, dict[str, int]]:
    """Indices of the accepted records (first ``nb_jobs``), how many records were examined to
    find them, and the skip counts per reason over the examined records."""
    t = trace.records
    requested, allocated = t[:, 7], t[:, 4]
    res = np.where(requested >= 1, requested, allocated)
    run, _ = _run_times(t, options)
    has_time = (t[:, 8] > 0) | (run > 0)
    failures = [
        t[:, 1] < 0,
        ~((res >= 1) & (res == np.floor(res))),
        ~has_time,
        (run < 0) if options.runtime_model == "real" else np.zeros(len(t), bool),
        (run == 0) if options.zero_run_time == "drop" else np.zeros(len(t), bool),
    ]
    # reason[i] = index of the first failed test, len(failures) when the record is accepted.
    reason = np.full(len(t), len(failures), dtype=np.int8)
    for code in range(len(failures) - 1, -1, -1):
        reason[failures[code]] = code
    accepted = np.flatnonzero(reason == len(failures))
    examined = len(t)
    if options.nb_jobs is not None and len(accepted) > options.nb_jobs:
        accepted = accepted[: options.nb_jobs]
        examined = int(accepted[-1]) + 1
    counts = np.bincount(reason[:examined], minlength=len(failures) + 1)
    skipped = {name: int(counts[code]) for code, name in enumerate(SKIP_REASONS) if counts[code]}
    return accepted, examined, skipped


def _memory_mb(requested_kb: np.ndarray, used_kb: np.ndarray) -> np.ndarray:
    """MB per core: requested memory, else used memory, else 0. Decimal units (1 MB = 1000 KB)
    to match the platform's MB, kept fractional so small jobs do not round to 0 MB. A 0 is
    treated like a missing value, since no job runs in 0 KB."""
    kb = np.where(requested_kb > 0, requested_kb, np.where(used_kb > 0, used_kb, 0.0))
    return kb / 1000.0


def _build_workload(
    *,
    subtime: np.ndarray,
    res: np.ndarray,
    req_time: np.ndarray,
    actual_s: np.ndarray,
    mem_mb: np.ndarray,
    mem_bw: np.ndarray,
    walltime: np.ndarray,
    options: ConversionOptions,
    nb_res: int | None,
    source: str,
    job_numbers: np.ndarray,
    users: np.ndarray | None = None,
) -> Workload:
    """Jobs and deduplicated profiles from per-job arrays already in submission order. A job
    whose trace record names a user (SWF field 12, >= 0) keeps it as ``Job.extra["user"]``."""
    speed = options.reference_speed_gflops
    if options.profile_type == "delay":
        work = np.maximum(actual_s, MIN_DELAY_S)
    else:
        # Whole flops: exact in JSON and free of float noise such as 1.2600000000000002e12;
        # rounding changes a run by less than one flop.
        with np.errstate(over="ignore"):  # checked below
            work = np.rint(actual_s * speed * 1e9)
    with np.errstate(over="ignore"):
        req_ops = np.rint(req_time * speed * 1e9) if speed is not None else None
    # Times of 1e300 s (or a reference speed of 1e300 GFLOP/s) overflow: refuse them here
    # rather than make a workload of infinite work that no JSON file can hold.
    for what, values in (("work", work), ("requested work", req_ops), ("walltime", walltime)):
        bad = np.flatnonzero(~np.isfinite(values)) if values is not None else ()
        if len(bad):
            raise WorkloadError(source, f"job {int(job_numbers[bad[0]])}",
                                f"its {what} overflows a double: run or requested time too large"
                                + (f" at reference_speed_gflops {speed!r}" if speed is not None else ""))

    columns = {
        "subtime": _tidy(subtime),
        "walltime": _tidy(walltime),
        "req_time": _tidy(req_time),
        "work": _tidy(work),
        "req_ops": _tidy(req_ops) if req_ops is not None else [None] * len(res),
        "mem": _tidy(mem_mb),
        "mem_bw": _tidy(mem_bw),
    }
    profiles: dict[str, Profile] = {}
    names: dict[tuple, str] = {}
    jobs = []
    rows = zip(columns["subtime"], res.tolist(), columns["walltime"], columns["req_time"], columns["work"],
               columns["req_ops"], columns["mem"], columns["mem_bw"])
    # Per job, its extra fields: {"user": id} when the record names its user, else none.
    no_extra: dict[str, Any] = {}
    if users is not None:  # ids an int64 cannot hold (or NaN) name no user, as negative ones
        users = np.where(np.isfinite(users) & (users >= 0) & (users < 2.0**62), users, -1).astype(np.int64)
    extras = ([{"user": u} if u >= 0 else no_extra for u in users.tolist()]
              if users is not None and (users >= 0).any() else [no_extra] * len(res))
    for job_id, (sub, nres, wall, req, wrk, ops, mem, bw) in enumerate(rows):
        key = (wrk, req, ops, mem, bw)
        name = names.get(key)
        if name is None:
            name = names[key] = f"p{len(names)}"
            profiles[name] = _profile(name, options.profile_type, wrk, req, ops, mem, bw)
        jobs.append(Job(id=str(job_id), subtime=sub, res=nres, profile=name, walltime=wall, extra=extras[job_id]))
    return Workload(jobs=tuple(jobs), profiles=profiles, nb_res=nb_res, source=source)


def _profile(name: str, kind: str, work, req_time, req_ops, mem, mem_bw) -> Profile:
    extra: dict[str, Any] = {"req_time": req_time}
    if req_ops is not None:
        extra["req_ops"] = req_ops
    extra["mem"] = mem
    extra["mem_bw"] = mem_bw
    if kind == "delay":
        return Profile(name=name, type="delay", delay=work, extra=extra)
    return Profile(name=name, type="parallel_homogeneous", cpu=work, com=0, extra=extra)


def _tidy(values: np.ndarray) -> list[int | float]:
    """Python numbers for JSON: integral values as int (so files show 3600, not 3600.0)."""
    out = values.tolist()
    integral = (values == np.floor(values)) & (np.abs(values) < 2**53)
    return [int(v) if whole else v for v, whole in zip(out, integral.tolist())]


def _machines(max_procs: int | None) -> int | None:
    """The header's MaxProcs when it is a possible machine count (1 to MAX_RES), else None."""
    return max_procs if max_procs is not None and 1 <= max_procs <= MAX_RES else None


def _max_or_none(values: np.ndarray) -> int | None:
    return int(values.max()) if len(values) else None


def _check_optional_int(value: Any, name: str, *, minimum: int, optional: bool = True,
                        maximum: int | None = None) -> None:
    if value is None and optional:
        return
    if (isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum
            or (maximum is not None and value > maximum)):
        bounds = f">= {minimum}" if maximum is None else f"from {minimum} to {maximum}"
        expected = f"an integer {bounds}" + (" or null" if optional else "")
        raise ConfigError(f"{name}: expected {expected}, found {value!r}")


# --------------------------------------------------------------------------------------------
# Job limits (normalisation of the job-queue observations)


@dataclass(frozen=True)
class JobLimits:
    """99th percentiles over jobs, used to scale job features to about [0, 1]:
    ``max_time`` (s, requested time), ``max_core`` (machines), ``max_mem`` (MB per core),
    ``max_mem_bw`` (GB/s per core). Being percentiles, 1 % of jobs exceed them."""

    max_time: float
    max_core: float
    max_mem: float
    max_mem_bw: float

    def as_dict(self) -> dict[str, float]:
        return dataclasses.asdict(self)


def job_limits(workload: Workload | WorkloadArrays) -> JobLimits:
    """Linear-interpolation 99th percentiles of requested time, res, mem and mem_bw over jobs.

    A job's requested time is its profile's ``req_time``, else its walltime; jobs with neither
    are left out of ``max_time``. A limit that comes out 0 or undefined (all jobs without
    memory information, an empty workload) is replaced by 1, so that dividing by it is safe
    and leaves the feature at 0.
    """
    arrays = workload if isinstance(workload, WorkloadArrays) else workload.compile()
    req_time = arrays.req_time[np.isfinite(arrays.req_time)]
    return JobLimits(
        max_time=_percentile99(req_time),
        max_core=_percentile99(arrays.res),
        max_mem=_percentile99(arrays.mem_mb),
        max_mem_bw=_percentile99(arrays.mem_bw_gbs),
    )


def _percentile99(values: np.ndarray) -> float:
    if len(values) == 0:
        return 1.0
    limit = float(np.percentile(values, 99))
    return limit if limit > 0 else 1.0
