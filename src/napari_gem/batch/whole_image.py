"""Segmenting one image that fits in memory: plane by plane, then the shared writer.

This is the task a dask worker (or the batch itself, in-process) runs per image.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ..engine import PromptableModel, SegmentOptions, encode
from ..engine.masks import object_table
from ..io.export import write_outputs
from ..io.images import LoadedImage, open_image
from ..io.planes import PlaneLayout, planes
from .jobs import ImageJob, parameters_header
from .models import model_of, use_torch_threads
from .report import ImageOutcome, attempt


def segment_whole_image(job: ImageJob, prompts: Sequence[str], model: PromptableModel,
                        options: SegmentOptions) -> list[Path]:
    """Segment every plane of ``job.source`` and write all outputs; returns the paths.

    Masks are instance labels, numbered on from plane to plane so every object of a
    stack has its own label; outputs have the source's shape without its colour axis.
    """
    image = open_image(job.source)
    layout = PlaneLayout.of(image)
    prompts = list(prompts)
    heatmaps = np.zeros((len(prompts), *layout.output_shape), np.float32)
    labels = np.zeros((len(prompts), *layout.output_shape), np.int32)
    next_label = np.zeros(len(prompts), np.int64)
    objects, plane_records = [], []
    for index, plane in planes(image):
        result = encode(plane, model, options).segment(prompts)
        instances = result.instances + (result.instances > 0) * next_label[:, None, None]
        next_label += result.instances.reshape(len(prompts), -1).max(axis=1)
        heatmaps[(slice(None), *index)] = result.heatmaps
        labels[(slice(None), *index)] = instances
        objects += _plane_objects(prompts, instances, result.heatmaps, index)
        plane_records.append(_plane_record(index, result.parameters))
    parameters = _parameters(job, image, layout, prompts, model, options, plane_records)
    return write_outputs(
        job.out_dir, job.stem,
        masks=dict(zip(prompts, labels, strict=True)),
        heatmaps=dict(zip(prompts, heatmaps, strict=True)),
        parameters=parameters, objects=objects,
        scale=layout.output_values(image.scale), translate=layout.output_values(image.translate),
        overwrite=True,  # a re-run replaces what an interrupted run left behind
    )


def _plane_objects(prompts, instances, heatmaps, index: tuple[int, ...]) -> list[dict]:
    """The objects of one plane, their centroid and box extended by the plane's position."""
    return with_plane_index(object_table(dict(zip(prompts, instances, strict=True)),
                                         dict(zip(prompts, heatmaps, strict=True))), index)


def with_plane_index(rows: list[dict], index: tuple[int, ...]) -> list[dict]:
    """Object rows of one plane with their centroid and box extended by the plane's position."""
    if not index:
        return rows
    for row in rows:
        centroid, bbox = row["centroid"], row["bbox"]
        row["centroid"] = (*map(float, index), *centroid)
        row["bbox"] = (*index, *bbox[:2], *(i + 1 for i in index), *bbox[2:])
    return rows


def _plane_record(index: tuple[int, ...], parameters: dict) -> dict:
    return {
        "index": list(index),
        "thresholds": parameters.get("thresholds"),
        "presence": parameters.get("presence"),
        "tiled": parameters.get("tiled"),
        "num_windows": parameters.get("num_windows"),
        "heatmap_cell": parameters.get("heatmap_cell"),  # the scale objects were split at
    }


def _parameters(job: ImageJob, image: LoadedImage, layout: PlaneLayout, prompts, model: PromptableModel,
                options: SegmentOptions, plane_records: list[dict]) -> dict:
    return {
        **parameters_header(job, image, layout, "in-memory", prompts, model.describe(), options),
        "planes": plane_records,
    }


def run_image_job(job: ImageJob, prompts: Sequence[str], model, options: SegmentOptions,
                  threads: int | None = None) -> ImageOutcome:
    """The per-image task: segment and write, and say how it went instead of raising.

    ``model`` is a :class:`ModelSpec` (on dask workers) or a :class:`LocalModel`.
    """

    def work() -> list[Path]:
        use_torch_threads(threads)
        return segment_whole_image(job, prompts, model_of(model), options)

    return attempt(job.source, work)
