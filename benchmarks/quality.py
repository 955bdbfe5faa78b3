"""How well a method finds the demo concepts: the quality table on held-out scenes.

Every number goes through the engine exactly as a user's run does (``encode`` then
``EncodedImage.segment``), on scenes whose seeds training never used
(:data:`EVAL_SEED_START` onwards; training uses ``0 .. scenes - 1``).

- **semantic mIoU**: the engine's semantic map against the ground-truth label map,
  intersections and unions summed over all scenes, averaged over the 11 classes
  (background and the vocabulary). Two settings: *present prompts given* (min-max,
  measures localization only) and *all prompts, calibrated* (the whole vocabulary asked
  of every scene; measures presence and localization together).
- **mask IoU**: a present concept's Otsu mask (min-max) against its ground truth.
- **pointing game**: whether the hottest pixel of a present concept's heatmap lies on
  that concept (mask grown by 2 px). Chance is the mean share of the image it covers.
- **presence AUROC**: the image-level presence score of present versus absent concepts.
- **false-positive area**: the share of the image an *absent* concept's mask covers,
  in min-max (Otsu) and calibrated (0.5) score modes.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
from scipy import ndimage

from napari_gem.demo.model import load_model, segment_options
from napari_gem.demo.scenes import EVAL_SEED_START, VOCABULARY, scene
from napari_gem.engine.encoded import encode
from napari_gem.engine.families.clip.methods import method_names

COLUMNS = (
    ("semantic mIoU (present given)", "miou_present"),
    ("semantic mIoU (all prompts, calibrated)", "miou_calibrated"),
    ("mask IoU", "mask_iou"),
    ("pointing game", "pointing"),
    ("presence AUROC", "auroc"),
    ("absent FP area, min-max", "fp_minmax"),
    ("absent FP area, calibrated", "fp_calibrated"),
)


def load_method(method: str, **options):
    """The demo model with a dense method by name (see ``napari_gem.list_methods()``)."""
    return load_model(method, **options)


@dataclass
class _Tally:
    classes: int = len(VOCABULARY) + 1
    present_inter: np.ndarray = field(default_factory=lambda: np.zeros(len(VOCABULARY) + 1))
    present_union: np.ndarray = field(default_factory=lambda: np.zeros(len(VOCABULARY) + 1))
    all_inter: np.ndarray = field(default_factory=lambda: np.zeros(len(VOCABULARY) + 1))
    all_union: np.ndarray = field(default_factory=lambda: np.zeros(len(VOCABULARY) + 1))
    mask_iou: list = field(default_factory=list)
    pointing: list = field(default_factory=list)
    chance: list = field(default_factory=list)
    presence_present: list = field(default_factory=list)
    presence_absent: list = field(default_factory=list)
    fp_minmax: list = field(default_factory=list)
    fp_calibrated: list = field(default_factory=list)


def ground_truth_labels(masks: dict[str, np.ndarray], shape: tuple[int, int]) -> np.ndarray:
    """Label map: 0 background, ``i + 1`` for concept ``VOCABULARY[i]``."""
    labels = np.zeros(shape, dtype=np.int32)
    for concept, mask in masks.items():
        labels[mask] = VOCABULARY.index(concept) + 1
    return labels


def _accumulate_semantic(inter, union, predicted, truth, class_of_label) -> None:
    predicted = class_of_label[predicted]
    for cls in range(len(inter)):
        p, t = predicted == cls, truth == cls
        inter[cls] += np.logical_and(p, t).sum()
        union[cls] += np.logical_or(p, t).sum()


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    union = np.logical_or(a, b).sum()
    return float(np.logical_and(a, b).sum() / union) if union else 1.0


def auroc(positive: Sequence[float], negative: Sequence[float]) -> float:
    """Area under the ROC curve (Mann-Whitney U with ties counted half)."""
    pos, neg = np.asarray(positive, float), np.asarray(negative, float)
    if not len(pos) or not len(neg):
        return float("nan")
    greater = (pos[:, None] > neg[None]).sum() + 0.5 * (pos[:, None] == neg[None]).sum()
    return float(greater / (len(pos) * len(neg)))


def _score_scene(model, image, masks, tally: _Tally, options) -> None:
    truth = ground_truth_labels(masks, image.shape[:2])
    encoded = encode(image, model, options)
    present = [c for c in VOCABULARY if c in masks]

    given = encoded.segment(present, score_mode="minmax")
    to_class = np.array([0] + [VOCABULARY.index(c) + 1 for c in present])
    _accumulate_semantic(tally.present_inter, tally.present_union, given.semantic, truth, to_class)
    for index, concept in enumerate(present):
        tally.mask_iou.append(_iou(given.masks[index], masks[concept]))
        grown = ndimage.binary_dilation(masks[concept], iterations=2)
        peak = np.unravel_index(np.argmax(given.heatmaps[index]), grown.shape)
        tally.pointing.append(bool(grown[peak]))
        tally.chance.append(float(grown.mean()))

    everything = encoded.segment(list(VOCABULARY), score_mode="calibrated")
    to_class = np.arange(len(VOCABULARY) + 1)
    _accumulate_semantic(tally.all_inter, tally.all_union, everything.semantic, truth, to_class)
    minmax = encoded.segment(list(VOCABULARY), score_mode="minmax")
    for index, concept in enumerate(VOCABULARY):
        if concept in masks:
            tally.presence_present.append(float(everything.presence[index]))
        else:
            tally.presence_absent.append(float(everything.presence[index]))
            tally.fp_minmax.append(float(minmax.masks[index].mean()))
            tally.fp_calibrated.append(float(everything.masks[index].mean()))


def _mean_iou(inter: np.ndarray, union: np.ndarray) -> float:
    seen = union > 0
    return float((inter[seen] / union[seen]).mean())


def evaluate_method(
    method: str, seeds: Sequence[int], *, input_size: int | None = None,
    loader: Callable[[str], object] = load_method,
) -> dict[str, float]:
    """The quality numbers of one method over the scenes of ``seeds``."""
    model = loader(method)
    options = segment_options() if input_size is None else segment_options(input_size=input_size)
    tally = _Tally()
    for seed in seeds:
        image, masks = scene(seed)
        _score_scene(model, image, masks, tally, options)
    return {
        "miou_present": _mean_iou(tally.present_inter, tally.present_union),
        "miou_calibrated": _mean_iou(tally.all_inter, tally.all_union),
        "mask_iou": float(np.mean(tally.mask_iou)),
        "pointing": float(np.mean(tally.pointing)),
        "pointing_chance": float(np.mean(tally.chance)),
        "auroc": auroc(tally.presence_present, tally.presence_absent),
        "fp_minmax": float(np.mean(tally.fp_minmax)),
        "fp_calibrated": float(np.mean(tally.fp_calibrated)),
    }


def evaluate(
    methods: Sequence[str] = method_names(), scenes: int = 100, *, input_size: int | None = None,
    loader: Callable[[str], object] = load_method,
) -> dict[str, dict[str, float]]:
    """Quality numbers per method on ``scenes`` held-out scenes."""
    seeds = range(EVAL_SEED_START, EVAL_SEED_START + scenes)
    return {m: evaluate_method(m, seeds, input_size=input_size, loader=loader) for m in methods}


def format_table(results: dict[str, dict[str, float]], scenes: int) -> str:
    """A Markdown table of :func:`evaluate`'s results, with the chance level of pointing."""
    header = "| method | " + " | ".join(name for name, _ in COLUMNS) + " |"
    lines = [header, "|" + "---|" * (len(COLUMNS) + 1)]
    for method, numbers in results.items():
        cells = " | ".join(f"{numbers[key]:.3f}" for _, key in COLUMNS)
        lines.append(f"| {method} | {cells} |")
    chance = next(iter(results.values()))["pointing_chance"] if results else float("nan")
    lines.append("")
    lines.append(f"{scenes} held-out scenes (seeds {EVAL_SEED_START}..{EVAL_SEED_START + scenes - 1}); "
                 f"pointing game at chance: {chance:.3f}; presence AUROC at chance: 0.500.")
    return "\n".join(lines)
