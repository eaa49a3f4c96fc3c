"""Paired comparison of a scheduling agent with other policies over the same workload windows.

``hdeeprm evaluate`` runs every policy on the same held-out windows, so each window gives one
objective value per policy (lower is better by default, e.g. mean bounded slowdown). Windows
differ far more from each other than policies do, so policies are compared through the
per-window differences ``d_i = candidate_i - baseline_i`` (a paired design), not through two
independent means:

- mean difference ``m``, standard deviation ``s`` of the differences (ddof=1), n windows;
- confidence interval ``m -/+ t(1 - alpha/2, n - 1) * s / sqrt(n)`` (Student's t);
- two-sided p-value of the paired t-test, ``t = m / (s / sqrt(n))`` on ``n - 1`` degrees of
  freedom;
- wins / losses / ties: windows where the candidate is strictly better / worse / equal;
- verdict: "better" or "worse" when the interval excludes 0 on that side, else "not
  significantly different" ("not enough windows" with a single window);
- with many baselines, some intervals exclude 0 by chance: :func:`compare_all` also gives
  each comparison its Holm-adjusted p-value over the whole family (``p_holm``), which
  keeps the chance of any false "better" or "worse" below alpha.

Student's t distribution is computed here, without scipy: its tail is a regularised incomplete
beta function, ``P(|T| > t) = I_x(df/2, 1/2)`` with ``x = df / (df + t^2)``, evaluated with
its continued fraction (Lentz's method), and quantiles invert it by safeguarded Newton steps
(from 1e5 degrees of freedom on, the Cornish-Fisher expansion is the quantile to double
precision). Quantiles are accurate to ~1e-14 relative, p-values to ~1e-13 (1e-10 beyond 1e4
degrees of freedom), far below what a handful of windows can resolve.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, replace
from statistics import NormalDist
from typing import Mapping, Sequence

import numpy as np

from hdeeprm.analysis.tables import format_number  # the one number format of tables (re-exported)

# ---------------------------------------------------------------------------- Student's t

_EPS = 1e-16  # continued fraction: stop when a step changes the value by less than this
_TINY = 1e-300  # Lentz's method: stand-in for a zero denominator
_MAX_TERMS = 10_000


def _stirling_tail(x: float) -> float:
    """``log Gamma(x) - ((x - 1/2) log x - x + log(2 pi) / 2)``, for x >= 10 (error < 1e-15)."""
    x2 = x * x
    return (1 / 12 - (1 / 360 - (1 / 1260 - (1 / 1680 - (1 / 1188 - 691 / 360360 / x2) / x2) / x2) / x2) / x2) / x


def _log_gamma_ratio(x: float, h: float) -> float:
    """``log Gamma(x + h) - log Gamma(x)`` for x >= 10, without the cancellation of two
    large lgamma values (which would cost ~1e-9 relative at df ~ 1e6)."""
    return (x - 0.5) * math.log1p(h / x) + h * math.log(x + h) - h + _stirling_tail(x + h) - _stirling_tail(x)


def _log_beta(a: float, b: float) -> float:
    small, large = min(a, b), max(a, b)
    if large < 10:
        return math.lgamma(a) + math.lgamma(b) - math.lgamma(a + b)
    return math.lgamma(small) - _log_gamma_ratio(large, small)


def _beta_fraction(a: float, b: float, x: float) -> float:
    """The continued fraction of ``I_x(a, b)`` (Numerical Recipes' betacf, modified Lentz);
    converges quickly for ``x < (a + 1) / (a + b + 2)``."""
    def clamp(v: float) -> float:
        return v if abs(v) >= _TINY else _TINY

    c, d = 1.0, 1.0 / clamp(1.0 - (a + b) * x / (a + 1.0))
    h = d
    for m in range(1, _MAX_TERMS):
        even = m * (b - m) * x / ((a + 2 * m - 1) * (a + 2 * m))
        d = 1.0 / clamp(1.0 + even * d)
        c = clamp(1.0 + even / c)
        h *= d * c
        odd = -(a + m) * (a + b + m) * x / ((a + 2 * m) * (a + 2 * m + 1))
        d = 1.0 / clamp(1.0 + odd * d)
        c = clamp(1.0 + odd / c)
        h *= d * c
        if abs(d * c - 1.0) < _EPS:
            return h
    raise ArithmeticError(f"incomplete beta I_{x}({a}, {b}): continued fraction did not converge")


def _betainc(a: float, b: float, x: float, y: float, log_x: float, log_y: float) -> float:
    """Regularised incomplete beta ``I_x(a, b)``. ``y = 1 - x`` and the logarithms are passed
    in, computed from the caller's own variables: with a large ``a``, ``a * log(x)`` computed
    from a rounded x would lose ``a * 1e-16`` relative."""
    if y <= 0.0:  # x = 1 to double precision (x itself may underflow: the logs carry it)
        return 1.0
    front = math.exp(a * log_x + b * log_y - _log_beta(a, b))
    if x < (a + 1.0) / (a + b + 2.0):
        return front * _beta_fraction(a, b, x) / a
    return 1.0 - front * _beta_fraction(b, a, y) / b


def _check_df(df: float) -> None:
    if not df > 0:  # also rejects NaN
        raise ValueError(f"degrees of freedom must be positive, got {df}")


def _two_sided_tail(t: float, df: float) -> float:
    """``P(|T| >= |t|)``, accurate however small it is."""
    if math.isinf(df):
        return math.erfc(abs(t) / math.sqrt(2.0))
    if math.isinf(t):
        return 0.0
    if t == 0:
        return 1.0
    log_r, log1p_r = _log_r(t, df)  # r = t^2 / df, x = 1 / (1 + r), 1 - x = r / (1 + r)
    return _betainc(df / 2.0, 0.5, math.exp(-log1p_r), math.exp(log_r - log1p_r), -log1p_r, log_r - log1p_r)


def _log_r(t: float, df: float) -> tuple[float, float]:
    """``log(r)`` and ``log(1 + r)`` for ``r = t^2 / df``, without overflow for huge t."""
    a = abs(t) / math.sqrt(df)
    log_r = 2.0 * math.log(a)
    return log_r, (log_r + math.log1p(1.0 / (a * a))) if a > 1.0 else math.log1p(a * a)


def student_t_two_sided_p(t: float, df: float) -> float:
    """Two-sided p-value of a t statistic: ``P(|T| >= |t|)`` for T ~ Student(df)."""
    _check_df(df)
    if math.isnan(t):
        return math.nan
    return min(1.0, _two_sided_tail(t, df))


def student_t_sf(t: float, df: float) -> float:
    """Survival function ``P(T > t)`` of Student's t with ``df`` degrees of freedom."""
    _check_df(df)
    if math.isnan(t):
        return math.nan
    half = 0.5 * _two_sided_tail(t, df)
    return half if t >= 0 else 1.0 - half


def student_t_cdf(t: float, df: float) -> float:
    """``P(T <= t)``."""
    _check_df(df)
    if math.isnan(t):
        return math.nan
    half = 0.5 * _two_sided_tail(t, df)
    return 1.0 - half if t >= 0 else half


def _student_t_log_pdf(t: float, df: float) -> float:
    return -0.5 * math.log(df) - _log_beta(0.5, df / 2.0) - (df + 1) / 2 * _log_r(t, df)[1]


#: From this many degrees of freedom on, the expansion below is the quantile to double
#: precision (its error is O(z^11 / df^5)); below, it only starts Newton's method.
_CORNISH_FISHER_DF = 1e5


def _cornish_fisher(z: float, df: float) -> float:
    """Student's t quantile from the normal one, ``z``: Abramowitz and Stegun 26.7.5."""
    z2 = z * z
    g1 = z * (z2 + 1) / 4
    g2 = z * ((5 * z2 + 16) * z2 + 3) / 96
    g3 = z * (((3 * z2 + 19) * z2 + 17) * z2 - 15) / 384
    g4 = z * ((((79 * z2 + 776) * z2 + 1482) * z2 - 1920) * z2 - 945) / 92160
    return z + (g1 + (g2 + (g3 + g4 / df) / df) / df) / df


def student_t_quantile(p: float, df: float) -> float:
    """The t with ``P(T <= t) = p`` for Student's t with ``df`` degrees of freedom (an int in
    practice, n - 1; ``math.inf`` gives the standard normal). Accurate to ~1e-14 relative."""
    _check_df(df)
    if not 0.0 < p < 1.0:
        raise ValueError(f"probability must be in (0, 1), got {p}")
    if p == 0.5:
        return 0.0
    if math.isinf(df):
        return NormalDist().inv_cdf(p)
    sign, tail = (1.0, 1.0 - p) if p > 0.5 else (-1.0, p)  # solve P(T > t) = tail, t > 0
    t = _cornish_fisher(-NormalDist().inv_cdf(tail), df)
    if df >= _CORNISH_FISHER_DF:
        return sign * t
    # Newton steps from the expansion (a fair start unless df is tiny), kept in a bracket.
    log_tail = math.log(tail)
    lo, hi = 0.0, max(t, 1.0)
    while _two_sided_tail(hi, df) / 2 > tail:
        lo, hi = hi, 2.0 * hi
        if hi > 1e300:  # near the largest float (a tiny df and a tiny tail)
            return sign * math.inf
    t = min(max(t, lo), hi)
    for _ in range(200):
        sf = _two_sided_tail(t, df) / 2
        if sf > tail:
            lo = t
        else:
            hi = t
        if sf > 0:
            # Newton on log P(T > t), nearly linear in t in both the body and the heavy tails.
            log_sf = math.log(sf)
            step = (log_sf - log_tail) * math.exp(log_sf - _student_t_log_pdf(t, df))
            if abs(step) <= 4e-16 * t:
                return sign * (t + step)
            new = t + step
        if sf == 0 or not lo < new < hi:
            new = 0.5 * (lo + hi)
        if hi - lo <= 4e-16 * hi:
            return sign * new
        t = new
    return sign * t


# ---------------------------------------------------------------------------- paired comparison

BETTER = "better"
WORSE = "worse"
NOT_SIGNIFICANT = "not significantly different"
TOO_FEW = "not enough windows"


@dataclass(frozen=True)
class PairedComparison:
    """The candidate against one baseline over the same n windows. Differences are
    ``candidate - baseline``; NaN stands for "undefined" (the interval, p and t with a single
    window, the relative difference when the baseline's mean is 0)."""

    candidate: str
    baseline: str
    n: int  # windows
    candidate_mean: float
    baseline_mean: float
    candidate_std: float  # of the candidate's values over the windows, ddof=1 (NaN for n=1)
    baseline_std: float
    mean_difference: float  # candidate - baseline
    std_difference: float  # of the per-window differences, ddof=1 (NaN for n=1)
    ci_low: float  # confidence interval of the mean difference (t-interval)
    ci_high: float
    confidence: float  # e.g. 0.95
    t_statistic: float  # mean / (std / sqrt(n)); +-inf when every difference is the same nonzero value
    p_value: float  # two-sided, paired t-test
    wins: int  # windows where the candidate is strictly better
    losses: int  # strictly worse
    ties: int  # exactly equal
    relative_difference: float  # mean_difference / baseline_mean (NaN when that mean is 0)
    lower_is_better: bool
    verdict: str  # BETTER, WORSE, NOT_SIGNIFICANT or TOO_FEW
    p_holm: float = math.nan  # p adjusted for the family of comparisons (compare_all)

    def to_dict(self) -> dict:
        """The fields, with NaN and infinities as None (strict JSON has neither)."""
        return {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in asdict(self).items()}


def _values(name: str, values) -> np.ndarray:
    array = np.asarray(values, dtype=np.float64)
    if array.ndim != 1:
        raise ValueError(f"{name}: expected one value per window (a 1-D array), got shape {array.shape}")
    if array.size == 0:
        raise ValueError(f"{name}: no values (no window)")
    bad = np.flatnonzero(~np.isfinite(array))
    if bad.size:
        shown = ", ".join(str(i) for i in bad[:5]) + (", ..." if bad.size > 5 else "")
        raise ValueError(f"{name}: {bad.size} of {array.size} values are NaN or infinite (windows {shown})")
    return array


def _std(values: np.ndarray) -> float:
    return float(values.std(ddof=1)) if values.size > 1 else math.nan


def _verdict(n: int, low: float, high: float, lower_is_better: bool) -> str:
    if n < 2:
        return TOO_FEW
    if high < 0:
        return BETTER if lower_is_better else WORSE
    if low > 0:
        return WORSE if lower_is_better else BETTER
    return NOT_SIGNIFICANT


def paired_comparison(candidate, baseline, *, lower_is_better: bool = True, confidence: float = 0.95,
                      names: tuple[str, str] = ("agent", "baseline")) -> PairedComparison:
    """Compare ``candidate[i]`` with ``baseline[i]`` window by window (see the module's notes).

    When every window shows the same difference (std 0), the interval collapses to that
    difference: if it is 0 the two policies are indistinguishable (t = 0, p = 1), otherwise the
    difference is systematic (t = +-inf, p = 0) and the verdict follows its sign. Raises
    ValueError on NaN or infinite values (naming the policy), on different numbers of windows,
    on no window and on a confidence outside (0, 1).
    """
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    cand_name, base_name = names
    cand, base = _values(cand_name, candidate), _values(base_name, baseline)
    if cand.size != base.size:
        raise ValueError(f"{cand_name} has {cand.size} windows but {base_name} has {base.size}; "
                         "a paired comparison needs the same windows")
    n = int(cand.size)
    diff = cand - base
    better = diff < 0 if lower_is_better else diff > 0
    worse = diff > 0 if lower_is_better else diff < 0
    constant = bool((diff == diff[0]).all())
    mean = float(diff[0]) if constant else float(diff.mean())
    if n < 2:
        std = t_stat = p = low = high = math.nan
    elif constant:
        std = 0.0
        t_stat = 0.0 if mean == 0 else math.copysign(math.inf, mean)
        p = 1.0 if mean == 0 else 0.0
        low = high = mean
    else:
        std = _std(diff)
        se = std / math.sqrt(n)
        t_stat = mean / se
        p = student_t_two_sided_p(t_stat, n - 1)
        half = student_t_quantile(0.5 + confidence / 2, n - 1) * se
        low, high = mean - half, mean + half
    base_mean = float(base.mean())
    return PairedComparison(
        candidate=cand_name, baseline=base_name, n=n,
        candidate_mean=float(cand.mean()), baseline_mean=base_mean,
        candidate_std=_std(cand), baseline_std=_std(base),
        mean_difference=mean, std_difference=std, ci_low=low, ci_high=high, confidence=confidence,
        t_statistic=t_stat, p_value=p,
        wins=int(better.sum()), losses=int(worse.sum()), ties=int((diff == 0).sum()),
        relative_difference=mean / base_mean if base_mean != 0 else math.nan,
        lower_is_better=lower_is_better, verdict=_verdict(n, low, high, lower_is_better),
    )


def compare_all(values: Mapping[str, Sequence[float] | np.ndarray], candidate: str, lower_is_better: bool = True,
                confidence: float = 0.95) -> list[PairedComparison]:
    """The candidate against every other policy in ``values`` (policy -> one value per
    window, same windows in the same order), best baseline (by mean) first."""
    if candidate not in values:
        raise ValueError(f"no values for {candidate!r}; policies: {', '.join(values) or 'none'}")
    cand = _values(candidate, values[candidate])
    results = [paired_comparison(cand, v, lower_is_better=lower_is_better, confidence=confidence,
                                 names=(candidate, name))
               for name, v in values.items() if name != candidate]
    adjusted = holm_adjusted([c.p_value for c in results])
    results = [replace(c, p_holm=p) for c, p in zip(results, adjusted)]
    return sorted(results, key=lambda c: c.baseline_mean if lower_is_better else -c.baseline_mean)


def holm_adjusted(p_values: Sequence[float]) -> list[float]:
    """Holm's step-down adjustment: with the m defined p-values sorted, p_(i) becomes
    max over j <= i of min(1, (m - j + 1) p_(j)); NaN stays NaN and does not count in m."""
    defined = sorted((p, i) for i, p in enumerate(p_values) if not math.isnan(p))
    m = len(defined)
    adjusted = [math.nan] * len(p_values)
    running = 0.0
    for rank, (p, i) in enumerate(defined):
        running = max(running, min(1.0, (m - rank) * p))
        adjusted[i] = running
    return adjusted


# ---------------------------------------------------------------------------- text table


def format_p(p: float) -> str:
    if math.isnan(p):
        return "-"
    return "< 0.0001" if p < 1e-4 else f"{p:.2g}"


def comparison_rows(comparisons: Sequence[PairedComparison], digits: int = 3) -> list[tuple[str, ...]]:
    """Text cells for a table: a header, the candidate (its mean and std only), then one row
    per baseline: policy, mean, std, mean diff, relative diff, CI, p, wins/losses/ties,
    verdict. Differences are candidate - baseline."""
    confidence = comparisons[0].confidence if comparisons else 0.95
    header = ("policy", "mean", "std", "mean diff", "rel. diff", f"{100 * confidence:g}% CI", "p",
              "W/L/T", "verdict")
    rows = [header]
    if not comparisons:
        return rows
    first = comparisons[0]
    f = lambda x: format_number(x, digits)  # noqa: E731
    rows.append((f"{first.candidate} (candidate)", f(first.candidate_mean), f(first.candidate_std),
                 "", "", "", "", "", ""))
    for c in comparisons:
        rel = "-" if math.isnan(c.relative_difference) else \
            f"{'+' if c.relative_difference > 0 else ''}{f(100 * c.relative_difference)} %"
        ci = "-" if math.isnan(c.ci_low) else f"[{f(c.ci_low)}, {f(c.ci_high)}]"
        rows.append((c.baseline, f(c.baseline_mean), f(c.baseline_std), f(c.mean_difference), rel, ci,
                     format_p(c.p_value), f"{c.wins}/{c.losses}/{c.ties}", c.verdict))
    return rows


def format_comparison_table(comparisons: Sequence[PairedComparison], digits: int = 3) -> str:
    """The rows of :func:`comparison_rows` aligned in columns (text left, numbers right), with a
    line saying how to read them."""
    rows = comparison_rows(comparisons, digits)
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    left = {0, len(widths) - 1}  # policy and verdict

    def line(row):
        return "  ".join(cell.ljust(w) if i in left else cell.rjust(w)
                         for i, (cell, w) in enumerate(zip(row, widths))).rstrip()

    lines = [line(rows[0]), "-" * len(line(rows[0]))] + [line(r) for r in rows[1:]]
    if comparisons:
        c = comparisons[0]
        direction = "lower" if c.lower_is_better else "higher"
        lines.append(f"diff = {c.candidate} - policy over {c.n} paired windows ({direction} is better); "
                     f"W/L/T: windows where {c.candidate} is better / worse / equal; p: paired t-test")
    return "\n".join(lines)
