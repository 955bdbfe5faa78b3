"""napari-gem: type what you are looking for, see where it is (GEM on open_clip ViTs)."""

from .engine import (
    GEM,
    GemSettings,
    ModelLoadError,
    UnsupportedModelError,
    VisionOutput,
    load_model,
    supported_models,
)

__version__ = "0.1.0"

__all__ = [
    "GEM",
    "GemSettings",
    "ModelLoadError",
    "UnsupportedModelError",
    "VisionOutput",
    "__version__",
    "load_model",
    "supported_models",
]
