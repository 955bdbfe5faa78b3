"""Command-line arguments that choose a dense method and its options (shared by commands)."""

from __future__ import annotations

import argparse
import ast
from typing import Any

from ..engine.families import list_families
from ..engine.families.clip.methods import method_names
from ..engine.loading import DEFAULT_MODEL, default_method
from ..engine.method_fields import method_options, options_of
from .option_flags import add_option_flags, options_from_flags


def method_descriptions():
    """Every registered method's options, then those of families that make their own dense
    features (Talk2DINO's weights files), one flag each: ``--sigma``, and ``--gem-temperature``
    where two methods (or a segmentation option) share a name."""
    return [option.description for option in method_options()]


def method_choices() -> tuple[str, ...]:
    """The CLIP methods, then the own methods of the other families (simzss, talk2dino)."""
    own = [family.default_method for family in list_families() if not family.uses_clip_methods]
    return tuple(dict.fromkeys((*method_names(), *own)))


def add_method_arguments(group) -> None:
    """``--method``, ``--option KEY=VALUE`` and one flag per method option (``--depth``, ``--sigma``...)."""
    group.add_argument("--method", default=None, type=str.lower, choices=method_choices(),
                       help="dense method (see `napari-gem methods`; default: gem, or the own "
                       "method of a SimZSS or Talk2DINO model)")
    group.add_argument("--option", action="append", default=[], metavar="KEY=VALUE",
                       type=_option, dest="method_option",
                       help="a method option, e.g. sigma=3 (NACLIP) or global_blocks=5,6 (GCLIP); "
                       "repeatable")
    add_option_flags(group, method_descriptions())


def method_options_from_args(args: argparse.Namespace) -> dict[str, Any]:
    """The options given with ``--option`` and the option flags, named as the chosen method
    (``--method``, else the model's own) takes them; the method validates them."""
    keyed = method_options()
    method = args.method or default_method(getattr(args, "model", None) or DEFAULT_MODEL)
    flags = options_from_flags(args, [option.description for option in keyed])
    return {**dict(args.method_option), **options_of(method, flags, keyed)}


def _parse_value(text: str) -> Any:
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        lowered = text.lower()
        if lowered in ("true", "false"):
            return lowered == "true"
        if lowered in ("none", "auto"):
            return None
        return text


def _option(text: str) -> tuple[str, Any]:
    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise argparse.ArgumentTypeError(f"an option is KEY=VALUE, got {text!r}")
    return key.strip(), _parse_value(value.strip())
