"""Half precision on the CPU: padded bf16 attention, the transposed weight layout, advice."""

from __future__ import annotations

import open_clip
import pytest
import torch
import torch.nn.functional as F

from napari_gem import load_model
from napari_gem.engine.cpu_precision import (
    has_native,
    matmul_weights,
    slow_precision_advice,
    store_weights_transposed,
)
from napari_gem.engine.families.clip import vision


def _key_counts_seen(monkeypatch) -> list[int]:
    """Record the key count of every SDPA call the engine makes."""
    seen: list[int] = []
    real = F.scaled_dot_product_attention

    def recording(query, key, value, **kwargs):
        seen.append(key.shape[-2])
        return real(query, key, value, **kwargs)

    monkeypatch.setattr(vision.F, "scaled_dot_product_attention", recording)
    return seen


@pytest.mark.parametrize("dtype, padded", [(torch.bfloat16, 48), (torch.float32, 37)])
def test_keys_are_padded_to_a_multiple_of_16_in_cpu_bf16_only(monkeypatch, dtype, padded):
    seen = _key_counts_seen(monkeypatch)
    q = torch.randn(1, 2, 37, 16, dtype=dtype)
    vision.attention(q, q, q)
    assert seen == [padded]


@pytest.mark.parametrize("count", [17, 37, 785])
@pytest.mark.parametrize("bias", ["none", "float", "bool", "broadcast"])
def test_bf16_attention_gives_the_padded_keys_no_weight(count, bias):
    torch.manual_seed(0)
    queries, keys = (torch.randn(2, 3, count, 16, dtype=torch.bfloat16) for _ in range(2))
    ones = torch.ones(2, 3, count, 16, dtype=torch.bfloat16)
    masks = {
        "none": None,
        "float": torch.zeros(count, count, dtype=torch.bfloat16),
        "bool": torch.ones(count, count, dtype=torch.bool),
        "broadcast": torch.zeros(count, 1, dtype=torch.bfloat16),
    }
    # Probabilities over the real keys sum to 1: any weight on a zero-padded key would
    # pull the output of all-ones values below 1 (by count/(count+pad) for equal logits).
    out = vision.attention(queries, keys, ones, bias=masks[bias])
    assert out.shape == ones.shape
    assert torch.allclose(out.float(), torch.ones(()), atol=4e-3)


@pytest.mark.parametrize("with_bias", [False, True])
def test_bf16_attention_matches_float32(with_bias):
    torch.manual_seed(1)
    count = 37  # not a multiple of 16: the padded path
    queries, keys, values = (torch.randn(1, 2, count, 16) for _ in range(3))
    bias = torch.randn(count, count) if with_bias else None  # e.g. NACLIP's prior
    expected = F.scaled_dot_product_attention(queries, keys, values, attn_mask=bias)
    half = vision.attention(*(t.bfloat16() for t in (queries, keys, values)),
                            bias=None if bias is None else bias.bfloat16())
    assert (half.float() - expected).abs().max() < 0.05
    assert torch.corrcoef(torch.stack([half.float().flatten(), expected.flatten()]))[0, 1] > 0.999


def test_transposed_storage_keeps_values_outputs_and_loads_checkpoints(tiny_model_name):
    torch.manual_seed(0)
    model = open_clip.create_model(tiny_model_name, pretrained=None).eval()
    shapes = {name: p.shape for name, p in model.named_parameters()}
    pixels = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        before = model.encode_image(pixels)
        store_weights_transposed(model)
        assert torch.allclose(model.encode_image(pixels), before, atol=1e-6)
    weights = matmul_weights(model)
    assert weights and all(p.t().is_contiguous() and not p.is_contiguous() for p in weights)
    assert model.token_embedding.weight.is_contiguous()  # gathered, not multiplied: left alone
    assert {name: p.shape for name, p in model.named_parameters()} == shapes
    # A checkpoint loads into the transposed layout (copied in place, layout kept).
    torch.manual_seed(1)
    other = open_clip.create_model(tiny_model_name, pretrained=None).eval()
    model.load_state_dict(other.state_dict())
    with torch.no_grad():
        assert torch.allclose(model.encode_image(pixels), other.encode_image(pixels), atol=1e-6)
    assert all(p.t().is_contiguous() for p in matmul_weights(model))


def test_bf16_models_on_the_cpu_load_with_the_transposed_layout(
        tiny_model_name, tiny_checkpoint, tiny_simzss_name, tiny_simzss_checkpoint):
    qkv_weight = lambda model: model.visual.transformer.resblocks[0].attn.in_proj_weight  # noqa: E731
    bf16 = load_model(tiny_model_name, tiny_checkpoint, device="cpu", precision="bf16")
    fp32 = load_model(tiny_model_name, tiny_checkpoint, device="cpu", precision="fp32")
    assert qkv_weight(bf16).t().is_contiguous() and qkv_weight(fp32).is_contiguous()
    assert torch.equal(qkv_weight(bf16).float(), qkv_weight(fp32).bfloat16().float())
    simzss = load_model(tiny_simzss_name, tiny_simzss_checkpoint, device="cpu", precision="bf16")
    weights = matmul_weights(simzss.network)
    assert weights and all(p.t().is_contiguous() for p in weights)


def _cpu_with(monkeypatch, *, bf16: bool | None, fp16: bool | None) -> None:
    """Pretend the CPU has (True), lacks (False) or cannot report (None) each feature."""
    for name, value in (("_is_amx_tile_supported", bf16), ("_is_avx512_bf16_supported", bf16),
                        ("_is_amx_fp16_supported", fp16)):
        if value is None:
            monkeypatch.delattr(torch.cpu, name, raising=False)
        else:
            monkeypatch.setattr(torch.cpu, name, lambda value=value: value, raising=False)


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


def test_a_cpu_that_cannot_be_probed_gets_no_claims(monkeypatch):
    _cpu_with(monkeypatch, bf16=None, fp16=None)  # an older PyTorch without the probes
    assert has_native(torch.bfloat16) is None and has_native(torch.float16) is None
    assert slow_precision_advice(torch.device("cpu"), torch.float16) is None
    assert has_native(torch.float32) is True


def test_loading_in_a_slow_precision_warns_at_the_callers_line(monkeypatch, tiny_model_name,
                                                               tiny_checkpoint):
    _cpu_with(monkeypatch, bf16=True, fp16=False)
    with pytest.warns(RuntimeWarning, match="fp16 has no native support on this CPU") as caught:
        load_model(tiny_model_name, tiny_checkpoint, device="cpu", precision="fp16")
    assert caught[0].filename == __file__
