"""open_clip's own ``VisionTransformer`` and blocks with a combined q/k/v projection.

A block qualifies by its parameters (``attn.in_proj_weight``, ``attn.in_proj_bias``,
``attn.out_proj``), not by its attention class, so today's ``nn.MultiheadAttention``
and open_clip's own attention class (same parameter names) both work.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ....errors import UnsupportedModelError
from .base import TrunkBlock, VisionTrunk, merge_heads, split_heads, square_grid


def is_combined_projection_block(block: nn.Module) -> bool:
    attn = getattr(block, "attn", None)
    return (isinstance(getattr(attn, "in_proj_weight", None), torch.Tensor)
            and isinstance(getattr(attn, "out_proj", None), nn.Linear)
            and all(hasattr(block, name) for name in ("ln_1", "ln_2", "mlp")))


class CombinedProjectionBlock(TrunkBlock):
    """open_clip's ``ResidualAttentionBlock``: ``ln_1``, ``attn.in_proj_*``, ``ls_1``, ``ln_2``,
    ``mlp``, ``ls_2``."""

    def __init__(self, block: nn.Module, index: int) -> None:
        attn = block.attn
        problems = []
        if getattr(attn, "in_proj_bias", None) is None:
            problems.append("no q/k/v bias")
        if hasattr(block, "ln_1_kv"):
            problems.append("cross-attention norm")
        for extra in ("logit_scale", "head_scale"):  # scaled-cosine attention, head scaling
            if getattr(attn, extra, None) is not None:
                problems.append(extra)
        for norm in ("ln_inner", "ln_q", "ln_k"):
            if not isinstance(getattr(attn, norm, nn.Identity()), nn.Identity):
                problems.append(norm)
        if not isinstance(getattr(attn, "num_heads", None), int):
            problems.append("no num_heads")
        if problems or attn.in_proj_weight.shape[0] != 3 * attn.out_proj.weight.shape[0]:
            raise UnsupportedModelError(
                f"block {index} of this ViT is not a standard residual attention block "
                f"({type(block).__name__}: {', '.join(problems) or 'q/k/v shapes'}); "
                "only the plain CLIP ViT blocks are supported."
            )
        self.block = block
        self.num_heads = attn.num_heads

    def norm_in(self, x):
        return self.block.ln_1(x)

    def qkv(self, normed, rope=None):
        attn = self.block.attn
        packed = F.linear(normed, attn.in_proj_weight, attn.in_proj_bias)
        q, k, v = (split_heads(part, attn.num_heads) for part in packed.chunk(3, dim=-1))
        return q, k, v

    def project_out(self, heads_out):
        return self.block.ls_1(self.block.attn.out_proj(merge_heads(heads_out)))

    def feed_forward(self, x, fc2_weight=None):
        block = self.block
        if fc2_weight is None:
            return x + block.ls_2(block.mlp(block.ln_2(x)))
        mlp = block.mlp
        hidden = mlp.gelu(mlp.c_fc(block.ln_2(x)))
        return x + block.ls_2(F.linear(hidden, fc2_weight, mlp.c_proj.bias))

    @property
    def fc2_weight(self):
        return self.block.mlp.c_proj.weight


def is_open_clip_vit(visual: nn.Module) -> bool:
    return all(hasattr(visual, name) for name in
               ("conv1", "class_embedding", "positional_embedding", "ln_pre", "transformer"))


class OpenClipVisionTrunk(VisionTrunk):
    """open_clip's ``VisionTransformer``: class token, ``ln_pre``, blocks, ``ln_post`` and ``proj``."""

    kind = "open_clip ViT"
    has_class_token = True
    prefix_count = 1

    def __init__(self, visual: nn.Module) -> None:
        if getattr(visual, "attn_pool", None) is not None:
            raise UnsupportedModelError(
                "dense methods need a ViT without attentional pooling (CoCa-style towers are not supported)."
            )
        if getattr(visual, "pool_type", "tok") not in ("tok", "avg"):
            raise UnsupportedModelError(f"unsupported ViT pooling {visual.pool_type!r}.")
        self.module = visual
        self.blocks = []
        for index, block in enumerate(visual.transformer.resblocks):
            if not is_combined_projection_block(block):
                raise UnsupportedModelError(
                    f"block {index} of this ViT is not a standard residual attention block "
                    f"({type(block).__name__}); only the plain CLIP ViT blocks are supported."
                )
            self.blocks.append(CombinedProjectionBlock(block, index))

    @property
    def patch_size(self):
        return tuple(int(p) for p in self.module.patch_size)

    @property
    def native_size(self):
        return int(self.module.image_size[0])

    @property
    def output_dim(self):
        return int(self.module.output_dim)

    @property
    def parameter(self):
        return self.module.conv1.weight

    def position_table(self):
        table = self.module.positional_embedding
        return table, 1, square_grid(table.shape[0] - 1)

    def embed(self, pixels, position):
        visual = self.module
        tokens = visual.conv1(pixels).flatten(2).transpose(1, 2)  # [B, gh*gw, D]
        cls = visual.class_embedding.to(tokens.dtype).view(1, 1, -1).expand(tokens.shape[0], 1, -1)
        tokens = torch.cat([cls, tokens], dim=1)
        return visual.ln_pre(tokens + position.to(tokens.dtype))

    def _project(self, tokens):
        # ln_post and the projection in float32: a half-precision model's features would
        # otherwise keep about three significant digits, enough to move Otsu thresholds.
        visual = self.module
        norm = visual.ln_post
        tokens = F.layer_norm(tokens.float(), norm.normalized_shape, _float(norm.weight),
                              _float(norm.bias), norm.eps)
        return tokens @ visual.proj.float() if visual.proj is not None else tokens

    def head_tokens(self, tokens):
        return self._project(tokens)

    def pooled(self, tokens):
        pooled = tokens[:, 1:].mean(dim=1) if self.module.pool_type == "avg" else tokens[:, 0]
        return self._project(pooled)


def _float(parameter):
    return None if parameter is None else parameter.float()
