"""The methods by name: one registry instead of ``if method == ...`` across files."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ....vfm import ExtraModel
from .base import DenseMethod

_METHODS: dict[str, type[DenseMethod]] = {}


def register(method_class: type[DenseMethod]) -> type[DenseMethod]:
    """Class decorator: make a method available under its ``name``."""
    if method_class.name in _METHODS:
        raise ValueError(f"a method named {method_class.name!r} is already registered")
    _METHODS[method_class.name] = method_class
    return method_class


def method_names() -> tuple[str, ...]:
    """Registered method names, GEM first."""
    return tuple(_METHODS)


def self_contained_method_names() -> tuple[str, ...]:
    """The methods that need no other model's weights (ProxyCLIP needs its proxy's)."""
    return tuple(name for name, cls in _METHODS.items() if not cls.needs_extra_weights)


def method_class(name: str) -> type[DenseMethod]:
    """The class registered as ``name``; a clear ``ValueError`` listing the choices otherwise."""
    key = str(name).strip().lower()
    if key not in _METHODS:
        raise ValueError(f"unknown method {name!r}; choose one of {', '.join(_METHODS)}")
    return _METHODS[key]


def create_method(name: str = "gem", **options: Any) -> DenseMethod:
    """An instance of method ``name`` with ``options`` (validated; defaults are the paper's)."""
    return method_class(name)(**options)


@dataclass(frozen=True)
class MethodInfo:
    """What :func:`list_methods` tells about one method."""

    name: str
    title: str
    summary: str
    provenance: str
    verified: bool
    defaults: dict[str, Any]
    #: The other model it needs and whether it is cached (None: CLIP's weights suffice).
    extra_model: ExtraModel | None = None

    def __str__(self) -> str:
        flag = "" if self.verified else " [reconstructed, unverified equations]"
        extra = f" [needs {self.extra_model}]" if self.extra_model else ""
        return f"{self.name:<15} {self.summary}{flag}{extra} — {self.provenance}"


def list_methods() -> list[MethodInfo]:
    """Every method: name, what it changes, where its definition comes from, default options."""
    return [
        MethodInfo(cls.name, cls.title, cls.summary, cls.provenance, cls.verified,
                   cls.Options().to_dict(), cls.extra_model())
        for cls in _METHODS.values()
    ]
