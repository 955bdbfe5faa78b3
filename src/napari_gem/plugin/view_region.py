"""Which part of an image a run covers: the level that fits, or the region the canvas shows.

"This view" runs at full resolution (or the finest level within a pixel budget) on the
region of the layer's current plane that the canvas shows. This module turns napari's
camera (centre, zoom) and canvas size into that region, in level-0 data pixels of the
layer (its scale, translate, rotate and shear undone; clipped to the image), picks the
level, and reads a crop of a level lazily (a zarr or dask level is never loaded whole).

No Qt here: only napari's models (camera, dims, canvas, layer transforms) are read.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ..engine.described import option

#: ``(label, value)`` of every extent the source panel offers (one more pair is one more choice).
EXTENTS = (("level that fits", "fit"), ("this view", "view"), ("whole image", "whole"))
EXTENT_HELP = (
    "How much of a large or multiscale image a run covers. 'level that fits': the whole "
    "image at the finest multiscale level whose side is at most 'tile above' (a 100,000 px "
    "slide is seen coarsely). 'this view': the region the canvas shows, at full resolution "
    "while it fits the view budget, else at the finest level that does, in windows at that "
    "level's pixels (tiling 'auto' becomes 'always'); the outputs cover that region only. "
    "'whole image': all of it at full resolution, as a background job on the slide's file "
    "(encoded once into a saved encoding; later prompts reuse it), the outputs as OME-Zarr "
    "pyramids."
)


@dataclass(frozen=True)
class ExtentOptions:
    """What part of the image a run covers (the source panel's fields, described once)."""

    extent: str = option("fit", label="extent", kind="choice", choices=EXTENTS, help=EXTENT_HELP)
    view_megapixels: float = option(
        4.0, label="view budget (megapixels)", kind="float", minimum=0.1, maximum=1000.0, step=0.5,
        help="'this view' runs at full resolution when the view holds at most this many "
        "million pixels, else at the finest multiscale level within it (a plain layer is "
        "always read at full resolution, in windows).")


def budget_pixels(megapixels: float = ExtentOptions.view_megapixels) -> int:
    """A view budget in pixels (the field's default when none is given)."""
    return int(megapixels * 1_000_000)


class ViewError(ValueError):
    """The canvas shows nothing a run can take (outside the image, 3D view); says what to do."""


@dataclass(frozen=True)
class ViewBox:
    """Rows ``y0:y1`` and columns ``x0:x1`` of a plane (ends excluded), at some level."""

    y0: int
    x0: int
    y1: int
    x1: int

    @property
    def shape(self) -> tuple[int, int]:
        return self.y1 - self.y0, self.x1 - self.x0

    @property
    def pixels(self) -> int:
        return self.shape[0] * self.shape[1]

    def as_list(self) -> list[int]:
        """``[y0, x0, y1, x1]`` (JSON-ready)."""
        return [self.y0, self.x0, self.y1, self.x1]

    def at_level(self, factors: Sequence[float], shape: Sequence[int]) -> ViewBox:
        """The pixels of a level (downsampled by ``factors``, of plane ``shape``) that cover
        this level-0 box. napari centres level pixel ``j`` on level-0 position ``f * j``."""
        (fy, fx), (height, width) = factors, shape
        return ViewBox(
            _clip(math.floor((self.y0 - 0.5) / fy + 0.5), height),
            _clip(math.floor((self.x0 - 0.5) / fx + 0.5), width),
            _clip(math.ceil((self.y1 - 0.5) / fy + 0.5), height),
            _clip(math.ceil((self.x1 - 0.5) / fx + 0.5), width),
        )

    def grown(self, side: int, shape: Sequence[int]) -> ViewBox:
        """At least ``side`` pixels on each side (where the plane of ``shape`` allows), grown
        around the box's centre and shifted back inside the plane."""
        y0, y1 = _grow(self.y0, self.y1, side, shape[0])
        x0, x1 = _grow(self.x0, self.x1, side, shape[1])
        return ViewBox(y0, x0, y1, x1)


def _clip(value: int, size: int) -> int:
    return int(min(max(value, 0), size))


def _grow(start: int, stop: int, side: int, size: int) -> tuple[int, int]:
    side = min(side, size)
    if stop - start >= side:
        return start, stop
    start = (start + stop) // 2 - side // 2
    start = min(max(start, 0), size - side)
    return start, start + side


def region_for(extent: str, viewer, layer) -> ViewBox | None:
    """The region a run of ``extent`` covers: None for the whole plane ("fit"), the canvas's
    box for "view"; a clear :class:`ViewError` for an extent without a region here."""
    region = REGIONS.get(extent)
    if region is None:
        known = ", ".join(f"'{label}'" for label, value in EXTENTS if value in REGIONS)
        raise ViewError(f"napari-gem cannot run on the extent {extent!r} here; choose one of "
                        f"{known} under 'extent'.")
    return region(viewer, layer)


def whole_plane(viewer, layer) -> None:
    """The "fit" extent's region: the whole plane (at the level that fits)."""
    return None


def visible_box(viewer, layer) -> ViewBox:
    """The level-0 pixels of ``layer``'s current plane that the canvas shows.

    Raises :class:`ViewError` when the view is 3D, shows other axes than the layer's image
    plane, or shows no part of the image.
    """
    dims = viewer.dims
    if dims.ndisplay != 2:
        raise ViewError("'this view' needs napari's 2D view: switch the canvas to 2D (the "
                        "2D/3D button), or choose 'level that fits' under 'extent'.")
    plane_axes = {dims.ndim - 2, dims.ndim - 1}
    if set(dims.displayed) != plane_axes:
        raise ViewError(
            f"The canvas shows axes {tuple(dims.displayed)}, not the image plane of "
            f"'{layer.name}' (its last two axes): reset the axis order (the dims 'transpose' "
            "and 'roll' buttons), or choose 'level that fits' under 'extent'.")
    height, width = viewer.canvas.viewbox_size(viewer.layers)
    camera = viewer.scene.camera if hasattr(viewer, "scene") else viewer.camera  # napari < 0.9
    zoom = float(camera.zoom)
    centre = tuple(camera.center)[-2:]
    level0 = layer.data[0] if layer.multiscale else layer.data
    plane_shape = tuple(int(s) for s in level0.shape[layer.ndim - 2:layer.ndim])
    box = box_from_camera(layer, dims.point, tuple(dims.displayed), centre,
                          (height / zoom / 2, width / zoom / 2), plane_shape)
    if box is None:
        raise ViewError(f"The canvas shows no part of '{layer.name}': pan or zoom onto the "
                        "image (View > Reset view), or choose 'level that fits' under 'extent'.")
    return box


#: Each extent's region (``(viewer, layer) -> ViewBox | None``).
REGIONS = {"fit": whole_plane, "view": visible_box}


def box_from_camera(layer, point: Sequence[float], displayed: Sequence[int],
                    centre: Sequence[float], half: Sequence[float],
                    plane_shape: Sequence[int]) -> ViewBox | None:
    """The level-0 box of ``layer`` under a canvas centred on world ``centre`` (the displayed
    axes' values) reaching ``half`` world units up/down and left/right; None when it misses
    the image. Other axes stay at the viewer's ``point``."""
    corners = []
    for sign_y, sign_x in itertools.product((-1, 1), repeat=2):
        world = np.asarray(point, dtype=float).copy()
        world[displayed[0]] = centre[0] + sign_y * half[0]
        world[displayed[1]] = centre[1] + sign_x * half[1]
        corners.append(np.asarray(layer.world_to_data(world[-layer.ndim:]), dtype=float)[-2:])
    low, high = np.min(corners, axis=0), np.max(corners, axis=0)
    # Data pixel i spans [i - 0.5, i + 0.5]: the first and one past the last pixel touched.
    box = ViewBox(_clip(math.floor(low[0] + 0.5), plane_shape[0]),
                  _clip(math.floor(low[1] + 0.5), plane_shape[1]),
                  _clip(math.ceil(high[0] + 0.5), plane_shape[0]),
                  _clip(math.ceil(high[1] + 0.5), plane_shape[1]))
    return box if box.y1 > box.y0 and box.x1 > box.x0 else None


def view_level(box: ViewBox, factors: Sequence[Sequence[float]],
               shapes: Sequence[Sequence[int]], budget: int) -> int:
    """The finest level whose crop of ``box`` holds at most ``budget`` pixels (else the
    coarsest); ``factors``/``shapes``: each level's plane downsample factors and plane shape."""
    for level, (level_factors, shape) in enumerate(zip(factors, shapes, strict=True)):
        if box.at_level(level_factors, shape).pixels <= budget:
            return level
    return len(shapes) - 1


class CroppedArray:
    """A lazy box of an N-D array: axes ``y_axis`` and ``y_axis + 1`` start at the box's
    corner and are its size; reading a region reads only that region of the array."""

    def __init__(self, array, y_axis: int, box: ViewBox) -> None:
        self._array, self._y, self._box = array, int(y_axis), box
        shape = [int(s) for s in array.shape]
        shape[self._y:self._y + 2] = box.shape
        self.shape = tuple(shape)
        self.dtype = array.dtype
        self.ndim = len(shape)

    def __getitem__(self, index):
        index = list(index if isinstance(index, tuple) else (index,))
        index += [slice(None)] * (self.ndim - len(index))
        for axis, start in ((self._y, self._box.y0), (self._y + 1, self._box.x0)):
            index[axis] = _shifted(index[axis], start, self.shape[axis])
        return self._array[tuple(index)]


def _shifted(key, start: int, size: int):
    if isinstance(key, slice):
        first, stop, step = key.indices(size)
        if step < 0:
            raise IndexError("a cropped plane is read with forward steps only")
        return slice(first + start, max(stop, first) + start, step)
    key = int(key)
    if not -size <= key < size:
        raise IndexError(f"index {key} out of range for a crop of {size} pixels")
    return (key % size) + start
