"""The Talk2DINO model behind the engine's model surface.

Dense features are DINOv2's normalised patch tokens at 448×448 (a 32×32 grid); text
embeddings are the projected, unit CLIP text features (spec §5). Their product is the
cosine map, as for every model, so ``encode``, ``segment``, tiling, presence and PAMR work
unchanged. The official per-crop masks (sigmoid, background cleaning) are
:meth:`Talk2DinoModel.crop_similarity`, which ``napari-gem evaluate`` uses.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ...promptable import PromptableModel, VisionOutput
from ...text import TextEmbeddingCache, encode_tokens
from ...vfm import ProxyVfm
from .architecture import SUB_IMAGENET_TEMPLATES, Talk2DinoArchitecture
from .image_side import NORM_EPS, backbone_pixels, crop_masks, crop_tokens
from .options import Talk2DinoOptions
from .projection import ProjectionLayer

METHOD = "talk2dino"
#: Softmax scale of the cosine for calibrated scores and presence [adaptation: Talk2DINO
#: has none (its masks are sigmoids compared with a threshold); CLIP's 100 is ours].
LOGIT_SCALE = 100.0


class Talk2DinoNetwork(nn.Module):
    """The frozen DINOv2 backbone, the frozen CLIP (text side) and the projection."""

    def __init__(self, architecture: Talk2DinoArchitecture, backbone: ProxyVfm, text: nn.Module,
                 projection: ProjectionLayer) -> None:
        super().__init__()
        self.architecture = architecture
        self.backbone = backbone.module
        self.text = text
        self.projection = projection
        self.__dict__["vfm"] = backbone  # position tables; not a second copy of the weights

    def text_features(self, tokens_per_prompt: Sequence[torch.Tensor]) -> torch.Tensor:
        """Unit projected text ``[P, D]``: raw EOT features averaged over the templates,
        projected, then normalised (spec §2.2-2.5)."""
        dtype = self.projection.linear_layer.weight.dtype
        means = torch.stack([encode_tokens(self.text, tokens).to(dtype).mean(dim=0)
                             for tokens in tokens_per_prompt])
        return F.normalize(self.projection(means), dim=-1, eps=NORM_EPS)


class Talk2DinoTextCache(TextEmbeddingCache):
    """Projected prompt embeddings (``[P, D]`` float32 unit vectors), once per (prompt, templates)."""

    def __init__(self, network: Talk2DinoNetwork, tokenizer: Callable) -> None:
        super().__init__(network, tokenizer)
        self._network = network

    def _compute(self, prompts: list[str], templates: tuple[str, ...], device) -> None:
        for prompt in prompts:  # one at a time, as the CLIP cache: no batch-shape rounding
            tokens = self._tokenizer([template.format(prompt) for template in templates]).to(device)
            self._embeddings[(prompt, templates)] = self._network.text_features([tokens])[0].float()


class Talk2DinoModel(PromptableModel):
    """Talk2DINO (Barsellotti et al., ICCV 2025) as a :class:`PromptableModel` and an
    evaluation scorer (``embed_prompts``, ``crop_similarity``)."""

    default_templates: tuple[str, ...] = SUB_IMAGENET_TEMPLATES

    def __init__(self, network: Talk2DinoNetwork, tokenizer: Callable, options: Talk2DinoOptions,
                 *, name: str | None = None, pretrained: str | None = None) -> None:
        self.network = network
        self.tokenizer = tokenizer
        self.options = options
        self.name = name
        self.pretrained = pretrained
        self._text_cache = Talk2DinoTextCache(network, tokenizer)

    # -- facts about the model -------------------------------------------------------
    @property
    def module(self) -> nn.Module:
        return self.network

    @property
    def method(self) -> str:
        return METHOD

    @property
    def architecture(self) -> Talk2DinoArchitecture:
        return self.network.architecture

    @property
    def patch_size(self) -> int:
        return self.architecture.patch_size

    @property
    def native_size(self) -> int:
        return self.architecture.input_size

    @property
    def device(self) -> torch.device:
        return self.network.backbone.patch_embed.proj.weight.device

    @property
    def dtype(self) -> torch.dtype:
        return self.network.backbone.patch_embed.proj.weight.dtype

    @property
    def logit_scale(self) -> float:
        return LOGIT_SCALE

    @property
    def embed_dim(self) -> int:
        return self.architecture.embed_dim

    def describe(self) -> dict:
        """The model and its settings, for storing with results."""
        return {"model": self.name, "pretrained": self.pretrained, "method": self.method,
                "method_options": self.options.to_dict(), "device": str(self.device),
                "precision": str(self.dtype).removeprefix("torch.")}

    # -- encoding ---------------------------------------------------------------------
    def _tokens(self, pixels: torch.Tensor, with_attention: bool):
        if pixels.ndim != 4 or pixels.shape[1] != 3:
            raise ValueError(f"pixels must be [B, 3, H, W], got shape {tuple(pixels.shape)}")
        architecture = self.architecture
        pixels = pixels.to(device=self.device, dtype=self.dtype)
        ready = backbone_pixels(self.network.vfm, pixels, architecture.input_size)
        scale = architecture.attention_scale if with_attention else None
        return crop_tokens(self.network.vfm, ready, attention_scale=scale)

    def encode_image(self, pixels: torch.Tensor, *, with_clip_embedding: bool = True) -> VisionOutput:
        """Unit DINOv2 patch features ``[B, 32, 32, D]`` of CLIP-normalised crops of any size
        (each resized to 448×448, as the official code), and an image embedding.

        The image embedding is the normalised mean of the unit patch features, so presence
        ranks prompts by their mean cosine over the image [adaptation: Talk2DINO defines no
        image-level text match].
        """
        with torch.inference_mode():
            tokens = self._tokens(pixels, with_attention=False)
            unit = F.normalize(tokens.patches, dim=-1, eps=NORM_EPS)
            dense = unit.reshape(unit.shape[0], *tokens.grid, -1)
            embedding = F.normalize(unit.mean(dim=1), dim=-1) if with_clip_embedding else None
            return VisionOutput(dense_features=dense, clip_embedding=embedding)

    # -- the official masks (evaluation scorer) ---------------------------------------
    def embed_prompts(self, prompts: Sequence[str], templates: Sequence[str]) -> torch.Tensor:
        return self.encode_text(list(prompts), templates=tuple(templates))

    def crop_similarity(self, pixels: torch.Tensor, text: torch.Tensor, *,
                        background_cleaning: bool | None = None) -> torch.Tensor:
        """The official masks ``[B, P, h, w]`` of CLIP-normalised crops ``[B, 3, h, w]``
        against unit projected ``text`` ``[P, D]``: ``sigmoid(cos)`` on the 32×32 grid,
        background-cleaned when asked (default: the model's option), resized to the crop
        with ``align_corners=True`` (spec §3)."""
        cleaning = self.options.background_cleaning if background_cleaning is None else background_cleaning
        with torch.inference_mode():
            tokens = self._tokens(pixels, with_attention=cleaning)
            weight = self.architecture.cleaning_weight if cleaning else None
            return crop_masks(tokens, text.to(self.device), tuple(pixels.shape[-2:]),
                              cleaning_weight=weight)

    def __repr__(self) -> str:
        return (f"Talk2DinoModel(model={self.name!r}, pretrained={self.pretrained!r}, "
                f"background_cleaning={self.options.background_cleaning}, device={self.device}, "
                f"dtype={self.dtype})")
