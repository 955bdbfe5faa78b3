"""Region consistency in napari: a Labels layer the user picks is the regions of a run;
the class map and masks agree inside each label, also after a threshold change; a missing
layer or one of another shape is a notification, not a traceback."""

from __future__ import annotations

import os

import numpy as np
from plugin_helpers import run_and_wait

SHOTS = os.environ.get("NAPARI_GEM_SHOTS")  # a folder: keep the screenshot there to look at


def image_and_regions(size=96):
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[:size, :size]
    image = np.stack([(xx > size // 2) * 200, (yy > size // 3) * 150, np.full((size, size), 60)], -1)
    image = (image + rng.integers(0, 60, (size, size, 3))).astype(np.uint8)
    regions = np.zeros((size, size), np.int32)
    regions[10:50, 10:50] = 1
    regions[50:90, 20:80] = 2
    regions[5:45, 55:90] = 3
    return image, regions


def uniform_inside(labels, regions):
    return all(len(np.unique(labels[regions == value])) == 1 for value in np.unique(regions) if value)


def test_a_labels_layer_is_the_regions_of_a_run(viewer, widget, qtbot, notes, tmp_path):
    image, regions = image_and_regions()
    viewer.add_image(image, name="cells", rgb=True)
    nuclei = viewer.add_labels(regions, name="nuclei")
    widget.image_layer.value = viewer.layers["cells"]
    widget.prompts.value = "red, green"
    widget.mask_mode.value = "semantic"
    assert widget.regions_layer.native.isHidden() and widget.region_vote.native.isHidden()
    widget.regions.value = "labels"
    assert not widget.regions_layer.native.isHidden() and not widget.region_vote.native.isHidden()
    assert nuclei in widget.regions_layer.choices
    widget.regions_layer.value = nuclei

    run_and_wait(qtbot, widget)
    assert not notes("error")
    semantic = viewer.layers["semantic labels (cells)"]
    assert semantic.data.shape == regions.shape
    assert uniform_inside(semantic.data, regions)
    if SHOTS:
        from qtpy.QtWidgets import QScrollArea

        widget.advanced_section.expand(animate=False)
        nuclei.contour = 2
        viewer.window._qt_window.resize(1400, 1000)
        qtbot.wait(200)
        widget.findChild(QScrollArea).ensureWidgetVisible(widget.regions_layer.native)
        qtbot.wait(200)
        viewer.screenshot(path=os.path.join(SHOTS, "regions-labels-layer.png"), canvas_only=False)
        widget.options_panel.container.native.grab().save(os.path.join(SHOTS, "regions-options.png"))

    widget.mask_mode.value = "binary"  # a redraw from the heatmaps keeps the vote
    qtbot.waitUntil(lambda: "red mask (cells)" in viewer.layers, timeout=3000)
    for prompt in ("red", "green"):
        assert uniform_inside(viewer.layers[f"{prompt} mask (cells)"].data, regions)


def test_a_missing_or_misshapen_regions_layer_is_a_notification(viewer, widget, notes):
    image, regions = image_and_regions()
    viewer.add_image(image, name="cells", rgb=True)
    widget.image_layer.value = viewer.layers["cells"]
    widget.prompts.value = "red"
    widget.regions.value = "labels"
    assert widget.run() is None
    assert any("no regions layer is chosen" in message for message in notes("error"))

    wrong = viewer.add_labels(regions[:50], name="half")
    widget.regions_layer.value = wrong
    assert widget.run() is None
    assert any("'half' has shape (50, 96)" in message and "(96, 96)" in message
               for message in notes("error"))

    widget.regions_layer.value = viewer.add_labels(regions, name="right")
    viewer.layers.remove("right")
    assert widget.run() is None
    assert any("no longer in the viewer" in message or "no regions layer" in message
               for message in notes("error"))


def test_superpixels_need_no_layer_and_a_new_layer_choice_reencodes(viewer, widget, qtbot, notes):
    image, regions = image_and_regions()
    viewer.add_image(image, name="cells", rgb=True)
    widget.image_layer.value = viewer.layers["cells"]
    widget.prompts.value = "red, green"
    widget.mask_mode.value = "semantic"
    widget.regions.value = "slic"
    assert widget.regions_layer.native.isHidden() and not widget.slic_segments.native.isHidden()
    widget.slic_segments.value = 30
    run_and_wait(qtbot, widget)
    assert not notes("error")
    superpixels = widget.controller.encoded.misses
    widget.regions.value = "labels"
    widget.regions_layer.value = viewer.add_labels(regions, name="nuclei")
    run_and_wait(qtbot, widget)
    assert widget.controller.encoded.misses == superpixels + 1  # other regions, a new encoding
    assert uniform_inside(viewer.layers["semantic labels (cells)"].data, regions)
    viewer.layers["nuclei"].data = np.where(regions == 1, 0, regions)  # edited: not a stale cache hit
    run_and_wait(qtbot, widget)
    assert widget.controller.encoded.misses == superpixels + 2
