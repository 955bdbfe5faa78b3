"""What a segmentation run returns, and the one way from heatmaps to masks.

:func:`build_masks` turns heatmaps (and their thresholds) into masks, objects and the
semantic map. The run (:func:`build_result`), napari's live threshold and mask-mode
re-draw, refinement and the out-of-core batch all call it, so every door gives the same
masks for the same heatmaps and options.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from .instances import label_instances
from .masks import binary_mask, instance_labels, object_table, semantic_labels, threshold_value
from .options import SegmentOptions
from .regions.vote import UNSEGMENTED, majority_vote, vote_masks


@dataclass
class MaskSet:
    """Masks of each prompt: thresholds, binary masks, objects and the semantic map."""

    thresholds: np.ndarray  # float32 [P]
    masks: np.ndarray  # bool [P, H, W]
    instances: np.ndarray  # int32 [P, H, W]
    semantic: np.ndarray  # int32 [H, W]: 0 background, i + 1 for prompt i

    def labels(self, mode: str) -> np.ndarray:
        """The labels of one mask mode: ``binary`` (uint8 [P, H, W]), ``instances`` or ``semantic``."""
        if mode == "binary":
            return self.masks.astype(np.uint8)
        if mode == "instances":
            return self.instances
        if mode == "semantic":
            return self.semantic
        raise ValueError(f"mask mode must be one of binary, instances, semantic; got {mode!r}")


@dataclass
class SegmentationResult:
    """Heatmaps, masks and labels of each prompt, aligned with the input image."""

    prompts: list[str]
    heatmaps: np.ndarray  # float32 [P, H, W] in [0, 1]
    presence: np.ndarray  # float32 [P]
    thresholds: np.ndarray  # float32 [P]
    masks: np.ndarray  # bool [P, H, W]
    instances: np.ndarray  # int32 [P, H, W]
    semantic: np.ndarray  # int32 [H, W]: 0 background, i + 1 for prompt i
    parameters: dict = field(default_factory=dict)

    def objects(self) -> list[dict]:
        """One row per instance: prompt, label, area, centroid, bounding box, mean/max score."""
        return object_table(
            dict(zip(self.prompts, self.instances, strict=True)),
            dict(zip(self.prompts, self.heatmaps, strict=True)),
        )


#: The threshold of calibrated probabilities when none is chosen (min-max heatmaps use Otsu).
DEFAULT_CALIBRATED_THRESHOLD = 0.5
#: How the automatic threshold reads in a form.
AUTO_THRESHOLD_LABEL = f"Otsu; {DEFAULT_CALIBRATED_THRESHOLD:g} if calibrated"


def default_threshold(options: SegmentOptions) -> float | str:
    """The threshold a run uses: the chosen one, else Otsu for the paper's min-max heatmaps
    and :data:`DEFAULT_CALIBRATED_THRESHOLD` for calibrated probabilities."""
    if options.threshold is not None:
        return options.threshold
    return "otsu" if options.score_mode == "minmax" else DEFAULT_CALIBRATED_THRESHOLD


def build_masks(heatmaps: np.ndarray, options: SegmentOptions, *,
                thresholds: Sequence[float] | None = None, cell: float | None = None,
                regions: np.ndarray | None = None) -> MaskSet:
    """Masks, objects and the semantic map of heatmaps ``[P, H, W]`` under ``options``.

    ``thresholds``: one value per heatmap when already known (an out-of-core run measures
    Otsu's from a histogram of the whole plane); otherwise ``options.threshold`` (Otsu's of
    each heatmap by default). Masks are cleaned of small objects and holes
    (``min_size``, ``fill_holes``), objects follow ``options.instances`` at the heatmap
    grid's ``cell`` (its side in image pixels), and the semantic map takes
    ``background_threshold`` when set, else each prompt's threshold. ``regions``: a label
    image whose regions each take the class and mask most of their pixels have (region
    consistency's vote; 0 is no region); the objects are then the voted masks' components.
    """
    heatmaps = np.asarray(heatmaps, dtype=np.float32)
    if thresholds is None:
        method = default_threshold(options)
        thresholds = [threshold_value(heatmap, method) for heatmap in heatmaps]
    thresholds = np.asarray(thresholds, dtype=np.float32)
    masks = np.empty(heatmaps.shape, dtype=bool)
    instances = np.empty(heatmaps.shape, dtype=np.int32)
    for index, (heatmap, threshold) in enumerate(zip(heatmaps, thresholds, strict=True)):
        masks[index] = binary_mask(heatmap, threshold, options.min_size, options.fill_holes)
        if regions is None:
            label_instances(masks[index], heatmap, options.instances, cell=cell, out=instances[index])
    background = thresholds if options.background_threshold is None else options.background_threshold
    semantic = semantic_labels(heatmaps, background)
    if regions is not None:
        semantic = majority_vote(semantic, regions, UNSEGMENTED)
        masks = vote_masks(masks, regions, UNSEGMENTED)
        for index, mask in enumerate(masks):
            instance_labels(mask, out=instances[index])
    return MaskSet(thresholds, masks, instances, semantic)


def build_result(
    prompts: list[str],
    heatmaps: np.ndarray,
    presence: np.ndarray,
    options: SegmentOptions,
    parameters: dict,
    regions: np.ndarray | None = None,
) -> SegmentationResult:
    """The run's result: :func:`build_masks` of the heatmaps, with the run's parameters.

    The watershed's scale is ``parameters["heatmap_cell"]``, the heatmap grid's cell side
    in image pixels, when known; ``regions``: the label image of the region vote.
    """
    built = build_masks(heatmaps, options, cell=parameters.get("heatmap_cell"), regions=regions)
    parameters = {**parameters, "thresholds": built.thresholds.tolist(), "presence": presence.tolist()}
    return SegmentationResult(prompts, heatmaps, presence, built.thresholds, built.masks,
                              built.instances, built.semantic, parameters)
