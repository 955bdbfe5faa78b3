"""The model picker's "a folder…" and "a Hugging Face id…" entries, in a real viewer.

Folders and Hugging Face cache entries are written by the tests; only Qt's static dialog
calls (QFileDialog.getExistingDirectory, QInputDialog.getText / getItem) are replaced.
"""

from __future__ import annotations

import json

import pytest
from plugin_helpers import run_and_wait
from qtpy.QtWidgets import QFileDialog, QInputDialog
from skimage.data import camera

from model_folders import (
    open_clip_config,
    put_in_hub_cache,
    write_open_clip_folder,
    write_transformers_folder,
)
from napari_gem.plugin.layers import META
from napari_gem.plugin.panels.model_sources import FOLDER_ENTRY, HUB_ID_ENTRY

pytestmark = pytest.mark.gui


def _shown(field) -> bool:
    return not field.native.isHidden()


def _choose(widget, entry) -> None:
    """Pick an entry as a user does: by its row in the list."""
    widget.model.native.setCurrentIndex(widget.model.native.findData(entry[1]))


@pytest.fixture
def folder_dialog(monkeypatch):
    """QFileDialog answers with ``answer["folder"]`` ("" = cancelled); records each call."""
    answer = {"folder": "", "calls": 0}

    def get_existing_directory(parent=None, caption="", *args, **kwargs):
        answer["calls"] += 1
        return str(answer["folder"])

    monkeypatch.setattr(QFileDialog, "getExistingDirectory", staticmethod(get_existing_directory))
    return answer


@pytest.fixture
def id_dialog(monkeypatch):
    """QInputDialog answers getText with ``answer["id"]`` and getItem with ``answer["kind"]``."""
    answer = {"id": "", "kind": None, "asked_kind": 0}

    def get_text(parent, title, label, *args, **kwargs):
        return answer["id"], bool(answer["id"])

    def get_item(parent, title, label, items, *args, **kwargs):
        answer["asked_kind"] += 1
        answer["items"] = list(items)
        kind = answer["kind"]
        return (kind or "", kind is not None)

    monkeypatch.setattr(QInputDialog, "getText", staticmethod(get_text))
    monkeypatch.setattr(QInputDialog, "getItem", staticmethod(get_item))
    return answer


def test_the_picker_ends_with_a_folder_and_a_hugging_face_id_entry(widget):
    labels = [widget.model.native.itemText(i) for i in range(widget.model.native.count())]
    assert labels[-2:] == ["a folder…", "a Hugging Face id…"]
    assert "science: BiomedCLIP" in labels and "science: PLIP" in labels


def test_an_open_clip_folder_becomes_local_dir_runs_and_is_recorded_and_remembered(
        make_napari_viewer, viewer, widget, qtbot, tmp_path, tiny_model_name, folder_dialog):
    folder = tmp_path / "my model"
    write_open_clip_folder(folder, tiny_model_name)
    folder_dialog["folder"] = folder
    _choose(widget, FOLDER_ENTRY)
    name = f"local-dir:{folder.resolve()}"
    assert folder_dialog["calls"] == 1 and widget.model.value == name
    assert widget.model.native.currentText() == name
    # the weights come with the folder: no tag, no checkpoint field
    assert not _shown(widget.weights) and not _shown(widget.pretrained)
    assert not _shown(widget.checkpoint) and _shown(widget.method)

    viewer.add_image(camera()[::4, ::4], name="camera")
    widget.prompts.value = "man"
    run_and_wait(qtbot, widget)
    heat = viewer.layers["man heatmap (camera)"]
    assert heat.metadata[META]["parameters"]["model"]["model"] == name
    widget.export(tmp_path / "out", ["man"])
    record = json.loads((tmp_path / "out" / "camera_parameters.json").read_text())
    assert record["model"]["model"] == name and record["model"]["pretrained"] is None

    _, again = make_napari_viewer().window.add_plugin_dock_widget("napari-gem", "Segment by text")
    assert again.model.value == name and not _shown(again.pretrained)


def test_a_transformers_folder_becomes_a_transformers_name(widget, tmp_path, folder_dialog):
    pytest.importorskip("transformers")
    write_transformers_folder(tmp_path / "plip-like")
    folder_dialog["folder"] = tmp_path / "plip-like"
    _choose(widget, FOLDER_ENTRY)
    assert widget.model.value == f"transformers:{(tmp_path / 'plip-like').resolve()}"
    assert not _shown(widget.weights) and widget.model_spec().pretrained is None


def test_a_folder_without_a_model_says_which_files_were_expected_and_changes_nothing(
        widget, tmp_path, notes, folder_dialog):
    before = widget.model.value
    changes = []
    widget.model.changed.connect(changes.append)
    (tmp_path / "pictures").mkdir()
    (tmp_path / "pictures" / "cell.png").write_bytes(b"")
    folder_dialog["folder"] = tmp_path / "pictures"
    _choose(widget, FOLDER_ENTRY)
    message = notes("error")[-1]
    assert "open_clip_config.json" in message and "config.json" in message
    assert str(tmp_path / "pictures") in message
    assert widget.model.value == before and widget.model.native.currentData() == before
    assert changes == []  # a refused folder is no model change (options keep their values)

    folder_dialog["folder"] = ""  # cancelled
    _choose(widget, FOLDER_ENTRY)
    assert widget.model.value == before and changes == []


def test_a_cached_open_clip_repository_is_detected_without_asking_how_to_load_it(
        widget, tmp_path, monkeypatch, tiny_model_name, id_dialog):
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path))
    put_in_hub_cache(tmp_path, "lab/tiny-clip", "open_clip_config.json",
                     json.dumps(open_clip_config(tiny_model_name)).encode())
    id_dialog["id"] = " lab/tiny-clip "
    _choose(widget, HUB_ID_ENTRY)
    assert widget.model.value == "hf-hub:lab/tiny-clip" and id_dialog["asked_kind"] == 0
    assert not _shown(widget.weights) and widget.model_spec().pretrained is None

    put_in_hub_cache(tmp_path, "lab/hf-clip", "config.json", json.dumps({"model_type": "clip"}).encode())
    id_dialog["id"] = "lab/hf-clip"
    _choose(widget, HUB_ID_ENTRY)
    assert widget.model.value == "transformers:lab/hf-clip" and id_dialog["asked_kind"] == 0


def test_an_uncached_id_asks_whether_open_clip_or_transformers_loads_it(
        widget, tmp_path, monkeypatch, id_dialog, notes):
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path))
    id_dialog["id"], id_dialog["kind"] = "vinid/plip", "transformers (transformers:)"
    _choose(widget, HUB_ID_ENTRY)
    assert id_dialog["asked_kind"] == 1 and widget.model.value == "transformers:vinid/plip"
    assert id_dialog["items"] == ["open_clip hub (hf-hub:)", "transformers (transformers:)"]

    id_dialog["id"], id_dialog["kind"] = "imageomics/bioclip", "open_clip hub (hf-hub:)"
    _choose(widget, HUB_ID_ENTRY)
    assert widget.model.value == "hf-hub:imageomics/bioclip"

    id_dialog["id"], id_dialog["kind"] = "someone/model", None  # cancelled at the second question
    _choose(widget, HUB_ID_ENTRY)
    assert widget.model.value == "hf-hub:imageomics/bioclip"

    id_dialog["id"] = "not an id"
    _choose(widget, HUB_ID_ENTRY)
    assert "ORG/REPO" in notes("error")[-1] and widget.model.value == "hf-hub:imageomics/bioclip"


def test_an_asking_entry_is_never_saved_or_restored_as_a_model(widget, folder_dialog):
    before = widget.model.value
    with pytest.raises(ValueError):
        widget.model.value = FOLDER_ENTRY[1]
    assert widget.settings()["model"] == before
