"""SimZSS's training objective: image-level InfoNCE plus the concept-level dense loss.

``L = L_clip + lambda * L_dense`` (lambda 0.05 in the paper's code):

- ``L_clip``: symmetric InfoNCE between the normalised (non-denoised) CLS and the
  normalised EOT embedding, at the learned logit scale.
- ``L_dense``: each concept found in a caption is the sum of its normalised token
  vectors; per-class batch prototypes are the normalised sums of those. A concept's
  prototype pools its image's normalised denoised patches by similarity (softmax over
  patches at temperature 0.1); the pooled vector is classified against the batch's
  prototypes at the fixed scale 1/0.07 (x14.29) with cross-entropy.

The released code's cross-entropy target is the argmax of the model's own logits
(tileb1/simzss, src/open_clip/loss.py, ZSLoss); here the default target is the concept's label (the paper's
reading), and ``target="argmax"`` reproduces the code.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

DENSE_SCALE = 1 / 0.07
POOL_TEMPERATURE = 0.1
DENSE_TARGETS = ("label", "argmax")


def clip_loss(image: torch.Tensor, text: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """Symmetric InfoNCE of matched rows of normalised ``image`` and ``text`` ``[B, D]``."""
    logits = scale * image @ text.T
    labels = torch.arange(len(image), device=image.device)
    return (F.cross_entropy(logits, labels) + F.cross_entropy(logits.T, labels)) / 2


def concept_vectors(
    token_features: torch.Tensor, caption: torch.Tensor, position: torch.Tensor, owner: torch.Tensor,
    count: int,
) -> torch.Tensor:
    """Per concept occurrence, the sum of its normalised token vectors ``[M, D]``.

    Token ``t`` of the flat lists sits at ``(caption[t], position[t])`` and belongs to
    occurrence ``owner[t]``.
    """
    tokens = F.normalize(token_features[caption, position], dim=-1)
    summed = torch.zeros(count, tokens.shape[-1], dtype=tokens.dtype, device=tokens.device)
    return summed.index_add(0, owner, tokens)


def dense_loss(
    patches: torch.Tensor, concepts: torch.Tensor, image_of_concept: torch.Tensor, label: torch.Tensor,
    *, target: str = "label",
) -> torch.Tensor:
    """The concept-level loss for normalised ``patches`` ``[B, N, D]`` and concepts ``[M, D]``."""
    present, inverse = torch.unique(label, return_inverse=True)
    prototypes = torch.zeros(len(present), concepts.shape[-1], dtype=concepts.dtype, device=concepts.device)
    prototypes = F.normalize(prototypes.index_add(0, inverse, concepts), dim=-1)
    queries = prototypes[inverse]  # [M, D]
    keys = patches[image_of_concept]  # [M, N, D]
    weights = torch.softmax(torch.bmm(keys, queries[:, :, None])[..., 0] / POOL_TEMPERATURE, dim=1)
    pooled = F.normalize(torch.bmm(weights[:, None, :], keys)[:, 0], dim=-1)
    logits = DENSE_SCALE * pooled @ prototypes.T
    if target == "label":
        goal = inverse
    elif target == "argmax":
        goal = logits.detach().argmax(dim=-1)
    else:
        raise ValueError(f"dense target must be one of {', '.join(DENSE_TARGETS)}; got {target!r}")
    return F.cross_entropy(logits, goal)


MAX_LOGIT_SCALE = math.log(100)
