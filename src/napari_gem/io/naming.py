"""File names for outputs: filesystem-safe slugs of prompts, unique per image."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable

MAX_SLUG_LENGTH = 60


def slugify(text: str) -> str:
    """A lowercase ASCII slug of ``text`` (``"Cell nucleus!"`` -> ``"cell-nucleus"``).

    Lowercase because macOS and Windows file systems ignore case, so ``Nucleus`` and
    ``nucleus`` must not be told apart by case alone.
    """
    ascii_text = unicodedata.normalize("NFKD", str(text)).encode("ascii", "ignore").decode()
    slug = re.sub(r"[^a-z0-9]+", "-", ascii_text.lower()).strip("-")
    return slug[:MAX_SLUG_LENGTH].rstrip("-") or "prompt"


def unique_slugs(prompts: Iterable[str]) -> dict[str, str]:
    """Prompt -> slug, in order, with ``-2``, ``-3``... added where two prompts slug alike."""
    slugs: dict[str, str] = {}
    taken: set[str] = set()
    for prompt in prompts:
        if prompt in slugs:
            continue
        base = slugify(prompt)
        slug, number = base, 1
        while slug in taken:
            number += 1
            slug = f"{base}-{number}"
        slugs[prompt] = slug
        taken.add(slug)
    return slugs


def check_stem(stem: str) -> str:
    """Refuse stems that would put files outside the output folder or hide them."""
    if not stem or stem in {".", ".."} or "/" in stem or "\\" in stem or "\0" in stem:
        raise ValueError(f"invalid output file stem {stem!r}: it must be a plain file name")
    return stem
