"""Fuzz HDeepRM with hostile input: every parser, configuration reader and command-line argument.

    python benchmarks/fuzz.py --count 5000 --seed 0 --out /tmp/fuzz-report \\
                              [--workers 2] [--timeout 20] [--memory-mb 4000]

Generates ``--count`` cases, structure-aware mutations of valid seeds plus byte-level ones, in
ten categories, and runs each in a pool of worker processes:

  swf            SWF traces: ``hdeeprm simulate --platform gaia --workload X --nb-jobs 50``
                 (also convert, describe, jobstat)
  batsim_json    Batsim JSON workloads: simulate, describe, jobstat
  platform_json  HDeepRM platform JSON: simulate on a small valid trace
  xml_platform   SimGrid XML platforms (and hierarchy.json beside them): simulate
  experiment     experiment JSON: ``ExperimentConfig.load(p).make_env(part)``, reset, close
  grid           sweep grid JSON: ``GridConfig.load(p).cells()``
  options        original HDeepRM options files: ``hdeeprm-launch OPTIONS --nbruns 1``
  replay         mutated Batsim scenario folders: ``hdeeprm replay SCENARIO --out DIR``
  run_csv        mutated run folders: ``hdeeprm plot / compare / report / clean``
  cli            hostile argument values on every command

Each case runs in its own temporary folder (the current folder while it runs, deleted after),
with the command's output captured. Outcomes:

  ok         exit status 0, or the API call returned
  clean      a one-line error: exit status 2 (``report_errors``) or argparse's SystemExit(2);
             for API cases, an ``hdeeprm.common.errors.HDeepRMError``
  traceback  any other exception escaping (a bug), or an unexpected exit status
  hang       over ``--timeout`` seconds (SIGALRM in the worker; a worker that does not answer
             within timeout + 10 s is killed by the parent's watchdog)
  memory     MemoryError (every worker runs under RLIMIT_AS = ``--memory-mb``), or the worker
             died (killed, crashed)

A case interrupted while numba was compiling is run once more with ten times the timeout (a
cold compilation cache is not a hang). Workers import HDeepRM once and warm numba up before
taking cases; a worker is replaced after a hang or a memory outcome.

Written under ``--out``: ``summary.json`` (counts per category and outcome, per mutation kind,
the de-duplicated findings), ``results.jsonl`` (one line per case), ``seeds/`` (the valid
inputs the cases start from) and, for every traceback, hang or memory outcome,
``cases/<category>-<n>/`` with the input files, ``case.json`` (the mutation, argv or API
call), ``repro.sh`` (run it to reproduce), ``traceback.txt`` and ``output.txt``. Paths in
the cases are relative to the case folder; ``@REPO@`` and ``@SEEDS@`` in the generated
files stand for this checkout and ``--out/seeds`` (substituted when a case runs and in the
folders written).

Cases depend only on ``--seed`` and their index (``summary.json``'s ``cases_digest`` is the
same for the same seed and count); ``--only swf-12,cli-40`` re-runs some of them. Exit status 0
when no case ended in traceback, hang or memory, 1 otherwise.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import csv
import gzip
import hashlib
import importlib
import importlib.util
import io
import json
import os
import random
import re
import shlex
import shutil
import signal
import stat
import sys
import tempfile
import threading
import time
import traceback
from collections import Counter, defaultdict
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
OUTCOMES = ("ok", "clean", "traceback", "hang", "memory")
BAD = ("traceback", "hang", "memory")

CATEGORIES = {  # name: weight (fraction of the cases)
    "swf": 14,
    "batsim_json": 12,
    "platform_json": 9,
    "xml_platform": 10,
    "experiment": 9,
    "grid": 6,
    "options": 8,
    "replay": 9,
    "run_csv": 10,
    "cli": 13,
}

SWF_FIELDS = ("job_number", "submit_time", "wait_time", "run_time", "allocated_procs", "avg_cpu_time",
              "used_memory_kb", "requested_procs", "requested_time", "requested_memory_kb", "status",
              "user_id", "group_id", "executable", "queue", "partition", "preceding_job", "think_time")
SMALL_TRACE = "@REPO@/hdeeprm/data/traces/kth-sp2-head.swf.gz"
GAIA_TRACE = "@REPO@/examples/data/gaia-2014-head.swf.gz"
NO_BATSIM = "@REPO@/benchmarks/no-such-batsim"  # crossval must never start a real Batsim here

# ============================================================================ generic mutators

SPECIAL_VALUES = ["text", "nan", "inf", -1, 0, 1e308, 10 ** 40, None, [], {}, True, False, 1.5,
                  "", -1e308, 2 ** 63, -(2 ** 63) - 1, "-1", "1e999", "\u00e9\u4e2d\U0001f600", 1e-320,
                  -0.0, "0", 10 ** 7, "../../../../etc/passwd", "/dev/zero"]
RAW_NONFINITE = ["NaN", "Infinity", "-Infinity", "1e999", "-1e999"]


def json_paths(doc) -> list[tuple]:
    out: list[tuple] = []

    def walk(value, path):
        out.append(path)
        if isinstance(value, dict):
            for k, v in value.items():
                walk(v, path + (k,))
        elif isinstance(value, list):
            for i, v in enumerate(value):
                walk(v, path + (i,))

    walk(doc, ())
    return out


def get_at(doc, path):
    for step in path:
        doc = doc[step]
    return doc


def set_at(doc, path, value):
    get_at(doc, path[:-1])[path[-1]] = value


def fmt_path(path) -> str:
    text = ""
    for step in path:
        text += f"[{step}]" if isinstance(step, int) else (f".{step}" if text else str(step))
    return text or "(top level)"


def short(value, limit=60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "..."


def _is_number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


class JsonMutator:
    """Structure-aware mutations of a parsed JSON document; ``interest`` are keys to prefer,
    ``values`` extra replacement values per key, ``sensitive`` keys whose negative, null or
    non-numeric value is clearly invalid (an ok outcome there is flagged as suspect)."""

    def __init__(self, interest=(), values=None, sensitive=(), required=()):
        self.interest = set(interest)
        self.values = values or {}
        self.sensitive = set(sensitive)
        self.required = set(required)  # containers that must not be empty (e.g. a workload's jobs)

    def pick(self, rng, doc, predicate=None):
        paths = [p for p in json_paths(doc)[1:] if predicate is None or predicate(p, get_at(doc, p))]
        if not paths:
            return None
        if self.interest and rng.random() < 0.6:
            favoured = [p for p in paths if isinstance(p[-1], str) and p[-1] in self.interest]
            if favoured:
                return rng.choice(favoured)
        return rng.choice(paths)

    def mutate(self, rng, doc, nb_ops=None) -> tuple[bytes, list[str], list[str], bool]:
        """(file bytes, tags, descriptions, suspect) of 1-3 mutations of a copy of ``doc``."""
        doc = copy.deepcopy(doc)
        splices: dict[str, str] = {}
        tags, descs = [], []
        suspect = False
        for _ in range(nb_ops or rng.choice((1, 1, 1, 2, 2, 3))):
            op = rng.choices(
                ["replace", "numeric", "delete", "add_key", "dup_element", "empty_container", "key_value",
                 "huge_list", "deep_nesting", "huge_int", "nonfinite", "dup_key"],
                [26, 16, 10, 5, 6, 4, 14, 2, 3, 3, 4, 2])[0]
            result = getattr(self, "_op_" + op)(rng, doc, splices)
            if result is None:
                continue
            desc, flag = result
            tags.append(op)
            descs.append(desc)
            suspect = suspect or flag
        text = json.dumps(doc, indent=rng.choice((None, 1, 2)), ensure_ascii=rng.random() < 0.5)
        for token, raw in splices.items():
            text = text.replace(json.dumps(token), raw, 1)
        data = text.encode("utf-8")
        if rng.random() < 0.15 or not tags:
            data, tag, desc = mutate_bytes(rng, data)
            tags.append(tag)
            descs.append(desc)
        return data, tags, descs, suspect

    def _flag(self, path, value) -> bool:
        key = path[-1] if path else None
        return key in self.sensitive and (value is None or isinstance(value, (bool, list, dict))
                                          or (_is_number(value) and value < 0))

    def _op_replace(self, rng, doc, splices):
        path = self.pick(rng, doc)
        if path is None:
            return None
        value = copy.deepcopy(rng.choice(SPECIAL_VALUES))
        set_at(doc, path, value)
        return f"{fmt_path(path)} = {short(value)}", self._flag(path, value)

    def _op_key_value(self, rng, doc, splices):
        keys = [k for k in self.values if any(isinstance(p[-1], str) and p[-1] == k for p in json_paths(doc)[1:])]
        if not keys:
            return self._op_replace(rng, doc, splices)
        key = rng.choice(keys)
        paths = [p for p in json_paths(doc)[1:] if p[-1] == key]
        path = rng.choice(paths)
        value = copy.deepcopy(rng.choice(self.values[key]))
        set_at(doc, path, value)
        return f"{fmt_path(path)} = {short(value)}", self._flag(path, value)

    def _op_numeric(self, rng, doc, splices):
        path = self.pick(rng, doc, lambda p, v: _is_number(v))
        if path is None:
            return self._op_replace(rng, doc, splices)
        old = get_at(doc, path)
        choices = [-old if old else -1, 0, -1, 10 ** 7, 10 ** 12, 2 ** 31, 2 ** 63, 2 ** 64, 10 ** 18, 1e-12,
                   -1e-9, old + 0.5]
        if isinstance(old, int) and abs(old) < 10 ** 12:
            choices.append(old * 10 ** 7)
        value = rng.choice(choices)
        set_at(doc, path, value)
        return f"{fmt_path(path)}: {short(old, 30)} -> {short(value, 30)}", self._flag(path, value)

    def _op_delete(self, rng, doc, splices):
        path = self.pick(rng, doc, lambda p, v: isinstance(p[-1], str))
        if path is None:
            return None
        del get_at(doc, path[:-1])[path[-1]]
        return f"delete {fmt_path(path)}", False

    def _op_add_key(self, rng, doc, splices):
        dicts = [p for p in json_paths(doc) if isinstance(get_at(doc, p), dict)]
        if not dicts:
            return None
        path = rng.choice(dicts)
        key = rng.choice(["zz_unknown", "", "\u00e9", "__proto__", "id "])
        get_at(doc, path)[key] = rng.choice([1, "x", None, {}])
        return f"add unknown key {key!r} to {fmt_path(path)}", False

    def _op_dup_element(self, rng, doc, splices):
        lists = [p for p in json_paths(doc) if isinstance(get_at(doc, p), list) and get_at(doc, p)]
        if not lists:
            return None
        path = rng.choice(lists)
        items = get_at(doc, path)
        i = rng.randrange(len(items))
        items.insert(rng.randrange(len(items) + 1), copy.deepcopy(items[i]))
        return f"duplicate {fmt_path(path + (i,))}", False

    def _op_empty_container(self, rng, doc, splices):
        path = self.pick(rng, doc, lambda p, v: isinstance(v, (list, dict)))
        if path is None:
            return None
        value = type(get_at(doc, path))()
        set_at(doc, path, value)
        return f"{fmt_path(path)} emptied", path[-1] in self.required

    def _op_huge_list(self, rng, doc, splices):
        path = self.pick(rng, doc, lambda p, v: isinstance(v, list) and v)
        if path is None:
            return None
        items = get_at(doc, path)
        n = rng.choice((1000, 20000))
        items.extend(copy.deepcopy(items[-1]) for _ in range(n))
        return f"{fmt_path(path)} repeated {n} more times", False

    def _op_deep_nesting(self, rng, doc, splices):
        path = self.pick(rng, doc)
        if path is None:
            return None
        depth = rng.choice((100, 1000, 5000, 100000))
        token = f"@@SPLICE{len(splices)}@@"
        opener, closer = rng.choice((("[", "]"), ('{"a":', "}")))
        splices[token] = opener * depth + "1" + closer * depth
        set_at(doc, path, token)
        return f"{fmt_path(path)} = {depth} nested {'lists' if opener == '[' else 'objects'}", False

    def _op_huge_int(self, rng, doc, splices):
        path = self.pick(rng, doc, lambda p, v: _is_number(v)) or self.pick(rng, doc)
        if path is None:
            return None
        digits = rng.choice((25, 310, 4301, 20000))
        token = f"@@SPLICE{len(splices)}@@"
        splices[token] = rng.choice(("", "-")) + "9" * digits
        set_at(doc, path, token)
        return f"{fmt_path(path)} = integer of {digits} digits (raw)", False

    def _op_nonfinite(self, rng, doc, splices):
        path = self.pick(rng, doc, lambda p, v: _is_number(v)) or self.pick(rng, doc)
        if path is None:
            return None
        raw = rng.choice(RAW_NONFINITE)
        token = f"@@SPLICE{len(splices)}@@"
        splices[token] = raw
        set_at(doc, path, token)
        return f"{fmt_path(path)} = {raw} (raw)", path[-1] in self.sensitive

    def _op_dup_key(self, rng, doc, splices):
        path = self.pick(rng, doc, lambda p, v: isinstance(p[-1], str) and not isinstance(v, (dict, list)))
        if path is None:
            return None
        old = get_at(doc, path)
        token = f"@@SPLICE{len(splices)}@@"
        # {"k": OLD, "k": -1}: Python keeps the last one.
        splices[token] = json.dumps(old) + ", " + json.dumps(path[-1]) + ": -1"
        set_at(doc, path, token)
        return f"duplicate key {fmt_path(path)} (second value -1)", path[-1] in self.sensitive


def mutate_bytes(rng, data: bytes) -> tuple[bytes, str, str]:
    """A byte-level mutation: (bytes, tag, description)."""
    op = rng.choice(["flip", "truncate", "invalid_utf8", "utf16", "bom", "nul", "empty", "whitespace",
                     "replace_whole", "repeat", "crlf", "latin1"])
    if op == "flip" and data:
        data = bytearray(data)
        positions = [rng.randrange(len(data)) for _ in range(rng.randint(1, 8))]
        for p in positions:
            data[p] ^= rng.randint(1, 255)
        return bytes(data), "bytes_flip", f"{len(positions)} random bytes flipped"
    if op == "truncate" and data:
        n = rng.randrange(len(data))
        return data[:n], "bytes_truncate", f"truncated to {n} of {len(data)} bytes"
    if op == "invalid_utf8":
        p = rng.randrange(len(data) + 1)
        return data[:p] + b"\xff\xfe\xc3\x28" + data[p:], "bytes_non_utf8", f"invalid UTF-8 bytes at offset {p}"
    if op == "utf16":
        return data.decode("utf-8", "replace").encode(rng.choice(["utf-16", "utf-16-le", "utf-32"])), \
            "bytes_utf16", "re-encoded as UTF-16/32"
    if op == "bom":
        return b"\xef\xbb\xbf" + data, "bytes_bom", "UTF-8 byte order mark prepended"
    if op == "nul":
        p = rng.randrange(len(data) + 1)
        return data[:p] + b"\x00" + data[p:], "bytes_nul", f"NUL byte at offset {p}"
    if op == "empty":
        return b"", "bytes_empty", "empty file"
    if op == "whitespace":
        return b" \n\t\r\n", "bytes_empty", "whitespace only"
    if op == "replace_whole":
        whole = rng.choice([b"null", b"[]", b"{}", b"0", b'"x"', b"true", b"NaN", b"{", b"[[[[", b"\x00" * 64])
        return whole, "bytes_whole", f"whole file replaced by {whole[:20]!r}"
    if op == "repeat":
        return data + data, "bytes_repeat", "content written twice"
    if op == "crlf":
        return data.replace(b"\n", b"\r\n"), "bytes_crlf", "CRLF line ends"
    if data:
        text = data.decode("utf-8", "replace")
        p = rng.randrange(len(text) + 1)
        return (text[:p] + "\u00e9\u00e8" + text[p:]).encode("latin-1", "replace"), "bytes_latin1", \
            "re-encoded as Latin-1 with accented letters"
    return b"\xff", "bytes_non_utf8", "one 0xff byte"


# ============================================================================ seeds


class Seeds:
    """The valid inputs cases start from. Files are read from the repository; run folders and
    converted workloads are made once by HDeepRM itself into ``root`` (then normalised so that
    they do not depend on the machine, the time or ``--out``)."""

    def __init__(self, root: Path):
        self.root = root
        root.mkdir(parents=True, exist_ok=True)
        self.swf = {"gaia": self._swf_head(REPO / "examples/data/gaia-2014-head.swf.gz", 60),
                    "kth": self._swf_head(REPO / "hdeeprm/data/traces/kth-sp2-head.swf.gz", 60)}
        self.platforms_json = {p.stem: json.loads(p.read_text())
                               for p in sorted((REPO / "hdeeprm/data/platforms").glob("*.json"))}
        self.platforms_json["two_clusters"] = json.loads((REPO / "tests/data/platforms/two_clusters.json").read_text())
        ref = REPO / "tests/data/batsim-reference"
        self.xml = {name: (REPO / "tests/data/platforms" / f"{name}.xml").read_bytes()
                    for name in ("small_platform", "mixed_pstates", "lexicographic", "a5_platform",
                                 "learning_hdeeprm")}
        self.xml["a1"] = (ref / "A1-delay-walltime/platform.xml").read_bytes()
        self.hierarchy = json.loads((REPO / "tests/data/platforms/a5_hierarchy.json").read_text())
        self.scenarios = {}
        for name in ("A1-delay-walltime", "A3-ties-reject", "A8-dvfs-script", "A9-hdeeprm-xml-pstate3"):
            self.scenarios[name] = {p.name: p.read_bytes() for p in sorted((ref / name).iterdir())
                                    if p.name in ("platform.xml", "workload.json", "hierarchy.json",
                                                  "transcript.jsonl")}
        self.experiments = {p.stem: json.loads(p.read_text())
                            for p in sorted((REPO / "hdeeprm/data/experiments").glob("*.json"))}
        self.grids = {p.stem: json.loads(p.read_text()) for p in sorted((REPO / "hdeeprm/data/grids").glob("*.json"))}
        self.options = {p.stem: self._options(json.loads(p.read_text()))
                        for p in sorted((REPO / "hdeeprm/data/thesis_options").glob("*.json"))}
        self.workloads = self._workloads()
        self.runs = self._runs()
        from hdeeprm.analysis.plots import KINDS
        from hdeeprm.analysis.runs import JOBSTAT_FIELDS, JOBSTAT_STATS

        self.plot_kinds = sorted(KINDS)
        self.jobstat_fields = sorted(JOBSTAT_FIELDS)
        self.jobstat_stats = sorted(JOBSTAT_STATS)

    @staticmethod
    def _swf_head(path: Path, nb_records: int) -> bytes:
        lines, records = [], 0
        for line in gzip.decompress(path.read_bytes()).split(b"\n"):
            if line.strip() and not line.lstrip().startswith(b";"):
                records += 1
                if records > nb_records:
                    break
            lines.append(line)
        return b"\n".join(lines) + b"\n"

    @staticmethod
    def _options(data: dict) -> dict:
        data = copy.deepcopy(data)
        name = Path(data.get("platform_file_path", "gaia.json")).name
        data["platform_file_path"] = f"@REPO@/hdeeprm/data/platforms/{name}"
        if data["pybatsim"]["agent"]["type"] == "LEARNING":
            data["pybatsim"]["agent"]["algorithm"] = "reinforce"
        else:
            data["workload_file_path"] = "@REPO@/tests/data/traces/gaia-2014-head.swf.gz"
            data["nb_jobs"] = 30
        return data

    def _hdeeprm(self, argv, launch=False):
        module = importlib.import_module("hdeeprm.cli.launch" if launch else "hdeeprm.cli.main")
        buf = io.StringIO()
        with contextlib.redirect_stdout(buf), contextlib.redirect_stderr(buf):
            rc = module.main([a.replace("@REPO@", str(REPO)) for a in argv])
        if rc != 0:
            raise RuntimeError(f"making a fuzz seed failed: {' '.join(argv)}\n{buf.getvalue()}")

    def _workloads(self) -> dict:
        """name -> (Batsim JSON document, platform argument)."""
        out = {}
        for name, trace, platform, nb in (("gaia40", GAIA_TRACE, "gaia", 40), ("kth30", SMALL_TRACE, "quickstart", 30)):
            path = self.root / f"workload-{name}.json"
            if not path.is_file():
                self._hdeeprm(["convert", trace, "--platform", platform, "--out", str(path), "--nb-jobs", str(nb)])
            out[name] = (json.loads(path.read_text()), platform)
        ref = REPO / "tests/data/batsim-reference"
        out["a1"] = (json.loads((ref / "A1-delay-walltime/workload.json").read_text()),
                     "@REPO@/tests/data/batsim-reference/A1-delay-walltime/platform.xml")
        out["a8"] = (json.loads((ref / "A8-dvfs-script/workload.json").read_text()),
                     "@REPO@/tests/data/batsim-reference/A8-dvfs-script/platform.xml")
        out["learning"] = (json.loads((REPO / "hdeeprm/data/learning_workload.json").read_text()), "learning")
        return out

    def _runs(self) -> dict:
        """name -> {relative path: bytes} of a run folder."""
        runs = {}
        sim = self.root / "run_sim"
        if not (sim / "out_jobs.csv").is_file():
            self._hdeeprm(["simulate", "--platform", "quickstart", "--workload", SMALL_TRACE, "--nb-jobs", "40",
                           "--out", str(sim)])
        for name, options in (("run_launch", self.options["primer__gaia__first-high_gflops"]),
                              ("run_learn", self.options["learning"])):
            folder = self.root / name
            if (folder / "rewards.log").is_file():
                continue
            options = copy.deepcopy(options)
            options["platform_file_path"] = "@REPO@/hdeeprm/data/platforms/quickstart.json"
            if name == "run_launch":
                options["workload_file_path"] = SMALL_TRACE
            path = self.root / f"{name}-options.json"
            path.write_text(json.dumps(options).replace("@REPO@", str(REPO)))
            argv = [str(path), "--nbruns", "2", "--out", str(folder)]
            if name == "run_learn":
                argv[1:1] = ["-cw", "@REPO@/hdeeprm/data/learning_workload.json"]
            self._hdeeprm(argv, launch=True)
        for name in ("run_sim", "run_launch", "run_learn"):
            files = {}
            for p in sorted((self.root / name).rglob("*")):
                if p.is_file():
                    rel = p.relative_to(self.root / name).as_posix()
                    data = p.read_bytes()
                    if p.name == "timing.json":
                        data = b'{\n  "simulation_seconds": 0.5,\n  "scheduling_seconds": 0.0\n}\n'
                    data = data.replace(str(self.root).encode(), b"@SEEDS@").replace(str(REPO).encode(), b"@REPO@")
                    files[rel] = data
            runs[name] = files
        return runs


# ============================================================================ case generators


def case(category, mutation, kind, *, argv=None, api=None, files=None, links=None, fifos=None, dirs=(),
         tags=(), suspect=False):
    return {"category": category, "mutation": mutation, "kind": kind, "argv": argv, "api": api,
            "files": files or {}, "links": links or {}, "fifos": fifos or {}, "dirs": list(dirs),
            "tags": list(tags), "suspect": suspect}


# ---------------------------------------------------------------------------- 1. SWF

SWF_VALUES = ["text", "nan", "NaN", "inf", "-inf", "Infinity", "-1", "-2", "0", "1e30", "1" + "0" * 25, "-1e30",
              "1e400", "0x1A", "1_0", "1e-400", "+5", "--1", "1.5.2", "\u00e9", "\u0663", "1,5", "1e",
              "-0", "9" * 400, "2147483648", "18446744073709551616"]


def _swf_parse(text: bytes):
    header, records = [], []
    for line in text.split(b"\n"):
        if line.strip() and not line.lstrip().startswith(b";"):
            records.append(line.decode("ascii").split())
        elif not records:
            header.append(line)
    return header, records


def _swf_text(rng, header, records) -> bytes:
    sep = " " if rng.random() < 0.8 else rng.choice(["\t", "  ", " \t "])
    body = "\n".join(sep.join(r) for r in records).encode("utf-8", "surrogateescape")
    return b"\n".join(header) + b"\n" + body + b"\n"


def _length_note(value: str) -> str:
    return f" ({len(value)} chars)" if len(value) > 30 else ""


def mutate_swf(rng, seed_text: bytes) -> tuple[bytes, list[str], list[str], bool]:
    header, records = _swf_parse(seed_text)
    tags, descs, suspect = [], [], False
    col = {name: i for i, name in enumerate(SWF_FIELDS)}
    for _ in range(rng.choice((1, 1, 1, 2, 3))):
        op = rng.choices(["field_value", "semantic", "field_count", "lines", "header", "long_line"],
                         [35, 25, 12, 10, 10, 3])[0]
        if not records and op not in ("header",):
            op = "header"
        if op == "field_value":
            r, f = rng.randrange(len(records)), rng.randrange(len(SWF_FIELDS))
            value = rng.choice(SWF_VALUES)
            if f < len(records[r]):
                records[r][f] = value
            descs.append(f"record {r + 1} {SWF_FIELDS[f]} = {value[:30]!r}")
        elif op == "semantic":
            which = rng.choice(["procs_huge", "all_procs_huge", "negative_runtime", "zero_runtime", "negative_submit",
                                "huge_submit", "unsorted_submit", "requested_time_bad", "mem_huge", "mem_negative",
                                "status_failed", "all_missing", "dup_job_number", "fractional_procs", "procs_zero"])
            r = rng.randrange(len(records))
            rec = records[r]
            if which == "procs_huge":
                rec[col["requested_procs"]] = rec[col["allocated_procs"]] = str(10 ** 9)
            elif which == "all_procs_huge":
                for x in records:
                    x[col["requested_procs"]] = x[col["allocated_procs"]] = str(10 ** 9)
            elif which == "negative_runtime":
                rec[col["run_time"]] = "-5"  # < 0: unknown, the record is skipped (documented)
            elif which == "zero_runtime":
                for x in records:
                    x[col["run_time"]] = "0"
            elif which == "negative_submit":
                rec[col["submit_time"]] = "-100"  # skipped as negative_submit_time (documented)
            elif which == "huge_submit":
                rec[col["submit_time"]] = "1e30"
            elif which == "unsorted_submit":
                records.reverse()
            elif which == "requested_time_bad":
                rec[col["requested_time"]] = rng.choice(["0", "-5", "1e30"])
            elif which == "mem_huge":
                rec[col["requested_memory_kb"]] = rec[col["used_memory_kb"]] = str(10 ** 15)
            elif which == "mem_negative":
                rec[col["requested_memory_kb"]] = rec[col["used_memory_kb"]] = "-50"
            elif which == "status_failed":
                for x in records:
                    x[col["status"]] = rng.choice(["0", "5", "-1"])
            elif which == "all_missing":
                records[r] = ["-1"] * len(SWF_FIELDS)
            elif which == "dup_job_number":
                records.insert(r, list(rec))
            elif which == "fractional_procs":
                rec[col["requested_procs"]] = rec[col["allocated_procs"]] = "2.5"  # skipped (documented)
            elif which == "procs_zero":
                rec[col["requested_procs"]] = rec[col["allocated_procs"]] = rng.choice(["0", "-1"])
            descs.append(f"{which} (record {r + 1})")
            op = which
        elif op == "field_count":
            r = rng.randrange(len(records))
            if rng.random() < 0.5:
                k = rng.randint(1, 17)
                records[r] = records[r][:len(SWF_FIELDS) - k]
                descs.append(f"record {r + 1} has {len(SWF_FIELDS) - k} fields")
            else:
                k = rng.randint(1, 5)
                records[r] = records[r] + ["1"] * k
                descs.append(f"record {r + 1} has {len(SWF_FIELDS) + k} fields")
        elif op == "lines":
            which = rng.choice(["drop_all", "keep_one", "shuffle", "duplicate_all", "drop_some"])
            if which == "drop_all":
                records = []
            elif which == "keep_one":
                records = records[:1]
            elif which == "shuffle":
                rng.shuffle(records)
            elif which == "duplicate_all":
                records = records + [list(x) for x in records]
            else:
                records = [x for x in records if rng.random() < 0.5] or records[:1]
            descs.append(f"records: {which}")
            op = "lines_" + which
        elif op == "header":
            key = rng.choice(["MaxProcs", "MaxNodes", "UnixStartTime", "MaxJobs", "MaxRecords"])
            value = rng.choice(["-5", "0", "1" + "0" * 30, "1" + "0" * 5000, "abc", "", "12 (of 99999999999999999999)",
                                "1e99", "\u00e9"])
            header.insert(1, f"; {key}: {value}".encode())
            descs.append(f"header {key}: {value[:30]!r}{_length_note(value)}")
        elif op == "long_line":
            r = rng.randrange(len(records))
            if rng.random() < 0.5:
                records[r] = records[r] + ["1"] * 100000
                descs.append(f"record {r + 1} has 100018 fields")
            else:
                records[r][1] = "1" * 1000000
                descs.append(f"record {r + 1} submit_time of 10**6 digits")
        tags.append(op)
    data = _swf_text(rng, header, records)
    if rng.random() < 0.2:
        data, tag, desc = mutate_bytes(rng, data)
        tags.append(tag)
        descs.append(desc)
    if not any(line.strip() and not line.lstrip().startswith(b";") for line in data.split(b"\n")):
        suspect = True  # no record at all: a simulation of nothing should not pass silently
    return data, tags, descs, suspect


def _container(rng, data: bytes) -> tuple[bytes, str | None, str | None]:
    """The trace plain, gzip-compressed, or as corrupt gzip."""
    r = rng.random()
    if r < 0.6:
        return data, None, None
    packed = gzip.compress(data, mtime=0)
    if r < 0.82:
        return packed, "gzip", "gzip-compressed"
    which = rng.choice(["truncated", "flipped", "magic_only", "double", "trailer"])
    if which == "truncated":
        packed = packed[:rng.randrange(2, len(packed))]
    elif which == "flipped":
        b = bytearray(packed)
        for _ in range(rng.randint(1, 4)):
            p = rng.randrange(10, len(b))
            b[p] ^= rng.randint(1, 255)
        packed = bytes(b)
    elif which == "magic_only":
        packed = b"\x1f\x8b"
    elif which == "double":
        packed = gzip.compress(packed, mtime=0)
    else:
        packed = packed[:-8] + b"\x00" * 8
    return packed, "gzip_" + which, f"gzip {which}"


def gen_swf(rng, seeds: Seeds, i: int) -> dict:
    seed_name = rng.choice(("gaia", "gaia", "kth"))
    data, tags, descs, suspect = mutate_swf(rng, seeds.swf[seed_name])
    data, ctag, cdesc = _container(rng, data)
    if ctag:
        tags.append(ctag)
        descs.append(cdesc)
    name = rng.choice(["trace.swf", "trace.swf", "trace.swf.gz", "trace", "trace.SWF.GZ"])
    return case("swf", f"{seed_name} head: " + "; ".join(descs), "hdeeprm",
                argv=_workload_command(rng, seeds, name, "gaia", 50), files={name: data}, tags=tags, suspect=suspect)


def _workload_command(rng, seeds: Seeds, name: str, platform: str, nb_jobs: int, convert=True) -> list[str]:
    r = rng.random()
    if r < 0.62:
        argv = ["simulate", "--platform", platform, "--workload", name, "--nb-jobs", str(nb_jobs)]
        if rng.random() < 0.25:
            argv += ["--policy", rng.choice(["shortest:high_gflops", "smallest:random", "first:high_mem_bw"]),
                     "--backfill", "easy"]
        if rng.random() < 0.2:
            argv += ["--runtime-model", "hdeeprm"]
        if rng.random() < 0.2:
            argv += ["--out", "out"]
        return argv
    if r < 0.74 and convert:
        return ["convert", name, "--platform", platform, "--out", "converted.json", "--nb-jobs", str(nb_jobs)]
    if r < 0.88:
        return ["describe", name, "--platform", platform, "--nb-jobs", str(nb_jobs)]
    return ["jobstat", name, rng.choice(seeds.jobstat_fields), rng.choice(seeds.jobstat_stats)]


# ---------------------------------------------------------------------------- 2. Batsim JSON

WORKLOAD_MUTATOR = JsonMutator(
    interest=("nb_res", "res", "subtime", "walltime", "cpu", "com", "delay", "mem", "mem_bw", "req_time", "req_ops",
              "id", "profile", "type", "jobs", "profiles"),
    values={"type": ["delay", "parallel", "composed", "parallel_homogeneous_total", "", None],
            "res": [0, -1, 10 ** 9, 2.0, "1"], "id": ["w0!1", "", 1.5, None, "a b", "1"],
            "walltime": [-1, 0, -2, 1e-300], "mem": [-1, 10 ** 15, 0], "mem_bw": [-1, 1e6, 0],
            "req_time": [-1, 0, 1e30], "nb_res": [0, -1, 10 ** 9]},
    sensitive=("nb_res", "res", "subtime", "cpu", "com", "delay", "mem", "mem_bw", "req_time", "req_ops"),
    required=("jobs",))


def gen_batsim_json(rng, seeds: Seeds, i: int) -> dict:
    name = rng.choice(sorted(seeds.workloads))
    doc, platform = seeds.workloads[name]
    data, tags, descs, suspect = WORKLOAD_MUTATOR.mutate(rng, doc)
    return case("batsim_json", f"{name}: " + "; ".join(descs), "hdeeprm",
                argv=_workload_command(rng, seeds, "w.json", platform, 50, convert=False), files={"w.json": data},
                tags=tags, suspect=suspect)


# ---------------------------------------------------------------------------- 3. platform JSON

PLATFORM_MUTATOR = JsonMutator(
    interest=("number", "type", "latency", "id", "nodes", "clusters", "local_links", "global_links"),
    values={"number": [0, -1, 10 ** 7, 10 ** 5, 2 ** 63, 1.5, "2"],
            "type": ["Nope", "", "dell r720", "Dell R720 ", "InfiniBand QDR"],
            "latency": ["-1us", "0", "abc", "1e400s", "nan", "", "1", "5 us", "inf"]},
    sensitive=("number",))


def gen_platform_json(rng, seeds: Seeds, i: int) -> dict:
    name = rng.choice(sorted(seeds.platforms_json))
    data, tags, descs, suspect = PLATFORM_MUTATOR.mutate(rng, seeds.platforms_json[name])
    r = rng.random()
    if r < 0.8:
        argv = ["simulate", "--platform", "platform.json", "--workload", SMALL_TRACE, "--nb-jobs", "20"]
    elif r < 0.9:
        argv = ["describe", SMALL_TRACE, "--platform", "platform.json", "--nb-jobs", "20"]
    else:
        argv = ["convert", SMALL_TRACE, "--platform", "platform.json", "--out", "w.json", "--nb-jobs", "20"]
    return case("platform_json", f"{name}: " + "; ".join(descs), "hdeeprm", argv=argv,
                files={"platform.json": data}, tags=tags, suspect=suspect)


# ---------------------------------------------------------------------------- 4. XML platforms

XML_SPEEDS = ["0f", "0", "abc", "-1Gf", "1e400f", "nanf", "inff", "", "1Gf,", ",", "1Gf,,2Gf", "1 Gf", "1Ef",
              "1e308Ef", "1Gf,2Gf,3Gf,4Gf,5Gf", "  ", "1gf", "1G", "NaN", "-0f", "1e-400f", "1" + "0" * 400 + "f",
              "1Gf," * 5000 + "1Gf"]
XML_PSTATES = ["-1", "99", "x", "", "1.5", "0x1", str(10 ** 30), " 0 "]
XML_WATTS = ["a:b", "1:2:3:4", "nan:1", "-1:2", "", "1:inf", "1e400:1", ":", "100:200,100:200", "1:2:3"]

BILLION_LAUGHS = """<?xml version="1.0"?>
<!DOCTYPE platform [
 <!ENTITY lol "lol">
 <!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol2 "&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
 <!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
 <!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">
 <!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;">
 <!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">
 <!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">
]>
<platform version="4.1"><zone id="AS0" routing="Full">
<host id="master_host" speed="1Gf"/>
<host id="&lol9;" speed="1Gf"/>
<host id="h1" speed="1Gf"><prop id="wattage_per_state" value="&lol9;"/></host>
</zone></platform>
"""
XXE = """<?xml version="1.0"?>
<!DOCTYPE platform [<!ENTITY xxe SYSTEM "file:///etc/hostname"><!ENTITY remote SYSTEM "http://127.0.0.1:1/x">]>
<platform version="4.1"><zone id="AS0" routing="Full">
<host id="master_host" speed="1Gf"/>
<host id="&xxe;" speed="1Gf"/><host id="h2" speed="&remote;"/>
</zone></platform>
"""
XINCLUDE = """<?xml version="1.0"?>
<platform version="4.1" xmlns:xi="http://www.w3.org/2001/XInclude"><zone id="AS0" routing="Full">
<host id="master_host" speed="1Gf"/><host id="h1" speed="1Gf"/>
<xi:include href="/etc/hostname" parse="text"/>
</zone></platform>
"""


def _many_hosts(n: int) -> bytes:
    hosts = "".join(f'<host id="h{k:07d}" speed="1Gf"/>\n' for k in range(n))
    return (f'<?xml version="1.0"?>\n<platform version="4.1"><zone id="AS0" routing="Full">\n'
            f'<host id="master_host" speed="1Gf"/>\n{hosts}</zone></platform>\n').encode()


def mutate_xml(rng, seed: bytes) -> tuple[bytes, list[str], list[str]]:
    from lxml import etree

    r = rng.random()
    if r < 0.08:
        which = rng.choice(["billion_laughs", "xxe", "xinclude", "many_hosts", "encoding_lie", "not_platform",
                            "two_roots", "comment_only"])
        if which == "billion_laughs":
            return BILLION_LAUGHS.encode(), ["xml_" + which], ["billion laughs entities"]
        if which == "xxe":
            return XXE.encode(), ["xml_" + which], ["external entities (file and http)"]
        if which == "xinclude":
            return XINCLUDE.encode(), ["xml_" + which], ["XInclude of a system file"]
        if which == "many_hosts":
            n = rng.choice((20000, 200000))
            return _many_hosts(n), ["xml_" + which], [f"{n} hosts"]
        if which == "encoding_lie":
            text = seed.decode().replace("<?xml version='1.0'?>", "<?xml version='1.0' encoding='bogus-8'?>", 1)
            return text.encode() if "bogus" in text else b"<?xml version='1.0' encoding='bogus-8'?>\n" + seed, \
                ["xml_" + which], ["unknown encoding declared"]
        if which == "not_platform":
            return b"<?xml version='1.0'?><html><host id='a' speed='1Gf'/></html>", ["xml_" + which], ["root <html>"]
        if which == "two_roots":
            return seed + seed, ["xml_" + which], ["document written twice"]
        return b"<?xml version='1.0'?>\n<!-- nothing -->\n", ["xml_" + which], ["comment only"]
    if r < 0.25:
        data, tag, desc = mutate_bytes(rng, seed)
        return data, [tag], [desc]
    parser = etree.XMLParser(resolve_entities=False, load_dtd=False, no_network=True)
    tree = etree.fromstring(seed, parser).getroottree()
    root = tree.getroot()
    tags, descs = [], []
    for _ in range(rng.choice((1, 1, 2, 3))):
        hosts = list(root.iter("host"))
        compute = [h for h in hosts if h.get("id") != "master_host"] or hosts
        op = rng.choice(["speed", "speed", "speed", "pstate", "watts", "remove_id", "dup_id", "remove_master",
                         "no_compute", "rename_master", "odd_id", "host_maker", "no_speed", "remove_prop"])
        host = rng.choice(compute) if compute else None
        if host is None:
            continue
        hid = host.get("id")
        if op == "speed":
            value = rng.choice(XML_SPEEDS)
            host.set("speed", value)
            descs.append(f"host {hid!r} speed={value[:30]!r}{_length_note(value)}")
        elif op == "pstate":
            value = rng.choice(XML_PSTATES)
            host.set("pstate", value)
            descs.append(f"host {hid!r} pstate={value[:30]!r}")
        elif op == "watts":
            value = rng.choice(XML_WATTS)
            prop = host.find("prop")
            if prop is None:
                prop = etree.SubElement(host, "prop", id="wattage_per_state")
            prop.set("value", value)
            descs.append(f"host {hid!r} {prop.get('id')}={value!r}")
        elif op == "remove_id":
            host.attrib.pop("id", None)
            descs.append(f"host {hid!r} without id")
        elif op == "dup_id":
            other = rng.choice(hosts)
            host.set("id", other.get("id", ""))
            descs.append(f"host {hid!r} renamed to the id of another ({other.get('id')!r})")
        elif op == "remove_master":
            for h in hosts:
                if h.get("id") == "master_host":
                    h.getparent().remove(h)
            descs.append("no master_host")
        elif op == "no_compute":
            for h in compute:
                h.getparent().remove(h)
            descs.append("only the master host")
        elif op == "rename_master":
            host.set("id", "master_host")
            descs.append(f"host {hid!r} renamed master_host")
        elif op == "odd_id":
            value = rng.choice(["", " ", "\u00e9t\u00e9", "a" * 10000, "h\x01"])
            try:
                host.set("id", value)
            except ValueError:  # lxml refuses control characters
                value = "h\\x01"
                host.set("id", value)
            descs.append(f"host {hid!r} id={value[:20]!r}")
        elif op == "host_maker":
            maker = rng.choice(["cluster", "cabinet", "peer"])
            etree.SubElement(host.getparent(), maker, id="c", prefix="c", suffix="", radical="0-3", speed="1Gf")
            descs.append(f"<{maker}> added")
        elif op == "no_speed":
            host.attrib.pop("speed", None)
            descs.append(f"host {hid!r} without speed")
        else:
            for prop in host.findall("prop"):
                host.remove(prop)
            descs.append(f"host {hid!r} without properties")
        tags.append("xml_" + op)
    data = etree.tostring(tree, xml_declaration=True, encoding="UTF-8")
    if rng.random() < 0.1:
        data, tag, desc = mutate_bytes(rng, data)
        tags.append(tag)
        descs.append(desc)
    return data, tags, descs


HIERARCHY_MUTATOR = JsonMutator(
    interest=("platform_pstate", "initial_pstate", "reference_speed_gflops", "memory_mb", "mem_bw", "gflops_per_core",
              "power_per_core", "cores", "hosts", "id", "processors", "nodes"),
    values={"memory_mb": [-1, 0, 1e308], "mem_bw": [-1, 0], "gflops_per_core": [0, -4.0], "cores": [[], [0, 0], [-1]],
            "initial_pstate": [-1, 4, 99], "platform_pstate": [-1, 7]},
    sensitive=("memory_mb", "mem_bw", "gflops_per_core", "power_per_core", "reference_speed_gflops"))


def gen_xml_platform(rng, seeds: Seeds, i: int) -> dict:
    name = rng.choice(sorted(seeds.xml))
    files = {}
    argv = ["simulate", "--platform", "platform.xml", "--workload", SMALL_TRACE, "--nb-jobs", "20"]
    if name == "a5_platform" and rng.random() < 0.5:
        # The hierarchy beside a valid platform.
        files["platform.xml"] = seeds.xml[name]
        data, tags, descs, suspect = HIERARCHY_MUTATOR.mutate(rng, seeds.hierarchy)
        files["hierarchy.json"] = data
        argv += ["--hierarchy", "hierarchy.json"]
        return case("xml_platform", "a5 hierarchy.json: " + "; ".join(descs), "hdeeprm", argv=argv, files=files,
                    tags=["hierarchy_" + t for t in tags], suspect=suspect)
    data, tags, descs = mutate_xml(rng, seeds.xml[name])
    files["platform.xml"] = data
    if name == "a5_platform":
        files["hierarchy.json"] = json.dumps(seeds.hierarchy).encode()
        argv += ["--hierarchy", "hierarchy.json"]
    elif name == "a1" and rng.random() < 0.5:
        argv[4] = "@REPO@/tests/data/batsim-reference/A1-delay-walltime/workload.json"
    return case("xml_platform", f"{name}: " + "; ".join(descs), "hdeeprm", argv=argv, files=files, tags=tags)


# ---------------------------------------------------------------------------- 5. experiments

EXPERIMENT_MUTATOR = JsonMutator(
    interest=("episode_jobs", "nb_jobs", "window_jobs", "split", "train", "test", "validation", "episodes",
              "eval_episodes", "hidden", "lr", "gamma", "objective", "observation", "action_space", "backfill",
              "conversion", "actions", "platform", "workload", "hierarchy", "test_workload", "eval_window_starts",
              "eval_episode_jobs", "pretrain", "rollout_batch", "bsld_bound", "reward_scale", "queue_sensitivity",
              "window_core_key", "seed", "validation_every", "validation_episodes", "vectorised", "window_commit"),
    values={"platform": ["gaia", "nope", "0xDell R720", "3xDell R720", "/dev/null", "platform.xml", "", "p\u0000.json",
                         "@REPO@/tests/data/platforms/small_platform.xml", "1000000000xDell R720"],
            "workload": ["kth-sp2-head.swf.gz", "/dev/null", "nope.swf", "w.json", "", "sdsc-sp2-1998-4.2-cln.swf.gz",
                         "w\u0000.swf",
                         "@REPO@/tests/data/batsim-reference/A1-delay-walltime/workload.json"],
            "test_workload": ["/dev/null", "nope.swf", "kth-sp2-head.swf.gz"],
            "hierarchy": ["@REPO@/tests/data/platforms/a5_hierarchy.json", "nope.json"],
            "objective": ["makespan", "nope", "x.py:f", "avg_bounded_slowdown", "/dev/null:f", ":"],
            "observation": ["small", "normal", "minimal", "huge"],
            "action_space": ["pairs", "job_window", "x"],
            "window_core_key": ["random", "first_fit", "high_gflops", "nope"],
            "backfill": ["easy", "none", None, "conservative"],
            "conversion": [{"memory_demand": "none"}, {"zero_run_time": "drop"}, {"profile_type": "delay"}, {"x": 1},
                           {"nb_jobs": -1}, {"runtime_model": "hdeeprm"}, {"max_res": 0}, {"unknown_run_time": "x"}],
            "split": [{"train": [0, 1]}, {"train": [0, 0.001]}, {"train": [0.5, 0.4]}, {"test": [0, 1]},
                      {"train": [0, 0.7], "test": [0.6, 1]}, {"train": [0, 1e-9], "test": [0.5, 1]}],
            "actions": [{"selection": [], "void": True}, {"selection": [{"shortest": ["nope"]}]},
                        {"selection": [{"first": ["high_gflops"]}], "void": "yes"}, {}],
            "pretrain": [{"teacher": "nope"}, {"teacher": "sjf", "episodes": -1}, {}, {"x": 1}],
            "episode_jobs": [0, -1, 10 ** 9, None, 1], "window_jobs": [0, -1, 10 ** 6, 1],
            "eval_window_starts": [[], [-1], [10 ** 9], [0.5]], "nb_jobs": [0, -1, 1, 10 ** 12]},
    sensitive=("episodes", "eval_episodes", "hidden", "lr", "gamma", "episode_jobs", "window_jobs", "nb_jobs",
               "reward_scale", "bsld_bound", "queue_sensitivity", "validation_episodes"))


def _small_experiment(doc: dict) -> dict:
    doc = copy.deepcopy(doc)
    doc["workload"] = "kth-sp2-head.swf.gz"
    doc.pop("nb_jobs", None)
    doc.pop("eval_window_starts", None)
    for key in ("episode_jobs", "eval_episode_jobs"):
        if doc.get(key):
            doc[key] = min(doc[key], 40)
    if doc.get("window_jobs"):
        doc["window_jobs"] = min(doc["window_jobs"], 32)
    return doc


def gen_experiment(rng, seeds: Seeds, i: int) -> dict:
    name = rng.choice(sorted(seeds.experiments))
    doc = seeds.experiments[name]
    if rng.random() < 0.85:
        doc, name = _small_experiment(doc), name + " (small)"
    data, tags, descs, suspect = EXPERIMENT_MUTATOR.mutate(rng, doc)
    part = rng.choice(("train", "train", "validation", "test"))
    files = {"experiment.json": data}
    if b"platform.xml" in data:
        files["platform.xml"] = seeds.xml["small_platform"]
    if b'"w.json"' in data:
        files["w.json"] = json.dumps(seeds.workloads["kth30"][0]).encode()
    return case("experiment", f"{name}: " + "; ".join(descs), "api",
                api={"name": "experiment", "path": "experiment.json", "part": part}, files=files, tags=tags,
                suspect=suspect)


# ---------------------------------------------------------------------------- 6. grids

GRID_MUTATOR = JsonMutator(
    interest=("experiment", "platforms", "workloads", "overrides", "policies", "checkpoints", "seeds", "outputs",
              "backend", "batsim", "timeout", "networks", "options"),
    values={"policies": [["classic"], ["random"], ["first:first_fit+easy"], ["nope"], ["first:nope"], [""], [],
                         ["first:first_fit", "first:first_fit"], ["first:first_fit+hard"]],
            "seeds": [[-1], [0, 0], [2 ** 70], list(range(2000)), [], [1.5], [True]],
            "networks": [["links"], ["links", "zero-latency"], ["nope"], []],
            "overrides": [[{}], [{"seed": 1}], [{"nope": 1}], [{"episode_jobs": -1}], [], [{"platform": "nope"}],
                          [{"episode_jobs": 10 ** 9}], [{"workload": "/dev/null"}]],
            "checkpoints": [["nope.pt"], ["experiment.json"], [""]],
            "experiment": ["quickstart", "nope", "experiment.json", "", "/dev/null", "grid.json"],
            "options": [["nope.json"], [{"file": "x"}], [{"model": "y"}], "x"],
            "timeout": [0, -1, 1e308, "10"], "backend": ["batsim", "nope", None]})


def gen_grid(rng, seeds: Seeds, i: int) -> dict:
    files = {"experiment.json": json.dumps(_small_experiment(seeds.experiments["hdeeprm-pairs"])).encode()}
    if rng.random() < 0.35:
        name = rng.choice(sorted(seeds.grids))
        doc = seeds.grids[name]
    else:
        name = "crafted"
        doc = {"experiment": "experiment.json", "platforms": ["gaia", "quickstart",
                                                             "@REPO@/tests/data/platforms/small_platform.xml"],
               "workloads": ["kth-sp2-head.swf.gz"], "overrides": [{"episode_jobs": 20}, {"eval_episodes": 2}],
               "policies": ["first:first_fit", "shortest:high_gflops+easy", "random"], "seeds": [0, 1],
               "outputs": False, "networks": ["zero-latency"], "timeout": 10, "backend": "embedded"}
    data, tags, descs, suspect = GRID_MUTATOR.mutate(rng, doc)
    files["grid.json"] = data
    return case("grid", f"{name}: " + "; ".join(descs), "api", api={"name": "grid", "path": "grid.json"},
                files=files, tags=tags, suspect=suspect)


# ---------------------------------------------------------------------------- 7. options files

OPTIONS_MUTATOR = JsonMutator(
    interest=("seed", "nb_resources", "nb_jobs", "workload_file_path", "platform_file_path", "pybatsim", "env",
              "agent", "type", "run", "hidden", "lr", "gamma", "policy_pair", "algorithm", "objective",
              "queue_sensitivity", "actions", "selection", "void", "observation", "log_level"),
    values={"nb_jobs": [0, -1, 10 ** 12, 1], "seed": [-1, 2 ** 70, 1.5], "nb_resources": [0, -1],
            "type": ["SMART", "classic", "LEARNING", "CLASSIC"], "run": ["test", "nope", None],
            "hidden": [0, -1, 10 ** 6], "lr": [0, -1, 1e308], "gamma": [0, -1, 2, 1e308],
            "policy_pair": ["nope", "shortest-nope", "first-high_gflops", "-", ""],
            "algorithm": ["ppo", "actor_critic", "nope", "classic", "kernel_ppo"],
            "objective": ["nope", "makespan", "avg_job_slowdown", "energy_consumption", "edp"],
            "platform_file_path": ["", "nope.json", "/dev/null", "@REPO@/tests/data/platforms/small_platform.xml",
                                   "gaia", "@REPO@/hdeeprm/data/platforms/quickstart.json"],
            "workload_file_path": ["", "nope.swf", "/dev/null", "@REPO@/hdeeprm/data/learning_workload.json",
                                   "w\u0000.swf"],
            "queue_sensitivity": [-1, 0, 1e308], "observation": ["small", "minimal", "normal", "nope"]},
    sensitive=("nb_jobs", "hidden", "lr", "gamma", "queue_sensitivity"))


def gen_options(rng, seeds: Seeds, i: int) -> dict:
    # The one LEARNING seed (the thesis' learning.json) is drawn as often as the six CLASSIC ones.
    name = "learning" if rng.random() < 0.45 else rng.choice(sorted(seeds.options))
    doc = seeds.options[name]
    data, tags, descs, suspect = OPTIONS_MUTATOR.mutate(rng, doc)
    learning = doc["pybatsim"]["agent"]["type"] == "LEARNING"
    if rng.random() < 0.06:
        argv = ["crossval", "options.json", "--out", "cv", "--batsim", NO_BATSIM]
        return case("options", f"{name}: " + "; ".join(descs), "hdeeprm", argv=argv, files={"options.json": data},
                    tags=tags, suspect=suspect)
    argv = ["options.json", "--nbruns", "1", "--out", "out"]
    if learning:
        argv += ["-cw", "@REPO@/hdeeprm/data/learning_workload.json"]
    return case("options", f"{name}: " + "; ".join(descs), "launch", argv=argv, files={"options.json": data},
                tags=tags, suspect=suspect)


# ---------------------------------------------------------------------------- 8. replay

TRANSCRIPT_MUTATOR = JsonMutator(
    interest=("now", "timestamp", "type", "data", "job_id", "alloc", "events", "from", "msg", "job", "nb_resources",
              "compute_resources", "id", "state", "profile", "res", "walltime", "subtime", "resources", "pstate"),
    values={"type": ["EXECUTE_JOB", "REJECT_JOB", "NOTIFY", "SET_RESOURCE_STATE", "nope", "CALL_ME_LATER"],
            "from": ["batsim", "scheduler", "nope", None], "alloc": ["0-3", "3-0", "0-999999999", "x", "", "0 1", "-1"],
            "now": [-1, 1e308, 0], "timestamp": [-1, 1e308, 0], "job_id": ["w0!999", "w1!0", "0", "", "w0!"]})


def mutate_transcript(rng, text: bytes) -> tuple[bytes, list[str], list[str]]:
    lines = text.split(b"\n")
    while lines and not lines[-1].strip():
        lines.pop()
    tags, descs = [], []
    for _ in range(rng.choice((1, 1, 2))):
        op = rng.choices(["json_line", "drop", "duplicate", "swap", "garbage", "truncate_line", "empty", "reverse"],
                         [50, 12, 10, 8, 6, 6, 2, 2])[0]
        k = rng.randrange(len(lines)) if lines else 0
        if not lines:
            op = "garbage"
        if op == "json_line":
            try:
                doc = json.loads(lines[k])
            except ValueError:
                continue
            data, t, d, _ = TRANSCRIPT_MUTATOR.mutate(rng, doc, nb_ops=1)
            lines[k] = data.replace(b"\r", b"").replace(b"\n", b" ")
            descs.append(f"line {k + 1}: {'; '.join(d)}")
            tags += ["line_" + x for x in t]
            continue
        if op == "drop":
            del lines[k]
            descs.append(f"line {k + 1} dropped")
        elif op == "duplicate":
            lines.insert(k, lines[k])
            descs.append(f"line {k + 1} duplicated")
        elif op == "swap":
            j = rng.randrange(len(lines))
            lines[k], lines[j] = lines[j], lines[k]
            descs.append(f"lines {k + 1} and {j + 1} swapped")
        elif op == "garbage":
            junk = rng.choice([b"garbage", b"{}", b"[]", b'{"from": "batsim"}', b'{"from": "batsim", "msg": 1}',
                               b"\xff\xfe", b'{"from": "scheduler", "msg": {"now": 1, "events": 5}}'])
            lines.insert(k, junk)
            descs.append(f"line {k + 1} inserted: {junk[:40]!r}")
        elif op == "truncate_line":
            lines[k] = lines[k][:rng.randrange(len(lines[k]) + 1)]
            lines = lines[:k + 1]
            descs.append(f"file cut in line {k + 1}")
        elif op == "empty":
            lines = []
            descs.append("empty transcript")
        else:
            lines.reverse()
            descs.append("lines in reverse order")
        tags.append("transcript_" + op)
    return b"\n".join(lines) + b"\n", tags, descs


def gen_replay(rng, seeds: Seeds, i: int) -> dict:
    name = rng.choice(sorted(seeds.scenarios))
    files = {f"scenario/{k}": v for k, v in seeds.scenarios[name].items()}
    r = rng.random()
    if r < 0.7:
        data, tags, descs = mutate_transcript(rng, files["scenario/transcript.jsonl"])
        if rng.random() < 0.2:
            data, tag, desc = mutate_bytes(rng, data)
            tags.append(tag)
            descs.append(desc)
        if rng.random() < 0.15:
            del files["scenario/transcript.jsonl"]
            data, ctag, cdesc = _container(rng, data)
            files["scenario/transcript.jsonl.gz"] = data if ctag else gzip.compress(data, mtime=0)
            tags.append(ctag or "gzip")
            descs.append(cdesc or "gzip-compressed")
        else:
            files["scenario/transcript.jsonl"] = data
    elif r < 0.82:
        data, tags, descs, _ = WORKLOAD_MUTATOR.mutate(rng, json.loads(files["scenario/workload.json"]))
        files["scenario/workload.json"] = data
        tags = ["workload_" + t for t in tags]
        descs = ["workload.json: " + d for d in descs]
    elif r < 0.94:
        data, tags, descs = mutate_xml(rng, files["scenario/platform.xml"])
        files["scenario/platform.xml"] = data
        descs = ["platform.xml: " + d for d in descs]
    else:
        victim = rng.choice(sorted(files))
        del files[victim]
        tags, descs = ["missing_file"], [f"no {victim}"]
    return case("replay", f"{name}: " + "; ".join(descs), "hdeeprm", argv=["replay", "scenario", "--out", "out"],
                files=files, tags=tags)


# ---------------------------------------------------------------------------- 9. run folders

CSV_VALUES = ["text", "NaN", "nan", "", "inf", "-1", "1e308", "-inf", "1e999", "0-", "5-3", "a-b", "999999999",
              "0-999999999", "-", " ", "1e-320", "0 1 2", "\u00e9", '"', "0-3 2-1", "COMPLETED_KILLED", "-5"]
RUN_JSON_MUTATOR = JsonMutator(values={"policy": ["", 5, None], "platform": [5, "", None]})


def mutate_csv(rng, data: bytes) -> tuple[bytes, str, str]:
    rows = list(csv.reader(io.StringIO(data.decode("utf-8"))))
    if not rows:
        return data, "csv_none", "unchanged (empty)"
    op = rng.choices(["cell", "drop_column", "rename_column", "no_rows", "dup_rows", "shuffle", "ragged", "extra_cells",
                      "header_only_dup", "bytes"], [45, 10, 5, 5, 5, 5, 8, 5, 2, 10])[0]
    header = rows[0]
    if op == "cell" and len(rows) > 1:
        r, c = rng.randrange(1, len(rows)), rng.randrange(len(header))
        value = rng.choice(CSV_VALUES)
        if c < len(rows[r]):
            rows[r][c] = value
        desc = f"row {r} {header[c]} = {value!r}"
    elif op == "drop_column":
        c = rng.randrange(len(header))
        desc = f"column {header[c]} dropped"
        rows = [row[:c] + row[c + 1:] for row in rows]
    elif op == "rename_column":
        c = rng.randrange(len(header))
        desc = f"column {header[c]} renamed"
        header[c] = header[c].upper() + "_x"
    elif op == "no_rows":
        rows, desc = rows[:1], "header only"
    elif op == "dup_rows":
        rows, desc = rows + rows[1:], "rows duplicated"
    elif op == "shuffle":
        body = rows[1:]
        rng.shuffle(body)
        rows, desc = rows[:1] + body, "rows shuffled"
    elif op == "ragged" and len(rows) > 1:
        r = rng.randrange(1, len(rows))
        rows[r] = rows[r][:rng.randrange(len(rows[r]))]
        desc = f"row {r} has {len(rows[r])} cells"
    elif op == "extra_cells" and len(rows) > 1:
        r = rng.randrange(1, len(rows))
        rows[r] = rows[r] + ["1", "2"]
        desc = f"row {r} has 2 extra cells"
    elif op == "header_only_dup":
        rows, desc = [header, header] + rows[1:], "header written twice"
    else:
        data, tag, desc = mutate_bytes(rng, data)
        return data, tag, desc
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerows(rows)
    return out.getvalue().encode("utf-8"), "csv_" + op, desc


def mutate_run(rng, files: dict) -> tuple[dict, list[str], list[str]]:
    files = dict(files)
    tags, descs = [], []
    for _ in range(rng.choice((1, 1, 2))):
        names = sorted(files)
        csvs = [n for n in names if n.endswith(".csv")]
        r = rng.random()
        if r < 0.7 and csvs:
            name = rng.choice(csvs)
            files[name], tag, desc = mutate_csv(rng, files[name])
        elif r < 0.82:
            jsons = [n for n in names if n.endswith(".json")]
            name = rng.choice(jsons)
            try:
                doc = json.loads(files[name])
                files[name], t, d, _ = RUN_JSON_MUTATOR.mutate(rng, doc, nb_ops=1)
                tag, desc = "json_" + t[0], "; ".join(d)
            except ValueError:
                files[name], tag, desc = mutate_bytes(rng, files[name])
        elif r < 0.92:
            logs = [n for n in names if n.endswith(".log")]
            if not logs:
                continue
            name = rng.choice(logs)
            lines = files[name].decode().splitlines() or [""]
            k = rng.randrange(len(lines))
            value = rng.choice(["text", "nan", "", "inf", "1e999", "-1", "1 2", "1,2"])
            lines[k] = value
            files[name] = ("\n".join(lines) + "\n").encode()
            tag, desc = "log_value", f"line {k + 1} = {value!r}"
        else:
            name = rng.choice(names)
            del files[name]
            tag, desc = "missing_file", "deleted"
        tags.append(tag)
        descs.append(f"{name}: {desc}")
    return files, tags, descs


def gen_run_csv(rng, seeds: Seeds, i: int) -> dict:
    name = rng.choices(["run_sim", "run_launch", "run_learn"], [6, 3, 2])[0]
    run_files, tags, descs = mutate_run(rng, seeds.runs[name])
    files = {f"run/{k}": v for k, v in run_files.items()}
    r = rng.random()
    if r < 0.6:
        kinds = seeds.plot_kinds
        if name == "run_sim" and rng.random() < 0.85:
            kinds = [k for k in kinds if k not in ("rewards", "losses", "makespans", "learning", "action_preferences")]
        argv = ["plot", rng.choice(kinds), "run", "--dpi", "40"]
        if rng.random() < 0.5:
            argv += ["-o", rng.choice(["fig.png", "fig.svg", "fig.pdf"])]
    elif r < 0.85:
        other = {f"other/{k}": v for k, v in seeds.runs["run_sim"].items()}
        files.update(other)
        argv = ["compare", "run", "other"] + (["--no-figure"] if rng.random() < 0.8 else ["--dpi", "40"])
    elif r < 0.93:
        argv = ["report", "run", "-o", "report.html"]
    else:
        argv = ["clean", "run"] + (["--dry-run"] if rng.random() < 0.5 else [])
    return case("run_csv", f"{name}: " + "; ".join(descs), "hdeeprm", argv=argv, files=files, tags=tags)


# ---------------------------------------------------------------------------- 10. command-line arguments

BAD_INTS = ["-1", "0", "-5", str(10 ** 12), str(2 ** 70), str(2 ** 63), "1e3", "0x10", "", " 3", "\u0663", "nan"]
BAD_FLOATS = ["nan", "inf", "-inf", "-1", "0", "1e308", "1e-320", "NaN", "", "x"]
BAD_PLATFORMS = ["0xDell R720", "-1xDell R720", "1000000000xDell R720", "3xNope", "x", "", "gaia.json", "/dev/null",
                 "adir", "2xdell r720", "2x", "99999999999999999999999xDell R720", "1e3xDell R720", "GAIA"]
BAD_POLICIES = ["", ":", "first", "first:", "x:y", "first:first_fit:extra", "random:random", "FIRST:first_fit",
                "first:first_fit ", "\u00e9:\u00e9"]


def gen_cli(rng, seeds: Seeds, i: int) -> dict:
    files = {"afile": b"not a checkpoint, not a trace\n", "garbage.pt": bytes(range(256)) * 4,
             "bad_agent.py": b"def broken(:\n", "empty_agent.py": b"# nothing here\n",
             "options.json": json.dumps(seeds.options["primer__gaia__first-high_gflops"]).encode()}
    dirs = ["adir"]
    run = {f"run/{k}": v for k, v in seeds.runs["run_sim"].items()}
    choice = rng.choices(["simulate", "platform", "policy", "out", "plot", "compare", "report", "crossval", "train",
                          "evaluate", "sweep", "launch", "describe", "jobstat", "convert", "replay", "junk"],
                         [12, 8, 5, 6, 7, 4, 2, 5, 5, 4, 4, 8, 5, 3, 4, 3, 6])[0]
    kind = "hdeeprm"
    if choice == "simulate":
        flag, values = rng.choice([("--nb-jobs", BAD_INTS), ("--seed", BAD_INTS)])
        value = rng.choice(values)
        argv = ["simulate", "--platform", "gaia", "--workload", GAIA_TRACE, "--nb-jobs", "20", flag, value]
        desc = f"{flag} {value[:30]!r}"
    elif choice == "platform":
        value = rng.choice(BAD_PLATFORMS)
        argv = ["simulate", "--platform", value, "--workload", SMALL_TRACE, "--nb-jobs", "20"]
        if rng.random() < 0.3:
            argv += ["--hierarchy", rng.choice(["nope.json", "afile", "@REPO@/tests/data/platforms/a5_hierarchy.json"])]
        desc = f"--platform {value!r}"
    elif choice == "policy":
        value = rng.choice(BAD_POLICIES)
        argv = ["simulate", "--platform", "gaia", "--workload", GAIA_TRACE, "--nb-jobs", "20", "--policy", value]
        desc = f"--policy {value!r}"
    elif choice == "out":
        value = rng.choice(["afile", "afile/sub", "adir", "", "\u00e9t\u00e9/x", "x" * 300])
        argv = ["simulate", "--platform", "quickstart", "--workload", SMALL_TRACE, "--nb-jobs", "20", "--out", value]
        desc = f"--out {value!r}"
    elif choice == "plot":
        files.update(run)
        flag, value = rng.choice([("--dpi", rng.choice(["0", "-5", "100000", str(2 ** 70), "1"])),
                                  ("--episode", rng.choice(["-1", "0", str(2 ** 70)])),
                                  ("-o", rng.choice(["afile/x.png", "adir", "fig.bmp", "fig", ".png", "x" * 300 + ".png"])),
                                  ("--format", "svg")])
        argv = ["plot", rng.choice(seeds.plot_kinds), "run", flag, value]
        if flag != "-o":
            argv += ["-o", "fig.png"]
        desc = f"plot {flag} {value!r}"
    elif choice == "compare":
        files.update(run)
        variant = rng.choice([["--names", "a"], ["--names", "a", "b", "c"], ["--episode", "-1"], ["--dpi", "0"],
                              ["--format", "pdf", "-o", "x.png"], ["-o", "adir"], ["--names", "", ""]])
        argv = ["compare", "run", "run"] + variant + ["--no-figure"] * (rng.random() < 0.3)
        desc = "compare " + " ".join(variant)
    elif choice == "report":
        files.update(run)
        variant = rng.choice([["-o", "afile/x.html"], ["--episode", "99"], ["-o", "adir"], ["--episode", "-1"]])
        argv = ["report", "run"] + variant
        desc = "report " + " ".join(variant)
    elif choice == "crossval":
        value = rng.choice(BAD_FLOATS)
        argv = ["crossval", "--platform", "gaia", "--workload", GAIA_TRACE, "--nb-jobs", "10", "--timeout", value,
                "--out", "cv", "--batsim", NO_BATSIM]
        if rng.random() < 0.3:
            argv += rng.choice([["--workers", "2"], ["--network", "links"], ["--grid", "afile"]])
        desc = f"crossval --timeout {value!r} " + " ".join(argv[13:])
    elif choice == "train":
        flag, value = rng.choice([("--episodes", rng.choice(["-3", "0", "-1"])),
                                  ("--rollout-batch", rng.choice(["0", "-1"])),
                                  ("--init", rng.choice(["garbage.pt", "nope.pt", "afile"])),
                                  ("--workers", rng.choice(["0", "-1"]))])
        argv = ["train", "quickstart", "--out", "t", flag, value]
        if flag in ("--init", "--workers"):
            argv += ["--episodes", "-3"] if rng.random() < 0.5 else ["--rollout-batch", "0"]
        desc = f"train {flag} {value!r}"
    elif choice == "evaluate":
        flag, value = rng.choice([("--episodes", rng.choice(["-3", "0"])),
                                  ("--model", rng.choice(["garbage.pt", "nope.pt", "afile", "adir", "/dev/null"])),
                                  ("--seed", rng.choice(["-1", str(2 ** 70)]))])
        argv = ["evaluate", "quickstart", flag, value]
        if flag != "--episodes":
            argv += ["--episodes", "-3"] if rng.random() < 0.7 else []
        desc = f"evaluate {flag} {value!r}"
    elif choice == "sweep":
        flag, value = rng.choice([("--workers", rng.choice(["0", "-1"])), ("--timeout", rng.choice(["nan", "-inf", "-1", "0", "", "x", "NaN"]))])
        argv = ["sweep", "@REPO@/hdeeprm/data/grids/quickstart-pairs.json", "--out", "sw", flag, value]
        desc = f"sweep {flag} {value!r}"
    elif choice == "launch":
        kind = "launch"
        flag, value = rng.choice([("--nbruns", rng.choice(["-1", "0"])),
                                  ("-im", rng.choice(["garbage.pt", "afile", "/dev/null", "adir"])),
                                  ("-a", rng.choice(["nope.py", "bad_agent.py", "empty_agent.py", "afile", "adir"])),
                                  ("-cw", rng.choice(["nope.json", "afile", "/dev/null", "adir", "x.json"])),
                                  ("--out", rng.choice(["afile", "afile/sub"]))])
        argv = ["options.json", flag, value] + (["--out", "out"] if flag != "--out" else [])
        desc = f"hdeeprm-launch {flag} {value!r}"
    elif choice == "describe":
        flag, value = rng.choice([("--nb-jobs", rng.choice(BAD_INTS)), ("--seed", rng.choice(BAD_INTS)),
                                  ("--figure", rng.choice(["fig.xyz", "adir", "afile/x.png", "fig.png"])),
                                  ("--platform", rng.choice(BAD_PLATFORMS))])
        argv = ["describe", GAIA_TRACE, flag, value]
        desc = f"describe {flag} {value[:30]!r}"
    elif choice == "jobstat":
        value = rng.choice(["-1", str(2 ** 70), str(2 ** 64)])
        argv = ["jobstat", GAIA_TRACE, rng.choice(seeds.jobstat_fields), rng.choice(seeds.jobstat_stats), "--seed", value]
        desc = f"jobstat --seed {value}"
    elif choice == "convert":
        value = rng.choice(["adir", "afile/x.json", "", "x" * 300 + ".json"])
        argv = ["convert", GAIA_TRACE, "--platform", "gaia", "--out", value, "--nb-jobs", rng.choice(["10", "-1", "0"])]
        desc = f"convert --out {value!r} --nb-jobs {argv[-1]}"
    elif choice == "replay":
        value = rng.choice(["nope", "afile", "adir", "", "/dev/null"])
        argv = ["replay", value, "--out", "out"] if rng.random() < 0.5 else \
            ["replay", "@REPO@/tests/data/batsim-reference/A1-delay-walltime", "--out", rng.choice(["afile", "afile/x"])]
        desc = "replay " + " ".join(argv[1:])
    else:
        argv = rng.choice([["simulate", "--platform"], ["--nb-jobs"], ["nope"], [], ["simulate"], ["--version"],
                           ["plot", "--help"], ["\u00e9t\u00e9"], ["simulate", "--platform", "gaia", "--workload"],
                           ["simulate", "--platform", "gaia", "--workload", "x" * 5000],
                           ["describe", "adir"], ["jobstat", "afile", "mem", "mean"], ["clean", "adir"]])
        desc = "argv " + repr(argv)
    return case("cli", desc, kind, argv=argv, files=files, dirs=dirs, tags=[choice])


# ---------------------------------------------------------------------------- special cases

def special_cases(seeds: Seeds) -> list[dict]:
    return [
        case("swf", "/dev/zero as the SWF workload", "hdeeprm",
             argv=["simulate", "--platform", "gaia", "--workload", "trace.swf", "--nb-jobs", "50"],
             links={"trace.swf": "/dev/zero"}, tags=["dev_zero"]),
        case("batsim_json", "/dev/zero as the Batsim JSON workload", "hdeeprm",
             argv=["simulate", "--platform", "gaia", "--workload", "w.json", "--nb-jobs", "50"],
             links={"w.json": "/dev/zero"}, tags=["dev_zero"]),
        case("swf", "FIFO as the SWF workload, with a writer (as <(zcat trace.gz) gives)", "hdeeprm",
             argv=["simulate", "--platform", "gaia", "--workload", "trace.swf", "--nb-jobs", "50"],
             fifos={"trace.swf": seeds.swf["gaia"]}, tags=["fifo"]),
        case("platform_json", "/dev/zero as the platform JSON", "hdeeprm",
             argv=["simulate", "--platform", "platform.json", "--workload", SMALL_TRACE, "--nb-jobs", "20"],
             links={"platform.json": "/dev/zero"}, tags=["dev_zero"]),
        case("experiment", "/dev/zero as the experiment file", "api",
             api={"name": "experiment", "path": "experiment.json", "part": "train"},
             links={"experiment.json": "/dev/zero"}, tags=["dev_zero"]),
        case("swf", "a directory as the workload", "hdeeprm",
             argv=["simulate", "--platform", "gaia", "--workload", "adir", "--nb-jobs", "50"], dirs=["adir"],
             tags=["directory"]),
    ]


RAY_CASE_ARGV = ["@PYTHON@", "-m", "hdeeprm", "sweep", "@REPO@/hdeeprm/data/grids/quickstart-pairs.json", "--out", "sw",
                 "--engine", "ray", "--address", "127.0.0.1:1"]

GENERATORS = {"swf": gen_swf, "batsim_json": gen_batsim_json, "platform_json": gen_platform_json,
              "xml_platform": gen_xml_platform, "experiment": gen_experiment, "grid": gen_grid, "options": gen_options,
              "replay": gen_replay, "run_csv": gen_run_csv, "cli": gen_cli}


class CaseSource:
    """Case ``i`` of a run depends only on the seed, the count and ``i``."""

    def __init__(self, seeds: Seeds, seed: int, count: int, categories: list[str], ray: bool):
        self.seeds = seeds
        self.seed = seed
        self.count = count
        rng = random.Random(f"{seed}:schedule")
        weights = [CATEGORIES[c] for c in categories]
        self.schedule = rng.choices(categories, weights, k=count)
        for j, c in enumerate(categories[:count]):  # every category at least once
            self.schedule[j] = c
        self.specials: dict[int, dict] = {}
        specials = [s for s in special_cases(seeds) if s["category"] in categories]
        if ray and "cli" in categories:
            specials.append(case("cli", "sweep --engine ray --address 127.0.0.1:1 (nothing listens there)",
                                 "subprocess", argv=RAY_CASE_ARGV, tags=["ray"]))
        if count >= 10 * len(specials) and specials:
            for k, spec in enumerate(specials):
                index = (k + 1) * count // (len(specials) + 1)
                self.specials[index] = spec
                self.schedule[index] = spec["category"]

    def case(self, i: int) -> dict:
        if i in self.specials:
            spec = copy.deepcopy(self.specials[i])
        else:
            category = self.schedule[i]
            spec = GENERATORS[category](random.Random(f"{self.seed}:{i}"), self.seeds, i)
        spec["index"] = i
        spec["id"] = f"{spec['category']}-{i}"
        return spec


def case_digest_update(h, spec: dict) -> None:
    light = {k: v for k, v in spec.items() if k not in ("files", "fifos", "dir")}
    light["files"] = {k: hashlib.sha256(v).hexdigest() for k, v in sorted(spec["files"].items())}
    light["fifos"] = {k: hashlib.sha256(v or b"").hexdigest() for k, v in sorted(spec["fifos"].items())}
    h.update(json.dumps(light, sort_keys=True, default=str).encode())


# ============================================================================ the worker


class CaseTimeout(BaseException):
    """Raised by SIGALRM in a worker (a BaseException, so that ``except Exception`` in the code
    under test does not swallow it)."""


_ARMED = False
MEMORY_WORDS = ("cannot allocate memory", "can't allocate memory", "out of memory", "bad_alloc", "unable to allocate",
                "can't start new thread", "memoryerror", "defaultcpuallocator")


def _on_alarm(signum, frame):
    if _ARMED:
        raise CaseTimeout()


def _arm(seconds: float) -> None:
    global _ARMED
    _ARMED = True
    # Fires again every second, in case the code under test swallows the first one.
    signal.setitimer(signal.ITIMER_REAL, seconds, 1.0)


def _disarm() -> None:
    global _ARMED
    _ARMED = False
    signal.setitimer(signal.ITIMER_REAL, 0)


class CappedIO(io.StringIO):
    """stdout/stderr of a case: keeps the first and last 100 kB."""

    LIMIT = 100_000

    def __init__(self):
        super().__init__()
        self.dropped = 0
        self.tail = ""

    def write(self, s):
        if self.tell() < self.LIMIT:
            return super().write(s)
        self.dropped += len(s)
        self.tail = (self.tail + s)[-self.LIMIT:]
        return len(s)

    def text(self) -> str:
        head = self.getvalue()
        if self.dropped:
            return head + f"\n[... {self.dropped} characters not kept ...]\n" + self.tail
        return head


def substitute(text: str, ctx: dict) -> str:
    return text.replace("@REPO@", ctx["repo"]).replace("@SEEDS@", ctx["seeds"]).replace("@PYTHON@", sys.executable)


def materialize(spec: dict, folder: Path, ctx: dict) -> None:
    """Write a case's inputs into ``folder`` (placeholders replaced)."""
    folder.mkdir(parents=True, exist_ok=True)
    for d in spec["dirs"]:
        (folder / d).mkdir(parents=True, exist_ok=True)
    for rel, data in spec["files"].items():
        path = folder / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        data = data.replace(b"@REPO@", ctx["repo"].encode()).replace(b"@SEEDS@", ctx["seeds"].encode())
        path.write_bytes(data)
    for rel, target in spec["links"].items():
        os.symlink(substitute(target, ctx), folder / rel)
    for rel in spec["fifos"]:
        os.mkfifo(folder / rel)


def _fifo_writer(path: Path, data: bytes, deadline: float) -> None:
    """Write ``data`` into a FIFO once a reader opens it (gives up at ``deadline``)."""
    while time.monotonic() < deadline:
        try:
            fd = os.open(path, os.O_WRONLY | os.O_NONBLOCK)
        except OSError:  # ENXIO: no reader yet
            time.sleep(0.02)
            continue
        try:
            os.set_blocking(fd, True)
            os.write(fd, data)
        except OSError:
            pass
        finally:
            os.close(fd)
        return


def hdeeprm_location(tb) -> tuple[str | None, str | None]:
    """(innermost frame in the hdeeprm package, innermost frame) of a traceback, as file:line (function)."""
    frames = traceback.extract_tb(tb)
    inner = None
    if frames:
        f = frames[-1]
        inner = f"{_short_file(f.filename)}:{f.lineno} ({f.name})"
    for f in reversed(frames):
        name = f.filename.replace("\\", "/")
        if "/hdeeprm/" in name and "/benchmarks/" not in name:
            return f"{_short_file(f.filename)}:{f.lineno} ({f.name})", inner
    return None, inner


def _short_file(filename: str) -> str:
    try:
        return os.path.relpath(filename, REPO) if filename.startswith(str(REPO)) else \
            re.sub(r"^.*/(site-packages|lib/python3\.\d+)/", "", filename)
    except ValueError:
        return filename


def _memoryish(exc: BaseException) -> bool:
    seen = 0
    while exc is not None and seen < 10:
        if isinstance(exc, MemoryError):
            return True
        text = f"{type(exc).__name__}: {exc}".lower()
        if any(w in text for w in MEMORY_WORDS):
            return True
        exc = exc.__cause__ or exc.__context__
        seen += 1
    return False


def _numba_compiling(tb) -> bool:
    return any("/numba/" in f.filename.replace("\\", "/") for f in traceback.extract_tb(tb))


def api_call(api: dict):
    name = api["name"]
    if name == "experiment":
        from hdeeprm.rl.experiment import ExperimentConfig

        config = ExperimentConfig.load(api["path"])
        env = config.make_env(api["part"])
        try:
            env.reset(seed=0)
        finally:
            env.close()
    elif name == "grid":
        from hdeeprm.rl.sweep import GridConfig

        GridConfig.load(api["path"]).cells()
    else:
        raise ValueError(f"unknown API call {name}")


API_REPRO = {
    "experiment": "from hdeeprm.rl.experiment import ExperimentConfig; c = ExperimentConfig.load({path!r}); "
                  "env = c.make_env({part!r}); env.reset(seed=0); env.close()",
    "grid": "from hdeeprm.rl.sweep import GridConfig; GridConfig.load({path!r}).cells()",
}


def execute(spec: dict, ctx: dict, timeout: float):
    """Run one case; returns its exit status (CLI) or None (API)."""
    kind = spec["kind"]
    if kind in ("hdeeprm", "launch"):
        module = importlib.import_module("hdeeprm.cli.launch" if kind == "launch" else "hdeeprm.cli.main")
        return module.main([substitute(a, ctx) for a in spec["argv"]])
    if kind == "api":
        return api_call(spec["api"])
    if kind == "subprocess":
        import subprocess

        with open("subprocess-output.txt", "wb") as log:
            proc = subprocess.Popen([substitute(a, ctx) for a in spec["argv"]], stdout=log,
                                    stderr=subprocess.STDOUT, start_new_session=True,
                                    env={**os.environ, "PYTHONFAULTHANDLER": "1"})
            try:
                proc.wait(timeout=timeout)
            except BaseException as e:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(proc.pid, signal.SIGABRT)  # faulthandler prints where it was stuck
                    with contextlib.suppress(subprocess.TimeoutExpired):
                        proc.wait(timeout=2)
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
                if isinstance(e, subprocess.TimeoutExpired):
                    raise CaseTimeout() from None
                raise
            finally:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(proc.pid, signal.SIGKILL)
                with open("subprocess-output.txt", "rb") as f:
                    sys.stdout.write(f.read()[-20000:].decode("utf-8", "replace"))
        return proc.returncode
    raise ValueError(f"unknown case kind {kind}")


def run_case(spec: dict, ctx: dict, conn) -> dict:
    from hdeeprm.common.errors import HDeepRMError

    folder = Path(spec["dir"])
    stack_path = Path(str(folder) + ".stack")
    result = {"id": spec["id"], "outcome": None, "seconds": 0.0, "rc": None, "error": None, "traceback": None,
              "location": None, "raised_at": None, "note": None}
    buf, err = CappedIO(), CappedIO()
    cwd = os.getcwd()
    timeout = ctx["timeout"]
    t0 = time.perf_counter()
    try:
        materialize(spec, folder, ctx)
        for rel, data in spec["fifos"].items():
            if data is not None:
                threading.Thread(target=_fifo_writer, args=(folder / rel, data, time.monotonic() + timeout + 5),
                                 daemon=True).start()
        os.chdir(folder)
        retried = False
        while True:
            exc = None
            value = None
            with open(stack_path, "w") as stack_file:
                import faulthandler

                faulthandler.dump_traceback_later(timeout + 5, exit=False, file=stack_file)
                try:
                    _arm(timeout + (3 if spec["kind"] == "subprocess" else 0))
                    with contextlib.redirect_stdout(buf), contextlib.redirect_stderr(err):
                        value = execute(spec, ctx, timeout)
                    _disarm()
                except BaseException as e:  # noqa: BLE001 - everything is an outcome here
                    _disarm()
                    exc = e
                finally:
                    _disarm()
                    faulthandler.cancel_dump_traceback_later()
            if isinstance(exc, CaseTimeout) and not retried and _numba_compiling(exc.__traceback__):
                # numba was compiling: a cold cache, not a hang. Once more with a long timeout.
                retried = True
                timeout = ctx["timeout"] * 10
                conn.send(("extend", spec["id"], timeout + 15))
                result["note"] = "interrupted while numba compiled; run again with 10x the timeout"
                continue
            break
        result["seconds"] = round(time.perf_counter() - t0, 3)
        stderr = err.text()
        output = buf.text() + stderr
        # What a user sees on stderr, warnings left out: one line for a clean error.
        result["stderr_lines"] = len([ln for ln in stderr.splitlines()
                                      if ln.strip() and "warning" not in ln.lower() and not ln.startswith(" ")
                                      and not ln.startswith("usage:")])  # argparse's usage line is fine
        result["error_chars"] = max((len(ln) for ln in stderr.splitlines()), default=0) + err.dropped
        if exc is None:
            if spec["kind"] == "api":
                result["outcome"] = "ok"
            else:
                rc = value
                result["rc"] = rc
                command = spec["argv"][0] if spec["argv"] else ""
                if rc == 0:
                    result["outcome"] = "ok"
                elif rc == 2:
                    result["outcome"] = "clean"
                    if "Traceback (most recent call last)" in output:
                        result["outcome"] = "traceback"
                        result["note"] = "exit status 2, but a traceback was printed"
                elif rc == 1 and command in ("sweep", "crossval") or spec["kind"] == "subprocess" and "Traceback (most recent call last)" not in output and rc == 1:
                    result["outcome"] = "clean"
                else:
                    result["outcome"] = "traceback"
                    result["note"] = f"unexpected exit status {rc}"
                lines = [ln for ln in output.splitlines() if ln.strip()]
                result["error"] = lines[-1][:500] if lines and rc != 0 else None
                if result["outcome"] == "traceback" and "Traceback (most recent call last)" in output:
                    result["traceback"] = output[output.index("Traceback (most recent call last)"):][-30000:]
                    m = [ln for ln in output.splitlines() if re.match(r'\s*File ".*/hdeeprm/', ln)]
                    if m:
                        fm = re.match(r'\s*File "(.*)", line (\d+), in (.*)', m[-1])
                        if fm:
                            result["location"] = f"{_short_file(fm.group(1))}:{fm.group(2)} ({fm.group(3)})"
        else:
            result["error"] = f"{type(exc).__name__}: {exc}"[:500]
            loc, inner = hdeeprm_location(exc.__traceback__)
            result["location"], result["raised_at"] = loc, inner
            if isinstance(exc, CaseTimeout):
                result["outcome"] = "hang"
                result["error"] = f"over {timeout:g} s"
                result["traceback"] = "".join(traceback.format_exception(exc))[-30000:]
                if spec["kind"] == "subprocess":  # where the child was, from its faulthandler dump
                    result["traceback"] = output[-30000:]
                    result["location"] = _stack_location(output) or "(subprocess)"
                    result["raised_at"] = None
            elif isinstance(exc, SystemExit):
                code = exc.code
                result["rc"] = code
                result["outcome"] = "ok" if code in (0, None) else "clean" if code == 2 else "traceback"
                lines = [ln for ln in output.splitlines() if ln.strip()]
                result["error"] = (lines[-1][:500] if lines else f"SystemExit({code!r})") if code not in (0, None) else None
                if result["outcome"] == "traceback":
                    result["note"] = f"SystemExit({code!r})"
                    result["traceback"] = "".join(traceback.format_exception(exc))[-30000:]
            elif _memoryish(exc) and not (spec["kind"] == "api" and isinstance(exc, HDeepRMError)):
                result["outcome"] = "memory"
                result["traceback"] = "".join(traceback.format_exception(exc))[-30000:]
            elif spec["kind"] == "api" and isinstance(exc, HDeepRMError):
                result["outcome"] = "clean"
            else:
                result["outcome"] = "traceback"
                if isinstance(exc, HDeepRMError):
                    result["note"] = "an HDeepRMError escaped the command line's report_errors"
                result["traceback"] = "".join(traceback.format_exception(exc))[-30000:]
        result["output"] = output[-8000:]
        if exc is not None and spec["kind"] == "api":
            result["error_chars"] = len(f"{type(exc).__name__}: {exc}")
    finally:
        _disarm()
        os.chdir(cwd)
        with contextlib.suppress(Exception):
            plt = sys.modules.get("matplotlib.pyplot")
            if plt is not None:
                plt.close("all")
        _remove(folder)
        with contextlib.suppress(OSError):
            stack_path.unlink()
    return result


def _remove(path: Path) -> None:
    def onerror(func, p, exc_info):
        with contextlib.suppress(OSError):
            os.chmod(p, stat.S_IRWXU)
            func(p)

    if path.is_symlink() or path.is_file():
        path.unlink()
    elif path.exists():
        shutil.rmtree(path, onerror=onerror)


def warm_up(ctx: dict) -> list[str]:
    """Import HDeepRM and compile numba's kernels on the usual paths, outside any timeout."""
    problems = []
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot

    with contextlib.suppress(ModuleNotFoundError):
        import torch

        torch.set_num_threads(1)
    folder = Path(ctx["work"]) / f"warmup-{os.getpid()}"
    folder.mkdir(parents=True, exist_ok=True)
    cwd = os.getcwd()
    os.chdir(folder)
    seeds = ctx["seeds"]
    tasks = [
        ("hdeeprm", ["simulate", "--platform", "gaia", "--workload", GAIA_TRACE, "--nb-jobs", "50", "--out", "o1"]),
        ("hdeeprm", ["simulate", "--platform", "gaia", "--workload", GAIA_TRACE, "--nb-jobs", "50",
                     "--policy", "shortest:high_gflops", "--backfill", "easy", "--runtime-model", "hdeeprm"]),
        ("hdeeprm", ["simulate", "--platform", "@REPO@/tests/data/platforms/small_platform.xml", "--workload",
                     SMALL_TRACE, "--nb-jobs", "20"]),
        ("hdeeprm", ["replay", "@REPO@/tests/data/batsim-reference/A1-delay-walltime", "--out", "o2"]),
        ("hdeeprm", ["replay", "@REPO@/tests/data/batsim-reference/A9-hdeeprm-xml-pstate3", "--out", "o3"]),
        ("hdeeprm", ["plot", "utilization", "@SEEDS@/run_sim", "-o", "f.png", "--dpi", "40"]),
        ("launch", ["@SEEDS@/run_launch-options.json", "--nbruns", "1", "--out", "o4"]),
        ("launch", ["@SEEDS@/run_learn-options.json", "-cw", "@REPO@/hdeeprm/data/learning_workload.json",
                    "--nbruns", "1", "--out", "o5"]),
    ]
    try:
        for kind, argv in tasks:
            spec = {"kind": kind, "argv": argv}
            buf = io.StringIO()
            try:
                with contextlib.redirect_stdout(buf), contextlib.redirect_stderr(buf):
                    rc = execute(spec, ctx, 600)
                if rc != 0:
                    problems.append(f"{' '.join(argv)}: exit {rc}: {buf.getvalue()[-300:]}")
            except BaseException as e:  # noqa: BLE001
                problems.append(f"{' '.join(argv)}: {type(e).__name__}: {e}")
        from hdeeprm.rl.experiment import ExperimentConfig

        for name in sorted((REPO / "hdeeprm/data/experiments").glob("*.json")):
            path = folder / name.name
            path.write_text(json.dumps(_small_experiment(json.loads(name.read_text()))))
            try:
                env = ExperimentConfig.load(path).make_env("train")
                env.reset(seed=0)
                env.close()
            except BaseException as e:  # noqa: BLE001
                problems.append(f"experiment {name.stem}: {type(e).__name__}: {e}")
    finally:
        os.chdir(cwd)
        _remove(folder)
    del seeds
    return problems


def _footprint_mb() -> float:
    """The larger of this process's resident and 1/2 virtual size, MB (a worker grown by a case is replaced)."""
    try:
        with open("/proc/self/statm") as f:
            size, resident = (int(x) for x in f.read().split()[:2])
    except (OSError, ValueError):
        return 0.0
    page = os.sysconf("SC_PAGE_SIZE") / 2 ** 20
    return max(resident * page, size * page / 2)


def worker_main(conn, index: int, ctx: dict) -> None:
    import faulthandler
    import resource

    limit = ctx["memory_mb"] << 20
    if limit > 0:
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    with contextlib.suppress(ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_FSIZE, (2 << 30, 2 << 30))
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    signal.signal(signal.SIGALRM, _on_alarm)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
    with open(Path(ctx["work"]) / f"worker-{index}.crash", "w+") as crash:
        faulthandler.enable(crash)
        t0 = time.perf_counter()
        problems = warm_up(ctx)
        conn.send(("ready", index, round(time.perf_counter() - t0, 1), problems))
        _serve(conn, ctx, crash)


def _serve(conn, ctx: dict, crash) -> None:
    done = 0
    while True:
        try:
            spec = conn.recv()
        except EOFError:
            return
        if spec is None:
            return
        crash.seek(0)
        crash.truncate()
        try:
            result = run_case(spec, ctx, conn)
        except BaseException as e:  # noqa: BLE001 - the harness itself failed on this case
            result = {"id": spec["id"], "outcome": "traceback", "error": f"fuzz harness: {type(e).__name__}: {e}",
                      "traceback": traceback.format_exc(), "seconds": 0.0, "note": "harness error"}
        done += 1
        result["recycle"] = (result["outcome"] == "hang" or done >= ctx["recycle_every"]
                             or _footprint_mb() > 0.6 * max(ctx["memory_mb"], 2000))
        conn.send(("result", result))
        if result["recycle"]:
            return


# ============================================================================ the parent


class Pool:
    """Worker processes, each running one case at a time, watched by the parent."""

    def __init__(self, workers: int, ctx: dict):
        import multiprocessing

        self.mp = multiprocessing.get_context("spawn")
        self.ctx = ctx
        self.workers: dict[int, dict] = {}
        self.next_index = 0
        self.warm_times: list[float] = []
        self.deaths_at_start = 0
        for _ in range(workers):
            self.start()

    def start(self) -> None:
        parent, child = self.mp.Pipe()
        index = self.next_index
        self.next_index += 1
        proc = self.mp.Process(target=worker_main, args=(child, index, self.ctx), daemon=True,
                               name=f"fuzz-worker-{index}")
        proc.start()
        child.close()
        self.workers[index] = {"proc": proc, "conn": parent, "ready": False, "case": None, "deadline": None,
                               "started": time.monotonic()}

    def stop(self, index: int, kill=False) -> None:
        w = self.workers.pop(index)
        if kill and w["proc"].is_alive():
            w["proc"].kill()
        w["proc"].join(timeout=10)
        if w["proc"].is_alive():
            w["proc"].kill()
            w["proc"].join(timeout=5)
        w["conn"].close()

    def close(self) -> None:
        for index in list(self.workers):
            w = self.workers[index]
            with contextlib.suppress(OSError, BrokenPipeError):
                w["conn"].send(None)
        for index in list(self.workers):
            self.stop(index)


def _crash_text(ctx: dict, index: int) -> str:
    with contextlib.suppress(OSError):
        return (Path(ctx["work"]) / f"worker-{index}.crash").read_text(errors="replace")[-20000:]
    return ""


def _stack_location(text: str) -> str | None:
    """The innermost hdeeprm frame of a faulthandler dump (most recent call first)."""
    for line in text.splitlines():
        m = re.match(r'\s*File "(.*)", line (\d+) in (.*)', line)
        if m and "/hdeeprm/" in m.group(1) and "/benchmarks/" not in m.group(1):
            return f"{_short_file(m.group(1))}:{m.group(2)} ({m.group(3)})"
    return None


def run_all(source: CaseSource, indices: list[int], ctx: dict, args, on_result, tick=None) -> None:
    from multiprocessing.connection import wait

    pool = Pool(min(args.workers, max(1, len(indices))), ctx)
    pending = list(indices)
    pending.reverse()
    in_flight = 0
    start_failures = 0
    try:
        while pending or in_flight:
            for index, w in list(pool.workers.items()):
                if w["ready"] and w["case"] is None and pending:
                    spec = source.case(pending.pop())
                    spec["dir"] = str(Path(ctx["work"]) / spec["id"])
                    w["case"] = spec
                    w["deadline"] = time.monotonic() + ctx["timeout"] + 10 + (3 if spec["kind"] == "subprocess" else 0)
                    w["conn"].send(spec)
                    in_flight += 1
            if tick is not None:
                tick(sum(1 for w in pool.workers.values() if w["ready"]), len(pool.workers))
            now = time.monotonic()
            deadlines = [w["deadline"] for w in pool.workers.values() if w["deadline"]]
            wait_for = max(0.05, min([d - now for d in deadlines] + [2.0]))
            handles = {}
            for index, w in pool.workers.items():
                handles[w["conn"]] = index
                handles[w["proc"].sentinel] = index
            ready = wait(list(handles), timeout=wait_for)
            handled = set()
            for handle in ready:
                index = handles[handle]
                if index in handled or index not in pool.workers:
                    continue
                w = pool.workers[index]
                message = None
                if handle is w["conn"] or w["conn"].poll():
                    try:
                        message = w["conn"].recv()
                    except (EOFError, OSError):
                        message = None
                if message is None:
                    # The worker died.
                    handled.add(index)
                    spec = w["case"]
                    code = w["proc"].exitcode if not w["proc"].is_alive() else None
                    pool.stop(index, kill=True)
                    if spec is None:
                        start_failures += 1
                        print(f"fuzz: worker {index} died before taking a case (exit {code}):\n"
                              f"{_crash_text(ctx, index)[-3000:]}", file=sys.stderr, flush=True)
                        if start_failures >= 3:
                            raise SystemExit("fuzz: workers keep dying while starting; giving up")
                    else:
                        in_flight -= 1
                        crash = _crash_text(ctx, index)
                        how = f"killed by signal {-code}" if code is not None and code < 0 else f"exit status {code}"
                        on_result(spec, {"id": spec["id"], "outcome": "memory", "seconds": None,
                                         "error": f"worker died ({how})", "traceback": crash or None,
                                         "location": _stack_location(crash), "note": "worker process died"})
                        _remove(Path(spec["dir"]))
                    pool.start()
                    continue
                kind = message[0]
                if kind == "ready":
                    w["ready"] = True
                    pool.warm_times.append(message[2])
                    if message[3]:
                        print(f"fuzz: worker {index} warm-up problems (valid inputs failing):", file=sys.stderr)
                        for p in message[3]:
                            print(f"  {p[:400]}", file=sys.stderr)
                        sys.stderr.flush()
                elif kind == "extend":
                    w["deadline"] = time.monotonic() + message[2] + 10
                elif kind == "result":
                    result = message[1]
                    spec = w["case"]
                    w["case"], w["deadline"] = None, None
                    in_flight -= 1
                    on_result(spec, result)
                    if result.get("recycle"):
                        handled.add(index)
                        pool.stop(index)
                        pool.start()
            now = time.monotonic()
            for index, w in list(pool.workers.items()):
                if w["case"] is not None and w["deadline"] and now > w["deadline"]:
                    spec = w["case"]
                    stack = Path(spec["dir"] + ".stack")
                    text = stack.read_text(errors="replace") if stack.exists() else ""
                    pool.stop(index, kill=True)
                    in_flight -= 1
                    on_result(spec, {"id": spec["id"], "outcome": "hang", "seconds": None,
                                     "error": "no answer within the timeout + 10 s; worker killed",
                                     "traceback": text[-20000:] or None, "location": _stack_location(text),
                                     "note": "killed by the watchdog (stuck outside Python's signal handling)"})
                    _remove(Path(spec["dir"]))
                    with contextlib.suppress(OSError):
                        stack.unlink()
                    pool.start()
                elif w["case"] is None and not w["ready"] and now - w["started"] > ctx["warmup_timeout"]:
                    pool.stop(index, kill=True)
                    raise SystemExit(f"fuzz: worker {index} did not finish warming up in {ctx['warmup_timeout']} s")
    finally:
        pool.close()


def write_case_folder(out: Path, spec: dict, result: dict, ctx: dict) -> Path:
    folder = out / "cases" / spec["id"]
    _remove(folder)
    materialize({**spec, "fifos": {}}, folder, ctx)
    for rel in spec["fifos"]:
        with contextlib.suppress(OSError):
            os.mkfifo(folder / rel)
    if spec["kind"] == "api":
        code = API_REPRO[spec["api"]["name"]].format(**spec["api"])
        command = f"python -c {shlex.quote(code)}"
    elif spec["kind"] == "subprocess":
        command = " ".join(shlex.quote(substitute(a, ctx)) for a in spec["argv"])
    else:
        prog = "hdeeprm-launch" if spec["kind"] == "launch" else "hdeeprm"
        command = " ".join([prog] + [shlex.quote(substitute(a, ctx)) for a in spec["argv"]])
    fifo_note = ""
    if spec["fifos"]:
        feeds = [f"cat {shlex.quote(rel)}.content > {shlex.quote(rel)} &" for rel, data in spec["fifos"].items()
                 if data is not None]
        for rel, data in spec["fifos"].items():
            if data is not None:
                (folder / f"{rel}.content").write_bytes(data)
        fifo_note = "\n".join(feeds) + "\n"
    (folder / "repro.sh").write_text("#!/bin/sh\n# " + spec["mutation"].replace("\n", " ")[:2000] + "\n"
                                     'cd "$(dirname "$0")" || exit 1\n' + fifo_note + command + "\n")
    os.chmod(folder / "repro.sh", 0o755)
    info = {k: spec[k] for k in ("id", "category", "mutation", "tags", "kind", "argv", "api")}
    info["files"] = sorted(spec["files"]) + sorted(spec["links"]) + sorted(spec["fifos"])
    info["links"] = spec["links"]
    info["command"] = command
    info.update({k: result.get(k) for k in ("outcome", "seconds", "rc", "error", "location", "raised_at", "note")})
    (folder / "case.json").write_text(json.dumps(info, indent=2, ensure_ascii=False) + "\n")
    if result.get("traceback"):
        (folder / "traceback.txt").write_text(result["traceback"])
    if result.get("output"):
        (folder / "output.txt").write_text(result["output"])
    return folder


def print_table(counts: dict, categories: list[str], stream=sys.stdout) -> None:
    width = max(len(c) for c in categories + ["category"]) + 2
    print(f"{'category':<{width}}{'cases':>7}" + "".join(f"{o:>11}" for o in OUTCOMES), file=stream)
    totals = Counter()
    for c in categories:
        row = counts.get(c, {})
        n = sum(row.values())
        totals.update(row)
        print(f"{c:<{width}}{n:>7}" + "".join(f"{row.get(o, 0):>11}" for o in OUTCOMES), file=stream)
    print(f"{'total':<{width}}{sum(totals.values()):>7}" + "".join(f"{totals.get(o, 0):>11}" for o in OUTCOMES),
          file=stream)


def signature(result: dict) -> str:
    error = result.get("error") or ""
    etype = error.split(":", 1)[0] if result["outcome"] == "traceback" else result["outcome"]
    if result.get("note", "") and "exit status" in (result.get("note") or ""):
        etype = result["note"]
    location = result.get("location") or result.get("raised_at") or "?"
    return f"{result['outcome']} | {etype} | {location}"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    parser.add_argument("--count", type=int, default=5000, help="number of cases (default 5000)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the case generator (default 0)")
    parser.add_argument("--out", required=True, help="report folder (summary.json, results.jsonl, cases/)")
    parser.add_argument("--workers", type=int, default=2, help="worker processes (default 2)")
    parser.add_argument("--timeout", type=float, default=20.0, help="seconds per case before it is a hang (default 20)")
    parser.add_argument("--memory-mb", type=int, default=4000,
                        help="address-space limit of each worker, MB (default 4000; 0: none)")
    parser.add_argument("--categories", help=f"comma-separated subset of: {', '.join(CATEGORIES)}")
    parser.add_argument("--only", help="comma-separated case ids (category-index) of this seed and count to run; "
                                       "their folders are written under --out/cases/ whatever the outcome")
    parser.add_argument("--no-ray", action="store_true", help="leave out the Ray case (a subprocess)")
    parser.add_argument("--progress", type=float, default=15.0, help="seconds between progress lines (default 15)")
    parser.add_argument("--list", action="store_true", help="generate the cases, print their digest, run nothing")
    args = parser.parse_args(argv)
    if args.count < 1 or args.workers < 1 or not args.timeout > 0:
        parser.error("--count, --workers and --timeout must be positive")
    categories = list(CATEGORIES)
    if args.categories:
        categories = [c.strip() for c in args.categories.split(",") if c.strip()]
        unknown = [c for c in categories if c not in CATEGORIES]
        if unknown:
            parser.error(f"unknown category {unknown[0]!r}; expected some of {', '.join(CATEGORIES)}")

    for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMEXPR_NUM_THREADS"):
        os.environ.setdefault(name, "1")
    os.environ["MPLBACKEND"] = "Agg"
    os.environ.pop("HDEEPRM_BATSIM", None)

    out = Path(args.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.monotonic()
    print(f"fuzz: preparing seeds in {out / 'seeds'}", flush=True)
    seeds = Seeds(out / "seeds")
    ray = not args.no_ray and importlib.util.find_spec("ray") is not None
    source = CaseSource(seeds, args.seed, args.count, categories, ray)
    indices = list(range(args.count))
    if args.only:
        wanted = {x.strip() for x in args.only.split(",") if x.strip()}
        indices = [int(x.rsplit("-", 1)[1]) for x in wanted]
        bad = [x for x, i in zip(wanted, indices) if not 0 <= i < args.count or source.case(i)["id"] != x]
        if bad:
            parser.error(f"--only {bad[0]}: no such case for --seed {args.seed} --count {args.count}")
        indices.sort()

    digest = hashlib.sha256()
    if args.list or not args.only:
        for i in indices:
            spec = source.case(i)
            case_digest_update(digest, spec)
            if args.list:
                print(f"{spec['id']}\t{spec['kind']}\t{spec['mutation'][:150]}")
    print(f"fuzz: {len(indices)} cases, digest {digest.hexdigest()[:16]} "
          f"(seed {args.seed}), generated in {time.monotonic() - t0:.1f} s", flush=True)
    if args.list:
        return 0

    work = Path(tempfile.mkdtemp(prefix="hdeeprm-fuzz-"))
    ctx = {"repo": str(REPO), "seeds": str(seeds.root), "work": str(work), "timeout": args.timeout,
           "memory_mb": args.memory_mb, "recycle_every": 400, "warmup_timeout": 1800}
    cases_dir = out / "cases"
    _remove(cases_dir)
    counts: dict = defaultdict(Counter)
    by_tag: dict = defaultdict(lambda: defaultdict(Counter))
    findings: dict = {}
    suspects, noisy = [], []
    done = Counter()
    state = {"last": time.monotonic(), "n": 0, "start": time.monotonic(), "first_ready": None}
    results_file = (out / "results.jsonl").open("w")  # closed below, after the pool
    print(f"fuzz: {args.workers} workers, timeout {args.timeout:g} s, memory limit {args.memory_mb} MB; "
          f"workers warm up first (imports, numba)", flush=True)

    def on_result(spec, result):
        outcome = result["outcome"]
        counts[spec["category"]][outcome] += 1
        for tag in set(spec["tags"]) or {"-"}:
            by_tag[spec["category"]][tag][outcome] += 1
        done[outcome] += 1
        state["n"] += 1
        row = {"id": spec["id"], "category": spec["category"], "outcome": outcome, "seconds": result.get("seconds"),
               "tags": spec["tags"], "mutation": spec["mutation"][:1000], "error": result.get("error"),
               "location": result.get("location"), "raised_at": result.get("raised_at"), "note": result.get("note"),
               "command": ([spec["kind"]] + [a[:200] for a in spec["argv"]]) if spec["argv"] else spec["api"]}
        results_file.write(json.dumps(row, ensure_ascii=False, default=str) + "\n")
        if args.only and outcome not in BAD:
            write_case_folder(out, spec, result, ctx)  # cases asked for by name are always written
        if outcome in BAD:
            folder = write_case_folder(out, spec, result, ctx)
            sig = signature(result)
            f = findings.setdefault(sig, {"signature": sig, "outcome": outcome, "count": 0, "cases": [],
                                          "error": result.get("error"), "location": result.get("location"),
                                          "raised_at": result.get("raised_at"), "note": result.get("note"),
                                          "example": str(folder.relative_to(out)), "mutation": spec["mutation"][:300],
                                          "last_lines": (result.get("traceback") or "").strip().splitlines()[-4:]})
            f["count"] += 1
            if len(f["cases"]) < 20:
                f["cases"].append(spec["id"])
        elif outcome == "ok" and spec.get("suspect"):
            suspects.append({"id": spec["id"], "mutation": spec["mutation"][:300]})
        elif outcome == "clean" and ((result.get("error_chars") or 0) > 400 or (result.get("stderr_lines") or 0) > 1):
            noisy.append({"id": spec["id"], "chars": result["error_chars"], "stderr_lines": result.get("stderr_lines"),
                          "error": (result.get("error") or "")[:300], "mutation": spec["mutation"][:200]})
        if state["n"] == len(indices):
            progress_line()

    def progress_line(warming=None):
        now = time.monotonic()
        state["last"] = now
        line = f"[{state['n']:>6}/{len(indices)}] {now - state['start']:7.1f} s  " \
            + "  ".join(f"{o} {done.get(o, 0)}" for o in OUTCOMES)
        if state["n"] and state["first_ready"] is not None:
            rate = state["n"] / max(now - state["first_ready"], 1e-9)
            line += f"  ({rate:.1f} cases/s, about {(len(indices) - state['n']) / rate:.0f} s left)"
        if warming:
            line += f"  [{warming}]"
        print(line, flush=True)

    def tick(ready, total):
        if ready and state["first_ready"] is None:
            state["first_ready"] = time.monotonic()
        if time.monotonic() - state["last"] >= args.progress:
            progress_line(None if ready == total else
                          f"{total - ready} of {total} workers warming up: imports, numba compilation")

    interrupted = False
    state["start"] = time.monotonic()
    try:
        run_all(source, indices, ctx, args, on_result, tick)
    except KeyboardInterrupt:
        interrupted = True
        print("fuzz: interrupted; summarising the cases done", file=sys.stderr, flush=True)
    finally:
        results_file.close()
        _remove(work)
    elapsed = time.monotonic() - state["start"]

    print()
    print_table(counts, categories)
    ordered = sorted(findings.values(), key=lambda f: (OUTCOMES.index(f["outcome"]), -f["count"]))
    if ordered:
        print(f"\n{len(ordered)} distinct findings (outcome | exception | innermost hdeeprm frame):")
        for f in ordered:
            print(f"  [{f['count']:>4}x] {f['signature']}")
            print(f"          e.g. {f['example']}/  ({f['mutation'][:120]})")
            print(f"          {(f['error'] or '')[:160]}")
    else:
        print("\nno traceback, hang or memory outcome")
    if suspects:
        print(f"\n{len(suspects)} cases accepted data that the mutation made clearly invalid (see summary.json 'suspects')")
    summary = {
        "seed": args.seed, "count": args.count, "ran": state["n"], "workers": args.workers, "timeout_s": args.timeout,
        "memory_mb": args.memory_mb, "categories": categories, "cases_digest": digest.hexdigest() if not args.only else None,
        "elapsed_s": round(elapsed, 1), "interrupted": interrupted,
        "python": sys.version.split()[0], "hdeeprm_version": importlib.import_module("hdeeprm").__version__,
        "counts": {c: {o: counts[c].get(o, 0) for o in OUTCOMES} for c in categories},
        "totals": {o: done.get(o, 0) for o in OUTCOMES},
        "by_mutation": {c: {t: dict(v) for t, v in sorted(by_tag[c].items())} for c in categories},
        "findings": ordered, "suspects": suspects[:500], "noisy_errors": noisy[:200],
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=2, ensure_ascii=False, default=str) + "\n")
    print(f"\nfuzz: {state['n']} cases in {elapsed:.0f} s; report in {out}/summary.json"
          + (f", {sum(f['count'] for f in ordered)} failing cases in {cases_dir}/" if ordered else ""), flush=True)
    if interrupted:
        return 130
    return 1 if any(done.get(o, 0) for o in BAD) else 0


if __name__ == "__main__":
    sys.exit(main())
