"""``hierarchy.json``: HDeepRM's nodes -> processors -> cores structure beside a platform XML.

Format (one object)::

    {"platform_pstate": 0,            p-state the XML declares for every core
     "initial_pstate": 3,             p-state the decision side starts the cores in
     "reference_speed_gflops": 3.6,   mean core speed, GFLOP/s
     "nodes": [{"id": 0, "type": "N", "memory_mb": 12000, "processors": [
        {"id": 0, "type": "A", "mem_bw": 32, "gflops_per_core": 4.0, "power_per_core": 20.0,
         "cores": [0, 1, 2, 3], "hosts": ["cor_000", ...]}, ...]}, ...]}

Units: ``memory_mb`` MB per node, ``mem_bw`` GB/s per processor, ``gflops_per_core`` GFLOP/s,
``power_per_core`` W. ``cores`` are machine ids; ``hosts`` (optional when reading) the host
names at those ids, checked against the platform. Each node may also carry ``cluster`` (its
cluster index, 0 when absent), which :func:`write_hierarchy` writes so that a JSON platform's
hierarchy survives the trip through XML.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hdeeprm.common.errors import PlatformError
from hdeeprm.inputs.platform.model import P_IDLE_PROCESSOR, POWER_FACTORS, Hierarchy, Platform
from hdeeprm.inputs.platform.typelib import JsonChecker, PathLike, read_json

_NODE_KEYS = ("id", "type", "memory_mb", "processors")
_PROCESSOR_KEYS = ("id", "type", "mem_bw", "gflops_per_core", "power_per_core", "cores")


@dataclass(frozen=True)
class HierarchyFile:
    """A parsed hierarchy file.

    ``core_hosts[k]`` is the host name the file gives for machine ``k`` (None when the file
    lists no hosts for its processor).
    """

    source: str
    platform_pstate: int
    initial_pstate: int
    hierarchy: Hierarchy
    core_hosts: tuple[str | None, ...]


class _Builder:
    """Collects per-node, per-processor and per-core values while checking ids."""

    def __init__(self, check: JsonChecker):
        self.check = check
        self.nodes: dict[int, tuple[float, str, int]] = {}  # id -> (memory MB, type, cluster)
        self.procs: dict[int, tuple[int, float, float, float, str]] = {}
        self.cores: dict[int, tuple[int, str | None]] = {}  # machine id -> (processor, host)

    def node(self, value: object, index: int) -> None:
        path: list[str | int] = ["nodes", index]
        node = self.check.obj(value, path, _NODE_KEYS, ("cluster",))
        nid = self.check.integer(node["id"], [*path, "id"], minimum=0)
        if nid in self.nodes:
            raise self.check.error([*path, "id"], f"duplicate node id {nid}")
        self.nodes[nid] = (
            self.check.number(node["memory_mb"], [*path, "memory_mb"], nonnegative=True),
            self.check.string(node["type"], [*path, "type"], nonempty=False),
            self.check.integer(node.get("cluster", 0), [*path, "cluster"], minimum=0),
        )
        procs = self.check.list(node["processors"], [*path, "processors"])
        for j, proc in enumerate(procs):
            self.processor(proc, [*path, "processors", j], nid)

    def processor(self, value: object, path: list[str | int], node: int) -> None:
        proc = self.check.obj(value, path, _PROCESSOR_KEYS, ("hosts",))
        pid = self.check.integer(proc["id"], [*path, "id"], minimum=0)
        if pid in self.procs:
            raise self.check.error([*path, "id"], f"duplicate processor id {pid}")
        self.procs[pid] = (
            node,
            self.check.number(proc["mem_bw"], [*path, "mem_bw"], positive=True),
            self.check.number(proc["gflops_per_core"], [*path, "gflops_per_core"], positive=True),
            self.check.number(proc["power_per_core"], [*path, "power_per_core"],
                              nonnegative=True),
            self.check.string(proc["type"], [*path, "type"], nonempty=False),
        )
        cores = self.check.list(proc["cores"], [*path, "cores"])
        hosts: list[str | None] = [None] * len(cores)
        if "hosts" in proc:
            listed = self.check.list(proc["hosts"], [*path, "hosts"])
            if len(listed) != len(cores):
                raise self.check.error([*path, "hosts"], f"{len(listed)} host names for "
                                       f"{len(cores)} cores; expected one per core")
            hosts = [self.check.string(h, [*path, "hosts", i]) for i, h in enumerate(listed)]
        for i, (core, host) in enumerate(zip(cores, hosts)):
            core = self.check.integer(core, [*path, "cores", i], minimum=0)
            if core in self.cores:
                raise self.check.error([*path, "cores", i], f"machine {core} is already a core "
                                       f"of processor {self.cores[core][0]}")
            self.cores[core] = (pid, host)

    def dense(self, ids: dict[int, object], what: str) -> list[int]:
        """Ids sorted, checked to be exactly 0..n-1 (arrays are indexed by them)."""
        order = sorted(ids)
        missing = sorted(set(range(len(order))) - set(order))
        if missing:
            raise self.check.error([], f"{what} ids must be 0..{len(order) - 1} with none "
                                   f"missing; {what} {missing[0]} is missing")
        return order


def read_hierarchy_file(path: PathLike) -> HierarchyFile:
    """Parse and validate a hierarchy file on its own (ids dense, each machine in exactly
    one processor)."""
    source = str(path)
    check = JsonChecker(source)
    data = check.obj(read_json(path), [],
                     ("platform_pstate", "initial_pstate", "reference_speed_gflops", "nodes"))
    builder = _Builder(check)
    for i, node in enumerate(check.list(data["nodes"], ["nodes"])):
        builder.node(node, i)
    node_ids = builder.dense(builder.nodes, "node")
    proc_ids = builder.dense(builder.procs, "processor")
    core_ids = builder.dense(builder.cores, "machine")

    nodes = [builder.nodes[i] for i in node_ids]
    procs = [builder.procs[i] for i in proc_ids]
    core_processor = np.array([builder.cores[k][0] for k in core_ids], dtype=np.int64)
    processor_node = np.array([p[0] for p in procs], dtype=np.int64)
    hierarchy = Hierarchy(
        core_processor=core_processor,
        core_node=processor_node[core_processor],
        processor_node=processor_node,
        processor_mem_bw_gbs=[p[1] for p in procs],
        processor_gflops_per_core=[p[2] for p in procs],
        processor_watts_per_core=[p[3] for p in procs],
        processor_type=tuple(p[4] for p in procs),
        node_memory_mb=[n[0] for n in nodes],
        node_type=tuple(n[1] for n in nodes),
        node_cluster=[n[2] for n in nodes],
        reference_speed_gflops=check.number(data["reference_speed_gflops"],
                                            ["reference_speed_gflops"], positive=True),
    )
    max_pstate = len(POWER_FACTORS) - 1
    return HierarchyFile(
        source=source,
        platform_pstate=check.integer(data["platform_pstate"], ["platform_pstate"], minimum=0),
        initial_pstate=_pstate(check, data["initial_pstate"], "initial_pstate", max_pstate),
        hierarchy=hierarchy,
        core_hosts=tuple(builder.cores[k][1] for k in core_ids),
    )


def _pstate(check: JsonChecker, value: object, key: str, maximum: int) -> int:
    pstate = check.integer(value, [key], minimum=0)
    if pstate > maximum:
        raise check.error([key], f"expected an HDeepRM p-state 0..{maximum}, found {pstate}")
    return pstate


def attach_hierarchy(platform: Platform, path: PathLike) -> Platform:
    """Return ``platform`` with the hierarchy of file ``path`` attached.

    Checks that the file covers every machine id of the platform exactly once, that its host
    names (when given) are the platform's at those ids, and that ``platform_pstate`` is the
    p-state the platform declares for its machines.
    """
    parsed = read_hierarchy_file(path)
    source = parsed.source
    n = platform.nb_machines
    if parsed.hierarchy.nb_cores != n:
        raise PlatformError(source, "nodes", f"covers machines 0..{parsed.hierarchy.nb_cores - 1}"
                            f" but platform {platform.source} has {n} machines")
    for k, host in enumerate(parsed.core_hosts):
        if host is not None and host != platform.host_names[k]:
            raise PlatformError(source, f"machine {k}", f"host {host!r} in the hierarchy but "
                                f"{platform.host_names[k]!r} in platform {platform.source}",
                                "hosts")
    declared = np.unique(platform.initial_pstate)
    if len(declared) != 1 or declared[0] != parsed.platform_pstate:
        raise PlatformError(source, "platform_pstate", f"{parsed.platform_pstate}, but platform "
                            f"{platform.source} declares p-state(s) "
                            + ", ".join(map(str, declared)))
    return platform.with_hierarchy(parsed.hierarchy)


# --------------------------------------------------------------------------------------------
# Writing
# --------------------------------------------------------------------------------------------


def _number(value: float) -> int | float:
    """Integral values as JSON integers (12000, 32), others (and integral values of 1e15 or
    more, which would be integers of too many digits to read back) as shortest float repr."""
    value = float(value)
    return int(value) if value.is_integer() and abs(value) < 1e15 else value


def _groups(owner: np.ndarray, nb_owners: int) -> list[np.ndarray]:
    """Indices of the items of each owner, ascending (owner[i] = owner of item i)."""
    order = np.argsort(owner, kind="stable")
    bounds = np.searchsorted(owner[order], np.arange(nb_owners + 1))
    return [order[bounds[o]:bounds[o + 1]] for o in range(nb_owners)]


def hierarchy_document(platform: Platform, initial_pstate: int = P_IDLE_PROCESSOR) -> str:
    """The hierarchy file text for a platform that has a hierarchy (see module docstring)."""
    h = platform.hierarchy
    if h is None:
        raise PlatformError(platform.source, None, "platform has no node/processor hierarchy "
                            "to write (it was read from a flat XML)")
    declared = np.unique(platform.initial_pstate)
    if len(declared) != 1:
        raise PlatformError(platform.source, None, "machines declare different initial "
                            "p-states; a hierarchy file records only one")
    procs_of_node = _groups(h.processor_node, h.nb_nodes)
    cores_of_proc = _groups(h.core_processor, h.nb_processors)
    lines = ["{",
             f'"platform_pstate": {int(declared[0])},',
             f'"initial_pstate": {int(initial_pstate)},',
             f'"reference_speed_gflops": {json.dumps(float(h.reference_speed_gflops))},',
             '"nodes": [']
    for n in range(h.nb_nodes):
        head = {"id": n, "type": h.node_type[n], "memory_mb": _number(h.node_memory_mb[n]),
                "cluster": int(h.node_cluster[n])}
        procs = []
        for q in procs_of_node[n]:
            cores = cores_of_proc[q]
            procs.append("  " + json.dumps({
                "id": int(q), "type": h.processor_type[q],
                "mem_bw": _number(h.processor_mem_bw_gbs[q]),
                "gflops_per_core": float(h.processor_gflops_per_core[q]),
                "power_per_core": float(h.processor_watts_per_core[q]),
                "cores": [int(k) for k in cores],
                "hosts": [platform.host_names[k] for k in cores],
            }))
        sep = "," if n < h.nb_nodes - 1 else ""
        lines.append(json.dumps(head)[:-1] + ', "processors": [')
        lines.append(",\n".join(procs) + "]}" + sep)
    lines += ["]", "}"]
    return "\n".join(lines) + "\n"


def write_hierarchy(platform: Platform, path: PathLike,
                    initial_pstate: int = P_IDLE_PROCESSOR) -> None:
    """Write the hierarchy file of a compiled HDeepRM platform.

    ``platform_pstate`` is the platform's declared initial p-state (the same for every
    machine), ``initial_pstate`` the p-state the decision side starts cores in (3, idle
    processor, as in HDeepRM).
    """
    Path(path).write_text(hierarchy_document(platform, initial_pstate), encoding="utf-8")
