"""One software record, the same in every file napari-gem writes; older exports still read as ours."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

import numpy as np
import tifffile
from PIL import Image

import napari_gem
from napari_gem.engine.software import software_record, written_by_us
from napari_gem.io.export import PNG_METADATA_KEY, write_outputs


def test_the_record_names_the_software_and_the_packaged_version():
    pyproject = tomllib.loads(Path(__file__).parents[2].joinpath("pyproject.toml").read_text())
    assert software_record() == {"name": "napari-gem", "version": pyproject["project"]["version"]}
    assert napari_gem.__version__ == pyproject["project"]["version"]


def test_exported_images_carry_the_record_and_old_exports_still_count_as_ours(tmp_path):
    mask = np.zeros((16, 16), np.uint8)
    mask[4:8, 4:8] = 1
    write_outputs(tmp_path, "img", masks={"cell": mask}, heatmaps={}, parameters={"prompts": ["cell"]},
                  scale=(1, 1), translate=(0, 0))
    with tifffile.TiffFile(tmp_path / "img_cell_mask.tif") as tiff:
        assert tiff.shaped_metadata[0]["software"] == software_record()
    with Image.open(tmp_path / "img_cell_mask.png") as image:
        assert json.loads(image.text[PNG_METADATA_KEY])["software"] == software_record()
    assert written_by_us({"software": software_record()})
    assert written_by_us({"software": "napari-gem"})  # what exports wrote before the record
    assert not written_by_us({"software": "Fiji"}) and not written_by_us("napari-gem")
