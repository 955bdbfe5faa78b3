"""``load_model``: any model a family knows, with a dense method, on a device in a precision.

The family that claims the name checks the request and builds the model (downloading
into its cache when needed); this module picks the method, the device and the
precision, and moves the model there. Every failure is one :class:`ModelLoadError`
that says what was asked for and what to do.
"""

from __future__ import annotations

import difflib
import functools
import os
import threading
from collections.abc import Mapping
from typing import Any

import torch

from .deprecation import warn_deprecated
from .devices import place_model, resolve_device, resolve_precision
from .errors import ModelLoadError
from .families import LoadRequest, ModelFamily, family_for
from .families.base import WEIGHTS_PACKAGED
from .families.clip.family import supported_models
from .families.clip.methods import DenseMethod, create_method
from .promptable import PromptableModel

__all__ = ["DEFAULT_MODEL", "DEFAULT_WEIGHTS", "ModelLoadError", "default_method", "default_model",
           "load_model", "method_for", "resolve_pretrained", "segment_defaults", "supported_models"]

#: The model :func:`~napari_gem.segment` runs when it is given none (with its default weights).
DEFAULT_MODEL = "ViT-B-16"

#: ``pretrained`` meaning "the family's default weights" (the demo's packaged file, ``openai``
#: where a CLIP has that tag, a repository's own weights); ``None`` means random weights.
DEFAULT_WEIGHTS = "default"


def resolve_pretrained(family: ModelFamily, name: str, pretrained: str | os.PathLike | None) -> str | None:
    """``pretrained`` as a family reads it: :data:`DEFAULT_WEIGHTS` becomes the family's default.

    A model with no default weights (a checkpoint-file family, a CLIP config without tags)
    is refused with a message saying which file to give, rather than built with random weights.
    """
    if pretrained is None or os.fspath(pretrained) != DEFAULT_WEIGHTS:
        return os.fspath(pretrained) if pretrained is not None else None
    default = family.default_pretrained(name)
    if default is None and family.weights != WEIGHTS_PACKAGED:
        family.check(name, None)  # an unknown name gets its own "did you mean" first
        raise ModelLoadError(
            f"{name} has no default weights: give {family.weights_hint(name)} as pretrained "
            "(--pretrained on the command line, the checkpoint field in napari)")
    return default


def segment_defaults(name: str | None) -> dict[str, Any]:
    """The :class:`~napari_gem.SegmentOptions` values model ``name`` runs with unless the user
    says otherwise (its family's: e.g. the demo model's input size); none for unnamed models."""
    return dict(family_for(name).segment_defaults(name)) if name else {}


def default_method(name: str) -> str:
    """The method a model runs when none is named (its family's: GEM, or SimZSS's own)."""
    return family_for(name).default_method


def method_for(family: ModelFamily, name: str, method: str | None,
               options: dict[str, Any]) -> DenseMethod | None:
    """The validated dense method for a model of ``family`` (None for families with their own).

    The family's option defaults for the method (e.g. the demo model's GEM depth) apply
    where ``options`` do not say otherwise.
    """
    family.check_method(name, method, options)
    if not family.uses_clip_methods:
        return None
    method = method or family.default_method
    try:
        return create_method(method, **{**family.method_defaults(method), **options})
    except (TypeError, ValueError) as error:
        raise ModelLoadError(str(error)) from error


def load_model(
    name: str = DEFAULT_MODEL,
    pretrained: str | os.PathLike | None = DEFAULT_WEIGHTS,
    *,
    device: str | torch.device = "auto",
    precision: str | None = None,
    cache_dir: str | os.PathLike | None = None,
    method: str | None = None,
    method_options: Mapping[str, Any] | None = None,
    **legacy_options: Any,
) -> PromptableModel:
    """Build a dense method (GEM by default) on the model ``name``.

    ``name`` is any name a model family knows (``napari_gem.engine.families``): an
    open_clip ViT name, a SimZSS architecture, the packaged demo model. ``pretrained``
    is a weights tag (downloaded once into the family's cache), the path of a local
    checkpoint file, :data:`DEFAULT_WEIGHTS` (the default: the family's own, e.g. the
    demo's packaged weights, ``openai`` where a CLIP has that tag, a repository's weights),
    or ``None`` for random weights (testing only).
    ``device="auto"`` picks CUDA, then MPS, then CPU; ``precision=None`` means fp32
    on the CPU and bf16/fp16 on a GPU. ``method`` is a name from
    :func:`napari_gem.list_methods` (``None``: the family's own, GEM for CLIPs) and
    ``method_options`` a mapping of its options (e.g. GEM's ``depth``, ``iterations``,
    ``temperature``; NACLIP's ``sigma``), validated before anything is downloaded.
    Method options as plain keywords (``load_model(name, depth=5)``) still work, with a
    ``DeprecationWarning``; any other keyword is a ``TypeError`` naming it
    (``devcie=`` -> "unknown keyword 'devcie' (did you mean 'device'?)").
    Raises :class:`ModelLoadError` with a message fit for a user on any failure, and
    leaves nothing half-built behind.
    """
    method_options = {**dict(method_options or {}), **_legacy_method_options(legacy_options)}
    family = family_for(name)
    dense_method = method_for(family, name, method, method_options)
    pretrained = resolve_pretrained(family, name, pretrained)
    cache_dir = os.fspath(cache_dir) if cache_dir is not None else None
    target_device = resolve_device(device)
    dtype = resolve_precision(precision, target_device)
    family.check(name, pretrained)
    own_options = {} if family.uses_clip_methods else dict(method_options)  # checked by the family
    model = family.build(LoadRequest(name, pretrained, cache_dir, dense_method, own_options))
    place_model(model.module, target_device, dtype, name)
    return model


#: load_model's own keywords (what a misspelt keyword is compared with first).
_LOADER_KEYWORDS = ("pretrained", "device", "precision", "cache_dir", "method", "method_options")


def _legacy_method_options(keywords: dict[str, Any]) -> dict[str, Any]:
    """Method options given as plain keywords (the old form, with a warning); any keyword that
    is no method's option is refused by name, with the closest keyword it may have meant."""
    from .method_fields import option_names

    known = option_names()
    unknown = [keyword for keyword in keywords if keyword not in known]
    if unknown:
        keyword = unknown[0]
        close = difflib.get_close_matches(keyword, [*_LOADER_KEYWORDS, *sorted(known)], n=1, cutoff=0.7)
        hint = f" (did you mean {close[0]!r}?)" if close else (
            f"; load_model takes {', '.join(_LOADER_KEYWORDS)}")
        raise TypeError(f"load_model() got an unknown keyword {keyword!r}{hint}")
    if keywords:
        warn_deprecated("method options as keywords of load_model()",
                        f"method_options={{{', '.join(f'{k!r}: ...' for k in keywords)}}}", stacklevel=4)
    return dict(keywords)


_default_lock = threading.Lock()


@functools.lru_cache(maxsize=4)
def _loaded_default(name: str) -> PromptableModel:
    return load_model(name)


def default_model(name: str | None = None) -> PromptableModel:
    """The model ``segment(image, prompts)`` runs when given none: :data:`DEFAULT_MODEL` (or
    ``name``) with its default weights on the automatic device, loaded once per process and
    kept, so calling ``segment`` in a loop does not read the weights again."""
    with _default_lock:  # two threads asking at once load it once
        return _loaded_default(name or DEFAULT_MODEL)
