"""Reading and writing SimZSS checkpoints in the released key layout.

The released files are flat state dicts saved from a DDP model (keys may start with
``module.``)::

    logit_scale                    learned global scale (log)
    logit_scale_local              fixed dense-loss scale, log(1/0.07)      (ignored)
    classification_weights_ema     last batch's concept prototypes          (ignored)
    beta_ema                       EMA factor, 0                            (ignored)
    visual.pos_embed               denoiser position table [1, 37*37, 768]
    visual.denoiser.*              one timm Block (absent: no denoiser)
    visual.vit.model.*             timm DINOv2 ViT (absent: timm's pretrained weights)
    text.*                         open_clip TextTransformer

Reading tries ``torch.load(weights_only=True)`` first; keys are checked strictly, and
the message names what is missing or unexpected.
"""

from __future__ import annotations

import math
import os
import pickle
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import torch

from ...errors import ModelLoadError, key_mismatch

VIT_PREFIX = "visual.vit.model."
DENOISER_PREFIX = "visual.denoiser."
DENOISER_POSITION = "visual.pos_embed"
TEXT_PREFIX = "text."
LOGIT_SCALE = "logit_scale"
LOCAL_LOGIT_SCALE = "logit_scale_local"
#: Training-time buffers of the released model that inference does not need.
IGNORED_KEYS = ("classification_weights_ema", "beta_ema", LOCAL_LOGIT_SCALE)
DDP_PREFIX = "module."


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0][:300] if text else type(error).__name__


def _torch_load(path: Path) -> object:
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        # The official README loads with weights_only=False; a file that needs it
        # (pickled non-tensor objects) is read that way, with a warning.
        warnings.warn(
            f"{path.name} could not be read with weights_only=True ({_first_line(error)[:120]}); "
            "retrying with weights_only=False, which runs pickled code: only use files you trust.",
            stacklevel=3,
        )
        return torch.load(path, map_location="cpu", weights_only=False)


def read_state_dict(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """The flat state dict of a checkpoint file, ``module.`` prefixes removed."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise ModelLoadError(f"SimZSS checkpoint file not found: {path}")
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            loaded = load_file(str(path))
        else:
            loaded = _torch_load(path)
    except Exception as error:
        raise ModelLoadError(
            f"could not read {path} as a SimZSS checkpoint ({type(error).__name__}: "
            f"{_first_line(error)}). Is the file complete (not a partial download)?"
        ) from error
    if isinstance(loaded, Mapping) and isinstance(loaded.get("state_dict"), Mapping):
        loaded = loaded["state_dict"]  # a training snapshot {epoch, state_dict, optimizer}
    if not isinstance(loaded, Mapping) or not all(
        isinstance(key, str) and isinstance(value, torch.Tensor) for key, value in loaded.items()
    ):
        raise ModelLoadError(f"{path} is not a SimZSS checkpoint: it holds no state dict of tensors")
    return {key.removeprefix(DDP_PREFIX): value for key, value in loaded.items()}


def _sub(state: Mapping[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    return {key[len(prefix):]: value for key, value in state.items() if key.startswith(prefix)}


@dataclass
class SimZSSWeights:
    """A checkpoint split into its modules' state dicts (``None``: the part is absent)."""

    text: dict[str, torch.Tensor]
    logit_scale: torch.Tensor
    vit: dict[str, torch.Tensor] | None
    denoiser: dict[str, torch.Tensor] | None
    denoiser_position: torch.Tensor | None


def split_weights(
    state: Mapping[str, torch.Tensor],
    *,
    text_keys: set[str],
    vit_keys: set[str],
    denoiser_keys: set[str],
    source: str,
) -> SimZSSWeights:
    """Check ``state`` strictly against the modules' keys and split it per module.

    The ViT and the denoiser are each all-or-nothing: absent means timm's pretrained
    ViT, or no denoiser. Anything else missing, or any key no module knows, is an error
    that names the keys.
    """
    expected = {TEXT_PREFIX + key for key in text_keys} | {LOGIT_SCALE}
    has_vit = any(key.startswith(VIT_PREFIX) for key in state)
    has_denoiser = any(key.startswith(DENOISER_PREFIX) for key in state)
    if has_vit:
        expected |= {VIT_PREFIX + key for key in vit_keys}
    if has_denoiser:
        expected |= {DENOISER_PREFIX + key for key in denoiser_keys} | {DENOISER_POSITION}
    known = expected | set(IGNORED_KEYS) | {DENOISER_POSITION}
    mismatch = key_mismatch(expected, set(state), known)
    if mismatch:
        raise ModelLoadError(
            f"{source} does not match the SimZSS layout ({mismatch}). "
            "Is it a SimZSS checkpoint of this architecture?"
        )
    return SimZSSWeights(
        text=_sub(state, TEXT_PREFIX),
        logit_scale=state[LOGIT_SCALE],
        vit=_sub(state, VIT_PREFIX) if has_vit else None,
        denoiser=_sub(state, DENOISER_PREFIX) if has_denoiser else None,
        denoiser_position=state[DENOISER_POSITION] if has_denoiser else None,
    )


def released_state_dict(network, *, include_vit: bool = True) -> dict[str, torch.Tensor]:
    """A :class:`~.model.SimZSSNetwork`'s weights in the released layout (no ``module.``).

    ``include_vit=False`` leaves the frozen DINOv2 weights out (a smaller file; loading
    it then takes them from timm's pretrained weights).
    """
    def prefixed(prefix: str, module) -> dict[str, torch.Tensor]:
        return {prefix + key: value.detach().clone() for key, value in module.state_dict().items()}

    state: dict[str, torch.Tensor] = {
        LOGIT_SCALE: network.logit_scale.detach().clone(),
        LOCAL_LOGIT_SCALE: torch.tensor([math.log(1 / 0.07)]),
    }
    if network.denoiser is not None:
        state[DENOISER_POSITION] = network.denoiser_position.detach().clone()
        state.update(prefixed(DENOISER_PREFIX, network.denoiser))
    if include_vit:
        state.update(prefixed(VIT_PREFIX, network.vit))
    state.update(prefixed(TEXT_PREFIX, network.text))
    return state
