"""The model side of an evaluation: prompt embeddings and per-crop prompt logits.

:class:`DenseScorer` is the small interface the protocol needs; :class:`ModelScorer`
implements it with the engine's models (:class:`~napari_gem.PromptableModel`). Tests (or other
models) can pass any object with the same four members.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

import torch
import torch.nn.functional as F

from ..engine.maps import similarity_grid, upsample


@runtime_checkable
class DenseScorer(Protocol):
    """Scores image crops against prompt embeddings, pixel by pixel."""

    @property
    def device(self) -> torch.device:
        """Where pixels and embeddings should live."""
        ...

    @property
    def logit_scale(self) -> float:
        """The model's own logit scale (used when the protocol does not fix one)."""
        ...

    def embed_prompts(self, prompts: Sequence[str], templates: Sequence[str]) -> torch.Tensor:
        """Prompt embeddings ``[P, E]``, ensembled over the format-string ``templates``."""
        ...

    def crop_similarity(self, pixels: torch.Tensor, text: torch.Tensor) -> torch.Tensor:
        """Logits ``[B, P, h, w]`` (cosine similarities) of CLIP-normalised crops
        ``[B, 3, h, w]`` against embeddings ``text`` ``[P, E]``, at the crops' size."""
        ...


def centred_padding(height: int, width: int, multiple: int) -> tuple[int, int, int, int]:
    """``(left, right, top, bottom)`` zero padding that makes both sides multiples of
    ``multiple``, split as evenly as possible (the extra pixel goes right / bottom)."""
    extra_h = -height % multiple
    extra_w = -width % multiple
    return extra_w // 2, extra_w - extra_w // 2, extra_h // 2, extra_h - extra_h // 2


class ModelScorer:
    """:class:`DenseScorer` over an engine model (any :class:`~napari_gem.PromptableModel`).

    A crop whose sides are not multiples of the patch size is padded around its
    centre with zeros (the mean colour after normalisation), scored, and the logits
    are cut back to the crop, as ClearCLIP does.
    """

    def __init__(self, model) -> None:
        self.model = model

    @property
    def device(self) -> torch.device:
        return torch.device(self.model.device)

    @property
    def logit_scale(self) -> float:
        return float(self.model.logit_scale)

    def describe(self) -> dict:
        """The model and its method settings, for the result file."""
        describe = getattr(self.model, "describe", None)
        return dict(describe()) if callable(describe) else {"model": repr(self.model)}

    def embed_prompts(self, prompts: Sequence[str], templates: Sequence[str]) -> torch.Tensor:
        return self.model.encode_text(list(prompts), templates=tuple(templates))

    def crop_similarity(self, pixels: torch.Tensor, text: torch.Tensor) -> torch.Tensor:
        height, width = pixels.shape[-2:]
        left, right, top, bottom = centred_padding(height, width, int(self.model.patch_size))
        padded = F.pad(pixels, (left, right, top, bottom)) if left + right + top + bottom else pixels
        features = self.model.encode_image(padded, with_clip_embedding=False).dense_features
        grid = similarity_grid(features, text.to(features.device))
        logits = upsample(grid, tuple(padded.shape[-2:]))
        return logits[:, :, top : top + height, left : left + width]


def as_scorer(model) -> DenseScorer:
    """``model`` itself if it is a :class:`DenseScorer`, else a :class:`ModelScorer` of it."""
    return model if isinstance(model, DenseScorer) else ModelScorer(model)


def __getattr__(name: str):
    if name == "GemScorer":  # the scorer's first name, from when GEM was the only method
        from ..engine.deprecation import warn_deprecated

        warn_deprecated("GemScorer", "ModelScorer")
        return ModelScorer
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
