"""One cache of loaded models per process, shared by the widget, the batch command and dask workers.

Models are kept by their weights (:meth:`ModelSpec.weights_key`): asking for the same
weights with another method or other options re-wraps the loaded weights instead of
reading them again. Loading is serialised, so two threads that need the same model
load it once.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable

from .errors import ModelLoadError
from .loading import load_model
from .promptable import PromptableModel
from .spec import ModelSpec


class ModelCache:
    """Loaded models by weights; at most ``keep`` of them (``None``: no limit).

    The widget keeps one (a new model frees the old one before it loads); a batch
    process keeps every model its tasks name.
    """

    def __init__(self, loader: Callable[..., PromptableModel] = load_model, *, keep: int | None = 1) -> None:
        self._loader = loader
        self._keep = keep
        self._lock = threading.Lock()
        self._models: OrderedDict[tuple, PromptableModel] = OrderedDict()

    def is_loaded(self, spec: ModelSpec) -> bool:
        return spec.weights_key() in self._models

    def get(self, spec: ModelSpec) -> PromptableModel:
        """The model for ``spec``, loading it when needed (raises ``ModelLoadError``)."""
        key = spec.weights_key()
        with self._lock:
            model = self._models.get(key)
            if model is None:
                self._make_room()
                model = self._load(spec)
            elif spec.uses_clip_method and model.dense_method != spec.dense_method():
                model = _rewrap(model, spec)
            self._models[key] = model
            self._models.move_to_end(key)
            return model

    def _load(self, spec: ModelSpec) -> PromptableModel:
        from .families.clip.family import register_model_configs

        register_model_configs(spec.model_configs)
        return self._loader(
            spec.name, spec.pretrained, device=spec.device, precision=spec.precision,
            cache_dir=spec.cache_dir, method=spec.method, **dict(spec.method_options),
        )

    def _make_room(self) -> None:
        """Free the least recently used models (before loading, so two never share memory)."""
        if self._keep is None:
            return
        while len(self._models) >= self._keep and self._models:
            self._models.popitem(last=False)
        _empty_gpu_cache()

    def clear(self) -> None:
        with self._lock:
            self._models.clear()
            _empty_gpu_cache()


def _rewrap(model: PromptableModel, spec: ModelSpec) -> PromptableModel:
    try:
        return model.with_method(spec.dense_method())
    except ValueError as error:
        raise ModelLoadError(f"{spec.name}: {error}") from error


def _empty_gpu_cache() -> None:
    import torch

    if torch.cuda.is_available():
        torch.cuda.empty_cache()
