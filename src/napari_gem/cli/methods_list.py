"""``napari-gem methods``: the dense methods, what each changes, where it comes from, its options."""

from __future__ import annotations

import argparse


def add_methods_parser(subparsers) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "methods", help="list the dense methods (--method) with their options and sources",
        description="Every method napari-gem runs on an open_clip ViT: what it changes, where "
        "its definition comes from, and its options with their defaults (set them with "
        "--option KEY=VALUE). SimZSS and Talk2DINO models bring their own method (see "
        "`napari-gem models`). See docs/methods.md.",
    )
    parser.set_defaults(handler=run_methods)
    return parser


def run_methods(args: argparse.Namespace) -> int:
    from ..engine.families.clip.methods import list_methods

    for info in list_methods():
        flag = "  [reconstructed from the paper: equations not verified]" if not info.verified else ""
        print(f"{info.name} ({info.title}){flag}")
        print(f"  changes: {info.summary}")
        print(f"  source:  {info.provenance}")
        options = ", ".join(f"{key}={value!r}" for key, value in info.defaults.items()) or "none"
        print(f"  options: {options}")
    return 0
