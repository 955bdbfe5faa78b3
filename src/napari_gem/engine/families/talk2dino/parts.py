"""The frozen parts of Talk2DINO: the DINOv2 backbone (timm) and the CLIP text tower (open_clip).

Each comes from its cache, or from a local file (``backbone_weights``: a timm state dict;
``text_weights``: an open_clip checkpoint). Before anything is built, :func:`check_parts`
says in one message, within a few seconds, every part that is neither given nor cached
and cannot be downloaded, and where it would be cached. The backbone is read with the
proxy loaders ProxyCLIP uses (:mod:`napari_gem.engine.vfm_loading`).
"""

from __future__ import annotations

import os

from torch import nn

from ...errors import ModelLoadError, first_line
from ...vfm import ProxyVfm
from ...vfm_loading import (
    cache_folder,
    hub_repository,
    is_cached,
    load_strict,
    pretrained_from_cache,
    read_timm_state_dict,
)
from ..clip.family import cache_folders
from ..clip.hub import PROBE_TIMEOUT_S, cached_hub_file, hub_location, reachable
from .architecture import Talk2DinoArchitecture


def _backbone_missing(architecture: Talk2DinoArchitecture) -> str | None:
    name = architecture.backbone_name
    if is_cached(name):
        return None
    return (f"the DINOv2 backbone {name!r} (hub repository {hub_repository(name)}, cached in "
            f"{cache_folder(hub_repository(name))}; or pass backbone_weights=PATH, a timm state dict)")


def _text_missing(architecture: Talk2DinoArchitecture, cache_dir: str | None) -> str | None:
    hf_hub = hub_location(architecture.text_model, architecture.text_tag)
    if hf_hub and cached_hub_file(hf_hub, cache_dir):
        return None
    return (f"the CLIP text tower {architecture.text_model!r} / {architecture.text_tag!r} "
            f"(hub file {hf_hub or 'unknown'}, cached in {' or '.join(cache_folders(cache_dir))}; "
            "or pass text_weights=PATH, an open_clip checkpoint)")


def missing_parts(architecture: Talk2DinoArchitecture, backbone_weights: str | None,
                  text_weights: str | None, cache_dir: str | None = None) -> list[str]:
    """What must be downloaded: each frozen part neither given as a file nor cached."""
    return [what for what in (
        None if backbone_weights else _backbone_missing(architecture),
        None if text_weights else _text_missing(architecture, cache_dir)) if what]


def check_parts(architecture: Talk2DinoArchitecture, backbone_weights: str | None,
                text_weights: str | None, cache_dir: str | None = None) -> None:
    """Return when both frozen parts can be built without waiting on an absent network.

    Files must exist; cached weights need nothing; otherwise one probe (at most
    ``PROBE_TIMEOUT_S`` seconds) tells whether the hub answers. A :class:`ModelLoadError`
    names every missing part and where it would be cached.
    """
    for label, path in (("backbone_weights", backbone_weights), ("text_weights", text_weights)):
        if path is not None and not os.path.isfile(path):
            raise ModelLoadError(f"Talk2DINO {label} file {path!r} does not exist")
    missing = missing_parts(architecture, backbone_weights, text_weights, cache_dir)
    if not missing:
        return
    from huggingface_hub import constants

    if constants.HF_HUB_OFFLINE:
        why = "HF_HUB_OFFLINE is set"
    elif not reachable(constants.ENDPOINT):
        why = f"{constants.ENDPOINT} did not answer within {PROBE_TIMEOUT_S:g} s"
    else:
        return  # they will download
    raise ModelLoadError(
        f"Talk2DINO needs weights that are not on this machine, and {why}: "
        + "; ".join(missing) + ". Download them on a connected machine (they land in those "
        "caches) and copy the cache folders over, or give the local files.")


def build_backbone(architecture: Talk2DinoArchitecture, weights: str | None, *,
                   random: bool = False) -> ProxyVfm:
    """The DINOv2 backbone as a :class:`~napari_gem.engine.vfm.ProxyVfm` (its own module,
    not the process's shared ProxyCLIP proxy: the model moves it to its device).
    ``random``: random weights when no file is given (tests, benchmarks)."""
    import timm

    overrides = dict(architecture.backbone_overrides, num_classes=0)
    try:
        if weights is not None:
            state = read_timm_state_dict(weights)  # read before anything is built
            module = timm.create_model(architecture.backbone, pretrained=False, **overrides)
            load_strict(module, state, weights, architecture.backbone)
        else:
            cached = {} if random else pretrained_from_cache(architecture.backbone_name)  # no hub request
            module = timm.create_model(architecture.backbone if random else architecture.backbone_name,
                                       pretrained=not random, **overrides, **cached)
    except ModelLoadError:
        raise
    except Exception as error:
        raise ModelLoadError(
            f"could not build Talk2DINO's DINOv2 backbone {architecture.backbone_name!r} "
            f"({type(error).__name__}: {first_line(error)})") from error
    return ProxyVfm(module, architecture.backbone_name, weights)


def build_text_tower(architecture: Talk2DinoArchitecture, weights: str | None,
                     cache_dir: str | None = None, *, random: bool = False) -> nn.Module:
    """The open_clip CLIP of ``architecture.text_model`` with its vision tower dropped
    (``random``: random weights when no file is given)."""
    import open_clip

    from ..clip.hub import HubUnreachable, weights_source

    try:
        source = weights or (None if random else weights_source(
            architecture.text_model, architecture.text_tag, cache_dir))
        model = open_clip.create_model(architecture.text_model, pretrained=source, cache_dir=cache_dir)
    except HubUnreachable as error:
        raise ModelLoadError(f"{_text_missing(architecture, cache_dir)} could not be loaded: "
                             f"{error}") from error
    except Exception as error:
        raise ModelLoadError(
            f"could not build Talk2DINO's CLIP text tower {architecture.text_model!r} from "
            f"{weights or architecture.text_tag!r} ({type(error).__name__}: {first_line(error)}). "
            "text_weights must be an open_clip checkpoint of that model.") from error
    model.visual = nn.Identity()  # only the text side is used
    return model
