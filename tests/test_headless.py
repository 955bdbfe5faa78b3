"""A bare ``pip install napari-gem`` is the headless engine and the command line.

The checks run in a fresh interpreter in which napari, every Qt binding, magicgui, superqt,
vispy and the ``[cluster]`` extra (dask, zarr, distributed) cannot be imported, as on a
machine where only the core dependencies are installed.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import napari_gem

#: What a bare install does not bring (the ``[napari]``, ``[pyqt6]`` and ``[cluster]`` extras).
NOT_INSTALLED = ("napari", "qtpy", "PyQt5", "PyQt6", "PySide2", "PySide6", "magicgui", "superqt",
                 "vispy", "dask", "distributed", "zarr")

#: Makes every module of NOT_INSTALLED unimportable, then runs the check given after it.
BLOCKER = textwrap.dedent(f"""
    import importlib.abc, sys

    class NotInstalled(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in {NOT_INSTALLED!r}:
                raise ModuleNotFoundError(f"No module named {{name!r}}", name=name)
            return None

    sys.meta_path.insert(0, NotInstalled())
""")


def run_headless(check: str, tmp_path) -> dict:
    """Run ``check`` (Python that prints one JSON line last) without the extras."""
    script = BLOCKER + textwrap.dedent(check) + textwrap.dedent(f"""
        leaked = sorted({{name.split(".")[0] for name in sys.modules}} & set({NOT_INSTALLED!r}))
        print(json.dumps({{**report, "leaked": leaked}}))
    """)
    # The same napari_gem as this test run's, wherever it is imported from.
    env = {**os.environ, "PYTHONPATH": str(Path(napari_gem.__file__).parents[1])}
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          cwd=tmp_path, env=env, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.slow
def test_engine_segments_without_napari_qt_or_dask(tmp_path):
    report = run_headless("""
        import json
        import numpy as np
        import napari_gem
        from napari_gem.demo import model as demo
        from napari_gem.demo.scenes import scene

        image, truth = scene(3, 192, concepts=["nucleus", "ring"])
        result = napari_gem.segment(image, ["nucleus", "ring"], model=demo.load_model(),
                                    options=demo.segment_options())
        report = {"masks": list(result.masks.shape), "heatmaps_finite":
                  bool(np.isfinite(result.heatmaps).all()), "semantic_labels":
                  sorted(int(v) for v in np.unique(result.semantic))}
    """, tmp_path)
    assert report["leaked"] == []
    assert report["masks"] == [2, 192, 192] and report["heatmaps_finite"]
    assert set(report["semantic_labels"]) <= {0, 1, 2}


@pytest.mark.slow
def test_command_line_without_napari_qt_or_dask(tmp_path):
    report = run_headless("""
        import contextlib, io, json
        from pathlib import Path
        from PIL import Image
        from napari_gem.cli.main import main
        from napari_gem.demo import model as demo
        from napari_gem.demo.scenes import scene

        Image.fromarray(scene(5, 160)[0]).save("scene.png")
        model = ["--model", demo.MODEL_NAME, "--pretrained", str(demo.WEIGHTS_PATH),
                 "--model-config", str(demo.CONFIG_PATH), "--input-size", str(demo.INPUT_SIZE),
                 "--device", "cpu", "--quiet"]
        segment_status = main(["segment", "scene.png", "-p", "nucleus", "-o", "out", *model])
        written = sorted(path.name for path in Path("out").iterdir())

        errors = {}
        for name, argv in {"launch": [], "out_of_core": [
                "segment", "scene.png", "-p", "nucleus", "-o", "big", "--out-of-core", "always",
                *model]}.items():
            stderr = io.StringIO()
            with contextlib.redirect_stderr(stderr):
                status = main(argv)
            errors[name] = [status, stderr.getvalue()]
        report = {"segment": segment_status, "written": written, "errors": errors}
    """, tmp_path)
    assert report["leaked"] == []
    assert report["segment"] == 0
    assert "scene_nucleus_mask.tif" in report["written"]
    assert any(name.endswith("_parameters.json") for name in report["written"])
    for name, extra in (("launch", "napari-gem[pyqt6]"), ("out_of_core", "napari-gem[cluster]")):
        status, stderr = report["errors"][name]
        assert status == 2, (name, stderr)
        lines = stderr.strip().splitlines()
        assert len(lines) == 1 and "Traceback" not in stderr, stderr
        assert lines[0].startswith("napari-gem: error: ") and extra in lines[0], lines[0]


def test_debug_flag_prints_the_traceback(capsys):
    from napari_gem.cli.main import main

    argv = ["segment", "no-such-image.png", "-p", "cat", "-o", "out", "--device", "cpu"]
    assert main(argv) == 2
    quiet = capsys.readouterr().err
    assert "Traceback" not in quiet and len(quiet.strip().splitlines()) == 1
    assert main(["--debug", *argv]) == 2
    loud = capsys.readouterr().err
    assert "Traceback (most recent call last)" in loud
    assert loud.strip().splitlines()[-1] == quiet.strip()
