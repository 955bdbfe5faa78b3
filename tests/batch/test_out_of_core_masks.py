"""Out of core, every mask option is applied as in memory, across chunk borders (issue 22).

The chunked labelling is held to scipy's labelling of the whole plane (same numbers), and
whole out-of-core runs to the engine's mask builder on the same heatmaps and thresholds.
"""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
import zarr
from batch_helpers import SMALL, blobs, write_zarr
from scipy import ndimage

from napari_gem.batch import segment_files
from napari_gem.batch.chunked_labels import label_plane
from napari_gem.batch.windows import boxes
from napari_gem.engine.result import build_masks

PROMPTS = ["nucleus", "membrane"]


def run_sync(tasks, label):
    import dask

    return list(dask.compute(*tasks, scheduler="sync"))


@pytest.mark.parametrize("connectivity", [1, 2])
@pytest.mark.parametrize("seed", range(4))
def test_chunked_labels_equal_scipy_on_the_whole_plane(tmp_path, seed, connectivity):
    """Objects crossing chunk borders (also only at a corner) keep one label, numbered as scipy
    numbers the whole plane; sizes, boxes and the border flag agree."""
    rng = np.random.default_rng(seed)
    mask = ndimage.binary_dilation(rng.random((83, 97)) > 0.97, iterations=int(rng.integers(1, 4)))
    mask[10, 15] = mask[11, 16] = True  # a diagonal step across the chunk corner at (11, 16)
    side = 11 if seed % 2 else 16
    labels = label_plane(lambda box: mask[box[0]:box[1], box[2]:box[3]], mask.shape,
                         boxes(mask.shape, side), str(tmp_path / "l.zarr"), run_sync,
                         connectivity=connectivity, chunk=side)
    expected, count = ndimage.label(mask, structure=ndimage.generate_binary_structure(2, connectivity))
    assert labels.count == count
    assert np.array_equal(labels.read((0, 83, 0, 97)), expected)
    assert np.array_equal(labels.read((5, 40, 7, 60)), expected[5:40, 7:60])
    assert np.array_equal(labels.sizes[1:], np.bincount(expected.ravel())[1:])
    found = ndimage.find_objects(expected)
    assert [tuple(b) for b in labels.boxes[1:]] == [(s[0].start, s[0].stop, s[1].start, s[1].stop)
                                                   for s in found]
    border = set(np.unique(np.concatenate([expected[0], expected[-1], expected[:, 0], expected[:, -1]])))
    assert set(np.flatnonzero(labels.on_border)) == border - {0}


@pytest.mark.parametrize("changes", [
    {"min_size": 30, "fill_holes": 20, "instances": "components"},
    {"min_size": 30, "fill_holes": 20, "instances": "watershed"},
    {"score_mode": "calibrated", "threshold": "otsu", "fill_holes": 5},
])
def test_out_of_core_masks_and_objects_are_the_engines(tmp_path, tiny_gem, changes):
    """min_size, fill_holes and both instance modes out of core, with chunks smaller than the
    plane, give the labels the engine's mask builder gives for the same heatmaps and
    thresholds, numbered on from plane to plane, and the objects table of those labels."""
    stack = blobs((2, 90, 110), seed=3)
    source = write_zarr(tmp_path / "big.zarr", stack, chunks=(1, 32, 32))
    options = SMALL.replace(**changes)
    report = segment_files([source], PROMPTS, tmp_path / "out", model=tiny_gem, options=options,
                           out_of_core="always", chunk=40, progress=False)
    assert report.ok, report.summary()
    out = tmp_path / "out"
    parameters = json.loads((out / "big_parameters.json").read_text())
    assert "not_applied" not in parameters
    level0 = {kind: [zarr.open_array(str(out / f"big_{p}_{kind}.zarr" / "0"), mode="r")[:] for p in PROMPTS]
              for kind in ("heatmap", "mask")}  # full resolution of the OME-Zarr outputs
    heatmaps, labels = np.stack(level0["heatmap"]), np.stack(level0["mask"])
    offset = np.zeros(len(PROMPTS), np.int64)
    rows = list(csv.DictReader((out / "big_objects.csv").open()))
    for z in range(2):
        thresholds = parameters["planes"][z]["thresholds"]
        expected = build_masks(heatmaps[:, z], options, thresholds=thresholds, cell=tiny_gem.patch_size)
        shifted = expected.instances + (expected.instances > 0) * offset[:, None, None]
        assert np.array_equal(labels[:, z], shifted)
        offset += expected.instances.reshape(len(PROMPTS), -1).max(axis=1)
    assert labels.max() > 0
    for p, prompt in enumerate(PROMPTS):
        mine = [row for row in rows if row["prompt"] == prompt]
        assert [int(row["label"]) for row in mine] == sorted(set(np.unique(labels[p])) - {0})
        for row in mine[:5]:
            label = int(row["label"])
            where = np.argwhere(labels[p] == label)
            assert int(row["area"]) == len(where)
            assert float(row["centroid_z"]) == pytest.approx(where[:, 0].mean())
            assert float(row["centroid_x"]) == pytest.approx(where[:, 2].mean())
            assert float(row["mean_score"]) == pytest.approx(heatmaps[p][labels[p] == label].mean(), rel=1e-5)
