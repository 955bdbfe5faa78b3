"""An 8192 x 8192 RGB image runs in bounded memory (measured in a fresh process)."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest

SCRIPT = textwrap.dedent(
    """
    import json, resource, sys
    sys.path.insert(0, {tests!r})
    from pathlib import Path
    import numpy as np
    from conftest import register_tiny_model
    import napari_gem

    name = register_tiny_model(Path({config_dir!r}))
    gem = napari_gem.load_model(name, {checkpoint!r}, device="cpu")
    image = np.zeros((8192, 8192, 3), np.uint8)
    image[2000:6000, 1000:3000] = (200, 40, 40)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    result = napari_gem.segment(image, ["red block", "background"], model=gem)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({{"tiled": result.parameters["tiled"], "windows": result.parameters["num_windows"],
                      "shape": list(result.heatmaps.shape), "peak_gib": peak / 2**20,
                      "before_gib": before / 2**20}}))
    """
)


@pytest.mark.slow
def test_an_8192_square_rgb_image_runs_tiled_within_3_gib(tiny_checkpoint, tmp_path):
    tests = str(__import__("pathlib").Path(__file__).resolve().parents[1])
    script = SCRIPT.format(tests=tests, config_dir=str(tmp_path), checkpoint=str(tiny_checkpoint))
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-2000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["tiled"] and report["windows"] > 100
    assert report["shape"] == [2, 8192, 8192]
    assert report["peak_gib"] < 3.0, report
