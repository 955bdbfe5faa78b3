"""What a new user meets first: the launched window, a run whose model cannot be loaded, and
how the masks look (and can still be painted)."""

from __future__ import annotations

import numpy as np
import pytest
from plugin_helpers import configure_tiny, run_and_wait
from qtpy.QtCore import QPoint, Qt
from qtpy.QtTest import QTest
from qtpy.QtWidgets import QDockWidget, QScrollArea
from skimage.data import camera

from engine.test_offline_loading import no_network  # noqa: F401  (fixture)
from napari_gem.demo import MODEL_NAME as DEMO_MODEL
from napari_gem.plugin.layers import MASK_CONTOUR
from napari_gem.plugin.panels.model import model_choices
from napari_gem.plugin.widget import STARTING_WIDTH

pytestmark = pytest.mark.gui
DOCK = "Segment by text (napari-gem)"


@pytest.fixture
def launch(make_napari_viewer, monkeypatch, qtbot):
    """``launch(demo=...)``: what ``napari-gem`` (or ``--demo``) opens, as a shown window."""
    import napari

    from napari_gem.plugin.launch import launch_viewer

    # napari's fixture makes (and cleans up) the viewer that launch_viewer asks for.
    monkeypatch.setattr(napari, "Viewer", lambda **kwargs: make_napari_viewer(show=True, **kwargs))

    def launched(demo: bool = False):
        viewer = launch_viewer(demo=demo)
        qtbot.wait(50)
        return viewer

    return launched


@pytest.fixture
def shown_widget(make_napari_viewer, tiny_model_name, tiny_checkpoint):
    """The widget with the tiny test model, in a window on screen (for real mouse strokes)."""
    viewer = make_napari_viewer(show=True)
    _, widget = viewer.window.add_plugin_dock_widget("napari-gem", "Segment by text")
    configure_tiny(widget, tiny_model_name, tiny_checkpoint)
    return viewer, widget


def seen_world(viewer) -> tuple[np.ndarray, np.ndarray]:
    """The (y, x) world rectangle the canvas shows: its lowest and highest corner."""
    view = viewer.scene.camera
    half = np.asarray(viewer.canvas.size, dtype=float) / (2 * view.zoom)
    centre = np.asarray(view.center[-2:])
    return centre - half, centre + half


def whole_image_in_view(viewer, layer) -> bool:
    low, high = seen_world(viewer)
    extent = layer.extent.world  # pixel centres: the pixels reach half a pixel further
    return bool(np.all(extent[0] - 0.5 >= low - 1e-6) and np.all(extent[1] + 0.5 <= high + 1e-6))


def content_fits(widget) -> bool:
    """No field is cut off: the scroll area's page is at least as wide as its content needs
    (its horizontal scroll bar is off, so anything wider would be clipped)."""
    scroll = widget.findChild(QScrollArea)
    return scroll.widget().minimumSizeHint().width() <= scroll.viewport().width()


@pytest.mark.parametrize("demo", [False, True], ids=["napari-gem", "napari-gem --demo"])
def test_the_launched_window_shows_the_whole_image_in_the_largest_column(launch, demo):
    viewer = launch(demo=demo)
    image = viewer.layers[0]
    assert whole_image_in_view(viewer, image)
    assert viewer.scene.camera.zoom > 0.5  # fitted to the canvas, not a tiny image in a corner
    window = viewer.window._qt_window
    docks = [dock for dock in window.findChildren(QDockWidget) if dock.isVisible()]
    ours = viewer.window.dock_widgets[DOCK].parent()
    assert ours in docks and ours.width() <= STARTING_WIDTH + 10
    canvas_width = viewer.canvas.size[1]
    assert all(canvas_width > dock.width() for dock in docks)  # the image gets the most room
    assert canvas_width > 0.35 * window.width()
    assert content_fits(viewer.window.dock_widgets[DOCK])


def test_the_view_follows_the_canvas_until_the_user_moves_it(launch, qtbot):
    viewer = launch()
    image = viewer.layers[0]
    viewer.window.resize(900, 600)  # e.g. the window manager placing the window
    qtbot.waitUntil(lambda: whole_image_in_view(viewer, image), timeout=3000)

    viewer.scene.camera.zoom *= 3  # the user zooms in: the view is theirs from now on
    zoom = viewer.scene.camera.zoom
    viewer.window.resize(1000, 700)
    qtbot.wait(200)
    assert viewer.scene.camera.zoom == zoom


def test_every_model_and_method_fits_the_starting_width(widget):
    widget.advanced_section.expand(animate=False)
    content = widget.findChild(QScrollArea).widget()
    seen = []
    for model in [name for _, name in model_choices()]:  # each family's own fields
        widget.model.value = model
        seen.append((model, widget.method.value, content.minimumSizeHint().width()))
    widget.model.value = "ViT-B-16"
    for method in widget.method.choices:  # each method's options
        widget.method.value = method
        seen.append(("ViT-B-16", method, content.minimumSizeHint().width()))
    too_wide = [entry for entry in seen if entry[2] > STARTING_WIDTH - 20]  # the scroll bar
    assert not too_wide


def test_a_run_with_the_default_model_offline_keeps_the_failure_and_offers_the_demo_model(
    viewer, qtbot, no_network, tmp_path, monkeypatch, notes  # noqa: F811
):
    from huggingface_hub import constants

    monkeypatch.setenv("HOME", str(tmp_path))  # no ~/.cache/clip
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hub"))  # nothing cached
    from napari_gem.demo import scene

    image, _ = scene(3)
    viewer.add_image(image[:96, :96], name="micrograph", rgb=True)
    _, widget = viewer.window.add_plugin_dock_widget("napari-gem", "Segment by text")
    assert (widget.model.value, widget.weights.value, widget.pretrained.value) == (
        "ViT-B-16", "tag", "openai")  # what a fresh install starts with
    assert widget.demo_button.native.isHidden()
    widget.device.value = "cpu"
    widget.prompts.value = "ring"

    run_and_wait(qtbot, widget)
    status = widget.status.value
    assert status.startswith("Run failed: could not load weights for model 'ViT-B-16'"), status
    assert "ready" not in status and "Traceback" not in status
    assert "offline" in widget.status.tooltip  # the whole message, on hover
    assert any("could not load weights" in message for message in notes("error"))
    assert not widget.demo_button.native.isHidden()

    widget.demo_button.native.click()
    assert widget.model.value == DEMO_MODEL and widget.model_spec().name == DEMO_MODEL
    assert widget.demo_button.native.isHidden()
    run_and_wait(qtbot, widget)  # and a run now works, offline
    assert "ring mask (micrograph)" in viewer.layers
    assert widget.status.value.startswith("'micrograph': 1 plane")


def test_masks_open_as_outlines_the_brush_still_paints_and_a_rerun_keeps_the_users_look(
    shown_widget, qtbot
):
    viewer, widget = shown_widget
    viewer.add_image(camera()[::4, ::4], name="camera")
    widget.prompts.value = "man"
    run_and_wait(qtbot, widget)
    mask = viewer.layers["man mask (camera)"]
    assert mask.contour == MASK_CONTOUR > 0
    assert viewer.layers["man heatmap (camera)"].visible  # seen through the outlines

    # A stroke of napari's brush, dragged with the mouse across the middle of the image.
    mask.data = np.zeros_like(mask.data)  # an empty mask: every painted pixel is the stroke's
    mask.mode, mask.brush_size, mask.selected_label = "paint", 5, 1
    viewer.layers.selection.active = mask
    viewer.reset_view()
    qtbot.wait(50)
    canvas = viewer.window._qt_viewer.canvas.native
    middle = QPoint(canvas.width() // 2, canvas.height() // 2)
    QTest.mousePress(canvas, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, middle)
    for step in range(1, 9):
        QTest.mouseMove(canvas, middle + QPoint(6 * step, 0))
        qtbot.wait(10)
    QTest.mouseRelease(canvas, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier,
                       middle + QPoint(48, 0))
    painted = np.asarray(mask.data) > 0
    assert painted.sum() > 25, "the brush painted nothing on the outlined mask"
    rows = np.flatnonzero(painted.any(axis=1))
    assert rows.min() <= mask.data.shape[0] // 2 <= rows.max()  # where the stroke went
    qtbot.waitUntil(lambda: widget.results.item(0, 4).text().startswith("1+"), timeout=3000)

    viewer.layers.remove(mask)
    run_and_wait(qtbot, widget)
    mask = viewer.layers["man mask (camera)"]
    mask.contour = 0  # the user fills it ...
    widget.prompts.value = "man, sky"
    run_and_wait(qtbot, widget)  # ... and a re-run writes into it, keeping the fill
    assert viewer.layers["man mask (camera)"] is mask and mask.contour == 0
    assert viewer.layers["sky mask (camera)"].contour == MASK_CONTOUR
