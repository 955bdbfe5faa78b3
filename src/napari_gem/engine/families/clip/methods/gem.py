"""GEM (Bousselham et al., CVPR 2024): self-self attention on a parallel path in the last blocks.

Exact computation in ``shared/docs/gem-spec.md`` (quirks included) and, in words, in
``docs/how-gem-works.md``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from ....described import option
from ....promptable import VisionOutput
from .. import vision
from .base import DenseMethod, MethodOptions, check_int
from .registry import register


@dataclass(frozen=True)
class GemOptions(MethodOptions):
    """GEM's three parameters (paper defaults)."""

    depth: int = option(7, kind="int", label="depth", minimum=1, maximum=48,
                        help="GEM: self-self attention in the last depth-1 blocks")
    iterations: int = option(1, kind="int", label="iterations", minimum=0, maximum=10,
                             help="GEM: iterations of the self-self attention")
    temperature: float | None = option(None, kind="float", label="temperature", auto="adaptive temperature",
                                       minimum=0.001, maximum=100.0, step=0.05, example=1.0,
                                       help="GEM: attention temperature; auto: the paper's adaptive one, "
                                       "per image")

    def __post_init__(self) -> None:
        check_int("depth", self.depth, 1)
        check_int("iterations", self.iterations, 0)
        if self.temperature is not None and (
            isinstance(self.temperature, bool) or not isinstance(self.temperature, (int, float))
            or not (math.isfinite(self.temperature) and self.temperature > 0)
        ):
            raise ValueError(
                f"temperature must be None (adaptive) or a positive number, got {self.temperature!r}"
            )


def _inverse_temperature(normed: torch.Tensor, head_width: int, options: GemOptions):
    if options.temperature is not None:
        return options.temperature
    # Adaptive: mean token norm of ln_1(x), one scalar per image, shaped to broadcast
    # over [B, heads, N, d].
    mean_norm = normed.float().norm(dim=-1).mean(dim=-1) / math.sqrt(head_width)
    return mean_norm.to(normed.dtype).view(-1, 1, 1, 1)


def _normalised(tokens: torch.Tensor, *, in_place: bool = False) -> torch.Tensor:
    """``F.normalize(tokens, dim=-1)``, the same values, optionally written over ``tokens``."""
    denominator = tokens.norm(dim=-1, keepdim=True).clamp_min(1e-12)
    return tokens.div_(denominator) if in_place else tokens / denominator


def self_self_attention(q, k, v, inverse_temperature, iterations: int) -> torch.Tensor:
    """GEM's ensemble of q-q, k-k and v-v self-self attention, applied to raw ``v``.

    The three paths run one after the other rather than stacked into one batch: the
    same attentions on the same numbers, without copying q, k, v into a stack, v into
    three, and the outputs into a mean (a third of GEM's extra time at 448 px on the CPU).
    """

    def attend(keys: torch.Tensor, values: torch.Tensor) -> torch.Tensor:
        # Scaling the queries by tau^-1 equals scaling the logits; sdpa's own `scale`
        # must be a Python float, while the adaptive temperature is per image.
        return vision.attention(keys * inverse_temperature, keys, values, scale=1.0)

    paths = [_normalised(t) for t in (q, k, v)]
    for _ in range(iterations):  # aggregation uses normalised z (quirk)
        paths = [_normalised(attend(z, z), in_place=True) for z in paths]
    assigned = attend(paths[0], v).float()  # as torch.mean: summed and divided in float32, rounded once
    for z in paths[1:]:
        assigned += attend(z, v)
    return (assigned / len(paths)).to(v.dtype)


@register
class Gem(DenseMethod):
    name = "gem"
    title = "GEM"
    summary = ("adds a parallel path of q-q, k-k and v-v self-self attention (L2-normalised, "
               "adaptive temperature) through the last depth-1 blocks, without MLP")
    provenance = ("Bousselham et al., CVPR 2024 (arXiv 2312.00878); equal to the authors' code "
                  "(github.com/WalBouss/GEM) to 1e-6 on identical weights")
    Options = GemOptions
    position_resampling = "exact"

    def check_model(self, visual: vision.Trunk) -> None:
        blocks = len(vision.blocks(visual))
        if self.options.depth - 1 > blocks:
            raise ValueError(
                f"depth={self.options.depth} would modify {self.options.depth - 1} blocks, "
                f"but this ViT has only {blocks} (use depth <= {blocks + 1})"
            )

    def forward(self, visual: vision.Trunk, pixels: torch.Tensor, *,
                with_clip_embedding: bool = True) -> VisionOutput:
        visual = vision.as_trunk(visual)
        self.check_model(visual)
        grid = vision.patch_grid(visual, pixels)
        rope = visual.rope(grid)  # q and k of every path are rotated as the block does
        blocks = visual.blocks
        first_modified = len(blocks) - (self.options.depth - 1)
        x, _ = vision.run_trunk(visual, vision.embed(visual, pixels, self.position_resampling),
                                first_modified, rope=rope)
        g = x
        for index, block in enumerate(blocks[first_modified:], start=first_modified):
            normed = block.norm_in(x)  # the GEM path reads ln_1 of the *original* path (quirk)
            q, k, v = block.qkv(normed, rope)
            inverse_temperature = _inverse_temperature(normed, q.shape[-1], self.options)
            mixed = self_self_attention(q, k, v, inverse_temperature, self.options.iterations)
            g = g + vision.project_out(block, mixed)  # no MLP on the GEM path
            is_last = index == len(blocks) - 1
            if with_clip_embedding or not is_last:
                x = vision.attention_update(block, x, q, k, v)
        embedding = vision.clip_embedding(visual, x) if with_clip_embedding else None
        return VisionOutput(vision.dense_output(visual, g, grid), embedding)
