"""Talk2DINO's image side for one batch of crops (shared/docs/talk2dino-spec.md §3).

- pixels: the crop resized to 448×448 (bilinear, antialiased), ImageNet-normalised;
- patch tokens: DINOv2's last-layer tokens after the final LayerNorm, class token and
  registers removed;
- class attention: the last block's class-token query times each patch key, times 0.125
  (hard-coded officially, whatever the head width), raw logits with no softmax;
- the mask ``sigmoid(cos)``, optionally cleaned with the class-attention heads, resized
  back to the crop with ``align_corners=True``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ...vfm import ProxyVfm

#: ``normalize`` eps of the patch tokens and the projected text (dinotext.py L281).
NORM_EPS = 1e-6


@dataclass
class CropTokens:
    """Raw final-norm patch tokens ``[B, N, D]``, their grid, and class attention ``[B, H, N]``."""

    patches: torch.Tensor
    grid: tuple[int, int]
    class_attention: torch.Tensor | None


def backbone_pixels(vfm: ProxyVfm, pixels: torch.Tensor, size: int) -> torch.Tensor:
    """CLIP-normalised crops as DINOv2 sees them: ImageNet-normalised, ``size``×``size``.

    Resizing commutes with the per-channel normalisation, so resizing the normalised
    crop equals the official resize of the 0..255 crop followed by normalisation.
    """
    converted = vfm.pixels_from_clip(pixels)
    if tuple(converted.shape[-2:]) != (size, size):
        converted = F.interpolate(converted, size=(size, size), mode="bilinear",
                                  align_corners=False, antialias=True)
    return converted


def crop_tokens(vfm: ProxyVfm, pixels: torch.Tensor, *, attention_scale: float | None) -> CropTokens:
    """Patch tokens of backbone-ready ``pixels``, and the class attention when
    ``attention_scale`` is given (the last block's qkv, read beside the block's own pass)."""
    module = vfm.module
    x, grid = vfm.input_tokens(pixels)
    for block in module.blocks[:-1]:
        x = block(x)
    last = module.blocks[-1]
    attention = None
    if attention_scale is not None:
        attention = class_attention(last, x, module.num_prefix_tokens, attention_scale)
    x = module.norm(last(x))
    return CropTokens(x[:, module.num_prefix_tokens:], grid, attention)


def class_attention(block, x: torch.Tensor, prefix: int, scale: float) -> torch.Tensor:
    """``q_cls · k_n × scale`` per head ``[B, H, N]`` from ``block.attn.qkv`` (dinotext.py
    L122, L135, L148-158): only the class query and the patch keys are computed."""
    attn = block.attn
    width = x.shape[-1]
    heads = attn.num_heads
    hidden = block.norm1(x)
    weight, bias = attn.qkv.weight, attn.qkv.bias
    query = F.linear(hidden[:, 0], weight[:width], None if bias is None else bias[:width])
    keys = F.linear(hidden[:, prefix:], weight[width:2 * width],
                    None if bias is None else bias[width:2 * width])
    query = query.reshape(x.shape[0], heads, -1)  # [B, H, d]
    keys = keys.reshape(x.shape[0], keys.shape[1], heads, -1)  # [B, N, H, d]
    return torch.einsum("bhd,bnhd->bhn", query, keys) * scale


def clean_background(mask: torch.Tensor, tokens: torch.Tensor, attention: torch.Tensor,
                     text: torch.Tensor, weight: float) -> torch.Tensor:
    """The background cleaning of one image (``similarity_assignment_weighted``, L372-398).

    ``mask [P, N]`` (sigmoid of the cosine), raw ``tokens [N, D]``, class attention
    ``attn [H, N]`` (logits), unit ``text [P, D]``, ``weight`` = λ.
    """
    heads = (attention[:, :, None] * tokens[None]).mean(dim=1)  # [H, D], logit-weighted mean
    heads = heads / heads.norm(dim=-1, keepdim=True)
    head_weights = torch.softmax(text @ heads.T, dim=-1)  # [P, H]
    cleaned = (head_weights @ attention) / head_weights.sum(dim=-1, keepdim=True)  # [P, N]
    cleaned = torch.softmax(cleaned, dim=-1)
    low, high = cleaned.min(), cleaned.max()  # global over prompts and patches
    cleaned = (cleaned - low) / torch.maximum(high, high - low)
    cleaned = cleaned * (mask.max() - mask.min()) + mask.min()
    return (mask + weight * cleaned) / (1 + weight)


def crop_masks(tokens: CropTokens, text: torch.Tensor, size: tuple[int, int], *,
               cleaning_weight: float | None) -> torch.Tensor:
    """Masks ``[B, P, h, w]`` of the crops at their own ``size``: ``sigmoid(cos)``, cleaned
    when ``cleaning_weight`` is given, resized with ``align_corners=True`` (L362-366)."""
    text = text.to(tokens.patches.dtype)
    unit = F.normalize(tokens.patches, dim=-1, eps=NORM_EPS)
    masks = torch.sigmoid(unit @ text.T).transpose(1, 2)  # [B, P, N]
    if cleaning_weight is not None:
        masks = torch.stack([
            clean_background(mask, patches, attention, text, cleaning_weight)
            for mask, patches, attention in zip(masks, tokens.patches, tokens.class_attention,
                                                strict=True)])
    grids = masks.reshape(*masks.shape[:2], *tokens.grid)
    return F.interpolate(grids, size=tuple(size), mode="bilinear", align_corners=True)
