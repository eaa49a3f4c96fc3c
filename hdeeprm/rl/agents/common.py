"""Pieces shared by the agents: returns, advantages, masking, networks, checkpoints.

Each is small, pure and tested on its own (tests/test_agents.py), so that the algorithms
read top to bottom without hiding their maths.
"""

from __future__ import annotations

import json
import os
import pickle
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from hdeeprm.common.atomic import atomic_path
from hdeeprm.common.errors import ConfigError, TrainingDiverged

CHECKPOINT_FORMAT = "hdeeprm-agent-checkpoint"
CHECKPOINT_VERSION = 1


def masked_logits(logits: torch.Tensor, mask: torch.Tensor | np.ndarray | None) -> torch.Tensor:
    """Logits with the masked-out actions (mask False) set to -inf, so that they get
    probability 0. A row whose mask is all False is left unchanged (better an unmasked
    choice than no distribution at all); no mask leaves everything unchanged."""
    if mask is None:
        return logits
    mask = torch.as_tensor(mask, dtype=torch.bool, device=logits.device).reshape(logits.shape)
    keep = mask | ~mask.any(dim=-1, keepdim=True)
    return torch.where(keep, logits, torch.full_like(logits, float("-inf")))


def mlp(in_size: int, hidden: int, out_size: int, layers: int) -> nn.Sequential:
    """Linear(in, H), LeakyReLU, then ``layers`` x (Linear(H, H), LeakyReLU), then
    Linear(H, out): the shape of the original HDeepRM example network (layers = 3)."""
    modules: list[nn.Module] = [nn.Linear(in_size, hidden), nn.LeakyReLU()]
    for _ in range(layers):
        modules += [nn.Linear(hidden, hidden), nn.LeakyReLU()]
    modules.append(nn.Linear(hidden, out_size))
    return nn.Sequential(*modules)


def save_checkpoint(path: str | os.PathLike, model: nn.Module, optimizer: torch.optim.Optimizer | None = None,
                    extra: dict[str, Any] | None = None) -> None:
    """Write the model's (and optimiser's) state and JSON-able metadata to ``path``.

    Atomic: the checkpoint is written to a temporary file in the same folder, flushed to
    disk, then renamed over ``path``, so an interrupted save leaves the previous checkpoint
    whole. The file holds only tensors and plain values (a torch.save of a dict of
    state_dicts), so it loads with ``weights_only=True``; the agent's generator state is kept
    so that a resumed run samples what an uninterrupted one would."""
    path = Path(path)
    not_finite = [name for name, tensor in model.state_dict().items()
                  if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all())]
    if not_finite:
        # A diverged update must not replace a good checkpoint with NaN weights.
        raise TrainingDiverged(f"{path}: not written: {len(not_finite)} parameter tensors are not finite "
                               f"({not_finite[0]}...): training diverged (try a lower lr or reward_scale); "
                               "the previous checkpoint, if any, is kept")
    extra = {} if extra is None else extra
    try:
        extra = json.loads(json.dumps(extra))
    except (TypeError, ValueError) as e:
        raise ConfigError(f"{path}: checkpoint metadata must be JSON-able: {e}") from None
    generator = getattr(model, "generator", None)
    payload = {
        "format": CHECKPOINT_FORMAT,
        "version": CHECKPOINT_VERSION,
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict() if optimizer is not None else None,
        "generator": generator.get_state() if isinstance(generator, torch.Generator) else None,
        "extra": extra,
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            torch.save(payload, f)
            f.flush()
            os.fsync(f.fileno())
    try:  # make the rename itself durable (POSIX); not possible everywhere, never fatal
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    except OSError:
        pass


#: What the original HDeepRM (0.3.x) saved with torch.save after each trained episode (-om).
ORIGINAL_CHECKPOINT_KEYS = {"model_state_dict", "optimizer_state_dict"}


def _load_original(path: Path, payload: dict, model: nn.Module,
                   optimizer: torch.optim.Optimizer | None) -> dict[str, Any]:
    """An original HDeepRM checkpoint: its state dicts are plain tensors, read with
    ``weights_only=True`` like ours. Its parameter names are those of the agent class that
    wrote it (the original's agent file, passed again with -a): another class is refused."""
    try:
        model.load_state_dict(payload["model_state_dict"])
        if optimizer is not None and payload["optimizer_state_dict"] is not None:
            optimizer.load_state_dict(payload["optimizer_state_dict"])
    except (RuntimeError, ValueError, KeyError, TypeError) as e:
        first = str(e).splitlines()[0] if str(e) else repr(e)
        raise ConfigError(f"{path}: an original HDeepRM checkpoint that does not fit this agent (give the agent "
                          f"file that wrote it with -a): {first}") from None
    return {"original_hdeeprm": True}


def load_checkpoint(path: str | os.PathLike, model: nn.Module,
                    optimizer: torch.optim.Optimizer | None = None) -> dict[str, Any]:
    """Restore a checkpoint written by :func:`save_checkpoint` into ``model`` (and
    ``optimizer``); returns its metadata. Loads with ``weights_only=True``: a file holding
    anything but tensors and plain values is refused rather than unpickled. The original
    HDeepRM's checkpoints (``{"model_state_dict", "optimizer_state_dict"}``) load too."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: checkpoint not found")
    try:
        payload = torch.load(path, weights_only=True, map_location="cpu")
    except pickle.UnpicklingError as e:
        raise ConfigError(f"{path}: not a plain HDeepRM checkpoint (it holds objects that are refused "
                          f"rather than unpickled, or is corrupt): {str(e).splitlines()[0] if str(e) else e!r}") from None
    except Exception as e:  # truncated or foreign file: torch raises various types
        raise ConfigError(f"{path}: unreadable checkpoint (corrupt or truncated?): {type(e).__name__}: {e}") from None
    if isinstance(payload, dict) and set(payload) == ORIGINAL_CHECKPOINT_KEYS:
        return _load_original(path, payload, model, optimizer)
    if not isinstance(payload, dict) or payload.get("format") != CHECKPOINT_FORMAT:
        raise ConfigError(f"{path}: not an HDeepRM agent checkpoint (expected a '{CHECKPOINT_FORMAT}' file, or "
                          f"the original HDeepRM's {{model_state_dict, optimizer_state_dict}})")
    if payload.get("version") != CHECKPOINT_VERSION:
        raise ConfigError(f"{path}: checkpoint version {payload.get('version')!r}: expected {CHECKPOINT_VERSION}")
    try:
        model.load_state_dict(payload["model"])
        if optimizer is not None:
            if payload.get("optimizer") is None:
                raise ConfigError(f"{path}: the checkpoint holds no optimiser state")
            optimizer.load_state_dict(payload["optimizer"])
    except (RuntimeError, ValueError, KeyError) as e:
        raise ConfigError(f"{path}: the checkpoint does not fit this agent: {e}") from None
    generator_state = payload.get("generator")
    if generator_state is not None and hasattr(model, "generator"):
        generator = torch.Generator()
        generator.set_state(generator_state)
        model.generator = generator
    return dict(payload.get("extra") or {})
