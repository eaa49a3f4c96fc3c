"""Starting, watching and always stopping the ``batsim`` process.

A peer is what sits at the other end of the transport: real Batsim here, or the replay
server of :mod:`hdeeprm.backends.batsim.replay_server` in tests. Every peer has ``check()``
(raise if it died), ``finish(timeout_s)`` (wait for its normal end) and ``close()`` (stop it
if it still runs; safe to call twice). The backend closes its peer in a ``finally`` block,
and a finaliser and an ``atexit`` hook catch the rest, so an exception or Ctrl-C never leaves
a batsim process behind. On Linux the child also gets SIGTERM if this process dies outright.
"""

from __future__ import annotations

import atexit
import os
import re
import shutil
import signal
import subprocess
import sys
import weakref
from pathlib import Path

from hdeeprm.common.errors import BatsimError

BATSIM_ENV_VAR = "HDEEPRM_BATSIM"
_INSTALL_HINT = ("install Batsim 4 (https://batsim.readthedocs.io; e.g. with Nix or Guix) and put "
                 f"`batsim` on PATH, set {BATSIM_ENV_VAR}=/path/to/batsim, or pass the path "
                 "explicitly (--batsim PATH, or backend_options={'batsim': PATH})")


def find_batsim(explicit: str | os.PathLike | None = None) -> str:
    """The batsim executable: ``explicit``, else $HDEEPRM_BATSIM, else ``batsim`` on PATH."""
    for origin, candidate in (("given path", explicit),
                              (f"${BATSIM_ENV_VAR}", os.environ.get(BATSIM_ENV_VAR))):
        if candidate:
            path = shutil.which(str(candidate))
            if path is None:
                raise BatsimError(f"batsim not found at {candidate} ({origin}): no such "
                                  f"executable file; {_INSTALL_HINT}")
            return os.path.abspath(path)
    path = shutil.which("batsim")
    if path is None:
        raise BatsimError(f"batsim is not installed (not on PATH); {_INSTALL_HINT}")
    return path


def batsim_command(executable: str, platform_xml: str, workload_json: str, export_prefix: str,
                   endpoint: str, extra_args: tuple[str, ...] = ()) -> list[str]:
    """Batsim's command line: energy on (-E), quiet (-q), connecting to our endpoint."""
    return [executable, "-p", platform_xml, "-w", workload_json, "-e", export_prefix,
            "-s", endpoint, "-E", "-q", *extra_args]


def _die_with_parent() -> None:  # pragma: no cover - runs in the child between fork and exec
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except OSError:
        pass


_LIVE: "weakref.WeakSet[BatsimProcess]" = weakref.WeakSet()


@atexit.register
def _stop_all() -> None:
    for process in list(_LIVE):
        process.close()


class BatsimProcess:
    """A running batsim; its output goes to ``log_path``."""

    def __init__(self, command: list[str], log_path: str | os.PathLike, cwd: str | None = None):
        self.command = command
        self.log_path = Path(log_path)
        self._log = open(self.log_path, "wb")
        try:
            # Its own session and process group, so that stopping it also stops whatever it
            # started (a wrapper script that does not exec leaves batsim as its child).
            self._popen = subprocess.Popen(
                command, stdin=subprocess.DEVNULL, stdout=self._log, stderr=subprocess.STDOUT,
                cwd=cwd, start_new_session=True,
                preexec_fn=_die_with_parent if sys.platform.startswith("linux") else None)
        except OSError as e:
            self._log.close()
            raise BatsimError(f"cannot start {command[0]}: {e}") from None
        _LIVE.add(self)
        self._finalizer = weakref.finalize(self, _terminate, self._popen, self._log)

    @property
    def pid(self) -> int:
        return self._popen.pid

    @property
    def returncode(self) -> int | None:
        return self._popen.poll()

    def check(self) -> None:
        code = self._popen.poll()
        if code is not None:
            raise BatsimError(f"batsim exited with status {code} before the end of the "
                              f"simulation{self._log_tail()}")

    def finish(self, timeout_s: float = 30.0) -> None:
        """Wait for batsim to exit after SIMULATION_ENDS; a non-zero status is an error."""
        try:
            code = self._popen.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            self.close()
            raise BatsimError(f"batsim did not exit within {timeout_s:g} s after the end of the "
                              f"simulation; it was stopped{self._log_tail()}") from None
        finally:
            self._log.flush()
        if code != 0:
            raise BatsimError(f"batsim exited with status {code}{self._log_tail()}")

    def close(self) -> None:
        self._finalizer()
        _LIVE.discard(self)

    def _log_tail(self, lines: int = 6) -> str:
        try:
            self._log.flush()
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        tail = important_log_lines(text)[-lines:]
        return (f"; {self.log_path} says: " + " | ".join(tail) if tail
                else f" (see {self.log_path})")

    def __enter__(self) -> "BatsimProcess":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


# SimGrid and Batsim log lines look like "[0.000000] [xbt_cfg/INFO] ..." or
# "[host:actor:(1) 0.000000] file.cpp:12: [category/CRITICAL] ...".
_LOG_LEVEL = re.compile(r"\[[\w.-]+/(TRACE|DEBUG|VERBOSE|INFO)\]")


def important_log_lines(text: str) -> list[str]:
    """The lines of a batsim log that explain a failure: everything but SimGrid's and
    Batsim's informational messages (warnings, errors, assertions, backtraces, exit notes)."""
    return [line.strip() for line in text.splitlines() if line.strip() and not _LOG_LEVEL.search(line)]


def _terminate(popen: subprocess.Popen, log) -> None:
    """Stop batsim's whole process group: SIGTERM, then SIGKILL after 5 s."""
    if popen.poll() is None:
        _signal_group(popen, signal.SIGTERM)
        try:
            popen.wait(timeout=5)
        except subprocess.TimeoutExpired:
            pass
        # Whatever is left of the group (the leader, or children that ignored SIGTERM).
        # Only while the leader is still ours: once reaped its pid could be reused.
        _signal_group(popen, signal.SIGKILL)
        popen.wait()
    log.close()


def _signal_group(popen: subprocess.Popen, sig: int) -> None:
    try:
        os.killpg(popen.pid, sig)
    except (ProcessLookupError, PermissionError):
        pass
