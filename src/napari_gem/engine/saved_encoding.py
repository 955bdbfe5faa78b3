"""A saved encoding: an image's dense features in a zarr store, asked any prompt later.

The store (``SLIDE.features.zarr``, a zarr group) holds

- ``features``: the dense feature grid ``[GH, GW, E]`` as float16 *unit* vectors, and
  ``norms`` ``[GH, GW]`` (float32): the recorded scale of each cell, so
  ``features * norms`` gives the features back. Unit vectors lie in [-1, 1], where float16
  has 11 bits of mantissa (bfloat16 has 8 and a range nobody needs here); ``float32``
  can be asked for when the last digit matters;
- ``clip_embedding`` ``[E]``: the image-level CLIP embedding (calibrated presence);
- the attributes ``napari_gem_encoding``: the model's description and identity, the
  options it was encoded with, the geometry (image, padded cover, grid, cell side) and
  the image's fingerprint and geometry. ``complete`` is set last: a store without it was
  interrupted and is refused;
- ``blocks_done`` ``[BH, BW]`` (uint8): 1 for each feature chunk written, so an interrupted
  encode of the same request resumes with the chunks still missing.

Chunks are blocks of :data:`FEATURE_BLOCK_CELLS` cells, so readers take one block at a
time (:meth:`EncodingStore.features`), never the whole grid.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .extras import require

FORMAT_VERSION = 1
ATTRIBUTE = "napari_gem_encoding"
FEATURE_DTYPES = ("float16", "float32")
#: Grid cells per side of a feature chunk (4 MB at E = 512 in float16).
FEATURE_BLOCK_CELLS = 64
#: What a model's results depend on (device and precision do not count).
IDENTITY_KEYS = ("model", "pretrained", "method", "method_options")
#: Side and number per axis of the patches the fingerprint reads (9 small reads, any size).
FINGERPRINT_SIDE, FINGERPRINT_STEPS = 32, 3

Cells = tuple[int, int, int, int]


class EncodingMismatchError(ValueError):
    """A saved encoding asked with another model, image or encode option; says which."""


def model_identity(description: Mapping[str, Any]) -> dict:
    """The parts of a model's ``describe()`` that change its features."""
    return {key: description.get(key) for key in IDENTITY_KEYS}


def image_fingerprint(image) -> str:
    """A short fingerprint of a 2D image (numpy or lazy): its shape, dtype and 3 x 3 small
    patches spread over it, so a lazy slide is read at nine places only."""
    shape = tuple(int(n) for n in image.shape)
    digest = hashlib.sha1(repr((shape, str(np.dtype(image.dtype)))).encode())
    height, width = shape[:2]
    for row in np.linspace(0, max(0, height - FINGERPRINT_SIDE), FINGERPRINT_STEPS).astype(int):
        for col in np.linspace(0, max(0, width - FINGERPRINT_SIDE), FINGERPRINT_STEPS).astype(int):
            patch = np.ascontiguousarray(image[row : row + FINGERPRINT_SIDE, col : col + FINGERPRINT_SIDE])
            digest.update(patch.tobytes())
    return digest.hexdigest()[:16]


@dataclass(frozen=True)
class Geometry:
    """Where the grid lies on the image: ``tiled`` grids have square cells of ``cell`` pixels
    starting at the origin (the sliding windows'); a whole-image grid spans ``covered``."""

    image_shape: tuple[int, int]
    covered_shape: tuple[int, int]
    grid_shape: tuple[int, int]
    cell: int
    tiled: bool
    num_windows: int

    def to_dict(self) -> dict:
        return {"image_shape": list(self.image_shape), "covered_shape": list(self.covered_shape),
                "grid_shape": list(self.grid_shape), "cell": self.cell, "tiled": self.tiled,
                "num_windows": self.num_windows}

    @classmethod
    def from_dict(cls, values: dict) -> Geometry:
        return cls(tuple(values["image_shape"]), tuple(values["covered_shape"]),
                   tuple(values["grid_shape"]), int(values["cell"]), bool(values["tiled"]),
                   int(values["num_windows"]))


@dataclass(frozen=True)
class EncodingStore:
    """An open saved encoding (picklable: dask tasks reopen it by its path)."""

    path: str

    # -- making one ---------------------------------------------------------------------------
    @classmethod
    def create(cls, path: str | os.PathLike, *, geometry: Geometry, embed_dim: int,
               record: dict, feature_dtype: str = "float16",
               block_cells: int = FEATURE_BLOCK_CELLS, resume: bool = False) -> EncodingStore:
        """An empty store for a grid of ``geometry`` in chunks of ``block_cells`` cells a side;
        ``record``: model, options, image.

        ``resume``: a store already at ``path`` for this very request (:meth:`holds`) is kept,
        with the blocks it finished (and complete, if it is), instead of being replaced."""
        zarr = require("zarr", extra="cluster", purpose="saving an encoding")
        if feature_dtype not in FEATURE_DTYPES:
            raise ValueError(f"feature_dtype must be one of {', '.join(FEATURE_DTYPES)}, "
                             f"got {feature_dtype!r}")
        if resume and cls(str(path)).holds(record, feature_dtype, geometry) is not None:
            return cls(str(path))
        group = zarr.open_group(str(path), mode="w")
        block = min(block_cells, max(geometry.grid_shape))
        group.create_array("features", shape=(*geometry.grid_shape, embed_dim), dtype=feature_dtype,
                           chunks=(block, block, embed_dim), fill_value=0)
        group.create_array("norms", shape=geometry.grid_shape, dtype="float32", chunks=(block, block),
                           fill_value=0)
        blocks = tuple(-(-side // block) for side in geometry.grid_shape)
        group.create_array("blocks_done", shape=blocks, dtype="uint8", chunks=(1, 1), fill_value=0)
        group.create_array("clip_embedding", shape=(embed_dim,), dtype="float32", chunks=(embed_dim,))
        group.attrs[ATTRIBUTE] = {"version": FORMAT_VERSION, "complete": False,
                                  "feature_dtype": feature_dtype, "embed_dim": embed_dim,
                                  "block_cells": block,
                                  "geometry": geometry.to_dict(), **record}
        return cls(str(path))

    def write_features(self, cells: Cells, features: np.ndarray) -> None:
        """Write features ``[h, w, E]`` of the cells ``(row0, row1, col0, col1)``."""
        zarr = require("zarr", extra="cluster", purpose="saving an encoding")
        features = np.asarray(features, dtype=np.float32)
        norms = np.linalg.norm(features, axis=-1)
        unit = features / np.where(norms > 0, norms, 1.0)[..., None]
        row0, row1, col0, col1 = cells
        group = zarr.open_group(self.path, mode="r+")
        group["features"][row0:row1, col0:col1] = unit
        group["norms"][row0:row1, col0:col1] = norms
        if "blocks_done" in group:  # after the block itself: a marked block is whole
            side = self.block_cells
            group["blocks_done"][row0 // side, col0 // side] = 1

    def pending_blocks(self) -> list[Cells]:
        """The blocks (:meth:`blocks`) not written yet: all of a new store's, none of a
        complete one's."""
        zarr = require("zarr", extra="cluster", purpose="saving an encoding")
        group = zarr.open_group(self.path, mode="r")
        if self.record.get("complete"):
            return []
        if "blocks_done" not in group:
            return self.blocks()
        done, side = np.asarray(group["blocks_done"][:]), self.block_cells
        return [cells for cells in self.blocks() if not done[cells[0] // side, cells[2] // side]]

    def holds(self, record: dict, feature_dtype: str, geometry: Geometry | None = None) -> str | None:
        """``"complete"`` or ``"partial"`` when this store encodes the request ``record``
        describes (the model and its precision, the encode options, the image, the feature
        type), else None (no store here, or another request)."""
        try:
            stored = self.record
        except ValueError:
            return None
        same = (stored.get("version") == FORMAT_VERSION
                and stored.get("feature_dtype") == feature_dtype
                and _request(stored) == _request(record)
                and (geometry is None or stored.get("geometry") == geometry.to_dict()))
        if not same:
            return None
        return "complete" if stored.get("complete") else "partial"

    def finish(self, clip_embedding: np.ndarray, **more: Any) -> None:
        """Store the CLIP embedding and mark the store complete (the last write)."""
        zarr = require("zarr", extra="cluster", purpose="saving an encoding")
        group = zarr.open_group(self.path, mode="r+")
        group["clip_embedding"][:] = np.asarray(clip_embedding, dtype=np.float32)
        group.attrs[ATTRIBUTE] = {**group.attrs[ATTRIBUTE], **more, "complete": True}

    # -- reading it -----------------------------------------------------------------------------
    @classmethod
    def open(cls, path: str | os.PathLike) -> EncodingStore:
        """Open a complete saved encoding; a clear ValueError for anything else."""
        store = cls(str(path))
        record = store.record  # raises for what is not one
        if not record.get("complete"):
            raise ValueError(f"{path}: this encoding is incomplete (its run was interrupted): "
                             "encode the image again")
        if record.get("version") != FORMAT_VERSION:
            raise ValueError(f"{path}: encoding format {record.get('version')} is not this "
                             f"napari-gem's ({FORMAT_VERSION}): encode the image again")
        return store

    @property
    def record(self) -> dict:
        zarr = require("zarr", extra="cluster", purpose="reading a saved encoding")
        if not Path(self.path).is_dir():
            raise ValueError(f"{self.path}: no saved encoding there (not a folder)")
        try:
            attrs = dict(zarr.open_group(self.path, mode="r").attrs)
        except Exception as error:  # zarr raises many kinds for what is not a store
            raise ValueError(f"{self.path}: not a saved encoding ({error})") from error
        if ATTRIBUTE not in attrs:
            raise ValueError(f"{self.path}: a zarr store, but not a napari-gem saved encoding")
        return attrs[ATTRIBUTE]

    @property
    def block_cells(self) -> int:
        """Cells a side of a feature chunk: the block readers and writers take at once."""
        return int(self.record["block_cells"])

    def blocks(self) -> list[Cells]:
        """``(row0, row1, col0, col1)`` of every feature chunk, row by row."""
        (height, width), side = self.geometry.grid_shape, self.block_cells
        return [(row, min(row + side, height), col, min(col + side, width))
                for row in range(0, height, side) for col in range(0, width, side)]

    @property
    def geometry(self) -> Geometry:
        return Geometry.from_dict(self.record["geometry"])

    def features(self, cells: Cells | None = None) -> np.ndarray:
        """Features ``[h, w, E]`` (float32) of the cells ``(row0, row1, col0, col1)``
        (None: the whole grid, for whole-image encodings, which are small)."""
        zarr = require("zarr", extra="cluster", purpose="reading a saved encoding")
        group = zarr.open_group(self.path, mode="r")
        region = (slice(None), slice(None)) if cells is None else (
            slice(cells[0], cells[1]), slice(cells[2], cells[3]))
        unit = np.asarray(group["features"][region], dtype=np.float32)
        return unit * np.asarray(group["norms"][region])[..., None]

    def clip_embedding(self) -> np.ndarray:
        zarr = require("zarr", extra="cluster", purpose="reading a saved encoding")
        return np.asarray(zarr.open_group(self.path, mode="r")["clip_embedding"][:])

    # -- checks ---------------------------------------------------------------------------------
    def check_model(self, identity: Mapping[str, Any]) -> None:
        """Refuse a model other than the one that made the features; ``identity``: its
        :data:`IDENTITY_KEYS` (model name, weights, method and method options)."""
        stored, given = self.record["model_identity"], _plain(dict(identity))
        differ = [key for key in IDENTITY_KEYS if _plain(stored.get(key)) != _plain(given.get(key))]
        if differ:
            was = ", ".join(f"{key}={stored.get(key)!r}" for key in differ)
            now = ", ".join(f"{key}={given.get(key)!r}" for key in differ)
            raise EncodingMismatchError(
                f"{self.path} was encoded with {was}, not {now}: its features mean nothing to "
                "another model; ask it with the same model (or give none), or encode again")

    def check_image(self, image) -> None:
        """Refuse an image other than the encoded one (shape, dtype and content samples)."""
        stored = self.record["image"]
        known = stored.get("fingerprint")  # None: saved without the image, shape only
        if list(image.shape) != stored["shape"] or (known and image_fingerprint(image) != known):
            raise EncodingMismatchError(
                f"{self.path} encodes another image (shape {stored['shape']}, from "
                f"{stored.get('source') or 'memory'}), not this one (shape {list(image.shape)}): "
                "encode this image first")


def _request(record: dict) -> dict:
    """What decides a store's features: model identity and precision, encode options, image."""
    from .options import SegmentOptions

    image = record.get("image") or {}
    return _plain({
        "model": record.get("model_identity"),
        "precision": (record.get("model") or {}).get("precision"),
        "encode_options": list(SegmentOptions.from_dict(record.get("options") or {}).encoding_key()),
        "image": {key: image.get(key) for key in ("shape", "dtype", "fingerprint")},
    })


def _plain(value):
    """JSON's view of a value: tuples as lists, so stored and given compare alike."""
    if isinstance(value, Mapping):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, (tuple, list)):
        return [_plain(item) for item in value]
    return value


def save_encoded(encoded, path: str | os.PathLike, *, feature_dtype: str = "float16",
                 image=None, source: str | None = None,
                 block_cells: int = FEATURE_BLOCK_CELLS) -> Path:
    """Write an :class:`~napari_gem.engine.encoded.EncodedImage` to a zarr store at ``path``.

    ``image`` (the encoded image) gives the fingerprint later prompts are checked against.
    Region consistency's labels are not saved: such encodings are refused.
    """
    if encoded.regions is not None:
        raise ValueError("an encoding with region consistency (regions=...) cannot be saved: "
                         "its votes need the regions; encode with regions='none' to save it")
    grid = encoded.grid_shape
    geometry = Geometry(encoded.image_shape, encoded.covered_shape, grid,
                        int(encoded.model.patch_size), encoded.tiled, encoded.num_windows)
    record = encoding_record(encoded.model.describe(), encoded.options, image, source,
                             shape=encoded.image_shape)
    store = EncodingStore.create(path, geometry=geometry, embed_dim=int(encoded.features.shape[-1]),
                                 record=record, feature_dtype=feature_dtype, block_cells=block_cells)
    for cells in store.blocks():
        block = encoded.features[cells[0] : cells[1], cells[2] : cells[3]]
        store.write_features(cells, block.float().cpu().numpy())
    store.finish(encoded.clip_embedding.float().cpu().numpy())
    return Path(path)


def encoding_record(description: dict, options, image, source: str | None, *,
                    shape: tuple[int, ...], geometry_of_source: dict | None = None) -> dict:
    """The attributes that describe what was encoded: model, options, image."""
    image_record = {"shape": list(image.shape) if image is not None else list(shape),
                    "dtype": str(np.dtype(image.dtype)) if image is not None else None,
                    "fingerprint": image_fingerprint(image) if image is not None else None,
                    "source": source, **(geometry_of_source or {})}
    return {"model": description, "model_identity": _plain(model_identity(description)),
            "options": options.to_dict(), "option_sources": options.sources(),
            "image": image_record}


__all__ = ["EncodingMismatchError", "EncodingStore", "Geometry", "image_fingerprint",
           "save_encoded"]
