"""HDeepRM platform JSON: read, validate, and compile into a :class:`Platform`.

A platform JSON lists clusters of typed nodes (types come from the type library) and the
network technology of the links. Compilation walks it depth-first with global counters,
cluster -> node -> processor -> core, so that core ``k`` (the machine id) is the k-th core met
in file order. One machine (SimGrid host) is made per core.

Reading (:func:`read_platform_description`) and compiling (:func:`compile_platform`) are
separate so that the SimGrid XML writer can reuse the validated description with its links.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hdeeprm.common.bundled import DATA_DIR
from hdeeprm.common.errors import PlatformError
from hdeeprm.inputs.limits import MAX_CORES, clip
from hdeeprm.inputs.platform.model import (
    IDLE_SPEED_FLOPS,
    P_IDLE_PROCESSOR,
    POWER_FACTORS,
    THROTTLED_SPEED_FACTOR,
    Hierarchy,
    Platform,
)
from hdeeprm.inputs.platform.typelib import (
    TIME_UNITS,
    JsonChecker,
    PathLike,
    TypeLibrary,
    as_type_library,
    parse_quantity,
    read_json,
    suggest,
)

NB_PSTATES = len(POWER_FACTORS)
#: p-state every core of a compiled HDeepRM platform declares at start, as HDeepRM's XML does.
INITIAL_PSTATE = P_IDLE_PROCESSOR


@dataclass(frozen=True)
class LinkSpec:
    """A link model: network type name, its SimGrid bandwidth string and value (bytes/s),
    and the SimGrid latency string as written with its value (s)."""

    network_type: str
    bandwidth: str
    bandwidth_bytes_per_s: float
    latency: str
    latency_s: float


@dataclass(frozen=True)
class NodeGroup:
    """``number`` identical nodes of type ``node_type``."""

    node_type: str
    number: int


@dataclass(frozen=True)
class ClusterSpec:
    """One cluster: its informational ``id``, node groups in order, and the model of the
    per-node links inside it."""

    id: str
    node_groups: tuple[NodeGroup, ...]
    local_link: LinkSpec

    @property
    def nb_nodes(self) -> int:
        return sum(group.number for group in self.node_groups)


@dataclass(frozen=True)
class PlatformDescription:
    """A validated platform JSON together with the type library it was checked against.

    ``global_link`` is the model of every cluster's uplink to the master zone.
    """

    source: str
    clusters: tuple[ClusterSpec, ...]
    global_link: LinkSpec
    typelib: TypeLibrary


# --------------------------------------------------------------------------------------------
# Reading
# --------------------------------------------------------------------------------------------


def _read_link(check: JsonChecker, value: object, path: Sequence[str | int],
               typelib: TypeLibrary) -> LinkSpec:
    link = check.obj(value, path, ("type", "latency"))
    name = check.string(link["type"], [*path, "type"])
    network = typelib.networks.get(name)
    if network is None:
        raise check.error([*path, "type"], f"unknown network type {name!r}; expected one of: "
                          + ", ".join(sorted(typelib.networks)) + suggest(name, typelib.networks))
    latency = check.string(link["latency"], [*path, "latency"])
    try:
        latency_s = parse_quantity(latency, TIME_UNITS)
    except ValueError as exc:
        raise check.error([*path, "latency"], f"invalid SimGrid latency: {exc}") from None
    if latency_s < 0:
        raise check.error([*path, "latency"], f"expected a non-negative latency, found {latency!r}")
    return LinkSpec(name, network.bandwidth, network.bandwidth_bytes_per_s, latency, latency_s)


def _read_cluster(check: JsonChecker, value: object, index: int,
                  typelib: TypeLibrary) -> ClusterSpec:
    path: list[str | int] = ["clusters", index]
    cluster = check.obj(value, path, ("nodes", "local_links"), ("id",))
    # The id is informational only (zones are named by index); default it for convenience.
    cid = check.string(cluster.get("id", f"cluster_{index}"), [*path, "id"])
    groups = []
    for i, entry in enumerate(check.list(cluster["nodes"], [*path, "nodes"])):
        gpath = [*path, "nodes", i]
        entry = check.obj(entry, gpath, ("type", "number"))
        name = check.string(entry["type"], [*gpath, "type"])
        if name not in typelib.nodes:
            raise check.error([*gpath, "type"], f"unknown node type {name!r}"
                              + suggest(name, typelib.nodes)
                              + f"; expected a key of the node type library "
                              f"({len(typelib.nodes)} types)")
        # 0 is accepted so a node type can be switched off without deleting its entry.
        number = check.integer(entry["number"], [*gpath, "number"], minimum=0)
        groups.append(NodeGroup(name, number))
    spec = ClusterSpec(cid, tuple(groups),
                       _read_link(check, cluster["local_links"], [*path, "local_links"], typelib))
    if spec.nb_nodes == 0:
        raise check.error([*path, "nodes"], "cluster has no node (all numbers are 0)")
    return spec


def read_platform_description(path: PathLike,
                              typelib: TypeLibrary | PathLike | None = None
                              ) -> PlatformDescription:
    """Read and validate an HDeepRM platform JSON file.

    ``typelib`` is a :class:`TypeLibrary`, a path (directory or file) extending the
    default library, or None for the default. Every problem raises :class:`PlatformError`
    naming the file and the JSON path.
    """
    lib = as_type_library(typelib)
    source = str(path)
    check = JsonChecker(source)
    data = check.obj(read_json(path), [], ("clusters", "global_links"))
    clusters = tuple(_read_cluster(check, value, i, lib)
                     for i, value in enumerate(check.list(data["clusters"], ["clusters"])))
    global_link = _read_link(check, data["global_links"], ["global_links"], lib)
    return PlatformDescription(source, clusters, global_link, lib)


# --------------------------------------------------------------------------------------------
# Compiling
# --------------------------------------------------------------------------------------------


def host_names(nb_cores: int, prefix: str = "cor_") -> tuple[str, ...]:
    """Host names ``cor_<k>`` zero-padded to the width of the largest index, so that
    SimGrid's byte-wise name order equals machine-id order."""
    width = len(str(max(nb_cores - 1, 0)))
    return tuple(f"{prefix}{k:0{width}d}" for k in range(nb_cores))


def _expand(counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For parents with ``counts`` children each: (parent of each child, rank of each child
    within its parent)."""
    parent = np.repeat(np.arange(len(counts)), counts)
    first = np.cumsum(counts) - counts
    return parent, np.arange(len(parent)) - first[parent]


def check_platform_size(description: PlatformDescription) -> int:
    """The platform's number of cores, counted without expanding anything; raises
    :class:`PlatformError` when it exceeds :data:`hdeeprm.inputs.limits.MAX_CORES` (one
    machine per core: a bigger platform would not fit in memory)."""
    lib = description.typelib
    node_cores: dict[str, int] = {}
    total = 0
    for c, cluster in enumerate(description.clusters):
        for i, g in enumerate(cluster.node_groups):
            if g.node_type not in node_cores:
                node = lib.nodes[g.node_type]
                node_cores[g.node_type] = sum(lib.processors[p].cores * n
                                              for p, n in node.processors)
            total += g.number * node_cores[g.node_type]
            if total > MAX_CORES:
                raise PlatformError(
                    description.source, f"clusters[{c}].nodes[{i}].number",
                    f"more than {MAX_CORES:,} cores, the limit on the size of a platform "
                    f"(one machine per core): {clip(g.number)} nodes of type "
                    f"{g.node_type!r} with {node_cores[g.node_type]} cores each",
                )
    return total


def compile_platform(description: PlatformDescription) -> Platform:
    """Compile a validated description into a hierarchy, then its machines
    (``platform_from_hierarchy``)."""
    lib = description.typelib
    # Groups of 0 nodes add nothing; skipping them also keeps their node type from being
    # expanded (its processors are not counted by check_platform_size).
    groups = [(c, g) for c, cluster in enumerate(description.clusters)
              for g in cluster.node_groups if g.number > 0]
    check_platform_size(description)

    # Index the node and processor types actually used, then build per-type lookup arrays.
    node_names = sorted({g.node_type for _, g in groups})
    node_index = {name: i for i, name in enumerate(node_names)}
    sequences = [lib.nodes[name].processor_sequence() for name in node_names]
    proc_names = sorted({p for seq in sequences for p in seq})
    proc_index = {name: i for i, name in enumerate(proc_names)}
    ptypes = [lib.processors[name] for name in proc_names]
    ptype_cores = np.array([p.cores for p in ptypes], dtype=np.int64)
    ptype_gflops = np.array([p.gflops_per_core for p in ptypes], dtype=np.float64)
    ptype_watts = np.array([p.watts_per_core for p in ptypes], dtype=np.float64)
    ptype_mem_bw = np.array([p.mem_bw_gbs for p in ptypes], dtype=np.float64)
    ntype_memory_mb = np.array([lib.nodes[n].memory_mb for n in node_names], dtype=np.float64)
    seq_len = np.array([len(s) for s in sequences], dtype=np.int64)
    seq_start = np.cumsum(seq_len) - seq_len
    seq_flat = np.array([proc_index[p] for s in sequences for p in s], dtype=np.int64)

    # Nodes, in depth-first order: node groups expanded by their counts.
    group_counts = np.array([g.number for _, g in groups], dtype=np.int64)
    node_type = np.repeat(np.array([node_index[g.node_type] for _, g in groups],
                                   dtype=np.int64), group_counts)
    node_cluster = np.repeat(np.array([c for c, _ in groups], dtype=np.int64), group_counts)

    # Processors: each node expands into its type's processor sequence.
    processor_node, rank = _expand(seq_len[node_type])
    processor_type = seq_flat[seq_start[node_type[processor_node]] + rank]

    # Cores: each processor expands into its type's core count.
    core_processor, _ = _expand(ptype_cores[processor_type])
    nb_cores = len(core_processor)
    if nb_cores == 0:
        raise PlatformError(description.source, "clusters", "platform has no core")

    gflops = ptype_gflops[processor_type]
    hierarchy = Hierarchy(
        core_processor=core_processor,
        core_node=processor_node[core_processor],
        processor_node=processor_node,
        processor_mem_bw_gbs=ptype_mem_bw[processor_type],
        processor_gflops_per_core=gflops,
        processor_watts_per_core=ptype_watts[processor_type],
        processor_type=tuple(proc_names[i] for i in processor_type),
        node_memory_mb=ntype_memory_mb[node_type],
        node_type=tuple(node_names[i] for i in node_type),
        node_cluster=node_cluster,
        # Core-weighted mean speed (mean over cores, not over processors).
        reference_speed_gflops=float(np.mean(gflops[core_processor])),
    )
    return platform_from_hierarchy(hierarchy, description.source)


def platform_from_hierarchy(hierarchy: Hierarchy, source: str = "<memory>") -> Platform:
    """The machines of an HDeepRM hierarchy: one host per core named ``cor_<k>``.

    Per core: speeds [G, 0.75 G, 0.001, 0.001] flop/s with G = GFLOP/s per core x 1e9, power
    [W, W, 0.25 W, 0.05 W] both idle and at full load with W = processor TDP / cores (so
    power depends only on the p-state), 4 p-states, initial p-state 3. Also the way to build
    a small platform by hand (tests, examples).
    """
    core_processor = hierarchy.core_processor
    nb_cores = len(core_processor)
    full_speed = hierarchy.processor_gflops_per_core[core_processor] * 1e9
    # 0.75 is applied to the speed in flop/s (not to G) to avoid rounding noise: 4.4 GFLOP/s
    # gives exactly 3.3e9 flop/s this way.
    speeds = np.column_stack([full_speed, THROTTLED_SPEED_FACTOR * full_speed,
                              np.full(nb_cores, IDLE_SPEED_FLOPS),
                              np.full(nb_cores, IDLE_SPEED_FLOPS)])
    watts = hierarchy.processor_watts_per_core[core_processor]
    power = watts[:, None] * np.asarray(POWER_FACTORS)[None, :]
    return Platform(
        host_names=host_names(nb_cores),
        speeds=speeds,
        watts_idle=power,
        watts_full=power,
        nb_pstates=np.full(nb_cores, NB_PSTATES),
        initial_pstate=np.full(nb_cores, INITIAL_PSTATE),
        hierarchy=hierarchy,
        source=source,
    )


def load_json_platform(path: PathLike, typelib: TypeLibrary | PathLike | None = None
                       ) -> Platform:
    """Read, validate and compile an HDeepRM platform JSON file into a :class:`Platform`."""
    return compile_platform(read_platform_description(path, typelib))


def bundled_platforms_dir() -> Path:
    """Folder of the example platforms shipped with the package."""
    return DATA_DIR / "platforms"


def bundled_platform(name: str) -> Path:
    """Path of the bundled example platform ``name`` (das2, gaia, learning, mc2, pik, ricc)."""
    path = bundled_platforms_dir() / f"{name}.json"
    if not path.is_file():
        known = sorted(p.stem for p in bundled_platforms_dir().glob("*.json"))
        raise PlatformError(name, None, "no bundled platform of that name; expected one of: "
                            + ", ".join(known))
    return path
