"""ProxyCLIP (Lan et al., ECCV 2024): the last block's attention comes from a proxy vision
foundation model (DINO, DINOv2) and acts on CLIP's values (shared/docs/vfm-methods-spec.md §2).

Per crop: the VFM's final-norm patch tokens ``F`` (on the VFM's own patch grid) give cosine
similarities ``S``; ``Z = (S − β·mean(S))·γ`` with ``Z < 0`` masked to −∞; ``A = softmax(Z)`` is
one map shared by all heads. CLIP's last-block values (``ln_1`` + in_proj v, class token
dropped) are resized bilinearly to the VFM grid, and ``out_proj(A v)`` goes to ``ln_post`` and
the projection: no residual, no MLP. The dense output lies on the VFM grid.

Ours, not the official code's [adaptation]: the mean of ``S`` is taken per image by default
(the official ``torch.mean`` spans the batch; ``mean_scope="batch"`` reproduces it); a row
whose every entry would be masked keeps its diagonal instead of becoming NaN (spec pitfall
9; never the case for real DINO features); an input side that is not a multiple of the
VFM's patch is resized to the nearest multiple for the VFM only (the official crops are
padded to multiples of 56).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ....described import option
from ....promptable import VisionOutput
from ....vfm import PROXIES, ExtraModel, ProxyVfm, ensure_available, load_proxy, proxy_status
from .. import vision
from ..trunks.base import merge_heads, split_heads
from .base import DenseMethod, MethodOptions
from .registry import register

MEAN_SCOPES = (("each image", "image"), ("whole batch (official)", "batch"))
_PROXY_CHOICES = (("DINO ViT-B/16", "dino-b16"), ("DINO ViT-B/8", "dino-b8"),
                  ("DINOv2 ViT-B/14 + registers", "dinov2-b14-reg"))


@dataclass(frozen=True)
class ProxyclipOptions(MethodOptions):
    """ProxyCLIP's proxy and its attention (official defaults: β = 1.2, γ = 3)."""

    proxy: str = option("dino-b16", kind="choice", label="proxy model", choices=_PROXY_CHOICES,
                        help="ProxyCLIP: the vision foundation model whose patch similarities "
                        "form the attention (from Python also any timm model name)")
    # A text option (the form's text field, the --proxy-weights flag): its parsed text
    # arrives as a tuple and is joined back into one path below.
    proxy_weights: str | None = option(
        None, kind="texts", label="proxy weights file", example=("dino_vitb16.pth",), noun="file path",
        help="ProxyCLIP: a timm state dict file for the proxy (empty: timm's pretrained "
        "weights from the Hugging Face cache)")
    beta: float = option(1.2, kind="float", label="β (mean shift)", minimum=0.0, maximum=3.0, step=0.1,
                         help="ProxyCLIP: similarities below β × their mean are masked out")
    gamma: float = option(3.0, kind="float", label="γ (sharpness)", minimum=0.1, maximum=20.0, step=0.5,
                          help="ProxyCLIP: scale of the shifted similarities before the softmax")
    mean_scope: str = option("image", kind="choice", label="similarity mean over", choices=MEAN_SCOPES,
                             help="ProxyCLIP: the mean of the similarities per image (a result never "
                             "depends on its batch) or over the whole batch, as the official code")

    def __post_init__(self) -> None:
        if not isinstance(self.proxy, str) or not self.proxy.strip():
            raise ValueError(f"proxy must be one of {', '.join(PROXIES)} or a timm model name; "
                             f"got {self.proxy!r}")
        object.__setattr__(self, "proxy_weights", _one_path(self.proxy_weights))
        for name, low in (("beta", 0.0), ("gamma", None)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) \
                    or not (value >= 0 if low == 0.0 else value > 0) or value == float("inf"):
                kind = "a number >= 0" if low == 0.0 else "a positive number"
                raise ValueError(f"{name} must be {kind}; got {value!r}")
        if self.mean_scope not in ("image", "batch"):
            raise ValueError(f"mean_scope must be image or batch; got {self.mean_scope!r}")


def _one_path(value) -> str | None:
    """A path from a string, a path-like, or the text parts a form or flag gives; "" is None."""
    if isinstance(value, (tuple, list)):
        value = ",".join(str(part) for part in value)  # the parts were split at commas
    if value is None:
        return None
    try:
        text = os.fspath(value)
    except TypeError:
        raise ValueError(f"proxy_weights must be a file path or None; got {value!r}") from None
    return str(text).strip() or None


def proxy_attention(features: torch.Tensor, beta: float, gamma: float,
                    mean_scope: str = "image") -> torch.Tensor:
    """ProxyCLIP's attention ``[B, IJ, IJ]`` from VFM patch features ``[B, C, I, J]`` (spec §2.1)."""
    unit = F.normalize(features.flatten(2), dim=1)  # [B, C, IJ], cosine over channels
    similarity = unit.transpose(1, 2) @ unit  # [B, IJ, IJ]
    # "batch": the official torch.mean, over every image of the batch
    mean = similarity.mean(dim=(-2, -1), keepdim=True) if mean_scope == "image" else similarity.mean()
    logits = (similarity - beta * mean) * gamma
    masked = logits < 0  # strict: a zero logit is kept
    empty = masked.all(dim=-1, keepdim=True)
    if bool(empty.any()):  # would be NaN: keep the diagonal [adaptation]
        eye = torch.eye(masked.shape[-1], dtype=torch.bool, device=masked.device)
        masked = masked & ~(empty & eye)
    return logits.masked_fill(masked, float("-inf")).softmax(dim=-1)


def values_on_grid(values: torch.Tensor, clip_grid: tuple[int, int],
                   vfm_grid: tuple[int, int]) -> torch.Tensor:
    """CLIP's patch values ``[B, gh*gw, D]`` resized bilinearly (align_corners=False, no
    antialias) to the VFM grid: ``[B, I*J, D]``."""
    batch, _, width = values.shape
    if tuple(clip_grid) == tuple(vfm_grid):
        return values
    image = values.transpose(1, 2).reshape(batch, width, *clip_grid)
    resized = F.interpolate(image, size=tuple(vfm_grid), mode="bilinear", align_corners=False)
    return resized.flatten(2).transpose(1, 2)


def proxy_pixels(vfm: ProxyVfm, pixels: torch.Tensor) -> torch.Tensor:
    """The crop as the VFM sees it: ImageNet-normalised, sides multiples of its patch."""
    converted = vfm.pixels_from_clip(pixels.float())
    patch = vfm.patch_size
    size = tuple(max(patch, round(side / patch) * patch) for side in pixels.shape[-2:])
    if size != tuple(pixels.shape[-2:]):  # [adaptation]: the official crops are multiples of 56
        converted = F.interpolate(converted, size=size, mode="bilinear", align_corners=False,
                                  antialias=True)
    return converted.to(next(vfm.module.parameters()).dtype)  # rounded once, after re-normalising


@register
class Proxyclip(DenseMethod):
    name = "proxyclip"
    title = "ProxyCLIP"
    summary = ("last block: attention from a proxy model's patch similarities (DINO, DINOv2) on "
               "CLIP's values; no residual and no MLP; needs the proxy's weights")
    provenance = ("Lan et al., ECCV 2024; official code github.com/mc-lan/ProxyCLIP e7b767f, "
                  "open_clip/transformer.py L503-586, proxyclip_segmentor.py L30-184")
    Options = ProxyclipOptions
    needs_extra_weights = True

    def __init__(self, options: MethodOptions | None = None, **values) -> None:
        super().__init__(options, **values)
        # Offline, say so now (within seconds), before a CLIP is built or an image encoded.
        ensure_available(self.options.proxy, self.options.proxy_weights)

    @classmethod
    def extra_model(cls) -> ExtraModel:
        return proxy_status(cls.Options().proxy)

    def proxy_for(self, visual) -> ProxyVfm:
        """The shared proxy VFM on the CLIP tower's device and in its dtype."""
        weight = vision.as_trunk(visual).parameter
        return load_proxy(self.options.proxy, self.options.proxy_weights,
                          device=weight.device, dtype=weight.dtype)

    def check_model(self, visual: nn.Module) -> None:
        self.proxy_for(visual)  # built (or its weights refused) when the model is loaded

    def forward(self, visual, pixels: torch.Tensor, *,
                with_clip_embedding: bool = True) -> VisionOutput:
        visual = vision.as_trunk(visual)
        vfm = self.proxy_for(visual)
        features = vfm.patch_features(proxy_pixels(vfm, pixels))  # [B, C, I, J]
        vfm_grid = tuple(features.shape[-2:])
        options = self.options
        attention = proxy_attention(features, options.beta, options.gamma, options.mean_scope)

        grid = vision.patch_grid(visual, pixels)
        rope = visual.rope(grid)
        tokens = vision.embed(visual, pixels, self.position_resampling)  # SCLIP-family rule, §1.2
        x, _ = vision.run_trunk(visual, tokens, len(visual.blocks) - 1, rope=rope)
        last = visual.blocks[-1]
        q, k, v = last.qkv(last.norm_in(x), rope)
        values = values_on_grid(merge_heads(v)[:, visual.prefix_count:], grid, vfm_grid)
        # One attention shared by all heads: applied to the merged values, then split back.
        attended = split_heads(attention.to(values.dtype) @ values, last.num_heads)
        tokens = last.project_out(attended)
        dense = F.normalize(vision.project(visual, tokens), dim=-1)
        dense = dense.reshape(dense.shape[0], *vfm_grid, -1)
        embedding = None
        if with_clip_embedding:
            embedding = vision.clip_embedding(visual, vision.attention_update(last, x, q, k, v))
        return VisionOutput(dense, embedding)
