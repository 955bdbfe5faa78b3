"""The sources of regions, one small module each, in a registry: ``slic`` (superpixels, no
weights), ``labels`` (a label image the user gives: a Labels layer, a file) and ``sam2``
(SAM 2's automatic masks, offered only where the package and its weights are there)."""

from __future__ import annotations

from .base import ReadRgb, RegionSource

_SOURCES: dict[str, RegionSource] = {}


def register(source_class: type[RegionSource]) -> type[RegionSource]:
    _SOURCES[source_class.name] = source_class()
    return source_class


def source_names() -> tuple[str, ...]:
    """Every registered source, available here or not."""
    return tuple(_SOURCES)


def get_source(name: str) -> RegionSource:
    """The source ``name``; a clear ``ValueError`` for unknown names and unavailable sources."""
    if name not in _SOURCES:
        raise ValueError(f"regions must be none or one of {', '.join(_SOURCES)}; got {name!r}")
    source = _SOURCES[name]
    reason = source.unavailable()
    if reason is not None:
        raise ValueError(f"regions={name!r} is not available here: {reason}")
    return source


def available_choices() -> tuple[tuple[str, str], ...]:
    """``(label, name)`` of the sources that can run here, for a form."""
    return tuple((source.title, name) for name, source in _SOURCES.items() if source.unavailable() is None)


# Each registers itself; the order is the form's order.
from . import slic  # noqa: E402,F401,I001
from . import labels  # noqa: E402,F401
from . import sam2  # noqa: E402,F401

__all__ = ["ReadRgb", "RegionSource", "available_choices", "get_source", "register", "source_names"]
