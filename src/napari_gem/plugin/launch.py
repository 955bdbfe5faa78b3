"""``napari-gem`` (no arguments): napari with the napari-gem widget docked and a sample image."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .samples import EXTRA_SAMPLES, SAMPLES, suggested_prompts

if TYPE_CHECKING:
    import napari

PLUGIN = "napari-gem"
WIDGET = "Segment by text"
#: How much of the screen a first napari-gem window takes (width and height).
SCREEN_SHARE = 0.9


def launch_viewer(sample: str | None = "chelsea", *, demo: bool = False) -> napari.Viewer:
    """Create a napari viewer, open ``sample`` (a napari-gem sample key, or None for none)
    and dock the napari-gem widget with the sample's suggested prompts typed in.

    ``demo``: open the generated micrograph instead, with the demo model (trained by the
    project, packaged, no download) selected.

    The window is laid out for the image: a first window grows to most of the screen
    (:func:`grow_to_screen`) and the view stays fitted to the canvas until the user moves it
    (:func:`keep_view_fitted`). The caller runs the event loop (``napari.run()``).
    """
    # open_clip (and with it torchvision and triton) before napari's OpenGL canvas: with
    # software OpenGL the other order crashes (see compat.keep_triton_away_from_mesa_llvm).
    import napari
    import open_clip  # noqa: F401
    from napari.settings import get_settings

    if demo:
        sample = "demo_micrograph"
    if sample is not None and sample not in SAMPLES and sample not in EXTRA_SAMPLES:
        known = ", ".join([*SAMPLES, *EXTRA_SAMPLES])
        raise ValueError(f"unknown sample {sample!r}; choose one of: {known}")
    viewer = napari.Viewer(title="napari-gem")
    if sample is not None:
        viewer.open_sample(PLUGIN, sample)
    _, widget = viewer.window.add_plugin_dock_widget(PLUGIN, WIDGET)
    if demo:
        from ..engine.families.demo import MODEL_NAME

        widget.model.value = MODEL_NAME
    layer = widget.image_layer.value
    prompts = suggested_prompts(layer) if layer is not None else None
    if prompts and not widget.prompts.value.strip():
        widget.prompts.value = prompts
    if get_settings().application.window_size is None:  # napari's first window: nothing saved
        grow_to_screen(viewer)
    keep_view_fitted(viewer)
    return viewer


def grow_to_screen(viewer: napari.Viewer, share: float = SCREEN_SHARE) -> None:
    """Make the window ``share`` of the screen (never smaller than it is).

    napari sizes its first window to its own docks; with ours beside them the canvas
    would get a quarter of it.
    """
    from qtpy.QtWidgets import QApplication

    _, _, width, height = viewer.window.geometry()
    screen = QApplication.primaryScreen().availableGeometry()  # where a new window opens
    viewer.window.resize(max(width, int(screen.width() * share)),
                         max(height, int(screen.height() * share)))


def keep_view_fitted(viewer: napari.Viewer) -> None:
    """Fit the view to the canvas now, and again each time the canvas changes size (the dock
    taking its width, the window manager placing the window), until the user moves the camera.

    napari fits the image when it is opened, before the dock narrows the canvas: without
    this, the image is shown cropped.
    """
    from qtpy.QtWidgets import QApplication

    fitted: list[tuple] = []  # the camera as the last fit left it
    view = viewer.scene.camera if hasattr(viewer, "scene") else viewer.camera  # napari < 0.9

    def camera() -> tuple:
        return (tuple(view.center), view.zoom, tuple(view.angles))

    def fit(event=None) -> None:
        if fitted and camera() != fitted[-1]:  # the user moved it: the view is theirs now
            viewer.canvas.events.size.disconnect(fit)
            return
        viewer.reset_view()
        fitted[:] = [camera()]

    QApplication.processEvents()  # the docks take their widths, the canvas its size
    fit()
    viewer.canvas.events.size.connect(fit)
