"""Fixtures for the napari plugin tests: a real viewer with the GEM widget docked."""

from __future__ import annotations

import pytest

pytest.importorskip("napari")
pytest.importorskip("pytestqt")

from plugin_helpers import configure_tiny  # noqa: E402


@pytest.fixture(autouse=True)
def _isolated_settings(tmp_path, monkeypatch):
    """Each test gets its own settings folder: nothing leaks into (or from) the user's."""
    monkeypatch.setenv("NAPARI_GEM_CONFIG_DIR", str(tmp_path / "config"))


@pytest.fixture
def viewer(make_napari_viewer):
    return make_napari_viewer()


@pytest.fixture
def widget(viewer, tiny_model_name, tiny_checkpoint):
    """The GEM widget opened through napari's plugin manager, set to the tiny test model."""
    _, gem_widget = viewer.window.add_plugin_dock_widget("napari-gem", "Segment by text")
    configure_tiny(gem_widget, tiny_model_name, tiny_checkpoint)
    return gem_widget


@pytest.fixture
def demo_widget(viewer):
    """The widget set to the packaged demo model (offline) on the CPU."""
    from napari_gem.demo import MODEL_NAME

    _, widget = viewer.window.add_plugin_dock_widget("napari-gem", "Segment by text")
    widget.model.value = MODEL_NAME
    widget.device.value = "cpu"
    return widget


@pytest.fixture
def notes():
    """The napari notifications shown during the test: ``notes("error")`` -> messages."""
    from napari.utils.notifications import notification_manager

    notification_manager.records.clear()

    def messages(severity: str | None = None) -> list[str]:
        return [
            str(record.message)
            for record in notification_manager.records
            if severity is None or str(record.severity) == severity
        ]

    return messages
