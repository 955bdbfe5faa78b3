"""Command-line flags built from option descriptions (:mod:`napari_gem.engine.described`).

A flag is given only when the user types it: flags default to ``None``, and the options
class keeps its own default for the others.
"""

from __future__ import annotations

import argparse
from collections.abc import Iterable
from typing import Any

from ..engine.described import OptionDescription


def add_option_flags(group, descriptions: Iterable[OptionDescription]) -> None:
    """One flag per described option (``--input-size``, ``--fusion``, ``--per-head`` ...)."""
    for item in descriptions:
        if item.custom:
            continue
        flag = "--" + (item.flag or item.name).replace("_", "-")
        group.add_argument(flag, dest=item.name, default=None, help=_help(item), **_parsing(item))


def options_from_flags(args: argparse.Namespace, descriptions: Iterable[OptionDescription]) -> dict[str, Any]:
    """The options the user gave, as the options class takes them ("auto" is ``None``)."""
    given = {}
    for item in descriptions:
        value = getattr(args, item.name, None)
        if item.custom or value is None:
            continue
        if value == "auto":
            value = None
        elif isinstance(value, list):
            value = None if value == ["auto"] else tuple(value)
        given[item.name] = value
    return given


def _help(item: OptionDescription) -> str:
    default = item.auto if item.default is None and item.auto else item.default
    if isinstance(default, tuple):
        default = " ".join(map(str, default)) if item.kind != "texts" else ", ".join(default)
    return f"{item.help} (default: {default})".replace("%", "%%")


def _parsing(item: OptionDescription) -> dict[str, Any]:
    if item.kind == "bool":
        return {"action": argparse.BooleanOptionalAction}
    if item.kind in ("choice", "toggle"):
        return {"choices": item.values}
    if item.kind == "texts":
        return {"type": _texts, "metavar": "TEXT[,TEXT...]"}
    if item.kind == "path":
        return {"type": str, "metavar": "PATH"}
    if item.kind in ("ints", "floats"):
        size = len(item.default) if item.kind == "floats" and item.default else "+"
        return {"type": _number(item, int if item.kind == "ints" else float), "nargs": size,
                "metavar": "N"}
    return {"type": _number(item, int if item.kind == "int" else float),
            "metavar": "N" if item.auto is None else "N|auto"}


def _texts(text: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in text.split(",") if part.strip())


def _number(item: OptionDescription, convert):
    def parse(text: str):
        if item.auto is not None and text.lower() in ("auto", item.auto.lower(), "none"):
            return "auto"
        try:
            return convert(text)
        except ValueError:
            what = "a whole number" if convert is int else "a number"
            raise argparse.ArgumentTypeError(
                f"{item.name} must be {what}{' or auto' if item.auto else ''}, got {text!r}") from None

    return parse
