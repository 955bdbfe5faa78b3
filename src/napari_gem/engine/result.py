"""What a segmentation run returns, and how masks are derived from its heatmaps."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .instances import label_instances
from .masks import binary_mask, object_table, semantic_labels, threshold_value
from .options import SegmentOptions


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


def build_result(
    prompts: list[str],
    heatmaps: np.ndarray,
    presence: np.ndarray,
    options: SegmentOptions,
    parameters: dict,
) -> SegmentationResult:
    """Threshold each heatmap, clean the masks, number instances and build the semantic map.

    Instances follow ``options.instances``; the watershed's scale is
    ``parameters["heatmap_cell"]``, the heatmap grid's cell side in image pixels, when known.
    """
    method = default_threshold(options)
    thresholds = np.array([threshold_value(h, method) for h in heatmaps], dtype=np.float32)
    masks = np.empty(heatmaps.shape, dtype=bool)
    instances = np.empty(heatmaps.shape, dtype=np.int32)
    for index, (heatmap, threshold) in enumerate(zip(heatmaps, thresholds, strict=True)):
        masks[index] = binary_mask(heatmap, threshold, options.min_size, options.fill_holes)
        label_instances(masks[index], heatmap, options.instances,
                        cell=parameters.get("heatmap_cell"), out=instances[index])
    background = (
        thresholds if options.background_threshold is None else options.background_threshold
    )
    semantic = semantic_labels(heatmaps, background)
    parameters = {**parameters, "thresholds": thresholds.tolist(), "presence": presence.tolist()}
    return SegmentationResult(
        prompts, heatmaps, presence, thresholds, masks, instances, semantic, parameters
    )
