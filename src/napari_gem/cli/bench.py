"""``napari-gem bench``: the cost of GEM and the other methods against baselines measured in the same run.

Shared machines are noisy, so every target is a ratio to a baseline timed
alongside it (runs interleaved, medians reported), never an absolute number.
"""

from __future__ import annotations

import argparse
import copy
import statistics
import threading
import time
from collections.abc import Callable

import numpy as np
import torch

TARGETS = {
    "gem_vs_plain": 1.5,
    "prompt_rerun_ms": 100.0,
    "tiled_vs_windows": 1.1,
}


def add_bench_parser(subparsers) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "bench",
        help="benchmark GEM against a plain CLIP encode, prompt re-runs and tiling",
        description="Prints a table measured in one run: plain open_clip image encode vs "
        "GEM at the input size (ratio), prompt-only re-run latency on an encoded image, "
        "and tiled inference time and peak memory vs windows x one window.",
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
    parser.add_argument("--rerun-image", type=int, default=1024, help="side of the re-run image")
    parser.add_argument("--tiled-image", type=int, default=4096, help="side of the tiled image (0: skip)")
    parser.add_argument("--out", default=None, help="also write the table (Markdown) to this file")
    from .bench_simzss import add_simzss_bench_arguments

    add_simzss_bench_arguments(parser)
    parser.set_defaults(handler=run_bench)
    return parser


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def _timed(run: Callable[[], object], device: torch.device) -> float:
    _sync(device)
    start = time.perf_counter()
    run()
    _sync(device)
    return time.perf_counter() - start


def interleaved_medians(runs: dict[str, Callable[[], object]], repeats: int, device) -> dict[str, float]:
    """Median seconds of each run, alternating between them so noise hits all alike."""
    for run in runs.values():  # warm-up: allocator, kernels, caches
        run()
    samples: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(repeats):
        for name, run in runs.items():
            samples[name].append(_timed(run, device))
    return {name: statistics.median(values) for name, values in samples.items()}


class PeakMemory:
    """Peak resident memory above the starting level while the block runs (sampled)."""

    def __init__(self, interval: float = 0.01) -> None:
        import psutil

        self._process = psutil.Process()
        self._interval = interval
        self.peak_bytes = 0

    def _watch(self) -> None:
        while not self._stop.is_set():
            self.peak_bytes = max(self.peak_bytes, self._process.memory_info().rss - self._start)
            time.sleep(self._interval)

    def __enter__(self) -> PeakMemory:
        self._start = self._process.memory_info().rss
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()


def _build(args) -> tuple:
    from ..engine.loading import load_model
    from ..engine.vision import resampled_position_embedding

    pretrained = None if args.pretrained == "none" else args.pretrained
    gem = load_model(args.model, pretrained, device=args.device, precision=args.precision)
    # The plain baseline is open_clip's own forward at the same input size, on a copy
    # of the same weights whose position table is resampled for that size.
    plain = copy.deepcopy(gem.clip_model)
    grid = (args.input_size // gem.patch_size,) * 2
    with torch.no_grad():
        table = resampled_position_embedding(gem.visual, grid)[0]
    plain.visual.positional_embedding = torch.nn.Parameter(table, requires_grad=False)
    return gem, plain


def measure_encode(gem, plain, input_size: int, repeats: int) -> dict[str, float]:
    pixels = torch.randn(1, 3, input_size, input_size, device=gem.device, dtype=gem.dtype)

    def plain_encode():
        with torch.inference_mode():
            plain.visual(pixels)

    return interleaved_medians(
        {
            "plain": plain_encode,
            "gem": lambda: gem.encode_image(pixels, with_clip_embedding=False),
            "gem_with_clip_embedding": lambda: gem.encode_image(pixels),
        },
        repeats,
        gem.device,
    )


def measure_prompt_rerun(gem, image_side: int, input_size: int, repeats: int) -> float:
    """Seconds for 5 never-seen prompts -> full-resolution heatmaps on an encoded image."""
    from ..engine import SegmentOptions, encode

    image = (np.random.default_rng(0).random((image_side, image_side, 3)) * 255).astype(np.uint8)
    encoded = encode(image, gem, SegmentOptions(input_size=input_size))
    counter = iter(range(10**9))

    def rerun():
        run = next(counter)
        encoded.heatmaps([f"object {run}-{i}" for i in range(5)])

    return interleaved_medians({"rerun": rerun}, repeats, gem.device)["rerun"]


def measure_tiling(gem, image_side: int, input_size: int, repeats: int) -> dict[str, float]:
    """Tiled encode vs the same windows run bare, interleaved; then one big run's memory.

    The ratio is measured on a 1024 px image (10 windows with the overview) so both
    sides can be repeated and interleaved; the ``image_side`` run reports time and
    peak memory.
    """
    from ..engine import SegmentOptions, encode
    from ..engine.tiling import plan_windows

    options = SegmentOptions(tiling="always", window=input_size, input_size=input_size)
    rng = np.random.default_rng(1)

    def windows_of(side: int) -> int:
        plan = plan_windows((side, side), options.window, options.overlap, gem.patch_size)
        return len(plan.starts) + 1  # + the whole-image overview for the CLIP embedding

    small = (rng.random((1024, 1024, 3)) * 255).astype(np.uint8)
    count = windows_of(1024)
    batch = torch.randn(options.window_batch, 3, input_size, input_size, device=gem.device, dtype=gem.dtype)
    full_batches, rest = divmod(count, options.window_batch)

    def bare_windows():
        for _ in range(full_batches):
            gem.encode_image(batch, with_clip_embedding=False)
        if rest:
            gem.encode_image(batch[:rest], with_clip_embedding=False)

    times = interleaved_medians(
        {"tiled": lambda: encode(small, gem, options), "bare": bare_windows}, repeats, gem.device
    )
    image = (rng.random((image_side, image_side, 3)) * 255).astype(np.uint8)
    with PeakMemory() as memory:
        elapsed = _timed(lambda: encode(image, gem, options), gem.device)
    return {
        "small_windows": count,
        "ratio": times["tiled"] / times["bare"],
        "per_window": times["bare"] / count,
        "windows": windows_of(image_side),
        "tiled": elapsed,
        "peak_mb": memory.peak_bytes / 2**20,
    }


def format_table(rows: list[tuple[str, str, str, str]]) -> str:
    header = ("measurement", "value", "target", "met")
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(4)]

    def line(cells):
        return "| " + " | ".join(str(c).ljust(w) for c, w in zip(cells, widths, strict=True)) + " |"

    separator = "|" + "|".join("-" * (w + 2) for w in widths) + "|"
    return "\n".join([line(header), separator, *(line(r) for r in rows)])


def run_bench(args) -> int:
    if args.simzss:
        from .bench_simzss import run_simzss_bench

        return run_simzss_bench(args)
    torch.manual_seed(0)
    gem, plain = _build(args)
    print(f"model {args.model} ({args.pretrained}), device {gem.device}, {gem.dtype}, "
          f"{torch.get_num_threads()} threads, input {args.input_size}px", flush=True)
    encode_times = measure_encode(gem, plain, args.input_size, args.repeats)
    ratio = encode_times["gem"] / encode_times["plain"]
    ratio_with = encode_times["gem_with_clip_embedding"] / encode_times["plain"]
    rows = [
        ("plain open_clip encode (s)", f"{encode_times['plain']:.3f}", "baseline", ""),
        ("GEM encode (s)", f"{encode_times['gem']:.3f}", "", ""),
        ("GEM / plain", f"{ratio:.2f}x", f"<= {TARGETS['gem_vs_plain']}x",
         "yes" if ratio <= TARGETS["gem_vs_plain"] else "NO"),
        ("GEM + CLIP embedding / plain", f"{ratio_with:.2f}x", "", ""),
    ]
    rerun = measure_prompt_rerun(gem, args.rerun_image, args.input_size, args.repeats) * 1000
    rows.append((f"5 new prompts on encoded {args.rerun_image}px (ms)", f"{rerun:.1f}",
                 f"<= {TARGETS['prompt_rerun_ms']:.0f}",
                 "yes" if rerun <= TARGETS["prompt_rerun_ms"] else "NO"))
    if args.tiled_image:
        tiling = measure_tiling(gem, args.tiled_image, args.input_size, args.repeats)
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
    table = format_table(rows)
    print(table)
    if args.out:
        with open(args.out, "w", encoding="utf-8") as handle:
            handle.write(table + "\n")
    return 0
