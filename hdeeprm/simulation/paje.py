"""Batsim 4.2.1's Pajé trace (``PREFIX_schedule.trace``), written from a run's result.

What Batsim writes (class PajeTracer in src/export.cpp, called from src/machines.cpp and
src/jobs_execution.cpp):

- a fixed header: the Pajé event definitions, container, event, variable and state types,
  one container per machine (its id and host name), the Waiting and Launching values, and
  every machine set to Waiting, all at the simulation's start;
- at a job's start, for each of its machines in increasing id order, the machine set to the
  job's state value; that value is defined (``5 jWORKLOAD!ID ...``) just before its first use;
- at a job's end, for each machine in increasing id order, the machine set back to Waiting;
  a walltime kill, or a kill of a parallel task by the scheduler, is first marked by one
  event on the Killer container and one per machine. A scheduler's kill of a delay job kills
  its actor instead, so nothing but the Waiting states is written. Rejections write nothing;
- at the end, every machine container and then the root destroyed at the final clock.

Times are C's ``%lf`` (six decimals), which Python's ``%.6f`` reproduces.

Limits of reproducing it from the result:

- Batsim gives each job a colour from 64 hues that it shuffles with a fresh
  ``std::random_device`` seed on every run, so two runs of real Batsim differ in those
  colours. We write the hues in their unshuffled order unless ``colors`` is given (a test can
  pass the palette read from a Batsim trace and then compare the files byte for byte).
- Events of one instant come in the order of the engine's energy rows (one 's' per start and
  one 'e' per end, in Batsim's order); ends follow ``job_order``, but the result does not
  keep the order in which simultaneous starts were asked for, so starts of one instant follow
  the job index (which is the order of FCFS-like schedulers). A scheduler that starts jobs
  of one instant in another order gets the same lines in another order, unless the caller
  passes ``start_order`` (``hdeeprm batsim`` passes the order its scheduler asked). Without energy rows,
  an instant's ends come before its starts (zero-work jobs end after their start).
- Machines running several jobs at once (compute sharing) are not modelled by the engine.
- The containers are destroyed at ``result.end_time``, the engine's last clock. Batsim's clock
  also moves to the ``now`` of the scheduler's reply to SIMULATION_ENDS when that is later
  (its reply actor sleeps until then); ``hdeeprm batsim`` sets ``end_time`` to it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from hdeeprm.common.errors import ConfigError
from hdeeprm.inputs.workload.model import KIND_DELAY
from hdeeprm.simulation.engine import (
    KILLED,
    REJECTED_STATE,
    SUCCESS,
    WALLTIME_REACHED,
    SimulationResult,
)

#: Batsim draws job colours from this many evenly spaced hues (PajeTracer's constructor).
NB_COLORS = 64

# The header up to the containers, as PajeTracer::initialize prints it (trailing spaces kept).
_HEADER = """%EventDef PajeDefineContainerType 1
% Type string
% Alias string
% Name string
%EndEventDef

%EventDef PajeCreateContainer 2
% Time date 
% Type string  
% Alias string 
% Name string   
% Container string  
%EndEventDef

%EventDef PajeDestroyContainer 3
% Time date
% Name string 
% Type string
%EndEventDef

%EventDef PajeDefineStateType 4
% Alias string 
% Type string 
% Name string 
%EndEventDef

%EventDef PajeDefineEntityValue 5
% Alias string  
% Type string  
% Name string  
% Color color 
%EndEventDef

%EventDef PajeSetState 6
% Time date  
% Type string  
% Container string  
% Value string  
%EndEventDef 

%EventDef PajeDefineEventType 7
% Type string
% Alias string
% Name string
%EndEventDef

%EventDef PajeNewEvent 8
% Time date
% Type string
% Container string
% Value string
%EndEventDef

%EventDef PajeDefineVariableType 9
% Type string
% Alias string
% Name string
% Color string
%EndEventDef

%EventDef PajeSetVariable 10
% Time date
% Type string
% Container string
% Value double
%EndEventDef

# Container types creation
1 0 root_ct "Machines"
1 root_ct machine_ct "Machine"
1 0 scheduler_ct "Scheduler"
1 scheduler_ct killer_ct "Killer"

# Event types creation
7 killer_ct kk "Job kill"
7 machine_ct km "Job kill"

# Variable types creation
9 scheduler_ct vu_vt "Utilization" "0.0 0.5 0.0"

# Containers creation
"""


def _hsv_to_rgb(h: float) -> tuple[float, float, float]:
    """PajeTracer::hsv_to_rgb at full saturation and value, in the same float operations."""
    h /= 60
    i = math.floor(h)
    f = h - i
    p, q, t = 0.0, 1.0 - f, 1.0 - (1.0 - f)
    return ((1.0, t, p), (q, 1.0, p), (p, 1.0, t), (p, q, 1.0), (t, p, 1.0))[i] if i < 5 else (1.0, p, q)


def batsim_palette() -> list[str]:
    """Batsim's 64 job colours (``"r g b"`` with ``%lf``) before its random shuffle."""
    fraction = 360.0 / NB_COLORS
    return ["%.6f %.6f %.6f" % _hsv_to_rgb(i * fraction) for i in range(NB_COLORS)]


def _events(result: SimulationResult, start_order: Sequence[int] | None) -> list[tuple[bool, int]]:
    """(is_start, job) for every start and end, in the order Batsim traces them."""
    state = np.asarray(result.final_state)
    start = np.asarray(result.start, dtype=np.float64)
    started = np.flatnonzero(np.isfinite(start))
    if start_order is None:
        # Starts of one instant by job index: the result does not keep their request order.
        starts = started[np.argsort(start[started], kind="stable")].tolist()
    else:
        starts = [int(j) for j in start_order]
        if sorted(starts) != started.tolist():
            raise ConfigError("Pajé trace: start_order must list every job that started, once")
    order = np.asarray(result.job_order, dtype=np.int64)
    ends = order[(state[order] != REJECTED_STATE) & (state[order] != 0)].tolist()
    kinds = _energy_kinds(result.energy_rows)
    if kinds is not None:
        kinds = [k for k in kinds if k in "se"]
        if kinds.count("s") == len(starts) and kinds.count("e") == len(ends):
            # The engine wrote its energy rows at the same calls, in Batsim's order.
            next_start, next_end = iter(starts), iter(ends)
            return [(True, next(next_start)) if k == "s" else (False, next(next_end)) for k in kinds]
    # No energy rows: by time; an instant's ends (of jobs that started before it), then its
    # starts, then the ends of jobs that started at that instant.
    end_clock = _end_clock(result)
    keyed = [((start[j], 1, i), (True, j)) for i, j in enumerate(starts)]
    keyed += [((end_clock[j], 2 if end_clock[j] <= start[j] else 0, i), (False, j)) for i, j in enumerate(ends)]
    keyed.sort(key=lambda item: item[0])
    return [event for _, event in keyed]


def _energy_kinds(rows) -> list[str] | None:
    """The kinds ('s', 'e', 'p') of the engine's energy rows, or None when none were kept."""
    columns = getattr(rows, "_columns", None)  # the fast path's flat arrays
    if columns is not None:
        return [chr(int(k)) for k in np.asarray(columns[2]).tolist()]
    if not len(rows):
        return None
    return [row[2] for row in rows]


def _end_clock(result: SimulationResult) -> np.ndarray:
    """The clock when each job ended: a zero-work parallel job ends at its start (its
    recorded finish is start + 1e-5, which Batsim writes in out_jobs.csv only)."""
    w = result.workload
    state = np.asarray(result.final_state)
    start = np.asarray(result.start, dtype=np.float64)
    zero_work = (np.asarray(w.kind) != KIND_DELAY) & (np.asarray(w.work) == 0) & (state == SUCCESS)
    return np.where(zero_work, start, np.asarray(result.finish, dtype=np.float64))


def paje_trace_text(result: SimulationResult, host_names: Sequence[str],
                    colors: Sequence[str] | None = None, start_order: Sequence[int] | None = None) -> str:
    """The text of Batsim's ``PREFIX_schedule.trace`` for ``result``; ``host_names`` are the
    compute machines' names by id, ``colors`` the job colours in the order jobs first start
    (``"r g b"``, cycled; Batsim's unshuffled palette by default), ``start_order`` the jobs in
    the order they started, for a caller that kept it (by start time and job index otherwise)."""
    if len(host_names) != result.nb_machines:
        raise ConfigError(f"Pajé trace: {len(host_names)} host names for {result.nb_machines} machines")
    palette = list(colors) if colors is not None else batsim_palette()
    if not palette:
        raise ConfigError("Pajé trace: an empty colour palette")
    w = result.workload
    workload_of = result.job_workload or (result.workload_name,) * w.nb_jobs
    begin = "%.6f" % 0.0
    out = [_HEADER, f'2 {begin} root_ct root "Machines" 0\n']
    out += [f'2 {begin} machine_ct m{i} "{name}" root\n' for i, name in enumerate(host_names)]
    out.append(f'2 {begin} scheduler_ct sc "Scheduler" 0\n2 {begin} killer_ct k "Killer" sc\n\n'
               '# States creation\n4 machine_state machine_ct "Machine state"\n\n'
               '# Creation of the different values the machine state can be\n'
               '5 w machine_state "Waiting" "0.0 0.0 0.0"\n5 l machine_state "Launching" "0.3 0.3 0.3"\n\n'
               '# Begin of events\n')
    out += [f"6 {begin} machine_state m{i} w\n" for i in range(result.nb_machines)]

    state = np.asarray(result.final_state)
    start = np.asarray(result.start, dtype=np.float64)
    end_clock = _end_clock(result)
    kind = np.asarray(w.kind)
    nb_registered = 0
    for is_start, j in _events(result, start_order):
        name = f"{workload_of[j]}!{w.job_ids[j]}"
        machines = np.sort(np.asarray(result.alloc[j], dtype=np.int64)).tolist()
        if is_start:
            t = "%.6f" % start[j]
            # The job's state value is defined at its first use (PajeTracer::register_new_job).
            out.append(f'5 j{name} machine_state "{name}" "{palette[nb_registered % len(palette)]}"\n')
            nb_registered += 1
            out += [f"6 {t} machine_state m{m} j{name}\n" for m in machines]
            continue
        t = "%.6f" % end_clock[j]
        # A killed delay job's actor is killed outright: no kill events (killer_process).
        if state[j] == WALLTIME_REACHED or (state[j] == KILLED and kind[j] != KIND_DELAY):
            out.append(f'8 {t} kk k "{name}"\n')
            out += [f'8 {t} km m{m} "{name}"\n' for m in machines]
        out += [f"6 {t} machine_state m{m} w\n" for m in machines]

    end = "%.6f" % result.end_time
    out.append("\n# End of events, containers destruction\n")
    out += [f"3 {end} m{i} machine_ct\n" for i in range(result.nb_machines)]
    out.append(f"3 {end} root root_ct\n")
    return "".join(out)


def write_paje_trace(result: SimulationResult, path: str, host_names: Sequence[str],
                     colors: Sequence[str] | None = None, start_order: Sequence[int] | None = None) -> None:
    """Write :func:`paje_trace_text` to ``path`` (Batsim's ``PREFIX_schedule.trace``)."""
    with open(path, "w", newline="") as f:
        f.write(paje_trace_text(result, host_names, colors, start_order))
