"""Building blocks for running a CLIP ViT by hand, on any trunk the adapters know.

Every dense method (GEM, NACLIP, SCLIP, ...) runs the same trunk: patch embedding,
position embedding, the blocks, and the head. The maths runs on an explicit batch-first
token layout ``[B, N, D]`` (prefix tokens first: class token, registers) and reads the
block weights through the trunk adapter (:mod:`.trunks`); the model's own ``forward`` is
never patched, so the wrapped model stays usable as an ordinary CLIP model. Every
function takes either an adapter or the library's own module (open_clip's
``VisionTransformer`` or one of its blocks, a timm ViT, ...). See ``docs/how-gem-works.md``.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
import torch.nn.functional as F
from torch import nn

from ...preprocess import renormalised
from .trunks import (  # noqa: F401  (re-exported)
    POSITION_RESAMPLING,
    TrunkBlock,
    VisionTrunk,
    as_block,
    as_trunk,
    merge_heads,
    resample_table,
    split_heads,
)

Trunk = nn.Module | VisionTrunk
Block = nn.Module | TrunkBlock

__all__ = ["POSITION_RESAMPLING", "as_block", "as_trunk"]


def check_supported_visual(visual: nn.Module) -> None:
    """Raise :class:`UnsupportedModelError` unless an adapter fits ``visual``."""
    as_trunk(visual)


def patch_grid(visual: Trunk, pixels: torch.Tensor) -> tuple[int, int]:
    """The patch grid of ``pixels``; refuses sizes that are not multiples of the patch."""
    patch_h, patch_w = as_trunk(visual).patch_size
    height, width = pixels.shape[-2:]
    if height % patch_h or width % patch_w:
        raise ValueError(
            f"image size {height}x{width} is not a multiple of the patch size {patch_h}x{patch_w}"
        )
    return height // patch_h, width // patch_w


# -- position embeddings ----------------------------------------------------------------
def resampled_position_embedding(
    visual: Trunk, grid: tuple[int, int], resampling: str = "exact"
) -> torch.Tensor | None:
    """Position embedding for a patch grid, ``[1, P + gh*gw, D]`` (None for RoPE-only trunks).

    The pretrained patch part is treated as an image of its own grid and resampled by the
    method's rule (bicubic), or the model's own where its authors define one (PE: bilinear);
    the prefix rows (class token) are put back in front unchanged.
    """
    trunk = as_trunk(visual)
    table, prefix_rows, old_grid = trunk.position_table()
    if table is None:
        return None
    return resample_table(table, prefix_rows, old_grid, grid, trunk.own_position_resampling or resampling)


_POSITION_CACHE_ATTR = "_napari_gem_position_cache"


def position_embedding_cached(
    visual: Trunk, grid: tuple[int, int], resampling: str = "exact"
) -> torch.Tensor | None:
    """:func:`resampled_position_embedding`, memoised per grid and resampling on the model."""
    trunk = as_trunk(visual)
    table = trunk.position_table()[0]
    if table is None:
        return None
    resampling = trunk.own_position_resampling or resampling
    cache = trunk.module.__dict__.setdefault(_POSITION_CACHE_ATTR, {})
    key = (grid, resampling, table.dtype, table.device, table._version)
    if key not in cache:
        if len(cache) >= 8:
            cache.clear()
        with torch.no_grad():
            cache[key] = resampled_position_embedding(trunk, grid, resampling)
    return cache[key]


# -- tokens and blocks ------------------------------------------------------------------
def embed(visual: Trunk, pixels: torch.Tensor, resampling: str = "exact") -> torch.Tensor:
    """Tokens ``[B, P + gh*gw, D]`` entering the first block (prefix tokens first, row-major)."""
    trunk = as_trunk(visual)
    grid = patch_grid(trunk, pixels)
    # Pixels arrive CLIP-normalised; models trained with another normalisation (SigLIP, PE)
    # get theirs here, in the one place every method's pixels enter the tower.
    # In float32, then rounded once to the model's precision (bf16 pixels rounded before
    # re-normalising would carry CLIP's rounding through the model's own normalisation).
    wide = pixels.to(torch.promote_types(pixels.dtype, torch.float32))
    pixels = renormalised(wide, *trunk.normalisation).to(trunk.parameter.dtype)
    return trunk.embed(pixels, position_embedding_cached(trunk, grid, resampling))


def rope(visual: Trunk, grid: tuple[int, int]) -> torch.Tensor | None:
    """The trunk's rotary embedding for ``grid`` (None for trunks without RoPE)."""
    return as_trunk(visual).rope(grid)


def qkv(block: Block, normed: torch.Tensor, rope: torch.Tensor | None = None
        ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The block's own q, k, v ``[B, h, N, d]`` of ``normed = norm_in(x)`` (RoPE applied when given)."""
    return as_block(block).qkv(normed, rope)


def norm_in(block: Block, x: torch.Tensor) -> torch.Tensor:
    """The block's pre-attention norm (open_clip's ``ln_1``)."""
    return as_block(block).norm_in(x)


def project_out(block: Block, heads_out: torch.Tensor) -> torch.Tensor:
    """Heads merged, the block's output projection and layer-scale 1."""
    return as_block(block).project_out(heads_out)


def feed_forward(block: Block, x: torch.Tensor,
                 c_proj_weight: torch.Tensor | None = None) -> torch.Tensor:
    """``x + ls_2(mlp(ln_2(x)))``, optionally with a replacement MLP output weight."""
    return as_block(block).feed_forward(x, c_proj_weight)


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


def attention_update(block: Block, x: torch.Tensor, q, k, v) -> torch.Tensor:
    """The model's own residual block given its q, k, v (attention, residual, MLP)."""
    return feed_forward(block, x + project_out(block, attention(q, k, v)))


def block_update(block: Block, x: torch.Tensor, rope: torch.Tensor | None = None) -> torch.Tensor:
    """One unmodified residual block on ``[B, N, D]`` tokens."""
    adapter = as_block(block)
    return attention_update(adapter, x, *adapter.qkv(adapter.norm_in(x), rope))


def attention_probabilities(queries: torch.Tensor, keys: torch.Tensor, scale: float,
                            bias: torch.Tensor | None = None) -> torch.Tensor:
    """Explicit ``softmax(queries keysᵀ · scale (+ bias))`` ``[B, h, N, N]``."""
    logits = (queries @ keys.transpose(-2, -1)) * scale
    if bias is not None:
        logits = logits + bias
    return logits.softmax(dim=-1)


def blocks(visual: Trunk) -> list[TrunkBlock]:
    """The trunk's block adapters, first to last."""
    return as_trunk(visual).blocks


def run_trunk(visual: Trunk, x: torch.Tensor, stop: int, *, start: int = 0,
              record: Iterable[int] = (), c_proj_weights: dict[int, torch.Tensor] | None = None,
              rope: torch.Tensor | None = None) -> tuple[torch.Tensor, dict[int, torch.Tensor]]:
    """Blocks ``start .. stop-1`` unchanged, recording ``softmax(q kᵀ/√d)`` of blocks in ``record``.

    ``c_proj_weights`` replaces the MLP output weight of some blocks for this pass
    only (the model's own weights are never touched).
    """
    record = set(record)
    c_proj_weights = c_proj_weights or {}
    recorded: dict[int, torch.Tensor] = {}
    for index, block in enumerate(blocks(visual)[start:stop], start=start):
        q, k, v = block.qkv(block.norm_in(x), rope)
        if index in record:
            recorded[index] = attention_probabilities(q, k, q.shape[-1] ** -0.5)
            attended = recorded[index] @ v
        else:
            attended = attention(q, k, v)
        x = block.feed_forward(x + block.project_out(attended), c_proj_weights.get(index))
    return x, recorded


def patch_tokens(tokens: torch.Tensor, grid: tuple[int, int]) -> torch.Tensor:
    """The ``gh*gw`` patch tokens of ``tokens`` (the prefix tokens in front dropped)."""
    return tokens[:, tokens.shape[1] - grid[0] * grid[1]:]


def project(visual: Trunk, tokens: torch.Tensor) -> torch.Tensor:
    """Patch tokens through the head, each on its own, into the joint space (float32)."""
    return as_trunk(visual).head_tokens(tokens)


def dense_output(visual: Trunk, tokens: torch.Tensor, grid: tuple[int, int]) -> torch.Tensor:
    """L2-normalised projected patch tokens of ``tokens`` (prefix tokens dropped), ``[B, gh, gw, E]``."""
    dense = F.normalize(project(visual, patch_tokens(tokens, grid)), dim=-1)
    return dense.reshape(dense.shape[0], grid[0], grid[1], -1)


def clip_embedding(visual: Trunk, tokens: torch.Tensor) -> torch.Tensor:
    """The model's own image embedding ``[B, E]`` (L2-normalised) of last-block tokens."""
    return F.normalize(as_trunk(visual).pooled(tokens), dim=-1)
