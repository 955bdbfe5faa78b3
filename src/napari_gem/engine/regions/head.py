"""CorrCLIP's "lite" head on any CLIP trunk: the last block's attention restricted to regions
(shared/docs/vfm-methods-spec.md §3.2-3.3), in place of the method's own last block.

Per crop: DINO's last-block ``qkv`` output on ``norm1(x)`` gives ``g = q + k`` (all heads, no
scaling, class token and registers dropped), unit length per patch, on the VFM's patch
grid. The regions are sampled onto that grid with the legacy nearest rule. CLIP runs its
blocks 0..L-2 unchanged (SCLIP-family position rule, §1.2); the last block's values
(``ln_1`` + in_proj v, prefix dropped) are resized bilinearly to the VFM grid and
``out_proj(A v)`` goes to ``ln_post`` and the projection: no residual, no MLP (as
ProxyCLIP). The dense output lies on the VFM grid. The CLIP image embedding (for presence
scores) comes from the plain last block.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from ..families.clip import vision
from ..families.clip.methods.proxyclip import proxy_pixels, values_on_grid
from ..families.clip.trunks.base import merge_heads, split_heads
from ..promptable import VisionOutput
from ..vfm import ProxyVfm
from .attention import EPS, TAU, region_attention
from .grids import resize_nearest


def query_key_features(vfm: ProxyVfm, pixels: torch.Tensor) -> torch.Tensor:
    """DINO's last-block ``q + k`` per patch, unit length: ``[B, I, J, C]`` (spec §3.2).

    ``pixels`` are CLIP-normalised; the VFM gets them re-normalised (spec §1.1).
    """
    captured: list[torch.Tensor] = []
    qkv = vfm.module.blocks[-1].attn.qkv  # CorrCLIP's forward hook (corrclip_segmentor.py L68-69)
    handle = qkv.register_forward_hook(lambda _module, _inputs, output: captured.append(output))
    try:
        grid = vfm.patch_features(proxy_pixels(vfm, pixels)).shape[-2:]
    finally:
        handle.remove()
    output = captured[-1]
    width = output.shape[-1] // 3
    summed = output[..., :width] + output[..., width:2 * width]
    patches = summed[:, vfm.module.num_prefix_tokens:]
    return F.normalize(patches, dim=-1).reshape(patches.shape[0], *grid, width)


def region_dense(visual, vfm: ProxyVfm, pixels: torch.Tensor, masks: np.ndarray, *,
                 unsegmented: int | None = 0, tau: float = TAU, eps: float = EPS, merge: bool = True,
                 with_clip_embedding: bool = True) -> VisionOutput:
    """Region-consistent dense features ``[B, I, J, E]`` of CLIP-normalised ``pixels``
    ``[B, 3, H, W]`` with region labels ``masks`` ``[B, H, W]`` (integers, at the pixels' size)."""
    visual = vision.as_trunk(visual)
    masks = np.asarray(masks)
    if masks.shape != (pixels.shape[0], *pixels.shape[-2:]):
        raise ValueError(f"region masks {masks.shape} do not match pixels {tuple(pixels.shape)}")
    unit = query_key_features(vfm, pixels)  # [B, I, J, C]
    vfm_grid = tuple(unit.shape[1:3])
    attention = torch.stack([
        region_attention(features.flatten(0, 1),
                         torch.as_tensor(resize_nearest(mask, vfm_grid), device=unit.device).flatten(),
                         unsegmented, tau, eps, merge)
        for features, mask in zip(unit, masks, strict=True)
    ])

    grid = vision.patch_grid(visual, pixels)
    rope = visual.rope(grid)
    tokens = vision.embed(visual, pixels, "scale_factor")
    x, _ = vision.run_trunk(visual, tokens, len(visual.blocks) - 1, rope=rope)
    last = visual.blocks[-1]
    q, k, v = last.qkv(last.norm_in(x), rope)
    values = values_on_grid(merge_heads(v)[:, visual.prefix_count:], grid, vfm_grid)
    attended = split_heads(attention.to(values.dtype) @ values, last.num_heads)
    dense = F.normalize(vision.project(visual, last.project_out(attended)), dim=-1)
    dense = dense.reshape(dense.shape[0], *vfm_grid, -1)
    embedding = None
    if with_clip_embedding:
        embedding = vision.clip_embedding(visual, vision.attention_update(last, x, q, k, v))
    return VisionOutput(dense, embedding)
