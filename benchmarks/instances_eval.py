"""``python benchmarks/instances_eval.py``: the object-count error on generated scenes whose objects touch."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from counting import COUNT_SEED_START, count_errors, format_counts
from refine_eval import cpu_name
from script import run_script


def build_parser() -> argparse.ArgumentParser:
    """The script's command line."""
    parser = argparse.ArgumentParser(
        prog="benchmarks/instances_eval.py",
        description="Generate demo scenes whose objects touch, run the demo model, and print the "
        "object-count error (mean absolute, relative, signed) and the object F1 at IoU 0.5 of "
        "connected components and of the watershed, on the model's mask and on the true mask "
        "(which leaves only the splitting's errors).",
    )
    parser.add_argument("--scenes", type=int, default=100, help="held-out scenes (default: %(default)s)")
    parser.add_argument("--start", type=int, default=COUNT_SEED_START,
                        help="first scene seed (default: %(default)s; training uses 0-999)")
    parser.add_argument("--method", default="gem", help="dense method (default: %(default)s)")
    return parser


def run_instances_eval(args: argparse.Namespace) -> int:
    if args.scenes < 1:
        raise ValueError("--scenes must be at least 1")
    rows, facts = count_errors(args.scenes, start=args.start, method=args.method)
    print(format_counts(rows, facts))
    print(f"CPU: {cpu_name()}.")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    return run_script(build_parser(), run_instances_eval, argv)


if __name__ == "__main__":
    sys.exit(main())
