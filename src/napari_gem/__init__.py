"""napari-gem: type what you are looking for, see where it is (GEM and other dense methods on open_clip ViTs).

The engine (this namespace) imports neither Qt nor napari; the napari plugin lives in
``napari_gem.plugin`` and the command line in ``napari_gem.cli``.
"""

from .engine import (
    GEM,
    Cancelled,
    EncodedImage,
    GemOptions,
    GroundingModel,
    ModelLoadError,
    PromptableModel,
    SegmentationResult,
    SegmentOptions,
    UnsupportedModelError,
    VisionOutput,
    create_method,
    encode,
    find_global_blocks,
    load_model,
    method_names,
    pamr,
    segment,
    supported_models,
)
from .engine.methods import methods

__version__ = "0.1.0"

__all__ = [
    "GEM",
    "Cancelled",
    "EncodedImage",
    "GemOptions",
    "GroundingModel",
    "ModelLoadError",
    "PromptableModel",
    "SegmentOptions",
    "SegmentationResult",
    "UnsupportedModelError",
    "VisionOutput",
    "__version__",
    "create_method",
    "encode",
    "find_global_blocks",
    "load_model",
    "method_names",
    "methods",
    "pamr",
    "segment",
    "supported_models",
]
