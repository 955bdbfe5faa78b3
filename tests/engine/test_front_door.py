"""The library's front door as a new user tries it: each trap the issue names has a test here."""

from __future__ import annotations

import warnings

import pytest

from napari_gem import load_model


def test_a_misspelt_loader_keyword_is_refused_by_name_with_what_was_meant(tiny_model_name, tiny_checkpoint):
    with pytest.raises(TypeError, match=r"unknown keyword 'devcie' \(did you mean 'device'\?\)"):
        load_model(tiny_model_name, tiny_checkpoint, devcie="cpu")
    with pytest.raises(TypeError, match=r"unknown keyword 'dpeth' \(did you mean 'depth'\?\)"):
        load_model(tiny_model_name, tiny_checkpoint, dpeth=5)
    with pytest.raises(TypeError, match="unknown keyword 'colour'; load_model takes pretrained, device"):
        load_model(tiny_model_name, tiny_checkpoint, colour="red")


def test_method_options_go_in_their_own_mapping(tiny_model_name, tiny_checkpoint):
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the new form warns about nothing
        model = load_model(tiny_model_name, tiny_checkpoint, device="cpu", method="naclip",
                           method_options={"sigma": 3.0})
    assert model.method == "naclip" and model.method_options.sigma == 3.0


def test_method_options_as_keywords_still_work_and_warn_once(tiny_model_name, tiny_checkpoint,
                                                             fresh_deprecations):
    with pytest.warns(DeprecationWarning, match=r"method_options=\{'sigma': \.\.\.\}") as caught:
        model = load_model(tiny_model_name, tiny_checkpoint, device="cpu", method="naclip", sigma=3.0)
    assert model.method_options.sigma == 3.0
    assert caught[0].filename == __file__  # the warning points at the user's line
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert load_model(tiny_model_name, tiny_checkpoint, device="cpu", method="naclip",
                          sigma=4.0).method_options.sigma == 4.0


def test_segment_without_a_model_loads_the_default_once(monkeypatch):
    """``segment(image, prompts)`` in a loop reads the default model's weights once."""
    from skimage.data import camera

    from napari_gem import segment
    from napari_gem.engine import loading

    monkeypatch.setattr(loading, "DEFAULT_MODEL", "napari-gem-demo-micrographs")  # packaged: offline
    loading._loaded_default.cache_clear()
    image = camera()[:64, :64]
    first = segment(image, ["nucleus"])
    second = segment(image, ["membrane"])
    assert loading._loaded_default.cache_info().misses == 1  # loaded by the first call only
    assert first.parameters["model"] == second.parameters["model"]
    assert first.parameters["model"]["model"] == "napari-gem-demo-micrographs"
    loading._loaded_default.cache_clear()


def test_options_given_before_the_model_still_work_with_a_warning(tiny_gem, fresh_deprecations):
    """The one order is (image, [prompts], model, options); the swapped order of old scripts warns."""
    import numpy as np

    from napari_gem import SegmentOptions, encode, segment

    image = np.random.default_rng(0).random((40, 40)).astype(np.float32)
    options = SegmentOptions(input_size=32)
    expected = segment(image, ["cat"], tiny_gem, options)
    with pytest.warns(DeprecationWarning, match=r"order \(image, \[prompts\], model, options\)"):
        swapped = segment(image, ["cat"], options, tiny_gem)
    np.testing.assert_array_equal(swapped.heatmaps, expected.heatmaps)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # warned once per process
        assert encode(image, options, tiny_gem).options.input_size == 32


def test_segment_takes_exemplars_in_the_form_encoded_images_take(tiny_gem):
    import numpy as np

    from napari_gem import SegmentOptions, encode, segment

    image = np.random.default_rng(1).random((40, 40)).astype(np.float32)
    options = SegmentOptions(input_size=32)
    boxes = {"@examples": [(4, 4, 20, 20)]}  # (y0, x0, y1, x1)
    direct = segment(image, ["cat", "@examples"], tiny_gem, options, exemplars=boxes)
    encoded = encode(image, tiny_gem, options).segment(["cat", "@examples"], exemplars=boxes)
    np.testing.assert_array_equal(direct.heatmaps, encoded.heatmaps)
    assert direct.parameters["exemplars"] == {"@examples": [[4, 4, 20, 20]]}


def test_the_top_level_has_what_a_batch_user_needs():
    import napari_gem
    from napari_gem.batch import segment_files
    from napari_gem.engine.families import catalogue

    assert napari_gem.segment_files is segment_files
    assert napari_gem.catalogue is catalogue and napari_gem.catalogue()
    spec = napari_gem.ModelSpec("napari-gem-demo-micrographs")
    assert spec.load().name == "napari-gem-demo-micrographs"
    assert not {"GEM", "methods"} & set(napari_gem.__all__)  # deprecated: reachable, not advertised


@pytest.mark.parametrize(("module", "old", "new"), [
    ("napari_gem", "GEM", "GroundingModel"),
    ("napari_gem.engine", "GEM", "GroundingModel"),
    ("napari_gem.evaluation", "GemScorer", "ModelScorer"),
])
def test_a_deprecated_alias_warns_once_naming_what_replaces_it(module, old, new, fresh_deprecations):
    import importlib

    namespace = importlib.import_module(module)
    with pytest.warns(DeprecationWarning, match=rf"{old} is deprecated .* removed in napari-gem 0\.3\.0: "
                                                rf"use {new}"):
        first = getattr(namespace, old)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert getattr(namespace, old) is first


def test_every_deprecated_path_is_listed_in_the_api_docs():
    from pathlib import Path

    from napari_gem.engine.deprecation import REMOVED_IN

    text = Path(__file__).parents[2].joinpath("docs", "api.md").read_text()
    section = text[text.index("## Deprecated"):]
    assert f"removed in {REMOVED_IN}" in section
    for old in ("napari_gem.GEM`", "GemWidget`", "GemScorer`", "`napari_gem.methods()`",
                "method options as keywords", "options before the model", "plain list of boxes"):
        assert old in section, old


def test_refine_takes_exemplars_in_the_form_segment_takes(tiny_gem, fresh_deprecations):
    """``{prompt: boxes}`` in both; refine's old plain list still works, with a warning."""
    import numpy as np

    from napari_gem import SegmentOptions, encode

    image = np.random.default_rng(2).random((48, 48)).astype(np.float32)
    encoded = encode(image, tiny_gem, SegmentOptions(input_size=32))
    box = (8, 8, 24, 24)  # (y0, x0, y1, x1)
    combined = encoded.refine("cell", exemplars={"cell": [box]})
    alone = encoded.refine(None, exemplars={"@examples": [box]})
    with pytest.warns(DeprecationWarning, match=r"exemplars=\{prompt: boxes\}"):
        old = encoded.refine("cell", exemplars=[box])
    np.testing.assert_array_equal(old.heatmaps, combined.heatmaps)
    assert combined.parameters["refine"]["exemplars"] == [list(box)]
    assert not np.array_equal(alone.heatmaps, combined.heatmaps)  # the boxes alone, no words
    with pytest.raises(ValueError, match="exemplars name prompts that are not refined: dog"):
        encoded.refine("cell", exemplars={"dog": [box]})


def test_every_function_that_takes_boxes_states_their_order():
    from napari_gem import EncodedImage, segment
    from napari_gem.engine import strokes

    for function in (segment, EncodedImage.segment, EncodedImage.refine, strokes.refine):
        assert "(y0, x0, y1, x1)" in function.__doc__, function.__qualname__
    for function in (segment, EncodedImage.segment, EncodedImage.refine):
        assert "not SAM's or torchvision's" in " ".join(function.__doc__.split()), function.__qualname__


def test_a_misspelt_option_is_refused_by_name_with_what_was_meant(tiny_gem):
    import numpy as np

    from napari_gem import SegmentOptions, encode, segment

    image = np.zeros((32, 32), np.float32)
    with pytest.raises(TypeError, match=r"unknown option 'thresold' \(did you mean 'threshold'\?\)"):
        segment(image, ["cat"], tiny_gem, thresold="otsu")
    encoded = encode(image, tiny_gem, SegmentOptions(input_size=32))
    with pytest.raises(TypeError, match=r"unknown option 'thresold' \(did you mean 'threshold'\?\)"):
        encoded.segment(["cat"], thresold="otsu")
