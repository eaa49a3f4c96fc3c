"""An external scheduler: a trained policy, exported to ONNX, schedules a cluster without torch.

    hdeeprm train quickstart --out runs/quickstart
    hdeeprm export quickstart --model runs/quickstart/model.pt --out policy.onnx
    python examples/onnx_scheduler.py policy.onnx                    # on the embedded engine
    python examples/onnx_scheduler.py policy.onnx --backend batsim   # on real Batsim, over ZeroMQ

The scheduler is a plain function of the observation and the action mask: onnxruntime runs
the exported network, and the action is the argmax of its masked logits (the greedy action
that ``hdeeprm evaluate`` takes; the model's ``action`` output is the same choice). Nothing
here imports torch: the environment is HeteroEnv (numpy, and pyzmq for Batsim), and the
policy file carries the experiment it was trained for (its metadata), so that the environment
built here is the one the policy expects: the experiment's platform, workload and
observation, on the evaluation window ``--window`` of its test part, as ``hdeeprm evaluate``
plays it. The episode's metrics are printed (``--json``: as one JSON object).

Needs onnxruntime: ``pip install -c constraints.txt -e '.[onnx]'``; with ``--backend batsim``,
pyzmq and the ``batsim`` binary on PATH (or ``--batsim PATH``).
"""

from __future__ import annotations

import argparse
import json
import sys

import numpy as np
import onnxruntime

from hdeeprm.rl.experiment import ExperimentConfig
from hdeeprm.simulation.metrics import headline_metrics


def load_policy(path: str) -> tuple[onnxruntime.InferenceSession, dict[str, str]]:
    """The ONNX session and the metadata hdeeprm export wrote into the file."""
    session = onnxruntime.InferenceSession(path, providers=["CPUExecutionProvider"])
    metadata = dict(session.get_modelmeta().custom_metadata_map)
    if metadata.get("format") != "hdeeprm-policy":
        sys.exit(f"{path}: not a policy written by hdeeprm export")
    return session, metadata


def experiment_of(metadata: dict[str, str]) -> ExperimentConfig:
    """The experiment the policy was trained for, resolved as it was at export. Its
    ``pretrain`` block (behaviour cloning before training) does not shape the environment,
    and checking it would import the trainer, hence torch: it is left out."""
    fields = json.loads(metadata["experiment_config"])
    fields["pretrain"] = None
    return ExperimentConfig(**fields)


def scheduler(session: onnxruntime.InferenceSession):
    """decide(observation, mask) -> action: argmax of the policy's masked logits."""

    def decide(observation: np.ndarray, mask: np.ndarray) -> int:
        (logits,) = session.run(["logits"], {"observation": observation[None].astype(np.float32),
                                             "action_mask": mask[None].astype(bool)})
        return int(np.argmax(logits[0]))

    return decide


def run(policy: str, window: int = 0, backend: str = "embedded", batsim: str | None = None) -> dict:
    """One episode of the policy on the experiment's evaluation window ``window``."""
    session, metadata = load_policy(policy)
    config = experiment_of(metadata)
    decide = scheduler(session)
    windows = config.evaluation_windows()
    if not 0 <= window < len(windows):
        sys.exit(f"--window {window}: the experiment has evaluation windows 0 to {len(windows) - 1}")
    seed, options = windows[window]
    env = config.make_env("test", episode_jobs=config.evaluation_jobs, backend=backend,
                          backend_options={"batsim": batsim} if batsim else None)
    try:
        observation, info = env.reset(seed=seed, options=options)
        actions, total, done, terminated = [], 0.0, False, False
        while not done:
            action = decide(observation, np.asarray(info["action_mask"]))
            observation, reward, terminated, truncated, info = env.step(action)
            actions.append(action)
            total += reward
            done = terminated or truncated
        metrics = headline_metrics(env.result()).as_dict() if terminated else dict(info["metrics"])
    finally:
        env.close()
    return {"experiment": metadata["experiment"], "algorithm": metadata["algorithm"], "window": window,
            "backend": backend, "decisions": len(actions), "return": total,
            "objective": -total / config.reward_scale, "metrics": metrics, "actions": actions,
            "torch_imported": "torch" in sys.modules}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("policy", help="policy.onnx written by hdeeprm export")
    parser.add_argument("--window", type=int, default=0, help="evaluation window of the experiment (default 0)")
    parser.add_argument("--backend", choices=("embedded", "batsim"), default="embedded",
                        help="the embedded engine (default) or real Batsim over ZeroMQ")
    parser.add_argument("--batsim", help="the batsim executable (default: batsim on PATH)")
    parser.add_argument("--json", action="store_true", help="print the result as one JSON object")
    args = parser.parse_args(argv)
    result = run(args.policy, args.window, args.backend, args.batsim)
    if args.json:
        print(json.dumps(result))
        return 0
    print(f"{result['algorithm']} policy of {result['experiment']} on evaluation window {result['window']} "
          f"({result['backend']}): {result['decisions']} decisions, objective {result['objective']:.6g}")
    for name, value in result["metrics"].items():
        print(f"  {name:24s} {value:.6g}" if isinstance(value, float) else f"  {name:24s} {value}")
    print(f"torch imported: {'yes' if result['torch_imported'] else 'no'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
