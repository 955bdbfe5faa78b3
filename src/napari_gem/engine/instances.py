"""Objects from a mask: touching objects split by a watershed seeded from the heatmap's peaks.

A prompt's mask says *where* its concept is; its objects say *how many*. Plain connected
components merge every group of touching objects into one. The watershed splits a
connected region where its landscape (below) has more than one clear peak inside it:

- **seeds** are the local maxima of a landscape: by default the heatmap, smoothed at the
  scale of its grid, times the distance to the region's border (so the neck between two
  touching objects is a valley even where the coarse heatmap is flat). Seeds are at least
  a grid cell apart and stand at least :data:`DYNAMIC` of the landscape's range above the
  saddle that joins them to a higher peak (h-maxima). Heatmaps are bilinear upsamplings
  of a coarse patch grid, so their maxima sit on grid nodes and a noisy node makes a
  spurious peak: the dynamic drops those, the smoothing drops them and the fine ripples
  of PAMR-refined maps.
- **flooding** runs on the same landscape, negated, inside the region only. Landscape and
  seeds are worked out at :data:`SAMPLES_PER_CELL` pixels per grid cell (they hold no
  finer detail), the flooding at full resolution.

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
# The defaults were chosen on 30 touching demo scenes of their own (benchmarks/counting.py
# selection seeds); the measurement is in docs/api.md, "Objects".
#: Smoothing of the heatmap before seeds are sought, in grid cells (Gaussian sigma).
SMOOTH_CELLS = 1.0
#: Smallest distance between two seeds, in grid cells.
MIN_DISTANCE_CELLS = 1.0
#: Smallest height of a seed above the saddle to a higher one, as a share of the landscape's range.
DYNAMIC = 0.2
#: Where seeds are sought and what is flooded (see :func:`split_touching`).
LANDSCAPE = "product"
#: Pixels per grid cell at which the landscape and its seeds are worked out.
SAMPLES_PER_CELL = 4

Splitter = Callable[..., np.ndarray]


def components(mask: np.ndarray, heatmap: np.ndarray | None = None, *, cell: float | None = None,
               out: np.ndarray | None = None) -> np.ndarray:
    """Connected components of ``mask`` (full connectivity), numbered 1..n as int32."""
    return connected_components(np.asarray(mask, dtype=bool), out=out)


def split_touching(mask: np.ndarray, heatmap: np.ndarray, *, cell: float | None = None,
                   out: np.ndarray | None = None, dynamic: float = DYNAMIC,
                   smooth_cells: float = SMOOTH_CELLS, min_distance_cells: float = MIN_DISTANCE_CELLS,
                   landscape: str = LANDSCAPE, split: np.ndarray | None = None) -> np.ndarray:
    """Objects of ``mask``: its connected regions, each split by a watershed from its seeds.

    ``heatmap`` has the mask's shape; ``cell`` is the side of one heatmap grid cell in
    image pixels (the patch size at the image's scale; :data:`DEFAULT_CELL` when None).
    ``landscape`` is where seeds are sought and what is flooded: ``product`` (the default:
    the smoothed heatmap times the distance to the region's border, scaled to [0, 1] per
    region, so a neck between two objects is a valley even where the coarse heatmap is
    flat) or ``heatmap`` (the smoothed heatmap alone). ``dynamic``, ``smooth_cells`` and
    ``min_distance_cells`` set the seeds (see the module's constants). Labels are int32
    1..n, written into ``out`` when given; ``labels > 0`` equals ``mask`` exactly.
    ``split`` (bool, the mask's shape): only the regions with a pixel there are split, as
    they would be with all; the others keep one label (a tile's caller splits the
    objects it owns and skips those its neighbours split).

    The landscape and its seeds are worked out at :data:`SAMPLES_PER_CELL` pixels per grid
    cell (they hold no finer detail), the flooding at full resolution.
    """
    mask = np.asarray(mask, dtype=bool)
    heatmap = np.asarray(heatmap, dtype=np.float32)
    if heatmap.shape != mask.shape:
        raise ValueError(f"heatmap shape {heatmap.shape} differs from mask shape {mask.shape}")
    if landscape not in ("heatmap", "product"):
        raise ValueError(f"landscape must be heatmap or product; got {landscape!r}")
    cell = DEFAULT_CELL if cell is None else float(cell)
    labels = connected_components(mask, out=out)
    count = int(labels.max(initial=0))
    if count == 0:
        return labels
    step = max(1, int(cell // SAMPLES_PER_CELL))
    coarse_mask = _block_mean(mask.astype(np.float32), step) >= 0.5
    height = ndimage.gaussian_filter(_block_mean(np.nan_to_num(heatmap), step), smooth_cells * cell / step)
    if landscape == "product":
        height = height * _depth(coarse_mask)
    radius = max(1, int(round(min_distance_cells * cell / step)))
    seeds = _seeds(height, coarse_mask, radius, dynamic * float(height.max() - height.min()))
    # Seeds back at full resolution: the centre of their block, kept where the mask is.
    points = np.minimum(seeds * step + step // 2, np.asarray(mask.shape) - 1)
    points = points[mask[tuple(points.T)]]
    seed_regions = labels[tuple(points.T)]
    per_region = np.bincount(seed_regions, minlength=count + 1)
    next_label = count + 1
    boxes = ndimage.find_objects(labels)
    splitting = per_region >= 2
    if split is not None:
        splitting &= np.isin(np.arange(count + 1), labels[split])
    for region in np.flatnonzero(splitting):
        box = _grown(boxes[region - 1], labels.shape)
        inside = labels[box] == region
        markers = np.zeros(inside.shape, dtype=np.int32)
        local = points[seed_regions == region] - [s.start for s in box]
        markers[tuple(local.T)] = np.arange(1, len(local) + 1)
        elevation = -_upsampled(height, box, step)
        split = watershed(elevation, markers, mask=inside, connectivity=inside.ndim)
        # The first piece keeps the region's number; the others are numbered on.
        renumbered = np.where(split > 1, split - 2 + next_label, region)
        labels[box][inside] = renumbered[inside]
        next_label += len(local) - 1
    return labels


def _block_mean(array: np.ndarray, step: int) -> np.ndarray:
    """Means of ``step``-sided blocks (edge blocks padded with their edge values)."""
    if step == 1:
        return array
    padded = np.pad(array, [(0, -n % step) for n in array.shape], mode="edge")
    shape = [size for n in padded.shape for size in (n // step, step)]
    return padded.reshape(shape).mean(axis=tuple(range(1, 2 * array.ndim, 2)))


def _depth(mask: np.ndarray) -> np.ndarray:
    """Distance to the border of each region, scaled to [0, 1] per region."""
    regions, count = ndimage.label(mask, structure=np.ones((3,) * mask.ndim))
    distance = ndimage.distance_transform_edt(mask).astype(np.float32)
    deepest = np.asarray(ndimage.maximum(distance, regions, np.arange(count + 1)), dtype=np.float32)
    deepest[0] = 1.0
    return distance / deepest[regions]


def _seeds(height: np.ndarray, mask: np.ndarray, radius: int, dynamic: float) -> np.ndarray:
    """Seed points ``[n, ndim]``: the highest point of every region of ``mask``, and every
    other local maximum at least ``radius`` from a higher one that stands ``dynamic`` above
    the saddle to a higher one (h-maxima)."""
    regions, count = ndimage.label(mask, structure=np.ones((3,) * mask.ndim))
    inside = np.where(mask, height, -np.inf)
    highest = ndimage.maximum_filter(inside, size=2 * radius + 1, mode="constant", cval=-np.inf)
    candidates = mask & (inside == highest)
    per_region = np.bincount(regions[candidates], minlength=count + 1)
    keep = candidates & (per_region[regions] == 1)
    boxes = ndimage.find_objects(regions)
    for region in np.flatnonzero(per_region >= 2):
        box = boxes[region - 1]
        within = regions[box] == region
        lifted = np.where(within, height[box] - height[box][within].min(), 0.0)
        strong = h_maxima(lifted, dynamic) > 0 if dynamic > 0 else within
        found = candidates[box] & within & strong
        if not found.any():  # flat: its highest point only
            found = within & (lifted == lifted.max())
        keep[box] |= found
    # A plateau of equal maxima is one seed.
    plateaus, count = ndimage.label(keep, structure=np.ones((3,) * mask.ndim))
    centres = ndimage.maximum_position(keep, plateaus, np.arange(1, count + 1))
    return np.asarray(centres, dtype=np.int64).reshape(-1, mask.ndim)


def _upsampled(height: np.ndarray, box: tuple[slice, ...], step: int) -> np.ndarray:
    """The coarse landscape bilinearly at full resolution over ``box``."""
    if step == 1:
        return height[box]
    coarse = tuple(slice(s.start // step, -(-s.stop // step)) for s in box)
    fine = ndimage.zoom(height[coarse], step, order=1, mode="nearest", grid_mode=True)
    offset = tuple(slice(s.start - c.start * step, s.stop - c.start * step)
                   for s, c in zip(box, coarse, strict=True))
    return fine[offset]


def _grown(box: tuple[slice, ...], shape: tuple[int, ...]) -> tuple[slice, ...]:
    """A bounding box one pixel larger on every side (so the flooding sees the region's rim)."""
    return tuple(slice(max(0, s.start - 1), min(n, s.stop + 1)) for s, n in zip(box, shape, strict=True))


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
