"""Sliding windows cover the image on the patch grid and blend without seams."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from napari_gem import SegmentOptions, encode
from napari_gem.engine.preprocess import to_pixels
from napari_gem.engine.tiling import FeatureBlender, plan_windows, read_window, taper


@pytest.mark.parametrize("shape", [(1000, 700), (448, 448), (100, 5000), (17, 33)])
def test_windows_cover_the_padded_image_on_the_patch_grid(shape):
    plan = plan_windows(shape, 448, 112, 16)
    covered = np.zeros(plan.padded_shape, bool)
    for y, x in plan.starts:
        assert y % 16 == 0 and x % 16 == 0
        covered[y : y + plan.window_shape[0], x : x + plan.window_shape[1]] = True
    assert covered.all()
    assert all(p % 16 == 0 and p - s < 16 for p, s in zip(plan.padded_shape, shape, strict=True))


def test_neighbouring_windows_overlap_by_at_least_the_overlap():
    plan = plan_windows((2000, 448), 448, 112, 16)
    ys = sorted({y for y, _ in plan.starts})
    assert all(b - a <= 448 - 112 for a, b in zip(ys, ys[1:], strict=False))


def test_taper_is_positive_and_flat_inside():
    weights = taper((28, 28), 7)
    assert weights.min() > 0 and weights[10:18, 10:18].eq(1).all()


def test_window_reading_pads_with_edge_values():
    image = np.arange(12).reshape(3, 4)
    window = read_window(image, (0, 2), (4, 4))
    np.testing.assert_array_equal(window[:, 2:], [[3, 3], [7, 7], [11, 11], [11, 11]])


def test_blending_constant_features_gives_the_constant():
    plan = plan_windows((200, 300), 96, 32, 16)
    blender = FeatureBlender(plan, dim=3)
    for start in plan.starts:
        blender.add(start, torch.ones(*plan.window_grid, 3) * 2)
    torch.testing.assert_close(blender.result(), torch.full((*plan.grid_shape, 3), 2.0))


def test_one_window_over_the_whole_image_equals_gem_at_native_resolution(tiny_gem):
    image = (np.random.default_rng(3).random((96, 128, 3)) * 255).astype(np.uint8)
    encoded = encode(image, tiny_gem, SegmentOptions(tiling="always", window=448, overlap=0))
    direct = tiny_gem.encode_image(to_pixels(image / np.float32(255))[None]).dense_features[0]
    assert encoded.num_windows == 1
    torch.testing.assert_close(encoded.features, direct, atol=1e-5, rtol=0)


def test_tiled_similarity_is_the_weighted_blend_of_window_similarities(tiny_gem):
    image = (np.random.default_rng(4).random((64, 160, 3)) * 255).astype(np.uint8)
    options = SegmentOptions(tiling="always", window=96, overlap=32)
    encoded = encode(image, tiny_gem, options)
    plan = plan_windows((64, 160), 96, 32, 16)
    text = tiny_gem.encode_text(["x"])[0]
    total = torch.zeros(plan.grid_shape)
    weight = torch.zeros(plan.grid_shape)
    ramp = taper(plan.window_grid, 2)
    for y, x in plan.starts:
        window = image[y : y + plan.window_shape[0], x : x + plan.window_shape[1]]
        dense = tiny_gem.encode_image(to_pixels(window / np.float32(255))[None]).dense_features[0]
        gy, gx = y // 16, x // 16
        total[gy : gy + ramp.shape[0], gx : gx + ramp.shape[1]] += (dense @ text) * ramp
        weight[gy : gy + ramp.shape[0], gx : gx + ramp.shape[1]] += ramp
    expected = total / weight
    torch.testing.assert_close(encoded.similarity(["x"], ("a photo of a {}.",))[0], expected,
                               atol=1e-5, rtol=0)


def test_tiling_reports_progress_and_can_be_cancelled(tiny_gem):
    image = np.zeros((200, 200), np.uint8)
    calls = []
    options = SegmentOptions(tiling="always", window=64, overlap=16, window_batch=2)
    encode(image, tiny_gem, options, progress=lambda done, total: calls.append((done, total)))
    assert calls[-1] == (1, 1) and len(calls) > 3
    from napari_gem import Cancelled

    with pytest.raises(Cancelled):
        encode(image, tiny_gem, options, cancelled=lambda: len(calls) > 5 or calls.append(0))
