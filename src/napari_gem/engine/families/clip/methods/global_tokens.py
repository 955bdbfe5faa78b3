"""Finding GCLIP's "global-token emerging" blocks of any ViT from attention statistics.

Global tokens show up as stripes in attention maps: a few key columns that every
query attends to. For each block we measure the share of attention mass that all
queries put on the top 1 % of patch keys; the emerging blocks are where that share
jumps. This rule is inferred (methods-spec §3.5), not taken from GCLIP's code.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from .. import vision


@dataclass(frozen=True)
class GlobalTokenReport:
    """Per-block share of attention on the top 1 % keys, and the suggested blocks."""

    shares: tuple[float, ...]  # one per block, 0-based
    suggested: tuple[int, int]  # the jump block and the next: GCLIP's ``global_blocks``

    def __str__(self) -> str:
        rows = [f"block {i:>2}: {share:.3f}{'  <-' if i in self.suggested else ''}"
                for i, share in enumerate(self.shares)]
        return "\n".join(rows)


def attention_stripe_shares(visual: nn.Module, pixels: torch.Tensor, top: float = 0.01) -> list[float]:
    """For each block: mean over images, heads and queries of the attention mass on the
    ``top`` fraction of patch keys with the largest column sums (prefix tokens excluded)."""
    trunk = vision.as_trunk(visual)
    blocks = trunk.blocks
    rope = trunk.rope(vision.patch_grid(trunk, pixels))
    with torch.inference_mode():
        _, maps = vision.run_trunk(trunk, vision.embed(trunk, pixels), len(blocks),
                                   record=range(len(blocks)), rope=rope)
    shares = []
    for index in range(len(blocks)):
        patch_keys = maps[index][..., trunk.prefix_count:].float()  # [B, h, N, N-P]
        count = max(1, math.ceil(top * patch_keys.shape[-1]))
        columns = patch_keys.sum(dim=-2)  # [B, h, N-1]: attention each key receives
        strongest = columns.topk(count, dim=-1).indices
        mass = patch_keys.gather(-1, strongest.unsqueeze(-2).expand(*patch_keys.shape[:-1], count))
        shares.append(float(mass.sum(dim=-1).mean()))
    return shares


def find_global_blocks(model: nn.Module, pixels: torch.Tensor, top: float = 0.01) -> GlobalTokenReport:
    """Suggest GCLIP's ``global_blocks`` for a ViT from a few normalised images ``[B, 3, H, W]``.

    ``model``: a :class:`~napari_gem.GroundingModel`, an open_clip CLIP model or its
    vision tower. The suggestion is the block (not the first or the last two) whose
    share rises most over the block before it, and the block after it.
    """
    visual = vision.as_trunk(getattr(model, "visual", model))
    weight = visual.parameter
    shares = attention_stripe_shares(visual, pixels.to(device=weight.device, dtype=weight.dtype), top)
    if len(shares) < 4:
        raise ValueError(f"a ViT of {len(shares)} blocks is too shallow to look for global tokens")
    rises = {index: shares[index] - shares[index - 1] for index in range(1, len(shares) - 2)}
    jump = max(rises, key=rises.get)
    return GlobalTokenReport(tuple(shares), (jump, jump + 1))
