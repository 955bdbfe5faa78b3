"""Opening input images: TIFF (also OME and ImageJ stacks), PNG, JPEG, zarr and OME-Zarr.

Every reader returns a :class:`LoadedImage`: an array that gives numpy arrays when
sliced (numpy itself, or a lazy zarr array for large TIFFs and zarr stores), a guess
of its axes and, where the file says so, the physical scale and translation per axis.

Axes are one letter each: ``Y`` and ``X`` (the image plane), ``S`` (RGB or RGBA
samples of one pixel) and plane axes that are processed one plane at a time (``T``,
``C``, ``Z``, or ``Q`` when unknown).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..engine.arrays import check_intensity_dtype
from ..engine.extras import available, require

TIFF_SUFFIXES = (".tif", ".tiff")
PNG_SUFFIXES = (".png",)
JPEG_SUFFIXES = (".jpg", ".jpeg")
ZARR_SUFFIXES = (".zarr",)
SUPPORTED_SUFFIXES = TIFF_SUFFIXES + PNG_SUFFIXES + JPEG_SUFFIXES + ZARR_SUFFIXES
#: Files that name a zarr store (v2 or v3) when found in a folder.
ZARR_MARKERS = (".zarray", ".zgroup", ".zattrs", "zarr.json")
#: TIFF series larger than this are read lazily, window by window, instead of whole.
LAZY_TIFF_BYTES = 512 * 2**20
COLOR_SAMPLES = (3, 4)


class UnsupportedImageError(ValueError):
    """The file is not an image napari-gem can read; the message says why."""


@dataclass
class LoadedImage:
    """An opened image: data plus what is known about its axes and geometry."""

    path: Path
    array: Any  # numpy.ndarray or zarr.Array: slicing gives numpy arrays
    axes: str
    format: str  # "tiff", "png", "jpeg", "zarr" or "ome-zarr"
    scale: tuple[float, ...] | None = None  # physical size of a pixel along each axis
    translate: tuple[float, ...] | None = None

    def __post_init__(self) -> None:
        if len(self.axes) != len(self.shape):
            raise ValueError(f"axes {self.axes!r} do not match shape {self.shape}")

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(int(n) for n in self.array.shape)

    @property
    def dtype(self) -> np.dtype:
        return np.dtype(self.array.dtype)

    @property
    def lazy(self) -> bool:
        return not isinstance(self.array, np.ndarray)

    def to_dask(self):
        """The data as a dask array (lazy for zarr-backed images)."""
        da = require("dask.array", extra="cluster", purpose="reading an image as dask tasks")
        if isinstance(self.array, np.ndarray):
            return da.from_array(self.array)
        return da.from_zarr(self.array)


def open_image(path: str | os.PathLike, *, lazy: bool | None = None) -> LoadedImage:
    """Open an image file or zarr store; ``lazy=None`` reads large TIFFs lazily.

    Raises :class:`UnsupportedImageError` for files napari-gem cannot read.
    """
    loaded = _open_any(Path(path), lazy)
    try:  # a complex or record-typed TIFF would otherwise be cast silently, window by window
        check_intensity_dtype(loaded.dtype)
    except TypeError as error:
        raise UnsupportedImageError(f"{loaded.path.name}: {error}") from None
    return loaded


def _open_any(path: Path, lazy: bool | None) -> LoadedImage:
    if is_zarr_store(path):
        return _open_zarr(path)
    if not path.is_file():
        raise UnsupportedImageError(f"{path} does not exist or is not a file")
    suffix = path.suffix.lower()
    if suffix in TIFF_SUFFIXES:
        return _open_tiff(path, lazy)
    if suffix in PNG_SUFFIXES + JPEG_SUFFIXES:
        return _open_picture(path)
    raise UnsupportedImageError(f"unsupported file type {path.suffix or '(no suffix)'!r}")


def is_zarr_store(path: Path) -> bool:
    """A folder that is a zarr array or group (by its marker files or its ``.zarr`` name)."""
    if not path.is_dir():
        return False
    return path.suffix.lower() in ZARR_SUFFIXES or any(
        (path / marker).is_file() for marker in ZARR_MARKERS
    )


def image_stem(path: Path) -> str:
    """The name outputs are called after: ``cells.ome.tif`` -> ``cells``."""
    name = path.name.rstrip("/")
    lowered = name.lower()
    for suffix in SUPPORTED_SUFFIXES:
        if lowered.endswith(suffix):
            name = name[: -len(suffix)]
            break
    if name.lower().endswith(".ome"):
        name = name[:-4]
    return name or path.name


def guess_axes(shape: tuple[int, ...]) -> str:
    """Axes of an array nothing is known about: ``YX``, ``YXS`` for RGB(A), planes before."""
    ndim = len(shape)
    if ndim < 2:
        raise UnsupportedImageError(f"an image needs at least two axes, got shape {shape}")
    color = ndim >= 3 and shape[-1] in COLOR_SAMPLES
    leading = ndim - 2 - int(color)
    names = "TCZ"[3 - leading :] if leading <= 3 else "Q" * (leading - 3) + "TCZ"
    return names + "YX" + ("S" if color else "")


# -- TIFF ----------------------------------------------------------------------------------
def _open_tiff(path: Path, lazy: bool | None) -> LoadedImage:
    import tifffile

    try:
        with tifffile.TiffFile(path) as tiff:
            if not tiff.series:
                raise UnsupportedImageError("not a readable TIFF file: it holds no image")
            series = tiff.series[0]
            axes = _tiff_axes(series.axes, series.shape)
            scale = _tiff_scale(tiff, axes)
            translate = _tiff_translate(tiff, axes)
            nbytes = int(np.prod(series.shape)) * np.dtype(series.dtype).itemsize
            if lazy is None:  # without zarr a large TIFF is read whole, as a small one is
                lazy = nbytes > LAZY_TIFF_BYTES and available("zarr")
            array = None if lazy else series.asarray()
    except (tifffile.TiffFileError, ValueError, IndexError, KeyError) as error:
        if isinstance(error, UnsupportedImageError):
            raise
        raise UnsupportedImageError(f"not a readable TIFF file: {error}") from error
    if lazy:
        zarr = require("zarr", extra="cluster", purpose="reading a TIFF window by window")
        array = zarr.open(tifffile.imread(path, aszarr=True, series=0, level=0), mode="r")
    return LoadedImage(path, array, axes, "tiff", scale, translate)


def _tiff_axes(axes: str, shape: tuple[int, ...]) -> str:
    """tifffile's axes letters, with S kept only for 3 or 4 colour samples."""
    letters = []
    for letter, size in zip(axes.upper(), shape, strict=True):
        if letter == "S" and size not in COLOR_SAMPLES:
            letter = "C"
        letters.append(letter if letter in "TCZYXS" else "Q")
    return "".join(letters)


def _tiff_scale(tiff, axes: str) -> tuple[float, ...] | None:
    """Pixel sizes from napari-gem's own metadata, OME-XML or ImageJ, else None."""
    if tiff.shaped_metadata and "scale" in tiff.shaped_metadata[0]:
        scale = tiff.shaped_metadata[0]["scale"]
        return tuple(float(v) for v in scale) if len(scale) == len(axes) else None
    sizes: dict[str, float] = {}
    if tiff.is_ome:
        sizes = _ome_physical_sizes(tiff.ome_metadata)
    elif tiff.is_imagej and (tiff.imagej_metadata or {}).get("unit"):
        sizes = _imagej_sizes(tiff)
    if not sizes:
        return None
    return tuple(sizes.get(letter, 1.0) for letter in axes)


def _tiff_translate(tiff, axes: str) -> tuple[float, ...] | None:
    metadata = tiff.shaped_metadata[0] if tiff.shaped_metadata else {}
    translate = metadata.get("translate")
    if translate is None or len(translate) != len(axes):
        return None
    return tuple(float(v) for v in translate)


def _ome_physical_sizes(xml: str) -> dict[str, float]:
    import tifffile

    image = tifffile.xml2dict(xml).get("OME", {}).get("Image", {})
    if isinstance(image, list):
        image = image[0]
    pixels = image.get("Pixels", {})
    return {
        letter: float(pixels[key])
        for letter, key in (("X", "PhysicalSizeX"), ("Y", "PhysicalSizeY"), ("Z", "PhysicalSizeZ"))
        if key in pixels
    }


def _imagej_sizes(tiff) -> dict[str, float]:
    tags = tiff.pages[0].tags
    sizes = {}
    for letter, tag in (("X", "XResolution"), ("Y", "YResolution")):
        if tag in tags:
            numerator, denominator = tags[tag].value
            if numerator:
                sizes[letter] = denominator / numerator  # the tag is pixels per unit
    spacing = tiff.imagej_metadata.get("spacing")
    if spacing:
        sizes["Z"] = float(spacing)
    return sizes


# -- PNG and JPEG ----------------------------------------------------------------------------
def _open_picture(path: Path) -> LoadedImage:
    from PIL import Image, ImageOps, UnidentifiedImageError

    try:
        with Image.open(path) as picture:
            stored = getattr(picture, "text", {}).get("napari-gem")  # before copies drop it
            picture = ImageOps.exif_transpose(picture)  # phone photos are stored rotated
            if picture.mode in ("P", "PA", "LA", "CMYK", "YCbCr", "LAB", "HSV"):
                picture = picture.convert("RGBA" if "A" in picture.mode else "RGB")
            array = np.asarray(picture)
    except (UnidentifiedImageError, OSError) as error:
        raise UnsupportedImageError(f"not a readable image: {error}") from error
    scale = translate = None
    if stored:  # a mask written by napari-gem carries its geometry
        metadata = json.loads(stored)
        scale, translate = tuple(metadata["scale"]), tuple(metadata["translate"])
    image_format = "png" if path.suffix.lower() in PNG_SUFFIXES else "jpeg"
    return LoadedImage(path, array, guess_axes(array.shape), image_format, scale, translate)


# -- zarr and OME-Zarr -------------------------------------------------------------------------
def _open_zarr(path: Path) -> LoadedImage:
    zarr = require("zarr", extra="cluster", purpose="reading zarr stores")

    try:
        node = zarr.open(str(path), mode="r")
    except Exception as error:  # zarr raises many kinds of errors for broken stores
        raise UnsupportedImageError(f"not a readable zarr store: {error}") from error
    if hasattr(node, "shape"):
        return LoadedImage(path, node, guess_axes(node.shape), "zarr")
    multiscales = _multiscales(dict(node.attrs))
    if multiscales is None:
        return _single_array_group(path, node)
    return _open_ome_zarr(path, node, multiscales)


#: The rendering colours of an RGB image's three channels in OME-Zarr's ``omero`` metadata.
RGB_COLOURS = ("FF0000", "00FF00", "0000FF")


def _rgb_as_samples(axes: str, array, attrs: dict) -> str:
    """An 8-bit channel axis of three channels rendered red, green and blue (how bioformats2raw
    and QuPath write brightfield and H&E slides) is one RGB picture (``S``), not three planes."""
    omero = attrs.get("omero") or attrs.get("ome", {}).get("omero") or {}
    colours = tuple(str(channel.get("color", "")).upper().removeprefix("#")[:6]
                    for channel in omero.get("channels") or ())
    if "C" not in axes or colours != RGB_COLOURS or np.dtype(array.dtype) != np.uint8:
        return axes
    channel = axes.index("C")
    return axes if array.shape[channel] != 3 else axes[:channel] + "S" + axes[channel + 1 :]


def _multiscales(attrs: dict) -> dict | None:
    """The first multiscales entry of OME-Zarr 0.4 (``multiscales``) or 0.5 (``ome``)."""
    entries = attrs.get("multiscales") or attrs.get("ome", {}).get("multiscales")
    return entries[0] if entries else None


def _single_array_group(path: Path, group) -> LoadedImage:
    arrays = sorted(name for name, _ in group.arrays())
    if len(arrays) != 1:
        raise UnsupportedImageError(
            f"zarr group without OME multiscales metadata holds {len(arrays)} arrays "
            f"({', '.join(arrays) or 'none'}); give the path of one array instead"
        )
    array = group[arrays[0]]
    return LoadedImage(path, array, guess_axes(array.shape), "zarr")


def _open_ome_zarr(path: Path, group, multiscales: dict) -> LoadedImage:
    level0 = multiscales["datasets"][0]
    array = group[level0["path"]]
    axes = _rgb_as_samples(_ome_axes(multiscales.get("axes"), array.shape), array, dict(group.attrs))
    scale, translate = _ome_transforms(level0.get("coordinateTransformations", []), array.ndim)
    outer_scale, outer_translate = _ome_transforms(
        multiscales.get("coordinateTransformations", []), array.ndim
    )
    # The multiscale-wide transform applies after the level's own one.
    scale, translate = (
        tuple(s * o for s, o in zip(scale, outer_scale, strict=True)),
        tuple(t * o + u for t, o, u in zip(translate, outer_scale, outer_translate, strict=True)),
    )
    return LoadedImage(path, array, axes, "ome-zarr", scale, translate)


def _ome_axes(axes, shape: tuple[int, ...]) -> str:
    if not axes:
        return guess_axes(shape)
    names = [(axis["name"] if isinstance(axis, dict) else str(axis)).upper() for axis in axes]
    letters = "".join(name if name in ("T", "C", "Z", "Y", "X") else "Q" for name in names)
    if len(letters) != len(shape):
        return guess_axes(shape)
    return letters


def _ome_transforms(transforms: list, ndim: int) -> tuple[tuple[float, ...], tuple[float, ...]]:
    scale, translate = (1.0,) * ndim, (0.0,) * ndim
    for transform in transforms:
        kind = transform.get("type")
        values = transform.get(kind, []) if kind in ("scale", "translation") else []
        if len(values) != ndim:
            continue  # a transform stored in a file (path) or malformed: not applied
        if kind == "scale":
            scale = tuple(float(v) for v in values)
        else:
            translate = tuple(float(v) for v in values)
    return scale, translate
