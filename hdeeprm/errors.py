"""One error hierarchy for everything a user can get wrong.

Every error raised for bad input derives from :class:`HDeepRMError`; the command line prints
its message on one line and exits with status 2. Format errors say where the problem is (file,
line or JSON path, field), what was expected and what was found.
"""

from __future__ import annotations


class HDeepRMError(Exception):
    """Base class of every error HDeepRM raises on purpose."""


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
