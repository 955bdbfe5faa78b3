"""Geometry of the out-of-core path: what a window task needs, and chunk boxes.

Windows are the engine's (:func:`napari_gem.engine.tiling.plan_windows`): they start at
multiples of the patch size on the plane padded to a multiple of the patch size, so
every window's patch grid is a block of one global grid. Scores are blended on that
grid with the engine's taper, then divided by the summed weight: no seams, and since
cosine similarity is linear in the features this equals blending the features
themselves, as the engine's tiled mode does.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..engine.tiling import WindowPlan, taper


@dataclass(frozen=True)
class WindowShape:
    """Size of the windows and how they overlap: all a task needs to place a window.

    A plan's window starts can be many; tasks get this small part of it instead.
    """

    patch_size: int
    window_shape: tuple[int, int]  # pixels, multiples of the patch size
    overlap: int

    @classmethod
    def of(cls, plan: WindowPlan) -> WindowShape:
        return cls(plan.patch_size, plan.window_shape, plan.overlap)

    @property
    def window_cells(self) -> tuple[int, int]:
        return (self.window_shape[0] // self.patch_size, self.window_shape[1] // self.patch_size)

    def cell_box(self, start: tuple[int, int]) -> tuple[int, int, int, int]:
        """``(row0, row1, col0, col1)`` of the window at pixel ``start`` on the global grid."""
        row, col = start[0] // self.patch_size, start[1] // self.patch_size
        return row, row + self.window_cells[0], col, col + self.window_cells[1]

    def taper(self) -> np.ndarray:
        """Blend weight ``[wgh, wgw]`` of every window: the engine's, as numpy."""
        return taper(self.window_cells, self.overlap // self.patch_size).numpy()


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
