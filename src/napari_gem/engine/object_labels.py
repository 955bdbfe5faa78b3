"""The object stage of a refinement: strokes label objects, and the labels spread to objects like them.

A stroke in a candidate object's core (:mod:`.objects`) labels that object (positive or
negative: the side with more of its pixels there); a stroke outside every candidate (on
the background, or on an object no candidate found) is an example of its side too, with
the features of its own pixels. Unlabelled candidates are decided from these examples
by a labeller (:data:`LABELLERS`, the ``objects`` option):

- ``nearest``: the side of the nearer example in the standardised, group-weighted object
  features, each side at most :data:`REACH` away;
- ``classifier``: a logistic regression on the examples' features.

With the text prior, every object's own prior (hot: the prompt; cold: not, by
:func:`soft_labels`) speaks too: for the nearest rule, the side its prior says is at
most :data:`PRIOR_SHRINK` of the reach away; for the classifier, each unlabelled object
is an example of its prior at :data:`PRIOR_OBJECT_WEIGHT` of a stroke's weight. So one
class of strokes is enough and the text still speaks where nobody painted. Every
candidate is decided; the decisions are written into the pixel classifier's probability
(:func:`apply_decisions`): a removed object is background, a kept one foreground (in the
pixel classifier's outline where it agrees), and off the candidates the pixel
foreground stays only next to kept objects or under a positive stroke.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from .described import option
from .objects import SHAPE_COLUMNS, Candidates, object_features, prior_features, standardise

#: The object stage's labellers, with the labels people see (the ``objects`` option).
OBJECT_MODES = (("off: pixels only", "off"), ("nearest example", "nearest"),
                ("classifier (logistic regression)", "classifier"))
#: The default labeller: the classifier measured better than the nearest example (docs/refine.md).
DEFAULT_OBJECTS = "classifier"
#: Outside the candidates, the pixel classifier's foreground within this many working
#: pixels of a kept object is a part the candidate missed (farther: the prior's halo).
RESTORE_BAND = 1
#: A class nobody stroked is this share of the reach from the objects whose prior says it.
PRIOR_SHRINK = 0.5
#: Inverse regularisation of the classifier (scikit-learn's ``C``): 0.3 measured steadier than
#: 1 (a negative stroke on a small false object flipped fewer true ones).
LOGISTIC_C = 0.3
#: The soft examples' total weight, at most, against the stroked ones' (the classifier).
PRIOR_OBJECT_SHARE = 2.0
#: Weight of a soft prior example against a stroked one (the classifier).
PRIOR_OBJECT_WEIGHT = 0.3
#: The farthest an example reaches, as a share of the median distance between objects (on
#: 20 held-out demo scenes, objects of one concept lay within 0.4-0.8 of it, others beyond 0.9).
REACH = 0.8


@dataclass(frozen=True)
class RefineOptions:
    """Options of a refinement beyond the segmentation's (described once: form field and flag)."""

    objects: str = option(
        DEFAULT_OBJECTS, kind="choice", label="object stage", choices=OBJECT_MODES,
        help="after the pixel classifier, label candidate objects from the strokes and spread "
        "the labels to similar objects (one stroke on one object brings the others like it); "
        "'off' keeps the pixel classifier alone")


@dataclass
class Examples:
    """What the strokes say: labelled feature rows ``rows [m, F]``, ``labels`` (1/0), ``objects``
    (the candidate each row is, -1 for a stroke outside every candidate), and ``soft``: per
    candidate, its prior's label (1/0) or None without text."""

    rows: np.ndarray
    labels: np.ndarray
    objects: np.ndarray
    soft: np.ndarray | None = None


@dataclass
class ObjectDecisions:
    """Every candidate's score (``>= 0.5``: kept) and which of them the strokes labelled."""

    scores: np.ndarray
    stroked: np.ndarray

    @property
    def kept(self) -> int:
        return int((self.scores >= 0.5).sum())

    @property
    def removed(self) -> int:
        return int((self.scores < 0.5).sum())


Labeller = Callable[[np.ndarray, Examples], np.ndarray]


def check_objects(mode: str) -> str:
    """``mode`` if it names a labeller or ``off``; a clear ``ValueError`` otherwise."""
    if mode != "off" and mode not in LABELLERS:
        raise ValueError(f"objects must be one of off, {', '.join(LABELLERS)}; got {mode!r}")
    return mode


def _reach(rows: np.ndarray) -> float:
    """:data:`REACH` times the median distance between objects (a sample of them)."""
    from scipy.spatial.distance import pdist

    sample = rows[:: max(1, len(rows) // 200)]
    return REACH * float(np.median(pdist(sample))) if len(sample) > 1 else 1.0


def nearest_example(rows: np.ndarray, examples: Examples) -> np.ndarray:
    """Score per object: ``d_negative / (d_positive + d_negative)``, to the nearest example of each class.

    Every class is at most the reach (:data:`REACH`) from every object, and at most
    :data:`PRIOR_SHRINK` of it from the objects whose prior says that class: an object
    near a stroked example is what that example is, one unlike every example is what its
    prior says (without text: a tie, broken towards background).
    """
    from scipy.spatial.distance import cdist

    reach = _reach(rows)
    distance = cdist(rows, examples.rows) if len(examples.rows) else np.zeros((len(rows), 0))
    nearest = []
    for label in (1, 0):
        of_class = distance[:, examples.labels == label]
        found = of_class.min(1) if of_class.shape[1] else np.full(len(rows), np.inf)
        # Every class is at most the reach away (nearer where the prior says it): an
        # object unlike every example is decided by its prior.
        cap = (reach if examples.soft is None
               else np.where(examples.soft == label, PRIOR_SHRINK * reach, reach))
        nearest.append(np.minimum(found, cap))
    to_positive, to_negative = nearest
    total = to_positive + to_negative
    return np.where(total > 0, to_negative / np.maximum(total, 1e-12), 0.0)


def logistic_classifier(rows: np.ndarray, examples: Examples) -> np.ndarray:
    """Score per object: a logistic regression fitted on the examples, and on every unlabelled
    object as an example of its prior at :data:`PRIOR_OBJECT_WEIGHT` (all of them at most
    :data:`PRIOR_OBJECT_SHARE` times the examples' weight; the nearest rule when the
    examples hold one class)."""
    train, labels = examples.rows, examples.labels
    weights = np.ones(len(labels))
    if examples.soft is not None:
        unlabelled = np.setdiff1d(np.arange(len(rows)), examples.objects)
        train = np.concatenate([train, rows[unlabelled]])
        labels = np.concatenate([labels, examples.soft[unlabelled]])
        # Each soft example weighs at most PRIOR_OBJECT_WEIGHT, and all of them together at
        # most PRIOR_OBJECT_SHARE times the strokes: hundreds of objects must not drown them.
        each = min(PRIOR_OBJECT_WEIGHT, PRIOR_OBJECT_SHARE * len(weights) / max(1, len(unlabelled)))
        weights = np.concatenate([weights, np.full(len(unlabelled), each)])
    if len(np.unique(labels)) < 2:
        return nearest_example(rows, examples)
    coefficients = fit_logistic(train, labels, weights, LOGISTIC_C)
    return 1 / (1 + np.exp(-(rows @ coefficients[:-1] + coefficients[-1])))


def fit_logistic(rows: np.ndarray, labels: np.ndarray, weights: np.ndarray, c: float,
                 steps: int = 25) -> np.ndarray:
    """L2-regularised logistic regression by Newton's method: ``[F + 1]`` (the last is the intercept).

    The objective of scikit-learn's ``LogisticRegression(C=c, class_weight="balanced")``
    with sample weights: ``c * sum(w_i * loss_i) + |beta|^2 / 2`` (intercept not
    penalised), each class weighted by ``n / (2 n_class)``. A few dozen objects need no
    iterative solver library; this one takes well under a millisecond.
    """
    counts = np.bincount(labels, minlength=2).astype(float)
    weights = weights * (len(labels) / (2 * counts))[labels]
    design = np.concatenate([rows, np.ones((len(rows), 1))], 1).astype(np.float64)
    penalty = np.eye(design.shape[1]) / c
    penalty[-1, -1] = 0.0
    beta = np.zeros(design.shape[1])
    for _ in range(steps):
        probability = 1 / (1 + np.exp(-(design @ beta)))
        gradient = design.T @ (weights * (probability - labels)) + penalty @ beta
        curvature = (design * (weights * probability * (1 - probability))[:, None]).T @ design + penalty
        step = np.linalg.solve(curvature + 1e-9 * np.eye(len(beta)), gradient)
        beta -= step
        if np.abs(step).max() < 1e-8:
            break
    return beta


#: The labellers, by the value of the ``objects`` option (``off`` skips the stage).
LABELLERS: dict[str, Labeller] = {"nearest": nearest_example, "classifier": logistic_classifier}


def decide_objects(candidates: Candidates, small_prior: np.ndarray | None, positive: np.ndarray,
                   negative: np.ndarray, mode: str, soft_prior: bool = True) -> ObjectDecisions:
    """Every candidate's score from the working-size strokes (``positive``/``negative`` ``[h, w]``).

    ``small_prior`` (or None: no text) adds the prior's mean and maximum to the features;
    with ``soft_prior`` it also makes the soft examples (:func:`soft_labels`).
    """
    count = candidates.count
    image_rows, weights = candidates.features, candidates.weights
    if small_prior is not None:
        image_rows = np.concatenate([image_rows, prior_features(candidates, small_prior)], 1)
        weights = np.concatenate([weights, np.full(2, 1 / np.sqrt(2))])
    labels = candidates.labels
    stroked = _stroked_objects(labels, candidates.core, positive, negative, count)
    loose = _loose_regions(candidates, positive, negative, small_prior)
    centre, spread = image_rows.mean(0), (image_rows.std(0) + 1e-6) / weights
    rows = standardise(image_rows) * weights
    chosen = np.flatnonzero(stroked >= 0)
    example_rows = [rows[chosen], *[(region_rows - centre) / spread for _, region_rows in loose]]
    example_labels = [stroked[chosen], *[np.full(len(region_rows), label) for label, region_rows in loose]]
    objects = [chosen, *[np.full(len(region_rows), -1) for _, region_rows in loose]]
    soft = None
    if small_prior is not None and soft_prior:
        soft = soft_labels(image_rows[:, -2], stroked)
    examples = Examples(np.concatenate(example_rows), np.concatenate(example_labels).astype(int),
                        np.concatenate(objects), soft)
    scores = LABELLERS[mode](rows, examples) if count else np.zeros(0)
    scores = np.where(stroked >= 0, stroked, scores)  # a stroked object is what the stroke says
    return ObjectDecisions(scores.astype(np.float32), stroked >= 0)


def soft_labels(prior_means: np.ndarray, stroked: np.ndarray) -> np.ndarray | None:
    """Each object's label by its prior mean: hot (1) above a level, cold (0) below it.

    The level is Otsu's over the objects' prior means; the strokes move it, as for the
    pixels: an object stroked negative says its prior level is not the prompt (the level
    rises above it), one stroked positive that its level is (the level falls to it). When
    they contradict (a negative object hotter than a positive one) the prior does not
    separate the objects, and None is returned: the strokes alone decide.
    """
    from skimage.filters import threshold_otsu

    if len(prior_means) < 2 or np.ptp(prior_means) == 0:
        return None
    level = float(threshold_otsu(prior_means))
    negatives, positives = prior_means[stroked == 0], prior_means[stroked == 1]
    if len(negatives):
        level = max(level, float(negatives.max()))
    if len(positives):
        lowest = float(positives.min())
        if len(negatives) and lowest <= negatives.max():
            return None
        level = min(level, lowest - 1e-6)
    return (prior_means > level).astype(int)


def _stroked_objects(labels: np.ndarray, core: np.ndarray, positive: np.ndarray, negative: np.ndarray,
                     count: int) -> np.ndarray:
    """Per object: 1 (more positive stroke pixels in its core), 0 (more negative ones) or -1 (none).

    Only strokes in an object's core (:attr:`.objects.Candidates.core`) label it: a stroke
    on its rim corrects the outline, not the object.
    """
    core = labels * core
    ups = np.bincount(core[positive], minlength=count + 1)[1:]
    downs = np.bincount(core[negative], minlength=count + 1)[1:]
    stroked = np.full(count, -1)
    stroked[ups > downs] = 1
    stroked[downs > ups] = 0
    return stroked


def _loose_regions(candidates: Candidates, positive: np.ndarray, negative: np.ndarray,
                   small_prior: np.ndarray | None) -> list[tuple[int, np.ndarray]]:
    """Strokes outside every candidate: ``(label, feature rows)`` of their connected regions.

    Their shape says nothing about an object (a stroke is a brush mark), so their shape
    columns are the candidates' mean.
    """
    found = []
    outside = candidates.labels == 0
    for label, strokes in ((1, positive), (0, negative)):
        regions, count = ndimage.label(strokes & outside, structure=np.ones((3, 3)))
        if not count:
            continue
        rows = object_features(regions, count, candidates.feature_columns, candidates.filter_columns,
                               shape=False)
        rows[:, :SHAPE_COLUMNS] = candidates.features[:, :SHAPE_COLUMNS].mean(0) if candidates.count else 0
        if small_prior is not None:
            rows = np.concatenate([rows, _prior_of(regions, count, small_prior)], 1)
        found.append((label, rows))
    return found


def _outside_strokes(strokes: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """The strokes (connected regions) that lie mostly outside every candidate."""
    regions, count = ndimage.label(strokes, structure=np.ones((3, 3)))
    if not count:
        return strokes
    index = np.arange(1, count + 1)
    inside = np.asarray(ndimage.mean(labels > 0, regions, index))
    return np.concatenate([[False], inside < 0.5])[regions]


def _prior_of(regions: np.ndarray, count: int, small_prior: np.ndarray) -> np.ndarray:
    index = np.arange(1, count + 1)
    return np.stack([ndimage.mean(small_prior, regions, index),
                     ndimage.maximum(small_prior, regions, index)], 1).astype(np.float32)


def apply_decisions(probability: np.ndarray, candidates: Candidates, decisions: ObjectDecisions,
                    positive: np.ndarray) -> np.ndarray:
    """``probability`` (working size) with every candidate decided.

    A removed object is background. A kept object keeps the pixel classifier's outline
    where the classifier sees it too (its mean probability is at least 0.5); where it does
    not, the object stage brings the whole object. Outside the candidates, the pixel
    classifier's foreground stays where it holds a positive stroke (an object no
    candidate found) and within :data:`RESTORE_BAND` of a kept object (a part the
    candidate missed); the rest is mostly the halo a coarse prior leaves around objects,
    and goes (so does an object smaller than the candidates' size floor nobody stroked).
    """
    labels = candidates.labels
    count = candidates.count
    index = np.arange(1, count + 1)
    seen = np.asarray(ndimage.mean(probability, labels, index)) >= 0.5 if count else np.zeros(0, bool)
    kept = decisions.scores >= 0.5
    whole = np.concatenate([[False], kept & ~seen])
    removed = np.concatenate([[False], ~kept])
    out = probability.copy()
    out[whole[labels]] = 1.0
    out[removed[labels]] = 0.0
    loose = (out >= 0.5) & (labels == 0)
    regions, found = ndimage.label(loose, structure=np.ones((3, 3)))
    if found:
        # Only a positive stroke off the candidates says a region is an object they missed.
        free = np.zeros(found + 1, bool)
        free[np.unique(regions[_outside_strokes(positive, labels) & loose])] = True
        free[0] = True
        kept_pixels = np.concatenate([[False], kept])[labels]
        near = (ndimage.distance_transform_edt(~kept_pixels) <= RESTORE_BAND if kept.any()
                else np.zeros(labels.shape, bool))
        out[~free[regions] & ~near] = 0.0
    return out
