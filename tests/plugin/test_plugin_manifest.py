"""npe2 wiring: the manifest ships with the package, validates, and its samples load offline."""

from __future__ import annotations

import subprocess
import sys
from importlib.resources import files
from pathlib import Path

import numpy as np
import pytest
from npe2 import PluginManifest

ROOT = Path(__file__).resolve().parents[2]


def test_manifest_is_shipped_valid_and_complete():
    shipped = files("napari_gem") / "napari.yaml"
    assert shipped.read_text() == (ROOT / "napari.yaml").read_text()
    manifest = PluginManifest.from_distribution("napari-gem")  # validates as npe2 does
    contributions = manifest.contributions
    assert [w.display_name for w in contributions.widgets] == ["Segment by text"]
    assert contributions.readers and contributions.writers
    keys = {sample.key for sample in contributions.sample_data}
    assert {"chelsea", "astronaut", "coffee", "rocket", "immunohistochemistry", "retina",
            "cell", "ihc_channels"} <= keys
    for command in contributions.commands:  # every python_name resolves
        module, _, attribute = command.python_name.partition(":")
        assert callable(getattr(__import__(module, fromlist=[attribute]), attribute))


@pytest.mark.parametrize("key", ["chelsea", "immunohistochemistry", "retina", "cell", "coins"])
def test_samples_load_offline(key):
    from napari_gem.plugin import samples

    [(data, meta, kind)] = getattr(samples, key)()
    assert kind == "image" and meta["name"] == key and data.size > 0
    assert meta["rgb"] == (data.ndim == 3)


def test_multichannel_sample():
    from napari_gem.plugin.samples import ihc_channels

    [(data, meta, _)] = ihc_channels()
    assert data.shape[0] == 3 and data.dtype == np.float32
    assert np.isfinite(data).all() and all(channel.max() > channel.min() for channel in data)
    assert meta["axis_labels"] == ("c", "y", "x")


@pytest.mark.gui
def test_launch_viewer_docks_the_widget_with_a_sample(qtbot):
    from napari_gem.plugin.launch import launch_viewer

    viewer = launch_viewer("coins")
    try:
        assert [layer.name for layer in viewer.layers] == ["coins"]
        widget = viewer.window.dock_widgets["Segment by text (napari-gem)"]
        assert widget.image_layer.value is viewer.layers["coins"]
        assert widget.prompts.value == "coin"
    finally:
        viewer.close()
    with pytest.raises(ValueError, match="unknown sample"):
        launch_viewer("nonexistent")


OPENGL_FIRST = """
import napari
viewer = napari.Viewer(show=False)  # napari's OpenGL canvas first, as in a running napari
_, widget = viewer.window.add_plugin_dock_widget("napari-gem", "Segment by text")
import open_clip
print("models:", len(widget.model.choices))
viewer.close()
"""


@pytest.mark.gui
@pytest.mark.slow
def test_widget_opens_in_a_napari_whose_opengl_came_first():
    # A fresh process: with software OpenGL (Mesa's LLVM), importing open_clip after the
    # canvas exists used to crash with a segmentation fault (triton's LLVM clashes).
    done = subprocess.run([sys.executable, "-c", OPENGL_FIRST], capture_output=True, text=True,
                          timeout=180)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "models:" in done.stdout
