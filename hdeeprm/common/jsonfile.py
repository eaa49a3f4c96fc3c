"""Reading the JSON configuration files users write (options, experiments)."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

from hdeeprm.common.errors import ConfigError

#: The largest configuration file read: anything bigger (or an endless device such as
#: /dev/zero) is refused after reading at most this many bytes plus one.
MAX_JSON_BYTES = 64 * 1024 * 1024

#: The most digits an integer literal may have. A 64-bit seed has 20; anything much longer is
#: a mistake (and Python refuses to convert more than 4300 digits anyway).
MAX_INT_DIGITS = 100

_SHOWN = 40  # characters of a bad literal echoed in a message


def read_json_object(path: str | os.PathLike) -> dict:
    """The JSON object in ``path``; a syntax error names the file, line and column. NaN and
    Infinity, which Python's json accepts but JSON does not, are refused, and so are numbers
    that overflow to infinity (``1e999``): a learning rate or reward scale of NaN would
    silently turn every weight into NaN. Also refused, each with a one-line
    :class:`ConfigError`: files over :data:`MAX_JSON_BYTES`, text that is not UTF-8, nesting
    too deep for the parser, and integers longer than :data:`MAX_INT_DIGITS` digits."""
    path = Path(path)
    text = _read_text(path)
    try:
        data = json.loads(text, parse_constant=_refuse_constant, parse_float=_finite_float,
                          parse_int=_bounded_int)
    except json.JSONDecodeError as e:
        raise ConfigError(f"{path}: line {e.lineno}, column {e.colno}: invalid JSON ({e.msg})") from None
    except RecursionError:
        raise ConfigError(f"{path}: JSON nested too deep") from None
    except _BadNumber as e:
        line = _line_of(text, e.literal)
        where = f"line {line}: " if line else ""
        raise ConfigError(f"{path}: {where}{e.message}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a JSON object")
    return data


def _read_text(path: Path) -> str:
    with open(path, "rb") as f:
        raw = f.read(MAX_JSON_BYTES + 1)
    if len(raw) > MAX_JSON_BYTES:
        raise ConfigError(f"{path}: larger than {MAX_JSON_BYTES // (1024 * 1024)} MiB; "
                          "expected a JSON configuration file")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise ConfigError(f"{path}: not UTF-8 text (byte {e.start})") from None


def _line_of(text: str, literal: str) -> int | None:
    at = text.find(literal)
    return text.count("\n", 0, at) + 1 if at >= 0 else None


def _shown(literal: str) -> str:
    return literal if len(literal) <= _SHOWN else f"{literal[:_SHOWN]}..."


class _BadNumber(ValueError):
    def __init__(self, literal: str, message: str):
        super().__init__(message)
        self.literal = literal
        self.message = message


def _refuse_constant(name: str):
    raise _BadNumber(name, f"{name} is not a number JSON allows; expected a finite number")


def _finite_float(literal: str) -> float:
    value = float(literal)
    if not math.isfinite(value):
        raise _BadNumber(literal, f"{_shown(literal)} is out of range; expected a finite number")
    return value


def _bounded_int(literal: str) -> int:
    digits = len(literal.lstrip("-"))
    if digits > MAX_INT_DIGITS:
        raise _BadNumber(literal, f"integer {_shown(literal)} has {digits} digits; "
                         f"expected at most {MAX_INT_DIGITS}")
    return int(literal)
