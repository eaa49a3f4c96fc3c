"""Display units shared by figures, terminal tables and reports (no matplotlib needed).

Values stay in base units (s, J, W) everywhere else; a ``Unit`` only rescales what is shown,
so that axis labels and table headers always say the unit of the numbers next to them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

HOURS_FROM = 3 * 3600.0  # s: longer spans are shown in hours


@dataclass(frozen=True)
class Unit:
    scale: float  # multiply a value in the base unit by this to show it
    name: str  # "" for dimensionless quantities


def time_unit(span_s: float) -> Unit:
    return Unit(1 / 3600.0, "h") if span_s > HOURS_FROM else Unit(1.0, "s")


def energy_unit(max_j: float) -> Unit:
    # The largest unit in which the biggest value is still at least 10.
    for scale, name in ((1e-9, "GJ"), (1e-6, "MJ"), (1e-3, "kJ")):
        if max_j >= 10 / scale:
            return Unit(scale, name)
    return Unit(1.0, "J")


#: The original's run comparison (hdeeprm-metrics): out_schedule.csv column, label, kind of
#: unit ("energy", "time" or None). Lower is better for all of them.
COMPARED_METRICS = (
    ("consumed_joules", "Energy", "energy"),
    ("makespan", "Makespan", "time"),
    ("max_slowdown", "Max. slowdown", None),
    ("max_turnaround_time", "Max. turnaround time", "time"),
    ("max_waiting_time", "Max. waiting time", "time"),
    ("mean_slowdown", "Mean slowdown", None),
    ("mean_turnaround_time", "Mean turnaround time", "time"),
    ("mean_waiting_time", "Mean waiting time", "time"),
)


def metric_unit(kind: str | None, values) -> Unit:
    """One unit for a metric across runs, chosen from the largest value."""
    values = np.asarray(values, np.float64)
    top = float(np.nanmax(values)) if values.size else 0.0
    if kind == "energy":
        return energy_unit(top)
    if kind == "time":
        return time_unit(top)
    return Unit(1.0, "")
