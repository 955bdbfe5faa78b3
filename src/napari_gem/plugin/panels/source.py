"""The source panel: which image layer, which planes and channels, and the prompts."""

from __future__ import annotations

from functools import partial

from magicgui.widgets import ComboBox, Container, LineEdit, SpinBox, TextEdit
from napari.layers import Image, Layer
from napari.utils.notifications import show_error
from qtpy.QtCore import QEvent, QObject, Qt

from ...engine.described import describe
from ..forms import build_fields
from ..layers import info
from ..planes import CHANNEL_MODE_LABELS, CHANNEL_MODES, ChannelChoice, channel_axis_choices, data_levels
from ..view_region import ExtentOptions

PLANE_MODES = [("current plane", "current"), ("all planes", "all")]


class LayerPicker(ComboBox):
    """An Image-layer combo box; assigning another kind of layer says why it cannot be used."""

    @property
    def value(self):
        return ComboBox.value.fget(self)

    @value.setter
    def value(self, value) -> None:
        if isinstance(value, Layer) and not isinstance(value, Image):
            show_error(f"'{value.name}' is a {type(value).__name__} layer; napari-gem reads Image "
                       "layers. Choose an image.")
            return
        ComboBox.value.fset(self, value)


class CtrlEnter(QObject):
    """Runs ``callback`` when Ctrl+Enter (or Ctrl+Return) is pressed in the prompt box."""

    def __init__(self, callback) -> None:
        super().__init__()
        self._callback = callback

    def eventFilter(self, obj, event) -> bool:  # noqa: N802 (Qt's name)
        if (
            event.type() == QEvent.Type.KeyPress
            and event.key() in (Qt.Key.Key_Return, Qt.Key.Key_Enter)
            and event.modifiers() & Qt.KeyboardModifier.ControlModifier
        ):
            self._callback()
            return True
        return False


def is_source(layer) -> bool:
    """Image layers that can be segmented (not the plugin's own heatmaps)."""
    return isinstance(layer, Image) and info(layer).get("role") != "heatmap"


def extent_applies(layer, tile_above: int) -> bool:
    """Whether the run's extent is a choice for ``layer``: a multiscale layer, or one whose
    plane is larger than ``tile_above`` on a side (else the whole plane fits)."""
    if not isinstance(layer, Image):
        return False
    plane = data_levels(layer)[0].shape[layer.ndim - 2:layer.ndim]
    return bool(layer.multiscale) or max(int(side) for side in plane) > int(tile_above)


def _image_layers(viewer, widget=None) -> list[tuple[str, Image]]:
    return [(layer.name, layer) for layer in viewer.layers if is_source(layer)]


class SourcePanel:
    """Image layer, planes, channel mapping and prompts."""

    def __init__(self, viewer) -> None:
        self.viewer = viewer
        image_choices = partial(_image_layers, viewer)
        self.image_layer = LayerPicker(label="image", choices=image_choices,
                                       tooltip="The Image layer to look at.")
        self.plane_mode = ComboBox(label="planes", choices=PLANE_MODES, value="current",
                                   tooltip="Stacks and time series: the plane on screen, or "
                                   "every plane (batched, cancellable).")
        # The extent and its view budget: described once (view_region.ExtentOptions).
        self.extent_fields = build_fields(describe(ExtentOptions))
        self.extent = self.extent_fields["extent"].value
        self.view_megapixels = self.extent_fields["view_megapixels"].value
        self.channel_mode = ComboBox(
            label="model sees", value="layer",
            choices=[(CHANNEL_MODE_LABELS[m], m) for m in CHANNEL_MODES],
            tooltip="What the model gets from the layer: the layer as it is (gray or RGB), "
            "one channel of a channel axis as gray, three channels as RGB, or three "
            "single-channel layers as red, green and blue.",
        )
        self.channel_axis = ComboBox(label="channel axis", choices=self._axis_choices, nullable=True)
        self.channel = SpinBox(label="channel", min=0, max=100000, value=0)
        self.rgb_channels = LineEdit(label="RGB channels", value="0, 1, 2",
                                     tooltip="Channel indices shown as red, green, blue.")
        self.green_layer = LayerPicker(label="green layer", choices=image_choices, nullable=True)
        self.blue_layer = LayerPicker(label="blue layer", choices=image_choices, nullable=True)
        self.prompts = TextEdit(label="prompts", value="")
        self.prompts.native.setPlaceholderText(
            "what to look for: one per line or comma-separated\n"
            "e.g. nucleus, membrane  (Ctrl+Enter runs)"
        )
        self.prompts.native.setMaximumHeight(90)
        self.container = Container(widgets=list(self.fields().values()))

    def fields(self) -> dict:
        return {name: getattr(self, name) for name in (
            "image_layer", "plane_mode", "extent", "view_megapixels", "channel_mode", "channel_axis",
            "channel", "rgb_channels", "green_layer", "blue_layer", "prompts")}

    def _axis_choices(self, widget=None) -> list:
        layer = self.image_layer.value if hasattr(self, "image_layer") else None
        return channel_axis_choices(layer) if isinstance(layer, Image) else []

    def refresh_layers(self) -> None:
        for picker in (self.image_layer, self.green_layer, self.blue_layer):
            picker.reset_choices()
        self.channel_axis.reset_choices()

    def pick_default_layer(self) -> None:
        active = self.viewer.layers.selection.active
        candidates = [x for x in self.viewer.layers if is_source(x)]
        if is_source(active):
            self.image_layer.value = active
        elif candidates:
            self.image_layer.value = candidates[-1]

    def chosen_extent(self, tile_above: int) -> str:
        """The extent a run takes: the field's, where it is offered (see :func:`extent_applies`)."""
        return self.extent.value if extent_applies(self.image_layer.value, tile_above) else "fit"

    def update_visibility(self, tile_above: int) -> None:
        """Show the fields that apply to the layer (``tile_above``: the options' tiling side)."""
        layer = self.image_layer.value
        mode = self.channel_mode.value
        offered = extent_applies(layer, tile_above)
        self.extent.visible = offered
        self.view_megapixels.visible = offered and self.extent.value == "view"
        axes = self._axis_choices()
        leading = 0
        if isinstance(layer, Image):
            leading = layer.ndim - 2 - (1 if mode in ("gray", "rgb") and not layer.rgb else 0)
        self.plane_mode.visible = leading > 0
        self.channel_axis.visible = mode in ("gray", "rgb")
        self.channel_axis.enabled = bool(axes)
        self.channel.visible = mode == "gray"
        self.rgb_channels.visible = mode == "rgb"
        self.green_layer.visible = self.blue_layer.visible = mode == "layers"

    def channel_choice(self) -> ChannelChoice:
        mode = self.channel_mode.value
        if mode == "gray":
            return ChannelChoice("gray", self.channel_axis.value, (int(self.channel.value),))
        if mode == "rgb":
            text = self.rgb_channels.value.replace(",", " ").split()
            try:
                channels = tuple(int(c) for c in text)
            except ValueError as error:
                raise ValueError(f"RGB channels must be three integers, got "
                                 f"{self.rgb_channels.value!r}") from error
            return ChannelChoice("rgb", self.channel_axis.value, channels)
        if mode == "layers":
            return ChannelChoice("layers", extra_layers=(self.green_layer.value, self.blue_layer.value))
        return ChannelChoice("layer")
