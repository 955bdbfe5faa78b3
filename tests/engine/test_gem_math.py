"""GEM's numbers against an independent float64 re-derivation of docs/gem-spec.md.

The reference below is written from the spec, deliberately naive: per-head loops,
explicit softmax, no scaled_dot_product_attention, no shared code with the engine.
"""

from __future__ import annotations

import copy
import math

import open_clip
import pytest
import torch
import torch.nn.functional as F

from napari_gem import GroundingModel, UnsupportedModelError
from napari_gem.engine.text import encode_tokens
from reference_ops import heads, layer_norm, layer_scale, softmax_rows, unit


def reference_dense(model, image, depth, iterations, temperature):
    """Spec sections 1-4 for one image ``[3, H, W]``: normalised patch features and embedding."""
    v = model.visual
    p = v.patch_size[0]
    patches = F.conv2d(image[None], v.conv1.weight, stride=p)[0]  # [D, gh, gw]
    gh, gw = patches.shape[1:]
    tokens = patches.reshape(patches.shape[0], -1).T  # row-major patches
    pos = v.positional_embedding
    side = int(math.isqrt(pos.shape[0] - 1))
    if (side, side) != (gh, gw):
        grid = pos[1:].T.reshape(1, -1, side, side)
        grid = F.interpolate(grid, size=(gh, gw), mode="bicubic", antialias=True)
        pos = torch.cat([pos[:1], grid[0].reshape(pos.shape[1], -1).T])
    x = torch.cat([v.class_embedding[None], tokens]) + pos
    x = layer_norm(v.ln_pre, x)
    blocks = list(v.transformer.resblocks)
    first_gem = len(blocks) - (depth - 1)
    g = None
    for index, block in enumerate(blocks):
        u = layer_norm(block.ln_1, x)
        qkv = u @ block.attn.in_proj_weight.T + block.attn.in_proj_bias
        q, k, val = qkv.chunk(3, dim=-1)
        h = block.attn.num_heads
        d = q.shape[1] // h
        if index >= first_gem:
            g = x.clone() if g is None else g
            tau_inv = temperature if temperature is not None else u.norm(dim=-1).mean() / math.sqrt(d)
            merged = []
            for head in range(h):
                v_head = heads(val, h)[head]
                outs = []
                for z in (heads(q, h)[head], heads(k, h)[head], v_head):
                    for _ in range(iterations):
                        z_hat = unit(z)
                        z = softmax_rows(z_hat @ z_hat.T * tau_inv) @ z_hat
                    z_hat = unit(z)
                    outs.append(softmax_rows(z_hat @ z_hat.T * tau_inv) @ v_head)
                merged.append((outs[0] + outs[1] + outs[2]) / 3)
            attn_out = torch.cat(merged, dim=-1) @ block.attn.out_proj.weight.T + block.attn.out_proj.bias
            g = g + layer_scale(block.ls_1, attn_out)
        heads_out = [
            softmax_rows(qh @ kh.T / math.sqrt(d)) @ vh
            for qh, kh, vh in zip(heads(q, h), heads(k, h), heads(val, h), strict=True)
        ]
        attn_out = torch.cat(heads_out, dim=-1) @ block.attn.out_proj.weight.T + block.attn.out_proj.bias
        x = x + layer_scale(block.ls_1, attn_out)
        x = x + layer_scale(block.ls_2, block.mlp(layer_norm(block.ln_2, x)))
    g = x if g is None else g
    dense = unit(layer_norm(v.ln_post, g) @ v.proj)[1:].reshape(gh, gw, -1)
    embedding = unit(layer_norm(v.ln_post, x)[0] @ v.proj)
    return dense, embedding


def reference_heatmaps(model, tokenizer, pixels, prompts, depth=7, iterations=1, temperature=None):
    """Spec section 5: ``[B, P, H, W]`` min-max heatmaps, all in float64."""
    text = unit(model.encode_text(tokenizer([f"a photo of a {p}." for p in prompts])))
    maps = []
    for image in pixels:
        dense, _ = reference_dense(model, image, depth, iterations, temperature)
        grid = torch.einsum("hwe,pe->phw", dense, text)[None]
        up = F.interpolate(grid, size=image.shape[-2:], mode="bilinear", align_corners=False)[0]
        low = up.amin(dim=(1, 2), keepdim=True)
        high = up.amax(dim=(1, 2), keepdim=True)
        maps.append((up - low) / (high - low))
    return torch.stack(maps)


@pytest.fixture(scope="module")
def tiny_clip(tiny_model_name):
    torch.manual_seed(1)
    model = open_clip.create_model(tiny_model_name, pretrained=None).eval()
    # Random init leaves LayerNorm at identity and the class token tiny; perturb
    # everything so every term of the computation matters.
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.add_(torch.randn_like(parameter) * 0.05)
    return model, open_clip.get_tokenizer(tiny_model_name)


@pytest.mark.parametrize(
    ("size", "depth", "iterations", "temperature"),
    [
        ((64, 64), 7, 1, None),  # the model's own grid: no position resampling
        ((96, 128), 7, 1, None),  # non-square grid: bicubic resampling
        ((112, 112), 3, 2, None),
        ((48, 80), 9, 1, 4.0),  # every block modified, fixed temperature
        ((64, 32), 1, 1, None),  # depth 1: GEM path is CLIP's own
        ((80, 64), 5, 0, 0.5),
    ],
)
def test_heatmaps_match_float64_reference(tiny_clip, size, depth, iterations, temperature):
    model, tokenizer = tiny_clip
    torch.manual_seed(2)
    pixels = torch.randn(2, 3, *size)
    prompts = ["cat", "a scratch on the lens", "nucleus"]
    gem = GroundingModel.from_open_clip(model, tokenizer, depth=depth, iterations=iterations,
                                        temperature=temperature)
    ours = gem.heatmaps(pixels, prompts)
    reference = reference_heatmaps(
        copy.deepcopy(model).double(), tokenizer, pixels.double(), prompts, depth, iterations, temperature
    )
    assert ours.shape == (2, 3, *size)
    assert ours.dtype == torch.float32
    torch.testing.assert_close(ours.double(), reference, atol=2e-5, rtol=0)


def test_dense_features_and_clip_embedding_match_reference(tiny_clip):
    model, tokenizer = tiny_clip
    pixels = torch.randn(1, 3, 96, 64)
    gem = GroundingModel.from_open_clip(model, tokenizer)
    out = gem.encode_image(pixels)
    dense, embedding = reference_dense(copy.deepcopy(model).double(), pixels[0].double(), 7, 1, None)
    torch.testing.assert_close(out.dense_features[0].double(), dense, atol=1e-5, rtol=0)
    torch.testing.assert_close(out.clip_embedding[0].double(), embedding, atol=1e-5, rtol=0)


@pytest.mark.slow
@pytest.mark.parametrize("size", [(224, 224), (224, 288)], ids=["224-batch2", "224x288"])
def test_vit_b16_dense_features_match_reference(size):
    torch.manual_seed(3)
    model = open_clip.create_model("ViT-B-16", pretrained=None).eval()
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.add_(torch.randn_like(parameter) * 0.02)
    pixels = torch.randn(2 if size == (224, 224) else 1, 3, *size)
    out = GroundingModel.from_open_clip(model, open_clip.get_tokenizer("ViT-B-16")).encode_image(pixels)
    model64 = copy.deepcopy(model).double()
    for image, dense in zip(pixels.double(), out.dense_features, strict=True):
        with torch.no_grad():
            reference, _ = reference_dense(model64, image, 7, 1, None)
        torch.testing.assert_close(dense.double(), reference, atol=1e-5, rtol=0)


def test_clip_embedding_is_open_clips_own_image_embedding(tiny_clip):
    model, tokenizer = tiny_clip
    pixels = torch.randn(3, 3, 64, 64)
    gem = GroundingModel.from_open_clip(model, tokenizer)
    ours = gem.encode_image(pixels).clip_embedding
    with torch.no_grad():
        theirs = model.encode_image(pixels, normalize=True)
    torch.testing.assert_close(ours, theirs, atol=1e-5, rtol=0)


def test_images_in_a_batch_do_not_mix(tiny_clip):
    """The batch-first pitfall: each image's features must not depend on its neighbours."""
    model, tokenizer = tiny_clip
    gem = GroundingModel.from_open_clip(model, tokenizer)
    pixels = torch.randn(3, 3, 80, 48)
    together = gem.encode_image(pixels).dense_features
    alone = torch.cat([gem.encode_image(pixels[i : i + 1]).dense_features for i in range(3)])
    torch.testing.assert_close(together, alone, atol=1e-5, rtol=0)


def test_wrapping_neither_copies_nor_changes_the_model(tiny_clip):
    model, tokenizer = tiny_clip
    before = {name: p.detach().clone() for name, p in model.state_dict().items()}
    pointers = {name: p.data_ptr() for name, p in model.named_parameters()}
    gem = GroundingModel.from_open_clip(model, tokenizer, depth=5)
    gem.heatmaps(torch.randn(1, 3, 96, 96), ["x"])
    assert gem.clip_model is model
    assert {name: p.data_ptr() for name, p in model.named_parameters()} == pointers
    for name, value in model.state_dict().items():
        assert torch.equal(value, before[name]), name
    with torch.no_grad():  # still an ordinary CLIP model
        assert model.encode_image(torch.randn(1, 3, 64, 64)).shape == (1, 32)


def test_truncated_text_encoding_equals_full_length(tiny_clip):
    model, tokenizer = tiny_clip
    tokens = tokenizer(["a photo of a cat.", "a very long prompt " * 5, "x"])
    with torch.no_grad():
        full = model.encode_text(tokens)
        truncated = encode_tokens(model, tokens)
    torch.testing.assert_close(truncated, full, atol=1e-5, rtol=1e-5)


def test_text_embeddings_are_cached_per_prompt(tiny_clip):
    model, tokenizer = tiny_clip
    gem = GroundingModel.from_open_clip(model, tokenizer)
    first = gem.encode_text(["cat", "dog"])
    assert len(gem._text_cache) == 2
    again = gem.encode_text(["dog", "cat", "cat"])
    assert len(gem._text_cache) == 2
    torch.testing.assert_close(again, first[[1, 0, 0]])
    torch.testing.assert_close(first.norm(dim=-1), torch.ones(2))


def test_template_ensemble_is_mean_of_normalised_embeddings(tiny_clip):
    model, tokenizer = tiny_clip
    gem = GroundingModel.from_open_clip(model, tokenizer)
    templates = ("a photo of a {}.", "a drawing of the {}.")
    ensembled = gem.encode_text(["cell"], templates)[0]
    with torch.no_grad():
        each = F.normalize(model.encode_text(tokenizer([t.format("cell") for t in templates])), dim=-1)
    torch.testing.assert_close(ensembled, F.normalize(each.mean(0), dim=-1), atol=1e-5, rtol=0)


def test_a_resnet_clip_is_refused_with_a_clear_error():
    model = open_clip.create_model("RN50", pretrained=None)
    with pytest.raises(UnsupportedModelError, match="vision transformer"):
        GroundingModel.from_open_clip(model, open_clip.get_tokenizer("RN50"))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"depth": 0}, "depth"),
        ({"depth": 10}, "only 8"),
        ({"iterations": -1}, "iterations"),
        ({"temperature": 0.0}, "temperature"),
        ({"temperature": float("nan")}, "temperature"),
    ],
)
def test_bad_gem_parameters_are_refused(tiny_clip, kwargs, message):
    model, tokenizer = tiny_clip
    with pytest.raises(ValueError, match=message):
        GroundingModel.from_open_clip(model, tokenizer, **kwargs)


def test_input_not_a_multiple_of_the_patch_is_refused(tiny_clip):
    gem = GroundingModel.from_open_clip(*tiny_clip)
    with pytest.raises(ValueError, match="multiple of the patch size"):
        gem.heatmaps(torch.randn(1, 3, 70, 64), ["x"])


def test_a_prompts_embedding_does_not_depend_on_its_companions(tiny_clip):
    model, tokenizer = tiny_clip
    alone = GroundingModel.from_open_clip(model, tokenizer).encode_text(["cat"])
    together = GroundingModel.from_open_clip(model, tokenizer).encode_text(
        ["a much longer prompt here", "cat"])
    assert torch.equal(alone[0], together[1])
