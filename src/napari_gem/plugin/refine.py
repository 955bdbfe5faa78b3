"""Refine a prompt's mask from the user's own edits: the Refine button, its key, live mode.

On a prompt's mask layer, what the user paints in is positive and what they erase is
negative (:mod:`.strokes_book`). :meth:`MaskRefiner.refine` sends the current plane's
strokes to :meth:`EncodedImage.refine <napari_gem.engine.EncodedImage.refine>` in a
napari worker (the cached encoding of the run that made the mask; re-encoded when the
cache let it go) and writes the result back on the main thread:

- as one ``Labels.data_setitem`` call, so napari's own Ctrl+Z undoes a refinement in
  one step (and Ctrl+Shift+Z redoes it);
- never over a stroke, nor over a pixel the user changed while the worker ran.

A refined mask differs from what the run wrote, so it counts as edited: a re-run or a
threshold change never overwrites it.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from functools import partial

import numpy as np
from napari.layers import Labels
from napari.utils.notifications import show_error, show_info, show_warning

from ..engine import ModelLoadError, SegmentOptions
from ..engine.described import describe
from ..engine.object_labels import RefineOptions
from ..io.planes import PlaneView
from .cache import EncodedCache, ModelCache, ModelSpec
from .exemplar_prompts import ExemplarBoxes, is_exemplar_prompt
from .forms import build_fields
from .layers import digest, info, outputs_of, plane_key, source_id
from .planes import current_index
from .runner import RunFailed, encode_or_explain, labels_for_mode
from .strokes_book import (
    count_strokes,
    forget,
    mark_refined,
    object_stage_counts,
    plane_strokes,
    record_edit,
)

log = logging.getLogger(__name__)

#: The viewer key that refines the selected mask layer (napari binds no Shift+R).
REFINE_KEY = "Shift-R"
#: Live mode waits this long after a stroke, so a burst of strokes refines once.
LIVE_DELAY_MS = 300


@dataclass
class RunRecord:
    """What made the masks of one source and signature: the latest request, every plane's view."""

    spec: ModelSpec
    options: SegmentOptions
    views: dict[tuple[int, ...], tuple[PlaneView, tuple]] = field(default_factory=dict)  # view, cache key
    exemplars: ExemplarBoxes | None = None  # the run's "@layer" prompts' boxes per plane
    regions: object = None  # plane index -> the run's region labels (regions="labels")


@dataclass
class RefineJob:
    """One plane's refinement, gathered on the main thread."""

    layer: object
    index: tuple[int, ...]
    prompt: str
    mode: str
    spec: ModelSpec
    options: SegmentOptions
    view: PlaneView
    cache_key: tuple
    positive: np.ndarray
    negative: np.ndarray
    before: np.ndarray  # the plane as it was when the job was made
    exemplars: list | None = None  # an "@layer" prompt's boxes: refined from them, not words
    region_labels: np.ndarray | None = None  # the run's, so a re-encoding matches its cache key
    refine_options: dict = field(default_factory=dict)  # RefineOptions' fields (the object stage)


@dataclass
class RefineOutput:
    job: RefineJob
    labels: np.ndarray | None = None
    error: str | None = None
    reencoded: bool = False
    seconds: float = 0.0
    object_stage: dict | None = None  # candidates, kept, removed (engine parameters)


class StrokeCount(tuple):
    """``(painted, erased)`` strokes of a prompt's mask, and ``objects``: ``(kept, removed)`` by
    the object stage of its latest refinement (None before one)."""

    objects: tuple[int, int] | None

    def __new__(cls, painted: int, erased: int, objects: tuple[int, int] | None = None):
        count = super().__new__(cls, (painted, erased))
        count.objects = objects
        return count


def refine_plane(job: RefineJob, models: ModelCache, encoded: EncodedCache) -> RefineOutput:
    """The worker's part: the encoding (cached, else made again), then ``refine``. Never raises."""
    output = RefineOutput(job)
    start = time.perf_counter()
    try:
        image = encoded.get(job.cache_key)
        if image is None:
            model = models.get(job.spec)
            image = encode_or_explain(job.view, model, job.options, lambda *_: None,
                                      lambda: False, job.region_labels)
            encoded.put(job.cache_key, image)
            output.reencoded = True
        prompt = job.prompt if job.exemplars is None else None
        result = image.refine(prompt, positive=job.positive, negative=job.negative,
                              exemplars=None if job.exemplars is None else {job.prompt: job.exemplars},
                              **job.options.scoring_fields(),
                              **job.refine_options)
        output.labels = labels_for_mode(result, job.mode)[0]
        output.object_stage = result.parameters.get("refine", {}).get("object_stage")
    except (RunFailed, ModelLoadError, ValueError) as error:
        output.error = f"Refine failed: {error}"
    except Exception as error:  # a bug or an unforeseen input: one clear line, log the rest
        log.exception("napari-gem refinement failed")
        output.error = f"Refine failed: {type(error).__name__}: {error}"
    output.seconds = time.perf_counter() - start
    return output


def current_plane(layer, world_point) -> tuple[int, ...]:
    """The leading (non-displayed) index of ``layer`` at the viewer's current point."""
    if layer.ndim == 2:
        return ()
    return tuple(current_index(layer, world_point, [1.0] * layer.ndim)[:-2])


class MaskRefiner:
    """Tracks strokes on the mask layers of one viewer and refines them (see module docstring)."""

    def __init__(self, viewer, controller) -> None:
        from qtpy.QtCore import QTimer

        self.viewer = viewer
        self.controller = controller
        self.records: dict[tuple[str, str], RunRecord] = {}
        self.live = False
        self.worker = None
        self._writing = False
        self._queued: object | None = None  # a layer to refine once the running job ends
        self._live_timer = QTimer()
        self._live_timer.setSingleShot(True)
        self._live_timer.setInterval(LIVE_DELAY_MS)
        self._live_timer.timeout.connect(self._refine_live)
        self._live_layer = None
        self._bound = False
        self.option_fields = build_fields(describe(RefineOptions))  # the object stage's choice
        controller.summary_changed.connect(self._on_summary)
        viewer.layers.events.inserted.connect(self._on_inserted)
        viewer.layers.events.removed.connect(self._on_removed)
        for layer in viewer.layers:
            self._watch(layer)

    def option_widgets(self) -> list:
        """The refinement's own option fields (built from :class:`RefineOptions`), for the widget."""
        return [widget for option in self.option_fields.values() for widget in option.named_widgets.values()]

    def refine_options(self) -> dict:
        """The refinement options the fields give (``objects``)."""
        return {name: option.read() for name, option in self.option_fields.items()}

    # -- bookkeeping ------------------------------------------------------------------------------
    def bind_key(self) -> None:
        """Bind :data:`REFINE_KEY` on the viewer (not when someone else holds it)."""
        try:
            self.viewer.bind_key(REFINE_KEY, self._on_key, overwrite=False)
            self._bound = True
        except ValueError:
            log.warning("napari-gem: %s is taken; use the Refine button", REFINE_KEY)

    def _on_key(self, viewer) -> None:
        self.refine()

    def _watch(self, layer) -> None:
        if isinstance(layer, Labels):
            layer.events.paint.connect(self._on_paint)
            layer.events.data.connect(self._on_data)

    def _on_inserted(self, event) -> None:
        self._watch(event.value)

    def _on_removed(self, event) -> None:
        if isinstance(event.value, Labels):
            event.value.events.paint.disconnect(self._on_paint)
            event.value.events.data.disconnect(self._on_data)

    def _on_paint(self, event) -> None:
        layer = event.source
        if self._writing or info(layer).get("role") != "mask":
            return
        if record_edit(layer, event.value) and self.live:
            self._live_layer = layer
            self._live_timer.start()

    def _on_data(self, event) -> None:
        # The whole array was replaced (a run writing a fresh mask, or a script): the
        # strokes were against the old data.
        if info(event.source).get("role") == "mask":
            forget(event.source)

    def _on_summary(self, summary) -> None:
        """A run was applied (or re-drawn): remember what made its masks."""
        last = self.controller.last
        if last is None or last.request is None or last.source not in self.viewer.layers:
            return
        sid = source_id(last.source)
        heat = outputs_of(self.viewer.layers, sid, "heatmap", last.prompts[0])
        if not heat:
            return
        request = last.request
        record = self.records.setdefault((sid, info(heat[-1])["signature"]),
                                         RunRecord(request.spec, request.options))
        record.spec, record.options, record.exemplars = request.spec, request.options, request.exemplars
        record.regions = request.regions
        for index, view in request.job.planes:
            record.views[tuple(index)] = (view, request.encoding_key(index))

    def close(self, *args) -> None:
        """The widget is going away: let go of the viewer."""
        self._live_timer.stop()
        try:
            self.controller.summary_changed.disconnect(self._on_summary)
            self.viewer.layers.events.inserted.disconnect(self._on_inserted)
            self.viewer.layers.events.removed.disconnect(self._on_removed)
            for layer in self.viewer.layers:
                if isinstance(layer, Labels):
                    layer.events.paint.disconnect(self._on_paint)
                    layer.events.data.disconnect(self._on_data)
            if self._bound:
                self.viewer.bind_key(REFINE_KEY, None)
        except (RuntimeError, AttributeError, KeyError, ValueError):  # viewer torn down
            pass

    # -- what the table shows ------------------------------------------------------------------
    def stroke_counts(self) -> dict[str, StrokeCount]:
        """Per prompt: ``(positive, negative)`` strokes on its default mask layer (and the
        objects its latest refinements kept and removed, :class:`StrokeCount`)."""
        return {choice.prompt: StrokeCount(*count_strokes(choice.layer), object_stage_counts(choice.layer))
                for choice in self.controller.default_mask_choices()
                if info(choice.layer).get("role") == "mask"}

    # -- refining ---------------------------------------------------------------------------------
    def refine(self, layer=None):
        """Refine the current plane of ``layer`` (default: the selected layer) from its strokes.

        Returns the napari worker, or None when there is nothing to do (the user is told
        why in a notification).
        """
        layer = self.viewer.layers.selection.active if layer is None else layer
        if self.worker is not None:
            if self.live:
                self._queued = layer
            else:
                show_info("A refinement is running; press Refine again when it is done.")
            return None
        try:
            job = self._job(layer)
        except ValueError as error:
            show_error(str(error))
            return None
        return self._launch(job)

    def _refine_live(self) -> None:
        layer, self._live_layer = self._live_layer, None
        if self.live and layer is not None and layer in self.viewer.layers:
            self.refine(layer)

    def _job(self, layer) -> RefineJob:
        meta = info(layer)
        if layer is None or not isinstance(layer, Labels) or meta.get("role") not in ("mask",
                                                                                       "semantic"):
            raise ValueError("Refine works on a prompt's mask layer: select one (made by Run), "
                             "paint or erase on it, then press Refine.")
        if meta["role"] == "semantic" or meta.get("mode") == "semantic":
            raise ValueError(f"'{layer.name}' is a semantic map of all prompts. Refine works on "
                             "one prompt's mask: set 'masks' to one binary mask (or instances) "
                             "per prompt, run, then paint and refine.")
        if self.controller.busy:
            raise ValueError("A run is in progress: refine when it has finished.")
        record = self.records.get((meta.get("source_id"), meta.get("signature")))
        index = current_plane(layer, self.viewer.dims.point)
        if record is None:
            raise ValueError(f"The run that made '{layer.name}' is not known in this session "
                             "(or its image layer was removed): run the prompt again, then "
                             "paint and refine.")
        if index not in record.views or plane_key(index) not in meta.get("planes", {}):
            raise ValueError(f"Plane {list(index)} of '{layer.name}' has no mask from a run "
                             "yet: run on this plane first (plane: current), then refine.")
        positive, negative = plane_strokes(layer, index)
        if not (positive.any() or negative.any()):
            raise ValueError(f"No strokes on this plane of '{layer.name}': paint what the mask "
                             "missed (positive) or erase what it took wrongly (negative), then "
                             "press Refine.")
        view, key = record.views[index]
        threshold = meta.get("parameters", {}).get("options", {}).get(
            "threshold", record.options.threshold)
        options = record.options.replace(threshold=threshold)  # the mask's own (re-drawn) one
        prompt = meta["prompt"]
        exemplars = (record.exemplars(index).get(prompt) or None
                     if record.exemplars is not None and is_exemplar_prompt(prompt) else None)
        return RefineJob(layer, index, prompt, meta.get("mode", "binary"), record.spec,
                         options, view, key, positive, negative,
                         np.array(layer.data[index], copy=True), exemplars,
                         record.regions(index) if record.regions is not None else None,
                         self.refine_options())

    def _launch(self, job: RefineJob):
        from napari.qt.threading import create_worker
        from qtpy.QtCore import QTimer

        worker = create_worker(refine_plane, job, self.controller.models, self.controller.encoded,
                               _start_thread=False)
        worker.returned.connect(self._on_returned)
        worker.finished.connect(partial(self._on_finished, worker))
        self.worker = worker
        QTimer.singleShot(0, worker.start)
        return worker

    def _on_finished(self, worker) -> None:
        if worker is self.worker:
            self.worker = None
        queued, self._queued = self._queued, None
        if queued is not None and queued in self.viewer.layers:
            self.refine(queued)

    def _on_returned(self, output: RefineOutput) -> None:
        if output.error is not None:
            show_error(output.error)
            return
        try:
            self.apply(output)
        except Exception as error:  # never leave a traceback dump in the viewer
            log.exception("napari-gem could not write the refinement")
            show_error(f"napari-gem could not write the refinement: {type(error).__name__}: "
                       f"{error}")

    def apply(self, output: RefineOutput) -> int:
        """Write a refinement into its layer as one undoable step; returns the pixels changed.

        Strokes and pixels the user changed since the job started are left as they are.
        """
        job = output.job
        layer = job.layer
        if layer not in self.viewer.layers:
            show_warning(f"'{layer.name}' was removed during the refinement; nothing was written.")
            return 0
        now = np.asarray(layer.data[job.index])
        positive, negative = plane_strokes(layer, job.index)
        kept = (now != job.before) | positive | negative
        labels = output.labels.astype(layer.data.dtype, copy=False)
        changed = (labels != now) & ~kept
        if changed.any():
            rows, columns = np.nonzero(changed)
            indices = (*(np.full(rows.size, i) for i in job.index), rows, columns)
            self._writing = True
            try:
                layer.data_setitem(indices, labels[changed])  # one napari undo step
            finally:
                self._writing = False
        mark_refined(layer, job.index, {
            "prompt": job.prompt,
            "options": {**job.options.scoring_fields(), **job.refine_options},
            "digest": digest(np.asarray(layer.data[job.index])),
            "object_stage": output.object_stage,
        })
        self.controller.masks_changed.emit()
        encoded = " (the image was encoded again)" if output.reencoded else ""
        stage = output.object_stage
        objects = (f"; object stage: {stage['kept']} of {stage['candidates']} objects kept"
                   if stage else "")
        show_info(f"Refined '{layer.name}': {int(changed.sum())} pixels changed in "
                  f"{output.seconds:.2f} s{encoded}{objects}. Ctrl+Z undoes it.")
        return int(changed.sum())
