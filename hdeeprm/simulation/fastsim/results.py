"""Read-only sequences over the fast path's flat result arrays.

A run of a million jobs would otherwise build millions of small Python objects (one
allocation array per job, two energy rows per job) before anyone asks for them. These
sequences index and iterate like the reference's lists and build each item on demand.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np


class Allocations(Sequence):
    """Per job, the machines it ran on (a view of one flat array), or None if it never
    started; what ``Engine.alloc`` holds for the reference engine."""

    def __init__(self, buffer: np.ndarray, offsets: np.ndarray, sizes: np.ndarray,
                 started: np.ndarray):
        self._buffer, self._offsets, self._sizes, self._started = buffer, offsets, sizes, started

    def __len__(self) -> int:
        return len(self._offsets)

    def __getitem__(self, job):
        if isinstance(job, slice):
            return [self[j] for j in range(len(self))[job]]
        if not self._started[job]:
            return None
        off = int(self._offsets[job])
        return self._buffer[off:off + int(self._sizes[job])]

    def copy(self) -> "Allocations":
        return self  # immutable once the run is over

    def flat(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(buffer, offsets, sizes): job j ran on buffer[offsets[j]:offsets[j] + sizes[j]]
        (size 0 for a job that never started)."""
        return self._buffer, self._offsets, np.where(self._started, self._sizes, 0)


class EnergyRows(Sequence):
    """Rows of out_consumed_energy.csv: (time, energy, kind, wattmin, epower or None)."""

    def __init__(self, time, energy, kind, wattmin, epower, count: int):
        self._columns = (time[:count], energy[:count], kind[:count], wattmin[:count], epower[:count])

    def __len__(self) -> int:
        return len(self._columns[0])

    def __getitem__(self, i):
        if isinstance(i, slice):
            return [self[k] for k in range(len(self))[i]]
        t, e, k, w, p = (c[i] for c in self._columns)
        return float(t), float(e), chr(int(k)), float(w), None if np.isnan(p) else float(p)

    def __iter__(self):
        for t, e, k, w, p in zip(*self.columns()):
            yield t, e, k, w, None if p != p else p

    def columns(self) -> tuple[list, ...]:
        """The rows as five lists: times, energies, kinds (one-letter strings), wattmin, epower
        (NaN where there is none)."""
        time, energy, kind, wattmin, epower = (c.tolist() for c in self._columns)
        return time, energy, list(map(chr, kind)), wattmin, epower


class PStateRows(Sequence):
    """Rows of out_pstate_changes.csv: (time, machines, new p-state; -1 while switching);
    the engine's initial rows first, then two rows per switch (one per record with
    ``single``)."""

    def __init__(self, initial: list, time, pstate, offset, length, hosts, count: int, single: bool = False):
        self._initial = list(initial)
        self._time, self._pstate = time[:count], pstate[:count]
        self._offset, self._length, self._hosts = offset[:count], length[:count], hosts
        # Sleep runs (sim.set_pstate_sleep): one row per record, its p-state as written (-1 or -2
        # for a request, the target when the request's machines have all switched).
        self._single = single

    def __len__(self) -> int:
        return len(self._initial) + (1 if self._single else 2) * len(self._time)

    def __getitem__(self, i):
        if isinstance(i, slice):
            return [self[k] for k in range(len(self))[i]]
        if i < 0:
            i += len(self)
        if i < len(self._initial):
            return self._initial[i]
        i -= len(self._initial)
        switch, second = (i, True) if self._single else divmod(i, 2)
        if not 0 <= switch < len(self._time):
            raise IndexError(i)
        off = int(self._offset[switch])
        machines = self._hosts[off:off + int(self._length[switch])]
        return float(self._time[switch]), machines, int(self._pstate[switch]) if second else -1


class BandwidthSpans(Mapping):
    """Overutilization.bandwidth_spans: per processor id, its [start, end] spans (end None
    while open), in the order processors first became over-subscribed; each processor's list
    is built when first asked for."""

    def __init__(self, processors: list, times: np.ndarray, lo: np.ndarray, hi: np.ndarray):
        self._where = {p: (int(a), int(b)) for p, a, b in zip(processors, lo.tolist(), hi.tolist())}
        self._times = times
        self._built: dict = {}

    def __len__(self) -> int:
        return len(self._where)

    def __iter__(self):
        return iter(self._where)

    def __getitem__(self, processor):
        spans = self._built.get(processor)
        if spans is None:
            lo, hi = self._where[processor]
            group = self._times[lo:hi]
            starts, ends = group[0::2], group[1::2]
            spans = np.column_stack((starts[:len(ends)], ends)).tolist()
            if len(starts) > len(ends):
                spans.append([float(starts[-1]), None])
            self._built[processor] = spans
        return spans
