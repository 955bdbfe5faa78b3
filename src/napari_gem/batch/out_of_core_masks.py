"""Masks and objects of planes larger than memory, made as the engine makes them in memory.

The heatmaps are already written (:mod:`.out_of_core`). Per plane and prompt, the mask
is the engine's (:func:`napari_gem.engine.result.build_masks`) without ever holding the
plane: the threshold, then holes up to ``fill_holes`` pixels filled (background
components, edge-connected, not touching the plane's border) and objects below
``min_size`` dropped. Both need components that cross chunk borders:
:func:`.chunked_labels.label_plane` labels them with one label per object, numbered as
scipy numbers a whole plane. The objects are those components (``instances="components"``)
or, for ``"watershed"``, each component split by the engine's watershed run on its
bounding box grown by the reach of the watershed's landscape (its smoothing and seed
spacing), which gives the split of the whole plane. Labels are written into the mask
zarr; the objects table is reduced from per-chunk sums.
"""

from __future__ import annotations

import math
import os
import shutil
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ..engine import SegmentOptions
from ..engine.instances import MIN_DISTANCE_CELLS, SAMPLES_PER_CELL, SMOOTH_CELLS, split_touching
from .chunked_labels import Box, ChunkLabels, label_plane
from .compute import Compute


@dataclass(frozen=True)
class PlaneMask:
    """How one prompt's mask of one plane is read from its heatmap zarr, box by box."""

    heatmap_path: str
    index: tuple[int, ...]
    threshold: float
    holes: ChunkLabels | None = None  # background components to fill (None: no filling)
    fill: np.ndarray | None = None  # per hole label: filled or not
    small: ChunkLabels | None = None  # components to drop (None: no minimum size)
    keep: np.ndarray | None = None  # per component label: kept or not

    def heatmap(self, box: Box) -> np.ndarray:
        import zarr

        y0, y1, x0, x1 = box
        return np.asarray(zarr.open_array(self.heatmap_path, mode="r")[(*self.index, slice(y0, y1),
                                                                         slice(x0, x1))])

    def __call__(self, box: Box) -> np.ndarray:
        mask = self.heatmap(box) >= self.threshold
        if self.holes is not None:
            mask |= self.fill[self.holes.read(box)]
        if self.small is not None:
            mask &= self.keep[self.small.read(box)]
        return mask


def plane_objects(heatmap_path: str, mask_path: str, index: tuple[int, ...], threshold: float,
                  options: SegmentOptions, shape: tuple[int, int], chunk_boxes: Sequence[Box],
                  cell: float, first_label: int, work_dir: str, compute: Compute,
                  chunk: int) -> tuple[int, list[dict]]:
    """Write one prompt's object labels of one plane (numbered from ``first_label + 1``) into
    the mask zarr; returns the number of objects and their table rows (plane coordinates)."""
    from dask import delayed

    os.makedirs(work_dir, exist_ok=True)
    mask = PlaneMask(heatmap_path, index, float(threshold))
    try:
        if options.fill_holes > 0:
            holes = label_plane(lambda box, m=mask: ~m(box), shape, chunk_boxes,
                                os.path.join(work_dir, "holes.zarr"), compute, connectivity=1, chunk=chunk)
            fill = (holes.sizes <= options.fill_holes) & ~holes.on_border
            fill[0] = False
            mask = PlaneMask(heatmap_path, index, mask.threshold, holes, fill)
        components = label_plane(mask, shape, chunk_boxes, os.path.join(work_dir, "objects.zarr"),
                                 compute, chunk=chunk)
        if options.min_size > 1:
            keep = components.sizes >= options.min_size
            keep[0] = False
            mask = PlaneMask(heatmap_path, index, mask.threshold, mask.holes, mask.fill, components, keep)
            components = label_plane(mask, shape, chunk_boxes, os.path.join(work_dir, "kept.zarr"),
                                     compute, chunk=chunk)
        splits = {}
        if options.instances == "watershed" and components.count:
            found = compute([delayed(split_objects, pure=False)(mask, components, box, cell, shape)
                             for box in chunk_boxes], "watershed")
            splits = {label: pieces for part in found for label, pieces in part.items()}
        numbering = _numbering(components.count, splits, first_label)
        tables = compute([
            delayed(write_objects, pure=False)(mask, components, splits, numbering, box, mask_path)
            for box in chunk_boxes], "labels")
    finally:
        shutil.rmtree(work_dir, ignore_errors=True)
    return numbering.count, _rows(tables)


# -- the watershed, object by object -----------------------------------------------------------
def reach(cell: float) -> int:
    """How far (pixels) the watershed's landscape and seeds look beyond an object: the
    Gaussian smoothing's truncation (4 sigma) plus the seed spacing, on its sampling grid."""
    step = max(1, int(cell // SAMPLES_PER_CELL))
    sigma = SMOOTH_CELLS * cell / step
    radius = max(1, int(round(MIN_DISTANCE_CELLS * cell / step)))
    return (math.ceil(4 * sigma) + radius + 3) * step


def split_objects(mask: PlaneMask, components: ChunkLabels, box: Box, cell: float,
                  shape: tuple[int, int]) -> dict[int, tuple[Box, np.ndarray]]:
    """The watershed split of the components whose first row and column lie in ``box``:
    per split component its box and piece numbers (0: the piece that keeps its label)."""
    y0, y1, x0, x1 = box
    boxes = components.boxes
    owned = np.flatnonzero((boxes[:, 0] >= y0) & (boxes[:, 0] < y1) & (boxes[:, 2] >= x0)
                           & (boxes[:, 2] < x1))
    owned = owned[owned > 0]
    if not len(owned):
        return {}
    step = max(1, int(cell // SAMPLES_PER_CELL))
    margin = reach(cell)
    top = max(0, (int(boxes[owned, 0].min()) - margin) // step * step)
    left = max(0, (int(boxes[owned, 2].min()) - margin) // step * step)
    crop = (top, min(shape[0], int(boxes[owned, 1].max()) + margin),
            left, min(shape[1], int(boxes[owned, 3].max()) + margin))
    labels = components.read(crop)
    # Only the owned components are flooded: the others are split by the box that owns them.
    wanted = np.zeros(len(boxes), bool)
    wanted[owned] = True
    split = split_touching(labels > 0, mask.heatmap(crop), cell=cell, split=wanted[labels])
    found = {}
    for label in owned:
        b0, b1, b2, b3 = boxes[label]
        inside = (slice(b0 - crop[0], b1 - crop[0]), slice(b2 - crop[2], b3 - crop[2]))
        own = labels[inside] == label
        values = np.unique(split[inside][own])
        if len(values) < 2:
            continue
        # As split_touching numbers them: the first seed's piece keeps the component's number
        # (the smallest value), the other pieces follow in seed order (ascending values).
        pieces = np.full(own.shape, -1, np.int32)
        for number, value in enumerate(values):
            pieces[own & (split[inside] == value)] = number
        found[int(label)] = ((int(b0), int(b1), int(b2), int(b3)), pieces)
    return found


@dataclass(frozen=True)
class Numbering:
    """Plane labels of the objects: components keep theirs, split pieces are numbered on."""

    first_label: int
    count: int
    extra_start: dict[int, int]  # component -> the label of its second piece


def _numbering(components: int, splits: dict, first_label: int) -> Numbering:
    # As the engine: the split pieces follow all components, component by component.
    next_label = components + 1
    extra = {}
    for label in sorted(splits):
        extra[label] = next_label
        next_label += int(splits[label][1].max())
    return Numbering(first_label, next_label - 1, extra)


def write_objects(mask: PlaneMask, components: ChunkLabels, splits: dict, numbering: Numbering,
                  box: Box, mask_path: str) -> list[dict]:
    """Write the object labels of ``box`` into the mask zarr; per object the chunk's sums."""
    import zarr

    y0, y1, x0, x1 = box
    labels = components.read(box)
    for label, ((b0, b1, b2, b3), pieces) in splits.items():
        top, bottom, left, right = max(y0, b0), min(y1, b1), max(x0, b2), min(x1, b3)
        if top >= bottom or left >= right:
            continue
        part = pieces[top - b0:bottom - b0, left - b2:right - b2]
        here = labels[top - y0:bottom - y0, left - x0:right - x0]
        moved = part > 0
        here[moved] = numbering.extra_start[label] + part[moved] - 1
    labels = np.where(labels > 0, labels + numbering.first_label, 0)
    zarr.open_array(mask_path, mode="r+")[(*mask.index, slice(y0, y1), slice(x0, x1))] = labels
    return _chunk_sums(labels, mask.heatmap(box), y0, x0)


def _chunk_sums(labels: np.ndarray, heatmap: np.ndarray, y0: int, x0: int) -> list[dict]:
    # Only the object pixels, in raster order (so each sum adds the same values in the same
    # order as over the whole chunk), and per object reductions without sorting the chunk.
    flat = labels.ravel()
    where = np.flatnonzero(flat)
    if not len(where):
        return []
    ids, inverse = _compact(flat[where])
    rows, cols = np.divmod(where, labels.shape[1])
    rows += y0
    cols += x0
    values = heatmap.ravel()[where].astype(np.float64)
    count = len(ids)

    def total(weights):
        return np.bincount(inverse, weights=weights, minlength=count)

    def reduced(reduce, coords, start):
        found = np.full(count, start, np.int64)
        reduce.at(found, inverse, coords)
        return found

    area = np.bincount(inverse, minlength=count)
    sums = [total(rows), total(cols), total(values)]
    highest = np.full(count, -np.inf)
    np.maximum.at(highest, inverse, values)
    far = np.iinfo(np.int64).max
    top, left = reduced(np.minimum, rows, far), reduced(np.minimum, cols, far)
    bottom, right = reduced(np.maximum, rows + 1, -1), reduced(np.maximum, cols + 1, -1)
    return [{"label": int(label), "area": int(area[i]), "sum_y": sums[0][i], "sum_x": sums[1][i],
             "sum_score": sums[2][i], "max_score": highest[i],
             "box": [int(top[i]), int(left[i]), int(bottom[i]), int(right[i])]}
            for i, label in enumerate(ids)]


def _compact(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The distinct ``values`` (ascending) and each value's index among them; by a lookup
    table over their range when it is small (a chunk's labels are near each other), else
    by sorting."""
    low, high = int(values.min()), int(values.max())
    if high - low > 4 * len(values) + (1 << 20):
        return np.unique(values, return_inverse=True)
    present = np.zeros(high - low + 1, bool)
    present[values - low] = True
    ids = np.flatnonzero(present)
    index = np.cumsum(present) - 1
    return ids + low, index[values - low]


def _rows(tables: list[list[dict]]) -> list[dict]:
    """One row per object, from every chunk's sums (the columns of the engine's object table)."""
    merged: dict[int, dict] = {}
    for table in tables:
        for part in table:
            row = merged.setdefault(part["label"], {"area": 0, "sum_y": 0.0, "sum_x": 0.0, "sum_score": 0.0,
                                                    "max_score": -np.inf, "box": list(part["box"])})
            row["area"] += part["area"]
            row["sum_y"] += part["sum_y"]
            row["sum_x"] += part["sum_x"]
            row["sum_score"] += part["sum_score"]
            row["max_score"] = max(row["max_score"], part["max_score"])
            row["box"] = [min(row["box"][0], part["box"][0]), min(row["box"][1], part["box"][1]),
                          max(row["box"][2], part["box"][2]), max(row["box"][3], part["box"][3])]
    return [{"label": label, "area": row["area"],
             "centroid": (row["sum_y"] / row["area"], row["sum_x"] / row["area"]),
             "bbox": tuple(row["box"]), "mean_score": row["sum_score"] / row["area"],
             "max_score": float(row["max_score"])}
            for label, row in sorted(merged.items())]


__all__ = ["plane_objects", "reach"]
