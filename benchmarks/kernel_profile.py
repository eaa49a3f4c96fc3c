#!/usr/bin/env python
"""Where one case spends its time, inside the compiled kernels or around them.

    python benchmarks/kernel_profile.py TRACE.swf.gz [--cores N | --flat] [--policy JOB:CORE] [--backfill easy|conservative]
    python benchmarks/kernel_profile.py TRACE.swf.gz --cores 1000 --env minimal [--steps 20000]

Classic runs: cProfile cannot see inside numba code, so this copies ``hdeeprm/fastsim`` into
a temporary folder with a cycle counter (``llvm.readcyclecounter``) around each main kernel,
compiles the copy (a minute or two; nothing is cached) and runs the case on it. Nested
kernels are counted in their callers too: shares add up to more than 100 %.

HeteroEnv (``--env``): cProfile of the Python side of ``env.step`` (the compiled step is one
call, ``env_step_view``), which shows how the step's time splits between the kernel and the
Python around it.
"""

from __future__ import annotations

import argparse
import cProfile
import importlib
import io
import pstats
import re
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(HERE))

# Kernels to time, per module of hdeeprm/fastsim (each takes the state as first argument).
INSTRUMENTED = {
    "sim": ("run_classic", "next_point", "admit", "schedule", "commit", "commit_pstates", "set_pstate",
            "execute", "_end", "try_start", "release", "q_push", "q_remove", "_refresh", "_energy_row",
            "_backfill_easy", "_backfill_conservative", "_on_submit", "_heap_push", "_heap_pop"),
    "alloc": ("allocate", "_best", "_random_core", "_refresh", "_take", "_give_back"),
    "availability": ("build", "earliest", "split", "book", "book_start"),
}
RDTSC = '''
from numba import types as _types
from numba.extending import intrinsic as _intrinsic
from llvmlite import ir as _ir


@_intrinsic
def rdtsc(typingctx):
    def codegen(context, builder, signature, args):
        fnty = _ir.FunctionType(_ir.IntType(64), [])
        return builder.call(builder.module.declare_intrinsic("llvm.readcyclecounter", fnty=fnty), [])
    return _types.int64(), codegen
'''


def instrumented_package(folder: Path) -> list[str]:
    """Write the instrumented copy as package ``fsprof`` in ``folder``; the counter names."""
    source = ROOT / "hdeeprm" / "simulation" / "fastsim"
    package = folder / "fsprof"
    package.mkdir()
    (package / "__init__.py").write_text("")
    # FIELDS is the one list of state fields (build and dump are generated from it): add the counters.
    text = (source / "state.py").read_text().replace("FIELDS = (\n", 'FIELDS = (\n    "prof",\n', 1)
    (package / "state.py").write_text(text.replace("(cache=True)", "()"))
    counters = []
    for module, functions in INSTRUMENTED.items():
        code = (source / f"{module}.py").read_text()
        code = code.replace("hdeeprm.simulation.fastsim.", "fsprof.")  # the instrumented copies call each other
        code = code.replace("cache=True, ", "").replace("(cache=True)", "")
        code = code.replace("import numba\n", "import numba\n" + RDTSC, 1)
        for name in functions:
            match = re.search(rf"@numba.njit\((nogil=True)?\)\ndef {name}\((.*?)\):", code, re.S)
            if not match:
                continue
            params = match.group(2)
            args = ", ".join(p.split("=")[0].strip() for p in params.split(","))
            k = len(counters)
            counters.append(f"{module}.{name}")
            code = code.replace(match.group(0), f"@numba.njit(nogil=True)\ndef {name}_timed({params}):")
            code += (f"\n\n@numba.njit(nogil=True)\ndef {name}({params}):\n    t0 = rdtsc()\n"
                     f"    r = {name}_timed({args})\n    s.prof[{2 * k}] += rdtsc() - t0\n"
                     f"    s.prof[{2 * k + 1}] += 1\n    return r\n")
        (package / f"{module}.py").write_text(code)
    return counters


def profile_classic(args) -> None:
    import numpy as np
    from run import load_trace

    from hdeeprm.simulation import fastsim
    from hdeeprm.simulation.engine import Engine
    from hdeeprm.simulation.policies import PolicyConfig
    from hdeeprm.simulation.resources import _KEY_CODE

    config = PolicyConfig.parse(args.policy, args.backfill)
    platform, label, arrays, _, _ = load_trace(args.trace, "flat" if args.flat else args.cores, args.nb_jobs)
    with tempfile.TemporaryDirectory() as tmp:
        counters = instrumented_package(Path(tmp))
        sys.path.insert(0, tmp)
        pstate, psim = importlib.import_module("fsprof.state"), importlib.import_module("fsprof.sim")

        class Profiled(fastsim.FastRun):
            def _build(self, fields):
                fields["prof"] = np.zeros(2 * len(counters), np.int64)
                self.prof = fields["prof"]
                return pstate.build(*(fields[name] for name in pstate.FIELDS))

        def once():
            run = Profiled(Engine(platform, arrays), job_keys=(config.job_key,), core_keys=(config.core_key,),
                           backfill=config.backfill)
            t0 = time.perf_counter()
            psim.run_classic(run.s, fastsim.JOB_KEY_ROW[config.job_key], _KEY_CODE[config.core_key])
            return run, time.perf_counter() - t0

        print(f"compiling the instrumented kernels ({len(counters)} counters)...", flush=True)
        t0 = time.perf_counter()
        once()
        print(f"  {time.perf_counter() - t0:.0f} s", flush=True)
        run, wall = once()
    prof = run.prof
    total = prof[0]  # run_classic
    print(f"\n{Path(args.trace).name}, {len(arrays):,} jobs, {label}, {config}: {wall:.2f} s in run_classic "
          f"(instrumented), {total / 1e9:.2f} G cycles")
    rows = sorted(range(len(counters)), key=lambda k: -prof[2 * k])
    print(f"{'kernel':<24} {'M cycles':>10} {'share':>7} {'calls':>11} {'cycles/call':>12}")
    for k in rows:
        cycles, calls = prof[2 * k], prof[2 * k + 1]
        if calls:
            print(f"{counters[k]:<24} {cycles / 1e6:>10.1f} {100 * cycles / total:>6.1f}% {calls:>11,} "
                  f"{cycles / calls:>12,.0f}")


def profile_env(args) -> None:
    import numpy as np
    from run import load_trace

    from hdeeprm.rl.env import HeteroEnv

    platform, label, arrays, _, _ = load_trace(args.trace, args.cores, args.nb_jobs)
    env = HeteroEnv(platform, arrays, observation=args.env, episode_jobs=min(5000, len(arrays)))
    rng = np.random.default_rng(0)

    def play(steps):
        _, info = env.reset(seed=0)
        for _ in range(steps):
            valid = np.flatnonzero(info["action_mask"])
            _, _, terminated, truncated, info = env.step(int(valid[int(rng.random() * len(valid))]))
            if terminated or truncated:
                _, info = env.reset()

    play(200)
    t0 = time.perf_counter()
    play(args.steps)
    wall = time.perf_counter() - t0
    profiler = cProfile.Profile()
    profiler.enable()
    play(args.steps)
    profiler.disable()
    out = io.StringIO()
    pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(15)
    print(f"HeteroEnv, {args.env} observation, {label}: {args.steps / wall:,.0f} steps/s "
          f"({1e6 * wall / args.steps:.1f} us/step) without the profiler")
    print(out.getvalue())


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("trace")
    p.add_argument("--cores", type=int, default=1000, help="gaia scaled to about N cores (default 1000)")
    p.add_argument("--flat", action="store_true", help="the trace's MaxProcs single-core hosts instead")
    p.add_argument("--policy", default="first:first_fit")
    p.add_argument("--backfill", choices=("easy", "conservative"), default=None)
    p.add_argument("--nb-jobs", type=int, default=None, help="first N jobs of the trace")
    p.add_argument("--env", choices=("minimal", "small", "normal"), help="profile HeteroEnv steps instead")
    p.add_argument("--steps", type=int, default=20000)
    args = p.parse_args(argv)
    if args.env:
        profile_env(args)
    else:
        profile_classic(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
