"""What an export writes, gathered from the layers as they are now (the user's edits included).

:func:`gather_export` chooses the mask layers (the user's pick, else per prompt the layer
they last edited or selected) and returns an :class:`ExportArrays`; :func:`write_export`
writes it (masks, heatmaps, objects CSV, strokes, parameters JSON).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .layers import info, outputs_of, source_id
from .mask_choice import MaskChoice, TouchLog, default_choices, file_variants, mask_choices
from .session import LastRun


@dataclass
class ExportArrays:
    """One export: file stem, arrays by ``(prompt, variant)`` / prompt, the record, the layers' geometry."""

    stem: str
    masks: dict[tuple[str, str], np.ndarray]
    heatmaps: dict[str, np.ndarray]
    parameters: dict
    scale: tuple
    translate: tuple
    stroke_layers: dict[tuple[str, str], object] = field(default_factory=dict)  # mask layers with strokes


def safe_stem(name: str) -> str:
    """A file-name stem from a layer name."""
    stem = re.sub(r"[^\w.-]+", "_", name).strip("._")
    return stem or "image"


def run_mask_choices(layers, last: LastRun | None) -> list[MaskChoice]:
    """Every mask layer of each prompt of the latest run, edited ones marked."""
    if last is None or last.source not in layers:
        return []
    return mask_choices(layers, source_id(last.source), last.prompts)


def default_mask_choices(layers, last: LastRun | None, touches: TouchLog,
                         prompts: Sequence[str] | None = None) -> list[MaskChoice]:
    """Per prompt, the mask layer the user last edited or selected (else the newest)."""
    choices = [c for c in run_mask_choices(layers, last) if not prompts or c.prompt in prompts]
    return default_choices(choices, touches)


def gather_export(layers, last: LastRun | None, touches: TouchLog, prompts: Sequence[str] | None = None,
                  masks: Sequence[str] | None = None) -> ExportArrays:
    """The arrays an export writes (see module docstring); a clear ``ValueError`` when it cannot.

    ``masks``: keys of :func:`run_mask_choices` (several layers of one prompt are all written,
    under names that never collide); otherwise the default layer of each of ``prompts`` (all
    prompts of the latest run when None).
    """
    if last is None:
        raise ValueError("Nothing to export yet: run a segmentation on an image first.")
    if last.source not in layers:
        raise ValueError(
            f"The image layer '{last.source.name}' was removed. Select its napari-gem layers and "
            "use File > Save Selected Layers... > napari-gem export (folder), or run again."
        )
    chosen = _chosen(layers, last, touches, prompts, masks)
    sid = source_id(last.source)
    prompts = list(dict.fromkeys(choice.prompt for choice in chosen))
    heatmaps, parameters = {}, {}
    for prompt in prompts:
        heat = outputs_of(layers, sid, "heatmap", prompt)
        if not heat:
            raise ValueError(f"The heatmap layer of '{prompt}' is gone; run again to export.")
        heatmaps[prompt] = np.asarray(heat[-1].data, dtype=np.float32)
        parameters = parameters or dict(info(heat[-1]).get("parameters", {}))
    mask_arrays, layers_used, stroke_layers = {}, [], {}
    for choice, variant in zip(chosen, file_variants(chosen), strict=True):
        mask_arrays[(choice.prompt, variant)] = _labels_of(choice)
        if info(choice.layer).get("role") == "mask":
            stroke_layers[(choice.prompt, variant)] = choice.layer
        layers_used.append({"prompt": choice.prompt, "layer": choice.layer.name,
                            "edited": choice.edited, "variant": variant})
    reference = outputs_of(layers, sid, "heatmap", prompts[0])[-1]
    parameters = {
        **parameters,
        "exported_prompts": prompts,
        "edited_by_hand": list(dict.fromkeys(c.prompt for c in chosen if c.edited)),
        "mask_layers": layers_used,
    }
    return ExportArrays(safe_stem(last.source.name), mask_arrays, heatmaps, parameters,
                        tuple(reference.scale), tuple(reference.translate), stroke_layers)


def write_export(arrays: ExportArrays, out_dir, overwrite: bool = False) -> list[Path]:
    """Write masks (TIFF, PNG for 2D), heatmaps, objects CSV, strokes and parameters JSON.

    Raises ``FileExistsError`` (nothing written) when files exist and ``overwrite`` is False.
    """
    from .stroke_export import write_with_strokes

    return write_with_strokes(out_dir, arrays.stem, arrays.stroke_layers, masks=arrays.masks,
                              heatmaps=arrays.heatmaps, parameters=arrays.parameters,
                              scale=arrays.scale, translate=arrays.translate, overwrite=overwrite)


def _chosen(layers, last, touches, prompts, masks) -> list[MaskChoice]:
    if masks:
        available = {choice.key: choice for choice in run_mask_choices(layers, last)}
        if any(key not in available for key in masks):
            raise ValueError("A chosen mask layer is gone; choose again or run again.")
        return [available[key] for key in masks]
    wanted = list(prompts) if prompts else list(last.prompts)
    chosen = default_mask_choices(layers, last, touches, wanted)
    gone = [p for p in wanted if p not in {choice.prompt for choice in chosen}]
    if gone:
        raise ValueError(f"The mask layer of '{gone[0]}' is gone; run again to export.")
    return chosen


def _labels_of(choice: MaskChoice) -> np.ndarray:
    """The labels of a chosen layer for its prompt (a semantic map: that prompt's class)."""
    data = np.asarray(choice.layer.data)
    meta = info(choice.layer)
    if meta.get("role") == "semantic":
        data = (data == meta["prompts"].index(choice.prompt) + 1).astype(np.uint8)
    return data
