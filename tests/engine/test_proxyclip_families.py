"""ProxyCLIP on the other families: timm trunks (fused qkv with registers and a ``map`` head,
Eva with RoPE, PE) against a float64 re-derivation from timm's own modules, and a
transformers CLIPModel equal to its open_clip twin.

The proxy is a timm ViT whose random weights the test writes to a state dict file
(``proxy_weights=PATH``), so the real loading path runs and nothing is downloaded.
"""

from __future__ import annotations

import copy

import pytest
import timm
import torch
import torch.nn.functional as F
from test_proxyclip import BETA, CLIP_MEAN, CLIP_STD, GAMMA, redraw
from test_trunks import _head_per_token
from trunk_models import register_timm_clips

from napari_gem import create_method, load_model
from napari_gem.engine.families.clip.model import GroundingModel
from napari_gem.engine.families.clip.trunks import as_trunk
from napari_gem.engine.vfm import forget_proxies

PROXY = "deit_tiny_patch16_224"  # any timm ViT can be the proxy


@pytest.fixture(scope="module")
def proxy_file(tmp_path_factory):
    """A timm state dict file of the proxy (random weights, re-drawn as the spec's tests do)."""
    module = timm.create_model(PROXY, pretrained=False).eval()
    redraw(module, 31)
    path = tmp_path_factory.mktemp("proxy") / "proxy.pth"
    torch.save(module.state_dict(), path)
    yield str(path), module
    forget_proxies()


@pytest.fixture(scope="module")
def timm_clip_names(tmp_path_factory):
    return register_timm_clips(tmp_path_factory.mktemp("timm_clip_configs"))


def _vfm_features(vfm, pixels_clip):
    """The proxy's final-norm patch tokens on the crop in its own normalisation (spec §1.1,
    §1.3; a proxy without DINO v1 weights resamples its positions as timm and DINOv2 do:
    bicubic to the exact grid, with antialias), ``[B, C, I, J]``."""
    def column(values):
        return torch.tensor(values, dtype=torch.float64).view(1, 3, 1, 1)

    mean, std = vfm.pretrained_cfg["mean"], vfm.pretrained_cfg["std"]
    pixels = (pixels_clip * column(CLIP_STD) + column(CLIP_MEAN) - column(mean)) / column(std)
    x = vfm.patch_embed.proj(pixels)
    batch, width, rows, cols = x.shape
    table = vfm.pos_embed[0]
    side = int(round((table.shape[0] - 1) ** 0.5))
    square = table[1:].reshape(1, side, side, -1).permute(0, 3, 1, 2)
    square = F.interpolate(square, size=(rows, cols), mode="bicubic", antialias=True)
    x = torch.cat([vfm.cls_token.expand(batch, -1, -1), x.flatten(2).transpose(1, 2)], dim=1)
    x = x + torch.cat([table[:1], square.permute(0, 2, 3, 1).reshape(-1, width)])
    for block in vfm.blocks:
        x = block(x)
    return vfm.norm(x)[:, 1:].transpose(1, 2).reshape(batch, width, rows, cols)


def _proxy_attention(vfm, pixels):
    features = _vfm_features(vfm, pixels).flatten(2)
    unit = features / features.norm(dim=1, keepdim=True)
    similarity = unit.transpose(1, 2) @ unit
    z = (similarity - BETA * similarity.mean(dim=(1, 2), keepdim=True)) * GAMMA
    # A logit at the mask's edge would flip between float32 and float64: not a fair comparison.
    assert float(z.abs().min()) > 1e-4
    z[z < 0] = float("-inf")
    return torch.softmax(z, dim=-1)


def _last_block_input(trunk, pixels):
    """What enters the trunk's last block in timm's own forward."""
    seen = {}
    handle = trunk.blocks[-1].register_forward_pre_hook(lambda module, args: seen.setdefault("x", args[0]))
    try:
        trunk.forward_features(pixels)
    finally:
        handle.remove()
    return seen["x"]


def _values(block, x):
    """The last block's values (never rotated), from timm's own layers: ``[B, N, D]``."""
    attn, width = block.attn, x.shape[-1]
    normed = block.norm1(x)
    if getattr(attn, "v_proj", None) is not None:
        return attn.v_proj(normed)
    bias = attn.qkv.bias[2 * width:] if attn.qkv.bias is not None else getattr(attn, "v_bias", None)
    return F.linear(normed, attn.qkv.weight[2 * width:], bias)


@torch.no_grad()
def reference_timm_proxyclip(clip_model, vfm, pixels):
    """spec §2.1 on a timm trunk, float64: the proxy's attention on the last block's values,
    the block's output projection (post-attention norm, layer scale), no residual, no MLP,
    then each token through the head as the clip method defines it: ``[B, I, J, E]``."""
    visual = copy.deepcopy(clip_model.visual).double()
    trunk, pixels = visual.trunk, pixels.double()
    attention = _proxy_attention(copy.deepcopy(vfm).double(), pixels)
    last = trunk.blocks[-1]
    values = _values(last, _last_block_input(trunk, pixels))[:, trunk.num_prefix_tokens:]
    branch = last.attn.proj(last.attn.norm(attention @ values))
    if hasattr(last, "ls1"):
        branch = last.ls1(branch)
    elif getattr(last, "gamma_1", None) is not None:
        branch = last.gamma_1 * branch
    out = _head_per_token(visual, trunk.norm(branch))
    side = int(round(attention.shape[-1] ** 0.5))
    return F.normalize(out, dim=-1).reshape(pixels.shape[0], side, side, -1)


@pytest.mark.parametrize("index", range(3), ids=["siglip-map-registers", "eva02-rope", "pe-rope-map"])
def test_proxyclip_on_a_timm_trunk_matches_the_float64_reference(timm_clip_names, proxy_file, index):
    path, proxy = proxy_file
    name = timm_clip_names[index]
    torch.manual_seed(40 + index)
    model = load_model(name, None, device="cpu", method="proxyclip", proxy=PROXY, proxy_weights=path)
    assert as_trunk(model.visual).kind.startswith("timm")
    pixels = torch.randn(2, 3, 64, 64)
    out = model.encode_image(pixels)
    expected = reference_timm_proxyclip(model.clip_model, proxy, pixels)
    assert out.dense_features.shape == expected.shape == (2, 4, 4, model.embed_dim)
    difference = float((out.dense_features.double() - expected).abs().max())
    print(f"\nproxyclip {name}: {difference:.1e}")
    assert difference <= 1e-5
    with torch.no_grad():  # presence: the model's own pooled embedding
        own = F.normalize(model.clip_model.encode_image(pixels), dim=-1)
    torch.testing.assert_close(out.clip_embedding, own, atol=1e-6, rtol=0)


def test_proxyclip_on_a_transformers_clip_equals_its_open_clip_twin(tiny_model_name, proxy_file):
    pytest.importorskip("transformers")
    from test_transformers_family import open_clip_twin, random_clip

    from napari_gem.engine.families.transformers_clip import TransformersClip

    path, _ = proxy_file
    hf = random_clip()
    method = create_method("proxyclip", proxy=PROXY, proxy_weights=path)
    ours = GroundingModel(TransformersClip(hf), lambda texts: None, method)
    twin = GroundingModel(open_clip_twin(hf, tiny_model_name), lambda texts: None, method)
    for size in ((64, 64), (96, 64)):
        pixels = torch.randn(1, 3, *size)
        a, b = ours.encode_image(pixels), twin.encode_image(pixels)
        assert a.dense_features.shape == b.dense_features.shape
        difference = float((a.dense_features - b.dense_features).abs().max())
        print(f"\nproxyclip transformers vs open_clip twin {size[0]}x{size[1]}: {difference:.1e}")
        assert difference <= 1e-5, size
        assert float((a.clip_embedding - b.clip_embedding).abs().max()) <= 1e-5, size
