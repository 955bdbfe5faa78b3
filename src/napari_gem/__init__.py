"""napari-gem: type what you are looking for, see where it is (GEM and other dense methods on CLIP ViTs).

The engine (this namespace) imports neither Qt nor napari; the napari plugin lives in
``napari_gem.plugin`` and the command line in ``napari_gem.cli``.
"""

from .engine import (
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
    family_for,
    find_global_blocks,
    list_families,
    list_methods,
    load_model,
    method_names,
    pamr,
    segment,
    supported_models,
)

__version__ = "0.1.0"


def open_encoding(path):
    """Open a saved encoding (``encode(...).save(path)``, ``napari-gem encode``) to ask it any
    prompt: :class:`napari_gem.batch.saved_encoding.SavedEncoding`. Needs the ``[cluster]`` extra."""
    from .batch.saved_encoding import open_encoding as open_saved

    return open_saved(path)


__all__ = [
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

    "family_for",
    "find_global_blocks",
    "list_families",
    "list_methods",
    "load_model",
    "method_names",
    "methods",
    "open_encoding",
    "pamr",
    "segment",
    "supported_models",
]


def methods():
    """Deprecated name of :func:`list_methods` (kept so older scripts run)."""
    import warnings

    warnings.warn("napari_gem.methods() is now napari_gem.list_methods()", DeprecationWarning,
                  stacklevel=2)
    return list_methods()


def __getattr__(name: str):
    if name == "GEM":  # deprecated; the engine says so
        from . import engine

        return engine.GEM
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
