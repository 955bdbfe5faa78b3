"""A run as the widget describes it, what is wrong with it, and its progress bar.

:class:`RunSettings` is the widget's description of a run; :func:`settings_problem` says in
one sentence what the user must fix first; :class:`RunProgress` shows a running job in
napari's activity dock.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from napari.layers import Image

from ..engine import SegmentOptions
from .cache import ModelSpec
from .planes import ChannelChoice
from .runner import MASK_MODES, Progress
from .view_region import ExtentOptions, budget_pixels


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
    extent: str = ExtentOptions.extent  # "fit" (the level that fits), "view" (the canvas's region)
    view_megapixels: float = ExtentOptions.view_megapixels  # "view": full resolution up to this

    @property
    def view_budget(self) -> int:
        """The view budget in pixels."""
        return budget_pixels(self.view_megapixels)


def split_prompts(text: str) -> list[str]:
    """Prompts from text: one per line or comma-separated; blanks and repeats dropped."""
    parts = (part.strip() for line in str(text).splitlines() for part in line.split(","))
    return list(dict.fromkeys(part for part in parts if part))


def settings_problem(settings: RunSettings, layers) -> str | None:
    """What the user must fix before ``settings`` can run (None: nothing); ``layers``: the viewer's."""
    layer = settings.layer
    if layer is None:
        if not any(isinstance(x, Image) for x in layers):
            return ("No image layer: open an image (File > Open, or File > Open Sample > "
                    "napari-gem), then pick it under 'image'.")
        return "Choose an image layer under 'image'."
    if not isinstance(layer, Image):
        return (f"'{layer.name}' is a {type(layer).__name__} layer; napari-gem reads Image "
                "layers. Choose an image under 'image'.")
    if layer not in layers:
        return f"The layer '{layer.name}' is no longer in the viewer."
    if not settings.prompts:
        return ("Type at least one prompt (what to look for), e.g. 'nucleus' or "
                "'cat, dog': one per line or comma-separated.")
    if settings.spec is None:
        return "Choose a checkpoint file under Model, or switch to a pretrained tag."
    if settings.mask_mode not in MASK_MODES:
        return f"Unknown mask mode {settings.mask_mode!r}."
    return None


class RunProgress:
    """A napari progress bar (the activity dock) for the running job, made on its first report."""

    def __init__(self) -> None:
        self._bar = None

    def show(self, progress: Progress, still_running: Callable[[], bool]) -> None:
        from napari.utils import progress as napari_progress

        text = f"napari-gem: {progress.text}"
        bar = self._bar
        if bar is None:
            # Creating a bar may run the event loop (activity dock), so keep a local handle.
            bar = self._bar = napari_progress(total=progress.total, desc=text)
        else:
            if bar.total != progress.total:
                bar.total = progress.total
            bar.set_description(text)
        if progress.total:
            bar.update(max(0, min(progress.done, progress.total)) - bar.n)
        if not still_running():  # the run ended while the bar was being made
            bar.close()

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None
