"""The pure engine: tensors and arrays in, tensors and arrays out (no Qt, no napari).

The method listing ``methods()`` lives in :mod:`napari_gem.engine.methods` (and is
``napari_gem.methods()``); re-exported here, its name would hide that subpackage.
"""

from .encoded import Cancelled, EncodedImage, encode, segment
from .loading import ModelLoadError, load_model, supported_models
from .methods import GemOptions, create_method, find_global_blocks, method_class, method_names
from .model import GEM, GroundingModel
from .options import SegmentOptions
from .promptable import PromptableModel
from .refinement import pamr
from .result import SegmentationResult
from .vision import UnsupportedModelError, VisionOutput

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
    "create_method",
    "encode",
    "find_global_blocks",
    "load_model",
    "method_class",
    "method_names",
    "pamr",
    "segment",
    "supported_models",
]
