"""ProxyCLIP: the engine against a float64 re-derivation of shared/docs/vfm-methods-spec.md §2,
for the three proxies (tiny timm models of the same architectures, random weights re-drawn as
spec §5 says), at the VFM's native size and at a size that resamples both position tables;
the proxy shared in the process; offline failure within seconds with a useful message.

The reference below uses no engine code: only the open_clip and timm modules' own layers.
"""

from __future__ import annotations

import copy
import math
import time

import open_clip
import pytest
import timm
import torch
import torch.nn.functional as F

from napari_gem import GroundingModel, ModelLoadError, create_method, load_model
from napari_gem.engine import method_class
from napari_gem.engine.families.clip.methods.proxyclip import ProxyclipOptions
from napari_gem.engine.vfm import forget_proxies, load_proxy, share_proxy

CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
BETA, GAMMA = 1.2, 3.0  # proxyclip_segmentor.py L31

#: proxy -> (timm name, tiny image size = its native grid, [(size, batch)]: native, resampled)
PROXIES = {
    "dino-b16": ("vit_base_patch16_224.dino", 64, [(64, 2), (96, 1)]),
    "dino-b8": ("vit_base_patch8_224.dino", 64, [(64, 2), (96, 1)]),
    "dinov2-b14-reg": ("vit_base_patch14_reg4_dinov2.lvd142m", 112, [(112, 2), (224, 1)]),
}


# -- weights as the spec's validation re-draws them (§5) ----------------------------------
def redraw(module: torch.nn.Module, seed: int) -> None:
    """LayerNorm weights 1+0.2N, biases 0.1N, LayerScale 0.3+0.1N, position tables and
    class/register tokens 0.5N, matrices N/sqrt(fan_in) (timm's init hides differences)."""
    generator = torch.Generator().manual_seed(seed)

    def normal(shape):
        return torch.randn(shape, generator=generator, dtype=torch.float64)

    with torch.no_grad():
        for name, parameter in module.named_parameters():
            shape, last = parameter.shape, name.rsplit(".", 1)[-1]
            if "norm" in name or ".ln" in name or name.startswith("ln") or ".ln_" in name:
                value = (1 + 0.2 * normal(shape)) if last == "weight" else 0.1 * normal(shape)
            elif last == "gamma" or ".ls" in name:
                value = 0.3 + 0.1 * normal(shape)
            elif "pos" in name or "token" in name or "class_embedding" in name:
                value = 0.5 * normal(shape)
            elif parameter.ndim >= 2:
                fan_in = shape[0] if last == "proj" else math.prod(shape[1:])
                value = normal(shape) / math.sqrt(fan_in)
            else:
                value = 0.1 * normal(shape)
            parameter.copy_(value.to(parameter.dtype))


def tiny_vfm(timm_name: str, image_size: int, seed: int) -> torch.nn.Module:
    model = timm.create_model(timm_name, pretrained=False, depth=2, embed_dim=64, num_heads=2,
                              img_size=image_size).eval()
    redraw(model, seed)
    return model


@pytest.fixture(scope="module")
def clip32(tiny_model_name):
    torch.manual_seed(0)
    model = open_clip.create_model(tiny_model_name, pretrained=None).eval()
    redraw(model, 1)
    return model, open_clip.get_tokenizer(tiny_model_name)


@pytest.fixture(scope="module")
def vfms():
    """One tiny VFM per proxy, shared in the process as that proxy (float32) for these tests."""
    made = {proxy: tiny_vfm(name, size, seed) for seed, (proxy, (name, size, _))
            in enumerate(PROXIES.items(), start=10)}
    for proxy, module in made.items():
        share_proxy(proxy, module)
    yield made
    forget_proxies()


# -- the float64 re-derivation ---------------------------------------------------------
def reference_clip_values(visual, pixels):
    """Last-block values of the CLIP trunk (§1.2, §2.1): ``[B, D, gh, gw]``, float64."""
    grid = (pixels.shape[-2] // visual.patch_size[0], pixels.shape[-1] // visual.patch_size[1])
    x = visual.conv1(pixels).flatten(2).transpose(1, 2)
    cls = visual.class_embedding.view(1, 1, -1).expand(x.shape[0], 1, -1)
    x = torch.cat([cls, x], dim=1)
    table = visual.positional_embedding
    side = int(math.sqrt(table.shape[0] - 1))
    if grid != (side, side):  # bicubic, scale factor (g + 0.1)/sqrt(N0), no antialias
        square = table[1:].reshape(1, side, side, -1).permute(0, 3, 1, 2)
        square = F.interpolate(square, scale_factor=((grid[0] + 0.1) / side, (grid[1] + 0.1) / side),
                               mode="bicubic", align_corners=False)
        table = torch.cat([table[:1], square.permute(0, 2, 3, 1).reshape(-1, table.shape[1])])
    x = visual.ln_pre(x + table)
    blocks = list(visual.transformer.resblocks)
    for block in blocks[:-1]:
        x = block(x)
    last = blocks[-1]
    width = x.shape[-1]
    v = last.ln_1(x) @ last.attn.in_proj_weight[2 * width:].T + last.attn.in_proj_bias[2 * width:]
    return v[:, 1:].transpose(1, 2).reshape(x.shape[0], width, *grid)


def reference_vfm_features(vfm, pixels_clip, official_rule: str):
    """Final-norm patch tokens of the VFM on the re-normalised crop (§1.1, §1.3): ``[B, C, I, J]``."""
    def column(values):
        return torch.tensor(values, dtype=torch.float64).view(1, 3, 1, 1)

    pixels = (pixels_clip * column(CLIP_STD) + column(CLIP_MEAN) - column(IMAGENET_MEAN)) \
        / column(IMAGENET_STD)
    x = vfm.patch_embed.proj(pixels)
    batch, width, rows, cols = x.shape
    x = x.flatten(2).transpose(1, 2)
    registers = [vfm.reg_token.expand(batch, -1, -1)] if vfm.reg_token is not None else []
    cls = vfm.cls_token.expand(batch, -1, -1)
    if official_rule == "dino":  # table rows: class, then M x M patches
        table = vfm.pos_embed[0]
        side = int(math.sqrt(table.shape[0] - 1))
        patches = table[1:]
        if (rows, cols) != (side, side):
            square = patches.reshape(1, side, side, -1).permute(0, 3, 1, 2)
            square = F.interpolate(square, scale_factor=((rows + 0.1) / side, (cols + 0.1) / side),
                                   mode="bicubic")
            patches = square.permute(0, 2, 3, 1).reshape(-1, width)
        x = torch.cat([cls, x], dim=1) + torch.cat([table[:1], patches])
    else:  # DINOv2-reg in timm: the class position folded into cls_token, patch rows only
        patches = vfm.pos_embed[0]
        side = int(math.sqrt(patches.shape[0]))
        if (rows, cols) != (side, side):
            square = patches.reshape(1, side, side, -1).permute(0, 3, 1, 2)
            square = F.interpolate(square, size=(rows, cols), mode="bicubic", antialias=True)
            patches = square.permute(0, 2, 3, 1).reshape(-1, width)
        x = torch.cat([cls, *registers, x + patches], dim=1)
    for block in vfm.blocks:
        x = block(x)
    prefix = 1 + (vfm.reg_token.shape[1] if vfm.reg_token is not None else 0)
    x = vfm.norm(x)[:, prefix:]
    return x.transpose(1, 2).reshape(batch, width, rows, cols)


@torch.no_grad()
def reference_proxyclip(clip_model, vfm, pixels, official_rule, mean_scope="image"):
    """spec §2.1 in float64: ``[B, I, J, E]``."""
    visual = copy.deepcopy(clip_model.visual).double()
    vfm = copy.deepcopy(vfm).double()
    pixels = pixels.double()
    features = reference_vfm_features(vfm, pixels, official_rule)
    batch, _, rows, cols = features.shape
    f = features.flatten(2)
    f = f / f.norm(dim=1, keepdim=True)
    similarity = f.transpose(1, 2) @ f
    mean = similarity.mean(dim=(1, 2), keepdim=True) if mean_scope == "image" else similarity.mean()
    z = (similarity - BETA * mean) * GAMMA
    z[z < 0] = float("-inf")
    attention = torch.softmax(z, dim=-1)
    values = F.interpolate(reference_clip_values(visual, pixels), size=(rows, cols), mode="bilinear",
                           align_corners=False)
    values = values.flatten(2).transpose(1, 2)
    last = visual.transformer.resblocks[-1]
    y = last.attn.out_proj(attention @ values)
    out = visual.ln_post(y) @ visual.proj
    return F.normalize(out, dim=-1).reshape(batch, rows, cols, -1)


# -- fidelity ---------------------------------------------------------------------------
CASES = [(proxy, size, batch) for proxy, (_, _, sizes) in PROXIES.items() for size, batch in sizes]


@pytest.mark.parametrize(("proxy", "size", "batch"), CASES,
                         ids=[f"{p}-{s}px-b{b}" for p, s, b in CASES])
def test_dense_features_match_the_float64_reference(clip32, vfms, proxy, size, batch):
    clip_model, tokenizer = clip32
    torch.manual_seed(size + batch)
    pixels = torch.randn(batch, 3, size, size)
    model = GroundingModel.from_open_clip(clip_model, tokenizer, method="proxyclip", proxy=proxy)
    engine = model.encode_image(pixels, with_clip_embedding=False).dense_features.double()
    rule = "dinov2" if proxy.startswith("dinov2") else "dino"
    expected = reference_proxyclip(clip_model, vfms[proxy], pixels, rule)
    patch = vfms[proxy].patch_embed.patch_size[0]
    assert engine.shape == expected.shape == (batch, size // patch, size // patch, 32)
    assert float((engine - expected).abs().max()) <= 1e-5


def test_the_similarity_mean_is_per_image_unless_the_official_batch_mean_is_asked(clip32, vfms):
    clip_model, tokenizer = clip32
    torch.manual_seed(5)
    smooth = F.interpolate(torch.randn(1, 3, 4, 4), size=(64, 64), mode="bilinear")
    pixels = torch.cat([torch.randn(1, 3, 64, 64), 2 * smooth])  # unlike similarity means
    per_image = GroundingModel.from_open_clip(clip_model, tokenizer, method="proxyclip", proxy="dino-b8")
    together = per_image.encode_image(pixels, with_clip_embedding=False).dense_features
    alone = per_image.encode_image(pixels[1:], with_clip_embedding=False).dense_features
    assert float((together[1:] - alone).abs().max()) <= 1e-6  # never depends on its batch
    batch_mean = per_image.with_method("proxyclip", proxy="dino-b8", mean_scope="batch")
    coupled = batch_mean.encode_image(pixels, with_clip_embedding=False).dense_features.double()
    expected = reference_proxyclip(clip_model, vfms["dino-b8"], pixels, "dino", mean_scope="batch")
    assert float((coupled - expected).abs().max()) <= 1e-5
    assert float((coupled[1:] - alone).abs().max()) > 1e-3


def test_the_defaults_are_the_official_ones():
    options = ProxyclipOptions()
    assert (options.proxy, options.proxy_weights, options.beta, options.gamma, options.mean_scope) == \
        ("dino-b16", None, 1.2, 3.0, "image")
    assert ProxyclipOptions(proxy_weights=("a.pth",)).proxy_weights == "a.pth"  # a form's text field
    assert ProxyclipOptions(proxy_weights=()).proxy_weights is None
    with pytest.raises(ValueError, match="gamma must be a positive number"):
        ProxyclipOptions(gamma=0)
    with pytest.raises(ValueError, match="mean_scope must be image or batch"):
        ProxyclipOptions(mean_scope="dataset")


def test_the_proxy_is_shared_and_the_presence_embedding_is_clips_own(clip32, vfms):
    clip_model, tokenizer = clip32
    first = GroundingModel.from_open_clip(clip_model, tokenizer, method="proxyclip")
    second = GroundingModel.from_open_clip(clip_model, tokenizer, method="proxyclip", beta=1.0)
    assert first.dense_method.proxy_for(first.visual) is second.dense_method.proxy_for(first.visual)
    assert load_proxy("dino-b16").module is vfms["dino-b16"]
    pixels = torch.randn(1, 3, 64, 64)
    plain = GroundingModel.from_open_clip(clip_model, tokenizer, method="clip")
    torch.testing.assert_close(first.encode_image(pixels).clip_embedding,
                               plain.encode_image(pixels).clip_embedding)


def test_tiled_segmentation_blends_windows_on_the_proxy_grid(clip32, vfms):
    import numpy as np

    import napari_gem

    clip_model, tokenizer = clip32
    model = GroundingModel.from_open_clip(clip_model, tokenizer, method="proxyclip", proxy="dino-b8")
    assert model.encode_image(torch.randn(1, 3, 64, 64)).dense_features.shape[1:3] == (8, 8)
    image = np.random.default_rng(0).integers(0, 255, (90, 120, 3), dtype=np.uint8)
    tiled = napari_gem.segment(image, ["cell"], model=model, input_size=64, tiling="always",
                               window=64, overlap=16)
    assert tiled.heatmaps.shape == (1, 90, 120) and np.isfinite(tiled.heatmaps).all()
    assert method_class("proxyclip").needs_extra_weights
    assert not method_class("naclip").needs_extra_weights


# -- loading ----------------------------------------------------------------------------
@pytest.fixture
def empty_offline_cache(monkeypatch, tmp_path):
    from huggingface_hub import constants

    forget_proxies()
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path))
    yield tmp_path
    forget_proxies()


def test_offline_it_fails_within_seconds_naming_the_weights_and_the_cache(
        empty_offline_cache, tiny_model_name, tiny_checkpoint):
    start = time.perf_counter()
    with pytest.raises(ModelLoadError) as caught:
        load_model(tiny_model_name, tiny_checkpoint, device="cpu", method="proxyclip", proxy="dino-b8")
    assert time.perf_counter() - start <= 5.0
    message = str(caught.value)
    assert "vit_base_patch8_224.dino" in message and "not cached" in message
    assert str(empty_offline_cache / "models--timm--vit_base_patch8_224.dino") in message
    assert "HF_HUB_OFFLINE" in message and "proxy_weights" in message


def test_the_method_list_says_proxyclip_needs_a_proxy_and_whether_it_is_cached(empty_offline_cache):
    from napari_gem import list_methods
    from napari_gem.plugin.panels.model import method_choices, method_tooltip

    extra = {info.name: info.extra_model for info in list_methods()}
    assert all(extra[name] is None for name in ("gem", "clip", "naclip", "gclip"))
    assert extra["proxyclip"].name == "dino-b16 (vit_base_patch16_224.dino)"
    assert not extra["proxyclip"].cached
    assert ("ProxyCLIP (+ extra model, downloads)", "proxyclip") in method_choices()
    assert "not cached, downloaded on first use" in method_tooltip("proxyclip")

    snapshot = empty_offline_cache / "models--timm--vit_base_patch16_224.dino" / "snapshots" / "0"
    snapshot.mkdir(parents=True)
    (snapshot / "model.safetensors").write_bytes(b"weights")
    (empty_offline_cache / "models--timm--vit_base_patch16_224.dino" / "refs").mkdir()
    (empty_offline_cache / "models--timm--vit_base_patch16_224.dino" / "refs" / "main").write_text("0")
    assert ("ProxyCLIP (+ extra model, cached)", "proxyclip") in method_choices()
    assert "dino-b16 (vit_base_patch16_224.dino): cached" in method_tooltip("proxyclip")


def test_a_weights_file_of_another_architecture_is_refused_naming_the_keys(empty_offline_cache, tmp_path):
    path = tmp_path / "small.pth"
    small = timm.create_model("vit_tiny_patch16_224", pretrained=False, depth=2)
    state = {**small.state_dict(), "extra.weight": torch.zeros(2)}
    torch.save(state, path)
    method = create_method("proxyclip", proxy="vit_tiny_patch16_224", proxy_weights=str(path))
    with pytest.raises(ModelLoadError, match=r"missing keys: blocks\.10\..*unexpected keys: extra\.weight"):
        load_proxy(method.options.proxy, method.options.proxy_weights)
    with pytest.raises(ModelLoadError, match="does not exist"):
        create_method("proxyclip", proxy_weights=str(tmp_path / "absent.pth"))
    with pytest.raises(ModelLoadError, match="unknown proxy 'no-such-model'"):
        load_proxy("no-such-model", str(path))
