"""What the model sees: planes, channels, lazy reads and multiscale levels (no viewer)."""

from __future__ import annotations

import dask.array as da
import numpy as np
import pytest
from napari.layers import Image
from plugin_helpers import ReadLog

from napari_gem.engine import SegmentOptions
from napari_gem.plugin.planes import (
    ChannelChoice,
    PlaneError,
    build_job,
    choose_level,
    describe_constant,
)


def test_stack_current_plane_reads_only_that_plane():
    stack = np.arange(4 * 32 * 40, dtype=np.uint16).reshape(4, 32, 40)
    log = ReadLog(stack)
    layer = Image(da.from_array(log, chunks=(1, 32, 40)), scale=(2.0, 0.5, 0.5))
    log.reads.clear()  # napari itself looks at the first plane
    job = build_job(layer, ChannelChoice(), "current", SegmentOptions(), world_point=(4.0, 0, 0))
    assert len(job.planes) == 1
    index, view = job.planes[0]
    assert index == (2,)  # world z = 4 at z-scale 2
    assert view.shape == (32, 40)
    np.testing.assert_array_equal(np.asarray(view), stack[2])
    np.testing.assert_array_equal(view[8:16, ::4], stack[2, 8:16, ::4])
    assert log.reads and all(np.prod(shape) <= 32 * 40 for shape in log.reads)
    assert job.geometry.shape == (4, 32, 40)
    assert job.geometry.scale == (2.0, 0.5, 0.5)


def test_all_planes_of_a_time_series():
    movie = np.random.default_rng(0).random((2, 3, 16, 16)).astype(np.float32)
    job = build_job(Image(movie), ChannelChoice(), "all", SegmentOptions())
    assert [index for index, _ in job.planes] == [(t, z) for t in range(2) for z in range(3)]
    np.testing.assert_array_equal(np.asarray(job.planes[4][1]), movie[1, 1])


def test_channel_axis_gray_and_rgb_collapse_the_channel_axis():
    data = np.random.default_rng(1).random((5, 3, 16, 20)).astype(np.float32)  # z, c, y, x
    layer = Image(data, scale=(1.0, 1.0, 0.3, 0.3), translate=(0, 0, 10, 20))
    gray = build_job(layer, ChannelChoice("gray", axis=1, channels=(2,)), "all", SegmentOptions())
    assert len(gray.planes) == 5
    index, view = gray.planes[3]
    assert index == (3, 0)
    np.testing.assert_array_equal(np.asarray(view), data[3, 2])
    # The size-1 channel axis spans all three channels, centred, so masks show on each.
    assert gray.geometry.shape == (5, 1, 16, 20)
    assert gray.geometry.scale[1] == 3.0 and gray.geometry.translate[1] == 1.0
    assert gray.geometry.translate[2:] == (10.0, 20.0)

    rgb = build_job(layer, ChannelChoice("rgb", axis=1, channels=(2, 0, 1)), "current",
                    SegmentOptions())
    _, view = rgb.planes[0]
    assert view.shape == (16, 20, 3)
    np.testing.assert_array_equal(np.asarray(view), np.stack([data[0, 2], data[0, 0],
                                                             data[0, 1]], axis=-1))


def test_three_layers_as_rgb():
    rng = np.random.default_rng(2)
    red, green, blue = (Image(rng.random((12, 12)).astype(np.float32)) for _ in range(3))
    job = build_job(red, ChannelChoice("layers", extra_layers=(green, blue)), "current",
                    SegmentOptions())
    _, view = job.planes[0]
    np.testing.assert_array_equal(np.asarray(view)[..., 1], green.data)
    with pytest.raises(PlaneError, match="one shape"):
        build_job(red, ChannelChoice("layers", extra_layers=(green, Image(np.zeros((9, 9))))),
                  "current", SegmentOptions())


def test_bad_channel_choices_say_why():
    layer = Image(np.zeros((2, 16, 16), np.float32))
    with pytest.raises(PlaneError, match="out of range"):
        build_job(layer, ChannelChoice("gray", axis=0, channels=(5,)), "current", SegmentOptions())
    with pytest.raises(PlaneError, match="no channel axis"):
        build_job(Image(np.zeros((16, 16))), ChannelChoice("gray", axis=0, channels=(0,)),
                  "current", SegmentOptions())
    with pytest.raises(PlaneError, match="too small"):
        build_job(Image(np.zeros((1, 1))), ChannelChoice(), "current", SegmentOptions())


def test_multiscale_level_choice_and_geometry():
    pyramid = [np.zeros((512, 512), np.uint8), np.zeros((256, 256), np.uint8),
               np.zeros((128, 128), np.uint8)]
    layer = Image(pyramid, multiscale=True, scale=(0.5, 0.5))
    never = SegmentOptions(input_size=128, tiling="never")
    job = build_job(layer, ChannelChoice(), "current", never)
    assert job.level == 2 and job.plane_shape == (128, 128)
    assert job.geometry.shape == (128, 128) and job.geometry.scale == (2.0, 2.0)
    assert choose_level([(512, 512), (256, 256)], SegmentOptions(tiling="always")) == 0
    assert choose_level([(4096, 4096), (2048, 2048), (1024, 1024)],
                        SegmentOptions(tiling="auto", tile_above=2048)) == 1
    assert choose_level([(512, 512), (256, 256)], SegmentOptions(input_size=448,
                                                                 tiling="never")) == 0


def test_constant_and_nan_planes_are_recognised():
    nan_layer = Image(np.full((20, 20), np.nan, np.float32))
    _, view = build_job(nan_layer, ChannelChoice(), "current", SegmentOptions()).planes[0]
    assert "NaN" in describe_constant(view)
    _, view = build_job(Image(np.full((20, 20), 7, np.uint8)), ChannelChoice(), "current",
                        SegmentOptions()).planes[0]
    assert "constant" in describe_constant(view)
    ramp = Image(np.arange(400, dtype=np.float32).reshape(20, 20))
    _, view = build_job(ramp, ChannelChoice(), "current", SegmentOptions()).planes[0]
    assert describe_constant(view) is None
