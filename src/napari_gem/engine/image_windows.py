"""Windows of an encoded image read again from its source: for PAMR's guide and the strokes.

:class:`ImageWindows` keeps the image (numpy or lazy) and the intensity mapping ``encode``
used, and reads any window, or the whole image with a stride, as RGB in [0, 1]: what the
model saw, without holding a second copy of the image.
"""

from __future__ import annotations

import numpy as np
import torch

from .preprocess import to_pixels, to_rgb


class ImageWindows:
    """RGB [0, 1] windows of a 2D image ``[H, W(, C)]`` under one intensity mapping."""

    def __init__(self, image, mapping) -> None:
        self.image = image
        self.mapping = mapping

    @property
    def shape(self) -> tuple[int, int]:
        return tuple(self.image.shape[:2])

    def read(self, y0: int, y1: int, x0: int, x1: int) -> np.ndarray:
        """Rows ``y0:y1``, columns ``x0:x1`` as RGB ``[h, w, 3]`` in [0, 1]."""
        return to_rgb(np.asarray(self.image[y0:y1, x0:x1]), self.mapping)

    def strided(self, step: int) -> np.ndarray:
        """Every ``step``-th row and column as RGB in [0, 1] (a small copy, memory bounded)."""
        return to_rgb(np.asarray(self.image[::step, ::step]), self.mapping)

    def guide(self, y0: int, y1: int, x0: int, x1: int) -> torch.Tensor:
        """The window as the model sees it (CLIP-normalised ``[3, h, w]``), PAMR's guide."""
        return to_pixels(self.read(y0, y1, x0, x1))
