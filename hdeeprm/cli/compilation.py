"""The one-time compilation of the simulation kernels: said on screen, and kept out of the
times a command reports (a first `simulate` once said "simulated in 63 s (32 jobs/s)")."""

from __future__ import annotations

import sys
import time
from typing import Callable


def compile_first(warm_up: Callable[[], object], always: bool = False) -> float | None:
    """On a machine whose numba cache lacks the compiled runs, say so, run ``warm_up`` (a
    small run that compiles them), and say how long it took; returns those seconds, or None
    when the kernels were compiled already. Then ``warm_up`` runs only if ``always`` (when
    it is cheap: loading the kernels from the cache, about 0.3 s, then stays out of the
    timed run too), and silently."""
    from hdeeprm.simulation.fastsim import compiled_on_disk

    if compiled_on_disk():
        if always:
            warm_up()
        return None
    print("hdeeprm: first run on this machine: compiling the simulation kernels, once "
          "(1 to 2 minutes on 2 cores; cached for later runs)...", file=sys.stderr, flush=True)
    t0 = time.perf_counter()
    warm_up()
    seconds = time.perf_counter() - t0
    print(f"hdeeprm: compiled in {seconds:.0f} s", file=sys.stderr, flush=True)
    return seconds
