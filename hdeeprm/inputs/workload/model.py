"""Workloads as the engine sees them: jobs, profiles, and their compiled arrays."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

import numpy as np

KIND_DELAY = 0
KIND_PARALLEL_HOMOGENEOUS = 1
PROFILE_KINDS = {"delay": KIND_DELAY, "parallel_homogeneous": KIND_PARALLEL_HOMOGENEOUS}


@dataclass(frozen=True)
class Profile:
    """A Batsim profile. ``delay`` is in seconds (delay profiles), ``cpu`` in flops executed by
    each allocated host (parallel_homogeneous). ``extra`` keeps every other field as read
    (HDeepRM's ``req_time`` s, ``req_ops`` flops, ``mem`` MB per core, ``mem_bw`` GB/s per core).
    """

    name: str
    type: str
    delay: float | None = None
    cpu: float | None = None
    com: float = 0.0
    extra: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Job:
    """A Batsim job. ``id`` is the workload-local id as text ("0", "17"); ``walltime`` None
    means unlimited (Batsim's -1 or an absent field)."""

    id: str
    subtime: float
    res: int
    profile: str
    walltime: float | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, eq=False)
class Workload:
    """An ordered collection of jobs with their profiles."""

    jobs: tuple[Job, ...]
    profiles: Mapping[str, Profile]
    nb_res: int | None = None
    name: str = "w0"
    source: str = "<memory>"

    def compile(self) -> "WorkloadArrays":
        return WorkloadArrays.from_workload(self)


@dataclass(frozen=True, eq=False)
class WorkloadArrays:
    """Per-job arrays in Batsim submission order: by submit time, then job id as a string
    (Batsim sorts a same-time batch that way, so "10" comes before "2")."""

    job_ids: tuple[str, ...]
    profile_names: tuple[str, ...]
    subtime: np.ndarray  # s
    res: np.ndarray  # machines requested
    walltime: np.ndarray  # s, inf when unlimited
    kind: np.ndarray  # KIND_DELAY or KIND_PARALLEL_HOMOGENEOUS
    work: np.ndarray  # delay profiles: seconds; parallel_homogeneous: flops per host
    mem_mb: np.ndarray  # MB per core (0 when absent)
    mem_bw_gbs: np.ndarray  # GB/s per core (0 when absent)
    req_time: np.ndarray  # s: profile req_time, else walltime, else NaN
    # Work the user asked for, in the unit of ``work``: the profile's req_ops (parallel) or
    # req_time (delay) when given, else the walltime (delay), else the actual work.
    req_work: np.ndarray

    def __len__(self) -> int:
        return len(self.job_ids)

    @classmethod
    def from_workload(cls, workload: Workload) -> "WorkloadArrays":
        order = sorted(workload.jobs, key=lambda j: (j.subtime, j.id))
        # Each profile's values once (a trace has far fewer profiles than jobs), then gathered
        # per job with numpy: per-job numpy scalar writes took most of a 100,000-job compile.
        names = list(workload.profiles)
        kind_of, work_of, mem_of, bw_of, req_time_of, req_ops_of = [], [], [], [], [], []
        for name in names:
            prof = workload.profiles[name]
            kind_of.append(PROFILE_KINDS[prof.type])
            work_of.append(prof.delay if prof.type == "delay" else prof.cpu)
            mem_of.append(float(prof.extra.get("mem", 0) or 0))
            bw_of.append(float(prof.extra.get("mem_bw", 0) or 0))
            req_time_of.append(float(prof.extra["req_time"]) if "req_time" in prof.extra else np.nan)
            req_ops = prof.extra.get("req_ops")
            req_ops_of.append(float(req_ops) if req_ops else np.nan)  # absent or 0: the work itself
        row = {name: k for k, name in enumerate(names)}
        index = np.array([row[j.profile] for j in order], dtype=np.int64)
        kind = np.array(kind_of, dtype=np.int8)[index]
        work = np.array(work_of, dtype=np.float64)[index]
        walltime = np.array([np.inf if j.walltime is None else j.walltime for j in order], dtype=np.float64)
        # The profile's req_time, else the job's walltime, else unknown (NaN).
        profile_req_time = np.array(req_time_of, dtype=np.float64)[index]
        req_time = np.where(~np.isnan(profile_req_time), profile_req_time,
                            np.where(np.isfinite(walltime), walltime, np.nan))
        req_ops = np.array(req_ops_of, dtype=np.float64)[index]
        req_work = np.where(kind == PROFILE_KINDS["delay"],
                            np.where(np.isfinite(req_time), req_time, work),
                            np.where(np.isnan(req_ops), work, req_ops))
        arrays = cls(
            job_ids=tuple(j.id for j in order),
            profile_names=tuple(j.profile for j in order),
            subtime=np.array([j.subtime for j in order], dtype=np.float64),
            res=np.array([j.res for j in order], dtype=np.int64),
            walltime=walltime,
            kind=kind,
            work=work,
            mem_mb=np.array(mem_of, dtype=np.float64)[index],
            mem_bw_gbs=np.array(bw_of, dtype=np.float64)[index],
            req_time=req_time,
            req_work=req_work,
        )
        arrays._freeze()
        return arrays

    def _freeze(self) -> None:
        for value in self.__dict__.values():
            if isinstance(value, np.ndarray):
                value.setflags(write=False)

    def window(self, start: int, count: int) -> "WorkloadArrays":
        """Jobs ``start`` to ``start + count - 1`` (submission order) as a workload of their
        own, submit times shifted so that the first one is at 0: one training episode cut from
        a long trace."""
        if start < 0 or count <= 0 or start + count > len(self):
            raise ValueError(f"window [{start}, {start + count}) outside 0..{len(self)}")
        cut = slice(start, start + count)
        fields = {name: value[cut] for name, value in self.__dict__.items()}
        fields["subtime"] = fields["subtime"] - self.subtime[start]
        out = WorkloadArrays(**fields)
        out._freeze()
        return out

    @classmethod
    def concatenate(cls, parts: "Sequence[WorkloadArrays]") -> "WorkloadArrays":
        """The jobs of ``parts`` one part after the other (each in its own submission order):
        several workloads simulated together, each with its own Batsim job submitter."""
        if not parts:
            raise ValueError("no workload to concatenate")
        fields = {}
        for name, value in parts[0].__dict__.items():
            values = [part.__dict__[name] for part in parts]
            fields[name] = np.concatenate(values) if isinstance(value, np.ndarray) else sum(values, ())
        out = cls(**fields)
        out._freeze()
        return out

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        for value in state.values():
            if isinstance(value, np.ndarray):
                value.setflags(write=False)

    @property
    def nb_jobs(self) -> int:
        return len(self.job_ids)
