"""The files real Batsim needs: a SimGrid platform XML and a Batsim JSON workload.

Platform: one host per machine (per core on HDeepRM platforms) with its speed in every
p-state and ``wattage_per_state`` (idle:full W per p-state), plus a ``master_host`` of 0 W.
Host names must sort, byte-wise, in machine-id order, because Batsim numbers hosts that
way; the backend still reads the id of every name from SIMULATION_BEGINS.

By default every host sits in one Vivaldi zone at coordinates ``0 0 0`` with no links:
Batsim's internal messages then take no simulated time, so submissions, starts and ends
happen at the exact workload times, as on the embedded engine. ``network="links"`` writes
the original HDeepRM link model instead (per-node up/down links inside each cluster zone,
one uplink per cluster to the master zone); it needs the platform JSON's description, and
its latencies shift every time by a little, as on a real network.

Zones of the links model, as SimGrid 3.32 needs them: the master zone is a ``Full`` zone, not
``None``. Batsim's submitters and server both run on ``master_host`` and talk through 1-byte
mailbox messages, and a message between two hosts of one zone asks that zone for a local
route (``NetZoneImpl::get_global_route_with_netzones``); a ``None`` zone (``EmptyZone``) dies
there ("There can't be route in an Empty zone"), while a ``Full`` zone of one host answers with
the network model's loopback link, which it adds when it is sealed. Each ``zoneRoute`` of the
(Full) main zone joins two of its child zones through gateways that lie inside them
(``master_host`` and the cluster's router); each ``route`` of a cluster zone joins a core and the
router through the core's node link. Cores of one cluster have no route between them: jobs have
no communication (``com`` 0), and SimGrid only looks routes up for non-zero byte counts.

Workload: every job gets its own profile (``p<index>``), so per-job work, memory and
bandwidth survive even when two jobs of a trace had the same profile name.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
from lxml import etree

from hdeeprm.common.errors import ConfigError, PlatformError
from hdeeprm.inputs.platform.json_platform import PlatformDescription
from hdeeprm.inputs.platform.model import Platform
from hdeeprm.inputs.workload.batsim_json import _id_value
from hdeeprm.inputs.workload.model import KIND_DELAY, WorkloadArrays

MASTER_HOST = "master_host"
NETWORKS = ("zero-latency", "links")
_DOCTYPE = '<!DOCTYPE platform SYSTEM "https://simgrid.org/simgrid.dtd">'


def _num(value: float) -> str:
    """Shortest text that reads back as exactly ``value`` (integers without ``.0``)."""
    value = float(value)
    return str(int(value)) if value.is_integer() and abs(value) < 1e15 else repr(value)


def _check_names(platform: Platform) -> None:
    names = list(platform.host_names)
    if names != sorted(names) or len(set(names)) != len(names):
        raise PlatformError(platform.source, "host names", "host names must be distinct and sort "
                            "byte-wise in machine-id order (Batsim numbers hosts that way)")
    if MASTER_HOST in names:
        raise PlatformError(platform.source, "host names", f"{MASTER_HOST!r} is reserved for "
                            "Batsim's master host")


def _host(parent: etree._Element, platform: Platform, machine: int, **attributes: str) -> None:
    n = int(platform.nb_pstates[machine])
    speeds = ", ".join(_num(s) + "f" for s in platform.speeds[machine, :n])
    watts = ", ".join(f"{_num(i)}:{_num(f)}" for i, f in
                      zip(platform.watts_idle[machine, :n], platform.watts_full[machine, :n]))
    host = etree.SubElement(parent, "host", id=platform.host_names[machine], **attributes,
                            speed=speeds, pstate=str(int(platform.initial_pstate[machine])))
    etree.SubElement(host, "prop", id="wattage_per_state", value=watts)


def _master(parent: etree._Element, **attributes: str) -> None:
    host = etree.SubElement(parent, "host", id=MASTER_HOST, **attributes, speed="1Gf")
    etree.SubElement(host, "prop", id="wattage_per_state", value="0:0")


def platform_xml(platform: Platform, network: str = "zero-latency",
                 description: PlatformDescription | None = None) -> bytes:
    """The SimGrid platform XML of ``platform`` (see the module docstring)."""
    _check_names(platform)
    root = etree.Element("platform", version="4.1")
    if network == "zero-latency":
        zone = etree.SubElement(root, "zone", id="AS0", routing="Vivaldi")
        _master(zone, coordinates="0 0 0")
        for machine in range(platform.nb_machines):
            _host(zone, platform, machine, coordinates="0 0 0")
    elif network == "links":
        if description is None or platform.hierarchy is None:
            raise ConfigError("network='links' needs an HDeepRM platform JSON (its clusters and "
                              "link types); use network='zero-latency' for other platforms")
        _linked_zones(root, platform, description)
    else:
        raise ConfigError(f"unknown network model {network!r}: expected one of {', '.join(NETWORKS)}")
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True,
                          doctype=_DOCTYPE)


def _link(parent: etree._Element, name: str, link) -> None:
    etree.SubElement(parent, "link", id=name, sharing_policy="SPLITDUPLEX",
                     bandwidth=link.bandwidth, latency=link.latency)


def _check_linked(platform: Platform, description: PlatformDescription) -> None:
    """The description must be the platform's own (same clusters, same nodes per cluster), and
    no host may take the name of a zone or router, which share SimGrid's namespace."""
    h = platform.hierarchy
    clusters = len(description.clusters)
    node_cluster = np.asarray(h.node_cluster)
    if node_cluster.size and (node_cluster.min() < 0 or node_cluster.max() >= clusters) or [
            int((node_cluster == c).sum()) for c in range(clusters)] != [
            cluster.nb_nodes for cluster in description.clusters]:
        raise ConfigError(f"network='links': the description {description.source} does not describe "
                          f"this platform ({platform.source}): its clusters and nodes differ")
    reserved = {"main", "master"} | {f"{p}_{c}" for p in ("clu", "rou") for c in range(clusters)}
    taken = sorted(reserved.intersection(platform.host_names))
    if taken:
        raise PlatformError(platform.source, "host names", f"{', '.join(map(repr, taken))}: names of "
                            "the zones and routers of network='links'")


def _linked_zones(root: etree._Element, platform: Platform, description: PlatformDescription) -> None:
    """The original HDeepRM layout: a Full zone of a master zone and one zone per cluster,
    nodes on their own up/down link, clusters on their own uplink."""
    _check_linked(platform, description)
    h = platform.hierarchy
    main = etree.SubElement(root, "zone", id="main", routing="Full")
    master = etree.SubElement(main, "zone", id="master", routing="Full")
    _master(master)
    cluster_of_core = h.node_cluster[h.core_node]
    for c, cluster in enumerate(description.clusters):
        zone = etree.SubElement(main, "zone", id=f"clu_{c}", routing="Full")
        etree.SubElement(zone, "router", id=f"rou_{c}")
        cores = np.flatnonzero(cluster_of_core == c)
        for node in np.unique(h.core_node[cores]).tolist():
            _link(zone, f"udl_{node}", cluster.local_link)
            for core in cores[h.core_node[cores] == node].tolist():
                _host(zone, platform, core)
        for core in cores.tolist():
            node = int(h.core_node[core])
            name = platform.host_names[core]
            for src, dst, direction in ((f"rou_{c}", name, "DOWN"), (name, f"rou_{c}", "UP")):
                route = etree.SubElement(zone, "route", src=src, dst=dst, symmetrical="NO")
                etree.SubElement(route, "link_ctn", id=f"udl_{node}", direction=direction)
    for c in range(len(description.clusters)):
        _link(main, f"glob_lnk_{c}", description.global_link)
    for c in range(len(description.clusters)):
        for src, dst, gw_src, gw_dst, direction in (
                ("master", f"clu_{c}", MASTER_HOST, f"rou_{c}", "DOWN"),
                (f"clu_{c}", "master", f"rou_{c}", MASTER_HOST, "UP")):
            route = etree.SubElement(main, "zoneRoute", src=src, dst=dst, gw_src=gw_src,
                                     gw_dst=gw_dst, symmetrical="NO")
            etree.SubElement(route, "link_ctn", id=f"glob_lnk_{c}", direction=direction)


def write_platform_xml(platform: Platform, path: str | Path, network: str = "zero-latency",
                       description: PlatformDescription | None = None) -> None:
    Path(path).write_bytes(platform_xml(platform, network, description))


def workload_json(jobs: WorkloadArrays, nb_res: int) -> str:
    """Batsim JSON for compiled jobs, one profile per job, one job or profile per line.
    Job ids are kept, so Batsim calls job ``i`` ``w0!<jobs.job_ids[i]>``."""
    job_lines, profile_lines = [], []
    for i in range(jobs.nb_jobs):
        job = {"id": _id_value(jobs.job_ids[i]), "subtime": float(jobs.subtime[i]), "res": int(jobs.res[i]),
               "profile": f"p{i}"}
        if math.isfinite(jobs.walltime[i]):
            job["walltime"] = float(jobs.walltime[i])
        job_lines.append(_dumps(job))
        if jobs.kind[i] == KIND_DELAY:
            profile = {"type": "delay", "delay": float(jobs.work[i])}
        else:
            profile = {"type": "parallel_homogeneous", "cpu": float(jobs.work[i]), "com": 0}
        # HDeepRM's fields, which Batsim ignores but other tools read.
        if jobs.mem_mb[i]:
            profile["mem"] = float(jobs.mem_mb[i])
        if jobs.mem_bw_gbs[i]:
            profile["mem_bw"] = float(jobs.mem_bw_gbs[i])
        if math.isfinite(jobs.req_time[i]):
            profile["req_time"] = float(jobs.req_time[i])
        if jobs.kind[i] != KIND_DELAY:
            profile["req_ops"] = float(jobs.req_work[i])
        profile_lines.append(f'"p{i}": {_dumps(profile)}')
    return ("{\n" f'"nb_res": {int(nb_res)},\n"jobs": [\n' + ",\n".join(job_lines) + "\n],\n"
            '"profiles": {\n' + ",\n".join(profile_lines) + "\n}\n}\n")


def write_workload_json(jobs: WorkloadArrays, nb_res: int, path: str | Path) -> None:
    Path(path).write_text(workload_json(jobs, nb_res), encoding="utf-8")


def _dumps(value) -> str:
    return json.dumps(value, allow_nan=False)
