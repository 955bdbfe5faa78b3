"""What the redesign promises a user and a contributor: described options, families, offline speed."""

from __future__ import annotations

import argparse
import json
import socket
import time
from dataclasses import dataclass

import pytest
from plugin_helpers import run_and_wait
from skimage.data import camera

from napari_gem.cli.option_flags import add_option_flags, options_from_flags
from napari_gem.engine.described import describe, option
from napari_gem.plugin.forms import build_fields

pytestmark = pytest.mark.gui


@dataclass(frozen=True)
class ToyOptions:
    """A method's options as a contributor writes them: adding ``strength`` is this one line."""

    strength: float = option(0.5, kind="float", label="strength", minimum=0.0, maximum=1.0,
                             help="how strongly the toy method mixes its maps")


def test_a_new_option_is_one_field_and_appears_in_the_form_and_the_flags():
    fields = build_fields(describe(ToyOptions))
    assert fields["strength"].value.label == "strength"
    assert fields["strength"].value.tooltip == "how strongly the toy method mixes its maps"
    assert fields["strength"].read() == 0.5
    parser = argparse.ArgumentParser()
    add_option_flags(parser, describe(ToyOptions))
    assert "--strength" in parser.format_help() and "(default: 0.5)" in parser.format_help()
    args = parser.parse_args(["--strength", "0.25"])
    assert ToyOptions(**options_from_flags(args, describe(ToyOptions))).strength == 0.25


def test_every_method_option_has_a_field_and_a_flag(widget):
    from napari_gem.cli.method_args import method_descriptions

    for item in method_descriptions():
        assert hasattr(widget, item.name)
        assert ("--" + item.name.replace("_", "-")) in _segment_help()


def _segment_help() -> str:
    from napari_gem.cli.main import build_parser

    parser = build_parser()
    action = next(a for a in parser._subparsers._group_actions if a.dest == "command")
    return action.choices["segment"].format_help()


def test_settings_saved_by_the_old_widget_still_load(make_napari_viewer, tmp_path, monkeypatch):
    """Keys as the 0.1 widget wrote them (one field per name) restore into the new panels."""
    folder = tmp_path / "old-config"
    folder.mkdir()
    (folder / "widget-settings.json").write_text(json.dumps({"version": 1, "values": {
        "method": "gclip", "global_blocks": "5, 6", "fusion": "half", "per_head": False,
        "auto_temperature": False, "temperature": 2.5, "refine": True, "pamr_dilations": "2, 4",
        "tiling": "always", "background_prompts": "sky, floor", "depth": 5,
    }}))
    monkeypatch.setenv("NAPARI_GEM_CONFIG_DIR", str(folder))
    _, widget = make_napari_viewer().window.add_plugin_dock_widget("napari-gem", "Segment by text")
    assert widget.method.value == "gclip" and widget.method_options()["global_blocks"] == (5, 6)
    assert widget.method_options()["fusion"] == "half" and widget.method_options()["per_head"] is False
    options = widget.options()
    assert options.refine == "pamr" and options.pamr_dilations == (2, 4) and options.tiling == "always"
    assert options.background_prompts == ("sky", "floor")
    widget.method.value = "gem"
    assert widget.method_options() == {"depth": 5, "iterations": 1, "temperature": 2.5}


def test_the_pretrained_box_shows_the_tag_a_run_uses(make_napari_viewer):
    _, widget = make_napari_viewer().window.add_plugin_dock_widget("napari-gem", "Segment by text")
    assert widget.model.value == "ViT-B-16"
    assert widget.pretrained.value == "openai"
    assert widget.pretrained.native.currentText().startswith("openai")  # (QuickGELU, runs as ...)
    assert widget.model_spec().pretrained == "openai"


def test_the_model_list_comes_from_the_families_with_tooltips(widget):
    from qtpy.QtCore import Qt

    from napari_gem.engine.families import catalogue

    assert {entry.name for entry in catalogue()} <= set(widget.model.choices)
    index = list(widget.model.choices).index("napari-gem-demo-micrographs")
    assert "offline" in widget.model.native.itemData(index, Qt.ItemDataRole.ToolTipRole)


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_offline_the_default_model_fails_within_5_s_and_names_the_demo_model(
        viewer, widget, qtbot, notes, monkeypatch, tmp_path):
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(huggingface_hub.constants, "ENDPOINT", f"http://127.0.0.1:{_closed_port()}")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "empty-cache"))
    viewer.add_image(camera()[::4, ::4], name="camera")
    widget.model.value = "ViT-B-16"
    widget.weights.value = "tag"
    widget.pretrained.value = "openai"
    widget.prompts.value = "man"
    start = time.perf_counter()
    run_and_wait(qtbot, widget)
    assert time.perf_counter() - start <= 5.0
    message = notes("error")[-1]
    assert "ViT-B-16" in message and "napari-gem-demo-micrographs" in message and "offline" in message
