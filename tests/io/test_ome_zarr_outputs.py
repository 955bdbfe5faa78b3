"""Out-of-core outputs are OME-Zarr: valid NGFF metadata, pyramids, labels over the image."""

from __future__ import annotations

import json

import numpy as np
import pytest
import zarr

from napari_gem import SegmentOptions
from napari_gem.batch import segment_files
from napari_gem.io.ome_zarr_outputs import level_shapes, read_levels

ngff_zarr = pytest.importorskip("ngff_zarr")  # the testing extra: the published NGFF schemas

SMALL = SegmentOptions(input_size=64, window=64, overlap=16, min_size=5)


def ome_zarr(path, image, version, scale=(0.5, 0.5)):
    """An OME-Zarr image of one level: NGFF 0.4 (zarr v2) or 0.5 (zarr v3)."""
    group = zarr.open_group(str(path), mode="w", zarr_format=2 if version == "0.4" else 3)
    group.create_array("0", shape=image.shape, chunks=(32, 32), dtype=image.dtype)[:] = image
    entry = {"axes": [{"name": "y", "type": "space"}, {"name": "x", "type": "space"}],
             "datasets": [{"path": "0", "coordinateTransformations": [
                 {"type": "scale", "scale": list(scale)}]}]}
    if version == "0.4":
        group.attrs["multiscales"] = [{"version": "0.4", **entry}]
    else:
        group.attrs["ome"] = {"version": "0.5", "multiscales": [entry]}
    return path


def blobs(shape, seed=0):
    from scipy import ndimage

    smooth = ndimage.gaussian_filter(np.random.default_rng(seed).random(shape), 4)
    return ((smooth - smooth.min()) / np.ptp(smooth) * 4000).astype(np.uint16)


def ngff(attrs: dict, version: str) -> dict:
    return attrs if version == "0.4" else attrs["ome"]


@pytest.mark.parametrize("version", ["0.4", "0.5"])
def test_labels_go_into_the_source_and_validate_against_the_ngff_schemas(tmp_path, tiny_gem, version):
    source = ome_zarr(tmp_path / "slide.ome.zarr", blobs((100, 140)), version)
    report = segment_files([source], ["nucleus"], tmp_path / "out", model=tiny_gem, options=SMALL,
                           out_of_core="always", chunk=32, progress=False)
    assert report.ok, report.summary()
    labels = zarr.open_group(str(source / "labels"), mode="r")
    assert ngff(dict(labels.attrs), version)["labels"] == ["slide_nucleus"]
    label = labels["slide_nucleus"]
    attrs = dict(label.attrs)
    ngff_zarr.validate(attrs if version == "0.4" else attrs, version=version, model="label")
    entry = ngff(attrs, version)["multiscales"][0]
    assert [d["path"] for d in entry["datasets"]] == ["0", "1", "2", "3"]
    assert [tuple(label[d["path"]].shape) for d in entry["datasets"]] == level_shapes((100, 140), 32)
    assert entry["datasets"][1]["coordinateTransformations"][0]["scale"] == [1.0, 1.0]  # the source's x 2
    assert entry["axes"] == [{"name": "y", "type": "space"}, {"name": "x", "type": "space"}]
    # Nearest downsampling: every coarser level holds labels of the full level, nothing new.
    full, coarse = np.asarray(label["0"]), np.asarray(label["1"])
    assert np.array_equal(coarse, full[::2, ::2]) and full.max() > 0
    # The heatmap beside: a multiscale image (NGFF 0.4), mean-downsampled.
    heatmap = tmp_path / "out" / "slide_nucleus_heatmap.zarr"
    heatmap_attrs = dict(zarr.open_group(str(heatmap), mode="r").attrs)
    ngff_zarr.validate(heatmap_attrs, version="0.4", model="image")
    levels, layer = read_levels(heatmap)
    assert layer["kind"] == "heatmap" and layer["scale"] == [0.5, 0.5]
    assert np.allclose(np.asarray(levels[1])[:10, :10],
                       np.asarray(levels[0])[:20, :20].reshape(10, 2, 10, 2).mean(axis=(1, 3)), atol=1e-6)
    parameters = json.loads((tmp_path / "out" / "slide_parameters.json").read_text())
    assert parameters["outputs"]["nucleus"]["mask"] == str(source / "labels" / "slide_nucleus")


def test_a_source_that_is_not_an_ome_zarr_image_gets_its_labels_beside_it(tmp_path, tiny_gem):
    """(Only an OME-Zarr image we may write to takes labels; a plain zarr array, a TIFF or a
    read-only store keeps its folder untouched.)"""
    source = tmp_path / "plain.zarr"
    array = zarr.open_array(str(source), mode="w", shape=(70, 90), chunks=(32, 32), dtype="uint16")
    array[:] = blobs((70, 90))
    report = segment_files([source], ["nucleus"], tmp_path / "out", model=tiny_gem, options=SMALL,
                           out_of_core="always", chunk=32, progress=False)
    assert report.ok and not (source / "labels").exists()
    attrs = dict(zarr.open_group(str(tmp_path / "out" / "plain_nucleus_mask.zarr"), mode="r").attrs)
    ngff_zarr.validate(attrs, version="0.4", model="label")
    assert attrs["image-label"] == {"version": "0.4"}


def test_napari_opens_the_outputs_as_multiscale_layers(tmp_path, tiny_gem):
    from napari_gem.plugin.reader import get_reader

    source = ome_zarr(tmp_path / "slide.ome.zarr", blobs((100, 140)), "0.4")
    segment_files([source], ["nucleus"], tmp_path / "out", model=tiny_gem, options=SMALL,
                  out_of_core="always", chunk=32, progress=False)
    parameters = tmp_path / "out" / "slide_parameters.json"
    layers = get_reader(str(parameters))(str(parameters))
    (heatmap, heatmap_meta, heatmap_kind), (mask, mask_meta, mask_kind) = layers
    assert (heatmap_kind, mask_kind) == ("image", "labels")
    assert heatmap_meta["multiscale"] and mask_meta["multiscale"]
    assert [level.shape for level in mask] == level_shapes((100, 140), 32)
    assert mask_meta["scale"] == [0.5, 0.5]
