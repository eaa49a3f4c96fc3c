"""Numbers for people: the one way tables in the terminal and in HTML reports show a value.

CSV and JSON files keep every digit (``repr`` of the float); what a person reads is rounded
here, and only here:

- :func:`format_number`: ``digits`` significant digits (trailing zeros kept), thousands
  separators from ``10 ** (digits - 1)`` on, scientific notation from 10 million and below
  0.001 (never "0.000" for a value that is not 0), "-" for NaN;
- :func:`format_seconds`: a time in seconds with 3 decimals below 10 s, 2 below 100 s and 1
  from there on, with thousands separators;
- :func:`format_count`: a whole number with thousands separators;
- :func:`format_value`: one table cell, by the kind of the quantity (``"time"``, ``"count"``,
  ``"energy"``, ``"number"``), for values read back from files as text too.

The tables themselves: ``hdeeprm evaluate`` (:func:`hdeeprm.analysis.evaluation.print_table`),
``hdeeprm sweep`` (:func:`print_sweep_summary`), ``hdeeprm compare``, ``hdeeprm describe``,
the paired comparisons (:mod:`hdeeprm.analysis.stats`) and ``hdeeprm report``.
"""

from __future__ import annotations

import math
import sys

#: The kinds of quantity a table column can hold (see :func:`format_value`).
KINDS = ("number", "time", "count", "energy", "text")


def format_number(x: float, digits: int = 3) -> str:
    """``digits`` significant digits, trailing zeros kept (whole numbers from
    ``10 ** (digits - 1)`` on, with thousands separators); never "0.000" for a small nonzero
    value (scientific notation instead); "-" for NaN."""
    x = float(x)
    if math.isnan(x):
        return "-"
    if math.isinf(x):
        return "inf" if x > 0 else "-inf"
    if x == 0:
        return "0"
    if abs(x) >= 1e7 or abs(x) < 1e-3:
        return f"{x:.{digits - 1}e}"
    if abs(x) >= 10 ** (digits - 1):
        return f"{x:,.0f}"
    text = f"{x:#.{digits}g}".rstrip(".")  # "#": keep trailing zeros (1.40, not 1.4)
    whole, dot, decimals = text.partition(".")
    if len(whole.lstrip("-")) > 3:  # thousands separators: 4,062.3 (and 999.96 to 4 digits: 1,000)
        whole = f"{int(whole):,}"
    return whole + dot + decimals


def format_seconds(x: float) -> str:
    """A time in seconds: 3 decimals below 10 s, 2 below 100 s, 1 from there on, with
    thousands separators (``1,234,567.8``); "-" for NaN. Below half a millisecond it is
    "0.000" (a mean waiting time of 1e-12 s is floating-point noise, not a time)."""
    x = float(x)
    if math.isnan(x):
        return "-"
    if math.isinf(x):
        return "inf" if x > 0 else "-inf"
    if abs(x) < 5e-4:
        return "0.000"
    decimals = 3 if abs(x) < 10 else 2 if abs(x) < 100 else 1
    return f"{x:,.{decimals}f}"


def format_count(n) -> str:
    """A whole number with thousands separators ("12,345"); a float that is not whole goes
    to :func:`format_number`."""
    if isinstance(n, float):
        if math.isnan(n) or math.isinf(n) or not n.is_integer():
            return format_number(n, 4)
        n = int(n)
    return f"{int(n):,}"


def format_bytes(n: int) -> str:
    """A file size: bytes below 1 kB, else kB, MB or GB with 3 significant digits."""
    n = int(n)
    for scale, unit in ((1e9, "GB"), (1e6, "MB"), (1e3, "kB")):
        if abs(n) >= scale:
            return f"{format_number(n / scale, 3)} {unit}"
    return f"{n} bytes"


def _as_number(text: str) -> float | int | None:
    """A cell read back from a CSV file as a number (int when it is written as one), else None."""
    s = text.strip()
    if not s:
        return None
    try:
        return int(s)
    except ValueError:
        pass
    try:
        return float(s)
    except ValueError:
        return None


def format_value(value, kind: str = "number", digits: int = 4) -> str:
    """One cell of a table for people. ``value`` may be a number, or text read from a file
    (a number written there is formatted like one, other text is shown as it is). ``kind``:
    ``"time"`` (seconds, :func:`format_seconds`), ``"count"`` (:func:`format_count`),
    ``"energy"`` or ``"number"`` (``digits`` significant digits, :func:`format_number`),
    ``"text"`` (shown as it is)."""
    if kind not in KINDS:
        raise ValueError(f"unknown kind {kind!r}; expected one of {', '.join(KINDS)}")
    if value is None:
        return ""
    if kind == "text":
        return str(value)
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, str):
        number = _as_number(value)
        if number is None:
            return value
        value = number
    if not isinstance(value, (int, float)):
        try:
            value = float(value)  # numpy scalars
        except (TypeError, ValueError):
            return str(value)
    if kind == "time":
        return format_seconds(value)
    if kind == "count" or isinstance(value, int):
        return format_count(value)
    return format_number(value, digits)


def text_table(header: list[str], rows: list[list[str]], left: tuple[int, ...] = (0,)) -> list[str]:
    """Cells aligned in columns (those in ``left`` to the left, others to the right), the
    header underlined."""
    widths = [max([len(header[i])] + [len(r[i]) for r in rows]) for i in range(len(header))]

    def line(cells):
        return "  ".join(c.ljust(w) if i in left else c.rjust(w)
                         for i, (c, w) in enumerate(zip(cells, widths))).rstrip()

    head = line(header)
    return [head, "-" * len(head)] + [line(r) for r in rows]


# ---------------------------------------------------------------------------- hdeeprm sweep


def _sample_std(values: list[float]) -> float:
    if len(values) < 2:
        return math.nan
    mean = sum(values) / len(values)
    return math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1))


def print_sweep_summary(report, stream=None, top: int = 10) -> None:
    """What ``hdeeprm sweep`` prints at the end (``report``: a
    :class:`hdeeprm.rl.sweep.SweepReport`): counts, then the settings ranked by mean return
    over their seeds, then the failures."""
    stream = sys.stdout if stream is None else stream
    rows = report.rows
    print(f"{len(rows)} cells: {report.ran} ran, {report.skipped} done earlier, {report.failed} failed "
          f"({report.engine}, {format_seconds(report.wall_seconds)} s); results in {report.out / 'results.csv'}",
          file=stream)
    varying = [k for k in ("platform", "workload", "overrides") if len({r[k] for r in rows}) > 1]
    groups: dict[tuple, list[dict]] = {}
    for row in rows:
        if row["status"] == "done":
            groups.setdefault(tuple(row[k] for k in varying + ["policy"]), []).append(row)
    if groups:
        ranked = []
        for key, members in groups.items():
            returns = [float(m["return_mean"]) for m in members]
            ranked.append((sum(returns) / len(returns), _sample_std(returns), key, members))
        ranked.sort(key=lambda g: -g[0])
        print(f"\nmean return over seeds (higher is better; ± std over seeds), best {min(top, len(ranked))} "
              f"of {len(ranked)}:", file=stream)
        header = ["rank", "policy", "seeds", "return", "± std", "wait s", "bsld", "makespan s",
                  "energy J"] + varying
        lines = []
        for rank, (mean, std, key, members) in enumerate(ranked[:top], 1):
            def average(column):
                return sum(float(m[column]) for m in members) / len(members)

            lines.append([str(rank), key[-1], str(len(members)), format_number(mean, 5), format_number(std, 3),
                          format_seconds(average("mean_waiting_time")),
                          format_number(average("mean_bounded_slowdown"), 4),
                          format_seconds(average("makespan")), format_number(average("consumed_joules"), 4)]
                         + [str(v) for v in key[:-1]])
        left = (1,) + tuple(range(9, 9 + len(varying)))
        for line in text_table(header, lines, left=left):
            print(line, file=stream)
    failures = [r for r in rows if r["status"] == "failed"]
    if failures:
        print(f"\n{len(failures)} failed (tracebacks in {report.out / 'errors'}):", file=stream)
        for row in failures[:top]:
            print(f"  {row['cell']}: {row['error']}", file=stream)


__all__ = ["KINDS", "format_bytes", "format_count", "format_number", "format_seconds", "format_value",
           "print_sweep_summary", "text_table"]
