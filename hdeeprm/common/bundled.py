"""Where the data shipped inside the package lives (platforms, type libraries, experiments, traces)."""

from __future__ import annotations

import os
from pathlib import Path

DATA_DIR = Path(__file__).resolve().parent.parent / "data"
TRACES_DIR = DATA_DIR / "traces"


def bundled_trace_names() -> list[str]:
    """The file names of the bundled traces (``kth-sp2-head.swf.gz``, ...), sorted."""
    return sorted(path.name for path in TRACES_DIR.iterdir() if path.is_file())


def locate(base: Path, value: str | os.PathLike, key: str) -> str:
    """Where an input named in a configuration is: an absolute path as it is; a relative path
    that exists under ``base`` (an experiment file's folder, or the working directory); for
    ``key == "workload"``, else the bundled trace of that file name. Anything else comes back
    unchanged: a bundled platform name (``hdeeprm.inputs.platform.resolve_platform_name``
    turns it into a path), or a missing path that the loader reports.

    One rule for experiment files, sweeps and HeteroEnv's ``workload=``, so that a name that
    works in one works in the others (a file on disk always wins over a bundled name)."""
    path = Path(value)
    if path.is_absolute():
        return str(path)
    if (base / path).exists():
        return str(base / path)
    if key == "workload":
        bundled = TRACES_DIR / path
        if bundled.is_file():
            return str(bundled)
    return str(value)
