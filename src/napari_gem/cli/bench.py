"""``napari-gem bench``: how fast this machine runs a model, for every method.

One row per method: an image of ``--image-size`` pixels encoded and segmented with
``--prompts`` prompts, as ``napari-gem segment`` does it, in seconds per image, images
per second and seconds per megapixel. The methods are timed interleaved (medians), so a
busy machine slows them alike. Random weights (the default) cost what real ones do and
need no download. The project's own experiments, with their targets, are scripts in the
repository's ``benchmarks/`` folder.
"""

from __future__ import annotations

import argparse

import numpy as np
import torch

from .timing import emit_table, interleaved_medians

COLUMNS = ("method", "encode (s)", "prompts (s)", "images / s", "s / megapixel")


def add_bench_parser(subparsers) -> argparse.ArgumentParser:
    """The ``napari-gem bench`` subcommand."""
    parser = subparsers.add_parser(
        "bench",
        help="how fast this machine runs a model: images per second for every method",
        description="Encode and segment one generated image with every method of the model "
        "and print seconds per image, images per second and seconds per megapixel (medians "
        "of interleaved runs).",
    )
    parser.add_argument("--model", default="ViT-B-16", help="model name (see napari-gem models)")
    parser.add_argument("--pretrained", default="none",
                        help="weights tag or checkpoint file; 'none' (default) uses random weights, "
                        "which cost the same time and need no download")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda or mps")
    parser.add_argument("--precision", default=None, help="fp32, bf16 or fp16 (default: the device's)")
    parser.add_argument("--image-size", type=int, default=1024, help="side of the image in pixels")
    parser.add_argument("--input-size", type=int, default=None,
                        help="model input side (default: the method's own)")
    parser.add_argument("--prompts", type=int, default=5, help="prompts per image")
    parser.add_argument("--methods", default="all",
                        help="comma-separated methods (default: every method that needs no other "
                        "model's weights; a model with one method of its own times that one)")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs per method")
    parser.add_argument("--out", default=None, help="also write the table (Markdown) to this file")
    parser.set_defaults(handler=run_bench)
    return parser


def chosen_methods(model, text: str) -> tuple[str, ...]:
    """The methods to time on ``model``: its own when it has one, else those named (or all)."""
    from ..engine import method_names
    from ..engine.families.clip.methods import self_contained_method_names

    if not hasattr(model, "with_method"):  # Talk2DINO, SimZSS: the method is the model
        return (model.method,)
    if text.strip().lower() == "all":
        return self_contained_method_names()
    chosen = tuple(dict.fromkeys(name.strip().lower() for name in text.split(",") if name.strip()))
    unknown = [name for name in chosen if name not in method_names()]
    if unknown or not chosen:
        raise ValueError(f"unknown method(s) {', '.join(unknown) or '(none named)'}; "
                         f"choose from {', '.join(method_names())}")
    return chosen


def measure_methods(model, methods, image: np.ndarray, prompts: list[str], input_size: int | None,
                    repeats: int) -> dict[str, dict[str, float]]:
    """Median seconds of each method's encode and of its prompts on that encoding."""
    from ..engine import SegmentOptions, encode

    options = SegmentOptions() if input_size is None else SegmentOptions(input_size=input_size)
    variants = {name: model if name == model.method else model.with_method(name) for name in methods}
    encoded = {}

    def encode_with(name):
        encoded[name] = encode(image, variants[name], options)

    encodes = interleaved_medians({name: (lambda n=name: encode_with(n)) for name in methods},
                                  repeats, model.device)
    segments = interleaved_medians({name: (lambda n=name: encoded[n].segment(prompts)) for name in methods},
                                   repeats, model.device)
    return {name: {"encode": encodes[name], "prompts": segments[name]} for name in methods}


def bench_rows(times: dict[str, dict[str, float]], image_side: int) -> list[tuple[str, ...]]:
    """One row per method: encode and prompt seconds, images per second, seconds per megapixel."""
    megapixels = image_side * image_side / 1e6
    rows = []
    for name, parts in times.items():
        seconds = parts["encode"] + parts["prompts"]
        rows.append((name, f"{parts['encode']:.3f}", f"{parts['prompts']:.3f}", f"{1 / seconds:.2f}",
                     f"{seconds / megapixels:.3f}"))
    return rows


def run_bench(args: argparse.Namespace) -> int:
    from ..engine import load_model

    if args.image_size < 16 or args.prompts < 1 or args.repeats < 1:
        raise ValueError("--image-size must be at least 16, --prompts and --repeats at least 1")
    pretrained = None if args.pretrained == "none" else args.pretrained
    torch.manual_seed(0)
    model = load_model(args.model, pretrained, device=args.device, precision=args.precision)
    methods = chosen_methods(model, args.methods)
    image = (np.random.default_rng(0).random((args.image_size, args.image_size, 3)) * 255).astype(np.uint8)
    prompts = [f"object {index}" for index in range(args.prompts)]
    print(f"model {args.model} ({args.pretrained}), device {model.device}, {model.dtype}, "
          f"{torch.get_num_threads()} threads, image {args.image_size}px, {args.prompts} prompts, "
          f"median of {args.repeats}", flush=True)
    times = measure_methods(model, methods, image, prompts, args.input_size, args.repeats)
    emit_table(bench_rows(times, args.image_size), args.out, COLUMNS)
    return 0
