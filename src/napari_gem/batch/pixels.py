"""From raw windows of a large plane to CLIP-normalised model input.

The out-of-core path reads a plane window by window, so contrast limits are fixed once
per plane (from a bounded, strided sample) and every window is then mapped on its own.
The rules follow :class:`napari_gem.SegmentOptions` (``contrast``, ``percentiles``)
as documented in docs/api.md.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F

#: At most this many pixels are read to estimate a plane's contrast limits.
CONTRAST_SAMPLE = 2_000_000


def intensity_limits(plane, contrast: str, percentiles: Sequence[float]) -> tuple[float, float]:
    """``(low, high)``: raw values that map to 0 and 1 for the whole plane.

    ``auto``: uint8 as 0..255, bool as 0..1, anything else robust percentiles;
    ``none``: the dtype's range (0..1 for floats); ``minmax``; ``percentile``.
    """
    dtype = np.dtype(plane.dtype)
    if dtype == np.bool_ and contrast in ("auto", "none"):
        return 0.0, 1.0
    if contrast == "auto":
        if dtype == np.uint8:
            return 0.0, 255.0
        contrast = "percentile"
    if contrast == "none":
        if np.issubdtype(dtype, np.integer):
            info = np.iinfo(dtype)
            return float(info.min), float(info.max)
        return 0.0, 1.0
    values = strided_sample(plane).astype(np.float64, copy=False)
    values = values[np.isfinite(values)]
    if values.size == 0:
        return 0.0, 0.0  # all NaN: a black plane, not an error
    if contrast == "minmax":
        return float(values.min()), float(values.max())
    low, high = np.percentile(values, percentiles)
    if high <= low:  # heavy ties: fall back to the full range
        low, high = values.min(), values.max()
    return float(low), float(high)


def strided_sample(plane, limit: int = CONTRAST_SAMPLE) -> np.ndarray:
    """Every n-th pixel along both axes, at most about ``limit`` of them."""
    height, width = plane.shape[:2]
    step = max(1, int(np.ceil(np.sqrt(height * width / limit))))
    return np.asarray(plane[::step, ::step])


def to_unit_rgb(window: np.ndarray, limits: tuple[float, float]) -> np.ndarray:
    """Raw pixels ``[h, w]`` or ``[h, w, S]`` as float32 RGB ``[h, w, 3]`` in [0, 1]."""
    window = np.asarray(window)
    if window.ndim == 3:
        window = window[..., :3] if window.shape[-1] >= 3 else window[..., :1]
    low, high = limits
    values = window.astype(np.float32)
    span = high - low
    if np.isfinite(span) and span > 0:
        values = (values - np.float32(low)) / np.float32(span)
    else:
        values = np.zeros_like(values)
    values = np.nan_to_num(np.clip(values, 0.0, 1.0), nan=0.0, posinf=1.0, neginf=0.0)
    if values.ndim == 2:
        values = values[..., None]
    if values.shape[-1] == 1:
        values = np.repeat(values, 3, axis=-1)
    return values


def clip_pixels(rgb: np.ndarray) -> torch.Tensor:
    """CLIP-normalised ``[3, h, w]`` tensor from float RGB ``[h, w, 3]`` in [0, 1]."""
    from open_clip import OPENAI_DATASET_MEAN, OPENAI_DATASET_STD

    tensor = torch.from_numpy(np.ascontiguousarray(rgb, dtype=np.float32)).permute(2, 0, 1)
    mean = torch.tensor(OPENAI_DATASET_MEAN).view(3, 1, 1)
    std = torch.tensor(OPENAI_DATASET_STD).view(3, 1, 1)
    return (tensor - mean) / std


def read_window(plane, start: tuple[int, int], shape: tuple[int, int]) -> np.ndarray:
    """The pixels of one window; the part beyond the plane repeats its edge."""
    y, x = start
    height, width = plane.shape[:2]
    crop = np.asarray(plane[y : min(y + shape[0], height), x : min(x + shape[1], width)])
    pad_y, pad_x = shape[0] - crop.shape[0], shape[1] - crop.shape[1]
    if pad_y or pad_x:
        crop = np.pad(crop, [(0, pad_y), (0, pad_x)] + [(0, 0)] * (crop.ndim - 2), mode="edge")
    return crop


def overview_pixels(plane, limits, input_size: int, resize: str, patch_size: int) -> torch.Tensor:
    """The whole plane, read with a stride and resized to the model input (for its CLIP
    embedding): the square input of the paper or the aspect ratio kept."""
    height, width = plane.shape[:2]
    step = max(1, int(max(height, width) // (2 * input_size)))
    rgb = to_unit_rgb(np.asarray(plane[::step, ::step]), limits)
    size = model_input_size(rgb.shape[:2], input_size, resize, patch_size)
    tensor = torch.from_numpy(np.ascontiguousarray(rgb)).permute(2, 0, 1)[None]
    if tuple(tensor.shape[-2:]) != size:
        shrinking = size[0] < rgb.shape[0] or size[1] < rgb.shape[1]
        tensor = F.interpolate(tensor, size=size, mode="bicubic", align_corners=False,
                               antialias=shrinking).clamp_(0, 1)
    return clip_pixels(tensor[0].permute(1, 2, 0).numpy())


def model_input_size(
    image_size: tuple[int, int], input_size: int, resize: str, patch_size: int
) -> tuple[int, int]:
    """Model input ``(h, w)`` in multiples of the patch: square, or the aspect kept."""
    side = max(patch_size, input_size // patch_size * patch_size)
    if resize == "square":
        return side, side
    scale = side / max(image_size)
    return tuple(
        max(patch_size, int(round(length * scale / patch_size)) * patch_size)
        for length in image_size
    )
