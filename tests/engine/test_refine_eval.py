"""The simulated annotator's command (``refine-eval``) and the refinement rows of ``bench``."""

from __future__ import annotations

import pytest

from napari_gem.cli.main import main


def test_refine_eval_measures_the_second_backbone_on_the_same_scenes(capsys):
    code = main(["refine-eval", "--backbone", "vit-b-16-random", "--scenes", "1", "--strokes", "2",
                 "--no-examples"])
    assert code == 0
    out = capsys.readouterr().out
    assert "### vit-b-16-random: open_clip ViT-B/16 (GEM) with random weights" in out
    for setting in ("| text + strokes |", "| strokes without text |", "| filters only |"):
        assert setting in out
    assert "A 1024 x 1024 refinement after encoding" in out and "CPU:" in out
    assert "### demo" not in out


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
