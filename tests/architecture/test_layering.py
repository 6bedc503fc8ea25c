"""The layout of DESIGN.md, checked: no import cycles, the dependency direction (portal ->
tenants, tasks -> tenants; tenants imports neither), tables modules that import only
tables, no function-local imports in tenants/, short functions and thin actors."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LAYERS = ("portal", "tenants", "tasks")
MAX_FUNCTION_LINES = 60
MAX_ACTOR_LINES = 15


@dataclass(frozen=True)
class Import:
    module: str  # the importing module
    target: str  # what it imports (a module, or a package's submodule)
    line: int
    local: bool  # inside a function


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def sources(*layers: str) -> dict[str, Path]:
    return {module_name(p): p for layer in layers for p in sorted((ROOT / layer).rglob("*.py"))}


def trees(*layers: str) -> Iterator[tuple[str, ast.Module]]:
    for name, path in sources(*layers).items():
        yield name, ast.parse(path.read_text(), filename=str(path))


def imports() -> list[Import]:
    known = sources(*LAYERS)
    found: list[Import] = []
    for name, tree in trees(*LAYERS):
        top = {id(node) for node in tree.body}
        for node in ast.walk(tree):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                targets = [
                    f"{node.module}.{a.name}" if f"{node.module}.{a.name}" in known else node.module
                    for a in node.names
                ]
            for target in targets:
                found.append(Import(name, target, node.lineno, id(node) not in top))
    return found


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in edges.get(v, ()):
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
    return found


def test_no_import_cycles() -> None:
    known = sources(*LAYERS)
    edges: dict[str, set[str]] = {name: set() for name in known}
    for imp in imports():
        if imp.target in known and imp.target != imp.module:
            edges[imp.module].add(imp.target)
    found = cycles(edges)
    assert not found, "\n".join(" <-> ".join(c) for c in found)


@pytest.mark.parametrize(
    ("layer", "forbidden"),
    [
        ("tenants", ("portal", "tasks", "litestar", "httpx", "dramatiq")),
        ("tasks", ("portal",)),
    ],
)
def test_dependency_direction(layer: str, forbidden: tuple[str, ...]) -> None:
    wrong = [
        f"{imp.module}:{imp.line} imports {imp.target}"
        for imp in imports()
        if imp.module.split(".")[0] == layer and imp.target.split(".")[0] in forbidden
    ]
    assert not wrong, "\n".join(wrong)


def test_tables_modules_import_only_tables() -> None:
    allowed_shared = {"tenants", "tenants.db", "tenants.errors"}
    wrong = [
        f"{imp.module}:{imp.line} imports {imp.target}"
        for imp in imports()
        if imp.module.endswith(".tables")
        and imp.target.startswith("tenants")
        and not imp.target.endswith(".tables")
        and imp.target not in allowed_shared
    ]
    assert not wrong, "\n".join(wrong)


def test_no_function_local_imports_in_tenants() -> None:
    local = [
        f"{imp.module}:{imp.line} imports {imp.target}"
        for imp in imports()
        if imp.local and imp.module.startswith("tenants") and imp.target.startswith("tenants")
    ]
    assert not local, "\n".join(local)


def functions(layer: str) -> Iterator[tuple[str, ast.FunctionDef | ast.AsyncFunctionDef]]:
    for name, tree in trees(layer):
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                yield name, node


def length(node: ast.AST) -> int:
    return (node.end_lineno or node.lineno) - node.lineno + 1  # type: ignore[attr-defined]


def test_no_function_in_tenants_is_over_60_lines() -> None:
    long = [
        f"{module}.{fn.name}: {length(fn)} lines"
        for module, fn in functions("tenants")
        if length(fn) > MAX_FUNCTION_LINES
    ]
    assert not long, "\n".join(long)


def test_actors_are_thin() -> None:
    def is_actor(fn: ast.AST) -> bool:
        return any(
            "actor" in ast.unparse(d.func if isinstance(d, ast.Call) else d)
            for d in getattr(fn, "decorator_list", [])
        )

    fat = [
        f"{module}.{fn.name}: {length(fn)} lines"
        for module, fn in functions("tasks")
        if is_actor(fn) and length(fn) > MAX_ACTOR_LINES
    ]
    actors = [fn for _, fn in functions("tasks") if is_actor(fn)]
    assert actors, "no actors found: the check would prove nothing"
    assert not fat, "\n".join(fat)
