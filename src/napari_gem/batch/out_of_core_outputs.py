"""The out-of-core path's files: OME-Zarr heatmaps and labels, made under temporary names.

Each prompt gets a multiscale heatmap and a labels pyramid (:mod:`napari_gem.io.ome_zarr_outputs`).
The tasks write level 0; :func:`publish` then builds the other levels as dask tasks, writes
the NGFF metadata and moves each output to its final name (the parameters JSON, written
after, marks the image done). A mask goes into the source's own ``labels/`` group when the
source is a writable OME-Zarr image, else beside the heatmaps.
"""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from ..io.atomic import replace_directory
from ..io.export import layer_metadata
from ..io.ome_zarr_outputs import (
    BESIDE_VERSION,
    create_multiscale,
    downsample_block,
    labels_home,
    level_shapes,
    list_label,
    multiscales,
    ngff_version_of,
    write_metadata,
)
from ..io.planes import PlaneLayout
from .compute import Compute
from .windows import boxes


@dataclass(frozen=True)
class ZarrOutput:
    """One output group: where it is made, where it goes, its NGFF version and kind."""

    partial: Path
    final: Path
    version: str
    kind: str  # "heatmap" or "mask"
    prompt: str
    in_source: bool = False  # a mask inside the source's labels/ group

    @property
    def level0(self) -> str:
        """The full-resolution array the out-of-core tasks write."""
        return str(self.partial / "0")


@dataclass(frozen=True)
class Outputs:
    """Every prompt's heatmap and mask of one image."""

    heatmaps: tuple[ZarrOutput, ...]
    masks: tuple[ZarrOutput, ...]

    @property
    def all(self) -> tuple[ZarrOutput, ...]:
        return (*self.masks, *self.heatmaps)

    def remove_partials(self) -> None:
        for output in self.all:
            shutil.rmtree(output.partial, ignore_errors=True)


def create_outputs(files, prompts: Sequence[str], layout: PlaneLayout, source: Path,
                   chunk: int) -> Outputs:
    """Empty heatmap and mask groups (every level) under temporary names."""
    chunks = (1,) * len(layout.planes) + (chunk, chunk)
    home = labels_home(source)
    made: dict[str, list[ZarrOutput]] = {"heatmap": [], "mask": []}
    for prompt in prompts:
        for kind, dtype in (("heatmap", "float32"), ("mask", "int32")):
            inside = kind == "mask" and home is not None
            if inside:
                final, version = home / f"{files.stem}_{files.slugs[prompt]}", ngff_version_of(source)
            else:
                final = (files.heatmap if kind == "heatmap" else files.mask)(prompt, ".zarr")
                version = BESIDE_VERSION
            partial = final.with_name(f".{final.name}.partial")
            if partial.exists():
                shutil.rmtree(partial)
            create_multiscale(partial, layout.output_shape, dtype, chunks, chunk, version)
            made[kind].append(ZarrOutput(partial, final, version, kind, prompt, inside))
    return Outputs(tuple(made["heatmap"]), tuple(made["mask"]))


def publish(outputs: Outputs, stem: str, layout: PlaneLayout, axes: str, scale: Sequence[float],
            translate: Sequence[float], chunk: int, compute: Compute) -> list[Path]:
    """The pyramids, the NGFF metadata, then every output under its final name."""
    from dask import delayed

    shape = layout.output_shape
    shapes = level_shapes(shape, chunk)
    planes = list(layout.plane_indices())
    for level in range(1, len(shapes)):  # each level from the one below: level by level
        compute([delayed(downsample_block, pure=False)(str(output.partial), level, index, box,
                                                       output.kind)
                 for output in outputs.all for index in planes
                 for box in boxes(shapes[level][-2:], chunk)], f"pyramid {level}")
    written = []
    for output in outputs.all:
        layer = layer_metadata(stem, output.prompt, output.kind, scale, translate)
        entry = multiscales(layer["name"], axes, shape, chunk, scale, translate, output.version,
                            output.kind)
        write_metadata(output.partial, entry, output.version, layer, kind=output.kind,
                       label_source="../../" if output.in_source else None)
        written.append(replace_directory(output.partial, output.final))
        if output.in_source:
            list_label(output.final.parent, output.final.name, output.version)
    return written
