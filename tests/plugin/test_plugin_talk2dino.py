"""Talk2DINO from the widget: its projection file, its own options, a run recorded as talk2dino."""

from __future__ import annotations

import pytest
from plugin_helpers import run_and_wait
from skimage.data import camera

from napari_gem.plugin.layers import META

pytestmark = pytest.mark.gui


@pytest.fixture(scope="module")
def talk2dino_files(tmp_path_factory):
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).parents[1] / "engine"))
    from talk2dino_models import TINY, register_tiny, save_files

    folder = tmp_path_factory.mktemp("talk2dino")
    register_tiny(folder / "configs")
    return TINY, save_files(folder / "weights")


def _shown(field) -> bool:
    return not field.native.isHidden()


def test_talk2dino_runs_from_the_widget_with_its_files_and_options(viewer, widget, qtbot, talk2dino_files):
    name, files = talk2dino_files
    assert "talk2dino-vitb14" in widget.model.choices
    widget.model.value = name
    assert widget.weights.value == "file" and not _shown(widget.method) and not _shown(widget.depth)
    assert _shown(widget.backbone_weights) and _shown(widget.background_cleaning)
    widget.checkpoint.value = files["projection"]
    widget.backbone_weights.value = str(files["backbone"])
    widget.text_weights.value = str(files["text"])
    widget.background_cleaning.value = True
    spec = widget.model_spec()
    assert dict(spec.method_options)["background_cleaning"] is True and spec.method == "talk2dino"
    viewer.add_image(camera()[::4, ::4], name="camera")
    widget.prompts.value = "man"
    run_and_wait(qtbot, widget)
    model = viewer.layers["man heatmap (camera)"].metadata[META]["parameters"]["model"]
    assert model["method"] == "talk2dino" and model["method_options"]["background_cleaning"] is True
    widget.model.value = "napari-gem-tiny"
    assert _shown(widget.method) and not _shown(widget.backbone_weights)
