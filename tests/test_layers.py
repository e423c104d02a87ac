"""The project's layers: every module of cotdistill/, worker/ and app/ imports only its own layer and
the layers below it, and no modules import each other directly or around a circle.

The order is written once, in LAYERS, lowest first. An edge is any import statement found by walking
a module's AST: at module level, inside a function, under `if TYPE_CHECKING`, all alike, for the
layer rule and for cycles (a lazy import still couples two modules; it only hides a cycle from
Python). `from pkg import name` is an edge to pkg.name when that is a module, else to pkg. A module's
implicit import of its parent packages is not an edge (Python runs a package's __init__ first, but
that is not a dependency the module chose).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("cotdistill", "worker", "app")

LAYERS: list[tuple[str, tuple[str, ...]]] = [
    ("base", ("cotdistill", "cotdistill.errors", "cotdistill.names", "cotdistill.paths", "cotdistill.files",
              "cotdistill.safe_load", "cotdistill.examples")),
    ("sequences", ("cotdistill.sequences",)),
    ("data", ("cotdistill.data", "cotdistill.fingerprint")),
    ("config", ("cotdistill.config",)),
    ("students", ("cotdistill.students",)),
    ("stats", ("cotdistill.stats",)),
    ("train", ("cotdistill.train",)),
    ("evaluate", ("cotdistill.evaluate",)),
    ("attribution", ("cotdistill.attribution",)),
    ("teachers", ("cotdistill.teachers",)),
    ("report", ("cotdistill.report",)),
    ("run", ("cotdistill.run", "cotdistill.preview", "cotdistill.estimate", "cotdistill.throughput")),
    ("studies", ("cotdistill.studies",)),
    ("cli", ("cotdistill.cli",)),
    ("worker", ("worker",)),
    ("app", ("app",)),
]
"""Lowest first. A module belongs to the layer naming it or the package it is in ("cotdistill" names
the package root alone); it may import its own layer and the layers before it."""


def module_files(root: Path = ROOT) -> dict[str, Path]:
    """Dotted module name -> file, for every module of the project's packages."""
    out = {}
    for package in PACKAGES:
        for path in sorted((root / package).rglob("*.py")):
            parts = list(path.relative_to(root).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            out[".".join(parts)] = path
    return out


def _known(name: str, modules) -> str | None:
    """The longest prefix of `name` that is a module of the project, None outside it."""
    parts = name.split(".")
    for i in range(len(parts), 0, -1):
        if ".".join(parts[:i]) in modules:
            return ".".join(parts[:i])
    return None


def imports_of(module: str, source: str, modules, is_package: bool = False) -> set[str]:
    """The project modules that `module` imports anywhere in `source`."""
    out = set()
    for node in ast.walk(ast.parse(source)):
        targets = []
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                here = module.split(".") if is_package else module.split(".")[:-1]
                here = here[:len(here) - (node.level - 1)]
                base = ".".join(here + ([node.module] if node.module else []))
            for a in node.names:
                full = f"{base}.{a.name}"
                targets.append(full if full in modules else base)
        for target in targets:
            found = _known(target, modules)
            if found is not None and found != module:
                out.add(found)
    return out


def import_edges(root: Path = ROOT) -> dict[str, set[str]]:
    files = module_files(root)
    return {m: imports_of(m, p.read_text(encoding="utf-8"), files, p.name == "__init__.py")
            for m, p in files.items()}


def layer_of(module: str, layers=LAYERS) -> int | None:
    """Index in `layers` of the entry naming the module or its closest package; None if none does."""
    best, best_len = None, -1
    for i, (_, names) in enumerate(layers):
        for name in names:
            covers = module == name or (module.startswith(name + ".") and name != "cotdistill")
            if covers and len(name) > best_len:
                best, best_len = i, len(name)
    return best


def layer_problems(edges: dict[str, set[str]], layers=LAYERS) -> list[str]:
    """One line per module without a layer and per import of a layer above the importer's."""
    problems = []
    for module in sorted(edges):
        mine = layer_of(module, layers)
        if mine is None:
            problems.append(f"{module}: in no layer; add it to LAYERS")
            continue
        for target in sorted(edges[module]):
            theirs = layer_of(target, layers)
            if theirs is not None and theirs > mine:
                problems.append(f"{module} ({layers[mine][0]}) imports {target} ({layers[theirs][0]}), a layer above")
    return problems


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan), each sorted."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []
    counter = [0]

    def visit(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in sorted(edges.get(v, ())):
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
                found.append(sorted(component))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return sorted(found)


@pytest.fixture(scope="module")
def edges():
    return import_edges()


def test_every_module_imports_only_its_layer_and_below(edges):
    assert layer_problems(edges) == []


def test_no_import_cycle_anywhere(edges):
    assert cycles(edges) == []


def test_the_walk_sees_the_project(edges):
    # the walk finds real edges of both kinds: a module-level one and one inside a function
    assert "cotdistill.config" in edges["cotdistill.students.loading"]
    assert "cotdistill.students.logits" in edges["cotdistill.students.loading"]     # inside load_student
    assert "worker.reconcile" in edges["worker.api.jobs"] and len(edges) > 100


def test_an_upward_import_is_caught():
    layers = [("low", ("pkg.a",)), ("high", ("pkg.b",))]
    assert layer_problems({"pkg.a": {"pkg.b"}, "pkg.b": set()}, layers) == [
        "pkg.a (low) imports pkg.b (high), a layer above"]
    assert layer_problems({"pkg.a": set(), "pkg.b": {"pkg.a"}}, layers) == []
    assert layer_problems({"pkg.c": set()}, layers) == ["pkg.c: in no layer; add it to LAYERS"]


def test_a_function_level_import_is_an_edge():
    files = {"pkg.a", "pkg.b", "pkg"}
    source = "import os\n\ndef f():\n    from pkg import b\n    return b\n"
    assert imports_of("pkg.a", source, files) == {"pkg.b"}
    assert layer_problems({"pkg.a": imports_of("pkg.a", source, files), "pkg.b": set()},
                          [("low", ("pkg.a",)), ("high", ("pkg.b",))]) != []


def test_a_cycle_is_caught():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []
