"""Every dense method against an independent float64 re-derivation of methods-spec.md.

The reference below is written from the spec (§1.7, §2, §3.1-3.5), deliberately naive:
one image at a time, per-head loops, explicit softmax, no scaled_dot_product_attention,
no code shared with the engine. It runs on ViT-B/16 with random (perturbed) weights,
for a batch of two 224² images and for a non-square input whose grid needs the
position embedding resampled.
"""

from __future__ import annotations

import copy
import math

import open_clip
import pytest
import torch
import torch.nn.functional as F

from napari_gem import GroundingModel, find_global_blocks, method_names
from napari_gem.engine.families.clip.methods.naclip import neighbourhood_prior
from reference_ops import heads, layer_norm, softmax_rows, unit


def _out_proj(block, heads_out):
    return torch.cat(heads_out, dim=-1) @ block.attn.out_proj.weight.T + block.attn.out_proj.bias


def _mlp(block, x, c_proj_weight=None):
    hidden = block.mlp.gelu(layer_norm(block.ln_2, x) @ block.mlp.c_fc.weight.T + block.mlp.c_fc.bias)
    weight = block.mlp.c_proj.weight if c_proj_weight is None else c_proj_weight
    return hidden @ weight.T + block.mlp.c_proj.bias


def _qkv(block, x):
    u = layer_norm(block.ln_1, x)
    q, k, val = (u @ block.attn.in_proj_weight.T + block.attn.in_proj_bias).chunk(3, dim=-1)
    h = block.attn.num_heads
    return heads(q, h), heads(k, h), heads(val, h), (q.shape[1] // h) ** -0.5


def _tokens(v, image, scale_factor_resampling):
    """§1.7 / gem-spec §1: patch tokens, class token, position embedding, ln_pre."""
    p = v.patch_size[0]
    patches = F.conv2d(image[None], v.conv1.weight, stride=p)[0]
    gh, gw = patches.shape[1:]
    pos = v.positional_embedding
    side = int(math.isqrt(pos.shape[0] - 1))
    if (side, side) != (gh, gw):
        grid = pos[1:].T.reshape(1, -1, side, side)
        if scale_factor_resampling:  # DINO's +0.1 trick, no antialias
            grid = F.interpolate(
                grid,
                scale_factor=((gh + 0.1) / side, (gw + 0.1) / side),
                mode="bicubic",
                recompute_scale_factor=False,
            )
        else:
            grid = F.interpolate(grid, size=(gh, gw), mode="bicubic", antialias=True)
        pos = torch.cat([pos[:1], grid[0].reshape(pos.shape[1], -1).T])
    x = torch.cat([v.class_embedding[None], patches.reshape(patches.shape[0], -1).T]) + pos
    return layer_norm(v.ln_pre, x), (gh, gw)


def _suppressed(weight):
    norms = weight.norm(dim=1)
    channel = int(norms.argmax())
    target = (norms.sum() - norms[channel]) / (len(norms) - 1)
    out = weight.clone()
    out[channel] = out[channel] * target / norms[channel]
    return out


def _trunk(v, x, stop, record=(), cs_blocks=()):
    """Blocks 0 .. stop-1 as CLIP runs them (with CS weights where asked), recording q-k maps."""
    maps = {}
    for index, block in enumerate(list(v.transformer.resblocks)[:stop]):
        qs, ks, vs, s = _qkv(block, x)
        probabilities = [softmax_rows(qh @ kh.T * s) for qh, kh in zip(qs, ks, strict=True)]
        if index in record:
            maps[index] = probabilities
        x = x + _out_proj(block, [a @ vh for a, vh in zip(probabilities, vs, strict=True)])
        cs = _suppressed(block.mlp.c_proj.weight) if index in cs_blocks else None
        x = x + _mlp(block, x, cs)
    return x, maps


def _gaussian_prior(grid, sigma):
    n = grid[0] * grid[1]
    omega = torch.zeros(n + 1, n + 1, dtype=torch.float64)
    for i in range(n):
        for j in range(n):
            (r, c), (r2, c2) = divmod(i, grid[1]), divmod(j, grid[1])
            omega[i + 1, j + 1] = math.exp(-((r - r2) ** 2 + (c - c2) ** 2) / (2 * sigma**2))
    return omega


_TRUNKS: dict = {}


def reference_dense(model, image, method):
    """methods-spec §3 for one image ``[3, H, W]``: L2-normalised patch features ``[gh, gw, E]``."""
    v = model.visual
    blocks = list(v.transformer.resblocks)
    last = blocks[-1]
    scale_factor = method != "clip"
    record = (6, 7) if method == "gclip" else ()
    cs = (7, 8, 9, 10) if method == "gclip" else ()
    # Blocks 0 .. L-2 are the same for most methods: computed once per image and trunk kind.
    key = (id(model), image.shape, float(image.sum()), scale_factor, record, cs)
    if key not in _TRUNKS:
        tokens, grid = _tokens(v, image, scale_factor_resampling=scale_factor)
        _TRUNKS[key] = (*_trunk(v, tokens, len(blocks) - 1, record, cs), grid)
    x, maps, grid = _TRUNKS[key]
    qs, ks, vs, s = _qkv(last, x)
    if method == "clip":
        y = x + _out_proj(
            last, [softmax_rows(qh @ kh.T * s) @ vh for qh, kh, vh in zip(qs, ks, vs, strict=True)]
        )
        y = y + _mlp(last, y)
    elif method == "maskclip":
        y = x + _out_proj(last, vs)
        y = y + _mlp(last, y)
    elif method == "maskclip-nores":
        y = _out_proj(last, vs)
    elif method == "sclip":
        attention = [
            softmax_rows(qh @ qh.T * s) + softmax_rows(kh @ kh.T * s) for qh, kh in zip(qs, ks, strict=True)
        ]
        y = x + _out_proj(last, [a @ vh for a, vh in zip(attention, vs, strict=True)])
        y = y + _mlp(last, y)
    elif method == "clearclip":
        y = _out_proj(last, [softmax_rows(qh @ qh.T * s) @ vh for qh, vh in zip(qs, vs, strict=True)])
    elif method == "naclip":
        omega = _gaussian_prior(grid, 5.0)
        y = _out_proj(
            last, [softmax_rows(kh @ kh.T * s + omega) @ vh for kh, vh in zip(ks, vs, strict=True)]
        )
    elif method == "gclip":
        heads_out = []
        for head, (qh, vh) in enumerate(zip(qs, vs, strict=True)):
            fused = (softmax_rows(qh @ qh.T * s) + maps[6][head] + maps[7][head]) / 3
            heads_out.append(fused @ vh)
        y = _out_proj(last, heads_out)
    else:
        raise AssertionError(method)
    dense = unit(layer_norm(v.ln_post, y) @ v.proj)[1:]
    return dense.reshape(grid[0], grid[1], -1)


LAST_BLOCK_METHODS = ("clip", "maskclip", "maskclip-nores", "sclip", "clearclip", "naclip", "gclip")


@pytest.fixture(scope="module")
def vit_b16():
    torch.manual_seed(3)
    model = open_clip.create_model("ViT-B-16", pretrained=None).eval()
    with torch.no_grad():  # random init leaves LayerNorms at identity: perturb everything
        for parameter in model.parameters():
            parameter.add_(torch.randn_like(parameter) * 0.02)
    return model, open_clip.get_tokenizer("ViT-B-16"), copy.deepcopy(model).double()


def test_every_method_is_covered_here():
    # ProxyCLIP's fidelity test needs a proxy VFM: tests/engine/test_proxyclip.py
    assert set(method_names()) == {"gem", *LAST_BLOCK_METHODS, "proxyclip"}


@pytest.mark.slow
@pytest.mark.parametrize("size", [(224, 224), (224, 288)], ids=["224-batch2", "224x288"])
@pytest.mark.parametrize("method", LAST_BLOCK_METHODS)
def test_dense_features_match_float64_reference(vit_b16, method, size):
    model, tokenizer, model64 = vit_b16
    torch.manual_seed(4)
    batch = 2 if size == (224, 224) else 1
    pixels = torch.randn(batch, 3, *size)
    # GCLIP's presence embedding is CLIP's own only when asked (its default is the suppressed
    # trunk's, within 1e-6 in cosine: test_gclip_presence_from_the_suppressed_trunk...).
    options = {"presence": "clip"} if method == "gclip" else {}
    ours = GroundingModel.from_open_clip(model, tokenizer, method=method, **options).encode_image(pixels)
    with torch.no_grad():
        reference = torch.stack([reference_dense(model64, image, method) for image in pixels.double()])
    assert ours.dense_features.shape == reference.shape == (batch, size[0] // 16, size[1] // 16, 512)
    torch.testing.assert_close(ours.dense_features.double(), reference, atol=1e-5, rtol=0)
    if size == (224, 224):  # the presence embedding is CLIP's own, whatever the method
        with torch.no_grad():
            expected = F.normalize(model.encode_image(pixels), dim=-1)
        torch.testing.assert_close(ours.clip_embedding, expected, atol=1e-5, rtol=0)


@pytest.mark.slow
def test_gclip_presence_from_the_suppressed_trunk_matches_clips_own_embedding(vit_b16):
    model, tokenizer, _ = vit_b16
    torch.manual_seed(6)
    pixels = torch.randn(2, 3, 224, 224)
    suppressed = GroundingModel.from_open_clip(model, tokenizer, method="gclip").encode_image(pixels)
    own = GroundingModel.from_open_clip(model, tokenizer, method="gclip", presence="clip")
    own = own.encode_image(pixels)
    torch.testing.assert_close(suppressed.dense_features, own.dense_features, atol=0, rtol=0)
    cosine = (suppressed.clip_embedding * own.clip_embedding).sum(-1)
    assert torch.all(cosine > 1 - 1e-5) and not torch.equal(suppressed.clip_embedding, own.clip_embedding)


def test_naclip_prior_peaks_at_one_with_a_zero_class_row_and_column():
    omega = neighbourhood_prior((3, 4), sigma=5.0)
    assert omega.shape == (13, 13)
    assert torch.all(omega[0] == 0) and torch.all(omega[:, 0] == 0)
    torch.testing.assert_close(omega[1:, 1:].diagonal(), torch.ones(12, dtype=omega.dtype))
    assert omega[1:, 1:].max() == 1 and omega[1, 2] == pytest.approx(math.exp(-1 / 50))
    torch.testing.assert_close(omega, omega.T)


def test_sclip_adds_two_softmaxes_rather_than_averaging(tiny_model_name):
    # With the last block's values made constant, every token's attention output is
    # (sum of the attention row) x value: 2 for SCLIP's sum, 1 for ClearCLIP's softmax.
    torch.manual_seed(5)
    model = open_clip.create_model(tiny_model_name, pretrained=None).eval()
    last = model.visual.transformer.resblocks[-1]
    width = last.attn.in_proj_weight.shape[1]
    with torch.no_grad():
        last.attn.in_proj_weight[2 * width :] = 0
        last.attn.in_proj_bias[2 * width :] = 1
        last.attn.out_proj.weight.copy_(torch.eye(width))
        last.attn.out_proj.bias.zero_()
        last.mlp.c_proj.weight.zero_()
        last.mlp.c_proj.bias.zero_()
    tokenizer = open_clip.get_tokenizer(tiny_model_name)
    pixels = torch.randn(1, 3, 64, 64)
    from napari_gem.engine.families.clip import vision

    sclip = GroundingModel.from_open_clip(model, tokenizer, method="sclip")
    x, _ = vision.run_trunk(
        model.visual,
        vision.embed(model.visual, pixels, "scale_factor"),
        len(model.visual.transformer.resblocks) - 1,
    )
    q, k, v = vision.qkv(last, last.ln_1(x))
    summed = sclip.dense_method.last_block(last, x, q, k, v, (4, 4), None)
    torch.testing.assert_close(summed - x, torch.full_like(x, 2.0))


def test_gclip_never_changes_the_model_not_even_briefly(tiny_model_name):
    torch.manual_seed(6)
    model = open_clip.create_model(tiny_model_name, pretrained=None).eval()
    before = {name: (p.detach().clone(), p._version) for name, p in model.named_parameters()}
    gclip = GroundingModel.from_open_clip(model, open_clip.get_tokenizer(tiny_model_name), method="gclip")
    gclip.encode_image(torch.randn(2, 3, 64, 96))
    for name, parameter in model.named_parameters():
        saved, version = before[name]
        assert parameter._version == version, f"{name} was written to in place"
        assert torch.equal(parameter.detach(), saved), name


def test_gclip_channel_suppression_changes_the_features(tiny_model_name):
    torch.manual_seed(7)
    model = open_clip.create_model(tiny_model_name, pretrained=None).eval()
    tokenizer = open_clip.get_tokenizer(tiny_model_name)
    pixels = torch.randn(1, 3, 64, 64)
    with_cs = GroundingModel.from_open_clip(model, tokenizer, method="gclip").encode_image(pixels)
    without = GroundingModel.from_open_clip(
        model, tokenizer, method="gclip", channel_suppression=False
    ).encode_image(pixels)
    assert not torch.allclose(with_cs.dense_features, without.dense_features)


def test_the_global_block_detector_reports_every_block(tiny_model_name):
    torch.manual_seed(8)
    model = open_clip.create_model(tiny_model_name, pretrained=None).eval()
    report = find_global_blocks(model, torch.randn(2, 3, 64, 64))
    assert len(report.shares) == 8 and all(0 < share <= 1 for share in report.shares)
    first, second = report.suggested
    assert second == first + 1 and 1 <= first <= 5
    assert "block" in str(report)
