"""The stroke classifier's two tools: image filters and the trees that learn from strokes.

Both the working-grid classifier (:mod:`.pixels`) and the full-resolution detail windows
(:mod:`.detail`) use them, so they live here rather than being passed around.
"""

from __future__ import annotations

import numpy as np

#: The classifier: extremely randomised trees (fit faster than a random forest, measured as good).
TREES = 16
TREE_DEPTH = 10


def image_filters(rgb: np.ndarray) -> np.ndarray:
    """``skimage.feature.multiscale_basic_features`` of an RGB image ``[h, w, F]`` (float32).

    Each colour channel is filtered on its own (measured better than the grey image's filters).
    """
    from skimage.feature import multiscale_basic_features

    filters = multiscale_basic_features(rgb, sigma_min=0.5, sigma_max=8, num_sigma=4, channel_axis=-1)
    return filters.astype(np.float32)


def standardised(columns: np.ndarray) -> np.ndarray:
    """Columns with zero mean and unit spread (distances between rows weigh every column alike)."""
    return (columns - columns.mean(0)) / (columns.std(0) + 1e-6)


def fit_predict(columns: np.ndarray, rows: np.ndarray, labels: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Fit the trees on the training ``rows`` of ``columns``; the probability of the prompt for every row."""
    from sklearn.ensemble import ExtraTreesClassifier

    forest = ExtraTreesClassifier(n_estimators=TREES, max_depth=TREE_DEPTH, min_samples_leaf=2,
                                  n_jobs=1, random_state=0)
    forest.fit(columns[rows], labels, sample_weight=weights)
    return forest.predict_proba(columns)[:, 1].astype(np.float32)
