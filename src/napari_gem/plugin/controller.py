"""The plugin's runs between the widget and the engine: start them, apply results, re-draw, export.

:class:`SegmentController` validates a run, starts
:func:`~napari_gem.plugin.runner.run_segmentation` in a napari ``thread_worker``, turns its
progress into a napari progress bar (the activity dock) and writes results to layers on
the main thread. What it keeps (caches, the latest run) and says (signals) is the
:class:`~.session.Session`'s; re-drawing (:mod:`.redraw`) and exporting (:mod:`.exporting`)
are services it calls. Every problem reaches the user as one napari notification.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from functools import partial
from pathlib import Path

from napari.layers import Image, Labels
from napari.utils.notifications import show_error, show_info, show_warning

from .exemplar_prompts import exemplar_boxes, is_exemplar_prompt, raise_example_layers
from .exporting import ExportArrays, default_mask_choices, gather_export, run_mask_choices, write_export
from .layers import OutputWriter, info, source_id
from .mask_choice import MaskChoice
from .planes import PlaneError, build_job
from .redraw import redraw_masks
from .regions import LABELS_SOURCE, plane_labels, voting_regions
from .run_settings import RunProgress, RunSettings, settings_problem
from .runner import CancelToken, Progress, RunOutput, RunRequest, chosen_options, run_segmentation
from .session import LastRun, RunSummary, Session, summarize
from .view_region import ViewError, region_for

log = logging.getLogger(__name__)


class SegmentController:
    """Runs the chosen method on napari layers for one viewer (see module docstring)."""

    def __init__(self, viewer, session: Session | None = None) -> None:
        self.viewer = viewer
        self.session = session or Session()
        # The session's caches and signals, under the names the widget and panels use.
        self.models, self.encoded = self.session.models, self.session.encoded
        self.touches = self.session.touches
        self.busy_changed, self.summary_changed = self.session.busy_changed, self.session.summary_changed
        self.masks_changed, self.run_failed = self.session.masks_changed, self.session.run_failed
        self.worker = None
        self.token: CancelToken | None = None
        self._versions: dict[str, int] = {}
        self._bar = RunProgress()
        self._told_edited: set[str] = set()
        viewer.layers.events.inserted.connect(self._on_inserted)
        viewer.layers.events.removed.connect(self._on_removed)
        viewer.layers.selection.events.changed.connect(self._on_selection)
        for layer in viewer.layers:
            self._watch(layer)

    @property
    def last(self) -> LastRun | None:
        return self.session.last

    @property
    def busy(self) -> bool:
        return self.worker is not None

    # -- layer bookkeeping ---------------------------------------------------------------------
    def _watch(self, layer, connect: bool = True) -> None:
        events = ((layer.events.data, self._on_data_changed),) if isinstance(layer, Image) else (
            ((layer.events.paint, self._on_mask_edited), (layer.events.data, self._on_mask_edited))
            if isinstance(layer, Labels) else ())
        for event, callback in events:
            (event.connect if connect else event.disconnect)(callback)

    def _on_inserted(self, event) -> None:
        self._watch(event.value)
        if _is_mask(event.value):
            self.session.masks_edited()

    def _on_removed(self, event) -> None:
        layer = event.value
        self._watch(layer, connect=False)
        if isinstance(layer, Image):
            self.encoded.drop_source(source_id(layer))
        if _is_mask(layer):
            self.session.masks_edited()

    def _on_mask_edited(self, event) -> None:
        if _is_mask(event.source) and not self.touches.paused:
            self.touches.touch(event.source)
            self.session.masks_edited()

    def _on_selection(self, event) -> None:
        # napari selects every layer it adds: the plugin's own writes are paused.
        picked = [layer for layer in (event.added or ()) if _is_mask(layer)]
        if picked and not self.touches.paused:
            for layer in picked:
                self.touches.touch(layer)
            self.session.masks_edited()

    def _on_data_changed(self, event) -> None:
        sid = source_id(event.source)
        self._versions[sid] = self._versions.get(sid, 0) + 1
        self.encoded.drop_source(sid)

    def source_key(self, layer, level: int, channel: dict, view: dict | None = None) -> tuple:
        """Cache identity of a layer's data: layer id, data version, level, channel choice
        (and the crop of "this view": another view is another image)."""
        sid = source_id(layer)
        key = (sid, self._versions.get(sid, 0), id(layer.data), level, repr(channel))
        return key if view is None else (*key, tuple(view["level_box"]))

    # -- starting a run --------------------------------------------------------------------------
    def start(self, settings: RunSettings):
        """Validate, plan and start a run; returns the napari worker, or None (user told why).

        A run started while another is active cancels the older one: the latest wins.
        """
        problem = settings_problem(settings, self.viewer.layers)
        if problem:
            show_error(problem)
            return None
        layer = settings.layer
        try:
            view = region_for(settings.extent, self.viewer, layer)
            if view is not None:
                refuse_in_view(settings)
            job = build_job(layer, settings.channel, settings.plane_mode, settings.options,
                            self.viewer.dims.point, view=view, view_budget=settings.view_budget)
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
        options = chosen_options(settings.options, settings.spec)
        if view is not None and options.tiling == "auto":
            # The view is asked for at its pixels' detail: windows, not one resized pass.
            options = options.replace(tiling="always")
        request = RunRequest(spec=settings.spec, options=options,
                             prompts=list(settings.prompts), job=job,
                             source_key=self.source_key(layer, job.level, job.channel, job.view),
                             mask_mode=settings.mask_mode, regions=regions, exemplars=exemplars)
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
        self.session.set_busy(True)
        # Started from the event loop, so callers can connect to its signals first.
        QTimer.singleShot(0, worker.start)
        return worker

    def cancel(self, quiet: bool = False) -> None:
        """Stop the active run at its next step; nothing of it reaches the layers."""
        if self.worker is None:
            return
        self.token.set()
        self.worker.quit()
        self._end_run()
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
                self._watch(layer, connect=False)
        except (RuntimeError, AttributeError):  # viewer already torn down
            pass

    # -- worker signals (main thread) -----------------------------------------------------------
    def _on_progress(self, worker, progress: Progress) -> None:
        if worker is self.worker:
            self._bar.show(progress, still_running=lambda: worker is self.worker)

    def _end_run(self) -> None:
        self._bar.close()
        self.worker, self.token = None, None
        self.session.set_busy(False)

    def _on_finished(self, worker) -> None:
        if worker is self.worker:
            self._end_run()

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
        """Write a run's result into the viewer (main thread); it becomes the session's latest run."""
        request = output.request
        if layer not in self.viewer.layers:
            show_warning(f"The image layer '{request.job.source_name}' was removed during the "
                         "run; its result was discarded.")
            return None
        skipped = [plane for plane in output.planes if plane.skipped]
        if skipped and len(skipped) == len(output.planes) == 1:
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
        presence = {prompt: float(max(plane.presence[i] for plane in output.planes))
                    for i, prompt in enumerate(prompts)}
        last = LastRun(layer, list(prompts), request.mask_mode, request.options,
                       request.job.geometry, presence, request, voting_regions(output))
        summary = summarize(layer.name, prompts, presence, request.mask_mode,
                            [plane.labels for plane in output.planes],
                            [[float(t) for t in plane.thresholds] for plane in output.planes
                             if not plane.skipped],
                            seconds=output.seconds, reused=output.reused)
        self.session.run_applied(last, summary)
        return summary

    # -- services: re-draw and export ----------------------------------------------------------------
    def redraw(self, threshold: float | None, mode: str) -> RunSummary | None:
        """Masks of the latest run again from its heatmaps (:func:`.redraw.redraw_masks`).

        ``threshold`` None means automatic (Otsu for min-max scores, 0.5 calibrated).
        Masks edited by hand are left alone (the user is told once per layer).
        """
        redrawn = redraw_masks(self.viewer, self.last, threshold, mode, self.touches)
        if redrawn is None:
            return None
        for name in redrawn.skipped_edited:
            if name not in self._told_edited:
                self._told_edited.add(name)
                show_info(f"'{name}' was edited by hand: threshold and mask-mode changes no "
                          "longer apply to it (run again to get a new mask next to it).")
        self.session.show_summary(redrawn.summary)
        return redrawn.summary

    def mask_choices(self) -> list[MaskChoice]:
        """Every mask layer of each prompt of the latest run, edited ones marked."""
        return run_mask_choices(self.viewer.layers, self.last)

    def default_mask_choices(self, prompts: Sequence[str] | None = None) -> list[MaskChoice]:
        """Per prompt, the mask layer the user last edited or selected (else the newest)."""
        return default_mask_choices(self.viewer.layers, self.last, self.touches, prompts)

    def export_layers(self, prompts: Sequence[str] | None = None,
                      masks: Sequence[str] | None = None) -> ExportArrays:
        """What an export writes, from the layers as they are now (:func:`.exporting.gather_export`)."""
        return gather_export(self.viewer.layers, self.last, self.touches, prompts, masks)

    def export(self, out_dir, prompts: Sequence[str] | None = None,
               overwrite: bool = False, *, masks: Sequence[str] | None = None) -> list[Path]:
        """Write masks (TIFF, PNG for 2D), heatmaps, objects CSV, strokes and parameters JSON.

        ``masks`` / ``prompts`` choose the mask layers as in :meth:`export_layers`.
        Raises ``FileExistsError`` (nothing written) when files exist and ``overwrite``
        is False, ``ValueError`` when there is nothing to export.
        """
        return write_export(self.export_layers(prompts, masks), out_dir, overwrite)


def refuse_in_view(settings: RunSettings) -> None:
    """What 'this view' cannot take yet, as a clear :class:`ViewError`: region labels and
    example boxes are drawn over the whole image, not the view's crop."""
    if settings.options.regions == LABELS_SOURCE:
        raise ViewError("Regions from a Labels layer cover the whole image: with 'this view' "
                        "choose other regions (Advanced), or 'level that fits' under 'extent'.")
    if any(is_exemplar_prompt(prompt) for prompt in settings.prompts):
        raise ViewError("Example boxes ('@' prompts) are not taken with 'this view' yet: choose "
                        "'level that fits' under 'extent', or type words.")


def _is_mask(layer) -> bool:
    return isinstance(layer, Labels) and info(layer).get("role") in ("mask", "semantic")
