"""Platforms of any size for the benchmarks: the bundled gaia platform's node mix, scaled.

gaia (UniLu's Gaia cluster, 2,280 cores in 153 nodes of nine types, from 12-core Bullx blades
to 160-core SGI UV-2000 and Bullx S6030 machines) is HDeepRM's heterogeneity model: several
processor types with their own speed, power and memory bandwidth, nodes with their own
memory. ``scaled_gaia(n)`` keeps every node type in gaia's proportions (rounding down) and
tops up with 12-core Bullx B500 blades to about ``n`` cores, so a 100-core platform is
mostly blades and a 100,000-core one is about 44 gaias.
"""

from __future__ import annotations

import math
from dataclasses import replace
from functools import lru_cache

import numpy as np

from hdeeprm.inputs.platform import bundled_platform, compile_platform, read_platform_description
from hdeeprm.inputs.platform.model import Platform

GAIA_CORES = 2280
FILLER = "Bullx B500-1"  # 12 cores, the most common gaia node
FILLER_CORES = 12

FLAT_SPEED_FLOPS = 1e9  # 1 Gflop/s per host
FLAT_WATTS_IDLE = 100.0
FLAT_WATTS_FULL = 200.0


@lru_cache(maxsize=None)
def scaled_gaia(nb_cores: int) -> Platform:
    """gaia's node mix scaled to about ``nb_cores`` cores (at most 11 more)."""
    description = read_platform_description(bundled_platform("gaia"))
    cluster = description.clusters[0]
    factor = nb_cores / GAIA_CORES
    lib = description.typelib
    groups, total = [], 0
    for group in cluster.node_groups:
        number = int(math.floor(group.number * factor))
        cores = _node_cores(lib, group.node_type)
        if number:
            groups.append(replace(group, number=number))
            total += number * cores
    extra = max(0, math.ceil((nb_cores - total) / FILLER_CORES))
    if extra:
        groups.append(replace(cluster.node_groups[0], node_type=FILLER, number=extra))
    cluster = replace(cluster, id=f"gaia_x{factor:.3g}", node_groups=tuple(groups))
    described = replace(description, clusters=(cluster,), source=f"<gaia scaled to {nb_cores} cores>")
    return compile_platform(described)


def _node_cores(lib, node_type: str) -> int:
    return sum(lib.processors[p].cores for p in lib.nodes[node_type].processor_sequence())


def flat_platform(nb_hosts: int) -> Platform:
    """``nb_hosts`` single-core hosts at 1 Gflop/s, 100 W idle / 200 W at full load, one
    p-state: what Batsim's own benchmark platforms were (batsim-semantics section 3)."""
    n = int(nb_hosts)
    width = len(str(max(n - 1, 0)))
    return Platform(
        host_names=tuple(f"h{i:0{width}d}" for i in range(n)),
        speeds=np.full((n, 1), FLAT_SPEED_FLOPS),
        watts_idle=np.full((n, 1), FLAT_WATTS_IDLE),
        watts_full=np.full((n, 1), FLAT_WATTS_FULL),
        nb_pstates=np.ones(n, np.int64),
        initial_pstate=np.zeros(n, np.int64),
        source=f"<flat {n} x 1 Gflop/s>",
    )
