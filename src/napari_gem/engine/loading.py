"""``load_model``: any model a family knows, with a dense method, on a device in a precision.

The family that claims the name checks the request and builds the model (downloading
into its cache when needed); this module picks the method, the device and the
precision, and moves the model there. Every failure is one :class:`ModelLoadError`
that says what was asked for and what to do.
"""

from __future__ import annotations

import os
from typing import Any

import torch

from .devices import place_model, resolve_device, resolve_precision
from .errors import ModelLoadError
from .families import LoadRequest, ModelFamily, family_for
from .families.clip.family import supported_models
from .families.clip.methods import DenseMethod, create_method
from .promptable import PromptableModel

__all__ = ["ModelLoadError", "default_method", "load_model", "method_for", "supported_models"]


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
    name: str = "ViT-B-16",
    pretrained: str | os.PathLike | None = "openai",
    *,
    device: str | torch.device = "auto",
    precision: str | None = None,
    cache_dir: str | os.PathLike | None = None,
    method: str | None = None,
    **method_options: Any,
) -> PromptableModel:
    """Build a dense method (GEM by default) on the model ``name``.

    ``name`` is any name a model family knows (``napari_gem.engine.families``): an
    open_clip ViT name, a SimZSS architecture, the packaged demo model. ``pretrained``
    is a weights tag (downloaded once into the family's cache), the path of a local
    checkpoint file, or ``None`` for random weights (testing only).
    ``device="auto"`` picks CUDA, then MPS, then CPU; ``precision=None`` means fp32
    on the CPU and bf16/fp16 on a GPU. ``method`` is a name from
    :func:`napari_gem.list_methods` (``None``: the family's own, GEM for CLIPs) and
    ``method_options`` its options (e.g. GEM's ``depth``, ``iterations``,
    ``temperature``; NACLIP's ``sigma``), validated before anything is downloaded.
    Raises :class:`ModelLoadError` with a message fit for a user on any failure, and
    leaves nothing half-built behind.
    """
    family = family_for(name)
    dense_method = method_for(family, name, method, method_options)
    pretrained = os.fspath(pretrained) if pretrained is not None else None
    cache_dir = os.fspath(cache_dir) if cache_dir is not None else None
    target_device = resolve_device(device)
    dtype = resolve_precision(precision, target_device)
    family.check(name, pretrained)
    own_options = {} if family.uses_clip_methods else dict(method_options)  # checked by the family
    model = family.build(LoadRequest(name, pretrained, cache_dir, dense_method, own_options))
    place_model(model.module, target_device, dtype, name)
    return model
