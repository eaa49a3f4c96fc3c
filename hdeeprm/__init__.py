"""HDeepRM: job scheduling for heterogeneous HPC clusters, classic and deep-RL.

A Batsim-faithful embedded simulation engine (SimPy core, numpy state, numba kernels), the
HDeepRM platform and workload formats, classic schedulers, Batsim-compatible outputs and
``HeteroEnv``, a Gymnasium environment registered as ``hdeeprm/HeteroEnv-v0``.
"""

__version__ = "0.4.0.dev0"

import sys as _sys  # noqa: E402

from hdeeprm.common.errors import HDeepRMError  # noqa: E402

ENV_ID = "hdeeprm/HeteroEnv-v0"


def _register_env() -> None:
    """gymnasium.make("hdeeprm/HeteroEnv-v0") once hdeeprm is imported: the quick-start platform
    and trace (HeteroEnv's defaults, kept there so that HeteroEnv() and make() agree), or
    make(..., platform="gaia", workload=..., render_mode="ansi", <EnvConfig fields>)."""
    from gymnasium.envs.registration import register, registry

    if ENV_ID not in registry:
        register(id=ENV_ID, entry_point="hdeeprm.rl.env:HeteroEnv")


class _RegisterWithGymnasium:
    """Registers the environment as soon as gymnasium is imported, so that ``import hdeeprm``
    does not import gymnasium (0.1 s that the command line does not need)."""

    @classmethod
    def find_spec(cls, name, path=None, target=None):
        if name != "gymnasium":
            return None
        _sys.meta_path.remove(cls)
        import importlib.util

        spec = importlib.util.find_spec(name)
        if spec is not None and spec.loader is not None:
            execute = spec.loader.exec_module

            def exec_module(module):
                execute(module)
                _register_env()

            spec.loader.exec_module = exec_module
        return spec


if "gymnasium" in _sys.modules:
    _register_env()
elif _RegisterWithGymnasium not in _sys.meta_path:
    _sys.meta_path.insert(0, _RegisterWithGymnasium)

__all__ = ["HDeepRMError", "HeteroEnv", "EnvConfig", "__version__"]


def __getattr__(name: str):
    # The environment pulls in the engine and numba; import it only when asked for.
    if name in ("HeteroEnv", "EnvConfig"):
        from hdeeprm.rl import env

        return getattr(env, name)
    raise AttributeError(f"module 'hdeeprm' has no attribute {name!r}")
