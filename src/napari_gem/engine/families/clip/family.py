"""The open_clip family: every model open_clip knows by name, with its tags or a local file.

Weights come through open_clip's own download and cache (the local cache first, see
:mod:`.hub`), or from a local checkpoint file. This family claims any name the others
leave, so an unknown name gets open_clip's "did you mean" answer.
"""

from __future__ import annotations

import difflib
import os
import threading
from pathlib import Path

from ...errors import ModelLoadError, UnsupportedModelError, first_line
from ...load_failures import is_network_failure, weights_mismatch
from ...paths import is_weights_path
from ..base import ByteReport, CatalogueEntry, LoadRequest, ModelFamily
from ..registry import register_family
from . import hub
from .catalogue import curated_entries
from .methods import create_method
from .model import GroundingModel
from .text_tower import open_clip_tokenizer, text_tower_kwargs
from .trained import activation_kwargs, activation_label, trained_normalisation, trained_quick_gelu

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
#: What an offline user can load with no download at all.
OFFLINE_HINT = (
    "To try napari-gem with no download, choose the packaged demo model "
    "('napari-gem-demo-micrographs'; `napari-gem --demo`), which works offline."
)


_registered_configs: set[str] = set()
_registering = threading.Lock()


def register_model_configs(paths: tuple[str, ...]) -> None:
    """Add open_clip model-config JSON files (or folders of them), each once per process."""
    if not paths:
        return
    import open_clip

    with _registering:
        for path in paths:
            if path in _registered_configs:
                continue
            if not Path(path).exists():
                raise ModelLoadError(f"open_clip model config not found: {path}")
            open_clip.add_model_config(path)
            _registered_configs.add(path)


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


def offline_help(name: str, pretrained: str, cache_dir) -> str:
    """What to do when ``name``/``pretrained`` could not be fetched."""
    folders = " or ".join(cache_folders(cache_dir))
    return (
        f"could not load weights for model {name!r} with pretrained tag {pretrained!r}. "
        f"Downloaded weights are cached in {folders}. If this machine is offline, download "
        "them on a connected machine (they land in that cache), copy the cache folder over, "
        "or pass the path of a local checkpoint file as `pretrained` (in napari: Model > "
        f"checkpoint file). {OFFLINE_HINT}"
    )


def _check_architecture(name: str) -> None:
    """Refuse non-ViT towers before any weights are downloaded."""
    import open_clip

    vision = (open_clip.get_model_config(name) or {}).get("vision_cfg", {})
    timm_name = vision.get("timm_model_name") or ""
    timm_vit = timm_name.startswith(("vit_", "eva", "deit")) and not timm_name.startswith("vitamin")
    if timm_name and not timm_vit:  # also a ViT when built by timm's ViT or Eva module
        import timm

        entry = timm.models.is_model(timm_name) and timm.models.model_entrypoint(timm_name)
        timm_vit = bool(entry) and entry.__module__ in ("timm.models.vision_transformer", "timm.models.eva")
    if (timm_name and not timm_vit) or isinstance(vision.get("layers"), (list, tuple)):
        raise ModelLoadError(
            f"{name} does not have a vision transformer (ResNet, ConvNeXt and other "
            "convolutional towers are not supported by the dense methods). Choose a ViT "
            "model such as ViT-B-16, ViT-B-16-SigLIP2 or EVA02-B-16."
        )


@register_family
class OpenClipFamily(ModelFamily):
    """open_clip's own CLIP vision transformers, by open_clip model name."""

    name = "open_clip"
    title = "open_clip CLIP"
    summary = "open_clip ViT CLIPs by name (ViT-B-16, ViT-L-14, ...), with a pretrained tag or a file"
    priority = 100  # claims every name, so it is asked last

    def claims(self, name: str) -> bool:
        return isinstance(name, str) and bool(name)

    def model_names(self) -> list[str]:
        return list(supported_models())

    def catalogue(self) -> list[CatalogueEntry]:
        return super().catalogue() + curated_entries(self.name)

    def pretrained_tags(self, name: str) -> list[str]:
        import open_clip

        tags = supported_models().get(name)
        if tags is None:
            tags = open_clip.list_pretrained_tags_by_model(name) if name in open_clip.list_models() else []
        return list(tags)

    def default_pretrained(self, name: str) -> str | None:
        """``openai`` where ``name`` has that tag, else its first tag (None: a file is needed)."""
        tags = self.pretrained_tags(name)
        return "openai" if "openai" in tags else (tags[0] if tags else None)

    def weights_note(self, name: str, pretrained: str | None) -> str:
        return activation_label(name, pretrained)

    def check(self, name: str, pretrained: str | None) -> None:
        import open_clip

        known = open_clip.list_models()
        if name not in known:
            close = difflib.get_close_matches(name, known, n=3)
            hint = f" Did you mean {', '.join(close)}?" if close else ""
            raise ModelLoadError(f"unknown open_clip model {name!r}.{hint}")
        if pretrained is not None and not is_weights_path(pretrained):
            tags = open_clip.list_pretrained_tags_by_model(name)
            if pretrained not in tags:
                listed = ", ".join(tags) if tags else "none"
                raise ModelLoadError(
                    f"unknown pretrained tag {pretrained!r} for {name} (known tags: {listed}); "
                    "or give the path of a local checkpoint file."
                )
        _check_architecture(name)

    def build(self, request: LoadRequest) -> GroundingModel:
        import open_clip

        name, pretrained, cache_dir = request.name, request.pretrained, request.cache_dir
        config = open_clip.get_model_config(name) or {}
        local = _text_files_cached(name, config, cache_dir)
        model = _create(name, pretrained, cache_dir, text_tower_kwargs(config, cache_dir, local=local))
        try:
            tokenizer = open_clip_tokenizer(name, config, cache_dir, local=local)
        except Exception as error:
            raise ModelLoadError(f"could not load the tokenizer of {name} ({type(error).__name__}: "
                                 f"{first_line(error)})") from error
        try:
            grounding = GroundingModel(model, tokenizer,
                                       request.dense_method or create_method(self.default_method),
                                       name=name, pretrained=pretrained)
        except (UnsupportedModelError, ValueError) as error:
            raise ModelLoadError(f"{name}: {error}") from error
        model.eval().requires_grad_(False)
        return grounding

    def is_cached(self, name: str, pretrained: str | None, cache_dir=None) -> bool:
        if pretrained is None or is_weights_path(pretrained):
            return True
        return hub.is_cached(name, pretrained, cache_dir)

    def fetch(self, name: str, pretrained: str | None, report: ByteReport, cache_dir=None) -> None:
        if self.is_cached(name, pretrained, cache_dir):
            return
        try:
            hub.fetch_weights(name, pretrained, report, cache_dir)
        except hub.HubUnreachable as error:
            raise ModelLoadError(f"{offline_help(name, pretrained, cache_dir)} ({error})") from error


def _text_files_cached(name: str, config: dict, cache_dir) -> bool:
    """Whether a Hugging Face tokenizer or text tower (SigLIP-style models) is all in the cache
    (then it loads from there with no hub request); offline and uncached, fail at once."""
    missing = hub.text_tower_missing(config, cache_dir, None)
    reason = hub.offline_reason() if missing else None
    if reason:
        folders = " or ".join(cache_folders(cache_dir))
        raise ModelLoadError(
            f"could not load {name}: not in the cache ({'; '.join(missing)}), and {reason}. "
            f"Downloads are cached in {folders}; fetch them on a connected machine (see "
            f"docs/models.md) and copy that folder over. {OFFLINE_HINT}")
    return not missing


def _create(name: str, pretrained: str | None, cache_dir: str | None, text_tower: dict):
    """open_clip's model ``name`` with weights from a tag (cache first) or a local file, built
    with the activation and pixel normalisation its weights were trained with."""
    built_as = {**activation_kwargs(name, trained_quick_gelu(name, pretrained)), **text_tower}
    model = _create_with_weights(name, pretrained, cache_dir, built_as)
    normalisation = trained_normalisation(name, pretrained)
    if normalisation is not None:
        model.visual.preprocess_cfg = {**getattr(model.visual, "preprocess_cfg", {}), **normalisation}
    return model


def _create_with_weights(name: str, pretrained: str | None, cache_dir: str | None, built_as: dict):
    import open_clip

    if pretrained is not None and is_weights_path(pretrained):
        path = Path(pretrained).expanduser()
        if not path.is_file():
            raise ModelLoadError(f"checkpoint file not found: {path}")
        try:
            return open_clip.create_model(name, pretrained=str(path), **built_as)
        except Exception as error:
            mismatch = weights_mismatch(error)
            if mismatch:
                raise ModelLoadError(f"checkpoint file {path} does not fit the {name} architecture: "
                                     f"{mismatch}") from error
            raise ModelLoadError(
                f"could not read checkpoint file {path} as weights for {name!r} "
                f"({type(error).__name__}: {first_line(error)}). Is it a complete "
                "open_clip / CLIP checkpoint of this architecture?"
            ) from error
    try:
        # Cached weights load from their file with no network call; uncached ones
        # with no network fail here in seconds rather than after a minute of retries.
        source = hub.weights_source(name, pretrained, cache_dir) if pretrained else pretrained
        return open_clip.create_model(name, pretrained=source, cache_dir=cache_dir, **built_as)
    except Exception as error:
        raise ModelLoadError(_weights_failure(name, pretrained, cache_dir, error)) from error


def _weights_failure(name: str, pretrained: str | None, cache_dir, error: BaseException) -> str:
    """Why the weights tagged ``pretrained`` did not load: a mismatch with the architecture, the
    network (only then the offline advice), or the error itself."""
    mismatch = weights_mismatch(error)
    if mismatch:
        return f"the {pretrained} weights do not fit the {name} architecture: {mismatch}"
    if is_network_failure(error):
        return f"{offline_help(name, pretrained, cache_dir)} ({type(error).__name__}: {first_line(error)})"
    return (f"could not load {name} with the {pretrained} weights "
            f"({type(error).__name__}: {first_line(error)})")
