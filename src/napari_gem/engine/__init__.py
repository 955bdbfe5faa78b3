"""The pure engine: tensors and arrays in, tensors and arrays out (no Qt, no napari).

Floors, bottom up: ``errors``, ``paths``, ``devices`` (no engine imports above them);
``promptable`` (what any model offers) and the array helpers; ``families`` (each kind
of model, with the CLIP dense methods in ``families.clip.methods``); ``loading`` and
``spec`` (any model by name); ``encoded`` (encode and segment images).
"""

from .encoded import EncodedImage, encode, segment
from .errors import Cancelled, ModelLoadError, UnsupportedModelError
from .families import ModelFamily, catalogue, family_for, list_families
from .families.clip.methods import (
    GemOptions,
    create_method,
    find_global_blocks,
    list_methods,
    method_class,
    method_names,
)
from .families.clip.model import GroundingModel
from .loading import default_model, load_model, supported_models
from .options import SegmentOptions
from .promptable import PromptableModel, VisionOutput
from .refinement import pamr
from .result import SegmentationResult

__all__ = [
    "Cancelled",
    "EncodedImage",
    "GemOptions",
    "GroundingModel",
    "ModelFamily",
    "ModelLoadError",
    "PromptableModel",
    "SegmentOptions",
    "SegmentationResult",
    "UnsupportedModelError",
    "VisionOutput",
    "catalogue",
    "create_method",
    "default_model",
    "encode",
    "family_for",
    "find_global_blocks",
    "list_families",
    "list_methods",
    "load_model",
    "method_class",
    "method_names",
    "pamr",
    "segment",
    "supported_models",
]


def __getattr__(name: str):
    if name == "GEM":  # the class's first name, from when GEM was the only method
        from .deprecation import warn_deprecated

        warn_deprecated("GEM", "GroundingModel (GEM is its default method)")
        return GroundingModel
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
