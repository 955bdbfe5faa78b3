"""The pixel stage of a refinement: the stroke classifier's training set and its result.

A small per-image classifier (scikit-learn's extremely randomised trees; ilastik and
napari-convpaint use random forests) learns from the painted pixels. Its inputs, per
pixel, at a working resolution of at most :data:`WORKING_SIDE` pixels on the long side
(built by :class:`.refiner.StrokeRefiner`, which keeps them between strokes):

- ``features``: the cached dense features, reduced to a few principal components on the
  grid and upsampled bilinearly;
- ``prior``: the prompt's heatmap (text, or text and exemplars);
- ``filters``: multiscale intensity, edge and texture filters of the image's small RGB copy
  (``skimage.feature.multiscale_basic_features``).

With the prior among the inputs, the prior also labels a sample of pixels far from every
stroke (cold pixels as background; hot pixels as foreground when their filters do not look
like the negative strokes), so where the user has not painted the text prompt still speaks
and a single class of strokes is enough to train. The probability is upsampled to the
image (on a tiled image, the windows near the strokes are classified again at full
resolution: :mod:`.detail`), painted pixels keep their label, and the mask is its
0.5 level.
"""

from __future__ import annotations

import numpy as np
import torch
from scipy import ndimage

from ..exemplars import exemplar_heatmap
from ..maps import min_max
from ..masks import instance_labels
from ..result import SegmentationResult, build_result

#: Longest side of the grid the classifier works on (then upsampled to the image).
WORKING_SIDE = 256
#: Principal components of the dense features the classifier sees.
FEATURE_COMPONENTS = 4
#: Every input the classifier may use; ``inputs`` picks a subset (the baselines drop some).
INPUTS = ("features", "prior", "filters")
#: Pixels labelled by the prior's mask, and their total weight relative to the strokes'
#: (one weight whether one class or both are painted: measured as good as two).
PRIOR_SAMPLES = 1500
PRIOR_WEIGHT = 2.0
#: Quantile of the prior over the negative strokes above which hot pixels may be foreground
#: (1.0, their hottest pixel: measured better than 0.9 and 0.5).
NEGATIVE_LEVEL = 1.0
#: Prior quantile below which a pixel is background for the prior (capped by the threshold).
PRIOR_BACKGROUND_QUANTILE = 0.7
#: A hot prior pixel whose filters lie this many times farther from the negative strokes'
#: mean than the strokes' own spread (99th percentile) may be labelled foreground.
UNLIKE_NEGATIVE = 1.5
#: Prior labels keep this far (working pixels) from any stroke: there the user decides.
PRIOR_MARGIN = 4
#: Name of the result's prompt when exemplars are used without text.
EXEMPLAR_PROMPT = "@exemplars"


def working_shape(image_shape: tuple[int, int]) -> tuple[int, int]:
    """The classifier's grid: the image scaled so its long side is at most :data:`WORKING_SIDE`."""
    height, width = image_shape
    scale = min(1.0, WORKING_SIDE / max(height, width))
    return max(1, int(round(height * scale))), max(1, int(round(width * scale)))


def check_strokes(
    positive, negative, image_shape: tuple[int, int]
) -> tuple[np.ndarray, np.ndarray]:
    """Boolean stroke masks of the image's shape; a clear ``ValueError`` otherwise."""
    checked = []
    for name, strokes in (("positive", positive), ("negative", negative)):
        if strokes is None:
            checked.append(np.zeros(image_shape, dtype=bool))
            continue
        strokes = np.asarray(strokes)
        if strokes.ndim != 2:
            raise ValueError(
                f"{name} strokes must be a 2D mask of the image's shape {tuple(image_shape)}; "
                f"got an array of shape {strokes.shape}"
            )
        if strokes.shape != tuple(image_shape):
            raise ValueError(
                f"{name} strokes have shape {strokes.shape} but the encoded image is "
                f"{tuple(image_shape)}: strokes must be painted on the image that was encoded"
            )
        checked.append(strokes.astype(bool, copy=False))
    both = np.logical_and(*checked)
    if both.any():
        y, x = np.argwhere(both)[0]
        raise ValueError(
            f"{int(both.sum())} pixel(s) are marked both positive and negative "
            f"(the first at row {y}, column {x}); a pixel is either in the mask or not"
        )
    return checked[0], checked[1]


def on_working_grid(strokes: np.ndarray, image_shape, shape) -> np.ndarray:
    """The working pixels that hold a stroke pixel."""
    grid = np.zeros(shape, dtype=bool)
    ys, xs = np.nonzero(strokes)
    grid[np.minimum((ys * shape[0] / image_shape[0]).astype(int), shape[0] - 1),
         np.minimum((xs * shape[1] / image_shape[1]).astype(int), shape[1] - 1)] = True
    return grid


def prior_map(encoded, base: SegmentationResult | None, boxes: list) -> tuple[np.ndarray, np.ndarray]:
    """The prompt's heatmap (with the exemplars' map averaged in) and its presence."""
    if base is None:
        heatmap = exemplar_heatmap(encoded.features, boxes, encoded.covered_shape, encoded.image_shape)
        return heatmap, np.ones(1, dtype=np.float32)
    heatmap = base.heatmaps[0]
    if boxes:
        visual = exemplar_heatmap(encoded.features, boxes, encoded.covered_shape, encoded.image_shape)
        text = min_max(torch.from_numpy(heatmap)).numpy()
        heatmap = ((text + visual) / 2).astype(np.float32)
    return heatmap, base.presence


def refine_parameters(encoded, options, name, positive, negative, boxes, inputs) -> dict:
    """The refined result's record: the model, options, strokes and boxes it was made from."""
    return {
        "model": encoded.model.describe(),
        "options": options.to_dict(),
        "prompts": [name],
        "image_shape": list(encoded.image_shape),
        "tiled": encoded.tiled,
        "num_windows": encoded.num_windows,
        "refine": {
            "positive_pixels": int(positive.sum()),
            "negative_pixels": int(negative.sum()),
            "exemplars": [list(box) for box in boxes],
            "inputs": list(inputs),
            "working_shape": list(working_shape(encoded.image_shape)),
        },
    }


def assemble(name, probability, presence, options, parameters, positive, negative) -> SegmentationResult:
    """The result of the 0.5 level of ``probability``, painted pixels kept as painted."""
    probability[positive] = 1.0
    probability[negative] = 0.0
    result = build_result([name], probability[None], presence, options.replace(threshold=0.5), parameters)
    mask = result.masks[0]
    # Cleaning (min size, holes) must not undo what the user painted.
    mask[positive] = True
    mask[negative] = False
    instance_labels(mask, out=result.instances[0])
    result.semantic[positive] = 1
    result.semantic[negative] = 0
    return result


def resize(values: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Bilinear resize (antialiased when shrinking) of a 2D map."""
    if values.shape == tuple(shape):
        return values.astype(np.float32, copy=True)
    tensor = torch.from_numpy(np.ascontiguousarray(values, dtype=np.float32))[None, None]
    shrinking = shape[0] < values.shape[0]
    out = torch.nn.functional.interpolate(tensor, size=tuple(shape), mode="bilinear",
                                          align_corners=False, antialias=shrinking)
    return out[0, 0].numpy()


def training_set(image_shape, shape, positive, negative, small_prior, options, likeness=None):
    """Rows (flat working indexes), labels and weights: stroke pixels, and prior labels far away."""
    scale = shape[0] / image_shape[0], shape[1] / image_shape[1]
    painted = []
    for strokes in (positive, negative):
        ys, xs = np.nonzero(strokes)
        rows = (np.minimum((ys * scale[0]).astype(int), shape[0] - 1) * shape[1]
                + np.minimum((xs * scale[1]).astype(int), shape[1] - 1))
        painted.append(np.unique(rows))
    conflict = np.intersect1d(*painted)  # a working pixel holding both: the user's detail, skip
    rows = [np.setdiff1d(painted[0], conflict), np.setdiff1d(painted[1], conflict)]
    labels = [np.ones(len(rows[0]), np.int8), np.zeros(len(rows[1]), np.int8)]
    weights = [np.full(len(rows[0]), 1.0), np.full(len(rows[1]), 1.0)]
    if small_prior is not None:
        prior_rows, prior_labels = _prior_labels(shape, rows, small_prior, options, likeness)
        total = max(1, sum(len(r) for r in rows))
        rows.append(prior_rows)
        labels.append(prior_labels)
        weights.append(np.full(len(prior_rows), PRIOR_WEIGHT * total / max(1, len(prior_rows))))
    return np.concatenate(rows), np.concatenate(labels), np.concatenate(weights)


def _prior_labels(shape, painted, small_prior, options, likeness=None):
    """A fixed sample of working pixels far from the strokes, labelled by the prior.

    Background: pixels colder than the prior's :data:`PRIOR_BACKGROUND_QUANTILE` (and its
    threshold), everywhere. Foreground: pixels hotter than the threshold. The strokes move
    these levels: a negative stroke says its prior level is not the prompt, so only pixels
    hotter than it stay foreground; a positive stroke says its level is, so only pixels
    colder than it stay background. The prior is coarse (one value per patch), so a hot
    pixel only counts as foreground if its filters (``likeness``, standardised) do not look
    like the negative strokes: closer to the positive strokes' mean than to the negative
    ones', or, with negative strokes only, far outside their spread. Pixels in between are
    left to the classifier.
    """
    from ..masks import threshold_value
    from ..result import default_threshold

    flat_prior = small_prior.reshape(-1)
    threshold = threshold_value(small_prior, default_threshold(options))
    positive_rows, negative_rows = painted
    above = (max(threshold, np.quantile(flat_prior[negative_rows], NEGATIVE_LEVEL)) if len(negative_rows)
             else threshold)
    below = min(threshold, np.quantile(flat_prior, PRIOR_BACKGROUND_QUANTILE))
    if len(positive_rows):
        below = min(below, np.quantile(flat_prior[positive_rows], 0.1))
    near = np.zeros(flat_prior.shape, dtype=bool)
    near[np.concatenate(painted)] = True
    far = (ndimage.distance_transform_edt(~near.reshape(shape)) > PRIOR_MARGIN).reshape(-1)
    hot = far & (flat_prior > above)
    if likeness is not None:
        candidates = np.flatnonzero(hot)
        hot[candidates] = _unlike_negatives(likeness, candidates, positive_rows, negative_rows)
    rng = np.random.default_rng(0)
    chosen, labels = [], []
    for label, region in ((1, hot), (0, far & (flat_prior < below))):
        candidates = np.flatnonzero(region)
        picked = rng.choice(candidates, size=min(PRIOR_SAMPLES // 2, len(candidates)), replace=False)
        chosen.append(picked)
        labels.append(np.full(len(picked), label, np.int8))
    return np.concatenate(chosen), np.concatenate(labels)


def _unlike_negatives(likeness: np.ndarray, rows, positive_rows, negative_rows) -> np.ndarray:
    """Which of ``rows`` have filters more like the positive strokes than the negative ones."""
    if not len(negative_rows):
        return np.ones(len(rows), dtype=bool)
    negative_mean = likeness[negative_rows].mean(0)
    to_negative = np.linalg.norm(likeness[rows] - negative_mean, axis=1)
    if len(positive_rows):
        return np.linalg.norm(likeness[rows] - likeness[positive_rows].mean(0), axis=1) < to_negative
    spread = np.quantile(np.linalg.norm(likeness[negative_rows] - negative_mean, axis=1), 0.99)
    return to_negative > UNLIKE_NEGATIVE * spread
