"""Reading the JSON configuration files users write (options, experiments)."""

from __future__ import annotations

import json
import os
from pathlib import Path

from hdeeprm.common.errors import ConfigError


def read_json_object(path: str | os.PathLike) -> dict:
    """The JSON object in ``path``; a syntax error names the file, line and column. NaN and
    Infinity, which Python's json accepts but JSON does not, are refused: a learning rate or
    reward scale of NaN would silently turn every weight into NaN."""
    path = Path(path)
    text = path.read_text()
    try:
        data = json.loads(text, parse_constant=_refuse_constant)
    except json.JSONDecodeError as e:
        raise ConfigError(f"{path}: line {e.lineno}, column {e.colno}: invalid JSON ({e.msg})") from None
    except _NonFinite as e:
        line = next((i for i, row in enumerate(text.splitlines(), 1) if e.name in row), None)
        where = f"line {line}: " if line else ""
        raise ConfigError(f"{path}: {where}{e.name} is not a number JSON allows; expected a finite number") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a JSON object")
    return data


class _NonFinite(ValueError):
    def __init__(self, name: str):
        super().__init__(name)
        self.name = name


def _refuse_constant(name: str):
    raise _NonFinite(name)
