"""A real array that records every region read from it (proof that reads stay lazy)."""

from __future__ import annotations

import numpy as np


class ReadLog:
    """A real array that records the shape of every region read from it (lazy-read proof)."""

    def __init__(self, array: np.ndarray) -> None:
        self.array = array
        self.shape, self.dtype, self.ndim = array.shape, array.dtype, array.ndim
        self.reads: list[tuple] = []

    def __getitem__(self, key):
        out = self.array[key]
        self.reads.append(np.shape(out))
        return out
