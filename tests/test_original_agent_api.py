"""Agent files written for the original HDeepRM 0.3.1 API run through hdeeprm-launch.

The agent files in tests/data/original_agents/ use the original's methods: get_action,
save_log_prob, policy_loss, value_loss, save_value, process, and the episode protocol
observe / alter / rewarded(environment)."""

from __future__ import annotations

import copy
import json
import math
import sys
import warnings
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

import hdeeprm  # noqa: E402
import hdeeprm.rl.agents as agents  # noqa: E402
from hdeeprm.agent import PolicyLearningAgent, ValueLearningAgent  # noqa: E402
from hdeeprm.cli.launch import main as launch  # noqa: E402
from hdeeprm.inputs.platform import bundled_platform  # noqa: E402

DATA = Path(hdeeprm.__file__).parent / "data"
AGENTS = Path(__file__).parent / "data" / "original_agents"


def learning_options(tmp_path: Path) -> Path:
    """The thesis 'learning' experiment on the bundled learning platform (as in test_launch)."""
    options = json.loads((DATA / "thesis_options" / "learning.json").read_text())
    options["platform_file_path"] = str(bundled_platform("learning"))
    path = tmp_path / "learning.json"
    path.write_text(json.dumps(options))
    return path


@pytest.fixture
def built(monkeypatch):
    """The agents the launcher builds, each with a copy of its initial weights."""
    made = []
    real = agents.build_agent

    def build(*args, **kwargs):
        agent = real(*args, **kwargs)
        made.append((agent, copy.deepcopy(agent.state_dict())))
        return agent

    monkeypatch.setattr(agents, "build_agent", build)
    return made


def run(tmp_path: Path, agent_file: Path, name: str, runs: int = 3) -> Path:
    out = tmp_path / name
    args = [str(learning_options(tmp_path)), "-cw", str(DATA / "learning_workload.json"), "-a", str(agent_file),
            "-nr", str(runs), "--out", str(out)]
    assert launch(args) == 0
    return out


def numbers(path: Path) -> list[float]:
    return [float(x) for x in path.read_text().split()]


def changed(agent, initial, prefix: str = "") -> bool:
    return any(not torch.equal(tensor, initial[name]) for name, tensor in agent.state_dict().items()
               if name.startswith(prefix))


def test_original_reinforce_trains_with_get_action_and_policy_loss(tmp_path, built, capsys):
    out = run(tmp_path, AGENTS / "reinforce.py", "a")
    (agent, initial), = built
    losses = numbers(out / "losses.log")
    assert len(losses) == 3 and all(math.isfinite(x) for x in losses)
    assert changed(agent, initial)
    # get_action: one action per decision, its log-probability saved, the first decision's
    # probabilities kept for probs.json.
    actions = numbers(out / "actions.log")
    assert actions and set(actions) <= {0, 1, 2, 3, 4}
    log_probs = [json.loads(line) for line in (out / "log_probs.log").read_text().splitlines()]
    assert len(log_probs) == 3 and all(x <= 0 for line in log_probs for x in line)
    assert sum(len(line) for line in log_probs) == len(actions)
    probs = json.loads((out / "probs.json").read_text())["probs"]
    assert len(probs) == 5 and sum(p[0] for p in probs) == pytest.approx(1.0, abs=1e-5)
    # Sampling uses the agent's seeded generator: the same command gives the same logs.
    again = run(tmp_path, AGENTS / "reinforce.py", "b")
    for log in ("rewards.log", "actions.log", "losses.log"):
        assert (again / log).read_text() == (out / log).read_text()


def test_original_actor_critic_example_shape_runs_and_learns_its_values(tmp_path, built, capsys):
    out = run(tmp_path, AGENTS / "actor_critic.py", "a")
    (agent, initial), = built
    losses = numbers(out / "losses.log")
    assert len(losses) == 3 and all(math.isfinite(x) for x in losses)
    # process() gave (probs, value) despite the trailing no-op forward; save_value kept V(s).
    assert len(agent.values) == len(agent.log_probs) == len(agent.rewards) > 0
    value_loss = torch.stack(agent.value_loss(agent.transform_rewards())).sum()
    assert float(value_loss.detach()) > 0
    # Only the value loss reaches the critic (the advantages use value.item()): it trained.
    assert changed(agent, initial, "critic_") and changed(agent, initial, "actor_")
    # get_action set probs, which the original example never did.
    probs = json.loads((out / "probs.json").read_text())["probs"]
    assert len(probs) == 5 and sum(p[0] for p in probs) == pytest.approx(1.0, abs=1e-5)
    again = run(tmp_path, AGENTS / "actor_critic.py", "b")
    for log in ("rewards.log", "actions.log", "losses.log"):
        assert (again / log).read_text() == (out / log).read_text()


def test_overridden_observe_alter_and_rewarded_are_honoured(tmp_path, built, capsys):
    out = run(tmp_path, AGENTS / "protocol.py", "a")
    (agent, initial), = built
    file = sys.modules[type(agent).__module__]  # the agent file's module, as the launcher loaded it
    actions = [int(x) for x in numbers(out / "actions.log")]
    # observe: the network takes the observation plus a bias feature, so the run only works
    # with the overriding observe; it was called once per decision.
    assert agent.observed == len(agent.decided) == len(actions) > 0
    # alter: the environment got the table's action for each decision.
    assert actions == agent.altered == [file.ACTION_TABLE[a] for a in agent.decided]
    # rewarded(environment): the agent stored environment.reward() scaled, as written; the
    # logs keep the environment's own rewards.
    assert agent.stored_rewards == [file.REWARD_SCALE * r for r in agent.env_rewards]
    assert agent.rewards == agent.stored_rewards[-len(agent.rewards):]
    assert sum(numbers(out / "rewards.log")) == pytest.approx(sum(agent.env_rewards))
    assert any(r != 0 for r in agent.env_rewards)
    assert changed(agent, initial)
    again = run(tmp_path, AGENTS / "protocol.py", "b")
    for log in ("rewards.log", "actions.log", "losses.log"):
        assert (again / log).read_text() == (out / log).read_text()


def test_an_alter_that_does_not_step_is_reported(tmp_path, capsys):
    agent_file = tmp_path / "lazy.py"
    agent_file.write_text((AGENTS / "reinforce.py").read_text()
                          + "\n    def alter(self, action, environment):\n        pass\n")
    args = [str(learning_options(tmp_path)), "-cw", str(DATA / "learning_workload.json"), "-a", str(agent_file),
            "--out", str(tmp_path / "o")]
    assert launch(args) == 2
    assert "alter(action, environment) did not step the environment" in capsys.readouterr().err


class _Both(PolicyLearningAgent, ValueLearningAgent):
    def __init__(self):
        super().__init__(0.9)
        self.body = torch.nn.Linear(3, 2)
        self.head = torch.nn.Linear(3, 1)

    def forward_policy(self, x):
        return torch.softmax(self.body(x), dim=1)

    def forward_value(self, x):
        return self.head(x)

    def forward(self, *inp):
        pass


def test_loss_lists_have_shape_1_for_cat_and_stack_without_warnings():
    agent = _Both()
    agent.set_seed(3)
    for obs in ([0.1, 0.2, 0.3], [1.0, 0.0, -1.0], [0.5, 0.5, 0.5]):
        probs, value = agent.process(obs)
        assert probs.shape == (1, 2) and value.shape == (1, 1)
        agent.save_value(value)
        agent.get_action(probs)
        agent.rewarded(1.0)
    rews = agent.transform_rewards()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the original's (1, 1) against (1,) broadcast warned
        for terms in (agent.policy_loss(rews), agent.value_loss(rews), agent.policy_loss([0.5, -0.5])):
            assert all(t.shape == (1,) for t in terms)
            assert torch.cat(terms).sum().item() == pytest.approx(torch.stack(terms).sum().item())
    assert len(agent.policy_loss([0.5, -0.5])) == 2  # the shorter list wins
    expected = sum(-float(lp.detach()) * float(r) for lp, r in zip(agent.log_probs, rews))
    assert float(PolicyLearningAgent.loss(agent).detach()) == pytest.approx(expected)
    assert float(ValueLearningAgent.loss(agent).detach()) > 0


def test_rewarded_takes_a_number_or_an_environment():
    class Env:
        def reward(self):
            return -2.5

    agent = _Both()
    agent.rewarded(1)
    agent.rewarded(Env())
    assert agent.rewards == [1.0, -2.5]


def test_get_action_is_greedy_only_when_asked_and_not_training():
    agent = _Both()
    agent.set_seed(0)
    probs = torch.tensor([[0.3, 0.7]])
    agent.eval()
    agent.greedy = True
    assert [agent.get_action(probs) for _ in range(5)] == [1] * 5
    assert agent.probs == pytest.approx([0.3, 0.7]) and agent.actions == [1] * 5
    assert float(agent.log_probs[0].detach()) == pytest.approx(math.log(0.7))
    agent.train()
    assert {agent.get_action(probs) for _ in range(50)} == {0, 1}
