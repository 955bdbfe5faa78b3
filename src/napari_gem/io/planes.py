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
    """A lazy 2D image ``[H, W]`` or ``[H, W, C]`` taken from N-D arrays: the one plane type of
    the batch command, the out-of-core path and the napari plugin.

    ``parts`` are ``(array, template)`` pairs: the template holds an int for each fixed
    axis, ``"y"`` and ``"x"`` for the plane's axes and ``slice(None)`` for a colour axis,
    wherever the source keeps it (planar RGB too). One part with a colour axis gives
    ``[H, W, C]``; several single-channel parts are stacked as channels. Supports
    ``shape``, ``dtype``, ``ndim``, slicing (``view[y0:y1, x0:x1]``, steps and integers
    allowed) and ``np.asarray``: only the requested region is read (dask and zarr arrays
    stay lazy until then).
    """

    def __init__(self, parts, height: int, width: int, dtype, colour_axis: bool) -> None:
        self._parts = list(parts)
        self._height, self._width = int(height), int(width)
        self._dtype = np.dtype(dtype)
        self._colour_axis = colour_axis  # one part with a colour axis

    @classmethod
    def of_layout(cls, array, layout: PlaneLayout, index: tuple[int, ...]) -> PlaneView:
        """Plane ``index`` (along the layout's stack axes) of ``array``."""
        if len(index) != len(layout.planes):
            raise ValueError(f"plane index {index} does not match stack axes {layout.planes}")
        fixed = dict(zip(layout.planes, index, strict=True))
        roles = {layout.y: "y", layout.x: "x", layout.color: slice(None)}
        template = tuple(fixed[axis] if axis in fixed else roles[axis] for axis in range(len(layout.shape)))
        return cls([(array, template)], layout.shape[layout.y], layout.shape[layout.x], array.dtype,
                   colour_axis=layout.color is not None)

    @property
    def shape(self) -> tuple[int, ...]:
        if self._colour_axis:
            array, template = self._parts[0]
            colour = next(axis for axis, role in enumerate(template) if isinstance(role, slice))
            return (self._height, self._width, int(array.shape[colour]))
        if len(self._parts) == 1:
            return (self._height, self._width)
        return (self._height, self._width, len(self._parts))

    @property
    def dtype(self) -> np.dtype:
        return self._dtype

    @property
    def ndim(self) -> int:
        return len(self.shape)

    def _read(self, ys: slice, xs: slice) -> np.ndarray:
        planes = []
        for array, template in self._parts:
            index = tuple(ys if t == "y" else xs if t == "x" else t for t in template)
            block = np.asarray(array[index])
            # The block keeps the sliced axes in source order (colour may come first).
            kept = [t for t in template if not isinstance(t, int | np.integer)]
            rank = [0 if t == "y" else 1 if t == "x" else 2 for t in kept]
            planes.append(block.transpose(sorted(range(len(kept)), key=rank.__getitem__)))
        if len(planes) == 1:
            return planes[0].astype(self._dtype, copy=False)
        return np.stack(planes, axis=-1).astype(self._dtype, copy=False)

    def __getitem__(self, key) -> np.ndarray:
        if not isinstance(key, tuple):
            key = (key,)
        key = tuple(k for k in key if k is not Ellipsis)
        if len(key) > self.ndim or any(not isinstance(k, slice | int | np.integer) for k in key):
            raise IndexError(f"a plane takes up to {self.ndim} slices or integers, got {key}")
        key = key + (slice(None),) * (self.ndim - len(key))
        ys, xs, *rest = key
        squeeze = [i for i, k in enumerate((ys, xs)) if isinstance(k, int | np.integer)]
        ys = slice(int(ys), int(ys) + 1 or None) if isinstance(ys, int | np.integer) else ys
        xs = slice(int(xs), int(xs) + 1 or None) if isinstance(xs, int | np.integer) else xs
        out = self._read(ys, xs)
        if rest:
            out = out[(slice(None), slice(None), *rest)]
        if squeeze:
            out = np.squeeze(out, axis=tuple(squeeze))
        return out

    def __array__(self, dtype=None, copy=None) -> np.ndarray:
        out = self._read(slice(None), slice(None))
        return out if dtype is None else out.astype(dtype, copy=False)

    def __repr__(self) -> str:
        return f"PlaneView(shape={self.shape}, dtype={self.dtype})"


def planes(image: LoadedImage) -> Iterator[tuple[tuple[int, ...], PlaneView]]:
    """``(index, plane)`` for every plane of the image, in C order of the stack axes."""
    layout = PlaneLayout.of(image)
    for index in layout.plane_indices():
        yield index, PlaneView.of_layout(image.array, layout, index)
