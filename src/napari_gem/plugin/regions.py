"""A Labels layer as the regions of region consistency (``regions="labels"``).

The widget offers the viewer's Labels layers in a field of its own, shown when the regions
choice is "labels"; at run time the layer's data becomes one label image per plane, of the
plane's 2D shape. Everything that can be wrong (no layer, a layer gone, another shape) is
a :class:`ValueError` whose message the controller shows as a notification.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable

import numpy as np
from magicgui.widgets import ComboBox
from napari.layers import Labels

#: The regions choice that reads a Labels layer.
LABELS_SOURCE = "labels"


def labels_layer_field(viewer) -> ComboBox:
    """A drop-down of the viewer's Labels layers (kept up to date as layers come and go)."""
    def choices(_widget=None):
        return [(layer.name, layer) for layer in viewer.layers if isinstance(layer, Labels)]

    field = ComboBox(label="regions layer", choices=choices, nullable=True, value=None,
                     tooltip="regions = labels: the Labels layer whose labels are the regions "
                     "(0 = no region), e.g. nuclei from another tool or your own annotations")
    events = viewer.layers.events
    for event in (events.inserted, events.removed, events.moved):
        event.connect(lambda *_: field.reset_choices())
    return field


def plane_labels(layer, viewer, plane_shape: tuple[int, int],
                 plane_indices: list[tuple[int, ...]]) -> Callable[[tuple[int, ...]], np.ndarray]:
    """``index -> label image [H, W]`` of each plane of a run; a clear ``ValueError`` otherwise.

    A 2D layer serves every plane; a layer with as many leading axes as the planes' index
    gives each plane its own slice.
    """
    if layer is None:
        raise ValueError("Regions are set to 'labels' but no regions layer is chosen: pick a Labels "
                         "layer under 'regions layer' (Advanced), or choose other regions.")
    if not isinstance(layer, Labels) or layer not in viewer.layers:
        raise ValueError(f"The regions layer '{getattr(layer, 'name', layer)}' is no longer in the "
                         "viewer: pick a Labels layer under 'regions layer'.")
    data = layer.data[0] if layer.multiscale else layer.data
    shape = tuple(data.shape)
    depth = len(plane_indices[0]) if plane_indices else 0
    if shape[-2:] != tuple(plane_shape) or len(shape) not in (2, 2 + depth):
        raise ValueError(
            f"The regions layer '{layer.name}' has shape {shape}, but the image's planes are "
            f"{tuple(plane_shape)}: regions need a Labels layer of the image's 2D shape (or of "
            "its full shape, one label image per plane).")

    if len(shape) == 2:
        snapshot = np.array(data)  # taken now: painting during the run does not reach it

        def labels_of(index: tuple[int, ...]) -> np.ndarray:
            return snapshot
    else:
        def labels_of(index: tuple[int, ...]) -> np.ndarray:
            return np.array(data[tuple(index)])

    return labels_of


def labels_key(labels: np.ndarray | None) -> str | None:
    """A short fingerprint of a label image (a painted layer must not hit a stale encoding)."""
    if labels is None:
        return None
    return hashlib.blake2b(np.ascontiguousarray(labels).tobytes(), digest_size=8).hexdigest()


#: The options that only matter when regions are on (and the one that matters for SLIC).
REGION_FIELDS = ("region_vote", "region_attention", "region_proxy", "slic_segments")


def place_layer_field(panel, field: ComboBox) -> None:
    """Put the layer drop-down under the regions choice of the options panel; show each region
    field only when it applies (the layer for "labels", the rest when regions are on)."""
    regions = panel.segment_fields["regions"].value
    container = panel.container
    container.insert(list(container).index(regions) + 1, field)

    def update(*_) -> None:
        choice = regions.value
        field.visible = choice == LABELS_SOURCE
        for name in REGION_FIELDS:
            panel.segment_fields[name].set_visible(choice != "none" and
                                                   (name != "slic_segments" or choice == "slic"))
        attention = panel.segment_fields["region_attention"].value.value
        panel.segment_fields["region_proxy"].set_visible(choice != "none" and bool(attention))

    regions.changed.connect(update)
    panel.segment_fields["region_attention"].value.changed.connect(update)
    update()


def voting_regions(output) -> Callable[[tuple[int, ...]], np.ndarray] | None:
    """How a redraw finds each plane's regions again when the run voted in them (else None):
    the label images the run used (a layer's, superpixels, generated masks), kept per plane."""
    options = output.request.options
    if options.regions == "none" or not options.region_vote or not output.regions:
        return None
    return output.regions.__getitem__
