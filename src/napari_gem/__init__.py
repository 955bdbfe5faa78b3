"""napari-gem: type what you are looking for, see where it is (training-free dense grounding).

GEM, MaskCLIP, SCLIP, ClearCLIP, NACLIP, GCLIP, ProxyCLIP, Talk2DINO and SimZSS on
CLIP-family ViTs. This namespace is the library: load a model, encode and segment
images, refine with strokes and example boxes, and run whole folders in batch
(``segment_files``, ``ModelSpec``). It imports neither Qt nor napari; the napari plugin
lives in ``napari_gem.plugin`` and the command line in ``napari_gem.cli``.

Boxes are ``(y0, x0, y1, x1)`` everywhere: rows first, as napari and numpy index
(not SAM's or torchvision's ``(x0, y0, x1, y1)``).
"""

from .batch import BatchReport, segment_files
from .engine import (
    Cancelled,
    EncodedImage,
    GemOptions,
    GroundingModel,
    ModelFamily,
    ModelLoadError,
    PromptableModel,
    SegmentationResult,
    SegmentOptions,
    UnsupportedModelError,
    VisionOutput,
    catalogue,
    create_method,
    default_model,
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
from .engine.software import __version__
from .engine.spec import ModelSpec


def open_encoding(path):
    """Open a saved encoding (``encode(...).save(path)``, ``napari-gem encode``) to ask it any
    prompt: :class:`napari_gem.batch.saved_encoding.SavedEncoding`. Needs the ``[cluster]`` extra."""
    from .batch.saved_encoding import open_encoding as open_saved

    return open_saved(path)


__all__ = [
    "BatchReport",
    "Cancelled",
    "EncodedImage",
    "GemOptions",
    "GroundingModel",
    "ModelFamily",
    "ModelLoadError",
    "ModelSpec",
    "PromptableModel",
    "SegmentOptions",
    "SegmentationResult",
    "UnsupportedModelError",
    "VisionOutput",
    "__version__",
    "catalogue",
    "create_method",
    "default_model",
    "encode",
    "family_for",
    "find_global_blocks",
    "list_families",
    "list_methods",
    "load_model",
    "method_names",
    "open_encoding",
    "pamr",
    "segment",
    "segment_files",
    "supported_models",
]


def methods():
    """Deprecated name of :func:`list_methods` (kept so older scripts run)."""
    from .engine.deprecation import warn_deprecated

    warn_deprecated("napari_gem.methods()", "napari_gem.list_methods()")
    return list_methods()


def __getattr__(name: str):
    if name == "GEM":  # deprecated; the engine says so
        from . import engine

        return engine.GEM
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
