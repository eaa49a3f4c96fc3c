"""out_machine_states.csv: Batsim 4.2.1's machine-state time series (MachineStateTracer in
src/export.cpp, one row per job start, job end and p-state request).

tests/data/machine-states/<scenario>.csv are the files real Batsim 4.2.1 wrote on the recorded
scenarios of tests/data/batsim-reference (the same runs: identical out_jobs.csv), with -E; on
A1, A3 and A4 Batsim wrote the same bytes without -E. A8 holds p-state changes, A1 and A3
walltime kills and A3 rejections.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from hdeeprm.inputs.platform import load_platform
from hdeeprm.inputs.workload import read_batsim_workload
from hdeeprm.simulation.engine import Engine
from hdeeprm.simulation.intervals import parse_intervals
from hdeeprm.simulation.outputs import MACHINE_STATE_COLUMNS, machine_state_rows, write_outputs
from hdeeprm.simulation.policies import PolicyConfig, QueueScheduler, run_policy
from hdeeprm.simulation.replay import find_scenario, replay

DATA = Path(__file__).parent / "data"
REFERENCE = DATA / "batsim-reference"
EXPECTED = DATA / "machine-states"
SCENARIOS = sorted(p.stem for p in EXPECTED.glob("*.csv"))


def _inputs(name: str):
    scenario = find_scenario(str(REFERENCE / name))
    return load_platform(scenario.platform, hierarchy=scenario.hierarchy), read_batsim_workload(scenario.workload)


def _simulate(name: str, fast: bool, record_energy_rows: bool = True):
    """The scheduler that made the recording (FCFS, EASY on A4, A8's p-state script)."""
    platform, workload = _inputs(name)
    engine = Engine(platform, workload, record_energy_rows=record_energy_rows)
    words = (REFERENCE / name / "policy.txt").read_text().split()
    config = PolicyConfig.parse("first:first_fit", "easy" if words[0] == "easy" else None)
    script_path = REFERENCE / name / "script.json"
    if not script_path.exists():
        return run_policy(engine, config, fast=None if fast else False)
    script = json.loads(script_path.read_text())
    scheduler = QueueScheduler(engine, config)
    scheduler.on_begin()
    for entry in script:
        engine.call_me_later(entry["at"])
    while (point := engine.next_decision_point()) is not None:
        if point.requested_calls:
            for entry in script:
                if entry["at"] == point.time:
                    engine.set_pstate(parse_intervals(entry["resources"]), entry["pstate"])
        scheduler.on_decision_point(point)
    return engine.result()


def _written(result, tmp_path) -> str:
    paths = write_outputs(result, str(tmp_path))
    return Path(paths["machine_states"]).read_text()


def test_every_recorded_scenario_has_its_batsim_file():
    assert set(SCENARIOS) == {p.name for p in REFERENCE.iterdir() if p.is_dir()}


@pytest.mark.parametrize("name", SCENARIOS)
def test_replay_writes_batsims_file_byte_for_byte(name, tmp_path):
    assert _written(replay(str(REFERENCE / name)), tmp_path) == (EXPECTED / f"{name}.csv").read_text()


@pytest.mark.parametrize("fast", [False, True], ids=["reference", "fast"])
@pytest.mark.parametrize("name", SCENARIOS)
def test_simulate_writes_batsims_file_byte_for_byte(name, fast, tmp_path):
    if fast and (REFERENCE / name / "script.json").exists():
        pytest.skip("the p-state script drives the reference engine")
    assert _written(_simulate(name, fast), tmp_path) == (EXPECTED / f"{name}.csv").read_text()


@pytest.mark.parametrize("name", ["A1-delay-walltime", "A2-ph-speed-classes", "A3-ties-reject",
                                  "A8-dvfs-script"])
def test_without_energy_rows_the_order_rule_gives_the_same_file(name, tmp_path):
    result = _simulate(name, fast=False, record_energy_rows=False)
    assert not len(result.energy_rows)
    assert _written(result, tmp_path) == (EXPECTED / f"{name}.csv").read_text()


def test_hand_computed_rows_and_g_format(tmp_path):
    """Three delay jobs on 4 machines: a (2 machines) 0-10, b (1) 0-1234567.5, c (3) 10-20,
    and d too big for the platform (rejected: no row)."""
    from hdeeprm.inputs.platform import bundled_platform

    platform = load_platform(bundled_platform("quickstart"))
    m = platform.nb_machines
    doc = {"nb_res": m, "jobs": [
        {"id": "a", "subtime": 0, "res": 2, "profile": "d10"},
        {"id": "b", "subtime": 0, "res": 1, "profile": "dlong"},
        {"id": "c", "subtime": 0, "res": 3, "profile": "d10"},
        {"id": "d", "subtime": 0, "res": m + 1, "profile": "d10"},
    ], "profiles": {"d10": {"type": "delay", "delay": 10}, "dlong": {"type": "delay", "delay": 1234567.5}}}
    path = tmp_path / "w.json"
    path.write_text(json.dumps(doc))
    workload = read_batsim_workload(str(path))
    engine = Engine(platform, workload)
    ids = list(engine.jobs.job_ids)
    a, b, c, d = (ids.index(x) for x in "abcd")
    while (point := engine.next_decision_point()) is not None:
        if d in point.submitted:
            engine.reject(d)
            engine.execute(a, [0, 1])
            engine.execute(b, [2])
        if a in point.completed:
            engine.execute(c, [0, 1, 3])
    times, computing = machine_state_rows(engine.result())
    assert times.tolist() == [0, 0, 10, 10, 20, 1234567.5]
    assert computing.tolist() == [2, 3, 1, 4, 1, 0]
    lines = _written(engine.result(), tmp_path / "out").splitlines()
    assert lines[1:] == [f"0,0,0,0,{m - 2},2", f"0,0,0,0,{m - 3},3", f"10,0,0,0,{m - 1},1",
                         f"10,0,0,0,{m - 4},4", f"20,0,0,0,{m - 1},1", f"1.23457e+06,0,0,0,{m},0"]


def test_a_run_with_no_job_writes_the_header_only(tmp_path):
    from hdeeprm.inputs.platform import bundled_platform

    platform = load_platform(bundled_platform("quickstart"))
    path = tmp_path / "w.json"
    path.write_text(json.dumps({"nb_res": 1, "jobs": [{"id": "x", "subtime": 0, "res": platform.nb_machines + 1,
                                                       "profile": "p"}],
                                "profiles": {"p": {"type": "delay", "delay": 1}}}))
    result = run_policy(Engine(platform, read_batsim_workload(str(path))), PolicyConfig.parse("first:first_fit"),
                        fast=False)
    assert _written(result, tmp_path) == ",".join(MACHINE_STATE_COLUMNS) + "\n"


@pytest.mark.batsim
@pytest.mark.skipif(shutil.which("batsim") is None, reason="batsim is not on PATH")
def test_live_batsim_writes_what_we_write(tmp_path):
    """Real Batsim, run now, on A3 (same-instant kills, rejections)."""
    pytest.importorskip("zmq")
    from hdeeprm.analysis.crossval import crossvalidate

    report = crossvalidate(str(REFERENCE / "A3-ties-reject" / "platform.xml"), None,
                           str(REFERENCE / "A3-ties-reject" / "workload.json"),
                           PolicyConfig.parse("first:first_fit"), tmp_path / "out")
    assert report.agree, report.summary()
    ours = (tmp_path / "out" / "embedded" / "out_machine_states.csv").read_bytes()
    assert ours == (tmp_path / "out" / "batsim" / "out_machine_states.csv").read_bytes()


def test_output_reference_names_the_new_columns():
    import re

    from hdeeprm.simulation.outputs import USER_COLUMNS

    text = (Path(__file__).parents[1] / "docs" / "reference" / "outputs.md").read_text(encoding="utf-8")
    named = set(re.findall(r"`([a-z_]+)`", text))
    assert not (set(MACHINE_STATE_COLUMNS) | set(USER_COLUMNS)) - named
    assert "### out_machine_states.csv" in text and "`out_users.csv`" in text


@pytest.mark.parametrize("pair, backfill", [("first:first_fit", None), ("shortest:high_gflops", "easy")])
@pytest.mark.parametrize("record_energy_rows", [True, False], ids=["energy-rows", "no-energy-rows"])
def test_reference_and_fast_path_write_the_same_file(pair, backfill, record_energy_rows, tmp_path):
    from hdeeprm.inputs.platform import bundled_platform
    from hdeeprm.inputs.workload import load_workload

    platform = load_platform(bundled_platform("gaia"))
    workload = load_workload(DATA / "traces" / "gaia-2014-head.swf.gz", nb_jobs=800, max_res=platform.nb_machines,
                             reference_speed_gflops=platform.hierarchy.reference_speed_gflops,
                             rng=np.random.default_rng(0)).compile()
    texts = []
    for fast in (False, True):
        engine = Engine(platform, workload, record_energy_rows=record_energy_rows)
        result = run_policy(engine, PolicyConfig.parse(pair, backfill), rng=np.random.default_rng(3), fast=fast)
        texts.append(_written(result, tmp_path / str(fast)))
    assert texts[0] == texts[1]
    rows = texts[0].splitlines()[1:]
    assert len(rows) >= 2 * 700 and rows[-1].endswith(f",0,0,0,{platform.nb_machines},0")


@pytest.mark.parametrize("fast", [False, True])
def test_rows_of_one_instant_follow_the_order_jobs_started(fast):
    """Batsim writes a row per EXECUTE_JOB in the order of its scheduler's reply: with
    smallest-first, three jobs submitted together start smallest first, not in index order."""
    from hdeeprm.inputs.workload.model import Job, Profile, Workload

    platform, _ = _inputs("A4-easy-32")  # 32 machines
    jobs = tuple(Job(id=str(i), subtime=0.0, res=res, profile="d", walltime=100.0)
                 for i, res in enumerate((4, 1, 2)))
    workload = Workload(jobs=jobs, profiles={"d": Profile(name="d", type="delay", delay=10.0)})
    result = run_policy(Engine(platform, workload), PolicyConfig.parse("smallest:first_fit", None), fast=fast)
    assert result.start_order == [1, 2, 0]
    times, computing = machine_state_rows(result)
    assert computing[:3].tolist() == [1, 3, 7]
