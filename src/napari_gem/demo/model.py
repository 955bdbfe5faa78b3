"""The packaged demo CLIP: loading it offline, and the spec and options that suit it.

Where its config and weights live, and what it needs (a shallower GEM, a smaller input),
is the engine's demo family (:mod:`napari_gem.engine.families.demo`).
"""

from __future__ import annotations

from ..engine.families import family_for
from ..engine.families.demo import (
    CONFIG_PATH,
    DEFAULT_DEPTH,
    DISPLAY_NAME,
    INPUT_SIZE,
    MODEL_NAME,
    WEIGHTS_PATH,
    register_config,
)
from ..engine.options import SegmentOptions
from ..engine.spec import ModelSpec

__all__ = ["CONFIG_PATH", "DEFAULT_DEPTH", "DISPLAY_NAME", "INPUT_SIZE", "MODEL_NAME", "WEIGHTS_PATH",
           "load_model", "model_spec", "register_config", "segment_options"]

def load_model(method: str = "gem", *, device: str = "cpu", precision: str | None = None, **options):
    """The demo CLIP with its packaged weights, ready for ``encode``/``segment`` (no network).

    ``method`` names the dense method (see ``napari_gem.list_methods()``); ``options`` are
    that method's options (GEM's depth defaults to :data:`DEFAULT_DEPTH`).
    """
    from ..engine.loading import load_model as load_any_model

    return load_any_model(MODEL_NAME, WEIGHTS_PATH, device=device, precision=precision,
                          method=method, **options)

def model_spec(**changes) -> ModelSpec:
    """A :class:`ModelSpec` of the demo model (for the widget and the batch command)."""
    values = {"name": MODEL_NAME, "pretrained": str(WEIGHTS_PATH), "device": "cpu",
              "method": "gem", "model_configs": (str(CONFIG_PATH),)}
    values.update(changes)
    return ModelSpec(**values)

def segment_options(**changes) -> SegmentOptions:
    """Segmentation options that fit the demo model (its input size; engine defaults otherwise)."""
    return SegmentOptions(**family_for(MODEL_NAME).segment_defaults(MODEL_NAME)).replace(**changes)
