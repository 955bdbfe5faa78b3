"""open_clip models from a Hugging Face repository or a folder: ``hf-hub:ORG/REPO``, ``local-dir:/path``.

open_clip's own name forms: the repository or folder holds ``open_clip_config.json`` and
the weights (``open_clip_model.safetensors`` or ``open_clip_pytorch_model.bin``), so the
name alone says which weights load (``pretrained`` must be empty). A text tower from
Hugging Face ``transformers`` (BiomedCLIP's PubMedBERT) needs that model's config and
tokenizer from the same Hugging Face cache. Before open_clip runs, the cache is
checked; anything missing with no reachable hub fails at once with a message naming it
and the folder it would be cached in (no minute of retries).
"""

from __future__ import annotations

import json
from pathlib import Path

from ..errors import ModelLoadError, UnsupportedModelError, first_line
from .base import WEIGHTS_PACKAGED, ByteReport, CatalogueEntry, LoadRequest, ModelFamily
from .clip import hub
from .clip.catalogue import curated_entries
from .clip.family import OFFLINE_HINT
from .clip.methods import create_method
from .clip.model import GroundingModel
from .clip.text_tower import open_clip_tokenizer, text_tower_kwargs
from .registry import register_family

HF_HUB = "hf-hub:"
LOCAL_DIR = "local-dir:"
CONFIG_FILE = "open_clip_config.json"
WEIGHT_FILES = ("open_clip_model.safetensors", "open_clip_pytorch_model.bin")
#: What a repository's download takes: config, weights, and a tokenizer's small files.
REPO_FILES = (CONFIG_FILE, *WEIGHT_FILES, "*.json", "*.txt", "*.model")


def _cache_folder(cache_dir) -> str:
    from huggingface_hub import constants

    return str(Path(cache_dir).expanduser()) if cache_dir else str(constants.HF_HUB_CACHE)


def hub_needs(name: str, cache_dir=None) -> tuple[str | None, list[str]]:
    """(the cached snapshot folder holding config and weights or None, what is missing)."""
    repo = name[len(HF_HUB):]
    config_path = hub.cached_file(repo, CONFIG_FILE, cache_dir)
    if config_path is None:
        return None, [f"the config ({repo}/{CONFIG_FILE})", f"the weights ({repo}/{WEIGHT_FILES[0]})"]
    folder = Path(config_path).parent
    has_weights = any((folder / f).is_file() for f in WEIGHT_FILES)
    missing = [] if has_weights else [f"the weights ({repo}/{WEIGHT_FILES[0]})"]
    missing += hub.text_tower_missing(json.loads(Path(config_path).read_text()), cache_dir, folder)
    return (str(folder) if has_weights else None), missing


def folder_problems(folder: Path) -> list[str]:
    if not folder.is_dir():
        return [f"the folder {folder} (not found)"]
    missing = [] if (folder / CONFIG_FILE).is_file() else [f"the config {folder / CONFIG_FILE}"]
    if not any((folder / f).is_file() for f in WEIGHT_FILES):
        missing.append(f"the weights ({' or '.join(WEIGHT_FILES)} in {folder})")
    return missing


@register_family
class OpenClipHubFamily(ModelFamily):
    """open_clip models by Hugging Face repository (``hf-hub:``) or folder (``local-dir:``)."""

    name = "open_clip_hub"
    title = "open_clip repository or folder"
    summary = "open_clip models from a Hugging Face repository (hf-hub:ORG/REPO) or folder (local-dir:/path)"
    weights = WEIGHTS_PACKAGED  # the weights come with the repository or folder
    priority = 20

    def catalogue(self) -> list[CatalogueEntry]:
        return curated_entries(self.name)

    def claims(self, name: str) -> bool:
        return isinstance(name, str) and name.startswith((HF_HUB, LOCAL_DIR))

    def check(self, name: str, pretrained: str | None) -> None:
        # load_model's default tag ("openai") names no weights of a repository or folder.
        if pretrained not in (None, "", "openai"):
            raise ModelLoadError(
                f"{name} carries its own weights; leave pretrained empty (got {pretrained!r}). "
                "To load other weights, put them in a folder with the config and use local-dir:."
            )
        if not name.split(":", 1)[1].strip():
            raise ModelLoadError(f"{name!r} names no repository or folder")
        if name.startswith(LOCAL_DIR):
            missing = folder_problems(Path(name[len(LOCAL_DIR):]).expanduser())
            if missing:
                raise ModelLoadError(f"{name}: missing {'; '.join(missing)}")

    def is_cached(self, name, pretrained, cache_dir=None) -> bool:
        if name.startswith(LOCAL_DIR):
            folder = Path(name[len(LOCAL_DIR):]).expanduser()
            return folder_problems(folder) != [] or not hub.text_tower_missing(
                _folder_config(folder), cache_dir, folder)  # (a broken folder: nothing to fetch)
        return not hub_needs(name, cache_dir)[1]

    def _fail_fast_when_offline(self, name: str, cache_dir) -> str | None:
        """The snapshot folder to load from when cached; raises when offline and anything is missing."""
        if name.startswith(LOCAL_DIR):
            folder = Path(name[len(LOCAL_DIR):]).expanduser()
            missing = hub.text_tower_missing(_folder_config(folder), cache_dir, folder)
            snapshot = None
        else:
            snapshot, missing = hub_needs(name, cache_dir)
        if not missing:
            return snapshot

        reason = hub.offline_reason()
        if reason:
            raise ModelLoadError(
                f"could not load {name}: not in the cache ({'; '.join(missing)}), and {reason}. "
                f"Downloads are cached in {_cache_folder(cache_dir)}; fetch them on a connected "
                f"machine (see docs/models.md) and copy that folder over. {OFFLINE_HINT}"
            )
        return snapshot

    def build(self, request: LoadRequest) -> GroundingModel:
        import open_clip

        name, cache_dir = request.name, request.cache_dir
        snapshot = self._fail_fast_when_offline(name, cache_dir)
        # A fully cached repository loads from its snapshot folder, and its text tower and
        # tokenizer from theirs: no hub request at all.
        source = f"{LOCAL_DIR}{snapshot}" if snapshot else name
        folder = Path(name[len(LOCAL_DIR):]).expanduser() if name.startswith(LOCAL_DIR) else None
        try:
            if snapshot or folder:
                config = _folder_config(Path(snapshot or folder)).get("model_cfg", {})
                local = not hub.text_tower_missing(config, cache_dir, folder)
                model = open_clip.create_model(source, cache_dir=cache_dir,
                                               **text_tower_kwargs(config, cache_dir, local=local))
                tokenizer = open_clip_tokenizer(source, config, cache_dir, local=local, folder=folder)
            else:  # not cached, and the hub answered: open_clip downloads (its tokenizer by name)
                model = open_clip.create_model(source, cache_dir=cache_dir)
                tokenizer = open_clip.get_tokenizer(source, cache_dir=cache_dir)
        except Exception as error:
            raise ModelLoadError(f"could not load {name} ({type(error).__name__}: {first_line(error)})") \
                from error
        try:
            method = request.dense_method or create_method(self.default_method)
            grounding = GroundingModel(model, tokenizer, method, name=name, pretrained=None)
        except (UnsupportedModelError, ValueError) as error:
            raise ModelLoadError(f"{name}: {error}") from error
        model.eval().requires_grad_(False)
        return grounding

    def fetch(self, name: str, pretrained, report: ByteReport, cache_dir=None) -> None:
        """Download the repository's config and weights, and a Hugging Face text tower's config
        and tokenizer, reporting bytes over all of them."""
        if self.is_cached(name, pretrained, cache_dir):
            return
        self._fail_fast_when_offline(name, cache_dir)

        def text_tower(folder: str) -> list[tuple[str, tuple[str, ...]]]:
            return hub.text_tower_repos(_folder_config(Path(folder)))

        with hub.download_errors(name, _cache_folder(cache_dir)):
            if name.startswith(LOCAL_DIR):
                folder = name[len(LOCAL_DIR):]
                hub.download_repo_files([(repo, hub.repo_files(repo, patterns))
                                         for repo, patterns in text_tower(folder)], report, cache_dir)
            else:
                hub.fetch_repo(name[len(HF_HUB):], REPO_FILES, report, cache_dir, more=text_tower)


def _folder_config(folder: Path) -> dict:
    return json.loads((Path(folder).expanduser() / CONFIG_FILE).read_text())
