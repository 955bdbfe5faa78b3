"""``napari-gem refine-eval``: the simulated annotator on held-out generated micrographs."""

from __future__ import annotations

import argparse
import platform

from ..engine.described import describe
from ..engine.object_labels import RefineOptions
from ..evaluation.annotator import (
    BACKBONES,
    MAX_STROKES,
    SETTINGS,
    evaluate,
    exemplar_comparison,
    format_table,
    refinement_time,
)
from .option_flags import add_option_flags, options_from_flags


def add_refine_eval_parser(subparsers) -> argparse.ArgumentParser:
    """The ``napari-gem refine-eval`` subcommand."""
    parser = subparsers.add_parser(
        "refine-eval",
        help="measure stroke refinement with a simulated annotator (demo model, held-out scenes)",
        description="Each round one stroke (a 3 px disk) at the interior of the largest error "
        "region of every present concept's mask; prints the mean IoU after 0/1/3/5/10 strokes, "
        "NoC@85/90 and the time per refinement, for text + strokes (object stage: classifier, "
        "nearest example, without the text prior, off), strokes without text (with the object "
        "stage, and without: a baseline), filters only (the other baseline), and the time of a "
        "1024 px refinement.",
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
    parser.add_argument("--instances", type=int, nargs=2, metavar=("FEWEST", "MOST"), default=None,
                        help="objects per concept in each scene, e.g. 5 15 (default: the scenes' own, 1 3)")
    parser.add_argument("--settings", type=int, nargs="+", default=None, metavar="ROW",
                        help="rows to measure, by number: " + "; ".join(
                            f"{i}: {s.name}" for i, s in enumerate(SETTINGS)) + " (default: all)")
    add_option_flags(parser.add_argument_group("refinement (the 1024 px timing)"),
                     describe(RefineOptions))
    parser.set_defaults(handler=run_refine_eval)
    return parser


def run_refine_eval(args: argparse.Namespace) -> int:
    from ..demo import load_model, segment_options

    if args.scenes < 1:
        raise ValueError("--scenes must be at least 1")
    if not 1 <= args.strokes <= MAX_STROKES:
        raise ValueError(f"--strokes must be between 1 and {MAX_STROKES}")
    if args.instances is not None and not 1 <= args.instances[0] <= args.instances[1]:
        raise ValueError(f"--instances must be two counts 1 <= fewest <= most; got {args.instances}")
    unknown = sorted(set(args.settings or ()) - set(range(len(SETTINGS))))
    if unknown:
        raise ValueError(f"--settings must be row numbers 0..{len(SETTINGS) - 1}; got {unknown}")
    settings = SETTINGS if args.settings is None else [SETTINGS[i] for i in args.settings]
    options = segment_options()  # the demo scenes' input size for every backbone
    chosen = list(BACKBONES) if args.backbone == "all" else [args.backbone]
    for name in chosen:
        backbone = BACKBONES[name]
        model = load_model(args.method) if name == "demo" else backbone.load()
        results = evaluate(model, options, scenes=args.scenes, strokes=args.strokes, settings=settings,
                           instances=args.instances)
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
    refine_options = RefineOptions(**options_from_flags(args, describe(RefineOptions)))
    timing = refinement_time(load_model(args.method), options, objects=refine_options.objects)
    crowd = "" if args.instances is None else f", {args.instances[0]}-{args.instances[1]} objects per concept"
    print(f"{args.scenes} held-out demo scenes (input {options.input_size} px{crowd}), every present "
          f"concept; NoC capped at {MAX_STROKES}. A 1024 x 1024 refinement after encoding (object "
          f"stage: {refine_options.objects}): first {1000 * timing['first']:.0f} ms (builds the cached "
          f"inputs), then {1000 * timing['median_later']:.0f} ms (median); CPU: {cpu_name()}.")
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
