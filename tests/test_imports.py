"""The import graph of ``viva`` (every import statement, function-level ones included, read with ``ast``): no
cycles between modules, and Ray only where processes are placed (``cluster/`` and the drivers)."""

from __future__ import annotations

import ast
from pathlib import Path

import viva

SRC = Path(viva.__file__).resolve().parent
# Modules allowed to import Ray: the placement layer and the drivers that start Ray processes.
RAY_MODULES = ("viva.cluster.", "viva.sft.ray_trainer", "viva.inference.server")


def _module_name(path: Path) -> str:
    rel = path.relative_to(SRC.parent).with_suffix("")
    parts = rel.parts[:-1] if rel.name == "__init__" else rel.parts
    return ".".join(parts)


def import_graph() -> tuple[dict[str, set[str]], dict[str, set[str]]]:
    """(module -> the viva modules it imports, module -> the top-level third-party packages it imports)."""
    files = {_module_name(p): p for p in SRC.rglob("*.py")}
    graph: dict[str, set[str]] = {}
    external: dict[str, set[str]] = {}
    for name, path in files.items():
        deps: set[str] = set()
        ext: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                if node.module.split(".")[0] != "viva":
                    ext.add(node.module.split(".")[0])
                    continue
                for alias in node.names:  # `from viva.pkg import submodule` depends on the submodule itself
                    sub = f"{node.module}.{alias.name}"
                    deps.add(sub if sub in files else node.module)
            elif isinstance(node, ast.Import):
                for alias in node.names:
                    (deps if alias.name.split(".")[0] == "viva" else ext).add(
                        alias.name if alias.name.startswith("viva") else alias.name.split(".")[0])
        graph[name] = {d for d in deps if d in files and d != name}
        external[name] = ext
    return graph, external


def find_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def test_cycle_finder_finds_a_cycle():
    assert find_cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert find_cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_cycles():
    graph, _ = import_graph()
    assert len(graph) > 50 and "viva.sft.trainer" in graph["viva.sft.recipe"]  # the walk sees function-level imports
    assert find_cycles(graph) == []


def test_ray_is_imported_only_where_processes_are_placed():
    _, external = import_graph()
    users = sorted(m for m, ext in external.items() if "ray" in ext)
    assert users and all(m.startswith(RAY_MODULES) for m in users), users
