"""The dock widget on 2D images: runs, layers, re-runs, live thresholds, settings."""

from __future__ import annotations

import numpy as np
import pytest
from plugin_helpers import configure_tiny, run_and_wait
from qtpy.QtCore import Qt
from skimage.data import camera, chelsea

from napari_gem.plugin.layers import META, is_edited

pytestmark = pytest.mark.gui


def _outputs(viewer):
    return [layer for layer in viewer.layers if META in layer.metadata]


def test_rgb_run_makes_overlaid_heatmap_and_mask_layers(viewer, widget, qtbot):
    source = viewer.add_image(chelsea(), name="chelsea", scale=(0.5, 0.5), translate=(3, -2),
                              units=("um", "um"))
    widget.image_layer.value = source
    widget.prompts.value = "cat\near, cat"  # lines and commas; repeats dropped
    run_and_wait(qtbot, widget)

    names = [layer.name for layer in _outputs(viewer)]
    assert names == ["cat heatmap (chelsea)", "ear heatmap (chelsea)",
                     "cat mask (chelsea)", "ear mask (chelsea)"]
    heat, mask = viewer.layers["cat heatmap (chelsea)"], viewer.layers["cat mask (chelsea)"]
    for layer in (heat, mask):
        assert layer.data.shape == (300, 451)
        np.testing.assert_allclose(layer.scale, source.scale)
        np.testing.assert_allclose(layer.translate, source.translate)
        assert tuple(str(u) for u in layer.units) == ("micrometer", "micrometer")
    assert heat.data.dtype == np.float32 and 0 <= heat.data.min() <= heat.data.max() <= 1
    assert heat.colormap.name == "gem-inferno" and tuple(heat.contrast_limits) == (0.0, 1.0)
    alpha = heat.colormap.colors[:, 3]
    assert alpha[0] == 0 and alpha[-1] == 1 and np.all(np.diff(alpha) >= 0)
    parameters = heat.metadata[META]["parameters"]
    assert parameters["prompts"] == ["cat", "ear"]
    assert parameters["model"]["model"] == "napari-gem-tiny"
    assert parameters["options"]["input_size"] == 64
    assert parameters["source"]["layer"] == "chelsea"
    # The mask is the engine's thresholded heatmap at the threshold it reports.
    threshold = heat.metadata[META]["planes"][""]["threshold"]
    np.testing.assert_array_equal(mask.data.astype(bool), heat.data >= threshold)
    # Presence of each prompt is visible in the widget.
    table = widget.results
    assert table.rowCount() == 2
    assert table.item(0, 0).text() == "cat"
    assert 0.0 <= float(table.item(0, 1).text()) <= 1.0


def test_new_prompt_reuses_the_encoding_and_updates_layers_in_place(viewer, widget, qtbot):
    viewer.add_image(camera()[::2, ::2], name="camera")
    widget.prompts.value = "man"
    run_and_wait(qtbot, widget)
    heat = viewer.layers["man heatmap (camera)"]
    before = widget.controller.encoded.hits
    heat.data = heat.data.copy()  # outputs changing must not invalidate the source's encoding

    widget.prompts.value = "man, sky"
    run_and_wait(qtbot, widget)
    assert widget.controller.encoded.hits == before + 1  # no second pass through the model
    assert "encoding reused" in widget.status.value
    assert viewer.layers["man heatmap (camera)"] is heat  # updated in place
    assert len(_outputs(viewer)) == 4

    viewer.layers["camera"].data = viewer.layers["camera"].data[::-1].copy()
    widget.prompts.value = "man"
    run_and_wait(qtbot, widget)
    assert "encoding reused" not in widget.status.value  # new pixels, new encoding


def test_painted_mask_is_never_overwritten(viewer, widget, qtbot, notes):
    viewer.add_image(camera()[::2, ::2], name="camera")
    widget.prompts.value = "man"
    run_and_wait(qtbot, widget)
    mask = viewer.layers["man mask (camera)"]
    empty = np.argwhere(mask.data == 0)[0]
    mask.paint(tuple(empty), 1)  # what the brush does
    edited = mask.data.copy()
    assert is_edited(mask)

    widget.auto_threshold.value = False
    widget.threshold.value = 0.0
    widget.redraw()  # the live threshold leaves the painted mask alone ...
    np.testing.assert_array_equal(mask.data, edited)
    run_and_wait(qtbot, widget)  # ... and a re-run puts its result next to it
    np.testing.assert_array_equal(mask.data, edited)
    masks = [x for x in _outputs(viewer) if x.metadata[META]["role"] == "mask"]
    assert len(masks) == 2 and masks[1].data.all()  # threshold 0: everything
    assert any("edited by hand" in message for message in notes("info"))


def test_threshold_and_mask_mode_redraw_live_from_stored_heatmaps(viewer, widget, qtbot):
    viewer.add_image(chelsea(), name="chelsea")
    widget.prompts.value = "cat, ear"
    run_and_wait(qtbot, widget)
    heat = viewer.layers["cat heatmap (chelsea)"]
    mask = viewer.layers["cat mask (chelsea)"]
    hits, misses = widget.controller.encoded.hits, widget.controller.encoded.misses

    widget.auto_threshold.value = False
    widget.threshold.value = 0.8
    qtbot.waitUntil(lambda: widget.results.item(0, 2).text() == "0.80", timeout=3000)
    np.testing.assert_array_equal(mask.data.astype(bool), heat.data >= 0.8)
    assert viewer.layers["cat mask (chelsea)"] is mask

    widget.mask_mode.value = "instances"
    qtbot.waitUntil(lambda: "cat instances (chelsea)" in viewer.layers, timeout=3000)
    instances = viewer.layers["cat instances (chelsea)"]
    assert instances.data.max() >= 1
    np.testing.assert_array_equal(instances.data > 0, heat.data >= 0.8)

    widget.mask_mode.value = "semantic"
    qtbot.waitUntil(lambda: "semantic labels (chelsea)" in viewer.layers, timeout=3000)
    semantic = viewer.layers["semantic labels (chelsea)"]
    assert set(np.unique(semantic.data)) <= {0, 1, 2}
    assert "cat instances (chelsea)" not in viewer.layers  # unedited stale masks go
    assert list(semantic.features["prompt"]) == ["background", "cat", "ear"]
    # No model work: the encoding cache was not even asked.
    assert (widget.controller.encoded.hits, widget.controller.encoded.misses) == (hits, misses)


def test_ctrl_enter_in_the_prompt_box_runs(viewer, widget, qtbot):
    viewer.add_image(camera()[::4, ::4], name="camera")
    widget.prompts.value = "man"
    qtbot.keyClick(widget.prompts.native, Qt.Key.Key_Return, Qt.KeyboardModifier.ControlModifier)
    worker = widget.controller.worker
    assert worker is not None
    with qtbot.waitSignal(worker.finished, timeout=60_000):
        pass
    qtbot.waitUntil(lambda: "man mask (camera)" in viewer.layers, timeout=5000)
    assert widget.prompts.value == "man"  # the key press did not add a line


def test_layer_picker_follows_added_removed_and_renamed_layers(viewer, widget):
    assert widget.image_layer.value is None
    first = viewer.add_image(np.zeros((16, 16)), name="first")
    assert widget.image_layer.value is first
    second = viewer.add_image(np.zeros((16, 16)), name="second")
    viewer.add_labels(np.zeros((16, 16), int), name="labels")
    assert [layer.name for layer in widget.image_layer.choices] == ["first", "second"]
    first.name = "renamed"
    assert widget.image_layer.native.currentText() == "renamed"
    viewer.layers.remove(first)
    assert widget.image_layer.value is second


def test_settings_are_remembered(make_napari_viewer, tiny_model_name, tiny_checkpoint):
    viewer = make_napari_viewer()
    _, first = viewer.window.add_plugin_dock_widget("napari-gem", "Segment by text")
    configure_tiny(first, tiny_model_name, tiny_checkpoint)
    first.prompts.value = "nucleus\nmembrane"
    first.auto_threshold.value = False
    first.threshold.value = 0.3
    first.mask_mode.value = "instances"
    first.tiling.value = "always"
    first.save_settings()

    other = make_napari_viewer()
    _, second = other.window.add_plugin_dock_widget("napari-gem", "Segment by text")
    assert second.prompts.value == "nucleus\nmembrane"
    assert second.model.value == tiny_model_name
    assert second.weights.value == "file"
    assert str(second.checkpoint.value) == str(tiny_checkpoint)
    assert second.threshold.value == pytest.approx(0.3)
    assert not second.auto_threshold.value
    assert (second.mask_mode.value, second.tiling.value) == ("instances", "always")
    assert not second.advanced_section.isExpanded()  # Advanced starts collapsed


def test_precision_tooltip_says_whether_bf16_pays_on_this_cpu(widget, monkeypatch):
    from napari_gem.plugin.panels import model as widget_module

    assert widget.precision.tooltip == widget_module.precision_tooltip()
    monkeypatch.setattr(widget_module, "has_native", lambda dtype: True)
    assert "bf16 is native on this CPU: about 2x faster than fp32" in widget_module.precision_tooltip()
    monkeypatch.setattr(widget_module, "has_native", lambda dtype: False)
    assert "bf16 is not native on this CPU: slower than fp32 here" in widget_module.precision_tooltip()
