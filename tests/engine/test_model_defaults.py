"""One place for a model's defaults, and options by stage (issue 22, items 1 and 3).

The packaged demo model (offline) loaded with no weights named; its family's option
defaults apply wherever it is used, an explicit option always wins, and the parameters say
where each value came from.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from napari_gem import ModelLoadError, SegmentOptions, encode, load_model, segment
from napari_gem.demo import MODEL_NAME, scene
from napari_gem.engine.described import STAGES, describe
from napari_gem.engine.families.demo import INPUT_SIZE, WEIGHTS_PATH
from napari_gem.engine.spec import ModelSpec


@pytest.fixture(scope="module")
def demo():
    return load_model(MODEL_NAME, device="cpu")


def test_the_demo_model_loads_with_no_weights_named(demo):
    assert demo.pretrained == str(WEIGHTS_PATH)
    assert demo.method_options.depth == 3  # the family's GEM depth
    assert ModelSpec(MODEL_NAME, device="cpu").pretrained == str(WEIGHTS_PATH)


@pytest.mark.parametrize("name, says", [("SimZSS-ViT-B-14", "checkpoint file in the released layout"),
                                        ("talk2dino-vitb14", "projection file in the released layout")])
def test_a_family_without_default_weights_says_which_file_to_give(name, says):
    for make in (lambda: load_model(name, device="cpu"), lambda: ModelSpec(name)):
        with pytest.raises(ModelLoadError, match=says) as caught:
            make()
        assert "openai" not in str(caught.value)


def test_a_clip_gets_openai_where_it_has_that_tag_and_a_config_without_tags_needs_a_file(tiny_model_name):
    assert ModelSpec("ViT-B-16").pretrained == "openai"
    with pytest.raises(ModelLoadError, match="has no default weights"):
        ModelSpec(tiny_model_name)
    with pytest.raises(ModelLoadError, match="ViT-B-16"):  # a typo still gets "did you mean"
        ModelSpec("ViT-B-61")


def test_the_models_defaults_apply_unless_the_user_chose_the_option(demo):
    image = scene(2)[0]
    result = segment(image, ["nucleus"], model=demo)
    assert result.parameters["options"]["input_size"] == INPUT_SIZE
    sources = result.parameters["option_sources"]
    assert sources["input_size"] == sources["window"] == "model default"
    assert sources["min_size"] == "engine default"
    chosen = segment(image, ["nucleus"], model=demo, input_size=448, min_size=5)
    assert chosen.parameters["options"]["input_size"] == 448
    assert chosen.parameters["option_sources"]["input_size"] == "user"
    assert chosen.parameters["option_sources"]["window"] == "model default"
    explicit = encode(image, demo, SegmentOptions(input_size=448))  # equal to the engine's default
    assert explicit.options.input_size == 448 and explicit.options.sources()["input_size"] == "user"


def test_options_remember_what_was_chosen_through_replace_and_pickling():
    import pickle

    options = SegmentOptions(min_size=3).replace(fill_holes=4)
    assert options.given == {"min_size", "fill_holes"}
    assert pickle.loads(pickle.dumps(options)).given == options.given
    assert SegmentOptions.from_dict({"threshold": 0.4}).given == {"threshold"}
    assert options == SegmentOptions(min_size=3, fill_holes=4)  # equality is the values only


def test_every_option_says_its_stage_and_the_encoding_key_follows_from_it():
    items = describe(SegmentOptions)
    assert {item.name for item in items} == {field.name for field in dataclasses.fields(SegmentOptions)}
    assert all(item.stage in STAGES for item in items)
    base = SegmentOptions(regions="slic")
    changed = {"input_size": 224, "contrast": "minmax", "window": 224, "overlap": 32,
               "slic_segments": 50, "region_tau": 2.0, "templates": "imagenet80", "min_size": 9,
               "threshold": 0.3, "pamr_steps": 3, "window_batch": 8, "region_vote": False}
    for name, value in changed.items():
        stage = next(item for item in items if item.name == name)
        differs = base.replace(**{name: value}).encoding_key() != base.encoding_key()
        assert differs == (stage.stage == "encode" and stage.keyed), name
    # Region options matter to the encoding only while regions are on.
    assert SegmentOptions(slic_segments=50).encoding_key() == SegmentOptions().encoding_key()
    assert set(base.scoring_fields()) == {item.name for item in items if item.stage != "encode"}


def test_an_encoded_image_refuses_encode_options_saying_to_encode_again(demo):
    encoded = encode(np.random.default_rng(0).random((64, 64)), demo)
    with pytest.raises(ValueError, match="input_size is an encode option.*encode the image again"):
        encoded.segment(["nucleus"], input_size=224)
    result = encoded.segment(["nucleus"], input_size=encoded.options.input_size, min_size=4)
    assert result.parameters["options"]["min_size"] == 4

