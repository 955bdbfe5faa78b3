"""CorrCLIP's map correction: each region takes the class most of its pixels have
(shared/docs/vfm-methods-spec.md §3.4, corrclip_segmentor.py L216-222).

Official: every label but the smallest one present is a region, at the original
resolution, with the ORIGINAL (unmerged) masks; ``torch.mode`` breaks ties towards the
smallest class. Ours [adaptation]: the unsegmented label is 0 (a napari Labels layer's
"no label"), not the smallest present (identical whenever 0 occurs); and each prompt's
binary mask gets the same vote (ties: not in the mask), so masks and the class map agree.
"""

from __future__ import annotations

import numpy as np

#: How the unsegmented region is chosen: ``"min"`` (official: the smallest label present),
#: an integer label (ours: 0), or ``None`` (every label is a region).
Unsegmented = str | int | None

#: The label of pixels in no region: napari's "no label" [adaptation; official: the smallest label].
UNSEGMENTED = 0


def unsegmented_label(labels: np.ndarray, unsegmented: Unsegmented) -> int | None:
    """The label value that is "no region" under the rule ``unsegmented``."""
    if unsegmented == "min":
        return int(labels.min()) if labels.size else None
    return None if unsegmented is None else int(unsegmented)


def region_index(labels: np.ndarray) -> tuple[np.ndarray, int]:
    """Each pixel's region number (flat int64) and the number of regions.

    Label images are usually 0..n already (superpixels, renumbered layers): then the labels
    are the numbers themselves, with no sort of the whole image."""
    flat = labels.reshape(-1)
    if flat.size and flat.dtype.kind in "iub" and flat.min() >= 0 and flat.max() <= 4 * flat.size:
        return flat.astype(np.int64, copy=False), int(flat.max()) + 1
    _, inverse = np.unique(flat, return_inverse=True)
    return inverse.reshape(-1), int(inverse.max()) + 1 if inverse.size else 0


def majority_vote(classes: np.ndarray, labels: np.ndarray, unsegmented: Unsegmented = 0) -> np.ndarray:
    """A copy of the class map ``classes`` ``[H, W]`` (integers >= 0) where every pixel of a
    region of ``labels`` ``[H, W]`` has the region's most frequent class (ties: smallest)."""
    classes = np.asarray(classes)
    labels = np.asarray(labels)
    if classes.shape != labels.shape:
        raise ValueError(f"class map {classes.shape} and labels {labels.shape} differ in shape")
    if classes.size == 0:
        return classes.copy()
    flat = classes.reshape(-1).astype(np.int64)
    if flat.min() < 0:
        raise ValueError("classes must be >= 0")
    region_of, regions = region_index(labels)
    count = int(flat.max()) + 1
    votes = np.bincount(region_of * count + flat, minlength=regions * count)
    winner = votes.reshape(regions, count).argmax(axis=1)  # argmax: the first (smallest) of ties
    out = winner[region_of].astype(classes.dtype)
    skip = unsegmented_label(labels, unsegmented)
    if skip is not None:
        keep = labels.reshape(-1) == skip
        out[keep] = classes.reshape(-1)[keep]
    return out.reshape(classes.shape)


def vote_masks(masks: np.ndarray, labels: np.ndarray, unsegmented: Unsegmented = 0) -> np.ndarray:
    """Each binary mask of ``masks`` ``[P, H, W]`` voted inside the regions (ties: False)."""
    masks = np.asarray(masks, dtype=bool)
    labels = np.asarray(labels)
    if masks.shape[1:] != labels.shape:
        raise ValueError(f"masks {masks.shape} and labels {labels.shape} differ in shape")
    region_of, regions = region_index(labels)
    sizes = np.bincount(region_of, minlength=regions)
    skip = unsegmented_label(labels, unsegmented)
    keep = labels.reshape(-1) == skip if skip is not None else None
    out = np.empty_like(masks)
    for index, mask in enumerate(masks):
        flat = mask.reshape(-1)
        inside = np.bincount(region_of[flat], minlength=regions)
        voted = (2 * inside > sizes)[region_of]  # a strict majority; a tie is not in the mask
        if keep is not None:
            voted[keep] = flat[keep]
        out[index] = voted.reshape(mask.shape)
    return out
