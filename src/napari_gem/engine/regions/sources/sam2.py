"""SAM 2's automatic masks, as CorrCLIP generates them on line (vfm-methods-spec §3.1,
corrclip_segmentor.py L263-272, L329-342): ``sam2_hiera_l``, 8 points per side, predicted-IoU
and stability thresholds 0.4, one mask per point; masks sorted by area, smallest first,
and painted with ids 1, 2, ... in that order (a larger mask overwrites smaller ones).

Offered only where the ``sam2`` package is importable and its weights are in the Hugging
Face cache: nothing is downloaded during a run, and nothing stands in for SAM 2 when it
is missing.
"""

from __future__ import annotations

import importlib.util

import numpy as np

from . import register
from .base import ReadRgb, RegionSource

REPOSITORY = "facebook/sam2-hiera-large"
CHECKPOINT = "sam2_hiera_large.pt"
GENERATOR_SETTINGS = dict(points_per_side=8, pred_iou_thresh=0.4, stability_score_thresh=0.4,
                          multimask_output=False)


def paint_masks(masks: list[dict], shape: tuple[int, int]) -> np.ndarray:
    """SAM's mask records (``segmentation``, ``area``) as one label image, smallest first."""
    labels = np.zeros(shape, dtype=np.int32)
    for number, record in enumerate(sorted(masks, key=lambda record: record["area"]), start=1):
        labels[np.asarray(record["segmentation"], dtype=bool)] = number
    return labels


def _cached_checkpoint() -> str | None:
    try:
        from huggingface_hub import try_to_load_from_cache
    except ImportError:
        return None
    found = try_to_load_from_cache(REPOSITORY, CHECKPOINT)
    return found if isinstance(found, str) else None


@register
class Sam2Masks(RegionSource):
    name = "sam2"
    title = "SAM 2 automatic masks"

    def unavailable(self) -> str | None:
        if importlib.util.find_spec("sam2") is None:
            return "the sam2 package is not installed (pip install sam2)"
        if _cached_checkpoint() is None:
            return (f"SAM 2's weights ({REPOSITORY}, {CHECKPOINT}) are not in the Hugging Face "
                    "cache; download them once on a connected machine")
        return None

    def labels(self, read_rgb: ReadRgb, shape: tuple[int, int], options,
               given: np.ndarray | None = None) -> np.ndarray:
        from sam2.automatic_mask_generator import SAM2AutomaticMaskGenerator
        from sam2.build_sam import build_sam2_hf

        generator = SAM2AutomaticMaskGenerator(build_sam2_hf(REPOSITORY, device="cpu"),
                                               **GENERATOR_SETTINGS)
        rgb = (np.clip(read_rgb(1), 0, 1) * 255).round().astype(np.uint8)
        return paint_masks(generator.generate(rgb), shape)
