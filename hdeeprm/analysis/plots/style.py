"""The one place for how figures look: palette, rcParams, figure sizes, per style.

Two styles: ``default`` (screen: wide figures, 9-11 pt text) and ``paper`` (one column of a
two-column paper, 3.4 in wide, 8-9 pt text, thinner lines; grids of panels take the full
7 in page width). Every builder of :mod:`~hdeeprm.analysis.plots.figures` is wrapped by
:func:`styled`, which builds the figure under its style's rcParams; the figure keeps its style
and re-applies it whenever it is drawn or saved (``canvas.StyledFigure``), because matplotlib
reads some settings only then (tick labels made at layout time, ``svg.fonttype``,
``pdf.fonttype``). matplotlib's global rcParams are swapped only for the length of a build or
a save, under a lock, and restored after: a caller's own settings and figures are untouched.

Colours: the Okabe-Ito palette (Okabe & Ito 2008, "Color Universal Design"), whose eight
colours stay distinct under the common colour-vision deficiencies and in grey-scale print;
maps of ordered values use viridis. Nothing here imports matplotlib (the CLI reads
:data:`STYLES` to declare ``--style`` without it).
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import textwrap
import threading
from dataclasses import dataclass, field

from hdeeprm.common.errors import ConfigError

# ---------------------------------------------------------------------------- colours

#: Okabe-Ito, in their published order of names.
OKABE_ITO = {"black": "#000000", "orange": "#E69F00", "sky blue": "#56B4E9", "bluish green": "#009E73",
             "yellow": "#F0E442", "blue": "#0072B2", "vermillion": "#D55E00", "reddish purple": "#CC79A7"}
PALETTE = tuple(OKABE_ITO.values())
BLUE, ORANGE, SKY, GREEN = OKABE_ITO["blue"], OKABE_ITO["orange"], OKABE_ITO["sky blue"], OKABE_ITO["bluish green"]
VERMILLION, PURPLE, BLACK, YELLOW = (OKABE_ITO["vermillion"], OKABE_ITO["reddish purple"], OKABE_ITO["black"],
                                     OKABE_ITO["yellow"])
#: Lines and bars in series order. Yellow is left out: a yellow line on white cannot be seen.
#: Blue and vermillion come first: the pair that stays furthest apart for each deficiency.
SERIES = (BLUE, VERMILLION, GREEN, ORANGE, PURPLE, SKY, BLACK)
#: Filled areas told apart by colour only (Gantt jobs): yellow reads well as a fill; black
#: would hide the job ids written on it.
FILLS = (BLUE, ORANGE, GREEN, YELLOW, VERMILLION, SKY, PURPLE)
#: Greys, which are not data colours: CONTEXT for what the eye should skim (actions not named,
#: waiting jobs), LIGHT for empty or idle (idle processors, the grid), REFERENCE for reference
#: lines (platform size, uniform choice, idle power) and secondary text (MUTED).
CONTEXT, LIGHT, REFERENCE = "#BBBBBB", "#DDDDDD", "#555555"
MUTED = REFERENCE
NEUTRALS = (CONTEXT, LIGHT, REFERENCE, "#FFFFFF")
#: Colour map of ordered values (p-states): perceptually uniform, readable in grey-scale and
#: with every common colour-vision deficiency.
SEQUENTIAL = "viridis"


def series_style(i: int) -> dict:
    """Colour and line style of the i-th series: past the seven series colours, the colours
    come again dashed, then dotted, so two series never look the same."""
    return {"color": SERIES[i % len(SERIES)], "ls": ("-", "--", ":")[(i // len(SERIES)) % 3]}


# ---------------------------------------------------------------------------- styles

# Shared by both styles: light grid behind the data, no top/right frame, legends on a faint
# white backing (readable over lines, no border), text kept as text in SVG and embedded as
# TrueType (Type 42) in PDF/PS, which journals ask for and editors can change.
_BASE = {
    "axes.spines.top": False, "axes.spines.right": False,
    "axes.grid": True, "axes.axisbelow": True, "grid.color": LIGHT, "grid.linestyle": "-",
    "axes.edgecolor": "#333333", "axes.labelcolor": "#222222", "text.color": "#222222",
    "xtick.color": "#333333", "ytick.color": "#333333",
    "axes.prop_cycle": f"cycler('color', {list(SERIES)!r})", "image.cmap": SEQUENTIAL,
    "legend.frameon": True, "legend.framealpha": 0.85, "legend.edgecolor": "none", "legend.fancybox": False,
    "figure.facecolor": "white", "axes.facecolor": "white", "savefig.facecolor": "white",
    "svg.fonttype": "none", "pdf.fonttype": 42, "ps.fonttype": 42,
}


@dataclass(frozen=True)
class Style:
    name: str
    single: tuple[float, float]  # inches: a figure of one axes (a time series)
    tall: tuple[float, float]  # one axes with a row per machine or job (Gantt, lifecycles, spans)
    grid_width: float  # a grid of panels (compare, workload), its width; rows add row_height
    row_height: float  # one row of panels (stacked learning curves, grids)
    category: float  # inches per policy on an axis that lists policies
    horizontal_from: int  # policies: from this many on, they are listed down the y axis
    run_title: bool  # the run's name above the figure (a paper's caption says it instead)
    legend_below: bool  # long legends below the axes (narrow figures) rather than at the right
    annotation: float  # points: numbers on bars, job ids in Gantt boxes (7: the smallest most journals accept)
    rc: dict = field(repr=False)


DEFAULT = Style(
    "default",
    rc=_BASE | {"font.size": 10, "axes.titlesize": 11, "axes.labelsize": 10, "xtick.labelsize": 9,
                "ytick.labelsize": 9, "legend.fontsize": 8.5, "legend.title_fontsize": 9, "figure.titlesize": 11,
                "lines.linewidth": 1.3, "lines.markersize": 4, "axes.linewidth": 0.8, "grid.linewidth": 0.6,
                "patch.linewidth": 0.6, "hatch.linewidth": 0.8},
    single=(11.0, 5.0), tall=(11.0, 6.0), grid_width=13.0, row_height=3.0, category=0.45, horizontal_from=7,
    run_title=True, legend_below=False, annotation=7.0)

PAPER = Style(
    "paper",
    rc=_BASE | {"font.size": 8, "axes.titlesize": 9, "axes.labelsize": 8, "xtick.labelsize": 8,
                "ytick.labelsize": 8, "legend.fontsize": 8, "legend.title_fontsize": 8, "figure.titlesize": 9,
                "lines.linewidth": 0.9, "lines.markersize": 2.5, "axes.linewidth": 0.5, "grid.linewidth": 0.4,
                "patch.linewidth": 0.4, "hatch.linewidth": 0.5,
                "xtick.major.width": 0.5, "ytick.major.width": 0.5, "xtick.major.size": 2.5, "ytick.major.size": 2.5,
                "xtick.minor.width": 0.4, "ytick.minor.width": 0.4, "xtick.major.pad": 2, "ytick.major.pad": 2,
                "axes.titlepad": 4, "axes.labelpad": 2, "legend.handlelength": 1.6, "legend.borderaxespad": 0.3,
                "legend.labelspacing": 0.3, "figure.constrained_layout.h_pad": 0.02,
                "figure.constrained_layout.w_pad": 0.02},
    # 3.4 in: one column of IEEE / ACM two-column pages; 7 in: a figure* across both.
    single=(3.4, 2.4), tall=(3.4, 2.8), grid_width=7.0, row_height=1.7, category=0.3, horizontal_from=1,
    run_title=False, legend_below=True, annotation=7.0)

STYLES = {s.name: s for s in (DEFAULT, PAPER)}


def get_style(style: str | Style | None) -> Style:
    """A Style from its name (None: the default), or a one-line ConfigError."""
    if style is None:
        return DEFAULT
    if isinstance(style, Style):
        return style
    if style not in STYLES:
        raise ConfigError(f"unknown figure style {style!r}; expected one of {', '.join(STYLES)}")
    return STYLES[style]


# ---------------------------------------------------------------------------- applying a style

# rcParams are process-wide: builds and saves under a style hold this lock while theirs are
# in place, so two threads drawing figures of different styles cannot mix their settings
# (re-entrant: a save draws, a build may lay out).
_LOCK = threading.RLock()
_ACTIVE: contextvars.ContextVar[Style | None] = contextvars.ContextVar("hdeeprm_figure_style", default=None)


@contextlib.contextmanager
def applied(style: Style):
    """``style``'s rcParams in place for the body, matplotlib's previous ones restored after."""
    import matplotlib

    with _LOCK, matplotlib.rc_context(style.rc):
        token = _ACTIVE.set(style)
        try:
            yield style
        finally:
            _ACTIVE.reset(token)


def current() -> Style:
    """The style of the figure being built (the default outside a build)."""
    return _ACTIVE.get() or DEFAULT


def lw(factor: float = 1.0) -> float:
    """A line width relative to the style's base width, so emphasis scales with the style."""
    import matplotlib

    return factor * float(matplotlib.rcParams["lines.linewidth"])


def styled(build):
    """Wrap a figure builder: it takes ``style=`` (a name or a Style; the default if left out)
    and runs under that style; titles and axis labels too long for their axes are then
    wrapped onto more lines."""
    @functools.wraps(build)
    def wrapper(*args, style: str | Style | None = None, **kwargs):
        chosen = get_style(style)
        with applied(chosen):
            fig = build(*args, **kwargs)
            fit_text(fig)
        return fig
    return wrapper


def run_title(fig, title: str) -> None:
    """The run's name above the figure, small and grey, in the styles that show it."""
    if title and current().run_title:
        fig.suptitle(title, fontsize="small", color=MUTED)


def legend(fig, ax, loc: str = "best", outside: bool = False, handles=None, **kwargs):
    """The legend of ``ax``: at ``loc`` over the data, or right of the axes when ``outside``
    (long legends); in styles with ``legend_below`` (narrow figures, where it would hide the
    data), below the axes as a figure legend in as many columns as the width holds, the
    figure made taller by the legend's height so that the axes keep their size."""
    if not current().legend_below:
        where = {"loc": "upper left", "bbox_to_anchor": (1.01, 1)} if outside else {"loc": loc}
        return ax.legend(handles=handles, **where, **kwargs) if handles else ax.legend(**where, **kwargs)
    if handles is None:
        handles, labels = ax.get_legend_handles_labels()
    else:
        labels = [h.get_label() for h in handles]
    if not handles:
        return None
    fig.draw_without_rendering()  # the layout before the legend: the height to add is the legend's alone
    for ncols in range(min(len(handles), 3), 0, -1):
        leg = fig.legend(handles, labels, loc="outside lower center", ncols=ncols, **kwargs)
        fig.draw_without_rendering()
        if ncols == 1 or leg.get_window_extent().width <= fig.bbox.width:
            break
        leg.remove()
    fig.set_figheight(fig.get_figheight() + leg.get_window_extent().height / fig.dpi)
    return leg


def fit_text(fig) -> None:
    """Wrap each axes' title and axis labels that are longer than the axes, at spaces, into
    as many lines as they need (matplotlib never wraps them, and a narrow paper figure
    would clip them)."""
    fig.draw_without_rendering()
    for ax in fig.axes:
        box = ax.get_window_extent()
        for text, room in ((ax.title, box.width), (ax.xaxis.label, box.width), (ax.yaxis.label, box.height)):
            content = text.get_text()
            if not content or room <= 0:
                continue
            extent = text.get_window_extent()
            length = extent.height if ax.yaxis.label is text else extent.width
            if length <= room:
                continue
            # The longest line shrinks in proportion to the room (glyph widths vary little).
            longest = max(len(line) for line in content.split("\n"))
            width = max(8, int(longest * room / length * 0.95))
            text.set_text("\n".join(textwrap.fill(line, width, break_long_words=False, break_on_hyphens=False)
                                    for line in content.split("\n")))
