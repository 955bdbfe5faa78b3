"""The whole-image job in napari: a worker thread, napari's progress bar, Cancel, the layers.

The work is :func:`.whole_image.run_whole_image` (the batch path); this module runs it off
the main thread, shows each pass's tasks and time left in napari's activity dock, stops it
between tasks on Cancel (the encoding keeps its finished blocks: the same job resumes), and
adds the result as multiscale heatmap and labels layers over the image.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from napari.utils.notifications import show_error, show_info
from psygnal import Signal

from ..batch.progress import TaskCount, format_duration
from ..engine import Cancelled
from .cache import ModelCache
from .layers import MASK_CONTOUR
from .run_settings import RunProgress
from .runner import CancelToken, Progress, WorkerFailed
from .whole_image import WholeImageRequest, WholeImageResult, result_layers, run_whole_image

log = logging.getLogger(__name__)


class _Reporter:
    """The batch's observer: every finished task becomes a progress report on the main thread."""

    def __init__(self, emit: Callable[[Progress], None], token: CancelToken) -> None:
        self.emit, self.token = emit, token

    def tasks_done(self, count: TaskCount) -> None:
        self.emit(Progress(f"whole image: {count.describe()}", count.done, count.total))

    def cancelled(self) -> bool:
        return self.token()


class WholeImageJob:
    """One whole-image job at a time; ``status`` tells the widget what to show."""

    busy_changed = Signal(bool)
    status = Signal(str, str)  # the line, and its details (on hover)

    def __init__(self, viewer, models: ModelCache) -> None:
        self.viewer = viewer
        self.models = models
        self.worker = None
        self.token: CancelToken | None = None
        self._bar = RunProgress()

    @property
    def busy(self) -> bool:
        return self.worker is not None

    def start(self, request: WholeImageRequest, image_layer):
        """Run ``request`` in a worker thread; returns the napari worker (None when busy)."""
        from napari.qt.threading import create_worker
        from qtpy.QtCore import QTimer

        if self.busy:
            show_error("A whole-image job is running: cancel it first (its encoding resumes later).")
            return None
        token = CancelToken()
        holder: dict = {}

        def emit(progress: Progress) -> None:  # the worker thread; delivered on the main thread
            worker = holder.get("worker")
            if worker is not None and not token():
                worker.yielded.emit(progress)

        worker = create_worker(self._work, request, _Reporter(emit, token), _start_thread=False)
        holder["worker"] = worker
        token.extra = lambda: worker.abort_requested
        worker.yielded.connect(lambda progress: self._bar.show(progress, lambda: worker is self.worker))
        worker.returned.connect(lambda result: self._on_returned(result, image_layer))
        worker.finished.connect(self._on_finished)
        self.worker, self.token = worker, token
        self.busy_changed.emit(True)
        where = request.scheduler or "this machine"
        self.status.emit(f"whole image: running on {where}...", f"outputs: {request.out_dir}")
        QTimer.singleShot(0, worker.start)
        return worker

    def cancel(self) -> None:
        """Stop after the task running now; the encoding keeps what it finished."""
        if self.token is not None:
            self.token.set()

    def _work(self, request: WholeImageRequest, reporter: _Reporter):
        """The worker thread's generator (a napari GeneratorWorker: its progress signal
        carries the reports); returns the result, or None when cancelled."""
        yield Progress(f"whole image: loading {request.spec.name}")
        try:
            model = request.spec if request.scheduler else self.models.get(request.spec)
            return run_whole_image(request, model, reporter)
        except Cancelled:
            return None
        except Exception as error:  # the model did not load, a bug, ...: one clear line
            return WorkerFailed.of(error, "whole-image job")

    def _on_returned(self, result: WholeImageResult | WorkerFailed | None, image_layer) -> None:
        if result is None:
            self.status.emit("whole image: cancelled. Run it again to resume: the windows "
                             "already encoded are kept.", "")
            return
        if isinstance(result, WorkerFailed):
            show_error(f"Whole image failed: {result.message}")
            self.status.emit(f"Whole image failed: {result.message.splitlines()[0]}", result.message)
            return
        try:
            self._show(result, image_layer)
        except Exception as error:  # never leave a traceback dump in the viewer
            log.exception("napari-gem could not open the whole-image outputs")
            show_error(f"napari-gem could not open the whole-image outputs: {error}")
            return
        reused = ", saved encoding reused" if result.reused_encoding else ""
        dashboard = f"; dask dashboard: {result.dashboard}" if result.dashboard else ""
        text = (f"whole image: {len(result.request.prompts)} prompt(s), "
                f"{format_duration(result.seconds)}{reused}{dashboard}")
        details = (f"outputs: {result.request.out_dir}\nsaved encoding: {result.encoding}"
                   + (f"\ndask dashboard: {result.dashboard}" if result.dashboard else ""))
        self.status.emit(text, details)
        show_info(f"{text}; outputs in {result.request.out_dir}")

    def _show(self, result: WholeImageResult, image_layer) -> None:
        for data, meta, kind in result_layers(result, image_layer):
            name, contour = meta["name"], MASK_CONTOUR
            earlier = next((layer for layer in self.viewer.layers if layer.name == name), None)
            # An earlier whole-image result is replaced only when multiscale (napari cannot
            # paint those); a one-level one may hold the user's edits: napari adds beside it.
            if earlier is not None and earlier.multiscale:
                contour = getattr(earlier, "contour", contour)  # the user's look
                self.viewer.layers.remove(earlier)
            if kind == "labels":
                self.viewer.add_labels(data, **meta).contour = contour  # outlines, as a run's masks
            else:
                self.viewer.add_image(data, **meta)

    def _on_finished(self) -> None:
        self._bar.close()
        self.worker, self.token = None, None
        self.busy_changed.emit(False)
