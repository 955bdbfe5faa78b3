"""'instances per prompt' in napari: touching objects split by default, components on request."""

from __future__ import annotations

import numpy as np
import pytest
from plugin_helpers import run_and_wait
from skimage.data import chelsea

from napari_gem.engine.instances import split_touching
from napari_gem.engine.masks import connected_components
from napari_gem.plugin.layers import META

pytestmark = pytest.mark.gui


def test_the_objects_option_reaches_the_instance_layers_and_their_redraw(viewer, widget, qtbot):
    viewer.add_image(chelsea()[::2, ::2], name="chelsea")
    widget.prompts.value = "cat"
    widget.mask_mode.value = "instances"
    widget.auto_threshold.value = False
    widget.threshold.value = 0.3
    assert widget.instances.value == "watershed"  # the default splits touching objects
    run_and_wait(qtbot, widget)

    heat = viewer.layers["cat heatmap (chelsea)"]
    layer = viewer.layers["cat instances (chelsea)"]
    parameters = layer.metadata[META]["parameters"]
    assert parameters["options"]["instances"] == "watershed"
    cell = parameters["heatmap_cell"]
    mask = heat.data >= 0.3
    np.testing.assert_array_equal(layer.data > 0, mask)  # the mask is the threshold's, unchanged
    split = np.asarray(layer.data)
    np.testing.assert_array_equal(split, split_touching(mask, heat.data, cell=cell))

    # The live redraw (a new threshold) splits the same way ...
    widget.threshold.value = 0.25
    qtbot.waitUntil(lambda: widget.results.item(0, 2).text() == "0.25", timeout=3000)
    mask = heat.data >= 0.25
    np.testing.assert_array_equal(layer.data, split_touching(mask, heat.data, cell=cell))

    # ... and a run asked for components keeps connected regions whole, on the same mask.
    widget.instances.value = "components"
    widget.threshold.value = 0.3
    run_and_wait(qtbot, widget)
    layer = viewer.layers["cat instances (chelsea)"]
    assert layer.metadata[META]["parameters"]["options"]["instances"] == "components"
    np.testing.assert_array_equal(layer.data, connected_components(heat.data >= 0.3))
    assert layer.data.max() < split.max(), (layer.data.max(), split.max())
