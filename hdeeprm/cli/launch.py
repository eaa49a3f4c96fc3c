"""``hdeeprm-launch``: run an original HDeepRM experiment (options file, agent file) here.

    hdeeprm-launch OPTIONS.json [-a AGENT.py] [-cw CUSTOM.json] [-im IN.pt] [-om OUT.pt]
                   [-nr N] [--backend embedded|batsim] [--out DIR]

The options file has the original's schema: ``seed``, ``nb_resources``, ``nb_jobs``,
``workload_file_path``, ``platform_file_path`` and ``pybatsim`` with ``log_level``, ``env``
(see ``hdeeprm.rl.env``) and ``agent`` (``type`` CLASSIC or LEARNING, ``run`` train or test,
``hidden``, ``lr``, ``gamma``; the legacy ``policy_pair`` such as ``"shortest-high_gflops"``
selects that action, with a warning). Unknown keys are errors. Relative paths are taken from
the options file's folder.

Differences from the original, on purpose: outputs go to ``--out`` (default
``runs/<options file name>``), never over the current folder; the N episodes share one agent
(``-om`` is still written after every trained episode, atomically); a missing ``-im`` is
reported; PyTorch is seeded from ``seed`` and episode k resets the environment with
``seed + k``, so a run is reproducible; a LEARNING agent may
also name a bundled algorithm with ``"algorithm": "reinforce" | "actor_critic" | "ppo"``
instead of giving ``-a``.

The workload model is the original's by default (``--workload-model original``, said once on
stderr and recorded in ``options_resolved.json``): an SWF trace's jobs do f x their requested
time, f drawn per job from the original's 25-point distribution, and none is killed at its
requested time; a ``-cw`` file's profiles are rewritten so that every job runs for its
requested time at the platform's reference speed. Unlike the original, each job keeps its own
f (the original shared profiles by requested time, memory and bandwidth, so later jobs reused
the first one's f). ``--workload-model modern`` takes the trace's real run times, kills jobs
at their requested time, and runs a ``-cw`` file as it is (what ``hdeeprm train`` does).

As in the original, ``pybatsim.agent.file``, ``input_model`` and ``output_model`` in the
options file stand for ``-a``, ``-im`` and ``-om`` (the flags win), and ``insights.log``
(at ``pybatsim.log_level``, default INFO; rewritten by each launch) says what each episode
did: decisions, reward, makespan, the jobs its scheduling passes started (max, min, mean
over the passes that started any: the original divided by zero when none did), the loss and
the first decision's probabilities; ``log_probs.log`` gets one line per trained episode, the
log-probabilities of the actions taken (numbers, where the original wrote tensor reprs).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import warnings
from pathlib import Path

from hdeeprm.common.errors import ConfigError
from hdeeprm.common.jsonfile import read_json_object
from hdeeprm.common.seeding import SEED_MAX
from hdeeprm.rl.original_options import check_options, classic_action


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="hdeeprm-launch", description=__doc__.splitlines()[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("options_file", help="experiment options JSON (the original's schema)")
    parser.add_argument("-cw", "--customworkload", help="Batsim JSON workload to use instead of the SWF trace")
    parser.add_argument("-a", "--agent", help="Python file defining the learning agent")
    parser.add_argument("-im", "--inmodel", help="checkpoint to load before the first episode")
    parser.add_argument("-om", "--outmodel", help="checkpoint to write after each trained episode")
    parser.add_argument("-nr", "--nbruns", type=int, default=1, help="number of episodes (default 1)")
    parser.add_argument("--backend", choices=("embedded", "batsim"), default="embedded")
    parser.add_argument("--batsim", metavar="PATH",
                        help="batsim executable for --backend batsim (default: $HDEEPRM_BATSIM, then PATH)")
    parser.add_argument("--out", help="output folder (default runs/<options file name>)")
    parser.add_argument("--workload-model", choices=("original", "modern"), default="original",
                        help="original (default): the original's workload model: an SWF trace's jobs do f x "
                             "their requested time (f drawn per job), none killed at its requested time; a "
                             "-cw file's jobs run for their requested time at the reference speed. modern: "
                             "the trace's real run times, killed at their requested time; the -cw file as it is")
    return parser


def launch(args) -> int:
    import torch  # noqa: F401  (before any work: a missing torch gets the install hint)

    from hdeeprm.rl.env import HeteroEnv

    source = args.options_file
    options = check_options(read_json_object(source), source)
    if args.nbruns < 1:
        raise ConfigError(f"-nr {args.nbruns}: expected at least 1 episode")
    agent_opts = options["pybatsim"]["agent"]
    base = Path(source).resolve().parent
    for flag, key in (("agent", "file"), ("inmodel", "input_model"), ("outmodel", "output_model")):
        if getattr(args, flag) is None and agent_opts.get(key):  # the original injected -a/-im/-om there
            setattr(args, flag, str(base / agent_opts[key]))
    seed = options.get("seed", 0)
    if seed + args.nbruns - 1 > SEED_MAX:
        raise ConfigError(f"{source}: seed {seed} with -nr {args.nbruns}: episode k resets with seed + k, "
                          "which must stay at most 2**63-1")
    workload = str(Path(args.customworkload).resolve()) if args.customworkload else None
    env = HeteroEnv.from_options(Path(source), workload=workload, backend=args.backend,
                                 backend_options={"batsim": args.batsim} if args.backend == "batsim" else None,
                                 workload_model=args.workload_model)
    args.workload_note = workload_model_note(args.workload_model, workload or options.get("workload_file_path"),
                                             env.platform.reference_speed_gflops)
    try:
        return _run_episodes(args, env, options, agent_opts, source, workload, seed)
    finally:
        env.close()  # the Batsim backend stops its process and removes its temporary folder


def _run_episodes(args, env, options, agent_opts, source, workload, seed) -> int:
    import torch

    from hdeeprm.common.progress import Progress
    from hdeeprm.rl.agent import load_agent_class
    from hdeeprm.rl.agents import ALGORITHMS, build_agent
    from hdeeprm.rl.agents.common import load_checkpoint
    from hdeeprm.rl.baselines import FixedActionAgent
    from hdeeprm.rl.train import HDeepRMLogs, observation_size, run_episode

    if "nb_resources" in options and options["nb_resources"] != env.platform.nb_machines:
        warnings.warn(f"{source}: nb_resources is {options['nb_resources']} but the platform has "
                      f"{env.platform.nb_machines} cores; using the platform's", stacklevel=1)
    nb_actions, obs_size = env.action_space.n, observation_size(env)

    optimizer = None
    if agent_opts["type"] == "CLASSIC":
        agent = FixedActionAgent(classic_action(env, agent_opts, source))
        train = False
    else:
        for key in ("gamma", "hidden", "lr"):
            if key not in agent_opts:
                raise ConfigError(f"{source}: pybatsim.agent.{key}: missing; needed by a LEARNING agent")
        if args.agent:
            cls = load_agent_class(args.agent)
        elif agent_opts.get("algorithm") in ALGORITHMS:
            cls = ALGORITHMS[agent_opts["algorithm"]]
        else:
            raise ConfigError(f"{source}: a LEARNING agent needs -a AGENT.py or pybatsim.agent.algorithm "
                              f"(one of {', '.join(a for a in ALGORITHMS if a != 'classic')})")
        agent = build_agent(cls, float(agent_opts["gamma"]), int(agent_opts["hidden"]), nb_actions,
                            obs_size, seed=seed)
        optimizer = torch.optim.Adam(agent.parameters(), lr=float(agent_opts["lr"]))
        if args.inmodel:
            if os.path.isfile(args.inmodel):
                load_checkpoint(args.inmodel, agent, optimizer)
            else:
                print(f"hdeeprm-launch: {args.inmodel} does not exist yet; starting from fresh weights",
                      file=sys.stderr)
        train = agent_opts.get("run", "train") == "train"

    out = Path(args.out) if args.out else Path("runs") / Path(source).stem
    logs = HDeepRMLogs(out, nb_actions)
    resolved = {**options, "launch": {
        "options_file": os.path.abspath(source), "agent_file": args.agent and os.path.abspath(args.agent),
        "custom_workload": workload, "input_model": args.inmodel, "output_model": args.outmodel,
        "nb_runs": args.nbruns, "backend": args.backend, "actions": env.action_names(),
        "train": train, "workload_model": args.workload_model, "workload_model_note": args.workload_note}}
    (out / "options_resolved.json").write_text(json.dumps(resolved, indent=2) + "\n")
    # Said once, here: an error found while setting the run up stays the only line on stderr.
    print(f"hdeeprm-launch: {args.workload_note}", file=sys.stderr)
    progress = Progress(args.nbruns, "episodes")
    insights = _insights_logger(out, options["pybatsim"].get("log_level") or "INFO")
    insights.info("hdeeprm-launch insights: %s, %s agent, %d episodes, platform reference speed %.6g GFLOPS",
                  source, agent_opts["type"], args.nbruns, env.platform.reference_speed_gflops)
    try:
        for k in range(args.nbruns):
            record = run_episode(env, agent, seed=seed + k, train=train, optimizer=optimizer)
            logs.write(k, record)
            _log_insights(insights, k, record, env)
            if train and record.log_probs is not None:
                with open(out / "log_probs.log", "a") as f:
                    f.write(json.dumps(record.log_probs) + "\n")
            _after_episode(args, agent, optimizer, train, seed, k, record, progress)
    finally:
        for handler in insights.handlers[:]:
            handler.close()
            insights.removeHandler(handler)
    print(f"outputs in {out}")
    return 0


def workload_model_note(model: str, workload: str | None, reference_speed_gflops: float) -> str:
    """The one line that says which workload model a launch runs (stderr, options_resolved.json)."""
    custom = str(workload or "").lower().endswith(".json")  # a Batsim JSON workload, as load_workload tells
    if model == "original" and custom:
        what = (f"the original's (every profile's work set to its requested time at the reference speed, "
                f"{reference_speed_gflops:.6g} GFLOP/s); --workload-model modern runs the file's own work")
    elif model == "original":
        what = ("the original's (each job's work = its requested time x a factor drawn per job from the original's "
                "25-point distribution, no job killed at its requested time); --workload-model modern uses the "
                "trace's real run times and kills jobs at their requested time")
    elif custom:
        what = ("modern (the file's own work, as it is); the default, --workload-model original, runs every job "
                "for its requested time at the reference speed as the original did")
    else:
        what = ("modern (the trace's real run times, jobs killed at their requested time); the default, "
                "--workload-model original, is the original's sampled over-estimation factors, no job killed")
    return f"workload model: {what}"


def _insights_logger(out: Path, level: str | int):
    """insights.log in the run folder, rewritten by each launch, at the options' level."""
    import logging

    logger = logging.getLogger(f"hdeeprm.launch.insights.{id(out)}")
    logger.setLevel(level.upper() if isinstance(level, str) else level)
    logger.propagate = False  # the file only, not the user's root handlers
    handler = logging.FileHandler(out / "insights.log", mode="w")
    handler.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
    logger.addHandler(handler)
    return logger


def _log_insights(insights, k: int, record, env) -> None:
    m = record.metrics
    insights.info("episode %d: %d decisions, reward %.6g, makespan %.6f s, mean waiting time %.6f s", k,
                  record.steps, record.reward, m.get("makespan", float("nan")), m.get("mean_waiting_time", float("nan")))
    passes = [n for n in record.started_per_step if n > 0]
    if passes:
        insights.info("episode %d: scheduling passes that started jobs: %d of %d; jobs per pass max %d, min %d, "
                      "mean %.6g", k, len(passes), len(record.started_per_step), max(passes), min(passes),
                      sum(passes) / len(passes))
    else:
        insights.info("episode %d: no scheduling pass started a job", k)
    if record.losses:
        insights.info("episode %d: loss %.6g", k, record.losses["loss"])
    if record.first_probs is not None:
        insights.debug("episode %d: first decision's probabilities %s", k,
                       ", ".join(f"{name} {p:.4f}" for name, p in zip(env.action_names(), record.first_probs)))
    insights.debug("episode %d: actions %s", k, " ".join(map(str, record.actions)))


def _after_episode(args, agent, optimizer, train, seed, k, record, progress) -> None:
    """The checkpoint (-om, after each trained episode, as the original) and the episode's line."""
    from hdeeprm.rl.agents.common import save_checkpoint

    if train and args.outmodel:
        save_checkpoint(args.outmodel, agent, optimizer, {"episode": k, "seed": seed})
    progress.update(record)
    m = record.metrics
    print(f"episode {k}: reward {record.reward:.6g}, {record.steps} decisions, makespan "
          f"{m.get('makespan', float('nan')):.1f} s, mean wait {m.get('mean_waiting_time', float('nan')):.1f} s"
          + (f", loss {record.losses['loss']:.6g}" if record.losses else ""))


def main(argv: list[str] | None = None) -> int:
    from hdeeprm.common.errors import report_errors

    args = build_parser().parse_args(argv)
    with warnings.catch_warnings():
        warnings.simplefilter("always")
        warnings.showwarning = _one_line_warning
        return report_errors("hdeeprm-launch", lambda: launch(args))


def _one_line_warning(message, category, filename, lineno, file=None, line=None):
    print(f"hdeeprm-launch: warning: {message}", file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
