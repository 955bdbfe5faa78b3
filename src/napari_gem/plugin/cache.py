"""What the plugin keeps between runs: the loaded model (the engine's model cache) and the
encoded images.

Both caches are used from the worker thread and the main thread, so they lock.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Hashable

from ..engine.model_cache import ModelCache
from ..engine.spec import ModelSpec

__all__ = ["EncodedCache", "ModelCache", "ModelSpec"]


class EncodedCache:
    """Encoded images (dense features of the model's method) by source, plane, model and encoding options.

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
