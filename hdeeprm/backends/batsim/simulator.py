"""The Batsim backend: real Batsim behind the embedded engine's decision interface.

Batsim drives the conversation: it sends a message and waits for the decisions. Schedulers
here pull instead (``next_decision_point``, then decisions, then ``next_decision_point``
again). The two meet because a reply is only sent when the scheduler asks for the next point:

    next_decision_point():  send the decisions gathered since the last message as the reply,
                            receive Batsim's next message, turn it into a DecisionPoint;
                            messages that call for no decision are answered at once.

Decisions made before the first ``next_decision_point`` answer SIMULATION_BEGINS (initial
p-states, say). Machine ids are translated both ways through the host names Batsim lists in
SIMULATION_BEGINS, never assumed.

Batsim does not tell a scheduler how much work a running job has done or how much energy
has been consumed so far; HeteroEnv's observations and energy rewards need both. A *mirror*
embedded engine is therefore kept in step with Batsim (Batsim's submissions and completions,
our decisions) and answers ``work_done`` and ``energy_so_far``. Everything about jobs (start,
finish, final state, allocation) comes from Batsim's messages, and Batsim writes its own
output files in ``output_dir``.
"""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import dataclass, replace
from pathlib import Path
from time import perf_counter
from typing import Callable, Protocol

import numpy as np

from hdeeprm.backends.batsim.export import write_platform_xml, write_workload_json
from hdeeprm.backends.batsim.messages import (
    CallMeLater,
    Event,
    ExecuteJob,
    JobCompleted,
    JobSubmitted,
    KillJob,
    Message,
    Notify,
    RejectJob,
    RequestedCall,
    ResourceStateChanged,
    SetResourceState,
    SimulationBegins,
    SimulationEnds,
)
from hdeeprm.backends.batsim.process import BatsimProcess, batsim_command, find_batsim
from hdeeprm.backends.batsim.transport import Transport
from hdeeprm.common.errors import BatsimError, ConfigError, HDeepRMError, SimulationError
from hdeeprm.inputs.platform.json_platform import PlatformDescription
from hdeeprm.inputs.platform.model import Platform
from hdeeprm.inputs.platform.sleep import sleep_states
from hdeeprm.inputs.workload.model import KIND_DELAY, Workload, WorkloadArrays
from hdeeprm.simulation.engine import (
    FINAL_STATE_NAMES,
    FINISHED,
    KILLED,
    QUEUED,
    REJECTED,
    REJECTED_STATE,
    RUNNING,
    ZERO_WORK_RECORDED_DURATION,
    DecisionPoint,
    Engine,
    SimulationResult,
)
from hdeeprm.simulation.intervals import format_intervals, parse_intervals
from hdeeprm.simulation.replay import follow_batsim

WORKLOAD_NAME = "w0"  # Batsim names workloads w0, w1, ... in command-line order
_FINAL_STATES = {name: code for code, name in FINAL_STATE_NAMES.items()}


@dataclass(frozen=True)
class BatsimInputs:
    """What a peer is started with: the files written for it and where it writes outputs."""

    platform_xml: str
    workload_json: str
    export_prefix: str  # Batsim writes <prefix>_jobs.csv, <prefix>_schedule.csv, ...
    workdir: str


class Peer(Protocol):
    def check(self) -> None: ...

    def finish(self, timeout_s: float) -> None: ...

    def close(self) -> None: ...


Launcher = Callable[[BatsimInputs, str], Peer]


class ProcessLauncher:
    """Starts the real ``batsim`` (found when the launcher is made, so that a missing
    binary is reported before any file is written)."""

    def __init__(self, executable: str | None = None, extra_args: tuple[str, ...] = ()):
        self.executable = find_batsim(executable)
        self.extra_args = tuple(extra_args)

    def __call__(self, inputs: BatsimInputs, endpoint: str) -> BatsimProcess:
        command = batsim_command(self.executable, inputs.platform_xml, inputs.workload_json,
                                 inputs.export_prefix, endpoint, self.extra_args)
        return BatsimProcess(command, Path(inputs.workdir) / "batsim.log", cwd=inputs.workdir)


def batsim_energy_accounting(network: str) -> str:
    """The engine's accounting that gives real Batsim's energy on an exported platform.
    Batsim's first energy query (at the first submission, usually t=0) updates no machine on
    the zero-latency network, so machines stay billed at p-state 0 ("batsim"). With links,
    Batsim's internal messages take a few 1e-10 s, that query lands just after t=0 and
    updates every machine at once: SimGrid then bills each at its own p-state ("ideal")."""
    return "ideal" if network == "links" else "batsim"


class BatsimSimulator:
    """One simulation on real Batsim; see the module docstring.

    ``batsim``: path of the executable (default: $HDEEPRM_BATSIM, then PATH). ``workdir``:
    folder for the inputs written for Batsim and its outputs (default: a temporary folder
    removed by ``close``). ``timeout_s``: longest wait for a Batsim message. ``network`` and
    ``description``: see :func:`hdeeprm.backends.batsim.export.platform_xml`. ``launcher``
    replaces the batsim process (the tests' replay server).
    """

    def __init__(self, platform: Platform, workload: Workload | WorkloadArrays, *,
                 batsim: str | None = None, workdir: str | Path | None = None,
                 timeout_s: float = 60.0, network: str = "zero-latency",
                 description: PlatformDescription | None = None,
                 launcher: Launcher | None = None, extra_args: tuple[str, ...] = (),
                 energy_accounting: str = "batsim"):
        if energy_accounting != "batsim":
            raise ConfigError(f"energy_accounting {energy_accounting!r}: the batsim backend's energy is "
                              "SimGrid's; only 'batsim' accounting exists there")
        self.platform = platform
        self.jobs = workload.compile() if isinstance(workload, Workload) else workload
        self.workload_name = WORKLOAD_NAME
        launcher = launcher or ProcessLauncher(batsim, extra_args)
        n = self.jobs.nb_jobs
        self.job_state = np.zeros(n, np.int8)
        self.final_state = np.zeros(n, np.int8)
        self.start = np.full(n, np.nan)
        self.finish = np.full(n, np.nan)
        self.alloc: list[np.ndarray | None] = [None] * n
        self.pstate = np.array(platform.initial_pstate, dtype=np.int64)
        self.nb_unfinished = n
        self._nb_running = 0
        self._job_order: list[int] = []
        self._killed: set[int] = set()
        self._index = {f"{WORKLOAD_NAME}!{job_id}": i for i, job_id in enumerate(self.jobs.job_ids)}
        self._names = [f"{WORKLOAD_NAME}!{job_id}" for job_id in self.jobs.job_ids]
        self._mirror = Engine(platform, self.jobs, energy_accounting=batsim_energy_accounting(network),
                              clock="exact")  # follows Batsim's messages
        self._decisions: list[Event] = []
        self._now = 0.0
        self._ended = False
        self._wall_start = perf_counter()
        self.scheduling_seconds = 0.0
        self.messages = 0

        self._own_workdir = workdir is None
        self.workdir = Path(tempfile.mkdtemp(prefix="hdeeprm-batsim-") if workdir is None else workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.workdir = self.workdir.resolve()  # batsim runs inside it
        inputs = BatsimInputs(str(self.workdir / "platform.xml"), str(self.workdir / "workload.json"),
                              str(self.workdir / "out"), str(self.workdir))
        self.output_dir = self.workdir
        self._transport: Transport | None = None
        self._peer: Peer | None = None
        try:
            write_platform_xml(platform, inputs.platform_xml, network, description)
            _add_sleep_pstates(platform, inputs.platform_xml)
            write_workload_json(self.jobs, platform.nb_machines, inputs.workload_json)
            # A kept work folder is a replayable scenario: inputs, Batsim's outputs, transcript.
            transcript = None if self._own_workdir else str(self.workdir / "transcript.jsonl")
            self._transport = Transport(timeout_s, transcript=transcript)
            self._peer = launcher(inputs, self._transport.endpoint)
            self._begin(self._receive())
        except BaseException:
            self.close()
            raise

    # ------------------------------------------------------------------ queries

    @property
    def now(self) -> float:
        return self._now

    @property
    def scheduler_time(self) -> float:
        """Batsim's time as its last message gave it (6 decimals)."""
        return self._now

    @property
    def nb_machines(self) -> int:
        return self.platform.nb_machines

    @property
    def nb_running(self) -> int:
        return self._nb_running

    def energy_so_far(self) -> float:
        return self._mirror.energy_so_far()

    def work_done(self, jobs: np.ndarray) -> np.ndarray:
        return self._mirror.work_done(jobs)

    # ------------------------------------------------------------------ stepping

    def next_decision_point(self) -> DecisionPoint | None:
        """Answer Batsim's last message with the decisions made since, then wait for the
        next message that calls for a decision; None once the simulation has ended."""
        if self._ended:
            return None
        while True:
            self._reply()
            point = self._apply(self._receive())
            if point is None:
                self._end()
                return None
            if point:
                return point

    # ------------------------------------------------------------------ decisions

    def execute(self, job: int, hosts) -> None:
        hosts = np.asarray(hosts, dtype=np.int64)
        if self.job_state[job] != QUEUED:
            raise SimulationError(f"job {self.jobs.job_ids[job]} cannot start: it is not waiting")
        self._mirror.execute(job, hosts)  # checks the machines exactly as the embedded engine does
        self._decide(ExecuteJob(timestamp=self._now, job_id=self._names[job],
                                alloc=self._to_batsim(hosts)))
        self.job_state[job] = RUNNING
        self.start[job] = self._now
        self.alloc[job] = hosts
        self._nb_running += 1

    def reject(self, job: int) -> None:
        self._mirror.reject(job)
        self._decide(RejectJob(timestamp=self._now, job_id=self._names[job]))
        self.job_state[job] = REJECTED
        self.final_state[job] = REJECTED_STATE
        self._job_order.append(job)
        self.nb_unfinished -= 1

    def kill(self, job: int) -> float | None:
        """Kill a running job now; as on the embedded engine it counts as ended at once (the
        JOB_COMPLETED Batsim sends back is taken as an acknowledgement)."""
        if self.job_state[job] != RUNNING:
            return None
        progress = self._mirror.kill(job)
        self._decide(KillJob(timestamp=self._now, job_ids=(self._names[job],)))
        self._killed.add(job)
        self._job_ended(job, KILLED, self._now)
        return progress

    def set_pstate(self, hosts, pstate: int) -> None:
        hosts = np.unique(np.asarray(hosts, dtype=np.int64))
        if hosts.size == 0:
            return
        self._mirror.set_pstate(hosts, pstate)
        self._decide(SetResourceState(timestamp=self._now, resources=self._to_batsim(hosts),
                                      state=str(int(pstate))))
        self.pstate[hosts] = pstate

    def call_me_later(self, when: float) -> None:
        when = max(float(when), self._now)
        self._mirror.call_me_later(when)
        self._decide(CallMeLater(timestamp=self._now, at=when))

    # ------------------------------------------------------------------ results

    def result(self) -> SimulationResult:
        """The run as Batsim reported it (jobs' times, states, allocations); the energy
        figures come from the mirror engine. Batsim's own files are in ``output_dir``."""
        mirror = self._mirror.result()
        finish = self.finish.copy()
        zero_work = ((self.jobs.kind != KIND_DELAY) & (self.jobs.work == 0)
                     & (self.final_state == _FINAL_STATES["COMPLETED_SUCCESSFULLY"]))
        finish[zero_work] = self.start[zero_work] + ZERO_WORK_RECORDED_DURATION
        return replace(mirror, job_order=list(self._job_order), final_state=self.final_state.copy(),
                       start=self.start.copy(), finish=finish, alloc=list(self.alloc),
                       end_time=self._now, wall_seconds=perf_counter() - self._wall_start,
                       scheduling_seconds=self.scheduling_seconds)

    def close(self) -> None:
        """Stop Batsim if it still runs and release the socket; a temporary work folder is
        removed. Safe to call more than once."""
        if self._peer is not None:
            self._peer.close()
            self._peer = None
        if self._transport is not None:
            self._transport.close()
            self._transport = None
        if self._own_workdir and self.workdir.exists():
            shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self) -> "BatsimSimulator":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # ------------------------------------------------------------------ internals

    def _receive(self) -> Message:
        message = self._transport.receive(self._peer.check)
        self.messages += 1
        if message.now < self._now:
            raise BatsimError(f"Batsim's clock went back from {self._now:.6f} to {message.now:.6f}")
        self._now = message.now
        return message

    def _reply(self) -> None:
        if self._transport.awaiting_reply:
            self._transport.send(Message(self._now, tuple(self._decisions)))
            self._decisions.clear()

    def _decide(self, event: Event) -> None:
        if self._ended:
            raise SimulationError("the simulation has ended; no more decisions are possible")
        self._decisions.append(event)

    def _begin(self, message: Message) -> None:
        begins = next((e for e in message.events if isinstance(e, SimulationBegins)), None)
        if begins is None:
            raise BatsimError("Batsim's first message has no SIMULATION_BEGINS")
        names = begins.names_by_id
        ours = {name: m for m, name in enumerate(self.platform.host_names)}
        if len(names) != self.platform.nb_machines or set(names.values()) != set(ours):
            missing = sorted(set(ours) - set(names.values()))[:3]
            raise BatsimError(f"Batsim lists {len(names)} compute machines, the platform has "
                              f"{self.platform.nb_machines}" + (f" (missing: {', '.join(missing)})"
                                                                if missing else ""))
        self._batsim_of = np.empty(self.platform.nb_machines, np.int64)
        for batsim_id, name in names.items():
            self._batsim_of[ours[name]] = batsim_id
        self._ours_of = np.empty_like(self._batsim_of)
        self._ours_of[self._batsim_of] = np.arange(self.platform.nb_machines)

    def _to_batsim(self, hosts: np.ndarray) -> str:
        return format_intervals(self._batsim_of[hosts])

    def _to_ours(self, text: str) -> np.ndarray:
        try:
            return np.sort(self._ours_of[parse_intervals(text)])
        except (HDeepRMError, IndexError):
            raise BatsimError(f"Batsim sent machine ids {text!r} outside 0..{self.nb_machines - 1}") from None

    def _job(self, name: str) -> int:
        try:
            return self._index[name]
        except KeyError:
            raise BatsimError(f"Batsim reported job {name!r}, which is not in the workload") from None

    def _apply(self, message: Message) -> DecisionPoint | None:
        """Update the job states from one Batsim message; None when it ends the simulation."""
        now = message.now
        point = DecisionPoint(now)
        named: list[tuple[str, int]] = []
        ends = False
        for event in message.events:
            if isinstance(event, JobSubmitted):
                job = self._job(event.job_id)
                self.job_state[job] = QUEUED
                point.submitted.append(job)
                named.append(("submitted", job))
            elif isinstance(event, JobCompleted):
                job = self._job(event.job_id)
                if job in self._killed:
                    continue  # already ended when we killed it
                final = _FINAL_STATES.get(event.job_state)
                if final is None or self.job_state[job] != RUNNING:
                    raise BatsimError(f"Batsim completed job {event.job_id} as {event.job_state!r}, "
                                      "which does not match what was decided")
                self._job_ended(job, final, event.timestamp)
                point.completed.append(job)
                named.append(("completed", job))
            elif isinstance(event, ResourceStateChanged):
                point.pstate_changes.append((self._to_ours(event.resources), int(event.state)))
            elif isinstance(event, RequestedCall):
                point.requested_calls += 1
            elif isinstance(event, Notify) and event.type == Notify.NO_MORE_STATIC_JOBS:
                point.no_more_submissions = True
            elif isinstance(event, SimulationEnds):
                ends = True
            elif isinstance(event, SimulationBegins):
                raise BatsimError("Batsim sent SIMULATION_BEGINS twice")
        follow_batsim(self._mirror, now, named, "Batsim backend (mirror engine)")
        for hosts, _ in point.pstate_changes:
            self._follow_switch(hosts, now)
        return None if ends else point

    def _follow_switch(self, hosts: np.ndarray, now: float) -> None:
        """Step the mirror until the machines Batsim says have switched (sleep p-states) have
        switched there too: its end times may be an ulp past Batsim's printed time."""
        mirror = self._mirror
        while mirror.switching(hosts):
            if mirror.step_instant() is None or mirror.now > now + 1e-6:
                raise BatsimError(f"Batsim reported machines {format_intervals(hosts)} switched at "
                                  f"{now:.6f} but the mirror engine has them switching at {mirror.now:.6f}")

    def _job_ended(self, job: int, final: int, when: float) -> None:
        self.job_state[job] = FINISHED
        self.final_state[job] = final
        self.finish[job] = when
        self._nb_running -= 1
        self.nb_unfinished -= 1
        self._job_order.append(job)

    def _end(self) -> None:
        self._reply()  # Batsim waits for an answer to SIMULATION_ENDS too
        self._ended = True
        self._mirror.run_to_end()
        self._peer.finish(30.0)


def _add_sleep_pstates(platform: Platform, path: str) -> None:
    """Give the exported platform's hosts their Batsim ``sleep_pstates`` property, if the
    platform has sleep p-states (Batsim reads them from it: src/machines.cpp)."""
    states = sleep_states(platform)
    if states is None:
        return
    from lxml import etree

    tree = etree.parse(path, etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False))
    index = {name: i for i, name in enumerate(platform.host_names)}
    for host in tree.getroot().iter("host"):
        machine = index.get(host.get("id"))
        value = None if machine is None else states.property_value(machine)
        if value is not None:
            etree.SubElement(host, "prop", id="sleep_pstates", value=value)
    tree.write(path, xml_declaration=True, encoding="utf-8", doctype=tree.docinfo.doctype)
