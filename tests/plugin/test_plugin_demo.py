"""The offline first run: the generated micrograph sample and the demo model in the widget."""

from __future__ import annotations

import numpy as np
import pytest
from npe2 import PluginManifest
from plugin_helpers import run_and_wait

from napari_gem.demo import DISPLAY_NAME, MODEL_NAME, VOCABULARY


def test_generated_micrograph_is_a_sample_of_the_manifest():
    manifest = PluginManifest.from_distribution("napari-gem")
    assert "demo_micrograph" in {sample.key for sample in manifest.contributions.sample_data}
    from napari_gem.plugin.samples import demo_micrograph

    [(data, meta, kind)] = demo_micrograph()
    assert kind == "image" and meta["rgb"] and data.dtype == np.uint8 and data.ndim == 3
    prompts = meta["metadata"]["napari_gem_sample"]["suggested_prompts"].split(", ")
    assert prompts and set(prompts) <= set(VOCABULARY)


@pytest.mark.gui
def test_demo_launch_opens_the_micrograph_with_the_demo_model_and_prompts(
    qtbot, make_napari_viewer, monkeypatch
):
    import napari

    from napari_gem.plugin.launch import launch_viewer

    # napari's fixture makes (and cleans up) the viewer that launch_viewer asks for.
    monkeypatch.setattr(napari, "Viewer", lambda **kwargs: make_napari_viewer(**kwargs))
    viewer = launch_viewer(demo=True)
    assert [layer.name for layer in viewer.layers] == ["demo micrograph"]
    widget = viewer.window.dock_widgets["Segment by text (napari-gem)"]
    assert widget.model.value == MODEL_NAME
    assert widget.model.native.currentText() == DISPLAY_NAME  # not mistaken for a general CLIP
    assert "demo" in DISPLAY_NAME and "micrograph" in DISPLAY_NAME
    assert widget.prompts.value and set(widget.prompts.value.split(", ")) <= set(VOCABULARY)
    spec = widget.model_spec()
    assert spec.name == MODEL_NAME and spec.pretrained.endswith(".pt")
    assert spec.method == "gem" and dict(spec.method_options)["depth"] == 3
    assert widget.input_size.value == 192
    widget.device.value = "cpu"
    run_and_wait(qtbot, widget)
    first = widget.prompts.value.split(", ")[0]
    heat = viewer.layers[f"{first} heatmap (demo micrograph)"]
    assert heat.data.shape == viewer.layers["demo micrograph"].data.shape[:2]
    assert heat.metadata["napari_gem"]["parameters"]["model"]["model"] == MODEL_NAME


@pytest.mark.gui
def test_demo_model_is_listed_beside_the_general_models(viewer):
    _, widget = viewer.window.add_plugin_dock_widget("napari-gem", "Segment by text")
    labels = [widget.model.native.itemText(i) for i in range(widget.model.native.count())]
    assert DISPLAY_NAME in labels and "ViT-B-16" in labels
    widget.model.value = MODEL_NAME
    assert widget.depth.value == 3  # GEM's paper depth (7) does not fit its 4 blocks
