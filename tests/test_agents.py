"""Agents: the original agent API (hdeeprm.rl.agent) and the algorithms of hdeeprm.rl.agents."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch
from torch.nn import functional as F

from hdeeprm.common.errors import ConfigError
from hdeeprm.rl.agent import ClassicAgent, LearningAgent, PolicyLearningAgent, load_agent_class
from hdeeprm.rl.agents import ALGORITHMS, ActorCriticAgent, PPOAgent, ReinforceAgent, build_agent
from hdeeprm.rl.agents.common import load_checkpoint, masked_logits, mlp, save_checkpoint
from hdeeprm.rl.env import HeteroEnv
from hdeeprm.rl.returns import discounted_returns, gae, standardise

TRACE = Path(__file__).parent / "data" / "traces" / "gaia-2014-head.swf.gz"


def close(a, b, tol=1e-5) -> bool:
    return torch.allclose(torch.as_tensor(a, dtype=torch.float32), torch.as_tensor(b, dtype=torch.float32), atol=tol)


# ---------------------------------------------------------------------- returns and advantages

def test_discounted_returns_and_standardise_by_hand():
    # gamma 0.5: G2 = 2, G1 = 0 + 0.5 * 2 = 1, G0 = 1 + 0.5 * 1 = 1.5
    returns = discounted_returns([1.0, 0.0, 2.0], 0.5)
    assert returns.dtype == torch.float32
    assert close(returns, [1.5, 1.0, 2.0])
    # mean 1.5, unbiased std sqrt((0 + 0.25 + 0.25) / 2) = 0.5
    assert close(standardise(returns), [0.0, -1.0, 1.0])
    assert close(standardise(torch.tensor([3.0, 3.0])), [0.0, 0.0])  # no spread: eps keeps it finite


def test_transform_rewards_standardises_several_and_leaves_one_unscaled():
    agent = LearningAgent(gamma=0.5)
    agent.rewards = [1.0, 0.0, 2.0]
    assert close(agent.transform_rewards(), [0.0, -1.0, 1.0])
    agent.reset_episode()
    agent.rewarded(-7.25)
    assert close(agent.transform_rewards(), [-7.25])
    agent.reset_episode()
    assert agent.transform_rewards().numel() == 0


def test_gae_by_hand():
    rewards, values = [1.0, 0.0, 2.0], [0.5, 1.0, 0.5]
    # terminal: d2 = 2 - .5 = 1.5 = A2; d1 = 0 + .5 * .5 - 1 = -.75, A1 = -.75 + .25 * 1.5 = -.375;
    # d0 = 1 + .5 * 1 - .5 = 1, A0 = 1 + .25 * -.375 = .90625
    adv, ret = gae(rewards, values, 0.5, 0.5)
    assert close(adv, [0.90625, -0.375, 1.5])
    assert close(ret, [1.40625, 0.625, 2.0])
    # truncated, V(s_3) = 4: d2 = 2 + .5 * 4 - .5 = 3.5; A1 = -.75 + .25 * 3.5 = .125; A0 = 1 + .25 * .125
    adv, _ = gae(rewards, values, 0.5, 0.5, last_value=4.0)
    assert close(adv, [1.03125, 0.125, 3.5])
    # the episode ends after step 1: A1 = 0 - 1 = -1, A0 = 1 + .25 * -1
    adv, _ = gae(rewards, values, 0.5, 0.5, dones=[False, True, False])
    assert close(adv, [0.75, -1.0, 1.5])
    # lambda = 1 and V = 0: returns are the discounted returns
    _, ret = gae(rewards, [0.0] * 3, 0.5, 1.0)
    assert close(ret, discounted_returns(rewards, 0.5))
    with pytest.raises(ValueError):
        gae([1.0], [0.0, 0.0], 0.5, 0.5)


# ---------------------------------------------------------------------- masking

def test_masked_logits_never_samples_a_masked_action():
    generator = torch.Generator().manual_seed(0)
    logits = torch.tensor([[3.0, 0.0, 5.0, -1.0, 2.0]])
    mask = torch.tensor([[False, True, False, True, False]])
    probs = F.softmax(masked_logits(logits, mask), dim=-1)
    draws = torch.multinomial(probs[0], 5000, replacement=True, generator=generator)
    assert set(draws.tolist()) == {1, 3}
    assert probs[0, [0, 2, 4]].sum() == 0
    # An all-False row is left unchanged, another row keeps its own mask.
    batch = masked_logits(logits.repeat(2, 1), torch.tensor([[False] * 5, [True, False, False, False, False]]))
    assert torch.equal(batch[0], logits[0])
    assert batch[1, 0] == 3.0 and torch.isinf(batch[1, 1:]).all()
    assert masked_logits(logits, None) is logits


def test_policy_agent_decide_respects_the_mask():
    agent = build_agent(ReinforceAgent, 0.99, 8, 5, 3, seed=0)
    mask = np.array([False, False, True, False, True])
    actions = {agent.decide(np.array([0.1, 0.5, 0.9], np.float32), mask) for _ in range(300)}
    assert actions == {2, 4}
    assert agent.probs[0] == 0 and math.isclose(sum(agent.probs), 1.0, rel_tol=1e-6)
    agent.reset_episode()
    # An all-False mask is ignored rather than leaving no action.
    assert 0 <= agent.decide(np.zeros(3, np.float32), np.zeros(5, bool)) < 5


def test_greedy_evaluation_takes_the_most_probable_allowed_action():
    agent = build_agent(ReinforceAgent, 0.99, 8, 5, 3, seed=0)
    obs = np.array([0.2, 0.4, 0.6], np.float32)
    probs = agent(obs).detach()[0]
    mask = np.ones(5, bool)
    mask[int(probs.argmax())] = False
    agent.eval()
    agent.greedy = True
    expected = int(torch.where(torch.as_tensor(mask), probs, torch.tensor(-1.0)).argmax())
    assert {agent.decide(obs, mask) for _ in range(20)} == {expected}


# ---------------------------------------------------------------------- REINFORCE

def test_reinforce_loss_equals_the_hand_computed_sum():
    agent = build_agent(ReinforceAgent, 0.5, 4, 3, 2, seed=1)
    observations = [np.array([0.0, 1.0], np.float32), np.array([1.0, 0.0], np.float32),
                    np.array([0.5, 0.5], np.float32)]
    for obs, reward in zip(observations, [1.0, 0.0, 2.0]):
        agent.decide(obs)
        agent.rewarded(reward)
    # Independent computation: the network's log-probabilities of the actions taken, times the
    # standardised returns [0, -1, 1] computed above by hand.
    with torch.no_grad():
        log_probs = [torch.log(agent.policy(torch.tensor(o)[None]).softmax(-1)[0, a])
                     for o, a in zip(observations, agent.actions)]
        expected = -(log_probs[0] * 0.0 + log_probs[1] * -1.0 + log_probs[2] * 1.0)
    assert close(agent.loss().detach(), expected)


def test_reinforce_update_raises_the_probability_of_well_rewarded_actions():
    obs = np.array([0.3, 0.7], np.float32)
    # One decision: its return is left unscaled, +1, so the step raises pi(a|s).
    agent = build_agent(ReinforceAgent, 0.99, 8, 3, 2, seed=2)
    optimizer = torch.optim.SGD(agent.parameters(), lr=0.05)
    action = agent.decide(obs)
    agent.rewarded(1.0)
    before = float(agent(obs).detach()[0, action])
    assert set(agent.update(optimizer)) == {"loss"}
    assert float(agent(obs).detach()[0, action]) > before
    # Two decisions on one state with actions a (return +) and b (return -): pi(a)/pi(b) grows.
    agent = build_agent(ReinforceAgent, 0.0, 8, 3, 2, seed=2)
    optimizer = torch.optim.SGD(agent.parameters(), lr=0.05)
    good, bad = 0, 2
    for a, reward in ((good, 1.0), (bad, -1.0)):
        agent.log_probs.append(torch.log(agent(obs)[0, a]))
        agent.actions.append(a)
        agent.rewarded(reward)
    probs = agent(obs).detach()[0]
    agent.update(optimizer)
    after = agent(obs).detach()[0]
    assert after[good] / after[bad] > probs[good] / probs[bad]


def test_update_without_a_decision_does_nothing():
    agent = build_agent(ReinforceAgent, 0.99, 8, 3, 2, seed=0)
    optimizer = torch.optim.SGD(agent.parameters(), lr=1.0)
    state = {k: v.clone() for k, v in agent.state_dict().items()}
    assert agent.update(optimizer) == {}
    agent.decide(np.zeros(2, np.float32))  # a decision but no reward yet
    assert agent.update(optimizer) == {}
    assert all(torch.equal(state[k], v) for k, v in agent.state_dict().items())


# ---------------------------------------------------------------------- actor-critic

def test_actor_critic_loss_decomposes_into_actor_and_critic_terms():
    agent = build_agent(ActorCriticAgent, 0.5, 4, 3, 2, seed=3)
    observations = [np.array([1.0, 0.0], np.float32), np.array([0.0, 1.0], np.float32),
                    np.array([1.0, 1.0], np.float32)]
    for obs, reward in zip(observations, [1.0, 0.0, 2.0]):
        agent.decide(obs)
        agent.rewarded(reward)
    assert len(agent.values) == 3
    returns = torch.tensor([0.0, -1.0, 1.0])  # standardised, by hand above
    log_probs = torch.stack(agent.log_probs)
    values = torch.stack(agent.values)
    actor = -(log_probs * (returns - values.detach())).sum()
    critic = sum(F.smooth_l1_loss(v, g) for v, g in zip(values, returns))
    loss = agent.loss()
    assert close(loss.detach(), (actor + critic).detach())
    # The actor term does not train the critic: its gradient is the critic term's alone.
    loss.backward()
    via_loss = [p.grad.clone() for p in agent.critic.parameters()]
    agent.zero_grad()
    critic_only = sum(F.smooth_l1_loss(agent.forward_value(torch.tensor(o)[None]).reshape(()), g)
                      for o, g in zip(observations, returns))
    critic_only.backward()
    assert all(torch.allclose(a, p.grad, atol=1e-6) for a, p in zip(via_loss, agent.critic.parameters()))


# ---------------------------------------------------------------------- PPO

def _ppo_episode(agent: PPOAgent, decisions: int = 16) -> None:
    """Decisions on one state where only actions 0 and 1 are allowed: 0 pays, 1 costs."""
    obs = np.array([0.4, 0.6, 0.1], np.float32)
    mask = np.array([True, True, False, False])
    for _ in range(decisions):
        action = agent.decide(obs, mask)
        agent.rewarded(1.0 if action == 0 else -1.0)


def test_ppo_update_moves_the_policy_towards_the_better_action():
    agent = build_agent(PPOAgent, 0.0, 16, 4, 3, seed=5, minibatch_size=4, epochs=4)
    optimizer = torch.optim.Adam(agent.parameters(), lr=3e-3)
    _ppo_episode(agent)
    assert {0, 1} == set(agent.actions)  # both actions tried, never a masked one
    obs = torch.tensor([[0.4, 0.6, 0.1]])
    before = agent.forward_policy(obs).detach()[0]
    loss_before = float(agent.loss().detach())
    report = agent.update(optimizer)
    assert set(report) == {"loss", "policy_loss", "value_loss", "entropy", "approx_kl"}
    assert all(math.isfinite(v) for v in report.values())
    after = agent.forward_policy(obs).detach()[0]
    assert after[0] / after[1] > before[0] / before[1]
    assert float(agent.loss().detach()) < loss_before


def test_ppo_is_deterministic_under_a_seed_and_leaves_global_state_alone():
    global_state = torch.random.get_rng_state()
    agents = [build_agent(PPOAgent, 0.9, 16, 4, 3, seed=11, minibatch_size=5) for _ in range(2)]
    for agent in agents:
        optimizer = torch.optim.Adam(agent.parameters(), lr=1e-3)
        _ppo_episode(agent, 12)
        agent.update(optimizer)
    assert agents[0].actions == agents[1].actions
    for p, q in zip(agents[0].parameters(), agents[1].parameters()):
        assert torch.equal(p, q)
    assert torch.equal(torch.random.get_rng_state(), global_state)
    assert not torch.equal(build_agent(PPOAgent, 0.9, 16, 4, 3, seed=12).actor[0].weight,
                           build_agent(PPOAgent, 0.9, 16, 4, 3, seed=11).actor[0].weight)


# ---------------------------------------------------------------------- checkpoints

class NotAWeight:
    """An arbitrary object: a checkpoint holding one must be refused, not unpickled."""


def _trained_agent(seed: int) -> tuple[ReinforceAgent, torch.optim.Optimizer]:
    agent = build_agent(ReinforceAgent, 0.99, 8, 3, 2, seed=seed)
    optimizer = torch.optim.Adam(agent.parameters(), lr=1e-2)
    for reward in (1.0, -1.0, 0.5):
        agent.decide(np.array([0.1, 0.9], np.float32))
        agent.rewarded(reward)
    agent.update(optimizer)
    agent.reset_episode()
    return agent, optimizer


def test_checkpoint_round_trip(tmp_path):
    agent, optimizer = _trained_agent(seed=0)
    path = tmp_path / "agent.pt"
    save_checkpoint(path, agent, optimizer, {"episode": 3, "algorithm": "reinforce"})
    expected_next = [agent.decide(np.array([0.5, 0.5], np.float32)) for _ in range(30)]

    other, other_optimizer = _trained_agent(seed=1)
    meta = load_checkpoint(path, other, other_optimizer)
    assert meta == {"episode": 3, "algorithm": "reinforce"}
    for key, value in agent.state_dict().items():
        assert torch.equal(other.state_dict()[key], value)
    saved, loaded = optimizer.state_dict(), other_optimizer.state_dict()
    assert saved["param_groups"] == loaded["param_groups"]
    for index, state in saved["state"].items():
        for key, value in state.items():
            assert torch.equal(torch.as_tensor(loaded["state"][index][key]), torch.as_tensor(value))
    # The generator state travels too: the resumed agent samples what the saved one did.
    assert [other.decide(np.array([0.5, 0.5], np.float32)) for _ in range(30)] == expected_next
    assert [p.name for p in tmp_path.iterdir()] == ["agent.pt"]


def test_checkpoint_save_is_atomic(tmp_path, monkeypatch):
    agent, optimizer = _trained_agent(seed=0)
    path = tmp_path / "agent.pt"
    save_checkpoint(path, agent, optimizer, {"episode": 1})
    before = path.read_bytes()

    def broken_save(obj, f, *args, **kwargs):
        f.write(b"half a checkpoint")
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", broken_save)
    changed, _ = _trained_agent(seed=1)
    with pytest.raises(OSError, match="disk full"):
        save_checkpoint(path, changed, None, {"episode": 2})
    monkeypatch.undo()
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["agent.pt"]  # no temporary file left
    fresh, _ = _trained_agent(seed=2)
    assert load_checkpoint(path, fresh) == {"episode": 1}
    with pytest.raises(ConfigError, match="JSON"):
        save_checkpoint(path, agent, None, {"bad": NotAWeight()})


def test_checkpoint_loading_refuses_arbitrary_objects_and_bad_files(tmp_path):
    agent, _ = _trained_agent(seed=0)
    evil = tmp_path / "evil.pt"
    torch.save({"format": "hdeeprm-agent-checkpoint", "version": 1, "model": agent.state_dict(),
                "extra": {}, "payload": NotAWeight()}, evil)
    with pytest.raises(ConfigError, match="evil.pt"):
        load_checkpoint(evil, agent)
    corrupt = tmp_path / "corrupt.pt"
    corrupt.write_bytes(b"\x00not a checkpoint at all")
    with pytest.raises(ConfigError, match="corrupt.pt"):
        load_checkpoint(corrupt, agent)
    with pytest.raises(ConfigError, match="missing.pt"):
        load_checkpoint(tmp_path / "missing.pt", agent)
    foreign = tmp_path / "foreign.pt"
    torch.save({"weights": torch.zeros(2)}, foreign)
    with pytest.raises(ConfigError, match="not an HDeepRM agent checkpoint"):
        load_checkpoint(foreign, agent)
    mismatched = tmp_path / "mismatched.pt"
    save_checkpoint(mismatched, build_agent(ReinforceAgent, 0.99, 16, 3, 2, seed=0))
    with pytest.raises(ConfigError, match="does not fit"):
        load_checkpoint(mismatched, agent)


def test_original_hdeeprm_checkpoints_load_and_nothing_else_is_unpickled(tmp_path):
    """The original saved {model_state_dict, optimizer_state_dict} with torch.save (-om)."""
    agent, optimizer = _trained_agent(seed=0)
    original = tmp_path / "original.pt"
    torch.save({"model_state_dict": agent.state_dict(), "optimizer_state_dict": optimizer.state_dict()}, original)
    other, other_optimizer = _trained_agent(seed=1)
    assert load_checkpoint(original, other, other_optimizer) == {"original_hdeeprm": True}
    for key, value in agent.state_dict().items():
        assert torch.equal(other.state_dict()[key], value)
    assert other_optimizer.state_dict()["param_groups"] == optimizer.state_dict()["param_groups"]
    # Written by another agent class: refused in one line, naming what to do.
    mismatched = tmp_path / "mismatched.pt"
    small = build_agent(ReinforceAgent, 0.99, 16, 3, 2, seed=0)
    torch.save({"model_state_dict": small.state_dict(), "optimizer_state_dict": None}, mismatched)
    with pytest.raises(ConfigError, match="original HDeepRM checkpoint that does not fit this agent"):
        load_checkpoint(mismatched, agent)
    # The same keys around an arbitrary object: still refused rather than unpickled.
    evil = tmp_path / "evil.pt"
    torch.save({"model_state_dict": agent.state_dict(), "optimizer_state_dict": NotAWeight()}, evil)
    with pytest.raises(ConfigError, match="evil.pt: not a plain HDeepRM checkpoint"):
        load_checkpoint(evil, agent)


# ---------------------------------------------------------------------- original agent files

ORIGINAL_AGENT = '''
import torch
import torch.nn as nn
import torch.nn.functional as F
from hdeeprm.agent import PolicyLearningAgent


class Helper:
    """Not an agent: must not be picked."""


class ZPGAgent(PolicyLearningAgent):
    def __init__(self, gamma, hidden, action_size, observation_size):
        super().__init__(gamma)
        self.input = nn.Linear(observation_size, hidden)
        self.hidden_0 = nn.Linear(hidden, hidden)
        self.output = nn.Linear(hidden, action_size)

    def forward_policy(self, observation):
        out_0 = F.leaky_relu(self.input(observation))
        out_1 = F.leaky_relu(self.hidden_0(out_0))
        return F.softmax(self.output(out_1), dim=1)
'''


def test_load_agent_class_plugs_in_an_original_agent_file(tmp_path):
    path = tmp_path / "my_agent.py"
    path.write_text(ORIGINAL_AGENT)
    cls = load_agent_class(path)
    assert cls.__name__ == "ZPGAgent" and issubclass(cls, PolicyLearningAgent)
    agent = build_agent(cls, 0.99, 8, 4, 3, seed=0)
    optimizer = torch.optim.Adam(agent.parameters(), lr=1e-3)
    for reward in (1.0, 2.0):
        assert agent.decide(np.array([0.1, 0.2, 0.3]), np.array([True, False, True, False])) in (0, 2)
        agent.rewarded(reward)
    assert math.isfinite(agent.update(optimizer)["loss"])


def test_load_agent_class_errors(tmp_path):
    with pytest.raises(ConfigError, match="nowhere.py.*not found"):
        load_agent_class(tmp_path / "nowhere.py")
    empty = tmp_path / "empty.py"
    empty.write_text("from hdeeprm.agent import PolicyLearningAgent\n\nclass NotAnAgent:\n    pass\n")
    with pytest.raises(ConfigError, match="empty.py.*no agent class"):
        load_agent_class(empty)
    broken = tmp_path / "broken.py"
    broken.write_text("import no_such_module_for_hdeeprm\n")
    with pytest.raises(ConfigError, match="broken.py.*no_such_module_for_hdeeprm"):
        load_agent_class(broken)


def test_classic_agent_always_takes_the_first_action():
    agent = ALGORITHMS["classic"]()
    assert isinstance(agent, ClassicAgent) and not list(agent.parameters())
    assert agent.decide(np.zeros(3), np.array([False, True])) == 0


# ---------------------------------------------------------------------- training on HeteroEnv

def train(name: str, seed: int, episodes: int = 3) -> tuple[list[list[float]], list[dict[str, float]]]:
    env = HeteroEnv("learning", TRACE, nb_jobs=300, episode_jobs=30, observation="minimal")
    agent = build_agent(ALGORITHMS[name], 0.99, 16, env.action_space.n, env.observation_space.shape[0], seed)
    optimizer = torch.optim.Adam(agent.parameters(), lr=1e-3)
    rewards, reports = [], []
    for episode in range(episodes):
        obs, info = env.reset(seed=seed + episode)
        done = False
        while not done:
            action = agent.decide(obs, info["action_mask"])
            assert info["action_mask"][action]
            obs, reward, terminated, truncated, info = env.step(action)
            agent.rewarded(reward)
            done = terminated or truncated
        rewards.append(list(agent.rewards))
        reports.append(agent.update(optimizer))
        agent.reset_episode()
    return rewards, reports


@pytest.mark.parametrize("name", ["reinforce", "actor_critic", "ppo"])
def test_short_training_run_is_finite_and_reproducible(name):
    rewards, reports = train(name, seed=7)
    assert len(rewards) == 3 and all(rewards)
    assert all(report and all(math.isfinite(v) for v in report.values()) for report in reports)
    again, _ = train(name, seed=7)
    assert again == rewards


def test_mlp_shape():
    net = mlp(5, 7, 3, layers=2)
    assert [type(m).__name__ for m in net] == ["Linear", "LeakyReLU"] * 3 + ["Linear"]
    assert net(torch.zeros(4, 5)).shape == (4, 3)


def test_a_checkpoint_with_non_finite_weights_is_never_written(tmp_path):
    import math

    from hdeeprm.common.errors import TrainingDiverged
    from hdeeprm.rl.agents import ALGORITHMS, build_agent
    from hdeeprm.rl.agents.common import save_checkpoint

    agent = build_agent(ALGORITHMS["reinforce"], 0.99, 8, 3, 5, seed=0)
    path = tmp_path / "model.pt"
    save_checkpoint(path, agent)
    good = path.read_bytes()
    with torch.no_grad():
        next(agent.parameters()).fill_(math.nan)
    with pytest.raises(TrainingDiverged, match="not finite"):
        save_checkpoint(path, agent)
    assert path.read_bytes() == good and [p.name for p in tmp_path.iterdir()] == ["model.pt"]
