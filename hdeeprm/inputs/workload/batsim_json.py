"""Batsim JSON workloads: reading with Batsim's own load-time checks, and writing.

Supported profile types are those the engine simulates: ``delay`` (``delay`` s > 0) and
``parallel_homogeneous`` (``cpu`` flops >= 0 on every allocated host, ``com`` bytes >= 0).
Fields Batsim does not know (HDeepRM's ``req_time``, ``req_ops``, ``mem``, ``mem_bw``, or
anything else) are kept as read, in ``Profile.extra`` / ``Job.extra``, and written back.
Numbers keep their JSON type: an integer in the file is an ``int`` in memory and is written
as an integer again.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, Mapping

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
