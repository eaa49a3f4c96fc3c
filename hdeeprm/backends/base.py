"""The interface every simulator backend offers, and the factory that picks one."""

from __future__ import annotations

from typing import Protocol

import numpy as np

from hdeeprm.common.errors import ConfigError
from hdeeprm.inputs.platform.model import Platform
from hdeeprm.inputs.workload.model import Workload, WorkloadArrays
from hdeeprm.simulation.engine import DecisionPoint, Engine, SimulationResult

BACKENDS = ("embedded", "batsim")


class Simulator(Protocol):
    """What schedulers and HeteroEnv use of a simulator.

    Time only moves in ``next_decision_point``; decisions (``execute``, ``reject``,
    ``set_pstate``, ``call_me_later``, ``kill``) take effect at the current time.
    """

    platform: Platform
    jobs: WorkloadArrays
    pstate: np.ndarray  # current p-state per machine
    nb_unfinished: int

    @property
    def now(self) -> float: ...

    @property
    def scheduler_time(self) -> float: ...  # the time schedulers compute with (see Engine)

    @property
    def nb_running(self) -> int: ...

    def next_decision_point(self) -> DecisionPoint | None: ...

    def execute(self, job: int, hosts) -> None: ...

    def reject(self, job: int) -> None: ...

    def kill(self, job: int) -> float | None: ...

    def set_pstate(self, hosts, pstate: int) -> None: ...

    def call_me_later(self, when: float) -> None: ...

    def energy_so_far(self) -> float: ...

    def work_done(self, jobs: np.ndarray) -> np.ndarray: ...

    def result(self) -> SimulationResult: ...

    def close(self) -> None: ...


def make_simulator(backend: str, platform: Platform, workload: Workload | WorkloadArrays,
                   **options) -> Simulator:
    """A fresh simulator of ``workload`` on ``platform`` with the named backend; ``options``
    go to its constructor (for ``batsim``: batsim, workdir, timeout_s, network, launcher).
    Close it when done (the Batsim backend stops its batsim process)."""
    if backend == "embedded":
        return Engine(platform, workload, **options)
    if backend == "batsim":
        try:
            import zmq  # noqa: F401
        except ModuleNotFoundError:
            raise ConfigError("backend 'batsim' needs pyzmq: pip install -e '.[batsim]'") from None
        from hdeeprm.backends.batsim import BatsimSimulator

        return BatsimSimulator(platform, workload, **options)
    raise ConfigError(f"unknown backend {backend!r}: expected one of {', '.join(BACKENDS)}")
