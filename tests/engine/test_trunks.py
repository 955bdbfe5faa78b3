"""Every method on every trunk layout: the same network gives the same answer whatever its packaging.

Real open_clip and timm models with random weights; folders and caches written here.
"""

from __future__ import annotations

import json
import time

import open_clip
import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import save_file
from test_offline_loading import no_network, put_in_hub_cache  # noqa: F401  (fixture)
from torch import nn
from trunk_models import open_clip_to_timm_state, register_timm_clips

from napari_gem import ModelLoadError, load_model
from napari_gem.engine.families.clip.methods import self_contained_method_names
from napari_gem.engine.families.clip.model import GroundingModel
from napari_gem.engine.families.clip.trunks import as_trunk

METHODS = self_contained_method_names()  # ProxyCLIP's proxy: tests/engine/test_proxyclip.py


@pytest.fixture(scope="module")
def timm_clip_names(tmp_path_factory):
    return register_timm_clips(tmp_path_factory.mktemp("timm_clip_configs"))


def _features(model, pixels, method):
    # GCLIP's presence is CLIP's own only when asked (its default: the suppressed trunk's)
    options = {"presence": "clip"} if method == "gclip" else {}
    out = model.with_method(method, **options).encode_image(pixels)
    return out.dense_features, out.clip_embedding


# -- item 1: open_clip's next attention class (same parameters, another class) -----------
class NextAttention(nn.Module):
    """Stands in for open_clip's own attention class: same parameter names, not nn.MultiheadAttention."""

    def __init__(self, old: nn.MultiheadAttention) -> None:
        super().__init__()
        self.num_heads = old.num_heads
        self.in_proj_weight = old.in_proj_weight
        self.in_proj_bias = old.in_proj_bias
        self.out_proj = old.out_proj


def test_a_block_with_another_attention_class_and_the_same_parameters_gives_the_same_features(
        tiny_model_name):
    torch.manual_seed(11)
    native = open_clip.create_model(tiny_model_name, pretrained=None).eval()
    tokenizer = open_clip.get_tokenizer(tiny_model_name)
    pixels = torch.randn(1, 3, 64, 96)
    expected = {m: _features(GroundingModel(native, tokenizer, m), pixels, m) for m in METHODS}
    for block in native.visual.transformer.resblocks:
        block.attn = NextAttention(block.attn)
    native.visual.__dict__.pop("_napari_gem_trunk", None)
    other = GroundingModel(native, tokenizer)
    for method in METHODS:
        dense, embedding = _features(other, pixels, method)
        assert torch.equal(dense, expected[method][0]), method
        assert torch.equal(embedding, expected[method][1]), method


# -- items 1, 2, 4: every method on timm fused-qkv, Eva RoPE and map heads ----------------
def _head_per_token(visual, tokens):
    """Item 2 by hand: each token through the trunk's head as if it were the pooled token."""
    trunk = visual.trunk
    pool = getattr(trunk, "attn_pool", None)
    if pool is not None:  # MaskCLIP's treatment: value and output projections, then the pool's MLP
        width = tokens.shape[-1]
        value = F.linear(tokens, pool.kv.weight[width:], pool.kv.bias[width:])
        tokens = pool.proj(value)
        tokens = tokens + pool.mlp(pool.norm(tokens))
    return visual.head(trunk.head(trunk.fc_norm(tokens)))


@pytest.mark.parametrize("index", range(3))
def test_every_method_runs_on_each_timm_trunk_with_the_models_own_pooled_embedding(timm_clip_names, index):
    name = timm_clip_names[index]
    torch.manual_seed(12)
    model = load_model(name, None, device="cpu")
    trunk = as_trunk(model.visual)
    assert trunk.kind.startswith("timm")
    pixels = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        own = F.normalize(model.clip_model.encode_image(pixels), dim=-1)
        tokens = trunk.trunk.forward_features(pixels)[:, trunk.prefix_count:]
        by_hand = F.normalize(_head_per_token(model.visual, tokens), dim=-1).reshape(2, 4, 4, -1)
    for method in METHODS:
        for size in ((64, 64), (96, 64)):  # native, and a grid that resamples positions
            dense, embedding = _features(model, torch.randn(1, 3, *size), method)
            assert dense.shape == (1, size[0] // 16, size[1] // 16, model.embed_dim), (method, size)
            assert torch.isfinite(dense).all(), (method, size)
        dense, embedding = _features(model, pixels, method)
        torch.testing.assert_close(embedding, own, atol=1e-6, rtol=0)  # presence: the model's own
        if method == "clip":
            assert (dense - by_hand).abs().max() <= 1e-5


def test_register_tokens_never_appear_in_dense_maps(timm_clip_names):
    model = load_model("napari-gem-test-map-vit", None, device="cpu")
    assert as_trunk(model.visual).prefix_count == 2  # two registers, no class token
    dense = model.encode_image(torch.randn(1, 3, 64, 128)).dense_features
    assert dense.shape[1:3] == (4, 8)


# -- item 5: an open_clip ViT-B-16 as a timm trunk in a local-dir folder == native ------------
def _timm_folder(native, folder):
    config = open_clip.get_model_config("ViT-B-16")
    model_cfg = {"embed_dim": config["embed_dim"], "text_cfg": config["text_cfg"],
                 "vision_cfg": {"image_size": 224, "timm_model_name": "vit_base_patch16_clip_224",
                                "timm_model_pretrained": False, "timm_pool": "token", "timm_proj": "linear"}}
    folder.mkdir()
    (folder / "open_clip_config.json").write_text(json.dumps({"model_cfg": model_cfg, "preprocess_cfg": {}}))
    state = {k: v for k, v in native.state_dict().items() if not k.startswith("visual.")}
    visual = {k[len("visual."):]: v for k, v in native.state_dict().items() if k.startswith("visual.")}
    state.update({f"visual.{k}": v for k, v in open_clip_to_timm_state(visual).items()})
    save_file({k: v.contiguous() for k, v in state.items()}, folder / "open_clip_model.safetensors")


def test_a_vit_b16_saved_as_a_timm_trunk_folder_gives_the_native_features_for_every_method(tmp_path):
    torch.manual_seed(13)
    native_clip = open_clip.create_model("ViT-B-16", pretrained=None).eval()
    native = GroundingModel(native_clip, open_clip.get_tokenizer("ViT-B-16"))
    _timm_folder(native_clip, tmp_path / "vit-b-16-timm")
    folder = load_model(f"local-dir:{tmp_path / 'vit-b-16-timm'}", None, device="cpu")
    assert as_trunk(folder.visual).kind == "timm ViT"
    differences = {}
    for size in ((224, 224), (288, 224)):
        pixels = torch.randn(1, 3, *size)
        for method in METHODS:
            expected, expected_embedding = _features(native, pixels, method)
            dense, embedding = _features(folder, pixels, method)
            differences[method, size] = float((dense - expected).abs().max())
            assert (embedding - expected_embedding).abs().max() <= 1e-5, method
    print("\n".join(f"{m:<15} {s[0]}x{s[1]}: {d:.1e}" for (m, s), d in differences.items()))
    assert max(differences.values()) <= 1e-5, differences


# -- item 3: hf-hub and local-dir names, offline ------------------------------------------
def test_a_cached_hf_hub_repository_loads_with_no_network(tiny_model_name, tmp_path, no_network):  # noqa: F811
    torch.manual_seed(14)
    native = open_clip.create_model(tiny_model_name, pretrained=None).eval()
    config = {"model_cfg": open_clip.get_model_config(tiny_model_name), "preprocess_cfg": {}}
    config_file = put_in_hub_cache(tmp_path, "lab/tiny-clip", "open_clip_config.json",
                                   json.dumps(config).encode())
    save_file({k: v.contiguous() for k, v in native.state_dict().items()},
              config_file.parent / "open_clip_model.safetensors")
    model = load_model("hf-hub:lab/tiny-clip", device="cpu", cache_dir=str(tmp_path))
    pixels = torch.randn(1, 3, 64, 64)
    expected = GroundingModel(native, open_clip.get_tokenizer(tiny_model_name)).encode_image(pixels)
    assert torch.equal(model.encode_image(pixels).dense_features, expected.dense_features)
    assert no_network == []


def test_an_uncached_hf_hub_repository_fails_fast_offline_naming_what_is_missing(tmp_path, monkeypatch):
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    started = time.monotonic()
    with pytest.raises(ModelLoadError) as error:
        load_model("hf-hub:imageomics/bioclip", None, device="cpu", cache_dir=str(tmp_path))
    assert time.monotonic() - started <= 5
    message = str(error.value)
    assert "config" in message and "weights" in message and str(tmp_path) in message
    assert "HF_HUB_OFFLINE" in message


def test_a_local_dir_without_weights_is_refused_before_anything_loads(tmp_path):
    (tmp_path / "open_clip_config.json").write_text("{}")
    with pytest.raises(ModelLoadError, match="weights"):
        load_model(f"local-dir:{tmp_path}", None, device="cpu")
    with pytest.raises(ModelLoadError, match="leave pretrained empty"):
        load_model(f"local-dir:{tmp_path}", "laion2b_s34b_b88k", device="cpu")


# -- items 6, 7: the catalogue and `napari-gem models` --------------------------------------
def test_the_catalogue_offers_general_and_science_models_with_tooltips():
    from napari_gem.engine.families import catalogue

    entries = catalogue()
    science = {e.label for e in entries if e.group == "science"}
    assert {"BiomedCLIP", "BioCLIP", "BioCLIP 2", "QuiltNet B/16", "PLIP", "PubMedCLIP"} <= science
    general = {e.name for e in entries if e.group == "general"}
    assert {"ViT-B-16-SigLIP2", "EVA02-B-16", "PE-Core-B-16"} <= general
    assert all("licence" in e.tooltip for e in entries if e.group == "science")
    assert {(e.name, e.pretrained) for e in entries} >= {("ViT-B-16", "dfn2b"),
                                                        ("ViT-B-16-quickgelu", "metaclip_fullcc")}


def test_the_models_command_lists_families_and_what_needs_a_download(capsys, tmp_path, monkeypatch):
    from napari_gem.cli.main import main

    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path))
    assert main(["models"]) == 0
    out = capsys.readouterr().out
    for text in ("open_clip_hub", "transformers", "Science models:", "BioCLIP 2",
                 "hf-hub:imageomics/bioclip-2", "download needed"):
        assert text in out


# -- item 4: the whole pipeline on each layout: tiling, presence, calibrated scores, PAMR, bf16 ---
@pytest.mark.parametrize("name", ["napari-gem-test-map-vit", "napari-gem-test-eva02"])
def test_segment_tiles_refines_and_runs_in_bf16_on_timm_trunks(timm_clip_names, name):
    import numpy as np

    from napari_gem import SegmentOptions, segment

    image = (np.random.default_rng(0).random((200, 260, 3)) * 255).astype(np.uint8)
    options = SegmentOptions(input_size=64, tiling="always", window=128, overlap=32,
                             score_mode="calibrated", refine="pamr", pamr_steps=2)
    for precision in ("fp32", "bf16"):
        model = load_model(name, None, device="cpu", precision=precision, method="naclip")
        result = segment(image, ["cell", "nucleus"], model, options)
        assert result.heatmaps.shape == (2, 200, 260) and np.isfinite(result.heatmaps).all()
        assert result.presence.shape == (2,) and np.isfinite(result.presence).all()


def test_the_families_bench_times_every_method_against_the_models_own_encode(timm_clip_names):
    from benchmark_scripts import benchmark_module

    measure_family = benchmark_module("bench_families").measure_family

    samples = measure_family("napari-gem-test-eva02", 96, 1, METHODS)
    assert set(samples) == {"plain", *METHODS} and all(s[0] > 0 for s in samples.values())


def test_a_siglip_name_offline_without_its_tokenizer_fails_fast_naming_it(tmp_path, monkeypatch):
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    started = time.monotonic()
    with pytest.raises(ModelLoadError, match="tokenizer.*timm/ViT-B-16-SigLIP2") as error:
        load_model("ViT-B-16-SigLIP2", "webli", device="cpu", cache_dir=str(tmp_path))
    assert time.monotonic() - started <= 5 and str(tmp_path) in str(error.value)


# -- PE-Core's positions as PE computes them (perception_models), at every size ----------------
def test_pe_positions_are_the_raw_patch_grid_and_a_bilinear_table_at_every_size(timm_clip_names):
    """PE's Rope2D rotates by the raw grid position (1..g after the class token) and PE resizes its
    absolute table bilinearly without antialias; timm rescales RoPE coordinates to its
    ref_feat_shape (0.5..4 on an 8x8 grid here) and resizes bicubically. Both agree at the native
    grid; elsewhere the model runs as PE's own code does."""
    from timm.layers import build_rotary_pos_embed

    from napari_gem.engine.families.clip import vision

    torch.manual_seed(4)
    model = open_clip.create_model("napari-gem-test-pe", pretrained=None).eval()
    trunk = as_trunk(model.visual)
    rope = model.visual.trunk.rope
    assert rope.ref_feat_shape == (4, 4) and rope.grid_offset == 1.0  # as timm builds PE-Core
    torch.testing.assert_close(trunk.rope((4, 4)), rope.get_embed(shape=[4, 4]))  # native: the same

    def pe_rope(grid):  # PE's raw positions: timm's bands, no rescaling
        sin, cos = build_rotary_pos_embed(list(grid), bands=rope.bands, in_pixels=False, ref_feat_shape=None,
                                          grid_offset=1.0, grid_indexing="xy")
        return torch.cat([sin, cos], -1)

    timm_rescaled = rope._build_embed_cat([8, 8], rope.bands)
    assert float((pe_rope((8, 8)) - timm_rescaled).abs().max()) > 1e-2  # the readings differ
    torch.testing.assert_close(trunk.rope((8, 8)), pe_rope((8, 8)), rtol=0, atol=1e-6)
    torch.testing.assert_close(trunk.rope((8, 6)), pe_rope((8, 6)), rtol=0, atol=1e-6)

    table = model.visual.trunk.pos_embed[0].detach()
    prefix, patches = table[:1], table[1:].reshape(1, 4, 4, -1).permute(0, 3, 1, 2)
    bilinear = F.interpolate(patches, size=(8, 8), mode="bilinear", align_corners=False)
    expected = torch.cat([prefix, bilinear.permute(0, 2, 3, 1).reshape(64, -1)])
    for resampling in ("exact", "scale_factor"):  # whichever rule the method has for other CLIPs
        ours = vision.resampled_position_embedding(trunk, (8, 8), resampling)[0]
        torch.testing.assert_close(ours, expected, rtol=0, atol=1e-6)
    bicubic = F.interpolate(patches, size=(8, 8), mode="bicubic", antialias=True)
    assert float((bicubic - bilinear).abs().max()) > 1e-3


# -- one precision rule for every head --------------------------------------------------------
def test_every_trunks_head_runs_in_float32_whatever_the_models_precision(timm_clip_names, tiny_model_name):
    """open_clip, timm and transformers heads alike: a bf16 model's last-block tokens go through
    the head in float32 (as the float32 model's head would take them), the model unchanged."""
    import copy

    from model_folders import random_transformers_clip
    from napari_gem.engine.families.transformers_clip import TransformersClip

    torch.manual_seed(6)
    models = {name: open_clip.create_model(name, pretrained=None).eval()
              for name in (tiny_model_name, *timm_clip_names)}
    models["transformers CLIP"] = TransformersClip(random_transformers_clip())
    for name, model in models.items():
        low = copy.deepcopy(model).to(torch.bfloat16)
        trunk, reference = as_trunk(low.visual), as_trunk(copy.deepcopy(low).float().visual)
        tokens = torch.randn(2, trunk.prefix_count + 16, 64).to(torch.bfloat16)
        with torch.no_grad():
            for part in ("pooled", "head_tokens"):
                ours = getattr(trunk, part)(tokens)
                assert ours.dtype == torch.float32, (name, part)
                torch.testing.assert_close(ours, getattr(reference, part)(tokens.float()), rtol=0, atol=1e-6,
                                           msg=f"{name} {part}")
        assert next(low.visual.parameters()).dtype == torch.bfloat16  # the model is not changed
