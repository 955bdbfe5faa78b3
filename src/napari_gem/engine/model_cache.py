"""One cache of loaded models per process, shared by the widget, the batch command and dask workers.

Models are kept by everything that defines them (:meth:`ModelSpec.features_key`: name,
weights, device, precision, method, and the method's or the family's own options), so a
changed option never hands back a model built without it. Asking for a CLIP's weights
with another method or other method options re-wraps the loaded weights instead of
reading them again. Loading is serialised, so two threads that need the same model load
it once.
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
    """Loaded models by spec; at most ``keep`` of them (``None``: no limit).

    The widget keeps one (a new model frees the old one before it loads); a batch
    process keeps every model its tasks name. ``loader`` takes
    :func:`~napari_gem.load_model`'s arguments; :meth:`ModelSpec.load` calls it.
    """

    def __init__(self, loader: Callable[..., PromptableModel] = load_model, *, keep: int | None = 1) -> None:
        self._loader = loader
        self._keep = keep
        self._lock = threading.Lock()
        self._models: OrderedDict[tuple, PromptableModel] = OrderedDict()

    def is_loaded(self, spec: ModelSpec) -> bool:
        """Whether :meth:`get` needs no loading: the model, or a CLIP's weights to re-wrap, is here."""
        return spec.features_key() in self._models or self._same_weights(spec) is not None

    def get(self, spec: ModelSpec) -> PromptableModel:
        """The model for ``spec``, loading it when needed (raises ``ModelLoadError``)."""
        key = spec.features_key()
        with self._lock:
            model = self._models.get(key)
            if model is None:
                weights = self._same_weights(spec)
                self._make_room()
                model = _rewrap(weights, spec) if weights is not None else spec.load(self._loader)
            self._models[key] = model
            self._models.move_to_end(key)
            return model

    def _same_weights(self, spec: ModelSpec) -> PromptableModel | None:
        """A loaded CLIP with ``spec``'s weights (any method): re-wrapped, not read again."""
        if not spec.uses_clip_method:
            return None  # its options may change how it is built
        weights = spec.weights_key()
        width = len(weights)
        return next((model for key, model in reversed(self._models.items()) if key[:width] == weights),
                    None)

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
