"""The :class:`GroundingModel`: a CLIP answering "where is X?" with a dense method (GEM by default)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from ...promptable import PromptableModel, VisionOutput
from ...text import TextEmbeddingCache
from .methods import DenseMethod, create_method
from .trunks import VisionTrunk, as_trunk


class GroundingModel(PromptableModel):
    """A dense method (GEM by default) on top of a CLIP vision transformer (any trunk adapter fits).

    The wrapped model's weights are used as they are (never copied or changed).
    Text embeddings are cached per prompt; image features come from
    :meth:`encode_image` and can be asked any number of prompts.
    """

    def __init__(
        self,
        clip_model: nn.Module,
        tokenizer: Callable,
        method: DenseMethod | str = "gem",
        *,
        name: str | None = None,
        pretrained: str | None = None,
        text_cache: TextEmbeddingCache | None = None,
    ) -> None:
        trunk = as_trunk(clip_model.visual)
        dense_method = create_method(method) if isinstance(method, str) else method
        dense_method.check_model(trunk)
        self.clip_model = clip_model
        self.tokenizer = tokenizer
        self.dense_method = dense_method
        self.name = name
        self.pretrained = pretrained
        self._text_cache = text_cache or TextEmbeddingCache(clip_model, tokenizer)

    @classmethod
    def from_open_clip(
        cls, clip_model: nn.Module, tokenizer: Callable, *, method: str = "gem", **options: Any
    ) -> GroundingModel:
        """Wrap an already-built open_clip CLIP model with ``method`` (paper defaults)."""
        return cls(clip_model, tokenizer, create_method(method, **options))

    def with_method(self, method: str | DenseMethod, **options: Any) -> GroundingModel:
        """The same weights (and text cache) with another method or other options."""
        dense_method = create_method(method, **options) if isinstance(method, str) else method
        return GroundingModel(self.clip_model, self.tokenizer, dense_method, name=self.name,
                              pretrained=self.pretrained, text_cache=self._text_cache)

    # -- facts about the model -------------------------------------------------------
    @property
    def method(self) -> str:
        """The dense method's registry name ("gem", "naclip", ...)."""
        return self.dense_method.name

    @property
    def method_options(self):
        """The dense method's options (a frozen dataclass)."""
        return self.dense_method.options

    @property
    def module(self) -> nn.Module:
        return self.clip_model

    @property
    def visual(self) -> nn.Module:
        return self.clip_model.visual

    @property
    def trunk(self) -> VisionTrunk:
        """The vision tower as the dense methods read it (see :mod:`.trunks`)."""
        return as_trunk(self.visual)

    @property
    def patch_size(self) -> int:
        """Patch side in pixels (square patches)."""
        return int(self.trunk.patch_size[0])

    @property
    def native_size(self) -> int:
        """The image side the model was pretrained at (224 for most CLIPs)."""
        return int(self.trunk.native_size)

    @property
    def device(self) -> torch.device:
        return self.trunk.parameter.device

    @property
    def dtype(self) -> torch.dtype:
        return self.trunk.parameter.dtype

    @property
    def logit_scale(self) -> float:
        """CLIP's learned logit scale (about 100 for trained models)."""
        scale = getattr(self.clip_model, "logit_scale", None)
        return float(scale.detach().exp()) if scale is not None else 100.0

    @property
    def embed_dim(self) -> int:
        return int(self.trunk.output_dim)

    def describe(self) -> dict:
        """The model, method and options, for storing with results."""
        return {
            "model": self.name,
            "pretrained": self.pretrained,
            "activation": self.trunk.activation,  # QuickGELU or GELU: as the weights were trained
            **self.dense_method.describe(),
            "device": str(self.device),
            "precision": str(self.dtype).removeprefix("torch."),
        }

    # -- encoding ---------------------------------------------------------------------
    def encode_image(self, pixels: torch.Tensor, *, with_clip_embedding: bool = True) -> VisionOutput:
        """The method's dense features ``[B, gh, gw, E]`` (and the CLIP image embedding).

        ``pixels``: CLIP-normalised ``[B, 3, H, W]``, ``H`` and ``W`` multiples of
        :attr:`patch_size`.
        """
        if pixels.ndim != 4 or pixels.shape[1] != 3:
            raise ValueError(f"pixels must be [B, 3, H, W], got shape {tuple(pixels.shape)}")
        with torch.inference_mode():
            # float32 until the tower re-normalises them (vision.embed), then the model's
            # precision: rounding to bf16 first would round CLIP's values, not the model's.
            pixels = pixels.to(device=self.device, dtype=torch.promote_types(self.dtype, torch.float32))
            return self.dense_method.forward(self.trunk, pixels, with_clip_embedding=with_clip_embedding)

    def __repr__(self) -> str:
        return (
            f"GroundingModel(model={self.name!r}, pretrained={self.pretrained!r}, "
            f"method={self.dense_method!r}, device={self.device}, dtype={self.dtype})"
        )
