"""The objects table: one row per labelled object, as CSV."""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Mapping, Sequence

import numpy as np

from ..engine.masks import object_table

#: Columns every objects CSV starts with; centroid and bbox columns follow per axis.
LEADING_COLUMNS = ("prompt", "label", "area")
SCORE_COLUMNS = ("mean_score", "max_score")


def axis_names(ndim: int) -> tuple[str, ...]:
    """``y, x`` for 2D, ``z, y, x`` for 3D, ``a0, a1, ...`` beyond."""
    if ndim == 2:
        return ("y", "x")
    if ndim == 3:
        return ("z", "y", "x")
    return tuple(f"a{axis}" for axis in range(ndim))


def geometry_columns(ndim: int) -> list[str]:
    names = axis_names(ndim)
    return (
        [f"centroid_{name}" for name in names]
        + [f"bbox_min_{name}" for name in names]
        + [f"bbox_max_{name}" for name in names]
    )


def measure_objects(
    masks: Mapping[str, np.ndarray], heatmaps: Mapping[str, np.ndarray]
) -> list[dict]:
    """Rows of every object in ``masks`` (binary or instance labels, 2D or 3D).

    Scores come from the prompt's heatmap; a prompt without a heatmap gets NaN scores.
    """
    filled = {
        prompt: heatmaps[prompt] if prompt in heatmaps else np.full(np.shape(mask), np.nan)
        for prompt, mask in masks.items()
    }
    return object_table(masks, filled)


def flatten_row(row: Mapping) -> dict:
    """A row with ``centroid`` / ``bbox`` tuples spread over one column per axis."""
    flat = {}
    for key, value in row.items():
        if key == "centroid":
            names = axis_names(len(value))
            flat.update({f"centroid_{name}": v for name, v in zip(names, value, strict=True)})
        elif key == "bbox":
            ndim = len(value) // 2
            for name, low, high in zip(axis_names(ndim), value[:ndim], value[ndim:], strict=True):
                flat[f"bbox_min_{name}"], flat[f"bbox_max_{name}"] = low, high
        else:
            flat[key] = value
    return flat


def objects_csv(rows: Sequence[Mapping], ndim: int) -> str:
    """CSV text of object rows; the header is complete even when there are no rows."""
    flat_rows = [flatten_row(row) for row in rows]
    columns = [*LEADING_COLUMNS, *geometry_columns(ndim), *SCORE_COLUMNS]
    for row in flat_rows:  # keep any extra columns a caller's rows carry, in order
        columns.extend(key for key in row if key not in columns)
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, lineterminator="\n", restval="")
    writer.writeheader()
    for row in flat_rows:
        writer.writerow({key: _cell(value) for key, value in row.items()})
    return buffer.getvalue()


def _cell(value):
    # Round floats to what a float32 heatmap can tell apart, so files are stable and short.
    if isinstance(value, (float, np.floating)):
        return "" if math.isnan(value) else f"{float(value):.7g}"
    if isinstance(value, np.integer):
        return int(value)
    return value
