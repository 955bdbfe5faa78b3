"""Every door gives the same answer (issue 22): the same image, model and options give the same
heatmaps, masks and objects from Python, the command line in memory and out of core, napari's
run and napari's re-draw after a threshold round trip.

The packaged demo model (offline, named with no weights) on generated scenes. Masks and
objects must be equal, heatmaps within 1e-5. Out of core, Otsu's threshold comes from a
256-bin histogram of the whole plane, so it may differ from the in-memory one by at most
one bin's width (1/256); its masks must then be exactly the engine's mask builder's for that
threshold. The out-of-core door tiles (windows of the demo's input size), so it is held to
``segment(..., tiling="always")`` with the same windows.
"""

from __future__ import annotations

import csv

import numpy as np
import pytest
import tifffile

from napari_gem import SegmentOptions, load_model, segment
from napari_gem.cli.main import main
from napari_gem.demo import MODEL_NAME, scene
from napari_gem.engine.result import build_masks

pytest.importorskip("pytestqt")
pytestmark = pytest.mark.gui

PROMPTS = ["nucleus", "ring"]
SEED, SIZE = 11, 320
#: Option sets: cleaning and the watershed; components, calibrated scores and a background threshold.
OPTION_SETS = {
    "clean-watershed": {"min_size": 30, "fill_holes": 20, "instances": "watershed"},
    "calibrated-components": {"instances": "components", "score_mode": "calibrated",
                              "background_threshold": 0.3, "min_size": 10},
}
OTSU_BIN = 1 / 256


def _flags(options: dict) -> list[str]:
    return [item for name, value in options.items()
            for item in (f"--{name.replace('_', '-')}", str(value))]


def _cli(tmp_path, image_path, options: dict, *extra: str) -> tuple[np.ndarray, np.ndarray, list, dict]:
    import json

    from napari_gem.io import read_output

    out = tmp_path / ("ooc" if extra else "mem")
    argv = ["segment", str(image_path), "-p", ", ".join(PROMPTS), "-o", str(out), "--model", MODEL_NAME,
            "--device", "cpu", "-q", *_flags(options), *extra]
    assert main(argv) == 0
    suffix = ".zarr" if extra else ".tif"
    heatmaps = np.stack([np.asarray(read_output(out / f"scene_{p}_heatmap{suffix}")[0]) for p in PROMPTS])
    labels = np.stack([np.asarray(read_output(out / f"scene_{p}_mask{suffix}")[0]) for p in PROMPTS])
    rows = list(csv.DictReader((out / "scene_objects.csv").open()))
    return heatmaps, labels, rows, json.loads((out / "scene_parameters.json").read_text())


def _objects(rows) -> list[tuple]:
    return [(row["prompt"], int(row["label"]), int(row["area"])) for row in rows]


def _assert_same(heatmaps, labels, result) -> None:
    assert np.abs(heatmaps - result.heatmaps).max() <= 1e-5
    assert np.array_equal(labels, result.instances)


@pytest.fixture(scope="module")
def demo():
    return load_model(MODEL_NAME, device="cpu")  # no weights named: the packaged ones


@pytest.fixture(scope="module")
def image():
    return scene(SEED, SIZE)[0]


@pytest.mark.parametrize("name", list(OPTION_SETS))
def test_python_and_the_command_line_in_memory_and_out_of_core_agree(tmp_path, demo, image, name):
    options = OPTION_SETS[name]
    image_path = tmp_path / "scene.tif"
    tifffile.imwrite(image_path, image, photometric="rgb")
    expected = segment(image, PROMPTS, model=demo, **options)
    assert expected.parameters["options"]["input_size"] == 192  # the demo's own default
    assert expected.parameters["option_sources"]["input_size"] == "model default"
    assert expected.parameters["option_sources"]["min_size"] == "user"
    assert expected.instances.max() > 0

    heatmaps, labels, rows, parameters = _cli(tmp_path, image_path, options)
    _assert_same(heatmaps, labels, expected)
    assert _objects(rows) == [(row["prompt"], row["label"], row["area"]) for row in expected.objects()]
    assert parameters["options"] == expected.parameters["options"]

    tiled = segment(image, PROMPTS, model=demo, **options, tiling="always")
    heatmaps, labels, rows, parameters = _cli(tmp_path, image_path, {**options, "tiling": "always"},
                                              "--out-of-core", "always", "--chunk", "128")
    assert np.abs(heatmaps - tiled.heatmaps).max() <= 1e-5
    thresholds = parameters["planes"][0]["thresholds"]
    assert np.abs(np.asarray(thresholds) - tiled.thresholds).max() <= OTSU_BIN  # at most one bin
    built = build_masks(tiled.heatmaps, tiled_options(options), thresholds=thresholds,
                        cell=tiled.parameters["heatmap_cell"])
    assert np.array_equal(labels, built.instances)
    if np.allclose(thresholds, tiled.thresholds, rtol=0, atol=1e-6):
        assert np.array_equal(labels, tiled.instances)
    assert _objects(rows) == [(row["prompt"], row["label"], row["area"])
                              for row in built_objects(built, tiled.heatmaps)]


def built_objects(built, heatmaps) -> list[dict]:
    from napari_gem.engine.masks import object_table

    return object_table(dict(zip(PROMPTS, built.instances, strict=True)),
                        dict(zip(PROMPTS, heatmaps, strict=True)))


def tiled_options(options: dict) -> SegmentOptions:
    return SegmentOptions(**options, tiling="always")


@pytest.mark.parametrize("name", list(OPTION_SETS))
def test_napari_run_and_redraw_after_a_threshold_round_trip_agree_with_python(
        make_napari_viewer, qtbot, monkeypatch, tmp_path, demo, image, name):
    from napari_gem.plugin.controller import RunSettings
    from napari_gem.plugin.layers import outputs_of, source_id
    from plugin.plugin_helpers import RUN_TIMEOUT_MS

    monkeypatch.setenv("NAPARI_GEM_CONFIG_DIR", str(tmp_path / "config"))
    options = OPTION_SETS[name]
    expected = segment(image, PROMPTS, model=demo, **options)
    viewer = make_napari_viewer()
    layer = viewer.add_image(image, name="scene", rgb=True)
    _, widget = viewer.window.add_plugin_dock_widget("napari-gem", "Segment by text")
    widget.model.value = MODEL_NAME
    widget.device.value = "cpu"
    for key, value in options.items():
        if hasattr(widget, key):
            getattr(widget, key).value = value
    form = widget.options()
    assert form.input_size == 192  # the widget shows the demo's defaults, as Python uses them
    # background_threshold has no field in the form: the run carries it as Python does.
    settings = RunSettings(layer, PROMPTS, widget.model_spec(), form.replace(**options), "instances")
    worker = widget.controller.start(settings)
    assert worker is not None
    with qtbot.waitSignal(worker.finished, timeout=RUN_TIMEOUT_MS):
        pass
    qtbot.waitUntil(lambda: not widget.controller.busy, timeout=RUN_TIMEOUT_MS)
    sid = source_id(layer)

    def shown(role: str) -> np.ndarray:
        return np.stack([np.asarray(outputs_of(viewer.layers, sid, role, p)[-1].data) for p in PROMPTS])

    _assert_same(shown("heatmap"), shown("mask"), expected)
    widget.controller.redraw(0.9, "instances")  # the threshold moved away and back
    assert not np.array_equal(shown("mask"), expected.instances)
    widget.controller.redraw(None, "instances")
    _assert_same(shown("heatmap"), shown("mask"), expected)
    widget.controller.redraw(None, "semantic")
    semantic = outputs_of(viewer.layers, sid, "semantic")[-1]
    assert np.array_equal(np.asarray(semantic.data), expected.semantic)
