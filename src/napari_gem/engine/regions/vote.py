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


def unsegmented_label(labels: np.ndarray, unsegmented: Unsegmented) -> int | None:
    """The label value that is "no region" under the rule ``unsegmented``."""
    if unsegmented == "min":
        return int(labels.min()) if labels.size else None
    return None if unsegmented is None else int(unsegmented)


def majority_vote(classes: np.ndarray, labels: np.ndarray, unsegmented: Unsegmented = 0) -> np.ndarray:
    """A copy of the class map ``classes`` ``[H, W]`` (integers >= 0) where every pixel of a
    region of ``labels`` ``[H, W]`` has the region's most frequent class (ties: smallest)."""
    classes = np.asarray(classes)
    labels = np.asarray(labels)
    if classes.shape != labels.shape:
        raise ValueError(f"class map {classes.shape} and labels {labels.shape} differ in shape")
    if classes.size == 0:
        return classes.copy()
    region_ids, region_of = np.unique(labels, return_inverse=True)
    region_of = region_of.reshape(-1)
    flat = classes.reshape(-1).astype(np.int64)
    if flat.min() < 0:
        raise ValueError("classes must be >= 0")
    count = int(flat.max()) + 1
    votes = np.bincount(region_of * count + flat, minlength=len(region_ids) * count)
    winner = votes.reshape(len(region_ids), count).argmax(axis=1)  # argmax: first (smallest) of ties
    out = winner[region_of].astype(classes.dtype)
    skip = unsegmented_label(labels, unsegmented)
    if skip is not None:
        keep = labels.reshape(-1) == skip
        out[keep] = classes.reshape(-1)[keep]
    return out.reshape(classes.shape)


def vote_masks(masks: np.ndarray, labels: np.ndarray, unsegmented: Unsegmented = 0) -> np.ndarray:
    """Each binary mask of ``masks`` ``[P, H, W]`` voted inside the regions (ties: False)."""
    return np.stack([majority_vote(mask.astype(np.uint8), labels, unsegmented).astype(bool)
                     for mask in masks]) if len(masks) else masks.copy()
