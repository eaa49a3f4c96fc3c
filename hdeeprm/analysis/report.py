"""``hdeeprm report RUN_DIR``: one self-contained HTML page per run.

The page holds how the run was made (its manifest.json, when it has one), its headline
metrics, the evaluation table of a training run, its main figures, embedded (base64 PNG, or
inline SVG), and its configuration, with no external file, script or style sheet: sending
the one file shares the result. Numbers are rounded for reading
(:mod:`hdeeprm.analysis.tables`); the run's files keep every digit. Wide tables scroll
sideways inside the page instead of widening it.
"""

from __future__ import annotations

import base64
import html
import io
import json
from pathlib import Path

from hdeeprm import __version__
from hdeeprm.analysis.plots import KINDS, render, require_matplotlib
from hdeeprm.analysis.plots import data as d
from hdeeprm.analysis.plots.units import COMPARED_METRICS, energy_unit, metric_unit, time_unit
from hdeeprm.analysis.tables import format_count, format_number, format_seconds, format_value
from hdeeprm.common.errors import HDeepRMError
from hdeeprm.common.manifest import manifest_lines, read_manifest
from hdeeprm.rl.sweep import TABLE_COLUMNS

#: Figures of a report, in page order; those whose inputs the run lacks are left out.
REPORT_FIGURES = ("gantt_no_label", "queue_size", "utilization", "power", "energy", "pstates",
                  "blocking", "mem_bw_overutilization", "learning", "action_preferences")
GENERATOR = f"hdeeprm report {__version__}"

_STYLE = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 2em auto; max-width: 1200px;
       padding: 0 1em; color: #222; }
h1 { font-size: 1.5em; margin-bottom: 0.2em; } h2 { border-bottom: 1px solid #ccc; margin-top: 1.6em; }
.sub { color: #666; margin-top: 0; }
.table-wrap { max-width: 100%; overflow-x: auto; margin: 0.5em 0; }
table { border-collapse: collapse; font-size: 0.92em; table-layout: auto; }
table.wide { font-size: 0.8em; }
table.kv { table-layout: fixed; width: 100%; }
table.kv td:first-child { width: 28%; }
th, td { border: 1px solid #ddd; padding: 0.25em 0.6em; text-align: left; vertical-align: top;
         overflow-wrap: anywhere; }
th { background: #f3f3f3; }
td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
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


def build_report(run: d.Run, figures: tuple[str, ...] = REPORT_FIGURES, fmt: str = "png", draw: bool = True) -> str:
    """The page of ``run``; ``draw=False`` leaves the figures out (no matplotlib needed)."""
    parts = [f"<h1>{_e(run.title)}</h1>",
             f'<p class="sub">{_e(str(run.root.resolve()))}'
             + (f" &middot; Batsim outputs of episode {run.episode}" if run.episode is not None else "")
             + f" &middot; {_e(GENERATOR)}</p>"]
    manifest = read_manifest(run.root)
    if manifest is not None:
        parts.append("<h2>Run</h2>")
        parts.append(_table(("", ""), [line.split(": ", 1) for line in manifest_lines(manifest)],
                            css="kv", header=False))
    parts.append("<h2>Headline metrics</h2>")
    parts.append(_metrics_html(run))
    parts.append("<h2>Per-user service</h2>")
    parts.append(_users_html(run))
    evaluation = run.root / d.EVALUATION_FILE
    if evaluation.is_file():
        table = d.read_evaluation(evaluation)
        parts.append("<h2>Evaluation on held-out episodes</h2>")
        parts.append(_table(table.columns, _evaluation_rows(table.columns, table.rows)))
    parts.append("<h2>Figures</h2>")
    left_out = []
    if not draw:
        parts.append('<p class="missing">Figures left out (--no-figures).</p>')
    for kind in figures if draw else ():
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
        shown = run.config_file == "run_config.json" and isinstance(run.config.get("metrics"), dict)
        rows = [(k, _value(v)) for k, v in run.config.items() if not (shown and k == "metrics")]  # shown above
        parts.append(_table(("key", "value"), rows, css="kv"))
    else:
        parts.append('<p class="missing">No configuration file in this run folder.</p>')
    parts.append("<h2>Files</h2>")
    parts.append(_table(("file", "bytes"), _file_rows(run)))
    head = (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">'
            f'<meta name="generator" content="{_e(GENERATOR)}">'
            f"<title>{_e(run.title)}</title><style>{_STYLE}</style></head>\n<body>\n")
    return head + "\n".join(parts) + "\n</body></html>\n"


#: The headline metrics of run_config.json (hdeeprm simulate): key, label, kind.
HEADLINE = (("makespan", "makespan", "time"), ("mean_waiting_time", "mean waiting time", "time"),
            ("mean_slowdown", "mean slowdown", "number"),
            ("mean_bounded_slowdown", "mean bounded slowdown (10 s bound)", "number"),
            ("utilization", "utilization", "number"), ("consumed_joules", "energy", "energy"),
            ("nb_jobs", "jobs", "count"), ("nb_finished", "jobs that ran", "count"),
            ("nb_rejected", "jobs rejected", "count"),
            ("nb_walltime_killed", "jobs that reached their walltime", "count"))


def quantity(value: float, kind: str | None) -> tuple[str, str]:
    """(value, unit) for a table: times in s (in h from 3 hours on), energies in J to GJ,
    rounded by :mod:`hdeeprm.analysis.tables`."""
    if kind == "time":
        unit = time_unit(value)
        return (format_seconds(value), "s") if unit.name == "s" else (format_number(value * unit.scale, 5), unit.name)
    if kind == "energy":
        unit = energy_unit(value)
        return format_number(value * unit.scale, 5), unit.name
    if kind == "count":
        return format_count(value), "-"
    return format_number(value, 5), "-"


#: A training run's headline: the agent's row of evaluation.csv (column, label, kind), means
#: over the held-out windows.
EVALUATION_HEADLINE = (("objective_mean", "objective (mean over the windows)", "number"),
                       ("makespan", "makespan", "time"), ("mean_waiting_time", "mean waiting time", "time"),
                       ("mean_slowdown", "mean slowdown", "number"),
                       ("mean_bounded_slowdown", "mean bounded slowdown (10 s bound)", "number"),
                       ("utilization", "utilization", "number"), ("consumed_joules", "energy", "energy"))


def _agent_evaluation_html(run: d.Run) -> str | None:
    """The agent's evaluation on held-out windows, when the run has one: what a training run
    achieved (its last training episode is one random window, played while still learning)."""
    path = run.root / d.EVALUATION_FILE
    if not path.is_file():
        return None
    table = d.read_evaluation(path)
    column = {name: i for i, name in enumerate(table.columns)}
    agents = [row for row in table.rows if "kind" in column and row[column["kind"]] == "agent"]
    if not agents:
        return None
    row = agents[0]
    rows = []
    for key, label, kind in EVALUATION_HEADLINE:
        if key in column:
            try:
                value = float(row[column[key]])
            except ValueError:
                continue
            rows.append((label, *quantity(value, kind)))
    windows = row[column["windows"]] if "windows" in column else "?"
    return (f"<p>The agent ({_e(row[column['policy']])}) on {_e(windows)} held-out evaluation windows, "
            f"from {_e(d.EVALUATION_FILE)} (means over the windows):</p>"
            + _table(("metric", "value", "unit"), rows))


def _metrics_html(run: d.Run) -> str:
    out = []
    evaluated = _agent_evaluation_html(run)
    if evaluated is not None:
        out.append(evaluated)
    metrics = run.config.get("metrics") if run.config_file == "run_config.json" else None
    if isinstance(metrics, dict):
        rows = []
        for key, label, kind in HEADLINE:
            v = metrics.get(key)
            if isinstance(v, (int, float)) and not isinstance(v, bool):
                rows.append((label, *quantity(v, kind)))
        if rows:
            out.append(f"<p>From {_e(run.config_file)}:</p>")
            out.append(_table(("metric", "value", "unit"), rows))
    schedule = run.file(d.SCHEDULE_FILE)
    if schedule is not None:
        values = d.read_schedule(schedule)
        rows = []
        for key, label, kind in COMPARED_METRICS:
            v = values.get(key)
            if isinstance(v, float):
                unit = metric_unit(kind, [v])
                text = format_seconds(v) if kind == "time" and unit.name == "s" else format_number(v * unit.scale, 5)
                rows.append((label, text, unit.name or "-"))
        for key in ("nb_jobs", "nb_jobs_finished", "nb_jobs_killed", "nb_jobs_rejected", "nb_computing_machines"):
            if isinstance(values.get(key), float):
                rows.append((key.replace("_", " "), format_count(values[key]), "-"))
        where = _e(str(schedule.relative_to(run.root)))
        out.append(f"<p>From {where}" + (" (one training episode, played while learning):</p>"
                                         if evaluated is not None else ":</p>"))
        out.append(_table(("metric", "value", "unit"), rows))
    rewards = run.root / "rewards.log"
    if rewards.is_file():
        r = d.read_numbers(rewards)
        if r.size:
            out.append(_table(("training", "value"), [("episodes", format_count(r.size)),
                                                      ("reward, first episode", format_number(r[0], 5)),
                                                      ("reward, last episode", format_number(r[-1], 5)),
                                                      ("best reward", format_number(r.max(), 5))]))
    return "\n".join(out) or '<p class="missing">No metrics found.</p>'


def _users_html(run: d.Run) -> str:
    """The users with the most jobs and Jain's fairness index (hdeeprm.analysis.users)."""
    from hdeeprm.analysis.users import TOP_USERS, USERS_FILE, run_user_metrics, user_table_rows

    jobs = run.file(d.JOBS_FILE)
    report = run_user_metrics(jobs.parent) if jobs is not None else None
    if report is None:
        return (f'<p class="missing">No user information ({USERS_FILE} is written when the workload names '
                "its jobs' users): per-user metrics skipped.</p>")
    shown = min(TOP_USERS, len(report.users))
    rows = [(user, format_count(jobs_), format_count(ran), format_seconds(wait) if ran else "-",
             format_number(sd, 5) if ran else "-", format_number(bsd, 5) if ran else "-")
            for user, jobs_, ran, wait, sd, bsd in user_table_rows(report)]
    return "\n".join([
        f"<p>Jain's fairness index of the users' mean bounded slowdown: <b>{format_number(report.fairness, 4)}</b> "
        f"over {format_count(report.nb_users_served)} users whose jobs ran (1: every user served alike; "
        f"1/n: one user bears all the delay). The {shown} users with the most jobs, of "
        f"{format_count(len(report.users))}:</p>",
        _table(("user", "jobs", "jobs that ran", "mean waiting time (s)", "mean slowdown",
                "mean bounded slowdown (10 s bound)"), rows),
    ])


def _evaluation_rows(columns, rows) -> list[tuple[str, ...]]:
    """evaluation.csv's cells rounded for reading, each column by the kind of its quantity
    (columns of an older evaluation.csv, unknown here, as numbers)."""
    kinds = [TABLE_COLUMNS[c][0] if c in TABLE_COLUMNS else "text" if c in ("policy", "kind", "objective")
             else "number" for c in columns]
    return [tuple(format_value(v, kinds[i] if i < len(kinds) else "number") for i, v in enumerate(row))
            for row in rows]


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


#: Tables with more columns than this get a smaller font (and scroll sideways if still too wide).
WIDE_TABLE = 6


def _table(columns, rows, css: str = "", header: bool = True) -> str:
    classes = " ".join(c for c in (css, "wide" if len(columns) > WIDE_TABLE else "") if c)
    head = ("<thead><tr>" + "".join(f"<th>{_e(str(c))}</th>" for c in columns) + "</tr></thead>") if header else ""
    body = "".join("<tr>" + "".join(_cell(v) for v in row) + "</tr>" for row in rows)
    attribute = f' class="{classes}"' if classes else ""
    return f'<div class="table-wrap"><table{attribute}>{head}<tbody>{body}</tbody></table></div>'


def _cell(value) -> str:
    text = str(value)
    plain = text.replace(",", "").lstrip("+-")
    numeric = plain not in ("", "-") and (plain.replace(".", "", 1).replace("e", "", 1).replace("-", "", 1)
                                         .replace("+", "", 1).isdigit() or plain in ("inf", "nan"))
    return f'<td class="num">{_e(text)}</td>' if numeric else f"<td>{_e(text)}</td>"


def _value(v) -> str:
    return v if isinstance(v, str) else json.dumps(v)


def _e(text: str) -> str:
    return html.escape(text, quote=True)


def write_report(run_dir: str | Path, out: str | Path | None = None, *, episode: int | None = None,
                 fmt: str = "png", draw: bool = True) -> Path:
    """Write the report of a run folder (default ``RUN_DIR/report.html``); without
    matplotlib, a one-line error that says how to install it, unless ``draw`` is False."""
    if draw:
        require_matplotlib(instead="--no-figures for a report without figures")
    run = d.open_run(run_dir, episode)
    path = Path(out) if out else run.root / "report.html"
    text = build_report(run, fmt=fmt, draw=draw)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path
