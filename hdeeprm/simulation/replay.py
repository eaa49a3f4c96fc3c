"""Re-simulate a recorded Batsim run on the embedded engine.

A scenario folder holds ``platform.xml``, ``workload.json``, optionally ``hierarchy.json``,
and ``transcript.jsonl`` (or ``.jsonl.gz``): every message Batsim and the decision process
exchanged, one JSON object per line, ``{"from": "batsim"|"scheduler", "msg": {...}}``.
Replay applies the scheduler's recorded decisions at their recorded times and lets the engine
compute everything else (durations, kills, energy), so its outputs can be compared with the
ones Batsim wrote.
"""

from __future__ import annotations

import gzip
import json
import os
import zlib
from dataclasses import dataclass
from typing import Iterator

from hdeeprm.common.checks import is_finite_number
from hdeeprm.common.errors import HDeepRMError, ReplayError
from hdeeprm.inputs.platform import load_platform
from hdeeprm.inputs.workload import read_batsim_workload
from hdeeprm.simulation.engine import FINISHED, QUEUED, REJECTED, Engine, SimulationResult
from hdeeprm.simulation.intervals import parse_intervals

# Batsim prints times with 6 decimals; our clock may disagree with the printed one by this
# much plus SimGrid's floating-point noise before we call it a divergence.
_TIME_SLACK = 1e-5


@dataclass(frozen=True)
class Scenario:
    platform: str
    workload: str
    transcript: str
    hierarchy: str | None


def find_scenario(folder: str) -> Scenario:
    def need(name: str) -> str:
        path = os.path.join(folder, name)
        if not os.path.isfile(path):
            raise ReplayError(f"{folder}: no {name} in the scenario folder")
        return path

    transcript = None
    for name in ("transcript.jsonl", "transcript.jsonl.gz"):
        if os.path.isfile(os.path.join(folder, name)):
            transcript = os.path.join(folder, name)
            break
    if transcript is None:
        raise ReplayError(f"{folder}: no transcript.jsonl or transcript.jsonl.gz in the scenario folder")
    hierarchy = os.path.join(folder, "hierarchy.json")
    return Scenario(need("platform.xml"), need("workload.json"), transcript,
                    hierarchy if os.path.isfile(hierarchy) else None)


def read_transcript(path: str) -> Iterator[tuple[int, str, dict]]:
    """(line number, sender, message) for every line of a transcript, each record's shape
    checked (see :func:`check_record`): a file that is not UTF-8 text, a truncated or corrupt
    gzip file or a malformed record is a ReplayError naming the file and the line."""
    gzipped = path.endswith(".gz")
    try:
        f = gzip.open(path, "rb") if gzipped else open(path, "rb")
    except OSError as e:
        raise ReplayError(f"{path}: cannot read the transcript: {e.strerror or e}") from None
    with f:
        lineno = 0
        while True:
            try:
                raw = f.readline()
            except (EOFError, zlib.error, gzip.BadGzipFile, OSError) as e:
                what = "truncated" if isinstance(e, EOFError) else "corrupt"
                raise ReplayError(f"{path}: line {lineno + 1}: {what} gzip data: {_cut(str(e))}") from None
            if not raw:
                return
            lineno += 1
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as e:
                raise ReplayError(f"{path}: line {lineno}: not UTF-8 text (byte 0x{raw[e.start]:02x} at "
                                  f"column {e.start + 1}); expected one JSON object per line") from None
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except RecursionError:
                raise ReplayError(f"{path}: line {lineno}: JSON nested too deeply; expected a transcript record "
                                  "({\"from\": ..., \"msg\": ...})") from None
            except ValueError as e:  # json.JSONDecodeError, or an integer with too many digits
                raise ReplayError(f"{path}: line {lineno}: not a transcript record "
                                  f"({{\"from\": ..., \"msg\": ...}}): {_cut(str(e))}") from None
            sender, msg = check_record(record, f"{path}: line {lineno}")
            yield lineno, sender, msg


SENDERS = ("batsim", "scheduler")
# Events whose data must name one job (a string, data.job_id).
_JOB_EVENTS = ("JOB_SUBMITTED", "JOB_COMPLETED", "EXECUTE_JOB", "REJECT_JOB")


def check_record(record, where: str) -> tuple[str, dict]:
    """(sender, message) of one transcript record after checking the fields replay reads:
    ``{"from": "batsim"|"scheduler", "msg": {"now": NUMBER, "events": [{"type": STRING,
    "timestamp": NUMBER, "data": {...}}, ...]}}`` and, per event type, the data it uses
    (``job_id`` a string, ``alloc`` and ``resources`` interval strings, ``state`` an integer
    or its text, ``job_ids`` a list of strings, ``timestamp`` a number). ReplayError
    ``"WHERE: ..."`` otherwise."""
    def fail(place: str, expected: str, value) -> ReplayError:
        return ReplayError(f"{where}: {place}: expected {expected}, got {_cut(repr(value))}")

    if not isinstance(record, dict):
        raise fail("record", 'an object {"from": ..., "msg": ...}', record)
    for key in ("from", "msg"):
        if key not in record:
            raise ReplayError(f"{where}: not a transcript record ({{\"from\": ..., \"msg\": ...}}): "
                              f"no {key!r}")
    sender, msg = record["from"], record["msg"]
    if not isinstance(sender, str) or sender not in SENDERS:
        raise fail("from", '"batsim" or "scheduler"', sender)
    if not isinstance(msg, dict):
        raise fail("msg", "an object with now and events", msg)
    if "now" not in msg:
        raise ReplayError(f"{where}: msg.now: missing; expected the message's time in seconds")
    if not is_finite_number(msg["now"]):
        raise fail("msg.now", "a finite number of seconds", msg["now"])
    events = msg.get("events")
    if not isinstance(events, list):
        raise fail("msg.events", "a list of events", events) if "events" in msg else \
            ReplayError(f"{where}: msg.events: missing; expected a list of events")
    for i, event in enumerate(events):
        place = f"msg.events[{i}]"
        if not isinstance(event, dict):
            raise fail(place, 'an object {"type": ..., "data": {...}}', event)
        kind = event.get("type")
        if not isinstance(kind, str):
            raise fail(f"{place}.type", "an event type (a string)", kind) if "type" in event else \
                ReplayError(f"{where}: {place}.type: missing; expected an event type")
        if "timestamp" in event and not is_finite_number(event["timestamp"]):
            raise fail(f"{place}.timestamp", "a finite number of seconds", event["timestamp"])
        if "data" not in event:
            if kind in _JOB_EVENTS or kind in ("KILL_JOB", "SET_RESOURCE_STATE", "CALL_ME_LATER"):
                raise ReplayError(f"{where}: {place}.data: missing; {kind} needs its data")
            continue
        data = event["data"]
        if not isinstance(data, dict):
            raise fail(f"{place}.data", "an object", data)
        place = f"{place}.data"

        def need(key: str, ok, expected: str) -> None:
            if key not in data:
                raise ReplayError(f"{where}: {place}.{key}: missing; {kind} needs {expected}")
            if not ok(data[key]):
                raise fail(f"{place}.{key}", expected, data[key])

        if kind in _JOB_EVENTS:
            need("job_id", lambda v: isinstance(v, str), "a job id (a string)")
        if kind == "EXECUTE_JOB":
            need("alloc", lambda v: isinstance(v, str), "machine intervals such as \"0-3 5\" (a string)")
        elif kind == "KILL_JOB":
            need("job_ids", lambda v: isinstance(v, list) and all(isinstance(x, str) for x in v),
                 "a list of job ids (strings)")
        elif kind == "SET_RESOURCE_STATE":
            need("resources", lambda v: isinstance(v, str), "machine intervals such as \"0-3 5\" (a string)")
            need("state", _is_state, "a p-state (an integer >= 0, or its text)")
        elif kind == "CALL_ME_LATER":
            need("timestamp", is_finite_number, "a finite number of seconds")
    return sender, msg


def _is_state(value) -> bool:
    if isinstance(value, str):
        text = value.strip()
        return text.isdigit() and text.isascii() and len(text) <= 18
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 2**63


def _cut(text: str, limit: int = 80) -> str:
    return text if len(text) <= limit else text[:limit - 3] + "..."


@dataclass(frozen=True)
class DeliveryNote:
    """A Batsim message whose events the engine, fed the same decisions, has otherwise:
    ``split`` (the engine has these events at or before the message's time, Batsim delivered
    them in a later message), ``merged`` (Batsim delivered together events the engine has at
    different times) or ``shifted`` (Batsim's time differs from the engine's by more than
    its 6 printed decimals)."""

    line: int  # in the transcript
    time: float  # Batsim's now
    kind: str
    jobs: tuple[str, ...]
    detail: str

    def describe(self) -> str:
        jobs = ", ".join(self.jobs[:4]) + (f" and {len(self.jobs) - 4} more" if len(self.jobs) > 4 else "")
        return f"t={self.time:.6f} (transcript line {self.line}): {self.kind}: jobs {jobs}: {self.detail}"


class DeliveryTracker:
    """Compares the grouping and times of Batsim's messages with the engine's instants
    during a replay (see :class:`DeliveryNote`). Events are (kind, job) pairs, kind
    ``submitted`` or ``completed``."""

    # Batsim prints 6 decimals: its now may be up to half a microsecond from the real time.
    PRINT_SLACK = 5.5e-7

    def __init__(self, job_ids):
        self.job_ids = job_ids
        self.notes: list[DeliveryNote] = []
        self._engine_time: dict[tuple[str, int], float] = {}
        self._unreported: dict[tuple[str, int], float] = {}

    def on_instant(self, point) -> None:
        for kind, jobs in (("submitted", point.submitted), ("completed", point.completed)):
            for job in jobs:
                self._engine_time[(kind, job)] = point.time
                self._unreported[(kind, job)] = point.time

    def on_message(self, line: int, now: float, named: list[tuple[str, int]], check_splits: bool = True) -> None:
        times = {}
        for event in named:
            self._unreported.pop(event, None)
            if event in self._engine_time:
                times[event] = self._engine_time[event]
        if len(set(times.values())) > 1:
            lo, hi = min(times.values()), max(times.values())
            self._note(line, now, "merged", list(times),
                       f"Batsim sent them in one message; the engine has them from {lo:.9f} to "
                       f"{hi:.9f} ({hi - lo:.3g} s apart)")
        shifted = [e for e, t in times.items() if abs(t - now) > self.PRINT_SLACK]
        if shifted:
            t = times[shifted[0]]
            self._note(line, now, "shifted", shifted,
                       f"Batsim reported them at {now:.6f}, the engine has them at {t:.9f}")
        # SIMULATION_BEGINS comes before the submissions at t=0: not a split.
        late = [e for e, t in self._unreported.items() if t <= now + self.PRINT_SLACK] if check_splits else []
        if late:
            for event in late:
                del self._unreported[event]
            self._note(line, now, "split", late,
                       "the engine has them by this time, Batsim delivered them in a later message")

    def _note(self, line: int, now: float, kind: str, events, detail: str) -> None:
        jobs = tuple(f"{self.job_ids[job]} ({what})" for what, job in sorted(events, key=lambda e: e[1]))
        self.notes.append(DeliveryNote(line, now, kind, jobs, detail))


def replay(folder: str) -> SimulationResult:
    """Replay the scenario in ``folder`` and return the engine's result: in lockstep with
    Batsim's messages on SimGrid's clock when the engine makes every one of them (then the
    times are Batsim's to the bit), else following Batsim's printed times."""
    result, mismatch = replay_lockstep(folder)
    return result if mismatch is None else replay_with_notes(folder)[0]


def replay_lockstep(folder: str) -> tuple[SimulationResult | None, DeliveryNote | None]:
    """Run the engine on SimGrid's clock (``clock="simgrid"``) and answer each of its decision
    points with the scheduler's recorded reply, checking that each point is Batsim's message:
    same printed time, same jobs submitted and completed, same calls, p-state changes and end
    of submissions. Returns the result when every message matches, else the first mismatch."""
    scenario = find_scenario(folder)
    platform = load_platform(scenario.platform, hierarchy=scenario.hierarchy)
    workload = read_batsim_workload(scenario.workload)
    engine = Engine(platform, workload, energy_accounting=_energy_accounting(scenario.platform))
    ids = engine.jobs.job_ids
    index = {f"{workload.name}!{job_id}": i for i, job_id in enumerate(ids)}

    def job_of(text: str, lineno: int) -> int:
        try:
            return index[text]
        except KeyError:
            raise ReplayError(f"{scenario.transcript}: line {lineno}: unknown job {text!r}") from None

    def mismatch(lineno: int, now: float, jobs, detail: str) -> tuple[None, DeliveryNote]:
        names = tuple(sorted({f"{ids[j]} ({what})" for what, j in jobs}))
        return None, DeliveryNote(lineno, now, "other message", names, detail)

    for lineno, sender, msg in read_transcript(scenario.transcript):
        now = float(msg["now"])
        if sender == "scheduler":
            for event in msg["events"]:
                _apply(engine, event, now, lineno, job_of, scenario.transcript)
            continue
        kinds = [event["type"] for event in msg["events"]]
        if "SIMULATION_BEGINS" in kinds:
            continue
        if "SIMULATION_ENDS" in kinds:
            point = engine.next_decision_point()
            if point is not None:
                return mismatch(lineno, now, _events_of(point), f"Batsim ends the simulation; the engine "
                                f"has a decision point at {point.time:.9f}")
            return engine.result(), None
        batsim = {(("submitted" if e["type"] == "JOB_SUBMITTED" else "completed"),
                   job_of(e["data"]["job_id"], lineno))
                  for e in msg["events"] if e["type"] in ("JOB_SUBMITTED", "JOB_COMPLETED")}
        point = engine.next_decision_point()
        if point is None:
            return mismatch(lineno, now, batsim, "Batsim sends events after the engine's end")
        ours = _events_of(point)
        facts = (kinds.count("REQUESTED_CALL"), kinds.count("RESOURCE_STATE_CHANGED"),
                 any(e["type"] == "NOTIFY" and e.get("data", {}).get("type") == "no_more_static_job_to_submit"
                     for e in msg["events"]))
        if (float(f"{point.time:.6f}") != now or ours != batsim
                or facts != (point.requested_calls, len(point.pstate_changes), point.no_more_submissions)):
            only_batsim, only_ours = sorted(batsim - ours), sorted(ours - batsim)
            return mismatch(lineno, now, batsim ^ ours or batsim,
                            f"Batsim's message: {len(batsim)} jobs at {now:.6f}; the engine's SimGrid clock: "
                            f"{len(ours)} at {point.time:.9f}"
                            + (f"; only Batsim has {_names(ids, only_batsim)}" if only_batsim else "")
                            + (f"; only the engine has {_names(ids, only_ours)}" if only_ours else ""))
    return mismatch(0, engine.now, set(), "the transcript ends before SIMULATION_ENDS")


def has_links(platform_xml: str | os.PathLike) -> bool:
    """Whether a SimGrid platform declares links: Batsim's own messages then take time."""
    with open(platform_xml, encoding="utf-8", errors="replace") as f:
        return "<link " in f.read()


def _energy_accounting(platform_xml: str) -> str:
    """On a platform with links, Batsim's internal messages take time, so its first energy
    query (at the first submission, t=0 in the workload) lands just after t=0 and SimGrid
    bills every machine at its own p-state from the start: the engine's "ideal" accounting."""
    return "ideal" if has_links(platform_xml) else "batsim"


def _events_of(point) -> set[tuple[str, int]]:
    return {("submitted", j) for j in point.submitted} | {("completed", j) for j in point.completed}


def _names(ids, events) -> str:
    shown = ", ".join(f"{ids[j]} ({what})" for what, j in events[:4])
    return shown + (f" and {len(events) - 4} more" if len(events) > 4 else "")


def _apply(engine: Engine, event: dict, now: float, lineno: int, job_of, where: str) -> None:
    """Apply one of the scheduler's recorded decisions to ``engine`` now."""
    kind, data = event["type"], event.get("data", {})
    try:
        if kind == "EXECUTE_JOB":
            engine.execute(job_of(data["job_id"], lineno), parse_intervals(data["alloc"]))
        elif kind == "REJECT_JOB":
            engine.reject(job_of(data["job_id"], lineno))
        elif kind == "KILL_JOB":
            for job_id in data["job_ids"]:
                engine.kill(job_of(job_id, lineno))
        elif kind == "SET_RESOURCE_STATE":
            engine.set_pstate(parse_intervals(data["resources"]), int(data["state"]))
        elif kind == "CALL_ME_LATER":
            engine.call_me_later(float(data["timestamp"]))
        # Other events (notifications, queries) do not change the simulation.
    except HDeepRMError as e:
        raise ReplayError(f"{where}: line {lineno}: {kind} at {now:.6f}: {e}") from None


def replay_with_notes(folder: str) -> tuple[SimulationResult, list[DeliveryNote]]:
    """Replay the scenario in ``folder``; also returns where Batsim's messages grouped or
    timed events otherwise than the engine does (see :class:`DeliveryNote`)."""
    scenario = find_scenario(folder)
    platform = load_platform(scenario.platform, hierarchy=scenario.hierarchy)
    workload = read_batsim_workload(scenario.workload)
    engine = Engine(platform, workload, clock="exact",  # follows Batsim's printed times
                    energy_accounting=_energy_accounting(scenario.platform))
    tracker = DeliveryTracker(engine.jobs.job_ids)
    index = {f"{workload.name}!{job_id}": i for i, job_id in enumerate(engine.jobs.job_ids)}
    named: list[tuple[str, int]] = []  # jobs Batsim's last message said were submitted / done

    def job_of(text: str, lineno: int) -> int:
        try:
            return index[text]
        except KeyError:
            raise ReplayError(f"{scenario.transcript}: line {lineno}: unknown job {text!r}") from None

    for lineno, sender, msg in read_transcript(scenario.transcript):
        now = float(msg["now"])
        if sender == "batsim":
            named = []
            begins = False
            for event in msg["events"]:
                kind, data = event["type"], event.get("data", {})
                if kind == "JOB_SUBMITTED":
                    named.append(("submitted", job_of(data["job_id"], lineno)))
                elif kind == "JOB_COMPLETED":
                    named.append(("completed", job_of(data["job_id"], lineno)))
                begins = begins or kind == "SIMULATION_BEGINS"
            follow_batsim(engine, now, named, f"{scenario.transcript}: line {lineno}", tracker.on_instant)
            tracker.on_message(lineno, now, named, check_splits=not begins)
            continue
        for event in msg["events"]:
            kind, data = event["type"], event.get("data", {})
            when = float(event.get("timestamp", now))
            if when > engine.now:
                engine.run_until(when, tracker.on_instant)
            _apply(engine, event, when, lineno, job_of, scenario.transcript)
    engine.run_to_end()
    return engine.result(), tracker.notes


def follow_batsim(engine: Engine, now: float, named: list[tuple[str, int]], where: str,
                  on_instant=None) -> None:
    """Bring ``engine`` to Batsim's time ``now`` and step it until every job Batsim reported
    in its message (``("submitted" | "completed", job)`` pairs) is submitted or done.

    Batsim's clock and ours may disagree by floating-point noise, and Batsim prints times
    rounded to 6 decimals; a completion it reports at 10.000000 may be due at 10.0000001 here.
    Used by replay and by the Batsim backend's mirror engine. ``on_instant`` sees every
    instant the engine processes.
    """
    engine.run_until(now, on_instant)

    def pending():
        for what, job in named:
            state = engine.job_state[job]
            if what == "submitted" and state < QUEUED:
                return job
            if what == "completed" and state not in (FINISHED, REJECTED):
                return job
        return None

    while (job := pending()) is not None:
        point = engine.step_instant()
        if point is not None and on_instant is not None:
            on_instant(point)
        if point is None or engine.now > now + _TIME_SLACK:
            raise ReplayError(
                f"{where}: Batsim reported job {engine.jobs.job_ids[job]} at "
                f"{now:.6f} but the engine has it at {engine.now:.6f}; the platform or workload "
                f"does not match the transcript")
