"""An 8192 x 8192 RGB image runs in bounded memory (measured in a fresh process).

The peak is the process's own high-water mark (``VmHWM``). ``ru_maxrss`` would not do:
Linux keeps it across ``execve``, so a child of a large pytest process reports at least
the parent's resident size at the fork.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest

SCRIPT = textwrap.dedent(
    """
    import json, sys
    sys.path.insert(0, {tests!r})
    from pathlib import Path
    import numpy as np
    from conftest import register_tiny_model
    import napari_gem

    name = register_tiny_model(Path({config_dir!r}))
    gem = napari_gem.load_model(name, {checkpoint!r}, device="cpu")
    image = np.zeros((8192, 8192, 3), np.uint8)
    image[2000:6000, 1000:3000] = (200, 40, 40)

    def high_water_kib():
        status = Path("/proc/self/status").read_text().splitlines()
        return next(int(line.split()[1]) for line in status if line.startswith("VmHWM:"))

    before = high_water_kib()
    result = napari_gem.segment(image, ["red block", "background"], model=gem)
    peak = high_water_kib()
    print(json.dumps({{"tiled": result.parameters["tiled"], "windows": result.parameters["num_windows"],
                      "shape": list(result.heatmaps.shape), "peak_gib": peak / 2**20,
                      "before_gib": before / 2**20}}))
    """
)


@pytest.mark.slow
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self/status")
def test_an_8192_square_rgb_image_runs_tiled_within_3_gib(tiny_checkpoint, tmp_path):
    tests = str(__import__("pathlib").Path(__file__).resolve().parents[1])
    script = SCRIPT.format(tests=tests, config_dir=str(tmp_path), checkpoint=str(tiny_checkpoint))
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-2000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["tiled"] and report["windows"] > 100
    assert report["shape"] == [2, 8192, 8192]
    assert report["peak_gib"] < 3.0, report
