"""Batsim JSON workloads: reading with Batsim's own load-time checks, and writing.

Supported profile types are those the engine simulates: ``delay`` (``delay`` s > 0) and
``parallel_homogeneous`` (``cpu`` flops >= 0 on every allocated host, ``com`` bytes >= 0).
Fields Batsim does not know (HDeepRM's ``req_time``, ``req_ops``, ``mem``, ``mem_bw``, or
anything else) are kept as read, in ``Profile.extra`` / ``Job.extra``, and written back.
Numbers keep their JSON type: an integer in the file is an ``int`` in memory and is written
as an integer again.
"""

from __future__ import annotations

import gc
import json
import math
from contextlib import contextmanager
from operator import itemgetter
from pathlib import Path
from typing import Any, Iterator, Mapping, Sequence

from hdeeprm.common.errors import WorkloadError
from hdeeprm.inputs.limits import MAX_JSON_BYTES, MAX_RES, clip, decode_utf8, read_bounded
from hdeeprm.inputs.workload.model import PROFILE_KINDS, Job, Profile, Workload

SUPPORTED_PROFILE_TYPES: tuple[str, ...] = tuple(PROFILE_KINDS)
_JOB_FIELDS = ("id", "subtime", "walltime", "res", "profile")
_UNLIMITED = -1


def read_batsim_workload(path: str | Path) -> Workload:
    """Read and validate a Batsim JSON workload. Job ids (integers or strings in the file)
    become strings; a walltime of -1 or no walltime becomes None (unlimited). Files larger
    than :data:`hdeeprm.inputs.limits.MAX_JSON_BYTES` (512 MiB) are refused."""
    path = Path(path)
    source = str(path)

    def error(message: str) -> WorkloadError:
        return WorkloadError(source, None, message)

    raw = read_bounded(path, MAX_JSON_BYTES, "a Batsim JSON workload", error)
    return parse_batsim_workload(decode_utf8(raw, error), source=source)


def parse_batsim_workload(text: str, source: str = "<string>", name: str = "w0") -> Workload:
    """Validate the text of a Batsim JSON workload (see :func:`read_batsim_workload`)."""
    # Fast path, for large workloads (100,000 jobs: 0.73 -> 0.34 s): a parse without the
    # number hooks (Python calls on every number), then checks made a field at a time over
    # all jobs (set, min, max: loops in C). It accepts only the common valid form, and on
    # anything else gives up for the detailed path, which parses again: the hooks and the
    # detailed readers (_read_profile, _read_job...) remain the definition of every check
    # and every message.
    try:
        with _gc_paused():
            doc = json.loads(text, parse_constant=_refuse_constant)
            workload = _read_plain(doc, source, name) if type(doc) is dict else None
    except (ValueError, RecursionError):  # bad JSON, NaN, too many digits, deep nesting
        workload = None
    if workload is not None:
        return workload
    return _parse_checked(text, source, name)


def _parse_checked(text: str, source: str, name: str) -> Workload:
    """:func:`parse_batsim_workload` with every check made field by field."""
    try:
        doc = json.loads(text, parse_constant=_refuse_constant, parse_int=_parse_int,
                         parse_float=_parse_float)
    except json.JSONDecodeError as exc:
        raise WorkloadError(source, f"line {exc.lineno}", f"invalid JSON: {exc.msg} (column {exc.colno})") from None
    except RecursionError:
        raise WorkloadError(source, None, "invalid JSON: nested too deeply") from None
    except ValueError as exc:  # NaN / Infinity / huge numbers, refused by the parse hooks
        raise WorkloadError(source, None, str(exc)) from None
    if not isinstance(doc, dict):
        raise WorkloadError(source, "(top level)", f"expected a JSON object, found {_kind(doc)}")

    nb_res = doc.get("nb_res")
    if nb_res is not None and not (_is_int(nb_res) and 1 <= nb_res <= MAX_RES):
        raise WorkloadError(source, "nb_res",
                            f"expected {_count_bounds(nb_res)}, found {clip(nb_res)}")

    raw_profiles = _member(doc, "profiles", dict, source, "a JSON object of named profiles")
    raw_jobs = _member(doc, "jobs", list, source, "a JSON array of jobs")
    profiles = {
        name: _read_profile(name, desc, source) for name, desc in raw_profiles.items()
    }
    jobs = []
    seen: dict[str, int] = {}
    for index, desc in enumerate(raw_jobs):
        job = _read_job(desc, f"jobs[{index}]", profiles, source)
        if job.id in seen:
            raise WorkloadError(
                source, f"jobs[{index}].id",
                f"duplicate job id {job.id!r} (already used by jobs[{seen[job.id]}])",
            )
        seen[job.id] = index
        jobs.append(job)
    return Workload(jobs=tuple(jobs), profiles=profiles, nb_res=nb_res, name=name, source=source)


def write_batsim_workload(workload: Workload, path: str | Path) -> None:
    """Write a workload as Batsim JSON, one job and one profile per line.

    Jobs are written in the workload's order, profiles in mapping order; the output depends
    only on the workload, so equal workloads give byte-identical files. Job ids that are
    decimal integers without leading zeros are written as JSON integers (Batsim's usual
    form), other ids as strings.
    """
    # A lone surrogate (read from a "\ud800" escape) cannot be UTF-8: written back as that
    # escape, which is what backslashreplace writes inside the JSON string holding it.
    Path(path).write_bytes(dump_batsim_workload(workload).encode("utf-8", "backslashreplace"))


def dump_batsim_workload(workload: Workload) -> str:
    """The text :func:`write_batsim_workload` writes."""
    lines = ["{"]
    if workload.nb_res is not None:
        lines.append(f'"nb_res": {_dump(workload.nb_res)},')
    lines.append('"jobs": [')
    lines.append(",\n".join(_dump(_job_dict(job)) for job in workload.jobs))
    lines.append("],")
    lines.append('"profiles": {')
    lines.append(",\n".join(
        f"{_dump(name)}: {_dump(_profile_dict(prof))}" for name, prof in workload.profiles.items()
    ))
    lines.append("}")
    lines.append("}")
    # Empty job or profile lists would leave blank lines; drop them so the file stays tidy.
    return "\n".join(line for line in lines if line) + "\n"


# --------------------------------------------------------------------------------------------
# Reading


def _read_profile(name: str, desc: Any, source: str) -> Profile:
    where = f"profiles.{name}" if _plain_key(name) else f"profiles[{json.dumps(name)}]"
    if not isinstance(desc, dict):
        raise WorkloadError(source, where, f"expected a JSON object, found {_kind(desc)}")
    kind = desc.get("type")
    if kind is None:
        raise WorkloadError(source, where, "missing profile type", field="type")
    if kind not in SUPPORTED_PROFILE_TYPES:
        raise WorkloadError(
            source, where,
            f"unsupported profile type {kind!r}; supported types are "
            f"{', '.join(SUPPORTED_PROFILE_TYPES)}",
            field="type",
        )
    if kind == "delay":
        delay = _number(desc, "delay", where, source, minimum=0.0, strict=True)
        extra = {k: v for k, v in desc.items() if k not in ("type", "delay")}
        _check_extras(extra, where, source)
        return Profile(name=name, type=kind, delay=delay, extra=extra)
    cpu = _number(desc, "cpu", where, source, minimum=0.0, strict=False)
    com = _number(desc, "com", where, source, minimum=0.0, strict=False)
    extra = {k: v for k, v in desc.items() if k not in ("type", "cpu", "com")}
    _check_extras(extra, where, source)
    return Profile(name=name, type=kind, cpu=cpu, com=com, extra=extra)


#: HDeepRM's own profile fields: optional, but numbers >= 0 when given.
NUMERIC_PROFILE_EXTRAS = ("mem", "mem_bw", "req_time", "req_ops")


def _check_extras(extra: Mapping[str, Any], where: str, source: str) -> None:
    for key in NUMERIC_PROFILE_EXTRAS:
        if key in extra:
            _number(extra, key, where, source, minimum=0.0, strict=False)


def _read_job(desc: Any, where: str, profiles: Mapping[str, Profile], source: str) -> Job:
    if not isinstance(desc, dict):
        raise WorkloadError(source, where, f"expected a JSON object, found {_kind(desc)}")
    job_id = _job_id(desc, where, source)
    subtime = _number(desc, "subtime", where, source, minimum=0.0, strict=False)
    res = desc.get("res")
    if res is None:
        raise WorkloadError(source, where, "missing number of resources", field="res")
    if not (_is_int(res) and 1 <= res <= MAX_RES):
        raise WorkloadError(source, where, f"expected {_count_bounds(res)}, found {clip(res)}",
                            field="res")
    profile = desc.get("profile")
    if not isinstance(profile, str):
        found = "nothing" if profile is None else clip(profile)
        raise WorkloadError(source, where, f"expected a profile name, found {found}", field="profile")
    if profile not in profiles:
        raise WorkloadError(
            source, where, f"profile {profile!r} is not defined in 'profiles'", field="profile"
        )
    walltime = desc.get("walltime", _UNLIMITED)
    if not _is_number(walltime) or not (walltime == _UNLIMITED or walltime > 0):
        raise WorkloadError(
            source, where,
            f"expected a positive number of seconds or -1 (unlimited), found {clip(walltime)}",
            field="walltime",
        )
    extra = {k: v for k, v in desc.items() if k not in _JOB_FIELDS}
    return Job(
        id=job_id, subtime=subtime, res=res, profile=profile,
        walltime=None if walltime == _UNLIMITED else walltime, extra=extra,
    )


def _job_id(desc: Mapping[str, Any], where: str, source: str) -> str:
    raw = desc.get("id")
    if _is_int(raw):
        return str(raw)
    if isinstance(raw, str) and raw and "!" not in raw:
        return raw
    if isinstance(raw, str) and "!" in raw:
        # Batsim reads "w0!3" as workload w0, job 3; ids here are local to their workload.
        message = f"expected a job id without a workload prefix ('!'), found {clip(raw)}"
    else:
        message = f"expected an integer or a non-empty string, found {clip(raw)}"
    raise WorkloadError(source, where, message, field="id")


def _number(desc: Mapping[str, Any], key: str, where: str, source: str, *,
            minimum: float, strict: bool) -> int | float:
    """A required finite number > minimum (strict) or >= minimum."""
    if key not in desc:
        raise WorkloadError(source, where, "missing field", field=key)
    value = desc[key]
    ok = _is_number(value) and (value > minimum if strict else value >= minimum)
    if not ok:
        bound = f"> {minimum:g}" if strict else f">= {minimum:g}"
        raise WorkloadError(source, where, f"expected a number {bound}, found {clip(value)}",
                            field=key)
    return value


def _member(doc: Mapping[str, Any], key: str, kind: type, source: str, expected: str) -> Any:
    if key not in doc:
        raise WorkloadError(source, key, f"missing; expected {expected}")
    value = doc[key]
    if not isinstance(value, kind):
        raise WorkloadError(source, key, f"expected {expected}, found {_kind(value)}")
    return value


def _refuse_constant(name: str) -> float:
    raise ValueError(f"{name} is not a valid JSON number")


#: Integers in a workload are counts, times or ids: beyond this many digits they are refused
#: (Python itself refuses over 4300 digits, with a message that is no use to a user).
_MAX_INT_DIGITS = 30


def _parse_int(text: str) -> int:
    if len(text.lstrip("-")) > _MAX_INT_DIGITS:
        raise ValueError(f"integer too large ({len(text)} digits): {clip(text)}")
    return int(text)


def _parse_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"number out of range (not finite as a double): {clip(text)}")
    return value


def _count_bounds(value: Any) -> str:
    if _is_int(value) and value > MAX_RES:
        return "an integer <= 2**31 (the most resources HDeepRM accepts)"
    return "an integer >= 1"


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    if isinstance(value, int):
        return abs(value) < 1e300  # exact comparison: no overflow for any int
    return math.isfinite(value)


def _kind(value: Any) -> str:
    names = {dict: "an object", list: "an array", str: "a string", bool: "a boolean",
             type(None): "null", int: "an integer", float: "a number"}
    return names.get(type(value), type(value).__name__)


def _plain_key(name: str) -> bool:
    return name.isidentifier()


# --------------------------------------------------------------------------------------------
# Reading, fast path: the common valid form, else None (see parse_batsim_workload)

#: Below this, an int has at most _MAX_INT_DIGITS digits and a float is finite: numbers the
#: parse hooks accept.
_PLAIN_LIMIT = 10**_MAX_INT_DIGITS


def _read_plain(doc: dict[str, Any], source: str, name: str) -> Workload | None:
    """The workload of a document parsed without the number hooks, when every profile and job
    is of the common valid form and no number anywhere is one the hooks refuse; else None."""
    nb_res = doc.get("nb_res")
    if nb_res is not None and not (type(nb_res) is int and 1 <= nb_res <= MAX_RES):
        return None
    raw_profiles, raw_jobs = doc.get("profiles"), doc.get("jobs")
    if type(raw_profiles) is not dict or type(raw_jobs) is not list:
        return None
    others = [value for key, value in doc.items() if key not in ("nb_res", "profiles", "jobs")]
    if not _plain(others):
        return None
    profiles = _read_plain_profiles(raw_profiles)
    jobs = None if profiles is None else _read_plain_jobs(raw_jobs, profiles)
    if jobs is None:
        return None
    return Workload(jobs=tuple(jobs), profiles=profiles, nb_res=nb_res, name=name, source=source)


def _read_plain_profiles(raw_profiles: dict[str, Any]) -> dict[str, Profile] | None:
    profiles = {}
    for name, desc in raw_profiles.items():
        if type(desc) is not dict:
            return None
        kind = desc.get("type")
        if kind == "parallel_homogeneous":
            cpu, com = desc.get("cpu"), desc.get("com")
            if not (type(cpu) in (int, float) and 0 <= cpu < _PLAIN_LIMIT
                    and type(com) in (int, float) and 0 <= com < _PLAIN_LIMIT):
                return None
            extra = {k: v for k, v in desc.items() if k not in ("type", "cpu", "com")}
            profiles[name] = Profile(name=name, type=kind, cpu=cpu, com=com, extra=extra)
        elif kind == "delay":
            delay = desc.get("delay")
            if not (type(delay) in (int, float) and 0 < delay < _PLAIN_LIMIT):
                return None
            extra = {k: v for k, v in desc.items() if k not in ("type", "delay")}
            profiles[name] = Profile(name=name, type=kind, delay=delay, extra=extra)
        else:
            return None
    extras = [profile.extra for profile in profiles.values()]
    nb_numeric = 0
    for key in NUMERIC_PROFILE_EXTRAS:
        values = [extra[key] for extra in extras if key in extra]
        if not _plain_numbers(values, strict=False):
            return None
        nb_numeric += len(values)
    if sum(map(len, extras)) > nb_numeric and not _plain(extras):  # other extra fields
        return None
    return profiles


def _read_plain_jobs(raw_jobs: list[Any], profiles: Mapping[str, Profile]) -> list[Job] | None:
    if not raw_jobs:
        return []
    if set(map(type, raw_jobs)) != {dict}:
        return None
    try:
        ids, subtimes, res, names = (list(map(itemgetter(key), raw_jobs))
                                     for key in ("id", "subtime", "res", "profile"))
        # Profile names are strings: a name of another type is none of them.
        if not profiles.keys() >= set(names):
            return None
    except (KeyError, TypeError):  # a field missing; a profile "name" that is an array
        return None
    walltimes = [desc.get("walltime", _UNLIMITED) for desc in raw_jobs]
    limited = [walltime for walltime in walltimes if walltime != _UNLIMITED]
    if not (_plain_numbers(subtimes, strict=False) and _plain_numbers(limited, strict=True)
            and set(map(type, res)) == {int} and 1 <= min(res) and max(res) <= MAX_RES):
        return None
    id_types = set(map(type, ids))
    if not id_types <= {int, str}:
        return None
    if int in id_types:
        int_ids = ids if len(id_types) == 1 else [job_id for job_id in ids if type(job_id) is int]
        if not (-_PLAIN_LIMIT < min(int_ids) and max(int_ids) < _PLAIN_LIMIT):
            return None
    if str in id_types:
        str_ids = ids if len(id_types) == 1 else [job_id for job_id in ids if type(job_id) is str]
        if not all(str_ids) or "!" in "".join(str_ids):
            return None
    job_ids = list(map(str, ids))
    if len(set(job_ids)) < len(job_ids):  # a duplicate id
        return None
    # Extra fields are rare: looked for only when the jobs have more keys than the known ones.
    nb_known = 4 * len(raw_jobs) + sum("walltime" in desc for desc in raw_jobs)
    if sum(map(len, raw_jobs)) == nb_known:
        extras = [{} for _ in raw_jobs]
    else:
        extras = [{k: v for k, v in desc.items() if k not in _JOB_FIELDS} for desc in raw_jobs]
        if not _plain(extras):
            return None
    walltimes = [None if walltime == _UNLIMITED else walltime for walltime in walltimes]
    return list(map(Job, job_ids, subtimes, res, names, walltimes, extras))  # fields in order


def _plain_numbers(values: Sequence[Any], *, strict: bool) -> bool:
    """Whether every value is an int or a float (not a boolean), > 0 (strict) or >= 0, and
    below :data:`_PLAIN_LIMIT`."""
    if not values:
        return True
    if not set(map(type, values)) <= {int, float}:
        return False
    low = min(values)
    return (low > 0 if strict else low >= 0) and max(values) < _PLAIN_LIMIT


def _plain(value: Any) -> bool:
    """Whether ``value`` holds no number that the parse hooks refuse."""
    kind = type(value)
    if kind is int:
        return -_PLAIN_LIMIT < value < _PLAIN_LIMIT
    if kind is float:
        return math.isfinite(value)
    if kind is list:
        return all(map(_plain, value))
    if kind is dict:
        return all(map(_plain, value.values()))
    return True  # a string, a boolean or null


@contextmanager
def _gc_paused() -> Iterator[None]:
    """The cyclic garbage collector off (if it was on) for a while: a large workload is some
    hundred thousand new containers, none of them garbage, that it would scan again and again."""
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


# --------------------------------------------------------------------------------------------
# Writing


def _job_dict(job: Job) -> dict[str, Any]:
    out: dict[str, Any] = {"id": _id_value(job.id), "subtime": job.subtime}
    if job.walltime is not None:
        out["walltime"] = job.walltime
    out["res"] = job.res
    out["profile"] = job.profile
    for key, value in job.extra.items():
        out.setdefault(key, value)
    return out


def _profile_dict(profile: Profile) -> dict[str, Any]:
    out: dict[str, Any] = {"type": profile.type}
    if profile.type == "delay":
        out["delay"] = profile.delay
    else:
        out["cpu"] = profile.cpu
        out["com"] = profile.com
    for key, value in profile.extra.items():
        out.setdefault(key, value)
    return out


def _id_value(job_id: str) -> int | str:
    # Only canonical decimal forms become integers, so that "007" and "7" stay distinct ids.
    if job_id.isdigit() and job_id.isascii() and (job_id == "0" or not job_id.startswith("0")):
        return int(job_id)
    return job_id


def _dump(value: Any) -> str:
    # allow_nan=False: a NaN would make a file that Batsim (and strict JSON) cannot read.
    return json.dumps(value, ensure_ascii=False, allow_nan=False)
