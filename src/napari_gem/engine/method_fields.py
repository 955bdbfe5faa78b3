"""Every method's options as the widget and the command line offer them: one key each.

An option name that only one method uses keeps its name as the key (``--sigma``, the
``sigma`` field). A name that two methods use, or that a :class:`~napari_gem.SegmentOptions`
field already has (``window``), is namespaced by its method: ``gem_temperature``, the flag
``--gem-temperature``. Each keyed option keeps its own method's description (range, help),
so a new method's ``temperature`` never shows GEM's range.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from .described import OptionDescription, describe
from .families import list_families
from .families.clip.methods import method_class, method_names
from .options import SegmentOptions

#: What the model arguments beside the method options are called (``--device``, ``--option``'s
#: ``method_option``): a method option of one of these names is namespaced too.
MODEL_WORDS = ("model", "pretrained", "device", "precision", "cache_dir", "method", "method_option",
               "method_options")


@dataclass(frozen=True)
class MethodOption:
    """One method's option under its field and flag key."""

    method: str  # the method that takes it
    name: str  # the option's name as the method takes it
    options_class: type  # the method's options class
    description: OptionDescription  # named by ``key``: what a field or flag is built from

    @property
    def key(self) -> str:
        """The field's name and the flag's (``sigma``; ``gem_temperature`` where names clash)."""
        return self.description.name


def namespace(method: str) -> str:
    """The key prefix of ``method``'s clashing options (``gem_``; ``maskclip_nores_``)."""
    return method.replace("-", "_") + "_"


def _all_classes() -> dict[str, type]:
    own = {family.default_method: family.own_options for family in list_families()
           if family.own_options is not None}
    return {**{method: method_class(method).Options for method in method_names()}, **own}


def options_classes() -> dict[str, type]:
    """Each method's options class by method (CLIP methods, then the families' own methods);
    methods sharing one options class are listed once, under the first."""
    classes: dict[str, type] = {}
    for method, options_class in _all_classes().items():
        if options_class not in classes.values():
            classes[method] = options_class
    return classes


def options_class_of(method: str) -> type | None:
    """The options class of ``method`` (a CLIP method or a family's own); None if unknown."""
    return _all_classes().get(method)


def method_options(reserved: Iterable[str] | None = None) -> list[MethodOption]:
    """Every method's options keyed for fields and flags (see the module docstring).

    ``reserved``: names a key must not take (default: the :class:`SegmentOptions` fields,
    which share the widget and the ``segment`` command with the method options, and
    :data:`MODEL_WORDS`).
    """
    if reserved is None:
        reserved = {*(item.name for item in describe(SegmentOptions)), *MODEL_WORDS}
    reserved = set(reserved)
    classes = options_classes()
    uses = Counter(item.name for options_class in classes.values() for item in describe(options_class))
    keyed = []
    for method, options_class in classes.items():
        for item in describe(options_class):
            name = item.name
            if uses[name] > 1 or name in reserved:
                item = dataclasses.replace(item, name=namespace(method) + name, flag=None)
            keyed.append(MethodOption(method, name, options_class, item))
    return keyed


def option_names() -> set[str]:
    """Every option name some method takes (as the method takes it)."""
    return {item.name for options_class in options_classes().values() for item in describe(options_class)}


def options_of(method: str, given: Mapping[str, Any], keyed: Iterable[MethodOption]) -> dict[str, Any]:
    """``given`` (values by key) as ``method`` takes them: its namespaced keys lose their prefix;
    another method's namespaced key stays as it is, so the method refuses it by that name."""
    options_class = options_class_of(method)
    mine = {option.key: option.name for option in keyed if option.options_class is options_class}
    return {mine.get(key, key): value for key, value in given.items()}
