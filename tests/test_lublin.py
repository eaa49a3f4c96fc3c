"""The Lublin-Feitelson workload model (hdeeprm.inputs.workload.lublin) and ``hdeeprm generate``:
determinism, fit to the machine, statistics against the published model, the target load, the
files it writes, and ``hdeeprm describe --compare``."""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import numpy as np
import pytest

from hdeeprm.cli.main import main
from hdeeprm.common.errors import ConfigError
from hdeeprm.inputs.workload import read_swf, swf_to_workload
from hdeeprm.inputs.workload.lublin import (
    BATCH,
    BATCH_PARAMETERS,
    INTERACTIVE,
    INTERACTIVE_PARAMETERS,
    LublinParameters,
    bucket_weights,
    gamma_cdf,
    generate_lublin,
    log_run_time_pdf,
    offered_load,
)

TRACES = Path(__file__).parent / "data" / "traces"


@pytest.fixture(scope="module")
def sample():
    """20,000 jobs on 128 cores: the machine the published parameters were fitted for."""
    return generate_lublin(20_000, 128, rng=2024)


# ---------------------------------------------------------------------------- the model's pieces


def test_gamma_cdf_matches_closed_forms():
    for x in (0.1, 1.0, 3.0, 10.0, 40.0):  # series and continued-fraction branches
        assert gamma_cdf(x, 1.0, 2.0) == pytest.approx(1 - math.exp(-x / 2), abs=1e-12)
        assert gamma_cdf(x, 2.0, 1.0) == pytest.approx(1 - math.exp(-x) * (1 + x), abs=1e-12)
        assert gamma_cdf(x, 3.0, 1.0) == pytest.approx(1 - math.exp(-x) * (1 + x + x * x / 2), abs=1e-12)
    assert gamma_cdf(0.0, 2.5, 1.0) == 0.0


def test_published_parameters_and_machine_scaling():
    p = LublinParameters()
    assert (p.batch.serial_prob, p.batch.pow2_prob, p.batch.uhi, p.batch.a2) == (0.2927, 0.6686, 7, 639.1)
    assert (p.interactive.serial_prob, p.interactive.uhi, p.interactive.arar) == (0.1541, 5.5, 0.9797)
    assert p.for_machine(128) == p  # the published ones fit 128 nodes
    big = p.for_machine(1024)
    assert (big.batch.umed, big.batch.uhi, big.interactive.umed, big.interactive.uhi) == (8, 10, 6, 8.5)
    assert big.batch.ulow == p.batch.ulow
    tiny = p.for_machine(2)
    for t in (tiny.batch, tiny.interactive):
        assert 0 <= t.ulow <= t.umed <= t.uhi <= 1
    with pytest.raises(ConfigError, match="probability"):
        dataclasses.replace(BATCH_PARAMETERS, serial_prob=1.5)


def test_daily_cycle_weights_peak_in_the_afternoon():
    for t in (BATCH_PARAMETERS, INTERACTIVE_PARAMETERS):
        w = bucket_weights(t)
        assert w.shape == (48,) and w.mean() == pytest.approx(1.0) and (w > 0).all()
        assert 24 <= int(np.argmax(w)) <= 32  # 12:00 to 16:00
        assert w[:12].mean() < 0.5 * w[24:32].mean()  # nights are quiet


# ---------------------------------------------------------------------------- determinism, machine


def test_same_seed_same_jobs_other_seed_other_jobs():
    a, b, c = (generate_lublin(500, 64, load=0.8, rng=s) for s in (7, 7, 8))
    assert a.swf_text() == b.swf_text()
    assert a.swf_text() != c.swf_text()
    g = np.random.default_rng(7)
    assert generate_lublin(50, 64, rng=g).swf_text() != generate_lublin(50, 64, rng=g).swf_text()  # advanced


@pytest.mark.parametrize("cores", [1, 3, 4, 100, 128, 1000])
@pytest.mark.parametrize("scale", [True, False])
def test_jobs_fit_the_machine(cores, scale):
    t = generate_lublin(2000, cores, rng=cores, scale_to_machine=scale)
    assert t.size.min() >= 1 and t.size.max() <= cores
    assert (np.diff(t.submit) >= 0).all() and t.run_time.min() >= 1
    assert (t.requested_time == t.run_time).all()
    if cores >= 100 and scale:
        assert t.size.max() > cores / 4  # the sizes reach the machine's scale


def test_estimate_factor_over_estimates_within_bounds():
    t = generate_lublin(3000, 64, rng=1, estimate_factor=3)
    ratio = t.requested_time / t.run_time
    assert ratio.min() >= 1 and ratio.max() <= 3 + 1 / t.run_time.min()
    assert 1.8 < ratio.mean() < 2.2


# ---------------------------------------------------------------------------- statistics


def _tsu_probability(t, lo: float, hi: float) -> float:
    """P(lo <= X < hi) for the two-stage uniform of log2(size)."""
    def cdf(x):
        first = np.clip((x - t.ulow) / (t.umed - t.ulow), 0, 1)
        second = np.clip((x - t.umed) / (t.uhi - t.umed), 0, 1)
        return t.uprob * first + (1 - t.uprob) * second
    return float(cdf(hi) - cdf(lo))


def _expected_power_of_two_share(t) -> float:
    """Share of all jobs whose size is a power of two >= 2: the pow2 branch, plus the other
    parallel jobs whose round(2 ** par) happens to be one."""
    lucky = sum(_tsu_probability(t, math.log2(2**m - 0.5), math.log2(2**m + 0.5)) for m in range(1, 8))
    return t.pow2_prob + (1 - t.serial_prob - t.pow2_prob) * lucky


def test_serial_and_power_of_two_fractions_match_the_parameters(sample):
    for kind, t in ((INTERACTIVE, INTERACTIVE_PARAMETERS), (BATCH, BATCH_PARAMETERS)):
        size = sample.size[sample.job_type == kind]
        n = size.size
        assert n > 2000
        for measured, expected in (((size == 1).mean(), t.serial_prob),
                                   (((size > 1) & ((size & (size - 1)) == 0)).mean(), _expected_power_of_two_share(t))):
            se = math.sqrt(expected * (1 - expected) / n)
            assert abs(measured - expected) < max(4 * se, 0.01), (kind, measured, expected)


def test_log_run_time_means_match_the_hyper_gamma(sample):
    x = np.linspace(1e-6, 12, 200_001)
    checked = 0
    for kind, t in ((INTERACTIVE, INTERACTIVE_PARAMETERS), (BATCH, BATCH_PARAMETERS)):
        for size in (1, 2, 4, 8, 16, 32):
            mine = (sample.job_type == kind) & (sample.size == size)
            if mine.sum() < 300:
                continue
            logs = np.log(sample.run_time[mine])
            pdf = log_run_time_pdf(x, t, size)
            # run times are whole seconds, floor(exp(X)), as the program prints them
            expected = np.trapezoid(np.log(np.floor(np.exp(x))) * pdf, x)
            se = logs.std() / math.sqrt(mine.sum())
            assert abs(logs.mean() - expected) < 4 * se + 0.01, (kind, size, logs.mean(), expected)
            checked += 1
    assert checked >= 8
    # the size-runtime correlation: large batch jobs run longer than serial ones in the mean
    assert log_run_time_pdf(np.array([9.9]), BATCH_PARAMETERS, 128)[0] > log_run_time_pdf(
        np.array([9.9]), BATCH_PARAMETERS, 1)[0]


def test_arrivals_follow_the_daily_cycle(sample):
    hours = (sample.submit % 86400) // 3600
    measured = np.bincount(hours, minlength=24) / hours.size
    expected = np.zeros(24)
    for kind, t in ((INTERACTIVE, INTERACTIVE_PARAMETERS), (BATCH, BATCH_PARAMETERS)):
        w = bucket_weights(t)
        expected += (sample.job_type == kind).sum() * (w[0::2] + w[1::2]) / 96
    expected /= expected.sum()
    assert np.abs(measured - expected).max() < 0.03
    assert 10 <= int(np.argmax(measured)) <= 17  # the busiest hour is in the working day
    assert measured[8:18].sum() > 0.55 and measured[0:6].sum() < 0.15


@pytest.mark.parametrize("load", [0.3, 0.9, 1.4])
def test_the_target_load_is_reached(load):
    t = generate_lublin(4000, 256, load=load, rng=3)
    assert t.offered_load == pytest.approx(load, rel=0.01)
    assert offered_load(t.submit, t.size, t.run_time, 256) == t.offered_load
    own = generate_lublin(4000, 256, rng=3)  # the model's own rate: inter-arrival factor 1
    assert own.load_factor == 1.0
    assert (t.load_factor < 1) == (load > own.offered_load)  # a higher load: shorter inter-arrivals
    # the same job sizes and run times, arriving faster or slower (the first jobs of each type agree)
    assert t.size[t.job_type == INTERACTIVE][:50].tolist() == own.size[own.job_type == INTERACTIVE][:50].tolist()


# ---------------------------------------------------------------------------- command line


def test_generate_writes_swf_and_json_deterministically_and_simulate_takes_them(tmp_path, capsys):
    args = ["generate", "--jobs", "300", "--load", "0.7", "--seed", "5", "--platform", "quickstart"]
    for name in ("a.swf", "b.swf", "a.json", "b.json"):
        assert main(args + ["--out", str(tmp_path / name)]) == 0
    assert (tmp_path / "a.swf").read_bytes() == (tmp_path / "b.swf").read_bytes()
    assert (tmp_path / "a.json").read_bytes() == (tmp_path / "b.json").read_bytes()
    assert main(["generate", "--jobs", "300", "--cores", "88", "--load", "0.7", "--seed", "6",
                 "--out", str(tmp_path / "c.swf")]) == 0
    assert (tmp_path / "c.swf").read_bytes() != (tmp_path / "a.swf").read_bytes()
    out = capsys.readouterr().out
    assert "offered load 0.70" in out

    trace = read_swf(tmp_path / "a.swf")
    assert len(trace) == 300 and trace.max_procs == 88  # quickstart's cores
    assert (trace["requested_memory_kb"] == -1).all() and (trace["used_memory_kb"] == -1).all()
    workload, report = swf_to_workload(trace, {"profile_type": "delay"})
    assert report.accepted == 300 and max(j.res for j in workload.jobs) <= 88

    for name in ("a.swf", "a.json"):
        assert main(["simulate", "--platform", "quickstart", "--workload", str(tmp_path / name)]) == 0
        assert "300 jobs on" in capsys.readouterr().out


@pytest.mark.parametrize("argv, message", [
    (["--jobs", "0", "--cores", "8", "--out", "{tmp}/x.swf"], "jobs: expected an integer"),
    (["--jobs", "10", "--cores", "0", "--out", "{tmp}/x.swf"], "cores: expected an integer"),
    (["--jobs", "10", "--cores", "8", "--load", "-1", "--out", "{tmp}/x.swf"], "load: expected a positive"),
    (["--jobs", "10", "--cores", "8", "--load", "nan", "--out", "{tmp}/x.swf"], "load: expected a positive"),
    (["--jobs", "1", "--cores", "8", "--load", "0.5", "--out", "{tmp}/x.swf"], "at least 2 jobs"),
    (["--jobs", "10", "--cores", "8", "--seed", "-3", "--out", "{tmp}/x.swf"], "seed"),
    (["--jobs", "10", "--cores", "8", "--estimate-factor", "0.5", "--out", "{tmp}/x.swf"], "estimate factor"),
    (["--jobs", "10", "--cores", "8", "--out", "{tmp}/x.txt"], "ending in .swf"),
    (["--jobs", "10", "--cores", "8", "--out", " "], "empty"),
    (["--jobs", "10", "--out", "{tmp}/x.swf"], "give --cores"),
    (["--jobs", "10", "--cores", "8", "--out", "{tmp}/x.json"], "give --platform"),
    (["--jobs", "10", "--cores", "1000", "--platform", "quickstart", "--out", "{tmp}/x.json"], "more than the 88"),
    (["--jobs", "10", "--cores", "8", "--platform", "no-such-platform", "--out", "{tmp}/x.json"], ""),
    (["--jobs", "10", "--cores", "8", "--out", "{tmp}/missing/x.swf"], "missing"),
])
def test_bad_arguments_are_one_line_errors(tmp_path, capsys, argv, message):
    argv = [a.replace("{tmp}", str(tmp_path)) for a in argv]
    assert main(["generate"] + argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("hdeeprm generate: error: "), err
    assert message in err
    assert not (tmp_path / "x.swf").exists() and not (tmp_path / "x.json").exists()


def test_describe_compares_a_generated_workload_with_a_trace(tmp_path, capsys):
    gen = tmp_path / "lublin.swf"
    assert main(["generate", "--jobs", "2000", "--cores", "100", "--seed", "1", "--load", "0.7",
                 "--out", str(gen)]) == 0
    capsys.readouterr()
    trace = TRACES / "kth-sp2-head.swf.gz"
    assert main(["describe", str(gen), "--compare", str(trace)]) == 0
    out = capsys.readouterr().out
    table = out.split("\n\n")[-1]
    header = table.splitlines()[0]
    assert "lublin.swf" in header and "kth-sp2-head.swf.gz" in header
    rows = {line[:42].strip(): line[42:].split() for line in table.splitlines()[1:] if not line.startswith("note")}
    assert rows["jobs"] == ["2,000", "1,000"]
    for label in ("serial fraction (size 1)", "power-of-two fraction of parallel jobs", "run time (s) p50",
                  "inter-arrival (s) p95", "arrivals 12-15 h (share)", "busiest hour of the day"):
        assert len(rows[label]) == 2 and "unknown" not in rows[label], label
    assert float(rows["offered load (own machine)"][0]) == pytest.approx(0.7, abs=0.005)
    # with a platform, the load on it; a JSON workload's hours count from its time 0
    json_path = tmp_path / "lublin.json"
    assert main(["generate", "--jobs", "500", "--platform", "quickstart", "--out", str(json_path)]) == 0
    assert main(["describe", str(json_path), "--compare", str(gen), "--platform", "quickstart"]) == 0
    out = capsys.readouterr().out
    assert "offered load  " in out and "a Batsim JSON workload has no date" in out


def test_describe_compare_figure(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    gen = tmp_path / "g.swf"
    assert main(["generate", "--jobs", "400", "--cores", "100", "--out", str(gen)]) == 0
    fig = tmp_path / "cmp.png"
    assert main(["describe", str(gen), "--compare", str(TRACES / "kth-sp2-head.swf.gz"), "--figure", str(fig)]) == 0
    assert fig.stat().st_size > 10_000 and "figure:" in capsys.readouterr().out


def test_typeless_model_matches_the_reference_programs_own_trace():
    """lublin_256.swf (RLScheduler's, written by m_lublin99.c with one job type on 256 nodes;
    tests/data/traces) against our typeless model on 256 cores: the same distributions, within
    what two samples of 10,000 jobs can differ by. A check against output nobody here wrote."""
    from hdeeprm.inputs.workload.lublin import LublinParameters, generate_lublin
    from hdeeprm.inputs.workload.swf import read_swf

    reference = read_swf(Path(__file__).parent / "data" / "traces" / "lublin_256.swf.gz").records
    ours = generate_lublin(10_000, 256, rng=3, params=LublinParameters.typeless())
    theirs = {"size": reference[:, 4], "run": reference[:, 3], "gap": np.diff(reference[:, 1])}
    mine = {"size": ours.size, "run": ours.run_time, "gap": np.diff(ours.submit)}

    def serial(size):
        return np.mean(size == 1)

    def power_of_two(size):
        parallel = size[size > 1].astype(np.int64)
        return np.mean(parallel & (parallel - 1) == 0)

    assert abs(serial(mine["size"]) - serial(theirs["size"])) < 0.02
    assert abs(power_of_two(mine["size"]) - power_of_two(theirs["size"])) < 0.03
    assert abs(np.mean(mine["size"]) / np.mean(theirs["size"]) - 1) < 0.1
    for q in (25, 50, 75, 95):
        assert abs(np.log(np.percentile(mine["run"], q)) - np.log(np.percentile(theirs["run"], q))) < 0.25, q
        assert abs(np.log1p(np.percentile(mine["gap"], q)) - np.log1p(np.percentile(theirs["gap"], q))) < 0.25, q
