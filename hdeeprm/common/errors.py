"""One error hierarchy for everything a user can get wrong.

Every error raised for bad input derives from :class:`HDeepRMError`; the command line prints
its message on one line and exits with status 2. Format errors say where the problem is (file,
line or JSON path, field), what was expected and what was found.
"""

from __future__ import annotations

import os
import sys


class HDeepRMError(Exception):
    """Base class of every error HDeepRM raises on purpose."""


class TrainingDiverged(HDeepRMError):
    """An agent's parameters stopped being finite numbers; nothing was saved over the last
    good checkpoint."""


class FormatError(HDeepRMError):
    """An input file does not follow its format.

    ``source`` names the file, ``where`` the place in it (``line 12`` or a JSON path such as
    ``clusters[0].nodes[1].number``), ``field`` the offending field when there is one.
    """

    def __init__(self, source: str, where: str | None, message: str, field: str | None = None):
        self.source = str(source)
        self.where = where
        self.field = field
        self.detail = message
        parts = [self.source]
        if where:
            parts.append(where)
        if field:
            parts.append(f"field {field!r}")
        super().__init__(f"{': '.join(parts)}: {message}")


class PlatformError(FormatError):
    """A platform description (JSON, XML or hierarchy) is invalid."""


class WorkloadError(FormatError):
    """A workload (SWF trace or Batsim JSON) is invalid."""


class ConfigError(HDeepRMError):
    """A configuration value or option is invalid (unknown key, bad value)."""


class SimulationError(HDeepRMError):
    """A scheduler asked the engine for something impossible (busy machine, unknown job...)."""


class ReplayError(HDeepRMError):
    """A recorded transcript cannot be replayed on the given platform and workload."""


class BatsimError(HDeepRMError):
    """Real Batsim could not be found or started, stopped answering, exited early, or sent
    something that does not follow its protocol."""


class Terminated(KeyboardInterrupt):
    """SIGTERM, handled as Ctrl-C is: the same clean-up, then exit status 143."""


def _raise_terminated(signum, frame):
    raise Terminated()


def report_errors(prog: str, command) -> int:
    """Run ``command()`` and turn user mistakes into one line on stderr and exit status 2
    (shared by ``hdeeprm`` and ``hdeeprm-launch``); bugs still show their traceback. SIGTERM
    is turned into :class:`Terminated`, so that it cleans up as Ctrl-C does."""
    import signal
    import threading

    previous = None
    if threading.current_thread() is threading.main_thread():
        previous = signal.signal(signal.SIGTERM, _raise_terminated)
    try:
        return command()
    except HDeepRMError as e:
        print(f"{prog}: error: {e}", file=sys.stderr)
        return 2
    except FileNotFoundError as e:
        print(f"{prog}: error: {_shown_path(e.filename)}: no such file", file=sys.stderr)
        return 2
    except BrokenPipeError:
        # Output piped into a reader that stopped early (``hdeeprm ... | head``): quietly stop,
        # with the status a process killed by SIGPIPE has (128 + 13), as ``yes | head`` does.
        # Python's own recipe: point stdout at /dev/null, so that flushing what is left on the
        # way out does not raise a second BrokenPipeError.
        _silence_stdout()
        return 141
    except OSError as e:
        # An input or output path that cannot be used: --out naming a regular file, a folder
        # where a file is expected, a name too long, no permission, a full disk...
        if e.filename is not None and e.strerror:
            print(f"{prog}: error: {_shown_path(e.filename)}: {e.strerror}", file=sys.stderr)
        else:
            print(f"{prog}: error: {_shown_path(str(e))}", file=sys.stderr)
        return 2
    except ModuleNotFoundError as e:
        if e.name not in ("torch", "tensorboard"):
            raise
        how = ("pip install tensorboard" if e.name == "tensorboard"
               else "pip install -c constraints.txt -e '.[rl]'")
        print(f"{prog}: error: {e.name} is not installed; {how}", file=sys.stderr)
        return 2
    except Terminated:
        print(f"{prog}: terminated", file=sys.stderr)
        return 143
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        return 130
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


def _shown_path(name, limit: int = 80) -> str:
    """A file name for a one-line message, cut to about ``limit`` characters."""
    name = os.fsdecode(name) if isinstance(name, (bytes, os.PathLike)) else str(name)
    return name if len(name) <= limit else f"{name[:limit - 3]}..."


def _silence_stdout() -> None:
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError, AttributeError):
        pass  # stdout is not a real file (captured, closed): nothing is left to flush to it
