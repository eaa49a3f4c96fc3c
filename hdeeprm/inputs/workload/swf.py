"""Reader for the Standard Workload Format (SWF) of the Parallel Workloads Archive.

An SWF file holds one job per line as 18 whitespace-separated numbers; ``-1`` marks a value the
site did not record. Lines whose first non-blank character is ``;`` are comments, and the
archive's header comments carry ``Key: value`` pairs (``MaxProcs``, ``MaxNodes``...).

:func:`read_swf` returns an :class:`SwfTrace`: every record as one row of a read-only
``float64`` array (fractional values are kept; nothing is truncated) plus the header
metadata. Parsing is done in bulk by numpy's C reader; only when that reader refuses the text
do we walk it line by line, to say exactly which line and which field is wrong.
"""

from __future__ import annotations

import io
import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping

import numpy as np

from hdeeprm.common.errors import WorkloadError
from hdeeprm.inputs.limits import MAX_SWF_BYTES, clip, gunzip_bounded, read_bounded

#: SWF field names, in file order (field k of the standard is column k - 1 here).
FIELD_NAMES: tuple[str, ...] = (
    "job_number",  # 1
    "submit_time",  # 2, s
    "wait_time",  # 3, s
    "run_time",  # 4, s
    "allocated_procs",  # 5
    "avg_cpu_time",  # 6, s
    "used_memory_kb",  # 7, KB per processor
    "requested_procs",  # 8
    "requested_time",  # 9, s
    "requested_memory_kb",  # 10, KB per processor
    "status",  # 11
    "user_id",  # 12
    "group_id",  # 13
    "executable",  # 14
    "queue",  # 15
    "partition",  # 16
    "preceding_job",  # 17
    "think_time",  # 18, s
)
NB_FIELDS = len(FIELD_NAMES)
#: Records may stop early (some hand-made traces do) as long as every field the conversion
#: reads is present: up to and including requested memory. The rest is filled with -1.
MIN_FIELDS = FIELD_NAMES.index("requested_memory_kb") + 1
MISSING = -1.0

_COLUMN = {name: i for i, name in enumerate(FIELD_NAMES)}
_GZIP_MAGIC = b"\x1f\x8b"
# "; MaxProcs: 240" and the like; the key is letters, digits and spaces, the value the rest.
_HEADER_RE = re.compile(rb"^[ \t]*;[ \t]*([A-Za-z][A-Za-z0-9 _]*?)[ \t]*:[ \t]*(.*?)[ \t\r]*$", re.M)
_INT_RE = re.compile(r"[+-]?\d+")
_MAX_HEADER_DIGITS = 19


@dataclass(frozen=True, eq=False)
class SwfTrace:
    """The records of one SWF file.

    ``records`` has one row per job in file order and one column per SWF field
    (:data:`FIELD_NAMES`), as read-only float64; missing values are -1 as in the file.
    ``metadata`` maps header keys to values: integers where the value is a plain integer
    (``MaxProcs``, ``MaxNodes``, ``UnixStartTime``...), text otherwise; the first occurrence
    of a key wins.
    """

    records: np.ndarray
    metadata: Mapping[str, int | str] = field(default_factory=dict)
    source: str = "<memory>"

    def __len__(self) -> int:
        return int(self.records.shape[0])

    def column(self, name: str) -> np.ndarray:
        """One SWF field over all records, by its name in :data:`FIELD_NAMES`."""
        try:
            return self.records[:, _COLUMN[name]]
        except KeyError:
            raise KeyError(f"unknown SWF field {name!r}; fields are {', '.join(FIELD_NAMES)}") from None

    __getitem__ = column

    @property
    def max_procs(self) -> int | None:
        """The header's ``MaxProcs`` (processors of the machine), None when absent."""
        return _int_or_none(self.metadata.get("MaxProcs"))

    @property
    def max_nodes(self) -> int | None:
        """The header's ``MaxNodes``, None when absent."""
        return _int_or_none(self.metadata.get("MaxNodes"))


def read_swf(path: str | Path) -> SwfTrace:
    """Read an SWF trace, plain or gzip-compressed (recognised by its magic bytes, not its
    name). Raises :class:`WorkloadError` naming the file, line and field of a bad record.

    Traces larger than :data:`hdeeprm.inputs.limits.MAX_SWF_BYTES` (2 GiB, after
    decompression) or holding NUL bytes are refused; decompression stops as soon as the
    limit is passed, so a gzip bomb never allocates its output."""
    path = Path(path)
    source = str(path)

    def error(message: str) -> WorkloadError:
        return WorkloadError(source, None, message)

    raw = read_bounded(path, MAX_SWF_BYTES, "an SWF trace", error, allow_gzip=True)
    if raw[:2] == _GZIP_MAGIC:
        raw = gunzip_bounded(raw, MAX_SWF_BYTES, "an SWF trace", error)
    return parse_swf(raw, source=source)


def parse_swf(text: str | bytes, source: str = "<string>") -> SwfTrace:
    """Parse the content of an SWF file (already decompressed)."""
    raw = text.encode("utf-8") if isinstance(text, str) else bytes(text)
    records = _parse_fast(raw)
    if records is None:
        records = _parse_slow(raw, source)
    records.setflags(write=False)
    return SwfTrace(records=records, metadata=_parse_header(raw, source), source=source)


def parse_swf_line(line: str | bytes, source: str = "<string>", line_no: int = 1) -> np.ndarray | None:
    """Parse one SWF line into an array of :data:`NB_FIELDS` floats (missing trailing fields
    as -1), or None for a blank or comment line. Anything after a ``;`` is a comment."""
    if isinstance(line, str):
        line = line.encode("utf-8")
    body = line.split(b";", 1)[0]
    tokens = body.split()
    if not tokens:
        return None
    where = f"line {line_no}"
    if len(tokens) > NB_FIELDS:
        raise WorkloadError(source, where, f"expected {NB_FIELDS} fields, found {len(tokens)}")
    if len(tokens) < MIN_FIELDS:
        raise WorkloadError(
            source, where,
            f"expected {NB_FIELDS} fields (at least the first {MIN_FIELDS}, up to "
            f"{FIELD_NAMES[MIN_FIELDS - 1]}), found {len(tokens)}",
        )
    values = np.full(NB_FIELDS, MISSING)
    for i, token in enumerate(tokens):
        try:
            value = float(token)
        except ValueError:
            value = None
        if value is None or not np.isfinite(value):
            raise WorkloadError(
                source, where, f"expected a number, found {clip(token)}",
                field=FIELD_NAMES[i],
            )
        values[i] = value
    return values


def _parse_fast(raw: bytes) -> np.ndarray | None:
    """Bulk parse with numpy's C reader; None when the text needs the careful path (ragged
    or short rows, text in a numeric field, NaN or infinities)."""
    try:
        with warnings.catch_warnings():
            # An input with no records warns; an empty result is what we want there.
            warnings.simplefilter("ignore", UserWarning)
            table = np.loadtxt(io.BytesIO(raw), comments=";", ndmin=2, dtype=np.float64,
                               encoding="latin-1")
    except ValueError:
        return None
    if table.size == 0:
        return np.empty((0, NB_FIELDS))
    if not MIN_FIELDS <= table.shape[1] <= NB_FIELDS or not np.isfinite(table).all():
        return None
    if table.shape[1] < NB_FIELDS:
        pad = np.full((table.shape[0], NB_FIELDS - table.shape[1]), MISSING)
        table = np.hstack([table, pad])
    return np.ascontiguousarray(table)


def _parse_slow(raw: bytes, source: str) -> np.ndarray:
    """Line-by-line parse; raises at the first bad line, so it is only run on input the bulk
    reader refused (or to accept rows of differing but sufficient lengths)."""
    rows = []
    for line_no, line in enumerate(raw.split(b"\n"), start=1):
        values = parse_swf_line(line, source, line_no)
        if values is not None:
            rows.append(values)
    if not rows:
        return np.empty((0, NB_FIELDS))
    return np.vstack(rows)


def _parse_header(raw: bytes, source: str = "<string>") -> dict[str, int | str]:
    """``Key: value`` pairs from comment lines anywhere in the file (first occurrence wins).
    Integer values must fit in 64 bits."""
    metadata: dict[str, int | str] = {}
    for match in _HEADER_RE.finditer(raw):
        key = match.group(1).decode("utf-8", "replace").strip()
        if key in metadata:
            continue
        value = match.group(2).decode("utf-8", "replace").strip()
        if _INT_RE.fullmatch(value):
            digits = len(value.lstrip("+-"))
            number = int(value) if digits <= _MAX_HEADER_DIGITS else None
            if number is None or abs(number) >= 2**63:
                line = raw.count(b"\n", 0, match.start()) + 1
                raise WorkloadError(
                    source, f"line {line}",
                    f"header {clip(key)}: expected an integer below 2**63, found "
                    f"{clip(value)}",
                )
            metadata[key] = number
        else:
            metadata[key] = value
    return metadata


def _int_or_none(value: int | str | None) -> int | None:
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        # "338 (batch partition; 512 total)": the leading number is the machine size.
        match = _INT_RE.match(value)
        if match is None or len(match.group()) > _MAX_HEADER_DIGITS:
            return None
        return int(match.group())
    return None
