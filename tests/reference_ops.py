"""Naive float64 building blocks for the tests' independent re-derivations of the specs.

Written from the specs, sharing nothing with the engine: explicit softmax, per-head
slices, LayerNorm from its parameters.
"""

from __future__ import annotations

import torch.nn.functional as F


def layer_norm(module, x):
    return F.layer_norm(x, module.normalized_shape, module.weight, module.bias, module.eps)


def layer_scale(module, x):
    return x * module.gamma if hasattr(module, "gamma") else x


def heads(t, h):
    """The ``h`` head slices ``[N, D/h]`` of tokens ``[N, D]`` (a contiguous split of D)."""
    width = t.shape[1] // h
    return [t[:, i * width : (i + 1) * width] for i in range(h)]


def softmax_rows(logits):
    logits = logits - logits.max(dim=-1, keepdim=True).values
    weights = logits.exp()
    return weights / weights.sum(dim=-1, keepdim=True)


def unit(t):
    return t / t.norm(dim=-1, keepdim=True).clamp_min(1e-12)
