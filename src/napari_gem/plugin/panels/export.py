"""The export panel: which mask layers to export (edited ones marked), and the export itself."""

from __future__ import annotations

from pathlib import Path

from magicgui.widgets import Container, PushButton, Select
from napari.utils.notifications import show_error, show_info, show_warning
from qtpy.QtCore import Qt, QTimer
from qtpy.QtWidgets import QFileDialog, QMessageBox


class ExportPanel:
    """The list of mask layers per prompt and the Export button."""

    def __init__(self, controller, parent) -> None:
        self.controller = controller
        self._parent = parent
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
        self.export_masks.native.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.export_button = PushButton(text="Export...", enabled=False)
        self.container = Container(widgets=[self.export_masks, self.export_button])
        self._list_timer = QTimer(parent)
        self._list_timer.setSingleShot(True)
        self._list_timer.setInterval(150)  # brush strokes come in bursts
        self._list_timer.timeout.connect(self.refresh_export_list)
        self.export_button.changed.connect(self._export_clicked)
        controller.masks_changed.connect(self.schedule_refresh)
        self._state = None

    def fields(self) -> dict:
        return {"export_masks": self.export_masks, "export_button": self.export_button}

    def schedule_refresh(self) -> None:
        self._list_timer.start()

    def clear(self) -> None:
        self.export_masks.choices = []
        self.export_button.enabled = False

    def refresh_export_list(self) -> None:
        """List every mask layer of each prompt; choose, per prompt, the one last touched.

        The user's own choice in the list stands until the layers change or another
        mask is edited or selected.
        """
        self._list_timer.stop()
        choices = self.controller.mask_choices()
        keys = [choice.key for choice in choices]
        defaults = [c.key for c in self.controller.default_mask_choices()]
        state = (frozenset(keys), frozenset(defaults))
        kept = [key for key in self.export_masks.value if key in keys]
        self.export_masks.choices = [(choice.label, choice.key) for choice in choices]
        unchanged = state == self._state
        self.export_masks.value = kept if unchanged and kept else defaults
        for row in range(self.export_masks.native.count()):
            item = self.export_masks.native.item(row)
            item.setToolTip(item.text())
        self._state = state
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
            self._parent, "Overwrite files?", f"{error}\n\nReplace them?",
            QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No,
            QMessageBox.StandardButton.No,
        )
        return answer == QMessageBox.StandardButton.Yes

    def _export_clicked(self, value=None) -> None:
        folder = QFileDialog.getExistingDirectory(self._parent, "Export masks and heatmaps to folder")
        if folder:
            self.export(folder, ask=True)
