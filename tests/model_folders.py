"""Model folders and Hugging Face cache entries written by the tests (random weights, no network).

- :func:`write_open_clip_folder`: an open_clip ``local-dir:`` folder (config + safetensors);
- :func:`write_transformers_folder`: a ``transformers`` ``CLIPModel`` folder with a word tokenizer;
- :func:`put_in_hub_cache`: one file laid out exactly as huggingface_hub caches a download.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

FAKE_COMMIT = "0123456789abcdef0123456789abcdef01234567"

#: A tiny transformers CLIP (64 px, patch 16, 8 blocks) as the transformers tests build it.
VISION = dict(hidden_size=64, intermediate_size=256, num_hidden_layers=8, num_attention_heads=4,
              image_size=64, patch_size=16, hidden_act="gelu")
TEXT = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2,
            vocab_size=100, max_position_embeddings=16, hidden_act="gelu")


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
