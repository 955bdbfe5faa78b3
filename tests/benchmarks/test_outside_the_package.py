"""The experiments live beside the package, not in it: scripts that import napari_gem, never the reverse."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from benchmark_scripts import BENCHMARKS, benchmark_module

SRC = Path(__file__).resolve().parents[2] / "src" / "napari_gem"
SCRIPTS = ("bench", "train_demo", "demo_eval", "refine_eval", "instances_eval")


def _absolute_imports(path: Path) -> list[str]:
    names = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.append(node.module)
    return names


def test_the_package_imports_no_benchmark_module():
    benchmark_modules = {path.stem for path in BENCHMARKS.glob("*.py")} | {"benchmarks"}
    offending = [(str(path.relative_to(SRC)), name) for path in SRC.rglob("*.py")
                 for name in _absolute_imports(path) if name.split(".")[0] in benchmark_modules]
    assert offending == []


@pytest.mark.parametrize("name", SCRIPTS)
def test_every_experiment_is_a_script_with_its_own_command_line(name):
    script = benchmark_module(name)
    assert (BENCHMARKS / f"{name}.py").read_text().rstrip().endswith('sys.exit(main())')
    assert script.build_parser().prog == f"benchmarks/{name}.py"
    with pytest.raises(SystemExit) as done:
        script.main(["--help"])
    assert done.value.code == 0
