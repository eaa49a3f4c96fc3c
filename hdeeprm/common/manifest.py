"""``manifest.json``: what it takes to know, later, how a run folder was made.

:func:`write_manifest` writes into a run folder the exact command line, the versions of
hdeeprm (and its git commit when it runs from a git checkout) and of the libraries a result
depends on, the SHA-256 of every input file, the seeds, the machine, the start time (UTC)
and the wall time. It never fails for lack of git or of an optional library (those fields
are then null), and it replaces the file atomically (a reader sees the old manifest or the
new one, never half of one).

:func:`read_manifest` reads one back (None when there is none, or when it is not ours);
:func:`manifest_lines` says the few lines ``hdeeprm compare`` and ``report`` show.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import os
import platform
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any, Mapping, Sequence

from hdeeprm.common.atomic import atomic_path

MANIFEST_FILE = "manifest.json"
MANIFEST_FORMAT = "hdeeprm-manifest/1"
#: Distributions whose version is recorded (read from their metadata: nothing is imported).
PACKAGES = ("numpy", "numba", "torch", "gymnasium", "simpy", "lxml", "matplotlib", "pyzmq")
GIT_TIMEOUT_S = 2.0
_HASH_CHUNK = 1 << 20


def package_version(name: str) -> str | None:
    """The installed version of distribution ``name``, or None; never imports it (importing
    torch alone takes a second)."""
    from importlib import metadata

    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None
    except Exception:  # a broken installation's metadata: no version, no failure
        return None


def git_commit(path: str | os.PathLike | None = None, timeout: float = GIT_TIMEOUT_S) -> str | None:
    """The commit checked out where the hdeeprm package sits (``path``: another folder), when
    that folder is the top of a git checkout (a ``.git`` beside the package: an installed
    copy inside some other repository does not count); None otherwise, or when git is
    missing, slow or fails."""
    root = Path(path) if path is not None else Path(__file__).resolve().parent.parent.parent
    if not (root / ".git").exists():
        return None
    try:
        done = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True,
                              timeout=timeout, stdin=subprocess.DEVNULL)
    except (OSError, subprocess.SubprocessError, ValueError):
        return None
    commit = done.stdout.strip()
    if done.returncode != 0 or len(commit) not in (40, 64) or any(c not in "0123456789abcdef" for c in commit):
        return None
    return commit


def file_sha256(path: str | os.PathLike) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(_HASH_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


_BUNDLED = {"platform": ("platforms", ".json"), "experiment": ("experiments", ".json"), "grid": ("grids", ".json"),
            "workload": ("traces", ""), "trace": ("traces", "")}


def _bundled_path(key: str, value: str) -> Path | None:
    """A bundled input named without its path (``gaia``, ``quickstart``,
    ``kth-sp2-head.swf.gz``), looked up by the kind its key names."""
    from hdeeprm.common.bundled import DATA_DIR

    if os.sep in value or (os.altsep and os.altsep in value):
        return None
    base = key.split("[")[0].rstrip("s")  # "platforms[0]" -> "platform"
    kinds = [_BUNDLED[base]] if base in _BUNDLED else list(_BUNDLED.values())
    for folder, suffix in kinds:
        for name in (value, value + suffix) if suffix and not value.endswith(suffix) else (value,):
            candidate = DATA_DIR / folder / name
            if candidate.is_file():
                return candidate
    return None


def describe_input(key: str, value: str | os.PathLike) -> dict[str, Any]:
    """``{"given", "path", "bytes", "sha256"}`` of one input: a file is hashed; a bundled name
    is resolved to its file first; anything else (a generated platform name, a missing file)
    is recorded as given, with null path and checksum."""
    given = os.fspath(value)
    path = Path(given)
    if not path.is_file():
        path = _bundled_path(key, given) or path
    record: dict[str, Any] = {"given": given, "path": None, "bytes": None, "sha256": None}
    try:
        if path.is_file():
            record.update(path=str(path.resolve()), bytes=path.stat().st_size, sha256=file_sha256(path))
    except OSError:
        pass  # unreadable: recorded as given
    return record


def _inputs(inputs: Mapping[str, Any] | None) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in (inputs or {}).items():
        if value is None:
            out[key] = None
        elif isinstance(value, (str, os.PathLike)):
            out[key] = describe_input(key, value)
        else:  # several files of one kind (a sweep's platforms)
            out[key] = [describe_input(key, v) for v in value]
    return out


def _json_safe(value: Any) -> Any:
    """Seeds and such as JSON (numpy integers, tuples, paths)."""
    if isinstance(value, Mapping):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if hasattr(value, "item"):
        return value.item()
    return str(value)


def machine() -> dict[str, Any]:
    return {"node": platform.node(), "platform": platform.platform(), "machine": platform.machine(),
            "processor": platform.processor() or None, "cpu_count": os.cpu_count()}


def _utc(moment: _dt.datetime) -> str:
    return moment.astimezone(_dt.timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")


def build_manifest(command_argv: Sequence[str], inputs: Mapping[str, Any] | None = None,
                   seeds: Mapping[str, Any] | None = None, wall_seconds: float | None = None, *,
                   started: _dt.datetime | float | None = None, extra: Mapping[str, Any] | None = None) -> dict:
    """The manifest's content (see :func:`write_manifest`)."""
    from hdeeprm import __version__

    now = _dt.datetime.now(_dt.timezone.utc)
    if isinstance(started, (int, float)):
        started = _dt.datetime.fromtimestamp(started, _dt.timezone.utc)
    if started is None:
        started = now - _dt.timedelta(seconds=wall_seconds) if wall_seconds is not None else now
    argv = [os.fspath(a) for a in command_argv]
    manifest = {
        "format": MANIFEST_FORMAT,
        "command": shlex.join(argv),
        "argv": argv,
        "working_directory": os.getcwd(),
        "hdeeprm_version": __version__,
        "git_commit": git_commit(),
        "python": platform.python_version(),
        "python_implementation": platform.python_implementation(),
        "packages": {name: package_version(name) for name in PACKAGES},
        "inputs": _inputs(inputs),
        "seeds": _json_safe(dict(seeds or {})),
        "machine": machine(),
        "started_utc": _utc(started),
        "finished_utc": _utc(now),
        "wall_seconds": None if wall_seconds is None else float(wall_seconds),
    }
    if extra:
        manifest["extra"] = _json_safe(dict(extra))
    return manifest


def write_manifest(out_dir: str | os.PathLike, command_argv: Sequence[str],
                   inputs: Mapping[str, Any] | None = None, seeds: Mapping[str, Any] | None = None,
                   wall_seconds: float | None = None, *, started: _dt.datetime | float | None = None,
                   extra: Mapping[str, Any] | None = None) -> Path:
    """Write ``out_dir/manifest.json`` atomically and return its path.

    ``command_argv``: the command line as run (``["hdeeprm", "simulate", "--platform", ...]``);
    ``inputs``: {what: path} of the input files (a bundled name is resolved to its file; a
    list of paths for several); ``seeds``: {name: seed}; ``wall_seconds``: how long the run
    took; ``started``: when it started (a datetime, or a ``time.time()``; default: now minus
    ``wall_seconds``); ``extra``: anything else worth keeping (JSON-able)."""
    folder = Path(out_dir)
    folder.mkdir(parents=True, exist_ok=True)
    text = json.dumps(build_manifest(command_argv, inputs, seeds, wall_seconds, started=started, extra=extra),
                      indent=1) + "\n"
    with atomic_path(folder / MANIFEST_FILE) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return folder / MANIFEST_FILE


def is_manifest(data: Any) -> bool:
    return isinstance(data, dict) and data.get("format") == MANIFEST_FORMAT


def read_manifest(folder: str | os.PathLike) -> dict | None:
    """``folder/manifest.json`` if it is one hdeeprm wrote, else None (missing, unreadable,
    or another file of that name)."""
    path = Path(folder) / MANIFEST_FILE
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError, UnicodeDecodeError, RecursionError):
        return None
    return data if is_manifest(data) else None


def manifest_lines(manifest: Mapping[str, Any]) -> list[str]:
    """A few lines for people: command, version and commit, date and wall time, machine."""
    version = f"hdeeprm {manifest.get('hdeeprm_version') or '?'}"
    commit = manifest.get("git_commit")
    if isinstance(commit, str) and commit:
        version += f", commit {commit[:12]}"
    lines = [f"command: {manifest.get('command') or '?'}", f"version: {version}"]
    started = manifest.get("started_utc")
    if isinstance(started, str) and started:
        when = started.replace("T", " ").replace("Z", " UTC")
        wall = manifest.get("wall_seconds")
        if isinstance(wall, (int, float)) and not isinstance(wall, bool):
            when += f" ({wall:,.1f} s)"
        lines.append(f"date: {when}")
    host = manifest.get("machine")
    if isinstance(host, dict) and host.get("node"):
        lines.append(f"machine: {host.get('node')} ({host.get('platform') or '?'}, "
                     f"{host.get('cpu_count') or '?'} CPUs)")
    return lines


def current_argv() -> list[str]:
    """This process's command line, as ``hdeeprm ...`` (the program's name, not its path)."""
    program = Path(sys.argv[0]).name if sys.argv and sys.argv[0] else "hdeeprm"
    return [program if program not in ("__main__.py", "-c", "") else "hdeeprm"] + list(sys.argv[1:])


def command_line(args) -> list[str]:
    """The command a CLI handler runs for: ``hdeeprm`` and the arguments ``main()`` parsed
    (``args.argv``; ``main([...])`` called from Python has no sys.argv of its own)."""
    argv = getattr(args, "argv", None)
    return ["hdeeprm", *argv] if argv is not None else current_argv()


__all__ = ["MANIFEST_FILE", "MANIFEST_FORMAT", "build_manifest", "command_line", "current_argv", "describe_input", "file_sha256",
           "git_commit", "is_manifest", "manifest_lines", "package_version", "read_manifest", "write_manifest"]
