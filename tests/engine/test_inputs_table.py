"""Every row of the inputs table in docs/api.md, with real objects.

Accepted inputs must give exactly the features of the equivalent numpy array; lazy
arrays must stay lazy when tiled; refused inputs get a one-line ``TypeError`` naming
the dtype (images) or the prompt (prompts).
"""

from __future__ import annotations

from pathlib import Path

import dask.array as da
import numpy as np
import pytest
import torch
import xarray as xr
import zarr
from PIL import Image

from napari_gem import SegmentOptions, encode, segment
from napari_gem.engine.arrays import as_image_array
from napari_gem.engine.text import clean_prompts
from read_log import ReadLog

RNG = np.random.default_rng(0)
GRAY = RNG.integers(0, 256, (48, 40), dtype=np.uint8)
RGB = RNG.integers(0, 256, (48, 40, 3), dtype=np.uint8)
OPTIONS = SegmentOptions(input_size=64)
TILED = SegmentOptions(tiling="always", window=64, overlap=16, input_size=64)


def features(image, gem, options=OPTIONS) -> torch.Tensor:
    return encode(image, gem, options).features


@pytest.fixture(scope="module")
def reference(tiny_gem):
    """Features of the plain numpy images every accepted input is compared with."""
    return {
        "gray": features(GRAY, tiny_gem),
        "rgb": features(RGB, tiny_gem),
        "gray_float": features(GRAY.astype(np.float32), tiny_gem),
        "gray_int": features(GRAY.astype(np.int64), tiny_gem),  # what numpy makes of Python ints
    }


# -- accepted: same features as the numpy array ---------------------------------------------------
ACCEPTED = {
    # name: (what the user passes, which reference it must equal)
    "nested list": (lambda: GRAY.tolist(), "gray_int"),
    "tuple of tuples": (lambda: tuple(map(tuple, GRAY.tolist())), "gray_int"),
    "torch uint8 [H, W, 3]": (lambda: torch.from_numpy(RGB.copy()), "rgb"),
    "torch uint8 [3, H, W] (channels first)": (
        lambda: torch.from_numpy(RGB.copy()).permute(2, 0, 1), "rgb"),
    "torch uint8 [1, 3, H, W] (batch of one)": (
        lambda: torch.from_numpy(RGB.copy()).permute(2, 0, 1)[None], "rgb"),
    "torch float32 requiring grad": (
        lambda: torch.from_numpy(GRAY.astype(np.float32)).requires_grad_(True), "gray_float"),
    "torch bfloat16": (lambda: torch.from_numpy(GRAY.astype(np.float32)).bfloat16(),
                       "gray_float"),  # every uint8 value is exact in bfloat16
    "torch float16": (lambda: torch.from_numpy(GRAY.astype(np.float32)).half(), "gray_float"),
    "torch non-contiguous (transposed) view": (lambda: torch.from_numpy(GRAY.T.copy()).T, "gray"),
    "numpy float16": (lambda: GRAY.astype(np.float16), "gray_float"),
    "big-endian uint8": (lambda: GRAY.astype(">u1"), "gray"),
    "big-endian float32": (lambda: GRAY.astype(">f4"), "gray_float"),
    "negative-stride view": (lambda: GRAY[::-1, ::-1].copy()[::-1, ::-1], "gray"),
    "Fortran-ordered": (lambda: np.asfortranarray(GRAY), "gray"),
    "non-contiguous view": (lambda: np.stack([GRAY, GRAY], axis=-1)[..., 0], "gray"),
    "masked array, nothing masked": (lambda: np.ma.masked_array(GRAY.astype(np.float32)),
                                     "gray_float"),
    "PIL RGB image": (lambda: Image.fromarray(RGB), "rgb"),
    "PIL L (gray) image": (lambda: Image.fromarray(GRAY), "gray"),
    "PIL P (palette) image": (lambda: Image.fromarray(RGB).quantize(256, dither=0), "palette"),
    "xarray DataArray": (lambda: xr.DataArray(GRAY, dims=("y", "x")), "gray"),
    "dask array": (lambda: da.from_array(GRAY, chunks=16), "gray"),
    "zarr array": (lambda: _zarr(GRAY), "gray"),
}


def _zarr(array: np.ndarray):
    store = zarr.create_array(store={}, shape=array.shape, dtype=array.dtype, chunks=(16, 16))
    store[:] = array
    return store


@pytest.mark.parametrize("name", list(ACCEPTED))
def test_accepted_inputs_give_the_features_of_the_numpy_array(name, tiny_gem, reference):
    make, expected = ACCEPTED[name]
    image = make()
    if expected == "palette":  # a palette image means its colours, not its indices
        expected_features = features(np.asarray(image.convert("RGB")), tiny_gem)
    else:
        expected_features = reference[expected]
    torch.testing.assert_close(features(image, tiny_gem), expected_features, rtol=0, atol=0)


def test_a_memmap_is_read_as_it_is(tiny_gem, reference, tmp_path):
    mapped = np.memmap(tmp_path / "image.raw", dtype=np.uint8, mode="w+", shape=GRAY.shape)
    mapped[:] = GRAY
    assert as_image_array(mapped) is mapped  # not copied into memory
    torch.testing.assert_close(features(mapped, tiny_gem), reference["gray"], rtol=0, atol=0)


def test_bool_and_signed_images_are_intensities(tiny_gem):
    mask = GRAY > 128
    torch.testing.assert_close(features(torch.from_numpy(mask), tiny_gem),
                               features(mask, tiny_gem), rtol=0, atol=0)
    signed = GRAY.astype(np.int16) - 128
    assert torch.isfinite(features(signed, tiny_gem)).all()


def test_masked_pixels_are_treated_as_missing(tiny_gem):
    """Masked pixels count as NaN: left out of the contrast limits and shown black."""
    values = GRAY.astype(np.float32)
    hidden = np.zeros_like(GRAY, dtype=bool)
    hidden[:10] = True
    masked = np.ma.masked_array(np.where(hidden, 1e6, values), mask=hidden)  # hides outliers
    with_nan = np.where(hidden, np.nan, values)
    torch.testing.assert_close(features(masked, tiny_gem), features(with_nan, tiny_gem),
                               rtol=0, atol=0)


BIG = RNG.integers(0, 256, (192, 160, 3), dtype=np.uint8)


@pytest.mark.parametrize("wrap", ["dask", "xarray over dask"])
def test_lazy_arrays_are_read_window_by_window_when_tiled(wrap, tiny_gem):
    log = ReadLog(BIG)
    lazy = {
        "dask": lambda: da.from_array(log, chunks=(32, 32, 3)),
        "xarray over dask": lambda: xr.DataArray(da.from_array(log, chunks=(32, 32, 3)),
                                                 dims=("y", "x", "c")),
    }[wrap]()
    encoded = encode(lazy, tiny_gem, TILED)
    assert encoded.num_windows > 1
    assert log.reads and max(np.prod(shape) for shape in log.reads) < BIG.size  # never whole
    torch.testing.assert_close(encoded.features, encode(BIG, tiny_gem, TILED).features,
                               rtol=0, atol=0)


def test_other_sliceable_arrays_are_passed_through_untouched():
    """h5py datasets and the like: anything with shape, dtype and slicing stays lazy."""
    log = ReadLog(BIG)
    assert as_image_array(log) is log and log.reads == []


def test_a_zarr_array_stays_a_zarr_array_when_tiled(tiny_gem):
    stored = _zarr(BIG[..., 0])
    assert as_image_array(stored) is stored
    torch.testing.assert_close(encode(stored, tiny_gem, TILED).features,
                               encode(BIG[..., 0], tiny_gem, TILED).features, rtol=0, atol=0)


# -- refused: one line, naming the dtype -----------------------------------------------------------
REFUSED = {
    "complex numpy": (lambda: GRAY.astype(np.complex64), "complex64"),
    "complex torch": (lambda: torch.zeros(8, 8, dtype=torch.complex64), "complex"),
    "complex dask (not computed)": (lambda: da.zeros((8, 8), dtype=complex), "complex128"),
    "strings": (lambda: [["a", "b"], ["c", "d"]], "<U1"),
    "bytes array": (lambda: np.array([[b"a"]]), "|S1"),
    "objects": (lambda: np.array([[1, "a"]], dtype=object), "object"),
    "datetime64": (lambda: np.zeros((4, 4), dtype="datetime64[s]"), "datetime64[s]"),
    "timedelta64": (lambda: np.zeros((4, 4), dtype="timedelta64[ms]"), "timedelta64[ms]"),
    "structured": (lambda: np.zeros((4, 4), dtype=[("r", np.uint8), ("g", np.uint8)]), "('r'"),
    "None": (lambda: None, "None"),
    "a file path (str)": (lambda: "cells.tif", "cells.tif"),
    "a file path (Path)": (lambda: Path("cells.tif"), "cells.tif"),
    "bytes": (lambda: b"\x00\x01", "bytes"),
    "ragged nested list": (lambda: [[1, 2], [3]], "list"),
    "xarray Dataset": (lambda: xr.Dataset({"a": (("y", "x"), GRAY)}), "Dataset"),
    "meta tensor": (lambda: torch.empty(8, 8, device="meta"), "meta"),
}


@pytest.mark.parametrize("name", list(REFUSED))
def test_refused_inputs_get_one_line_type_errors(name, tiny_gem):
    make, named = REFUSED[name]
    with pytest.raises(TypeError) as caught:
        segment(make(), ["cell"], model=tiny_gem, options=OPTIONS)
    message = str(caught.value)
    assert named in message and "\n" not in message


@pytest.mark.parametrize("image", [np.zeros(5), np.zeros((2, 3, 4, 5)), 3, np.zeros((4, 4, 2))])
def test_wrong_shapes_stay_value_errors_that_show_the_shape(image, tiny_gem):
    with pytest.raises(ValueError, match="expected a 2D image"):
        encode(image, tiny_gem, OPTIONS)


# -- prompts ---------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("prompts", "named"),
    [
        (None, "got NoneType None"),
        (3, "got int 3"),
        (b"cell", "got bytes b'cell'"),
        ({"cell": 1}, "got dict"),
        (["cell", None], "prompt 1 is NoneType None"),
        (["cell", 3], "prompt 1 is int 3"),
        ([b"cell"], "prompt 0 is bytes b'cell'"),
        ([["cell", "dog"]], "prompt 0 is list ['cell', 'dog']"),
    ],
)
def test_prompts_that_are_not_strings_are_type_errors_naming_the_prompt(prompts, named, tiny_gem):
    with pytest.raises(TypeError) as caught:
        segment(GRAY, prompts, model=tiny_gem, options=OPTIONS)
    assert named in str(caught.value) and "\n" not in str(caught.value)


def test_string_prompts_in_any_sequence_are_accepted():
    assert clean_prompts(" cell ") == ["cell"]
    assert clean_prompts(("cell", "dog")) == ["cell", "dog"]
    assert clean_prompts(np.array(["cell", "dog"])) == ["cell", "dog"]  # numpy str_ is a str
    assert clean_prompts(p for p in ["cell"]) == ["cell"]
    with pytest.raises(ValueError, match="empty"):
        clean_prompts(["cell", "  "])
