"""From any 2D image array to CLIP-normalised model input (numpy and torch only).

Works on windows: contrast limits are computed once for the whole image (from a
bounded sample), then any window is converted on its own, so large and lazy arrays
are never converted whole.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)

#: At most this many pixels are read to estimate contrast limits.
CONTRAST_SAMPLE = 2_000_000


def image_layout(shape: tuple[int, ...]) -> tuple[int, int, int]:
    """``(height, width, channels)`` of a 2D gray, RGB or RGBA image shape."""
    if len(shape) == 2:
        return shape[0], shape[1], 1
    if len(shape) == 3 and shape[-1] in (1, 3, 4):
        return shape[0], shape[1], shape[2]
    raise ValueError(
        f"expected a 2D image [H, W], [H, W, 3] (RGB) or [H, W, 4] (RGBA); got shape {shape}. "
        "Pick one plane of a stack, or one or three channels of a multichannel image."
    )


@dataclass(frozen=True)
class IntensityMap:
    """Linear map of raw intensities to [0, 1]: ``(value - low) / (high - low)``, clipped."""

    low: float
    high: float

    def apply(self, values: np.ndarray) -> np.ndarray:
        values = np.asarray(values, dtype=np.float32)
        span = self.high - self.low
        if not np.isfinite(span) or span <= 0:
            scaled = np.zeros_like(values)
        else:
            scaled = (values - np.float32(self.low)) / np.float32(span)
        scaled = np.clip(scaled, 0.0, 1.0)
        return np.nan_to_num(scaled, nan=0.0, posinf=1.0, neginf=0.0)


def _sample(image) -> np.ndarray:
    """A strided sample of at most :data:`CONTRAST_SAMPLE` pixels (all of them if fewer)."""
    height, width = image.shape[:2]
    step = max(1, int(np.ceil(np.sqrt(height * width / CONTRAST_SAMPLE))))
    return np.asarray(image[::step, ::step])


def intensity_map(image, contrast: str, percentiles: tuple[float, float]) -> IntensityMap:
    """Choose how raw values map to [0, 1] for the whole image.

    ``auto``: uint8 as 0..255, bool as 0..1, anything else robust percentiles.
    """
    dtype = np.dtype(image.dtype)
    if contrast == "auto":
        if dtype == np.uint8:
            return IntensityMap(0.0, 255.0)
        if dtype == np.bool_:
            return IntensityMap(0.0, 1.0)
        contrast = "percentile"
    if contrast == "none":
        if dtype == np.bool_:
            return IntensityMap(0.0, 1.0)
        if np.issubdtype(dtype, np.integer):
            info = np.iinfo(dtype)
            return IntensityMap(float(info.min), float(info.max))
        return IntensityMap(0.0, 1.0)
    sample = _sample(image).astype(np.float64, copy=False)
    finite = sample[np.isfinite(sample)]
    if finite.size == 0:
        return IntensityMap(0.0, 0.0)  # all NaN: a black image, not an error
    if contrast == "minmax":
        return IntensityMap(float(finite.min()), float(finite.max()))
    low, high = np.percentile(finite, percentiles)
    if high <= low:  # heavy ties: fall back to the full range
        low, high = finite.min(), finite.max()
    return IntensityMap(float(low), float(high))


def to_rgb(window: np.ndarray, mapping: IntensityMap) -> np.ndarray:
    """A window of raw pixels as float32 RGB ``[h, w, 3]`` in [0, 1] (gray repeated, alpha dropped)."""
    window = np.asarray(window)
    if window.ndim == 3:
        window = window[..., :3] if window.shape[-1] >= 3 else window[..., :1]
    scaled = mapping.apply(window)
    if scaled.ndim == 2:
        scaled = scaled[..., None]
    if scaled.shape[-1] == 1:
        scaled = np.repeat(scaled, 3, axis=-1)
    return scaled


def to_pixels(rgb: np.ndarray) -> torch.Tensor:
    """CLIP-normalised ``[3, h, w]`` tensor from float RGB in [0, 1]."""
    tensor = torch.from_numpy(np.ascontiguousarray(rgb, dtype=np.float32)).permute(2, 0, 1)
    mean = torch.tensor(CLIP_MEAN).view(3, 1, 1)
    std = torch.tensor(CLIP_STD).view(3, 1, 1)
    return (tensor - mean) / std


def renormalised(pixels: torch.Tensor, mean: tuple[float, ...], std: tuple[float, ...]) -> torch.Tensor:
    """CLIP-normalised pixels normalised with another ``mean`` and ``std`` instead:
    ``(px·σ_clip + μ_clip − μ) / σ``. The same tensor when they are CLIP's own."""
    if tuple(mean) == CLIP_MEAN and tuple(std) == CLIP_STD:
        return pixels

    def column(values):
        return torch.tensor(values, dtype=pixels.dtype, device=pixels.device).view(1, 3, 1, 1)

    return (pixels * column(CLIP_STD) + column(CLIP_MEAN) - column(mean)) / column(std)


def model_input_size(
    image_size: tuple[int, int], input_size: int, resize: str, patch_size: int
) -> tuple[int, int]:
    """Model input ``(h, w)``: the paper's square, or the aspect kept (multiples of the patch)."""
    side = max(patch_size, input_size // patch_size * patch_size)
    if resize == "square":
        return side, side
    height, width = image_size
    scale = side / max(height, width)

    def fit(length: int) -> int:
        return max(patch_size, int(round(length * scale / patch_size)) * patch_size)

    return fit(height), fit(width)


def resize_rgb(rgb: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Bicubic (antialiased) resize of float RGB ``[h, w, 3]``, clipped back to [0, 1]."""
    if rgb.shape[:2] == tuple(size):
        return rgb
    tensor = torch.from_numpy(np.ascontiguousarray(rgb)).permute(2, 0, 1)[None]
    shrinking = size[0] < rgb.shape[0] or size[1] < rgb.shape[1]
    resized = F.interpolate(tensor, size=size, mode="bicubic", align_corners=False,
                            antialias=shrinking)
    return resized[0].permute(1, 2, 0).clamp_(0, 1).numpy()
