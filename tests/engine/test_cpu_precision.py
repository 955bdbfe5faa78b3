"""Half precision on the CPU: padded bf16 attention, the transposed weight layout, advice."""

from __future__ import annotations

import open_clip
import pytest
import torch
import torch.nn.functional as F

from napari_gem import load_model
from napari_gem.engine import cpu_precision, vision
from napari_gem.engine.cpu_precision import slow_precision_advice, store_weights_transposed


@pytest.mark.parametrize("count", [17, 37, 785])
def test_bf16_attention_gives_the_padded_keys_no_weight(count):
    torch.manual_seed(0)
    queries, keys = (torch.randn(2, 3, count, 16, dtype=torch.bfloat16) for _ in range(2))
    ones = torch.ones(2, 3, count, 16, dtype=torch.bfloat16)
    # Probabilities over the real keys sum to 1: any weight on a zero-padded key would
    # pull the output of all-ones values below 1.
    out = vision.attention(queries, keys, ones)
    assert out.shape == ones.shape
    assert torch.allclose(out.float(), torch.ones(()), atol=1e-2)


@pytest.mark.parametrize("with_bias", [False, True])
def test_bf16_attention_matches_float32(with_bias):
    torch.manual_seed(1)
    count = 37  # not a multiple of 16: the padded path
    queries, keys, values = (torch.randn(1, 2, count, 16) for _ in range(3))
    bias = torch.randn(count, count) if with_bias else None
    expected = F.scaled_dot_product_attention(queries, keys, values, attn_mask=bias)
    half = vision.attention(*(t.bfloat16() for t in (queries, keys, values)),
                            bias=None if bias is None else bias.bfloat16())
    assert (half.float() - expected).abs().max() < 0.05
    assert torch.corrcoef(torch.stack([half.float().flatten(), expected.flatten()]))[0, 1] > 0.999


def test_transposed_storage_keeps_values_outputs_and_checkpoints(tiny_model_name, tmp_path):
    torch.manual_seed(0)
    model = open_clip.create_model(tiny_model_name, pretrained=None).eval()
    shapes = {name: p.shape for name, p in model.named_parameters()}
    pixels = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        before = model.encode_image(pixels)
        store_weights_transposed(model)
        after = model.encode_image(pixels)
    assert torch.allclose(before, after, atol=1e-6)
    weights = [p for name, p in model.named_parameters() if p.ndim == 2 and name.endswith("weight")]
    assert weights and all(p.t().is_contiguous() and not p.is_contiguous() for p in weights)
    assert {name: p.shape for name, p in model.named_parameters()} == shapes
    torch.save(model.state_dict(), tmp_path / "saved.pt")
    fresh = open_clip.create_model(tiny_model_name, pretrained=None).eval()
    fresh.load_state_dict(torch.load(tmp_path / "saved.pt", weights_only=True))
    with torch.no_grad():
        assert torch.allclose(fresh.encode_image(pixels), after, atol=1e-6)


def test_bf16_models_on_the_cpu_load_with_the_transposed_layout(tiny_model_name, tiny_checkpoint):
    qkv_weight = lambda model: model.visual.transformer.resblocks[0].attn.in_proj_weight  # noqa: E731
    bf16 = load_model(tiny_model_name, tiny_checkpoint, device="cpu", precision="bf16")
    fp32 = load_model(tiny_model_name, tiny_checkpoint, device="cpu", precision="fp32")
    assert qkv_weight(bf16).t().is_contiguous() and qkv_weight(fp32).is_contiguous()
    assert torch.equal(qkv_weight(bf16).float(), qkv_weight(fp32).bfloat16().float())


def _cpu_with(monkeypatch, *, bf16: bool, fp16: bool) -> None:
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: bf16, raising=False)
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: bf16, raising=False)
    monkeypatch.setattr(torch.cpu, "_is_amx_fp16_supported", lambda: fp16, raising=False)


def test_half_precision_without_native_support_is_called_slow(monkeypatch):
    cpu = torch.device("cpu")
    _cpu_with(monkeypatch, bf16=True, fp16=False)
    assert slow_precision_advice(cpu, torch.bfloat16) is None
    assert slow_precision_advice(cpu, torch.float16) == (
        "fp16 has no native support on this CPU and runs slower than fp32 here; "
        "choose bf16 (native here) for speed.")
    _cpu_with(monkeypatch, bf16=False, fp16=False)
    assert "choose fp32" in slow_precision_advice(cpu, torch.bfloat16)
    assert slow_precision_advice(cpu, torch.float32) is None
    assert slow_precision_advice(torch.device("cuda"), torch.float16) is None
    assert cpu_precision.has_native(torch.float32)


def test_loading_in_a_slow_precision_warns(monkeypatch, tiny_model_name, tiny_checkpoint):
    _cpu_with(monkeypatch, bf16=True, fp16=False)
    with pytest.warns(RuntimeWarning, match="fp16 has no native support on this CPU"):
        load_model(tiny_model_name, tiny_checkpoint, device="cpu", precision="fp16")
