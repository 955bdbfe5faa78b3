"""The napari dock widget: fields, buttons and signals (the work is in :mod:`.controller`).

Every field is a magicgui widget reachable as an attribute, so scripts and tests can
drive the widget exactly like a user::

    widget.image_layer.value = viewer.layers["chelsea"]
    widget.prompts.value = "cat, ear"
    worker = widget.run()          # a napari worker (or None, with a notification)
"""

from __future__ import annotations

import dataclasses
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

import torch
from magicgui.widgets import (
    CheckBox,
    ComboBox,
    Container,
    FileEdit,
    FloatSlider,
    FloatSpinBox,
    Label,
    LineEdit,
    PushButton,
    Select,
    SpinBox,
    TextEdit,
)
from napari.layers import Image, Layer
from napari.utils.notifications import show_error, show_info, show_warning
from qtpy.QtCore import QEvent, QObject, Qt, QTimer
from qtpy.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QFileDialog,
    QHeaderView,
    QMessageBox,
    QScrollArea,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)
from superqt import QCollapsible

from ..engine import ModelLoadError, SegmentOptions
from ..engine.cpu_precision import has_native
from ..engine.options import CONTRAST_MODES, RESIZE_MODES, TILING_MODES
from . import demo_model
from .cache import ModelSpec
from .compat import keep_triton_away_from_mesa_llvm
from .controller import GemController, RunSettings, RunSummary, split_prompts
from .layers import info
from .planes import CHANNEL_MODE_LABELS, CHANNEL_MODES, ChannelChoice, channel_axis_choices
from .runner import MASK_MODE_LABELS, MASK_MODES
from .settings import load_settings, save_settings

if TYPE_CHECKING:
    import napari

DEFAULT_MODEL = "ViT-B-16"
DEFAULT_TAG = "openai"
CHECKPOINT_FILTER = "*.pt *.pth *.bin *.safetensors *.ckpt"
WEIGHT_SOURCES = [("pretrained tag", "tag"), ("checkpoint file", "file")]
DEVICES = ["auto", "cpu", "cuda", "mps"]
PRECISIONS = ["auto", "fp32", "bf16", "fp16"]
PLANE_MODES = [("current plane", "current"), ("all planes", "all")]
TEMPLATES = [("paper: 'a photo of a {}.'", "paper"), ("ImageNet 80-template ensemble",
                                                      "imagenet80")]
SCORE_MODES = [("paper: min-max per prompt", "minmax"),
               ("calibrated against background prompts", "calibrated")]
FUSIONS = [("mean of all maps", "mean"), ("½ q-q + ½ mean of global blocks", "half")]

#: Fields remembered across sessions.
REMEMBERED = (
    "model", "weights", "pretrained", "checkpoint", "device", "precision", "prompts",
    "auto_threshold", "threshold", "mask_mode", "plane_mode", "channel_mode", "method", "depth",
    "iterations", "auto_temperature", "temperature", "sigma", "global_blocks", "fusion",
    "per_head", "channel_suppression", "cs_blocks", "input_size", "resize", "contrast",
    "tiling", "tile_above", "window", "overlap", "window_batch", "templates", "score_mode",
    "background_prompts", "min_size", "fill_holes", "refine", "pamr_steps", "pamr_dilations",
)


def _precision_tooltip() -> str:
    """What each precision means, and whether bf16 pays on this computer's CPU."""
    native = has_native(torch.bfloat16)
    if native is None:
        cpu_bf16 = "bf16 on the CPU: about 2x faster than fp32 where the CPU has AMX"
    elif native:
        cpu_bf16 = "bf16 is native on this CPU: about 2x faster than fp32, heatmaps within ~1e-3"
    else:
        cpu_bf16 = "bf16 is not native on this CPU: slower than fp32 here"
    return f"auto: fp32 on the CPU, bf16/fp16 on a GPU. {cpu_bf16}."


def _method_choices() -> list[tuple[str, str]]:
    from ..engine.families.clip.methods import list_methods

    return [(info.title if info.verified else f"{info.title} (reconstructed)", info.name)
            for info in list_methods()]


def _method_tooltip(name: str) -> str:
    from ..engine.families.clip.methods import list_methods

    info = next(info for info in list_methods() if info.name == name)
    caveat = ("\nReconstructed from the paper: its equations are not verified against "
              "official code." if not info.verified else "")
    return f"{info.title}: {info.summary}.\nSource: {info.provenance}.{caveat}"


def _pamr_dilations(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(value) for value in text.replace(",", " ").split())
    except ValueError:
        raise ValueError(f"PAMR dilations must be whole numbers such as 8, 16; got {text!r}") from None


def _block_list(text: str, label: str) -> tuple[int, ...] | None:
    """"auto" (or empty) -> None; "6, 7" -> (6, 7)."""
    cleaned = text.replace(",", " ").split()
    if not cleaned or cleaned == ["auto"]:
        return None
    try:
        return tuple(int(value) for value in cleaned)
    except ValueError:
        raise ValueError(f"{label} must be 'auto' or block numbers such as 6, 7; got {text!r}") from None


def _supported_models() -> list:
    from ..engine import supported_models
    from ..engine.families.simzss import architecture_names

    # + SimZSS and the demo model (clearly labelled); all entries are (label, name) pairs
    return demo_model.model_choices([*supported_models(), *architecture_names()])


def _is_simzss(name: str | None) -> bool:
    from ..engine.families.simzss import is_simzss_name

    return bool(name) and is_simzss_name(name)


class LayerPicker(ComboBox):
    """An Image-layer combo box; assigning another kind of layer says why it cannot be used."""

    @property
    def value(self):
        return ComboBox.value.fget(self)

    @value.setter
    def value(self, value) -> None:
        if isinstance(value, Layer) and not isinstance(value, Image):
            show_error(f"'{value.name}' is a {type(value).__name__} layer; GEM reads Image "
                       "layers. Choose an image.")
            return
        ComboBox.value.fset(self, value)


class ModelPicker(ComboBox):
    """The supported architectures; code may also pick any other registered open_clip model."""

    @property
    def value(self):
        return ComboBox.value.fget(self)

    @value.setter
    def value(self, value) -> None:
        if value is not None and value not in self.choices:
            import open_clip

            if value not in open_clip.list_models() and not _is_simzss(value):
                raise ValueError(f"{value!r} is not an open_clip model")
            self.choices = (*self.choices, value)
        ComboBox.value.fset(self, value)


class _CtrlEnter(QObject):
    """Runs the widget when Ctrl+Enter (or Ctrl+Return) is pressed in the prompt box."""

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


class GemWidget(QWidget):
    """Type prompts, see GEM heatmaps and masks, refine the masks, export them."""

    def __init__(self, napari_viewer: napari.viewer.Viewer, parent=None) -> None:
        super().__init__(parent)
        keep_triton_away_from_mesa_llvm()  # before open_clip is first imported (model list)
        self.viewer = napari_viewer
        self.controller = GemController(napari_viewer)
        self._build_fields()
        self._build_layout()
        self._restore(load_settings())
        self._connect()
        self._update_visibility()
        self._on_summary(None)

    # -- fields -------------------------------------------------------------------------------------
    def _build_fields(self) -> None:
        image_choices = partial(_image_layers, self.viewer)
        self.image_layer = LayerPicker(label="image", choices=image_choices,
                                       tooltip="The Image layer GEM looks at.")
        self.plane_mode = ComboBox(label="planes", choices=PLANE_MODES, value="current",
                                   tooltip="Stacks and time series: the plane on screen, or "
                                   "every plane (batched, cancellable).")
        self.channel_mode = ComboBox(
            label="model sees", value="layer",
            choices=[(CHANNEL_MODE_LABELS[m], m) for m in CHANNEL_MODES],
            tooltip="What the model gets from the layer: the layer as it is (gray or RGB), "
            "one channel of a channel axis as gray, three channels as RGB, or three "
            "single-channel layers as red, green and blue.",
        )
        self.channel_axis = ComboBox(label="channel axis", choices=self._axis_choices,
                                     nullable=True)
        self.channel = SpinBox(label="channel", min=0, max=100000, value=0)
        self.rgb_channels = LineEdit(label="RGB channels", value="0, 1, 2",
                                     tooltip="Channel indices shown as red, green, blue.")
        self.green_layer = LayerPicker(label="green layer", choices=image_choices,
                                       nullable=True)
        self.blue_layer = LayerPicker(label="blue layer", choices=image_choices, nullable=True)
        self.prompts = TextEdit(label="prompts", value="")
        self.prompts.native.setPlaceholderText(
            "what to look for: one per line or comma-separated\n"
            "e.g. nucleus, membrane  (Ctrl+Enter runs)"
        )
        self.prompts.native.setMaximumHeight(90)
        self.run_button = PushButton(text="Run (Ctrl+Enter)")
        self.cancel_button = PushButton(text="Cancel", enabled=False)
        self.status = Label(value="")
        self.auto_threshold = CheckBox(text="auto threshold (Otsu; 0.5 if calibrated)",
                                       value=True)
        self.threshold = FloatSlider(label="threshold", min=0.0, max=1.0, step=0.01, value=0.5,
                                     tooltip="Re-draws the masks from the stored heatmaps.")
        self.mask_mode = ComboBox(label="masks", value="binary",
                                  choices=[(MASK_MODE_LABELS[m], m) for m in MASK_MODES])

        # model
        self.model = ModelPicker(label="model", choices=_supported_models(), value=DEFAULT_MODEL)
        self.weights = ComboBox(label="weights", choices=WEIGHT_SOURCES, value="tag")
        self.pretrained = ComboBox(label="pretrained", choices=self._tag_choices, nullable=True)
        self.checkpoint = FileEdit(label="checkpoint", mode="r", filter=CHECKPOINT_FILTER,
                                   value="")
        self.device = ComboBox(label="device", choices=DEVICES, value="auto")
        self.precision = ComboBox(label="precision", choices=PRECISIONS, value="auto",
                                  tooltip=_precision_tooltip())
        self.method = ComboBox(label="method", choices=_method_choices(), value="gem",
                               tooltip=_method_tooltip("gem"))

        # advanced (GEM and SegmentOptions defaults: the paper's settings)
        defaults = SegmentOptions()
        self.depth = SpinBox(label="depth", min=1, max=48, value=7,
                             tooltip="GEM: number of last blocks with self-self attention + 1")
        self.iterations = SpinBox(label="iterations", min=0, max=10, value=1)
        self.auto_temperature = CheckBox(text="adaptive temperature", value=True)
        self.temperature = FloatSpinBox(label="temperature", min=0.001, max=100.0, step=0.05,
                                        value=1.0)
        self.sigma = FloatSpinBox(label="σ (patches)", min=0.1, max=100.0, step=0.5, value=5.0,
                                  tooltip="NACLIP: width of the Gaussian neighbourhood prior")
        self.global_blocks = LineEdit(label="global blocks", value="auto",
                                      tooltip="GCLIP: 0-based blocks whose attention is fused "
                                      "into the last block ('auto': 6, 7 on a 12-block ViT)")
        self.fusion = ComboBox(label="fusion", choices=FUSIONS, value="mean",
                               tooltip="GCLIP: how the attention maps are averaged (inferred)")
        self.per_head = CheckBox(text="per-head attention maps", value=True,
                                 tooltip="GCLIP: fuse per head, or head-averaged maps")
        self.channel_suppression = CheckBox(text="channel suppression", value=True,
                                            tooltip="GCLIP: tame the largest FFN output channel "
                                            "of late blocks (on a copy; your model is unchanged)")
        self.cs_blocks = LineEdit(label="CS blocks", value="auto",
                                  tooltip="GCLIP: 0-based blocks with channel suppression "
                                  "('auto': 7 .. 10 on a 12-block ViT)")
        self.refine = CheckBox(text="refine edges (PAMR)", value=False,
                               tooltip="Pixel-adaptive mask refinement along image edges, as "
                               "NACLIP and SCLIP use it (slower on large images)")
        self.pamr_steps = SpinBox(label="PAMR steps", min=1, max=100, value=10)
        self.pamr_dilations = LineEdit(label="PAMR dilations", value="8, 16",
                                       tooltip="Neighbourhood dilations in pixels")
        self.input_size = SpinBox(label="input size", min=16, max=4096, step=16,
                                  value=defaults.input_size)
        self.resize = ComboBox(label="resize", choices=list(RESIZE_MODES),
                               value=defaults.resize)
        self.contrast = ComboBox(label="contrast", choices=list(CONTRAST_MODES),
                                 value=defaults.contrast)
        self.tiling = ComboBox(label="tiling", choices=list(TILING_MODES), value=defaults.tiling)
        self.tile_above = SpinBox(label="tile above (px)", min=16, max=1_000_000,
                                  value=defaults.tile_above)
        self.window = SpinBox(label="window (px)", min=16, max=8192, step=16,
                              value=defaults.window)
        self.overlap = SpinBox(label="overlap (px)", min=0, max=8192, step=16,
                               value=defaults.overlap)
        self.window_batch = SpinBox(label="windows per batch", min=1, max=256,
                                    value=defaults.window_batch)
        self.templates = ComboBox(label="templates", choices=TEMPLATES, value=defaults.templates)
        self.score_mode = ComboBox(label="scores", choices=SCORE_MODES,
                                   value=defaults.score_mode)
        self.background_prompts = LineEdit(label="background prompts",
                                           value=", ".join(defaults.background_prompts))
        self.min_size = SpinBox(label="min object (px)", min=0, max=100_000_000, value=0)
        self.fill_holes = SpinBox(label="fill holes (px)", min=0, max=100_000_000, value=0)

        # export
        self.export_masks = Select(
            label="export masks", choices=[], allow_multiple=True,
            tooltip="Every mask layer of each prompt; an edited one is marked. Chosen by "
            "default: the one you last edited or selected. Choose several of one prompt "
            "to export them all (an edited mask is written as ..._edited_mask.tif).",
        )
        self.export_masks.native.setMaximumHeight(96)
        # Long layer names are elided in the middle (the tooltip shows them whole), not
        # hidden behind a horizontal scroll bar.
        self.export_masks.native.setTextElideMode(Qt.TextElideMode.ElideMiddle)
        self.export_masks.native.setHorizontalScrollBarPolicy(
            Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.export_button = PushButton(text="Export...", enabled=False)

    def _build_layout(self) -> None:
        # Everything sits in a scroll area: with Advanced open the widget is taller than
        # many screens, and a dock must not push napari's window off them.
        outer = QVBoxLayout(self)
        outer.setContentsMargins(0, 0, 0, 0)
        scroll = QScrollArea(self)
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QScrollArea.Shape.NoFrame)
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        content = QWidget(scroll)
        scroll.setWidget(content)
        outer.addWidget(scroll)
        layout = QVBoxLayout(content)
        layout.setContentsMargins(4, 4, 4, 4)
        source = Container(widgets=[self.image_layer, self.plane_mode, self.channel_mode,
                                    self.channel_axis, self.channel, self.rgb_channels,
                                    self.green_layer, self.blue_layer, self.prompts])
        buttons = Container(widgets=[self.run_button, self.cancel_button], layout="horizontal",
                            labels=False)
        masks = Container(widgets=[self.auto_threshold, self.threshold, self.mask_mode])
        self.results = QTableWidget(0, 4)
        self.results.setHorizontalHeaderLabels(["prompt", "presence", "threshold", "objects"])
        self.results.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.results.verticalHeader().setVisible(False)
        self.results.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        self.results.setToolTip("presence: image-level score of each prompt (softmax of CLIP "
                                "logits over the prompts and background prompts)")
        model = Container(widgets=[self.model, self.weights, self.pretrained, self.checkpoint,
                                   self.method, self.device, self.precision])
        advanced = Container(widgets=[
            self.depth, self.iterations, self.auto_temperature, self.temperature, self.sigma,
            self.global_blocks, self.fusion, self.per_head, self.channel_suppression,
            self.cs_blocks, self.refine, self.pamr_steps, self.pamr_dilations, self.input_size,
            self.resize, self.contrast, self.tiling, self.tile_above,
            self.window, self.overlap, self.window_batch, self.templates, self.score_mode,
            self.background_prompts, self.min_size, self.fill_holes,
        ])
        export = Container(widgets=[self.export_masks, self.export_button])
        self.model_section = QCollapsible("Model", content)
        self.model_section.addWidget(model.native)
        self.advanced_section = QCollapsible("Advanced", content)
        self.advanced_section.addWidget(advanced.native)
        self._containers = (source, buttons, masks, model, advanced, export)
        for part in (source.native, buttons.native, self.status.native, masks.native,
                     self.results, self.model_section, self.advanced_section, export.native):
            layout.addWidget(part)
        layout.addStretch(1)
        self.model_section.expand(animate=False)
        self.advanced_section.collapse(animate=False)
        for part in self._containers:
            for field in part:
                if isinstance(field, ComboBox):
                    # Long choices must not make the dock wider than the screen allows.
                    field.native.setSizeAdjustPolicy(
                        QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
                    field.native.setMinimumContentsLength(10)

    # -- wiring -----------------------------------------------------------------------------------------
    def _connect(self) -> None:
        self.run_button.changed.connect(self.run)
        self.cancel_button.changed.connect(self.cancel)
        self.export_button.changed.connect(self._export_clicked)
        self._export_list_timer = QTimer(self)
        self._export_list_timer.setSingleShot(True)
        self._export_list_timer.setInterval(150)  # brush strokes come in bursts
        self._export_list_timer.timeout.connect(self.refresh_export_list)
        self.controller.masks_changed.connect(self._schedule_export_refresh)
        self._ctrl_enter = _CtrlEnter(self.run)
        self.prompts.native.installEventFilter(self._ctrl_enter)

        self.image_layer.changed.connect(self._on_layer_changed)
        for field in (self.channel_mode, self.plane_mode, self.weights, self.method, self.refine):
            field.changed.connect(self._update_visibility)
        self.model.changed.connect(self._on_model_changed)
        self.auto_threshold.changed.connect(self._update_visibility)
        self.auto_temperature.changed.connect(self._update_visibility)

        self._redraw_timer = QTimer(self)
        self._redraw_timer.setSingleShot(True)
        self._redraw_timer.setInterval(60)  # coalesce slider ticks into one re-draw
        self._redraw_timer.timeout.connect(self.redraw)
        for field in (self.auto_threshold, self.threshold, self.mask_mode):
            field.changed.connect(self._schedule_redraw)

        self._save_timer = QTimer(self)
        self._save_timer.setSingleShot(True)
        self._save_timer.setInterval(400)
        self._save_timer.timeout.connect(self.save_settings)
        for name in REMEMBERED:
            getattr(self, name).changed.connect(self._schedule_save)

        self.controller.busy_changed.connect(self._on_busy)
        self.controller.summary_changed.connect(self._on_summary)
        layers = self.viewer.layers
        layers.events.inserted.connect(self._on_layer_inserted)
        layers.events.removed.connect(self._on_layer_removed)
        layers.events.moved.connect(self._refresh_layers)
        for layer in layers:
            layer.events.name.connect(self._refresh_layers)
        if self.image_layer.value is None:
            self._pick_default_layer()
        self.destroyed.connect(partial(_shutdown, self.controller, self.viewer,
                                       self._on_layer_inserted, self._on_layer_removed,
                                       self._refresh_layers))

    def _schedule_redraw(self, *_) -> None:
        self._redraw_timer.start()

    def _schedule_save(self, *_) -> None:
        self._save_timer.start()

    def _on_layer_inserted(self, event) -> None:
        event.value.events.name.connect(self._refresh_layers)
        self._refresh_layers()
        if self.image_layer.value is None and _is_source(event.value):
            self.image_layer.value = event.value

    def _on_layer_removed(self, event) -> None:
        event.value.events.name.disconnect(self._refresh_layers)
        self._refresh_layers()

    def _refresh_layers(self, event=None) -> None:
        for picker in (self.image_layer, self.green_layer, self.blue_layer):
            picker.reset_choices()
        self._on_layer_changed()

    def _pick_default_layer(self) -> None:
        active = self.viewer.layers.selection.active
        candidates = [x for x in self.viewer.layers if _is_source(x)]
        if _is_source(active):
            self.image_layer.value = active
        elif candidates:
            self.image_layer.value = candidates[-1]

    def _axis_choices(self, widget=None) -> list:
        layer = self.image_layer.value if hasattr(self, "image_layer") else None
        return channel_axis_choices(layer) if isinstance(layer, Image) else []

    def _tag_choices(self, widget=None) -> list[str]:
        from ..engine import supported_models

        name = self.model.value if hasattr(self, "model") else DEFAULT_MODEL
        if _is_simzss(name):
            return []  # SimZSS weights come as a checkpoint file only
        tags = supported_models().get(name)
        if tags is None:
            import open_clip

            tags = open_clip.list_pretrained_tags_by_model(name) if name else []
        return list(tags)

    def _on_model_changed(self, value=None) -> None:
        self.pretrained.reset_choices()
        if _is_simzss(self.model.value):
            self.weights.value = "file"
        if demo_model.is_demo(self.model.value):
            demo_model.apply_defaults(self)
        self._update_visibility()

    def _on_layer_changed(self, value=None) -> None:
        self.channel_axis.reset_choices()
        self._update_visibility()

    def _update_visibility(self, value=None) -> None:
        layer = self.image_layer.value
        mode = self.channel_mode.value
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
        simzss = _is_simzss(self.model.value)
        self.weights.enabled = not simzss
        self.method.visible = not simzss  # SimZSS makes its own dense features
        packaged = demo_model.is_demo(self.model.value)  # its weights ship with napari-gem
        self.weights.visible = not packaged
        self.pretrained.visible = self.weights.value == "tag" and not packaged
        self.checkpoint.visible = self.weights.value == "file" and not packaged
        self.threshold.enabled = not self.auto_threshold.value
        self.temperature.enabled = not self.auto_temperature.value
        self.method.tooltip = _method_tooltip(self.method.value)
        shown = set() if simzss else set(self._option_readers())
        for option, fields in self._option_fields().items():
            for field in fields:
                field.visible = option in shown
        self.pamr_steps.visible = self.pamr_dilations.visible = bool(self.refine.value)

    # -- method options: one reader per option name of the methods' Options dataclasses ----------
    def _option_fields(self) -> dict:
        """Every method option's widgets, by option name."""
        return {
            "depth": (self.depth,), "iterations": (self.iterations,),
            "temperature": (self.auto_temperature, self.temperature), "sigma": (self.sigma,),
            "global_blocks": (self.global_blocks,), "fusion": (self.fusion,),
            "per_head": (self.per_head,), "channel_suppression": (self.channel_suppression,),
            "cs_blocks": (self.cs_blocks,),
        }

    def _option_readers(self) -> dict:
        """Option name -> reader of its value, for the options the chosen method has."""
        from ..engine import method_class

        readers = {
            "depth": lambda: int(self.depth.value),
            "iterations": lambda: int(self.iterations.value),
            "temperature": lambda: None if self.auto_temperature.value else float(self.temperature.value),
            "sigma": lambda: float(self.sigma.value),
            "global_blocks": lambda: _block_list(self.global_blocks.value, "global blocks"),
            "fusion": lambda: self.fusion.value,
            "per_head": lambda: bool(self.per_head.value),
            "channel_suppression": lambda: bool(self.channel_suppression.value),
            "cs_blocks": lambda: _block_list(self.cs_blocks.value, "CS blocks"),
        }
        names = [field.name for field in dataclasses.fields(method_class(self.method.value).Options)]
        return {name: readers[name] for name in names}

    def method_options(self) -> dict:
        """The chosen method's options as the fields give them (raises ``ValueError`` if invalid)."""
        if _is_simzss(self.model.value):
            return {}
        return {name: read() for name, read in self._option_readers().items()}

    # -- building a run ----------------------------------------------------------------------------
    def model_spec(self) -> ModelSpec | None:
        """The model the fields describe (None when a checkpoint file is wanted but not set)."""
        run = {
            "device": self.device.value,
            "precision": None if self.precision.value == "auto" else self.precision.value,
            "method": None if _is_simzss(self.model.value) else self.method.value,
            "method_options": self.method_options(),
        }
        if demo_model.is_demo(self.model.value):
            return demo_model.model_spec(**run)  # packaged weights, whatever the weights fields say
        if self.weights.value == "file":
            path = str(self.checkpoint.value or "").strip()
            if not path or path == ".":
                return None
            pretrained = str(Path(path).expanduser())
        else:
            pretrained = self.pretrained.value or DEFAULT_TAG
        return ModelSpec(name=self.model.value, pretrained=pretrained, **run)

    def options(self) -> SegmentOptions:
        """The :class:`SegmentOptions` the fields describe (raises ``ValueError`` if invalid)."""
        return SegmentOptions(
            input_size=int(self.input_size.value),
            resize=self.resize.value,
            contrast=self.contrast.value,
            tiling=self.tiling.value,
            tile_above=int(self.tile_above.value),
            window=int(self.window.value),
            overlap=int(self.overlap.value),
            window_batch=int(self.window_batch.value),
            templates=self.templates.value,
            score_mode=self.score_mode.value,
            background_prompts=tuple(split_prompts(self.background_prompts.value)),
            threshold=None if self.auto_threshold.value else float(self.threshold.value),
            min_size=int(self.min_size.value),
            fill_holes=int(self.fill_holes.value),
            refine="pamr" if self.refine.value else "none",
            pamr_steps=int(self.pamr_steps.value),
            pamr_dilations=_pamr_dilations(self.pamr_dilations.value),
        )

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
            return ChannelChoice("layers", extra_layers=(self.green_layer.value,
                                                         self.blue_layer.value))
        return ChannelChoice("layer")

    def run(self, value=None):
        """Start the chosen method on the layer and prompts; returns the napari worker, or None.

        Problems (no image, no prompts, bad options) are shown as notifications and
        return None. Results reach the layers when the worker returns.
        """
        try:
            options = self.options()
            channel = self.channel_choice()
            spec = self.model_spec()
        except (ValueError, ModelLoadError) as error:
            show_error(f"Invalid setting: {error}")
            return None
        settings = RunSettings(
            layer=self.image_layer.value,
            prompts=split_prompts(self.prompts.value),
            spec=spec,
            options=options,
            mask_mode=self.mask_mode.value,
            plane_mode=self.plane_mode.value,
            channel=channel,
        )
        worker = self.controller.start(settings)
        if worker is not None:
            self.save_settings()
            self.status.value = f"running on '{settings.layer.name}'..."
        return worker

    def cancel(self, value=None) -> None:
        """Stop the active run at its next step."""
        self.controller.cancel()

    def redraw(self) -> None:
        """Re-draw the latest masks for the current threshold and mask mode (no model)."""
        if self.controller.busy:
            return
        threshold = None if self.auto_threshold.value else float(self.threshold.value)
        if self.controller.redraw(threshold, self.mask_mode.value) is not None:
            last = self.controller.last
            last.options = last.options.replace(threshold=threshold)

    # -- export -------------------------------------------------------------------------------------------
    def _schedule_export_refresh(self) -> None:
        self._export_list_timer.start()

    def refresh_export_list(self) -> None:
        """List every mask layer of each prompt; choose, per prompt, the one last touched.

        The user's own choice in the list stands until the layers change or another
        mask is edited or selected.
        """
        self._export_list_timer.stop()
        choices = self.controller.mask_choices()
        keys = [choice.key for choice in choices]
        defaults = [c.key for c in self.controller.default_mask_choices()]
        state = (frozenset(keys), frozenset(defaults))
        kept = [key for key in self.export_masks.value if key in keys]
        self.export_masks.choices = [(choice.label, choice.key) for choice in choices]
        unchanged = state == getattr(self, "_export_state", None)
        self.export_masks.value = kept if unchanged and kept else defaults
        for row in range(self.export_masks.native.count()):
            item = self.export_masks.native.item(row)
            item.setToolTip(item.text())
        self._export_state = state
        self.export_button.enabled = bool(choices)

    def export(self, out_dir, prompts=None, *, overwrite: bool = False,
               ask: bool = False, masks=None) -> list[Path]:
        """Export masks (as edited), heatmaps, objects and parameters.

        Which masks: ``masks`` (keys of ``controller.mask_choices()``), else the default
        layer of each of ``prompts``, else what the export list shows chosen. Existing
        files are only replaced with ``overwrite=True`` or when ``ask`` is set and the
        user agrees. Returns the written paths (empty when nothing was written).
        """
        if masks is None and not prompts:
            self.refresh_export_list()  # edits made since the last refresh count
            masks = list(self.export_masks.value)
            if not masks:
                show_error("Choose at least one mask layer to export.")
                return []
        try:
            paths = self.controller.export(out_dir, prompts, overwrite=overwrite, masks=masks)
        except FileExistsError as error:
            if ask and self._confirm_overwrite(error):
                return self.export(out_dir, prompts, overwrite=True, masks=masks)
            show_warning(f"Nothing was exported: {error}")
            return []
        except (ValueError, OSError) as error:
            show_error(f"Export failed: {error}")
            return []
        show_info(f"Exported {len(paths)} files to {out_dir}.")
        return paths

    def _confirm_overwrite(self, error: FileExistsError) -> bool:
        answer = QMessageBox.question(
            self, "Overwrite files?", f"{error}\n\nReplace them?",
            QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No,
            QMessageBox.StandardButton.No,
        )
        return answer == QMessageBox.StandardButton.Yes

    def _export_clicked(self, value=None) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Export masks and heatmaps to folder")
        if folder:
            self.export(folder, ask=True)

    # -- state shown ------------------------------------------------------------------------------------
    def _on_busy(self, busy: bool) -> None:
        self.run_button.enabled = True  # a new run replaces the active one
        self.cancel_button.enabled = busy
        if busy:
            return
        if self.status.value.startswith("running"):
            self.status.value = "ready"
        last = self.controller.last
        threshold = None if self.auto_threshold.value else float(self.threshold.value)
        if last is not None and (last.mask_mode != self.mask_mode.value
                                 or last.options.threshold != threshold):
            self._schedule_redraw()  # the masks controls changed while the model ran

    def _on_summary(self, summary: RunSummary | None) -> None:
        rows = 0 if summary is None else len(summary.rows)
        self.results.setRowCount(rows)
        header = self.results.horizontalHeader().height()
        row_height = self.results.verticalHeader().defaultSectionSize()
        self.results.setFixedHeight(header + row_height * min(max(rows, 1), 6) + 4)
        if summary is None:
            self.export_masks.choices = []
            self.export_button.enabled = False
            return
        for row, item in enumerate(summary.rows):
            for column, text in enumerate(
                (item.prompt, f"{item.presence:.2f}", item.threshold, str(item.objects))
            ):
                cell = QTableWidgetItem(text)
                if column:
                    cell.setTextAlignment(Qt.AlignmentFlag.AlignCenter)
                self.results.setItem(row, column, cell)
        self.refresh_export_list()
        planes = f"{summary.planes} planes" if summary.planes > 1 else "1 plane"
        timing = f" in {summary.seconds:.1f} s" if summary.seconds else ""
        reused = " (encoding reused)" if summary.reused else ""
        self.status.value = f"'{summary.source}': {planes}{timing}{reused}"

    # -- settings ---------------------------------------------------------------------------------------
    def settings(self) -> dict:
        """The remembered fields' values (JSON-ready)."""
        values = {}
        for name in REMEMBERED:
            value = getattr(self, name).value
            values[name] = str(value) if isinstance(value, Path) else value
        return values

    def save_settings(self) -> None:
        save_settings(self.settings())

    def _restore(self, values: dict) -> None:
        for name in REMEMBERED:  # order matters: model before pretrained
            if name not in values:
                continue
            field = getattr(self, name)
            try:
                if name == "model":
                    field.value = values[name]
                    self.pretrained.reset_choices()
                elif name == "checkpoint":
                    field.value = values[name] or ""
                else:
                    field.value = values[name]
            except (ValueError, TypeError, KeyError):
                continue  # a value from another version or machine: keep the default


def _is_source(layer) -> bool:
    """Image layers that can be segmented (not the plugin's own heatmaps)."""
    return isinstance(layer, Image) and info(layer).get("role") != "heatmap"


def _image_layers(viewer, widget=None) -> list[tuple[str, Image]]:
    return [(layer.name, layer) for layer in viewer.layers if _is_source(layer)]


def _shutdown(controller: GemController, viewer, inserted, removed, refresh, *args) -> None:
    """The widget was destroyed (dock closed, viewer closed): stop work, disconnect."""
    controller.busy_changed.disconnect()
    controller.summary_changed.disconnect()
    controller.masks_changed.disconnect()
    controller.close()
    try:
        viewer.layers.events.inserted.disconnect(inserted)
        viewer.layers.events.removed.disconnect(removed)
        viewer.layers.events.moved.disconnect(refresh)
        for layer in viewer.layers:
            layer.events.name.disconnect(refresh)
    except (RuntimeError, AttributeError):
        pass
