"""The model families by name, and which family a model name belongs to."""

from __future__ import annotations

from ..errors import ModelLoadError
from .base import CatalogueEntry, ModelFamily

_FAMILIES: dict[str, ModelFamily] = {}


def register_family(family_class: type[ModelFamily]) -> type[ModelFamily]:
    """Class decorator: make a family available (asked in order of its ``priority``)."""
    if family_class.name in _FAMILIES:
        raise ValueError(f"a model family named {family_class.name!r} is already registered")
    _FAMILIES[family_class.name] = family_class()
    ordered = sorted(_FAMILIES.values(), key=lambda family: family.priority)
    _FAMILIES.clear()
    _FAMILIES.update((family.name, family) for family in ordered)
    return family_class


def list_families() -> tuple[ModelFamily, ...]:
    """Every registered family, in the order they are asked."""
    return tuple(_FAMILIES.values())


def family_named(name: str) -> ModelFamily:
    """The family registered as ``name``."""
    if name not in _FAMILIES:
        raise ValueError(f"unknown model family {name!r}; known: {', '.join(_FAMILIES)}")
    return _FAMILIES[name]


def family_for(model_name: str) -> ModelFamily:
    """The family that claims ``model_name`` (raises :class:`ModelLoadError` when none does)."""
    for family in _FAMILIES.values():
        if family.claims(model_name):
            return family
    raise ModelLoadError(
        f"no model family knows {model_name!r}; known families: "
        + "; ".join(f"{family.name} ({family.summary})" for family in _FAMILIES.values())
    )


def catalogue() -> list[CatalogueEntry]:
    """Every family's offered models, in family order (pickers group them by ``group``)."""
    return [entry for family in _FAMILIES.values() for entry in family.catalogue()]
