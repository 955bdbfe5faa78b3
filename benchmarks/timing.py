"""Timing of the benchmarks beyond what ``napari-gem bench`` needs: worst ratios, peak memory,
one timed encode per method.

Everything else (interleaved runs, the printed table) is the package's own
:mod:`napari_gem.cli.timing`, re-exported here so that every benchmark imports one module.
"""

from __future__ import annotations

import threading
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
    """Peak resident memory (bytes), sampled from a thread while the block runs: of this
    process (``driver``; ``peak_bytes`` above the level it started at) and of each child
    process (``children``, e.g. dask workers and their nannies; ``worker``: the largest)."""

    def __init__(self, interval: float = 0.01) -> None:
        import psutil

        self._process, self._interval = psutil.Process(), interval
        self.start = self.driver = 0
        self.children: dict[int, int] = {}

    @property
    def peak_bytes(self) -> int:
        """This process's peak above its starting level."""
        return max(0, self.driver - self.start)

    @property
    def worker(self) -> int:
        """The largest child's peak: the busiest worker process (0 with none)."""
        return max(self.children.values(), default=0)

    def _sample(self) -> None:
        import psutil

        self.driver = max(self.driver, self._process.memory_info().rss)
        for child in self._process.children(recursive=True):
            try:
                rss = child.memory_info().rss
            except psutil.Error:  # it ended between listing and asking
                continue
            self.children[child.pid] = max(self.children.get(child.pid, 0), rss)

    def _watch(self) -> None:
        while not self._stop.wait(self._interval):
            self._sample()

    def __enter__(self) -> PeakMemory:
        self.start = self._process.memory_info().rss
        self._stop = threading.Event()
        self._sample()
        self._thread = threading.Thread(target=self._watch, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self._sample()


def method_encode_runs(model, methods, pixels: torch.Tensor) -> dict[str, Callable[[], object]]:
    """One timed run per method: ``encode_image`` as ``encode`` calls it (with the presence
    embedding), on the same weights."""
    return {name: (lambda variant=model.with_method(name): variant.encode_image(pixels))
            for name in methods}
