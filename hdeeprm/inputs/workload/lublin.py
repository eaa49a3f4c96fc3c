"""Synthetic workloads from the Lublin-Feitelson model of rigid parallel jobs.

U. Lublin and D. G. Feitelson, "The workload on parallel supercomputers: modeling the
characteristics of rigid jobs", J. Parallel Distrib. Comput. 63(11), 2003 (Hebrew University
technical report, 1999). Its reference implementation is the C program ``m_lublin99.c`` of the
Parallel Workloads Archive (https://www.cs.huji.ac.il/labs/parallel/workload/models.html).
This module reproduces that program's model with its published parameters (the program's
``#define`` names are given beside each field below); the code is our own, vectorised with
numpy and driven by a :class:`numpy.random.Generator` (no global seeding).

The model, per job type (batch and interactive have their own parameters, as in the program
with ``INCLUDE_JOBS_TYPE`` 1):

* **size**: with probability ``serial_prob`` the job is serial (1 core). Otherwise
  ``par = log2(size)`` is drawn from a two-stage uniform distribution: U(ulow, umed) with
  probability ``uprob``, else U(umed, uhi). With probability ``pow2_prob`` (of all jobs: the
  program tests ``u <= serial_prob + pow2_prob`` with the same uniform ``u``) ``par`` is
  rounded, so the size is a power of two; the size is ``round(2 ** par)``.
* **run time**: ``log(run time)`` (natural log, seconds) follows a hyper-gamma distribution:
  Gamma(a1, b1) with probability ``p = pa * size + pb`` (clipped to [0, 1]), else
  Gamma(a2, b2) (shape, scale). Since ``pa < 0``, larger jobs run longer. Draws above
  ``TOO_MUCH_TIME`` (12, e**12 s, about 1.9 days) are redrawn. The run time is
  ``floor(exp(x))`` seconds, as the program prints it.
* **arrivals**: the day is cut into 48 half-hour buckets. Bucket ``(i - 1) mod 48`` has the
  weight ``F(i + 0.5) - F(i - 0.5)`` for ``i`` in ``CYCLIC_DAY_START .. CYCLIC_DAY_START + 47``,
  ``F`` the CDF of Gamma(anum, bnum); weights are divided by their mean. The log of each
  inter-arrival time "at rush hour" is drawn from Gamma(aarr x arar, barr) (redrawn above
  ``TOO_MUCH_ARRIVE_TIME``, 13); ``exp`` of it, divided by the bucket length, is a number
  of points, and time advances through the buckets paying each bucket's weight in points
  (a bucket of weight 2 is crossed twice as slowly: twice as many arrivals fall in it). The
  simulation starts at midnight (``START`` 0). Batch and interactive jobs arrive in two
  independent streams, merged by time.

Differences from the program, all deliberate:

* **Machine size.** The program's sizes fit a 128-node machine (``UHI_BATCH`` 7); it asks the
  user to set ``uhi`` to log2 of the system size and ``umed`` 1.5 to 3.5 below it. For a
  machine of C cores, :meth:`LublinParameters.for_machine` shifts ``umed`` and ``uhi`` of both
  types by ``log2(C) - 7``, keeping the published gaps (batch: 2 and interactive: 2.5 between
  ``umed`` and ``uhi``; the interactive ``uhi`` 1.5 below the batch one); ``ulow`` stays unless
  the machine is too small for it (then ``ulow <= umed <= uhi`` is restored by lowering them).
  On 128 cores the published parameters are used unchanged. A power-of-two job whose size
  would exceed C (``round(par)`` can pass ``log2 C`` when C is not a power of two) gets the
  largest power of two <= C; any other size is capped at C.
* **Load.** The program has no load setting (its comments say to change ``aarr``/``barr``).
  With a target ``load``, every inter-arrival draw is multiplied by one factor ``k``
  (``log k`` added to the gamma draw: the same change as raising ``barr``, but keeping the
  shape of the distribution), found by iteration so that the offered load
  ``sum(size x run time) / (C x (last submission - first submission))`` is the target to
  within 0.1 %. The daily cycle is unchanged (the buckets keep their half hour).
* **Time resolution.** The program adds each inter-arrival time to an integer clock,
  truncating each one (up to one second lost per job); here the arrival times are computed
  exactly and then floored to whole seconds.
* **Random numbers.** numpy's gamma and uniform generators replace the program's drand48-based
  ones (same distributions, other streams); each stream of draws comes from its own child of
  the generator, so changing the estimate factor, say, does not move the sizes.

Requested times (SWF field 9): the model has none. By default a job requests exactly its run
time (``estimate_factor`` 1: perfect estimates, what the model's users commonly assume, so
that backfilling results do not depend on an estimate model of our choosing). With
``estimate_factor`` K > 1 the request is ``ceil(run time x U(1, K))``, a uniform
over-estimation in the spirit of Mu'alem and Feitelson's "f model" (IEEE TPDS 12(6), 2001).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hdeeprm.common.errors import ConfigError
from hdeeprm.inputs.limits import MAX_RES

#: Constants of m_lublin99.c.
BUCKETS = 48  # BUCKETS: half-hours in a day
SECONDS_IN_DAY = 24 * 3600
SECONDS_IN_BUCKET = SECONDS_IN_DAY // BUCKETS  # SECONDS_IN_BUCKET, 1800 s
#: log2 of the machine size the published parameters were fitted for (UHI_BATCH: 128 nodes).
REFERENCE_UHI = 7.0
INTERACTIVE, BATCH = 0, 1  # the program's ACTIVE and BATCH; the SWF queue field (0 = interactive)
TYPE_NAMES = {INTERACTIVE: "interactive", BATCH: "batch"}


@dataclass(frozen=True)
class JobTypeParameters:
    """The model's parameters for one job type (m_lublin99.c's names in capitals)."""

    # size: serial and power-of-two probabilities, two-stage uniform of log2(size)
    serial_prob: float  # SERIAL_PROB_*
    pow2_prob: float  # POW2_PROB_*
    ulow: float  # ULOW_*
    umed: float  # UMED_*
    uhi: float  # UHI_*
    uprob: float  # UPROB_*
    # run time: hyper-gamma of log(run time), p = pa * size + pb
    a1: float  # A1_*
    b1: float  # B1_*
    a2: float  # A2_*
    b2: float  # B2_*
    pa: float  # PA_*
    pb: float  # PB_*
    # arrivals: Gamma(aarr * arar, barr) of log inter-arrival, Gamma(anum, bnum) daily cycle
    aarr: float  # AARR_*
    barr: float  # BARR_*
    anum: float  # ANUM_*
    bnum: float  # BNUM_*
    arar: float  # ARAR_* (arrive-rush-all ratio: aarr is multiplied by it)

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                raise ConfigError(f"Lublin parameter {f.name}: expected a finite number, found {value!r}")
        for name in ("serial_prob", "pow2_prob", "uprob"):
            if not 0 <= getattr(self, name) <= 1:
                raise ConfigError(f"Lublin parameter {name}: expected a probability in [0, 1], "
                                  f"found {getattr(self, name)!r}")
        if self.serial_prob + self.pow2_prob > 1 + 1e-12:
            raise ConfigError("Lublin parameters: serial_prob + pow2_prob must be at most 1")
        if not 0 <= self.ulow <= self.umed <= self.uhi:
            raise ConfigError(f"Lublin parameters: expected 0 <= ulow <= umed <= uhi, found "
                              f"{self.ulow}, {self.umed}, {self.uhi}")
        for name in ("a1", "b1", "a2", "b2", "aarr", "barr", "anum", "bnum", "arar"):
            if getattr(self, name) <= 0:
                raise ConfigError(f"Lublin parameter {name}: expected a positive number, found {getattr(self, name)!r}")

    def runtime_p(self, size: np.ndarray | float) -> np.ndarray:
        """The hyper-gamma's probability of its first gamma for jobs of ``size`` cores."""
        return np.clip(self.pa * np.asarray(size, np.float64) + self.pb, 0.0, 1.0)


#: m_lublin99.c, batch jobs (``*_BATCH``).
BATCH_PARAMETERS = JobTypeParameters(
    serial_prob=0.2927, pow2_prob=0.6686, ulow=1.2, umed=5, uhi=7, uprob=0.875,
    a1=6.57, b1=0.823, a2=639.1, b2=0.0156, pa=-0.003, pb=0.6986,
    aarr=6.0415, barr=0.8531, anum=6.1271, bnum=5.2740, arar=1.0519)
#: m_lublin99.c, interactive jobs (``*_ACTIVE``).
INTERACTIVE_PARAMETERS = JobTypeParameters(
    serial_prob=0.1541, pow2_prob=0.625, ulow=1, umed=3, uhi=5.5, uprob=0.705,
    a1=3.8351, b1=0.6605, a2=7.073, b2=0.6856, pa=-0.0118, pb=0.9156,
    aarr=6.5510, barr=0.6621, anum=8.9186, bnum=3.6680, arar=0.9797)
#: m_lublin99.c, one type for the whole sample (``INCLUDE_JOBS_TYPE`` 0; unprefixed names).
TYPELESS_PARAMETERS = JobTypeParameters(
    serial_prob=0.244, pow2_prob=0.576, ulow=0.8, umed=4.5, uhi=7, uprob=0.86,
    a1=4.2, b1=0.94, a2=312, b2=0.03, pa=-0.0054, pb=0.78,
    aarr=10.2303, barr=0.4871, anum=8.1737, bnum=3.9631, arar=1.0225)


@dataclass(frozen=True)
class LublinParameters:
    """The whole model: the interactive and batch job types (``batch`` None: one type only,
    the program with ``INCLUDE_JOBS_TYPE`` 0, which makes every job interactive; use
    :meth:`typeless` for its parameters) and the program's constants."""

    interactive: JobTypeParameters = INTERACTIVE_PARAMETERS
    batch: JobTypeParameters | None = BATCH_PARAMETERS
    too_much_time: float = 12.0  # TOO_MUCH_TIME: log run times above it are redrawn
    too_much_arrive_time: float = 13.0  # TOO_MUCH_ARRIVE_TIME: log inter-arrivals above it are redrawn
    cyclic_day_start: int = 11  # CYCLIC_DAY_START
    start_hour: int = 0  # START: the simulation starts at this hour of the day

    def __post_init__(self) -> None:
        if isinstance(self.start_hour, bool) or not isinstance(self.start_hour, int) or not 0 <= self.start_hour < 24:
            raise ConfigError(f"Lublin start_hour: expected an hour 0 to 23, found {self.start_hour!r}")
        if not isinstance(self.cyclic_day_start, int) or isinstance(self.cyclic_day_start, bool):
            raise ConfigError(f"Lublin cyclic_day_start: expected an integer, found {self.cyclic_day_start!r}")
        for name in ("too_much_time", "too_much_arrive_time"):
            if not (isinstance(getattr(self, name), (int, float)) and getattr(self, name) > 0):
                raise ConfigError(f"Lublin {name}: expected a positive number, found {getattr(self, name)!r}")

    @classmethod
    def typeless(cls) -> "LublinParameters":
        """The program's parameters for a sample that does not tell batch from interactive."""
        return cls(interactive=TYPELESS_PARAMETERS, batch=None)

    @property
    def types(self) -> dict[int, JobTypeParameters]:
        """{SWF queue number (0 interactive, 1 batch): parameters} of the types in use."""
        out = {INTERACTIVE: self.interactive}
        if self.batch is not None:
            out[BATCH] = self.batch
        return out

    def for_machine(self, cores: int) -> "LublinParameters":
        """The parameters with ``umed`` and ``uhi`` shifted by ``log2(cores) - 7`` (the
        published ones fit 128 nodes), then ``ulow <= umed <= uhi <= log2(cores)`` restored
        on machines too small for the published ``ulow``. See the module's docstring."""
        top = math.log2(_check_cores(cores))
        shift = top - REFERENCE_UHI

        def shifted(t: JobTypeParameters) -> JobTypeParameters:
            uhi = min(t.uhi + shift, top)
            uhi = max(uhi, 0.0)
            ulow = min(t.ulow, uhi)
            umed = min(max(t.umed + shift, ulow), uhi)
            return dataclasses.replace(t, ulow=ulow, umed=umed, uhi=uhi)

        return dataclasses.replace(self, interactive=shifted(self.interactive),
                                   batch=None if self.batch is None else shifted(self.batch))


# ---------------------------------------------------------------------------- distributions


def gamma_cdf(x: float, shape: float, scale: float) -> float:
    """CDF of Gamma(shape, scale) at ``x``: the regularised lower incomplete gamma function
    P(shape, x / scale), by its series below ``shape + 1`` and its continued fraction above
    (the method of the program's ``gamcdf``, after Numerical Recipes)."""
    x = x / scale
    if x <= 0:
        return 0.0
    log_front = -x + shape * math.log(x) - math.lgamma(shape)
    if x < shape + 1:
        term = total = 1.0 / shape
        a = shape
        for _ in range(10_000):
            a += 1
            term *= x / a
            total += term
            if abs(term) < abs(total) * 1e-15:
                break
        return min(1.0, total * math.exp(log_front))
    # Lentz's continued fraction for Q(shape, x)
    tiny = 1e-300
    b = x + 1 - shape
    c = 1 / tiny
    d = 1 / b
    h = d
    for i in range(1, 10_000):
        an = -i * (i - shape)
        b += 2
        d = an * d + b
        d = tiny if abs(d) < tiny else d
        c = b + an / c
        c = tiny if abs(c) < tiny else c
        d = 1 / d
        delta = d * c
        h *= delta
        if abs(delta - 1) < 1e-15:
            break
    return max(0.0, 1.0 - math.exp(log_front) * h)


def bucket_weights(t: JobTypeParameters, cyclic_day_start: int = 11) -> np.ndarray:
    """The 48 half-hour weights of the daily cycle (bucket 0 starts at midnight), divided by
    their mean, as the program's ``arrive_init`` computes them."""
    weights = np.zeros(BUCKETS)
    for i in range(cyclic_day_start, BUCKETS + cyclic_day_start):
        weights[(i - 1) % BUCKETS] = gamma_cdf(i + 0.5, t.anum, t.bnum) - gamma_cdf(i - 0.5, t.anum, t.bnum)
    if not (weights > 0).all():
        raise ConfigError("Lublin parameters anum, bnum: some half hour of the day would get no arrival")
    return weights / weights.mean()


def _truncated_gamma(rng: np.random.Generator, shape: float, scale: np.ndarray | float, size: int,
                     limit: float) -> np.ndarray:
    """Gamma(shape, scale) draws, each redrawn while above ``limit`` (the program's do-while)."""
    out = rng.gamma(shape, scale, size)
    bad = np.flatnonzero(out > limit)
    while bad.size:
        out[bad] = rng.gamma(shape, scale if np.ndim(scale) == 0 else np.asarray(scale)[bad], bad.size)
        bad = bad[out[bad] > limit]
    return out


def draw_sizes(rng: np.random.Generator, t: JobTypeParameters, n: int, cores: int) -> np.ndarray:
    """``n`` job sizes of type ``t`` (the program's ``calc_number_of_nodes``), capped at ``cores``."""
    u = rng.random(n)
    first = rng.random(n) <= t.uprob  # two_stage_uniform: which uniform
    v = rng.random(n)
    par = np.where(first, t.ulow + v * (t.umed - t.ulow), t.umed + v * (t.uhi - t.umed))
    pow2 = (u > t.serial_prob) & (u <= t.serial_prob + t.pow2_prob)
    par = np.where(pow2, np.floor(par + 0.5), par)  # (unsigned int)(par + 0.5)
    size = np.floor(2.0 ** par + 0.5)  # (unsigned int)(pow(2, par) + 0.5)
    size = np.where(u <= t.serial_prob, 1.0, size)
    largest_pow2 = 2.0 ** math.floor(math.log2(cores))
    size = np.where(size > cores, np.where(pow2, largest_pow2, cores), size)
    return size.astype(np.int64)


def draw_log_run_times(rng: np.random.Generator, t: JobTypeParameters, size: np.ndarray,
                       limit: float = 12.0) -> np.ndarray:
    """log(run time) of jobs of ``size`` cores (``time_from_nodes``): hyper-gamma, each job's
    draw (component and value) redone while above ``limit``."""
    p = t.runtime_p(size)
    out = np.empty(len(size))
    todo = np.arange(len(size))
    while todo.size:
        first = rng.random(todo.size) <= p[todo]
        shape = np.where(first, t.a1, t.a2)
        scale = np.where(first, t.b1, t.b2)
        out[todo] = rng.standard_gamma(shape) * scale
        todo = todo[out[todo] > limit]
    return out


def log_run_time_pdf(x: np.ndarray, t: JobTypeParameters, size: float, limit: float = 12.0) -> np.ndarray:
    """Density of the log run time of a job of ``size`` cores (the hyper-gamma truncated at
    ``limit`` and renormalised), for checking samples against the model."""
    x = np.asarray(x, np.float64)
    p = float(t.runtime_p(size))

    def pdf(a, b):
        with np.errstate(divide="ignore"):
            logs = (a - 1) * np.log(x) - x / b - math.lgamma(a) - a * math.log(b)
        return np.where(x > 0, np.exp(logs), 0.0)

    mass = p * gamma_cdf(limit, t.a1, t.b1) + (1 - p) * gamma_cdf(limit, t.a2, t.b2)
    return np.where(x <= limit, (p * pdf(t.a1, t.b1) + (1 - p) * pdf(t.a2, t.b2)) / mass, 0.0)


# ---------------------------------------------------------------------------- arrivals


class _ArrivalStream:
    """One job type's arrival process: the log inter-arrival draws are fixed, the arrival
    times a function of the load factor ``k``."""

    def __init__(self, rng: np.random.Generator, t: JobTypeParameters, params: LublinParameters, n: int):
        self.log_gaps = _truncated_gamma(rng, t.aarr * t.arar, t.barr, n, params.too_much_arrive_time)
        weights = np.roll(bucket_weights(t, params.cyclic_day_start), -(params.start_hour * BUCKETS // 24))
        self.weights = weights
        self.cumulative = np.concatenate([[0.0], np.cumsum(weights)])
        self.start = params.start_hour * 3600.0

    def times(self, k: float) -> np.ndarray:
        """Arrival times (s from midnight of day 0) with every inter-arrival draw times ``k``:
        cumulative points mapped through the cumulative bucket weights (``calc_next_arrive``:
        whole buckets paid for, plus the fraction of the current one)."""
        points = np.cumsum(np.exp(self.log_gaps) * (k / SECONDS_IN_BUCKET))
        day = self.cumulative[-1]
        days = np.floor(points / day)
        rest = points - days * day
        bucket = np.clip(np.searchsorted(self.cumulative, rest, side="right") - 1, 0, BUCKETS - 1)
        fraction = (rest - self.cumulative[bucket]) / self.weights[bucket]
        return self.start + (days * BUCKETS + bucket + fraction) * SECONDS_IN_BUCKET


# ---------------------------------------------------------------------------- the generator


@dataclass(frozen=True, eq=False)
class LublinTrace:
    """Generated jobs, in submission order, as the SWF fields they fill: submit time (s from
    midnight of day 0), size (cores, allocated and requested), run time (s), requested time
    (s), type (0 interactive, 1 batch: the SWF queue field, as the program writes it)."""

    submit: np.ndarray
    size: np.ndarray
    run_time: np.ndarray
    requested_time: np.ndarray
    job_type: np.ndarray
    cores: int
    seed: int | None = None
    target_load: float | None = None
    load_factor: float = 1.0  # k: the multiplier of every inter-arrival draw
    estimate_factor: float = 1.0

    def __len__(self) -> int:
        return int(self.submit.size)

    @property
    def offered_load(self) -> float:
        """sum(size x run time) / (cores x (last submission - first submission))."""
        return offered_load(self.submit, self.size, self.run_time, self.cores)

    def swf_text(self, command: str | None = None) -> str:
        """The jobs as an SWF file (header comments, then one 18-field line per job; memory,
        user and other unknown fields -1; status 1)."""
        from hdeeprm import __version__

        header = [
            "; Version: 2.2",
            "; Computer: synthetic (Lublin-Feitelson model)",
            "; Installation: hdeeprm generate",
            "; Acknowledge: Uri Lublin and Dror Feitelson, Hebrew University (the model, m_lublin99.c)",
            "; Information: https://www.cs.huji.ac.il/labs/parallel/workload/models.html",
            f"; Conversion: hdeeprm {__version__}" + (f": {command}" if command else ""),
            f"; MaxJobs: {len(self)}",
            f"; MaxRecords: {len(self)}",
            f"; MaxNodes: {self.cores}",
            f"; MaxProcs: {self.cores}",
            f"; MaxRuntime: {int(self.run_time.max()) if len(self) else 0}",
            f"; MaxQueues: {len(set(self.job_type.tolist()))}",
            "; Queues: 0 interactive, 1 batch (the model's job types)",
            f"; Note: seed {self.seed}; offered load {self.offered_load:.6f}"
            + (f" (target {self.target_load:g}, inter-arrival factor {self.load_factor:.6g})"
               if self.target_load is not None else " (the model's own)"),
            "; Note: time 0 is midnight of the model's first day (its daily cycle); no UnixStartTime",
            "; Note: requested time = run time" + (f" x U(1, {self.estimate_factor:g}), rounded up"
                                                    if self.estimate_factor > 1 else " (exact estimates)"),
        ]
        rows = np.column_stack([
            np.arange(1, len(self) + 1), self.submit, np.full(len(self), -1), self.run_time, self.size,
            np.full(len(self), -1), np.full(len(self), -1), self.size, self.requested_time,
            np.full(len(self), -1), np.ones(len(self), np.int64), np.full((len(self), 3), -1),
            self.job_type, np.full((len(self), 3), -1)]).astype(np.int64)
        body = "\n".join(" ".join(map(str, row)) for row in rows.tolist())
        return "\n".join(header) + "\n" + (body + "\n" if body else "")

    def write_swf(self, path: str | Path, command: str | None = None) -> None:
        Path(path).write_text(self.swf_text(command), encoding="utf-8")

    def to_swf_trace(self, source: str = "<lublin>"):
        """The jobs as an :class:`~hdeeprm.inputs.workload.swf.SwfTrace` (what reading the
        written SWF file gives), for :func:`~hdeeprm.inputs.workload.swf_to_workload`."""
        from hdeeprm.inputs.workload.swf import parse_swf

        return parse_swf(self.swf_text(), source=source)


def offered_load(submit: np.ndarray, size: np.ndarray, run_time: np.ndarray, cores: int) -> float:
    """Machine-seconds of work per machine-second of the submission span (as ``hdeeprm
    describe`` computes it); NaN for fewer than two distinct submission times."""
    if len(submit) < 2:
        return float("nan")
    span = float(np.max(submit) - np.min(submit))
    if span <= 0:
        return float("nan")
    return float(np.sum(np.asarray(size, np.float64) * run_time) / (cores * span))


def generate_lublin(nb_jobs: int, cores: int, *, load: float | None = None,
                    rng: np.random.Generator | int | None = None,
                    params: LublinParameters | None = None, scale_to_machine: bool = True,
                    estimate_factor: float = 1.0) -> LublinTrace:
    """``nb_jobs`` jobs of the Lublin-Feitelson model for a machine of ``cores`` cores.

    ``rng``: a :class:`numpy.random.Generator`, or a seed for one (None: seed 0, so a call is
    always reproducible). ``params``: the model (default: the published parameters, with
    batch and interactive jobs); with ``scale_to_machine`` (default) they are adapted to the
    machine by :meth:`LublinParameters.for_machine`. ``load``: target offered load (see the
    module's docstring); None keeps the model's own arrival rate. ``estimate_factor`` K >= 1:
    requested time = ceil(run time x U(1, K)) (1: the run time).
    """
    nb_jobs = _check_int(nb_jobs, "jobs", 1, 100_000_000)
    cores = _check_cores(cores)
    if load is not None:
        if isinstance(load, bool) or not isinstance(load, (int, float)) or not (math.isfinite(load) and load > 0):
            raise ConfigError(f"load: expected a positive number, found {load!r}")
        if nb_jobs < 2:
            raise ConfigError("load: needs at least 2 jobs (the load is per second of the submission span)")
    if isinstance(estimate_factor, bool) or not isinstance(estimate_factor, (int, float)) or not (
            math.isfinite(estimate_factor) and estimate_factor >= 1):
        raise ConfigError(f"estimate factor: expected a number >= 1, found {estimate_factor!r}")
    seed = None
    if rng is None or isinstance(rng, (int, np.integer)):
        seed = 0 if rng is None else int(rng)
        if isinstance(rng, bool) or seed < 0:
            raise ConfigError(f"seed: expected an integer >= 0, found {rng!r}")
        rng = np.random.default_rng(seed)
    params = params or LublinParameters()
    if scale_to_machine:
        params = params.for_machine(cores)

    # Independent child generators: arrivals, sizes and run times per type, then estimates.
    types = params.types
    children = rng.spawn(2 * len(types) + 1)
    streams, sizes, runs = {}, {}, {}
    for i, (kind, t) in enumerate(types.items()):
        streams[kind] = _ArrivalStream(children[2 * i], t, params, nb_jobs)
        # Each stream's j-th arrival takes its type's j-th size and run time.
        sizes[kind] = draw_sizes(children[2 * i + 1], t, nb_jobs, cores)
        runs[kind] = np.floor(np.exp(draw_log_run_times(children[2 * i + 1], t, sizes[kind],
                                                        params.too_much_time))).astype(np.int64)

    def build(k: float) -> tuple[np.ndarray, ...]:
        times = np.concatenate([streams[kind].times(k) for kind in types])
        kinds = np.concatenate([np.full(nb_jobs, kind) for kind in types])
        index = np.concatenate([np.arange(nb_jobs) for _ in types])
        # The program takes the type whose next arrival is earlier, interactive on ties.
        order = np.lexsort((kinds != INTERACTIVE, times))[:nb_jobs]
        kinds, index = kinds[order], index[order]
        submit = np.floor(times[order]).astype(np.int64)
        size = np.empty(nb_jobs, np.int64)
        run = np.empty(nb_jobs, np.int64)
        for kind in types:
            mine = kinds == kind
            size[mine] = sizes[kind][index[mine]]
            run[mine] = runs[kind][index[mine]]
        return submit, size, run, kinds.astype(np.int64)

    k = 1.0
    submit, size, run, kinds = build(k)
    if load is not None:
        best = None
        for _ in range(60):
            achieved = offered_load(submit, size, run, cores)
            error = abs(achieved / load - 1) if math.isfinite(achieved) else math.inf
            if best is None or error < best[0]:
                best = (error, k, (submit, size, run, kinds))
            if error < 1e-3:
                break
            if not math.isfinite(achieved) or achieved <= 0:
                k *= 0.5 if not math.isfinite(achieved) else 2.0
            else:
                # load ~ 1 / k; damped on later steps in case the job set keeps changing
                k *= (achieved / load) ** (1.0 if _ < 10 else 0.5)
            submit, size, run, kinds = build(k)
        _, k, (submit, size, run, kinds) = best

    estimate_rng = children[-1]
    factors = estimate_rng.uniform(1.0, estimate_factor, nb_jobs)
    requested = run if estimate_factor == 1 else np.ceil(run * factors).astype(np.int64)
    requested = np.maximum(requested, 1)
    arrays = [submit, size, run, requested, kinds]
    for a in arrays:
        a.setflags(write=False)
    return LublinTrace(*arrays, cores=cores, seed=seed, target_load=load, load_factor=k,
                       estimate_factor=float(estimate_factor))


def _check_int(value, name: str, minimum: int, maximum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or not minimum <= value <= maximum:
        raise ConfigError(f"{name}: expected an integer from {minimum:,} to {maximum:,}, found {value!r}")
    return int(value)


def _check_cores(cores) -> int:
    return _check_int(cores, "cores", 1, MAX_RES)
