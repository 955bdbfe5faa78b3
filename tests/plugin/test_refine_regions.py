"""Refine a mask whose run voted in a Labels layer's regions, after its encoding was evicted
(issue 22, item 5): the re-encoding uses the same region labels as the run."""

from __future__ import annotations

import numpy as np
import pytest
from plugin_helpers import RUN_TIMEOUT_MS, run_and_wait
from test_regions_plugin import image_and_regions

pytestmark = pytest.mark.gui


def test_refine_after_eviction_re_encodes_with_the_runs_region_labels(viewer, widget, qtbot, notes):
    image, regions = image_and_regions()
    viewer.add_image(image, name="cells", rgb=True)
    nuclei = viewer.add_labels(regions, name="nuclei")
    widget.image_layer.value = viewer.layers["cells"]
    widget.prompts.value = "red"
    widget.regions.value = "labels"
    widget.regions_layer.value = nuclei
    run_and_wait(qtbot, widget)
    assert not notes("error")
    layer = viewer.layers["red mask (cells)"]
    viewer.layers.selection.active = layer

    widget.controller.encoded.clear()  # the cache let the run's encoding go
    layer.brush_size = 5
    layer.paint((70, 50), 1)
    worker = widget.refine_mask()
    assert worker is not None, "the refinement was refused"
    with qtbot.waitSignal(worker.finished, timeout=RUN_TIMEOUT_MS):
        pass
    qtbot.waitUntil(lambda: widget.refiner.worker is None, timeout=RUN_TIMEOUT_MS)
    assert not [m for m in notes("error") if "Refine failed" in m], notes("error")
    assert any("encoded again" in message for message in notes("info"))
    assert np.asarray(layer.data)[70, 50] == 1
