"""Which mask layers an export writes: every prompt's layers, edited ones marked.

After a re-run, a prompt can have several mask layers: the one the user painted (never
overwritten) and the fresh one next to it. Export lists them all; by default it takes,
per prompt, the layer the user last edited or selected, so a painted mask is never
silently left out. :class:`TouchLog` remembers those user actions; the plugin's own
writes (which add and select layers too) are not counted.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

from ..io.naming import mask_variants
from .layers import info, is_edited, outputs_of


@dataclass(frozen=True)
class MaskChoice:
    """One mask layer of one prompt (a semantic map is listed under each of its prompts)."""

    prompt: str
    layer: object  # a napari Labels layer
    edited: bool

    @property
    def key(self) -> str:
        """Identifies the choice across refreshes (layer ids survive renaming)."""
        return f"{self.layer.unique_id}|{self.prompt}"

    @property
    def label(self) -> str:
        """What the export list shows: the layer (and prompt of a semantic map), marked if edited."""
        name = self.layer.name
        if info(self.layer).get("role") == "semantic":
            name = f"{name}: {self.prompt}"
        return f"{name}  [edited]" if self.edited else name


class TouchLog:
    """When the user last edited or selected each layer, as an increasing count."""

    def __init__(self) -> None:
        self._count = itertools.count(1)
        self._stamps: dict[str, int] = {}
        self._paused = 0

    def touch(self, layer) -> None:
        if not self._paused:
            self._stamps[str(layer.unique_id)] = next(self._count)

    def stamp(self, layer) -> int:
        """0 when the user has not touched the layer."""
        return self._stamps.get(str(layer.unique_id), 0)

    @property
    def paused(self) -> bool:
        return self._paused > 0

    @contextmanager
    def pause(self) -> Iterator[None]:
        """The plugin is writing layers: what happens now is not the user's doing."""
        self._paused += 1
        try:
            yield
        finally:
            self._paused -= 1


def mask_choices(layers: Iterable, source_id: str, prompts: Sequence[str]) -> list[MaskChoice]:
    """Every mask layer of each prompt of ``source_id``, by prompt, bottom to top."""
    layers = list(layers)
    choices = []
    for prompt in prompts:
        own = outputs_of(layers, source_id, "mask", prompt)
        semantic = [layer for layer in outputs_of(layers, source_id, "semantic")
                    if prompt in info(layer).get("prompts", [])]
        for layer in sorted(own + semantic, key=layers.index):
            choices.append(MaskChoice(prompt, layer, is_edited(layer)))
    return choices


def default_choices(choices: Sequence[MaskChoice], touches: TouchLog) -> list[MaskChoice]:
    """Per prompt: the layer last edited or selected by the user; if none was, the newest
    edited one (an edit the events did not see, e.g. from the console); else the topmost."""
    chosen = {}
    for choice in choices:  # bottom to top: later candidates win ties
        best = chosen.get(choice.prompt)
        if best is None or _rank(choice, touches) >= _rank(best, touches):
            chosen[choice.prompt] = choice
    return [choice for choice in choices if chosen.get(choice.prompt) is choice]


def _rank(choice: MaskChoice, touches: TouchLog) -> tuple[int, bool]:
    return touches.stamp(choice.layer), choice.edited


def file_variants(chosen: Sequence[MaskChoice]) -> list[str]:
    """The file-name variant of each chosen mask: "" (plain), "edited", "edited-2"...

    Edited masks always carry "edited", so a painted mask and the fresh one never
    share a file name, in one export or across exports to the same folder.
    """
    variants: list[str] = [""] * len(chosen)
    for prompt in dict.fromkeys(choice.prompt for choice in chosen):
        indices = [i for i, choice in enumerate(chosen) if choice.prompt == prompt]
        names = mask_variants([chosen[i].edited for i in indices])
        for index, name in zip(indices, names, strict=True):
            variants[index] = name
    return variants
