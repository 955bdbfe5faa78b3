"""What the plugin keeps between runs: the loaded model and the encoded images.

Both caches are used from the worker thread and the main thread, so they lock.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable

from ..engine import ModelLoadError, PromptableModel, load_model
from ..engine.spec import ModelSpec

__all__ = ["EncodedCache", "ModelCache", "ModelSpec"]


class ModelCache:
    """Keeps the last loaded model so the next run does not load it again.

    Changing only the method or its options re-wraps the loaded CLIP weights instead
    of reading them again. Loading is serialised: a second run
    that needs the same model waits for the first load and then reuses it.
    """

    def __init__(self, loader: Callable[..., PromptableModel] = load_model) -> None:
        self._loader = loader
        self._lock = threading.Lock()
        self._key: tuple | None = None
        self._model: PromptableModel | None = None

    def is_loaded(self, spec: ModelSpec) -> bool:
        return self._key is not None and self._key == spec.weights_key()

    def get(self, spec: ModelSpec) -> PromptableModel:
        """The model for ``spec``, loading it when needed (raises ``ModelLoadError``)."""
        with self._lock:
            if self._model is not None and self._key == spec.weights_key():
                if spec.uses_clip_method and self._model.dense_method != spec.dense_method():
                    self._model = self._rewrap(self._model, spec)
                return self._model
            self.clear_locked()  # free the old model before loading a new one
            model = self._loader(
                spec.name,
                spec.pretrained,
                device=spec.device,
                precision=spec.precision,
                cache_dir=spec.cache_dir,
                method=spec.method,
                **dict(spec.method_options),
            )
            self._key, self._model = spec.weights_key(), model
            return model

    @staticmethod
    def _rewrap(model: PromptableModel, spec: ModelSpec) -> PromptableModel:
        try:
            return model.with_method(spec.dense_method())
        except ValueError as error:
            raise ModelLoadError(f"{spec.name}: {error}") from error

    def clear_locked(self) -> None:
        self._key, self._model = None, None
        _empty_gpu_cache()

    def clear(self) -> None:
        with self._lock:
            self.clear_locked()


def _empty_gpu_cache() -> None:
    import torch

    if torch.cuda.is_available():
        torch.cuda.empty_cache()


class EncodedCache:
    """Encoded images (dense GEM features) by source, plane, model and encoding options.

    Least recently used entries are dropped once the features held exceed ``max_bytes``.
    """

    def __init__(self, max_bytes: int = 1 << 30) -> None:
        self.max_bytes = int(max_bytes)
        self._lock = threading.Lock()
        self._entries: OrderedDict[Hashable, tuple[object, int]] = OrderedDict()
        self.hits = 0
        self.misses = 0

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def nbytes(self) -> int:
        return sum(size for _, size in self._entries.values())

    def get(self, key: Hashable):
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                self.misses += 1
                return None
            self._entries.move_to_end(key)
            self.hits += 1
            return entry[0]

    def put(self, key: Hashable, encoded) -> None:
        size = _feature_bytes(encoded)
        with self._lock:
            self._entries[key] = (encoded, size)
            self._entries.move_to_end(key)
            while len(self._entries) > 1 and self.nbytes > self.max_bytes:
                self._entries.popitem(last=False)

    def drop_source(self, source_id: Hashable) -> None:
        """Forget every plane of one source layer (its data changed, or it was removed)."""
        with self._lock:
            for key in [k for k in self._entries if k[0][0] == source_id]:
                del self._entries[key]

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()


def _feature_bytes(encoded) -> int:
    features = getattr(encoded, "features", None)
    if features is None:
        return 0
    return int(features.numel() * features.element_size())
