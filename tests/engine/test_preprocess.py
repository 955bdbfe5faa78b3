"""Any 2D image becomes CLIP input: dtypes, channels, contrast, sizes."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from napari_gem.engine.preprocess import (
    CLIP_MEAN,
    CLIP_STD,
    image_layout,
    intensity_map,
    model_input_size,
    resize_rgb,
    to_pixels,
    to_rgb,
)


@pytest.mark.parametrize(
    ("shape", "layout"),
    [((5, 7), (5, 7, 1)), ((5, 7, 3), (5, 7, 3)), ((5, 7, 4), (5, 7, 4)), ((1, 1), (1, 1, 1))],
)
def test_image_layouts(shape, layout):
    assert image_layout(shape) == layout


@pytest.mark.parametrize("shape", [(4, 5, 6), (2, 3, 4, 5), (7,)])
def test_other_layouts_are_refused_with_advice(shape):
    with pytest.raises(ValueError, match="one plane|2D image"):
        image_layout(shape)


def test_uint8_is_used_as_is_and_other_dtypes_get_robust_percentiles():
    assert intensity_map(np.zeros((3, 3), np.uint8), "auto", (1, 99)).high == 255
    values = np.arange(1000, dtype=np.uint16).reshape(10, 100)
    values[0, 0] = 60000  # one hot pixel must not squash the contrast
    mapping = intensity_map(values, "auto", (1.0, 99.0))
    assert 5 < mapping.low < 15 and 980 < mapping.high < 1000
    assert to_rgb(values, mapping).max() == 1.0


def test_bool_images_map_to_zero_and_one():
    image = np.eye(4, dtype=bool)
    rgb = to_rgb(image, intensity_map(image, "auto", (1, 99)))
    assert rgb.shape == (4, 4, 3)
    np.testing.assert_array_equal(rgb[..., 0], np.eye(4))


def test_nans_and_constant_images_give_finite_black_input():
    nan_image = np.full((6, 6), np.nan, np.float32)
    assert not np.isnan(to_rgb(nan_image, intensity_map(nan_image, "auto", (1, 99)))).any()
    partly = np.arange(36, dtype=np.float64).reshape(6, 6)
    partly[2, 2] = np.nan
    rgb = to_rgb(partly, intensity_map(partly, "auto", (1, 99)))
    assert np.isfinite(rgb).all() and rgb[2, 2, 0] == 0
    constant = np.full((6, 6), 7, np.int32)
    assert to_rgb(constant, intensity_map(constant, "auto", (1, 99))).max() == 0


def test_contrast_none_uses_the_dtype_range():
    image = np.array([[0, 65535]], np.uint16)
    np.testing.assert_allclose(to_rgb(image, intensity_map(image, "none", (1, 99)))[0, :, 0], [0, 1])


def test_rgba_drops_alpha_and_gray_is_repeated():
    rgba = np.zeros((2, 2, 4), np.uint8)
    rgba[..., 0], rgba[..., 3] = 255, 10
    rgb = to_rgb(rgba, intensity_map(rgba, "auto", (1, 99)))
    np.testing.assert_array_equal(rgb[0, 0], [1, 0, 0])


def test_pixels_are_clip_normalised():
    pixels = to_pixels(np.ones((2, 2, 3), np.float32))
    expected = (1 - torch.tensor(CLIP_MEAN)) / torch.tensor(CLIP_STD)
    torch.testing.assert_close(pixels[:, 0, 0], expected)


def test_model_input_size_square_and_aspect_preserving():
    assert model_input_size((300, 451), 448, "square", 16) == (448, 448)
    assert model_input_size((300, 600), 448, "keep_aspect", 16) == (224, 448)
    assert model_input_size((1, 5000), 448, "keep_aspect", 16) == (16, 448)


def test_resize_keeps_values_in_range():
    rgb = np.random.default_rng(0).random((10, 13, 3)).astype(np.float32)
    resized = resize_rgb(rgb, (64, 32))
    assert resized.shape == (64, 32, 3) and resized.min() >= 0 and resized.max() <= 1
