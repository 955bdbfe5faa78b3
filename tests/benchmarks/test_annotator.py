"""The simulated annotator's stroke placement and scores."""

from __future__ import annotations

import numpy as np

from benchmark_scripts import benchmark_module

annotator = benchmark_module("annotator")
Curve, next_stroke = annotator.Curve, annotator.next_stroke
strokes_to_reach, summarize = annotator.strokes_to_reach, annotator.summarize


def test_a_stroke_lands_inside_the_largest_missed_region():
    truth = np.zeros((40, 40), bool)
    truth[5:25, 5:25] = True  # 400 px object
    mask = np.zeros_like(truth)
    mask[30:34, 30:34] = True  # 16 px false region: smaller than the miss
    positive, stroke = next_stroke(mask, truth)
    assert positive
    assert stroke.sum() == 29  # a full disk of radius 3
    ys, xs = np.nonzero(stroke)
    assert (ys.mean(), xs.mean()) == (14.0, 14.0)  # the interior point of the 20 x 20 square


def test_a_false_region_gets_a_negative_stroke_and_an_exact_mask_none():
    truth = np.zeros((40, 40), bool)
    truth[0:3, 0:3] = True
    mask = truth.copy()
    mask[10:30, 10:30] = True
    positive, stroke = next_stroke(mask, truth)
    assert not positive and not (stroke & truth).any()
    assert next_stroke(truth, truth) is None


def test_noc_counts_strokes_to_reach_a_level_and_caps():
    assert strokes_to_reach([0.1, 0.5, 0.86, 0.95], 0.85) == 2
    assert strokes_to_reach([0.1, 0.5], 0.85) == 20
    summary = summarize([Curve([0.0, 0.9, 0.9, 0.9, 0.9, 0.9], [0.01]),
                         Curve([0.5] * 11, [0.03])])
    assert summary["iou@1"] == 0.7 and summary["iou@10"] == (0.9 + 0.5) / 2
    assert summary["noc@85"] == (1 + 20) / 2 and summary["ms"] == 20.0
