"""One energy study end to end: shutdown policies, DVFS and PPO agents on a heterogeneous platform.

The bundled KTH-SP2 excerpt (1,000 jobs, at most 84 processors each) runs on a 128-host
heterogeneous flat platform that this script writes as SimGrid/Batsim XML: three host types
(fast, mid, eco) with different speeds and wattages, each with three computation p-states
(100 / 70 / 40 % of its top speed) and a Batsim sleep p-state with its two virtual switching
p-states (``sleep_pstates``). One SWF processor is one host. Every configuration runs on the
same held-out evaluation windows: the trace's last 40 % of jobs, cut into consecutive windows
that no agent trained on (the experiment's ``split``):

- classic FCFS + EASY backfilling (``first:first_fit``), without shutdown and with the
  shutdown policy at several idle timeouts, and FCFS + EASY with the ``low_power`` core key;
- a powersave rule (``dvfs_idle``): jobs at p-state 0, idle machines sent to the lowest p-state
  whenever nothing can start;
- DVFS at a fixed p-state: ``HeteroEnv(dvfs=True)`` played by the fixed rule "first:first_fit
  at p-state k" (k = 0 is the classic baseline again, which the script checks);
- PPO agents that choose a core key and a p-state at each decision (``dvfs``), trained on the
  first 60 % of the trace, one on ``energy_consumption`` (gamma 1), one on ``avg_bounded_slowdown``
  (gamma 0.99);
- a PPO agent with power actions (``power_actions``): first:first_fit, void, and switching idle
  machines off or sleeping ones on, trained on the same part on ``energy_consumption`` (gamma 1);
- the same power agent trained on ``energy_waiting``: energy + w x the integral of the number
  of waiting jobs, w (``waiting_watts``) fixed from the platform and the training part only
  (see ``waiting_price``), gamma and the learning rate chosen on the training part alone
  (``--select``), its other settings the first power agent's;
- the shutdown policy (after 0 s idle) with DVFS: FCFS + EASY with ``first_fit`` or
  ``low_power`` at each fixed p-state, played by ``HeteroEnv(shutdown=0, dvfs=True)``;
- a PPO agent under that shutdown rule (``shutdown``), which chooses the core key
  (``first_fit`` or ``low_power``) and the p-state at each decision, trained on
  ``energy_waiting``, its settings chosen on the training part alone (``--select-shutdown``).

It prints a table (total energy over the windows, mean waiting time and mean bounded
slowdown over their jobs, the energy_waiting cost, the Pareto front), the energy_waiting power
agent's paired differences against the best shutdown timeout and the shutdown agent's against
the best heuristic, window by window with 95 % t intervals, and draws the energy /
waiting-time trade-off.

    python examples/energy_study.py --quick --out runs/energy-study   # about a minute
    python examples/energy_study.py --out runs/energy-study           # about 8 minutes on two cores
    python examples/energy_study.py --select --out runs/select         # the energy_waiting agent's gamma and lr
    python examples/energy_study.py --select-shutdown --out runs/select  # the shutdown agent's settings

Walltimes: a job slowed by a low p-state or a slow host must not be killed at its requested
time (that would "save" energy by not running it), so each walltime is the trace's
max(requested, run time) x 2.5 (1 / the slowest p-state's 40 %) + 1 s, and the run times are
the trace's on an eco host at p-state 0 (1 Gflop/s, the reference speed). The script checks
that no job is killed. Needs the ``rl`` extra (torch) and matplotlib for the figure.
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import json
import time
from pathlib import Path

import numpy as np

from hdeeprm.common.bundled import TRACES_DIR
from hdeeprm.inputs.workload import ConversionOptions, swf_to_workload
from hdeeprm.inputs.workload.batsim_json import write_batsim_workload
from hdeeprm.rl.experiment import ExperimentConfig
from hdeeprm.simulation.engine import Engine
from hdeeprm.simulation.metrics import headline_metrics
from hdeeprm.simulation.policies import PolicyConfig, run_policy

TRACE = TRACES_DIR / "kth-sp2-head.swf.gz"
FRACTIONS = (1.0, 0.7, 0.4)  # speed of p-states 0, 1, 2 / the host's top speed
# name, hosts, top speed (Gflop/s), (idle W, full-load W) in p-states 0, 1, 2: dynamic power
# falls faster than speed (voltage scales with frequency), static power stays.
HOST_TYPES = (
    ("fast", 32, 2.0, ((100, 300), (95, 180), (90, 125))),
    ("mid", 48, 1.5, ((70, 180), (66, 115), (62, 82))),
    ("eco", 48, 1.0, ((30, 90), (28, 60), (26, 44))),
)
# The sleep p-state (3) and the virtual switch-off (4) and switch-on (5) p-states: asleep at
# 5 W; switching off takes 1 flop at 0.1 flop/s = 10 s at 100 W, on 1 flop at 0.02 flop/s =
# 50 s at 150 W.
SLEEP = ("1f, 0.1f, 0.02f", "5:5, 100:100, 150:150", "3:4:5")
REFERENCE_GFLOPS = 1.0  # trace run times are those of an eco host at p-state 0
WALLTIME_STRETCH = 1 / FRACTIONS[-1]
SHUTDOWNS = (0.0, 60.0, 600.0, 3600.0)  # idle seconds before a machine is sent to sleep
BSLD_BOUND_S = 10.0
PAIRS = {"first": ["first_fit", "high_gflops", "low_power"]}  # the DVFS agents' base actions
POWER_PAIRS = {"first": ["first_fit"]}  # the power agent's: one pair, void, then the four power actions
# The energy_waiting power agent's gamma and learning rate, among SELECT_CANDIDATES, chosen by
# ``--select`` on the training part alone (trained on its first 3/4, jobs 0-449 of the full
# run's 1,000, validated on the 3 windows of its last 1/4, jobs 450-599): the lowest mean
# energy_waiting cost there among the candidates whose training took at most
# SELECT_MAX_DECISIONS decisions (about a minute: the study's budget is about 3 minutes in
# all). The held-out windows play no part in it. A policy that switches machines off and on
# all the time makes tens of thousands of decisions per window, each a PPO step to train.
SELECT_CANDIDATES = ((1.0, 1e-3), (1.0, 3e-4), (0.99, 1e-3))
SELECT_SPLIT = {"train": [0, 0.45], "validation": [0.45, 0.6]}
SELECT_MAX_DECISIONS = 60_000
TRADE_GAMMA, TRADE_LR = 1.0, 1e-3
SHUTDOWN_IDLE_S = 0.0  # the shutdown rule under the DVFS heuristics and the shutdown agent
SHUTDOWN_PAIRS = {"first": ["first_fit", "low_power"]}  # the shutdown agent's base actions, each at every p-state
# The shutdown agent's gamma, learning rate, episodes and observation, among
# SHUTDOWN_CANDIDATES, chosen by ``--select-shutdown`` as ``--select`` does (trained on jobs
# 0-449, validated on the 3 windows of jobs 450-599): the lowest mean energy_waiting cost on
# the validation windows, ties going to the candidate trained on fewer decisions.
SHUTDOWN_CANDIDATES = ((1.0, 1e-3, 300, "normal"), (1.0, 3e-4, 600, "normal"), (0.99, 1e-3, 600, "normal"),
                       (0.99, 1e-3, 600, "small"), (0.99, 3e-4, 1200, "small"), (0.99, 1e-3, 1500, "normal"))
SHUTDOWN_SETTINGS = (0.99, 1e-3, 600, "normal")
# Student's t quantiles t(0.975, df), df = windows - 1: the paired differences' 95 % intervals.
T975 = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 6: 2.447, 7: 2.365, 8: 2.306, 9: 2.262, 10: 2.228,
        11: 2.201, 12: 2.179, 13: 2.160, 14: 2.145, 15: 2.131, 16: 2.120, 17: 2.110, 18: 2.101, 19: 2.093,
        20: 2.086}


def write_platform(path: Path) -> None:
    # A Vivaldi zone at coordinates 0 0 0 with no links: Batsim's own messages take no simulated
    # time there, so real Batsim (and `hdeeprm batsim`) group events exactly as the engine does.
    # In a Full zone each message between Batsim's actors on master_host takes 1e-10 s.
    hosts = []
    for name, count, gflops, watts in HOST_TYPES:
        speeds = ", ".join(f"{gflops * f:g}Gf" for f in FRACTIONS) + ", " + SLEEP[0]
        wattage = ", ".join(f"{idle}:{full}" for idle, full in watts) + ", " + SLEEP[1]
        for _ in range(count):  # Batsim numbers hosts in the byte order of their ids: fast ones first
            hosts.append(f'    <host id="h{len(hosts):03d}-{name}" coordinates="0 0 0" speed="{speeds}" pstate="0">\n'
                         f'      <prop id="wattage_per_state" value="{wattage}"/>\n'
                         f'      <prop id="sleep_pstates" value="{SLEEP[2]}"/>\n    </host>')
    path.write_text("<?xml version='1.0'?>\n"
                    '<!DOCTYPE platform SYSTEM "https://simgrid.org/simgrid.dtd">\n'
                    '<platform version="4.1">\n  <zone id="AS0" routing="Vivaldi">\n'
                    '    <host id="master_host" coordinates="0 0 0" speed="1Gf">'
                    '<prop id="wattage_per_state" value="0:0"/></host>\n'
                    + "\n".join(hosts) + "\n  </zone>\n</platform>\n")


def write_workload(path: Path, nb_jobs: int, nb_hosts: int) -> None:
    options = ConversionOptions(nb_jobs=nb_jobs, reference_speed_gflops=REFERENCE_GFLOPS, max_res=nb_hosts,
                                memory_demand="none", kill_at_requested_time=False)
    workload, _ = swf_to_workload(TRACE, options, rng=np.random.default_rng(0))
    jobs = tuple(dataclasses.replace(job, walltime=round(job.walltime * WALLTIME_STRETCH + 1.0, 3))
                 for job in workload.jobs)
    write_batsim_workload(dataclasses.replace(workload, jobs=jobs), path)


def waiting_price(config: ExperimentConfig) -> float:
    """energy_waiting's w (W per waiting job), from the platform and the training part only: the
    platform's mean idle power per host (p-state 0) x the mean number of hosts a training job
    requests, the idle draw of the machines a typical job needs. At this price, keeping a
    job's machines awake and idle for it and letting it wait cost the same, so a policy that
    sends machines to sleep pays for the waiting it causes at the rate it saves."""
    idle_per_host = sum(count * watts[0][0] for _, count, _, watts in HOST_TYPES) / sum(t[1] for t in HOST_TYPES)
    return round(idle_per_host * float(config.data().parts["train"].res.mean()), 1)


def experiment(out: Path, args, objective: str, reward_scale: float, gamma: float,
               power: bool = False, waiting_watts: float | None = None, lr: float = 1e-3,
               split: dict | None = None, name: str | None = None, shutdown: bool = False,
               episodes: int | None = None, observation: str = "normal") -> ExperimentConfig:
    """The DVFS agents' experiment; with ``power`` the power agent's: its pair and void
    (which power_actions needs), the four power actions, no DVFS (power_actions excludes it);
    with ``shutdown`` the shutdown agent's: SHUTDOWN_PAIRS at every p-state (dvfs) under the
    shutdown rule after SHUTDOWN_IDLE_S. ``split`` and ``name``: the --select experiments on
    the training part alone; ``episodes``: instead of the study's (not under --quick)."""
    pairs = POWER_PAIRS if power else SHUTDOWN_PAIRS if shutdown else PAIRS
    data = {"platform": "platform.xml", "workload": "jobs.json", "nb_jobs": None,
            "split": split or {"train": [0, 0.6], "test": [0.6, 1]},
            "episode_jobs": args.window_jobs, "eval_episodes": args.eval_windows,
            "objective": objective, "reward_scale": reward_scale, "observation": observation,
            "actions": {"selection": [pairs], "void": power}, "backfill": "easy",
            "dvfs": not power, "power_actions": power, "shutdown": SHUTDOWN_IDLE_S if shutdown else None,
            "algorithm": "ppo", "episodes": args.episodes if episodes is None or args.quick else episodes,
            "gamma": gamma, "hidden": 64, "lr": lr, "seed": args.seed, "episode_outputs": "none"}
    if waiting_watts is not None:
        data["waiting_watts"] = waiting_watts
    kind = "power-" if power else "shutdown-" if shutdown else ""
    path = out / f"experiment-{name or kind + objective}.json"
    path.write_text(json.dumps(data, indent=2) + "\n")
    return ExperimentConfig.load(path)


def metrics_of(result, engine) -> dict:
    """One window's run: Batsim's energy (to the last job's end), what the platform had
    consumed and drew when the simulation ended (after the last switches, under shutdown), and
    the sums of waiting times and bounded slowdowns."""
    m = headline_metrics(result)
    if m.nb_walltime_killed or m.nb_rejected:
        raise SystemExit(f"a job was killed or rejected ({m}): the study compares complete runs only")
    waits = result.start - result.workload.subtime
    bsld = np.maximum(1.0, (result.finish - result.workload.subtime)
                      / np.maximum(result.finish - result.start, BSLD_BOUND_S))
    return {"batsim_j": float(m.consumed_joules), "end_s": float(engine.now), "end_j": float(engine.energy_so_far()),
            "end_w": float(engine.power.sum()), "wait_sum": float(waits.sum()), "bsld_sum": float(bsld.sum()),
            "jobs": int(m.nb_jobs)}


def classic_runs(config: ExperimentConfig, windows, policy: PolicyConfig) -> list[dict]:
    data = config.data()
    rows = []
    for seed, options in windows:
        engine = Engine(data.platform, data.parts["test"].window(options["window_start"], config.evaluation_jobs))
        rows.append(metrics_of(run_policy(engine, policy, rng=np.random.default_rng(seed)), engine))
    return rows


def fixed_pstate_runs(config: ExperimentConfig, windows, pstate: int, core_key: str = "first_fit",
                      part: str = "test") -> list[dict]:
    """The fixed rule "first:``core_key`` at p-state ``pstate``" in the DVFS agents' environment
    (or the shutdown agent's, under its shutdown rule)."""
    env = config.make_env(part)
    action = env.action_names().index(f"first:{core_key} @ p-state {pstate}")
    rows = []
    for seed, options in windows:
        env.reset(seed=seed, options=dict(options))
        done = False
        while not done:
            _, _, done, _, _ = env.step(action)
        rows.append(metrics_of(env.result(), env.engine))
    return rows


def idle_pstate_runs(config: ExperimentConfig, windows, idle_pstate: int) -> list[dict]:
    """A powersave rule with ``dvfs_idle``: FCFS + EASY + first_fit with jobs at p-state 0, and
    whenever nothing can start, void at ``idle_pstate``, which sends every idle machine there."""
    config = dataclasses.replace(config, actions={"selection": [{"first": ["first_fit"]}], "void": True},
                                 dvfs_idle=True)
    env = config.make_env("test")
    wait_low = idle_pstate * 2 + 1  # base actions: first:first_fit (0), void (1); B = 2
    rows = []
    for seed, options in windows:
        env.reset(seed=seed, options=dict(options))
        done = False
        while not done:
            _, _, done, _, _ = env.step(0 if env.action_masks()[0] else wait_low)
        rows.append(metrics_of(env.result(), env.engine))
    return rows


def agent_runs(config: ExperimentConfig, windows, run_dir: Path, part: str = "test") -> tuple[list[dict], dict, float]:
    """Train, then play greedily on every window (of the ``part``): the rows, and per action
    name the decisions that took it and the jobs they started."""
    from hdeeprm.rl.agents import ALGORITHMS, build_agent
    from hdeeprm.rl.agents.common import load_checkpoint
    from hdeeprm.rl.train import observation_size, run_episode, train

    t0 = time.perf_counter()
    train(config, run_dir, progress=False)
    seconds = time.perf_counter() - t0
    env = config.make_env(part)
    agent = build_agent(ALGORITHMS[config.algorithm], config.gamma, config.hidden, env.action_space.n,
                        observation_size(env), seed=config.seed)
    load_checkpoint(run_dir / "model.pt", agent)
    agent.greedy = True
    names = env.action_names()
    rows, decisions, started = [], np.zeros(len(names), np.int64), np.zeros(len(names), np.int64)
    for seed, options in windows:
        record = run_episode(env, agent, seed=seed, options=dict(options))
        rows.append(metrics_of(record.result, env.engine))
        for action, jobs in zip(record.actions, record.started_per_step):
            decisions[action] += 1
            started[action] += jobs
    return rows, {"names": names, "decisions": decisions, "started": started}, seconds


def add_horizon_energy(runs) -> None:
    """Energy over a common horizon per window: Batsim's figure stops at the last job's end,
    so a run that ends later pays the whole platform's idle power for longer while one that
    ends sooner pays nothing after its end. Here every run of a window is billed up to the
    latest end among them: what it had consumed when it ended, plus what the platform drew
    then (idle machines at their p-states, or asleep) until that horizon."""
    for w in range(len(runs[0][2])):
        horizon = max(rows[w]["end_s"] for _, _, rows in runs)
        for _, _, rows in runs:
            r = rows[w]
            r["energy_j"] = r["end_j"] + r["end_w"] * (horizon - r["end_s"])
            r["horizon_s"] = horizon


def select(out: Path, args, waiting_watts: float) -> tuple[float, float]:
    """--select: each candidate (gamma, lr) trained on the training part's first 3/4 and played
    greedily on the windows of its last 1/4; the one with the lowest mean energy_waiting cost
    there (minus its return) among those trained within SELECT_MAX_DECISIONS decisions, which
    the study's constants TRADE_GAMMA and TRADE_LR record."""
    scores, feasible = {}, set()
    for gamma, lr in SELECT_CANDIDATES:
        name = f"select-gamma{gamma:g}-lr{lr:g}"
        cfg = experiment(out, args, "energy_waiting", 1e-9, gamma, power=True, waiting_watts=waiting_watts, lr=lr,
                         split=SELECT_SPLIT, name=name)
        windows = cfg.validation_windows()
        rows, counts, seconds = agent_runs(cfg, windows, out / f"agent-{name}", part="validation")
        costs = [r["end_j"] + waiting_watts * r["wait_sum"] for r in rows]
        scores[gamma, lr] = float(np.mean(costs))
        with open(out / f"agent-{name}" / "actions.log") as f:
            trained = sum(1 for _ in f)  # one line a training decision
        if trained <= SELECT_MAX_DECISIONS:
            feasible.add((gamma, lr))
        print(f"gamma {gamma:g}, lr {lr:g}: {cfg.episodes} episodes, {trained} decisions, in {seconds:.0f} s; on "
              f"{len(windows)} validation "
              f"windows of {cfg.evaluation_jobs} jobs mean C {scores[gamma, lr] / 1e9:.4f} GJ, mean wait "
              f"{sum(r['wait_sum'] for r in rows) / sum(r['jobs'] for r in rows):.0f} s; decisions: "
              + ", ".join(f"{n} {k}" for n, k in zip(counts["names"], counts["decisions"])), flush=True)
    best = min(feasible or scores, key=scores.get)
    print(f"selected: gamma {best[0]:g}, lr {best[1]:g} (the study uses gamma {TRADE_GAMMA:g}, lr {TRADE_LR:g})")
    return best


def select_shutdown(out: Path, args, waiting_watts: float) -> tuple:
    """--select-shutdown: each of SHUTDOWN_CANDIDATES trained on the training part's first 3/4
    and played greedily on the windows of its last 1/4, beside the fixed rules it chooses among;
    the lowest energy_waiting cost there wins, ties going to fewer training decisions
    (SHUTDOWN_SETTINGS records the choice)."""
    scores, decisions = {}, {}
    for candidate in SHUTDOWN_CANDIDATES:
        gamma, lr, episodes, observation = candidate
        name = f"select-shutdown-gamma{gamma:g}-lr{lr:g}-{episodes}-{observation}"
        cfg = experiment(out, args, "energy_waiting", 1e-9, gamma, waiting_watts=waiting_watts, lr=lr,
                         split=SELECT_SPLIT, name=name, shutdown=True, episodes=episodes, observation=observation)
        windows = cfg.validation_windows()
        if not scores:  # the fixed rules on the same windows, for comparison
            for key in SHUTDOWN_PAIRS["first"]:
                for pstate in range(len(FRACTIONS)):
                    rows = fixed_pstate_runs(cfg, windows, pstate, key, part="validation")
                    costs = [r["end_j"] + waiting_watts * r["wait_sum"] for r in rows]
                    print(f"fixed first:{key} at p-state {pstate}: C {sum(costs) / 1e9:.4f} GJ over the "
                          f"{len(windows)} windows", flush=True)
        rows, counts, seconds = agent_runs(cfg, windows, out / f"agent-{name}", part="validation")
        scores[candidate] = float(sum(r["end_j"] + waiting_watts * r["wait_sum"] for r in rows))
        with open(out / f"agent-{name}" / "actions.log") as f:
            decisions[candidate] = sum(1 for _ in f)  # one line a training decision
        print(f"gamma {gamma:g}, lr {lr:g}, {episodes} episodes, {observation} observation: {decisions[candidate]} "
              f"decisions in {seconds:.0f} s; C over the {len(windows)} validation windows "
              f"{scores[candidate] / 1e9:.4f} GJ; jobs started: "
              + ", ".join(f"{n} {k}" for n, k in zip(counts["names"], counts["started"]) if k), flush=True)
    best = min(scores, key=lambda c: (scores[c], decisions[c]))
    print(f"selected: {best} (the study uses {SHUTDOWN_SETTINGS})")
    return best


def add_objective(runs, waiting_watts: float) -> None:
    """energy_waiting's cost C of every run, as the environment bills it: the energy from the
    first submission (t = 0 in a window) to the simulation's end, plus w x the waiting times."""
    for _, _, rows in runs:
        for r in rows:
            r["cost_j"] = r["end_j"] + waiting_watts * r["wait_sum"]


def paired(a: list[float], b: list[float]) -> tuple[float, float, float]:
    """The mean of the paired differences a - b and its 95 % t interval (Student's t, windows - 1
    degrees of freedom)."""
    d = np.asarray(a, dtype=float) - np.asarray(b, dtype=float)
    half = T975[len(d) - 1] * float(d.std(ddof=1)) / np.sqrt(len(d)) if len(d) > 1 else float("nan")
    return float(d.mean()), float(d.mean()) - half, float(d.mean()) + half


def pareto(points: dict[str, tuple[float, float]]) -> set[str]:
    """The configurations that no other beats on both energy and waiting time."""
    return {name for name, (w, e) in points.items()
            if not any((w2 <= w and e2 <= e) and (w2 < w or e2 < e) for w2, e2 in points.values())}


def plot(path: Path, table: list[dict], title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from hdeeprm.analysis.plots.style import (
        BLACK,
        BLUE,
        GREEN,
        ORANGE,
        PURPLE,
        SKY,
        VERMILLION,
        YELLOW,
        applied,
        get_style,
    )

    colours = {"classic": BLUE, "shutdown": GREEN, "dvfs": ORANGE, "agent": VERMILLION, "placement": BLACK,
               "power agent": PURPLE, "power agent, energy_waiting": SKY, "shutdown+dvfs": YELLOW,
               "shutdown agent": VERMILLION}
    markers = {"classic": "o", "shutdown": "s", "dvfs": "^", "agent": "*", "placement": "D", "power agent": "P",
               "power agent, energy_waiting": "X", "shutdown+dvfs": "v", "shutdown agent": "h"}
    big = ("agent", "power agent", "power agent, energy_waiting", "shutdown agent")
    panels = (("energy_j", "energy, common horizon per window (GJ)"),
              ("batsim_j", "energy to each run's last job end (GJ)\n(Batsim's consumed_joules)"))
    with applied(get_style("default")):
        fig, axes = plt.subplots(1, 2, figsize=(11, 4.6))
        for ax, (key, ylabel) in zip(axes, panels):
            front = pareto({r["name"]: (r["mean_wait_s"], r[key]) for r in table})
            seen = set()
            labels: dict[tuple[float, float], list[str]] = {}  # runs on the same point share a label
            for row in table:
                kind = row["kind"]
                x, y = row["mean_wait_s"], row[key] / 1e9
                ax.scatter(x, y, s=110 if kind in big else 45, color=colours[kind], marker=markers[kind],
                           zorder=3, edgecolor="black" if row["name"] in front else "none", linewidth=1.2,
                           label=None if kind in seen else kind)
                seen.add(kind)
                labels.setdefault((round(x, 1), round(y, 3)), []).append(row["name"])
            # Waiting times span 0 to tens of thousands of seconds (the power agent's): linear up
            # to 100 s, logarithmic above, with room on the right for the labels.
            ax.set_xscale("symlog", linthresh=100, linscale=0.5)
            ax.set_ylim(bottom=0)
            ax.set_xlim(0, 4 * max(100.0, max(r["mean_wait_s"] for r in table)))
            ax.autoscale_view()
            placed: list[tuple[float, float]] = []  # (x, top) of the labels placed: pushed apart where points crowd
            for (x, y), names in sorted(labels.items(), key=lambda item: item[0][1]):
                if len(names) > 1:  # a point shared by several runs: its label to its left, one name a line
                    ax.annotate("\n= ".join(names), (x, y), textcoords="offset pixels", xytext=(-9, 0), ha="right",
                                va="center", fontsize=6.5, linespacing=1.1)
                    continue
                px, py = ax.transData.transform((x, y))
                bottom = py - 4
                for qx, top in placed:
                    if abs(qx - px) < 60 and bottom < top + 1:
                        bottom = top + 1
                placed.append((px, bottom + 10))
                ax.annotate(names[0], (x, y), textcoords="offset pixels", xytext=(7, bottom - py), fontsize=6.5,
                            va="bottom")
            ordered = sorted((r["mean_wait_s"], r[key] / 1e9) for r in table if r["name"] in front)
            ax.step(*zip(*ordered), where="post", color="#555555", lw=0.8, ls="--", zorder=2,
                    label="Pareto front (outlined)")
            ax.set_xlabel("mean waiting time (s; logarithmic above 100 s)")
            ax.set_ylabel(ylabel)
        axes[0].legend(fontsize=7, loc="lower right", ncol=2)
        fig.suptitle(title, fontsize=9)
        fig.tight_layout()
        fig.savefig(path, dpi=90)
        plt.close(fig)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help="400 jobs, 12 training episodes per agent, 2 held-out windows: about a minute")
    parser.add_argument("--out", default="runs/energy-study", help="output folder (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--select", action="store_true",
                        help="choose the energy_waiting agent's gamma and learning rate on the training part, then stop")
    parser.add_argument("--select-shutdown", action="store_true",
                        help="choose the shutdown agent's settings on the training part, then stop")
    args = parser.parse_args(argv)
    # --quick: the agents barely trained, the power agents' greedy policies may switch a machine
    # off and on again and again, tens of thousands of decisions per window: 2 held-out windows.
    args.nb_jobs, args.window_jobs, args.episodes, args.eval_windows = ((400, 40, 12, 2) if args.quick
                                                                        else (1000, 50, 300, 1000))  # 1000: every one
    t0 = time.perf_counter()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    write_platform(out / "platform.xml")
    write_workload(out / "jobs.json", args.nb_jobs, sum(t[1] for t in HOST_TYPES))
    # gamma 1 for energy: each step's reward is the energy drawn until the next decision, and a
    # slow p-state's cost (a longer tail) comes at the episode's end; discounted (0.99), PPO
    # learns the myopic lowest-power action and its training returns get worse.
    energy_cfg = experiment(out, args, "energy_consumption", 1e-9, 1.0)
    bsld_cfg = experiment(out, args, "avg_bounded_slowdown", 0.1, 0.99)
    # The power agent on the same objective and gamma: switching a machine off saves its idle
    # watts until it is woken, and the energy of the switches and of a longer tail is billed too.
    power_cfg = experiment(out, args, "energy_consumption", 1e-9, 1.0, power=True)
    # The same power agent on energy_waiting: w from the platform and the training part
    # (waiting_price), gamma and the learning rate chosen on the training part (--select),
    # nothing tuned on the held-out windows.
    waiting_watts = waiting_price(power_cfg)
    if args.select:
        select(out, args, waiting_watts)
        return 0
    if args.select_shutdown:
        select_shutdown(out, args, waiting_watts)
        return 0
    trade_cfg = experiment(out, args, "energy_waiting", 1e-9, TRADE_GAMMA, power=True, waiting_watts=waiting_watts,
                           lr=TRADE_LR)
    gamma, lr, episodes, observation = SHUTDOWN_SETTINGS
    shutdown_cfg = experiment(out, args, "energy_waiting", 1e-9, gamma, waiting_watts=waiting_watts, lr=lr,
                              shutdown=True, episodes=episodes, observation=observation)
    windows = energy_cfg.evaluation_windows()
    assert (windows == bsld_cfg.evaluation_windows() == power_cfg.evaluation_windows() == trade_cfg.evaluation_windows()
            == shutdown_cfg.evaluation_windows())
    starts = [options["window_start"] for _, options in windows]
    n_test = len(energy_cfg.data().parts["test"])
    where = (f"{len(windows)} held-out windows of {energy_cfg.evaluation_jobs} jobs (test part: jobs "
             f"{args.nb_jobs - n_test}-{args.nb_jobs - 1} of the trace; window starts {starts})")
    print(f"{TRACE.name}: first {args.nb_jobs} jobs on 128 hosts "
          f"({', '.join(f'{n} {name}' for name, n, _, _ in HOST_TYPES)}); evaluation on {where}")

    runs: list[tuple[str, str, list[dict]]] = []  # name, kind, per-window rows
    runs.append(("FCFS+EASY", "classic", classic_runs(energy_cfg, windows, PolicyConfig("first", "first_fit", "easy"))))
    for idle in SHUTDOWNS:
        policy = PolicyConfig("first", "first_fit", "easy", shutdown=idle)
        runs.append((f"shutdown {idle:g} s", "shutdown", classic_runs(energy_cfg, windows, policy)))
    runs.append(("FCFS+EASY low_power", "placement",
                 classic_runs(energy_cfg, windows, PolicyConfig("first", "low_power", "easy"))))
    for pstate in range(len(FRACTIONS)):
        runs.append((f"DVFS p{pstate} ({FRACTIONS[pstate]:.0%})", "dvfs", fixed_pstate_runs(energy_cfg, windows, pstate)))
    # The fixed rule at p-state 0 is FCFS + EASY + first_fit: the environment and the classic
    # policy must agree on it exactly.
    assert all(a["batsim_j"] == b["batsim_j"] and a["wait_sum"] == b["wait_sum"]
               for a, b in zip(runs[0][2], runs[-3][2])), "HeteroEnv at p-state 0 differs from FCFS+EASY"
    low = len(FRACTIONS) - 1
    runs.append((f"FCFS+EASY, idle at p{low} ({FRACTIONS[low]:.0%})", "dvfs", idle_pstate_runs(energy_cfg, windows, low)))
    # The shutdown rule with DVFS: each of the shutdown agent's actions as a fixed rule. The
    # first one is the classic shutdown policy: the environment and the policy must agree on it.
    shutdown_rows = dict((name, rows) for name, _, rows in runs)[f"shutdown {SHUTDOWN_IDLE_S:g} s"]
    for key in SHUTDOWN_PAIRS["first"]:
        for pstate in range(len(FRACTIONS)):
            rows = fixed_pstate_runs(shutdown_cfg, windows, pstate, key)
            if (key, pstate) == ("first_fit", 0):
                assert all(a["batsim_j"] == b["batsim_j"] and a["end_j"] == b["end_j"] and a["wait_sum"] == b["wait_sum"]
                           for a, b in zip(rows, shutdown_rows)), "HeteroEnv(shutdown=0) differs from the shutdown policy"
                continue
            runs.append((f"shutdown {SHUTDOWN_IDLE_S:g} s, {key} p{pstate}", "shutdown+dvfs", rows))
    chosen = {}
    for label, cfg in (("PPO energy", energy_cfg), ("PPO bsld", bsld_cfg)):
        rows, counts, seconds = agent_runs(cfg, windows, out / f"agent-{cfg.objective}")
        runs.append((label, "agent", rows))
        chosen[label] = counts
        share = counts["started"].reshape(len(FRACTIONS), len(PAIRS["first"])) / max(1, counts["started"].sum())
        print(f"{label}: {cfg.episodes} PPO episodes of {cfg.episode_jobs} jobs in {seconds:.0f} s; its jobs on the "
              "held-out windows by p-state: " + ", ".join(f"p{k} {share[k].sum():.0%}" for k in range(len(share)))
              + "; by core key: " + ", ".join(f"{key} {share[:, i].sum():.0%}" for i, key in enumerate(PAIRS["first"])))
    for label, kind, cfg in (("PPO power energy", "power agent", power_cfg),
                             ("PPO power energy+wait", "power agent, energy_waiting", trade_cfg)):
        rows, counts, seconds = agent_runs(cfg, windows, out / f"agent-power-{cfg.objective}")
        runs.append((label, kind, rows))
        chosen[label] = counts
        print(f"{label}: {cfg.episodes} PPO episodes of {cfg.episode_jobs} jobs on {cfg.objective}"
              + (f" (waiting_watts {cfg.waiting_watts:g} W)" if cfg.objective == "energy_waiting" else "")
              + f" in {seconds:.0f} s; its decisions on the held-out windows: "
              + ", ".join(f"{name} {n}" for name, n in zip(counts["names"], counts["decisions"])))
    rows, counts, seconds = agent_runs(shutdown_cfg, windows, out / "agent-shutdown-energy_waiting")
    runs.append(("PPO under shutdown", "shutdown agent", rows))
    chosen["PPO under shutdown"] = counts
    print(f"PPO under shutdown: {shutdown_cfg.episodes} PPO episodes of {shutdown_cfg.episode_jobs} jobs on "
          f"energy_waiting in {seconds:.0f} s; jobs it started on the held-out windows: "
          + ", ".join(f"{name} {n}" for name, n in zip(counts["names"], counts["started"]) if n))
    add_horizon_energy(runs)
    add_objective(runs, waiting_watts)

    table = []
    for name, kind, rows in runs:
        jobs = sum(r["jobs"] for r in rows)
        table.append({"name": name, "kind": kind, "energy_j": sum(r["energy_j"] for r in rows),
                      "batsim_j": sum(r["batsim_j"] for r in rows),
                      "mean_wait_s": sum(r["wait_sum"] for r in rows) / jobs,
                      "mean_bsld": sum(r["bsld_sum"] for r in rows) / jobs, "cost_j": sum(r["cost_j"] for r in rows),
                      "windows": len(rows), "jobs": jobs})
    front = pareto({r["name"]: (r["mean_wait_s"], r["energy_j"]) for r in table})
    front_batsim = pareto({r["name"]: (r["mean_wait_s"], r["batsim_j"]) for r in table})
    base = table[0]
    print(f"\n{'configuration':<30} {'energy (GJ)':>11} {'vs base':>8} {'to last end':>11} {'mean wait (s)':>13} "
          f"{'mean bsld':>9} {'C (GJ)':>7}  Pareto (horizon, to last end)")
    for row in table:
        print(f"{row['name']:<30} {row['energy_j'] / 1e9:11.3f} {row['energy_j'] / base['energy_j'] - 1:+8.1%} "
              f"{row['batsim_j'] / 1e9:11.3f} {row['mean_wait_s']:13.0f} {row['mean_bsld']:9.2f} "
              f"{row['cost_j'] / 1e9:7.3f}  "
              f"{'*' if row['name'] in front else '-'} {'*' if row['name'] in front_batsim else '-'}")
    print(f"every row: the same {where}; energy up to each window's latest end among the rows (to last end: "
          "Batsim's consumed_joules, up to the run's own last job end); C: energy_waiting's cost at "
          f"waiting_watts {waiting_watts:g} W (energy to the simulation's end + w x waiting job-seconds)")
    # The agents window by window against the baseline and a shutdown point.
    per_window = {name: rows for name, _, rows in runs}
    for label in chosen:
        for other in ("FCFS+EASY", "shutdown 600 s"):
            less_energy = sum(a["energy_j"] < b["energy_j"] for a, b in zip(per_window[label], per_window[other]))
            less_wait = sum(a["wait_sum"] < b["wait_sum"] for a, b in zip(per_window[label], per_window[other]))
            same_wait = sum(a["wait_sum"] == b["wait_sum"] for a, b in zip(per_window[label], per_window[other]))
            print(f"{label} vs {other}: less energy on {less_energy}/{len(windows)} windows; less waiting on "
                  f"{less_wait}, the same on {same_wait}")
    # The energy_waiting agents against the strongest rival on their own objective (the lowest
    # total C over the windows): the power agent against the best shutdown timeout, the
    # shutdown agent against the best of every heuristic row (in hindsight, on these windows),
    # window by window: mean paired difference (agent - rival) and its 95 % t interval.
    heuristics = ("classic", "shutdown", "placement", "dvfs", "shutdown+dvfs")
    rivals = (("PPO power energy+wait", min((row for row in table if row["kind"] == "shutdown"),
                                            key=lambda row: row["cost_j"])["name"]),
              ("PPO under shutdown", min((row for row in table if row["kind"] in heuristics),
                                         key=lambda row: row["cost_j"])["name"]))
    differences = []
    for label, best in rivals:
        agent, other = per_window[label], per_window[best]
        for key, unit, scale in (("energy_j", "GJ", 1e9), ("mean_wait_s", "s", 1.0), ("cost_j", "GJ", 1e9)):
            values = [[(r["wait_sum"] / r["jobs"] if key == "mean_wait_s" else r[key]) / scale for r in rows]
                      for rows in (agent, other)]
            mean, low, high = paired(*values)
            wins = sum(a < b for a, b in zip(*values))
            differences.append({"agent": label, "against": best, "metric": key, "unit": unit, "mean_difference": mean,
                                "ci_low": low, "ci_high": high, "agent_lower_on": wins, "windows": len(windows)})
            print(f"{label} - {best}, {key} ({unit}) per window: mean {mean:+.4g}, 95 % t interval "
                  f"[{low:+.4g}, {high:+.4g}]; lower on {wins}/{len(windows)} windows")

    with open(out / "results.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, ["name", "kind", "energy_j", "batsim_j", "mean_wait_s", "mean_bsld", "cost_j",
                                    "windows", "jobs", "pareto", "pareto_batsim"])
        writer.writeheader()
        for row in table:
            writer.writerow({**row, "pareto": row["name"] in front, "pareto_batsim": row["name"] in front_batsim})
    with open(out / "windows.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["name", "window_start", "energy_j", "batsim_j", "horizon_s", "end_s", "mean_wait_s",
                         "mean_bsld", "cost_j"])
        for name, _, rows in runs:
            for start, r in zip(starts, rows):
                writer.writerow([name, start, r["energy_j"], r["batsim_j"], r["horizon_s"], r["end_s"],
                                 r["wait_sum"] / r["jobs"], r["bsld_sum"] / r["jobs"], r["cost_j"]])
    with open(out / "paired.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, list(differences[0]))
        writer.writeheader()
        writer.writerows(differences)
    try:
        plot(out / "energy_study.png", table,
             f"KTH-SP2 jobs {args.nb_jobs - n_test}-{args.nb_jobs - 1} ({len(windows)} held-out windows), "
             "128 heterogeneous hosts")
        print(f"figure: {out / 'energy_study.png'}")
    except ImportError:
        print("matplotlib is missing: no figure (pip install -e '.[plot]')")
    print(f"results: {out / 'results.csv'}, {out / 'windows.csv'}, {out / 'paired.csv'}; "
          f"{time.perf_counter() - t0:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
