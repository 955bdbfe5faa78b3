"""A whole-slide run's OME-Zarr outputs open in napari as multiscale layers over the image."""

from __future__ import annotations

import numpy as np
import pytest
import zarr
from scipy import ndimage

from napari_gem import SegmentOptions
from napari_gem.batch import segment_files
from napari_gem.plugin.layers import META

pytestmark = pytest.mark.gui


def test_out_of_core_outputs_reopen_as_multiscale_layers(viewer, tiny_gem, tmp_path):
    smooth = ndimage.gaussian_filter(np.random.default_rng(0).random((100, 140)), 4)
    source = tmp_path / "slide.ome.zarr"
    group = zarr.open_group(str(source), mode="w", zarr_format=2)
    group.create_array("0", shape=smooth.shape, chunks=(32, 32), dtype="float32")[:] = smooth
    group.attrs["multiscales"] = [{"version": "0.4", "axes": [{"name": "y", "type": "space"},
                                                             {"name": "x", "type": "space"}],
                                   "datasets": [{"path": "0", "coordinateTransformations": [
                                       {"type": "scale", "scale": [0.5, 0.5]}]}]}]
    report = segment_files([source], ["nucleus"], tmp_path / "out", model=tiny_gem,
                           options=SegmentOptions(input_size=64, window=64, overlap=16),
                           out_of_core="always", chunk=32, progress=False)
    assert report.ok
    heatmap, mask = viewer.open(tmp_path / "out" / "slide_parameters.json", plugin="napari-gem")
    assert type(heatmap).__name__ == "Image" and type(mask).__name__ == "Labels"
    assert heatmap.multiscale and mask.multiscale and len(mask.data) == 4
    np.testing.assert_allclose(mask.scale, [0.5, 0.5])
    assert mask.metadata[META]["prompt"] == "nucleus"
    np.testing.assert_array_equal(np.asarray(mask.data[0]), np.asarray(zarr.open_array(
        str(source / "labels" / "slide_nucleus" / "0"), mode="r")[:]))
