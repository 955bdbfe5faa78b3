"""Reading input images of every supported format, and their planes, from real files."""

from __future__ import annotations

import json

import numpy as np
import pytest
import tifffile
import zarr
from PIL import Image

from napari_gem.io.images import UnsupportedImageError, guess_axes, image_stem, open_image
from napari_gem.io.planes import PlaneLayout, PlaneView, planes


def noise(shape, dtype=np.uint16, seed=0) -> np.ndarray:
    values = np.random.default_rng(seed).integers(0, 255, size=shape)
    return values.astype(dtype)


def test_guess_axes():
    assert guess_axes((10, 20)) == "YX"
    assert guess_axes((10, 20, 3)) == "YXS"
    assert guess_axes((5, 10, 20)) == "ZYX"
    assert guess_axes((2, 5, 10, 20, 4)) == "CZYXS"
    assert guess_axes((1, 2, 3, 4, 5, 6)) == "QTCZYX"


def test_image_stem():
    from pathlib import Path

    assert image_stem(Path("a/cells.ome.tif")) == "cells"
    assert image_stem(Path("a/big.ome.zarr")) == "big"
    assert image_stem(Path("photo.JPG")) == "photo"


def test_tiff_2d_and_rgb(tmp_path):
    gray, rgb = noise((30, 40)), noise((30, 40, 3), np.uint8)
    tifffile.imwrite(tmp_path / "gray.tif", gray)
    tifffile.imwrite(tmp_path / "rgb.tiff", rgb)
    loaded = open_image(tmp_path / "gray.tif")
    assert loaded.axes == "YX" and not loaded.lazy and np.array_equal(loaded.array, gray)
    assert loaded.scale is None
    loaded = open_image(tmp_path / "rgb.tiff")
    assert loaded.axes == "YXS" and np.array_equal(loaded.array, rgb)


def test_ome_tiff_stack_with_physical_sizes_read_lazily(tmp_path):
    stack = noise((3, 20, 30))
    tifffile.imwrite(tmp_path / "cells.ome.tif", stack, metadata={
        "axes": "ZYX", "PhysicalSizeX": 0.5, "PhysicalSizeY": 0.25, "PhysicalSizeZ": 2.0,
    })
    loaded = open_image(tmp_path / "cells.ome.tif", lazy=True)
    assert loaded.lazy and loaded.axes == "ZYX" and loaded.shape == (3, 20, 30)
    assert loaded.scale == (2.0, 0.25, 0.5)
    assert np.array_equal(loaded.array[1, 2:5], stack[1, 2:5])
    assert np.array_equal(loaded.to_dask().compute(), stack)


def test_imagej_stack_spacing(tmp_path):
    stack = noise((4, 10, 12))
    tifffile.imwrite(tmp_path / "ij.tif", stack, imagej=True, resolution=(4.0, 4.0),
                     metadata={"spacing": 3.0, "unit": "um", "axes": "ZYX"})
    loaded = open_image(tmp_path / "ij.tif")
    assert loaded.axes == "ZYX" and loaded.scale == (3.0, 0.25, 0.25)


def test_png_gray16_palette_and_jpeg(tmp_path):
    gray16 = noise((12, 16)) * 200
    Image.fromarray(gray16).save(tmp_path / "deep.png")
    loaded = open_image(tmp_path / "deep.png")
    assert loaded.format == "png" and loaded.axes == "YX"
    assert loaded.dtype == np.uint16 and np.array_equal(loaded.array, gray16)

    Image.fromarray(noise((12, 16), np.uint8) % 4).convert("P").save(tmp_path / "palette.png")
    assert open_image(tmp_path / "palette.png").axes == "YXS"

    Image.fromarray(noise((12, 16, 3), np.uint8)).save(tmp_path / "photo.jpg")
    loaded = open_image(tmp_path / "photo.jpg")
    assert loaded.format == "jpeg" and loaded.shape == (12, 16, 3) and loaded.axes == "YXS"


def test_plain_zarr_array_and_single_array_group(tmp_path):
    data = noise((2, 24, 20))
    array = zarr.open_array(tmp_path / "plain.zarr", mode="w", shape=data.shape,
                            chunks=(1, 8, 8), dtype=data.dtype)
    array[:] = data
    loaded = open_image(tmp_path / "plain.zarr")
    assert loaded.format == "zarr" and loaded.lazy and loaded.axes == "ZYX"
    assert np.array_equal(loaded.array[1], data[1])

    group = zarr.open_group(tmp_path / "group.zarr", mode="w")
    group.create_array("image", shape=(8, 8), dtype="u1")
    assert open_image(tmp_path / "group.zarr").shape == (8, 8)
    group.create_array("other", shape=(8, 8), dtype="u1")
    with pytest.raises(UnsupportedImageError, match="2 arrays"):
        open_image(tmp_path / "group.zarr")


@pytest.mark.parametrize("version", ["0.4", "0.5"])
def test_ome_zarr_multiscale_opens_level_0_with_its_transforms(tmp_path, version):
    data = noise((2, 32, 48))
    path = tmp_path / "cells.ome.zarr"
    group = zarr.open_group(path, mode="w", zarr_format=2 if version == "0.4" else 3)
    for level, step in (("0", 1), ("1", 2)):
        array = group.create_array(level, shape=data[:, ::step, ::step].shape, chunks=(1, 16, 16),
                                   dtype=data.dtype)
        array[:] = data[:, ::step, ::step]
    multiscales = [{
        "version": version,
        "axes": [{"name": "c", "type": "channel"}, {"name": "y", "type": "space"},
                 {"name": "x", "type": "space"}],
        "datasets": [
            {"path": "0", "coordinateTransformations": [
                {"type": "scale", "scale": [1.0, 0.5, 0.5]},
                {"type": "translation", "translation": [0.0, 10.0, 20.0]}]},
            {"path": "1", "coordinateTransformations": [
                {"type": "scale", "scale": [1.0, 1.0, 1.0]}]},
        ],
        "coordinateTransformations": [{"type": "scale", "scale": [1.0, 2.0, 2.0]}],
    }]
    if version == "0.4":
        group.attrs["multiscales"] = multiscales
    else:
        group.attrs["ome"] = {"version": "0.5", "multiscales": multiscales}
    loaded = open_image(path)
    assert loaded.format == "ome-zarr" and loaded.axes == "CYX" and loaded.shape == data.shape
    assert loaded.scale == (1.0, 1.0, 1.0) and loaded.translate == (0.0, 20.0, 40.0)
    lazy = loaded.to_dask()
    assert lazy.chunksize == (1, 16, 16) and np.array_equal(lazy[1].compute(), data[1])


def rgb_slide(path, data, colours):
    """An OME-Zarr 0.4 slide ``(c, y, x)`` with ``omero`` rendering colours per channel."""
    group = zarr.open_group(path, mode="w", zarr_format=2)
    group.create_array("0", shape=data.shape, chunks=(1, 16, 16), dtype=data.dtype)[:] = data
    group.attrs["multiscales"] = [{"version": "0.4", "datasets": [{"path": "0", "coordinateTransformations": [
        {"type": "scale", "scale": [1.0, 0.25, 0.25]}]}], "axes": [
        {"name": "c", "type": "channel"}, {"name": "y", "type": "space"}, {"name": "x", "type": "space"}]}]
    group.attrs["omero"] = {"channels": [{"color": colour} for colour in colours]}
    return path


def test_an_rgb_ome_zarr_slide_is_one_colour_picture_not_three_planes(tmp_path):
    data = noise((3, 32, 48), dtype=np.uint8)
    rgb = open_image(rgb_slide(tmp_path / "he.ome.zarr", data, ["FF0000", "00FF00", "0000FF"]))
    assert rgb.axes == "SYX"
    layout = PlaneLayout.of(rgb)
    assert layout.num_planes == 1 and layout.output_shape == (32, 48)
    (_, plane), = planes(rgb)
    assert np.array_equal(np.asarray(plane), data.transpose(1, 2, 0))  # pixels as RGB triples
    # Three fluorescence channels (other colours), or 16-bit ones, stay three planes.
    other = open_image(rgb_slide(tmp_path / "fluo.ome.zarr", data, ["0000FF", "00FF00", "FF00FF"]))
    deep = open_image(rgb_slide(tmp_path / "deep.ome.zarr", data.astype(np.uint16),
                                ["FF0000", "00FF00", "0000FF"]))
    assert other.axes == "CYX" and deep.axes == "CYX"


def test_unreadable_files_raise_a_clear_error(tmp_path):
    (tmp_path / "broken.tif").write_bytes(b"not a tiff at all")
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(UnsupportedImageError, match="TIFF"):
        open_image(tmp_path / "broken.tif")
    with pytest.raises(UnsupportedImageError, match="unsupported file type"):
        open_image(tmp_path / "notes.txt")
    with pytest.raises(UnsupportedImageError, match="does not exist"):
        open_image(tmp_path / "missing.png")


@pytest.mark.parametrize("lazy", [False, True])
def test_images_without_intensities_are_refused_when_opened(tmp_path, lazy):
    """A complex TIFF (an FFT, say) would otherwise be cast to real, window by window."""
    tifffile.imwrite(tmp_path / "fft.tif", np.zeros((16, 16), np.complex64))
    with pytest.raises(UnsupportedImageError, match="fft.tif: the image has dtype complex64"):
        open_image(tmp_path / "fft.tif", lazy=lazy)


def test_napari_gem_outputs_keep_their_geometry_as_inputs(tmp_path):
    from napari_gem.io import write_outputs

    write_outputs(tmp_path, "img", masks={}, heatmaps={"a": np.zeros((2, 8, 8), np.float32)},
                  parameters={}, scale=(3, 2, 1), translate=(0, 5, 6))
    loaded = open_image(tmp_path / "img_a_heatmap.tif")
    assert loaded.scale == (3.0, 2.0, 1.0) and loaded.translate == (0.0, 5.0, 6.0)
    assert json.loads((tmp_path / "img_parameters.json").read_text())["scale"] == [3, 2, 1]

    write_outputs(tmp_path, "flat", masks={"a": np.ones((4, 5), bool)}, heatmaps={},
                  parameters={}, scale=(0.5, 0.25), translate=(1, 2))
    loaded = open_image(tmp_path / "flat_a_mask.png")
    assert loaded.scale == (0.5, 0.25) and loaded.translate == (1.0, 2.0)


def test_planes_of_a_stack_are_lazy_2d_views(tmp_path):
    data = noise((2, 3, 20, 24))
    tifffile.imwrite(tmp_path / "tz.ome.tif", data, metadata={"axes": "TZYX"})
    image = open_image(tmp_path / "tz.ome.tif", lazy=True)
    layout = PlaneLayout.of(image)
    assert layout.output_shape == (2, 3, 20, 24) and layout.num_planes == 6
    seen = []
    for index, plane in planes(image):
        assert plane.shape == (20, 24) and plane.dtype == np.uint16
        assert np.array_equal(np.asarray(plane), data[index])
        assert np.array_equal(plane[4:9, ::5], data[index][4:9, ::5])
        seen.append(index)
    assert seen == [(t, z) for t in range(2) for z in range(3)]


def test_planar_rgb_planes_come_out_colour_last():
    from pathlib import Path

    from napari_gem.io.images import LoadedImage

    data = noise((2, 3, 10, 12))  # Z, S (planar colour), Y, X
    image = LoadedImage(Path("x.tif"), data, "ZSYX", "tiff")
    layout = PlaneLayout.of(image)
    assert layout.output_shape == (2, 10, 12)
    plane = PlaneView.of_layout(data, layout, (1,))
    assert plane.shape == (10, 12, 3)
    assert np.array_equal(plane[2:5, 3:7], data[1, :, 2:5, 3:7].transpose(1, 2, 0))
