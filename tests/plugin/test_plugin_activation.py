"""The widget shows how a tag's weights run: QuickGELU tags name the -quickgelu model they run as,
and settings saved before the activation was honoured restore to the same weights."""

from __future__ import annotations

import json


def _tag_labels(widget) -> dict:
    box = widget.pretrained.native
    return {box.itemData(i): box.itemText(i) for i in range(box.count())}


def test_a_quickgelu_tag_is_marked_with_the_model_it_runs_as(make_napari_viewer):
    _, widget = make_napari_viewer().window.add_plugin_dock_widget("napari-gem", "Segment by text")
    widget.model.value = "ViT-B-16"
    widget.model_panel.on_model_changed()
    labels = _tag_labels(widget)
    assert labels["openai"] == "openai (QuickGELU, runs as ViT-B-16-quickgelu)"
    assert labels["metaclip_fullcc"].endswith("(QuickGELU, runs as ViT-B-16-quickgelu)")
    assert labels["laion2b_s34b_b88k"] == "laion2b_s34b_b88k"  # trained with GELU, as the name builds
    widget.model.value = "ViT-B-16-quickgelu"
    widget.model_panel.on_model_changed()
    assert _tag_labels(widget)["openai"] == "openai"  # the name says it


def test_settings_saved_before_the_activation_was_honoured_restore_the_same_weights(
        make_napari_viewer, tmp_path, monkeypatch):
    """Old settings named ViT-B-16 + openai (then run with GELU): they restore unchanged and the
    run loads those weights as trained (load_model builds ViT-B-16 + openai with QuickGELU)."""
    (tmp_path / "widget-settings.json").write_text(json.dumps(
        {"version": 1, "values": {"model": "ViT-B-16", "weights": "tag", "pretrained": "openai"}}))
    monkeypatch.setenv("NAPARI_GEM_CONFIG_DIR", str(tmp_path))
    _, widget = make_napari_viewer().window.add_plugin_dock_widget("napari-gem", "Segment by text")
    spec = widget.model_spec()
    assert (spec.name, spec.pretrained) == ("ViT-B-16", "openai")
    assert "ViT-B-16-quickgelu" in widget.pretrained.native.currentText()
