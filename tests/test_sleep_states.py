"""Batsim's sleep p-states in the engine (issue 21 item 1): switch-off / switch-on through the
virtual p-states, RESOURCE_STATE_CHANGED when a request's machines have all switched, no job
on a sleeping machine, the energy and machine-state outputs, the shutdown policy, and the
agreement with real Batsim through crossval.

The platform (tests/data/platforms/sleep_4hosts.xml): four hosts, p-states 0 and 1 compute
(100 and 50 Mflop/s; 100:200 and 90:150 W), 2 sleeps (10 W), 3 switches off (0.1 flop/s: 1 flop
in 10 s, 50 W), 4 switches on (0.2 flop/s: 5 s, 150 W). Every number below is computed by hand
from these."""

from __future__ import annotations

import csv
import json
import random
import shutil
from pathlib import Path

import numpy as np
import pytest

from hdeeprm.cli.main import main
from hdeeprm.common.errors import PlatformError, SimulationError
from hdeeprm.inputs.platform import load_platform
from hdeeprm.inputs.platform.sleep import COMPUTATION, SLEEP, VIRTUAL, sleep_states
from hdeeprm.inputs.workload import load_workload
from hdeeprm.simulation.engine import Engine
from hdeeprm.simulation.outputs import summarize, write_outputs
from hdeeprm.simulation.policies import PolicyConfig, run_policy

PLATFORM = Path(__file__).parent / "data" / "platforms" / "sleep_4hosts.xml"
CLOCKS = ("simgrid", "exact")


def _workload(tmp_path: Path, jobs: list[dict], profiles: dict, name: str = "w.json"):
    path = tmp_path / name
    path.write_text(json.dumps({"nb_res": 4, "jobs": jobs, "profiles": profiles}))
    return path


def _rows(path: Path) -> list[list[str]]:
    with open(path) as f:
        return list(csv.reader(f))[1:]


def _schedule(path: Path) -> dict[str, str]:
    with open(path) as f:
        return dict(zip(*list(csv.reader(f))))


@pytest.fixture(scope="module")
def platform():
    return load_platform(str(PLATFORM))


def test_sleep_pstates_are_read_from_the_host_property(platform):
    states = sleep_states(platform)
    assert states is not None
    assert states.kind[0].tolist() == [COMPUTATION, COMPUTATION, SLEEP, VIRTUAL, VIRTUAL]
    assert states.switch_off[:, 2].tolist() == [3] * 4 and states.switch_on[:, 2].tolist() == [4] * 4
    assert states.property_value(0) == "2:3:4"
    assert sleep_states(load_platform(str(PLATFORM.parent / "small_platform.xml"))) is None


@pytest.mark.parametrize("value, message", [("2:3", "three colon-separated"), ("2:3:9", "does not exist"),
                                            ("2:2:3", "two roles"), ("0:3:4", "computation p-state")])
def test_malformed_sleep_pstates_are_refused(tmp_path, value, message):
    path = tmp_path / "p.xml"
    path.write_text(PLATFORM.read_text().replace('value="2:3:4"', f'value="{value}"', 1))
    with pytest.raises(PlatformError, match=message):
        load_platform(str(path))


@pytest.mark.parametrize("clock", CLOCKS)
def test_switch_off_sleep_and_wake_by_hand(tmp_path, platform, clock):
    """h1 sent to sleep at 0 (switch-off 0-10), woken at 20 (switch-on 20-25); job b, submitted
    at 2 for h1, can start only at 25 and computes 1e9 flops at 100 Mflop/s until 35; job a
    (delay 30) runs on h0. Each RESOURCE_STATE_CHANGED comes when its switch ends."""
    path = _workload(tmp_path, [{"id": "a", "subtime": 0, "res": 1, "profile": "d30"},
                                {"id": "b", "subtime": 2, "res": 1, "profile": "c1e9"}],
                     {"d30": {"type": "delay", "delay": 30},
                      "c1e9": {"type": "parallel_homogeneous", "cpu": 1e9, "com": 0}})
    engine = Engine(platform, load_workload(str(path)), clock=clock)
    seen = []
    while (point := engine.next_decision_point()) is not None:
        seen.append((point.time, [(h.tolist(), p) for h, p in point.pstate_changes], point.requested_calls))
        engine.check_invariants()
        if point.time == 0:
            engine.set_pstate([1], 2)
            engine.execute(0, [0])
            with pytest.raises(SimulationError, match="switching on or off"):
                engine.set_pstate([1], 0)  # still switching off
        elif point.time == 2:
            with pytest.raises(SimulationError, match="asleep or switching"):
                engine.execute(1, [1])
        elif point.time == 10:
            with pytest.raises(SimulationError, match="asleep or switching"):
                engine.execute(1, [1])
            engine.call_me_later(20)
        elif point.time == 20:
            engine.set_pstate([1], 0)
        elif point.time == 25:
            engine.execute(1, [1])
    assert (0.0, [], 0) not in seen[1:]
    assert (10.0, [([1], 2)], 0) in seen and (25.0, [([1], 0)], 0) in seen and (20.0, [], 1) in seen
    result = engine.result()
    assert result.start.tolist() == [0.0, 25.0] and result.finish.tolist() == [30.0, 35.0]
    # h0, h2, h3: 35 s at 100 W (delay job or idle); h1: 10 s at 50 W, 10 s at 10, 5 s at 150 and
    # 10 s at 200 (b's 1e9 flops at full load).
    assert result.consumed_joules == pytest.approx(3 * 3500 + 500 + 100 + 750 + 2000)
    assert result.job_energy.tolist() == pytest.approx([3000, 2000])
    assert [(t, m.tolist(), p) for t, m, p in result.pstate_rows] == [
        (0.0, [0, 1, 2, 3], 0), (0.0, [1], -2), (10.0, [1], 2), (20.0, [1], -1), (25.0, [1], 0)]
    summary = summarize(result)
    assert {k: summary[f"time_{k}"] for k in ("computing", "idle", "sleeping", "switching_off", "switching_on")} \
        == pytest.approx({"computing": 40, "idle": 0, "sleeping": 10, "switching_off": 10, "switching_on": 5})
    assert summary["nb_machine_switches"] == 2 and summary["nb_grouped_switches"] == 2


@pytest.mark.parametrize("clock", CLOCKS)
def test_a_request_is_acknowledged_once_all_its_machines_have_switched(tmp_path, platform, clock):
    """h0 (awake) and h1 (asleep) both sent to p-state 0: h0 switches at once, h1 wakes in 5 s;
    one RESOURCE_STATE_CHANGED for 0-1, at the end of h1's switch-on."""
    path = _workload(tmp_path, [{"id": "a", "subtime": 0, "res": 1, "profile": "d1"},
                                {"id": "b", "subtime": 100, "res": 1, "profile": "d1"}],
                     {"d1": {"type": "delay", "delay": 1}})
    engine = Engine(platform, load_workload(str(path)), clock=clock)
    changes = []
    while (point := engine.next_decision_point()) is not None:
        changes += [(point.time, h.tolist(), p) for h, p in point.pstate_changes]
        if point.time == 0:
            engine.set_pstate([1], 2)
            engine.execute(0, [0])
        elif point.time == 10:
            engine.set_pstate([0, 1], 0)
        elif point.submitted and point.time == 100:
            engine.execute(1, [1])
    assert changes == [(10.0, [1], 2), (15.0, [0, 1], 0)]
    rows = [(t, m.tolist(), p) for t, m, p in engine.result().pstate_rows]
    assert rows[-2:] == [(10.0, [0, 1], -1), (15.0, [0, 1], 0)]


def test_refusals(tmp_path, platform):
    path = _workload(tmp_path, [{"id": "a", "subtime": 0, "res": 1, "profile": "d9"}],
                     {"d9": {"type": "delay", "delay": 9}})
    engine = Engine(platform, load_workload(str(path)))
    engine.next_decision_point()
    engine.execute(0, [0])
    with pytest.raises(SimulationError, match="run a job"):
        engine.set_pstate([0], 2)
    with pytest.raises(SimulationError, match="virtual switch p-state"):
        engine.set_pstate([1], 3)
    engine.set_pstate([1], 2)
    while not (point := engine.next_decision_point()).pstate_changes:
        pass
    assert point.time == 10  # h1 asleep
    with pytest.raises(SimulationError, match="already asleep"):
        engine.set_pstate([1], 2)


W1 = [{"id": "a", "subtime": 0, "res": 1, "profile": "d10", "walltime": 100},
      {"id": "b", "subtime": 50, "res": 2, "profile": "d10", "walltime": 100}]


@pytest.mark.parametrize("clock", CLOCKS)
def test_shutdown_policy_by_hand(tmp_path, platform, clock):
    """Shutdown after 20 s idle: h1-h3 (idle from 0) switch off at 20 (asleep at 30), h0 (idle
    from 10, when a ends) at 30 (asleep at 40). b (2 machines) comes at 50: h0 and h1 are woken
    (50-55) and b runs 55-65; they are switched off again at 85 (asleep at 95)."""
    path = _workload(tmp_path, W1, {"d10": {"type": "delay", "delay": 10}})
    result = run_policy(Engine(platform, load_workload(str(path)), clock=clock), PolicyConfig(shutdown=20.0))
    assert result.start.tolist() == [0.0, 55.0] and result.finish.tolist() == [10.0, 65.0]
    assert [a.tolist() for a in result.alloc] == [[0], [0, 1]]
    # Energy up to the last completion (65): h0 1000+2000+500+100+750+1000, h1 2000+500+200+750+1000,
    # h2 and h3 2000+500+350 each.
    assert result.consumed_joules == pytest.approx(15500)
    assert result.job_energy.tolist() == pytest.approx([1000, 2000])
    assert result.end_time == 95.0
    out = tmp_path / "out"
    write_outputs(result, str(out))
    schedule = _schedule(out / "out_schedule.csv")
    assert {k: float(schedule[k]) for k in ("time_computing", "time_idle", "time_sleeping", "time_switching_off",
                                            "time_switching_on", "nb_machine_switches", "nb_grouped_switches")} \
        == {"time_computing": 30, "time_idle": 120, "time_sleeping": 30, "time_switching_off": 60,
            "time_switching_on": 10, "nb_machine_switches": 8, "nb_grouped_switches": 4}
    assert _rows(out / "out_pstate_changes.csv") == [
        ["0", "0-3", "0"], ["20", "1-3", "-2"], ["30", "1-3", "2"], ["30", "0", "-2"], ["40", "0", "2"],
        ["50", "0-1", "-1"], ["55", "0-1", "0"], ["85", "0-1", "-2"], ["95", "0-1", "2"]]
    states = _rows(out / "out_machine_states.csv")
    assert states[2:6] == [["20", "0", "0", "3", "1", "0"], ["30", "3", "0", "0", "1", "0"],
                           ["30", "3", "0", "1", "0", "0"], ["40", "4", "0", "0", "0", "0"]]
    assert states[6] == ["50", "2", "2", "0", "0", "0"]
    energy = _rows(out / "out_consumed_energy.csv")
    assert [r[:3] for r in energy[2:5]] == [["20.000000", "8000.000000", "p"], ["30.000000", "10500.000000", "p"],
                                            ["30.000000", "10500.000000", "p"]]
    assert energy[3][3] == "130.000000"  # wattmin once h1-h3 sleep: 3 x 10 W + 100 W


def test_the_fast_path_runs_sleep_platforms_with_and_without_shutdown(tmp_path, platform):
    path = _workload(tmp_path, W1, {"d10": {"type": "delay", "delay": 10}})
    workload = load_workload(str(path))
    for fast in (None, True, False):
        plain = run_policy(Engine(platform, workload), PolicyConfig(), fast=fast)
        assert isinstance(plain.alloc, list) == (fast is False)
        assert plain.machine_state_rows is None and plain.consumed_joules == pytest.approx(60 * 400)
        slept = run_policy(Engine(platform, workload), PolicyConfig(shutdown=20.0), fast=fast)
        assert isinstance(slept.alloc, list) == (fast is False)
        assert slept.machine_state_rows is not None and slept.nb_machine_switches > 0


def test_simulate_shutdown_option(tmp_path, capsys):
    path = _workload(tmp_path, W1, {"d10": {"type": "delay", "delay": 10}})
    assert main(["simulate", "--platform", str(PLATFORM), "--workload", str(path), "--shutdown", "20",
                 "--out", str(tmp_path / "out")]) == 0
    assert "shutdown after 20 s idle" in capsys.readouterr().out
    assert _rows(tmp_path / "out" / "out_pstate_changes.csv")[1] == ["20", "1-3", "-2"]
    assert main(["simulate", "--platform", str(PLATFORM.parent / "small_platform.xml"), "--workload",
                 str(path), "--shutdown", "20"]) == 2
    assert "declares no sleep p-state" in capsys.readouterr().err


@pytest.mark.parametrize("clock", CLOCKS)
def test_simulate_shutdown_writes_the_same_files_on_both_paths(tmp_path, capsys, monkeypatch, clock):
    """`simulate --shutdown` on the compiled path (once built) and on the reference engine (a
    machine where it is not built yet): the same output files, byte for byte."""
    import hdeeprm.simulation.fastsim as fastsim

    workload = _random_workload(tmp_path, 3)
    command = ["simulate", "--platform", str(PLATFORM), "--workload", str(workload), "--policy", "shortest:low_power",
               "--backfill", "easy", "--shutdown", "5", "--clock", clock]
    assert main(command + ["--out", str(tmp_path / "fast")]) == 0
    monkeypatch.setattr(fastsim, "compiled_on_disk", lambda parts=(): False)  # as on a fresh machine
    capsys.readouterr()
    assert main(command + ["--out", str(tmp_path / "reference")]) == 0
    assert "the compiled fast path is not built on this machine yet" in capsys.readouterr().err
    names = sorted(p.name for p in (tmp_path / "fast").glob("out_*"))
    assert "out_machine_states.csv" in names and names == sorted(p.name for p in (tmp_path / "reference").glob("out_*"))
    for name in names + ["overutilization.json"]:
        assert (tmp_path / "fast" / name).read_bytes() == (tmp_path / "reference" / name).read_bytes(), name
    assert any(row[2] == "-2" for row in _rows(tmp_path / "fast" / "out_pstate_changes.csv"))


def _random_workload(tmp_path: Path, seed: int) -> Path:
    rng = random.Random(seed)
    jobs, profiles, t = [], {}, 0.0
    for i in range(40):
        t += rng.choice([0, 0, 1.1, 3, 7.5, 12, 25, 40, 60])
        if rng.random() < 0.5:
            d = rng.choice([5, 10, 17.3, 30, 45])
            profiles[f"p{i}"] = {"type": "delay", "delay": d}
        else:
            d = rng.choice([5e8, 1e9, 2.3e9, 4e9]) / 1e8
            profiles[f"p{i}"] = {"type": "parallel_homogeneous", "cpu": d * 1e8, "com": 0}
        jobs.append({"id": f"j{i}", "subtime": t, "res": rng.choice([1, 1, 2, 3, 4]), "profile": f"p{i}",
                     "walltime": d * rng.choice([0.8, 1.5, 2])})
    return _workload(tmp_path, jobs, profiles, f"r{seed}.json")


@pytest.mark.batsim
@pytest.mark.skipif(shutil.which("batsim") is None, reason="batsim is not on PATH")
@pytest.mark.parametrize("policy, shutdown", [("first:first_fit", "20"), ("first:first_fit", "0"),
                                              ("shortest:high_gflops", "3")])
def test_shutdown_crossval_against_real_batsim(tmp_path, capsys, policy, shutdown):
    """The shutdown policy on real Batsim and on the engine: same jobs, same energy, and the same
    p-state, machine-state and energy files (Batsim's own outputs)."""
    workload = _random_workload(tmp_path, 7)
    out = tmp_path / "cv"
    assert main(["crossval", "--platform", str(PLATFORM), "--workload", str(workload), "--policy", policy,
                 "--shutdown", shutdown, "--out", str(out), "--no-explain"]) == 0
    assert "AGREE" in capsys.readouterr().out
    for name in ("out_pstate_changes.csv", "out_machine_states.csv"):
        assert (out / "embedded" / name).read_text() == (out / "batsim" / name).read_text(), name
    batsim = _rows(out / "batsim" / "out_pstate_changes.csv")
    assert any(r[2] == "-2" for r in batsim) and any(r[2] == "2" for r in batsim)
    embedded, real = (_schedule(out / side / "out_schedule.csv") for side in ("embedded", "batsim"))
    for key in ("consumed_joules", "time_sleeping", "time_switching_on", "time_switching_off", "time_idle",
                "nb_machine_switches", "nb_grouped_switches"):
        assert float(embedded[key]) == pytest.approx(float(real[key]), rel=1e-9, abs=1e-6), key
    assert np.isfinite(float(real["consumed_joules"]))
