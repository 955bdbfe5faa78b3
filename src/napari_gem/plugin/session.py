"""The plugin's session, without Qt or napari: the latest run, the caches, and what changed.

:class:`Session` is what the controller (runs), the mask refiner (strokes), the redraw and
export services and the widget share. Each tells the session what it did
(:meth:`Session.run_applied`, :meth:`Session.show_summary`, :meth:`Session.set_busy`,
:meth:`Session.masks_edited`), and the session's plain-Python signals (psygnal) tell
everyone else. Nobody reaches into another's state, and nobody re-emits another's signals.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from psygnal import Signal
from scipy import ndimage

from ..engine import SegmentOptions
from .cache import EncodedCache, ModelCache
from .mask_choice import TouchLog

if TYPE_CHECKING:
    from .runner import RunRequest


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

    source: object  # the image layer
    prompts: list[str]
    mask_mode: str
    options: SegmentOptions
    geometry: object
    presence: dict[str, float]
    request: RunRequest | None = None  # what made it (model, options, planes): for refining
    regions: object = None  # plane index -> region labels, when the run voted in regions


class Session:
    """One viewer's napari-gem session (see module docstring)."""

    busy_changed = Signal(bool)
    run_changed = Signal(object)  # LastRun: a run's result was written to the layers
    summary_changed = Signal(object)  # RunSummary | None
    masks_changed = Signal()  # mask layers added, removed, edited, refined or selected
    run_failed = Signal(object)  # RunFailed: the widget keeps it in its status line

    def __init__(self) -> None:
        self.models = ModelCache()
        self.encoded = EncodedCache()
        self.last: LastRun | None = None
        self.summary: RunSummary | None = None
        self.busy = False
        self.touches = TouchLog()  # which mask layer the user edited or selected last

    def set_busy(self, busy: bool) -> None:
        """A run started (True) or ended (False)."""
        self.busy = bool(busy)
        self.busy_changed.emit(self.busy)

    def run_applied(self, last: LastRun, summary: RunSummary) -> None:
        """A run's result is in the layers: it is now the latest run."""
        self.last = last
        self.run_changed.emit(last)
        self.show_summary(summary)

    def show_summary(self, summary: RunSummary | None) -> None:
        """The masks were (re)drawn: ``summary`` is what the table shows."""
        self.summary = summary
        self.summary_changed.emit(summary)
        self.masks_changed.emit()

    def masks_edited(self) -> None:
        """A mask layer was added, removed, edited, refined or selected."""
        self.masks_changed.emit()


def count_objects(labels: np.ndarray, mode: str, count: int) -> list[int]:
    """Objects per prompt in one plane's labels (``[P, H, W]``, or ``[H, W]`` for ``semantic``)."""
    if mode == "instances":
        return [int(np.unique(plane[plane > 0]).size) for plane in labels]
    if mode == "semantic":
        return [int(ndimage.label(labels == i + 1)[1]) for i in range(count)]
    return [int(ndimage.label(plane > 0)[1]) for plane in labels]


def summarize(source: str, prompts: Sequence[str], presence: dict[str, float], mode: str,
              planes: Sequence[np.ndarray], thresholds: Sequence[Sequence[float]],
              **timing) -> RunSummary:
    """The table of a run or re-draw: per prompt its presence, thresholds used and objects.

    ``planes``: each plane's labels; ``thresholds``: each plane's threshold per prompt.
    """
    counts = np.zeros(len(prompts), dtype=int)
    for labels in planes:
        counts += count_objects(labels, mode, len(prompts))
    rows = [PromptSummary(prompt, presence[prompt], threshold_text([used[i] for used in thresholds]),
                          int(counts[i]))
            for i, prompt in enumerate(prompts)]
    return RunSummary(source=source, prompts=list(prompts), rows=rows, planes=len(planes), **timing)


def threshold_text(values: Sequence[float]) -> str:
    """One threshold, or the range of a prompt's thresholds over the planes."""
    if not values:
        return "-"
    low, high = min(values), max(values)
    return f"{low:.2f}" if abs(high - low) < 0.005 else f"{low:.2f}-{high:.2f}"
