"""Prompts for a batch: parsing them, their templates, and reproducible text embeddings."""

from __future__ import annotations

from collections.abc import Sequence

from ..engine import GEM, SegmentOptions


def parse_prompts(prompts: Sequence[str] | str) -> list[str]:
    """Prompts from a list or a comma-separated string; stripped, each once, none empty."""
    if isinstance(prompts, str):
        prompts = prompts.split(",")
    cleaned = [str(prompt).strip() for prompt in prompts]
    if not any(cleaned):
        raise ValueError("no prompts given: name at least one thing to look for")
    if not all(cleaned):
        raise ValueError(f"empty prompt in {list(prompts)!r}")
    return list(dict.fromkeys(cleaned))


def template_set(name: str) -> tuple[str, ...]:
    """The prompt templates of :attr:`SegmentOptions.templates` as format strings."""
    if name == "paper":
        return ("a photo of a {}.",)
    from open_clip.zero_shot_metadata import OPENAI_IMAGENET_TEMPLATES

    return tuple(template("{}") for template in OPENAI_IMAGENET_TEMPLATES)


def embed_prompts_one_by_one(gem: GEM, prompts: Sequence[str], options: SegmentOptions) -> None:
    """Fill the model's text-embedding cache one prompt at a time.

    The cache embeds missing prompts together, and a matrix product over three prompts
    may round differently from one over two. Which prompts meet in one batch depends on
    which task a process ran first, so without this the same image could get heatmaps
    differing in the last bit on different workers. One at a time, every process gets
    the same numbers.
    """
    templates = template_set(options.templates)
    background = [p.strip() for p in options.background_prompts if p.strip()]
    for prompt in dict.fromkeys([*prompts, *background]):
        gem.encode_text([prompt], templates)
