"""Small real images and options shared by the batch tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import tifffile
from scipy import ndimage

from napari_gem import SegmentOptions

#: Small enough for two CPU cores: 64-pixel model input and windows.
SMALL = SegmentOptions(input_size=64, window=64, overlap=16)


def blobs(shape, seed: int = 0, dtype=np.uint16) -> np.ndarray:
    """Smooth bright blobs on a dark background: something for masks to find."""
    noise = np.random.default_rng(seed).random(shape)
    sigma = [0] * (len(shape) - 2) + [4, 4]
    smooth = ndimage.gaussian_filter(noise, sigma)
    scaled = (smooth - smooth.min()) / (smooth.max() - smooth.min())
    top = 255 if dtype == np.uint8 else 4000
    return (scaled * top).astype(dtype)


def write_tiff(path: Path, data: np.ndarray, **kwargs) -> Path:
    tifffile.imwrite(path, data, photometric="minisblack", **kwargs)
    return path


def write_zarr(path: Path, data: np.ndarray, chunks) -> Path:
    import zarr

    array = zarr.open_array(str(path), mode="w", shape=data.shape, chunks=chunks, dtype=data.dtype)
    array[:] = data
    return path
