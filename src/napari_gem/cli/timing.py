"""Timing shared by the benchmarks: interleaved runs, ratios, peak memory, the printed table.

Every benchmark compares against a baseline measured in the same run, alternating the
runs so that a noisy, shared machine slows all of them alike.
"""

from __future__ import annotations

import statistics
import threading
import time
from collections.abc import Callable

import torch


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def timed(run: Callable[[], object], device: torch.device) -> float:
    sync(device)
    start = time.perf_counter()
    run()
    sync(device)
    return time.perf_counter() - start


def interleaved_samples(runs: dict[str, Callable[[], object]], repeats: int,
                        device) -> dict[str, list[float]]:
    """Seconds of every timed run, alternating between them so noise hits all alike."""
    for run in runs.values():  # warm-up: allocator, kernels, caches
        run()
    samples: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(repeats):
        for name, run in runs.items():
            samples[name].append(timed(run, device))
    return samples


def method_encode_runs(model, methods, pixels: torch.Tensor) -> dict[str, Callable[[], object]]:
    """One timed run per method: ``encode_image`` as ``encode`` calls it (with the presence
    embedding), on the same weights."""
    return {name: (lambda variant=model.with_method(name): variant.encode_image(pixels))
            for name in methods}


def interleaved_medians(runs: dict[str, Callable[[], object]], repeats: int, device) -> dict[str, float]:
    """Median seconds of each run (see :func:`interleaved_samples`)."""
    samples = interleaved_samples(runs, repeats, device)
    return {name: statistics.median(values) for name, values in samples.items()}


def worst_ratio(samples: dict[str, list[float]], slow: str, fast: str) -> float:
    """The largest ``slow / fast`` over the interleaved pairs (not only the median)."""
    return max(a / b for a, b in zip(samples[slow], samples[fast], strict=True))


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


def emit_table(rows: list[tuple[str, str, str, str]], out: str | None) -> None:
    """Print the table, and write it (Markdown) to ``out`` when given."""
    table = format_table(rows)
    print(table)
    if out:
        with open(out, "w", encoding="utf-8") as handle:
            handle.write(table + "\n")


def format_table(rows: list[tuple[str, str, str, str]]) -> str:
    header = ("measurement", "value", "target", "met")
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(4)]

    def line(cells):
        return "| " + " | ".join(str(c).ljust(w) for c, w in zip(cells, widths, strict=True)) + " |"

    separator = "|" + "|".join("-" * (w + 2) for w in widths) + "|"
    return "\n".join([line(header), separator, *(line(r) for r in rows)])
