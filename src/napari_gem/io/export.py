"""Writing and reading segmentation outputs: masks, heatmaps, objects and parameters.

One shared writer for the napari Export action and the batch command, so both produce
the same files:

- ``{stem}_{slug}_mask.tif``: the mask as integer labels (uint8, uint16 or int32),
- ``{stem}_{slug}_mask.png``: the same for 2D masks whose values fit in uint16,
- ``{stem}_{slug}_{variant}_mask.tif`` (and ``.png``): one of several masks of a prompt,
  e.g. ``edited`` for a mask painted by hand next to the fresh one,
- ``{stem}_{slug}_heatmap.tif``: the heatmap (float32),
- ``{stem}_objects.csv``: one row per object,
- ``{stem}_parameters.json``: everything needed to reproduce the run, written last.

Scale and translate are stored in every image file (TIFF: JSON in the ImageDescription,
PNG: a text chunk, zarr: attributes) so :func:`read_output` can overlay them exactly.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..engine.extras import require
from ..engine.software import software_record
from .atomic import write_atomically, write_text_atomically
from .naming import check_stem, unique_slugs
from .objects import measure_objects, objects_csv

#: Key of the PNG text chunk that carries the layer metadata.
PNG_METADATA_KEY = "napari-gem"


@dataclass(frozen=True)
class OutputFiles:
    """Where the outputs of one image go."""

    out_dir: Path
    stem: str
    slugs: dict[str, str]  # prompt -> slug

    def mask(self, prompt: str, suffix: str = ".tif", variant: str = "") -> Path:
        infix = f"_{variant}" if variant else ""
        return self.out_dir / f"{self.stem}_{self.slugs[prompt]}{infix}_mask{suffix}"

    def heatmap(self, prompt: str, suffix: str = ".tif") -> Path:
        return self.out_dir / f"{self.stem}_{self.slugs[prompt]}_heatmap{suffix}"

    @property
    def objects(self) -> Path:
        return self.out_dir / f"{self.stem}_objects.csv"

    @property
    def parameters(self) -> Path:
        return self.out_dir / f"{self.stem}_parameters.json"


def output_files(out_dir: str | os.PathLike, stem: str, prompts: Sequence[str]) -> OutputFiles:
    """The file names for ``stem`` and ``prompts`` (slugs unique per image)."""
    return OutputFiles(Path(out_dir), check_stem(stem), unique_slugs(prompts))


def parameters_path(out_dir: str | os.PathLike, stem: str) -> Path:
    """The parameters JSON of an image: it is written last, so it marks the image as done."""
    return Path(out_dir) / f"{check_stem(stem)}_parameters.json"


def write_outputs(
    out_dir: str | os.PathLike,
    stem: str,
    *,
    masks: Mapping[str | tuple[str, str], np.ndarray],
    heatmaps: Mapping[str, np.ndarray],
    parameters: dict,
    objects: list[dict] | None = None,
    scale: Sequence[float] | None = None,
    translate: Sequence[float] | None = None,
    overwrite: bool = False,
) -> list[Path]:
    """Write masks, heatmaps, the objects CSV and the parameters JSON of one image.

    ``masks`` and ``heatmaps`` map prompts to arrays of the image's shape (2D or
    more); masks are binary or integer labels and are written as they are. A prompt
    with several masks keys them ``(prompt, variant)``, e.g. ``("cell", "edited")``:
    the variant (lowercase letters, digits, ``-``) goes into the file name and the
    objects table. When ``objects`` is None the table is measured from the masks and
    heatmaps.
    ``scale``/``translate`` (one number per axis) go into every file's metadata.

    Every file is written atomically. With ``overwrite=False`` nothing is written when
    any target exists: :class:`FileExistsError` lists the existing files. Returns the
    written paths, the parameters JSON last.
    """
    masks = {_mask_key(key): _as_labels(mask) for key, mask in masks.items()}
    heatmaps = {prompt: np.asarray(h, dtype=np.float32) for prompt, h in heatmaps.items()}
    ndim = _common_ndim([*masks.values(), *heatmaps.values()])
    scale = _per_axis("scale", scale, ndim, default=1.0)
    translate = _per_axis("translate", translate, ndim, default=0.0)
    files = output_files(out_dir, stem, [*(prompt for prompt, _ in masks), *heatmaps])
    plan = _plan(files, masks, heatmaps)
    if not overwrite:
        _refuse_existing([path for path, _ in plan] + [files.objects, files.parameters])
    files.out_dir.mkdir(parents=True, exist_ok=True)

    written = []
    for path, (kind, (prompt, variant), array) in plan:
        metadata = layer_metadata(stem, prompt, kind, scale, translate, variant)
        written.append(_write_image(path, array, metadata))
    if objects is None:
        objects = _measure(masks, heatmaps)
    written.append(write_text_atomically(files.objects, objects_csv(objects, ndim)))
    record = _parameters_record(parameters, files, masks, heatmaps, scale, translate)
    written.append(write_text_atomically(files.parameters, to_json(record)))
    return written


def to_json(data: Any) -> str:
    """Indented JSON that also accepts numpy scalars, arrays, paths and tuples."""
    return json.dumps(data, indent=2, default=_json_default) + "\n"


def read_output(path: str | os.PathLike) -> tuple[np.ndarray, dict]:
    """Read one output file (TIFF, PNG or zarr) with what napari needs to overlay it.

    Returns ``(array, metadata)``; ``metadata`` always has ``scale``, ``translate`` and
    ``name``, plus ``kind`` (``"mask"`` or ``"heatmap"``) and ``prompt`` when the file
    was written by napari-gem. Files from elsewhere get unit scale and zero translate.
    zarr outputs come back as lazy dask arrays.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix in (".tif", ".tiff"):
        array, stored = _read_tiff(path)
    elif suffix == ".png":
        array, stored = _read_png(path)
    elif suffix == ".zarr" or path.is_dir():
        array, stored = _read_zarr(path)
    else:
        raise ValueError(f"not a napari-gem output file (TIFF, PNG or zarr): {path}")
    metadata = {
        "scale": [1.0] * array.ndim,
        "translate": [0.0] * array.ndim,
        "name": path.stem,
    }
    metadata.update({k: stored[k] for k in ("scale", "translate", "name", "kind", "prompt")
                     if k in stored})
    return array, metadata


# -- planning -------------------------------------------------------------------------------
def _mask_key(key) -> tuple[str, str]:
    """``(prompt, variant)`` of a ``masks`` key: a prompt, or a (prompt, variant) pair."""
    prompt, variant = (key, "") if isinstance(key, str) else key
    if variant and not re.fullmatch(r"[a-z0-9-]+", variant):
        raise ValueError(f"mask variant {variant!r} must be lowercase letters, digits or '-'")
    return prompt, variant


def _measure(masks: dict, heatmaps: dict) -> list[dict]:
    """The objects table; with variants, a ``variant`` column says which mask a row is from."""
    variants = list(dict.fromkeys(variant for _, variant in masks))
    if variants == [""]:
        return measure_objects({prompt: mask for (prompt, _), mask in masks.items()}, heatmaps)
    rows = []
    for variant in variants:
        chosen = {prompt: mask for (prompt, v), mask in masks.items() if v == variant}
        rows += [{**row, "variant": variant} for row in measure_objects(chosen, heatmaps)]
    return rows


def _plan(files: OutputFiles, masks: dict, heatmaps: dict) -> list[tuple[Path, tuple]]:
    """(path, (kind, (prompt, variant), array)) of every image file, masks first."""
    plan = []
    for (prompt, variant), mask in masks.items():
        plan.append((files.mask(prompt, variant=variant), ("mask", (prompt, variant), mask)))
        if mask.ndim == 2 and _fits_png(mask):
            plan.append((files.mask(prompt, ".png", variant),
                         ("mask", (prompt, variant), mask)))
    for prompt, heatmap in heatmaps.items():
        plan.append((files.heatmap(prompt), ("heatmap", (prompt, ""), heatmap)))
    return plan


def _refuse_existing(paths: list[Path]) -> None:
    existing = [str(path) for path in paths if path.exists()]
    if existing:
        raise FileExistsError(
            "output files exist already (pass overwrite=True to replace them): "
            + ", ".join(existing)
        )


def _as_labels(mask) -> np.ndarray:
    """Binary or integer labels in the smallest of uint8, uint16, int32 that holds them."""
    mask = np.asarray(mask)
    if mask.dtype == bool:
        return mask.astype(np.uint8)
    if not np.issubdtype(mask.dtype, np.integer):
        raise TypeError(f"masks must be boolean or integer labels, got dtype {mask.dtype}")
    low, high = (int(mask.min()), int(mask.max())) if mask.size else (0, 0)
    for dtype in (np.uint8, np.uint16, np.int32):
        info = np.iinfo(dtype)
        if info.min <= low and high <= info.max:
            return mask.astype(dtype, copy=False)
    raise ValueError(f"mask labels {low}..{high} do not fit in int32")


def _fits_png(mask: np.ndarray) -> bool:
    return mask.dtype in (np.uint8, np.uint16)


def _common_ndim(arrays: list[np.ndarray]) -> int:
    if not arrays:
        raise ValueError("nothing to write: no masks and no heatmaps")
    shapes = {array.shape for array in arrays}
    if len(shapes) > 1:
        raise ValueError(f"masks and heatmaps must all have one shape, got {sorted(shapes)}")
    ndim = arrays[0].ndim
    if ndim < 2:
        raise ValueError(f"masks and heatmaps must be at least 2D, got shape {arrays[0].shape}")
    return ndim


def _per_axis(name: str, values, ndim: int, default: float) -> list[float]:
    if values is None:
        return [default] * ndim
    values = [float(v) for v in values]
    if len(values) != ndim:
        raise ValueError(f"{name} needs one number per axis ({ndim}), got {values}")
    return values


# -- writing ---------------------------------------------------------------------------------
def layer_metadata(
    stem: str, prompt: str, kind: str, scale: Sequence[float], translate: Sequence[float],
    variant: str = "",
) -> dict:
    """The metadata stored in each output image (TIFF, PNG and zarr alike)."""
    label = f"{prompt} {variant} {kind}" if variant else f"{prompt} {kind}"
    return {
        "name": f"{label} ({stem})",
        "kind": kind,
        "prompt": prompt,
        **({"variant": variant} if variant else {}),
        "scale": list(scale),
        "translate": list(translate),
        "software": software_record(),
    }


def _write_image(path: Path, array: np.ndarray, metadata: dict) -> Path:
    if path.suffix == ".png":
        return write_atomically(path, lambda temporary: _write_png(temporary, array, metadata))
    return write_atomically(path, lambda temporary: _write_tiff(temporary, array, metadata))


def _write_tiff(path: Path, array: np.ndarray, metadata: dict) -> None:
    import tifffile

    # Resolution tags (pixels per unit along x and y) let Fiji and others see the
    # pixel size too; napari reads scale/translate from the JSON description.
    scale_y, scale_x = metadata["scale"][-2:]
    resolution = (1.0 / scale_x, 1.0 / scale_y) if scale_x > 0 and scale_y > 0 else None
    tifffile.imwrite(
        path, array, metadata=metadata, resolution=resolution, compression="zlib",
        photometric="minisblack",
    )


def _write_png(path: Path, array: np.ndarray, metadata: dict) -> None:
    from PIL import Image, PngImagePlugin

    info = PngImagePlugin.PngInfo()
    info.add_text(PNG_METADATA_KEY, json.dumps(metadata))
    Image.fromarray(array).save(path, format="PNG", pnginfo=info)


def _parameters_record(parameters, files, masks, heatmaps, scale, translate) -> dict:
    outputs: dict[str, dict] = {}
    for prompt in files.slugs:
        entry: dict = {"slug": files.slugs[prompt]}
        for (owner, variant), mask in masks.items():
            if owner != prompt:
                continue
            names = {"mask": files.mask(prompt, variant=variant).name}
            if mask.ndim == 2 and _fits_png(mask):
                names["mask_png"] = files.mask(prompt, ".png", variant).name
            if variant:  # more masks of one prompt, e.g. the painted one next to the fresh
                entry.setdefault("variants", {})[variant] = names
            else:
                entry.update(names)
        if prompt in heatmaps:
            entry["heatmap"] = files.heatmap(prompt).name
        outputs[prompt] = entry
    return {
        **parameters,
        "scale": scale,
        "translate": translate,
        "outputs": outputs,
        "objects": files.objects.name,
    }


def _json_default(value):
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, (Path, os.PathLike)):
        return os.fspath(value)
    if isinstance(value, (set, frozenset)):
        return sorted(value)
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


# -- reading ---------------------------------------------------------------------------------
def _read_tiff(path: Path) -> tuple[np.ndarray, dict]:
    import tifffile

    with tifffile.TiffFile(path) as tiff:
        array = tiff.asarray()
        stored = tiff.shaped_metadata[0] if tiff.shaped_metadata else {}
    return array, dict(stored)


def _read_png(path: Path) -> tuple[np.ndarray, dict]:
    from PIL import Image

    with Image.open(path) as image:
        array = np.asarray(image)
        text = getattr(image, "text", {}).get(PNG_METADATA_KEY)
    return array, json.loads(text) if text else {}


def _read_zarr(path: Path):
    zarr = require("zarr", extra="cluster", purpose="reading zarr outputs")
    da = require("dask.array", extra="cluster", purpose="reading zarr outputs")

    from .ome_zarr_outputs import is_multiscale_output, read_levels

    if is_multiscale_output(path):  # an OME-Zarr output: its full-resolution level
        levels, metadata = read_levels(path)
        return levels[0], metadata
    array = zarr.open_array(path, mode="r")
    return da.from_zarr(array), dict(array.attrs)
