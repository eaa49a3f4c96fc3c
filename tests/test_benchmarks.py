"""The benchmark's helpers (benchmarks/): platforms of any size, repeated traces. No timing."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"
sys.path.insert(0, str(BENCHMARKS))

from platforms import flat_platform, scaled_gaia  # noqa: E402
from run import repeated  # noqa: E402

TRACE = Path(__file__).parent / "data" / "traces" / "gaia-2014-head.swf.gz"


@pytest.mark.parametrize("cores", [100, 1000, 10_000])
def test_scaled_gaia_has_about_the_cores_asked_and_gaias_node_types(cores):
    platform = scaled_gaia(cores)
    assert cores <= platform.nb_machines < cores + 12
    types = set(platform.hierarchy.node_type)
    assert "Bullx B500-1" in types
    if cores >= 10_000:  # every gaia type, big SMP nodes included
        assert {"SGI UV-2000", "Bullx S6030", "Dell R820"} <= types


def test_flat_platform_is_batsims_benchmark_setting():
    platform = flat_platform(64)
    assert platform.nb_machines == 64 and platform.hierarchy is None
    assert (platform.speeds == 1e9).all() and platform.host_names[10] == "h10"


def test_repeated_trace_copies_follow_each_other_in_submission_order():
    from hdeeprm.inputs.workload import load_workload

    arrays = load_workload(TRACE, nb_jobs=100, reference_speed_gflops=10.0,
                           rng=np.random.default_rng(0)).compile()
    big = repeated(arrays, 3)
    assert len(big) == 300 and len(set(big.job_ids)) == 300
    assert (np.diff(big.subtime) >= 0).all()
    np.testing.assert_array_equal(big.res[200:], arrays.res)
    np.testing.assert_array_equal(big.subtime[100:200] - big.subtime[100], arrays.subtime)
