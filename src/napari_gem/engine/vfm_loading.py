"""Building a proxy VFM's timm module: from a local state dict, or from timm's cache.

Everything that can be checked locally is checked before any download, and offline the
caller learns within a few seconds what is missing and where it would be cached (the
hub's own retries would take about a minute). Every failure is one :class:`ModelLoadError`.
"""

from __future__ import annotations

import os

import torch
from torch import nn

from .errors import ModelLoadError, first_line, key_mismatch
from .load_failures import is_network_failure

#: The named proxies: the official ProxyCLIP choices (vfm-methods-spec §1.3) as timm models.
PROXIES = {
    "dino-b16": "vit_base_patch16_224.dino",
    "dino-b8": "vit_base_patch8_224.dino",
    "dinov2-b14-reg": "vit_base_patch14_reg4_dinov2.lvd142m",
}
#: The files timm reads from a weights repository on the hub, in its order.
HUB_FILES = ("model.safetensors", "pytorch_model.bin")


def build_proxy_module(name: str, weights: str | None) -> nn.Module:
    """timm model ``name`` with ``weights`` (a state dict file) or timm's pretrained weights."""
    if weights is not None:
        state = read_timm_state_dict(weights)  # read before anything is built
        module = _create(name, pretrained=False)
        load_strict(module, state, weights, name)
        return module
    check_weights_available(name)
    return _create(name, pretrained=True, **pretrained_from_cache(name))


def _create(name: str, *, pretrained: bool, **kwargs) -> nn.Module:
    import timm

    if not timm.is_model(name):
        raise ModelLoadError(
            f"unknown proxy {name!r}: use one of {', '.join(PROXIES)} or a timm model name "
            "such as vit_small_patch16_224.dino")
    try:
        return timm.create_model(name, pretrained=pretrained, **kwargs)
    except Exception as error:
        raise ModelLoadError(
            f"could not build the proxy {name!r} from timm ({type(error).__name__}: "
            f"{first_line(error)}).{' ' + _cache_advice(name) if is_network_failure(error) else ''}") \
            from error


def read_timm_state_dict(path: str) -> dict[str, torch.Tensor]:
    """The tensors of a timm state dict file (``.safetensors`` or a torch file)."""
    if not os.path.isfile(path):
        raise ModelLoadError(f"proxy weights file {path!r} does not exist")
    try:
        if path.endswith(".safetensors"):
            from safetensors.torch import load_file

            state = load_file(path, device="cpu")
        else:
            state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:
        raise ModelLoadError(
            f"could not read proxy weights {path!r} ({type(error).__name__}: {first_line(error)})"
        ) from error
    for wrapper in ("state_dict", "model"):
        if isinstance(state, dict) and isinstance(state.get(wrapper), dict):
            state = state[wrapper]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ModelLoadError(f"{path!r} is not a state dict of tensors (a timm model's state_dict())")
    return state


def load_strict(module: nn.Module, state: dict[str, torch.Tensor], path: str, name: str) -> None:
    """Load ``state`` with every key accounted for; the message names missing/unexpected keys."""
    mismatch = key_mismatch(set(module.state_dict()), set(state))
    if mismatch:
        raise ModelLoadError(
            f"{path} does not hold the weights of timm model {name!r} ({mismatch}). "
            "Is it a state dict of this architecture?")
    try:
        module.load_state_dict(state, strict=True)
    except RuntimeError as error:
        raise ModelLoadError(
            f"{path} has weights of the wrong shape for timm model {name!r} ({first_line(error)})"
        ) from error


# -- is timm's download possible? -------------------------------------------------------
def hub_repository(name: str) -> str | None:
    """The Hugging Face repository timm downloads ``name``'s weights from (None: a plain URL)."""
    from timm.models import get_pretrained_cfg

    config = get_pretrained_cfg(name)
    if config is None:
        return None
    return (config.hf_hub_id or "").split("@")[0] or None


def cache_folder(repository: str | None) -> str:
    """Where the hub cache keeps ``repository`` (torch hub's folder for URL weights)."""
    if repository is None:
        return os.path.join(torch.hub.get_dir(), "checkpoints")
    from huggingface_hub import constants

    return os.path.join(constants.HF_HUB_CACHE, "models--" + repository.replace("/", "--"))


def _cache_advice(name: str) -> str:
    return (f"Downloaded weights are cached in {cache_folder(hub_repository(name))}. If this machine "
            "is offline, download them on a connected machine (they land in that cache) and copy "
            "the cache folder over, or pass proxy_weights=PATH (a timm state dict file).")


def cached_weights(name: str) -> str | None:
    """The local file of timm's pretrained weights of ``name`` in the hub cache, or None."""
    from huggingface_hub import try_to_load_from_cache

    repository = hub_repository(name)
    if repository is None:
        return None
    for file in HUB_FILES:
        found = try_to_load_from_cache(repository, file)
        if isinstance(found, str) and os.path.isfile(found):
            return found
    return None


def is_cached(name: str) -> bool:
    """Whether timm's pretrained weights of ``name`` are in the local hub cache."""
    return cached_weights(name) is not None


def pretrained_from_cache(name: str) -> dict:
    """``timm.create_model`` keywords that read ``name``'s cached weights file directly ({} when
    not cached): given the hub id, timm asks the hub first and, with no network, waits on its
    retries before falling back to the cache."""
    cached = cached_weights(name)
    return {"pretrained_cfg_overlay": {"file": cached}} if cached else {}


def check_weights_available(name: str) -> None:
    """Return when ``name``'s weights are cached or their host answers; else a clear
    :class:`ModelLoadError` within ``hub.PROBE_TIMEOUT_S`` seconds, before any work."""
    import timm
    from huggingface_hub import constants

    from .families.clip.hub import PROBE_TIMEOUT_S, reachable

    if not timm.is_model(name):
        _create(name, pretrained=False)  # raises the unknown-proxy message
    repository = hub_repository(name)
    if repository is None:
        raise ModelLoadError(f"timm has no pretrained weights for {name!r} on the Hugging Face hub; "
                             "pass proxy_weights=PATH (a timm state dict file)")
    if is_cached(name):
        return
    where = f"the weights of the proxy {name!r} (hub repository {repository}) are not cached"
    if constants.HF_HUB_OFFLINE:
        raise ModelLoadError(f"{where}, and HF_HUB_OFFLINE is set. {_cache_advice(name)}")
    if not reachable(constants.ENDPOINT):
        raise ModelLoadError(f"{where}, and {constants.ENDPOINT} did not answer within "
                             f"{PROBE_TIMEOUT_S:g} s. {_cache_advice(name)}")
