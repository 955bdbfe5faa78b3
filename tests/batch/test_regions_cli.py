"""``napari-gem segment --regions``: superpixels or a labels file as the regions of a batch run."""

from __future__ import annotations

import argparse
import json

import numpy as np
import tifffile
from batch_helpers import blobs, write_tiff

from napari_gem.cli.segment import add_segment_parser


def main(argv: list[str]) -> int:
    root = argparse.ArgumentParser(prog="napari-gem")
    add_segment_parser(root.add_subparsers(dest="command"))
    args = root.parse_args(argv)
    return args.handler(args)


def model_args(spec) -> list[str]:
    return ["--model", spec.name, "--pretrained", spec.pretrained, "--model-config",
            spec.model_configs[0], "--device", "cpu", "--input-size", "64", "--quiet"]


def regions_of(shape):
    labels = np.zeros(shape, np.uint16)
    labels[: shape[0] // 2] = 5
    labels[shape[0] // 2 :, : shape[1] // 2] = 9
    return labels


def test_a_labels_file_makes_the_masks_agree_inside_each_region(tmp_path, tiny_spec, capsys):
    image = write_tiff(tmp_path / "cells.tif", blobs((48, 56)))
    tifffile.imwrite(tmp_path / "nuclei.tif", regions_of((48, 56)))
    argv = ["segment", str(image), "-p", "nucleus,membrane", "-o", str(tmp_path / "out"),
            "--regions", "labels", "--regions-labels", str(tmp_path / "nuclei.tif"),
            *model_args(tiny_spec)]
    assert main(argv) == 0, capsys.readouterr().err
    parameters = json.loads((tmp_path / "out" / "cells_parameters.json").read_text())
    assert parameters["options"]["regions"] == "labels"
    regions = regions_of((48, 56))
    paths = sorted((tmp_path / "out").glob("cells_*_mask.tif"))
    assert len(paths) == 2
    for path in paths:
        masks = tifffile.imread(path) > 0
        for value in (5, 9):
            assert len(np.unique(masks[regions == value])) == 1, path.name


def test_slic_regions_run_from_the_command_line(tmp_path, tiny_spec, capsys):
    image = write_tiff(tmp_path / "cells.tif", blobs((48, 56)))
    argv = ["segment", str(image), "-p", "nucleus", "-o", str(tmp_path / "out"), "--regions", "slic",
            "--slic-segments", "12", *model_args(tiny_spec)]
    assert main(argv) == 0, capsys.readouterr().err
    parameters = json.loads((tmp_path / "out" / "cells_parameters.json").read_text())
    assert parameters["options"]["regions"] == "slic" and parameters["options"]["slic_segments"] == 12


def test_a_labels_file_of_another_shape_is_one_error_line(tmp_path, tiny_spec, capsys):
    image = write_tiff(tmp_path / "cells.tif", blobs((48, 56)))
    tifffile.imwrite(tmp_path / "small.tif", regions_of((20, 20)))
    argv = ["segment", str(image), "-p", "nucleus", "-o", str(tmp_path / "out"), "--regions", "labels",
            "--regions-labels", str(tmp_path / "small.tif"), *model_args(tiny_spec)]
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert "small.tif" in err and "(48, 56)" in err and "Traceback" not in err


def test_regions_refuse_out_of_core_always(tmp_path, tiny_spec, capsys):
    image = write_tiff(tmp_path / "cells.tif", blobs((48, 56)))
    argv = ["segment", str(image), "-p", "nucleus", "-o", str(tmp_path / "out"), "--regions", "slic",
            "--out-of-core", "always", *model_args(tiny_spec)]
    assert main(argv) == 2
    assert "regions: this option needs each image in memory" in capsys.readouterr().err
