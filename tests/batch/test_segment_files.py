"""segment_files in this process: outputs, stacks, resuming, bad files, bad arguments."""

from __future__ import annotations

import csv
import dataclasses
import json

import numpy as np
import pytest
import tifffile
from batch_helpers import SMALL, blobs, write_tiff
from PIL import Image

from napari_gem import segment
from napari_gem.batch import segment_files
from napari_gem.engine.software import software_record
from napari_gem.io import read_output

PROMPTS = ["nucleus", "cell membrane"]


def run(inputs, out, model, options_changes=None, **kwargs):
    options = SMALL.replace(**options_changes) if options_changes else SMALL
    return segment_files(inputs, PROMPTS, out, model=model, options=options, progress=False,
                         **kwargs)


def test_a_folder_of_2d_rgb_and_stack_images(tmp_path, tiny_gem):
    folder = tmp_path / "in"
    folder.mkdir()
    gray = blobs((70, 90))
    write_tiff(folder / "gray.tif", gray)
    Image.fromarray(blobs((64, 80, 3), seed=1, dtype=np.uint8)).save(folder / "colour.png")
    stack = blobs((3, 64, 72), seed=2)
    write_tiff(folder / "stack.ome.tif", stack, metadata={"axes": "ZYX", "PhysicalSizeZ": 2.0})
    (folder / "readme.txt").write_text("not an image")

    report = run([folder], tmp_path / "out", tiny_gem)

    assert [o.source.name for o in report.written] == ["colour.png", "gray.tif", "stack.ome.tif"]
    assert [(o.source.name, o.reason) for o in report.skipped] == [
        ("readme.txt", "unsupported file type .txt")]
    assert report.ok and not report.failed

    # 2D: exactly what the engine gives for the image.
    expected = segment(gray, PROMPTS, model=tiny_gem, options=SMALL)
    heatmap, metadata = read_output(tmp_path / "out" / "gray_cell-membrane_heatmap.tif")
    assert np.array_equal(heatmap, expected.heatmaps[1])
    labels, _ = read_output(tmp_path / "out" / "gray_nucleus_mask.tif")
    assert np.array_equal(labels, expected.instances[0])
    assert metadata["name"] == "cell membrane heatmap (gray)"

    # RGB: masks drop the colour axis.
    labels, _ = read_output(tmp_path / "out" / "colour_nucleus_mask.png")
    assert labels.shape == (64, 80)

    # Stack: full shape, plane by plane, labels unique across planes, scale kept.
    labels, metadata = read_output(tmp_path / "out" / "stack_nucleus_mask.tif")
    assert labels.shape == stack.shape and metadata["scale"] == [2.0, 1.0, 1.0]
    for z in range(3):
        plane = segment(stack[z], PROMPTS, model=tiny_gem, options=SMALL)
        assert np.array_equal(labels[z] > 0, plane.masks[0])
    per_plane = [set(np.unique(labels[z])) - {0} for z in range(3)]
    assert not (per_plane[0] & per_plane[1]) and not (per_plane[1] & per_plane[2])
    with open(tmp_path / "out" / "stack_objects.csv", newline="") as handle:
        rows = [row for row in csv.DictReader(handle) if row["prompt"] == "nucleus"]
    assert len(rows) == len(np.unique(labels)) - 1
    assert {row["bbox_min_z"] for row in rows} <= {"0", "1", "2"}
    parameters = json.loads((tmp_path / "out" / "stack_parameters.json").read_text())
    assert parameters["output_axes"] == "ZYX" and len(parameters["planes"]) == 3
    assert parameters["options"]["input_size"] == 64 and parameters["prompts"] == PROMPTS
    assert parameters["software"] == software_record()  # the record every JSON carries


def test_rerun_skips_done_images_and_redoes_unfinished_ones(tmp_path, tiny_gem):
    inputs = [write_tiff(tmp_path / f"img{i}.tif", blobs((48, 48), seed=i)) for i in range(2)]
    out = tmp_path / "out"
    assert len(run(inputs, out, tiny_gem).written) == 2

    # An interrupted run: img1's parameters JSON (written last) is missing.
    (out / "img1_parameters.json").unlink()
    (out / "img1_nucleus_heatmap.tif").write_bytes(b"half-written")
    report = run(inputs, out, tiny_gem)
    assert [o.source.name for o in report.skipped] == ["img0.tif"]
    assert report.skipped[0].reason.startswith("already done")
    assert [o.source.name for o in report.written] == ["img1.tif"]
    assert tifffile.imread(out / "img1_nucleus_heatmap.tif").shape == (48, 48)

    assert len(run(inputs, out, tiny_gem, redo=True).written) == 2


def test_outputs_of_other_prompts_options_or_model_are_not_taken_as_done(tmp_path, tiny_gem,
                                                                         tiny_spec):
    image = write_tiff(tmp_path / "a.tif", blobs((40, 40)))
    out = tmp_path / "out"
    assert len(run([image], out, tiny_gem).written) == 1
    assert len(run([image], out, tiny_gem).skipped) == 1
    assert len(segment_files([image], ["dust"], out, model=tiny_gem, options=SMALL,
                             progress=False).written) == 1
    assert len(run([image], out, tiny_gem).written) == 1  # the JSON now records "dust"
    assert len(run([image], out, tiny_gem, options_changes={"threshold": 0.4}).written) == 1
    assert len(run([image], out, tiny_gem, options_changes={"threshold": 0.4}).skipped) == 1
    other_depth = dataclasses.replace(tiny_spec, method_options={"depth": 3})
    report = segment_files([image], PROMPTS, out, model=other_depth,
                           options=SMALL.replace(threshold=0.4), progress=False)
    assert len(report.written) == 1


def test_a_bad_file_fails_alone(tmp_path, tiny_gem):
    good = write_tiff(tmp_path / "good.tif", blobs((48, 48)))
    bad = tmp_path / "bad.tif"
    bad.write_bytes(b"II*\x00 this is not really a tiff")
    report = run([bad, good], tmp_path / "out", tiny_gem)
    assert [o.source.name for o in report.written] == ["good.tif"]
    (failure,) = report.failed
    assert failure.source == bad and "TIFF" in failure.reason
    assert not report.ok
    assert "1 written, 0 skipped, 1 failed" in report.summary()
    assert not list((tmp_path / "out").glob("bad*"))


def test_same_stem_in_one_folder_gets_distinct_outputs(tmp_path, tiny_gem):
    write_tiff(tmp_path / "a.tif", blobs((40, 40), seed=1))
    Image.fromarray(blobs((40, 40), seed=2, dtype=np.uint8)).save(tmp_path / "a.png")
    report = run([tmp_path / "a.tif", tmp_path / "a.png"], tmp_path / "out", tiny_gem)
    assert len(report.written) == 2
    assert (tmp_path / "out" / "a_tif_parameters.json").exists()
    assert (tmp_path / "out" / "a_png_parameters.json").exists()


def test_recursive_folders_keep_their_layout(tmp_path, tiny_gem):
    (tmp_path / "in" / "day2").mkdir(parents=True)
    write_tiff(tmp_path / "in" / "x.tif", blobs((40, 40)))
    write_tiff(tmp_path / "in" / "day2" / "x.tif", blobs((40, 40), seed=3))
    report = run([tmp_path / "in"], tmp_path / "out", tiny_gem, recursive=True)
    assert len(report.written) == 2
    assert (tmp_path / "out" / "x_parameters.json").exists()
    assert (tmp_path / "out" / "day2" / "x_parameters.json").exists()


def test_bad_arguments_raise_before_any_work(tmp_path, tiny_gem):
    image = write_tiff(tmp_path / "a.tif", blobs((40, 40)))
    with pytest.raises(ValueError, match="no input images found.*does not exist"):
        run([tmp_path / "missing.tif"], tmp_path / "out", tiny_gem)
    with pytest.raises(ValueError, match="no prompts"):
        segment_files([image], " , ", tmp_path / "out", model=tiny_gem, progress=False)
    with pytest.raises(ValueError, match="either a scheduler"):
        run([image], tmp_path / "out", tiny_gem, scheduler="tcp://127.0.0.1:1", workers=2)
    assert not (tmp_path / "out").exists()


def test_prompts_as_one_comma_separated_string(tmp_path, tiny_gem):
    image = write_tiff(tmp_path / "a.tif", blobs((40, 40)))
    segment_files([image], "nucleus, nucleus , dust", tmp_path / "out", model=tiny_gem,
                  options=SMALL, progress=False)
    parameters = json.loads((tmp_path / "out" / "a_parameters.json").read_text())
    assert parameters["prompts"] == ["nucleus", "dust"]
