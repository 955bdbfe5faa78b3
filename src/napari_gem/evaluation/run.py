"""``evaluate``: run a model over a benchmark under a protocol and score it."""

from __future__ import annotations

import csv
import json
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from ..engine.software import software_record
from .class_names import ClassNames, read_class_names
from .datasets import IGNORE_INDEX, DatasetSpec, open_dataset
from .metrics import ConfusionMatrix
from .predictor import DenseScorer, as_scorer
from .protocol import (
    ProtocolSettings,
    classify,
    dense_logits,
    prepare_pixels,
    protocol_for,
    refine_logits,
    resize_logits,
)

Progress = Callable[[int, int], None]
"""Called after each image with (images done, images in all)."""


@dataclass
class EvaluationResult:
    """Scores of one evaluation run. IoUs and accuracies are percentages; NaN marks a
    class that appears neither in the labels nor in the predictions."""

    dataset: str
    setting: str
    class_names: list[str]
    iou: list[float]
    accuracy: list[float]
    miou: float
    macc: float
    aacc: float
    num_images: int
    protocol: dict
    model: dict = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def per_class_iou(self) -> dict[str, float]:
        """Class name -> IoU (percent)."""
        return dict(zip(self.class_names, self.iou, strict=True))

    def to_dict(self) -> dict:
        """JSON-ready values (NaN becomes ``None``)."""
        return {
            "dataset": self.dataset,
            "setting": self.setting,
            "num_images": self.num_images,
            "miou": _finite_or_none(self.miou),
            "macc": _finite_or_none(self.macc),
            "aacc": _finite_or_none(self.aacc),
            "per_class": [
                {"class": name, "iou": _finite_or_none(iou), "accuracy": _finite_or_none(acc)}
                for name, iou, acc in zip(self.class_names, self.iou, self.accuracy, strict=True)
            ],
            "protocol": self.protocol,
            "model": self.model,
            "seconds": round(self.seconds, 3),
            "software": software_record(),
        }


def _finite_or_none(value: float) -> float | None:
    return None if math.isnan(value) else round(float(value), 4)


def predict_label_map(
    image: np.ndarray,
    output_shape: tuple[int, int],
    scorer: DenseScorer,
    text: torch.Tensor,
    prompt_class: torch.Tensor,
    num_classes: int,
    settings: ProtocolSettings,
) -> np.ndarray:
    """The predicted class map ``output_shape`` (int64) of an RGB uint8 image."""
    pixels = prepare_pixels(image, settings, scorer.device)
    logits = dense_logits(pixels, lambda crops: scorer.crop_similarity(crops, text), settings)
    logits = refine_logits(resize_logits(logits, output_shape), pixels, settings)
    if settings.background_logit is not None:  # a constant channel instead of class 0's prompts
        logits[prompt_class == 0] = settings.background_logit
    scale = settings.logit_scale if settings.logit_scale is not None else scorer.logit_scale
    prediction = classify(logits, prompt_class, num_classes, scale, settings.prob_threshold,
                          area_threshold=settings.area_threshold)
    return prediction.cpu().numpy()


def evaluate(
    dataset: str,
    root: str | Path,
    model,
    *,
    setting: str = "common",
    limit: int | None = None,
    progress: Progress | None = None,
    out: str | Path | None = None,
    protocol: ProtocolSettings | None = None,
    class_names: ClassNames | str | Path | None = None,
) -> EvaluationResult:
    """Evaluate ``model`` on the validation split of ``dataset`` stored under ``root``.

    ``model`` is a :class:`~napari_gem.GroundingModel` (or any :class:`DenseScorer`).
    ``setting`` picks the protocol (``common`` or ``paper``, see
    :mod:`napari_gem.evaluation.protocol`); ``protocol`` replaces it entirely.
    ``limit`` scores only the first images. ``class_names`` replaces the shipped
    prompt names (a :class:`ClassNames` or a name-list file). With ``out``, the result
    is written as JSON and CSV (see :func:`write_results`).

    Raises :class:`~napari_gem.evaluation.datasets.DatasetLayoutError` when ``root``
    does not hold the dataset in its standard layout.
    """
    if limit is not None and limit < 1:
        raise ValueError(f"limit must be a positive number of images, got {limit}")
    data = open_dataset(dataset, root)
    settings = protocol if protocol is not None else protocol_for(dataset, setting)
    names = resolve_class_names(data.spec, class_names, synonyms=settings.synonyms)
    scorer = as_scorer(model)
    samples = data.samples[:limit] if limit is not None else data.samples

    started = time.perf_counter()
    confusion = ConfusionMatrix(data.spec.num_classes, IGNORE_INDEX)
    with torch.inference_mode():
        text = scorer.embed_prompts(names.prompts, settings.templates)
        prompt_class = torch.tensor(names.prompt_class, device=text.device)
        for done, sample in enumerate(samples, start=1):
            image, label = data.load(sample)
            prediction = predict_label_map(
                image, label.shape, scorer, text, prompt_class, names.num_classes, settings
            )
            confusion.update(prediction, label)
            if progress is not None:
                progress(done, len(samples))

    scores = confusion.scores()
    describe = getattr(scorer, "describe", None)
    result = EvaluationResult(
        dataset=dataset,
        setting=settings.setting,
        class_names=list(names.display),
        iou=[float(value) * 100 for value in scores.iou],
        accuracy=[float(value) * 100 for value in scores.accuracy],
        miou=scores.mean_iou * 100,
        macc=scores.mean_accuracy * 100,
        aacc=scores.pixel_accuracy * 100,
        num_images=len(samples),
        protocol=settings.to_dict(),
        model=describe() if callable(describe) else {},
        seconds=time.perf_counter() - started,
    )
    if out is not None:
        write_results(result, out)
    return result


def resolve_class_names(spec: DatasetSpec, override: ClassNames | str | Path | None = None, *,
                        synonyms: bool = True) -> ClassNames:
    """The shipped class names of ``spec``, or ``override`` (names or a name-list file)
    after checking it has one line per class. ``synonyms=False`` keeps one name per
    shipped class, as ClearCLIP's name files (the background class named "background")."""
    if override is None:
        names = spec.class_names()
        return names if synonyms else names.without_synonyms(background_first=spec.has_background)
    names = (
        override
        if isinstance(override, ClassNames)
        else read_class_names(override, background_first=spec.has_background)
    )
    if names.num_classes != spec.num_classes:
        raise ValueError(
            f"{spec.name} has {spec.num_classes} classes but the class-name list has "
            f"{names.num_classes} lines"
        )
    return names


def result_paths(out: str | Path) -> tuple[Path, Path]:
    """The JSON and CSV files written for ``out`` (its suffix replaced by .json / .csv)."""
    out = Path(out)
    if out.suffix.lower() not in (".json", ".csv"):
        out = out.with_name(out.name + ".json")
    return out.with_suffix(".json"), out.with_suffix(".csv")


def write_results(result: EvaluationResult, out: str | Path) -> tuple[Path, Path]:
    """Write ``result`` next to ``out`` as JSON (everything) and CSV (one row per class,
    then a ``mean`` row); returns the two paths. Missing folders are created."""
    json_path, csv_path = result_paths(out)
    json_path.parent.mkdir(parents=True, exist_ok=True)
    json_path.write_text(json.dumps(result.to_dict(), indent=2) + "\n", encoding="utf-8")
    with csv_path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["class", "iou", "accuracy"])
        for name, iou, accuracy in zip(result.class_names, result.iou, result.accuracy, strict=True):
            writer.writerow([name, _csv_number(iou), _csv_number(accuracy)])
        writer.writerow(["mean", _csv_number(result.miou), _csv_number(result.macc)])
    return json_path, csv_path


def _csv_number(value: float) -> str:
    return "" if math.isnan(value) else f"{value:.2f}"


def format_table(result: EvaluationResult) -> str:
    """Per-class IoU / accuracy and the means as a plain-text table."""
    width = max(len("class"), *(len(name) for name in result.class_names))

    def number(value: float) -> str:
        return f"{'n/a' if math.isnan(value) else f'{value:.2f}':>8}"

    lines = [f"{'class':<{width}}  {'IoU':>8}  {'Acc':>8}", "-" * (width + 20)]
    for name, iou, accuracy in zip(result.class_names, result.iou, result.accuracy, strict=True):
        lines.append(f"{name:<{width}}  {number(iou)}  {number(accuracy)}")
    lines.append("-" * (width + 20))
    lines.append(f"{'mean':<{width}}  {number(result.miou)}  {number(result.macc)}")
    lines.append(
        f"{result.dataset} ({result.setting} setting, {result.num_images} images): "
        f"mIoU {result.miou:.2f}  mAcc {result.macc:.2f}  aAcc {result.aacc:.2f}"
    )
    return "\n".join(lines)
