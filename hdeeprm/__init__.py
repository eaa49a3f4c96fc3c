"""HDeepRM: job scheduling for heterogeneous HPC clusters, classic and deep-RL.

A Batsim-faithful embedded simulation engine (SimPy core, numpy state, numba kernels), the
HDeepRM platform and workload formats, classic schedulers and Batsim-compatible outputs.
"""

__version__ = "0.4.0.dev0"

from .errors import HDeepRMError  # noqa: E402

__all__ = ["HDeepRMError", "__version__"]
