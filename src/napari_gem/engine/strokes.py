"""Refine a prompt's mask from the user's strokes (and example boxes).

A small per-image classifier (scikit-learn's extremely randomised trees; ilastik and
napari-convpaint use random forests) learns from the painted pixels. Its inputs, per
pixel, at a working resolution of at most :data:`WORKING_SIDE` pixels on the long side:

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
resolution: :mod:`.stroke_detail`), painted pixels keep their label, and the mask is its
0.5 level.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence

import numpy as np
import torch
from scipy import ndimage

from .exemplars import Box, check_boxes, exemplar_heatmap
from .maps import min_max, upsample
from .masks import instance_labels
from .object_labels import DEFAULT_OBJECTS, ObjectDecisions, apply_decisions, check_objects, decide_objects
from .objects import build_candidates
from .result import SegmentationResult, build_result
from .stroke_detail import refine_windows
from .text import clean_prompts

#: Longest side of the grid the classifier works on (then upsampled to the image).
WORKING_SIDE = 256
FILTER_COLOUR = True
#: Principal components of the dense features the classifier sees.
FEATURE_COMPONENTS = 4
#: Every input the classifier may use; ``inputs`` picks a subset (the baselines drop some).
INPUTS = ("features", "prior", "filters")
#: Pixels labelled by the prior's mask, and their total weight relative to the strokes'.
PRIOR_SAMPLES = 1500
PRIOR_WEIGHT = 2.0
#: ... once both classes are painted (the user's strokes then carry the classifier).
PRIOR_WEIGHT_TWO_CLASSES = 2.0
#: Quantile of the prior over the negative strokes above which hot pixels may be foreground
#: (1.0, their hottest pixel: measured better than 0.9 and 0.5).
NEGATIVE_LEVEL = 1.0
#: Prior quantile below which a pixel is background for the prior (capped by the threshold).
PRIOR_BACKGROUND_QUANTILE = 0.7
#: A hot prior pixel whose filters lie this many times farther from the negative strokes'
#: mean than the strokes' own spread (99th percentile) may be labelled foreground.
UNLIKE_NEGATIVE = 1.5
#: The classifier: extremely randomised trees (fit faster than a random forest, measured as good).
TREES = 16
TREE_DEPTH = 10
#: Prior labels keep this far (working pixels) from any stroke: there the user decides.
PRIOR_MARGIN = 4
#: Text priors (one full-size result each) kept per encoded image between strokes.
CACHED_PRIORS = 2
#: Name of the result's prompt when exemplars are used without text.
EXEMPLAR_PROMPT = "@exemplars"


def working_shape(image_shape: tuple[int, int]) -> tuple[int, int]:
    """The classifier's grid: the image scaled so its long side is at most :data:`WORKING_SIDE`."""
    height, width = image_shape
    scale = min(1.0, WORKING_SIDE / max(height, width))
    return max(1, int(round(height * scale))), max(1, int(round(width * scale)))


def thumbnail(image, mapping, image_shape: tuple[int, int]) -> np.ndarray:
    """The image as RGB in [0, 1] at :func:`working_shape`, read with a stride (memory stays bounded)."""
    from skimage.transform import resize

    from .preprocess import to_rgb

    shape = working_shape(image_shape)
    step = max(1, min(image_shape[0] // shape[0], image_shape[1] // shape[1]) // 2)
    rgb = to_rgb(np.asarray(image[::step, ::step]), mapping)
    return resize(rgb, shape, anti_aliasing=True, preserve_range=True).astype(np.float32)


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


def refine(
    encoded,
    prompt: str | None,
    *,
    positive=None,
    negative=None,
    exemplars: Sequence[Box] | None = None,
    inputs: Sequence[str] = INPUTS,
    objects: str = DEFAULT_OBJECTS,
    object_prior: bool = True,
    **segment_options,
) -> SegmentationResult:
    """``prompt``'s mask of ``encoded`` (an :class:`~.encoded.EncodedImage`) refined by strokes and boxes.

    ``positive``/``negative``: boolean masks of the image's shape (painted "this is it" /
    "this is not"). ``exemplars``: boxes ``(y0, x0, y1, x1)`` around examples; with a
    prompt, the prior is the mean of the text heatmap and the exemplars' map (both
    min-max); with ``prompt=None``, the exemplars alone. ``inputs``: which of
    :data:`INPUTS` the classifier sees. ``objects``: the object stage's labeller
    (:data:`.object_labels.LABELLERS`; ``"off"``: the pixel classifier alone); with
    ``object_prior`` (and the prior among the inputs) unlabelled objects are soft examples
    of their prior. With no strokes and no exemplars the result is ``encoded.segment(prompt)``.
    """
    unknown = [name for name in inputs if name not in INPUTS]
    if unknown or not inputs:
        raise ValueError(f"inputs must be a non-empty subset of {INPUTS}; got {tuple(inputs)}")
    check_objects(objects)
    positive, negative = check_strokes(positive, negative, encoded.image_shape)
    boxes = check_boxes(exemplars or (), encoded.image_shape)
    if prompt is None and not boxes:
        raise ValueError("refine needs a prompt, exemplar boxes, or both")
    options = encoded.options.replace(**segment_options) if segment_options else encoded.options
    has_strokes = bool(positive.any() or negative.any())
    base = None
    if prompt is not None:
        prompt = clean_prompts(prompt)[0]
        base = _cached_segment(encoded, prompt, segment_options)
        if not has_strokes and not boxes:
            return copy.deepcopy(base)
    prior, presence = _prior(encoded, base, boxes)
    name = prompt if prompt is not None else EXEMPLAR_PROMPT
    parameters = _parameters(encoded, options, name, positive, negative, boxes, inputs)
    parameters["refine"]["objects"] = objects
    if not has_strokes:
        return build_result([name], prior[None], presence, options, parameters)
    prior_key = (name, repr(sorted(segment_options.items())), tuple(boxes))
    small_prior = _remember(encoded, "small prior", prior_key,
                            lambda: _resize(prior, working_shape(encoded.image_shape)))
    stage = ObjectStage(objects, object_prior and "prior" in inputs)
    probability = _stroke_probability(encoded, prior, small_prior, options, positive, negative, inputs,
                                      stage)
    if stage.decisions is not None:
        parameters["refine"]["object_stage"] = {"candidates": len(stage.decisions.scores),
                                                "kept": stage.decisions.kept,
                                                "removed": stage.decisions.removed}
    return _assemble(name, probability, presence, options, parameters, positive, negative)


class ObjectStage:
    """What the object stage of one refinement does (``mode``), and what it decided."""

    def __init__(self, mode: str, soft_prior: bool) -> None:
        self.mode = mode
        self.soft_prior = soft_prior
        self.candidates = None
        self.decisions: ObjectDecisions | None = None
        self.positive: np.ndarray | None = None  # the positive strokes on the working grid

    def decide(self, encoded, shape, small_prior, options, positive, negative, inputs) -> None:
        """Decide every candidate object of ``encoded`` from the strokes (nothing when ``off``)."""
        if self.mode == "off" or encoded.thumbnail is None:
            return
        self.candidates = _cached(encoded, f"objects {'features' in inputs} {'filters' in inputs}",
                                  lambda: _candidates(encoded, shape, inputs))
        uses_prior = "prior" in inputs
        on_grid = [_on_working_grid(strokes, encoded.image_shape, shape) for strokes in (positive, negative)]
        self.decisions = decide_objects(self.candidates, small_prior if uses_prior else None, *on_grid,
                                        self.mode, self.soft_prior)
        self.positive = on_grid[0]

    def score_column(self) -> np.ndarray | None:
        """Per working pixel, its object's score (0.5 outside every candidate) ``[h * w, 1]``."""
        if self.decisions is None:
            return None
        lookup = np.concatenate([[0.5], self.decisions.scores]).astype(np.float32)
        return lookup[self.candidates.labels].reshape(-1, 1)

    def apply(self, small: np.ndarray, one_class: bool, uses_prior: bool) -> np.ndarray:
        """The working-size probability ``small`` with every candidate object decided."""
        if self.decisions is None:
            return small
        if one_class and not uses_prior:
            # One class painted and no text: the trees learnt nothing, the objects say it all.
            small = np.zeros_like(small)
        return apply_decisions(small, self.candidates, self.decisions, self.positive)


def _candidates(encoded, shape, inputs):
    """The encoded image's candidate objects (:func:`.objects.build_candidates`) on the working grid."""
    cell = encoded.heatmap_cell * shape[0] / encoded.image_shape[0]
    features = (_cached(encoded, "features", lambda: _feature_components(encoded, shape))
                if "features" in inputs else None)
    filters = _cached(encoded, "filters", lambda: _filters(encoded)) if "filters" in inputs else None
    return build_candidates(encoded.thumbnail, cell, features, filters)


def _on_working_grid(strokes: np.ndarray, image_shape, shape) -> np.ndarray:
    """The working pixels that hold a stroke pixel."""
    grid = np.zeros(shape, dtype=bool)
    ys, xs = np.nonzero(strokes)
    grid[np.minimum((ys * shape[0] / image_shape[0]).astype(int), shape[0] - 1),
         np.minimum((xs * shape[1] / image_shape[1]).astype(int), shape[1] - 1)] = True
    return grid


def _cached_segment(encoded, prompt: str, segment_options: dict) -> SegmentationResult:
    """``encoded.segment([prompt])``, kept for the next strokes on the same prompt.

    The text prior does not change between strokes; only the last
    :data:`CACHED_PRIORS` prompts are kept, so memory stays a few full-size maps.
    """
    return _remember(encoded, "segment", (prompt, repr(sorted(segment_options.items()))),
                     lambda: encoded.segment([prompt], **segment_options))


def _remember(encoded, kind: str, key: tuple, build):
    """``build()``, cached on ``encoded`` under ``(kind, *key)``; the last :data:`CACHED_PRIORS` of a kind."""
    key = (kind, *key)
    cache = encoded.refine_cache
    if key not in cache:
        kept = [k for k in cache if k[0] == kind]  # oldest first
        for old in kept[: max(0, len(kept) - CACHED_PRIORS + 1)]:
            del cache[old]
        cache[key] = build()
    return cache[key]


def _prior(encoded, base: SegmentationResult | None,
           boxes: list) -> tuple[np.ndarray, np.ndarray]:
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


def _parameters(encoded, options, name, positive, negative, boxes, inputs) -> dict:
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


def _assemble(name, probability, presence, options, parameters, positive, negative) -> SegmentationResult:
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


def _stroke_probability(encoded, prior, small_prior, options, positive, negative, inputs,
                        stage: ObjectStage) -> np.ndarray:
    """The classifier's probability of the prompt at the image's resolution."""
    shape = working_shape(encoded.image_shape)
    columns = _input_columns(encoded, small_prior, shape, inputs)
    likeness = _cached(encoded, "standard filters",
                       lambda: _standardised(_cached(encoded, "filters", lambda: _filters(encoded)))) \
        if "prior" in inputs and encoded.thumbnail is not None else None
    rows, labels, weights = _training_set(encoded.image_shape, shape, positive, negative,
                                          small_prior if "prior" in inputs else None, options,
                                          likeness)
    stage.decide(encoded, shape, small_prior, options, positive, negative, inputs)
    scores = stage.score_column()
    if scores is not None:  # the trees see each pixel's object score too (as ilastik's autocontext)
        columns = np.concatenate([columns, scores], axis=1)
    one_class = len(np.unique(labels)) < 2
    if one_class:
        small = np.full(shape, float(labels[0]), dtype=np.float32)
    else:
        small = _fit_predict(columns, rows, labels, weights).reshape(shape)
    small = stage.apply(small, one_class, "prior" in inputs)
    probability = _resize(small, encoded.image_shape)
    if _reads_detail(encoded, shape):
        reduced = (_cached(encoded, "reduced grid", lambda: _reduced_grid(encoded))
                   if "features" in inputs else None)
        refine_windows(encoded, probability, prior, positive, negative, inputs, _fit_predict,
                       _image_filters, reduced, shape)
    return probability


def _reads_detail(encoded, shape) -> bool:
    """A tiled image whose working grid is coarser than its pixels reads the stroked windows again."""
    return encoded.tiled and tuple(shape) != tuple(encoded.image_shape) and encoded.read_image is not None


def _resize(values: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Bilinear resize (antialiased when shrinking) of a 2D map."""
    if values.shape == tuple(shape):
        return values.astype(np.float32, copy=True)
    tensor = torch.from_numpy(np.ascontiguousarray(values, dtype=np.float32))[None, None]
    shrinking = shape[0] < values.shape[0]
    out = torch.nn.functional.interpolate(tensor, size=tuple(shape), mode="bilinear",
                                          align_corners=False, antialias=shrinking)
    return out[0, 0].numpy()


def _input_columns(encoded, small_prior, shape, inputs) -> np.ndarray:
    """Per working pixel, the chosen inputs side by side ``[h * w, C]`` (float32)."""
    parts = []
    if "features" in inputs:
        parts.append(_cached(encoded, "features", lambda: _feature_components(encoded, shape)))
    if "filters" in inputs:
        parts.append(_cached(encoded, "filters", lambda: _filters(encoded)))
    if "prior" in inputs:
        parts.append(small_prior.reshape(-1, 1))
    return np.concatenate(parts, axis=1)


def _cached(encoded, key: str, build):
    cache = encoded.refine_cache
    if (key,) not in cache:
        cache[(key,)] = build()
    return cache[(key,)]


def _reduced_grid(encoded) -> torch.Tensor:
    """The dense features' first principal components on the patch grid ``[C, gh, gw]`` (unit std)."""
    features = encoded.features.float().cpu()
    gh, gw, dim = features.shape
    flat = features.reshape(-1, dim)
    flat = flat - flat.mean(0, keepdim=True)
    components = min(FEATURE_COMPONENTS, *flat.shape)
    _, _, basis = torch.linalg.svd(flat, full_matrices=False)
    reduced = (flat @ basis[:components].T).reshape(gh, gw, components)
    return (reduced / reduced.std().clamp_min(1e-6)).permute(2, 0, 1).contiguous()


def _feature_components(encoded, shape) -> np.ndarray:
    """The dense features' principal components, upsampled to the working grid ``[h * w, C]``."""
    reduced = _cached(encoded, "reduced grid", lambda: _reduced_grid(encoded))
    height, width = encoded.image_shape
    scale = shape[0] / height, shape[1] / width
    covered = (max(1, round(encoded.covered_shape[0] * scale[0])),
               max(1, round(encoded.covered_shape[1] * scale[1])))
    grid = upsample(reduced[None], covered)[0, :, : shape[0], : shape[1]]
    return grid.permute(1, 2, 0).reshape(-1, reduced.shape[0]).numpy().astype(np.float32)


def _filters(encoded) -> np.ndarray:
    """Multiscale intensity, edge and texture filters of the thumbnail ``[h * w, F]``."""
    if encoded.thumbnail is None:
        raise ValueError("the image filters need the image: this encoded image was made without it")
    filters = _image_filters(encoded.thumbnail)
    return filters.reshape(-1, filters.shape[-1])


def _image_filters(rgb: np.ndarray) -> np.ndarray:
    """``skimage.feature.multiscale_basic_features`` of an RGB image ``[h, w, F]`` (float32)."""
    from skimage.feature import multiscale_basic_features

    image = rgb if FILTER_COLOUR else rgb.mean(-1)
    filters = multiscale_basic_features(image, sigma_min=0.5, sigma_max=8, num_sigma=4,
                                        channel_axis=-1 if FILTER_COLOUR else None)
    return filters.astype(np.float32)


def _standardised(columns: np.ndarray) -> np.ndarray:
    return (columns - columns.mean(0)) / (columns.std(0) + 1e-6)


def _training_set(image_shape, shape, positive, negative, small_prior, options, likeness=None):
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
        share = PRIOR_WEIGHT_TWO_CLASSES if len(rows[0]) and len(rows[1]) else PRIOR_WEIGHT
        rows.append(prior_rows)
        labels.append(prior_labels)
        weights.append(np.full(len(prior_rows), share * total / max(1, len(prior_rows))))
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
    from .masks import threshold_value
    from .result import default_threshold

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


def _fit_predict(columns, rows, labels, weights) -> np.ndarray:
    """Fit the trees on the training rows; the probability of the prompt everywhere."""
    from sklearn.ensemble import ExtraTreesClassifier

    forest = ExtraTreesClassifier(n_estimators=TREES, max_depth=TREE_DEPTH, min_samples_leaf=2,
                                  n_jobs=1, random_state=0)
    forest.fit(columns[rows], labels, sample_weight=weights)
    return forest.predict_proba(columns)[:, 1].astype(np.float32)
