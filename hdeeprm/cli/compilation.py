"""The one-time compilation of the simulation kernels: said on screen, kept out of the times a
command reports (a first `simulate` once said "simulated in 63 s (32 jobs/s)"), and where it
can be, done beside other work (``BackgroundCompilation``) or skipped (``simulate``'s small
runs take the reference engine)."""

from __future__ import annotations

import sys
import time
from typing import Callable

NOTICE = ("hdeeprm: first run on this machine: compiling the simulation kernels, once "
          "(1 to 2 minutes; cached for later runs)")


def compile_first(warm_up: Callable[[], object], always: bool = False,
                  parts: tuple[str, ...] = ("classic", "env")) -> float | None:
    """On a machine whose numba cache lacks the compiled runs of ``parts`` (see
    ``fastsim.compiled_on_disk``), say so, run ``warm_up`` (a small run that compiles them),
    and say how long it took; returns those seconds, or None when the kernels were compiled
    already. Then ``warm_up`` runs only if ``always`` (when it is cheap: loading the kernels
    from the cache, about 0.3 s, then stays out of the timed run too), and silently."""
    from hdeeprm.simulation.fastsim import compiled_on_disk

    if compiled_on_disk(parts):
        if always:
            warm_up()
        return None
    print(NOTICE + "...", file=sys.stderr, flush=True)
    t0 = time.perf_counter()
    warm_up()
    seconds = time.perf_counter() - t0
    print(f"hdeeprm: compiled in {seconds:.0f} s", file=sys.stderr, flush=True)
    return seconds


class BackgroundCompilation:
    """Compile HeteroEnv's kernels in a child process while this one does other work, for a
    command whose first part does not need them (training an agent whose environment has no
    compiled path, before an evaluation that has one). On two cores this takes the
    compilation off the critical path: `train quickstart` on a first run went from 149 s to
    about 100 s. ``wait()`` before the kernels are needed; the child is a daemon, stopped
    with its parent (``stop()``, or the parent's exit)."""

    def __init__(self, config):
        import multiprocessing

        print(NOTICE + ", beside the training...", file=sys.stderr, flush=True)
        self._started = time.perf_counter()
        # spawn, not fork: the parent may hold torch threads, and fork would copy their locks.
        self._process = multiprocessing.get_context("spawn").Process(
            target=play_pairs_once, args=(config,), name="hdeeprm-compile", daemon=True)
        self._process.start()

    def wait(self) -> tuple[float, float]:
        """Wait for the compilation: (its seconds in all, the seconds waited here for it).
        A child that failed leaves the kernels to be compiled where they are first used."""
        t0 = time.perf_counter()
        self._process.join()
        now = time.perf_counter()
        if self._process.exitcode != 0:
            print(f"hdeeprm: the background compilation stopped (exit status {self._process.exitcode}); "
                  "the kernels compile where they are first used", file=sys.stderr, flush=True)
        else:
            print(f"hdeeprm: compiled in {now - self._started:.0f} s (waited {now - t0:.0f} s for it)",
                  file=sys.stderr, flush=True)
        return now - self._started, now - t0

    def stop(self) -> None:
        if self._process.is_alive():
            self._process.terminate()
            self._process.join()


def play_once(config) -> None:
    """One short episode of the experiment's environment (compiles its kernels, if it has any)."""
    import dataclasses

    from hdeeprm.rl.baselines import RandomMaskedAgent
    from hdeeprm.rl.train import run_episode

    env = dataclasses.replace(config, episode_jobs=min(config.episode_jobs or 20, 20)).make_env()
    run_episode(env, RandomMaskedAgent(0), seed=0)
    env.close()


def play_pairs_once(config) -> None:
    """One short episode of the experiment's platform under the pairs action space: compiles
    the kernels that the evaluation's classic pairs run on."""
    from hdeeprm.rl.baselines import RandomMaskedAgent
    from hdeeprm.rl.train import run_episode

    # Any HDeepRM objective: the kernels are the same for all of them.
    env = config.make_env("train", episode_jobs=20, action_space="pairs", void=False, objective="avg_job_completion")
    run_episode(env, RandomMaskedAgent(0), seed=0)
    env.close()


# ``hdeeprm compile``: the compilation ahead of time, for machines set up once and used later
# (an image, a cluster node, before timing anything).

PARTS = {"classic": "whole classic-policy runs (simulate, sweep), with or without a shutdown policy",
         "env": "HeteroEnv episodes (train, evaluate, the classic pairs of an evaluation)"}


def classic_parts(shutdown: bool = True) -> tuple[str, ...]:
    """The compiled entry points a classic run needs: the shutdown policy's run is its own
    (``hdeeprm compile classic`` builds both)."""
    return ("classic", "shutdown") if shutdown else ("classic",)


def add_subcommands(sub) -> dict:
    comp = sub.add_parser("compile", help="compile the simulation kernels now (once per machine; "
                                          "otherwise the first run that needs them does)")
    comp.add_argument("parts", nargs="*", metavar="PART",
                      help="classic, env (default: both, side by side on two processes)")
    return {"compile": cmd_compile}


def compile_part(part: str) -> None:
    """One short run of ``part`` on the bundled quick-start experiment (compiles it)."""
    from hdeeprm.rl.experiment import ExperimentConfig

    config = ExperimentConfig.load("quickstart")
    if part == "env":
        play_pairs_once(config)
        return
    import tempfile

    from hdeeprm.common.seeding import run_generators
    from hdeeprm.simulation.engine import Engine
    from hdeeprm.simulation.outputs import write_outputs
    from hdeeprm.simulation.policies import PolicyConfig, run_policy

    data = config.data()
    result = run_policy(Engine(data.platform, data.parts["train"].window(0, 20)),
                        PolicyConfig.parse("first:first_fit", "easy"), rng=run_generators(0)[1], fast=True)
    with tempfile.TemporaryDirectory(prefix="hdeeprm-compile-") as folder:
        write_outputs(result, folder)  # the writers' kernels too
    # The shutdown policy's compiled run, on a flat platform with Batsim sleep p-states.
    run_policy(Engine(_sleep_platform(), data.parts["train"].window(0, 20)),
               PolicyConfig.parse("first:first_fit", "easy", 0.0), rng=run_generators(0)[1], fast=True)


def _sleep_platform(n: int = 64):
    """n hosts: p-state 0 computes, 1 sleeps, 2 and 3 switch off and on (sleep_pstates 1:2:3)."""
    import numpy as np

    from hdeeprm.inputs.platform.model import Platform
    from hdeeprm.inputs.platform.sleep import attach_sleep_states, build_sleep_states

    platform = Platform(host_names=tuple(f"h{i}" for i in range(n)), speeds=np.tile([1e9, 1.0, 0.1, 0.2], (n, 1)),
                        watts_idle=np.tile([100.0, 10.0, 50.0, 150.0], (n, 1)),
                        watts_full=np.tile([200.0, 10.0, 50.0, 150.0], (n, 1)),
                        nb_pstates=np.full(n, 4, np.int64), initial_pstate=np.zeros(n, np.int64))
    return attach_sleep_states(platform, build_sleep_states(platform.nb_pstates, [((1, 2, 3),)] * n))


def cmd_compile(args) -> int:
    import multiprocessing
    import os

    from hdeeprm.simulation.fastsim import compiled_on_disk

    parts = list(dict.fromkeys(args.parts or PARTS))
    unknown = [part for part in parts if part not in PARTS]
    if unknown:
        from hdeeprm.common.errors import ConfigError

        raise ConfigError(f"part {unknown[0]!r}: expected {' or '.join(PARTS)}")
    todo = [part for part in parts if not compiled_on_disk(classic_parts() if part == "classic" else (part,))]
    for part in parts:
        if part not in todo:
            print(f"{part}: already compiled ({PARTS[part]})")
    if not todo:
        return 0
    print(f"compiling {', '.join(todo)} (1 to 2 minutes each on one core)...", flush=True)
    t0 = time.perf_counter()
    if len(todo) > 1 and (os.cpu_count() or 1) > 1:
        # numba compiles one function at a time per process: one process per part.
        context = multiprocessing.get_context("spawn")
        workers = [context.Process(target=compile_part, args=(part,), name=f"hdeeprm-compile-{part}", daemon=True)
                   for part in todo]
        try:
            for worker in workers:
                worker.start()
            for worker in workers:
                worker.join()
        finally:
            for worker in workers:
                if worker.is_alive():
                    worker.terminate()
                    worker.join()
        failed = [part for part, worker in zip(todo, workers) if worker.exitcode != 0]
        if failed:
            from hdeeprm.common.errors import HDeepRMError

            raise HDeepRMError(f"compiling {', '.join(failed)} failed (exit status "
                               f"{', '.join(str(w.exitcode) for w in workers if w.exitcode)}); "
                               f"run `hdeeprm compile {failed[0]}` to see why")
    else:
        for part in todo:
            compile_part(part)
    print(f"compiled {', '.join(todo)} in {time.perf_counter() - t0:.0f} s; later runs load them from "
          f"numba's cache")
    return 0
