"""Turning dense features and text embeddings into heatmaps (tensors in, tensors out)."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def similarity_grid(dense_features: torch.Tensor, text_embeddings: torch.Tensor) -> torch.Tensor:
    """Cosine similarity ``[B, P, grid_h, grid_w]`` of features ``[B, gh, gw, E]`` and text ``[P, E]``."""
    scores = dense_features.float() @ text_embeddings.float().T  # [B, gh, gw, P]
    return scores.permute(0, 3, 1, 2)


def upsample(maps: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Bilinear upsampling (``align_corners=False``) of ``[B, P, h, w]`` maps to ``size``."""
    if tuple(maps.shape[-2:]) == tuple(size):
        return maps
    return F.interpolate(maps, size=tuple(size), mode="bilinear", align_corners=False)


def min_max(maps: torch.Tensor, *, inplace: bool = False) -> torch.Tensor:
    """Per-map min-max normalisation to [0, 1] over the last two axes.

    A constant map (nothing to tell apart) becomes all zeros instead of NaN.
    ``inplace`` saves the copies when ``maps`` is a temporary (full-size maps of
    large images).
    """
    low = maps.amin(dim=(-2, -1), keepdim=True)
    span = maps.amax(dim=(-2, -1), keepdim=True) - low
    # Constant maps: divide by 1 after subtracting, then they are exactly 0.
    span = torch.where(span > 0, span, torch.ones_like(span))
    if inplace:
        return maps.sub_(low).div_(span)
    return (maps - low) / span


def prompt_softmax(similarity: torch.Tensor, logit_scale: float, dim: int = 1) -> torch.Tensor:
    """Softmax across prompts of CLIP logits (``logit_scale`` times cosine similarity)."""
    return torch.softmax(similarity * logit_scale, dim=dim)
