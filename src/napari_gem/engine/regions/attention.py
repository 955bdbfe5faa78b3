"""CorrCLIP's scope restriction of the last block's attention by regions, with DBSCAN
merging of regions by their mean VFM feature (shared/docs/vfm-methods-spec.md §3.2-3.3,
corrclip transformer.py L538-578). Tensors in, tensors out.

For one image with unit VFM features ``ĝ`` ``[L, C]`` (DINO's last-block q + k, §3.2) and a
region label per patch ``[L]``:

- merging (only when at least two regions besides the unsegmented one): the mean ``ĝ`` of
  each region, re-normalised; ``D = max(S_r) − S_r`` of their cosines; scikit-learn's
  ``DBSCAN(eps, min_samples=1, metric='precomputed')``; regions of one cluster become one;
- patch ``i`` may attend to ``j`` when both lie in the same (merged) region that is not the
  unsegmented one, or when either is unsegmented and ``S_ij > mean(S)`` (mean over all L²);
- ``A = softmax(τ·S)`` over the allowed pairs (τ = 4). Every row keeps its diagonal.
"""

from __future__ import annotations

import numpy as np
import torch

TAU = 4.0
EPS = 0.2


def merged_groups(unit: torch.Tensor, grid_labels: torch.Tensor, unsegmented: int | None,
                  eps: float = EPS) -> torch.Tensor:
    """A group id per patch ``[L]``: the regions DBSCAN merges share one id; unsegmented
    patches keep the id ``-1``. ``unit``: unit features ``[L, C]``; ``grid_labels``: ``[L]``."""
    from sklearn.cluster import DBSCAN

    values, region_of = torch.unique(grid_labels, return_inverse=True)
    regions = [index for index, value in enumerate(values.tolist()) if value != unsegmented]
    cluster = torch.arange(len(values), device=unit.device)
    if len(regions) >= 2:
        sums = torch.zeros(len(values), unit.shape[1], dtype=unit.dtype, device=unit.device)
        sums.index_add_(0, region_of, unit)
        counts = torch.bincount(region_of, minlength=len(values)).to(unit.dtype)
        means = torch.nn.functional.normalize(sums[regions] / counts[regions, None], dim=1)
        cosine = (means @ means.T).double().cpu().numpy()
        distance = np.clip(cosine.max() - cosine, 0.0, None)  # DBSCAN refuses negative distances
        clusters = DBSCAN(eps=eps, min_samples=1, metric="precomputed").fit_predict(distance)
        cluster[regions] = torch.as_tensor(clusters, device=unit.device) + len(values)
    groups = cluster[region_of]
    if unsegmented is not None:
        groups = torch.where(grid_labels == unsegmented, torch.full_like(groups, -1), groups)
    return groups


def region_attention(unit: torch.Tensor, grid_labels: torch.Tensor, unsegmented: int | None,
                     tau: float = TAU, eps: float = EPS, merge: bool = True) -> torch.Tensor:
    """CorrCLIP's restricted attention ``[L, L]`` of one image (see the module docstring)."""
    similarity = unit @ unit.T
    if merge:
        groups = merged_groups(unit, grid_labels, unsegmented, eps)
    else:
        groups = torch.unique(grid_labels, return_inverse=True)[1]
        if unsegmented is not None:
            groups = torch.where(grid_labels == unsegmented, torch.full_like(groups, -1), groups)
    loose = groups == -1  # unsegmented patches
    allowed = (groups[:, None] == groups[None, :]) & ~loose[:, None]
    allowed |= (loose[:, None] | loose[None, :]) & (similarity > similarity.mean())
    allowed.fill_diagonal_(True)  # S_ii = 1 > mean(S) already; this only guards rounding
    return (tau * similarity).masked_fill(~allowed, float("-inf")).softmax(dim=-1)
