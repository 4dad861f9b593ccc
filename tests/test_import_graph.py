"""The dependency graph the layers contract cannot see whole: no cycle between any two modules (imports inside
functions count), and every import left inside a function says why."""

from __future__ import annotations

import ast
import sys

import grimp

from tests.conftest import ROOT


def _cycles(graph) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(module: str) -> None:
        index[module] = low[module] = len(index)
        stack.append(module)
        on_stack.add(module)
        for imported in graph.find_modules_directly_imported_by(module):
            if imported not in index:
                visit(imported)
                low[module] = min(low[module], low[imported])
            elif imported in on_stack:
                low[module] = min(low[module], index[imported])
        if low[module] == index[module]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == module:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for module in sorted(graph.modules):
        if module not in index:
            visit(module)
    return found


def test_no_module_cycles():
    sys.path.insert(0, str(ROOT))
    graph = grimp.build_graph("apps", "cbplatform")
    assert graph.direct_import_exists(importer="apps.gateway.apps", imported="apps.gateway.app")  # counts in-function
    assert _cycles(graph) == []


def test_imports_inside_functions_say_why():
    unexplained = []
    for path in (ROOT / "apps").rglob("*.py"):
        if "migrations" in path.parts:
            continue
        source = path.read_text()
        lines = source.splitlines()
        for node in ast.walk(ast.parse(source)):
            if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                continue
            for inner in ast.walk(node):
                if isinstance(inner, ast.ImportFrom) and (
                        inner.level or (inner.module or "").startswith(("apps", "cbplatform"))):
                    first = inner.lineno - 1
                    nearby = lines[max(0, first - 3):first + 1]
                    if not any("#" in line for line in nearby):
                        unexplained.append(f"{path.relative_to(ROOT)}:{inner.lineno}")
    assert unexplained == []
