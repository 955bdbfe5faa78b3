"""GEM's forward pass through an open_clip ``VisionTransformer``.

The maths runs on an explicit batch-first token layout ``[B, N, D]`` (class token
first) and reads the block weights directly; open_clip's own ``forward`` is never
patched, so the wrapped model stays usable as an ordinary CLIP model.
See ``docs/how-gem-works.md`` for the computation in words.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn


class UnsupportedModelError(ValueError):
    """The open_clip model is not a ViT CLIP with standard residual blocks."""


@dataclass(frozen=True)
class GemSettings:
    """GEM's three parameters (paper defaults)."""

    depth: int = 7
    iterations: int = 1
    temperature: float | None = None  # None: adaptive, per image

    def __post_init__(self) -> None:
        if int(self.depth) != self.depth or self.depth < 1:
            raise ValueError(f"depth must be an integer >= 1, got {self.depth!r}")
        if int(self.iterations) != self.iterations or self.iterations < 0:
            raise ValueError(f"iterations must be an integer >= 0, got {self.iterations!r}")
        if self.temperature is not None and not (
            math.isfinite(self.temperature) and self.temperature > 0
        ):
            raise ValueError(
                f"temperature must be None (adaptive) or a positive number, got {self.temperature!r}"
            )


@dataclass
class VisionOutput:
    """What one pass of GEM through the vision tower produces."""

    dense_features: torch.Tensor  # [B, grid_h, grid_w, E], L2-normalised GEM patch features
    clip_embedding: torch.Tensor | None  # [B, E], L2-normalised ordinary CLIP image embedding


def check_supported_visual(visual: nn.Module) -> None:
    """Raise :class:`UnsupportedModelError` unless ``visual`` is a standard open_clip ViT."""
    from open_clip.transformer import ResidualAttentionBlock, VisionTransformer

    kind = type(visual).__name__
    if not isinstance(visual, VisionTransformer):
        raise UnsupportedModelError(
            f"GEM needs a vision transformer, but this CLIP's image tower is a {kind} "
            "(ResNet, ConvNeXt and timm towers are not supported). "
            "Choose a ViT model such as ViT-B-16."
        )
    if getattr(visual, "attn_pool", None) is not None:
        raise UnsupportedModelError(
            "GEM needs a ViT without attentional pooling (CoCa-style towers are not supported)."
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
                f"({type(block).__name__}); GEM supports the plain CLIP ViT blocks only."
            )


def resampled_position_embedding(visual: nn.Module, grid: tuple[int, int]) -> torch.Tensor:
    """Position embedding for a patch grid, ``[1, 1 + gh*gw, D]``.

    The pretrained patch part is treated as a square image and resampled bicubically
    with antialiasing; the class token's row is put back in front unchanged.
    """
    table = visual.positional_embedding
    prefix, patches = table[:1], table[1:]
    old_side = int(round(math.sqrt(patches.shape[0])))
    if (old_side, old_side) == tuple(grid):
        return table.unsqueeze(0)
    square = patches.reshape(1, old_side, old_side, -1).permute(0, 3, 1, 2)
    resized = F.interpolate(square.float(), size=grid, mode="bicubic", antialias=True)
    resized = resized.to(table.dtype).permute(0, 2, 3, 1).reshape(1, grid[0] * grid[1], -1)
    return torch.cat([prefix.unsqueeze(0), resized], dim=1)


def _split_heads(tokens: torch.Tensor, heads: int) -> torch.Tensor:
    batch, count, width = tokens.shape
    return tokens.view(batch, count, heads, width // heads).transpose(1, 2)


def _merge_heads(tokens: torch.Tensor) -> torch.Tensor:
    batch, heads, count, head_width = tokens.shape
    return tokens.transpose(1, 2).reshape(batch, count, heads * head_width)


def _qkv(block: nn.Module, normed: torch.Tensor) -> tuple[torch.Tensor, ...]:
    attn = block.attn
    packed = F.linear(normed, attn.in_proj_weight, attn.in_proj_bias)
    return tuple(_split_heads(part, attn.num_heads) for part in packed.chunk(3, dim=-1))


def _project_out(block: nn.Module, heads_out: torch.Tensor) -> torch.Tensor:
    return block.ls_1(block.attn.out_proj(_merge_heads(heads_out)))


def _original_update(block: nn.Module, x: torch.Tensor, q, k, v) -> torch.Tensor:
    """CLIP's own residual block on the original path, given its q, k, v."""
    x = x + _project_out(block, F.scaled_dot_product_attention(q, k, v))
    return x + block.ls_2(block.mlp(block.ln_2(x)))


def _inverse_temperature(normed: torch.Tensor, head_width: int, settings: GemSettings):
    if settings.temperature is not None:
        return settings.temperature
    # Adaptive: mean token norm of ln_1(x), one scalar per image, shaped to broadcast
    # over [paths * B, heads, N, d].
    mean_norm = normed.float().norm(dim=-1).mean(dim=-1) / math.sqrt(head_width)
    return mean_norm.to(normed.dtype).view(1, -1, 1, 1, 1)


def _self_self_attention(q, k, v, inverse_temperature, iterations: int) -> torch.Tensor:
    """GEM's ensemble of q-q, k-k and v-v self-self attention, applied to raw ``v``."""
    paths = torch.stack([q, k, v])  # [3, B, h, N, d]
    batch_shape = paths.shape
    flat = (3 * batch_shape[1],) + batch_shape[2:]

    def attend(keys: torch.Tensor, values: torch.Tensor) -> torch.Tensor:
        # Scaling the queries by tau^-1 equals scaling the logits; sdpa's own `scale`
        # must be a Python float, while the adaptive temperature is per image.
        queries = (keys * inverse_temperature).reshape(flat)
        out = F.scaled_dot_product_attention(
            queries, keys.reshape(flat), values.reshape(flat), scale=1.0
        )
        return out.view(batch_shape)

    for _ in range(iterations):
        normalised = F.normalize(paths, dim=-1)
        paths = attend(normalised, normalised)  # aggregation uses normalised z (quirk)
    normalised = F.normalize(paths, dim=-1)
    assigned = attend(normalised, v.unsqueeze(0).expand(batch_shape))
    return assigned.mean(dim=0)


def _embed(visual: nn.Module, pixels: torch.Tensor) -> torch.Tensor:
    patches = visual.conv1(pixels)  # [B, D, gh, gw]
    grid = tuple(patches.shape[-2:])
    tokens = patches.flatten(2).transpose(1, 2)  # [B, gh*gw, D], row-major
    cls = visual.class_embedding.to(tokens.dtype).view(1, 1, -1).expand(tokens.shape[0], 1, -1)
    tokens = torch.cat([cls, tokens], dim=1)
    tokens = tokens + position_embedding_cached(visual, grid).to(tokens.dtype)
    return visual.ln_pre(tokens)


_POSITION_CACHE_ATTR = "_napari_gem_position_cache"


def position_embedding_cached(visual: nn.Module, grid: tuple[int, int]) -> torch.Tensor:
    """:func:`resampled_position_embedding`, memoised per grid on the model."""
    table = visual.positional_embedding
    cache = visual.__dict__.setdefault(_POSITION_CACHE_ATTR, {})
    key = (grid, table.dtype, table.device, table._version)
    if key not in cache:
        cache.clear()
        with torch.no_grad():
            cache[key] = resampled_position_embedding(visual, grid)
    return cache[key]


def _project(visual: nn.Module, tokens: torch.Tensor) -> torch.Tensor:
    tokens = visual.ln_post(tokens)
    return tokens @ visual.proj if visual.proj is not None else tokens


def gem_vision_forward(
    visual: nn.Module,
    pixels: torch.Tensor,
    settings: GemSettings,
    *,
    with_clip_embedding: bool = True,
) -> VisionOutput:
    """Run GEM through ``visual`` on normalised ``pixels`` ``[B, 3, H, W]``.

    ``H`` and ``W`` must be multiples of the patch size. Returns the L2-normalised
    dense GEM features on the patch grid and, when asked, the ordinary CLIP image
    embedding (the original path's pooled token).
    """
    patch_h, patch_w = visual.patch_size
    height, width = pixels.shape[-2:]
    if height % patch_h or width % patch_w:
        raise ValueError(
            f"image size {height}x{width} is not a multiple of the patch size {patch_h}x{patch_w}"
        )
    blocks = list(visual.transformer.resblocks)
    modified = settings.depth - 1
    if modified > len(blocks):
        raise ValueError(
            f"depth={settings.depth} modifies {modified} blocks, but this ViT has {len(blocks)}"
        )
    grid = (height // patch_h, width // patch_w)
    x = _embed(visual, pixels)
    first_modified = len(blocks) - modified
    for block in blocks[:first_modified]:
        normed = block.ln_1(x)
        x = _original_update(block, x, *_qkv(block, normed))

    g = x
    for index, block in enumerate(blocks[first_modified:], start=first_modified):
        normed = block.ln_1(x)  # the GEM path reads ln_1 of the *original* path (quirk)
        q, k, v = _qkv(block, normed)
        inverse_temperature = _inverse_temperature(normed, q.shape[-1], settings)
        mixed = _self_self_attention(q, k, v, inverse_temperature, settings.iterations)
        g = g + _project_out(block, mixed)  # no MLP on the GEM path
        is_last = index == len(blocks) - 1
        if with_clip_embedding or not is_last:
            x = _original_update(block, x, q, k, v)

    dense = F.normalize(_project(visual, g[:, 1:]), dim=-1)
    dense = dense.reshape(dense.shape[0], grid[0], grid[1], -1)
    embedding = None
    if with_clip_embedding:
        pooled = x[:, 1:].mean(dim=1) if visual.pool_type == "avg" else x[:, 0]
        embedding = F.normalize(_project(visual, pooled), dim=-1)
    return VisionOutput(dense_features=dense, clip_embedding=embedding)

