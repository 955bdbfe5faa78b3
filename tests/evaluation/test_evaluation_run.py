"""``evaluate`` end to end on miniature datasets, with stand-in models and a real GEM."""

from __future__ import annotations

import csv
import dataclasses
import json
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from napari_gem.engine.software import software_record
from napari_gem.evaluation.class_names import dataset_class_names
from napari_gem.evaluation.datasets import DatasetLayoutError, open_dataset
from napari_gem.evaluation.protocol import prepare_pixels, protocol_for
from napari_gem.evaluation.run import evaluate, format_table, result_paths, write_results

VOC21 = dataset_class_names("voc21", background_first=True)
# Small protocol so the tests stay fast: 48-pixel short side, 32 x 32 windows.
SMALL = dataclasses.replace(protocol_for("voc21"), short_side=48, crop=32, stride=16)


def block_label(seed: int) -> np.ndarray:
    """A 40 x 60 VOC label: background left, two objects right, an ignored border."""
    rng = np.random.default_rng(seed)
    first, second = rng.choice(np.arange(1, 21), size=2, replace=False)
    label = np.zeros((40, 60), dtype=np.int64)
    label[:20, 30:] = first
    label[20:, 30:] = second
    label[:, 28:30] = 255
    return label


def iou_by_hand(labels, predictions, num_classes):
    """IoU per class by counting pixels directly (NaN where the class is nowhere)."""
    ious = []
    for cls in range(num_classes):
        tp = fp = fn = 0
        for label, prediction in zip(labels, predictions, strict=True):
            valid = label != 255
            tp += np.sum((label == cls) & (prediction == cls) & valid)
            fp += np.sum((label != cls) & (prediction == cls) & valid)
            fn += np.sum((label == cls) & (prediction != cls) & valid)
        ious.append(tp / (tp + fp + fn) * 100 if tp + fp + fn else math.nan)
    return ious


def test_constant_prediction_gives_the_hand_computed_iou(make_dataset, scorers):
    labels = [block_label(seed) for seed in range(3)]
    root, _ = make_dataset("voc21", labels)
    logits = np.zeros(len(VOC21.prompts))
    logits[VOC21.prompts.index("cat")] = 1.0  # class 8 everywhere, with near-certainty
    result = evaluate("voc21", root, scorers.Constant(logits), protocol=SMALL)

    expected = iou_by_hand(labels, [np.full_like(label, 8) for label in labels], 21)
    np.testing.assert_allclose(result.iou, expected, equal_nan=True)
    assert result.miou == pytest.approx(np.nanmean(expected))
    valid = sum(np.sum(label != 255) for label in labels)
    assert result.aacc == pytest.approx(sum(np.sum(label == 8) for label in labels) / valid * 100)
    assert result.num_images == 3 and result.class_names[0] == "background"


def test_unsure_pixels_become_background(make_dataset, scorers):
    labels = [block_label(seed) for seed in range(2)]
    root, _ = make_dataset("voc21", labels)
    # Equal logits: every class probability is at most 1/56 < the 0.5 threshold.
    result = evaluate("voc21", root, scorers.Constant(np.zeros(len(VOC21.prompts))), protocol=SMALL)
    expected = iou_by_hand(labels, [np.zeros_like(label) for label in labels], 21)
    np.testing.assert_allclose(result.iou, expected, equal_nan=True)
    assert result.iou[0] > 0


def palette(num_classes: int) -> np.ndarray:
    """Well separated colours, one per class."""
    rng = np.random.default_rng(7)
    return rng.choice(np.arange(0, 256, 32), size=(num_classes, 3)).astype(np.uint8)


@pytest.mark.parametrize("setting", ["common", "paper"])
def test_a_model_that_sees_the_classes_scores_near_100(setting, make_dataset, scorers):
    colours = palette(21)
    colours[0] = (0, 0, 0)
    labels = [block_label(seed) for seed in range(3)]
    images = [colours[np.where(label == 255, 0, label)] for label in labels]
    root, _ = make_dataset("voc21", labels, images)
    model = scorers.Palette(colours, VOC21.prompt_class)
    # The paper setting at 64 x 64 instead of 448 x 448, and without min-max: min-max
    # stretches every prompt's map to [0, 1] whether its class is there or not, which
    # would blur what this test checks (the geometry of resizing and scoring).
    paper = dataclasses.replace(protocol_for("voc21", "paper"), fixed_size=(64, 64), min_max=False)
    protocol = SMALL if setting == "common" else paper

    result = evaluate("voc21", root, model, protocol=protocol)

    present = sorted({int(v) for label in labels for v in np.unique(label) if v != 255})
    assert all(result.iou[cls] > 97 for cls in present), result.per_class_iou
    assert result.miou > 97
    if setting == "common":  # 48 x 72 image, windows of 32 x 32, batched
        assert {call[1:] for call in model.calls} == {(3, 32, 32)}
        assert model.embedded == [(VOC21.prompts, SMALL.templates)]  # all 80 templates
    else:  # one pass over the whole image, squashed to a square, one template
        assert model.calls == [(1, 3, 64, 64)] * 3
        assert model.embedded[0][1] == ("a photo of a {}.",)


def test_a_transposed_prediction_would_be_caught(make_dataset, scorers):
    # The same model on a mirrored image must score badly: the geometry is checked.
    colours = palette(21)
    colours[0] = (0, 0, 0)
    labels = [block_label(seed) for seed in range(2)]
    images = [colours[np.where(label == 255, 0, label)][:, ::-1].copy() for label in labels]
    root, _ = make_dataset("voc21", labels, images)
    result = evaluate("voc21", root, scorers.Palette(colours, VOC21.prompt_class), protocol=SMALL)
    assert result.miou < 50


def test_limit_progress_and_result_files(make_dataset, scorers, tmp_path):
    labels = [block_label(seed) for seed in range(4)]
    root, _ = make_dataset("voc21", labels)
    seen = []
    out = tmp_path / "results" / "voc21-run"
    result = evaluate(
        "voc21",
        root,
        scorers.Constant(np.arange(len(VOC21.prompts), dtype=float) / 100),
        protocol=SMALL,
        limit=2,
        progress=lambda done, total: seen.append((done, total)),
        out=out,
    )
    assert result.num_images == 2 and seen == [(1, 2), (2, 2)]

    json_path, csv_path = result_paths(out)
    assert json_path.name == "voc21-run.json" and csv_path.name == "voc21-run.csv"
    stored = json.loads(json_path.read_text())
    assert stored["dataset"] == "voc21" and stored["num_images"] == 2
    assert stored["software"] == software_record()  # the record every JSON carries
    assert stored["miou"] == pytest.approx(result.miou, abs=1e-4)
    assert len(stored["per_class"]) == 21
    absent = [row for row in stored["per_class"] if row["iou"] is None]
    assert absent and len(absent) == sum(math.isnan(value) for value in result.iou)
    assert stored["protocol"]["crop"] == 32 and len(stored["protocol"]["templates"]) == 80

    rows = list(csv.reader(csv_path.open()))
    assert rows[0] == ["class", "iou", "accuracy"] and len(rows) == 1 + 21 + 1
    assert rows[-1][0] == "mean" and float(rows[-1][1]) == pytest.approx(result.miou, abs=0.01)
    assert rows[1][0] == "background"


def test_write_results_suffixes(tmp_path, make_dataset, scorers):
    root, _ = make_dataset("voc21", [block_label(0)])
    result = evaluate("voc21", root, scorers.Constant(np.zeros(len(VOC21.prompts))), protocol=SMALL)
    for given in ("scores.json", "scores.csv", "scores"):
        json_path, csv_path = write_results(result, tmp_path / given)
        assert json_path == tmp_path / "scores.json" and csv_path == tmp_path / "scores.csv"
        assert json_path.is_file() and csv_path.is_file()


def test_table_lists_every_class_and_the_mean(make_dataset, scorers):
    root, _ = make_dataset("voc21", [block_label(0)])
    result = evaluate("voc21", root, scorers.Constant(np.zeros(len(VOC21.prompts))), protocol=SMALL)
    table = format_table(result)
    assert "background" in table and "television monitor" in table and "n/a" in table
    assert f"mIoU {result.miou:.2f}" in table


def test_own_class_names(make_dataset, scorers, tmp_path):
    root, _ = make_dataset("voc21", [block_label(0)])
    names = tmp_path / "names.txt"
    names.write_text("\n".join(["nothing"] + [f"thing {i}, object {i}" for i in range(1, 21)]))
    model = scorers.Palette(palette(21), [0] + [i for i in range(1, 21) for _ in range(2)])
    evaluate("voc21", root, model, protocol=SMALL, class_names=names)
    assert model.embedded[0][0][:3] == ("nothing", "thing 1", "object 1")

    names.write_text("just\ntwo\n")
    with pytest.raises(ValueError, match="21 classes but the class-name list has 2"):
        evaluate("voc21", root, model, protocol=SMALL, class_names=names)


def test_bad_root_and_limit(tmp_path, scorers):
    with pytest.raises(DatasetLayoutError, match="SegmentationClass|JPEGImages"):
        evaluate("voc21", tmp_path, scorers.Constant([0.0]))
    with pytest.raises(ValueError, match="limit"):
        evaluate("voc21", tmp_path, scorers.Constant([0.0]), limit=0)


def test_real_gem_end_to_end_matches_an_independent_computation(tiny_gem, make_dataset):
    """The tiny random GEM through the whole pipeline, checked against the engine's own
    heatmap functions and a plain numpy decision rule (one window covers the image)."""
    from napari_gem.engine.maps import similarity_grid, upsample

    labels = [block_label(seed) for seed in range(2)]
    root, _ = make_dataset("voc21", labels)
    templates = ("a photo of a {}.",)
    protocol = dataclasses.replace(SMALL, short_side=32, crop=64, stride=32, templates=templates)

    result = evaluate("voc21", root, tiny_gem, protocol=protocol)

    dataset = open_dataset("voc21", root)
    text = tiny_gem.encode_text(list(VOC21.prompts), templates)
    predictions, truths = [], []
    for sample in dataset:
        image, label = dataset.load(sample)
        pixels = prepare_pixels(image, protocol)  # 32 x 48: whole patches, one window
        assert pixels.shape[-2:] == (32, 48)
        grid = similarity_grid(tiny_gem.encode_image(pixels).dense_features, text)
        logits = upsample(upsample(grid, (32, 48)), label.shape)[0].numpy().astype(np.float64)
        scaled = logits * 50
        probabilities = np.exp(scaled - scaled.max(axis=0))
        probabilities /= probabilities.sum(axis=0)
        per_class = np.stack(
            [
                probabilities[[i for i, c in enumerate(VOC21.prompt_class) if c == cls]].max(0)
                for cls in range(21)
            ]
        )
        prediction = per_class.argmax(axis=0)
        prediction[per_class.max(axis=0) < 0.5] = 0
        predictions.append(prediction)
        truths.append(label)

    expected = iou_by_hand(truths, predictions, 21)
    np.testing.assert_allclose(result.iou, expected, equal_nan=True, atol=1e-6)
    assert result.model["model"] == tiny_gem.name


def test_real_gem_with_sliding_windows(tiny_gem, make_dataset):
    root, _ = make_dataset("voc21", [block_label(0)])
    protocol = dataclasses.replace(SMALL, templates=("a photo of a {}.", "a {}."))
    first = evaluate("voc21", root, tiny_gem, protocol=protocol)
    again = evaluate("voc21", root, tiny_gem, protocol=protocol)
    assert first.num_images == 1 and 0 <= first.miou <= 100
    assert first.iou == pytest.approx(again.iou, nan_ok=True)
    # The text embeddings the run used are those of the engine's template ensemble.
    with torch.inference_mode():
        direct = tiny_gem.encode_text(["cat"], ("a photo of a {}.", "a {}."))
    expected = F.normalize(
        tiny_gem.encode_text(["cat"], ("a photo of a {}.",)) + tiny_gem.encode_text(["cat"], ("a {}.",)),
        dim=-1,
    )
    torch.testing.assert_close(direct, expected)
