"""Reading the JSON configuration files users write (options, experiments)."""

from __future__ import annotations

import json
import os
from pathlib import Path

from .errors import ConfigError


def read_json_object(path: str | os.PathLike) -> dict:
    """The JSON object in ``path``; a syntax error names the file, line and column."""
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise ConfigError(f"{path}: line {e.lineno}, column {e.colno}: invalid JSON ({e.msg})") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a JSON object")
    return data
