"""Figures built from the arrays of :mod:`hdeeprm.analysis.plots.data`.

Each builder is a function of plain arrays returning a ``matplotlib.figure.Figure`` with its
own Agg canvas: no pyplot, no global state, nothing shown on screen, so figures can be
built in threads, tests and headless servers. Artists the tests look at carry a ``gid``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hdeeprm.analysis.plots.data import Allocations, EnergyTrace, JobTable, Overuse, PstateOccupancy, StepSeries
from hdeeprm.analysis.plots.units import COMPARED_METRICS, Unit, energy_unit, metric_unit, time_unit

WIDE = (11.0, 5.0)  # inches; 1650 x 750 px at the default 150 dpi
QUALITATIVE = "tab20"
HIERARCHY_PSTATES = {0: "P0 busy, full speed", 1: "P1 busy, throttled (bandwidth)",
                     2: "P2 idle, sibling busy", 3: "P3 idle processor"}
HIERARCHY_COLOURS = {0: "#b2182b", 1: "#f4a582", 2: "#92c5de", 3: "#d9d9d9"}


def matplotlib_figure_class():
    """matplotlib's Figure and Agg canvas, or a one-line error saying how to install them."""
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError as e:
        from hdeeprm.analysis.plots import missing_matplotlib

        raise missing_matplotlib(e) from None
    return Figure, FigureCanvasAgg


def new_figure(size=WIDE, nrows: int = 1, ncols: int = 1, **subplot_kw):
    Figure, Canvas = matplotlib_figure_class()
    fig = Figure(figsize=size, layout="constrained")
    Canvas(fig)
    axes = fig.subplots(nrows, ncols, squeeze=False, **subplot_kw)
    return fig, axes


def _span(*arrays) -> float:
    values = np.concatenate([np.asarray(a, np.float64).ravel() for a in arrays] + [np.zeros(1)])
    values = values[np.isfinite(values)]
    return float(values.max() - min(values.min(), 0.0)) if values.size else 0.0


def _thousands(ax, axis: str = "y") -> None:
    from matplotlib.ticker import FuncFormatter

    fmt = FuncFormatter(lambda v, _: f"{v:,.0f}" if abs(v) >= 1000 else f"{v:g}")
    (ax.yaxis if axis == "y" else ax.xaxis).set_major_formatter(fmt)


def _empty(ax, message: str) -> None:
    ax.text(0.5, 0.5, message, transform=ax.transAxes, ha="center", va="center", fontsize=12, color="0.35")


def _step(ax, series: StepSeries, unit: Unit, end: float | None, **kw):
    """Draw a step series, held until ``end`` (s) when that is later than its last step; the
    line's data are exactly the series' points (plus that last hold)."""
    t, y = series.t, series.y
    if end is not None and t.size and end > t[-1]:
        t, y = np.append(t, end), np.append(y, y[-1])
    return ax.step(t * unit.scale, y, where="post", **kw)[0]


def _time_weighted_mean(series: StepSeries, end: float) -> float:
    """Mean over [0, end] (the value is 0 before the first step), as Batsim's metrics count
    time from 0."""
    if series.t.size == 0 or end <= 0:
        return 0.0
    t = np.append(series.t, max(end, series.t[-1]))
    return float((series.y * np.diff(t)).sum() / (t[-1] - min(t[0], 0.0)))


# ---------------------------------------------------------------------------- jobs


def job_colours(job_ids, cmap_name: str = QUALITATIVE) -> np.ndarray:
    """RGBA per job: job id (when numeric, else file position) cycling a qualitative map."""
    from matplotlib import colormaps

    cmap = colormaps[cmap_name]
    try:
        keys = np.array([int(j) for j in job_ids], np.int64)
    except ValueError:
        keys = np.arange(len(job_ids))
    return cmap(keys % cmap.N)


def gantt(jobs: JobTable, alloc: Allocations, nb_machines: int, *, labels: bool, title: str,
          size=(12.0, 6.0)):
    """One rectangle per (job, contiguous machine run), coloured by job; with ``labels``, a
    job's id is written in its largest rectangle when the text fits there."""
    from matplotlib.collections import PolyCollection

    fig, axes = new_figure(size)
    ax = axes[0, 0]
    n = len(alloc)
    top = max(nb_machines, int(alloc.last.max()) + 1 if n else 1)
    unit = time_unit(_span(alloc.start, alloc.finish))
    x0, x1 = alloc.start * unit.scale, alloc.finish * unit.scale
    y0, y1 = alloc.first.astype(np.float64), alloc.last + 1.0
    verts = np.stack([np.column_stack(c) for c in ((x0, y0), (x0, y1), (x1, y1), (x1, y0))], axis=1)
    colours = job_colours(jobs.job_id)[alloc.job] if n else np.zeros((0, 4))
    many = n > 2000
    rects = PolyCollection(verts, facecolors=colours, edgecolors="none" if many else "white",
                           linewidths=0 if many else 0.3, antialiased=not many, rasterized=n > 5000)
    rects.set_gid("gantt-rectangles")
    ax.add_collection(rects)
    ax.set_ylim(0, top)
    if n:
        lo, hi = float(x0.min()), float(x1.max())
        ax.set_xlim(lo, hi + (hi - lo) * 0.005 or 1.0)
        if labels:
            _gantt_labels(fig, ax, jobs, alloc, x0, x1, y0, y1)
    else:
        _empty(ax, "no job ran")
    ax.set_xlabel(f"time ({unit.name})")
    ax.set_ylabel("machine (core) id")
    ran = int(jobs.ran.sum())
    ax.set_title(f"Gantt chart: {ran} jobs on {top} machines ({n} allocation intervals)")
    fig.suptitle(title, fontsize=9, color="0.3")
    ax.yaxis.get_major_locator().set_params(integer=True)
    return fig


def _gantt_labels(fig, ax, jobs: JobTable, alloc: Allocations, x0, x1, y0, y1, fontsize: float = 7.0):
    # Rectangle sizes in points, from the laid-out axes: a label goes where its text fits.
    fig.draw_without_rendering()
    box = ax.get_window_extent()
    pts = 72.0 / fig.dpi
    (xa, xb), (ya, yb) = ax.get_xlim(), ax.get_ylim()
    w_pt = (x1 - x0) / (xb - xa) * box.width * pts
    h_pt = (y1 - y0) / (yb - ya) * box.height * pts
    area = w_pt * h_pt
    order = np.lexsort((-area, alloc.job))  # per job, its largest rectangle first
    first = order[np.r_[True, alloc.job[order][1:] != alloc.job[order][:-1]]]
    text = np.array([jobs.job_id[j] for j in alloc.job[first]], dtype=object)
    width_needed = 0.62 * fontsize * np.array([len(t) for t in text]) + 2
    fits = (w_pt[first] >= width_needed) & (h_pt[first] >= 1.15 * fontsize)
    for r, label in zip(first[fits], text[fits]):
        ax.text((x0[r] + x1[r]) / 2, (y0[r] + y1[r]) / 2, label, ha="center", va="center",
                fontsize=fontsize, clip_on=True, gid="gantt-label")


def queue_figure(series: StepSeries, end: float, title: str):
    fig, axes = new_figure()
    ax = axes[0, 0]
    unit = time_unit(_span(series.t, [end]))
    if series.t.size:
        line = _step(ax, series, unit, end, color="tab:blue", lw=1.2)
        line.set_gid("queue-size")
        ax.fill_between(line.get_xdata(), line.get_ydata(), step="post", alpha=0.25, color="tab:blue")
        mean = _time_weighted_mean(series, end)
        ax.set_title(f"Waiting jobs over time (max {int(series.y.max())}, time-average {mean:.1f})")
    else:
        _empty(ax, "no job ran")
        ax.set_title("Waiting jobs over time")
    ax.set_ylim(bottom=0)
    ax.set_xlabel(f"time ({unit.name})")
    ax.set_ylabel("waiting jobs (count)")
    ax.yaxis.get_major_locator().set_params(integer=True)
    fig.suptitle(title, fontsize=9, color="0.3")
    return fig


def utilization_figure(series: StepSeries, nb_machines: int, end: float, title: str):
    fig, axes = new_figure()
    ax = axes[0, 0]
    unit = time_unit(_span(series.t, [end]))
    if series.t.size:
        line = _step(ax, series, unit, end, color="tab:green", lw=1.0)
        line.set_gid("busy-machines")
        ax.fill_between(line.get_xdata(), line.get_ydata(), step="post", alpha=0.3, color="tab:green")
        mean = _time_weighted_mean(series, end) / max(nb_machines, 1)
        ax.set_title(f"Busy machines over time (mean {100 * mean:.1f} % of {nb_machines})")
    else:
        _empty(ax, "no job ran")
        ax.set_title("Busy machines over time")
    ax.axhline(nb_machines, ls="--", color="0.4", lw=1, label=f"platform: {nb_machines} machines")
    ax.set_ylim(0, nb_machines * 1.05 or 1)
    ax.set_xlabel(f"time ({unit.name})")
    ax.set_ylabel("busy machines (cores)")
    share = ax.secondary_yaxis("right", functions=(lambda v: 100 * v / max(nb_machines, 1),
                                                   lambda p: p * max(nb_machines, 1) / 100))
    share.set_ylabel("utilization (%)")
    ax.legend(loc="upper right", fontsize=8)
    _thousands(ax)
    fig.suptitle(title, fontsize=9, color="0.3")
    return fig


def lifecycle_figure(jobs: JobTable, title: str):
    """Per job, in submission order: waiting (grey) then running (coloured by final state)."""
    from matplotlib.collections import LineCollection

    fig, axes = new_figure((11.0, 6.0))
    ax = axes[0, 0]
    order = np.argsort(jobs.submit, kind="stable")
    rank = np.empty(len(jobs), np.int64)
    rank[order] = np.arange(len(jobs))
    unit = time_unit(_span(jobs.submit, jobs.finish))
    lw = float(np.clip(400 / max(len(jobs), 1), 0.4, 3.0))
    ran = jobs.ran
    s = lambda a: a[ran] * unit.scale  # noqa: E731
    y = rank[ran].astype(np.float64)
    wait = LineCollection(np.stack([np.column_stack((s(jobs.submit), y)), np.column_stack((s(jobs.start), y))], 1),
                          colors="0.7", linewidths=lw, label="waiting")
    wait.set_gid("lifecycle-waiting")
    ax.add_collection(wait)
    states = np.asarray(jobs.state, dtype=object)[ran]
    palette = {"COMPLETED_SUCCESSFULLY": "tab:blue", "COMPLETED_WALLTIME_REACHED": "tab:red",
               "COMPLETED_KILLED": "tab:purple"}
    for state in sorted(set(states.tolist())):
        pick = states == state
        seg = np.stack([np.column_stack((s(jobs.start)[pick], y[pick])),
                        np.column_stack((s(jobs.finish)[pick], y[pick]))], 1)
        label = state.replace("COMPLETED_", "").replace("_", " ").lower()
        coll = LineCollection(seg, colors=palette.get(state, "tab:gray"), linewidths=lw,
                              label=f"running, {label} ({int(pick.sum())})")
        coll.set_gid(f"lifecycle-running-{state}")
        ax.add_collection(coll)
    rejected = ~ran
    if rejected.any():
        ax.plot(jobs.submit[rejected] * unit.scale, rank[rejected], "x", color="black", ms=4,
                label=f"rejected ({int(rejected.sum())})", gid="lifecycle-rejected")
    ax.autoscale_view()
    ax.set_ylim(-1, max(len(jobs), 1))
    ax.set_xlabel(f"time ({unit.name})")
    ax.set_ylabel("job (submission order)")
    ax.yaxis.get_major_locator().set_params(integer=True)
    ax.set_title(f"Job lifecycles: {len(jobs)} jobs, waiting then running")
    ax.legend(loc="upper left", fontsize=8)
    fig.suptitle(title, fontsize=9, color="0.3")
    return fig


# ---------------------------------------------------------------------------- energy and p-states


def power_figure(trace: EnergyTrace, title: str):
    fig, axes = new_figure()
    ax = axes[0, 0]
    power = trace.power()
    unit = time_unit(_span(trace.t))
    if power.t.size:
        line = _step(ax, power, unit, float(trace.t[-1]), color="tab:orange", lw=0.9, label="power drawn")
        line.set_gid("power")
        # On HDeepRM platforms power depends on p-states only, so the idle floor is the
        # curve itself: draw it only where load makes a difference.
        if np.abs(power.y - trace.idle_power[:-1]).max() > 0.01 * power.y.max():
            idle = StepSeries(trace.t, trace.idle_power)
            _step(ax, idle, unit, None, color="0.35", lw=0.9, ls="--", label="idle power at current p-states",
                  gid="idle-power")
        mean = float(np.diff(trace.energy).sum() / (trace.t[-1] - trace.t[0]))
        ax.set_title(f"Platform power (mean {mean:,.0f} W, peak {power.y.max():,.0f} W)")
        ax.legend(loc="upper right", fontsize=8)
        ax.set_ylim(bottom=0)
    else:
        _empty(ax, "no energy samples")
        ax.set_title("Platform power")
    ax.set_xlabel(f"time ({unit.name})")
    ax.set_ylabel("power (W)")
    _thousands(ax)
    fig.suptitle(title, fontsize=9, color="0.3")
    return fig


def energy_figure(trace: EnergyTrace, title: str):
    fig, axes = new_figure()
    ax = axes[0, 0]
    unit = time_unit(_span(trace.t))
    eunit = energy_unit(float(trace.energy.max()) if trace.energy.size else 0.0)
    ax.plot(trace.t * unit.scale, trace.energy * eunit.scale, color="tab:red", lw=1.2, gid="energy")
    total = float(trace.energy[-1]) if trace.energy.size else 0.0
    ax.set_title(f"Energy consumed (total {total * eunit.scale:,.3g} {eunit.name})")
    ax.set_xlabel(f"time ({unit.name})")
    ax.set_ylabel(f"energy consumed ({eunit.name})")
    ax.set_ylim(bottom=0)
    fig.suptitle(title, fontsize=9, color="0.3")
    return fig


def pstate_figure(occ: PstateOccupancy, end: float, hierarchy: bool, title: str):
    from matplotlib import colormaps

    fig, axes = new_figure()
    ax = axes[0, 0]
    t, counts = occ.t, occ.counts
    if end > (t[-1] if t.size else 0):
        t, counts = np.append(t, end), np.vstack([counts, counts[-1:]]) if counts.size else counts
    unit = time_unit(_span(t))
    if occ.t.size:
        generic = colormaps["viridis"]
        top = max(int(occ.pstates.max()), 1)
        labels, colours = [], []
        for p in occ.pstates.tolist():
            if p < 0:
                labels.append("not reported yet")
                colours.append("white")
            elif hierarchy and p in HIERARCHY_PSTATES:
                labels.append(HIERARCHY_PSTATES[p])
                colours.append(HIERARCHY_COLOURS[p])
            else:
                labels.append(f"p-state {p}")
                colours.append(generic(p / top))
        polys = ax.stackplot(t * unit.scale, counts.T, labels=labels, colors=colours, step="post", linewidth=0)
        for p, poly in zip(occ.pstates.tolist(), polys):
            poly.set_gid(f"pstate-{p}")
        ax.set_ylim(0, counts.sum(axis=1).max())
        ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1), fontsize=8, title="p-state")
        ax.set_xlim(t[0] * unit.scale, t[-1] * unit.scale)
    else:
        _empty(ax, "no p-state change was recorded")
    ax.set_title("Machines per p-state over time")
    ax.set_xlabel(f"time ({unit.name})")
    ax.set_ylabel("machines (cores)")
    ax.yaxis.get_major_locator().set_params(integer=True)
    _thousands(ax)
    fig.suptitle(title, fontsize=9, color="0.3")
    return fig


# ---------------------------------------------------------------------------- over-utilisation


def blocking_figure(over: Overuse, end: float, which: tuple[str, ...], title: str):
    """Cumulative count of scheduling passes blocked for lack of cores / of node memory."""
    from hdeeprm.analysis.plots.data import cumulative_count

    fig, axes = new_figure()
    ax = axes[0, 0]
    sources = {"core": (over.core_shortages, "not enough free cores", "tab:blue"),
               "memory": (over.memory_shortages, "enough cores, not enough node memory", "tab:purple")}
    unit = time_unit(_span([end], over.core_shortages, over.memory_shortages))
    total = 0
    for name in which:
        times, label, colour = sources[name]
        total += times.size
        if times.size:
            series = cumulative_count(times)
            line = _step(ax, series, unit, end, color=colour, lw=1.3, label=f"{label} ({times.size})")
            line.set_gid(f"blocking-{name}")
    if total:
        ax.legend(loc="upper left", fontsize=8)
    else:
        _empty(ax, "no scheduling pass was blocked")
    ax.set_xlim(0, max(end, 1e-9) * unit.scale)
    ax.set_ylim(bottom=0)
    ax.set_xlabel(f"time ({unit.name})")
    ax.set_ylabel("blocked scheduling passes (cumulative count)")
    what = " and ".join({"core": "cores", "memory": "memory"}[w] for w in which)
    ax.set_title(f"Scheduling passes blocked for lack of {what}")
    fig.suptitle(title, fontsize=9, color="0.3")
    return fig


def bandwidth_figure(over: Overuse, end: float, title: str):
    """Per processor, the spans in which its busy cores asked for more memory bandwidth than
    it has (cores throttled to P1); spans still open at the end run to the end, hatched."""
    from matplotlib.collections import PolyCollection
    from matplotlib.patches import Patch

    fig, axes = new_figure((11.0, 6.0))
    ax = axes[0, 0]
    n = over.span_processor.size
    open_ = np.isnan(over.span_end)
    stop = np.where(open_, max(end, float(np.nanmax(over.span_end, initial=0.0))), over.span_end)
    unit = time_unit(_span(over.span_start, stop, [end]))
    x0, x1 = over.span_start * unit.scale, stop * unit.scale
    y0, y1 = over.span_processor - 0.4, over.span_processor + 0.4
    verts = np.stack([np.column_stack(c) for c in ((x0, y0), (x0, y1), (x1, y1), (x1, y0))], axis=1) \
        if n else np.zeros((0, 4, 2))
    for pick, colour, hatch, gid in ((~open_, "tab:red", None, "bandwidth-spans"),
                                     (open_, "tab:orange", "//", "bandwidth-open-spans")):
        coll = PolyCollection(verts[pick], facecolors=colour, edgecolors=colour if hatch else "none",
                              hatch=hatch, linewidths=0.3, rasterized=n > 5000)
        coll.set_gid(gid)
        ax.add_collection(coll)
    top = max(over.nb_processors, int(over.span_processor.max()) + 1 if n else 1)
    ax.set_ylim(-0.5, top - 0.5)
    ax.set_xlim(0, max(end, float(stop.max()) if n else 0.0, 1e-9) * unit.scale)
    if n:
        hours = float((stop - over.span_start).sum()) / 3600
        procs = np.unique(over.span_processor).size
        ax.set_title(f"Memory-bandwidth over-subscription: {n} spans on {procs} of {top} processors "
                     f"({hours:,.1f} processor-hours in P1)")
        handles = [Patch(color="tab:red", label="over-subscribed (cores in P1)")]
        if open_.any():
            handles.append(Patch(facecolor="tab:orange", hatch="//", label="still over-subscribed at the end"))
        ax.legend(handles=handles, loc="upper left", fontsize=8)
    else:
        ax.set_title("Memory-bandwidth over-subscription")
        _empty(ax, "no processor was over-subscribed")
    ax.set_xlabel(f"time ({unit.name})")
    ax.set_ylabel("processor id")
    ax.yaxis.get_major_locator().set_params(integer=True)
    fig.suptitle(title, fontsize=9, color="0.3")
    return fig


# ---------------------------------------------------------------------------- learning


@dataclass(frozen=True)
class Curve:
    name: str  # "rewards"
    values: np.ndarray  # one per episode
    ylabel: str


def moving_average(values: np.ndarray, window: int) -> np.ndarray:
    """Trailing mean over up to ``window`` episodes (shorter at the start)."""
    c = np.cumsum(np.insert(values, 0, 0.0))
    i = np.arange(1, values.size + 1)
    lo = np.maximum(i - window, 0)
    return (c[i] - c[lo]) / (i - lo)


def learning_figure(curves: list[Curve], title: str):
    fig, axes = new_figure((10.0, 2.8 * len(curves) + 0.6), nrows=len(curves), sharex=True)
    for ax, curve in zip(axes[:, 0], curves):
        episodes = np.arange(curve.values.size)
        ax.plot(episodes, curve.values, color="tab:blue", lw=0.8, alpha=0.55 if curve.values.size >= 10 else 1,
                marker="o" if curve.values.size < 30 else None, ms=3, label="per episode", gid=f"curve-{curve.name}")
        if curve.values.size >= 10:
            window = max(2, curve.values.size // 10)
            ax.plot(episodes, moving_average(curve.values, window), color="tab:red", lw=1.6,
                    label=f"mean of the last {window}", gid=f"curve-{curve.name}-mean")
            ax.legend(loc="best", fontsize=8)
        ax.set_ylabel(curve.ylabel)
        ax.set_title(f"{curve.name.capitalize()} per episode ({curve.values.size} episodes)", fontsize=10)
        ax.grid(alpha=0.3)
    axes[-1, 0].set_xlabel("episode")
    axes[-1, 0].xaxis.get_major_locator().set_params(integer=True)
    fig.suptitle(title, fontsize=9, color="0.3")
    return fig


def action_preferences_figure(probs: np.ndarray, names: list[str], title: str, top: int = 8):
    """First-decision probability of each action per episode. With many actions, the ``top``
    most likely at the last episode are named and the others drawn thin and grey."""
    from matplotlib import colormaps

    fig, axes = new_figure((11.0, 5.5))
    ax = axes[0, 0]
    nb_actions, nb_episodes = probs.shape
    episodes = np.arange(nb_episodes)
    ranked = np.argsort(-probs[:, -1], kind="stable")
    named = set(ranked[: top if nb_actions > top + 2 else nb_actions].tolist())
    cmap = colormaps["tab10"]
    marker = "o" if nb_episodes < 30 else None
    others = 0
    for a in range(nb_actions):
        if a in named:
            continue
        ax.plot(episodes, probs[a], color="0.75", lw=0.7, gid=f"action-{a}",
                label=None if others else f"other {nb_actions - len(named)} actions")
        others += 1
    for rank, a in enumerate(sorted(named, key=lambda a: -probs[a, -1])):
        ax.plot(episodes, probs[a], color=cmap(rank % 10), lw=1.6, marker=marker, ms=3,
                label=f"{names[a]} ({probs[a, -1]:.2f})", gid=f"action-{a}")
    ax.axhline(1 / nb_actions, color="0.3", ls=":", lw=1, label=f"uniform (1/{nb_actions})")
    ax.set_xlabel("episode")
    ax.set_ylabel("probability at the episode's first decision")
    ax.set_ylim(0, min(1.0, float(probs.max()) * 1.1 + 0.01))
    ax.xaxis.get_major_locator().set_params(integer=True)
    ax.set_title(f"Action preferences over {nb_episodes} episodes ({nb_actions} actions; legend: "
                 "probability at the last episode)")
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1), fontsize=8)
    ax.grid(alpha=0.3)
    fig.suptitle(title, fontsize=9, color="0.3")
    return fig


# ---------------------------------------------------------------------------- run comparison

def comparison_figure(names: list[str], values: np.ndarray, title: str = ""):
    """``values[r, m]``: run r's value of ``COMPARED_METRICS[m]``; a 2 x 4 grid of bar charts,
    one bar per run (same colour for a run in every panel), value written on each bar."""
    from matplotlib import colormaps

    fig, axes = new_figure((13.0, 6.5), nrows=2, ncols=4)
    cmap = colormaps["tab10"]
    colours = [cmap(i % 10) for i in range(len(names))]
    x = np.arange(len(names))
    for m, ((key, label, kind), ax) in enumerate(zip(COMPARED_METRICS, axes.ravel())):
        unit = metric_unit(kind, values[:, m])
        shown = values[:, m] * unit.scale
        bars = ax.bar(x, shown, color=colours, gid=f"compare-{key}")
        ax.bar_label(bars, labels=[_short(v) for v in shown], fontsize=7, padding=2)
        ax.set_title(label, fontsize=10)
        ax.set_ylabel(f"{label.lower()} ({unit.name or 'ratio'})")
        ax.set_ylim(0, max(1e-12, float(shown.max()) * 1.18) if shown.size else 1)
        ax.set_xticks(x, [""] * len(names))
        ax.tick_params(axis="x", length=0)
    from matplotlib.patches import Patch

    fig.legend(handles=[Patch(color=c, label=n) for c, n in zip(colours, names)], loc="outside lower center",
               ncols=min(len(names), 6), fontsize=9)
    fig.suptitle(title or f"Comparison of {len(names)} runs (lower is better)")
    return fig


def _short(v: float) -> str:
    if v == 0:
        return "0"
    if abs(v) >= 1e5 or abs(v) < 1e-2:
        return f"{v:.2e}"
    return f"{v:,.3g}" if abs(v) < 100 else f"{v:,.0f}"


# ---------------------------------------------------------------------------- workloads


def workload_figure(columns: dict[str, np.ndarray], title: str):
    """Histograms of a workload's job sizes, times and memory (log-scaled where values span
    decades); ``columns`` maps a label with its unit to the per-job values."""
    items = [(k, v[np.isfinite(v)]) for k, v in columns.items()]
    ncols = 3
    nrows = (len(items) + ncols - 1) // ncols
    fig, axes = new_figure((12.0, 3.4 * nrows + 0.5), nrows=nrows, ncols=ncols)
    for ax, (label, values) in zip(axes.ravel(), items):
        positive = values[values > 0]
        name = label.split(" (")[0].capitalize()
        if values.size == 0:
            _empty(ax, "no values")
        elif positive.size and positive.max() / positive.min() > 100:
            # Values spanning decades: log-spaced bins over the positive ones; zeros (e.g.
            # same-instant submissions) cannot sit on a log axis, so the title counts them.
            bins = np.geomspace(positive.min(), positive.max() * 1.0001, 30)
            ax.hist(positive, bins=bins, color="tab:blue", gid=f"hist-{label}")
            ax.set_xscale("log")
            zeros = values.size - positive.size
            if zeros:
                name += f" ({zeros:,} zeros not shown)"
        else:
            ax.hist(values, bins=30, color="tab:blue", gid=f"hist-{label}")
        ax.set_xlabel(label)
        ax.set_ylabel("jobs")
        ax.set_title(name, fontsize=10)
    for ax in axes.ravel()[len(items):]:
        ax.set_visible(False)
    fig.suptitle(title)
    return fig


# ---------------------------------------------------------------------------- evaluation

HIGHLIGHT_COLOUR, OTHER_COLOUR = "tab:red", "tab:blue"
HORIZONTAL_FROM = 7  # policies: from this many on, they are listed down the y axis


def _jitter(n: int, width: float = 0.3) -> np.ndarray:
    """Deterministic offsets in [-width/2, width/2) spreading n points (golden-ratio sequence,
    so neighbouring windows never pile up and every figure of the same data is the same)."""
    return ((np.arange(1, n + 1) * 0.6180339887498949) % 1.0 - 0.5) * width


def evaluation_figure(values: dict[str, np.ndarray], metric_label: str, title: str = "",
                      highlight: str | None = None):
    """Each policy's objective over the evaluation windows: a box plot (quartiles, whiskers at
    1.5 IQR) with every window drawn as a point and the mean as a diamond. Policies are
    ordered by mean, best (lowest) first; ``highlight`` (the agent) is drawn in its own colour.
    From ``HORIZONTAL_FROM`` policies on, policies run down the y axis (best at the top)."""
    import inspect

    names = list(values)
    data = {k: np.asarray(values[k], np.float64).ravel() for k in names}
    data = {k: v[np.isfinite(v)] for k, v in data.items()}
    means = {k: float(v.mean()) if v.size else np.inf for k, v in data.items()}
    names.sort(key=lambda k: means[k])  # stable: ties keep the caller's order
    horizontal = len(names) >= HORIZONTAL_FROM
    size = (10.0, max(4.0, 0.45 * len(names) + 1.5)) if horizontal else (max(8.0, 1.3 * len(names) + 2.0), 5.0)
    fig, axes = new_figure(size)
    ax = axes[0, 0]
    colours = [HIGHLIGHT_COLOUR if k == highlight else OTHER_COLOUR for k in names]
    positions = np.arange(len(names), dtype=np.float64)
    drawn = [k for k in names if data[k].size]
    if drawn:
        pick = [names.index(k) for k in drawn]
        # matplotlib 3.10 replaced vert=False by orientation="horizontal" (vert is deprecated).
        orient = ({"orientation": "horizontal" if horizontal else "vertical"}
                  if "orientation" in inspect.signature(ax.boxplot).parameters else {"vert": not horizontal})
        boxes = ax.boxplot([data[k] for k in drawn], positions=positions[pick], widths=0.55, patch_artist=True,
                           showfliers=False, medianprops={"color": "black", "lw": 1.2}, manage_ticks=False, **orient)
        for k, box in zip(drawn, boxes["boxes"]):
            colour = colours[names.index(k)]
            box.set(facecolor=colour, alpha=0.22, edgecolor=colour, gid=f"evaluation-box-{k}")
        for i in pick:
            k, v = names[i], data[names[i]]
            along = positions[i] + _jitter(v.size)
            xy = (v, along) if horizontal else (along, v)
            ax.scatter(*xy, s=16, color=colours[i], alpha=0.75, edgecolors="none", zorder=3,
                       gid=f"evaluation-points-{k}")
        mean_values = np.array([means[k] for k in drawn])
        xy = (mean_values, positions[pick]) if horizontal else (positions[pick], mean_values)
        ax.plot(*xy, ls="none", marker="D", ms=6, mfc="white", mec="black", zorder=4, gid="evaluation-means",
                label="mean")
        ax.legend(loc="best", fontsize=8)
    else:
        _empty(ax, "no evaluation values")
    labels = [f"{k}\n(mean {_short(means[k])})" if data[k].size else f"{k}\n(no value)" for k in names]
    if horizontal:
        ax.set_yticks(positions, labels, fontsize=8)
        ax.set_ylim(len(names) - 0.5, -0.5)  # best at the top
        ax.set_xlabel(metric_label)
        ax.grid(axis="x", alpha=0.3)
        ticks = ax.get_yticklabels()
    else:
        ax.set_xticks(positions, labels, fontsize=8)
        ax.set_xlim(-0.5, len(names) - 0.5)
        ax.set_ylabel(metric_label)
        ax.grid(axis="y", alpha=0.3)
        ticks = ax.get_xticklabels()
    for k, tick in zip(names, ticks):
        if k == highlight:
            tick.set(color=HIGHLIGHT_COLOUR, fontweight="bold")
    sizes = sorted({v.size for v in data.values()})
    windows = f"{sizes[0]}" if len(sizes) == 1 else f"{sizes[0]}-{sizes[-1]}"
    ax.set_title(f"{metric_label} over {windows} windows, {len(names)} policies "
                 "(best mean first, lower is better)", fontsize=10)
    if title:
        fig.suptitle(title, fontsize=9, color="0.3")
    return fig
