"""One model cache keyed by everything that defines a model (issue 22, items 4 and 5).

Real tiny models saved as files (no downloads): the cache must never hand back a model
built with other options than the ones asked for.
"""

from __future__ import annotations

import pytest
from talk2dino_models import TINY, register_tiny, save_files

from napari_gem.engine.model_cache import ModelCache
from napari_gem.engine.spec import ModelSpec


@pytest.fixture(scope="module")
def talk2dino(tmp_path_factory):
    folder = tmp_path_factory.mktemp("talk2dino")
    register_tiny(folder / "configs")
    return save_files(folder / "weights")


def _talk2dino_spec(files, **options) -> ModelSpec:
    values = {"backbone_weights": str(files["backbone"]), "text_weights": str(files["text"]), **options}
    return ModelSpec(TINY, str(files["projection"]), device="cpu", method_options=values)


def test_changing_a_talk2dino_option_gives_a_model_built_with_it(talk2dino):
    """The bug: Talk2DINO's options are the family's own, and the cache keyed on weights only,
    so turning background cleaning on handed back the model built with it off."""
    cache = ModelCache()
    plain = cache.get(_talk2dino_spec(talk2dino))
    assert plain.options.background_cleaning is False
    cleaning = cache.get(_talk2dino_spec(talk2dino, background_cleaning=True))
    assert cleaning is not plain
    assert cleaning.options.background_cleaning is True
    assert cleaning.describe()["method_options"]["background_cleaning"] is True


def test_the_same_spec_gives_the_same_model_and_another_method_rewraps_the_weights(
        tiny_model_name, tiny_checkpoint):
    cache = ModelCache(keep=None)
    gem = ModelSpec(tiny_model_name, str(tiny_checkpoint), device="cpu")
    first = cache.get(gem)
    assert cache.get(ModelSpec(tiny_model_name, str(tiny_checkpoint), device="cpu")) is first
    naclip = cache.get(ModelSpec(tiny_model_name, str(tiny_checkpoint), device="cpu", method="naclip"))
    assert naclip.method == "naclip" and first.method == "gem"
    assert naclip.module is first.module  # the weights were not read again
    assert cache.get(gem) is first and cache.is_loaded(gem)
