"""The house's rules, read from the source: imports run downwards, no circles, small files.

Floors, bottom up: the engine; the library packages (io, batch, evaluation,
simzss_training, demo); the napari plugin; the command line. A module may import its
own floor and the floors below it, never one above. Module-level and function-level
imports both count: a circle that only works because an import hides in a function is
still a circle.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "napari_gem"
#: Floor of each top-level subpackage; the package's own ``__init__`` re-exports the engine.
FLOORS = {"engine": 0, "io": 1, "batch": 1, "evaluation": 1, "simzss_training": 1, "demo": 1,
          "plugin": 2, "cli": 3}
#: Source files over this many lines need a reason (data files are not source).
MAX_LINES = 600


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_modules(path: Path, modules: set[str]) -> set[str]:
    """The napari_gem modules ``path`` imports (resolved to modules that exist)."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            targets = [f"{base}.{alias.name}" for alias in node.names] + [base]
        else:
            continue
        for target in targets:
            while target and target not in modules:
                target = target.rpartition(".")[0]
            if target and target != name:
                found.add(target)
    return found


def import_graph() -> dict[str, set[str]]:
    paths = list(PACKAGE.rglob("*.py"))
    modules = {module_name(path) for path in paths}
    return {module_name(path): imported_modules(path, modules) for path in paths}


def floor(module: str) -> int | None:
    parts = module.split(".")
    return FLOORS.get(parts[1]) if len(parts) > 1 else None


def upward_imports(graph: dict[str, set[str]]) -> list[tuple[str, str]]:
    return sorted(
        (module, target) for module, targets in graph.items() for target in targets
        if floor(module) is not None and floor(target) is not None and floor(target) > floor(module)
        and not (module.startswith("napari_gem.cli") and target.startswith("napari_gem.cli"))
    )


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected groups of more than one module (Tarjan). A module's import of a
    package it lives in is not followed: Python has that package half-built by then."""
    def edges(module: str) -> set[str]:
        return {target for target in graph[module] if not module.startswith(target + ".")}

    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[list[str]] = []

    def visit(module: str) -> None:
        index[module] = low[module] = len(index)
        stack.append(module)
        on_stack.add(module)
        for target in edges(module):
            if target not in index:
                visit(target)
                low[module] = min(low[module], low[target])
            elif target in on_stack:
                low[module] = min(low[module], index[target])
        if low[module] == index[module]:
            group = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.append(member)
                if member == module:
                    break
            if len(group) > 1:
                groups.append(sorted(group))

    for module in graph:
        if module not in index:
            visit(module)
    return groups


def long_files() -> list[tuple[str, int]]:
    return sorted(
        (str(path.relative_to(PACKAGE)), count) for path in PACKAGE.rglob("*.py")
        if (count := len(path.read_text(encoding="utf-8").splitlines())) > MAX_LINES
    )


def test_no_import_runs_up_a_floor():
    assert upward_imports(import_graph()) == []


def test_no_import_circles():
    assert circles(import_graph()) == []


def test_no_source_file_is_over_600_lines():
    assert long_files() == []


@pytest.mark.parametrize("library", ["io", "batch", "evaluation", "simzss_training", "demo"])
def test_library_packages_export_functions_not_parsers(library):
    for path in (PACKAGE / library).rglob("*.py"):
        assert "argparse" not in path.read_text(encoding="utf-8"), path


def test_the_checks_see_a_circle_and_an_upward_import():
    graph = {"napari_gem.engine.a": {"napari_gem.engine.b"}, "napari_gem.engine.b": {"napari_gem.engine.a"},
             "napari_gem.io.c": {"napari_gem.plugin.d"}, "napari_gem.plugin.d": set()}
    assert circles(graph) == [["napari_gem.engine.a", "napari_gem.engine.b"]]
    assert upward_imports(graph) == [("napari_gem.io.c", "napari_gem.plugin.d")]
