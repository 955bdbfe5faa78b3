"""Stroke files: painted (1) and erased (2) pixels of a mask, written and read back exactly."""

from __future__ import annotations

import numpy as np
import pytest

from napari_gem.io.strokes import read_strokes, split_codes, stroke_codes, write_strokes


def test_strokes_round_trip_through_a_tiff(tmp_path):
    positive = np.zeros((2, 20, 30), bool)
    negative = np.zeros_like(positive)
    positive[1, 3:6, 4:9] = True
    negative[0, 10:12, 20:25] = True
    path = write_strokes(tmp_path / "cell_strokes.tif", stroke_codes(positive, negative),
                         {"prompt": "cell"})
    back_positive, back_negative = read_strokes(path)
    np.testing.assert_array_equal(back_positive, positive)
    np.testing.assert_array_equal(back_negative, negative)


def test_bad_strokes_are_refused_with_a_reason():
    marked = np.ones((4, 4), bool)
    with pytest.raises(ValueError, match="both positive and negative"):
        stroke_codes(marked, marked)
    with pytest.raises(ValueError, match="one shape"):
        stroke_codes(marked, np.ones((4, 5), bool))
    with pytest.raises(ValueError, match="0, 1 .positive. or 2 .negative.; found \\[3\\]"):
        split_codes(np.full((2, 2), 3, np.uint8))
