"""Sliding windows over a large image, aligned to the patch grid, and their blend weights.

Windows start at multiples of the patch size on an image padded to a multiple of
the patch size, so every window's patch grid is a sub-grid of one global grid.
Features are blended there with a taper that falls off towards window borders, then
divided by the summed weight: since similarity is linear in the features, this is
the same as blending every window's heatmap, and it leaves no seams.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch


@dataclass(frozen=True)
class WindowPlan:
    """Where the windows go, in pixels of the (padded) image."""

    image_shape: tuple[int, int]
    padded_shape: tuple[int, int]
    window_shape: tuple[int, int]
    starts: tuple[tuple[int, int], ...]
    patch_size: int
    overlap: int

    @property
    def grid_shape(self) -> tuple[int, int]:
        return (self.padded_shape[0] // self.patch_size, self.padded_shape[1] // self.patch_size)

    @property
    def window_grid(self) -> tuple[int, int]:
        return (self.window_shape[0] // self.patch_size, self.window_shape[1] // self.patch_size)

    def batches(self, size: int) -> Iterator[tuple[tuple[int, int], ...]]:
        for first in range(0, len(self.starts), size):
            yield self.starts[first : first + size]


def _round_up(value: int, multiple: int) -> int:
    return -(-value // multiple) * multiple


def _axis_starts(length: int, window: int, stride: int) -> list[int]:
    starts = list(range(0, max(length - window, 0) + 1, stride))
    if starts[-1] + window < length:
        starts.append(length - window)  # the last window sits flush with the border
    return starts


def plan_windows(
    image_shape: tuple[int, int], window: int, overlap: int, patch_size: int
) -> WindowPlan:
    """Windows of ``window`` pixels overlapping by at least ``overlap`` pixels."""
    padded = (_round_up(image_shape[0], patch_size), _round_up(image_shape[1], patch_size))
    side = max(patch_size, window // patch_size * patch_size)
    stride = max(patch_size, (side - overlap) // patch_size * patch_size)
    shape = (min(side, padded[0]), min(side, padded[1]))
    starts = tuple(
        (y, x)
        for y in _axis_starts(padded[0], shape[0], stride)
        for x in _axis_starts(padded[1], shape[1], stride)
    )
    return WindowPlan(tuple(image_shape), padded, shape, starts, patch_size, overlap)


def read_window(image, start: tuple[int, int], shape: tuple[int, int]) -> np.ndarray:
    """Pixels of one window; the part beyond the image repeats its edge."""
    y, x = start
    height, width = image.shape[:2]
    crop = np.asarray(image[y : min(y + shape[0], height), x : min(x + shape[1], width)])
    pad_y, pad_x = shape[0] - crop.shape[0], shape[1] - crop.shape[1]
    if pad_y or pad_x:
        padding = [(0, pad_y), (0, pad_x)] + [(0, 0)] * (crop.ndim - 2)
        crop = np.pad(crop, padding, mode="edge")
    return crop


def taper(grid: tuple[int, int], overlap_patches: int) -> torch.Tensor:
    """Separable blend weight ``[gh, gw]``: linear ramps over the overlap, never zero."""
    ramp = max(1, overlap_patches)

    def axis(length: int) -> torch.Tensor:
        index = torch.arange(length, dtype=torch.float32) + 0.5
        return torch.minimum(torch.minimum(index, length - index) / ramp, torch.tensor(1.0))

    return axis(grid[0])[:, None] * axis(grid[1])[None, :]


class FeatureBlender:
    """Accumulates window features on the global grid: ``sum(w * f) / sum(w)``."""

    def __init__(self, plan: WindowPlan, dim: int, device: torch.device | str = "cpu") -> None:
        self.plan = plan
        self.weighted = torch.zeros((*plan.grid_shape, dim), dtype=torch.float32, device=device)
        self.weight = torch.zeros(plan.grid_shape, dtype=torch.float32, device=device)
        self._taper = taper(plan.window_grid, plan.overlap // plan.patch_size).to(device)

    def add(self, start: tuple[int, int], features: torch.Tensor) -> None:
        """Add one window's ``[gh, gw, E]`` features at pixel offset ``start``."""
        gy, gx = start[0] // self.plan.patch_size, start[1] // self.plan.patch_size
        gh, gw = self.plan.window_grid
        if tuple(features.shape[:2]) != (gh, gw):  # a method on another grid (ProxyCLIP's VFM)
            features = torch.nn.functional.interpolate(
                features.permute(2, 0, 1)[None].float(), size=(gh, gw), mode="bilinear",
                align_corners=False, antialias=True)[0].permute(1, 2, 0)
        self.weighted[gy : gy + gh, gx : gx + gw] += features.float() * self._taper[..., None]
        self.weight[gy : gy + gh, gx : gx + gw] += self._taper

    def result(self) -> torch.Tensor:
        """Blended features ``[GH, GW, E]`` (in place: the accumulator is consumed)."""
        return self.weighted.div_(self.weight[..., None])
