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
from dataclasses import dataclass
from typing import Iterator

from .core.engine import FINISHED, QUEUED, REJECTED, Engine, SimulationResult
from .core.intervals import parse_intervals
from .errors import HDeepRMError, ReplayError
from .platform import load_platform
from .workload import read_batsim_workload

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
    """(line number, sender, message) for every line of a transcript."""
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
                yield lineno, record["from"], record["msg"]
            except (json.JSONDecodeError, KeyError, TypeError) as e:
                raise ReplayError(f"{path}: line {lineno}: not a transcript record "
                                  f"({{\"from\": ..., \"msg\": ...}}): {e}") from None


def replay(folder: str) -> SimulationResult:
    """Replay the scenario in ``folder`` and return the engine's result."""
    scenario = find_scenario(folder)
    platform = load_platform(scenario.platform, hierarchy=scenario.hierarchy)
    workload = read_batsim_workload(scenario.workload)
    engine = Engine(platform, workload, simgrid_energy_quirk=True)
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
            for event in msg["events"]:
                kind, data = event["type"], event.get("data", {})
                if kind == "JOB_SUBMITTED":
                    named.append(("submitted", job_of(data["job_id"], lineno)))
                elif kind == "JOB_COMPLETED":
                    named.append(("completed", job_of(data["job_id"], lineno)))
            follow_batsim(engine, now, named, f"{scenario.transcript}: line {lineno}")
            continue
        for event in msg["events"]:
            kind, data = event["type"], event.get("data", {})
            when = float(event.get("timestamp", now))
            if when > engine.now:
                engine.run_until(when)
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
                raise ReplayError(f"{scenario.transcript}: line {lineno}: {kind} at {when:.6f}: {e}") from None
    engine.run_to_end()
    return engine.result()


def follow_batsim(engine: Engine, now: float, named: list[tuple[str, int]], where: str) -> None:
    """Bring ``engine`` to Batsim's time ``now`` and step it until every job Batsim reported
    in its message (``("submitted" | "completed", job)`` pairs) is submitted or done.

    Batsim's clock and ours may disagree by floating-point noise, and Batsim prints times
    rounded to 6 decimals; a completion it reports at 10.000000 may be due at 10.0000001 here.
    Used by replay and by the Batsim backend's mirror engine.
    """
    engine.run_until(now)

    def pending():
        for what, job in named:
            state = engine.job_state[job]
            if what == "submitted" and state < QUEUED:
                return job
            if what == "completed" and state not in (FINISHED, REJECTED):
                return job
        return None

    while (job := pending()) is not None:
        if engine.step_instant() is None or engine.now > now + _TIME_SLACK:
            raise ReplayError(
                f"{where}: Batsim reported job {engine.jobs.job_ids[job]} at "
                f"{now:.6f} but the engine has it at {engine.now:.6f}; the platform or workload "
                f"does not match the transcript")
