"""The engine's errors, and the one test for running out of memory (the bottom floor).

Every other engine module may import this one; it imports nothing of the engine.
"""

from __future__ import annotations


class ModelLoadError(RuntimeError):
    """The model could not be built; the message says why and what to do."""


class UnsupportedModelError(ValueError):
    """The model's vision tower is not one the dense methods can run."""


class Cancelled(Exception):
    """The caller asked to stop; nothing partial was produced."""


def is_out_of_memory(error: BaseException) -> bool:
    """Whether ``error`` means the device ran out of memory (CUDA, MPS or the CPU)."""
    if isinstance(error, MemoryError):
        return True
    import torch

    if isinstance(error, torch.OutOfMemoryError):
        return True
    return isinstance(error, RuntimeError) and "out of memory" in str(error).lower()


def first_line(error: BaseException, limit: int = 300) -> str:
    """The first line of an error's message, cut to ``limit`` characters ("" when empty)."""
    text = str(error).strip()
    return text.splitlines()[0][:limit] if text else ""


def key_mismatch(expected: set[str], given: set[str], known: set[str] | None = None,
                 limit: int = 8) -> str:
    """"missing keys: ...; unexpected keys: ..." for a state dict ("" when they match).

    ``known`` are keys that may be present without being expected (default: ``expected``).
    """
    parts = []
    for label, keys in (("missing", expected - given), ("unexpected", given - (known or expected))):
        if keys:
            ordered = sorted(keys)
            more = f" (and {len(ordered) - limit} more)" if len(ordered) > limit else ""
            parts.append(f"{label} keys: {', '.join(ordered[:limit])}{more}")
    return "; ".join(parts)
