"""``napari-gem refine-eval``: the simulated annotator on held-out generated micrographs."""

from __future__ import annotations

import argparse
import platform

from ..evaluation.annotator import (
    MAX_STROKES,
    evaluate,
    exemplar_comparison,
    format_table,
    refinement_time,
)


def add_refine_eval_parser(subparsers) -> argparse.ArgumentParser:
    """The ``napari-gem refine-eval`` subcommand."""
    parser = subparsers.add_parser(
        "refine-eval",
        help="measure stroke refinement with a simulated annotator (demo model, held-out scenes)",
        description="Each round one stroke (a 3 px disk) at the interior of the largest error "
        "region of every present concept's mask; prints the mean IoU after 0/1/3/5/10 strokes, "
        "NoC@85/90 and the time per refinement, for text + strokes and two baselines "
        "(strokes without text, filters only), and the time of a 1024 px refinement.",
    )
    parser.add_argument("--scenes", type=int, default=20, help="held-out scenes (default: %(default)s)")
    parser.add_argument("--strokes", type=int, default=MAX_STROKES,
                        help="strokes per concept, at most the NoC cap (default: %(default)s)")
    parser.add_argument("--method", default="gem", help="dense method (default: %(default)s)")
    parser.set_defaults(handler=run_refine_eval)
    return parser


def run_refine_eval(args: argparse.Namespace) -> int:
    from ..demo import load_model, segment_options

    if args.scenes < 1:
        raise ValueError("--scenes must be at least 1")
    if not 1 <= args.strokes <= MAX_STROKES:
        raise ValueError(f"--strokes must be between 1 and {MAX_STROKES}")
    model = load_model(args.method)
    options = segment_options()
    results = evaluate(model, options, scenes=args.scenes, strokes=args.strokes)
    print(format_table(results))
    examples = exemplar_comparison(model, options, scenes=args.scenes)
    print()
    print("| prompt | mask IoU |")
    print("|---|---|")
    for name, value in examples.items():
        print(f"| {name} | {value:.3f} |")
    timing = refinement_time(model, options)
    print()
    print(f"{args.scenes} held-out demo scenes, every present concept; NoC capped at {MAX_STROKES}. "
          f"A 1024 x 1024 refinement after encoding: first {1000 * timing['first']:.0f} ms "
          f"(builds the cached inputs), then {1000 * timing['median_later']:.0f} ms "
          f"(median); CPU: {cpu_name()}.")
    return 0


def cpu_name() -> str:
    """The CPU's model name (as ``lscpu`` shows it), for the figures' provenance."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as info:
            for line in info:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()
