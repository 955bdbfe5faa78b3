"""The SimZSS model: frozen DINOv2 patch features, denoised, against its own text tower.

:class:`SimZSSNetwork` holds the modules (an ``nn.Module``, so training can use it);
:class:`SimZSSModel` is the engine's model surface (the same one GEM offers), so
``encode``, ``segment``, tiling, presence and the batch command work unchanged.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from ...promptable import PromptableModel, VisionOutput
from ...text import TextEmbeddingCache
from .architecture import SimZSSArchitecture


class SimZSSNetwork(nn.Module):
    """DINOv2 ViT, optional denoiser block with its position table, text tower, logit scale."""

    def __init__(
        self,
        architecture: SimZSSArchitecture,
        vit: nn.Module,
        text: nn.Module,
        logit_scale: nn.Parameter,
        denoiser: nn.Module | None = None,
        denoiser_position: nn.Parameter | None = None,
    ) -> None:
        super().__init__()
        if (denoiser is None) != (denoiser_position is None):
            raise ValueError("the denoiser block and its position table come together")
        self.architecture = architecture
        self.vit = vit
        self.text = text
        self.logit_scale = logit_scale
        self.denoiser = denoiser
        self.denoiser_position = denoiser_position

    def visual_tokens(self, pixels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Denoised patch tokens ``[B, gh, gw, D]`` and the backbone CLS ``[B, D]`` (not normalised).

        The CLS is the final-LayerNorm output of the ViT, *not* denoised (SimZSS's global
        path); registers are dropped.
        """
        patch = self.architecture.patch_size
        height, width = pixels.shape[-2:]
        if height % patch or width % patch:
            raise ValueError(
                f"image size {height}x{width} is not a multiple of SimZSS's patch size {patch}"
            )
        grid = (height // patch, width // patch)
        tokens = self.vit.forward_features(pixels)  # all blocks, then the final LayerNorm
        cls = tokens[:, 0]
        patches = tokens[:, self.vit.num_prefix_tokens :]
        if self.denoiser is not None:
            # The denoiser's own table is added after the ViT's LayerNorm; no norm follows.
            patches = self.denoiser(patches + self.denoiser_table(grid).to(patches.dtype))
        return patches.reshape(patches.shape[0], grid[0], grid[1], -1), cls

    def denoiser_table(self, grid: tuple[int, int]) -> torch.Tensor:
        """The denoiser's position table resampled to ``grid`` (bicubic, antialiased, as
        timm does), computed once per grid: every window of a tiled image shares it."""
        from timm.layers import resample_abs_pos_embed

        table = self.denoiser_position
        key = (tuple(grid), table.dtype, table.device, table._version)
        cache = self.__dict__.setdefault("_denoiser_tables", {})
        if key not in cache:
            if len(cache) >= 8:
                cache.clear()
            with torch.no_grad():
                cache[key] = resample_abs_pos_embed(table, list(grid), num_prefix_tokens=0)
        return cache[key]

    def text_tokens(self, tokens: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Projected outputs of every token ``[B, L, D]`` and the EOT embedding ``[B, D]``.

        Sequences are cut after the longest EOT: the mask is causal, so the kept tokens
        are exactly what a full 77-token pass gives them.
        """
        text = self.text
        eot = tokens.argmax(dim=-1)
        length = int(eot.max()) + 1
        hidden = text.token_embedding(tokens[:, :length]) + text.positional_embedding[:length]
        hidden = text.transformer(hidden, attn_mask=text.attn_mask[:length, :length])
        projected = text.ln_final(hidden) @ text.text_projection
        return projected, projected[torch.arange(tokens.shape[0], device=tokens.device), eot]


class SimZSSModel(PromptableModel):
    """SimZSS behind the engine's model surface (``encode_image``, ``encode_text``, ...).

    Dense features are the L2-normalised denoised DINOv2 patch tokens; the image-level
    ``clip_embedding`` is the normalised (non-denoised) CLS, compared with text at the
    learned :attr:`logit_scale` for presence. Text embeddings are EOT tokens of bare
    names by default (:attr:`default_templates`). GEM's settings do not apply.
    """

    default_templates: tuple[str, ...] = ("{}",)

    def __init__(
        self,
        network: SimZSSNetwork,
        tokenizer: Callable,
        *,
        name: str | None = None,
        pretrained: str | None = None,
    ) -> None:
        self.network = network
        self.tokenizer = tokenizer
        self.name = name
        self.pretrained = pretrained
        self._text_cache = TextEmbeddingCache(network.text, tokenizer)

    # -- facts about the model -------------------------------------------------------
    @property
    def module(self) -> nn.Module:
        return self.network

    @property
    def method(self) -> str:
        return "simzss"

    @property
    def architecture(self) -> SimZSSArchitecture:
        return self.network.architecture

    @property
    def has_denoiser(self) -> bool:
        return self.network.denoiser is not None

    @property
    def patch_size(self) -> int:
        return self.architecture.patch_size

    @property
    def native_size(self) -> int:
        """The training resolution (224; the position tables were learned at 518)."""
        return self.architecture.native_size

    @property
    def device(self) -> torch.device:
        return self.network.vit.patch_embed.proj.weight.device

    @property
    def dtype(self) -> torch.dtype:
        return self.network.vit.patch_embed.proj.weight.dtype

    @property
    def logit_scale(self) -> float:
        """The learned global scale (CLS vs EOT), at most 100."""
        return float(self.network.logit_scale.detach().float().exp())

    @property
    def embed_dim(self) -> int:
        return self.architecture.embed_dim

    def describe(self) -> dict:
        """The model and its settings, for storing with results."""
        return {
            "model": self.name,
            "pretrained": self.pretrained,
            "method": self.method,
            "method_options": {},
            "denoiser": self.has_denoiser,
            "device": str(self.device),
            "precision": str(self.dtype).removeprefix("torch."),
        }

    # -- encoding ---------------------------------------------------------------------
    def encode_image(self, pixels: torch.Tensor, *, with_clip_embedding: bool = True) -> VisionOutput:
        """Denoised, normalised patch features ``[B, H/14, W/14, D]`` and the normalised CLS.

        ``pixels``: ``[B, 3, H, W]`` normalised with the OpenAI CLIP mean and std (as
        SimZSS was trained), ``H`` and ``W`` multiples of 14.
        """
        if pixels.ndim != 4 or pixels.shape[1] != 3:
            raise ValueError(f"pixels must be [B, 3, H, W], got shape {tuple(pixels.shape)}")
        with torch.inference_mode():
            pixels = pixels.to(device=self.device, dtype=self.dtype)
            patches, cls = self.network.visual_tokens(pixels)
            return VisionOutput(
                dense_features=F.normalize(patches, dim=-1),
                clip_embedding=F.normalize(cls, dim=-1) if with_clip_embedding else None,
            )

    def __repr__(self) -> str:
        return (
            f"SimZSSModel(model={self.name!r}, pretrained={self.pretrained!r}, "
            f"denoiser={self.has_denoiser}, device={self.device}, dtype={self.dtype})"
        )
