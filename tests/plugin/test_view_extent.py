"""'This view' (issue 24): a run on the region the canvas shows, at full resolution within a budget.

A real viewer and the packaged demo model (offline) on generated micrographs made into
multiscale layers with a non-zero translate and a scale other than 1; the camera is moved
as a user's pan and zoom move it. The outputs must cover the view's crop only and sit
exactly on the image; the crop is read lazily; re-draw, refine and export keep working.
"""

from __future__ import annotations

import json

import dask.array as da
import numpy as np
import pytest
import tifffile
from plugin_helpers import RUN_TIMEOUT_MS, ReadLog, run_and_wait

from napari_gem.demo import scene
from napari_gem.plugin.layers import META
from napari_gem.plugin.planes import MIN_SIDE
from napari_gem.plugin.run_settings import RunSettings
from napari_gem.plugin.view_region import CroppedArray, ViewBox, view_level

SEED, SIDE = 1_000_003, 768
CONCEPTS = ("nucleus", "ring")  # nuclei: what the demo model finds best at this scale
SCALE, TRANSLATE = (0.5, 0.5), (30.0, -12.0)
gui = pytest.mark.gui


def _slide(viewer, side: int = SIDE, lazy: bool = False):
    """A generated micrograph as a three-level multiscale layer; returns (layer, masks, level 0)."""
    image, masks = scene(SEED, side, concepts=CONCEPTS, instances=(20, 30))
    base = ReadLog(image) if lazy else image
    levels = [da.from_array(base, chunks=(128, 128, 3)) if lazy else base,
              image[::2, ::2], image[::4, ::4]]
    layer = viewer.add_image(levels, multiscale=True, rgb=True, name="slide", scale=SCALE,
                             translate=TRANSLATE)
    return layer, masks, base


def _look_at(viewer, layer, pixel, zoom: float) -> None:
    """Pan and zoom as a user would: level-0 ``pixel`` of ``layer`` in the canvas's centre."""
    camera = viewer.scene.camera
    camera.center = tuple(layer.data_to_world(pixel))
    camera.zoom = zoom


def _expected_box(viewer, pixel, zoom: float) -> tuple[int, int, int, int]:
    """The level-0 pixels the canvas shows around ``pixel`` (by hand: world half-extents over
    the layer's scale), clipped to the image."""
    height, width = viewer.canvas.size
    half = np.array([height, width]) / zoom / 2 / np.array(SCALE)  # in data pixels
    low, high = np.array(pixel) - half, np.array(pixel) + half
    y0, x0 = np.clip(np.floor(low + 0.5), 0, SIDE).astype(int)
    y1, x1 = np.clip(np.ceil(high + 0.5), 0, SIDE).astype(int)
    return int(y0), int(x0), int(y1), int(x1)


def _view_widget(demo_widget, prompt: str):
    demo_widget.extent.value = "view"
    demo_widget.prompts.value = prompt
    return demo_widget


def _in_level0(layer, source, shape) -> np.ndarray:
    """``layer`` (an output layer) drawn onto ``source``'s level-0 pixel grid through world
    coordinates: what the user sees over each image pixel (0 where it does not reach)."""
    rows, cols = np.indices(shape)
    world = np.stack([rows.ravel(), cols.ravel()], axis=1) * np.array(source.scale) + source.translate
    index = np.round((world - layer.translate) / layer.scale).astype(int)
    inside = np.all((index >= 0) & (index < layer.data.shape), axis=1)
    out = np.zeros(rows.size, layer.data.dtype)
    out[inside] = layer.data[index[inside, 0], index[inside, 1]]
    return out.reshape(shape)


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    return float((a & b).sum() / max((a | b).sum(), 1))


@gui
def test_this_view_runs_at_full_resolution_on_the_canvas_region_and_lines_up(
        viewer, demo_widget, qtbot):
    source, masks, _ = _slide(viewer)
    centre, zoom = (400, 300), 4.0
    _look_at(viewer, source, centre, zoom)
    _view_widget(demo_widget, "nucleus")
    run_and_wait(qtbot, demo_widget)

    heat = viewer.layers["nucleus heatmap (slide, view)"]
    mask = viewer.layers["nucleus mask (slide, view)"]
    y0, x0, y1, x1 = _expected_box(viewer, centre, zoom)
    assert heat.data.shape == mask.data.shape == (y1 - y0, x1 - x0)  # the view's crop, level 0
    record = heat.metadata[META]["parameters"]["source"]["view"]
    assert record == {"box": [y0, x0, y1, x1], "level": 0, "level_box": [y0, x0, y1, x1]}
    np.testing.assert_allclose(mask.scale, SCALE)
    # Crop pixel (i, j) is drawn where the image draws level-0 pixel (y0 + i, x0 + j).
    np.testing.assert_allclose(mask.data_to_world((7, 11)), source.data_to_world((y0 + 7, x0 + 11)))

    # The nuclei the scene drew at known level-0 pixels are under the mask, in the world.
    truth = masks["nucleus"]
    seen = _in_level0(mask, source, truth.shape) > 0
    inside = np.zeros_like(truth)
    inside[y0:y1, x0:x1] = True
    assert not seen[~inside].any()  # nothing outside the view
    placed = _iou(seen[inside], truth[inside])
    assert placed > 0.35, placed
    # Moved by a few pixels, the mask fits the nuclei worse: it is placed where they are.
    overlaps = {(dy, dx): _iou(np.roll(seen, (dy, dx), axis=(0, 1))[inside], truth[inside])
                for dy in range(-12, 13, 3) for dx in range(-12, 13, 3)}
    best = max(overlaps, key=overlaps.get)
    assert max(abs(best[0]), abs(best[1])) <= 3, (best, overlaps[best], placed)
    assert overlaps[(12, 12)] < placed - 0.1 and overlaps[(-12, -12)] < placed - 0.1


@gui
def test_a_view_larger_than_the_budget_runs_at_the_finest_level_within_it(
        viewer, demo_widget, qtbot):
    source, _, _ = _slide(viewer)
    _look_at(viewer, source, (SIDE / 2, SIDE / 2), 0.4)  # the whole slide in sight
    _view_widget(demo_widget, "nucleus").view_megapixels.value = 0.1  # 768^2 and 384^2 are over
    run_and_wait(qtbot, demo_widget)
    heat = viewer.layers["nucleus heatmap (slide, view)"]
    assert heat.data.shape == (192, 192)  # level 2 (factor 4), all of it in view
    assert heat.metadata[META]["parameters"]["source"]["view"]["level"] == 2
    np.testing.assert_allclose(heat.scale, np.array(SCALE) * 4)
    np.testing.assert_allclose(heat.data_to_world((10, 20)), source.data_to_world((40, 80)))


@gui
def test_only_the_crop_of_a_lazy_level_is_read(viewer, demo_widget, qtbot):
    source, _, log = _slide(viewer, lazy=True)
    _look_at(viewer, source, (300, 500), 8.0)
    _view_widget(demo_widget, "nucleus")
    log.reads.clear()
    run_and_wait(qtbot, demo_widget)
    height, width = viewer.layers["nucleus heatmap (slide, view)"].data.shape
    assert log.reads, "the run read nothing from level 0"
    biggest = max(int(np.prod(shape[:2])) for shape in log.reads)
    assert biggest <= height * width < SIDE * SIDE / 8, biggest


@gui
def test_a_view_outside_the_image_is_refused_and_nothing_runs(viewer, demo_widget, notes):
    source, _, _ = _slide(viewer)
    _look_at(viewer, source, (-2000, -2000), 4.0)
    _view_widget(demo_widget, "nucleus")
    before = len(viewer.layers)
    assert demo_widget.run() is None
    assert "shows no part of 'slide'" in notes("error")[-1]
    assert len(viewer.layers) == before


@gui
def test_a_tiny_view_grows_around_its_centre_to_what_the_model_needs(viewer, demo_widget, qtbot):
    source, _, _ = _slide(viewer)
    _look_at(viewer, source, (100, 200), 2000.0)  # a fraction of one pixel in sight
    _view_widget(demo_widget, "nucleus")
    run_and_wait(qtbot, demo_widget)
    heat = viewer.layers["nucleus heatmap (slide, view)"]
    assert heat.data.shape == (MIN_SIDE, MIN_SIDE)
    box = heat.metadata[META]["parameters"]["source"]["view"]["level_box"]
    assert box == [100 - MIN_SIDE // 2, 200 - MIN_SIDE // 2, 100 + MIN_SIDE // 2, 200 + MIN_SIDE // 2]


@gui
def test_extent_is_offered_for_multiscale_and_large_layers_only(viewer, demo_widget):
    small = viewer.add_image(np.zeros((64, 64), np.uint8), name="small")
    demo_widget.image_layer.value = small
    assert demo_widget.extent.native.isHidden()
    assert demo_widget.source.chosen_extent(demo_widget.tile_above.value) == "fit"
    demo_widget.tile_above.value = 32  # now the plane is larger than a tile
    assert not demo_widget.extent.native.isHidden()
    assert demo_widget.view_megapixels.native.isHidden()  # only for 'this view'
    demo_widget.extent.value = "view"
    assert not demo_widget.view_megapixels.native.isHidden()
    demo_widget.tile_above.value = 2048
    source, _, _ = _slide(viewer)
    demo_widget.image_layer.value = source
    assert not demo_widget.extent.native.isHidden()
    assert "'this view'" in demo_widget.extent.tooltip  # its help says what each does
    combo = demo_widget.extent.native
    assert [combo.itemText(i) for i in range(combo.count())] == ["level that fits", "this view",
                                                                 "whole image"]


@gui
def test_an_extent_the_controller_does_not_know_is_refused_clearly(viewer, demo_widget, notes):
    source, _, _ = _slide(viewer)
    settings = RunSettings(layer=source, prompts=["nucleus"], spec=demo_widget.model_spec(),
                           options=demo_widget.options(), extent="whole")
    assert demo_widget.controller.start(settings) is None
    message = notes("error")[-1]
    assert "'whole'" in message and "'level that fits'" in message and "'this view'" in message


@gui
def test_a_3d_canvas_is_refused_for_this_view(viewer, demo_widget, notes):
    viewer.add_image(np.zeros((4, 80, 80), np.uint8), name="volume")
    demo_widget.tile_above.value = 32
    viewer.dims.ndisplay = 3
    _view_widget(demo_widget, "nucleus")
    assert demo_widget.run() is None
    assert "needs napari's 2D view" in notes("error")[-1]


@gui
def test_a_stack_runs_the_view_on_the_current_plane_or_on_every_plane(viewer, demo_widget, qtbot):
    image, _ = scene(SEED, 160)
    stack = np.stack([image, np.roll(image, 9, axis=1)])
    source = viewer.add_image(stack, rgb=True, name="stack", scale=(1.0, *SCALE),
                              translate=(0.0, *TRANSLATE))
    demo_widget.tile_above.value = 100  # a plane of 160 px is now large
    demo_widget.image_layer.value = source
    viewer.dims.set_current_step(0, 1)
    camera = viewer.scene.camera
    camera.center = tuple(source.data_to_world((1, 60, 90)))[-2:]
    camera.zoom = 8.0
    _view_widget(demo_widget, "nucleus")
    run_and_wait(qtbot, demo_widget)  # the current plane: the one on screen
    heat = viewer.layers["nucleus heatmap (stack, view)"]
    assert heat.data[1].max() > 0 and not heat.data[0].any()

    demo_widget.plane_mode.value = "all"
    run_and_wait(qtbot, demo_widget)
    view = heat.metadata[META]["parameters"]["source"]["view"]
    y0, x0, y1, x1 = view["box"]
    assert heat.data.shape == (2, y1 - y0, x1 - x0)
    assert heat.data[0].max() > 0 and heat.data[1].max() > 0  # the same box on both planes
    np.testing.assert_allclose(heat.data_to_world((1, 3, 4)), source.data_to_world((1, y0 + 3, x0 + 4)))


@gui
def test_redraw_refine_and_export_keep_the_views_placement(viewer, demo_widget, qtbot, tmp_path):
    source, _, _ = _slide(viewer)
    _look_at(viewer, source, (400, 300), 4.0)
    _view_widget(demo_widget, "nucleus")
    run_and_wait(qtbot, demo_widget)
    mask = viewer.layers["nucleus mask (slide, view)"]
    shape, translate = mask.data.shape, tuple(mask.translate)

    demo_widget.auto_threshold.value = False
    demo_widget.threshold.value = 0.9
    demo_widget.redraw()
    assert mask.data.shape == shape and tuple(mask.translate) == translate
    strict = int((mask.data > 0).sum())
    demo_widget.threshold.value = 0.2
    demo_widget.redraw()
    assert int((mask.data > 0).sum()) > strict  # the re-draw reached the view's mask

    before = np.array(mask.data, copy=True)
    mask.brush_size = 7
    mask.paint((20, 20), 0)  # an erase stroke, as napari's eraser makes it
    viewer.layers.selection.active = mask
    worker = demo_widget.refine_mask()
    assert worker is not None, "the refinement was refused"
    with qtbot.waitSignal(worker.finished, timeout=RUN_TIMEOUT_MS):
        pass
    assert mask.data.shape == shape and not np.array_equal(mask.data, before)

    paths = demo_widget.export(tmp_path)
    record = json.loads((tmp_path / "slide_parameters.json").read_text())
    assert record["source"]["view"]["box"] == \
        viewer.layers["nucleus heatmap (slide, view)"].metadata[META]["parameters"]["source"]["view"]["box"]
    np.testing.assert_allclose(record["translate"], translate)
    tiff = next(path for path in paths if path.name == "slide_nucleus_edited_mask.tif")  # erased
    np.testing.assert_array_equal(tifffile.imread(tiff), mask.data)
    reopened = viewer.open(tmp_path / "slide_parameters.json", plugin="napari-gem")
    placed = next(layer for layer in reopened if layer.data.shape == shape and layer.data.dtype != np.float32)
    np.testing.assert_allclose(placed.translate, translate)
    np.testing.assert_allclose(placed.scale, mask.scale)


@gui
def test_region_labels_and_example_boxes_are_refused_in_a_view(viewer, demo_widget, notes):
    source, _, _ = _slide(viewer)
    _look_at(viewer, source, (400, 300), 4.0)
    _view_widget(demo_widget, "@examples")
    viewer.add_shapes([[[10, 10], [40, 40]]], shape_type="rectangle", name="examples")
    demo_widget.image_layer.value = source
    assert demo_widget.run() is None
    assert "Example boxes" in notes("error")[-1]


@gui
def test_extent_and_view_budget_are_remembered(make_napari_viewer, demo_widget):
    demo_widget.extent.value = "view"
    demo_widget.view_megapixels.value = 2.5
    demo_widget.save_settings()
    _, second = make_napari_viewer().window.add_plugin_dock_widget("napari-gem", "Segment by text")
    assert (second.extent.value, second.view_megapixels.value) == ("view", 2.5)


@gui
def test_the_same_view_reuses_its_encoding_and_another_view_does_not(viewer, demo_widget, qtbot):
    source, _, _ = _slide(viewer)
    _look_at(viewer, source, (400, 300), 4.0)
    _view_widget(demo_widget, "nucleus")
    run_and_wait(qtbot, demo_widget)
    demo_widget.prompts.value = "nucleus, ring"
    run_and_wait(qtbot, demo_widget)
    assert "(encoding reused)" in demo_widget.status.value  # a new prompt on this view: text only
    _look_at(viewer, source, (200, 500), 4.0)  # the user pans: another image
    run_and_wait(qtbot, demo_widget)
    assert "(encoding reused)" not in demo_widget.status.value
    box = viewer.layers["ring heatmap (slide, view)"].metadata[META]["parameters"]["source"]["view"]["box"]
    assert box == list(_expected_box(viewer, (200, 500), 4.0))


@gui
def test_a_view_of_a_rotated_sheared_layer_is_placed_on_it(viewer):
    from napari_gem.engine import SegmentOptions
    from napari_gem.plugin.planes import ChannelChoice, build_job

    image, _ = scene(SEED, 256)
    source = viewer.add_image([image, image[::2, ::2]], multiscale=True, rgb=True, name="turned",
                              scale=SCALE, translate=TRANSLATE, rotate=30, shear=[0.2])
    job = build_job(source, ChannelChoice(), "current", SegmentOptions(), viewer.dims.point,
                    view=ViewBox(40, 60, 140, 200), view_budget=4_000)  # 100 x 140: over
    # Level 1's pixels 20..70 and 30..100 (centred on level-0 40..140 and 60..200) cover it.
    assert job.level == 1 and job.plane_shape == (51, 71)
    out = viewer.add_image(np.zeros(job.geometry.shape), **job.geometry.layer_kwargs())
    for pixel in ((0, 0), (10, 33), (50, 70)):
        level0 = (2 * (20 + pixel[0]), 2 * (30 + pixel[1]))
        np.testing.assert_allclose(out.data_to_world(pixel), source.data_to_world(level0), atol=1e-9)


# -- the box and the crop, without a viewer -------------------------------------------------------
def test_a_level_zero_box_maps_to_the_level_pixels_covering_it():
    box = ViewBox(10, 20, 30, 41)
    assert box.at_level((1, 1), (100, 100)) == box
    assert box.at_level((4, 4), (25, 25)) == ViewBox(2, 5, 8, 11)
    assert ViewBox(0, 0, 100, 100).at_level((4, 4), (25, 25)) == ViewBox(0, 0, 25, 25)


def test_the_view_level_is_the_finest_within_the_budget():
    box = ViewBox(0, 0, 400, 400)
    factors, shapes = [(1, 1), (2, 2), (4, 4)], [(400, 400), (200, 200), (100, 100)]
    assert view_level(box, factors, shapes, 160_000) == 0
    assert view_level(box, factors, shapes, 159_999) == 1
    assert view_level(box, factors, shapes, 10_000) == 2
    assert view_level(box, factors, shapes, 10) == 2  # nothing fits: the coarsest


def test_a_box_grows_around_its_centre_and_stays_inside_the_plane():
    assert ViewBox(50, 50, 52, 51).grown(8, (100, 100)) == ViewBox(47, 46, 55, 54)
    assert ViewBox(0, 98, 2, 100).grown(8, (100, 100)) == ViewBox(0, 92, 8, 100)
    assert ViewBox(0, 0, 3, 3).grown(8, (5, 6)) == ViewBox(0, 0, 5, 6)  # the plane is the limit


def test_a_cropped_array_reads_its_box_only():
    array = np.arange(2 * 50 * 60).reshape(2, 50, 60)
    log = ReadLog(array)
    crop = CroppedArray(log, 1, ViewBox(10, 20, 30, 45))
    assert crop.shape == (2, 20, 25)
    np.testing.assert_array_equal(crop[1, 2:5, ::2], array[1, 12:15, 20:45:2])
    np.testing.assert_array_equal(crop[0, -1, 3], array[0, 29, 23])
    np.testing.assert_array_equal(np.asarray(crop[:, :, :]), array[:, 10:30, 20:45])
    assert log.reads[-1] == (2, 20, 25)
    with pytest.raises(IndexError):
        crop[0, 20, 0]
