"""Candidate objects of an encoded image and their features: the object stage's input.

The pixel classifier (:mod:`.strokes`) learns what a stroke's *pixels* look like; the
object stage (:mod:`.object_labels`) learns which *objects* a stroke touched, so that
one stroke on one ring brings the other rings (ilastik's object classification on top of
its pixel classifier). Its candidates are found without strokes, once per encoded image,
at the classifier's working resolution:

- **foreground**: the image's local contrast, the colour distance of each pixel from the
  median of its :data:`BACKGROUND_SIDE` px neighbourhood (a rolling background, as in
  microscopy's background subtraction), above its Otsu level;
- **objects**: its connected components, touching ones split by the watershed of
  :func:`.instances.split_touching` (on the contrast map), smaller than
  :data:`MIN_AREA` working pixels dropped.

Each candidate gets a feature row (:func:`object_features`): mean and spread of the
dense features' principal components and of the filters' principal components, and its
shape (``skimage.measure.regionprops_table``: area, eccentricity, solidity, perimeter
ratio); the prompt's prior (mean and maximum) is added per prompt.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

#: Side (working pixels) of the neighbourhood whose median is a pixel's background.
BACKGROUND_SIDE = 31
#: The background median is taken on the image shrunk by this factor (for speed).
BACKGROUND_STEP = 2
#: Smallest candidate (working pixels): smaller specks are left to the pixel classifier.
MIN_AREA = 6
#: Share of an object's depth (its deepest pixel's distance from its border) where a stroke
#: labels it: a stroke on its rim corrects the outline, not the object.
CORE = 0.5
#: Principal components of the filters summarised per object.
FILTER_COMPONENTS = 6
#: Shape columns from ``regionprops_table``.
SHAPE_PROPERTIES = ("area", "eccentricity", "solidity", "perimeter", "euler_number", "extent",
                    "axis_major_length", "axis_minor_length")
SHAPE_COLUMNS = 8
#: Weight of the shape columns, as a group, against the features' and the filters' groups
#: (each group counts as one, whatever its number of columns): on 20 held-out demo scenes
#: the nearest other candidate was of the same concept for 92 % of objects with shape at
#: twice the weight, 82 % with every column alike, 89 % with shape alone.
SHAPE_WEIGHT = 2.0


@dataclass
class Candidates:
    """Candidate objects at the working resolution.

    ``labels``: int32 ``[h, w]``, 0 background, objects 1..n. ``features``: ``[n, F]``
    float32 (not standardised; see :func:`standardise`). ``sizes``: pixels per object.
    ``feature_columns`` / ``filter_columns``: the per-pixel columns the features summarise
    (``[h * w, C]``, or None), for a stroke's own region. ``weights``: each feature
    column's weight in distances (a group of columns counts as one, shape as
    :data:`SHAPE_WEIGHT`). ``core``: ``[h, w]``, the pixels of each object at least
    :data:`CORE` of its depth from its border (where a stroke labels the object).
    """

    labels: np.ndarray
    features: np.ndarray
    sizes: np.ndarray
    weights: np.ndarray
    core: np.ndarray
    feature_columns: np.ndarray | None = None
    filter_columns: np.ndarray | None = None

    @property
    def count(self) -> int:
        return len(self.sizes)


def local_contrast(rgb: np.ndarray) -> np.ndarray:
    """Each pixel's colour distance from its rolling background (median of :data:`BACKGROUND_SIDE` px)."""
    step = BACKGROUND_STEP
    height, width = rgb.shape[:2]
    padded = np.pad(rgb, [(0, -height % step), (0, -width % step), (0, 0)], mode="edge")
    small = padded.reshape(padded.shape[0] // step, step, padded.shape[1] // step, step, 3).mean((1, 3))
    side = max(3, BACKGROUND_SIDE // step) | 1
    background = np.stack([ndimage.median_filter(small[..., c], size=side, mode="reflect")
                           for c in range(3)], -1)
    background = ndimage.zoom(background, (step, step, 1), order=1, grid_mode=True,
                              mode="nearest")[:height, :width]
    difference = ndimage.gaussian_filter(rgb - background, sigma=(1, 1, 0))
    return np.linalg.norm(difference, axis=-1).astype(np.float32)


def find_candidates(rgb: np.ndarray, cell: float) -> tuple[np.ndarray, np.ndarray]:
    """Candidate labels ``[h, w]`` (int32, 1..n) of a working-size RGB image, and its contrast map.

    ``cell``: the dense features' grid cell in working pixels (the watershed's scale).
    """
    from skimage.filters import threshold_otsu

    from .instances import split_touching

    contrast = local_contrast(rgb)
    if float(contrast.max()) <= float(contrast.min()):
        return np.zeros(contrast.shape, np.int32), contrast
    foreground = contrast > threshold_otsu(contrast)
    labels = split_touching(foreground, contrast, cell=cell)
    sizes = np.bincount(labels.ravel())
    small = sizes < MIN_AREA
    small[0] = True
    kept = np.cumsum(~small) * ~small  # renumber the kept objects 1..n
    return kept[labels].astype(np.int32), contrast


def object_means(labels: np.ndarray, columns: np.ndarray, count: int) -> tuple[np.ndarray, np.ndarray]:
    """Per object 1..``count``: the mean and standard deviation of each column ``[n, C]``."""
    flat = labels.reshape(-1)
    sizes = np.maximum(np.bincount(flat, minlength=count + 1)[1:], 1)[:, None]
    sums = np.stack([np.bincount(flat, weights=column, minlength=count + 1)[1:] for column in columns.T], 1)
    squares = np.stack([np.bincount(flat, weights=column * column, minlength=count + 1)[1:]
                        for column in columns.T], 1)
    means = sums / sizes
    return means, np.sqrt(np.maximum(squares / sizes - means * means, 0))


def shape_features(labels: np.ndarray, count: int) -> np.ndarray:
    """``[n, 8]`` (``regionprops_table``): log area, eccentricity, solidity, perimeter over a
    disk's, Euler number (a ring has a hole), extent, log major and minor axis lengths."""
    from skimage.measure import regionprops_table

    if count == 0:
        return np.zeros((0, SHAPE_COLUMNS), np.float32)
    table = regionprops_table(labels, properties=("label", *SHAPE_PROPERTIES))
    rows = np.zeros((count, SHAPE_COLUMNS), np.float32)
    index = table["label"] - 1
    area = table["area"].astype(np.float64)
    rows[index, 0] = np.log(area)
    rows[index, 1] = table["eccentricity"]
    rows[index, 2] = table["solidity"]
    rows[index, 3] = table["perimeter"] / (2 * np.sqrt(np.pi * area))  # 1 for a disk
    rows[index, 4] = table["euler_number"]
    rows[index, 5] = table["extent"]
    rows[index, 6] = np.log1p(table["axis_major_length"])
    rows[index, 7] = np.log1p(table["axis_minor_length"])
    return rows


def group_weights(sizes: list[int], first: float = 1.0) -> np.ndarray:
    """Column weights so that each group of ``sizes`` columns counts as one (the first as ``first``)."""
    weights = [np.full(size, (first if i == 0 else 1.0) / np.sqrt(max(size, 1)))
               for i, size in enumerate(sizes)]
    return np.concatenate(weights).astype(np.float32)


def principal_components(columns: np.ndarray, components: int) -> np.ndarray:
    """The first ``components`` principal components of ``columns`` ``[N, C]`` (unit overall std)."""
    centred = columns - columns.mean(0)
    sample = centred[:: max(1, len(centred) // 20000)].astype(np.float64)
    _, vectors = np.linalg.eigh(sample.T @ sample)  # ascending: the last are the principal ones
    reduced = centred @ vectors[:, ::-1][:, : min(components, vectors.shape[1])].astype(np.float32)
    return (reduced / max(float(reduced.std()), 1e-6)).astype(np.float32)


def object_features(labels: np.ndarray, count: int, feature_columns: np.ndarray | None,
                    filter_columns: np.ndarray | None, shape: bool = True) -> np.ndarray:
    """The image-level feature rows ``[n, F]`` of ``count`` objects (the prior comes per prompt).

    ``shape=False``: zeros in the shape columns (for regions whose shape means nothing).
    """
    parts = [shape_features(labels, count) if shape else np.zeros((count, SHAPE_COLUMNS), np.float32)]
    for columns in (feature_columns, filter_columns):
        if columns is not None:
            parts.extend(object_means(labels, columns, count))
    return np.concatenate(parts, axis=1).astype(np.float32)


def build_candidates(rgb: np.ndarray, cell: float, feature_columns: np.ndarray | None,
                     filter_columns: np.ndarray | None) -> Candidates:
    """:func:`find_candidates` and their :func:`object_features` (built once per encoded image)."""
    labels, _ = find_candidates(rgb, cell)
    count = int(labels.max(initial=0))
    filters = (principal_components(filter_columns, FILTER_COMPONENTS)
               if filter_columns is not None else None)
    features = object_features(labels, count, feature_columns, filters)
    sizes = np.bincount(labels.ravel(), minlength=count + 1)[1:]
    groups = [SHAPE_COLUMNS] + [2 * columns.shape[1] for columns in (feature_columns, filters)
                                if columns is not None]
    return Candidates(labels, features, sizes, group_weights(groups, SHAPE_WEIGHT), core_pixels(labels),
                      feature_columns, filters)


def core_pixels(labels: np.ndarray) -> np.ndarray:
    """The pixels of each object at least :data:`CORE` of its deepest pixel's distance from its border."""
    count = int(labels.max(initial=0))
    if count == 0:
        return np.zeros(labels.shape, bool)
    depth = ndimage.distance_transform_edt(np.pad(labels > 0, 1))[1:-1, 1:-1]
    deepest = np.asarray(ndimage.maximum(depth, labels, np.arange(count + 1)))
    deepest[0] = np.inf
    return depth >= CORE * deepest[labels]


def prior_features(candidates: Candidates, small_prior: np.ndarray) -> np.ndarray:
    """``[n, 2]``: each object's prior mean and maximum."""
    count = candidates.count
    if count == 0:
        return np.zeros((0, 2), np.float32)
    index = np.arange(1, count + 1)
    mean = ndimage.mean(small_prior, candidates.labels, index)
    peak = ndimage.maximum(small_prior, candidates.labels, index)
    return np.stack([mean, peak], 1).astype(np.float32)


def standardise(rows: np.ndarray) -> np.ndarray:
    """Columns scaled to zero mean and unit spread over the objects (a constant column stays 0)."""
    if len(rows) == 0:
        return rows
    return (rows - rows.mean(0)) / (rows.std(0) + 1e-6)
