"""Export: edited masks, heatmaps, objects and parameters to files that re-open in place."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
import tifffile
from plugin_helpers import run_and_wait
from qtpy.QtWidgets import QMessageBox
from skimage.data import camera

from napari_gem.plugin.layers import META

pytestmark = pytest.mark.gui


@pytest.fixture
def exported_run(viewer, widget, qtbot):
    source = viewer.add_image(camera()[::2, ::2], name="camera", scale=(0.4, 0.4),
                              translate=(5.0, -3.0))
    widget.prompts.value = "man, sky"
    run_and_wait(qtbot, widget)
    return source


def test_export_writes_edited_masks_heatmaps_objects_and_parameters(
    viewer, widget, exported_run, tmp_path, notes
):
    mask = viewer.layers["man mask (camera)"]
    mask.data[:20, :20] = 1  # a hand edit (as the fill tool would)
    mask.refresh()
    paths = widget.export(tmp_path, ["man"])
    names = sorted(p.name for p in paths)
    assert names == ["camera_man_edited_mask.png", "camera_man_edited_mask.tif",
                     "camera_man_heatmap.tif", "camera_objects.csv", "camera_parameters.json"]
    np.testing.assert_array_equal(tifffile.imread(tmp_path / "camera_man_edited_mask.tif"),
                                  mask.data)
    heat = tifffile.imread(tmp_path / "camera_man_heatmap.tif")
    assert heat.dtype == np.float32
    np.testing.assert_array_equal(heat, viewer.layers["man heatmap (camera)"].data)
    record = json.loads((tmp_path / "camera_parameters.json").read_text())
    assert record["edited_by_hand"] == ["man"]
    assert record["model"]["model"] == "napari-gem-tiny"
    assert record["scale"] == [0.4, 0.4] and record["translate"] == [5.0, -3.0]
    rows = list(csv.DictReader((tmp_path / "camera_objects.csv").open()))
    assert rows and {row["prompt"] for row in rows} == {"man"}
    assert sum(int(row["area"]) for row in rows) == int((mask.data > 0).sum())
    assert "Exported 5 files" in notes("info")[-1]


def test_export_never_overwrites_without_asking(viewer, widget, exported_run, tmp_path, notes,
                                                monkeypatch):
    first = widget.export(tmp_path)
    stamps = {p: p.stat().st_mtime_ns for p in first}
    mask = viewer.layers["sky mask (camera)"]
    mask.data[:] = 0
    mask.refresh()
    assert widget.export(tmp_path) == []  # refused, and the user is told which files
    assert "exist already" in notes("warning")[-1]
    assert {p: p.stat().st_mtime_ns for p in first} == stamps

    monkeypatch.setattr(QMessageBox, "question", lambda *a, **k: QMessageBox.StandardButton.No)
    assert widget.export(tmp_path, ask=True) == []
    assert {p: p.stat().st_mtime_ns for p in first} == stamps
    monkeypatch.setattr(QMessageBox, "question", lambda *a, **k: QMessageBox.StandardButton.Yes)
    assert len(widget.export(tmp_path, ask=True)) == len(first)
    assert not tifffile.imread(tmp_path / "camera_sky_edited_mask.tif").any()


def test_exported_files_reopen_exactly_over_the_image(viewer, widget, exported_run, tmp_path):
    widget.export(tmp_path)
    originals = {layer.name: layer for layer in viewer.layers if META in layer.metadata}
    reopened = viewer.open(tmp_path / "camera_parameters.json", plugin="napari-gem")
    assert len(reopened) == 4
    for layer in reopened:
        np.testing.assert_allclose(layer.scale, exported_run.scale)
        np.testing.assert_allclose(layer.translate, exported_run.translate)
    heat = next(x for x in reopened if x.metadata[META]["role"] == "heatmap"
                and x.metadata[META]["prompt"] == "man")
    np.testing.assert_array_equal(heat.data, originals["man heatmap (camera)"].data)
    assert heat.colormap.name == "gem-inferno"
    single = viewer.open(tmp_path / "camera_sky_mask.tif", plugin="napari-gem")[0]
    assert type(single).__name__ == "Labels"
    np.testing.assert_allclose(single.translate, exported_run.translate)


def test_reader_leaves_foreign_files_to_other_readers(tmp_path):
    from napari_gem.plugin.reader import get_reader

    tifffile.imwrite(tmp_path / "plain_mask.tif", np.zeros((4, 4), np.uint8))
    (tmp_path / "other_parameters.json").write_text('{"lr": 0.1}')
    assert get_reader(str(tmp_path / "plain_mask.tif")) is None
    assert get_reader(str(tmp_path / "other_parameters.json")) is None


def test_save_selected_layers_with_the_napari_gem_writer(viewer, exported_run, tmp_path):
    viewer.layers.selection = {viewer.layers["man heatmap (camera)"],
                               viewer.layers["man mask (camera)"]}
    written = viewer.layers.save(str(tmp_path / "saved"), selected=True, plugin="napari-gem")
    names = sorted(p.rsplit("/", 1)[-1] for p in written)
    assert "camera_man_mask.tif" in names and "camera_parameters.json" in names
