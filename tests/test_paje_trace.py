"""Batsim's Pajé trace (PREFIX_schedule.trace) written by ``hdeeprm batsim``.

``data/paje/<scenario>/out_schedule.trace`` are real Batsim 4.2.1 traces of the recorded
scenarios run with the FCFS scheduler of test_batsim_command (which rejects, kills and changes
p-states) and ``-E``. Batsim colours each job from 64 hues that it shuffles with a fresh random
seed on every run, so the tests give our writer the palette read from Batsim's trace; with it
the files must be byte-identical.

Known limits (see hdeeprm.simulation.paje): starts of one instant are traced in job index
order, the order of this FCFS scheduler; a scheduler that starts them in another order, or that
dates its reply to SIMULATION_ENDS later than the message, gets a trace that differs from
Batsim's in those lines.
"""

from __future__ import annotations

import csv
import json
import re
import subprocess
from pathlib import Path

import numpy as np
import pytest

zmq = pytest.importorskip("zmq")

from test_batsim_command import (  # the suite's scheduler
    REFERENCE,
    FcfsScheduler,
    _args,
    needs_batsim,
)

from hdeeprm.cli.main import main
from hdeeprm.common.errors import ConfigError
from hdeeprm.inputs.platform.model import Platform
from hdeeprm.inputs.workload.model import Job, Profile, Workload
from hdeeprm.simulation import paje
from hdeeprm.simulation.engine import Engine

DATA = Path(__file__).parent / "data" / "paje"
SCENARIOS = sorted(p.name for p in DATA.iterdir() if p.is_dir())
COLOR = re.compile(r'^5 j\S+ machine_state "[^"]*" "([^"]*)"$', re.MULTILINE)


def _palette_of(text: str) -> list[str]:
    """The shuffled palette a Batsim run drew, as far as its trace shows it (the first 64 job
    colours), completed with the hues it did not use."""
    drawn = COLOR.findall(text)[:paje.NB_COLORS]
    return drawn + [c for c in paje.batsim_palette() if c not in drawn]


def _run_ours(scenario: str, prefix: Path, *options: str) -> FcfsScheduler:
    scheduler = FcfsScheduler()
    assert main(["batsim", *_args(scenario, prefix, scheduler.endpoint), *options]) == 0
    scheduler.join()
    return scheduler


def _trace(prefix: Path) -> Path:
    return Path(str(prefix) + "_schedule.trace")


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_the_trace_is_batsims_byte_for_byte(tmp_path, monkeypatch, scenario):
    theirs = (DATA / scenario / "out_schedule.trace").read_bytes()
    palette = _palette_of(theirs.decode())  # before the patch: it reads the real palette
    monkeypatch.setattr(paje, "batsim_palette", lambda: palette)
    _run_ours(scenario, tmp_path / "out")
    assert _trace(tmp_path / "out").read_bytes() == theirs


def test_batsims_colours_are_a_shuffle_of_our_palette():
    palette = paje.batsim_palette()
    assert len(set(palette)) == paje.NB_COLORS and palette[0] == "1.000000 0.000000 0.000000"
    for scenario in SCENARIOS:
        drawn = COLOR.findall((DATA / scenario / "out_schedule.trace").read_text())
        assert set(drawn) <= set(palette)
        assert len(set(drawn[:paje.NB_COLORS])) == len(drawn[:paje.NB_COLORS])  # no repeat within 64
        assert all(c == drawn[k % paje.NB_COLORS] for k, c in enumerate(drawn))


def test_kills_and_rejections_are_traced_as_batsim_does(tmp_path):
    """Walltime kills and the scheduler's kills of parallel tasks write kill events; the
    scheduler's kills of delay jobs (whose actor is killed) and rejections write none."""
    seen = set()
    for scenario in SCENARIOS:
        text = (DATA / scenario / "out_schedule.trace").read_text()
        _run_ours(scenario, tmp_path / scenario)
        profiles = json.loads((REFERENCE / scenario / "workload.json").read_text())["profiles"]
        with open(str(tmp_path / scenario) + "_jobs.csv", newline="") as f:
            for row in csv.DictReader(f):
                name = f"w0!{row['job_id']}"
                state, delay = row["final_state"], profiles[row["profile"]]["type"] == "delay"
                killed = state != "REJECTED" and f'8 {float(row["finish_time"]):.6f} kk k "{name}"\n' in text
                seen.add((state, delay))
                assert (f'"{name}"' in text) == (state != "REJECTED"), name
                assert killed == (state == "COMPLETED_WALLTIME_REACHED" or
                                  (state == "COMPLETED_KILLED" and not delay)), (scenario, name)
    assert {("REJECTED", True), ("COMPLETED_KILLED", True), ("COMPLETED_KILLED", False),
            ("COMPLETED_WALLTIME_REACHED", True), ("COMPLETED_WALLTIME_REACHED", False)} <= seen


def test_disable_schedule_tracing_writes_no_trace(tmp_path):
    _run_ours("A8-dvfs-script", tmp_path / "off", "--disable-schedule-tracing")
    assert not _trace(tmp_path / "off").exists()
    assert Path(str(tmp_path / "off") + "_jobs.csv").exists()


def _hand_run(record_energy_rows: bool = True):
    """Four machines: job 2 (delay 5, walltime 3) reaches its walltime at 3; jobs 1 (a
    parallel task) and 0 (a delay) are killed by the scheduler at 4; job 3 is rejected."""
    platform = Platform(("a", "b", "c", "d"), np.full((4, 1), 1e9), np.full((4, 1), 100.0),
                        np.full((4, 1), 200.0), np.ones(4, int), np.zeros(4, int))
    profiles = {"d10": Profile("d10", "delay", delay=10), "d5": Profile("d5", "delay", delay=5),
                "ph": Profile("ph", "parallel_homogeneous", cpu=1e10)}
    jobs = (Job("0", 0, 1, "d10", None), Job("1", 0, 2, "ph", None), Job("2", 0, 1, "d5", 3.0),
            Job("3", 0, 5, "d5", None))
    engine = Engine(platform, Workload(jobs, profiles), record_energy_rows=record_energy_rows)
    engine.next_decision_point()
    engine.reject(3)
    for job, hosts in ((2, [0]), (1, [2, 1]), (0, [3])):  # not in job index order
        engine.execute(job, hosts)
    engine.call_me_later(4.0)
    while (point := engine.next_decision_point()) is not None:
        if point.requested_calls:
            engine.kill(1)
            engine.kill(0)
    return engine.result()


def test_a_hand_made_run_from_batsims_source():
    """The lines PajeTracer writes for this run, read from src/export.cpp, src/machines.cpp and
    src/jobs_execution.cpp, with the jobs' start order given."""
    c = paje.batsim_palette()
    text = paje.paje_trace_text(_hand_run(), ["a", "b", "c", "d"], start_order=[2, 1, 0])
    assert '2 0.000000 machine_ct m1 "b" root\n' in text
    events = text.split("# Begin of events\n")[1]
    assert events == "".join(f"6 0.000000 machine_state m{m} w\n" for m in range(4)) + (
        f'5 jw0!2 machine_state "w0!2" "{c[0]}"\n6 0.000000 machine_state m0 jw0!2\n'
        f'5 jw0!1 machine_state "w0!1" "{c[1]}"\n6 0.000000 machine_state m1 jw0!1\n'
        f'6 0.000000 machine_state m2 jw0!1\n'
        f'5 jw0!0 machine_state "w0!0" "{c[2]}"\n6 0.000000 machine_state m3 jw0!0\n'
        '8 3.000000 kk k "w0!2"\n8 3.000000 km m0 "w0!2"\n6 3.000000 machine_state m0 w\n'
        '8 4.000000 kk k "w0!1"\n8 4.000000 km m1 "w0!1"\n8 4.000000 km m2 "w0!1"\n'
        '6 4.000000 machine_state m1 w\n6 4.000000 machine_state m2 w\n'
        '6 4.000000 machine_state m3 w\n'
        '\n# End of events, containers destruction\n'
        + "".join(f"3 4.000000 m{m} machine_ct\n" for m in range(4)) + "3 4.000000 root root_ct\n")


def test_without_energy_rows_or_start_order():
    """Without energy rows the events are merged by time; without start_order an instant's
    starts come by job index (a limit: the result does not keep the order they were asked in)."""
    names = ["a", "b", "c", "d"]
    with_rows = paje.paje_trace_text(_hand_run(), names)
    assert paje.paje_trace_text(_hand_run(record_energy_rows=False), names) == with_rows
    starts = [line for line in with_rows.splitlines() if line.startswith("5 j")]
    assert [s.split()[1] for s in starts] == ["jw0!0", "jw0!1", "jw0!2"]
    with pytest.raises(ConfigError):
        paje.paje_trace_text(_hand_run(), names[:3])
    with pytest.raises(ConfigError):
        paje.paje_trace_text(_hand_run(), names, start_order=[0, 1])


@pytest.mark.batsim
@needs_batsim
def test_same_trace_as_real_batsim(tmp_path, monkeypatch):
    scheduler = FcfsScheduler()
    endpoint = scheduler.endpoint.replace("127.0.0.1", "localhost")
    done = subprocess.run(["batsim", *_args("A8-dvfs-script", tmp_path / "batsim", endpoint)],
                          check=False, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    scheduler.join()
    theirs = _trace(tmp_path / "batsim").read_bytes()
    palette = _palette_of(theirs.decode())  # before the patch: it reads the real palette
    monkeypatch.setattr(paje, "batsim_palette", lambda: palette)
    _run_ours("A8-dvfs-script", tmp_path / "ours")
    assert _trace(tmp_path / "ours").read_bytes() == theirs
