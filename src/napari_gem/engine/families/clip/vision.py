"""Building blocks for running an open_clip ``VisionTransformer`` by hand.

Every dense method (GEM, NACLIP, SCLIP, ...) runs the same trunk: patch embedding,
position embedding, ``ln_pre``, blocks, ``ln_post`` and projection. The maths runs on
an explicit batch-first token layout ``[B, N, D]`` (class token first) and reads the
block weights directly; open_clip's own ``forward`` is never patched, so the wrapped
model stays usable as an ordinary CLIP model. See ``docs/how-gem-works.md``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import torch
import torch.nn.functional as F
from torch import nn

from ...errors import UnsupportedModelError


def check_supported_visual(visual: nn.Module) -> None:
    """Raise :class:`UnsupportedModelError` unless ``visual`` is a standard open_clip ViT."""
    from open_clip.transformer import ResidualAttentionBlock, VisionTransformer

    kind = type(visual).__name__
    if not isinstance(visual, VisionTransformer):
        raise UnsupportedModelError(
            f"dense methods need a vision transformer, but this CLIP's image tower is a {kind} "
            "(ResNet, ConvNeXt and timm towers are not supported). "
            "Choose a ViT model such as ViT-B-16."
        )
    if getattr(visual, "attn_pool", None) is not None:
        raise UnsupportedModelError(
            "dense methods need a ViT without attentional pooling (CoCa-style towers are not supported)."
        )
    if getattr(visual, "pool_type", "tok") not in ("tok", "avg"):
        raise UnsupportedModelError(f"unsupported ViT pooling {visual.pool_type!r}.")
    for index, block in enumerate(visual.transformer.resblocks):
        standard = (
            isinstance(block, ResidualAttentionBlock)
            and isinstance(block.attn, nn.MultiheadAttention)
            and block.attn.in_proj_weight is not None
            and block.attn.in_proj_bias is not None
            and not hasattr(block, "ln_1_kv")
        )
        if not standard:
            raise UnsupportedModelError(
                f"block {index} of this ViT is not a standard residual attention block "
                f"({type(block).__name__}); only the plain CLIP ViT blocks are supported."
            )


def patch_grid(visual: nn.Module, pixels: torch.Tensor) -> tuple[int, int]:
    """The patch grid of ``pixels``; refuses sizes that are not multiples of the patch."""
    patch_h, patch_w = visual.patch_size
    height, width = pixels.shape[-2:]
    if height % patch_h or width % patch_w:
        raise ValueError(
            f"image size {height}x{width} is not a multiple of the patch size {patch_h}x{patch_w}"
        )
    return height // patch_h, width // patch_w


# -- position embeddings ----------------------------------------------------------------
#: How a method resamples the pretrained position embedding to another patch grid.
#: ``exact``: to the exact grid, bicubic with antialias (GEM's code).
#: ``scale_factor``: bicubic by the scale factor ``(g + 0.1) / side`` without antialias,
#: DINO's trick as in the SCLIP, ClearCLIP and NACLIP code (methods-spec §1.7).
POSITION_RESAMPLING = ("exact", "scale_factor")


def resampled_position_embedding(
    visual: nn.Module, grid: tuple[int, int], resampling: str = "exact"
) -> torch.Tensor:
    """Position embedding for a patch grid, ``[1, 1 + gh*gw, D]``.

    The pretrained patch part is treated as a square image and resampled bicubically;
    the class token's row is put back in front unchanged.
    """
    table = visual.positional_embedding
    prefix, patches = table[:1], table[1:]
    old_side = int(round(math.sqrt(patches.shape[0])))
    square = patches.reshape(1, old_side, old_side, -1).permute(0, 3, 1, 2).float()
    if resampling == "exact":
        if (old_side, old_side) == tuple(grid):
            return table.unsqueeze(0)
        resized = F.interpolate(square, size=grid, mode="bicubic", antialias=True)
    elif resampling == "scale_factor":
        if (old_side, old_side) == tuple(grid):  # the official code's "npatch == N and w == h"
            return table.unsqueeze(0)
        factors = ((grid[0] + 0.1) / old_side, (grid[1] + 0.1) / old_side)
        resized = F.interpolate(square, scale_factor=factors, mode="bicubic",
                                recompute_scale_factor=False)
    else:
        raise ValueError(f"position resampling must be one of {POSITION_RESAMPLING}; got {resampling!r}")
    resized = resized.to(table.dtype).permute(0, 2, 3, 1).reshape(1, grid[0] * grid[1], -1)
    return torch.cat([prefix.unsqueeze(0), resized], dim=1)


_POSITION_CACHE_ATTR = "_napari_gem_position_cache"


def position_embedding_cached(
    visual: nn.Module, grid: tuple[int, int], resampling: str = "exact"
) -> torch.Tensor:
    """:func:`resampled_position_embedding`, memoised per grid and resampling on the model."""
    table = visual.positional_embedding
    cache = visual.__dict__.setdefault(_POSITION_CACHE_ATTR, {})
    key = (grid, resampling, table.dtype, table.device, table._version)
    if key not in cache:
        if len(cache) >= 8:
            cache.clear()
        with torch.no_grad():
            cache[key] = resampled_position_embedding(visual, grid, resampling)
    return cache[key]


# -- tokens and blocks ------------------------------------------------------------------
def embed(visual: nn.Module, pixels: torch.Tensor, resampling: str = "exact") -> torch.Tensor:
    """Tokens ``[B, 1 + gh*gw, D]`` entering the first block (class token first, row-major)."""
    grid = patch_grid(visual, pixels)
    patches = visual.conv1(pixels)  # [B, D, gh, gw]
    tokens = patches.flatten(2).transpose(1, 2)
    cls = visual.class_embedding.to(tokens.dtype).view(1, 1, -1).expand(tokens.shape[0], 1, -1)
    tokens = torch.cat([cls, tokens], dim=1)
    tokens = tokens + position_embedding_cached(visual, grid, resampling).to(tokens.dtype)
    return visual.ln_pre(tokens)


def split_heads(tokens: torch.Tensor, heads: int) -> torch.Tensor:
    """``[B, N, D]`` -> ``[B, h, N, D/h]`` (a contiguous split of D, as nn.MultiheadAttention)."""
    batch, count, width = tokens.shape
    return tokens.view(batch, count, heads, width // heads).transpose(1, 2)


def merge_heads(tokens: torch.Tensor) -> torch.Tensor:
    """``[B, h, N, d]`` -> ``[B, N, h*d]``."""
    batch, heads, count, head_width = tokens.shape
    return tokens.transpose(1, 2).reshape(batch, count, heads * head_width)


def qkv(block: nn.Module, normed: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The block's own q, k, v ``[B, h, N, d]`` of ``normed = ln_1(x)``."""
    attn = block.attn
    packed = F.linear(normed, attn.in_proj_weight, attn.in_proj_bias)
    q, k, v = (split_heads(part, attn.num_heads) for part in packed.chunk(3, dim=-1))
    return q, k, v


def project_out(block: nn.Module, heads_out: torch.Tensor) -> torch.Tensor:
    """Heads merged, the block's output projection and layer-scale 1."""
    return block.ls_1(block.attn.out_proj(merge_heads(heads_out)))


def feed_forward(block: nn.Module, x: torch.Tensor,
                 c_proj_weight: torch.Tensor | None = None) -> torch.Tensor:
    """``x + ls_2(mlp(ln_2(x)))``, optionally with a replacement ``mlp.c_proj`` weight."""
    if c_proj_weight is None:
        return x + block.ls_2(block.mlp(block.ln_2(x)))
    mlp = block.mlp
    hidden = mlp.gelu(mlp.c_fc(block.ln_2(x)))
    return x + block.ls_2(F.linear(hidden, c_proj_weight, mlp.c_proj.bias))


#: PyTorch's CPU flash attention in bf16 is about twice as slow when the key count is
#: not a multiple of 4 (measured per [36, N, 64] call: 785 or 786 keys 40 ms, 788 keys
#: 22 ms, 800 keys 19 ms). 448² gives 785 tokens, so in bf16 on the CPU the keys are
#: padded to a multiple of 16 and the padding is masked: the same result (masked keys
#: get probability exactly 0) at the fast kernel's speed.
_PADDED_KEY_MULTIPLE = 16


def attention(queries: torch.Tensor, keys: torch.Tensor, values: torch.Tensor, *,
              scale: float | None = None, bias: torch.Tensor | None = None) -> torch.Tensor:
    """``softmax(queries keysᵀ · scale (+ bias)) values`` ``[..., N, d]``, never materialised.

    ``scale`` defaults to ``1/√d``; ``bias`` is an additive float logit bias or a boolean
    mask (True: attend), ``[N, N]`` or broadcastable to it. On the CPU in bf16 the keys
    are padded and masked (see above).
    """
    count = keys.shape[-2]
    padding = -count % _PADDED_KEY_MULTIPLE
    if padding and keys.dtype == torch.bfloat16 and keys.device.type == "cpu":
        same = values is keys  # GEM's rounds attend normalised keys to themselves: pad once
        keys = F.pad(keys, (0, 0, 0, padding))
        values = keys if same else F.pad(values, (0, 0, 0, padding))
        if bias is None:
            bias = (torch.arange(count + padding, device=keys.device) < count).view(1, -1)  # True: attend
        else:
            masked = False if bias.dtype == torch.bool else float("-inf")
            bias = F.pad(bias.expand(*bias.shape[:-1], count), (0, padding), value=masked)
    return F.scaled_dot_product_attention(queries, keys, values, attn_mask=bias, scale=scale)


def attention_update(block: nn.Module, x: torch.Tensor, q, k, v) -> torch.Tensor:
    """CLIP's own residual block given its q, k, v (attention, residual, MLP)."""
    return feed_forward(block, x + project_out(block, attention(q, k, v)))


def block_update(block: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """One unmodified residual block on ``[B, N, D]`` tokens."""
    return attention_update(block, x, *qkv(block, block.ln_1(x)))


def attention_probabilities(queries: torch.Tensor, keys: torch.Tensor, scale: float,
                            bias: torch.Tensor | None = None) -> torch.Tensor:
    """Explicit ``softmax(queries keysᵀ · scale (+ bias))`` ``[B, h, N, N]``."""
    logits = (queries @ keys.transpose(-2, -1)) * scale
    if bias is not None:
        logits = logits + bias
    return logits.softmax(dim=-1)


def run_trunk(visual: nn.Module, x: torch.Tensor, stop: int, *, start: int = 0,
              record: Iterable[int] = (), c_proj_weights: dict[int, torch.Tensor] | None = None,
              ) -> tuple[torch.Tensor, dict[int, torch.Tensor]]:
    """Blocks ``start .. stop-1`` unchanged, recording ``softmax(q kᵀ/√d)`` of blocks in ``record``.

    ``c_proj_weights`` replaces the MLP output weight of some blocks for this pass
    only (the model's own weights are never touched).
    """
    record = set(record)
    c_proj_weights = c_proj_weights or {}
    recorded: dict[int, torch.Tensor] = {}
    blocks = list(visual.transformer.resblocks)
    for index, block in enumerate(blocks[start:stop], start=start):
        q, k, v = qkv(block, block.ln_1(x))
        if index in record:
            recorded[index] = attention_probabilities(q, k, q.shape[-1] ** -0.5)
            attended = recorded[index] @ v
        else:
            attended = attention(q, k, v)
        x = feed_forward(block, x + project_out(block, attended), c_proj_weights.get(index))
    return x, recorded


def project(visual: nn.Module, tokens: torch.Tensor) -> torch.Tensor:
    """``ln_post`` then the visual projection (into the joint embedding space), in float32.

    A half-precision model's features would otherwise keep only about three significant
    digits, enough to move Otsu thresholds; this last step costs next to nothing.
    """
    norm = visual.ln_post
    tokens = F.layer_norm(tokens.float(), norm.normalized_shape, _float(norm.weight),
                          _float(norm.bias), norm.eps)
    return tokens @ visual.proj.float() if visual.proj is not None else tokens


def _float(parameter: torch.Tensor | None) -> torch.Tensor | None:
    return None if parameter is None else parameter.float()


def dense_output(visual: nn.Module, tokens: torch.Tensor, grid: tuple[int, int]) -> torch.Tensor:
    """L2-normalised projected patch tokens of ``tokens`` (class token dropped), ``[B, gh, gw, E]``."""
    dense = F.normalize(project(visual, tokens[:, 1:]), dim=-1)
    return dense.reshape(dense.shape[0], grid[0], grid[1], -1)


def clip_embedding(visual: nn.Module, tokens: torch.Tensor) -> torch.Tensor:
    """The ordinary CLIP image embedding ``[B, E]`` (L2-normalised) of last-block tokens."""
    pooled = tokens[:, 1:].mean(dim=1) if visual.pool_type == "avg" else tokens[:, 0]
    return F.normalize(project(visual, pooled), dim=-1)
