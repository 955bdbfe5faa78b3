"""Where a model runs and in which precision: device and dtype choice, and moving weights there."""

from __future__ import annotations

import warnings

import torch
from torch import nn

from .cpu_precision import slow_precision_advice, store_weights_transposed, wants_transposed_weights
from .errors import ModelLoadError

#: Precision names users type, and the dtype each means.
PRECISIONS: dict[str, torch.dtype] = {
    "fp32": torch.float32,
    "float32": torch.float32,
    "bf16": torch.bfloat16,
    "bfloat16": torch.bfloat16,
    "fp16": torch.float16,
    "float16": torch.float16,
}
#: The choices offered in the widget and on the command line ("auto": per device).
PRECISION_CHOICES = ("auto", "fp32", "bf16", "fp16")
DEVICE_CHOICES = ("auto", "cpu", "cuda", "mps")
#: dtype -> its short name (the inverse of :data:`PRECISIONS` for the short names).
PRECISION_NAMES = {torch.float32: "fp32", torch.bfloat16: "bf16", torch.float16: "fp16"}


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """``auto`` picks CUDA, then Apple MPS, then CPU; an unavailable choice is an error."""
    name = str(device).lower()
    mps = getattr(torch.backends, "mps", None)
    mps_available = bool(mps and mps.is_available())
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        return torch.device("mps" if mps_available else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ModelLoadError("device 'cuda' was asked for, but PyTorch sees no CUDA GPU here")
    if name == "mps" and not mps_available:
        raise ModelLoadError("device 'mps' was asked for, but Apple MPS is not available here")
    try:
        return torch.device(name)
    except RuntimeError as error:
        raise ModelLoadError(f"unknown device {device!r}: use auto, cpu, cuda or mps") from error


def resolve_precision(precision: str | None, device: torch.device) -> torch.dtype:
    """``None`` (or ``"auto"``) means fp32 on the CPU, bf16 (or fp16) on a GPU that supports it."""
    if precision is None or str(precision).lower() == "auto":
        if device.type == "cuda":
            return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        if device.type == "mps":
            return torch.float16
        return torch.float32
    key = str(precision).lower().removeprefix("torch.")
    if key not in PRECISIONS:
        raise ModelLoadError(f"unknown precision {precision!r}: use fp32, bf16 or fp16")
    return PRECISIONS[key]


def place_model(module: nn.Module, device: torch.device, dtype: torch.dtype, name: str, *,
                stacklevel: int = 3) -> None:
    """Move ``module`` to ``device`` in ``dtype``, with the weight layout fastest there.

    Warns (``RuntimeWarning`` at ``stacklevel``, by default the caller of the caller)
    when ``dtype`` runs slower than fp32 on this CPU. Raises :class:`ModelLoadError`
    (naming ``name``) when the move fails, e.g. out of memory.
    """
    advice = slow_precision_advice(device, dtype)
    if advice:
        warnings.warn(advice, RuntimeWarning, stacklevel=stacklevel)
    try:
        module.to(device=device, dtype=dtype)
    except (RuntimeError, torch.cuda.OutOfMemoryError) as error:
        raise ModelLoadError(f"could not move {name} to {device} in {dtype}: {error}") from error
    if wants_transposed_weights(device, dtype):
        store_weights_transposed(module)
