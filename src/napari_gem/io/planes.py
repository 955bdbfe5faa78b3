"""Stacks as planes: which axes are the image plane, and lazy views of single planes.

GEM sees 2D images (gray, RGB or RGBA). A stack of any dimensionality is processed
plane by plane; outputs keep the source's shape without its colour axis, plane axes
first, then ``Y`` and ``X``.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from itertools import product

import numpy as np

from .images import LoadedImage


@dataclass(frozen=True)
class PlaneLayout:
    """Where the plane, colour and stack axes of an array are."""

    shape: tuple[int, ...]
    y: int
    x: int
    color: int | None
    planes: tuple[int, ...]  # stack axes, iterated plane by plane

    @classmethod
    def of(cls, image: LoadedImage) -> PlaneLayout:
        axes = image.axes
        color = axes.index("S") if "S" in axes else None
        if "Y" in axes and "X" in axes:
            y, x = axes.rindex("Y"), axes.rindex("X")
        else:
            spatial = [axis for axis in range(len(axes)) if axis != color]
            y, x = spatial[-2], spatial[-1]
        planes = tuple(axis for axis in range(len(axes)) if axis not in (y, x, color))
        return cls(image.shape, y, x, color, planes)

    @property
    def output_shape(self) -> tuple[int, ...]:
        """Shape of masks and heatmaps: stack axes, then ``Y``, ``X`` (colour dropped)."""
        return tuple(self.shape[axis] for axis in self.output_axes)

    @property
    def output_axes(self) -> tuple[int, ...]:
        """Source axes of each output axis."""
        return (*self.planes, self.y, self.x)

    @property
    def plane_shape(self) -> tuple[int, int]:
        return self.shape[self.y], self.shape[self.x]

    def plane_indices(self) -> Iterator[tuple[int, ...]]:
        """Index of every plane along the stack axes (one empty tuple for a 2D image)."""
        return product(*(range(self.shape[axis]) for axis in self.planes))

    @property
    def num_planes(self) -> int:
        return int(np.prod([self.shape[axis] for axis in self.planes], dtype=np.int64))

    def output_values(self, values: tuple[float, ...] | None) -> tuple[float, ...] | None:
        """Per-axis values (scale, translate) of the source, for the output axes."""
        if values is None:
            return None
        return tuple(values[axis] for axis in self.output_axes)


class PlaneView:
    """One 2D plane of an N-D array, ``[H, W]`` or ``[H, W, S]``, read only when sliced.

    Behaves like the array-likes the engine accepts: ``shape``, ``dtype``, slicing and
    ``np.asarray``. Slicing reads just the asked-for window from the source.
    """

    def __init__(self, array, layout: PlaneLayout, index: tuple[int, ...]) -> None:
        if len(index) != len(layout.planes):
            raise ValueError(f"plane index {index} does not match stack axes {layout.planes}")
        self._array = array
        self._layout = layout
        self._fixed = dict(zip(layout.planes, index, strict=True))
        self._axes = (layout.y, layout.x) + (() if layout.color is None else (layout.color,))

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self._layout.shape[axis] for axis in self._axes)

    @property
    def dtype(self) -> np.dtype:
        return np.dtype(self._array.dtype)

    @property
    def ndim(self) -> int:
        return len(self._axes)

    def __getitem__(self, key) -> np.ndarray:
        key = key if isinstance(key, tuple) else (key,)
        if len(key) > self.ndim or any(not isinstance(k, slice | int) for k in key):
            raise IndexError(f"a plane takes up to {self.ndim} slices or integers, got {key}")
        key = key + (slice(None),) * (self.ndim - len(key))
        full = [self._fixed.get(axis) for axis in range(len(self._layout.shape))]
        for axis, part in zip(self._axes, key, strict=True):
            full[axis] = part
        block = np.asarray(self._array[tuple(full)])
        # The block keeps the sliced axes in source order; a source may hold colour
        # before the plane (planar RGB), so reorder them to Y, X, colour.
        wanted = [axis for axis in self._axes if isinstance(full[axis], slice)]
        in_source_order = sorted(wanted)
        return block.transpose([in_source_order.index(axis) for axis in wanted])

    def __array__(self, dtype=None, copy=None) -> np.ndarray:
        block = self[(slice(None),) * self.ndim]
        return block if dtype is None else block.astype(dtype)


def planes(image: LoadedImage) -> Iterator[tuple[tuple[int, ...], PlaneView]]:
    """``(index, plane)`` for every plane of the image, in C order of the stack axes."""
    layout = PlaneLayout.of(image)
    for index in layout.plane_indices():
        yield index, PlaneView(image.array, layout, index)
