"""``napari-gem demo-eval``: the demo model's quality table on held-out generated micrographs."""

from __future__ import annotations

import argparse

from ..demo.quality import evaluate, format_table
from ..engine.families.clip.methods import self_contained_method_names

#: Every method that needs no weights besides the demo model's (ProxyCLIP needs a proxy's).
_DEFAULT_METHODS = list(self_contained_method_names())


def add_demo_eval_parser(subparsers) -> argparse.ArgumentParser:
    """The ``napari-gem demo-eval`` subcommand."""
    parser = subparsers.add_parser(
        "demo-eval",
        help="measure the dense methods on held-out generated micrographs with the demo model",
        description="Print the demo model's quality table (semantic mIoU, mask IoU, pointing game, "
        "presence AUROC, false-positive area of absent prompts) on held-out generated scenes.",
    )
    parser.add_argument("--methods", default=",".join(_DEFAULT_METHODS),
                        help="comma-separated dense methods to compare (default: %(default)s)")
    parser.add_argument("--scenes", type=int, default=100, help="held-out scenes (default: %(default)s)")
    parser.add_argument("--input-size", type=int, default=None,
                        help="model input side in pixels (default: the demo model's)")
    parser.set_defaults(handler=run_demo_eval)
    return parser


def run_demo_eval(args: argparse.Namespace) -> int:
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    if not methods:
        raise ValueError("--methods is empty: name at least one method, e.g. gem,clip")
    if args.scenes < 1:
        raise ValueError("--scenes must be at least 1")
    results = evaluate(methods, args.scenes, input_size=args.input_size)
    print(format_table(results, args.scenes))
    return 0
