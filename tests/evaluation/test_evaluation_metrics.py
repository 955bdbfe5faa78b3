"""The confusion-matrix metric against hand-computed values."""

from __future__ import annotations

import math

import numpy as np
import pytest

from napari_gem.evaluation.metrics import ConfusionMatrix, scores_from_confusion


def test_hand_computed_example():
    label = np.array([[0, 0, 1], [1, 2, 255]])
    prediction = np.array([[0, 1, 1], [1, 0, 2]])  # the ignored pixel's prediction must not count
    confusion = ConfusionMatrix(3)
    confusion.update(prediction, label)

    np.testing.assert_array_equal(confusion.matrix, [[1, 1, 0], [0, 2, 0], [1, 0, 0]])
    scores = confusion.scores()
    # IoU = TP / (TP + FP + FN): class 0: 1 / (1 + 1 + 1), class 1: 2 / (2 + 1 + 0),
    # class 2: 0 / (0 + 0 + 1).
    np.testing.assert_allclose(scores.iou, [1 / 3, 2 / 3, 0.0])
    np.testing.assert_allclose(scores.accuracy, [1 / 2, 1.0, 0.0])
    assert scores.mean_iou == pytest.approx(1 / 3)
    assert scores.mean_accuracy == pytest.approx(1 / 2)
    assert scores.pixel_accuracy == pytest.approx(3 / 5)


def test_class_absent_from_labels_and_predictions_is_nan_and_skipped():
    label = np.array([0, 0, 1, 1])
    prediction = np.array([0, 2, 1, 1])  # class 2 only predicted, class 3 nowhere
    confusion = ConfusionMatrix(4)
    confusion.update(prediction, label)
    scores = confusion.scores()

    np.testing.assert_allclose(scores.iou[:3], [1 / 2, 1.0, 0.0])
    assert math.isnan(scores.iou[3])
    assert math.isnan(scores.accuracy[2]) and math.isnan(scores.accuracy[3])
    # Class 2 counts in the mean (a false positive class has IoU 0); class 3 does not.
    assert scores.mean_iou == pytest.approx((1 / 2 + 1 + 0) / 3)
    assert scores.mean_accuracy == pytest.approx((1 / 2 + 1) / 2)


def test_scores_pool_pixels_over_images_rather_than_averaging_images():
    confusion = ConfusionMatrix(2)
    confusion.update(np.array([0, 0, 0, 0]), np.array([0, 0, 0, 1]))  # image IoU_0 = 3/4
    confusion.update(np.array([1]), np.array([0]))  # image IoU_0 = 0
    # Pooled: TP_0 = 3, FP_0 = 1, FN_0 = 1 -> 3/5 (the mean of per-image IoUs would be 3/8).
    assert confusion.scores().iou[0] == pytest.approx(3 / 5)


def test_matches_a_pixel_by_pixel_count():
    rng = np.random.default_rng(3)
    label = rng.integers(0, 6, (40, 30))
    label[rng.random(label.shape) < 0.1] = 255
    prediction = rng.integers(0, 5, (40, 30))
    confusion = ConfusionMatrix(5)
    confusion.update(prediction, label)

    expected = np.zeros((5, 5), dtype=np.int64)
    for truth, guess in zip(label.ravel(), prediction.ravel(), strict=True):
        if truth < 5:  # 255 ignored, and 5 is outside the classes
            expected[truth, guess] += 1
    np.testing.assert_array_equal(confusion.matrix, expected)


def test_perfect_prediction():
    label = np.array([[0, 1], [2, 255]])
    scores = scores_from_confusion(np.diag([1, 1, 1]))
    assert scores.mean_iou == scores.pixel_accuracy == 1.0
    confusion = ConfusionMatrix(3)
    confusion.update(np.where(label == 255, 0, label), label)
    assert confusion.scores().mean_iou == 1.0


def test_custom_ignore_index():
    confusion = ConfusionMatrix(2, ignore_index=0)
    confusion.update(np.array([1, 1]), np.array([0, 1]))
    np.testing.assert_array_equal(confusion.matrix, [[0, 0], [0, 1]])


def test_nothing_counted_gives_nan():
    scores = ConfusionMatrix(2).scores()
    assert math.isnan(scores.mean_iou) and math.isnan(scores.pixel_accuracy)


def test_bad_inputs():
    confusion = ConfusionMatrix(3)
    with pytest.raises(ValueError, match="shape"):
        confusion.update(np.zeros((2, 2)), np.zeros((2, 3)))
    with pytest.raises(ValueError, match="class indices 0..2"):
        confusion.update(np.array([3]), np.array([0]))
    with pytest.raises(ValueError, match="num_classes"):
        ConfusionMatrix(0)
