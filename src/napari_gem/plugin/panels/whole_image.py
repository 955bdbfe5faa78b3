"""The whole-image panel: the slide's file, where the outputs go, and which dask cluster runs it."""

from __future__ import annotations

from magicgui.widgets import Container, FileEdit, LineEdit

from ..whole_image import layer_file


class WholeImagePanel:
    """Fields of a whole-image job (shown when the run's extent is the whole image)."""

    def __init__(self) -> None:
        self.slide_file = FileEdit(
            label="slide file", mode="r", value="",
            tooltip="The file the layer shows (OME-Zarr, zarr or TIFF), read window by window. "
            "Filled in from the layer when napari knows its file.")
        self.outputs_folder = FileEdit(
            label="outputs folder", mode="d", value="",
            tooltip="Where the saved encoding, heatmaps, masks and objects table go (empty: "
            "a folder SLIDE.napari-gem beside the slide). A second prompt reuses the encoding.")
        self.scheduler = LineEdit(
            label="dask scheduler", value="",
            tooltip="Empty: this machine. Or the address of a running dask.distributed "
            "scheduler (tcp://host:8786) whose workers can read the slide and the outputs folder.")
        self.scheduler.native.setPlaceholderText("empty: this machine")
        self.container = Container(widgets=list(self.fields().values()))

    def fields(self) -> dict:
        return {name: getattr(self, name) for name in ("slide_file", "outputs_folder", "scheduler")}

    def follow_layer(self, layer) -> None:
        """Show the layer's own file (when napari knows it) as the slide file."""
        path = layer_file(layer) if layer is not None else None
        if path is not None:
            self.slide_file.value = path

    def values(self) -> dict:
        """``source``, ``out_dir`` and ``scheduler`` as :func:`.plan_whole_image` takes them."""
        def text(field) -> str | None:
            value = str(field.value).strip()
            return value if value and value != "." else None

        return {"source": text(self.slide_file), "out_dir": text(self.outputs_folder),
                "scheduler": text(self.scheduler)}

    def set_visible(self, visible: bool) -> None:
        self.container.visible = visible
