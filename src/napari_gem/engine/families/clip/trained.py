"""What an open_clip (name, tag) pair was trained with: activation, pixel normalisation.

open_clip records both in a tag's pretrained config (``quick_gelu``, ``mean``/``std``) and
applies them only when it downloads the tag itself. We hand it the cached weights *file*
(see :mod:`.hub`), so the family applies them here. For a checkpoint file the values every
tag of the architecture shares are used (a SigLIP file was trained as its tags were); where
the tags disagree the name decides (``ViT-B-16``: GELU, ``ViT-B-16-quickgelu``: QuickGELU),
with a warning naming the twin.
"""

from __future__ import annotations

import warnings

from ...paths import is_weights_path

QUICK_GELU_SUFFIX = "-quickgelu"


def _tag_configs(name: str, pretrained: str) -> dict[str, dict]:
    """Tag -> pretrained config: the tag itself, or every tag of ``name`` for a weights file."""
    import open_clip

    tags = open_clip.list_pretrained_tags_by_model(name) if is_weights_path(pretrained) else [pretrained]
    return {tag: open_clip.get_pretrained_cfg(name, tag) or {} for tag in tags}


def trained_normalisation(name: str, pretrained: str | None) -> dict | None:
    """``{"mean", "std"}`` of the tag ``pretrained``; for a weights file, those every tag of
    ``name`` shares; None for random weights (or when the tags disagree)."""
    if pretrained is None:
        return None
    found = {(tuple(config["mean"]), tuple(config["std"]))
             for config in _tag_configs(name, pretrained).values()
             if config.get("mean") and config.get("std")}
    if len(found) != 1:
        return None
    mean, std = found.pop()
    return {"mean": mean, "std": std}


def configured_quick_gelu(name: str) -> bool:
    """Whether open_clip's own config of ``name`` builds QuickGELU."""
    import open_clip

    return bool((open_clip.get_model_config(name) or {}).get("quick_gelu", False))


def quick_gelu_twin(name: str) -> str | None:
    """The ``-quickgelu`` model name that builds ``name`` with QuickGELU (None when there is none)."""
    import open_clip

    twin = name if name.endswith(QUICK_GELU_SUFFIX) else name + QUICK_GELU_SUFFIX
    return twin if twin in open_clip.list_models() else None


def trained_quick_gelu(name: str, pretrained: str | None) -> bool:
    """Whether ``name`` with ``pretrained`` must run QuickGELU, as its weights were trained.

    A tag: its ``quick_gelu``. A weights file: the value every tag of ``name`` shares;
    where they disagree, the name's own config (and a warning naming the twin). Random
    weights and untagged names: the name's own config.
    """
    own = configured_quick_gelu(name)
    if pretrained is None:
        return own
    configs = _tag_configs(name, pretrained)
    found = {tag: bool(config.get("quick_gelu", False)) for tag, config in configs.items() if config}
    if not found:
        return own
    values = set(found.values())
    if len(values) == 1:
        return values.pop()
    quick = sorted(tag for tag, value in found.items() if value)
    twin = quick_gelu_twin(name)
    warnings.warn(
        f"{name}'s tags were trained with two activations (QuickGELU: {', '.join(quick)}; GELU: "
        f"the others), and a checkpoint file does not say which. Running {name} with "
        f"{'QuickGELU' if own else 'GELU'}, as its name says; if the file holds weights trained "
        f"as those QuickGELU tags were, load it as {twin or 'the -quickgelu model'}.",
        UserWarning, stacklevel=3)
    return own


def activation_kwargs(name: str, quick_gelu: bool) -> dict:
    """``open_clip.create_model`` keywords that build ``name`` with (or without) QuickGELU."""
    if quick_gelu == configured_quick_gelu(name):
        return {}
    # force_quick_gelu also tells open_clip's tag check that the activation is meant.
    return {"force_quick_gelu": True} if quick_gelu else {"quick_gelu": False}


def activation_label(name: str, pretrained: str | None) -> str:
    """How a picker shows the activation of ``name``/``pretrained`` (empty when the name says it)."""
    with warnings.catch_warnings():  # a label, not a load: the warning belongs to the load
        warnings.simplefilter("ignore")
        quick = trained_quick_gelu(name, pretrained)
    if quick == configured_quick_gelu(name):
        return ""
    twin = quick_gelu_twin(name) if quick else name.removesuffix(QUICK_GELU_SUFFIX)
    return f"QuickGELU, runs as {twin}" if quick else f"GELU, runs as {twin}"
