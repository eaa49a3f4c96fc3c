"""Compatibility path for original HDeepRM agent files (``from hdeeprm.agent import ...``).

The agent API lives in :mod:`hdeeprm.rl.agent`; ``AgentEnvironment`` (what ``observe``,
``alter`` and ``rewarded`` get as the environment) in :mod:`hdeeprm.rl.train`.
"""

from hdeeprm.rl.agent import (  # noqa: F401
                              Agent,
                              ClassicAgent,
                              LearningAgent,
                              Mask,
                              Observation,
                              PolicyLearningAgent,
                              ValueLearningAgent,
                              as_batch,
                              as_mask,
                              load_agent_class,
)
from hdeeprm.rl.train import AgentEnvironment  # noqa: F401
