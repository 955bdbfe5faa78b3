"""The shipped demo CLIP finds what it was trained on: tests with meaning (no retraining).

Floors come from the measurement in docs/demo-model.md, with a safety margin.
"""

from __future__ import annotations

import numpy as np
import pytest

from napari_gem import encode
from napari_gem.demo import MODEL_NAME, load_model, model_spec, scene, segment_options
from napari_gem.demo.scenes import EVAL_SEED_START

#: Recorded with the shipped weights (CPU, fp32): min-max heatmaps of ``scene(EVAL_SEED_START)``.
RECORDED = {
    "prompts": ["crystal", "debris", "ring"],
    "presence": [0.04814, 0.65788, 0.29348],
    "means": [0.82556, 0.24792, 0.27467],
    "points": [[163, 122], [98, 51], [59, 7], [14, 3], [33, 156], [124, 175]],
    "values": [[0.84621, 0.87018, 0.57122, 0.81868, 0.94059, 0.90820],
               [0.17133, 0.14529, 0.42651, 0.11856, 0.40971, 0.25532],
               [0.18714, 0.18512, 0.31981, 0.11427, 0.50692, 0.36701]],
}
#: Mean IoU of present concepts' Otsu masks (GEM, depth 3) on the first four held-out scenes:
#: measured 0.067 over 17 masks; the floor keeps a margin for float differences.
IOU_FLOOR = 0.045


@pytest.fixture(scope="module")
def model():
    return load_model()


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.logical_and(a, b).sum() / max(1, np.logical_or(a, b).sum()))


def test_shipped_weights_load_offline_and_reproduce_the_recorded_heatmaps(model):
    assert model.name == MODEL_NAME and model.native_size == 64 and model.patch_size == 8
    image, _ = scene(EVAL_SEED_START)
    maps, presence = encode(image, model, segment_options()).heatmaps(list(RECORDED["prompts"]))
    np.testing.assert_allclose(presence, RECORDED["presence"], atol=2e-3)
    np.testing.assert_allclose(maps.mean(axis=(1, 2)), RECORDED["means"], atol=2e-3)
    rows, cols = np.array(RECORDED["points"]).T
    np.testing.assert_allclose(maps[:, rows, cols], RECORDED["values"], atol=5e-3)


def _mean_present_iou(model, seeds) -> float:
    ious = []
    for seed in seeds:
        image, masks = scene(seed)
        present = sorted(masks)
        result = encode(image, model, segment_options()).segment(present)
        ious += [_iou(result.masks[i], masks[c]) for i, c in enumerate(present)]
    return float(np.mean(ious))


def test_present_concepts_masks_overlap_their_ground_truth(model):
    import open_clip
    import torch

    from napari_gem import GroundingModel

    seeds = range(EVAL_SEED_START, EVAL_SEED_START + 4)
    trained = _mean_present_iou(model, seeds)
    assert trained > IOU_FLOOR
    # The same architecture untrained finds far less: the overlap is learned, not salience.
    torch.manual_seed(0)
    random_weights = open_clip.create_model(MODEL_NAME).eval().requires_grad_(False)
    untrained = GroundingModel.from_open_clip(random_weights, model.tokenizer, depth=3)
    assert trained > 1.5 * _mean_present_iou(untrained, seeds)


def test_an_absent_concept_stays_dark_in_calibrated_mode(model):
    image, masks = scene(EVAL_SEED_START + 1, concepts=["nucleus", "fibre", "ring"])
    absent = "crystal"
    encoded = encode(image, model, segment_options())
    calibrated = encoded.segment([*sorted(masks), absent], score_mode="calibrated")
    assert calibrated.heatmaps[-1].max() < 0.05 and not calibrated.masks[-1].any()
    # Measured: present concepts peak at 0.13-0.32, the absent one at 0.003.
    assert calibrated.heatmaps[:-1].max() > 10 * calibrated.heatmaps[-1].max()
    assert calibrated.presence[:-1].max() > 10 * calibrated.presence[-1]
    # Min-max stretches every map to [0, 1]: the same absent prompt gets a mask there.
    minmax = encoded.segment([*sorted(masks), absent], score_mode="minmax")
    assert minmax.masks[-1].mean() > 0.01


def test_tiled_mosaic_matches_untiled_quality_without_seams(model):
    side, window, overlap = 576, 192, 48
    image, masks = scene(EVAL_SEED_START + 7, side)
    present = sorted(masks)
    tiled_options = segment_options(tiling="always", window=window, overlap=overlap)
    tiled = encode(image, model, tiled_options)
    assert tiled.num_windows > 4
    result = tiled.segment(present)
    tiled_iou = np.mean([_iou(result.masks[i], masks[c]) for i, c in enumerate(present)])
    untiled = []  # the same content at the same scale, one window-sized scene at a time
    for seed in range(EVAL_SEED_START, EVAL_SEED_START + 4):
        small, small_masks = scene(seed)
        res = encode(small, model, segment_options()).segment(sorted(small_masks))
        untiled += [_iou(res.masks[i], small_masks[c]) for i, c in enumerate(sorted(small_masks))]
    assert tiled_iou > np.mean(untiled) - 0.1, (tiled_iou, np.mean(untiled))
    # No seam: across window borders the heatmaps change no more than anywhere else.
    maps = result.heatmaps
    steps = np.abs(np.diff(maps, axis=2)).mean(axis=(0, 1))  # per column boundary
    stride = window - overlap
    borders = [b - 1 for b in range(stride, side, stride)]
    assert steps[borders].max() < 3 * np.median(steps) + 1e-3


def test_model_spec_builds_the_same_model(model):
    rebuilt = model_spec().load()
    image, _ = scene(EVAL_SEED_START + 2)
    a, _ = encode(image, model, segment_options()).heatmaps(["ring", "nucleus"])
    b, _ = encode(image, rebuilt, segment_options()).heatmaps(["ring", "nucleus"])
    np.testing.assert_allclose(a, b, atol=1e-5)


def test_unknown_method_is_a_clear_error():
    with pytest.raises((ValueError, RuntimeError), match="method"):
        load_model("no-such-method")


def test_command_line_offers_the_demo_first_run():
    from napari_gem.cli.main import build_parser

    assert build_parser().parse_args(["--demo"]).demo is True
    assert build_parser().parse_args([]).demo is False
