"""Choosing a method: names, options, validation, listing, and the same API for all."""

from __future__ import annotations

import numpy as np
import open_clip
import pytest
import torch

import napari_gem
from napari_gem import GroundingModel, ModelLoadError, list_methods, load_model, method_names
from napari_gem.engine.spec import ModelSpec


@pytest.fixture(scope="module")
def tiny_clip(tiny_model_name):
    torch.manual_seed(11)
    return (open_clip.create_model(tiny_model_name, pretrained=None).eval(),
            open_clip.get_tokenizer(tiny_model_name))


def test_the_methods_are_listed_with_what_they_change_and_where_they_come_from():
    listing = {info.name: info for info in list_methods()}
    assert tuple(listing) == method_names()
    assert set(listing) == {"gem", "clip", "maskclip", "maskclip-nores", "sclip", "clearclip",
                            "naclip", "gclip", "proxyclip"}
    assert method_names()[0] == "gem"
    for info in listing.values():
        assert info.summary and info.provenance
    assert not listing["gclip"].verified and "reconstructed" in str(listing["gclip"])
    assert all(info.verified for name, info in listing.items() if name != "gclip")
    assert listing["naclip"].defaults == {"sigma": 5.0}
    assert listing["gem"].defaults == {"depth": 7, "iterations": 1, "temperature": None}


@pytest.mark.parametrize("method", method_names())
def test_every_method_runs_the_whole_api(tiny_clip, tiny_proxy, method):
    model = GroundingModel.from_open_clip(*tiny_clip, method=method)
    out = model.encode_image(torch.randn(2, 3, 64, 96))
    assert out.dense_features.shape == (2, 4, 6, 32)
    torch.testing.assert_close(out.dense_features.norm(dim=-1), torch.ones(2, 4, 6))
    maps = model.heatmaps(torch.randn(1, 3, 64, 64), ["cell", "dust"])
    assert maps.shape == (1, 2, 64, 64) and float(maps.min()) >= 0 and float(maps.max()) <= 1
    image = np.random.default_rng(0).integers(0, 255, (90, 120, 3), dtype=np.uint8)
    result = napari_gem.segment(image, ["cell"], model=model, input_size=64, tiling="always",
                                window=64, overlap=16)
    assert result.heatmaps.shape == (1, 90, 120)
    assert result.parameters["model"]["method"] == method
    assert set(result.parameters["model"]["method_options"]) == set(model.method_options.to_dict())


@pytest.mark.parametrize(
    ("method", "options", "message"),
    [
        ("naclip", {"sigma": 0}, "sigma must be a positive number"),
        ("naclip", {"sigma": "wide"}, "sigma"),
        ("naclip", {"depth": 3}, "method 'naclip' has no option 'depth' \\(its options: sigma\\)"),
        ("clearclip", {"sigma": 3}, "its options: none"),
        ("gclip", {"fusion": "max"}, "fusion must be one of mean, half"),
        ("gclip", {"global_blocks": [-1, 2]}, "non-negative"),
        ("gclip", {"global_blocks": []}, "at least one block"),
        ("gclip", {"global_blocks": [6, 7]}, "0 .. 6"),  # the tiny ViT has 8 blocks
        ("gclip", {"per_head": "yes"}, "per_head must be True or False"),
        ("gem", {"depth": 12}, "only 8"),
        ("segformer", {}, "unknown method 'segformer'; choose one of gem, clip"),
    ],
)
def test_bad_method_options_get_a_clear_message(tiny_clip, method, options, message):
    with pytest.raises(ValueError, match=message):
        GroundingModel.from_open_clip(*tiny_clip, method=method, **options)


def test_options_are_shown_in_repr_and_recorded(tiny_clip):
    model = GroundingModel.from_open_clip(*tiny_clip, method="naclip", sigma=3.0)
    assert "NACLIP(sigma=3.0)" in repr(model)
    assert model.describe()["method"] == "naclip"
    assert model.describe()["method_options"] == {"sigma": 3.0}


def test_load_model_takes_a_method_and_refuses_bad_options_before_loading(tiny_model_name,
                                                                         tiny_checkpoint):
    model = load_model(tiny_model_name, tiny_checkpoint, device="cpu", method="SCLIP")
    assert model.method == "sclip"
    with pytest.raises(ModelLoadError, match="no option 'depth'"):
        load_model(tiny_model_name, "/nonexistent/weights.pt", method="clearclip",
                   method_options={"depth": 3})


def test_switching_method_keeps_the_weights_and_the_text_cache(tiny_clip):
    gem = GroundingModel.from_open_clip(*tiny_clip)
    gem.encode_text(["cell"])
    naclip = gem.with_method("naclip", sigma=2.0)
    assert naclip.clip_model is gem.clip_model and naclip.method_options.sigma == 2.0
    assert naclip._text_cache is gem._text_cache


def test_a_model_spec_carries_the_method_and_its_options(tiny_model_name, tiny_checkpoint):
    spec = ModelSpec(tiny_model_name, str(tiny_checkpoint), device="cpu", method="gclip",
                     method_options={"global_blocks": [3, 4], "fusion": "half"})
    assert dict(spec.method_options)["global_blocks"] == (3, 4)
    same = ModelSpec(tiny_model_name, str(tiny_checkpoint), device="cpu", method="gclip",
                     method_options={"fusion": "half", "global_blocks": (4, 3)})
    assert spec == same and hash(spec) == hash(same)
    model = spec.load()
    assert model.method == "gclip" and model.method_options.global_blocks == (3, 4)
    with pytest.raises(ModelLoadError, match="sigma"):
        ModelSpec(tiny_model_name, str(tiny_checkpoint), method="naclip", method_options={"sigma": -1})


def test_every_method_module_imports_by_its_dotted_path(fresh_deprecations):
    import napari_gem.engine.families.clip.methods.gem as gem_module  # not hidden by the listing

    assert gem_module.Gem.name == "gem"
    assert napari_gem.list_methods()[0].name == "gem"
    with pytest.warns(DeprecationWarning, match="list_methods"):
        assert napari_gem.methods()[0].name == "gem"


def test_gem_is_a_deprecated_name_of_the_grounding_model(fresh_deprecations):
    with pytest.warns(DeprecationWarning, match="GroundingModel"):
        from napari_gem import GEM
    assert GEM is GroundingModel
