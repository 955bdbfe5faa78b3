"""Timing for ``napari-gem bench`` and the repository's benchmarks: interleaved runs, the printed table.

Runs that are compared alternate, so that a noisy, shared machine slows all of them alike.
"""

from __future__ import annotations

import statistics
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


def interleaved_medians(runs: dict[str, Callable[[], object]], repeats: int, device) -> dict[str, float]:
    """Median seconds of each run (see :func:`interleaved_samples`)."""
    samples = interleaved_samples(runs, repeats, device)
    return {name: statistics.median(values) for name, values in samples.items()}


#: The columns of a table whose rows are measured against targets.
TARGET_COLUMNS = ("measurement", "value", "target", "met")


def emit_table(rows: list[tuple[str, ...]], out: str | None,
               header: tuple[str, ...] = TARGET_COLUMNS) -> None:
    """Print the table, and write it (Markdown) to ``out`` when given."""
    table = format_table(rows, header)
    print(table)
    if out:
        with open(out, "w", encoding="utf-8") as handle:
            handle.write(table + "\n")


def format_table(rows: list[tuple[str, ...]], header: tuple[str, ...] = TARGET_COLUMNS) -> str:
    """A Markdown table of ``rows`` under ``header``, columns padded to their widest cell."""
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]

    def line(cells):
        return "| " + " | ".join(str(c).ljust(w) for c, w in zip(cells, widths, strict=True)) + " |"

    separator = "|" + "|".join("-" * (w + 2) for w in widths) + "|"
    return "\n".join([line(header), separator, *(line(r) for r in rows)])
