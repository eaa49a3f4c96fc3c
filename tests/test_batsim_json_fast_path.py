"""The fast path of :func:`parse_batsim_workload` gives exactly what the detailed reader gave.

``parse_batsim_workload`` parses without the number hooks and checks all jobs a field at a
time; on anything unusual it falls back to the detailed reader (``_parse_checked``, the reader
as it was before the fast path). These tests compare the two: on thousands
of generated documents, valid ones and ones with one defect, the same workload (every field,
with the Python type of every number, the order of jobs, profiles and extra fields) or the
same error (type, message, location, field).
"""

from __future__ import annotations

import gc
import json
import os
import random
from pathlib import Path
from typing import Any

import pytest

from hdeeprm.common.errors import WorkloadError
from hdeeprm.inputs.limits import MAX_RES
from hdeeprm.inputs.workload import batsim_json
from hdeeprm.inputs.workload.batsim_json import parse_batsim_workload
from hdeeprm.inputs.workload.model import Workload

DATA = Path(__file__).parent / "data" / "batsim-reference"
LARGE = Path(os.environ.get("HDEEPRM_LARGE_SCENARIO", "/nonexistent"))

# The reference: the detailed path, which is the reader as it was before the fast path
# (number hooks, then every profile and job checked on its own). parse_batsim_workload falls
# back to it on anything unusual, so the two must agree on every document.
_reference_parse = batsim_json._parse_checked


# ==========================================================================================
# Comparison
# ==========================================================================================


def typed(value: Any) -> Any:
    """``value`` with the type of every part spelled out, and the order of every mapping:
    1 and 1.0, 0.0 and -0.0, {"a", "b"} and {"b", "a"} all differ."""
    if isinstance(value, float):
        return ("float", repr(value))
    if isinstance(value, dict):
        return ("dict", [(typed(k), typed(v)) for k, v in value.items()])
    if isinstance(value, (list, tuple)):
        return (type(value).__name__, [typed(v) for v in value])
    return (type(value).__name__, value)


def described(workload: Workload) -> Any:
    jobs = [[(f, typed(getattr(job, f))) for f in ("id", "subtime", "res", "profile", "walltime", "extra")]
            for job in workload.jobs]
    profiles = [(typed(key), typed(prof.name), typed(prof.type), typed(prof.delay), typed(prof.cpu),
                 typed(prof.com), typed(prof.extra)) for key, prof in workload.profiles.items()]
    return (type(workload.jobs).__name__, jobs, type(workload.profiles).__name__, profiles,
            typed(workload.nb_res), workload.name, workload.source)


def result(parse, text: str) -> Any:
    try:
        workload = parse(text, source="gen.json", name="w3")
    except Exception as exc:  # noqa: BLE001 - any exception is part of the behaviour compared
        return ("error", type(exc), str(exc), getattr(exc, "source", None),
                getattr(exc, "where", None), getattr(exc, "field", None), getattr(exc, "detail", None))
    return ("ok", workload)


def assert_same(text: str) -> Any:
    """Both readers give the same on ``text``; returns what they gave."""
    new, ref = result(parse_batsim_workload, text), result(_reference_parse, text)
    if ref[0] == "error" or new[0] == "error":
        assert new == ref, text[:2000]
        return ref
    assert new[1].jobs == ref[1].jobs, text[:2000]
    assert dict(new[1].profiles) == dict(ref[1].profiles), text[:2000]
    assert described(new[1]) == described(ref[1]), text[:2000]
    return ref


# ==========================================================================================
# Generated documents
# ==========================================================================================


class Raw:
    """A literal written into the JSON text as is (NaN, 1e999, -0, 1E+2...)."""

    def __init__(self, text: str):
        self.text = text


def dumps(doc: Any, rng: random.Random) -> str:
    """``doc`` as JSON text, with each :class:`Raw` written as its literal; the spacing of
    Batsim files (one job a line) or compact, at random."""
    raws: list[str] = []

    def encode(value: Any) -> Any:
        if isinstance(value, Raw):
            raws.append(value.text)
            return f"@@raw{len(raws) - 1}@@"
        if isinstance(value, dict):
            return {k: encode(v) for k, v in value.items()}
        if isinstance(value, list):
            return [encode(v) for v in value]
        return value

    indent = rng.choice([None, None, 1])
    text = json.dumps(encode(doc), indent=indent, ensure_ascii=rng.random() < 0.5)
    for index, raw in enumerate(raws):
        text = text.replace(f'"@@raw{index}@@"', raw, 1)
    return text


NAMES = ["a", "p0", "43200_0_8_f030", "x.y", "with space", "é", "", "7", "\"q\"", "tab\t", "0x"]
BAD_LITERALS = ["NaN", "Infinity", "-Infinity", "1e999", "-1e999", "1E400", "2e308",
                "1" * 31, "-" + "1" * 31, "9" * 40, "1" * 400 + ".0", "1" * 4400]
EDGE_LITERALS = ["-0", "-0.0", "1e-400", "0.0", "1E+2", "1e29", "9" * 30, "-" + "9" * 30,
                 "1" * 30 + ".5", "5e-324"]


class Gen:
    """Random workload documents: :meth:`valid` ones, and :meth:`broken` ones (a valid one with
    one defect)."""

    def __init__(self, seed: int):
        self.rng = random.Random(seed)
        self.plain = True  # nothing the fast path declines in a valid document

    def nonneg(self) -> Any:
        r = self.rng
        choice = r.random()
        if choice < 0.45:
            return r.randrange(0, 10**6)
        if choice < 0.75:
            return r.choice([0.0, -0.0, 0.5, 1.25e3, r.uniform(0, 1e6), 1e-300])
        if choice < 0.87:
            return r.choice([10**15, 10**29, 10**30 - 1, 2**63, 1e29])
        if choice < 0.985:
            return Raw(r.choice(["-0", "-0.0", "1e-400", "0.0", "1E+2", "5e-324", "1e29"]))
        self.plain = False
        return r.choice([1e30, 1e200, 1.7e308])  # valid, beyond what the fast path takes

    def positive(self) -> Any:
        value = self.nonneg()
        if isinstance(value, Raw) or value == 0:
            return self.rng.choice([1, 2.5, 3600, 1e-9, Raw("1E+2")])
        return value

    def extra_value(self, depth: int = 0) -> Any:
        r = self.rng
        choice = r.random()
        if depth < 3 and choice < 0.15:
            return [self.extra_value(depth + 1) for _ in range(r.randrange(3))]
        if depth < 3 and choice < 0.3:
            return {r.choice(NAMES): self.extra_value(depth + 1) for _ in range(r.randrange(3))}
        return r.choice([None, True, False, "s", "", -5, 0, 2.5, -1e300, 10**29, -(10**29),
                         Raw("-0"), Raw("1e-400"), Raw("9" * 30)])

    def profile(self) -> dict[str, Any]:
        r = self.rng
        desc: dict[str, Any] = {}
        if r.random() < 0.5:
            desc["type"] = "delay"
            desc["delay"] = self.positive()
        else:
            desc["type"] = "parallel_homogeneous"
            desc["cpu"] = self.nonneg()
            desc["com"] = self.nonneg()
        for key in ("req_time", "req_ops", "mem", "mem_bw"):
            if r.random() < 0.4:
                desc[key] = self.nonneg()
        if r.random() < 0.2:
            other = "cpu" if desc["type"] == "delay" else "delay"  # not a field of this type
            desc[r.choice(["note", "extra", "ü", other])] = self.extra_value()
        return self.shuffled(desc)

    def job(self, job_id: Any, names: list[str]) -> dict[str, Any]:
        r = self.rng
        desc: dict[str, Any] = {"id": job_id, "subtime": self.nonneg()}
        choice = r.random()
        if choice < 0.6:
            desc["walltime"] = self.positive()
        elif choice < 0.75:
            desc["walltime"] = r.choice([-1, -1.0])
        desc["res"] = r.choice([1, 2, 8, 240, MAX_RES, r.randrange(1, 1000)])
        desc["profile"] = r.choice(names)
        if r.random() < 0.15:
            for _ in range(r.randrange(1, 3)):
                desc[r.choice(["user", "req_time", "ü", "x" * 3, "id2"])] = self.extra_value()
        return self.shuffled(desc)

    def shuffled(self, desc: dict[str, Any]) -> dict[str, Any]:
        if self.rng.random() < 0.2:
            items = list(desc.items())
            self.rng.shuffle(items)
            return dict(items)
        return desc

    def job_ids(self, count: int) -> list[Any]:
        r = self.rng
        ids: list[Any] = []
        kind = r.random()
        for index in range(count):
            if kind < 0.5 or (kind < 0.8 and r.random() < 0.5):
                candidate: Any = r.choice([index, index + 10**29, -index - 1, index * 7])
            else:
                candidate = r.choice([f"j{index}", f"{index:03d}", f"é{index}", str(index) + " "])
            if str(candidate) not in {str(i) for i in ids}:
                ids.append(candidate)
        return ids

    def valid(self) -> dict[str, Any]:
        r = self.rng
        self.plain = True
        names = r.sample(NAMES, r.randrange(1, 6))
        doc: dict[str, Any] = {}
        if r.random() < 0.7:
            doc["nb_res"] = r.choice([1, 240, MAX_RES, None])
        if r.random() < 0.1:
            doc["meta"] = self.extra_value()
        doc["jobs"] = [self.job(job_id, names) for job_id in self.job_ids(r.randrange(0, 9))]
        doc["profiles"] = {name: self.profile() for name in names}
        if r.random() < 0.2:
            doc = self.shuffled(doc)
        return doc

    # --- defects ------------------------------------------------------------------------

    def bad_value(self) -> Any:
        r = self.rng
        return r.choice([None, True, False, "3", "", [], {}, [1], {"a": 1}, -1, -0.5, 0, 1.5,
                         Raw(r.choice(BAD_LITERALS)), 10**31, -(10**40), 2**31 + 1])

    def broken(self) -> Any:
        r = self.rng
        doc = self.valid()
        jobs, profiles = doc["jobs"], doc["profiles"]
        where = r.random()
        if where < 0.45 and jobs:
            job = r.choice(jobs)
            action = r.random()
            if action < 0.5:
                job[r.choice(["id", "subtime", "walltime", "res", "profile"])] = self.bad_value()
            elif action < 0.6:
                job.pop(r.choice(["id", "subtime", "walltime", "res", "profile"]), None)
            elif action < 0.7:
                job["id"] = r.choice(["w0!3", "!", "", 1.0, True, str(jobs[0]["id"]), jobs[0]["id"]])
            elif action < 0.8:
                job["profile"] = r.choice(["nope", "A", 3])
            elif action < 0.9:
                job[r.choice(["extra", "user"])] = r.choice([Raw(r.choice(BAD_LITERALS)), [Raw("1e999")],
                                                            {"x": Raw("9" * 40)}, -1, "ok"])
            else:
                jobs[jobs.index(job)] = r.choice([1, "job", None, [job], Raw("NaN")])
        elif where < 0.85 and profiles:
            name = r.choice(list(profiles))
            desc = profiles[name]
            action = r.random()
            if action < 0.5:
                desc[r.choice(["type", "delay", "cpu", "com", "mem", "mem_bw", "req_time",
                               "req_ops"])] = self.bad_value()
            elif action < 0.6:
                desc.pop(r.choice(["type", "delay", "cpu", "com"]), None)
            elif action < 0.7:
                desc["type"] = r.choice(["parallel", "composed", "Delay", None, 1, ["delay"]])
            elif action < 0.8:
                desc[r.choice(["note", "x"])] = r.choice([Raw(r.choice(BAD_LITERALS)),
                                                         {"y": [Raw("-Infinity")]}, "ok", -3])
            else:
                profiles[name] = r.choice([1, "delay", None, [desc], Raw("1e999")])
        else:
            action = r.random()
            if action < 0.3:
                doc["nb_res"] = r.choice([0, -1, 2**31 + 1, True, 1.5, "4", [], Raw("1e999"),
                                          Raw("9" * 31)])
            elif action < 0.45:
                doc.pop(r.choice(["jobs", "profiles"]))
            elif action < 0.6:
                doc[r.choice(["jobs", "profiles"])] = r.choice([{}, [], "x", 3, None])
            elif action < 0.75:
                doc["meta"] = r.choice([Raw(r.choice(BAD_LITERALS)), {"a": [1, Raw("NaN")]}])
            else:
                return r.choice([[doc], 3, "x", None, Raw("NaN")])
        return doc

    def broken_text(self, text: str) -> str:
        """Text that is not JSON (cut, a comma added, a byte order mark, junk after), with a
        bad number before or after the break sometimes."""
        r = self.rng
        action = r.random()
        if action < 0.3:
            text = text[:r.randrange(len(text))]
        elif action < 0.5:
            text = text.replace("}", "},", 1)
        elif action < 0.6:
            text = "\ufeff" + text
        elif action < 0.7:
            text += " x"
        else:
            text = "[" * r.choice([10, 5000, 200000]) + "]" * r.choice([0, 10])
        if r.random() < 0.3:
            text = text.replace('"subtime": ', '"subtime": 1e999, "s": ', 1)
        return text


@pytest.mark.parametrize("seed", range(6))
def test_valid_documents_read_the_same(seed):
    gen = Gen(seed)
    fast = 0
    for _ in range(250):
        text = dumps(gen.valid(), gen.rng)
        outcome = assert_same(text)
        assert outcome[0] == "ok", outcome
        if gen.plain:
            # The fast path itself took it (did not give up for the detailed reader).
            doc = json.loads(text)
            assert batsim_json._read_plain(doc, "gen.json", "w3") is not None, text
            fast += 1
    assert fast > 150


@pytest.mark.parametrize("seed", range(8))
def test_broken_documents_fail_the_same(seed):
    gen = Gen(1000 + seed)
    errors = 0
    for _ in range(300):
        text = dumps(gen.broken(), gen.rng)
        if gen.rng.random() < 0.05:
            text = gen.broken_text(text)
        errors += assert_same(text)[0] == "error"
    assert errors > 200  # (a few "defects" still give a valid workload: -1 as a walltime...)


def test_defects_one_by_one():
    """Each defect of the brief, on a small valid workload."""
    base = ('{"nb_res": 4, "jobs": [%s], "profiles": {"p": {"type": "delay", "delay": 10}, '
            '"q": {"type": "parallel_homogeneous", "cpu": 1e9, "com": 0, "mem": %s}}}')
    good = '{"id": 0, "subtime": 0, "walltime": 100, "res": 1, "profile": "p"}'
    jobs = [
        good, good.replace('"id": 0', '"id": "0"'), good.replace("0,", "true,", 1),
        good.replace('"res": 1', '"res": true'), good.replace('"res": 1', '"res": 1.0'),
        good.replace('"res": 1', '"res": 0'), good.replace('"subtime": 0', '"subtime": -1'),
        good.replace('"subtime": 0', '"subtime": NaN'), good.replace('"subtime": 0', '"subtime": Infinity'),
        good.replace('"subtime": 0', '"subtime": 1e999'), good.replace('"subtime": 0', '"subtime": ' + "1" * 40),
        good.replace('"id": 0', '"id": ' + "1" * 40), good.replace('"id": 0', '"id": "w0!1"'),
        good.replace('"id": 0', '"id": ""'), good.replace('"profile": "p"', '"profile": "zz"'),
        good.replace('"walltime": 100', '"walltime": -1'), good.replace('"walltime": 100, ', ""),
        good.replace('"walltime": 100', '"walltime": 0'), good.replace('"walltime": 100', '"walltime": null'),
        good.replace("}", ', "user": 3, "more": [1e999]}'), good.replace("}", ', "user": {"a": 1}}'),
        good + ", " + good, good + ", " + good.replace('"id": 0', '"id": "0"'),
        good.replace('"id": 0, ', ""), good.replace('"res": 1, ', ""),
    ]
    for job in jobs:
        for mem in ("0", "-1", "true", '"x"', "1e999", "2.5"):
            assert_same(base % (job, mem))
    for desc in ('{"type": "composed"}', '{"delay": 3}', '{"type": "delay"}', '{"type": "delay", "delay": 0}',
                 '{"type": "parallel_homogeneous", "cpu": 1}', '{"type": 3}', "[]"):
        assert_same('{"jobs": [], "profiles": {"bad name": %s}}' % desc)


def test_large_numbers_at_the_fast_path_limit():
    """30 digits is the most an integer may have; floats only need to be finite."""
    template = ('{"jobs": [{"id": %s, "subtime": %s, "res": 1, "profile": "p"}], '
                '"profiles": {"p": {"type": "delay", "delay": %s}}}')
    for value in ("9" * 30, "-" + "9" * 30, "1" + "0" * 30, "1e29", "1e30", "1.7e308", "1.8e308",
                  "1" * 30 + ".0", "1" * 310 + ".0", "-0", "-0.0", "1e-400"):
        for slot in range(3):
            values = ["1", "1", "1"]
            values[slot] = value
            assert_same(template % tuple(values))


@pytest.mark.parametrize("path", sorted(DATA.glob("*/workload.json")), ids=lambda p: p.parent.name)
def test_reference_workloads_read_the_same(path):
    text = path.read_text(encoding="utf-8")
    assert assert_same(text)[0] == "ok"
    assert batsim_json._read_plain(json.loads(text), "gen.json", "w3") is not None


@pytest.mark.skipif(not (LARGE / "workload.json").exists(),
                    reason="set HDEEPRM_LARGE_SCENARIO to a scenario folder (S2) to run")
def test_large_workload_reads_the_same():
    text = (LARGE / "workload.json").read_text(encoding="utf-8")
    assert assert_same(text)[0] == "ok"


def test_garbage_collector_state_is_restored():
    text = '{"jobs": [], "profiles": {}}'
    assert gc.isenabled()
    parse_batsim_workload(text)
    assert gc.isenabled()
    with pytest.raises(WorkloadError):
        parse_batsim_workload("[")
    assert gc.isenabled()
    gc.disable()
    try:
        parse_batsim_workload(text)
        assert not gc.isenabled()
    finally:
        gc.enable()
