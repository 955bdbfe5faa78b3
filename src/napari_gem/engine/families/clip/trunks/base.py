"""The trunk adapter: what every dense method needs from a ViT, whatever its packaging.

A method reads a vision transformer through two small interfaces instead of a library's
attributes: :class:`VisionTrunk` (pixels to tokens, the blocks, how many prefix tokens
lead the sequence, the head that maps a token into the joint embedding space, and the
model's own pooled embedding) and :class:`TrunkBlock` (one block's pre-attention norm,
its q, k, v per head, its output projection and layer scale, and its residual MLP).
The layout of a block is found from parameter names and shapes (see :mod:`.detect`),
so another attention class with the same parameters works unchanged.

Rotary position embeddings (EVA-02, PE-Core) are applied inside :meth:`TrunkBlock.qkv`,
to q and k of the patch tokens exactly as the model's own block does, so every extra
attention a method builds from q and k (GEM's q-q and k-k, SCLIP's q-q + k-k, ClearCLIP's
q-q, NACLIP's k-k, GCLIP's q-q) compares *rotated* vectors: ``(R_i q_i)·(R_j q_j) =
q_iᵀ R_(j-i) q_j`` carries the same relative-position term the model was trained with,
and rotations keep norms, so GEM's L2 normalisation and adaptive temperature see the
same lengths. Values are never rotated (as in the model), so GEM's v-v path and
MaskCLIP's identity attention are unaffected by RoPE.
"""

from __future__ import annotations

import copy
import math
from abc import ABC, abstractmethod

import torch
import torch.nn.functional as F
from torch import nn

from ....preprocess import CLIP_MEAN, CLIP_STD

#: How a method resamples the pretrained position embedding to another patch grid.
#: ``exact``: to the exact grid, bicubic with antialias (GEM's code).
#: ``scale_factor``: bicubic by the scale factor ``(g + 0.1) / side`` without antialias,
#: DINO's trick as in the SCLIP, ClearCLIP and NACLIP code (methods-spec §1.7).
POSITION_RESAMPLING = ("exact", "scale_factor")
#: A model's own resize, where its authors' code defines one (PE: bilinear, no antialias).
BILINEAR = "bilinear"


def split_heads(tokens: torch.Tensor, heads: int) -> torch.Tensor:
    """``[B, N, D]`` -> ``[B, h, N, D/h]`` (a contiguous split of D, as nn.MultiheadAttention)."""
    batch, count, width = tokens.shape
    return tokens.view(batch, count, heads, width // heads).transpose(1, 2)


def merge_heads(tokens: torch.Tensor) -> torch.Tensor:
    """``[B, h, N, d]`` -> ``[B, N, h*d]``."""
    batch, heads, count, head_width = tokens.shape
    return tokens.transpose(1, 2).reshape(batch, count, heads * head_width)


def resample_table(table: torch.Tensor, prefix_rows: int, old_grid: tuple[int, int],
                   grid: tuple[int, int], resampling: str = "exact") -> torch.Tensor:
    """A position table ``[P + gh*gw, D]`` for ``grid``, ``[1, P + gh*gw, D]``.

    The patch part is treated as an image of ``old_grid`` and resampled bicubically; the
    ``prefix_rows`` rows (class token) are put back in front unchanged.
    """
    prefix, patches = table[:prefix_rows], table[prefix_rows:]
    if tuple(old_grid) == tuple(grid):  # also the official code's "npatch == N and w == h"
        return table.unsqueeze(0)
    square = patches.reshape(1, old_grid[0], old_grid[1], -1).permute(0, 3, 1, 2).float()
    if resampling == "exact":
        resized = F.interpolate(square, size=grid, mode="bicubic", antialias=True)
    elif resampling == BILINEAR:
        resized = F.interpolate(square, size=grid, mode="bilinear", align_corners=False)
    elif resampling == "scale_factor":
        factors = ((grid[0] + 0.1) / old_grid[0], (grid[1] + 0.1) / old_grid[1])
        resized = F.interpolate(square, scale_factor=factors, mode="bicubic",
                                recompute_scale_factor=False)
    else:
        raise ValueError(f"position resampling must be one of {POSITION_RESAMPLING}; got {resampling!r}")
    resized = resized.to(table.dtype).permute(0, 2, 3, 1).reshape(1, grid[0] * grid[1], -1)
    return torch.cat([prefix.unsqueeze(0), resized], dim=1)


#: Activation modules by class name (open_clip, timm, transformers) -> the name results record.
_ACTIVATIONS = {"QuickGELU": "quick_gelu", "QuickGELUActivation": "quick_gelu", "GELUActivation": "gelu",
                "GELUTanh": "gelu_tanh", "PytorchGELUTanh": "gelu_tanh", "NewGELUActivation": "gelu_tanh",
                "GELUPytorchTanh": "gelu_tanh", "SiLU": "silu", "SiLUActivation": "silu", "ReLU": "relu"}


def activation_name(module: nn.Module) -> str:
    """The first activation inside ``module`` (its first block's MLP): ``quick_gelu``, ``gelu``,
    ``gelu_tanh``, ``silu`` ...; ``unknown`` when none is recognised."""
    for part in module.modules():
        if isinstance(part, nn.GELU):
            return "gelu_tanh" if part.approximate == "tanh" else "gelu"
        name = _ACTIVATIONS.get(type(part).__name__)
        if name:
            return name
    return "unknown"


def float32_head(owner: nn.Module, names: tuple[str, ...], cache: dict) -> nn.Module:
    """``owner`` with its children ``names`` in float32, for running a head in float32 (the rule
    for every trunk: a half-precision head keeps about three significant digits, enough to move
    Otsu thresholds). A shallow copy that shares every other part; the model itself is never
    changed. ``owner`` itself at float32 or wider; made once per device and dtype."""
    parameter = next(owner.parameters())
    if torch.finfo(parameter.dtype).bits >= 32:
        return owner
    key = (parameter.device, parameter.dtype)
    if key not in cache:
        cache.clear()
        shell = copy.copy(owner)
        shell._modules = dict(owner._modules)
        for name in names:
            part = owner._modules.get(name)
            if part is not None:
                shell._modules[name] = copy.deepcopy(part).float()
        cache[key] = shell
    return cache[key]


def square_grid(rows: int) -> tuple[int, int]:
    side = int(round(math.sqrt(rows)))
    return side, side


class TrunkBlock(ABC):
    """One pre-norm transformer block: ``x + ls1(attn(norm1 x))``, then ``+ ls2(mlp(norm2 x))``."""

    #: Attention heads.
    num_heads: int

    @abstractmethod
    def norm_in(self, x: torch.Tensor) -> torch.Tensor:
        """The norm before attention (open_clip's ``ln_1``, timm's ``norm1``)."""

    @abstractmethod
    def qkv(self, normed: torch.Tensor, rope: torch.Tensor | None = None
            ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """q, k, v ``[B, h, N, d]`` as the block computes them (q/k norms and RoPE applied)."""

    @abstractmethod
    def project_out(self, heads_out: torch.Tensor) -> torch.Tensor:
        """Heads merged, any post-attention norm, the output projection and layer scale 1."""

    @abstractmethod
    def feed_forward(self, x: torch.Tensor, fc2_weight: torch.Tensor | None = None) -> torch.Tensor:
        """``x + ls2(mlp(norm2 x))``, optionally with a replacement MLP output weight."""

    @property
    @abstractmethod
    def fc2_weight(self) -> torch.Tensor:
        """The MLP's output weight ``[D, hidden]`` (GCLIP's channel suppression acts on it)."""


class VisionTrunk(ABC):
    """A ViT as the dense methods see it (see the module docstring)."""

    #: The vision tower being adapted (its weights are used, never changed).
    module: nn.Module
    #: The blocks, first to last.
    blocks: list[TrunkBlock]
    #: Tokens before the patch tokens (class token, registers); never in dense maps.
    prefix_count: int
    #: Whether the first prefix token is a class token read by the model's pooling.
    has_class_token: bool
    #: What kind of trunk this is, for messages (``open_clip ViT``, ``timm ViT`` ...).
    kind: str
    #: How the model itself resizes its absolute position table to another grid, where its
    #: authors' code says (PE); None: the method's rule (GEM's, SCLIP's ...) applies.
    own_position_resampling: str | None = None

    @property
    @abstractmethod
    def patch_size(self) -> tuple[int, int]:
        """Patch height and width in pixels."""

    @property
    @abstractmethod
    def native_size(self) -> int:
        """The image side the model was pretrained at."""

    @property
    @abstractmethod
    def output_dim(self) -> int:
        """Width of the joint embedding space."""

    @abstractmethod
    def position_table(self) -> tuple[torch.Tensor, int, tuple[int, int]]:
        """(absolute position table ``[P + n, D]``, its prefix rows, its patch grid)."""

    @abstractmethod
    def embed(self, pixels: torch.Tensor, position: torch.Tensor) -> torch.Tensor:
        """Tokens ``[B, P + gh*gw, D]`` entering the first block, given the resampled table."""

    @property
    def normalisation(self) -> tuple[tuple[float, ...], tuple[float, ...]]:
        """The ``(mean, std)`` the model was trained with: open_clip's ``preprocess_cfg`` on the
        tower (set from the tag's or folder's config; the transformers family sets it from the
        processor config), else OpenAI CLIP's."""
        config = getattr(self.module, "preprocess_cfg", None) or {}
        return tuple(config.get("mean", CLIP_MEAN)), tuple(config.get("std", CLIP_STD))

    @property
    def activation(self) -> str:
        """The blocks' MLP activation as the model was built (``quick_gelu``, ``gelu`` ...)."""
        return activation_name(self.module)

    def rope(self, grid: tuple[int, int]) -> torch.Tensor | None:
        """Rotary embedding for ``grid`` (None for absolute-position ViTs)."""
        return None

    @abstractmethod
    def head_tokens(self, tokens: torch.Tensor) -> torch.Tensor:
        """Last-block patch tokens ``[B, n, D]`` through the head, each on its own, float32 ``[B, n, E]``."""

    @abstractmethod
    def pooled(self, tokens: torch.Tensor) -> torch.Tensor:
        """The model's own image embedding ``[B, E]`` (float32, not normalised) of last-block tokens."""

    @property
    def parameter(self) -> torch.Tensor:
        """A weight of the patch embedding (its device and dtype are the model's)."""
        return next(self.module.parameters())
