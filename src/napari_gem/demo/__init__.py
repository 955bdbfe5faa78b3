"""A small CLIP trained by the project on generated micrographs (demo and meaningful tests).

It knows only the concepts of :data:`VOCABULARY` on images like those of :func:`scene`;
it is not a general-purpose CLIP. See docs/demo-model.md for how it was trained and
how well it localizes.
"""

from .model import DISPLAY_NAME, MODEL_NAME, load_model, model_spec, segment_options
from .scenes import BACKGROUND, VOCABULARY, caption, scene

__all__ = [
    "BACKGROUND",
    "DISPLAY_NAME",
    "MODEL_NAME",
    "VOCABULARY",
    "caption",
    "load_model",
    "model_spec",
    "scene",
    "segment_options",
]
