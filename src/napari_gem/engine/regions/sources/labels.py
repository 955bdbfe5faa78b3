"""A label image the user gives: a napari Labels layer, or a file on the command line.

0 is "in no region" (napari's convention, and CorrCLIP's unsegmented label); the other
values are renumbered 1..n.
"""

from __future__ import annotations

import os

import numpy as np

from ..grids import check_labels, renumbered
from . import register
from .base import ReadRgb, RegionSource


def read_label_file(path: str | os.PathLike) -> np.ndarray:
    """A label image from a TIFF (tifffile) or another image file (scikit-image)."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise ValueError(f"the regions labels file {path!r} does not exist")
    try:
        if path.lower().endswith((".tif", ".tiff")):
            import tifffile

            return tifffile.imread(path)
        from skimage.io import imread

        return imread(path)
    except Exception as error:
        raise ValueError(f"could not read the regions labels file {path!r} "
                         f"({type(error).__name__}: {error})") from error


@register
class GivenLabels(RegionSource):
    name = "labels"
    title = "a Labels layer / labels file"
    takes_labels = True

    def labels(self, read_rgb: ReadRgb, shape: tuple[int, int], options,
               given: np.ndarray | None = None) -> np.ndarray:
        what = "the region labels"
        if given is None:
            path = getattr(options, "regions_labels", None)
            if path is None:
                raise ValueError("regions='labels' needs a label image: pick a Labels layer in napari, "
                                 "pass regions=ARRAY in Python, or --regions-labels FILE on the "
                                 "command line")
            given, what = read_label_file(path), f"the regions labels file {path!r}"
        return renumbered(check_labels(given, shape, what))
