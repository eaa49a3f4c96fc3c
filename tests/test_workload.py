"""Workload layer: SWF reading, SWF -> Batsim conversion, Batsim JSON reading and writing."""

from __future__ import annotations

import gzip
import json
import os
from pathlib import Path

import numpy as np
import pytest

from hdeeprm.common.errors import ConfigError, WorkloadError
from hdeeprm.inputs.workload import (
    ConversionOptions,
    Job,
    Profile,
    Workload,
    job_limits,
    load_workload,
    parse_swf,
    read_batsim_workload,
    read_swf,
    swf_to_workload,
    write_batsim_workload,
)
from hdeeprm.inputs.workload import convert as convert_module
from hdeeprm.inputs.workload import swf as swf_module

DATA = Path(__file__).parent / "data" / "traces"
GAIA = DATA / "gaia-2014-head.swf.gz"
KTH = DATA / "kth-sp2-head.swf.gz"
# The full traces live beside the repository in a development checkout only.
# Full Parallel Workloads Archive traces are not shipped with the project: point
# HDEEPRM_TRACE_DIR at a folder of them (*.swf, *.swf.gz) to parse and convert every one.
SHARED_TRACES = Path(os.environ.get("HDEEPRM_TRACE_DIR", "/nonexistent-trace-dir"))
R = 4.2  # GFLOP/s, a reference speed used throughout


def swf_line(job, submit, run=100, alloc=1, req_procs=-1, req_time=-1, req_mem=-1,
             used_mem=-1, status=1) -> str:
    fields = [job, submit, 0, run, alloc, -1, used_mem, req_procs, req_time, req_mem, status,
              1, 1, -1, 1, -1, -1, -1]
    return " ".join(str(f) for f in fields)


def write_swf(tmp_path: Path, lines: list[str], name: str = "t.swf") -> Path:
    path = tmp_path / name
    path.write_text("\n".join(lines) + "\n")
    return path


def convert(path, **options):
    options.setdefault("reference_speed_gflops", R)
    return swf_to_workload(path, ConversionOptions(**options))


def profile_of(workload: Workload, job: Job) -> Profile:
    return workload.profiles[job.profile]


# --------------------------------------------------------------------------------------------
# Full traces (only when HDEEPRM_TRACE_DIR names a folder of them)

FULL_TRACE_RECORDS = {
    "KTH-SP2-1996-2.1-cln.swf.gz": 28476,
    "SDSC-SP2-1998-4.2-cln.swf.gz": 59715,
    "CTC-SP2-1996-3.1-cln.swf.gz": 77222,
    "HPC2N-2002-2.2-cln.swf.gz": 202871,
    "SDSC-BLUE-2000-4.2-cln.swf.gz": 243306,
    "LLNL-Atlas-2006-2.1-cln.swf.gz": 43778,
    "UniLu-Gaia-2014-2.swf.gz": 51987,
    "METACENTRUM-2009-2.swf.gz": 103656,
    "lublin_256.swf.gz": 10000,
}


def _shared_traces():
    if not SHARED_TRACES.is_dir():
        return [pytest.param(None, marks=pytest.mark.skip(reason="set HDEEPRM_TRACE_DIR to a folder of SWF traces"))]
    paths = sorted(SHARED_TRACES.glob("*.swf*"))
    return [pytest.param(p, id=p.name) for p in paths] or [
        pytest.param(None, marks=pytest.mark.skip(reason="no traces"))
    ]


@pytest.mark.slow
@pytest.mark.parametrize("path", _shared_traces())
def test_full_trace_parses_and_converts(path):
    trace = read_swf(path)
    if path.name in FULL_TRACE_RECORDS:
        assert len(trace) == FULL_TRACE_RECORDS[path.name]
    assert trace.records.shape == (len(trace), 18)
    max_res = trace.max_procs or 256
    for model in ("real", "hdeeprm"):
        workload, report = swf_to_workload(
            trace, ConversionOptions(reference_speed_gflops=R, runtime_model=model, max_res=max_res)
        )
        assert report.records == report.examined == len(trace)
        assert report.accepted + report.skipped_total == len(trace)
        assert report.accepted >= 0.8 * len(trace)
        assert len(workload.jobs) == report.accepted
        arrays = workload.compile()
        assert arrays.subtime[0] == 0 and np.all(np.diff(arrays.subtime) >= 0)
        assert arrays.res.min() >= 1
        assert np.all(arrays.walltime > 0) and np.all(np.isfinite(arrays.walltime))
        assert np.all(arrays.work >= 0)
        assert report.larger_than_max_res == int((arrays.res > max_res).sum())


# --------------------------------------------------------------------------------------------
# Bundled excerpts


def test_bundled_excerpts_are_small_and_complete():
    for path, records, max_procs in ((GAIA, 2000, 2004), (KTH, 1000, 100)):
        assert path.stat().st_size < 100_000
        trace = read_swf(path)
        assert len(trace) == records
        assert trace.max_procs == max_procs
        assert trace.metadata["Version"] == "2.2"


def test_bundled_examples_match_test_copies():
    examples = Path(__file__).resolve().parents[1] / "examples" / "data"
    for name in (GAIA.name, KTH.name):
        assert (examples / name).read_bytes() == (DATA / name).read_bytes()


def test_gaia_excerpt_conversion():
    trace = read_swf(GAIA)
    assert trace["submit_time"][0] == 0  # the first job is at 0: the shift must keep it there
    workload, report = convert(trace, max_res=2004)
    assert report.accepted + report.skipped_total == 2000
    assert [j.id for j in workload.jobs] == [str(i) for i in range(report.accepted)]
    assert workload.jobs[0].subtime == 0
    assert report.time_offset_s == 0
    # Gaia records used memory: some jobs must carry it, in MB per core.
    mems = [profile_of(workload, j).extra["mem"] for j in workload.jobs]
    assert max(mems) > 0
    assert workload.nb_res == 2004


def test_kth_excerpt_conversion_shift_and_limits():
    workload, report = convert(KTH, runtime_model="hdeeprm", nb_jobs=500, max_res=100)
    assert report.accepted == 500
    assert report.time_offset_s == 599850  # the excerpt's first (and earliest) submit time
    limits = job_limits(workload)
    assert limits.max_core <= 100 and limits.max_time > 0
    assert limits.max_mem == 1.0  # KTH has no memory information: 0 replaced by 1


# --------------------------------------------------------------------------------------------
# SWF reading


def test_blank_lines_comments_anywhere_and_trailing_spaces(tmp_path):
    lines = [
        "; Version: 2.2",
        "; MaxProcs: 64",
        "",
        swf_line(1, 0) + "   ",
        "   ",
        "; a comment between records",
        "\t" + swf_line(2, 10) + " ; an inline comment",
        "",
        "   ; MaxNodes: 8",
        swf_line(3, 20),
        "; trailing comment",
    ]
    trace = read_swf(write_swf(tmp_path, lines))
    assert len(trace) == 3
    assert trace["submit_time"].tolist() == [0, 10, 20]
    assert trace.max_procs == 64 and trace.max_nodes == 8


def test_crlf_line_endings(tmp_path):
    path = tmp_path / "crlf.swf"
    path.write_bytes(("; MaxProcs: 4\r\n" + swf_line(1, 5) + "\r\n" + swf_line(2, 6) + "\r\n").encode())
    trace = read_swf(path)
    assert trace["submit_time"].tolist() == [5, 6]
    assert trace.max_procs == 4


def test_fractional_values_are_kept(tmp_path):
    trace = read_swf(write_swf(tmp_path, [swf_line(1, 10.5, run=3.25)]))
    assert trace["submit_time"][0] == 10.5 and trace["run_time"][0] == 3.25


def test_short_records_are_padded_with_missing(tmp_path):
    full = swf_line(1, 0).split()
    lines = [" ".join(full[:12]), " ".join(full[:10]), " ".join(full)]
    trace = read_swf(write_swf(tmp_path, lines))
    assert trace.records.shape == (3, 18)
    assert trace["user_id"].tolist() == [1, -1, 1]
    assert trace["think_time"].tolist() == [-1, -1, -1]


def test_gzip_and_plain_give_identical_records(tmp_path):
    plain = write_swf(tmp_path, ["; MaxProcs: 16", swf_line(1, 0), swf_line(2, 3.5)])
    zipped = tmp_path / "t.data"  # no .gz suffix: the magic bytes decide
    zipped.write_bytes(gzip.compress(plain.read_bytes()))
    a, b = read_swf(plain), read_swf(zipped)
    assert np.array_equal(a.records, b.records)
    assert a.metadata == b.metadata


def test_records_are_read_only(tmp_path):
    trace = read_swf(write_swf(tmp_path, [swf_line(1, 0)]))
    with pytest.raises(ValueError):
        trace.records[0, 0] = 5


def test_empty_trace(tmp_path):
    trace = read_swf(write_swf(tmp_path, ["; MaxProcs: 4", ""]))
    assert len(trace) == 0 and trace.records.shape == (0, 18)
    workload, report = convert(trace)
    assert workload.jobs == () and report.accepted == 0


def test_unknown_column_name(tmp_path):
    trace = read_swf(write_swf(tmp_path, [swf_line(1, 0)]))
    with pytest.raises(KeyError, match="unknown SWF field"):
        trace["runtime"]


@pytest.mark.parametrize(
    "bad, field, message",
    [
        ("1 0 0 abc 1 -1 -1 1 10 -1 1 1 1 -1 1 -1 -1 -1", "run_time", "abc"),
        ("1 0 0 10 1 -1 -1 1 nan -1 1 1 1 -1 1 -1 -1 -1", "requested_time", "nan"),
        ("1 0 0 10 1 -1 -1 1 10 -1 1 1 1 -1 1 -1 -1 x", "think_time", "'x'"),
    ],
)
def test_malformed_field_names_file_line_and_field(tmp_path, bad, field, message):
    path = write_swf(tmp_path, ["; header", swf_line(1, 0), "", bad, swf_line(3, 5)])
    with pytest.raises(WorkloadError) as info:
        read_swf(path)
    err = info.value
    assert err.source == str(path) and err.where == "line 4" and err.field == field
    text = str(err)
    assert str(path) in text and "line 4" in text and field in text and message in text


@pytest.mark.parametrize("count", [5, 9, 19])
def test_wrong_field_count_names_line(tmp_path, count):
    bad = " ".join(["1"] * count)
    path = write_swf(tmp_path, [swf_line(1, 0), bad])
    with pytest.raises(WorkloadError, match=rf"line 2: expected 18 fields.*found {count}"):
        read_swf(path)


def test_missing_file_and_corrupt_gzip(tmp_path):
    with pytest.raises(WorkloadError, match="cannot read"):
        read_swf(tmp_path / "absent.swf")
    bad = tmp_path / "bad.swf.gz"
    bad.write_bytes(b"\x1f\x8b" + b"garbage")
    with pytest.raises(WorkloadError, match="gzip"):
        read_swf(bad)


def test_header_metadata_types(tmp_path):
    lines = ["; MaxNodes: 338 (batch partition; 512 total)", "; MaxProcs: 338",
             "; Note: first", "; Note: second", "; UnixStartTime: 820483200", swf_line(1, 0)]
    trace = read_swf(write_swf(tmp_path, lines))
    assert trace.metadata["MaxProcs"] == 338 and trace.max_nodes == 338
    assert trace.metadata["Note"] == "first"
    assert trace.metadata["UnixStartTime"] == 820483200


# --------------------------------------------------------------------------------------------
# Conversion rules


def test_time_shift_keeps_a_first_job_at_zero(tmp_path):
    path = write_swf(tmp_path, [swf_line(i + 1, s) for i, s in enumerate([0, 10, 30, 50])])
    workload, report = convert(path)
    assert [j.subtime for j in workload.jobs] == [0, 10, 30, 50]
    assert report.time_offset_s == 0


def test_time_shift_uses_minimum_submit_time(tmp_path):
    path = write_swf(tmp_path, [swf_line(1, 1000), swf_line(2, 1010.5), swf_line(3, 1100)])
    workload, report = convert(path)
    assert [j.subtime for j in workload.jobs] == [0, 10.5, 100]
    assert report.time_offset_s == 1000


def test_unsorted_trace_is_sorted_stably(tmp_path):
    # Same submit time for the records with 2 and 3 processors: trace order must be kept.
    lines = [swf_line(1, 50, alloc=1), swf_line(2, 30, alloc=2), swf_line(3, 10, alloc=4),
             swf_line(4, 30, alloc=3)]
    workload, _ = convert(write_swf(tmp_path, lines))
    assert [(j.id, j.subtime, j.res) for j in workload.jobs] == [
        ("0", 0, 4), ("1", 20, 2), ("2", 20, 3), ("3", 40, 1)
    ]


def test_fallbacks_for_missing_values(tmp_path):
    lines = [
        swf_line(1, 0, alloc=8, req_procs=-1, run=50, req_time=-1, req_mem=-1, used_mem=-1),
        swf_line(2, 1, alloc=8, req_procs=2, run=50, req_time=600, req_mem=2048, used_mem=5000),
        swf_line(3, 2, alloc=8, req_procs=0, run=50, req_time=0, req_mem=-1, used_mem=5000),
    ]
    workload, report = convert(write_swf(tmp_path, lines))
    assert report.accepted == 3
    j0, j1, j2 = workload.jobs
    p0, p1, p2 = (profile_of(workload, j) for j in workload.jobs)
    # requested processors -1 or 0 -> allocated; requested time -1 or 0 -> run time
    assert (j0.res, j0.walltime, p0.extra["req_time"]) == (8, 50, 50)
    assert (j1.res, j1.walltime, p1.extra["req_time"]) == (2, 600, 600)
    assert (j2.res, j2.walltime) == (8, 50)
    # memory: requested, else used, else 0; decimal MB, kept fractional
    assert (p0.extra["mem"], p1.extra["mem"], p2.extra["mem"]) == (0, 2.048, 5)


def test_work_and_extras_under_real_model(tmp_path):
    path = write_swf(tmp_path, [swf_line(1, 0, alloc=4, run=150, req_time=200, req_mem=2048)])
    workload, _ = convert(path)
    job = workload.jobs[0]
    prof = profile_of(workload, job)
    assert prof.type == "parallel_homogeneous" and prof.com == 0
    assert prof.cpu == 630_000_000_000  # R x 1e9 x 150 s
    assert prof.extra["req_ops"] == 840_000_000_000  # R x 1e9 x 200 s
    assert isinstance(prof.cpu, int) and isinstance(prof.extra["req_ops"], int)
    assert prof.extra["mem_bw"] in {4, 8, 12, 16, 20, 24}
    assert job.walltime == 200 and job.res == 4


def test_skip_reasons_and_counts(tmp_path):
    lines = [
        swf_line(1, 0),
        swf_line(2, -1),  # negative submit
        swf_line(3, 5, alloc=-1, req_procs=-1),  # no processors
        swf_line(4, 5, alloc=2.5),  # fractional processors
        swf_line(5, 6, run=-1, req_time=-1),  # no time at all
        swf_line(6, 7, run=-1, req_time=300),  # run time unknown: only the real model skips
        swf_line(7, 8, run=0, req_time=0),  # zero run and no request: nothing to go on
    ]
    path = write_swf(tmp_path, lines)
    _, real = convert(path)
    assert real.accepted == 1
    assert real.skipped == {"negative_submit_time": 1, "no_processors": 2,
                            "no_requested_time": 2, "no_run_time": 1}
    _, sampled = convert(path, runtime_model="hdeeprm")
    assert sampled.accepted == 2 and "no_run_time" not in sampled.skipped


def test_zero_run_time_jobs_are_kept(tmp_path):
    path = write_swf(tmp_path, [swf_line(1, 0, run=0, req_time=60)])
    workload, _ = convert(path)
    assert profile_of(workload, workload.jobs[0]).cpu == 0
    workload, _ = convert(path, profile_type="delay")
    prof = profile_of(workload, workload.jobs[0])
    assert prof.type == "delay" and prof.delay == convert_module.MIN_DELAY_S > 0


def test_delay_profiles(tmp_path):
    path = write_swf(tmp_path, [swf_line(1, 0, run=42.5, req_time=60)])
    workload, _ = swf_to_workload(path, ConversionOptions(profile_type="delay"))  # no R needed
    prof = profile_of(workload, workload.jobs[0])
    assert prof.delay == 42.5 and "req_ops" not in prof.extra and prof.extra["req_time"] == 60


def test_nb_jobs_keeps_first_accepted_records(tmp_path):
    lines = [swf_line(1, 0), swf_line(2, -5), swf_line(3, 20), swf_line(4, 30), swf_line(5, 40)]
    workload, report = convert(write_swf(tmp_path, lines), nb_jobs=2)
    assert [j.subtime for j in workload.jobs] == [0, 20]
    assert (report.accepted, report.examined, report.records) == (2, 3, 5)
    assert report.skipped == {"negative_submit_time": 1}


def test_jobs_larger_than_the_machine_are_kept_and_counted(tmp_path):
    lines = [swf_line(1, 0, alloc=4), swf_line(2, 1, alloc=64), swf_line(3, 2, alloc=16)]
    workload, report = convert(write_swf(tmp_path, lines), max_res=16)
    assert [j.res for j in workload.jobs] == [4, 64, 16]
    assert report.larger_than_max_res == 1
    assert workload.nb_res == 16


def test_exceeding_walltime_is_reported(tmp_path):
    lines = [swf_line(1, 0, run=120, req_time=100), swf_line(2, 0, run=50, req_time=100)]
    _, report = convert(write_swf(tmp_path, lines))
    assert report.exceeding_walltime == 1


def _many_identical_jobs(tmp_path, n=4000) -> Path:
    return write_swf(tmp_path, [swf_line(i, i, req_time=1000) for i in range(n)])


def test_hdeeprm_model_uses_the_25_point_distribution(tmp_path):
    workload, _ = convert(_many_identical_jobs(tmp_path), runtime_model="hdeeprm")
    factors = np.array([profile_of(workload, j).cpu / profile_of(workload, j).extra["req_ops"]
                        for j in workload.jobs])
    twentieths = factors * 20
    assert np.allclose(twentieths, np.round(twentieths), atol=1e-9)
    values, counts = np.unique(np.round(twentieths).astype(int), return_counts=True)
    assert values.min() >= 1 and values.max() <= 25
    freq = dict(zip(values.tolist(), (counts / len(factors)).tolist()))
    assert abs(freq[1] - 0.15) < 0.03 and abs(freq[25] - 0.08) < 0.03
    assert abs(factors.mean() - 0.5265) < 0.03


def test_each_job_keeps_its_own_sampled_work(tmp_path):
    # All jobs share req_time and mem; mem_bw has 6 values, so names built from those alone
    # would force many jobs onto one factor. Here every job's factor must survive.
    workload, _ = convert(_many_identical_jobs(tmp_path, 600), runtime_model="hdeeprm")
    by_class: dict[tuple, set] = {}
    for job in workload.jobs:
        prof = profile_of(workload, job)
        by_class.setdefault((prof.extra["req_time"], prof.extra["mem"], prof.extra["mem_bw"]),
                            set()).add(prof.cpu)
    assert all(len(cpus) > 5 for cpus in by_class.values())
    # ...while identical contents share one profile.
    assert len(workload.profiles) == len({
        (p.cpu, p.extra["req_time"], p.extra["mem"], p.extra["mem_bw"]) for p in workload.profiles.values()
    })
    assert len(workload.profiles) < len(workload.jobs)


def test_conversion_is_deterministic(tmp_path):
    path = _many_identical_jobs(tmp_path, 200)
    out = []
    for seed in (7, 7, 8):
        workload, _ = convert(path, runtime_model="hdeeprm", seed=seed)
        target = tmp_path / f"w{len(out)}.json"
        write_batsim_workload(workload, target)
        out.append(target.read_bytes())
    assert out[0] == out[1]
    assert out[0] != out[2]
    bw = [[w.profiles[j.profile].extra["mem_bw"] for j in w.jobs]
          for w in (convert(path, seed=s)[0] for s in (7, 8))]
    assert bw[0] != bw[1]


def test_explicit_generator_matches_seed(tmp_path):
    path = _many_identical_jobs(tmp_path, 50)
    options = ConversionOptions(reference_speed_gflops=R, runtime_model="hdeeprm", seed=3)
    a, _ = swf_to_workload(path, options)
    b, _ = swf_to_workload(path, options, rng=np.random.default_rng(3))
    assert a.jobs == b.jobs and dict(a.profiles) == dict(b.profiles)


def test_mem_bw_independent_of_runtime_model_and_prefix_stable(tmp_path):
    path = _many_identical_jobs(tmp_path, 100)

    def mem_bw(workload):
        return [workload.profiles[j.profile].extra["mem_bw"] for j in workload.jobs]

    real, _ = convert(path)
    sampled, _ = convert(path, runtime_model="hdeeprm")
    head, _ = convert(path, runtime_model="hdeeprm", nb_jobs=30)
    assert mem_bw(real) == mem_bw(sampled)
    assert mem_bw(head) == mem_bw(sampled)[:30]
    assert [profile_of(head, j).cpu for j in head.jobs] == [
        profile_of(sampled, j).cpu for j in sampled.jobs[:30]
    ]


def test_converted_workload_round_trips_through_json(tmp_path):
    workload, _ = convert(GAIA, runtime_model="hdeeprm", nb_jobs=300, max_res=2004)
    path = tmp_path / "w.json"
    write_batsim_workload(workload, path)
    back = read_batsim_workload(path)
    assert back.jobs == workload.jobs
    assert dict(back.profiles) == dict(workload.profiles)
    assert back.nb_res == 2004


# --------------------------------------------------------------------------------------------
# Options


def test_options_from_dict_rejects_unknown_keys():
    with pytest.raises(ConfigError, match="unknown conversion option.*'nb_job'"):
        ConversionOptions.from_dict({"nb_job": 3})
    opts = ConversionOptions.from_dict({"nb_jobs": 3, "reference_speed_gflops": 2})
    assert opts.nb_jobs == 3 and opts.reference_speed_gflops == 2.0
    assert ConversionOptions.from_dict(opts.to_dict()) == opts


@pytest.mark.parametrize(
    "values, match",
    [
        ({"nb_jobs": 0}, "nb_jobs"),
        ({"nb_jobs": 2.5}, "nb_jobs"),
        ({"max_res": True}, "max_res"),
        ({"runtime_model": "tsafrir"}, "runtime_model.*real, hdeeprm"),
        ({"profile_type": "parallel"}, "profile_type"),
        ({"reference_speed_gflops": 0}, "reference_speed_gflops"),
        ({"reference_speed_gflops": float("nan")}, "reference_speed_gflops"),
        ({"seed": -1}, "seed"),
        ({"seed": None}, "seed"),
        ({"unknown_run_time": "keep"}, "unknown_run_time: expected one of drop, short, found 'keep'"),
        ({"memory_demand": "zero"}, "memory_demand: expected one of hdeeprm, none, found 'zero'"),
    ],
)
def test_options_validation(values, match):
    with pytest.raises(ConfigError, match=match):
        ConversionOptions(**values)


def test_new_options_default_to_previous_behaviour_and_round_trip():
    opts = ConversionOptions()
    assert (opts.unknown_run_time, opts.memory_demand) == ("drop", "hdeeprm")
    opts = ConversionOptions.from_dict({"unknown_run_time": "short", "memory_demand": "none"})
    assert ConversionOptions.from_dict(opts.to_dict()) == opts


# --------------------------------------------------------------------------------------------
# Unknown run times (RLScheduler's 10 s jobs) and jobs without memory demand


def _unknown_run_time_trace(tmp_path) -> Path:
    return write_swf(tmp_path, [
        swf_line(1, 0, run=50, req_time=100),
        swf_line(2, 1, run=-1, req_time=300),  # run time unknown, requested time known
        swf_line(3, 2, run=-1, req_time=-1),  # neither known
        swf_line(4, 3, run=-1, req_time=0),  # requested time 0 counts as missing
        swf_line(5, 4, run=-1, req_time=-1, alloc=-1, req_procs=-1),  # no processors either
    ])


def test_unknown_run_time_drop_is_the_default(tmp_path):
    workload, report = convert(_unknown_run_time_trace(tmp_path))
    assert [j.walltime for j in workload.jobs] == [100]
    assert report.skipped == {"no_processors": 1, "no_requested_time": 2, "no_run_time": 1}
    assert report.unknown_run_time_kept == 0


def test_unknown_run_time_short_keeps_records_as_10_second_jobs(tmp_path):
    path = _unknown_run_time_trace(tmp_path)
    workload, report = convert(path, unknown_run_time="short")
    assert convert_module.SHORT_RUN_TIME_S == 10  # RLScheduler's value (job.py)
    assert report.accepted == 4 and report.unknown_run_time_kept == 3
    assert report.skipped == {"no_processors": 1}  # processors are still required
    # walltime: requested time, else the (short) run time; never <= 0
    assert [j.walltime for j in workload.jobs] == [100, 300, 10, 10]
    assert [profile_of(workload, j).cpu for j in workload.jobs] == [
        round(R * 1e9 * s) for s in (50, 10, 10, 10)]
    assert all(profile_of(workload, j).extra["req_time"] > 0 for j in workload.jobs)
    delays, _ = convert(path, unknown_run_time="short", profile_type="delay")
    assert [profile_of(delays, j).delay for j in delays.jobs] == [50, 10, 10, 10]
    # Under the hdeeprm model the run time only stands in for a missing requested time.
    sampled, report = convert(path, unknown_run_time="short", runtime_model="hdeeprm")
    assert [j.walltime for j in sampled.jobs] == [100, 300, 10, 10]
    assert report.unknown_run_time_kept == 3


def test_unknown_run_time_short_draws_once_per_accepted_record(tmp_path):
    """The kept records take their draws in trace order, as if their run time were 10 s."""
    unknown = [swf_line(i, i, run=-1 if i % 3 == 0 else 40, req_time=500) for i in range(60)]
    explicit = [swf_line(i, i, run=10 if i % 3 == 0 else 40, req_time=500) for i in range(60)]
    for model in ("real", "hdeeprm"):
        a, report = convert(write_swf(tmp_path, unknown, "u.swf"), unknown_run_time="short",
                            runtime_model=model, seed=5)
        b, _ = convert(write_swf(tmp_path, explicit, "e.swf"), runtime_model=model, seed=5)
        assert report.unknown_run_time_kept == 20
        assert a.jobs == b.jobs and dict(a.profiles) == dict(b.profiles)


def test_memory_demand_none_zeroes_mem_and_mem_bw_only(tmp_path):
    lines = [swf_line(i, i, run=30 + i, req_time=900, req_mem=2048 * (i % 3), used_mem=700)
             for i in range(40)]
    path = write_swf(tmp_path, lines)
    for model in ("real", "hdeeprm"):
        base, base_report = convert(path, runtime_model=model, seed=2)
        none, none_report = convert(path, runtime_model=model, seed=2, memory_demand="none")
        assert base_report == none_report
        # same jobs; profile names may differ (identical profiles are shared, and more of them
        # are identical without memory demand)
        assert [(j.id, j.subtime, j.res, j.walltime) for j in none.jobs] == [
            (j.id, j.subtime, j.res, j.walltime) for j in base.jobs]
        old = [profile_of(base, j) for j in base.jobs]
        new = [profile_of(none, j) for j in none.jobs]
        assert any(p.extra["mem"] > 0 for p in old) and any(p.extra["mem_bw"] > 0 for p in old)
        assert all(p.extra["mem"] == 0 and p.extra["mem_bw"] == 0 for p in new)
        # the work (hdeeprm factors included) and requested time do not move
        assert [(p.cpu, p.extra["req_time"], p.extra["req_ops"]) for p in new] == [
            (p.cpu, p.extra["req_time"], p.extra["req_ops"]) for p in old]
    arrays = none.compile()
    assert not arrays.mem_mb.any() and not arrays.mem_bw_gbs.any()
    limits = job_limits(none)
    assert (limits.max_mem, limits.max_mem_bw) == (1.0, 1.0)


def test_load_workload_takes_the_new_options(tmp_path):
    path = write_swf(tmp_path, [swf_line(1, 0, run=-1, req_time=-1, req_mem=4096)])
    workload = load_workload(path, reference_speed_gflops=R, unknown_run_time="short",
                             memory_demand="none")
    prof = profile_of(workload, workload.jobs[0])
    assert (workload.jobs[0].walltime, prof.extra["mem"], prof.extra["mem_bw"]) == (10, 0, 0)
    with pytest.raises(WorkloadError, match="no usable job"):
        load_workload(path, reference_speed_gflops=R)


def test_reference_speed_required_for_flops(tmp_path):
    path = write_swf(tmp_path, [swf_line(1, 0)])
    with pytest.raises(ConfigError, match="reference_speed_gflops"):
        swf_to_workload(path)


# --------------------------------------------------------------------------------------------
# Job limits


def _workload_for_limits(req_times, res, mems, bws) -> Workload:
    profiles, jobs = {}, []
    for i, (t, r, m, b) in enumerate(zip(req_times, res, mems, bws)):
        profiles[f"p{i}"] = Profile(f"p{i}", "delay", delay=t, extra={"req_time": t, "mem": m, "mem_bw": b})
        jobs.append(Job(str(i), 0, r, f"p{i}", walltime=t))
    return Workload(tuple(jobs), profiles)


def test_job_limits_are_99th_percentiles():
    times, res, mems, bws = [200, 300, 300, 200], [4, 2, 2, 1], [2, 5, 0, 2], [4, 8, 24, 12]
    limits = job_limits(_workload_for_limits(times, res, mems, bws))
    assert limits.max_time == pytest.approx(np.percentile(times, 99)) == pytest.approx(300)
    assert limits.max_core == pytest.approx(3.94)
    assert limits.max_mem == pytest.approx(np.percentile(mems, 99))
    assert limits.max_mem_bw == pytest.approx(np.percentile(bws, 99))
    assert set(limits.as_dict()) == {"max_time", "max_core", "max_mem", "max_mem_bw"}


def test_zero_job_limits_become_one():
    limits = job_limits(_workload_for_limits([10, 20], [1, 1], [0, 0], [0, 0]))
    assert limits.max_mem == 1.0 and limits.max_mem_bw == 1.0
    empty = job_limits(Workload((), {}))
    assert empty.as_dict() == {"max_time": 1.0, "max_core": 1.0, "max_mem": 1.0, "max_mem_bw": 1.0}


# --------------------------------------------------------------------------------------------
# load_workload


def test_load_workload_dispatches_on_name(tmp_path):
    swf = load_workload(KTH, reference_speed_gflops=R, nb_jobs=10)
    assert len(swf.jobs) == 10
    json_path = tmp_path / "w.json"
    write_batsim_workload(swf, json_path)
    back = load_workload(json_path, nb_jobs=3)  # conversion settings do not apply to JSON
    assert back.jobs == swf.jobs
    options = ConversionOptions(reference_speed_gflops=R, nb_jobs=5)
    assert len(load_workload(KTH, options, rng=np.random.default_rng(1)).jobs) == 5
    assert len(load_workload(KTH, options, nb_jobs=7).jobs) == 7
    with pytest.raises(ConfigError, match="unknown"):
        load_workload(json_path, nb_jobz=3)


# --------------------------------------------------------------------------------------------
# Batsim JSON


EXAMPLE = {
    "nb_res": 4,
    "jobs": [
        {"id": 0, "subtime": 0, "walltime": 5, "res": 1, "profile": "d10"},
        {"id": "a", "subtime": 1.5, "walltime": -1, "res": 2, "profile": "ph"},
        {"id": 2, "subtime": 3, "res": 4, "profile": "ph", "user": "alice", "tags": [1, 2]},
    ],
    "profiles": {
        "d10": {"type": "delay", "delay": 10, "mem": 500},
        "ph": {"type": "parallel_homogeneous", "cpu": 1e10, "com": 0, "req_time": 5,
               "req_ops": 21000000000, "mem": 8000, "mem_bw": 24, "note": {"x": 1}},
    },
}


def write_json(tmp_path: Path, doc, name: str = "w.json") -> Path:
    path = tmp_path / name
    path.write_text(json.dumps(doc, indent=1))
    return path


def test_read_batsim_workload(tmp_path):
    workload = read_batsim_workload(write_json(tmp_path, EXAMPLE))
    assert workload.nb_res == 4
    assert [j.id for j in workload.jobs] == ["0", "a", "2"]
    assert [j.walltime for j in workload.jobs] == [5, None, None]
    assert workload.jobs[2].extra == {"user": "alice", "tags": [1, 2]}
    ph = workload.profiles["ph"]
    assert ph.cpu == 1e10 and ph.com == 0
    assert ph.extra == {"req_time": 5, "req_ops": 21000000000, "mem": 8000, "mem_bw": 24, "note": {"x": 1}}
    assert workload.profiles["d10"].delay == 10
    arrays = workload.compile()
    assert arrays.mem_mb.tolist() == [500, 8000, 8000]


def test_batsim_round_trip_is_identical_and_deterministic(tmp_path):
    first = read_batsim_workload(write_json(tmp_path, EXAMPLE))
    write_batsim_workload(first, tmp_path / "a.json")
    second = read_batsim_workload(tmp_path / "a.json")
    assert second.jobs == first.jobs and dict(second.profiles) == dict(first.profiles)
    assert second.nb_res == first.nb_res
    write_batsim_workload(second, tmp_path / "b.json")
    text = (tmp_path / "a.json").read_text()
    assert text == (tmp_path / "b.json").read_text()
    lines = text.splitlines()
    # One job and one profile per line; integers stay integers, floats stay floats.
    assert '{"id": 2, "subtime": 3, "res": 4, "profile": "ph", "user": "alice", "tags": [1, 2]}' in lines
    assert any(line.startswith('"ph": {"type": "parallel_homogeneous", "cpu": 10000000000.0, "com": 0,')
               for line in lines)
    assert '"d10": {"type": "delay", "delay": 10, "mem": 500},' in lines
    assert json.loads(text)["jobs"][1]["id"] == "a"


def test_write_empty_workload(tmp_path):
    write_batsim_workload(Workload((), {}, nb_res=2), tmp_path / "e.json")
    assert json.loads((tmp_path / "e.json").read_text()) == {"nb_res": 2, "jobs": [], "profiles": {}}
    assert read_batsim_workload(tmp_path / "e.json").jobs == ()


def test_bundled_learning_workload_reads():
    path = Path(__file__).resolve().parents[1] / "hdeeprm" / "data" / "learning_workload.json"
    workload = read_batsim_workload(path)
    assert len(workload.jobs) == 2 and workload.profiles["Test0"].extra["mem_bw"] == 24


def _broken(mutate):
    doc = json.loads(json.dumps(EXAMPLE))
    mutate(doc)
    return doc


@pytest.mark.parametrize(
    "mutate, where, field, match",
    [
        (lambda d: d["jobs"][1].update(profile="nope"), "jobs[1]", "profile", "'nope' is not defined"),
        (lambda d: d["jobs"][1].pop("profile"), "jobs[1]", "profile", "expected a profile name"),
        (lambda d: d["jobs"][0].update(res=0), "jobs[0]", "res", "integer >= 1, found 0"),
        (lambda d: d["jobs"][0].update(res=1.5), "jobs[0]", "res", "found 1.5"),
        (lambda d: d["jobs"][0].update(res="2"), "jobs[0]", "res", "found '2'"),
        (lambda d: d["jobs"][0].update(res=True), "jobs[0]", "res", "found True"),
        (lambda d: d["jobs"][0].pop("res"), "jobs[0]", "res", "missing"),
        (lambda d: d["jobs"][2].update(walltime=0), "jobs[2]", "walltime", "positive number.*or -1.*found 0"),
        (lambda d: d["jobs"][2].update(walltime=-5), "jobs[2]", "walltime", "found -5"),
        (lambda d: d["jobs"][2].update(subtime=-1), "jobs[2]", "subtime", ">= 0"),
        (lambda d: d["jobs"][2].update(id=0), "jobs[2].id", None, "duplicate job id '0'.*jobs\\[0\\]"),
        (lambda d: d["jobs"][2].update(id="a"), "jobs[2].id", None, "duplicate job id 'a'"),
        (lambda d: d["jobs"][2].update(id="w0!2"), "jobs[2]", "id", "workload prefix"),
        (lambda d: d["jobs"][2].update(id=2.0), "jobs[2]", "id", "integer or a non-empty string"),
        (lambda d: d["profiles"]["d10"].update(delay=0), "profiles.d10", "delay", "> 0, found 0"),
        (lambda d: d["profiles"]["ph"].update(cpu=-1), "profiles.ph", "cpu", ">= 0"),
        (lambda d: d["profiles"]["ph"].pop("com"), "profiles.ph", "com", "missing"),
        (lambda d: d["profiles"]["ph"].update(type="parallel"), "profiles.ph", "type",
         "unsupported profile type 'parallel'.*delay, parallel_homogeneous"),
        (lambda d: d["profiles"]["ph"].update(type="composed"), "profiles.ph", "type", "supported"),
        (lambda d: d["profiles"]["ph"].pop("type"), "profiles.ph", "type", "missing"),
        (lambda d: d.update(nb_res=0), "nb_res", None, "integer >= 1"),
        (lambda d: d.pop("profiles"), "profiles", None, "missing"),
        (lambda d: d.update(jobs={}), "jobs", None, "expected a JSON array"),
    ],
)
def test_batsim_json_errors(tmp_path, mutate, where, field, match):
    path = write_json(tmp_path, _broken(mutate))
    with pytest.raises(WorkloadError, match=match) as info:
        read_batsim_workload(path)
    err = info.value
    assert err.source == str(path) and err.where == where and err.field == field
    assert str(path) in str(err)


def test_batsim_json_syntax_errors(tmp_path):
    path = tmp_path / "bad.json"
    path.write_text('{\n"nb_res": 4,\n"jobs": [\n{"id": 0,, "subtime": 0}\n]}\n')
    with pytest.raises(WorkloadError, match=r"bad.json: line 4: invalid JSON"):
        read_batsim_workload(path)
    path.write_text('{"jobs": [], "profiles": {"p": {"type": "delay", "delay": NaN}}}')
    with pytest.raises(WorkloadError, match="NaN"):
        read_batsim_workload(path)
    path.write_text("[]")
    with pytest.raises(WorkloadError, match="expected a JSON object"):
        read_batsim_workload(path)
    with pytest.raises(WorkloadError, match="cannot read"):
        read_batsim_workload(tmp_path / "absent.json")


def test_nan_cannot_be_written(tmp_path):
    workload = Workload((), {"p": Profile("p", "delay", delay=float("nan"))})
    with pytest.raises(ValueError):
        write_batsim_workload(workload, tmp_path / "n.json")


# --------------------------------------------------------------------------------------------
# Property tests for the SWF line parser

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

_values = st.one_of(
    st.integers(min_value=-1, max_value=10**9),
    st.floats(min_value=-1, max_value=1e9, allow_nan=False, allow_infinity=False),
)
_space = st.sampled_from([" ", "  ", "\t", " \t "])
_record = st.lists(_values, min_size=18, max_size=18)


def _format(values, seps, lead, trail) -> str:
    parts = [lead]
    for value, sep in zip(values, seps):
        parts.append(repr(value) + sep)
    return "".join(parts) + trail


@settings(max_examples=150, deadline=None)
@given(_record, st.lists(_space, min_size=18, max_size=18), _space, _space)
def test_parse_line_round_trips_values(values, seps, lead, trail):
    line = _format(values, seps, lead, trail)
    parsed = swf_module.parse_swf_line(line)
    assert parsed.tolist() == [float(v) for v in values]


@settings(max_examples=60, deadline=None)
@given(st.lists(st.one_of(_record.map(lambda v: " ".join(map(repr, v))),
                          st.sampled_from(["", "   ", "; comment", " ; MaxProcs: 12"])),
                max_size=25))
def test_bulk_and_line_parsers_agree(lines):
    text = "\n".join(lines) + "\n"
    bulk = parse_swf(text)
    slow = swf_module._parse_slow(text.encode(), "<t>")
    assert np.array_equal(bulk.records, slow)
    assert len(bulk) == sum(1 for line in lines if line.strip() and not line.lstrip().startswith(";"))


def test_zero_run_times_can_be_dropped_as_rlscheduler_does(tmp_path):
    lines = [swf_line(1, 0, run=0, req_time=100), swf_line(2, 5, run=-1, req_time=100),
             swf_line(3, 9, run=30, req_time=100)]
    path = write_swf(tmp_path, lines, "z.swf")
    kept, report = convert(path, unknown_run_time="short")
    assert report.accepted == 3
    dropped, report = convert(path, unknown_run_time="short", zero_run_time="drop")
    # The -1 became 10 s before the test, so only the real zero goes.
    assert report.accepted == 2 and report.skipped == {"zero_run_time": 1}
    assert [j.subtime for j in dropped.jobs] == [0, 4]
    with pytest.raises(ConfigError, match="zero_run_time"):
        convert(path, zero_run_time="sometimes")


def test_jobs_can_run_past_their_requested_time(tmp_path):
    from hdeeprm.inputs.platform import load_platform
    from hdeeprm.simulation.engine import Engine
    from hdeeprm.simulation.policies import PolicyConfig, run_policy

    lines = [swf_line(1, 0, run=500, req_time=100), swf_line(2, 1, run=50, req_time=100)]
    path = write_swf(tmp_path, lines, "over.swf")
    platform = load_platform("quickstart")
    finishes = {}
    for kill in (True, False):
        workload, report = convert(path, kill_at_requested_time=kill, profile_type="delay", memory_demand="none")
        assert report.exceeding_walltime == (1 if kill else 0)
        arrays = workload.compile()
        assert arrays.req_time.tolist() == [100, 100]  # what keys and observations see
        result = run_policy(Engine(platform, arrays), PolicyConfig("first", "first_fit"))
        finishes[kill] = (result.finish - result.start).tolist()
    assert finishes[True] == [100, 50]  # killed at the requested time, as Batsim does
    assert finishes[False] == [500, 50]  # runs to its end, as in RLScheduler
    with pytest.raises(ConfigError, match="kill_at_requested_time"):
        convert(path, kill_at_requested_time="no")
