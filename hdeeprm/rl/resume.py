"""A training run's folder: refusing to mix two runs in one, and continuing a stopped run.

For every update, training appends to its logs first and replaces its checkpoint
(``model.pt``, atomically) after, and the checkpoint records how many lines each log held
then. Wherever a run is stopped (Ctrl-C, SIGTERM, kill -9, power loss after the last
checkpoint reached the disk), the folder holds one complete checkpoint and logs at least as
far. Resuming cuts the logs back to the checkpoint's record, removes the temporary files of
an interrupted save, and continues with the checkpoint's weights, optimiser state and
generator state. Every seed of episode k derives from the root seed and k alone, so the
continued run writes what the uninterrupted run would have written.
"""

from __future__ import annotations

import os
from pathlib import Path

from hdeeprm.common.errors import ConfigError
from hdeeprm.common.jsonfile import read_json_object

EXPERIMENT_FILE = "experiment.json"
CHECKPOINT_FILE = "model.pt"
BEST_FILE = "best.pt"

#: What a training run writes into its folder (besides ``episode_<k>/``): one of these in
#: ``--out`` means the folder holds a run already.
TRAINING_FILES = (EXPERIMENT_FILE, CHECKPOINT_FILE, BEST_FILE, "pretrain.json", "validation.log",
                  "rewards.log", "makespans.log", "losses.log", "actions.log", "probs.json")

#: Temporary files of an interrupted save (save_checkpoint's, and probs.json's).
TEMPORARY_PATTERNS = (f".{CHECKPOINT_FILE}.*.tmp", f".{BEST_FILE}.*.tmp", "probs.json.tmp", f".{EXPERIMENT_FILE}.tmp")


def used_by(out: Path) -> list[str]:
    """Names of the training files (and episode folders) already in ``out``."""
    if not out.is_dir():
        return []
    found = [name for name in TRAINING_FILES if os.path.lexists(out / name)]
    found += sorted(p.name for p in out.glob("episode_*") if p.name[len("episode_"):].isdigit())
    return found


def check_unused(out: Path) -> None:
    """A new run's folder: none yet, or one that holds no training run (which would be
    mixed with the new one)."""
    if out.exists() and not out.is_dir():
        raise ConfigError(f"{out}: not a folder (--out must name a folder)")
    found = used_by(out)
    if found:
        shown = ", ".join(found[:4]) + (", ..." if len(found) > 4 else "")
        raise ConfigError(f"{out}: holds a training run already ({shown}): continue it with --resume, "
                          "replace it with --overwrite, or choose another --out")


def check_resumable(out: Path, experiment: dict, defaults: dict | None = None) -> None:
    """``out`` holds a run of this same experiment with at least one complete update; then
    remove what an interrupted save left behind. ``defaults``: each setting's default value; a
    setting the saved run does not have (started by a version without it) counts as its
    default, which is how that version ran."""
    saved = saved_experiment(out)
    if saved is None or not (out / CHECKPOINT_FILE).is_file():
        what = "no training run" if saved is None else "no complete update yet (no model.pt)"
        raise ConfigError(f"{out}: nothing to resume: {what}; start it with --overwrite, or without --resume")
    mine = _normalised(experiment)
    missing = _normalised({key: value for key, value in (defaults or {}).items() if key not in saved})
    saved = {**missing, **saved}
    for key in sorted(set(saved) | set(mine)):
        if saved.get(key) != mine.get(key):
            raise ConfigError(f"{out / EXPERIMENT_FILE}: the run was started with {key} = {saved.get(key)!r}, "
                              f"not {mine.get(key)!r}: resume it with the same experiment and options")
    for pattern in TEMPORARY_PATTERNS:
        for path in out.glob(pattern):
            path.unlink()  # a link is removed, never followed


def write_experiment(out: Path, experiment: dict) -> None:
    """``out/experiment.json``, written whole or not at all."""
    out.mkdir(parents=True, exist_ok=True)
    path = out / EXPERIMENT_FILE
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(_experiment_text(experiment))
    os.replace(tmp, path)


def saved_experiment(out: Path) -> dict | None:
    """The ``experiment.json`` of the run in ``out``, or None."""
    path = out / EXPERIMENT_FILE
    return read_json_object(path) if path.is_file() and not path.is_symlink() else None


def resume_point(out: Path, agent, optimizer) -> dict:
    """Load ``out/model.pt`` into ``agent`` and ``optimizer`` (with the generator state) and
    return its metadata; it must record how far the logs had got."""
    from hdeeprm.rl.agents.common import load_checkpoint

    path = out / CHECKPOINT_FILE
    extra = load_checkpoint(path, agent, optimizer)
    episode = extra.get("episode")
    if isinstance(episode, bool) or not isinstance(episode, int) or episode < 0 \
            or not isinstance(extra.get("progress"), dict):
        raise ConfigError(f"{path}: the checkpoint does not record where the run stopped (written by an "
                          "older hdeeprm, or by evaluate?); cannot resume: train again with --overwrite")
    return extra


NEWLINE = b"\n"


def truncate_lines(path: Path, count: int) -> None:
    """Keep the first ``count`` lines of ``path`` (no file when ``count`` is 0); a file with
    fewer complete lines than that was changed since, and is refused."""
    if count == 0:
        if os.path.lexists(path):
            path.unlink()
        return
    if path.is_symlink() or not path.is_file():
        raise ConfigError(f"{path}: missing, but the checkpoint was written after {count} lines of it; cannot resume")
    data = path.read_bytes()
    end = -1
    for _ in range(count):
        end = data.find(NEWLINE, end + 1)
        if end < 0:
            raise ConfigError(f"{path}: {data.count(NEWLINE)} complete lines, but the "
                              f"checkpoint was written after {count}: the file was changed; cannot resume")
    if end + 1 < len(data):
        with open(path, "r+b") as f:
            f.truncate(end + 1)


def _normalised(experiment: dict) -> dict:
    import json

    return json.loads(_experiment_text(experiment))


def _experiment_text(experiment: dict) -> str:
    import json

    return json.dumps(experiment, indent=2) + "\n"
