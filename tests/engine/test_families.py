"""Model families: which family a name belongs to, and that a new family is one module's work."""

from __future__ import annotations

import socket
import time

import pytest
import torch

import napari_gem
from napari_gem import ModelLoadError, load_model
from napari_gem.engine.families import LoadRequest, ModelFamily, catalogue, family_for, registry
from napari_gem.engine.families.base import WEIGHTS_FILE
from napari_gem.engine.model_cache import ModelCache
from napari_gem.engine.paths import is_weights_path
from napari_gem.engine.spec import ModelSpec


def test_each_name_is_answered_by_its_family():
    assert family_for("ViT-B-16").name == "open_clip"
    assert family_for("SimZSS-ViT-B-14").name == "simzss"
    assert family_for("napari-gem-demo-micrographs").name == "demo"
    assert [family.name for family in napari_gem.list_families()][-1] == "open_clip"  # the fallback
    simzss = family_for("SimZSS-ViT-B-14")
    assert not simzss.uses_clip_methods and simzss.default_method == "simzss"
    assert simzss.weights == WEIGHTS_FILE


def test_the_catalogue_offers_every_familys_models_with_a_label_and_group():
    entries = {entry.name: entry for entry in catalogue()}
    assert {"ViT-B-16", "SimZSS-ViT-B-14", "napari-gem-demo-micrographs"} <= set(entries)
    assert entries["napari-gem-demo-micrographs"].label.startswith("demo:")
    assert all(entry.group and entry.tooltip and entry.family for entry in entries.values())


def test_the_default_tag_is_the_one_a_run_uses():
    assert family_for("ViT-B-16").default_pretrained("ViT-B-16") == "openai"
    assert family_for("napari-gem-demo-micrographs").default_pretrained("x").endswith(".pt")


def test_the_demo_familys_method_defaults_apply_wherever_it_is_loaded():
    from napari_gem.engine.families.demo import WEIGHTS_PATH

    spec = ModelSpec("napari-gem-demo-micrographs", str(WEIGHTS_PATH), device="cpu")
    assert dict(spec.method_options)["depth"] == 3  # its four blocks cannot run the paper's 7
    assert load_model("napari-gem-demo-micrographs", spec.pretrained, device="cpu").method_options.depth == 3


@pytest.mark.parametrize("pretrained", ["model.pt", "weights/model", "./x.safetensors"])
def test_one_answer_to_is_this_a_file(pretrained, tiny_model_name):
    assert is_weights_path(pretrained)
    assert ModelSpec(tiny_model_name, pretrained, device="cpu").is_file
    with pytest.raises(ModelLoadError, match="checkpoint file not found"):
        load_model(tiny_model_name, pretrained, device="cpu")


def test_tags_are_not_files():
    assert not is_weights_path("openai") and not is_weights_path(None)


class ToyFamily(ModelFamily):
    """A family written the way a contributor would: one class, nothing edited elsewhere."""

    name = "toy"
    title = "toy CLIP"
    summary = "the tiny test ViT under another name"

    base_name = ""

    def claims(self, name: str) -> bool:
        return name.startswith("toy:")

    def model_names(self) -> list[str]:
        return ["toy:tiny"]

    def method_defaults(self, method: str) -> dict:
        return {"depth": 4} if method == "gem" else {}

    def build(self, request: LoadRequest):
        import open_clip

        from napari_gem.engine.families.clip.model import GroundingModel

        torch.manual_seed(0)
        clip = open_clip.create_model(self.base_name, pretrained=None).eval().requires_grad_(False)
        return GroundingModel(clip, open_clip.get_tokenizer(self.base_name), request.dense_method,
                              name=request.name, pretrained=request.pretrained)


@pytest.fixture
def toy_family(monkeypatch, tiny_model_name):
    monkeypatch.setattr(registry, "_FAMILIES", dict(registry._FAMILIES))  # undone after the test
    monkeypatch.setattr(ToyFamily, "base_name", tiny_model_name)
    registry.register_family(ToyFamily)
    return family_for("toy:tiny")


def test_a_new_family_is_one_class_and_every_entry_point_uses_it(toy_family):
    assert isinstance(toy_family, ToyFamily)
    assert "toy:tiny" in [entry.name for entry in catalogue()]
    model = load_model("toy:tiny", None, device="cpu", method="gem")
    assert model.name == "toy:tiny" and model.method_options.depth == 4  # the family's default
    spec = ModelSpec("toy:tiny", None, device="cpu", method="naclip")
    cached = ModelCache().get(spec)
    assert cached.method == "naclip" and cached.name == "toy:tiny"
    result = napari_gem.segment(torch.rand(64, 64).numpy(), ["cell"], model=cached)
    assert result.heatmaps.shape == (1, 64, 64)


def test_the_model_cache_frees_the_old_model_before_loading_another(tiny_model_name, tiny_checkpoint):
    loads = []

    def loader(*args, **kwargs):
        loads.append(args[0])
        return load_model(*args, **kwargs)

    cache = ModelCache(loader)
    first = ModelSpec(tiny_model_name, str(tiny_checkpoint), device="cpu")
    cache.get(first)
    cache.get(ModelSpec(tiny_model_name, None, device="cpu"))
    assert not cache.is_loaded(first) and len(loads) == 2
    unlimited = ModelCache(loader, keep=None)
    unlimited.get(first)
    unlimited.get(ModelSpec(tiny_model_name, None, device="cpu"))
    assert unlimited.is_loaded(first)


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_offline_fetch_fails_fast_and_names_the_demo_model(monkeypatch, tmp_path):
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(huggingface_hub.constants, "ENDPOINT", f"http://127.0.0.1:{_closed_port()}")
    spec = ModelSpec("ViT-B-32", "laion2b_e16", device="cpu", cache_dir=str(tmp_path))
    start = time.perf_counter()
    with pytest.raises(ModelLoadError) as error:
        spec.fetch(lambda done, total: None)
    assert time.perf_counter() - start <= 5.0
    message = str(error.value)
    assert "napari-gem-demo-micrographs" in message and str(tmp_path) in message
