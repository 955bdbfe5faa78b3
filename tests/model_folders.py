"""Model folders and Hugging Face cache entries written by the tests (random weights, no network).

- :func:`write_open_clip_folder`: an open_clip ``local-dir:`` folder (config + safetensors);
- :func:`write_transformers_folder`: a ``transformers`` ``CLIPModel`` folder with a word tokenizer;
- :func:`put_in_hub_cache`: one file laid out exactly as huggingface_hub caches a download.
"""

from __future__ import annotations

import json
import socket
import time
from pathlib import Path

import torch

FAKE_COMMIT = "0123456789abcdef0123456789abcdef01234567"

#: A tiny transformers CLIP (64 px, patch 16, 8 blocks) as the transformers tests build it.
VISION = dict(hidden_size=64, intermediate_size=256, num_hidden_layers=8, num_attention_heads=4,
              image_size=64, patch_size=16, hidden_act="gelu")
TEXT = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2,
            vocab_size=100, max_position_embeddings=16, hidden_act="gelu")


def block_network(monkeypatch) -> list[tuple]:
    """Block every connection and name lookup (``HF_HUB_OFFLINE`` unset, as on a PC behind a
    firewall) and make any back-off sleep fail the test; the list of attempts."""
    attempts: list[tuple] = []

    def refuse(*args, **kwargs):
        attempts.append(args[:1])
        raise OSError("network blocked by the test")

    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    monkeypatch.setattr(socket.socket, "connect", lambda self, *a: refuse(*a))
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)

    def no_sleep(seconds):
        raise AssertionError(f"something waited {seconds} s for the network (retry back-off)")

    monkeypatch.setattr(time, "sleep", no_sleep)
    return attempts


def put_in_hub_cache(cache_dir: Path, repo_id: str, filename: str, payload: bytes | None = None,
                     state_dict: dict | None = None) -> Path:
    """Lay a file out exactly as huggingface_hub caches a download (refs/main -> snapshot)."""
    repo = Path(cache_dir) / f"models--{repo_id.replace('/', '--')}"
    snapshot = repo / "snapshots" / FAKE_COMMIT
    snapshot.mkdir(parents=True, exist_ok=True)
    (repo / "refs").mkdir(exist_ok=True)
    (repo / "refs" / "main").write_text(FAKE_COMMIT)
    path = snapshot / filename
    if state_dict is not None:
        torch.save(state_dict, path)
    else:
        path.write_bytes(payload or b"weights")
    return path


def open_clip_config(model_name: str) -> dict:
    import open_clip

    return {"model_cfg": open_clip.get_model_config(model_name), "preprocess_cfg": {}}


def write_open_clip_folder(folder: Path, model_name: str, seed: int = 0):
    """An open_clip folder of the registered ``model_name`` with random weights; the model."""
    import open_clip
    from safetensors.torch import save_file

    torch.manual_seed(seed)
    model = open_clip.create_model(model_name, pretrained=None).eval()
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "open_clip_config.json").write_text(json.dumps(open_clip_config(model_name)))
    save_file({k: v.contiguous() for k, v in model.state_dict().items()},
              folder / "open_clip_model.safetensors")
    return model


def random_transformers_clip(seed: int = 21):
    import transformers

    torch.manual_seed(seed)
    config = transformers.CLIPConfig(vision_config=VISION, text_config=TEXT, projection_dim=32)
    return transformers.CLIPModel(config).eval()


def save_word_tokenizer(folder: Path) -> None:
    """A word-level fast tokenizer (its vocabulary: a few prompt words) saved in ``folder``."""
    import transformers
    from tokenizers import Tokenizer, models, pre_tokenizers

    vocab = {w: i for i, w in enumerate(["[PAD]", "[UNK]", "<eos>", "a", "photo", "of", "cell",
                                         "nucleus", "man", "sky"])}
    raw = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    raw.pre_tokenizer = pre_tokenizers.Whitespace()
    tokenizer = transformers.PreTrainedTokenizerFast(tokenizer_object=raw, pad_token="[PAD]",
                                                     unk_token="[UNK]", eos_token="<eos>")
    tokenizer.save_pretrained(folder)


def write_transformers_folder(folder: Path, seed: int = 21):
    """A transformers ``CLIPModel`` folder (config, safetensors, tokenizer); the model."""
    model = random_transformers_clip(seed)
    model.save_pretrained(folder)
    save_word_tokenizer(folder)
    return model


def put_folder_in_hub_cache(cache_dir: Path, repo_id: str, folder: Path) -> Path:
    """Every file of ``folder`` as the cached snapshot of ``repo_id``; the snapshot folder."""
    for path in sorted(Path(folder).iterdir()):
        if path.is_file():
            snapshot = put_in_hub_cache(cache_dir, repo_id, path.name, payload=path.read_bytes()).parent
    return snapshot


#: A tiny BERT (PubMedBERT's architecture at test size) and the words of its vocabulary.
TINY_BERT = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2,
                 max_position_embeddings=64)
BERT_WORDS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "a", "photo", "of", "cell", "nucleus",
              "man", "sky", "."]


def save_tiny_bert(folder: Path, *, weights: bool = False, seed: int = 3) -> None:
    """A tiny BERT's ``config.json`` and WordPiece tokenizer (``vocab.txt``) in ``folder``;
    with ``weights``, its random weights too."""
    import transformers

    folder.mkdir(parents=True, exist_ok=True)
    (folder / "vocab.txt").write_text("\n".join(BERT_WORDS) + "\n")
    transformers.BertTokenizerFast(str(folder / "vocab.txt"), do_lower_case=True).save_pretrained(folder)
    config = transformers.BertConfig(vocab_size=len(BERT_WORDS), **TINY_BERT)
    if weights:
        torch.manual_seed(seed)
        transformers.BertModel(config).save_pretrained(folder)
    else:
        config.save_pretrained(folder)


def cache_tag_weights(cache_dir: Path, name: str, tag: str, seed: int = 0, **create_kwargs):
    """Random weights of open_clip's ``name`` (as its config now reads) cached where the hub
    keeps ``tag``'s weights file; the model they came from."""
    import open_clip
    from safetensors.torch import save_file

    repo = open_clip.get_pretrained_cfg(name, tag)["hf_hub"].rstrip("/")
    filename = "open_clip_model.safetensors"
    torch.manual_seed(seed)
    model = open_clip.create_model(name, pretrained=None, **create_kwargs).eval()
    folder = Path(cache_dir) / "_staging" / repo.replace("/", "--")
    folder.mkdir(parents=True, exist_ok=True)
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, folder / filename)
    put_folder_in_hub_cache(cache_dir, repo, folder)
    return model


#: BiomedCLIP's repository and text tower (PubMedBERT), as its open_clip_config.json names them.
BIOMEDCLIP = "microsoft/BiomedCLIP-PubMedBERT_256-vit_base_patch16_224"
PUBMEDBERT = "microsoft/BiomedNLP-BiomedBERT-base-uncased-abstract"


def biomedclip_config(trunk: str = "vit_napari_gem_test_vit") -> dict:
    """BiomedCLIP's open_clip_config.json at test size: a timm ViT trunk, PubMedBERT text tower
    and tokenizer (``hf_model_name``/``hf_tokenizer_name``), its context length and normalisation."""
    return {"model_cfg": {
        "embed_dim": 32,
        "vision_cfg": {"timm_model_name": trunk, "timm_model_pretrained": False, "timm_pool": "",
                       "timm_proj": "linear", "image_size": 64},
        "text_cfg": {"hf_model_name": PUBMEDBERT, "hf_tokenizer_name": PUBMEDBERT, "hf_proj_type": "mlp",
                     "hf_pooler_type": "cls_last_hidden_state_pooler", "context_length": 64}},
        "preprocess_cfg": {"mean": [0.48145466, 0.4578275, 0.40821073],
                           "std": [0.26862954, 0.26130258, 0.27577711]}}


def cache_biomedclip(cache_dir: Path, seed: int = 5, repo_tokenizer: bool = False):
    """BiomedCLIP at test size in a hub-layout cache: its repository (config, random weights;
    with ``repo_tokenizer``, a *different* tokenizer inside it, as a repository may carry) and
    PubMedBERT's config and tokenizer. Returns the model the weights came from."""
    import open_clip
    from safetensors.torch import save_file

    staging = Path(cache_dir) / "_staging"
    bert = staging / "pubmedbert"
    save_tiny_bert(bert)
    put_folder_in_hub_cache(cache_dir, PUBMEDBERT, bert)
    config = biomedclip_config()
    repo = staging / "biomedclip"
    repo.mkdir(parents=True, exist_ok=True)
    (repo / "open_clip_config.json").write_text(json.dumps(config))
    torch.manual_seed(seed)
    text = dict(config["model_cfg"]["text_cfg"], hf_model_name=str(bert), hf_model_pretrained=False)
    model = open_clip.create_model(f"local-dir:{repo}", text_cfg=text).eval()
    save_file({k: v.contiguous() for k, v in model.state_dict().items()},
              repo / "open_clip_model.safetensors")
    if repo_tokenizer:
        save_word_tokenizer(repo)
    put_folder_in_hub_cache(cache_dir, BIOMEDCLIP, repo)
    return model
