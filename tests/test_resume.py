"""Training stopped at any moment continues where it stopped, and gives the uninterrupted run."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from importlib import resources
from pathlib import Path

import pytest
import torch

import hdeeprm.rl.agents.common as agents_common
from hdeeprm.common.errors import ConfigError
from hdeeprm.rl.experiment import ExperimentConfig
from hdeeprm.rl.train import train

TRACE = str(resources.files("hdeeprm") / "data" / "traces" / "kth-sp2-head.swf.gz")
BASE = {"platform": "quickstart", "workload": TRACE, "nb_jobs": 300, "episode_jobs": 30, "observation": "small",
        "reward_scale": 0.01, "hidden": 16, "episodes": 5, "seed": 11, "validation_every": 2,
        "split": {"train": [0, 0.6], "validation": [0.6, 0.7], "test": [0.7, 1]}}
LOGS = ("rewards.log", "makespans.log", "losses.log", "actions.log", "probs.json", "validation.log",
        "experiment.json", "episode_0/out_jobs.csv", "episode_4/out_jobs.csv")

#: (how training runs, experiment fields, train() arguments)
MODES = {
    "sequential": ({"algorithm": "ppo"}, {}),
    "batched": ({"algorithm": "actor_critic", "rollout_batch": 2}, {"workers": 1}),
    "vectorised": ({"algorithm": "ppo", "vectorised": True, "rollout_batch": 2}, {}),
}


def config(**fields) -> ExperimentConfig:
    return ExperimentConfig(**{**BASE, **fields})


class Stop(BaseException):
    """Stands for a kill: raised where no handler of the code under test catches it."""


def stop_before_checkpoint(monkeypatch, after: int) -> None:
    """The (after+1)-th save of model.pt never happens: the run stops with its logs (and
    validation) one update ahead of its checkpoint, as a kill there leaves it. It also leaves
    what a kill during a save and during a log write leave: a temporary checkpoint file and
    a half-written line."""
    real, saves = agents_common.save_checkpoint, []

    def save(path, model, optimizer=None, extra=None):
        path = Path(path)
        if path.name == "model.pt":
            saves.append(path)
            if len(saves) > after:
                (path.parent / ".model.pt.k1ll3d.tmp").write_bytes(b"PK\x03\x04half a checkpoint")
                with open(path.parent / "actions.log", "a") as f:
                    f.write("1")  # no newline: cut off mid-line
                raise Stop
        real(path, model, optimizer, extra)

    monkeypatch.setattr(agents_common, "save_checkpoint", save)


def same_outputs(a: Path, b: Path) -> None:
    for name in LOGS:
        assert (a / name).read_bytes() == (b / name).read_bytes(), name
    wa, wb = (torch.load(p / "model.pt", weights_only=True) for p in (a, b))
    assert wa["extra"] == wb["extra"]
    assert all(torch.equal(wa["model"][k], wb["model"][k]) for k in wa["model"])
    assert torch.equal(wa["generator"], wb["generator"])
    assert str(wa["optimizer"]) == str(wb["optimizer"])
    best_a, best_b = (torch.load(p / "best.pt", weights_only=True) for p in (a, b))
    assert all(torch.equal(best_a["model"][k], best_b["model"][k]) for k in best_a["model"])
    assert sorted(p.name for p in a.iterdir()) == sorted(p.name for p in b.iterdir())  # no temporary left


@pytest.mark.parametrize("mode", MODES)
def test_a_stopped_run_resumed_equals_the_uninterrupted_run(tmp_path, monkeypatch, mode):
    fields, kwargs = MODES[mode]
    experiment = config(**fields)
    whole = train(experiment, tmp_path / "whole", progress=False, **kwargs)

    with monkeypatch.context() as patch:
        stop_before_checkpoint(patch, after=1)
        with pytest.raises(Stop):
            train(experiment, tmp_path / "stopped", progress=False, **kwargs)
    stopped = tmp_path / "stopped"
    assert torch.load(stopped / "model.pt", weights_only=True)["extra"]["episode"] < 4
    assert (stopped / ".model.pt.k1ll3d.tmp").exists()

    resumed = train(experiment, stopped, progress=False, resume=True, **kwargs)
    assert resumed["returns"] == whole["returns"] and len(whole["returns"]) == 5
    assert resumed["validation_best"] == whole["validation_best"]
    same_outputs(tmp_path / "whole", stopped)


def test_a_used_folder_is_refused_and_resume_checks_the_experiment(tmp_path):
    experiment = config(episodes=2, validation_every=None, split=None)
    train(experiment, tmp_path / "run", progress=False)
    before = {p.name: p.read_bytes() for p in (tmp_path / "run").iterdir() if p.is_file()}
    with pytest.raises(ConfigError, match=r"holds a training run already .*--resume.*--overwrite"):
        train(experiment, tmp_path / "run", progress=False)
    with pytest.raises(ConfigError, match=r"started with seed = 11, not 12"):
        train(config(episodes=2, validation_every=None, split=None, seed=12), tmp_path / "run", progress=False,
              resume=True)
    with pytest.raises(ConfigError, match="--init"):
        train(experiment, tmp_path / "run", progress=False, resume=True, init=str(tmp_path / "run" / "model.pt"))
    assert {p.name: p.read_bytes() for p in (tmp_path / "run").iterdir() if p.is_file()} == before  # untouched
    # resuming a finished run trains nothing more and changes nothing
    again = train(experiment, tmp_path / "run", progress=False, resume=True)
    assert len(again["returns"]) == 2
    assert {p.name: p.read_bytes() for p in (tmp_path / "run").iterdir() if p.is_file()} == before
    with pytest.raises(ConfigError, match="nothing to resume"):
        train(experiment, tmp_path / "empty", progress=False, resume=True)


def test_resume_refuses_logs_shorter_than_the_checkpoint(tmp_path):
    experiment = config(episodes=2, validation_every=None, split=None)
    train(experiment, tmp_path / "run", progress=False)
    (tmp_path / "run" / "rewards.log").write_text("1.0\n")
    with pytest.raises(ConfigError, match=r"rewards.log: 1 complete lines, but the checkpoint was written after 2"):
        train(experiment, tmp_path / "run", progress=False, resume=True)


def hdeeprm(*args, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "hdeeprm", *args], capture_output=True, text=True, **kwargs)


def test_cli_refuses_a_used_folder_overwrites_only_ours_and_resumes(tmp_path):
    exp = tmp_path / "exp.json"
    exp.write_text(json.dumps({**BASE, "episodes": 2, "validation_every": None, "split": None}))
    out = tmp_path / "run"
    common = ["train", str(exp), "--out", str(out), "--no-evaluate"]
    assert hdeeprm(*common).returncode == 0
    (out / "notes.txt").write_text("mine")
    refused = hdeeprm(*common)
    assert refused.returncode == 2 and "Traceback" not in refused.stderr
    assert len(refused.stderr.strip().splitlines()) == 1 and "--overwrite" in refused.stderr
    overwritten = hdeeprm(*common, "--overwrite")
    assert overwritten.returncode == 0, overwritten.stderr
    assert "removed the" in overwritten.stdout and (out / "notes.txt").read_text() == "mine"
    assert len((out / "rewards.log").read_text().splitlines()) == 2  # one run, not two mixed
    resumed = hdeeprm(*common, "--resume")
    assert resumed.returncode == 0, resumed.stderr
    both = hdeeprm(*common, "--resume", "--overwrite")
    assert both.returncode == 2 and "not allowed with" in both.stderr


def test_kill_9_during_training_then_resume_gives_the_uninterrupted_run(tmp_path):
    """The drill as a user meets it: SIGKILL the training process at a random moment after
    its first update, resume, compare with a run that was never stopped."""
    exp = tmp_path / "exp.json"
    exp.write_text(json.dumps({**BASE, "episodes": 12, "algorithm": "ppo"}))
    whole, killed = tmp_path / "whole", tmp_path / "killed"
    assert hdeeprm("train", str(exp), "--out", str(whole), "--no-evaluate").returncode == 0
    process = subprocess.Popen([sys.executable, "-m", "hdeeprm", "train", str(exp), "--out", str(killed),
                                "--no-evaluate"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 300
        while not (killed / "model.pt").exists() and process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.01)
        time.sleep(0.05)
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait()
    episodes_done = torch.load(killed / "model.pt", weights_only=True)["extra"]["episode"] + 1
    resumed = hdeeprm("train", str(exp), "--out", str(killed), "--no-evaluate", "--resume")
    assert resumed.returncode == 0, resumed.stderr
    same_outputs(whole, killed)
    assert episodes_done >= 1 and not any(name.endswith(".tmp") for name in os.listdir(killed))


def test_a_run_saved_before_a_setting_existed_resumes_with_its_default(tmp_path):
    """experiment.json written by a version without a later setting (high_cores here) is the
    same experiment as long as today's value is that setting's default."""
    experiment = config(episodes=2, validation_every=None, split=None)
    train(experiment, tmp_path / "run", progress=False)
    path = tmp_path / "run" / "experiment.json"
    saved = json.loads(path.read_text())
    del saved["high_cores"]
    path.write_text(json.dumps(saved, indent=2) + "\n")
    assert len(train(experiment, tmp_path / "run", progress=False, resume=True)["returns"]) == 2
    with pytest.raises(ConfigError, match=r"started with high_cores = 'most_free', not 'most_busy'"):
        train(config(episodes=2, validation_every=None, split=None, high_cores="most_busy"), tmp_path / "run",
              progress=False, resume=True)
