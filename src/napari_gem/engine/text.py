"""Prompt templates and CLIP text embeddings, cached per prompt.

The text tower is causal: the pooled end-of-text token never sees the padding after
it, so sequences are cut just after the last pooled position before they enter the
transformer. The output is the same as a full-length pass, at a fraction of the cost.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import nn

PAPER_TEMPLATES: tuple[str, ...] = ("a photo of a {}.",)


def imagenet_templates() -> tuple[str, ...]:
    """The 80 OpenAI ImageNet prompt templates, as format strings."""
    from open_clip.zero_shot_metadata import OPENAI_IMAGENET_TEMPLATES

    return tuple(template("{}") for template in OPENAI_IMAGENET_TEMPLATES)


def resolve_templates(
    templates: str | Sequence[str], paper: tuple[str, ...] = PAPER_TEMPLATES
) -> tuple[str, ...]:
    """``"paper"`` (the model's own: GEM's one template for CLIP), ``"imagenet80"`` (the
    ensemble) or explicit format strings."""
    if templates == "paper":
        return tuple(paper)
    if templates == "imagenet80":
        return imagenet_templates()
    if isinstance(templates, str):
        raise ValueError(
            f"unknown template set {templates!r}: use 'paper', 'imagenet80' or a list of "
            "format strings with one '{}'"
        )
    resolved = tuple(templates)
    if not resolved or any("{}" not in template for template in resolved):
        raise ValueError("every prompt template must contain '{}' where the prompt goes")
    return resolved


def clean_prompts(prompts: Sequence[str] | str) -> list[str]:
    """Strip prompts; refuse non-strings (``TypeError``) and empty ones (``ValueError``).

    Nothing is turned into text silently: ``None`` or ``3`` as a prompt is a mistake,
    not a request to look for the word "None" or "3".
    """
    if isinstance(prompts, str):
        prompts = [prompts]
    elif prompts is None or isinstance(prompts, (bytes, bytearray, Mapping)) or not isinstance(
        prompts, Iterable
    ):
        raise TypeError(
            f"prompts must be a string or a list of strings; got {type(prompts).__name__} "
            f"{_short_repr(prompts)}"
        )
    prompts = list(prompts)
    for index, prompt in enumerate(prompts):
        if not isinstance(prompt, str):
            raise TypeError(
                f"prompt {index} is {type(prompt).__name__} {_short_repr(prompt)}, not a "
                "string: every prompt must be text"
            )
    cleaned = [prompt.strip() for prompt in prompts]
    if not cleaned:
        raise ValueError("no prompts given: type at least one thing to look for")
    if any(not prompt for prompt in cleaned):
        raise ValueError("a prompt is empty or only whitespace")
    return cleaned


def _short_repr(value, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _pooled_positions(model: nn.Module, tokens: torch.Tensor) -> torch.Tensor | None:
    pool_type = getattr(model, "text_pool_type", "argmax")
    if pool_type == "argmax":
        return tokens.argmax(dim=-1)
    eos = getattr(model, "text_eos_id", None)
    if pool_type == "eos" and eos is not None:
        return (tokens == eos).int().argmax(dim=-1)
    return None


def _supports_truncation(model: nn.Module) -> bool:
    needed = ("token_embedding", "positional_embedding", "transformer", "ln_final", "attn_mask")
    return all(getattr(model, name, None) is not None for name in needed)


def encode_tokens(model: nn.Module, tokens: torch.Tensor) -> torch.Tensor:
    """CLIP text embeddings (not normalised) of tokenised text, truncated after the EOT."""
    positions = _pooled_positions(model, tokens)
    if positions is None or not _supports_truncation(model):
        return model.encode_text(tokens)
    length = int(positions.max()) + 1
    cast_dtype = model.transformer.get_cast_dtype()
    hidden = model.token_embedding(tokens[:, :length]).to(cast_dtype)
    hidden = hidden + model.positional_embedding[:length].to(cast_dtype)
    hidden = model.transformer(hidden, attn_mask=model.attn_mask[:length, :length])
    hidden = model.ln_final(hidden)
    pooled = hidden[torch.arange(hidden.shape[0], device=hidden.device), positions]
    projection = model.text_projection
    if projection is None:
        return pooled
    return projection(pooled) if isinstance(projection, nn.Linear) else pooled @ projection


class TextEmbeddingCache:
    """Normalised, template-ensembled prompt embeddings, computed once per prompt."""

    def __init__(self, model: nn.Module, tokenizer: Callable, batch_size: int = 256) -> None:
        self._model = model
        self._tokenizer = tokenizer
        self._batch_size = batch_size
        self._embeddings: dict[tuple[str, tuple[str, ...]], torch.Tensor] = {}

    def __len__(self) -> int:
        return len(self._embeddings)

    def clear(self) -> None:
        self._embeddings.clear()

    def get(self, prompts: Sequence[str], templates: Sequence[str], device) -> torch.Tensor:
        """``[P, E]`` float32 embeddings on ``device``, L2-normalised."""
        templates = tuple(templates)
        missing = [p for p in dict.fromkeys(prompts) if (p, templates) not in self._embeddings]
        if missing:
            self._compute(missing, templates, device)
        return torch.stack([self._embeddings[(p, templates)] for p in prompts])

    def _compute(self, prompts: list[str], templates: tuple[str, ...], device) -> None:
        # One prompt at a time: a prompt's embedding must not depend on which other
        # prompts happen to be missing from the cache (batch shape changes rounding).
        for prompt in prompts:
            texts = [template.format(prompt) for template in templates]
            chunks = []
            for start in range(0, len(texts), self._batch_size):
                tokens = self._tokenizer(texts[start : start + self._batch_size]).to(device)
                chunks.append(F.normalize(encode_tokens(self._model, tokens).float(), dim=-1))
            per_template = torch.cat(chunks)
            ensembled = per_template[0] if len(templates) == 1 else per_template.mean(dim=0)
            self._embeddings[(prompt, templates)] = F.normalize(ensembled, dim=-1)
