"""Hugging Face ``transformers`` vision towers: ``CLIPVisionTransformer`` and ``SiglipVisionTransformer``.

Separate ``q_proj``/``k_proj``/``v_proj``, pre-norm encoder layers; CLIP has a class
token, ``pre_layrnorm`` and a ``visual_projection``; SigLIP has no class token and an
attention-pooling ``head`` (read per token as MaskCLIP reads attention pooling).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call

from ....errors import UnsupportedModelError
from .base import TrunkBlock, VisionTrunk, float32_head, merge_heads, split_heads, square_grid


class TransformersBlock(TrunkBlock):
    """A ``CLIPEncoderLayer`` / ``SiglipEncoderLayer`` (``layer_norm1``, ``self_attn``, ``mlp``)."""

    def __init__(self, layer: nn.Module) -> None:
        self.layer = layer
        self.attn = layer.self_attn
        self.num_heads = int(self.attn.num_heads)

    def norm_in(self, x):
        return self.layer.layer_norm1(x)

    def qkv(self, normed, rope=None):
        attn = self.attn
        return tuple(split_heads(proj(normed), self.num_heads)
                     for proj in (attn.q_proj, attn.k_proj, attn.v_proj))

    def project_out(self, heads_out):
        return self.attn.out_proj(merge_heads(heads_out))

    def feed_forward(self, x, fc2_weight=None):
        normed = self.layer.layer_norm2(x)
        if fc2_weight is None:
            return x + self.layer.mlp(normed)
        return x + functional_call(self.layer.mlp, {"fc2.weight": fc2_weight}, (normed,))

    @property
    def fc2_weight(self):
        return self.layer.mlp.fc2.weight


class TransformersVisionTrunk(VisionTrunk):
    """The vision tower of a ``CLIPModel`` or ``SiglipModel`` (see :class:`TransformersVision`)."""

    def __init__(self, visual: nn.Module) -> None:
        self.module = visual
        self.vision = visual.vision_model
        self.projection = visual.projection
        embeddings = self.vision.embeddings
        self.has_class_token = getattr(embeddings, "class_embedding", None) is not None
        self.prefix_count = int(self.has_class_token)
        self.kind = "transformers CLIP" if self.has_class_token else "transformers SigLIP"
        self.pool = getattr(self.vision, "head", None) if not self.has_class_token else None
        if not self.has_class_token and self.pool is None:
            raise UnsupportedModelError("this SigLIP vision tower has no pooling head.")
        self.blocks = [TransformersBlock(layer) for layer in self.vision.encoder.layers]

    @property
    def patch_size(self):
        size = self.vision.config.patch_size
        return (size, size) if isinstance(size, int) else tuple(size)

    @property
    def native_size(self):
        size = self.vision.config.image_size
        return int(size if isinstance(size, int) else size[0])

    @property
    def output_dim(self):
        if self.projection is not None:
            return int(self.projection.out_features)
        return int(self.vision.config.hidden_size)

    @property
    def parameter(self):
        return self.vision.embeddings.patch_embedding.weight

    def position_table(self):
        table = self.vision.embeddings.position_embedding.weight
        return table, self.prefix_count, square_grid(table.shape[0] - self.prefix_count)

    def embed(self, pixels, position):
        embeddings = self.vision.embeddings
        tokens = embeddings.patch_embedding(pixels).flatten(2).transpose(1, 2)
        if self.has_class_token:
            cls = embeddings.class_embedding.to(tokens.dtype).view(1, 1, -1).expand(tokens.shape[0], 1, -1)
            tokens = torch.cat([cls, tokens], dim=1)
        tokens = tokens + position.to(tokens.dtype)
        pre_norm = getattr(self.vision, "pre_layrnorm", None)
        return pre_norm(tokens) if pre_norm is not None else tokens

    def _head(self) -> tuple[nn.Module, nn.Module | None, nn.Module | None]:
        """(post_layernorm, pooling head, projection) in float32 (see :func:`.base.float32_head`)."""
        cache = self.__dict__.setdefault("_float32_heads", ({}, {}))
        vision = float32_head(self.vision, ("post_layernorm", "head"), cache[0])
        projection = None if self.projection is None else float32_head(
            self.module, ("projection",), cache[1])._modules["projection"]
        return vision.post_layernorm, (vision.head if self.pool is not None else None), projection

    def head_tokens(self, tokens):
        norm, pool, projection = self._head()
        x = norm(tokens.float())
        if pool is not None:  # MaskCLIP's treatment of the attention-pooling head
            attention = pool.attention
            width = x.shape[-1]
            value = F.linear(x, attention.in_proj_weight[2 * width:], attention.in_proj_bias[2 * width:])
            x = attention.out_proj(value)
            x = x + pool.mlp(pool.layernorm(x))
        return x if projection is None else projection(x)

    def pooled(self, tokens):
        norm, pool, projection = self._head()
        x = norm(tokens.float())
        x = pool(x) if pool is not None else x[:, 0]
        return x if projection is None else projection(x)


class TransformersVision(nn.Module):
    """A ``CLIPModel``/``SiglipModel``'s vision tower and projection as one module (its ``visual``)."""

    def __init__(self, vision_model: nn.Module, projection: nn.Module | None) -> None:
        super().__init__()
        self.vision_model = vision_model
        self.projection = projection


def is_transformers_vision(visual: nn.Module) -> bool:
    return isinstance(visual, TransformersVision)
