"""The ``segment`` subcommand: help, exit status, one-line errors."""

from __future__ import annotations

import argparse
import json

import pytest
from batch_helpers import blobs, write_tiff

from napari_gem.cli.segment import add_segment_parser, options_from_args


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(prog="napari-gem")
    add_segment_parser(root.add_subparsers(dest="command"))
    return root


def main(argv: list[str]) -> int:
    args = parser().parse_args(argv)
    return args.handler(args)


@pytest.fixture
def tiny_model_args(tiny_spec) -> list[str]:
    return ["--model", tiny_spec.name, "--pretrained", tiny_spec.pretrained,
            "--model-config", tiny_spec.model_configs[0], "--device", "cpu",
            "--input-size", "64", "--window", "64", "--overlap", "16", "--quiet"]


def test_help_explains_every_option():
    segment = parser()._subparsers._group_actions[0].choices["segment"]
    for action in segment._actions:
        assert action.help, f"{action.option_strings or action.dest} has no help"
    text = segment.format_help()
    for option in ("--prompts", "--out", "--pretrained", "--scheduler", "--workers", "--redo",
                   "--recursive", "--threshold", "--score-mode", "--tiling", "exit status"):
        assert option in text


def test_options_map_onto_segment_options():
    args = parser().parse_args([
        "segment", "x.tif", "-p", "a", "-o", "out", "--input-size", "224", "--threshold",
        "0.3", "--background", "sky, ground", "--percentiles", "2", "98", "--min-size", "5",
    ])
    options = options_from_args(args)
    assert options.input_size == 224 and options.threshold == 0.3 and options.min_size == 5
    assert options.background_prompts == ("sky", "ground") and options.percentiles == (2, 98)
    assert options.window == 448  # not given: the engine's default
    args = parser().parse_args(["segment", "x.tif", "-p", "a", "-o", "o", "--threshold", "otsu"])
    assert options_from_args(args).threshold == "otsu"


def test_success_writes_outputs_and_exits_0(tmp_path, tiny_model_args, capsys):
    image = write_tiff(tmp_path / "cells.tif", blobs((48, 56)))
    argv = ["segment", str(image), "-p", "nucleus,membrane", "-o", str(tmp_path / "out"),
            "--threshold", "0.5", "--depth", "3", *tiny_model_args]
    assert main(argv) == 0
    assert "1 written, 0 skipped, 0 failed" in capsys.readouterr().err
    parameters = json.loads((tmp_path / "out" / "cells_parameters.json").read_text())
    assert parameters["model"]["method_options"]["depth"] == 3
    assert parameters["options"]["threshold"] == 0.5

    assert main(argv) == 0
    assert "0 written, 1 skipped" in capsys.readouterr().err


def test_a_failed_image_exits_1(tmp_path, tiny_model_args, capsys):
    (tmp_path / "broken.png").write_bytes(b"\x89PNG but not really")
    write_tiff(tmp_path / "fine.tif", blobs((40, 40)))
    status = main(["segment", str(tmp_path), "-p", "cell", "-o", str(tmp_path / "out"),
                   *tiny_model_args])
    err = capsys.readouterr().err
    assert status == 1
    assert "1 written, 0 skipped, 1 failed" in err and "broken.png" in err


def test_a_complex_tiff_fails_with_one_line_naming_its_dtype(tmp_path, tiny_model_args, capsys):
    import numpy as np
    import tifffile

    tifffile.imwrite(tmp_path / "fft.tif", np.ones((40, 40), np.complex64))
    write_tiff(tmp_path / "fine.tif", blobs((40, 40)))
    status = main(["segment", str(tmp_path), "-p", "cell", "-o", str(tmp_path / "out"),
                   *tiny_model_args])
    err = capsys.readouterr().err
    assert status == 1 and "1 written, 0 skipped, 1 failed" in err
    assert "fft.tif" in err and "complex64" in err and "Traceback" not in err
    assert not list((tmp_path / "out").glob("fft_*"))


@pytest.mark.parametrize(("argv", "message"), [
    (["nothing-here/*.tif", "-p", "cell"], "no input images found"),
    (["{image}", "-p", " , "], "no prompts given"),
    (["{image}", "-p", "cell", "--model", "ViT-Nope-99"], "unknown open_clip model"),
    (["{image}", "-p", "cell", "--window", "32", "--overlap", "64"], "overlap"),
])
def test_bad_arguments_give_one_error_line_and_exit_2(tmp_path, capsys, argv, message):
    image = write_tiff(tmp_path / "a.tif", blobs((32, 32)))
    argv = [part.format(image=image) for part in argv]
    status = main(["segment", *argv, "-o", str(tmp_path / "out"), "--device", "cpu", "-q"])
    err = capsys.readouterr().err
    assert status == 2
    assert err.startswith("napari-gem segment: error:") and message in err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_method_option_and_refine_reach_the_outputs(tmp_path, tiny_model_args):
    image = write_tiff(tmp_path / "cells.tif", blobs((48, 56)))
    argv = ["segment", str(image), "-p", "cell", "-o", str(tmp_path / "out"), "--method", "naclip",
            "--option", "sigma=2.5", "--refine", "pamr", "--pamr-steps", "2",
            "--pamr-dilations", "1", "2", *tiny_model_args]
    assert main(argv) == 0
    parameters = json.loads((tmp_path / "out" / "cells_parameters.json").read_text())
    assert parameters["model"]["method"] == "naclip"
    assert parameters["model"]["method_options"] == {"sigma": 2.5}
    assert parameters["options"]["refine"] == "pamr"
    assert parameters["options"]["pamr_dilations"] == [1, 2]


def test_an_option_the_method_does_not_have_is_one_error_line(tmp_path, tiny_model_args, capsys):
    image = write_tiff(tmp_path / "cells.tif", blobs((48, 56)))
    argv = ["segment", str(image), "-p", "cell", "-o", str(tmp_path / "out"), "--method", "clearclip",
            "--depth", "3", *tiny_model_args]
    assert main(argv) == 2
    error = capsys.readouterr().err.strip().splitlines()
    assert len(error) == 1 and "method 'clearclip' has no option 'depth'" in error[0]


def test_a_simzss_model_needs_no_method_flag(tmp_path, tiny_simzss_name, tiny_simzss_checkpoint):
    from napari_gem.cli.segment import model_from_args

    args = parser().parse_args(["segment", "x.tif", "-p", "cell", "-o", str(tmp_path), "--model",
                                tiny_simzss_name, "--pretrained", str(tiny_simzss_checkpoint)])
    spec = model_from_args(args)
    assert spec.method == "simzss" and not spec.uses_clip_method
