"""Objects from a mask: touching objects split by a watershed seeded from the heatmap's peaks.

A prompt's mask says *where* its concept is; its objects say *how many*. Plain connected
components merge every group of touching objects into one. The watershed splits a
connected region where the heatmap has more than one clear peak inside it:

- **seeds** are the local maxima of a landscape: by default the heatmap, smoothed at the
  scale of its grid, times the distance to the region's border (so the neck between two
  touching objects is a valley even where the coarse heatmap is flat). Seeds are at least
  a grid cell apart and stand at least :data:`DYNAMIC` of the landscape's range above the
  saddle that joins them to a higher peak (h-maxima). Heatmaps are bilinear upsamplings
  of a coarse patch grid, so their maxima sit on grid nodes and a noisy node makes a
  spurious peak: the dynamic drops those, the smoothing drops them and the fine ripples
  of PAMR-refined maps.
- **flooding** runs on the same landscape, negated, inside the region only.

The mask is never changed: every pixel of it gets a label, a region with one seed (or
none) stays one object, and only regions with several seeds are split.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from scipy import ndimage
from skimage.morphology import h_maxima
from skimage.segmentation import watershed

from .masks import connected_components

#: How objects are numbered, with the labels people see (the ``instances`` option).
INSTANCE_MODES = (("split touching objects (watershed)", "watershed"),
                  ("connected components", "components"))
#: Grid-cell side in image pixels assumed when the heatmap's grid is not known
#: (ViT-B/16 read at its native resolution).
DEFAULT_CELL = 16.0
# The defaults were chosen on 30 touching demo scenes of their own (napari_gem.demo.counting's
# selection seeds; docs/api.md, "Objects"): with the true mask, the product landscape cut the
# count error of connected components by a third, the heatmap alone by an eighth.
#: Smoothing of the heatmap before seeds are sought, in grid cells (Gaussian sigma).
SMOOTH_CELLS = 1.0
#: Smallest distance between two seeds, in grid cells.
MIN_DISTANCE_CELLS = 1.0
#: Smallest height of a seed above the saddle to a higher one, as a share of the landscape's range.
DYNAMIC = 0.2
#: Where seeds are sought and what is flooded (see :func:`split_touching`).
LANDSCAPE = "product"

Splitter = Callable[..., np.ndarray]


def components(mask: np.ndarray, heatmap: np.ndarray | None = None, *, cell: float | None = None,
               out: np.ndarray | None = None) -> np.ndarray:
    """Connected components of ``mask`` (full connectivity), numbered 1..n as int32."""
    return connected_components(np.asarray(mask, dtype=bool), out=out)


def split_touching(mask: np.ndarray, heatmap: np.ndarray, *, cell: float | None = None,
                   out: np.ndarray | None = None, dynamic: float = DYNAMIC,
                   smooth_cells: float = SMOOTH_CELLS, min_distance_cells: float = MIN_DISTANCE_CELLS,
                   landscape: str = LANDSCAPE) -> np.ndarray:
    """Objects of ``mask``: its connected regions, each split by a watershed from its seeds.

    ``heatmap`` has the mask's shape; ``cell`` is the side of one heatmap grid cell in
    image pixels (the patch size at the image's scale; :data:`DEFAULT_CELL` when None).
    ``landscape`` is where seeds are sought and what is flooded: ``product`` (the default:
    the smoothed heatmap times the distance to the region's border, scaled to [0, 1] per
    region, so a neck between two objects is a valley even where the coarse heatmap is
    flat) or ``heatmap`` (the smoothed heatmap alone). ``dynamic``, ``smooth_cells`` and ``min_distance_cells`` set the seeds (see the
    module's constants). Labels are int32 1..n, written into ``out`` when given;
    ``labels > 0`` equals ``mask`` exactly.
    """
    mask = np.asarray(mask, dtype=bool)
    heatmap = np.asarray(heatmap, dtype=np.float32)
    if heatmap.shape != mask.shape:
        raise ValueError(f"heatmap shape {heatmap.shape} differs from mask shape {mask.shape}")
    cell = DEFAULT_CELL if cell is None else float(cell)
    labels = connected_components(mask, out=out)
    count = int(labels.max(initial=0))
    if count == 0:
        return labels
    height = ndimage.gaussian_filter(np.nan_to_num(heatmap), sigma=smooth_cells * cell)
    height = _landscape(height, mask, labels, count, landscape)
    radius = max(1, int(round(min_distance_cells * cell)))
    peaks = _candidate_peaks(height, mask, radius)
    per_region = np.bincount(labels[peaks], minlength=count + 1)
    spread = float(height.max() - height.min())
    next_label = count + 1
    boxes = ndimage.find_objects(labels)
    for region in np.flatnonzero(per_region >= 2):
        box = _grown(boxes[region - 1], labels.shape)
        inside = labels[box] == region
        split = _split_region(inside, height[box], peaks[box], dynamic * spread)
        pieces = int(split.max())
        if pieces < 2:
            continue
        # The first piece keeps the region's number; the others are numbered on.
        renumbered = np.where(split > 1, split - 2 + next_label, region)
        labels[box][inside] = renumbered[inside]
        next_label += pieces - 1
    return labels


def _landscape(smooth: np.ndarray, mask: np.ndarray, labels: np.ndarray, count: int,
               landscape: str) -> np.ndarray:
    """The map seeds are sought on and the watershed floods (negated)."""
    if landscape == "heatmap":
        return smooth
    if landscape != "product":
        raise ValueError(f"landscape must be heatmap or product; got {landscape!r}")
    distance = ndimage.distance_transform_edt(mask).astype(np.float32)
    deepest = np.asarray(ndimage.maximum(distance, labels, np.arange(count + 1)), dtype=np.float32)
    deepest[0] = 1.0
    return smooth * (distance / deepest[labels])


def _grown(box: tuple[slice, ...], shape: tuple[int, ...]) -> tuple[slice, ...]:
    """A bounding box one pixel larger on every side (so the flooding sees the region's rim)."""
    return tuple(slice(max(0, s.start - 1), min(n, s.stop + 1)) for s, n in zip(box, shape, strict=True))


def _candidate_peaks(smooth: np.ndarray, mask: np.ndarray, radius: int) -> np.ndarray:
    """Pixels of ``mask`` that are the highest of ``smooth`` within ``radius`` (inside the mask)."""
    inside = np.where(mask, smooth, -np.inf)
    size = 2 * radius + 1
    highest = ndimage.maximum_filter(inside, size=size, mode="constant", cval=-np.inf)
    return mask & (inside == highest)


def _split_region(inside: np.ndarray, height: np.ndarray, candidates: np.ndarray,
                  dynamic: float) -> np.ndarray:
    """Labels 1..k of one region (``inside``, a crop) split by the watershed from its seeds."""
    floor = float(height[inside].min())
    lifted = np.where(inside, height - floor, 0.0)
    # h-maxima: a peak counts only if it stands ``dynamic`` above the saddle to a higher one.
    strong = h_maxima(lifted, dynamic) > 0 if dynamic > 0 else np.ones_like(inside)
    seeds = candidates & inside & strong
    markers, found = ndimage.label(seeds, structure=np.ones((3,) * inside.ndim))
    if found < 2:
        return inside.astype(np.int32)
    return watershed(-lifted, markers, mask=inside, connectivity=inside.ndim).astype(np.int32)


#: The instance modes, by the value of the ``instances`` option.
SPLITTERS: dict[str, Splitter] = {"watershed": split_touching, "components": components}


def label_instances(mask: np.ndarray, heatmap: np.ndarray, mode: str = "watershed", *,
                    cell: float | None = None, out: np.ndarray | None = None) -> np.ndarray:
    """The objects of ``mask`` numbered 1..n (int32) the way ``mode`` says.

    ``watershed`` splits touching objects at the heatmap's peaks (:func:`split_touching`);
    ``components`` keeps connected components. ``cell`` is the heatmap's grid-cell side
    in image pixels. The mask itself is never changed: ``labels > 0`` equals it.
    """
    try:
        splitter = SPLITTERS[mode]
    except KeyError:
        raise ValueError(f"instances must be one of {', '.join(SPLITTERS)}; got {mode!r}") from None
    return splitter(mask, heatmap, cell=cell, out=out)


__all__ = ["DEFAULT_CELL", "INSTANCE_MODES", "SPLITTERS", "components", "label_instances",
           "split_touching"]
