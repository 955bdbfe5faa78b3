"""The pure GEM engine: tensors and arrays in, tensors and arrays out (no Qt, no napari)."""

from .encoded import Cancelled, EncodedImage, encode, segment
from .gem import GEM
from .loading import ModelLoadError, load_model, supported_models
from .options import SegmentOptions
from .result import SegmentationResult
from .vision import GemSettings, UnsupportedModelError, VisionOutput

__all__ = [
    "GEM",
    "Cancelled",
    "EncodedImage",
    "GemSettings",
    "ModelLoadError",
    "SegmentOptions",
    "SegmentationResult",
    "UnsupportedModelError",
    "VisionOutput",
    "encode",
    "load_model",
    "segment",
    "supported_models",
]
