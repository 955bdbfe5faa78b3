"""Objects from masks: touching objects split at the heatmap's peaks, the mask never changed."""

from __future__ import annotations

import json

import numpy as np
import pytest
from skimage.draw import disk

from benchmark_scripts import benchmark_module
from napari_gem.cli.main import main as cli_main
from napari_gem.engine import SegmentOptions
from napari_gem.engine.instances import components, label_instances, split_touching
from napari_gem.engine.masks import connected_components
from napari_gem.engine.result import build_result

counting = benchmark_module("counting")  # the object counts' scenes (benchmarks/)
matches, touching_scene, touching_share = counting.matches, counting.touching_scene, counting.touching_share

SHAPE = (64, 96)
LEFT, RIGHT = (32, 30), (32, 58)


def two_touching_disks() -> np.ndarray:
    mask = np.zeros(SHAPE, bool)
    mask[disk(LEFT, 15)] = True
    mask[disk(RIGHT, 15)] = True
    return mask


def bump(centre, width: float) -> np.ndarray:
    rows, cols = np.mgrid[: SHAPE[0], : SHAPE[1]]
    return np.exp(-((rows - centre[0]) ** 2 + (cols - centre[1]) ** 2) / (2 * width**2))


def two_peaks() -> np.ndarray:
    return (bump(LEFT, 6) + bump(RIGHT, 6)).astype(np.float32)


@pytest.mark.parametrize("landscape", ["product", "heatmap"])
def test_two_touching_disks_with_two_peaks_are_two_objects(landscape):
    mask = two_touching_disks()
    assert connected_components(mask).max() == 1  # they touch: one region

    labels = split_touching(mask, two_peaks(), cell=8, landscape=landscape)

    assert labels.dtype == np.int32 and labels.max() == 2
    assert labels[LEFT] != labels[RIGHT] and labels[LEFT] > 0 and labels[RIGHT] > 0
    np.testing.assert_array_equal(labels > 0, mask)
    # The cut runs through the neck, between the two centres.
    left = labels == labels[LEFT]
    assert np.abs(left.sum() - (~left & mask).sum()) < 0.05 * mask.sum()


def test_split_floods_only_the_regions_it_marks_and_splits_them_as_all_would_be():
    # Two pairs of touching disks side by side: one region each, both splittable.
    mask, heatmap = np.hstack([two_touching_disks()] * 2), np.hstack([two_peaks()] * 2)
    everything = split_touching(mask, heatmap, cell=8)
    marked = np.zeros(mask.shape, bool)
    marked[:, : SHAPE[1]] = True  # the left pair only

    labels = split_touching(mask, heatmap, cell=8, split=marked)

    assert everything.max() == 4 and labels.max() == 3
    np.testing.assert_array_equal(labels[:, : SHAPE[1]], everything[:, : SHAPE[1]])
    right = labels[:, SHAPE[1]:]
    assert np.unique(right[mask[:, SHAPE[1]:]]).size == 1  # not flooded: one label


def test_one_blob_with_one_peak_stays_one_object():
    mask = np.zeros(SHAPE, bool)
    mask[disk((32, 44), 20)] = True
    labels = label_instances(mask, bump((32, 44), 10), "watershed", cell=8)
    assert labels.max() == 1
    np.testing.assert_array_equal(labels > 0, mask)


def test_small_ripples_of_a_coarse_heatmap_do_not_split():
    # One object; its heatmap is a noisy 8 px grid blown up to the pixels.
    mask = np.zeros(SHAPE, bool)
    mask[disk((32, 44), 20)] = True
    rng = np.random.default_rng(0)
    grid = bump((32, 44), 40)[4::8, 4::8] + 0.1 * rng.standard_normal((8, 12))
    heatmap = np.kron(grid, np.ones((8, 8)))
    unguarded = split_touching(mask, heatmap, cell=8, dynamic=0.0, smooth_cells=0.0,
                               landscape="heatmap")
    assert unguarded.max() > 1  # every noisy grid node would be an object
    for landscape in ("heatmap", "product"):
        assert split_touching(mask, heatmap, cell=8, landscape=landscape).max() == 1


def test_the_components_option_keeps_touching_objects_as_one():
    labels = label_instances(two_touching_disks(), two_peaks(), "components", cell=8)
    assert labels.max() == 1
    np.testing.assert_array_equal(labels, components(two_touching_disks()))


@pytest.mark.parametrize("cell", [4, 9, 16])  # seeds sought at full, 1/2 and 1/4 resolution
def test_the_mask_is_never_changed(cell):
    rng = np.random.default_rng(3)
    mask = rng.random((81, 90)) > 0.45  # many odd regions, some touching only at corners
    heatmap = rng.random((81, 90)).astype(np.float32)
    before = mask.copy()
    for mode in ("watershed", "components"):
        labels = label_instances(mask, heatmap, mode, cell=cell)
        np.testing.assert_array_equal(labels > 0, mask)
        assert set(np.unique(labels)) == set(range(int(labels.max()) + 1))  # numbered 1..n
    np.testing.assert_array_equal(mask, before)
    assert label_instances(np.zeros((5, 5), bool), np.ones((5, 5)), cell=4).max() == 0


@pytest.mark.parametrize("cell", [3, 8])
def test_every_split_object_is_connected(cell):
    rng = np.random.default_rng(5)
    mask = rng.random((80, 90)) > 0.4
    labels = split_touching(mask, rng.random((80, 90)), cell=cell, dynamic=0.0)
    assert labels.max() > connected_components(mask).max()
    for value in range(1, int(labels.max()) + 1):
        assert connected_components(labels == value).max() == 1


def test_bad_input_is_a_clear_error():
    with pytest.raises(ValueError, match="instances must be one of watershed, components"):
        label_instances(two_touching_disks(), two_peaks(), "blobs")
    with pytest.raises(ValueError, match="heatmap shape"):
        split_touching(two_touching_disks(), np.zeros((3, 3)))
    with pytest.raises(ValueError, match="instances must be one of"):
        SegmentOptions(instances="blobs")


def test_results_follow_the_option_and_keep_the_mask():
    # At 0.5 the mask is the two touching disks; the heatmap peaks at their centres.
    heatmaps = (0.5 * two_touching_disks() + 0.49 * two_peaks() / two_peaks().max())[None]
    presence = np.ones(1, np.float32)
    parameters = {"heatmap_cell": 8.0}
    split = build_result(["cell"], heatmaps, presence, SegmentOptions(threshold=0.5), parameters)
    merged = build_result(["cell"], heatmaps, presence,
                          SegmentOptions(threshold=0.5, instances="components"), parameters)
    np.testing.assert_array_equal(split.masks[0], two_touching_disks())
    np.testing.assert_array_equal(split.masks, merged.masks)
    np.testing.assert_array_equal(split.instances > 0, split.masks)
    assert (split.instances.max(), merged.instances.max()) == (2, 1)
    assert [row["label"] for row in split.objects()] == [1, 2]
    assert len(merged.objects()) == 1


def test_touching_scenes_have_touching_objects_and_exact_counts():
    image, masks, objects = touching_scene(2_100_000)
    assert image.dtype == np.uint8 and set(masks) == set(objects)
    for concept, labels in objects.items():
        assert ((labels > 0) <= masks[concept]).all()
    shares = [touching_share(touching_scene(seed)[2][c]) for seed in range(2_100_000, 2_100_005)
              for c in touching_scene(seed)[2]]
    assert np.mean(shares) > 0.3
    truth = objects[next(iter(objects))]
    assert matches(truth, truth) == len(np.unique(truth)) - 1
    assert matches(truth, (truth > 0).astype(np.int32)) <= 1


def test_the_segment_command_splits_by_default_and_keeps_components_on_request(tmp_path):
    from napari_gem.demo.model import CONFIG_PATH, MODEL_NAME, WEIGHTS_PATH
    from napari_gem.io import read_output

    image, _, _ = touching_scene(2_100_002)  # six diatoms, five of them touching
    source = tmp_path / "scene.png"
    from PIL import Image

    Image.fromarray(image).save(source)
    common = [str(source), "-p", "diatom", "--model", MODEL_NAME, "--pretrained", str(WEIGHTS_PATH),
              "--model-config", str(CONFIG_PATH), "--device", "cpu", "--input-size", "192",
              "--quiet"]
    assert cli_main(["segment", *common, "-o", str(tmp_path / "split")]) == 0
    assert cli_main(["segment", *common, "-o", str(tmp_path / "merged"), "--instances",
                     "components"]) == 0

    split, _ = read_output(tmp_path / "split" / "scene_diatom_mask.tif")
    merged, _ = read_output(tmp_path / "merged" / "scene_diatom_mask.tif")
    heatmap, _ = read_output(tmp_path / "split" / "scene_diatom_heatmap.tif")
    parameters = json.loads((tmp_path / "split" / "scene_parameters.json").read_text())
    assert parameters["options"]["instances"] == "watershed"
    np.testing.assert_array_equal(split > 0, merged > 0)  # the same mask ...
    np.testing.assert_array_equal(merged, connected_components(merged > 0))
    expected = split_touching(split > 0, heatmap, cell=parameters["planes"][0]["heatmap_cell"])
    np.testing.assert_array_equal(split, expected)  # ... split at the heatmap's peaks
    assert split.max() > merged.max()
