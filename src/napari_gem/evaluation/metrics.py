"""Semantic-segmentation scores from a dataset-wide confusion matrix.

The numbers follow MMSegmentation's ``IoUMetric``: intersections and unions are
summed over all images before dividing, pixels labelled with the ignore index do
not count, and a class that appears neither in the ground truth nor in the
predictions has an undefined IoU (NaN) that the mean skips.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .datasets import IGNORE_INDEX


@dataclass(frozen=True)
class SegmentationScores:
    """Per-class IoU and accuracy (fractions in [0, 1], NaN where undefined) and means."""

    iou: np.ndarray  # [C]
    accuracy: np.ndarray  # [C], recall of each class
    mean_iou: float
    mean_accuracy: float
    pixel_accuracy: float  # "aAcc": correct pixels / labelled pixels


class ConfusionMatrix:
    """Counts of (ground-truth class, predicted class) pixel pairs over a dataset."""

    def __init__(self, num_classes: int, ignore_index: int = IGNORE_INDEX) -> None:
        if num_classes < 1:
            raise ValueError(f"num_classes must be >= 1, got {num_classes}")
        self.num_classes = num_classes
        self.ignore_index = ignore_index
        self.matrix = np.zeros((num_classes, num_classes), dtype=np.int64)

    def update(self, prediction: np.ndarray, label: np.ndarray) -> None:
        """Add one image: ``prediction`` and ``label`` are same-shape integer class maps.

        Label pixels equal to the ignore index, or outside ``0 .. num_classes-1``
        (never present in the converted benchmarks), are not counted.
        """
        prediction = np.asarray(prediction)
        label = np.asarray(label)
        if prediction.shape != label.shape:
            raise ValueError(f"prediction shape {prediction.shape} differs from label shape {label.shape}")
        counted = (label != self.ignore_index) & (label >= 0) & (label < self.num_classes)
        predicted = prediction[counted].astype(np.int64)
        if predicted.size and (predicted.min() < 0 or predicted.max() >= self.num_classes):
            raise ValueError(
                f"predictions must be class indices 0..{self.num_classes - 1}, "
                f"got values in [{predicted.min()}, {predicted.max()}]"
            )
        pairs = label[counted].astype(np.int64) * self.num_classes + predicted
        self.matrix += np.bincount(pairs, minlength=self.num_classes**2).reshape(
            self.num_classes, self.num_classes
        )

    def scores(self) -> SegmentationScores:
        """IoU, accuracy and their NaN-aware means from the counts so far."""
        return scores_from_confusion(self.matrix)


def scores_from_confusion(matrix: np.ndarray) -> SegmentationScores:
    """Scores of a confusion matrix ``matrix[ground_truth, prediction]``."""
    matrix = np.asarray(matrix, dtype=np.float64)
    intersection = np.diag(matrix)
    labelled = matrix.sum(axis=1)
    predicted = matrix.sum(axis=0)
    union = labelled + predicted - intersection
    with np.errstate(invalid="ignore", divide="ignore"):
        iou = np.where(union > 0, intersection / union, np.nan)
        accuracy = np.where(labelled > 0, intersection / labelled, np.nan)
    total = labelled.sum()
    return SegmentationScores(
        iou=iou,
        accuracy=accuracy,
        mean_iou=_nanmean(iou),
        mean_accuracy=_nanmean(accuracy),
        pixel_accuracy=float(intersection.sum() / total) if total > 0 else float("nan"),
    )


def _nanmean(values: np.ndarray) -> float:
    defined = values[~np.isnan(values)]
    return float(defined.mean()) if defined.size else float("nan")
