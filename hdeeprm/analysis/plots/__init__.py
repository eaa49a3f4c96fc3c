"""Figures of a run: ``hdeeprm plot KIND RUN_DIR`` and the figures of ``hdeeprm report``.

``render(kind, run, style="default")`` reads what the figure needs from the run folder and
returns a matplotlib Figure (Agg canvas, no pyplot); ``save_figure`` writes it as PNG, SVG or
PDF (vector: text stays text in SVG, fonts are embedded as TrueType in PDF). Styles
("default" for screens, "paper" for a paper's column) and the colour-blind-safe palette are
defined in :mod:`hdeeprm.analysis.plots.style`. matplotlib is imported only when a figure is
built (``pip install -e '.[plot]'``).

Kinds, with the original ``hdeeprm-visual`` names kept:
  gantt, gantt_no_label   machines x time, one rectangle per job and contiguous machine run
  queue_size              waiting jobs over time
  utilization             busy machines over time
  lifecycle               per job: waiting, then running (coloured by final state)
  power, energy           platform power (W) and energy consumed (J .. GJ) over time
  pstates                 machines in each p-state over time
  blocking                scheduling passes blocked for cores and for memory (core_bubbles,
                          mem_bubbles: one of the two)
  mem_bw_overutilization  memory-bandwidth over-subscription spans per processor
  rewards, losses, makespans, learning   learning curves per episode (learning: all three)
  action_preferences      first-decision probability of each action per episode
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from hdeeprm.analysis.plots import data as d
from hdeeprm.analysis.plots.style import STYLES, get_style  # noqa: F401 (STYLES: the --style choices)
from hdeeprm.common.errors import ConfigError, HDeepRMError

FORMATS = ("png", "svg", "pdf")
DEFAULT_DPI = 150
#: The resolutions (dots per inch) a PNG figure may have: below 10 text cannot be drawn, above
#: 1200 a wide figure needs gigabytes of memory.
DPI_RANGE = (10, 1200)


@dataclass(frozen=True)
class PlotKind:
    name: str
    help: str
    build: Callable  # (run: Run, style: str) -> Figure
    needs: tuple[str, ...]  # files it reads; the report skips a kind whose files are missing
    learning: bool = False  # about the whole training run rather than one episode's outputs


def _end_time(run: d.Run, jobs: d.JobTable | None = None) -> float:
    """The run's makespan (the time axes' right end)."""
    path = run.file(d.SCHEDULE_FILE)
    if path is not None:
        return float(d.read_schedule(path).get("makespan", 0.0))
    jobs = jobs or d.read_jobs(run.require(d.JOBS_FILE, "the time axis"))
    return float(jobs.finish[jobs.ran].max(initial=0.0))


def _nb_machines(run: d.Run) -> int:
    path = run.file(d.SCHEDULE_FILE)
    value = d.read_schedule(path).get("nb_computing_machines", 0.0) if path is not None else 0.0
    return int(value) if isinstance(value, float) else 0


def _jobs(run: d.Run, what: str) -> d.JobTable:
    return d.read_jobs(run.require(d.JOBS_FILE, what))


def _gantt(labels: bool):
    def build(run: d.Run, style: str):
        from hdeeprm.analysis.plots.figures import gantt

        jobs = _jobs(run, "a Gantt chart")
        return gantt(jobs, d.allocations(jobs), _nb_machines(run), labels=labels, title=run.title, style=style)
    return build


def _queue(run: d.Run, style: str):
    from hdeeprm.analysis.plots.figures import queue_figure

    jobs = _jobs(run, "the queue size")
    return queue_figure(d.queue_size(jobs), _end_time(run, jobs), run.title, style=style)


def _utilization(run: d.Run, style: str):
    from hdeeprm.analysis.plots.figures import utilization_figure

    jobs = _jobs(run, "the utilization")
    alloc = d.allocations(jobs)
    nb = max(_nb_machines(run), int(alloc.last.max()) + 1 if len(alloc) else 0)
    return utilization_figure(d.busy_machines(alloc), nb, _end_time(run, jobs), run.title, style=style)


def _lifecycle(run: d.Run, style: str):
    from hdeeprm.analysis.plots.figures import lifecycle_figure

    return lifecycle_figure(_jobs(run, "job lifecycles"), run.title, style=style)


def _power(run: d.Run, style: str):
    from hdeeprm.analysis.plots.figures import power_figure

    return power_figure(d.read_energy(run.require(d.ENERGY_FILE, "the power plot")), run.title, style=style)


def _energy(run: d.Run, style: str):
    from hdeeprm.analysis.plots.figures import energy_figure

    return energy_figure(d.read_energy(run.require(d.ENERGY_FILE, "the energy plot")), run.title, style=style)


def _pstates(run: d.Run, style: str):
    from hdeeprm.analysis.plots.figures import pstate_figure

    occ = d.read_pstates(run.require(d.PSTATES_FILE, "the p-state plot"), _nb_machines(run))
    return pstate_figure(occ, _end_time(run), d.has_hierarchy(run), run.title, style=style)


def _blocking(which: tuple[str, ...]):
    def build(run: d.Run, style: str):
        from hdeeprm.analysis.plots.figures import blocking_figure

        return blocking_figure(d.read_run_overuse(run), _end_time(run), which, run.title, style=style)
    return build


def _bandwidth(run: d.Run, style: str):
    from hdeeprm.analysis.plots.figures import bandwidth_figure

    return bandwidth_figure(d.read_run_overuse(run), _end_time(run), run.title, style=style)


CURVES = {"rewards": ("rewards.log", "summed reward"), "losses": ("losses.log", "loss"),
          "makespans": ("makespans.log", "makespan (s)")}


def _curve(run: d.Run, name: str):
    from hdeeprm.analysis.plots.figures import Curve
    from hdeeprm.analysis.plots.units import time_unit

    log, ylabel = CURVES[name]
    values = d.read_numbers(run.root / log)
    if name == "makespans":
        unit = time_unit(float(np.nanmax(values, initial=0.0)))
        values, ylabel = values * unit.scale, f"makespan ({unit.name})"
    return Curve(name, values, ylabel)


def _learning(names: tuple[str, ...]):
    def build(run: d.Run, style: str):
        from hdeeprm.analysis.plots.figures import learning_figure

        present = [n for n in names if (run.root / CURVES[n][0]).is_file()]
        if not present:
            raise ConfigError(f"{run.root}: no {', '.join(CURVES[n][0] for n in names)}; "
                              "learning curves come from hdeeprm train or hdeeprm-launch runs")
        return learning_figure([_curve(run, n) for n in present], d.run_title(run, episode=False), style=style)
    return build


def _actions(run: d.Run, style: str):
    from hdeeprm.analysis.plots.figures import action_preferences_figure

    path = run.root / d.PROBS_FILE
    if not path.is_file():
        raise ConfigError(f"{run.root}: no {d.PROBS_FILE}; action preferences come from learning agents' runs")
    probs = d.read_probs(path)
    return action_preferences_figure(probs, d.action_names(run, probs.shape[0]), d.run_title(run, episode=False),
                                     style=style)


_OVERUSE = (d.OVERUSE_FILE,)
KINDS: dict[str, PlotKind] = {k.name: k for k in (
    PlotKind("gantt", "Gantt chart, job ids written where they fit", _gantt(True), (d.JOBS_FILE,)),
    PlotKind("gantt_no_label", "Gantt chart without labels", _gantt(False), (d.JOBS_FILE,)),
    PlotKind("queue_size", "waiting jobs over time", _queue, (d.JOBS_FILE,)),
    PlotKind("utilization", "busy machines over time", _utilization, (d.JOBS_FILE,)),
    PlotKind("lifecycle", "each job's wait and run", _lifecycle, (d.JOBS_FILE,)),
    PlotKind("power", "platform power over time", _power, (d.ENERGY_FILE,)),
    PlotKind("energy", "energy consumed over time", _energy, (d.ENERGY_FILE,)),
    PlotKind("pstates", "machines per p-state over time", _pstates, (d.PSTATES_FILE,)),
    PlotKind("blocking", "blocked scheduling passes (cores, memory)", _blocking(("core", "memory")), _OVERUSE),
    PlotKind("core_bubbles", "passes blocked for cores", _blocking(("core",)), _OVERUSE),
    PlotKind("mem_bubbles", "passes blocked for memory", _blocking(("memory",)), _OVERUSE),
    PlotKind("mem_bw_overutilization", "bandwidth over-subscription spans per processor", _bandwidth, _OVERUSE),
    PlotKind("rewards", "summed reward per episode", _learning(("rewards",)), ("rewards.log",), True),
    PlotKind("losses", "loss per trained episode", _learning(("losses",)), ("losses.log",), True),
    PlotKind("makespans", "makespan per episode", _learning(("makespans",)), ("makespans.log",), True),
    PlotKind("learning", "rewards, losses and makespans per episode", _learning(tuple(CURVES)),
             ("rewards.log",), True),
    PlotKind("action_preferences", "first-decision action probabilities per episode", _actions,
             (d.PROBS_FILE,), True),
)}


def render(kind: str, run: d.Run | str | Path, episode: int | None = None, style: str = "default"):
    """The figure ``kind`` of a run (a Run, or a run folder), in ``style``: "default" (screen)
    or "paper" (one column of a two-column paper); see :mod:`hdeeprm.analysis.plots.style`."""
    if kind not in KINDS:
        raise ConfigError(f"unknown figure {kind!r}; expected one of {', '.join(KINDS)}")
    get_style(style)  # a wrong name is a one-line error before any file is read
    if not isinstance(run, d.Run):
        run = d.open_run(run, episode)
    return KINDS[kind].build(run, style)


def output_format(path: str | Path | None, fmt: str | None) -> str:
    """The format from ``--format``, else from the file's extension, else PNG; a clash
    between the two or an unknown format is an error."""
    ext = Path(path).suffix.lower().lstrip(".") if path else ""
    if fmt is not None and fmt not in FORMATS:
        raise ConfigError(f"--format {fmt!r}: expected one of {', '.join(FORMATS)}")
    if ext and ext not in FORMATS and fmt is None:
        raise ConfigError(f"{path}: unknown figure format {ext!r}; expected .png, .svg or .pdf (or give --format)")
    if fmt and ext in FORMATS and ext != fmt:
        raise ConfigError(f"{path}: the extension says {ext}, --format says {fmt}")
    return fmt or (ext if ext in FORMATS else "png")


#: How to get matplotlib, said when it is missing (as torch's and pyzmq's hints are).
PLOT_INSTALL = "pip install -e '.[plot]'"


def missing_matplotlib(error: ImportError | None = None, instead: str | None = None) -> HDeepRMError:
    """The one-line error of a command that draws, without matplotlib: how to install it, and
    ``instead``, the option that does without figures (``--no-figure``), if there is one."""
    name = getattr(error, "name", None)
    what = ("matplotlib is not installed" if name is None or name == "matplotlib" or name.startswith("matplotlib.")
            else f"matplotlib cannot be imported (it needs {name}, which is not installed)")
    return HDeepRMError(f"{what}; {PLOT_INSTALL}" + (f" (or {instead})" if instead else ""))


def require_matplotlib(instead: str | None = None) -> None:
    """Raise :func:`missing_matplotlib`'s one-line error unless the parts of matplotlib the
    figures use can be imported; commands that draw call it before any work."""
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg  # noqa: F401
        from matplotlib.figure import Figure  # noqa: F401
    except ImportError as e:
        raise missing_matplotlib(e, instead) from None


#: Written into every file we save, so that ``hdeeprm clean`` can tell our figures apart.
CREATOR = "hdeeprm plot"


def check_dpi(dpi) -> int:
    """``dpi`` if it lies in :data:`DPI_RANGE`, else a one-line :class:`ConfigError`."""
    lo, hi = DPI_RANGE
    if isinstance(dpi, bool) or not isinstance(dpi, (int, float)) or not lo <= dpi <= hi:
        shown = str(dpi) if len(str(dpi)) <= 40 else f"{str(dpi)[:37]}..."
        raise ConfigError(f"--dpi {shown}: expected a resolution from {lo} to {hi}")
    return dpi


def save_figure(fig, path: str | Path, fmt: str | None = None, dpi: int = DEFAULT_DPI) -> Path:
    check_dpi(dpi)
    fmt = output_format(path, fmt)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, format=fmt, dpi=dpi, metadata={"Creator": CREATOR})
    return path
