"""The plugin's logic between the widget and the engine: start runs, apply results, re-draw.

:class:`SegmentController` owns the model and encoding caches, starts
:func:`~napari_gem.plugin.runner.run_segmentation` in a napari ``thread_worker``, turns its
progress into a napari progress bar (the activity dock), writes results to layers on
the main thread, re-draws masks when the threshold or mask mode changes, and exports.
Every problem reaches the user as one napari notification.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import numpy as np
from napari.layers import Image, Labels
from napari.utils.notifications import show_error, show_info, show_warning
from psygnal import Signal
from scipy import ndimage

from ..engine import SegmentOptions
from ..engine.masks import threshold_value
from ..engine.result import default_threshold
from .cache import EncodedCache, ModelCache, ModelSpec
from .exemplar_prompts import exemplar_boxes, raise_example_layers
from .layers import (
    OutputWriter,
    computed_planes,
    info,
    masks_from_heatmaps,
    outputs_of,
    source_id,
)
from .mask_choice import MaskChoice, TouchLog, default_choices, file_variants, mask_choices
from .planes import ChannelChoice, PlaneError, build_job
from .regions import LABELS_SOURCE, plane_labels, voting_regions
from .runner import (
    MASK_MODES,
    CancelToken,
    Progress,
    RunOutput,
    RunRequest,
    chosen_options,
    run_segmentation,
)

log = logging.getLogger(__name__)


@dataclass
class RunSettings:
    """One run as the widget describes it."""

    layer: object
    prompts: list[str]
    spec: ModelSpec | None
    options: SegmentOptions
    mask_mode: str = "binary"
    plane_mode: str = "current"
    channel: ChannelChoice = field(default_factory=ChannelChoice)
    regions_layer: object = None  # the Labels layer of regions="labels"


@dataclass
class PromptSummary:
    """One row of the results table."""

    prompt: str
    presence: float
    threshold: str
    objects: int


@dataclass
class RunSummary:
    """What the widget shows after a run or a re-draw."""

    source: str
    prompts: list[str]
    rows: list[PromptSummary]
    planes: int
    seconds: float = 0.0
    reused: int = 0


@dataclass
class LastRun:
    """The latest applied run: what the threshold and mask-mode controls act on."""

    source: object
    prompts: list[str]
    mask_mode: str
    options: SegmentOptions
    geometry: object
    presence: dict[str, float]
    request: RunRequest | None = None  # what made it (model, options, planes): for refining
    regions: object = None  # plane index -> region labels, when the run voted in regions


def split_prompts(text: str) -> list[str]:
    """Prompts from text: one per line or comma-separated; blanks and repeats dropped."""
    parts = (part.strip() for line in str(text).splitlines() for part in line.split(","))
    return list(dict.fromkeys(part for part in parts if part))


def safe_stem(name: str) -> str:
    """A file-name stem from a layer name."""
    stem = re.sub(r"[^\w.-]+", "_", name).strip("._")
    return stem or "image"


def count_objects(labels: np.ndarray, mode: str, count: int) -> list[int]:
    """Objects per prompt in one plane's labels."""
    if mode == "instances":
        return [int(np.unique(plane[plane > 0]).size) for plane in labels]
    if mode == "semantic":
        return [int(ndimage.label(labels == i + 1)[1]) for i in range(count)]
    return [int(ndimage.label(plane > 0)[1]) for plane in labels]


class SegmentController:
    """Runs the chosen method on napari layers for one viewer (see module docstring)."""

    busy_changed = Signal(bool)
    summary_changed = Signal(object)  # RunSummary | None
    masks_changed = Signal()  # mask layers added, removed, edited or selected
    run_failed = Signal(object)  # RunFailed: the widget keeps it in its status line

    def __init__(self, viewer) -> None:
        self.viewer = viewer
        self.models = ModelCache()
        self.encoded = EncodedCache()
        self.worker = None
        self.token: CancelToken | None = None
        self.last: LastRun | None = None
        self.summary: RunSummary | None = None
        self._versions: dict[str, int] = {}
        self._pbar = None
        self._told_edited: set[str] = set()
        self.touches = TouchLog()  # which mask layer the user edited or selected last
        viewer.layers.events.inserted.connect(self._on_inserted)
        viewer.layers.events.removed.connect(self._on_removed)
        viewer.layers.selection.events.changed.connect(self._on_selection)
        for layer in viewer.layers:
            self._watch(layer)

    # -- layer bookkeeping ---------------------------------------------------------------------
    def _watch(self, layer) -> None:
        if isinstance(layer, Image):
            layer.events.data.connect(self._on_data_changed)
        elif isinstance(layer, Labels):
            layer.events.paint.connect(self._on_mask_edited)
            layer.events.data.connect(self._on_mask_edited)

    def _on_inserted(self, event) -> None:
        self._watch(event.value)
        if _is_mask(event.value):
            self.masks_changed.emit()

    def _on_removed(self, event) -> None:
        layer = event.value
        if isinstance(layer, Image):
            layer.events.data.disconnect(self._on_data_changed)
            self.encoded.drop_source(source_id(layer))
        elif isinstance(layer, Labels):
            layer.events.paint.disconnect(self._on_mask_edited)
            layer.events.data.disconnect(self._on_mask_edited)
        if _is_mask(layer):
            self.masks_changed.emit()

    def _on_mask_edited(self, event) -> None:
        if _is_mask(event.source) and not self.touches.paused:
            self.touches.touch(event.source)
            self.masks_changed.emit()

    def _on_selection(self, event) -> None:
        # napari selects every layer it adds: the plugin's own writes are paused.
        picked = [layer for layer in (event.added or ()) if _is_mask(layer)]
        if picked and not self.touches.paused:
            for layer in picked:
                self.touches.touch(layer)
            self.masks_changed.emit()

    def _on_data_changed(self, event) -> None:
        sid = source_id(event.source)
        self._versions[sid] = self._versions.get(sid, 0) + 1
        self.encoded.drop_source(sid)

    def source_key(self, layer, level: int, channel: dict) -> tuple:
        """Cache identity of a layer's data: layer id, data version, level, channel choice."""
        sid = source_id(layer)
        return (sid, self._versions.get(sid, 0), id(layer.data), level, repr(channel))

    @property
    def busy(self) -> bool:
        return self.worker is not None

    # -- starting a run --------------------------------------------------------------------------
    def _check(self, settings: RunSettings) -> str | None:
        layer = settings.layer
        if layer is None:
            if not any(isinstance(x, Image) for x in self.viewer.layers):
                return ("No image layer: open an image (File > Open, or File > Open Sample > "
                        "napari-gem), then pick it under 'image'.")
            return "Choose an image layer under 'image'."
        if not isinstance(layer, Image):
            return (f"'{layer.name}' is a {type(layer).__name__} layer; napari-gem reads Image "
                    "layers. Choose an image under 'image'.")
        if layer not in self.viewer.layers:
            return f"The layer '{layer.name}' is no longer in the viewer."
        if not settings.prompts:
            return ("Type at least one prompt (what to look for), e.g. 'nucleus' or "
                    "'cat, dog': one per line or comma-separated.")
        if settings.spec is None:
            return "Choose a checkpoint file under Model, or switch to a pretrained tag."
        if settings.mask_mode not in MASK_MODES:
            return f"Unknown mask mode {settings.mask_mode!r}."
        return None

    def start(self, settings: RunSettings):
        """Validate, plan and start a run; returns the napari worker, or None (user told why).

        A run started while another is active cancels the older one: the latest wins.
        """
        problem = self._check(settings)
        if problem:
            show_error(problem)
            return None
        layer = settings.layer
        try:
            job = build_job(layer, settings.channel, settings.plane_mode, settings.options,
                            self.viewer.dims.point)
            regions = None
            if settings.options.regions == LABELS_SOURCE:
                regions = plane_labels(settings.regions_layer, self.viewer, job.plane_shape,
                                       [index for index, _ in job.planes])
            exemplars = exemplar_boxes(settings.prompts, self.viewer, layer, job.plane_shape)
        except (PlaneError, ValueError) as error:
            show_error(str(error))
            return None
        if self.busy:
            self.cancel(quiet=True)
        request = RunRequest(
            spec=settings.spec,
            options=chosen_options(settings.options, settings.spec),
            prompts=list(settings.prompts),
            job=job,
            source_key=self.source_key(layer, job.level, job.channel),
            mask_mode=settings.mask_mode,
            regions=regions,
            exemplars=exemplars,
        )
        return self._launch(request, layer)

    def _launch(self, request: RunRequest, layer):
        from napari.qt.threading import create_worker
        from qtpy.QtCore import QTimer

        token = CancelToken()
        holder: dict = {}

        def report(progress: Progress) -> None:
            # Called in the worker thread: the signal is delivered on the main thread.
            worker = holder.get("worker")
            if worker is not None and not token():
                worker.yielded.emit(progress)

        worker = create_worker(run_segmentation, request, self.models, self.encoded, token, report,
                               _start_thread=False)
        holder["worker"] = worker
        token.extra = lambda: worker.abort_requested  # napari's own cancel (closing the window)
        worker.yielded.connect(partial(self._on_progress, worker))
        worker.returned.connect(partial(self._on_returned, layer))
        worker.finished.connect(partial(self._on_finished, worker))
        self.worker, self.token = worker, token
        self.busy_changed.emit(True)
        # Started from the event loop, so callers can connect to its signals first.
        QTimer.singleShot(0, worker.start)
        return worker

    def cancel(self, quiet: bool = False) -> None:
        """Stop the active run at its next step; nothing of it reaches the layers."""
        if self.worker is None:
            return
        self.token.set()
        self.worker.quit()
        self._close_progress()
        self.worker, self.token = None, None
        self.busy_changed.emit(False)
        if not quiet:
            show_info("Run cancelled: no layer was changed.")

    def close(self) -> None:
        """The widget is going away: stop work, let go of the viewer."""
        self.cancel(quiet=True)
        try:
            self.viewer.layers.events.inserted.disconnect(self._on_inserted)
            self.viewer.layers.events.removed.disconnect(self._on_removed)
            self.viewer.layers.selection.events.changed.disconnect(self._on_selection)
            for layer in self.viewer.layers:
                if isinstance(layer, Image):
                    layer.events.data.disconnect(self._on_data_changed)
                elif isinstance(layer, Labels):
                    layer.events.paint.disconnect(self._on_mask_edited)
                    layer.events.data.disconnect(self._on_mask_edited)
        except (RuntimeError, AttributeError):  # viewer already torn down
            pass

    # -- worker signals (main thread) -----------------------------------------------------------
    def _on_progress(self, worker, progress: Progress) -> None:
        if worker is not self.worker:
            return
        from napari.utils import progress as napari_progress

        text = f"napari-gem: {progress.text}"
        pbar = self._pbar
        if pbar is None:
            # Creating a bar may run the event loop (activity dock), so keep a local handle.
            pbar = self._pbar = napari_progress(total=progress.total, desc=text)
        else:
            if pbar.total != progress.total:
                pbar.total = progress.total
            pbar.set_description(text)
        if progress.total:
            pbar.update(max(0, min(progress.done, progress.total)) - pbar.n)
        if worker is not self.worker:  # the run ended while the bar was being made
            pbar.close()

    def _close_progress(self) -> None:
        if self._pbar is not None:
            self._pbar.close()
            self._pbar = None

    def _on_finished(self, worker) -> None:
        if worker is not self.worker:
            return
        self._close_progress()
        self.worker, self.token = None, None
        self.busy_changed.emit(False)

    def _on_returned(self, layer, output: RunOutput) -> None:
        if output.cancelled:
            return  # the user was told when they cancelled
        if output.error is not None:
            show_error(str(output.error))
            self.run_failed.emit(output.error)
            return
        try:
            self.apply(layer, output)
        except Exception as error:  # never leave a traceback dump in the viewer
            log.exception("napari-gem could not write its layers")
            show_error(f"napari-gem could not write its layers: {type(error).__name__}: {error}")

    # -- results to layers ------------------------------------------------------------------------
    def apply(self, layer, output: RunOutput) -> RunSummary | None:
        """Write a run's result into the viewer (main thread)."""
        request = output.request
        if layer not in self.viewer.layers:
            show_warning(f"The image layer '{request.job.source_name}' was removed during the "
                         "run; its result was discarded.")
            return None
        skipped = [plane for plane in output.planes if plane.skipped]
        if skipped and len(skipped) == len(output.planes) and len(output.planes) == 1:
            show_warning(f"The image '{layer.name}' is {skipped[0].skipped}: there is nothing "
                         "to find, so no layer was made.")
            return None
        prompts = request.prompts
        writer = OutputWriter(self.viewer, layer, request.job.geometry)
        with self.touches.pause():  # layers napari selects as they are added: not the user's pick
            writer.write_heatmaps(prompts, output.planes, output.parameters)
            report = writer.write_masks(prompts, request.mask_mode,
                                        [(p.index, p.labels) for p in output.planes],
                                        output.parameters, edited="divert")
            raise_example_layers(self.viewer, prompts)
        for old, new in report.diverted:
            show_info(f"'{old}' was edited by hand, so it was left as it is; the new mask "
                      f"is in '{new}'.")
        if skipped:
            show_warning(f"{len(skipped)} of {len(output.planes)} planes of '{layer.name}' "
                         f"are constant or all NaN (e.g. {skipped[0].skipped}); their masks "
                         "are empty.")
        presence = {
            prompt: float(max(plane.presence[i] for plane in output.planes))
            for i, prompt in enumerate(prompts)
        }
        self.last = LastRun(layer, list(prompts), request.mask_mode, request.options,
                            request.job.geometry, presence, request, voting_regions(output))
        counts = np.zeros(len(prompts), dtype=int)
        for plane in output.planes:
            counts += count_objects(plane.labels, request.mask_mode, len(prompts))
        thresholds = [
            _threshold_text([float(plane.thresholds[i]) for plane in output.planes
                             if not plane.skipped])
            for i in range(len(prompts))
        ]
        summary = RunSummary(
            source=layer.name,
            prompts=list(prompts),
            rows=[PromptSummary(p, presence[p], thresholds[i], int(counts[i]))
                  for i, p in enumerate(prompts)],
            planes=len(output.planes),
            seconds=output.seconds,
            reused=output.reused,
        )
        self._set_summary(summary)
        return summary

    def _set_summary(self, summary: RunSummary | None) -> None:
        self.summary = summary
        self.summary_changed.emit(summary)
        self.masks_changed.emit()

    # -- live re-draw --------------------------------------------------------------------------------
    def redraw(self, threshold: float | None, mode: str) -> RunSummary | None:
        """Masks of the latest run again from its stored heatmaps (no model involved).

        ``threshold`` None means automatic (Otsu for min-max scores, 0.5 calibrated).
        Masks edited by hand are left alone (the user is told once per layer).
        """
        last = self.last
        if last is None or last.source not in self.viewer.layers:
            return None
        sid = source_id(last.source)
        heat_layers = []
        for prompt in last.prompts:
            found = outputs_of(self.viewer.layers, sid, "heatmap", prompt)
            if not found:
                return None  # the user removed a heatmap: nothing to re-draw from
            heat_layers.append(found[-1])
        options = last.options.replace(threshold=threshold)
        method = default_threshold(options)
        plane_labels, used = [], []
        cell = info(heat_layers[0]).get("parameters", {}).get("heatmap_cell")
        for index in computed_planes(heat_layers):
            heatmaps = np.stack([np.asarray(layer.data[index], dtype=np.float32)
                                 for layer in heat_layers])
            values = [threshold_value(h, method) for h in heatmaps]
            used.append(values)
            regions = last.regions(index) if last.regions is not None else None
            plane_labels.append((index, masks_from_heatmaps(heatmaps, values, mode, options, cell,
                                                            regions)))
        if not plane_labels:
            return None
        parameters = dict(info(heat_layers[0]).get("parameters", {}))
        parameters["mask_mode"] = mode
        parameters["options"] = {**parameters.get("options", {}), "threshold": threshold}
        writer = OutputWriter(self.viewer, last.source, last.geometry)
        with self.touches.pause():
            report = writer.write_masks(last.prompts, mode, plane_labels, parameters,
                                        edited="skip")
        for name in report.skipped_edited:
            if name not in self._told_edited:
                self._told_edited.add(name)
                show_info(f"'{name}' was edited by hand: threshold and mask-mode changes no "
                          "longer apply to it (run again to get a new mask next to it).")
        last.mask_mode = mode
        counts = np.zeros(len(last.prompts), dtype=int)
        for _, labels in plane_labels:
            counts += count_objects(labels, mode, len(last.prompts))
        summary = RunSummary(
            source=last.source.name,
            prompts=list(last.prompts),
            rows=[PromptSummary(p, last.presence[p],
                                _threshold_text([u[i] for u in used]), int(counts[i]))
                  for i, p in enumerate(last.prompts)],
            planes=len(plane_labels),
        )
        self._set_summary(summary)
        return summary

    # -- export ------------------------------------------------------------------------------------------
    def mask_choices(self) -> list[MaskChoice]:
        """Every mask layer of each prompt of the latest run, edited ones marked."""
        last = self.last
        if last is None or last.source not in self.viewer.layers:
            return []
        return mask_choices(self.viewer.layers, source_id(last.source), last.prompts)

    def default_mask_choices(self, prompts: Sequence[str] | None = None) -> list[MaskChoice]:
        """Per prompt, the mask layer the user last edited or selected (else the newest)."""
        choices = [c for c in self.mask_choices() if not prompts or c.prompt in prompts]
        return default_choices(choices, self.touches)

    def export_layers(self, prompts: Sequence[str] | None = None,
                      masks: Sequence[str] | None = None) -> dict:
        """The arrays an export writes, taken from the layers as they are now (edits included).

        ``masks``: keys of :meth:`mask_choices` (several layers of one prompt are all
        written, under names that never collide); otherwise the default layer of each
        of ``prompts`` (all prompts of the latest run when None).
        """
        last = self.last
        if last is None:
            raise ValueError("Nothing to export yet: run a segmentation on an image first.")
        if last.source not in self.viewer.layers:
            raise ValueError(
                f"The image layer '{last.source.name}' was removed. Select its napari-gem layers and "
                "use File > Save Selected Layers... > napari-gem export (folder), or run again."
            )
        sid = source_id(last.source)
        if masks:
            available = {choice.key: choice for choice in self.mask_choices()}
            missing = [key for key in masks if key not in available]
            if missing:
                raise ValueError("A chosen mask layer is gone; choose again or run again.")
            chosen = [available[key] for key in masks]
        else:
            wanted = list(prompts) if prompts else list(last.prompts)
            chosen = self.default_mask_choices(wanted)
            gone = [p for p in wanted if p not in {choice.prompt for choice in chosen}]
            if gone:
                raise ValueError(f"The mask layer of '{gone[0]}' is gone; run again to export.")
        prompts = list(dict.fromkeys(choice.prompt for choice in chosen))
        heatmaps, parameters = {}, {}
        for prompt in prompts:
            heat = outputs_of(self.viewer.layers, sid, "heatmap", prompt)
            if not heat:
                raise ValueError(f"The heatmap layer of '{prompt}' is gone; run again to export.")
            heatmaps[prompt] = np.asarray(heat[-1].data, dtype=np.float32)
            parameters = parameters or dict(info(heat[-1]).get("parameters", {}))
        mask_arrays, layers_used, stroke_layers = {}, [], {}
        for choice, variant in zip(chosen, file_variants(chosen), strict=True):
            mask_arrays[(choice.prompt, variant)] = _labels_of(choice)
            if info(choice.layer).get("role") == "mask":
                stroke_layers[(choice.prompt, variant)] = choice.layer
            layers_used.append({"prompt": choice.prompt, "layer": choice.layer.name,
                                "edited": choice.edited, "variant": variant})
        reference = outputs_of(self.viewer.layers, sid, "heatmap", prompts[0])[-1]
        parameters = {
            **parameters,
            "exported_prompts": prompts,
            "edited_by_hand": list(dict.fromkeys(c.prompt for c in chosen if c.edited)),
            "mask_layers": layers_used,
        }
        return {
            "stem": safe_stem(last.source.name),
            "masks": mask_arrays,
            "heatmaps": heatmaps,
            "parameters": parameters,
            "scale": tuple(reference.scale),
            "translate": tuple(reference.translate),
            "stroke_layers": stroke_layers,
        }

    def export(self, out_dir, prompts: Sequence[str] | None = None,
               overwrite: bool = False, *, masks: Sequence[str] | None = None) -> list[Path]:
        """Write masks (TIFF, PNG for 2D), heatmaps, objects CSV, strokes and parameters JSON.

        ``masks`` / ``prompts`` choose the mask layers as in :meth:`export_layers`.
        Raises ``FileExistsError`` (nothing written) when files exist and ``overwrite``
        is False, ``ValueError`` when there is nothing to export.
        """
        from .stroke_export import write_with_strokes

        arrays = self.export_layers(prompts, masks)
        return write_with_strokes(out_dir, arrays.pop("stem"), arrays.pop("stroke_layers"),
                                  overwrite=overwrite, **arrays)


def _is_mask(layer) -> bool:
    return isinstance(layer, Labels) and info(layer).get("role") in ("mask", "semantic")


def _labels_of(choice: MaskChoice) -> np.ndarray:
    """The labels of a chosen layer for its prompt (a semantic map: that prompt's class)."""
    data = np.asarray(choice.layer.data)
    meta = info(choice.layer)
    if meta.get("role") == "semantic":
        data = (data == meta["prompts"].index(choice.prompt) + 1).astype(np.uint8)
    return data


def _threshold_text(values: Sequence[float]) -> str:
    if not values:
        return "-"
    low, high = min(values), max(values)
    return f"{low:.2f}" if abs(high - low) < 0.005 else f"{low:.2f}-{high:.2f}"
