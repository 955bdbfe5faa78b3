"""From heatmaps to masks, instances, semantic maps and object tables (pure numpy)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from scipy import ndimage
from skimage.filters import threshold_otsu
from skimage.measure import regionprops_table

OTSU_SAMPLE = 4_000_000
#: Rows per block when building semantic maps, to bound temporaries on huge images.
SEMANTIC_BLOCK_ROWS = 1024


def connected_components(
    mask: np.ndarray, connectivity: int | None = None, out: np.ndarray | None = None
) -> np.ndarray:
    """Label connected regions as int32 (full connectivity by default), written into ``out``.

    scipy writes int32 labels directly; skimage's ``label`` would make an int64 copy
    as large as the image.
    """
    connectivity = mask.ndim if connectivity is None else connectivity
    structure = ndimage.generate_binary_structure(mask.ndim, connectivity)
    if out is None:
        out = np.empty(mask.shape, dtype=np.int32)
    ndimage.label(mask, structure=structure, output=out)
    return out


def threshold_value(heatmap: np.ndarray, method: float | str) -> float:
    """A fixed threshold as given, or Otsu's on the heatmap's values.

    A constant heatmap has nothing to separate: Otsu then returns 1.0, which keeps
    its mask empty unless it is all ones.
    """
    if method != "otsu":
        return float(method)
    values = np.asarray(heatmap, dtype=np.float32).ravel()
    if values.size > OTSU_SAMPLE:
        values = values[:: values.size // OTSU_SAMPLE + 1]
    values = values[np.isfinite(values)]
    if values.size == 0 or values.min() == values.max():
        return 1.0
    return float(threshold_otsu(values))


def remove_small_objects(mask: np.ndarray, min_size: int) -> np.ndarray:
    """Drop connected components with fewer than ``min_size`` pixels."""
    if min_size <= 1 or not mask.any():
        return mask
    labels = connected_components(mask)
    sizes = np.bincount(labels.ravel())
    keep = sizes >= min_size
    keep[0] = False
    return keep[labels]


def fill_small_holes(mask: np.ndarray, max_hole: int) -> np.ndarray:
    """Fill enclosed background regions of at most ``max_hole`` pixels."""
    if max_hole <= 0 or mask.all():
        return mask
    holes = connected_components(~mask, connectivity=1)
    sizes = np.bincount(holes.ravel())
    border = np.unique(np.concatenate([side.ravel() for side in _borders(holes)]))
    fill = sizes <= max_hole
    fill[0] = False
    fill[border] = False  # touching the border: outside, not a hole
    return mask | fill[holes]


def _borders(array: np.ndarray) -> list[np.ndarray]:
    sides = []
    for axis in range(array.ndim):
        sides.append(np.take(array, 0, axis=axis))
        sides.append(np.take(array, -1, axis=axis))
    return sides


def binary_mask(
    heatmap: np.ndarray, threshold: float, min_size: int = 0, fill_holes: int = 0
) -> np.ndarray:
    """Pixels at or above ``threshold``, cleaned of small objects and small holes."""
    mask = np.asarray(heatmap) >= threshold
    mask = fill_small_holes(mask, fill_holes)
    return remove_small_objects(mask, min_size)


def instance_labels(mask: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """Connected components of a mask, numbered 1..n (int32), optionally into ``out``."""
    return connected_components(mask, out=out)


def semantic_labels(scores: np.ndarray, background_threshold: float | Sequence[float]) -> np.ndarray:
    """One label map over all prompts: ``i + 1`` for the best prompt, 0 where it is too weak.

    ``scores`` is ``[P, ...]``; a pixel is background where its best score is below the
    threshold (one number, or one per prompt for the winning prompt).
    """
    scores = np.asarray(scores)
    limits = np.asarray(background_threshold, dtype=np.float32)
    labels = np.empty(scores.shape[1:], dtype=np.int32)
    for start in range(0, scores.shape[1], SEMANTIC_BLOCK_ROWS):
        block = scores[:, start : start + SEMANTIC_BLOCK_ROWS]
        best = block.argmax(axis=0)
        top = np.take_along_axis(block, best[None], axis=0)[0]
        limit = limits[best] if limits.ndim else limits
        labels[start : start + SEMANTIC_BLOCK_ROWS] = np.where(top >= limit, best + 1, 0)
    return labels


OBJECT_COLUMNS = ("prompt", "label", "area", "centroid", "bbox", "mean_score", "max_score")


def object_table(
    labels_by_prompt: Mapping[str, np.ndarray], heatmaps_by_prompt: Mapping[str, np.ndarray]
) -> list[dict]:
    """One row per labelled object: prompt, label, area, centroid, bounding box, scores.

    A prompt's labels may be binary (then its connected components are the objects)
    or instance labels; 2D or 3D.
    """
    rows: list[dict] = []
    for prompt, labels in labels_by_prompt.items():
        labels = np.asarray(labels)
        if labels.dtype == bool or labels.max(initial=0) <= 1:
            labels = instance_labels(labels > 0)
        if not labels.any():
            continue
        heatmap = np.asarray(heatmaps_by_prompt[prompt], dtype=np.float32)
        table = regionprops_table(
            labels, intensity_image=heatmap,
            properties=("label", "area", "centroid", "bbox", "intensity_mean", "intensity_max"),
        )
        ndim = labels.ndim
        for index in range(len(table["label"])):
            rows.append({
                "prompt": prompt,
                "label": int(table["label"][index]),
                "area": int(table["area"][index]),
                "centroid": tuple(float(table[f"centroid-{a}"][index]) for a in range(ndim)),
                "bbox": tuple(int(table[f"bbox-{a}"][index]) for a in range(2 * ndim)),
                "mean_score": float(table["intensity_mean"][index]),
                "max_score": float(table["intensity_max"][index]),
            })
    return rows


__all__ = [
    "OBJECT_COLUMNS",
    "binary_mask",
    "fill_small_holes",
    "instance_labels",
    "object_table",
    "remove_small_objects",
    "semantic_labels",
    "threshold_value",
]
