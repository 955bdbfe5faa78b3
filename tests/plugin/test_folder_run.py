"""Run on a folder from the widget: the batch with the widget's settings, rows, opening, cancel."""

from __future__ import annotations

import json

import numpy as np
import pytest
import tifffile
from PIL import Image
from plugin_helpers import RUN_TIMEOUT_MS

from napari_gem.cli.main import main
from napari_gem.io.export import read_output

PROMPTS = "nucleus, cell membrane"


def _noise(shape, seed: int, top: int, dtype) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, top, shape).astype(dtype)


@pytest.fixture
def images(tmp_path):
    """A folder with a gray TIFF (with a pixel size), an RGB PNG and a file that is no TIFF."""
    folder = tmp_path / "images"
    folder.mkdir()
    tifffile.imwrite(folder / "gray.ome.tif", _noise((48, 64), 0, 4000, np.uint16),
                     photometric="minisblack",
                     metadata={"axes": "YX", "PhysicalSizeX": 0.5, "PhysicalSizeY": 0.5})
    Image.fromarray(_noise((40, 56, 3), 1, 255, np.uint8)).save(folder / "colour.png")
    (folder / "broken.tif").write_bytes(b"this is not a TIFF")
    return folder


def _run_folder(qtbot, widget, images, out, **fields):
    widget.prompts.value = PROMPTS
    widget.folder_input.value = str(images)
    widget.folder_output.value = str(out)
    for name, value in fields.items():
        getattr(widget, name).value = value
    worker = widget.folder_panel.run()
    assert worker is not None, widget.folder_status.value
    with qtbot.waitSignal(worker.finished, timeout=RUN_TIMEOUT_MS):
        pass
    qtbot.waitUntil(lambda: widget.folder_panel.worker is None, timeout=RUN_TIMEOUT_MS)
    return widget.folder_panel


def _cli_args(widget, images, out) -> list[str]:
    """The `napari-gem segment` command for the widget's settings (as a user would type it)."""
    return ["segment", str(images), "-p", PROMPTS, "-o", str(out), "--model", widget.model.value,
            "--pretrained", str(widget.checkpoint.value), "--device", "cpu", "--input-size", "64",
            "--window", "64", "--overlap", "16", "-q"]


def test_the_folder_run_writes_what_napari_gem_segment_writes(qtbot, widget, images, tmp_path):
    panel = _run_folder(qtbot, widget, images, tmp_path / "widget")

    assert main(_cli_args(widget, images, tmp_path / "cli")) == 1  # broken.tif failed
    written = sorted(path.name for path in (tmp_path / "cli").iterdir())
    assert written == sorted(path.name for path in (tmp_path / "widget").iterdir())
    assert "gray_nucleus_mask.tif" in written and "colour_cell-membrane_heatmap.tif" in written
    for name in written:
        ours, theirs = tmp_path / "widget" / name, tmp_path / "cli" / name
        if name.endswith("_parameters.json"):  # the same run, down to each option's source
            assert json.loads(ours.read_text()) == json.loads(theirs.read_text())
        else:
            assert ours.read_bytes() == theirs.read_bytes(), name
    table = [(row.image, row.prompt, row.status) for row in panel.rows]
    assert table == [("broken.tif", "", "failed"),
                     ("colour.png", "nucleus", "written"), ("colour.png", "cell membrane", "written"),
                     ("gray.ome.tif", "nucleus", "written"), ("gray.ome.tif", "cell membrane", "written")]
    for row in panel.rows[1:]:
        labels, _ = read_output(row.parameters.parent / f"{row.parameters.name[:-16]}_"
                                f"{'nucleus' if row.prompt == 'nucleus' else 'cell-membrane'}_mask.tif")
        assert row.objects == int(labels.max())
    assert panel.table.rowCount() == 5
    assert panel.table.item(0, 3).text() == "failed"
    assert "not a readable TIFF" in panel.table.item(0, 0).toolTip()
    assert widget.folder_status.value.startswith("2 written, 0 skipped, 1 failed")

    # The same question: the command line resumes from the widget's outputs, and back.
    assert main(_cli_args(widget, images, tmp_path / "widget")) == 1
    _run_folder(qtbot, widget, images, tmp_path / "cli")
    assert {row.status for row in panel.rows if row.image != "broken.tif"} == {"skipped"}


def test_a_row_opens_its_image_with_its_masks_and_heatmaps_aligned(qtbot, widget, viewer, images,
                                                                   tmp_path, notes):
    panel = _run_folder(qtbot, widget, images, tmp_path / "out")
    gray_row = next(index for index, row in enumerate(panel.rows) if row.image == "gray.ome.tif")
    before = len(viewer.layers)

    panel.table.cellDoubleClicked.emit(gray_row, 0)

    added = list(viewer.layers)[before:]
    kinds = sorted(type(layer).__name__ for layer in added)
    assert kinds == ["Image", "Image", "Image", "Labels", "Labels"]  # image, 2 heatmaps, 2 masks
    image = next(layer for layer in added if layer.name == "gray.ome.tif")
    assert image.data.shape == (48, 64)
    for layer in added:
        assert layer.data.shape == (48, 64)
        assert list(layer.scale) == pytest.approx([0.5, 0.5])  # its pixel size
        assert list(layer.translate) == list(image.translate)
    mask = next(layer for layer in added if layer.name.startswith("nucleus mask"))
    expected, _ = read_output(tmp_path / "out" / "gray_nucleus_mask.tif")
    assert np.array_equal(mask.data, expected)
    # Opening it again (another prompt of the same image) selects those layers, adds none.
    panel.open_row(gray_row + 1)
    assert len(viewer.layers) == before + len(added)
    assert set(viewer.layers.selection) == set(added)

    colour_row = next(index for index, row in enumerate(panel.rows) if row.image == "colour.png")
    opened = panel.open_row(colour_row)
    assert opened[0].rgb and opened[0].data.shape == (40, 56, 3)
    assert all(layer.data.shape == (40, 56) for layer in opened[1:])
    # The failed image has nothing to open: the user is told why.
    assert panel.open_row(0) == []
    assert any("broken.tif: failed" in message for message in notes("info"))


def test_cancel_starts_no_further_image_and_a_rerun_resumes(qtbot, widget, images, tmp_path):
    widget.prompts.value = PROMPTS
    widget.folder_input.value = str(images)
    widget.folder_output.value = str(tmp_path / "out")
    panel = widget.folder_panel
    worker = panel.run()
    panel.cancel()  # before the first image: the worker has not started yet
    assert widget.folder_status.value == "stopping after the current image..."
    with qtbot.waitSignal(worker.finished, timeout=RUN_TIMEOUT_MS):
        pass
    qtbot.waitUntil(lambda: panel.worker is None, timeout=RUN_TIMEOUT_MS)
    assert [row.status for row in panel.rows] == ["cancelled"] * 3
    assert not (tmp_path / "out").exists()
    assert widget.folder_run_button.enabled and not widget.folder_cancel_button.enabled

    _run_folder(qtbot, widget, images, tmp_path / "out")
    assert sorted(row.status for row in panel.rows) == ["failed", *["written"] * 4]
    _run_folder(qtbot, widget, images, tmp_path / "out")
    assert sorted(row.status for row in panel.rows) == ["failed", *["skipped"] * 4]
    _run_folder(qtbot, widget, images, tmp_path / "out", folder_redo=True)
    assert sorted(row.status for row in panel.rows) == ["failed", *["written"] * 4]


@pytest.mark.parametrize(("field", "value", "message"), [
    ("folder_input", "", "Choose the images to run on"),
    ("folder_output", "", "Choose an output folder"),
    ("prompts", "", "Type at least one prompt"),
    ("folder_output", "{images}", "The output folder is the image folder"),
    ("folder_input", "{images}/*.jpg", "No images found in"),
])
def test_what_to_fix_before_a_folder_run_is_said(widget, images, tmp_path, notes, field, value,
                                                  message):
    widget.prompts.value = PROMPTS
    widget.folder_input.value = str(images)
    widget.folder_output.value = str(tmp_path / "out")
    chosen = getattr(widget, field)
    # What a user types: FileEdit.value = "" would mean the current folder.
    (getattr(chosen, "line_edit", chosen)).value = value.format(images=images)

    assert widget.folder_panel.run() is None

    assert any(message in text for text in notes("error"))
    assert message in widget.folder_status.value
    assert not (tmp_path / "out").exists()


def test_a_model_that_cannot_load_ends_the_run_with_its_reason(qtbot, widget, images, tmp_path,
                                                              notes):
    broken = tmp_path / "broken.pt"
    broken.write_bytes(b"not a checkpoint")
    widget.checkpoint.value = broken
    widget.prompts.value = PROMPTS
    widget.folder_input.value = str(images)
    widget.folder_output.value = str(tmp_path / "out")
    panel = widget.folder_panel

    worker = panel.run()
    with qtbot.waitSignal(worker.finished, timeout=RUN_TIMEOUT_MS):
        pass
    qtbot.waitUntil(lambda: panel.worker is None, timeout=RUN_TIMEOUT_MS)

    assert widget.folder_status.value.startswith("Run on folder failed:")
    assert "broken.pt" in widget.folder_status.value
    assert any("Run on folder failed" in message for message in notes("error"))
    assert panel.rows == [] and not (tmp_path / "out").exists()
    assert widget.folder_run_button.enabled


def test_a_stack_opens_with_its_masks_over_every_plane(qtbot, widget, viewer, tmp_path):
    folder = tmp_path / "stacks"
    folder.mkdir()
    tifffile.imwrite(folder / "stack.ome.tif", _noise((3, 40, 48), 2, 4000, np.uint16),
                     photometric="minisblack",
                     metadata={"axes": "ZYX", "PhysicalSizeZ": 2.0, "PhysicalSizeX": 0.5,
                               "PhysicalSizeY": 0.5})
    panel = _run_folder(qtbot, widget, folder, tmp_path / "out")

    opened = panel.open_row(0)

    assert [layer.data.shape for layer in opened] == [(3, 40, 48)] * 5
    assert {tuple(layer.scale) for layer in opened} == {(2.0, 0.5, 0.5)}
