"""Building SimZSS from a checkpoint file (``load_model("SimZSS-ViT-B-14", "checkpoint.pth")``).

Everything is built and checked locally before a model is returned, so a failure
leaves nothing half-loaded; every failure is one :class:`ModelLoadError`.
"""

from __future__ import annotations

import os

import torch

from ...devices import place_model, resolve_device, resolve_precision
from ...errors import ModelLoadError
from ...load_failures import is_network_failure
from ..base import refuse_foreign_method
from ..clip.family import cache_folders
from .architecture import (
    SimZSSArchitecture,
    build_denoiser,
    build_text,
    build_vit,
    get_architecture,
    get_tokenizer,
    initial_logit_scale,
)
from .checkpoint import DENOISER_PREFIX, VIT_PREFIX, read_state_dict, split_weights
from .model import SimZSSModel, SimZSSNetwork

METHOD = "simzss"
TITLE = "SimZSS"



def new_network(
    architecture: SimZSSArchitecture, *, denoiser: bool = True, pretrained_vit: bool = False
) -> SimZSSNetwork:
    """Freshly initialised modules (the ViT from timm's pretrained weights when asked)."""
    block, table = build_denoiser(architecture) if denoiser else (None, None)
    return SimZSSNetwork(
        architecture, build_vit(architecture, pretrained=pretrained_vit), build_text(architecture),
        initial_logit_scale(), denoiser=block, denoiser_position=table,
    )


def _pretrained_vit_help(architecture: SimZSSArchitecture, error: BaseException) -> str:
    folders = " or ".join(cache_folders(None))
    first = (str(error).strip().splitlines() or [type(error).__name__])[0][:300]
    offline = (f" Downloaded weights are cached in {folders}. This machine is offline or could not reach the "
               "hub: download them on a connected machine (they land in that cache) and copy the "
               "cache folder over, or") if is_network_failure(error) else " Or"
    return (
        f"this checkpoint holds no DINOv2 weights (no '{VIT_PREFIX}*' keys), so they come from "
        f"timm ({architecture.vit_name}.{architecture.vit_pretrained_tag}), and those could not "
        f"be loaded.{offline} use a SimZSS checkpoint file that includes the vision weights "
        f"({type(error).__name__}: {first})"
    )


def _load_weights(network: SimZSSNetwork, weights, source: str, name: str) -> None:
    try:
        network.text.load_state_dict(weights.text, strict=True)
        if weights.vit is not None:
            network.vit.load_state_dict(weights.vit, strict=True)
        if weights.denoiser is not None:
            network.denoiser.load_state_dict(weights.denoiser, strict=True)
            network.denoiser_position.data.copy_(weights.denoiser_position.reshape(
                network.denoiser_position.shape))
        network.logit_scale.data.copy_(weights.logit_scale.reshape(()))
    except RuntimeError as error:
        first = (str(error).strip().splitlines() or [""])[0][:300]
        detail = " ".join(line.strip() for line in str(error).splitlines()[1:3])
        raise ModelLoadError(
            f"{source} has weights of the wrong shape for {name} ({first} {detail}). "
            "Is it a checkpoint of this architecture?"
        ) from error


def load_simzss(
    name: str,
    pretrained: str | os.PathLike | None,
    *,
    device: str | torch.device = "auto",
    precision: str | None = None,
    method: str | None = None,
    **options,
) -> SimZSSModel:
    """SimZSS ``name`` from a checkpoint file in the released layout, on ``device`` in ``precision``.

    ``pretrained`` is the checkpoint path, or ``None`` for random weights (tests and
    benchmarks). ``method`` may only be ``"simzss"`` (or ``None``); GEM and CLIP-method
    options are refused with a clear message. ``napari_gem.load_model`` does the same.
    """
    refuse_foreign_method(TITLE, METHOD, name, method, options)
    target_device = resolve_device(device)
    dtype = resolve_precision(precision, target_device)
    model = build_simzss(name, pretrained)
    place_model(model.network, target_device, dtype, name)
    return model


def build_simzss(name: str, pretrained: str | os.PathLike | None) -> SimZSSModel:
    """SimZSS ``name`` on the CPU in float32, from a checkpoint (``None``: random weights).

    Everything is read and checked before any download, and a failure leaves nothing
    half-loaded; every failure is one :class:`ModelLoadError`.
    """
    try:
        architecture = get_architecture(name)
    except KeyError as error:
        raise ModelLoadError(str(error.args[0])) from None
    path = os.fspath(pretrained) if pretrained is not None else None
    state = read_state_dict(path) if path is not None else None
    with_denoiser = state is None or any(key.startswith(DENOISER_PREFIX) for key in state)
    network = new_network(architecture, denoiser=with_denoiser)
    if state is not None:
        weights = split_weights(  # checked before anything is downloaded
            state,
            text_keys=set(network.text.state_dict()),
            vit_keys=set(network.vit.state_dict()),
            denoiser_keys=set(network.denoiser.state_dict()) if with_denoiser else set(),
            source=str(path),
        )
        if weights.vit is None:
            try:
                network.vit = build_vit(architecture, pretrained=True)
            except Exception as error:
                raise ModelLoadError(_pretrained_vit_help(architecture, error)) from error
        _load_weights(network, weights, str(path), name)
    network.eval().requires_grad_(False)
    return SimZSSModel(network, get_tokenizer(), name=name, pretrained=path)
