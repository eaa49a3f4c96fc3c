"""Compatibility path: ``from hdeeprm.env import HeteroEnv, EnvConfig``.

The environment lives in :mod:`hdeeprm.rl.env`.
"""

from hdeeprm.rl.env import ACTION_SPACES, OBSERVATIONS, EnvConfig, HeteroEnv, parse_action_set  # noqa: F401
