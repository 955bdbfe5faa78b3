"""The results panel: the masks controls (threshold, mask kind), the results table and the status."""

from __future__ import annotations

from magicgui.widgets import CheckBox, ComboBox, Container, FloatSlider, Label
from qtpy.QtCore import Qt
from qtpy.QtWidgets import QAbstractItemView, QHeaderView, QTableWidget, QTableWidgetItem

from ...engine.result import AUTO_THRESHOLD_LABEL, DEFAULT_CALIBRATED_THRESHOLD
from ..controller import RunSummary
from ..runner import MASK_MODE_LABELS, MASK_MODES


class ResultsPanel:
    """Threshold and mask kind (they re-draw masks without the model), a row per prompt, status."""

    def __init__(self) -> None:
        self.status = Label(value="")
        self.auto_threshold = CheckBox(text=f"auto threshold ({AUTO_THRESHOLD_LABEL})", value=True)
        self.threshold = FloatSlider(label="threshold", min=0.0, max=1.0, step=0.01,
                                     value=DEFAULT_CALIBRATED_THRESHOLD,
                                     tooltip="Re-draws the masks from the stored heatmaps.")
        self.mask_mode = ComboBox(label="masks", value="binary",
                                  choices=[(MASK_MODE_LABELS[m], m) for m in MASK_MODES])
        self.container = Container(widgets=[self.auto_threshold, self.threshold, self.mask_mode])
        self.table = QTableWidget(0, 6)
        self.table.setHorizontalHeaderLabels(["prompt", "presence", "threshold", "objects",
                                              "strokes", "kept"])
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.verticalHeader().setVisible(False)
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        self.table.setToolTip("presence: image-level score of each prompt (softmax of CLIP "
                              "logits over the prompts and background prompts); strokes: "
                              "regions painted in (+) and erased (-) on its mask, all planes; "
                              "kept: of the candidate objects that the object stage of "
                              "its latest refinement decided, how many it kept (all planes)")

    def fields(self) -> dict:
        return {"status": self.status, "auto_threshold": self.auto_threshold,
                "threshold": self.threshold, "mask_mode": self.mask_mode}

    def chosen_threshold(self) -> float | None:
        """The threshold the masks use (None: automatic)."""
        return None if self.auto_threshold.value else float(self.threshold.value)

    def update_visibility(self) -> None:
        self.threshold.enabled = not self.auto_threshold.value

    def show_summary(self, summary: RunSummary | None) -> None:
        rows = 0 if summary is None else len(summary.rows)
        self.table.setRowCount(rows)
        header = self.table.horizontalHeader().height()
        row_height = self.table.verticalHeader().defaultSectionSize()
        self.table.setFixedHeight(header + row_height * min(max(rows, 1), 6) + 4)
        if summary is None:
            return
        for row, item in enumerate(summary.rows):
            for column, text in enumerate(
                (item.prompt, f"{item.presence:.2f}", item.threshold, str(item.objects))
            ):
                cell = QTableWidgetItem(text)
                if column:
                    cell.setTextAlignment(Qt.AlignmentFlag.AlignCenter)
                self.table.setItem(row, column, cell)
        planes = f"{summary.planes} planes" if summary.planes > 1 else "1 plane"
        timing = f" in {summary.seconds:.1f} s" if summary.seconds else ""
        reused = " (encoding reused)" if summary.reused else ""
        self.status.value = f"'{summary.source}': {planes}{timing}{reused}"

    def show_strokes(self, counts: dict[str, tuple[int, int]]) -> None:
        """Each row's strokes: ``counts[prompt] = (painted, erased)`` connected regions; and,
        where a count has ``objects`` (``(kept, removed)``, see ``StrokeCount``), the
        objects the object stage of its latest refinement kept and removed."""
        for row in range(self.table.rowCount()):
            prompt = self.table.item(row, 0)
            count = counts.get(prompt.text()) if prompt is not None else None
            objects = getattr(count, "objects", None)
            texts = ("-" if count is None else f"{count[0]}+ {count[1]}\u2212",
                     "-" if objects is None else f"{objects[0]}/{objects[0] + objects[1]}")
            for column, text in zip((4, 5), texts, strict=True):
                cell = QTableWidgetItem(text)
                cell.setTextAlignment(Qt.AlignmentFlag.AlignCenter)
                self.table.setItem(row, column, cell)
