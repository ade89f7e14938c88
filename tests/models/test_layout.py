"""The shape of models/: every module imports, and no import circle joins two of its modules or subpackages.

The import graph is read from each file's syntax tree (every import, at module level or inside a function),
so a circle is caught even where a lazy import would let it run.
"""

from __future__ import annotations

import ast
import functools
import importlib
from pathlib import Path

import pytest

MODELS = Path(__file__).resolve().parents[2] / "models"
SUBPACKAGES = ("anomaly", "cards", "cli", "data", "detect")


def module_files() -> dict[str, Path]:
    """Dotted name -> file, for every module of the ``models`` package (recipes are scripts, not modules)."""
    found = {}
    for path in sorted(MODELS.rglob("*.py")):
        parts = path.relative_to(MODELS.parent).with_suffix("").parts
        if "recipes" in parts:
            continue
        found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


def imported(path: Path, modules: set[str]) -> set[str]:
    """The ``models`` modules ``path`` imports (``from models.x import y`` counts ``models.x.y`` if a module)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                raise AssertionError(f"{path}: relative import; models/ uses absolute imports only")
            names.add(node.module or "")
            names |= {f"{node.module}.{alias.name}" for alias in node.names}
    return {n for n in names if n in modules}


@functools.cache
def import_graph() -> dict[str, set[str]]:
    files = module_files()
    return {name: imported(path, set(files)) - {name} for name, path in files.items()}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One circle of the graph as [a, b, ..., a], or None (depth-first search, white/grey/black)."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        stack.pop()
        state[node] = 2
        return None

    for start in sorted(graph):
        if start not in state and (cycle := visit(start)):
            return cycle
    return None


def package_graph(graph: dict[str, set[str]]) -> dict[str, set[str]]:
    """Edges between the subpackages (and top-level modules) of ``models``."""
    def top(name: str) -> str:
        return name.split(".")[1] if "." in name else name

    edges: dict[str, set[str]] = {}
    for src, dsts in graph.items():
        edges.setdefault(top(src), set()).update(top(d) for d in dsts if top(d) != top(src))
    return edges


def test_find_cycle_reports_a_circle_and_passes_a_tree() -> None:
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b", "c"}, "b": {"c"}, "c": set()}) is None


def test_no_import_cycle_between_models_modules() -> None:
    graph = import_graph()
    assert len(graph) > 40, sorted(graph)  # the walk found the package
    assert find_cycle(graph) is None, " -> ".join(find_cycle(graph) or [])


def test_subpackages_depend_one_way() -> None:
    """data <- detect <- anomaly <- cards <- cli: no subpackage imports one that imports it."""
    edges = package_graph(import_graph())
    assert set(SUBPACKAGES) <= set(edges)
    assert find_cycle(edges) is None, " -> ".join(find_cycle(edges) or [])


def test_package_inits_import_nothing_of_models() -> None:
    """Importing models.x.y runs models/x/__init__.py first: it stays a docstring so it cannot join a circle."""
    graph = import_graph()
    assert {name: sorted(deps) for name, deps in graph.items() if MODELS.joinpath(*name.split(".")[1:],
            "__init__.py").is_file() and deps} == {}


def test_no_flat_module_left_beside_the_subpackages() -> None:
    flat = sorted(p.name for p in MODELS.glob("*.py"))
    assert flat == ["__init__.py", "paths.py", "zoo_index.py"], flat


@pytest.mark.parametrize("name", sorted(module_files()))
def test_every_module_imports(name: str) -> None:
    assert importlib.import_module(name).__name__ == name
