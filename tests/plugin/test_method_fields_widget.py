"""In the widget, a method option name two methods share is one field per method, each with its own
range and help, and the chosen method reads its own field."""

from __future__ import annotations

import pytest

from toy_methods import register_toy_methods

pytestmark = pytest.mark.gui


def test_each_method_has_its_own_field_for_a_shared_option_name(monkeypatch, qapp):
    from napari_gem.plugin.panels.options import OptionsPanel

    register_toy_methods(monkeypatch)
    panel = OptionsPanel()
    fields = panel.fields()
    warm, cool = fields["toy_warm_temperature"], fields["toy_cool_temperature"]
    assert (warm.max, warm.tooltip) == (5.0, "toy A: a warm temperature")
    assert (cool.max, cool.tooltip) == (0.5, "toy B: a cool temperature")
    assert "temperature" not in fields and "auto_gem_temperature" in fields
    assert fields["toy_window_window"] is not fields["window"]  # a SegmentOptions name: its own field
    panel.show_method("toy-cool", uses_clip_methods=True)
    cool.value = 0.3
    assert panel.method_options() == {"temperature": 0.3}
    assert not cool.native.isHidden() and warm.native.isHidden()  # only the chosen method's fields show
    panel.show_method("toy-window", uses_clip_methods=True)
    assert panel.method_options() == {"window": 3, "device": "near"}
    panel.show_method("gem", uses_clip_methods=True)
    assert set(panel.method_options()) == {"depth", "iterations", "temperature"}
