"""Refining a prompt's mask from strokes and example boxes (EncodedImage.refine)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from napari_gem.demo import load_model, scene, segment_options
from napari_gem.demo.scenes import EVAL_SEED_START
from napari_gem.engine.encoded import encode


@pytest.fixture(scope="module")
def demo_model():
    return load_model()


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    return float((a & b).sum() / max(1, (a | b).sum()))


def _disk_at_interior(region: np.ndarray, radius: int = 3) -> np.ndarray:
    """A disk at the point of ``region`` farthest from its border."""
    distance = ndimage.distance_transform_edt(np.pad(region, 1))[1:-1, 1:-1]
    y, x = np.unravel_index(np.argmax(distance), region.shape)
    yy, xx = np.ogrid[: region.shape[0], : region.shape[1]]
    return (yy - y) ** 2 + (xx - x) ** 2 <= radius**2


def _demo_case(model, seed=EVAL_SEED_START, concept=None):
    image, masks = scene(seed)
    concept = concept or sorted(masks)[0]
    return encode(image, model, segment_options()), concept, masks[concept]


def test_no_strokes_equals_segment_on_the_demo_and_tiny_models(demo_model, tiny_gem):
    encoded, concept, _ = _demo_case(demo_model)
    tiny = encode(np.random.default_rng(0).random((70, 90)).astype(np.float32), tiny_gem)
    for image, prompt in ((encoded, concept), (tiny, "a cell")):
        for overrides in ({}, {"score_mode": "calibrated"}):
            expected = image.segment([prompt], **overrides)
            empty = np.zeros(image.image_shape, dtype=bool)
            for result in (image.refine(prompt, **overrides),
                           image.refine(prompt, positive=empty, negative=empty, **overrides)):
                for name in ("heatmaps", "presence", "thresholds", "masks", "instances", "semantic"):
                    np.testing.assert_array_equal(getattr(result, name), getattr(expected, name))
                assert result.prompts == expected.prompts


def test_painted_pixels_keep_their_label(tiny_gem):
    rng = np.random.default_rng(1)
    encoded = encode(rng.random((80, 64)).astype(np.float32), tiny_gem)
    positive, negative = np.zeros((80, 64), bool), np.zeros((80, 64), bool)
    positive[10:14, 5:60] = True
    positive[70, 3] = True  # a single pixel survives the mask's min-size cleaning too
    negative[40:44, 5:60] = True
    result = encoded.refine("a cell", positive=positive, negative=negative, min_size=50)
    assert result.masks[0][positive].all()
    assert not result.masks[0][negative].any()
    assert (result.instances[0][positive] > 0).all()
    assert result.heatmaps[0][positive].min() == 1.0 and result.heatmaps[0][negative].max() == 0.0
    assert result.parameters["refine"]["positive_pixels"] == int(positive.sum())


def test_one_class_of_strokes_is_enough_and_the_prior_speaks_far_away(demo_model):
    encoded, concept, truth = _demo_case(demo_model)
    base = encoded.segment([concept])
    negative = _disk_at_interior(base.masks[0] & ~truth)
    refined = encoded.refine(concept, negative=negative)
    assert not refined.masks[0][negative].any()
    assert refined.masks[0].any()  # not everything became background


def test_bad_strokes_get_clear_messages(tiny_gem):
    encoded = encode(np.zeros((40, 50), np.float32), tiny_gem)
    with pytest.raises(ValueError, match=r"positive strokes have shape \(50, 40\).*image that was encoded"):
        encoded.refine("a cell", positive=np.zeros((50, 40), bool))
    with pytest.raises(ValueError, match="2D mask"):
        encoded.refine("a cell", negative=np.zeros((40, 50, 3), bool))
    both = np.zeros((40, 50), bool)
    both[5, 7] = True
    with pytest.raises(ValueError, match=r"1 pixel\(s\) are marked both positive and negative.*row 5, col"):
        encoded.refine("a cell", positive=both, negative=both)
    with pytest.raises(ValueError, match="covers no pixel"):
        encoded.refine("a cell", exemplars=[(60, 60, 70, 70)])
    with pytest.raises(ValueError, match="inputs must be"):
        encoded.refine("a cell", positive=both, inputs=("colour",))
    with pytest.raises(ValueError, match="a prompt, exemplar boxes, or both"):
        encoded.refine(None, positive=both)


def test_three_corrective_strokes_improve_the_demo_mask(demo_model):
    # The held-out scene's largest concept (2 % of the image; most demo objects are far smaller).
    encoded, concept, truth = _demo_case(demo_model, concept="diatom")
    positive, negative = np.zeros_like(truth), np.zeros_like(truth)
    mask = encoded.segment([concept]).masks[0]
    start = _iou(mask, truth)
    for _ in range(3):
        missed, false = truth & ~mask, mask & ~truth
        largest_missed = _largest(missed)
        largest_false = _largest(false)
        if largest_missed.sum() >= largest_false.sum():
            positive |= _disk_at_interior(largest_missed) & ~negative
        else:
            negative |= _disk_at_interior(largest_false) & ~positive
        mask = encoded.refine(concept, positive=positive, negative=negative).masks[0]
    assert _iou(mask, truth) > start + 0.2


def _largest(region: np.ndarray) -> np.ndarray:
    labels, count = ndimage.label(region)
    if not count:
        return region
    sizes = np.bincount(labels.ravel())[1:]
    return labels == int(np.argmax(sizes)) + 1


def test_exemplars_alone_and_with_text(demo_model):
    encoded, concept, truth = _demo_case(demo_model)
    ys, xs = np.nonzero(ndimage.binary_erosion(truth, iterations=2) if truth.sum() > 200 else truth)
    box = (ys.min(), xs.min(), ys.max() + 1, xs.max() + 1)
    alone = encoded.refine(None, exemplars=[box])
    combined = encoded.refine(concept, exemplars=[box])
    assert alone.prompts == ["@exemplars"] and combined.prompts == [concept]
    text = encoded.segment([concept]).heatmaps[0]
    # The example's own pixels score high in its map.
    assert alone.heatmaps[0][truth].mean() > alone.heatmaps[0][~truth].mean()
    assert not np.array_equal(combined.heatmaps[0], text)
    assert combined.heatmaps[0].min() >= 0 and combined.heatmaps[0].max() <= 1


def test_segment_answers_an_exemplar_prompt_by_its_boxes_and_the_words_as_before(demo_model):
    from napari_gem.engine.exemplars import check_boxes, exemplar_heatmap

    image, _ = scene(1_000_007)
    encoded = encode(image, demo_model, segment_options())
    box = (60, 60, 90, 90)
    words = encoded.segment(["ring"])
    both = encoded.segment(["@examples", "ring"], exemplars={"@examples": [box]})
    expected = exemplar_heatmap(encoded.features, check_boxes([box], encoded.image_shape),
                                encoded.covered_shape, encoded.image_shape)
    np.testing.assert_array_equal(both.heatmaps[0], expected)
    np.testing.assert_array_equal(both.heatmaps[1], words.heatmaps[0])
    assert both.presence[0] == 1.0 and both.parameters["exemplars"] == {"@examples": [list(box)]}
    empty = encoded.segment(["@examples"], exemplars={"@examples": []})  # examples on another plane
    assert not empty.heatmaps.any() and not empty.masks.any() and empty.presence[0] == 0
    with pytest.raises(ValueError, match="not asked: @other"):
        encoded.segment(["ring"], exemplars={"@other": [box]})
