"""A simulated annotator: how many strokes until a prompt's mask is right?

The click-simulation protocol of interactive segmentation: each round one stroke, a disk
of :data:`STROKE_RADIUS` px at the interior point (farthest from the border) of the largest
error region of the current mask; positive for a missed region, negative for a false one.
Reported: mean IoU after :data:`REPORTED_STROKES` strokes, NoC@85 and NoC@90 (strokes to
reach that IoU, :data:`MAX_STROKES` when never reached), and the time per refinement.

Settings compared in the same run (see :data:`SETTINGS`):

- ``text + strokes``: the refinement as users get it (features, text prior, filters), with
  the object stage's labellers (nearest example, classifier), without the text prior as
  the objects' soft labels, and with the object stage off;
- ``strokes without text, objects``: features and filters with the object stage;
- ``strokes without text``: features and filters, no prior, starting from an empty mask
  (roughly what ilastik and napari-convpaint offer);
- ``filters only``: the multiscale filters alone, starting from an empty mask.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np
from scipy import ndimage

STROKE_RADIUS = 3
MAX_STROKES = 20
REPORTED_STROKES = (0, 1, 3, 5, 10)
NOC_LEVELS = (0.85, 0.90)


@dataclass(frozen=True)
class Setting:
    """One way of refining: the classifier's inputs, whether the text mask is the start, the object stage.

    ``objects``: the object stage's labeller (``off``: pixels only); ``object_prior``:
    whether unlabelled objects are soft examples of the text prior.
    """

    name: str
    inputs: tuple[str, ...]
    starts_from_text: bool
    objects: str = "off"
    object_prior: bool = True


TEXT_INPUTS = ("features", "prior", "filters")
#: The rows of ``refine-eval``: the refinement as users get it, its variants, and the baselines.
SETTINGS = (
    Setting("text + strokes, objects: nearest example", TEXT_INPUTS, True, "nearest"),
    Setting("text + strokes, objects: classifier", TEXT_INPUTS, True, "classifier"),
    Setting("text + strokes, objects without the text prior", TEXT_INPUTS, True, "nearest", False),
    Setting("text + strokes, object stage off", TEXT_INPUTS, True),
    Setting("strokes without text, objects: nearest example", ("features", "filters"), False, "nearest"),
    Setting("strokes without text", ("features", "filters"), False),
    Setting("filters only", ("filters",), False),
)


@dataclass(frozen=True)
class Backbone:
    """A model whose dense features and text prior the annotator refines: ``load()`` builds it."""

    name: str
    description: str
    load: Callable[[], object]


def _demo_model():
    from ..demo import load_model

    return load_model()


def _random_vit_b16():
    import torch

    from ..engine.loading import load_model

    torch.manual_seed(0)  # the same random weights every run
    return load_model("ViT-B-16", None, device="cpu")


#: The backbones ``refine-eval`` measures on the same scenes (issue 16, item 5).
BACKBONES = {
    backbone.name: backbone for backbone in (
        Backbone("demo", "the packaged demo CLIP (GEM), trained on generated micrographs", _demo_model),
        Backbone("vit-b-16-random", "open_clip ViT-B/16 (GEM) with random weights (pretrained=None): "
                 "its dense features are untrained, its text prior is noise", _random_vit_b16),
    )
}


@dataclass
class Curve:
    """IoU after each stroke (index 0: before any) and the seconds each refinement took."""

    ious: list[float] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)


def iou(mask: np.ndarray, truth: np.ndarray) -> float:
    union = np.logical_or(mask, truth).sum()
    return float(np.logical_and(mask, truth).sum() / union) if union else 1.0


def largest_region(region: np.ndarray) -> np.ndarray:
    """The largest connected component of ``region`` (empty if none)."""
    labels, count = ndimage.label(region)
    if not count:
        return np.zeros_like(region, dtype=bool)
    sizes = np.bincount(labels.ravel())[1:]
    return labels == int(np.argmax(sizes)) + 1


def interior_point(region: np.ndarray) -> tuple[int, int]:
    """The pixel of ``region`` farthest from its border (the image edge counts as border)."""
    distance = ndimage.distance_transform_edt(np.pad(region, 1))[1:-1, 1:-1]
    return tuple(int(v) for v in np.unravel_index(np.argmax(distance), region.shape))


def disk(shape: tuple[int, int], centre: tuple[int, int], radius: int = STROKE_RADIUS) -> np.ndarray:
    yy, xx = np.ogrid[: shape[0], : shape[1]]
    return (yy - centre[0]) ** 2 + (xx - centre[1]) ** 2 <= radius**2


def next_stroke(mask: np.ndarray, truth: np.ndarray) -> tuple[bool, np.ndarray] | None:
    """``(is_positive, stroke)`` at the largest error region, or ``None`` when the mask is exact."""
    missed = largest_region(truth & ~mask)
    false = largest_region(mask & ~truth)
    if not missed.any() and not false.any():
        return None
    positive = missed.sum() >= false.sum()
    region = missed if positive else false
    return positive, disk(mask.shape, interior_point(region)) & (truth if positive else ~truth)


def annotate(encoded, prompt: str, truth: np.ndarray, setting: Setting,
             strokes: int = MAX_STROKES) -> Curve:
    """Simulate ``strokes`` rounds of corrections of ``prompt``'s mask on ``encoded``."""
    curve = Curve()
    positive = np.zeros(truth.shape, dtype=bool)
    negative = np.zeros(truth.shape, dtype=bool)
    mask = encoded.segment([prompt]).masks[0] if setting.starts_from_text else np.zeros_like(positive)
    curve.ious.append(iou(mask, truth))
    for _ in range(strokes):
        stroke = next_stroke(mask, truth)
        if stroke is None:
            curve.ious.append(1.0)
            continue
        is_positive, pixels = stroke
        if is_positive:
            positive |= pixels & ~negative
        else:
            negative |= pixels & ~positive
        started = time.perf_counter()
        result = encoded.refine(prompt, positive=positive, negative=negative, inputs=setting.inputs,
                                objects=setting.objects, object_prior=setting.object_prior)
        curve.seconds.append(time.perf_counter() - started)
        mask = result.masks[0]
        curve.ious.append(iou(mask, truth))
    return curve


def strokes_to_reach(ious: Sequence[float], level: float, cap: int = MAX_STROKES) -> int:
    """NoC: the first stroke count whose IoU reaches ``level`` (``cap`` if never)."""
    for count, value in enumerate(ious[: cap + 1]):
        if value >= level:
            return count
    return cap


def summarize(curves: Iterable[Curve]) -> dict[str, float]:
    """Mean IoU at the reported stroke counts, mean NoC, and the median refinement time."""
    curves = list(curves)
    summary = {f"iou@{n}": float(np.mean([c.ious[min(n, len(c.ious) - 1)] for c in curves]))
               for n in REPORTED_STROKES}
    for level in NOC_LEVELS:
        summary[f"noc@{round(level * 100)}"] = float(
            np.mean([strokes_to_reach(c.ious, level) for c in curves]))
    seconds = [s for c in curves for s in c.seconds]
    summary["ms"] = 1000 * float(np.median(seconds)) if seconds else float("nan")
    return summary


def demo_cases(scenes: int, start: int | None = None, instances: tuple[int, int] | None = None):
    """``(seed, image, concept, truth)`` of every present concept in held-out demo scenes.

    ``instances``: objects per concept (the scenes' own default when None).
    """
    from ..demo import scene
    from ..demo.quality import EVAL_SEED_START

    first = EVAL_SEED_START if start is None else start
    crowd = {} if instances is None else {"instances": tuple(instances)}
    for seed in range(first, first + scenes):
        image, masks = scene(seed, **crowd)
        for concept in sorted(masks):
            yield seed, image, concept, masks[concept]


def evaluate(model, options, scenes: int = 20, settings: Sequence[Setting] = SETTINGS,
             strokes: int = MAX_STROKES, start: int | None = None,
             instances: tuple[int, int] | None = None) -> dict[str, dict[str, float]]:
    """The simulated annotator on held-out demo scenes: a summary per setting.

    ``instances``: objects per concept of the scenes (e.g. ``(5, 15)``; default: the scenes' own).
    """
    from ..engine.encoded import encode

    curves: dict[str, list[Curve]] = {s.name: [] for s in settings}
    encoded_seed, encoded = None, None
    for seed, image, concept, truth in demo_cases(scenes, start, instances):
        if seed != encoded_seed:
            encoded_seed, encoded = seed, encode(image, model, options)
        for setting in settings:
            curves[setting.name].append(annotate(encoded, concept, truth, setting, strokes))
    return {name: summarize(found) for name, found in curves.items()}


def refinement_time(model, options, side: int = 1024, repeats: int = 5,
                    **refine_options) -> dict[str, float]:
    """Seconds of one refinement of a ``side``² demo scene after encoding (first and median later).

    ``refine_options``: :class:`~napari_gem.engine.object_labels.RefineOptions` fields (``objects``).
    """
    from ..demo import scene
    from ..demo.quality import EVAL_SEED_START
    from ..engine.encoded import encode

    image, masks = scene(EVAL_SEED_START, side)
    concept = sorted(masks)[0]
    encoded = encode(image, model, options)
    truth = masks[concept]
    positive = disk(truth.shape, interior_point(truth))
    negative = disk(truth.shape, interior_point(~truth)) & ~positive
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        encoded.refine(concept, positive=positive, negative=negative, **refine_options)
        times.append(time.perf_counter() - started)
    return {"first": times[0], "median_later": float(np.median(times[1:]))}


COLUMNS = ("iou@0", "iou@1", "iou@3", "iou@5", "iou@10", "noc@85", "noc@90", "ms")


def format_table(results: dict[str, dict[str, float]]) -> str:
    """A Markdown table of :func:`evaluate`'s summaries."""
    header = "| setting | IoU@0 | IoU@1 | IoU@3 | IoU@5 | IoU@10 | NoC@85 | NoC@90 | ms / refinement |"
    lines = [header, "|---|" + "---|" * len(COLUMNS)]
    for name, numbers in results.items():
        cells = [f"{numbers[key]:.3f}" for key in COLUMNS[:5]]
        cells += [f"{numbers[key]:.2f}" for key in COLUMNS[5:7]] + [f"{numbers['ms']:.0f}"]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def exemplar_comparison(model, options, scenes: int = 20, start: int | None = None) -> dict[str, float]:
    """Mean mask IoU of text alone, one example box alone, and both (mean of the min-max maps).

    The box is the bounding box of the concept's largest object, as a user would draw it.
    """
    from ..engine.encoded import encode

    scores: dict[str, list[float]] = {"text": [], "example box": [], "text + example box": []}
    encoded_seed, encoded = None, None
    for seed, image, concept, truth in demo_cases(scenes, start):
        if seed != encoded_seed:
            encoded_seed, encoded = seed, encode(image, model, options)
        ys, xs = np.nonzero(largest_region(truth))
        box = (ys.min(), xs.min(), ys.max() + 1, xs.max() + 1)
        scores["text"].append(iou(encoded.segment([concept]).masks[0], truth))
        alone = encoded.refine(None, exemplars={"@examples": [box]})
        scores["example box"].append(iou(alone.masks[0], truth))
        combined = encoded.refine(concept, exemplars={concept: [box]})
        scores["text + example box"].append(iou(combined.masks[0], truth))
    return {name: float(np.mean(values)) for name, values in scores.items()}
