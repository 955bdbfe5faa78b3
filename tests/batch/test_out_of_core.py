"""Planes processed window by window into zarr outputs, compared with the engine."""

from __future__ import annotations

import json

import numpy as np
import pytest
import zarr
from batch_helpers import SMALL, blobs, write_zarr
from PIL import Image

from napari_gem import encode
from napari_gem.batch import segment_files
from napari_gem.io import read_output

PROMPTS = ["nucleus", "membrane"]


def engine_result(image, gem, options):
    return encode(image, gem, options.replace(tiling="always")).segment(PROMPTS)


def assert_matches_engine(out, stem, index, expected):
    listed = json.loads((out / f"{stem}_parameters.json").read_text())["outputs"]
    for p, prompt in enumerate(PROMPTS):
        heatmap, metadata = read_output(out / listed[prompt]["heatmap"])
        mask, _ = read_output(out / listed[prompt]["mask"])  # beside, or in the source's labels/
        heatmap, mask = np.asarray(heatmap[index]), np.asarray(mask[index])
        assert np.allclose(heatmap, expected.heatmaps[p], atol=1e-5)
        # Identical but for pixels within rounding of the threshold.
        assert np.mean(mask.astype(bool) != expected.masks[p]) < 1e-3
        assert metadata["kind"] == "heatmap" and metadata["prompt"] == prompt


def test_2d_zarr_equals_the_engines_tiled_result(tmp_path, tiny_gem):
    image = blobs((90, 130))
    source = write_zarr(tmp_path / "big.zarr", image, chunks=(32, 32))
    report = segment_files([source], PROMPTS, tmp_path / "out", model=tiny_gem, options=SMALL,
                           out_of_core="always", chunk=48, progress=False)
    assert report.ok and len(report.written) == 1
    out = tmp_path / "out"
    assert_matches_engine(out, "big", (), engine_result(image, tiny_gem, SMALL))

    stored = zarr.open_group(str(out / "big_nucleus_heatmap.zarr"), mode="r")  # OME-Zarr
    assert stored["0"].shape == (90, 130) and stored["0"].chunks == (48, 48)
    assert stored["1"].shape == (45, 65)  # its pyramid, down to one chunk
    assert sorted(p.name for p in out.iterdir()) == sorted(  # no partial or grid leftovers
        [f"big_{prompt}_{kind}.zarr" for prompt in PROMPTS for kind in ("heatmap", "mask")]
        + ["big_objects.csv", "big_parameters.json"])
    parameters = json.loads((out / "big_parameters.json").read_text())
    assert parameters["mode"] == "out-of-core" and parameters["output_axes"] == "YX"
    assert parameters["planes"][0]["thresholds"][0] > 0


def test_ome_zarr_stack_keeps_shape_and_scale_plane_by_plane(tmp_path, tiny_gem):
    stack = blobs((2, 64, 80), seed=4)
    path = tmp_path / "stack.ome.zarr"
    group = zarr.open_group(str(path), mode="w")
    group.create_array("0", shape=stack.shape, chunks=(1, 32, 32), dtype=stack.dtype)[:] = stack
    group.attrs["multiscales"] = [{
        "version": "0.4",
        "axes": [{"name": "z"}, {"name": "y"}, {"name": "x"}],
        "datasets": [{"path": "0", "coordinateTransformations": [
            {"type": "scale", "scale": [3.0, 0.5, 0.5]}]}],
    }]
    report = segment_files([path], PROMPTS, tmp_path / "out", model=tiny_gem, options=SMALL,
                           out_of_core="always", chunk=64, progress=False)
    assert report.ok
    heatmap, metadata = read_output(tmp_path / "out" / "stack_nucleus_heatmap.zarr")
    assert heatmap.shape == stack.shape and metadata["scale"] == [3.0, 0.5, 0.5]
    for z in range(2):
        expected = engine_result(stack[z], tiny_gem, SMALL)
        assert_matches_engine(tmp_path / "out", "stack", z, expected)
    # The source is an OME-Zarr we may write to: its masks are its own labels.
    labels = zarr.open_group(str(path / "labels"), mode="r")
    assert labels.attrs["labels"] == ["stack_nucleus", "stack_membrane"]
    assert labels["stack_nucleus"].attrs["image-label"]["source"] == {"image": "../../"}


def test_calibrated_scores_with_a_fixed_threshold(tmp_path, tiny_gem):
    image = blobs((80, 96), seed=5)
    source = write_zarr(tmp_path / "cal.zarr", image, chunks=(40, 40))
    options = SMALL.replace(score_mode="calibrated", threshold=0.3)
    segment_files([source], PROMPTS, tmp_path / "out", model=tiny_gem, options=options,
                  out_of_core="always", chunk=32, progress=False)
    assert_matches_engine(tmp_path / "out", "cal", (), engine_result(image, tiny_gem, options))
    parameters = json.loads((tmp_path / "out" / "cal_parameters.json").read_text())
    assert len(parameters["planes"][0]["presence"]) == 2


def test_auto_sends_only_large_lazy_planes_out_of_core(tmp_path, tiny_gem):
    write_zarr(tmp_path / "large.zarr", blobs((64, 64)), chunks=(32, 32))
    write_zarr(tmp_path / "small.zarr", blobs((30, 30)), chunks=(32, 32))
    Image.fromarray(blobs((64, 64), dtype=np.uint8)).save(tmp_path / "photo.png")
    report = segment_files([tmp_path], PROMPTS, tmp_path / "out", model=tiny_gem,
                           options=SMALL, out_of_core_above=1000, chunk=32, progress=False)
    assert len(report.written) == 3
    modes = {o.source.name: {p.suffix for p in o.outputs} for o in report.outcomes}
    assert ".zarr" in modes["large.zarr"]
    assert ".zarr" not in modes["small.zarr"] and ".zarr" not in modes["photo.png"]


@pytest.mark.parametrize("name, value", [("refine", "pamr"), ("regions", "slic")])
def test_whole_image_steps_are_refused_out_of_core_before_any_work(tmp_path, tiny_gem, name, value):
    """PAMR and regions need whole images: out_of_core="always" refuses them at once (nothing
    written), "auto" keeps such images in memory, rather than skipping them out of core.
    The guard is segment_files' own, so Python callers get it as the command line does."""
    source = write_zarr(tmp_path / "big.zarr", blobs((60, 70)), chunks=(32, 32))
    options = SMALL.replace(**{name: value})
    with pytest.raises(ValueError, match=f"{name}: this option needs each image in memory"):
        segment_files([source], PROMPTS, tmp_path / "out", model=tiny_gem, options=options,
                      out_of_core="always", progress=False)
    assert not (tmp_path / "out").exists()
    report = segment_files([source], PROMPTS, tmp_path / "out", model=tiny_gem, options=options,
                           out_of_core_above=100, progress=False)
    assert report.ok
    parameters = json.loads((tmp_path / "out" / "big_parameters.json").read_text())
    assert parameters["mode"] == "in-memory" and "not_applied" not in parameters
