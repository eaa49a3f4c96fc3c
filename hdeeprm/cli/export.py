"""``hdeeprm export``: a trained policy as an ONNX (or TorchScript) file, checked against torch,
for schedulers outside Python's training loop (``hdeeprm.rl.export``; examples/onnx_scheduler.py)."""

from __future__ import annotations

import os

from hdeeprm.common.errors import ConfigError


def add_subcommands(sub) -> dict:
    """Add export to the ``hdeeprm`` subparsers; returns {name: handler}."""
    ex = sub.add_parser("export", help="export an agent checkpoint's policy to ONNX (or TorchScript), checked "
                                       "against the torch agent")
    ex.add_argument("experiment", help="experiment JSON, or a bundled experiment name (quickstart)")
    ex.add_argument("--model", required=True, metavar="CHECKPOINT", help="checkpoint written by train")
    ex.add_argument("--out", required=True, help="file to write (policy.onnx)")
    ex.add_argument("--format", choices=("onnx", "torchscript"), default="onnx",
                    help="ONNX (default; needs the onnx package) or TorchScript (torch.jit, for libtorch)")
    ex.add_argument("--check-decisions", type=int, default=256, metavar="K",
                    help="decisions of the evaluation windows on which the exported model must choose what the "
                         "torch agent chooses, before the file is written (default 256; 0: no check)")
    ex.add_argument("--overwrite", action="store_true", help="replace an existing --out file")
    return {"export": cmd_export}


def cmd_export(args) -> int:
    from hdeeprm.rl.experiment import ExperimentConfig
    from hdeeprm.rl.export import export_policy

    if args.check_decisions < 0:
        raise ConfigError(f"--check-decisions {args.check_decisions}: expected an integer >= 0")
    config = ExperimentConfig.load(args.experiment)
    if args.check_decisions:
        from hdeeprm.cli.compilation import compile_first, play_pairs_once

        compile_first(lambda: play_pairs_once(config), parts=("env",))
    name = os.path.splitext(os.path.basename(args.experiment))[0]
    report = export_policy(config, args.model, args.out, fmt=args.format, check_decisions=args.check_decisions,
                           overwrite=args.overwrite, experiment=name)
    meta = report.metadata
    shape = ", ".join(["B"] + meta["observation_shape"].strip("[]").split(", "))
    print(f"exported the {meta['algorithm']} policy of {args.model} ({name}) to {report.path} "
          f"({args.format}, {report.bytes} bytes): observation float32 ({shape}) and action_mask bool "
          f"(B, {meta['action_count']}) -> logits, probs, action")
    if report.verification is None:
        print("not checked against the torch agent (--check-decisions 0)")
    else:
        print(f"checked: {report.verification.summary()}")
    return 0
