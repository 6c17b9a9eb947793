"""The import graph of ``viva`` (every import statement, function-level ones included, read with ``ast``): no
cycles between modules, layers imported only downwards, and Ray only where processes are placed (``cluster/`` and
the drivers)."""

from __future__ import annotations

import ast
from pathlib import Path

import viva

SRC = Path(viva.__file__).resolve().parent
# Modules allowed to import Ray: the placement layer and the drivers that start Ray processes.
RAY_MODULES = ("viva.cluster.", "viva.sft.ray_trainer", "viva.inference.server")
# The layers, lowest first (docs/architecture.md). A module imports its own unit and lower layers only: never a
# layer above, never a sibling unit of its own layer. A unit is the longest matching dotted prefix.
LAYERS = [
    ("viva", "viva.config", "viva.data.sample"),  # the package root, typed configs, the prompt record
    ("viva.records", "viva.training", "viva.cluster"),  # cross-process records, shared training infra, placement
    ("viva.data", "viva.samplers"),  # datasets and media I/O; the denoising steps
    ("viva.models",),  # the editor: DiT, VLM, codecs, LoRA, forward backends
    ("viva.rewards", "viva.rollout", "viva.learner"),  # the roles
    ("viva.grpo", "viva.sft", "viva.inference"),  # the recipes and services
]


def _module_name(path: Path) -> str:
    rel = path.relative_to(SRC.parent).with_suffix("")
    parts = rel.parts[:-1] if rel.name == "__init__" else rel.parts
    return ".".join(parts)


def _entry_point_imports(tree: ast.Module) -> set[ast.AST]:
    """Import statements inside a top-level ``def main``: a command's entry point may wire any layer."""
    mains = [n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "main"]
    return {n for m in mains for n in ast.walk(m) if isinstance(n, (ast.Import, ast.ImportFrom))}


def is_entry_point(module: str) -> bool:
    """CLI modules (``viva.cli``, ``viva.config_cli``, ``*.cli``) and recipes' command modules (``*.recipe``)."""
    return module in ("viva.cli", "viva.config_cli") or module.rsplit(".", 1)[-1] in ("cli", "recipe")


def import_graph(skip_entry_points: bool = False) -> tuple[dict[str, set[str]], dict[str, set[str]]]:
    """(module -> the viva modules it imports, module -> the top-level third-party packages it imports);
    ``skip_entry_points`` leaves out the imports of `is_entry_point` modules and of top-level ``main`` functions."""
    files = {_module_name(p): p for p in SRC.rglob("*.py")}
    graph: dict[str, set[str]] = {}
    external: dict[str, set[str]] = {}
    for name, path in files.items():
        deps: set[str] = set()
        ext: set[str] = set()
        tree = ast.parse(path.read_text(), str(path))
        skipped = _entry_point_imports(tree) if skip_entry_points else set()
        if skip_entry_points and is_entry_point(name):
            graph[name], external[name] = set(), set()
            continue
        for node in ast.walk(tree):
            if node in skipped:
                continue
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


def unit_of(module: str, layers: list[tuple[str, ...]]) -> tuple[int, str] | None:
    """(layer index, unit) of a module: its longest matching unit prefix; None when no layer holds it."""
    best = None
    for rank, units in enumerate(layers):
        for unit in units:
            if (module == unit or module.startswith(unit + ".")) and (best is None or len(unit) > len(best[1])):
                best = (rank, unit)
    return best


def layer_violations(graph: dict[str, set[str]], layers: list[tuple[str, ...]]) -> list[str]:
    """Every import that goes up a layer or sideways to a sibling unit, and every module no layer holds."""
    out = []
    for module in sorted(graph):
        src = unit_of(module, layers)
        if src is None:
            out.append(f"{module}: in no layer")
            continue
        for dep in sorted(graph[module]):
            dst = unit_of(dep, layers)
            if dst is None or dst[1] == src[1] or dst[0] < src[0]:
                continue  # unranked targets are reported as modules; same unit; a lower layer
            how = "above" if dst[0] > src[0] else "a sibling of"
            out.append(f"{module} -> {dep}: {dst[1]} is {how} {src[1]}")
    return out


def test_layer_checker_finds_upward_and_sideways_imports():
    layers = [("a",), ("b", "c"), ("d",)]
    graph = {"a.x": {"b.y"}, "b.y": {"a.x", "c.z", "b.w"}, "b.w": set(), "c.z": set(), "d.u": {"a.x", "c.z"},
             "e.v": set()}
    assert layer_violations(graph, layers) == ["a.x -> b.y: b is above a", "b.y -> c.z: c is a sibling of b",
                                               "e.v: in no layer"]
    assert unit_of("a.sub.mod", [("a",), ("a.sub",)]) == (1, "a.sub")  # the longest prefix decides
    assert layer_violations({"d.u": {"a.x"}, "a.x": set()}, layers) == []


def test_layers_are_imported_only_downwards():
    graph, _ = import_graph(skip_entry_points=True)
    assert graph["viva.rewards.cli"] == set() and "viva.grpo.driver" in graph  # CLI modules may wire any layer
    assert layer_violations(graph, LAYERS) == []


def test_records_is_a_leaf():
    graph, external = import_graph()
    assert graph["viva.records"] == {"viva.data.sample"} and graph["viva.data.sample"] == set()
    assert external["viva.records"] <= {"__future__", "hashlib", "dataclasses", "typing", "numpy", "torch"}


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
