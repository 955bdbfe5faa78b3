"""Examples as prompts ("more like this"): the mean dense feature inside a box.

A box ``(y0, x0, y1, x1)`` in image pixels selects the grid cells it covers; their mean
(centred, normalised) feature is a visual prompt whose cosine similarity with every cell is a map,
like a text prompt's. Several boxes give the mean of their min-max maps.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import torch

from .deprecation import warn_deprecated
from .maps import min_max, upsample

Box = tuple[float, float, float, float]


def check_boxes(boxes: Sequence[Box], image_shape: tuple[int, int]) -> list[tuple[int, int, int, int]]:
    """Boxes as integer ``(y0, x0, y1, x1)`` clipped to the image; a clear error for a bad one."""
    height, width = image_shape
    checked = []
    for box in boxes:
        values = tuple(np.asarray(box, dtype=float).ravel())
        if len(values) != 4:
            raise ValueError(f"an exemplar box is (y0, x0, y1, x1); got {box!r}")
        y0, x0, y1, x1 = (int(round(v)) for v in values)
        y0, y1 = max(0, min(y0, y1)), min(height, max(y0, y1))
        x0, x1 = max(0, min(x0, x1)), min(width, max(x0, x1))
        if y1 <= y0 or x1 <= x0:
            raise ValueError(
                f"the exemplar box {box!r} covers no pixel of the {height} x {width} image"
            )
        checked.append((y0, x0, y1, x1))
    return checked


def box_cells(box: tuple[int, int, int, int], grid_shape: tuple[int, int],
              covered_shape: tuple[int, int]) -> tuple[slice, slice]:
    """The grid cells a pixel box touches (at least one cell)."""
    (gh, gw), (ch, cw) = grid_shape, covered_shape
    y0, x0, y1, x1 = box
    rows = slice(min(gh - 1, y0 * gh // ch), max(1, -(-y1 * gh // ch)))
    cols = slice(min(gw - 1, x0 * gw // cw), max(1, -(-x1 * gw // cw)))
    return rows, cols


def exemplar_grid(features: torch.Tensor, boxes: Sequence[tuple[int, int, int, int]],
                  covered_shape: tuple[int, int]) -> torch.Tensor:
    """Mean of the min-max cosine maps ``[gh, gw]`` of each box's mean feature.

    The image's mean feature is taken off every cell first: what all cells share otherwise
    dominates the cosine (on the demo model, 20 held-out scenes, the example's own objects
    were brighter than the image's mean in 65 % of cases without, 97 % with).
    """
    values = features.float()
    unit = torch.nn.functional.normalize(values - values.reshape(-1, values.shape[-1]).mean(0), dim=-1)
    maps = []
    for box in boxes:
        rows, cols = box_cells(box, tuple(unit.shape[:2]), covered_shape)
        query = torch.nn.functional.normalize(unit[rows, cols].reshape(-1, unit.shape[-1]).mean(0), dim=0)
        maps.append(unit @ query)
    return min_max(torch.stack(maps)).mean(0)


def exemplar_heatmap(features: torch.Tensor, boxes: Sequence[tuple[int, int, int, int]],
                     covered_shape: tuple[int, int], image_shape: tuple[int, int]) -> np.ndarray:
    """The exemplars' map at the image's resolution, in [0, 1]."""
    grid = exemplar_grid(features, boxes, covered_shape)
    height, width = image_shape
    full = upsample(grid[None, None], covered_shape)[0, 0, :height, :width]
    return min_max(full).numpy().astype(np.float32)


def boxes_of(prompt: str | None, exemplars) -> list[Box] | None:
    """The boxes ``{prompt: boxes}`` gives the refined prompt; a plain list of boxes (the 0.1
    form of ``refine``) still works, with a warning."""
    if exemplars is None:
        return None
    if not isinstance(exemplars, Mapping):
        warn_deprecated("exemplars as a plain list of boxes in refine",
                        "exemplars={prompt: boxes}, the form segment takes", stacklevel=5)
        return list(exemplars)
    named = [prompt] if prompt is not None else list(exemplars)[:1]
    others = sorted(set(exemplars) - set(named))
    if others:
        raise ValueError(f"exemplars name prompts that are not refined: {', '.join(others)}")
    return [box for name in named for box in exemplars.get(name, ())]
