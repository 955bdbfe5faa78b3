"""The small subcommands: the methods listing and the speed table (on the tiny model)."""

from __future__ import annotations

import pytest

from napari_gem.cli.main import main


def test_methods_lists_every_method_with_its_options(capsys):
    assert main(["methods"]) == 0
    text = capsys.readouterr().out
    for name in ("gem (GEM)", "naclip (NACLIP)", "gclip (GCLIP)", "maskclip-nores", "clearclip"):
        assert name in text
    assert "sigma=5.0" in text and "depth=7" in text and "reconstructed from the paper" in text


def test_bench_gives_images_per_second_and_seconds_per_megapixel_for_every_method(
        tiny_model_name, capsys, tmp_path):
    from napari_gem.engine.families.clip.methods import self_contained_method_names

    out = tmp_path / "bench.md"
    code = main(["bench", "--model", tiny_model_name, "--device", "cpu", "--image-size", "100",
                 "--input-size", "64", "--prompts", "2", "--repeats", "1", "--out", str(out)])
    assert code == 0
    printed = capsys.readouterr().out
    table = printed[printed.index("| method"):].strip()
    assert out.read_text().strip() == table
    header, _, *rows = table.splitlines()
    assert [cell.strip() for cell in header.strip("|").split("|")] == [
        "method", "encode (s)", "prompts (s)", "images / s", "s / megapixel"]
    assert [row.split("|")[1].strip() for row in rows] == list(self_contained_method_names())
    for row in rows:
        encode_s, prompts_s, per_second, per_megapixel = (float(c) for c in row.strip("|").split("|")[1:])
        # One image of 100 x 100 px is 0.01 megapixels; the seconds are printed rounded to 1 ms.
        assert per_second * per_megapixel * 0.01 == pytest.approx(1, rel=0.01)
        assert 1 / per_second == pytest.approx(encode_s + prompts_s, abs=0.002)


def test_bench_times_only_the_methods_named_and_refuses_an_unknown_one(tiny_model_name, capsys):
    common = ["bench", "--model", tiny_model_name, "--device", "cpu", "--image-size", "64",
              "--input-size", "64", "--prompts", "1", "--repeats", "1"]
    assert main([*common, "--methods", "naclip,gem"]) == 0
    printed = capsys.readouterr().out
    rows = printed[printed.index("| method"):].strip().splitlines()[2:]
    assert [row.split("|")[1].strip() for row in rows] == ["naclip", "gem"]
    assert main([*common, "--methods", "gem,segformer"]) != 0
    assert "unknown method(s) segformer; choose from gem" in capsys.readouterr().err


def test_the_experiments_are_not_subcommands_of_the_installed_command(capsys):
    for experiment in ("train-demo", "demo-eval", "refine-eval", "instances-eval"):
        with pytest.raises(SystemExit):
            main([experiment])
        assert "invalid choice" in capsys.readouterr().err
