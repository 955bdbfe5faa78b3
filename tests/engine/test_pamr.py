"""PAMR: hand-computed cases, tiles equal to the whole, and refinement through the API."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import napari_gem
from napari_gem.engine.refinement import pamr, pamr_tiled


def test_a_flat_guide_averages_the_eight_replicated_neighbours():
    # Constant guide: every affinity is 1/8. For the top-left pixel of a 2x2 map the
    # eight neighbours (borders replicated) are a, a, b, a, b, c, c, d.
    maps = torch.tensor([[[1.0, 0.0], [0.0, 0.0]]])
    guide = torch.zeros(3, 2, 2)
    refined = pamr(maps, guide, steps=1, dilations=(1,))
    expected = torch.tensor([[[3 / 8, 2 / 8], [2 / 8, 1 / 8]]])
    torch.testing.assert_close(refined, expected)


def test_an_edge_in_the_guide_stops_the_spread():
    # A 1x2 image, guide 0 | 1: each pixel's 3x3 samples are {0,0,1} x 3 (std 0.5), so
    # the 3 neighbours across the edge get logit -1/(0.1*0.5) = -20, the 5 others 0.
    maps = torch.tensor([[[1.0, 0.0]]])
    guide = torch.tensor([[[0.0, 1.0]]]).expand(3, 1, 2)
    refined = pamr(maps, guide, steps=1, dilations=(1,))
    across = math.exp(-20 / (1 + 1e-7))  # 1e-8 + 0.1 * 0.5 in the denominator
    torch.testing.assert_close(
        refined, torch.tensor([[[5 / (5 + 3 * across), 3 * across / (5 + 3 * across)]]])
    )


def test_steps_repeat_the_same_propagation():
    torch.manual_seed(0)
    maps, guide = torch.rand(2, 20, 24), torch.rand(3, 20, 24)
    twice = pamr(pamr(maps, guide, steps=1, dilations=(1, 2)), guide, steps=1, dilations=(1, 2))
    torch.testing.assert_close(pamr(maps, guide, steps=2, dilations=(1, 2)), twice)


def test_tiles_with_a_halo_equal_the_whole_image():
    torch.manual_seed(1)
    maps, guide = torch.rand(3, 200, 230), torch.rand(3, 200, 230)
    whole = pamr(maps, guide, steps=3, dilations=(2, 4))
    tiled = pamr_tiled(
        maps, lambda y0, y1, x0, x1: guide[:, y0:y1, x0:x1], steps=3, dilations=(2, 4), tile=64
    )
    torch.testing.assert_close(tiled, whole, atol=1e-6, rtol=0)


@pytest.mark.parametrize(
    ("steps", "dilations", "message"),
    [
        (0, (8, 16), "steps"),
        (10, (), "dilations"),
        (10, (8, -1), "dilations"),
        (2.5, (8,), "steps"),
    ],
)
def test_bad_pamr_settings_are_refused(steps, dilations, message):
    with pytest.raises(ValueError, match=message):
        pamr(torch.rand(1, 8, 8), torch.rand(3, 8, 8), steps=steps, dilations=dilations)
    with pytest.raises(ValueError, match=message):
        napari_gem.SegmentOptions(refine="pamr", pamr_steps=steps, pamr_dilations=dilations)


def test_refine_pamr_through_segment_follows_the_image(tiny_gem):
    # Left half dark, right half bright: refinement sharpens the maps along that edge.
    image = np.zeros((96, 128), dtype=np.uint8)
    image[:, 64:] = 255
    plain = napari_gem.segment(image, ["cell", "dust"], model=tiny_gem, input_size=64)
    refined = napari_gem.segment(
        image,
        ["cell", "dust"],
        model=tiny_gem,
        input_size=64,
        refine="pamr",
        pamr_steps=5,
        pamr_dilations=(2, 4),
    )
    assert refined.heatmaps.shape == plain.heatmaps.shape == (2, 96, 128)
    assert not np.allclose(refined.heatmaps, plain.heatmaps)
    assert refined.parameters["options"]["refine"] == "pamr"
    # Within each flat half the refined map is smoother than the bilinear one.
    assert refined.heatmaps[:, :, :60].std(axis=2).mean() < plain.heatmaps[:, :, :60].std(axis=2).mean()
    calibrated = napari_gem.segment(
        image, ["cell"], model=tiny_gem, input_size=64, refine="pamr", score_mode="calibrated"
    )
    assert calibrated.heatmaps.min() >= 0 and calibrated.heatmaps.max() <= 1
