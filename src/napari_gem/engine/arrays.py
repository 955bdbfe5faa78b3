"""Whatever array a user hands the API, as something :func:`encode` can slice.

One entry point, :func:`as_image_array`, called first thing by ``encode``: it accepts
numpy arrays and anything ``numpy.asarray`` understands (nested lists, PIL images,
memmaps, masked arrays), torch tensors on any device and of any dtype, and lazy arrays
(dask, zarr, xarray, h5py) which stay lazy, so tiling still reads them window by window.
Dtypes with no intensity meaning are refused with one line that names the dtype.
See the table in docs/api.md.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

#: numpy dtype kinds that hold intensities: bool, unsigned, signed, float.
INTENSITY_KINDS = frozenset("buif")
_KIND_NAMES = {
    "c": "complex numbers (take np.abs, .real or np.angle first)",
    "U": "text",
    "S": "bytes",
    "O": "Python objects",
    "M": "dates and times",
    "m": "time differences",
    "V": "structured records (pick one field)",
}
#: PIL modes numpy reads as intensities; any other mode (palette, CMYK, LAB...) is
#: converted to RGB(A) first, because its raw values are not intensities.
_PIL_INTENSITY_MODES = frozenset({"1", "L", "I", "F", "RGB", "RGBA", "I;16", "I;16B",
                                  "I;16L", "I;16N"})


def check_intensity_dtype(dtype) -> np.dtype:
    """``dtype`` as a numpy dtype if it holds intensities; else a one-line ``TypeError``."""
    try:
        dtype = np.dtype(dtype)
    except TypeError as error:
        raise TypeError(f"the image has dtype {dtype!r}, which numpy does not know") from error
    if dtype.kind not in INTENSITY_KINDS:
        meaning = _KIND_NAMES.get(dtype.kind, "no intensity meaning")
        raise TypeError(
            f"the image has dtype {dtype} ({meaning}); napari-gem needs intensities: "
            "bool, integer or floating-point pixels"
        )
    return dtype


def _is_lazy(image: Any) -> bool:
    """An array-like that slices without loading everything (dask, zarr, h5py...)."""
    return (
        not isinstance(image, np.ndarray)
        and all(hasattr(image, name) for name in ("shape", "dtype", "ndim", "__getitem__"))
        and not _is_torch(image)
    )


def _is_torch(image: Any) -> bool:
    torch = _module("torch")
    return torch is not None and isinstance(image, torch.Tensor)


def _module(name: str):
    """An already imported module, or None: no import just to test a type."""
    import sys

    return sys.modules.get(name)


def _from_torch(tensor) -> np.ndarray:
    import torch

    if tensor.is_complex():
        check_intensity_dtype(np.complex64)  # raises, naming complex
    if tensor.device.type == "meta":
        raise TypeError("the image is a torch tensor on the 'meta' device: it has no values")
    tensor = tensor.detach()
    if tensor.layout != torch.strided:  # sparse tensors
        tensor = tensor.to_dense()
    # numpy has no bfloat16; float32 holds every bfloat16 value exactly.
    if tensor.dtype == torch.bfloat16:
        tensor = tensor.float()
    array = tensor.cpu().resolve_conj().resolve_neg().numpy()
    return _channels_last(array)


def _channels_last(array: np.ndarray) -> np.ndarray:
    """torch's ``[C, H, W]`` (or ``[1, C, H, W]``) images as ``[H, W, C]``.

    Only for tensors, where channels-first is the convention, and only when the last
    axis cannot itself be a channel axis, so an ``[H, W, 3]`` tensor stays as it is.
    """
    if array.ndim == 4 and array.shape[0] == 1:
        array = array[0]
    if array.ndim == 3 and array.shape[0] in (1, 3, 4) and array.shape[-1] not in (1, 3, 4):
        array = np.moveaxis(array, 0, -1)
    return array


def _from_pil(image) -> np.ndarray:
    if image.mode not in _PIL_INTENSITY_MODES:
        has_alpha = "A" in image.mode or "transparency" in image.info
        image = image.convert("RGBA" if has_alpha else "RGB")
    return np.asarray(image)


def _from_masked(array: np.ma.MaskedArray) -> np.ndarray:
    """Masked pixels become NaN: left out of the contrast limits, shown as black."""
    check_intensity_dtype(array.dtype)
    if not np.ma.is_masked(array):
        return np.asarray(array.data)
    wide = array.dtype.kind in "iu" and array.dtype.itemsize > 2
    return array.astype(np.float64 if wide else np.float32).filled(np.nan)


def as_image_array(image: Any):
    """``image`` as a numpy array, or a lazy array that slices to numpy (kept lazy).

    Raises ``TypeError`` (one line, naming the type or dtype) for things that are not
    pixel intensities: complex, text, bytes, objects, dates, structured records, a
    file path, None. Shape is checked later, where the image layout is known.
    """
    if image is None:
        raise TypeError("the image is None: pass an array of pixels")
    if isinstance(image, (str, bytes, os.PathLike)):
        raise TypeError(
            f"the image is a {type(image).__name__} ({str(image)[:80]!r}), not pixels: open "
            "the file first, e.g. napari_gem.io.open_image(path).array"
        )
    if _is_torch(image):
        array = _from_torch(image)
    elif isinstance(image, np.ma.MaskedArray):
        array = _from_masked(image)
    elif isinstance(image, np.ndarray):
        array = image
    elif _module("PIL.Image") is not None and isinstance(image, _module("PIL.Image").Image):
        array = _from_pil(image)
    elif _module("xarray") is not None and isinstance(image, _module("xarray").DataArray):
        return as_image_array(image.data)  # numpy or dask underneath: keep it lazy
    elif _module("xarray") is not None and isinstance(image, _module("xarray").Dataset):
        raise TypeError("the image is an xarray Dataset: pass one of its variables, "
                        "e.g. dataset['intensity']")
    elif _is_lazy(image):
        check_intensity_dtype(image.dtype)
        return image
    else:
        try:
            array = np.asarray(image)
        except (ValueError, TypeError) as error:
            first = str(error).strip().splitlines()[0] if str(error).strip() else ""
            raise TypeError(
                f"could not read the image ({type(image).__name__}) as an array: {first}"
            ) from error
    check_intensity_dtype(array.dtype)
    return array
