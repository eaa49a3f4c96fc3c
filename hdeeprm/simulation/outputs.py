"""Batsim's output files, with its names, columns and number formats.

Writing the same files as Batsim lets evalys and other Batsim tools read our runs, and lets
runs on the embedded engine and on real Batsim be compared line by line.
"""

from __future__ import annotations

import csv
import json
import os
from dataclasses import dataclass

import numpy as np

from hdeeprm.simulation.engine import (
    FINAL_STATE_NAMES,
    KILLED,
    REJECTED_STATE,
    SUCCESS,
    WALLTIME_REACHED,
    SimulationResult,
)

# Batsim's run time of a task of zero work, a long double literal (1e-5l in jobs_execution.cpp).
ZERO_WORK_RECORDED_DURATION_TEXT = "1e-5"
from hdeeprm.inputs.workload.model import KIND_DELAY
from hdeeprm.simulation.intervals import format_allocations, format_intervals

BATSIM_VERSION = "4.2.1"

JOB_COLUMNS = (
    "job_id", "workload_name", "profile", "submission_time", "requested_number_of_resources",
    "requested_time", "success", "final_state", "starting_time", "execution_time", "finish_time",
    "waiting_time", "turnaround_time", "stretch", "allocated_resources", "consumed_energy", "metadata",
)

SCHEDULE_COLUMNS = (
    "batsim_version", "consumed_joules", "makespan", "max_slowdown", "max_turnaround_time",
    "max_waiting_time", "mean_slowdown", "mean_turnaround_time", "mean_waiting_time",
    "nb_computing_machines", "nb_grouped_switches", "nb_jobs", "nb_jobs_finished", "nb_jobs_killed",
    "nb_jobs_rejected", "nb_jobs_success", "nb_machine_switches", "scheduling_time",
    "simulation_time", "success_rate", "time_computing", "time_idle", "time_sleeping",
    "time_switching_off", "time_switching_on", "time_unavailable",
)

ENERGY_COLUMNS = ("time", "energy", "event_type", "wattmin", "epower")
PSTATE_COLUMNS = ("time", "machine_id", "new_pstate")
MACHINE_STATE_COLUMNS = ("time", "nb_sleeping", "nb_switching_on", "nb_switching_off", "nb_idle", "nb_computing")

#: The Batsim output files write_outputs writes (with its default prefix, "out").
OUTPUT_NAMES = ("jobs", "schedule", "consumed_energy", "pstate_changes", "machine_states")
JOBS_FILE, SCHEDULE_FILE, ENERGY_FILE, PSTATES_FILE, MACHINE_STATES_FILE = (
    f"out_{name}.csv" for name in OUTPUT_NAMES)
#: Not Batsim's: each job's user, for the per-user metrics of ``hdeeprm compare`` and
#: ``report`` (written beside the outputs when the workload names users; see write_users).
USERS_FILE = "out_users.csv"
USER_COLUMNS = ("job_id", "user")


def _f6(x: float) -> str:
    return f"{x:.6f}"


@dataclass(frozen=True)
class ScheduleSummary:
    """The aggregates of out_schedule.csv, as numbers."""

    values: dict

    def __getitem__(self, key):
        return self.values[key]


def _time_idle(result: SimulationResult, ran_jobs: np.ndarray, release: np.ndarray,
               computing: float) -> float:
    """Batsim's machine-state tracker counts a machine idle from 0 until it is last released,
    not until the makespan (checked on every recorded run): the sum of the machines' last
    release times, minus the time spent computing. Unused machines count nothing."""
    if ran_jobs.size == 0:
        return 0.0
    hosts, counts = _machines_of(result.alloc, ran_jobs)
    ends = np.repeat(release, counts)
    last_release = np.zeros(result.nb_machines)
    np.maximum.at(last_release, hosts, ends)
    return max(float(last_release.sum()) - computing, 0.0)


def _machines_of(alloc, jobs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The machines of ``jobs`` (which all started), one job after the other, and how many
    each had; from the fast path's flat arrays without a Python call per job when it has them."""
    flat = getattr(alloc, "flat", None)
    if flat is None:
        allocations = [alloc[j] for j in jobs.tolist()]
        return np.concatenate(allocations), np.array([a.size for a in allocations], dtype=np.int64)
    buffer, offsets, sizes = flat()
    counts, starts = sizes[jobs], offsets[jobs]
    # Job i's machines sit at starts[i] ... starts[i] + counts[i] - 1 in the buffer.
    first = np.cumsum(counts) - counts
    positions = np.repeat(starts - first, counts) + np.arange(int(counts.sum()))
    return buffer[positions], counts


def summarize(result: SimulationResult) -> ScheduleSummary:
    """Batsim's aggregate metrics. As in Batsim 4.2.1, means are sums over the jobs that ran
    divided by ``nb_jobs``, rejected jobs included (checked against every recorded run)."""
    w = result.workload
    ran = (result.final_state != 0) & (result.final_state != REJECTED_STATE)
    start, finish = result.start[ran], result.finish[ran]
    sub = w.subtime[ran]
    execution = finish - start
    waiting = start - sub
    turnaround = finish - sub
    with np.errstate(divide="ignore", invalid="ignore"):
        stretch = turnaround / execution
    res = w.res[ran]
    # Zero-flop parallel jobs are written as lasting 10 us but compute for no time.
    actual_exec = np.where((w.kind[ran] != KIND_DELAY) & (w.work[ran] == 0), 0.0, execution)

    nb_jobs = w.nb_jobs

    def mean(a):
        return float(a.sum()) / nb_jobs if a.size else 0.0

    def amax(a):
        return float(a.max()) if a.size else 0.0

    success = int((result.final_state == SUCCESS).sum())
    makespan = amax(finish)
    computing = float((actual_exec * res).sum())
    values = {
        "batsim_version": BATSIM_VERSION,
        "consumed_joules": result.consumed_joules,
        "makespan": makespan,
        "max_slowdown": amax(stretch),
        "max_turnaround_time": amax(turnaround),
        "max_waiting_time": amax(waiting),
        "mean_slowdown": mean(stretch),
        "mean_turnaround_time": mean(turnaround),
        "mean_waiting_time": mean(waiting),
        "nb_computing_machines": result.nb_machines,
        "nb_grouped_switches": result.nb_grouped_switches,
        "nb_jobs": nb_jobs,
        "nb_jobs_finished": int(ran.sum()),
        "nb_jobs_killed": int(((result.final_state == WALLTIME_REACHED) | (result.final_state == KILLED)).sum()),
        "nb_jobs_rejected": int((result.final_state == REJECTED_STATE).sum()),
        "nb_jobs_success": success,
        "nb_machine_switches": result.nb_machine_switches,
        # Batsim reports wall-clock seconds here; we write 0 so that identical runs give
        # byte-identical files (timings go to timing.json beside the outputs instead).
        "scheduling_time": 0.0,
        "simulation_time": 0.0,
        "success_rate": success / nb_jobs if nb_jobs else 0.0,
        "time_computing": computing,
        "time_idle": _time_idle(result, np.flatnonzero(ran), start + actual_exec, computing),
        "time_sleeping": 0.0,
        "time_switching_off": 0.0,
        "time_switching_on": 0.0,
        "time_unavailable": 0.0,
    }
    states = result.machine_state_times
    if states is not None:  # machines slept or switched: the engine counted as Batsim does
        for name in ("computing", "idle", "sleeping", "switching_on", "switching_off"):
            values[f"time_{name}"] = float(states[name])
    return ScheduleSummary(values)


def write_outputs(result: SimulationResult, out_dir: str, prefix: str = "out") -> dict[str, str]:
    """Write out_jobs.csv, out_schedule.csv, out_consumed_energy.csv, out_pstate_changes.csv,
    out_machine_states.csv, timing.json and, for runs of the classic policies or HeteroEnv, overutilization.json."""
    os.makedirs(out_dir, exist_ok=True)
    paths = {name: os.path.join(out_dir, f"{prefix}_{name}.csv") for name in OUTPUT_NAMES}
    write_jobs(result, paths["jobs"])
    write_schedule(summarize(result), paths["schedule"])
    write_energy(result, paths["consumed_energy"])
    write_pstates(result, paths["pstate_changes"])
    write_machine_states(result, paths["machine_states"])
    paths["timing"] = os.path.join(out_dir, "timing.json")
    with open(paths["timing"], "w") as f:
        json.dump({"simulation_seconds": result.wall_seconds,
                   "scheduling_seconds": result.scheduling_seconds}, f, indent=2)
        f.write("\n")
    if result.overutilization is not None:
        paths["overutilization"] = os.path.join(out_dir, "overutilization.json")
        with open(paths["overutilization"], "w") as f:
            f.write(_overutilization_text(result.overutilization.as_json()))
    return paths


def _overutilization_text(doc: dict) -> str:
    """One top-level key per line, each value on its line: json's indented writer is pure
    Python, and one line per blocked pass (117,711 on a 100,000-job run) took 0.2 s."""
    return "{\n" + ",\n".join(f" {json.dumps(key)}: {json.dumps(value)}" for key, value in doc.items()) + "\n}\n"


def _batsim_job_times(result: SimulationResult) -> tuple[np.ndarray, ...]:
    """Execution, finish, waiting, turnaround and stretch per job as Batsim computes them:
    in long double from its start and run time (1e-5 s for a task of zero work), then
    rounded to double (export.cpp), so that the 6 printed decimals are Batsim's."""
    L = np.longdouble
    w = result.workload
    start = result.start.astype(L)
    runtime = result.finish.astype(L) - start
    zero_work = (w.kind != KIND_DELAY) & (w.work == 0) & (result.final_state == SUCCESS)
    runtime[zero_work] = L(ZERO_WORK_RECORDED_DURATION_TEXT)
    subtime = w.subtime.astype(L)
    turnaround = start + runtime - subtime
    with np.errstate(divide="ignore", invalid="ignore"):
        stretch = turnaround / runtime
    return (runtime.astype(np.float64), (start + runtime).astype(np.float64),
            (start - subtime).astype(np.float64), turnaround.astype(np.float64), stretch.astype(np.float64))


def write_jobs(result: SimulationResult, path: str) -> None:
    # Column by column on Python floats, then one %-operation over all rows: per-cell calls
    # on numpy scalars made this file the slowest part of a 100,000-job run.
    w = result.workload
    order = np.asarray(result.job_order, dtype=np.int64)
    execution, finish, waiting, turnaround, stretch = _batsim_job_times(result)

    def column(values) -> list[float]:
        return np.asarray(values, dtype=np.float64)[order].tolist()

    walltime = w.walltime[order]
    state = np.asarray(result.final_state)[order].tolist()
    stretch = [x if ran else "inf" for x, ran in zip(map(_f6, column(stretch)), (execution[order] > 0).tolist())]
    names = result.job_workload or (result.workload_name,) * w.nb_jobs
    intervals = iter(format_allocations(result.alloc, [j for j, s in zip(order.tolist(), state)
                                                        if s != REJECTED_STATE]))
    ids, profiles = w.job_ids, w.profile_names
    columns = zip(order.tolist(), column(w.subtime), w.res[order].tolist(),
                  np.where(np.isfinite(walltime), walltime, -1.0).tolist(), state, column(result.start),
                  column(execution), column(finish), column(waiting), column(turnaround), stretch,
                  column(result.job_energy))
    # Joined by hand as Batsim does, not csv.writer: it cannot write metadata as "" and is no faster.
    head = "%s,%s,%s,%.6f,%d,%.6f,"
    ran_row = head + '%s,%s,%.6f,%.6f,%.6f,%.6f,%.6f,%s,%s,%.6f,""\n'
    rejected_row = head + '0,REJECTED,,,,,,,,,""\n'
    templates, values = [], []
    for j, subtime, res, requested, s, start, run, end, wait, around, slowdown, joules in columns:
        if s == REJECTED_STATE:
            templates.append(rejected_row)
            values += (_csv_field(ids[j]), _csv_field(names[j]), _csv_field(profiles[j]), subtime, res, requested)
        else:
            templates.append(ran_row)
            values += (_csv_field(ids[j]), _csv_field(names[j]), _csv_field(profiles[j]), subtime, res, requested,
                       "1" if s == SUCCESS else "0", FINAL_STATE_NAMES[s], start, run, end, wait, around,
                       slowdown, next(intervals), joules)
    with open(path, "w", newline="") as f:
        f.write(",".join(JOB_COLUMNS) + "\n")
        f.write("".join(templates) % tuple(values))


def _csv_field(text: str) -> str:
    # Profile names and ids never hold commas in practice; quote them if they do.
    if "," in text and not text.startswith('"'):
        return '"' + text.replace('"', '""') + '"'
    return text


def write_schedule(summary: ScheduleSummary, path: str) -> None:
    with open(path, "w", newline="") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(SCHEDULE_COLUMNS)
        row = []
        for key in SCHEDULE_COLUMNS:
            v = summary.values[key]
            row.append(_f6(v) if isinstance(v, float) else str(v))
        writer.writerow(row)


def write_energy(result: SimulationResult, path: str) -> None:
    # Two rows per job: formatted with one %-operation over all rows, which is twice as fast
    # as a format call per row on a 100,000-job run.
    rows = result.energy_rows
    columns = getattr(rows, "columns", None)  # the fast path's flat arrays
    if columns is not None:
        time, energy, kind, wattmin, epower = columns()
    else:
        time, energy, kind, wattmin, epower = (list(column) for column in zip(*rows)) if len(rows) else [[]] * 5
    epower = ["NA" if p is None or p != p else "%.6f" % p for p in epower]
    values = [value for row in zip(time, energy, kind, wattmin, epower) for value in row]
    with open(path, "w", newline="") as f:
        f.write(",".join(ENERGY_COLUMNS) + "\n")
        f.write("%.6f,%.6f,%s,%.6f,%s\n" * len(epower) % tuple(values))


def write_pstates(result: SimulationResult, path: str) -> None:
    with open(path, "w", newline="") as f:
        f.write(",".join(PSTATE_COLUMNS) + "\n")
        for t, machines, p in result.pstate_rows:
            f.write(f"{t:g},{format_intervals(machines)},{p}\n")


def machine_state_rows(result: SimulationResult) -> tuple[np.ndarray, np.ndarray]:
    """The rows of out_machine_states.csv: (time, nb_computing) per row.

    Batsim 4.2.1 writes a row after every job start and every job end (the whole allocation
    changes state at once: Machines::update_machines_on_job_run / _on_job_end in
    src/machines.cpp) and one per p-state request (server_on_pstate_modification in
    src/server.cpp); never an initial or a final row. Our machines are idle or computing only,
    so the sleeping and switching columns are 0 and nb_idle is the rest of the machines.

    The order of the events comes from the energy rows the engine records ('s' per start,
    'e' per end, two 'p' per p-state request, in the order Batsim writes them): ends follow
    ``job_order``; starts at one instant follow ``start_order`` (the order in which the
    scheduler sent them) when the result keeps it, else the job index.
    Without energy rows (``record_energy_rows=False``) the order within an instant is an
    approximation: ends, then p-state requests, then starts."""
    w = result.workload
    state = np.asarray(result.final_state)
    start = np.asarray(result.start, dtype=np.float64)
    started = np.flatnonzero(np.isfinite(start))
    if result.start_order is not None and len(result.start_order) == started.size:
        started = np.asarray(result.start_order, dtype=np.int64)
    starts = started[np.argsort(start[started], kind="stable")]
    order = np.asarray(result.job_order, dtype=np.int64)
    ends = order[(state[order] != REJECTED_STATE) & (state[order] != 0)]
    res = np.asarray(w.res, dtype=np.int64)
    # The clock when a job ended: a zero-work parallel job ends at its start (written +1e-5).
    zero_work = (w.kind != KIND_DELAY) & (w.work == 0) & (state == SUCCESS)
    end_clock = np.where(zero_work, start, np.asarray(result.finish, dtype=np.float64))

    kinds, times = _energy_kinds(result.energy_rows)
    if (kinds is not None and int((kinds == ord("s")).sum()) == starts.size
            and int((kinds == ord("e")).sum()) == ends.size and int((kinds == ord("p")).sum()) % 2 == 0):
        is_p = kinds == ord("p")
        second_p = is_p & (np.cumsum(is_p) % 2 == 0)
        keep = (kinds == ord("s")) | (kinds == ord("e")) | second_p
        delta = np.zeros(kinds.size, dtype=np.int64)
        delta[kinds == ord("s")] = res[starts]
        delta[kinds == ord("e")] = -res[ends]
        return times[keep], np.cumsum(delta)[keep]
    # No energy rows: merge by time; ends, then p-state requests, then starts, then the ends
    # of the jobs that started and ended at once.
    requests = np.array([t for t, _, p in result.pstate_rows if p < 0], dtype=np.float64)
    instant = np.zeros(state.size, dtype=bool)
    instant[starts] = True
    instant &= end_clock <= start
    event_time = np.concatenate((end_clock[ends], requests, start[starts]))
    rank = np.concatenate((np.where(instant[ends], 3, 0), np.ones(requests.size, np.int64),
                           np.full(starts.size, 2)))
    delta = np.concatenate((-res[ends], np.zeros(requests.size, np.int64), res[starts]))
    sequence = np.arange(event_time.size)
    events = np.lexsort((sequence, rank, event_time))
    return event_time[events], np.cumsum(delta[events])


def _energy_kinds(rows) -> tuple[np.ndarray | None, np.ndarray | None]:
    """The event kinds (as character codes) and times of the engine's energy rows."""
    columns = getattr(rows, "_columns", None)  # the fast path's flat arrays
    if columns is not None:
        return np.asarray(columns[2], dtype=np.int64), np.asarray(columns[0], dtype=np.float64)
    if not len(rows):
        return None, None
    return (np.fromiter((ord(r[2]) for r in rows), dtype=np.int64, count=len(rows)),
            np.fromiter((r[0] for r in rows), dtype=np.float64, count=len(rows)))


def write_machine_states(result: SimulationResult, path: str) -> None:
    """out_machine_states.csv as Batsim 4.2.1 writes it (MachineStateTracer in src/export.cpp:
    times with %g, six significant digits). In runs where machines slept or switched, the
    engine's own rows (written at the same events, with the sleeping and switching counts)."""
    if result.machine_state_rows is not None:
        rows = result.machine_state_rows
        with open(path, "w", newline="") as f:
            f.write(",".join(MACHINE_STATE_COLUMNS) + "\n")
            f.write("%g,%d,%d,%d,%d,%d\n" * len(rows) % tuple(v for row in rows for v in row))
        return
    times, computing = machine_state_rows(result)
    idle = result.nb_machines - computing
    values = [v for row in zip(times.tolist(), idle.tolist(), computing.tolist()) for v in row]
    with open(path, "w", newline="") as f:
        f.write(",".join(MACHINE_STATE_COLUMNS) + "\n")
        f.write("%g,0,0,0,%d,%d\n" * times.size % tuple(values))


def write_users(workload, out_dir: str, prefix: str = "out") -> str | None:
    """Write ``<prefix>_users.csv`` (job_id,user) for the jobs of ``workload`` (a
    :class:`~hdeeprm.inputs.workload.model.Workload`) that name their user in the extra field
    ``user`` (kept from SWF field 12 by the converter, or as read from a Batsim JSON job).
    Writes nothing and returns None when no job names one; else returns the path."""
    rows = [(job.id, job.extra["user"]) for job in workload.jobs if job.extra.get("user") is not None]
    if not rows:
        return None
    path = os.path.join(out_dir, f"{prefix}_users.csv")
    with open(path, "w", newline="") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(USER_COLUMNS)
        writer.writerows(rows)
    return path
