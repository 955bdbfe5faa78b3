"""The object stage of a refinement (issue 25): strokes label objects, and the labels spread.

Real demo model, real generated micrographs (crowded ones: several rings among nuclei and
rod-shaped bacteria), real candidate objects; nothing mocked.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from napari_gem.demo import load_model, scene, segment_options
from napari_gem.demo.quality import EVAL_SEED_START
from napari_gem.engine.encoded import encode
from napari_gem.engine.object_labels import LABELLERS, RefineOptions
from napari_gem.evaluation.annotator import disk, interior_point, largest_region

CONCEPTS = ["ring", "nucleus", "rod-shaped bacterium"]


@pytest.fixture(scope="module")
def crowded():
    """A held-out scene with 4-6 rings, nuclei and rods each, encoded with the demo model."""
    image, masks = scene(EVAL_SEED_START, concepts=CONCEPTS, instances=(4, 6))
    return encode(image, load_model(), segment_options()), masks


def _one_ring_and_background(masks):
    """A positive stroke inside the largest ring, a negative one on bare background."""
    rings = masks["ring"]
    objects = np.any(list(masks.values()), axis=0)
    positive = disk(rings.shape, interior_point(largest_region(rings))) & rings
    background = ~ndimage.binary_dilation(objects, iterations=6)
    negative = disk(rings.shape, interior_point(background)) & background
    return positive, negative


def _joined(mask, truth, positive) -> tuple[int, int]:
    """How many of the objects of ``truth`` no stroke touched are mostly in ``mask``, of how many."""
    objects, count = ndimage.label(truth, structure=np.ones((3, 3)))
    others = [i for i in range(1, count + 1) if not (positive & (objects == i)).any()]
    joined = sum((mask & (objects == i)).sum() > 0.5 * (objects == i).sum() for i in others)
    return joined, len(others)


def test_one_stroke_on_one_ring_brings_the_other_rings_and_not_the_other_kinds(crowded):
    encoded, masks = crowded
    positive, negative = _one_ring_and_background(masks)
    truth = masks["ring"]
    others = np.any([masks[c] for c in CONCEPTS[1:]], axis=0)
    for mode in LABELLERS:
        result = encoded.refine("ring", positive=positive, negative=negative, objects=mode)
        mask = result.masks[0]
        joined, total = _joined(mask, truth, positive)
        assert total >= 3 and joined >= total - 1, (mode, joined, total)
        # The pixel classifier alone takes most of the nuclei and rods with them.
        assert (mask & others).sum() < 0.5 * others.sum(), mode
        stage = result.parameters["refine"]["object_stage"]
        assert stage["kept"] + stage["removed"] == stage["candidates"] >= 12
    pixels_only = encoded.refine("ring", positive=positive, negative=negative, objects="off").masks[0]
    assert (pixels_only & others).sum() > 0.7 * others.sum()
    iou = lambda m: (m & truth).sum() / (m | truth).sum()  # noqa: E731
    assert iou(encoded.refine("ring", positive=positive, negative=negative).masks[0]) > iou(pixels_only) + 0.1


def test_strokes_keep_their_label_inside_kept_and_removed_objects(crowded):
    encoded, masks = crowded
    positive, negative = _one_ring_and_background(masks)
    # Erase a few pixels in the middle of the stroked ring's object, paint a few in a nucleus.
    ring = largest_region(masks["ring"]) & ~positive
    erased = disk(ring.shape, interior_point(ring), 1) & ring
    nucleus = largest_region(masks["nucleus"])
    painted = disk(ring.shape, interior_point(nucleus), 1) & nucleus
    result = encoded.refine("ring", positive=positive | painted, negative=negative | erased)
    for layer in (result.masks[0], result.instances[0] > 0, result.semantic == 1):
        assert layer[positive | painted].all() and not layer[negative | erased].any()


def test_candidates_are_built_once_per_encoded_image_and_found_without_strokes(crowded):
    encoded, masks = crowded
    positive, negative = _one_ring_and_background(masks)
    encoded.refine("ring", positive=positive, objects="nearest")
    [key] = [key for key in encoded.refine_cache if key[0].startswith("objects")]
    candidates = encoded.refine_cache[key]
    encoded.refine("nucleus", positive=positive, negative=negative, objects="classifier")
    assert encoded.refine_cache[key] is candidates  # another prompt, another labeller: same objects
    # Found without strokes: most objects of every kind are (mostly) one candidate.
    for concept in CONCEPTS:
        objects, count = ndimage.label(masks[concept], structure=np.ones((3, 3)))
        found = sum(np.bincount(candidates.labels[objects == i]).argmax() > 0 for i in range(1, count + 1))
        assert found >= 0.6 * count, concept
    assert candidates.sizes.min() >= 6  # the size floor


def test_the_object_stage_is_an_option_described_once_and_checked(crowded):
    encoded, masks = crowded
    positive, _ = _one_ring_and_background(masks)
    assert RefineOptions().objects == "classifier"
    off = encoded.refine("ring", positive=positive, objects="off")
    assert off.parameters["refine"]["objects"] == "off" and "object_stage" not in off.parameters["refine"]
    with pytest.raises(ValueError, match="objects must be one of off, nearest, classifier; got 'rings'"):
        encoded.refine("ring", positive=positive, objects="rings")
