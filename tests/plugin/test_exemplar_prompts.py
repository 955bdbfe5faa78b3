"""Examples as prompts in napari: a prompt line ``@examples`` is answered by the boxes drawn on
the Shapes layer ``examples`` ("more like this"), beside word prompts, and refines like them."""

from __future__ import annotations

import numpy as np
import pytest
from plugin_helpers import run_and_wait
from scipy import ndimage

from napari_gem.demo import scene
from napari_gem.plugin.layers import info

pytestmark = pytest.mark.gui

SEED, CONCEPT = 1_000_007, "ring"


def _example_box(truth: np.ndarray) -> tuple[int, int, int, int]:
    """The bounding box of the concept's largest object."""
    labels, _ = ndimage.label(truth)
    largest = np.argmax(np.bincount(labels.ravel())[1:]) + 1
    rows, cols = ndimage.find_objects((labels == largest).astype(int))[0]
    return rows.start, cols.start, rows.stop, cols.stop


def test_an_at_prompt_is_answered_by_the_boxes_on_its_shapes_layer(viewer, demo_widget, qtbot, notes):
    image, masks = scene(SEED)
    y0, x0, y1, x1 = _example_box(masks[CONCEPT])
    viewer.add_image(image, name="micrograph", rgb=True)
    viewer.add_shapes([np.array([[y0, x0], [y0, x1 - 1], [y1 - 1, x1 - 1], [y1 - 1, x0]])],
                      shape_type="rectangle", name="examples")
    demo_widget.prompts.value = f"@examples, {CONCEPT}"
    run_and_wait(qtbot, demo_widget)
    assert not notes("error")
    assert viewer.layers[-1].name == "examples"  # the boxes stay on top, in sight and editable

    examples = viewer.layers["@examples heatmap (micrograph)"].data
    words = viewer.layers[f"{CONCEPT} heatmap (micrograph)"].data
    assert examples.shape == words.shape == image.shape[:2]
    assert not np.allclose(examples, words) and 0 <= examples.min() < examples.max() <= 1
    assert examples[masks[CONCEPT]].mean() > examples.mean()  # the concept lights up
    # the run records the box it used, in the image's pixels (the rectangle's corners + 1)
    recorded = info(viewer.layers["@examples heatmap (micrograph)"])["parameters"]["exemplars"]
    assert recorded == {"@examples": [[y0, x0, y1, x1]]}

    # its mask refines from strokes like a word prompt's, with the boxes as its prior
    layer = viewer.layers["@examples mask (micrograph)"]
    layer.brush_size = 7
    layer.paint(((y0 + y1) // 2, (x0 + x1) // 2), 0)
    viewer.layers.selection.active = layer
    worker = demo_widget.refine_mask()
    assert worker is not None
    with qtbot.waitSignal(worker.finished, timeout=60_000):
        pass
    assert any("Refined" in message for message in notes("info")) and not notes("error")
    mask = viewer.layers["@examples mask (micrograph)"].data
    assert mask.any() and mask[y0:y1, x0:x1].any()


def test_an_at_prompt_without_its_shapes_layer_is_a_clear_notification(viewer, demo_widget, notes):
    image, _ = scene(SEED)
    viewer.add_image(image, name="micrograph", rgb=True)
    demo_widget.prompts.value = "@examples"
    assert demo_widget.run() is None
    assert any("Shapes layer 'examples'" in message and "no layer of that name" in message
               for message in notes("error"))
    viewer.add_shapes(name="examples")
    assert demo_widget.run() is None
    assert any("has no shapes" in message for message in notes("error"))
