"""Paired statistics of hdeeprm.analysis.stats, checked against numbers worked out by hand, printed
tables of Student's t and closed forms of its distribution (df = 1, 2, 4), never against the
code under test itself."""

from __future__ import annotations

import dataclasses
import json
import math

import numpy as np
import pytest

from hdeeprm.analysis.stats import (
    BETTER,
    NOT_SIGNIFICANT,
    TOO_FEW,
    WORSE,
    PairedComparison,
    compare_all,
    comparison_rows,
    format_comparison_table,
    format_number,
    format_p,
    paired_comparison,
    student_t_cdf,
    student_t_quantile,
    student_t_sf,
    student_t_two_sided_p,
)

# ---------------------------------------------------------------------------- Student's t


@pytest.mark.parametrize("p, df, table", [
    (0.975, 1, 12.706204736), (0.975, 2, 4.302652730), (0.975, 4, 2.776445105), (0.975, 7, 2.364624252),
    (0.975, 30, 2.042272456), (0.975, 99, 1.984216952), (0.995, 10, 3.169272673), (0.95, 5, 2.015048373),
    (0.9, 20, 1.325340707), (0.9995, 3, 12.923978636),
])
def test_t_quantile_matches_printed_tables(p, df, table):
    assert student_t_quantile(p, df) == pytest.approx(table, abs=1e-9)
    assert student_t_quantile(1 - p, df) == pytest.approx(-table, abs=1e-9)  # symmetry


def test_t_quantile_tends_to_the_normal_one():
    z = 1.959963985  # normal 0.975 quantile
    assert student_t_quantile(0.975, math.inf) == pytest.approx(z, abs=1e-9)
    previous = math.inf
    for df in (100, 1_000, 10_000, 100_000, 10**6, 10**8):
        t = student_t_quantile(0.975, df)
        # z + (z^3 + z) / (4 df) (Cornish-Fisher) up to ~2.8 / df^2, decreasing to z.
        assert z < t < previous
        assert t == pytest.approx(z + (z ** 3 + z) / (4 * df), abs=4 / df ** 2 + 1e-9)
        previous = t
    assert student_t_quantile(0.975, 10**8) == pytest.approx(z, abs=1e-7)


@pytest.mark.parametrize("p", [1e-200, 1e-12, 1e-6, 0.001, 0.01, 0.1, 0.25, 0.4, 0.49, 0.5, 0.6, 0.9, 0.99])
def test_t_quantile_matches_closed_forms(p):
    # df = 1 (Cauchy): tan(pi (p - 1/2)) = -1 / tan(pi p), accurate for p <= 1/2.
    if p <= 0.5:
        assert student_t_quantile(p, 1) == pytest.approx(-1 / math.tan(math.pi * p) if p < 0.5 else 0.0,
                                                         rel=1e-12, abs=1e-300)
    # df = 2: (2p - 1) / sqrt(2 p (1 - p)).
    assert student_t_quantile(p, 2) == pytest.approx((2 * p - 1) / math.sqrt(2 * p * (1 - p)), rel=1e-12)
    # df = 4: 2 sign(p - 1/2) sqrt(q - 1), q = cos(acos(sqrt(a)) / 3) / sqrt(a), a = 4 p (1 - p).
    if p > 1e-12:
        a = 4 * p * (1 - p)
        q = math.cos(math.acos(math.sqrt(a)) / 3) / math.sqrt(a)
        assert student_t_quantile(p, 4) == pytest.approx(math.copysign(2 * math.sqrt(q - 1), p - 0.5),
                                                         rel=1e-9, abs=1e-12)


def test_t_distribution_functions_agree():
    # df = 4 CDF in closed form: 1/2 + 3/8 u (1 - u^2 / 12 ... ) written with s = 1 + t^2/4.
    for t in (-6.0, -2.0, -0.3, 0.0, 0.7, 2.5, 9.0):
        s = 1 + t * t / 4
        cdf4 = 0.5 + 3 / 8 * t / math.sqrt(s) * (1 - t * t / (12 * s))
        assert student_t_cdf(t, 4) == pytest.approx(cdf4, rel=1e-13, abs=1e-16)
        assert student_t_sf(t, 4) == pytest.approx(1 - cdf4, rel=1e-13, abs=1e-16)
        assert student_t_two_sided_p(t, 4) == pytest.approx(2 * min(cdf4, 1 - cdf4), rel=1e-12, abs=1e-16)
    # Cauchy: P(T > t) = 1/2 - atan(t) / pi; tiny tails keep their relative precision.
    for t in (0.1, 1.0, 30.0, 1e6, 1e200):
        assert student_t_sf(t, 1) == pytest.approx(math.atan2(1, t) / math.pi, rel=1e-13)
    for df in (1, 3, 12, 250):
        for p in (0.001, 0.3, 0.8, 0.975):
            assert student_t_cdf(student_t_quantile(p, df), df) == pytest.approx(p, rel=1e-13)
    assert student_t_two_sided_p(0.0, 5) == 1.0 and student_t_two_sided_p(math.inf, 5) == 0.0
    assert math.isnan(student_t_two_sided_p(math.nan, 5))


def test_t_quantile_against_arbitrary_precision():
    mpmath = pytest.importorskip("mpmath")
    mpmath.mp.dps = 40
    for df in (1, 3, 8, 29, 150, 5_000, 50_000, 10**6):
        for p in (0.6, 0.9, 0.975, 0.995, 1 - 1e-9):
            t = student_t_quantile(p, df)
            half = mpmath.mpf(df) / 2

            def cdf(x):
                x_beta = 2 * half / (2 * half + x * x)
                return 1 - mpmath.betainc(half, mpmath.mpf(1) / 2, 0, x_beta, regularized=True) / 2

            exact = mpmath.findroot(lambda x: cdf(x) - mpmath.mpf(p), mpmath.mpf(t))
            assert t == pytest.approx(float(exact), rel=1e-12), (df, p)


@pytest.mark.parametrize("p, df", [(0.0, 3), (1.0, 3), (1.5, 3), (0.5, 0), (0.5, -2), (0.5, math.nan)])
def test_t_quantile_rejects_impossible_arguments(p, df):
    with pytest.raises(ValueError):
        student_t_quantile(p, df)


# ---------------------------------------------------------------------------- paired comparison

# Five windows worked out by hand:
#   agent     10    12     9    14    11      sum 56    mean 11.2
#   baseline  12    13    12    15    11.5    sum 63.5  mean 12.7
#   d         -2    -1    -3    -1    -0.5    sum -7.5  mean -1.5
#   d - mean  -0.5   0.5  -1.5   0.5   1.0    squares 0.25 + 0.25 + 2.25 + 0.25 + 1 = 4
#   std(d) = sqrt(4 / 4) = 1;  standard error = 1 / sqrt(5) = 0.4472135955
#   t(0.975, 4) = 2.776445105 (table);  half width = 2.776445105 * 0.4472135955 = 1.241663998
#   95% CI = [-1.5 - 1.241663998, -1.5 + 1.241663998] = [-2.741663998, -0.258336002]
#   t = -1.5 / 0.4472135955 = -3.354101966;  two-sided p (df = 4, closed-form CDF) = 0.028460203
#   agent: deviations -1.2 0.8 -2.2 2.8 -0.2, squares sum 14.8, std = sqrt(3.7) = 1.923538406
#   baseline: deviations -0.7 0.3 -0.7 2.3 -1.2, squares sum 7.8, std = sqrt(1.95) = 1.396424004
AGENT = [10.0, 12.0, 9.0, 14.0, 11.0]
BASELINE = [12.0, 13.0, 12.0, 15.0, 11.5]


def test_paired_comparison_matches_the_hand_computation():
    c = paired_comparison(AGENT, BASELINE, names=("agent", "fcfs"))
    assert (c.candidate, c.baseline, c.n) == ("agent", "fcfs", 5)
    assert c.candidate_mean == pytest.approx(11.2) and c.baseline_mean == pytest.approx(12.7)
    assert c.candidate_std == pytest.approx(1.923538406, abs=1e-9)
    assert c.baseline_std == pytest.approx(1.396424004, abs=1e-9)
    assert c.mean_difference == pytest.approx(-1.5) and c.std_difference == pytest.approx(1.0)
    assert c.ci_low == pytest.approx(-2.741663998, abs=1e-9)
    assert c.ci_high == pytest.approx(-0.258336002, abs=1e-9)
    assert c.t_statistic == pytest.approx(-3.354101966, abs=1e-9)
    # The df = 4 CDF in closed form, evaluated at |t|: p = 2 (1 - F(|t|)).
    t = 1.5 * math.sqrt(5)
    s = 1 + t * t / 4
    assert c.p_value == pytest.approx(2 * (0.5 - 3 / 8 * t / math.sqrt(s) * (1 - t * t / (12 * s))), rel=1e-10)
    assert c.p_value == pytest.approx(0.028460203, abs=1e-9)
    assert (c.wins, c.losses, c.ties) == (5, 0, 0)
    assert c.relative_difference == pytest.approx(-1.5 / 12.7)
    assert c.confidence == 0.95 and c.lower_is_better and c.verdict == BETTER


def test_a_90_percent_interval_is_narrower():
    c = paired_comparison(AGENT, BASELINE, confidence=0.90)
    half = 2.131846786 / math.sqrt(5)  # t(0.95, 4) from a table
    assert (c.ci_low, c.ci_high) == (pytest.approx(-1.5 - half, abs=1e-9), pytest.approx(-1.5 + half, abs=1e-9))


def test_verdict_follows_the_objectives_direction():
    # Lower is better: the agent's lower values are better, the baseline's higher ones worse.
    assert paired_comparison(AGENT, BASELINE).verdict == BETTER
    reverse = paired_comparison(BASELINE, AGENT)
    assert reverse.verdict == WORSE and (reverse.wins, reverse.losses) == (0, 5)
    assert (reverse.ci_low, reverse.ci_high) == (pytest.approx(0.258336002), pytest.approx(2.741663998))
    # Higher is better (e.g. utilization): the same numbers, the opposite verdicts.
    up = paired_comparison(AGENT, BASELINE, lower_is_better=False)
    assert up.verdict == WORSE and (up.wins, up.losses, up.ties) == (0, 5, 0)
    assert up.mean_difference == pytest.approx(-1.5)  # differences stay candidate - baseline
    assert paired_comparison(BASELINE, AGENT, lower_is_better=False).verdict == BETTER
    # An interval containing 0 is no verdict either way. d = -1 1 -2 2 0.5: mean 0.1.
    mixed = paired_comparison([9, 11, 8, 12, 10.5], [10, 10, 10, 10, 10])
    assert mixed.mean_difference == pytest.approx(0.1) and mixed.ci_low < 0 < mixed.ci_high
    assert mixed.verdict == NOT_SIGNIFICANT and (mixed.wins, mixed.losses, mixed.ties) == (2, 3, 0)
    assert paired_comparison([9, 11, 8, 12, 10.5], [10] * 5, lower_is_better=False).verdict == NOT_SIGNIFICANT


def test_ties_are_counted_apart():
    c = paired_comparison([1.0, 2.0, 3.0, 4.0], [1.0, 2.5, 3.0, 3.5])
    assert (c.wins, c.losses, c.ties) == (1, 1, 2)
    assert c.mean_difference == 0.0 and c.verdict == NOT_SIGNIFICANT and c.p_value == pytest.approx(1.0)
    up = paired_comparison([1.0, 2.0, 3.0, 4.0], [1.0, 2.5, 3.0, 3.5], lower_is_better=False)
    assert (up.wins, up.losses, up.ties) == (1, 1, 2)


def test_identical_policies_and_constant_differences():
    same = paired_comparison([3.0, 5.0, 4.0], [3.0, 5.0, 4.0])
    assert (same.ties, same.std_difference, same.ci_low, same.ci_high) == (3, 0.0, 0.0, 0.0)
    assert same.p_value == 1.0 and same.t_statistic == 0.0 and same.verdict == NOT_SIGNIFICANT
    # Every window 0.5 better: a systematic difference, the interval collapses onto it.
    shifted = paired_comparison([2.5, 4.5, 3.5], [3.0, 5.0, 4.0])
    assert (shifted.mean_difference, shifted.std_difference) == (-0.5, 0.0)
    assert (shifted.ci_low, shifted.ci_high) == (-0.5, -0.5)
    assert shifted.p_value == 0.0 and shifted.t_statistic == -math.inf and shifted.verdict == BETTER
    assert paired_comparison([2.5, 4.5, 3.5], [3.0, 5.0, 4.0], lower_is_better=False).verdict == WORSE


def test_one_window_gives_no_interval():
    c = paired_comparison([2.0], [3.0])
    assert c.n == 1 and c.verdict == TOO_FEW and (c.wins, c.losses, c.ties) == (1, 0, 0)
    assert c.mean_difference == -1.0
    for value in (c.std_difference, c.ci_low, c.ci_high, c.p_value, c.t_statistic, c.candidate_std):
        assert math.isnan(value)


def test_relative_difference_needs_a_nonzero_baseline_mean():
    c = paired_comparison([1.0, 2.0, 0.5], [1.0, -1.0, 0.0])
    assert c.baseline_mean == 0.0 and math.isnan(c.relative_difference)


def test_to_dict_is_strict_json():
    d = paired_comparison([2.0], [3.0]).to_dict()
    assert d["ci_low"] is None and d["p_value"] is None and d["mean_difference"] == -1.0
    assert json.loads(json.dumps(d, allow_nan=False))["verdict"] == TOO_FEW
    inf = paired_comparison([2.5, 4.5], [3.0, 5.0]).to_dict()
    assert inf["t_statistic"] is None and inf["p_value"] == 0.0


@pytest.mark.parametrize("candidate, baseline, kwargs, message", [
    ([1.0, math.nan, 2.0], [1.0, 2.0, 3.0], {}, r"^agent: 1 of 3 values are NaN or infinite \(windows 1\)"),
    ([1.0, 2.0, 3.0], [1.0, 2.0, math.inf], {"names": ("dqn", "sjf")}, r"^sjf: 1 of 3"),
    ([1.0, 2.0, 3.0], [1.0, 2.0], {}, "agent has 3 windows but baseline has 2"),
    ([], [], {}, "agent: no values"),
    ([[1.0, 2.0]], [[1.0, 2.0]], {}, r"1-D array"),
    ([1.0, 2.0], [1.0, 2.0], {"confidence": 1.0}, "confidence"),
])
def test_bad_input_is_a_value_error(candidate, baseline, kwargs, message):
    with pytest.raises(ValueError, match=message):
        paired_comparison(candidate, baseline, **kwargs)


def test_compare_all_against_every_other_policy_best_first():
    values = {"fcfs": [5.0, 6.0, 7.0, 6.5, 8.0], "agent": AGENT, "sjf": BASELINE,
              "random": np.array([20.0, 30.0, 25.0, 22.0, 27.0])}
    results = compare_all(values, "agent")
    assert [c.baseline for c in results] == ["fcfs", "sjf", "random"]  # means 6.5, 12.7, 24.8
    assert all(isinstance(c, PairedComparison) and c.candidate == "agent" for c in results)
    alone = paired_comparison(AGENT, BASELINE, names=("agent", "sjf"))
    assert dataclasses.replace(results[1], p_holm=alone.p_holm) == alone  # the family adds p_holm only
    assert [c.verdict for c in results] == [WORSE, BETTER, BETTER]
    up = compare_all(values, "agent", lower_is_better=False)
    assert [c.baseline for c in up] == ["random", "sjf", "fcfs"]
    assert [c.verdict for c in up] == [WORSE, WORSE, BETTER]
    assert compare_all({"agent": AGENT}, "agent") == []
    with pytest.raises(ValueError, match="no values for 'dqn'; policies: fcfs, agent"):
        compare_all({"fcfs": [1.0], "agent": [2.0]}, "dqn")
    with pytest.raises(ValueError, match="^agent: 1 of 5"):
        compare_all({"agent": [1.0, 2.0, math.nan, 3.0, 4.0], "fcfs": [1.0] * 5}, "agent")


# ---------------------------------------------------------------------------- text


@pytest.mark.parametrize("value, text", [
    (0.0, "0"), (1.0, "1.00"), (-1.5, "-1.50"), (0.5, "0.500"), (0.123456, "0.123"), (0.00123456, "0.00123"),
    (0.000123456, "1.23e-04"), (12.3456, "12.3"), (99.96, "100"), (123.4, "123"), (999.6, "1,000"),
    (1234.5, "1,234"), (-987654.0, "-987,654"), (12345678.0, "1.23e+07"),
    (math.nan, "-"), (math.inf, "inf"),
])
def test_numbers_keep_significant_digits(value, text):
    assert format_number(value) == text


def test_p_values_are_short():
    assert [format_p(p) for p in (1.0, 0.5123, 0.028460203, 0.0012, 3e-7, math.nan)] == \
        ["1", "0.51", "0.028", "0.0012", "< 0.0001", "-"]


def test_comparison_rows_and_table():
    results = compare_all({"agent": AGENT, "sjf": BASELINE, "tiny": [1e-4, 2e-4, 1e-4, 3e-4, 2e-4]}, "agent")
    rows = comparison_rows(results)
    assert rows[0] == ("policy", "mean", "std", "mean diff", "rel. diff", "95% CI", "p", "W/L/T", "verdict")
    assert rows[1][:3] == ("agent (candidate)", "11.2", "1.92")
    # Tiny values keep their digits (never 0.000); the hand-computed example above reads back.
    assert rows[2][:4] == ("tiny", "1.80e-04", "8.37e-05", "11.2") and rows[2][7:] == ("0/5/0", WORSE)
    assert rows[3] == ("sjf", "12.7", "1.40", "-1.50", "-11.8 %", "[-2.74, -0.258]", "0.028", "5/0/0", BETTER)
    table = format_comparison_table(results)
    lines = table.splitlines()
    assert lines[0].startswith("policy") and set(lines[1]) == {"-"} and len(lines) == 2 + 3 + 1
    assert "sjf" in lines[4] and lines[4].rstrip().endswith(BETTER)
    assert "over 5 paired windows (lower is better)" in lines[-1]
    assert len({len(line) for line in lines[:2]}) == 1
    assert "90% CI" in comparison_rows(compare_all({"agent": AGENT, "sjf": BASELINE}, "agent", confidence=0.9))[0]
    one = comparison_rows([paired_comparison([1.0], [2.0])])
    assert one[2][5:] == ("-", "-", "1/0/0", TOO_FEW)


def test_holm_adjustment_by_hand():
    from hdeeprm.analysis.stats import holm_adjusted

    # m = 4 defined p-values, sorted 0.01, 0.02, 0.03, 0.5:
    #   0.01 * 4 = 0.04; max(0.04, 0.02 * 3 = 0.06) = 0.06; max(0.06, 0.03 * 2) = 0.06;
    #   max(0.06, 0.5 * 1) = 0.5. The NaN (one window) stays NaN and is not counted.
    adjusted = holm_adjusted([0.03, 0.5, math.nan, 0.01, 0.02])
    assert adjusted[:2] == pytest.approx([0.06, 0.5]) and math.isnan(adjusted[2])
    assert adjusted[3:] == pytest.approx([0.04, 0.06])
    assert holm_adjusted([0.6, 0.7]) == [1.0, 1.0]  # capped at 1


def test_compare_all_adjusts_over_the_family():
    rng = np.random.default_rng(3)
    base = rng.normal(10, 1, size=12)
    values = {"agent": base - 0.5, **{f"p{i}": base + rng.normal(0, 0.3, size=12) for i in range(5)}}
    comparisons = compare_all(values, "agent")
    from hdeeprm.analysis.stats import holm_adjusted

    expected = dict(zip([c.baseline for c in comparisons], holm_adjusted([c.p_value for c in comparisons])))
    assert all(c.p_holm == expected[c.baseline] >= c.p_value for c in comparisons)
