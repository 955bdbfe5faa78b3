"""Render screenshots of the napari-gem widget in use into docs/screenshots/.

    xvfb-run -a python docs/make_screenshots.py                       # random-weight model
    xvfb-run -a python docs/make_screenshots.py --model ViT-B-16 --pretrained openai
    xvfb-run -a python docs/make_screenshots.py --demo                # every picture: the demo model
    xvfb-run -a python docs/make_screenshots.py --refine              # only the refine pictures

Without ``--pretrained`` the pictures use a tiny open_clip ViT with *random weights*
(no download needed): they show the workflow (widget, layers, masks, table, edits),
but the heatmaps and scores mean nothing, and every picture says so on the canvas.
With real weights (a tag, downloaded once, or a checkpoint file) the same script
renders meaningful pictures.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

OUT = Path(__file__).resolve().parent / "screenshots"
TINY = "napari-gem-screenshots-tiny"
TINY_CONFIG = {
    "embed_dim": 64,
    "vision_cfg": {"image_size": 224, "layers": 8, "width": 128, "patch_size": 16,
                   "head_width": 32},
    "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 64, "heads": 2,
                 "layers": 2},
}
RANDOM_NOTE = "random-weight test model: heatmaps and scores are meaningless"


def tiny_checkpoint(folder: Path) -> Path:
    """Register a tiny ViT config with open_clip and save random weights for it."""
    import open_clip
    import torch

    config = folder / f"{TINY}.json"
    config.write_text(json.dumps(TINY_CONFIG))
    open_clip.add_model_config(config)
    torch.manual_seed(0)
    path = folder / "random.pt"
    torch.save({"state_dict": open_clip.create_model(TINY, pretrained=None).state_dict()}, path)
    return path


def wait(widget, timeout: float = 300.0) -> None:
    """Let the event loop run until the widget's worker is done."""
    from qtpy.QtWidgets import QApplication

    end = time.monotonic() + timeout
    while widget.controller.busy and time.monotonic() < end:
        QApplication.processEvents()
        time.sleep(0.02)
    for _ in range(20):  # let the layers and the dock settle
        QApplication.processEvents()
        time.sleep(0.01)


def shoot(viewer, name: str) -> Path:
    from qtpy.QtWidgets import QApplication

    for _ in range(10):
        QApplication.processEvents()
    viewer.reset_view()
    for _ in range(10):
        QApplication.processEvents()
    path = OUT / name
    viewer.screenshot(path=str(path), canvas_only=False, flash=False)
    print("wrote", path)
    return path


def configure(widget, args, checkpoint: Path | None) -> None:
    if checkpoint is not None:
        widget.model.value = TINY
        widget.weights.value = "file"
        widget.checkpoint.value = checkpoint
        widget.input_size.value = 224
    else:
        widget.model.value = args.model
        if Path(args.pretrained).expanduser().is_file():
            widget.weights.value = "file"
            widget.checkpoint.value = Path(args.pretrained).expanduser()
        else:
            widget.weights.value = "tag"
            widget.pretrained.value = args.pretrained
    widget.device.value = args.device


def demo_screenshot(device: str) -> None:
    """The demo CLIP (trained by the project) on a held-out generated micrograph."""
    from napari_gem.plugin.launch import launch_viewer

    viewer = launch_viewer(demo=True)
    viewer.window.resize(1500, 950)
    widget = viewer.window.dock_widgets["Segment by text (napari-gem)"]
    widget.device.value = device
    widget.run()
    wait(widget)
    prompts = [p.strip() for p in widget.prompts.value.split(",")]
    for layer in viewer.layers:  # show the first prompt: its heatmap, its mask (outlines)
        layer.visible = layer.name == "demo micrograph" or layer.name.startswith(prompts[0])
    mask = viewer.layers[f"{prompts[0]} mask (demo micrograph)"]
    viewer.layers.selection.active = mask
    label_note(viewer, "demo model: toy CLIP, generated micrographs only")
    shoot(viewer, "demo.png")
    viewer.close()


def workflow_screenshots(viewer, widget, image: str, prompts: list[str], channels,
                         paint: tuple[slice, slice]) -> None:
    """The four workflow pictures: layers per prompt, live threshold, one channel of a
    multichannel stack, and a hand-edited mask kept through a re-run.

    ``image``: the name of the image layer; ``prompts``: the first one is shown;
    ``channels``: napari layer data ``(data, meta, prompt)`` of a ``(3, H, W)`` stack;
    ``paint``: the box painted into the first prompt's mask.
    """
    first = prompts[0]

    # 1. Prompts typed, Ctrl+Enter: heatmap and mask layers per prompt, presence table.
    widget.prompts.value = ", ".join(prompts)
    widget.run()
    wait(widget)
    for layer in viewer.layers:
        if layer.name.startswith(tuple(prompts[1:])):
            layer.visible = False
    mask = viewer.layers[f"{first} mask ({image})"]  # outlines: the heatmap under it shows
    viewer.layers.selection.active = mask
    shoot(viewer, "widget.png")

    # 2. Live threshold: masks re-drawn from the stored heatmaps, no model call.
    widget.auto_threshold.value = False
    widget.threshold.value = 0.7
    widget.redraw()
    wait(widget)
    viewer.layers[f"{first} heatmap ({image})"].visible = False
    shoot(viewer, "threshold.png")

    # 3. Multichannel image: one channel as gray, Advanced options open.
    for layer in viewer.layers:
        layer.visible = False
    data, meta, channel_prompt = channels
    viewer.add_image(data, **meta)
    viewer.dims.set_current_step(0, 0)
    widget.image_layer.value = viewer.layers[meta["name"]]
    widget.channel_mode.value = "gray"
    widget.channel_axis.value = 0
    widget.channel.value = 0
    widget.prompts.value = channel_prompt
    widget.auto_threshold.value = True
    widget.advanced_section.expand(animate=False)
    widget.run()
    wait(widget)
    shoot(viewer, "multichannel.png")

    for layer in list(viewer.layers):
        if layer.name.endswith(f"({meta['name']})") or layer.name == meta["name"]:
            viewer.layers.remove(layer)
        else:
            layer.visible = layer.name in (image, f"{first} mask ({image})")
    widget.advanced_section.collapse(animate=False)
    widget.image_layer.value = viewer.layers[image]
    widget.channel_mode.value = "layer"
    widget.prompts.value = ", ".join(prompts)
    widget.auto_threshold.value = False

    # 4. A hand-edited mask is kept; the re-run's result goes next to it.
    mask = viewer.layers[f"{first} mask ({image})"]
    mask.data[paint] = 1
    mask.refresh()
    widget.run()
    wait(widget)
    viewer.layers.selection = {mask}
    shoot(viewer, "edited_mask.png")


def demo_workflow_screenshots(device: str) -> None:
    """The workflow pictures with the demo model, on the generated micrograph."""
    import numpy as np

    from napari_gem.plugin.launch import launch_viewer

    viewer = launch_viewer(demo=True)
    viewer.window.resize(1500, 950)
    widget = viewer.window.dock_widgets["Segment by text (napari-gem)"]
    widget.device.value = device
    label_note(viewer, "demo model: toy CLIP, generated micrographs only")
    image = viewer.layers["demo micrograph"]
    prompts = [p.strip() for p in widget.prompts.value.split(",")][:3]
    planes = np.moveaxis(np.asarray(image.data), -1, 0)
    channels = (planes, {"name": "demo micrograph planes (R, G, B)", "axis_labels": ("c", "y", "x")},
                prompts[0])
    workflow_screenshots(viewer, widget, "demo micrograph", prompts, channels,
                         (slice(20, 90), slice(20, 150)))
    viewer.close()


def refine_screenshots(device: str) -> None:
    """Refining a mask from strokes (docs/refine.md), always with the demo model on a held-out
    generated micrograph: the text mask, two strokes (one painted in, one erased), the
    refined mask."""
    import napari
    import numpy as np
    from scipy import ndimage

    from napari_gem.demo import MODEL_NAME, scene

    def interior(region):  # the point farthest from the region's border
        distance = ndimage.distance_transform_edt(np.pad(region, 1))[1:-1, 1:-1]
        return np.unravel_index(np.argmax(distance), region.shape)

    image, masks = scene(1_000_007)  # its text mask misses part of the rings, takes other things
    concept = "ring"
    truth = masks[concept]
    viewer = napari.Viewer(title="napari-gem")
    viewer.window.resize(1500, 950)
    _, widget = viewer.window.add_plugin_dock_widget("napari-gem", "Segment by text")
    widget.model.value = MODEL_NAME
    widget.device.value = device
    viewer.add_image(image, name="micrograph", rgb=True)
    label_note(viewer, "demo model: toy CLIP, generated micrographs only")
    widget.image_layer.value = viewer.layers["micrograph"]
    widget.prompts.value = concept
    widget.run()
    wait(widget)
    viewer.layers[f"{concept} heatmap (micrograph)"].visible = False
    mask = viewer.layers[f"{concept} mask (micrograph)"]
    mask.opacity = 0.6
    viewer.layers.selection.active = mask
    shoot(viewer, "refine_text_mask.png")

    # Two strokes with napari's brush (as a user would): one inside an object the mask
    # missed, one erasing inside a region it took wrongly.
    mask.brush_size = 7
    found = np.asarray(mask.data) > 0
    mask.paint(interior(truth & ~found), 1)
    mask.paint(interior(found & ~truth), 0)
    show_strokes(viewer, widget, mask, "strokes (drawn for this picture)", "refine_strokes.png")

    widget.refine_mask()
    wait_refined(widget)
    viewer.layers.selection.active = mask
    shoot(viewer, "refine_refined.png")
    refined = np.asarray(mask.data) > 0
    print(f"mask IoU with the truth: text {(found & truth).sum() / (found | truth).sum():.3f}, "
          f"refined {(refined & truth).sum() / (refined | truth).sum():.3f}")
    viewer.close()


def show_strokes(viewer, widget, mask, name: str, picture: str) -> None:
    """Draw ``mask``'s strokes as their own layer (painted green, erased magenta: napari shows
    a mask's paint in the mask's own colour) and shoot ``picture``."""
    from napari.utils.colormaps import DirectLabelColormap

    from napari_gem.plugin.strokes_book import layer_codes

    strokes = viewer.add_labels(layer_codes(mask), name=name, opacity=1.0)
    strokes.colormap = DirectLabelColormap(
        color_dict={None: "transparent", 0: "transparent", 1: "#00ff66", 2: "#ff00ff"})
    strokes.contour = 2
    viewer.layers.selection.active = mask
    widget.show_strokes()
    shoot(viewer, picture)


def wait_refined(widget, timeout: float = 120.0) -> None:
    """Let the event loop run until the widget's refinement is written."""
    from qtpy.QtWidgets import QApplication

    end = time.monotonic() + timeout
    QApplication.processEvents()
    while widget.refiner.worker is not None and time.monotonic() < end:
        QApplication.processEvents()
        time.sleep(0.02)
    for _ in range(20):
        QApplication.processEvents()
        time.sleep(0.01)


def label_note(viewer, text: str) -> None:
    """A yellow line on the canvas saying what model made the picture."""
    note = viewer.canvas.overlays.text if hasattr(viewer, "canvas") else viewer.text_overlay
    note.visible, note.text, note.font_size, note.color = True, text, 10, "yellow"
    note.position = "top_left"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--demo", action="store_true",
                        help="every picture with the packaged demo model on a generated "
                             "micrograph (--model and --pretrained do not apply)")
    parser.add_argument("--refine", action="store_true",
                        help="only the refine pictures (always the demo model)")
    parser.add_argument("--model", default="ViT-B-16")
    parser.add_argument("--pretrained", default=None,
                        help="open_clip tag or checkpoint file (default: random tiny model)")
    parser.add_argument("--device", default="auto")
    args = parser.parse_args()

    import os

    scratch = Path(tempfile.mkdtemp(prefix="napari-gem-shots-"))
    os.environ["NAPARI_GEM_CONFIG_DIR"] = str(scratch / "config")  # leave user settings be
    OUT.mkdir(parents=True, exist_ok=True)
    if args.refine:
        refine_screenshots(args.device)
        return
    if args.demo:
        demo_screenshot(args.device)
        demo_workflow_screenshots(args.device)
        refine_screenshots(args.device)
        return
    checkpoint = tiny_checkpoint(scratch) if args.pretrained is None else None

    from napari_gem.plugin.launch import launch_viewer
    from napari_gem.plugin.samples import ihc_channels

    viewer = launch_viewer("chelsea")
    viewer.window.resize(1500, 950)
    widget = viewer.window.dock_widgets["Segment by text (napari-gem)"]
    if checkpoint is not None:
        label_note(viewer, RANDOM_NOTE)
    configure(widget, args, checkpoint)
    data, meta, _ = ihc_channels()[0]
    workflow_screenshots(viewer, widget, "chelsea", ["cat", "ear", "eye"], (data, meta, "nucleus"),
                         (slice(40, 140), slice(60, 200)))
    viewer.close()
    refine_screenshots(args.device)  # meaningful only with a trained model: the demo's


if __name__ == "__main__":
    main()
