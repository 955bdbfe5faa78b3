"""How many objects: the object-count error on generated scenes whose objects touch.

:func:`touching_scene` draws a demo micrograph whose objects come in clusters that touch
(each object placed about one object diameter from another of its cluster), with the
visible pixels of every object. :func:`count_errors` runs the demo model on such scenes
and compares the number of objects each way of numbering a mask finds with the truth,
for the model's mask and for the ground-truth mask (which leaves only the splitting's
errors). Scene seeds start at :data:`COUNT_SEED_START`, far from training (0-999), the
quality table (1,000,000 on) and the defaults' selection set (:data:`SELECTION_SEED_START`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from scipy import ndimage

from napari_gem.demo.model import load_model, segment_options
from napari_gem.demo.scenes import SCENE_SIZE, render_instances
from napari_gem.engine.encoded import encode
from napari_gem.engine.instances import components, split_touching
from napari_gem.engine.masks import remove_small_objects

#: First seed of the reported count scenes; the watershed's defaults were chosen on the
#: scenes from :data:`SELECTION_SEED_START`.
COUNT_SEED_START = 2_000_000
SELECTION_SEED_START = 2_100_000
#: Concepts that come as countable objects, with the radius (px) their neighbours are placed at.
COUNTABLE: dict[str, float] = {
    "nucleus": 11.0,
    "rod-shaped bacterium": 6.0,
    "bright spot": 4.0,
    "ring": 10.5,
    "crystal": 9.0,
    "dividing cell": 13.0,
    "diatom": 8.0,
    "star-shaped cell": 9.0,
}
#: Objects (and mask pieces) smaller than this many visible pixels are not counted.
MIN_AREA = 10


def touching_scene(seed: int, size: int = SCENE_SIZE) -> tuple[np.ndarray, dict[str, np.ndarray],
                                                                 dict[str, np.ndarray]]:
    """A micrograph whose objects touch: ``(image, masks, objects)``.

    One or two countable concepts, each in one or two clusters of two or three objects
    that touch or slightly overlap, plus up to one object on its own. ``masks`` maps each
    concept to its visible pixels, ``objects`` maps it to int32 labels of its objects
    (visible pixels, objects under :data:`MIN_AREA` pixels dropped, numbered 1..n).
    """
    rng = np.random.default_rng([seed, size, 7])
    names = list(COUNTABLE)
    chosen = [names[i] for i in rng.choice(len(names), size=int(rng.integers(1, 3)), replace=False)]
    placements: list[tuple[str, float, float]] = []
    for concept in chosen:
        radius = COUNTABLE[concept]
        for _ in range(int(rng.integers(1, 3))):
            placements += _cluster(concept, radius, int(rng.integers(2, 4)), rng, size)
        if rng.random() < 0.5:
            placements.append((concept, *rng.uniform(radius, size - radius, 2)))
    order = rng.permutation(len(placements))
    placements = [placements[i] for i in order]
    image, masks, numbered = render_instances(placements, rng, (size, size))
    objects = {concept: _objects_of(numbered, placements, concept) for concept in masks}
    return image, masks, objects


def _cluster(concept: str, radius: float, count: int, rng: np.random.Generator,
             size: int) -> list[tuple[str, float, float]]:
    """``count`` objects, each about a diameter (0.8-1.0 of it) from an earlier one."""
    margin = radius + 2
    centres = [rng.uniform(margin + 2 * radius, size - margin - 2 * radius, 2)]
    while len(centres) < count:
        anchor = centres[int(rng.integers(len(centres)))]
        angle = rng.uniform(0, 2 * np.pi)
        step = 2 * radius * rng.uniform(0.8, 1.0)
        centre = np.clip(anchor + step * np.array([np.sin(angle), np.cos(angle)]), margin, size - margin)
        centres.append(centre)
    return [(concept, float(r), float(c)) for r, c in centres]


def _objects_of(numbered: np.ndarray, placements, concept: str) -> np.ndarray:
    mine = np.array([0] + [c == concept for c, _, _ in placements], dtype=bool)
    ids = np.where(mine[numbered], numbered, 0)
    areas = np.bincount(ids.ravel(), minlength=len(placements) + 1)
    keep = areas >= MIN_AREA
    keep[0] = False
    kept = np.flatnonzero(keep)
    renumber = np.zeros(len(areas), dtype=np.int32)
    renumber[kept] = np.arange(1, len(kept) + 1)
    return renumber[ids]


def touching_share(objects: np.ndarray) -> float:
    """The share of objects whose region in the concept's mask holds another object too."""
    regions = ndimage.label(objects > 0, structure=np.ones((3, 3)))[0]
    ids = np.unique(objects[objects > 0])
    if not ids.size:
        return 0.0
    pairs = np.unique(np.stack([objects[objects > 0], regions[objects > 0]]), axis=1)
    per_region = np.bincount(pairs[1])
    region_of = dict(zip(pairs[0], pairs[1], strict=True))
    return float(np.mean([per_region[region_of[i]] > 1 for i in ids]))


#: The ways of numbering a mask that are compared: labels from (mask, heatmap, cell).
Numbering = Callable[[np.ndarray, np.ndarray, float], np.ndarray]
NUMBERINGS: dict[str, Numbering] = {
    "connected components": lambda m, h, cell: components(m),
    "watershed (the default: heatmap x distance)": lambda m, h, cell: split_touching(m, h, cell=cell),
    "watershed, heatmap alone": lambda m, h, cell: split_touching(m, h, cell=cell, landscape="heatmap"),
}
#: Matched objects need an IoU above this (above 0.5 a match is unique).
MATCH_IOU = 0.5


def matches(truth: np.ndarray, predicted: np.ndarray) -> int:
    """How many true objects one predicted object covers with IoU above :data:`MATCH_IOU`."""
    both = (truth > 0) & (predicted > 0)
    if not both.any():
        return 0
    pairs, overlap = np.unique(np.stack([truth[both], predicted[both]]), axis=1, return_counts=True)
    true_area = np.bincount(truth.ravel())
    predicted_area = np.bincount(predicted.ravel())
    union = true_area[pairs[0]] + predicted_area[pairs[1]] - overlap
    return int((overlap / union > MATCH_IOU).sum())


@dataclass
class CountTally:
    """Per row: predicted counts and matches, one per (scene, concept); the true counts."""

    truth: list[int] = field(default_factory=list)
    predicted: dict[str, list[int]] = field(default_factory=dict)
    matched: dict[str, list[int]] = field(default_factory=dict)
    touching: list[float] = field(default_factory=list)

    def add(self, row: str, truth: np.ndarray, labels: np.ndarray) -> None:
        self.predicted.setdefault(row, []).append(_count(labels))
        self.matched.setdefault(row, []).append(matches(truth, labels))

    def summary(self) -> dict[str, dict[str, float]]:
        """Per row: mean absolute count error, relative error (sum |error| / sum truth), mean
        signed error, and the object F1 at IoU 0.5 (matches against true and predicted objects)."""
        truth = np.asarray(self.truth, dtype=float)
        rows = {}
        for row, predicted in self.predicted.items():
            predicted = np.asarray(predicted, dtype=float)
            error = predicted - truth
            rows[row] = {"mae": float(np.abs(error).mean()),
                         "relative": float(np.abs(error).sum() / truth.sum()),
                         "bias": float(error.mean()),
                         "f1": float(2 * np.sum(self.matched[row]) / (predicted.sum() + truth.sum()))}
        return rows


def _count(labels: np.ndarray) -> int:
    return int(np.unique(labels[labels > 0]).size)


def score_scene(model, seed: int, options, tally: CountTally,
                numberings: dict[str, Numbering] = NUMBERINGS) -> None:
    """Add one scene's counts: every numbering on the model's mask and on the true mask."""
    image, masks, objects = touching_scene(seed)
    concepts = [c for c in objects if objects[c].any()]
    if not concepts:
        return
    encoded = encode(image, model, options)
    result = encoded.segment(concepts, min_size=MIN_AREA, instances="components")
    cell = result.parameters["heatmap_cell"]
    for index, concept in enumerate(concepts):
        truth = objects[concept]
        tally.truth.append(_count(truth))
        tally.touching.append(touching_share(truth))
        heatmap = result.heatmaps[index]
        truth_mask = remove_small_objects(masks[concept], MIN_AREA)
        for name, numbering in numberings.items():
            tally.add(f"model mask | {name}", truth, numbering(result.masks[index], heatmap, cell))
            tally.add(f"true mask | {name}", truth, numbering(truth_mask, heatmap, cell))
        # Reference: the true mask split at its own distance peaks (a heatmap that peaks at every
        # object's core), to show what better seeds would give.
        distance = ndimage.distance_transform_edt(truth_mask).astype(np.float32)
        tally.add("true mask | watershed, distance transform as the heatmap", truth,
                  split_touching(truth_mask, distance / max(distance.max(), 1.0), cell=cell))


def count_errors(scenes: int = 100, *, start: int = COUNT_SEED_START, method: str = "gem",
                 numberings: dict[str, Numbering] = NUMBERINGS,
                 loader: Callable[[str], object] = load_model) -> tuple[dict[str, dict[str, float]], dict]:
    """Count errors per row on ``scenes`` touching scenes, and facts about the scenes."""
    model = loader(method)
    options = segment_options()
    tally = CountTally()
    for seed in range(start, start + scenes):
        score_scene(model, seed, options, tally, numberings)
    facts = {"cases": len(tally.truth), "objects": int(np.sum(tally.truth)),
             "touching": float(np.mean(tally.touching)) if tally.touching else 0.0,
             "scenes": scenes, "start": start, "method": method}
    return tally.summary(), facts


def format_counts(rows: dict[str, dict[str, float]], facts: dict) -> str:
    """A Markdown table of :func:`count_errors`' rows."""
    lines = ["| mask | objects from | mean abs. count error | relative error | mean signed error "
             "| object F1 (IoU > 0.5) |", "|---|---|---|---|---|---|"]
    for row, numbers in rows.items():
        mask, numbering = row.split(" | ", 1)
        lines.append(f"| {mask} | {numbering} | {numbers['mae']:.2f} | {numbers['relative']:.2f} | "
                     f"{numbers['bias']:+.2f} | {numbers['f1']:.2f} |")
    lines.append("")
    lines.append(f"{facts['scenes']} touching scenes (seeds {facts['start']}.."
                 f"{facts['start'] + facts['scenes'] - 1}), {facts['cases']} (scene, concept) cases, "
                 f"{facts['objects']} objects, {100 * facts['touching']:.0f} % of them touching another; "
                 f"demo model, {facts['method']}.")
    return "\n".join(lines)

