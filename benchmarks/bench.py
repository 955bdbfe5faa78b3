"""``python benchmarks/bench.py``: GEM and the other methods against baselines timed in the same run.

Shared machines are noisy, so every target is a ratio to a baseline timed
alongside it (runs interleaved, medians reported), never an absolute number.
"""

from __future__ import annotations

import argparse
import copy
import statistics
import sys
from collections.abc import Sequence

import numpy as np
import torch
from script import run_script
from timing import (
    PeakMemory,
    emit_table,
    interleaved_medians,
    interleaved_samples,
    method_encode_runs,
    timed,
    worst_ratio,
)

TARGETS = {
    "gem_vs_plain": 1.4,
    "prompt_rerun_ms": 100.0,
    "tiled_vs_windows": 1.1,
    "pamr_s": 0.5,
    "bf16_speedup": 2.0,
    "bf16_correlation": 0.999,
}
#: Encode time of each method as a ratio of a plain open_clip encode (issue 7).
METHOD_TARGETS = {"gem": 1.4, "gclip": 1.2, "proxyclip": 2.1}
LAST_BLOCK_TARGET = 1.1


def build_parser() -> argparse.ArgumentParser:
    """The script's command line."""
    parser = argparse.ArgumentParser(
        prog="benchmarks/bench.py",
        description="Prints a table measured in one run: plain open_clip image encode vs "
        "each method at the input size (ratios, interleaved), PAMR on a 1024 px image with "
        "5 prompts, prompt-only re-run latency on an encoded image, and tiled inference "
        "time and peak memory vs windows x one window.",
    )
    parser.add_argument("--model", default="ViT-B-16", help="open_clip architecture")
    parser.add_argument(
        "--pretrained",
        default="none",
        help="tag or checkpoint file; 'none' (default) uses random weights, which cost "
        "exactly the same time and need no download",
    )
    parser.add_argument("--device", default="cpu", help="auto, cpu, cuda or mps")
    parser.add_argument("--precision", default=None, help="fp32, bf16 or fp16")
    parser.add_argument("--input-size", type=int, default=448, help="model input side")
    parser.add_argument("--repeats", type=int, default=5, help="timed runs per measurement")
    parser.add_argument("--rerun-image", type=int, default=1024, help="side of the re-run image (0: skip)")
    parser.add_argument("--tiled-image", type=int, default=4096, help="side of the tiled image (0: skip)")
    parser.add_argument("--methods", default="all",
                        help="comma-separated methods to time against the plain encode (default: all)")
    parser.add_argument("--pamr-image", type=int, default=1024, help="side of the PAMR image (0: skip)")
    parser.add_argument("--regions-image", type=int, default=1024,
                        help="side of the region-consistency image (SLIC + vote; 0: skip)")
    parser.add_argument("--region-attention", action="store_true",
                        help="also time region attention (DINO B/8, random weights) against the plain encode")
    parser.add_argument("--no-bf16", dest="bf16", action="store_false",
                        help="skip the bf16-vs-fp32 rows (measured when the model runs in fp32)")
    parser.add_argument("--out", default=None, help="also write the table (Markdown) to this file")
    parser.add_argument("--talk2dino", action="store_true",
                        help="also time Talk2DINO against a plain DINOv2 forward (random weights)")
    from bench_simzss import add_simzss_bench_arguments

    add_simzss_bench_arguments(parser)
    from bench_families import add_families_bench_arguments

    add_families_bench_arguments(parser)
    from bench_refine import add_refine_bench_arguments

    add_refine_bench_arguments(parser)
    return parser


def measure_bf16(model, input_size: int, repeats: int) -> dict[str, float]:
    """GEM in bf16 against GEM in fp32 on the same weights: speed-up and heatmap agreement."""
    from napari_gem.engine import GroundingModel
    from napari_gem.engine.devices import place_model

    fp32 = GroundingModel(model.clip_model, model.tokenizer, model.dense_method)
    bf16_clip = copy.deepcopy(model.clip_model)
    place_model(bf16_clip, model.device, torch.bfloat16, "the bf16 copy")  # as load_model does
    bf16 = GroundingModel(bf16_clip, model.tokenizer, model.dense_method)
    pixels = torch.randn(1, 3, input_size, input_size, device=model.device)
    times = interleaved_medians({
        "fp32": lambda: fp32.encode_image(pixels, with_clip_embedding=False),
        "bf16": lambda: bf16.encode_image(pixels, with_clip_embedding=False),
    }, repeats, model.device)
    prompts = ["cell", "nucleus", "background", "a scratch on the lens", "cat"]
    reference = fp32.heatmaps(pixels, prompts).flatten(1).double()
    lowered = bf16.heatmaps(pixels, prompts).flatten(1).double()
    correlation = min(float(torch.corrcoef(torch.stack([a, b]))[0, 1])
                      for a, b in zip(reference, lowered, strict=True))
    return {"speedup": times["fp32"] / times["bf16"], "fp32": times["fp32"], "bf16": times["bf16"],
            "correlation": correlation}


def _build(args) -> tuple:
    from napari_gem.engine.families.clip.vision import resampled_position_embedding
    from napari_gem.engine.loading import load_model

    pretrained = None if args.pretrained == "none" else args.pretrained
    # GEM explicitly: the GEM rows time this model's own method.
    model = load_model(args.model, pretrained, device=args.device, precision=args.precision, method="gem")
    # The plain baseline is open_clip's own forward at the same input size, on a copy
    # of the same weights whose position table is resampled for that size.
    plain = copy.deepcopy(model.clip_model)
    grid = (args.input_size // model.patch_size,) * 2
    with torch.no_grad():
        table = resampled_position_embedding(model.visual, grid)[0]
    plain.visual.positional_embedding = torch.nn.Parameter(table, requires_grad=False)
    return model, plain


def measure_encode(model, plain, input_size: int, repeats: int,
                   methods: tuple[str, ...] = ("gem",)) -> dict[str, float]:
    """Median encode seconds of the plain model and of each method as ``encode`` calls it
    (dense features and the CLIP embedding for presence, as the plain forward gives), and
    of GEM's dense features alone."""
    pixels = torch.randn(1, 3, input_size, input_size, device=model.device, dtype=model.dtype)

    def plain_encode():
        with torch.inference_mode():
            plain.visual(pixels)

    runs = {"plain": plain_encode, **method_encode_runs(model, methods, pixels)}
    runs["gem_dense_only"] = lambda: model.encode_image(pixels, with_clip_embedding=False)
    samples = interleaved_samples(runs, repeats, model.device)
    medians = {name: statistics.median(values) for name, values in samples.items()}
    medians["gem_worst_ratio"] = worst_ratio(samples, "gem", "plain")
    return medians


def measure_pamr(side: int, prompts: int, repeats: int, device) -> float:
    """Median seconds of PAMR (10 steps, dilations 8 and 16) on ``prompts`` maps of ``side``²."""
    from napari_gem.engine.refinement import pamr_tiled

    generator = torch.Generator().manual_seed(2)
    maps = torch.rand(prompts, side, side, generator=generator)
    guide = torch.rand(3, side, side, generator=generator)
    return interleaved_medians(
        {"pamr": lambda: pamr_tiled(maps, lambda y0, y1, x0, x1: guide[:, y0:y1, x0:x1])},
        repeats, device,
    )["pamr"]


def method_rows(encode_times: dict[str, float], methods: tuple[str, ...]) -> list[tuple[str, str, str, str]]:
    """One row per method: encode time as a ratio of the plain encode, against its target."""
    from napari_gem.engine import method_class

    rows = []
    for name in methods:
        ratio = encode_times[name] / encode_times["plain"]
        target = METHOD_TARGETS.get(name, LAST_BLOCK_TARGET)
        rows.append((f"{method_class(name).title} / plain", f"{ratio:.2f}x", f"<= {target}x",
                     "yes" if ratio <= target else "NO"))
    return rows


def measure_prompt_rerun(model, image_side: int, input_size: int, repeats: int) -> float:
    """Seconds for 5 never-seen prompts -> full-resolution heatmaps on an encoded image."""
    from napari_gem.engine import SegmentOptions, encode

    image = (np.random.default_rng(0).random((image_side, image_side, 3)) * 255).astype(np.uint8)
    encoded = encode(image, model, SegmentOptions(input_size=input_size))
    counter = iter(range(10**9))

    def rerun():
        run = next(counter)
        encoded.heatmaps([f"object {run}-{i}" for i in range(5)])

    return interleaved_medians({"rerun": rerun}, repeats, model.device)["rerun"]


def measure_tiling(model, image_side: int, input_size: int, repeats: int) -> dict[str, float]:
    """Tiled encode vs the same windows run bare, interleaved; then one big run's memory.

    The ratio is measured on a 1024 px image (10 windows with the overview) so both
    sides can be repeated and interleaved; the ``image_side`` run reports time and
    peak memory.
    """
    from napari_gem.engine import SegmentOptions, encode
    from napari_gem.engine.tiling import plan_windows

    options = SegmentOptions(tiling="always", window=input_size, input_size=input_size)
    rng = np.random.default_rng(1)

    def windows_of(side: int) -> int:
        plan = plan_windows((side, side), options.window, options.overlap, model.patch_size)
        return len(plan.starts) + 1  # + the whole-image overview for the CLIP embedding

    small = (rng.random((1024, 1024, 3)) * 255).astype(np.uint8)
    count = windows_of(1024)
    batch = torch.randn(options.window_batch, 3, input_size, input_size,
                        device=model.device, dtype=model.dtype)
    full_batches, rest = divmod(count, options.window_batch)

    def bare_windows():
        for _ in range(full_batches):
            model.encode_image(batch, with_clip_embedding=False)
        if rest:
            model.encode_image(batch[:rest], with_clip_embedding=False)

    times = interleaved_medians(
        {"tiled": lambda: encode(small, model, options), "bare": bare_windows}, repeats, model.device
    )
    image = (rng.random((image_side, image_side, 3)) * 255).astype(np.uint8)
    with PeakMemory() as memory:
        elapsed = timed(lambda: encode(image, model, options), model.device)
    return {
        "small_windows": count,
        "ratio": times["tiled"] / times["bare"],
        "per_window": times["bare"] / count,
        "windows": windows_of(image_side),
        "tiled": elapsed,
        "peak_mb": memory.peak_bytes / 2**20,
    }


def run_bench(args) -> int:
    if args.simzss:
        from bench_simzss import run_simzss_bench

        return run_simzss_bench(args)
    if args.families:
        from bench_families import run_families_bench

        return run_families_bench(args)
    methods = _chosen_methods(args.methods)  # before any model is built
    torch.manual_seed(0)
    model, plain = _build(args)
    if "proxyclip" in methods:  # its proxy (DINO B/16) with random weights too: no download
        from bench_vfm import share_random_proxy

        share_random_proxy(model)
    print(f"model {args.model} ({args.pretrained}), device {model.device}, {model.dtype}, "
          f"{torch.get_num_threads()} threads, input {args.input_size}px", flush=True)
    encode_times = measure_encode(model, plain, args.input_size, args.repeats, methods)
    dense_only = encode_times["gem_dense_only"] / encode_times["plain"]
    rows = [
        ("plain open_clip encode (s)", f"{encode_times['plain']:.3f}", "baseline", ""),
        ("GEM encode (s)", f"{encode_times['gem']:.3f}", "", ""),
        *method_rows(encode_times, methods),
        (f"GEM / plain, worst of {args.repeats} interleaved pairs", f"{encode_times['gem_worst_ratio']:.2f}x",
         f"<= {TARGETS['gem_vs_plain']}x",
         "yes" if encode_times["gem_worst_ratio"] <= TARGETS["gem_vs_plain"] else "NO"),
        ("GEM dense features only (no presence embedding) / plain", f"{dense_only:.2f}x", "", ""),
    ]
    if args.bf16 and model.dtype == torch.float32:
        bf16 = measure_bf16(model, args.input_size, args.repeats)
        rows += [
            ("GEM bf16 encode (s)", f"{bf16['bf16']:.3f}", "", ""),
            ("GEM fp32 / GEM bf16 (speed-up)", f"{bf16['speedup']:.2f}x",
             f">= {TARGETS['bf16_speedup']}x", "yes" if bf16["speedup"] >= TARGETS["bf16_speedup"] else "NO"),
            ("bf16 vs fp32 heatmaps: lowest correlation", f"{bf16['correlation']:.5f}",
             f">= {TARGETS['bf16_correlation']}",
             "yes" if bf16["correlation"] >= TARGETS["bf16_correlation"] else "NO"),
        ]
    if args.talk2dino:
        from bench_vfm import measure_talk2dino, talk2dino_rows

        rows += talk2dino_rows(measure_talk2dino(args.input_size, args.repeats, args.device))
    if args.pamr_image:
        seconds = measure_pamr(args.pamr_image, 5, args.repeats, model.device)
        rows.append((f"PAMR {args.pamr_image}px, 5 prompts (s)", f"{seconds:.3f}",
                     f"<= {TARGETS['pamr_s']}", "yes" if seconds <= TARGETS["pamr_s"] else "NO"))
    if args.rerun_image:
        rerun = measure_prompt_rerun(model, args.rerun_image, args.input_size, args.repeats) * 1000
        rows.append((f"5 new prompts on encoded {args.rerun_image}px (ms)", f"{rerun:.1f}",
                     f"<= {TARGETS['prompt_rerun_ms']:.0f}",
                     "yes" if rerun <= TARGETS["prompt_rerun_ms"] else "NO"))
    if args.tiled_image:
        tiling = measure_tiling(model, args.tiled_image, args.input_size, args.repeats)
        rows += [
            ("one window (s)", f"{tiling['per_window']:.3f}", "", ""),
            (f"tiled 1024px ({tiling['small_windows']} windows) / bare windows",
             f"{tiling['ratio']:.2f}x", f"<= {TARGETS['tiled_vs_windows']}x",
             "yes" if tiling["ratio"] <= TARGETS["tiled_vs_windows"] else "NO"),
            (f"tiled {args.tiled_image}px ({tiling['windows']} windows) (s)",
             f"{tiling['tiled']:.1f}", "", ""),
            (f"tiled {args.tiled_image}px: s per window", f"{tiling['tiled'] / tiling['windows']:.3f}",
             "", ""),
            (f"tiled {args.tiled_image}px peak memory (MiB)", f"{tiling['peak_mb']:.0f}", "", ""),
        ]
    if args.refine_image:
        from bench_refine import measure_refinement, refine_rows

        rows += refine_rows(measure_refinement(model, args.refine_image, args.input_size), args.refine_image)
    if args.regions_image:
        from bench_vfm import measure_region_attention, measure_regions, regions_rows

        attention = (measure_region_attention(model, plain, args.input_size, args.repeats)
                     if args.region_attention else None)
        rows += regions_rows(measure_regions(args.regions_image, 5, args.repeats), args.regions_image,
                             attention)
    emit_table(rows, args.out)
    return 0


def _chosen_methods(text: str) -> tuple[str, ...]:
    from napari_gem.engine import method_names

    if text.strip().lower() == "all":
        return method_names()
    chosen = tuple(dict.fromkeys(name.strip().lower() for name in text.split(",") if name.strip()))
    unknown = [name for name in chosen if name not in method_names()]
    if unknown:
        raise SystemExit(f"benchmarks/bench.py: error: unknown method(s) {', '.join(unknown)}; "
                         f"choose from {', '.join(method_names())}")
    return ("gem", *(name for name in chosen if name != "gem"))


def main(argv: Sequence[str] | None = None) -> int:
    return run_script(build_parser(), run_bench, argv)


if __name__ == "__main__":
    sys.exit(main())
