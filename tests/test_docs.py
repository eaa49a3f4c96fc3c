"""The documentation site (``docs/``): its code blocks run, it builds, its links resolve.

- Every runnable block of every page (``sh`` and ``python`` fences; a ``{code-block}`` with a
  file name as ``:caption:`` is that file's content, written where the blocks after it expect
  it) runs, page by page, in a fresh temporary folder that stands for the repository root
  (links to ``examples/`` and ``hdeeprm/``), with this interpreter's ``hdeeprm`` and
  ``python`` first on ``PATH``. A MyST comment ``% test: needs batsim`` (or ``sb3``, ``ray``,
  ``torch``, ``matplotlib``) on the line before a block skips the rest of its page when that
  tool is missing; ``% test: skip`` skips one block. ``text``, ``console``, ``json`` (without
  a caption) and other fences are shown, not run.
- The site builds with warnings as errors when Sphinx and MyST are installed (the ``docs``
  extra; ``tox -e docs`` is the full build), and is skipped otherwise.
- Links between pages (and to their headings) resolve, without Sphinx.
- The reference pages name every output column and every command the code defines.
"""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
#: Pages whose blocks are run: every Markdown page of the site but the developer notes.
PAGES = sorted(p for p in DOCS.rglob("*.md")
               if "_build" not in p.parts and p.relative_to(DOCS).parts[0] != "dev")
BLOCK_TIMEOUT_S = 600  # a cold numba cache compiles for 1-2 minutes; warm, blocks take seconds

NEEDS = {
    "batsim": lambda: shutil.which("batsim") is not None and _has("zmq"),
    "sb3": lambda: _has("stable_baselines3") and _has("sb3_contrib"),
    "ray": lambda: _has("ray"),
    "torch": lambda: _has("torch"),
    "matplotlib": lambda: _has("matplotlib"),
}


def _has(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


# ------------------------------------------------------------------------------ the blocks

@dataclass
class Block:
    page: Path
    line: int  # 1-based line of the opening fence
    kind: str  # "sh", "python" or "file"
    code: str
    filename: str | None = None
    needs: tuple[str, ...] = ()
    skip: bool = False

    def where(self) -> str:
        return f"{self.page.relative_to(ROOT)}:{self.line}"


_FENCE = re.compile(r"^(`{3,}|~{3,})\s*(.*)$")
_OPTION = re.compile(r"^:([\w-]+):\s*(.*)$")


def fenced_blocks(text: str):
    """(line, info, options, body, marker) for every fenced block of a MyST page; ``marker``
    is the ``% test: ...`` comment on the last non-blank line before the fence, if any."""
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        match = _FENCE.match(lines[i])
        if not match:
            i += 1
            continue
        fence, info = match.groups()
        start = i
        j = i + 1
        while j < len(lines) and not (lines[j].startswith(fence[0] * len(fence)) and not lines[j].strip(fence[0]).strip()):
            j += 1
        body = lines[i + 1:j]
        options = {}
        if info.startswith("{"):  # a directive: its options come first
            while body and _OPTION.match(body[0]):
                key, value = _OPTION.match(body[0]).groups()
                options[key] = value
                body = body[1:]
            if body and not body[0].strip():
                body = body[1:]
        k = start - 1
        while k >= 0 and not lines[k].strip():
            k -= 1
        marker = lines[k].strip() if k >= 0 and lines[k].strip().startswith("% test:") else None
        yield start + 1, info.strip(), options, "\n".join(body) + "\n", marker
        i = j + 1


def runnable_blocks(page: Path) -> list[Block]:
    blocks = []
    for line, info, options, body, marker in fenced_blocks(page.read_text(encoding="utf-8")):
        words = info.split()
        if not words:
            continue
        if words[0] == "{code-block}" and "caption" in options:
            kind, filename = "file", options["caption"].strip()
        elif words[0] in ("sh", "bash"):
            kind, filename = "sh", None
        elif words[0] == "python":
            kind, filename = "python", None
        else:
            continue
        needs: tuple[str, ...] = ()
        skip = False
        if marker:
            directive = marker[len("% test:"):].split()
            if directive[:1] == ["skip"]:
                skip = True
            elif directive[:1] == ["needs"]:
                needs = tuple(directive[1:])
                unknown = set(needs) - set(NEEDS)
                assert not unknown, f"{page}:{line}: unknown requirement {sorted(unknown)}"
            else:
                raise AssertionError(f"{page}:{line}: unknown test marker {marker!r}")
        blocks.append(Block(page, line, kind, body, filename, needs, skip))
    return blocks


RUNNABLE_PAGES = [p for p in PAGES if any(b.kind != "file" for b in runnable_blocks(p))]


def _environment() -> dict[str, str]:
    env = dict(os.environ)
    env["PATH"] = str(Path(sys.executable).parent) + os.pathsep + env.get("PATH", "")
    env["MPLBACKEND"] = "Agg"
    env.pop("PYTHONPATH", None)
    return env


def run_page(page: Path, workdir: Path) -> None:
    """Run the page's blocks in order in ``workdir``; fails on the first block that fails,
    skips the rest of the page at the first block whose requirement is missing."""
    for name in ("examples", "hdeeprm"):
        (workdir / name).symlink_to(ROOT / name, target_is_directory=True)
    scripts = workdir.parent / f"{workdir.name}-blocks"
    scripts.mkdir()
    env = _environment()
    for n, block in enumerate(runnable_blocks(page)):
        missing = [need for need in block.needs if not NEEDS[need]()]
        if missing:
            pytest.skip(f"{block.where()} and after: needs {', '.join(missing)}")
        if block.skip:
            continue
        if block.kind == "file":
            target = workdir / block.filename
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(block.code, encoding="utf-8")
            continue
        if block.kind == "sh":
            command = ["bash", "-euo", "pipefail", "-c", block.code]
        else:
            script = scripts / f"block_{n}.py"
            script.write_text(block.code, encoding="utf-8")
            command = [sys.executable, str(script)]
        try:
            done = subprocess.run(command, cwd=workdir, env=env, capture_output=True, text=True,
                                  timeout=BLOCK_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            pytest.fail(f"{block.where()}: still running after {BLOCK_TIMEOUT_S} s:\n{block.code}")
        if done.returncode != 0:
            output = (done.stdout + done.stderr)[-4000:]
            pytest.fail(f"{block.where()}: exit status {done.returncode}\n--- block\n{block.code}"
                        f"--- output (end)\n{textwrap.indent(output, '  ')}")


@pytest.mark.slow
@pytest.mark.parametrize("page", RUNNABLE_PAGES, ids=lambda p: str(p.relative_to(DOCS)))
def test_page_code_blocks_run(page, tmp_path):
    workdir = tmp_path / "repo"
    workdir.mkdir()
    run_page(page, workdir)


def test_block_parser_reads_fences_captions_and_markers(tmp_path):
    text = textwrap.dedent("""\
        Some text.

        ```sh
        echo one
        ```

        % test: needs ray
        ```python
        print(2)
        ```

        ````{code-block} json
        :caption: conf/grid.json

        {"a": 1}
        ````

        ```text
        not run
        ```
        """)
    found = list(fenced_blocks(text))
    assert [f[1] for f in found] == ["sh", "python", "{code-block} json", "text"]
    assert found[1][4] == "% test: needs ray" and found[0][4] is None
    assert found[2][2] == {"caption": "conf/grid.json"} and found[2][3] == '{"a": 1}\n'
    page = tmp_path / "example.md"
    page.write_text(text)
    blocks = runnable_blocks(page)
    assert [(b.kind, b.filename, b.needs) for b in blocks] == [
        ("sh", None, ()), ("python", None, ("ray",)), ("file", "conf/grid.json", ())]


# ------------------------------------------------------------------------------ the build

def test_site_builds_without_warnings(tmp_path):
    missing = [m for m in ("sphinx", "myst_parser") if not _has(m)]
    if missing:
        pytest.skip(f"the docs builder is not installed ({', '.join(missing)}): "
                    "pip install -c constraints.txt -e '.[docs]', or tox -e docs")
    done = subprocess.run(
        [sys.executable, "-m", "sphinx", "-W", "--keep-going", "-q", "-b", "html",
         "-d", str(tmp_path / "doctrees"), str(DOCS), str(tmp_path / "html")],
        cwd=ROOT, env=_environment(), capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, (done.stdout + done.stderr)[-6000:]
    assert (tmp_path / "html" / "index.html").is_file()
    assert (tmp_path / "html" / "api" / "engine.html").is_file()


# ------------------------------------------------------------------------------ the links

_LINK = re.compile(r"(?<!!)\[[^\]]*\]\(([^()\s]+)\)")
_HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")


def heading_anchors(page: Path) -> set[str]:
    """The anchors MyST gives a page's headings (``myst_heading_anchors``): GitHub's slugs,
    with -1, -2... for repeats."""
    anchors: set[str] = set()
    seen: dict[str, int] = {}
    in_fence = None
    for line in page.read_text(encoding="utf-8").splitlines():
        fence = _FENCE.match(line)
        if fence:
            marker = fence.group(1)
            if in_fence is None:
                in_fence = marker
            elif line.strip() == in_fence or (line.startswith(in_fence) and not line.strip(in_fence[0]).strip()):
                in_fence = None
            continue
        if in_fence is not None:
            continue
        match = _HEADING.match(line)
        if not match:
            continue
        title = re.sub(r"`([^`]*)`", r"\1", match.group(2))
        title = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", title)
        slug = re.sub(r"[^\w\- ]", "", title.strip().lower()).replace(" ", "-")
        if slug in seen:
            seen[slug] += 1
            slug = f"{slug}-{seen[slug]}"
        else:
            seen[slug] = 0
        anchors.add(slug)
    return anchors


def page_links(page: Path):
    in_fence = None
    for number, line in enumerate(page.read_text(encoding="utf-8").splitlines(), 1):
        fence = _FENCE.match(line)
        if fence:
            marker = fence.group(1)
            if in_fence is None:
                in_fence = marker
            elif line.startswith(in_fence) and not line.strip(in_fence[0]).strip():
                in_fence = None
            continue
        if in_fence is not None:
            continue
        for target in _LINK.findall(re.sub(r"`[^`]*`", "", line)):
            yield number, target


def test_internal_links_resolve():
    pages = sorted(p for p in DOCS.rglob("*.md") if "_build" not in p.parts)
    assert pages, "no page found under docs/"
    broken = []
    for page in pages:
        for number, target in page_links(page):
            if re.match(r"^[a-z][a-z0-9+.-]*:", target):  # https:, mailto: ...
                continue
            path_part, _, anchor = target.partition("#")
            goal = (page.parent / path_part).resolve() if path_part else page
            if not goal.exists():
                broken.append(f"{page.relative_to(ROOT)}:{number}: {target}: no such file")
            elif anchor and goal.suffix == ".md" and anchor not in heading_anchors(goal):
                broken.append(f"{page.relative_to(ROOT)}:{number}: {target}: no heading "
                              f"'{anchor}' in {goal.relative_to(ROOT)}")
            elif goal.is_file() and goal.suffix not in (".md", ".rst") and DOCS not in goal.parents:
                broken.append(f"{page.relative_to(ROOT)}:{number}: {target}: outside the site")
    assert not broken, "\n".join(broken)


def test_every_page_is_in_the_site():
    """Each page is reachable from a toctree (else Sphinx warns; checked here without it)."""
    listed = set()
    for page in DOCS.rglob("*"):
        if page.suffix not in (".md", ".rst") or "_build" in page.parts:
            continue
        text = page.read_text(encoding="utf-8")
        for block in re.findall(r"(?:```\{toctree\}|\.\. toctree::)(.*?)(?:```|\Z)", text, re.S):
            for entry in block.splitlines():
                entry = entry.strip()
                if entry and not entry.startswith(":"):
                    listed.add((page.parent / entry).resolve().with_suffix(""))
    pages = {p.resolve().with_suffix("") for p in DOCS.rglob("*")
             if p.suffix in (".md", ".rst") and "_build" not in p.parts and "emulators" not in p.parts}
    orphans = sorted(str(p.relative_to(DOCS)) for p in pages - listed - {(DOCS / "index").resolve()})
    assert not orphans, f"pages in no toctree: {orphans}"


# ------------------------------------------------------------------------------ the reference

def test_output_reference_names_every_column():
    from hdeeprm.analysis.evaluation import EVALUATION_COLUMNS
    from hdeeprm.rl.sweep import RESULT_COLUMNS, TABLE_COLUMNS
    from hdeeprm.simulation.outputs import ENERGY_COLUMNS, JOB_COLUMNS, PSTATE_COLUMNS, SCHEDULE_COLUMNS

    text = (DOCS / "reference" / "outputs.md").read_text(encoding="utf-8")
    named = set(re.findall(r"`([a-z_]+)`", text))
    columns = (set(JOB_COLUMNS) | set(SCHEDULE_COLUMNS) | set(ENERGY_COLUMNS) | set(PSTATE_COLUMNS)
               | set(EVALUATION_COLUMNS) | set(RESULT_COLUMNS) | set(TABLE_COLUMNS))
    assert not columns - named, f"columns missing from docs/reference/outputs.md: {sorted(columns - named)}"


def test_cli_reference_names_every_command():
    from hdeeprm.cli.main import build_parser

    _, handlers = build_parser()
    commands = sorted(handlers)
    text = (DOCS / "reference" / "cli.md").read_text(encoding="utf-8")
    missing = [name for name in commands if f"hdeeprm {name}" not in text]
    assert not missing, f"commands missing from docs/reference/cli.md: {missing}"
