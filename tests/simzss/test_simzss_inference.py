"""SimZSS through the engine API: encode, segment, tiling, presence, templates."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import napari_gem
from napari_gem import SegmentOptions


def test_dense_features_are_normalised_on_the_14px_grid(tiny_simzss):
    output = tiny_simzss.encode_image(torch.randn(2, 3, 56, 98))
    assert output.dense_features.shape == (2, 4, 7, 64)
    assert output.clip_embedding.shape == (2, 64)
    torch.testing.assert_close(output.dense_features.norm(dim=-1), torch.ones(2, 4, 7))
    torch.testing.assert_close(output.clip_embedding.norm(dim=-1), torch.ones(2))
    bare = tiny_simzss.encode_image(torch.randn(1, 3, 56, 56), with_clip_embedding=False)
    assert bare.clip_embedding is None
    with pytest.raises(ValueError, match="not a multiple of SimZSS's patch size 14"):
        tiny_simzss.encode_image(torch.randn(1, 3, 56, 60))


def test_text_uses_bare_names_unless_templates_are_given(tiny_simzss):
    bare = tiny_simzss.encode_text(["cell", "nucleus"])
    assert bare.shape == (2, 64) and bare.dtype == torch.float32
    torch.testing.assert_close(bare.norm(dim=-1), torch.ones(2))
    torch.testing.assert_close(tiny_simzss.encode_text(["cell"], ("{}",))[0], bare[0])
    templated = tiny_simzss.encode_text(["cell"], ("a photo of a {}.",))
    assert not torch.allclose(templated[0], bare[0])


def test_heatmaps_have_the_input_size_and_unit_range(tiny_simzss):
    maps = tiny_simzss.heatmaps(torch.randn(1, 3, 56, 84), ["cell", "background"])
    assert maps.shape == (1, 2, 56, 84)
    assert float(maps.min()) == 0.0 and float(maps.max()) == 1.0


@pytest.mark.parametrize("score_mode", ["minmax", "calibrated"])
def test_segment_runs_end_to_end(tiny_simzss, score_mode):
    image = (np.random.default_rng(0).random((90, 120, 3)) * 255).astype(np.uint8)
    result = napari_gem.segment(image, ["cell", "nucleus"], tiny_simzss, input_size=56,
                                score_mode=score_mode)
    assert result.heatmaps.shape == (2, 90, 120) and result.masks.shape == (2, 90, 120)
    assert np.isfinite(result.heatmaps).all() and result.semantic.shape == (90, 120)
    assert result.presence.shape == (2,) and 0 < result.presence.sum() <= 1 + 1e-6
    assert result.parameters["model"]["method"] == "simzss"


def test_a_tiled_run_blends_windows_on_the_14px_grid(tiny_simzss):
    image = (np.random.default_rng(1).random((150, 200)) * 255).astype(np.uint8)
    options = SegmentOptions(tiling="always", window=56, overlap=14, input_size=56)
    encoded = napari_gem.encode(image, tiny_simzss, options)
    assert encoded.num_windows > 1 and encoded.covered_shape == (154, 210)
    assert encoded.grid_shape == (11, 15)
    result = encoded.segment(["cell"])
    assert result.heatmaps.shape == (1, 150, 200) and result.parameters["tiled"]
