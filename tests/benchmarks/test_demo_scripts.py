"""The demo model's measurement scripts: the quality table and the object counts, as scripts."""

from __future__ import annotations

import os
import subprocess
import sys

from benchmark_scripts import BENCHMARKS, benchmark_module
from napari_gem.demo import VOCABULARY


def test_demo_eval_prints_the_quality_table_and_refuses_an_unknown_method(capsys):
    demo_eval = benchmark_module("demo_eval").main
    assert demo_eval(["--scenes", "1", "--methods", "gem,clip"]) == 0
    out = capsys.readouterr().out
    assert "| gem |" in out and "| clip |" in out and "presence AUROC" in out
    assert len(VOCABULARY) == 10
    assert demo_eval(["--scenes", "1", "--methods", "nonsense"]) == 2
    assert "benchmarks/demo_eval.py: error: unknown method 'nonsense'" in capsys.readouterr().err


def test_instances_eval_prints_the_count_table_with_the_cpu(capsys):
    instances_eval = benchmark_module("instances_eval").main
    assert instances_eval(["--scenes", "1"]) == 0
    out = capsys.readouterr().out
    assert "| mask | objects from | mean abs. count error |" in out and "CPU: " in out
    assert instances_eval(["--scenes", "0"]) == 2
    assert "--scenes must be at least 1" in capsys.readouterr().err


def test_a_benchmark_runs_as_a_script_from_the_repository_root():
    """``python benchmarks/<name>.py``: its folder is first on the path, napari_gem imported as installed."""
    environment = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
    done = subprocess.run([sys.executable, str(BENCHMARKS / "instances_eval.py"), "--help"],
                          capture_output=True, text=True, env=environment, cwd=BENCHMARKS.parent,
                          check=False, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("usage: benchmarks/instances_eval.py")
