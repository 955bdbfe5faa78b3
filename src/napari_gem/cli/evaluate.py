"""The ``napari-gem evaluate`` subcommand."""

from __future__ import annotations

import argparse
import dataclasses
import sys
from collections.abc import Callable

from ..engine.errors import ModelLoadError
from ..engine.loading import default_method
from ..engine.loading import load_model as load_any_model
from ..evaluation.datasets import DATASETS, DatasetLayoutError, open_dataset
from ..evaluation.protocol import SETTINGS, protocol_for
from ..evaluation.run import evaluate, format_table, resolve_class_names, result_paths
from .errors import report_error
from .method_args import add_method_arguments, method_options_from_args

EVALUATE_HELP = "score a method on a segmentation benchmark (reproduces the published mIoU)"


def add_evaluate_parser(subparsers) -> argparse.ArgumentParser:
    """Add the ``evaluate`` subcommand to ``subparsers`` (from ``add_subparsers()``)."""
    parser = subparsers.add_parser(
        "evaluate",
        help=EVALUATE_HELP,
        description=(
            "Run a dense method (GEM by default) over the validation split of a benchmark "
            "stored in its standard (MMSegmentation) layout, under that method's own "
            "protocol preset, print per-class IoU and the mean, and optionally write them "
            "to JSON and CSV. See docs/evaluation.md."
        ),
    )
    parser.add_argument("--dataset", required=True, choices=list(DATASETS))
    parser.add_argument(
        "--root",
        required=True,
        metavar="PATH",
        help="the dataset folder (e.g. VOCdevkit/VOC2012) or a folder above it",
    )
    parser.add_argument(
        "--setting",
        choices=SETTINGS,
        default="common",
        help="common: the method's sliding-window protocol from its official code; "
        "paper: GEM paper's 448x448 single pass (default: common)",
    )
    add_method_arguments(parser)
    parser.add_argument("--limit", type=int, metavar="N", help="score only the first N images")
    parser.add_argument("--out", metavar="FILE", help="write the scores to FILE as .json and .csv")
    parser.add_argument("--model", default="ViT-B-16", help="open_clip model (default: ViT-B-16)")
    parser.add_argument(
        "--pretrained",
        default="openai",
        help="open_clip pretrained tag or checkpoint file (default: openai)",
    )
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda or mps (default: auto)")
    parser.add_argument(
        "--precision",
        choices=("fp32", "bf16", "fp16"),
        help="default: fp32 on the CPU, bf16 or fp16 on a GPU",
    )
    tuning = parser.add_argument_group("protocol overrides (default: the setting's values)")
    tuning.add_argument("--short-side", type=int, metavar="PX", help="resize the short side to PX")
    tuning.add_argument("--crop", type=int, metavar="PX", help="sliding-window size")
    tuning.add_argument("--stride", type=int, metavar="PX", help="sliding-window stride")
    tuning.add_argument("--logit-scale", type=float, help="softmax scale of the cosine logits")
    tuning.add_argument(
        "--prob-threshold",
        type=float,
        help="background below this class probability (voc21, context60, coco-object)",
    )
    tuning.add_argument("--pamr", choices=("on", "off"),
                        help="PAMR refinement of the logits (preset: on for naclip only)")
    tuning.add_argument(
        "--class-names",
        metavar="FILE",
        help="prompt names, one class per line, synonyms separated by commas",
    )
    parser.set_defaults(handler=run_evaluate)
    return parser


def _print_progress(done: int, total: int) -> None:
    if done == total or done % 50 == 0:
        print(f"\r{done}/{total} images", end="\n" if done == total else "", file=sys.stderr)


def _overrides(args: argparse.Namespace) -> dict:
    overrides = {
        "crop": args.crop,
        "stride": args.stride,
        "logit_scale": args.logit_scale,
        "prob_threshold": args.prob_threshold,
    }
    if args.short_side is not None:
        overrides.update(short_side=args.short_side, fixed_size=None)
    if args.pamr == "on":
        overrides["pamr_steps"] = 10
    return overrides


def run_evaluate(args: argparse.Namespace, *, load_model: Callable | None = None) -> int:
    """Carry out ``napari-gem evaluate``; returns the exit code.

    ``load_model`` defaults to :func:`napari_gem.load_model` (tests pass their own).
    Bad input (dataset layout, options, model loading) prints one ``error:`` line and
    returns 2.
    """
    load_model = load_model or load_any_model
    try:
        if args.limit is not None and args.limit < 1:
            raise ValueError(f"--limit must be a positive number of images, got {args.limit}")
        if args.short_side is not None and args.setting == "paper":
            raise ValueError("--short-side applies to the common setting only")
        method = args.method or default_method(args.model)
        protocol = protocol_for(args.dataset, args.setting, method=method, **_overrides(args))
        if args.pamr == "off":
            protocol = dataclasses.replace(protocol, pamr_steps=None)
        # Check the dataset and the names before a model is loaded (maybe downloaded).
        spec = open_dataset(args.dataset, args.root).spec
        class_names = resolve_class_names(spec, args.class_names, synonyms=protocol.synonyms)
        model = load_model(args.model, args.pretrained, device=args.device, precision=args.precision,
                           method=args.method, method_options=method_options_from_args(args))
        result = evaluate(
            args.dataset,
            args.root,
            model,
            limit=args.limit,
            progress=_print_progress,
            out=args.out,
            protocol=protocol,
            class_names=class_names,
        )
    except (DatasetLayoutError, ModelLoadError, ValueError, OSError) as error:
        return report_error(f"error: {_one_line(error)}", error, args)
    print(format_table(result))
    if args.out:
        json_path, csv_path = result_paths(args.out)
        print(f"wrote {json_path} and {csv_path}")
    return 0


def _one_line(error: BaseException) -> str:
    return " ".join(str(error).split()) or type(error).__name__
