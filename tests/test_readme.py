"""The README's two commands are the ones CI and users run."""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _bash_blocks(text: str) -> list[str]:
    return [block.strip() for block in re.findall(r"```bash\n(.*?)```", text, flags=re.S)]


def test_ci_runs_the_readme_test_command_verbatim():
    launch, test_command = _bash_blocks((ROOT / "README.md").read_text())[:2]
    ci_lines = [line.strip() for line in (ROOT / ".ci" / "run").read_text().splitlines()]
    assert test_command in ci_lines
    assert "pytest" in test_command and "xvfb-run" in test_command
    assert launch.endswith("napari-gem")


def test_readme_links_point_at_files_that_exist():
    text = (ROOT / "README.md").read_text()
    for target in re.findall(r"\]\(([^)#]+)\)", text):
        if not target.startswith("http"):
            assert (ROOT / target).exists(), target



def _models_table():
    """``docs/models_table.py``, the script that writes the README's models table (by path)."""
    spec = importlib.util.spec_from_file_location("models_table", ROOT / "docs" / "models_table.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_readme_models_table_is_the_catalogue():
    """A family's new model must reach the README: ``python docs/models_table.py`` rewrites it."""
    table = _models_table().readme_table((ROOT / "README.md").read_text())
    assert table == _fresh_models_table(), "stale README table: run python docs/models_table.py"


def _fresh_models_table() -> str:
    """The table as a fresh interpreter writes it: the models other tests register for
    themselves (tiny SimZSS configs, toy families) are not the catalogue a user sees."""
    import napari_gem

    code = "import runpy, sys; print(runpy.run_path(sys.argv[1])['models_table'](), end='')"
    env = {**os.environ, "PYTHONPATH": str(Path(napari_gem.__file__).parents[1])}
    done = subprocess.run([sys.executable, "-c", code, str(ROOT / "docs" / "models_table.py")],
                          capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def test_the_models_table_script_rewrites_only_between_its_markers(tmp_path):
    script = _models_table()
    readme = tmp_path / "README.md"
    readme.write_text(f"# x\n\n{script.START}\nold\n{script.END}\nrest\n")
    script.write_readme_table(readme)
    assert readme.read_text() == f"# x\n\n{script.START}\n{script.models_table()}\n{script.END}\nrest\n"
    readme.write_text("# no markers\n")
    with pytest.raises(ValueError, match="no models-table markers"):
        script.write_readme_table(readme)
