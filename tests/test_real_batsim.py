"""The embedded engine against the real Batsim 4.2.1 binary (marked ``batsim``; skipped where
no ``batsim`` is on PATH, so CI passes anywhere).

Each case is one that an earlier engine got wrong against the live simulator: energy billed
as SimGrid's plugin does it, and the event grouping that SimGrid's floating-point clock makes
(submissions of one second split over two messages, completions an ulp apart merged, same-time
completions split). ``crossval`` must say AGREE on all of them, job by job and in energy.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("zmq")

from hdeeprm.analysis.crossval import crossvalidate
from hdeeprm.cli.main import main
from hdeeprm.inputs.platform import bundled_platform, load_platform
from hdeeprm.inputs.workload import ConversionOptions, load_workload
from hdeeprm.simulation.engine import Engine
from hdeeprm.simulation.policies import PolicyConfig, run_policy

pytestmark = [pytest.mark.batsim,
              pytest.mark.skipif(shutil.which("batsim") is None, reason="batsim is not on PATH")]

DATA = Path(__file__).parent / "data"
KTH = DATA / "traces" / "kth-sp2-head.swf.gz"
CTC = DATA / "traces" / "ctc-sp2-head.swf.gz"
QUICKSTART = bundled_platform("quickstart")


def _crossval(tmp_path, trace, nb_jobs, policy, backfill=None, **options):
    report = crossvalidate(QUICKSTART, None, trace, PolicyConfig.parse(policy, backfill), tmp_path / "out",
                           nb_jobs=nb_jobs, backend_options=options or None)
    assert report.agree, report.summary()
    return report


def test_energy_is_billed_as_simgrid_does_until_the_first_job_starts(tmp_path):
    """Two jobs too big for the platform (rejected) at 0 and 100 s, one small job at 1000 s:
    Batsim's first energy query after t=0 is the job start at 1000 s, so every machine is
    billed at p-state 0 until then (an earlier engine stopped at the second submission and
    was 84 % off)."""
    trace = tmp_path / "q2.swf"
    trace.write_text("1 0 0 100 200 -1 -1 200 3600 -1 1 1 1 1 1 -1 -1 -1\n"
                     "2 100 0 100 200 -1 -1 200 3600 -1 1 1 1 1 1 -1 -1 -1\n"
                     "3 1000 0 100 4 -1 -1 4 3600 -1 1 1 1 1 1 -1 -1 -1\n")
    report = _crossval(tmp_path, trace, None, "first:first_fit")
    joules = {row.metric: row for row in report.aggregates}["consumed_joules"]
    assert joules.batsim == pytest.approx(1639962.412587, rel=1e-9)


def test_same_second_submissions_split_by_simgrids_clock(tmp_path):
    """Jobs of one submit second reach the scheduler in two messages when SimGrid's clock
    lands an ulp short of it (smallest:random then orders the queue otherwise)."""
    _crossval(tmp_path, KTH, 500, "smallest:random")


def test_completions_an_ulp_apart_arrive_together(tmp_path):
    _crossval(tmp_path, KTH, 500, "low_mem_bw:first_fit")


def test_same_time_completions_arrive_in_separate_messages(tmp_path):
    """An earlier engine gave 636 of these 1,000 jobs another schedule."""
    _crossval(tmp_path, CTC, 1000, "low_mem:high_mem", "easy")


def test_the_exact_clock_is_what_differed(tmp_path):
    """The exact-arithmetic clock (clock='exact') is still there, and it is not Batsim's:
    on the case above it starts some job at another time or on other machines."""
    platform = load_platform(QUICKSTART)
    workload = load_workload(str(CTC), options=ConversionOptions(
        nb_jobs=1000, reference_speed_gflops=float(platform.hierarchy.reference_speed_gflops),
        max_res=platform.nb_machines), rng=np.random.default_rng(0))
    runs = {clock: run_policy(Engine(platform, workload, clock=clock), PolicyConfig.parse("low_mem:high_mem", "easy"))
            for clock in ("simgrid", "exact")}
    assert not np.array_equal(runs["simgrid"].start, runs["exact"].start, equal_nan=True)


def test_links_network_agrees_in_energy_and_times(tmp_path):
    """With links Batsim's first energy query lands just after t=0 (its messages take a few
    1e-10 s), so SimGrid bills each machine at its own p-state from the start."""
    _crossval(tmp_path, KTH, 200, "shortest:high_gflops", network="links")


def test_crossval_command_agrees_and_exits_0(tmp_path, capsys):
    assert main(["crossval", "--platform", "quickstart", "--workload", str(KTH), "--nb-jobs", "200",
                 "--policy", "smallest:low_power", "--backfill", "easy", "--out", str(tmp_path / "out")]) == 0
    out = capsys.readouterr().out
    assert "verdict: AGREE" in out and "200 compared, 0 differ" in out
    # Batsim's side is a replayable scenario: its inputs, its outputs and the transcript.
    batsim = tmp_path / "out" / "batsim"
    for name in ("platform.xml", "workload.json", "transcript.jsonl", "out_jobs.csv", "batsim.log"):
        assert (batsim / name).is_file(), name


def test_replaying_a_real_run_reproduces_it(tmp_path):
    """`hdeeprm replay` of the folder a real Batsim run left gives Batsim's files back."""
    from hdeeprm.analysis.crossval import compare_runs
    from hdeeprm.simulation.outputs import write_outputs
    from hdeeprm.simulation.replay import replay

    _crossval(tmp_path, KTH, 300, "shortest:high_cores")
    batsim = tmp_path / "out" / "batsim"
    write_outputs(replay(str(batsim)), str(tmp_path / "replay"))
    assert compare_runs(tmp_path / "replay", batsim).agree


def test_a_batsim_crash_keeps_the_embedded_run_and_quotes_its_error(tmp_path, capsys):
    """A workload Batsim refuses (a profile it does not know) makes it exit early: one line
    with Batsim's own error, not SimGrid's INFO lines, and the embedded run kept."""
    fake = tmp_path / "batsim"
    real = shutil.which("batsim")
    # The real binary, given a platform file that is not XML: SimGrid aborts on it.
    fake.write_text(f'#!/bin/sh\nprintf "<platform" > "$2"\nexec "{real}" "$@"\n')
    fake.chmod(0o755)
    code = main(["crossval", "--platform", "quickstart", "--workload", str(KTH), "--nb-jobs", "20",
                 "--batsim", str(fake), "--timeout", "20", "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1, err
    assert "batsim exited with status" in err and "/INFO]" not in err
    assert "the embedded run is kept" in err
    assert (tmp_path / "out" / "embedded" / "out_jobs.csv").is_file()


def test_kill_by_the_scheduler_matches_batsim(tmp_path):
    """KILL_JOB: the job ends at once as COMPLETED_KILLED on both backends."""
    from hdeeprm.backends import make_simulator

    platform = load_platform(QUICKSTART)
    workload = load_workload(str(KTH), options=ConversionOptions(
        nb_jobs=20, reference_speed_gflops=float(platform.hierarchy.reference_speed_gflops),
        max_res=platform.nb_machines), rng=np.random.default_rng(0))
    results = {}
    for backend in ("embedded", "batsim"):
        simulator = make_simulator(backend, platform, workload, **({"workdir": tmp_path / "b"} if backend == "batsim" else {}))
        try:
            free = list(range(platform.nb_machines))
            running: set[int] = set()
            killed = False
            while (point := simulator.next_decision_point()) is not None:
                for job in point.submitted:
                    need = int(simulator.jobs.res[job])
                    if need <= len(free):
                        simulator.execute(job, free[:need])
                        del free[:need]
                        running.add(job)
                    else:
                        simulator.reject(job)
                for job in point.completed:
                    if job in running:
                        running.discard(job)
                        free.extend(simulator.alloc[job].tolist())
                        free.sort()
                if not killed and point.time > 0 and running:
                    victim = min(running)
                    simulator.kill(victim)
                    killed = True
            results[backend] = simulator.result()
        finally:
            simulator.close()
    a, b = results["embedded"], results["batsim"]
    assert (a.final_state == 3).sum() == 1
    np.testing.assert_array_equal(a.final_state, b.final_state)
    np.testing.assert_allclose(a.start, b.start, atol=1e-6)
    np.testing.assert_allclose(a.finish, b.finish, atol=1e-6)


@pytest.mark.parametrize("policy", ["first:high_mem_bw", "random:random"])
def test_easy_reservations_use_the_time_batsim_tells(tmp_path, policy):
    """EASY compares now + walltime with the reservation's shadow time. A scheduler on Batsim
    only knows the message's time printed with 6 decimals, not SimGrid's clock (which can be
    an ulp short of a whole second): with the clock, ties at whole seconds broke otherwise
    and some 70 of these 500 jobs got another schedule."""
    _crossval(tmp_path, CTC, 500, policy, "easy")
