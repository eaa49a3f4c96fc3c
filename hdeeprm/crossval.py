"""Cross-validation: the same experiment on the embedded engine and on real Batsim.

``crossvalidate`` runs a classic policy on both backends; ``crossvalidate_options`` runs one
episode of an original HDeepRM options file (its classic action, or a trained agent) on
both. Each backend writes Batsim-named outputs in its own folder (``embedded/``, and
``batsim/`` where Batsim itself wrote them), and ``compare_runs`` compares the two folders
job by job: final state, start and finish times, allocation and energy, then the run's
aggregates. They agree when times match to 1e-6 s and energies to 1e-6 relative, the
criteria of the project's fidelity checks.

When the runs differ, ``explain`` says why: the time of the first divergence, and whether
the engine's model itself differs from Batsim's or only the way Batsim delivered events. It
replays Batsim's own transcript of the run (its messages and our decisions) on the engine:
if that replay reproduces Batsim's outputs, the physics agree, and the notes of the replay
show where Batsim grouped or timed events otherwise than the engine (see
:class:`hdeeprm.replay.DeliveryNote`).
"""

from __future__ import annotations

import csv
import json
import math
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from .errors import BatsimError, ConfigError, FormatError, HDeepRMError

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
    time: float = math.inf  # when the two runs part for this job (see _divergence_time)


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
    explanation: Explanation | None = None

    @property
    def first_divergence(self) -> float | None:
        times = [d.time for d in self.differences if math.isfinite(d.time)]
        return min(times) if times else None

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
        if self.differences:
            lines.append(f"first differences, in order of divergence (from t={self.first_divergence:.6f}):")
        for d in self.differences[:max_jobs]:
            lines.append(f"  t={d.time:.6f} job {d.job_id}: {d.field} embedded {d.embedded} vs batsim {d.batsim}")
        if len(self.differences) > max_jobs:
            lines.append(f"  ... {len(self.differences) - max_jobs} more in crossval_differences.csv")
        if self.explanation is not None:
            lines.extend(self.explanation.lines())
        if self.agree:
            lines.append("verdict: AGREE: the embedded engine reproduces Batsim on this run")
        elif self.explanation is not None:
            lines.append(f"verdict: DIFFER ({self.explanation.cause}): see the explanation above")
        else:
            lines.append("verdict: DIFFER: see the differences above")
        return "\n".join(lines)

    def write(self, out_dir: str | os.PathLike) -> None:
        out = Path(out_dir)
        with open(out / "crossval_differences.csv", "w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(["divergence_time", "job_id", "field", "embedded", "batsim"])
            writer.writerows([repr(d.time), d.job_id, d.field, d.embedded, d.batsim] for d in self.differences)
        doc = {"agree": self.agree, "jobs_compared": self.jobs_compared,
               "jobs_differing": self.jobs_differing, "first_divergence": self.first_divergence,
               "explanation": None if self.explanation is None else self.explanation.as_json(),
               "aggregates": [{**asdict(row), "relative_difference": row.relative_difference}
                              for row in self.aggregates],
               "embedded_dir": self.embedded_dir, "batsim_dir": self.batsim_dir}
        (out / "crossval.json").write_text(json.dumps(doc, indent=2) + "\n")
        if self.explanation is not None:
            self.explanation.write(out)


@dataclass
class Explanation:
    """Why two runs differ, from a replay of Batsim's transcript on the engine."""

    cause: str  # "event delivery", "model" or "unexplained"
    replay_agrees: bool
    replay_jobs_differing: int
    replay_first: JobDifference | None
    notes: list  # hdeeprm.replay.DeliveryNote, in transcript order
    first_divergence: float | None

    def counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for note in self.notes:
            counts[note.kind] = counts.get(note.kind, 0) + 1
        return counts

    def cause_note(self):
        """The last delivery note at or before the first divergence (the likely cause)."""
        if self.first_divergence is None:
            return None
        before = [n for n in self.notes if n.time <= self.first_divergence + 1e-6]
        return before[-1] if before else None

    def summary(self) -> str:
        if self.cause == "model":
            d = self.replay_first
            where = f", first at t={d.time:.6f}: job {d.job_id} {d.field}" if d is not None else ""
            return (f"replaying Batsim's own transcript on the engine still differs from Batsim "
                    f"({self.replay_jobs_differing} jobs{where}): the engine's model differs")
        counts = ", ".join(f"{k} {v}" for k, v in sorted(self.counts().items()))
        if self.cause == "event delivery":
            note = self.cause_note()
            at = f"; at t={note.time:.6f}, before the first divergence: {note.kind}" if note else ""
            return (f"replaying Batsim's transcript on the engine reproduces Batsim's outputs, so the "
                    f"physics agree; Batsim delivered events otherwise than the engine in "
                    f"{len(self.notes)} messages ({counts}){at}")
        return ("replaying Batsim's transcript on the engine reproduces Batsim's outputs and Batsim "
                "delivered every event as the engine does; the difference comes from the decisions")

    def lines(self, max_notes: int = 5) -> list[str]:
        lines = ["explanation: " + self.summary()]
        cause = self.cause_note()
        shown = self.notes[:max_notes]
        if cause is not None and cause not in shown:
            shown.append(cause)
        for note in shown:
            lines.append("  " + note.describe())
        if len(self.notes) > len(shown):
            lines.append(f"  ... {len(self.notes) - len(shown)} more in crossval_delivery.csv")
        return lines

    def as_json(self) -> dict:
        cause = self.cause_note()
        return {"cause": self.cause, "replay_agrees": self.replay_agrees,
                "replay_jobs_differing": self.replay_jobs_differing,
                "delivery_notes": self.counts(),
                "cause_note": None if cause is None else cause.describe(),
                "summary": self.summary()}

    def write(self, out_dir: Path) -> None:
        with open(out_dir / "crossval_delivery.csv", "w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(["time", "transcript_line", "kind", "jobs", "detail"])
            writer.writerows([repr(n.time), n.line, n.kind, " ".join(n.jobs), n.detail] for n in self.notes)


def explain(report: CrossvalReport, batsim_dir: str | os.PathLike, replay_dir: str | os.PathLike) -> Explanation:
    """Replay Batsim's run (its folder holds platform.xml, workload.json, transcript.jsonl
    and Batsim's outputs) on the engine into ``replay_dir``, and compare it with Batsim."""
    from .core.outputs import write_outputs
    from .replay import replay_with_notes

    result, notes = replay_with_notes(str(batsim_dir))
    write_outputs(result, str(replay_dir))
    check = compare_runs(replay_dir, batsim_dir)
    if not check.agree:
        cause = "model"
    elif notes:
        cause = "event delivery"
    else:
        cause = "unexplained"
    return Explanation(cause, check.agree, check.jobs_differing,
                       check.differences[0] if check.differences else None, notes,
                       report.first_divergence)


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
            row = a or b
            report.differences.append(JobDifference(key, "presence", "present" if a else "absent",
                                                    "present" if b else "absent",
                                                    _divergence_time(row, row, "submission_time")))
            continue
        if a["final_state"] != b["final_state"]:
            report.differences.append(JobDifference(key, "final_state", a["final_state"], b["final_state"],
                                                    _divergence_time(a, b, "finish_time", "submission_time")))
            continue
        for column in ("starting_time", "finish_time"):
            if not _close(a[column], b[column], tolerance):
                report.differences.append(JobDifference(key, column, a[column], b[column],
                                                        _divergence_time(a, b, column)))
        if a["allocated_resources"] != b["allocated_resources"]:
            report.differences.append(JobDifference(key, "allocated_resources",
                                                    a["allocated_resources"], b["allocated_resources"],
                                                    _divergence_time(a, b, "starting_time")))
        ea, eb = float(a.get("consumed_energy") or -1), float(b.get("consumed_energy") or -1)
        if ea >= 0 and eb >= 0 and not _energy_close(ea, eb):
            report.differences.append(JobDifference(key, "consumed_energy", a["consumed_energy"],
                                                    b["consumed_energy"],
                                                    # known only by its end: the power of its
                                                    # machines may part at any time while it runs
                                                    _divergence_time(a, b, "finish_time")))
    # Stable: same-time differences stay in job order.
    report.differences.sort(key=lambda d: d.time)
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


def _divergence_time(a: dict[str, str], b: dict[str, str], *columns: str) -> float:
    """The earliest of the two rows' values in the first column both have a time in: the
    moment one of the runs does something the other does not."""
    for column in columns:
        times = [float(row[column]) for row in (a, b) if row.get(column)]
        if times:
            return min(times)
    return math.inf


def _natural(key: str) -> tuple:
    workload, _, local = key.partition("!")
    return (workload, 0, int(local), "") if local.isdigit() else (workload, 1, 0, local)


# ------------------------------------------------------------------------------ running both


class OutputFolder:
    """The folder of one cross-validation: created empty (never a used one, so two runs cannot
    overwrite each other), locked by ``crossval.lock`` while the run lasts."""

    LOCK = "crossval.lock"

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        if self.path.exists() and not self.path.is_dir():
            raise ConfigError(f"{self.path}: exists and is not a folder; --out needs a new or empty folder")
        if self.path.is_dir() and any(self.path.iterdir()):
            locked = (self.path / self.LOCK).exists()
            raise ConfigError(f"{self.path}: " + ("another crossval is writing there (crossval.lock)"
                                                  if locked else "the folder is not empty")
                              + "; crossval never overwrites a run: choose a new --out folder")
        try:
            self.path.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path / self.LOCK, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        except FileExistsError:
            raise ConfigError(f"{self.path}: another crossval is writing there (crossval.lock)") from None
        except OSError as e:
            raise ConfigError(f"{self.path}: cannot write there ({e.strerror}); --out needs a "
                              "writable folder") from None
        with os.fdopen(fd, "w") as f:
            f.write(f"{os.getpid()}\n")

    def __enter__(self) -> Path:
        return self.path

    def __exit__(self, *exc) -> None:
        (self.path / self.LOCK).unlink(missing_ok=True)


def _embedded_options(backend_options: dict[str, Any] | None) -> dict[str, Any]:
    from .backends.batsim.simulator import batsim_energy_accounting

    network = (backend_options or {}).get("network", "zero-latency")
    return {"energy_accounting": batsim_energy_accounting(network)}


def _batsim_side(out: Path, run):
    """Run the Batsim side; its failure keeps the embedded run already written and says so."""
    try:
        return run()
    except HDeepRMError as e:
        raise BatsimError(f"{e} (the embedded run is kept in {out / 'embedded'}; Batsim's inputs "
                          f"and log are in {out / 'batsim'})") from None


def _finish(out: Path, explain_differences: bool) -> CrossvalReport:
    report = compare_runs(out / "embedded", out / "batsim")
    if not report.agree and explain_differences:
        report.explanation = explain(report, out / "batsim", out / "replay")
    report.write(out)
    return report


def crossvalidate(platform_path: str | os.PathLike, hierarchy: str | os.PathLike | None,
                  workload_path: str | os.PathLike, policy, out_dir: str | os.PathLike, *,
                  seed: int = 0, nb_jobs: int | None = None, runtime_model: str = "real",
                  backend_options: dict[str, Any] | None = None,
                  explain_differences: bool = True) -> CrossvalReport:
    """Run ``policy`` (a :class:`hdeeprm.policies.PolicyConfig`) on both backends into a new
    ``out_dir`` and compare; when they differ, replay Batsim's run to explain why.
    ``backend_options`` go to the Batsim backend (batsim, timeout_s, network, launcher)."""
    from .backends import make_simulator
    from .core.outputs import write_outputs
    from .platform import load_platform
    from .policies import run_policy
    from .seeding import run_generators
    from .workload import ConversionOptions, load_workload

    platform = load_platform(platform_path, hierarchy=hierarchy)
    reference = (float(platform.hierarchy.reference_speed_gflops) if platform.hierarchy is not None
                 else float(platform.speeds[range(platform.nb_machines), platform.initial_pstate].mean() / 1e9))
    options = ConversionOptions(nb_jobs=nb_jobs, runtime_model=runtime_model,
                                reference_speed_gflops=reference, max_res=platform.nb_machines)
    workload = load_workload(str(workload_path), options=options, rng=run_generators(seed)[0])
    with OutputFolder(out_dir) as out:
        def run(backend: str, extra: dict):
            simulator = make_simulator(backend, platform, workload, **extra)
            try:
                return run_policy(simulator, policy, rng=run_generators(seed)[1])
            finally:
                simulator.close()

        # The embedded run is written before Batsim starts: a Batsim failure loses nothing.
        write_outputs(run("embedded", _embedded_options(backend_options)), str(out / "embedded"))
        _batsim_side(out, lambda: run("batsim", {**(backend_options or {}), "workdir": out / "batsim"}))
        return _finish(out, explain_differences)


def crossvalidate_options(options_file: str | os.PathLike, out_dir: str | os.PathLike, *,
                          model: str | None = None, episode_seed: int | None = None,
                          workload: str | os.PathLike | None = None,
                          backend_options: dict[str, Any] | None = None,
                          explain_differences: bool = True) -> CrossvalReport:
    """One episode of an original options file on both backends: a CLASSIC agent's action,
    or a LEARNING agent from ``model`` acting greedily; the same reset seed on both.
    ``workload`` replaces the options file's trace (``hdeeprm-launch -cw``)."""
    from .core.outputs import write_outputs
    from .env import HeteroEnv
    from .jsonfile import read_json_object
    from .launch import check_options, classic_action
    from .train import FixedActionAgent, run_episode

    options = check_options(read_json_object(options_file), str(options_file))
    seed = options.get("seed", 0) if episode_seed is None else episode_seed
    agent_opts = options["pybatsim"]["agent"]
    workload = None if workload is None else str(Path(workload).resolve())
    with OutputFolder(out_dir) as out:
        def run(backend: str, extra: dict) -> None:
            env = HeteroEnv.from_options(Path(options_file), workload=workload, backend=backend,
                                         backend_options=extra)
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

        run("embedded", _embedded_options(backend_options))
        _batsim_side(out, lambda: run("batsim", {**(backend_options or {}), "workdir": out / "batsim"}))
        return _finish(out, explain_differences)


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
