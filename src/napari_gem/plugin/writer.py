"""npe2 writer: File > Save Selected Layers... > "napari-gem export (folder)".

Writes the selected napari-gem heatmap and mask layers with the shared export writer
(:func:`napari_gem.io.export.write_outputs`) into the chosen folder: masks as TIFF
(and PNG for 2D), heatmaps as float32 TIFF, the strokes painted on masks (see
:mod:`.stroke_export`), the objects CSV and the parameters JSON.
Existing files are never replaced from here (napari's save dialog cannot ask).
"""

from __future__ import annotations

import os
from collections import defaultdict
from types import SimpleNamespace

import numpy as np

from ..io.naming import mask_variants
from .exporting import safe_stem
from .layers import META, digest
from .stroke_export import write_with_strokes


def write_outputs(path: str | os.PathLike, layer_data: list[tuple]) -> list[str]:
    """The npe2 multi-layer writer hook; returns the written paths."""
    masks: dict[str, list[tuple[np.ndarray, bool]]] = defaultdict(list)  # prompt -> (labels, edited)
    stroked: dict[tuple[str, int], object] = {}  # (prompt, position in masks) -> mask with strokes
    heatmaps: dict[str, np.ndarray] = {}
    parameters: dict = {}
    placement: dict[str, tuple] = {}
    sources: dict[str, int] = defaultdict(int)
    for data, meta, _kind in layer_data:
        record = (meta.get("metadata") or {}).get(META) or {}
        role = record.get("role")
        if role not in ("heatmap", "mask", "semantic"):
            continue
        sources[record.get("source_name") or "image"] += 1
        parameters = parameters or dict(record.get("parameters") or {})
        placement.setdefault("scale", tuple(meta.get("scale", ())))
        placement.setdefault("translate", tuple(meta.get("translate", ())))
        array = np.asarray(data)
        if role == "heatmap":
            heatmaps[record["prompt"]] = array
        else:
            edited = record.get("digest") not in (None, digest(array))
            if role == "mask":
                # The layer as the strokes helpers read it: data, metadata, name.
                stroked[(record["prompt"], len(masks[record["prompt"]]))] = SimpleNamespace(
                    data=array, metadata=meta.get("metadata") or {}, name=meta.get("name", ""))
                masks[record["prompt"]].append((array, edited))
            else:
                for index, prompt in enumerate(record.get("prompts", []), start=1):
                    masks[prompt].append(((array == index).astype(np.uint8), edited))
    if not masks and not heatmaps:
        raise ValueError(
            "none of the selected layers is a napari-gem heatmap or mask; select the layers "
            "made by the GEM widget (or use its Export button)"
        )
    # Two selected masks of one prompt (painted and fresh) are both written, never one
    # silently over the other.
    named, stroke_layers = {}, {}
    for prompt, entries in masks.items():
        variants = mask_variants([edited for _, edited in entries])
        named.update({(prompt, v): labels for (labels, _), v in zip(entries, variants, strict=True)})
        stroke_layers.update({(prompt, v): stroked[(prompt, i)] for i, v in enumerate(variants)
                              if (prompt, i) in stroked})
    stem = safe_stem(max(sources, key=sources.get))
    written = write_with_strokes(
        path, stem, stroke_layers, masks=named, heatmaps=heatmaps, parameters=parameters,
        scale=placement.get("scale") or None, translate=placement.get("translate") or None,
    )
    return [str(p) for p in written]
