"""Prompt lines that name a Shapes layer (``@examples``): its boxes are examples, "more like this".

A prompt ``@NAME`` is answered by the mean dense feature inside the boxes drawn on the
Shapes layer ``NAME`` (``EncodedImage.segment(..., exemplars=...)``), not by its words.
The shapes are read on the main thread when a run starts (a snapshot: drawing during the
run does not reach it), in the image's pixel coordinates. A 2D Shapes layer serves every
plane of a stack; shapes drawn on a stack's plane serve that plane.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
from napari.layers import Shapes

EXEMPLAR_MARK = "@"

#: ``plane index -> {prompt: boxes (y0, x0, y1, x1)}`` of a run.
ExemplarBoxes = Callable[[tuple[int, ...]], dict[str, list[tuple[float, float, float, float]]]]


def is_exemplar_prompt(prompt: str) -> bool:
    """Whether ``prompt`` names a Shapes layer of examples (``@examples``)."""
    return prompt.startswith(EXEMPLAR_MARK) and bool(prompt[1:].strip())


def exemplar_boxes(prompts: Sequence[str], viewer, image_layer,
                   plane_shape: tuple[int, int]) -> ExemplarBoxes | None:
    """The boxes of every ``@NAME`` prompt, per plane; None when no prompt names a layer.

    A clear ``ValueError`` when the layer is missing, not a Shapes layer, or empty.
    """
    shapes_of = {}
    for prompt in prompts:
        if not is_exemplar_prompt(prompt):
            continue
        name = prompt[1:].strip()
        layer = next((candidate for candidate in viewer.layers if candidate.name == name), None)
        if not isinstance(layer, Shapes):
            found = ("there is no layer of that name" if layer is None
                     else f"it is a {type(layer).__name__} layer")
            raise ValueError(
                f"The prompt '{prompt}' asks for the examples on a Shapes layer '{name}', but "
                f"{found}. "
                "Draw rectangles around examples on a Shapes layer of that name, or remove the "
                f"'{EXEMPLAR_MARK}' to search for the words.")
        if not len(layer.data):
            raise ValueError(f"The Shapes layer '{name}' has no shapes: draw a rectangle around an "
                             f"example of what '{prompt}' should find, then run.")
        shapes_of[prompt] = [np.array(vertices, dtype=float) for vertices in layer.data]
    if not shapes_of:
        return None
    full = np.asarray(image_layer.level_shapes[0][-2:], dtype=float)
    scale = np.asarray(plane_shape, dtype=float) / full  # boxes on level 0, planes maybe coarser

    def boxes_of(index: tuple[int, ...]) -> dict[str, list[tuple[float, float, float, float]]]:
        return {prompt: [box for vertices in shapes if (box := _box(vertices, index, scale)) is not None]
                for prompt, shapes in shapes_of.items()}

    return boxes_of


def _box(vertices: np.ndarray, index: tuple[int, ...], scale: np.ndarray):
    """A shape's bounding box ``(y0, x0, y1, x1)`` on the plane ``index``; None if on another plane."""
    leading = vertices[:, :-2]
    if leading.shape[1] and index:
        plane = tuple(int(v) for v in np.round(leading.mean(axis=0))[-len(index):])
        if plane != tuple(index):
            return None
    rows, cols = vertices[:, -2] * scale[0], vertices[:, -1] * scale[1]
    return float(rows.min()), float(cols.min()), float(rows.max()) + 1, float(cols.max()) + 1


def raise_example_layers(viewer, prompts: Sequence[str]) -> None:
    """Put the Shapes layers of ``@NAME`` prompts back on top, so their boxes stay in sight and
    editable above the new heatmaps and masks."""
    for prompt in prompts:
        if not is_exemplar_prompt(prompt):
            continue
        name = prompt[1:].strip()
        for index, layer in enumerate(viewer.layers):
            if layer.name == name and isinstance(layer, Shapes):
                viewer.layers.move(index, len(viewer.layers))
                break
