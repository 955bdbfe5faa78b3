"""Geometry of the out-of-core path: sliding windows, blend weights and chunk boxes.

Windows start at multiples of the patch size on the plane padded to a multiple of the
patch size, so every window's patch grid is a block of one global grid (the same
layout the engine's tiled mode uses). Scores are blended on that grid with a taper
that falls off linearly across the overlap, then divided by the summed weight: no
seams, and since cosine similarity is linear in the features this equals blending
the features themselves.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class WindowShape:
    """Size of the windows and how they overlap: all a task needs to place a window."""

    patch_size: int
    window_shape: tuple[int, int]  # pixels, multiples of the patch size
    overlap: int

    @property
    def window_cells(self) -> tuple[int, int]:
        return (self.window_shape[0] // self.patch_size, self.window_shape[1] // self.patch_size)

    def cell_box(self, start: tuple[int, int]) -> tuple[int, int, int, int]:
        """``(row0, row1, col0, col1)`` of the window at pixel ``start`` on the global grid."""
        row, col = start[0] // self.patch_size, start[1] // self.patch_size
        return row, row + self.window_cells[0], col, col + self.window_cells[1]

    def taper(self) -> np.ndarray:
        """Blend weight ``[wgh, wgw]`` of every window: linear ramps over the overlap."""
        ramp = max(1, self.overlap // self.patch_size)

        def axis(length: int) -> np.ndarray:
            index = np.arange(length, dtype=np.float32) + 0.5
            return np.minimum(np.minimum(index, length - index) / ramp, 1.0).astype(np.float32)

        rows, cols = self.window_cells
        return axis(rows)[:, None] * axis(cols)[None, :]


@dataclass(frozen=True)
class WindowPlan:
    """Where the windows of one plane go."""

    image_shape: tuple[int, int]
    shape: WindowShape
    starts: tuple[tuple[int, int], ...]  # pixel offsets, multiples of the patch size

    @property
    def grid_shape(self) -> tuple[int, int]:
        """Cells of the global grid (the padded plane divided by the patch size)."""
        patch = self.shape.patch_size
        return (-(-self.image_shape[0] // patch), -(-self.image_shape[1] // patch))


def plan_windows(
    image_shape: tuple[int, int], window: int, overlap: int, patch_size: int
) -> WindowPlan:
    """Windows of ``window`` pixels overlapping by at least ``overlap`` pixels."""
    padded = tuple(-(-length // patch_size) * patch_size for length in image_shape)
    side = max(patch_size, window // patch_size * patch_size)
    stride = max(patch_size, (side - overlap) // patch_size * patch_size)
    shape = (min(side, padded[0]), min(side, padded[1]))
    starts = tuple(
        (y, x)
        for y in _axis_starts(padded[0], shape[0], stride)
        for x in _axis_starts(padded[1], shape[1], stride)
    )
    return WindowPlan(tuple(image_shape), WindowShape(patch_size, shape, overlap), starts)


def _axis_starts(length: int, window: int, stride: int) -> list[int]:
    starts = list(range(0, max(length - window, 0) + 1, stride))
    if starts[-1] + window < length:
        starts.append(length - window)  # the last window sits flush with the border
    return starts


def boxes(shape: tuple[int, int], block: int) -> list[tuple[int, int, int, int]]:
    """``(y0, y1, x0, x1)`` of the blocks tiling ``shape``, row by row."""
    return [
        (y, min(y + block, shape[0]), x, min(x + block, shape[1]))
        for y in range(0, shape[0], block)
        for x in range(0, shape[1], block)
    ]


def overlaps(a: tuple[int, int, int, int], b: tuple[int, int, int, int]) -> bool:
    return a[0] < b[1] and b[0] < a[1] and a[2] < b[3] and b[2] < a[3]


def cells_around(
    box: tuple[int, int, int, int], patch_size: int, grid_shape: tuple[int, int]
) -> tuple[int, int, int, int]:
    """Grid cells a pixel box needs for bilinear upsampling: its own plus one on each side."""
    y0, y1, x0, x1 = box
    return (
        max(0, y0 // patch_size - 1),
        min(grid_shape[0], -(-y1 // patch_size) + 1),
        max(0, x0 // patch_size - 1),
        min(grid_shape[1], -(-x1 // patch_size) + 1),
    )
