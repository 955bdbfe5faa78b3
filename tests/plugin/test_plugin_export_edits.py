"""Export never loses an edit: paint a mask, run again, export the painted and/or fresh mask."""

from __future__ import annotations

import json

import numpy as np
import pytest
import tifffile
from plugin_helpers import run_and_wait
from skimage.data import camera

from napari_gem.plugin.layers import META

pytestmark = pytest.mark.gui


@pytest.fixture
def painted_then_rerun(viewer, widget, qtbot):
    """Run, paint the 'man' mask with the brush (as a user does), run again."""
    viewer.add_image(camera()[::4, ::4], name="camera")
    widget.prompts.value = "man, sky"
    run_and_wait(qtbot, widget)
    painted_layer = viewer.layers["man mask (camera)"]
    viewer.layers.selection.active = painted_layer
    painted_layer.brush_size = 9
    painted_layer.paint((20, 20), 1)  # the brush: emits napari's paint event
    painted_layer.paint((100, 100), 0)  # and the eraser
    painted = np.array(painted_layer.data)
    viewer.layers.selection.active = viewer.layers["camera"]
    run_and_wait(qtbot, widget)
    fresh_layer = next(layer for layer in viewer.layers
                       if layer.metadata.get(META, {}).get("role") == "mask"
                       and layer.metadata[META]["prompt"] == "man" and layer is not painted_layer)
    qtbot.waitUntil(lambda: len(widget.export_masks.choices) == 3, timeout=5000)
    return painted_layer, fresh_layer, painted


def choice_keys(widget, layer) -> list[str]:
    return [c.key for c in widget.controller.mask_choices() if c.layer is layer]


def test_after_a_rerun_the_painted_mask_is_listed_marked_and_exported_by_default(
    viewer, widget, painted_then_rerun, tmp_path
):
    painted_layer, fresh_layer, painted = painted_then_rerun
    assert np.array_equal(painted_layer.data, painted)  # the run did not touch it
    native = widget.export_masks.native  # the QListWidget the user sees
    labels = [native.item(row).text() for row in range(native.count())]
    assert f"{painted_layer.name}  [edited]" in labels
    assert fresh_layer.name in labels and len(labels) == 3  # both of 'man', and 'sky'

    chosen = widget.export_masks.value
    assert choice_keys(widget, painted_layer)[0] in chosen  # last edited: the default
    assert choice_keys(widget, fresh_layer)[0] not in chosen

    paths = widget.export(tmp_path)

    names = sorted(p.name for p in paths)
    assert "camera_man_edited_mask.tif" in names and "camera_man_mask.tif" not in names
    exported = tifffile.imread(tmp_path / "camera_man_edited_mask.tif")
    np.testing.assert_array_equal(exported, painted)  # every painted pixel is in the file
    assert exported[20, 20] == 1 and exported[100, 100] == 0
    record = json.loads((tmp_path / "camera_parameters.json").read_text())
    assert record["edited_by_hand"] == ["man"]


def test_selecting_the_fresh_mask_makes_it_the_default(viewer, widget, painted_then_rerun,
                                                       tmp_path, qtbot):
    painted_layer, fresh_layer, _ = painted_then_rerun
    viewer.layers.selection.active = viewer.layers["camera"]  # napari had the new layer active
    viewer.layers.selection.active = fresh_layer  # the user clicks it in the layer list
    key = choice_keys(widget, fresh_layer)[0]
    qtbot.waitUntil(lambda: key in widget.export_masks.value, timeout=5000)
    assert choice_keys(widget, painted_layer)[0] not in widget.export_masks.value
    widget.export(tmp_path)
    np.testing.assert_array_equal(tifffile.imread(tmp_path / "camera_man_mask.tif"),
                                  fresh_layer.data)


def test_both_masks_of_a_prompt_export_side_by_side_and_reopen(viewer, widget,
                                                               painted_then_rerun, tmp_path):
    painted_layer, fresh_layer, painted = painted_then_rerun
    both = choice_keys(widget, painted_layer) + choice_keys(widget, fresh_layer)
    widget.export_masks.value = both

    paths = widget.export(tmp_path)

    names = {p.name for p in paths}
    assert {"camera_man_edited_mask.tif", "camera_man_mask.tif"} <= names
    np.testing.assert_array_equal(tifffile.imread(tmp_path / "camera_man_edited_mask.tif"),
                                  painted)
    np.testing.assert_array_equal(tifffile.imread(tmp_path / "camera_man_mask.tif"),
                                  fresh_layer.data)
    record = json.loads((tmp_path / "camera_parameters.json").read_text())
    assert record["outputs"]["man"]["mask"] == "camera_man_mask.tif"
    assert record["outputs"]["man"]["variants"]["edited"]["mask"] == "camera_man_edited_mask.tif"
    reopened = viewer.open(tmp_path / "camera_parameters.json", plugin="napari-gem")
    masks = [layer for layer in reopened if type(layer).__name__ == "Labels"]
    assert len(masks) == 2
    assert any(np.array_equal(layer.data, painted) for layer in masks)


def test_save_selected_layers_keeps_both_masks_of_a_prompt(viewer, painted_then_rerun, tmp_path):
    painted_layer, fresh_layer, painted = painted_then_rerun
    viewer.layers.selection = {painted_layer, fresh_layer}
    written = viewer.layers.save(str(tmp_path / "saved"), selected=True, plugin="napari-gem")
    names = {p.rsplit("/", 1)[-1] for p in written}
    assert {"camera_man_edited_mask.tif", "camera_man_mask.tif"} <= names
    np.testing.assert_array_equal(
        tifffile.imread(tmp_path / "saved" / "camera_man_edited_mask.tif"), painted)
