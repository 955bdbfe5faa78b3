"""Benchmark evaluation of the dense methods (GEM, GCLIP, ...) under the training-free
segmentation protocols.

``evaluate("voc20", "/data/VOCdevkit/VOC2012", model)`` scores a model on a dataset in
its standard layout; ``napari-gem evaluate`` is the command-line form. See
``docs/evaluation.md``.
"""

from .class_names import ClassNames, dataset_class_names, parse_class_names, read_class_names
from .datasets import (
    DATASETS,
    IGNORE_INDEX,
    DatasetLayoutError,
    DatasetSpec,
    SegmentationDataset,
    dataset_spec,
    open_dataset,
)
from .metrics import ConfusionMatrix, SegmentationScores, scores_from_confusion
from .predictor import DenseScorer, ModelScorer
from .protocol import SETTINGS, ProtocolSettings, protocol_for
from .run import EvaluationResult, evaluate, format_table, write_results

__all__ = [
    "DATASETS",
    "IGNORE_INDEX",
    "SETTINGS",
    "ClassNames",
    "ConfusionMatrix",
    "DatasetLayoutError",
    "DatasetSpec",
    "DenseScorer",
    "EvaluationResult",
    "ModelScorer",
    "ProtocolSettings",
    "SegmentationDataset",
    "SegmentationScores",
    "dataset_class_names",
    "dataset_spec",
    "evaluate",
    "format_table",
    "open_dataset",
    "parse_class_names",
    "protocol_for",
    "read_class_names",
    "scores_from_confusion",
    "write_results",
]


def __getattr__(name: str):
    if name == "GemScorer":  # deprecated; the predictor module says so
        from . import predictor

        return predictor.GemScorer
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
