"""Batsim interval-set strings (hdeeprm.simulation.intervals)."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from hdeeprm.common.errors import HDeepRMError
from hdeeprm.simulation.intervals import format_allocations, format_intervals, parse_intervals


@pytest.mark.parametrize("ids, text", [
    ([], ""), ([5], "5"), ([3, 0, 1, 2, 5], "0-3 5"), (np.array([8, 7, 0]), "0 7-8"),
    (np.arange(4, 100), "4-99"), ([0, 2, 4], "0 2 4"), (np.array([2**40, 2**40 + 1]), f"{2**40}-{2**40 + 1}"),
])
def test_format_as_batsim_writes_it(ids, text):
    assert format_intervals(ids) == text


@given(st.sets(st.integers(0, 5000), max_size=200))
def test_round_trip_and_runs(ids):
    text = format_intervals(np.array(sorted(ids), dtype=np.int64)[::-1])
    assert parse_intervals(text).tolist() == sorted(ids)
    # Runs are maximal: no two parts touch.
    bounds = [tuple(map(int, part.split("-"))) if "-" in part else (int(part),) * 2 for part in text.split()]
    assert all(b[0] > a[1] + 1 for a, b in zip(bounds, bounds[1:]))


@given(st.lists(st.one_of(st.none(), st.sets(st.integers(0, 2**40), max_size=40)), max_size=30), st.data())
def test_all_allocations_at_once_as_one_at_a_time(allocations, data):
    # out_jobs.csv formats every job's allocation in one compiled pass, from the reference
    # engine's list or the fast path's flat arrays: the same strings as format_intervals.
    from hdeeprm.simulation.fastsim.results import Allocations

    alloc = [None if a is None else np.array(sorted(a), dtype=np.int64)[::-1] for a in allocations]
    jobs = data.draw(st.lists(st.integers(0, max(len(alloc) - 1, 0)), max_size=len(alloc))) if alloc else []
    expected = ["" if alloc[j] is None else format_intervals(alloc[j]) for j in jobs]
    assert format_allocations(alloc, jobs) == expected
    sizes = np.array([0 if a is None else len(a) for a in alloc], dtype=np.int64)
    offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64)
    buffer = np.concatenate([a for a in alloc if a is not None] or [np.zeros(0, np.int64)]).astype(np.int64)
    started = np.array([a is not None for a in alloc], dtype=bool)
    assert format_allocations(Allocations(buffer, offsets, sizes, started), jobs) == expected


def test_parse_unsorted_and_overlapping():
    assert parse_intervals("5 0-3 2-4").tolist() == [0, 1, 2, 3, 4, 5]
    assert parse_intervals("").tolist() == []


@pytest.mark.parametrize("text", ["0-", "a", "3-1"])
def test_parse_rejects_bad_sets(text):
    with pytest.raises(HDeepRMError):
        parse_intervals(text)
