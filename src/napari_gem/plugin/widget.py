"""The napari dock widget "Segment by text": it assembles the panels and passes signals.

The panels (:mod:`.panels`) own their fields; the work is in :mod:`.controller`. Every
field is reachable as an attribute of the widget, so scripts and tests can drive it
exactly like a user::

    widget.image_layer.value = viewer.layers["chelsea"]
    widget.prompts.value = "cat, ear"
    worker = widget.run()          # a napari worker (or None, with a notification)
"""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

from magicgui.widgets import CheckBox, ComboBox, Container, PushButton
from napari.utils.notifications import show_error
from qtpy.QtCore import QSize, Qt, QTimer
from qtpy.QtWidgets import (
    QAbstractSpinBox,
    QComboBox,
    QScrollArea,
    QSizePolicy,
    QVBoxLayout,
    QWidget,
)
from superqt import QCollapsible

from ..engine import ModelLoadError, SegmentOptions
from ..engine.deprecation import warn_deprecated
from ..engine.families.demo import MODEL_NAME as DEMO_MODEL
from ..engine.spec import ModelSpec
from .compat import keep_triton_away_from_mesa_llvm
from .controller import SegmentController
from .panels.export import ExportPanel
from .panels.folder import FolderPanel
from .panels.model import ModelPanel
from .panels.options import OptionsPanel
from .panels.results import ResultsPanel
from .panels.source import CtrlEnter, SourcePanel, is_source
from .panels.whole_image import WholeImagePanel
from .refine import REFINE_KEY, MaskRefiner
from .regions import labels_layer_field, place_layer_field
from .run_settings import RunSettings, settings_problem, split_prompts
from .runner import chosen_options
from .session import RunSummary
from .settings import load_settings, save_settings
from .whole_image import plan_whole_image
from .whole_image_job import WholeImageJob

if TYPE_CHECKING:
    import napari

#: Fields remembered across sessions besides every option field (order matters on restore:
#: the model before its tag).
REMEMBERED_FIELDS = (
    "model", "weights", "pretrained", "checkpoint", "device", "precision", "prompts",
    "auto_threshold", "threshold", "mask_mode", "plane_mode", "extent", "view_megapixels",
    "channel_mode", "method", "scheduler",
)

#: The dock's starting width: napari's own docks take ~320 px on the left, so the canvas
#: keeps the largest share of the window; every field still fits (see ``_narrow_fields``).
STARTING_WIDTH = 340


class SegmentWidget(QWidget):
    """Type prompts, see heatmaps and masks from the chosen method, refine the masks, export them."""

    def __init__(self, napari_viewer: napari.viewer.Viewer, parent=None) -> None:
        super().__init__(parent)
        keep_triton_away_from_mesa_llvm()  # before open_clip is first imported (model list)
        self.viewer = napari_viewer
        self.controller = SegmentController(napari_viewer)
        self.source = SourcePanel(napari_viewer)
        self.model_panel = ModelPanel()
        self.options_panel = OptionsPanel()
        self.results_panel = ResultsPanel()
        self.export_panel = ExportPanel(self.controller, self)
        self.whole_image_panel = WholeImagePanel()
        self.whole_image_job = WholeImageJob(napari_viewer, self.controller.session.models)
        self.folder_panel = FolderPanel(napari_viewer, self, self.controller.models)
        self.run_button = PushButton(text="Run (Ctrl+Enter)")
        self.cancel_button = PushButton(text="Cancel", enabled=False)
        self.refiner = MaskRefiner(napari_viewer, self.controller.session)
        self.refine_button = PushButton(
            text=f"Refine ({REFINE_KEY.replace('-', '+')})",
            tooltip="Recompute the selected mask's current plane from your edits: what you "
            "painted in is 'this is it', what you erased 'this is not'. Ctrl+Z undoes it.")
        self.live_refine = CheckBox(text="after each stroke", value=False,
                                    tooltip="Refine the mask after each brush or eraser stroke.")
        self.demo_button = PushButton(
            text="use the demo model", visible=False,
            tooltip=f"Choose '{DEMO_MODEL}': packaged with napari-gem, it needs no download "
            "and works offline. It knows only the concepts of its generated micrographs "
            "(File > Open Sample > napari-gem > Generated micrograph).")
        for panel in (self.source, self.model_panel, self.options_panel, self.results_panel,
                      self.export_panel, self.whole_image_panel, self.folder_panel):
            for name, field in panel.fields().items():
                setattr(self, name, field)
        self.results = self.results_panel.table
        self.regions_layer = labels_layer_field(napari_viewer)
        place_layer_field(self.options_panel, self.regions_layer)
        self.remembered = (*REMEMBERED_FIELDS, *self.options_panel.fields())
        self._build_layout()
        self._restore(load_settings())
        self._connect()
        self._on_model_changed(apply_defaults=False)
        self._on_summary(None)

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
        buttons = Container(widgets=[self.run_button, self.cancel_button], layout="horizontal",
                            labels=False)
        self.model_section = QCollapsible("Model", content)
        self.model_section.addWidget(self.model_panel.container.native)
        self.advanced_section = QCollapsible("Advanced", content)
        self.advanced_section.addWidget(self.options_panel.container.native)
        self.folder_section = QCollapsible("Run on a folder", content)
        for part in (self.folder_panel.container.native, self.folder_panel.table):
            self.folder_section.addWidget(part)
        refine_row = Container(widgets=[self.refine_button, self.live_refine], layout="horizontal",
                               labels=False)
        # The refinement's own options on their own row: beside the button they would not
        # fit the dock's starting width.
        self.refine_options = Container(widgets=self.refiner.option_widgets())
        # A failed run's reason stays in the status line (napari's notification fades in
        # seconds), wrapped to the dock's width.
        self.status.native.setWordWrap(True)
        self.status.native.setSizePolicy(QSizePolicy.Policy.Preferred,
                                         QSizePolicy.Policy.Minimum)  # magicgui's: Fixed
        for part in (self.source.container.native, self.whole_image_panel.container.native,
                     buttons.native, self.status.native,
                     self.demo_button.native,
                     self.results_panel.container.native, self.results, refine_row.native,
                     self.refine_options.native, self.model_section,
                     self.advanced_section, self.export_panel.container.native,
                     self.folder_section):
            layout.addWidget(part)
        layout.addStretch(1)
        self.model_section.expand(animate=False)
        self.advanced_section.collapse(animate=False)
        self.folder_section.collapse(animate=False)
        self._narrow_fields()

    def _narrow_fields(self) -> None:
        """Let choice and number fields shrink, so the dock fits :data:`STARTING_WIDTH`
        (Qt sizes them by their longest choice and their largest number otherwise)."""
        containers = [panel.container for panel in (self.source, self.model_panel, self.options_panel,
                                                    self.results_panel)]
        for container in (*containers, self.refine_options):
            for field in container:
                if isinstance(field, ComboBox):
                    field.native.setSizeAdjustPolicy(
                        QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
                    field.native.setMinimumContentsLength(6)
                elif isinstance(field.native, QAbstractSpinBox):
                    field.native.setMinimumWidth(72)

    def sizeHint(self) -> QSize:  # noqa: N802 (Qt's name)
        """The size napari docks the widget at first: :data:`STARTING_WIDTH` wide."""
        return QSize(STARTING_WIDTH, super().sizeHint().height())

    # -- wiring -----------------------------------------------------------------------------------------
    def _connect(self) -> None:
        self.run_button.changed.connect(self.run)
        self.cancel_button.changed.connect(self.cancel)
        self._ctrl_enter = CtrlEnter(self.run)
        self.prompts.native.installEventFilter(self._ctrl_enter)

        self.image_layer.changed.connect(self._on_layer_changed)
        for field in (self.channel_mode, self.plane_mode, self.weights, self.method,
                      self.auto_threshold, self.extent, self.tile_above):
            field.changed.connect(self._update_visibility)
        self.model.changed.connect(self._on_model_changed)

        self._redraw_timer = _single_shot(self, 60, self.redraw)  # coalesce slider ticks
        for field in (self.auto_threshold, self.threshold, self.mask_mode):
            field.changed.connect(self._schedule_redraw)
        self._save_timer = _single_shot(self, 400, self.save_settings)
        for name in self.remembered:
            getattr(self, name).changed.connect(self._schedule_save)

        self.controller.busy_changed.connect(self._on_busy)
        self.whole_image_job.busy_changed.connect(self._on_busy)
        self.whole_image_job.status.connect(self._show_status)
        self.controller.summary_changed.connect(self._on_summary)
        self.controller.run_failed.connect(self._on_run_failed)
        self.demo_button.changed.connect(self.use_demo_model)
        self.refine_button.changed.connect(self.refine_mask)
        self.live_refine.changed.connect(self._on_live_changed)
        self.refiner.bind_key()
        self._strokes_timer = _single_shot(self, 150, self.show_strokes)  # brush bursts
        self.controller.masks_changed.connect(self._schedule_strokes)
        self.destroyed.connect(partial(MaskRefiner.close, self.refiner))
        self.destroyed.connect(self.folder_panel.close)
        layers = self.viewer.layers
        layers.events.inserted.connect(self._on_layer_inserted)
        layers.events.removed.connect(self._on_layer_removed)
        layers.events.moved.connect(self._refresh_layers)
        for layer in layers:
            layer.events.name.connect(self._refresh_layers)
        if self.image_layer.value is None:
            self.source.pick_default_layer()
        self.destroyed.connect(partial(_shutdown, self.controller, self.viewer,
                                       self._on_layer_inserted, self._on_layer_removed,
                                       self._refresh_layers))

    def _schedule_redraw(self, *_) -> None:
        self._redraw_timer.start()

    def _schedule_strokes(self, *_) -> None:
        self._strokes_timer.start()

    def _schedule_save(self, *_) -> None:
        self._save_timer.start()

    def _on_layer_inserted(self, event) -> None:
        event.value.events.name.connect(self._refresh_layers)
        self._refresh_layers()
        if self.image_layer.value is None and is_source(event.value):
            self.image_layer.value = event.value

    def _on_layer_removed(self, event) -> None:
        event.value.events.name.disconnect(self._refresh_layers)
        self._refresh_layers()

    def _refresh_layers(self, event=None) -> None:
        self.source.refresh_layers()
        self._update_visibility()

    def _on_layer_changed(self, value=None) -> None:
        self.channel_axis.reset_choices()
        self.whole_image_panel.follow_layer(self.image_layer.value)
        self._update_visibility()

    def _on_model_changed(self, value=None, *, apply_defaults: bool = True) -> None:
        """A new model: its tags, and the settings its family needs (e.g. the demo model's)."""
        self.model_panel.on_model_changed()
        self.demo_button.visible = False  # it answered a failure of the previous model
        if apply_defaults:
            family, name = self.model_panel.family, self.model.value
            self.options_panel.show_values({**family.segment_defaults(name),
                                            **family.method_defaults(self.method.value)})
        self._update_visibility()

    def _update_visibility(self, value=None) -> None:
        self.source.update_visibility(self.tile_above.value)
        self.whole_image_panel.set_visible(self.source.chosen_extent(self.tile_above.value) == "whole")
        self.model_panel.update_visibility()
        self.results_panel.update_visibility()
        family = self.model_panel.family
        self.options_panel.show_method(self.method.value, family.uses_clip_methods, family.own_options)

    # -- building a run ----------------------------------------------------------------------------
    def method_options(self) -> dict:
        """The chosen method's options as the fields give them (raises ``ValueError`` if invalid)."""
        return self.options_panel.method_options()

    def model_spec(self) -> ModelSpec | None:
        """The model the fields describe (None when a checkpoint file is wanted but not set)."""
        return self.model_panel.model_spec(self.method_options())

    def options(self) -> SegmentOptions:
        """The :class:`SegmentOptions` the fields describe (raises ``ValueError`` if invalid)."""
        return SegmentOptions(**self.options_panel.segment_values(),
                              threshold=self.results_panel.chosen_threshold())

    def channel_choice(self):
        return self.source.channel_choice()

    def run(self, value=None):
        """Start the chosen method on the layer and prompts; returns the napari worker, or None.

        Problems (no image, no prompts, bad options) are shown as notifications and
        return None. Results reach the layers when the worker returns. With extent
        'whole image' it is :meth:`run_whole_image`'s background job.
        """
        if self.source.chosen_extent(self.tile_above.value) == "whole":
            return self.run_whole_image()
        try:
            options = self.options()
            channel = self.channel_choice()
            spec = self.model_spec()
        except (ValueError, ModelLoadError) as error:
            show_error(f"Invalid setting: {error}")
            return None
        settings = RunSettings(
            layer=self.image_layer.value, prompts=split_prompts(self.prompts.value), spec=spec,
            options=options, mask_mode=self.mask_mode.value, plane_mode=self.plane_mode.value,
            channel=channel, regions_layer=self.regions_layer.value,
            extent=self.source.chosen_extent(options.tile_above),
            view_megapixels=float(self.view_megapixels.value),
        )
        worker = self.controller.start(settings)
        if worker is not None:
            self.save_settings()
            self._show_status(f"running on '{settings.layer.name}'...")
        return worker

    def run_whole_image(self, value=None):
        """Start the whole-image job on the layer's file (the batch path: encode once, or reuse
        the saved encoding, then the prompts by chunks); returns the napari worker, or None
        (the user is told why)."""
        layer = self.image_layer.value
        try:
            options, spec = self.options(), self.model_spec()
            problem = settings_problem(RunSettings(layer=layer, prompts=split_prompts(self.prompts.value),
                                                   spec=spec, options=options), self.viewer.layers)
            if problem:
                raise ValueError(problem)
            request = plan_whole_image(layer, split_prompts(self.prompts.value), spec,
                                       chosen_options(options, spec), **self.whole_image_panel.values())
        except (ValueError, ModelLoadError) as error:
            show_error(f"Whole image: {error}")
            return None
        self.save_settings()
        return self.whole_image_job.start(request, layer)

    def use_demo_model(self, value=None) -> None:
        """Choose the packaged demo model (no download, works offline): the status line's
        answer to a model that could not be loaded."""
        self.model.value = DEMO_MODEL
        self._show_status(f"model: {DEMO_MODEL} (packaged, offline). It knows generated "
                          "micrographs: File > Open Sample > napari-gem.")

    def refine_mask(self, value=None, layer=None):
        """Refine the selected (or given) mask layer's current plane from its strokes.

        Returns the napari worker, or None (the user is told why in a notification).
        """
        return self.refiner.refine(layer)

    def _on_live_changed(self, value=None) -> None:
        self.refiner.live = bool(self.live_refine.value)

    def show_strokes(self) -> None:
        """Show each prompt's strokes (painted and erased regions) in the results table."""
        self.results_panel.show_strokes(self.refiner.stroke_counts())

    def cancel(self, value=None) -> None:
        """Stop the active run (and a whole-image job) at its next step."""
        self.controller.cancel()
        self.whole_image_job.cancel()

    def redraw(self) -> None:
        """Re-draw the latest masks for the current threshold and mask mode (no model)."""
        if self.controller.busy:
            return
        threshold = self.results_panel.chosen_threshold()
        if self.controller.redraw(threshold, self.mask_mode.value) is not None:
            last = self.controller.last
            last.options = last.options.replace(threshold=threshold)

    # -- export ---------------------------------------------------------------------------------------
    def refresh_export_list(self) -> None:
        self.export_panel.refresh_export_list()

    def export(self, out_dir, prompts=None, *, overwrite: bool = False, ask: bool = False,
               masks=None) -> list[Path]:
        """Export masks (as edited), heatmaps, objects and parameters (see :class:`ExportPanel`)."""
        return self.export_panel.export(out_dir, prompts, overwrite=overwrite, ask=ask, masks=masks)

    # -- state shown ------------------------------------------------------------------------------------
    def _on_busy(self, busy: bool) -> None:
        self.run_button.enabled = True  # a new run replaces the active one
        busy = self.controller.busy or self.whole_image_job.busy
        self.cancel_button.enabled = busy
        if busy:
            return
        if self.status.value.startswith("running"):
            self.status.value = "ready"
        last = self.controller.last
        threshold = self.results_panel.chosen_threshold()
        if last is not None and (last.mask_mode != self.mask_mode.value
                                 or last.options.threshold != threshold):
            self._schedule_redraw()  # the masks controls changed while the model ran

    def _show_status(self, text: str, details: str = "", offer_demo: bool = False) -> None:
        self.status.value = text
        self.status.tooltip = details
        self.demo_button.visible = offer_demo

    def _on_run_failed(self, error: Exception) -> None:
        """Keep why the run failed in the status line, and offer the demo model when the
        chosen one could not be loaded (offline, weights not cached)."""
        message = str(error)
        not_loaded = isinstance(error.__cause__, ModelLoadError)
        self._show_status(f"Run failed: {first_sentence(message)} (hover for why)",
                          details=message,
                          offer_demo=not_loaded and self.model.value != DEMO_MODEL)

    def _on_summary(self, summary: RunSummary | None) -> None:
        self._show_status("")
        self.results_panel.show_summary(summary)
        self.show_strokes()
        if summary is None:
            self.export_panel.clear()
        else:
            self.export_panel.refresh_export_list()

    # -- settings ---------------------------------------------------------------------------------------
    def settings(self) -> dict:
        """The remembered fields' values (JSON-ready)."""
        values = {}
        for name in self.remembered:
            value = getattr(self, name).value
            values[name] = str(value) if isinstance(value, Path) else value
        return values

    def save_settings(self) -> None:
        save_settings(self.settings())

    def _restore(self, values: dict) -> None:
        for name in self.remembered:  # order matters: model before pretrained
            if name not in values:
                continue
            field = getattr(self, name)
            try:
                field.value = (values[name] or "") if name == "checkpoint" else values[name]
                if name == "model":
                    self.model_panel.on_model_changed()
            except (ValueError, TypeError, KeyError):
                continue  # a value from another version or machine: keep the default


def first_sentence(text: str) -> str:
    """The first sentence of a message's first line, without its full stop (the status
    line's short form)."""
    line = text.strip().splitlines()[0] if text.strip() else "unknown error"
    return line.partition(". ")[0].rstrip(".")


def _single_shot(parent, milliseconds: int, callback) -> QTimer:
    timer = QTimer(parent)
    timer.setSingleShot(True)
    timer.setInterval(milliseconds)
    timer.timeout.connect(callback)
    return timer


def _shutdown(controller: SegmentController, viewer, inserted, removed, refresh, *args) -> None:
    """The widget was destroyed (dock closed, viewer closed): stop work, disconnect."""
    controller.busy_changed.disconnect()
    controller.summary_changed.disconnect()
    controller.masks_changed.disconnect()
    controller.run_failed.disconnect()
    controller.close()
    try:
        viewer.layers.events.inserted.disconnect(inserted)
        viewer.layers.events.removed.disconnect(removed)
        viewer.layers.events.moved.disconnect(refresh)
        for layer in viewer.layers:
            layer.events.name.disconnect(refresh)
    except (RuntimeError, AttributeError):
        pass


def __getattr__(name: str):
    if name == "GemWidget":  # the widget's first name, from when GEM was the only method
        warn_deprecated("GemWidget", "SegmentWidget")
        return SegmentWidget
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
