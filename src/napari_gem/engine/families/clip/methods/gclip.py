"""GCLIP (Wang, Yan, Kang, arXiv 2502.06818): global-token attention fused into the last block.

No official code exists; this is methods-spec §3.5's best reading, **reconstructed
from the paper's abstract and third-party descriptions**. Every inferred choice is an
option: which "global-token emerging" blocks lend their q-k attention, how it is
fused with the last block's q-q attention, per head or head-averaged, and the
channel suppression (CS) of the FFN output weights of late blocks.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from ....described import option
from .. import vision
from .base import MethodOptions
from .last_block import LastBlockMethod
from .registry import register

FUSIONS = ("mean", "half")
PRESENCE_SOURCES = (("channel-suppressed trunk", "suppressed"), ("CLIP's own blocks", "clip"))
_FUSION_CHOICES = (("mean of all maps", "mean"), ("½ q-q + ½ mean of global blocks", "half"))


def _blocks(name: str, value) -> tuple[int, ...] | None:
    if value is None:
        return None
    try:
        blocks = tuple(sorted({int(b) for b in value}))
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be block indices (0-based integers) or None; got {value!r}") from None
    if any(b < 0 for b in blocks) or any(int(b) != b for b in value):
        raise ValueError(f"{name} must be 0-based, non-negative block indices; got {value!r}")
    return blocks


@dataclass(frozen=True)
class GclipOptions(MethodOptions):
    """GCLIP's inferred knobs; ``None`` block lists scale ViT-B/16's choice to the model's depth."""

    global_blocks: tuple[int, ...] | None = option(
        None, kind="ints", label="global blocks", auto="auto", example=(6, 7), noun="block numbers",
        help="GCLIP: 0-based blocks whose attention is fused into the last block (auto: 6, 7 on a "
        "12-block ViT)")
    # mean: (A_qq + Σ A_g) / (|G|+1); half: ½ A_qq + ½ mean(A_g)
    fusion: str = option("mean", kind="choice", label="fusion", choices=_FUSION_CHOICES,
                         help="GCLIP: how the attention maps are averaged (inferred)")
    per_head: bool = option(True, kind="bool", label="per-head attention maps",
                            help="GCLIP: fuse per head, or head-averaged maps")
    channel_suppression: bool = option(True, kind="bool", label="channel suppression",
                                       help="GCLIP: tame the largest FFN output channel of late blocks "
                                       "(on a copy; your model is unchanged)")
    cs_blocks: tuple[int, ...] | None = option(
        None, kind="ints", label="CS blocks", auto="auto", example=(7, 8, 9, 10), noun="block numbers",
        help="GCLIP: 0-based blocks with channel suppression (auto: 7 .. 10 on a 12-block ViT)")
    presence: str = option(
        "suppressed", kind="choice", label="presence from", choices=PRESENCE_SOURCES,
        help="GCLIP: the image embedding for presence scores: from the channel-suppressed trunk "
        "(free) or from CLIP's own unmodified blocks (a second pass through the suppressed blocks)")

    def __post_init__(self) -> None:
        object.__setattr__(self, "global_blocks", _blocks("global_blocks", self.global_blocks))
        object.__setattr__(self, "cs_blocks", _blocks("cs_blocks", self.cs_blocks))
        if self.global_blocks == ():
            raise ValueError("global_blocks must name at least one block (or None for the default)")
        if self.presence not in ("suppressed", "clip"):
            raise ValueError(f"presence must be suppressed or clip; got {self.presence!r}")
        if self.fusion not in FUSIONS:
            raise ValueError(f"fusion must be one of {', '.join(FUSIONS)}; got {self.fusion!r}")
        for name in ("per_head", "channel_suppression"):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"{name} must be True or False; got {getattr(self, name)!r}")


def default_global_blocks(num_blocks: int) -> tuple[int, int]:
    """ViT-B/16's 0-based (6, 7) of 12 blocks, at the same relative depth for other ViTs."""
    first = min(max(round(6 * num_blocks / 12), 0), num_blocks - 3)
    return first, first + 1


def default_cs_blocks(num_blocks: int) -> tuple[int, ...]:
    """ViT-B/16's 0-based 7 .. 10 (blocks 7 to L-2), at the same relative depth."""
    first = min(round(7 * num_blocks / 12), num_blocks - 2)
    return tuple(range(first, num_blocks - 1))


def suppressed_c_proj(weight: torch.Tensor) -> torch.Tensor:
    """A copy of ``mlp.c_proj.weight`` ``[D, 4D]`` whose largest-norm output row is scaled
    to the mean norm of the other rows (the bias is left alone)."""
    norms = weight.float().norm(dim=1)
    channel = int(norms.argmax())
    others = torch.cat([norms[:channel], norms[channel + 1:]])
    suppressed = weight.detach().clone()
    suppressed[channel] *= (others.mean() / norms[channel]).to(weight.dtype)
    return suppressed


_CS_CACHE_ATTR = "_napari_gem_channel_suppression"


def channel_suppressed_weights(visual: nn.Module, blocks: tuple[int, ...]) -> dict[int, torch.Tensor]:
    """CS weights of ``blocks``, computed once per model (copies; the model is never changed)."""
    trunk_blocks = vision.blocks(visual)
    weights = [trunk_blocks[b].fc2_weight for b in blocks]
    key = (blocks, tuple(w._version for w in weights), weights[0].dtype if weights else None,
           weights[0].device if weights else None)
    cache = vision.as_trunk(visual).module.__dict__.setdefault(_CS_CACHE_ATTR, {})
    if key not in cache:
        cache.clear()
        with torch.no_grad():
            cache[key] = {b: suppressed_c_proj(w) for b, w in zip(blocks, weights, strict=True)}
    return cache[key]


@dataclass
class _TrunkExtras:
    attention: dict[int, torch.Tensor]  # recorded q-k attention of the global blocks
    branch_block: int = 0  # the first channel-suppressed block
    branch_tokens: torch.Tensor | None = None  # the tokens entering it


@register
class Gclip(LastBlockMethod):
    name = "gclip"
    title = "GCLIP"
    summary = ("last block: q-q attention averaged with the q-k attention of the 'global-token "
               "emerging' blocks, no residual, no MLP; FFN channel suppression in late blocks")
    provenance = ("Wang, Yan, Kang, arXiv 2502.06818; no official code: reconstructed from the "
                  "paper's abstract and third-party descriptions (docs/methods.md) — block choice, "
                  "fusion and channel suppression are inferred")
    verified = False
    Options = GclipOptions

    def resolved_blocks(self, visual: nn.Module) -> tuple[tuple[int, ...], tuple[int, ...]]:
        """(global blocks, CS blocks) for this ViT, defaults scaled to its depth."""
        count = len(vision.blocks(visual))
        global_blocks = self.options.global_blocks or default_global_blocks(count)
        cs_blocks = ()
        if self.options.channel_suppression:
            cs_blocks = self.options.cs_blocks if self.options.cs_blocks is not None \
                else default_cs_blocks(count)
        return global_blocks, cs_blocks

    def check_model(self, visual: nn.Module) -> None:
        count = len(vision.blocks(visual))
        if count < 3:
            raise ValueError(f"GCLIP needs a ViT of at least 3 blocks; this one has {count}")
        for name, blocks in zip(("global_blocks", "cs_blocks"), self.resolved_blocks(visual), strict=True):
            if blocks and max(blocks) > count - 2:
                raise ValueError(
                    f"{name} {list(blocks)} must lie before the last block: this ViT has "
                    f"{count} blocks, so use indices 0 .. {count - 2}"
                )

    def trunk(self, visual, tokens, rope=None):
        """Blocks before the first CS block once, then the CS blocks; keeps the branch point
        so CLIP's own last-block input can be recomputed for the presence embedding."""
        global_blocks, cs_blocks = self.resolved_blocks(visual)
        stop = len(vision.blocks(visual)) - 1
        if not cs_blocks:
            x, maps = vision.run_trunk(visual, tokens, stop, record=global_blocks, rope=rope)
            return x, _TrunkExtras(maps)
        first = min(cs_blocks)
        shared, maps = vision.run_trunk(visual, tokens, first, record=global_blocks, rope=rope)
        x, later_maps = vision.run_trunk(visual, shared, stop, start=first, record=global_blocks,
                                         c_proj_weights=channel_suppressed_weights(visual, cs_blocks),
                                         rope=rope)
        return x, _TrunkExtras({**maps, **later_maps}, first, shared)

    def unmodified_last_input(self, visual, x, extras, rope=None):
        if extras.branch_tokens is None or self.options.presence == "suppressed":
            return x
        stop = len(vision.blocks(visual)) - 1
        return vision.run_trunk(visual, extras.branch_tokens, stop, start=extras.branch_block,
                                rope=rope)[0]

    def last_block(self, block, x, q, k, v, grid, extras):
        global_maps = [extras.attention[index] for index in sorted(extras.attention)]
        query_query = vision.attention_probabilities(q, q, q.shape[-1] ** -0.5)
        if not self.options.per_head:
            query_query = query_query.mean(dim=1, keepdim=True)
            global_maps = [m.mean(dim=1, keepdim=True) for m in global_maps]
        if self.options.fusion == "mean":
            fused = (query_query + sum(global_maps)) / (len(global_maps) + 1)
        else:
            fused = 0.5 * query_query + 0.5 * sum(global_maps) / len(global_maps)
        return vision.project_out(block, fused @ v)
