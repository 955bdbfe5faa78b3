"""Out-of-core outputs as OME-Zarr (NGFF): multiscale heatmaps, labels pyramids in ``labels/``.

Each zarr output is an NGFF multiscale group: level ``0`` at full resolution, then levels
halved along Y and X (masks by nearest neighbour, so labels stay labels; heatmaps by the
mean of 2 x 2 pixels) until a level fits in one chunk. Axes and scales are the source's
(each level's scale doubles along Y and X). Masks carry ``image-label`` metadata. When the
source is an OME-Zarr the batch may write to, a mask goes into the source's own ``labels/``
group (as the NGFF layout has it: ``image.zarr/labels/NAME``, listed in ``labels/.zattrs``),
where OME-Zarr viewers find it over the image; otherwise it is written beside the others.

Level 0 is written first by the out-of-core tasks; :func:`downsample_block` tasks then
make the other levels chunk by chunk, and :func:`write_metadata` the NGFF attributes last.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ..engine.extras import require

#: The NGFF version written beside the image (zarr v2; read by every OME-Zarr viewer).
BESIDE_VERSION = "0.4"
AXIS_TYPES = {"T": "time", "C": "channel", "Z": "space", "Y": "space", "X": "space"}
LABELS = "labels"


# -- layout -------------------------------------------------------------------------------------
def level_shapes(shape: Sequence[int], chunk: int) -> list[tuple[int, ...]]:
    """Shapes of the pyramid's levels: Y and X halved (rounded up) until one chunk holds them."""
    shapes = [tuple(int(n) for n in shape)]
    while max(shapes[-1][-2:]) > chunk:
        *planes, height, width = shapes[-1]
        shapes.append((*planes, -(-height // 2), -(-width // 2)))
    return shapes


def ngff_version_of(source: Path) -> str | None:
    """The NGFF version of an OME-Zarr image (0.4 or 0.5); None for anything else."""
    zarr = require("zarr", extra="cluster", purpose="writing OME-Zarr outputs")
    try:
        attrs = dict(zarr.open_group(str(source), mode="r").attrs)
    except Exception:  # not a group, not zarr: not an OME-Zarr image
        return None
    if "ome" in attrs and attrs["ome"].get("multiscales"):
        return str(attrs["ome"].get("version", "0.5"))
    if attrs.get("multiscales"):
        return str(attrs["multiscales"][0].get("version", "0.4"))
    return None


def labels_home(source: Path) -> Path | None:
    """The source's ``labels/`` group when the source is an OME-Zarr image we may write to."""
    if ngff_version_of(source) is None or not os.access(source, os.W_OK):
        return None
    return source / LABELS


def create_multiscale(path: Path, shape: Sequence[int], dtype: str, chunks: Sequence[int],
                      chunk: int, version: str = BESIDE_VERSION) -> str:
    """An empty multiscale group (every level, zero-filled); returns level 0's path."""
    zarr = require("zarr", extra="cluster", purpose="writing OME-Zarr outputs")
    zarr_format = 2 if version == "0.4" else 3
    group = zarr.open_group(str(path), mode="w", zarr_format=zarr_format)
    encoding = ({"name": "v2", "separator": "/"} if zarr_format == 2
                else {"name": "default", "separator": "/"})
    for level, level_shape in enumerate(level_shapes(shape, chunk)):
        group.create_array(str(level), shape=level_shape, dtype=dtype, fill_value=0,
                           chunks=tuple(min(c, n) for c, n in zip(chunks, level_shape, strict=True)),
                           chunk_key_encoding=encoding)
    return str(path / "0")


# -- the pyramid --------------------------------------------------------------------------------
def downsample_block(path: str, level: int, index: tuple[int, ...], box: tuple[int, int, int, int],
                     kind: str) -> None:
    """Level ``level``'s pixels in ``box`` of plane ``index``, from level ``level - 1``."""
    zarr = require("zarr", extra="cluster", purpose="writing OME-Zarr outputs")
    group = zarr.open_group(path, mode="r+")
    y0, y1, x0, x1 = box
    finer = np.asarray(group[str(level - 1)][(*index, slice(2 * y0, 2 * y1), slice(2 * x0, 2 * x1))])
    if kind == "mask":
        coarse = finer[::2, ::2]  # nearest: a label stays a label
    else:
        padded = np.pad(finer, ((0, 2 * (y1 - y0) - finer.shape[0]), (0, 2 * (x1 - x0) - finer.shape[1])),
                        mode="edge").astype(np.float32)
        coarse = padded.reshape(y1 - y0, 2, x1 - x0, 2).mean(axis=(1, 3))
    group[str(level)][(*index, slice(y0, y1), slice(x0, x1))] = coarse


# -- metadata -------------------------------------------------------------------------------------
def multiscales(name: str, axes: str, shape: Sequence[int], chunk: int, scale: Sequence[float],
                translate: Sequence[float], version: str, kind: str) -> dict:
    """The NGFF ``multiscales`` entry of an output: axes, and each level's scale."""
    datasets = []
    for level, _ in enumerate(level_shapes(shape, chunk)):
        factor = [1.0] * (len(shape) - 2) + [2.0**level] * 2
        datasets.append({"path": str(level), "coordinateTransformations": [
            {"type": "scale", "scale": [float(s) * f for s, f in zip(scale, factor, strict=True)]},
            {"type": "translation", "translation": [float(t) for t in translate]}]})
    entry = {"name": name, "axes": ngff_axes(axes), "datasets": datasets,
             "type": "nearest" if kind == "mask" else "mean"}
    if version == "0.4":
        entry["version"] = version
    return entry


def ngff_axes(axes: str) -> list[dict]:
    """NGFF axes of output axes letters (``Q``, an unknown axis, gets no type)."""
    found = []
    for number, letter in enumerate(axes):
        if letter in AXIS_TYPES:
            found.append({"name": letter.lower(), "type": AXIS_TYPES[letter]})
        else:
            found.append({"name": f"q{number}"})
    return found


def write_metadata(path: Path, entry: dict, version: str, layer: dict, *, label_source: str | None = None,
                   kind: str = "heatmap") -> None:
    """The NGFF attributes of a finished output (``image-label`` for masks) and napari-gem's
    layer metadata (name, prompt, scale, translate) beside them."""
    zarr = require("zarr", extra="cluster", purpose="writing OME-Zarr outputs")
    ome: dict = {"multiscales": [entry]}
    if kind == "mask":
        ome["image-label"] = {"version": version, "source": {"image": label_source}} if label_source \
            else {"version": version}
        if version != "0.4":
            ome["image-label"].pop("version")
    attrs = {"ome": {"version": version, **ome}} if version != "0.4" else ome
    group = zarr.open_group(str(path), mode="r+")
    group.attrs.update({**attrs, "napari_gem": layer})


def list_label(labels_group: Path, name: str, version: str) -> None:
    """Add ``name`` to the ``labels`` list of an OME-Zarr image's ``labels/`` group."""
    zarr = require("zarr", extra="cluster", purpose="writing OME-Zarr outputs")
    group = zarr.open_group(str(labels_group), mode="a", zarr_format=2 if version == "0.4" else 3)
    attrs = dict(group.attrs)
    holder = attrs.get("ome", {}) if version != "0.4" else attrs
    names = [n for n in holder.get("labels", []) if n != name] + [name]
    if version == "0.4":
        group.attrs["labels"] = names
    else:
        group.attrs["ome"] = {**attrs.get("ome", {}), "version": version, "labels": names}


# -- reading --------------------------------------------------------------------------------------
def is_multiscale_output(path: Path) -> bool:
    """A napari-gem multiscale output (a group with NGFF multiscales and our layer metadata)."""
    zarr = require("zarr", extra="cluster", purpose="reading OME-Zarr outputs")
    try:
        attrs = dict(zarr.open_group(str(path), mode="r").attrs)
    except Exception:
        return False
    return "napari_gem" in attrs and ("multiscales" in attrs or "multiscales" in attrs.get("ome", {}))


def read_levels(path: str | os.PathLike) -> tuple[list, dict]:
    """Every level of a multiscale output as lazy dask arrays (full resolution first), and
    the layer metadata stored with it."""
    zarr = require("zarr", extra="cluster", purpose="reading OME-Zarr outputs")
    da = require("dask.array", extra="cluster", purpose="reading OME-Zarr outputs")
    group = zarr.open_group(str(path), mode="r")
    attrs = dict(group.attrs)
    entry = (attrs.get("multiscales") or attrs["ome"]["multiscales"])[0]
    levels = [da.from_zarr(group[dataset["path"]]) for dataset in entry["datasets"]]
    return levels, dict(attrs["napari_gem"])


__all__ = ["create_multiscale", "downsample_block", "is_multiscale_output", "labels_home", "level_shapes",
           "list_label", "multiscales", "ngff_version_of", "read_levels", "write_metadata"]
