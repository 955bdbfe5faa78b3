"""The pure GEM engine: tensors and arrays in, tensors and arrays out (no Qt, no napari)."""

from .gem import GEM
from .loading import ModelLoadError, load_model, supported_models
from .vision import GemSettings, UnsupportedModelError, VisionOutput

__all__ = [
    "GEM",
    "GemSettings",
    "ModelLoadError",
    "UnsupportedModelError",
    "VisionOutput",
    "load_model",
    "supported_models",
]
