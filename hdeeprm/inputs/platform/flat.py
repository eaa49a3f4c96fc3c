"""A hierarchy for a flat platform: every compute host one node, one processor, one core.

A SimGrid/Batsim XML read without a hierarchy file has machines but no nodes, processors,
memory or memory bandwidth. :func:`with_flat_hierarchy` gives it the simplest hierarchy, so
that what needs one (HeteroEnv, its observations, every core key) runs on it:

* per host: one node holding one processor holding one core (machine id = core = processor =
  node), all in cluster 0;
* the core's speed is the host's speed in the p-state the XML declares for it; its power per
  core (the ``low_power`` key's value) the XML's full-load watts in that p-state (0 when the
  host has no ``wattage_per_state`` / ``watt_per_state`` property);
* memory and memory bandwidth are unlimited: node memory :data:`UNLIMITED_MEMORY_MB` and
  processor bandwidth :data:`UNLIMITED_MEM_BW_GBS`. The contention model counts them as
  integer kB and kB/s (``hdeeprm.simulation.resources``), where infinity does not exist; these values
  (10^18 kB and 10^18 kB/s) are that model's "unlimited": no workload comes near them, and
  they leave room below the int64 limit and the model's own sentinels (2^60, 2^62). So no
  job is ever refused for memory nor throttled for bandwidth (P1 is never used).

HDeepRM's decision side drives four p-states per core (P0 busy, P1 throttled, P2 idle
sibling, P3 idle processor), which an XML host usually does not have. The returned platform's
machines therefore get them, built from the declared p-state so that energy is the XML's:
speeds [S, 0.75 S, 0.001, 0.001] flop/s and, as (idle, full) watts, P0 and P1 the XML's
(idle, full) and P2, P3 its (idle, idle): a busy core draws the XML's full-load power, an idle
one its idle power, as if the host had stayed in its declared p-state. Every machine starts in
P3, as on compiled HDeepRM platforms. The XML's other p-states are dropped. Host names and
``source`` are kept, so machine ids do not change.
"""

from __future__ import annotations

import numpy as np

from hdeeprm.common.errors import PlatformError
from hdeeprm.inputs.platform.model import (
    IDLE_SPEED_FLOPS,
    P_IDLE_PROCESSOR,
    POWER_FACTORS,
    THROTTLED_SPEED_FACTOR,
    Hierarchy,
    Platform,
)

#: Node memory (MB) that stands for "unlimited" in a flat hierarchy (10^18 kB).
UNLIMITED_MEMORY_MB = 1e15
#: Processor memory bandwidth (GB/s) that stands for "unlimited" in a flat hierarchy
#: (10^18 kB/s).
UNLIMITED_MEM_BW_GBS = 1e12
#: ``node_type`` and ``processor_type`` of every entry of a flat hierarchy.
FLAT_TYPE = "flat host"


def with_flat_hierarchy(platform: Platform) -> Platform:
    """``platform`` (flat: ``hierarchy`` None) with one node / processor / core per host.

    See the module docstring for the values. Raises :class:`PlatformError` when the platform
    already has a hierarchy, or when a host's declared p-state has no positive speed (such a
    host could never finish a job).
    """
    if platform.hierarchy is not None:
        raise PlatformError(platform.source, None, "already has a node/processor hierarchy; "
                            "with_flat_hierarchy expects a flat platform (a SimGrid/Batsim XML "
                            "read without a hierarchy file)")
    n = platform.nb_machines
    machines = np.arange(n)
    declared = platform.initial_pstate
    speed = platform.speeds[machines, declared]
    bad = np.flatnonzero(~(np.isfinite(speed) & (speed > 0)))
    if bad.size:
        k = int(bad[0])
        raise PlatformError(platform.source, f"host {platform.host_names[k]!r}",
                            f"speed {speed[k]!r} flop/s in its declared p-state "
                            f"{int(declared[k])}; a core of a flat hierarchy needs a positive "
                            "speed", "speed")
    idle = np.nan_to_num(platform.watts_idle[machines, declared])
    full = np.nan_to_num(platform.watts_full[machines, declared])
    gflops = speed / 1e9
    hierarchy = Hierarchy(
        core_processor=machines,
        core_node=machines,
        processor_node=machines,
        processor_mem_bw_gbs=np.full(n, UNLIMITED_MEM_BW_GBS),
        processor_gflops_per_core=gflops,
        processor_watts_per_core=full,
        processor_type=(FLAT_TYPE,) * n,
        node_memory_mb=np.full(n, UNLIMITED_MEMORY_MB),
        node_type=(FLAT_TYPE,) * n,
        node_cluster=np.zeros(n, np.int64),
        reference_speed_gflops=float(np.mean(gflops)),
    )
    idle_speed = np.full(n, IDLE_SPEED_FLOPS)
    speeds = np.column_stack([speed, THROTTLED_SPEED_FACTOR * speed, idle_speed, idle_speed])
    watts_idle = np.column_stack([idle, idle, idle, idle])
    watts_full = np.column_stack([full, full, idle, idle])
    return Platform(
        host_names=platform.host_names,
        speeds=speeds,
        watts_idle=watts_idle,
        watts_full=watts_full,
        nb_pstates=np.full(n, len(POWER_FACTORS)),
        initial_pstate=np.full(n, P_IDLE_PROCESSOR),
        hierarchy=hierarchy,
        source=platform.source,
    )
