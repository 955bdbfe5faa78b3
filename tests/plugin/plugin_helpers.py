"""Helpers shared by the plugin tests (a uniquely named module, importable from any test)."""

from __future__ import annotations

from read_log import ReadLog  # noqa: F401 (shared with the engine tests)

RUN_TIMEOUT_MS = 60_000


def configure_tiny(gem_widget, model_name, checkpoint) -> None:
    """Point the widget at the tiny random-weight model and keep images small."""
    gem_widget.model.value = model_name
    gem_widget.weights.value = "file"
    gem_widget.checkpoint.value = checkpoint
    gem_widget.device.value = "cpu"
    gem_widget.input_size.value = 64
    gem_widget.window.value = 64
    gem_widget.overlap.value = 16


def run_and_wait(qtbot, gem_widget, timeout: int = RUN_TIMEOUT_MS):
    """Start a run from code and wait until the worker has finished; returns the worker."""
    worker = gem_widget.run()
    assert worker is not None, "the run was refused"
    with qtbot.waitSignal(worker.finished, timeout=timeout):
        pass
    qtbot.waitUntil(lambda: not gem_widget.controller.busy, timeout=timeout)
    return worker
