"""'Whole image' from napari: the batch path on the layer's file, with progress, Cancel and
resume, and the result as multiscale layers over the image."""

from __future__ import annotations

import logging
import shutil

import numpy as np
import pytest
import zarr
from plugin_helpers import RUN_TIMEOUT_MS
from scipy import ndimage

from napari_gem.cli.main import main
from napari_gem.engine.saved_encoding import EncodingStore
from napari_gem.io import read_output

pytestmark = pytest.mark.gui

SCALE, TRANSLATE = (0.5, 0.5), (10.0, 20.0)


def pyramid_slide(path, shape=(300, 260)):
    """A two-level OME-Zarr 0.4 slide of smooth blobs (level 1: every second pixel)."""
    smooth = ndimage.gaussian_filter(np.random.default_rng(1).random(shape), 4)
    image = ((smooth - smooth.min()) / np.ptp(smooth) * 4000).astype(np.uint16)
    group = zarr.open_group(str(path), mode="w", zarr_format=2)
    levels = [image, image[::2, ::2]]
    datasets = []
    for level, data in enumerate(levels):
        group.create_array(str(level), shape=data.shape, chunks=(64, 64), dtype=data.dtype)[:] = data
        datasets.append({"path": str(level), "coordinateTransformations": [
            {"type": "scale", "scale": [s * 2**level for s in SCALE]},
            {"type": "translation", "translation": list(TRANSLATE)}]})
    group.attrs["multiscales"] = [{"version": "0.4", "name": "slide", "datasets": datasets,
                                   "axes": [{"name": "y", "type": "space"},
                                            {"name": "x", "type": "space"}]}]
    return path, levels


@pytest.fixture
def slide_layer(viewer, tmp_path, request):
    """The slide as a multiscale layer, as an OME-Zarr reader gives it (without a file path)."""
    path, levels = pyramid_slide(tmp_path / "slide.ome.zarr", getattr(request, "param", (300, 260)))
    layer = viewer.add_image(levels, multiscale=True, name="slide", scale=SCALE, translate=TRANSLATE)
    return path, layer


def point_at(widget, slide_layer, out_dir, prompts: str) -> None:
    """The widget set to a whole-image job on the slide's layer and file."""
    path, layer = slide_layer
    widget.image_layer.value = layer
    widget.slide_file.value = path
    widget.outputs_folder.value = out_dir
    widget.prompts.value = prompts


def start(widget, qtbot):
    widget.extent.value = "whole"  # the run button starts the whole-image job
    assert widget.whole_image_panel.container.native.isVisibleTo(widget)  # its fields show
    worker = widget.run()
    assert worker is not None, widget.status.value
    return worker


def wait(widget, qtbot):
    qtbot.waitUntil(lambda: not widget.whole_image_job.busy, timeout=RUN_TIMEOUT_MS)


def cli_outputs(tmp_path, source, checkpoint, model_name, prompts):
    """The same job from the command line: encode, then segment from the encoding (on a copy
    of the slide, whose own labels group then gets the CLI's masks)."""
    copy = tmp_path / "cli" / source.name
    shutil.copytree(source, copy, ignore=shutil.ignore_patterns("labels"))
    source = copy
    model = ["--model", model_name, "--pretrained", str(checkpoint), "--device", "cpu"]
    size = ["--input-size", "64", "--window", "64", "--overlap", "16"]
    store = tmp_path / "cli" / "slide.features.zarr"
    assert main(["encode", str(source), "--out", str(store), *model, *size, "--out-of-core",
                 "always", "--quiet"]) == 0
    assert main(["segment", "--encoding", str(store), "-p", prompts, "-o", str(tmp_path / "cli"),
                 *model, "--quiet"]) == 0
    return copy


@pytest.mark.parametrize("slide_layer", [(1100, 400)], indirect=True)  # outputs of 2 levels
def test_whole_image_runs_the_batch_path_and_opens_multiscale_layers_over_the_slide(
        widget, viewer, qtbot, slide_layer, tmp_path, tiny_checkpoint, tiny_model_name):
    path, layer = slide_layer
    widget.image_layer.value = layer
    widget.prompts.value = "nucleus, membrane"
    assert widget.run_whole_image() is None  # napari does not know the layer's file
    widget.slide_file.value = path
    widget.outputs_folder.value = tmp_path / "out"
    start(widget, qtbot)
    wait(widget, qtbot)
    assert "2 prompt(s)" in widget.status.value, widget.status.value
    assert str(tmp_path / "out") in widget.status.tooltip  # where the outputs went, on hover

    assert (path / "labels" / "slide_nucleus").is_dir()  # in the slide's own labels group
    cli_slide = cli_outputs(tmp_path, path, tiny_checkpoint, tiny_model_name, "nucleus, membrane")
    for prompt in ("nucleus", "membrane"):
        mask = viewer.layers[f"{prompt} mask (whole image)"]
        heatmap = viewer.layers[f"{prompt} heatmap (whole image)"]
        assert mask.multiscale and heatmap.multiscale and len(mask.data) == 2
        for shown in (mask, heatmap):  # over the slide, pixel for pixel
            np.testing.assert_allclose(shown.scale, layer.scale)
            np.testing.assert_allclose(shown.translate, layer.translate)
        assert mask.data[0].shape == layer.data[0].shape
        # One answer from every door: the widget's job is the command line's.
        # The masks went into each slide's own labels group (OME-Zarr, writable).
        expected, _ = read_output(cli_slide / "labels" / f"slide_{prompt}")
        np.testing.assert_array_equal(np.asarray(mask.data[0]), np.asarray(expected))
        assert np.asarray(expected).max() > 0  # something was found
        heat, _ = read_output(cli_slide.parent / f"slide_{prompt}_heatmap.zarr")
        np.testing.assert_allclose(np.asarray(heatmap.data[0]), np.asarray(heat), atol=1e-6)


def test_a_second_prompt_reuses_the_saved_encoding(widget, qtbot, slide_layer, tmp_path):
    point_at(widget, slide_layer, tmp_path / "out", "nucleus")
    start(widget, qtbot)
    wait(widget, qtbot)
    assert "reused" not in widget.status.value
    widget.prompts.value = "membrane"
    start(widget, qtbot)
    wait(widget, qtbot)
    assert "saved encoding reused" in widget.status.value, widget.status.value


def test_cancel_keeps_the_encoded_windows_and_the_next_run_resumes(
        widget, viewer, qtbot, slide_layer, tmp_path):
    point_at(widget, slide_layer, tmp_path / "out", "nucleus")
    worker = start(widget, qtbot)
    # Cancel as soon as the first window block is reported: the job stops between tasks.
    worker.yielded.connect(lambda progress: "windows" in progress.text and widget.cancel())
    wait(widget, qtbot)
    assert "cancelled" in widget.status.value and "resume" in widget.status.value
    store = EncodingStore(str(tmp_path / "out" / "slide.features.zarr"))
    assert not store.record["complete"]
    assert "nucleus mask (whole image)" not in viewer.layers

    start(widget, qtbot)
    wait(widget, qtbot)
    assert store.record["complete"]
    assert "nucleus mask (whole image)" in viewer.layers


def test_a_layer_without_a_readable_file_is_refused_with_what_to_do(widget, viewer, tmp_path):
    layer = viewer.add_image(np.zeros((300, 300), np.uint8), name="in memory")
    widget.image_layer.value = layer
    widget.prompts.value = "nucleus"
    assert widget.run_whole_image() is None
    png = tmp_path / "slide.png"
    png.write_bytes(b"not really")
    widget.slide_file.value = png
    assert widget.run_whole_image() is None
    assert not widget.whole_image_job.busy


def test_a_scheduler_address_runs_the_job_on_that_cluster_and_links_its_dashboard(
        widget, viewer, qtbot, slide_layer, tmp_path):
    from distributed import LocalCluster

    point_at(widget, slide_layer, tmp_path / "out", "nucleus")
    # Worker threads in this process: they know the tiny test model's registered config.
    with LocalCluster(n_workers=1, threads_per_worker=1, processes=False,
                      dashboard_address=":0", silence_logs=logging.ERROR) as cluster:
        widget.scheduler.value = cluster.scheduler_address
        start(widget, qtbot)
        wait(widget, qtbot)
        assert "dask dashboard: http" in widget.status.value, widget.status.value
    assert "nucleus mask (whole image)" in viewer.layers


def test_a_scheduler_field_that_is_no_address_is_refused_before_any_work(widget, slide_layer,
                                                                          tmp_path, capsys):
    point_at(widget, slide_layer, tmp_path / "out", "nucleus")
    widget.scheduler.value = "my-cluster"
    assert widget.run_whole_image() is None
    assert "is not an address: give one like tcp://host:8786" in capsys.readouterr().out
    assert not widget.whole_image_job.busy


def test_an_encoding_the_command_line_made_beside_the_slide_is_reused(
        widget, qtbot, slide_layer, tmp_path, tiny_checkpoint, tiny_model_name):
    path, _ = slide_layer
    assert main(["encode", str(path), "--model", tiny_model_name, "--pretrained", str(tiny_checkpoint),
                 "--device", "cpu", "--input-size", "64", "--window", "64", "--overlap", "16",
                 "--out-of-core", "always", "--quiet"]) == 0
    assert (tmp_path / "slide.features.zarr").is_dir()  # the command line's default place
    point_at(widget, slide_layer, tmp_path / "out", "nucleus")
    start(widget, qtbot)
    wait(widget, qtbot)
    assert "saved encoding reused" in widget.status.value, widget.status.value
    assert str(tmp_path / "slide.features.zarr") in widget.status.tooltip
    assert not (tmp_path / "out" / "slide.features.zarr").exists()


def test_an_encoding_beside_the_slide_for_another_precision_is_left_as_it_is(
        widget, qtbot, slide_layer, tmp_path, tiny_checkpoint, tiny_model_name):
    path, _ = slide_layer
    assert main(["encode", str(path), "--model", tiny_model_name, "--pretrained", str(tiny_checkpoint),
                 "--device", "cpu", "--precision", "bf16", "--input-size", "64", "--window", "64",
                 "--overlap", "16", "--out-of-core", "always", "--quiet"]) == 0
    beside = EncodingStore(str(tmp_path / "slide.features.zarr"))
    before = beside.features()
    point_at(widget, slide_layer, tmp_path / "out", "nucleus")  # the widget runs float32
    start(widget, qtbot)
    wait(widget, qtbot)
    assert "saved encoding reused" not in widget.status.value, widget.status.value
    assert (tmp_path / "out" / "slide.features.zarr").is_dir()  # its own encoding, made anew
    assert beside.record["model"]["precision"] == "bfloat16" and beside.record["complete"]
    assert np.array_equal(beside.features(), before)  # the user's store, untouched
