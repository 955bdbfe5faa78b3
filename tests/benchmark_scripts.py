"""The repository's ``benchmarks/`` scripts, imported by path: they are not in the installed package.

The scripts import each other as top-level modules (``python benchmarks/refine_eval.py``
puts its own folder first on the path), so the folder goes on the path the same way here.
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path
from types import ModuleType

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


def benchmark_module(name: str) -> ModuleType:
    """The module ``benchmarks/<name>.py``."""
    if str(BENCHMARKS) not in sys.path:
        sys.path.insert(0, str(BENCHMARKS))
    return importlib.import_module(name)
