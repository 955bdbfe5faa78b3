"""Talk2DINO as a model family: its files, its messages, and the engine working unchanged on it.

Weights are tiny random ones saved as real files (talk2dino_models.py), loaded through
``load_model`` and ``ModelSpec``; nothing is downloaded.
"""

from __future__ import annotations

import time

import numpy as np
import pytest
import torch
from talk2dino_models import TINY, projection_state, register_tiny, save_files

from napari_gem import ModelLoadError, load_model, segment
from napari_gem.engine.families import catalogue, family_for
from napari_gem.engine.spec import ModelSpec


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("talk2dino")
    register_tiny(folder / "configs")
    return save_files(folder / "weights")


@pytest.fixture(scope="module")
def model(files):
    return load_model(TINY, files["projection"], device="cpu", backbone_weights=files["backbone"],
                      text_weights=files["text"])


def _load(files, projection, **options):
    values = {"backbone_weights": files["backbone"], "text_weights": files["text"], **options}
    return load_model(TINY, projection, device="cpu", method_options=values)


def test_the_name_belongs_to_the_talk2dino_family_and_the_picker_lists_it():
    family = family_for("talk2dino-vitb14")
    assert family.name == "talk2dino" and not family.uses_clip_methods
    assert family.default_method == "talk2dino" and family.weights == "file"
    entries = {entry.name: entry for entry in catalogue()}
    assert entries["talk2dino-vitb14"].family == "talk2dino"
    assert "projection" in entries["talk2dino-vitb14"].tooltip


def test_a_projection_file_with_wrong_keys_is_refused_naming_them(files, tmp_path):
    state = projection_state()
    state.pop("hidden_layers.0.bias")
    state["head.weight"] = torch.zeros(3)
    path = tmp_path / "wrong.pth"
    torch.save(state, path)
    with pytest.raises(ModelLoadError) as caught:
        _load(files, path)
    message = str(caught.value)
    assert "missing keys: hidden_layers.0.bias" in message
    assert "unexpected keys: head.weight" in message
    assert str(path) in message


def test_a_projection_of_the_wrong_size_is_refused_naming_the_shapes(files, tmp_path):
    path = tmp_path / "wide.pth"
    torch.save(projection_state(text_dim=512, embed_dim=768), path)
    with pytest.raises(ModelLoadError, match=r"linear_layer.weight \(768, 512\) \(expected \(96, 32\)\)"):
        _load(files, path)


def test_older_files_with_linear_layer2_load_as_the_official_loader_renames_them(files, tmp_path, model):
    path = tmp_path / "old.pth"
    torch.save(projection_state(old_names=True), path)
    old = _load(files, path)
    assert torch.equal(old.encode_text(["cat"]), model.encode_text(["cat"]))


def test_a_backbone_file_of_another_architecture_is_refused_naming_the_keys(files, tmp_path):
    path = tmp_path / "backbone.pth"
    state = torch.load(files["backbone"], weights_only=True)
    state.pop("reg_token")
    state["extra.weight"] = torch.zeros(1)
    torch.save(state, path)
    with pytest.raises(ModelLoadError) as caught:
        load_model(TINY, files["projection"], device="cpu", backbone_weights=path,
                   text_weights=files["text"])
    assert "missing keys: reg_token" in str(caught.value)
    assert "unexpected keys: extra.weight" in str(caught.value)


def test_a_missing_file_is_named(files, tmp_path):
    with pytest.raises(ModelLoadError, match="weights are its projection file.*'openai' is not a file"):
        _load(files, "openai")
    with pytest.raises(ModelLoadError, match="projection file"):
        _load(files, tmp_path / "nothing.pth")
    with pytest.raises(ModelLoadError, match="text_weights file"):
        _load(files, files["projection"], text_weights=tmp_path / "nothing.pt")


def test_clip_methods_and_unknown_options_are_refused(files):
    with pytest.raises(ModelLoadError, match="method 'gem' does not apply"):
        load_model(TINY, files["projection"], device="cpu", method="gem")
    with pytest.raises(ModelLoadError, match="no option 'depth'.*background_cleaning"):
        load_model(TINY, files["projection"], device="cpu", method_options={"depth": 3})


@pytest.fixture
def empty_offline_cache(monkeypatch, tmp_path):
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path))
    return tmp_path


def test_offline_with_nothing_cached_it_fails_within_seconds_naming_both_parts_and_caches(
        empty_offline_cache, tmp_path):
    path = tmp_path / "vitb_mlp_infonce.pth"
    torch.save(projection_state(text_dim=512, embed_dim=768), path)
    start = time.perf_counter()
    with pytest.raises(ModelLoadError) as caught:
        load_model("talk2dino-vitb14", path, device="cpu")
    assert time.perf_counter() - start <= 5.0
    message = str(caught.value)
    assert "HF_HUB_OFFLINE" in message
    assert "vit_base_patch14_reg4_dinov2.lvd142m" in message and "backbone_weights=PATH" in message
    assert str(empty_offline_cache / "models--timm--vit_base_patch14_reg4_dinov2.lvd142m") in message
    assert "ViT-B-16-quickgelu" in message and "text_weights=PATH" in message
    assert "timm/vit_base_patch16_clip_224.openai" in message


def test_the_models_list_says_whether_dinov2_and_clip_are_cached(empty_offline_cache):
    family = family_for("talk2dino-vitb14")
    assert not family.is_cached("talk2dino-vitb14", None)
    for repository in ("timm/vit_base_patch14_reg4_dinov2.lvd142m", "timm/vit_base_patch16_clip_224.openai"):
        folder = empty_offline_cache / f"models--{repository.replace('/', '--')}"
        (folder / "snapshots" / "0").mkdir(parents=True)
        (folder / "refs").mkdir()
        (folder / "refs" / "main").write_text("0")
        for filename in ("model.safetensors", "open_clip_model.safetensors"):
            (folder / "snapshots" / "0" / filename).write_bytes(b"weights")
    assert family.is_cached("talk2dino-vitb14", None)


def test_offline_with_the_backbone_given_only_the_text_tower_is_named(empty_offline_cache, files):
    with pytest.raises(ModelLoadError) as caught:
        load_model(TINY, files["projection"], device="cpu", backbone_weights=files["backbone"])
    assert "text tower" in str(caught.value) and "DINOv2 backbone" not in str(caught.value)


def test_the_model_round_trips_through_a_model_spec_with_its_options(model):
    """Batch runs and dask workers rebuild a model from its spec: the weights files travel."""
    spec = ModelSpec.from_model(model)
    assert spec.method == "talk2dino"
    options = dict(spec.method_options)
    assert options["background_cleaning"] is False and options["text_weights"].endswith("text.pt")
    again = spec.load()
    assert torch.equal(again.encode_text(["cell"]), model.encode_text(["cell"]))


def test_segment_works_unchanged_calibrated_tiled_and_with_pamr(model):
    rng = np.random.default_rng(0)
    image = (rng.random((700, 520)) * 255).astype(np.uint8)
    image[200:400, 100:300] = 255
    result = segment(image, ["cell", "debris"], model=model, score_mode="calibrated",
                     tiling="always", window=448, overlap=224, refine="pamr",
                     pamr_dilations=(1, 2, 4, 8, 12, 24))
    assert result.heatmaps.shape == (2, 700, 520)
    assert np.isfinite(result.heatmaps).all() and (result.heatmaps >= 0).all()
    assert result.presence.shape == (2,) and 0 < result.presence.sum() <= 1 + 1e-6
    assert result.parameters["model"]["method"] == "talk2dino"


def test_evaluation_uses_the_official_masks_through_the_scorer_interface(model):
    from napari_gem.evaluation.predictor import as_scorer

    assert as_scorer(model) is model
    pixels = torch.randn(2, 3, 448, 448)
    masks = model.crop_similarity(pixels, model.embed_prompts(["a", "b"], ("a photo of a {}.",)))
    assert masks.shape == (2, 2, 448, 448) and ((masks > 0) & (masks < 1)).all()


def test_the_evaluation_preset_is_the_official_protocol():
    from napari_gem.engine.families.talk2dino import SUB_IMAGENET_TEMPLATES
    from napari_gem.evaluation.protocol import protocol_for

    voc = protocol_for("voc21", method="talk2dino")
    assert (voc.short_side, voc.crop, voc.stride) == (448, 448, 224)
    assert voc.templates == SUB_IMAGENET_TEMPLATES and len(voc.templates) == 7
    assert voc.background_logit == 0.55 and voc.prob_threshold is None and voc.pamr_steps is None
    assert voc.pamr_dilations == (1, 2, 4, 8, 12, 24)
    assert protocol_for("ade20k", method="talk2dino").background_logit is None


def test_the_background_is_a_constant_channel_at_bg_thresh():
    """Official: argmax over [0.55, mask_1, ...]; a pixel whose every mask is below 0.55 is background."""
    from napari_gem.evaluation.protocol import protocol_for
    from napari_gem.evaluation.run import predict_label_map

    class Scorer:
        device = torch.device("cpu")
        logit_scale = 1.0

        def embed_prompts(self, prompts, templates):
            return torch.zeros(len(prompts), 4)

        def crop_similarity(self, pixels, text):
            masks = torch.full((pixels.shape[0], 3, *pixels.shape[-2:]), 0.5)
            masks[:, 0] = 0.99  # the background prompt's own score is never used
            masks[:, 2, :, : pixels.shape[-1] // 2] = 0.6  # class 2 above bg_thresh on the left
            return masks

    settings = protocol_for("voc21", method="talk2dino")
    image = np.zeros((448, 448, 3), dtype=np.uint8)
    prediction = predict_label_map(image, (448, 448), Scorer(), torch.zeros(3, 4),
                                   torch.tensor([0, 1, 2]), 3, settings)
    assert (prediction[:, :200] == 2).all() and (prediction[:, 250:] == 0).all()
