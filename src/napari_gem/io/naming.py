"""File names for outputs: filesystem-safe slugs of prompts, unique per image."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Sequence

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


def mask_variants(edited: Sequence[bool]) -> list[str]:
    """File-name variants for several masks of one prompt, given which are edited by hand.

    An unedited mask is plain (``""``), an edited one ``"edited"``; repeats are numbered
    (``"2"``, ``"edited-2"``). Variants use the slug alphabet, so with the ``_``
    separator they can never be mistaken for part of a prompt's slug.
    """
    counts = {True: 0, False: 0}
    variants = []
    for flag in edited:
        counts[bool(flag)] += 1
        number = counts[bool(flag)]
        base = "edited" if flag else ""
        if number == 1:
            variants.append(base)
        else:
            variants.append(f"{base}-{number}" if base else str(number))
    return variants
