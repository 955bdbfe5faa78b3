"""Refine in napari: the user's paint and erase on a mask layer are the strokes (issue 16).

A real viewer, the packaged demo model (offline) on a generated micrograph: run a
prompt, paint and erase on its mask layer through napari's own painting API (so the
paint events fire as for a brush), refine with the button and the key, undo with
napari's Ctrl+Z, export the strokes and reproduce the refinement from the files.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from plugin_helpers import RUN_TIMEOUT_MS, run_and_wait
from scipy import ndimage

from napari_gem.demo import scene

pytestmark = pytest.mark.gui

# A held-out scene whose text mask both misses part of the rings and takes other things.
SEED, CONCEPT = 1_000_007, "ring"


def _scene():
    image, masks = scene(SEED)
    return image, CONCEPT, masks[CONCEPT]


def _wait(qtbot, worker) -> None:
    assert worker is not None, "the refinement was refused"
    with qtbot.waitSignal(worker.finished, timeout=RUN_TIMEOUT_MS):
        pass


def _disk(layer, centre, label, plane=()) -> np.ndarray:
    """Paint (label 1) or erase (label 0) a disk as napari's brush does; returns its pixels."""
    before = np.array(layer.data, copy=True)
    layer.brush_size = 7
    layer.paint((*plane, *centre), label)
    return np.asarray(layer.data != before)


def _interior(region: np.ndarray) -> tuple[int, int]:
    """The point of ``region`` farthest from its border (the simulated annotator's click)."""
    distance = ndimage.distance_transform_edt(np.pad(region, 1))[1:-1, 1:-1]
    return tuple(int(v) for v in np.unravel_index(np.argmax(distance), region.shape))


def _paint_two_strokes(layer, truth):
    """One positive stroke inside a missed object, one negative inside a false region."""
    mask = np.asarray(layer.data) > 0
    assert (truth & ~mask).any() and (mask & ~truth).any()
    painted = _disk(layer, _interior(truth & ~mask), 1)
    erased = _disk(layer, _interior(mask & ~truth), 0)
    return painted, erased


def test_paint_erase_refine_keeps_strokes_changes_the_rest_and_undo_restores(
        viewer, demo_widget, qtbot, notes):
    image, concept, truth = _scene()
    viewer.add_image(image, name="micrograph", rgb=True)
    demo_widget.prompts.value = concept
    run_and_wait(qtbot, demo_widget)
    layer = viewer.layers[f"{concept} mask (micrograph)"]
    engine_mask = np.array(layer.data, copy=True)

    painted, erased = _paint_two_strokes(layer, truth)
    assert painted.any() and erased.any()
    qtbot.waitUntil(lambda: demo_widget.results.item(0, 4).text() == "1+ 1\u2212", timeout=3000)

    viewer.layers.selection.active = layer
    before = np.array(layer.data, copy=True)
    _wait(qtbot, demo_widget.refine_mask())
    after = np.asarray(layer.data)
    assert np.all(after[painted] == 1) and np.all(after[erased] == 0)  # strokes never change
    rest = ~(painted | erased)
    assert np.count_nonzero(after[rest] != before[rest]) > 0, "the refinement changed nothing"
    iou = lambda m: (m & truth).sum() / max((m | truth).sum(), 1)  # noqa: E731
    assert iou(after > 0) > iou(engine_mask > 0)  # two strokes help on this scene
    assert any("Refined" in message for message in notes("info"))

    # napari's own Ctrl+Z (the key through the viewer's key handler) undoes it in one step.
    handler = viewer.window._qt_viewer.canvas._key_map_handler
    handler.press_key("Control-Z")
    handler.release_key("Control-Z")
    np.testing.assert_array_equal(np.asarray(layer.data), before)
    handler.press_key("Control-Shift-Z")  # and redoes it
    handler.release_key("Control-Shift-Z")
    np.testing.assert_array_equal(np.asarray(layer.data), after)

    # Undoing the refinement and then the erase stroke leaves one stroke, the painted one.
    layer.undo()
    layer.undo()
    assert np.all(np.asarray(layer.data)[erased] == 1)  # the erased pixels are back
    assert demo_widget.refiner.stroke_counts() == {concept: (1, 0)}


def test_refine_key_live_mode_and_clear_messages(viewer, demo_widget, qtbot, notes):
    image, concept, truth = _scene()
    viewer.add_image(image, name="micrograph", rgb=True)
    demo_widget.prompts.value = concept
    run_and_wait(qtbot, demo_widget)
    layer = viewer.layers[f"{concept} mask (micrograph)"]
    viewer.layers.selection.active = layer

    assert demo_widget.refine_mask() is None  # nothing painted yet: told, not refined
    assert any("No strokes" in message for message in notes("error"))
    viewer.layers.selection.active = viewer.layers["micrograph"]
    assert demo_widget.refine_mask() is None
    assert any("mask layer" in message for message in notes("error"))

    viewer.layers.selection.active = layer
    painted, erased = _paint_two_strokes(layer, truth)
    before = np.array(layer.data, copy=True)
    handler = viewer.window._qt_viewer.canvas._key_map_handler
    handler.press_key("Shift-R")  # the Refine key
    handler.release_key("Shift-R")
    qtbot.waitUntil(lambda: demo_widget.refiner.worker is None
                    and not np.array_equal(layer.data, before), timeout=RUN_TIMEOUT_MS)

    # Live: a stroke refines by itself, the encoding gone from the cache is made again.
    demo_widget.live_refine.value = True
    demo_widget.controller.encoded.clear()
    settled = np.array(layer.data, copy=True)
    missed = truth & ~(settled > 0)
    stroke = _disk(layer, _interior(missed if missed.any() else truth), 1)
    qtbot.waitUntil(lambda: any("encoded again" in m for m in notes("info")),
                    timeout=RUN_TIMEOUT_MS)
    assert np.all(np.asarray(layer.data)[stroke] == 1)


def test_refined_mask_is_exported_with_its_strokes_and_reproduced_from_them(
        viewer, demo_widget, qtbot, tmp_path):
    from napari_gem.demo import load_model
    from napari_gem.engine import SegmentOptions, encode
    from napari_gem.io.strokes import read_strokes

    image, concept, truth = _scene()
    viewer.add_image(image, name="micrograph", rgb=True)
    demo_widget.prompts.value = concept
    run_and_wait(qtbot, demo_widget)
    layer = viewer.layers[f"{concept} mask (micrograph)"]
    _paint_two_strokes(layer, truth)
    _wait(qtbot, demo_widget.refine_mask(layer=layer))
    written = demo_widget.export(tmp_path, [concept])
    parameters = json.loads((tmp_path / "micrograph_parameters.json").read_text())
    [entry] = parameters["strokes"][concept]
    assert entry["mask"].endswith("_edited_mask.tif")  # the refined mask is the user's work
    assert entry["positive_strokes"] == 1 and entry["negative_strokes"] == 1
    assert entry["planes"][""]["refined_from_these_strokes"] is True
    assert tmp_path / entry["file"] in written
    positive, negative = read_strokes(tmp_path / entry["file"])

    # Reproduce: the same model and options, the strokes from the file.
    options = SegmentOptions.from_dict(parameters["options"])
    encoded = encode(image, load_model(), options)
    refined = encoded.refine(concept, positive=positive, negative=negative,
                             **entry["planes"][""]["options"])
    np.testing.assert_array_equal(refined.masks[0].astype(np.uint8), np.asarray(layer.data))

    # File > Save Selected Layers (napari-gem export) writes the strokes too.
    viewer.layers.selection = {layer, viewer.layers[f"{concept} heatmap (micrograph)"]}
    viewer.layers.save(str(tmp_path / "saved"), selected=True, plugin="napari-gem")
    saved = json.loads((tmp_path / "saved" / "micrograph_parameters.json").read_text())
    [again] = saved["strokes"][concept]
    np.testing.assert_array_equal(read_strokes(tmp_path / "saved" / again["file"])[0], positive)


def test_each_plane_of_a_stack_is_refined_on_its_own(viewer, demo_widget, qtbot):
    image, concept, truth = _scene()
    other, _ = scene(SEED + 1, concepts=[concept])
    stack = np.stack([other, image])  # (2, H, W, 3): the scene is plane 1
    viewer.add_image(stack, name="stack", rgb=True)
    viewer.dims.set_point(0, 1)
    demo_widget.prompts.value = concept
    demo_widget.plane_mode.value = "all"
    run_and_wait(qtbot, demo_widget)
    layer = viewer.layers[f"{concept} mask (stack)"]
    assert layer.data.shape == stack.shape[:3]
    plane0 = np.array(layer.data[0], copy=True)

    mask = np.asarray(layer.data[1]) > 0
    painted = _disk(layer, _interior(truth & ~mask), 1, plane=(1,))[1]
    before = np.array(layer.data[1], copy=True)
    viewer.layers.selection.active = layer
    _wait(qtbot, demo_widget.refine_mask())
    after = np.asarray(layer.data[1])
    assert np.all(after[painted] == 1)
    assert np.count_nonzero(after != before) > 0
    np.testing.assert_array_equal(layer.data[0], plane0)  # the other plane is untouched
    layer.undo()
    np.testing.assert_array_equal(layer.data[1], before)

    viewer.dims.set_point(0, 0)  # no strokes on plane 0: nothing to refine there
    assert demo_widget.refine_mask() is None


def test_instances_masks_refine_and_keep_the_painted_labels(viewer, demo_widget, qtbot):
    image, concept, truth = _scene()
    viewer.add_image(image, name="micrograph", rgb=True)
    demo_widget.prompts.value = concept
    demo_widget.mask_mode.value = "instances"
    run_and_wait(qtbot, demo_widget)
    layer = viewer.layers[f"{concept} instances (micrograph)"]
    mask = np.asarray(layer.data) > 0
    before_label = layer.selected_label
    layer.selected_label = 7  # a label of the user's own
    painted = _disk(layer, _interior(truth & ~mask), 7)
    layer.selected_label = before_label
    before = np.array(layer.data, copy=True)
    _wait(qtbot, demo_widget.refine_mask(layer=layer))
    after = np.asarray(layer.data)
    assert np.all(after[painted] == 7)  # the user's label, as painted
    assert np.count_nonzero(after[~painted] != before[~painted]) > 0
    assert after.dtype == before.dtype and after.max() >= 1


def test_one_stroke_on_one_ring_brings_the_other_rings_and_the_table_counts_objects(
        viewer, demo_widget, qtbot):
    """Issue 25: the object stage, through the same strokes and the same Refine."""
    image, masks = scene(1_000_001, concepts=["ring", "nucleus", "rod-shaped bacterium"],
                         instances=(4, 6))
    truth = masks["ring"]
    viewer.add_image(image, name="crowded", rgb=True)
    demo_widget.prompts.value = "ring"
    demo_widget.auto_threshold.value = False
    demo_widget.threshold.value = 0.9  # a strict mask: most rings are missing from it
    run_and_wait(qtbot, demo_widget)
    layer = viewer.layers["ring mask (crowded)"]
    rings, count = ndimage.label(truth, structure=np.ones((3, 3)))
    inside = lambda data, i: (np.asarray(data)[rings == i] > 0).mean()  # noqa: E731
    missing = [i for i in range(1, count + 1) if inside(layer.data, i) < 0.2]
    assert len(missing) >= 3
    target = max(missing, key=lambda i: (rings == i).sum())
    painted = _disk(layer, _interior(rings == target), 1)
    assert painted.any() and not (painted & (rings != target) & (rings > 0)).any()
    assert demo_widget.refiner.option_fields["objects"].read() == "classifier"  # on by default

    viewer.layers.selection.active = layer
    before = np.array(layer.data, copy=True)
    _wait(qtbot, demo_widget.refine_mask())
    joined = [i for i in missing if i != target and inside(layer.data, i) > 0.5]
    assert len(joined) >= 2, "no other ring joined the mask"
    qtbot.waitUntil(lambda: "/" in demo_widget.results.item(0, 5).text(), timeout=30000)
    kept, removed = demo_widget.refiner.stroke_counts()["ring"].objects
    assert demo_widget.results.item(0, 5).text() == f"{kept}/{kept + removed}"
    assert kept >= len(joined) + 1 and removed >= 1

    layer.undo()  # still one undo step
    np.testing.assert_array_equal(np.asarray(layer.data), before)
