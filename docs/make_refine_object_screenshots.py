"""The object stage's picture sequence in docs/refine.md (issue 25): text mask, one stroke, every ring.

    xvfb-run -a python docs/make_refine_object_screenshots.py

The demo model on a crowded held-out micrograph (4-6 rings, nuclei and rod-shaped bacteria
each), a strict threshold (0.9) so that the text mask misses most rings; one stroke with
napari's brush on one missed ring; Refine. Uses the helpers of docs/make_screenshots.py.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from make_screenshots import label_note, shoot, show_strokes, wait, wait_refined  # noqa: E402


def main() -> None:
    import napari
    import numpy as np
    from scipy import ndimage

    from napari_gem.demo import MODEL_NAME, scene

    image, masks = scene(1_000_001, concepts=["ring", "nucleus", "rod-shaped bacterium"], instances=(4, 6))
    truth = masks["ring"]
    viewer = napari.Viewer(title="napari-gem")
    viewer.window.resize(1500, 950)
    _, widget = viewer.window.add_plugin_dock_widget("napari-gem", "Segment by text")
    widget.model.value = MODEL_NAME
    viewer.add_image(image, name="crowded", rgb=True)
    label_note(viewer, "demo model: toy CLIP, generated micrographs only")
    widget.image_layer.value = viewer.layers["crowded"]
    widget.prompts.value = "ring"
    widget.auto_threshold.value = False
    widget.threshold.value = 0.9
    widget.run()
    wait(widget)
    viewer.layers["ring heatmap (crowded)"].visible = False
    mask = viewer.layers["ring mask (crowded)"]
    mask.opacity = 0.6
    viewer.layers.selection.active = mask
    shoot(viewer, "refine_objects_text_mask.png")
    found = np.asarray(mask.data) > 0

    rings, count = ndimage.label(truth, structure=np.ones((3, 3)))
    missing = [i for i in range(1, count + 1) if found[rings == i].mean() < 0.2]
    target = max(missing, key=lambda i: (rings == i).sum())
    distance = ndimage.distance_transform_edt(np.pad(rings == target, 1))[1:-1, 1:-1]
    mask.brush_size = 7
    mask.paint(np.unravel_index(np.argmax(distance), truth.shape), 1)
    show_strokes(viewer, widget, mask, "stroke (drawn for this picture)", "refine_objects_stroke.png")

    widget.refine_mask()
    wait_refined(widget)
    viewer.layers.selection.active = mask
    shoot(viewer, "refine_objects_refined.png")
    refined = np.asarray(mask.data) > 0
    joined = sum(refined[rings == i].mean() > 0.5 for i in missing if i != target)
    print(f"rings: {count}; missing from the text mask: {len(missing)}; after one stroke on one of "
          f"them, {joined} of the other {len(missing) - 1} joined. Mask IoU with the rings: text "
          f"{(found & truth).sum() / (found | truth).sum():.3f}, refined "
          f"{(refined & truth).sum() / (refined | truth).sum():.3f}; results table: "
          f"{widget.results.item(0, 5).text()}")
    viewer.close()


if __name__ == "__main__":
    main()
