"""Building a :class:`GroundingModel` from an open_clip model name, weights and a method.

Weights come through open_clip's own download and cache, or from a local checkpoint
file. Every failure becomes one :class:`ModelLoadError` that says what was asked for,
where weights are cached and how to work offline.
"""

from __future__ import annotations

import difflib
import os
import warnings
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .cpu_precision import slow_precision_advice, store_weights_transposed, wants_transposed_weights
from .hub import weights_source
from .methods import create_method
from .model import GroundingModel
from .vision import UnsupportedModelError

#: The ViT architectures the GEM authors evaluated (and their QuickGELU twins).
SUPPORTED_ARCHITECTURES: tuple[str, ...] = (
    "ViT-B-32",
    "ViT-B-16",
    "ViT-B-16-plus-240",
    "ViT-L-14",
    "ViT-L-14-336",
)
#: Pretraining families the authors list: OpenAI, LAION-400M / 2B, MetaCLIP.
SUPPORTED_TAG_PREFIXES: tuple[str, ...] = ("openai", "laion", "metaclip")

PRECISIONS: dict[str, torch.dtype] = {
    "fp32": torch.float32,
    "float32": torch.float32,
    "bf16": torch.bfloat16,
    "bfloat16": torch.bfloat16,
    "fp16": torch.float16,
    "float16": torch.float16,
}

CHECKPOINT_SUFFIXES = (".pt", ".pth", ".bin", ".safetensors", ".ckpt")


class ModelLoadError(RuntimeError):
    """The model could not be built; the message says why and what to do."""


def supported_models() -> dict[str, list[str]]:
    """Model name -> pretrained tags, for the architectures and families GEM was evaluated on."""
    import open_clip

    wanted = set(SUPPORTED_ARCHITECTURES) | {f"{a}-quickgelu" for a in SUPPORTED_ARCHITECTURES}
    models: dict[str, list[str]] = {}
    for name, tag in open_clip.list_pretrained():
        if name in wanted and tag.startswith(SUPPORTED_TAG_PREFIXES):
            models.setdefault(name, []).append(tag)
    return models


def cache_folders(cache_dir: str | os.PathLike | None = None) -> list[str]:
    """Where open_clip keeps downloaded weights (``cache_dir`` when given)."""
    if cache_dir:
        return [str(Path(cache_dir).expanduser())]
    from huggingface_hub import constants

    return [str(constants.HF_HUB_CACHE), os.path.expanduser("~/.cache/clip")]


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
    """``None`` means fp32 on the CPU, bf16 (or fp16) on a GPU that supports it."""
    if precision is None:
        if device.type == "cuda":
            return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        if device.type == "mps":
            return torch.float16
        return torch.float32
    key = str(precision).lower().removeprefix("torch.")
    if key not in PRECISIONS:
        raise ModelLoadError(f"unknown precision {precision!r}: use fp32, bf16 or fp16")
    return PRECISIONS[key]


def _looks_like_file(pretrained: str) -> bool:
    return (
        os.sep in pretrained
        or "/" in pretrained
        or pretrained.lower().endswith(CHECKPOINT_SUFFIXES)
        or Path(pretrained).expanduser().exists()
    )


def _check_name_and_tag(name: str, pretrained: str | None) -> None:
    import open_clip

    known = open_clip.list_models()
    if name not in known:
        close = difflib.get_close_matches(name, known, n=3)
        hint = f" Did you mean {', '.join(close)}?" if close else ""
        raise ModelLoadError(f"unknown open_clip model {name!r}.{hint}")
    if pretrained is None or _looks_like_file(pretrained):
        return
    tags = open_clip.list_pretrained_tags_by_model(name)
    if pretrained not in tags:
        listed = ", ".join(tags) if tags else "none"
        raise ModelLoadError(
            f"unknown pretrained tag {pretrained!r} for {name} (known tags: {listed}); "
            "or give the path of a local checkpoint file."
        )


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0][:300] if text else ""


def _check_architecture(name: str) -> None:
    """Refuse non-ViT towers before any weights are downloaded."""
    import open_clip

    vision = (open_clip.get_model_config(name) or {}).get("vision_cfg", {})
    if vision.get("timm_model_name") or isinstance(vision.get("layers"), (list, tuple)):
        raise ModelLoadError(
            f"{name} does not have a plain open_clip vision transformer (ResNet, ConvNeXt "
            "and timm towers are not supported by GEM). Choose a ViT model such as ViT-B-16."
        )


def _offline_help(name: str, pretrained: str, cache_dir) -> str:
    folders = " or ".join(cache_folders(cache_dir))
    return (
        f"could not load weights for model {name!r} with pretrained tag {pretrained!r}. "
        f"Downloaded weights are cached in {folders}. If this machine is offline, download "
        "them on a connected machine (they land in that cache), copy the cache folder over, "
        "or pass the path of a local checkpoint file as `pretrained` (in napari: Model > "
        "checkpoint file)."
    )


def _build_clip(name: str, pretrained: str | None, cache_dir) -> tuple:
    import open_clip

    if pretrained is not None and _looks_like_file(pretrained):
        path = Path(pretrained).expanduser()
        if not path.is_file():
            raise ModelLoadError(f"checkpoint file not found: {path}")
        try:
            model = open_clip.create_model(name, pretrained=str(path))
        except Exception as error:
            raise ModelLoadError(
                f"could not read checkpoint file {path} as weights for {name!r} "
                f"({type(error).__name__}: {_first_line(error)}). Is it a complete "
                "open_clip / CLIP checkpoint of this architecture?"
            ) from error
    else:
        try:
            # Cached weights load from their file with no network call; uncached ones
            # with no network fail here in seconds rather than after a minute of retries.
            source = weights_source(name, pretrained, cache_dir) if pretrained else pretrained
            model = open_clip.create_model(name, pretrained=source, cache_dir=cache_dir)
        except Exception as error:
            raise ModelLoadError(
                f"{_offline_help(name, pretrained, cache_dir)} "
                f"({type(error).__name__}: {_first_line(error)})"
            ) from error
    return model, open_clip.get_tokenizer(name, cache_dir=cache_dir)


def default_method(name: str) -> str:
    """The method a model runs when none is named: SimZSS's own for SimZSS models, else GEM."""
    from .simzss import is_simzss_name

    return "simzss" if is_simzss_name(name) else "gem"


def load_model(
    name: str = "ViT-B-16",
    pretrained: str | os.PathLike | None = "openai",
    *,
    device: str | torch.device = "auto",
    precision: str | None = None,
    cache_dir: str | os.PathLike | None = None,
    method: str | None = None,
    **method_options: Any,
) -> GroundingModel:
    """Build a dense method (GEM by default) on an open_clip ViT CLIP.

    ``pretrained`` is an open_clip tag (downloaded once into open_clip's cache), the
    path of a local checkpoint file, or ``None`` for random weights (testing only).
    ``device="auto"`` picks CUDA, then MPS, then CPU; ``precision=None`` means fp32
    on the CPU and bf16/fp16 on a GPU. ``method`` is a name from
    :func:`napari_gem.methods` (``None``: GEM; SimZSS models have their own) and
    ``method_options`` its options (e.g. GEM's
    ``depth``, ``iterations``, ``temperature``; NACLIP's ``sigma``), validated before
    anything is downloaded. Raises :class:`ModelLoadError` with a message fit for a user
    on any failure, and leaves nothing half-built behind.
    """
    from .simzss import is_simzss_name, load_simzss

    if is_simzss_name(name):  # not an open_clip model: no CLIP method applies
        return load_simzss(name, pretrained, device=device, precision=precision, cache_dir=cache_dir,
                           method=method, **method_options)
    try:
        dense_method = create_method(method or "gem", **method_options)
    except (TypeError, ValueError) as error:
        raise ModelLoadError(str(error)) from error
    pretrained = os.fspath(pretrained) if pretrained is not None else None
    cache_dir = os.fspath(cache_dir) if cache_dir is not None else None
    target_device = resolve_device(device)
    dtype = resolve_precision(precision, target_device)
    _check_name_and_tag(name, pretrained)
    _check_architecture(name)
    model, tokenizer = _build_clip(name, pretrained, cache_dir)
    try:
        grounding = GroundingModel(model, tokenizer, dense_method, name=name, pretrained=pretrained)
    except (UnsupportedModelError, ValueError) as error:
        raise ModelLoadError(f"{name}: {error}") from error
    model.eval().requires_grad_(False)
    place_model(model, target_device, dtype, name)
    return grounding


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
