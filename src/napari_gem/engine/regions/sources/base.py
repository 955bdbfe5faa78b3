"""What a source of regions is: a named way to get a label image for a 2D image."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import Any, ClassVar

import numpy as np

#: ``read_rgb(step)``: the whole image as RGB float32 in [0, 1] (as the model sees it), every
#: ``step``-th pixel: ``[ceil(H/step), ceil(W/step), 3]``.
ReadRgb = Callable[[int], np.ndarray]


class RegionSource(ABC):
    """A way to divide an image into regions inside which the result must agree."""

    #: Registry name (``regions=name``).
    name: ClassVar[str]
    #: Name people see in the form.
    title: ClassVar[str]
    #: True when the caller hands the label image over (a Labels layer, a file).
    takes_labels: ClassVar[bool] = False

    def unavailable(self) -> str | None:
        """Why this source cannot run here (a package or weights missing), or None."""
        return None

    @abstractmethod
    def labels(self, read_rgb: ReadRgb, shape: tuple[int, int], options: Any,
               given: np.ndarray | None = None) -> np.ndarray:
        """Region labels ``[H, W]`` of ``shape`` (0: in no region; 1..n: regions)."""
