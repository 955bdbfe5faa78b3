"""Every kind of image napari holds: stacks, time series, channels, lazy and multiscale data."""

from __future__ import annotations

import dask.array as da
import numpy as np
import pytest
from napari.utils import progress
from plugin_helpers import ReadLog, run_and_wait
from skimage.data import camera, chelsea

from napari_gem.plugin.layers import META

pytestmark = pytest.mark.gui


def _stack(planes: int = 3, side: int = 48) -> np.ndarray:
    image = camera()[::8, ::8][:side, :side]
    return np.stack([np.roll(image, 5 * i, axis=1) for i in range(planes)])


def test_stack_current_plane_fills_that_plane_of_a_full_size_output(viewer, widget, qtbot):
    source = viewer.add_image(_stack(), name="stack", scale=(3.0, 1.0, 1.0))
    viewer.dims.set_current_step(0, 2)
    widget.prompts.value = "man"
    assert not widget.plane_mode.native.isHidden()
    run_and_wait(qtbot, widget)
    heat, mask = viewer.layers["man heatmap (stack)"], viewer.layers["man mask (stack)"]
    assert heat.data.shape == mask.data.shape == source.data.shape
    np.testing.assert_allclose(heat.scale, source.scale)
    assert heat.data[2].max() > 0 and not heat.data[:2].any()
    assert list(heat.metadata[META]["planes"]) == ["2"]

    viewer.dims.set_current_step(0, 0)  # another plane: added to the same layers
    run_and_wait(qtbot, widget)
    assert viewer.layers["man heatmap (stack)"] is heat
    assert heat.data[0].max() > 0 and heat.data[2].max() > 0 and not heat.data[1].any()


def test_time_series_all_planes_batched_with_progress(viewer, widget, qtbot):
    movie = np.stack([_stack(2, 32), _stack(2, 32)[:, ::-1]])  # t, z, y, x
    viewer.add_image(movie, name="movie")
    widget.prompts.value = "man, sky"
    widget.plane_mode.value = "all"
    steps, bars = [], set()
    worker = widget.run()
    worker.yielded.connect(steps.append)
    # Progress shows in napari's activity dock: a napari progress bar while it runs.
    worker.yielded.connect(lambda _: bars.update(str(p) for p in progress._all_instances))
    with qtbot.waitSignal(worker.finished, timeout=60_000):
        pass
    qtbot.waitUntil(lambda: not widget.controller.busy)
    assert any(bar.startswith("napari-gem: plane") for bar in bars)
    assert not any(str(p).startswith("napari-gem") for p in progress._all_instances)
    heat = viewer.layers["man heatmap (movie)"]
    assert heat.data.shape == movie.shape
    assert all(heat.data[t, z].max() > 0 for t in range(2) for z in range(2))
    assert viewer.layers["sky mask (movie)"].data.shape == movie.shape
    assert any(step.text.startswith("plane 4/4") for step in steps)
    assert widget.status.value.startswith("'movie': 4 planes")


def test_channel_axis_one_channel_as_gray(viewer, widget, qtbot):
    rng = np.random.default_rng(0)
    data = np.stack([camera()[::8, ::8], rng.integers(0, 255, (64, 64), dtype=np.uint8)])
    viewer.add_image(data, name="two channels")
    widget.prompts.value = "man"
    run_and_wait(qtbot, widget)  # first as a stack of two planes ...
    assert viewer.layers["man heatmap (two channels)"].data.shape == (2, 64, 64)
    widget.channel_mode.value = "gray"  # ... then channel 0 as the image
    widget.channel_axis.value = 0
    widget.channel.value = 0
    assert widget.plane_mode.native.isHidden()  # the only leading axis is the channel axis
    run_and_wait(qtbot, widget)
    heat = viewer.layers["man heatmap (two channels)"]  # the same layer, new geometry
    assert heat.data.shape == (1, 64, 64)
    np.testing.assert_allclose(heat.scale, (2.0, 1.0, 1.0))
    assert heat.metadata[META]["parameters"]["source"]["channels"] == {
        "mode": "gray", "axis": 0, "channels": [0]}
    # The one output plane covers both channels: visible whichever channel is shown.
    for channel in (0, 1):
        viewer.dims.set_current_step(0, channel)
        assert heat._slice.image.raw.shape == (64, 64)
        assert heat._slice.image.raw.max() > 0


def test_three_channels_as_rgb_and_channels_split_into_layers(viewer, widget, qtbot):
    rgb = chelsea()[::4, ::4]
    channels = np.moveaxis(rgb, -1, 0)
    viewer.add_image(channels, name="cyx")
    widget.channel_mode.value = "rgb"
    widget.channel_axis.value = 0
    widget.rgb_channels.value = "0, 1, 2"
    widget.prompts.value = "cat"
    run_and_wait(qtbot, widget)
    from_axis = viewer.layers["cat heatmap (cyx)"].data[0].copy()

    red, green, blue = viewer.add_image(channels, channel_axis=0, name=["r", "g", "b"])
    widget.image_layer.value = red
    widget.channel_mode.value = "layers"
    widget.green_layer.value = green
    widget.blue_layer.value = blue
    run_and_wait(qtbot, widget)
    from_layers = viewer.layers["cat heatmap (r)"].data
    assert from_layers.shape == rgb.shape[:2]
    np.testing.assert_allclose(from_layers, from_axis, atol=1e-5)  # same pixels, same map


def test_lazy_dask_stack_is_read_plane_by_plane(viewer, widget, qtbot):
    stack = _stack(3, 48)
    log = ReadLog(stack)
    viewer.add_image(da.from_array(log, chunks=(1, 48, 48)), name="lazy")
    log.reads.clear()
    widget.plane_mode.value = "all"
    widget.prompts.value = "man"
    run_and_wait(qtbot, widget)
    assert viewer.layers["man heatmap (lazy)"].data.shape == stack.shape
    assert log.reads and max(np.prod(shape) for shape in log.reads) <= 48 * 48


def test_large_lazy_image_is_tiled_window_by_window(viewer, widget, qtbot):
    image = np.tile(camera()[::4, ::4], (2, 2))  # 256 x 256
    log = ReadLog(image)
    viewer.add_image(da.from_array(log, chunks=(64, 64)), name="big")
    log.reads.clear()
    widget.tiling.value = "always"
    widget.prompts.value = "man"
    steps = []
    worker = widget.run()
    worker.yielded.connect(steps.append)
    with qtbot.waitSignal(worker.finished, timeout=60_000):
        pass
    qtbot.waitUntil(lambda: not widget.controller.busy)
    assert viewer.layers["man heatmap (big)"].data.shape == (256, 256)
    assert any("encoding (" in step.text for step in steps)  # window progress reported
    windows = [shape for shape in log.reads if shape == (64, 64)]
    assert len(windows) >= 9  # read as windows, not as one array


def test_multiscale_runs_on_a_fitting_level_and_overlays_level_zero(viewer, widget, qtbot):
    base = camera()  # 512 x 512
    pyramid = [base, base[::2, ::2], base[::4, ::4]]
    source = viewer.add_image(pyramid, multiscale=True, name="pyramid", scale=(0.5, 0.5))
    widget.tiling.value = "never"
    widget.input_size.value = 128
    widget.prompts.value = "man"
    run_and_wait(qtbot, widget)
    heat = viewer.layers["man heatmap (pyramid)"]
    assert heat.data.shape == (128, 128)  # level 2: 128 px >= input size 128
    np.testing.assert_allclose(heat.scale, (2.0, 2.0))
    # Level-2 pixel (i, j) sits where napari draws it: on level-0 pixel (4i, 4j).
    np.testing.assert_allclose(heat.data_to_world((10, 20)), source.data_to_world((40, 80)))
    assert heat.metadata[META]["parameters"]["source"]["level"] == 2
