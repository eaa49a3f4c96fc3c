"""Original HDeepRM options files: their schema, checked strictly, and the action a CLASSIC
agent plays (its first pair, or the legacy ``policy_pair``).

Used by ``hdeeprm-launch`` and by ``hdeeprm crossval OPTIONS.json``.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any, Mapping

from hdeeprm.common.checks import is_finite_number, is_int, shown
from hdeeprm.common.errors import ConfigError
from hdeeprm.common.seeding import SEED_MAX, check_seed

MAX_HIDDEN = 65536  # units per hidden layer
MAX_COUNT = SEED_MAX

TOP_KEYS = {"seed", "nb_resources", "nb_jobs", "workload_file_path", "platform_file_path", "pybatsim"}
PYBATSIM_KEYS = {"log_level", "env", "agent", "seed"}
AGENT_KEYS = {"type", "run", "hidden", "lr", "gamma", "file", "input_model", "output_model",
              "policy_pair", "algorithm"}
AGENT_TYPES = ("CLASSIC", "LEARNING")
#: pybatsim.log_level: the level of insights.log, as Python's logging names it.
LOG_LEVELS = {"CRITICAL": 50, "ERROR": 40, "WARNING": 30, "INFO": 20, "DEBUG": 10}

ARCHIVE_URL = "https://www.cs.huji.ac.il/labs/parallel/workload/"


@dataclass(frozen=True)
class ThesisTrace:
    """A Parallel Workloads Archive log that the original's thesis experiments used, none of
    which it shipped. ``names``: the archive's file names, then the original's
    (``/workspace/workloads/gaia.swf``); ``page``: the log's page under ARCHIVE_URL;
    ``bundled``: the bundled trace that stands for it (an excerpt that gives the experiments
    the same jobs), if any."""

    description: str
    names: tuple[str, ...]
    page: str
    bundled: str | None = None

    @property
    def url(self) -> str:
        return ARCHIVE_URL + self.page


GAIA_LOG = ThesisTrace("the UniLu Gaia 2014 log", ("UniLu-Gaia-2014-2.swf.gz", "UniLu-Gaia-2014-2.swf", "gaia.swf"),
                       "l_unilu_gaia/", bundled="gaia-2014-head.swf.gz")
METACENTRUM2_LOG = ThesisTrace("the MetaCentrum 2 log (58 MB)",
                               ("METACENTRUM-2013-3.swf.gz", "METACENTRUM-2013-3.swf", "mc2.swf"), "l_metacentrum2/")
#: The original's file name for each log its thesis options name.
THESIS_TRACES = {trace.names[-1]: trace for trace in (GAIA_LOG, METACENTRUM2_LOG)}


def check_options(data: Any, source: str) -> dict:
    """Validate an options file against the original's schema; returns it unchanged."""
    if not isinstance(data, Mapping):
        raise ConfigError(f"{source}: expected a JSON object")
    _no_unknown(data, TOP_KEYS, source)
    pybatsim = data.get("pybatsim")
    if not isinstance(pybatsim, Mapping):
        raise ConfigError(f"{source}: pybatsim: missing; expected an object with env and agent")
    _no_unknown(pybatsim, PYBATSIM_KEYS, f"{source}: pybatsim")
    agent = pybatsim.get("agent")
    if not isinstance(agent, Mapping):
        raise ConfigError(f"{source}: pybatsim.agent: missing; expected an object with type and run")
    _no_unknown(agent, AGENT_KEYS, f"{source}: pybatsim.agent")
    if agent.get("type") not in AGENT_TYPES:
        raise ConfigError(f"{source}: pybatsim.agent.type: {agent.get('type')!r}; expected CLASSIC or LEARNING")
    where = f"{source}: pybatsim.agent"
    if "hidden" in agent and (not is_int(agent["hidden"]) or not 1 <= agent["hidden"] <= MAX_HIDDEN):
        raise ConfigError(f"{where}.hidden: expected an integer from 1 to {MAX_HIDDEN}, got {shown(agent['hidden'])}")
    if "lr" in agent and not (is_finite_number(agent["lr"]) and agent["lr"] > 0):
        raise ConfigError(f"{where}.lr: expected a finite number > 0, got {shown(agent['lr'])}")
    if "gamma" in agent and not (is_finite_number(agent["gamma"]) and 0 < agent["gamma"] <= 1):
        raise ConfigError(f"{where}.gamma: expected a number in (0, 1], got {shown(agent['gamma'])}")
    for key in ("policy_pair", "algorithm", "run"):
        if key in agent and not isinstance(agent[key], str):
            raise ConfigError(f"{where}.{key}: expected a string, got {shown(agent[key])}")
    for key in ("file", "input_model", "output_model"):
        if key in agent and agent[key] is not None and not isinstance(agent[key], str):
            raise ConfigError(f"{where}.{key}: expected a string, got {shown(agent[key])}")
    level = pybatsim.get("log_level")
    if level is not None and not (isinstance(level, str) and level.upper() in LOG_LEVELS
                                  or is_int(level) and level in LOG_LEVELS.values()):
        raise ConfigError(f"{source}: pybatsim.log_level: {shown(level)}; expected a Python logging level "
                          f"({', '.join(LOG_LEVELS)}, or its number: {', '.join(map(str, LOG_LEVELS.values()))})")
    for key in ("seed",):
        if key in data:
            check_seed(data[key], f"{source}: {key}")
        if key in pybatsim:
            check_seed(pybatsim[key], f"{source}: pybatsim.{key}")
    for key in ("nb_jobs", "nb_resources"):
        if key in data and data[key] is not None and (not is_int(data[key]) or not 1 <= data[key] <= MAX_COUNT):
            raise ConfigError(f"{source}: {key}: expected a positive integer, got {shown(data[key])}")
    for key in ("workload_file_path", "platform_file_path"):
        if key in data and data[key] is not None and not isinstance(data[key], str):
            raise ConfigError(f"{source}: {key}: expected a file path (a string), got {shown(data[key])}")
    return dict(data)


def _no_unknown(block: Mapping, known: set[str], where: str) -> None:
    unknown = sorted(set(block) - known)
    if unknown:
        raise ConfigError(f"{where}: unknown key {unknown[0]!r}; expected some of {', '.join(sorted(known))}")


def legacy_pair(text: str, source: str) -> tuple[str, str]:
    """``"shortest-high_gflops"`` -> ("shortest", "high_gflops")."""
    from hdeeprm.simulation.keys import ALL_CORE_KEYS, JOB_KEYS

    for job_key in JOB_KEYS:
        if text.startswith(job_key + "-") and text[len(job_key) + 1:] in ALL_CORE_KEYS:
            return job_key, text[len(job_key) + 1:]
    raise ConfigError(f"{source}: pybatsim.agent.policy_pair: {text!r}; expected JOBKEY-COREKEY "
                      "such as shortest-high_gflops")


def classic_action(env, agent_opts: dict, source: str) -> int:
    """The action a CLASSIC agent plays: the first configured pair, or the legacy
    ``policy_pair`` mapped to its action."""
    if "policy_pair" not in agent_opts:
        return 0
    pair = legacy_pair(agent_opts["policy_pair"], source)
    if pair not in env.config.actions:
        raise ConfigError(f"{source}: pybatsim.agent.policy_pair {agent_opts['policy_pair']!r} "
                          "is not in env.actions.selection")
    action = env.config.actions.index(pair)
    warnings.warn(f"{source}: the legacy policy_pair key is mapped to action {action} "
                  f"({pair[0]}:{pair[1]}); prefer env.actions.selection", stacklevel=1)
    return action
