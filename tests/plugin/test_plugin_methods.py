"""Choosing a method in the widget: picker, its options, caching, metadata, PAMR."""

from __future__ import annotations

import numpy as np
import pytest
from plugin_helpers import run_and_wait
from skimage.data import camera

from napari_gem.plugin.layers import META

pytestmark = pytest.mark.gui


def _shown(field) -> bool:
    """Whether the widget would show the field (the test window itself is not on screen)."""
    return not field.native.isHidden()


def test_the_method_picker_shows_only_the_chosen_methods_options(widget):
    assert widget.method.value == "gem"
    assert widget.method.choices == ("gem", "clip", "maskclip", "maskclip-nores", "sclip",
                                     "clearclip", "naclip", "gclip", "proxyclip")
    assert _shown(widget.depth) and not _shown(widget.sigma) and not _shown(widget.fusion)
    widget.method.value = "naclip"
    assert _shown(widget.sigma) and not _shown(widget.depth) and not _shown(widget.temperature)
    assert "NACLIP" in widget.method.tooltip
    widget.method.value = "gclip"
    assert _shown(widget.fusion) and _shown(widget.global_blocks) and not _shown(widget.sigma)
    assert "reconstructed" in widget.method.tooltip.lower()
    assert "GCLIP (reconstructed)" in widget.method.native.currentText()
    widget.method.value = "clearclip"
    assert not any(_shown(f) for f in (widget.depth, widget.sigma, widget.fusion, widget.cs_blocks))


def test_switching_method_re_encodes_and_records_the_method(viewer, widget, qtbot):
    viewer.add_image(camera()[::4, ::4], name="camera")
    widget.prompts.value = "man"
    run_and_wait(qtbot, widget)
    hits = widget.controller.encoded.hits
    widget.method.value = "naclip"
    widget.sigma.value = 3.0
    run_and_wait(qtbot, widget)
    assert widget.controller.encoded.hits == hits  # another method never reuses GEM's features
    assert "encoding reused" not in widget.status.value
    heat = viewer.layers["man heatmap (camera)"]
    model = heat.metadata[META]["parameters"]["model"]
    assert model["method"] == "naclip" and model["method_options"] == {"sigma": 3.0}
    run_and_wait(qtbot, widget)
    assert "encoding reused" in widget.status.value  # same method, same options: reused


def test_pamr_checkbox_refines_the_heatmaps(viewer, widget, qtbot):
    viewer.add_image(camera()[::4, ::4], name="camera")
    widget.prompts.value = "man"
    run_and_wait(qtbot, widget)
    plain = viewer.layers["man heatmap (camera)"].data.copy()
    widget.refine.value = True
    widget.pamr_steps.value = 3
    widget.pamr_dilations.value = "2, 4"
    run_and_wait(qtbot, widget)
    heat = viewer.layers["man heatmap (camera)"]
    assert not np.allclose(heat.data, plain)
    options = heat.metadata[META]["parameters"]["options"]
    assert options["refine"] == "pamr" and options["pamr_dilations"] == [2, 4]


def test_bad_method_options_are_a_notification_not_a_crash(viewer, widget, qtbot, notes):
    viewer.add_image(camera()[::4, ::4], name="camera")
    widget.prompts.value = "man"
    widget.method.value = "gclip"
    widget.global_blocks.value = "six, seven"
    assert widget.run() is None
    assert any("global blocks must be 'auto' or block numbers" in m for m in notes("error"))
    widget.global_blocks.value = "6, 7"  # the tiny test ViT has 8 blocks: 0 .. 6 allowed
    run_and_wait(qtbot, widget)  # only the loaded model knows its depth: refused in the worker
    assert "0 .. 6" in notes("error")[-1]
    assert "man heatmap (camera)" not in [layer.name for layer in viewer.layers]
    widget.method.value = "gem"
    widget.refine.value = True
    widget.pamr_dilations.value = "8, sixteen"
    assert widget.run() is None
    assert any("PAMR dilations" in m for m in notes("error"))


def test_simzss_runs_from_the_widget_with_its_checkpoint(viewer, widget, qtbot, tiny_simzss_name,
                                                         tiny_simzss_checkpoint):
    assert "SimZSS-ViT-B-14" in widget.model.choices
    widget.model.value = tiny_simzss_name
    assert widget.weights.value == "file" and not widget.weights.enabled
    assert not _shown(widget.method) and not _shown(widget.depth)
    widget.checkpoint.value = tiny_simzss_checkpoint
    widget.input_size.value = 56
    viewer.add_image(camera()[::4, ::4], name="camera")
    widget.prompts.value = "man"
    run_and_wait(qtbot, widget)
    model = viewer.layers["man heatmap (camera)"].metadata[META]["parameters"]["model"]
    assert model["method"] == "simzss" and model["model"] == tiny_simzss_name
    widget.model.value = "napari-gem-tiny"
    assert widget.weights.enabled and _shown(widget.method)


def test_the_demo_models_packaged_weights_need_no_weights_fields(widget):
    from napari_gem.demo.model import MODEL_NAME

    widget.model.value = MODEL_NAME
    assert not _shown(widget.weights) and not _shown(widget.pretrained) and not _shown(widget.checkpoint)
    assert widget.model_spec().pretrained.endswith(".pt")
    widget.model.value = "napari-gem-tiny"
    assert _shown(widget.weights)
