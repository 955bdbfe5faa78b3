"""The user's strokes on a mask layer: what they painted in (positive) and erased (negative).

napari records every brush, fill or polygon edit of a Labels layer as history atoms
(the pixels that changed, their old values and the new value) and hands them to
``layer.events.paint``. :func:`record_edit` turns them into stroke codes per plane
(1 positive where a pixel became non-zero, 2 negative where it became 0; the latest
edit of a pixel wins), kept in the layer's own metadata under :data:`STROKES` so they
travel with the layer (and reach napari's "Save Selected Layers" writer).

A pixel painted over a value it already had is no change to napari, and no stroke
here: strokes are edits against the mask as the plugin (run or refinement) left it.
napari's own undo of a paint step emits no event, so :func:`plane_strokes` checks the
codes against the data: a code whose pixel no longer shows it (a painted pixel back to
0, an erased one non-zero again) is dropped. A refinement never changes a stroke's
pixel, so undoing a refinement leaves the strokes as they were.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
from scipy import ndimage

from ..io.strokes import NEGATIVE, POSITIVE, stroke_codes
from .layers import parse_plane_key, plane_key

#: Key of the strokes record in a mask layer's ``metadata``.
STROKES = "napari_gem_strokes"


def _record(layer, create: bool = False) -> dict | None:
    record = layer.metadata.get(STROKES)
    if record is None and create:
        record = {"planes": {}, "refined": {}}
        layer.metadata[STROKES] = record
    return record


def _atom_pixels(atom, ndim: int) -> tuple[np.ndarray, np.ndarray]:
    """``(indices [ndim, n], new values [n])`` of one napari history atom."""
    if hasattr(atom, "slice_key"):  # a brush/fill/polygon edit: bounding box and mask
        starts = np.array([int(s.start or 0) for s in atom.slice_key])[:, None]
        if atom.mask is None:  # every pixel of the box changed
            shape = [int(s.stop) - int(s.start or 0) for s in atom.slice_key]
            indices = np.indices(shape).reshape(len(shape), -1)
        else:
            indices = np.array(np.nonzero(atom.mask))
        indices = indices + starts
        values = np.full(indices.shape[1], int(atom.new_value))
        return indices, values
    raw_indices, _old, new = atom  # data_setitem: fancy indices, old and new values
    indices = np.array([np.asarray(axis).ravel() for axis in raw_indices]).reshape(ndim, -1)
    values = np.broadcast_to(np.asarray(new), (indices.shape[1],)).ravel()
    return indices, values


def _by_plane(indices: np.ndarray):
    """``(plane index, pixel selection)`` for each plane the pixels ``[ndim, n]`` lie in."""
    if indices.shape[0] == 2:
        yield (), slice(None)
        return
    planes, inverse = np.unique(indices[:-2].T, axis=0, return_inverse=True)
    inverse = inverse.ravel()
    for number, plane in enumerate(planes):
        yield tuple(int(i) for i in plane), inverse == number


def record_edit(layer, atoms: Iterable) -> bool:
    """Add one napari history item (a list of atoms) of ``layer`` to its strokes.

    Returns whether any pixel was recorded.
    """
    record = _record(layer, create=True)
    plane_shape = tuple(layer.data.shape[-2:])
    recorded = False
    for atom in atoms:
        indices, values = _atom_pixels(atom, layer.ndim)
        if indices.shape[1] == 0:
            continue
        for index, chosen in _by_plane(indices):
            key = plane_key(index)
            codes = record["planes"].get(key)
            if codes is None:
                codes = record["planes"][key] = np.zeros(plane_shape, np.uint8)
            ys, xs = indices[-2][chosen], indices[-1][chosen]
            codes[ys, xs] = np.where(values[chosen] != 0, POSITIVE, NEGATIVE)
            recorded = True
    return recorded


def plane_strokes(layer, index: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
    """``(positive, negative)`` of one plane, each code checked against the data now."""
    plane = np.asarray(layer.data[tuple(index)])
    record = _record(layer)
    codes = None if record is None else record["planes"].get(plane_key(index))
    if codes is None or codes.shape != plane.shape:
        empty = np.zeros(plane.shape, bool)
        return empty, empty.copy()
    stale = ((codes == POSITIVE) & (plane == 0)) | ((codes == NEGATIVE) & (plane != 0))
    codes[stale] = 0  # undone in napari (its undo emits no event)
    return codes == POSITIVE, codes == NEGATIVE


def stroke_planes(layer) -> list[tuple[int, ...]]:
    """The planes of ``layer`` that hold strokes now."""
    record = _record(layer)
    planes = []
    for key in sorted(record["planes"] if record else (), key=parse_plane_key):
        index = parse_plane_key(key)
        positive, negative = plane_strokes(layer, index)
        if positive.any() or negative.any():
            planes.append(index)
    return planes


def layer_codes(layer) -> np.ndarray:
    """Stroke codes (0, 1 positive, 2 negative) of the whole layer, shaped like its data."""
    codes = np.zeros(layer.data.shape, np.uint8)
    for index in stroke_planes(layer):
        codes[tuple(index)] = stroke_codes(*plane_strokes(layer, index))
    return codes


def count_strokes(layer) -> tuple[int, int]:
    """``(positive, negative)`` strokes: connected painted / erased regions, over all planes.

    One brush drag is one region; two drags that touch count once (8-connectivity).
    """
    counts = [0, 0]
    structure = np.ones((3, 3), bool)
    for index in stroke_planes(layer):
        for kind, pixels in enumerate(plane_strokes(layer, index)):
            counts[kind] += int(ndimage.label(pixels, structure=structure)[1])
    return counts[0], counts[1]


def object_stage_counts(layer) -> tuple[int, int] | None:
    """``(kept, removed)`` objects of the latest refinement of each plane, summed.

    None when no refinement of the layer had an object stage.
    """
    stages = [entry["object_stage"] for entry in refinements(layer).values() if entry.get("object_stage")]
    if not stages:
        return None
    return sum(stage["kept"] for stage in stages), sum(stage["removed"] for stage in stages)


def mark_refined(layer, index: tuple[int, ...], entry: dict) -> None:
    """Remember how a plane was last refined (prompt, options, the data's digest after)."""
    _record(layer, create=True)["refined"][plane_key(index)] = entry


def refinements(layer) -> dict[str, dict]:
    """Plane key -> how it was last refined (see :func:`mark_refined`)."""
    record = _record(layer)
    return dict(record["refined"]) if record else {}


def forget(layer) -> None:
    """Drop every stroke of ``layer`` (its data was replaced as a whole)."""
    layer.metadata.pop(STROKES, None)
