"""The last-block methods with no options: plain CLIP, MaskCLIP (two variants), SCLIP, ClearCLIP.

Each is the methods-spec's helper (§2) with the last block of its §3 entry. Layer
scale 1 is applied to every attention output, also where the official code has no
residual (a no-op for the OpenAI and LAION ViTs, which have none) [methods-spec §2].
"""

from __future__ import annotations

from dataclasses import dataclass

from .. import vision
from .base import MethodOptions
from .last_block import LastBlockMethod
from .registry import register


@dataclass(frozen=True)
class NoOptions(MethodOptions):
    """This method has no options."""


@register
class PlainClip(LastBlockMethod):
    name = "clip"
    title = "CLIP"
    summary = "nothing: the unmodified last block's patch tokens (the baseline every method improves on)"
    provenance = "CLIP (Radford et al., 2021) as open_clip runs it"
    Options = NoOptions
    position_resampling = "exact"
    keeps_last_block = True

    def last_block(self, block, x, q, k, v, grid, extras):
        return vision.attention_update(block, x, q, k, v)


@register
class MaskClip(LastBlockMethod):
    name = "maskclip"
    title = "MaskCLIP"
    summary = "last block: identity attention (each token keeps its own value); residual and MLP kept"
    provenance = ("Zhou, Loy, Dai, ECCV 2022; official code github.com/chongzhou96/MaskCLIP, "
                  "mmseg/models/backbones/vit.py L94-108")
    Options = NoOptions

    def last_block(self, block, x, q, k, v, grid, extras):
        return vision.feed_forward(block, x + vision.project_out(block, v))


@register
class MaskClipNoResidual(LastBlockMethod):
    name = "maskclip-nores"
    title = "MaskCLIP (no-res)"
    summary = "last block: identity attention, no residual and no MLP (ClearCLIP's re-implementation)"
    provenance = ("ClearCLIP's MaskCLIP variant, github.com/mc-lan/ClearCLIP "
                  "transformer.py L604-609")
    Options = NoOptions

    def last_block(self, block, x, q, k, v, grid, extras):
        return vision.project_out(block, v)


@register
class Sclip(LastBlockMethod):
    name = "sclip"
    title = "SCLIP"
    summary = ("last block: correlative self-attention softmax(qqᵀ) + softmax(kkᵀ) (a sum); "
               "residual and MLP kept")
    provenance = ("Wang, Mei, Yuille, ECCV 2024; official code github.com/wangf3014/SCLIP, "
                  "clip/model.py L229-313")
    Options = NoOptions

    def last_block(self, block, x, q, k, v, grid, extras):
        attended = vision.attention(q, q, v) + vision.attention(k, k, v)
        return vision.feed_forward(block, x + vision.project_out(block, attended))


@register
class ClearClip(LastBlockMethod):
    name = "clearclip"
    title = "ClearCLIP"
    summary = "last block: q-q attention, no residual and no MLP"
    provenance = ("Lan et al., ECCV 2024; official code github.com/mc-lan/ClearCLIP "
                  "transformer.py L500-622")
    Options = NoOptions

    def last_block(self, block, x, q, k, v, grid, extras):
        return vision.project_out(block, vision.attention(q, q, v))
