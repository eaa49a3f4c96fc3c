"""The package's folders are its layers: imports only go downwards, and there is no import cycle.

Layers, lowest first (ARCHITECTURE.md): common, inputs, simulation, backends, rl, analysis, cli.
Every import counts, including those inside functions (a lazy import is still a dependency).
"""

from __future__ import annotations

import ast
import functools
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "hdeeprm"
LAYERS = ("common", "inputs", "simulation", "backends", "rl", "analysis", "cli")
# The package root and the compatibility paths of original HDeepRM agent files sit above everything.
TOP = {"hdeeprm", "hdeeprm.__main__", "hdeeprm.agent", "hdeeprm.env"}


def _modules() -> dict[str, Path]:
    modules = {}
    for path in PACKAGE.rglob("*.py"):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        modules[".".join(parts)] = path
    return modules


MODULES = _modules()


def _imports(path: Path) -> set[str]:
    """hdeeprm modules imported anywhere in the file (module level or inside functions)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("hdeeprm"))
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and (node.module or "").startswith("hdeeprm"):
            for alias in node.names:
                full = f"{node.module}.{alias.name}"
                found.add(full if full in MODULES else node.module)
    return found


@functools.cache
def _graph() -> dict[str, set[str]]:
    graph = {}
    for name, path in MODULES.items():
        targets = set()
        for target in _imports(path):
            # Importing a.b.c runs the __init__ of a.b first: a dependency on the package too.
            while target in MODULES and target != "hdeeprm":
                if target != name and not name.startswith(target + "."):
                    targets.add(target)
                target = target.rsplit(".", 1)[0]
        graph[name] = targets
    return graph


def _layer(module: str) -> int:
    if module in TOP:
        return len(LAYERS)
    return LAYERS.index(module.split(".")[1])


def test_every_module_belongs_to_a_layer():
    stray = [m for m in MODULES if m not in TOP and m.split(".")[1] not in LAYERS]
    assert stray == [], f"modules outside the layer folders {LAYERS}: {stray}"


def test_no_relative_imports():
    # Absolute imports keep each file's place in the layers visible where it is read.
    relative = [str(p.relative_to(PACKAGE.parent)) for p in MODULES.values()
                if any(isinstance(n, ast.ImportFrom) and n.level for n in ast.walk(ast.parse(p.read_text())))]
    assert relative == []


@pytest.mark.parametrize("module", sorted(MODULES))
def test_imports_only_go_downwards(module):
    upward = sorted(t for t in _graph()[module] if _layer(t) > _layer(module))
    assert upward == [], f"{module} ({LAYERS[_layer(module)] if _layer(module) < len(LAYERS) else 'top'}) imports " \
                         f"a higher layer: {upward}"


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return cycles


def test_import_graph_has_no_cycle():
    assert _cycles(_graph()) == []


def test_cycle_finder_finds_a_cycle():
    # The check above must be able to fail.
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_simulation_needs_no_learning_library():
    # The simulation and its inputs run without torch, gymnasium's RL side, or matplotlib.
    import subprocess
    import sys

    code = ("import sys, hdeeprm.simulation.policies, hdeeprm.simulation.fastsim, hdeeprm.inputs.workload; "
            "bad = [m for m in ('torch', 'matplotlib', 'hdeeprm.rl', 'hdeeprm.analysis', 'hdeeprm.cli') "
            "if m in sys.modules]; assert not bad, bad")
    subprocess.run([sys.executable, "-c", code], check=True)
