"""Strokes on a tiled image: the windows near the strokes, read again at full resolution.

The stroke classifier of :mod:`.pixels` works on a coarse grid (at most ``WORKING_SIDE``
pixels on the long side), where the small objects of a large image are a pixel or two.
For an image encoded in tiles, refinement therefore reads the image again only in the
windows (blocks of the encoding's window side) within :data:`DETAIL_MARGIN` pixels of a
stroke. A second classifier of the same kind learns there, at full resolution, from the
stroke pixels and from the pixels the coarse result is confident about, and its
probability replaces the coarse one in those windows. Everywhere else the coarse result
(cached dense features, the thumbnail's filters, the prior) stands, and nothing else is
read.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from scipy import ndimage

from .classifier import fit_predict, image_filters

Window = tuple[int, int, int, int]  # (y0, y1, x0, x1), end exclusive

#: Pixels around a stroke whose window is read at full resolution.
DETAIL_MARGIN = 32
#: Extra pixels read around a window so its filters see no artificial border.
FILTER_CONTEXT = 16
#: Coarse pixels sampled as labels (where the coarse probability is confident).
DETAIL_SAMPLES = 2000
#: A coarse probability below this (or above one minus it) labels a pixel.
CONFIDENT = 0.2
#: The coarse labels' total weight relative to the stroke pixels' (the strokes decide here).
COARSE_WEIGHT = 0.25


def detail_windows(image_shape: tuple[int, int], side: int, painted: np.ndarray) -> list[Window]:
    """The blocks of a ``side``-pixel grid within :data:`DETAIL_MARGIN` of a painted pixel."""
    height, width = image_shape
    ys, xs = np.nonzero(painted)
    if not len(ys):
        return []
    corners = []
    for dy in (-DETAIL_MARGIN, DETAIL_MARGIN):
        for dx in (-DETAIL_MARGIN, DETAIL_MARGIN):
            corners.append(np.stack([np.clip(ys + dy, 0, height - 1) // side,
                                     np.clip(xs + dx, 0, width - 1) // side], axis=1))
    blocks = np.unique(np.concatenate(corners), axis=0)
    return [(int(r) * side, min(height, (int(r) + 1) * side), int(c) * side, min(width, (int(c) + 1) * side))
            for r, c in blocks]


def refine_windows(
    refiner,
    probability: np.ndarray,
    *,
    prior: np.ndarray,
    positive: np.ndarray,
    negative: np.ndarray,
    inputs: Sequence[str],
    coarse_shape: tuple[int, int],
) -> list[Window]:
    """Replace ``probability`` (full size, in place) near the strokes by a full-resolution one.

    ``refiner``: the image's :class:`~.refiner.StrokeRefiner` (its encoding, its image windows,
    the dense features' principal components); ``coarse_shape``: the grid ``probability`` was
    upsampled from. Returns the windows read.
    """
    encoded = refiner.encoded
    reduced_grid = refiner.reduced_grid() if "features" in inputs else None
    windows = detail_windows(encoded.image_shape, encoded.options.window, positive | negative)
    columns = [_window_columns(refiner, window, prior, inputs, reduced_grid) for window in windows]
    rows, labels, weights = [], [], []
    rng = np.random.default_rng(0)
    coarseness = max(1, int(np.ceil(2 * max(encoded.image_shape) / max(coarse_shape))))
    offset = 0
    for window, window_columns in zip(windows, columns, strict=True):
        y0, y1, x0, x1 = window
        painted = (positive[y0:y1, x0:x1], negative[y0:y1, x0:x1])
        coarse = probability[y0:y1, x0:x1]
        for label, strokes in ((1, painted[0]), (0, painted[1])):
            found = np.flatnonzero(strokes)
            rows.append(found + offset)
            labels.append(np.full(len(found), label, np.int8))
            weights.append(np.ones(len(found)))
        for label, region in ((1, coarse > 1 - CONFIDENT), (0, coarse < CONFIDENT)):
            # The coarse grid blurs edges over ``coarseness`` pixels: only its interiors count.
            region = ndimage.binary_erosion(region, iterations=coarseness, border_value=1)
            region &= ~painted[0] & ~painted[1]
            found = np.flatnonzero(region)
            size = min(len(found), DETAIL_SAMPLES // (2 * len(windows)))
            rows.append(rng.choice(found, size=size, replace=False) + offset)
            labels.append(np.full(size, label, np.int8))
            weights.append(np.full(size, -1.0))  # set below, once the strokes are counted
        offset += len(window_columns)
    labels = np.concatenate(labels) if labels else np.zeros(0, np.int8)
    weights = np.concatenate(weights) if weights else np.zeros(0)
    coarse = weights < 0
    weights[coarse] = COARSE_WEIGHT * (~coarse).sum() / max(1, coarse.sum())
    if len(np.unique(labels)) < 2:
        return windows  # one class near the strokes: the coarse result (strokes kept later) stands
    stacked = np.concatenate(columns)
    predicted = fit_predict(stacked, np.concatenate(rows), labels, weights)
    offset = 0
    for y0, y1, x0, x1 in windows:
        size = (y1 - y0) * (x1 - x0)
        probability[y0:y1, x0:x1] = predicted[offset : offset + size].reshape(y1 - y0, x1 - x0)
        offset += size
    return windows


def _window_columns(refiner, window: Window, prior, inputs, reduced_grid) -> np.ndarray:
    """The classifier's inputs for every pixel of ``window``, at full resolution ``[h * w, C]``."""
    encoded = refiner.encoded
    y0, y1, x0, x1 = window
    parts = []
    if "features" in inputs:
        parts.append(_grid_at_pixels(reduced_grid, encoded.covered_shape, window))
    if "filters" in inputs:
        height, width = encoded.image_shape
        top, left = max(0, y0 - FILTER_CONTEXT), max(0, x0 - FILTER_CONTEXT)
        bottom, right = min(height, y1 + FILTER_CONTEXT), min(width, x1 + FILTER_CONTEXT)
        rgb = refiner.window(top, bottom, left, right)
        values = image_filters(rgb)[y0 - top : y1 - top, x0 - left : x1 - left]
        parts.append(values.reshape(-1, values.shape[-1]))
    if "prior" in inputs:
        parts.append(prior[y0:y1, x0:x1].reshape(-1, 1))
    return np.concatenate(parts, axis=1).astype(np.float32)


def _grid_at_pixels(grid: torch.Tensor, covered_shape: tuple[int, int], window: Window) -> np.ndarray:
    """Bilinear values ``[h * w, C]`` of a ``[C, gh, gw]`` grid spanning ``covered_shape`` at the
    window's pixels: the same values as upsampling the whole grid, without building it."""
    y0, y1, x0, x1 = window
    rows = (torch.arange(y0, y1, dtype=torch.float32) + 0.5) * 2 / covered_shape[0] - 1
    cols = (torch.arange(x0, x1, dtype=torch.float32) + 0.5) * 2 / covered_shape[1] - 1
    yy, xx = torch.meshgrid(rows, cols, indexing="ij")
    where = torch.stack([xx, yy], dim=-1)[None]
    values = torch.nn.functional.grid_sample(grid[None].float(), where, mode="bilinear",
                                             padding_mode="border", align_corners=False)
    return values[0].permute(1, 2, 0).reshape(-1, grid.shape[0]).numpy()
