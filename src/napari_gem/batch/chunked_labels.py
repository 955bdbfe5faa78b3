"""Connected components of a plane larger than memory, chunk by chunk, with one label per object.

Each chunk is labelled on its own (scipy), into a temporary zarr; a border-merge pass then
joins the labels that touch across chunk borders (reading only the rows and columns on
both sides of each border) and numbers the objects in the raster order of their first
pixel, which is how ``scipy.ndimage.label`` numbers the objects of a whole plane. So
:meth:`ChunkLabels.read` of any box gives exactly the labels the whole plane would have.
Per object the pass also keeps its size, bounding box and whether it touches the plane's
border.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from scipy import ndimage
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from .compute import Compute

Box = tuple[int, int, int, int]
#: ``read(box) -> bool [h, w]``: the mask of one box of the plane.
MaskReader = Callable[[Box], np.ndarray]


@dataclass(frozen=True)
class ChunkLabels:
    """Labels of one plane: chunk-local labels in a zarr, and how they map to plane labels.

    ``final[offset[chunk] + local]`` is the plane label of a chunk's local label (0 stays 0).
    ``sizes``, ``boxes`` (``y0, y1, x0, x1``) and ``on_border`` are indexed by plane label.
    """

    path: str
    chunk_boxes: tuple[Box, ...]  # the regular grid of ``chunk``-sided boxes, row by row
    chunk: int
    offsets: np.ndarray
    final: np.ndarray
    sizes: np.ndarray
    boxes: np.ndarray
    on_border: np.ndarray

    @property
    def count(self) -> int:
        return len(self.sizes) - 1

    def read(self, box: Box) -> np.ndarray:
        """Plane labels (int64) of the pixels in ``box`` (any box, across chunks)."""
        import zarr

        y0, y1, x0, x1 = box
        local = zarr.open_array(self.path, mode="r")[y0:y1, x0:x1].astype(np.int64)
        out = np.zeros(local.shape, np.int64)
        columns = -(-self.chunk_boxes[-1][3] // self.chunk)
        for number in (row * columns + col for row in range(y0 // self.chunk, -(-y1 // self.chunk))
                       for col in range(x0 // self.chunk, -(-x1 // self.chunk))):
            cy0, cy1, cx0, cx1 = self.chunk_boxes[number]
            top, bottom, left, right = max(y0, cy0), min(y1, cy1), max(x0, cx0), min(x1, cx1)
            part = (slice(top - y0, bottom - y0), slice(left - x0, right - x0))
            values = local[part]
            out[part] = np.where(values > 0, self.final[values + self.offsets[number]], 0)
        return out


def _structure(connectivity: int) -> np.ndarray:
    return ndimage.generate_binary_structure(2, connectivity)


def label_chunk(read: MaskReader, box: Box, number: int, path: str, shape: tuple[int, int],
                connectivity: int) -> dict:
    """Label one chunk into the zarr; per local label its first pixel, size and box."""
    import zarr

    y0, y1, x0, x1 = box
    labels, count = ndimage.label(read(box), structure=_structure(connectivity))
    zarr.open_array(path, mode="r+")[y0:y1, x0:x1] = labels
    flat = labels.ravel()
    # Each label's first pixel in raster order, without sorting the chunk.
    where = np.flatnonzero(flat)
    first = np.full(count, flat.size, np.int64)
    np.minimum.at(first, flat[where] - 1, where)
    rows, cols = np.divmod(first, x1 - x0)
    boxes = np.array(ndimage.find_objects(labels), dtype=object)
    extents = np.array([[b[0].start + y0, b[0].stop + y0, b[1].start + x0, b[1].stop + x0]
                        for b in boxes], dtype=np.int64).reshape(-1, 4)
    return {
        "number": number, "count": int(count),
        "first": (rows + y0) * shape[1] + cols + x0,  # flat index in the plane, per label 1..count
        "sizes": np.bincount(flat, minlength=count + 1)[1:],
        "boxes": extents,
    }


def label_plane(read: MaskReader, shape: tuple[int, int], chunk_boxes: Sequence[Box], path: str,
                compute: Compute, *, connectivity: int = 2, chunk: int = 1024) -> ChunkLabels:
    """Components of the mask ``read`` gives (full connectivity by default; 1: edges only).

    ``chunk_boxes`` are ``windows.boxes(shape, chunk)``: the plane cut into ``chunk``-sided
    boxes, row by row."""
    import zarr
    from dask import delayed

    zarr.open_array(path, mode="w", shape=shape, chunks=(chunk, chunk), dtype="int32", fill_value=0)
    parts = compute([delayed(label_chunk, pure=False)(read, box, number, path, shape, connectivity)
                     for number, box in enumerate(chunk_boxes)], "objects")
    parts.sort(key=lambda part: part["number"])
    counts = np.array([part["count"] for part in parts], dtype=np.int64)
    offsets = np.concatenate([[0], np.cumsum(counts)[:-1]])
    total = int(counts.sum())
    first = np.concatenate([[-1], *[part["first"] for part in parts]]).astype(np.int64)
    sizes = np.concatenate([[0], *[part["sizes"] for part in parts]]).astype(np.int64)
    boxes = np.concatenate([np.zeros((1, 4), np.int64), *[part["boxes"] for part in parts]])
    provisional = ChunkLabels(path, tuple(chunk_boxes), chunk, offsets, np.arange(total + 1), sizes, boxes,
                              np.zeros(total + 1, bool))
    pairs = _border_pairs(provisional, shape, connectivity)
    return _merged(provisional, pairs, first, shape)


def _border_pairs(labels: ChunkLabels, shape: tuple[int, int], connectivity: int) -> np.ndarray:
    """Provisional labels that touch across a chunk border: ``[n, 2]``."""
    height, width = shape
    shifts = (-1, 0, 1) if connectivity == 2 else (0,)
    rows = sorted({box[0] for box in labels.chunk_boxes} - {0})
    cols = sorted({box[2] for box in labels.chunk_boxes} - {0})
    found = []
    for y in rows:
        before, after = labels.read((y - 1, y, 0, width))[0], labels.read((y, y + 1, 0, width))[0]
        found += _touching(before, after, shifts)
    for x in cols:
        before, after = labels.read((0, height, x - 1, x))[:, 0], labels.read((0, height, x, x + 1))[:, 0]
        found += _touching(before, after, shifts)
    return np.concatenate(found) if found else np.zeros((0, 2), np.int64)


def _touching(before: np.ndarray, after: np.ndarray, shifts) -> list[np.ndarray]:
    pairs = []
    for shift in shifts:
        a = before[max(0, -shift): len(before) - max(0, shift)]
        b = after[max(0, shift): len(after) - max(0, -shift)]
        both = (a > 0) & (b > 0)
        pairs.append(np.stack([a[both], b[both]], axis=1))
    return pairs


def _merged(labels: ChunkLabels, pairs: np.ndarray, first: np.ndarray,
            shape: tuple[int, int]) -> ChunkLabels:
    """Join touching labels and number the objects by their first pixel (as scipy does)."""
    total = len(labels.sizes) - 1
    graph = coo_matrix((np.ones(len(pairs)), (pairs[:, 0], pairs[:, 1])), shape=(total + 1, total + 1))
    _, root = connected_components(graph, directed=False)
    _, objects = np.unique(root[1:], return_inverse=True)  # each object's number, 0..count-1
    count = int(objects.max()) + 1 if total else 0
    starts = np.full(count, np.iinfo(np.int64).max)
    np.minimum.at(starts, objects, first[1:])
    rank = np.empty(count, np.int64)
    rank[np.argsort(starts, kind="stable")] = np.arange(1, count + 1)
    final = np.concatenate([[0], rank[objects]])
    sizes = np.zeros(count + 1, np.int64)
    np.add.at(sizes, final[1:], labels.sizes[1:])
    boxes = np.zeros((count + 1, 4), np.int64)
    boxes[:, [0, 2]] = np.iinfo(np.int64).max
    np.minimum.at(boxes[:, 0], final[1:], labels.boxes[1:, 0])
    np.maximum.at(boxes[:, 1], final[1:], labels.boxes[1:, 1])
    np.minimum.at(boxes[:, 2], final[1:], labels.boxes[1:, 2])
    np.maximum.at(boxes[:, 3], final[1:], labels.boxes[1:, 3])
    boxes[0] = 0
    height, width = shape
    on_border = (boxes[:, 0] == 0) | (boxes[:, 1] == height) | (boxes[:, 2] == 0) | (boxes[:, 3] == width)
    on_border[0] = False
    return ChunkLabels(labels.path, labels.chunk_boxes, labels.chunk, labels.offsets, final, sizes, boxes,
                       on_border)
