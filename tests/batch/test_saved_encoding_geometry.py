"""A saved encoding's outputs have the plane's shape and placement, whatever the source's axis order."""

from __future__ import annotations

import numpy as np
import zarr
from batch_helpers import SMALL, blobs

from napari_gem import open_encoding
from napari_gem.batch.saved_encoding import encode_file
from napari_gem.io import read_output


def planar_rgb_slide(path, picture):
    """An H&E-like OME-Zarr 0.4 slide stored ``(c, y, x)`` with red, green, blue channels."""
    group = zarr.open_group(str(path), mode="w", zarr_format=2)
    planar = picture.transpose(2, 0, 1)
    group.create_array("0", shape=planar.shape, chunks=(1, 64, 64), dtype=planar.dtype)[:] = planar
    group.attrs["multiscales"] = [{"version": "0.4", "datasets": [{"path": "0", "coordinateTransformations": [
        {"type": "scale", "scale": [1.0, 0.25, 0.5]},
        {"type": "translation", "translation": [0.0, 3.0, 4.0]}]}], "axes": [
        {"name": "c", "type": "channel"}, {"name": "y", "type": "space", "unit": "micrometer"},
        {"name": "x", "type": "space", "unit": "micrometer"}]}]
    group.attrs["omero"] = {"channels": [{"color": c} for c in ("FF0000", "00FF00", "0000FF")]}
    return path


def test_a_planar_rgb_slide_gives_masks_of_its_plane_placed_as_the_slide(tmp_path, tiny_gem):
    picture = np.stack([blobs((150, 120), seed=s, dtype=np.uint8) for s in (1, 2, 3)], axis=-1)
    source = planar_rgb_slide(tmp_path / "he.ome.zarr", picture)
    for mode in ("always", "never"):  # window by window, and the engine's whole-image encode
        store = encode_file(source, tmp_path / f"{mode}.features.zarr", model=tiny_gem, options=SMALL,
                            out_of_core=mode, progress=False)
        open_encoding(store).segment(["nucleus"], tmp_path / mode, model=tiny_gem, stem=mode)
        # Tiled: OME-Zarr labels in the slide's own labels group; whole: a TIFF beside.
        found = [*(tmp_path / mode).glob(f"{mode}_nucleus_mask.tif"),
                 *(source / "labels").glob(f"{mode}_nucleus")]
        mask, metadata = read_output(found[0])
        assert mask.shape == (150, 120), mode
        np.testing.assert_allclose(metadata["scale"], [0.25, 0.5])
        np.testing.assert_allclose(metadata["translate"], [3.0, 4.0])
