"""``python benchmarks/bench.py --simzss``: SimZSS's cost against a plain timm DINOv2 forward.

Rows: encode at the input size as a ratio of timm ``forward_features`` on the same
ViT (the denoiser may add at most 10%), seconds per fine-tuning epoch of 1,000
captions with cached features, and the peak memory of a tiled large image (measured
in a fresh subprocess so earlier allocations do not count). Random weights: they
cost exactly what the real ones do.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import torch
from timing import emit_table, interleaved_medians

TARGETS = {"simzss_vs_timm": 1.1}

_PEAK_SCRIPT = """
import json, sys, time, numpy as np, torch
sys.path.insert(0, {benchmarks!r})  # this folder: PeakMemory lives beside the bench
from napari_gem import SegmentOptions, encode, load_model
from timing import PeakMemory
model = load_model({model!r}, None, device={device!r})
image = (np.random.default_rng(0).random(({side}, {side}, 3)) * 255).astype(np.uint8)
options = SegmentOptions(tiling="always", window={window}, input_size={window})
with PeakMemory() as memory:
    start = time.perf_counter()
    encoded = encode(image, model, options)
    encoded.segment(["cell", "nucleus"])
    elapsed = time.perf_counter() - start
print("RESULT", json.dumps({{"peak_mb": memory.peak_bytes / 2**20, "seconds": elapsed,
                             "windows": encoded.num_windows}}))
"""


def add_simzss_bench_arguments(parser) -> None:
    parser.add_argument("--simzss", action="store_true",
                        help="benchmark SimZSS (encode vs timm, fine-tuning epoch, tiled memory) instead")
    parser.add_argument("--train-captions", type=int, default=1000,
                        help="captions per fine-tuning epoch in the SimZSS bench (0: skip)")


def measure_encode(model, input_size: int, repeats: int) -> dict[str, float]:
    pixels = torch.randn(1, 3, input_size, input_size, device=model.device, dtype=model.dtype)
    vit = model.network.vit

    def plain():
        with torch.inference_mode():
            vit.forward_features(pixels)

    return interleaved_medians(
        {"timm": plain, "simzss": lambda: model.encode_image(pixels, with_clip_embedding=False)},
        repeats, model.device,
    )


def measure_training_epoch(captions: int, device: str) -> float:
    """Seconds for one epoch over ``captions`` COCO-like captions, features cached (random)."""
    from napari_gem.engine.families.simzss import DEFAULT_ARCHITECTURE, new_network
    from napari_gem.engine.families.simzss.architecture import get_architecture, get_tokenizer
    from napari_gem.simzss_training.concepts import ConceptMatcher
    from napari_gem.simzss_training.data import CachedFeatures
    from napari_gem.simzss_training.trainer import TrainingConfig, TrainingData, make_optimizer, run_epoch

    generator = torch.Generator().manual_seed(0)
    words = ["dog", "cat", "person", "car", "table", "pizza", "bus", "tree", "horse", "boat"]
    texts = [f"a {words[i % 10]} and two {words[(i * 7) % 10]}s next to a {words[(i * 3) % 10]} on "
             f"the street in the afternoon" for i in range(captions)]
    matcher = ConceptMatcher(words, get_tokenizer())
    tokens, matches = zip(*(matcher.tokens_and_concepts(t) for t in texts), strict=True)
    images = captions
    features = CachedFeatures(
        patches=torch.nn.functional.normalize(torch.randn(images, 256, 768, generator=generator), dim=-1),
        cls=torch.nn.functional.normalize(torch.randn(images, 768, generator=generator), dim=-1),
        computed=0,
    )
    data = TrainingData(torch.tensor(tokens), list(matches), torch.arange(captions), features, words)
    network = new_network(get_architecture(DEFAULT_ARCHITECTURE), denoiser=False).to(device)
    network.requires_grad_(False)
    network.text.requires_grad_(True)
    network.logit_scale.requires_grad_(True)
    config = TrainingConfig(images="", captions="", concepts=("bench",), output="", epochs=1)
    optimizer, scheduler = make_optimizer(network, config, captions // config.batch_size + 1)
    start = time.perf_counter()
    run_epoch(network, data, config, optimizer, scheduler, 0, progress=False)
    return time.perf_counter() - start


def measure_tiled_peak(side: int, window: int, device: str) -> dict:
    """Peak resident memory of encoding + segmenting a tiled ``side``² image, in a subprocess."""
    from napari_gem.engine.families.simzss import DEFAULT_ARCHITECTURE

    script = _PEAK_SCRIPT.format(model=DEFAULT_ARCHITECTURE, device=device, side=side, window=window,
                                 benchmarks=str(Path(__file__).resolve().parent))
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=False)
    lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
    if done.returncode or not lines:
        raise RuntimeError(f"the tiled-memory subprocess failed: {done.stderr.strip()[-500:]}")
    return json.loads(lines[-1].removeprefix("RESULT "))


def run_simzss_bench(args) -> int:
    from napari_gem.engine.families.simzss import DEFAULT_ARCHITECTURE, load_simzss

    torch.manual_seed(0)
    model = load_simzss(DEFAULT_ARCHITECTURE, None, device=args.device, precision=args.precision)
    print(f"model {DEFAULT_ARCHITECTURE} (random weights), device {model.device}, {model.dtype}, "
          f"{torch.get_num_threads()} threads, input {args.input_size}px", flush=True)
    times = measure_encode(model, args.input_size, args.repeats)
    ratio = times["simzss"] / times["timm"]
    rows = [
        (f"timm forward_features {args.input_size}px (s)", f"{times['timm']:.3f}", "baseline", ""),
        (f"SimZSS encode {args.input_size}px (s)", f"{times['simzss']:.3f}", "", ""),
        ("SimZSS / timm", f"{ratio:.3f}x", f"<= {TARGETS['simzss_vs_timm']}x",
         "yes" if ratio <= TARGETS["simzss_vs_timm"] else "NO"),
    ]
    if args.train_captions:
        seconds = measure_training_epoch(args.train_captions, str(model.device))
        rows.append((f"train-simzss epoch, {args.train_captions} captions, cached features (s)",
                     f"{seconds:.1f}", "", ""))
    if args.tiled_image:
        peak = measure_tiled_peak(args.tiled_image, args.input_size, str(model.device))
        rows += [
            (f"tiled {args.tiled_image}px ({peak['windows']} windows) (s)", f"{peak['seconds']:.1f}", "", ""),
            (f"tiled {args.tiled_image}px peak memory (MiB)", f"{peak['peak_mb']:.0f}", "", ""),
        ]
    emit_table(rows, args.out)
    return 0
