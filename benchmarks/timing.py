"""Timing of the benchmarks beyond what ``napari-gem bench`` needs: worst ratios, peak memory,
one timed encode per method.

Everything else (interleaved runs, the printed table) is the package's own
:mod:`napari_gem.cli.timing`, re-exported here so that every benchmark imports one module.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import torch

from napari_gem.cli.timing import (  # noqa: F401  (re-exported for the benchmarks)
    emit_table,
    format_table,
    interleaved_medians,
    interleaved_samples,
    sync,
    timed,
)


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


def method_encode_runs(model, methods, pixels: torch.Tensor) -> dict[str, Callable[[], object]]:
    """One timed run per method: ``encode_image`` as ``encode`` calls it (with the presence
    embedding), on the same weights."""
    return {name: (lambda variant=model.with_method(name): variant.encode_image(pixels))
            for name in methods}
