"""Run outputs as numpy arrays: the input of every figure, table and report.

Nothing here imports matplotlib, so ``hdeeprm compare`` / ``describe`` and the tests can use
these readers without it. Readers take a path and return a frozen dataclass of arrays;
series builders are pure functions of those arrays. Files that do not follow their format
raise :class:`~hdeeprm.common.errors.FormatError` naming the file, the line and what was expected.
"""

from __future__ import annotations

import csv
import json
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hdeeprm.common.errors import ConfigError, FormatError
from hdeeprm.simulation.intervals import parse_intervals
from hdeeprm.simulation.outputs import ENERGY_FILE, JOBS_FILE, PSTATES_FILE, SCHEDULE_FILE  # noqa: F401

OVERUSE_FILE = "overutilization.json"
ORIGINAL_OVERUSE_FILE = "overutilizations.json"  # the original HDeepRM's name and layout
CONFIG_FILES = ("run_config.json", "experiment.json", "options_resolved.json", "options.json")
LEARNING_LOGS = ("rewards.log", "losses.log", "makespans.log")
PROBS_FILE = "probs.json"
EVALUATION_FILE = "evaluation.csv"

_EPISODE_DIR = re.compile(r"episode_(\d+)$")


# ---------------------------------------------------------------------------- run folders


@dataclass(frozen=True)
class Run:
    """A run folder as the user named it.

    ``outputs`` is the folder holding the Batsim files: ``root`` itself for ``hdeeprm
    simulate`` / ``replay`` or real Batsim, ``root/episode_<k>`` for a training run (the last
    episode unless one is asked for), None when there are none (a folder of learning logs
    only). ``config`` is the first configuration file found (``config_file`` names it).
    """

    root: Path
    outputs: Path | None
    episode: int | None
    episodes: tuple[int, ...]
    config: dict
    config_file: str | None

    def file(self, name: str) -> Path | None:
        """An output of the run (looked up in ``outputs``, then ``root``), or None."""
        for folder in (self.outputs, self.root):
            if folder is not None and (folder / name).is_file():
                return folder / name
        return None

    def require(self, name: str, what: str) -> Path:
        path = self.file(name)
        if path is None:
            where = self.outputs or self.root
            raise ConfigError(f"{where}: no {name}; {what} needs it")
        return path

    @property
    def title(self) -> str:
        return run_title(self)


def episode_numbers(folder: Path) -> tuple[int, ...]:
    found = (_EPISODE_DIR.match(p.name) for p in folder.iterdir() if p.is_dir())
    return tuple(sorted(int(m.group(1)) for m in found if m))


def open_run(path: str | Path, episode: int | None = None) -> Run:
    """Resolve a run folder (``hdeeprm simulate --out``, ``train --out``, ``hdeeprm-launch
    --out`` or a Batsim export folder)."""
    root = Path(path)
    if not root.is_dir():
        raise ConfigError(f"{root}: no such run folder")
    episodes = episode_numbers(root)
    if episode is not None:
        if episode not in episodes:
            have = f"episodes {episodes[0]} to {episodes[-1]}" if episodes else "no episode_<k> folders"
            raise ConfigError(f"{root}: no episode_{episode}/; the run has {have}")
        outputs: Path | None = root / f"episode_{episode}"
    elif (root / JOBS_FILE).is_file():
        outputs = root
    elif episodes:
        episode = episodes[-1]
        outputs = root / f"episode_{episode}"
    else:
        outputs = None
    if outputs is None and not any((root / n).is_file() for n in LEARNING_LOGS + (PROBS_FILE,)):
        raise ConfigError(f"{root}: not a run folder; expected {JOBS_FILE}, episode_<k>/ folders "
                          "or learning logs (rewards.log) written by hdeeprm")
    config, config_file = {}, None
    for name in CONFIG_FILES:
        if (root / name).is_file():
            config, config_file = _read_json(root / name), name
            break
    return Run(root, outputs, episode, episodes, config, config_file)


def run_title(run: Run, episode: bool = True) -> str:
    """A short caption: what ran where (from the run's configuration), else the folder name;
    with the episode shown, for a training run's Batsim outputs."""
    c = run.config
    name = run.root.name or str(run.root)
    if run.config_file == "run_config.json" and "policy" in c:
        platform = Path(str(c.get("platform", "?"))).stem
        easy = " + EASY" if c.get("backfill") else ""
        what = f"{c['policy']}{easy} on {platform}"
    elif run.config_file == "experiment.json":
        what = f"{c.get('algorithm', '?')} on {Path(str(c.get('platform', '?'))).stem}"
    elif run.config_file in ("options_resolved.json", "options.json"):
        agent = c.get("pybatsim", {}).get("agent", {})
        what = " ".join(str(agent[k]) for k in ("type", "run", "hidden", "lr", "gamma") if k in agent)
    else:
        what = ""
    if episode and run.episode is not None:
        what = f"{what}, episode {run.episode}" if what else f"episode {run.episode}"
    return f"{name}: {what}" if what else name


def has_hierarchy(run: Run) -> bool:
    """Whether the run's platform follows HDeepRM's model (p-states 0-3 mean busy, throttled,
    idle with a busy sibling, idle processor): any platform JSON, or XML with a hierarchy."""
    c = run.config
    platform = str(c.get("platform") or c.get("platform_file_path") or "")
    if not platform:
        return False
    return not platform.endswith(".xml") or bool(c.get("hierarchy"))


def _read_json(path: Path):
    try:
        return json.loads(path.read_bytes().decode("utf-8"))
    except UnicodeDecodeError as e:
        raise FormatError(str(path), f"byte {e.start}", "not UTF-8 text; expected JSON") from None
    except json.JSONDecodeError as e:
        raise FormatError(str(path), f"line {e.lineno}", f"invalid JSON ({e.msg})") from None
    except RecursionError:
        raise FormatError(str(path), None, "JSON nested too deep") from None
    except ValueError as e:  # Python's limit on integer digits (4300)
        raise FormatError(str(path), None, f"invalid JSON number ({str(e).splitlines()[0][:120]})") from None


# ---------------------------------------------------------------------------- out_jobs.csv


@dataclass(frozen=True)
class JobTable:
    """out_jobs.csv in file order. Times in s; NaN where a job never ran (rejected)."""

    job_id: tuple[str, ...]
    submit: np.ndarray
    start: np.ndarray
    finish: np.ndarray
    requested: np.ndarray  # machines asked for
    state: tuple[str, ...]
    allocated: tuple[str, ...]  # Batsim interval sets, "" when the job never ran
    source: str = JOBS_FILE

    def __len__(self) -> int:
        return len(self.job_id)

    @property
    def ran(self) -> np.ndarray:
        return ~np.isnan(self.start)

    @property
    def waiting(self) -> np.ndarray:
        return self.start - self.submit


_JOB_FIELDS = ("job_id", "submission_time", "requested_number_of_resources", "final_state",
               "starting_time", "finish_time", "allocated_resources")


def read_jobs(path: str | Path) -> JobTable:
    rows, header = _read_csv(path, _JOB_FIELDS)
    col = {name: [r[header[name]] for r in rows] for name in _JOB_FIELDS}
    return JobTable(
        job_id=tuple(col["job_id"]),
        submit=_floats(col["submission_time"], path, "submission_time"),
        start=_floats(col["starting_time"], path, "starting_time"),
        finish=_floats(col["finish_time"], path, "finish_time"),
        requested=_floats(col["requested_number_of_resources"], path, "requested_number_of_resources").astype(np.int64),
        state=tuple(col["final_state"]),
        allocated=tuple(col["allocated_resources"]),
        source=str(path),
    )


def _read_csv(path: str | Path, required: tuple[str, ...]) -> tuple[list[list[str]], dict[str, int]]:
    try:
        return _read_csv_text(path, required)
    except UnicodeDecodeError:
        raise FormatError(str(path), f"byte {_first_bad_byte(path)}", "not UTF-8 text; expected CSV") from None


def _first_bad_byte(path: str | Path) -> int:
    """The offset of the first byte that is not UTF-8 (a text stream's error counts from the
    start of its last block, not of the file)."""
    import codecs

    decoder = codecs.getincrementaldecoder("utf-8")()
    offset = 0
    with open(path, "rb") as f:
        while block := f.read(1 << 16):
            try:
                decoder.decode(block)
            except UnicodeDecodeError as e:
                return offset + e.start - len(decoder.getstate()[0])
            offset += len(block)
        try:
            decoder.decode(b"", final=True)
        except UnicodeDecodeError as e:
            return offset + e.start - len(decoder.getstate()[0])
    return offset


def _read_csv_text(path: str | Path, required: tuple[str, ...]) -> tuple[list[list[str]], dict[str, int]]:
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.reader(f)
        try:
            names = next(reader)
        except StopIteration:
            raise FormatError(str(path), "line 1", "empty file; expected a header row") from None
        except csv.Error as e:
            raise FormatError(str(path), "line 1", f"unreadable CSV ({e})") from None
        header = {n: i for i, n in enumerate(names)}
        missing = [n for n in required if n not in header]
        if missing:
            raise FormatError(str(path), "line 1", f"missing column {missing[0]!r}; expected the columns "
                              f"{', '.join(required)}", field=missing[0])
        try:
            rows = [r for r in reader if r]
        except csv.Error as e:  # e.g. a field over csv's 128 KiB limit
            raise FormatError(str(path), f"line {reader.line_num}", f"unreadable CSV ({e})") from None
    for i, r in enumerate(rows):
        if len(r) < len(names):
            raise FormatError(str(path), f"line {i + 2}", f"{len(r)} fields; expected {len(names)}")
    return rows, header


def _floats(values: list[str], path, field: str) -> np.ndarray:
    text = np.asarray(values, dtype=object)
    text = np.where((text == "") | (text == "NA"), "nan", text).astype(str)
    try:
        return text.astype(np.float64)
    except ValueError:
        for i, v in enumerate(text):
            try:
                float(v)
            except ValueError:
                raise FormatError(str(path), f"line {i + 2}", f"{v!r} is not a number", field=field) from None
        raise


def interval_pairs(text: str) -> list[tuple[int, int]]:
    """A Batsim interval set ("0-3 7") as its (first, last) machine runs, in file order."""
    pairs = []
    for part in text.split():
        lo, _, hi = part.partition("-")
        pairs.append((int(lo), int(hi or lo)))
    return pairs


@dataclass(frozen=True)
class Allocations:
    """One row per (job, contiguous machine run) of the jobs that ran: the Gantt rectangles."""

    job: np.ndarray  # index into the JobTable
    first: np.ndarray  # first machine id of the run
    last: np.ndarray  # last machine id (inclusive)
    start: np.ndarray  # s
    finish: np.ndarray  # s

    def __len__(self) -> int:
        return len(self.job)


def allocations(jobs: JobTable) -> Allocations:
    job, first, last = [], [], []
    for j in np.flatnonzero(jobs.ran):
        try:
            pairs = interval_pairs(jobs.allocated[j])
        except ValueError:
            raise FormatError(jobs.source, f"job {jobs.job_id[j]}", f"{jobs.allocated[j]!r}: expected machine "
                              "ids like '0-3 7'", field="allocated_resources") from None
        for lo, hi in pairs:
            job.append(j)
            first.append(lo)
            last.append(hi)
    job_a = np.asarray(job, dtype=np.int64)
    return Allocations(job_a, np.asarray(first, np.int64), np.asarray(last, np.int64),
                       jobs.start[job_a], jobs.finish[job_a])


# ---------------------------------------------------------------------------- step series


@dataclass(frozen=True)
class StepSeries:
    """A piecewise-constant quantity: ``y[i]`` holds from ``t[i]`` until ``t[i + 1]``."""

    t: np.ndarray
    y: np.ndarray

    def at(self, times) -> np.ndarray:
        """The value holding at each of ``times`` (0 before the first step)."""
        i = np.searchsorted(self.t, np.asarray(times, dtype=np.float64), side="right") - 1
        return np.where(i >= 0, self.y[np.maximum(i, 0)], 0)


def step_sum(times: np.ndarray, deltas: np.ndarray) -> StepSeries:
    """Running sum of ``deltas`` applied at ``times``; events of one instant are applied
    together (only the value after the last of them is kept)."""
    order = np.argsort(times, kind="stable")
    t = np.asarray(times, dtype=np.float64)[order]
    y = np.cumsum(np.asarray(deltas)[order])
    last = np.r_[t[1:] != t[:-1], True] if t.size else np.zeros(0, bool)
    return StepSeries(t[last], y[last])


def queue_size(jobs: JobTable) -> StepSeries:
    """Jobs submitted and not yet started (rejected jobs never wait)."""
    ran = jobs.ran
    n = int(ran.sum())
    return step_sum(np.concatenate([jobs.submit[ran], jobs.start[ran]]),
                    np.concatenate([np.ones(n, np.int64), -np.ones(n, np.int64)]))


def busy_machines(alloc: Allocations) -> StepSeries:
    """Machines computing (allocated to a running job) over time."""
    width = alloc.last - alloc.first + 1
    return step_sum(np.concatenate([alloc.start, alloc.finish]), np.concatenate([width, -width]))


def cumulative_count(times) -> StepSeries:
    """How many events happened up to each instant."""
    times = np.asarray(times, dtype=np.float64)
    return step_sum(times, np.ones(times.size, np.int64))


# ---------------------------------------------------------------------------- out_schedule.csv


def read_schedule(path: str | Path) -> dict[str, float | str]:
    """Batsim's aggregates by column name (never by position: columns may move)."""
    rows, header = _read_csv(path, ("makespan",))
    if len(rows) != 1:
        raise FormatError(str(path), None, f"{len(rows)} value rows; expected one")
    out: dict[str, float | str] = {}
    for name, i in header.items():
        value = rows[0][i]
        try:
            out[name] = float(value)
        except ValueError:
            out[name] = value
    return out


# ---------------------------------------------------------------------------- energy


@dataclass(frozen=True)
class EnergyTrace:
    """out_consumed_energy.csv collapsed to one row per instant (the last row written then)."""

    t: np.ndarray  # s
    energy: np.ndarray  # J consumed since the start
    idle_power: np.ndarray  # W: the machines' idle power at their current p-states (wattmin)

    def power(self) -> StepSeries:
        """Mean power (W) between consecutive instants, from the energy counter."""
        if self.t.size < 2:
            return StepSeries(np.zeros(0), np.zeros(0))
        return StepSeries(self.t[:-1], np.diff(self.energy) / np.diff(self.t))


def read_energy(path: str | Path) -> EnergyTrace:
    rows, header = _read_csv(path, ("time", "energy", "wattmin"))
    t = _floats([r[header["time"]] for r in rows], path, "time")
    e = _floats([r[header["energy"]] for r in rows], path, "energy")
    w = _floats([r[header["wattmin"]] for r in rows], path, "wattmin")
    last = np.r_[t[1:] != t[:-1], True] if t.size else np.zeros(0, bool)
    return EnergyTrace(t[last], e[last], w[last])


# ---------------------------------------------------------------------------- p-states


@dataclass(frozen=True)
class PstateOccupancy:
    """Machines in each p-state: ``counts[i, k]`` machines are in ``pstates[k]`` from ``t[i]``
    on. Column -1 of ``pstates`` (when present) counts machines whose p-state is not known
    yet (no row has named them)."""

    t: np.ndarray
    counts: np.ndarray
    pstates: np.ndarray


#: The most distinct p-states a run's out_pstate_changes.csv may name: the occupancy table has
#: a column for each (SimGrid hosts have a handful; Batsim's sleep states add a few).
MAX_PSTATES = 1024


def read_pstates(path: str | Path, nb_machines: int = 0) -> PstateOccupancy:
    """Replay out_pstate_changes.csv. Rows with a negative p-state (Batsim's marks of a
    transition starting) leave the machines where they are until the row with the p-state
    they reach."""
    rows, header = _read_csv(path, ("time", "machine_id", "new_pstate"))
    times = _floats([r[header["time"]] for r in rows], path, "time")
    values = _floats([r[header["new_pstate"]] for r in rows], path, "new_pstate")
    huge = np.flatnonzero(values >= 2**31)
    if huge.size:
        raise FormatError(str(path), f"line {huge[0] + 2}", f"p-state {rows[huge[0]][header['new_pstate']]}: "
                          "expected a p-state index below 2**31", field="new_pstate")
    keep = np.flatnonzero(values >= 0)
    machine_sets = []
    for i in keep:
        try:
            machine_sets.append(parse_intervals(rows[i][header["machine_id"]]))
        except Exception as e:
            raise FormatError(str(path), f"line {i + 2}", str(e), field="machine_id") from None
    times = times[keep]
    # Columns only for the p-states the file names: the table stays as small as the run's.
    named, codes = np.unique(np.trunc(values[keep]), return_inverse=True)
    if len(named) > MAX_PSTATES:
        raise FormatError(str(path), None, f"{len(named)} different p-states; expected at most {MAX_PSTATES}",
                          field="new_pstate")
    top = max([nb_machines] + [int(m[-1]) + 1 for m in machine_sets if m.size])
    nb_states = len(named)
    # Column 0 counts machines not named yet; column c + 1 those in p-state named[c].
    current = np.zeros(top, np.int64)
    counts = np.zeros(nb_states + 1, np.int64)
    counts[0] = top
    snapshots = np.zeros((len(times), nb_states + 1), np.int64)
    for i, (machines, c) in enumerate(zip(machine_sets, codes.tolist())):
        counts -= np.bincount(current[machines], minlength=nb_states + 1)
        counts[c + 1] += machines.size
        current[machines] = c + 1
        snapshots[i] = counts
    last = np.r_[times[1:] != times[:-1], True] if times.size else np.zeros(0, bool)
    labels = np.concatenate([[-1], named.astype(np.int64)])
    used = snapshots.any(axis=0)
    return PstateOccupancy(times[last], snapshots[last][:, used], labels[used])


# ---------------------------------------------------------------------------- over-utilisation


@dataclass(frozen=True)
class Overuse:
    """overutilization.json: blocked scheduling passes and bandwidth over-subscription spans.
    ``span_end`` is NaN for a span still open when the run stopped."""

    nb_processors: int
    core_shortages: np.ndarray  # s
    memory_shortages: np.ndarray  # s
    span_processor: np.ndarray
    span_start: np.ndarray
    span_end: np.ndarray


def read_overuse(path: str | Path) -> Overuse:
    """Ours (``hdeeprm-overutilization/1``) or the original HDeepRM's overutilizations.json
    (``core``, ``mem``, ``mem_bw.procs[p].values`` of (start, duration) pairs or bare starts)."""
    data = _read_json(Path(path))
    if not isinstance(data, dict):
        raise FormatError(str(path), None, "expected a JSON object")
    try:
        if data.get("format") == "hdeeprm-overutilization/1":
            spans = [(int(p), s, e) for p, v in data["bandwidth_spans"].items() for s, e in v]
            return _overuse(data["nb_processors"], data["core_shortages"], data["memory_shortages"], spans)
        if "mem_bw" in data:
            procs = data["mem_bw"].get("procs", {})
            # Closed spans are (start, duration) pairs; a bare start is a span still open.
            spans = [(int(p), float(v[0]), float(v[0]) + float(v[1])) if isinstance(v, list)
                     else (int(p), float(v), None)
                     for p, entry in procs.items() for v in entry["values"]]
            return _overuse(data["mem_bw"].get("nb_procs", 0), data.get("core", []), data.get("mem", []), spans)
    except (KeyError, TypeError, ValueError, AttributeError, IndexError, OverflowError) as e:
        raise FormatError(str(path), None, f"unexpected layout ({type(e).__name__}: {e})") from None
    raise FormatError(str(path), None, "expected \"format\": \"hdeeprm-overutilization/1\" "
                      "or the original HDeepRM's core / mem / mem_bw keys", field="format")


def _overuse(nb_processors, core, memory, spans) -> Overuse:
    return Overuse(
        nb_processors=int(nb_processors),
        core_shortages=np.asarray(core, np.float64),
        memory_shortages=np.asarray(memory, np.float64),
        span_processor=np.asarray([p for p, _, _ in spans], np.int64),
        span_start=np.asarray([s for _, s, _ in spans], np.float64),
        span_end=np.asarray([np.nan if e is None else e for _, _, e in spans], np.float64),
    )


def read_run_overuse(run: Run) -> Overuse:
    path = run.file(OVERUSE_FILE) or run.file(ORIGINAL_OVERUSE_FILE)
    if path is None:
        raise ConfigError(f"{run.outputs or run.root}: no {OVERUSE_FILE}; hdeeprm's classic policies and "
                          "HeteroEnv write it (replays and real Batsim runs have none)")
    return read_overuse(path)


# ---------------------------------------------------------------------------- learning logs

# The original wrote losses as tensor reprs, "tensor(0.1234, grad_fn=<...>)": take the number.
_NUMBER = re.compile(r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?|[-+]?(?:nan|inf)", re.IGNORECASE)


def read_numbers(path: str | Path) -> np.ndarray:
    """One number per non-empty line (rewards.log, losses.log, makespans.log)."""
    values = []
    try:
        content = Path(path).read_bytes().decode("utf-8")
    except UnicodeDecodeError as e:
        raise FormatError(str(path), f"byte {e.start}", "not UTF-8 text; expected one number a line") from None
    for i, line in enumerate(content.splitlines()):
        text = line.strip()
        if not text:
            continue
        m = _NUMBER.search(text.removeprefix("tensor("))
        if m is None:
            raise FormatError(str(path), f"line {i + 1}", f"{text[:60]!r}: expected a number")
        values.append(float(m.group(0)))
    return np.asarray(values, np.float64)


def read_probs(path: str | Path) -> np.ndarray:
    """probs.json as an (actions, episodes) array of first-decision probabilities."""
    data = _read_json(Path(path))
    probs = data.get("probs") if isinstance(data, dict) else None
    if not isinstance(probs, list) or not probs or len({len(p) if isinstance(p, list) else -1 for p in probs}) != 1:
        raise FormatError(str(path), None, "expected {\"probs\": [[p(episode 1), ...] for each action]} "
                          "with one list per action, all of the same length", field="probs")
    try:
        return np.asarray(probs, np.float64)
    except (TypeError, ValueError):
        raise FormatError(str(path), None, "probabilities must be numbers", field="probs") from None


def action_names(run: Run, nb_actions: int) -> list[str]:
    """Names of the run's actions ("first:high_gflops", ..., "void"), from its configuration;
    "action k" when it does not say."""
    c = run.config
    names: list[str] | None = None
    if isinstance(c.get("launch"), dict) and isinstance(c["launch"].get("actions"), list):
        names = [str(a) for a in c["launch"]["actions"]]
    elif run.config_file == "experiment.json" or "pybatsim" in c:
        from hdeeprm.rl.env import parse_action_set

        block = c.get("actions") if run.config_file == "experiment.json" else \
            c.get("pybatsim", {}).get("env", {}).get("actions")
        pairs, void = parse_action_set(block, source=f"{run.root / run.config_file}: actions")
        names = [f"{j}:{k}" for j, k in pairs] + (["void"] if void else [])
    if names is None or len(names) != nb_actions:
        return [f"action {a}" for a in range(nb_actions)]
    return names


@dataclass(frozen=True)
class EvaluationTable:
    """evaluation.csv written by ``hdeeprm train`` / ``evaluate``: one row per policy."""

    columns: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]


def read_evaluation(path: str | Path) -> EvaluationTable:
    rows, header = _read_csv(path, ("policy",))
    return EvaluationTable(tuple(header), tuple(tuple(r) for r in rows))
