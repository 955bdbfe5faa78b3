"""Hugging Face transformers CLIPs: a random CLIPModel equals its open_clip twin for every method;
a SigLIP model's clip method is its own tokens through its head; folders load offline."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

transformers = pytest.importorskip("transformers")

import open_clip  # noqa: E402

from napari_gem import ModelLoadError, load_model  # noqa: E402
from napari_gem.engine.families.clip.methods import self_contained_method_names  # noqa: E402
from napari_gem.engine.families.clip.model import GroundingModel  # noqa: E402
from napari_gem.engine.families.transformers_clip import TransformersClip  # noqa: E402

VISION = dict(hidden_size=64, intermediate_size=256, num_hidden_layers=8, num_attention_heads=4,
              image_size=64, patch_size=16, hidden_act="gelu")
TEXT = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2,
            vocab_size=100, max_position_embeddings=16, hidden_act="gelu")


def random_clip():
    torch.manual_seed(21)
    config = transformers.CLIPConfig(vision_config=VISION, text_config=TEXT, projection_dim=32)
    return transformers.CLIPModel(config).eval()


def open_clip_twin(hf, tiny_model_name):
    """The tiny open_clip ViT with the transformers model's vision weights."""
    twin = open_clip.create_model(tiny_model_name, pretrained=None).eval()
    source = hf.vision_model.state_dict()
    state = {"conv1.weight": source["embeddings.patch_embedding.weight"],
             "class_embedding": source["embeddings.class_embedding"],
             "positional_embedding": source["embeddings.position_embedding.weight"],
             "proj": hf.visual_projection.weight.T.contiguous()}
    for ours, theirs in (("ln_pre", "pre_layrnorm"), ("ln_post", "post_layernorm")):
        for part in ("weight", "bias"):
            state[f"{ours}.{part}"] = source[f"{theirs}.{part}"]
    for i in range(VISION["num_hidden_layers"]):
        layer = f"encoder.layers.{i}."
        block = f"transformer.resblocks.{i}."
        for part in ("weight", "bias"):
            state[block + f"attn.in_proj_{part}"] = torch.cat(
                [source[layer + f"self_attn.{p}_proj.{part}"] for p in "qkv"])
            for ours, theirs in (("ln_1", "layer_norm1"), ("ln_2", "layer_norm2"), ("attn.out_proj",
                                 "self_attn.out_proj"), ("mlp.c_fc", "mlp.fc1"), ("mlp.c_proj", "mlp.fc2")):
                state[block + f"{ours}.{part}"] = source[layer + f"{theirs}.{part}"]
    twin.visual.load_state_dict(state)
    return twin


def test_a_transformers_clip_gives_its_open_clip_twins_features_for_every_method(tiny_model_name):
    hf = random_clip()
    ours = GroundingModel(TransformersClip(hf), lambda texts: None)
    twin = GroundingModel(open_clip_twin(hf, tiny_model_name), open_clip.get_tokenizer(tiny_model_name))
    differences = {}
    for size in ((64, 64), (96, 64)):
        pixels = torch.randn(1, 3, *size)
        for method in self_contained_method_names():
            a = ours.with_method(method).encode_image(pixels)
            b = twin.with_method(method).encode_image(pixels)
            differences[method, size] = float((a.dense_features - b.dense_features).abs().max())
            assert (a.clip_embedding - b.clip_embedding).abs().max() <= 1e-5, (method, size)
    print("\n".join(f"{m:<15} {s[0]}x{s[1]}: {d:.1e}" for (m, s), d in differences.items()))
    assert max(differences.values()) <= 1e-5, differences
    pixels = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        own = F.normalize(TransformersClip(hf).encode_image(pixels), dim=-1)  # the model's own pooling
    torch.testing.assert_close(ours.encode_image(pixels).clip_embedding, own, atol=1e-6, rtol=0)


def test_a_siglip_models_clip_method_is_its_own_tokens_through_its_head():
    torch.manual_seed(22)
    config = transformers.SiglipConfig(vision_config=dict(VISION, hidden_act="gelu_pytorch_tanh"),
                                       text_config=dict(TEXT, hidden_act="gelu_pytorch_tanh"))
    hf = transformers.SiglipModel(config).eval()
    model = GroundingModel(TransformersClip(hf), lambda texts: None, "clip")
    pixels = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        tokens = hf.vision_model(pixel_values=pixels).last_hidden_state  # post_layernorm applied
        head = hf.vision_model.head
        value = F.linear(tokens, head.attention.in_proj_weight[128:], head.attention.in_proj_bias[128:])
        y = head.attention.out_proj(value)
        y = y + head.mlp(head.layernorm(y))
        pooled = hf.vision_model(pixel_values=pixels).pooler_output
    out = model.encode_image(pixels)
    assert (out.dense_features - F.normalize(y, dim=-1).reshape(1, 4, 4, -1)).abs().max() <= 1e-5
    torch.testing.assert_close(out.clip_embedding, F.normalize(pooled, dim=-1), atol=1e-6, rtol=0)


def _word_tokenizer(folder):
    from tokenizers import Tokenizer, models, pre_tokenizers

    vocab = {w: i for i, w in enumerate(["[PAD]", "[UNK]", "<eos>", "a", "photo", "of", "cell", "nucleus"])}
    raw = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    raw.pre_tokenizer = pre_tokenizers.Whitespace()
    tokenizer = transformers.PreTrainedTokenizerFast(tokenizer_object=raw, pad_token="[PAD]",
                                                     unk_token="[UNK]", eos_token="<eos>")
    tokenizer.save_pretrained(folder)


def test_a_transformers_folder_loads_and_answers_prompts_with_its_own_tokenizer(tmp_path, monkeypatch):
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    random_clip().save_pretrained(tmp_path / "clip")
    _word_tokenizer(tmp_path / "clip")
    model = load_model(f"transformers:{tmp_path / 'clip'}", None, device="cpu", method="sclip")
    features = model.encode_image(torch.randn(1, 3, 64, 64))
    text = model._text_cache.get(["cell", "nucleus"], ("a photo of {}",), "cpu")
    assert text.shape == (2, 32) and features.dense_features.shape == (1, 4, 4, 32)


def test_an_uncached_transformers_repository_fails_fast_offline(tmp_path, monkeypatch):
    import time

    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    started = time.monotonic()
    with pytest.raises(ModelLoadError, match="config.*weights.*tokenizer") as error:
        load_model("transformers:vinid/plip", cache_dir=str(tmp_path), device="cpu")
    assert time.monotonic() - started <= 5 and str(tmp_path) in str(error.value)
