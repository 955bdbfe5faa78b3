"""Half precision on the CPU: when it is fast, and the weight layout that makes it faster.

On a CPU with native bf16 (AMX or AVX512-BF16) a bf16 model runs GEM about 2-2.7x
faster than fp32; without it, bf16 and fp16 are emulated and slower than fp32
(docs/benchmarks.md). oneDNN's bf16 matmul also runs the ViT's ``[785, 768] x
[768, 2304]`` and ``[785, 768] x [768, 768]`` products up to twice as fast when the
weight is stored ``[in, out]`` in memory rather than PyTorch's ``[out, in]`` (a whole
ViT-B/16 encode at 448², ~10 %; DINOv2 ~7 %); MKL's fp32 is indifferent.
"""

from __future__ import annotations

import torch
from torch import nn


def _cpu_probe(name: str) -> bool:
    probe = getattr(torch.cpu, name, None)  # private probes: assume support if absent
    return True if probe is None else bool(probe())


def has_native(dtype: torch.dtype) -> bool:
    """Whether this CPU computes ``dtype`` natively (fp32 always; bf16, fp16 with AMX/AVX512)."""
    if dtype == torch.bfloat16:
        return _cpu_probe("_is_amx_tile_supported") or _cpu_probe("_is_avx512_bf16_supported")
    if dtype == torch.float16:
        return _cpu_probe("_is_amx_fp16_supported")
    return True


def slow_precision_advice(device: torch.device, dtype: torch.dtype) -> str | None:
    """A sentence for the user when ``dtype`` will run slower than fp32 on ``device``."""
    if torch.device(device).type != "cpu" or has_native(dtype):
        return None
    name = {torch.bfloat16: "bf16", torch.float16: "fp16"}.get(dtype, str(dtype))
    better = "bf16 (native here)" if has_native(torch.bfloat16) else "fp32"
    return (f"{name} has no native support on this CPU and runs slower than fp32 here; "
            f"choose {better} for speed.")


def wants_transposed_weights(device: torch.device, dtype: torch.dtype) -> bool:
    """Whether :func:`store_weights_transposed` pays for a model on ``device`` in ``dtype``."""
    return torch.device(device).type == "cpu" and dtype == torch.bfloat16


def store_weights_transposed(module: nn.Module) -> None:
    """Store every 2-D weight matrix of ``module`` transposed in memory, in place.

    Values, shapes and the module's behaviour are unchanged (``weight`` becomes a
    transposed view of an ``[in, out]`` contiguous tensor), so the model stays an
    ordinary PyTorch module that saves, loads and moves as before.
    """
    with torch.no_grad():
        for name, parameter in module.named_parameters():
            if parameter.ndim == 2 and name.endswith("weight") and parameter.is_contiguous():
                parameter.data = parameter.data.t().contiguous().t()
