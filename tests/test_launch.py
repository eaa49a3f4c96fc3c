"""hdeeprm-launch (original options files and agent files) and hdeeprm train / evaluate."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

pytest.importorskip("torch")

import hdeeprm  # noqa: E402
from hdeeprm.cli.launch import main as launch  # noqa: E402
from hdeeprm.cli.main import main as hdeeprm_main  # noqa: E402
from hdeeprm.inputs.platform import bundled_platform  # noqa: E402

DATA = Path(hdeeprm.__file__).parent / "data"
TRACE = Path(__file__).parent / "data" / "traces" / "gaia-2014-head.swf.gz"

ORIGINAL_AGENT = '''
import torch
from hdeeprm.agent import PolicyLearningAgent


class MyReinforce(PolicyLearningAgent):
    """Written against the original HDeepRM API: the 4-argument constructor and forward_policy."""

    def __init__(self, gamma, hidden, action_size, observation_size):
        super().__init__(gamma)
        self.layers = torch.nn.Sequential(
            torch.nn.Linear(observation_size, hidden), torch.nn.LeakyReLU(),
            torch.nn.Linear(hidden, action_size), torch.nn.Softmax(dim=1))

    def forward_policy(self, observation):
        return self.layers(observation)
'''


def learning_options(tmp_path: Path, **agent) -> Path:
    """The thesis 'learning' experiment, pointed at the bundled learning platform."""
    options = json.loads((DATA / "thesis_options" / "learning.json").read_text())
    options["platform_file_path"] = str(bundled_platform("learning"))
    options["pybatsim"]["agent"].update(agent)
    path = tmp_path / "learning.json"
    path.write_text(json.dumps(options))
    return path


def classic_options(tmp_path: Path, **extra) -> Path:
    options = {
        "seed": 20091995, "nb_resources": 2280, "nb_jobs": 60,
        "workload_file_path": str(TRACE), "platform_file_path": str(bundled_platform("gaia")),
        "pybatsim": {"log_level": "DEBUG",
                     "env": {"objective": "avg_job_slowdown", "queue_sensitivity": 0.05},
                     "agent": {"type": "CLASSIC", "policy_pair": "shortest-high_gflops"}},
    }
    options.update(extra)
    path = tmp_path / "primer.json"
    path.write_text(json.dumps(options))
    return path


def test_classic_legacy_policy_pair_runs_the_named_pair(tmp_path, capsys):
    out = tmp_path / "out"
    assert launch([str(classic_options(tmp_path)), "-nr", "2", "--out", str(out)]) == 0
    err = capsys.readouterr().err
    assert "policy_pair" in err and "shortest:high_gflops" in err
    # Default action set: shortest is job key 2, high_gflops core key 1 -> action 13.
    assert set((out / "actions.log").read_text().split()) == {"13"}
    assert len((out / "rewards.log").read_text().splitlines()) == 2
    assert len((out / "makespans.log").read_text().splitlines()) == 2
    jobs = (out / "episode_1" / "out_jobs.csv").read_text().splitlines()
    assert len(jobs) == 61
    assert (out / "episode_0" / "overutilization.json").exists()


@pytest.mark.parametrize("mutate, message", [
    (lambda o: o.update(nb_resourcez=3), "unknown key 'nb_resourcez'"),
    (lambda o: o["pybatsim"]["agent"].update(type="SMART"), "expected CLASSIC or LEARNING"),
    (lambda o: o["pybatsim"]["env"].update(objective="speed"), "objective 'speed'"),
    (lambda o: o["pybatsim"]["agent"].update(policy_pair="fastest"), "policy_pair"),
])
def test_option_mistakes_are_one_line_errors(tmp_path, capsys, mutate, message):
    path = classic_options(tmp_path)
    options = json.loads(path.read_text())
    mutate(options)
    path.write_text(json.dumps(options))
    assert launch([str(path), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1


def test_original_agent_file_trains_and_checkpoints(tmp_path, capsys):
    agent_file = tmp_path / "my_agent.py"
    agent_file.write_text(ORIGINAL_AGENT)
    options = learning_options(tmp_path)
    workload = DATA / "learning_workload.json"
    model = tmp_path / "model.pt"
    out = tmp_path / "out"
    args = [str(options), "-cw", str(workload), "-a", str(agent_file), "-om", str(model), "-nr", "3",
            "--out", str(out)]
    assert launch(args) == 0
    assert model.exists()
    losses = [float(x) for x in (out / "losses.log").read_text().split()]
    assert len(losses) == 3
    probs = json.loads((out / "probs.json").read_text())["probs"]
    assert len(probs) == 5 and all(len(p) == 3 for p in probs)
    assert sum(p[0] for p in probs) == pytest.approx(1.0, abs=1e-5)
    # Resume from the checkpoint: the first-decision probabilities continue from there.
    out2 = tmp_path / "out2"
    assert launch([str(options), "-cw", str(workload), "-a", str(agent_file), "-im", str(model),
                   "-nr", "1", "--out", str(out2)]) == 0
    again = json.loads((out2 / "probs.json").read_text())["probs"]
    assert [p[0] for p in again] != [p[0] for p in probs]  # not the fresh weights of run 1
    # The same command twice gives the same logs (torch seeded from the options' seed).
    out3 = tmp_path / "out3"
    assert launch([str(options), "-cw", str(workload), "-a", str(agent_file), "-nr", "3",
                   "--out", str(out3)]) == 0
    assert (out3 / "rewards.log").read_text() == (out / "rewards.log").read_text()


def test_options_name_the_agent_and_models_and_insights_are_logged(tmp_path, capsys):
    """pybatsim.agent.file / input_model / output_model stand for -a / -im / -om (relative to the
    options file), log_level sets insights.log's level, and log_probs.log holds numbers."""
    (tmp_path / "my_agent.py").write_text(ORIGINAL_AGENT)
    options = learning_options(tmp_path, file="my_agent.py", output_model="model.pt")
    data = json.loads(options.read_text())
    data["pybatsim"]["log_level"] = "DEBUG"
    options.write_text(json.dumps(data))
    out = tmp_path / "out"
    assert launch([str(options), "-cw", str(DATA / "learning_workload.json"), "-nr", "2", "--out", str(out)]) == 0
    assert (tmp_path / "model.pt").is_file()  # output_model, from the options file's folder
    insights = (out / "insights.log").read_text()
    assert insights.startswith("INFO hdeeprm-launch insights: ") and "reference speed 4.2 GFLOPS" in insights
    assert re.search(r"^INFO episode 1: \d+ decisions, reward \S+, makespan [0-9.]+ s", insights, re.MULTILINE)
    assert "scheduling passes that started jobs" in insights and "jobs per pass max" in insights
    assert "DEBUG episode 0: first decision's probabilities" in insights and "DEBUG episode 1: actions " in insights
    lines = (out / "log_probs.log").read_text().splitlines()
    assert len(lines) == 2 and all(isinstance(x, float) and x <= 0 for x in json.loads(lines[0]))
    # input_model: the next launch starts from that checkpoint; INFO leaves the DEBUG lines out.
    data["pybatsim"]["agent"].update(input_model="model.pt", output_model=None)
    data["pybatsim"]["log_level"] = "INFO"
    options.write_text(json.dumps(data))
    assert launch([str(options), "-cw", str(DATA / "learning_workload.json"), "--out", str(tmp_path / "o2")]) == 0
    resolved = json.loads((tmp_path / "o2" / "options_resolved.json").read_text())["launch"]
    assert resolved["input_model"] == str(tmp_path / "model.pt")
    assert resolved["agent_file"] == str(tmp_path / "my_agent.py")
    assert "DEBUG" not in (tmp_path / "o2" / "insights.log").read_text()
    # The files are hdeeprm's: clean removes them.
    assert hdeeprm_main(["clean", str(out)]) == 0
    assert not (out / "insights.log").exists() and not (out / "log_probs.log").exists()


def test_log_level_must_be_a_logging_level(tmp_path, capsys):
    path = classic_options(tmp_path)
    options = json.loads(path.read_text())
    options["pybatsim"]["log_level"] = "LOUD"
    path.write_text(json.dumps(options))
    assert launch([str(path), "--out", str(tmp_path / "o")]) == 2
    assert "pybatsim.log_level: 'LOUD'; expected a Python logging level" in capsys.readouterr().err


def test_a_classic_run_logs_its_scheduling_passes(tmp_path, capsys):
    out = tmp_path / "out"
    assert launch([str(classic_options(tmp_path)), "--out", str(out)]) == 0
    insights = (out / "insights.log").read_text()
    assert "episode 0: " in insights and "jobs per pass max" in insights
    assert not (out / "log_probs.log").exists()  # nothing learned


def test_learning_thesis_experiment_learns_the_bandwidth_aware_actions(tmp_path):
    # Two identical jobs at t=0 on the 4-core learning platform: high_mem_bw (actions 1 and 4)
    # puts one job per processor and ends first (5.25 s against 6.36 s and 7 s).
    options = learning_options(tmp_path, algorithm="reinforce")
    out = tmp_path / "out"
    assert launch([str(options), "-cw", str(DATA / "learning_workload.json"), "-nr", "400",
                   "--out", str(out)]) == 0
    makespans = sorted({round(float(x), 6) for x in (out / "makespans.log").read_text().split()})
    assert makespans == [5.25, 6.363636, 7.0]
    probs = json.loads((out / "probs.json").read_text())["probs"]
    first = probs[1][0] + probs[4][0]
    last = probs[1][-1] + probs[4][-1]
    assert last > 0.55 and last > first + 0.1, (first, last)


def test_missing_agent_file_is_reported(tmp_path, capsys):
    options = learning_options(tmp_path)
    assert launch([str(options), "-cw", str(DATA / "learning_workload.json"), "-a",
                   str(tmp_path / "nope.py"), "--out", str(tmp_path / "o")]) == 2
    assert "nope.py" in capsys.readouterr().err


def test_train_and_evaluate_commands(tmp_path, capsys):
    experiment = tmp_path / "tiny.json"
    experiment.write_text(json.dumps({
        "platform": "quickstart", "workload": "kth-sp2-head.swf.gz", "nb_jobs": 300,
        "episode_jobs": 30, "objective": "avg_job_slowdown", "observation": "small",
        "reward_scale": 0.001, "algorithm": "ppo", "episodes": 3, "hidden": 16, "eval_episodes": 2,
    }))
    out = tmp_path / "run"
    assert hdeeprm_main(["train", str(experiment), "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "the agent ranks" in text and "random valid actions" in text
    assert (out / "model.pt").exists() and (out / "experiment.json").exists()
    rows = (out / "evaluation.csv").read_text().splitlines()
    # header, agent, random, the 36 pairs and FCFS and SJF, each without and with EASY
    assert len(rows) == 1 + 1 + 1 + 2 * 38
    assert {"first:first_fit+easy", "shortest:first_fit", "random valid actions"} <= {r.split(",")[0] for r in rows}
    assert (out / "evaluation_windows.csv").read_text().count("\n") == 1 + 78 * 2  # header, 78 policies x 2 windows
    assert hdeeprm_main(["evaluate", str(experiment), "--model", str(out / "model.pt")]) == 0
    text = capsys.readouterr().out
    assert "the agent ranks" in text and "not held-out data" in text  # no split in this experiment
    assert "best pair + EASY" in text and "FCFS" in text
    experiment.write_text(json.dumps({"platfrom": "gaia"}))
    assert hdeeprm_main(["train", str(experiment)]) == 2
    assert "unknown key 'platfrom'" in capsys.readouterr().err


def test_launch_on_the_batsim_backend_closes_its_env(tmp_path, monkeypatch, capsys):
    """With --backend batsim the run's temporary folder (inputs, Batsim's files) is removed at
    the end and the batsim process is gone (a stand-in that answers from an embedded engine)."""
    import os
    import stat
    import sys
    import tempfile

    pytest.importorskip("zmq")
    fake = tmp_path / "batsim"
    fake.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m hdeeprm.backends.batsim.replay_server '
                    '--engine -- "$@"\n')
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    out = tmp_path / "out"
    assert launch([str(classic_options(tmp_path, nb_jobs=20)), "--backend", "batsim", "--batsim", str(fake),
                   "--out", str(out)]) == 0
    assert len((out / "episode_0" / "out_jobs.csv").read_text().splitlines()) == 21
    assert not [p for p in os.listdir(scratch) if p.startswith("hdeeprm-batsim-")]


def test_thesis_options_find_the_bundled_platform_examples_and_name_the_missing_traces(tmp_path, capsys):
    """The bundled thesis options name the original's paths: its platform examples are bundled
    here (used, with a warning); its traces are not (a one-line error saying which log)."""
    options = json.loads((DATA / "thesis_options" / "learning.json").read_text())
    options["pybatsim"]["agent"]["algorithm"] = "reinforce"
    path = tmp_path / "learning.json"
    path.write_text(json.dumps(options))  # platform_file_path stays ../../platform_examples/learning.json
    assert launch([str(path), "-cw", str(DATA / "learning_workload.json"), "--out", str(tmp_path / "o")]) == 0
    err = capsys.readouterr().err
    assert "using the bundled 'learning' platform" in err
    primer = DATA / "thesis_options" / "primer__gaia__first-high_gflops.json"
    assert launch([str(primer), "--out", str(tmp_path / "p")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "/workspace/workloads/gaia.swf: no such file" in err
    assert "UniLu-Gaia-2014-2.swf.gz" in err and "-cw" in err


def test_launch_starts_from_an_original_hdeeprm_checkpoint(tmp_path, capsys):
    import torch

    agent_file = tmp_path / "my_agent.py"
    agent_file.write_text(ORIGINAL_AGENT)
    options = learning_options(tmp_path)
    workload = str(DATA / "learning_workload.json")
    ours = tmp_path / "ours.pt"
    assert launch([str(options), "-cw", workload, "-a", str(agent_file), "-om", str(ours), "-nr", "3",
                   "--out", str(tmp_path / "a")]) == 0
    payload = torch.load(ours, weights_only=True)
    original = tmp_path / "original.pt"  # what the original's -om wrote
    torch.save({"model_state_dict": payload["model"], "optimizer_state_dict": payload["optimizer"]}, original)
    for name, checkpoint in (("from_ours", ours), ("from_original", original), ("fresh", None)):
        assert launch([str(options), "-cw", workload, "-a", str(agent_file), "--out", str(tmp_path / name)]
                      + (["-im", str(checkpoint)] if checkpoint else [])) == 0
    first = {name: json.loads((tmp_path / name / "probs.json").read_text())["probs"]
             for name in ("from_ours", "from_original", "fresh")}
    assert first["from_ours"] == first["from_original"]  # the same weights, whichever format carried them
    assert first["from_original"] != first["fresh"]  # and not the fresh ones
