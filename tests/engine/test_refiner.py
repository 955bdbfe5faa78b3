"""The stroke room: encoding builds nothing for strokes; the refiner, made on first use, owns
what it keeps and says how much that is (tests/plugin/test_cache_budget.py: the plugin counts it)."""

from __future__ import annotations

import numpy as np
import torch

from napari_gem.engine.encoded import encode


def _image(seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    image = 0.7 + 0.05 * rng.standard_normal((160, 192))
    image[40:90, 50:110] = 0.2
    return image.astype(np.float32)


def _strokes(shape):
    positive, negative = np.zeros(shape, bool), np.zeros(shape, bool)
    positive[55:65, 70:80] = True
    negative[120:130, 150:170] = True
    return positive, negative


def _tensor_bytes(*tensors: torch.Tensor) -> int:
    return sum(t.numel() * t.element_size() for t in tensors)


def test_encode_builds_no_stroke_input_until_a_refinement_asks(tiny_gem):
    encoded = encode(_image(), tiny_gem)
    # What an encoding holds: its features and embedding, nothing for the strokes.
    assert encoded.nbytes == _tensor_bytes(encoded.features, encoded.clip_embedding)
    arrays = sorted(name for name, value in vars(encoded).items()
                    if isinstance(value, (np.ndarray, torch.Tensor)))
    assert arrays == ["clip_embedding", "features"]
    refiner = encoded.refiner()
    assert refiner.nbytes == 0 and encoded.refiner() is refiner  # made once, empty until used
    result = encoded.refine("a square", positive=_strokes(encoded.image_shape)[0])
    assert result.masks[0][55:65, 70:80].all()
    assert refiner.nbytes > 0
    assert encoded.nbytes == _tensor_bytes(encoded.features, encoded.clip_embedding) + refiner.nbytes
    refiner.clear()
    assert encoded.nbytes == _tensor_bytes(encoded.features, encoded.clip_embedding)
