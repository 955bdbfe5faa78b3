"""napari-gem: type what you are looking for, see where it is (GEM on open_clip ViTs).

The engine (this namespace) imports neither Qt nor napari; the napari plugin lives in
``napari_gem.plugin`` and the command line in ``napari_gem.cli``.
"""

from .engine import (
    GEM,
    Cancelled,
    EncodedImage,
    GemSettings,
    ModelLoadError,
    SegmentationResult,
    SegmentOptions,
    UnsupportedModelError,
    VisionOutput,
    encode,
    load_model,
    segment,
    supported_models,
)

__version__ = "0.1.0"

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
    "__version__",
    "encode",
    "load_model",
    "segment",
    "supported_models",
]
