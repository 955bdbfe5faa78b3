"""Hugging Face ``transformers`` CLIP and SigLIP models: ``transformers:ORG/REPO`` or ``transformers:/path``.

PLIP (``vinid/plip``), PubMedCLIP and many others are published as ``transformers``
``CLIPModel``s rather than open_clip checkpoints. The vision tower runs through the
trunk adapter (:mod:`.clip.trunks.transformers_vit`); the text side uses the model's
own tokenizer and text tower. ``transformers`` is an optional extra
(``pip install napari-gem[transformers]``). Before anything loads, the Hugging Face
cache is checked; with anything missing and no reachable hub, loading fails at once
naming what is missing and where it would be cached.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import torch
from torch import nn

from ..errors import ModelLoadError, UnsupportedModelError, first_line
from ..preprocess import CLIP_MEAN, CLIP_STD
from .base import WEIGHTS_PACKAGED, ByteReport, CatalogueEntry, LoadRequest, ModelFamily
from .clip import hub
from .clip.catalogue import curated_entries
from .clip.family import OFFLINE_HINT
from .clip.methods import create_method
from .clip.model import GroundingModel
from .clip.trunks.transformers_vit import TransformersVision
from .registry import register_family

PREFIX = "transformers:"
WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")
TOKENIZER_FILES = ("tokenizer.json", "vocab.json", "spiece.model", "tokenizer_config.json")
#: What a repository's download takes: configs, tokenizer files, weights (safetensors when both).
REPO_FILES = ("*.json", "*.txt", "*.model", "model*.safetensors", "pytorch_model*.bin")


class TransformersClip(nn.Module):
    """A ``CLIPModel``/``SiglipModel`` with the few attributes napari-gem asks a CLIP for."""

    #: Text embeddings come from the model's own ``get_text_features`` (no open_clip truncation).
    text_pool_type = "transformers"

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model
        self.visual = TransformersVision(model.vision_model, getattr(model, "visual_projection", None))
        # SigLIP was trained attending to its padding (max-length padding, no attention mask;
        # big_vision, open_clip #984): its text runs on input_ids alone, as trained.
        self.text_inputs = ("input_ids",) if type(model).__name__.startswith("Siglip") else None

    @property
    def logit_scale(self) -> torch.Tensor:
        return self.model.logit_scale

    def encode_text(self, batch) -> torch.Tensor:
        if self.text_inputs is not None:
            batch = {key: batch[key] for key in self.text_inputs}
        return _features(self.model.get_text_features(**batch))

    def encode_image(self, pixels: torch.Tensor) -> torch.Tensor:
        return _features(self.model.get_image_features(pixel_values=pixels))


def _features(output):
    # transformers 5 returns a model output whose pooled field holds the features.
    return output if isinstance(output, torch.Tensor) else output.pooler_output


class HfTokenizer:
    """Texts -> the model's own token batch (padded as the model was trained)."""

    def __init__(self, tokenizer, max_length: bool) -> None:
        self.tokenizer = tokenizer
        self.padding = "max_length" if max_length else True

    def __call__(self, texts):
        return self.tokenizer(list(texts), padding=self.padding, truncation=True, return_tensors="pt")


def _source(name: str) -> str:
    return name[len(PREFIX):].strip()


def missing_files(source: str, cache_dir=None) -> list[str]:
    """What a folder or a repository (in the Hugging Face cache) lacks: config, weights, tokenizer."""
    folder = Path(source).expanduser()
    if source.startswith((".", "/", "~")) or folder.is_dir():
        has = lambda f: (folder / f).is_file()  # noqa: E731
    else:
        from huggingface_hub import try_to_load_from_cache

        def has(f):
            found = try_to_load_from_cache(source, f, cache_dir=cache_dir)
            return isinstance(found, str) and os.path.isfile(found)
    missing = [] if has("config.json") else ["the config (config.json)"]
    if not any(has(f) for f in WEIGHT_FILES):
        missing.append(f"the weights ({' or '.join(WEIGHT_FILES)})")
    if not any(has(f) for f in TOKENIZER_FILES):
        missing.append("the tokenizer (tokenizer.json or vocab.json)")
    return missing


@register_family
class TransformersClipFamily(ModelFamily):
    """Hugging Face ``transformers`` CLIPModel / SiglipModel, by repository id or folder."""

    name = "transformers"
    title = "Hugging Face transformers CLIP"
    summary = "transformers CLIPModel / SiglipModel (transformers:ORG/REPO or transformers:/path)"
    weights = WEIGHTS_PACKAGED  # the weights come with the repository or folder
    priority = 20

    def catalogue(self) -> list[CatalogueEntry]:
        return curated_entries(self.name)

    def claims(self, name: str) -> bool:
        return isinstance(name, str) and name.startswith(PREFIX)

    def check(self, name: str, pretrained: str | None) -> None:
        # load_model's default tag ("openai") names no weights of a repository or folder.
        if pretrained not in (None, "", "openai"):
            raise ModelLoadError(
                f"{name} carries its own weights; leave pretrained empty (got {pretrained!r}).")
        source = _source(name)
        if not source:
            raise ModelLoadError(f"{name!r} names no repository or folder")
        folder = Path(source).expanduser()
        if source.startswith((".", "/", "~")) and not folder.is_dir():
            raise ModelLoadError(f"{name}: folder {folder} not found")
        try:
            import transformers  # noqa: F401
        except ImportError as error:
            raise ModelLoadError(
                f"{name} needs the optional package transformers: pip install 'napari-gem[transformers]'"
            ) from error

    def is_cached(self, name, pretrained, cache_dir=None) -> bool:
        return not missing_files(_source(name), cache_dir)

    def _fail_fast_when_offline(self, name: str, cache_dir) -> bool:
        """True when everything is local; raises when something is missing and the hub is out of reach."""
        missing = missing_files(_source(name), cache_dir)
        if not missing:
            return True

        folder = Path(_source(name)).expanduser()
        if folder.is_dir():
            raise ModelLoadError(f"{name}: the folder lacks {'; '.join(missing)}")
        reason = hub.offline_reason()
        if reason:
            where = _cache_folder(cache_dir)
            raise ModelLoadError(
                f"could not load {name}: not in the cache ({'; '.join(missing)}), and {reason}. "
                f"Downloads are cached in {where}; fetch them on a connected machine (see "
                f"docs/models.md) and copy that folder over. {OFFLINE_HINT}"
            )
        return False

    def build(self, request: LoadRequest) -> GroundingModel:
        from transformers import AutoModel, AutoTokenizer

        name, cache_dir = request.name, request.cache_dir
        local = self._fail_fast_when_offline(name, cache_dir)
        source = _source(name)
        if local and not Path(source).expanduser().is_dir():
            # The cached snapshot folder, not the repository id: given an id, even with
            # local_files_only, the hub client makes a request (its user-agent registry).
            source = hub.snapshot_folder(source, ["config.json"], cache_dir) or source
        try:
            model = AutoModel.from_pretrained(source, cache_dir=cache_dir, local_files_only=local)
            tokenizer = AutoTokenizer.from_pretrained(source, cache_dir=cache_dir, local_files_only=local)
        except Exception as error:
            raise ModelLoadError(f"could not load {name} ({type(error).__name__}: {first_line(error)})") \
                from error
        if type(model).__name__ not in ("CLIPModel", "SiglipModel"):
            raise ModelLoadError(
                f"{name} is a {type(model).__name__}; only CLIPModel and SiglipModel are supported")
        model = model.float().eval().requires_grad_(False)
        wrapped = TransformersClip(model).eval()
        siglip = type(model).__name__.startswith("Siglip")
        wrapped.visual.preprocess_cfg = processor_normalisation(source, cache_dir, local, siglip)
        try:
            method = request.dense_method or create_method(self.default_method)
            return GroundingModel(wrapped, HfTokenizer(tokenizer, max_length=siglip), method,
                                  name=name, pretrained=None)
        except (UnsupportedModelError, ValueError) as error:
            raise ModelLoadError(f"{name}: {error}") from error

    def fetch(self, name: str, pretrained, report: ByteReport, cache_dir=None) -> None:
        """Download the repository's config, weights and tokenizer, reporting bytes."""
        if self._fail_fast_when_offline(name, cache_dir):
            return
        with hub.download_errors(name, _cache_folder(cache_dir)):
            hub.fetch_repo(_source(name), REPO_FILES, report, cache_dir)


def processor_normalisation(source: str, cache_dir, local: bool, siglip: bool) -> dict:
    """``{"mean", "std"}`` from the model's ``preprocessor_config.json``; without one, the
    defaults of transformers' own processors (SigLIP: 0.5; CLIP: OpenAI CLIP's)."""
    from transformers.utils import cached_file

    defaults = ((0.5,) * 3, (0.5,) * 3) if siglip else (CLIP_MEAN, CLIP_STD)
    try:
        path = cached_file(source, "preprocessor_config.json", cache_dir=cache_dir,
                           local_files_only=local, _raise_exceptions_for_missing_entries=False)
        config = json.loads(Path(path).read_text()) if path else {}
    except (OSError, ValueError):
        config = {}
    return {"mean": tuple(config.get("image_mean", defaults[0])),
            "std": tuple(config.get("image_std", defaults[1]))}


def _cache_folder(cache_dir) -> str:
    from huggingface_hub import constants

    return str(Path(cache_dir).expanduser()) if cache_dir else str(constants.HF_HUB_CACHE)
