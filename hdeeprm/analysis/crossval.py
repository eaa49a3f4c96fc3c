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
:class:`hdeeprm.simulation.replay.DeliveryNote`).
"""

from __future__ import annotations

import csv
import json
import math
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from hdeeprm.common.errors import BatsimError, ConfigError, FormatError, HDeepRMError

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

    cause: str  # "event delivery", "model" or "decisions"
    replay_agrees: bool
    replay_jobs_differing: int
    replay_first: JobDifference | None
    notes: list  # hdeeprm.simulation.replay.DeliveryNote, in transcript order
    first_divergence: float | None
    message_delays: str | None = None  # why Batsim's own messages take time on the platform, if they do

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
            why = (f"; Batsim's own messages take simulated time on this platform, which moves SimGrid's "
                   f"steps and the engine does not simulate ({self.message_delays})"
                   if self.message_delays else "")
            return (f"replaying Batsim's transcript on the engine reproduces Batsim's outputs, so the "
                    f"physics agree; Batsim delivered events otherwise than the engine in "
                    f"{len(self.notes)} messages ({counts}){at}{why}")
        return ("given Batsim's own decisions, the engine reproduces Batsim's outputs and every one of "
                "its messages; the embedded run decided otherwise (a policy that depends on more than "
                "the messages, such as its own random draws)")

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


def explain(report: CrossvalReport, batsim_dir: str | os.PathLike, replay_dir: str | os.PathLike,
            clock: str = "simgrid") -> Explanation:
    """Why the embedded run (on ``clock``) differs from Batsim's, whose folder holds
    platform.xml, workload.json, transcript.jsonl and Batsim's outputs.

    Two replays of Batsim's transcript: on the exact clock, following Batsim's printed times
    (written to ``replay_dir`` and compared with Batsim: do the physics agree?), and in
    lockstep on SimGrid's clock (does the engine make every one of Batsim's messages when
    given Batsim's decisions?). With ``clock="exact"`` the notes list every message Batsim
    grouped or timed otherwise than the exact clock."""
    from hdeeprm.inputs.platform.xml_platform import message_delay_reason
    from hdeeprm.simulation.outputs import write_outputs
    from hdeeprm.simulation.replay import replay_lockstep, replay_with_notes

    result, exact_notes = replay_with_notes(str(batsim_dir))
    write_outputs(result, str(replay_dir))
    check = compare_runs(replay_dir, batsim_dir)
    notes = exact_notes if clock == "exact" else []
    if clock != "exact":
        mismatch = replay_lockstep(str(batsim_dir))[1]
        notes = [mismatch] if mismatch is not None else []
    if not check.agree:
        cause = "model"
    elif notes:
        cause = "event delivery"
    else:
        cause = "decisions"
    return Explanation(cause, check.agree, check.jobs_differing,
                       check.differences[0] if check.differences else None, notes,
                       report.first_divergence, message_delay_reason(Path(batsim_dir) / "platform.xml"))


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


#: Schedule aggregates compared only when a machine slept or switched on either side.
_SLEEP_METRICS = ("time_sleeping", "time_switching_on", "time_switching_off")


def compare_runs(embedded_dir: str | os.PathLike, batsim_dir: str | os.PathLike) -> CrossvalReport:
    """Compare two folders of Batsim outputs (out_jobs.csv, out_schedule.csv)."""
    from hdeeprm.simulation.outputs import JOBS_FILE, SCHEDULE_FILE

    a_dir, b_dir = Path(embedded_dir), Path(batsim_dir)
    a_jobs = {_job_key(r): r for r in _read_csv(a_dir / JOBS_FILE)}
    b_jobs = {_job_key(r): r for r in _read_csv(b_dir / JOBS_FILE)}
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
    a_sched, b_sched = _read_csv(a_dir / SCHEDULE_FILE), _read_csv(b_dir / SCHEDULE_FILE)
    if a_sched and b_sched:
        for metric, energy in (("makespan", False), ("consumed_joules", True),
                               ("mean_waiting_time", False), ("mean_turnaround_time", False),
                               ("mean_slowdown", False), ("nb_jobs_finished", False),
                               ("nb_jobs_killed", False), ("nb_jobs_rejected", False),
                               ("time_computing", False), ("time_idle", False),
                               *((m, False) for m in _SLEEP_METRICS)):
            if metric not in a_sched[0] or metric not in b_sched[0]:
                continue
            x, y = float(a_sched[0][metric]), float(b_sched[0][metric])
            if metric in _SLEEP_METRICS and x == y == 0:
                continue  # no machine slept on either side: rows only for runs with sleep p-states
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


def _embedded_options(backend_options: dict[str, Any] | None, clock: str) -> dict[str, Any]:
    from hdeeprm.backends.batsim.simulator import batsim_energy_accounting

    network = (backend_options or {}).get("network", "zero-latency")
    return {"energy_accounting": batsim_energy_accounting(network), "clock": clock}


def _batsim_side(out: Path, run):
    """Run the Batsim side; its failure keeps the embedded run already written and says so."""
    try:
        return run()
    except HDeepRMError as e:
        raise BatsimError(f"{e} (the embedded run is kept in {out / 'embedded'}; Batsim's inputs "
                          f"and log are in {out / 'batsim'})") from None


def _finish(out: Path, explain_differences: bool, clock: str) -> CrossvalReport:
    report = compare_runs(out / "embedded", out / "batsim")
    if not report.agree and explain_differences:
        report.explanation = explain(report, out / "batsim", out / "replay", clock)
    report.write(out)
    return report


def crossvalidate(platform_path: str | os.PathLike, hierarchy: str | os.PathLike | None,
                  workload_path: str | os.PathLike, policy, out_dir: str | os.PathLike, *,
                  seed: int = 0, nb_jobs: int | None = None, runtime_model: str = "real",
                  backend_options: dict[str, Any] | None = None,
                  explain_differences: bool = True, clock: str = "simgrid") -> CrossvalReport:
    """Run ``policy`` (a :class:`hdeeprm.simulation.policies.PolicyConfig`) on both backends into a new
    ``out_dir`` and compare; when they differ, replay Batsim's run to explain why.
    ``backend_options`` go to the Batsim backend (batsim, timeout_s, network, launcher)."""
    from hdeeprm.backends import make_simulator
    from hdeeprm.common.seeding import run_generators
    from hdeeprm.inputs.platform import load_platform
    from hdeeprm.inputs.workload import ConversionOptions, load_workload
    from hdeeprm.simulation.outputs import write_outputs
    from hdeeprm.simulation.policies import run_policy

    platform = load_platform(platform_path, hierarchy=hierarchy)
    reference = (float(platform.hierarchy.reference_speed_gflops) if platform.hierarchy is not None
                 else float(platform.speeds[range(platform.nb_machines), platform.initial_pstate].mean() / 1e9))
    options = ConversionOptions(nb_jobs=nb_jobs, runtime_model=runtime_model,
                                reference_speed_gflops=reference, max_res=platform.nb_machines)
    workload = load_workload(str(workload_path), options=options, rng=run_generators(seed)[0])
    backend_options = dict(backend_options or {})
    if backend_options.get("network") == "links" and "description" not in backend_options:
        from hdeeprm.inputs.platform import read_platform_description

        if not str(platform_path).endswith(".json"):
            raise ConfigError("network 'links' needs an HDeepRM platform JSON (its clusters and links)")
        backend_options["description"] = read_platform_description(platform_path)
    with OutputFolder(out_dir) as out:
        def run(backend: str, extra: dict):
            simulator = make_simulator(backend, platform, workload, **extra)
            try:
                return run_policy(simulator, policy, rng=run_generators(seed)[1])
            finally:
                simulator.close()

        # The embedded run is written before Batsim starts: a Batsim failure loses nothing.
        write_outputs(run("embedded", _embedded_options(backend_options, clock)), str(out / "embedded"))
        _batsim_side(out, lambda: run("batsim", {**(backend_options or {}), "workdir": out / "batsim"}))
        return _finish(out, explain_differences, clock)


def crossvalidate_options(options_file: str | os.PathLike, out_dir: str | os.PathLike, *,
                          model: str | None = None, episode_seed: int | None = None,
                          workload: str | os.PathLike | None = None,
                          backend_options: dict[str, Any] | None = None,
                          explain_differences: bool = True, clock: str = "simgrid") -> CrossvalReport:
    """One episode of an original options file on both backends: a CLASSIC agent's action,
    or a LEARNING agent from ``model`` acting greedily; the same reset seed on both.
    ``workload`` replaces the options file's trace (``hdeeprm-launch -cw``)."""
    from hdeeprm.common.jsonfile import read_json_object
    from hdeeprm.rl.baselines import FixedActionAgent
    from hdeeprm.rl.env import HeteroEnv
    from hdeeprm.rl.original_options import check_options, classic_action
    from hdeeprm.rl.train import run_episode
    from hdeeprm.simulation.outputs import write_outputs

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

        run("embedded", _embedded_options(backend_options, clock))
        _batsim_side(out, lambda: run("batsim", {**(backend_options or {}), "workdir": out / "batsim"}))
        return _finish(out, explain_differences, clock)


def _greedy_agent(env, agent_opts: dict, model: str | None, source: str, seed: int):
    from hdeeprm.common.errors import ConfigError
    from hdeeprm.rl.agents import ALGORITHMS, build_agent
    from hdeeprm.rl.agents.common import load_checkpoint
    from hdeeprm.rl.train import observation_size

    algorithm = agent_opts.get("algorithm")
    if model is None or algorithm not in ALGORITHMS:
        raise ConfigError(f"{source}: a LEARNING agent needs --model CHECKPOINT and "
                          "pybatsim.agent.algorithm to be cross-validated")
    agent = build_agent(ALGORITHMS[algorithm], float(agent_opts["gamma"]), int(agent_opts["hidden"]),
                        env.action_space.n, observation_size(env), seed=seed)
    load_checkpoint(model, agent)
    agent.greedy = True
    return agent


# ------------------------------------------------------------------------------ grids
#
# ``hdeeprm crossval --grid GRID.json --out DIR``: every cell of an evaluation grid
# (hdeeprm.rl.sweep) cross-validated on its own, in parallel on the sweep's worker engines.
# A policy cell is ``crossvalidate`` of its platform, workload (the experiment's ``nb_jobs``,
# converted with the cell's seed), policy and network; an options cell is
# ``crossvalidate_options`` of an options file (its own platform, seed and ``nb_jobs``; the
# grid's ``workloads``, when listed, replace its trace). Cells run in a temporary folder and
# come back as files, written to DIR/cells/<cell>/ under a temporary name and renamed when
# complete, so that a rerun skips them; a cell that fails is an ERROR row (its traceback and
# partial files in DIR/errors/) and is tried again next time.

VERDICTS = ("AGREE", "DIFFER", "ERROR")
CAUSES = ("event delivery", "model", "decisions")
CELL_DIR = "{cell_dir}"  # in a worker's error messages: the folder its files are written to
GRID_COLUMNS = ("cell", "platform", "workload", "overrides", "network", "policy", "seed", "verdict",
                "jobs_compared", "jobs_differing", "energy_relative_difference",
                "makespan_relative_difference", "first_divergence", "cause", "error")


@dataclass(frozen=True)
class GridCell:
    """One cross-validation of a grid: pure data, sent to a worker as is. ``params`` names
    everything its outcome depends on; ``key`` is their hash, ``name`` its folder."""

    name: str
    key: str
    params: dict
    label: dict  # the row's platform, workload, overrides, network, policy, seed
    platform: str | None = None
    hierarchy: str | None = None
    workload: str | None = None
    nb_jobs: int | None = None
    policy: str | None = None  # JOBKEY:COREKEY[+easy]
    seed: int = 0
    options_file: str | None = None
    model: str | None = None
    network: str = "zero-latency"
    batsim: str | None = None  # not in params: where batsim is does not change the outcome
    timeout: float = 120.0
    explain: bool = True


def grid_cells(grid, explain_differences: bool = True) -> list[GridCell]:
    """The cross-validations of ``grid`` (a :class:`hdeeprm.rl.sweep.GridConfig`) in grid order:
    platforms x workloads x overrides x networks x policies x seeds, then options files x
    workloads x networks. Checked here, before anything runs."""
    import hashlib

    from hdeeprm.common.bundled import locate
    from hdeeprm.inputs.platform import resolve_platform_name
    from hdeeprm.rl.sweep import _portable, check_unique, policy_slug

    source, base = grid.source, grid.base_dir
    if grid.checkpoints:
        raise ConfigError(f"{source}: checkpoints: crossval --grid plays original options files "
                          "(\"options\": [{\"file\": ..., \"model\": CHECKPOINT}]), not experiment checkpoints")
    if "random" in grid.policies:
        raise ConfigError(f"{source}: policies: 'random' (random valid actions) is not cross-validated; "
                          "list JOBKEY:COREKEY policies (random keys are fine: random:random)")
    resolved = grid.resolve()
    batsim = grid.batsim_path()

    def digest(path: str) -> str:
        return hashlib.sha256(Path(path).read_bytes()).hexdigest()

    def make(params: dict, slug: str, label: dict, **fields) -> GridCell:
        params = {**params, "explain": explain_differences}
        key = hashlib.sha256(json.dumps(params, sort_keys=True).encode()).hexdigest()
        short = "zl" if params["network"] == "zero-latency" else params["network"]
        seed = f"_s{label['seed']}" if label["seed"] != "" else ""
        return GridCell(f"{slug}_{short}{seed}_{key[:10]}", key, params, label, network=params["network"],
                        batsim=batsim, timeout=grid.timeout, explain=explain_differences, **fields)

    cells = []
    for platform_label, platform in resolved.platforms:
        for workload_label, workload in resolved.workloads:
            for override in resolved.overrides:
                for network in grid.networks:
                    for policy, _ in resolved.policies:
                        for seed in resolved.seeds:
                            config = grid.configure(resolved, platform, workload, override, seed)
                            params = {"platform": platform_label, "workload": workload_label,
                                      "overrides": override[1], "network": network, "policy": policy, "seed": seed,
                                      "hierarchy": config.hierarchy and _portable(config.hierarchy, base),
                                      "nb_jobs": config.nb_jobs}
                            label = {k: params[k] for k in ("platform", "workload", "network", "policy", "seed")}
                            label["overrides"] = json.dumps(override[1], sort_keys=True) if override[1] else ""
                            cells.append(make(params, policy_slug(policy), label,
                                              platform=resolve_platform_name(config.platform),
                                              hierarchy=config.hierarchy, workload=config.workload,
                                              nb_jobs=config.nb_jobs, policy=policy, seed=seed))
    workloads = ([(label, path) for label, path in resolved.workloads] if grid.workloads else [(None, None)])
    for i, entry in enumerate(grid.options):
        path = base / entry["file"]
        if not path.is_file():
            raise ConfigError(f"{source}: options[{i}]: {path}: options file not found")
        _check_options_file(path, entry.get("model"), base, f"{source}: options[{i}]")
        model = str(base / entry["model"]) if entry.get("model") else None
        for workload_label, workload in workloads:
            for network in grid.networks:
                params = {"options": entry["file"], "options_sha256": digest(str(path)),
                          "model": entry.get("model"), "model_sha256": model and digest(model),
                          "workload": workload_label, "network": network}
                label = {"platform": "(options file)", "workload": workload_label or "(options file)",
                         "overrides": "", "network": network, "seed": "",
                         "policy": "options:" + entry["file"] + (f" model:{entry['model']}" if model else "")}
                cells.append(make(params, "options-" + Path(entry["file"]).stem, label,
                                  options_file=str(path), model=model,
                                  workload=None if workload is None else locate(base, workload, "workload")))
    check_unique(cells, source)
    return cells


def _check_options_file(path: Path, model: str | None, base: Path, where: str) -> None:
    from hdeeprm.common.jsonfile import read_json_object
    from hdeeprm.rl.original_options import check_options

    options = check_options(read_json_object(path), str(path))
    if options["pybatsim"]["agent"]["type"] == "LEARNING":
        if not model:
            raise ConfigError(f"{where}: {path.name} has a LEARNING agent: give its checkpoint as "
                              "{\"file\": ..., \"model\": CHECKPOINT}")
        if not (base / model).is_file():
            raise ConfigError(f"{where}: model: {base / model}: checkpoint not found")


@dataclass
class GridCellOutput:
    """What a worker sends back: the summary row, the files of the cell's folder, and on
    failure the error and its traceback (the files are then what was written before it)."""

    row: dict
    files: dict[str, bytes]
    error: str | None = None
    traceback: str | None = None


def run_grid_cell(cell: GridCell) -> GridCellOutput:
    """Cross-validate one cell (in a worker), in a temporary folder sent back as files.
    Failures are returned, not raised, so that the run's partial files come back too."""
    import shutil
    import tempfile
    import traceback

    from hdeeprm.rl.sweep import backend_options, read_tree

    tmp = Path(tempfile.mkdtemp(prefix=f"hdeeprm-crossval-{cell.name}-"))
    out = tmp / "run"
    row = {**cell_row(cell), "verdict": "ERROR"}
    try:
        try:
            platform = cell.platform
            if cell.options_file is not None:
                from hdeeprm.common.jsonfile import read_json_object

                platform = _options_platform(cell.options_file, read_json_object(cell.options_file))
            options = backend_options("batsim", cell.network, platform, cell.batsim, cell.timeout)
            # The explanation is asked for on its own: a replay that fails leaves a DIFFER row.
            if cell.options_file is not None:
                report = crossvalidate_options(cell.options_file, out, model=cell.model, workload=cell.workload,
                                               backend_options=options, explain_differences=False)
            else:
                from hdeeprm.simulation.policies import PolicyConfig

                pair, _, backfill = cell.policy.partition("+")
                report = crossvalidate(cell.platform, cell.hierarchy, cell.workload,
                                       PolicyConfig.parse(pair, backfill or None), out, seed=cell.seed,
                                       nb_jobs=cell.nb_jobs, backend_options=options, explain_differences=False)
            explain_error = None
            if not report.agree and cell.explain:
                try:
                    report.explanation = explain(report, out / "batsim", out / "replay")
                except Exception as e:  # the comparison stands; say why it is not explained
                    explain_error = f"explanation failed: {type(e).__name__}: {e}"
            report.embedded_dir, report.batsim_dir = "embedded", "batsim"  # relative to the cell's folder
            report.write(out)
            row.update(report_row(report))
            if explain_error:
                row["cause"], row["error"] = "", explain_error
            return GridCellOutput(row, read_tree(out) if out.is_dir() else {})
        except Exception as e:
            # The folders the message names come back under DIR/errors/<cell>/.
            error = f"{type(e).__name__}: {e}".replace(str(out), CELL_DIR)
            row["error"] = error.splitlines()[0]
            return GridCellOutput(row, read_tree(out) if out.is_dir() else {}, error, traceback.format_exc())
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _options_platform(path: str, data: dict) -> str:
    from hdeeprm.inputs.platform import resolve_platform_name

    platform = data.get("platform_file_path") or ""
    resolved = Path(path).parent / platform
    return str(resolved) if resolved.exists() else resolve_platform_name(platform)


def cell_row(cell: GridCell) -> dict:
    row: dict[str, Any] = {k: "" for k in GRID_COLUMNS}
    row.update({"cell": cell.name, **cell.label})
    return row


def report_row(report: CrossvalReport) -> dict:
    """The summary columns of one cross-validation."""
    aggregates = {row.metric: row.relative_difference for row in report.aggregates}
    explanation = report.explanation
    return {"verdict": "AGREE" if report.agree else "DIFFER", "jobs_compared": report.jobs_compared,
            "jobs_differing": report.jobs_differing,
            "energy_relative_difference": aggregates.get("consumed_joules", ""),
            "makespan_relative_difference": aggregates.get("makespan", ""),
            "first_divergence": "" if report.first_divergence is None else report.first_divergence,
            "cause": "" if explanation is None else explanation.cause, "error": ""}


@dataclass
class GridReport:
    rows: list[dict]
    ran: int
    skipped: int
    wall_seconds: float
    engine: str
    out: Path

    def count(self, verdict: str) -> int:
        return sum(row["verdict"] == verdict for row in self.rows)

    @property
    def causes(self) -> dict[str, int]:
        causes: dict[str, int] = {}
        for row in self.rows:
            if row["verdict"] == "DIFFER":
                cause = row["cause"] or "not explained"
                causes[cause] = causes.get(cause, 0) + 1
        return causes

    @property
    def totals(self) -> dict:
        return {"cells": len(self.rows), "agree": self.count("AGREE"), "differ": self.count("DIFFER"),
                "differ_by_cause": self.causes, "error": self.count("ERROR")}

    @property
    def exit_status(self) -> int:
        """0: every cell agrees; 1: some cell differs or failed."""
        return 0 if self.count("AGREE") == len(self.rows) else 1

    def totals_line(self) -> str:
        t = self.totals
        causes = ", ".join(f"{k} {v}" for k, v in sorted(t["differ_by_cause"].items()))
        return (f"{t['cells']} cells: {t['agree']} agree, {t['differ']} differ"
                + (f" ({causes})" if causes else "") + f", {t['error']} failed")

    def table(self, markdown: bool = False, columns: tuple[str, ...] | None = None, short_paths: bool = False) -> str:
        """Per cell: verdict, jobs compared and differing, energy relative difference, first
        divergence and cause; the label columns that vary over the grid (all when markdown);
        ``short_paths``: platforms and workloads by their file names."""
        labels = ("platform", "workload", "overrides", "network", "policy", "seed")
        if columns is None:
            columns = tuple(k for k in labels if markdown or len({r[k] for r in self.rows}) > 1) or ("policy",)
        headers = ("cell",) * (not markdown) + columns + ("verdict", "jobs", "differ", "energy rel. diff",
                                                          "first divergence (s)", "cause")
        lines = []
        for row in self.rows:
            cause = row["cause"] if row["verdict"] == "DIFFER" else ""
            if row["verdict"] == "ERROR":
                cause = row["error"] if markdown or len(row["error"]) <= 90 else row["error"][:87] + "..."
            elif row["verdict"] == "DIFFER" and not cause:
                cause = row["error"] or "not explained"
            energy = row["energy_relative_difference"]
            first = row["first_divergence"]
            shown = tuple(Path(str(row[k])).name if short_paths and k in ("platform", "workload") else str(row[k])
                          for k in columns)
            lines.append(((row["cell"],) if not markdown else ()) + shown + (
                row["verdict"], str(row["jobs_compared"]), str(row["jobs_differing"]),
                f"{float(energy):.2e}" if energy != "" else "", f"{float(first):.6f}" if first != "" else "",
                cause))
        if markdown:
            text = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
            text += ["| " + " | ".join(cell.replace("|", "\\|") for cell in line) + " |" for line in lines]
            return "\n".join(text)
        widths = [max(len(h), *(len(line[i]) for line in lines)) if lines else len(h) for i, h in enumerate(headers)]
        out = ["  ".join(h.ljust(w) for h, w in zip(headers, widths)).rstrip(),
               "  ".join("-" * w for w in widths)]
        out += ["  ".join(v.ljust(w) for v, w in zip(line, widths)).rstrip() for line in lines]
        return "\n".join(out)

    def write(self, extra: dict | None = None) -> None:
        """summary.csv (one row per cell, in grid order) and summary.json (totals and rows)."""
        import io

        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=GRID_COLUMNS, lineterminator="\n")
        writer.writeheader()
        for row in self.rows:
            writer.writerow({k: (repr(v) if isinstance(v, float) else v) for k, v in row.items()})
        _atomic_write(self.out / "summary.csv", buffer.getvalue())
        doc = {"totals": self.totals, **(extra or {}), "cells": self.rows}
        _atomic_write(self.out / "summary.json", json.dumps(doc, indent=1) + "\n")


def _atomic_write(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def _finished_cell(cells_dir: Path, cell: GridCell) -> dict | None:
    path = cells_dir / cell.name / "cell.json"
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return None
    return data.get("row") if data.get("key") == cell.key else None


def _write_grid_cell(cells_dir: Path, cell: GridCell, output: GridCellOutput, seconds: float) -> None:
    """The cell's folder, atomically: written under a temporary name, then renamed."""
    import shutil
    import tempfile

    tmp = Path(tempfile.mkdtemp(prefix=f".{cell.name}.", suffix=".tmp", dir=cells_dir))
    try:
        _write_files(tmp, output.files)
        doc = {"cell": cell.name, "key": cell.key, "params": cell.params, "row": output.row}
        (tmp / "cell.json").write_text(json.dumps(doc, indent=1) + "\n")
        (tmp / "timing.json").write_text(json.dumps({"cell_seconds": seconds}, indent=1) + "\n")
        target = cells_dir / cell.name
        if target.exists():  # a cell of the same name from other parameters (a changed file)
            shutil.rmtree(target)
        os.replace(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _write_files(folder: Path, files: dict[str, bytes]) -> None:
    for rel, data in files.items():
        target = folder / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)


def run_grid(grid, out_dir: str | os.PathLike, engine=None, *, explain_differences: bool = True,
             progress: bool | None = None, stream=None) -> GridReport:
    """Cross-validate every cell of ``grid`` not already in ``out_dir`` on ``engine``
    (default: one local worker); write each cell as it finishes, and the summary at the end
    (also when interrupted)."""
    import shutil
    import sys
    import time

    from hdeeprm.common.parallel import LocalEngine
    from hdeeprm.common.progress import Progress
    from hdeeprm.rl.sweep import drive_cells

    cells = grid_cells(grid, explain_differences)
    engine = engine if engine is not None else LocalEngine(1)
    out = Path(out_dir)
    cells_dir, errors_dir = out / "cells", out / "errors"
    cells_dir.mkdir(parents=True, exist_ok=True)
    for stale in cells_dir.glob(".*.tmp"):  # left by an interrupted run
        shutil.rmtree(stale, ignore_errors=True)
    rows = [cell_row(cell) for cell in cells]
    todo = []
    for i, cell in enumerate(cells):
        row = _finished_cell(cells_dir, cell)
        if row is not None:
            rows[i] = row
        else:
            todo.append(i)
    skipped = len(cells) - len(todo)
    stream = sys.stderr if stream is None else stream
    bar = Progress(len(cells), "crossval", stream, progress, skipped=skipped)
    t0 = time.perf_counter()
    ran = 0

    def finished(result) -> None:
        nonlocal ran
        i = todo[result.index]
        cell = cells[i]
        error_file, error_files = errors_dir / f"{cell.name}.txt", errors_dir / cell.name
        if result.ok and result.value.error is None:
            _write_grid_cell(cells_dir, cell, result.value, result.seconds)
            rows[i] = result.value.row
            error_file.unlink(missing_ok=True)
            shutil.rmtree(error_files, ignore_errors=True)
            bar.done += 1
        else:
            if result.ok:  # the cell failed, its worker did not
                error, tb, files = result.value.error, result.value.traceback, result.value.files
                rows[i] = result.value.row
                error = error.replace(CELL_DIR, str(error_files))
                rows[i]["error"] = rows[i]["error"].replace(CELL_DIR, str(error_files))
            else:
                error, tb, files = result.error or "", result.traceback, {}
                rows[i] = {**cell_row(cell), "verdict": "ERROR", "error": error.splitlines()[0] if error else ""}
            errors_dir.mkdir(parents=True, exist_ok=True)
            error_file.write_text(f"{error}\n\n{tb or ''}")
            shutil.rmtree(error_files, ignore_errors=True)
            if files:
                _write_files(error_files, files)
            bar.failed += 1
        ran += 1
        if not bar.enabled:
            row = rows[i]
            what = row["error"] if row["verdict"] == "ERROR" else (
                f"{row['jobs_differing']}/{row['jobs_compared']} jobs differ"
                + (f", {row['cause'] or 'not explained'}" if row["verdict"] == "DIFFER" else ""))
            print(f"[{skipped + bar.done + bar.failed}/{len(cells)}] {cell.name}: {row['verdict']} ({what})",
                  file=bar.stream, flush=True)

    try:
        drive_cells(engine, run_grid_cell, [cells[i] for i in todo], bar, finished)
    finally:
        report = GridReport(rows, ran, skipped, time.perf_counter() - t0, engine.describe(), out)
        report.write({"grid": grid.source, "engine": engine.describe(), "workers": engine.workers,
                      "ran": ran, "skipped": skipped, "wall_seconds": report.wall_seconds})
    return report


def print_grid_report(report: GridReport, stream=None, markdown: bool = False) -> None:
    import sys

    stream = sys.stdout if stream is None else stream
    print(report.table(markdown=markdown), file=stream)
    print(f"\n{report.totals_line()} ({report.ran} ran, {report.skipped} done earlier; {report.engine}, "
          f"{report.wall_seconds:.1f} s)", file=stream)
    print(f"summary in {report.out / 'summary.csv'} and summary.json; each cell in {report.out / 'cells'}/"
          + (f"; failures in {report.out / 'errors'}/" if report.count("ERROR") else ""), file=stream)
