"""hdeeprm.rl.export, ``hdeeprm export`` and examples/onnx_scheduler.py: a trained policy as an ONNX
(or TorchScript) file that chooses what the torch agent chooses, driving HeteroEnv without torch."""

from __future__ import annotations

import dataclasses
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

from hdeeprm import __version__
from hdeeprm.analysis.evaluation import evaluate
from hdeeprm.cli.main import main
from hdeeprm.common.errors import ConfigError
from hdeeprm.rl.agents import ALGORITHMS, build_agent
from hdeeprm.rl.agents.common import save_checkpoint
from hdeeprm.rl.experiment import ExperimentConfig
from hdeeprm.rl.export import (
    experiment_sha256,
    export_policy,
    file_sha256,
    load_agent,
    read_metadata,
    record_decisions,
    run_exported,
)
from hdeeprm.rl.train import observation_size, run_episode, train

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "onnx_scheduler.py"

# The quick-start experiment in small: kernel PPO on a job window, EASY backfilling, a
# behaviour-cloning start (which the torch-free example must not need).
TINY = {"platform": "quickstart", "workload": "kth-sp2-head.swf.gz", "nb_jobs": 300,
        "split": {"train": [0, 0.6], "test": [0.6, 1]}, "episode_jobs": 30, "eval_episodes": 4,
        "objective": "avg_bounded_slowdown", "action_space": "job_window", "window_jobs": 6, "backfill": "easy",
        "algorithm": "kernel_ppo", "episodes": 2, "hidden": 8, "seed": 1, "episode_outputs": "none",
        "pretrain": {"teacher": "sjf", "episodes": 1, "epochs": 1}}


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    folder = tmp_path_factory.mktemp("export")
    experiment = folder / "tiny.json"
    experiment.write_text(json.dumps(TINY))
    config = ExperimentConfig.load(experiment)
    summary = train(config, folder / "run", progress=False)
    return experiment, config, Path(summary["checkpoint"])


@pytest.fixture(scope="module")
def exported(trained):
    _, config, checkpoint = trained
    out = checkpoint.parent / "policy.onnx"
    report = export_policy(config, checkpoint, out, check_decisions=64, experiment="tiny")
    return out, report


def _run_example(policy: Path, *options: str) -> dict:
    proc = subprocess.run([sys.executable, str(EXAMPLE), str(policy), "--json", *options],
                          capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return json.loads(proc.stdout)


def test_export_writes_a_checked_onnx_policy_with_its_metadata(trained, exported):
    _, config, checkpoint = trained
    out, report = exported
    check = report.verification
    assert check.ok and check.decisions == 64 and check.windows >= 2
    assert check.action_mismatches == check.argmax_mismatches == check.masked_mismatches == 0
    assert check.max_logit_diff < 1e-5
    assert "64 decisions compared" in check.summary() and "actions all equal" in check.summary()
    meta = read_metadata(out)
    assert meta == report.metadata
    assert meta["format"] == "hdeeprm-policy" and meta["hdeeprm_version"] == __version__
    assert meta["algorithm"] == "kernel_ppo" and meta["action_space"] == "job_window"
    assert json.loads(meta["observation_shape"]) == [6, 12] and meta["observation_size"] == "72"
    assert meta["action_count"] == "6" and meta["observation"] == "small" and meta["experiment"] == "tiny"
    assert meta["experiment_sha256"] == experiment_sha256(config)
    assert meta["checkpoint_sha256"] == file_sha256(checkpoint)
    assert json.loads(meta["experiment_config"]) == json.loads(json.dumps(config.as_dict()))
    session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    assert [i.name for i in session.get_inputs()] == ["observation", "action_mask"]
    assert [o.name for o in session.get_outputs()] == ["logits", "probs", "action"]


def test_onnxruntime_chooses_what_torch_chooses_on_recorded_observations(trained, exported):
    _, config, checkpoint = trained
    out, _ = exported
    agent = load_agent(config, checkpoint)
    observations, masks, actions, _ = record_decisions(config, agent, 40)
    assert len(actions) == 40 and masks.dtype == bool and not masks.all()  # some actions are masked out
    session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    logits, probs, chosen = session.run(None, {"observation": observations, "action_mask": masks})
    assert np.array_equal(chosen, actions) and np.array_equal(np.argmax(logits, axis=-1), actions)
    assert np.array_equal(np.isinf(logits), ~masks)  # masked-out actions at -inf, only them
    np.testing.assert_allclose(probs.sum(axis=-1), 1.0, rtol=1e-5)
    for i in range(0, 40, 7):  # one row at a time: the batch dimension is free
        row = session.run(["action"], {"observation": observations[i:i + 1], "action_mask": masks[i:i + 1]})[0]
        assert row.tolist() == [actions[i]]
    # A mask that leaves nothing leaves the row unmasked, as the agent does.
    nothing = np.zeros_like(masks[:1])
    with torch.no_grad():
        raw = agent.actor(torch.from_numpy(observations[:1]).flatten(1)).numpy()
    got, _ = run_exported(out, observations[:1], nothing)
    np.testing.assert_allclose(got["logits"], raw, rtol=1e-5, atol=1e-6)
    assert got["action"].tolist() == [int(np.argmax(raw))]


@pytest.mark.filterwarnings("ignore:`torch.jit.load` is deprecated:DeprecationWarning")
def test_torchscript_export_is_checked_too(trained):
    _, config, checkpoint = trained
    out = checkpoint.parent / "policy.pt"
    report = export_policy(config, checkpoint, out, fmt="torchscript", check_decisions=32)
    assert report.verification.ok and report.verification.max_logit_diff < 1e-6
    assert read_metadata(out)["algorithm"] == "kernel_ppo"
    module = torch.jit.load(str(out))
    logits, probs, action = module(torch.zeros(3, 6, 12), torch.ones(3, 6, dtype=torch.bool))
    assert action.shape == (3,) and logits.shape == probs.shape == (3, 6)


@pytest.mark.parametrize("algorithm", ["ppo", "reinforce", "actor_critic"])
def test_every_learning_algorithm_exports(tmp_path, trained, algorithm):
    """The pairs action space (37 actions with void), an untrained checkpoint of each algorithm."""
    _, config, _ = trained
    config = dataclasses.replace(config, algorithm=algorithm, action_space="pairs", observation="minimal",
                                 pretrain=None)
    env = config.make_env("test", episode_jobs=config.evaluation_jobs)
    agent = build_agent(ALGORITHMS[algorithm], config.gamma, config.hidden, env.action_space.n,
                        observation_size(env), seed=config.seed)
    env.close()
    save_checkpoint(tmp_path / "model.pt", agent, extra={"algorithm": algorithm})
    report = export_policy(config, tmp_path / "model.pt", tmp_path / "policy.onnx", check_decisions=32)
    assert report.verification.ok and report.verification.decisions == 32
    assert report.metadata["action_count"] == "37" and json.loads(report.metadata["action_names"])[-1] == "void"


def test_a_checkpoint_of_another_experiment_is_refused_in_one_line(tmp_path, trained, capsys):
    _, config, checkpoint = trained
    for other in (dataclasses.replace(config, window_jobs=8), dataclasses.replace(config, hidden=16),
                  dataclasses.replace(config, algorithm="ppo")):
        with pytest.raises(ConfigError) as error:
            export_policy(other, checkpoint, tmp_path / "other.onnx", check_decisions=8)
        assert "does not fit this experiment" in str(error.value) and "\n" not in str(error.value)
    assert not (tmp_path / "other.onnx").exists() and not list(tmp_path.iterdir())
    bigger = tmp_path / "bigger.json"
    bigger.write_text(json.dumps({**TINY, "window_jobs": 8}))
    assert main(["export", str(bigger), "--model", str(checkpoint), "--out", str(tmp_path / "x.onnx")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "does not fit this experiment" in err and "8 actions" in err


def test_cli_writes_the_file_and_refuses_to_overwrite_it(tmp_path, trained, capsys):
    experiment, _, checkpoint = trained
    out = tmp_path / "policy.onnx"
    args = ["export", str(experiment), "--model", str(checkpoint), "--out", str(out), "--check-decisions", "16"]
    assert main(args) == 0
    printed = capsys.readouterr().out
    assert "16 decisions compared" in printed and "actions all equal" in printed and "max |logit difference|" in printed
    written = out.read_bytes()
    assert ort.InferenceSession(str(out), providers=["CPUExecutionProvider"]).get_modelmeta() \
        .custom_metadata_map["experiment"] == "tiny"
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "exists already" in err and "--overwrite" in err
    assert out.read_bytes() == written
    assert main(args + ["--overwrite", "--check-decisions", "0"]) == 0
    assert "not checked" in capsys.readouterr().out
    assert main(["export", str(experiment), "--model", str(checkpoint), "--out", str(tmp_path),
                 "--check-decisions", "0"]) == 2
    assert "a folder" in capsys.readouterr().err
    assert main(args[:-2] + ["--check-decisions", "-1"]) == 2


def test_example_scheduler_plays_as_hdeeprm_evaluate_without_torch(trained, exported):
    _, config, checkpoint = trained
    out, _ = exported
    evaluation = evaluate(config, str(checkpoint), episodes=2)
    agent = load_agent(config, checkpoint)
    env = config.make_env("test", episode_jobs=config.evaluation_jobs)
    for window, (seed, options) in enumerate(config.evaluation_windows(2)):
        result = _run_example(out, "--window", str(window))
        assert result["torch_imported"] is False and result["backend"] == "embedded"
        record = run_episode(env, agent, seed=seed, options=options)
        assert result["actions"] == record.actions and result["decisions"] == record.steps > 0
        assert result["metrics"] == pytest.approx(record.metrics, rel=1e-12)
        assert result["objective"] == pytest.approx(evaluation.agent.objective[window], rel=1e-12)
    env.close()


def test_a_model_that_chooses_otherwise_is_not_written(tmp_path, trained, monkeypatch):
    import hdeeprm.rl.export as export

    _, config, checkpoint = trained
    real = export.run_exported

    def off_by_one(path, observations, masks):
        outputs, runtime = real(path, observations, masks)
        outputs["action"] = (outputs["action"] + 1) % masks.shape[1]
        outputs["logits"] = outputs["logits"] * 1.01
        return outputs, runtime

    monkeypatch.setattr(export, "run_exported", off_by_one)
    with pytest.raises(ConfigError, match="not written: the exported policy differs") as error:
        export_policy(config, checkpoint, tmp_path / "policy.onnx", check_decisions=16)
    assert "16 differ" in str(error.value) and "over the tolerance" in str(error.value)
    assert not list(tmp_path.iterdir())


def test_missing_onnx_packages_are_reported_in_one_line(tmp_path, trained, monkeypatch, capsys):
    experiment, _, checkpoint = trained
    onnx = sys.modules["onnx"]
    monkeypatch.setitem(sys.modules, "onnx", None)  # import onnx raises ModuleNotFoundError
    args = ["export", str(experiment), "--model", str(checkpoint), "--out", str(tmp_path / "p.onnx")]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "needs the onnx package" in err and "'.[onnx]'" in err
    monkeypatch.setitem(sys.modules, "onnx", onnx)
    monkeypatch.setitem(sys.modules, "onnxruntime", None)
    assert main(args) == 2
    assert "needs onnxruntime" in capsys.readouterr().err
    assert main(args + ["--check-decisions", "0"]) == 0  # exporting alone needs onnx only
    assert not list(tmp_path.glob(".*.tmp"))


@pytest.mark.batsim
@pytest.mark.skipif(shutil.which("batsim") is None, reason="batsim is not on PATH")
def test_example_scheduler_drives_real_batsim(trained, exported):
    pytest.importorskip("zmq")
    out, _ = exported
    embedded = _run_example(out)
    batsim = _run_example(out, "--backend", "batsim")
    assert batsim["torch_imported"] is False and batsim["backend"] == "batsim"
    assert batsim["actions"] == embedded["actions"]
    assert batsim["objective"] == pytest.approx(embedded["objective"], rel=1e-6)  # Batsim's clock and JSON
    assert batsim["metrics"]["nb_finished"] == embedded["metrics"]["nb_finished"] > 0
