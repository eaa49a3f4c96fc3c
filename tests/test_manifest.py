"""manifest.json: how a run folder was made, written atomically, shown by compare and report,
and removed by clean as a file of ours."""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import hdeeprm
from hdeeprm.cli.main import main
from hdeeprm.common.bundled import DATA_DIR
from hdeeprm.common.manifest import (
    MANIFEST_FILE,
    git_commit,
    manifest_lines,
    package_version,
    read_manifest,
    write_manifest,
)

TRACES = Path(__file__).parent / "data" / "traces"
REPO = Path(hdeeprm.__file__).resolve().parent.parent


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_the_manifest_says_how_the_run_was_made(tmp_path):
    workload = TRACES / "kth-sp2-head.swf.gz"
    argv = ["hdeeprm", "simulate", "--platform", "gaia", "--workload", str(workload), "--out", "run dir"]
    path = write_manifest(tmp_path / "run", argv, {"platform": "gaia", "workload": workload, "hierarchy": None,
                                                   "model": tmp_path / "missing.pt"},
                          {"seed": 7}, 12.5)
    assert path == tmp_path / "run" / MANIFEST_FILE
    m = json.loads(path.read_text())
    assert m["argv"] == argv and m["command"].endswith("--out 'run dir'")  # the command line, quoted for a shell
    assert m["hdeeprm_version"] == hdeeprm.__version__
    assert m["python"] == ".".join(map(str, sys.version_info[:3]))
    assert m["packages"]["numpy"] == package_version("numpy") and m["packages"]["numpy"]
    assert set(m["packages"]) >= {"numpy", "numba", "torch", "gymnasium", "simpy"}
    # Files by their checksum; a bundled name resolved to its file; what is not a file, as given.
    assert m["inputs"]["workload"]["sha256"] == sha256(workload)
    gaia = DATA_DIR / "platforms" / "gaia.json"
    assert m["inputs"]["platform"] == {"given": "gaia", "path": str(gaia.resolve()), "bytes": gaia.stat().st_size,
                                       "sha256": sha256(gaia)}
    assert m["inputs"]["model"]["sha256"] is None and m["inputs"]["hierarchy"] is None
    assert m["seeds"] == {"seed": 7} and m["wall_seconds"] == 12.5
    assert m["machine"]["cpu_count"] == os.cpu_count() and m["machine"]["node"]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", m["started_utc"])
    assert m["started_utc"] <= m["finished_utc"]
    assert read_manifest(tmp_path / "run") == m
    lines = manifest_lines(m)
    assert lines[0] == f"command: {m['command']}" and lines[1].startswith(f"version: hdeeprm {hdeeprm.__version__}")
    assert lines[2].startswith(f"date: {m['started_utc'][:10]} ") and "(12.5 s)" in lines[2]


def test_the_manifest_is_replaced_atomically_and_leaves_no_temporary_file(tmp_path, monkeypatch):
    write_manifest(tmp_path, ["hdeeprm", "one"])
    write_manifest(tmp_path, ["hdeeprm", "two"])
    assert read_manifest(tmp_path)["argv"] == ["hdeeprm", "two"]
    assert sorted(p.name for p in tmp_path.iterdir()) == [MANIFEST_FILE]

    def broken(src, dst):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", broken)
    with pytest.raises(OSError):
        write_manifest(tmp_path, ["hdeeprm", "three"])
    monkeypatch.undo()
    assert read_manifest(tmp_path)["argv"] == ["hdeeprm", "two"]  # the old one, whole
    assert sorted(p.name for p in tmp_path.iterdir()) == [MANIFEST_FILE]


def test_versions_are_read_without_importing_the_libraries():
    code = ("import sys, tempfile\nfrom hdeeprm.common.manifest import write_manifest\n"
            "write_manifest(tempfile.mkdtemp(), ['hdeeprm'])\n"
            "bad = [m for m in ('torch', 'matplotlib', 'zmq') if m in sys.modules]\nassert not bad, bad\n")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)


def test_git_commit_when_in_a_checkout_and_none_otherwise(tmp_path, monkeypatch):
    if (REPO / ".git").exists() and shutil.which("git"):
        expected = subprocess.run(["git", "-C", str(REPO), "rev-parse", "HEAD"], capture_output=True,
                                  text=True).stdout.strip()
        assert git_commit() == expected and len(expected) == 40
    assert git_commit(tmp_path) is None  # not a checkout
    (tmp_path / ".git").mkdir()  # looks like one, but git says no
    assert git_commit(tmp_path) is None
    # git missing, or hanging: None, quickly, never an error
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "git").write_text("#!/bin/sh\nexec sleep 30\n")
    (bin_dir / "git").chmod(0o755)
    monkeypatch.setenv("PATH", str(bin_dir))
    assert git_commit(tmp_path, timeout=0.3) is None
    monkeypatch.setenv("PATH", str(tmp_path / "nowhere"))
    assert git_commit(tmp_path) is None


def test_read_manifest_ignores_files_that_are_not_ours(tmp_path):
    assert read_manifest(tmp_path) is None
    (tmp_path / MANIFEST_FILE).write_text('{"name": "my package", "version": 3}')
    assert read_manifest(tmp_path) is None
    (tmp_path / MANIFEST_FILE).write_text("not json")
    assert read_manifest(tmp_path) is None


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    base = tmp_path_factory.mktemp("manifest-runs")
    for name, extra in (("fcfs", []), ("easy", ["--backfill", "easy"])):
        assert main(["simulate", "--platform", "quickstart", "--workload", str(TRACES / "kth-sp2-head.swf.gz"),
                     "--nb-jobs", "40", "--out", str(base / name)] + extra) == 0
    assert (base / "easy" / "manifest.json").is_file()  # simulate writes one
    (base / "easy" / "manifest.json").unlink()  # as a run made before manifests, or by real Batsim
    write_manifest(base / "fcfs", ["hdeeprm", "simulate", "--platform", "quickstart", "--out", "fcfs"],
                   {"platform": "quickstart"}, {"seed": 0}, 0.25)
    return base / "fcfs", base / "easy"


def test_compare_and_report_show_the_manifest(runs, tmp_path, capsys):
    fcfs, easy = runs
    assert main(["compare", str(fcfs), str(easy), "--no-figure"]) == 0
    text = capsys.readouterr().out
    shown = text[text.index("how the runs were made"):]
    assert "fcfs:" in shown and "easy:" not in shown  # only the run that has one
    assert "command: hdeeprm simulate --platform quickstart --out fcfs" in shown
    assert f"version: hdeeprm {hdeeprm.__version__}" in shown and "date: " in shown and "(0.2 s)" in shown
    assert main(["report", str(fcfs), "-o", str(tmp_path / "page.html"), "--no-figures"]) == 0
    page = (tmp_path / "page.html").read_text()
    assert "<h2>Run</h2>" in page and "hdeeprm simulate --platform quickstart --out fcfs" in page
    assert main(["report", str(easy), "-o", str(tmp_path / "other.html"), "--no-figures"]) == 0
    assert "<h2>Run</h2>" not in (tmp_path / "other.html").read_text()


def test_clean_removes_our_manifest_keeps_it_with_soft_and_keeps_a_foreign_one(runs, tmp_path, capsys):
    run = tmp_path / "fcfs"
    shutil.copytree(runs[0], run)
    (run / f".{MANIFEST_FILE}.x1y2.tmp").write_bytes((run / MANIFEST_FILE).read_bytes())  # left by a crash
    assert main(["clean", str(run), "--soft"]) == 0
    assert (run / MANIFEST_FILE).is_file()  # with the configuration it describes
    assert not (run / f".{MANIFEST_FILE}.x1y2.tmp").exists()
    assert main(["clean", str(run)]) == 0
    assert not run.exists()
    other = tmp_path / "easy"
    shutil.copytree(runs[1], other)
    (other / MANIFEST_FILE).write_text('{"name": "not hdeeprm\'s"}')
    assert main(["clean", str(other)]) == 0
    assert "manifest.json: content not recognised" in capsys.readouterr().out
    assert [p.name for p in other.iterdir()] == [MANIFEST_FILE]


def test_sweep_writes_its_manifest(tmp_path, monkeypatch, capsys):
    (tmp_path / "small.json").write_text(json.dumps({"platform": "quickstart", "workload": "kth-sp2-head.swf.gz",
                                                     "nb_jobs": 100, "episode_jobs": 20, "eval_episodes": 1,
                                                     "observation": "minimal"}))
    grid = tmp_path / "grid.json"
    grid.write_text(json.dumps({"experiment": "small.json", "policies": ["first:first_fit"], "seeds": [4, 9],
                                "outputs": False}))
    argv = ["sweep", str(grid), "--out", str(tmp_path / "out")]
    monkeypatch.setattr(sys, "argv", ["hdeeprm", *argv])
    assert main(argv) == 0
    m = read_manifest(tmp_path / "out")
    assert m["argv"] == ["hdeeprm", *argv] and m["seeds"] == {"seeds": [4, 9]}
    assert m["inputs"]["grid"]["sha256"] == sha256(grid)
    assert m["inputs"]["experiment"]["sha256"] == sha256(tmp_path / "small.json")
    trace = DATA_DIR / "traces" / "kth-sp2-head.swf.gz"
    assert [w["sha256"] for w in m["inputs"]["workloads"]] == [sha256(trace)]
    assert m["inputs"]["platforms"][0]["sha256"] == sha256(DATA_DIR / "platforms" / "quickstart.json")
    assert m["wall_seconds"] > 0 and m["extra"]["engine"] == "local"
