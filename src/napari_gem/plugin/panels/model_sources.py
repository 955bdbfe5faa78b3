"""The model picker's "a folder…" and "a Hugging Face id…" entries: ask the user, name the model.

A folder holding ``open_clip_config.json`` is an open_clip folder (``local-dir:PATH``); a
folder holding a ``transformers`` ``config.json`` is a transformers model
(``transformers:PATH``). A Hugging Face id (``ORG/REPO``) loads through open_clip's hub
(``hf-hub:``) or ``transformers`` (``transformers:``): the user chooses, unless the
repository is already in the Hugging Face cache, which tells which it is. The dialogs are
Qt's static calls (:func:`QFileDialog.getExistingDirectory`, :func:`QInputDialog.getText`,
:func:`QInputDialog.getItem`); everything else is plain functions.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from ...engine.families.clip import hub
from ...engine.families.open_clip_hub import CONFIG_FILE as OPEN_CLIP_CONFIG
from ...engine.families.open_clip_hub import HF_HUB, LOCAL_DIR
from ...engine.families.transformers_clip import PREFIX as TRANSFORMERS

#: ``(label, value)`` of the two entries; the values are never model names.
FOLDER_ENTRY = ("a folder…", "<a folder>")
HUB_ID_ENTRY = ("a Hugging Face id…", "<a Hugging Face id>")
ASKING_ENTRIES = (FOLDER_ENTRY, HUB_ID_ENTRY)
ASKING_VALUES = frozenset(value for _, value in ASKING_ENTRIES)

#: How a Hugging Face id can load, as the user is asked to choose.
HUB_KINDS = {"open_clip hub (hf-hub:)": HF_HUB, "transformers (transformers:)": TRANSFORMERS}
TRANSFORMERS_CONFIG = "config.json"
_REPO_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


def name_for_folder(folder: str | Path) -> str:
    """``local-dir:PATH`` or ``transformers:PATH`` for a model folder.

    Raises ``ValueError`` saying which files were expected when the folder is neither.
    """
    folder = Path(folder).expanduser().resolve()
    if (folder / OPEN_CLIP_CONFIG).is_file():
        return f"{LOCAL_DIR}{folder}"
    if _is_transformers_config(folder / TRANSFORMERS_CONFIG):
        return f"{TRANSFORMERS}{folder}"
    raise ValueError(
        f"{folder} is not a model folder: expected {OPEN_CLIP_CONFIG} with "
        "open_clip_model.safetensors (an open_clip folder), or a transformers config.json with "
        "model.safetensors and the tokenizer files (a Hugging Face transformers CLIP or SigLIP)"
    )


def _is_transformers_config(path: Path) -> bool:
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(config, dict) and "model_type" in config


def check_repo_id(repo: str) -> str:
    """``repo`` stripped, or ``ValueError`` when it is not of the form ``ORG/REPO``."""
    repo = repo.strip()
    if not _REPO_ID.match(repo):
        raise ValueError(f"{repo!r} is not a Hugging Face id: expected ORG/REPO, "
                         "e.g. imageomics/bioclip or vinid/plip")
    return repo


def cached_hub_kind(repo: str, cache_dir: str | None = None) -> str | None:
    """``hf-hub:`` or ``transformers:`` when the Hugging Face cache tells which ``repo`` is, else None."""
    if hub.cached_file(repo, OPEN_CLIP_CONFIG, cache_dir):
        return HF_HUB
    config = hub.cached_file(repo, TRANSFORMERS_CONFIG, cache_dir)
    if config and _is_transformers_config(Path(config)):
        return TRANSFORMERS
    return None


def ask_folder(parent=None) -> str | None:
    """Ask for a model folder; its model name, or None when the user cancels.

    Raises ``ValueError`` (what files were expected) for a folder that holds no model.
    """
    from qtpy.QtWidgets import QFileDialog

    folder = QFileDialog.getExistingDirectory(parent, "A model folder (open_clip or transformers)")
    return name_for_folder(folder) if folder else None


def ask_hub_id(parent=None, cache_dir: str | None = None) -> str | None:
    """Ask for ``ORG/REPO`` (and how to load it, unless the cache tells); the model name, or None.

    Raises ``ValueError`` for text that is not a Hugging Face id.
    """
    from qtpy.QtWidgets import QInputDialog

    text, ok = QInputDialog.getText(parent, "A Hugging Face model", "Repository id (ORG/REPO):")
    if not ok or not text.strip():
        return None
    repo = check_repo_id(text)
    prefix = cached_hub_kind(repo, cache_dir)
    if prefix is None:
        labels = list(HUB_KINDS)
        choice, ok = QInputDialog.getItem(parent, "A Hugging Face model",
                                          f"Load {repo} with:", labels, 0, False)
        if not ok or choice not in HUB_KINDS:
            return None
        prefix = HUB_KINDS[choice]
    return f"{prefix}{repo}"


ASKERS = {FOLDER_ENTRY[1]: ask_folder, HUB_ID_ENTRY[1]: ask_hub_id}
