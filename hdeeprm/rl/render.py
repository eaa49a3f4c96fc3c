"""HeteroEnv's ``render()``: the scheduling state at a decision as text or as a small image.

Both read one ``Snapshot``, which HeteroEnv takes from whichever implementation runs the
episode (the Python reference or the compiled steps: the same core and queue arrays, see
``HeteroEnv._snapshot``), so that both paths render the same state the same way.

Per core, four states, from the core's job and the p-state the scheduler last set:
``#`` busy at full speed, ``%`` busy but throttled (its processor's memory bandwidth is
over-subscribed), ``-`` idle while another core of its processor is busy, ``.`` idle with its
whole processor idle. The image uses one colour per state (numpy only: no plotting library).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from hdeeprm.inputs.platform.model import P_IDLE_PROCESSOR, P_THROTTLED, Hierarchy
from hdeeprm.inputs.workload.model import WorkloadArrays

RENDER_MODES = ("ansi", "rgb_array")

BUSY, THROTTLED, IDLE_SIBLING, IDLE_PROCESSOR = range(4)
CORE_CHARS = np.array(list("#%-."))
CORE_COLOURS = np.array([
    # Okabe-Ito, as the figures (hdeeprm.analysis.plots.style): told apart with any colour vision.
    (0, 114, 178),  # busy: blue
    (230, 159, 0),  # busy, throttled: orange
    (110, 110, 130),  # idle, its processor partly busy: grey
    (35, 35, 45),  # idle, its processor idle: near black
], dtype=np.uint8)
NO_CORE = np.array((255, 255, 255), dtype=np.uint8)  # padding of shorter node rows

# Bounds that keep a render small whatever the platform: the text shows at most this many
# waiting jobs and node lines (beyond that, one line per node type), a node's map only up to
# MAX_LINE_CORES cores; the image draws a node per row up to MAX_IMAGE_SIDE nodes and cores
# per node, and beyond that the cores in machine-id order on a square grid of at most
# MAX_IMAGE_SIDE x MAX_IMAGE_SIDE pixels, several cores per pixel on very large platforms.
MAX_QUEUE_LINES = 5
MAX_NODE_LINES = 32
MAX_LINE_CORES = 128
MAX_IMAGE_SIDE = 512
CELL_TARGET = 256  # pixels of the image's longer side at which cells stop growing
MAX_CELL = 8


@dataclass(frozen=True)
class Snapshot:
    """The state to render. ``queue``: waiting job indices in submission order; ``core_job``:
    each core's job (-1 idle); ``pstate``: each core's p-state as last set (HDeepRM's P0..P3)."""

    now: float
    steps: int
    queue: np.ndarray
    running: int
    completed: int
    core_job: np.ndarray
    pstate: np.ndarray
    done: bool
    started: bool = True  # False before the first reset(): nothing to show but the platform


def core_states(snapshot: Snapshot) -> np.ndarray:
    """Each core's state code (BUSY, THROTTLED, IDLE_SIBLING, IDLE_PROCESSOR)."""
    busy = snapshot.core_job >= 0
    # On flat platforms p-states follow no HDeepRM rule: busy / idle still comes from the job.
    return np.where(busy, np.where(snapshot.pstate == P_THROTTLED, THROTTLED, BUSY),
                    np.where(snapshot.pstate == P_IDLE_PROCESSOR, IDLE_PROCESSOR, IDLE_SIBLING)).astype(np.int64)


def render_ansi(snapshot: Snapshot, hierarchy: Hierarchy, jobs: WorkloadArrays | None) -> str:
    """A few lines of text: time and counts, the first waiting jobs, the cores per node (per
    node type on large platforms)."""
    states = core_states(snapshot)
    nb_cores = len(states)
    busy = int((states <= THROTTLED).sum())
    lines = []
    if not snapshot.started:
        lines.append("no episode yet: call reset()")
    else:
        end = "  (episode over)" if snapshot.done else ""
        lines.append(f"t = {snapshot.now:.1f} s  step {snapshot.steps}  waiting {len(snapshot.queue)}  "
                     f"running {snapshot.running}  completed {snapshot.completed}{end}")
    if len(snapshot.queue) and jobs is not None:
        shown = snapshot.queue[:MAX_QUEUE_LINES]
        lines.append(f"waiting jobs, first {len(shown)} of {len(snapshot.queue)} (id, cores, requested time):")
        for job in shown.tolist():
            requested = jobs.req_time[job]
            time_text = f"{requested:.0f} s" if math.isfinite(requested) else "unknown"
            cores = int(jobs.res[job])
            lines.append(f"  {jobs.job_ids[job]}  {cores} core{'' if cores == 1 else 's'}  {time_text}")
    lines.append(f"cores {busy}/{nb_cores} busy  (# busy, % throttled, - idle beside a busy core, "
                 ". idle processor)")
    if hierarchy.nb_nodes <= MAX_NODE_LINES:
        lines.extend(_node_lines(states, hierarchy))
    else:
        lines.extend(_type_lines(states, hierarchy))
    return "\n".join(lines) + "\n"


def _node_lines(states: np.ndarray, hierarchy: Hierarchy) -> list[str]:
    width = max(len(name) for name in hierarchy.node_type)
    lines = []
    for node in range(hierarchy.nb_nodes):
        cores = np.flatnonzero(hierarchy.core_node == node)
        node_states = states[cores]
        count = f"{int((node_states <= THROTTLED).sum())}/{len(cores)}"
        if len(cores) > MAX_LINE_CORES:
            cells = ""
        else:
            # Processors separated by '|': throttling and idle processors are per processor.
            processors = hierarchy.core_processor[cores]
            cut = np.flatnonzero(np.diff(processors)) + 1
            cells = "|".join("".join(CORE_CHARS[part]) for part in np.split(node_states, cut))
        lines.append(f"node {node:>2} {hierarchy.node_type[node]:<{width}}  {count:>7}  {cells}".rstrip())
    return lines


def _type_lines(states: np.ndarray, hierarchy: Hierarchy) -> list[str]:
    """One line per node type (the most numerous first, at most MAX_NODE_LINES)."""
    types = np.array(hierarchy.node_type, dtype=object)
    node_of_type: dict[str, np.ndarray] = {}
    for name in dict.fromkeys(hierarchy.node_type):
        node_of_type[name] = types == name
    core_type_mask = {name: mask[hierarchy.core_node] for name, mask in node_of_type.items()}
    order = sorted(node_of_type, key=lambda name: -int(node_of_type[name].sum()))
    lines = []
    for name in order[:MAX_NODE_LINES]:
        cores = states[core_type_mask[name]]
        lines.append(f"{name}: {int(node_of_type[name].sum())} nodes, {int((cores <= THROTTLED).sum())}/"
                     f"{len(cores)} cores busy, {int((cores == THROTTLED).sum())} throttled")
    if len(order) > MAX_NODE_LINES:
        rest = np.zeros(len(states), dtype=bool)
        for name in order[MAX_NODE_LINES:]:
            rest |= core_type_mask[name]
        lines.append(f"{len(order) - MAX_NODE_LINES} more node types: {int((states[rest] <= THROTTLED).sum())}/"
                     f"{int(rest.sum())} cores busy")
    return lines


def render_rgb(snapshot: Snapshot, hierarchy: Hierarchy) -> np.ndarray:
    """An (H, W, 3) uint8 image of the cores: one row per node, one cell per core, on
    platforms of up to MAX_IMAGE_SIDE nodes and cores per node; else a square grid of cores
    in machine-id order."""
    states = core_states(snapshot)
    cores_per_node = np.bincount(hierarchy.core_node, minlength=hierarchy.nb_nodes)
    if hierarchy.nb_nodes <= MAX_IMAGE_SIDE and cores_per_node.max() <= MAX_IMAGE_SIDE:
        rows, cols = hierarchy.nb_nodes, int(cores_per_node.max())
        # Cores are grouped by node in machine-id order on HDeepRM platforms, but place each
        # by its rank within its node so that any numbering draws correctly.
        order = np.argsort(hierarchy.core_node, kind="stable")
        rank = np.empty(len(states), dtype=np.int64)
        starts = np.concatenate([[0], np.cumsum(cores_per_node)[:-1]])
        rank[order] = np.arange(len(states)) - np.repeat(starts, cores_per_node)
        grid = np.empty((rows, cols, 3), dtype=np.uint8)
        grid[:] = NO_CORE
        grid[hierarchy.core_node, rank] = CORE_COLOURS[states]
    else:
        # Several cores per pixel on platforms too large for one each: a pixel shows its
        # busiest core (state codes run from busy to idle).
        per_pixel = max(1, math.ceil(len(states) / MAX_IMAGE_SIDE**2))
        padded = np.full(math.ceil(len(states) / per_pixel) * per_pixel, IDLE_PROCESSOR, dtype=np.int64)
        padded[:len(states)] = states
        pixels = padded.reshape(-1, per_pixel).min(axis=1)
        cols = math.ceil(math.sqrt(len(pixels)))
        rows = math.ceil(len(pixels) / cols)
        grid = np.empty((rows * cols, 3), dtype=np.uint8)
        grid[:] = NO_CORE
        grid[:len(pixels)] = CORE_COLOURS[pixels]
        grid = grid.reshape(rows, cols, 3)
    cell = max(1, min(MAX_CELL, CELL_TARGET // max(rows, cols)))
    return np.ascontiguousarray(grid.repeat(cell, axis=0).repeat(cell, axis=1))
