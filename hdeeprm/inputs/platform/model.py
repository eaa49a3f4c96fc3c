"""The compiled platform: immutable arrays the engine and the policies read.

A platform is compiled once, from an HDeepRM platform JSON or a SimGrid/Batsim XML, into
flat numpy arrays indexed by machine id (one Batsim host per core). Arrays are made
read-only so that no part of the simulator can change the hardware by mistake.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# HDeepRM's four core p-states (DESIGN section 3).
P_BUSY = 0  # busy at full speed
P_THROTTLED = 1  # busy, processor memory bandwidth over-subscribed: 0.75 x speed
P_IDLE_SIBLING = 2  # idle, another core of the processor is busy
P_IDLE_PROCESSOR = 3  # idle, the whole processor is idle

THROTTLED_SPEED_FACTOR = 0.75
IDLE_SPEED_FLOPS = 0.001  # Batsim needs a strictly positive speed for computation p-states
POWER_FACTORS = (1.0, 1.0, 0.25, 0.05)  # of processor TDP / cores, per p-state


def _frozen(array, dtype) -> np.ndarray:
    out = np.array(array, dtype=dtype)
    out.setflags(write=False)
    return out


def _refreeze(obj, state: dict) -> None:
    """Restore a pickled frozen dataclass; numpy does not keep the read-only flag through
    pickling, and parallel runners (DESIGN: Ray workers) pickle platforms."""
    obj.__dict__.update(state)
    for value in state.values():
        if isinstance(value, np.ndarray):
            value.setflags(write=False)


@dataclass(frozen=True, eq=False)
class Hierarchy:
    """HDeepRM's decision-side structure: nodes -> processors -> cores (= machine ids).

    Per core: ``core_processor``, ``core_node``. Per processor: ``processor_node``,
    ``processor_mem_bw_gbs`` (GB/s shared by its cores), ``processor_gflops_per_core``,
    ``processor_watts_per_core``, ``processor_type``. Per node: ``node_memory_mb``,
    ``node_type``, ``node_cluster``. ``reference_speed_gflops`` is the mean core speed used to
    turn trace seconds into operations.
    """

    core_processor: np.ndarray
    core_node: np.ndarray
    processor_node: np.ndarray
    processor_mem_bw_gbs: np.ndarray
    processor_gflops_per_core: np.ndarray
    processor_watts_per_core: np.ndarray
    processor_type: tuple[str, ...]
    node_memory_mb: np.ndarray
    node_type: tuple[str, ...]
    node_cluster: np.ndarray
    reference_speed_gflops: float

    def __post_init__(self):
        for name, dtype in (
            ("core_processor", np.int64),
            ("core_node", np.int64),
            ("processor_node", np.int64),
            ("processor_mem_bw_gbs", np.float64),
            ("processor_gflops_per_core", np.float64),
            ("processor_watts_per_core", np.float64),
            ("node_memory_mb", np.float64),
            ("node_cluster", np.int64),
        ):
            object.__setattr__(self, name, _frozen(getattr(self, name), dtype))

    def __setstate__(self, state: dict) -> None:
        _refreeze(self, state)

    @property
    def nb_cores(self) -> int:
        return len(self.core_processor)

    @property
    def nb_processors(self) -> int:
        return len(self.processor_node)

    @property
    def nb_nodes(self) -> int:
        return len(self.node_memory_mb)


@dataclass(frozen=True, eq=False)
class Platform:
    """Compute machines (Batsim hosts) in machine-id order.

    ``speeds[h, p]`` is host h's speed in flop/s in p-state p, ``watts_idle`` and
    ``watts_full`` its power in W at zero and full load; entries beyond ``nb_pstates[h]`` are
    NaN. ``initial_pstate[h]`` is the p-state the platform declares. ``hierarchy`` is set for
    HDeepRM platforms (JSON, or XML plus a hierarchy file) and None for flat ones.
    """

    host_names: tuple[str, ...]
    speeds: np.ndarray
    watts_idle: np.ndarray
    watts_full: np.ndarray
    nb_pstates: np.ndarray
    initial_pstate: np.ndarray
    hierarchy: Hierarchy | None = None
    source: str = "<memory>"

    def __post_init__(self):
        object.__setattr__(self, "speeds", _frozen(self.speeds, np.float64))
        object.__setattr__(self, "watts_idle", _frozen(self.watts_idle, np.float64))
        object.__setattr__(self, "watts_full", _frozen(self.watts_full, np.float64))
        object.__setattr__(self, "nb_pstates", _frozen(self.nb_pstates, np.int64))
        object.__setattr__(self, "initial_pstate", _frozen(self.initial_pstate, np.int64))
        n = len(self.host_names)
        for name in ("speeds", "watts_idle", "watts_full"):
            if getattr(self, name).shape[0] != n:
                raise ValueError(f"{name} has {getattr(self, name).shape[0]} rows for {n} hosts")
        if self.hierarchy is not None and self.hierarchy.nb_cores != n:
            raise ValueError(f"hierarchy has {self.hierarchy.nb_cores} cores for {n} hosts")

    def __setstate__(self, state: dict) -> None:
        _refreeze(self, state)

    @property
    def reference_speed_gflops(self) -> float:
        """GFLOP/s of a reference core, which converts trace run times into flops: the
        hierarchy's reference speed, or the mean machine speed of a flat platform."""
        if self.hierarchy is not None:
            return float(self.hierarchy.reference_speed_gflops)
        return float(self.speeds[range(self.nb_machines), self.initial_pstate].mean() / 1e9)

    @property
    def nb_machines(self) -> int:
        return len(self.host_names)

    def with_hierarchy(self, hierarchy: Hierarchy) -> "Platform":
        return Platform(self.host_names, self.speeds, self.watts_idle, self.watts_full,
                        self.nb_pstates, self.initial_pstate, hierarchy, self.source)
