"""``python benchmarks/demo_eval.py``: the demo model's quality table on held-out generated micrographs."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from quality import evaluate, format_table
from script import run_script

from napari_gem.engine.families.clip.methods import self_contained_method_names

#: Every method that needs no weights besides the demo model's (ProxyCLIP needs a proxy's).
_DEFAULT_METHODS = list(self_contained_method_names())


def build_parser() -> argparse.ArgumentParser:
    """The script's command line."""
    parser = argparse.ArgumentParser(
        prog="benchmarks/demo_eval.py",
        description="Print the demo model's quality table (semantic mIoU, mask IoU, pointing game, "
        "presence AUROC, false-positive area of absent prompts) on held-out generated scenes.",
    )
    parser.add_argument("--methods", default=",".join(_DEFAULT_METHODS),
                        help="comma-separated dense methods to compare (default: %(default)s)")
    parser.add_argument("--scenes", type=int, default=100, help="held-out scenes (default: %(default)s)")
    parser.add_argument("--input-size", type=int, default=None,
                        help="model input side in pixels (default: the demo model's)")
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


def main(argv: Sequence[str] | None = None) -> int:
    return run_script(build_parser(), run_demo_eval, argv)


if __name__ == "__main__":
    sys.exit(main())
