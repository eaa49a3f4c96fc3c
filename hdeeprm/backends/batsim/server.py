"""Batsim's side of the protocol, answered by the embedded engine: a drop-in Batsim.

:class:`Conversation` plays what Batsim 4.2.1 does with a decision process (the scheduler):
it sends SIMULATION_BEGINS, then one message per engine decision point (the engine's
``clock="simgrid"`` reproduces Batsim's grouping of events into messages and their times),
applies each reply's decisions as Batsim does, and ends with SIMULATION_ENDS.
:func:`serve` connects it to a scheduler over ZeroMQ as Batsim does (a REQ socket connected
to the scheduler's REP endpoint) and writes Batsim's output files; ``hdeeprm batsim`` is its
command line (:mod:`hdeeprm.cli.batsim_command`).

What a reply does, as in Batsim's protocol.cpp and server.cpp:
- each event applies at ``max(clock, its timestamp)`` and the reply ends at ``max(clock,
  now)``: when they are later than the clock, Batsim's reply actor sleeps in simulated time
  first (the scheduler's "now" delays). Events that happen during such a sleep are sent
  together, in the next message;
- EXECUTE_JOB, REJECT_JOB, KILL_JOB (JOB_COMPLETED with COMPLETED_KILLED then JOB_KILLED with
  each job's progress, in the next message), CALL_ME_LATER (REQUESTED_CALL), SET_RESOURCE_STATE
  (needs ``energy``; a computation p-state at once, RESOURCE_STATE_CHANGED in the next message;
  on platforms with Batsim's ``sleep_pstates``, switches off and on through the virtual p-states,
  acknowledged when every machine of the request has switched: where such an acknowledgement
  and job completions of one instant go in a message follows SimGrid's actor rounds, modelled
  by :mod:`.actor_rounds`), QUERY consumed_energy (needs
  ``energy``; ANSWER in the next message), NOTIFY (registration types: nothing to do);
- the dynamic-job events (REGISTER_JOB, REGISTER_PROFILE, SET_JOB_METADATA, CHANGE_JOB_STATE,
  TO_JOB_MSG) are not modelled: a :class:`BatsimError` says so.

Every float is sent rounded to 6 decimals, the value a scheduler parses from Batsim's
``%f``-printed numbers.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from hdeeprm.backends.batsim.messages import (
    CallMeLater,
    ExecuteJob,
    KillJob,
    Message,
    Notify,
    Query,
    RejectJob,
    SetResourceState,
    UnknownEvent,
    decode,
)
from hdeeprm.common.errors import BatsimError, SimulationError
from hdeeprm.simulation.intervals import format_intervals, parse_intervals

# Batsim's configuration block of SIMULATION_BEGINS (what 4.2.1 sends by default).
DEFAULT_CONFIG = {
    "redis-enabled": False, "redis-hostname": "127.0.0.1", "redis-port": 6379, "redis-prefix": "default",
    "profiles-forwarded-on-submission": False, "dynamic-jobs-enabled": False,
    "dynamic-jobs-acknowledged": False, "profile-reuse-enabled": False, "sched-config": "",
    "forward-unknown-events": False,
}

_UNMODELLED = ("REGISTER_JOB", "REGISTER_PROFILE", "SET_JOB_METADATA", "CHANGE_JOB_STATE", "TO_JOB_MSG")


def round6(value: Any) -> Any:
    """``value`` with every float as a scheduler reads it from Batsim's ``%f`` output."""
    if isinstance(value, float):
        return float(f"{value:.6f}") if value == value and abs(value) != float("inf") else value
    if isinstance(value, dict):
        return {k: round6(v) for k, v in value.items()}
    if isinstance(value, list):
        return [round6(v) for v in value]
    return value


def _t6(t: float) -> float:
    return float(f"{t:.6f}")


@dataclass
class BatsimRun:
    """The inputs of one drop-in Batsim run (what ``batsim``'s command line gives)."""

    platform: str
    workload: str
    export_prefix: str = "out"
    more_workloads: tuple[str, ...] = ()  # -w given again: workloads w1, w2, ... after ``workload`` (w0)
    energy: bool = False
    mmax: int = 0
    mmax_workload: bool = False
    master_host: str = "master_host"
    sched_config: str = ""
    forward_profiles: bool = False
    machine_states: bool = True
    schedule_trace: bool = True
    endpoint: str = "tcp://localhost:28000"
    assume_zero_latency: bool = False  # serve a platform where Batsim's own messages take time
    extra: dict = field(default_factory=dict)


def load_run(run: BatsimRun):
    """The engine, the SIMULATION_BEGINS data and the jobs' JSON descriptions of ``run``."""
    from hdeeprm.inputs.platform import load_xml_platform
    from hdeeprm.inputs.platform.xml_platform import message_delay_reason
    from hdeeprm.inputs.workload import read_batsim_workload
    from hdeeprm.inputs.workload.model import WorkloadArrays
    from hdeeprm.simulation.engine import Engine

    paths = (run.workload, *run.more_workloads)
    for path in (run.platform, *paths):
        if not os.path.isfile(path):
            raise FileNotFoundError(2, "no such file", path)
    platform = load_xml_platform(run.platform, master_host=run.master_host)
    if not run.assume_zero_latency:
        reason = message_delay_reason(run.platform)
        if reason is not None:
            raise BatsimError(f"{reason}. The engine simulates a network where they take no time, so it would "
                              "group simultaneous events otherwise than Batsim: use a Vivaldi zone with "
                              "coordinates 0 0 0 and no links, or pass --assume-zero-latency to run anyway")
    # One job submitter per workload, named w0, w1, ... in command-line order, as Batsim does.
    names = [f"w{k}" for k in range(len(paths))]
    workloads, raws = [], []
    for path in paths:
        workloads.append(read_batsim_workload(path).compile())
        try:
            with open(path, "rb") as f:
                raws.append(json.loads(f.read()))
        except ValueError as e:
            raise BatsimError(f"{path}: not JSON: {e}") from None
    limit = run.mmax
    sizes = [raw["nb_res"] for raw in raws if isinstance(raw.get("nb_res"), int)]
    if run.mmax_workload and sizes:  # src/batsim.cpp: the largest nb_res, within --mmax if given
        limit = min(limit, max(sizes)) if limit > 0 else max(sizes)
    if 0 < limit < platform.nb_machines:
        platform = _first_machines(platform, limit)
    engine = Engine(platform, WorkloadArrays.concatenate(workloads), workload_name=names[0],
                    submitters=[(name, w.nb_jobs) for name, w in zip(names, workloads)])
    properties = _host_properties(run.platform)
    resources = [{"id": i, "name": name, "state": "idle",
                  "properties": dict(sorted({"role": "", **properties.get(name, {})}.items())),
                  "zone_properties": {}} for i, name in enumerate(platform.host_names)]
    profiles = {name: round6(raw.get("profiles", {})) for name, raw in zip(names, raws)}
    config = dict(DEFAULT_CONFIG, **{"sched-config": run.sched_config,
                                     "profiles-forwarded-on-submission": run.forward_profiles})
    begins = {"nb_resources": len(resources), "nb_compute_resources": len(resources),
              "nb_storage_resources": 0, "allow_compute_sharing": False, "allow_storage_sharing": True,
              "config": config, "compute_resources": resources, "storage_resources": [],
              "workloads": {name: os.path.abspath(path) for name, path in zip(names, paths)},
              "profiles": profiles}
    job_json, job_profiles = [], []
    for name, w, raw in zip(names, workloads, raws):
        by_id = {str(job.get("id")): job for job in raw.get("jobs", []) if isinstance(job, dict)}
        for job_id in w.job_ids:
            doc = dict(by_id.get(str(job_id), {}))
            doc["id"] = f"{name}!{job_id}"
            job_json.append(round6(doc))
            job_profiles.append(profiles[name].get(doc.get("profile")))
    return engine, begins, job_json, (job_profiles if run.forward_profiles else None)


def _first_machines(platform, n: int):
    """``platform`` cut to its first ``n`` machines (Batsim's --mmax), sleep p-states kept."""
    from hdeeprm.inputs.platform.model import Platform
    from hdeeprm.inputs.platform.sleep import attach_sleep_states, build_sleep_states, sleep_states

    cut = Platform(platform.host_names[:n], platform.speeds[:n], platform.watts_idle[:n], platform.watts_full[:n],
                   platform.nb_pstates[:n], platform.initial_pstate[:n], None, platform.source)
    states = sleep_states(platform)
    if states is not None:
        attach_sleep_states(cut, build_sleep_states(cut.nb_pstates, list(states.triplets[:n])))
    return cut


def _host_properties(path: str) -> dict[str, dict[str, str]]:
    """Every host's ``<prop>`` elements (Batsim forwards them in SIMULATION_BEGINS)."""
    from hdeeprm.inputs.platform.xml_platform import parse_platform_xml

    root = parse_platform_xml(path)
    return {host.get("id"): {p.get("id"): p.get("value") for p in host.findall("prop")}
            for host in root.iter("host")}


class Conversation:
    """Batsim's side of one simulation on ``engine`` (a fresh ``Engine``, SimGrid clock).

    ``exchange(payload: bytes) -> bytes`` sends one message to the scheduler and returns its
    reply. ``batsim_of[m]`` is the Batsim id of our machine m (default: the same). ``begins``
    is SIMULATION_BEGINS' data and ``job_json`` each job's description (Batsim's ``job``
    field of JOB_SUBMITTED); both are made up from the engine's inputs when not given.
    ``profiles`` (forwarded on submission when given) is each job's profile JSON; job ids are
    ``WORKLOAD!ID`` with the job's workload name (the engine's, or ``workload_name``; with
    several workloads, the engine's ``job_workload``).
    """

    def __init__(self, engine, *, batsim_of=None, energy: bool = True, begins: dict | None = None,
                 job_json: list | None = None, profiles: list | None = None, workload_name: str | None = None):
        self.engine = engine
        n = engine.nb_machines
        self.batsim_of = np.arange(n, dtype=np.int64) if batsim_of is None else np.asarray(batsim_of, np.int64)
        self.ours_of = np.empty_like(self.batsim_of)
        self.ours_of[self.batsim_of] = np.arange(n)
        self.energy = energy
        jobs = engine.jobs
        workload_of = engine.job_workload or (workload_name or engine.workload_name,) * jobs.nb_jobs
        self.names = [f"{w}!{j}" for w, j in zip(workload_of, jobs.job_ids)]
        self.index = {name: i for i, name in enumerate(self.names)}
        self.job_json = job_json if job_json is not None else [self._job_doc(i) for i in range(jobs.nb_jobs)]
        self.begins = begins if begins is not None else self._default_begins()
        self.profiles = profiles
        self._extra: list[dict] = []  # ANSWER / JOB_KILLED events for the next message
        self._return_code: dict[int, int] = {}
        self.start_order: list[int] = []  # jobs in the order the scheduler started them
        # Which actor Batsim runs first when a sleep switch and a job end together (actor_rounds):
        # when each machine's energy was last brought up to date (all of them: _tracer_date),
        # and the (reply, round, rank) in which each job's and switch's activity was created.
        self._energy_date = np.full(n, -np.inf)
        self._tracer_date = -np.inf
        self._created_key: dict[int, tuple] = {}
        self._switch_key: dict[int, tuple] = {}
        self._starting: list[tuple] = []  # the actors the reply being applied creates
        from hdeeprm.inputs.platform.sleep import sleep_states

        self._sleepy = energy and sleep_states(engine.platform) is not None  # else no switch to place
        self.nb_messages = 0
        self.scheduler_seconds = 0.0
        self.end_time: float | None = None  # Batsim's last clock, once the run is over
        self._watch_order()

    def _watch_order(self) -> None:
        """Note the order in which the engine submits and ends jobs and ends sleep switches (its
        activities' creation order, which is Batsim's order inside a message); the engine's
        decision points keep submissions and completions apart."""
        self._order: list[tuple[str, int]] = []
        tag = {"submitted": "s", "ended": "e"}

        def note(kind: str, value) -> None:
            self._order.append(("p", id(value)) if kind == "switched" else (tag[kind], value))

        self.engine.observe(note)

    def _yields(self, item: tuple[str, int], fresh: bool) -> int:
        """With energy, a job's actor reads its machines' energy, then every machine's, before
        it sends its completion; if one of them is not up to date at this date (``fresh``
        False), that is a simcall, and the submitters' batches of the step (which read nothing)
        reach the server first. Otherwise the actors send in the order they woke: their
        activities' creation order."""
        return 0 if item[0] == "s" or not self.energy or fresh else 1

    def _step_updates(self, t: float, ends: list[int], switched: dict) -> bool:
        """Note the machines whose energy the activities ending in this step brought up to date
        (a switch's machine; Engine.machines_updated_by_end for a job); whether every machine
        is now up to date at ``t``. Over 50 random sleep runs against real Batsim the order
        inside every message agreed in all 50 this way (33 when a delay counted for no
        machine; SimGrid's ker_engine debug log shows the rounds: batsim ... --sg-log
        ker_engine.thres:debug)."""
        for hosts, _ in switched.values():
            self._energy_date[hosts] = t
        for j in ends:
            self._energy_date[self.engine.machines_updated_by_end(j)] = t
        return self._tracer_date == t or bool((self._energy_date == t).all())

    # ------------------------------------------------------------------ defaults

    def _job_doc(self, i: int) -> dict:
        jobs = self.engine.jobs
        walltime = float(jobs.walltime[i])
        return round6({"id": self.names[i], "subtime": float(jobs.subtime[i]),
                       "walltime": walltime if np.isfinite(walltime) else -1, "res": int(jobs.res[i]),
                       "profile": str(jobs.profile_names[i])})

    def _default_begins(self) -> dict:
        platform = self.engine.platform
        resources = [{"id": int(self.batsim_of[m]), "name": platform.host_names[m], "state": "idle",
                      "properties": {}} for m in np.argsort(self.batsim_of)]
        return {"nb_resources": len(resources), "nb_compute_resources": len(resources),
                "nb_storage_resources": 0, "allow_compute_sharing": False, "allow_storage_sharing": True,
                "config": dict(DEFAULT_CONFIG), "compute_resources": resources, "storage_resources": [],
                "workloads": {}, "profiles": {}}

    # ------------------------------------------------------------------ the run

    def run(self, exchange: Callable[[bytes], bytes]) -> None:
        engine = self.engine
        self._ask(exchange, 0.0, [_event(0.0, "SIMULATION_BEGINS", self.begins)])
        while True:
            if self._extra and not engine.message_due():
                # Only what the last reply caused (an ANSWER, a JOB_KILLED): a message of its own.
                t = _t6(engine.now)
                events, self._extra = self._extra, []
                self._ask(exchange, t, events)
                continue
            point = engine.next_decision_point()
            if point is None:
                break
            self._ask(exchange, _t6(point.time), self._events(point))
        end = _t6(engine.now)
        reply = self._ask(exchange, end, [_event(end, "SIMULATION_ENDS", {})], apply=False)
        # Batsim's reply actor sleeps until the reply's now before it acknowledges the end, so
        # its clock ends there (the Pajé trace's containers end then).
        self.end_time = max(end, reply.now)

    def _events(self, point) -> list[dict]:
        t = _t6(point.time)
        events = []
        position = {item: k for k, item in enumerate(self._order)}
        self._order = []
        # Batsim's order: what happened before the reply (in creation order, see _yields), then
        # what the reply's events did at once (p-state acknowledgements, answers), then its kills
        # (a killer actor, later).
        killed = [j for j in point.completed if j in self._return_code]
        switched = {id(hosts): (hosts, state) for hosts, state in point.pstate_changes
                    if ("p", id(hosts)) in position}
        items = [("s", j) for j in point.submitted] + [("e", j) for j in point.completed
                                                       if j not in self._return_code]
        fresh = self.energy and self._step_updates(point.time, [j for kind, j in items if kind == "e"], switched)
        items.sort(key=lambda item: (self._yields(item, fresh), position.get(item, -1)))
        if switched:
            items = self._place_switches(point.time, items, switched)
        if self.energy and any(kind == "e" for kind, _ in items):
            self._tracer_date = point.time  # each job end's energy row read every machine
        for kind, j in items:
            if kind == "e":
                events.append(self._completed(j))
                continue
            if kind == "p":
                events.append(self._state_changed(t, *switched[j]))
                continue
            data = {"job_id": self.names[j], "job": self.job_json[j]}
            if self.profiles is not None:
                data["profile"] = self.profiles[j]
            events.append(_event(t, "JOB_SUBMITTED", data))
        at_once = [self._state_changed(t, hosts, state) for hosts, state in point.pstate_changes
                   if id(hosts) not in switched]
        at_once += [e for e in self._extra if e["type"] != "JOB_KILLED"]
        if self.nb_messages == 1:  # the reply to SIMULATION_BEGINS acts before the first submissions
            events[:0] = at_once
        else:
            events += at_once
        events += [self._completed(j) for j in killed]
        events += [e for e in self._extra if e["type"] == "JOB_KILLED"]
        self._extra = []
        events += [_event(t, "REQUESTED_CALL", {})] * point.requested_calls
        if point.no_more_submissions:
            events.append(_event(t, "NOTIFY", {"type": Notify.NO_MORE_STATIC_JOBS}))
        return events

    def _up_to_date(self, t: float) -> set[int]:
        if self._tracer_date == t:
            return set(range(self.engine.nb_machines))
        return set(np.flatnonzero(self._energy_date == t).tolist())

    def _place_switches(self, t: float, items: list, switched: dict) -> list:
        """Put the sleep switches that ended in this step among its job ends as Batsim's actors
        send them: by the round in which each actor sends (a switch actor: the second; a job's:
        after reading its machines' energy, then every machine's), then, within a round, by
        the creation of their activities (SimGrid ends simultaneous activities in creation
        order; see actor_rounds)."""
        from hdeeprm.backends.batsim.actor_rounds import SWITCH, rounds

        engine = self.engine
        ends = [item for item in items if item[0] == "e"]
        every = list(range(engine.nb_machines))
        actors = [("e", j, ("reads", engine.alloc[j].tolist() + every)) for _, j in ends]
        actors += [("p", key, (SWITCH, hosts.tolist())) for key, (hosts, _) in switched.items()]
        created = [self._created_key.get(j, (0, 0.0, 0, 0)) if kind == "e" else
                   max(self._switch_key.get(h, (0, 0.0, 0, 0)) for h in switched[j][0].tolist())
                   for kind, j, _ in actors]
        order = sorted(range(len(actors)), key=lambda i: created[i])  # SimGrid's wake order
        sent = rounds([actors[i][2] for i in order], self._up_to_date(t))
        when = {(actors[i][0], actors[i][1]): (sent[k], created[i]) for k, i in enumerate(order)}
        first = [item for item in items if item[0] != "e"]  # submissions: at once
        return first + sorted(ends + [("p", key) for key in switched], key=when.__getitem__)

    def _note_creations(self) -> None:
        """The (reply, time, round, rank) in which the activities of the jobs and switches that
        the reply just applied were created. Batsim's server handles the reply's events in
        order: it starts a job's actor (which reads its machines' energy and every machine's,
        then makes its activity), and for a power request it reads every machine's energy (its
        energy tracer) before it starts the switch actors (a p-state simcall, then the
        switching flop). See actor_rounds."""
        starting, self._starting = self._starting, []
        for t in sorted({item[0] for item in starting}):
            batch = [item for item in starting if item[0] == t]
            if any(kind == "p" for _, kind, _, _ in batch):
                points = self._creation_rounds(t, batch)
            else:  # jobs only: their activities come in the order they were started
                points = [(0, rank) for rank in range(len(batch))]
            for (_, kind, key, hosts), (round_, rank) in zip(batch, points):
                if kind == "e":
                    self._created_key[key] = (self.nb_messages, t, round_, rank)
                else:
                    for h in hosts.tolist():
                        self._switch_key[h] = (self.nb_messages, t, round_, rank)
            self._tracer_date = t  # the jobs' actors and the server's tracer read every machine

    def _creation_rounds(self, t: float, batch: list[tuple]) -> list[tuple[int, int]]:
        """actor_rounds.play for a batch with a power request: its cost grows with the machines
        (the server reads them all), paid per power request only."""
        from hdeeprm.backends.batsim.actor_rounds import play

        every = list(range(self.engine.nb_machines))
        server: list[tuple] = []
        scripts: list[list[tuple]] = [server]
        for _, kind, _, hosts in batch:
            if kind == "e":
                scripts.append([("read", h) for h in hosts.tolist() + every] + [("point",)])
            else:
                server.extend(("read", h) for h in every)
                scripts.append([("simcall", hosts.tolist()), ("point",)])
            server.append(("spawn", len(scripts) - 1))
        return play(scripts, [0] + [None] * len(batch), self._up_to_date(t))[1:]

    def _state_changed(self, t: float, hosts: np.ndarray, state: int) -> dict:
        return _event(t, "RESOURCE_STATE_CHANGED",
                      {"resources": format_intervals(self.batsim_of[hosts]), "state": str(state)})

    def _completed(self, j: int) -> dict:
        from hdeeprm.simulation.engine import FINAL_STATE_NAMES, WALLTIME_REACHED

        engine = self.engine
        state = int(engine.final_state[j])
        code = self._return_code.pop(j, -1 if state == WALLTIME_REACHED else 0)
        return _event(_t6(engine.finish[j]), "JOB_COMPLETED", {
            "job_id": self.names[j], "job_state": FINAL_STATE_NAMES[state], "return_code": code,
            "alloc": format_intervals(self.batsim_of[engine.alloc[j]])})

    def _ask(self, exchange, now: float, events: list[dict], apply: bool = True) -> Message:
        payload = json.dumps({"now": now, "events": events}, separators=(",", ":")).encode()
        t0 = time.perf_counter()
        raw = exchange(payload)
        self.scheduler_seconds += time.perf_counter() - t0
        self.nb_messages += 1
        reply = decode(raw)
        if apply:
            self._apply(reply)
        return reply

    # ------------------------------------------------------------------ decisions

    def _apply(self, reply: Message) -> None:
        engine = self.engine
        engine.reply_sleep(engine.now)  # this conversation plays Batsim's reply actor
        for event in reply.events:
            if event.timestamp > reply.now:
                raise BatsimError(f"invalid reply: an event's timestamp {event.timestamp:g} is after "
                                  f"the reply's now={reply.now:g} (Batsim aborts on this)")
            engine.reply_sleep(event.timestamp)
            try:
                self._apply_event(event)
            except KeyError as e:
                raise BatsimError(f"{_type(event)}: unknown job {e.args[0]!r}") from None
            except SimulationError as e:  # a decision Batsim aborts on: say which one
                raise SimulationError(f"{_type(event)} at t={event.timestamp:g}: {e}") from None
        self._note_creations()
        engine.reply_sleep(reply.now)

    def _machines(self, text: str, where: str) -> np.ndarray:
        """Our machine ids of Batsim's interval set ``text`` (Batsim aborts on unknown ids)."""
        ids = parse_intervals(text)
        n = self.ours_of.size
        if ids.size and (ids.min() < 0 or ids.max() >= n):
            raise BatsimError(f"{where}: machine ids must be in 0..{n - 1}, got {text!r}")
        return self.ours_of[ids]

    def _apply_event(self, event) -> None:
        engine, index = self.engine, self.index
        if isinstance(event, ExecuteJob):
            unknown = set(event.extra) - {"mapping"}
            if event.extra.get("mapping") is not None or unknown:
                raise BatsimError(f"EXECUTE_JOB {event.job_id}: {', '.join(sorted(event.extra))} "
                                  "not supported (no executor mapping or storage in the engine)")
            job, hosts = index[event.job_id], self._machines(event.alloc, f"EXECUTE_JOB {event.job_id}")
            engine.execute(job, hosts)
            self.start_order.append(job)
            if self._sleepy:
                self._starting.append((engine.now, "e", job, hosts))
        elif isinstance(event, RejectJob):
            engine.reject(index[event.job_id])
        elif isinstance(event, KillJob):
            progress = {}
            for job_id in event.job_ids:
                job = index[job_id]
                done = engine.kill(job)
                if done is not None:
                    from hdeeprm.inputs.workload.model import KIND_DELAY

                    self._return_code[job] = -1 if engine.jobs.kind[job] == KIND_DELAY else -2
                    progress[job_id] = {"profile_name": str(engine.jobs.profile_names[job]),
                                        "progress": _t6(done)}
            self._extra.append(_event(_t6(engine.now), "JOB_KILLED",
                                      {"job_ids": list(event.job_ids), "job_progress": progress}))
        elif isinstance(event, SetResourceState):
            if not self.energy:
                raise BatsimError("SET_RESOURCE_STATE needs the energy plugin: run with -E "
                                  "(Batsim aborts without it)")
            try:
                state = int(event.state)
            except ValueError:
                raise BatsimError(f"SET_RESOURCE_STATE: state {event.state!r} is not a p-state number") from None
            machines = self._machines(event.resources, "SET_RESOURCE_STATE")
            engine.set_pstate(machines, state)
            moving = machines[[engine.switching([h]) for h in machines.tolist()]]
            if moving.size:  # a switch actor per machine; the others switched at once
                self._starting.append((engine.now, "p", None, moving))
            self._energy_date[machines[~np.isin(machines, moving)]] = engine.now
        elif isinstance(event, CallMeLater):
            engine.call_me_later(event.at)
        elif isinstance(event, Query):
            requests = event.extra.get("requests")
            if not isinstance(requests, dict) or set(requests) != {"consumed_energy"}:
                raise BatsimError(f"QUERY {json.dumps(requests)}: only consumed_energy is supported "
                                  "(estimate_waiting_time is not modelled)")
            if not self.energy:
                raise BatsimError("QUERY consumed_energy needs the energy plugin: run with -E "
                                  "(Batsim aborts without it)")
            joules = engine.query_energy()
            self._tracer_date = engine.now
            self._extra.append(_event(_t6(engine.now), "ANSWER", {"consumed_energy": _t6(joules)}))
        elif isinstance(event, Notify):
            if event.type not in ("registration_finished", "continue_registration"):
                raise BatsimError(f"NOTIFY {event.type!r}: unknown type (Batsim aborts on it)")
        elif _type(event) == "ANSWER":
            pass  # estimate_waiting_time answers: Batsim only logs them
        elif _type(event) in _UNMODELLED:
            raise BatsimError(f"{_type(event)} is not supported: dynamic jobs and job messages are not "
                              "modelled by the engine")
        else:
            raise BatsimError(f"invalid reply: unknown event type {_type(event)!r}")


def _type(event) -> str:
    return event.type if isinstance(event, UnknownEvent) else event.TYPE


def _event(t: float, kind: str, data: dict) -> dict:
    return {"timestamp": t, "type": kind, "data": data}


# ---------------------------------------------------------------------------- ZeroMQ


#: How long ``exchange`` polls for the scheduler's reply before it sleeps in a blocking recv.
#: Most replies come within a millisecond, and polling saves the wake-up of a sleeping recv on
#: each message: on 2 cores, 20,000 jobs (38,800 messages) took 9.3 s instead of 13.7 s of
#: wall time (benchmarks/dropin_fcfs.py as the scheduler, means of 4 runs), for 1.3 s more
#: CPU. Only with 2 or more usable CPUs: on one, polling would hold the CPU the scheduler needs.
SPIN_SECONDS = 1e-3


def _usable_cpus() -> int:
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def zmq_exchange(endpoint: str, stop=None, poll_ms: int = 200):
    """(exchange, close) over a REQ socket connected to ``endpoint``, as Batsim connects to
    the scheduler. ``exchange`` polls for each reply for up to :data:`SPIN_SECONDS`, then
    waits in ``poll_ms`` slices (Ctrl-C and SIGTERM get through; ``stop()`` returning True
    gives up)."""
    import zmq

    context = zmq.Context()
    socket = context.socket(zmq.REQ)
    socket.setsockopt(zmq.LINGER, 0)
    socket.setsockopt(zmq.RCVTIMEO, poll_ms)  # a blocking recv in slices: cheaper than poll + recv
    try:
        socket.connect(endpoint)
    except zmq.ZMQError as e:
        socket.close(linger=0)
        context.term()
        raise BatsimError(f"cannot connect to the scheduler at {endpoint}: {e}") from None

    spin = SPIN_SECONDS if _usable_cpus() >= 2 else 0.0
    noblock = zmq.NOBLOCK

    def exchange(payload: bytes) -> bytes:
        socket.send(payload)  # copied: cheaper than zero-copy for messages this small
        deadline = time.perf_counter() + spin
        while time.perf_counter() < deadline:
            try:
                return socket.recv(noblock, copy=True)
            except zmq.Again:
                pass
        while True:
            try:
                return socket.recv(copy=True)
            except zmq.Again:
                if stop is not None and stop():
                    raise BatsimError("stopped") from None

    def close() -> None:
        socket.close(linger=0)
        context.term()

    return exchange, close


def write_batsim_outputs(engine, export_prefix: str, *, energy: bool, machine_states: bool = True,
                         scheduling_seconds: float = 0.0, simulation_seconds: float = 0.0,
                         schedule_trace: bool = True, start_order: list[int] | None = None,
                         end_time: float | None = None) -> list[str]:
    """Batsim's files at ``export_prefix``: PREFIX_jobs.csv, PREFIX_schedule.csv,
    PREFIX_machine_states.csv (unless ``machine_states`` is off, or the output writers have
    no such writer), and with ``energy`` PREFIX_consumed_energy.csv and
    PREFIX_pstate_changes.csv. Without energy, as Batsim, job energies are -1 and
    consumed_joules 0. With ``schedule_trace`` (Batsim's default), also Batsim's Pajé trace
    PREFIX_schedule.trace (:mod:`hdeeprm.simulation.paje`), whose simultaneous starts follow
    ``start_order`` (the order the scheduler started jobs in) when given, and whose
    containers end at ``end_time`` when it is later than the engine's clock (the ``now`` of the
    scheduler's reply to SIMULATION_ENDS)."""
    from hdeeprm.simulation import outputs
    from hdeeprm.simulation.engine import REJECTED_STATE

    result = engine.result()
    if end_time is not None and end_time > result.end_time:
        result.end_time = end_time
    if not energy:
        result.job_energy = np.full_like(result.job_energy, -1.0)
        result.consumed_joules = 0.0
    rows = result.energy_rows
    if isinstance(rows, list) and rows and rows[0][4] is None and rows[0][0] > 0:
        # Batsim's energy tracer starts from (0 s, 0 J): a first row after t=0 has a mean power.
        t, joules, kind, wattmin, _ = rows[0]
        result.energy_rows = [(t, joules, kind, wattmin, joules / t)] + rows[1:]
    folder = os.path.dirname(export_prefix)
    if folder:
        os.makedirs(folder, exist_ok=True)
    values = dict(outputs.summarize(result).values)
    values["scheduling_time"] = float(scheduling_seconds)
    values["simulation_time"] = float(simulation_seconds)
    # Slowdowns from Batsim's long double job times (those of out_jobs.csv): a job of zero
    # work (1e-5 s) otherwise gives 330000.999895 where Batsim writes 330001.000000.
    stretch = outputs._batsim_job_times(result)[4]
    ran = (result.final_state != 0) & (result.final_state != REJECTED_STATE)
    if ran.any() and result.workload.nb_jobs:
        values["max_slowdown"] = float(stretch[ran].max())
        values["mean_slowdown"] = float(stretch[ran].astype(np.longdouble).sum() / result.workload.nb_jobs)
    paths = [export_prefix + "_jobs.csv", export_prefix + "_schedule.csv"]
    outputs.write_jobs(result, paths[0])
    outputs.write_schedule(outputs.ScheduleSummary(values), paths[1])
    if energy:
        paths += [export_prefix + "_consumed_energy.csv", export_prefix + "_pstate_changes.csv"]
        outputs.write_energy(result, paths[2])
        outputs.write_pstates(result, paths[3])
    if machine_states and hasattr(outputs, "write_machine_states"):
        paths.append(export_prefix + "_machine_states.csv")
        outputs.write_machine_states(result, paths[-1])
    if schedule_trace:
        from hdeeprm.simulation.paje import write_paje_trace

        paths.append(export_prefix + "_schedule.trace")
        write_paje_trace(result, paths[-1], engine.platform.host_names, start_order=start_order)
    return paths


def serve(run: BatsimRun, stop=None) -> dict:
    """Run ``run`` against the scheduler listening at ``run.endpoint``; returns a summary
    (messages, seconds, output paths)."""
    t0 = time.perf_counter()
    engine, begins, job_json, profiles = load_run(run)
    conversation = Conversation(engine, energy=run.energy, begins=begins, job_json=job_json, profiles=profiles)
    exchange, close = zmq_exchange(run.endpoint, stop=stop)
    try:
        conversation.run(exchange)
    finally:
        close()
    seconds = time.perf_counter() - t0
    paths = write_batsim_outputs(engine, run.export_prefix, energy=run.energy, machine_states=run.machine_states,
                                 scheduling_seconds=conversation.scheduler_seconds, simulation_seconds=seconds,
                                 schedule_trace=run.schedule_trace, start_order=conversation.start_order,
                                 end_time=conversation.end_time)
    return {"messages": conversation.nb_messages, "seconds": seconds,
            "scheduler_seconds": conversation.scheduler_seconds, "outputs": paths,
            "nb_jobs": engine.jobs.nb_jobs}
