"""Masks of the latest run drawn again from its heatmap layers: a threshold or mask-mode change.

No model is involved: the heatmaps in the layers are thresholded again. Masks edited by
hand are left alone; :class:`Redrawn` says which, and the caller tells the user.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..engine.result import build_masks
from .layers import OutputWriter, computed_planes, info, outputs_of, source_id
from .session import LastRun, RunSummary, summarize


@dataclass
class Redrawn:
    """What a re-draw did: the new table, and the mask layers it left alone (edited by hand)."""

    summary: RunSummary
    skipped_edited: list[str] = field(default_factory=list)


def redraw_masks(viewer, last: LastRun | None, threshold: float | None, mode: str,
                 touches) -> Redrawn | None:
    """The latest run's masks again at ``threshold`` (None: automatic) in ``mode``.

    None when there is nothing to re-draw from (no run, or its image or a heatmap layer is gone).
    ``touches``: the session's :class:`~.mask_choice.TouchLog` (the plugin's own writes are paused).
    """
    if last is None or last.source not in viewer.layers:
        return None
    sid = source_id(last.source)
    heat_layers = []
    for prompt in last.prompts:
        found = outputs_of(viewer.layers, sid, "heatmap", prompt)
        if not found:
            return None  # the user removed a heatmap: nothing to re-draw from
        heat_layers.append(found[-1])
    options = last.options.replace(threshold=threshold)
    recorded = info(heat_layers[0]).get("parameters", {})
    plane_labels, used = [], []
    for index in computed_planes(heat_layers):
        heatmaps = np.stack([np.asarray(layer.data[index], dtype=np.float32) for layer in heat_layers])
        regions = last.regions(index) if last.regions is not None else None
        # The engine's one mask builder with the run's options: a re-draw gives what a run
        # with this threshold gives (the run's region vote included).
        built = build_masks(heatmaps, options, cell=recorded.get("heatmap_cell"), regions=regions)
        used.append(built.thresholds.tolist())
        plane_labels.append((index, built.labels(mode)))
    if not plane_labels:
        return None
    parameters = {**recorded, "mask_mode": mode,
                  "options": {**recorded.get("options", {}), "threshold": threshold}}
    writer = OutputWriter(viewer, last.source, last.geometry)
    with touches.pause():
        report = writer.write_masks(last.prompts, mode, plane_labels, parameters, edited="skip")
    last.mask_mode = mode
    summary = summarize(last.source.name, last.prompts, last.presence, mode,
                        [labels for _, labels in plane_labels], used)
    return Redrawn(summary, list(report.skipped_edited))
