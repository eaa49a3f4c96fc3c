"""The original HDeepRM's workload model, which ``hdeeprm-launch`` reproduces by default.

Two workload models (``WORKLOAD_MODELS``):

``"original"``, as the original's launcher made ``workload.json``, without its bugs:

* an SWF trace is converted with :data:`ORIGINAL_SWF_CONVERSION`: each job's actual work is
  f x its requested time, f drawn *per job* from the original's 25-point over-estimation
  distribution (``runtime_model="hdeeprm"``); then :func:`without_walltimes` removes every
  walltime, as the original wrote none, so no job is ever killed. (``kill_at_requested_time
  =False`` alone is not enough: its walltime is the run time *at the reference speed*, which
  a job on a slower core, or slowed by memory-bandwidth contention, overruns.) The original shared
  profiles by the name ``"{req_time}_{mem}_{mem_bw}"``, so every later job of that class
  reused the *first* job's f and its own draw was thrown away; that is a bug and is not
  reproduced: every job keeps the f drawn for it.
* a Batsim JSON workload (the original's ``-cw``) is rewritten by
  :func:`original_custom_workload`: every profile's work becomes its requested time at the
  reference speed (actual = requested, no over-estimation).

``"modern"``: the trace's real run times with a walltime of the requested time (jobs that
overrun their request are killed there, as Batsim does); a Batsim JSON workload is taken as
it is. This is what :func:`hdeeprm.inputs.workload.load_workload` and ``hdeeprm train`` do.
"""

from __future__ import annotations

import dataclasses
import json
import math
from typing import Any, Mapping

from hdeeprm.common.errors import ConfigError, WorkloadError
from hdeeprm.inputs.workload.convert import MIN_DELAY_S
from hdeeprm.inputs.workload.model import Profile, Workload

WORKLOAD_MODELS: tuple[str, ...] = ("original", "modern")

#: The SWF conversion settings of the original's model (the other ConversionOptions fields
#: keep their defaults): sampled over-estimation factors, nothing killed at its request.
ORIGINAL_SWF_CONVERSION: Mapping[str, Any] = {"runtime_model": "hdeeprm", "kill_at_requested_time": False}


def check_workload_model(value: Any, where: str = "workload_model") -> str:
    """``value`` if it names a workload model, else a :class:`ConfigError`."""
    if not isinstance(value, str) or value not in WORKLOAD_MODELS:
        raise ConfigError(f"{where} {value!r}: expected one of {', '.join(WORKLOAD_MODELS)}")
    return value


def without_walltimes(workload: Workload) -> Workload:
    """``workload`` with no job's walltime set (Batsim's -1: unlimited), as the original's SWF
    conversion wrote its jobs; everything else is kept."""
    jobs = tuple(job if job.walltime is None else dataclasses.replace(job, walltime=None) for job in workload.jobs)
    return dataclasses.replace(workload, jobs=jobs)


def original_custom_workload(workload: Workload, reference_speed_gflops: float) -> Workload:
    """The original's rewrite of a custom (``-cw``) workload: every profile runs for its
    requested time on a core of the reference speed R (GFLOP/s).

    parallel_homogeneous profiles: ``req_ops = cpu = R x req_time x 1e9`` flops per host, as
    the original did (not truncated); on a core of speed G a job then lasts
    ``req_time x R / G``. delay profiles, which the original did not have: ``delay =
    req_time`` s (at least :data:`MIN_DELAY_S`, as Batsim refuses 0), the same on every core,
    and ``req_ops`` as above. Jobs (ids, submit times, sizes, walltimes) and every other
    profile field are kept. A profile without ``req_time`` is a :class:`WorkloadError`
    naming the file and the profile.
    """
    speed = float(reference_speed_gflops)
    if not (math.isfinite(speed) and speed > 0):
        raise ConfigError(f"reference speed {reference_speed_gflops!r}: expected a positive number of GFLOP/s")
    profiles: dict[str, Profile] = {}
    for name, profile in workload.profiles.items():
        req_time = profile.extra.get("req_time")
        if isinstance(req_time, bool) or not isinstance(req_time, (int, float)) or not (
                math.isfinite(req_time) and req_time >= 0):
            where = f"profiles.{name}" if name.isidentifier() else f"profiles[{json.dumps(name)}]"
            found = "missing" if req_time is None else f"found {req_time!r}"
            raise WorkloadError(workload.source, where,
                                f"{found}; the original's workload model (hdeeprm-launch's default) runs every "
                                "job for its profile's requested time at the reference speed: expected req_time, "
                                "a number of seconds >= 0; to run the file's own work instead, use "
                                "--workload-model modern (workload_model='modern')", field="req_time")
        ops = speed * req_time * 1e9
        if not math.isfinite(ops):
            raise WorkloadError(workload.source, f"profiles.{name}",
                                f"req_time {req_time!r} at {speed:g} GFLOP/s overflows a double", field="req_time")
        extra = {**profile.extra, "req_ops": ops}
        if profile.type == "delay":
            profiles[name] = Profile(name=name, type="delay", delay=max(float(req_time), MIN_DELAY_S), extra=extra)
        else:
            profiles[name] = Profile(name=name, type=profile.type, cpu=ops, com=profile.com, extra=extra)
    return dataclasses.replace(workload, profiles=profiles)
