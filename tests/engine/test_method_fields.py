"""Method options that share a name get their own flags, each with its own method's range and help."""

from __future__ import annotations

import pytest

from napari_gem import ModelLoadError, load_model
from napari_gem.engine.method_fields import method_options
from toy_methods import register_toy_methods


def _segment_parser():
    from napari_gem.cli.main import build_parser

    parser = build_parser()
    action = next(a for a in parser._subparsers._group_actions if a.dest == "command")
    return action.choices["segment"]


def test_unique_option_names_keep_their_flags():
    keys = {option.key for option in method_options()}
    assert {"depth", "sigma", "temperature", "beta"} <= keys
    help_text = _segment_parser().format_help()
    assert "--sigma" in help_text and "--temperature" in help_text and "--gem-temperature" not in help_text


def test_a_shared_name_gets_one_flag_per_method_with_its_own_range(monkeypatch):
    register_toy_methods(monkeypatch)
    keyed = {option.key: option for option in method_options()}
    assert "temperature" not in keyed  # GEM, toy-warm and toy-cool all have one
    warm, cool = keyed["toy_warm_temperature"], keyed["toy_cool_temperature"]
    assert (warm.name, warm.method, warm.description.maximum) == ("temperature", "toy-warm", 5.0)
    assert (cool.name, cool.method, cool.description.maximum) == ("temperature", "toy-cool", 0.5)
    assert keyed["gem_temperature"].description.help.startswith("GEM")
    parser = _segment_parser()
    help_text = " ".join(parser.format_help().split())
    assert "--toy-warm-temperature" in help_text and "toy A: a warm temperature" in help_text
    assert "--toy-cool-temperature" in help_text and "--gem-temperature" in help_text


def test_a_method_option_named_like_a_segmentation_option_gets_its_own_flag(monkeypatch):
    """``window`` is a SegmentOptions field and ``device`` a model argument: a method's own
    ``window`` or ``device`` must not crash argparse."""
    from napari_gem.cli.method_args import method_options_from_args
    from napari_gem.cli.segment import options_from_args

    register_toy_methods(monkeypatch)
    args = _segment_parser().parse_args(["in.tif", "-p", "cell", "-o", "out", "--method", "toy-window",
                                         "--toy-window-window", "5", "--window", "448",
                                         "--toy-window-device", "far", "--device", "cpu"])
    assert method_options_from_args(args) == {"window": 5, "device": "far"}
    assert options_from_args(args).window == 448 and args.device == "cpu"


def test_namespaced_flags_reach_the_chosen_method_under_its_own_name(monkeypatch, tiny_model_name,
                                                                     tiny_checkpoint):
    from napari_gem.cli.method_args import method_options_from_args

    register_toy_methods(monkeypatch)
    parser = _segment_parser()
    args = parser.parse_args(["in.tif", "-p", "cell", "-o", "out", "--method", "toy-cool",
                              "--toy-cool-temperature", "0.2"])
    given = method_options_from_args(args)
    assert given == {"temperature": 0.2}
    model = load_model(tiny_model_name, tiny_checkpoint, device="cpu", method="toy-cool",
                       method_options=given)
    assert model.method_options.temperature == 0.2
    # another method's flag keeps its namespaced name, so the chosen method refuses it by that name
    args = parser.parse_args(["in.tif", "-p", "cell", "-o", "out", "--toy-warm-temperature", "3"])
    given = method_options_from_args(args)
    assert given == {"toy_warm_temperature": 3.0}
    with pytest.raises(ModelLoadError, match="no option .toy_warm_temperature"):
        load_model(tiny_model_name, tiny_checkpoint, device="cpu", method_options=given)
