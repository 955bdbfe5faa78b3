"""What the model sees: 2D planes (gray or RGB) cut out of any napari Image layer.

A napari Image layer may be 2D, a 3D stack or a time series, RGB(A), have a channel
axis, be split into one layer per channel, be lazy (dask, zarr) or multiscale. This
module turns the user's choice (which plane(s), which channel(s)) into:

- :class:`PlaneView` objects: lazy 2D arrays that read only the windows the engine
  asks for, and
- an :class:`OutputGeometry`: the shape, scale and translate of the output layers, so
  that they overlay the source exactly.

Nothing here imports Qt; layers are only read.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from ..io.planes import PlaneView
from .view_region import CroppedArray, ViewBox, budget_pixels, view_level

#: How the model input is built from the layer.
CHANNEL_MODES = ("layer", "gray", "rgb", "layers")
CHANNEL_MODE_LABELS = {
    "layer": "layer as shown (gray or RGB)",
    "gray": "one channel as gray",
    "rgb": "three channels as RGB",
    "layers": "three layers as RGB",
}
PLANE_MODES = ("current", "all")

#: Below this many pixels on a side there is nothing to locate.
MIN_SIDE = 8


class PlaneError(ValueError):
    """The layer or the channel choice cannot give the model a 2D image; says why."""


@dataclass(frozen=True)
class ChannelChoice:
    """Which channels the model sees.

    ``mode``: ``"layer"`` (the layer as shown: gray, or RGB when the layer is RGB),
    ``"gray"`` (channel ``channels[0]`` of ``axis``), ``"rgb"`` (channels
    ``channels[0:3]`` of ``axis`` as red, green, blue) or ``"layers"`` (the layer as
    red and ``extra_layers`` as green and blue).
    """

    mode: str = "layer"
    axis: int | None = None
    channels: tuple[int, ...] = ()
    extra_layers: tuple = ()

    def describe(self) -> dict:
        """JSON-ready description, stored with results."""
        out: dict = {"mode": self.mode}
        if self.mode in ("gray", "rgb"):
            out.update(axis=self.axis, channels=list(self.channels))
        if self.mode == "layers":
            out["layers"] = [layer.name for layer in self.extra_layers]
        return out


def data_levels(layer) -> list:
    """The arrays of a layer: one for ordinary layers, one per level for multiscale ones."""
    if getattr(layer, "multiscale", False):
        return [layer.data[level] for level in range(len(layer.data))]
    return [layer.data]


def spatial_ndim(layer) -> int:
    """Number of non-colour axes of an Image layer."""
    return int(layer.ndim)


def channel_axis_choices(layer) -> list[tuple[str, int]]:
    """``(label, axis)`` for every axis that can serve as a channel axis.

    Any axis except the two displayed (last) ones; for RGB(A) layers the colour axis.
    """
    shape = tuple(data_levels(layer)[0].shape)
    if layer.rgb:
        return [(f"colour components ({shape[-1]})", len(shape) - 1)]
    labels = _axis_labels(layer)
    return [
        (f"axis {axis}: {labels[axis]} ({shape[axis]})", axis)
        for axis in range(spatial_ndim(layer) - 2)
    ]


def _axis_labels(layer) -> tuple[str, ...]:
    labels = tuple(getattr(layer, "axis_labels", ()) or ())
    if len(labels) != spatial_ndim(layer):
        labels = tuple(f"axis {i}" for i in range(spatial_ndim(layer)))
    return labels


def validate_choice(layer, choice: ChannelChoice) -> None:
    """Raise :class:`PlaneError` with a clear message when ``choice`` does not fit ``layer``."""
    if spatial_ndim(layer) < 2:
        raise PlaneError(f"layer {layer.name!r} is {spatial_ndim(layer)}D; napari-gem needs 2D images "
                         "(or stacks of them)")
    shape = tuple(data_levels(layer)[0].shape)
    if choice.mode not in CHANNEL_MODES:
        raise PlaneError(f"unknown channel mode {choice.mode!r}")
    if choice.mode in ("gray", "rgb"):
        valid = [axis for _, axis in channel_axis_choices(layer)]
        if choice.axis not in valid:
            raise PlaneError(
                f"layer {layer.name!r} (shape {shape}) has no channel axis to choose from: "
                "a channel axis must be one of the leading (non-displayed) axes. "
                "Use 'layer as shown', or 'three layers as RGB' for channels split into layers."
                if not valid
                else f"channel axis {choice.axis} is not one of {valid} for layer {layer.name!r}"
            )
        wanted = 1 if choice.mode == "gray" else 3
        if len(choice.channels) != wanted:
            raise PlaneError(
                f"'{CHANNEL_MODE_LABELS[choice.mode]}' needs {wanted} channel index(es), "
                f"got {list(choice.channels)}"
            )
        size = shape[choice.axis]
        bad = [c for c in choice.channels if not 0 <= c < size]
        if bad:
            raise PlaneError(
                f"channel index(es) {bad} out of range: axis {choice.axis} of layer "
                f"{layer.name!r} has {size} channels (0..{size - 1})"
            )
    if choice.mode == "layers":
        if len(choice.extra_layers) != 2 or any(x is None for x in choice.extra_layers):
            raise PlaneError("'three layers as RGB' needs a green and a blue layer")
        if layer.rgb:
            raise PlaneError(f"layer {layer.name!r} is RGB already; use 'layer as shown'")
        for other in choice.extra_layers:
            if other.rgb or tuple(data_levels(other)[0].shape) != shape:
                raise PlaneError(
                    f"layer {other.name!r} (shape {tuple(data_levels(other)[0].shape)}) does "
                    f"not match {layer.name!r} (shape {shape}): the three layers must be "
                    "single-channel images of one shape"
                )
            if getattr(other, "multiscale", False) != getattr(layer, "multiscale", False):
                raise PlaneError("the three layers must all be multiscale or all not")


# -- geometry ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class OutputGeometry:
    """Shape and placement of output layers (one value per non-colour axis of the source).

    ``shape`` is the source's shape at the chosen level, with a consumed channel axis
    collapsed to size 1; ``scale``/``translate`` put that axis across all channels (so the
    masks show at every channel) and map a coarser multiscale level onto level 0.
    """

    shape: tuple[int, ...]
    scale: tuple[float, ...]
    translate: tuple[float, ...]
    units: tuple | None = None
    axis_labels: tuple[str, ...] | None = None
    rotate: object = None
    shear: object = None
    affine: object = None
    level: int = 0
    channel_axis: int | None = None  # the collapsed axis, in output axes
    note: str | None = None  # what the output layers' names add ("view": a crop of the image)

    def layer_kwargs(self) -> dict:
        """Keyword arguments for ``Viewer.add_image`` / ``add_labels``."""
        kwargs = {"scale": self.scale, "translate": self.translate}
        for name in ("units", "axis_labels", "rotate", "shear", "affine"):
            value = getattr(self, name)
            if value is not None:
                kwargs[name] = value
        return kwargs


@dataclass
class PlaneJob:
    """Everything the worker needs to run over a layer, computed on the main thread."""

    source_name: str
    planes: list[tuple[tuple[int, ...], PlaneView]]  # (output index of the plane, view)
    geometry: OutputGeometry
    plane_shape: tuple[int, int]
    channel: dict = field(default_factory=dict)
    level: int = 0
    level_shape: tuple[int, ...] = ()
    view: dict | None = None  # "this view": the canvas's box (level 0) and the level's crop


def choose_level(level_plane_shapes: Sequence[tuple[int, int]], options) -> int:
    """Pick a multiscale level that fits the options.

    ``tiling="always"``: level 0 (full detail, in windows). ``"never"``: the coarsest
    level still at least ``input_size`` on its longer side (the model sees no more).
    ``"auto"``: the finest level whose longer side is at most ``tile_above`` (one pass,
    no windows), else the coarsest level.
    """
    sides = [max(shape) for shape in level_plane_shapes]
    if options.tiling == "always" or len(sides) == 1:
        return 0
    if options.tiling == "never":
        big_enough = [i for i, side in enumerate(sides) if side >= options.input_size]
        return max(big_enough) if big_enough else 0
    fitting = [i for i, side in enumerate(sides) if side <= options.tile_above]
    return min(fitting) if fitting else len(sides) - 1


def current_index(layer, world_point, level_factors) -> list[int]:
    """The layer's data index (at a level) of the viewer's current world point."""
    point = np.asarray(world_point, dtype=float)[-spatial_ndim(layer):]
    data = np.asarray(layer.world_to_data(point), dtype=float)
    shape = tuple(data_levels(layer)[0].shape)[: spatial_ndim(layer)]
    index = []
    for axis, value in enumerate(data):
        level_value = value / level_factors[axis]
        size = math.ceil(shape[axis] / level_factors[axis])
        index.append(int(np.clip(np.round(level_value), 0, max(size - 1, 0))))
    return index


def build_job(
    layer,
    choice: ChannelChoice,
    plane_mode: str,
    options,
    world_point: Sequence[float] | None = None,
    view: ViewBox | None = None,
    view_budget: int | None = None,
) -> PlaneJob:
    """Plan the planes of ``layer`` to encode and where the outputs go.

    ``world_point`` (the viewer's ``dims.point``) selects the current plane when
    ``plane_mode == "current"``. ``view``: a box of level-0 pixels of the plane (the
    canvas's region, see :mod:`.view_region`); the run then covers that box only, at the
    finest level whose crop holds at most ``view_budget`` pixels (None: the field's default),
    on every planned plane.
    """
    validate_choice(layer, choice)
    ndim = spatial_ndim(layer)
    levels = data_levels(layer)
    extra_levels = [data_levels(other) for other in choice.extra_layers]
    plane_shapes = [tuple(int(s) for s in lv.shape[ndim - 2 : ndim]) for lv in levels]
    all_factors = _level_factors(layer, levels, ndim)
    if view is None:
        level = choose_level(plane_shapes, options) if len(levels) > 1 else 0
    else:
        budget = view_budget if view_budget is not None else budget_pixels()
        level = view_level(view, [f[-2:] for f in all_factors], plane_shapes, budget)
    array = levels[level]
    level_shape = tuple(int(s) for s in array.shape[:ndim])
    factors = all_factors[level]
    crop = None
    if view is not None:
        crop = view.at_level(factors[-2:], level_shape[-2:]).grown(MIN_SIDE, level_shape[-2:])
        array = CroppedArray(array, ndim - 2, crop)
        extra_levels = [[*lv[:level], CroppedArray(lv[level], ndim - 2, crop)] for lv in extra_levels]
    height, width = (crop.shape if crop is not None else level_shape[-2:])
    if height < MIN_SIDE or width < MIN_SIDE:
        raise PlaneError(
            f"layer {layer.name!r} is {height} x {width} pixels: too small to locate anything "
            f"(at least {MIN_SIDE} x {MIN_SIDE} pixels are needed)"
        )

    channel_axis = choice.axis if choice.mode in ("gray", "rgb") else None
    colour_channel = layer.rgb and channel_axis == len(array.shape) - 1
    leading = [a for a in range(ndim - 2) if a != channel_axis]
    if plane_mode == "current":
        current = current_index(layer, world_point if world_point is not None else
                                 [0.0] * ndim, factors)
        plane_indices = [tuple(current[a] for a in leading)]
    elif plane_mode == "all":
        plane_indices = list(itertools.product(*(range(level_shape[a]) for a in leading)))
    else:
        raise PlaneError(f"unknown plane mode {plane_mode!r}; use 'current' or 'all'")

    dtype = np.result_type(array.dtype, *(lv[level].dtype for lv in extra_levels))
    planes = []
    for fixed in plane_indices:
        template: list = []
        for axis in range(ndim):
            if axis == ndim - 2:
                template.append("y")
            elif axis == ndim - 1:
                template.append("x")
            elif axis == channel_axis:
                template.append(None)  # filled per channel below
            else:
                template.append(fixed[leading.index(axis)])
        if layer.rgb:
            template.append(slice(None))
        view_of_plane = _plane_view(array, template, choice, extra_levels, level, channel_axis,
                                    colour_channel, height, width, dtype, layer.rgb)
        output_index = list(fixed)
        if channel_axis is not None and not colour_channel:
            output_index.insert(channel_axis, 0)  # the collapsed channel axis
        planes.append((tuple(output_index), view_of_plane))

    output_shape = (*level_shape[:-2], height, width)
    geometry = _geometry(layer, output_shape, factors, channel_axis, colour_channel, level, crop)
    return PlaneJob(
        source_name=layer.name,
        planes=planes,
        geometry=geometry,
        plane_shape=(height, width),
        channel=choice.describe(),
        level=level,
        level_shape=level_shape,
        view=None if view is None else {"box": view.as_list(), "level": level,
                                        "level_box": crop.as_list()},
    )


def _level_factors(layer, levels, ndim: int) -> list[list[float]]:
    """Each level's downsample factor per non-colour axis (napari's own for multiscale layers)."""
    if len(levels) == 1:
        return [[1.0] * ndim]
    return [[float(f) for f in np.asarray(layer.downsample_factors[level], dtype=float)[:ndim]]
            for level in range(len(levels))]


def _plane_view(array, template, choice, extra_levels, level, channel_axis, colour_channel,
                height, width, dtype, rgb) -> PlaneView:
    if choice.mode == "layers":
        arrays = [array, *(lv[level] for lv in extra_levels)]
        parts = [(a, tuple(template)) for a in arrays]
        return PlaneView(parts, height, width, dtype, colour_axis=False)
    if choice.mode in ("gray", "rgb"):
        parts = []
        for channel in choice.channels:
            filled = list(template)
            if colour_channel:
                filled[-1] = channel
            else:
                filled[channel_axis] = channel
            parts.append((array, tuple(filled)))
        return PlaneView(parts, height, width, dtype, colour_axis=False)
    return PlaneView([(array, tuple(template))], height, width, dtype, colour_axis=rgb)


def _geometry(layer, output_shape, factors, channel_axis, colour_channel, level,
              crop: ViewBox | None = None) -> OutputGeometry:
    scale = [float(s) * f for s, f in zip(layer.scale, factors, strict=True)]
    translate = [float(t) for t in layer.translate]
    if crop is not None:
        translate = list(_crop_translate(layer, translate, factors, crop))
    shape = list(output_shape)
    collapsed = None
    if channel_axis is not None and not colour_channel:
        # One output plane stands for every channel: stretch the size-1 axis over all of
        # them, centred, so napari shows the masks whichever channel is displayed.
        count = shape[channel_axis]
        translate[channel_axis] += (count - 1) / 2 * scale[channel_axis]
        scale[channel_axis] *= count
        shape[channel_axis] = 1
        collapsed = channel_axis
    units = tuple(getattr(layer, "units", ()) or ()) or None
    labels = tuple(getattr(layer, "axis_labels", ()) or ()) or None
    rotate = np.asarray(layer.rotate) if not np.allclose(layer.rotate, np.eye(len(shape))) else None
    shear = np.asarray(layer.shear) if np.any(np.asarray(layer.shear) != 0) else None
    affine = layer.affine if not np.allclose(layer.affine.affine_matrix,
                                             np.eye(len(shape) + 1)) else None
    return OutputGeometry(
        shape=tuple(shape),
        scale=tuple(scale),
        translate=tuple(translate),
        units=units,
        axis_labels=labels,
        rotate=rotate,
        shear=shear,
        affine=affine,
        level=level,
        channel_axis=collapsed,
        note=None if crop is None else "view",
    )


def _crop_translate(layer, translate, factors, crop: ViewBox) -> np.ndarray:
    """The translate that puts a crop's pixel (0, 0) where the layer draws it: the layer's
    own plus the crop's corner (level-0 data units) through its scale, shear and rotation."""
    from napari.utils.transforms import CompositeAffine

    corner = np.zeros(len(translate))
    corner[-2:] = crop.y0 * factors[-2], crop.x0 * factors[-1]
    linear = CompositeAffine(scale=layer.scale, rotate=layer.rotate, shear=layer.shear,
                             ndim=len(translate))
    return np.asarray(translate, dtype=float) + linear(corner)


def sample_values(view: PlaneView, limit: int = 250_000) -> np.ndarray:
    """A strided sample of a plane's values (bounded reads, for constant/NaN checks)."""
    height, width = view.shape[:2]
    step = max(1, int(np.ceil(np.sqrt(height * width / limit))))
    return np.asarray(view[::step, ::step])


def describe_constant(view: PlaneView) -> str | None:
    """``"all NaN"``/``"constant (value v)"`` when a plane has nothing to find, else None.

    Only a bounded sample is read, so a lazy plane is not loaded whole.
    """
    values = sample_values(view)
    if values.dtype.kind == "f":
        finite = values[np.isfinite(values)]
        if finite.size == 0:
            return "all NaN (no finite pixel)"
        values = finite
    if values.size and values.min() == values.max():
        return f"constant (every pixel is {values.flat[0]!r})"
    return None
