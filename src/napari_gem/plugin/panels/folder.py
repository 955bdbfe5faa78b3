"""The "Run on a folder" panel: images and output folder, Run / Cancel, and a row per result.

The run is the batch (:func:`~napari_gem.plugin.folder_run.run_folder`) with the widget's
current settings, in a napari worker thread: napari's progress bar counts the images,
each image's rows arrive as it finishes (a failed image is a row with its reason), Cancel
stops after the current image, and double-clicking a row opens that image with its masks
and heatmaps in the viewer.
"""

from __future__ import annotations

import threading
from functools import partial

from magicgui.widgets import Container, Label, PushButton
from napari.utils.notifications import show_error, show_info
from qtpy.QtCore import Qt, QTimer
from qtpy.QtGui import QColor
from qtpy.QtWidgets import QAbstractItemView, QHeaderView, QTableWidget, QTableWidgetItem

from ...batch.report import FAILED
from ...engine import ModelLoadError
from ...engine.described import describe
from ..folder_run import (
    OPENED_FROM,
    FolderFields,
    FolderRow,
    FolderRun,
    WorkerFailed,
    outcome_layers,
    plan_folder_run,
    rows_of,
    run_folder,
)
from ..forms import build_fields
from ..run_settings import RunProgress
from ..runner import Progress

COLUMNS = ("image", "prompt", "objects", "status")
#: Rows the table shows before it scrolls.
SHOWN_ROWS = 8


class FolderPanel:
    """Run the batch on a folder with the widget's settings (see the module docstring).

    ``current`` is the widget: its ``model_spec()``, ``options()`` and ``prompts`` field
    are read when the run starts. ``models`` is the widget's model cache.
    """

    def __init__(self, viewer, current, models) -> None:
        self.viewer, self.current, self.models = viewer, current, models
        self.form = build_fields(describe(FolderFields))
        for field in self.form.values():
            if hasattr(field.value, "choose_btn"):  # "Choose directory" would widen the dock
                field.value.choose_btn.text = "..."
        self.folder_run_button = PushButton(text="Run on folder")
        self.folder_cancel_button = PushButton(text="Cancel", enabled=False)
        self.folder_status = Label(value="")
        self.folder_status.native.setWordWrap(True)
        form = self.form
        self.container = Container(widgets=[
            form["folder_input"].value, form["folder_output"].value,
            Container(widgets=[form["folder_recursive"].value, form["folder_redo"].value],
                      layout="horizontal", labels=False),
            Container(widgets=[self.folder_run_button, self.folder_cancel_button],
                      layout="horizontal", labels=False),
            self.folder_status])
        self.table = _results_table()
        self.table.cellDoubleClicked.connect(lambda row, column: self.open_row(row))
        self.table.currentCellChanged.connect(lambda row, *_: self._explain(row))
        self.folder_run_button.changed.connect(self.run)
        self.folder_cancel_button.changed.connect(self.cancel)
        self.worker = None
        self.rows: list[FolderRow] = []
        self._stop = threading.Event()
        self._bar = RunProgress()

    def fields(self) -> dict:
        """Every widget by name (``folder_input``, ``folder_output``, ``folder_run_button`` ...)."""
        named = {name: widget for field in self.form.values()
                 for name, widget in field.named_widgets.items()}
        return {**named, "folder_run_button": self.folder_run_button,
                "folder_cancel_button": self.folder_cancel_button,
                "folder_status": self.folder_status}

    # -- running ---------------------------------------------------------------------------------
    def run(self, value=None):
        """Start the folder run; returns the napari worker, or None (the user is told why)."""
        if self.worker is not None:
            show_info("A folder run is going on: cancel it first.")
            return None
        form = self.form
        try:
            run = plan_folder_run(
                form["folder_input"].read(), form["folder_output"].read(),
                prompts=self.current.prompts.value, spec=self.current.model_spec(),
                options=self.current.options(), recursive=form["folder_recursive"].read(),
                redo=form["folder_redo"].read())
        except (ValueError, ModelLoadError) as error:
            show_error(f"Run on folder: {error}")
            self.folder_status.value = str(error)
            return None
        return self._start(run)

    def _start(self, run: FolderRun):
        from napari.qt.threading import create_worker

        self._stop = stop = threading.Event()
        self._done, self._reported = 0, False
        self._show_rows([])
        holder: dict = {}

        def tell(outcome) -> None:  # called in the worker thread
            holder["worker"].yielded.emit(outcome)

        worker = create_worker(run_folder, run, self.models, on_outcome=tell,
                               should_stop=stop.is_set, _start_thread=False)
        holder["worker"] = worker
        worker.yielded.connect(partial(self._on_yielded, worker, run))
        worker.returned.connect(partial(self._on_returned, worker, run))
        worker.finished.connect(partial(self._on_finished, worker))
        self.worker = worker
        self.folder_run_button.enabled, self.folder_cancel_button.enabled = False, True
        self.folder_status.value = f"loading {run.spec.name}, then {run.total} images..."
        # Started from the event loop, so callers can connect to its signals first.
        QTimer.singleShot(0, worker.start)
        return worker

    def cancel(self, value=None) -> None:
        """Stop after the current image: what is written stays, and a re-run resumes."""
        if self.worker is None:
            return
        self._stop.set()
        self.folder_cancel_button.enabled = False
        self.folder_status.value = "stopping after the current image..."

    def close(self, *_) -> None:
        """The widget is going away: no further image starts."""
        self._stop.set()

    # -- worker signals (main thread) ---------------------------------------------------------------
    def _on_yielded(self, worker, run: FolderRun, news) -> None:
        """A step of the run (the model loading) or an image's outcome."""
        if worker is not self.worker or self._reported:
            return
        if isinstance(news, Progress):
            self._show_progress(worker, news)
            return
        self._done += 1
        for row in rows_of(news, run):
            self._add_row(row)
        if not self._stop.is_set():
            self.folder_status.value = f"{self._done} of {run.total} images done..."
        # Last: making the bar may run the event loop, and with it the run's end.
        self._show_progress(worker, Progress(f"folder: {self._done}/{run.total} images",
                                             self._done, run.total))

    def _show_progress(self, worker, progress: Progress) -> None:
        self._bar.show(progress, still_running=lambda: worker is self.worker)

    def _on_returned(self, worker, run: FolderRun, report) -> None:
        """The whole report: the table shows it in input order (Qt may deliver an image's
        streamed outcome after the report, so the report is what the table ends with)."""
        if worker is not self.worker:
            return
        self._reported = True
        if isinstance(report, WorkerFailed):
            show_error(f"Run on folder failed: {report.message}")
            self.folder_status.value = f"Run on folder failed: {report.message}"
            return
        self._show_rows([row for outcome in report.outcomes for row in rows_of(outcome, run)])
        counts = report.summary().splitlines()[0]
        hint = " (click a row for why)" if report.failed or report.skipped else ""
        self.folder_status.value = f"{counts}{hint}. Double-click a row to open it."

    def _on_finished(self, worker) -> None:
        if worker is not self.worker:
            return
        self._bar.close()
        self.worker = None
        self.folder_run_button.enabled, self.folder_cancel_button.enabled = True, False

    # -- the table -------------------------------------------------------------------------------------
    def _show_rows(self, rows: list[FolderRow]) -> None:
        self.rows = []
        self.table.setRowCount(0)
        for row in rows:
            self._add_row(row)
        self._fit_table()

    def _add_row(self, row: FolderRow) -> None:
        self.rows.append(row)
        index = self.table.rowCount()
        self.table.insertRow(index)
        objects = "-" if row.objects is None else str(row.objects)
        tip = row.reason or ("double-click: open the image, its masks and heatmaps"
                             if row.parameters else "")
        for column, text in enumerate((row.image, row.prompt or "-", objects, row.status)):
            cell = QTableWidgetItem(text)
            cell.setToolTip(f"{row.image}: {tip}" if tip else row.image)
            if column:
                cell.setTextAlignment(Qt.AlignmentFlag.AlignCenter)
            if row.status == FAILED:
                cell.setForeground(QColor("#e06c5a"))
            self.table.setItem(index, column, cell)
        self._fit_table()

    def _explain(self, index: int) -> None:
        """A chosen row that failed, was skipped or cancelled says why in the status line."""
        if 0 <= index < len(self.rows) and self.rows[index].reason:
            row = self.rows[index]
            self.folder_status.value = f"{row.image}: {row.status}: {row.reason}"

    def _fit_table(self) -> None:
        header = self.table.horizontalHeader().height()
        row_height = self.table.verticalHeader().defaultSectionSize()
        shown = min(max(self.table.rowCount(), 1), SHOWN_ROWS)
        self.table.setFixedHeight(header + row_height * shown + 4)

    def open_row(self, index: int) -> list:
        """Open row ``index``'s image with its masks and heatmaps (all its prompts), aligned;
        layers it opened before are selected instead. Returns the layers."""
        row = self.rows[index]
        if row.parameters is None:
            show_info(f"{row.image}: {row.status}, nothing to open"
                      + (f" ({row.reason})" if row.reason else ""))
            return []
        opened = [layer for layer in self.viewer.layers
                  if layer.metadata.get(OPENED_FROM) == str(row.parameters)]
        if not opened:
            try:
                opened = self._add_layers(row)
            except (OSError, ValueError, KeyError) as error:
                show_error(f"Cannot open {row.image}: {error}")
                return []
        self.viewer.layers.selection = set(opened)
        return opened

    def _add_layers(self, row: FolderRow) -> list:
        from napari.layers import Layer

        (data, keywords), outputs = outcome_layers(row.parameters)
        image = self.viewer.add_image(data, **keywords)
        layers = list(image) if isinstance(image, list) else [image]
        for layer_data in outputs:
            layers.append(self.viewer.add_layer(Layer.create(*layer_data)))
        return layers


def _results_table() -> QTableWidget:
    table = QTableWidget(0, len(COLUMNS))
    table.setHorizontalHeaderLabels(list(COLUMNS))
    table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
    table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
    table.verticalHeader().setVisible(False)
    # The columns share the dock's width (long names are elided in the middle; the tooltip
    # has them whole) rather than hiding the status behind a horizontal scroll bar.
    table.setTextElideMode(Qt.TextElideMode.ElideMiddle)
    table.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
    header = table.horizontalHeader()
    header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
    for column in ("image", "prompt"):
        header.setSectionResizeMode(COLUMNS.index(column), QHeaderView.ResizeMode.Stretch)
    header.setStretchLastSection(False)
    table.setToolTip("One row per image and prompt; a failed or cancelled image is one row "
                     "with its reason (hover it). Double-click a row to open it.")
    return table
