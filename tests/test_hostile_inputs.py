"""Hostile input (found by benchmarks/fuzz.py) gets a one-line WorkloadError / PlatformError,
naming the file and place, with a bounded echo of the bad input; never a traceback, a
MemoryError or a silent run of nothing."""

from __future__ import annotations

import gzip
import json
import zlib
from pathlib import Path

import numpy as np
import pytest

from hdeeprm.common.errors import PlatformError, WorkloadError
from hdeeprm.inputs import limits
from hdeeprm.inputs.platform import (
    bundled_platform,
    homogeneous_platform,
    load_platform,
)
from hdeeprm.inputs.platform.json_platform import load_json_platform
from hdeeprm.inputs.platform.model import Platform
from hdeeprm.inputs.platform.xml_platform import load_xml_platform
from hdeeprm.inputs.workload import (
    ConversionOptions,
    load_workload,
    read_batsim_workload,
    read_swf,
    swf_to_workload,
)
from hdeeprm.inputs.workload.model import Job, Profile, Workload

LINE = "1 0 0 100 1 -1 -1 {procs} 100 -1 1 1 1 -1 1 -1 -1 -1"


def one_line(err: Exception, limit: int = 400) -> str:
    text = str(err)
    assert "\n" not in text and len(text) < limit, text
    return text


def swf(tmp_path: Path, text: str | bytes, name: str = "t.swf") -> Path:
    path = tmp_path / name
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    return path


def batsim(tmp_path: Path, doc, name: str = "w.json") -> Path:
    path = tmp_path / name
    path.write_text(doc if isinstance(doc, str) else json.dumps(doc))
    return path


def workload_doc(**profile_extra) -> dict:
    return {"nb_res": 4, "jobs": [{"id": 1, "subtime": 0, "res": 1, "profile": "p"}],
            "profiles": {"p": {"type": "parallel_homogeneous", "cpu": 1e9, "com": 0,
                               **profile_extra}}}


# --------------------------------------------------------------------------------------------
# SWF


def test_corrupt_gzip_body_is_a_workload_error(tmp_path):
    good = gzip.compress(("\n".join(LINE.format(procs=1) for _ in range(200)) + "\n").encode())
    # Keep the header, scramble the deflate stream: zlib.error, not OSError, before the fix.
    bad = good[:10] + bytes(b ^ 0x5A for b in good[10:-8]) + good[-8:]
    with pytest.raises(zlib.error):
        gzip.decompress(bad)
    with pytest.raises(WorkloadError, match="corrupt gzip data") as info:
        read_swf(swf(tmp_path, bad, "t.swf.gz"))
    assert str(tmp_path) in one_line(info.value)


def test_gzip_bomb_is_refused_while_streaming(tmp_path, monkeypatch):
    monkeypatch.setattr("hdeeprm.inputs.workload.swf.MAX_SWF_BYTES", 1 << 20)
    bomb = gzip.compress(b"1 " * (4 << 20))  # 8 MiB of text, not NUL, over the 1 MiB limit
    with pytest.raises(WorkloadError, match="larger than the limit of 1 MiB") as info:
        read_swf(swf(tmp_path, bomb, "bomb.swf.gz"))
    one_line(info.value)


def test_dev_zero_and_binary_data_are_refused(tmp_path):
    for path in (Path("/dev/zero"), swf(tmp_path, b"1 2 3\0\0\0")):
        if not path.exists():
            continue
        with pytest.raises(WorkloadError, match="binary data") as info:
            read_swf(path)
        one_line(info.value)


def test_oversized_regular_file_refused_before_reading(tmp_path, monkeypatch):
    monkeypatch.setattr("hdeeprm.inputs.workload.swf.MAX_SWF_BYTES", 100)
    path = swf(tmp_path, (LINE.format(procs=1) + "\n") * 10)
    with pytest.raises(WorkloadError, match="larger than the limit of 100 bytes"):
        read_swf(path)


def test_huge_header_integer(tmp_path):
    path = swf(tmp_path, "; Version: 2\n; MaxProcs: " + "9" * 5001 + "\n" + LINE.format(procs=1))
    with pytest.raises(WorkloadError, match=r"line 2: header 'MaxProcs': expected an integer") as info:
        read_swf(path)
    assert len(one_line(info.value)) < 300


def test_bad_number_echo_is_truncated(tmp_path):
    path = swf(tmp_path, LINE.format(procs="x" + "9" * 10**6))
    with pytest.raises(WorkloadError, match="line 1.*requested_procs.*expected a number") as info:
        read_swf(path)
    assert "characters)" in one_line(info.value)


def test_huge_requested_procs_do_not_wrap_negative(tmp_path):
    path = swf(tmp_path, LINE.format(procs="1e30") + "\n" + LINE.format(procs=2) + "\n")
    workload, _ = swf_to_workload(path, ConversionOptions(reference_speed_gflops=1.0))
    assert [job.res for job in workload.jobs] == [limits.MAX_RES, 2]


@pytest.mark.parametrize("text", ["", "; MaxProcs: 4\n; only comments\n",
                                  "1 0 0 100 -1 -1 -1 -1 100 -1 1 1 1 -1 1 -1 -1 -1\n"])
def test_swf_without_usable_job_is_an_error(tmp_path, text):
    path = swf(tmp_path, text)
    with pytest.raises(WorkloadError, match="no usable job") as info:
        load_workload(path, reference_speed_gflops=1.0)
    assert str(path) in one_line(info.value)
    if text.startswith("1 "):
        assert "1 records skipped" in str(info.value)


def test_every_reader_of_traces_refuses_an_empty_one(tmp_path):
    """Experiments and `hdeeprm describe` convert traces themselves: the same error as load_workload."""
    from hdeeprm.analysis.runs import read_any_workload
    from hdeeprm.rl.experiment import ExperimentConfig

    path = swf(tmp_path, "; only comments\n")
    with pytest.raises(WorkloadError, match="no usable job .the trace holds no record"):
        read_any_workload(str(path))
    with pytest.raises(WorkloadError, match="no usable job .the trace holds no record"):
        ExperimentConfig(platform="quickstart", workload=str(path), episode_jobs=10).make_env()


# --------------------------------------------------------------------------------------------
# Batsim JSON


def test_deeply_nested_json(tmp_path):
    path = batsim(tmp_path, "[" * 100_000 + "]" * 100_000)
    with pytest.raises(WorkloadError, match="nested too deeply") as info:
        read_batsim_workload(path)
    one_line(info.value)


@pytest.mark.parametrize("edit, match", [
    (lambda d: d["profiles"]["p"].update(cpu=int("9" * 310)), "integer too large"),
    (lambda d: d["jobs"][0].update(res=2**63), "res.*expected an integer <= 2"),
    (lambda d: d["jobs"][0].update(res=2**31 + 1), "res.*expected an integer <= 2"),
    (lambda d: d.update(nb_res=2**64), "nb_res"),
])
def test_huge_integers(tmp_path, edit, match):
    doc = workload_doc()
    edit(doc)
    with pytest.raises(WorkloadError, match=match) as info:
        read_batsim_workload(batsim(tmp_path, doc))
    one_line(info.value)


def test_non_finite_number(tmp_path):
    text = json.dumps(workload_doc()).replace('"cpu": 1000000000.0', '"cpu": 1e999')
    assert "1e999" in text
    with pytest.raises(WorkloadError, match="not finite") as info:
        read_batsim_workload(batsim(tmp_path, text))
    one_line(info.value)


@pytest.mark.parametrize("key", ["mem", "mem_bw", "req_time", "req_ops"])
@pytest.mark.parametrize("value", ["é中😀", True, [1], {"a": 1}, None, -1, -0.5, "x" * 10_000])
def test_profile_extras_must_be_non_negative_numbers(tmp_path, key, value):
    path = batsim(tmp_path, workload_doc(**{key: value}))
    with pytest.raises(WorkloadError, match=rf"profiles\.p: field '{key}': expected a number >= 0") as info:
        read_batsim_workload(path)
    assert len(one_line(info.value)) < 300


def test_profile_extras_accepted_when_numbers(tmp_path):
    workload = read_batsim_workload(batsim(tmp_path, workload_doc(mem=0, mem_bw=1.5, req_time=10,
                                                                  req_ops=2e9)))
    assert workload.compile().mem_mb[0] == 0.0


def test_batsim_dev_zero_is_refused():
    if not Path("/dev/zero").exists():
        pytest.skip("no /dev/zero")
    with pytest.raises(WorkloadError, match="binary data"):
        read_batsim_workload("/dev/zero")


def test_batsim_workload_without_job_is_an_error(tmp_path):
    path = batsim(tmp_path, {"nb_res": 4, "jobs": [], "profiles": {}})
    assert read_batsim_workload(path).jobs == ()  # the reader itself accepts it
    with pytest.raises(WorkloadError, match="jobs: no usable job") as info:
        load_workload(path)
    one_line(info.value)


# --------------------------------------------------------------------------------------------
# Platforms


def learning_dict() -> dict:
    return json.loads(bundled_platform("learning").read_text())


def platform_json(tmp_path: Path, data) -> Path:
    path = tmp_path / "platform.json"
    path.write_text(data if isinstance(data, str) else json.dumps(data))
    return path


@pytest.mark.parametrize("text, match", [
    ("[" * 100_000 + "]" * 100_000, "nested too deeply"),
    ('{"clusters": ' + "9" * 4400 + "}", "integer too large"),
])
def test_platform_json_parse_limits(tmp_path, text, match):
    with pytest.raises(PlatformError, match=match) as info:
        load_json_platform(platform_json(tmp_path, text))
    one_line(info.value)


def test_platform_json_not_utf8_and_binary(tmp_path):
    path = tmp_path / "p.json"
    path.write_bytes(b'{"clusters": "\xff\xfe"}')
    with pytest.raises(PlatformError, match="not UTF-8"):
        load_json_platform(path)
    if Path("/dev/zero").exists():
        with pytest.raises(PlatformError, match="binary data"):
            load_json_platform("/dev/zero")


@pytest.mark.parametrize("number", [2**63, 10**9, limits.MAX_CORES + 1])
def test_platform_with_too_many_cores_is_refused_before_allocating(tmp_path, number):
    data = learning_dict()
    data["clusters"][0]["nodes"][0]["number"] = number
    with pytest.raises(PlatformError, match=r"clusters\[0\]\.nodes\[0\]\.number: more than 1,000,000 cores") as info:
        load_json_platform(platform_json(tmp_path, data))
    one_line(info.value)


@pytest.mark.parametrize("spec", ["1000000000xDell R720", "9" * 5000 + "xDell R720"])
def test_homogeneous_platform_too_large(spec):
    with pytest.raises(PlatformError, match="at most 1,000,000 nodes") as info:
        homogeneous_platform(spec)
    one_line(info.value)


XML = """<?xml version='1.0' encoding='{enc}'?>
<!DOCTYPE platform SYSTEM "https://simgrid.org/simgrid.dtd">
<platform version="4.1"><zone id="AS0" routing="Full">
<host id="h0" speed="{speed}"/><host id="master_host" speed="1Gf"/>
</zone></platform>
"""


def test_xml_with_bad_encoding_is_a_platform_error(tmp_path):
    path = tmp_path / "platform.xml"
    path.write_bytes(XML.format(enc="utf-8", speed="1Gf").encode().replace(b'"h0"', b'"h\xff\xfe0"'))
    with pytest.raises(PlatformError) as info:
        load_xml_platform(path)
    assert str(path) in one_line(info.value)


@pytest.mark.parametrize("speed", ["0f", "1e999f"])
def test_xml_host_without_usable_speed(tmp_path, speed):
    path = tmp_path / "platform.xml"
    path.write_text(XML.format(enc="utf-8", speed=speed))
    with pytest.raises(PlatformError, match="speed") as info:
        load_platform(path)
    one_line(info.value)


# --------------------------------------------------------------------------------------------
# Engine: jobs larger than the platform do not size the fast path's buffers


def test_fast_path_buffer_ignores_oversized_requests():
    from hdeeprm.simulation.engine import Engine
    from hdeeprm.simulation.policies import PolicyConfig, run_policy

    n = 4
    platform = Platform(host_names=tuple(f"h{i}" for i in range(n)), speeds=np.full((n, 1), 1e9),
                        watts_idle=np.full((n, 1), 100.0), watts_full=np.full((n, 1), 200.0),
                        nb_pstates=np.ones(n, np.int64), initial_pstate=np.zeros(n, np.int64))
    profiles = {"p": Profile(name="p", type="delay", delay=10.0)}
    jobs = [Job(id=str(i), subtime=float(i), res=2**40 if i % 2 else 2, profile="p")
            for i in range(50)]
    engine = Engine(platform, Workload(tuple(jobs), profiles))
    result = run_policy(engine, PolicyConfig(), fast=True)  # 25 x 2**40 x 8 B = 200 TiB before
    started = [a for a in result.alloc if a is not None]
    assert len(started) == 25 and all(len(a) == 2 for a in started)
