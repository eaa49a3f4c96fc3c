"""The engine against hand-computed schedules: durations, walltime equality cases, ties,
p-state changes, energy, kills, errors and determinism."""

from __future__ import annotations

import numpy as np
import pytest

from hdeeprm.common.errors import SimulationError
from hdeeprm.inputs.platform.model import Platform
from hdeeprm.inputs.workload.model import Job, Profile, Workload
from hdeeprm.simulation.engine import KILLED, SUCCESS, WALLTIME_REACHED, Engine
from hdeeprm.simulation.outputs import summarize


def flat_platform(speeds, idle=100.0, full=200.0, pstates=None):
    """Single-core hosts; ``pstates`` optionally gives per-p-state speed factors and watts."""
    n = len(speeds)
    if pstates is None:
        sp = np.array(speeds, float)[:, None]
        wi = np.full((n, 1), idle)
        wf = np.full((n, 1), full)
    else:
        sp = np.array([[s * f for f, _, _ in pstates] for s in speeds])
        wi = np.array([[i for _, i, _ in pstates]] * n, float)
        wf = np.array([[f for _, _, f in pstates]] * n, float)
    return Platform(tuple(f"h{i:03d}" for i in range(n)), sp, wi, wf,
                    np.full(n, sp.shape[1]), np.zeros(n, int))


def workload(jobs, profiles):
    profs = {}
    for name, spec in profiles.items():
        if spec[0] == "delay":
            profs[name] = Profile(name, "delay", delay=spec[1])
        else:
            profs[name] = Profile(name, "parallel_homogeneous", cpu=spec[1])
    return Workload(tuple(Job(str(i), sub, res, prof, wall) for i, (sub, res, prof, wall) in enumerate(jobs)), profs)


def run_fixed(engine, plan):
    """Start jobs as soon as they are submitted on fixed machines: plan = {job: hosts}."""
    points = []
    while (point := engine.next_decision_point()) is not None:
        points.append(point)
        for job in point.submitted:
            engine.execute(job, plan[engine.jobs.job_ids[job]])
        engine.check_invariants()
    return points, engine.result()


def test_walltime_equality_cases():
    # delay == walltime is killed; a parallel task lasting exactly its walltime completes.
    plat = flat_platform([1e9] * 5)
    wl = workload(
        [(0, 1, "d10", 10), (0, 1, "d10", 10.000001), (0, 1, "ph", 10), (0, 1, "ph", 9.999999), (0, 1, "d10", None)],
        {"d10": ("delay", 10), "ph": ("ph", 1e10)},
    )
    _, res = run_fixed(Engine(plat, wl), {"0": [0], "1": [1], "2": [2], "3": [3], "4": [4]})
    assert res.final_state.tolist() == [WALLTIME_REACHED, SUCCESS, SUCCESS, WALLTIME_REACHED, SUCCESS]
    assert res.finish.tolist() == [10.0, 10.0, 10.0, 9.999999, 10.0]


def test_parallel_job_runs_at_slowest_host_and_bills_partial_load():
    # 1e9 flops on a 100 Mf and a 50 Mf host: 20 s. The fast host is half loaded.
    plat = flat_platform([1e8, 5e7], idle=10.0, full=30.0)
    wl = workload([(0, 2, "ph", None)], {"ph": ("ph", 1e9)})
    _, res = run_fixed(Engine(plat, wl), {"0": [0, 1]})
    assert res.finish[0] == pytest.approx(20.0)
    # fast host: 10 + 0.5 * 20 = 20 W; slow host: 30 W; over 20 s.
    assert res.job_energy[0] == pytest.approx((20 + 30) * 20)
    assert res.consumed_joules == pytest.approx(1000.0)


def test_pstate_change_mid_job_keeps_work_done():
    # 1e9 flops at 100 Mf, switched to 50 Mf at t=4: 4 s + 6e8 / 5e7 = 16 s.
    wl = workload([(0, 1, "ph", None), (0, 1, "d", None)], {"ph": ("ph", 1e9), "d": ("delay", 10)})
    plat = flat_platform([1e8, 1e8], pstates=[(1.0, 100, 200), (0.5, 90, 150)])
    engine = Engine(plat, wl)
    point = engine.next_decision_point()
    engine.execute(0, [0])
    engine.execute(1, [1])
    engine.call_me_later(4.0)
    # Batsim says "no more jobs to submit" in a message of its own when the last submission
    # was the last event of its step.
    point = engine.next_decision_point()
    assert point.time == 0.0 and point.no_more_submissions and not point.submitted
    point = engine.next_decision_point()
    assert point.time == 4.0 and point.requested_calls == 1
    engine.set_pstate([0, 1], 1)  # the delay job on host 1 is not slowed down
    engine.run_to_end()
    res = engine.result()
    # SimGrid's steps (0.4 of the work done by t=4, then 0.6 at the new rate) land 2e-15 s short.
    assert res.finish.tolist() == pytest.approx([16.0, 10.0], abs=1e-12)
    # host 0: 4 s at 200 W then 12 s at 150 W; host 1 (delay job draws idle power): 4 s at 100 W, 6 s at 90 W.
    assert res.job_energy.tolist() == pytest.approx([4 * 200 + 12 * 150, 4 * 100 + 6 * 90])
    assert res.nb_machine_switches == 2 and res.nb_grouped_switches == 1


def test_same_instant_events_form_one_decision_point_and_freed_machines_are_reusable():
    plat = flat_platform([1e9])
    wl = workload([(0, 1, "d", None), (10, 1, "d", None)], {"d": ("delay", 10)})
    engine = Engine(plat, wl)
    first = engine.next_decision_point()
    assert first.time == 0 and first.submitted == [0]
    engine.execute(0, engine.lowest_free_machines(1))
    second = engine.next_decision_point()
    # job 0 ends at 10 and job 1 arrives at 10: one decision point, with both.
    assert second.time == 10 and second.submitted == [1] and second.completed == [0]
    assert second.no_more_submissions
    engine.execute(1, engine.lowest_free_machines(1))  # the machine freed at 10 is reused at 10
    engine.run_to_end()
    res = engine.result()
    assert res.start.tolist() == [0.0, 10.0] and res.finish.tolist() == [10.0, 20.0]


def test_same_time_submissions_follow_batsim_id_string_order():
    plat = flat_platform([1e9])
    wl = workload([(5, 1, "d", None)] * 11, {"d": ("delay", 1)})
    engine = Engine(plat, wl)
    point = engine.next_decision_point()
    assert [engine.jobs.job_ids[j] for j in point.submitted][:4] == ["0", "1", "10", "2"]


def test_kill_reports_progress_and_final_state():
    plat = flat_platform([1e9])
    wl = workload([(0, 1, "ph", None)], {"ph": ("ph", 1e10)})
    engine = Engine(plat, wl)
    engine.next_decision_point()
    engine.execute(0, [0])
    engine.call_me_later(4.0)
    assert engine.next_decision_point().no_more_submissions  # alone, at t=0
    assert engine.next_decision_point().requested_calls == 1
    assert engine.kill(0) == pytest.approx(0.4)
    assert engine.kill(0) is None  # already over: ignored, as Batsim does
    engine.run_to_end()
    res = engine.result()
    assert res.final_state[0] == KILLED and res.finish[0] == 4.0


def test_zero_work_parallel_job_is_recorded_as_ten_microseconds():
    plat = flat_platform([1e9])
    wl = workload([(0, 1, "ph0", 1)], {"ph0": ("ph", 0)})
    _, res = run_fixed(Engine(plat, wl), {"0": [0]})
    assert res.final_state[0] == SUCCESS
    assert res.finish[0] == pytest.approx(1e-5)
    assert summarize(res)["makespan"] == pytest.approx(1e-5)


def test_energy_of_idle_and_busy_hosts_matches_hand_computation():
    # Two 1 Gf hosts, 100 W idle / 200 W full. Job of 1e10 flops on host 0 from 0 to 10 s.
    # Total from the first submission (t=0) to the last completion (t=10): 200*10 + 100*10.
    plat = flat_platform([1e9, 1e9])
    wl = workload([(0, 1, "ph", None)], {"ph": ("ph", 1e10)})
    _, res = run_fixed(Engine(plat, wl), {"0": [0]})
    assert res.consumed_joules == pytest.approx(3000.0)
    rows = res.energy_rows
    assert [r[2] for r in rows] == ["s", "e"]
    assert rows[-1][1] == pytest.approx(3000.0) and rows[-1][4] == pytest.approx(300.0)


def test_simgrid_quirk_bills_pstate0_until_first_query():
    # Host declared in p-state 1 (50 W idle) but billed at p-state 0 (100 W idle) until the
    # first energy query after t=0 (the job submission at t=5).
    plat = Platform(("h0", "h1"), np.array([[1e9, 5e8]] * 2), np.array([[100.0, 50.0]] * 2),
                    np.array([[200.0, 150.0]] * 2), np.array([2, 2]), np.array([1, 1]))
    wl = workload([(5, 1, "d", None)], {"d": ("delay", 5)})
    for accounting, expected in (("batsim", 2 * 100 * 5), ("ideal", 2 * 50 * 5)):
        engine = Engine(plat, wl, energy_accounting=accounting)
        run_fixed(engine, {"0": [0]})
        # From 5 to 10 s: host 0 runs a delay job (idle power), host 1 is idle: 50 W each.
        assert engine.energy == pytest.approx(expected + 2 * 50 * 5)


def test_later_submissions_do_not_update_the_energy_billing():
    """Batsim queries the energy at its first submission, job starts and ends and p-state
    changes only (a query at t=0 updates nothing). Jobs submitted at 0 and 100, both rejected,
    and one started at 1000: both hosts are billed at p-state 0 (100 W) until 1000, not 100."""
    plat = Platform(("h0", "h1"), np.array([[1e9, 5e8]] * 2), np.array([[100.0, 50.0]] * 2),
                    np.array([[200.0, 150.0]] * 2), np.array([2, 2]), np.array([1, 1]))
    wl = workload([(0, 3, "d", None), (100, 3, "d", None), (1000, 1, "d", None)], {"d": ("delay", 10)})
    for accounting, watts_until_1000 in (("batsim", 100.0), ("ideal", 50.0)):
        engine = Engine(plat, wl, energy_accounting=accounting)
        while (point := engine.next_decision_point()) is not None:
            for job in point.submitted:
                if job < 2:
                    engine.reject(job)
                else:
                    engine.execute(job, [0])
        result = engine.result()
        assert result.energy_accounting == accounting
        # From 1000 to 1010 both hosts draw their p-state 1 idle power, 50 W.
        assert result.consumed_joules == pytest.approx(2 * watts_until_1000 * 1000 + 2 * 50 * 10)


def test_unknown_energy_accounting_is_refused():
    from hdeeprm.common.errors import ConfigError

    with pytest.raises(ConfigError, match="energy_accounting 'simgrid': expected one of batsim, ideal"):
        Engine(flat_platform([1e9]), workload([(0, 1, "d", None)], {"d": ("delay", 1)}),
               energy_accounting="simgrid")


def test_bad_decisions_raise_clear_errors():
    plat = flat_platform([1e9, 1e9])
    wl = workload([(0, 1, "d", None), (0, 1, "d", None), (100, 1, "d", None)], {"d": ("delay", 10)})
    engine = Engine(plat, wl)
    engine.next_decision_point()
    engine.execute(0, [0])
    with pytest.raises(SimulationError, match="already in use"):
        engine.execute(1, [0])
    with pytest.raises(SimulationError, match="requests 1 machines but was given 2"):
        engine.execute(1, [0, 1])
    with pytest.raises(SimulationError, match="not submitted yet"):
        engine.execute(2, [1])
    with pytest.raises(SimulationError, match="p-state 3 does not exist"):
        engine.set_pstate([1], 3)


def test_platform_and_workload_arrays_stay_read_only_through_pickling():
    import pickle

    plat = flat_platform([1e9, 2e9])
    arrays = workload([(0, 1, "d", None)], {"d": ("delay", 1)}).compile()
    for obj, name in ((plat, "speeds"), (arrays, "subtime")):
        copy = pickle.loads(pickle.dumps(obj))
        assert np.array_equal(getattr(copy, name), getattr(obj, name))
        with pytest.raises(ValueError):
            getattr(copy, name)[0] = 0


def test_schedulers_are_told_the_time_with_batsims_six_decimals():
    # A delay of 0.2 s started at 0.1 s ends at 0.1 + 0.2 = 0.30000000000000004 on SimGrid's
    # clock; Batsim tells the scheduler 0.300000.
    plat = flat_platform([1e9])
    wl = workload([(0, 1, "a", None), (0, 1, "b", None)], {"a": ("delay", 0.1), "b": ("delay", 0.2)})
    engine = Engine(plat, wl)
    engine.next_decision_point()
    engine.execute(0, [0])
    assert engine.next_decision_point().no_more_submissions
    assert engine.next_decision_point().completed == [0]
    engine.execute(1, [0])
    point = engine.next_decision_point()
    assert point.completed == [1] and point.time == 0.1 + 0.2
    assert engine.scheduler_time == 0.3 != engine.now


def test_clock_schedules_at_absolute_times_in_scheduling_order():
    from hdeeprm.simulation.engine import _Clock

    clock = _Clock()
    seen = []
    clock.schedule_at(2**-53, seen.append, "first")
    clock.step()
    # No delay d gives now + d == t here (the sums round to 1.0 or past t): the event must land on t itself.
    t = 1 + 2**-52
    assert clock.now + (t - clock.now) != t
    for name in ("a", "b", "c"):
        clock.schedule_at(t, lambda event, name=name: seen.append(name), None)
    clock.schedule_at(0.5, lambda event: seen.append("earlier"), None)
    assert clock.peek() == 0.5
    while clock.peek() <= t:
        clock.step()
    assert seen[1:] == ["earlier", "a", "b", "c"] and clock.now == t
    clock.set_now(3.0)
    assert clock.now == 3.0 and clock.nb_scheduled() == 0
