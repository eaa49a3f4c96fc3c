"""What a researcher meets on a first day (issue 19): the tables of evaluate and sweep name the
same quantity the same way, numbers for people are rounded while the files keep every digit,
commands that draw say how to get matplotlib, and the help says what each command does."""

from __future__ import annotations

import csv
import json
import math
import re
import subprocess
import sys
from pathlib import Path

import pytest

from hdeeprm.analysis.evaluation import EVALUATION_COLUMNS, evaluate, print_table
from hdeeprm.analysis.tables import format_bytes, format_count, format_number, format_seconds, format_value
from hdeeprm.cli.main import COMMAND_GROUPS, build_parser, main
from hdeeprm.rl.experiment import ExperimentConfig
from hdeeprm.rl.sweep import RESULT_COLUMNS, TABLE_COLUMNS, WINDOW_METRICS

TRACES = Path(__file__).parent / "data" / "traces"
EXPERIMENT = {"platform": "quickstart", "workload": "kth-sp2-head.swf.gz", "nb_jobs": 200, "episode_jobs": 30,
              "eval_episodes": 3, "observation": "minimal", "hidden": 16, "reward_scale": 0.001}
NUMBER = re.compile(r"(?<![\w.])-?\d[\d,]*(?:\.\d+)?(?:e[+-]\d+)?(?![\w.])")


def rounded(token: str) -> bool:
    """At most 5 significant digits, or a time in seconds with at most 1 decimal (15,880.7)."""
    mantissa = token.split("e")[0]
    decimals = len(mantissa.split(".")[1]) if "." in mantissa else 0
    return significant_digits(token) <= 5 or decimals <= 1


def significant_digits(token: str) -> int:
    mantissa = token.lstrip("-").split("e")[0].replace(",", "")
    digits = mantissa.replace(".", "").lstrip("0")
    if "." not in mantissa:
        digits = digits.rstrip("0") or "0"  # 1,000 has 1 significant digit (or 4: never more)
    return len(digits)


# ---------------------------------------------------------------------------- the one number format


@pytest.mark.parametrize("value, digits, text", [
    (4062.31, 5, "4,062.3"), (-4062.31, 5, "-4,062.3"), (999.96, 4, "1,000"), (12345.6, 4, "12,346"),
    (0.123456, 4, "0.1235"), (1.0, 4, "1.000"), (0.0001234, 4, "1.234e-04"), (3.2e9, 4, "3.200e+09"),
    (math.nan, 4, "-"), (-math.inf, 4, "-inf"), (0.0, 5, "0"),
])
def test_numbers_have_significant_digits_and_thousands_separators(value, digits, text):
    assert format_number(value, digits) == text


@pytest.mark.parametrize("value, text", [
    (1.23456, "1.235"), (12.3456, "12.35"), (123.456, "123.5"), (1234567.89, "1,234,567.9"), (0.0, "0.000"),
    (1.1641532182693482e-12, "0.000"), (-2.5, "-2.500"), (math.nan, "-"),
])
def test_times_are_seconds_with_one_to_three_decimals(value, text):
    assert format_seconds(value) == text


def test_cells_follow_the_kind_of_their_column():
    assert format_value("4062433553.4744453", "energy") == "4.062e+09"
    assert format_value("877824.8804861986", "time") == "877,824.9"
    assert format_value("-0.12345678901234", "number") == "-0.1235"
    assert format_value("12", "count") == "12" and format_value(123456, "count") == "123,456"
    assert format_value("first:first_fit", "number") == "first:first_fit"  # text stays text
    assert format_value("", "time") == "" and format_value(None) == ""
    assert format_count(2280.0) == "2,280" and format_bytes(5740) == "5.74 kB" and format_bytes(12) == "12 bytes"
    with pytest.raises(ValueError, match="unknown kind"):
        format_value(1.0, "watts")


# ---------------------------------------------------------------------------- evaluation.csv and results.csv


@pytest.fixture(scope="module")
def tables(tmp_path_factory):
    """evaluate --out and a sweep of the same experiment, policy and seed."""
    base = tmp_path_factory.mktemp("tables")
    (base / "small.json").write_text(json.dumps(EXPERIMENT))
    (base / "grid.json").write_text(json.dumps({"experiment": "small.json", "policies": ["first:high_gflops"],
                                                "seeds": [3], "outputs": False}))
    config = ExperimentConfig.load(base / "small.json", seed=3)
    evaluation = evaluate(config, pairs=[("first", "high_gflops")], out_dir=base / "eval")
    return base, config, evaluation


def read_rows(path: Path) -> tuple[list[str], list[dict]]:
    with open(path, newline="") as f:
        reader = csv.DictReader(f)
        return list(reader.fieldnames), list(reader)


def test_evaluation_and_sweep_tables_name_the_same_quantities_alike(tables, capsys, monkeypatch):
    base, config, _ = tables
    monkeypatch.setattr(sys, "argv", ["hdeeprm", "sweep", str(base / "grid.json"), "--out", str(base / "sweep")])
    assert main(["sweep", str(base / "grid.json"), "--out", str(base / "sweep")]) == 0
    printed = capsys.readouterr().out
    eval_columns, eval_rows = read_rows(base / "eval" / "evaluation.csv")
    sweep_columns, sweep_rows = read_rows(base / "sweep" / "results.csv")
    assert eval_columns == list(EVALUATION_COLUMNS) and sweep_columns == list(RESULT_COLUMNS)
    # No old name is left, and every number column of either table is one of TABLE_COLUMNS.
    for old in ("mean_return", "std_return", "energy_joules"):
        assert old not in eval_columns and old not in sweep_columns
    labels = {"policy", "kind", "objective", "cell", "platform", "workload", "overrides", "seed", "status", "error"}
    assert set(eval_columns) - labels <= set(TABLE_COLUMNS) and set(sweep_columns) - labels <= set(TABLE_COLUMNS)
    shared = [c for c in eval_columns if c in sweep_columns and c in TABLE_COLUMNS]
    assert shared == ["windows", "return_mean", "return_std", *WINDOW_METRICS]
    # Same quantity, same name, same value: the sweep's cell is evaluate's row of that policy and seed.
    eval_row = next(r for r in eval_rows if r["policy"] == "first:high_gflops")
    for column in shared:
        assert float(sweep_rows[0][column]) == float(eval_row[column]), column
    # The files keep every digit: a float reads back as the value computed.
    outcome = next(o for o in tables[2] if o.policy == "first:high_gflops")
    assert float(eval_row["consumed_joules"]) == outcome.consumed_joules
    assert float(eval_row["return_std"]) == outcome.return_std and outcome.return_std > 0
    # The terminal ranking is rounded: 5 significant digits at most (times: 1 to 3 decimals).
    ranking = printed[printed.index("mean return over seeds"):].splitlines()
    assert ranking[1].split()[:4] == ["rank", "policy", "seeds", "return"] and "energy J" in ranking[1]
    tokens = [t for line in ranking[3:] for t in NUMBER.findall(line)]
    assert len(tokens) >= 7 and all(rounded(t) for t in tokens), ranking


def test_the_evaluation_table_in_the_terminal_is_rounded(tables, capsys):
    _, config, evaluation = tables
    print_table(evaluation, config)
    text = capsys.readouterr().out
    lines = [line for line in text.splitlines() if line.strip().startswith(("1 ", "2 ", "3 ", "4 "))]
    assert lines
    for line in lines:
        tokens = NUMBER.findall(line.split(None, 2)[-1].split(")")[-1])
        assert len(tokens) >= 4 and all(rounded(t) for t in tokens), line


def test_the_report_rounds_the_evaluation_table_and_fits_the_page(tables, tmp_path):
    from hdeeprm.analysis.plots import data as d
    from hdeeprm.analysis.report import build_report

    base, _, _ = tables
    run = tmp_path / "run"
    run.mkdir()
    (run / "evaluation.csv").write_bytes((base / "eval" / "evaluation.csv").read_bytes())
    (run / "rewards.log").write_text("-1.23456789\n-0.5\n")
    page = build_report(d.open_run(run), draw=False)
    table = page[page.index("Evaluation on held-out episodes"):]
    table = table[:table.index("</table>")]
    cells = re.findall(r'<td class="num">([^<]*)</td>', table)
    assert cells and all(len(c.replace(",", "").replace("-", "").replace(".", "")) <= 9 for c in cells), cells
    assert 'class="wide"' in table  # 14 columns: the smaller font
    assert "overflow-x: auto" in page and "table-layout" in page and '<div class="table-wrap">' in page
    # evaluation.csv itself keeps repr() of the floats
    assert re.search(r",-?\d+\.\d{8,}", (run / "evaluation.csv").read_text())


# ---------------------------------------------------------------------------- commands that draw


def hide_matplotlib(monkeypatch) -> None:
    """As if matplotlib were not installed, even after other tests imported it."""
    for name in [m for m in sys.modules if m == "matplotlib" or m.startswith("matplotlib.")] + [
            "matplotlib", "matplotlib.figure", "matplotlib.backends.backend_agg"]:
        monkeypatch.setitem(sys.modules, name, None)


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory):
    base = tmp_path_factory.mktemp("two-runs")
    for name, extra in (("fcfs", []), ("easy", ["--backfill", "easy"])):
        assert main(["simulate", "--platform", "quickstart", "--workload", str(TRACES / "kth-sp2-head.swf.gz"),
                     "--nb-jobs", "60", "--out", str(base / name)] + extra) == 0
    return base / "fcfs", base / "easy"


@pytest.mark.parametrize("command, instead", [
    (["plot", "gantt", "{a}"], None),
    (["plot", "energy", "{a}", "-o", "{tmp}/energy.svg"], None),
    (["report", "{a}", "-o", "{tmp}/page.html"], "--no-figures"),
    (["compare", "{a}", "{b}"], "--no-figure"),
    (["describe", str(TRACES / "kth-sp2-head.swf.gz"), "--figure", "{tmp}/jobs.png"], "without --figure"),
])
def test_commands_that_draw_say_how_to_install_matplotlib(command, instead, two_runs, tmp_path, monkeypatch,
                                                          capsys):
    hide_matplotlib(monkeypatch)
    argv = [c.format(a=two_runs[0], b=two_runs[1], tmp=tmp_path) for c in command]
    assert main(argv) == 2
    captured = capsys.readouterr()
    assert captured.err.count("\n") == 1 and captured.err.startswith(f"hdeeprm {argv[0]}: error: ")
    assert "matplotlib is not installed; pip install -e '.[plot]'" in captured.err
    assert (instead or "") in captured.err
    assert captured.out == ""  # said before any work: no table printed, then an error
    assert list(tmp_path.iterdir()) == []


def test_without_matplotlib_the_tables_still_come(two_runs, tmp_path, monkeypatch, capsys):
    hide_matplotlib(monkeypatch)
    assert main(["compare", str(two_runs[0]), str(two_runs[1]), "--no-figure"]) == 0
    assert "Makespan" in capsys.readouterr().out
    assert main(["report", str(two_runs[0]), "-o", str(tmp_path / "page.html"), "--no-figures"]) == 0
    page = (tmp_path / "page.html").read_text()
    assert "Figures left out (--no-figures)" in page and "<img" not in page
    assert main(["describe", str(TRACES / "kth-sp2-head.swf.gz")]) == 0


def test_the_real_command_without_matplotlib_gives_one_line_and_no_traceback(two_runs):
    code = ("import sys; sys.modules['matplotlib'] = None\n"
            "from hdeeprm.cli.main import main\n"
            f"sys.exit(main(['plot', 'gantt', {str(two_runs[0])!r}]))\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr and done.stderr.count("\n") == 1
    assert "pip install -e '.[plot]'" in done.stderr


# ---------------------------------------------------------------------------- help


def test_top_level_help_says_what_hdeeprm_does_and_lists_each_command_on_one_line():
    parser, commands = build_parser()
    text = parser.format_help()
    assert "job scheduling" in text and "simulates" in text
    listed = re.findall(r"^  ([a-z]+)  +\S.*$", text, flags=re.M)
    assert listed == list(commands)  # every command, once each, in the parser's order
    for name in commands:
        line = next(x for x in text.splitlines() if x.startswith(f"  {name} "))
        assert len(line) <= 80, line
    assert "usage: hdeeprm [-h] [--version] COMMAND ..." in text
    assert "{simulate," not in text  # not argparse's list of the commands again


@pytest.mark.parametrize("group", COMMAND_GROUPS)
def test_every_command_has_help_for_every_argument(group):
    parser, commands = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    for name, command_parser in sub.choices.items():
        command_parser.format_help()  # renders
        if group != "analysis" or name not in ("plot", "compare", "report", "describe", "jobstat", "clean"):
            continue  # the others' help strings live in their own modules
        for action in command_parser._actions:
            assert action.help, f"{name} {action.dest}: no help"


def test_plot_help_points_at_the_list_where_it_is():
    parser, _ = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    text = sub.choices["plot"].format_help()
    assert "KINDS:" in text.split("positional arguments")[0]  # the list comes first...
    assert "listed above" in text and "below" not in text  # ...and the help says so
    clean = sub.choices["clean"].format_help()
    assert "manifest.json" in clean and "best.pt" in clean
