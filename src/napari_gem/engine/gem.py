"""The :class:`GEM` model: an open_clip ViT CLIP answering "where is X?"."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import nn

from .maps import min_max, similarity_grid, upsample
from .text import PAPER_TEMPLATES, TextEmbeddingCache, clean_prompts
from .vision import GemSettings, VisionOutput, check_supported_visual, gem_vision_forward


class GEM:
    """GEM on top of an open_clip CLIP vision transformer.

    The wrapped model's weights are used as they are (never copied or changed).
    Text embeddings are cached per prompt; image features come from
    :meth:`encode_image` and can be asked any number of prompts.
    """

    def __init__(
        self,
        clip_model: nn.Module,
        tokenizer: Callable,
        settings: GemSettings,
        *,
        name: str | None = None,
        pretrained: str | None = None,
    ) -> None:
        check_supported_visual(clip_model.visual)
        blocks = len(clip_model.visual.transformer.resblocks)
        if settings.depth - 1 > blocks:
            raise ValueError(
                f"depth={settings.depth} would modify {settings.depth - 1} blocks, "
                f"but this ViT has only {blocks} (use depth <= {blocks + 1})"
            )
        self.clip_model = clip_model
        self.tokenizer = tokenizer
        self.settings = settings
        self.name = name
        self.pretrained = pretrained
        self._text_cache = TextEmbeddingCache(clip_model, tokenizer)

    @classmethod
    def from_open_clip(
        cls,
        clip_model: nn.Module,
        tokenizer: Callable,
        *,
        depth: int = 7,
        iterations: int = 1,
        temperature: float | None = None,
    ) -> GEM:
        """Wrap an already-built open_clip CLIP model (paper defaults: 7, 1, adaptive)."""
        settings = GemSettings(depth=depth, iterations=iterations, temperature=temperature)
        return cls(clip_model, tokenizer, settings)

    # -- facts about the model -------------------------------------------------------
    @property
    def visual(self) -> nn.Module:
        return self.clip_model.visual

    @property
    def patch_size(self) -> int:
        """Patch side in pixels (square patches)."""
        return int(self.visual.patch_size[0])

    @property
    def native_size(self) -> int:
        """The image side the model was pretrained at (224 for most CLIPs)."""
        return int(self.visual.image_size[0])

    @property
    def device(self) -> torch.device:
        return self.visual.conv1.weight.device

    @property
    def dtype(self) -> torch.dtype:
        return self.visual.conv1.weight.dtype

    @property
    def logit_scale(self) -> float:
        """CLIP's learned logit scale (about 100 for trained models)."""
        scale = getattr(self.clip_model, "logit_scale", None)
        return float(scale.exp()) if scale is not None else 100.0

    @property
    def embed_dim(self) -> int:
        return int(self.visual.output_dim)

    def describe(self) -> dict:
        """The model and GEM settings, for storing with results."""
        return {
            "model": self.name,
            "pretrained": self.pretrained,
            "depth": self.settings.depth,
            "iterations": self.settings.iterations,
            "temperature": self.settings.temperature,
            "device": str(self.device),
            "precision": str(self.dtype).removeprefix("torch."),
        }

    # -- encoding ---------------------------------------------------------------------
    def encode_image(self, pixels: torch.Tensor, *, with_clip_embedding: bool = True) -> VisionOutput:
        """Dense GEM features ``[B, gh, gw, E]`` (and the CLIP image embedding) of pixels.

        ``pixels``: CLIP-normalised ``[B, 3, H, W]``, ``H`` and ``W`` multiples of
        :attr:`patch_size`.
        """
        if pixels.ndim != 4 or pixels.shape[1] != 3:
            raise ValueError(f"pixels must be [B, 3, H, W], got shape {tuple(pixels.shape)}")
        with torch.inference_mode():
            pixels = pixels.to(device=self.device, dtype=self.dtype)
            return gem_vision_forward(
                self.visual, pixels, self.settings, with_clip_embedding=with_clip_embedding
            )

    def encode_text(
        self, prompts: Sequence[str] | str, templates: Sequence[str] = PAPER_TEMPLATES
    ) -> torch.Tensor:
        """L2-normalised text embeddings ``[P, E]`` (float32), ensembled over templates."""
        prompts = clean_prompts(prompts)
        with torch.inference_mode():
            return self._text_cache.get(prompts, templates, self.device)

    # -- the paper's output ---------------------------------------------------------------
    def heatmaps(self, pixels: torch.Tensor, prompts: Sequence[str] | str) -> torch.Tensor:
        """The paper's heatmaps ``[B, P, H, W]`` in [0, 1] for normalised ``pixels``.

        Template "a photo of a {}.", bilinear upsampling to the input size and
        per-prompt min-max normalisation, exactly as the authors' code.
        """
        features = self.encode_image(pixels, with_clip_embedding=False)
        text = self.encode_text(prompts)
        with torch.inference_mode():
            grid = similarity_grid(features.dense_features, text)
            return min_max(upsample(grid, tuple(pixels.shape[-2:])), inplace=True)

    def __repr__(self) -> str:
        temperature = self.settings.temperature
        return (
            f"GEM(model={self.name!r}, pretrained={self.pretrained!r}, depth={self.settings.depth}, "
            f"iterations={self.settings.iterations}, "
            f"temperature={'adaptive' if temperature is None else temperature}, "
            f"device={self.device}, dtype={self.dtype})"
        )

