"""Batsim 4 protocol messages as typed values, with their JSON encoding.

Every message, in both directions, is ``{"now": t, "events": [{"timestamp": t, "type": T,
"data": {...}}, ...]}``. Each event type is a frozen dataclass below; ``decode`` turns bytes
into a :class:`Message` of them and ``encode`` does the reverse. Fields the classes do not
name are kept in ``extra`` so that ``decode(encode(m)) == m`` and nothing Batsim sends is
lost. An event type this module does not know becomes an :class:`UnknownEvent` (newer Batsim
versions add some), which is kept and re-encoded as it came.

Machine ids inside messages are Batsim's ids (interval-set strings such as ``"0-3 7"``);
translating them to the platform's machine ids is the backend's job.
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass, field, fields
from typing import Any, ClassVar, Mapping

from hdeeprm.common.errors import BatsimError


@dataclass(frozen=True, kw_only=True)
class Event:
    """One event of a message; ``TYPE`` is its protocol name."""

    TYPE: ClassVar[str] = ""
    timestamp: float
    extra: Mapping[str, Any] = field(default_factory=dict, compare=True)

    def data(self) -> dict[str, Any]:
        out = {f.name: getattr(self, f.name) for f in fields(self)
               if f.name not in ("timestamp", "extra")}
        out = {key: _plain(value) for key, value in out.items() if value is not None}
        for key, value in self.extra.items():
            out.setdefault(key, value)
        return out


def _plain(value: Any) -> Any:
    """Tuples (kept in the frozen events) as JSON lists."""
    return list(value) if isinstance(value, tuple) else value


# ---------------------------------------------------------------------------- Batsim -> us


@dataclass(frozen=True)
class ComputeResource:
    id: int
    name: str
    state: str = "idle"
    properties: Mapping[str, Any] = field(default_factory=dict)
    extra: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, kw_only=True)
class SimulationBegins(Event):
    TYPE: ClassVar[str] = "SIMULATION_BEGINS"
    nb_compute_resources: int
    compute_resources: tuple[ComputeResource, ...]
    profiles: Mapping[str, Any] = field(default_factory=dict)
    workloads: Mapping[str, Any] = field(default_factory=dict)

    def data(self) -> dict[str, Any]:
        out = {"nb_compute_resources": self.nb_compute_resources,
               "compute_resources": [
                   {"id": r.id, "name": r.name, "state": r.state, "properties": dict(r.properties),
                    **r.extra} for r in self.compute_resources],
               "profiles": self.profiles, "workloads": self.workloads}
        for key, value in self.extra.items():
            out.setdefault(key, value)
        return out

    @property
    def names_by_id(self) -> dict[int, str]:
        return {r.id: r.name for r in self.compute_resources}


@dataclass(frozen=True, kw_only=True)
class JobSubmitted(Event):
    TYPE: ClassVar[str] = "JOB_SUBMITTED"
    job_id: str


@dataclass(frozen=True, kw_only=True)
class JobCompleted(Event):
    TYPE: ClassVar[str] = "JOB_COMPLETED"
    job_id: str
    job_state: str
    return_code: int | None = None
    alloc: str | None = None


@dataclass(frozen=True, kw_only=True)
class JobKilled(Event):
    TYPE: ClassVar[str] = "JOB_KILLED"
    job_ids: tuple[str, ...]


@dataclass(frozen=True, kw_only=True)
class ResourceStateChanged(Event):
    TYPE: ClassVar[str] = "RESOURCE_STATE_CHANGED"
    resources: str
    state: str


@dataclass(frozen=True, kw_only=True)
class RequestedCall(Event):
    TYPE: ClassVar[str] = "REQUESTED_CALL"


@dataclass(frozen=True, kw_only=True)
class SimulationEnds(Event):
    TYPE: ClassVar[str] = "SIMULATION_ENDS"


@dataclass(frozen=True, kw_only=True)
class Notify(Event):
    """Both directions; Batsim sends ``no_more_static_job_to_submit``."""

    TYPE: ClassVar[str] = "NOTIFY"
    type: str

    NO_MORE_STATIC_JOBS: ClassVar[str] = "no_more_static_job_to_submit"


@dataclass(frozen=True, kw_only=True)
class Answer(Event):
    TYPE: ClassVar[str] = "ANSWER"


# ---------------------------------------------------------------------------- us -> Batsim


@dataclass(frozen=True, kw_only=True)
class ExecuteJob(Event):
    TYPE: ClassVar[str] = "EXECUTE_JOB"
    job_id: str
    alloc: str


@dataclass(frozen=True, kw_only=True)
class RejectJob(Event):
    TYPE: ClassVar[str] = "REJECT_JOB"
    job_id: str


@dataclass(frozen=True, kw_only=True)
class KillJob(Event):
    TYPE: ClassVar[str] = "KILL_JOB"
    job_ids: tuple[str, ...]


@dataclass(frozen=True, kw_only=True)
class SetResourceState(Event):
    TYPE: ClassVar[str] = "SET_RESOURCE_STATE"
    resources: str
    state: str


@dataclass(frozen=True, kw_only=True)
class CallMeLater(Event):
    TYPE: ClassVar[str] = "CALL_ME_LATER"
    # ``at`` rather than the protocol's ``timestamp``, which every event already has.
    at: float

    def data(self) -> dict[str, Any]:
        return {"timestamp": self.at, **self.extra}


@dataclass(frozen=True, kw_only=True)
class Query(Event):
    TYPE: ClassVar[str] = "QUERY"


@dataclass(frozen=True, kw_only=True)
class UnknownEvent(Event):
    """An event type this module does not model, kept as received."""

    type: str

    def data(self) -> dict[str, Any]:
        return dict(self.extra)


EVENT_TYPES: dict[str, type[Event]] = {cls.TYPE: cls for cls in (
    SimulationBegins, JobSubmitted, JobCompleted, JobKilled, ResourceStateChanged, RequestedCall,
    SimulationEnds, Notify, Answer, ExecuteJob, RejectJob, KillJob, SetResourceState, CallMeLater,
    Query)}


@dataclass(frozen=True)
class Message:
    now: float
    events: tuple[Event, ...] = ()

    def as_json(self) -> dict[str, Any]:
        return {"now": self.now, "events": [
            {"timestamp": e.timestamp, "type": e.type if isinstance(e, UnknownEvent) else e.TYPE,
             "data": e.data()} for e in self.events]}


def encode(message: Message) -> bytes:
    # allow_nan=False: Batsim's JSON parser rejects NaN and Infinity.
    try:
        return json.dumps(message.as_json(), separators=(",", ":"), allow_nan=False).encode()
    except ValueError as e:
        raise BatsimError(f"cannot encode a message for Batsim: {e}") from None


def decode(raw: bytes | str) -> Message:
    """Parse one protocol message; a malformed one raises :class:`BatsimError` naming the
    event and field."""
    try:
        doc = json.loads(raw.decode() if isinstance(raw, bytes) else raw)  # str: no encoding sniffing
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise BatsimError(f"Batsim message is not JSON: {e}") from None
    return from_json(doc)


def from_json(doc: Any) -> Message:
    if not isinstance(doc, dict) or "now" not in doc or not isinstance(doc.get("events"), list):
        raise BatsimError('Batsim message: expected {"now": number, "events": [...]}')
    now = _number(doc["now"], "now")
    return Message(now, tuple(_event(e, i) for i, e in enumerate(doc["events"])))


def _event(doc: Any, index: int) -> Event:
    where = f"Batsim message: events[{index}]"
    if not isinstance(doc, dict) or not isinstance(doc.get("type"), str):
        raise BatsimError(f'{where}: expected {{"timestamp": number, "type": string, "data": {{...}}}}')
    kind = doc["type"]
    timestamp = _number(doc.get("timestamp"), f"events[{index}].timestamp")
    data = doc.get("data", {})
    if not isinstance(data, dict):
        raise BatsimError(f"{where} ({kind}): data must be an object")
    cls = EVENT_TYPES.get(kind)
    if cls is None:
        return UnknownEvent(timestamp=timestamp, type=kind, extra=data)
    try:
        return _build(cls, timestamp, data)
    except (KeyError, TypeError, ValueError) as e:
        raise BatsimError(f"{where} ({kind}): missing or malformed field {e}") from None


def _build(cls: type[Event], timestamp: float, data: dict) -> Event:
    if cls is SimulationBegins:
        resources = tuple(ComputeResource(
            id=int(r["id"]), name=str(r["name"]), state=r.get("state", "idle"),
            properties=r.get("properties", {}),
            extra={k: v for k, v in r.items() if k not in ("id", "name", "state", "properties")})
            for r in data["compute_resources"])
        named = ("nb_compute_resources", "compute_resources", "profiles", "workloads")
        return SimulationBegins(timestamp=timestamp, nb_compute_resources=int(data["nb_compute_resources"]),
                                compute_resources=resources, profiles=data.get("profiles", {}),
                                workloads=data.get("workloads", {}),
                                extra={k: v for k, v in data.items() if k not in named})
    if cls is CallMeLater:
        return CallMeLater(timestamp=timestamp, at=_number(data["timestamp"], "data.timestamp"),
                           extra={k: v for k, v in data.items() if k != "timestamp"})
    names = _field_names(cls)
    values = {}
    for name in names:
        if name in data:
            value = data[name]
            values[name] = tuple(value) if isinstance(value, list) else value
        elif _required(cls, name):
            raise KeyError(name)
    return cls(timestamp=timestamp, extra={k: v for k, v in data.items() if k not in names}, **values)


@functools.cache
def _field_names(cls: type[Event]) -> tuple[str, ...]:
    return tuple(f.name for f in fields(cls) if f.name not in ("timestamp", "extra"))


def _required(cls: type[Event], name: str) -> bool:
    from dataclasses import MISSING

    f = next(f for f in fields(cls) if f.name == name)
    return f.default is MISSING and f.default_factory is MISSING


def _number(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise BatsimError(f"Batsim message: {where} must be a number, got {value!r}")
    return float(value)
