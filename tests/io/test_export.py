"""The shared output writer and reader, on real files."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
import tifffile
from PIL import Image

from napari_gem.io import read_output, slugify, unique_slugs, write_outputs
from napari_gem.io.atomic import write_atomically


def square_mask(shape=(32, 40), top=4, left=6, size=10) -> np.ndarray:
    mask = np.zeros(shape, dtype=bool)
    mask[top : top + size, left : left + size] = True
    return mask


def ramp(shape) -> np.ndarray:
    return np.linspace(0, 1, int(np.prod(shape)), dtype=np.float32).reshape(shape)


def read_csv(path):
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def test_slugs_are_safe_lowercase_and_unique():
    assert slugify("Cell nucleus!") == "cell-nucleus"
    assert slugify("épithélium / ../etc") == "epithelium-etc"
    assert slugify("???") == "prompt"
    slugs = unique_slugs(["Nucleus", "nucleus", "nucleus!", "membrane"])
    assert slugs == {
        "Nucleus": "nucleus", "nucleus": "nucleus-2", "nucleus!": "nucleus-3",
        "membrane": "membrane",
    }


def test_writes_every_file_of_a_2d_result(tmp_path):
    mask, heatmap = square_mask(), ramp((32, 40))
    written = write_outputs(
        tmp_path, "img", masks={"cell nucleus": mask}, heatmaps={"cell nucleus": heatmap},
        parameters={"prompts": ["cell nucleus"], "threshold": np.float32(0.5)},
        scale=(0.5, 0.25), translate=(10, 20),
    )
    names = [path.name for path in written]
    assert names == [
        "img_cell-nucleus_mask.tif", "img_cell-nucleus_mask.png",
        "img_cell-nucleus_heatmap.tif", "img_objects.csv", "img_parameters.json",
    ]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(names)  # no temporaries left

    labels = tifffile.imread(tmp_path / "img_cell-nucleus_mask.tif")
    assert labels.dtype == np.uint8 and np.array_equal(labels, mask)
    assert np.array_equal(np.asarray(Image.open(tmp_path / "img_cell-nucleus_mask.png")), mask)
    stored_heatmap = tifffile.imread(tmp_path / "img_cell-nucleus_heatmap.tif")
    assert stored_heatmap.dtype == np.float32 and np.array_equal(stored_heatmap, heatmap)

    parameters = json.loads((tmp_path / "img_parameters.json").read_text())
    assert parameters["threshold"] == 0.5 and parameters["prompts"] == ["cell nucleus"]
    assert parameters["scale"] == [0.5, 0.25] and parameters["translate"] == [10, 20]
    assert parameters["outputs"]["cell nucleus"]["heatmap"] == "img_cell-nucleus_heatmap.tif"


@pytest.mark.parametrize("name", ["img_a_mask.tif", "img_a_mask.png", "img_a_heatmap.tif"])
def test_read_output_gives_back_array_scale_translate_and_name(tmp_path, name):
    mask = square_mask()
    write_outputs(tmp_path, "img", masks={"a": mask}, heatmaps={"a": ramp(mask.shape)},
                  parameters={}, scale=(2.0, 3.0), translate=(-1.5, 4.0))
    array, metadata = read_output(tmp_path / name)
    assert array.shape == mask.shape
    assert metadata["scale"] == [2.0, 3.0] and metadata["translate"] == [-1.5, 4.0]
    kind = "heatmap" if "heatmap" in name else "mask"
    assert metadata["kind"] == kind and metadata["prompt"] == "a"
    assert metadata["name"] == f"a {kind} (img)"


def test_read_output_of_a_foreign_tiff_has_neutral_defaults(tmp_path):
    tifffile.imwrite(tmp_path / "other.tif", np.zeros((3, 4, 5), np.uint16),
                     photometric="minisblack")
    array, metadata = read_output(tmp_path / "other.tif")
    assert array.shape == (3, 4, 5)
    assert metadata == {"scale": [1.0] * 3, "translate": [0.0] * 3, "name": "other"}


def test_label_dtype_fits_the_values_and_png_only_up_to_uint16(tmp_path):
    small = np.zeros((20, 20), np.int64)
    small[0, 0], small[5, 5] = 1, 300
    big = np.zeros((20, 20), np.int64)
    big[0, 0], big[5, 5] = 1, 70_000
    written = write_outputs(tmp_path, "x", masks={"small": small, "big": big}, heatmaps={},
                            parameters={})
    names = {path.name for path in written}
    assert "x_small_mask.png" in names and "x_big_mask.png" not in names
    assert tifffile.imread(tmp_path / "x_small_mask.tif").dtype == np.uint16
    stored = tifffile.imread(tmp_path / "x_big_mask.tif")
    assert stored.dtype == np.int32 and stored[5, 5] == 70_000
    assert np.asarray(Image.open(tmp_path / "x_small_mask.png"))[5, 5] == 300


def test_prompts_that_slug_alike_get_separate_files(tmp_path):
    mask = square_mask()
    write_outputs(tmp_path, "img", masks={"Nucleus": mask, "nucleus": ~mask},
                  heatmaps={}, parameters={})
    first = tifffile.imread(tmp_path / "img_nucleus_mask.tif")
    second = tifffile.imread(tmp_path / "img_nucleus-2_mask.tif")
    assert np.array_equal(first, mask) and np.array_equal(second, ~mask)


def test_objects_are_measured_from_masks_and_heatmaps_in_2d(tmp_path):
    mask = square_mask(top=4, left=6, size=10)
    mask[20:22, 30:33] = True  # a second, separate object of 6 pixels
    heatmap = np.where(mask, 0.75, 0.1).astype(np.float32)
    heatmap[5, 7] = 0.9
    write_outputs(tmp_path, "img", masks={"nucleus": mask}, heatmaps={"nucleus": heatmap},
                  parameters={})
    rows = read_csv(tmp_path / "img_objects.csv")
    assert [row["label"] for row in rows] == ["1", "2"]
    first = rows[0]
    assert first["prompt"] == "nucleus" and first["area"] == "100"
    assert float(first["centroid_y"]) == 8.5 and float(first["centroid_x"]) == 10.5
    bbox = [first[k] for k in ("bbox_min_y", "bbox_min_x", "bbox_max_y", "bbox_max_x")]
    assert bbox == ["4", "6", "14", "16"]
    assert float(first["max_score"]) == pytest.approx(0.9)
    assert float(first["mean_score"]) == pytest.approx((99 * 0.75 + 0.9) / 100)
    assert rows[1]["area"] == "6"


def test_3d_masks_get_3d_objects_and_no_png(tmp_path):
    labels = np.zeros((4, 16, 16), np.int32)
    labels[1:3, 2:6, 2:6] = 7  # one object spanning two planes, kept as label 7
    labels[3, 10:12, 10:12] = 9
    heatmap = ramp(labels.shape)
    written = write_outputs(tmp_path, "vol", masks={"cell": labels}, heatmaps={"cell": heatmap},
                            parameters={}, scale=(2.0, 0.5, 0.5))
    assert not any(path.suffix == ".png" for path in written)
    stored, metadata = read_output(tmp_path / "vol_cell_mask.tif")
    assert stored.shape == labels.shape and np.array_equal(stored, labels)
    assert metadata["scale"] == [2.0, 0.5, 0.5]
    rows = read_csv(tmp_path / "vol_objects.csv")
    assert [(row["label"], row["area"]) for row in rows] == [("7", "32"), ("9", "4")]
    assert float(rows[0]["centroid_z"]) == 1.5 and rows[0]["bbox_max_z"] == "3"
    assert float(rows[1]["max_score"]) == pytest.approx(heatmap[3, 11, 11])


def test_given_objects_are_written_as_they_are(tmp_path):
    mask = square_mask()
    objects = [{"prompt": "a", "label": 1, "area": 5, "centroid": (1.0, 2.0),
                "bbox": (0, 1, 2, 3), "mean_score": 0.5, "max_score": 0.75, "note": "kept"}]
    write_outputs(tmp_path, "img", masks={"a": mask}, heatmaps={}, parameters={},
                  objects=objects)
    (row,) = read_csv(tmp_path / "img_objects.csv")
    assert row["area"] == "5" and float(row["centroid_x"]) == 2.0 and row["bbox_max_x"] == "3"
    assert row["note"] == "kept" and row["mean_score"] == "0.5"


def test_empty_masks_give_a_header_only_table(tmp_path):
    write_outputs(tmp_path, "img", masks={"a": np.zeros((8, 8), bool)}, heatmaps={},
                  parameters={})
    lines = (tmp_path / "img_objects.csv").read_text().splitlines()
    assert lines == ["prompt,label,area,centroid_y,centroid_x,bbox_min_y,bbox_min_x,"
                     "bbox_max_y,bbox_max_x,mean_score,max_score"]


def test_existing_outputs_are_refused_before_anything_is_written(tmp_path):
    (tmp_path / "img_objects.csv").write_text("precious")
    with pytest.raises(FileExistsError, match="img_objects.csv"):
        write_outputs(tmp_path, "img", masks={"a": square_mask()}, heatmaps={}, parameters={})
    assert [p.name for p in tmp_path.iterdir()] == ["img_objects.csv"]
    assert (tmp_path / "img_objects.csv").read_text() == "precious"


def test_overwrite_replaces_outputs(tmp_path):
    mask = square_mask()
    write_outputs(tmp_path, "img", masks={"a": mask}, heatmaps={}, parameters={"run": 1})
    write_outputs(tmp_path, "img", masks={"a": ~mask}, heatmaps={}, parameters={"run": 2},
                  overwrite=True)
    assert np.array_equal(tifffile.imread(tmp_path / "img_a_mask.tif"), ~mask)
    assert json.loads((tmp_path / "img_parameters.json").read_text())["run"] == 2


def test_inconsistent_inputs_are_rejected_before_writing(tmp_path):
    with pytest.raises(ValueError, match="one shape"):
        write_outputs(tmp_path, "img", masks={"a": square_mask()},
                      heatmaps={"a": np.zeros((3, 3), np.float32)}, parameters={})
    with pytest.raises(ValueError, match="one number per axis"):
        write_outputs(tmp_path, "img", masks={"a": square_mask()}, heatmaps={},
                      parameters={}, scale=(1.0,))
    with pytest.raises(ValueError, match="plain file name"):
        write_outputs(tmp_path, "../img", masks={"a": square_mask()}, heatmaps={},
                      parameters={})
    assert list(tmp_path.iterdir()) == []


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path):
    target = tmp_path / "file.txt"
    target.write_text("old")

    def fail(temporary):
        temporary.write_text("half")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        write_atomically(target, fail)
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["file.txt"]


def test_writes_are_reproducible_byte_for_byte(tmp_path):
    mask, heatmap = square_mask(), ramp((32, 40))
    for folder in ("one", "two"):
        write_outputs(tmp_path / folder, "img", masks={"a": mask}, heatmaps={"a": heatmap},
                      parameters={"x": 1}, scale=(1, 1))
    for path in (tmp_path / "one").iterdir():
        assert path.read_bytes() == (tmp_path / "two" / path.name).read_bytes(), path.name
