"""timm vision transformers: fused ``qkv`` (ViT, SigLIP, BiomedCLIP) and separate q/k/v with RoPE (Eva).

Found by parameters: a block with ``attn.qkv`` (a linear layer ``D -> 3D``, with optional
separate ``q_bias``/``v_bias``) or with ``attn.q_proj``/``k_proj``/``v_proj``; ``q_norm``/
``k_norm``, a post-attention norm (``attn.norm``), layer scale (``ls1``/``ls2`` or
``gamma_1``/``gamma_2``), register tokens, no class token, and a rotary embedding
(``trunk.rope``) are all honoured as timm's own forward does. The head is the trunk's
final norm, its pooling (class token, mean, or ``map`` attention pooling), ``fc_norm``,
its own head and open_clip's projection head when wrapped by open_clip's ``TimmModel``.
"""

from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call

from ....errors import UnsupportedModelError
from .base import BILINEAR, TrunkBlock, VisionTrunk, float32_head, merge_heads, split_heads

#: timm block classes whose norms sit after the residual branch (same parameter names as
#: pre-norm blocks, different maths): refused rather than run wrongly.
_POST_NORM_BLOCKS = ("ResPostBlock", "EvaBlockPostNorm", "ParallelScalingBlock", "ParallelThingsBlock")


#: timm architectures whose authors' code positions tokens by the raw patch grid at every
#: size: PE (perception_models: ``Rope2D.update_grid`` takes ``arange(grid)`` (+1 after the
#: class token), ``_sample_abs_posemb`` resizes the table bilinearly, no antialias). timm
#: rescales RoPE coordinates to ``ref_feat_shape`` (0.5 ... 14 on PE-Core-B's 28x28 grid at
#: 448 px) and resizes bicubically; both agree at the native size. EVA-02 keeps timm's
#: rescaling: EVA-CLIP's own rotary embedding rescales the same way.
_RAW_GRID_ARCHITECTURES = ("vit_pe_",)


def _identity(x):
    return x


class TimmBlock(TrunkBlock):
    """A timm ``Block`` or ``EvaBlock`` (pre-norm; fused or separate q/k/v)."""

    def __init__(self, block: nn.Module, index: int) -> None:
        attn = getattr(block, "attn", None)
        self.fused = isinstance(getattr(attn, "qkv", None), nn.Linear)
        separate = all(isinstance(getattr(attn, n, None), nn.Linear) for n in ("q_proj", "k_proj", "v_proj"))
        problem = None
        if type(block).__name__ in _POST_NORM_BLOCKS:
            problem = f"a {type(block).__name__} (post-norm or parallel block)"
        elif not (self.fused or separate):
            problem = "no qkv or q_proj/k_proj/v_proj projection"
        elif getattr(attn, "gate", None) is not None:
            problem = "gated attention"
        elif not all(hasattr(block, n) for n in ("norm1", "norm2", "mlp")) or \
                not isinstance(getattr(attn, "proj", None), nn.Linear):
            problem = "no norm1/norm2/mlp/attn.proj"
        if problem:
            raise UnsupportedModelError(
                f"block {index} of this timm ViT is not supported ({problem}); dense methods need "
                "pre-norm blocks with q/k/v projections."
            )
        self.block = block
        self.attn = attn
        self.num_heads = int(attn.num_heads)
        self._q_norm = getattr(attn, "q_norm", None) or _identity
        self._k_norm = getattr(attn, "k_norm", None) or _identity
        self._out_norm = getattr(attn, "norm", None) or _identity
        self._ls1 = _layer_scale(block, "ls1", "gamma_1")
        self._ls2 = _layer_scale(block, "ls2", "gamma_2")

    def norm_in(self, x):
        return self.block.norm1(x)

    def qkv(self, normed, rope=None):
        attn, heads = self.attn, self.num_heads
        if self.fused:
            bias = attn.qkv.bias
            if getattr(attn, "q_bias", None) is not None:  # EVA: q and v biases, k has none
                bias = torch.cat((attn.q_bias, attn.k_bias, attn.v_bias))
            packed = F.linear(normed, attn.qkv.weight, bias)
            q, k, v = (split_heads(part, heads) for part in packed.chunk(3, dim=-1))
        else:
            q, k, v = (split_heads(proj(normed), heads) for proj in (attn.q_proj, attn.k_proj, attn.v_proj))
        q, k = self._q_norm(q), self._k_norm(k)
        if rope is not None:
            q, k = (self._rotate(t, rope).type_as(v) for t in (q, k))
        return q, k, v

    def _rotate(self, tokens, rope):
        from timm.layers import apply_rot_embed_cat

        prefix = int(getattr(self.attn, "num_prefix_tokens", 0))
        half = getattr(self.attn, "rotate_half", False)
        rotated = apply_rot_embed_cat(tokens[:, :, prefix:], rope, half=half)
        return torch.cat([tokens[:, :, :prefix], rotated], dim=2)

    def project_out(self, heads_out):
        return self._ls1(self.attn.proj(self._out_norm(merge_heads(heads_out))))

    def feed_forward(self, x, fc2_weight=None):
        normed = self.block.norm2(x)
        if fc2_weight is None:
            hidden = self.block.mlp(normed)
        else:  # the replacement weight for this call only; the model is never changed
            hidden = functional_call(self.block.mlp, {"fc2.weight": fc2_weight}, (normed,))
        return x + self._ls2(hidden)

    @property
    def fc2_weight(self):
        return self.block.mlp.fc2.weight


def _layer_scale(block, module_name, gamma_name):
    module = getattr(block, module_name, None)
    if module is not None:
        return module
    gamma = getattr(block, gamma_name, None)
    if isinstance(gamma, torch.Tensor):
        return lambda x: gamma * x
    return _identity


def is_timm_vit(module: nn.Module) -> bool:
    return all(hasattr(module, n) for n in ("patch_embed", "blocks", "norm", "forward_head")) \
        and hasattr(getattr(module, "patch_embed", None), "proj")


class TimmVisionTrunk(VisionTrunk):
    """A timm ViT or Eva trunk, alone or inside open_clip's ``TimmModel`` (whose ``head`` projects)."""

    def __init__(self, trunk: nn.Module, visual: nn.Module | None = None) -> None:
        self.trunk = trunk
        self.module = visual if visual is not None else trunk
        self.outer_head = getattr(visual, "head", None) if visual is not None else None
        if self.outer_head is not None and hasattr(self.outer_head, "pool"):
            raise UnsupportedModelError("open_clip's abs_attn/rot_attn pooling heads are not supported.")
        if getattr(trunk, "rope_mixed", False):
            raise UnsupportedModelError("mixed (per-block learned) RoPE is not supported.")
        pool = getattr(trunk, "attn_pool", None)
        if pool is not None and (getattr(pool, "pos_embed", None) is not None or not hasattr(pool, "kv")):
            raise UnsupportedModelError(f"attention pooling {type(pool).__name__} is not supported.")
        self.prefix_count = int(getattr(trunk, "num_prefix_tokens", 0))
        self.has_class_token = getattr(trunk, "cls_token", None) is not None
        self.kind = "timm Eva" if getattr(trunk, "rope", None) is not None else "timm ViT"
        architecture = str((getattr(trunk, "pretrained_cfg", None) or {}).get("architecture", ""))
        self.raw_grid = architecture.startswith(_RAW_GRID_ARCHITECTURES)
        self.own_position_resampling = BILINEAR if self.raw_grid else None
        self.blocks = [TimmBlock(block, index) for index, block in enumerate(trunk.blocks)]

    @property
    def patch_size(self):
        return tuple(int(p) for p in self.trunk.patch_embed.patch_size)

    @property
    def native_size(self):
        return int(self.trunk.patch_embed.img_size[0])

    @property
    def output_dim(self):
        width = getattr(self.module, "output_dim", None)  # not on open_clip's TimmModel
        if width is None:
            with torch.no_grad():
                probe = self.parameter.new_zeros(1, self.prefix_count + 1, self.trunk.embed_dim)
                width = self.pooled(probe).shape[-1]
        return int(width)

    @property
    def parameter(self):
        return self.trunk.patch_embed.proj.weight

    def position_table(self):
        table = self.trunk.pos_embed
        if table is None:
            return None, 0, tuple(self.trunk.patch_embed.grid_size)
        prefix_rows = 0 if getattr(self.trunk, "no_embed_class", False) else self.prefix_count
        return table[0], prefix_rows, tuple(self.trunk.patch_embed.grid_size)

    def embed(self, pixels, position):
        trunk = self.trunk
        patch_embed = trunk.patch_embed
        tokens = patch_embed.proj(pixels).flatten(2).transpose(1, 2)
        tokens = patch_embed.norm(tokens)
        prefix = [t.expand(tokens.shape[0], -1, -1) for t in
                  (getattr(trunk, "cls_token", None), getattr(trunk, "reg_token", None)) if t is not None]
        if position is None:
            tokens = torch.cat(prefix + [tokens], dim=1)
        elif getattr(trunk, "no_embed_class", False):
            tokens = torch.cat(prefix + [tokens + position.to(tokens.dtype)], dim=1)
        else:
            tokens = torch.cat(prefix + [tokens], dim=1) + position.to(tokens.dtype)
        return trunk.norm_pre(tokens)

    def rope(self, grid):
        rope = getattr(self.trunk, "rope", None)
        if rope is None:
            return None
        key = (tuple(grid), self.parameter.device)
        cache = self.__dict__.setdefault("_rope_cache", {})
        if key not in cache:  # built once per grid: the bands never change in eval
            if len(cache) >= 8:
                cache.clear()
            with torch.no_grad():
                cache[key] = self._build_rope(rope, grid, self.raw_grid)
        return cache[key]

    @staticmethod
    def _build_rope(rope, grid, raw_grid=False):
        native = getattr(rope, "feat_shape", None)
        if raw_grid and getattr(rope, "ref_feat_shape", None) is not None:
            rope = copy.copy(rope)  # the same bands, without timm's rescaling to ref_feat_shape
            rope.ref_feat_shape = None
            return rope._build_embed_cat(list(grid), rope.bands)
        if native is None or list(native) == list(grid):
            return rope.get_embed(shape=list(grid))
        # A rope built for a fixed grid ignores `shape`; build the other grid from its
        # frequency bands, as timm's own dynamic-size path does.
        return rope._build_embed_cat(list(grid), rope.bands)

    #: The trunk's parts after the blocks: run in float32 (see :func:`.base.float32_head`).
    _HEAD_PARTS = ("norm", "attn_pool", "fc_norm", "head")

    def _head(self) -> tuple[nn.Module, nn.Module | None]:
        """(the trunk with its head parts in float32, open_clip's outer head in float32)."""
        cache = self.__dict__.setdefault("_float32_heads", ({}, {}))
        trunk = float32_head(self.trunk, self._HEAD_PARTS, cache[0])
        outer = None if self.outer_head is None else float32_head(
            self.module, ("head",), cache[1])._modules["head"]
        return trunk, outer

    def head_tokens(self, tokens):
        """Each patch token through the head as if it were the pooled token (MaskCLIP's
        treatment of attention pooling: value and output projections, then the pool's MLP)."""
        trunk, outer = self._head()
        x = trunk.norm(tokens.float())
        pool = getattr(trunk, "attn_pool", None)
        if pool is not None:
            x = pool.proj(pool.kv(x).chunk(2, dim=-1)[1])
            if getattr(pool, "mlp", None) is not None:
                x = x + pool.mlp(pool.norm(x))
        x = trunk.head(trunk.fc_norm(x))
        return x if outer is None else outer(x)

    def pooled(self, tokens):
        trunk, outer = self._head()
        pooled = trunk.forward_head(trunk.norm(tokens.float()))
        if pooled.ndim != 2:
            raise UnsupportedModelError("this timm trunk has no global pooling (global_pool='').")
        return pooled if outer is None else outer(pooled)
