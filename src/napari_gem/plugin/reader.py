"""npe2 reader for napari-gem exports, so they re-open exactly over their image.

napari's own TIFF/PNG readers would drop the scale and translate stored in the files;
this reader restores them, and styles heatmaps and masks as the widget does. It reads

- ``{stem}_parameters.json``: every mask and heatmap of that export, and
- single ``*_mask.tif``, ``*_mask.png`` and ``*_heatmap.tif`` files written by napari-gem.

For anything else :func:`get_reader` returns None, leaving the file to other readers.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path

from ..engine.software import written_by_us
from .layers import MASK_OPACITY, META, heatmap_style

LayerData = list[tuple]


def _is_ours_image(path: Path) -> bool:
    suffix = path.suffix.lower()
    try:
        if suffix in (".tif", ".tiff"):
            import tifffile

            with tifffile.TiffFile(path) as tiff:
                stored = tiff.shaped_metadata[0] if tiff.shaped_metadata else {}
        elif suffix == ".png":
            from PIL import Image

            from ..io.export import PNG_METADATA_KEY

            with Image.open(path) as image:
                text = getattr(image, "text", {}).get(PNG_METADATA_KEY)
            stored = json.loads(text) if text else {}
        else:
            return False
    except Exception:  # unreadable or foreign: not ours
        return False
    return written_by_us(stored)


def read_record(path: Path | None) -> dict | None:
    """A napari-gem parameters JSON (a record listing its ``outputs``), or None for anything else."""
    if path is None:
        return None
    try:
        record = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) and isinstance(record.get("outputs"), dict) else None


def get_reader(path: str | os.PathLike | list) -> Callable[[str], LayerData] | None:
    """The npe2 reader hook: a reader for napari-gem files, else None."""
    if isinstance(path, list):
        return None  # stacks of files are for other readers
    path = Path(path)
    if path.name.endswith("_parameters.json") and read_record(path) is not None:
        return read_export
    if _is_ours_image(path):
        return read_file
    return None


def _source_layer(record: dict | None) -> str | None:
    """The image layer an export came from (napari's exports say; a batch's source is a path)."""
    source = (record or {}).get("source")
    return source.get("layer") if isinstance(source, dict) else None


def _layer(array, metadata: dict, record: dict | None = None) -> tuple:
    kind, prompt = metadata.get("kind"), metadata.get("prompt")
    meta = {
        "name": metadata.get("name"),
        "scale": metadata["scale"],
        "translate": metadata["translate"],
        **({"multiscale": True} if metadata.get("multiscale") else {}),
        "metadata": {META: {"role": "mask" if kind == "mask" else "heatmap",
                            "prompt": prompt, "source_id": None,
                            "source_name": _source_layer(record),
                            "parameters": record or {}, "reopened": True}},
    }
    if kind == "heatmap":
        meta.update(heatmap_style())
        return (array, meta, "image")
    meta["opacity"] = MASK_OPACITY
    return (array, meta, "labels")


def _read(path: Path) -> tuple:
    """``(data, metadata)`` of one output: an OME-Zarr output as its pyramid (a multiscale
    layer: napari shows the level the canvas needs), any other file as one array."""
    from ..io.export import read_output

    if path.is_dir():
        from ..io.ome_zarr_outputs import is_multiscale_output, read_levels

        if is_multiscale_output(path):
            levels, metadata = read_levels(path)
            if len(levels) == 1:  # a pyramid of one level is one array to napari
                return levels[0], metadata
            return levels, {**metadata, "multiscale": True}
    return read_output(path)


def read_file(path: str | os.PathLike) -> LayerData:
    """One napari-gem mask or heatmap file as a layer, at its stored scale and translate."""
    array, metadata = _read(Path(path))
    return [_layer(array, metadata)]


def read_export(path: str | os.PathLike) -> LayerData:
    """All masks and heatmaps listed in an export's parameters JSON (heatmaps first); an
    out-of-core run's OME-Zarr outputs as multiscale layers (a mask may be in the image's
    own ``labels/``: the JSON then gives its full path)."""
    path = Path(path)
    record = json.loads(path.read_text(encoding="utf-8"))
    heatmaps, masks = [], []
    for entry in record["outputs"].values():
        files = [(heatmaps, entry.get("heatmap")), (masks, entry.get("mask"))]
        files += [(masks, names.get("mask")) for names in (entry.get("variants") or {}).values()]
        for bucket, name in files:
            if not name:
                continue
            file = path.parent / name
            if not file.exists():
                raise FileNotFoundError(f"{file} is listed in {path.name} but missing")
            array, metadata = _read(file)
            bucket.append(_layer(array, metadata, record))
    return heatmaps + masks
