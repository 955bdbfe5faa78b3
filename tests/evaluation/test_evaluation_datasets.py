"""The dataset readers against miniature datasets written in each exact layout."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from napari_gem.evaluation.datasets import (
    DATASETS,
    IGNORE_INDEX,
    DatasetLayoutError,
    open_dataset,
    reduce_zero_label,
)

# Stored label values (as written by the dataset's converter) -> class indices.
REDUCED = {"voc20", "context59", "ade20k"}
NUM_CLASSES = {
    "voc20": 20,
    "voc21": 21,
    "context59": 59,
    "context60": 60,
    "coco-object": 81,
    "coco-stuff": 171,
    "cityscapes": 19,
    "ade20k": 150,
}


def stored_label(seed: int, high: int) -> np.ndarray:
    """A 6 x 8 label with 0, 1, the highest stored value and ignore (255) in it."""
    label = np.random.default_rng(seed).integers(0, high + 1, (6, 8))
    label[0, :4] = [0, 1, high, IGNORE_INDEX]
    return label


def highest_stored_value(name: str) -> int:
    # Reduced datasets store class k as k + 1; the others store k.
    return NUM_CLASSES[name] if name in REDUCED else NUM_CLASSES[name] - 1


def test_every_dataset_is_described():
    assert set(DATASETS) == set(NUM_CLASSES)
    for name, spec in DATASETS.items():
        assert spec.num_classes == NUM_CLASSES[name]
        assert spec.class_names().num_classes == spec.num_classes
        assert spec.reduce_zero_label == (name in REDUCED)


@pytest.mark.parametrize("name", sorted(NUM_CLASSES))
def test_pairs_are_found_and_labels_converted(name, make_dataset):
    high = highest_stored_value(name)
    labels = [stored_label(seed, high) for seed in range(3)]
    root, order = make_dataset(name, labels)

    dataset = open_dataset(name, root)

    assert [sample.name for sample in dataset] == order
    stored = {sample_id: label for sample_id, label in zip(sorted(order), labels, strict=True)}
    if name.startswith(("voc", "context")):
        stored = dict(zip(reversed(order), labels, strict=True))
    for sample in dataset:
        image, label = dataset.load(sample)
        assert image.dtype == np.uint8 and image.shape == (6, 8, 3)
        raw = stored[sample.name]
        if name in REDUCED:
            expected = np.where(raw == 0, IGNORE_INDEX, raw - 1)
            expected[raw == IGNORE_INDEX] = IGNORE_INDEX
        else:
            expected = raw
        np.testing.assert_array_equal(label, expected)
        valid = label[label != IGNORE_INDEX]
        assert valid.min() >= 0 and valid.max() == NUM_CLASSES[name] - 1


def test_reduce_zero_label_by_hand():
    stored = np.array([[0, 1, 2], [150, 255, 0]])
    np.testing.assert_array_equal(reduce_zero_label(stored), [[255, 0, 1], [149, 255, 255]])


def test_voc_reads_palette_indices_not_colours(make_dataset):
    label = np.full((4, 5), 15)
    label[:, 0] = 0
    root, _ = make_dataset("voc21", [label])
    with Image.open(next((root / "VOCdevkit/VOC2012/SegmentationClass").glob("*.png"))) as png:
        assert png.mode == "P"
    dataset = open_dataset("voc21", root)
    np.testing.assert_array_equal(dataset.load(dataset.samples[0])[1], label)


def test_split_file_decides_which_images_and_in_what_order(make_dataset):
    labels = [np.full((4, 4), value) for value in (1, 2, 3)]
    root, order = make_dataset("voc20", labels)
    # An extra image with its label that is not in val.txt must not be evaluated.
    extra = root / "VOCdevkit/VOC2012"
    Image.fromarray(np.zeros((4, 4, 3), np.uint8)).save(extra / "JPEGImages/2012_999999.jpg")
    Image.fromarray(np.zeros((4, 4), np.uint8)).save(extra / "SegmentationClass/2012_999999.png")

    dataset = open_dataset("voc20", root)

    assert [sample.name for sample in dataset] == order
    assert order != sorted(order)  # the split file's order, not the file system's


def test_cityscapes_scans_city_folders_recursively_in_sorted_order(make_dataset):
    ids = [f"{city}/{city}_{n:06d}_000019" for city, n in [("lindau", 2), ("aachen", 9), ("lindau", 1)]]
    labels = [np.full((4, 4), value) for value in range(len(ids))]
    root, order = make_dataset("cityscapes", labels, ids=ids)
    # Other gtFine files beside the train-id labels must not be picked up.
    for sample_id in order:
        other = root / f"cityscapes/gtFine/val/{sample_id}_gtFine_labelIds.png"
        Image.fromarray(np.full((4, 4), 7, np.uint8)).save(other)

    dataset = open_dataset("cityscapes", root)

    assert [sample.name for sample in dataset] == [ids[1], ids[2], ids[0]] == order
    assert all(sample.label_path.name.endswith("_gtFine_labelTrainIds.png") for sample in dataset)
    for sample in dataset:
        assert (dataset.load(sample)[1] == ids.index(sample.name)).all()


def test_coco_object_and_stuff_read_their_own_label_files(make_dataset, tmp_path):
    stuff = [np.full((4, 6), 120)]
    root, _ = make_dataset("coco-stuff", stuff)
    objects_root = tmp_path / "data"
    # The object labels sit in the same folder with their own suffix (and the raw
    # COCO-Stuff label without suffix is there too).
    folder = objects_root / "coco_stuff164k/annotations/val2017"
    image_id = next(folder.glob("*_labelTrainIds.png")).name.split("_")[0]
    Image.fromarray(np.full((4, 6), 3, np.uint8)).save(folder / f"{image_id}_instanceTrainIds.png")
    Image.fromarray(np.full((4, 6), 99, np.uint8)).save(folder / f"{image_id}.png")

    stuff_set = open_dataset("coco-stuff", root)
    object_set = open_dataset("coco-object", root)

    assert (stuff_set.load(stuff_set.samples[0])[1] == 120).all()
    assert (object_set.load(object_set.samples[0])[1] == 3).all()


@pytest.mark.parametrize(
    ("name", "below"),
    [
        ("voc21", ""),
        ("voc21", "VOCdevkit"),
        ("voc21", "VOCdevkit/VOC2012"),
        ("context59", "VOCdevkit/VOC2010"),
        ("ade20k", "ADEChallengeData2016"),
        ("coco-stuff", "coco_stuff164k"),
    ],
)
def test_root_may_be_the_dataset_folder_or_above_it(name, below, make_dataset):
    root, order = make_dataset(name, [stored_label(0, highest_stored_value(name))])
    assert [sample.name for sample in open_dataset(name, root / below)] == order


def test_a_wrong_folder_is_refused(make_dataset):
    root, _ = make_dataset("voc21", [np.zeros((4, 4))])
    # The image folder itself is no dataset root (nor is anything below it).
    with pytest.raises(DatasetLayoutError, match="no folder JPEGImages"):
        open_dataset("voc21", root / "VOCdevkit/VOC2012/JPEGImages")


def test_missing_root_folder(tmp_path):
    with pytest.raises(DatasetLayoutError, match="does not exist"):
        open_dataset("voc20", tmp_path / "nowhere")


def test_missing_image_folder_names_it_and_the_expected_layout(tmp_path):
    with pytest.raises(DatasetLayoutError) as error:
        open_dataset("ade20k", tmp_path)
    message = str(error.value)
    assert "images/validation" in message
    assert "ADEChallengeData2016/annotations/validation/<id>.png" in message
    assert "\n" not in message


def test_missing_split_file(make_dataset):
    root, _ = make_dataset("context60", [np.zeros((4, 4))])
    (root / "VOCdevkit/VOC2010/ImageSets/SegmentationContext/val.txt").unlink()
    with pytest.raises(DatasetLayoutError, match="ImageSets/SegmentationContext/val.txt"):
        open_dataset("context60", root)


def test_missing_label_file_names_it_and_how_to_make_it(make_dataset):
    root, order = make_dataset("coco-object", [np.zeros((4, 4)), np.ones((4, 4))])
    label = root / f"coco_stuff164k/annotations/val2017/{order[1]}_instanceTrainIds.png"
    label.unlink()
    with pytest.raises(DatasetLayoutError) as error:
        open_dataset("coco-object", root)
    assert f"{order[1]}_instanceTrainIds.png" in str(error.value)
    assert "cvt_coco_object.py" in str(error.value)


def test_missing_image_listed_in_split(make_dataset):
    root, order = make_dataset("voc21", [np.zeros((4, 4))])
    (root / f"VOCdevkit/VOC2012/JPEGImages/{order[0]}.jpg").unlink()
    with pytest.raises(DatasetLayoutError, match=f"JPEGImages/{order[0]}.jpg"):
        open_dataset("voc21", root)


def test_empty_image_folder(tmp_path):
    (tmp_path / "cityscapes/leftImg8bit/val").mkdir(parents=True)
    (tmp_path / "cityscapes/gtFine/val").mkdir(parents=True)
    with pytest.raises(DatasetLayoutError, match="no \\*_leftImg8bit.png images"):
        open_dataset("cityscapes", tmp_path)


def test_label_size_must_match_image(make_dataset):
    root, order = make_dataset("ade20k", [np.ones((4, 4))])
    label = root / f"ADEChallengeData2016/annotations/validation/{order[0]}.png"
    Image.fromarray(np.ones((5, 4), np.uint8)).save(label)
    dataset = open_dataset("ade20k", root)
    with pytest.raises(ValueError, match="4x5"):
        dataset.load(dataset.samples[0])


def test_unknown_dataset(tmp_path):
    with pytest.raises(ValueError, match="choose one of"):
        open_dataset("voc", tmp_path)
