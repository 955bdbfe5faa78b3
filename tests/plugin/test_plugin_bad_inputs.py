"""Bad input gets one clear notification, and nothing is lost or half-written."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from plugin_helpers import RUN_TIMEOUT_MS, run_and_wait
from skimage.data import camera

from napari_gem.plugin.layers import META

pytestmark = pytest.mark.gui


def _outputs(viewer):
    return [layer for layer in viewer.layers if META in layer.metadata]


def _wait(qtbot, widget, worker):
    with qtbot.waitSignal(worker.finished, timeout=RUN_TIMEOUT_MS):
        pass
    qtbot.waitUntil(lambda: not widget.controller.busy, timeout=RUN_TIMEOUT_MS)


def _slow_stack(viewer, name="stack"):
    """Enough planes that a run is still going after its first step."""
    image = camera()[::4, ::4]
    return viewer.add_image(np.stack([np.roll(image, i, axis=0) for i in range(12)]), name=name)


def test_no_image_layer_and_empty_prompts_are_refused(viewer, widget, notes):
    widget.prompts.value = "cat"
    assert widget.run() is None
    assert "No image layer" in notes("error")[-1]
    viewer.add_image(camera(), name="camera")
    widget.prompts.value = "  ,\n  , "
    assert widget.run() is None
    assert "Type at least one prompt" in notes("error")[-1]
    assert not _outputs(viewer)


def test_labels_or_points_layer_cannot_be_chosen(viewer, widget, notes):
    image = viewer.add_image(camera()[::4, ::4], name="camera")
    labels = viewer.add_labels(np.zeros((128, 128), int), name="labels")
    points = viewer.add_points([[1, 2]], name="points")
    for layer, kind in ((labels, "Labels"), (points, "Points")):
        widget.image_layer.value = layer
        assert widget.image_layer.value is image
        assert f"'{layer.name}' is a {kind} layer" in notes("error")[-1]


def test_one_pixel_image_is_refused(viewer, widget, notes):
    viewer.add_image(np.ones((1, 1), np.float32), name="dot")
    widget.prompts.value = "cat"
    assert widget.run() is None
    assert "too small" in notes("error")[-1]


@pytest.mark.parametrize(("data", "words"), [
    (np.full((40, 40), 3, np.uint16), "constant"),
    (np.full((40, 40), np.nan, np.float32), "all NaN"),
])
def test_constant_or_nan_image_makes_no_layers(viewer, widget, qtbot, notes, data, words):
    viewer.add_image(data, name="flat")
    widget.prompts.value = "cat"
    run_and_wait(qtbot, widget)
    assert not _outputs(viewer)
    assert words in notes("warning")[-1] and "nothing to find" in notes("warning")[-1]


def test_offline_weights_say_where_the_cache_is(viewer, widget, qtbot, notes, monkeypatch):
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    viewer.add_image(camera()[::4, ::4], name="camera")
    widget.model.value = "ViT-B-32"
    widget.weights.value = "tag"
    widget.pretrained.value = "laion2b_e16"
    widget.prompts.value = "man"
    run_and_wait(qtbot, widget)
    message = notes("error")[-1]
    assert "ViT-B-32" in message and "cache" in message and "checkpoint file" in message
    assert not _outputs(viewer)


def test_corrupt_checkpoint_file(viewer, widget, qtbot, notes, tmp_path):
    broken = tmp_path / "broken.pt"
    broken.write_bytes(b"this is not a checkpoint" * 10)
    viewer.add_image(camera()[::4, ::4], name="camera")
    widget.checkpoint.value = broken
    widget.prompts.value = "man"
    run_and_wait(qtbot, widget)
    assert "could not read checkpoint file" in notes("error")[-1]
    assert not _outputs(viewer)


def test_cancel_mid_run_leaves_no_layer(viewer, widget, qtbot, notes):
    _slow_stack(viewer)
    widget.plane_mode.value = "all"
    widget.prompts.value = "man"
    worker = widget.run()
    seen = []

    def cancel_on_second_plane(step):
        seen.append(step.text)
        if step.text.startswith("plane 2/"):
            widget.cancel()

    worker.yielded.connect(cancel_on_second_plane)
    with qtbot.waitSignal(worker.finished, timeout=RUN_TIMEOUT_MS):
        pass
    assert any(text.startswith("plane 2/") for text in seen)
    assert not any(text.startswith("plane 12/") for text in seen)
    assert not _outputs(viewer)
    assert "cancelled" in notes("info")[-1]
    assert widget.cancel_button.enabled is False


def test_source_removed_mid_run(viewer, widget, qtbot, notes):
    source = _slow_stack(viewer)
    widget.plane_mode.value = "all"
    widget.prompts.value = "man"
    worker = widget.run()
    removed = []

    def remove_source(step):
        if step.text.startswith("plane 2/") and not removed:
            removed.append(True)
            viewer.layers.remove(source)

    worker.yielded.connect(remove_source)
    _wait(qtbot, widget, worker)
    assert removed and not _outputs(viewer)
    assert "removed during the run" in notes("warning")[-1]


def test_source_renamed_mid_run(viewer, widget, qtbot):
    source = _slow_stack(viewer, name="before")
    widget.plane_mode.value = "all"
    widget.prompts.value = "man"
    worker = widget.run()

    def rename(step):
        if step.text.startswith("plane 2/"):
            source.name = "after"

    worker.yielded.connect(rename)
    _wait(qtbot, widget, worker)
    assert "man heatmap (after)" in viewer.layers and "man mask (after)" in viewer.layers
    assert widget.image_layer.value is source


def _patch_encode(monkeypatch, widget, fail_if) -> list[int]:
    """Make the loaded model run out of memory when ``fail_if(batch size)`` holds.

    A CPU cannot run out of GPU memory on demand, so the error is injected into the real
    model, which otherwise runs as usual. Returns the batch sizes it was called with.
    """
    gem = widget.controller.models.get(widget.model_spec())
    real, batches = gem.encode_image, []

    def encode_image(pixels, **kwargs):
        batches.append(pixels.shape[0])
        if fail_if(pixels.shape[0]):
            raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return real(pixels, **kwargs)

    monkeypatch.setattr(gem, "encode_image", encode_image)
    return batches


def test_out_of_memory_retries_with_smaller_batches(viewer, widget, qtbot, notes, monkeypatch):
    viewer.add_image(camera()[::2, ::2], name="camera")  # 256 x 256: many windows of 64
    widget.tiling.value = "always"
    widget.window_batch.value = 4
    widget.prompts.value = "man"
    batches = _patch_encode(monkeypatch, widget, lambda batch: batch > 1)
    run_and_wait(qtbot, widget)
    assert batches[:3] == [4, 2, 1]  # halved until it fits
    assert "man heatmap (camera)" in viewer.layers
    assert not notes("error")


def test_out_of_memory_says_what_to_change(viewer, widget, qtbot, notes, monkeypatch):
    viewer.add_image(camera()[::2, ::2], name="camera")
    widget.prompts.value = "man"
    _patch_encode(monkeypatch, widget, lambda batch: True)
    run_and_wait(qtbot, widget)
    message = notes("error")[-1]
    assert "Out of memory" in message and "input size" in message and "device CPU" in message
    assert not _outputs(viewer)


def test_closing_the_viewer_during_a_run(make_napari_viewer, qtbot, tiny_model_name,
                                         tiny_checkpoint):
    from plugin_helpers import configure_tiny

    viewer = make_napari_viewer()
    _, widget = viewer.window.add_plugin_dock_widget("napari-gem", "Segment by text")
    configure_tiny(widget, tiny_model_name, tiny_checkpoint)
    _slow_stack(viewer)
    widget.plane_mode.value = "all"
    widget.prompts.value = "man"
    worker = widget.run()
    steps = []
    worker.yielded.connect(steps.append)
    qtbot.waitUntil(lambda: len(steps) >= 2, timeout=RUN_TIMEOUT_MS)
    viewer.close()
    qtbot.waitUntil(lambda: not worker.is_running, timeout=RUN_TIMEOUT_MS)
    assert worker.abort_requested
