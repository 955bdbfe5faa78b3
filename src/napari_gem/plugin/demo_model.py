"""The demo CLIP in the widget: its entry in the model list and the spec it stands for.

Kept apart from ``widget.py`` so the widget needs only three calls: the extra model
choice, the spec of the demo model (:func:`model_spec`, with the widget's device,
precision, method and options), and its defaults when it is picked.
"""

from __future__ import annotations

from ..demo.model import (  # noqa: F401  (model_spec: the widget's spec of the demo model)
    DEFAULT_DEPTH,
    DISPLAY_NAME,
    INPUT_SIZE,
    MODEL_NAME,
    model_spec,
    register_config,
)

#: ``(label, value)`` for the widget's model list: labelled so nobody takes it for a general CLIP.
MODEL_CHOICE = (DISPLAY_NAME, MODEL_NAME)


def model_choices(names: list[str]) -> list[tuple[str, str]]:
    """``(label, name)`` of the supported models, then the demo model (its config registered).

    All entries are pairs: magicgui reads a list of pairs as labels and values.
    """
    register_config()
    return [*((name, name) for name in names), MODEL_CHOICE]


def is_demo(name: str | None) -> bool:
    return name == MODEL_NAME


def apply_defaults(widget) -> None:
    """Settings that fit the demo model: its GEM depth (4 blocks) and its input size."""
    widget.depth.value = DEFAULT_DEPTH
    widget.input_size.value = INPUT_SIZE
