"""Workloads: Batsim JSON files, SWF traces and their conversion into Batsim jobs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from hdeeprm.common.errors import WorkloadError
from hdeeprm.inputs.workload.batsim_json import (
    SUPPORTED_PROFILE_TYPES,
    dump_batsim_workload,
    parse_batsim_workload,
    read_batsim_workload,
    write_batsim_workload,
)
from hdeeprm.inputs.workload.convert import (
    ConversionOptions,
    ConversionReport,
    JobLimits,
    job_limits,
    swf_to_workload,
)
from hdeeprm.inputs.workload.model import Job, Profile, Workload, WorkloadArrays
from hdeeprm.inputs.workload.swf import FIELD_NAMES as SWF_FIELDS
from hdeeprm.inputs.workload.swf import SwfTrace, parse_swf, read_swf

__all__ = [
    "ConversionOptions",
    "ConversionReport",
    "require_jobs",
    "Job",
    "JobLimits",
    "Profile",
    "SUPPORTED_PROFILE_TYPES",
    "SWF_FIELDS",
    "SwfTrace",
    "Workload",
    "WorkloadArrays",
    "dump_batsim_workload",
    "job_limits",
    "load_workload",
    "parse_batsim_workload",
    "parse_swf",
    "read_batsim_workload",
    "read_swf",
    "swf_to_workload",
    "write_batsim_workload",
]


def load_workload(
    path: str | Path,
    options: ConversionOptions | None = None,
    *,
    rng: np.random.Generator | None = None,
    **conversion: Any,
) -> Workload:
    """Load a workload by file name: ``*.json`` is read as Batsim JSON, anything else
    (``.swf``, ``.swf.gz``...) is converted from SWF.

    For SWF, ``conversion`` keywords (the fields of :class:`ConversionOptions`) override
    those of ``options``; unknown keywords are errors. A Batsim JSON workload is taken as it
    is: conversion settings do not apply to it and are ignored (so callers can pass the same
    settings whatever the file). Use :func:`swf_to_workload` to also get the report.

    A file that yields no job (an empty trace, only comments, every record skipped, an empty
    ``jobs`` array) raises :class:`WorkloadError`: there would be nothing to simulate.
    (Empty :class:`Workload` objects built through the API stay allowed.)
    """
    if conversion:
        # Checked even for JSON input, so that a misspelt option never passes silently.
        base = options.to_dict() if options is not None else {}
        options = ConversionOptions.from_dict({**base, **conversion})
    if str(path).lower().endswith(".json"):
        return require_jobs(path, read_batsim_workload(path))
    workload, report = swf_to_workload(path, options, rng=rng)
    return require_jobs(path, workload, report)


def require_jobs(path: str | Path, workload: Workload, report: ConversionReport | None = None) -> Workload:
    """``workload``, read from ``path``, if it holds a job; else a :class:`WorkloadError`
    saying why (with the conversion ``report`` of an SWF trace): there is nothing to simulate."""
    if workload.jobs:
        return workload
    if report is None:
        raise WorkloadError(str(path), "jobs", "no usable job (the 'jobs' array is empty)")
    if report.records == 0:
        why = "the trace holds no record"
    else:
        reasons = ", ".join(f"{name}: {count}" for name, count in report.skipped.items())
        why = f"{report.skipped_total} records skipped: {reasons or 'none'}"
    raise WorkloadError(str(path), None, f"no usable job ({why})")
