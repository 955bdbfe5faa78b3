"""Command-line arguments that choose a dense method and its options (shared by commands)."""

from __future__ import annotations

import argparse
import ast
from typing import Any

from ..engine.families.clip.methods import method_names

#: GEM's options have their own flags; ``--option`` reaches every method's options.
GEM_FLAGS = ("depth", "iterations", "temperature")


def add_method_arguments(group) -> None:
    """``--method``, ``--option KEY=VALUE`` and GEM's ``--depth/--iterations/--temperature``."""
    group.add_argument("--method", default=None, type=str.lower, choices=method_names(),
                       help="dense method (see `napari-gem methods`; default: gem, or SimZSS's "
                       "own for a SimZSS model)")
    group.add_argument("--option", action="append", default=[], metavar="KEY=VALUE",
                       type=_option, dest="method_option",
                       help="a method option, e.g. sigma=3 (NACLIP) or global_blocks=5,6 (GCLIP); "
                       "repeatable")
    group.add_argument("--depth", type=int, default=None,
                       help="GEM: self-self attention in the last DEPTH-1 blocks (default: 7)")
    group.add_argument("--iterations", type=int, default=None,
                       help="GEM: iterations of the self-self attention (default: 1)")
    group.add_argument("--temperature", type=_temperature, default=None,
                       help="GEM: attention temperature, or 'auto' for the paper's adaptive "
                       "one (default: auto)")


def method_options_from_args(args: argparse.Namespace) -> dict[str, Any]:
    """The options given with ``--option`` and GEM's own flags (the method validates them)."""
    options = dict(args.method_option)
    for name in GEM_FLAGS:
        value = getattr(args, name)
        if value is not None:
            options[name] = None if value == "auto" else value
    return options


def add_refine_arguments(group) -> None:
    """``--refine pamr`` and PAMR's steps and dilations."""
    group.add_argument("--refine", choices=("none", "pamr"),
                       help="refine the heatmaps along image edges with PAMR (default: none)")
    group.add_argument("--pamr-steps", type=int, dest="pamr_steps", metavar="N",
                       help="PAMR iterations (default: 10)")
    group.add_argument("--pamr-dilations", type=int, nargs="+", dest="pamr_dilations",
                       metavar="D", help="PAMR neighbourhood dilations in pixels (default: 8 16)")


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


def _temperature(text: str) -> float | str:
    if text.lower() in ("auto", "adaptive", "none"):
        return "auto"
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"temperature must be a number or auto, got {text!r}") from None
