"""Evaluation of an agent against the classic policies, as a reviewer would want it.

Every contender plays the same windows of the workload (the experiment's evaluation windows:
consecutive, non-overlapping windows of its held-out test part when it has one):
  the agent            greedy, in the experiment's action space (with its backfilling)
  random valid actions uniformly random among the allowed actions of that action space
  each classic pair    HDeepRM's 36 job key x core key pairs, plus FCFS (first:first_fit)
                       and SJF (shortest:first_fit), each without and with EASY backfilling;
                       under ``shutdown`` they run under the same shutdown rule; for an agent
                       with ``power_actions`` (which switches machines itself) they keep every
                       machine on, and run a third time with the experiment's backfilling
                       under the shutdown policy after 0 s idle (kind pair+shutdown)
Each window gives one value of the experiment's objective per contender: minus the episode's
return divided by the reward scale, which is the objective exactly (lower is better; see
``hdeeprm.simulation.objectives``). The agent is then compared with every contender window by window
(``hdeeprm.analysis.stats``): mean difference, its 95 % t-interval, paired t-test, wins and losses,
and a verdict that says "not significantly different" when the interval holds 0.

Files (``out_dir``): evaluation.csv (one row per policy; its columns are named and meant as
the same columns of ``hdeeprm sweep``'s results.csv, see ``hdeeprm.rl.sweep.TABLE_COLUMNS``),
evaluation_windows.csv (one row per policy and window), comparison.csv (the agent against
each policy), evaluation.png (the distributions; with matplotlib). The files keep every
digit; the table printed for people is rounded (``hdeeprm.analysis.tables``).
"""

from __future__ import annotations

import csv
import math
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from hdeeprm.analysis.stats import PairedComparison, compare_all, format_p
from hdeeprm.analysis.tables import format_number, format_seconds
from hdeeprm.common.progress import Progress
from hdeeprm.rl.baselines import FixedActionAgent, RandomMaskedAgent
from hdeeprm.rl.job_window import WINDOW_HEURISTICS, WindowHeuristicAgent
from hdeeprm.rl.sweep import WINDOW_METRICS, mean_and_std
from hdeeprm.rl.train import observation_size, run_episode
from hdeeprm.simulation.keys import DEFAULT_PAIRS
from hdeeprm.simulation.metrics import BOUNDED_SLOWDOWN_THRESHOLD
from hdeeprm.simulation.objectives import OBJECTIVE_LABELS, objective_name

#: FCFS and SJF in their plain form (lowest free cores), compared besides the 36 pairs.
PLAIN_PAIRS = (("first", "first_fit"), ("shortest", "first_fit"))
#: Per-window metrics (evaluation_windows.csv has each; evaluation.csv their means).
METRICS = WINDOW_METRICS
#: evaluation.csv: these columns, named and meant as in results.csv (TABLE_COLUMNS).
EVALUATION_COLUMNS = ("policy", "kind", "windows", "objective", "objective_mean", "objective_std", "return_mean",
                      "return_std") + WINDOW_METRICS
NAMED_BASELINES = {"first:first_fit": "FCFS", "shortest:first_fit": "SJF",
                   "first:first_fit+easy": "FCFS + EASY", "shortest:first_fit+easy": "SJF + EASY"}


@dataclass
class PolicyOutcome:
    """One contender over the evaluation windows (arrays: one value per window)."""

    policy: str
    kind: str  # agent, random, pair, pair+easy, pair+shutdown, window, window+easy
    objective: np.ndarray
    returns: np.ndarray
    metrics: dict[str, np.ndarray]

    @property
    def mean_objective(self) -> float:
        return float(self.objective.mean())

    @property
    def std_objective(self) -> float:
        return float(self.objective.std(ddof=1)) if len(self.objective) > 1 else math.nan

    @property
    def return_mean(self) -> float:
        return mean_and_std(self.returns)[0]

    @property
    def return_std(self) -> float:
        """Sample standard deviation (n - 1), as ``std_objective`` and results.csv's return_std."""
        return mean_and_std(self.returns)[1]

    mean_return = return_mean  # the names before evaluation.csv took results.csv's
    std_return = return_std

    def metric(self, name: str) -> float:
        return mean_and_std(self.metrics[name])[0]

    @property
    def mean_waiting_time(self) -> float:
        return self.metric("mean_waiting_time")

    @property
    def mean_bounded_slowdown(self) -> float:
        return self.metric("mean_bounded_slowdown")

    @property
    def makespan(self) -> float:
        return self.metric("makespan")

    @property
    def consumed_joules(self) -> float:
        return self.metric("consumed_joules")

    energy_joules = consumed_joules

    def row(self, objective: str) -> dict:
        """This policy's row of evaluation.csv ({column: value}, :data:`EVALUATION_COLUMNS`)."""
        row = {"policy": self.policy, "kind": self.kind, "windows": len(self.objective), "objective": objective,
               "objective_mean": self.mean_objective, "objective_std": self.std_objective,
               "return_mean": self.return_mean, "return_std": self.return_std}
        row.update({m: self.metric(m) for m in WINDOW_METRICS})
        return row


@dataclass
class Evaluation:
    """The outcome of :func:`evaluate`: iterate it for the policies, best first."""

    objective: str
    label: str
    held_out: bool
    windows: list[tuple[int, dict | None]]
    episode_jobs: int | None
    outcomes: list[PolicyOutcome]
    comparisons: list[PairedComparison] = field(default_factory=list)  # the agent against each
    fixed_windows: bool = False  # the experiment's eval_window_starts (they may overlap)

    def __iter__(self):
        return iter(self.outcomes)

    def __len__(self) -> int:
        return len(self.outcomes)

    def __getitem__(self, i):
        return self.outcomes[i]

    def outcome(self, policy: str) -> PolicyOutcome:
        return next(o for o in self.outcomes if o.policy == policy)

    @property
    def agent(self) -> PolicyOutcome | None:
        return next((o for o in self.outcomes if o.kind == "agent"), None)

    def best(self, kind: str) -> PolicyOutcome | None:
        """The contender of ``kind`` (pair, pair+easy, window, window+easy) with the lowest
        mean objective."""
        return next((o for o in self.outcomes if o.kind == kind), None)


def evaluate(config, checkpoint: str | None = None, *, out_dir=None, pairs=None, episodes: int | None = None,
             progress: bool | None = False) -> Evaluation:
    """The agent (greedy, if a checkpoint is given), random valid actions and the classic
    pairs (``pairs``, default the 36 and FCFS and SJF; each without and with EASY) on the
    experiment's evaluation windows (``episodes`` of them at most)."""
    windows = config.evaluation_windows(episodes)
    contenders: list[tuple[str, str, object, object]] = []  # name, kind, env, agent
    agent_env = config.make_env("test", episode_jobs=config.evaluation_jobs)
    if checkpoint:
        from hdeeprm.rl.agents import ALGORITHMS, build_agent
        from hdeeprm.rl.agents.common import load_checkpoint

        agent = build_agent(ALGORITHMS[config.algorithm], config.gamma, config.hidden,
                            agent_env.action_space.n, observation_size(agent_env), seed=config.seed)
        load_checkpoint(checkpoint, agent)
        agent.greedy = True
        contenders.append((f"agent ({config.algorithm})", "agent", agent_env, agent))
    # Random valid actions in the agent's action space (for pairs: the 36, without void; with
    # power_actions the agent's own, which needs void).
    random_env = agent_env
    if config.action_space == "pairs" and not config.power_actions:
        random_env = config.make_env("test", episode_jobs=config.evaluation_jobs, actions=DEFAULT_PAIRS, void=False)
    contenders.append(("random valid actions", "random", random_env, RandomMaskedAgent(config.seed)))
    chosen = list(pairs) if pairs is not None else list(DEFAULT_PAIRS) + list(PLAIN_PAIRS)
    # A fixed pair decides the same whatever the objective: for an objective that the
    # headline metrics give exactly, the pairs run on the compiled path under one it
    # implements, and the objective is read from their metrics.
    metric = _metric_of(config)
    compiled = {"objective": "avg_job_completion"} if metric else {}
    if chosen:
        # A fixed pair never switches a machine off itself (power_actions needs void anyway).
        variants = [(None, "", {}), ("easy", "+easy", {})]
        if config.power_actions:  # the classic policy that switches machines: shutdown after 0 s idle
            variants.append((config.backfill, "+shutdown", {"shutdown": 0.0}))
        for backfill, suffix, extra in variants:
            env = config.make_env("test", episode_jobs=config.evaluation_jobs, action_space="pairs",
                                  actions=tuple(chosen), void=False, backfill=backfill, power_actions=False,
                                  **compiled, **extra)
            for index, (job_key, core_key) in enumerate(chosen):
                contenders.append((f"{job_key}:{core_key}{suffix}", "pair" + suffix, env, FixedActionAgent(index)))
    if config.action_space == "job_window":
        # The classic job-selection heuristics, choosing as the agent does (committing to
        # their pick or not, as the experiment says), over the whole queue (a window as long
        # as the episode).
        whole_queue = config.evaluation_jobs or len(config.data().parts["test"])
        for backfill, suffix in ((None, ""), ("easy", "+easy")):
            env = config.make_env("test", episode_jobs=config.evaluation_jobs, window_jobs=whole_queue,
                                  backfill=backfill)
            for heuristic in WINDOW_HEURISTICS:
                contenders.append((f"window:{heuristic}{suffix}", "window" + suffix, env,
                                   WindowHeuristicAgent(env, heuristic)))
    bar = Progress(len(contenders) * len(windows), "evaluating", enabled=progress)
    outcomes = []
    scale = config.reward_scale
    for name, kind, env, agent in contenders:
        records = []
        for seed, options in windows:
            records.append(run_episode(env, agent, seed=seed, options=options))
            bar.update(records[-1])
        returns = np.array([r.reward for r in records])
        metrics = {key: np.array([r.metrics.get(key, math.nan) for r in records]) for key in METRICS}
        objective = -returns / scale
        if metric and kind.startswith("pair"):
            objective = metrics[metric]
            returns = -objective * scale
        outcomes.append(PolicyOutcome(name, kind, objective, returns, metrics))
    for env in {id(env): env for _, _, env, _ in contenders}.values():
        env.close()
    outcomes.sort(key=lambda o: o.mean_objective)
    objective = objective_name(config.objective_value())
    evaluation = Evaluation(objective, OBJECTIVE_LABELS.get(objective, objective), config.held_out, windows,
                            config.evaluation_jobs, outcomes, fixed_windows=config.eval_window_starts is not None)
    agent_outcome = evaluation.agent
    if agent_outcome is not None and len(windows) > 0:
        evaluation.comparisons = compare_all({o.policy: o.objective for o in outcomes}, agent_outcome.policy)
    if out_dir is not None:
        write_evaluation(evaluation, out_dir)
    return evaluation


def _metric_of(config) -> str | None:
    """The headline metric equal to the experiment's objective, if there is one."""
    if config.objective == "avg_waiting_time":
        return "mean_waiting_time"
    if config.objective == "avg_bounded_slowdown" and config.bsld_bound == BOUNDED_SLOWDOWN_THRESHOLD:
        return "mean_bounded_slowdown"
    return None


def write_evaluation(evaluation: Evaluation, out_dir) -> None:
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    with open(out / "evaluation.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(EVALUATION_COLUMNS)
        for o in evaluation.outcomes:
            row = o.row(evaluation.objective)
            w.writerow([repr(float(v)) if isinstance(v, float) else v for v in (row[c] for c in EVALUATION_COLUMNS)])
    with open(out / "evaluation_windows.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["policy", "window", "seed", "window_start", "objective", "return", *METRICS])
        for o in evaluation.outcomes:
            for k, (seed, options) in enumerate(evaluation.windows):
                start = (options or {}).get("window_start", "")
                w.writerow([o.policy, k, seed, start, repr(float(o.objective[k])), repr(float(o.returns[k])),
                            *(repr(float(o.metrics[m][k])) for m in METRICS)])
    if evaluation.comparisons:
        with open(out / "comparison.csv", "w", newline="") as f:
            fields_ = list(evaluation.comparisons[0].to_dict())
            w = csv.DictWriter(f, fieldnames=fields_)
            w.writeheader()
            for c in evaluation.comparisons:
                w.writerow(c.to_dict())
    try:
        from hdeeprm.analysis.plots.figures import evaluation_figure
    except ImportError:  # matplotlib is optional
        return
    try:
        figure = evaluation_figure({o.policy: o.objective for o in _shown(evaluation)}, evaluation.label,
                                   title=_headline(evaluation),
                                   highlight=evaluation.agent.policy if evaluation.agent else None)
    except ImportError:
        return
    from hdeeprm.analysis.plots import save_figure

    save_figure(figure, out / "evaluation.png")


def _shown(evaluation: Evaluation, top: int = 10) -> list[PolicyOutcome]:
    """The best ``top`` policies, plus the agent, random and the named baselines."""
    shown = []
    for rank, o in enumerate(evaluation.outcomes):
        if rank < top or o.kind in ("agent", "random") or o.policy in NAMED_BASELINES:
            shown.append(o)
    return shown


def _headline(evaluation: Evaluation) -> str:
    n = len(evaluation.windows)
    size = f"{evaluation.episode_jobs} jobs each" if evaluation.episode_jobs else "the whole workload"
    where = "held-out windows of the test part" if evaluation.held_out else "windows"
    if evaluation.fixed_windows:
        where = "given windows" + (" of the held-out test part" if evaluation.held_out else "")
    return f"{evaluation.label} on {n} {where} ({size}), lower is better"


def print_table(evaluation: Evaluation, config=None, stream=None, top: int = 10) -> None:
    """The ranking (best first; the agent, random valid actions, FCFS and SJF always shown),
    then the agent against the baselines a reader asks about, paired over the same windows."""
    stream = sys.stdout if stream is None else stream
    print(f"\n{_headline(evaluation)}:", file=stream)
    if not evaluation.held_out:
        print("  (no test part in the experiment: these windows are other random draws from the jobs the agent "
              "trained on, not held-out data; give the experiment a \"split\")", file=stream)
    header = (f"{'rank':>4}  {'policy':<40} {'objective':>11} {'± std':>9} {'wait s':>10} {'bsld':>9} "
              f"{'makespan s':>12}")
    print(header, file=stream)
    print("-" * len(header), file=stream)
    shown = {o.policy for o in _shown(evaluation, top)}
    for rank, o in enumerate(evaluation.outcomes, 1):
        if o.policy in shown:
            name = o.policy + (f" ({NAMED_BASELINES[o.policy]})" if o.policy in NAMED_BASELINES else "")
            print(f"{rank:>4}  {name:<40} {format_number(o.mean_objective, 5):>11} "
                  f"{format_number(o.std_objective):>9} {format_seconds(o.mean_waiting_time):>10} "
                  f"{format_number(o.mean_bounded_slowdown, 4):>9} {format_seconds(o.makespan):>12}", file=stream)
    agent = evaluation.agent
    if agent is None:
        return
    rank = evaluation.outcomes.index(agent) + 1
    print(f"the agent ranks {rank} of {len(evaluation.outcomes)} by mean {evaluation.label}", file=stream)
    by_baseline = {c.baseline: c for c in evaluation.comparisons}
    picks = []
    for kind, label in (("pair", "best pair"), ("pair+easy", "best pair + EASY"), ("pair+shutdown", "best + shutdown"),
                        ("window", "best heuristic"), ("window+easy", "best heur. + EASY")):
        best = evaluation.best(kind)
        if best is not None:
            picks.append((label, by_baseline[best.policy]))
    for policy, label in NAMED_BASELINES.items():
        if policy in by_baseline:
            picks.append((label, by_baseline[policy]))
    if "random valid actions" in by_baseline:
        picks.append(("random valid", by_baseline["random valid actions"]))
    if not picks:
        return
    n = len(evaluation.windows)
    print(f"\nthe agent against each, paired over the same {n} windows (difference = agent - baseline, "
          f"negative is better for the agent; 95 % t-interval):", file=stream)
    head = (f"{'baseline':<18} {'policy':<28} {'mean':>10} {'difference':>11} {'95 % CI':>23} {'p':>8} "
            f"{'p Holm':>8} {'W/L/T':>10}  verdict")
    print(head, file=stream)
    print("-" * len(head), file=stream)
    for label, c in picks:
        ci = f"[{format_number(c.ci_low)}, {format_number(c.ci_high)}]"
        print(f"{label:<18} {c.baseline:<28} {format_number(c.baseline_mean, 5):>10} "
              f"{format_number(c.mean_difference):>11} {ci:>23} {format_p(c.p_value):>8} "
              f"{format_p(c.p_holm):>8} {f'{c.wins}/{c.losses}/{c.ties}':>10}  {c.verdict}", file=stream)
    print(f"p Holm: the p-value adjusted for the {len(evaluation.comparisons)} comparisons of the agent "
          "(below 0.05: the difference holds even counting every baseline tried)", file=stream)
