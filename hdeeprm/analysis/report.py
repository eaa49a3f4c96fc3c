"""``hdeeprm report RUN_DIR``: one self-contained HTML page per run.

The page holds the run's configuration, its headline metrics, the evaluation table of a
training run and its main figures, embedded (base64 PNG, or inline SVG), with no external
file, script or style sheet: sending the one file shares the result.
"""

from __future__ import annotations

import base64
import html
import io
import json
from pathlib import Path

from hdeeprm import __version__
from hdeeprm.analysis.plots import KINDS, render
from hdeeprm.analysis.plots import data as d
from hdeeprm.analysis.plots.units import COMPARED_METRICS, metric_unit
from hdeeprm.common.errors import HDeepRMError

#: Figures of a report, in page order; those whose inputs the run lacks are left out.
REPORT_FIGURES = ("gantt_no_label", "queue_size", "utilization", "power", "energy", "pstates",
                  "blocking", "mem_bw_overutilization", "learning", "action_preferences")
GENERATOR = f"hdeeprm report {__version__}"

_STYLE = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 2em auto; max-width: 1200px;
       padding: 0 1em; color: #222; }
h1 { font-size: 1.5em; margin-bottom: 0.2em; } h2 { border-bottom: 1px solid #ccc; margin-top: 1.6em; }
.sub { color: #666; margin-top: 0; }
table { border-collapse: collapse; margin: 0.5em 0; font-size: 0.92em; }
th, td { border: 1px solid #ddd; padding: 0.25em 0.6em; text-align: left; vertical-align: top; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
figure { margin: 1.2em 0; } figure img, figure svg { max-width: 100%; height: auto; }
figcaption { color: #555; font-size: 0.9em; } pre { background: #f6f6f6; padding: 0.6em; overflow-x: auto; }
.missing { color: #888; font-size: 0.9em; }
"""


def available(kind: str, run: d.Run) -> bool:
    """Whether the run has the files a figure needs."""
    spec = KINDS[kind]
    if spec.learning:
        return all((run.root / name).is_file() for name in spec.needs)
    return all(run.file(name) is not None for name in spec.needs)


def figure_html(fig, fmt: str = "png", dpi: int = 110) -> str:
    """A figure as an embeddable element: <img> with a base64 PNG, or the SVG itself."""
    from hdeeprm.analysis.plots import CREATOR

    buffer = io.BytesIO()
    fig.savefig(buffer, format=fmt, dpi=dpi, metadata={"Creator": CREATOR})
    if fmt == "svg":
        text = buffer.getvalue().decode("utf-8")
        return text[text.index("<svg"):]  # drop the XML prolog and doctype: invalid inside HTML
    data = base64.b64encode(buffer.getvalue()).decode("ascii")
    return f'<img alt="" src="data:image/png;base64,{data}">'


def build_report(run: d.Run, figures: tuple[str, ...] = REPORT_FIGURES, fmt: str = "png") -> str:
    parts = [f"<h1>{_e(run.title)}</h1>",
             f'<p class="sub">{_e(str(run.root.resolve()))}'
             + (f" &middot; Batsim outputs of episode {run.episode}" if run.episode is not None else "")
             + f" &middot; {_e(GENERATOR)}</p>"]
    parts.append("<h2>Headline metrics</h2>")
    parts.append(_metrics_html(run))
    evaluation = run.root / d.EVALUATION_FILE
    if evaluation.is_file():
        table = d.read_evaluation(evaluation)
        parts.append("<h2>Evaluation on held-out episodes</h2>")
        parts.append(_table(table.columns, table.rows))
    parts.append("<h2>Figures</h2>")
    left_out = []
    for kind in figures:
        if not available(kind, run):
            left_out.append(f"{kind} (no {', '.join(KINDS[kind].needs)})")
            continue
        try:
            fig = render(kind, run)
        except HDeepRMError as e:
            left_out.append(f"{kind} ({e})")
            continue
        parts.append(f'<figure id="fig-{kind}">{figure_html(fig, fmt)}'
                     f"<figcaption>{_e(kind)}: {_e(KINDS[kind].help)}</figcaption></figure>")
    if left_out:
        parts.append(f'<p class="missing">Not drawn: {_e("; ".join(left_out))}.</p>')
    parts.append("<h2>Configuration</h2>")
    if run.config_file:
        parts.append(f"<p>From {_e(run.config_file)}:</p>")
        parts.append(_table(("key", "value"), [(k, _value(v)) for k, v in run.config.items()]))
    else:
        parts.append('<p class="missing">No configuration file in this run folder.</p>')
    parts.append("<h2>Files</h2>")
    parts.append(_table(("file", "bytes"), _file_rows(run)))
    head = (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
            f'<meta name="generator" content="{_e(GENERATOR)}">'
            f"<title>{_e(run.title)}</title><style>{_STYLE}</style></head>\n<body>\n")
    return head + "\n".join(parts) + "\n</body></html>\n"


def _metrics_html(run: d.Run) -> str:
    out = []
    metrics = run.config.get("metrics") if run.config_file == "run_config.json" else None
    if isinstance(metrics, dict):
        from hdeeprm.simulation.metrics import HeadlineMetrics

        try:
            out.append(f"<pre>{_e(chr(10).join(HeadlineMetrics(**metrics).lines()))}</pre>")
        except TypeError:
            pass  # written by another version: the Batsim aggregates below still say it all
    schedule = run.file(d.SCHEDULE_FILE)
    if schedule is not None:
        values = d.read_schedule(schedule)
        rows = []
        for key, label, kind in COMPARED_METRICS:
            v = values.get(key)
            if isinstance(v, float):
                unit = metric_unit(kind, [v])
                rows.append((label, f"{v * unit.scale:,.6g}", unit.name or "-"))
        for key in ("nb_jobs", "nb_jobs_finished", "nb_jobs_killed", "nb_jobs_rejected", "nb_computing_machines"):
            if isinstance(values.get(key), float):
                rows.append((key.replace("_", " "), f"{int(values[key]):,}", "-"))
        out.append(f"<p>From {_e(str(schedule.relative_to(run.root)))}:</p>")
        out.append(_table(("metric", "value", "unit"), rows))
    rewards = run.root / "rewards.log"
    if rewards.is_file():
        r = d.read_numbers(rewards)
        if r.size:
            out.append(_table(("training", "value"), [("episodes", f"{r.size:,}"),
                                                      ("reward, first episode", f"{r[0]:.6g}"),
                                                      ("reward, last episode", f"{r[-1]:.6g}"),
                                                      ("best reward", f"{r.max():.6g}")]))
    return "\n".join(out) or '<p class="missing">No metrics found.</p>'


def _file_rows(run: d.Run) -> list[tuple[str, str]]:
    """The run folder's files; episode folders (hundreds in a training run) summed up in one row."""
    rows, episode_files = [], []
    for p in sorted(run.root.rglob("*")):
        if p.is_file():
            rel = p.relative_to(run.root)
            if rel.parts[0].startswith("episode_") and len(rel.parts) > 1:
                episode_files.append(p)
            else:
                rows.append((str(rel), f"{p.stat().st_size:,}"))
    if episode_files:
        rows.append((f"episode_<k>/ ({len(run.episodes)} folders, {len(episode_files)} files)",
                     f"{sum(p.stat().st_size for p in episode_files):,}"))
    return rows


def _table(columns, rows) -> str:
    head = "".join(f"<th>{_e(str(c))}</th>" for c in columns)
    body = "".join("<tr>" + "".join(_cell(v) for v in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _cell(value) -> str:
    text = str(value)
    numeric = text.replace(",", "").replace(".", "", 1).lstrip("+-").replace("e", "", 1).isdigit()
    return f'<td class="num">{_e(text)}</td>' if numeric else f"<td>{_e(text)}</td>"


def _value(v) -> str:
    return v if isinstance(v, str) else json.dumps(v)


def _e(text: str) -> str:
    return html.escape(text, quote=True)


def write_report(run_dir: str | Path, out: str | Path | None = None, *, episode: int | None = None,
                 fmt: str = "png") -> Path:
    """Write the report of a run folder (default ``RUN_DIR/report.html``)."""
    run = d.open_run(run_dir, episode)
    path = Path(out) if out else run.root / "report.html"
    text = build_report(run, fmt=fmt)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path
