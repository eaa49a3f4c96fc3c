"""HDeepRM: job scheduling for heterogeneous HPC clusters, classic and deep-RL.

A Batsim-faithful embedded simulation engine (SimPy core, numpy state, numba kernels), the
HDeepRM platform and workload formats, classic schedulers, Batsim-compatible outputs and
``HeteroEnv``, a Gymnasium environment registered as ``hdeeprm/HeteroEnv-v0``.
"""

__version__ = "0.4.0.dev0"

from gymnasium.envs.registration import register as _register  # noqa: E402

from hdeeprm.common.errors import HDeepRMError  # noqa: E402

# gymnasium.make("hdeeprm/HeteroEnv-v0") once hdeeprm is imported: the quick-start platform and
# trace (HeteroEnv's defaults, kept there so that HeteroEnv() and make() agree), or
# make(..., platform="gaia", workload=..., render_mode="ansi", <EnvConfig fields>).
_register(id="hdeeprm/HeteroEnv-v0", entry_point="hdeeprm.rl.env:HeteroEnv")

__all__ = ["HDeepRMError", "HeteroEnv", "EnvConfig", "__version__"]


def __getattr__(name: str):
    # The environment pulls in the engine and numba; import it only when asked for.
    if name in ("HeteroEnv", "EnvConfig"):
        from hdeeprm.rl import env

        return getattr(env, name)
    raise AttributeError(f"module 'hdeeprm' has no attribute {name!r}")
