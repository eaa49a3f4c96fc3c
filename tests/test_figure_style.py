"""Figures fit for a paper: one style for every figure, a colour-blind-safe palette, vector
files whose text stays text, and matplotlib's global settings left as the caller had them.

Every kind is drawn on the small real runs of test_plots (a simulation and a training run),
in both styles, to PNG, SVG and PDF.
"""

from __future__ import annotations

import logging
import re
import warnings

import matplotlib
import numpy as np
import pytest
from matplotlib.collections import LineCollection
from matplotlib.colors import to_hex, to_rgba_array
from matplotlib.lines import Line2D
from matplotlib.text import Text
from test_plots import Runs, make_runs

from hdeeprm.analysis.plots import FORMATS, KINDS, render, save_figure
from hdeeprm.analysis.plots import figures as f
from hdeeprm.analysis.plots import style as s
from hdeeprm.analysis.report import figure_html
from hdeeprm.analysis.runs import compare_runs, comparison_values
from hdeeprm.cli.main import main
from hdeeprm.common.errors import HDeepRMError

STYLES = ("default", "paper")


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> Runs:
    return make_runs(tmp_path_factory.getbasetemp())  # cached: the runs test_plots uses


def run_of(runs: Runs, kind: str):
    return runs.train if KINDS[kind].learning else runs.sim


def other_figures(runs: Runs, style: str) -> dict:
    """The figures drawn outside ``render``: compare, evaluation (evaluation.png), describe."""
    values = {"agent": np.array([1.0, 2.0, 1.5]), "fcfs": np.array([3.0, 4.0, 2.0]), "sjf": np.array([2.0, 2.5, 3.0])}
    compared = compare_runs([str(runs.sim), str(runs.sim_easy)], None, None)
    return {
        "compare": f.comparison_figure([r.name for r in compared], comparison_values(compared), style=style),
        "evaluation": f.evaluation_figure(values, "mean bounded slowdown", "held-out", highlight="agent", style=style),
        "workload": f.workload_figure({"size (machines)": np.array([1.0, 2, 4, 8]),
                                       "run time (s)": np.array([1.0, 10, 1e3, 1e5])}, "w", style=style),
    }


def all_figures(runs: Runs, style: str) -> dict:
    figures = {kind: render(kind, run_of(runs, kind), style=style) for kind in KINDS}
    return figures | other_figures(runs, style)


# ---------------------------------------------------------------------------- files


@pytest.mark.parametrize("style", STYLES)
def test_every_figure_saves_in_every_format_without_warnings(runs, style, tmp_path, caplog):
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a deprecation or a missing glyph fails the test
        with caplog.at_level(logging.WARNING, logger="matplotlib"):  # findfont's complaints are logged
            figures = all_figures(runs, style)
            for name, fig in figures.items():
                for fmt in FORMATS:
                    path = save_figure(fig, tmp_path / f"{name}.{fmt}", dpi=60)
                    assert path.stat().st_size > 1000
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


@pytest.mark.parametrize("style", STYLES)
def test_svg_keeps_text_as_text_and_pdf_embeds_truetype(runs, style, tmp_path):
    fig = render("utilization", runs.sim, style=style)
    title = fig.axes[0].get_title().split("\n")[0]
    svg = save_figure(fig, tmp_path / "u.svg").read_text()
    assert len(re.findall(r"<text\b", svg)) > 10 and title.split(" (")[0] in svg
    assert 'id="DejaVuSans-' not in svg  # no glyphs drawn as paths
    assert "<image" not in svg  # nothing rasterised
    pdf = save_figure(fig, tmp_path / "u.pdf").read_bytes()
    assert b"/FontFile2" in pdf and b"/Type3" not in pdf  # TrueType (Type 42), not Type 3 bitmaps-as-paths


def test_only_a_huge_gantt_rasterises_and_only_its_bars(tmp_path):
    n = 6000
    rng = np.random.default_rng(0)
    start = np.sort(rng.uniform(0, 1e6, n))
    jobs = f.JobTable(tuple(str(i) for i in range(n)), start, start, start + rng.uniform(10, 1e4, n), np.full(n, 5),
                      ("COMPLETED_SUCCESSFULLY",) * n, tuple(f"{a}-{a + 3}" for a in rng.integers(0, 4000, n)))
    from hdeeprm.analysis.plots.data import allocations

    fig = f.gantt(jobs, allocations(jobs), 4096, labels=False, title="synthetic", style="paper")
    svg = save_figure(fig, tmp_path / "g.svg", dpi=100).read_text()
    assert svg.count("<image") == 1 and "<text" in svg  # the bars as one image, the axes' text as text


def test_figure_html_of_the_report_keeps_svg_text(runs):
    html = figure_html(render("energy", runs.sim), "svg")
    assert html.startswith("<svg") and "<text" in html


# ---------------------------------------------------------------------------- palette


def colours_of(fig) -> set[str]:
    """Every colour an axes draws its data with (lines, markers, areas, bars, boxes, edges),
    as #rrggbb (alpha aside)."""
    found = []
    for ax in fig.axes:
        for line in ax.lines:
            found += [line.get_color(), line.get_markerfacecolor(), line.get_markeredgecolor()]
        for coll in ax.collections:
            found += list(to_rgba_array(coll.get_facecolor())) + list(to_rgba_array(coll.get_edgecolor()))
        for patch in ax.patches:
            found += [patch.get_facecolor(), patch.get_edgecolor()]
    return {to_hex(c) for c in found if not isinstance(c, str) or c != "none"
            if to_rgba_array(c)[0, 3] > 0}  # fully transparent: nothing drawn


ALLOWED = {c.lower() for c in s.PALETTE + s.NEUTRALS} | \
    {to_hex(c) for c in matplotlib.colormaps[s.SEQUENTIAL](np.linspace(0, 1, 256))}


@pytest.mark.parametrize("style", STYLES)
def test_every_colour_drawn_is_from_the_palette(runs, style):
    figures = all_figures(runs, style) | {"pstates-batsim": render("pstates", runs.batsim, style=style),
                                          "lifecycle-batsim": render("lifecycle", runs.batsim, style=style)}
    for name, fig in figures.items():
        assert colours_of(fig) <= ALLOWED, (name, colours_of(fig) - ALLOWED)
    # No red/green pair to confuse: the series colours are Okabe-Ito's, which has neither pure hue.
    assert not {"#ff0000", "#00ff00", "#008000", "#d62728", "#2ca02c"} & {c.lower() for c in s.PALETTE}


def test_many_series_never_repeat_a_look():
    looks = [tuple(sorted(s.series_style(i).items())) for i in range(3 * len(s.SERIES))]
    assert len(set(looks)) == len(looks) and s.YELLOW not in s.SERIES  # a yellow line cannot be seen on white


# ---------------------------------------------------------------------------- styles


def test_global_rcparams_are_unchanged_and_do_not_leak_in(runs, tmp_path):
    before = dict(matplotlib.rcParams)
    fig = render("queue_size", runs.sim, style="paper")
    save_figure(fig, tmp_path / "q.pdf")
    fig.canvas.draw()
    assert dict(matplotlib.rcParams) == before
    # A caller's own settings change neither how a figure is built nor how it is saved.
    with matplotlib.rc_context({"lines.linewidth": 7.0, "svg.fonttype": "path", "font.size": 20}):
        fig = render("queue_size", runs.sim, style="paper")
        svg = save_figure(fig, tmp_path / "q.svg").read_text()
    assert one_line(fig, "queue-size").get_linewidth() == s.PAPER.rc["lines.linewidth"]
    assert fig.axes[0].xaxis.label.get_fontsize() == 8 and "<text" in svg
    assert dict(matplotlib.rcParams) == before


def one_line(fig, gid):
    return next(line for ax in fig.axes for line in ax.lines if line.get_gid() == gid)


def texts_of(fig):
    return [t for t in fig.findobj(Text) if t.get_visible() and t.get_text().strip()]


def test_paper_style_is_column_wide_with_8_to_9_pt_text(runs):
    for kind in KINDS:
        fig = render(kind, run_of(runs, kind), style="paper")
        fig.draw_without_rendering()
        assert fig.get_figwidth() == pytest.approx(3.4), kind
        sizes = {t.get_fontsize() for t in texts_of(fig)}
        assert min(sizes) >= 7 and max(sizes) <= 9, (kind, sizes)
        assert not fig.texts  # the run's name is left to the caption
        lines = [line.get_linewidth() for ax in fig.axes for line in ax.lines]
        assert max(lines, default=0) < 1.5, kind
    for fig in other_figures(runs, "paper").values():
        assert fig.get_figwidth() in (pytest.approx(3.4), pytest.approx(7.0))
        fig.draw_without_rendering()
        assert min(t.get_fontsize() for t in texts_of(fig)) >= 7
    # Titles too long for a column are wrapped, not clipped.
    fig = render("mem_bw_overutilization", runs.sim, style="paper")
    fig.draw_without_rendering()
    ax = fig.axes[0]
    assert "\n" in ax.get_title() and ax.title.get_window_extent().width <= ax.get_window_extent().width * 1.02


def test_default_style_keeps_screen_sizes(runs):
    assert tuple(render("queue_size", runs.sim).get_size_inches()) == (11.0, 5.0)
    assert tuple(render("gantt", runs.sim).get_size_inches()) == (11.0, 6.0)
    assert "sim" in render("queue_size", runs.sim).texts[0].get_text()  # the run's name above the figure


def test_unknown_style_is_a_one_line_error(runs):
    with pytest.raises(HDeepRMError, match="unknown figure style 'poster'; expected one of default, paper"):
        render("energy", runs.sim, style="poster")


def test_plot_and_compare_take_style(runs, tmp_path, capsys):
    out = tmp_path / "e.pdf"
    assert main(["plot", "energy", str(runs.sim), "--style", "paper", "-o", str(out)]) == 0
    box = re.search(rb"/MediaBox \[\s*0 0 ([\d.]+) ([\d.]+)\s*\]", out.read_bytes())
    assert float(box.group(1)) == pytest.approx(3.4 * 72)  # points
    cmp = tmp_path / "c.svg"
    assert main(["compare", str(runs.sim), str(runs.sim_easy), "--style", "paper", "-o", str(cmp)]) == 0
    assert 'width="504pt"' in cmp.read_text()  # 7 in: both columns
    capsys.readouterr()
    with pytest.raises(SystemExit):
        main(["plot", "energy", str(runs.sim), "--style", "poster"])
    assert "invalid choice: 'poster'" in capsys.readouterr().err


# ---------------------------------------------------------------------------- action preferences


def labelled_lines(ax):
    return [a for a in ax.lines + ax.collections if isinstance(a, (Line2D, LineCollection))]


@pytest.mark.parametrize("style", STYLES)
def test_action_preferences_have_no_unlabelled_line(runs, style):
    fig = render("action_preferences", runs.train, style=style)
    ax = fig.axes[0]
    legend = ax.get_legend() or fig.legends[0]
    shown = [t.get_text() for t in legend.get_texts()]
    lines = labelled_lines(ax)
    assert lines and all(not line.get_label().startswith("_") for line in lines)
    assert sorted(line.get_label() for line in lines) == sorted(shown)


def test_an_action_that_led_training_is_named_even_when_it_fell_back_at_the_end():
    rng = np.random.default_rng(3)
    probs = rng.uniform(0.01, 0.03, (20, 12))
    probs[5, :-1] = 0.5  # leads every episode but the last, where it is not in the top 8
    probs[5, -1] = 0.001
    probs /= probs.sum(axis=0)
    ax = f.action_preferences_figure(probs, [f"a{i}" for i in range(20)], "t").axes[0]
    line = next(line for line in ax.lines if line.get_gid() == "action-5")
    assert line.get_label().startswith("a5 (") and line.get_color() != s.CONTEXT
    others = next(c for c in ax.collections if c.get_gid() == "action-others")
    assert len(others.get_segments()) == 20 - 9 and others.get_label() == "other 11 actions"
    assert all(not a.get_label().startswith("_") for a in labelled_lines(ax))
