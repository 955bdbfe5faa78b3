"""Strokes on an image encoded in tiles: only the windows near the strokes are read again."""

from __future__ import annotations

import numpy as np
from skimage import draw

from napari_gem.engine.encoded import encode
from napari_gem.engine.options import SegmentOptions
from napari_gem.engine.stroke_detail import DETAIL_MARGIN, FILTER_CONTEXT

SIDE = 1536
WINDOW = 256


def _discs_image() -> tuple[np.ndarray, np.ndarray]:
    """Dark discs (radius 9: 1.5 px on the 256 px working grid) on noise."""
    rng = np.random.default_rng(3)
    image = 0.8 + 0.03 * rng.standard_normal((SIDE, SIDE))
    truth = np.zeros((SIDE, SIDE), bool)
    for y in range(24, SIDE - 24, 48):
        for x in range(24, SIDE - 24, 48):
            truth[draw.disk((y + rng.integers(-4, 5), x + rng.integers(-4, 5)), 9, shape=truth.shape)] = True
    image[truth] = 0.25 + 0.03 * rng.standard_normal(truth.sum())
    return image.astype(np.float32), truth


class CountingReader:
    """The real image reader, recording every window it is asked for."""

    def __init__(self, read):
        self.read, self.windows = read, []

    def __call__(self, y0, y1, x0, x1):
        self.windows.append((y0, y1, x0, x1))
        return self.read(y0, y1, x0, x1)


def test_strokes_on_a_tiled_image_read_only_the_windows_near_them(tiny_gem):
    image, truth = _discs_image()
    options = SegmentOptions(tiling="always", window=WINDOW, overlap=32)
    encoded = encode(image, tiny_gem, options)
    assert encoded.tiled and encoded.num_windows > 25
    reader = CountingReader(encoded.read_image)
    encoded.read_image = reader
    # Strokes in the top-left corner: on one disc, and on the background next to it.
    positive, negative = np.zeros_like(truth), np.zeros_like(truth)
    ys, xs = np.nonzero(truth[:60, :60])
    cy, cx = int(ys.mean()), int(xs.mean())
    positive[cy - 2 : cy + 3, cx - 2 : cx + 3] = True
    negative[cy - 2 : cy + 3, cx + 12 : cx + 30] = True
    negative &= ~truth
    # The pixel classifier's detail windows, alone: on hundreds of identical discs with a
    # random model's (noise) prior the object stage splits the discs by that noise (see
    # docs/refine.md, "When to switch the object stage off").
    refined = encoded.refine("a cell", positive=positive, negative=negative, objects="off")

    # Only the window holding the strokes (they are more than the margin from its edges).
    assert reader.windows == [(0, WINDOW + FILTER_CONTEXT, 0, WINDOW + FILTER_CONTEXT)]
    assert max(cy, cx + 30) + DETAIL_MARGIN < WINDOW
    read_pixels = sum((y1 - y0) * (x1 - x0) for y0, y1, x0, x1 in reader.windows)
    assert read_pixels < 0.05 * SIDE * SIDE
    # Near the strokes the full-resolution classifier finds the discs it was shown one of.
    near = slice(0, WINDOW), slice(0, WINDOW)
    mask, expected = refined.masks[0][near], truth[near]
    iou = (mask & expected).sum() / (mask | expected).sum()
    assert iou > 0.8, iou
    assert refined.masks[0][positive].all() and not refined.masks[0][negative].any()
    assert refined.masks[0].shape == (SIDE, SIDE)


def test_untiled_images_are_not_read_again(tiny_gem):
    image, truth = _discs_image()
    small = image[:300, :300]
    encoded = encode(small, tiny_gem, SegmentOptions(tiling="never"))
    reader = CountingReader(encoded.read_image)
    encoded.read_image = reader
    positive = np.zeros(small.shape, bool)
    positive[truth[:300, :300]] = True
    negative = ~positive
    negative[100:, :] = False
    positive[100:, :] = False
    encoded.refine("a cell", positive=positive, negative=negative)
    assert reader.windows == []
