"""Figures built from the arrays of :mod:`hdeeprm.analysis.plots.data`.

Each builder is a function of plain arrays returning a ``matplotlib.figure.Figure`` with its
own Agg canvas: no pyplot, nothing shown on screen, matplotlib's global settings as they were
after it returns, so figures can be built in tests and headless servers. Every builder takes
``style=`` ("default" or "paper"): how figures look, their colours and sizes are defined once,
in :mod:`hdeeprm.analysis.plots.style`; builders only pick roles (a series colour, a
reference line, a figure shape) from it. Artists the tests look at carry a ``gid``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hdeeprm.analysis.plots import style as s
from hdeeprm.analysis.plots.data import Allocations, EnergyTrace, JobTable, Overuse, PstateOccupancy, StepSeries
from hdeeprm.analysis.plots.style import styled
from hdeeprm.analysis.plots.units import COMPARED_METRICS, Unit, energy_unit, metric_unit, time_unit

HIERARCHY_PSTATES = {0: "P0 busy, full speed", 1: "P1 busy, throttled (bandwidth)",
                     2: "P2 idle, sibling busy", 3: "P3 idle processor"}
# Busy cores in the strong colours, throttled ones in the one that stands out, idle ones
# light: read as "how much of the platform works, and how much of it is slowed down".
HIERARCHY_COLOURS = {0: s.BLUE, 1: s.VERMILLION, 2: s.SKY, 3: s.LIGHT}


def matplotlib_figure_class():
    """hdeeprm's Figure class and the Agg canvas, or a one-line error saying how to install them."""
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg

        from hdeeprm.analysis.plots.canvas import StyledFigure
    except ImportError as e:
        from hdeeprm.analysis.plots import missing_matplotlib

        raise missing_matplotlib(e) from None
    return StyledFigure, FigureCanvasAgg


def figure_size(shape: str = "single", nrows: int = 1) -> tuple[float, float]:
    """Inches of a figure of ``shape`` in the current style: "single" (one axes), "tall" (one
    axes with a row per machine or job), "rows" (``nrows`` panels stacked, one column), "grid"
    (``nrows`` rows of panels across the page)."""
    st = s.current()
    if shape == "single":
        return st.single
    if shape == "tall":
        return st.tall
    if shape == "rows":
        return st.single[0], st.row_height * nrows + 0.3
    if shape == "grid":
        return st.grid_width, st.row_height * nrows + 0.8  # room for the legend or title
    raise ValueError(f"unknown figure shape {shape!r}")


def new_figure(shape: str | tuple[float, float] = "single", nrows: int = 1, ncols: int = 1, **subplot_kw):
    """A figure of the current style (``shape``: see :func:`figure_size`, or inches), with a
    grid of axes; constrained layout keeps labels and legends inside it."""
    Figure, Canvas = matplotlib_figure_class()
    size = figure_size(shape, nrows) if isinstance(shape, str) else shape
    fig = Figure(figsize=size, layout="constrained")
    fig.hdeeprm_style = s.current()
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
    ax.text(0.5, 0.5, message, transform=ax.transAxes, ha="center", va="center", fontsize="large", color=s.MUTED)


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


def job_colours(job_ids, colours=s.FILLS) -> np.ndarray:
    """RGBA per job: job id (when numeric, else file position) cycling ``colours``, so jobs of
    consecutive ids (often side by side) differ."""
    from matplotlib.colors import to_rgba_array

    palette = to_rgba_array(colours)
    try:
        keys = np.array([int(j) for j in job_ids], np.int64)
    except ValueError:
        keys = np.arange(len(job_ids))
    return palette[keys % len(palette)]


def _text_colours(rgba: np.ndarray) -> np.ndarray:
    """Black or white, whichever contrasts more with each background colour (WCAG relative
    luminance: black from 0.179 up)."""
    c = rgba[:, :3]
    linear = np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)
    luminance = linear @ np.array([0.2126, 0.7152, 0.0722])
    return np.where(luminance > 0.179, "black", "white")


@styled
def gantt(jobs: JobTable, alloc: Allocations, nb_machines: int, *, labels: bool, title: str, size=None):
    """One rectangle per (job, contiguous machine run), coloured by job; with ``labels``, a
    job's id is written in its largest rectangle when the text fits there."""
    from matplotlib.collections import PolyCollection

    fig, axes = new_figure(size or "tall")
    ax = axes[0, 0]
    ax.grid(False)  # rectangles fill the axes: a grid would only show through the gaps
    n = len(alloc)
    top = max(nb_machines, int(alloc.last.max()) + 1 if n else 1)
    unit = time_unit(_span(alloc.start, alloc.finish))
    x0, x1 = alloc.start * unit.scale, alloc.finish * unit.scale
    y0, y1 = alloc.first.astype(np.float64), alloc.last + 1.0
    verts = np.stack([np.column_stack(c) for c in ((x0, y0), (x0, y1), (x1, y1), (x1, y0))], axis=1)
    colours = job_colours(jobs.job_id)[alloc.job] if n else np.zeros((0, 4))
    many = n > 2000
    # Above 5,000 rectangles the bars alone are rasterised (at the file's dpi) in SVG and PDF,
    # axes and text staying vector: tens of thousands of vector boxes make files that viewers
    # and LaTeX render slowly, and no one tells the boxes apart at that density anyway.
    rects = PolyCollection(verts, facecolors=colours, edgecolors="none" if many else "white",
                           linewidths=0 if many else s.lw(0.25), antialiased=not many, rasterized=n > 5000)
    rects.set_gid("gantt-rectangles")
    ax.add_collection(rects)
    ax.set_ylim(0, top)
    if n:
        lo, hi = float(x0.min()), float(x1.max())
        ax.set_xlim(lo, hi + (hi - lo) * 0.005 or 1.0)
        if labels:
            _gantt_labels(fig, ax, jobs, alloc, x0, x1, y0, y1, colours)
    else:
        _empty(ax, "no job ran")
    ax.set_xlabel(f"time ({unit.name})")
    ax.set_ylabel("machine (core) id")
    ran = int(jobs.ran.sum())
    ax.set_title(f"Gantt chart: {ran} jobs on {top} machines ({n} allocation intervals)")
    s.run_title(fig, title)
    ax.yaxis.get_major_locator().set_params(integer=True)
    return fig


def _gantt_labels(fig, ax, jobs: JobTable, alloc: Allocations, x0, x1, y0, y1, colours):
    fontsize = s.current().annotation
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
    ink = _text_colours(colours[first[fits]]) if fits.any() else []
    for r, label, colour in zip(first[fits], text[fits], ink):
        ax.text((x0[r] + x1[r]) / 2, (y0[r] + y1[r]) / 2, label, ha="center", va="center",
                fontsize=fontsize, color=colour, clip_on=True, gid="gantt-label")


@styled
def queue_figure(series: StepSeries, end: float, title: str):
    fig, axes = new_figure()
    ax = axes[0, 0]
    unit = time_unit(_span(series.t, [end]))
    if series.t.size:
        line = _step(ax, series, unit, end, color=s.BLUE)
        line.set_gid("queue-size")
        ax.fill_between(line.get_xdata(), line.get_ydata(), step="post", alpha=0.25, color=s.BLUE, lw=0)
        mean = _time_weighted_mean(series, end)
        ax.set_title(f"Waiting jobs over time (max {int(series.y.max())}, time-average {mean:.1f})")
    else:
        _empty(ax, "no job ran")
        ax.set_title("Waiting jobs over time")
    ax.set_ylim(bottom=0)
    ax.set_xlabel(f"time ({unit.name})")
    ax.set_ylabel("waiting jobs (count)")
    ax.yaxis.get_major_locator().set_params(integer=True)
    s.run_title(fig, title)
    return fig


@styled
def utilization_figure(series: StepSeries, nb_machines: int, end: float, title: str):
    fig, axes = new_figure()
    ax = axes[0, 0]
    unit = time_unit(_span(series.t, [end]))
    if series.t.size:
        line = _step(ax, series, unit, end, color=s.GREEN, lw=s.lw(0.8), label="busy machines")
        line.set_gid("busy-machines")
        ax.fill_between(line.get_xdata(), line.get_ydata(), step="post", alpha=0.3, color=s.GREEN, lw=0)
        mean = _time_weighted_mean(series, end) / max(nb_machines, 1)
        ax.set_title(f"Busy machines over time (mean {100 * mean:.1f} % of {nb_machines})")
    else:
        _empty(ax, "no job ran")
        ax.set_title("Busy machines over time")
    ax.axhline(nb_machines, ls="--", color=s.REFERENCE, lw=s.lw(0.8), label=f"platform: {nb_machines} machines")
    ax.set_ylim(0, nb_machines * 1.05 or 1)
    ax.set_xlabel(f"time ({unit.name})")
    ax.set_ylabel("busy machines (cores)")
    share = ax.secondary_yaxis("right", functions=(lambda v: 100 * v / max(nb_machines, 1),
                                                   lambda p: p * max(nb_machines, 1) / 100))
    share.set_ylabel("utilization (%)")
    s.legend(fig, ax, "upper right")
    _thousands(ax)
    s.run_title(fig, title)
    return fig


#: Final states of jobs that ran; a state not listed here is drawn orange.
STATE_COLOURS = {"COMPLETED_SUCCESSFULLY": s.BLUE, "COMPLETED_WALLTIME_REACHED": s.VERMILLION,
                 "COMPLETED_KILLED": s.PURPLE}


@styled
def lifecycle_figure(jobs: JobTable, title: str):
    """Per job, in submission order: waiting (grey) then running (coloured by final state)."""
    from matplotlib.collections import LineCollection

    fig, axes = new_figure("tall")
    ax = axes[0, 0]
    order = np.argsort(jobs.submit, kind="stable")
    rank = np.empty(len(jobs), np.int64)
    rank[order] = np.arange(len(jobs))
    unit = time_unit(_span(jobs.submit, jobs.finish))
    # One job per row: a line as thick as its row (the axes take about 3/4 of the figure's
    # height), within bounds that follow the style's line width.
    row_pt = fig.get_figheight() * 72 * 0.75 / max(len(jobs), 1)
    lw = float(np.clip(row_pt, s.lw(0.3), s.lw(2.3)))
    ran = jobs.ran
    t = lambda a: a[ran] * unit.scale  # noqa: E731
    y = rank[ran].astype(np.float64)
    wait = LineCollection(np.stack([np.column_stack((t(jobs.submit), y)), np.column_stack((t(jobs.start), y))], 1),
                          colors=s.CONTEXT, linewidths=lw, label="waiting")
    wait.set_gid("lifecycle-waiting")
    ax.add_collection(wait)
    states = np.asarray(jobs.state, dtype=object)[ran]
    for state in sorted(set(states.tolist())):
        pick = states == state
        seg = np.stack([np.column_stack((t(jobs.start)[pick], y[pick])),
                        np.column_stack((t(jobs.finish)[pick], y[pick]))], 1)
        label = state.replace("COMPLETED_", "").replace("_", " ").lower()
        coll = LineCollection(seg, colors=STATE_COLOURS.get(state, s.ORANGE), linewidths=lw,
                              label=f"running, {label} ({int(pick.sum())})")
        coll.set_gid(f"lifecycle-running-{state}")
        ax.add_collection(coll)
    rejected = ~ran
    if rejected.any():
        ax.plot(jobs.submit[rejected] * unit.scale, rank[rejected], "x", color=s.BLACK,
                label=f"rejected ({int(rejected.sum())})", gid="lifecycle-rejected")
    ax.autoscale_view()
    ax.set_ylim(-1, max(len(jobs), 1))
    ax.set_xlabel(f"time ({unit.name})")
    ax.set_ylabel("job (submission order)")
    ax.yaxis.get_major_locator().set_params(integer=True)
    ax.set_title(f"Job lifecycles: {len(jobs)} jobs, waiting then running")
    s.legend(fig, ax, "upper left")
    s.run_title(fig, title)
    return fig


# ---------------------------------------------------------------------------- energy and p-states


@styled
def power_figure(trace: EnergyTrace, title: str):
    fig, axes = new_figure()
    ax = axes[0, 0]
    power = trace.power()
    unit = time_unit(_span(trace.t))
    if power.t.size:
        line = _step(ax, power, unit, float(trace.t[-1]), color=s.ORANGE, lw=s.lw(0.8), label="power drawn")
        line.set_gid("power")
        # On HDeepRM platforms power depends on p-states only, so the idle floor is the
        # curve itself: draw it only where load makes a difference, and under the power
        # drawn, which it would otherwise hide wherever the two are equal.
        if np.abs(power.y - trace.idle_power[:-1]).max() > 0.01 * power.y.max():
            idle = StepSeries(trace.t, trace.idle_power)
            _step(ax, idle, unit, None, color=s.REFERENCE, lw=s.lw(0.8), ls="--", zorder=1.9,
                  label="idle power at current p-states", gid="idle-power")
        mean = float(np.diff(trace.energy).sum() / (trace.t[-1] - trace.t[0]))
        ax.set_title(f"Platform power (mean {mean:,.0f} W, peak {power.y.max():,.0f} W)")
        s.legend(fig, ax, "upper right")
        ax.set_ylim(bottom=0)
    else:
        _empty(ax, "no energy samples")
        ax.set_title("Platform power")
    ax.set_xlabel(f"time ({unit.name})")
    ax.set_ylabel("power (W)")
    _thousands(ax)
    s.run_title(fig, title)
    return fig


@styled
def energy_figure(trace: EnergyTrace, title: str):
    fig, axes = new_figure()
    ax = axes[0, 0]
    unit = time_unit(_span(trace.t))
    eunit = energy_unit(float(trace.energy.max()) if trace.energy.size else 0.0)
    ax.plot(trace.t * unit.scale, trace.energy * eunit.scale, color=s.VERMILLION, gid="energy")
    total = float(trace.energy[-1]) if trace.energy.size else 0.0
    ax.set_title(f"Energy consumed (total {total * eunit.scale:,.3g} {eunit.name})")
    ax.set_xlabel(f"time ({unit.name})")
    ax.set_ylabel(f"energy consumed ({eunit.name})")
    ax.set_ylim(bottom=0)
    s.run_title(fig, title)
    return fig


@styled
def pstate_figure(occ: PstateOccupancy, end: float, hierarchy: bool, title: str):
    from matplotlib import colormaps

    fig, axes = new_figure()
    ax = axes[0, 0]
    ax.grid(False)  # the stacked areas fill the axes
    t, counts = occ.t, occ.counts
    if end > (t[-1] if t.size else 0):
        t, counts = np.append(t, end), np.vstack([counts, counts[-1:]]) if counts.size else counts
    unit = time_unit(_span(t))
    if occ.t.size:
        generic = colormaps[s.SEQUENTIAL]
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
        s.legend(fig, ax, outside=True, title="p-state")
        ax.set_xlim(t[0] * unit.scale, t[-1] * unit.scale)
    else:
        _empty(ax, "no p-state change was recorded")
    ax.set_title("Machines per p-state over time")
    ax.set_xlabel(f"time ({unit.name})")
    ax.set_ylabel("machines (cores)")
    ax.yaxis.get_major_locator().set_params(integer=True)
    _thousands(ax)
    s.run_title(fig, title)
    return fig


# ---------------------------------------------------------------------------- over-utilisation


@styled
def blocking_figure(over: Overuse, end: float, which: tuple[str, ...], title: str):
    """Cumulative count of scheduling passes blocked for lack of cores / of node memory."""
    from hdeeprm.analysis.plots.data import cumulative_count

    fig, axes = new_figure()
    ax = axes[0, 0]
    sources = {"core": (over.core_shortages, "not enough free cores", s.BLUE),
               "memory": (over.memory_shortages, "enough cores, not enough node memory", s.VERMILLION)}
    unit = time_unit(_span([end], over.core_shortages, over.memory_shortages))
    total = 0
    for name in which:
        times, label, colour = sources[name]
        total += times.size
        if times.size:
            series = cumulative_count(times)
            line = _step(ax, series, unit, end, color=colour, label=f"{label} ({times.size})")
            line.set_gid(f"blocking-{name}")
    if total:
        s.legend(fig, ax, "upper left")
    else:
        _empty(ax, "no scheduling pass was blocked")
    ax.set_xlim(0, max(end, 1e-9) * unit.scale)
    ax.set_ylim(bottom=0)
    ax.set_xlabel(f"time ({unit.name})")
    ax.set_ylabel("blocked scheduling passes (cumulative count)")
    what = " and ".join({"core": "cores", "memory": "memory"}[w] for w in which)
    ax.set_title(f"Scheduling passes blocked for lack of {what}")
    s.run_title(fig, title)
    return fig


@styled
def bandwidth_figure(over: Overuse, end: float, title: str):
    """Per processor, the spans in which its busy cores asked for more memory bandwidth than
    it has (cores throttled to P1); spans still open at the end run to the end, hatched."""
    from matplotlib.collections import PolyCollection
    from matplotlib.patches import Patch

    fig, axes = new_figure("tall")
    ax = axes[0, 0]
    n = over.span_processor.size
    open_ = np.isnan(over.span_end)
    stop = np.where(open_, max(end, float(np.nanmax(over.span_end, initial=0.0))), over.span_end)
    unit = time_unit(_span(over.span_start, stop, [end]))
    x0, x1 = over.span_start * unit.scale, stop * unit.scale
    y0, y1 = over.span_processor - 0.4, over.span_processor + 0.4
    verts = np.stack([np.column_stack(c) for c in ((x0, y0), (x0, y1), (x1, y1), (x1, y0))], axis=1) \
        if n else np.zeros((0, 4, 2))
    # As in the Gantt chart, only very many bars are rasterised (the bars, not the axes or text).
    for pick, colour, hatch, gid in ((~open_, s.VERMILLION, None, "bandwidth-spans"),
                                     (open_, s.ORANGE, "//", "bandwidth-open-spans")):
        coll = PolyCollection(verts[pick], facecolors=colour, edgecolors=colour if hatch else "none",
                              hatch=hatch, linewidths=s.lw(0.25), rasterized=n > 5000)
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
        handles = [Patch(color=s.VERMILLION, label="over-subscribed (cores in P1)")]
        if open_.any():
            handles.append(Patch(facecolor=s.ORANGE, edgecolor=s.ORANGE, hatch="//",
                                 label="still over-subscribed at the end"))
        s.legend(fig, ax, "upper left", handles=handles)
    else:
        ax.set_title("Memory-bandwidth over-subscription")
        _empty(ax, "no processor was over-subscribed")
    ax.set_xlabel(f"time ({unit.name})")
    ax.set_ylabel("processor id")
    ax.yaxis.get_major_locator().set_params(integer=True)
    s.run_title(fig, title)
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


@styled
def learning_figure(curves: list[Curve], title: str):
    fig, axes = new_figure("rows", nrows=len(curves), sharex=True)
    for ax, curve in zip(axes[:, 0], curves):
        episodes = np.arange(curve.values.size)
        long = curve.values.size >= 10  # then the moving mean is the line to read, the values its background
        ax.plot(episodes, curve.values, color=s.BLUE, lw=s.lw(0.6 if long else 1.0), alpha=0.55 if long else 1,
                marker="o" if curve.values.size < 30 else None, label="per episode", gid=f"curve-{curve.name}")
        if long:
            window = max(2, curve.values.size // 10)
            ax.plot(episodes, moving_average(curve.values, window), color=s.VERMILLION, lw=s.lw(1.2),
                    label=f"mean of the last {window}", gid=f"curve-{curve.name}-mean")
            if not s.current().legend_below:
                ax.legend(loc="best")
        ax.set_ylabel(curve.ylabel)
        ax.set_title(f"{curve.name.capitalize()} per episode ({curve.values.size} episodes)")
    axes[-1, 0].set_xlabel("episode")
    axes[-1, 0].xaxis.get_major_locator().set_params(integer=True)
    long = [ax for ax, curve in zip(axes[:, 0], curves) if curve.values.size >= 10]
    if long and s.current().legend_below:  # the panels' legends say the same: one below them all
        s.legend(fig, long[0])
    s.run_title(fig, title)
    return fig


@styled
def action_preferences_figure(probs: np.ndarray, names: list[str], title: str, top: int = 8):
    """First-decision probability of each action per episode. With many actions, the ``top``
    most likely at the last episode are named, and so is every action that was the most
    likely at some episode: ranked by the last episode alone, an action that led training and
    fell back at the end was drawn as a nameless grey line above the named ones. The other
    actions are thin grey lines, one collection with one legend entry."""
    from matplotlib.collections import LineCollection

    fig, axes = new_figure()
    ax = axes[0, 0]
    nb_actions, nb_episodes = probs.shape
    episodes = np.arange(nb_episodes)
    last = probs[:, -1]
    if nb_actions > top + 2:  # naming all but one or two would leave a legend entry for just as many
        named = set(np.argsort(-last, kind="stable")[:top].tolist()) | set(np.argmax(probs, axis=0).tolist())
    else:
        named = set(range(nb_actions))
    marker = "o" if nb_episodes < 30 else None
    for rank, a in enumerate(sorted(named, key=lambda a: (-last[a], a))):
        ax.plot(episodes, probs[a], **s.series_style(rank), marker=marker, zorder=2.5,
                label=f"{names[a]} ({last[a]:.2g})", gid=f"action-{a}")
    others = [a for a in range(nb_actions) if a not in named]
    if others:
        context = LineCollection([np.column_stack((episodes, probs[a])) for a in others], colors=s.CONTEXT,
                                 linewidths=s.lw(0.5), zorder=1.5, label=f"other {len(others)} actions")
        context.set_gid("action-others")
        ax.add_collection(context)
    ax.axhline(1 / nb_actions, color=s.REFERENCE, ls=":", lw=s.lw(0.8), label=f"uniform (1/{nb_actions})",
               gid="uniform-choice")
    ax.set_xlabel("episode")
    ax.set_ylabel("first-decision probability")
    ax.set_ylim(0, min(1.0, float(probs.max()) * 1.1 + 0.01))
    ax.set_xlim(-0.02 * max(nb_episodes - 1, 1), (nb_episodes - 1) * 1.02 or 1)
    ax.xaxis.get_major_locator().set_params(integer=True)
    ax.set_title(f"Action preferences ({nb_actions} actions, {nb_episodes} episodes)")
    s.legend(fig, ax, outside=True, title="action (probability at the last episode)")
    s.run_title(fig, title)
    return fig


# ---------------------------------------------------------------------------- run comparison

@styled
def comparison_figure(names: list[str], values: np.ndarray, title: str = ""):
    """``values[r, m]``: run r's value of ``COMPARED_METRICS[m]``; a 2 x 4 grid of bar charts,
    one bar per run (same colour for a run in every panel), value written on each bar."""
    from matplotlib.patches import Patch

    fig, axes = new_figure("grid", nrows=2, ncols=4)
    # Past the seven series colours, the colours come again hatched, so runs stay apart.
    colours = [s.SERIES[i % len(s.SERIES)] for i in range(len(names))]
    hatches = [(None, "//", "..")[(i // len(s.SERIES)) % 3] for i in range(len(names))]
    x = np.arange(len(names))
    for m, ((key, label, kind), ax) in enumerate(zip(COMPARED_METRICS, axes.ravel())):
        unit = metric_unit(kind, values[:, m])
        shown = values[:, m] * unit.scale
        bars = ax.bar(x, shown, color=colours, hatch=hatches, edgecolor="white", gid=f"compare-{key}")
        ax.bar_label(bars, labels=[_short(v) for v in shown], fontsize=s.current().annotation, padding=2)
        ax.set_title(label)
        ax.set_ylabel(f"{label.lower()} ({unit.name or 'ratio'})")
        ax.set_ylim(0, max(1e-12, float(shown.max()) * 1.18) if shown.size else 1)
        ax.set_xticks(x, [""] * len(names))
        ax.tick_params(axis="x", length=0)
        ax.grid(axis="x", visible=False)  # runs are categories: no grid across them
    handles = [Patch(facecolor=c, hatch=h, edgecolor="white", label=n) for c, h, n in zip(colours, hatches, names)]
    fig.legend(handles=handles, loc="outside lower center", ncols=min(len(names), 6))
    fig.suptitle(title or f"Comparison of {len(names)} runs (lower is better)")
    return fig


def _short(v: float) -> str:
    if v == 0:
        return "0"
    if abs(v) >= 1e5 or abs(v) < 1e-2:
        return f"{v:.2e}"
    return f"{v:,.3g}" if abs(v) < 100 else f"{v:,.0f}"


# ---------------------------------------------------------------------------- workloads


@styled
def workload_figure(columns: dict[str, np.ndarray], title: str, compare: dict[str, np.ndarray] | None = None,
                    names: tuple[str, str] = ("first", "second")):
    """Histograms of a workload's job sizes, times and memory (log-scaled where values span
    decades); ``columns`` maps a label with its unit to the per-job values. With ``compare``
    (a second workload's columns, ``hdeeprm describe --compare``), both are drawn as outlines
    over the same bins, as shares of their jobs, named by ``names``."""
    if compare is not None:
        return _workload_comparison(columns, compare, title, names)
    items = [(k, v[np.isfinite(v)]) for k, v in columns.items()]
    ncols = 3
    nrows = (len(items) + ncols - 1) // ncols
    fig, axes = new_figure("grid", nrows=nrows, ncols=ncols)
    for ax, (label, values) in zip(axes.ravel(), items):
        positive = values[values > 0]
        name = label.split(" (")[0].capitalize()
        if values.size == 0:
            _empty(ax, "no values")
        elif positive.size and positive.max() / positive.min() > 100:
            # Values spanning decades: log-spaced bins over the positive ones; zeros (e.g.
            # same-instant submissions) cannot sit on a log axis, so the title counts them.
            bins = np.geomspace(positive.min(), positive.max() * 1.0001, 30)
            ax.hist(positive, bins=bins, color=s.BLUE, gid=f"hist-{label}")
            ax.set_xscale("log")
            zeros = values.size - positive.size
            if zeros:
                name += f" ({zeros:,} zeros not shown)"
        else:
            ax.hist(values, bins=30, color=s.BLUE, gid=f"hist-{label}")
        ax.set_xlabel(label)
        ax.set_ylabel("jobs")
        ax.set_title(name)
        ax.grid(axis="x", visible=False)  # bins are read against the counts only
    for ax in axes.ravel()[len(items):]:
        ax.set_visible(False)
    fig.suptitle(title)
    return fig


def _workload_comparison(columns: dict[str, np.ndarray], other: dict[str, np.ndarray], title: str,
                         names: tuple[str, str]):
    labels = [k for k in columns if k in other]
    ncols = 3
    nrows = (len(labels) + ncols - 1) // ncols
    fig, axes = new_figure("grid", nrows=nrows, ncols=ncols)
    for ax, label in zip(axes.ravel(), labels):
        a, b = (np.asarray(x[label], np.float64) for x in (columns, other))
        a, b = a[np.isfinite(a)], b[np.isfinite(b)]
        both = np.concatenate([a, b])
        positive = both[both > 0]
        name = label.split(" (")[0].capitalize()
        if both.size == 0:
            _empty(ax, "no values")
        else:
            hours = label.startswith("arrival hour")
            log = not hours and positive.size and positive.max() / positive.min() > 100
            if log:
                bins = np.geomspace(positive.min(), positive.max() * 1.0001, 30)
                a, b = a[a > 0], b[b > 0]
            elif hours:
                bins = np.arange(25)
            else:
                bins = np.linspace(both.min(), both.max() + (1e-9 if both.max() == both.min() else 0), 31)
            for values, colour, who in ((a, s.BLUE, names[0]), (b, s.VERMILLION, names[1])):
                if values.size:
                    ax.hist(values, bins=bins, weights=np.full(values.size, 1 / values.size), histtype="step",
                            color=colour, label=who, gid=f"hist-{label}-{who}")
            if log:
                ax.set_xscale("log")
        ax.set_xlabel(label)
        ax.set_ylabel("share of jobs")
        ax.set_title(name)
        ax.grid(axis="x", visible=False)
    for ax in axes.ravel()[len(labels):]:
        ax.set_visible(False)
    first = axes.ravel()[0]
    if first.get_legend_handles_labels()[0]:
        first.legend(loc="best")
    fig.suptitle(title)
    return fig


# ---------------------------------------------------------------------------- evaluation

HIGHLIGHT_COLOUR, OTHER_COLOUR = s.VERMILLION, s.BLUE


def _jitter(n: int, width: float = 0.3) -> np.ndarray:
    """Deterministic offsets in [-width/2, width/2) spreading n points (golden-ratio sequence,
    so neighbouring windows never pile up and every figure of the same data is the same)."""
    return ((np.arange(1, n + 1) * 0.6180339887498949) % 1.0 - 0.5) * width


@styled
def evaluation_figure(values: dict[str, np.ndarray], metric_label: str, title: str = "",
                      highlight: str | None = None):
    """Each policy's objective over the evaluation windows: a box plot (quartiles, whiskers at
    1.5 IQR) with every window drawn as a point and the mean as a diamond. Policies are
    ordered by mean, best (lowest) first; ``highlight`` (the agent) is drawn in its own colour.
    From the style's ``horizontal_from`` policies on (7 on screen, always in a paper's narrow
    column), policies run down the y axis (best at the top)."""
    import inspect

    import matplotlib

    names = list(values)
    data = {k: np.asarray(values[k], np.float64).ravel() for k in names}
    data = {k: v[np.isfinite(v)] for k, v in data.items()}
    means = {k: float(v.mean()) if v.size else np.inf for k, v in data.items()}
    names.sort(key=lambda k: means[k])  # stable: ties keep the caller's order
    st = s.current()
    horizontal = len(names) >= st.horizontal_from
    width, height = st.single
    fig, axes = new_figure((width, max(height, st.category * len(names) + 1.0)) if horizontal else "single")
    ax = axes[0, 0]
    colours = [HIGHLIGHT_COLOUR if k == highlight else OTHER_COLOUR for k in names]
    positions = np.arange(len(names), dtype=np.float64)
    drawn = [k for k in names if data[k].size]
    marker = float(matplotlib.rcParams["lines.markersize"])
    if drawn:
        pick = [names.index(k) for k in drawn]
        # matplotlib 3.10 replaced vert=False by orientation="horizontal" (vert is deprecated).
        orient = ({"orientation": "horizontal" if horizontal else "vertical"}
                  if "orientation" in inspect.signature(ax.boxplot).parameters else {"vert": not horizontal})
        boxes = ax.boxplot([data[k] for k in drawn], positions=positions[pick], widths=0.55, patch_artist=True,
                           showfliers=False, medianprops={"color": s.BLACK, "lw": s.lw(0.9)}, manage_ticks=False,
                           **orient)
        for k, box in zip(drawn, boxes["boxes"]):
            colour = colours[names.index(k)]
            box.set(facecolor=colour, alpha=0.22, edgecolor=colour, gid=f"evaluation-box-{k}")
        for i in pick:
            k, v = names[i], data[names[i]]
            along = positions[i] + _jitter(v.size)
            xy = (v, along) if horizontal else (along, v)
            ax.scatter(*xy, s=marker ** 2, color=colours[i], alpha=0.75, edgecolors="none", zorder=3,
                       gid=f"evaluation-points-{k}")
        mean_values = np.array([means[k] for k in drawn])
        xy = (mean_values, positions[pick]) if horizontal else (positions[pick], mean_values)
        ax.plot(*xy, ls="none", marker="D", ms=1.5 * marker, mfc="white", mec=s.BLACK, zorder=4,
                gid="evaluation-means", label="mean")
        s.legend(fig, ax)
    else:
        _empty(ax, "no evaluation values")
    labels = [f"{k}\n(mean {_short(means[k])})" if data[k].size else f"{k}\n(no value)" for k in names]
    if horizontal:
        ax.set_yticks(positions, labels)
        ax.set_ylim(len(names) - 0.5, -0.5)  # best at the top
        ax.set_xlabel(metric_label)
        ax.grid(axis="y", visible=False)  # policies are categories: no grid across them
        ticks = ax.get_yticklabels()
    else:
        ax.set_xticks(positions, labels)
        ax.set_xlim(-0.5, len(names) - 0.5)
        ax.set_ylabel(metric_label)
        ax.grid(axis="x", visible=False)
        ticks = ax.get_xticklabels()
    for k, tick in zip(names, ticks):
        if k == highlight:
            tick.set(color=HIGHLIGHT_COLOUR, fontweight="bold")
    sizes = sorted({v.size for v in data.values()})
    windows = f"{sizes[0]}" if len(sizes) == 1 else f"{sizes[0]}-{sizes[-1]}"
    ax.set_title(f"{metric_label} over {windows} windows, {len(names)} policies "
                 "(best mean first, lower is better)")
    if title:
        s.run_title(fig, title)
    return fig
