"""What the plugin keeps between runs: the loaded model (the engine's model cache) and the
encoded images (with what their stroke refiners keep).

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

    Least recently used entries are dropped once the bytes held exceed ``max_bytes``: an
    encoding's features and embedding, and what its stroke refiner keeps
    (``EncodedImage.nbytes``, measured again at every :meth:`put`, since refining grows it).
    """

    def __init__(self, max_bytes: int = 1 << 30) -> None:
        self.max_bytes = int(max_bytes)
        self._lock = threading.Lock()
        self._entries: OrderedDict[Hashable, object] = OrderedDict()
        self.hits = 0
        self.misses = 0

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def nbytes(self) -> int:
        """Bytes the kept encodings hold now (their refiners' inputs included)."""
        return sum(_held_bytes(encoded) for encoded in list(self._entries.values()))

    def get(self, key: Hashable):
        with self._lock:
            encoded = self._entries.get(key)
            if encoded is None:
                self.misses += 1
                return None
            self._entries.move_to_end(key)
            self.hits += 1
            return encoded

    def put(self, key: Hashable, encoded) -> None:
        """Keep ``encoded`` (again: after a refinement, so its refiner's inputs count)."""
        with self._lock:
            self._entries[key] = encoded
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


def _held_bytes(encoded) -> int:
    return int(getattr(encoded, "nbytes", 0))
