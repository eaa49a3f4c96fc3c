#!/usr/bin/env python
"""HDeepRM speed benchmark: one command, a table on stdout, every number in a JSON file.

    python benchmarks/run.py SDSC-SP2.swf.gz HPC2N.swf.gz SDSC-BLUE.swf.gz --out results.json
        [--batsim-runs DIR...] [--scenario DIR [--batsim [PATH]]]... [--markdown results.md]
        [--repeat 3] [--only batsim,classic,env,decision,scaling,whole,train] [--quick]

Sections (each case runs in a fresh worker process, so that its peak memory is its own):

batsim    against real Batsim on the very same inputs: recorded Batsim runs (folders with
          platform.xml, workload.json, policy.txt and Batsim's out_schedule.csv, whose
          simulation_time is Batsim's own wall time), re-simulated with the same policy
classic   jobs/s of FCFS, EASY and three HDeepRM key pairs on every trace, on Batsim-like
          flat platforms (the trace's MaxProcs single-core hosts: real Batsim's benchmark
          setting, for the x Batsim ratio) and on gaia's node mix scaled to 1,000 and 10,000
          cores (HDeepRM's heterogeneity model: memory, bandwidth, p-states)
env       HeteroEnv steps/s under a random masked policy, for each observation (normal,
          small, minimal), on 100 to 100,000 cores (first trace, 5,000-job episodes)
decision  the cost of one decision on 100,000 cores against 1,000: HeteroEnv steps (from
          env) and classic scheduling passes (first trace, FCFS and a key pair)
scaling   cost per job as the trace grows from 10,000 to 1,000,000 jobs (copies of the
          second trace, or the first, one after the other in time), FCFS on 1,000 cores
whole     the whole `hdeeprm simulate` process as a user waits for it (start-up, reading the
          workload, simulating, writing Batsim's output files) on each --scenario folder
          (platform.xml + workload.json), against its core simulation time; with --batsim,
          real Batsim + a Python FCFS scheduler on the same inputs, and whether both agree
train     training throughput: environment steps per second of `hdeeprm train` on the bundled
          quick-start experiment (PPO, learning included), split into the environment, the
          batched policy inference, PPO's updates and the rest (validation, logs,
          checkpoints): what limits it

Every figure is the median of --repeat runs (min and max are in the JSON). Run it from the
repository root with the project's environment. It asserts nothing; see README.md beside it.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform as host_platform
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from statistics import median

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))  # run from a checkout without installing
sys.path.insert(0, str(HERE))

#: Real Batsim 4.2.1 + a Python FCFS scheduler over ZeroMQ: about 1,500-2,300 jobs/s on these
#: 2-core machines (batsim-semantics section 3); 2,000 is the reference.
BATSIM_JOBS_PER_S = 2000.0
CLASSIC_POLICIES = {
    "fcfs": ("first:first_fit", None),
    "easy": ("first:first_fit", "easy"),
    "shortest:high_gflops": ("shortest:high_gflops", None),
    "smallest:high_mem_bw": ("smallest:high_mem_bw", None),
    "low_mem:low_power+easy": ("low_mem:low_power", "easy"),
}
FLAT_POLICIES = ("fcfs", "easy")
CLASSIC_CORES = (1000, 10000)
ENV_CORES = (100, 1000, 10000, 100000)
OBSERVATIONS = ("minimal", "small", "normal")
SCALING_SIZES = (10_000, 30_000, 100_000, 300_000, 1_000_000)
DECISION_POLICIES = ("fcfs", "shortest:high_gflops")
TARGETS = {
    "classic": 200_000.0,  # jobs/s, FCFS and EASY on the flat platforms (100 x Batsim)
    "env": 20_000.0,  # steps/s, minimal observation, 1,000 cores
    "scaling": 1.5,  # cost per job at 1M / at 10k
    "decision": 20.0,  # cost of a decision at 100k cores / at 1k
    "train": 20_000.0,  # steps/s of PPO on the quick-start experiment, learning included
}
WORKER_MARK = "@@result "
SECTIONS = ("batsim", "classic", "env", "decision", "scaling", "whole", "dropin", "train")
TRACE_SECTIONS = ("classic", "env", "decision", "scaling")  # the sections that need SWF traces
WHOLE_POLICY = "first:first_fit"


# ---------------------------------------------------------------------------- machine


def machine() -> dict:
    import numba
    import numpy as np
    import simpy

    cpu = host_platform.processor() or host_platform.machine()
    try:
        fields = {}
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            fields.setdefault(key.strip(), value.strip())
        cpu = f"{fields['model name']} (family {fields.get('cpu family', '?')}, model {fields.get('model', '?')})"
    except (OSError, KeyError):
        pass
    ram = None
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                ram = int(line.split()[1]) / 2**20  # GiB
    except OSError:
        pass
    return {
        "cpu": cpu, "cores": os.cpu_count(), "ram_gib": ram, "system": host_platform.platform(),
        "python": sys.version.split()[0], "numpy": np.__version__, "numba": numba.__version__,
        "simpy": simpy.__version__, "hdeeprm_git": git_state(),
        "load_average": load_average(),
    }


def load_average() -> list | None:
    return [round(x, 2) for x in os.getloadavg()] if hasattr(os, "getloadavg") else None


def git_state() -> str:
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                              text=True, timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--", "hdeeprm", "benchmarks"], cwd=ROOT,
                               capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return (head or "unknown") + ("+local changes" if dirty else "")


def rss_mib() -> float:
    """Current resident set size (Linux), else the peak."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return peak_rss_mib()


def peak_rss_mib() -> float:
    """Peak resident set size since the last ``reset_peak`` (Linux), else since start."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 1024


def reset_peak() -> None:
    """Start a new peak-RSS measurement (Linux: writing 5 to clear_refs resets VmHWM)."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        pass


# ---------------------------------------------------------------------------- inputs


def load_trace(path: str, cores: int | str, nb_jobs: int | None = None):
    """Read and convert one trace for one platform: (platform, label, workload arrays,
    parse s, convert s)."""
    import numpy as np
    from platforms import flat_platform, scaled_gaia

    from hdeeprm.inputs.workload import ConversionOptions, read_swf, swf_to_workload

    t0 = time.perf_counter()
    trace = read_swf(path)
    parse_s = time.perf_counter() - t0
    if cores == "flat":
        hosts = trace.max_procs or int(max(trace.column("requested_procs").max(),
                                          trace.column("allocated_procs").max()))
        platform, speed, label = flat_platform(hosts), 1.0, f"flat {hosts}"
    else:
        platform = scaled_gaia(int(cores))
        speed, label = platform.hierarchy.reference_speed_gflops, f"gaia {platform.nb_machines:,}"
    t0 = time.perf_counter()
    workload, _ = swf_to_workload(trace, ConversionOptions(nb_jobs=nb_jobs, reference_speed_gflops=speed,
                                                           max_res=platform.nb_machines),
                                  rng=np.random.default_rng(0))
    arrays = workload.compile()
    convert_s = time.perf_counter() - t0
    return platform, label, arrays, parse_s, convert_s


def repeated(arrays, copies: int):
    """``copies`` of a workload one after the other in time (ids prefixed by the copy)."""
    import numpy as np

    from hdeeprm.inputs.workload.model import WorkloadArrays

    span = float(arrays.subtime[-1]) + 1.0
    fields = {}
    for name, value in arrays.__dict__.items():
        if isinstance(value, np.ndarray):
            fields[name] = np.concatenate([value + k * span if name == "subtime" else value
                                           for k in range(copies)])
        elif name == "job_ids":
            fields[name] = tuple(f"{k}:{v}" for k in range(copies) for v in value)
        else:
            fields[name] = value * copies
    out = WorkloadArrays(**fields)
    out._freeze()
    return out


def stats(values: list[float]) -> dict:
    return {"median": median(values), "min": min(values), "max": max(values), "runs": values}


# ---------------------------------------------------------------------------- workers


def batsim_worker(spec: dict) -> dict:
    """Recorded Batsim runs: the same platform, workload and policy on the embedded engine."""
    import csv

    from hdeeprm.inputs.platform import load_platform
    from hdeeprm.inputs.workload import read_batsim_workload
    from hdeeprm.simulation.engine import Engine
    from hdeeprm.simulation.policies import PolicyConfig, run_policy

    rows = []
    for folder in map(Path, spec["folders"]):
        words = (folder / "policy.txt").read_text().split()
        hierarchy = folder / "hierarchy.json"
        platform = load_platform(folder / "platform.xml",
                                 hierarchy=hierarchy if words[0] == "hdeeprm" else None)
        arrays = read_batsim_workload(folder / "workload.json").compile()
        config = PolicyConfig("first", "first_fit", "easy" if words[0] == "easy" else None)
        batsim = list(csv.DictReader(open(folder / "out_schedule.csv")))[0]
        for _ in range(3):  # warm-up
            run_policy(Engine(platform, arrays), config)
        times = []
        for _ in range(spec["repeat"]):
            t0 = time.perf_counter()
            run_policy(Engine(platform, arrays), config)
            times.append(time.perf_counter() - t0)
        batsim_s = float(batsim["simulation_time"])
        rows.append({"run": folder.name, "policy": " ".join(words), "jobs": len(arrays),
                     "machines": platform.nb_machines, "seconds": stats(times),
                     "jobs_per_s": len(arrays) / median(times), "batsim_seconds": batsim_s,
                     "batsim_jobs_per_s": int(batsim["nb_jobs"]) / batsim_s,
                     "ratio": batsim_s / median(times)})
    return {"rows": rows, "peak_rss_mib": peak_rss_mib()}


def classic_worker(spec: dict) -> dict:
    """One trace on one platform: every policy, --repeat runs each."""
    from hdeeprm.simulation.engine import Engine
    from hdeeprm.simulation.metrics import headline_metrics
    from hdeeprm.simulation.policies import PolicyConfig, run_policy

    platform, label, arrays, parse_s, convert_s = load_trace(spec["trace"], spec["cores"], spec.get("nb_jobs"))
    configs = {name: PolicyConfig.parse(*CLASSIC_POLICIES[name]) for name in spec["policies"]}
    warm = arrays.window(0, min(300, len(arrays)))
    for config in configs.values():  # load the compiled kernels before timing
        run_policy(Engine(platform, warm), config)
    base_rss = rss_mib()
    rows = []
    for name, config in configs.items():
        times, result, engine = [], None, None
        gc.collect()
        reset_peak()
        for _ in range(spec["repeat"]):
            result = engine = None
            gc.collect()
            t0 = time.perf_counter()
            engine = Engine(platform, arrays)
            result = run_policy(engine, config)
            times.append(time.perf_counter() - t0)
        peak = peak_rss_mib()
        counters = getattr(engine, "last_fast_run", {})
        metrics = headline_metrics(result)
        row = {
            "trace": Path(spec["trace"]).name, "platform": label, "cores": platform.nb_machines,
            "policy": name, "jobs": len(arrays), "parse_s": parse_s, "convert_s": convert_s,
            "seconds": stats(times), "jobs_per_s": len(arrays) / median(times),
            "decision_points": counters.get("decision_points"), "passes": counters.get("passes"),
            "us_per_pass": 1e6 * median(times) / counters["passes"] if counters.get("passes") else None,
            "makespan_s": metrics.makespan, "mean_wait_s": metrics.mean_waiting_time,
            "ran": metrics.nb_finished, "rejected": metrics.nb_rejected,
            "energy_rows": len(result.energy_rows), "peak_rss_mib": peak, "base_rss_mib": base_rss,
        }
        if spec.get("reference") and name in FLAT_POLICIES:
            result = engine = None
            gc.collect()
            t0 = time.perf_counter()
            run_policy(Engine(platform, arrays), config, fast=False)
            row["reference_jobs_per_s"] = len(arrays) / (time.perf_counter() - t0)
        rows.append(row)
        result = engine = None
    return {"rows": rows, "base_rss_mib": base_rss}


def env_worker(spec: dict) -> dict:
    """HeteroEnv on one platform size: each observation, steps/s under random masked actions."""
    import numpy as np

    from hdeeprm.rl.env import HeteroEnv

    platform, label, arrays, _, _ = load_trace(spec["trace"], spec["cores"], spec.get("nb_jobs"))
    episode = min(spec["episode_jobs"], len(arrays))
    rows = []
    base_rss = None

    def play(env, steps, rng):
        _, info = env.reset(seed=int(rng.integers(1 << 30)))
        t0 = time.perf_counter()
        for _ in range(steps):
            valid = np.flatnonzero(info["action_mask"])
            _, _, terminated, truncated, info = env.step(int(valid[int(rng.random() * len(valid))]))
            if terminated or truncated:
                _, info = env.reset()
        return time.perf_counter() - t0

    for obs in spec["observations"]:
        env = HeteroEnv(platform, arrays, observation=obs, episode_jobs=episode)
        rng = np.random.default_rng(0)
        play(env, 200, rng)  # warm-up: compiled kernels
        if base_rss is None:
            base_rss = rss_mib()
        steps = spec["steps"]
        gc.collect()
        reset_peak()
        times = [play(env, steps, rng) for _ in range(spec["repeat"])]
        peak = peak_rss_mib()
        row = {"platform": label, "cores": platform.nb_machines, "observation": obs,
               "observation_size": int(env.observation_space.shape[0]), "steps": steps,
               "seconds": stats(times), "steps_per_s": steps / median(times),
               "us_per_step": 1e6 * median(times) / steps, "peak_rss_mib": peak, "base_rss_mib": base_rss}
        if spec.get("reference") and obs == "minimal":
            reference = HeteroEnv(platform, arrays, observation=obs, episode_jobs=episode, fast=False)
            ref_steps = max(200, steps // 10)
            row["reference_steps_per_s"] = ref_steps / play(reference, ref_steps, np.random.default_rng(0))
        rows.append(row)
    return {"rows": rows, "base_rss_mib": base_rss}


def scaling_worker(spec: dict) -> dict:
    """Cost per job of growing prefixes of a repeated trace (sizes in increasing order, so
    the process's peak memory after each size is that size's)."""
    from hdeeprm.simulation.engine import Engine
    from hdeeprm.simulation.policies import PolicyConfig, run_policy

    platform, label, arrays, _, _ = load_trace(spec["trace"], spec["cores"], spec.get("nb_jobs"))
    sizes = sorted(spec["sizes"])
    copies = -(-sizes[-1] // len(arrays))
    big = repeated(arrays, copies)
    config = PolicyConfig.parse(*CLASSIC_POLICIES[spec["policy"]])
    run_policy(Engine(platform, big.window(0, 300)), config)
    base_rss = rss_mib()
    rows = []
    for size in sizes:
        workload = big.window(0, size)
        times = []
        gc.collect()
        reset_peak()
        for _ in range(spec["repeat"]):
            gc.collect()
            t0 = time.perf_counter()
            result = run_policy(Engine(platform, workload), config)
            times.append(time.perf_counter() - t0)
            del result
        rows.append({"trace": Path(spec["trace"]).name, "copies": copies, "platform": label,
                     "cores": platform.nb_machines, "policy": spec["policy"], "jobs": size,
                     "seconds": stats(times), "us_per_job": 1e6 * median(times) / size,
                     "jobs_per_s": size / median(times), "peak_rss_mib": peak_rss_mib(),
                     "base_rss_mib": base_rss})
        del workload
    return {"rows": rows, "base_rss_mib": base_rss}


def startup_worker(spec: dict) -> dict:
    """Start-up as a user sees it: import, then a first small run (kernels from the cache)."""
    t0 = time.perf_counter()
    import numpy as np
    from platforms import scaled_gaia

    from hdeeprm.simulation.engine import Engine
    from hdeeprm.simulation.policies import PolicyConfig, run_policy
    t1 = time.perf_counter()
    platform = scaled_gaia(1000)
    from hdeeprm.inputs.workload import load_workload
    workload = load_workload(ROOT / "examples" / "data" / "gaia-2014-head.swf.gz", nb_jobs=100,
                             reference_speed_gflops=platform.hierarchy.reference_speed_gflops,
                             max_res=platform.nb_machines, rng=np.random.default_rng(0))
    t2 = time.perf_counter()
    run_policy(Engine(platform, workload), PolicyConfig())
    t3 = time.perf_counter()
    from hdeeprm.rl.env import HeteroEnv
    env = HeteroEnv(platform, workload.compile(), observation="minimal")
    env.reset(seed=0)
    env.step(int(np.flatnonzero(env.action_masks())[0]))
    t4 = time.perf_counter()
    return {"import_s": t1 - t0, "first_run_s": t3 - t2, "first_env_step_s": t4 - t3,
            "peak_rss_mib": peak_rss_mib()}


def simulate_command(scenario: Path, out: Path) -> list[str]:
    """``hdeeprm simulate`` on a scenario folder, as a user types it."""
    return [sys.executable, "-m", "hdeeprm", "simulate", "--platform", str(scenario / "platform.xml"),
            "--workload", str(scenario / "workload.json"), "--policy", WHOLE_POLICY, "--out", str(out)]


def timed_process(command: list[str]) -> tuple[float, str]:
    """Wall time and stdout of a command run from the repository root; its failure ends the worker."""
    t0 = time.perf_counter()
    proc = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        sys.stderr.write(proc.stdout + proc.stderr)
        raise SystemExit(f"{' '.join(command)} failed (status {proc.returncode})")
    return wall, proc.stdout


def whole_worker(spec: dict) -> dict:
    """A scenario as a user runs it: ``hdeeprm simulate`` in a fresh process each time, after one
    untimed run (numba's cache loaded, not compiled; its outputs are kept in ``tmp/embedded``
    for the Batsim comparison), and the bare start-up ``python -c "import hdeeprm.cli.main"``."""
    scenario, tmp = Path(spec["scenario"]), Path(spec["tmp"])
    _, stdout = timed_process(simulate_command(scenario, tmp / "embedded"))  # warm-up
    imports = [timed_process([sys.executable, "-c", "import hdeeprm.cli.main"])[0]
               for _ in range(spec["repeat"])]
    process, core = [], []
    for k in range(spec["repeat"]):
        out = tmp / f"run-{k}"
        wall, stdout = timed_process(simulate_command(scenario, out))
        found = re.search(r"simulated in ([0-9.]+) s", stdout)
        if found is None:
            raise SystemExit(f"no 'simulated in X s' line in the output of hdeeprm simulate:\n{stdout}")
        process.append(wall)
        core.append(float(found.group(1)))
        shutil.rmtree(out, ignore_errors=True)
    size = re.search(r": ([\d,]+) jobs on .* \(([\d,]+) cores\)", stdout)
    makespan = re.search(r"^\s*makespan\s+(\S+) s", stdout, re.MULTILINE)
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return {"scenario": scenario.name, "path": str(scenario), "policy": WHOLE_POLICY,
            "jobs": int(size.group(1).replace(",", "")) if size else None,
            "machines": int(size.group(2).replace(",", "")) if size else None,
            "process_seconds": stats(process), "core_seconds": stats(core),
            "rest_seconds": stats([p - c for p, c in zip(process, core)]), "import_seconds": stats(imports),
            "makespan_s": float(makespan.group(1).replace(",", "")) if makespan else None,
            "peak_rss_mib": children / 2**20 if sys.platform == "darwin" else children / 1024,
            "embedded_dir": str(tmp / "embedded")}


def whole_batsim_worker(spec: dict) -> dict:
    """One run of a scenario on real Batsim with a Python FCFS scheduler over ZeroMQ: the Batsim
    backend driven as ``hdeeprm crossval`` drives it (same inputs, policy and seed), timed from
    starting the backend (inputs written for Batsim, batsim launched) to batsim's exit; then
    Batsim's outputs compared with those of ``hdeeprm simulate`` (crossval's comparison)."""
    import csv

    from hdeeprm.analysis.crossval import compare_runs
    from hdeeprm.backends import make_simulator
    from hdeeprm.common.seeding import run_generators
    from hdeeprm.inputs.platform import load_platform
    from hdeeprm.inputs.workload import load_workload
    from hdeeprm.simulation.policies import PolicyConfig, run_policy

    scenario, workdir = Path(spec["scenario"]), Path(spec["workdir"])
    t0 = time.perf_counter()
    platform = load_platform(scenario / "platform.xml")
    workload = load_workload(scenario / "workload.json", rng=run_generators(0)[0])
    load_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    simulator = make_simulator("batsim", platform, workload, batsim=spec["batsim"], workdir=workdir,
                               timeout_s=120.0)
    start_s = time.perf_counter() - t0  # inputs written, batsim started, SIMULATION_BEGINS received
    try:
        result = run_policy(simulator, PolicyConfig.parse(WHOLE_POLICY), rng=run_generators(0)[1])
    finally:
        simulator.close()
    seconds = time.perf_counter() - t0
    with open(workdir / "out_schedule.csv", newline="") as f:
        schedule = next(csv.DictReader(f))
    t0 = time.perf_counter()
    report = compare_runs(spec["embedded_dir"], workdir)
    compare_s = time.perf_counter() - t0
    makespans = {row.metric: row for row in report.aggregates}.get("makespan")
    return {"seconds": seconds, "start_s": start_s, "load_s": load_s, "compare_s": compare_s,
            "batsim_simulation_time_s": float(schedule["simulation_time"]),
            "scheduling_seconds": result.scheduling_seconds, "messages": simulator.messages,
            "agree": report.agree, "jobs_compared": report.jobs_compared, "jobs_differing": report.jobs_differing,
            "first_divergence": report.first_divergence,
            "makespan_s": makespans.batsim if makespans else None,
            "embedded_makespan_s": makespans.embedded if makespans else None,
            "differing_aggregates": [row.metric for row in report.aggregates if not row.agree],
            "peak_rss_mib": peak_rss_mib()}


def train_worker(spec: dict) -> dict:
    """One training run of a bundled experiment, timed by part: the environments' steps,
    the batched policy inference that chooses their actions, PPO's updates, and the rest."""
    import hdeeprm.rl.agents.ppo as ppo
    import hdeeprm.rl.train as train
    from hdeeprm.rl.experiment import ExperimentConfig

    seconds = {"play": 0.0, "inference": 0.0, "learning": 0.0}

    def timed(function, part):
        def wrapper(*args, **kwargs):
            t0 = time.perf_counter()
            try:
                return function(*args, **kwargs)
            finally:
                seconds[part] += time.perf_counter() - t0
        return wrapper

    train.play_vectorised = timed(train.play_vectorised, "play")
    ppo.PPOAgent.act_batch = timed(ppo.PPOAgent.act_batch, "inference")
    ppo.PPOAgent.optimise = timed(ppo.PPOAgent.optimise, "learning")
    config = ExperimentConfig.load(spec["experiment"], episodes=spec.get("episodes"))
    with tempfile.TemporaryDirectory(prefix="hdeeprm-train-") as out:
        summary = train.train(config, out, progress=False)
        steps = sum(1 for _ in open(Path(out) / "actions.log"))
    wall = summary["wall_seconds"]
    environment = seconds["play"] - seconds["inference"]
    return {"experiment": spec["experiment"], "algorithm": config.algorithm, "episodes": config.episodes,
            "rollout_batch": config.rollout_batch, "steps": steps, "seconds": wall,
            "steps_per_s": steps / wall, "environment_s": environment, "inference_s": seconds["inference"],
            "learning_s": seconds["learning"], "rest_s": wall - seconds["play"] - seconds["learning"],
            "environment_steps_per_s": steps / environment if environment > 0 else None,
            "learning_steps_per_s": steps / seconds["learning"] if seconds["learning"] > 0 else None}


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def dropin_worker(spec: dict) -> dict:
    """One run of a scenario with an external Batsim scheduler (benchmarks/dropin_fcfs.py, no
    hdeeprm in it) against ``simulator``: ``hdeeprm batsim`` or real ``batsim``, started as a
    user starts them. Seconds: the simulator's process, from its start to its exit (the
    scheduler is started first and waits); own seconds: those less the scheduler's own work
    (``busy_seconds`` that dropin_fcfs.py prints: from each message received to its reply
    sent). Batsim's ``scheduling_time`` cannot serve: on 20,000 jobs it said 1.2 s where the
    scheduler had worked 3.6 s."""
    scenario, prefix = Path(spec["scenario"]), spec["prefix"]
    endpoint = f"tcp://127.0.0.1:{_free_port()}"
    scheduler = subprocess.Popen([sys.executable, str(HERE / "dropin_fcfs.py"), endpoint], cwd=ROOT,
                                 stdout=subprocess.PIPE, text=True)
    args = ["-p", str(scenario / "platform.xml"), "-w", str(scenario / "workload.json"), "-e", prefix,
            "-s", endpoint, "-E"]
    command = ([spec["batsim"], *args, "-q"] if spec["simulator"] == "batsim"
               else [sys.executable, "-m", "hdeeprm", "batsim", *args])
    try:
        time.sleep(0.2)  # the scheduler binds its socket
        seconds, _ = timed_process(command)
        said = scheduler.communicate(timeout=60)[0].split()
    finally:
        if scheduler.poll() is None:
            scheduler.kill()
    busy = float(said[said.index("busy_seconds") + 1])
    return {"seconds": seconds, "own_seconds": seconds - busy, "scheduler_seconds": busy}


def dropin_comparison(ours: str, theirs: str) -> dict:
    """Whether two drop-in runs made the same schedule (every out_jobs.csv column but the
    jobs' energy), the largest relative difference of the jobs' energies, and which other
    output files are byte-identical."""
    import csv

    with open(f"{ours}_jobs.csv", newline="") as a, open(f"{theirs}_jobs.csv", newline="") as b:
        mine, other = list(csv.DictReader(a)), list(csv.DictReader(b))
    same = len(mine) == len(other) and all(
        {k: v for k, v in x.items() if k != "consumed_energy"} == {k: v for k, v in y.items() if k != "consumed_energy"}
        for x, y in zip(mine, other))
    energy = max((abs(float(x["consumed_energy"]) - float(y["consumed_energy"]))
                  / max(abs(float(y["consumed_energy"])), 1e-300) for x, y in zip(mine, other)), default=0.0)
    files = ("consumed_energy", "pstate_changes", "machine_states")
    return {"same_schedule": same, "job_energy_max_rel_diff": energy,
            "identical_files": [f for f in files if Path(f"{ours}_{f}.csv").read_bytes()
                                == Path(f"{theirs}_{f}.csv").read_bytes()]}


WORKERS = {"dropin": dropin_worker, "batsim": batsim_worker, "classic": classic_worker, "env": env_worker, "scaling": scaling_worker,
           "startup": startup_worker, "whole": whole_worker, "whole_batsim": whole_batsim_worker,
           "train": train_worker}


def run_worker(kind: str, spec: dict, env: dict | None = None) -> dict:
    """Run one worker in a fresh process; its result, with its wall time."""
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, str(Path(__file__).resolve()), "--worker", kind, json.dumps(spec)],
                          cwd=ROOT, capture_output=True, text=True, env=env)
    wall = time.perf_counter() - t0
    lines = [line for line in proc.stdout.splitlines() if line.startswith(WORKER_MARK)]
    if proc.returncode != 0 or not lines:
        sys.stderr.write(proc.stdout + proc.stderr)
        raise SystemExit(f"worker {kind} {spec} failed (status {proc.returncode})")
    result = json.loads(lines[-1][len(WORKER_MARK):])
    result["worker_wall_s"] = wall
    return result


# ---------------------------------------------------------------------------- report


def grid(head, rows, left=(0,)) -> str:
    widths = [max(len(str(c)) for c in col) for col in zip(head, *rows)]

    def line(cells):
        return "  ".join(str(c).ljust(w) if i in left else str(c).rjust(w)
                         for i, (c, w) in enumerate(zip(cells, widths)))

    return "\n".join([line(head), "  ".join("-" * w for w in widths)] + [line(r) for r in rows])


def markdown(head, rows) -> str:
    out = ["| " + " | ".join(head) + " |", "|" + "|".join("---" for _ in head) + "|"]
    out += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return "\n".join(out)


def spread(s: dict) -> str:
    return f"{s['median']:.2f} ({s['min']:.2f}-{s['max']:.2f})"


def rss(row: dict) -> str:
    return f"{row['peak_rss_mib']:.0f} ({row['base_rss_mib']:.0f})"


def tables(results: dict) -> list[tuple[str, tuple, list]]:
    """(title, header, rows) of every table, for the terminal and for Markdown."""
    out = []
    batsim = results.get("batsim", [])
    if batsim:
        head = ("recorded Batsim run", "policy", "jobs", "machines", "jobs/s", "s (min-max)",
                "Batsim s", "Batsim jobs/s", "x Batsim")
        rows = [(r["run"], r["policy"], f"{r['jobs']:,}", r["machines"], f"{r['jobs_per_s']:,.0f}",
                 f"{r['seconds']['median'] * 1e3:.2f} ms ({r['seconds']['min'] * 1e3:.2f}-"
                 f"{r['seconds']['max'] * 1e3:.2f})", f"{r['batsim_seconds']:.3f}",
                 f"{r['batsim_jobs_per_s']:,.0f}", f"{r['ratio']:.0f}") for r in batsim]
        out.append(("Real Batsim against the embedded engine, same platform, workload and policy", head, rows))
    whole = results.get("whole", [])
    if whole:
        head = ("scenario", "jobs", "hosts", "ours: process s (min-max)", "import s", "core s", "rest s",
                "Batsim s (min-max)", "Batsim's simulation_time s", "Batsim / ours", "agree")
        rows = []
        for r in whole:
            b = r.get("batsim")
            rows.append((r["scenario"], f"{r['jobs']:,}" if r["jobs"] else "?", r["machines"] or "?",
                         spread(r["process_seconds"]), f"{r['import_seconds']['median']:.2f}",
                         f"{r['core_seconds']['median']:.2f}", f"{r['rest_seconds']['median']:.2f}",
                         spread(b["seconds"]) if b else "-",
                         f"{b['simulation_time_seconds']['median']:.2f}" if b else "-",
                         f"{b['ratio']:.1f}" if b else "-",
                         ("yes" if b["agree"] else f"NO ({max(x['jobs_differing'] for x in b['runs'])} jobs differ)")
                         if b else "-"))
        out.append((f"Whole process: hdeeprm simulate --policy {WHOLE_POLICY} --out DIR, as a user waits for it",
                     head, rows))
    dropin = results.get("dropin", [])
    if dropin:
        head = ("scenario", "scheduler", "hdeeprm batsim s (min-max)", "batsim s (min-max)", "batsim / ours",
                "own s: ours", "own s: batsim", "own: batsim / ours",
                "same schedule", "job energy max rel. diff", "identical files")
        rows = [(r["scenario"], r["scheduler"], spread(r["hdeeprm"]), spread(r["batsim"]) if "batsim" in r else "-",
                 f"{r['ratio']:.2f}" if "ratio" in r else "-",
                 f"{r['hdeeprm_own']['median']:.2f}" if "hdeeprm_own" in r else "-",
                 f"{r['batsim_own']['median']:.2f}" if "batsim_own" in r else "-",
                 f"{r['own_ratio']:.2f}" if "own_ratio" in r else "-",
                 ("yes" if r["same_schedule"] else "NO") if "same_schedule" in r else "-",
                 f"{r['job_energy_max_rel_diff']:.1e}" if "same_schedule" in r else "-",
                 ", ".join(r["identical_files"]) or "none" if "same_schedule" in r else "-")
                for r in dropin]
        out.append(("Drop-in Batsim: an external scheduler (pure pyzmq FCFS) on hdeeprm batsim and on batsim",
                    head, rows))
    classic = results.get("classic", [])
    if classic:
        head = ("trace", "platform", "policy", "jobs", "jobs/s", "x Batsim", "s (min-max)",
                "us/pass", "peak RSS MiB (before)", "reference jobs/s")
        rows = [(r["trace"].split("-cln")[0].split(".swf")[0], r["platform"], r["policy"], f"{r['jobs']:,}",
                 f"{r['jobs_per_s']:,.0f}", f"{r['jobs_per_s'] / BATSIM_JOBS_PER_S:.0f}",
                 f"{r['seconds']['median']:.2f} ({r['seconds']['min']:.2f}-{r['seconds']['max']:.2f})",
                 f"{r['us_per_pass']:.1f}" if r.get("us_per_pass") else "-", rss(r),
                 f"{r['reference_jobs_per_s']:,.0f}" if r.get("reference_jobs_per_s") else "")
                for r in classic]
        out.append(("Classic policies on full traces (simulate = Engine(...) + run_policy(...))", head, rows))
    env = results.get("env", [])
    if env:
        head = ("platform", "observation", "obs size", "steps/s", "us/step", "s (min-max)",
                "peak RSS MiB (before)", "reference steps/s")
        rows = [(r["platform"], r["observation"], f"{r['observation_size']:,}", f"{r['steps_per_s']:,.0f}",
                 f"{r['us_per_step']:.1f}",
                 f"{r['seconds']['median']:.2f} ({r['seconds']['min']:.2f}-{r['seconds']['max']:.2f})",
                 rss(r), f"{r['reference_steps_per_s']:,.0f}" if r.get("reference_steps_per_s") else "")
                for r in env]
        out.append(("HeteroEnv, random masked policy (its choice included)", head, rows))
    decision = results.get("decision", [])
    if decision:
        head = ("decision", "at 1,000 cores us", "at 100,000 cores us", "ratio")
        rows = [(d["what"], f"{d['small_us']:.1f}", f"{d['large_us']:.1f}", f"{d['ratio']:.2f}") for d in decision]
        out.append(("Cost of one decision, 100,000 cores against 1,000", head, rows))
    scaling = results.get("scaling", [])
    if scaling:
        base = scaling[0]["us_per_job"]
        head = ("jobs", "trace copies", "platform", "policy", "us/job", "x cost at first size", "jobs/s",
                "s (min-max)", "peak RSS MiB (before)")
        rows = [(f"{r['jobs']:,}", r["copies"], r["platform"], r["policy"], f"{r['us_per_job']:.2f}",
                 f"{r['us_per_job'] / base:.2f}", f"{r['jobs_per_s']:,.0f}",
                 f"{r['seconds']['median']:.2f} ({r['seconds']['min']:.2f}-{r['seconds']['max']:.2f})",
                 rss(r)) for r in scaling]
        out.append(("Cost per job as the trace grows", head, rows))
    training = results.get("train", [])
    if training:
        head = ("experiment", "algorithm", "episodes", "steps", "steps/s (min-max)", "environment s",
                "inference s", "learning s", "rest s", "env alone steps/s", "learning alone steps/s")
        rows = [(r["experiment"], r["algorithm"], r["episodes"], f"{r['steps']:,}",
                 f"{r['steps_per_s']['median']:,.0f} ({r['steps_per_s']['min']:,.0f}-{r['steps_per_s']['max']:,.0f})",
                 f"{r['environment_s']:.1f}", f"{r['inference_s']:.1f}", f"{r['learning_s']:.1f}",
                 f"{r['rest_s']:.1f}", f"{r['environment_steps_per_s']:,.0f}", f"{r['learning_steps_per_s']:,.0f}")
                for r in training]
        out.append(("Training throughput: hdeeprm train, environment steps per second, learning included "
                    "(parts from the median run)", head, rows))
    targets = results.get("targets", [])
    if targets:
        head = ("target", "goal", "measured", "reached")
        rows = [(t["target"], t["goal"], t["measured"], "yes" if t["reached"] else "NO") for t in targets]
        out.append(("Targets (issues 8 and 18)", head, rows))
    return out


WHOLE_NOTE = ("Whole process: wall time of `python -m hdeeprm simulate ... --out DIR` in a fresh process "
              "(after one untimed run); core s = its own 'simulated in X s' (the run alone, after an untimed "
              "small run that loads the compiled kernels); rest s = process - core (start-up, reading the "
              "workload, metrics, writing the outputs); import s = `python -c \"import hdeeprm.cli.main\"`. "
              "Batsim s = real Batsim + our Python FCFS scheduler over ZeroMQ (the Batsim backend, as "
              "`hdeeprm crossval` drives it), from writing Batsim's inputs and starting batsim to batsim's "
              "exit; Batsim's simulation_time is Batsim's own figure (out_schedule.csv); agree: crossval's "
              "comparison of the two runs' out_jobs.csv and out_schedule.csv.")


def evaluate(results: dict) -> list[dict]:
    out = []
    batsim = results.get("batsim", [])
    if batsim:
        worst = min(batsim, key=lambda r: r["ratio"])
        out.append({"target": "classic policy vs real Batsim on the same workload and platform (recorded runs)",
                    "goal": ">= 100 x Batsim's own wall time",
                    "measured": f"lowest {worst['ratio']:.0f} x ({worst['run']}); "
                                + ", ".join(f"{r['run'].split('-')[0]} {r['ratio']:.0f} x" for r in batsim),
                    "reached": worst["ratio"] >= 100})
    flat = [r for r in results.get("classic", []) if r["platform"].startswith("flat")]
    if flat:
        worst = min(flat, key=lambda r: r["jobs_per_s"])
        out.append({"target": "classic FCFS/EASY on Batsim's setting (flat platforms)",
                    "goal": f">= {TARGETS['classic']:,.0f} jobs/s (100 x Batsim) on every trace",
                    "measured": f"lowest {worst['jobs_per_s']:,.0f} jobs/s ({worst['trace'].split('-cln')[0]} "
                                f"{worst['policy']}); highest "
                                f"{max(r['jobs_per_s'] for r in flat):,.0f}",
                    "reached": worst["jobs_per_s"] >= TARGETS["classic"]})
    env = {(r["cores"], r["observation"]): r for r in results.get("env", [])}
    one_k = [r for (cores, obs), r in env.items() if obs == "minimal" and 900 <= cores <= 1100]
    if one_k:
        r = one_k[0]
        out.append({"target": "HeteroEnv, minimal observation, 1,000 cores",
                    "goal": f">= {TARGETS['env']:,.0f} steps/s",
                    "measured": f"{r['steps_per_s']:,.0f} steps/s",
                    "reached": r["steps_per_s"] >= TARGETS["env"]})
    scaling = results.get("scaling", [])
    if len(scaling) >= 2:
        ratio = scaling[-1]["us_per_job"] / scaling[0]["us_per_job"]
        out.append({"target": f"cost per job at {scaling[-1]['jobs']:,} jobs vs {scaling[0]['jobs']:,}",
                    "goal": f"<= {TARGETS['scaling']} x",
                    "measured": f"{ratio:.2f} x ({scaling[-1]['us_per_job']:.2f} vs {scaling[0]['us_per_job']:.2f} us/job)",
                    "reached": ratio <= TARGETS["scaling"]})
    for d in results.get("decision", []):
        if d["what"].startswith("HeteroEnv step, minimal"):
            out.append({"target": "a decision on 100,000 cores vs 1,000 (HeteroEnv step, minimal obs)",
                        "goal": f"<= {TARGETS['decision']:.0f} x",
                        "measured": f"{d['ratio']:.2f} x ({d['large_us']:.1f} vs {d['small_us']:.1f} us)",
                        "reached": d["ratio"] <= TARGETS["decision"]})
    for r in results.get("train", []):
        out.append({"target": f"PPO training on {r['experiment']}, learning included (issue 18)",
                    "goal": f">= {TARGETS['train']:,.0f} steps/s",
                    "measured": f"{r['steps_per_s']['median']:,.0f} steps/s (environment alone "
                                f"{r['environment_steps_per_s']:,.0f}, learning alone {r['learning_steps_per_s']:,.0f})",
                    "reached": r["steps_per_s"]["median"] >= TARGETS["train"]})
    return out


def decisions(results: dict, passes: list[dict]) -> list[dict]:
    out = []
    env = results.get("env", [])
    for obs in OBSERVATIONS:
        small = [r for r in env if r["observation"] == obs and 900 <= r["cores"] <= 1100]
        large = [r for r in env if r["observation"] == obs and r["cores"] >= 90_000]
        if small and large:
            a, b = small[0]["us_per_step"], large[0]["us_per_step"]
            out.append({"what": f"HeteroEnv step, {obs} observation", "small_us": a, "large_us": b, "ratio": b / a})
    for policy in DECISION_POLICIES:
        small = [r for r in passes if r["policy"] == policy and 900 <= r["cores"] <= 1100]
        large = [r for r in passes if r["policy"] == policy and r["cores"] >= 90_000]
        if small and large and small[0].get("us_per_pass") and large[0].get("us_per_pass"):
            a, b = small[0]["us_per_pass"], large[0]["us_per_pass"]
            out.append({"what": f"classic {policy}: run time / scheduling passes ({small[0]['trace'].split('-cln')[0]})",
                        "small_us": a, "large_us": b, "ratio": b / a})
    return out


# ---------------------------------------------------------------------------- main


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("traces", nargs="*", help="SWF traces (.swf or .swf.gz): e.g. SDSC-SP2, HPC2N, SDSC-BLUE")
    p.add_argument("--out", default="results.json", help="JSON file for every number (default results.json)")
    p.add_argument("--markdown", metavar="FILE", help="also write the tables as Markdown")
    p.add_argument("--repeat", type=int, default=3, help="runs per figure; the median is reported (default 3)")
    p.add_argument("--only", default=",".join(SECTIONS),
                   help="comma-separated sections: " + ", ".join(SECTIONS) + " (default all)")
    p.add_argument("--batsim-runs", nargs="*", default=[], metavar="DIR",
                   help="recorded Batsim runs to re-simulate (e.g. tests/data/batsim-reference/A7-fcfs-sdsc-sp2)")
    p.add_argument("--scenario", action="append", default=[], dest="scenarios", metavar="DIR",
                   help="section whole: a folder with platform.xml and workload.json to run with hdeeprm "
                        "simulate as a user does (repeatable)")
    p.add_argument("--batsim", nargs="?", const="", metavar="PATH",
                   help="section whole: also run each --scenario on real Batsim with a Python FCFS scheduler "
                        "(--repeat times, about two minutes each for 100,000 jobs); PATH: the batsim executable "
                        "(default $HDEEPRM_BATSIM, then PATH)")
    p.add_argument("--quick", action="store_true",
                   help="a smoke run: first 20,000 jobs of each trace, smaller sizes, fewer steps")
    p.add_argument("--env-steps", type=int, default=5000, help="steps per timed env run (default 5000)")
    p.add_argument("--experiment", default="quickstart",
                   help="section train: a bundled experiment name or an experiment file (default quickstart)")
    p.add_argument("--worker", nargs=2, metavar=("KIND", "SPEC"), help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    args.sections = [s.strip() for s in args.only.split(",") if s.strip()]
    if args.worker:
        return args
    unknown = [s for s in args.sections if s not in SECTIONS]
    if unknown:
        p.error(f"--only: unknown section {unknown[0]!r}; expected some of {', '.join(SECTIONS)}")
    if not args.traces and any(s in TRACE_SECTIONS for s in args.sections):
        p.error("give at least one SWF trace (sections " + ", ".join(TRACE_SECTIONS) + " need them; "
                "--only whole, batsim or train do not)")
    for folder in args.scenarios:
        missing = [name for name in ("platform.xml", "workload.json") if not (Path(folder) / name).is_file()]
        if missing:
            p.error(f"--scenario {folder}: no {' or '.join(missing)} there")
    if args.batsim is not None and not (("whole" in args.sections or "dropin" in args.sections) and args.scenarios):
        p.error("--batsim goes with section whole or dropin and at least one --scenario")
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.worker:
        kind, spec = args.worker
        result = WORKERS[kind](json.loads(spec))
        print(WORKER_MARK + json.dumps(result, default=float), flush=True)
        return 0

    t_start = time.perf_counter()
    traces = [str(Path(t).resolve()) for t in args.traces]
    for t in traces:
        if not Path(t).is_file():
            raise SystemExit(f"{t}: no such trace")
    batsim = None
    if args.batsim is not None:
        from hdeeprm.backends.batsim.process import find_batsim
        from hdeeprm.common.errors import HDeepRMError

        try:
            batsim = find_batsim(args.batsim or None)
        except HDeepRMError as e:
            raise SystemExit(f"--batsim: {e}") from None
    info = machine()
    command = "python " + " ".join([os.path.relpath(__file__, ROOT)] + (argv if argv is not None else sys.argv[1:]))
    print(f"HDeepRM benchmark: {info['cpu']}, {info['cores']} cores, {info['ram_gib']:.0f} GiB; "
          f"Python {info['python']}, numpy {info['numpy']}, numba {info['numba']}, simpy {info['simpy']}; "
          f"hdeeprm {info['hdeeprm_git']}", flush=True)
    results: dict = {"command": command, "machine": info, "repeat": args.repeat,
                     "batsim_reference_jobs_per_s": BATSIM_JOBS_PER_S}

    # The first process to use the kernels compiles them into numba's cache (about a minute,
    # once); later processes load them.
    startup = run_worker("startup", {})
    if startup["first_run_s"] > 5:
        startup = run_worker("startup", {})
    results["startup"] = startup
    print(f"start-up: import {startup['import_s']:.2f} s, first classic run {startup['first_run_s']:.2f} s, "
          f"first env step {startup['first_env_step_s']:.2f} s (kernels from numba's cache)", flush=True)

    quick = args.quick
    nb = 20_000 if quick else None

    if "batsim" in args.sections and args.batsim_runs:
        folders = [str(Path(d).resolve()) for d in args.batsim_runs]
        out = run_worker("batsim", {"folders": folders, "repeat": max(args.repeat, 11)})
        results["batsim"] = out["rows"]
        for r in out["rows"]:
            print(f"  {r['run']:<28} {r['jobs_per_s']:>10,.0f} jobs/s, Batsim {r['batsim_jobs_per_s']:,.0f}: "
                  f"{r['ratio']:.0f} x", flush=True)

    if "whole" in args.sections and args.scenarios:
        rows = []
        for folder in (str(Path(d).resolve()) for d in args.scenarios):
            with tempfile.TemporaryDirectory(prefix="hdeeprm-whole-") as tmp:
                row = run_worker("whole", {"scenario": folder, "tmp": tmp, "repeat": args.repeat})
                print(f"  whole {row['scenario']:<28} {row['jobs'] or 0:>9,} jobs: process "
                      f"{row['process_seconds']['median']:.2f} s, core {row['core_seconds']['median']:.2f} s, "
                      f"import {row['import_seconds']['median']:.2f} s", flush=True)
                if batsim:
                    runs = []
                    for k in range(args.repeat):
                        run = run_worker("whole_batsim", {"scenario": folder, "batsim": batsim,
                                                          "workdir": str(Path(tmp) / f"batsim-{k}"),
                                                          "embedded_dir": row["embedded_dir"]})
                        shutil.rmtree(Path(tmp) / f"batsim-{k}", ignore_errors=True)
                        runs.append(run)
                        print(f"  whole {row['scenario']:<28} Batsim run {k + 1}: {run['seconds']:.1f} s "
                              f"(Batsim's simulation_time {run['batsim_simulation_time_s']:.1f} s), "
                              + ("agrees" if run["agree"] else
                                 f"DIFFERS ({run['jobs_differing']} jobs, {run['differing_aggregates']})"),
                              flush=True)
                    seconds = stats([r["seconds"] for r in runs])
                    row["batsim"] = {"executable": batsim, "seconds": seconds,
                                     "simulation_time_seconds": stats([r["batsim_simulation_time_s"] for r in runs]),
                                     "ratio": seconds["median"] / row["process_seconds"]["median"],
                                     "ratio_core": seconds["median"] / row["core_seconds"]["median"],
                                     "agree": all(r["agree"] for r in runs), "runs": runs}
            del row["embedded_dir"]  # removed with the temporary folder
            rows.append(row)
        results["whole"] = rows

    if "dropin" in args.sections and args.scenarios:
        rows = []
        for folder in (str(Path(d).resolve()) for d in args.scenarios):
            row = {"scenario": Path(folder).name, "scheduler": "benchmarks/dropin_fcfs.py"}
            with tempfile.TemporaryDirectory(prefix="hdeeprm-dropin-") as tmp:
                simulators = ["hdeeprm"] + (["batsim"] if batsim else [])
                for simulator in simulators:
                    runs = [run_worker("dropin", {"scenario": folder, "simulator": simulator, "batsim": batsim,
                                                  "prefix": f"{tmp}/{simulator}-{k}"})
                            for k in range(args.repeat)]
                    row[simulator] = stats([r["seconds"] for r in runs])
                    row[simulator + "_own"] = stats([r["own_seconds"] for r in runs])
                    print(f"  dropin {row['scenario']:<28} {simulator:<8} {row[simulator]['median']:.2f} s "
                          f"(own {row[simulator + '_own']['median']:.2f} s)", flush=True)
                if batsim:
                    row.update(dropin_comparison(f"{tmp}/hdeeprm-0", f"{tmp}/batsim-0"))
                    row["ratio"] = row["batsim"]["median"] / row["hdeeprm"]["median"]
                    row["own_ratio"] = row["batsim_own"]["median"] / row["hdeeprm_own"]["median"]
            rows.append(row)
        results["dropin"] = rows

    def limited(path):
        return {"trace": path, "nb_jobs": nb}

    if "classic" in args.sections:
        rows = []
        for i, path in enumerate(traces):
            for cores in ("flat",) + CLASSIC_CORES:
                policies = list(FLAT_POLICIES) if cores == "flat" else list(CLASSIC_POLICIES)
                spec = dict(limited(path), cores=cores, policies=policies, repeat=args.repeat,
                            reference=(i == 0 and cores == "flat"))
                out = run_worker("classic", spec)
                for r in out["rows"]:
                    rows.append(r)
                    print(f"  {r['trace'][:24]:<24} {r['platform']:<12} {r['policy']:<24} "
                          f"{r['jobs_per_s']:>10,.0f} jobs/s", flush=True)
        results["classic"] = rows

    if "env" in args.sections or "decision" in args.sections:
        rows = []
        for cores in ENV_CORES:
            steps = args.env_steps // (5 if quick else 1)
            spec = dict(limited(traces[0]), cores=cores, observations=list(OBSERVATIONS), steps=steps,
                        repeat=args.repeat, episode_jobs=5000, reference=(cores == 1000))
            out = run_worker("env", spec)
            for r in out["rows"]:
                rows.append(r)
                print(f"  env {r['platform']:<14} {r['observation']:<8} {r['steps_per_s']:>10,.0f} steps/s "
                      f"({r['us_per_step']:.1f} us/step)", flush=True)
        results["env"] = rows

    if "decision" in args.sections:
        passes = [r for r in results.get("classic", []) if r["trace"] == Path(traces[0]).name]
        for cores in (1000, 100_000):
            if any(r["cores"] and abs(r["cores"] - cores) < 0.1 * cores for r in passes):
                continue
            out = run_worker("classic", dict(limited(traces[0]), cores=cores, policies=list(DECISION_POLICIES),
                                             repeat=args.repeat))
            for r in out["rows"]:
                passes.append(r)
                print(f"  decision {r['platform']:<14} {r['policy']:<24} {r['us_per_pass']:.1f} us/pass", flush=True)
        results["decision_passes"] = [r for r in passes if r["policy"] in DECISION_POLICIES]
        results["decision"] = decisions(results, passes)

    if "scaling" in args.sections:
        path = traces[1] if len(traces) > 1 else traces[0]
        sizes = [s // 10 for s in SCALING_SIZES] if quick else list(SCALING_SIZES)
        out = run_worker("scaling", dict(trace=path, nb_jobs=None, cores=1000, policy="fcfs", sizes=sizes,
                                         repeat=args.repeat))
        results["scaling"] = out["rows"]
        for r in out["rows"]:
            print(f"  scaling {r['jobs']:>9,} jobs {r['us_per_job']:6.2f} us/job  peak {r['peak_rss_mib']:.0f} MiB",
                  flush=True)

    if "train" in args.sections:
        runs = [run_worker("train", {"experiment": args.experiment, "episodes": 40 if quick else None})
                for _ in range(args.repeat)]
        runs.sort(key=lambda r: r["steps_per_s"])
        row = dict(runs[len(runs) // 2], steps_per_s=stats([r["steps_per_s"] for r in runs]))
        results["train"] = [row]
        print(f"  train {row['experiment']:<16} {row['steps_per_s']['median']:>10,.0f} steps/s (environment "
              f"{row['environment_s']:.1f} s, inference {row['inference_s']:.1f} s, learning {row['learning_s']:.1f} s, "
              f"rest {row['rest_s']:.1f} s)", flush=True)

    results["targets"] = evaluate(results)
    results["machine"]["load_average_end"] = load_average()
    results["wall_seconds"] = time.perf_counter() - t_start

    print()
    for title, head, rows in tables(results):
        print(title)
        print(grid(head, rows, left=(0, 1, 2) if title.startswith("Classic") else (0,)))
        print()
    print(f"x Batsim = jobs/s / {BATSIM_JOBS_PER_S:,.0f} (real Batsim 4.2.1 + Python FCFS: ~1,500-2,300 jobs/s "
          "on these 2-core machines). Medians of "
          f"{args.repeat} runs; total {results['wall_seconds']:.0f} s.")
    if results.get("whole"):
        print(WHOLE_NOTE)
    Path(args.out).write_text(json.dumps(results, indent=1, default=float) + "\n")
    print(f"wrote {args.out}")
    if args.markdown:
        text = [f"Command: `{command}`", "",
                f"Machine: {info['cpu']}, {info['cores']} cores, {info['ram_gib']:.0f} GiB RAM, {info['system']}; "
                f"Python {info['python']}, numpy {info['numpy']}, numba {info['numba']}, simpy {info['simpy']}; "
                f"hdeeprm {info['hdeeprm_git']}; load average at start {info['load_average']}, at end "
                f"{results['machine']['load_average_end']}.", "",
                f"Start-up (kernels from numba's cache): import {startup['import_s']:.2f} s, first classic run "
                f"{startup['first_run_s']:.2f} s, first env step {startup['first_env_step_s']:.2f} s.", ""]
        for title, head, rows in tables(results):
            text += [f"### {title}", "", markdown(head, rows), ""]
        if results.get("whole"):
            text += [WHOLE_NOTE, ""]
        text.append(f"Medians of {args.repeat} runs; the benchmark took {results['wall_seconds']:.0f} s.")
        Path(args.markdown).write_text("\n".join(text) + "\n")
        print(f"wrote {args.markdown}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
