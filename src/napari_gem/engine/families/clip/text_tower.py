"""Where an open_clip model's tokenizer and Hugging Face text tower come from.

A config naming ``hf_tokenizer_name`` (SigLIP 2's Gemma tokenizer, BiomedCLIP's PubMedBERT)
gets that tokenizer on every load. open_clip itself takes the tokenizer from the folder for
``local-dir:``, which is how a cached ``hf-hub:`` repository is loaded here (:mod:`..open_clip_hub`),
so it is built here instead. When the files are in the cache (``local``), every part reads
them from their snapshot folder: transformers, given a repository id, would ask the hub about
each file and, with no network, retry with back-off for over a minute (``local_files_only``
is not enough either: for a repository id it still wants the model's ``config.json``).
Nothing process-wide is changed.
"""

from __future__ import annotations

from pathlib import Path

from . import hub


def open_clip_tokenizer(source: str, model_cfg: dict, cache_dir=None, *, local: bool,
                        folder: Path | None = None):
    """The tokenizer of ``model_cfg`` (open_clip's own for ``source`` when no Hugging Face one is named).

    ``folder``: a user's ``local-dir:`` folder; its own tokenizer files, if it has any, are
    used (open_clip's behaviour for folders), else the named tokenizer from the cache.
    """
    import open_clip
    from open_clip.tokenizer import DEFAULT_CONTEXT_LENGTH, HFTokenizer

    text = model_cfg.get("text_cfg", {})
    name = text.get("hf_tokenizer_name")
    if not name:
        return open_clip.get_tokenizer(source, cache_dir=cache_dir)
    if folder is not None and any((folder / f).is_file() for f in hub.TOKENIZER_FILES):
        name = str(folder)
    elif local:
        name = hub.snapshot_folder(name, hub.TOKENIZER_FILES, cache_dir) or name
    return HFTokenizer(name, context_length=text.get("context_length", DEFAULT_CONTEXT_LENGTH),
                       cache_dir=cache_dir, tokenizer_mode=text.get("tokenizer_mode"),
                       **text.get("tokenizer_kwargs", {}))


def text_tower_kwargs(model_cfg: dict, cache_dir=None, *, local: bool) -> dict:
    """``open_clip.create_model`` keywords that build a Hugging Face text tower from its cached
    config folder (no hub request); empty when there is none or it is not cached.

    The tower's weights come with the CLIP checkpoint, so only its config is read.
    """
    text = model_cfg.get("text_cfg", {})
    model = text.get("hf_model_name")
    config = hub.cached_file(model, "config.json", cache_dir) if model and local else None
    if config is None:
        return {}
    return {"text_cfg": {**text, "hf_model_name": str(Path(config).parent), "hf_model_pretrained": False}}
