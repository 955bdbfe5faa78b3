"""The model adapter (any method): padding to the patch grid, similarity, upsampling, cutting back."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from napari_gem.evaluation.predictor import DenseScorer, ModelScorer, as_scorer, centred_padding


@pytest.mark.parametrize(
    ("size", "expected"),
    [((32, 48), (0, 0, 0, 0)), ((30, 45), (1, 2, 1, 1)), ((17, 16), (0, 0, 7, 8))],
)
def test_centred_padding(size, expected):
    assert centred_padding(*size, 16) == expected


def test_gem_is_wrapped_and_scorers_pass_through(tiny_gem, scorers):
    wrapped = as_scorer(tiny_gem)
    assert isinstance(wrapped, ModelScorer) and isinstance(wrapped, DenseScorer)
    stub = scorers.Constant([0.0, 1.0])
    assert as_scorer(stub) is stub
    assert wrapped.logit_scale == pytest.approx(tiny_gem.logit_scale)
    assert wrapped.describe()["model"] == tiny_gem.name


def test_gem_scorer_is_a_deprecated_alias(fresh_deprecations):
    import napari_gem.evaluation as evaluation
    from napari_gem.evaluation import predictor

    with pytest.warns(DeprecationWarning, match="GemScorer is deprecated .*: use ModelScorer"):
        assert predictor.GemScorer is ModelScorer
    assert evaluation.GemScorer is ModelScorer  # the same alias: it warned once
    with pytest.raises(AttributeError):
        evaluation.NoSuchScorer  # noqa: B018


def test_crop_similarity_matches_a_direct_computation(tiny_gem):
    torch.manual_seed(0)
    scorer = ModelScorer(tiny_gem)
    text = scorer.embed_prompts(["cat", "dog", "sky"], ("a photo of a {}.", "a {}."))
    assert text.shape == (3, tiny_gem.embed_dim)
    pixels = torch.randn(2, 3, 30, 45)  # not multiples of the 16-pixel patch

    logits = scorer.crop_similarity(pixels, text)

    assert logits.shape == (2, 3, 30, 45)
    # By hand: pad (1, 2) x (1, 1) to 32 x 48, a 2 x 3 grid of GEM features.
    padded = F.pad(pixels, (1, 2, 1, 1))
    features = tiny_gem.encode_image(padded).dense_features
    grid = torch.einsum("bhwe,pe->bphw", features.float(), text)
    full = F.interpolate(grid, size=(32, 48), mode="bilinear", align_corners=False)
    torch.testing.assert_close(logits, full[:, :, 1:31, 1:46])
    # The crop's logits are those of the padded image, not of a stretched one.
    stretched = F.interpolate(grid, size=(30, 45), mode="bilinear", align_corners=False)
    assert not torch.allclose(logits, stretched, atol=1e-4)


def test_text_is_template_ensembled(tiny_gem):
    scorer = ModelScorer(tiny_gem)
    single = scorer.embed_prompts(["cat"], ("a photo of a {}.",))
    other = scorer.embed_prompts(["cat"], ("a sketch of a {}.",))
    both = scorer.embed_prompts(["cat"], ("a photo of a {}.", "a sketch of a {}."))
    torch.testing.assert_close(both[0], F.normalize(single[0] + other[0], dim=0))
