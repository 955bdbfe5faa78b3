"""The plugin's cache of encoded images counts what their stroke refiners keep."""

from __future__ import annotations

import numpy as np

from napari_gem.engine.encoded import encode
from napari_gem.plugin.cache import EncodedCache


def _image(seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    image = 0.7 + 0.05 * rng.standard_normal((160, 192))
    image[40:90, 50:110] = 0.2
    return image.astype(np.float32)


def test_the_plugin_cache_budget_counts_what_the_refiner_keeps(tiny_gem):
    first, second = encode(_image(0), tiny_gem), encode(_image(1), tiny_gem)
    # Room for both encodings' features, not for a refiner's inputs as well.
    cache = EncodedCache(max_bytes=first.nbytes + second.nbytes + 1024)
    cache.put("first", first)
    cache.put("second", second)
    assert len(cache) == 2
    positive, negative = np.zeros(second.image_shape, bool), np.zeros(second.image_shape, bool)
    positive[55:65, 70:80] = True
    negative[120:130, 150:170] = True
    second.refine("a square", positive=positive, negative=negative)
    assert cache.nbytes == first.nbytes + second.nbytes > cache.max_bytes
    cache.put("second", second)  # what the plugin does after refining
    assert cache.get("first") is None and cache.get("second") is second  # the older one let go
    assert cache.nbytes == second.nbytes
