"""``napari-gem refine-eval``: the simulated annotator on held-out generated micrographs."""

from __future__ import annotations

import argparse
import platform

from ..evaluation.annotator import (
    BACKBONES,
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
    parser.add_argument("--method", default="gem",
                        help="dense method of the demo model (default: %(default)s)")
    parser.add_argument("--backbone", default="all", choices=(*BACKBONES, "all"),
                        help="whose features and text prior to refine: " + "; ".join(
                            f"{b.name}: {b.description}" for b in BACKBONES.values())
                        + " (default: %(default)s)")
    parser.add_argument("--no-examples", dest="examples", action="store_false",
                        help="skip the example-box comparison")
    parser.set_defaults(handler=run_refine_eval)
    return parser


def run_refine_eval(args: argparse.Namespace) -> int:
    from ..demo import load_model, segment_options

    if args.scenes < 1:
        raise ValueError("--scenes must be at least 1")
    if not 1 <= args.strokes <= MAX_STROKES:
        raise ValueError(f"--strokes must be between 1 and {MAX_STROKES}")
    options = segment_options()  # the demo scenes' input size for every backbone
    chosen = list(BACKBONES) if args.backbone == "all" else [args.backbone]
    for name in chosen:
        backbone = BACKBONES[name]
        model = load_model(args.method) if name == "demo" else backbone.load()
        results = evaluate(model, options, scenes=args.scenes, strokes=args.strokes)
        print(f"### {name}: {backbone.description}")
        print()
        print(format_table(results))
        print()
        if name == "demo" and args.examples:
            examples = exemplar_comparison(model, options, scenes=args.scenes)
            print("| prompt | mask IoU |")
            print("|---|---|")
            for prompt, value in examples.items():
                print(f"| {prompt} | {value:.3f} |")
            print()
    timing = refinement_time(load_model(args.method), options)
    print(f"{args.scenes} held-out demo scenes (input {options.input_size} px), every present concept; "
          f"NoC capped at {MAX_STROKES}. A 1024 x 1024 refinement after encoding: first "
          f"{1000 * timing['first']:.0f} ms (builds the cached inputs), then "
          f"{1000 * timing['median_later']:.0f} ms (median); CPU: {cpu_name()}.")
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
