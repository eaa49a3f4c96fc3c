"""Hostile inputs found by benchmarks/fuzz.py that used to escape as tracebacks: each must now be
a one-line error (exit status 2 from the command line, an HDeepRMError from the API)."""

from __future__ import annotations

import errno
import os
import sys
from pathlib import Path

import pytest

from hdeeprm.common import jsonfile
from hdeeprm.common.errors import ConfigError, FormatError, report_errors
from hdeeprm.common.jsonfile import read_json_object

REFERENCE = Path(__file__).parent / "data" / "batsim-reference" / "A1-delay-walltime"


# ---------------------------------------------------------------- read_json_object (options-75,
# grid-162, experiment-46, experiment-295, experiment-3125)


def _config_error(path) -> str:
    with pytest.raises(ConfigError) as info:
        read_json_object(path)
    message = str(info.value)
    assert "\n" not in message and len(message) < 200
    return message


def test_json_not_utf8_names_the_byte(tmp_path):
    path = tmp_path / "options.json"
    path.write_bytes(b'{"seed": "caf\xe9"}')
    assert _config_error(path) == f"{path}: not UTF-8 text (byte 13)"


def test_json_nested_too_deep(tmp_path):
    path = tmp_path / "experiment.json"
    path.write_text('{"workload": ' + "[" * 100_000 + "]" * 100_000 + "}")
    assert _config_error(path) == f"{path}: JSON nested too deep"


@pytest.mark.parametrize("digits", [101, 4301, 20_000])
def test_json_huge_integer_is_refused_without_echoing_it(tmp_path, digits):
    path = tmp_path / "experiment.json"
    path.write_text('{\n  "gamma": ' + "9" * digits + "\n}")
    message = _config_error(path)
    assert message.startswith(f"{path}: line 2: integer 999") and f"has {digits} digits" in message
    assert "9" * 50 not in message


def test_json_ordinary_integers_still_read(tmp_path):
    path = tmp_path / "options.json"
    path.write_text('{"seed": 18446744073709551615, "n": -3}')
    assert read_json_object(path) == {"seed": 18446744073709551615, "n": -3}


@pytest.mark.parametrize("literal", ["1e999", "-1e999", "1" * 400 + ".0"])
def test_json_overflowing_float_is_refused(tmp_path, literal):
    path = tmp_path / "options.json"
    path.write_text('{"lr": 0.1,\n "scale": ' + literal + "}")
    message = _config_error(path)
    assert message.startswith(f"{path}: line 2: ") and "expected a finite number" in message
    assert len(message) < len(str(path)) + 100


def test_json_nan_still_refused(tmp_path):
    path = tmp_path / "options.json"
    path.write_text('{"lr": NaN}')
    assert "NaN is not a number JSON allows" in _config_error(path)


def test_json_size_limit_reads_at_most_limit_plus_one(tmp_path, monkeypatch):
    monkeypatch.setattr(jsonfile, "MAX_JSON_BYTES", 64)
    path = tmp_path / "options.json"
    path.write_text('{"a": "' + "x" * 100 + '"}')
    assert "larger than" in _config_error(path)
    if os.path.exists("/dev/zero"):
        assert "larger than" in _config_error("/dev/zero")


def test_json_size_limit_is_64_mib():
    assert jsonfile.MAX_JSON_BYTES == 64 * 1024 * 1024


# ---------------------------------------------------------------- report_errors and OSError
# (cli-31, cli-104, cli-196, cli-693, cli-744, cli-609, cli-4762, cli-306)


@pytest.mark.parametrize("make", [
    lambda p: os.makedirs(p / "afile"),                      # FileExistsError
    lambda p: os.makedirs(p / "afile" / "x"),                # NotADirectoryError
    lambda p: open(p / "adir", "w"),  # noqa: SIM115          IsADirectoryError
    lambda p: os.makedirs(p / ("x" * 300)),                  # errno 36, name too long
])
def test_unwritable_output_paths_are_one_line(tmp_path, capsys, make):
    (tmp_path / "afile").write_text("")
    (tmp_path / "adir").mkdir()
    assert report_errors("hdeeprm simulate", lambda: make(tmp_path)) == 2
    err = capsys.readouterr().err
    assert err.startswith("hdeeprm simulate: error: ") and err.count("\n") == 1
    assert len(err) < 200 and "Traceback" not in err


def test_oserror_message_names_file_and_reason(capsys):
    def denied():
        raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), "out/run")
    assert report_errors("hdeeprm", denied) == 2
    assert capsys.readouterr().err == f"hdeeprm: error: out/run: {os.strerror(errno.EACCES)}\n"


def test_oserror_without_filename(capsys):
    def full():
        raise OSError(errno.ENOSPC, "No space left on device")
    assert report_errors("hdeeprm", full) == 2
    assert capsys.readouterr().err == "hdeeprm: error: [Errno 28] No space left on device\n"


def test_file_not_found_unchanged(capsys):
    assert report_errors("hdeeprm", lambda: open("/no/such/file")) == 2  # noqa: SIM115
    assert capsys.readouterr().err == "hdeeprm: error: /no/such/file: no such file\n"


def test_broken_pipe_is_quiet(capsys):
    def pipe():
        raise BrokenPipeError(errno.EPIPE, "Broken pipe")
    assert report_errors("hdeeprm", pipe) == 141
    assert capsys.readouterr().err == ""


def test_broken_pipe_from_a_real_pipe_has_no_traceback(tmp_path):
    import subprocess

    code = ("import sys\nfrom hdeeprm.common.errors import report_errors\n"
            "def spam():\n    for i in range(10**6):\n        print('line', i)\n    return 0\n"
            "sys.exit(report_errors('hdeeprm', spam))\n")
    run = subprocess.run(f"{sys.executable} -c \"{code}\" | head -1", shell=True, capture_output=True,
                         text=True, executable="/bin/bash", timeout=60, check=False)
    assert run.stdout == "line 0\n" and run.stderr == ""


def test_keyboard_interrupt_unchanged(capsys):
    def interrupt():
        raise KeyboardInterrupt
    assert report_errors("hdeeprm", interrupt) == 130


def test_bugs_still_raise():
    with pytest.raises(ZeroDivisionError):
        report_errors("hdeeprm", lambda: 1 / 0)


def test_replay_out_below_a_file(tmp_path, capsys):
    from hdeeprm.cli.main import main

    (tmp_path / "afile").write_text("")
    assert main(["replay", str(REFERENCE), "--out", str(tmp_path / "afile" / "x")]) == 2
    err = capsys.readouterr().err
    assert err.strip().endswith("afile/x: Not a directory") and err.count("\n") == 1


# ---------------------------------------------------------------- empty --out


@pytest.mark.parametrize("argv", [
    ["simulate", "--platform", "quickstart", "--workload", str(REFERENCE / "workload.json"), "--out", ""],
    ["replay", str(REFERENCE), "--out", ""],
    ["convert", "trace.swf", "--platform", "gaia", "--out", " "],
])
def test_empty_out_is_refused(capsys, argv):
    from hdeeprm.cli.main import main

    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "--out" in err and "empty" in err and err.count("\n") == 1


# ---------------------------------------------------------------- --dpi (cli-431, cli-328,
# cli-778, cli-1564)


@pytest.mark.parametrize("argv", [
    ["plot", "utilization", "no-such-run", "--dpi", "1"],
    ["plot", "gantt", "no-such-run", "--dpi", "1180591620717411303424"],
    ["plot", "gantt_no_label", "no-such-run", "--dpi", "100000"],
    ["compare", "no-such-run", "no-such-run", "--dpi", "0"],
])
def test_dpi_out_of_range_is_refused_before_reading(capsys, argv):
    from hdeeprm.cli.main import main

    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "--dpi" in err and "10 to 1200" in err and err.count("\n") == 1 and len(err) < 120


def test_save_figure_checks_dpi():
    from hdeeprm.analysis.plots import check_dpi, save_figure

    assert check_dpi(150) == 150 and check_dpi(10) == 10 and check_dpi(1200) == 1200
    with pytest.raises(ConfigError):
        save_figure(object(), "fig.png", dpi=-5)


# ---------------------------------------------------------------- run folders (run_csv-310,
# run_csv-2870, run_csv-4059)


def test_run_json_not_utf8_is_format_error(tmp_path):
    from hdeeprm.analysis.plots import data

    path = tmp_path / "overutilization.json"
    path.write_bytes(b'{"name": "caf\xe9"}')
    with pytest.raises(FormatError, match=r"byte 13: not UTF-8 text; expected JSON"):
        data._read_json(path)


def test_run_json_too_deep_is_format_error(tmp_path):
    from hdeeprm.analysis.plots import data

    path = tmp_path / "overutilization.json"
    path.write_text("[" * 100_000 + "]" * 100_000)
    with pytest.raises(FormatError, match="nested too deep"):
        data._read_json(path)


@pytest.mark.parametrize("offset", [12, 70_000])
def test_run_csv_not_utf8_names_the_byte(tmp_path, offset):
    from hdeeprm.analysis.plots import data

    path = tmp_path / "out_jobs.csv"
    header = ",".join(data._JOB_FIELDS).encode() + b"\n"
    text = bytearray(header + b"1,0,1,COMPLETED_SUCCESSFULLY,0,1,0\n" * 5_000)
    text[offset] = 0xD3
    path.write_bytes(bytes(text))
    with pytest.raises(FormatError, match=rf"out_jobs.csv: byte {offset}: not UTF-8 text; expected CSV"):
        data.read_jobs(path)


def test_run_numbers_not_utf8_is_format_error(tmp_path):
    from hdeeprm.analysis.plots import data

    path = tmp_path / "rewards.log"
    path.write_bytes(b"1.0\n\xff\n")
    with pytest.raises(FormatError, match="byte 4"):
        data.read_numbers(path)


def test_clean_sniffing_deep_json_is_not_ours(tmp_path):
    from hdeeprm.analysis.runs import _json_with

    path = tmp_path / "overutilization.json"
    path.write_text("[" * 100_000 + "]" * 100_000)
    assert _json_with(lambda data: True)(path) is False
