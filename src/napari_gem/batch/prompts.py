"""Prompts for a batch: from the command line's comma-separated list to prompt strings.

Templates and text embeddings are the engine's (``resolve_templates`` and
``GroundingModel.encode_text``, which embeds each prompt on its own, so every worker gets the
same numbers whatever it ran before).
"""

from __future__ import annotations

from collections.abc import Sequence


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
