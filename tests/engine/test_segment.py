"""Real images in, aligned heatmaps, masks and labels out."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from skimage import data

from napari_gem import SegmentOptions, encode, segment


@pytest.fixture(scope="module")
def small(tiny_gem):
    return tiny_gem, SegmentOptions(input_size=64)


def test_outputs_are_aligned_with_the_image_at_its_own_resolution(small):
    gem, options = small
    image = data.chelsea()
    result = segment(image, ["cat", "grass"], model=gem, options=options)
    assert result.heatmaps.shape == (2, 300, 451) and result.heatmaps.dtype == np.float32
    assert result.masks.shape == (2, 300, 451) and result.masks.dtype == bool
    assert result.instances.shape == (2, 300, 451) and result.instances.dtype == np.int32
    assert result.semantic.shape == (300, 451)
    assert set(np.unique(result.semantic)) <= {0, 1, 2}
    assert result.presence.shape == (2,) and result.thresholds.shape == (2,)
    assert np.allclose(result.heatmaps.max(axis=(1, 2)), 1) and result.heatmaps.min() == 0
    json.dumps(result.parameters)  # stored with results: must serialise
    assert result.parameters["options"]["input_size"] == 64


@pytest.mark.parametrize(
    "image",
    [
        np.zeros((1, 1), np.uint8),
        np.full((9, 9), 3.0),
        np.full((8, 8), np.nan, np.float32),
        np.ones((7, 5), bool),
        (np.random.default_rng(0).random((40, 30)) * 4000).astype(np.uint16),
        np.random.default_rng(1).integers(-100, 100, (20, 25)),
        (np.random.default_rng(2).random((30, 30, 4)) * 255).astype(np.uint8),
        np.random.default_rng(3).random((2, 3000)).astype(np.float32),
    ],
    ids=["1px", "constant", "all-nan", "bool", "uint16", "int", "rgba", "elongated"],
)
def test_awkward_images_give_finite_results_of_their_shape(small, image):
    gem, options = small
    result = segment(image, ["x"], model=gem, options=options)
    assert result.heatmaps.shape == (1, *image.shape[:2])
    assert np.isfinite(result.heatmaps).all() and np.isfinite(result.presence).all()


def test_new_prompts_reuse_the_encoded_image(small, monkeypatch):
    gem, options = small
    encoded = encode(data.coffee(), gem, options)
    calls = []
    monkeypatch.setattr(gem, "encode_image", lambda *a, **k: calls.append(1))
    first = encoded.segment(["cup"])
    second = encoded.segment(["cup", "saucer", "spoon"])
    assert not calls  # no second pass through the vision tower
    np.testing.assert_allclose(first.heatmaps[0], second.heatmaps[0], atol=1e-5)


def test_calibrated_scores_are_probabilities_gated_by_presence(small):
    gem, options = small
    encoded = encode(data.astronaut(), gem, options)
    heatmaps, presence = encoded.heatmaps(["rocket", "flag"], score_mode="calibrated")
    assert heatmaps.min() >= 0 and np.all(heatmaps.max(axis=(1, 2)) <= presence + 1e-6)
    assert 0 < presence.sum() <= 1 + 1e-6


def test_paper_mode_matches_gem_heatmaps_for_an_exact_input(small):
    gem, _ = small
    image = (np.random.default_rng(5).random((64, 64, 3)) * 255).astype(np.uint8)
    result = segment(image, ["x", "y"], model=gem, options=SegmentOptions(input_size=64))
    from napari_gem.engine.preprocess import to_pixels

    expected = gem.heatmaps(to_pixels(image / np.float32(255))[None], ["x", "y"])[0]
    torch.testing.assert_close(torch.from_numpy(result.heatmaps), expected, atol=1e-5, rtol=0)


def test_template_ensemble_and_options_round_trip(small):
    gem, options = small
    options = options.replace(templates="imagenet80", threshold=0.4, min_size=3, fill_holes=2)
    assert SegmentOptions.from_dict(json.loads(json.dumps(options.to_dict()))) == options
    result = segment(data.coffee(), "cup", model=gem, options=options)
    assert result.thresholds[0] == pytest.approx(0.4)
    assert result.parameters["options"]["templates"] == "imagenet80"


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"resize": "stretch"}, "resize"),
        ({"threshold": 2}, "threshold"),
        ({"overlap": 500}, "overlap"),
        ({"input_size": 0}, "input_size"),
        ({"percentiles": (50, 10)}, "percentiles"),
    ],
)
def test_bad_options_are_refused(changes, message):
    with pytest.raises(ValueError, match=message):
        SegmentOptions(**changes)


@pytest.mark.parametrize("prompts", [[], [""], ["cat", "   "]])
def test_empty_prompts_are_refused(small, prompts):
    gem, options = small
    with pytest.raises(ValueError, match="prompt"):
        segment(np.zeros((8, 8), np.uint8), prompts, model=gem, options=options)


def test_stacks_are_refused_with_advice(small):
    gem, options = small
    with pytest.raises(ValueError, match="one plane"):
        segment(np.zeros((3, 8, 8, 8)), "x", model=gem, options=options)


def test_lazy_arrays_are_read_window_by_window(small):
    import dask.array as da

    gem, options = small
    image = da.from_array((np.random.default_rng(6).random((300, 260)) * 255).astype(np.uint8),
                          chunks=64)
    lazy = encode(image, gem, options.replace(tiling="always", window=96, overlap=32))
    eager = encode(image.compute(), gem, options.replace(tiling="always", window=96, overlap=32))
    torch.testing.assert_close(lazy.features, eager.features)
