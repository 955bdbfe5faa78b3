"""Tiny Talk2DINO parts with re-drawn random weights, saved as real files (no downloads here).

The backbone is timm's ``vit_base_patch14_reg4_dinov2`` shrunk to 2 blocks of width 96
(4 heads: neither 1/√96 nor 1/√24 is the hard-coded 0.125); the text tower a registered
2-layer open_clip config with QuickGELU. Weights are
re-drawn as the spec asks (§5): LayerScale about 0.3, position tables and tokens at scale
0.5, weights of unit gain, so that no part of the computation is hidden by timm's init.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import torch

TINY = "talk2dino-test-tiny"
TINY_TEXT_MODEL = "talk2dino-test-tiny-quickgelu"
BACKBONE = "vit_base_patch14_reg4_dinov2"
BACKBONE_OVERRIDES = {"embed_dim": 96, "depth": 2, "num_heads": 4}
TEXT_CONFIG = {
    "embed_dim": 32, "quick_gelu": True,
    "vision_cfg": {"image_size": 32, "layers": 1, "width": 32, "patch_size": 16, "head_width": 16},
    "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 32, "heads": 2, "layers": 2},
}


def register_tiny(folder: Path) -> str:
    """Register the tiny open_clip text config and the tiny Talk2DINO architecture."""
    import open_clip

    from napari_gem.engine.families.talk2dino import Talk2DinoArchitecture, register_architecture

    if TINY_TEXT_MODEL not in open_clip.list_models():
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{TINY_TEXT_MODEL}.json"
        path.write_text(json.dumps(TEXT_CONFIG))
        open_clip.add_model_config(path)
    register_architecture(TINY, Talk2DinoArchitecture(
        backbone_overrides=dict(BACKBONE_OVERRIDES), text_model=TINY_TEXT_MODEL, text_dim=32,
        embed_dim=96))
    return TINY


def _redraw(state: dict[str, torch.Tensor], generator: torch.Generator) -> dict[str, torch.Tensor]:
    def normal(shape, scale):
        return torch.randn(shape, generator=generator) * scale

    drawn = {}
    for key, value in state.items():
        if not value.is_floating_point():
            drawn[key] = value.clone()
        elif key.endswith(("ls1.gamma", "ls2.gamma")):
            drawn[key] = 0.3 + normal(value.shape, 0.05)
        elif key in ("pos_embed", "cls_token", "reg_token", "positional_embedding",
                     "token_embedding.weight"):
            drawn[key] = normal(value.shape, 0.5)
        elif key == "logit_scale":
            drawn[key] = value.clone()
        elif value.ndim == 1 and key.endswith("weight") and ("norm" in key or "ln_" in key):
            drawn[key] = 1 + normal(value.shape, 0.1)
        elif value.ndim == 1:
            drawn[key] = normal(value.shape, 0.1)
        else:
            fan_in = value[0].numel() if key != "text_projection" else value.shape[0]
            drawn[key] = normal(value.shape, 1 / math.sqrt(fan_in))
    return drawn


def backbone_state(seed: int = 0) -> dict[str, torch.Tensor]:
    """A timm state dict of the tiny backbone (default 518 input: a 37×37 position table)."""
    import timm

    module = timm.create_model(BACKBONE, pretrained=False, num_classes=0, **BACKBONE_OVERRIDES)
    return _redraw(module.state_dict(), torch.Generator().manual_seed(seed))


def text_state(seed: int = 1) -> dict[str, torch.Tensor]:
    """An open_clip state dict of the tiny QuickGELU CLIP."""
    import open_clip

    model = open_clip.create_model(TINY_TEXT_MODEL, pretrained=None)
    return _redraw(model.state_dict(), torch.Generator().manual_seed(seed))


def projection_state(seed: int = 2, text_dim: int = 32, embed_dim: int = 96, *,
                     old_names: bool = False) -> dict[str, torch.Tensor]:
    """The released projection layout (``linear_layer2`` for the older files)."""
    generator = torch.Generator().manual_seed(seed)
    second = "linear_layer2" if old_names else "hidden_layers.0"
    return {
        "linear_layer.weight": torch.randn(embed_dim, text_dim, generator=generator) / math.sqrt(text_dim),
        "linear_layer.bias": torch.randn(embed_dim, generator=generator) * 0.3,
        f"{second}.weight": torch.randn(embed_dim, embed_dim, generator=generator) / math.sqrt(embed_dim),
        f"{second}.bias": torch.randn(embed_dim, generator=generator) * 0.3,
    }


def save_files(folder: Path) -> dict[str, Path]:
    """The three files of a tiny Talk2DINO: projection, backbone (timm), text (open_clip)."""
    folder.mkdir(parents=True, exist_ok=True)
    files = {"projection": folder / "projection.pth", "backbone": folder / "backbone.pth",
             "text": folder / "text.pt"}
    torch.save(projection_state(), files["projection"])
    torch.save(backbone_state(), files["backbone"])
    torch.save({"state_dict": text_state()}, files["text"])
    return files
