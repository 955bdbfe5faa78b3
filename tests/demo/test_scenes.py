"""The generated micrographs: deterministic, micrograph-like, with exact masks and honest captions."""

from __future__ import annotations

import numpy as np
import pytest

from napari_gem.demo import BACKGROUND, VOCABULARY, caption, scene
from napari_gem.demo.scenes import PLURALS


def test_vocabulary_is_fixed_and_sized_for_the_issue():
    assert 8 <= len(VOCABULARY) <= 12 and len(set(VOCABULARY)) == len(VOCABULARY)
    assert {"nucleus", "rod-shaped bacterium", "bright spot", "fibre", "ring", "crystal",
            "debris"} <= set(VOCABULARY)


def test_same_seed_same_scene_other_seed_other_scene():
    image, masks = scene(3)
    again, masks_again = scene(3)
    np.testing.assert_array_equal(image, again)
    assert masks.keys() == masks_again.keys()
    for concept in masks:
        np.testing.assert_array_equal(masks[concept], masks_again[concept])
    assert not np.array_equal(image, scene(4)[0])


@pytest.mark.parametrize("seed", range(6))
def test_scene_is_an_rgb_micrograph_with_disjoint_visible_masks(seed):
    image, masks = scene(seed)
    assert image.dtype == np.uint8 and image.shape == (192, 192, 3)
    assert masks and set(masks) <= set(VOCABULARY)
    stacked = np.stack(list(masks.values()))
    assert stacked.dtype == bool and stacked.shape[1:] == image.shape[:2]
    assert stacked.sum(axis=0).max() == 1  # each pixel shows at most one concept
    assert all(mask.any() for mask in masks.values())
    background = ~stacked.any(axis=0)
    # Noisy, textured background under an illumination gradient: not flat.
    assert image[background].std(axis=0).min() > 2
    # Objects differ from the background they sit on.
    for mask in masks.values():
        assert np.abs(image[mask].mean(axis=0) - image[background].mean(axis=0)).max() > 10


def test_chosen_concepts_and_larger_scenes():
    image, masks = scene(11, (256, 320), concepts=["ring", "crystal"])
    assert image.shape == (256, 320, 3) and set(masks) <= {"ring", "crystal"} and masks
    with pytest.raises(ValueError, match="unknown concept"):
        scene(0, concepts=["unicorn"])


def test_captions_name_exactly_the_concepts_in_varied_order_and_wording():
    rng = np.random.default_rng(0)
    concepts = ["nucleus", "ring", "fibre"]
    captions = {caption(concepts, rng) for _ in range(40)}
    assert len(captions) > 10  # varied wording and order
    for text in captions:
        for concept in VOCABULARY:
            named = concept in text or PLURALS[concept] in text
            assert named == (concept in concepts), (text, concept)
    assert BACKGROUND in caption([], rng)
    assert caption({"ring": 3}, np.random.default_rng(1)) != ""
