"""Export with strokes: each exported mask layer's strokes as a file, recorded in the parameters.

``{stem}_{slug}_strokes.tif`` (uint8, 1 positive, 2 negative, the mask's shape) sits
beside the masks; the parameters JSON (written last) lists it under
``"strokes"[prompt]`` (a list: one entry per exported mask of the prompt with strokes) with,
per plane, the options of its last refinement and whether the exported mask is exactly
that refinement (``refined_from_these_strokes``), so that
``EncodedImage.refine(prompt, positive=..., negative=..., **options)`` reproduces it.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from ..io.strokes import write_strokes
from .layers import digest, plane_key
from .strokes_book import count_strokes, layer_codes, refinements, stroke_planes


def stroke_entry(layer, file_name: str) -> dict:
    """The parameters record of one layer's strokes (see module docstring)."""
    positive, negative = count_strokes(layer)
    refined = refinements(layer)
    planes = {}
    for index in stroke_planes(layer):
        key = plane_key(index)
        last = refined.get(key)
        planes[key] = {
            "refined_from_these_strokes": bool(
                last and last["digest"] == digest(np.asarray(layer.data[tuple(index)]))),
            **({"prompt": last["prompt"], "options": last["options"]} if last else {}),
        }
    return {"file": file_name, "layer": layer.name, "positive_strokes": positive,
            "negative_strokes": negative, "planes": planes}


def write_with_strokes(out_dir: str | os.PathLike, stem: str, stroke_layers: Mapping,
                       *, overwrite: bool = False, **arrays) -> list[Path]:
    """:func:`napari_gem.io.export.write_outputs` plus a strokes file per layer that has strokes.

    ``stroke_layers``: ``(prompt, variant) -> mask layer``. The strokes files are written
    first and the parameters JSON last; nothing is left behind when the export refuses
    to replace existing files.
    """
    from ..io.export import output_files, write_outputs

    masks = arrays.get("masks", {})
    prompts = [key if isinstance(key, str) else key[0] for key in masks]
    files = output_files(out_dir, stem, [*prompts, *arrays.get("heatmaps", {})])
    planned, records = [], {}
    for (prompt, variant), layer in stroke_layers.items():
        if not stroke_planes(layer):
            continue
        infix = f"_{variant}" if variant else ""
        name = f"{stem}_{files.slugs[prompt]}{infix}_strokes.tif"
        planned.append((Path(out_dir) / name, layer_codes(layer), prompt, variant))
        records.setdefault(prompt, []).append({
            "variant": variant, "mask": files.mask(prompt, variant=variant).name,
            **stroke_entry(layer, name)})
    existing = [str(path) for path, *_ in planned if path.exists()]
    if existing and not overwrite:
        raise FileExistsError("output files exist already (pass overwrite=True to replace "
                              "them): " + ", ".join(existing))
    if planned:
        arrays["parameters"] = {**arrays.get("parameters", {}), "strokes": records}
    Path(out_dir).mkdir(parents=True, exist_ok=True)
    written = []
    for path, codes, prompt, variant in planned:
        written.append(write_strokes(path, codes, {"prompt": prompt, "variant": variant,
                                                   "name": f"{prompt} strokes ({stem})"}))
    try:
        return written + write_outputs(out_dir, stem, overwrite=overwrite, **arrays)
    except FileExistsError:
        for path in written:
            if str(path) not in existing:
                path.unlink(missing_ok=True)
        raise

