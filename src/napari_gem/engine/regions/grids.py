"""Label images: checked, renumbered, and resampled with the nearest rule the spec uses."""

from __future__ import annotations

import numpy as np


def check_labels(labels, shape: tuple[int, int], what: str = "the region labels") -> np.ndarray:
    """``labels`` as an integer ``[H, W]`` array of ``shape``; a clear ``ValueError`` otherwise."""
    array = np.asarray(labels)
    if array.ndim != 2 or tuple(array.shape) != tuple(shape):
        raise ValueError(f"{what} must be a 2D label image of the image's shape {tuple(shape)}; "
                         f"got shape {tuple(array.shape)}")
    whole = array.dtype.kind in "iub" or (array.dtype.kind == "f" and np.all(np.mod(array, 1) == 0))
    if not whole:
        raise ValueError(f"{what} must hold whole numbers (a label image); got {array.dtype}")
    if array.size and array.min() < 0:
        raise ValueError(f"{what} must be >= 0 (0 = not in any region); got {array.min()}")
    return array


def renumbered(labels: np.ndarray) -> np.ndarray:
    """int32 labels with 0 kept and the other values renumbered 1..n in their order.

    Large label values (CorrCLIP pads with 10000) can then never collide [adaptation, spec §3.1].
    """
    values, inverse = np.unique(labels, return_inverse=True)
    if values.size and values[0] != 0:
        inverse = inverse + 1
    return inverse.reshape(labels.shape).astype(np.int32)


def nearest_indices(size_in: int, size_out: int) -> np.ndarray:
    """PyTorch's legacy ``nearest`` source index of each output position: ``floor(dst·in/out)``."""
    if size_in == size_out:
        return np.arange(size_out)
    # float32 products, as PyTorch's CPU kernel computes them (exact equality with it).
    scale = np.float32(size_in) / np.float32(size_out)
    index = np.floor(np.arange(size_out, dtype=np.float32) * scale).astype(np.int64)
    return np.minimum(index, size_in - 1)


def resize_nearest(labels: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """``labels`` ``[H, W]`` on another ``shape`` with ``F.interpolate(mode='nearest')``'s rule
    (the top-left pixel of each cell, spec §3.1), without going through floats."""
    if tuple(labels.shape) == tuple(shape):
        return labels
    rows = nearest_indices(labels.shape[0], shape[0])
    cols = nearest_indices(labels.shape[1], shape[1])
    return labels[rows[:, None], cols[None, :]]
