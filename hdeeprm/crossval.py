"""Cross-validation: the same experiment on the embedded engine and on real Batsim.

``crossvalidate`` runs a classic policy on both backends; ``crossvalidate_options`` runs one
episode of an original HDeepRM options file (its classic action, or a trained agent) on
both. Each backend writes Batsim-named outputs in its own folder (``embedded/``, and
``batsim/`` where Batsim itself wrote them), and ``compare_runs`` compares the two folders
job by job: final state, start and finish times, allocation and energy, then the run's
aggregates. They agree when times match to 1e-6 s and energies to 1e-6 relative, the
criteria of the project's fidelity checks.

The embedded side runs with SimGrid's energy-plugin quirk on (every machine billed in
p-state 0 until its first energy update), since real Batsim has it.
"""

from __future__ import annotations

import csv
import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from .errors import FormatError

TIME_TOLERANCE_S = 1e-6
ENERGY_RELATIVE_TOLERANCE = 1e-6
# Batsim prints times with 6 decimals; allow the printing error on top of the tolerance.
_PRINT_SLACK_S = 1e-6


@dataclass(frozen=True)
class JobDifference:
    job_id: str
    field: str
    embedded: str
    batsim: str


@dataclass(frozen=True)
class AggregateRow:
    metric: str
    embedded: float
    batsim: float
    agree: bool

    @property
    def relative_difference(self) -> float:
        scale = max(abs(self.embedded), abs(self.batsim))
        return abs(self.embedded - self.batsim) / scale if scale else 0.0


@dataclass
class CrossvalReport:
    embedded_dir: str
    batsim_dir: str
    jobs_compared: int
    differences: list[JobDifference] = field(default_factory=list)
    aggregates: list[AggregateRow] = field(default_factory=list)

    @property
    def jobs_differing(self) -> int:
        return len({d.job_id for d in self.differences})

    @property
    def agree(self) -> bool:
        return not self.differences and all(row.agree for row in self.aggregates)

    def summary(self, max_jobs: int = 10) -> str:
        lines = [f"{'metric':<22} {'embedded':>18} {'batsim':>18} {'rel. diff':>10}"]
        for row in self.aggregates:
            mark = "" if row.agree else "  <- differs"
            lines.append(f"{row.metric:<22} {row.embedded:>18.6f} {row.batsim:>18.6f} "
                         f"{row.relative_difference:>10.2e}{mark}")
        by_field: dict[str, int] = {}
        for d in self.differences:
            by_field[d.field] = by_field.get(d.field, 0) + 1
        lines.append(f"jobs: {self.jobs_compared} compared, {self.jobs_differing} differ"
                     + (" (" + ", ".join(f"{k}: {v}" for k, v in sorted(by_field.items())) + ")"
                        if by_field else ""))
        for d in self.differences[:max_jobs]:
            lines.append(f"  job {d.job_id}: {d.field} embedded {d.embedded} vs batsim {d.batsim}")
        if len(self.differences) > max_jobs:
            lines.append(f"  ... {len(self.differences) - max_jobs} more in crossval_differences.csv")
        lines.append("verdict: " + ("AGREE: the embedded engine reproduces Batsim on this run"
                                    if self.agree else "DIFFER: see the differences above"))
        return "\n".join(lines)

    def write(self, out_dir: str | os.PathLike) -> None:
        out = Path(out_dir)
        with open(out / "crossval_differences.csv", "w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(["job_id", "field", "embedded", "batsim"])
            writer.writerows([d.job_id, d.field, d.embedded, d.batsim] for d in self.differences)
        doc = {"agree": self.agree, "jobs_compared": self.jobs_compared,
               "jobs_differing": self.jobs_differing,
               "aggregates": [{**asdict(row), "relative_difference": row.relative_difference}
                              for row in self.aggregates],
               "embedded_dir": self.embedded_dir, "batsim_dir": self.batsim_dir}
        (out / "crossval.json").write_text(json.dumps(doc, indent=2) + "\n")


def _read_csv(path: Path) -> list[dict[str, str]]:
    if not path.is_file():
        raise FormatError(str(path), None, "missing; expected a Batsim output file")
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def _job_key(row: dict[str, str]) -> str:
    return f"{row.get('workload_name', 'w0')}!{row['job_id']}"


def _close(a: str, b: str, tolerance: float) -> bool:
    try:
        return abs(float(a) - float(b)) <= tolerance
    except ValueError:
        return a == b


def _energy_close(a: float, b: float) -> bool:
    return abs(a - b) <= ENERGY_RELATIVE_TOLERANCE * max(abs(a), abs(b), 1e-9)


def compare_runs(embedded_dir: str | os.PathLike, batsim_dir: str | os.PathLike) -> CrossvalReport:
    """Compare two folders of Batsim outputs (out_jobs.csv, out_schedule.csv)."""
    a_dir, b_dir = Path(embedded_dir), Path(batsim_dir)
    a_jobs = {_job_key(r): r for r in _read_csv(a_dir / "out_jobs.csv")}
    b_jobs = {_job_key(r): r for r in _read_csv(b_dir / "out_jobs.csv")}
    report = CrossvalReport(str(a_dir), str(b_dir), len(set(a_jobs) | set(b_jobs)))
    tolerance = TIME_TOLERANCE_S + _PRINT_SLACK_S
    for key in sorted(set(a_jobs) | set(b_jobs), key=_natural):
        a, b = a_jobs.get(key), b_jobs.get(key)
        if a is None or b is None:
            report.differences.append(JobDifference(key, "presence", "present" if a else "absent",
                                                    "present" if b else "absent"))
            continue
        if a["final_state"] != b["final_state"]:
            report.differences.append(JobDifference(key, "final_state", a["final_state"], b["final_state"]))
            continue
        for column in ("starting_time", "finish_time"):
            if not _close(a[column], b[column], tolerance):
                report.differences.append(JobDifference(key, column, a[column], b[column]))
        if a["allocated_resources"] != b["allocated_resources"]:
            report.differences.append(JobDifference(key, "allocated_resources",
                                                    a["allocated_resources"], b["allocated_resources"]))
        ea, eb = float(a.get("consumed_energy") or -1), float(b.get("consumed_energy") or -1)
        if ea >= 0 and eb >= 0 and not _energy_close(ea, eb):
            report.differences.append(JobDifference(key, "consumed_energy", a["consumed_energy"],
                                                    b["consumed_energy"]))
    a_sched, b_sched = _read_csv(a_dir / "out_schedule.csv"), _read_csv(b_dir / "out_schedule.csv")
    if a_sched and b_sched:
        for metric, energy in (("makespan", False), ("consumed_joules", True),
                               ("mean_waiting_time", False), ("mean_turnaround_time", False),
                               ("mean_slowdown", False), ("nb_jobs_finished", False),
                               ("nb_jobs_killed", False), ("nb_jobs_rejected", False),
                               ("time_computing", False), ("time_idle", False)):
            if metric not in a_sched[0] or metric not in b_sched[0]:
                continue
            x, y = float(a_sched[0][metric]), float(b_sched[0][metric])
            ok = _energy_close(x, y) if energy else (
                abs(x - y) <= tolerance if metric == "makespan" else abs(x - y) <= 1e-6 * max(1.0, abs(x), abs(y)))
            report.aggregates.append(AggregateRow(metric, x, y, ok))
    return report


def _natural(key: str) -> tuple:
    workload, _, local = key.partition("!")
    return (workload, 0, int(local), "") if local.isdigit() else (workload, 1, 0, local)


# ------------------------------------------------------------------------------ running both


def crossvalidate(platform_path: str | os.PathLike, hierarchy: str | os.PathLike | None,
                  workload_path: str | os.PathLike, policy, out_dir: str | os.PathLike, *,
                  seed: int = 0, nb_jobs: int | None = None, runtime_model: str = "real",
                  backend_options: dict[str, Any] | None = None) -> CrossvalReport:
    """Run ``policy`` (a :class:`hdeeprm.policies.PolicyConfig`) on both backends and compare.
    ``backend_options`` go to the Batsim backend (batsim, timeout_s, network, launcher)."""
    from .backends import make_simulator
    from .core.outputs import write_outputs
    from .platform import load_platform
    from .policies import run_policy
    from .seeding import run_generators
    from .workload import ConversionOptions, load_workload

    out = Path(out_dir)
    platform = load_platform(platform_path, hierarchy=hierarchy)
    reference = (float(platform.hierarchy.reference_speed_gflops) if platform.hierarchy is not None
                 else float(platform.speeds[range(platform.nb_machines), platform.initial_pstate].mean() / 1e9))
    options = ConversionOptions(nb_jobs=nb_jobs, runtime_model=runtime_model,
                                reference_speed_gflops=reference, max_res=platform.nb_machines)
    workload = load_workload(str(workload_path), options=options, rng=run_generators(seed)[0])
    runs = {}
    for backend, extra in (("embedded", {"simgrid_energy_quirk": True}),
                           ("batsim", {**(backend_options or {}), "workdir": out / "batsim"})):
        simulator = make_simulator(backend, platform, workload, **extra)
        try:
            runs[backend] = run_policy(simulator, policy, rng=run_generators(seed)[1])
        finally:
            simulator.close()
    write_outputs(runs["embedded"], str(out / "embedded"))
    report = compare_runs(out / "embedded", out / "batsim")
    report.write(out)
    return report


def crossvalidate_options(options_file: str | os.PathLike, out_dir: str | os.PathLike, *,
                          model: str | None = None, episode_seed: int | None = None,
                          backend_options: dict[str, Any] | None = None) -> CrossvalReport:
    """One episode of an original options file on both backends: a CLASSIC agent's action,
    or a LEARNING agent from ``model`` acting greedily; the same reset seed on both."""
    from .core.outputs import write_outputs
    from .env import HeteroEnv
    from .jsonfile import read_json_object
    from .launch import check_options, classic_action
    from .train import FixedActionAgent, run_episode

    out = Path(out_dir)
    options = check_options(read_json_object(options_file), str(options_file))
    seed = options.get("seed", 0) if episode_seed is None else episode_seed
    agent_opts = options["pybatsim"]["agent"]
    for backend, extra in (("embedded", {"simgrid_energy_quirk": True}),
                           ("batsim", {**(backend_options or {}), "workdir": out / "batsim"})):
        env = HeteroEnv.from_options(Path(options_file), backend=backend, backend_options=extra)
        try:
            if agent_opts["type"] == "CLASSIC":
                agent = FixedActionAgent(classic_action(env, agent_opts, str(options_file)))
            else:
                agent = _greedy_agent(env, agent_opts, model, str(options_file), options.get("seed", 0))
            run_episode(env, agent, seed=seed, train=False)
            if backend == "embedded":
                write_outputs(env.result(), str(out / "embedded"))
        finally:
            env.close()
    report = compare_runs(out / "embedded", out / "batsim")
    report.write(out)
    return report


def _greedy_agent(env, agent_opts: dict, model: str | None, source: str, seed: int):
    from .agents import ALGORITHMS, build_agent
    from .agents.common import load_checkpoint
    from .errors import ConfigError

    algorithm = agent_opts.get("algorithm")
    if model is None or algorithm not in ALGORITHMS:
        raise ConfigError(f"{source}: a LEARNING agent needs --model CHECKPOINT and "
                          "pybatsim.agent.algorithm to be cross-validated")
    agent = build_agent(ALGORITHMS[algorithm], float(agent_opts["gamma"]), int(agent_opts["hidden"]),
                        env.action_space.n, env.observation_space.shape[0], seed=seed)
    load_checkpoint(model, agent)
    agent.greedy = True
    return agent
