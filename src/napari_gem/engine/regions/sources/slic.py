"""SLIC superpixels from scikit-image: regions from colour and position alone, no weights.

Ours [adaptation]: CorrCLIP uses SAM 2 masks; superpixels are a free stand-in. SLIC runs
on a copy whose long side is at most ``options.slic_side`` pixels (its cost grows with the
pixel count: ~2.6 s at 1024² here, ~0.5 s at 512²), and the labels come back to full size
with the nearest rule. Every pixel is in a superpixel (labels start at 1).
"""

from __future__ import annotations

import numpy as np

from ...preprocess import resize_rgb
from ..grids import resize_nearest
from . import register
from .base import ReadRgb, RegionSource

COMPACTNESS = 10.0


@register
class Slic(RegionSource):
    name = "slic"
    title = "SLIC superpixels"

    def labels(self, read_rgb: ReadRgb, shape: tuple[int, int], options,
               given: np.ndarray | None = None) -> np.ndarray:
        from skimage.segmentation import slic

        rgb = read_rgb()
        scale = min(1.0, options.slic_side / max(shape))
        small = tuple(max(1, round(side * scale)) for side in shape)
        if small != tuple(shape):
            rgb = resize_rgb(rgb, small)
        labels = slic(rgb, n_segments=options.slic_segments, compactness=COMPACTNESS, start_label=1,
                      channel_axis=-1)
        return resize_nearest(labels.astype(np.int32), shape)
