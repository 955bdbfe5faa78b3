"""Stroke files: the pixels a user painted (positive) and erased (negative) on a mask.

One uint8 array of the mask's shape (2D, or nD for a stack): 0 untouched, 1 positive,
2 negative, written as a TIFF beside the exported parameters JSON so that a refinement
(``EncodedImage.refine(prompt, positive=..., negative=...)``) can be reproduced.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from .atomic import write_atomically

UNTOUCHED, POSITIVE, NEGATIVE = 0, 1, 2


def stroke_codes(positive: np.ndarray, negative: np.ndarray) -> np.ndarray:
    """One uint8 array: 1 where ``positive``, 2 where ``negative`` (they must not overlap)."""
    positive, negative = np.asarray(positive, bool), np.asarray(negative, bool)
    if positive.shape != negative.shape:
        raise ValueError(f"positive {positive.shape} and negative {negative.shape} strokes "
                         "must have one shape")
    if np.any(positive & negative):
        raise ValueError("a pixel cannot be marked both positive and negative")
    codes = np.zeros(positive.shape, np.uint8)
    codes[positive] = POSITIVE
    codes[negative] = NEGATIVE
    return codes


def split_codes(codes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(positive, negative)`` boolean arrays of a stroke-code array."""
    codes = np.asarray(codes)
    unknown = set(np.unique(codes).tolist()) - {UNTOUCHED, POSITIVE, NEGATIVE}
    if unknown:
        raise ValueError(f"stroke codes must be 0, 1 (positive) or 2 (negative); found "
                         f"{sorted(unknown)}")
    return codes == POSITIVE, codes == NEGATIVE


def write_strokes(path: str | os.PathLike, codes: np.ndarray, metadata: dict) -> Path:
    """Write stroke codes (uint8) as a zlib TIFF with ``metadata`` (JSON) in its description."""
    import tifffile

    codes = np.asarray(codes, np.uint8)
    split_codes(codes)  # refuse anything but 0/1/2
    return write_atomically(Path(path), lambda temporary: tifffile.imwrite(
        temporary, codes, metadata={"kind": "strokes", "codes": {"positive": POSITIVE,
                                                                   "negative": NEGATIVE},
                                    **metadata},
        compression="zlib", photometric="minisblack"))


def read_strokes(path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray]:
    """``(positive, negative)`` boolean arrays from a stroke file."""
    import tifffile

    return split_codes(tifffile.imread(Path(path)))
