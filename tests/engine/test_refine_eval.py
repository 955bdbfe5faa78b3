"""The simulated annotator's command (``refine-eval``) and the refinement rows of ``bench``."""

from __future__ import annotations

import pytest

from napari_gem.cli.main import main


def test_refine_eval_measures_the_second_backbone_on_the_same_scenes(capsys):
    code = main(["refine-eval", "--backbone", "vit-b-16-random", "--scenes", "1", "--strokes", "2",
                 "--no-examples", "--settings", "1", "3", "6", "--objects", "off"])
    assert code == 0
    out = capsys.readouterr().out
    assert "### vit-b-16-random: open_clip ViT-B/16 (GEM) with random weights" in out
    for setting in ("| text + strokes, objects: classifier |", "| text + strokes, object stage off |",
                    "| filters only |"):
        assert setting in out
    assert "| strokes without text |" not in out  # not among the rows asked for
    assert "A 1024 x 1024 refinement after encoding (object stage: off)" in out and "CPU:" in out
    assert "### demo" not in out


def test_refine_eval_measures_crowded_scenes_and_refuses_bad_rows(capsys):
    code = main(["refine-eval", "--backbone", "demo", "--scenes", "1", "--strokes", "1",
                 "--no-examples", "--settings", "0", "--instances", "5", "15"])
    assert code == 0
    out = capsys.readouterr().out
    assert "| text + strokes, objects: nearest example |" in out and "5-15 objects per concept" in out
    assert main(["refine-eval", "--scenes", "1", "--settings", "9"]) != 0
    assert "--settings must be row numbers 0..6; got [9]" in capsys.readouterr().err
    assert main(["refine-eval", "--scenes", "1", "--instances", "4", "2"]) != 0
    assert "--instances must be two counts 1 <= fewest <= most; got [4, 2]" in capsys.readouterr().err


def test_refine_eval_refuses_an_unknown_backbone(capsys):
    with pytest.raises(SystemExit):
        main(["refine-eval", "--backbone", "resnet"])
    assert "invalid choice" in capsys.readouterr().err


def test_bench_times_a_refinement_against_the_encode(tiny_model_name, capsys):
    code = main(["bench", "--model", tiny_model_name, "--input-size", "64", "--repeats", "1",
                 "--methods", "gem", "--no-bf16", "--rerun-image", "0", "--tiled-image", "0",
                 "--pamr-image", "0", "--refine-image", "256"])
    assert code == 0
    table = capsys.readouterr().out
    for row in ("encode 256px (s)", "refine 256px from 2 strokes after encoding (ms)", "<= 200",
                "refine / encode 256px"):
        assert row in table
