"""Half precision on the CPU: when it is fast, and the weight layout that makes it faster.

Measured on a CPU with AMX (Sapphire Rapids class): a bf16 model runs GEM 1.8-2.7x
(median 2.1x) faster than fp32, while fp16, which that CPU cannot compute natively, runs
slower than fp32 (docs/benchmarks.md). CPUs with AVX512-BF16 but no AMX are expected to
gain less; CPUs with neither emulate bf16. oneDNN's bf16 matmul also runs the ViT's
``[785, 768] x [768, 2304]`` and ``[785, 768] x [768, 768]`` products up to twice as fast
when the weight is stored ``[in, out]`` in memory rather than PyTorch's ``[out, in]`` (a
whole ViT-B/16 encode at 448², ~10 %; DINOv2 ~7 %); MKL's fp32 is indifferent.
"""

from __future__ import annotations

import torch
from torch import nn


def _cpu_probe(name: str) -> bool | None:
    probe = getattr(torch.cpu, name, None)  # private probes, absent from older PyTorch
    return None if probe is None else bool(probe())


def has_native(dtype: torch.dtype) -> bool | None:
    """Whether this CPU computes ``dtype`` natively; ``None`` when PyTorch cannot tell.

    fp32: always; bf16: with AMX or AVX512-BF16; fp16: with AMX-FP16.
    """
    if dtype == torch.bfloat16:
        probes = (_cpu_probe("_is_amx_tile_supported"), _cpu_probe("_is_avx512_bf16_supported"))
        return True if True in probes else (None if None in probes else False)
    if dtype == torch.float16:
        return _cpu_probe("_is_amx_fp16_supported")
    return True


def slow_precision_advice(device: torch.device, dtype: torch.dtype) -> str | None:
    """A sentence for the user when ``dtype`` will run slower than fp32 on ``device``."""
    if torch.device(device).type != "cpu" or has_native(dtype) is not False:
        return None
    name = {torch.bfloat16: "bf16", torch.float16: "fp16"}.get(dtype, str(dtype))
    better = "bf16 (native here)" if has_native(torch.bfloat16) else "fp32"
    return (f"{name} has no native support on this CPU and runs slower than fp32 here; "
            f"choose {better} for speed.")


def wants_transposed_weights(device: torch.device, dtype: torch.dtype) -> bool:
    """Whether :func:`store_weights_transposed` pays for a model on ``device`` in ``dtype``."""
    return torch.device(device).type == "cpu" and dtype == torch.bfloat16


def matmul_weights(module: nn.Module) -> list[nn.Parameter]:
    """The weight matrices of ``module`` that enter matrix products as ``x @ weightᵀ``:
    every ``nn.Linear`` weight and every packed attention input projection."""
    weights = []
    for child in module.modules():
        if isinstance(child, nn.Linear):
            weights.append(child.weight)
        elif isinstance(child, nn.MultiheadAttention) and child.in_proj_weight is not None:
            weights.append(child.in_proj_weight)
    return list({id(weight): weight for weight in weights}.values())  # tied weights once


def store_weights_transposed(module: nn.Module) -> None:
    """Store the matrix-product weights of ``module`` transposed in memory, in place.

    Values, shapes and the module's behaviour are unchanged (each weight becomes a
    transposed view of an ``[in, out]`` contiguous tensor), so the model stays an
    ordinary PyTorch module that saves, loads and moves as before. Embedding tables and
    other 2-D parameters are left as they are (they are gathered, not multiplied).
    """
    with torch.no_grad():
        for weight in matmul_weights(module):
            if weight.ndim == 2 and weight.is_contiguous():
                weight.data = weight.data.t().contiguous().t()
