"""``napari-gem`` (no arguments): napari with the napari-gem widget docked and a sample image."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .samples import EXTRA_SAMPLES, SAMPLES, suggested_prompts

if TYPE_CHECKING:
    import napari

PLUGIN = "napari-gem"
WIDGET = "Segment by text"


def launch_viewer(sample: str | None = "chelsea", *, demo: bool = False) -> napari.Viewer:
    """Create a napari viewer, open ``sample`` (a napari-gem sample key, or None for none)
    and dock the napari-gem widget with the sample's suggested prompts typed in.

    ``demo``: open the generated micrograph instead, with the demo model (trained by the
    project, packaged, no download) selected.

    The caller runs the event loop (``napari.run()``).
    """
    # open_clip (and with it torchvision and triton) before napari's OpenGL canvas: with
    # software OpenGL the other order crashes (see compat.keep_triton_away_from_mesa_llvm).
    import napari
    import open_clip  # noqa: F401

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
    return viewer
