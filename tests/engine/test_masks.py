"""Thresholds, clean-up, instances, semantic maps and object tables."""

from __future__ import annotations

import numpy as np

from napari_gem.engine.masks import (
    binary_mask,
    fill_small_holes,
    instance_labels,
    object_table,
    remove_small_objects,
    semantic_labels,
    threshold_value,
)


def test_otsu_separates_two_populations_and_constant_maps_stay_empty():
    heatmap = np.concatenate([np.full(50, 0.1), np.full(50, 0.9)]).reshape(10, 10)
    assert 0.1 < threshold_value(heatmap, "otsu") < 0.9
    assert threshold_value(heatmap, 0.3) == 0.3
    flat = np.zeros((5, 5), np.float32)
    assert not binary_mask(flat, threshold_value(flat, "otsu")).any()


def test_small_objects_and_small_holes():
    mask = np.zeros((10, 10), bool)
    mask[0, 0] = True  # one-pixel speck
    mask[3:8, 3:8] = True
    mask[5, 5] = False  # one-pixel hole
    cleaned = remove_small_objects(mask, 2)
    assert not cleaned[0, 0] and cleaned[3, 3]
    filled = fill_small_holes(mask, 1)
    assert filled[5, 5]
    assert not fill_small_holes(mask, 1)[9, 9]  # the outside is not a hole


def test_instances_are_numbered_connected_components():
    mask = np.zeros((5, 9), bool)
    mask[1:3, 1:3] = True
    mask[1:3, 6:8] = True
    labels = instance_labels(mask)
    assert labels.dtype == np.int32 and set(np.unique(labels)) == {0, 1, 2}


def test_semantic_map_takes_the_best_prompt_and_background_below_threshold():
    scores = np.array([[[0.9, 0.2, 0.1]], [[0.3, 0.8, 0.2]]])
    labels = semantic_labels(scores, 0.5)
    np.testing.assert_array_equal(labels, [[1, 2, 0]])
    np.testing.assert_array_equal(semantic_labels(scores, [0.95, 0.5]), [[0, 2, 0]])


def test_object_table_rows():
    labels = np.zeros((6, 6), np.int32)
    labels[1:3, 1:4] = 1
    heat = np.zeros((6, 6), np.float32)
    heat[1:3, 1:4] = [[0.5, 0.7, 0.9]] * 2
    (row,) = object_table({"cell": labels}, {"cell": heat})
    assert row["prompt"] == "cell" and row["area"] == 6
    assert row["centroid"] == (1.5, 2.0) and row["bbox"] == (1, 1, 3, 4)
    assert abs(row["mean_score"] - 0.7) < 1e-6 and abs(row["max_score"] - 0.9) < 1e-6
