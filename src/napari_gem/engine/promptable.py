"""What the engine asks of any model: dense image features and text embeddings in one space.

:class:`~napari_gem.GroundingModel` (a dense method on a CLIP) and SimZSS both
provide it (each model family builds one), so ``encode``, ``segment``, tiling, the
widget and the batch command work the same for all of them.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn

from .maps import min_max, similarity_grid, upsample
from .text import PAPER_TEMPLATES, TextEmbeddingCache, clean_prompts


@dataclass
class VisionOutput:
    """What one pass of a dense method through the vision tower produces."""

    dense_features: torch.Tensor  # [B, grid_h, grid_w, E], L2-normalised patch features
    clip_embedding: torch.Tensor | None  # [B, E], L2-normalised ordinary CLIP image embedding


class PromptableModel(ABC):
    """A model that can be asked where a text prompt is in an image."""

    #: What the ``"paper"`` template set means for this model.
    default_templates: tuple[str, ...] = PAPER_TEMPLATES
    name: str | None
    pretrained: str | None
    _text_cache: TextEmbeddingCache

    @property
    @abstractmethod
    def method(self) -> str:
        """The registry name of how dense features are made ("gem", "simzss", ...)."""

    @property
    @abstractmethod
    def module(self) -> nn.Module:
        """The torch module that holds every weight (moved to a device and precision as one)."""

    @property
    @abstractmethod
    def patch_size(self) -> int:
        """Patch side in pixels (inputs must be multiples of it)."""

    @property
    @abstractmethod
    def native_size(self) -> int:
        """The image side the model was trained at."""

    @property
    @abstractmethod
    def device(self) -> torch.device: ...

    @property
    @abstractmethod
    def dtype(self) -> torch.dtype: ...

    @property
    @abstractmethod
    def logit_scale(self) -> float:
        """The scale of image-text logits for presence scores."""

    @property
    @abstractmethod
    def embed_dim(self) -> int: ...

    @abstractmethod
    def describe(self) -> dict:
        """The model, method and options, JSON-ready, for storing with results."""

    @abstractmethod
    def encode_image(self, pixels: torch.Tensor, *, with_clip_embedding: bool = True) -> VisionOutput:
        """L2-normalised dense features ``[B, gh, gw, E]`` (and an image embedding) of
        normalised ``pixels`` ``[B, 3, H, W]``."""

    def encode_text(
        self, prompts: Sequence[str] | str, templates: Sequence[str] | None = None
    ) -> torch.Tensor:
        """L2-normalised text embeddings ``[P, E]`` (float32), ensembled over templates
        (:attr:`default_templates` when none are given), cached per prompt."""
        prompts = clean_prompts(prompts)
        templates = self.default_templates if templates is None else tuple(templates)
        with torch.inference_mode():
            return self._text_cache.get(prompts, templates, self.device)

    def heatmaps(self, pixels: torch.Tensor, prompts: Sequence[str] | str) -> torch.Tensor:
        """The GEM paper's heatmaps ``[B, P, H, W]`` in [0, 1] for normalised ``pixels``:
        cosine maps upsampled bilinearly to the input, min-max scaled per prompt."""
        features = self.encode_image(pixels, with_clip_embedding=False)
        text = self.encode_text(prompts)
        with torch.inference_mode():
            grid = similarity_grid(features.dense_features, text)
            return min_max(upsample(grid, tuple(pixels.shape[-2:])), inplace=True)
