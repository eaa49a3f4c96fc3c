"""Trained policies outside Python's training loop: ONNX (and TorchScript) export, checked.

``export_policy(config, checkpoint, out)`` writes the policy of a checkpoint of experiment
``config`` (algorithms ppo, kernel_ppo, reinforce and actor_critic) as one graph:

  inputs   observation   float32 (B, *observation shape)   B any; the env's observations as they are
           action_mask   bool    (B, A)                     info["action_mask"]
  outputs  logits        float32 (B, A)   the actor's logits, masked-out actions at -inf (a row
                                          whose mask is all False is left unmasked)
           probs         float32 (B, A)   the distribution the agent samples from when training
           action        int64   (B,)     the greedy action, computed as the agent computes it
                                          (``hdeeprm evaluate``): argmax of ``probs``

so that a caller may take the greedy action, the argmax of ``logits`` (the same choice) or
sample from ``probs``, and needs no softmax of its own. The critic (value network) is left out.

What a caller needs to know is in the file itself (ONNX ``metadata_props``, readable with
onnxruntime's ``get_modelmeta().custom_metadata_map``; TorchScript: the extra file
``hdeeprm.json``), see :func:`policy_metadata`: observation shape and layout name, action
count, action space kind and action names, the algorithm, the experiment's name, resolved
configuration and its SHA-256, the checkpoint's SHA-256 and the hdeeprm version.

Before the file is put in place, :func:`verify` plays the experiment's evaluation windows
greedily with the torch agent for ``check_decisions`` decisions (as ``hdeeprm evaluate`` plays
it), runs the exported model on the recorded observations and masks, and requires the same
actions, and logits within ``LOGIT_TOLERANCE`` (the same -inf places); a model that differs
is not written.

ONNX export uses torch's TorchScript-based exporter (``dynamo=False``), which needs the
``onnx`` package only (the dynamo exporter would need onnxscript too); opset 17, so that
onnxruntime 1.14 and later run it. Verification needs ``onnxruntime``. Both are in the
``onnx`` extra: ``pip install -c constraints.txt -e '.[onnx]'``.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from hdeeprm.common.atomic import atomic_path
from hdeeprm.common.errors import ConfigError

FORMATS = ("onnx", "torchscript")
METADATA_FORMAT = "hdeeprm-policy"
METADATA_VERSION = 1
TORCHSCRIPT_METADATA = "hdeeprm.json"  # the TorchScript file's extra file holding the metadata
OPSET = 17
INPUTS = ("observation", "action_mask")
OUTPUTS = ("logits", "probs", "action")
LOGIT_TOLERANCE = 1e-4  # |onnx - torch| <= tol * (1 + |torch|), finite logits
DEFAULT_CHECK_DECISIONS = 256
INSTALL_HINT = "pip install -c constraints.txt -e '.[onnx]'"


class PolicyGraph(nn.Module):
    """(observation (B, ...), action_mask (B, A) bool) -> (logits, probs, action): an agent's
    actor as its greedy ``decide`` uses it, batched. ``style``: "masked_softmax" (PPO, kernel
    PPO: softmax of the masked logits) or "masked_probs" (reinforce, actor-critic: softmax,
    times the mask unless that leaves nothing, normalised)."""

    def __init__(self, actor: nn.Module, style: str):
        super().__init__()
        if style not in ("masked_softmax", "masked_probs"):
            raise ValueError(f"style {style!r}")
        self.actor = actor
        self.style = style

    def forward(self, observation: torch.Tensor, action_mask: torch.Tensor):
        logits = self.actor(observation.flatten(1))
        mask = action_mask.to(torch.bool)
        keep = mask | ~mask.any(dim=-1, keepdim=True)
        masked = torch.where(keep, logits, torch.full_like(logits, float("-inf")))
        if self.style == "masked_softmax":
            probs = F.softmax(masked, dim=-1)
        else:
            unmasked = F.softmax(logits, dim=-1)
            kept = unmasked * mask.to(unmasked.dtype)
            probs = torch.where(kept.sum(dim=-1, keepdim=True) > 0, kept, unmasked)
            probs = probs / probs.sum(dim=-1, keepdim=True)
        return masked, probs, torch.argmax(probs, dim=-1)


def policy_graph(agent) -> PolicyGraph:
    """The exportable policy of a built-in learning agent (its actor, no critic)."""
    from hdeeprm.rl.agents import ActorCriticAgent, PPOAgent, ReinforceAgent

    if isinstance(agent, PPOAgent):  # kernel_ppo too
        return PolicyGraph(agent.actor, "masked_softmax")
    if isinstance(agent, ActorCriticAgent):
        return PolicyGraph(nn.Sequential(agent.trunk, agent.actor), "masked_probs")
    if isinstance(agent, ReinforceAgent):
        return PolicyGraph(agent.policy, "masked_probs")
    raise ConfigError(f"{type(agent).__name__}: no exportable policy network (expected ppo, kernel_ppo, "
                      "reinforce or actor_critic)")


# ---------------------------------------------------------------------------- agent


def experiment_sha256(config) -> str:
    """SHA-256 of the resolved experiment, as ``hdeeprm train`` writes it to experiment.json."""
    text = json.dumps(config.as_dict(), sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def file_sha256(path: str | os.PathLike) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def load_agent(config, checkpoint: str | os.PathLike, env=None):
    """The experiment's agent with the checkpoint's weights, greedy and not training (as
    ``hdeeprm evaluate`` builds it); a checkpoint of another experiment or size is refused
    in one line."""
    from hdeeprm.rl.agents import ALGORITHMS, build_agent
    from hdeeprm.rl.agents.common import load_checkpoint
    from hdeeprm.rl.train import observation_size

    own_env = env is None
    env = config.make_env("test", episode_jobs=config.evaluation_jobs) if own_env else env
    try:
        nb_actions, size = int(env.action_space.n), observation_size(env)
    finally:
        if own_env:
            env.close()
    agent = build_agent(ALGORITHMS[config.algorithm], config.gamma, config.hidden, nb_actions, size,
                        seed=config.seed)
    try:
        extra = load_checkpoint(checkpoint, agent)
    except ConfigError as e:
        lines = [line.strip() for line in str(e).splitlines() if line.strip()]
        if len(lines) <= 1 and "does not fit" not in str(e):
            raise
        detail = next((line for line in lines[1:] if line.startswith(("size mismatch", "Missing", "Unexpected"))),
                      lines[-1]).rstrip(".")
        detail = detail if len(detail) <= 160 else detail[:157] + "..."
        raise ConfigError(f"{checkpoint}: does not fit this experiment ({config.algorithm}, hidden {config.hidden}, "
                          f"{size} observation values, {nb_actions} actions): a checkpoint of another experiment "
                          f"or size? ({detail})") from None
    trained = extra.get("algorithm")
    if trained is not None and trained != config.algorithm:
        raise ConfigError(f"{checkpoint}: a {trained} checkpoint; the experiment's algorithm is {config.algorithm}")
    agent.train(False)
    agent.greedy = True
    return agent


# ---------------------------------------------------------------------------- metadata


def policy_metadata(config, env, checkpoint: str | os.PathLike | None, experiment: str | None) -> dict[str, str]:
    """What a caller needs, as strings (ONNX metadata_props are string pairs; lists and
    objects are JSON)."""
    from hdeeprm import __version__

    shape = [int(n) for n in env.observation_space.shape]
    return {
        "format": METADATA_FORMAT,
        "format_version": str(METADATA_VERSION),
        "hdeeprm_version": __version__,
        "experiment": experiment or "",
        "experiment_sha256": experiment_sha256(config),
        "experiment_config": json.dumps(config.as_dict(), sort_keys=True, default=str),
        "checkpoint_sha256": file_sha256(checkpoint) if checkpoint is not None else "",
        "algorithm": config.algorithm,
        "observation": str(config.observation),
        "observation_shape": json.dumps(shape),
        "observation_size": str(int(np.prod(shape))),
        "action_space": str(config.action_space),
        "action_count": str(int(env.action_space.n)),
        "action_names": json.dumps(env.action_names()),
        "inputs": "observation: float32 (batch, *observation_shape); action_mask: bool (batch, action_count)",
        "outputs": ("logits: float32 (batch, action_count), masked-out actions at -inf; probs: float32 "
                    "(batch, action_count); action: int64 (batch,), the greedy action (argmax of probs)"),
    }


def read_metadata(path: str | os.PathLike) -> dict[str, str]:
    """The metadata of an exported policy (ONNX with onnxruntime, or TorchScript)."""
    path = Path(path)
    if _is_torchscript(path):
        extra = {TORCHSCRIPT_METADATA: ""}
        _load_torchscript(path, extra)
        return json.loads(extra[TORCHSCRIPT_METADATA] or "{}")
    ort = _onnxruntime()
    return dict(ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).get_modelmeta()
                .custom_metadata_map)


def _is_torchscript(path: Path) -> bool:
    with open(path, "rb") as f:
        return f.read(4) == b"PK\x03\x04"  # a zip archive; an ONNX model is a protobuf


# ---------------------------------------------------------------------------- export


@dataclass
class Verification:
    """The exported model against the torch agent on recorded decisions."""

    decisions: int  # compared
    asked: int
    runtime: str  # what ran the exported model
    action_mismatches: int  # its action output against the torch agent's greedy action
    argmax_mismatches: int  # argmax of its logits against the torch agent's greedy action
    masked_mismatches: int  # rows whose -inf places differ from torch's
    max_logit_diff: float  # over the finite logits
    logits_close: bool  # every finite logit within LOGIT_TOLERANCE * (1 + |torch's|)
    graph_mismatches: int = 0  # the eager graph's action against the agent's (a bug if > 0)
    windows: int = 0

    @property
    def ok(self) -> bool:
        return (self.action_mismatches == 0 and self.argmax_mismatches == 0 and self.masked_mismatches == 0
                and self.graph_mismatches == 0 and self.logits_close)

    def summary(self) -> str:
        fewer = (f" (the evaluation windows hold no more of the {self.asked} asked)"
                 if self.decisions < self.asked else "")
        same = ("all equal" if self.action_mismatches == self.argmax_mismatches == self.graph_mismatches == 0
                else f"{max(self.action_mismatches, self.argmax_mismatches, self.graph_mismatches)} differ")
        masks = "" if self.masked_mismatches == 0 else f"; {self.masked_mismatches} rows masked differently"
        close = "" if self.logits_close else f" (over the tolerance {LOGIT_TOLERANCE:g} x (1 + |logit|))"
        return (f"{self.decisions} decisions compared{fewer} on {self.windows} evaluation windows, {self.runtime} "
                f"against torch: actions {same}; max |logit difference| {self.max_logit_diff:.3g}{close}{masks}")


@dataclass
class ExportReport:
    path: Path
    format: str
    metadata: dict[str, str]
    verification: Verification | None = None
    bytes: int = 0


def record_decisions(config, agent, count: int, env=None) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """Play the experiment's evaluation windows greedily with ``agent`` (as ``hdeeprm
    evaluate`` does), ``count`` decisions at most: (observations (N, ...), masks (N, A),
    the agent's actions (N,), windows played)."""
    own_env = env is None
    env = config.make_env("test", episode_jobs=config.evaluation_jobs) if own_env else env
    observations, masks, actions = [], [], []
    windows = 0
    try:
        for seed, options in config.evaluation_windows():
            if len(actions) >= count:
                break
            windows += 1
            agent.reset_episode()
            observation, info = env.reset(seed=seed, options=options)
            done = False
            while not done and len(actions) < count:
                mask = np.asarray(info["action_mask"], dtype=bool)
                action = int(agent.decide(observation, mask))
                observations.append(np.asarray(observation, dtype=np.float32))
                masks.append(mask)
                actions.append(action)
                observation, _, terminated, truncated, info = env.step(action)
                done = terminated or truncated
    finally:
        agent.reset_episode()
        if own_env:
            env.close()
    shape = tuple(env.observation_space.shape)
    n_actions = int(env.action_space.n)
    return (np.asarray(observations, dtype=np.float32).reshape((len(actions), *shape)),
            np.asarray(masks, dtype=bool).reshape(len(actions), n_actions),
            np.asarray(actions, dtype=np.int64), windows)


def run_exported(path: str | os.PathLike, observations: np.ndarray, masks: np.ndarray) -> tuple[dict, str]:
    """The exported model's outputs on a batch: ({logits, probs, action}, runtime name)."""
    path = Path(path)
    if _is_torchscript(path):
        module = _load_torchscript(path)
        with torch.no_grad():
            outputs = module(torch.from_numpy(observations), torch.from_numpy(masks))
        return {name: out.numpy() for name, out in zip(OUTPUTS, outputs)}, f"torch.jit (torch {torch.__version__})"
    ort = _onnxruntime()
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    outputs = session.run(list(OUTPUTS), {"observation": observations, "action_mask": masks})
    return dict(zip(OUTPUTS, outputs)), f"onnxruntime {ort.__version__}"


def verify(path: str | os.PathLike, config, agent, count: int = DEFAULT_CHECK_DECISIONS, env=None,
           recorded: tuple | None = None) -> Verification:
    """Compare the exported model at ``path`` with ``agent`` (greedy, torch) on ``count``
    decisions of the experiment's evaluation windows (``recorded``: those decisions already
    played, as :func:`record_decisions` returns them)."""
    observations, masks, actions, windows = recorded or record_decisions(config, agent, count, env)
    if len(actions) == 0:
        raise ConfigError("verification: the evaluation windows hold no decision to compare")
    graph = policy_graph(agent).eval()
    with torch.no_grad():
        expected = [t.numpy() for t in graph(torch.from_numpy(observations), torch.from_numpy(masks))]
    got, runtime = run_exported(path, observations, masks)
    logits, torch_logits = np.asarray(got["logits"]), expected[0]
    finite = np.isfinite(torch_logits)
    masked_rows = int(np.sum(np.any(np.isfinite(logits) != finite, axis=-1)))
    same_places = finite & np.isfinite(logits)
    diff = np.abs(logits[same_places].astype(np.float64) - torch_logits[same_places].astype(np.float64))
    scale = 1.0 + np.abs(torch_logits[same_places].astype(np.float64))
    max_diff = float(diff.max()) if diff.size else 0.0
    relative = float((diff / scale).max()) if diff.size else 0.0
    return Verification(
        decisions=len(actions), asked=count, runtime=runtime,
        action_mismatches=int(np.sum(np.asarray(got["action"]).reshape(-1) != actions)),
        argmax_mismatches=int(np.sum(np.argmax(logits, axis=-1) != actions)),
        masked_mismatches=masked_rows, max_logit_diff=max_diff, logits_close=relative <= LOGIT_TOLERANCE,
        graph_mismatches=int(np.sum(expected[2] != actions)), windows=windows)


def export_policy(config, checkpoint: str | os.PathLike, out: str | os.PathLike, *, fmt: str = "onnx",
                  check_decisions: int = DEFAULT_CHECK_DECISIONS, overwrite: bool = False,
                  experiment: str | None = None) -> ExportReport:
    """Export ``checkpoint``'s policy (experiment ``config``) to ``out`` (``fmt``: onnx or
    torchscript), with its metadata; unless ``check_decisions`` is 0, verify it against the
    torch agent first (:func:`verify`) and write nothing if they differ (ConfigError). An
    existing ``out`` is refused unless ``overwrite``. ``experiment``: the experiment's name,
    recorded in the metadata (``hdeeprm export`` gives the file's stem or the bundled name)."""
    if fmt not in FORMATS:
        raise ConfigError(f"format {fmt!r}: expected one of {', '.join(FORMATS)}")
    if isinstance(check_decisions, bool) or not isinstance(check_decisions, int) or check_decisions < 0:
        raise ConfigError(f"check_decisions {check_decisions!r}: expected an integer >= 0")
    out = Path(out)
    if not str(out).strip():
        raise ConfigError("--out '': empty; expected the file to write")
    if out.is_dir():
        raise ConfigError(f"{out}: a folder; --out names the file to write")
    if out.exists() and not overwrite:
        raise ConfigError(f"{out}: exists already: replace it with --overwrite, or choose another --out")
    if fmt == "onnx":
        _onnx()  # before anything is played: say what is missing in one line
        if check_decisions:
            _onnxruntime()
    env = config.make_env("test", episode_jobs=config.evaluation_jobs)
    try:
        agent = load_agent(config, checkpoint, env)
        metadata = policy_metadata(config, env, checkpoint, experiment)
        shape = tuple(env.observation_space.shape)
        nb_actions = int(env.action_space.n)
        graph = policy_graph(agent).eval()
        data = _onnx_bytes(graph, shape, nb_actions, metadata) if fmt == "onnx" else \
            _torchscript_bytes(graph, shape, nb_actions, metadata)
        out.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(out) as tmp:  # verified before it replaces anything
            tmp.write_bytes(data)
            verification = None
            if check_decisions:
                verification = verify(str(tmp), config, agent, check_decisions, env)
                if not verification.ok:
                    raise ConfigError(f"{out}: not written: the exported policy differs from torch's: "
                                      f"{verification.summary()}")
    finally:
        env.close()
    return ExportReport(out, fmt, metadata, verification, len(data))


def _dummy_inputs(shape: tuple, nb_actions: int) -> tuple[torch.Tensor, torch.Tensor]:
    return torch.zeros((2, *shape), dtype=torch.float32), torch.ones((2, nb_actions), dtype=torch.bool)


def _onnx_bytes(graph: PolicyGraph, shape: tuple, nb_actions: int, metadata: dict[str, str]) -> bytes:
    onnx = _onnx()
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the TorchScript-based exporter's deprecation notice
        torch.onnx.export(graph, _dummy_inputs(shape, nb_actions), buffer, dynamo=False, opset_version=OPSET,
                          input_names=list(INPUTS), output_names=list(OUTPUTS),
                          dynamic_axes={"observation": {0: "batch"}, "action_mask": {0: "batch"},
                                        "logits": {0: "batch"}, "probs": {0: "batch"}, "action": {0: "batch"}})
    model = onnx.load_from_string(buffer.getvalue())
    for key, value in metadata.items():
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value
    model.producer_name = "hdeeprm"
    model.producer_version = metadata["hdeeprm_version"]
    model.doc_string = (f"HDeepRM {metadata['algorithm']} policy of experiment {metadata['experiment'] or '?'}: "
                        f"{metadata['inputs']} -> {metadata['outputs']}")
    onnx.checker.check_model(model)
    return model.SerializeToString()


def _torchscript_bytes(graph: PolicyGraph, shape: tuple, nb_actions: int, metadata: dict[str, str]) -> bytes:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch.jit's deprecation notices
        traced = torch.jit.trace(graph, _dummy_inputs(shape, nb_actions), check_trace=False)
        buffer = io.BytesIO()
        torch.jit.save(traced, buffer, _extra_files={TORCHSCRIPT_METADATA: json.dumps(metadata, sort_keys=True)})
    return buffer.getvalue()


def _load_torchscript(path: Path, extra_files: dict | None = None):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch.jit's deprecation notice
        return torch.jit.load(str(path), map_location="cpu", _extra_files=extra_files or {})


def _onnx():
    try:
        import onnx
    except ModuleNotFoundError:
        raise ConfigError(f"exporting to ONNX needs the onnx package; {INSTALL_HINT}") from None
    return onnx


def _onnxruntime():
    try:
        import onnxruntime
    except ModuleNotFoundError:
        raise ConfigError(f"running an ONNX policy needs onnxruntime; {INSTALL_HINT}") from None
    return onnxruntime
