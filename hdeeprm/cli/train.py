"""``hdeeprm train`` and ``evaluate``: learning agents on experiments, and paired comparisons with
the classic policies on held-out windows."""

from __future__ import annotations

import os
import time
from pathlib import Path

from hdeeprm.cli.arguments import add_engine_args
from hdeeprm.cli.compilation import BackgroundCompilation, compile_first, play_once, play_pairs_once
from hdeeprm.rl.resume import check_unused


def add_subcommands(sub) -> dict:
    """Add train and evaluate to the ``hdeeprm`` subparsers; returns {name: handler}."""
    tr = sub.add_parser("train", help="train an agent on an experiment (file or bundled name), then evaluate it")
    tr.add_argument("experiment", help="experiment JSON, or a bundled experiment name (quickstart)")
    tr.add_argument("--out", help="output folder (default runs/<experiment name>)")
    tr.add_argument("--episodes", type=int, help="training episodes (overrides the experiment)")
    tr.add_argument("--algorithm", choices=("ppo", "kernel_ppo", "reinforce", "actor_critic"),
                    help="learning algorithm (overrides the experiment)")
    tr.add_argument("--seed", type=int, help="root seed (overrides the experiment)")
    tr.add_argument("--init", metavar="CHECKPOINT", help="start a new run from this checkpoint's weights")
    used = tr.add_mutually_exclusive_group()
    used.add_argument("--resume", action="store_true",
                      help="continue the run in --out from its last checkpoint (after a stop or a kill): "
                           "same experiment and options; the result is the uninterrupted run's")
    used.add_argument("--overwrite", action="store_true",
                      help="replace the run in --out (its hdeeprm files are removed first; other files stay)")
    tr.add_argument("--tensorboard", metavar="DIR", help="also log to TensorBoard in DIR (needs tensorboard)")
    tr.add_argument("--no-evaluate", action="store_true", help="skip the comparison with the classic policies")
    tr.add_argument("--episode-outputs", choices=("all", "last", "none"),
                    help="Batsim outputs of the training episodes in episode_<k>/: every episode's (default), "
                         "the last one's, or none (overrides the experiment)")
    tr.add_argument("--backfill", choices=("none", "easy", "conservative"),
                    help="EASY or conservative backfilling under the agent (overrides the experiment)")
    tr.add_argument("--rollout-batch", type=int, help="episodes per update, played in parallel (default: --workers)")
    add_engine_args(tr, "rollout workers (default: none, the agent plays and learns episode by episode; "
                        "with --engine ray: the cluster's CPUs)")  # hdeeprm.rl.train.train_batched

    ev = sub.add_parser("evaluate", help="compare an agent checkpoint with the classic policies, paired on "
                                         "held-out windows")
    ev.add_argument("experiment", help="experiment JSON, or a bundled experiment name (quickstart)")
    ev.add_argument("--model", help="checkpoint written by train (default: only the classic policies and "
                                    "random valid actions)")
    ev.add_argument("--episodes", type=int, help="evaluation episodes (overrides eval_episodes)")
    ev.add_argument("--seed", type=int, help="root seed (overrides the experiment)")
    ev.add_argument("--out", help="folder for evaluation.csv, evaluation_windows.csv, comparison.csv and "
                                  "evaluation.png (default: print only)")
    ev.add_argument("--backfill", choices=("none", "easy", "conservative"),
                    help="EASY or conservative backfilling under the agent (overrides the experiment)")
    return {"train": cmd_train, "evaluate": cmd_evaluate}


def _with_backfill(config, backfill: str | None):
    if backfill is None:
        return config
    import dataclasses

    return dataclasses.replace(config, backfill=None if backfill == "none" else backfill)


def cmd_train(args) -> int:
    from hdeeprm.analysis.evaluation import evaluate, print_table
    from hdeeprm.common.manifest import command_line, write_manifest
    from hdeeprm.rl.experiment import ExperimentConfig
    from hdeeprm.rl.train import train

    config = _with_backfill(ExperimentConfig.load(args.experiment, episodes=args.episodes, algorithm=args.algorithm,
                                                  seed=args.seed, rollout_batch=args.rollout_batch,
                                                  episode_outputs=args.episode_outputs), args.backfill)
    out = args.out or os.path.join("runs", os.path.splitext(os.path.basename(args.experiment))[0])
    started = time.perf_counter()
    if args.overwrite:
        _remove_run(out)
    elif not args.resume:
        check_unused(Path(out))  # before a first run's compilation, not after it
    compiled, background = _compile_for(config, evaluating=not args.no_evaluate)
    try:
        summary = train(config, out, init=args.init, tensorboard=args.tensorboard, workers=args.workers,
                        engine=args.engine, address=args.address, resume=args.resume)
        print(f"trained {config.algorithm} for {config.episodes} episodes in {summary['wall_seconds']:.1f} s; "
              f"outputs in {out}")
        waited = 0.0
        if background is not None:
            compiled, waited = background.wait()
    finally:
        if background is not None:
            background.stop()
    evaluating = 0.0
    if not args.no_evaluate:
        if summary.get("validation_best") is not None:
            print(f"checkpoint chosen on the validation windows: {summary['checkpoint']} "
                  f"(mean objective {summary['validation_best']:.6g})")
        t0 = time.perf_counter()
        rows = evaluate(config, summary["checkpoint"], out_dir=out, progress=None)
        evaluating = time.perf_counter() - t0
        print_table(rows, config)
    total = time.perf_counter() - started
    parts = []
    if background is not None:
        parts.append(f"{compiled:.0f} s compiling the kernels beside the training (once per machine; "
                     f"{waited:.1f} s waited for)")
    elif compiled is not None:
        parts.append(f"{compiled:.0f} s compiling the kernels (once per machine)")
    parts += [f"{summary['wall_seconds']:.1f} s training"] + ([f"{evaluating:.1f} s evaluating"] if evaluating else [])
    setup = total - (waited if background is not None else compiled or 0.0) - summary["wall_seconds"] - evaluating
    print(f"time: {', '.join(parts)}, {setup:.1f} s loading and setting up; {total:.1f} s in all")
    write_manifest(out, command_line(args), {"experiment": args.experiment, "platform": config.platform,
                                             "workload": config.workload, "init": args.init},
                   {"seed": config.seed}, total, extra={"resumed": bool(args.resume)})
    return 0


def _compile_for(config, evaluating: bool):
    """Compile what the run will use, once per machine: (seconds compiling first or None,
    a BackgroundCompilation or None). An environment with a compiled path compiles before
    training; one without leaves the evaluation's kernels to a child process that compiles
    them during the training."""
    from hdeeprm.simulation.fastsim import compiled_on_disk

    env = config.make_env()
    training_compiled = env.uses_compiled_path
    env.close()
    if training_compiled or compiled_on_disk(("env",)) or not evaluating:
        return compile_first(lambda: play_once(config), parts=("env",)) if training_compiled else None, None
    return None, BackgroundCompilation(config)


def _remove_run(out: str) -> None:
    """--overwrite: the files a run wrote in ``out`` go (as ``hdeeprm clean`` removes them);
    files hdeeprm did not write stay."""
    from pathlib import Path

    from hdeeprm.analysis.runs import apply_clean, plan_clean
    from hdeeprm.rl.resume import used_by

    if not used_by(Path(out)):
        return
    plan = plan_clean(out)
    apply_clean(plan)
    kept = f"; kept {len(plan.kept)} entries hdeeprm did not write" if plan.kept else ""
    print(f"--overwrite: removed the {len(plan.remove)} files of the previous run in {out}{kept}")


def cmd_evaluate(args) -> int:
    from hdeeprm.analysis.evaluation import evaluate, print_table
    from hdeeprm.rl.experiment import ExperimentConfig

    config = _with_backfill(ExperimentConfig.load(args.experiment, eval_episodes=args.episodes, seed=args.seed),
                            args.backfill)
    compile_first(lambda: play_pairs_once(config), parts=("env",))
    rows = evaluate(config, args.model, out_dir=args.out, progress=None)
    print_table(rows, config)
    return 0
